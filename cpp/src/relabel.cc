#include "graphplat/relabel.h"

#include <omp.h>

#include <algorithm>
#include <memory>

#include "graphplat/parallel.h"
#include "graphplat/rng.h"

namespace graphplat {

namespace {

// Marker states (one int64 per distinct id):
//   kMarkerEmpty          not seen
//   0 <= v < kMarkerEmpty smallest neighbor position holding this id (phase 1)
//   kAssigned | local     final local index
constexpr int64_t kAssigned = int64_t(1) << 62;

// Dense: the marker of id v is markers[v].
struct DenseSlots {
  std::atomic<int64_t>* markers;
  std::atomic<int64_t>& insert(int64_t id) { return markers[id]; }
  std::atomic<int64_t>& find(int64_t id) { return markers[id]; }
};

// Hash: open addressing over (key, marker); a slot's key is published by a CAS on `state`.
struct HashSlots {
  struct Slot {
    std::atomic<int64_t> state;  // kFree, kBusy, or kReady
    int64_t key;
    std::atomic<int64_t> marker;
  };
  static constexpr int64_t kFree = 0, kBusy = 1, kReady = 2;
  std::unique_ptr<Slot[]> slots;
  uint64_t mask;

  HashSlots(int64_t expected, int num_threads) {
    uint64_t cap = 16;
    while (cap < static_cast<uint64_t>(expected) * 2) cap <<= 1;
    mask = cap - 1;
    slots.reset(new Slot[cap]);
    Slot* s = slots.get();
#pragma omp parallel for num_threads(num_threads) schedule(static)
    for (int64_t i = 0; i < static_cast<int64_t>(cap); ++i) {
      s[i].state.store(kFree, std::memory_order_relaxed);
      s[i].marker.store(kMarkerEmpty, std::memory_order_relaxed);
    }
  }
  std::atomic<int64_t>& insert(int64_t id) {
    uint64_t h = mix64(static_cast<uint64_t>(id)) & mask;
    while (true) {
      Slot& s = slots[h];
      int64_t st = s.state.load(std::memory_order_acquire);
      if (st == kFree) {
        int64_t expected = kFree;
        if (s.state.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) {
          s.key = id;
          s.state.store(kReady, std::memory_order_release);
          return s.marker;
        }
        st = expected;
      }
      while (st == kBusy) st = s.state.load(std::memory_order_acquire);
      if (s.key == id) return s.marker;
      h = (h + 1) & mask;
    }
  }
  std::atomic<int64_t>& find(int64_t id) {
    uint64_t h = mix64(static_cast<uint64_t>(id)) & mask;
    while (slots[h].key != id || slots[h].state.load(std::memory_order_relaxed) != kReady)
      h = (h + 1) & mask;
    return slots[h].marker;
  }
};

template <class Slots>
Relabeled relabel_impl(Span<int64_t> seeds, Span<int64_t> nbrs, Slots& slots, int nt,
                       bool reset_after) {
  const int64_t S = seeds.size, E = nbrs.size;
  Relabeled out;
  // Phase 0: seeds take local ids 0..S-1; a second claim on one id is a duplicate seed.
  int64_t dup = -1;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(max : dup) if (S > 4096)
  for (int64_t i = 0; i < S; ++i) {
    int64_t expected = kMarkerEmpty;
    if (!slots.insert(seeds[i]).compare_exchange_strong(expected, kAssigned | i))
      dup = std::max(dup, i);
  }
  auto reset = [&](int64_t upto_seed) {
#pragma omp parallel for num_threads(nt) schedule(static) if (upto_seed > 4096)
    for (int64_t i = 0; i < upto_seed; ++i)
      slots.find(seeds[i]).store(kMarkerEmpty, std::memory_order_relaxed);
  };
  if (dup >= 0) {
    if (reset_after) reset(S);
    throw InvalidArgument(cat("seeds must be distinct: ", seeds[dup], " appears more than once"));
  }
  // Phase 1: every new id keeps the smallest position at which it appears.
#pragma omp parallel for num_threads(nt) schedule(static) if (E > 4096)
  for (int64_t j = 0; j < E; ++j) {
    std::atomic<int64_t>& m = slots.insert(nbrs[j]);
    int64_t cur = m.load(std::memory_order_relaxed);
    while (cur < kAssigned && cur > j && !m.compare_exchange_weak(cur, j)) {
    }
  }
  // Phase 2: rank first occurrences in position order (chunked, thread-count independent).
  const int tc = std::max(1, std::min<int>(nt, E / 4096 + 1));
  std::vector<int64_t> chunk_new(tc + 1, 0);
  const int64_t chunk = (E + tc - 1) / tc;
  std::vector<uint8_t> is_first(E);
#pragma omp parallel num_threads(tc)
  {
    int id = omp_get_thread_num();
    int64_t lo = std::min(E, id * chunk), hi = std::min(E, lo + chunk), c = 0;
    for (int64_t j = lo; j < hi; ++j) {
      bool f = slots.find(nbrs[j]).load(std::memory_order_relaxed) == j;
      is_first[j] = f;
      c += f;
    }
    chunk_new[id + 1] = c;
  }
  for (int k = 0; k < tc; ++k) chunk_new[k + 1] += chunk_new[k];
  out.nodes.resize(S + chunk_new[tc]);
  std::copy(seeds.begin(), seeds.end(), out.nodes.begin());
  // Phase 3: assign local ids to first occurrences.
#pragma omp parallel num_threads(tc)
  {
    int id = omp_get_thread_num();
    int64_t lo = std::min(E, id * chunk), hi = std::min(E, lo + chunk);
    int64_t next = S + chunk_new[id];
    for (int64_t j = lo; j < hi; ++j)
      if (is_first[j]) {
        slots.find(nbrs[j]).store(kAssigned | next, std::memory_order_relaxed);
        out.nodes[next++] = nbrs[j];
      }
  }
  // Phase 4: every entry reads its id's local index.
  out.local.resize(E);
#pragma omp parallel for num_threads(nt) schedule(static) if (E > 4096)
  for (int64_t j = 0; j < E; ++j)
    out.local[j] = slots.find(nbrs[j]).load(std::memory_order_relaxed) & ~kAssigned;
  if (reset_after) {
    const int64_t U = static_cast<int64_t>(out.nodes.size());
#pragma omp parallel for num_threads(nt) schedule(static) if (U > 4096)
    for (int64_t i = 0; i < U; ++i)
      slots.find(out.nodes[i]).store(kMarkerEmpty, std::memory_order_relaxed);
  }
  return out;
}

}  // namespace

Relabeled relabel_dense(Span<int64_t> seeds, Span<int64_t> neighbors,
                        std::atomic<int64_t>* markers, int num_threads) {
  DenseSlots slots{markers};
  return relabel_impl(seeds, neighbors, slots, resolve_threads(num_threads), true);
}

Relabeled relabel_hashed(Span<int64_t> seeds, Span<int64_t> neighbors, int num_threads) {
  int nt = resolve_threads(num_threads);
  HashSlots slots(seeds.size + neighbors.size, nt);
  return relabel_impl(seeds, neighbors, slots, nt, false);
}

}  // namespace graphplat
