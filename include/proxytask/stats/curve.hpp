#pragma once
/// @file
/// Training curves as a trial records them in TRIAL_TRAINING_METRICS.json (the points of
/// "training_accuracy_over_steps" and the "training_time" totals), their normalisation, and the
/// accuracy at a training-step percentage.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace proxytask::stats {

/// One evaluation of a trial; the field names are those of TRIAL_TRAINING_METRICS.json.
struct curve_point {
  double training_step_pct;    ///< 100 * (end_step + 1) / total_steps
  std::int64_t training_step;  ///< the 0-based step the training cycle ended at
  double accuracy;             ///< the accuracy there (NaN when the trainer recorded none)
};

/// What a trial's training has cost so far ("training_time" in TRIAL_TRAINING_METRICS.json).
struct training_time {
  std::int64_t total_training_steps;   ///< steps trained, all cycles together
  double total_training_time_in_secs;  ///< training time of those steps (validation excluded)
};

/// The curve ordered by training_step_pct, one point per pct. Points whose pct is NaN are dropped
/// (they have no position); among points with the same pct the LATEST in input order is kept
/// (a re-evaluation replaces the earlier one). This is proxytask's documented answer to
/// unsorted or duplicated points, for which the reference tool's results are undefined.
/// @param[in] curve the points in recording order
/// @returns the points sorted by strictly increasing training_step_pct
inline std::vector<curve_point> normalise_curve(std::span<curve_point const> curve) {
  std::vector<curve_point> sorted;
  sorted.reserve(curve.size());
  for (curve_point const& p : curve)
    if (!std::isnan(p.training_step_pct)) sorted.push_back(p);
  // A stable sort keeps the recording order among equal pcts, so the last of a run is the latest.
  std::stable_sort(sorted.begin(), sorted.end(), [](curve_point const& a, curve_point const& b) {
    return a.training_step_pct < b.training_step_pct;
  });
  std::vector<curve_point> out;
  out.reserve(sorted.size());
  for (curve_point const& p : sorted) {
    if (!out.empty() && out.back().training_step_pct == p.training_step_pct)
      out.back() = p;
    else
      out.push_back(p);
  }
  return out;
}

/// The accuracy at the highest recorded pct (the latest value there): the final accuracy of a
/// trial trained to completion.
/// @returns nullopt for a curve without points
inline std::optional<double> final_accuracy(std::span<curve_point const> curve) {
  auto const points = normalise_curve(curve);
  if (points.empty()) return std::nullopt;
  return points.back().accuracy;
}

/// The accuracy at `desired_pct`: linear interpolation over the origin (0, 0.0) followed by the
/// recorded points (a recorded point at pct 0 replaces the origin), after normalise_curve.
/// Below the first point the first value is returned, as numpy.interp does; a NaN accuracy
/// next to desired_pct gives NaN.
/// reference tool: proxy_task_utils.get_accuracy_at_step (np.interp over [0] + pcts, [0] + accs).
/// @param[in] curve       the recorded points, in any order
/// @param[in] desired_pct the training-step percentage asked for
/// @returns nullopt when the trial has not reached desired_pct (its highest recorded pct is
///          lower, or it has no point), or desired_pct is NaN
inline std::optional<double> accuracy_at_pct(std::span<curve_point const> curve,
                                             double desired_pct) {
  std::vector<curve_point> knots = normalise_curve(curve);
  if (knots.empty() || std::isnan(desired_pct) || knots.back().training_step_pct < desired_pct)
    return std::nullopt;
  auto const origin =
      std::lower_bound(knots.begin(), knots.end(), 0.0,
                       [](curve_point const& p, double pct) { return p.training_step_pct < pct; });
  if (origin == knots.end() || origin->training_step_pct != 0.0)
    knots.insert(origin, curve_point{0.0, 0, 0.0});

  // numpy.interp on strictly increasing knots, with its arithmetic: at or left of the first knot
  // its value; at a knot that knot's value; else slope * (x - x_j) + y_j.
  double const x = desired_pct;
  if (x <= knots.front().training_step_pct) return knots.front().accuracy;
  auto const right =
      std::upper_bound(knots.begin(), knots.end(), x,
                       [](double pct, curve_point const& p) { return pct < p.training_step_pct; });
  auto const j = static_cast<std::size_t>(right - knots.begin()) - 1;
  if (knots[j].training_step_pct == x || j + 1 == knots.size()) return knots[j].accuracy;
  double const slope = (knots[j + 1].accuracy - knots[j].accuracy) /
                       (knots[j + 1].training_step_pct - knots[j].training_step_pct);
  return slope * (x - knots[j].training_step_pct) + knots[j].accuracy;
}

}  // namespace proxytask::stats
