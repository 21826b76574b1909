#include "graphplat/csr.h"

#include <algorithm>
#include <cmath>

#include "graphplat/negative.h"
#include "graphplat/parallel.h"
#include "graphplat/relabel.h"

namespace graphplat {

void validate_csr(CSRView& csr, int64_t indptr_len, int64_t weights_len, int64_t eids_len,
                  int num_threads) {
  if (indptr_len < 1) throw InvalidArgument("indptr must have at least one entry (num_rows + 1)");
  csr.num_rows = indptr_len - 1;
  if (csr.num_cols < 0) throw InvalidArgument(cat("num_cols must be >= 0, got ", csr.num_cols));
  if (csr.indptr[0] != 0) throw InvalidArgument(cat("indptr[0] must be 0, got ", csr.indptr[0]));
  if (csr.indptr[csr.num_rows] != csr.nnz)
    throw InvalidArgument(cat("indptr[-1] = ", csr.indptr[csr.num_rows],
                              " must equal len(indices) = ", csr.nnz));
  if (csr.weights && weights_len != csr.nnz)
    throw InvalidArgument(cat("weights has ", weights_len, " entries, indices has ", csr.nnz));
  if (csr.eids && eids_len != csr.nnz)
    throw InvalidArgument(cat("eids has ", eids_len, " entries, indices has ", csr.nnz));

  // One parallel pass over rows: monotone indptr first (so row ranges are safe to read).
  const int64_t r = parallel_find_first(csr.num_rows, num_threads, [&](int64_t k) {
    return csr.indptr[k + 1] < csr.indptr[k];
  });
  if (r < csr.num_rows) {
    throw InvalidArgument(cat("indptr must be non-decreasing: indptr[", r + 1, "] = ",
                              csr.indptr[r + 1], " < indptr[", r, "] = ", csr.indptr[r]));
  }
  check_ids_in_range(make_span(csr.indices, csr.nnz), csr.num_cols, "indices", num_threads);
  csr.explicit_eids = csr.eids != nullptr;
  if (csr.eids && csr.nnz > 0 && csr.eids[0] <= INT64_MAX - csr.nnz) {
    const int64_t base = csr.eids[0];
    const int64_t* eids = csr.eids;
    if (parallel_find_first(csr.nnz, num_threads, [&](int64_t k) { return eids[k] != base + k; }) == csr.nnz) {
      csr.eid_offset = base;
      csr.eids = nullptr;
    }
  }
  if (csr.weights) {
    const int64_t i = parallel_find_first(csr.nnz, num_threads, [&](int64_t k) {
      return !(std::isfinite(csr.weights[k]) && csr.weights[k] >= 0.0f);
    });
    if (i < csr.nnz) {
      throw InvalidArgument(cat("weights must be finite and >= 0: weights[", i, "] = ",
                                csr.weights[i]));
    }
  }
  csr.rows_sorted = parallel_find_first(csr.num_rows, num_threads, [&](int64_t k) {
    for (int64_t e = csr.indptr[k] + 1; e < csr.indptr[k + 1]; ++e)
      if (csr.indices[e] < csr.indices[e - 1]) return true;
    return false;
  }) == csr.num_rows;
}

bool csr_has_edge(const CSRView& csr, int64_t row, int64_t col) {
  const int64_t* b = csr.indices + csr.indptr[row];
  const int64_t* e = csr.indices + csr.indptr[row + 1];
  if (csr.rows_sorted) return std::binary_search(b, e, col);
  return std::find(b, e, col) != e;
}

std::vector<int64_t> column_degrees(const CSRView& csr, int num_threads) {
  // Per-thread histograms over contiguous chunks: no atomics on the hot path.
  int t = std::max(1, std::min<int>(num_threads, csr.nnz / (1 << 16) + 1));
  std::vector<std::vector<int64_t>> local(t);
  run_tasks(t, t, [&](int64_t id) {
    std::vector<int64_t>& h = local[id];
    h.assign(csr.num_cols, 0);
    for (int64_t i = chunk_begin(csr.nnz, t, id), i_end = chunk_begin(csr.nnz, t, id + 1); i < i_end; ++i)
      ++h[csr.indices[i]];
  });
  for (int k = 1; k < t; ++k)
    for (int64_t c = 0; c < csr.num_cols; ++c) local[0][c] += local[k][c];
  return std::move(local[0]);
}

CSRArrays transpose_csr(const CSRView& csr, int num_threads) {
  // Counting sort by column, rows split in t contiguous chunks; chunk k's entries of a
  // column precede chunk k+1's, so rows stay ascending inside every transposed row.
  int t = std::max(1, std::min<int>(num_threads, csr.nnz / (1 << 18) + 1));
  const int64_t n = csr.num_rows, m = csr.num_cols;
  std::vector<int64_t> row_lo(t + 1);
  for (int k = 0; k <= t; ++k) {
    // Balance chunks by edges, not rows.
    int64_t target = csr.nnz * k / t;
    row_lo[k] = std::upper_bound(csr.indptr, csr.indptr + n + 1, target) - csr.indptr - 1;
    if (k == 0) row_lo[k] = 0;
    if (k == t) row_lo[k] = n;
  }
  for (int k = 1; k <= t; ++k) row_lo[k] = std::max(row_lo[k], row_lo[k - 1]);
  std::vector<std::vector<int64_t>> cnt(t, std::vector<int64_t>());
  run_tasks(t, t, [&](int64_t id) {
    cnt[id].assign(m, 0);
    for (int64_t r = row_lo[id]; r < row_lo[id + 1]; ++r)
      for (int64_t e = csr.indptr[r]; e < csr.indptr[r + 1]; ++e) ++cnt[id][csr.indices[e]];
  });
  CSRArrays out;
  out.indptr.assign(m + 1, 0);
  out.indices.resize(csr.nnz);
  out.eids.resize(csr.nnz);
  if (csr.weights) out.weights.resize(csr.nnz);
  // cursor[k][c] = where chunk k writes its next entry of column c.
  int64_t acc = 0;
  for (int64_t c = 0; c < m; ++c) {
    out.indptr[c] = acc;
    for (int k = 0; k < t; ++k) {
      int64_t v = cnt[k][c];
      cnt[k][c] = acc;
      acc += v;
    }
  }
  out.indptr[m] = acc;
  run_tasks(t, t, [&](int64_t id) {
    std::vector<int64_t>& cur = cnt[id];
    for (int64_t r = row_lo[id]; r < row_lo[id + 1]; ++r)
      for (int64_t e = csr.indptr[r]; e < csr.indptr[r + 1]; ++e) {
        int64_t pos = cur[csr.indices[e]]++;
        out.indices[pos] = r;
        out.eids[pos] = csr.edge_id(e);
        if (csr.weights) out.weights[pos] = csr.weights[e];
      }
  });
  return out;
}

MarkerPool::Lease MarkerPool::acquire() {
  Array a;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      a = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!a.words) {
    // calloc: zero pages are mapped lazily, and zero is stamp 0, which no lease uses.
    void* p = std::calloc(std::max<int64_t>(num_nodes_, 1), sizeof(uint32_t));
    if (!p) throw std::bad_alloc();
    a.words.reset(static_cast<uint32_t*>(p));
  }
  if (++a.generation > kMarkerGenerations) {  // every stamp used: they would repeat
    std::fill(a.words.get(), a.words.get() + num_nodes_, uint32_t(0));
    a.generation = 1;
  }
  return Lease(this, std::move(a));
}

