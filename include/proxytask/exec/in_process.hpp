#pragma once
/// @file
/// in_process_executor: runs each trial's trainer as a C++ callable on one of the executor's
/// worker threads (max_concurrent of them; pending launches wait in a FIFO queue). The callable
/// gets what a trainer process gets from the launch convention (protocol::launch_arguments: the
/// trial directory as model_dir, MODEL_SPEC.json, the seed, resume_from's directory, the proxy
/// arguments), a std::stop_token that cancel() requests, and std::ostream& out / err writing to
/// <trial_dir>/stdout.txt and stderr.txt. It speaks the trial file protocol like any trainer
/// (protocol::trial_reporter: metrics, should_stop, TRIAL_FAILURE.json) and returns an exit code:
/// 0 succeeded, anything else failed (TRIAL_FAILURE.json's kind if it wrote one, else crashed).
/// An exception escaping it fails the trial (crashed, with its what()); it never reaches the
/// controller.
///
/// Files (shared with local_process_executor where they mean the same):
///   - <run_dir>/in_process_executor.json: {"schema_version": 1, "launches": [launch_trial...]},
///     every launch of the run in launch order, written atomically at each launch;
///   - <trial_dir>/MODEL_SPEC.json, DESIRED_TRAINING_PCT.json: written at launch;
///   - <trial_dir>/stdout.txt, stderr.txt: the callable's out and err;
///   - <trial_dir>/EXIT_STATUS.json: {"exit_code"} or {"exception": what()}, written atomically
///     when the callable returns (or throws);
///   - <trial_dir>/CANCELLED.json: {"cancelled_unix_s"}, written by cancel().
/// A trial's MODEL_LATENCY.json, written by a separate latency calculator
/// (workflow/latency_calculator.hpp), is reported as its trial_status::measured_latency.
///
/// In-process trials die with the controller. The destructor requests stop on every running
/// trial, drops the queued ones and joins the workers (so it waits for the running callables to
/// return: they must watch their stop token). A trial stopped that way writes no exit status.
/// A new in_process_executor on the same run directory (a controller restart) lists the earlier
/// trials from in_process_executor.json: those that ended with their recorded exit status (or
/// stopped, if cancelled); those that were running or queued in the earlier executor as failed
/// with failure_kind::lost, since they ran inside a process that is gone and cannot be
/// re-attached to. The workflow tools treat them like any failed trial.
///
/// A trial's phase (this executor's trials): pending while queued; running while its callable
/// runs; stopped once cancelled (at once: cancellation is cooperative, the callable may still be
/// returning); else succeeded or failed from its exit status.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/detail/trial_files.hpp>
#include <proxytask/exec/executor.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace proxytask::exec {

/// What an in-process trainer is given: what the launch convention gives a trainer process, a
/// stop token, and its output streams.
struct in_process_trial {
  std::string trial_id;
  protocol::launch_arguments args;  ///< model_dir = the trial directory, seed, resume_from ...
  std::stop_token stop;             ///< requested by cancel() and by the executor's destructor
  std::ostream& out;                ///< <trial_dir>/stdout.txt
  std::ostream& err;                ///< <trial_dir>/stderr.txt
};

/// An in-process trainer: returns the exit code (0 = ok). Called concurrently from several
/// threads (one trial each) when max_concurrent > 1.
using in_process_trainer = std::function<int(in_process_trial&)>;

/// How in_process_executor runs trials.
struct in_process_options {
  std::size_t max_concurrent = 1;  ///< worker threads, i.e. trials running at once (> 0)
  double poll_interval_s = 1;      ///< wait_for_next_poll's sleep
};

namespace detail {

inline constexpr std::string_view in_process_file_name = "in_process_executor.json";
inline constexpr int in_process_schema_version = 1;

}  // namespace detail

/// An executor that runs trials as C++ callables on worker threads (see the file comment).
/// Satisfies exec::executor. Its members are not to be called concurrently (the driver calls
/// them from one thread); one controller per run directory.
class in_process_executor {
 public:
  using options = in_process_options;

