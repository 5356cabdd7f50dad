#pragma once
/// @file
/// The CUDA overloads of correlate_over_steps (stats/over_steps.hpp): backend::cuda on host or
/// device data, and backend::auto_. Same options, same result type and the same numbers as
/// backend::cpu, bit for bit: the device computes the same exact integer rank sums, the same
/// Philox resamples (keyed by seed, step, resample) and the same ordered floating-point sums, and
/// the host finishes each row with the CPU back-end's own functions.
///
/// What runs where: each step is sorted once on the device (CUB), its valid pairs ranked there
/// (tie groups by counting against the sort), and the coefficients, bootstrap replicates,
/// BCa jackknife, replicate counts and interval order statistics are computed there. The host
/// computes p-values and the interval's quantile levels (Boost.Math's normal quantiles).
/// Permutation tests run on the device with the CPU's pairings (all n! up to 8 pairs, else the
/// same Philox shuffles): one thread per pairing up to 32 models, one block per pairing above.
/// Kendall's concordance score is O(n log n) work per step, per replicate and per pairing on the
/// device (merge sorts, split by merge path).

#include <proxytask/core/backend.cuh>
#include <proxytask/core/matrix_view.cuh>
#include <proxytask/stats/over_steps.hpp>

// After the declarations of over_steps.hpp (cuco's declaration / detail split).
#include <proxytask/stats/detail/over_steps_cuda.inl>

#include <span>
#include <type_traits>

namespace proxytask::stats {

/// correlate_over_steps on the GPU, from host data (staged to the device on the policy's stream).
/// @returns the step rows; errc::device_unavailable without a device or driver,
///          errc::resource_exhausted when the device is out of memory, errc::cuda_failure else
/// @throws proxytask::logic_error on the CPU overload's contract violations
template <class Real>
result<step_table> correlate_over_steps(backend::cuda_t policy, host_matrix_view<Real const> scores,
                                        std::type_identity_t<std::span<Real const>> reference,
                                        over_steps_options const& options = {}) {
  detail::expect_valid_arguments(scores.rows(), scores.cols(), reference.size(), options);
  return detail::gpu::correlate_from_host(policy.stream, scores, reference, options);
}

/// correlate_over_steps on the GPU, from device data (models x steps, row-major; one reference
/// score per model). Blocks until the rows are on the host.
template <class Real>
result<step_table> correlate_over_steps(backend::cuda_t policy,
                                        device_matrix_view<Real const> scores,
                                        std::type_identity_t<device_span<Real const>> reference,
                                        over_steps_options const& options = {}) {
  detail::expect_valid_arguments(scores.rows(), scores.cols(), reference.size(), options);
  return detail::gpu::correlate_on_device(policy.stream, scores.data(), scores.rows(),
                                          scores.cols(), reference.data(), options);
}

/// correlate_over_steps on the GPU when there is one and the work is large enough to gain from it
/// (detail::gpu::auto_min_work, measured); else on one CPU thread for small work (a thread pool
/// costs more than it saves there), or on every CPU thread when there is no device or the device
/// has no memory for it.
template <class Real>
result<step_table> correlate_over_steps(backend::auto_t, host_matrix_view<Real const> scores,
                                        std::type_identity_t<std::span<Real const>> reference,
                                        over_steps_options const& options = {}) {
  if (detail::gpu::small_work(scores.rows(), scores.cols(), options))
    return correlate_over_steps(backend::cpu, scores, reference, options);
  if (backend::cuda_device_count()) {
    auto on_gpu = correlate_over_steps(backend::cuda, scores, reference, options);
    if (on_gpu || (on_gpu.error().code != errc::device_unavailable &&
                   on_gpu.error().code != errc::resource_exhausted))
      return on_gpu;
  }
  return correlate_over_steps(backend::cpu.with_threads(0), scores, reference, options);
}

}  // namespace proxytask::stats
