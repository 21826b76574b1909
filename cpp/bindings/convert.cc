// numpy in and out: validation and copies of the arrays handed to the core.
#include "bindings.h"

#include <cstdint>

namespace graphplat::bindings {

py::module_& numpy() {
  // Leaked on purpose: destroying a Python object after interpreter shutdown crashes.
  static py::module_* np = new py::module_(py::module_::import("numpy"));
  return *np;
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

void check_plain_dtype(const py::array& a, const char* what) {
  if (a.dtype().attr("hasobject").cast<bool>())
    throw InvalidArgument(cat(what, " holds Python objects (dtype ", dtype_name(a),
                              "); rows are copied as raw bytes: use numpy indexing instead"));
}

int64_t row_bytes_of(const py::array& a) {
  int64_t row_elems = 1;
  for (py::ssize_t k = 1; k < a.ndim(); ++k) row_elems *= a.shape(k);
  return row_elems * static_cast<int64_t>(a.itemsize());
}

namespace {

// Whether obj hands out a writable buffer (so its memory can change under a reader).
bool writable_buffer(const py::object& obj) {
  Py_buffer view;
  if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_WRITABLE | PyBUF_SIMPLE) != 0) {
    PyErr_Clear();
    return false;
  }
  PyBuffer_Release(&view);
  return true;
}

}  // namespace

// Everything converted here is first copied into an array the caller cannot touch during
// the GIL-free call, unless it is read-only all the way down (then it is shared). The chain
// ends at the memory's owner: an array (read-only by the caller's promise, see _core.pyi),
// bytes, or a read-only mmap. A read-only memoryview says nothing about the object under
// it (a bytearray stays writeable), so the walk goes on to that object.
bool immutable(const py::array& a) {
  py::object cur = a;
  while (!cur.is_none()) {
    if (py::isinstance<py::array>(cur)) {
      if (cur.attr("flags").attr("writeable").cast<bool>()) return false;
      cur = cur.attr("base");
    } else if (PyMemoryView_Check(cur.ptr())) {
      if (!cur.attr("readonly").cast<bool>()) return false;
      cur = cur.attr("obj");
      if (cur.is_none()) return false;  // memory of unknown origin
    } else if (py::isinstance<py::bytes>(cur)) {
      return true;
    } else if (py::hasattr(cur, "closed") && py::hasattr(cur, "madvise")) {  // mmap.mmap
      return !writable_buffer(cur);  // ACCESS_READ; the other modes can be written through
    } else {
      return false;
    }
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

Held<int64_t> to_int64(py::handle obj, const char* name, bool share_if_immutable) {
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

Held<int64_t> int64_data(py::handle obj, const char* name) {
  py::array a = as_1d(obj, name);
  const bool exact = a.dtype().kind() == 'i' && a.itemsize() == 8 && (a.flags() & py::array::c_style) &&
                     a.dtype().byteorder() != '>';
  if (exact) return {py::array_t<int64_t, py::array::c_style>::ensure(a)};
  return to_int64(obj, name);
}

void check_output(const py::array& out, const py::array* src) {
  if (!(out.flags() & py::array::c_style) || !out.writeable())
    throw InvalidArgument("out must be C-contiguous and writable");
  if (src != nullptr && out.nbytes() > 0 && src->nbytes() > 0) {
    const char* a = static_cast<const char*>(src->data());
    const char* b = static_cast<const char*>(out.data());
    if (a < b + out.nbytes() && b < a + src->nbytes()) throw InvalidArgument("out must not overlap source");
  }
}

void make_readonly(py::array& a) { a.attr("setflags")(py::arg("write") = false); }

}  // namespace graphplat::bindings
