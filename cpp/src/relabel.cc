#include "graphplat/relabel.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <type_traits>

#include "graphplat/parallel.h"
#include "graphplat/rng.h"

namespace graphplat {

namespace {

// Every id is owned by one thread (id hash mod T), and only its owner touches the id's
// marker. So no atomics are needed, and each owner sees positions in order, which makes
// "first appearance" -- and therefore the whole result -- independent of the thread count.
//
// Hash-table marker states (int64):
//   kHashEmpty              not seen
//   0 <= v < kHashAssigned  first position at which a new id appears
//   kHashAssigned | i       seed i
constexpr int64_t kHashEmpty = std::numeric_limits<int64_t>::max();
constexpr int64_t kHashAssigned = int64_t(1) << 62;

inline int owner_of(int64_t id, int t) {
  // Multiply-shift instead of a modulo (a division per entry per thread is slow); the
  // odd multiplier spreads sequential ids over all owners.
  const uint32_t h = static_cast<uint32_t>((static_cast<uint64_t>(id) * 0x9e3779b97f4a7c15ULL) >> 32);
  return static_cast<int>((static_cast<uint64_t>(h) * static_cast<uint32_t>(t)) >> 32);
}

// Hash: one growable open-addressing table per owner, for arbitrary int64 ids.
struct HashSlots {
  struct Table {
    std::vector<int64_t> keys, vals;
    std::vector<uint8_t> used;
    uint64_t mask = 0;
    int64_t size = 0;
    void init(int64_t expected) {
      uint64_t cap = 16;
      while (cap < static_cast<uint64_t>(expected) * 2) cap <<= 1;
      keys.assign(cap, 0);
      vals.assign(cap, kHashEmpty);
      used.assign(cap, 0);
      mask = cap - 1;
      size = 0;
    }
    uint64_t probe(int64_t id) const {
      uint64_t h = mix64(static_cast<uint64_t>(id)) & mask;
      while (used[h] && keys[h] != id) h = (h + 1) & mask;
      return h;
    }
    int64_t* get(int64_t id) {
      uint64_t h = probe(id);
      if (used[h]) return &vals[h];
      if (static_cast<uint64_t>(size + 1) * 2 > mask + 1) {
        Table bigger;
        bigger.init(size * 2 + 16);
        for (uint64_t i = 0; i <= mask; ++i)
          if (used[i]) *bigger.get(keys[i]) = vals[i];
        *this = std::move(bigger);
        h = probe(id);
      }
      used[h] = 1;
      keys[h] = id;
      ++size;
      return &vals[h];
    }
  };
  std::vector<Table> tables;
  HashSlots(int t, int64_t expected) : tables(t) {
    for (auto& tb : tables) tb.init(expected / t + 16);
  }
  int64_t* get(int owner, int64_t id) { return tables[owner].get(id); }
};

// Hash relabeling: owner `me` (id hash mod t) handles its ids, scanning every entry in
// order, so "first appearance" does not depend on the thread count.
Relabeled relabel_hashed_impl(Span<int64_t> seeds, Span<int64_t> nbrs, HashSlots& slots, int nt) {
  using M = int64_t;
  const int64_t S = seeds.size, E = nbrs.size;
  constexpr M kEmpty = kHashEmpty;
  constexpr M kAssigned = kHashAssigned;
  const int t = std::max(1, std::min<int>(nt, (S + E) / 8192 + 1));
  Relabeled out;
  Buffer<int64_t> first_pos(E);  // per entry: first position of its id, or -1 - seed
  Buffer<uint8_t> is_first(E);
  {
    // Owner `me` marks its seeds, then walks every entry in order touching only its ids.
    // Owners are independent, so they need no barrier between the two steps.
    std::vector<int64_t> dup_at(t, -1);
    run_tasks(t, nt, [&](int64_t me_) {
      const int me = static_cast<int>(me_);
      for (int64_t i = 0; i < S; ++i) {
        const int64_t v = seeds[i];
        if (owner_of(v, t) != me) continue;
        M* m = slots.get(me, v);
        if (*m != kEmpty) {
          if (dup_at[me] < 0) dup_at[me] = i;
          continue;
        }
        *m = kAssigned | static_cast<M>(i);
      }
      for (int64_t j = 0; j < E; ++j) {
        if (owner_of(nbrs[j], t) != me) continue;
        M* m = slots.get(me, nbrs[j]);
        const M cur = *m;
        const bool fresh = cur == kEmpty;
        *m = fresh ? static_cast<M>(j) : cur;
        const int64_t seen = (cur & kAssigned) ? -1 - static_cast<int64_t>(cur & ~kAssigned)
                                               : static_cast<int64_t>(cur);
        first_pos[j] = fresh ? j : seen;
        is_first[j] = fresh;
      }
    });
    int64_t dup = -1;
    for (int64_t d : dup_at)
      if (d >= 0 && (dup < 0 || d < dup)) dup = d;
    if (dup >= 0)
      throw InvalidArgument(cat("seeds must be distinct: ", seeds[dup], " appears more than once"));
  }
  // Rank first appearances in position order over fixed chunks: count, scan, assign.
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(E / 4096, static_cast<int64_t>(nt) * 4));
  std::vector<int64_t> chunk_new(k + 1, 0);
  run_tasks(k, nt, [&](int64_t c) {
    int64_t n = 0;
    for (int64_t j = chunk_begin(E, k, c), j_end = chunk_begin(E, k, c + 1); j < j_end; ++j) n += is_first[j];
    chunk_new[c + 1] = n;
  });
  for (int64_t c = 0; c < k; ++c) chunk_new[c + 1] += chunk_new[c];
  out.nodes.resize(S + chunk_new[k]);
  std::copy(seeds.begin(), seeds.end(), out.nodes.begin());
  out.local.resize(E);
  Buffer<int64_t> new_id(E);
  run_tasks(k, nt, [&](int64_t c) {
    int64_t next = S + chunk_new[c];
    for (int64_t j = chunk_begin(E, k, c), j_end = chunk_begin(E, k, c + 1); j < j_end; ++j)
      if (is_first[j]) {
        new_id[j] = next;
        out.nodes[next++] = nbrs[j];
      }
  });
  parallel_for(E, 16384, nt, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const int64_t f = first_pos[j];
      out.local[j] = f < 0 ? -1 - f : new_id[f];
    }
  });
  return out;
}

