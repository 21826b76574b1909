#include "graphplat/negative.h"

#include <cmath>

#include "graphplat/parallel.h"
#include "graphplat/rng.h"

namespace graphplat {

AliasTable build_alias_table(Span<double> weights) {
  const int64_t n = weights.size;
  if (n == 0) throw InvalidArgument("alias table weights must not be empty");
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double w = weights[i];
    if (!(std::isfinite(w) && w >= 0))
      throw InvalidArgument(cat("alias table weights must be finite and >= 0: weights[", i,
                                "] = ", w));
    total += w;
  }
  if (!(total > 0) || !std::isfinite(total))
    throw InvalidArgument("alias table weights must have a positive, finite sum");
  AliasTable t;
  t.prob.resize(n);
  t.alias.resize(n);
  std::vector<int64_t> small, large;
  std::vector<double> scaled(n);
  for (int64_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * n / total;
    (scaled[i] < 1.0 ? small : large).push_back(i);
  }
  while (!small.empty() && !large.empty()) {
    int64_t s = small.back(), l = large.back();
    small.pop_back();
    t.prob[s] = scaled[s];
    t.alias[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // Leftovers are 1 up to rounding.
  for (int64_t i : large) t.prob[i] = 1.0, t.alias[i] = i;
  for (int64_t i : small) t.prob[i] = 1.0, t.alias[i] = i;
  return t;
}

std::vector<int64_t> alias_sample(const AliasTable& table, int64_t n, uint64_t seed,
                                  int num_threads) {
  if (n < 0) throw InvalidArgument(cat("number of draws must be >= 0, got ", n));
  if (n > kMaxOutputEntries) throw InvalidArgument(cat("too many draws requested: ", n));
  int nt = resolve_threads(num_threads);
  std::vector<int64_t> out(n);
  parallel_for(n, 4096, nt, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      CounterRng rng(seed, 0, i);
      out[i] = table.draw(rng);
    }
  });
  return out;
}

NegativeStrategy parse_negative_strategy(const std::string& name) {
  if (name == "uniform" || name == "random") return NegativeStrategy::kUniform;
  if (name == "degree" || name == "in_degree") return NegativeStrategy::kDegree;
  throw InvalidArgument(cat("unknown negative sampling strategy '", name,
                            "': expected uniform or degree"));
}

NegativePairs negative_sample(const CSRView& csr, CSRCache& cache, Span<int64_t> src,
                              const NegativeOptions& opt) {
  if (opt.k < 1 || opt.k > kMaxFanout)
    throw InvalidArgument(cat("k (negatives per source) must be in [1, ", kMaxFanout, "], got ", opt.k));
  if (opt.max_trials < 1 || opt.max_trials > 1 << 20)
    throw InvalidArgument(cat("max_trials must be in [1, 2^20], got ", opt.max_trials));
  if (csr.num_cols == 0) throw InvalidArgument("cannot draw negatives: the graph has no columns");
  const int64_t total = src.size * opt.k;
  if (src.size > 0 && total / opt.k != src.size || total > kMaxOutputEntries)
    throw InvalidArgument(cat("too many negatives requested: ", src.size, " x ", opt.k));
  const int nt = resolve_threads(opt.num_threads);
  check_ids_in_range(src, csr.num_rows, "src", nt);
  std::shared_ptr<AliasTable> alias;
  if (opt.strategy == NegativeStrategy::kDegree) {
    alias = cache.get_degree_alias(csr, nt);
  }
  std::vector<int64_t> dst(total);
  std::vector<uint8_t> ok(total);
  parallel_for(total, 1024, nt, [&](int64_t lo, int64_t hi) {
  for (int64_t j = lo; j < hi; ++j) {
    const int64_t s = src[j / opt.k];
    CounterRng rng(opt.seed, 0, j);
    int64_t c = -1;
    bool good = false;
    for (int64_t t = 0; t < opt.max_trials && !good; ++t) {
      c = alias ? alias->draw(rng) : static_cast<int64_t>(rng.below(csr.num_cols));
      good = !opt.exclude_existing || !csr_has_edge(csr, s, c);
    }
    dst[j] = c;
    ok[j] = good;
  }
  });
  NegativePairs out;
  out.src.reserve(total);
  out.dst.reserve(total);
  for (int64_t j = 0; j < total; ++j)
    if (ok[j]) {
      out.src.push_back(src[j / opt.k]);
      out.dst.push_back(dst[j]);
    }
  return out;
}

}  // namespace graphplat