  /// @param[in] run_dir the run directory (created when needed); trials go to run_dir/trials/
  /// @param[in] trainer the callable run for each trial
  /// @param[in] opts    how to run them
  /// @pre trainer is set; max_concurrent > 0; poll_interval_s finite and >= 0
  in_process_executor(std::filesystem::path run_dir, in_process_trainer trainer, options opts = {})
      : run_dir_(std::move(run_dir)), trainer_(std::move(trainer)), options_(opts) {
    PROXYTASK_EXPECTS(static_cast<bool>(trainer_), "in_process_executor: the trainer is empty");
    PROXYTASK_EXPECTS(options_.max_concurrent > 0,
                      "in_process_options::max_concurrent must be positive");
    PROXYTASK_EXPECTS(std::isfinite(options_.poll_interval_s) && options_.poll_interval_s >= 0,
                      "in_process_options::poll_interval_s must be finite and >= 0");
    workers_.reserve(options_.max_concurrent);
    for (std::size_t i = 0; i < options_.max_concurrent; ++i)
      workers_.emplace_back([this] { work(); });
  }

  in_process_executor(in_process_executor const&) = delete;
  in_process_executor& operator=(in_process_executor const&) = delete;

  /// Requests stop on every running trial, drops the queued ones, and waits for the running
  /// callables to return (see the file comment: in-process trials die with the controller).
  ~in_process_executor() {
    {
      std::lock_guard lock(mutex_);
      shutting_down_ = true;
      queue_.clear();
      for (auto& [id, t] : trials_)
        if (t.state == run_state::running) t.stop.request_stop();
    }
    wake_.notify_all();
    workers_.clear();  // joins, before the members the workers use go
  }

  std::filesystem::path trial_dir(std::string const& trial_id) const {
    return trial_directory(run_dir_, trial_id);
  }

  /// Creates the trial's directory, MODEL_SPEC.json and DESIRED_TRAINING_PCT.json (when given),
  /// records the launch, and queues the trial (a free worker starts it at once).
  /// @returns errc::invalid_argument for a bad trial id; errc::failed_precondition when the
  ///          trial was launched already; errc::not_found when resume_from names no trial; the
  ///          error of a write or of reading in_process_executor.json
  result<void> launch(workflow::launch_trial const& l) {
    if (auto const r = load(); !r) return r.error();
    if (auto const r = detail::check_trial_id(l.trial_id); !r) return r.error();
    if (known(l.trial_id))
      return make_error(
          errc::failed_precondition,
          "trial " + l.trial_id + " was launched already (" + trial_dir(l.trial_id).string() + ")");
    if (l.resume_from && !known(*l.resume_from))
      return make_error(errc::not_found,
                        "no trial " + *l.resume_from + " to resume from in " + run_dir_.string());
    if (auto const r = detail::prepare_trial_directory(trial_dir(l.trial_id), l); !r)
      return r.error();
    launches_.push_back(l);
    if (auto const r = save(); !r) {
      launches_.pop_back();
      return r.error();
    }
    {
      std::lock_guard lock(mutex_);
      trials_.emplace(l.trial_id, trial{l});
      queue_.push_back(l.trial_id);
    }
    wake_.notify_one();
    return {};
  }

  /// The statuses of all trials of the run, in launch order (also those of an earlier executor
  /// on the run directory: see the file comment).
  /// @returns the observation; the error of reading a trial's files or in_process_executor.json,
  ///          or of a worker's write of an exit status
  result<workflow::observation> observe() {
    if (auto const r = load(); !r) return r.error();
    {
      std::lock_guard lock(mutex_);
      if (worker_error_) {
        auto e = std::move(*worker_error_);
        worker_error_.reset();
        return e;
      }
    }
    workflow::observation obs;
    obs.now_unix_s = detail::unix_now();
    for (auto const& l : launches_) {
      auto s = status_of(l.trial_id);
      if (!s) return s.error();
      obs.trials.push_back(std::move(*s));
    }
    return obs;
  }

  /// Posts DESIRED_TRAINING_PCT.json (also to a queued trial, which reads it when it starts).
  /// @returns errc::not_found for an unknown trial; errc::invalid_argument for a negative or
  ///          non-finite pct; the error of the write
  result<void> set_desired_pct(std::string const& trial_id, double pct) {
    if (auto const r = load(); !r) return r.error();
    if (!known(trial_id))
      return make_error(errc::not_found, "no trial " + trial_id + " in " + run_dir_.string());
    if (!std::isfinite(pct) || pct < 0)
      return make_error(errc::invalid_argument, "desired pct must be finite and >= 0");
    return protocol::post_desired_pct(trial_dir(trial_id), pct);
  }