void MarkerPool::release(Array a) {
  std::lock_guard<std::mutex> lock(mu_);
  // Keep a few; concurrent callers beyond that allocate (rare).
  if (free_.size() < 4) free_.push_back(std::move(a));
}

const std::vector<int64_t>& CSRCache::get_col_degrees(const CSRView& csr, int num_threads) {
  std::lock_guard<std::mutex> lock(mu);
  if (!has_col_degrees) {
    col_degrees = column_degrees(csr, num_threads);
    has_col_degrees = true;
  }
  return col_degrees;
}

std::shared_ptr<AliasTable> CSRCache::get_degree_alias(const CSRView& csr, int num_threads) {
  const std::vector<int64_t>& deg = get_col_degrees(csr, num_threads);
  std::lock_guard<std::mutex> lock(mu);
  if (!degree_alias) {
    std::vector<double> w(deg.size());
    for (size_t i = 0; i < deg.size(); ++i) w[i] = std::pow(static_cast<double>(deg[i]), 0.75);
    degree_alias = std::make_shared<AliasTable>(build_alias_table(make_span(w.data(), (int64_t)w.size())));
  }
  return degree_alias;
}

void CSRCache::ensure_weight_cumsum(const CSRView& csr, int num_threads) {
  std::lock_guard<std::mutex> lock(mu);
  if (has_weight_cumsum) return;
  weight_cumsum.resize(csr.nnz);
  row_positive.resize(csr.num_rows);
  parallel_for(csr.num_rows, 1024, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      double acc = 0;
      int64_t pos = 0;
      for (int64_t e = csr.indptr[r]; e < csr.indptr[r + 1]; ++e) {
        acc += csr.weights[e];
        pos += csr.weights[e] > 0.0f;
        weight_cumsum[e] = acc;
      }
      row_positive[r] = pos;
    }
  });
  has_weight_cumsum = true;
}

MarkerPool& CSRCache::get_markers(int64_t num_nodes) {
  std::lock_guard<std::mutex> lock(mu);
  if (!markers) markers.reset(new MarkerPool(num_nodes));
  return *markers;
}

}  // namespace graphplat
