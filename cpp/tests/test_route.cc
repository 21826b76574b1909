// split_by_partition and hash_owners against a plain per-id loop; merge_sample_parts putting
// two partitions' answers back in batch order; all rejecting inconsistent input before
// writing anything.
#include <vector>

#include "check.h"
#include "graphplat/route.h"

using namespace graphplat;

namespace {

Span<int64_t> span_of(const std::vector<int64_t>& v) { return make_span(v.data(), static_cast<int64_t>(v.size())); }

}  // namespace

TEST_CASE(split_by_partition_is_a_stable_grouping_by_hash_owner) {
  for (int64_t P : {1, 2, 3, 8}) {
    for (int threads : {1, 2}) {
      std::vector<int64_t> ids;
      for (int64_t i = 0; i < 40000; ++i) ids.push_back((i * 7919) % 100003 - 50);
      std::vector<int64_t> order(ids.size()), bounds(P + 1);
      split_by_partition(span_of(ids), Span<int64_t>{}, P, order.data(), bounds.data(), threads);
      std::vector<int64_t> expect;
      for (int64_t p = 0; p < P; ++p) {
        CHECK(bounds[p] == static_cast<int64_t>(expect.size()));
        for (size_t i = 0; i < ids.size(); ++i)
          if (hash_owner(ids[i], P) == p) expect.push_back(static_cast<int64_t>(i));
      }
      CHECK(bounds[P] == static_cast<int64_t>(ids.size()));
      CHECK(order == expect);
    }
  }
}

TEST_CASE(split_by_partition_takes_given_parts_and_rejects_bad_ones) {
  std::vector<int64_t> ids = {10, 11, 12, 13}, parts = {2, 0, 2, 1}, order(4), bounds(4);
  split_by_partition(span_of(ids), span_of(parts), 3, order.data(), bounds.data(), 1);
  CHECK((order == std::vector<int64_t>{1, 3, 0, 2}));
  CHECK((bounds == std::vector<int64_t>{0, 1, 2, 4}));
  std::vector<int64_t> bad = {0, 3, 0, 0};
  CHECK_THROWS(InvalidArgument, split_by_partition(span_of(ids), span_of(bad), 3, order.data(), bounds.data(), 1), "outside [0, 3)");
  std::vector<int64_t> short_parts = {0};
  CHECK_THROWS(InvalidArgument,
               split_by_partition(span_of(ids), span_of(short_parts), 3, order.data(), bounds.data(), 1), "parts has 1");
  CHECK_THROWS(InvalidArgument, split_by_partition(span_of(ids), Span<int64_t>{}, 0, order.data(), bounds.data(), 1), "num_partitions");
}

TEST_CASE(hash_owners_is_hash_owner_per_id_and_checks_the_partition_count) {
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 50000; ++i) ids.push_back(i * 1000003 - 7);
  for (int64_t P : {1, 2, 5}) {
    for (int threads : {1, 2}) {
      std::vector<int64_t> out(ids.size(), -1);
      hash_owners(span_of(ids), P, out.data(), threads);
      for (size_t i = 0; i < ids.size(); ++i) CHECK(out[i] == hash_owner(ids[i], P));
    }
  }
  std::vector<int64_t> out(ids.size(), -1);
  CHECK_THROWS(InvalidArgument, hash_owners(span_of(ids), 0, out.data(), 1), "num_partitions");
  CHECK_THROWS(InvalidArgument, hash_owners(span_of(ids), (int64_t(1) << 20) + 1, out.data(), 1), "num_partitions");
  CHECK(out[0] == -1);  // nothing written
}

TEST_CASE(merge_sample_parts_restores_batch_order) {
  // batch of 5 seeds: partition A answers positions 0, 3; B answers 1, 2, 4
  std::vector<int64_t> pa = {0, 3}, ca = {2, 1}, na = {100, 101, 130}, ea = {1, 2, 3};
  std::vector<int64_t> pb = {1, 2, 4}, cb = {0, 3, 1}, nb = {120, 121, 122, 140}, eb = {4, 5, 6, 7};
  std::vector<SamplePart> parts = {{span_of(pa), span_of(ca), span_of(na), span_of(ea)},
                                   {span_of(pb), span_of(cb), span_of(nb), span_of(eb)}};
  CHECK(check_sample_parts(5, parts) == 7);
  for (int threads : {1, 2}) {
    std::vector<int64_t> counts(5), nbrs(7), eids(7);
    merge_sample_parts(5, parts, counts.data(), nbrs.data(), eids.data(), threads);
    CHECK((counts == std::vector<int64_t>{2, 0, 3, 1, 1}));
    CHECK((nbrs == std::vector<int64_t>{100, 101, 120, 121, 122, 130, 140}));
    CHECK((eids == std::vector<int64_t>{1, 2, 4, 5, 6, 3, 7}));
  }
}

TEST_CASE(check_sample_parts_rejects_inconsistent_parts) {
  std::vector<int64_t> p = {0, 1}, c = {1, 1}, n = {5, 6}, e = {7, 8};
  auto one = [&](std::vector<int64_t>& pos, std::vector<int64_t>& cnt, std::vector<int64_t>& nb,
                 std::vector<int64_t>& ed) {
    return std::vector<SamplePart>{{span_of(pos), span_of(cnt), span_of(nb), span_of(ed)}};
  };
  CHECK(check_sample_parts(2, one(p, c, n, e)) == 2);
  std::vector<int64_t> dup = {1, 1}, far = {0, 2}, neg = {-1, 3}, big = {1, 5}, short_e = {7};
  CHECK_THROWS(InvalidArgument, check_sample_parts(2, one(dup, c, n, e)), "twice");   // answered twice
  CHECK_THROWS(OutOfRange, check_sample_parts(2, one(far, c, n, e)), "outside [0, 2)");        // outside the batch
  CHECK_THROWS(InvalidArgument, check_sample_parts(3, one(p, c, n, e)), "2 of 3");     // a seed unanswered
  CHECK_THROWS(InvalidArgument, check_sample_parts(2, one(p, neg, n, e)), "counts do not match");   // negative count
  CHECK_THROWS(InvalidArgument, check_sample_parts(2, one(p, big, n, e)), "counts do not match");   // counts past neighbors
  CHECK_THROWS(InvalidArgument, check_sample_parts(2, one(p, c, n, short_e)), "1 eids");  // eids short
  CHECK_THROWS(InvalidArgument, check_sample_parts(-1, {}), "num_seeds");
}
