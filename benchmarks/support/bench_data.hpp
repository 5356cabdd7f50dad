#pragma once
// The benchmark inputs, generated portably so that benchmarks/peers/*.py builds the very same
// matrices (SplitMix64 and plain double arithmetic; no std:: distributions, whose output differs
// between standard libraries and Python).
//
// A model m has a quality q_m in [0, 1); its full-training accuracy is q_m-driven, and its proxy
// accuracy at step s (of S) rises with progress p = (s + 1) / S from noisy to close to the final
// ranking. Accuracies have 3 decimals (ties, as in real logs); 5% of the proxy values are missing.

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace proxytask::bench {

/// SplitMix64 (Steele, Lea, Flood 2014): the stream the Python peers reproduce.
class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1) with 53 random bits.
  double unit() { return static_cast<double>(next() >> 11) * 0x1p-53; }

 private:
  std::uint64_t state_;
};

/// Rounds to 3 decimals, halves up (the same in Python: math.floor(1000 * v + 0.5) / 1000).
inline double three_decimals(double v) { return std::floor(1000.0 * v + 0.5) / 1000.0; }

struct problem {
  std::size_t models = 0, steps = 0;
  std::vector<double> scores;     ///< models x steps, row-major, NaN = missing
  std::vector<double> reference;  ///< one per model
};

/// The inputs of every CPU/GPU benchmark and of the peers, for (steps, models).
inline problem make_problem(std::size_t steps, std::size_t models, std::uint64_t seed = 42) {
  splitmix64 gen(seed);
  problem p{models, steps, std::vector<double>(models * steps), std::vector<double>(models)};
  for (std::size_t m = 0; m < models; ++m) {
    double const quality = gen.unit();
    p.reference[m] = three_decimals(0.5 + 0.4 * quality + 0.02 * (gen.unit() - 0.5));
    for (std::size_t s = 0; s < steps; ++s) {
      double const progress = static_cast<double>(s + 1) / static_cast<double>(steps);
      double const noise = (gen.unit() - 0.5) * 0.2 * (1.2 - progress);
      double const accuracy = three_decimals(progress * (0.3 + 0.6 * quality) + noise);
      p.scores[m * steps + s] =
          gen.unit() < 0.05 ? std::numeric_limits<double>::quiet_NaN() : accuracy;
    }
  }
  return p;
}

}  // namespace proxytask::bench
