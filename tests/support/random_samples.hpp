#pragma once
// Seeded random samples for property tests: continuous values, or small integers (heavy ties),
// with an optional share of NaN.

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace proxytask::testing {

/// n values; with `levels` > 0 they are integers in [0, levels) (ties), else normal deviates.
/// A share `nan_share` of them is NaN.
inline std::vector<double> random_sample(std::size_t n, std::uint64_t seed, int levels = 0,
                                         double nan_share = 0.0) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> level(0, levels > 0 ? levels - 1 : 0);
  std::uniform_real_distribution<double> unit;
  std::vector<double> v(n);
  for (auto& x : v) {
    x = levels > 0 ? level(gen) : normal(gen);
    if (unit(gen) < nan_share) x = std::nan("");
  }
  return v;
}

}  // namespace proxytask::testing
