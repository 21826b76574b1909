#include "graphplat/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graphplat/parallel.h"
#include "graphplat/relabel.h"
#include "graphplat/rng.h"

namespace graphplat {

const std::vector<StrategyName>& strategy_names() {
  static const std::vector<StrategyName> names = {
      {"uniform", Strategy::kUniform}, {"weighted", Strategy::kWeighted},
      {"topk", Strategy::kTopK},       {"full", Strategy::kFull},
      {"random", Strategy::kUniform},  {"edge_weight", Strategy::kWeighted}};
  return names;
}

Strategy parse_strategy(const std::string& name) {
  for (const StrategyName& n : strategy_names())
    if (name == n.name) return n.strategy;
  throw InvalidArgument(cat("unknown sampling strategy '", name,
                            "': expected one of uniform, weighted, topk, full"));
}

void check_sample_options(const CSRView& csr, const SampleOptions& opt) {
  if (opt.strategy != Strategy::kFull) {
    if (opt.fanout == 0 || opt.fanout < -1)
      throw InvalidArgument(cat("fanout must be >= 1 (or -1 for the full neighborhood), got ",
                                opt.fanout));
    if (opt.fanout > kMaxFanout)
      throw InvalidArgument(cat("fanout ", opt.fanout, " exceeds the maximum ", kMaxFanout));
  }
  if ((opt.strategy == Strategy::kWeighted || opt.strategy == Strategy::kTopK) && !csr.weights)
    throw InvalidArgument("strategy 'weighted'/'topk' needs edge weights, but this graph has none");
}

namespace {

// The effective strategy: fanout -1 means every neighbor.
Strategy effective(const SampleOptions& opt) {
  return opt.fanout == -1 ? Strategy::kFull : opt.strategy;
}

struct Scratch {
  std::vector<int64_t> idx;
  std::vector<double> cum;
  std::vector<std::pair<double, int64_t>> keyed;
};

// One seed's row, possibly split in two segments: the bulk CSR and the online delta.
// Virtual index i in [0, d1 + d2) maps to a position in the concatenated entry space
// (bulk positions first, then nnz_bulk + delta positions).
struct RowRef {
  int64_t b1, d1, b2, d2;
  int64_t base2;  // nnz of the bulk CSR
  const float* w1;
  const float* w2;
  int64_t degree() const { return d1 + d2; }
  template <bool kDelta>
  int64_t at(int64_t i) const {
    if (!kDelta) return b1 + i;
    return i < d1 ? b1 + i : base2 + b2 + (i - d1);
  }
  template <bool kDelta>
  float weight(int64_t i) const {
    if (!kDelta) return w1[b1 + i];
    return i < d1 ? w1[b1 + i] : w2[b2 + i - d1];
  }
};

template <bool kDelta>
int64_t positive_weights(const CSRCache& cache, int64_t row, const RowRef& r) {
  int64_t pos = cache.row_positive[row];
  if (kDelta)
    for (int64_t i = 0; i < r.d2; ++i) pos += r.w2[r.b2 + i] > 0.0f;
  return pos;
}

template <bool kDelta>
int64_t count_for(const CSRCache& cache, int64_t row, const RowRef& r, Strategy s,
                  const SampleOptions& opt) {
  const int64_t d = r.degree();
  switch (s) {
    case Strategy::kFull:
      return d;
    case Strategy::kTopK:
      return std::min(opt.fanout, d);
    case Strategy::kUniform:
      if (opt.replace) return d > 0 ? opt.fanout : 0;
      return std::min(opt.fanout, d);
    case Strategy::kWeighted: {
      const int64_t pos = positive_weights<kDelta>(cache, row, r);
      if (opt.replace) return pos > 0 ? opt.fanout : 0;
      return std::min(opt.fanout, pos);
    }
  }
  return 0;
}

// Writes `count` entry positions of row r into out[0..count). Always inlined into the
// per-seed loop: as a call it kept the RNG state in memory (measured: 3 % of a batch).
template <bool kDelta>
__attribute__((always_inline)) inline void sample_row(const CSRCache& cache, const RowRef& r,
                                                      int64_t count, Strategy s,
                                                      const SampleOptions& opt, CounterRng& rng,
                                                      int64_t* out, Scratch& scratch) {
  if (count == 0) return;
  const int64_t d = r.degree();
  switch (s) {
    case Strategy::kFull:
      for (int64_t i = 0; i < d; ++i) out[i] = r.at<kDelta>(i);
      return;
    case Strategy::kUniform: {
      if (opt.replace) {
        for (int64_t i = 0; i < count; ++i) out[i] = r.at<kDelta>(static_cast<int64_t>(rng.below(d)));
        return;
      }
      if (count == d) {
        for (int64_t i = 0; i < d; ++i) out[i] = r.at<kDelta>(i);
        return;
      }
      if (count <= 32) {
        // Floyd's algorithm: k draws, uniform k-subset, O(k^2) with a tiny linear check.
        int64_t n = 0;
        for (int64_t j = d - count; j < d; ++j) {
          const int64_t t = r.at<kDelta>(static_cast<int64_t>(rng.below(j + 1)));
          bool seen = false;
          for (int64_t i = 0; i < n; ++i)
            if (out[i] == t) {
              seen = true;
              break;
            }
          out[n++] = seen ? r.at<kDelta>(j) : t;
        }
        return;
      }
      // Large fanout: partial Fisher-Yates over the row's virtual indices.
      std::vector<int64_t>& idx = scratch.idx;
      idx.resize(d);
      std::iota(idx.begin(), idx.end(), int64_t(0));
      for (int64_t i = 0; i < count; ++i) {
        int64_t j = i + static_cast<int64_t>(rng.below(d - i));
        std::swap(idx[i], idx[j]);
        out[i] = r.at<kDelta>(idx[i]);
      }
      return;
    }
    case Strategy::kWeighted: {
      if (opt.replace) {
        // Inclusive prefix sums of the row: cached for the bulk CSR, built here otherwise.
        const double* cum;
        int64_t off;
        if (!kDelta || r.d2 == 0) {
          cum = cache.weight_cumsum.data();
          off = r.b1;
        } else {
          scratch.cum.resize(d);
          double acc = 0;
          for (int64_t i = 0; i < d; ++i) scratch.cum[i] = acc += r.weight<kDelta>(i);
          cum = scratch.cum.data();
          off = 0;
        }
        const double total = cum[off + d - 1];
        for (int64_t i = 0; i < count; ++i) {
          double u = rng.uniform() * total;
          // First entry whose inclusive sum exceeds u: zero weights are never picked.
          int64_t v = std::upper_bound(cum + off, cum + off + d, u) - (cum + off);
          if (v >= d) v = d - 1;
          while (r.weight<kDelta>(v) <= 0.0f) --v;  // u rounded onto a zero-width tail
          out[i] = r.at<kDelta>(v);
        }
        return;
      }
      // Efraimidis-Spirakis: key = log(u) / w, the `count` largest keys form the sample.
      auto& keyed = scratch.keyed;
      keyed.clear();
      for (int64_t i = 0; i < d; ++i) {
        const float w = r.weight<kDelta>(i);
        if (w > 0.0f) keyed.emplace_back(std::log(rng.uniform_open()) / w, r.at<kDelta>(i));
        else rng.next();  // keep the stream aligned with the edge index
      }
      if (count < static_cast<int64_t>(keyed.size()))
        std::nth_element(keyed.begin(), keyed.begin() + count, keyed.end(),
                         [](const auto& a, const auto& b) { return a.first > b.first; });
      for (int64_t i = 0; i < count; ++i) out[i] = keyed[i].second;
      return;
    }
    case Strategy::kTopK: {
      auto& keyed = scratch.keyed;
      keyed.clear();
      for (int64_t i = 0; i < d; ++i) keyed.emplace_back(r.weight<kDelta>(i), r.at<kDelta>(i));
      auto heavier = [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
      };
      if (count < d) std::nth_element(keyed.begin(), keyed.begin() + count, keyed.end(), heavier);
      std::sort(keyed.begin(), keyed.begin() + count, heavier);
      for (int64_t i = 0; i < count; ++i) out[i] = keyed[i].second;
      return;
    }
  }
}

template <bool kDelta>
NeighborSample sample_impl(const CSRView& csr, const CSRCache& cache, const CSRView* delta,
                           Span<int64_t> seeds, Span<int64_t> positions, const SampleOptions& opt,
                           Strategy s, int nt, bool with_seed_of) {
  const int64_t n = seeds.size;
  NeighborSample out;
  out.counts.resize(n);
  // Pass 1 gathers each seed's row range: independent random loads the CPU overlaps
  // (prefetching a few seeds ahead), kept so later passes read them sequentially. Only
  // begin and degree are stored: fewer stores per seed keep more loads in flight.
  struct Range {
    int64_t begin, degree;
  };
  Buffer<Range> bulk(n), added(kDelta ? n : 0);
  auto row_ref = [&](int64_t i) {
    RowRef r;
    r.b1 = bulk[i].begin;
    r.d1 = bulk[i].degree;
    r.w1 = csr.weights;
    r.base2 = csr.nnz;
    if (kDelta) {
      r.b2 = added[i].begin;
      r.d2 = added[i].degree;
      r.w2 = delta->weights;
    } else {
      r.b2 = r.d2 = 0;
      r.w2 = nullptr;
    }
    return r;
  };
  constexpr int64_t kAhead = 32;
  parallel_for(n, 4096, nt, [&](int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    if (i + kAhead < hi) __builtin_prefetch(csr.indptr + seeds[i + kAhead]);
    const int64_t row = seeds[i];
    bulk[i] = {csr.indptr[row], csr.indptr[row + 1] - csr.indptr[row]};
    if (kDelta) added[i] = {delta->indptr[row], delta->indptr[row + 1] - delta->indptr[row]};
    out.counts[i] = count_for<kDelta>(cache, row, row_ref(i), s, opt);
  }
  });
  Buffer<int64_t> offsets(n + 1);
  const int64_t total = exclusive_scan(out.counts.data(), n, offsets.data(), nt);
  if (total > kMaxOutputEntries)
    throw InvalidArgument(cat("the sample would hold ", total, " edges (limit ",
                              kMaxOutputEntries, "): use fewer seeds or a smaller fanout"));
  out.neighbors.resize(total);
  out.eids.resize(total);
  if (with_seed_of) out.seed_of.resize(total);
  int64_t* pos = out.eids.data();  // entry positions until pass 3 turns them into ids
  int64_t* nbr = out.neighbors.data();
  // Pass 2: choose entry positions (RNG work, touching memory only for weights), and
  // write each entry's seed index while the seed's range is at hand.
  int64_t* seed_of = out.seed_of.data();
  const uint64_t key = hop_key(opt.seed, opt.hop);
  parallel_for(n, 256, nt, [&](int64_t lo, int64_t hi) {
    Scratch scratch;
    for (int64_t i = lo; i < hi; ++i) {
      CounterRng rng(position_key(key, positions.empty() ? i : positions[i]));
      sample_row<kDelta>(cache, row_ref(i), out.counts[i], s, opt, rng, pos + offsets[i], scratch);
      if (with_seed_of) std::fill(seed_of + offsets[i], seed_of + offsets[i + 1], i);
    }
  });
  // Pass 3: a plain gather of the chosen entries, which runs at memory speed.
  constexpr int64_t kGatherAhead = 32;
  if (!kDelta && !csr.eids) {
    // Edge ids are the positions (plus an offset): the loop that waits on memory stores
    // only the neighbor, which keeps more of its loads in flight (measured: 4 % faster).
    const int64_t off = csr.eid_offset;
    parallel_for(total, 16384, nt, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        if (j + kGatherAhead < hi) __builtin_prefetch(csr.indices + pos[j + kGatherAhead]);
        nbr[j] = csr.indices[pos[j]];
      }
      if (off != 0)
        for (int64_t j = lo; j < hi; ++j) pos[j] += off;
    });
    return out;
  }
  parallel_for(total, 16384, nt, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      if (j + kGatherAhead < hi) __builtin_prefetch(csr.indices + pos[j + kGatherAhead]);
      const int64_t p = pos[j];
      if (!kDelta || p < csr.nnz) {
        nbr[j] = csr.indices[p];
        pos[j] = csr.eids ? csr.eids[p] : p + csr.eid_offset;
      } else {
        nbr[j] = delta->indices[p - csr.nnz];
        pos[j] = delta->edge_id(p - csr.nnz);
      }
    }
  });
  return out;
}

