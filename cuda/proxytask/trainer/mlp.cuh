#pragma once
/// @file
/// The reference trainer on the GPU (nvcc only): the CUDA overloads of every operation of
/// cpu_backend.hpp's table (backend::cuda_t first, device_span arguments, asynchronous on the
/// policy's stream, errors as values), the CUDA back-end's context for the one training loop of
/// basic_mlp_trainer.hpp, and cuda_mlp_trainer / cuda_training_set. Includes mlp.hpp, so a
/// translation unit that includes this header has both back-ends.
///
///   auto t = trainer::cuda_mlp_trainer::create(spec, 784, config, 10, backend::cuda.on(stream));
///   if (!t) return report(t.error());                 // device_unavailable, resource_exhausted
///   auto data = trainer::cuda_training_set::create(backend::cuda.on(stream), 784, images, labels);
///   data->set_order(trainer::epoch_order(data->size(), seed, epoch));      // one upload an epoch
///   for (...) { auto b = data->batch(offset, rows); t->enqueue_step(b.images, b.labels); }
///   auto losses = t->take_losses();                   // one sync for the whole cycle
///
/// What runs on the device per step: a gather of the batch (the training set stays on the
/// device), per layer one cuBLAS sgemm forward and a fused bias + activation (+ dropout mask
/// from the CPU's Philox draws), one softmax cross-entropy kernel writing the loss and dlogits,
/// per layer two sgemms, a column-sum kernel and an activation-backward kernel, then one kernel
/// for the gradient norm and the divergence decision and one fused Adam / SGD + EMA kernel over
/// the whole flat parameter array. The host reads nothing back: the learning rate and Adam's
/// bias corrections depend on the step only and go in as kernel arguments; the gradient norm,
/// the clipping factor and the "diverged" flag stay on the device (gradient_norm_kernel), and
/// the loss goes to the trainer's loss log, read once per cycle (take_losses). A sync per step
/// would cost more than the step itself for small models (the GPU idles while the host waits
/// and relaunches).
///
/// Numbers: initial parameters are computed on the host and uploaded (the CPU's bits); dropout
/// masks are the CPU's bit for bit; the rest agrees with the CPU within float rounding (cuBLAS
/// sums in another order than OpenBLAS, the device's expf and fused multiply-adds round
/// differently). cuBLAS runs in its default FP32 math mode (no TF32). A run gives the same bits
/// every time on the same GPU: no reduction here uses floating-point atomics.

#include <proxytask/core/backend.cuh>
#include <proxytask/core/error.hpp>
#include <proxytask/trainer/basic_mlp_trainer.hpp>
#include <proxytask/trainer/detail/layer_math.hpp>
#include <proxytask/trainer/detail/mlp_kernels.cuh>
#include <proxytask/trainer/detail/operation_types.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

