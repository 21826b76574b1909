// Unique-and-relabel: turn global neighbor ids into local block indices, in parallel and
// deterministically (seeds first in their order, then new ids by first appearance).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "graphplat/common.h"

namespace graphplat {

struct Relabeled {
  std::vector<int64_t> nodes;  // unique: seeds, then new neighbors
  std::vector<int64_t> local;  // local index of every neighbor entry
};

// Dense variant: ids in [0, markers' size); markers must be all "empty" on entry and are
// left so on exit. Throws InvalidArgument on duplicate seeds.
Relabeled relabel_dense(Span<int64_t> seeds, Span<int64_t> neighbors,
                        std::atomic<int64_t>* markers, int num_threads);

// Hash variant for arbitrary int64 ids.
Relabeled relabel_hashed(Span<int64_t> seeds, Span<int64_t> neighbors, int num_threads);

// The "empty" marker value dense markers must hold between uses.
constexpr int64_t kMarkerEmpty = (int64_t(1) << 62) - 1;

}  // namespace graphplat
