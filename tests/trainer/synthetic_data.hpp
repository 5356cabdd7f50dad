#pragma once
// Synthetic data for the trainer tests: uniform pixels in [0, 1) and uniform labels, from a
// seeded SplitMix64 (the same on every platform), and a small model to train on them.

#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace proxytask::testing {

struct synthetic_set {
  std::size_t features = 0;
  std::vector<float> images;
  std::vector<std::uint8_t> labels;
  std::size_t size() const noexcept { return labels.size(); }

  std::span<float const> images_of(std::size_t begin, std::size_t rows) const {
    return std::span<float const>(images).subspan(begin * features, rows * features);
  }
  std::span<std::uint8_t const> labels_of(std::size_t begin, std::size_t rows) const {
    return std::span<std::uint8_t const>(labels).subspan(begin, rows);
  }
};

inline std::uint64_t splitmix(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline synthetic_set make_synthetic(std::size_t rows, std::size_t features, std::size_t classes,
                                    std::uint64_t seed) {
  synthetic_set s;
  s.features = features;
  s.images.resize(rows * features);
  s.labels.resize(rows);
  std::uint64_t state = seed;
  for (float& x : s.images) x = static_cast<float>(splitmix(state) >> 40) * (1.0f / 16777216.0f);
  for (auto& y : s.labels) y = static_cast<std::uint8_t>(splitmix(state) % classes);
  return s;
}

/// Runs `steps` train_steps over the set in consecutive batches of `batch` (wrapping around);
/// returns the last loss.
inline float train_for(trainer::mlp_trainer& t, synthetic_set const& data, std::size_t batch,
                       std::int64_t steps) {
  float loss = 0.0f;
  for (std::int64_t s = 0; s < steps; ++s) {
    std::size_t const begin = (static_cast<std::size_t>(t.step()) * batch) % data.size();
    std::size_t const rows = std::min(batch, data.size() - begin);
    loss = t.train_step(data.images_of(begin, rows), data.labels_of(begin, rows));
  }
  return loss;
}

}  // namespace proxytask::testing
