#include "graphplat/walk.h"

#include <algorithm>
#include <cmath>

#include "graphplat/parallel.h"
#include "graphplat/rng.h"

namespace graphplat {

namespace {

// Second-order node2vec step from cur (came from prev): weight 1/p to return to prev, 1 to
// a common neighbor of prev, 1/q otherwise. Rejection sampling against the largest weight;
// after a bounded number of rejections fall back to an exact O(degree) draw so extreme p/q
// cannot stall a walk.
int64_t node2vec_step(const CSRView& csr, int64_t prev, int64_t cur, double p, double q,
                      CounterRng& rng) {
  const int64_t begin = csr.indptr[cur], d = csr.degree(cur);
  const double wp = 1.0 / p, wq = 1.0 / q, wmax = std::max({wp, 1.0, wq});
  auto weight = [&](int64_t x) {
    if (x == prev) return wp;
    return csr_has_edge(csr, prev, x) ? 1.0 : wq;
  };
  for (int trial = 0; trial < 64; ++trial) {
    int64_t x = csr.indices[begin + static_cast<int64_t>(rng.below(d))];
    if (rng.uniform() * wmax < weight(x)) return x;
  }
  double total = 0;
  for (int64_t i = 0; i < d; ++i) total += weight(csr.indices[begin + i]);
  double u = rng.uniform() * total;
  for (int64_t i = 0; i < d; ++i) {
    u -= weight(csr.indices[begin + i]);
    if (u < 0) return csr.indices[begin + i];
  }
  return csr.indices[begin + d - 1];
}

}  // namespace

std::vector<int64_t> random_walk(const CSRView& csr, Span<int64_t> starts, int64_t length,
                                 double p, double q, uint64_t seed, int num_threads) {
  if (csr.num_rows != csr.num_cols)
    throw InvalidArgument(cat("random_walk needs a square graph, got ", csr.num_rows, " x ",
                              csr.num_cols));
  if (length < 0 || length > (1 << 20))
    throw InvalidArgument(cat("walk length must be in [0, 2^20], got ", length));
  // Bounded so 1/p and 1/q stay finite and the rejection sampler stays well conditioned.
  if (!(p >= 1e-6 && p <= 1e6)) throw InvalidArgument(cat("p must be in [1e-6, 1e6], got ", p));
  if (!(q >= 1e-6 && q <= 1e6)) throw InvalidArgument(cat("q must be in [1e-6, 1e6], got ", q));
  const int64_t width = length + 1;
  if (starts.size > 0 && starts.size * width / width != starts.size ||
      starts.size * width > kMaxOutputEntries)
    throw InvalidArgument(cat("walk output too large: ", starts.size, " x ", width));
  const int nt = resolve_threads(num_threads);
  check_ids_in_range(starts, csr.num_rows, "starts", nt);
  const bool uniform = p == 1.0 && q == 1.0;
  std::vector<int64_t> out(starts.size * width);
  parallel_for(starts.size, 64, nt, [&](int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    CounterRng rng(seed, 0, i);
    int64_t* trace = out.data() + i * width;
    int64_t cur = starts[i], prev = -1;
    trace[0] = cur;
    int64_t step = 1;
    for (; step < width; ++step) {
      const int64_t d = csr.degree(cur);
      if (d == 0) break;
      int64_t next = (uniform || prev < 0)
                         ? csr.indices[csr.indptr[cur] + static_cast<int64_t>(rng.below(d))]
                         : node2vec_step(csr, prev, cur, p, q, rng);
      prev = cur;
      cur = next;
      trace[step] = cur;
    }
    std::fill(trace + step, trace + width, -1);
  }
  });
  return out;
}

std::vector<int64_t> metapath_walk(const std::vector<const CSRView*>& rel,
                                   Span<int64_t> starts, const std::vector<int64_t>& metapath,
                                   uint64_t seed, int num_threads) {
  if (metapath.empty()) throw InvalidArgument("metapath must hold at least one relation");
  for (size_t i = 0; i < metapath.size(); ++i)
    if (metapath[i] < 0 || metapath[i] >= static_cast<int64_t>(rel.size()))
      throw OutOfRange(cat("metapath[", i, "] = ", metapath[i], " is not a relation index in [0, ",
                           rel.size(), ")"));
  for (size_t i = 0; i + 1 < metapath.size(); ++i) {
    const CSRView* a = rel[metapath[i]];
    const CSRView* b = rel[metapath[i + 1]];
    if (a->num_cols != b->num_rows)
      throw InvalidArgument(cat("metapath does not chain: relation ", metapath[i], " ends on ",
                                a->num_cols, " nodes but relation ", metapath[i + 1],
                                " starts from ", b->num_rows));
  }
  const int64_t width = static_cast<int64_t>(metapath.size()) + 1;
  if (starts.size * width > kMaxOutputEntries)
    throw InvalidArgument(cat("walk output too large: ", starts.size, " x ", width));
  const int nt = resolve_threads(num_threads);
  check_ids_in_range(starts, rel[metapath[0]]->num_rows, "starts", nt);
  std::vector<int64_t> out(starts.size * width);
  parallel_for(starts.size, 64, nt, [&](int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    CounterRng rng(seed, 0, i);
    int64_t* trace = out.data() + i * width;
    int64_t cur = starts[i];
    trace[0] = cur;
    int64_t step = 1;
    for (; step < width; ++step) {
      const CSRView& c = *rel[metapath[step - 1]];
      const int64_t d = c.degree(cur);
      if (d == 0) break;
      cur = c.indices[c.indptr[cur] + static_cast<int64_t>(rng.below(d))];
      trace[step] = cur;
    }
    std::fill(trace + step, trace + width, -1);
  }
  });
  return out;
}

}  // namespace graphplat
