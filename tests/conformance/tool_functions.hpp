#pragma once
// Reference functions answered by the tools' building blocks: filter_trials, smoothness,
// variance, accuracy_at_step, median_over_step, stopping, best_proxy_task and
// model_selection_schedule. The handlers translate the reference's sentinels (-1 = missing
// accuracy, latency, time or step; -5 = invalid correlation) to proxytask's NaN / optional and
// back; the library itself never sees a sentinel.

#include <conformance/json_conventions.hpp>

#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/curve.hpp>
#include <proxytask/stats/pruning.hpp>
#include <proxytask/stats/variance.hpp>
#include <proxytask/workflow/schedule.hpp>
#include <proxytask/workflow/stopping.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::conformance {

namespace detail {

inline constexpr double reference_invalid_correlation = -5.0;  // INVALID_CORRELATION
inline constexpr double reference_missing = -1.0;  // INVALID_ACCURACY, _TRAINING_TIME, _STEP

// A number where the reference may write its sentinel: the sentinel and null become NaN.
inline double from_reference(boost::json::value const& v, double sentinel, std::string_view where) {
  double const d = to_double_or_nan(v, where);
  return d == sentinel ? std::numeric_limits<double>::quiet_NaN() : d;
}

inline std::vector<double> from_reference(boost::json::array const& a, double sentinel,
                                          std::string_view where) {
  std::vector<double> out;
  out.reserve(a.size());
  for (auto const& v : a) out.push_back(from_reference(v, sentinel, where));
  return out;
}

inline std::vector<std::int64_t> to_ints(boost::json::array const& a, std::string_view where) {
  std::vector<std::int64_t> out;
  out.reserve(a.size());
  for (auto const& v : a) out.push_back(to_int(v, where));
  return out;
}

inline std::size_t to_count(boost::json::value const& v, std::string_view where) {
  std::int64_t const n = to_int(v, where);
  if (n < 0) throw input_error("ValueError", std::string(where) + ": must be >= 0");
  return static_cast<std::size_t>(n);
}

inline void expect_length(std::size_t actual, std::size_t expected, std::string const& what) {
  if (actual != expected)
    throw input_error("ValueError", what + " has " + std::to_string(actual) + " values, expected " +
                                        std::to_string(expected));
}

// [{training_step_pct, training_step, accuracy}] as in TRIAL_TRAINING_METRICS.json
inline std::vector<stats::curve_point> read_metrics_curve(boost::json::array const& a) {
  std::vector<stats::curve_point> curve;
  curve.reserve(a.size());
  for (auto const& v : a) {
    auto const& p = as_object(v, "curve point");
    curve.push_back({to_double(field(p, "training_step_pct"), "training_step_pct"),
                     to_int(field(p, "training_step"), "training_step"),
                     to_double_or_nan(field(p, "accuracy"), "accuracy")});
  }
  return curve;
}

// {curves: [{steps_pct, accuracies}]} of the smoothness and variance functions
inline std::vector<std::vector<stats::curve_point>> read_pct_curves(boost::json::object const& in) {
  std::vector<std::vector<stats::curve_point>> curves;
  auto const& list = array_field(in, "curves");
  for (std::size_t c = 0; c < list.size(); ++c) {
    auto const& o = as_object(list[c], "curves/" + std::to_string(c));
    auto const pcts = to_doubles(array_field(o, "steps_pct"), "steps_pct");
    auto const accuracies = to_doubles(array_field(o, "accuracies"), "accuracies");
    expect_length(accuracies.size(), pcts.size(), "curves/" + std::to_string(c) + "/accuracies");
    std::vector<stats::curve_point> curve;
    for (std::size_t i = 0; i < pcts.size(); ++i) curve.push_back({pcts[i], 0, accuracies[i]});
    curves.push_back(std::move(curve));
  }
  return curves;
}

inline boost::json::value filter_trials(boost::json::object const& in) {
  auto const& list = array_field(in, "trials");
  std::size_t const num_to_remove = to_count(field(in, "num_to_remove"), "num_to_remove");
  bool requires_latency = true;
  if (auto const* v = in.if_contains("requires_latency"); v && !v->is_null()) {
    if (!v->is_bool()) throw input_error("ValueError", "requires_latency: expected a boolean");
    requires_latency = v->as_bool();
  }
  double const desired_pct = optional_double(in, "desired_training_step_pct").value_or(100.0);

  std::vector<stats::trial_scores> scores;
  std::vector<boost::json::value> ids;
  for (std::size_t t = 0; t < list.size(); ++t) {
    auto const& trial = as_object(list[t], "trials/" + std::to_string(t));
    ids.push_back(field(trial, "id"));
    double accuracy = std::numeric_limits<double>::quiet_NaN();  // null: no metrics file
    if (auto const* curve = trial.if_contains("curve"); curve && !curve->is_null()) {
      auto const points = read_metrics_curve(as_array(*curve, "curve"));
      accuracy = stats::pruning_accuracy(points, desired_pct);
    } else if (auto const* a = trial.if_contains("accuracy")) {
      accuracy = to_double_or_nan(*a, "accuracy");
    }
    // latency null (or absent) is the reference's -1: missing, NaN here; prune_trials also
    // takes any negative latency for missing, as the reference does.
    double latency = std::numeric_limits<double>::quiet_NaN();
    if (auto const* l = trial.if_contains("latency")) latency = to_double_or_nan(*l, "latency");
    scores.push_back({accuracy, latency});
  }
  auto const pruned = stats::prune_trials(scores, num_to_remove, requires_latency);
  auto const names = [&](std::vector<std::size_t> const& indices) {
    boost::json::array a;
    for (std::size_t i : indices) a.push_back(ids[i]);
    return a;
  };
  return {{"removed", names(pruned.removed)},
          {"kept", names(pruned.kept)},
          {"invalid", names(pruned.invalid)}};
}

inline boost::json::value smoothness(boost::json::object const& in) {
  auto const curves = read_pct_curves(in);
  auto const s = stats::smoothness(curves);
  if (!s) throw input_error("ValueError", s.error().message());
  std::vector<double> per_curve;
  for (auto const& c : s->per_curve) per_curve.push_back(c.value);
  return {{"value", from_double(s->mean.value)}, {"per_curve", from_doubles(per_curve)}};
}

inline boost::json::value variance(boost::json::object const& in) {
  auto const curves = read_pct_curves(in);
  std::vector<double> finals;
  for (std::size_t c = 0; c < curves.size(); ++c) {
    auto const last = stats::final_accuracy(curves[c]);
    if (!last) throw input_error("ValueError", "curves/" + std::to_string(c) + " has no point");
    finals.push_back(*last);
  }
  auto const v = stats::coefficient_of_variation(finals);
  return {{"value", from_double(v.value)}, {"final_accuracies", from_doubles(finals)}};
}

inline boost::json::value accuracy_at_step(boost::json::object const& in) {
  auto const curve = read_metrics_curve(array_field(in, "curve"));
  auto const value =
      stats::accuracy_at_pct(curve, to_double(field(in, "desired_pct"), "desired_pct"));
  boost::json::value out_value = nullptr;
  if (value) out_value = from_double(*value);
  return {{"has_accuracy", value.has_value()}, {"value", out_value}};
}

inline boost::json::value median_over_step(boost::json::object const& in) {
  auto const& rows = array_field(in, "proxy_accuracies");
  auto const steps = to_ints(array_field(in, "training_steps"), "training_steps");
  auto const correlation = from_reference(array_field(in, "correlation_over_step"),
                                          reference_invalid_correlation, "correlation_over_step");
  auto const& times = array_field(in, "training_time");
  expect_length(correlation.size(), steps.size(), "correlation_over_step");
  expect_length(times.size(), rows.size(), "training_time");
  std::vector<double> accuracies;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::string const where = "proxy_accuracies/" + std::to_string(r);
    auto const row = from_reference(as_array(rows[r], where), reference_missing, where);
    expect_length(row.size(), steps.size(), where);
    accuracies.insert(accuracies.end(), row.begin(), row.end());
  }
  std::vector<std::optional<stats::training_time>> training_times;
  for (auto const& t : times) {
    if (t.is_null()) {
      training_times.emplace_back();
      continue;
    }
    auto const& o = as_object(t, "training_time");
    training_times.push_back(stats::training_time{
        to_int(field(o, "total_training_steps"), "total_training_steps"),
        to_double(field(o, "total_training_time_in_secs"), "total_training_time_in_secs")});
  }
  auto const medians = workflow::median_over_steps(
      host_matrix_view<double const>(accuracies.data(), rows.size(), steps.size()), steps,
      correlation, training_times);
  boost::json::array accuracy, hours;
  for (auto const& m : medians) {
    // A step without a valid correlation is the reference's -1 / -1; any other NaN (a step the
    // reference crashes on) is written as "nan".
    bool const skipped = m.reason == workflow::median_reason::invalid_correlation;
    accuracy.push_back(skipped ? boost::json::value(reference_missing)
                               : from_double(m.median_accuracy));
    hours.push_back(skipped ? boost::json::value(reference_missing)
                            : from_double(m.training_time_hrs));
  }
  return {{"median_accuracy", accuracy}, {"median_training_time_hrs", hours}};
}

