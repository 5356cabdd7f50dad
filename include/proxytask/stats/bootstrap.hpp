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
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
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

/// The sum of f(v) over the values, in two interleaved halves (even and odd indices) added at the
/// end: one running sum would wait for its previous addition at every value.
template <class F>
double sum(std::span<double const> values, F f) {
  double even = 0.0, odd = 0.0;
  std::size_t i = 0;
  for (; i + 1 < values.size(); i += 2) {
    even += f(values[i]);
    odd += f(values[i + 1]);
  }
  if (i < values.size()) even += f(values[i]);
  return even + odd;
}

/// A sample's quantiles without sorting it: the values are counted into buckets that split
/// [min, max] evenly (a monotone map, so bucket order is value order), and an order statistic is
/// selected among the values of its bucket only. Bootstrap replicates spread smoothly, so that is
/// a few dozen values instead of all of them.
class sample_quantiles {
 public:
  /// @param values the sample, no NaN; it must outlive this object
  explicit sample_quantiles(std::span<double const> values) : values_(values) {
    if (values.empty()) return;
    auto const [min, max] = range(values);
    double const spread = max - min;
    if (!(spread > 0 && spread < std::numeric_limits<double>::infinity()))
      return;  // all equal, or an infinite spread: no buckets, select among all values
    min_ = min;
    scale_ = buckets / spread;
    bucket_.resize(values.size());
    below_.assign(std::size_t{buckets} + 1, 0);
    for (std::size_t i = 0; i < values.size(); ++i) {
      // in [0, buckets] up to rounding, so a signed conversion (one instruction) will do
      auto const b = std::min(buckets - 1, static_cast<int>((values[i] - min_) * scale_));
      bucket_[i] = static_cast<std::uint16_t>(b);
      ++below_[static_cast<std::size_t>(b) + 1];
    }
    for (std::size_t b = 1; b < below_.size(); ++b) below_[b] += below_[b - 1];
  }

  /// The q-quantile (0 <= q <= 1) with linear interpolation between order statistics,
  /// numpy.percentile's default: position h = (n - 1) q of the sorted values. NaN for an empty
  /// sample or a NaN q.
  double operator()(double q) const {
    std::size_t const n = values_.size();
    if (n == 0 || std::isnan(q)) return std::numeric_limits<double>::quiet_NaN();
    double const h = static_cast<double>(n - 1) * std::clamp(q, 0.0, 1.0);
    auto const rank = static_cast<std::size_t>(std::floor(h));
    // The values in the buckets of order statistics `rank` and `rank + 1`.
    std::vector<double> candidates;
    std::size_t below_candidates = 0;
    if (scale_ == 0) {
      candidates.assign(values_.begin(), values_.end());
    } else {
      std::size_t const first = bucket_with(rank), last = bucket_with(std::min(rank + 1, n - 1));
      for (std::size_t i = 0; i < n; ++i)
        if (bucket_[i] >= first && bucket_[i] <= last) candidates.push_back(values_[i]);
      below_candidates = below_[first];
    }
    auto const at = candidates.begin() + static_cast<std::ptrdiff_t>(rank - below_candidates);
    std::nth_element(candidates.begin(), at, candidates.end());
    double const lower = *at;
    if (rank + 1 >= n || h <= static_cast<double>(rank)) return lower;
    double const upper = *std::min_element(at + 1, candidates.end());
    return lower + (h - static_cast<double>(rank)) * (upper - lower);
  }

 private:
  static constexpr int buckets = 4096;

  /// The smallest and largest value. Not inlined: inlined into the constructor, GCC 12 kept the
  /// running minimum in memory (a store and a load per value, 3x the cost).
  [[gnu::noinline]] static std::pair<double, double> range(
      std::span<double const> values) noexcept {
    double min = values[0], max = values[0];
    for (double const v : values) {
      min = std::min(min, v);
      max = std::max(max, v);
    }
    return {min, max};
  }

  /// The bucket that holds order statistic r.
  std::size_t bucket_with(std::size_t r) const {
    auto const above = std::upper_bound(below_.begin(), below_.end(), r);
    return static_cast<std::size_t>(above - below_.begin()) - 1;
  }

  std::span<double const> values_;
  double min_ = 0, scale_ = 0;         // scale_ 0: no buckets
  std::vector<std::uint16_t> bucket_;  // per value
  std::vector<std::uint32_t> below_;   // per bucket: the values in lower buckets
};

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
/// @param[in,out] replicates one value per resample, NaN where undefined (those are removed)
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
  // Counts in integers, and the sums over two interleaved halves: a single floating-point sum
  // waits for its previous addition at every value.
  std::size_t below_hat = 0, at_or_below_hat = 0, at_or_below_zero = 0, at_or_below_c = 0;
  double const c = threshold.value_or(0.0);
  for (double const v : replicates) {
    below_hat += v < theta_hat;
    at_or_below_hat += v <= theta_hat;
    at_or_below_zero += v <= 0.0;
    at_or_below_c += v <= c;
  }
  double const mean = detail::sum(replicates, [](double v) { return v; }) / b;
  double const squares =
      detail::sum(replicates, [mean](double v) { return (v - mean) * (v - mean); });
  if (out.defined > 1) out.standard_error = std::sqrt(squares / (b - 1));  // ddof = 1, as scipy
  out.p_above_zero = static_cast<double>(at_or_below_zero + 1) / (b + 1);
  if (threshold) out.p_above_threshold = static_cast<double>(at_or_below_c + 1) / (b + 1);

  double const alpha = (1.0 - confidence) / 2;
  double q_low = alpha, q_high = 1.0 - alpha;
  if (method == interval_method::bca) {
    // Efron's bias correction z0 (the replicates' percentile of theta_hat, ties counted half)
    // and acceleration a, then the adjusted quantiles (scipy.stats.bootstrap, method='BCa').
    boost::math::normal_distribution<double, detail::quiet_policy> const normal;
    double const share = static_cast<double>(below_hat + at_or_below_hat) / (2 * b);
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
  detail::sample_quantiles const quantile(replicates);
  out.low = quantile(q_low);
  out.high = quantile(q_high);
  return out;
}

}  // namespace proxytask::stats
