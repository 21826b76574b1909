// Unique-and-relabel: turn global neighbor ids into local block indices, in parallel and
// deterministically (seeds first in their order, then new ids by first appearance).
#pragma once

#include <cstdint>
#include <vector>

#include "graphplat/common.h"

namespace graphplat {

struct Relabeled {
  Buffer<int64_t> nodes;  // unique: seeds, then new neighbors
  Buffer<int64_t> local;  // local index of every neighbor entry
};

// Dense variant: ids in [0, markers' size); markers must all hold kMarkerEmpty on entry
// and are left so on exit. Throws InvalidArgument on duplicate seeds. Falls back to the
// hash variant when the batch is too large for 32-bit markers.
Relabeled relabel_dense(Span<int64_t> seeds, Span<int64_t> neighbors, int32_t* markers,
                        int num_threads);
bool dense_relabel_fits(int64_t num_seeds, int64_t num_neighbors);

// Hash variant for arbitrary int64 ids.
Relabeled relabel_hashed(Span<int64_t> seeds, Span<int64_t> neighbors, int num_threads);

// The "empty" marker value dense markers must hold between uses.
constexpr int32_t kMarkerEmpty = INT32_MAX;

}  // namespace graphplat