/// Evaluates a cuBLAS call; on failure *returns* a proxytask::error from the enclosing function:
/// device_unavailable when cuBLAS cannot initialise (no device or driver), resource_exhausted on
/// an allocation failure, cuda_failure otherwise.
#define PROXYTASK_CUBLAS_TRY(call)                                                             \
  do {                                                                                         \
    cublasStatus_t const proxytask_cublas_status_ = (call);                                    \
    if (proxytask_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                     \
      return ::proxytask::trainer::detail::gpu::cublas_error(proxytask_cublas_status_, #call); \
  } while (false)

namespace proxytask::trainer {

namespace detail::gpu {

/// The proxytask error for a failed cuBLAS call, naming the call and cuBLAS's message.
inline error cublas_error(cublasStatus_t status, char const* call) {
  (void)cudaGetLastError();
  errc code = errc::cuda_failure;
  if (status == CUBLAS_STATUS_NOT_INITIALIZED)
    code = errc::device_unavailable;
  else if (status == CUBLAS_STATUS_ALLOC_FAILED)
    code = errc::resource_exhausted;
  return make_error(code, std::string(call) + ": " + cublasGetStatusName(status) + " (" +
                              cublasGetStatusString(status) + ")");
}

/// After a launch: its configuration error, or an earlier kernel's failure, as an error value.
inline result<void> launched(char const* kernel) {
  cudaError_t const e = cudaPeekAtLastError();
  if (e != cudaSuccess) return backend::detail::cuda_error(e, kernel);
  return {};
}

struct cublas_deleter {
  void operator()(cublasContext* h) const noexcept { (void)cublasDestroy(h); }
};
struct event_deleter {
  void operator()(CUevent_st* e) const noexcept { (void)cudaEventDestroy(e); }
};

}  // namespace detail::gpu

/// A cuBLAS handle (cublasCreate), owned; the gemm overload below sets its stream per call.
using cublas_handle = std::unique_ptr<cublasContext, detail::gpu::cublas_deleter>;

/// A new cuBLAS handle.
/// @returns the handle; errc::device_unavailable without a device, resource_exhausted on OOM
inline result<cublas_handle> make_cublas_handle() {
  cublasHandle_t h = nullptr;
  PROXYTASK_CUBLAS_TRY(cublasCreate(&h));
  return cublas_handle(h);
}

// --- the CUDA overloads of cpu_backend.hpp's table ------------------------------------------
// Each takes device memory, runs on the policy's stream without waiting for it, and returns a
// launch or cuBLAS failure as an error (a kernel's own failure shows at the next sync). The
// contracts (extents) are the CPU overloads' and throw logic_error as they do.

/// C (m x n) = alpha op(A) op(B) + beta C, row-major (see the CPU overload): cublasSgemm on the
/// column-major views, which are the transposes, so C^T = op(B)^T op(A)^T.
inline result<void> gemm(backend::cuda_t cuda, cublasHandle_t handle, transpose trans_a,
                         transpose trans_b, std::size_t m, std::size_t n, std::size_t k,
                         float alpha, device_span<float const> a, device_span<float const> b,
                         float beta, device_span<float> c) {
  constexpr auto int_max = static_cast<std::size_t>(std::numeric_limits<int>::max());
  PROXYTASK_EXPECTS(m <= int_max && n <= int_max && k <= int_max, "gemm: extents above 2^31");
  PROXYTASK_EXPECTS(a.size() >= m * k && b.size() >= k * n && c.size() >= m * n,
                    "gemm: a span is smaller than its matrix");
  if (m == 0 || n == 0) return {};
  bool const ta = trans_a == transpose::yes;
  bool const tb = trans_b == transpose::yes;
  auto const lda = static_cast<int>(std::max<std::size_t>(1, ta ? m : k));
  auto const ldb = static_cast<int>(std::max<std::size_t>(1, tb ? k : n));
  PROXYTASK_CUBLAS_TRY(cublasSetStream(handle, cuda.stream));
  PROXYTASK_CUBLAS_TRY(cublasSgemm(handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                                   static_cast<int>(m), static_cast<int>(k), &alpha, b.data(), ldb,
                                   a.data(), lda, &beta, c.data(), static_cast<int>(n)));
  return {};
}

/// Z (rows x cols) += b, b broadcast over the rows.
inline result<void> add_bias(backend::cuda_t cuda, std::size_t rows, std::size_t cols,
                             device_span<float> z, device_span<float const> b) {
  PROXYTASK_EXPECTS(z.size() == rows * cols && b.size() == cols, "add_bias: extents");
  if (z.empty()) return {};
  detail::gpu::add_bias_kernel<<<detail::gpu::blocks_for(z.size()),
                                 detail::gpu::tuning.block_threads, 0, cuda.stream>>>(
      rows, cols, z.data(), b.data());
  return detail::gpu::launched("add_bias_kernel");
}

/// The fused hidden-layer forward: Z += b; A = f(Z) (* mask). A may be Z.
inline result<void> bias_activation_forward(backend::cuda_t cuda, activation act, std::size_t rows,
                                            std::size_t cols, device_span<float> z,
                                            device_span<float const> b, device_span<float> a,
                                            device_span<float const> mask = {}) {
  PROXYTASK_EXPECTS(z.size() == rows * cols && b.size() == cols && a.size() == rows * cols,
                    "bias_activation_forward: extents");
  PROXYTASK_EXPECTS(mask.empty() || mask.size() == rows * cols,
                    "bias_activation_forward: the mask's extent");
  if (z.empty()) return {};
  detail::with_activation(act, [&](auto tag) {
    constexpr activation f = decltype(tag)::value;
    detail::gpu::bias_activation_kernel<f>
        <<<detail::gpu::blocks_for(z.size()), detail::gpu::tuning.block_threads, 0, cuda.stream>>>(
            rows, cols, z.data(), b.data(), a.data(), mask.empty() ? nullptr : mask.data());
  });
  return detail::gpu::launched("bias_activation_kernel");
}

/// dZ = dA * mask * f'(Z); dz may be da.
inline result<void> activation_backward(backend::cuda_t cuda, activation act,
                                        device_span<float const> z, device_span<float const> mask,
                                        device_span<float const> da, device_span<float> dz) {
  PROXYTASK_EXPECTS(da.size() == z.size() && dz.size() == z.size(), "activation_backward: extents");
  PROXYTASK_EXPECTS(mask.empty() || mask.size() == z.size(), "activation_backward: mask extent");
  if (z.empty()) return {};
  detail::with_activation(act, [&](auto tag) {
    constexpr activation f = decltype(tag)::value;
    detail::gpu::activation_backward_kernel<f>
        <<<detail::gpu::blocks_for(z.size()), detail::gpu::tuning.block_threads, 0, cuda.stream>>>(
            z.size(), z.data(), mask.empty() ? nullptr : mask.data(), da.data(), dz.data());
  });
  return detail::gpu::launched("activation_backward_kernel");
}

/// The dropout mask of (seed, step, layer): the CPU's, bit for bit (the same Philox words and
/// the same threshold and scale, computed on the host).
inline result<void> dropout_mask(backend::cuda_t cuda, std::uint64_t seed, std::int64_t step,
                                 std::uint32_t layer, double p, device_span<float> mask) {
  PROXYTASK_EXPECTS(p >= 0.0 && p < 1.0, "dropout_mask: p in [0, 1)");
  PROXYTASK_EXPECTS(step >= 0 && layer < (1u << 24), "dropout_mask: step >= 0, layer < 2^24");
  PROXYTASK_EXPECTS(mask.size() / 4 < (std::size_t{1} << 32), "dropout_mask: too many elements");
  if (mask.empty()) return {};
  detail::gpu::dropout_mask_kernel<<<detail::gpu::blocks_for((mask.size() + 3) / 4),
                                     detail::gpu::tuning.block_threads, 0, cuda.stream>>>(
      mask.size(), seed, static_cast<std::uint64_t>(step), layer, detail::dropout_threshold(p),
      detail::dropout_scale(p), mask.data());
  return detail::gpu::launched("dropout_mask_kernel");
}

/// Softmax cross-entropy, fused forward and backward, in one kernel: dlogits = (softmax -
/// onehot) / rows and loss[0] = the mean loss (NaN or inf when the logits are not finite, NaN
/// for a label >= classes: a kernel cannot throw the CPU's logic_error).
inline result<void> softmax_cross_entropy(backend::cuda_t cuda, std::size_t rows,
                                          std::size_t classes, device_span<float const> logits,
                                          device_span<std::uint8_t const> labels,
                                          device_span<float> dlogits, device_span<float> loss) {
  PROXYTASK_EXPECTS(rows > 0 && classes > 0, "softmax_cross_entropy: empty batch");
  PROXYTASK_EXPECTS(logits.size() == rows * classes && labels.size() == rows &&
                        dlogits.size() == rows * classes && loss.size() == 1,
                    "softmax_cross_entropy: extents");
  detail::gpu::
      softmax_cross_entropy_kernel<<<1, detail::gpu::tuning.softmax_threads, 0, cuda.stream>>>(
          rows, classes, logits.data(), labels.data(), dlogits.data(), loss.data());
  return detail::gpu::launched("softmax_cross_entropy_kernel");
}

/// out (cols) = the sum over the rows of x (rows x cols): the bias gradient.
inline result<void> column_sums(backend::cuda_t cuda, std::size_t rows, std::size_t cols,
                                device_span<float const> x, device_span<float> out) {
  PROXYTASK_EXPECTS(x.size() == rows * cols && out.size() == cols, "column_sums: extents");
  if (cols == 0) return {};
  auto const tile = static_cast<unsigned>(detail::gpu::tuning.column_tile);
  detail::gpu::column_sums_kernel<<<static_cast<unsigned>((cols + tile - 1) / tile),
                                    dim3(tile, tile), 0, cuda.stream>>>(rows, cols, x.data(),
                                                                        out.data());
  return detail::gpu::launched("column_sums_kernel");
}

/// out[0] = the sum of squares of x in double (one block; for a large array the trainer's own
/// step uses the multi-block gradient-norm kernel).
inline result<void> sum_of_squares(backend::cuda_t cuda, device_span<float const> x,
                                   device_span<double> out) {
  PROXYTASK_EXPECTS(out.size() == 1, "sum_of_squares: one output");
  detail::gpu::sum_of_squares_kernel<1024>
      <<<1, 1024, 0, cuda.stream>>>(x.size(), x.data(), out.data(), nullptr);
  return detail::gpu::launched("sum_of_squares_kernel");
}

/// out[0] = 1 when x holds no NaN and no infinity, else 0.
inline result<void> all_finite(backend::cuda_t cuda, device_span<float const> x,
                               device_span<int> out) {
  PROXYTASK_EXPECTS(out.size() == 1, "all_finite: one output");
  detail::gpu::sum_of_squares_kernel<1024>
      <<<1, 1024, 0, cuda.stream>>>(x.size(), x.data(), nullptr, out.data());
  return detail::gpu::launched("sum_of_squares_kernel");
}

/// In place: x *= factor.
inline result<void> scale(backend::cuda_t cuda, device_span<float> x, float factor) {
  if (x.empty()) return {};
  detail::gpu::scale_kernel<<<detail::gpu::blocks_for(x.size()), detail::gpu::tuning.block_threads,
                              0, cuda.stream>>>(x.size(), x.data(), factor);
  return detail::gpu::launched("scale_kernel");
}

/// One SGD-with-momentum update (the CPU overload's formula).
inline result<void> sgd_momentum_step(backend::cuda_t cuda, device_span<float> w,
                                      device_span<float const> g, device_span<float> velocity,
                                      float lr, float momentum, float weight_decay,
                                      float grad_scale) {
  PROXYTASK_EXPECTS(g.size() == w.size() && velocity.size() == w.size(),
                    "sgd_momentum_step: extents");
  if (w.empty()) return {};
  detail::gpu::sgd_kernel<<<detail::gpu::blocks_for(w.size()), detail::gpu::tuning.block_threads, 0,
                            cuda.stream>>>(w.size(), w.data(), g.data(), velocity.data(), lr,
                                           momentum, weight_decay, grad_scale);
  return detail::gpu::launched("sgd_kernel");
}

/// The optimizer scalars of an Adam step (bias corrections on the host, as the CPU's).
inline detail::gpu::optimizer_scalars adam_scalars(adam_parameters const& p) {
  auto const [c1, c2] = adam_bias_corrections(p);
  detail::gpu::optimizer_scalars o;
  o.adam = 1;
  o.lr = p.lr;
  o.beta1 = p.beta1;
  o.beta2 = p.beta2;
  o.one_minus_beta1 = 1.0f - p.beta1;
  o.one_minus_beta2 = 1.0f - p.beta2;
  o.epsilon = p.epsilon;
  o.c1 = c1;
  o.c2 = c2;
  o.weight_decay = p.weight_decay;
  return o;
}

/// One Adam update (the CPU overload's formula).
inline result<void> adam_step(backend::cuda_t cuda, device_span<float> w,
                              device_span<float const> g, device_span<float> m,
                              device_span<float> v, adam_parameters const& p, float grad_scale) {
  PROXYTASK_EXPECTS(g.size() == w.size() && m.size() == w.size() && v.size() == w.size(),
                    "adam_step: extents");
  PROXYTASK_EXPECTS(p.t >= 1, "adam_step: t counts from 1");
  if (w.empty()) return {};
  detail::gpu::adam_kernel<<<detail::gpu::blocks_for(w.size()), detail::gpu::tuning.block_threads,
                             0, cuda.stream>>>(w.size(), w.data(), g.data(), m.data(), v.data(),
                                               adam_scalars(p), grad_scale);
  return detail::gpu::launched("adam_kernel");
}

/// e = decay e + (1 - decay) w.
inline result<void> ema_update(backend::cuda_t cuda, device_span<float> ema,
                               device_span<float const> w, float decay) {
  PROXYTASK_EXPECTS(ema.size() == w.size(), "ema_update: extents");
  if (w.empty()) return {};
  detail::gpu::ema_kernel<<<detail::gpu::blocks_for(w.size()), detail::gpu::tuning.block_threads, 0,
                            cuda.stream>>>(w.size(), ema.data(), w.data(), decay, 1.0f - decay);
  return detail::gpu::launched("ema_kernel");
}

/// out[r] = the index of the largest of row r (the first on ties).
inline result<void> argmax_rows(backend::cuda_t cuda, std::size_t rows, std::size_t cols,
                                device_span<float const> x, device_span<std::uint8_t> out) {
  PROXYTASK_EXPECTS(x.size() == rows * cols && out.size() == rows && cols >= 1 && cols <= 256,
                    "argmax_rows: extents");
  if (rows == 0) return {};
  detail::gpu::argmax_rows_kernel<<<detail::gpu::blocks_for(rows),
                                    detail::gpu::tuning.block_threads, 0, cuda.stream>>>(
      rows, cols, x.data(), out.data());
  return detail::gpu::launched("argmax_rows_kernel");
}

/// Copies the rows `indices` of (images, labels), all in device memory, into a batch (one
/// kernel; float4 loads when the row width is a multiple of 4).
inline result<void> gather_batch(backend::cuda_t cuda, std::size_t features,
                                 device_span<float const> images,
                                 device_span<std::uint8_t const> labels,
                                 device_span<std::uint32_t const> indices,
                                 device_span<float> batch_images,
                                 device_span<std::uint8_t> batch_labels) {
  PROXYTASK_EXPECTS(images.size() == labels.size() * features &&
                        batch_images.size() == indices.size() * features &&
                        batch_labels.size() == indices.size(),
                    "gather_batch: extents");
  if (indices.empty()) return {};
  auto aligned = [](void const* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  if (features % 4 == 0 && aligned(images.data()) && aligned(batch_images.data())) {
    std::size_t const vecs = features / 4;
    detail::gpu::gather_kernel<float4><<<detail::gpu::blocks_for(indices.size() * vecs),
                                         detail::gpu::tuning.block_threads, 0, cuda.stream>>>(
        indices.size(), vecs, labels.size(), reinterpret_cast<float4 const*>(images.data()),
        labels.data(), indices.data(), reinterpret_cast<float4*>(batch_images.data()),
        batch_labels.data());
  } else {
    detail::gpu::gather_kernel<float>
        <<<detail::gpu::blocks_for(indices.size() * features), detail::gpu::tuning.block_threads, 0,
           cuda.stream>>>(indices.size(), features, labels.size(), images.data(), labels.data(),
                          indices.data(), batch_images.data(), batch_labels.data());
  }
  return detail::gpu::launched("gather_kernel");
}

// --- the CUDA back-end's context -------------------------------------------------------------

/// The CUDA back-end's half of the trainer (see backend_context in basic_mlp_trainer.hpp): device
/// buffers, a cuBLAS handle and events (created on first use), the device-side scalars of the
/// optimizer step, and the first error. Every operation is asynchronous on the policy's stream
/// except copy_to_host, count_equal, last_gradient_norm and elapsed_ms, which sync it. After a
/// failure every operation does nothing and status() returns the failure.
template <>
class backend_context<backend::cuda_t> {
 public:
  template <class T>
  using span = device_span<T>;
  template <class T>
  using buffer = device_buffer<T>;
  static constexpr bool host_memory = false;
  static constexpr bool defers_losses = true;

  /// Checks that there is a device (errc::device_unavailable in status() otherwise).
  explicit backend_context(backend::cuda_t policy = {}) : cuda_(policy) {
    if (auto const n = backend::cuda_device_count(); !n) record(n.error());
  }

  backend::cuda_t policy() const noexcept { return cuda_; }
  bool ok() const noexcept { return !error_.has_value(); }
  result<void> status() const {
    if (error_) return *error_;
    return {};
  }

  // --- memory -------------------------------------------------------------------------------
  template <class T>
  void resize(device_buffer<T>& b, std::size_t n) {
    if (ok()) record(b.resize(n, cuda_.stream));
  }
  template <class T>
  static device_span<T> view(device_buffer<T>& b) noexcept {
    return b.view();
  }
  template <class T>
  static device_span<T const> view(device_buffer<T> const& b) noexcept {
    return b.view();
  }
  template <class T>
  void assign(device_buffer<T>& b, std::span<T const> from) {
    resize(b, from.size());
    if (ok() && !from.empty())
      record(cudaMemcpyAsync(b.data(), from.data(), from.size() * sizeof(T), cudaMemcpyHostToDevice,
                             cuda_.stream),
             "cudaMemcpyAsync (to the device)");
  }
  template <class T>
  void assign(device_buffer<T>& b, std::vector<T>&& from) {
    assign(b, std::span<T const>(from));
    // A copy from pageable memory has left `from` when cudaMemcpyAsync returns: it may go.
  }
  /// Copies device memory to the host and waits for it (NaN-free garbage is never returned:
  /// on a failure `to` is left as it was and status() says why).
  template <class T>
  void copy_to_host(device_span<T const> from, std::span<T> to) const {
    PROXYTASK_EXPECTS(from.size() == to.size(), "copy_to_host: extents");
    if (!ok()) return;
    if (!from.empty())
      record(cudaMemcpyAsync(to.data(), from.data(), from.size() * sizeof(T),
                             cudaMemcpyDeviceToHost, cuda_.stream),
             "cudaMemcpyAsync (to the host)");
    synchronize();
  }
  void fill(device_span<float> x, float value) {
    if (!ok() || x.empty()) return;
    detail::gpu::fill_kernel<<<detail::gpu::blocks_for(x.size()), detail::gpu::tuning.block_threads,
                               0, cuda_.stream>>>(x.size(), x.data(), value);
    record(detail::gpu::launched("fill_kernel"));
  }
  /// Waits for the stream; a kernel's failure shows here.
  void synchronize() const {
    if (ok()) record(cudaStreamSynchronize(cuda_.stream), "cudaStreamSynchronize");
  }

  /// The device time of f's work on the stream, in milliseconds (two events; waits for them).
  /// NaN after a failure.
  template <class F>
  double elapsed_ms(F&& f) {
    if (ok() && !start_) {
      cudaEvent_t a = nullptr, b = nullptr;
      record(cudaEventCreate(&a), "cudaEventCreate");
      if (ok()) start_.reset(a);
      record(cudaEventCreate(&b), "cudaEventCreate");
      if (ok()) stop_.reset(b);
    }
    if (!ok()) return std::numeric_limits<double>::quiet_NaN();
    record(cudaEventRecord(start_.get(), cuda_.stream), "cudaEventRecord");
    f();
    record(cudaEventRecord(stop_.get(), cuda_.stream), "cudaEventRecord");
    if (ok()) record(cudaEventSynchronize(stop_.get()), "cudaEventSynchronize");
    float ms = 0.0f;
    if (ok()) record(cudaEventElapsedTime(&ms, start_.get(), stop_.get()), "cudaEventElapsedTime");
    return ok() ? static_cast<double>(ms) : std::numeric_limits<double>::quiet_NaN();
  }

  // --- the operations -----------------------------------------------------------------------
  void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
            device_span<float const> a, device_span<float const> b, float beta,
            device_span<float> c) {
    if (!ok()) return;
    if (!blas_) {
      auto h = make_cublas_handle();
      if (!h) return record(h.error());
      blas_ = std::move(*h);
    }
    record(trainer::gemm(cuda_, blas_.get(), trans_a ? transpose::yes : transpose::no,
                         trans_b ? transpose::yes : transpose::no, m, n, k, alpha, a, b, beta, c));
  }
  void add_bias(std::size_t rows, std::size_t cols, device_span<float> z,
                device_span<float const> b) {
    if (ok()) record(trainer::add_bias(cuda_, rows, cols, z, b));
  }
  void bias_activation_forward(activation act, std::size_t rows, std::size_t cols,
                               device_span<float> z, device_span<float const> b,
                               device_span<float> a, device_span<float const> mask) {
    if (ok()) record(trainer::bias_activation_forward(cuda_, act, rows, cols, z, b, a, mask));
  }
  void activation_backward(activation act, device_span<float const> z,
                           device_span<float const> mask, device_span<float const> da,
                           device_span<float> dz) {
    if (ok()) record(trainer::activation_backward(cuda_, act, z, mask, da, dz));
  }
  void dropout_mask(std::uint64_t seed, std::int64_t step, std::uint32_t layer, double p,
                    device_span<float> mask) {
    if (ok()) record(trainer::dropout_mask(cuda_, seed, step, layer, p, mask));
  }
  void softmax_cross_entropy(std::size_t rows, std::size_t classes, device_span<float const> logits,
                             device_span<std::uint8_t const> labels, device_span<float> dlogits,
                             device_span<float> loss) {
    if (ok())
      record(trainer::softmax_cross_entropy(cuda_, rows, classes, logits, labels, dlogits, loss));
  }
  void column_sums(std::size_t rows, std::size_t cols, device_span<float const> x,
                   device_span<float> out) {
    if (ok()) record(trainer::column_sums(cuda_, rows, cols, x, out));
  }
  void argmax_rows(std::size_t rows, std::size_t cols, device_span<float const> x,
                   device_span<std::uint8_t> out) {
    if (ok()) record(trainer::argmax_rows(cuda_, rows, cols, x, out));
  }
  void gather(std::size_t features, device_span<float const> images,
              device_span<std::uint8_t const> labels, device_span<std::uint32_t const> indices,
              device_span<float> batch_images, device_span<std::uint8_t> batch_labels) {
    if (ok())
      record(trainer::gather_batch(cuda_, features, images, labels, indices, batch_images,
                                   batch_labels));
  }
  /// The number of positions where a and b agree (waits for it; 0 after a failure).
  std::size_t count_equal(device_span<std::uint8_t const> a, device_span<std::uint8_t const> b) {
    PROXYTASK_EXPECTS(a.size() == b.size(), "count_equal: extents");
    if (count_.empty()) resize(count_, 1);
    if (!ok()) return 0;
    detail::gpu::count_equal_kernel<1024>
        <<<1, 1024, 0, cuda_.stream>>>(a.size(), a.data(), b.data(), count_.data());
    record(detail::gpu::launched("count_equal_kernel"));
    unsigned long long n = 0;
    copy_to_host(view(std::as_const(count_)), std::span<unsigned long long>(&n, 1));
    return ok() ? static_cast<std::size_t>(n) : 0;
  }

  /// The optimizer step in two kernels and no host sync: gradient_norm_kernel (the norm, the
  /// clipping factor and the divergence decision, on the device), then optimizer_kernel (Adam
  /// or SGD with weight decay on the weights only, and the EMA, over the whole flat array,
  /// skipped when the first kernel said so).
  void update(detail::update_plan const& plan, device_span<float> params,
              device_span<float const> grads, device_span<float> m1, device_span<float> m2,
              device_span<float> ema, device_span<float> loss) {
    if (scalars_.empty()) {
      resize(scalars_, 1);
      resize(partials_, static_cast<std::size_t>(detail::gpu::tuning.norm_blocks));
      if (ok())
        record(cudaMemsetAsync(scalars_.data(), 0, sizeof(detail::gpu::step_scalars), cuda_.stream),
               "cudaMemsetAsync");
    }
    if (!ok()) return;
    training_config const& config = *plan.config;
    mlp_layout const& layout = *plan.layout;
    std::size_t const n = params.size();
    constexpr int threads = 256;
    static_assert(threads == detail::gpu::tuning.block_threads);
    detail::gpu::gradient_norm_kernel<threads>
        <<<static_cast<unsigned>(detail::gpu::tuning.norm_blocks), threads, 0, cuda_.stream>>>(
            n, grads.data(), partials_.data(), scalars_.data(), loss.data(), config.clip_norm);
    record(detail::gpu::launched("gradient_norm_kernel"));
    if (!ok()) return;

    detail::gpu::optimizer_scalars o;
    if (config.opt == training_config::optimizer::adam) {
      o = adam_scalars({.lr = plan.lr,
                        .beta1 = static_cast<float>(config.adam_beta1),
                        .beta2 = static_cast<float>(config.adam_beta2),
                        .epsilon = static_cast<float>(config.adam_epsilon),
                        .weight_decay = static_cast<float>(config.weight_decay),
                        .t = plan.t});
    } else {
      o.adam = 0;
      o.lr = plan.lr;
      o.momentum = static_cast<float>(config.momentum);
      o.weight_decay = static_cast<float>(config.weight_decay);
    }
    o.ema = plan.ema ? 1 : 0;
    o.ema_keep = plan.ema_decay;
    o.ema_take = 1.0f - plan.ema_decay;
    detail::gpu::bias_segments biases;
    biases.count = static_cast<int>(layout.layers());
    for (std::size_t l = 0; l < layout.layers(); ++l) {
      biases.begin[l] = layout.bias_offset(l);
      biases.end[l] = layout.bias_offset(l) + layout.fan_out(l);
    }
    detail::gpu::optimizer_kernel<<<detail::gpu::blocks_for(n), threads, 0, cuda_.stream>>>(
        n, params.data(), grads.data(), m1.data(), m2.empty() ? nullptr : m2.data(),
        ema.empty() ? nullptr : ema.data(), scalars_.data(), o, biases);
    record(detail::gpu::launched("optimizer_kernel"));
  }

  /// The host never knows at once that a step diverged (the decision is on the device).
  static constexpr bool known_halted() noexcept { return false; }
  void clear_halt() {
    if (ok() && !scalars_.empty())
      record(cudaMemsetAsync(&scalars_.data()->halted, 0, sizeof(int), cuda_.stream),
             "cudaMemsetAsync");
  }
  /// The last step's gradient norm (waits for it; 0 before the first step, NaN after a failure).
  double last_gradient_norm() const {
    if (scalars_.empty()) return ok() ? 0.0 : std::numeric_limits<double>::quiet_NaN();
    detail::gpu::step_scalars s;
    copy_to_host(view(scalars_), std::span<detail::gpu::step_scalars>(&s, 1));
    return ok() ? s.norm : std::numeric_limits<double>::quiet_NaN();
  }

 private:
  void record(result<void> const& r) const {
    if (!r && !error_) error_ = r.error();
  }
  void record(error const& e) const {
    if (!error_) error_ = e;
  }
  void record(cudaError_t e, char const* what) const {
    if (e != cudaSuccess && !error_) error_ = backend::detail::cuda_error(e, what);
  }

  backend::cuda_t cuda_;
  mutable std::optional<error> error_;
  cublas_handle blas_;
  std::unique_ptr<CUevent_st, detail::gpu::event_deleter> start_, stop_;
  device_buffer<detail::gpu::step_scalars> scalars_;
  device_buffer<double> partials_;
  device_buffer<unsigned long long> count_;
};

/// The GPU trainer (cuBLAS + the kernels of detail/mlp_kernels.cuh): see basic_mlp_trainer.
using cuda_mlp_trainer = basic_mlp_trainer<backend::cuda_t>;

/// A training set on the GPU: copied to the device once, batches gathered there.
using cuda_training_set = basic_training_set<backend::cuda_t>;

}  // namespace proxytask::trainer
