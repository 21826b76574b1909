// Counter-based random numbers: the stream of a sampling task is a pure function of
// (user seed, hop, position), so results do not depend on thread count, scheduling or on
// which replica computes them (gradient coding relies on this).
#pragma once

#include <cstdint>
#include <cmath>

namespace graphplat {

inline uint64_t mix64(uint64_t z) {
  // splitmix64 / murmur3 finalizer: a bijective avalanche.
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// stream_key(seed, hop, position) == position_key(hop_key(seed, hop), position); loops over
// positions compute hop_key once.
inline uint64_t hop_key(uint64_t seed, uint64_t hop) {
  const uint64_t k = mix64(seed ^ 0x6a09e667f3bcc909ULL);
  return mix64(k ^ (hop * 0x9e3779b97f4a7c15ULL + 0x3c6ef372fe94f82bULL));
}
inline uint64_t position_key(uint64_t hop_key, uint64_t position) {
  return mix64(hop_key ^ (position + 0xa54ff53a5f1d36f1ULL));
}
inline uint64_t stream_key(uint64_t seed, uint64_t hop, uint64_t position) {
  return position_key(hop_key(seed, hop), position);
}

// Output i of a stream is mix64(key + (i+1) * golden): a splitmix64 sequence started at key.
struct CounterRng {
  uint64_t state;
  explicit CounterRng(uint64_t key) : state(key) {}
  CounterRng(uint64_t seed, uint64_t hop, uint64_t position)
      : state(stream_key(seed, hop, position)) {}

  uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    return mix64(state);
  }
  // Unbiased integer in [0, n), n >= 1 (Lemire's multiply-and-reject).
  uint64_t below(uint64_t n) {
    uint64_t x = next();
    __uint128_t m = static_cast<__uint128_t>(x) * n;
    uint64_t low = static_cast<uint64_t>(m);
    if (low < n) {
      uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        x = next();
        m = static_cast<__uint128_t>(x) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }
  // Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform double in (0, 1): safe for log().
  double uniform_open() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
};

}  // namespace graphplat
