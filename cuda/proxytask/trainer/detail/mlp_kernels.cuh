#pragma once
/// @file
/// The kernels of the trainer's CUDA back-end (mlp.cuh), with their tuning: the per-element math
/// comes from trainer/detail/layer_math.hpp (PROXYTASK_HD), shared with the CPU back-end, so
/// that activations and dropout masks are the same functions on both. Reductions (softmax
/// cross-entropy, column sums, the gradient norm) use a fixed assignment of elements to threads
/// and combine partial sums in a fixed order: a run gives the same bits every time on the same
/// GPU (no floating-point atomics).

#include <proxytask/core/backend.cuh>
#include <proxytask/trainer/detail/layer_math.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <math_constants.h>
#include <cub/block/block_reduce.cuh>

#include <cstddef>
#include <cstdint>

namespace proxytask::trainer::detail::gpu {

/// Launch shapes (CCCL's tuning-struct idea; one set suits every SM of interest here).
struct kernel_tuning {
  int block_threads = 256;     ///< elementwise kernels and the gradient-norm kernel
  int max_blocks = 2048;       ///< grid-stride beyond this
  int norm_blocks = 256;       ///< the gradient norm's first pass (fixed: deterministic)
  int softmax_threads = 1024;  ///< one block, one warp per row
  int column_tile = 32;        ///< column sums: 32 columns x 32 row groups per block
};
inline constexpr kernel_tuning tuning{};

/// Blocks for n elements at `threads` per block, at most tuning.max_blocks (grid-stride loops).
inline unsigned blocks_for(std::size_t n, int threads = tuning.block_threads) noexcept {
  std::size_t const b =
      (n + static_cast<std::size_t>(threads) - 1) / static_cast<std::size_t>(threads);
  return static_cast<unsigned>(b < 1 ? 1
                                     : (b > static_cast<std::size_t>(tuning.max_blocks)
                                            ? static_cast<std::size_t>(tuning.max_blocks)
                                            : b));
}

/// The device-side scalars of one optimizer step: written by gradient_norm_kernel, read by
/// optimizer_kernel (no host round trip between them).
struct step_scalars {
  double squares = 0.0;     ///< the sum of squares of the gradient
  double norm = 0.0;        ///< its square root: last_gradient_norm
  float grad_scale = 1.0f;  ///< the clipping factor
  int apply = 0;            ///< whether this step updates
  int halted = 0;           ///< a step diverged: no update until the host clears it
  unsigned ticket = 0;      ///< the last-block counter of gradient_norm_kernel
};

/// Where the biases are in the flat parameter array (weight decay skips them).
struct bias_segments {
  static constexpr int capacity = static_cast<int>(max_hidden_layers) + 1;
  int count = 0;
  unsigned long long begin[capacity] = {};
  unsigned long long end[capacity] = {};
};

/// The optimizer's scalars of one step (host-computed: they depend on the step only).
struct optimizer_scalars {
  int adam = 1;
  float lr = 0.0f;
  float beta1 = 0.9f, beta2 = 0.999f, one_minus_beta1 = 0.1f, one_minus_beta2 = 0.001f;
  float epsilon = 1e-8f;
  float c1 = 1.0f, c2 = 1.0f;  ///< Adam's bias corrections 1 / (1 - beta^t)
  float momentum = 0.9f;
  float weight_decay = 0.0f;
  int ema = 0;
  float ema_keep = 0.0f, ema_take = 1.0f;
};

// --- per-element optimizer math (the CPU back-end's formulas, operation for operation) --------

__device__ inline void adam_element(float& w, float g, float& m, float& v, float lr, float b1,
                                    float one_b1, float b2, float one_b2, float c1, float c2,
                                    float eps, float wd, float grad_scale) {
  float const gi = grad_scale * g;
  float const mi = b1 * m + one_b1 * gi;
  float const vi = b2 * v + one_b2 * gi * gi;
  m = mi;
  v = vi;
  w -= lr * (mi * c1 / (sqrtf(vi * c2) + eps) + wd * w);
}

__device__ inline void sgd_element(float& w, float g, float& velocity, float lr, float momentum,
                                   float wd, float grad_scale) {
  float const gi = grad_scale * g + wd * w;
  float const vi = momentum * velocity + gi;
  velocity = vi;
  w -= lr * vi;
}

// --- gemm-adjacent elementwise kernels -----------------------------------------------------

template <activation Act>
PROXYTASK_KERNEL void bias_activation_kernel(std::size_t rows, std::size_t cols, float* z,
                                             float const* b, float* a, float const* mask) {
  std::size_t const n = rows * cols;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    float const v = z[i] + b[i % cols];
    z[i] = v;
    float const y = activate<Act>(v);
    a[i] = mask != nullptr ? y * mask[i] : y;
  }
}

