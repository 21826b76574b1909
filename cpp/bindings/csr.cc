// The CSR class: validated on construction, read-only arrays shared with numpy.
#include "bindings.h"

#include <optional>
#include <string>
#include <vector>

namespace graphplat::bindings {

namespace {

std::shared_ptr<PyCSR> make_csr(py::handle indptr, py::handle indices, std::optional<int64_t> num_cols,
                                py::handle weights, py::handle eids) {
  auto g = std::make_shared<PyCSR>();
  Held<int64_t> ip = to_int64(indptr, "indptr", true);
  Held<int64_t> ix = to_int64(indices, "indices", true);
  g->indptr = ip.arr;
  g->indices = ix.arr;
  CSRView& v = g->view;
  v.indptr = ip.arr.data();
  v.indices = ix.arr.data();
  v.nnz = ix.arr.size();
  if (ip.arr.size() < 1) throw InvalidArgument("indptr must have at least one entry (num_rows + 1)");
  v.num_cols = num_cols ? *num_cols : ip.arr.size() - 1;
  int64_t wlen = 0, elen = 0;
  if (!weights.is_none()) {
    Held<float> w = to_float<float>(weights, "weights", "float32", true);
    g->weights_arr = w.arr;
    v.weights = w.arr.data();
    wlen = w.arr.size();
  }
  if (!eids.is_none()) {
    Held<int64_t> e = to_int64(eids, "eids", true);
    g->eids_arr = e.arr;
    g->eids_obj = e.arr;
    v.eids = e.arr.data();
    elen = e.arr.size();
  }
  for (py::array* a : {static_cast<py::array*>(&g->indptr), static_cast<py::array*>(&g->indices)})
    make_readonly(*a);
  if (!g->weights_arr.is_none()) {
    py::array w = g->weights_arr;
    make_readonly(w);
  }
  if (!g->eids_obj.is_none()) make_readonly(g->eids_arr);
  {
    py::gil_scoped_release nogil;
    validate_csr(v, ip.arr.size(), wlen, elen, resolve_threads(0));
  }
  return g;
}

std::shared_ptr<PyCSR> csr_from_arrays(CSRArrays&& a, int64_t num_rows, int64_t num_cols) {
  auto g = std::make_shared<PyCSR>();
  g->indptr = to_numpy(std::move(a.indptr));
  g->indices = to_numpy(std::move(a.indices));
  g->eids_arr = to_numpy(std::move(a.eids));
  g->eids_obj = g->eids_arr;
  make_readonly(g->indptr);
  make_readonly(g->indices);
  make_readonly(g->eids_arr);
  CSRView& v = g->view;
  v.num_rows = num_rows;
  v.num_cols = num_cols;
  v.nnz = g->indices.size();
  v.indptr = g->indptr.data();
  v.indices = g->indices.data();
  v.eids = g->eids_arr.data();
  v.explicit_eids = true;
  if (!a.weights.empty()) {
    py::array_t<float> w = to_numpy(std::move(a.weights));
    make_readonly(w);
    g->weights_arr = w;
    v.weights = w.data();
  }
  v.rows_sorted = true;
  return g;
}

}  // namespace

void bind_csr(py::module_& m) {
  py::class_<PyCSR, std::shared_ptr<PyCSR>>(m, "CSR", "Compressed sparse rows; see _core.pyi.")
      .def(py::init([](py::handle indptr, py::handle indices, std::optional<int64_t> num_cols,
                       py::handle weights, py::handle eids) {
             return make_csr(indptr, indices, num_cols, weights, eids);
           }),
           py::arg("indptr"), py::arg("indices"), py::kw_only(), py::arg("num_cols") = py::none(),
           py::arg("weights") = py::none(), py::arg("eids") = py::none())
      .def_property_readonly("num_rows", [](const PyCSR& g) { return g.view.num_rows; })
      .def_property_readonly("num_cols", [](const PyCSR& g) { return g.view.num_cols; })
      .def_property_readonly("nnz", [](const PyCSR& g) { return g.view.nnz; })
      .def_property_readonly("indptr", [](const PyCSR& g) { return g.indptr; })
      .def_property_readonly("indices", [](const PyCSR& g) { return g.indices; })
      .def_property_readonly("weights", [](const PyCSR& g) { return g.weights_arr; })
      .def_property_readonly("eids", [](const PyCSR& g) { return g.eids_obj; })
      .def_property_readonly("rows_sorted", [](const PyCSR& g) { return g.view.rows_sorted; })
      .def("degrees",
           [](PyCSR& g, py::handle rows) {
             const CSRView& v = g.view;
             if (rows.is_none()) {
               std::vector<int64_t> d(v.num_rows);
               py::gil_scoped_release nogil;
               for (int64_t r = 0; r < v.num_rows; ++r) d[r] = v.degree(r);
               py::gil_scoped_acquire gil;
               return to_numpy(std::move(d));
             }
             Held<int64_t> r = to_int64(rows, "rows");
             std::vector<int64_t> d(r.arr.size());
             {
               py::gil_scoped_release nogil;
               check_ids_in_range(r.span(), v.num_rows, "rows", resolve_threads(0));
               for (int64_t i = 0; i < r.span().size; ++i) d[i] = v.degree(r.span()[i]);
             }
             return to_numpy(std::move(d));
           },
           py::arg("rows") = py::none(), "int64 row degrees, for all rows or for `rows`.")
      .def("col_degrees",
           [](PyCSR& g) {
             std::vector<int64_t> d;
             {
               py::gil_scoped_release nogil;
               d = g.cache->get_col_degrees(g.view, resolve_threads(0));
             }
             return to_numpy(std::move(d));
           },
           "int64 entries per column (in-degree of a CSR).")
      .def("transpose",
           [](PyCSR& g, int num_threads) {
             CSRArrays a;
             {
               py::gil_scoped_release nogil;
               a = transpose_csr(g.view, threads_arg(num_threads));
             }
             return csr_from_arrays(std::move(a), g.view.num_cols, g.view.num_rows);
           },
           py::arg("num_threads") = 0, "The transposed matrix, carrying weights and edge ids.")
      .def("has_edges",
           [](PyCSR& g, py::handle rows, py::handle cols, int num_threads) {
             Held<int64_t> r = to_int64(rows, "rows"), c = to_int64(cols, "cols");
             if (r.arr.size() != c.arr.size())
               throw InvalidArgument(cat("rows has ", r.arr.size(), " entries but cols has ", c.arr.size()));
             py::array_t<bool> out(r.arr.size());
             bool* o = out.mutable_data();
             {
               py::gil_scoped_release nogil;
               int nt = threads_arg(num_threads);
               check_ids_in_range(r.span(), g.view.num_rows, "rows", nt);
               check_ids_in_range(c.span(), g.view.num_cols, "cols", nt);
               const int64_t n = r.span().size;
               const int64_t* rp = r.span().data;
               const int64_t* cp = c.span().data;
               const CSRView& v = g.view;
               parallel_for(n, 4096, nt, [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i) o[i] = csr_has_edge(v, rp[i], cp[i]);
               });
             }
             return out;
           },
           py::arg("rows"), py::arg("cols"), py::arg("num_threads") = 0)
      .def("__repr__", [](const PyCSR& g) {
        return cat("CSR(num_rows=", g.view.num_rows, ", num_cols=", g.view.num_cols,
                   ", nnz=", g.view.nnz, ", weights=", g.view.weights ? "yes" : "no",
                   ", eids=", g.view.explicit_eids ? "yes" : "no", ")");
      });
}

}  // namespace graphplat::bindings
