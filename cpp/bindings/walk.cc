// Random walks: uniform, node2vec and metapath.
#include "bindings.h"

#include <vector>

#include "graphplat/walk.h"

namespace graphplat::bindings {

void bind_walk(py::module_& m) {
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

}  // namespace graphplat::bindings
