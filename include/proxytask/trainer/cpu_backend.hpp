#pragma once
/// @file
/// The CPU back-end of the reference trainer: the small set of operations the training loop
/// (basic_mlp_trainer.hpp) is written in, on host float arrays. The back-end is the first
/// argument (backend::cpu, STYLE.md 2.3); the CUDA back-end (cuBLAS + small fused kernels,
/// cuda/proxytask/trainer/mlp.cuh) provides the same operations on device memory, so the loop
/// above them stays one code path. All matrices are row-major and contiguous.
///
/// | operation               | computes                                                     |
/// |-------------------------|--------------------------------------------------------------|
/// | gemm                    | C = alpha op(A) op(B) + beta C (cblas_sgemm)                 |
/// | add_bias                | Z += b, b broadcast over the rows                            |
/// | bias_activation_forward | Z += b; A = f(Z) * mask (mask optional: dropout)             |
/// | activation_backward     | dZ = dA * mask * f'(Z) (in place allowed)                    |
/// | dropout_mask            | 0 or 1 / (1 - p), Philox keyed by (seed, step, layer)        |
/// | softmax_cross_entropy   | mean loss over the rows; dlogits = (softmax - onehot) / rows |
/// | column_sums             | db = sum over the rows of dZ                                 |
/// | sum_of_squares          | sum of g^2 in double (global-norm clipping, divergence)      |
/// | scale                   | x *= factor                                                  |
/// | sgd_momentum_step       | v = mu v + (s g + wd w); w -= lr v                           |
/// | adam_step               | Adam with bias correction, decoupled weight decay (AdamW)    |
/// | ema_update              | e = d e + (1 - d) w                                          |
/// | all_finite              | no NaN or inf                                                |
/// | argmax_rows             | the predicted class of each row                              |
///
/// Determinism: every loop here runs on the calling thread in a fixed order, so its results are
/// the same bits for the same inputs. cblas_sgemm is OpenBLAS's: with one OpenBLAS thread it is
/// deterministic. (A build without OpenBLAS, PROXYTASK_TRAINER_NO_BLAS, uses portable loops
/// instead: slow, but deterministic with any thread count.) What we measured with OpenBLAS 0.3.21
/// (Debian 12, AMD EPYC, 784-256-10 and 784-1024-512-10, batches 1, 64, 256, 40 steps): two runs
/// with 2 threads gave the same bits, but not the bits of the 1-thread run (batches >= 64; the
/// threaded split changes the rounding). OpenBLAS does not promise run-to-run reproducibility with
/// threads, so the reproducibility claim (and the resume-equals-uninterrupted test) is for 1 thread
/// (set_blas_threads(1)); a run must also be resumed with the thread count it was started with to
/// continue bit for bit.
///
/// Threads: OpenBLAS's thread count is process-wide (openblas_set_num_threads), not per call, so
/// the operations ignore backend::cpu_t::threads; a trainer process calls set_blas_threads once.
/// Trials that run side by side on one machine use 1 thread each (several multi-threaded
/// OpenBLAS processes on the same cores slow each other down far more than they gain).

#include <proxytask/core/backend.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/trainer/detail/layer_math.hpp>
#include <proxytask/trainer/detail/operation_types.hpp>
#include <proxytask/trainer/search_space.hpp>

#if !defined(PROXYTASK_TRAINER_NO_BLAS)
#include <cblas.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

