#pragma once
// Ranks from their definition, in O(n^2): the oracle the fast implementations are checked
// against.

#include <vector>

namespace proxytask::testing {

/// Average ranks: (# smaller) + (# equal + 1) / 2, 1-based.
inline std::vector<double> average_ranks_by_definition(std::vector<double> const& v) {
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    double smaller = 0, equal = 0;
    for (double w : v) {
      smaller += w < v[i];
      equal += w == v[i];
    }
    r[i] = smaller + (equal + 1) / 2;
  }
  return r;
}

}  // namespace proxytask::testing
