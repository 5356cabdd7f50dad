#pragma once
/// @file
/// What the local-process and in-process executors share about a trial's directory: the file
/// names they write, the checks and files of a launch (trial id, MODEL_SPEC.json, the desired
/// pct), the launch convention's arguments of a trial, EXIT_STATUS.json, the status of a trial
/// that has ended (from its exit record, TRIAL_FAILURE.json and the cancelled flag), and the
/// latency a separate latency calculator measured (MODEL_LATENCY.json; the simulated executor
/// reads it through the same function).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/executor.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/latency.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace proxytask::exec::detail {

inline constexpr std::string_view pid_file_name = "PID.json";
inline constexpr std::string_view exit_status_file_name = "EXIT_STATUS.json";
inline constexpr std::string_view cancelled_file_name = "CANCELLED.json";
inline constexpr std::string_view stdout_file_name = "stdout.txt";
inline constexpr std::string_view stderr_file_name = "stderr.txt";

inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// errc::invalid_argument unless `id` can name a directory under <run_dir>/trials/.
inline result<void> check_trial_id(std::string const& id) {
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
    return make_error(errc::invalid_argument, "bad trial id \"" + id + "\"");
  return {};
}

/// Creates the trial's directory, MODEL_SPEC.json and DESIRED_TRAINING_PCT.json (when given).
inline result<void> prepare_trial_directory(std::filesystem::path const& dir,
                                            workflow::launch_trial const& l) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(ec, "cannot create the trial directory " + dir.string());
  if (auto const r = protocol::post_model_spec(dir, l.spec); !r) return r.error();
  if (l.desired_pct)
    if (auto const r = protocol::post_desired_pct(dir, *l.desired_pct); !r) return r.error();
  return {};
}

/// The launch convention's arguments of trial `l` of the run in `run_dir`: its directory as
/// model_dir, its seed, resume_from's directory, its proxy arguments.
inline protocol::launch_arguments launch_arguments_of(std::filesystem::path const& run_dir,
                                                      workflow::launch_trial const& l) {
  protocol::launch_arguments args;
  args.model_dir = trial_directory(run_dir, l.trial_id);
  args.model_spec = args.model_dir / protocol::model_spec_file_name;
  args.seed = l.seed;
  if (l.resume_from) args.resume_from = trial_directory(run_dir, *l.resume_from);
  for (auto const& [k, v] : l.proxy_args) args.proxy_args.emplace(k, v);
  return args;
}

/// An optional JSON object file of a trial: nullopt when it does not exist.
inline result<std::optional<boost::json::object>> read_trial_object(
    std::filesystem::path const& dir, std::string_view name) {
  auto const file = read_json_object_file(dir / name);
  if (!file) return file.error();
  if (!*file) return std::optional<boost::json::object>();
  return std::optional<boost::json::object>((*file)->as_object());
}

/// How a trainer ended (EXIT_STATUS.json).
struct exit_record {
  std::int64_t exit_code = 0;
  std::optional<std::int64_t> signal;    ///< the signal that killed a trainer process
  std::optional<std::string> exception;  ///< what() of an exception an in-process trainer threw
};

/// How EXIT_STATUS.json's exit code is to be read.
enum class exit_code_convention {
  shell,  ///< a code > 128 without a "signal" member is 128 + the signal (a POSIX shell's $?)
  plain,  ///< the code is what the trainer returned
};

/// Reads EXIT_STATUS.json: {"exit_code": int, "signal"?: int, "exception"?: string}; with
/// "exception", "exit_code" may be absent.
/// @returns nullopt when the trainer has not ended (no file); errc::malformed_file naming the
///          file and field
inline result<std::optional<exit_record>> read_exit_record(std::filesystem::path const& dir,
                                                           exit_code_convention convention) {
  auto const o = read_trial_object(dir, exit_status_file_name);
  if (!o) return o.error();
  if (!*o) return std::optional<exit_record>();
  json_location const where((dir / exit_status_file_name).string());
  exit_record r;
  if (auto const* e = (*o)->if_contains("exception")) {
    auto what = read_json_string(*e, where / "exception");
    if (!what) return what.error();
    r.exception = std::move(*what);
    r.exit_code = 1;
  }
  if (!r.exception || (*o)->contains("exit_code")) {
    auto const code = read_json_member(**o, "exit_code", where, read_json_int64);
    if (!code) return code.error();
    r.exit_code = *code;
  }
  if (auto const* s = (*o)->if_contains("signal")) {
    auto const signal = read_json_count(*s, where / "signal");
    if (!signal) return signal.error();
    r.signal = *signal;
  } else if (convention == exit_code_convention::shell && r.exit_code > 128) {
    r.signal = r.exit_code - 128;
  }
  return std::optional<exit_record>(std::move(r));
}

/// Writes EXIT_STATUS.json atomically (the form read_exit_record reads).
inline result<void> write_exit_record(std::filesystem::path const& dir, exit_record const& r) {
  boost::json::object o;
  if (r.exception)
    o["exception"] = *r.exception;
  else
    o["exit_code"] = r.exit_code;
  if (r.signal) o["signal"] = *r.signal;
  return write_json_file(dir / exit_status_file_name, o);
}

/// Reads TRIAL_TRAINING_METRICS.json into `s` (left empty when the trainer has written none).
inline result<void> read_metrics_into(workflow::trial_status& s, std::filesystem::path const& dir) {
  auto metrics = protocol::read_metrics(dir);
  if (metrics)
    s.metrics = std::move(*metrics);
  else if (metrics.error().code != errc::not_found)
    return metrics.error();
  return {};
}

/// Reads MODEL_LATENCY.json into s.measured_latency (its latency, NaN for a failed measurement;
/// left nullopt when no latency calculator has written it).
/// @returns errc::malformed_file naming the file and field for a malformed file; an I/O error
inline result<void> read_measured_latency_into(workflow::trial_status& s,
                                               std::filesystem::path const& dir) {
  auto const latency = protocol::read_model_latency(dir);
  if (latency)
    s.measured_latency = latency->latency_ms;
  else if (latency.error().code != errc::not_found)
    return latency.error();
  return {};
}

/// The status of a trial whose trainer has ended as `r` says: succeeded for exit code 0 (and no
/// exception); otherwise failed, with TRIAL_FAILURE.json's kind and message if the trainer wrote
/// one, else crashed with a message saying how it ended.
inline result<workflow::trial_status> ended_status(workflow::trial_status s,
                                                   std::filesystem::path const& dir,
                                                   exit_record const& r) {
  if (r.exit_code == 0 && !r.exception && !r.signal) {
    s.phase = workflow::trial_phase::succeeded;
    return s;
  }
  s.phase = workflow::trial_phase::failed;
  auto const f = protocol::read_failure(dir);
  if (f) {
    s.failure = f->kind;
    s.failure_message = f->message;
    return s;
  }
  if (f.error().code != errc::not_found) return f.error();
  s.failure = protocol::failure_kind::crashed;
  s.failure_message = r.exception ? "the trainer threw an exception: " + *r.exception
                      : r.signal  ? "the trainer died of signal " + std::to_string(*r.signal)
                                  : "the trainer exited with status " + std::to_string(r.exit_code);
  return s;
}

}  // namespace proxytask::exec::detail
