// Internal to cpp/bindings/ (the only files that know about Python): the numpy conversions
// every area shares, the Python-side CSR, and one bind_* function per area, called in this
// order by module.cc. One file per area keeps rebuilds small (pybind11 FAQ, "How can I reduce
// the build time?").
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graphplat/common.h"
#include "graphplat/csr.h"
#include "graphplat/parallel.h"

namespace graphplat::bindings {

namespace py = pybind11;

void bind_csr(py::module_& m);       // CSR
void bind_sampling(py::module_& m);  // sample_neighbors, SampledHop, sample_multihop
void bind_relabel(py::module_& m);   // unique_and_relabel, Relabeler
void bind_gather(py::module_& m);    // take_rows, scatter_rows
void bind_idmap(py::module_& m);     // IdMap
void bind_negative(py::module_& m);  // AliasTable, negative_sample
void bind_walk(py::module_& m);      // random_walk, metapath_walk
void bind_halfcast(py::module_& m);  // encode_half, decode_half
void bind_sockio(py::module_& m);    // recv_rows
void bind_route(py::module_& m);     // split_by_partition, merge_samples

// numpy, imported once.
py::module_& numpy();

// A contiguous array of T kept alive while the core reads it.
template <class T>
struct Held {
  py::array_t<T, py::array::c_style> arr;
  Span<T> span() const { return make_span(arr.data(), static_cast<int64_t>(arr.size())); }
};

std::string dtype_name(const py::array& a);
// Rows are copied as raw bytes: object references would be copied without their reference
// counts (and freed twice later), so InvalidArgument for a dtype holding Python objects.
void check_plain_dtype(const py::array& a, const char* what);
// Bytes of one row (a[0]) of an array with at least one dimension.
int64_t row_bytes_of(const py::array& a);
// An output array the core writes: C-contiguous and writable, and (src given) sharing no
// memory with the source it is computed from. InvalidArgument otherwise.
void check_output(const py::array& out, const py::array* src);
// Whether nothing can write to a's memory (read-only all the way down its bases).
bool immutable(const py::array& a);
// np.asarray(obj), which must be 1-D; `name` goes into the error.
py::array as_1d(py::handle obj, const char* name);

// A 1-D int64 array (a private copy unless share_if_immutable and nothing can change it
// during the GIL-free call). InvalidArgument names `name` on a wrong kind or shape.
Held<int64_t> to_int64(py::handle obj, const char* name, bool share_if_immutable = false);

// A 1-D int64 array shared without a copy when it already is one, for values the core only
// copies (never uses as indices or sizes): another thread writing them meanwhile changes
// the values copied, never which memory is touched (the reference held keeps the array
// from being resized or freed).
Held<int64_t> int64_data(py::handle obj, const char* name);

// The same for a numeric array converted to T (float or double, numpy `dtype`).
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

void make_readonly(py::array& a);

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

inline int threads_arg(int n) { return resolve_threads(n); }

// The Python CSR: the view the core reads plus the arrays that own its memory.
struct PyCSR {
  py::array_t<int64_t> indptr, indices, eids_arr;
  py::object weights_arr = py::none();
  py::object eids_obj = py::none();
  CSRView view;
  std::unique_ptr<CSRCache> cache = std::make_unique<CSRCache>();
};

}  // namespace graphplat::bindings
