#pragma once
// The CPU implementation of one correlation: sort each side once (radix sort), build the step's
// integer ranks, and compute rho or tau-b and its p-value from them (rank_math.hpp).

#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/rank_math.hpp>
#include <proxytask/stats/detail/step_ranks_cpu.hpp>
#include <proxytask/stats/p_value.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace proxytask::stats::detail {

/// Reusable storage, so that a batched caller allocates once per thread.
struct correlation_workspace {
  sorted_column x_sorted, y_sorted;
  row_scratch rows;
  step_ranks ranks;
  replicate_scratch scratch;
};

/// tau-b and its p-value (scipy.stats.kendalltau): exact when there are no ties and
/// (n <= 33 or min(concordant, discordant) <= 1), else the normal approximation with the
/// tie-corrected variance.
inline correlation_result kendall_result(kendall_counts const& k, hypothesis alternative) {
  correlation_result r;
  r.n = static_cast<std::size_t>(k.n);
  r.coefficient = k.tau_b();
  if (std::isnan(r.coefficient)) {
    r.reason = nan_reason::constant_input;
    return r;
  }
  r.reason = nan_reason::none;
  if (k.x_ties == 0 && k.y_ties == 0) {
    std::int64_t const discordant = (k.total - k.score) / 2;
    if (k.n <= 33 || std::min(discordant, k.total - discordant) <= 1) {
      r.p_value = kendall_exact_p_value(k.n, k.total - discordant, alternative);
      return r;
    }
  }
  auto const n = static_cast<double>(k.n);
  double const m = n * (n - 1);
  double const var = (m * (2 * n + 5) - k.x_t5 - k.y_t5) / 18 +
                     2.0 * static_cast<double>(k.x_ties) * static_cast<double>(k.y_ties) / m +
                     k.x_t2 * k.y_t2 / (9 * m * (n - 2));
  r.p_value = normal_p_value(static_cast<double>(k.score) / std::sqrt(var), alternative);
  return r;
}

/// The coefficient of a step's pairs and its p-value.
inline correlation_result correlate_ranks(correlation method, step_ranks const& s,
                                          hypothesis alternative, replicate_scratch& w) {
  correlation_result r;
  r.n = s.n;
  if (s.n < 2) return r;  // too_few_pairs
  if (method == correlation::kendall_tau_b)
    return kendall_result(kendall_of(s, w.fenwick), alternative);
  auto const sums = spearman_of(s);
  r.coefficient = sums.rho();
  if (std::isnan(r.coefficient)) {
    r.reason = nan_reason::constant_input;
    return r;
  }
  r.reason = nan_reason::none;
  r.p_value = spearman_p_value(r.coefficient, r.n, alternative);
  return r;
}

/// The ranks of the pairs (x[i], y[i]) without a NaN, into ws.ranks.
template <class Real>
void rank_pairs(std::span<Real const> x, std::span<Real const> y, correlation_workspace& ws) {
  sort_column(x.data(), x.size(), 1, ws.x_sorted);
  sort_column(y.data(), y.size(), 1, ws.y_sorted);
  build_step_ranks(ws.x_sorted, ws.y_sorted, present_rows(ws.y_sorted, y.size()), ws.rows,
                   ws.ranks);
}

/// Pairwise deletion (a NaN on either side drops the pair), then the coefficient.
template <class Real>
correlation_result correlate_pairs(correlation method, std::span<Real const> x,
                                   std::span<Real const> y, hypothesis alternative,
                                   correlation_workspace& ws) {
  rank_pairs(x, y, ws);
  return correlate_ranks(method, ws.ranks, alternative, ws.scratch);
}

/// The O(n^2) definition of tau-b, for tests. NaN when a side is constant or n < 2.
template <class Real>
double kendall_tau_b_quadratic(std::span<Real const> x, std::span<Real const> y) {
  std::int64_t s = 0, x_ties = 0, y_ties = 0, total = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    for (std::size_t j = i + 1; j < x.size(); ++j) {
      int const dx = (x[i] > x[j]) - (x[i] < x[j]);
      int const dy = (y[i] > y[j]) - (y[i] < y[j]);
      s += dx * dy;
      x_ties += dx == 0;
      y_ties += dy == 0;
      ++total;
    }
  }
  if (total == 0 || x_ties == total || y_ties == total) return std::nan("");
  return static_cast<double>(s) /
         std::sqrt(static_cast<double>(total - x_ties) * static_cast<double>(total - y_ties));
}

}  // namespace proxytask::stats::detail
