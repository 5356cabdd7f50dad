#pragma once
// The host side of the CUDA correlate_over_steps: device memory kept between calls, the kernel
// sequence, and the step rows, assembled with the CPU back-end's own functions (validity rule,
// p-values, interval levels, quantile interpolation) from the exact integers and order
// statistics the device computed. One round trip per call; two with a BCa interval (its levels
// need the host's normal quantiles before the device selects the order statistics).

#include <proxytask/core/backend.cuh>
#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/detail/correlation_cpu.hpp>
#include <proxytask/stats/detail/over_steps_cpu.hpp>
#include <proxytask/stats/detail/over_steps_kernels.cuh>
#include <proxytask/stats/p_value.hpp>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

namespace proxytask::stats::detail::gpu {

/// Device memory kept between calls on one thread, for one device: a controller polls the same
/// sizes again and again, and cudaMalloc costs more than a small call.
struct workspace {
  int device = -1;
  device_buffer<std::byte> scores, reference;  // staged host data
  device_buffer<std::uint64_t> keys_in, keys_out, reference_keys_in, reference_keys_out;
  device_buffer<std::uint32_t> models_in, models_out, reference_models_in, reference_models_out;
  device_buffer<std::uint32_t> reference_first, reference_last, reference_present;
  device_buffer<std::uint8_t> has_reference;
  device_buffer<std::int64_t> offsets;
  device_buffer<std::uint32_t> scan, x_lo, x_hi, y_lo, y_hi, y_order, draw_position, scratch;
  device_buffer<std::int32_t> position_of;
  device_buffer<step_stats> stats;
  device_buffer<double> replicates, jackknife, order_statistics;
  device_buffer<replicate_tally> tallies;
  device_buffer<jackknife_moments> moments;
  device_buffer<std::uint32_t> ranks;
  device_buffer<std::uint64_t> jackknife_scratch;
  device_buffer<unsigned long long> permutation_counts;
  device_buffer<std::byte> cub_temp;
};

/// This thread's workspace for the current device.
inline result<workspace*> current_workspace() {
  static thread_local workspace kept;
  int device = 0;
  PROXYTASK_CUDA_TRY(cudaGetDevice(&device));
  if (kept.device != device) {
    kept = workspace{};
    kept.device = device;
  }
  return &kept;
}

template <class T>
result<void> download(std::vector<T>& host, device_buffer<T> const& device, std::size_t n,
                      cudaStream_t stream) {
  host.resize(n);
  if (n == 0) return {};
  PROXYTASK_CUDA_TRY(
      cudaMemcpyAsync(host.data(), device.data(), n * sizeof(T), cudaMemcpyDeviceToHost, stream));
  return {};
}

inline unsigned blocks_for(std::size_t n, unsigned block) {
  return static_cast<unsigned>((n + block - 1) / block);
}

/// How a kernel of one block per item (a replicate or a pairing) at a time is launched: enough
/// blocks per step for 8 per multiprocessor, each taking every gridDim.y-th of its step's items,
/// and each block's scratch in shared memory when it fits in 40 KiB, else in the workspace.
struct block_per_item {
  dim3 grid;
  std::size_t shared_bytes = 0;      ///< the scratch, when in shared memory
  std::uint32_t* scratch = nullptr;  ///< the blocks' global scratch, or nullptr: shared memory
};

/// The launch of `steps` x at most `items` items whose blocks need `words` 32-bit words each.
inline result<block_per_item> plan_block_per_item(std::size_t steps, std::size_t items,
                                                  std::size_t words, workspace& ws,
                                                  cudaStream_t stream) {
  int device = 0, processors = 0;
  PROXYTASK_CUDA_TRY(cudaGetDevice(&device));
  PROXYTASK_CUDA_TRY(cudaDeviceGetAttribute(&processors, cudaDevAttrMultiProcessorCount, device));
  std::size_t const per_step = std::clamp<std::size_t>(
      (std::size_t{8} * static_cast<std::size_t>(processors) + steps - 1) / steps, 1,
      std::min<std::size_t>(items, 65535));
  block_per_item plan{dim3(static_cast<unsigned>(steps), static_cast<unsigned>(per_step))};
  if (std::size_t const bytes = words * sizeof(std::uint32_t); bytes <= 40 * 1024) {
    plan.shared_bytes = bytes;
    return plan;
  }
  if (auto const r = ws.scratch.resize(words * steps * per_step, stream); !r) return r.error();
  plan.scratch = ws.scratch.data();
  return plan;
}

/// Launches block_replicates_kernel (plan_block_per_item).
template <class Key>
result<void> launch_block_replicates(replicate_args args, std::size_t steps, workspace& ws,
                                     cudaStream_t stream) {
  constexpr int block = 256;
  bool const kendall = args.rule.method == correlation::kendall_tau_b;
  auto const plan = plan_block_per_item(
      steps, args.count, replicate_scratch_words(args.rows, kendall ? sizeof(Key) : 0), ws, stream);
  if (!plan) return plan.error();
  args.scratch = plan->scratch;
  block_replicates_kernel<block, Key>
      <<<plan->grid, block, plan->shared_bytes, stream>>>(args, plan->scratch == nullptr);
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return {};
}

/// Launches the replicate kernel for the steps' sizes: one thread per replicate when every step
/// has at most small_step_pairs pairs, else one block per replicate.
inline result<void> launch_replicates(replicate_args args, std::size_t steps, workspace& ws,
                                      cudaStream_t stream) {
  if (args.rows <= small_step_pairs) {
    constexpr int block = 128;
    dim3 const grid(static_cast<unsigned>(steps), std::min(blocks_for(args.count, block), 65535u));
    small_replicates_kernel<block><<<grid, block, 0, stream>>>(args);
    PROXYTASK_CUDA_TRY(cudaGetLastError());
    return {};
  }
  // Kendall's draws need keys of their x and y groups (16 bits each while rows < 65,536).
  if (args.rule.method == correlation::kendall_tau_b && args.rows >= (1u << 16))
    return launch_block_replicates<std::uint64_t>(args, steps, ws, stream);
  return launch_block_replicates<std::uint32_t>(args, steps, ws, stream);
}

/// The interval bound of one quantile level from the order statistics the device selected.
inline double bound(double q, std::size_t defined, double lower, double upper) {
  if (defined == 0 || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  return quantile_position(q, defined).value(lower, upper);
}

template <class T>
result<void> resize_all(std::initializer_list<device_buffer<T>*> buffers, std::size_t n,
                        cudaStream_t stream) {
  for (auto* b : buffers)
    if (auto const r = b->resize(n, stream); !r) return r.error();
  return {};
}

/// Launches a kernel with `bytes` of dynamic shared memory, allowing it the device's whole room
/// first when that is past the default 48 KiB (which counts the kernel's static shared memory
/// too). Returns false, launching nothing, when the device has less room than `bytes` (an H100
/// has 227 KiB per block, an A100 163 KiB, recent consumer GPUs 99 KiB): the caller takes a path
/// that needs less. The attribute is set to the device's limit, never to one call's size, so
/// that calls on other threads with more keep their room.
template <class... Params, class... Args>
result<bool> launch(void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t bytes,
                    cudaStream_t stream, Args&&... args) {
  cudaFuncAttributes attributes{};
  PROXYTASK_CUDA_TRY(cudaFuncGetAttributes(&attributes, kernel));
  if (bytes + attributes.sharedSizeBytes > 48 * 1024) {
    int device = 0, room = 0;
    PROXYTASK_CUDA_TRY(cudaGetDevice(&device));
    PROXYTASK_CUDA_TRY(
        cudaDeviceGetAttribute(&room, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    std::size_t const limit = static_cast<std::size_t>(room) - attributes.sharedSizeBytes;
    if (bytes > limit) return false;
    PROXYTASK_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(limit)));
  }
  kernel<<<grid, block, bytes, stream>>>(std::forward<Args>(args)...);
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return true;
}

template <int N>
using int_c = std::integral_constant<int, N>;

/// Calls body(int_c<Block>, int_c<Items>) with the in-block tier for `rows` models, and returns
/// its result (whether it launched: false when the device has too little shared memory for the
/// tier); false when the steps are too large for one block.
template <class Key, class Body>
result<bool> with_in_block_tier(std::size_t rows, Body&& body) {
  static_assert(in_block_capacity<Key> == (sizeof(Key) == 4 ? 1024 : 512) * 16);
  if (rows <= 32) return body(int_c<32>{}, int_c<1>{});
  if (rows <= 2048) return body(int_c<256>{}, int_c<8>{});
  if (rows > in_block_capacity<Key>) return false;
  if constexpr (sizeof(Key) == 4)
    return body(int_c<1024>{}, int_c<16>{});
  else
    return body(int_c<512>{}, int_c<16>{});
}

/// Room for `bytes` of CUB temporary storage.
inline result<void*> cub_storage(workspace& ws, std::size_t bytes, cudaStream_t stream) {
  if (ws.cub_temp.size() < bytes)
    if (auto const r = ws.cub_temp.resize(bytes, stream); !r) return r.error();
  return static_cast<void*>(ws.cub_temp.data());
}

/// Sorts the reference with CUB's device radix sort (many blocks: for references too large for
/// one block to sort quickly) and finds its runs, as reference_in_block_kernel does.
template <class Real>
result<void> rank_reference_with_cub(cudaStream_t stream, Real const* reference, std::size_t rows,
                                     workspace& ws) {
  using key_t = typename key_traits<Real>::type;
  auto const n = static_cast<std::uint32_t>(rows);
  if (auto const r = resize_all({&ws.reference_keys_in, &ws.reference_keys_out},
                                (rows * sizeof(key_t) + 7) / 8, stream);
      !r)
    return r;
  if (auto const r = ws.reference_models_in.resize(rows, stream); !r) return r;
  auto* const keys_in = reinterpret_cast<key_t*>(ws.reference_keys_in.data());
  auto* const keys_out = reinterpret_cast<key_t*>(ws.reference_keys_out.data());
  std::size_t bytes = 0;
  PROXYTASK_CUDA_TRY(cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, keys_in, keys_out, ws.reference_models_in.data(),
      ws.reference_models_out.data(), rows, 0, static_cast<int>(sizeof(key_t) * 8), stream));
  auto const temp = cub_storage(ws, bytes, stream);
  if (!temp) return temp.error();
  load_keys_kernel<Real><<<dim3(1, blocks_for(rows, 32)), dim3(32, 8), 0, stream>>>(
      reference, n, 1, keys_in, ws.reference_models_in.data());
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  PROXYTASK_CUDA_TRY(cub::DeviceRadixSort::SortPairs(
      *temp, bytes, keys_in, keys_out, ws.reference_models_in.data(),
      ws.reference_models_out.data(), rows, 0, static_cast<int>(sizeof(key_t) * 8), stream));
  PROXYTASK_CUDA_TRY(cudaMemsetAsync(ws.has_reference.data(), 0, rows, stream));
  PROXYTASK_CUDA_TRY(
      cudaMemsetAsync(ws.reference_present.data(), 0, sizeof(std::uint32_t), stream));
  reference_runs_kernel<key_t><<<blocks_for(rows, 256), 256, 0, stream>>>(
      keys_out, ws.reference_models_out.data(), n, ws.reference_first.data(),
      ws.reference_last.data(), ws.has_reference.data(), ws.reference_present.data());
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return {};
}

/// Sorts and ranks every step with CUB's segmented sort and rank_steps_kernel: the path for
/// steps too large for one block (after rank_reference_with_cub).
template <class Real>
result<void> rank_with_segmented_sort(cudaStream_t stream, Real const* scores, std::size_t rows,
                                      std::size_t steps, workspace& ws,
                                      rank_args<typename key_traits<Real>::type> ranking) {
  using key_t = typename key_traits<Real>::type;
  std::size_t const total = rows * steps;
  auto const n = static_cast<std::uint32_t>(rows);
  auto const s32 = static_cast<std::uint32_t>(steps);
  if (auto const r =
          resize_all({&ws.keys_in, &ws.keys_out}, (total * sizeof(key_t) + 7) / 8, stream);
      !r)
    return r;
  if (auto const r = resize_all({&ws.models_in, &ws.models_out, &ws.scan}, total, stream); !r)
    return r;
  if (auto const r = ws.position_of.resize(total, stream); !r) return r;
  if (auto const r = ws.offsets.resize(steps + 1, stream); !r) return r;
  auto* const keys_in = reinterpret_cast<key_t*>(ws.keys_in.data());
  auto* const keys_out = reinterpret_cast<key_t*>(ws.keys_out.data());
  std::size_t bytes = 0;
  PROXYTASK_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(
      nullptr, bytes, keys_in, keys_out, ws.models_in.data(), ws.models_out.data(),
      static_cast<std::int64_t>(total), static_cast<std::int64_t>(steps), ws.offsets.data(),
      ws.offsets.data() + 1, stream));
  auto const temp = cub_storage(ws, bytes, stream);
  if (!temp) return temp.error();
  load_keys_kernel<Real>
      <<<dim3(blocks_for(steps, 32), blocks_for(rows, 32)), dim3(32, 8), 0, stream>>>(
          scores, n, s32, keys_in, ws.models_in.data());
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  segment_offsets_kernel<<<blocks_for(steps + 1, 256), 256, 0, stream>>>(n, s32, ws.offsets.data());
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  // Stable: ties stay in model order.
  PROXYTASK_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(
      *temp, bytes, keys_in, keys_out, ws.models_in.data(), ws.models_out.data(),
      static_cast<std::int64_t>(total), static_cast<std::int64_t>(steps), ws.offsets.data(),
      ws.offsets.data() + 1, stream));

  ranking.keys = keys_out;
  ranking.models = ws.models_out.data();
  ranking.scan = ws.scan.data();
  ranking.position_of = ws.position_of.data();
  // A step's passes are tile loops of block scans: wide blocks for many models, so that the
  // loops are short.
  if (rows > 4096)
    rank_steps_kernel<key_t, 1024><<<s32, 1024, 0, stream>>>(ranking);
  else
    rank_steps_kernel<key_t, 256><<<s32, 256, 0, stream>>>(ranking);
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return {};
}

