#pragma once
/// @file
/// p-values of rank correlations, by scipy's rules (DESIGN.md "Statistics"): Student's t for
/// Spearman, and for Kendall the exact null distribution or the tie-corrected normal
/// approximation. Distributions come from Boost.Math.

#include <proxytask/stats/correlation.hpp>

#include <boost/math/distributions/normal.hpp>
#include <boost/math/distributions/students_t.hpp>
#include <boost/math/policies/policy.hpp>
#include <boost/math/special_functions/factorials.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace proxytask::stats {

namespace detail {
// Out-of-range inputs give NaN (or the limit), never an exception: a p-value that cannot be
// computed is a statistic, not an error. Computed in double, not promoted to long double: the
// x87 arithmetic took a tenth of a plain step's time at 1,000 models, for digits beyond those
// scipy itself gets right.
using quiet_policy = boost::math::policies::policy<
    boost::math::policies::domain_error<boost::math::policies::ignore_error>,
    boost::math::policies::overflow_error<boost::math::policies::ignore_error>,
    boost::math::policies::evaluation_error<boost::math::policies::ignore_error>,
    boost::math::policies::promote_double<false>>;

/// sf (upper tail) or cdf of a distribution at x, for the three alternatives.
template <class Dist>
double tail_p_value(Dist const& dist, double x, hypothesis h) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  if (std::isnan(x)) return nan;
  auto sf = [&](double v) {
    if (std::isinf(v)) return v > 0 ? 0.0 : 1.0;
    return static_cast<double>(cdf(complement(dist, v)));
  };
  switch (h) {
    case hypothesis::two_sided: return 2.0 * sf(std::abs(x));
    case hypothesis::greater: return sf(x);
    case hypothesis::less: return sf(-x);  // both distributions are symmetric
  }
  return nan;
}
}  // namespace detail

/// p-value of a t statistic with `dof` degrees of freedom (scipy's _ttest_finish).
/// @returns NaN when dof <= 0 or t is NaN
inline double student_t_p_value(double t, double dof, hypothesis h) {
  if (!(dof > 0)) return std::numeric_limits<double>::quiet_NaN();
  return detail::tail_p_value(
      boost::math::students_t_distribution<double, detail::quiet_policy>(dof), t, h);
}

/// p-value of a standard-normal z statistic (scipy's _normtest_finish).
inline double normal_p_value(double z, hypothesis h) {
  return detail::tail_p_value(boost::math::normal_distribution<double, detail::quiet_policy>(), z,
                              h);
}

/// Spearman's p-value from Student's t with n - 2 degrees of freedom (scipy.stats.spearmanr):
/// t = rho * sqrt((n - 2) / ((rho + 1)(1 - rho))).
/// @returns NaN when n < 3 or rho is NaN
inline double spearman_p_value(double rho, std::size_t n, hypothesis h) {
  if (n < 3 || std::isnan(rho)) return std::numeric_limits<double>::quiet_NaN();
  double const dof = static_cast<double>(n - 2);
  double const inner = std::max(dof / ((rho + 1.0) * (1.0 - rho)), 0.0);  // inf when |rho| = 1
  double const t = rho == 0.0 ? 0.0 : rho * std::sqrt(inner);
  return student_t_p_value(t, dof, h);
}

/// Exact p-value of Kendall's tau for n untied pairs with `concordant` concordant pairs, from
/// the exact null distribution of the number of inversions (Kendall 1970, p. 68; scipy's
/// _kendall_p_exact, including its tail and one-sided rules).
/// @pre n >= 1, 0 <= concordant <= n(n-1)/2
inline double kendall_exact_p_value(std::int64_t n, std::int64_t concordant, hypothesis h) {
  std::int64_t const total = n * (n - 1) / 2;
  bool const in_right_tail = concordant >= total - concordant;
  std::int64_t const c = std::min(concordant, total - concordant);
  double prob = 0.0;
  double mass_at_c = 0.0;  // P(statistic == c), needed for the one-sided complement
  if (n == 1) {
    prob = 1.0;
    mass_at_c = 1.0;
  } else if (n == 2) {
    prob = 1.0;
    mass_at_c = 0.5;
  } else if (c == 0) {
    prob = n < 171 ? 2.0 / boost::math::factorial<double>(static_cast<unsigned>(n)) : 0.0;
    mass_at_c = prob / 2;
  } else if (c == 1) {
    prob = n < 172 ? 2.0 / boost::math::factorial<double>(static_cast<unsigned>(n - 1)) : 0.0;
    mass_at_c = n < 171 ? static_cast<double>(n - 1) /
                              boost::math::factorial<double>(static_cast<unsigned>(n))
                        : 0.0;
  } else if (4 * c == n * (n - 1) && h == hypothesis::two_sided) {
    prob = 1.0;
  } else {
    // counts[k] = number of permutations of j elements with k inversions, for k <= c, built up
    // for j = 3..n by a running sum (with the window of width j removed once j <= c).
    // For n >= 171, n! overflows: scale by 1/j at each step instead (scipy does the same).
    bool const scaled = n >= 171;
    std::vector<double> counts(static_cast<std::size_t>(c) + 1, 0.0), previous;
    counts[0] = counts[1] = 1.0;
    for (std::int64_t j = 3; j <= n; ++j) {
      for (std::size_t k = 1; k < counts.size(); ++k) counts[k] += counts[k - 1];
      if (scaled)
        for (double& v : counts) v /= static_cast<double>(j);
      if (j <= c) {
        previous = counts;
        for (std::size_t k = static_cast<std::size_t>(j); k < counts.size(); ++k)
          counts[k] -= previous[k - static_cast<std::size_t>(j)];
      }
    }
    double sum = 0.0;
    for (double v : counts) sum += v;
    if (scaled) {
      prob = sum;
      mass_at_c = counts.back() / 2;
    } else {
      double const factorial = boost::math::factorial<double>(static_cast<unsigned>(n));
      prob = 2.0 * sum / factorial;
      mass_at_c = counts.back() / factorial;
    }
  }
  if (h != hypothesis::two_sided) {
    // The one-sided p-value is half the two-sided one when the observed count lies in the tail
    // that the alternative predicts, otherwise its complement plus the mass at c.
    prob = in_right_tail == (h == hypothesis::greater) ? prob / 2 : 1.0 - prob / 2 + mass_at_c;
  }
  return std::clamp(prob, 0.0, 1.0);
}

}  // namespace proxytask::stats
