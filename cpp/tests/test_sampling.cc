// Neighbor sampling: uniform without replacement, and results independent of thread count.
#include <algorithm>
#include <set>
#include <vector>

#include "check.h"
#include "graphplat/sampler.h"
#include "graphs.h"

using namespace graphplat;
using testing::span;
using testing::vec;

namespace {

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> s(n);
  for (int64_t i = 0; i < n; ++i) s[i] = i;
  return s;
}

NeighborSample sample(const CSRView& g, const std::vector<int64_t>& seeds, int64_t fanout,
                      bool replace, int threads, Strategy strategy = Strategy::kUniform) {
  CSRCache cache;
  SampleOptions opt;
  opt.strategy = strategy;
  opt.fanout = fanout;
  opt.replace = replace;
  opt.seed = 42;
  opt.num_threads = threads;
  return sample_neighbors(g, cache, span(seeds), Span<int64_t>{}, opt);
}

}  // namespace

TEST_CASE(uniform_without_replacement_is_distinct_and_within_row) {
  testing::Graph g = testing::Graph::random(3000, 5000, 40, 1);
  const std::vector<int64_t> seeds = all_rows(3000);
  const int64_t fanout = 10;
  NeighborSample ns = sample(g.view, seeds, fanout, false, 2);
  CHECK(ns.counts.size() == seeds.size());
  int64_t at = 0, bad_count = 0, dup = 0, outside = 0, bad_eid = 0;
  for (size_t i = 0; i < seeds.size(); ++i) {
    const int64_t r = seeds[i], d = g.view.degree(r), c = ns.counts[i];
    bad_count += c != std::min(d, fanout);
    std::set<int64_t> seen;
    for (int64_t k = at; k < at + c; ++k) {
      const int64_t col = ns.neighbors[k], e = ns.eids[k];
      dup += !seen.insert(e).second;
      const bool in_row = e >= g.view.indptr[r] && e < g.view.indptr[r + 1];
      outside += !in_row;
      bad_eid += in_row && g.view.indices[e] != col;  // eid = position of that entry
    }
    at += c;
  }
  CHECK(at == static_cast<int64_t>(ns.neighbors.size()));
  CHECK(bad_count == 0);
  CHECK(dup == 0);
  CHECK(outside == 0);
  CHECK(bad_eid == 0);
}

TEST_CASE(with_replacement_draws_fanout_from_nonempty_rows) {
  testing::Graph g = testing::Graph::random(500, 500, 5, 2);
  const std::vector<int64_t> seeds = all_rows(500);
  NeighborSample ns = sample(g.view, seeds, 8, true, 2);
  bool ok = true;
  int64_t at = 0;
  for (size_t i = 0; i < seeds.size(); ++i) {
    const int64_t d = g.view.degree(seeds[i]);
    ok &= ns.counts[i] == (d > 0 ? 8 : 0);
    for (int64_t k = at; k < at + ns.counts[i]; ++k)
      ok &= csr_has_edge(g.view, seeds[i], ns.neighbors[k]);
    at += ns.counts[i];
  }
  CHECK(ok);
}

TEST_CASE(same_output_for_one_and_two_threads) {
  testing::Graph g = testing::Graph::random(20000, 20000, 30, 3);
  std::vector<int64_t> seeds;
  for (int64_t i = 0; i < 20000; i += 2) seeds.push_back((i * 7919) % 20000);
  for (bool replace : {false, true}) {
    NeighborSample a = sample(g.view, seeds, 5, replace, 1);
    NeighborSample b = sample(g.view, seeds, 5, replace, 2);
    CHECK(vec(a.counts) == vec(b.counts));
    CHECK(vec(a.neighbors) == vec(b.neighbors));
    CHECK(vec(a.eids) == vec(b.eids));
  }
  CSRCache c1, c2;
  SampleOptions opt;
  opt.seed = 9;
  opt.num_threads = 1;
  std::vector<SampledHop> h1 = sample_multihop(g.view, c1, span(std::vector<int64_t>(seeds.begin(), seeds.begin() + 500)),
                                               {5, 3}, opt);
  opt.num_threads = 2;
  std::vector<SampledHop> h2 = sample_multihop(g.view, c2, span(std::vector<int64_t>(seeds.begin(), seeds.begin() + 500)),
                                               {5, 3}, opt);
  CHECK(h1.size() == 2 && h2.size() == 2);
  for (size_t h = 0; h < std::min(h1.size(), h2.size()); ++h) {
    CHECK(vec(h1[h].nodes) == vec(h2[h].nodes));
    CHECK(vec(h1[h].src) == vec(h2[h].src));
    CHECK(vec(h1[h].dst) == vec(h2[h].dst));
    CHECK(vec(h1[h].eids) == vec(h2[h].eids));
    CHECK(h1[h].num_dst == h2[h].num_dst);
  }
}

TEST_CASE(sampling_rejects_bad_arguments) {
  testing::Graph g = testing::Graph::random(10, 10, 3, 4);
  CHECK_THROWS(InvalidArgument, sample(g.view, {0}, 0, false, 1), "fanout must be >= 1");
  CHECK_THROWS(InvalidArgument, sample(g.view, {0}, kMaxFanout + 1, false, 1), "exceeds the maximum");
  CHECK_THROWS(OutOfRange, sample(g.view, {0, 10}, 2, false, 1), "seeds[1] = 10 is out of range [0, 10)");
  CHECK_THROWS(InvalidArgument, sample(g.view, {0}, 2, false, 1, Strategy::kWeighted), "needs edge weights");
  CHECK_THROWS(InvalidArgument, parse_strategy("nope"), "unknown sampling strategy 'nope'");
  CHECK(parse_strategy("random") == Strategy::kUniform);
}
