// Random walks: every step is an edge, -1 only after a dead end, arguments bounded.
#include <vector>

#include "check.h"
#include "graphplat/walk.h"
#include "graphs.h"

using namespace graphplat;
using testing::span;

namespace {

// Checks the (starts.size, length + 1) traces of a walk over g.
bool valid_traces(const CSRView& g, const std::vector<int64_t>& starts, int64_t length,
                  const std::vector<int64_t>& out) {
  const int64_t w = length + 1;
  if (static_cast<int64_t>(out.size()) != static_cast<int64_t>(starts.size()) * w) return false;
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t* t = out.data() + i * w;
    if (t[0] != starts[i]) return false;
    int64_t k = 1;
    for (; k < w && t[k] >= 0; ++k)
      if (t[k] >= g.num_cols || !csr_has_edge(g, t[k - 1], t[k])) return false;
    if (k < w && g.degree(t[k - 1]) != 0) return false;  // stopped early only at a dead end
    for (; k < w; ++k)
      if (t[k] != -1) return false;
  }
  return true;
}

}  // namespace

TEST_CASE(random_walk_steps_are_edges_and_bounded) {
  testing::Graph g = testing::Graph::random(2000, 2000, 6, 5);
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < 2000; i += 3) starts.push_back(i);
  const std::vector<int64_t> u1 = random_walk(g.view, span(starts), 12, 1.0, 1.0, 3, 1);
  const std::vector<int64_t> u2 = random_walk(g.view, span(starts), 12, 1.0, 1.0, 3, 2);
  CHECK(valid_traces(g.view, starts, 12, u1));
  CHECK(u1 == u2);
  const std::vector<int64_t> n1 = random_walk(g.view, span(starts), 12, 0.25, 4.0, 3, 1);
  const std::vector<int64_t> n2 = random_walk(g.view, span(starts), 12, 0.25, 4.0, 3, 2);
  CHECK(valid_traces(g.view, starts, 12, n1));
  CHECK(n1 == n2);
  bool has_dead_end = false;  // the graph has empty rows, so some walk stops at its start
  for (size_t i = 0; i < starts.size(); ++i) has_dead_end |= u1[i * 13 + 1] == -1;
  CHECK(has_dead_end);
  CHECK(random_walk(g.view, span(starts), 0, 1.0, 1.0, 0, 1) == starts);
}

TEST_CASE(random_walk_rejects_bad_arguments) {
  testing::Graph g = testing::Graph::random(10, 10, 3, 6);
  testing::Graph rect = testing::Graph::random(10, 12, 3, 6);
  const std::vector<int64_t> s{0, 1};
  CHECK_THROWS(InvalidArgument, random_walk(g.view, span(s), -1, 1, 1, 0, 1), "walk length must be in [0, 2^20]");
  CHECK_THROWS(InvalidArgument, random_walk(g.view, span(s), (1 << 20) + 1, 1, 1, 0, 1), "walk length");
  CHECK_THROWS(InvalidArgument, random_walk(g.view, span(s), 3, 0.0, 1, 0, 1), "p must be in");
  CHECK_THROWS(InvalidArgument, random_walk(g.view, span(s), 3, 1, 1e7, 0, 1), "q must be in");
  CHECK_THROWS(InvalidArgument, random_walk(rect.view, span(s), 3, 1, 1, 0, 1), "square graph");
  const std::vector<int64_t> bad{0, 10};
  CHECK_THROWS(OutOfRange, random_walk(g.view, span(bad), 3, 1, 1, 0, 1), "starts[1] = 10");
  const std::vector<const CSRView*> rel{&g.view};
  CHECK_THROWS(OutOfRange, metapath_walk(rel, span(s), {0, 1}, 0, 1), "metapath[1] = 1 is not a relation index");
  CHECK_THROWS(InvalidArgument, metapath_walk(rel, span(s), {}, 0, 1), "at least one relation");
}