// ---- Dense relabeling over generation-stamped markers (MarkerView) ------------------
//
// A marker's value is kMarkerEmpty (an old stamp), kAssigned | local index (a node already
// in the output), or, during one relabel_marked call, the position of the id's first
// appearance; indices and positions are below kAssigned (dense_relabel_fits).
constexpr int32_t kAssigned = int32_t(1) << (kMarkerValueBits - 1);
constexpr int32_t kMarkerEmpty = -1;
constexpr uint32_t kValueMask = (uint32_t(1) << kMarkerValueBits) - 1;

inline int32_t marker_get(MarkerView m, int64_t id) {
  const uint32_t w = m.words[id];
  return (w & ~kValueMask) == m.stamp ? static_cast<int32_t>(w & kValueMask) : kMarkerEmpty;
}

inline void marker_set(MarkerView m, int64_t id, int32_t value) {
  m.words[id] = m.stamp | static_cast<uint32_t>(value);
}

// Marks entry j and records in ref[j] what it is (see relabel_marked). A plain load and
// store: the caller guarantees that only one thread ever touches this id's marker.
inline bool mark_entry(int64_t j, int64_t id, MarkerView markers, int32_t* ref) {
  const int32_t cur = marker_get(markers, id);
  const bool fresh = cur == kMarkerEmpty;
  // Only first appearances store: a store in this loop, which waits on memory, holds back
  // the loads behind it, and the branch costs less (measured: 3 % of a batch).
  if (fresh) marker_set(markers, id, static_cast<int32_t>(j));
  ref[j] = fresh ? static_cast<int32_t>(j)
                 : ((cur & kAssigned) ? -1 - (cur & ~kAssigned) : cur);
  return fresh;
}

// Entry positions bucketed by owner (id hash mod t), each bucket in increasing position
// order, so every owner can mark its ids with plain stores and still see entries in
// position order: first appearances then do not depend on the thread count, and no
// atomics or second pass over the markers are needed.
//
// Each entry is stored with its id, so that marking reads one sequential stream: loading the
// ids from the neighbor array by position stalled the marking loop (measured: 5 % of a batch).
struct OwnerBuckets {
  static constexpr int kPosBits = kMarkerValueBits - 1;  // positions are below kAssigned
  static constexpr uint64_t kPosMask = (uint64_t(1) << kPosBits) - 1;
  static_assert(kPosBits + kMaxDenseIdBits <= 64, "id and position must share a word");
  int t = 1;
  int64_t k = 1;               // chunks of the entry range
  // id << kPosBits | position, in t regions of E slots; chunk c of owner o starts at
  // o * E + chunk_begin(c)
  Buffer<uint64_t> order;
  std::vector<int64_t> count;  // [chunk * t + owner]