/// Kendall's scores of every step (kendall_merge_kernel), after the ranking: the keys in shared
/// memory when the device has room for them (29,018 models on an H100), else in the workspace's
/// scratch.
template <class Key>
result<void> launch_kendall_merges(cudaStream_t stream, std::size_t rows, std::size_t steps,
                                   step_arrays const& arrays, workspace& ws) {
  auto const n = static_cast<std::uint32_t>(rows);
  auto const s32 = static_cast<std::uint32_t>(steps);
  std::size_t const bytes = 2 * rows * sizeof(Key);
  auto const merges = [&](std::size_t shared, Key* scratch) {
    if (rows > 2048)
      return launch(kendall_merge_kernel<Key, 1024>, s32, 1024, shared, stream, n, arrays,
                    ws.stats.data(), scratch);
    return launch(kendall_merge_kernel<Key, 256>, s32, 256, shared, stream, n, arrays,
                  ws.stats.data(), scratch);
  };
  auto const in_shared = merges(bytes, nullptr);
  if (!in_shared) return in_shared.error();
  if (*in_shared) return {};
  if (auto const r = ws.scratch.resize(bytes * steps / sizeof(std::uint32_t), stream); !r) return r;
  if (auto const r = merges(0, reinterpret_cast<Key*>(ws.scratch.data())); !r) return r.error();
  return {};
}

