// The only file that knows about Python: converts and validates numpy inputs, releases the
// GIL around every heavy call, and hands results back as numpy arrays without copies.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <string>
#include <vector>

#include "graphplat/common.h"
#include "graphplat/csr.h"
#include "graphplat/idmap.h"
#include "graphplat/gather.h"
#include "graphplat/negative.h"
#include "graphplat/parallel.h"
#include "graphplat/relabel.h"
#include "graphplat/sampler.h"
#include "graphplat/walk.h"

namespace py = pybind11;
using namespace graphplat;

namespace {

py::module_& numpy() {
  // Leaked on purpose: destroying a Python object after interpreter shutdown crashes.
  static py::module_* np = new py::module_(py::module_::import("numpy"));
  return *np;
}

// A contiguous array of T kept alive while the core reads it.
template <class T>
struct Held {
  py::array_t<T, py::array::c_style> arr;
  Span<T> span() const { return make_span(arr.data(), static_cast<int64_t>(arr.size())); }
};

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Everything converted here is first copied into an array the caller cannot touch during
// the GIL-free call, unless it is read-only all the way down (then it is shared).
bool immutable(const py::array& a) {
  py::object cur = a;
  while (!cur.is_none()) {
    if (py::isinstance<py::array>(cur)) {
      if (cur.attr("flags").attr("writeable").cast<bool>()) return false;
    } else if (py::hasattr(cur, "readonly")) {  // memoryview
      return cur.attr("readonly").cast<bool>();
    } else if (py::isinstance<py::bytes>(cur)) {
      return true;
    } else if (py::hasattr(cur, "closed") && py::hasattr(cur, "madvise")) {  // mmap.mmap
      return true;  // numpy marks arrays over a read-only mmap as not writeable above
    } else {
      return false;
    }
    cur = cur.attr("base");
  }
  return true;
}

py::array as_1d(py::handle obj, const char* name) {
  if (obj.is_none()) throw InvalidArgument(cat(name, " must be an array, got None"));
  py::array a = numpy().attr("asarray")(obj);
  if (a.ndim() != 1)
    throw InvalidArgument(cat(name, " must be a 1-D array, got ", a.ndim(), " dimensions"));
  return a;
}

Held<int64_t> to_int64(py::handle obj, const char* name, bool share_if_immutable = false) {
  py::array a = as_1d(obj, name);
  const char kind = a.dtype().kind();
  if (a.size() == 0 && (kind == 'f' || kind == 'i' || kind == 'u')) {
    return {py::array_t<int64_t, py::array::c_style>(0)};
  }
  if (kind != 'i' && kind != 'u')
    throw InvalidArgument(cat(name, " must be an integer array, got dtype ", dtype_name(a)));
  if (kind == 'u' && a.itemsize() == 8) {
    py::object mx = a.attr("max")();
    if (mx.cast<unsigned long long>() > static_cast<unsigned long long>(INT64_MAX))
      throw InvalidArgument(cat(name, " holds values above the int64 range"));
  }
  const bool exact = kind == 'i' && a.itemsize() == 8 &&
                     (a.flags() & py::array::c_style) && a.dtype().byteorder() != '>';
  if (share_if_immutable && exact && immutable(a))
    return {py::array_t<int64_t, py::array::c_style>::ensure(a)};
  py::array copy = numpy().attr("array")(a, py::arg("dtype") = "int64", py::arg("copy") = true);
  return {py::array_t<int64_t, py::array::c_style>::ensure(copy)};
}

template <class T>
Held<T> to_float(py::handle obj, const char* name, const char* dtype, bool share_if_immutable) {
  py::array a = as_1d(obj, name);
  const char kind = a.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw InvalidArgument(cat(name, " must be a numeric array, got dtype ", dtype_name(a)));
  const bool exact = kind == 'f' && a.itemsize() == static_cast<py::ssize_t>(sizeof(T)) &&
                     (a.flags() & py::array::c_style) && a.dtype().byteorder() != '>';
  if (share_if_immutable && exact && immutable(a))
    return {py::array_t<T, py::array::c_style>::ensure(a)};
  py::array copy = numpy().attr("array")(a, py::arg("dtype") = dtype, py::arg("copy") = true);
  return {py::array_t<T, py::array::c_style>::ensure(copy)};
}

void make_readonly(py::array& a) { a.attr("setflags")(py::arg("write") = false); }

// Moves a vector into a numpy array that owns it.
template <class V>
py::array_t<typename V::value_type> to_numpy(V&& v) {
  using T = typename V::value_type;
  auto* heap = new V(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<V*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(heap->size()), heap->data(), owner);
}

template <class T>
py::array_t<T> to_numpy_2d(std::vector<T>&& v, int64_t rows, int64_t cols) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)},
                        heap->data(), owner);
}

