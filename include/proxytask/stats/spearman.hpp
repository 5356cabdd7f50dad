#pragma once
/// @file
/// Spearman's rank correlation with its p-value (scipy.stats.spearmanr, nan_policy='omit').

#include <proxytask/core/config.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/correlation_cpu.hpp>

#include <span>

namespace proxytask::stats {

/// Spearman's rho of x and y: the Pearson correlation of their average ranks, computed exactly
/// from integer rank sums. Pairs with a NaN on either side are left out.
/// @param[in] x, y        the paired samples
/// @param[in] alternative the alternative hypothesis of the p-value (Student's t, n - 2 dof)
/// @returns NaN with a reason for fewer than 2 pairs or a constant side; p is NaN for n = 2
/// @throws proxytask::logic_error when x and y differ in length
template <class Real>
correlation_result spearman(std::span<Real const> x, std::span<Real const> y,
                            hypothesis alternative = hypothesis::two_sided) {
  PROXYTASK_EXPECTS(x.size() == y.size(), "spearman: x and y must have the same length");
  PROXYTASK_EXPECTS(x.size() < (std::size_t{1} << 20),
                    "spearman: fewer than 2^20 pairs (exact int64 rank sums)");
  detail::correlation_workspace ws;
  return detail::correlate_pairs(correlation::spearman, x, y, alternative, ws);
}

}  // namespace proxytask::stats
