#include "graphplat/route.h"

#include <algorithm>
#include <cstring>

#include "graphplat/parallel.h"
#include "graphplat/rng.h"

namespace graphplat {

int64_t hash_owner(int64_t id, int64_t num_partitions) {
  return static_cast<int64_t>(mix64(static_cast<uint64_t>(id)) % static_cast<uint64_t>(num_partitions));
}

namespace {
void check_num_partitions(int64_t num_partitions) {
  if (num_partitions < 1 || num_partitions > (int64_t(1) << 20))
    throw InvalidArgument(cat("num_partitions must be in [1, 2^20], got ", num_partitions));
}
}  // namespace

void hash_owners(Span<int64_t> ids, int64_t num_partitions, int64_t* out, int num_threads) {
  check_num_partitions(num_partitions);
  parallel_for(ids.size, 1 << 14, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = hash_owner(ids[i], num_partitions);
  });
}

void split_by_partition(Span<int64_t> ids, Span<int64_t> parts, int64_t num_partitions, int64_t* order,
                        int64_t* bounds, int num_threads) {
  check_num_partitions(num_partitions);
  const int64_t n = ids.size;
  if (!parts.empty() && parts.size != n)
    throw InvalidArgument(cat("parts has ", parts.size, " entries but ids has ", n));
  std::vector<int32_t> owner(static_cast<size_t>(n));
  if (parts.empty()) {
    parallel_for(n, 1 << 14, num_threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) owner[i] = static_cast<int32_t>(hash_owner(ids[i], num_partitions));
    });
  } else {
    const int64_t bad = parallel_find_first(n, num_threads, [&](int64_t i) {
      return parts[i] < 0 || parts[i] >= num_partitions;
    });
    if (bad < n)
      throw InvalidArgument(cat("parts[", bad, "] = ", parts[bad], " is outside [0, ", num_partitions, ")"));
    for (int64_t i = 0; i < n; ++i) owner[i] = static_cast<int32_t>(parts[i]);
  }
  // Stable counting sort in fixed chunks: per-chunk histograms, then each chunk scatters
  // from its own base, so the result does not depend on the thread count.
  const int64_t P = num_partitions;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(n / 8192, 64));
  std::vector<int64_t> hist(static_cast<size_t>(chunks * P), 0);
  // (each task counts and advances in its own vector: chunks' rows of hist share cache lines)
  run_tasks(chunks, num_threads, [&](int64_t c) {
    std::vector<int64_t> h(static_cast<size_t>(P), 0);
    for (int64_t i = chunk_begin(n, chunks, c), e = chunk_begin(n, chunks, c + 1); i < e; ++i) ++h[owner[i]];
    std::copy(h.begin(), h.end(), hist.begin() + c * P);
  });
  int64_t acc = 0;
  for (int64_t p = 0; p < P; ++p) {
    bounds[p] = acc;
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t k = hist[c * P + p];
      hist[c * P + p] = acc;
      acc += k;
    }
  }
  bounds[P] = acc;
  run_tasks(chunks, num_threads, [&](int64_t c) {
    std::vector<int64_t> next(hist.begin() + c * P, hist.begin() + (c + 1) * P);
    for (int64_t i = chunk_begin(n, chunks, c), e = chunk_begin(n, chunks, c + 1); i < e; ++i)
      order[next[owner[i]]++] = i;
  });
}

int64_t check_sample_parts(int64_t num_seeds, const std::vector<SamplePart>& parts) {
  if (num_seeds < 0) throw InvalidArgument(cat("num_seeds must be >= 0, got ", num_seeds));
  std::vector<uint8_t> seen(static_cast<size_t>(num_seeds), 0);
  int64_t covered = 0, total = 0;
  for (size_t k = 0; k < parts.size(); ++k) {
    const SamplePart& p = parts[k];
    if (p.counts.size != p.positions.size)
      throw InvalidArgument(cat("part ", k, ": ", p.counts.size, " counts for ", p.positions.size, " positions"));
    if (p.eids.size != p.neighbors.size)
      throw InvalidArgument(cat("part ", k, ": ", p.eids.size, " eids for ", p.neighbors.size, " neighbors"));
    int64_t edges = 0;
    for (int64_t i = 0; i < p.positions.size; ++i) {
      const int64_t pos = p.positions[i], c = p.counts[i];
      if (pos < 0 || pos >= num_seeds)
        throw OutOfRange(cat("part ", k, ": position ", pos, " is outside [0, ", num_seeds, ")"));
      if (seen[pos]) throw InvalidArgument(cat("part ", k, ": position ", pos, " is answered twice"));
      seen[pos] = 1;
      if (c < 0 || c > p.neighbors.size - edges)
        throw InvalidArgument(cat("part ", k, ": counts do not match its ", p.neighbors.size, " neighbors"));
      edges += c;
    }
    if (edges != p.neighbors.size)
      throw InvalidArgument(cat("part ", k, ": counts sum to ", edges, " but it has ", p.neighbors.size,
                                " neighbors"));
    covered += p.positions.size;
    total += edges;
  }
  if (covered != num_seeds)
    throw InvalidArgument(cat("the parts answer ", covered, " of ", num_seeds, " positions"));
  return total;
}

void merge_sample_parts(int64_t num_seeds, const std::vector<SamplePart>& parts, int64_t* counts,
                        int64_t* neighbors, int64_t* eids, int num_threads) {
  for (const SamplePart& p : parts)
    for (int64_t i = 0; i < p.positions.size; ++i) counts[p.positions[i]] = p.counts[i];
  std::vector<int64_t> offsets(static_cast<size_t>(num_seeds) + 1);
  exclusive_scan(counts, num_seeds, offsets.data(), num_threads);
  for (const SamplePart& p : parts) {
    std::vector<int64_t> local(static_cast<size_t>(p.positions.size) + 1);
    exclusive_scan(p.counts.data, p.positions.size, local.data(), num_threads);
    parallel_for(p.positions.size, 1024, num_threads, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const int64_t at = offsets[p.positions[i]], from = local[i];
        const size_t bytes = static_cast<size_t>(p.counts[i]) * sizeof(int64_t);
        std::memcpy(neighbors + at, p.neighbors.data + from, bytes);
        std::memcpy(eids + at, p.eids.data + from, bytes);
      }
    });
  }
}

}  // namespace graphplat
