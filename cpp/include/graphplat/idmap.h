// IdMap: arbitrary int64 ids -> dense indices, an open-addressing table built in parallel.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "graphplat/common.h"

namespace graphplat {

class IdMap {
 public:
  IdMap() = default;
  // Bulk build: ids[i] -> i. Throws InvalidArgument naming duplicates.
  void build(Span<int64_t> ids, int num_threads);
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  // Index of every id, -1 where missing. Returns the number of missing ids.
  int64_t lookup(Span<int64_t> ids, int64_t* out, int num_threads) const;
  // Appends distinct new ids; throws InvalidArgument (adding nothing) if any is present
  // or repeated. Writes their indices to out.
  void add(Span<int64_t> ids, int64_t* out);
  std::vector<int64_t> ids() const;
  // Whether ids[i] == i for every index: lookups are then a range check, no hashing.
  bool is_identity() const { return identity_; }
  // Whether lookups read a direct table id -> index instead of hashing: every id is a small
  // non-negative int (in [0, kDenseFactor * size + kDenseSlack)), as in most graphs, whose
  // partitions hold a share of 0..n-1. The table (4 bytes per id value) is smaller than the
  // hash table (32 bytes per id) and fits the caches far better.
  bool is_dense() const { return !dense_.empty(); }
  static constexpr int64_t kDenseFactor = 4;
  static constexpr int64_t kDenseSlack = 1024;

 private:
  struct Slot {
    std::atomic<int64_t> value;  // index, or kFree / kBusy
    int64_t key;
  };
  static constexpr int64_t kFree = -1;
  static constexpr int64_t kBusy = -2;

  void allocate(int64_t capacity, int num_threads);
  // Returns -1 on success, otherwise the index already holding this key.
  int64_t insert(int64_t key, int64_t index);
  int64_t find(int64_t key) const;
  // Fills dense_ when the ids qualify (see is_dense), else empties it.
  void build_dense(int num_threads);
  // Keeps dense_ right after ``added`` were appended (a breaking id drops it; a hashed map
  // stays hashed, but an identity map whose sequence breaks may get a table).
  void update_dense(Span<int64_t> added, bool was_identity);

  mutable std::shared_mutex mu_;  // lookups shared, add exclusive
  std::unique_ptr<Slot[]> slots_;
  uint64_t mask_ = 0;
  int64_t capacity_ = 0;
  std::vector<int64_t> ids_;
  bool identity_ = false;
  std::vector<int32_t> dense_;  // id -> index, -1 for none (when is_dense)
};

}  // namespace graphplat