inline boost::json::value stopping(boost::json::object const& in) {
  auto const steps = to_ints(array_field(in, "training_steps"), "training_steps");
  auto const correlation = from_reference(array_field(in, "accuracy_correlation_over_step"),
                                          reference_invalid_correlation, "correlation");
  auto const accuracy = from_reference(array_field(in, "median_accuracy_over_step"),
                                       reference_missing, "median_accuracy_over_step");
  auto const hours = from_reference(array_field(in, "median_training_time_hrs_over_step"),
                                    reference_missing, "median_training_time_hrs_over_step");
  expect_length(correlation.size(), steps.size(), "accuracy_correlation_over_step");
  expect_length(accuracy.size(), steps.size(), "median_accuracy_over_step");
  expect_length(hours.size(), steps.size(), "median_training_time_hrs_over_step");
  workflow::stop_criteria criteria{optional_double(in, "desired_accuracy_correlation"),
                                   optional_double(in, "desired_accuracy"),
                                   optional_double(in, "training_time_hrs_limit"),
                                   optional_double(in, "best_training_time_hrs"), false};
  if (auto const* v = in.if_contains("early_stop_proxy_task_if_not_best"); v && !v->is_null()) {
    if (!v->is_bool())
      throw input_error("ValueError", "early_stop_proxy_task_if_not_best: expected a boolean");
    criteria.early_stop_if_not_best = v->as_bool();
  }
  auto const d = workflow::check_stopping({steps, correlation, accuracy, hours}, criteria);
  return {{"result", d.stopped()},
          {"stopping_state", workflow::to_string(d.state)},
          {"stopping_state_name", workflow::reference_name(d.state)},
          {"final_training_time_in_hours", d.final_training_time_in_hours
                                               ? from_double(*d.final_training_time_in_hours)
                                               : boost::json::value(reference_missing)},
          {"final_training_steps",
           d.final_training_steps ? *d.final_training_steps : std::int64_t{-1}}};
}

