// Alias tables and negative sampling.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graphplat/common.h"
#include "graphplat/csr.h"

namespace graphplat {

// Walker's alias method: O(n) build, O(1) draws.
struct AliasTable {
  std::vector<double> prob;
  std::vector<int64_t> alias;
  int64_t size() const { return static_cast<int64_t>(prob.size()); }
  template <class Rng>
  int64_t draw(Rng& rng) const {
    int64_t i = static_cast<int64_t>(rng.below(prob.size()));
    return rng.uniform() < prob[i] ? i : alias[i];
  }
};

// weights: finite, >= 0, at least one > 0. Throws InvalidArgument otherwise.
AliasTable build_alias_table(Span<double> weights);

std::vector<int64_t> alias_sample(const AliasTable& table, int64_t n, uint64_t seed,
                                  int num_threads);

enum class NegativeStrategy { kUniform, kDegree };
NegativeStrategy parse_negative_strategy(const std::string& name);

struct NegativeOptions {
  NegativeStrategy strategy = NegativeStrategy::kUniform;
  int64_t k = 1;
  bool exclude_existing = true;
  int64_t max_trials = 32;
  uint64_t seed = 0;
  int num_threads = 0;
};

struct NegativePairs {
  std::vector<int64_t> src, dst;
};

NegativePairs negative_sample(const CSRView& csr, CSRCache& cache, Span<int64_t> src,
                              const NegativeOptions& opt);

}  // namespace graphplat
