#pragma once
/// @file
/// From bootstrap replicates to what a decision needs: a confidence interval (percentile or BCa,
/// as scipy.stats.bootstrap computes them), the standard error, and bootstrap p-values for
/// "the coefficient is at most c". Shared by every back-end: they produce the replicates, these
/// functions summarise them.

#include <proxytask/core/config.hpp>
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

/// a * b and a + b, each rounded once, never fused into an fma: nvcc fuses a * b + c by default,
/// which would make the GPU's sums differ from the CPU's in their last bits. (Host compilers do
/// not fuse on x86-64 without -mfma; build with -ffp-contract=off where they might.)
PROXYTASK_HD inline double mul_rn(double a, double b) noexcept {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
PROXYTASK_HD inline double add_rn(double a, double b) noexcept {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

/// Floating-point sums over replicates go through this many lanes: lane l adds the values at
/// l, l + lanes, l + 2 lanes, ... in order, then lane l + s is added into lane l for
/// s = lanes / 2, ..., 2, 1. One order for every back-end: a warp of 32 GPU threads computes it
/// as one lane per thread, the CPU as 32 independent accumulators (no add waits for the previous
/// one), so both give the same bits.
inline constexpr int sum_lanes = 32;

/// The lanes' sum of f(v) over the values that are not NaN (NaNs add nothing, not even a zero:
/// -0.0 + 0.0 would change a sign).
template <class F>
double lane_sum(std::span<double const> values, F f) {
  double lane[sum_lanes] = {};
  std::size_t i = 0;
  for (; i + sum_lanes <= values.size(); i += sum_lanes)
    for (int l = 0; l < sum_lanes; ++l) {
      double const v = values[i + static_cast<std::size_t>(l)];
      lane[l] = v == v ? add_rn(lane[l], f(v)) : lane[l];
    }
  for (int l = 0; i < values.size(); ++i, ++l)
    if (double const v = values[i]; v == v) lane[l] = add_rn(lane[l], f(v));
  for (int s = sum_lanes / 2; s > 0; s /= 2)
    for (int l = 0; l < s; ++l) lane[l] = add_rn(lane[l], lane[l + s]);
  return lane[0];
}

/// The squared deviation of v from the mean (for the standard error).
PROXYTASK_HD inline double squared_deviation(double v, double mean) noexcept {
  return mul_rn(v - mean, v - mean);
}

/// What the interval and the p-values need from one step's replicates: counts (exact integers,
/// in any order) and two lane sums.
struct replicate_counts {
  std::size_t defined = 0, undefined = 0;
  std::size_t below_hat = 0, at_or_below_hat = 0;  ///< against the original coefficient
  std::size_t at_or_below_zero = 0, at_or_below_c = 0;
  double sum = 0.0;      ///< lane_sum of the defined replicates
  double squares = 0.0;  ///< lane_sum of their squared deviations from sum / defined
};

/// The counts and sums of replicates (NaN: undefined) against theta_hat and c.
inline replicate_counts count_replicates(std::span<double const> replicates, double theta_hat,
                                         double c) {
  replicate_counts k;
  for (double const v : replicates) {
    if (v != v) {
      ++k.undefined;
      continue;
    }
    ++k.defined;
    k.below_hat += v < theta_hat;
    k.at_or_below_hat += v <= theta_hat;
    k.at_or_below_zero += v <= 0.0;
    k.at_or_below_c += v <= c;
  }
  if (k.defined == 0) return k;
  k.sum = lane_sum(replicates, [](double v) { return v; });
  double const mean = k.sum / static_cast<double>(k.defined);
  k.squares = lane_sum(replicates, [mean](double v) { return squared_deviation(v, mean); });
  return k;
}

/// The position of the q-quantile among n sorted values (numpy.percentile's linear rule):
/// h = (n - 1) q, between order statistics `rank` = floor(h) and rank + 1.
struct quantile_position {
  double h = 0.0;
  std::size_t rank = 0;
  bool interpolate = false;  ///< whether order statistic rank + 1 is needed

  quantile_position(double q, std::size_t n) {
    if (n == 0 || std::isnan(q)) return;
    h = static_cast<double>(n - 1) * std::clamp(q, 0.0, 1.0);
    rank = static_cast<std::size_t>(std::floor(h));
    interpolate = rank + 1 < n && h > static_cast<double>(rank);
  }
  /// The quantile from order statistics `rank` (lower) and `rank + 1` (upper; unused unless
  /// interpolate).
  double value(double lower, double upper) const {
    if (!interpolate) return lower;
    return lower + (h - static_cast<double>(rank)) * (upper - lower);
  }
};

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
    quantile_position const at_q(q, n);
    std::size_t const rank = at_q.rank;
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
    if (!at_q.interpolate) return lower;
    return at_q.value(lower, *std::min_element(at + 1, candidates.end()));
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

/// The sums BCa's acceleration needs from jackknife values theta_i: with U_i = (n - 1)(mean -
/// theta_i), sum U^2 and sum U^3, added in index order (each product rounded on its own, so the
/// GPU, which runs this same function in one thread per step, gets the same bits).
struct jackknife_moments {
  double u2 = 0.0, u3 = 0.0;
};
PROXYTASK_HD inline jackknife_moments moments_of_jackknife(double const* jackknife,
                                                           std::size_t count) noexcept {
  auto const n = static_cast<double>(count);
  // The mean as the first value plus the mean offset: exact when all values are equal, so that
  // a degenerate jackknife gives 0 / 0 = NaN (as scipy's does) and not rounding noise.
  double offset = 0.0;
  for (std::size_t i = 0; i < count; ++i) offset = add_rn(offset, jackknife[i] - jackknife[0]);
  double const mean = jackknife[0] + offset / n;
  jackknife_moments m;
  for (std::size_t i = 0; i < count; ++i) {
    double const u = mul_rn(n - 1, mean - jackknife[i]);
    double const u_squared = mul_rn(u, u);
    m.u2 = add_rn(m.u2, u_squared);
    m.u3 = add_rn(m.u3, mul_rn(u_squared, u));
  }
  return m;
}

/// The acceleration of BCa (scipy's _bca_interval): a = sum U^3 / n^3 / (6 (sum U^2 / n^2)^(3/2)).
inline double acceleration(jackknife_moments m, std::size_t count) {
  auto const n = static_cast<double>(count);
  return m.u3 / (n * n * n) / (6.0 * std::pow(m.u2 / (n * n), 1.5));
}
inline double acceleration(std::span<double const> jackknife) {
  return acceleration(moments_of_jackknife(jackknife.data(), jackknife.size()), jackknife.size());
}

/// The quantile levels of the interval: alpha/2 and 1 - alpha/2, adjusted for BCa with Efron's
/// bias correction z0 (the replicates' percentile of theta_hat, ties counted half) and the
/// acceleration a (scipy.stats.bootstrap, method='BCa').
inline std::pair<double, double> interval_levels(replicate_counts const& k, interval_method method,
                                                 double confidence, double acceleration) {
  double const alpha = (1.0 - confidence) / 2;
  if (method == interval_method::percentile) return {alpha, 1.0 - alpha};
  boost::math::normal_distribution<double, quiet_policy> const normal;
  double const share =
      static_cast<double>(k.below_hat + k.at_or_below_hat) / (2 * static_cast<double>(k.defined));
  double const z0 = share <= 0.0   ? -std::numeric_limits<double>::infinity()
                    : share >= 1.0 ? std::numeric_limits<double>::infinity()
                                   : quantile(normal, share);
  auto adjusted = [&](double q) {
    double const z = quantile(normal, q);
    double const num = z0 + z;
    double const arg = z0 + num / (1 - acceleration * num);
    return std::isnan(arg) ? std::numeric_limits<double>::quiet_NaN() : cdf(normal, arg);
  };
  return {adjusted(alpha), adjusted(1.0 - alpha)};
}

/// The summary of a step's bootstrap but for its interval bounds: the standard error and the
/// p-values, from the counts.
inline bootstrap_summary summary_without_interval(replicate_counts const& k,
                                                  std::optional<double> threshold) {
  bootstrap_summary out;
  out.defined = k.defined;
  out.undefined = k.undefined;
  if (k.defined == 0) return out;
  auto const b = static_cast<double>(k.defined);
  if (k.defined > 1) out.standard_error = std::sqrt(k.squares / (b - 1));  // ddof = 1, as scipy
  out.p_above_zero = static_cast<double>(k.at_or_below_zero + 1) / (b + 1);
  if (threshold) out.p_above_threshold = static_cast<double>(k.at_or_below_c + 1) / (b + 1);
  return out;
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
  auto const counts = detail::count_replicates(replicates, theta_hat, threshold.value_or(0.0));
  bootstrap_summary out = detail::summary_without_interval(counts, threshold);
  if (counts.defined == 0) return out;
  double const a = method == interval_method::percentile || jackknife.empty()
                       ? std::numeric_limits<double>::quiet_NaN()
                       : detail::acceleration(jackknife);
  auto const [q_low, q_high] = detail::interval_levels(counts, method, confidence, a);
  replicates.erase(
      std::remove_if(replicates.begin(), replicates.end(), [](double v) { return std::isnan(v); }),
      replicates.end());
  detail::sample_quantiles const quantile(replicates);
  out.low = quantile(q_low);
  out.high = quantile(q_high);
  return out;
}

}  // namespace proxytask::stats
