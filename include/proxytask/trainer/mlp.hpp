#pragma once
/// @file
/// The reference trainer on the CPU: the CPU back-end's context for the one training loop of
/// basic_mlp_trainer.hpp (OpenBLAS for gemm, the loops of cpu_backend.hpp for the rest) and
/// mlp_trainer, the CPU trainer. The model, the schedule, the optimizers and the state are
/// documented in basic_mlp_trainer.hpp; cuda/proxytask/trainer/mlp.cuh is the GPU counterpart.
///
///   mlp_trainer t(spec, 784, {.total_steps = 2350, .learning_rate = 1e-3, .seed = 7});
///   for (std::int64_t s = 0; s < 2350; ++s) {
///     float const loss = t.train_step(batch_images, batch_labels);
///     if (!std::isfinite(loss)) return report_diverged(t.step(), loss);   // never thrown
///   }
///   double const accuracy = t.evaluate(test.images, test.labels);
///
/// Reproducibility: with one OpenBLAS thread (set_blas_threads(1)) the same spec, config, seed
/// and batches give the same bits; initialisation, dropout masks (keyed by seed, step, layer)
/// and the data order (epoch_order: seed, epoch) are Philox draws, so a run resumed from a
/// checkpoint (checkpoint.hpp) continues exactly as the uninterrupted one.

#include <proxytask/core/backend.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/trainer/basic_mlp_trainer.hpp>
#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/detail/layer_math.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace proxytask::trainer {

/// The CPU back-end's half of the trainer: host vectors, cpu_backend.hpp's operations, and the
/// optimizer step of the original CPU trainer, operation for operation (the same bits).
template <>
class backend_context<backend::cpu_t> {
 public:
  template <class T>
  using span = std::span<T>;
  template <class T>
  using buffer = std::vector<T>;
  static constexpr bool host_memory = true;
  static constexpr bool defers_losses = false;

  explicit backend_context(backend::cpu_t policy = {}) noexcept : cpu_(policy) {}

  backend::cpu_t policy() const noexcept { return cpu_; }
  static constexpr bool ok() noexcept { return true; }
  static result<void> status() noexcept { return {}; }

  // --- memory -------------------------------------------------------------------------------
  template <class T>
  static void resize(std::vector<T>& b, std::size_t n) {
    b.resize(n);
  }
  template <class T>
  static std::span<T> view(std::vector<T>& b) noexcept {
    return b;
  }
  template <class T>
  static std::span<T const> view(std::vector<T> const& b) noexcept {
    return b;
  }
  template <class T>
  static void assign(std::vector<T>& b, std::vector<T>&& from) {
    b = std::move(from);
  }
  template <class T>
  static void assign(std::vector<T>& b, std::span<T const> from) {
    b.assign(from.begin(), from.end());
  }
  template <class T>
  static void copy_to_host(std::span<T const> from, std::span<T> to) {
    PROXYTASK_EXPECTS(from.size() == to.size(), "copy_to_host: extents");
    std::copy(from.begin(), from.end(), to.begin());
  }
  static void fill(std::span<float> x, float value) { std::fill(x.begin(), x.end(), value); }

  /// f's wall time in milliseconds (steady_clock).
  template <class F>
  static double elapsed_ms(F&& f) {
    auto const start = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
        .count();
  }