  // One pass: every region has room for all of a chunk's entries, so no counting pass.
  OwnerBuckets(const int64_t* nbrs, int64_t E, int t_, int64_t k_, int nt) : t(t_), k(k_) {
    order.resize(static_cast<size_t>(t) * E);
    count.assign(k * t, 0);
    run_tasks(k, nt, [&](int64_t c) {
      // Cursors on the task's stack: neighbouring chunks' counters would share cache lines.
      std::vector<uint64_t*> cur(t);
      for (int o = 0; o < t; ++o) cur[o] = order.data() + o * E + chunk_begin(E, k, c);
      for (int64_t j = chunk_begin(E, k, c), j_end = chunk_begin(E, k, c + 1); j < j_end; ++j) {
        const int64_t id = nbrs[j];
        *cur[owner_of(id, t)]++ = (static_cast<uint64_t>(id) << kPosBits) | static_cast<uint64_t>(j);
      }
      for (int o = 0; o < t; ++o)
        count[c * t + o] = cur[o] - (order.data() + o * E + chunk_begin(E, k, c));
    });
  }

  // Calls f(j, id) -> bool for owner o's entries in increasing j (prefetch(id) a few
  // entries early) and stores in hits[c * t + o] how many of chunk c's calls returned true.
  template <class F, class P>
  void for_each(int o, int64_t E, F&& f, P&& prefetch, int64_t* hits) const {
    constexpr int64_t kAhead = 32;
    for (int64_t c = 0; c < k; ++c) {
      const uint64_t* seg = order.data() + o * E + chunk_begin(E, k, c);
      const int64_t n = count[c * t + o];
      int64_t h = 0;
      for (int64_t q = 0; q < n; ++q) {
        if (q + kAhead < n) prefetch(static_cast<int64_t>(seg[q + kAhead] >> kPosBits));
        h += f(static_cast<int64_t>(seg[q] & kPosMask), static_cast<int64_t>(seg[q] >> kPosBits));
      }
      hits[c * t + o] = h;
    }
  }
};

}  // namespace

void mark_seeds(Span<int64_t> seeds, MarkerView markers, int num_threads) {
  const int64_t S = seeds.size;
  if (S >= kAssigned) throw InvalidArgument(cat("too many seeds for dense relabeling: ", S));
  const int nt = resolve_threads(num_threads);
  parallel_for(S, 8192, nt, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) marker_set(markers, seeds[i], kAssigned | static_cast<int32_t>(i));
  });
  // A repeated seed leaves one of its positions without its own mark.
  const int64_t dup = parallel_find_first(S, nt, [&](int64_t i) {
    return marker_get(markers, seeds[i]) != (kAssigned | static_cast<int32_t>(i));
  });
  if (dup < S)
    throw InvalidArgument(cat("seeds must be distinct: ", seeds[dup], " appears more than once"));
}

