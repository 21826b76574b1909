// CSR validation and the derived operations (has_edge, transpose).
#include <vector>

#include "check.h"
#include "graphplat/csr.h"
#include "graphs.h"

using namespace graphplat;

namespace {

struct Arrays {
  std::vector<int64_t> indptr, indices, eids;
  std::vector<float> weights;
  int64_t num_cols = 4;
  CSRView view() const {
    CSRView v;
    v.indptr = indptr.data();
    v.indices = indices.data();
    v.nnz = static_cast<int64_t>(indices.size());
    v.num_cols = num_cols;
    v.weights = weights.empty() ? nullptr : weights.data();
    v.eids = eids.empty() ? nullptr : eids.data();
    return v;
  }
  void validate() const {
    CSRView v = view();
    validate_csr(v, static_cast<int64_t>(indptr.size()), static_cast<int64_t>(weights.size()),
                 static_cast<int64_t>(eids.size()), 2);
  }
};

}  // namespace

TEST_CASE(csr_valid_fills_rows_and_sortedness) {
  Arrays a{{0, 2, 2, 3}, {1, 3, 0}};
  CSRView v = a.view();
  validate_csr(v, 4, 0, 0, 2);
  CHECK(v.num_rows == 3);
  CHECK(v.rows_sorted);
  CHECK(v.degree(0) == 2 && v.degree(1) == 0 && v.degree(2) == 1);
  CHECK(csr_has_edge(v, 0, 3) && !csr_has_edge(v, 0, 2) && !csr_has_edge(v, 1, 0));

  Arrays unsorted{{0, 2}, {3, 1}};
  CSRView u = unsorted.view();
  validate_csr(u, 2, 0, 0, 1);
  CHECK(!u.rows_sorted);
  CHECK(csr_has_edge(u, 0, 1) && !csr_has_edge(u, 0, 2));  // scan, not binary search
}

TEST_CASE(csr_rejects_bad_arrays) {
  CHECK_THROWS(InvalidArgument, (Arrays{{}, {}}.validate()), "at least one entry");
  CHECK_THROWS(InvalidArgument, (Arrays{{1, 1}, {0}}.validate()), "indptr[0] must be 0");
  CHECK_THROWS(InvalidArgument, (Arrays{{0, 2}, {0}}.validate()), "must equal len(indices)");
  CHECK_THROWS(InvalidArgument, (Arrays{{0, 3, 1, 3}, {0, 1, 2}}.validate()),
               "indptr must be non-decreasing: indptr[2] = 1 < indptr[1] = 3");
  CHECK_THROWS(OutOfRange, (Arrays{{0, 2}, {0, 4}}.validate()), "indices[1] = 4 is out of range [0, 4)");
  CHECK_THROWS(OutOfRange, (Arrays{{0, 1}, {-1}}.validate()), "indices[0] = -1");
  CHECK_THROWS(InvalidArgument, (Arrays{{0, 1}, {0}, {}, {-1.0f}}.validate()), "weights must be finite and >= 0");
  CHECK_THROWS(InvalidArgument, (Arrays{{0, 1}, {0}, {}, {1.0f, 2.0f}}.validate()), "weights has 2 entries");
  CHECK_THROWS(InvalidArgument, (Arrays{{0, 1}, {0}, {5, 6}}.validate()), "eids has 2 entries");
  Arrays neg{{0}, {}};
  neg.num_cols = -1;
  CHECK_THROWS(InvalidArgument, neg.validate(), "num_cols must be >= 0");
}

TEST_CASE(csr_consecutive_eids_become_an_offset) {
  Arrays a{{0, 1, 3}, {2, 0, 1}, {10, 11, 12}};
  CSRView v = a.view();
  validate_csr(v, 3, 0, 3, 1);
  CHECK(v.explicit_eids && v.eids == nullptr && v.eid_offset == 10);
  CHECK(v.edge_id(2) == 12);

  Arrays b{{0, 1, 3}, {2, 0, 1}, {10, 12, 11}};
  CSRView w = b.view();
  validate_csr(w, 3, 0, 3, 1);
  CHECK(w.eids != nullptr && w.edge_id(1) == 12);
}

TEST_CASE(csr_transpose_round_trips) {
  testing::Graph g = testing::Graph::random(300, 200, 12, 7);
  CSRArrays t = transpose_csr(g.view, 2);
  CHECK(static_cast<int64_t>(t.indptr.size()) == 201);
  CHECK(static_cast<int64_t>(t.indices.size()) == g.view.nnz);
  CSRView tv;
  tv.indptr = t.indptr.data();
  tv.indices = t.indices.data();
  tv.eids = t.eids.data();
  tv.nnz = static_cast<int64_t>(t.indices.size());
  tv.num_cols = 300;
  validate_csr(tv, 201, 0, tv.nnz, 2);
  CHECK(tv.rows_sorted);
  // Every transposed entry (c, r, eid) is entry eid = (r, c) of the original.
  for (int64_t c = 0; c < tv.num_rows; ++c)
    for (int64_t p = tv.indptr[c]; p < tv.indptr[c + 1]; ++p) {
      const int64_t r = tv.indices[p], e = tv.edge_id(p);
      CHECK(e >= 0 && e < g.view.nnz);
      CHECK(g.view.indices[e] == c && g.view.indptr[r] <= e && e < g.view.indptr[r + 1]);
    }
}