  // --- the operations -----------------------------------------------------------------------
  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
            std::span<float const> a, std::span<float const> b, float beta,
            std::span<float> c) const {
    trainer::gemm(cpu_, trans_a ? transpose::yes : transpose::no,
                  trans_b ? transpose::yes : transpose::no, m, n, k, alpha, a, b, beta, c);
  }
  void add_bias(std::size_t rows, std::size_t cols, std::span<float> z,
                std::span<float const> b) const {
    trainer::add_bias(cpu_, rows, cols, z, b);
  }
  void bias_activation_forward(activation act, std::size_t rows, std::size_t cols,
                               std::span<float> z, std::span<float const> b, std::span<float> a,
                               std::span<float const> mask) const {
    trainer::bias_activation_forward(cpu_, act, rows, cols, z, b, a, mask);
  }
  void activation_backward(activation act, std::span<float const> z, std::span<float const> mask,
                           std::span<float const> da, std::span<float> dz) const {
    trainer::activation_backward(cpu_, act, z, mask, da, dz);
  }
  void dropout_mask(std::uint64_t seed, std::int64_t step, std::uint32_t layer, double p,
                    std::span<float> mask) const {
    trainer::dropout_mask(cpu_, seed, step, layer, p, mask);
  }
  void softmax_cross_entropy(std::size_t rows, std::size_t classes, std::span<float const> logits,
                             std::span<std::uint8_t const> labels, std::span<float> dlogits,
                             std::span<float> loss) const {
    loss[0] = static_cast<float>(
        trainer::softmax_cross_entropy(cpu_, rows, classes, logits, labels, dlogits));
  }
  void column_sums(std::size_t rows, std::size_t cols, std::span<float const> x,
                   std::span<float> out) const {
    trainer::column_sums(cpu_, rows, cols, x, out);
  }
  void argmax_rows(std::size_t rows, std::size_t cols, std::span<float const> x,
                   std::span<std::uint8_t> out) const {
    trainer::argmax_rows(cpu_, rows, cols, x, out);
  }
  static void gather(std::size_t features, std::span<float const> images,
                     std::span<std::uint8_t const> labels, std::span<std::uint32_t const> indices,
                     std::span<float> batch_images, std::span<std::uint8_t> batch_labels) {
    gather_batch(features, images, labels, indices, batch_images, batch_labels);
  }
  static std::size_t count_equal(std::span<std::uint8_t const> a, std::span<std::uint8_t const> b) {
    PROXYTASK_EXPECTS(a.size() == b.size(), "count_equal: extents");
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) n += a[i] == b[i];
    return n;
  }

  /// The optimizer step: skipped (and the run halted) when the loss or the gradient is not
  /// finite; else global-norm clipping, Adam or SGD layer by layer with weight decay on the
  /// weights only, then the EMA.
  void update(detail::update_plan const& plan, std::span<float> params,
              std::span<float const> grads, std::span<float> m1, std::span<float> m2,
              std::span<float> ema, std::span<float> loss) {
    if (!std::isfinite(loss[0])) {
      halted_ = true;
      return;
    }
    double const squares = sum_of_squares(cpu_, grads);
    last_gradient_norm_ = std::sqrt(squares);
    if (!std::isfinite(squares)) {
      loss[0] = std::numeric_limits<float>::quiet_NaN();
      halted_ = true;
      return;
    }
    training_config const& config = *plan.config;
    mlp_layout const& layout = *plan.layout;
    auto const grad_scale = static_cast<float>(clip_factor(last_gradient_norm_, config.clip_norm));
    for (std::size_t l = 0; l < layout.layers(); ++l) {
      // Weight decay on the weights only, as is usual (biases and the EMA are not decayed).
      for (bool const is_weight : {true, false}) {
        auto pick = [&](auto all) {
          return is_weight ? layout.weights(all, l) : layout.bias(all, l);
        };
        auto const wd = is_weight ? static_cast<float>(config.weight_decay) : 0.0f;
        if (config.opt == training_config::optimizer::adam) {
          adam_parameters const p{.lr = plan.lr,
                                  .beta1 = static_cast<float>(config.adam_beta1),
                                  .beta2 = static_cast<float>(config.adam_beta2),
                                  .epsilon = static_cast<float>(config.adam_epsilon),
                                  .weight_decay = wd,
                                  .t = plan.t};
          adam_step(cpu_, pick(params), pick(grads), pick(m1), pick(m2), p, grad_scale);
        } else {
          sgd_momentum_step(cpu_, pick(params), pick(grads), pick(m1), plan.lr,
                            static_cast<float>(config.momentum), wd, grad_scale);
        }
      }
    }
    if (plan.ema) ema_update(cpu_, ema, params, plan.ema_decay);
  }

  bool known_halted() const noexcept { return halted_; }
  void clear_halt() noexcept { halted_ = false; }
  double last_gradient_norm() const noexcept { return last_gradient_norm_; }

 private:
  backend::cpu_t cpu_;
  bool halted_ = false;
  double last_gradient_norm_ = 0.0;
};

/// The CPU trainer (OpenBLAS): see basic_mlp_trainer.
using mlp_trainer = basic_mlp_trainer<backend::cpu_t>;

/// A training set on the CPU: views of the caller's host arrays.
using training_set = basic_training_set<backend::cpu_t>;

}  // namespace proxytask::trainer
