// Neighbor sampling: one hop over a batch of seeds, and multi-hop blocks.
#include "bindings.h"

#include <string>
#include <vector>

#include "graphplat/sampler.h"

namespace graphplat::bindings {

namespace {

struct PyHop {
  py::array_t<int64_t> nodes, src, dst, eids;
  int64_t num_dst;
};

}  // namespace

void bind_sampling(py::module_& m) {
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
}

}  // namespace graphplat::bindings
