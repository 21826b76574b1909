// hash_partitions, split_by_partition and merge_samples: PartitionBook's hash and
// RoutedGraph's per-hop split and merge.
#include "bindings.h"

#include <vector>

#include "graphplat/route.h"

namespace graphplat::bindings {

void bind_route(py::module_& m) {
  m.def(
      "hash_partitions",
      [](py::handle ids, int64_t num_partitions, int num_threads) {
        Held<int64_t> i = to_int64(ids, "ids");
        py::array_t<int64_t> out(i.span().size);
        int64_t* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          hash_owners(i.span(), num_partitions, o, threads_arg(num_threads));
        }
        return out;
      },
      py::arg("ids"), py::arg("num_partitions"), py::kw_only(), py::arg("num_threads") = 0,
      "int64 partition of every id under PartitionBook's hash (splitmix64(id) mod "
      "num_partitions); see _core.pyi.");

  m.def(
      "split_by_partition",
      [](py::handle ids, int64_t num_partitions, py::handle parts_arg, int num_threads) {
        Held<int64_t> i = to_int64(ids, "ids");
        Held<int64_t> parts = parts_arg.is_none() ? Held<int64_t>{py::array_t<int64_t, py::array::c_style>(0)}
                                                  : to_int64(parts_arg, "parts");
        const int64_t n = i.span().size;
        if (num_partitions < 1) throw InvalidArgument(cat("num_partitions must be >= 1, got ", num_partitions));
        py::array_t<int64_t> order(n), bounds(num_partitions + 1);
        int64_t* o = order.mutable_data();
        int64_t* b = bounds.mutable_data();
        {
          py::gil_scoped_release nogil;
          split_by_partition(i.span(), parts.span(), num_partitions, o, b, threads_arg(num_threads));
        }
        return py::make_tuple(order, bounds);
      },
      py::arg("ids"), py::arg("num_partitions"), py::kw_only(), py::arg("parts") = py::none(),
      py::arg("num_threads") = 0,
      "(order, bounds): the positions of ids grouped by owning partition (parts[i], or "
      "PartitionBook's hash of ids[i]), ascending within each; see _core.pyi.");

  m.def(
      "merge_samples",
      [](int64_t num_seeds, py::list parts_arg, int num_threads) {
        // positions and counts decide where the core writes: private copies, checked once;
        // neighbors and eids are only copied, so they are read in place.
        std::vector<Held<int64_t>> held;
        std::vector<SamplePart> parts;
        held.reserve(parts_arg.size() * 4);
        for (py::handle item : parts_arg) {
          py::tuple t = py::reinterpret_borrow<py::object>(item).cast<py::tuple>();
          if (t.size() != 4)
            throw InvalidArgument("each part must be (positions, counts, neighbors, eids)");
          held.push_back(to_int64(t[0], "positions"));
          held.push_back(to_int64(t[1], "counts"));
          held.push_back(int64_data(t[2], "neighbors"));
          held.push_back(int64_data(t[3], "eids"));
          const size_t k = held.size();
          parts.push_back({held[k - 4].span(), held[k - 3].span(), held[k - 2].span(), held[k - 1].span()});
        }
        const int64_t total = check_sample_parts(num_seeds, parts);
        py::array_t<int64_t> counts(num_seeds), neighbors(total), eids(total);
        int64_t* c = counts.mutable_data();
        int64_t* nb = neighbors.mutable_data();
        int64_t* e = eids.mutable_data();
        {
          py::gil_scoped_release nogil;
          merge_sample_parts(num_seeds, parts, c, nb, e, threads_arg(num_threads));
        }
        return py::make_tuple(counts, neighbors, eids);
      },
      py::arg("num_seeds"), py::arg("parts"), py::kw_only(), py::arg("num_threads") = 0,
      "(counts, neighbors, eids) of a batch of num_seeds seeds from per-partition answers "
      "[(positions, counts, neighbors, eids), ...]; see _core.pyi.");
}

}  // namespace graphplat::bindings
