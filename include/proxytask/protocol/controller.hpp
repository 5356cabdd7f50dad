#pragma once
/// @file
/// The controller side of the trial file protocol: post the signals a running trainer obeys
/// (desired pct, time limit, heartbeat) and the model spec it trains, and read what it reports
/// (metrics, failure). Every file is written atomically; a file not written yet reads as
/// errc::not_found, distinct from a malformed one.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/metrics.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/signals.hpp>
#include <proxytask/stats/curve.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <filesystem>
#include <optional>

namespace proxytask::protocol {

/// Posts DESIRED_TRAINING_PCT.json: the trainer stops once its pct >= `desired_training_pct`.
/// 0 means "stop now" and is written (the reference tool skipped it as falsy). The time limit,
/// if posted, stays in force.
/// @pre desired_training_pct is finite and >= 0
inline result<void> post_desired_pct(std::filesystem::path const& trial_dir,
                                     double desired_training_pct) {
  PROXYTASK_EXPECTS(std::isfinite(desired_training_pct) && desired_training_pct >= 0,
                    "post_desired_pct: the pct must be finite and >= 0");
  return write_json_file(trial_dir / desired_pct_file_name,
                         boost::json::value_from(desired_pct_signal{desired_training_pct}));
}

/// Posts MAX_TRAINING_TIME.json: the trainer stops once its recorded training time >= this.
/// The desired pct, if posted, stays in force (the reference tool dropped one of the two).
/// @pre max_training_time_in_hrs is finite and >= 0
inline result<void> post_time_limit(std::filesystem::path const& trial_dir,
                                    double max_training_time_in_hrs) {
  PROXYTASK_EXPECTS(std::isfinite(max_training_time_in_hrs) && max_training_time_in_hrs >= 0,
                    "post_time_limit: the hours must be finite and >= 0");
  return write_json_file(trial_dir / max_training_time_file_name,
                         boost::json::value_from(time_limit_signal{max_training_time_in_hrs}));
}

/// Posts controller_alive_timestamp.json: the controller is alive at `unix_seconds`.
/// @pre unix_seconds is finite
inline result<void> post_heartbeat(std::filesystem::path const& trial_dir,
                                   double unix_seconds = unix_now()) {
  PROXYTASK_EXPECTS(std::isfinite(unix_seconds), "post_heartbeat: the timestamp must be finite");
  return write_json_file(trial_dir / heartbeat_file_name,
                         boost::json::value_from(heartbeat_signal{unix_seconds}));
}

/// Writes the trial's MODEL_SPEC.json (before launching its trainer).
inline result<void> post_model_spec(std::filesystem::path const& trial_dir,
                                    model_spec const& spec) {
  return write_json_file(trial_dir / model_spec_file_name, boost::json::value_from(spec));
}

/// Reads the trial's TRIAL_TRAINING_METRICS.json.
/// @returns the metrics; errc::not_found when the trainer has not written it (yet);
///          errc::malformed_file naming the file and field (or line and column)
inline result<trial_metrics> read_metrics(std::filesystem::path const& trial_dir) {
  return detail::read_protocol_file(trial_dir / training_metrics_file_name, parse_trial_metrics);
}

/// Reads the trial's TRIAL_FAILURE.json.
/// @returns the failure; errc::not_found when the trainer recorded none; errc::malformed_file
///          naming the file and field (or line and column)
inline result<trial_failure> read_failure(std::filesystem::path const& trial_dir) {
  return detail::read_protocol_file(trial_dir / trial_failure_file_name, parse_trial_failure);
}

/// The trial's accuracy at `desired_pct`: stats::accuracy_at_pct over its recorded points
/// (linear interpolation from (0, 0)).
/// @returns nullopt when the trial has not reached desired_pct
inline std::optional<double> accuracy_at_pct(trial_metrics const& metrics, double desired_pct) {
  return stats::accuracy_at_pct(metrics.points, desired_pct);
}

}  // namespace proxytask::protocol
