// IdMap: build, lookup with misses, add, identity detection.
#include <vector>

#include "check.h"
#include "graphplat/idmap.h"
#include "graphs.h"

using namespace graphplat;
using testing::span;

TEST_CASE(idmap_lookup_and_miss) {
  IdMap map;
  const std::vector<int64_t> ids{10, -5, 7, INT64_MAX, INT64_MIN};
  map.build(span(ids), 2);
  CHECK(map.size() == 5 && !map.is_identity());
  const std::vector<int64_t> q{7, 10, 99, INT64_MIN, -5, 8};
  std::vector<int64_t> out(q.size());
  CHECK(map.lookup(span(q), out.data(), 2) == 2);
  CHECK((out == std::vector<int64_t>{2, 0, -1, 4, 1, -1}));
  CHECK((map.ids() == ids));
}

TEST_CASE(idmap_many_ids_in_parallel) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 200000; ++i) ids.push_back(static_cast<int64_t>(mix64(i) >> 1));
  IdMap map;
  map.build(span(ids), 2);
  std::vector<int64_t> out(ids.size());
  CHECK(map.lookup(span(ids), out.data(), 2) == 0);
  bool all = true;
  for (size_t i = 0; i < out.size(); ++i) all &= out[i] == static_cast<int64_t>(i);
  CHECK(all);
}

TEST_CASE(idmap_rejects_duplicates_and_adds_atomically) {
  IdMap dup;
  const std::vector<int64_t> d{3, 4, 3};
  CHECK_THROWS(InvalidArgument, dup.build(span(d), 1), "ids must be distinct");

  IdMap map;
  const std::vector<int64_t> ids{0, 1, 2};
  map.build(span(ids), 1);
  CHECK(map.is_identity());
  const std::vector<int64_t> add_bad{5, 1};
  std::vector<int64_t> out(2);
  CHECK_THROWS(InvalidArgument, map.add(span(add_bad), out.data()), "ids already present: 1");
  CHECK(map.size() == 3);  // nothing added
  const std::vector<int64_t> add_ok{9, 3};
  map.add(span(add_ok), out.data());
  CHECK((out == std::vector<int64_t>{3, 4}));
  const std::vector<int64_t> q{3, 9};
  std::vector<int64_t> idx(2);
  CHECK(map.lookup(span(q), idx.data(), 1) == 0);
  CHECK((idx == std::vector<int64_t>{4, 3}));
}

TEST_CASE(idmap_dense_table_for_small_ids) {
  IdMap map;
  const std::vector<int64_t> ids{8, 2, 5, 0};  // small non-negative ids, not the identity
  map.build(span(ids), 2);
  CHECK(map.is_dense() && !map.is_identity());
  const std::vector<int64_t> q{5, 0, 1, -1, 9, INT64_MAX, 8};
  std::vector<int64_t> out(q.size());
  CHECK(map.lookup(span(q), out.data(), 2) == 4);
  CHECK((out == std::vector<int64_t>{2, 3, -1, -1, -1, -1, 0}));
  std::vector<int64_t> idx(1);
  const std::vector<int64_t> grow{40};  // beyond the table, inside the bound: the table grows
  map.add(span(grow), idx.data());
  CHECK(map.is_dense() && idx[0] == 4);
  const std::vector<int64_t> far{int64_t(1) << 40};  // far outside: hashing from now on
  map.add(span(far), idx.data());
  CHECK(!map.is_dense() && idx[0] == 5);
  const std::vector<int64_t> q2{40, int64_t(1) << 40, 2, 3};
  std::vector<int64_t> out2(q2.size());
  CHECK(map.lookup(span(q2), out2.data(), 1) == 1);
  CHECK((out2 == std::vector<int64_t>{4, 5, 1, -1}));
}
