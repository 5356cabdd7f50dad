#pragma once
/// @file
/// The proxy-task search's decisions: the median accuracy and its training time at each step,
/// the stop rule over a proxy's per-step statistics, and the choice of the best proxy.

#include <proxytask/core/config.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/curve.hpp>
#include <proxytask/stats/median.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace proxytask::workflow {

/// Why a proxy task stopped. The strings are the reference tool's ProxyTaskStoppingState
/// values (to_string) and names (reference_name), as its state files hold them.
enum class stopping_state {
  none,                                ///< not stopped (yet): INVALID_STOPPING_STATE, ""
  met_desired_accuracy_correlation,    ///< "Met desired correlation"
  met_desired_accuracy,                ///< "Met desired accuracy"
  exceeded_train_time_limit,           ///< "Exceeded training time limit"
  exceeded_best_train_time,            ///< "Exceeded best training time"
  failed_desired_latency_correlation,  ///< "Failed desired latency correlation"
  job_failed,                          ///< "Proxy task job failed"
  ran_till_completion,                 ///< "Ran till completion"
  excess_trial_failures,               ///< "Excess trial failures"
};

/// The reference's value string: "" for none, "Met desired correlation", ...
constexpr std::string_view to_string(stopping_state s) noexcept {
  switch (s) {
    case stopping_state::none: return "";
    case stopping_state::met_desired_accuracy_correlation: return "Met desired correlation";
    case stopping_state::met_desired_accuracy: return "Met desired accuracy";
    case stopping_state::exceeded_train_time_limit: return "Exceeded training time limit";
    case stopping_state::exceeded_best_train_time: return "Exceeded best training time";
    case stopping_state::failed_desired_latency_correlation:
      return "Failed desired latency correlation";
    case stopping_state::job_failed: return "Proxy task job failed";
    case stopping_state::ran_till_completion: return "Ran till completion";
    case stopping_state::excess_trial_failures: return "Excess trial failures";
  }
  return "?";
}

/// The reference's enum name: "INVALID_STOPPING_STATE" for none, "MET_DESIRED_ACCURACY", ...
constexpr std::string_view reference_name(stopping_state s) noexcept {
  switch (s) {
    case stopping_state::none: return "INVALID_STOPPING_STATE";
    case stopping_state::met_desired_accuracy_correlation:
      return "MET_DESIRED_ACCURACY_CORRELATION";
    case stopping_state::met_desired_accuracy: return "MET_DESIRED_ACCURACY";
    case stopping_state::exceeded_train_time_limit: return "EXCEEDED_TRAIN_TIME_LIMIT";
    case stopping_state::exceeded_best_train_time: return "EXCEEDED_BEST_TRAIN_TIME";
    case stopping_state::failed_desired_latency_correlation:
      return "FAILED_DESIRED_LATENCY_CORRELATION";
    case stopping_state::job_failed: return "JOB_FAILED";
    case stopping_state::ran_till_completion: return "RAN_TILL_COMPLETION";
    case stopping_state::excess_trial_failures: return "EXCESS_TRIAL_FAILURES";
  }
  return "?";
}

/// Parses a value string or an enum name (both appear in the reference's files).
constexpr std::optional<stopping_state> parse_stopping_state(std::string_view s) noexcept {
  constexpr stopping_state all[] = {
      stopping_state::none,
      stopping_state::met_desired_accuracy_correlation,
      stopping_state::met_desired_accuracy,
      stopping_state::exceeded_train_time_limit,
      stopping_state::exceeded_best_train_time,
      stopping_state::failed_desired_latency_correlation,
      stopping_state::job_failed,
      stopping_state::ran_till_completion,
      stopping_state::excess_trial_failures,
  };
  for (stopping_state state : all)
    if (s == to_string(state) || s == reference_name(state)) return state;
  return std::nullopt;
}

/// A proxy succeeded when it met the desired correlation or the desired accuracy.
constexpr bool is_successful(stopping_state s) noexcept {
  return s == stopping_state::met_desired_accuracy_correlation ||
         s == stopping_state::met_desired_accuracy;
}

// ---------------------------------------------------------------------------------------------
// Median accuracy and its training time per step

/// Why a step's median accuracy or training time is NaN.
enum class median_reason {
  none,                 ///< both computed
  invalid_correlation,  ///< the step's correlation is invalid: nothing computed (as the reference)
  no_valid_accuracy,    ///< the correlation is valid but no trial has an accuracy at this step
  no_training_time,     ///< the median trial has no training-time record: time NaN
  zero_training_steps,  ///< the median trial's total_training_steps is not positive: time NaN
};

