#pragma once
/// @file
/// The variance-measurement tool's two statistics: the coefficient of variation of repeated
/// trainings' final accuracies, and the smoothness of training curves, with their verdicts.

#include <proxytask/core/error.hpp>
#include <proxytask/stats/curve.hpp>

#include <cmath>
#include <cstddef>
#include <iterator>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::stats {

/// The variance is good when the coefficient of variation is at most this.
/// reference tool: MAX_VARIANCE_TO_BE_GOOD
inline constexpr double max_good_variance = 0.4;
/// The smoothness is good when it is at most this. reference tool: MAX_SMOOTHNESS_TO_BE_GOOD
inline constexpr double max_good_smoothness = 10.0;

/// Why a coefficient of variation is NaN.
enum class variance_reason {
  none,              ///< computed
  non_finite_value,  ///< a value is NaN or infinite (a failed or missing measurement)
  zero_mean,         ///< the mean is 0: no scale to compare the spread with
  negative_mean,     ///< the mean is negative: the ratio has no meaning for accuracies
};

/// A coefficient of variation: population std / mean.
struct variance_result {
  double value = std::numeric_limits<double>::quiet_NaN();  ///< NaN when reason != none
  variance_reason reason = variance_reason::none;
};

/// Why a smoothness is NaN.
enum class smoothness_reason {
  none,              ///< computed
  non_finite_value,  ///< an accuracy (or a curve's smoothness, for a mean) is NaN or infinite
};

/// The smoothness of one curve, or the mean over curves.
struct smoothness_result {
  double value = std::numeric_limits<double>::quiet_NaN();  ///< NaN when reason != none
  smoothness_reason reason = smoothness_reason::none;
};

/// The smoothness of several curves: their mean and each one's.
struct smoothness_over_curves {
  smoothness_result mean;                    ///< 0 for no curve (as the reference)
  std::vector<smoothness_result> per_curve;  ///< in input order
};

/// "" when computed; otherwise "non_finite_value", "zero_mean", "negative_mean"
constexpr std::string_view to_string(variance_reason r) noexcept {
  switch (r) {
    case variance_reason::none: return "";
    case variance_reason::non_finite_value: return "non_finite_value";
    case variance_reason::zero_mean: return "zero_mean";
    case variance_reason::negative_mean: return "negative_mean";
  }
  return "?";
}
/// "" when computed; otherwise "non_finite_value"
constexpr std::string_view to_string(smoothness_reason r) noexcept {
  return r == smoothness_reason::none ? "" : "non_finite_value";
}

/// True when the variance was computed and is at most max_good_variance (NaN is never good).
constexpr bool is_good(variance_result const& v) noexcept {
  return v.reason == variance_reason::none && v.value <= max_good_variance;
}
/// True when the smoothness was computed and is at most max_good_smoothness.
constexpr bool is_good(smoothness_result const& s) noexcept {
  return s.reason == smoothness_reason::none && s.value <= max_good_smoothness;
}

