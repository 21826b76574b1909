// IdMap: arbitrary int64 ids -> dense indices.
#include "bindings.h"

#include <string>
#include <vector>

#include "graphplat/idmap.h"

namespace graphplat::bindings {

void bind_idmap(py::module_& m) {
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
                             "True when every id equals its index (lookups skip hashing).")
      .def_property_readonly("is_dense", &IdMap::is_dense,
                             "True when lookups read a direct id -> index table (every id a small "
                             "non-negative int), no hashing.");
}

}  // namespace graphplat::bindings