PROXYTASK_KERNEL inline void add_bias_kernel(std::size_t rows, std::size_t cols, float* z,
                                             float const* b) {
  std::size_t const n = rows * cols;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    z[i] += b[i % cols];
}

template <activation Act>
PROXYTASK_KERNEL void activation_backward_kernel(std::size_t n, float const* z, float const* mask,
                                                 float const* da, float* dz) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    float const d = activate_derivative<Act>(z[i]);
    dz[i] = mask != nullptr ? da[i] * mask[i] * d : da[i] * d;
  }
}

/// Thread q draws Philox block q (the CPU's word order): mask elements 4q .. 4q + 3.
PROXYTASK_KERNEL inline void dropout_mask_kernel(std::size_t n, std::uint64_t seed,
                                                 std::uint64_t step, std::uint32_t layer,
                                                 std::uint32_t threshold, float scale,
                                                 float* mask) {
  std::size_t const blocks = (n + 3) / 4;
  for (std::size_t q = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; q < blocks;
       q += std::size_t{gridDim.x} * blockDim.x) {
    r123array4x32 const w =
        philox_block(seed, stream::dropout, layer, step, static_cast<std::uint32_t>(q));
    for (std::size_t j = 0; j < 4 && 4 * q + j < n; ++j)
      mask[4 * q + j] = keeps(w.v[j], threshold) ? scale : 0.0f;
  }
}

PROXYTASK_KERNEL inline void scale_kernel(std::size_t n, float* x, float factor) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    x[i] *= factor;
}

PROXYTASK_KERNEL inline void fill_kernel(std::size_t n, float* x, float value) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    x[i] = value;
}

// --- softmax cross-entropy -----------------------------------------------------------------

/// One block; warp w takes rows w, w + warps, ...; lane j the classes j, j + 32, ... of a row.
/// dlogits = (softmax - onehot) / rows as the CPU computes it; the per-row losses are summed in
/// double per warp, then over the warps in order. A label >= classes gives a NaN loss (the
/// CPU's contract check cannot throw from a kernel; NaN reads as divergence).
PROXYTASK_KERNEL inline void softmax_cross_entropy_kernel(std::size_t rows, std::size_t classes,
                                                          float const* logits,
                                                          std::uint8_t const* labels,
                                                          float* dlogits, float* loss) {
  constexpr unsigned full = 0xffffffffu;
  __shared__ double warp_totals[32];
  unsigned const lane = threadIdx.x % 32;
  unsigned const warp = threadIdx.x / 32;
  unsigned const warps = blockDim.x / 32;
  float const inv_rows = 1.0f / static_cast<float>(rows);
  double total = 0.0;
  for (std::size_t r = warp; r < rows; r += warps) {
    float const* z = logits + r * classes;
    float* d = dlogits + r * classes;
    std::size_t const y = labels[r];
    float m = -CUDART_INF_F;
    for (std::size_t c = lane; c < classes; c += 32) m = z[c] > m ? z[c] : m;
    for (int o = 16; o > 0; o /= 2) {
      float const other = __shfl_xor_sync(full, m, o);
      m = other > m ? other : m;
    }
    // NaN logits: the comparisons above drop NaN; the sum below brings it back.
    float sum = 0.0f;
    for (std::size_t c = lane; c < classes; c += 32) sum += expf(z[c] - m);
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(full, sum, o);
    float const scale = inv_rows / sum;
    for (std::size_t c = lane; c < classes; c += 32) {
      float v = expf(z[c] - m) * scale;
      if (c == y) v -= inv_rows;
      d[c] = v;
    }
    if (lane == 0) {
      total += y < classes ? static_cast<double>(logf(sum)) - static_cast<double>(z[y] - m)
                           : static_cast<double>(CUDART_NAN_F);
    }
  }
  if (lane == 0) warp_totals[warp] = total;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0.0;
    for (unsigned w = 0; w < warps; ++w) t += warp_totals[w];
    *loss = static_cast<float>(t / static_cast<double>(rows));
  }
}

// --- reductions ----------------------------------------------------------------------------