/// "" when computed; otherwise the enumerator's name
constexpr std::string_view to_string(median_reason r) noexcept {
  switch (r) {
    case median_reason::none: return "";
    case median_reason::invalid_correlation: return "invalid_correlation";
    case median_reason::no_valid_accuracy: return "no_valid_accuracy";
    case median_reason::no_training_time: return "no_training_time";
    case median_reason::zero_training_steps: return "zero_training_steps";
  }
  return "?";
}

/// One step's median accuracy and the training time to reach that step.
struct median_step {
  double median_accuracy;    ///< NaN for invalid_correlation and no_valid_accuracy
  double training_time_hrs;  ///< NaN unless reason is none
  median_reason reason;
};

/// At each step whose correlation is valid: the upper median of the trials' accuracies
/// (stats::upper_median) and the training time, in hours, of the FIRST trial whose accuracy
/// equals it, scaled to the step: (its total secs / its total steps) * step / 3600. Where the
/// reference crashes (no accuracy at a valid step, no training-time record, zero steps) the
/// step gets NaN with a reason.
/// reference tool: compute_median_accuracy_and_training_time_over_step
/// @param[in] accuracies     trials x steps; NaN = no accuracy
/// @param[in] training_steps the step of each column
/// @param[in] correlation    the correlation of each column; NaN = invalid
/// @param[in] training_times one per trial; nullopt = no record
/// @throws proxytask::logic_error when the extents disagree
inline std::vector<median_step> median_over_steps(
    host_matrix_view<double const> accuracies, std::span<std::int64_t const> training_steps,
    std::span<double const> correlation,
    std::span<std::optional<stats::training_time> const> training_times) {
  PROXYTASK_EXPECTS(training_steps.size() == accuracies.cols(),
                    "median_over_steps: one training step per column");
  PROXYTASK_EXPECTS(correlation.size() == accuracies.cols(),
                    "median_over_steps: one correlation per column");
  PROXYTASK_EXPECTS(training_times.size() == accuracies.rows(),
                    "median_over_steps: one training time per trial (row)");
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<median_step> out;
  out.reserve(accuracies.cols());
  std::vector<double> column(accuracies.rows());
  for (std::size_t step = 0; step < accuracies.cols(); ++step) {
    if (std::isnan(correlation[step])) {
      out.push_back({nan, nan, median_reason::invalid_correlation});
      continue;
    }
    for (std::size_t trial = 0; trial < accuracies.rows(); ++trial)
      column[trial] = accuracies(trial, step);
    double const median = stats::upper_median(std::span<double const>(column));
    if (std::isnan(median)) {
      out.push_back({nan, nan, median_reason::no_valid_accuracy});
      continue;
    }
    std::size_t trial = 0;
    while (column[trial] != median) ++trial;  // found: the median is one of the values
    auto const& time = training_times[trial];
    if (!time) {
      out.push_back({median, nan, median_reason::no_training_time});
    } else if (time->total_training_steps <= 0) {
      out.push_back({median, nan, median_reason::zero_training_steps});
    } else {
      double const secs_per_step =
          time->total_training_time_in_secs / static_cast<double>(time->total_training_steps);
      out.push_back({median, secs_per_step * static_cast<double>(training_steps[step]) / 3600.0,
                     median_reason::none});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The stop rule

/// A proxy's statistics over its recorded steps (views; all the same length). NaN marks an
/// invalid value (the reference writes -5 for a correlation and -1 for the others).
struct proxy_step_stats {
  std::span<std::int64_t const> training_steps;
  std::span<double const> correlation;               ///< accuracy correlation per step
  std::span<double const> median_accuracy;           ///< median_step::median_accuracy
  std::span<double const> median_training_time_hrs;  ///< median_step::training_time_hrs
};

/// When to stop a proxy. An absent threshold is not checked; 0.0 is a real threshold (the
/// reference takes 0.0 for "unset").
struct stop_criteria {
  std::optional<double> desired_correlation{};      ///< stop when correlation >= this
  std::optional<double> desired_accuracy{};         ///< stop when the median accuracy >= this
  std::optional<double> training_time_hrs_limit{};  ///< stop when the training time >= this
  std::optional<double> best_training_time_hrs{};   ///< the best successful proxy's time so far
  bool early_stop_if_not_best = false;  ///< stop when the time >= best_training_time_hrs
};

/// The outcome of the stop rule.
struct stop_decision {
  stopping_state state = stopping_state::none;  ///< none: keep training
  std::optional<std::size_t> step_index{};      ///< the step at which the rule fired
  /// The interpolated crossing, for met_desired_accuracy_correlation and met_desired_accuracy
  /// only (NaN when the training time there is unknown).
  std::optional<double> final_training_time_in_hours{};
  std::optional<std::int64_t> final_training_steps{};  ///< likewise; truncated toward 0

  constexpr bool stopped() const noexcept { return state != stopping_state::none; }
};

namespace detail {

struct crossing {
  double training_time_hrs;
  std::int64_t training_steps;
};

// Where `values` crosses `desired`, between the nearest earlier valid step j (value and time
// known) and step k, and the training time and steps there.
// reference tool: get_interpolated_step_idx / get_interpolated_val, with x0 = j where the
// reference takes x0 = k - 1 even when that step is invalid (its -5 / -1 then enter the
// interpolation); the same arithmetic, so bit-identical when j = k - 1. Without an earlier valid
// step, no interpolation: step k's own time and steps.
inline crossing interpolate_crossing(proxy_step_stats const& s, std::span<double const> values,
                                     std::size_t k, double desired) {
  std::span<double const> const time = s.median_training_time_hrs;
  crossing const at_k{time[k], s.training_steps[k]};
  std::size_t j = k;
  while (j > 0 && (std::isnan(values[j - 1]) || std::isnan(time[j - 1]))) --j;
  if (j == 0) return at_k;
  --j;
  double const x0 = static_cast<double>(j);
  double const x1 = static_cast<double>(k);
  double const x = x0 + (desired - values[j]) * (x1 - x0) / (values[k] - values[j]);
  if (!std::isfinite(x)) return at_k;  // an infinite value: no meaningful crossing
  auto const at_x = [&](double y0, double y1) { return y0 + (x - x0) * (y1 - y0) / (x1 - x0); };
  double const steps =
      at_x(static_cast<double>(s.training_steps[j]), static_cast<double>(s.training_steps[k]));
  return {at_x(time[j], time[k]), static_cast<std::int64_t>(steps)};  // int(): toward 0
}

inline bool reaches(double value, std::optional<double> const& threshold) noexcept {
  return threshold && !std::isnan(value) && value >= *threshold;
}

}  // namespace detail

/// The stop rule: steps are scanned in order and, within a step, correlation, median accuracy,
/// time limit, best time; the first that holds (comparisons >=) stops the proxy. For a met
/// correlation or accuracy, the crossing is interpolated linearly from the nearest earlier valid
/// step (none at the first valid step: that step's own time and steps); the time stops carry
/// no final time or steps. A NaN value never meets a threshold.
/// reference tool: check_stopping_condition_and_update_proxy_task_stats
/// @throws proxytask::logic_error when the spans differ in length
inline stop_decision check_stopping(proxy_step_stats const& stats, stop_criteria const& criteria) {
  std::size_t const n = stats.training_steps.size();
  PROXYTASK_EXPECTS(stats.correlation.size() == n && stats.median_accuracy.size() == n &&
                        stats.median_training_time_hrs.size() == n,
                    "check_stopping: one value of each statistic per step");
  auto const met = [&](stopping_state state, std::span<double const> values, double desired,
                       std::size_t k) {
    auto const c = detail::interpolate_crossing(stats, values, k, desired);
    return stop_decision{state, k, c.training_time_hrs, c.training_steps};
  };
  for (std::size_t k = 0; k < n; ++k) {
    if (detail::reaches(stats.correlation[k], criteria.desired_correlation))
      return met(stopping_state::met_desired_accuracy_correlation, stats.correlation,
                 *criteria.desired_correlation, k);
    if (detail::reaches(stats.median_accuracy[k], criteria.desired_accuracy))
      return met(stopping_state::met_desired_accuracy, stats.median_accuracy,
                 *criteria.desired_accuracy, k);
    double const time = stats.median_training_time_hrs[k];
    if (detail::reaches(time, criteria.training_time_hrs_limit))
      return {stopping_state::exceeded_train_time_limit, k, std::nullopt, std::nullopt};
    if (criteria.early_stop_if_not_best && detail::reaches(time, criteria.best_training_time_hrs))
      return {stopping_state::exceeded_best_train_time, k, std::nullopt, std::nullopt};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// The best proxy

/// What the best-proxy choice needs of a finished (or stopped) proxy.
struct proxy_outcome {
  stopping_state state = stopping_state::none;
  std::optional<double> final_training_time_in_hours{};
};

/// The best proxy: among the successful ones (is_successful) with a known (non-NaN) final time,
/// the one with the lowest time; on a tie the earlier one. 0.0 and negative times are real times
/// (the reference takes 0.0 for "no best yet"); a NaN time is not a success (in the reference a
/// NaN time never wins and, once best, never loses).
/// reference tool: update_best_proxy_task
/// @returns the index into `proxies`, nullopt when none succeeded
inline std::optional<std::size_t> best_proxy_task(std::span<proxy_outcome const> proxies) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < proxies.size(); ++i) {
    auto const& time = proxies[i].final_training_time_in_hours;
    if (!is_successful(proxies[i].state) || !time || std::isnan(*time)) continue;
    if (!best || *time < *proxies[*best].final_training_time_in_hours) best = i;
  }
  return best;
}

}  // namespace proxytask::workflow
