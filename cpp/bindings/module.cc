// The module graphplat._core: error translation, constants and thread settings; every area
// binds its own functions and classes (bindings.h), in the order of the original single file
// so that signatures name the Python classes bound before them.
#include "bindings.h"

#include <cstdlib>
#include <cstring>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "graphplat/sampler.h"

namespace {

// glibc serves large blocks with mmap and returns them on free, so every batch would
// page-fault its output buffers in afresh (a third of sampling time, measured with perf).
// Keeping blocks up to 256 MB in the heap avoids that. GRAPHPLAT_MALLOC_TUNING=0 opts out.
void tune_malloc() {
#if defined(__GLIBC__)
  const char* env = std::getenv("GRAPHPLAT_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  using namespace graphplat;
  using namespace graphplat::bindings;
  m.doc() = "graphplat C++ core: CSR graphs, id maps, samplers, walks, relabeling.";
  tune_malloc();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const OutOfRange& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("MAX_FANOUT") = kMaxFanout;
  {
    // From parse_strategy's own table: the canonical names, and the aliases it accepts.
    py::list canonical;
    py::dict aliases;
    for (const StrategyName& n : strategy_names()) {
      const char* canon = strategy_names()[static_cast<int>(n.strategy)].name;
      if (std::strcmp(n.name, canon) == 0) canonical.append(n.name);
      else aliases[n.name] = canon;
    }
    m.attr("STRATEGIES") = py::tuple(canonical);
    m.attr("STRATEGY_ALIASES") = aliases;
  }
  m.def("get_num_threads", &default_num_threads, "Default thread count of the core.");
  m.def("set_num_threads", &set_default_num_threads, py::arg("n"),
        "Set the default thread count (>= 1).");

  bind_csr(m);
  bind_sampling(m);
  bind_relabel(m);
  bind_gather(m);
  bind_idmap(m);
  bind_negative(m);
  bind_walk(m);
  bind_halfcast(m);
  bind_sockio(m);
  bind_route(m);
}