/// out[c] = sum over the rows of x[r][c]: a block of 32 x 32 threads takes 32 columns; thread
/// (tx, ty) sums rows ty, ty + 32, ..., then the 32 partial sums of a column are added in order.
PROXYTASK_KERNEL inline void column_sums_kernel(std::size_t rows, std::size_t cols, float const* x,
                                                float* out) {
  __shared__ float partial[32][33];
  std::size_t const c = blockIdx.x * std::size_t{32} + threadIdx.x;
  float s = 0.0f;
  if (c < cols)
    for (std::size_t r = threadIdx.y; r < rows; r += 32) s += x[r * cols + c];
  partial[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.0f;
    for (int k = 0; k < 32; ++k) t += partial[k][threadIdx.x];
    out[c] = t;
  }
}

/// The optimizer step's control (one launch): the gradient's sum of squares in double (a fixed
/// grid, each block's partial to `partials`, the last block to finish adds them in block
/// order), then the decision the CPU back-end makes on the host: a halted run logs NaN and does
/// not update; a non-finite loss halts; a non-finite sum of squares makes the loss NaN and
/// halts; else apply, with the clipping factor min(1, max_norm / norm).
template <int Threads>
PROXYTASK_KERNEL void gradient_norm_kernel(std::size_t n, float const* g, double* partials,
                                           step_scalars* s, float* loss, double clip_norm) {
  using reduce = cub::BlockReduce<double, Threads>;
  __shared__ typename reduce::TempStorage temp;
  __shared__ bool last;
  double acc = 0.0;
  for (std::size_t i = blockIdx.x * std::size_t{Threads} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * Threads) {
    double const v = g[i];
    acc += v * v;
  }
  double const block_sum = reduce(temp).Sum(acc);
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = block_sum;
    __threadfence();
    last = atomicAdd(&s->ticket, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last) return;
  __threadfence();
  double a = 0.0;
  for (unsigned b = threadIdx.x; b < gridDim.x; b += Threads) a += __ldcg(partials + b);
  __syncthreads();  // temp is reused
  double const squares = reduce(temp).Sum(a);
  if (threadIdx.x != 0) return;
  s->ticket = 0;
  s->apply = 0;
  if (s->halted != 0) {
    *loss = CUDART_NAN_F;
    return;
  }
  if (!isfinite(*loss)) {
    s->halted = 1;
    return;
  }
  s->squares = squares;
  s->norm = sqrt(squares);
  if (!isfinite(squares)) {
    *loss = CUDART_NAN_F;
    s->halted = 1;
    return;
  }
  s->grad_scale =
      static_cast<float>(clip_norm > 0.0 && s->norm > clip_norm ? clip_norm / s->norm : 1.0);
  s->apply = 1;
}

/// Adam or SGD over the whole flat parameter array, then the EMA, when the step applies.
PROXYTASK_KERNEL inline void optimizer_kernel(std::size_t n, float* w, float const* g, float* m,
                                              float* v, float* ema, step_scalars const* s,
                                              optimizer_scalars o, bias_segments biases) {
  if (s->apply == 0) return;
  float const grad_scale = s->grad_scale;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x) {
    bool bias = false;
    // Unrolled over the capacity: constant indices keep the table in parameter space.
#pragma unroll
    for (int k = 0; k < bias_segments::capacity; ++k)
      bias = bias || (k < biases.count && i >= biases.begin[k] && i < biases.end[k]);
    float const wd = bias ? 0.0f : o.weight_decay;
    float wi = w[i];
    if (o.adam != 0) {
      adam_element(wi, g[i], m[i], v[i], o.lr, o.beta1, o.one_minus_beta1, o.beta2,
                   o.one_minus_beta2, o.c1, o.c2, o.epsilon, wd, grad_scale);
    } else {
      sgd_element(wi, g[i], m[i], o.lr, o.momentum, wd, grad_scale);
    }
    w[i] = wi;
    if (o.ema != 0) ema[i] = o.ema_keep * ema[i] + o.ema_take * wi;
  }
}

/// The stand-alone optimizer operations (the CPU table's adam_step, sgd_momentum_step,
/// ema_update, with a host-side grad_scale).
PROXYTASK_KERNEL inline void adam_kernel(std::size_t n, float* w, float const* g, float* m,
                                         float* v, optimizer_scalars o, float grad_scale) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    adam_element(w[i], g[i], m[i], v[i], o.lr, o.beta1, o.one_minus_beta1, o.beta2,
                 o.one_minus_beta2, o.c1, o.c2, o.epsilon, o.weight_decay, grad_scale);
}

