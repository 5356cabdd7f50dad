#pragma once
/// @file
/// TRIAL_TRAINING_METRICS.json: what a trainer reports (its accuracy curve, training time and
/// latency), with its JSON conversions. The keys are the Vertex AI NAS trainer library's:
///   {"training_time": {"total_training_steps": int, "total_training_time_in_secs": float},
///    "latency": float (-1 when not measured),
///    "training_accuracy_over_steps": [{"training_step_pct": float, "training_step": int,
///                                      "accuracy": float | null}]}

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/stats/curve.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace proxytask::protocol {

/// The "latency" of a trial whose latency was not measured (the Vertex AI NAS library's value).
inline constexpr double latency_not_measured = -1.0;

/// The contents of TRIAL_TRAINING_METRICS.json.
struct trial_metrics {
  /// "training_time": steps trained (end_step + 1 of the last recorded cycle) and the sum of the
  /// recorded cycles' seconds (validation excluded).
  stats::training_time time{0, 0.0};
  /// "latency": latency_not_measured (-1), a measured value, or NaN for a failed measurement
  /// (written as null).
  double latency = latency_not_measured;
  /// "training_accuracy_over_steps", in recording order. A NaN accuracy is a failed metric
  /// (written as null; read from null, NaN or an infinity).
  std::vector<stats::curve_point> points;
};

/// Serialises to the file's JSON (non-finite numbers as null).
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       trial_metrics const& m) {
  boost::json::array points;
  points.reserve(m.points.size());
  for (stats::curve_point const& p : m.points)
    points.push_back({{"training_step_pct", json_number(p.training_step_pct)},
                      {"training_step", p.training_step},
                      {"accuracy", json_number(p.accuracy)}});
  jv = {{"training_time",
         {{"total_training_steps", m.time.total_training_steps},
          {"total_training_time_in_secs", json_number(m.time.total_training_time_in_secs)}}},
        {"latency", json_number(m.latency)},
        {"training_accuracy_over_steps", std::move(points)}};
}

namespace detail {

/// A metric value: a number, or null / NaN / an infinity for a failed one (NaN).
inline result<double> read_metric_value(boost::json::value const& v, json_location const& where) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  auto const d = read_json_double(v, where);
  if (d && !std::isfinite(*d)) return std::numeric_limits<double>::quiet_NaN();
  return d;
}

inline result<stats::curve_point> read_curve_point(boost::json::value const& v,
                                                   json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  auto const pct = read_json_member(**o, "training_step_pct", where, read_json_non_negative);
  if (!pct) return pct.error();
  auto const step = read_json_member(**o, "training_step", where, read_json_count);
  if (!step) return step.error();
  auto const accuracy = read_json_member(**o, "accuracy", where, read_metric_value);
  if (!accuracy) return accuracy.error();
  return stats::curve_point{*pct, *step, *accuracy};
}

}  // namespace detail

/// Reads trial_metrics from a parsed document. Unknown members are ignored.
/// @param[in] v     the document (or the value where the metrics sit in a larger one)
/// @param[in] where its location, for messages
/// @returns the metrics, or errc::malformed_file naming "<source>#<pointer>" and the problem: a
///          missing member, a wrong type, a negative step or time, a non-finite pct or time
inline result<trial_metrics> trial_metrics_from_json(boost::json::value const& v,
                                                     json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  trial_metrics m;

  auto const time = read_json_member(**o, "training_time", where, read_json_object);
  if (!time) return time.error();
  json_location const time_at = where / "training_time";
  auto const steps = read_json_member(**time, "total_training_steps", time_at, read_json_count);
  if (!steps) return steps.error();
  auto const secs =
      read_json_member(**time, "total_training_time_in_secs", time_at, read_json_non_negative);
  if (!secs) return secs.error();
  m.time = {*steps, *secs};

  auto const latency = read_json_member(**o, "latency", where, detail::read_metric_value);
  if (!latency) return latency.error();
  m.latency = *latency;

  auto const points = read_json_member(**o, "training_accuracy_over_steps", where, read_json_array);
  if (!points) return points.error();
  json_location const points_at = where / "training_accuracy_over_steps";
  m.points.reserve((*points)->size());
  for (std::size_t i = 0; i < (*points)->size(); ++i) {
    auto const p = detail::read_curve_point((**points)[i], points_at / i);
    if (!p) return p.error();
    m.points.push_back(*p);
  }
  return m;
}

/// Parses the text of a TRIAL_TRAINING_METRICS.json (NaN / Infinity tokens accepted).
/// @param[in] text   the file's contents
/// @param[in] source what the text is, for messages (usually the file's path)
/// @returns the metrics, or errc::malformed_file naming source, and line and column (syntax) or
///          the JSON pointer of the bad field
inline result<trial_metrics> parse_trial_metrics(std::string_view text, std::string_view source) {
  auto const doc = parse_json_lenient(text, source);
  if (!doc) return doc.error();
  return trial_metrics_from_json(*doc, json_location(source));
}

/// Boost.JSON's non-throwing conversion. It carries only the error code (malformed_file);
/// parse_trial_metrics gives the message with the field's pointer.
inline boost::system::result<trial_metrics> tag_invoke(boost::json::try_value_to_tag<trial_metrics>,
                                                       boost::json::value const& jv) {
  auto m = trial_metrics_from_json(jv, json_location(""));
  if (!m) return boost::system::error_code(m.error().code);
  return std::move(*m);
}

}  // namespace proxytask::protocol
