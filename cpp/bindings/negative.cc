// Alias tables and negative sampling.
#include "bindings.h"

#include <string>
#include <vector>

#include "graphplat/negative.h"

namespace graphplat::bindings {

void bind_negative(py::module_& m) {
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
}

}  // namespace graphplat::bindings
