#pragma once
/// @file
/// "Nice" axis ticks: steps of 1, 2 or 5 times a power of ten (Heckbert, "Nice numbers for graph
/// labels", Graphics Gems, 1990).
///
/// Two forms:
/// - nice_ticks(data range): the axis grows to the enclosing multiples of the step ("loose"
///   labelling), so the first and last ticks are the axis ends: [0.13, 0.87] -> 0, 0.2, ..., 1;
/// - fixed_ticks(range): the axis is exactly the given range (a correlation in [-1, 1], a
///   percentage in [0, 100]) and the ticks are the step's multiples inside it.
///
/// Every tick value is the double nearest to its decimal (0.3, not 0.30000000000000004), so
/// format_number (svg.hpp) writes it as the short label a reader expects. Degenerate input never
/// fails: an empty or non-finite range gives [0, 1], a single value v gives v +- 10% (+-1 for 0,
/// and for |v| < 1e-280).

#include <proxytask/core/config.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace proxytask::report {

/// A closed interval of data values.
struct interval {
  double lo = 0.0;  ///< lower end
  double hi = 1.0;  ///< upper end
};

/// The ticks of one axis.
struct axis_ticks {
  double lo = 0.0;             ///< the axis' lower end
  double hi = 1.0;             ///< the axis' upper end (hi > lo, both finite)
  double step = 0.2;           ///< the spacing: 1, 2 or 5 times a power of ten
  std::vector<double> values;  ///< tick positions, increasing, all within [lo, hi]
};

/// Ticks for an axis that must show `data`, with about `target` ticks; the axis grows to the
/// enclosing multiples of the step. A non-finite end is ignored (both: [0, 1]); lo > hi is
/// swapped; ends are clamped to +-1e300 so that their difference cannot overflow.
/// @param[in] data   the data range to cover
/// @param[in] target the wanted number of ticks (clamped to [2, 50])
/// @returns ticks with values.front() == lo and values.back() == hi
axis_ticks nice_ticks(interval data, int target = 5);

/// Ticks for an axis fixed to `range`, with about `target` ticks at multiples of a nice step.
/// @pre range.lo and range.hi are finite and range.lo < range.hi
/// @throws proxytask::logic_error otherwise
axis_ticks fixed_ticks(interval range, int target = 5);

namespace detail {

constexpr double max_abs_end = 1e300;
constexpr double min_span = 1e-280;
constexpr int max_target = 50;

/// A nice step: mantissa (1, 2, 5 or 10) times 10^exponent.
struct nice_step {
  std::int64_t mantissa;
  int exponent;
  double value() const;
  /// k * mantissa * 10^exponent, as the double nearest to that decimal.
  double multiple(std::int64_t k) const;
};

/// Heckbert's nicenum: a nice number close to `x` (> 0): rounded when `round`, else at least `x`.
inline nice_step nice_number(double x, bool round) {
  auto exponent = static_cast<int>(std::floor(std::log10(x)));
  double const f = x / std::pow(10.0, exponent);
  std::int64_t m = 10;
  if (round) {
    m = f < 1.5 ? 1 : f < 3.0 ? 2 : f < 7.0 ? 5 : 10;
  } else {
    m = f <= 1.0 ? 1 : f <= 2.0 ? 2 : f <= 5.0 ? 5 : 10;
  }
  if (m == 10) {
    m = 1;
    ++exponent;
  }
  return {m, exponent};
}

inline double nice_step::multiple(std::int64_t k) const {
  // Parse the decimal "<k*m>e<exponent>": the nearest double, whatever the exponent.
  std::string text = std::to_string(k * mantissa) + "e" + std::to_string(exponent);
  double v = 0.0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v == 0.0 ? 0.0 : v;  // no -0
}

inline double nice_step::value() const { return multiple(1); }

/// The step for a span, as Heckbert: nice(span) / (target - 1), rounded to a nice number.
inline nice_step step_for(double span, int target) {
  auto const range = nice_number(span, false);
  return nice_number(range.value() / static_cast<double>(std::clamp(target, 2, max_target) - 1),
                     true);
}

}  // namespace detail

inline axis_ticks nice_ticks(interval data, int target) {
  double lo = data.lo;
  double hi = data.hi;
  if (!std::isfinite(lo) && !std::isfinite(hi)) {
    lo = 0.0;
    hi = 1.0;
  } else if (!std::isfinite(lo)) {
    lo = hi;
  } else if (!std::isfinite(hi)) {
    hi = lo;
  }
  if (lo > hi) std::swap(lo, hi);
  lo = std::clamp(lo, -detail::max_abs_end, detail::max_abs_end);
  hi = std::clamp(hi, -detail::max_abs_end, detail::max_abs_end);
  // A range narrower than ~12 significant digits is one value: its ticks would not be distinct.
  // Below 1e-280 the decimal steps would reach the subnormals: such a value counts as 0.
  double const magnitude = std::max(std::abs(lo), std::abs(hi));
  if (hi - lo <= 1e-12 * magnitude || hi - lo < detail::min_span) {
    double v = lo / 2 + hi / 2;
    if (std::abs(v) < detail::min_span) v = 0.0;
    double const half = v == 0.0 ? 1.0 : std::abs(v) * 0.1;
    lo = v - half;
    hi = v + half;
  }
  auto const step = detail::step_for(hi - lo, target);
  double const d = step.value();
  // lo / d is inexact (0.3 / 0.1 = 2.9999999999999996): round with a tolerance, then step out
  // until the exact tick values enclose the data.
  auto first = static_cast<std::int64_t>(std::floor(lo / d + 1e-9));
  auto last = static_cast<std::int64_t>(std::ceil(hi / d - 1e-9));
  for (int i = 0; i < 4 && step.multiple(first) > lo; ++i) --first;
  for (int i = 0; i < 4 && step.multiple(last) < hi; ++i) ++last;
  axis_ticks t;
  t.step = d;
  for (auto k = first; k <= last; ++k) t.values.push_back(step.multiple(k));
  t.lo = t.values.front();
  t.hi = t.values.back();
  return t;
}

inline axis_ticks fixed_ticks(interval range, int target) {
  PROXYTASK_EXPECTS(std::isfinite(range.lo) && std::isfinite(range.hi) && range.lo < range.hi,
                    "report: a fixed axis range needs finite ends with lo < hi");
  double const lo = std::clamp(range.lo, -detail::max_abs_end, detail::max_abs_end);
  double const hi = std::clamp(range.hi, -detail::max_abs_end, detail::max_abs_end);
  axis_ticks t;
  t.lo = range.lo;
  t.hi = range.hi;
  double const magnitude = std::max(std::abs(lo), std::abs(hi));
  if (hi - lo <= 1e-12 * magnitude || hi - lo < detail::min_span) {
    // Too narrow for distinct nice ticks: label the ends.
    t.step = hi - lo;
    t.values = {range.lo, range.hi};
    return t;
  }
  auto const step = detail::step_for(hi - lo, target);
  double const d = step.value();
  t.step = d;
  // The tolerance keeps an end that is a multiple (0.3 / 0.1 = 2.9999999999999996) as a tick.
  auto const first = static_cast<std::int64_t>(std::ceil(lo / d - 1e-9));
  auto const last = static_cast<std::int64_t>(std::floor(hi / d + 1e-9));
  for (auto k = first; k <= last; ++k) {
    double const v = step.multiple(k);
    if (v >= range.lo && v <= range.hi) t.values.push_back(v);
  }
  return t;
}

}  // namespace proxytask::report
