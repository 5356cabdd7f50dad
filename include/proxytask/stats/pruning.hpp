#pragma once
/// @file
/// Model selection's distribution-preserving pruning: which trials to drop so that the remaining
/// ones still cover the (accuracy, latency) distribution.

#include <proxytask/stats/curve.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace proxytask::stats {

/// A trial's scores for pruning.
struct trial_scores {
  double accuracy;  ///< NaN when missing (no metrics, the pct not reached, a failed trial)
  double latency;   ///< NaN when missing; ignored without latency
};

/// The outcome of prune_trials, as indices into its input.
struct pruning_result {
  std::vector<std::size_t> removed;  ///< in removal order
  std::vector<std::size_t> kept;     ///< the valid trials not removed, in input order
  std::vector<std::size_t> invalid;  ///< trials without valid scores, in input order
};

/// The fewest valid trials pruning keeps. reference tool: MIN_NUM_FILTERED_TRIALS
inline constexpr std::size_t min_trials_after_pruning = 2;

/// How many valid trials pruning removes when `requested` removals are asked for: invalid trials
/// count towards the request, and at least min_trials_after_pruning valid trials stay.
/// reference tool: filter_trials_based_on_scores
/// (max(0, remove - invalid), then max(min(that, valid - 2), 0)).
constexpr std::size_t pruning_removals(std::size_t requested, std::size_t num_valid,
                                       std::size_t num_invalid) noexcept {
  std::size_t const after_invalid = requested > num_invalid ? requested - num_invalid : 0;
  std::size_t const removable =
      num_valid > min_trials_after_pruning ? num_valid - min_trials_after_pruning : 0;
  return std::min(after_invalid, removable);
}

/// The accuracy a trial is pruned on: its accuracy at `desired_pct` (accuracy_at_pct), NaN when
/// it has not reached that pct.
inline double pruning_accuracy(std::span<curve_point const> curve, double desired_pct) {
  return accuracy_at_pct(curve, desired_pct).value_or(std::numeric_limits<double>::quiet_NaN());
}

namespace detail {

struct normalised_point {
  double accuracy;
  double latency;
};

// reference tool: normalize_trial_scores: (v - min) / (max - min + float32 eps), once, before
// any removal; a constant column becomes all 0.
inline void min_max_normalise(std::vector<normalised_point>& points,
                              double normalised_point::*column) {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  for (auto const& p : points) {
    lo = std::min(lo, p.*column);
    hi = std::max(hi, p.*column);
  }
  double const float32_eps = 0x1p-23;  // np.finfo(np.float32).eps, added in double
  for (auto& p : points) p.*column = (p.*column - lo) / (hi - lo + float32_eps);
}

// Distance as the reference computes it (np.linalg.norm of a 2-vector): sqrt(dx*dx + dy*dy),
// not hypot, so that exact ties are ties here too. (A build that contracts this into an FMA,
// e.g. -march=native with -ffp-contract=fast, may break such ties differently.)
inline double distance(normalised_point const& a, normalised_point const& b) {
  double const dx = a.accuracy - b.accuracy;
  double const dy = a.latency - b.latency;
  return std::sqrt(dx * dx + dy * dy);
}

// reference tool: find_trial_to_remove. Of the closest pair (i1 = the lowest index with the
// smallest nearest distance, i2 = its nearest neighbour), drop i1 when its second-nearest
// distance is strictly smaller than i2's, else i2. Strict < everywhere: the lowest index wins
// ties. Needs at least 3 points.
inline std::size_t point_to_remove(std::vector<normalised_point> const& points) {
  std::size_t const n = points.size();
  constexpr double inf = std::numeric_limits<double>::infinity();
  std::vector<double> first(n, inf), second(n, inf);
  std::vector<std::size_t> nearest(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double const d = distance(points[i], points[j]);
      if (d < first[i]) {
        second[i] = first[i];
        first[i] = d;
        nearest[i] = j;
      } else if (d < second[i]) {
        second[i] = d;
      }
    }
  }
  std::size_t i1 = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (first[i] < first[i1]) i1 = i;
  std::size_t const i2 = nearest[i1];
  return second[i1] < second[i2] ? i1 : i2;
}

}  // namespace detail

/// Picks the trials to drop so that the rest keeps the score distribution, exactly as the
/// reference tool does: accuracy and latency are min-max normalised once; then, removal by
/// removal, of the two closest points the one whose second-nearest neighbour is closer goes.
/// A trial is invalid when its accuracy is not finite, or (when latency is required) its latency
/// is not a finite value >= 0; invalid trials count towards the removals (pruning_removals), and
/// at least 2 valid trials stay. When latency is not required, it is still a score if every
/// valid trial has one (as in the reference); if some lack it, the distance is on accuracy alone
/// (the reference places a missing latency at -1 ms, which skews the normalisation of all the
/// others). 0.0 and negative
/// accuracies are real scores (the reference takes 0.0 for "missing"), a NaN accuracy makes the
/// trial invalid (the reference lets it poison every distance), and no valid trial at all is an
/// answer, not a crash.
/// reference tool: proxy_task_model_selection_lib.filter_trials_based_on_scores
/// @param[in] trials        one entry per trial
/// @param[in] num_to_remove removals asked for (before invalid trials are counted)
/// @param[in] latency_required whether a trial without a valid latency is invalid (a latency
///                             job exists and every model must have been measured)
/// @returns indices into `trials`
inline pruning_result prune_trials(std::span<trial_scores const> trials, std::size_t num_to_remove,
                                   bool latency_required = true) {
  auto const has_latency = [](trial_scores const& t) {
    return std::isfinite(t.latency) && t.latency >= 0.0;
  };
  pruning_result out;
  std::vector<std::size_t> valid;  // input index of each point
  for (std::size_t i = 0; i < trials.size(); ++i) {
    bool const ok =
        std::isfinite(trials[i].accuracy) && (!latency_required || has_latency(trials[i]));
    (ok ? valid : out.invalid).push_back(i);
  }
  bool const use_latency = std::all_of(valid.begin(), valid.end(),
                                       [&](std::size_t i) { return has_latency(trials[i]); });
  std::vector<detail::normalised_point> points;
  for (std::size_t i : valid)
    points.push_back({trials[i].accuracy, use_latency ? trials[i].latency : 0.0});
  detail::min_max_normalise(points, &detail::normalised_point::accuracy);
  detail::min_max_normalise(points, &detail::normalised_point::latency);

  std::size_t const removals = pruning_removals(num_to_remove, valid.size(), out.invalid.size());
  for (std::size_t r = 0; r < removals; ++r) {
    std::size_t const k = detail::point_to_remove(points);
    out.removed.push_back(valid[k]);
    valid.erase(valid.begin() + static_cast<std::ptrdiff_t>(k));
    points.erase(points.begin() + static_cast<std::ptrdiff_t>(k));
  }
  out.kept = std::move(valid);
  return out;
}

}  // namespace proxytask::stats
