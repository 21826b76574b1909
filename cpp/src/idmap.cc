#include "graphplat/idmap.h"

#include <algorithm>
#include <limits>
#include <mutex>

#include "graphplat/parallel.h"
#include "graphplat/rng.h"

namespace graphplat {

namespace {
uint64_t capacity_for(int64_t n) {
  uint64_t cap = 16;
  while (cap < static_cast<uint64_t>(n) * 2) cap <<= 1;  // load factor <= 0.5
  return cap;
}

std::string first_ids(const std::vector<int64_t>& v, size_t k = 5) {
  std::string s;
  for (size_t i = 0; i < std::min(k, v.size()); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (v.size() > k) s += ", ...";
  return s;
}
}  // namespace

void IdMap::allocate(int64_t capacity, int num_threads) {
  capacity_ = capacity;
  mask_ = static_cast<uint64_t>(capacity) - 1;
  slots_.reset(new Slot[capacity]);
  Slot* s = slots_.get();
  parallel_for(capacity, 1 << 16, num_threads, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) s[i].value.store(kFree, std::memory_order_relaxed);
  });
}

int64_t IdMap::insert(int64_t key, int64_t index) {
  uint64_t h = mix64(static_cast<uint64_t>(key)) & mask_;
  while (true) {
    Slot& s = slots_[h];
    int64_t v = s.value.load(std::memory_order_acquire);
    if (v == kFree) {
      int64_t expected = kFree;
      if (s.value.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) {
        s.key = key;
        s.value.store(index, std::memory_order_release);
        return -1;
      }
      v = expected;
    }
    while (v == kBusy) v = s.value.load(std::memory_order_acquire);
    if (s.key == key) return v;
    h = (h + 1) & mask_;
  }
}

int64_t IdMap::find(int64_t key) const {
  uint64_t h = mix64(static_cast<uint64_t>(key)) & mask_;
  while (true) {
    const Slot& s = slots_[h];
    int64_t v = s.value.load(std::memory_order_relaxed);
    if (v == kFree) return -1;
    if (s.key == key) return v;
    h = (h + 1) & mask_;
  }
}

void IdMap::build(Span<int64_t> ids, int num_threads) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  int nt = resolve_threads(num_threads);
  identity_ = false;
  allocate(capacity_for(ids.size), nt);
  std::vector<uint8_t> dup(ids.size, 0);
  std::atomic<int64_t> ndup{0};
  parallel_for(ids.size, 4096, nt, [&](int64_t lo, int64_t hi) {
    int64_t local = 0;
    for (int64_t i = lo; i < hi; ++i)
      if (insert(ids[i], i) >= 0) {
        dup[i] = 1;
        ++local;
      }
    ndup += local;
  });
  if (ndup > 0) {
    std::vector<int64_t> d;
    for (int64_t i = 0; i < ids.size && d.size() < 6; ++i)
      if (dup[i]) d.push_back(ids[i]);
    allocate(16, 1);
    ids_.clear();
    throw InvalidArgument(cat("ids must be distinct: ", ndup, " duplicate(s), e.g. ", first_ids(d)));
  }
  ids_.assign(ids.begin(), ids.end());
  identity_ = parallel_find_first(ids.size, nt, [&](int64_t i) { return ids[i] != i; }) == ids.size;
  build_dense(nt);
}

void IdMap::build_dense(int num_threads) {
  dense_.clear();
  dense_.shrink_to_fit();
  const int64_t n = size();
  if (identity_ || n == 0 || n >= std::numeric_limits<int32_t>::max()) return;  // nothing to gain
  const auto [lo, hi] = std::minmax_element(ids_.begin(), ids_.end());
  if (*lo < 0 || *hi >= kDenseFactor * n + kDenseSlack) return;
  dense_.assign(static_cast<size_t>(*hi) + 1, -1);
  int32_t* d = dense_.data();
  const int64_t* id = ids_.data();
  parallel_for(n, 1 << 14, num_threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) d[id[i]] = static_cast<int32_t>(i);
  });
}

