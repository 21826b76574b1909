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

// The steps of relabel_dense, for callers that relabel several hops with the same markers
// (the seeds of hop h+1 are the nodes of hop h, so they stay marked in between):
// mark_seeds marks seeds[i] as assigned index i (InvalidArgument on a repeated seed, with
// the seeds' markers cleared again); relabel_marked relabels neighbors against seeds that
// are already marked, and with mark_new marks the new nodes too (otherwise they hold
// positions until clear_marks); clear_marks empties the markers of the given ids.
void mark_seeds(Span<int64_t> seeds, int32_t* markers, int num_threads);
Relabeled relabel_marked(Span<int64_t> seeds, Span<int64_t> neighbors, int32_t* markers,
                         int num_threads, bool mark_new);
void clear_marks(Span<int64_t> nodes, int32_t* markers, int num_threads);

// Hash variant for arbitrary int64 ids.
Relabeled relabel_hashed(Span<int64_t> seeds, Span<int64_t> neighbors, int num_threads);

// The "empty" marker value dense markers must hold between uses.
constexpr int32_t kMarkerEmpty = INT32_MAX;

}  // namespace graphplat
