#pragma once
// The inputs of the GPU rank-correlation benchmarks, built by the same formula in
// benchmarks/peers/gpu_peers.py (make_inputs), so that both time the very same matrices. No
// missing values (the PyTorch pipeline has no NaN handling); accuracies with 3 decimals (ties):
//
//   reference[m] = round3(0.5 + 0.4 u(m))
//   scores[m, s] = round3(reference[m] (0.3 + 0.7 s / max(S - 1, 1)) + 0.2 u(1000003 + m S + s))
//
// in doubles, then cast to float; u(k) is SplitMix64's first unit draw from state k.

#include <support/bench_data.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace proxytask::bench {

struct gpu_problem {
  std::size_t models = 0, steps = 0;
  std::vector<float> scores;     ///< models x steps, row-major
  std::vector<float> reference;  ///< one per model
};

inline gpu_problem make_gpu_problem(std::size_t steps, std::size_t models) {
  auto const unit_at = [](std::uint64_t key) { return splitmix64(key).unit(); };
  gpu_problem p{models, steps, std::vector<float>(models * steps), std::vector<float>(models)};
  double const last = static_cast<double>(std::max<std::size_t>(steps, 2) - 1);
  for (std::size_t m = 0; m < models; ++m) {
    double const reference = three_decimals(0.5 + 0.4 * unit_at(m));
    p.reference[m] = static_cast<float>(reference);
    for (std::size_t s = 0; s < steps; ++s) {
      double const progress = 0.3 + 0.7 * static_cast<double>(s) / last;
      double const noise = 0.2 * unit_at(1000003 + m * steps + s);
      p.scores[m * steps + s] = static_cast<float>(three_decimals(reference * progress + noise));
    }
  }
  return p;
}

}  // namespace proxytask::bench