namespace proxytask::trainer {

// --- threads --------------------------------------------------------------------------------

/// Sets OpenBLAS's thread count for this process (openblas_set_num_threads). Use 1 when trials
/// run side by side, and for bitwise reproducibility.
/// @param[in] threads at least 1
inline void set_blas_threads(int threads) {
  PROXYTASK_EXPECTS(threads >= 1, "set_blas_threads: at least one thread");
#if !defined(PROXYTASK_TRAINER_NO_BLAS)
  openblas_set_num_threads(threads);
#endif
}

/// OpenBLAS's current thread count (1 without BLAS).
inline int blas_threads() noexcept {
#if !defined(PROXYTASK_TRAINER_NO_BLAS)
  return openblas_get_num_threads();
#else
  return 1;
#endif
}

/// Whether gemm is OpenBLAS's (false: the portable loops of a build without BLAS).
inline constexpr bool has_blas =
#if !defined(PROXYTASK_TRAINER_NO_BLAS)
    true;
#else
    false;
#endif

// --- linear algebra -------------------------------------------------------------------------

/// C (m x n) = alpha op(A) op(B) + beta C, all row-major and contiguous: op(A) is m x k (A is
/// m x k, or k x m when transposed), op(B) is k x n (B is k x n, or n x k when transposed).
/// @pre the spans hold at least m k, k n and m n elements; m, n, k < 2^31
inline void gemm(backend::cpu_t, transpose trans_a, transpose trans_b, std::size_t m, std::size_t n,
                 std::size_t k, float alpha, std::span<float const> a, std::span<float const> b,
                 float beta, std::span<float> c) {
  constexpr auto int_max = static_cast<std::size_t>(std::numeric_limits<int>::max());
  PROXYTASK_EXPECTS(m <= int_max && n <= int_max && k <= int_max, "gemm: extents above 2^31");
  PROXYTASK_EXPECTS(a.size() >= m * k && b.size() >= k * n && c.size() >= m * n,
                    "gemm: a span is smaller than its matrix");
  if (m == 0 || n == 0) return;
  bool const ta = trans_a == transpose::yes;
  bool const tb = trans_b == transpose::yes;
#if !defined(PROXYTASK_TRAINER_NO_BLAS)
  // cblas rejects a leading dimension of 0 even for an empty inner dimension.
  auto const lda = static_cast<int>(std::max<std::size_t>(1, ta ? m : k));
  auto const ldb = static_cast<int>(std::max<std::size_t>(1, tb ? k : n));
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a.data(), lda,
              b.data(), ldb, beta, c.data(), static_cast<int>(n));
#else
  // The portable loops of a build without BLAS (PROXYTASK_TRAINER_NO_BLAS: the CUDA build on a
  // machine without OpenBLAS, where the CPU back-end is the GPU tests' reference): slow, exact
  // in their own fixed order, as BLAS does not read C when beta is 0.
  float* const cd = c.data();
  for (std::size_t i = 0; i < m * n; ++i) cd[i] = beta == 0.0f ? 0.0f : beta * cd[i];
  for (std::size_t i = 0; i < m; ++i) {
    float* const row = cd + i * n;
    for (std::size_t p = 0; p < k; ++p) {
      float const aip = alpha * (ta ? a[p * m + i] : a[i * k + p]);
      if (tb) {
        for (std::size_t j = 0; j < n; ++j) row[j] += aip * b[j * k + p];
      } else {
        float const* const brow = b.data() + p * n;
        for (std::size_t j = 0; j < n; ++j) row[j] += aip * brow[j];
      }
    }
  }
#endif
}

