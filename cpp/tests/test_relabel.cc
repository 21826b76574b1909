// Unique-and-relabel: seeds keep the first positions, new ids follow by first appearance,
// the dense and hashed variants agree, and so do 1 and 2 threads.
#include <set>
#include <vector>

#include "check.h"
#include "graphplat/csr.h"
#include "graphplat/relabel.h"
#include "graphplat/rng.h"
#include "graphs.h"

using namespace graphplat;
using testing::span;
using testing::vec;

TEST_CASE(relabel_small_exact) {
  const std::vector<int64_t> seeds{5, 3, 9}, nbrs{3, 7, 5, 7, 11, 9};
  const std::vector<int64_t> nodes{5, 3, 9, 7, 11}, local{1, 3, 0, 3, 4, 2};
  Relabeled h = relabel_hashed(span(seeds), span(nbrs), 1);
  CHECK(vec(h.nodes) == nodes);
  CHECK(vec(h.local) == local);
  MarkerPool pool(12);
  Relabeled d = relabel_dense(span(seeds), span(nbrs), pool.acquire().view(), 1);
  CHECK(vec(d.nodes) == nodes);
  CHECK(vec(d.local) == local);
}

TEST_CASE(relabel_large_matches_across_variants_and_threads) {
  const int64_t n = 1 << 20;
  std::vector<int64_t> seeds, nbrs;
  std::set<int64_t> used;
  for (int64_t i = 0; seeds.size() < 3000; ++i) {
    const int64_t s = static_cast<int64_t>(mix64(i) % n);
    if (used.insert(s).second) seeds.push_back(s);
  }
  for (int64_t i = 0; i < 200000; ++i) nbrs.push_back(static_cast<int64_t>(mix64(i + 77) % 50000));
  MarkerPool pool(n);
  Relabeled ref = relabel_hashed(span(seeds), span(nbrs), 1);
  Relabeled h2 = relabel_hashed(span(seeds), span(nbrs), 2);
  Relabeled d1 = relabel_dense(span(seeds), span(nbrs), pool.acquire().view(), 1);
  Relabeled d2 = relabel_dense(span(seeds), span(nbrs), pool.acquire().view(), 2);
  for (const Relabeled* r : {&h2, &d1, &d2}) {
    CHECK(vec(r->nodes) == vec(ref.nodes));
    CHECK(vec(r->local) == vec(ref.local));
  }
  CHECK(std::vector<int64_t>(ref.nodes.begin(), ref.nodes.begin() + seeds.size()) == seeds);
  CHECK(std::set<int64_t>(ref.nodes.begin(), ref.nodes.end()).size() == ref.nodes.size());
  bool maps_back = ref.local.size() == nbrs.size();
  for (size_t i = 0; maps_back && i < nbrs.size(); ++i) maps_back = ref.nodes[ref.local[i]] == nbrs[i];
  CHECK(maps_back);
  // New ids are in order of first appearance.
  std::vector<int64_t> firsts;
  std::set<int64_t> seen(seeds.begin(), seeds.end());
  for (int64_t x : nbrs)
    if (seen.insert(x).second) firsts.push_back(x);
  CHECK(std::vector<int64_t>(ref.nodes.begin() + seeds.size(), ref.nodes.end()) == firsts);
}

TEST_CASE(relabel_rejects_repeated_seeds) {
  const std::vector<int64_t> seeds{1, 2, 1}, nbrs{2};
  MarkerPool pool(4);
  CHECK_THROWS(InvalidArgument, relabel_dense(span(seeds), span(nbrs), pool.acquire().view(), 1),
               "seeds must be distinct: 1");
  CHECK_THROWS(InvalidArgument, relabel_hashed(span(seeds), span(nbrs), 1), "seeds must be distinct: 1");
  // The pool is still usable after a spoiled lease.
  const std::vector<int64_t> ok{3, 0};
  Relabeled r = relabel_dense(span(ok), span(nbrs), pool.acquire().view(), 1);
  CHECK((vec(r.nodes) == std::vector<int64_t>{3, 0, 2}));
}