/// Kendall's scores of every step, with the narrowest keys that hold the groups.
inline result<void> launch_kendall_scores(cudaStream_t stream, std::size_t rows, std::size_t steps,
                                          step_arrays const& arrays, workspace& ws) {
  // The keys pack (x group, y group) in half the bits each.
  if (rows < (std::size_t{1} << 16))
    return launch_kendall_merges<std::uint32_t>(stream, rows, steps, arrays, ws);
  return launch_kendall_merges<std::uint64_t>(stream, rows, steps, arrays, ws);
}

/// BCa's jackknife of every step (jackknife_kernel), into ws.jackknife.
inline result<void> launch_jackknife(cudaStream_t stream, std::size_t rows, std::size_t steps,
                                     step_arrays const& arrays, validity_rule const& rule,
                                     workspace& ws) {
  auto const n = static_cast<std::uint32_t>(rows);
  if (auto const r = ws.jackknife_scratch.resize(jackknife_scratch_words(n) * steps, stream); !r)
    return r;
  if (rows > 2048)
    jackknife_kernel<512><<<static_cast<unsigned>(steps), 512, 0, stream>>>(
        n, arrays, ws.stats.data(), rule, ws.jackknife_scratch.data(), ws.jackknife.data());
  else
    jackknife_kernel<256><<<static_cast<unsigned>(steps), 256, 0, stream>>>(
        n, arrays, ws.stats.data(), rule, ws.jackknife_scratch.data(), ws.jackknife.data());
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return {};
}

