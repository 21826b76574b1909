// Small graphs the cases share: built by a fixed formula, so every run sees the same graph.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "graphplat/csr.h"
#include "graphplat/rng.h"

namespace testing {

// Owns the arrays a CSRView points into.
struct Graph {
  std::vector<int64_t> indptr, indices;
  graphplat::CSRView view;

  // num_rows x num_cols, row r with up to (r * 7) % (max_degree + 1) distinct sorted
  // columns (some rows empty); validated.
  static Graph random(int64_t num_rows, int64_t num_cols, int64_t max_degree, uint64_t seed) {
    Graph g;
    g.indptr.push_back(0);
    for (int64_t r = 0; r < num_rows; ++r) {
      const int64_t d = std::min<int64_t>((r * 7) % (max_degree + 1), num_cols);
      graphplat::CounterRng rng(seed, 0, static_cast<uint64_t>(r));
      // Up to d columns 3 apart from a random start, wrapped, sorted and deduplicated.
      std::vector<int64_t> cols;
      const int64_t start = static_cast<int64_t>(rng.below(num_cols));
      for (int64_t k = 0; k < d; ++k) cols.push_back((start + k * 3) % num_cols);
      std::sort(cols.begin(), cols.end());
      cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
      g.indices.insert(g.indices.end(), cols.begin(), cols.end());
      g.indptr.push_back(static_cast<int64_t>(g.indices.size()));
    }
    g.view.indptr = g.indptr.data();
    g.view.indices = g.indices.data();
    g.view.nnz = static_cast<int64_t>(g.indices.size());
    g.view.num_cols = num_cols;
    graphplat::validate_csr(g.view, static_cast<int64_t>(g.indptr.size()), 0, 0, 1);
    return g;
  }

  Graph() = default;
  Graph(const Graph&) = delete;
  Graph(Graph&& o) noexcept
      : indptr(std::move(o.indptr)), indices(std::move(o.indices)), view(o.view) {
    view.indptr = indptr.data();  // vector moves keep their buffers, but say so explicitly
    view.indices = indices.data();
  }
};

inline graphplat::Span<int64_t> span(const std::vector<int64_t>& v) {
  return graphplat::make_span(v.data(), static_cast<int64_t>(v.size()));
}

template <class V>
std::vector<int64_t> vec(const V& v) {
  return std::vector<int64_t>(v.begin(), v.end());
}

}  // namespace testing
