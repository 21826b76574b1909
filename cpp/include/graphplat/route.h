// Routing a batch over partitions: splitting ids by owning partition, and merging the
// per-partition answers of a sampling hop back into the batch's order. RoutedGraph calls
// both on every hop; in numpy they cost about 3.5 ms per batch of the co-located loader.
#pragma once
#include <cstdint>
#include <vector>

#include "graphplat/common.h"

namespace graphplat {

// Owner of id under PartitionBook's hash: splitmix64(id) mod num_partitions.
int64_t hash_owner(int64_t id, int64_t num_partitions);

// out[i] = hash_owner(ids[i], num_partitions), in parallel (InvalidArgument for
// num_partitions outside [1, 2^20]).
void hash_owners(Span<int64_t> ids, int64_t num_partitions, int64_t* out, int num_threads);

// Groups the positions [0, n) of a batch by partition, stably: order[bounds[p]:bounds[p+1]]
// are the positions partition p owns, ascending. The partition of position i is parts[i]
// when parts is non-empty (InvalidArgument for one outside [0, num_partitions); parts.size
// must be n), else hash_owner(ids[i]). order has n entries, bounds num_partitions + 1.
void split_by_partition(Span<int64_t> ids, Span<int64_t> parts, int64_t num_partitions, int64_t* order,
                        int64_t* bounds, int num_threads);

// One partition's answer to a sampling hop: the batch positions of its seeds, their
// neighbor counts, and the sampled neighbors and edge ids, seed by seed.
struct SamplePart {
  Span<int64_t> positions, counts, neighbors, eids;
};

// Checks parts against a batch of num_seeds seeds (every position in exactly one part,
// counts >= 0 and summing to the part's neighbors, eids as long as neighbors) and returns
// the merged number of edges; InvalidArgument/OutOfRange naming the first problem.
int64_t check_sample_parts(int64_t num_seeds, const std::vector<SamplePart>& parts);

// Writes the parts in batch order: counts (num_seeds), neighbors and eids (the total of
// check_sample_parts, which must have passed). O(seeds + edges), parallel.
void merge_sample_parts(int64_t num_seeds, const std::vector<SamplePart>& parts, int64_t* counts,
                        int64_t* neighbors, int64_t* eids, int num_threads);

}  // namespace graphplat