/// At most this many resamples per step: the bootstrap summary sorts them in one block
/// (summarize_in_block_kernel); more go through tally_kernel and select_kernel.
inline constexpr std::size_t in_block_resamples = 512 * 20;

/// Launches summarize_in_block_kernel in the smallest tier that holds `count` resamples; false,
/// launching nothing, when none does (more than in_block_resamples) or the device has too little
/// shared memory for it (80 KiB at the most).
inline result<bool> launch_in_block_summary(cudaStream_t stream, std::uint32_t count,
                                            std::uint32_t steps, selection const& select, double c,
                                            bool sorted_back, workspace& ws) {
  if (count > in_block_resamples) return false;
  double* const replicates = ws.replicates.data();
  double* const out = ws.order_statistics.data();
  if (count <= 128 * 8)
    return launch(summarize_in_block_kernel<128, 8>, steps, 128, sizeof(summary_storage<128, 8>),
                  stream, replicates, count, select, c, sorted_back, ws.tallies.data(), out);
  static_assert(in_block_resamples == 512 * 20);
  return launch(summarize_in_block_kernel<512, 20>, steps, 512, sizeof(summary_storage<512, 20>),
                stream, replicates, count, select, c, sorted_back, ws.tallies.data(), out);
}

/// Launches block_permutations_kernel (plan_block_per_item); `most` pairings per step at the most.
template <class Key>
result<void> launch_block_permutations(permutation_args args, std::size_t steps, std::size_t most,
                                       workspace& ws, cudaStream_t stream) {
  constexpr int block = 256;
  bool const kendall = args.rule.method == correlation::kendall_tau_b;
  auto const plan = plan_block_per_item(
      steps, most, permutation_scratch_words(args.rows, kendall ? sizeof(Key) : 0), ws, stream);
  if (!plan) return plan.error();
  args.scratch = plan->scratch;
  block_permutations_kernel<block, Key>
      <<<plan->grid, block, plan->shared_bytes, stream>>>(args, plan->scratch == nullptr);
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return {};
}