inline boost::json::value best_proxy_task(boost::json::object const& in) {
  // The input's best_proxy_task_name is ignored: the reference recomputes the choice from
  // scratch over all proxies.
  auto const& list = array_field(in, "proxy_tasks");
  std::vector<workflow::proxy_outcome> outcomes;
  std::vector<std::string> names;
  for (std::size_t p = 0; p < list.size(); ++p) {
    auto const& o = as_object(list[p], "proxy_tasks/" + std::to_string(p));
    auto const* name = field(o, "name").if_string();
    auto const* state_string = field(o, "stopping_state").if_string();
    if (!name || !state_string)
      throw input_error("ValueError", "proxy_tasks: name and stopping_state must be strings");
    auto const state = workflow::parse_stopping_state(*state_string);
    if (!state)
      throw input_error("ValueError",
                        "unknown stopping_state '" + std::string(*state_string) + "'");
    names.emplace_back(*name);
    outcomes.push_back({*state, optional_double(o, "final_training_time_in_hours")});
  }
  auto const best = workflow::best_proxy_task(outcomes);
  return {{"best_proxy_task_name", best ? names[*best] : std::string()}};
}

inline boost::json::value model_selection_schedule(boost::json::object const& in) {
  workflow::model_selection_options options;
  auto const count = [&](std::string_view key, std::size_t& target) {
    if (auto const* v = in.if_contains(key); v && !v->is_null()) target = to_count(*v, key);
  };
  count("start_num_models", options.start_num_models);
  count("final_num_models", options.final_num_models);
  count("num_models_to_remove_per_iter", options.num_models_to_remove_per_iter);
  std::vector<std::size_t> invalid;
  if (auto const* v = in.if_contains("invalid_per_iter"); v && !v->is_null())
    for (auto const& n : as_array(*v, "invalid_per_iter"))
      invalid.push_back(to_count(n, "invalid_per_iter"));
  auto const schedule = workflow::model_selection_schedule(options, invalid);
  if (!schedule) throw input_error("ValueError", schedule.error().message());
  boost::json::array iterations;
  for (auto const& it : *schedule)
    iterations.push_back({{"num_trials", it.num_trials},
                          {"desired_training_step_pct", it.desired_training_step_pct}});
  return {{"iterations", iterations}};
}

}  // namespace detail

template <class Table>
void add_tool_functions(Table& table) {
  table.emplace("filter_trials", detail::filter_trials);
  table.emplace("smoothness", detail::smoothness);
  table.emplace("variance", detail::variance);
  table.emplace("accuracy_at_step", detail::accuracy_at_step);
  table.emplace("median_over_step", detail::median_over_step);
  table.emplace("stopping", detail::stopping);
  table.emplace("best_proxy_task", detail::best_proxy_task);
  table.emplace("model_selection_schedule", detail::model_selection_schedule);
}

}  // namespace proxytask::conformance
