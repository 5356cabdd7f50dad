#pragma once
// The (x, y) samples of the public test vectors (tests/data/reference: scipy_spearman,
// scipy_kendall, scipy_bootstrap_ci), read by a host-compiled file so that the CUDA tests need no
// JSON parser under nvcc.

#include <string>
#include <vector>

namespace proxytask::testing {

struct public_pair_case {
  std::string id;
  std::vector<double> x, y;  // NaN where the vector has null
};

/// Every vector of those three files with equal-length x and y.
/// @throws std::runtime_error when a file cannot be read
std::vector<public_pair_case> public_pair_cases();

}  // namespace proxytask::testing
