#pragma once
/// @file
/// The reference trainer's model and training step: a multilayer perceptron (mlp_spec) trained
/// with mini-batch SGD with momentum or Adam, a linear warmup then cosine learning-rate decay to 0
/// over the configured steps, optional global-norm gradient clipping and an optional EMA of the
/// weights. Written in the operations of cpu_backend.hpp, so a CUDA back-end can run the same
/// loop.
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
#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/detail/layer_math.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <utility>
#include <vector>

namespace proxytask::trainer {

/// How to train (DESIGN.md "Reference trainer"; issue 6 item 3).
struct training_config {
  enum class optimizer { sgd_momentum, adam };

  std::size_t batch_size = 256;  ///< for the caller's batching loop and evaluation chunks
  std::int64_t total_steps = 0;  ///< the schedule's length (> 0): the learning rate is 0 after it
  double learning_rate = 1e-3;   ///< the peak learning rate
  optimizer opt = optimizer::adam;
  double momentum = 0.9;         ///< SGD's momentum
  double adam_beta1 = 0.9;       ///< Adam's first-moment decay
  double adam_beta2 = 0.999;     ///< Adam's second-moment decay
  double adam_epsilon = 1e-8;    ///< Adam's denominator guard
  double weight_decay = 0.0;     ///< on weights, not biases: L2 for SGD, decoupled for Adam
  double clip_norm = 0.0;        ///< the maximum global gradient norm; 0 = off
  double ema_decay = 0.0;        ///< EMA of the weights; 0 = off (see mlp_trainer::train_step)
  double warmup_fraction = 0.0;  ///< linear warmup over this fraction of total_steps, in [0, 1]
  std::uint64_t seed = 0;        ///< initialisation, dropout masks, data order
};

/// The learning rate of step `step` (counted from 0): a linear warmup from lr / W to lr over the
/// first W = round(warmup_fraction total_steps) steps, then lr (1 + cos(pi p)) / 2 with
/// p = (step - W) / (total_steps - W) going from 0 to 1; 0 from total_steps on.
inline double learning_rate_at(training_config const& c, std::int64_t step) noexcept {
  if (step < 0 || step >= c.total_steps) return 0.0;
  auto const warmup = static_cast<std::int64_t>(
      std::llround(c.warmup_fraction * static_cast<double>(c.total_steps)));
  if (step < warmup)
    return c.learning_rate * static_cast<double>(step + 1) / static_cast<double>(warmup);
  double const progress =
      static_cast<double>(step - warmup) / static_cast<double>(c.total_steps - warmup);
  return c.learning_rate * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

/// The EMA decay used at optimizer step t (counted from 1): min(decay, (1 + t) / (10 + t)), as
/// TensorFlow's ExponentialMovingAverage with num_updates, so a short proxy run's average is not
/// dominated by the initial weights.
inline double ema_decay_at(double decay, std::int64_t t) noexcept {
  auto const td = static_cast<double>(t);
  return std::min(decay, (1.0 + td) / (10.0 + td));
}

/// Where each layer's parameters live in the one flat parameter array: layer l (0 = next to the
/// input) has W_l (fan_in x fan_out, row-major) and then b_l (fan_out).
class mlp_layout {
 public:
  /// @param[in] features the input width (784, or 196 downsampled)
  /// @param[in] hidden   the hidden widths, each >= 1
  /// @param[in] classes  the output width (>= 2, at most 256)
  mlp_layout(std::size_t features, std::vector<std::size_t> const& hidden, std::size_t classes) {
    PROXYTASK_EXPECTS(features >= 1 && classes >= 2 && classes <= 256, "mlp_layout: extents");
    widths_.push_back(features);
    for (std::size_t const w : hidden) {
      PROXYTASK_EXPECTS(w >= 1, "mlp_layout: a hidden width of 0");
      widths_.push_back(w);
    }
    widths_.push_back(classes);
    std::size_t offset = 0;
    for (std::size_t l = 0; l + 1 < widths_.size(); ++l) {
      weight_offsets_.push_back(offset);
      offset += widths_[l] * widths_[l + 1];
      bias_offsets_.push_back(offset);
      offset += widths_[l + 1];
    }
    parameter_count_ = offset;
  }

  /// The number of linear layers (hidden layers + 1).
  std::size_t layers() const noexcept { return widths_.size() - 1; }
  /// features, the hidden widths, classes.
  std::vector<std::size_t> const& widths() const noexcept { return widths_; }
  std::size_t features() const noexcept { return widths_.front(); }
  std::size_t classes() const noexcept { return widths_.back(); }
  std::size_t fan_in(std::size_t l) const noexcept { return widths_[l]; }
  std::size_t fan_out(std::size_t l) const noexcept { return widths_[l + 1]; }
  std::size_t max_width() const noexcept {
    return *std::max_element(widths_.begin() + 1, widths_.end());
  }
  std::size_t weight_offset(std::size_t l) const noexcept { return weight_offsets_[l]; }
  std::size_t bias_offset(std::size_t l) const noexcept { return bias_offsets_[l]; }
  std::size_t parameter_count() const noexcept { return parameter_count_; }

  /// W_l and b_l within a flat array of parameter_count() elements.
  template <class T>
  std::span<T> weights(std::span<T> all, std::size_t l) const noexcept {
    return all.subspan(weight_offsets_[l], widths_[l] * widths_[l + 1]);
  }
  template <class T>
  std::span<T> bias(std::span<T> all, std::size_t l) const noexcept {
    return all.subspan(bias_offsets_[l], widths_[l + 1]);
  }

 private:
  std::vector<std::size_t> widths_;
  std::vector<std::size_t> weight_offsets_;
  std::vector<std::size_t> bias_offsets_;
  std::size_t parameter_count_ = 0;
};

/// Initial parameters: weights uniform in [-a, a], from the Philox stream (seed; init, layer):
/// He (a = sqrt(6 / fan_in)) for the hidden layers of ReLU and GELU, Glorot (a =
/// sqrt(6 / (fan_in + fan_out))) for tanh's and for the output layer; biases 0.
inline std::vector<float> initial_parameters(mlp_layout const& layout, activation act,
                                             std::uint64_t seed) {
  std::vector<float> p(layout.parameter_count(), 0.0f);
  std::span<float> all(p);
  for (std::size_t l = 0; l < layout.layers(); ++l) {
    auto const in = static_cast<double>(layout.fan_in(l));
    auto const out = static_cast<double>(layout.fan_out(l));
    bool const glorot = act == activation::tanh || l + 1 == layout.layers();
    auto const bound = static_cast<float>(std::sqrt(6.0 / (glorot ? in + out : in)));
    auto w = layout.weights(all, l);
    PROXYTASK_EXPECTS(w.size() / 4 < (std::size_t{1} << 32), "initial_parameters: a huge layer");
    for (std::size_t i = 0; i < w.size(); i += 4) {
      r123array4x32 const r =
          detail::philox_block(seed, detail::stream::init, static_cast<std::uint32_t>(l), 0,
                               static_cast<std::uint32_t>(i / 4));
      for (std::size_t j = 0; j < 4 && i + j < w.size(); ++j)
        w[i + j] = bound * (2.0f * detail::to_open_unit(r.v[j]) - 1.0f);
    }
  }
  return p;
}

/// What a training run carries between steps besides the parameters (all of it goes into a
/// checkpoint).
struct trainer_state {
  std::int64_t step = 0;       ///< optimizer steps taken
  std::vector<float> moment1;  ///< SGD's velocity or Adam's first moment
  std::vector<float> moment2;  ///< Adam's second moment (empty for SGD)
  std::vector<float> ema;      ///< the EMA of the parameters (empty when EMA is off)
};

/// The order of the examples in epoch `epoch`: a Fisher-Yates shuffle of 0..n-1 driven by the
/// Philox stream (seed; order, epoch), the same on every platform.
inline std::vector<std::uint32_t> epoch_order(std::size_t n, std::uint64_t seed,
                                              std::uint64_t epoch) {
  PROXYTASK_EXPECTS(n <= std::numeric_limits<std::uint32_t>::max(), "epoch_order: n < 2^32");
  std::vector<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  std::uint32_t block = 0;
  r123array4x32 words{};
  unsigned used = 4;
  for (std::size_t i = n; i > 1; --i) {
    if (used == 4) {
      words = detail::philox_block(seed, detail::stream::order, 0, epoch, block++);
      used = 0;
    }
    std::size_t const j = stats::uniform_index(words.v[used++], static_cast<std::uint32_t>(i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

/// Copies the rows `indices` of (images, labels) into a batch.
/// @param[in]  images   rows x features
/// @param[out] batch_images  indices.size() x features
/// @param[out] batch_labels  indices.size()
inline void gather_batch(std::size_t features, std::span<float const> images,
                         std::span<std::uint8_t const> labels,
                         std::span<std::uint32_t const> indices, std::span<float> batch_images,
                         std::span<std::uint8_t> batch_labels) {
  PROXYTASK_EXPECTS(images.size() == labels.size() * features &&
                        batch_images.size() == indices.size() * features &&
                        batch_labels.size() == indices.size(),
                    "gather_batch: extents");
  for (std::size_t i = 0; i < indices.size(); ++i) {
    std::size_t const r = indices[i];
    PROXYTASK_EXPECTS(r < labels.size(), "gather_batch: an index past the data");
    std::copy_n(images.data() + r * features, features, batch_images.data() + i * features);
    batch_labels[i] = labels[r];
  }
}

/// A model being trained: the parameters, the optimizer's state, the EMA, and the workspace of
/// the forward and backward passes (sized for the largest batch seen).
class mlp_trainer {
 public:
  /// A freshly initialised model (initial_parameters with config.seed) at step 0.
  /// @param[in] spec     the model (hidden widths, activation, dropout in [0, 1))
  /// @param[in] features the input width
  /// @param[in] config   how to train; total_steps > 0
  /// @param[in] classes  the number of classes
  /// @throws logic_error on an invalid config or spec
  mlp_trainer(mlp_spec spec, std::size_t features, training_config config, std::size_t classes = 10)
      : spec_(std::move(spec)), config_(config), layout_(features, spec_.hidden, classes) {
    PROXYTASK_EXPECTS(!spec_.hidden.empty(), "mlp_trainer: at least one hidden layer");
    PROXYTASK_EXPECTS(spec_.dropout >= 0.0 && spec_.dropout < 1.0,
                      "mlp_trainer: dropout in [0, 1)");
    PROXYTASK_EXPECTS(config_.total_steps > 0, "mlp_trainer: total_steps > 0");
    PROXYTASK_EXPECTS(
        config_.learning_rate >= 0.0 && config_.weight_decay >= 0.0 && config_.clip_norm >= 0.0,
        "mlp_trainer: learning rate, weight decay, clip norm >= 0");
    PROXYTASK_EXPECTS(config_.ema_decay >= 0.0 && config_.ema_decay < 1.0,
                      "mlp_trainer: ema_decay in [0, 1)");
    PROXYTASK_EXPECTS(config_.warmup_fraction >= 0.0 && config_.warmup_fraction <= 1.0,
                      "mlp_trainer: warmup_fraction in [0, 1]");
    params_ = initial_parameters(layout_, spec_.act, config_.seed);
    grads_.assign(params_.size(), 0.0f);
    state_.moment1.assign(params_.size(), 0.0f);
    if (config_.opt == training_config::optimizer::adam)
      state_.moment2.assign(params_.size(), 0.0f);
    if (ema_on()) state_.ema = params_;
  }

  /// One optimizer step on one batch: forward, backward, clipping, update, EMA, step + 1.
  /// @param[in] images rows x features (row-major)
  /// @param[in] labels rows labels, each < classes
  /// @returns the batch's mean cross-entropy before the update. When the loss or the gradient
  ///          is NaN or inf the update is skipped and the state stays as it was: a non-finite
  ///          return value means the run diverged (the caller reports it; nothing is thrown).
  float train_step(std::span<float const> images, std::span<std::uint8_t const> labels) {
    float const loss = compute_gradients(images, labels);
    if (!std::isfinite(loss)) return loss;
    double const squares = sum_of_squares(backend::cpu, grads_);
    last_gradient_norm_ = std::sqrt(squares);
    if (!std::isfinite(squares)) return std::numeric_limits<float>::quiet_NaN();
    auto const grad_scale = static_cast<float>(clip_factor(last_gradient_norm_, config_.clip_norm));
    auto const lr = static_cast<float>(learning_rate());
    std::int64_t const t = state_.step + 1;
    std::span<float> params(params_);
    std::span<float const> grads(grads_);
    std::span<float> m1(state_.moment1);
    std::span<float> m2(state_.moment2);
    for (std::size_t l = 0; l < layout_.layers(); ++l) {
      // Weight decay on the weights only, as is usual (biases and the EMA are not decayed).
      for (bool const is_weight : {true, false}) {
        auto pick = [&](auto all) {
          return is_weight ? layout_.weights(all, l) : layout_.bias(all, l);
        };
        auto const wd = is_weight ? static_cast<float>(config_.weight_decay) : 0.0f;
        if (config_.opt == training_config::optimizer::adam) {
          adam_parameters const p{.lr = lr,
                                  .beta1 = static_cast<float>(config_.adam_beta1),
                                  .beta2 = static_cast<float>(config_.adam_beta2),
                                  .epsilon = static_cast<float>(config_.adam_epsilon),
                                  .weight_decay = wd,
                                  .t = t};
          adam_step(backend::cpu, pick(params), pick(grads), pick(m1), pick(m2), p, grad_scale);
        } else {
          sgd_momentum_step(backend::cpu, pick(params), pick(grads), pick(m1), lr,
                            static_cast<float>(config_.momentum), wd, grad_scale);
        }
      }
    }
    if (ema_on())
      ema_update(backend::cpu, state_.ema, params_,
                 static_cast<float>(ema_decay_at(config_.ema_decay, t)));
    state_.step = t;
    return loss;
  }

  /// Forward and backward on one batch at the current step (its dropout masks), without an
  /// update: fills gradients() and returns the batch's mean loss (NaN or inf on divergence).
  float compute_gradients(std::span<float const> images, std::span<std::uint8_t const> labels) {
    std::size_t const rows = labels.size();
    PROXYTASK_EXPECTS(rows >= 1, "compute_gradients: an empty batch");
    PROXYTASK_EXPECTS(images.size() == rows * layout_.features(),
                      "compute_gradients: images must be rows x features");
    reserve_training(rows);
    auto const cpu = backend::cpu;
    std::size_t const layers = layout_.layers();
    std::span<float const> params(params_);
    std::span<float> grads(grads_);
    bool const dropout = spec_.dropout > 0.0;

    // Forward: Z_l = A_{l-1} W_l (+ b_l, f, mask); the logits are Z of the last layer.
    std::span<float const> input = images;
    for (std::size_t l = 0; l < layers; ++l) {
      std::size_t const in = layout_.fan_in(l), out = layout_.fan_out(l);
      std::span<float> z = std::span<float>(z_[l]).first(rows * out);
      gemm(cpu, transpose::no, transpose::no, rows, out, in, 1.0f, input,
           layout_.weights(params, l), 0.0f, z);
      if (l + 1 == layers) {
        add_bias(cpu, rows, out, z, layout_.bias(params, l));
      } else {
        std::span<float> a = std::span<float>(a_[l]).first(rows * out);
        std::span<float> mask;
        if (dropout) {
          mask = std::span<float>(mask_[l]).first(rows * out);
          dropout_mask(cpu, config_.seed, state_.step, static_cast<std::uint32_t>(l), spec_.dropout,
                       mask);
        }
        bias_activation_forward(cpu, spec_.act, rows, out, z, layout_.bias(params, l), a, mask);
        input = a;
      }
    }
    std::size_t const classes = layout_.classes();
    std::span<float> dz = std::span<float>(delta_[0]).first(rows * classes);
    double const loss = softmax_cross_entropy(
        cpu, rows, classes, std::span<float const>(z_[layers - 1]).first(rows * classes), labels,
        dz);

    // Backward: dW_l = A_{l-1}^T dZ_l, db_l = column sums of dZ_l,
    // dZ_{l-1} = (dZ_l W_l^T) * mask * f'(Z_{l-1}); no gradient for the input.
    int ping = 0;
    for (std::size_t l = layers; l-- > 0;) {
      std::size_t const in = layout_.fan_in(l), out = layout_.fan_out(l);
      std::span<float const> a_prev =
          l == 0 ? images : std::span<float const>(a_[l - 1]).first(rows * in);
      gemm(cpu, transpose::yes, transpose::no, in, out, rows, 1.0f, a_prev, dz, 0.0f,
           layout_.weights(grads, l));
      column_sums(cpu, rows, out, dz, layout_.bias(grads, l));
      if (l == 0) break;
      std::span<float> da = std::span<float>(delta_[1 - ping]).first(rows * in);
      gemm(cpu, transpose::no, transpose::yes, rows, in, out, 1.0f, dz, layout_.weights(params, l),
           0.0f, da);
      std::span<float const> mask;
      if (dropout) mask = std::span<float const>(mask_[l - 1]).first(rows * in);
      activation_backward(cpu, spec_.act, std::span<float const>(z_[l - 1]).first(rows * in), mask,
                          da, da);
      dz = da;
      ping = 1 - ping;
    }
    return static_cast<float>(loss);
  }

  /// Logits for rows x features images (no dropout; the EMA weights when EMA is on): the forward
  /// pass a latency measurement times, for a batch of 1 or N.
  /// @param[out] logits rows x classes
  void infer(std::span<float const> images, std::span<float> logits) {
    std::size_t const features = layout_.features();
    PROXYTASK_EXPECTS(images.size() % features == 0, "infer: images must be rows x features");
    std::size_t const rows = images.size() / features;
    PROXYTASK_EXPECTS(logits.size() == rows * layout_.classes(), "infer: logits extent");
    if (rows == 0) return;
    std::size_t const need = rows * layout_.max_width();
    if (inference_[0].size() < need) {
      inference_[0].resize(need);
      inference_[1].resize(need);
    }
    auto const cpu = backend::cpu;
    std::span<float const> params = inference_parameters();
    std::span<float const> input = images;
    std::size_t const layers = layout_.layers();
    for (std::size_t l = 0; l < layers; ++l) {
      std::size_t const in = layout_.fan_in(l), out = layout_.fan_out(l);
      std::span<float> z =
          l + 1 == layers ? logits : std::span<float>(inference_[l % 2]).first(rows * out);
      gemm(cpu, transpose::no, transpose::no, rows, out, in, 1.0f, input,
           layout_.weights(params, l), 0.0f, z);
      if (l + 1 == layers) {
        add_bias(cpu, rows, out, z, layout_.bias(params, l));
      } else {
        bias_activation_forward(cpu, spec_.act, rows, out, z, layout_.bias(params, l), z);
        input = z;
      }
    }
  }

  /// The predicted class of each image (argmax of infer's logits), in chunks of batch_size.
  void predict(std::span<float const> images, std::span<std::uint8_t> classes) {
    std::size_t const features = layout_.features();
    PROXYTASK_EXPECTS(images.size() == classes.size() * features,
                      "predict: images must be classes.size() x features");
    std::size_t const chunk = std::max<std::size_t>(config_.batch_size, 1);
    for (std::size_t begin = 0; begin < classes.size(); begin += chunk) {
      std::size_t const rows = std::min(chunk, classes.size() - begin);
      logits_.resize(rows * layout_.classes());
      infer(images.subspan(begin * features, rows * features), logits_);
      argmax_rows(backend::cpu, rows, layout_.classes(), logits_, classes.subspan(begin, rows));
    }
  }

  /// The fraction of images whose predicted class is their label (0 for no images).
  double evaluate(std::span<float const> images, std::span<std::uint8_t const> labels) {
    if (labels.empty()) return 0.0;
    predictions_.resize(labels.size());
    predict(images, predictions_);
    std::size_t correct = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) correct += predictions_[i] == labels[i];
    return static_cast<double>(correct) / static_cast<double>(labels.size());
  }

  /// evaluate(set.images, set.labels) for a data set such as image_set (fashion_mnist.hpp).
  template <class ImageSet>
  requires requires(ImageSet const& s) {
    std::span<float const>(s.images);
    std::span<std::uint8_t const>(s.labels);
  }
  double evaluate(ImageSet const& set) {
    return evaluate(std::span<float const>(set.images), std::span<std::uint8_t const>(set.labels));
  }

  /// The learning rate the next train_step uses.
  double learning_rate() const noexcept { return learning_rate_at(config_, state_.step); }
  /// Optimizer steps taken.
  std::int64_t step() const noexcept { return state_.step; }
  /// The global gradient norm (before clipping) of the last train_step.
  double last_gradient_norm() const noexcept { return last_gradient_norm_; }

  mlp_spec const& spec() const noexcept { return spec_; }
  training_config const& config() const noexcept { return config_; }
  mlp_layout const& layout() const noexcept { return layout_; }
  trainer_state const& state() const noexcept { return state_; }
  bool ema_on() const noexcept { return config_.ema_decay > 0.0; }

  /// The live parameters (flat; see mlp_layout). Mutable for tests (finite differences).
  std::span<float> parameters() noexcept { return params_; }
  std::span<float const> parameters() const noexcept { return params_; }
  /// The gradients of the last compute_gradients or train_step.
  std::span<float const> gradients() const noexcept { return grads_; }
  /// The parameters inference uses: the EMA when it is on, else the live ones.
  std::span<float const> inference_parameters() const noexcept {
    return ema_on() ? std::span<float const>(state_.ema) : std::span<float const>(params_);
  }

  /// Replaces the parameters and the state (checkpoint.hpp's resume).
  /// @pre parameters has parameter_count() elements; the state's arrays have that many or, where
  ///      the config does not use them (moment2 for SGD, ema when off), none
  void restore(std::vector<float> parameters, trainer_state state) {
    std::size_t const n = layout_.parameter_count();
    bool const adam = config_.opt == training_config::optimizer::adam;
    PROXYTASK_EXPECTS(parameters.size() == n && state.moment1.size() == n &&
                          state.moment2.size() == (adam ? n : 0) &&
                          state.ema.size() == (ema_on() ? n : 0) && state.step >= 0,
                      "restore: the arrays do not match the model and config");
    params_ = std::move(parameters);
    state_ = std::move(state);
  }

 private:
  void reserve_training(std::size_t rows) {
    if (rows <= training_rows_) return;
    std::size_t const layers = layout_.layers();
    z_.resize(layers);
    a_.resize(layers - 1);
    mask_.resize(layers - 1);
    for (std::size_t l = 0; l < layers; ++l) {
      z_[l].resize(rows * layout_.fan_out(l));
      if (l + 1 < layers) {
        a_[l].resize(rows * layout_.fan_out(l));
        if (spec_.dropout > 0.0) mask_[l].resize(rows * layout_.fan_out(l));
      }
    }
    for (auto& d : delta_) d.resize(rows * layout_.max_width());
    training_rows_ = rows;
  }

  mlp_spec spec_;
  training_config config_;
  mlp_layout layout_;
  std::vector<float> params_;
  std::vector<float> grads_;
  trainer_state state_;
  double last_gradient_norm_ = 0.0;

  // Workspace (not state: recomputed every step).
  std::size_t training_rows_ = 0;
  std::vector<std::vector<float>> z_, a_, mask_;  // per layer: pre-activations, outputs, masks
  std::vector<float> delta_[2];                   // ping-pong dZ / dA
  std::vector<float> inference_[2];
  std::vector<float> logits_;
  std::vector<std::uint8_t> predictions_;
};

}  // namespace proxytask::trainer