PROXYTASK_KERNEL inline void sgd_kernel(std::size_t n, float* w, float const* g, float* velocity,
                                        float lr, float momentum, float wd, float grad_scale) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    sgd_element(w[i], g[i], velocity[i], lr, momentum, wd, grad_scale);
}

PROXYTASK_KERNEL inline void ema_kernel(std::size_t n, float* ema, float const* w, float keep,
                                        float take) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < n;
       i += std::size_t{gridDim.x} * blockDim.x)
    ema[i] = keep * ema[i] + take * w[i];
}

/// One block: the sum of squares in double (out[0]) and whether every element is finite
/// (finite[0]: 1 or 0), each element assigned to a fixed thread.
template <int Threads>
PROXYTASK_KERNEL void sum_of_squares_kernel(std::size_t n, float const* x, double* out,
                                            int* finite) {
  using reduce = cub::BlockReduce<double, Threads>;
  __shared__ typename reduce::TempStorage temp;
  double acc = 0.0;
  float nan_or_inf = 0.0f;
  for (std::size_t i = threadIdx.x; i < n; i += Threads) {
    double const v = x[i];
    acc += v * v;
    nan_or_inf += x[i] - x[i];  // 0 for finite x, NaN otherwise (the CPU's all_finite)
  }
  double const total = reduce(temp).Sum(acc);
  __syncthreads();
  double const bad = reduce(temp).Sum(static_cast<double>(nan_or_inf));
  if (threadIdx.x == 0) {
    if (out != nullptr) *out = total;
    if (finite != nullptr) *finite = bad == 0.0 ? 1 : 0;
  }
}

// --- data ----------------------------------------------------------------------------------

/// out[r] = the first index of the largest element of row r (the CPU's tie rule).
PROXYTASK_KERNEL inline void argmax_rows_kernel(std::size_t rows, std::size_t cols, float const* x,
                                                std::uint8_t* out) {
  for (std::size_t r = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; r < rows;
       r += std::size_t{gridDim.x} * blockDim.x) {
    float const* row = x + r * cols;
    std::size_t best = 0;
    for (std::size_t c = 1; c < cols; ++c)
      if (row[c] > row[best]) best = c;
    out[r] = static_cast<std::uint8_t>(best);
  }
}

/// Rows `indices` of (images, labels) into a batch, Vec floats at a time (Vec = float4 when the
/// row width allows). An index past the data gives NaN pixels and label 255 (a NaN loss: the
/// CPU's contract check cannot throw from a kernel).
template <class Vec>
PROXYTASK_KERNEL void gather_kernel(std::size_t rows, std::size_t vecs_per_row, std::size_t n,
                                    Vec const* images, std::uint8_t const* labels,
                                    std::uint32_t const* indices, Vec* batch_images,
                                    std::uint8_t* batch_labels) {
  std::size_t const total = rows * vecs_per_row;
  for (std::size_t e = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; e < total;
       e += std::size_t{gridDim.x} * blockDim.x) {
    std::size_t const i = e / vecs_per_row;
    std::size_t const f = e % vecs_per_row;
    std::size_t const r = indices[i];
    if (r < n) {
      batch_images[e] = images[r * vecs_per_row + f];
      if (f == 0) batch_labels[i] = labels[r];
    } else {
      Vec bad;
      float* p = reinterpret_cast<float*>(&bad);
      for (std::size_t k = 0; k < sizeof(Vec) / sizeof(float); ++k) p[k] = CUDART_NAN_F;
      batch_images[e] = bad;
      if (f == 0) batch_labels[i] = 255;
    }
  }
}

/// count[0] += the number of positions where a and b agree (one block, fixed order).
template <int Threads>
PROXYTASK_KERNEL void count_equal_kernel(std::size_t n, std::uint8_t const* a,
                                         std::uint8_t const* b, unsigned long long* count) {
  using reduce = cub::BlockReduce<unsigned long long, Threads>;
  __shared__ typename reduce::TempStorage temp;
  unsigned long long c = 0;
  for (std::size_t i = threadIdx.x; i < n; i += Threads) c += a[i] == b[i];
  unsigned long long const total = reduce(temp).Sum(c);
  if (threadIdx.x == 0) *count = total;
}

}  // namespace proxytask::trainer::detail::gpu
