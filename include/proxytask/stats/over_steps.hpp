#pragma once
/// @file
/// The central batched call: rank correlation of proxy scores with reference (full-training)
/// scores at every step, in one pass. The back-end is chosen at the call site
/// (STYLE.md 2.3): here backend::cpu; <proxytask/stats/over_steps.cuh> adds the CUDA ones.

#include <proxytask/core/backend.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/correlation.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

namespace proxytask::stats {

/// What to compute at each step.
struct over_steps_options {
  correlation method = correlation::kendall_tau_b;  ///< the seed's choice (threshold 0.65)
  hypothesis alternative = hypothesis::two_sided;   ///< of p_value and the permutation p-value
  /// Validity rule of the reference tool: a step's correlation is computed only when at least
  /// `min_valid_pairs` pairs are valid and they are at least `min_valid_fraction` of the models.
  std::size_t min_valid_pairs = 5;
  double min_valid_fraction = 0.7;

  /// Bootstrap resamples per step (0: no bootstrap): each resamples the step's valid pairs with
  /// replacement; resample r of step s is drawn from Philox4x32-10 keyed by (seed, s, r).
  std::size_t bootstrap_resamples = 0;
  interval_method interval = interval_method::bca;  ///< scipy.stats.bootstrap's default
  double confidence_level = 0.95;
  /// A second bootstrap p-value, for H0 "coefficient <= threshold": how sure is it that the
  /// proxy reaches the bar (e.g. 0.65 for tau-b)?
  std::optional<double> threshold{};

  /// Permutations per step for a permutation p-value (0: none); all n! of them when the step has
  /// n <= 8 valid pairs (exact), else a Monte Carlo sample from the same generator.
  std::size_t permutations = 0;
  std::uint64_t seed = 0;  ///< of the bootstrap and the permutations
};

/// A permutation test of one step.
struct permutation_summary {
  double p_value = std::numeric_limits<double>::quiet_NaN();  ///< NaN without a test
  std::size_t permutations = 0;  ///< drawn (Monte Carlo) or enumerated (exact: n!)
  bool exact = false;
};

/// The statistics of one step.
struct step_row {
  double coefficient = std::numeric_limits<double>::quiet_NaN();  ///< rho or tau-b
  double p_value = std::numeric_limits<double>::quiet_NaN();      ///< NaN when the coefficient is
  std::size_t valid_pairs = 0;  ///< models with both a proxy score at this step and a reference
  /// upper median of the proxy scores present at this step (NaN when none is)
  double median_score = std::numeric_limits<double>::quiet_NaN();
  nan_reason reason = nan_reason::too_few_pairs;  ///< nan_reason::none when computed
  bootstrap_summary bootstrap;                    ///< when bootstrap_resamples > 0
  permutation_summary permutation;                ///< when permutations > 0
};

/// One row per step, in column order.
using step_table = std::vector<step_row>;

}  // namespace proxytask::stats

// The back-end implementations need the types above (cuco's declaration / detail split).
#include <proxytask/stats/detail/over_steps_cpu.hpp>

namespace proxytask::stats::detail {

/// The contract of every back-end's correlate_over_steps.
inline void expect_valid_arguments(std::size_t rows, std::size_t cols, std::size_t reference_size,
                                   over_steps_options const& options) {
  PROXYTASK_EXPECTS(reference_size == rows,
                    "correlate_over_steps: one reference score per model (row)");
  PROXYTASK_EXPECTS(options.min_valid_pairs >= 2, "correlate_over_steps: min_valid_pairs >= 2");
  PROXYTASK_EXPECTS(options.min_valid_fraction >= 0.0 && options.min_valid_fraction <= 1.0,
                    "correlate_over_steps: min_valid_fraction in [0, 1]");
  PROXYTASK_EXPECTS(options.confidence_level > 0.0 && options.confidence_level < 1.0,
                    "correlate_over_steps: confidence_level in (0, 1)");
  PROXYTASK_EXPECTS(rows < (std::size_t{1} << 20),
                    "correlate_over_steps: fewer than 2^20 models (exact int64 rank sums)");
  PROXYTASK_EXPECTS(options.bootstrap_resamples < (std::size_t{1} << 32) &&
                        options.permutations < (std::size_t{1} << 32) &&
                        cols < (std::size_t{1} << 32),
                    "correlate_over_steps: steps, resamples and permutations below 2^32 (the "
                    "Philox counter)");
}

}  // namespace proxytask::stats::detail

namespace proxytask::stats {

/// Rank correlation of every step's proxy scores with the reference scores, optionally with
/// bootstrap confidence intervals and p-values and permutation p-values. Each step is sorted
/// once; bootstrap and permutation replicates are ranked from that sort by counting, and every
/// coefficient comes from exact integer rank sums, so results are identical for every thread
/// count (and back-end).
/// @tparam Real     float or double
/// @param[in] scores    models x steps; NaN = missing (not yet reached, failed)
/// @param[in] reference one full-training score per model; NaN = missing (a std::vector converts)
/// @param[in] options   coefficient, alternative, validity rule
/// @returns one step_row per column of `scores`
/// @throws proxytask::logic_error when reference.size() != scores.rows() or options are invalid
template <class Real>
result<step_table> correlate_over_steps(backend::cpu_t policy, host_matrix_view<Real const> scores,
                                        std::type_identity_t<std::span<Real const>> reference,
                                        over_steps_options const& options = {}) {
  detail::expect_valid_arguments(scores.rows(), scores.cols(), reference.size(), options);
  return detail::correlate_over_steps_cpu(policy.threads, scores, reference, options);
}

/// Catch-all for back-ends that are not visible in this translation unit.
template <class Policy, class Real>
requires(!backend::is_visible_v<Policy>) result<step_table> correlate_over_steps(
    Policy const&, host_matrix_view<Real const>, std::span<Real const>,
    over_steps_options const& = {}) {
  static_assert(backend::detail::dependent_false_v<Policy>,
                "this back-end is not visible here: include <proxytask/stats/over_steps.cuh> and "
                "compile with nvcc");
  return step_table{};
}

}  // namespace proxytask::stats
