// float32 features <-> float16/bfloat16 (fused with the row gather/scatter); see halfcast.h.
#include "bindings.h"

#include <algorithm>
#include <string>
#include <vector>

#include "graphplat/halfcast.h"

namespace graphplat::bindings {

namespace {

HalfFormat half_format(const std::string& fmt) {
  if (fmt == "float16") return HalfFormat::kFloat16;
  if (fmt == "bfloat16") return HalfFormat::kBFloat16;
  throw InvalidArgument(cat("format must be 'float16' or 'bfloat16', got '", fmt, "'"));
}

// float16 values travel as numpy float16, bfloat16 ones as their uint16 bit patterns.
const char* carrier_name(HalfFormat fmt) { return fmt == HalfFormat::kFloat16 ? "float16" : "uint16"; }

py::array c_array(py::handle h, const char* what) {
  if (!py::isinstance<py::array>(h)) throw InvalidArgument(cat(what, " must be a numpy array"));
  py::array a = py::reinterpret_borrow<py::array>(h);
  if (a.ndim() < 1) throw InvalidArgument(cat(what, " must have at least one dimension"));
  if (!(a.flags() & py::array::c_style)) throw InvalidArgument(cat(what, " must be C-contiguous (np.ascontiguousarray)"));
  return a;
}

bool has_dtype(const py::array& a, const char* name) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype(name).ptr());
}

}  // namespace

void bind_halfcast(py::module_& m) {
  m.def(
      "encode_half",
      [](py::handle source, const std::string& format, py::handle rows_arg, py::handle out_arg,
         py::handle out_rows_arg, int num_threads) {
        const HalfFormat fmt = half_format(format);
        py::array src = c_array(source, "source");
        if (!has_dtype(src, "float32")) throw InvalidArgument(cat("source must be float32, got ", dtype_name(src)));
        if (!out_rows_arg.is_none() && out_arg.is_none()) throw InvalidArgument("out_rows needs out");
        std::vector<py::ssize_t> shape(src.shape(), src.shape() + src.ndim());
        const int64_t num_rows = shape[0];
        int64_t width = 1;
        for (size_t k = 1; k < shape.size(); ++k) width *= shape[k];
        Held<int64_t> rows, out_rows;
        if (!rows_arg.is_none()) rows = to_int64(rows_arg, "rows");
        if (!out_rows_arg.is_none()) out_rows = to_int64(out_rows_arg, "out_rows");
        const int64_t n = rows_arg.is_none() ? num_rows : rows.span().size;
        shape[0] = static_cast<py::ssize_t>(n);
        py::array out;
        if (out_arg.is_none()) {
          out = py::array(py::dtype(carrier_name(fmt)), shape);
        } else {
          out = c_array(out_arg, "out");
          if (!has_dtype(out, carrier_name(fmt)))
            throw InvalidArgument(cat("out must be ", carrier_name(fmt), " for ", format, ", got ", dtype_name(out)));
          if (out.ndim() != src.ndim() || !std::equal(shape.begin() + 1, shape.end(), out.shape() + 1))
            throw InvalidArgument("out must have the row shape of source (shape[1:])");
          if (out_rows_arg.is_none() && out.shape(0) != shape[0])
            throw InvalidArgument(cat("out must have ", n, " rows"));
          check_output(out, &src);
        }
        const Span<int64_t> none{nullptr, 0};
        const float* in = static_cast<const float*>(src.data());
        auto* dst = static_cast<uint16_t*>(out.mutable_data());
        const int64_t out_len = out.shape(0);
        {
          py::gil_scoped_release nogil;
          encode_half_rows(in, num_rows, width, rows_arg.is_none() ? none : rows.span(), dst, out_len,
                           out_rows_arg.is_none() ? none : out_rows.span(), fmt, threads_arg(num_threads));
        }
        return out;
      },
      py::arg("source"), py::arg("format"), py::kw_only(), py::arg("rows") = py::none(),
      py::arg("out") = py::none(), py::arg("out_rows") = py::none(), py::arg("num_threads") = 0,
      "float32 source (its rows `rows`) in float16/bfloat16, in parallel (into out, at out_rows, "
      "when given); see _core.pyi.");

  m.def(
      "decode_half",
      [](py::handle source, const std::string& format, py::handle out_arg, int num_threads) {
        const HalfFormat fmt = half_format(format);
        py::array src = c_array(source, "source");
        if (!has_dtype(src, carrier_name(fmt)))
          throw InvalidArgument(cat("source must be ", carrier_name(fmt), " for ", format, ", got ", dtype_name(src)));
        std::vector<py::ssize_t> shape(src.shape(), src.shape() + src.ndim());
        py::array out;
        if (out_arg.is_none()) {
          out = py::array(py::dtype("float32"), shape);
        } else {
          out = c_array(out_arg, "out");
          if (!has_dtype(out, "float32")) throw InvalidArgument(cat("out must be float32, got ", dtype_name(out)));
          if (out.ndim() != src.ndim() || !std::equal(shape.begin(), shape.end(), out.shape()))
            throw InvalidArgument("out must have the shape of source");
          check_output(out, &src);
        }
        const auto* in = static_cast<const uint16_t*>(src.data());
        auto* dst = static_cast<float*>(out.mutable_data());
        const int64_t n = static_cast<int64_t>(src.size());
        {
          py::gil_scoped_release nogil;
          decode_half(in, n, dst, fmt, threads_arg(num_threads));
        }
        return out;
      },
      py::arg("source"), py::arg("format"), py::kw_only(), py::arg("out") = py::none(),
      py::arg("num_threads") = 0, "float32 values of float16/bfloat16 source (into out when given); see _core.pyi.");
}

}  // namespace graphplat::bindings