/// The permutation tests of every step: per step, how many pairings' statistics are at least and
/// at most the observed one; one thread per pairing when every step has at most small_step_pairs
/// pairs (permutation_kernel), else one block per pairing (block_permutations_kernel).
inline result<void> launch_permutations(cudaStream_t stream, std::size_t rows, std::size_t steps,
                                        step_arrays const& arrays, validity_rule const& rule,
                                        over_steps_options const& options, workspace& ws) {
  if (auto const r = ws.permutation_counts.resize(2 * steps, stream); !r) return r;
  PROXYTASK_CUDA_TRY(cudaMemsetAsync(ws.permutation_counts.data(), 0,
                                     2 * steps * sizeof(unsigned long long), stream));
  // The most pairings a step tests: n! when the validity rule may let a step of at most
  // exact_permutation_pairs pairs through (a lower bound of its fewest pairs: the floor), else
  // the Monte Carlo count.
  auto const fewest_pairs = static_cast<std::size_t>(std::max<double>(
      static_cast<double>(rule.min_valid_pairs), std::floor(rule.min_valid_fraction * rows)));
  std::size_t most = options.permutations;
  if (fewest_pairs <= exact_permutation_pairs)
    most = std::max<std::size_t>(most,
                                 factorial(std::min<std::uint32_t>(static_cast<std::uint32_t>(rows),
                                                                   exact_permutation_pairs)));
  permutation_args const args{static_cast<std::uint32_t>(rows),
                              arrays,
                              ws.stats.data(),
                              rule,
                              static_cast<std::uint32_t>(options.permutations),
                              options.seed,
                              ws.permutation_counts.data(),
                              nullptr};
  if (rows > small_step_pairs) {
    // Kendall's keys pack (x group, y group) in half the bits each.
    if (rule.method == correlation::kendall_tau_b && rows >= (std::size_t{1} << 16))
      return launch_block_permutations<std::uint64_t>(args, steps, most, ws, stream);
    return launch_block_permutations<std::uint32_t>(args, steps, most, ws, stream);
  }
  constexpr int block = 128;
  dim3 const grid(static_cast<unsigned>(steps), std::min(blocks_for(most, block), 65535u));
  permutation_kernel<block><<<grid, block, 0, stream>>>(args);
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  return {};
}

