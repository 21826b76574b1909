// Random walks: uniform, node2vec (p, q) and metapath over typed adjacencies.
#pragma once

#include <cstdint>
#include <vector>

#include "graphplat/common.h"
#include "graphplat/csr.h"

namespace graphplat {

// Row-major (starts.size, length + 1) traces, -1 after a dead end.
std::vector<int64_t> random_walk(const CSRView& csr, Span<int64_t> starts, int64_t length,
                                 double p, double q, uint64_t seed, int num_threads);

std::vector<int64_t> metapath_walk(const std::vector<const CSRView*>& relations,
                                   Span<int64_t> starts, const std::vector<int64_t>& metapath,
                                   uint64_t seed, int num_threads);

}  // namespace graphplat