Relabeled relabel_marked(Span<int64_t> seeds, Span<int64_t> neighbors, MarkerView markers,
                         int num_threads, bool mark_new) {
  const int64_t S = seeds.size, E = neighbors.size;
  if (!dense_relabel_fits(S, E))
    throw InvalidArgument(cat("relabel_marked: ", S, " seeds and ", E,
                              " neighbors exceed the 32-bit marker range"));
  const int nt = resolve_threads(num_threads);
  const int64_t* nbrs = neighbors.data;
  // ref[j] < 0: the id is already in the output at index -1 - ref[j];
  // ref[j] == j: the id's first appearance; 0 <= ref[j] < j: a repeat of position ref[j].
  Buffer<int32_t> ref(E);
  // First appearances are numbered in position order over k fixed chunks of the entries:
  // marking counts them per chunk, a scan gives each chunk its first index.
  const int64_t k = std::max<int64_t>(1, std::min<int64_t>(E / 8192, static_cast<int64_t>(nt) * 4));
  const int t = std::max(1, std::min<int>(nt, static_cast<int>(E / 65536) + 1));
  std::vector<int64_t> fresh(k * t, 0);  // [chunk * t + owner]
  if (t == 1) {
    constexpr int64_t kAhead = 16;
    for (int64_t c = 0; c < k; ++c) {
      int64_t h = 0;
      const int64_t hi = chunk_begin(E, k, c + 1);
      for (int64_t j = chunk_begin(E, k, c); j < hi; ++j) {
        if (j + kAhead < E) __builtin_prefetch(markers.words + nbrs[j + kAhead]);
        h += mark_entry(j, nbrs[j], markers, ref.data());
      }
      fresh[c] = h;
    }
  } else {
    const OwnerBuckets buckets(nbrs, E, t, k, nt);
    run_tasks(t, nt, [&](int64_t o) {
      buckets.for_each(
          static_cast<int>(o), E, [&](int64_t j, int64_t id) { return mark_entry(j, id, markers, ref.data()); },
          [&](int64_t id) { __builtin_prefetch(markers.words + id); }, fresh.data());
    });
  }
  std::vector<int64_t> chunk_new(k + 1, 0);
  for (int64_t c = 0; c < k; ++c)
    for (int o = 0; o < t; ++o) chunk_new[c + 1] += fresh[c * t + o];
  for (int64_t c = 0; c < k; ++c) chunk_new[c + 1] += chunk_new[c];
  Relabeled out;
  out.nodes.resize(S + chunk_new[k]);
  std::copy(seeds.begin(), seeds.end(), out.nodes.begin());
  // Assigning rewrites ref[j] of a first appearance to -1 - its new index, so that every
  // repeat can then read its index from ref[ref[j]]. Branch-free: about half the entries
  // are first appearances, in no predictable pattern.
  int32_t* const refs = ref.data();
  int64_t* const nodes = out.nodes.data();
  // With mark_new, each first appearance also marks its id as assigned (the next hop's
  // seeds): one writer per id, as every id has one first appearance, and nothing else
  // reads the markers meanwhile.
  auto number = [&](auto mark) {
    run_tasks(k, nt, [&](int64_t c) {
      int64_t next = S + chunk_new[c];
      const int64_t limit = S + chunk_new[c + 1];
      int64_t sink;        // takes the stores of repeats once this chunk's slots are full
      uint32_t word_sink;  // takes the marker stores of repeats
      for (int64_t j = chunk_begin(E, k, c), j_end = chunk_begin(E, k, c + 1); j < j_end; ++j) {
        const int32_t r = refs[j];
        const int32_t first = r == j;  // 0 or 1; selected by masks, not branches
        const int64_t id = nbrs[j];
        *(next < limit ? nodes + next : &sink) = id;
        if (decltype(mark)::value)
          *(first ? markers.words + id : &word_sink) =
              markers.stamp | static_cast<uint32_t>(kAssigned | static_cast<int32_t>(next));
        refs[j] = r ^ ((r ^ static_cast<int32_t>(-1 - next)) & -first);
        next += first;
      }
    });
  };
  if (mark_new) number(std::true_type{});
  else number(std::false_type{});
  out.local.resize(E);
  parallel_for(E, 16384, nt, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const int32_t r = ref[j];
      out.local[j] = -1 - static_cast<int64_t>(r < 0 ? r : ref[r]);
    }
  });
  return out;
}


bool dense_relabel_fits(int64_t num_seeds, int64_t num_neighbors) {
  return num_seeds + num_neighbors < kAssigned;
}

Relabeled relabel_dense(Span<int64_t> seeds, Span<int64_t> neighbors, MarkerView markers,
                        int num_threads) {
  if (!dense_relabel_fits(seeds.size, neighbors.size))
    return relabel_hashed(seeds, neighbors, num_threads);
  const int nt = resolve_threads(num_threads);
  mark_seeds(seeds, markers, nt);
  return relabel_marked(seeds, neighbors, markers, nt, /*mark_new=*/false);
}

Relabeled relabel_hashed(Span<int64_t> seeds, Span<int64_t> neighbors, int num_threads) {
  const int nt = resolve_threads(num_threads);
  const int t = std::max(1, std::min<int>(nt, (seeds.size + neighbors.size) / 8192 + 1));
  HashSlots slots(t, seeds.size + neighbors.size / 2);
  return relabel_hashed_impl(seeds, neighbors, slots, t);
}

}  // namespace graphplat