namespace detail {

/// numpy's pairwise summation (numpy/core/src/umath/loops_utils.h.src, pairwise_sum): below 8
/// values a plain loop; up to 128, 8 interleaved accumulators combined as
/// ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)) and then the remainder; above, the halves
/// (split at a multiple of 8) recursively. numpy.sum of one contiguous array of up to 8192
/// values (its buffer size) is exactly this; results that depend on the last bits (a mean near 0)
/// match numpy only through it.
inline double pairwise_sum(std::span<double const> a) {
  std::size_t const n = a.size();
  if (n < 8) {
    double res = 0.0;
    for (double v : a) res += v;
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (std::size_t j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (std::size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a.first(n2)) + pairwise_sum(a.subspan(n2));
}

/// numpy.mean: the pairwise sum divided by the count.
inline double numpy_mean(std::span<double const> a) {
  return pairwise_sum(a) / static_cast<double>(a.size());
}

// reference tool: SMOOTHNESS_SAMPLE_SECTIONS and SMOOTHNESS_POINTS_PER_SECTION
inline constexpr double smoothness_sections[] = {0.0, 0.7, 0.9, 1.0};
inline constexpr int smoothness_points_per_section = 10;

}  // namespace detail

/// Coefficient of variation of `values`: population standard deviation (ddof 0) / mean, summed
/// as numpy does (detail::pairwise_sum).
/// reference tool: proxy_task_variance_measurement_lib._calculate_variance (np.std(x) / np.mean(x))
/// @returns 0.0 for fewer than 2 values (as the reference: nothing to compare); NaN with
///          non_finite_value when a value is NaN or infinite; NaN with zero_mean or negative_mean
///          when the mean is not positive (the reference returns NaN, inf or a negative ratio
///          that its verdict calls good)
inline variance_result coefficient_of_variation(std::span<double const> values) {
  for (double v : values)
    if (!std::isfinite(v))
      return {std::numeric_limits<double>::quiet_NaN(), variance_reason::non_finite_value};
  if (values.size() < 2) return {0.0, variance_reason::none};
  double const mean = detail::numpy_mean(values);
  if (mean == 0.0) return {std::numeric_limits<double>::quiet_NaN(), variance_reason::zero_mean};
  if (mean < 0.0) return {std::numeric_limits<double>::quiet_NaN(), variance_reason::negative_mean};
  std::vector<double> squares(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    double const d = values[i] - mean;
    squares[i] = d * d;
  }
  return {std::sqrt(detail::numpy_mean(squares)) / mean, variance_reason::none};
}

/// Smoothness of one training curve, in float32 as the reference computes it: after
/// normalise_curve, min-max normalise pct and accuracy to [0, 1] in float32 (no epsilon), take
/// the linear interpolant, sample its slope at 10 evenly spaced points in each of [0, 0.7),
/// [0.7, 0.9), [0.9, 1.0) (at a knot the slope of the segment to its right), and return the
/// absolute value of the sum of the negative slopes. A constant curve has smoothness 0 by
/// definition (the reference reaches 0 only through NaN slopes).
/// reference tool: proxy_task_variance_measurement_lib._compute_smoothness_from_metrics
/// (scipy.interpolate.splrep(k=1, s=0) and splev(der=1) on numpy.arange samples).
/// @param[in] curve the recorded points, in any order
/// @returns NaN with non_finite_value when an accuracy (or a pct) is NaN or infinite; an error
///          (errc::invalid_argument) when the curve has fewer than 2 distinct pcts
inline result<smoothness_result> curve_smoothness(std::span<curve_point const> curve) {
  auto const points = normalise_curve(curve);
  if (points.size() < 2)
    return make_error(errc::invalid_argument,
                      "curve_smoothness: a curve needs at least 2 points with distinct "
                      "training_step_pct, got " +
                          std::to_string(points.size()));
  for (curve_point const& p : points)
    if (!std::isfinite(p.accuracy) || !std::isfinite(p.training_step_pct))
      return smoothness_result{std::numeric_limits<double>::quiet_NaN(),
                               smoothness_reason::non_finite_value};

  // float32 as numpy.array(..., np.float32); the pcts stay sorted (rounding is monotonic).
  float x_min = static_cast<float>(points.front().training_step_pct);
  float x_max = static_cast<float>(points.back().training_step_pct);
  float y_min = static_cast<float>(points.front().accuracy);
  float y_max = y_min;
  for (curve_point const& p : points) {
    y_min = std::min(y_min, static_cast<float>(p.accuracy));
    y_max = std::max(y_max, static_cast<float>(p.accuracy));
  }
  if (x_min == x_max)
    return make_error(errc::invalid_argument,
                      "curve_smoothness: the training_step_pct values are equal in float32");
  if (y_min == y_max) return smoothness_result{0.0, smoothness_reason::none};

  // The normalised knots. Distinct pcts can meet after float32 rounding: as in normalise_curve,
  // the later point replaces the earlier (the reference's spline fit would fail there).
  std::vector<float> xs, ys;
  for (curve_point const& p : points) {
    float const x = (static_cast<float>(p.training_step_pct) - x_min) / (x_max - x_min);
    float const y = (static_cast<float>(p.accuracy) - y_min) / (y_max - y_min);
    if (!xs.empty() && xs.back() == x) {
      ys.back() = y;
    } else {
      xs.push_back(x);
      ys.push_back(y);
    }
  }

  std::vector<double> negative_slopes;
  for (std::size_t s = 0; s + 1 < std::size(detail::smoothness_sections); ++s) {
    double const start = detail::smoothness_sections[s];
    double const end = detail::smoothness_sections[s + 1];
    // numpy.arange(start, end, step) fills start + i * ((start + step) - start); it has 10
    // values for each of the three sections.
    double const step = (end - start) / detail::smoothness_points_per_section;
    double const delta = (start + step) - start;
    for (int i = 0; i < detail::smoothness_points_per_section; ++i) {
      double const x = start + i * delta;
      // The segment [xs[j], xs[j + 1]) holding x; x < 1 = xs.back() always.
      std::size_t j = 0;
      while (j + 2 < xs.size() && static_cast<double>(xs[j + 1]) <= x) ++j;
      double const slope = (static_cast<double>(ys[j + 1]) - static_cast<double>(ys[j])) /
                           (static_cast<double>(xs[j + 1]) - static_cast<double>(xs[j]));
      if (slope < 0.0) negative_slopes.push_back(slope);
    }
  }
  return smoothness_result{std::abs(detail::pairwise_sum(negative_slopes)),
                           smoothness_reason::none};
}

/// The smoothness of each curve and their mean (numpy.mean of the per-curve values).
/// reference tool: _compute_smoothness_from_metrics_list (0.0 for no curve).
/// @returns the mean is NaN with non_finite_value when a curve's smoothness is; an error when a
///          curve has fewer than 2 distinct pcts (naming the curve)
inline result<smoothness_over_curves> smoothness(std::span<std::vector<curve_point> const> curves) {
  smoothness_over_curves out{smoothness_result{0.0, smoothness_reason::none}, {}};
  out.per_curve.reserve(curves.size());
  std::vector<double> values;
  values.reserve(curves.size());
  for (std::size_t c = 0; c < curves.size(); ++c) {
    auto one = curve_smoothness(curves[c]);
    if (!one)
      return make_error(one.error().code,
                        "curve " + std::to_string(c) + ": " + one.error().context);
    out.per_curve.push_back(*one);
    values.push_back(one->value);
    if (one->reason != smoothness_reason::none) out.mean.reason = one->reason;
  }
  if (out.mean.reason != smoothness_reason::none)
    out.mean.value = std::numeric_limits<double>::quiet_NaN();
  else if (!values.empty())
    out.mean.value = detail::numpy_mean(values);
  return out;
}

}  // namespace proxytask::stats
