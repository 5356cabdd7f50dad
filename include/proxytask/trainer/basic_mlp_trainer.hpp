#pragma once
/// @file
/// The reference trainer's model and training loop, written once for every back-end: a
/// multilayer perceptron (mlp_spec) trained with mini-batch SGD with momentum or Adam, a linear
/// warmup then cosine learning-rate decay to 0 over the configured steps, optional global-norm
/// gradient clipping and an optional EMA of the weights.
///
/// basic_mlp_trainer<Backend> is the loop; backend_context<Backend> is the back-end's half: its
/// memory (span<T>, buffer<T>), its resources and the operations of cpu_backend.hpp's table.
/// This header includes no back-end (no cblas.h, no CUDA header):
///   - <proxytask/trainer/mlp.hpp> adds the CPU context (OpenBLAS) and mlp_trainer;
///   - <proxytask/trainer/mlp.cuh> (nvcc) adds the CUDA context (cuBLAS + fused kernels) and
///     cuda_mlp_trainer.
/// The loop calls the context through dependent member calls, so the order in which a
/// translation unit includes the back-ends does not matter.
///
/// Synchronisation: train_step returns the batch's loss, which on a GPU costs a host sync per
/// step. enqueue_step does the same step without reading anything back: the loss goes to a log
/// in the back-end's memory, read by take_losses (one copy and one sync for many steps). A
/// diverged step (NaN or inf loss or gradient) stops the run where it is on every back-end: its
/// update and every later update are skipped and their logged losses are NaN, so take_losses
/// sees the first bad step and the state is the one before it, as with train_step.
///
/// Reproducibility: initialisation, dropout masks (keyed by seed, step, layer) and the data
/// order (epoch_order: seed, epoch) are Philox draws, the same on every back-end, so both start
/// from the same parameters and draw the same masks bit for bit. On the CPU with one OpenBLAS
/// thread (set_blas_threads(1)) the same spec, config, seed and batches give the same bits, and
/// a run resumed from a checkpoint (checkpoint.hpp) continues exactly as the uninterrupted one.

