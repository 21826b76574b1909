// Neighbor sampling over a batch of seeds, and multi-hop sampling into block-ready arrays.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "graphplat/common.h"
#include "graphplat/csr.h"

namespace graphplat {

enum class Strategy { kUniform, kWeighted, kTopK, kFull };

// Every name parse_strategy accepts: first the canonical one of each Strategy, in enum
// order, then graph-learn's aliases ("random", "edge_weight").
struct StrategyName {
  const char* name;
  Strategy strategy;
};
const std::vector<StrategyName>& strategy_names();

// The Strategy of a name in strategy_names(); throws InvalidArgument otherwise.
Strategy parse_strategy(const std::string& name);

struct SampleOptions {
  Strategy strategy = Strategy::kUniform;
  int64_t fanout = 10;      // ignored by kFull
  bool replace = false;
  uint64_t seed = 0;
  uint64_t hop = 0;
  int num_threads = 0;
};

struct NeighborSample {
  Buffer<int64_t> counts;     // per seed
  Buffer<int64_t> neighbors;  // column indices grouped by seed
  Buffer<int64_t> eids;
  Buffer<int64_t> seed_of;    // per entry, the index of its seed (only for sample_multihop)
};

// Checks fanout/strategy against the CSR (weights present for weighted/topk). Throws.
void check_sample_options(const CSRView& csr, const SampleOptions& opt);

// positions (same length as seeds, or empty = 0..n-1) key the RNG. `delta` (optional, same
// rows, explicit eids) holds online additions: each row is sampled as the union of the
// row in csr and in delta, and delta's columns share csr's column space (may extend it).
NeighborSample sample_neighbors(const CSRView& csr, CSRCache& cache, Span<int64_t> seeds,
                                Span<int64_t> positions, const SampleOptions& opt,
                                const CSRView* delta = nullptr);

struct SampledHop {
  Buffer<int64_t> nodes;  // hop's seeds first, then new nodes by first appearance
  int64_t num_dst = 0;
  Buffer<int64_t> src, dst, eids;  // local indices into nodes; message nbr -> seed
};

// fanouts.size() hops; hop h uses RNG hop index h. csr must be square; seeds unique.
std::vector<SampledHop> sample_multihop(const CSRView& csr, CSRCache& cache,
                                        Span<int64_t> seeds,
                                        const std::vector<int64_t>& fanouts,
                                        SampleOptions opt);

}  // namespace graphplat
