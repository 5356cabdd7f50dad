#pragma once
/// @file
/// latency_calculator: the seed's "on-premises latency device" job. It runs where latency matters
/// (a CPU host, an edge board) on a run directory that a controller (any tool, any executor)
/// writes, possibly at the same time, possibly through a shared or synced file system. At each
/// poll it scans <run_dir>/trials/*/ in trial-id order for trials that have a MODEL_SPEC.json and
/// no MODEL_LATENCY.json, measures each trial's model with a user-supplied measuring function,
/// and writes the trial's MODEL_LATENCY.json (protocol/latency.hpp) atomically. It writes no
/// other file. The executors report the file as trial_status::measured_latency; a tool that
/// requires latency waits for it (with a timeout that marks the trial invalid).
///
/// How a tool uses it (the model-selection tool, workflow/model_selection.hpp, with its latency
/// source set to the calculator): a trial's latency is its measured_latency; a NaN there (a
/// failed measurement) makes the trial invalid at once; a trial that has trained but has no
/// measured_latency yet is waited for, up to the tool's latency wait from when the tool saw it
/// trained, after which it counts as invalid. The tool stays pure: it sees measured_latency in
/// the observation and time in observation::now_unix_s. The user starts this calculator (or the
/// example binary proxytask-latency-calculator) on the latency device with the controller's run
/// directory, as the seed runs run_latency_calculator_local with --controller_job_id.
///
///   pt::workflow::latency_calculator calc(run_dir, [](pt::workflow::latency_request const& r)
///       -> pt::result<double> { return time_my_model_ms(r.spec); }, {.device = "pixel-8"});
///   calc.run(stop_token);        // or calc.run_once() for one pass over what is there now
///
/// Robustness:
///   - A measuring function that returns an error, a non-finite or negative value, or throws
///     gives a failed measurement (latency null, its message in "message"), never a crash; the
///     trial is not measured again (delete its MODEL_LATENCY.json to retry).
///   - A MODEL_SPEC.json that cannot be read or parsed (a foreign controller writing it in place,
///     a sync in progress) is retried at the next polls; after spec_read_attempts consecutive
///     failures the trial gets a failed measurement whose message names the file and field.
///   - A trial without MODEL_SPEC.json is skipped (its directory is being created).
///   - The trial's launch (proxy arguments such as a model scale, which change the model the
///     trial trains) comes from the executor's record when there is one: the local-process
///     executor's <trial_dir>/LOCAL_TRIAL.json, or the in-process executor's
///     <run_dir>/in_process_executor.json. Executors write that record just after MODEL_SPEC.json,
///     so a trial with no record whose MODEL_SPEC.json is younger than settle_s waits for the
///     next poll; older ones are measured without a launch (request.launch empty).
///   - Two calculators on one run directory do no harm (the writes are atomic and a trial whose
///     file appears meanwhile is skipped) but may measure a trial twice: run one per run directory.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/executor.hpp>
#include <proxytask/exec/in_process.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/latency.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/signals.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::workflow {

/// What the measuring function is given for one trial.
struct latency_request {
  std::string trial_id;
  std::filesystem::path trial_dir;  ///< <run_dir>/trials/<trial_id>
  std::filesystem::path run_dir;
  protocol::model_spec spec;  ///< the trial's MODEL_SPEC.json
  /// The launch as the executor recorded it (seed, proxy arguments such as model_scale), when
  /// the run's executor keeps such a record (see the file comment); empty otherwise.
  std::optional<launch_trial> launch;
};

/// Measures the latency of a request's model, in milliseconds (finite, >= 0). An error or an
/// exception is recorded as a failed measurement with its message.
using latency_measure = std::function<result<double>(latency_request const&)>;

/// How a latency_calculator runs.
struct latency_calculator_options {
  double poll_interval_s = 5;  ///< run()'s wait between passes (finite, >= 0)
  std::string device;          ///< written as each file's "device"
  /// Consecutive passes a MODEL_SPEC.json (or the executor's launch record) may fail to read or
  /// parse before the trial gets a failed measurement naming the file (>= 1).
  int spec_read_attempts = 3;
  /// A MODEL_SPEC.json without a launch record younger than this waits (seconds, >= 0).
  double settle_s = 1;
  /// Called after each MODEL_LATENCY.json is written (for progress lines); may be empty.
  std::function<void(std::string const& trial_id, protocol::model_latency const&)> on_written;
  /// The clock of "measured_unix_s".
  std::function<double()> clock = protocol::unix_now;
};

/// What one pass did, each list in trial-id order.
struct latency_pass {
  std::vector<std::string> measured;  ///< written with a latency
  std::vector<std::string> failed;    ///< written as a failed measurement
  std::vector<std::string> waiting;   ///< to retry at the next pass (spec unreadable, unsettled)