/// Z (rows x cols) += b, b (cols) added to every row.
inline void add_bias(backend::cpu_t, std::size_t rows, std::size_t cols, std::span<float> z,
                     std::span<float const> b) {
  PROXYTASK_EXPECTS(z.size() == rows * cols && b.size() == cols, "add_bias: extents");
  float const* bias = b.data();
  for (std::size_t r = 0; r < rows; ++r) {
    float* row = z.data() + r * cols;
    for (std::size_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

/// The fused hidden-layer forward: Z += b (broadcast over the rows), then A = f(Z), times the
/// dropout mask when one is given. A may be Z itself (inference keeps no pre-activations).
/// @param[in]     act  the activation f
/// @param[in,out] z    rows x cols: X W on entry, X W + b on exit
/// @param[in]     b    cols
/// @param[out]    a    rows x cols
/// @param[in]     mask rows x cols of 0 or 1 / (1 - p) (dropout_mask), or empty for none
inline void bias_activation_forward(backend::cpu_t, activation act, std::size_t rows,
                                    std::size_t cols, std::span<float> z, std::span<float const> b,
                                    std::span<float> a, std::span<float const> mask = {}) {
  PROXYTASK_EXPECTS(z.size() == rows * cols && b.size() == cols && a.size() == rows * cols,
                    "bias_activation_forward: extents");
  PROXYTASK_EXPECTS(mask.empty() || mask.size() == rows * cols,
                    "bias_activation_forward: the mask's extent");
  detail::with_activation(act, [&](auto tag) {
    constexpr activation f = decltype(tag)::value;
    for (std::size_t r = 0; r < rows; ++r) {
      float* zr = z.data() + r * cols;
      float* ar = a.data() + r * cols;
      float const* bias = b.data();
      if (mask.empty()) {
        for (std::size_t c = 0; c < cols; ++c) {
          float const v = zr[c] + bias[c];
          zr[c] = v;
          ar[c] = detail::activate<f>(v);
        }
      } else {
        float const* mr = mask.data() + r * cols;
        for (std::size_t c = 0; c < cols; ++c) {
          float const v = zr[c] + bias[c];
          zr[c] = v;
          ar[c] = detail::activate<f>(v) * mr[c];
        }
      }
    }
  });
}

/// The hidden-layer backward: dZ = dA * mask * f'(Z). dz may be da itself.
/// @param[in]  z    the pre-activations (Z of bias_activation_forward)
/// @param[in]  mask the forward pass's dropout mask, or empty
/// @param[in]  da   the gradient with respect to the layer's output A
/// @param[out] dz   the gradient with respect to Z
inline void activation_backward(backend::cpu_t, activation act, std::span<float const> z,
                                std::span<float const> mask, std::span<float const> da,
                                std::span<float> dz) {
  PROXYTASK_EXPECTS(da.size() == z.size() && dz.size() == z.size(), "activation_backward: extents");
  PROXYTASK_EXPECTS(mask.empty() || mask.size() == z.size(), "activation_backward: mask extent");
  std::size_t const n = z.size();
  detail::with_activation(act, [&](auto tag) {
    constexpr activation f = decltype(tag)::value;
    if (mask.empty()) {
      for (std::size_t i = 0; i < n; ++i) dz[i] = da[i] * detail::activate_derivative<f>(z[i]);
    } else {
      for (std::size_t i = 0; i < n; ++i)
        dz[i] = da[i] * mask[i] * detail::activate_derivative<f>(z[i]);
    }
  });
}

/// The dropout mask of one hidden layer at one step: element i is 0 with probability p and
/// 1 / (1 - p) otherwise, decided by word i of the Philox stream (seed; dropout, layer, step).
/// The same (seed, step, layer) gives the same mask, so a resumed run draws what the
/// uninterrupted run drew.
/// @pre 0 <= p < 1; mask.size() < 2^34
inline void dropout_mask(backend::cpu_t, std::uint64_t seed, std::int64_t step, std::uint32_t layer,
                         double p, std::span<float> mask) {
  PROXYTASK_EXPECTS(p >= 0.0 && p < 1.0, "dropout_mask: p in [0, 1)");
  PROXYTASK_EXPECTS(step >= 0 && layer < (1u << 24), "dropout_mask: step >= 0, layer < 2^24");
  PROXYTASK_EXPECTS(mask.size() / 4 < (std::size_t{1} << 32), "dropout_mask: too many elements");
  std::uint32_t const threshold = detail::dropout_threshold(p);
  float const scale = detail::dropout_scale(p);
  std::size_t const n = mask.size();
  for (std::size_t i = 0; i < n; i += 4) {
    r123array4x32 const w =
        detail::philox_block(seed, detail::stream::dropout, layer, static_cast<std::uint64_t>(step),
                             static_cast<std::uint32_t>(i / 4));
    for (std::size_t j = 0; j < 4 && i + j < n; ++j)
      mask[i + j] = detail::keeps(w.v[j], threshold) ? scale : 0.0f;
  }
}

/// Softmax cross-entropy, fused forward and backward, numerically stable (the row maximum is
/// subtracted before exp).
/// @param[in]  logits  rows x classes
/// @param[in]  labels  rows, each < classes
/// @param[out] dlogits rows x classes: (softmax - onehot) / rows, the gradient of the mean loss
/// @returns the mean over the rows of -log softmax(logits)[label]; NaN or inf when the logits
///          are not finite (never throws for that: the trainer reports divergence)
/// @throws logic_error on a label >= classes
inline double softmax_cross_entropy(backend::cpu_t, std::size_t rows, std::size_t classes,
                                    std::span<float const> logits,
                                    std::span<std::uint8_t const> labels,
                                    std::span<float> dlogits) {
  PROXYTASK_EXPECTS(rows > 0 && classes > 0, "softmax_cross_entropy: empty batch");
  PROXYTASK_EXPECTS(
      logits.size() == rows * classes && labels.size() == rows && dlogits.size() == rows * classes,
      "softmax_cross_entropy: extents");
  float const inv_rows = 1.0f / static_cast<float>(rows);
  double total = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t const y = labels[r];
    PROXYTASK_EXPECTS(y < classes, "softmax_cross_entropy: a label >= the number of classes");
    float const* z = logits.data() + r * classes;
    float* d = dlogits.data() + r * classes;
    float m = z[0];
    for (std::size_t c = 1; c < classes; ++c) m = z[c] > m ? z[c] : m;
    float sum = 0.0f;
    for (std::size_t c = 0; c < classes; ++c) {
      d[c] = std::exp(z[c] - m);
      sum += d[c];
    }
    float const scale = inv_rows / sum;
    for (std::size_t c = 0; c < classes; ++c) d[c] *= scale;
    d[y] -= inv_rows;
    total += static_cast<double>(std::log(sum)) - static_cast<double>(z[y] - m);
  }
  return total / static_cast<double>(rows);
}

/// out (cols) = the sum over the rows of x (rows x cols): the bias gradient.
inline void column_sums(backend::cpu_t, std::size_t rows, std::size_t cols,
                        std::span<float const> x, std::span<float> out) {
  PROXYTASK_EXPECTS(x.size() == rows * cols && out.size() == cols, "column_sums: extents");
  std::fill(out.begin(), out.end(), 0.0f);
  float* o = out.data();
  for (std::size_t r = 0; r < rows; ++r) {
    float const* row = x.data() + r * cols;
    for (std::size_t c = 0; c < cols; ++c) o[c] += row[c];
  }
}

/// The sum of squares, accumulated in double (the global gradient norm is its square root).
/// NaN or inf when x holds one.
inline double sum_of_squares(backend::cpu_t, std::span<float const> x) noexcept {
  double s = 0.0;
  for (float const v : x) s += static_cast<double>(v) * static_cast<double>(v);
  return s;
}

/// In place: x *= factor.
inline void scale(backend::cpu_t, std::span<float> x, float factor) noexcept {
  for (float& v : x) v *= factor;
}

// --- optimizers -----------------------------------------------------------------------------

/// One SGD-with-momentum update (PyTorch's form): g' = grad_scale g + weight_decay w;
/// v = momentum v + g'; w -= lr v.
inline void sgd_momentum_step(backend::cpu_t, std::span<float> w, std::span<float const> g,
                              std::span<float> velocity, float lr, float momentum,
                              float weight_decay, float grad_scale) {
  PROXYTASK_EXPECTS(g.size() == w.size() && velocity.size() == w.size(),
                    "sgd_momentum_step: extents");
  std::size_t const n = w.size();
  for (std::size_t i = 0; i < n; ++i) {
    float const gi = grad_scale * g[i] + weight_decay * w[i];
    float const vi = momentum * velocity[i] + gi;
    velocity[i] = vi;
    w[i] -= lr * vi;
  }
}

/// One Adam update with bias correction (Kingma and Ba 2015) and decoupled weight decay
/// (Loshchilov and Hutter 2019): g' = grad_scale g; m = b1 m + (1 - b1) g';
/// v = b2 v + (1 - b2) g'^2; w -= lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd w).
inline void adam_step(backend::cpu_t, std::span<float> w, std::span<float const> g,
                      std::span<float> m, std::span<float> v, adam_parameters const& p,
                      float grad_scale) {
  PROXYTASK_EXPECTS(g.size() == w.size() && m.size() == w.size() && v.size() == w.size(),
                    "adam_step: extents");
  PROXYTASK_EXPECTS(p.t >= 1, "adam_step: t counts from 1");
  auto const t = static_cast<double>(p.t);
  auto const c1 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta1), t)));
  auto const c2 = static_cast<float>(1.0 / (1.0 - std::pow(static_cast<double>(p.beta2), t)));
  float const b1 = p.beta1, b2 = p.beta2, one_b1 = 1.0f - p.beta1, one_b2 = 1.0f - p.beta2;
  std::size_t const n = w.size();
  for (std::size_t i = 0; i < n; ++i) {
    float const gi = grad_scale * g[i];
    float const mi = b1 * m[i] + one_b1 * gi;
    float const vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] -= p.lr * (mi * c1 / (std::sqrt(vi * c2) + p.epsilon) + p.weight_decay * w[i]);
  }
}