// sample_neighbors once its arguments are checked (multi-hop frontiers are valid by
// construction, so later hops skip the scan over their seeds).
NeighborSample sample_validated(const CSRView& csr, CSRCache& cache, Span<int64_t> seeds,
                                Span<int64_t> positions, const SampleOptions& opt,
                                const CSRView* delta, int nt, bool with_seed_of = false) {
  const Strategy s = effective(opt);
  if (s == Strategy::kWeighted) cache.ensure_weight_cumsum(csr, nt);
  if (delta && delta->nnz > 0)
    return sample_impl<true>(csr, cache, delta, seeds, positions, opt, s, nt, with_seed_of);
  return sample_impl<false>(csr, cache, nullptr, seeds, positions, opt, s, nt, with_seed_of);
}

}  // namespace

NeighborSample sample_neighbors(const CSRView& csr, CSRCache& cache, Span<int64_t> seeds,
                                Span<int64_t> positions, const SampleOptions& opt,
                                const CSRView* delta) {
  check_sample_options(csr, opt);
  const int nt = resolve_threads(opt.num_threads);
  check_ids_in_range(seeds, csr.num_rows, "seeds", nt);
  if (!positions.empty() && positions.size != seeds.size)
    throw InvalidArgument(cat("positions has ", positions.size, " entries but seeds has ", seeds.size));
  if (delta) {
    if (delta->num_rows != csr.num_rows)
      throw InvalidArgument(cat("delta has ", delta->num_rows, " rows but the graph has ", csr.num_rows));
    if (delta->num_cols < csr.num_cols)
      throw InvalidArgument(cat("delta has ", delta->num_cols, " columns, fewer than the graph's ",
                                csr.num_cols));
    if (!delta->explicit_eids)
      throw InvalidArgument("delta must carry explicit edge ids");
    if (!csr.weights != !delta->weights)
      throw InvalidArgument("graph and delta must both have weights or both have none");
  }
  return sample_validated(csr, cache, seeds, positions, opt, delta, nt);
}