/// The whole computation on device data; `rows` models x `steps` steps.
template <class Real>
result<step_table> correlate_on_device(cudaStream_t stream, Real const* scores, std::size_t rows,
                                       std::size_t steps, Real const* reference,
                                       over_steps_options const& options) {
  using key_t = typename key_traits<Real>::type;
  step_table table(steps);
  if (steps == 0 || rows == 0) return table;
  auto const got = current_workspace();
  if (!got) return got.error();
  workspace& ws = **got;
  std::size_t const total = rows * steps;
  auto const n = static_cast<std::uint32_t>(rows);
  auto const s32 = static_cast<std::uint32_t>(steps);
  bool const kendall = options.method == correlation::kendall_tau_b;
  std::size_t const resamples = options.bootstrap_resamples;
  bool const permutations = options.permutations > 0;
  bool const arrays_wanted = kendall || resamples > 0 || permutations;
  auto const resize_arrays = [&] {
    return resize_all({&ws.x_lo, &ws.x_hi, &ws.y_lo, &ws.y_hi, &ws.y_order, &ws.draw_position},
                      total, stream);
  };
  if (arrays_wanted)
    if (auto const r = resize_arrays(); !r) return r.error();
  if (auto const r = resize_all({&ws.reference_models_out, &ws.reference_first, &ws.reference_last},
                                rows, stream);
      !r)
    return r.error();
  if (auto const r = ws.reference_present.resize(1, stream); !r) return r.error();
  if (auto const r = ws.has_reference.resize(rows, stream); !r) return r.error();
  if (auto const r = ws.stats.resize(steps, stream); !r) return r.error();

  // The ranking's arguments, with the workspace's arrays as they are when it is called.
  auto const ranking = [&] {
    step_arrays const arrays{ws.x_lo.data(), ws.x_hi.data(),    ws.y_lo.data(),
                             ws.y_hi.data(), ws.y_order.data(), ws.draw_position.data()};
    return rank_args<key_t>{nullptr,
                            nullptr,
                            n,
                            ws.has_reference.data(),
                            resamples > 0 || permutations,
                            ws.reference_models_out.data(),
                            ws.reference_first.data(),
                            ws.reference_last.data(),
                            ws.reference_present.data(),
                            nullptr,
                            nullptr,
                            arrays,
                            ws.stats.data()};
  };
  // The reference: in one block while that is quick (a block sorts 2,048 values in a few
  // microseconds, but 16,384 in a hundred and more), else with CUB's device-wide sort.
  constexpr std::size_t most_in_block = 2048;
  bool reference_in_block = false;
  if (rows <= most_in_block) {
    auto const r = with_in_block_tier<key_t>(rows, [&](auto block, auto items) -> result<bool> {
      constexpr int b = decltype(block)::value, i = decltype(items)::value;
      if constexpr (std::size_t{b} * i > most_in_block) {
        return false;  // not reached: no kernel of the larger tiers is compiled
      } else {
        return launch(reference_in_block_kernel<Real, b, i>, 1, b,
                      sizeof(in_block_storage<key_t, b, i>), stream, reference, n,
                      ws.reference_models_out.data(), ws.reference_first.data(),
                      ws.reference_last.data(), ws.has_reference.data(),
                      ws.reference_present.data());
      }
    });
    if (!r) return r.error();
    reference_in_block = *r;
  }
  if (!reference_in_block)
    if (auto const r = rank_reference_with_cub(stream, reference, rows, ws); !r) return r.error();
  auto const in_block = with_in_block_tier<key_t>(rows, [&](auto block, auto items) {
    constexpr int b = decltype(block)::value, i = decltype(items)::value;
    return launch(rank_in_block_kernel<Real, b, i>, s32, b, sizeof(in_block_storage<key_t, b, i>),
                  stream, scores, s32, ranking(), arrays_wanted);
  });
  if (!in_block) return in_block.error();
  if (!*in_block) {  // too large for one block, or for this device's shared memory
    // The segmented-sort path always needs the arrays (its ranking passes go through them).
    if (auto const r = resize_arrays(); !r) return r.error();
    if (auto const r = rank_with_segmented_sort(stream, scores, rows, steps, ws, ranking()); !r)
      return r.error();
  }
  step_arrays const arrays = ranking().arrays;
  if (kendall)
    if (auto const r = launch_kendall_scores(stream, rows, steps, arrays, ws); !r) return r.error();

  validity_rule const rule{
      n,
      static_cast<std::uint32_t>(std::min<std::size_t>(options.min_valid_pairs, ~std::uint32_t{0})),
      options.min_valid_fraction, options.method};
  bool const bca = options.interval == interval_method::bca;
  double const alpha = (1.0 - options.confidence_level) / 2;
  constexpr int block = 256;
  // Whether one block per step summarised the replicates, sorting them (else tally and select).
  bool in_block_summary = false;
  if (resamples > 0) {
    if (auto const r = ws.replicates.resize(steps * resamples, stream); !r) return r.error();
    if (auto const r = ws.tallies.resize(steps, stream); !r) return r.error();
    if (auto const r = ws.order_statistics.resize(4 * steps, stream); !r) return r.error();
    replicate_args args{n,
                        arrays,
                        ws.stats.data(),
                        rule,
                        static_cast<std::uint32_t>(resamples),
                        options.seed,
                        ws.replicates.data(),
                        nullptr};
    if (auto const r = launch_replicates(args, steps, ws, stream); !r) return r.error();
    auto const count = static_cast<std::uint32_t>(resamples);
    double const c = options.threshold.value_or(0.0);
    // The percentile interval's levels are fixed: its order statistics need no round trip.
    selection const select{nullptr, ws.tallies.data(), ws.stats.data(), rule, alpha, 1.0 - alpha};
    auto const summarised = launch_in_block_summary(stream, count, s32, select, c, bca, ws);
    if (!summarised) return summarised.error();
    in_block_summary = *summarised;
    if (!in_block_summary) {
      tally_kernel<<<s32, 32, 0, stream>>>(ws.replicates.data(), count, ws.stats.data(), rule, c,
                                           ws.tallies.data());
      PROXYTASK_CUDA_TRY(cudaGetLastError());
    }
    if (bca) {
      if (auto const r = ws.jackknife.resize(total, stream); !r) return r.error();
      if (auto const r = ws.moments.resize(steps, stream); !r) return r.error();
      if (auto const r = launch_jackknife(stream, rows, steps, arrays, rule, ws); !r)
        return r.error();
      jackknife_moments_kernel<<<blocks_for(steps, 128), 128, 0, stream>>>(
          ws.jackknife.data(), n, s32, ws.stats.data(), rule, ws.moments.data());
      PROXYTASK_CUDA_TRY(cudaGetLastError());
    } else if (!in_block_summary) {
      select_kernel<block><<<s32, block, 0, stream>>>(ws.replicates.data(), count, select,
                                                      ws.order_statistics.data());
      PROXYTASK_CUDA_TRY(cudaGetLastError());
    }
  }

  if (permutations)
    if (auto const r = launch_permutations(stream, rows, steps, arrays, rule, options, ws); !r)
      return r.error();

  std::vector<step_stats> stats;
  std::vector<replicate_tally> tallies;
  std::vector<unsigned long long> permutation_tallies;
  std::vector<jackknife_moments> moments;
  std::vector<double> order;
  if (auto const r = download(stats, ws.stats, steps, stream); !r) return r.error();
  if (permutations)
    if (auto const r = download(permutation_tallies, ws.permutation_counts, 2 * steps, stream); !r)
      return r.error();
  if (resamples > 0) {
    if (auto const r = download(tallies, ws.tallies, steps, stream); !r) return r.error();
    if (bca) {
      if (auto const r = download(moments, ws.moments, steps, stream); !r) return r.error();
    } else {
      if (auto const r = download(order, ws.order_statistics, 4 * steps, stream); !r)
        return r.error();
    }
  }
  PROXYTASK_CUDA_TRY(cudaStreamSynchronize(stream));

  // The rows, with the CPU's own validity rule, p-values and interval levels.
  std::vector<std::array<double, 2>> levels(resamples > 0 ? steps : 0);
  std::vector<std::uint32_t> ranks(resamples > 0 ? 4 * steps : 0, no_rank);
  bool any_interval = false;
  for (std::size_t s = 0; s < steps; ++s) {
    step_row& row = table[s];
    step_stats const& st = stats[s];
    row.median_score = st.median;
    row.valid_pairs = st.valid;
    if (!enough_pairs(row, rows, options)) continue;
    if (kendall) {
      auto const r = kendall_result(st.kendall(), options.alternative);
      row.coefficient = r.coefficient;
      row.p_value = r.p_value;
      row.reason = r.reason;
    } else {
      row.coefficient = st.spearman().rho();
      if (std::isnan(row.coefficient)) {
        row.reason = nan_reason::constant_input;
      } else {
        row.reason = nan_reason::none;
        row.p_value = spearman_p_value(row.coefficient, st.valid, options.alternative);
      }
    }
    if (row.reason != nan_reason::none) continue;
    if (permutations) {
      permutation_counts k;
      k.exact = st.valid <= exact_permutation_pairs;
      k.count = k.exact ? factorial(st.valid) : options.permutations;
      k.at_least = permutation_tallies[2 * s];
      k.at_most = permutation_tallies[2 * s + 1];
      row.permutation = summarize_permutations(k, options.alternative);
    }
    if (resamples == 0) continue;
    replicate_tally const& t = tallies[s];
    replicate_counts k;
    k.defined = t.defined;
    k.undefined = t.undefined;
    k.below_hat = t.below_hat;
    k.at_or_below_hat = t.at_or_below_hat;
    k.at_or_below_zero = t.at_or_below_zero;
    k.at_or_below_c = t.at_or_below_c;
    k.sum = t.sum;
    k.squares = t.squares;
    row.bootstrap = summary_without_interval(k, options.threshold);
    if (k.defined == 0) continue;
    if (!bca) {  // the device selected the order statistics at the fixed levels
      row.bootstrap.low = bound(alpha, k.defined, order[4 * s], order[4 * s + 1]);
      row.bootstrap.high = bound(1.0 - alpha, k.defined, order[4 * s + 2], order[4 * s + 3]);
      continue;
    }
    auto const [q_low, q_high] = interval_levels(k, options.interval, options.confidence_level,
                                                 acceleration(moments[s], st.valid));
    levels[s] = {q_low, q_high};
    std::size_t i = 4 * s;
    for (double const q : {q_low, q_high}) {
      if (!std::isnan(q)) {
        quantile_position const at(q, k.defined);
        ranks[i] = static_cast<std::uint32_t>(at.rank);
        if (at.interpolate) ranks[i + 1] = static_cast<std::uint32_t>(at.rank + 1);
        any_interval = true;
      }
      i += 2;
    }
  }
  if (!any_interval) return table;

  // BCa: the order statistics at the levels the host computed (a second round trip).
  if (auto const r = ws.ranks.resize(4 * steps, stream); !r) return r.error();
  PROXYTASK_CUDA_TRY(cudaMemcpyAsync(ws.ranks.data(), ranks.data(), ranks.size() * sizeof(ranks[0]),
                                     cudaMemcpyHostToDevice, stream));
  if (in_block_summary) {  // the replicates are sorted per step
    gather_sorted_kernel<<<blocks_for(4 * steps, 256), 256, 0, stream>>>(
        ws.replicates.data(), static_cast<std::uint32_t>(resamples), ws.ranks.data(), s32,
        ws.order_statistics.data());
  } else {
    selection const select{ws.ranks.data()};
    select_kernel<block><<<s32, block, 0, stream>>>(ws.replicates.data(),
                                                    static_cast<std::uint32_t>(resamples), select,
                                                    ws.order_statistics.data());
  }
  PROXYTASK_CUDA_TRY(cudaGetLastError());
  if (auto const r = download(order, ws.order_statistics, 4 * steps, stream); !r) return r.error();
  PROXYTASK_CUDA_TRY(cudaStreamSynchronize(stream));
  for (std::size_t s = 0; s < steps; ++s) {
    step_row& row = table[s];
    if (ranks[4 * s] == no_rank && ranks[4 * s + 2] == no_rank) continue;
    std::size_t const defined = row.bootstrap.defined;
    row.bootstrap.low = bound(levels[s][0], defined, order[4 * s], order[4 * s + 1]);
    row.bootstrap.high = bound(levels[s][1], defined, order[4 * s + 2], order[4 * s + 3]);
  }
  return table;
}