struct PyCSR {
  py::array_t<int64_t> indptr, indices, eids_arr;
  py::object weights_arr = py::none();
  py::object eids_obj = py::none();
  CSRView view;
  std::unique_ptr<CSRCache> cache = std::make_unique<CSRCache>();
};

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

struct PyHop {
  py::array_t<int64_t> nodes, src, dst, eids;
  int64_t num_dst;
};

int threads_arg(int n) { return resolve_threads(n); }

}  // namespace

// glibc serves large blocks with mmap and returns them on free, so every batch would
// page-fault its output buffers in afresh (a third of sampling time, measured with perf).
// Keeping blocks up to 256 MB in the heap avoids that. GRAPHPLAT_MALLOC_TUNING=0 opts out.
void tune_malloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("GRAPHPLAT_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

PYBIND11_MODULE(_core, m) {
  m.doc() = "graphplat C++ core: CSR graphs, id maps, samplers, walks, relabeling.";
  tune_malloc();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const OutOfRange& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("MAX_FANOUT") = kMaxFanout;
  {
    // From parse_strategy's own table: the canonical names, and the aliases it accepts.
    py::list canonical;
    py::dict aliases;
    for (const StrategyName& n : strategy_names()) {
      const char* canon = strategy_names()[static_cast<int>(n.strategy)].name;
      if (std::strcmp(n.name, canon) == 0) canonical.append(n.name);
      else aliases[n.name] = canon;
    }
    m.attr("STRATEGIES") = py::tuple(canonical);
    m.attr("STRATEGY_ALIASES") = aliases;
  }
  m.def("get_num_threads", &default_num_threads, "Default thread count of the core.");
  m.def("set_num_threads", &set_default_num_threads, py::arg("n"),
        "Set the default thread count (>= 1).");

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

  m.def(
      "sample_neighbors",
      [](PyCSR& g, py::handle seeds, int64_t fanout, const std::string& strategy, bool replace,
         uint64_t seed, uint64_t hop, py::handle positions, std::shared_ptr<PyCSR> delta,
         int num_threads) {
        Held<int64_t> s = to_int64(seeds, "seeds");
        Held<int64_t> pos;
        if (!positions.is_none()) {
          pos = to_int64(positions, "positions");
          if (pos.arr.size() != s.arr.size())
            throw InvalidArgument(cat("positions has ", pos.arr.size(), " entries but seeds has ",
                                      s.arr.size()));
        }
        SampleOptions opt;
        opt.strategy = parse_strategy(strategy);
        opt.fanout = fanout;
        opt.replace = replace;
        opt.seed = seed;
        opt.hop = hop;
        opt.num_threads = num_threads;
        NeighborSample ns;
        {
          py::gil_scoped_release nogil;
          ns = sample_neighbors(g.view, *g.cache, s.span(),
                                positions.is_none() ? Span<int64_t>{} : pos.span(), opt,
                                delta ? &delta->view : nullptr);
        }
        return py::make_tuple(to_numpy(std::move(ns.counts)), to_numpy(std::move(ns.neighbors)),
                              to_numpy(std::move(ns.eids)));
      },
      py::arg("csr"), py::arg("seeds"), py::arg("fanout"), py::kw_only(),
      py::arg("strategy") = "uniform", py::arg("replace") = false, py::arg("seed") = 0,
      py::arg("hop") = 0, py::arg("positions") = py::none(), py::arg("delta") = py::none(),
      py::arg("num_threads") = 0,
      "Sample neighbors of each seed; returns (counts, neighbors, eids). See _core.pyi.");

  py::class_<PyHop>(m, "SampledHop", "One hop of sample_multihop, ready for dgl.create_block.")
      .def_readonly("nodes", &PyHop::nodes)
      .def_readonly("num_dst", &PyHop::num_dst)
      .def_readonly("src", &PyHop::src)
      .def_readonly("dst", &PyHop::dst)
      .def_readonly("eids", &PyHop::eids)
      .def("__repr__", [](const PyHop& h) {
        return cat("SampledHop(num_src=", h.nodes.size(), ", num_dst=", h.num_dst,
                   ", num_edges=", h.src.size(), ")");
      });

  m.def(
      "sample_multihop",
      [](PyCSR& g, py::handle seeds, std::vector<int64_t> fanouts, const std::string& strategy,
         bool replace, uint64_t seed, int num_threads) {
        Held<int64_t> s = to_int64(seeds, "seeds");
        SampleOptions opt;
        opt.strategy = parse_strategy(strategy);
        opt.replace = replace;
        opt.seed = seed;
        opt.num_threads = num_threads;
        std::vector<SampledHop> hops;
        {
          py::gil_scoped_release nogil;
          hops = sample_multihop(g.view, *g.cache, s.span(), fanouts, opt);
        }
        py::list out;
        for (SampledHop& h : hops) {
          PyHop p{to_numpy(std::move(h.nodes)), to_numpy(std::move(h.src)),
                  to_numpy(std::move(h.dst)), to_numpy(std::move(h.eids)), h.num_dst};
          out.append(py::cast(std::move(p)));
        }
        return out;
      },
      py::arg("csr"), py::arg("seeds"), py::arg("fanouts"), py::kw_only(),
      py::arg("strategy") = "uniform", py::arg("replace") = false, py::arg("seed") = 0,
      py::arg("num_threads") = 0, "Multi-hop sampling with unique/relabel; see _core.pyi.");

  m.def(
      "unique_and_relabel",
      [](py::handle seeds, py::handle neighbors, std::optional<int64_t> num_nodes, int num_threads) {
        Held<int64_t> s = to_int64(seeds, "seeds"), n = to_int64(neighbors, "neighbors");
        Relabeled r;
        {
          py::gil_scoped_release nogil;
          int nt = threads_arg(num_threads);
          if (num_nodes) {
            if (*num_nodes < 0) throw InvalidArgument(cat("num_nodes must be >= 0, got ", *num_nodes));
            check_ids_in_range(s.span(), *num_nodes, "seeds", nt);
            check_ids_in_range(n.span(), *num_nodes, "neighbors", nt);
            if (*num_nodes <= kMaxDenseIds && dense_relabel_fits(s.span().size, n.span().size)) {
              MarkerPool pool(*num_nodes);
              r = relabel_dense(s.span(), n.span(), pool.acquire().view(), nt);
            } else {
              r = relabel_hashed(s.span(), n.span(), nt);
            }
          } else {
            r = relabel_hashed(s.span(), n.span(), nt);
          }
        }
        return py::make_tuple(to_numpy(std::move(r.nodes)), to_numpy(std::move(r.local)));
      },
      py::arg("seeds"), py::arg("neighbors"), py::kw_only(), py::arg("num_nodes") = py::none(),
      py::arg("num_threads") = 0, "Returns (unique_nodes, local_neighbors); see _core.pyi.");

  // Dense relabeling with markers kept between calls (no per-call allocation of num_nodes).
  py::class_<MarkerPool, std::shared_ptr<MarkerPool>>(m, "Relabeler",
                                                      "unique_and_relabel over ids in [0, num_nodes).")
      .def(py::init([](int64_t num_nodes) {
             if (num_nodes < 0) throw InvalidArgument(cat("num_nodes must be >= 0, got ", num_nodes));
             if (num_nodes > kMaxDenseIds)
               throw InvalidArgument(cat("num_nodes ", num_nodes, " is too large for dense markers (at most ",
                                         kMaxDenseIds, "): use unique_and_relabel without num_nodes, which hashes"));
             return std::make_shared<MarkerPool>(num_nodes);
           }),
           py::arg("num_nodes"))
      .def_property_readonly("num_nodes", &MarkerPool::num_nodes)
      .def(
          "relabel",
          [](MarkerPool& pool, py::handle seeds, py::handle neighbors, int num_threads) {
            Held<int64_t> s = to_int64(seeds, "seeds"), n = to_int64(neighbors, "neighbors");
            Relabeled r;
            {
              py::gil_scoped_release nogil;
              int nt = threads_arg(num_threads);
              check_ids_in_range(s.span(), pool.num_nodes(), "seeds", nt);
              check_ids_in_range(n.span(), pool.num_nodes(), "neighbors", nt);
              if (dense_relabel_fits(s.span().size, n.span().size)) {
                r = relabel_dense(s.span(), n.span(), pool.acquire().view(), nt);
              } else {
                r = relabel_hashed(s.span(), n.span(), nt);
              }
            }
            return py::make_tuple(to_numpy(std::move(r.nodes)), to_numpy(std::move(r.local)));
          },
          py::arg("seeds"), py::arg("neighbors"), py::kw_only(), py::arg("num_threads") = 0,
          "Same as unique_and_relabel(seeds, neighbors, num_nodes=num_nodes); see _core.pyi.");

  m.def(
      "take_rows",
      [](py::handle source, py::handle rows, py::handle out_arg, py::handle out_rows_arg, int num_threads) {
        if (!py::isinstance<py::array>(source))
          throw InvalidArgument("source must be a numpy array");
        if (!out_rows_arg.is_none() && out_arg.is_none())
          throw InvalidArgument("out_rows needs out");
        py::array src = py::reinterpret_borrow<py::array>(source);
        if (src.ndim() < 1) throw InvalidArgument("source must have at least one dimension");
        if (!(src.flags() & py::array::c_style))
          throw InvalidArgument("source must be C-contiguous (np.ascontiguousarray)");
        Held<int64_t> r = to_int64(rows, "rows");
        std::vector<py::ssize_t> shape(src.shape(), src.shape() + src.ndim());
        const int64_t num_rows = shape[0];
        shape[0] = static_cast<py::ssize_t>(r.span().size);
        py::array out;
        if (out_arg.is_none()) {
          out = py::array(src.dtype(), shape);
        } else {
          // A caller-owned output (e.g. a recycled buffer): same dtype, exact shape, writable.
          if (!py::isinstance<py::array>(out_arg)) throw InvalidArgument("out must be a numpy array");
          out = py::reinterpret_borrow<py::array>(out_arg);
          if (!py::detail::npy_api::get().PyArray_EquivTypes_(out.dtype().ptr(), src.dtype().ptr()))
            throw InvalidArgument("out must have the dtype of source");
          if (out.ndim() != src.ndim() || !std::equal(shape.begin() + 1, shape.end(), out.shape() + 1))
            throw InvalidArgument("out must have the row shape of source (shape[1:])");
          if (out_rows_arg.is_none() && out.shape(0) != shape[0])
            throw InvalidArgument("out must have shape (len(rows),) + source.shape[1:]");
          if (!(out.flags() & py::array::c_style) || !out.writeable())
            throw InvalidArgument("out must be C-contiguous and writable");
          if (out.nbytes() > 0 && src.nbytes() > 0) {
            const char* a = static_cast<const char*>(src.data());
            const char* b = static_cast<const char*>(out.data());
            if (a < b + out.nbytes() && b < a + src.nbytes())
              throw InvalidArgument("out must not overlap source");
          }
        }
        const int64_t row_bytes = num_rows > 0 ? static_cast<int64_t>(src.nbytes()) / num_rows
                                               : static_cast<int64_t>(src.itemsize());
        const char* in = static_cast<const char*>(src.data());
        char* dst = static_cast<char*>(out.mutable_data());
        if (!out_rows_arg.is_none()) {
          Held<int64_t> o = to_int64(out_rows_arg, "out_rows");
          py::gil_scoped_release nogil;
          gather_scatter_rows(in, num_rows, row_bytes, r.span(), dst, out.shape(0), o.span(),
                              threads_arg(num_threads));
          return out;
        }
        {
          py::gil_scoped_release nogil;
          gather_rows(in, num_rows, row_bytes, r.span(), dst, threads_arg(num_threads));
        }
        return out;
      },
      py::arg("source"), py::arg("rows"), py::kw_only(), py::arg("out") = py::none(),
      py::arg("out_rows") = py::none(), py::arg("num_threads") = 0,
      "source[rows] for a C-contiguous array (any dtype), copied in parallel (into out when "
      "given); see _core.pyi.");

  m.def(
      "scatter_rows",
      [](py::handle source, py::handle rows, py::handle out_arg, int num_threads) {
        for (auto [h, what] : {std::pair{source, "source"}, std::pair{out_arg, "out"}})
          if (!py::isinstance<py::array>(h)) throw InvalidArgument(cat(what, " must be a numpy array"));
        py::array src = py::reinterpret_borrow<py::array>(source);
        py::array out = py::reinterpret_borrow<py::array>(out_arg);
        if (src.ndim() < 1 || out.ndim() != src.ndim())
          throw InvalidArgument("source and out must have the same number (>= 1) of dimensions");
        if (!std::equal(src.shape() + 1, src.shape() + src.ndim(), out.shape() + 1))
          throw InvalidArgument("source and out must have the same row shape (shape[1:])");
        if (!py::detail::npy_api::get().PyArray_EquivTypes_(out.dtype().ptr(), src.dtype().ptr()))
          throw InvalidArgument("out must have the dtype of source");
        if (!(src.flags() & py::array::c_style) || !(out.flags() & py::array::c_style))
          throw InvalidArgument("source and out must be C-contiguous (np.ascontiguousarray)");
        if (!out.writeable()) throw InvalidArgument("out must be writeable");
        Held<int64_t> r = to_int64(rows, "rows");
        if (r.span().size != src.shape(0))
          throw InvalidArgument(cat("rows has ", r.span().size, " entries but source has ", src.shape(0), " rows"));
        const char* in = static_cast<const char*>(src.data());
        char* dst = static_cast<char*>(out.mutable_data());
        if (out.nbytes() > 0 && src.nbytes() > 0 && dst < in + src.nbytes() && in < dst + out.nbytes())
          throw InvalidArgument("out must not overlap source");
        int64_t row_elems = 1;
        for (py::ssize_t k = 1; k < src.ndim(); ++k) row_elems *= src.shape(k);
        const int64_t row_bytes = row_elems * static_cast<int64_t>(src.itemsize());
        {
          py::gil_scoped_release nogil;
          scatter_rows(in, row_bytes, r.span(), dst, out.shape(0), threads_arg(num_threads));
        }
        return out;
      },
      py::arg("source"), py::arg("rows"), py::arg("out"), py::kw_only(), py::arg("num_threads") = 0,
      "out[rows] = source for C-contiguous arrays, copied in parallel; see _core.pyi.");

  py::class_<IdMap, std::shared_ptr<IdMap>>(m, "IdMap", "Arbitrary int64 ids -> dense indices.")
      .def(py::init([](py::handle ids, int num_threads) {
             auto map = std::make_shared<IdMap>();
             Held<int64_t> h = to_int64(ids, "ids");
             py::gil_scoped_release nogil;
             map->build(h.span(), threads_arg(num_threads));
             return map;
           }),
           py::arg("ids"), py::arg("num_threads") = 0)
      .def("__len__", &IdMap::size)
      .def(
          "lookup",
          [](const IdMap& map, py::handle ids, const std::string& missing, int num_threads) {
            if (missing != "raise" && missing != "ignore")
              throw InvalidArgument(cat("missing must be 'raise' or 'ignore', got '", missing, "'"));
            Held<int64_t> h = to_int64(ids, "ids");
            std::vector<int64_t> out(h.arr.size());
            int64_t nmiss;
            {
              py::gil_scoped_release nogil;
              nmiss = map.lookup(h.span(), out.data(), threads_arg(num_threads));
            }
            if (nmiss > 0 && missing == "raise") {
              std::string ex;
              int shown = 0;
              for (size_t i = 0; i < out.size() && shown < 5; ++i)
                if (out[i] < 0) ex += (shown++ ? ", " : "") + std::to_string(h.span()[i]);
              throw OutOfRange(cat(nmiss, " id(s) not found, e.g. ", ex));
            }
            return to_numpy(std::move(out));
          },
          py::arg("ids"), py::kw_only(), py::arg("missing") = "raise", py::arg("num_threads") = 0,
          "int64 indices; missing='raise' raises IndexError naming missing ids, 'ignore' gives -1.")
      .def(
          "contains",
          [](const IdMap& map, py::handle ids, int num_threads) {
            Held<int64_t> h = to_int64(ids, "ids");
            std::vector<int64_t> idx(h.arr.size());
            py::array_t<bool> out(h.arr.size());
            {
              py::gil_scoped_release nogil;
              map.lookup(h.span(), idx.data(), threads_arg(num_threads));
            }
            bool* o = out.mutable_data();
            for (size_t i = 0; i < idx.size(); ++i) o[i] = idx[i] >= 0;
            return out;
          },
          py::arg("ids"), py::arg("num_threads") = 0)
      .def(
          "add",
          [](IdMap& map, py::handle ids) {
            Held<int64_t> h = to_int64(ids, "ids");
            std::vector<int64_t> out(h.arr.size());
            {
              py::gil_scoped_release nogil;
              map.add(h.span(), out.data());
            }
            return to_numpy(std::move(out));
          },
          py::arg("ids"), "Append new distinct ids; returns their indices.")
      .def("ids", [](const IdMap& map) { return to_numpy(map.ids()); })
      .def_property_readonly("is_identity", &IdMap::is_identity,
                             "True when every id equals its index (lookups skip hashing).");

  py::class_<AliasTable, std::shared_ptr<AliasTable>>(m, "AliasTable", "Walker alias table.")
      .def(py::init([](py::handle weights) {
             Held<double> w = to_float<double>(weights, "weights", "float64", false);
             py::gil_scoped_release nogil;
             return std::make_shared<AliasTable>(build_alias_table(w.span()));
           }),
           py::arg("weights"))
      .def("__len__", &AliasTable::size)
      .def(
          "sample",
          [](const AliasTable& t, int64_t n, uint64_t seed, int num_threads) {
            std::vector<int64_t> out;
            {
              py::gil_scoped_release nogil;
              out = alias_sample(t, n, seed, threads_arg(num_threads));
            }
            return to_numpy(std::move(out));
          },
          py::arg("n"), py::kw_only(), py::arg("seed") = 0, py::arg("num_threads") = 0);

  m.def(
      "negative_sample",
      [](PyCSR& g, py::handle src, int64_t k, const std::string& strategy, bool exclude_existing,
         int64_t max_trials, uint64_t seed, int num_threads) {
        Held<int64_t> s = to_int64(src, "src");
        NegativeOptions opt;
        opt.strategy = parse_negative_strategy(strategy);
        opt.k = k;
        opt.exclude_existing = exclude_existing;
        opt.max_trials = max_trials;
        opt.seed = seed;
        opt.num_threads = num_threads;
        NegativePairs out;
        {
          py::gil_scoped_release nogil;
          out = negative_sample(g.view, *g.cache, s.span(), opt);
        }
        return py::make_tuple(to_numpy(std::move(out.src)), to_numpy(std::move(out.dst)));
      },
      py::arg("csr"), py::arg("src"), py::arg("k"), py::kw_only(), py::arg("strategy") = "uniform",
      py::arg("exclude_existing") = true, py::arg("max_trials") = 32, py::arg("seed") = 0,
      py::arg("num_threads") = 0, "k negatives per source; returns (neg_src, neg_dst).");

  m.def(
      "random_walk",
      [](PyCSR& g, py::handle starts, int64_t length, double p, double q, uint64_t seed,
         int num_threads) {
        Held<int64_t> s = to_int64(starts, "starts");
        std::vector<int64_t> out;
        {
          py::gil_scoped_release nogil;
          out = random_walk(g.view, s.span(), length, p, q, seed, threads_arg(num_threads));
        }
        return to_numpy_2d(std::move(out), s.arr.size(), length + 1);
      },
      py::arg("csr"), py::arg("starts"), py::arg("length"), py::kw_only(), py::arg("p") = 1.0,
      py::arg("q") = 1.0, py::arg("seed") = 0, py::arg("num_threads") = 0,
      "Uniform or node2vec walks; int64 (len(starts), length + 1), -1 padded.");

  m.def(
      "metapath_walk",
      [](std::vector<std::shared_ptr<PyCSR>> csrs, py::handle starts, std::vector<int64_t> metapath,
         uint64_t seed, int num_threads) {
        Held<int64_t> s = to_int64(starts, "starts");
        std::vector<const CSRView*> rel;
        for (auto& c : csrs) {
          if (!c) throw InvalidArgument("csrs must hold CSR objects, got None");
          rel.push_back(&c->view);
        }
        std::vector<int64_t> out;
        {
          py::gil_scoped_release nogil;
          out = metapath_walk(rel, s.span(), metapath, seed, threads_arg(num_threads));
        }
        return to_numpy_2d(std::move(out), s.arr.size(), (int64_t)metapath.size() + 1);
      },
      py::arg("csrs"), py::arg("starts"), py::arg("metapath"), py::kw_only(), py::arg("seed") = 0,
      py::arg("num_threads") = 0, "Metapath walks over typed CSRs; int64 (len(starts), len(metapath)+1).");
}