std::vector<SampledHop> sample_multihop(const CSRView& csr, CSRCache& cache,
                                        Span<int64_t> seeds,
                                        const std::vector<int64_t>& fanouts,
                                        SampleOptions opt) {
  if (csr.num_rows != csr.num_cols)
    throw InvalidArgument(cat("sample_multihop needs a square graph (num_rows == num_cols), got ",
                              csr.num_rows, " x ", csr.num_cols));
  if (fanouts.empty()) throw InvalidArgument("fanouts must hold at least one hop");
  const int nt = resolve_threads(opt.num_threads);
  opt.num_threads = nt;
  for (int64_t f : fanouts) {
    opt.fanout = f;
    check_sample_options(csr, opt);
  }
  // One marker generation for the whole call: the nodes of hop h are the seeds of hop h+1,
  // so their markers stay assigned from one hop to the next, and none is ever cleared.
  const MarkerPool::Lease lease = cache.get_markers(csr.num_rows).acquire();
  const MarkerView markers = lease.view();
  std::vector<SampledHop> hops(fanouts.size());
  check_ids_in_range(seeds, csr.num_rows, "seeds", nt);  // before they index the markers
  bool dense = csr.num_rows <= kMaxDenseIds && dense_relabel_fits(seeds.size, 0);
  if (dense) mark_seeds(seeds, markers, nt);
  Buffer<int64_t> first(seeds.begin(), seeds.end());
  for (size_t h = 0; h < fanouts.size(); ++h) {
    opt.fanout = fanouts[h];
    opt.hop = h;
    const Buffer<int64_t>& frontier = h == 0 ? first : hops[h - 1].nodes;
    Span<int64_t> hop_seeds = make_span(frontier.data(), (int64_t)frontier.size());
    NeighborSample ns = sample_validated(csr, cache, hop_seeds, Span<int64_t>{}, opt, nullptr, nt,
                                         /*with_seed_of=*/true);
    Span<int64_t> nbrs = make_span(ns.neighbors.data(), (int64_t)ns.neighbors.size());
    // Too large for 32-bit marker values: hash from here on.
    if (dense && !dense_relabel_fits(hop_seeds.size, nbrs.size)) dense = false;
    // The last hop's new nodes need no assigned marks: the generation ends with the call.
    const bool mark_new = h + 1 < fanouts.size();
    Relabeled rl = dense ? relabel_marked(hop_seeds, nbrs, markers, nt, mark_new)
                         : relabel_hashed(hop_seeds, nbrs, nt);
    SampledHop& hop = hops[h];
    hop.num_dst = hop_seeds.size;
    hop.nodes = std::move(rl.nodes);
    hop.src = std::move(rl.local);
    hop.eids = std::move(ns.eids);
    hop.dst = std::move(ns.seed_of);  // a hop's seeds are the first nodes: local = seed index
  }
  return hops;
}

}  // namespace graphplat
