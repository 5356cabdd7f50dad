#pragma once
/// @file
/// Kendall's tau-b with its p-value (scipy.stats.kendalltau, nan_policy='omit'), in O(n log n).

#include <proxytask/core/config.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/correlation_cpu.hpp>

#include <span>

namespace proxytask::stats {

/// Kendall's tau-b of x and y in O(n log n), after Knight: one sort of each side, then
/// concordant - discordant counted by a Fenwick tree over the y ranks while scanning the x
/// groups in order; all counts exact integers. Pairs with a NaN are left out.
/// p-value: exact when there are no ties and (n <= 33 or min(concordant, discordant) <= 1),
/// else the normal approximation with the tie-corrected variance (scipy's rule).
/// @returns NaN with a reason for fewer than 2 pairs or a constant side
/// @throws proxytask::logic_error when x and y differ in length
template <class Real>
correlation_result kendall_tau_b(std::span<Real const> x, std::span<Real const> y,
                                 hypothesis alternative = hypothesis::two_sided) {
  PROXYTASK_EXPECTS(x.size() == y.size(), "kendall_tau_b: x and y must have the same length");
  detail::correlation_workspace ws;
  return detail::correlate_pairs(correlation::kendall_tau_b, x, y, alternative, ws);
}

/// The O(n^2) definition of tau-b (test oracle and reference; use kendall_tau_b).
template <class Real>
double kendall_tau_b_quadratic(std::span<Real const> x, std::span<Real const> y) {
  PROXYTASK_EXPECTS(x.size() == y.size(), "kendall_tau_b_quadratic: same length");
  return detail::kendall_tau_b_quadratic(x, y);
}

}  // namespace proxytask::stats