  void append(latency_pass const& other) {
    measured.insert(measured.end(), other.measured.begin(), other.measured.end());
    failed.insert(failed.end(), other.failed.begin(), other.failed.end());
    waiting = other.waiting;
  }
};

namespace detail {

/// The launch of `trial_id` as an executor recorded it: nullopt when there is no record; an
/// error when a record exists but is malformed.
inline result<std::optional<launch_trial>> find_recorded_launch(
    std::filesystem::path const& run_dir, std::string const& trial_id) {
  auto const trial_dir = exec::trial_directory(run_dir, trial_id);
  {  // the local-process executor: <trial_dir>/LOCAL_TRIAL.json {"launch_index", "launch"}
    auto const path = trial_dir / exec::detail::local_trial_file_name;
    auto const file = read_json_object_file(path);
    if (!file) return file.error();
    if (*file) {
      auto l = read_json_member((*file)->as_object(), "launch", json_location(path.string()),
                                launch_trial_from_json);
      if (!l) return l.error();
      return std::optional<launch_trial>(std::move(*l));
    }
  }
  // the in-process executor: <run_dir>/in_process_executor.json {"launches": [...]}
  auto const path = run_dir / exec::detail::in_process_file_name;
  auto const file = read_json_object_file(path);
  if (!file) return file.error();
  if (!*file) return std::optional<launch_trial>();
  json_location const where(path.string());
  auto const launches = read_json_member((*file)->as_object(), "launches", where, read_json_array);
  if (!launches) return launches.error();
  for (std::size_t i = 0; i < (*launches)->size(); ++i) {
    auto l = launch_trial_from_json((**launches)[i], where / "launches" / i);
    if (!l) return l.error();
    if (l->trial_id == trial_id) return std::optional<launch_trial>(std::move(*l));
  }
  return std::optional<launch_trial>();
}

}  // namespace detail

/// Measures each new trial's model and writes its MODEL_LATENCY.json (see the file comment).
/// Its members are not to be called concurrently.
class latency_calculator {
 public:
  using options = latency_calculator_options;

  /// @param[in] run_dir the run directory the controller writes (its trials/ may not exist yet)
  /// @param[in] measure the measuring function
  /// @param[in] opts    how to run
  /// @pre measure is set; poll_interval_s and settle_s finite and >= 0; spec_read_attempts >= 1;
  ///      clock is set
  latency_calculator(std::filesystem::path run_dir, latency_measure measure, options opts = {})
      : run_dir_(std::move(run_dir)), measure_(std::move(measure)), options_(std::move(opts)) {
    PROXYTASK_EXPECTS(static_cast<bool>(measure_), "latency_calculator: the measure is empty");
    PROXYTASK_EXPECTS(std::isfinite(options_.poll_interval_s) && options_.poll_interval_s >= 0,
                      "latency_calculator_options::poll_interval_s must be finite and >= 0");
    PROXYTASK_EXPECTS(std::isfinite(options_.settle_s) && options_.settle_s >= 0,
                      "latency_calculator_options::settle_s must be finite and >= 0");
    PROXYTASK_EXPECTS(options_.spec_read_attempts >= 1,
                      "latency_calculator_options::spec_read_attempts must be >= 1");
    PROXYTASK_EXPECTS(static_cast<bool>(options_.clock),
                      "latency_calculator_options::clock is empty");
  }

  std::filesystem::path const& run_dir() const noexcept { return run_dir_; }

  /// One pass: measures every trial that has a MODEL_SPEC.json and no MODEL_LATENCY.json, in
  /// trial-id order (stopping early, between two trials, when `stop` is requested).
  /// @returns what it did; the error of listing the trials or of writing a MODEL_LATENCY.json
  result<latency_pass> poll(std::stop_token const& stop = {}) {
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    latency_pass pass;
    for (auto const& id : *ids) {
      if (stop.stop_requested()) break;
      auto const r = visit(id, pass);
      if (!r) return r.error();
    }
    return pass;
  }

  /// Passes until no trial waits (a spec being written gets its spec_read_attempts passes, an
  /// unsettled one its settle_s), `retry_s` apart: every trial there is now, measured once.
  /// @returns what the passes did (waiting: those left when stop was requested); the first error
  result<latency_pass> run_once(std::stop_token stop = {}, double retry_s = 0.1) {
    latency_pass all;
    for (;;) {
      auto const pass = poll(stop);
      if (!pass) return pass.error();
      all.append(*pass);
      if (pass->waiting.empty() || stop.stop_requested()) return all;
      if (!sleep(stop, retry_s)) return all;
    }
  }

  /// Passes every poll_interval_s until `stop` is requested (checked between trials too, never
  /// during a measurement).
  /// @returns ok when stopped; the first error of a pass
  result<void> run(std::stop_token stop) {
    while (!stop.stop_requested()) {
      auto const pass = poll(stop);
      if (!pass) return pass.error();
      if (!sleep(stop, options_.poll_interval_s)) break;
    }
    return {};
  }