void IdMap::update_dense(Span<int64_t> added, bool was_identity) {
  if (identity_) return;  // still the identity: no table needed
  if (was_identity) {  // the sequence just broke: maybe a table now (one scan, once)
    build_dense(1);
    return;
  }
  if (dense_.empty()) return;  // hashed: stays so (no scan of every id on every add)
  const int64_t n = size();
  const int64_t bound = kDenseFactor * n + kDenseSlack;
  bool fits = n < std::numeric_limits<int32_t>::max();
  for (int64_t i = 0; i < added.size && fits; ++i) fits = added[i] >= 0 && added[i] < bound;
  if (!fits) {  // an id far outside: hash from now on
    dense_.clear();
    dense_.shrink_to_fit();
    return;
  }
  const int64_t first = n - added.size;
  for (int64_t i = 0; i < added.size; ++i) {
    if (added[i] >= static_cast<int64_t>(dense_.size())) dense_.resize(static_cast<size_t>(added[i]) + 1, -1);
    dense_[added[i]] = static_cast<int32_t>(first + i);
  }
}

int64_t IdMap::lookup(Span<int64_t> ids, int64_t* out, int num_threads) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  int nt = resolve_threads(num_threads);
  std::atomic<int64_t> missing{0};
  if (!slots_) {
    std::fill(out, out + ids.size, -1);
    return ids.size;
  }
  if (identity_) {
    const int64_t n = size();
    parallel_for(ids.size, 16384, nt, [&](int64_t lo, int64_t hi) {
      int64_t local = 0;
      for (int64_t i = lo; i < hi; ++i) {
        const bool in = ids[i] >= 0 && ids[i] < n;
        out[i] = in ? ids[i] : -1;
        local += !in;
      }
      missing += local;
    });
    return missing.load();
  }
  if (!dense_.empty()) {
    const int64_t m = static_cast<int64_t>(dense_.size());
    const int32_t* d = dense_.data();
    parallel_for(ids.size, 16384, nt, [&](int64_t lo, int64_t hi) {
      int64_t local = 0;
      for (int64_t i = lo; i < hi; ++i) {
        const int64_t v = ids[i] >= 0 && ids[i] < m ? d[ids[i]] : -1;
        out[i] = v;
        local += v < 0;
      }
      missing += local;
    });
    return missing.load();
  }
  // Random ids miss the cache on nearly every probe once the table outgrows it (a partition
  // of a million nodes has a 32 MB table): the slot of the id kLookahead places ahead is
  // fetched while this one is probed, so several misses are in flight at once.
  constexpr int64_t kLookahead = 16;
  const Slot* slots = slots_.get();
  parallel_for(ids.size, 4096, nt, [&](int64_t lo, int64_t hi) {
    int64_t local = 0;
    for (int64_t i = lo; i < std::min(hi, lo + kLookahead); ++i)
      __builtin_prefetch(&slots[mix64(static_cast<uint64_t>(ids[i])) & mask_]);
    for (int64_t i = lo; i < hi; ++i) {
      if (i + kLookahead < hi) __builtin_prefetch(&slots[mix64(static_cast<uint64_t>(ids[i + kLookahead])) & mask_]);
      out[i] = find(ids[i]);
      local += out[i] < 0;
    }
    missing += local;
  });
  return missing.load();
}

void IdMap::add(Span<int64_t> ids, int64_t* out) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  if (!slots_) allocate(16, 1);
  // Validate everything before changing anything: present ids and repeats in the batch.
  std::vector<int64_t> present;
  for (int64_t i = 0; i < ids.size && present.size() < 6; ++i)
    if (find(ids[i]) >= 0) present.push_back(ids[i]);
  if (!present.empty())
    throw InvalidArgument(cat("ids already present: ", first_ids(present)));
  std::vector<int64_t> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  auto it = std::adjacent_find(sorted.begin(), sorted.end());
  if (it != sorted.end())
    throw InvalidArgument(cat("ids must be distinct: ", *it, " appears more than once"));
  const int64_t n = size() + ids.size;
  ids_.reserve(n);  // no allocation can fail half-way through the inserts
  if (static_cast<uint64_t>(n) * 2 > static_cast<uint64_t>(capacity_)) {
    allocate(capacity_for(n), 1);
    for (int64_t i = 0; i < size(); ++i) insert(ids_[i], i);
  }
  const bool was_identity = identity_;
  for (int64_t i = 0; i < ids.size; ++i) identity_ = identity_ && ids[i] == size() + i;
  for (int64_t i = 0; i < ids.size; ++i) {
    int64_t index = size();
    insert(ids[i], index);
    ids_.push_back(ids[i]);
    out[i] = index;
  }
  try {
    update_dense(ids, was_identity);
  } catch (...) {  // no memory for a larger table: the hash table answers alone
    dense_.clear();
  }
}

std::vector<int64_t> IdMap::ids() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return ids_;
}

}  // namespace graphplat
