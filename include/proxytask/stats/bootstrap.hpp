#pragma once
/// @file
/// From bootstrap replicates to what a decision needs: a confidence interval (percentile or BCa,
/// as scipy.stats.bootstrap computes them), the standard error, and bootstrap p-values for
/// "the coefficient is at most c". Shared by every back-end: they produce the replicates, these
/// functions summarise them.

#include <proxytask/stats/p_value.hpp>

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace proxytask::stats {

/// How the bootstrap confidence interval is computed.
enum class interval_method {
  percentile,  ///< the alpha/2 and 1 - alpha/2 quantiles of the replicates
  bca,         ///< bias-corrected and accelerated (Efron 1987; scipy's default)
};

/// "percentile", "bca"
constexpr std::string_view to_string(interval_method m) noexcept {
  return m == interval_method::percentile ? "percentile" : "bca";
}
/// Parses "percentile" or "bca" (also "BCa").
constexpr std::optional<interval_method> parse_interval_method(std::string_view s) noexcept {
  if (s == "percentile") return interval_method::percentile;
  if (s == "bca" || s == "BCa") return interval_method::bca;
  return std::nullopt;
}

/// A summary of one step's bootstrap.
struct bootstrap_summary {
  double low = std::numeric_limits<double>::quiet_NaN();  ///< confidence interval
  double high = std::numeric_limits<double>::quiet_NaN();
  double standard_error = std::numeric_limits<double>::quiet_NaN();  ///< std of the replicates
  std::size_t defined = 0;    ///< replicates with a coefficient (used for everything above)
  std::size_t undefined = 0;  ///< replicates without one (a constant resample), left out
  /// Bootstrap p-value of H0 "coefficient <= 0": (#{replicates <= 0} + 1) / (defined + 1).
  double p_above_zero = std::numeric_limits<double>::quiet_NaN();
  /// The same for H0 "coefficient <= threshold" (NaN without a threshold).
  double p_above_threshold = std::numeric_limits<double>::quiet_NaN();
};

namespace detail {

/// The q-quantile (0 <= q <= 1) of values[first..] with linear interpolation between order
/// statistics, numpy.percentile's default: position (n - 1) q of all n values. Requires that
/// values[first..] are the largest n - first values (a previous call with a smaller q leaves
/// them so: both quantiles of an interval select from one array, the second from what is left).
/// Reorders `values`. O(n).
inline double quantile(std::vector<double>& values, double q, std::size_t first = 0) {
  if (values.empty() || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
  double const h = static_cast<double>(values.size() - 1) * std::clamp(q, 0.0, 1.0);
  auto const lo = std::max(static_cast<std::size_t>(std::floor(h)), first);
  auto const at = [&](std::size_t i) { return values.begin() + static_cast<std::ptrdiff_t>(i); };
  std::nth_element(at(first), at(lo), values.end());
  double const below = values[lo];
  if (lo + 1 >= values.size() || h <= static_cast<double>(lo)) return below;
  double const above = *std::min_element(at(lo + 1), values.end());
  return below + (h - static_cast<double>(lo)) * (above - below);
}

/// The acceleration of BCa from jackknife values (scipy's _bca_interval): with
/// U_i = (n - 1)(mean - theta_i), a = sum U^3 / n^3 / (6 (sum U^2 / n^2)^(3/2)).
inline double acceleration(std::span<double const> jackknife) {
  auto const n = static_cast<double>(jackknife.size());
  // The mean as the first value plus the mean offset: exact when all values are equal, so that
  // a degenerate jackknife gives 0 / 0 = NaN (as scipy's does) and not rounding noise.
  double offset = 0.0;
  for (double t : jackknife) offset += t - jackknife[0];
  double const mean = jackknife[0] + offset / n;
  double u2 = 0.0, u3 = 0.0;
  for (double t : jackknife) {
    double const u = (n - 1) * (mean - t);
    u2 += u * u;
    u3 += u * u * u;
  }
  return u3 / (n * n * n) / (6.0 * std::pow(u2 / (n * n), 1.5));
}

}  // namespace detail

/// Summarises the replicates of one statistic.
/// @param[in,out] replicates one value per resample, NaN where undefined (reordered)
/// @param[in] theta_hat  the statistic on the original sample
/// @param[in] jackknife  the statistic without each observation (needed for BCa only)
/// @param[in] method     percentile or BCa
/// @param[in] confidence the confidence level, in (0, 1)
/// @param[in] threshold  c for the second bootstrap p-value
inline bootstrap_summary summarize_bootstrap(std::vector<double>& replicates, double theta_hat,
                                             std::span<double const> jackknife,
                                             interval_method method, double confidence,
                                             std::optional<double> threshold) {
  bootstrap_summary out;
  auto const defined_end =
      std::remove_if(replicates.begin(), replicates.end(), [](double v) { return std::isnan(v); });
  out.undefined = static_cast<std::size_t>(replicates.end() - defined_end);
  replicates.erase(defined_end, replicates.end());
  out.defined = replicates.size();
  if (replicates.empty()) return out;

  auto const b = static_cast<double>(out.defined);
  double sum = 0.0, below_hat = 0.0, at_or_below_hat = 0.0, at_or_below_zero = 0.0,
         at_or_below_c = 0.0;
  for (double v : replicates) {
    sum += v;
    below_hat += v < theta_hat;
    at_or_below_hat += v <= theta_hat;
    at_or_below_zero += v <= 0.0;
    if (threshold) at_or_below_c += v <= *threshold;
  }
  double const mean = sum / b;
  double squares = 0.0;
  for (double v : replicates) squares += (v - mean) * (v - mean);
  if (out.defined > 1) out.standard_error = std::sqrt(squares / (b - 1));  // ddof = 1, as scipy
  out.p_above_zero = (at_or_below_zero + 1) / (b + 1);
  if (threshold) out.p_above_threshold = (at_or_below_c + 1) / (b + 1);

  double const alpha = (1.0 - confidence) / 2;
  double q_low = alpha, q_high = 1.0 - alpha;
  if (method == interval_method::bca) {
    // Efron's bias correction z0 (the replicates' percentile of theta_hat, ties counted half)
    // and acceleration a, then the adjusted quantiles (scipy.stats.bootstrap, method='BCa').
    boost::math::normal_distribution<double, detail::quiet_policy> const normal;
    double const share = (below_hat + at_or_below_hat) / (2 * b);
    double const z0 = share <= 0.0   ? -std::numeric_limits<double>::infinity()
                      : share >= 1.0 ? std::numeric_limits<double>::infinity()
                                     : quantile(normal, share);
    double const a = jackknife.empty() ? std::numeric_limits<double>::quiet_NaN()
                                       : detail::acceleration(jackknife);
    auto adjusted = [&](double q) {
      double const z = quantile(normal, q);
      double const num = z0 + z;
      double const arg = z0 + num / (1 - a * num);
      return std::isnan(arg) ? std::numeric_limits<double>::quiet_NaN() : cdf(normal, arg);
    };
    q_low = adjusted(alpha);
    q_high = adjusted(1.0 - alpha);
  }
  out.low = detail::quantile(replicates, q_low);
  // The high quantile selects among the values above the low one, when it lies above it.
  std::size_t const above_low =
      std::isnan(q_low) || std::isnan(q_high) || q_high < q_low
          ? 0
          : static_cast<std::size_t>(
                std::floor(static_cast<double>(out.defined - 1) * std::clamp(q_low, 0.0, 1.0)));
  out.high = detail::quantile(replicates, q_high, above_low);
  return out;
}

}  // namespace proxytask::stats
