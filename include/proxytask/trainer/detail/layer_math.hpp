#pragma once
/// @file
/// Per-element math of the trainer's operations, shared by the CPU back-end and the CUDA
/// kernels (cuda/proxytask/trainer/detail/mlp_kernels.cuh) (PROXYTASK_HD only, STYLE.md 2.3): the
/// activations and their derivatives, and the Philox draws behind initialisation, dropout masks and
/// the data order, so that both back-ends draw the same numbers.

#include <proxytask/core/config.hpp>
#include <proxytask/stats/philox.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace proxytask::trainer::detail {

// --- activations ----------------------------------------------------------------------------

/// sqrt(2 / pi) and the cubic coefficient of the tanh approximation of GELU (Hendrycks and
/// Gimpel 2016; PyTorch's gelu(approximate="tanh")).
inline constexpr float gelu_k = 0.7978845608028654f;
inline constexpr float gelu_c = 0.044715f;

template <activation Act>
PROXYTASK_HD inline float activate(float z) noexcept {
  if constexpr (Act == activation::relu) {
    return z > 0.0f ? z : 0.0f;
  } else if constexpr (Act == activation::tanh) {
    return std::tanh(z);
  } else {
    float const t = std::tanh(gelu_k * (z + gelu_c * z * z * z));
    return 0.5f * z * (1.0f + t);
  }
}

/// d activate(z) / dz (ReLU: 0 at z = 0, as in PyTorch).
template <activation Act>
PROXYTASK_HD inline float activate_derivative(float z) noexcept {
  if constexpr (Act == activation::relu) {
    return z > 0.0f ? 1.0f : 0.0f;
  } else if constexpr (Act == activation::tanh) {
    float const t = std::tanh(z);
    return 1.0f - t * t;
  } else {
    float const t = std::tanh(gelu_k * (z + gelu_c * z * z * z));
    return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * gelu_k * (1.0f + 3.0f * gelu_c * z * z);
  }
}

/// Calls f with the activation as a compile-time constant (keeps the switch out of the loops).
template <class F>
inline void with_activation(activation act, F&& f) {
  switch (act) {
    case activation::relu: f(std::integral_constant<activation, activation::relu>{}); return;
    case activation::tanh: f(std::integral_constant<activation, activation::tanh>{}); return;
    case activation::gelu: f(std::integral_constant<activation, activation::gelu>{}); return;
  }
  PROXYTASK_EXPECTS(false, "unknown activation");
}

// --- Philox draws ---------------------------------------------------------------------------

/// What a trainer stream is drawn for: no two purposes share a counter.
enum class stream : std::uint32_t { init = 1, dropout = 2, order = 3 };

/// Words 4 block .. 4 block + 3 of the stream (seed; purpose, index, position): Philox4x32-10
/// with key = {seed low, seed high} and counter = {block, purpose << 24 | index, position low,
/// position high}. index is the layer (init, dropout); position the step (dropout) or epoch
/// (data order).
PROXYTASK_HD inline r123array4x32 philox_block(std::uint64_t seed, stream purpose,
                                               std::uint32_t index, std::uint64_t position,
                                               std::uint32_t block) noexcept {
  r123array2x32 const key = {
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  r123array4x32 const counter = {{block, (static_cast<std::uint32_t>(purpose) << 24) | index,
                                  static_cast<std::uint32_t>(position),
                                  static_cast<std::uint32_t>(position >> 32)}};
  return philox4x32_R(10, counter, key);
}

/// A 32-bit word to a float in (0, 1): (top 24 bits + 0.5) / 2^24, exact in float.
PROXYTASK_HD constexpr float to_open_unit(std::uint32_t u) noexcept {
  return (static_cast<float>(u >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

/// The dropout threshold of rate p on the top 24 bits of a draw: round(p 2^24) (host only: both
/// back-ends compute it here, so they keep the same elements).
inline std::uint32_t dropout_threshold(double p) noexcept {
  return static_cast<std::uint32_t>(std::llround(p * 16777216.0));
}

/// The scale of a kept element, 1 / (1 - p) rounded to float (host only, as dropout_threshold).
inline float dropout_scale(double p) noexcept { return static_cast<float>(1.0 / (1.0 - p)); }

/// True when a dropout draw keeps its element: the top 24 bits reach round(p * 2^24).
PROXYTASK_HD constexpr bool keeps(std::uint32_t u, std::uint32_t threshold24) noexcept {
  return (u >> 8) >= threshold24;
}

}  // namespace proxytask::trainer::detail
