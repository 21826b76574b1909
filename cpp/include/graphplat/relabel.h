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

// Dense markers: one 32-bit word per node id, a generation stamp in the top
// kMarkerStampBits bits and a value below. A word whose stamp differs from `stamp` reads
// as empty, so starting a new generation empties every marker at once: a batch never pays
// for clearing the markers it touched (MarkerPool hands out a fresh generation with every
// lease, and zeroes an array once all its stamps are used). Words stay 32-bit because
// marking is bound by how many cache lines the markers of a batch cover.
constexpr int kMarkerStampBits = 6;
constexpr int kMarkerValueBits = 32 - kMarkerStampBits;
constexpr uint32_t kMarkerGenerations = (uint32_t(1) << kMarkerStampBits) - 1;  // stamps 1..63

// Dense relabeling takes ids below 2^kMaxDenseIdBits (a marker array that large could not
// be allocated anyway); larger id spaces use the hash variant.
constexpr int kMaxDenseIdBits = 39;
constexpr int64_t kMaxDenseIds = int64_t(1) << kMaxDenseIdBits;

struct MarkerView {
  uint32_t* words = nullptr;
  uint32_t stamp = 0;  // generation << kMarkerValueBits, never 0 (fresh memory is stamp 0)
};

// Dense variant: ids in [0, markers' size), markers of a fresh generation. Throws
// InvalidArgument on duplicate seeds. Falls back to the hash variant when the batch is too
// large for the markers' values (dense_relabel_fits).
Relabeled relabel_dense(Span<int64_t> seeds, Span<int64_t> neighbors, MarkerView markers,
                        int num_threads);
bool dense_relabel_fits(int64_t num_seeds, int64_t num_neighbors);

// The steps of relabel_dense, for callers that relabel several hops with the same markers
// (the seeds of hop h+1 are the nodes of hop h, so they stay marked in between):
// mark_seeds marks seeds[i] as assigned index i (InvalidArgument on a repeated seed; the
// generation is then spoiled and must not be reused); relabel_marked relabels neighbors
// against seeds that are already marked, and with mark_new marks the new nodes too
// (otherwise they hold entry positions, and the generation must end with the call).
void mark_seeds(Span<int64_t> seeds, MarkerView markers, int num_threads);
Relabeled relabel_marked(Span<int64_t> seeds, Span<int64_t> neighbors, MarkerView markers,
                         int num_threads, bool mark_new);

// Hash variant for arbitrary int64 ids.
Relabeled relabel_hashed(Span<int64_t> seeds, Span<int64_t> neighbors, int num_threads);

}  // namespace graphplat
