#pragma once
/// @file
/// The central batched call: rank correlation of proxy scores with reference (full-training)
/// scores at every step, in one pass. The back-end is chosen at the call site
/// (STYLE.md 2.3): here backend::cpu; <proxytask/stats/over_steps.cuh> adds the CUDA ones.

#include <proxytask/core/backend.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/correlation.hpp>

#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

namespace proxytask::stats {

/// What to compute at each step.
struct over_steps_options {
  correlation method = correlation::kendall_tau_b;  ///< the seed's choice (threshold 0.65)
  hypothesis alternative = hypothesis::two_sided;
  /// Validity rule of the reference tool: a step's correlation is computed only when at least
  /// `min_valid_pairs` pairs are valid and they are at least `min_valid_fraction` of the models.
  std::size_t min_valid_pairs = 5;
  double min_valid_fraction = 0.7;
};

/// The statistics of one step.
struct step_row {
  double coefficient;       ///< rho or tau-b; NaN when undefined (see reason)
  double p_value;           ///< NaN when the coefficient is
  std::size_t valid_pairs;  ///< models with both a proxy score at this step and a reference
  double median_score;      ///< upper median of the proxy scores present at this step (or NaN)
  nan_reason reason;        ///< nan_reason::none when computed
};

/// One row per step, in column order.
using step_table = std::vector<step_row>;

}  // namespace proxytask::stats

// The back-end implementations need the types above (cuco's declaration / detail split).
#include <proxytask/stats/detail/over_steps_cpu.hpp>

namespace proxytask::stats {

/// Rank correlation of every step's proxy scores with the reference scores.
/// @tparam Real     float or double
/// @param[in] scores    models x steps; NaN = missing (not yet reached, failed)
/// @param[in] reference one full-training score per model; NaN = missing (a std::vector converts)
/// @param[in] options   coefficient, alternative, validity rule
/// @returns one step_row per column of `scores`
/// @throws proxytask::logic_error when reference.size() != scores.rows() or options are invalid
template <class Real>
result<step_table> correlate_over_steps(backend::cpu_t, host_matrix_view<Real const> scores,
                                        std::type_identity_t<std::span<Real const>> reference,
                                        over_steps_options const& options = {}) {
  PROXYTASK_EXPECTS(reference.size() == scores.rows(),
                    "correlate_over_steps: one reference score per model (row)");
  PROXYTASK_EXPECTS(options.min_valid_pairs >= 2, "correlate_over_steps: min_valid_pairs >= 2");
  PROXYTASK_EXPECTS(options.min_valid_fraction >= 0.0 && options.min_valid_fraction <= 1.0,
                    "correlate_over_steps: min_valid_fraction in [0, 1]");
  return detail::correlate_over_steps_cpu(scores, reference, options);
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
