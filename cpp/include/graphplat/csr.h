// Compressed sparse rows over caller-owned arrays, plus the caches samplers build lazily.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "graphplat/common.h"
#include "graphplat/relabel.h"

namespace graphplat {

struct AliasTable;

// Row r's entries are indices[indptr[r] .. indptr[r+1]). Used as CSR (rows = sources) or
// CSC (rows = destinations). weights/eids may be null; a null eids means "edge id =
// position in indices".
struct CSRView {
  int64_t num_rows = 0;
  int64_t num_cols = 0;
  int64_t nnz = 0;
  const int64_t* indptr = nullptr;
  const int64_t* indices = nullptr;
  const float* weights = nullptr;
  const int64_t* eids = nullptr;
  // Explicit edge ids that are consecutive (eids[i] == eid_offset + i, e.g. a store that
  // numbers edges in CSC order) are kept as this offset, and eids is null: a sampler then
  // skips one random read per sampled edge.
  int64_t eid_offset = 0;
  bool explicit_eids = false;  // eids (or eid_offset) came from the caller
  bool rows_sorted = false;

  int64_t degree(int64_t row) const { return indptr[row + 1] - indptr[row]; }
  int64_t edge_id(int64_t pos) const { return eids ? eids[pos] : pos + eid_offset; }
};

// Validates the arrays and fills rows_sorted (and eid_offset, see above). Throws InvalidArgument / OutOfRange naming
// the problem (non-monotone indptr, index out of range, bad weight, length mismatch).
void validate_csr(CSRView& csr, int64_t indptr_len, int64_t weights_len, int64_t eids_len,
                  int num_threads);

// Whether col is an entry of row (binary search on sorted rows, scan otherwise).
bool csr_has_edge(const CSRView& csr, int64_t row, int64_t col);

// Owned arrays of a transposed matrix (rows sorted within each row, eids carried).
struct CSRArrays {
  std::vector<int64_t> indptr, indices, eids;
  std::vector<float> weights;
};
CSRArrays transpose_csr(const CSRView& csr, int num_threads);

std::vector<int64_t> column_degrees(const CSRView& csr, int num_threads);

// Reusable marker arrays for dense unique-and-relabel (see MarkerView in relabel.h). Each
// lease starts a new generation of its array, which empties all markers without touching
// them, so a batch only pays for the entries it marks; concurrent calls get separate arrays.
class MarkerPool {
  struct Array {
    std::unique_ptr<uint32_t, void (*)(void*)> words{nullptr, std::free};
    uint32_t generation = 0;
  };

 public:
  // One array and generation for the lease's lifetime; back to the pool on destruction,
  // also after an exception (a spoiled generation is never reused).
  class Lease {
   public:
    Lease(MarkerPool* pool, Array a) : pool_(pool), array_(std::move(a)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (pool_ && array_.words) pool_->release(std::move(array_));
    }
    MarkerView view() const { return {array_.words.get(), array_.generation << kMarkerValueBits}; }

   private:
    MarkerPool* pool_;
    Array array_;
  };

  explicit MarkerPool(int64_t num_nodes) : num_nodes_(num_nodes) {}
  Lease acquire();
  int64_t num_nodes() const { return num_nodes_; }

 private:
  void release(Array a);
  int64_t num_nodes_;
  std::mutex mu_;
  std::vector<Array> free_;
};

// Lazily built, thread-safe derived data of one CSR.
struct CSRCache {
  std::mutex mu;
  std::vector<int64_t> col_degrees;
  bool has_col_degrees = false;
  std::shared_ptr<AliasTable> degree_alias;   // P(col) ~ col_degree^0.75
  std::vector<double> weight_cumsum;          // per-row inclusive prefix sums of weights
  std::vector<int64_t> row_positive;          // per-row count of weights > 0
  bool has_weight_cumsum = false;
  std::unique_ptr<MarkerPool> markers;

  const std::vector<int64_t>& get_col_degrees(const CSRView& csr, int num_threads);
  std::shared_ptr<AliasTable> get_degree_alias(const CSRView& csr, int num_threads);
  void ensure_weight_cumsum(const CSRView& csr, int num_threads);
  MarkerPool& get_markers(int64_t num_nodes);
};

}  // namespace graphplat
