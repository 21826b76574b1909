// Row gather/scatter of C-contiguous arrays of any fixed-size dtype.
#include "bindings.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "graphplat/gather.h"

namespace graphplat::bindings {

void bind_gather(py::module_& m) {
  m.def(
      "take_rows",
      [](py::handle source, py::handle rows, py::handle out_arg, py::handle out_rows_arg, int num_threads) {
        if (!py::isinstance<py::array>(source))
          throw InvalidArgument("source must be a numpy array");
        if (!out_rows_arg.is_none() && out_arg.is_none()) throw InvalidArgument("out_rows needs out");
        py::array src = py::reinterpret_borrow<py::array>(source);
        if (src.ndim() < 1) throw InvalidArgument("source must have at least one dimension");
        check_plain_dtype(src, "source");
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
          // A caller-owned output (e.g. a recycled buffer): same dtype and row shape, writable.
          if (!py::isinstance<py::array>(out_arg)) throw InvalidArgument("out must be a numpy array");
          out = py::reinterpret_borrow<py::array>(out_arg);
          if (!py::detail::npy_api::get().PyArray_EquivTypes_(out.dtype().ptr(), src.dtype().ptr()))
            throw InvalidArgument("out must have the dtype of source");
          if (out.ndim() != src.ndim() || !std::equal(shape.begin() + 1, shape.end(), out.shape() + 1))
            throw InvalidArgument("out must have the row shape of source (shape[1:])");
          if (out_rows_arg.is_none() && out.shape(0) != shape[0])
            throw InvalidArgument("out must have shape (len(rows),) + source.shape[1:]");
          check_output(out, &src);
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
      "source[rows] for a C-contiguous array (any dtype but object), copied in parallel (into "
      "out, at out_rows, when given); see _core.pyi.");

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
        check_plain_dtype(src, "source");
        if (!(src.flags() & py::array::c_style))
          throw InvalidArgument("source must be C-contiguous (np.ascontiguousarray)");
        check_output(out, &src);
        Held<int64_t> r = to_int64(rows, "rows");
        if (r.span().size != src.shape(0))
          throw InvalidArgument(cat("rows has ", r.span().size, " entries but source has ", src.shape(0), " rows"));
        const char* in = static_cast<const char*>(src.data());
        char* dst = static_cast<char*>(out.mutable_data());
        const int64_t row_bytes = row_bytes_of(src);
        {
          py::gil_scoped_release nogil;
          scatter_rows(in, row_bytes, r.span(), dst, out.shape(0), threads_arg(num_threads));
        }
        return out;
      },
      py::arg("source"), py::arg("rows"), py::arg("out"), py::kw_only(), py::arg("num_threads") = 0,
      "out[rows] = source for C-contiguous arrays, copied in parallel; see _core.pyi.");

  // A bytes object filled in place: answers sent over gRPC must be bytes, and building them
  // from arrays (b"".join) copies every row once more. The caller fills the view before the
  // bytes object is shared. With zero=false the caller must write every byte (stale heap
  // memory would otherwise leak into an answer).
  m.def(
      "bytes_buffer",
      [](py::ssize_t size, bool zero) {
        if (size < 0) throw InvalidArgument(cat("size must be >= 0, got ", size));
        PyObject* raw = PyBytes_FromStringAndSize(nullptr, size);
        if (raw == nullptr) throw py::error_already_set();
        py::object bytes = py::reinterpret_steal<py::object>(raw);
        auto* data = reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(raw));
        if (zero) {
          py::gil_scoped_release nogil;
          std::fill(data, data + size, uint8_t{0});
        }
        // The view's base is the bytes object, which keeps the memory alive.
        py::array_t<uint8_t> view({size}, {py::ssize_t{1}}, data, bytes);
        return py::make_tuple(bytes, view);
      },
      py::arg("size"), py::kw_only(), py::arg("zero") = true,
      "(bytes of `size` zero bytes, a writable uint8 array over them); see _core.pyi.");
}

}  // namespace graphplat::bindings