/// Host data: staged to the device first (on the stream), then as device data.
template <class Real>
result<step_table> correlate_from_host(cudaStream_t stream, host_matrix_view<Real const> scores,
                                       std::span<Real const> reference,
                                       over_steps_options const& options) {
  if (scores.cols() == 0 || scores.rows() == 0) return step_table(scores.cols());
  auto const got = current_workspace();
  if (!got) return got.error();
  workspace& ws = **got;
  if (auto const r = ws.scores.resize(scores.size() * sizeof(Real), stream); !r) return r.error();
  if (auto const r = ws.reference.resize(reference.size() * sizeof(Real), stream); !r)
    return r.error();
  PROXYTASK_CUDA_TRY(cudaMemcpyAsync(ws.scores.data(), scores.data(), scores.size() * sizeof(Real),
                                     cudaMemcpyHostToDevice, stream));
  PROXYTASK_CUDA_TRY(cudaMemcpyAsync(ws.reference.data(), reference.data(),
                                     reference.size() * sizeof(Real), cudaMemcpyHostToDevice,
                                     stream));
  return correlate_on_device(stream, reinterpret_cast<Real const*>(ws.scores.data()), scores.rows(),
                             scores.cols(), reinterpret_cast<Real const*>(ws.reference.data()),
                             options);
}

/// At least this much work (steps x models x max(1, resamples + permutations)) goes to the GPU
/// under backend::auto_; below it one CPU thread answers sooner. Measured with
/// benchmarks/stats/over_steps_cuda_bench.cu: a GPU call costs at least 31 us on an H100
/// (20 steps x 16 models; 55 us at 20 x 64, 71 us at 50 x 256, 100 us at 10 x 10 x 100), one CPU
/// thread ranks about 70 million elements per second (2-core EPYC VM: 9, 19, 176 and 135 us at
/// those sizes), so the two meet near 4,000 elements.
inline constexpr std::size_t auto_min_work = std::size_t{1} << 12;

/// Whether a call is small enough for one CPU thread under backend::auto_ (its replicates,
/// bootstrap and permutation, count as work).
inline bool small_work(std::size_t rows, std::size_t steps, over_steps_options const& o) {
  return rows * steps * std::max<std::size_t>(1, o.bootstrap_resamples + o.permutations) <
         auto_min_work;
}

}  // namespace proxytask::stats::detail::gpu
