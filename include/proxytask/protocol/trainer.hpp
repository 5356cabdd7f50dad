#pragma once
/// @file
/// The trainer side of the trial file protocol: a trial_reporter, opened on the trial's
/// directory, records each training cycle's accuracy in TRIAL_TRAINING_METRICS.json, the
/// latency, or a failure, and says when to stop (the controller's desired pct, its time limit,
/// or its heartbeat gone stale). This is the role of the Vertex AI NAS library's
/// proxy_task_utils, so a trainer instrumented for one is instrumented for the other.
///
/// @code
///   auto reporter = pt::protocol::trial_reporter::open(args.model_dir).value();
///   for (std::int64_t begin = 0; begin < total; begin += cycle) {
///     std::int64_t const end = std::min(begin + cycle, total) - 1;
///     double const secs = train(begin, end);                 // validation time excluded
///     reporter.report_accuracy(begin, end, secs, total, validate()).value();
///     if (reporter.should_stop(end, total).value() != pt::protocol::stop_reason::keep_going)
///       break;
///   }
/// @endcode

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/metrics.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/signals.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

namespace proxytask::protocol {

/// Why a trainer should stop, in the order should_stop checks them.
enum class stop_reason {
  keep_going,           ///< no reason to stop
  desired_pct_reached,  ///< its pct >= the controller's desired pct (0 = stop now)
  time_limit_reached,   ///< its recorded training time >= the controller's time limit
  controller_lost,      ///< the controller's heartbeat is older than the threshold
};

/// "keep_going", "desired_pct_reached", "time_limit_reached", "controller_lost".
constexpr std::string_view to_string(stop_reason r) noexcept {
  switch (r) {
    case stop_reason::keep_going: return "keep_going";
    case stop_reason::desired_pct_reached: return "desired_pct_reached";
    case stop_reason::time_limit_reached: return "time_limit_reached";
    case stop_reason::controller_lost: return "controller_lost";
  }
  return "?";
}

/// The reason named by `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<stop_reason> parse_stop_reason(std::string_view s) noexcept {
  for (stop_reason const r : {stop_reason::keep_going, stop_reason::desired_pct_reached,
                              stop_reason::time_limit_reached, stop_reason::controller_lost})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

/// The training_step_pct of a cycle that ended at `end_step` (0-based): 100 * (end_step + 1) /
/// total_steps, in the same arithmetic as Python's `100 * (end_step + 1) / total_steps`.
constexpr double training_step_pct(std::int64_t end_step, std::int64_t total_steps) noexcept {
  return 100.0 * static_cast<double>(end_step + 1) / static_cast<double>(total_steps);
}

/// How a trial_reporter judges the controller's heartbeat, and where it gets the time.
struct reporter_options {
  /// The controller is lost when now - its heartbeat's timestamp > this (15 minutes).
  double heartbeat_threshold_secs = 900.0;
  /// Unix seconds now; tests inject a fake clock.
  std::function<double()> clock = unix_now;
};

/// Reads the model spec the trainer was launched with (launch_arguments::model_spec).
/// @returns the spec; errc::not_found when the file does not exist; errc::malformed_file naming
///          the file and field otherwise
inline result<model_spec> read_model_spec(std::filesystem::path const& path) {
  return detail::read_protocol_file(path, parse_model_spec);
}

/// The trainer's view of its trial directory. It keeps the metrics in memory and rewrites the
/// whole TRIAL_TRAINING_METRICS.json atomically on each report, so the controller always reads a
/// complete file. Opened on a directory that already has one (a resumed trial), it continues it.
class trial_reporter {
 public:
  /// Opens the trial directory `model_dir`, creating it if needed, and loads its metrics file
  /// if there is one.
  /// @pre options.clock is set and options.heartbeat_threshold_secs is not NaN
  /// @returns the reporter; an I/O error naming the directory; errc::malformed_file (naming the
  ///          file and field) when an existing metrics file cannot be read, which the reporter
  ///          would otherwise overwrite
  static result<trial_reporter> open(std::filesystem::path model_dir,
                                     reporter_options options = {}) {
    PROXYTASK_EXPECTS(static_cast<bool>(options.clock), "reporter_options::clock is empty");
    PROXYTASK_EXPECTS(!std::isnan(options.heartbeat_threshold_secs),
                      "heartbeat_threshold_secs is NaN");
    std::error_code ec;
    std::filesystem::create_directories(model_dir, ec);
    if (ec) return make_error(ec, "cannot create the trial directory " + model_dir.string());
    trial_reporter reporter(std::move(model_dir), std::move(options));
    auto existing =
        detail::read_protocol_file(reporter.path(training_metrics_file_name), parse_trial_metrics);
    if (existing)
      reporter.metrics_ = std::move(*existing);
    else if (existing.error().code != errc::not_found)
      return existing.error();
    return reporter;
  }

