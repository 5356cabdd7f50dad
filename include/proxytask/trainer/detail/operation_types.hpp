#pragma once
/// @file
/// The vocabulary of the trainer's operation table that every back-end shares (cpu_backend.hpp,
/// cuda/proxytask/trainer/mlp.cuh): gemm's transpose flags, Adam's hyper-parameters, the
/// clipping factor. No back-end header here (no cblas.h, no CUDA).

#include <cmath>
#include <cstdint>

namespace proxytask::trainer {

/// Whether gemm reads a matrix as stored or transposed.
enum class transpose : bool { no = false, yes = true };

/// The global-norm clipping factor: min(1, max_norm / norm); 1 when max_norm is 0 (off).
inline double clip_factor(double norm, double max_norm) noexcept {
  return max_norm > 0.0 && norm > max_norm ? max_norm / norm : 1.0;
}

/// Adam's hyper-parameters at one step.
struct adam_parameters {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  float weight_decay = 0.0f;  ///< decoupled (AdamW): w -= lr weight_decay w
  std::int64_t t = 1;         ///< the step number, from 1 (bias correction 1 - beta^t)
};

/// Adam's bias corrections 1 / (1 - beta1^t) and 1 / (1 - beta2^t), in double then rounded to
/// float, as both back-ends use them.
struct adam_corrections {
  float c1;
  float c2;
};
inline adam_corrections adam_bias_corrections(adam_parameters const& p) noexcept {
  auto const t = static_cast<double>(p.t);
  return {static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta1), t))),
          static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta2), t)))};
}

}  // namespace proxytask::trainer
