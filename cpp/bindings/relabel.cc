// Unique-and-relabel, per call or with dense markers kept between calls.
#include "bindings.h"

#include <optional>

#include "graphplat/relabel.h"

namespace graphplat::bindings {

void bind_relabel(py::module_& m) {
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
}

}  // namespace graphplat::bindings