  /// Cancels a trial: a queued one never starts; a running one has its stop token requested
  /// (the callable is expected to return soon). Its phase is stopped from now on. An ended trial,
  /// or one of an earlier executor, is left as it is.
  /// @returns errc::not_found for an unknown trial; the error of writing CANCELLED.json
  result<void> cancel(std::string const& trial_id) {
    if (auto const r = load(); !r) return r.error();
    if (!known(trial_id))
      return make_error(errc::not_found, "no trial " + trial_id + " in " + run_dir_.string());
    {
      std::lock_guard lock(mutex_);
      auto const it = trials_.find(trial_id);
      if (it == trials_.end() || it->second.cancelled || it->second.state == run_state::ended)
        return {};
    }
    if (auto const r = write_json_file(
            trial_dir(trial_id) / detail::cancelled_file_name,
            boost::json::object{{"cancelled_unix_s", json_number(detail::unix_now())}});
        !r)
      return r.error();
    std::lock_guard lock(mutex_);
    trial& t = trials_.at(trial_id);
    t.cancelled = true;
    t.stop.request_stop();
    queue_.erase(std::remove(queue_.begin(), queue_.end(), trial_id), queue_.end());
    return {};
  }

  /// Sleeps poll_interval_s.
  void wait_for_next_poll() {
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.poll_interval_s));
  }

 private:
  enum class run_state { queued, running, ended };

  /// A trial launched by this executor.
  struct trial {
    workflow::launch_trial launch;
    std::stop_source stop = {};
    run_state state = run_state::queued;
    bool cancelled = false;
    std::optional<detail::exit_record> exit = {};
  };

  bool known(std::string const& id) const {
    return std::any_of(launches_.begin(), launches_.end(),
                       [&](auto const& l) { return l.trial_id == id; });
  }

  /// Reads in_process_executor.json once (the launches of earlier executors on the directory).
  result<void> load() {
    if (loaded_) return {};
    auto const path = run_dir_ / detail::in_process_file_name;
    auto const file = read_json_object_file(path);
    if (!file) return file.error();
    std::vector<workflow::launch_trial> launches;
    if (*file) {
      boost::json::object const& o = (*file)->as_object();
      json_location const where(path.string());
      auto const version = read_json_member(o, "schema_version", where, read_json_int64);
      if (!version) return version.error();
      if (*version > detail::in_process_schema_version)
        return make_error(errc::failed_precondition,
                          path.string() + ": schema_version " + std::to_string(*version) +
                              " is newer than this proxytask understands (" +
                              std::to_string(detail::in_process_schema_version) + ")");
      auto const array = read_json_member(o, "launches", where, read_json_array);
      if (!array) return array.error();
      for (std::size_t i = 0; i < (*array)->size(); ++i) {
        auto l = workflow::launch_trial_from_json((**array)[i], where / "launches" / i);
        if (!l) return l.error();
        launches.push_back(std::move(*l));
      }
    }
    launches_ = std::move(launches);
    loaded_ = true;
    return {};
  }

  result<void> save() const {
    std::error_code ec;
    std::filesystem::create_directories(run_dir_, ec);
    if (ec) return make_error(ec, "cannot create the run directory " + run_dir_.string());
    boost::json::array launches;
    for (auto const& l : launches_) launches.push_back(boost::json::value_from(l));
    return write_json_file(
        run_dir_ / detail::in_process_file_name,
        boost::json::object{{"schema_version", detail::in_process_schema_version},
                            {"launches", std::move(launches)}});
  }

  result<workflow::trial_status> status_of(std::string const& id) const {
    namespace wf = workflow;
    auto const dir = trial_dir(id);
    wf::trial_status s;
    s.trial_id = id;
    // The phase first, then the metrics: a trial seen ended has written its last metrics.
    std::optional<trial> mine;
    {
      std::lock_guard lock(mutex_);
      if (auto const it = trials_.find(id); it != trials_.end()) mine = it->second;
    }
    if (auto const r = detail::read_metrics_into(s, dir); !r) return r.error();
    if (auto const r = detail::read_measured_latency_into(s, dir); !r) return r.error();
    if (mine) {
      if (mine->cancelled) {
        s.phase = wf::trial_phase::stopped;
      } else if (mine->state == run_state::queued) {
        s.phase = wf::trial_phase::pending;
      } else if (mine->state == run_state::running) {
        s.phase = wf::trial_phase::running;
      } else if (mine->exit) {
        return detail::ended_status(std::move(s), dir, *mine->exit);
      } else {  // cannot happen while this executor lives (only its destructor interrupts)
        s.phase = wf::trial_phase::failed;
        s.failure = protocol::failure_kind::lost;
        s.failure_message = "trial " + id + " was interrupted";
      }
      return s;
    }
    // A trial of an earlier executor on this run directory.
    std::error_code ec;
    if (std::filesystem::exists(dir / detail::cancelled_file_name, ec)) {
      s.phase = wf::trial_phase::stopped;
      return s;
    }
    auto const exit = detail::read_exit_record(dir, detail::exit_code_convention::plain);
    if (!exit) return exit.error();
    if (*exit) return detail::ended_status(std::move(s), dir, **exit);
    bool const started = std::filesystem::exists(dir / detail::stdout_file_name, ec);
    s.phase = wf::trial_phase::failed;
    s.failure = protocol::failure_kind::lost;
    s.failure_message = "trial " + id + " was " + (started ? "running" : "queued") +
                        " in an in-process executor that has ended (its controller exited or "
                        "died); in-process trials cannot outlive their controller";
    return s;
  }

  /// A worker: runs queued trials until the executor goes.
  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return shutting_down_ || !queue_.empty(); });
      if (shutting_down_) return;
      std::string const id = std::move(queue_.front());
      queue_.pop_front();
      trial& t = trials_.at(id);  // std::map: the reference stays valid
      t.state = run_state::running;
      workflow::launch_trial const launch = t.launch;
      std::stop_token const token = t.stop.get_token();
      lock.unlock();
      detail::exit_record const exit = run_trainer(launch, token);
      lock.lock();
      // Stopped by the destructor (not by cancel): the trial did not end on its own.
      bool const interrupted = shutting_down_ && t.stop.stop_requested() && !t.cancelled;
      std::optional<error> write_error;
      if (!interrupted) {
        lock.unlock();
        if (auto const r = detail::write_exit_record(trial_dir(id), exit); !r)
          write_error = r.error();
        lock.lock();
        t.exit = exit;
      }
      t.state = run_state::ended;
      if (write_error && !worker_error_) worker_error_ = std::move(write_error);
    }
  }

  /// Calls the trainer for one trial, with its streams open; never throws.
  detail::exit_record run_trainer(workflow::launch_trial const& l, std::stop_token token) {
    detail::exit_record exit;
    try {
      auto const dir = trial_dir(l.trial_id);
      std::ofstream out(dir / detail::stdout_file_name, std::ios::trunc);
      std::ofstream err(dir / detail::stderr_file_name, std::ios::trunc);
      if (!out || !err) {
        exit.exit_code = 1;
        exit.exception = "cannot open " + (dir / detail::stdout_file_name).string() + " and " +
                         std::string(detail::stderr_file_name) + " for writing";
        return exit;
      }
      in_process_trial trial{l.trial_id, detail::launch_arguments_of(run_dir_, l), std::move(token),
                             out, err};
      try {
        exit.exit_code = trainer_(trial);
      } catch (std::exception const& e) {
        exit.exit_code = 1;
        exit.exception = e.what();
        err << "in-process trainer: uncaught exception: " << e.what() << '\n';
      } catch (...) {
        exit.exit_code = 1;
        exit.exception = "an exception that is not a std::exception";
        err << "in-process trainer: uncaught exception (not a std::exception)\n";
      }
    } catch (std::exception const& e) {  // opening the streams, building the arguments
      exit.exit_code = 1;
      exit.exception = e.what();
    } catch (...) {
      exit.exit_code = 1;
      exit.exception = "an unknown exception";
    }
    return exit;
  }

  std::filesystem::path run_dir_;
  in_process_trainer trainer_;
  options options_;
  bool loaded_ = false;
  std::vector<workflow::launch_trial> launches_;  ///< every launch of the run, in order

  mutable std::mutex mutex_;  ///< guards everything below but workers_
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::map<std::string, trial> trials_;  ///< this executor's trials
  bool shutting_down_ = false;
  std::optional<error> worker_error_;

  std::vector<std::jthread> workers_;  ///< last: joined (by the destructor) before the rest goes
};

static_assert(executor<in_process_executor>);

}  // namespace proxytask::exec