/// e = decay e + (1 - decay) w.
inline void ema_update(backend::cpu_t, std::span<float> ema, std::span<float const> w,
                       float decay) {
  PROXYTASK_EXPECTS(ema.size() == w.size(), "ema_update: extents");
  float const keep = decay, take = 1.0f - decay;
  std::size_t const n = w.size();
  for (std::size_t i = 0; i < n; ++i) ema[i] = keep * ema[i] + take * w[i];
}

/// True when x holds no NaN and no infinity.
inline bool all_finite(backend::cpu_t, std::span<float const> x) noexcept {
  // x - x is 0 for finite x and NaN for NaN or inf; one reduction, no branch per element.
  float acc = 0.0f;
  for (float const v : x) acc += v - v;
  return acc == 0.0f;
}

/// out[r] = the index of the largest of row r of x (rows x cols); the first on ties.
inline void argmax_rows(backend::cpu_t, std::size_t rows, std::size_t cols,
                        std::span<float const> x, std::span<std::uint8_t> out) {
  PROXYTASK_EXPECTS(x.size() == rows * cols && out.size() == rows && cols >= 1 && cols <= 256,
                    "argmax_rows: extents");
  for (std::size_t r = 0; r < rows; ++r) {
    float const* row = x.data() + r * cols;
    std::size_t best = 0;
    for (std::size_t c = 1; c < cols; ++c)
      if (row[c] > row[best]) best = c;
    out[r] = static_cast<std::uint8_t>(best);
  }
}

}  // namespace proxytask::trainer