#include <proxytask/core/backend.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/stats/philox.hpp>
#include <proxytask/trainer/detail/layer_math.hpp>
#include <proxytask/trainer/detail/operation_types.hpp>
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

  /// W_l and b_l within a flat array of parameter_count() elements: a std::span, or a span of
  /// another back-end's memory (anything with subspan).
  template <class Span>
  Span weights(Span all, std::size_t l) const noexcept {
    return all.subspan(weight_offsets_[l], widths_[l] * widths_[l + 1]);
  }
  template <class Span>
  Span bias(Span all, std::size_t l) const noexcept {
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
/// checkpoint), in storage of type Buffer (std::vector<float>: trainer_state).
template <class Buffer>
struct basic_trainer_state {
  std::int64_t step = 0;  ///< optimizer steps taken
  Buffer moment1;         ///< SGD's velocity or Adam's first moment
  Buffer moment2;         ///< Adam's second moment (empty for SGD)
  Buffer ema;             ///< the EMA of the parameters (empty when EMA is off)
};

/// A training run's state in host memory (the CPU trainer's own, a checkpoint's).
using trainer_state = basic_trainer_state<std::vector<float>>;

/// A trainer's parameters and state copied to host memory (checkpoint.hpp).
struct trainer_snapshot {
  std::vector<float> parameters;
  trainer_state state;
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

/// The back-end half of basic_mlp_trainer and basic_training_set: its memory, its resources
/// (a CUDA stream, a cuBLAS handle, the first error) and the operations the loop is written in.
/// Specialised for backend::cpu_t in mlp.hpp and for backend::cuda_t in mlp.cuh; what a
/// specialisation provides:
///
///   span<T>, buffer<T>        a view of and owning storage in the back-end's memory
///   host_memory               whether span<T> is std::span<T> over host memory
///   defers_losses             whether reading a step's loss costs a sync (then read many at once)
///   backend_context(Backend)  the policy value (for CUDA: its stream)
///   ok(), status()            false / the first error once an operation failed (CUDA: then every
///                             later operation does nothing); the CPU is always ok
///   resize, view, assign, copy_to_host, fill      memory (resize keeps the common prefix)
///   gemm, add_bias, bias_activation_forward, activation_backward, dropout_mask,
///   softmax_cross_entropy, column_sums, argmax_rows, gather, count_equal   cpu_backend.hpp's table
///   update(plan, ...)         the optimizer step: divergence check, norm, clipping, Adam or SGD
///                             with weight decay on the weights only, EMA
///   known_halted(), clear_halt(), last_gradient_norm()      divergence bookkeeping
///   elapsed_ms(f)             f's time on the back-end's clock (CUDA: events on the stream)
template <class Backend>
class backend_context {
  static_assert(backend::detail::dependent_false_v<Backend>,
                "this back-end has no trainer context here: include <proxytask/trainer/mlp.hpp> "
                "(CPU) or <proxytask/trainer/mlp.cuh> (CUDA, compiled with nvcc)");
};

namespace detail {

/// What one optimizer step needs besides the arrays (backend_context::update).
struct update_plan {
  training_config const* config = nullptr;
  mlp_layout const* layout = nullptr;
  float lr = 0.0f;         ///< learning_rate_at(config, t - 1)
  std::int64_t t = 1;      ///< the step number, from 1
  float ema_decay = 0.0f;  ///< ema_decay_at(config.ema_decay, t), when ema
  bool ema = false;        ///< whether the EMA is on
};

}  // namespace detail

/// A model being trained on one back-end: the parameters, the optimizer's state, the EMA, and
/// the workspace of the forward and backward passes (sized for the largest batch seen), all in
/// the back-end's memory. mlp_trainer (mlp.hpp) is the CPU one, cuda_mlp_trainer (mlp.cuh) the
/// GPU one; both start from the same initial parameters (computed on the host) and draw the same
/// dropout masks.
///
///   mlp_trainer t(spec, 784, {.total_steps = 2350, .learning_rate = 1e-3, .seed = 7});
///   for (std::int64_t s = 0; s < 2350; ++s) {
///     float const loss = t.train_step(batch_images, batch_labels);
///     if (!std::isfinite(loss)) return report_diverged(t.step(), loss);   // never thrown
///   }
///   double const accuracy = t.evaluate(test.images, test.labels);
///
/// Errors: a contract violation (bad spec or config, mismatched extents) throws logic_error; a
/// back-end failure (no CUDA device, device out of memory, a failed kernel) is never thrown: it
/// makes status() an error (errc::device_unavailable, errc::resource_exhausted,
/// errc::cuda_failure), later operations do nothing and values read back are NaN. create()
/// returns the construction's error as a value.
/// @tparam Backend backend::cpu_t or backend::cuda_t
template <class Backend>
class basic_mlp_trainer {
 public:
  using backend_type = Backend;
  using context_type = backend_context<Backend>;
  template <class T>
  using span = typename context_type::template span<T>;
  template <class T>
  using buffer = typename context_type::template buffer<T>;
  using state_type = basic_trainer_state<buffer<float>>;

  /// A freshly initialised model (initial_parameters with config.seed) at step 0.
  /// @param[in] spec     the model (hidden widths, activation, dropout in [0, 1))
  /// @param[in] features the input width
  /// @param[in] config   how to train; total_steps > 0
  /// @param[in] classes  the number of classes
  /// @param[in] policy   the back-end (backend::cpu, backend::cuda.on(stream))
  /// @throws logic_error on an invalid config or spec
  basic_mlp_trainer(mlp_spec spec, std::size_t features, training_config config,
                    std::size_t classes = 10, Backend policy = {})
      : spec_(std::move(spec)),
        config_(config),
        layout_(features, spec_.hidden, classes),
        ctx_(policy) {
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
    std::vector<float> init = initial_parameters(layout_, spec_.act, config_.seed);
    std::size_t const n = init.size();
    if (ema_on()) ctx_.assign(state_.ema, std::span<float const>(init));
    ctx_.assign(params_, std::move(init));
    ctx_.assign(grads_, std::vector<float>(n, 0.0f));
    ctx_.assign(state_.moment1, std::vector<float>(n, 0.0f));
    if (config_.opt == training_config::optimizer::adam)
      ctx_.assign(state_.moment2, std::vector<float>(n, 0.0f));
  }

  /// The constructor, with a back-end failure (no device, out of memory) as an error value.
  static result<basic_mlp_trainer> create(mlp_spec spec, std::size_t features,
                                          training_config config, std::size_t classes = 10,
                                          Backend policy = {}) {
    basic_mlp_trainer t(std::move(spec), features, config, classes, policy);
    if (auto const s = t.status(); !s) return s.error();
    return t;
  }

  /// One optimizer step on one batch: forward, backward, clipping, update, EMA, step + 1.
  /// (enqueue_step, then take_losses: on a GPU, one host sync.)
  /// @param[in] images rows x features (row-major), in the back-end's memory
  /// @param[in] labels rows labels, each < classes
  /// @returns the batch's mean cross-entropy before the update. When the loss or the gradient
  ///          is NaN or inf the update is skipped and the state stays as it was: a non-finite
  ///          return value means the run diverged (the caller reports it; nothing is thrown).
  ///          NaN also when status() is an error.
  float train_step(span<float const> images, span<std::uint8_t const> labels) {
    enqueue_step(images, labels);
    auto const losses = take_losses();
    return losses && !losses->empty() ? losses->back() : std::numeric_limits<float>::quiet_NaN();
  }

  /// train_step without reading the loss back: it goes to the loss log (take_losses). Once a
  /// step has diverged, later steps do nothing and log NaN until take_losses.
  void enqueue_step(span<float const> images, span<std::uint8_t const> labels) {
    check_batch(images, labels);
    if (logged_ == 0) log_start_ = state_.step;
    if (logged_ == ctx_.view(losses_).size())
      ctx_.resize(losses_, std::max<std::size_t>(64, 2 * logged_));
    if (!ctx_.ok()) return;
    span<float> const loss = ctx_.view(losses_).subspan(logged_++, 1);
    if (ctx_.known_halted()) {
      ctx_.fill(loss, std::numeric_limits<float>::quiet_NaN());
      return;
    }
    forward_backward(images, labels, loss);
    std::int64_t const t = state_.step + 1;
    detail::update_plan const plan{
        .config = &config_,
        .layout = &layout_,
        .lr = static_cast<float>(learning_rate()),
        .t = t,
        .ema_decay = static_cast<float>(ema_decay_at(config_.ema_decay, t)),
        .ema = ema_on()};
    ctx_.update(plan, ctx_.view(params_), ctx_.view(std::as_const(grads_)),
                ctx_.view(state_.moment1), ctx_.view(state_.moment2), ctx_.view(state_.ema), loss);
    // A back-end that defers losses does not know yet whether the step diverged: it counts the
    // step, and take_losses winds the count back to the first diverged step.
    if (!ctx_.known_halted()) state_.step = t;
  }

  /// The losses of the steps enqueued since the last call, in order (a GPU: one copy, one sync).
  /// After a diverged step (the first non-finite loss), step() is that step's number: the
  /// updates from it on were skipped, as train_step would have left it.
  /// @returns the losses, or status()'s error
  result<std::vector<float>> take_losses() {
    std::vector<float> out(logged_);
    ctx_.copy_to_host(ctx_.view(std::as_const(losses_)).first(logged_), std::span<float>(out));
    logged_ = 0;
    if (auto const s = ctx_.status(); !s) return s.error();
    for (std::size_t i = 0; i < out.size(); ++i)
      if (!std::isfinite(out[i])) {
        state_.step = log_start_ + static_cast<std::int64_t>(i);
        ctx_.clear_halt();
        break;
      }
    return out;
  }

  /// The number of steps enqueued since the last take_losses.
  std::size_t pending_losses() const noexcept { return logged_; }

  /// Forward and backward on one batch at the current step (its dropout masks), without an
  /// update: fills gradients() and returns the batch's mean loss (NaN or inf on divergence; NaN
  /// when status() is an error). A GPU syncs to read the loss.
  float compute_gradients(span<float const> images, span<std::uint8_t const> labels) {
    check_batch(images, labels);
    if (ctx_.view(scratch_loss_).empty()) ctx_.resize(scratch_loss_, 1);
    if (!ctx_.ok()) return std::numeric_limits<float>::quiet_NaN();
    forward_backward(images, labels, ctx_.view(scratch_loss_));
    float loss = std::numeric_limits<float>::quiet_NaN();
    ctx_.copy_to_host(ctx_.view(std::as_const(scratch_loss_)), std::span<float>(&loss, 1));
    return ctx_.ok() ? loss : std::numeric_limits<float>::quiet_NaN();
  }

  /// Logits for rows x features images (no dropout; the EMA weights when EMA is on): the forward
  /// pass a latency measurement times, for a batch of 1 or N. Asynchronous on a GPU.
  /// @param[out] logits rows x classes, in the back-end's memory
  void infer(span<float const> images, span<float> logits) {
    std::size_t const features = layout_.features();
    PROXYTASK_EXPECTS(images.size() % features == 0, "infer: images must be rows x features");
    std::size_t const rows = images.size() / features;
    PROXYTASK_EXPECTS(logits.size() == rows * layout_.classes(), "infer: logits extent");
    if (rows == 0) return;
    std::size_t const need = rows * layout_.max_width();
    if (ctx_.view(inference_[0]).size() < need) {
      ctx_.resize(inference_[0], need);
      ctx_.resize(inference_[1], need);
    }
    if (!ctx_.ok()) return;
    span<float const> const params = inference_parameters();
    span<float const> input = images;
    std::size_t const layers = layout_.layers();
    for (std::size_t l = 0; l < layers; ++l) {
      std::size_t const in = layout_.fan_in(l), out = layout_.fan_out(l);
      span<float> const z =
          l + 1 == layers ? logits : ctx_.view(inference_[l % 2]).first(rows * out);
      ctx_.gemm(false, false, rows, out, in, 1.0f, input, layout_.weights(params, l), 0.0f, z);
      if (l + 1 == layers) {
        ctx_.add_bias(rows, out, z, layout_.bias(params, l));
      } else {
        ctx_.bias_activation_forward(spec_.act, rows, out, z, layout_.bias(params, l), z,
                                     span<float const>{});
        input = z;
      }
    }
  }

  /// The predicted class of each image (argmax of infer's logits), in chunks of batch_size.
  /// @param[out] classes one per image, in the back-end's memory
  void predict(span<float const> images, span<std::uint8_t> classes) {
    std::size_t const features = layout_.features();
    PROXYTASK_EXPECTS(images.size() == classes.size() * features,
                      "predict: images must be classes.size() x features");
    std::size_t const chunk = std::max<std::size_t>(config_.batch_size, 1);
    for (std::size_t begin = 0; begin < classes.size(); begin += chunk) {
      std::size_t const rows = std::min(chunk, classes.size() - begin);
      ctx_.resize(logits_, rows * layout_.classes());
      if (!ctx_.ok()) return;
      span<float> const logits = ctx_.view(logits_).first(rows * layout_.classes());
      infer(images.subspan(begin * features, rows * features), logits);
      ctx_.argmax_rows(rows, layout_.classes(), span<float const>(logits),
                       classes.subspan(begin, rows));
    }
  }

  /// The fraction of images whose predicted class is their label (0 for no images; NaN when
  /// status() is an error). A GPU syncs once.
  double evaluate(span<float const> images, span<std::uint8_t const> labels) {
    if (labels.empty()) return 0.0;
    if (ctx_.view(predictions_).size() != labels.size()) ctx_.resize(predictions_, labels.size());
    if (!ctx_.ok()) return std::numeric_limits<double>::quiet_NaN();
    predict(images, ctx_.view(predictions_));
    std::size_t const correct = ctx_.count_equal(ctx_.view(std::as_const(predictions_)), labels);
    if (!ctx_.ok()) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(correct) / static_cast<double>(labels.size());
  }

  /// evaluate(set.images, set.labels) for a host data set such as image_set (fashion_mnist.hpp),
  /// on a back-end that computes in host memory.
  template <class ImageSet>
  requires(context_type::host_memory&& requires(ImageSet const& s) {
    std::span<float const>(s.images);
    std::span<std::uint8_t const>(s.labels);
  }) double evaluate(ImageSet const& set) {
    return evaluate(std::span<float const>(set.images), std::span<std::uint8_t const>(set.labels));
  }

  /// The learning rate the next train_step uses.
  double learning_rate() const noexcept { return learning_rate_at(config_, state_.step); }
  /// Optimizer steps taken (with enqueue_step on a GPU: enqueued; see take_losses).
  std::int64_t step() const noexcept { return state_.step; }
  /// The global gradient norm (before clipping) of the last step (a GPU syncs to read it).
  double last_gradient_norm() const { return ctx_.last_gradient_norm(); }

  mlp_spec const& spec() const noexcept { return spec_; }
  training_config const& config() const noexcept { return config_; }
  mlp_layout const& layout() const noexcept { return layout_; }
  /// The optimizer's state, in the back-end's memory (trainer_state on the CPU).
  state_type const& state() const noexcept { return state_; }
  bool ema_on() const noexcept { return config_.ema_decay > 0.0; }
  /// The back-end's context (memory helpers, elapsed_ms).
  context_type& context() noexcept { return ctx_; }
  /// Ok, or the first back-end failure (see the class comment).
  result<void> status() const { return ctx_.status(); }

  /// The live parameters (flat; see mlp_layout). Mutable for tests (finite differences).
  span<float> parameters() noexcept { return ctx_.view(params_); }
  span<float const> parameters() const noexcept { return ctx_.view(params_); }
  /// The gradients of the last compute_gradients or train_step.
  span<float const> gradients() const noexcept { return ctx_.view(grads_); }
  /// The parameters inference uses: the EMA when it is on, else the live ones.
  span<float const> inference_parameters() const noexcept {
    return ema_on() ? ctx_.view(state_.ema) : ctx_.view(params_);
  }

  /// The parameters and the state copied to host memory (checkpoint.hpp; a GPU syncs).
  /// @returns the copies, or status()'s error
  result<trainer_snapshot> snapshot() const {
    trainer_snapshot s;
    s.state.step = state_.step;
    auto copy = [&](buffer<float> const& from, std::vector<float>& to) {
      to.resize(ctx_.view(from).size());
      ctx_.copy_to_host(ctx_.view(from), std::span<float>(to));
    };
    copy(params_, s.parameters);
    copy(state_.moment1, s.state.moment1);
    copy(state_.moment2, s.state.moment2);
    copy(state_.ema, s.state.ema);
    if (auto const st = ctx_.status(); !st) return st.error();
    return s;
  }

  /// Replaces the parameters and the state (checkpoint.hpp's resume; a GPU copies them to the
  /// device, and a failure shows in status()).
  /// @pre parameters has parameter_count() elements; the state's arrays have that many or, where
  ///      the config does not use them (moment2 for SGD, ema when off), none
  void restore(std::vector<float> parameters, trainer_state state) {
    std::size_t const n = layout_.parameter_count();
    bool const adam = config_.opt == training_config::optimizer::adam;
    PROXYTASK_EXPECTS(parameters.size() == n && state.moment1.size() == n &&
                          state.moment2.size() == (adam ? n : 0) &&
                          state.ema.size() == (ema_on() ? n : 0) && state.step >= 0,
                      "restore: the arrays do not match the model and config");
    ctx_.assign(params_, std::move(parameters));
    ctx_.assign(state_.moment1, std::move(state.moment1));
    ctx_.assign(state_.moment2, std::move(state.moment2));
    ctx_.assign(state_.ema, std::move(state.ema));
    state_.step = state.step;
    logged_ = 0;
    ctx_.clear_halt();  // a run restored is not a diverged one
  }

 private:
  void check_batch(span<float const> images, span<std::uint8_t const> labels) const {
    std::size_t const rows = labels.size();
    PROXYTASK_EXPECTS(rows >= 1, "compute_gradients: an empty batch");
    PROXYTASK_EXPECTS(images.size() == rows * layout_.features(),
                      "compute_gradients: images must be rows x features");
  }

  /// Forward and backward on one batch; the mean loss goes to loss[0].
  void forward_backward(span<float const> images, span<std::uint8_t const> labels,
                        span<float> loss) {
    std::size_t const rows = labels.size();
    reserve_training(rows);
    if (!ctx_.ok()) return;
    std::size_t const layers = layout_.layers();
    span<float const> const params = ctx_.view(std::as_const(params_));
    span<float> const grads = ctx_.view(grads_);
    bool const dropout = spec_.dropout > 0.0;

    // Forward: Z_l = A_{l-1} W_l (+ b_l, f, mask); the logits are Z of the last layer.
    span<float const> input = images;
    for (std::size_t l = 0; l < layers; ++l) {
      std::size_t const in = layout_.fan_in(l), out = layout_.fan_out(l);
      span<float> const z = ctx_.view(z_[l]).first(rows * out);
      ctx_.gemm(false, false, rows, out, in, 1.0f, input, layout_.weights(params, l), 0.0f, z);
      if (l + 1 == layers) {
        ctx_.add_bias(rows, out, z, layout_.bias(params, l));
      } else {
        span<float> const a = ctx_.view(a_[l]).first(rows * out);
        span<float> mask;
        if (dropout) {
          mask = ctx_.view(mask_[l]).first(rows * out);
          ctx_.dropout_mask(config_.seed, state_.step, static_cast<std::uint32_t>(l), spec_.dropout,
                            mask);
        }
        ctx_.bias_activation_forward(spec_.act, rows, out, z, layout_.bias(params, l), a,
                                     span<float const>(mask));
        input = a;
      }
    }
    std::size_t const classes = layout_.classes();
    span<float> dz = ctx_.view(delta_[0]).first(rows * classes);
    ctx_.softmax_cross_entropy(rows, classes,
                               ctx_.view(std::as_const(z_[layers - 1])).first(rows * classes),
                               labels, dz, loss);

    // Backward: dW_l = A_{l-1}^T dZ_l, db_l = column sums of dZ_l,
    // dZ_{l-1} = (dZ_l W_l^T) * mask * f'(Z_{l-1}); no gradient for the input.
    int ping = 0;
    for (std::size_t l = layers; l-- > 0;) {
      std::size_t const in = layout_.fan_in(l), out = layout_.fan_out(l);
      span<float const> const a_prev =
          l == 0 ? images : ctx_.view(std::as_const(a_[l - 1])).first(rows * in);
      ctx_.gemm(true, false, in, out, rows, 1.0f, a_prev, span<float const>(dz), 0.0f,
                layout_.weights(grads, l));
      ctx_.column_sums(rows, out, span<float const>(dz), layout_.bias(grads, l));
      if (l == 0) break;
      span<float> const da = ctx_.view(delta_[1 - ping]).first(rows * in);
      ctx_.gemm(false, true, rows, in, out, 1.0f, span<float const>(dz), layout_.weights(params, l),
                0.0f, da);
      span<float const> mask;
      if (dropout) mask = ctx_.view(std::as_const(mask_[l - 1])).first(rows * in);
      ctx_.activation_backward(spec_.act, ctx_.view(std::as_const(z_[l - 1])).first(rows * in),
                               mask, span<float const>(da), da);
      dz = da;
      ping = 1 - ping;
    }
  }

  void reserve_training(std::size_t rows) {
    if (rows <= training_rows_) return;
    std::size_t const layers = layout_.layers();
    z_.resize(layers);
    a_.resize(layers - 1);
    mask_.resize(layers - 1);
    for (std::size_t l = 0; l < layers; ++l) {
      ctx_.resize(z_[l], rows * layout_.fan_out(l));
      if (l + 1 < layers) {
        ctx_.resize(a_[l], rows * layout_.fan_out(l));
        if (spec_.dropout > 0.0) ctx_.resize(mask_[l], rows * layout_.fan_out(l));
      }
    }
    for (auto& d : delta_) ctx_.resize(d, rows * layout_.max_width());
    if (ctx_.ok()) training_rows_ = rows;
  }

  mlp_spec spec_;
  training_config config_;
  mlp_layout layout_;
  context_type ctx_;
  buffer<float> params_;
  buffer<float> grads_;
  state_type state_;

  // The loss log of enqueue_step: logged_ losses from step log_start_ on.
  buffer<float> losses_;
  std::size_t logged_ = 0;
  std::int64_t log_start_ = 0;

  // Workspace (not state: recomputed every step).
  std::size_t training_rows_ = 0;
  std::vector<buffer<float>> z_, a_, mask_;  // per layer: pre-activations, outputs, masks
  buffer<float> delta_[2];                   // ping-pong dZ / dA
  buffer<float> inference_[2];
  buffer<float> logits_;
  buffer<float> scratch_loss_;
  buffer<std::uint8_t> predictions_;
};

/// One batch of a basic_training_set, in the back-end's memory.
template <class Span, class LabelSpan>
struct training_batch {
  Span images;       ///< rows x features
  LabelSpan labels;  ///< rows
};

/// A labelled image set where a back-end computes on it, and the batches a training run
/// gathers from it: the CPU views the caller's host arrays (which must outlive the set); CUDA
/// copies them to the device once, uploads each epoch's order once (set_order), and gathers a
/// batch with one kernel, so that a step copies no image between host and device.
template <class Backend>
class basic_training_set {
 public:
  using context_type = backend_context<Backend>;
  template <class T>
  using span = typename context_type::template span<T>;
  template <class T>
  using buffer = typename context_type::template buffer<T>;
  using batch_type = training_batch<span<float const>, span<std::uint8_t const>>;

  /// @param[in] images labels.size() x features, row-major, in host memory
  /// @param[in] labels in host memory
  basic_training_set(Backend policy, std::size_t features, std::span<float const> images,
                     std::span<std::uint8_t const> labels)
      : ctx_(policy), features_(features), size_(labels.size()) {
    PROXYTASK_EXPECTS(features >= 1 && images.size() == labels.size() * features,
                      "training_set: images must be labels.size() x features");
    if constexpr (context_type::host_memory) {
      images_ = images;
      labels_ = labels;
    } else {
      ctx_.assign(own_images_, images);
      ctx_.assign(own_labels_, labels);
      images_ = ctx_.view(std::as_const(own_images_));
      labels_ = ctx_.view(std::as_const(own_labels_));
    }
  }

  /// The constructor, with a back-end failure (no device, out of memory) as an error value.
  static result<basic_training_set> create(Backend policy, std::size_t features,
                                           std::span<float const> images,
                                           std::span<std::uint8_t const> labels) {
    basic_training_set s(policy, features, images, labels);
    if (auto const st = s.status(); !st) return st.error();
    return s;
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t features() const noexcept { return features_; }
  /// The whole set, in the back-end's memory (for evaluate).
  span<float const> images() const noexcept { return images_; }
  span<std::uint8_t const> labels() const noexcept { return labels_; }

  /// The order batch() reads the examples in (epoch_order), kept (CUDA: copied to the device).
  void set_order(std::span<std::uint32_t const> order) { ctx_.assign(order_, order); }

  /// The examples order[offset, offset + rows) gathered into one batch (valid until the next
  /// call; asynchronous on a GPU).
  batch_type batch(std::size_t offset, std::size_t rows) {
    PROXYTASK_EXPECTS(offset + rows <= ctx_.view(std::as_const(order_)).size(),
                      "training_set::batch: past the end of the order");
    if (ctx_.view(batch_labels_).size() < rows) {
      ctx_.resize(batch_images_, rows * features_);
      ctx_.resize(batch_labels_, rows);
    }
    span<float> const images = ctx_.view(batch_images_).first(rows * features_);
    span<std::uint8_t> const labels = ctx_.view(batch_labels_).first(rows);
    if (ctx_.ok())
      ctx_.gather(features_, images_, labels_,
                  ctx_.view(std::as_const(order_)).subspan(offset, rows), images, labels);
    return {span<float const>(images), span<std::uint8_t const>(labels)};
  }

  /// Ok, or the first back-end failure.
  result<void> status() const { return ctx_.status(); }
  context_type& context() noexcept { return ctx_; }

 private:
  context_type ctx_;
  std::size_t features_ = 0;
  std::size_t size_ = 0;
  buffer<float> own_images_;
  buffer<std::uint8_t> own_labels_;
  span<float const> images_;
  span<std::uint8_t const> labels_;
  buffer<std::uint32_t> order_;
  buffer<float> batch_images_;
  buffer<std::uint8_t> batch_labels_;
};

}  // namespace proxytask::trainer