 private:
  /// Sleeps `seconds` unless stop is requested first; returns false when it was.
  static bool sleep(std::stop_token const& stop, double seconds) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, std::chrono::duration<double>(seconds), [] { return false; });
    return !stop.stop_requested();
  }

  /// The directories under <run_dir>/trials/, sorted (none when it does not exist yet).
  result<std::vector<std::string>> trial_ids() const {
    namespace fs = std::filesystem;
    auto const root = run_dir_ / exec::trials_directory_name;
    std::error_code ec;
    std::vector<std::string> ids;
    if (!fs::exists(root, ec)) {
      if (ec) return make_error(ec, "cannot read " + root.string());
      return ids;
    }
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_directory(type_ec)) ids.push_back(it->path().filename().string());
    }
    if (ec) return make_error(ec, "cannot list " + root.string());
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  /// Whether the trial's MODEL_LATENCY.json exists.
  static result<bool> has_latency(std::filesystem::path const& dir) {
    std::error_code ec;
    bool const exists = std::filesystem::exists(dir / protocol::model_latency_file_name, ec);
    if (ec)
      return make_error(ec,
                        "cannot look for " + (dir / protocol::model_latency_file_name).string());
    return exists;
  }

  /// Whether the file is younger than settle_s (an unreadable time counts as old).
  bool unsettled(std::filesystem::path const& file) const {
    std::error_code ec;
    auto const written = std::filesystem::last_write_time(file, ec);
    if (ec) return false;
    auto const age = std::chrono::file_clock::now() - written;
    return age < std::chrono::duration<double>(options_.settle_s);
  }

  /// A read failure of a trial's spec or launch record: wait, or give up after the attempts.
  result<void> read_failed(std::string const& id, std::filesystem::path const& dir, error const& e,
                           latency_pass& pass) {
    if (++read_failures_[id] < options_.spec_read_attempts) {
      pass.waiting.push_back(id);
      return {};
    }
    read_failures_.erase(id);
    return record(id, dir, std::numeric_limits<double>::quiet_NaN(), e.message(), pass);
  }

  /// Measures trial `id` if it is due.
  result<void> visit(std::string const& id, latency_pass& pass) {
    auto const dir = exec::trial_directory(run_dir_, id);
    auto const done = has_latency(dir);
    if (!done) return done.error();
    if (*done) {
      read_failures_.erase(id);
      return {};
    }
    auto spec = protocol::detail::read_protocol_file(dir / protocol::model_spec_file_name,
                                                     protocol::parse_model_spec);
    if (!spec) {
      if (spec.error().code == errc::not_found) return {};  // the directory is being made
      return read_failed(id, dir, spec.error(), pass);
    }
    auto launch = detail::find_recorded_launch(run_dir_, id);
    if (!launch) return read_failed(id, dir, launch.error(), pass);
    if (!*launch && unsettled(dir / protocol::model_spec_file_name)) {
      pass.waiting.push_back(id);
      return {};
    }
    read_failures_.erase(id);

    latency_request const request{id, dir, run_dir_, std::move(*spec), std::move(*launch)};
    double latency = std::numeric_limits<double>::quiet_NaN();
    std::string message;
    try {
      auto const measured = measure_(request);
      if (!measured) {
        message = measured.error().message();
      } else if (!std::isfinite(*measured) || *measured < 0) {
        message = "the measuring function returned " + std::to_string(*measured) +
                  ", not a latency in milliseconds";
      } else {
        latency = *measured;
      }
    } catch (std::exception const& e) {
      message = std::string("the measuring function threw: ") + e.what();
    } catch (...) {
      message = "the measuring function threw an exception that is not a std::exception";
    }
    return record(id, dir, latency, std::move(message), pass);
  }

  /// Writes the trial's MODEL_LATENCY.json, unless one appeared meanwhile.
  result<void> record(std::string const& id, std::filesystem::path const& dir, double latency,
                      std::string message, latency_pass& pass) {
    auto const done = has_latency(dir);
    if (!done) return done.error();
    if (*done) return {};
    protocol::model_latency m;
    m.latency_ms = latency;
    m.message = std::move(message);
    m.device = options_.device;
    double const now = options_.clock();
    m.measured_unix_s = std::isfinite(now) ? now : 0;
    if (auto const r = protocol::post_model_latency(dir, m); !r) return r.error();
    (m.ok() ? pass.measured : pass.failed).push_back(id);
    if (options_.on_written) options_.on_written(id, m);
    return {};
  }

  std::filesystem::path run_dir_;
  latency_measure measure_;
  options options_;
  std::map<std::string, int> read_failures_;  ///< consecutive failed reads, per trial
};

}  // namespace proxytask::workflow
