// recv_rows: a socket's stream of rows read straight into rows of an array.
#include "bindings.h"

#include <cerrno>
#include <cstring>

#include "graphplat/sockio.h"

namespace graphplat::bindings {

void bind_sockio(py::module_& m) {
  m.def(
      "recv_rows",
      [](int fd, py::handle out_arg, py::handle rows, py::object timeout) {
        if (fd < 0) throw InvalidArgument(cat("fd must be an open file descriptor, got ", fd));
        if (!py::isinstance<py::array>(out_arg)) throw InvalidArgument("out must be a numpy array");
        py::array out = py::reinterpret_borrow<py::array>(out_arg);
        if (out.ndim() < 1) throw InvalidArgument("out must have at least one dimension");
        check_plain_dtype(out, "out");
        check_output(out, nullptr);
        int64_t timeout_ms = -1;
        if (!timeout.is_none()) {
          const double t = timeout.cast<double>();
          if (!(t >= 0)) throw InvalidArgument(cat("timeout must be >= 0 seconds or None, got ", t));
          timeout_ms = static_cast<int64_t>(t * 1000.0 + 0.5);
        }
        Held<int64_t> r = to_int64(rows, "rows");
        const int64_t row_bytes = row_bytes_of(out);
        char* dst = static_cast<char*>(out.mutable_data());
        RecvResult res;
        {
          py::gil_scoped_release nogil;
          res = recv_rows(fd, r.span(), row_bytes, dst, out.shape(0), timeout_ms);
        }
        switch (res.status) {
          case RecvStatus::kOk:
            return res.bytes_read;
          case RecvStatus::kTimeout:
            PyErr_SetString(PyExc_TimeoutError, cat("timed out after ", res.bytes_read, " of ",
                                                    r.span().size * row_bytes, " bytes").c_str());
            throw py::error_already_set();
          case RecvStatus::kClosed:
            PyErr_SetString(PyExc_ConnectionError, cat("the connection closed after ", res.bytes_read, " of ",
                                                       r.span().size * row_bytes, " bytes").c_str());
            throw py::error_already_set();
          case RecvStatus::kError:
            break;
        }
        errno = res.error;
        PyErr_SetFromErrno(PyExc_OSError);
        throw py::error_already_set();
      },
      py::arg("fd"), py::arg("out"), py::arg("rows"), py::kw_only(), py::arg("timeout") = py::none(),
      "Read len(rows) rows of out's row size from socket fd into out[rows]; see _core.pyi.");
}

}  // namespace graphplat::bindings