  /// Records a training cycle and rewrites the metrics file. A cycle whose pct
  /// (training_step_pct(end_step, total_steps)) is not beyond the last recorded one is ignored:
  /// nothing appended, no time added (reference library behaviour, e.g. a re-run cycle after
  /// a restart).
  /// @param[in] begin_step    the cycle's first step (0-based)
  /// @param[in] end_step      its last step (0-based)
  /// @param[in] cycle_seconds its training time, validation excluded
  /// @param[in] total_steps   the steps of the whole training
  /// @param[in] accuracy      the validation accuracy after it; a non-finite value is a failed
  ///                          metric (recorded as null)
  /// @pre 0 <= begin_step <= end_step < INT64_MAX, total_steps > 0, cycle_seconds finite and
  ///      >= 0
  /// @returns whether the cycle was recorded, or the error of the write (then nothing changed)
  result<bool> report_accuracy(std::int64_t begin_step, std::int64_t end_step, double cycle_seconds,
                               std::int64_t total_steps, double accuracy) {
    PROXYTASK_EXPECTS(begin_step >= 0 && begin_step <= end_step &&
                          end_step < std::numeric_limits<std::int64_t>::max(),
                      "report_accuracy: need 0 <= begin_step <= end_step < INT64_MAX");
    PROXYTASK_EXPECTS(total_steps > 0, "report_accuracy: total_steps must be positive");
    PROXYTASK_EXPECTS(std::isfinite(cycle_seconds) && cycle_seconds >= 0,
                      "report_accuracy: cycle_seconds must be finite and >= 0");
    double const pct = training_step_pct(end_step, total_steps);
    if (!metrics_.points.empty() && !(pct > metrics_.points.back().training_step_pct)) return false;
    trial_metrics next = metrics_;
    next.points.push_back(
        {pct, end_step,
         std::isfinite(accuracy) ? accuracy : std::numeric_limits<double>::quiet_NaN()});
    next.time.total_training_steps = end_step + 1;
    next.time.total_training_time_in_secs += cycle_seconds;
    if (auto const written = write_metrics(next); !written) return written.error();
    metrics_ = std::move(next);
    return true;
  }

  /// Records the trial's latency and rewrites the metrics file.
  /// @param[in] latency the measured latency; non-finite for a failed measurement (null)
  /// @returns the error of the write (then nothing changed)
  result<void> report_latency(double latency) {
    trial_metrics next = metrics_;
    next.latency = std::isfinite(latency) ? latency : std::numeric_limits<double>::quiet_NaN();
    if (auto const written = write_metrics(next); !written) return written.error();
    metrics_ = std::move(next);
    return {};
  }

  /// Writes TRIAL_FAILURE.json; the trainer should then exit non-zero.
  result<void> report_failure(trial_failure const& failure) const {
    return write_json_file(path(trial_failure_file_name), boost::json::value_from(failure));
  }

  /// Whether to stop after the cycle that ended at `end_step`, checked in this order: the pct
  /// training_step_pct(end_step, total_steps) >= DESIRED_TRAINING_PCT.json's (a posted 0 always
  /// stops); the recorded training seconds >= MAX_TRAINING_TIME.json's hours * 3600; the
  /// heartbeat file exists and now - its timestamp > the threshold. A missing file is no reason
  /// to stop (no heartbeat file: no heartbeat is used). Files after the first reason found are
  /// not read.
  /// @param[in] end_step    the last step trained so far (0-based; -1 before the first cycle)
  /// @param[in] total_steps the steps of the whole training
  /// @pre -1 <= end_step < INT64_MAX, total_steps > 0
  /// @returns the reason, or the error of a signal file that exists but cannot be read
  ///          (errc::malformed_file naming the file and field)
  result<stop_reason> should_stop(std::int64_t end_step, std::int64_t total_steps) const {
    PROXYTASK_EXPECTS(end_step >= -1 && end_step < std::numeric_limits<std::int64_t>::max(),
                      "should_stop: need -1 <= end_step < INT64_MAX");
    PROXYTASK_EXPECTS(total_steps > 0, "should_stop: total_steps must be positive");
    auto const desired = read_signal(desired_pct_file_name, parse_desired_pct);
    if (!desired) return desired.error();
    if (*desired && training_step_pct(end_step, total_steps) >= (*desired)->desired_training_pct)
      return stop_reason::desired_pct_reached;

    auto const limit = read_signal(max_training_time_file_name, parse_time_limit);
    if (!limit) return limit.error();
    if (*limit &&
        metrics_.time.total_training_time_in_secs >= (*limit)->max_training_time_in_hrs * 3600.0)
      return stop_reason::time_limit_reached;

    auto const heartbeat = read_signal(heartbeat_file_name, parse_heartbeat);
    if (!heartbeat) return heartbeat.error();
    if (*heartbeat &&
        options_.clock() - (*heartbeat)->timestamp > options_.heartbeat_threshold_secs)
      return stop_reason::controller_lost;
    return stop_reason::keep_going;
  }

  /// The metrics as recorded (and as the file holds them).
  trial_metrics const& metrics() const noexcept { return metrics_; }
  /// The trial directory.
  std::filesystem::path const& model_dir() const noexcept { return model_dir_; }

 private:
  trial_reporter(std::filesystem::path model_dir, reporter_options options)
      : model_dir_(std::move(model_dir)), options_(std::move(options)) {}

  std::filesystem::path path(std::string_view file_name) const { return model_dir_ / file_name; }

  result<void> write_metrics(trial_metrics const& m) const {
    return write_json_file(path(training_metrics_file_name), boost::json::value_from(m));
  }

  /// A signal file's contents, nullopt when it does not exist.
  template <class Parse>
  auto read_signal(std::string_view file_name, Parse parse) const -> result<
      std::optional<typename decltype(parse(std::string_view{}, std::string_view{}))::value_type>> {
    auto s = detail::read_protocol_file(path(file_name), parse);
    if (s) return std::optional(std::move(*s));
    if (s.error().code == errc::not_found) return std::nullopt;
    return s.error();
  }

  std::filesystem::path model_dir_;
  reporter_options options_;
  trial_metrics metrics_;
};

}  // namespace proxytask::protocol
