#pragma once
/// @file
/// local_process_executor: runs each trial's trainer as a local process (POSIX), with a
/// concurrency limit and optional GPU slots (CUDA_VISIBLE_DEVICES). Everything it knows lives in
/// files, so a new executor on the same run directory (a controller restart, in this process or
/// another) sees the same trials:
///   - <run_dir>/local_process_executor.json: {"launched": n, "queue": [launch_trial...]}, the
///     pending trials in FIFO order (started by a later observe() when a slot frees);
///   - <trial_dir>/LOCAL_TRIAL.json: {"launch_index", "launch"} written at launch;
///   - <trial_dir>/START_INTENT.json: {"intent_unix_s", "gpu_slot"?}, written atomically just
///     BEFORE the launcher is spawned;
///   - <trial_dir>/LAUNCHER_PID.json: {"pid", "gpu_slot"?}, the launcher's claim on the trial,
///     written by the launcher itself (its own $$) before it runs the trainer;
///   - <trial_dir>/PID.json: {"pid", "start_ticks"?, "gpu_slot"?, "started_unix_s"} of the
///     launcher, written by the executor right after the spawn (the richer record: start_ticks
///     guards against pid reuse);
///   - <trial_dir>/EXIT_STATUS.json: {"exit_code"} (128 + signal when the trainer died of a
///     signal), written atomically (temp file + mv) by the launcher when the trainer exits;
///   - <trial_dir>/CANCELLED.json: {"sigterm_unix_s", "sigkill_sent"}, written by cancel().
/// A trial's MODEL_LATENCY.json, written by a separate latency calculator
/// (workflow/latency_calculator.hpp), is reported as its trial_status::measured_latency.
/// The launcher is `/bin/sh -c` in its own process group: it claims the trial, runs the trainer
/// with the launch convention's argv and environment (protocol::make_launch_command), stdin from
/// /dev/null, stdout and stderr to <trial_dir>/stdout.txt and stderr.txt, waits for it (ignoring
/// the SIGTERM / SIGINT sent to its group, which reach the trainer), then writes
/// EXIT_STATUS.json.
///
/// Never two launchers for one trial. A controller killed after spawning a launcher but before
/// writing PID.json and saving the queue leaves the trial queued without PID.json; a restarted
/// executor must not start it again. Three things make sure it does not:
///   1. The claim: the launcher's first act is `ln` of a temp file to LAUNCHER_PID.json, which
///      fails when the file exists (hard links never replace a file, so this is atomic on every
///      POSIX file system with hard links; without them it falls back to test-then-mv). A
///      launcher that loses the claim exits 0 at once without running the trainer or writing
///      anything, so even two spawned launchers run the trainer once. A launcher that then finds
///      CANCELLED.json does not run the trainer and writes EXIT_STATUS.json {"exit_code": 143,
///      "signal": 15, "trainer_started": false} (a trial cancelled while it was being started).
/// The launcher ignores SIGTERM / SIGINT throughout (so a cancel cannot interrupt its own file
/// writes); the trainer runs in a subshell that restores their default action and checks
/// CANCELLED.json once more before exec'ing it, so a cancel is never lost, however early.
///   2. The pid of a trial is the claim's when it differs from PID.json's (PID.json may name a
///      launcher that lost the claim), so a restart picks up the launcher of the dead controller.
///   3. A queued trial with a START_INTENT.json younger than options.start_grace_secs and no
///      claim is being started (the launcher has not written its claim yet): it is left queued
///      (phase pending, holding its GPU slot) until its claim appears, which adopts it, or the
///      grace period ends: then it was never spawned (killed between the intent and the spawn)
///      and is started. Had a launcher spawned long before still been about to claim, (1) makes
///      the late one harmless.
///
/// Exit codes: the launcher records the trainer's status as the shell's $? gives it, 128 + N
/// for a trainer killed by signal N, which POSIX sh cannot tell apart from a trainer that exited
/// with status 128 + N (only waitpid's status can, and the shell exposes nothing else). So a
/// code above 128 is reported as "died of signal code - 128"; an "exit_code" with an explicit
/// "signal" member (not written by this launcher) is read as such.
///
/// A trial's phase: pending while queued; stopped once cancelled; else succeeded (exit 0) or
/// failed (TRIAL_FAILURE.json's kind if the trainer wrote one, else crashed) once
/// EXIT_STATUS.json exists; running while the launcher lives; failed/lost when the launcher is
/// gone without an exit status. Trials keep running when the executor goes away.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/command.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/detail/trial_files.hpp>
#include <proxytask/exec/executor.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

extern "C" char** environ;

namespace proxytask::exec {

/// How local_process_executor runs trials.
struct local_process_options {
  /// The trainer program and its own leading arguments (the launch flags are appended).
  std::vector<std::string> trainer_command;
  std::size_t max_concurrent = 1;  ///< trials running at once (> 0)
  /// When not empty, each running trial gets one of these as CUDA_VISIBLE_DEVICES, and at most
  /// gpu_slots.size() trials run at once.
  std::vector<std::string> gpu_slots = {};
  double grace_secs = 10;      ///< SIGTERM -> SIGKILL delay of cancel()
  double poll_interval_s = 5;  ///< wait_for_next_poll's sleep
  /// How long a START_INTENT.json without a launcher's claim means "being started" (see the
  /// file comment); after it the trial is started (again).
  double start_grace_secs = 5;
};

namespace detail {

inline constexpr std::string_view local_queue_file_name = "local_process_executor.json";
inline constexpr std::string_view local_trial_file_name = "LOCAL_TRIAL.json";
inline constexpr std::string_view start_intent_file_name = "START_INTENT.json";
inline constexpr std::string_view launcher_pid_file_name = "LAUNCHER_PID.json";

/// The launcher script: $1 = the trial directory, $2 = the GPU slot index or "", the rest = the
/// trainer's argv. It claims the trial (LAUNCHER_PID.json, see the file comment), runs the
/// trainer, and records its exit status.
inline constexpr char const* launcher_script =
    "d=$1; slot=$2; shift 2\n"
    // The launcher ignores SIGTERM / SIGINT from start to end, so a cancel can never kill it (or
    // the `ln`, `rm`, `mv` it runs, which inherit SIG_IGN) half-way; only the trainer gets them.
    "trap '' TERM INT\n"
    "x=\n"
    "if [ -n \"$slot\" ]; then x=\", \\\"gpu_slot\\\": $slot\"; fi\n"
    "t=\"$d/.LAUNCHER_PID.json.$$\"\n"
    "printf '{\"pid\": %d%s}\\n' $$ \"$x\" > \"$t\" || exit 125\n"
    "if ! ln \"$t\" \"$d/LAUNCHER_PID.json\" 2>/dev/null; then\n"
    "  if [ -e \"$d/LAUNCHER_PID.json\" ]; then rm -f \"$t\"; exit 0; fi\n"
    "  mv -f \"$t\" \"$d/LAUNCHER_PID.json\" || exit 125\n"
    "fi\n"
    "rm -f \"$t\"\n"
    "if [ -e \"$d/CANCELLED.json\" ]; then\n"
    "  s='{\"exit_code\": 143, \"signal\": 15, \"trainer_started\": false}'\n"
    "else\n"
    // The trainer's subshell restores the default dispositions, then looks for a cancel once
    // more: cancel() writes CANCELLED.json before it signals, so a SIGTERM that came while
    // they were still ignored is seen here, and one that comes later kills the trainer.
    "  (trap - TERM INT; if [ -e \"$d/CANCELLED.json\" ]; then exit 143; fi; exec \"$@\")\n"
    "  s=\"{\\\"exit_code\\\": $?}\"\n"
    "fi\n"
    "printf '%s\\n' \"$s\" > \"$d/EXIT_STATUS.json.tmp\" &&"
    " mv -f \"$d/EXIT_STATUS.json.tmp\" \"$d/EXIT_STATUS.json\"\n";

/// The start time (clock ticks since boot) of process `pid` from /proc, or nullopt (not Linux,
/// no such process). Guards against pid reuse.
inline std::optional<std::int64_t> process_start_ticks(pid_t pid) {
  auto const text = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto const close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::size_t pos = close + 1;
  // Fields after the command: state is field 3, starttime field 22, so skip 19 fields.
  for (int field = 0; field < 20; ++field) {
    pos = text->find_first_not_of(' ', pos);
    if (pos == std::string::npos) return std::nullopt;
    if (field == 19) break;
    pos = text->find(' ', pos);
    if (pos == std::string::npos) return std::nullopt;
  }
  auto const ticks = protocol::parse_number<std::int64_t>(
      std::string_view(*text).substr(pos, text->find(' ', pos) - pos));
  return ticks;
}

/// What PID.json holds.
struct pid_record {
  pid_t pid = 0;
  std::optional<std::int64_t> start_ticks;
  std::optional<std::size_t> gpu_slot;
};

/// What CANCELLED.json holds.
struct cancel_record {
  double sigterm_unix_s = 0;
  bool sigkill_sent = false;
};

}  // namespace detail

/// An executor that runs trials as local processes (see the file comment). Satisfies
/// exec::executor. Not thread-safe; one controller per run directory (the driver's lock).
class local_process_executor {
 public:
  using options = local_process_options;

  /// @param[in] run_dir the run directory (created when needed); trials go to run_dir/trials/
  /// @param[in] opts    how to run them
  /// @pre trainer_command not empty; max_concurrent > 0; grace_secs and poll_interval_s finite
  ///      and >= 0
  local_process_executor(std::filesystem::path run_dir, options opts)
      : run_dir_(std::move(run_dir)), options_(std::move(opts)) {
    PROXYTASK_EXPECTS(!options_.trainer_command.empty(),
                      "local_process_options::trainer_command must not be empty");
    PROXYTASK_EXPECTS(options_.max_concurrent > 0,
                      "local_process_options::max_concurrent must be positive");
    PROXYTASK_EXPECTS(std::isfinite(options_.grace_secs) && options_.grace_secs >= 0,
                      "local_process_options::grace_secs must be finite and >= 0");
    PROXYTASK_EXPECTS(std::isfinite(options_.poll_interval_s) && options_.poll_interval_s >= 0,
                      "local_process_options::poll_interval_s must be finite and >= 0");
    PROXYTASK_EXPECTS(std::isfinite(options_.start_grace_secs) && options_.start_grace_secs >= 0,
                      "local_process_options::start_grace_secs must be finite and >= 0");
  }

  std::filesystem::path trial_dir(std::string const& trial_id) const {
    return trial_directory(run_dir_, trial_id);
  }

  /// Creates the trial's directory, MODEL_SPEC.json and DESIRED_TRAINING_PCT.json (when given),
  /// then starts the trainer if a slot is free, else queues it. With resume_from, the trainer
  /// gets --resume_from=<that trial's directory>.
  /// @returns errc::invalid_argument for a bad trial id; errc::failed_precondition when the
  ///          trial exists already; errc::not_found when resume_from names no trial; the error
  ///          of a write or of the spawn
  result<void> launch(workflow::launch_trial const& l) {
    if (auto const r = detail::check_trial_id(l.trial_id); !r) return r.error();
    auto const dir = trial_dir(l.trial_id);
    std::error_code ec;
    if (std::filesystem::exists(dir / detail::local_trial_file_name, ec))
      return make_error(errc::failed_precondition,
                        "trial " + l.trial_id + " was launched already (" + dir.string() + ")");
    if (l.resume_from &&
        !std::filesystem::exists(trial_dir(*l.resume_from) / detail::local_trial_file_name, ec))
      return make_error(errc::not_found,
                        "no trial " + *l.resume_from + " to resume from in " + run_dir_.string());
    if (auto const r = detail::prepare_trial_directory(dir, l); !r) return r.error();

    auto queue = load_queue();
    if (!queue) return queue.error();
    boost::json::object record{{"launch_index", queue->launched},
                               {"launch", boost::json::value_from(l)}};
    if (auto const r = write_json_file(dir / detail::local_trial_file_name, record); !r)
      return r.error();
    ++queue->launched;
    queue->pending.push_back(l);
    if (auto const r = save_queue(*queue); !r) return r.error();
    return start_queued();
  }

  /// The statuses of all trials, in launch order; starts queued trials when slots are free and
  /// sends SIGKILL to cancelled trials still alive after grace_secs.
  result<workflow::observation> observe() {
    if (auto const r = enforce_grace(); !r) return r.error();
    if (auto const r = start_queued(); !r) return r.error();
    workflow::observation obs;
    obs.now_unix_s = detail::unix_now();
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    auto const queue = load_queue();
    if (!queue) return queue.error();
    for (auto const& id : *ids) {
      auto s = status_of(id, *queue);
      if (!s) return s.error();
      obs.trials.push_back(std::move(*s));
    }
    return obs;
  }

  /// Posts DESIRED_TRAINING_PCT.json (also to a queued trial, which reads it when it starts).
  /// @returns errc::not_found for an unknown trial; errc::invalid_argument for a negative or
  ///          non-finite pct; the error of the write
  result<void> set_desired_pct(std::string const& trial_id, double pct) {
    if (!known(trial_id))
      return make_error(errc::not_found, "no trial " + trial_id + " in " + run_dir_.string());
    if (!std::isfinite(pct) || pct < 0)
      return make_error(errc::invalid_argument, "desired pct must be finite and >= 0");
    return protocol::post_desired_pct(trial_dir(trial_id), pct);
  }

  /// Cancels a trial: a queued one leaves the queue; a running one gets SIGTERM (its process
  /// group; a launcher still starting sees CANCELLED.json instead and skips the trainer), then
  /// SIGKILL once grace_secs have passed (checked by later observe() calls). Its phase is
  /// stopped from now on. An ended trial is left as it is.
  /// @returns errc::not_found for an unknown trial; the error of a write
  result<void> cancel(std::string const& trial_id) {
    if (!known(trial_id))
      return make_error(errc::not_found, "no trial " + trial_id + " in " + run_dir_.string());
    auto const dir = trial_dir(trial_id);
    std::error_code ec;
    if (std::filesystem::exists(dir / detail::cancelled_file_name, ec) ||
        std::filesystem::exists(dir / detail::exit_status_file_name, ec))
      return {};
    auto queue = load_queue();
    if (!queue) return queue.error();
    auto const it = std::find_if(queue->pending.begin(), queue->pending.end(),
                                 [&](auto const& l) { return l.trial_id == trial_id; });
    bool const queued = it != queue->pending.end();
    auto const pid = read_pid(trial_id);
    if (!pid) return pid.error();
    if (!queued && (!pid->has_value() || !alive(**pid))) return {};  // ended (failed or lost)
    detail::cancel_record const c{detail::unix_now(), false};
    if (auto const r = write_cancel(trial_id, c); !r) return r.error();
    if (queued) {
      queue->pending.erase(it);
      return save_queue(*queue);
    }
    // Signal only a launcher that has claimed the trial: it has set its traps by then. One that
    // has not claimed it yet will find CANCELLED.json (written above) and not run the trainer;
    // a SIGTERM now could kill it before its traps, leaving no exit status.
    if (pid->has_value() && std::filesystem::exists(dir / detail::launcher_pid_file_name, ec))
      ::kill(-(*pid)->pid, SIGTERM);
    return enforce_grace();
  }

  /// Sleeps poll_interval_s.
  void wait_for_next_poll() {
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.poll_interval_s));
  }

 private:
  struct queue_state {
    std::int64_t launched = 0;
    std::vector<workflow::launch_trial> pending;
  };

  bool known(std::string const& id) const {
    std::error_code ec;
    return !id.empty() && id.find('/') == std::string::npos &&
           std::filesystem::exists(trial_dir(id) / detail::local_trial_file_name, ec);
  }

  result<queue_state> load_queue() const {
    auto const path = run_dir_ / detail::local_queue_file_name;
    queue_state q;
    auto const file = read_json_object_file(path);
    if (!file) return file.error();
    if (!*file) return q;
    boost::json::object const& o = (*file)->as_object();
    json_location const where(path.string());
    auto const launched = read_json_member(o, "launched", where, read_json_count);
    if (!launched) return launched.error();
    q.launched = *launched;
    auto const pending = read_json_member(o, "queue", where, read_json_array);
    if (!pending) return pending.error();
    for (std::size_t i = 0; i < (*pending)->size(); ++i) {
      auto l = workflow::launch_trial_from_json((**pending)[i], where / "queue" / i);
      if (!l) return l.error();
      q.pending.push_back(std::move(*l));
    }
    return q;
  }

  result<void> save_queue(queue_state const& q) const {
    std::error_code ec;
    std::filesystem::create_directories(run_dir_, ec);
    if (ec) return make_error(ec, "cannot create the run directory " + run_dir_.string());
    boost::json::array pending;
    for (auto const& l : q.pending) pending.push_back(boost::json::value_from(l));
    return write_json_file(run_dir_ / detail::local_queue_file_name,
                           boost::json::object{{"launched", q.launched}, {"queue", pending}});
  }

  /// Reads an optional JSON object file of the trial; nullopt when it does not exist.
  result<std::optional<boost::json::object>> read_object(std::string const& id,
                                                         std::string_view name) const {
    return detail::read_trial_object(trial_dir(id), name);
  }

  /// The launcher of the trial: the claim's (LAUNCHER_PID.json) when it names another process
  /// than PID.json (which then names a launcher that lost the claim), else PID.json's; nullopt
  /// when neither exists.
  result<std::optional<detail::pid_record>> read_pid(std::string const& id) const {
    auto const rich = read_pid_file(id, detail::pid_file_name);
    if (!rich) return rich.error();
    auto const claim = read_pid_file(id, detail::launcher_pid_file_name);
    if (!claim) return claim.error();
    if (*claim && (!*rich || (*rich)->pid != (*claim)->pid)) return *claim;
    return *rich;
  }

  /// A START_INTENT.json's time and GPU slot.
  struct start_intent {
    double intent_unix_s = 0;
    std::optional<std::size_t> gpu_slot;
  };

  result<std::optional<start_intent>> read_intent(std::string const& id) const {
    auto const o = read_object(id, detail::start_intent_file_name);
    if (!o) return o.error();
    if (!*o) return std::optional<start_intent>();
    json_location const where((trial_dir(id) / detail::start_intent_file_name).string());
    start_intent i;
    auto const t = read_json_member(**o, "intent_unix_s", where, read_json_finite);
    if (!t) return t.error();
    i.intent_unix_s = *t;
    if (auto const* s = (*o)->if_contains("gpu_slot")) {
      auto const slot = read_json_count(*s, where / "gpu_slot");
      if (!slot) return slot.error();
      i.gpu_slot = static_cast<std::size_t>(*slot);
    }
    return std::optional<start_intent>(i);
  }

  /// Whether the trial has no launcher yet but a start intent younger than start_grace_secs: a
  /// launcher may have been spawned that has not claimed the trial yet.
  result<std::optional<start_intent>> being_started(std::string const& id, double now) const {
    auto const intent = read_intent(id);
    if (!intent) return intent.error();
    if (*intent && now - (*intent)->intent_unix_s < options_.start_grace_secs) return *intent;
    return std::optional<start_intent>();
  }

  result<std::optional<detail::pid_record>> read_pid_file(std::string const& id,
                                                          std::string_view name) const {
    auto const o = read_object(id, name);
    if (!o) return o.error();
    if (!*o) return std::optional<detail::pid_record>();
    json_location const where((trial_dir(id) / name).string());
    detail::pid_record p;
    auto const pid = read_json_member(**o, "pid", where, read_json_count);
    if (!pid) return pid.error();
    if (*pid <= 0) return (where / "pid").fail("expected a positive pid");
    p.pid = static_cast<pid_t>(*pid);
    if (auto const* t = (*o)->if_contains("start_ticks")) {
      auto const ticks = read_json_count(*t, where / "start_ticks");
      if (!ticks) return ticks.error();
      p.start_ticks = *ticks;
    }
    if (auto const* s = (*o)->if_contains("gpu_slot")) {
      auto const slot = read_json_count(*s, where / "gpu_slot");
      if (!slot) return slot.error();
      p.gpu_slot = static_cast<std::size_t>(*slot);
    }
    return std::optional<detail::pid_record>(p);
  }

  result<std::optional<detail::cancel_record>> read_cancel(std::string const& id) const {
    auto const o = read_object(id, detail::cancelled_file_name);
    if (!o) return o.error();
    if (!*o) return std::optional<detail::cancel_record>();
    json_location const where((trial_dir(id) / detail::cancelled_file_name).string());
    detail::cancel_record c;
    auto const t = read_json_member(**o, "sigterm_unix_s", where, read_json_finite);
    if (!t) return t.error();
    c.sigterm_unix_s = *t;
    auto const k = read_json_field(**o, "sigkill_sent", where);
    if (!k) return k.error();
    if (!(*k)->is_bool()) return (where / "sigkill_sent").fail("expected a boolean");
    c.sigkill_sent = (*k)->get_bool();
    return std::optional<detail::cancel_record>(c);
  }

  result<void> write_cancel(std::string const& id, detail::cancel_record const& c) const {
    return write_json_file(trial_dir(id) / detail::cancelled_file_name,
                           boost::json::object{{"sigterm_unix_s", json_number(c.sigterm_unix_s)},
                                               {"sigkill_sent", c.sigkill_sent}});
  }

  /// Whether the launcher of `p` still runs. Reaps it when it is this process's child (a zombie
  /// would otherwise look alive); checks its start time against pid reuse.
  static bool alive(detail::pid_record const& p) {
    int status = 0;
    pid_t const r = ::waitpid(p.pid, &status, WNOHANG);
    if (r == p.pid) return false;
    if (r == 0) return true;
    if (::kill(p.pid, 0) != 0 && errno != EPERM) return false;
    if (p.start_ticks) {
      auto const now = detail::process_start_ticks(p.pid);
      if (now && *now != *p.start_ticks) return false;  // the pid was reused
    }
    return true;
  }

  result<std::vector<std::string>> trial_ids() const {
    std::vector<std::pair<std::int64_t, std::string>> found;
    std::error_code ec;
    auto const root = run_dir_ / trials_directory_name;
    if (!std::filesystem::exists(root, ec)) return std::vector<std::string>();
    for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end;
         it.increment(ec)) {
      auto const id = it->path().filename().string();
      auto const o = read_object(id, detail::local_trial_file_name);
      if (!o) return o.error();
      if (!*o) continue;
      json_location const where((it->path() / detail::local_trial_file_name).string());
      auto const index = read_json_member(**o, "launch_index", where, read_json_count);
      if (!index) return index.error();
      found.emplace_back(*index, id);
    }
    if (ec) return make_error(ec, "cannot list " + root.string());
    std::sort(found.begin(), found.end());
    std::vector<std::string> ids;
    for (auto& f : found) ids.push_back(std::move(f.second));
    return ids;
  }

  /// The trial's status from its files.
  result<workflow::trial_status> status_of(std::string const& id, queue_state const& q) const {
    namespace wf = workflow;
    auto const dir = trial_dir(id);
    wf::trial_status s;
    s.trial_id = id;
    if (auto const r = detail::read_metrics_into(s, dir); !r) return r.error();
    if (auto const r = detail::read_measured_latency_into(s, dir); !r) return r.error();

    auto const cancelled = read_cancel(id);
    if (!cancelled) return cancelled.error();
    if (*cancelled) {
      s.phase = wf::trial_phase::stopped;
      return s;
    }
    auto const exit_code = read_exit(id);
    if (!exit_code) return exit_code.error();
    if (*exit_code) return detail::ended_status(std::move(s), dir, **exit_code);
    auto const pid = read_pid(id);
    if (!pid) return pid.error();
    if (!*pid) {
      bool const queued = std::any_of(q.pending.begin(), q.pending.end(),
                                      [&](auto const& l) { return l.trial_id == id; });
      auto const starting = being_started(id, detail::unix_now());
      if (!starting) return starting.error();
      if (queued || *starting) {
        s.phase = wf::trial_phase::pending;
        return s;
      }
      s.phase = wf::trial_phase::failed;
      s.failure = protocol::failure_kind::lost;
      s.failure_message = "neither queued nor started (" + dir.string() + ")";
      return s;
    }
    if (alive(**pid)) {
      s.phase = wf::trial_phase::running;
      return s;
    }
    // It may have written its exit status between the two reads.
    auto const again = read_exit(id);
    if (!again) return again.error();
    if (*again) return detail::ended_status(std::move(s), dir, **again);
    s.phase = wf::trial_phase::failed;
    s.failure = protocol::failure_kind::lost;
    s.failure_message =
        "the launcher (pid " + std::to_string((*pid)->pid) + ") is gone without an exit status";
    return s;
  }

  result<std::optional<detail::exit_record>> read_exit(std::string const& id) const {
    return detail::read_exit_record(trial_dir(id), detail::exit_code_convention::shell);
  }

  /// SIGKILL to the cancelled trials whose grace period is over.
  result<void> enforce_grace() {
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    double const now = detail::unix_now();
    for (auto const& id : *ids) {
      auto c = read_cancel(id);
      if (!c) return c.error();
      if (!*c || (*c)->sigkill_sent || now - (*c)->sigterm_unix_s < options_.grace_secs) continue;
      auto const pid = read_pid(id);
      if (!pid) return pid.error();
      if (pid->has_value() && alive(**pid)) ::kill(-(*pid)->pid, SIGKILL);
      (*c)->sigkill_sent = true;
      if (auto const r = write_cancel(id, **c); !r) return r.error();
    }
    return {};
  }

  /// Starts queued trials while slots are free.
  result<void> start_queued() {
    auto queue = load_queue();
    if (!queue) return queue.error();
    auto const requeued = requeue_unqueued(*queue);
    if (!requeued) return requeued.error();
    if (queue->pending.empty()) return *requeued ? save_queue(*queue) : result<void>();
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    double const now = detail::unix_now();
    std::size_t running = 0;
    std::set<std::size_t> used_slots;
    for (auto const& id : *ids) {
      auto const pid = read_pid(id);
      if (!pid) return pid.error();
      if (*pid) {
        if (!alive(**pid)) continue;
        ++running;
        if ((*pid)->gpu_slot) used_slots.insert(*(*pid)->gpu_slot);
        continue;
      }
      // A launcher may have been spawned that has not claimed the trial yet: it holds a slot.
      auto const starting = being_started(id, now);
      if (!starting) return starting.error();
      if (!*starting) continue;
      ++running;
      if ((*starting)->gpu_slot) used_slots.insert(*(*starting)->gpu_slot);
    }
    bool changed = false;
    // Trials started by a launcher whose controller died before it saved the queue: adopt them.
    for (auto it = queue->pending.begin(); it != queue->pending.end();) {
      auto const started = read_pid(it->trial_id);
      if (!started) return started.error();
      if (!*started) {
        ++it;
        continue;
      }
      if (auto const r = adopt(it->trial_id, **started); !r) return r.error();
      it = queue->pending.erase(it);
      changed = true;
    }
    std::size_t limit = options_.max_concurrent;
    if (!options_.gpu_slots.empty()) limit = std::min(limit, options_.gpu_slots.size());
    for (std::size_t i = 0; i < queue->pending.size() && running < limit;) {
      auto const l = queue->pending[i];
      auto const starting = being_started(l.trial_id, now);
      if (!starting) return starting.error();
      if (*starting) {  // wait for its claim (counted as running above) or the end of the grace
        ++i;
        continue;
      }
      std::optional<std::size_t> slot;
      for (std::size_t g = 0; g < options_.gpu_slots.size() && !slot; ++g)
        if (!used_slots.contains(g)) slot = g;
      if (slot) used_slots.insert(*slot);
      if (auto const r = start(l, slot); !r) return r.error();
      ++running;
      queue->pending.erase(queue->pending.begin() + static_cast<std::ptrdiff_t>(i));
      changed = true;
    }
    if (changed || *requeued) return save_queue(*queue);
    return {};
  }

  /// Queues the trials whose launch was recorded (LOCAL_TRIAL.json) by a controller that died
  /// before it saved the queue: neither queued nor ever started (no start intent, no pid, no
  /// exit status, not cancelled). Without this they would look lost and be trained again under
  /// another id. @returns whether any was queued
  result<bool> requeue_unqueued(queue_state& queue) const {
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    bool any = false;
    for (auto const& id : *ids) {
      if (std::any_of(queue.pending.begin(), queue.pending.end(),
                      [&](auto const& l) { return l.trial_id == id; }))
        continue;
      std::error_code ec;
      auto const dir = trial_dir(id);
      bool touched = false;
      for (std::string_view const name :
           {detail::start_intent_file_name, detail::launcher_pid_file_name, detail::pid_file_name,
            detail::exit_status_file_name, detail::cancelled_file_name})
        touched = touched || std::filesystem::exists(dir / name, ec) || ec;
      if (touched) continue;
      auto const record = read_object(id, detail::local_trial_file_name);
      if (!record) return record.error();
      if (!*record) continue;
      json_location const where((dir / detail::local_trial_file_name).string());
      auto l = read_json_member(**record, "launch", where, workflow::launch_trial_from_json);
      if (!l) return l.error();
      auto const index = read_json_member(**record, "launch_index", where, read_json_count);
      if (!index) return index.error();
      queue.launched = std::max(queue.launched, *index + 1);
      queue.pending.push_back(std::move(*l));  // trial_ids() is in launch order
      any = true;
    }
    return any;
  }

  /// Completes PID.json for a trial whose launcher claimed it (LAUNCHER_PID.json) but whose
  /// controller died before writing PID.json, so that the pid-reuse guard applies from now on.
  result<void> adopt(std::string const& id, detail::pid_record const& p) {
    auto const rich = read_pid_file(id, detail::pid_file_name);
    if (!rich) return rich.error();
    if (*rich && (*rich)->pid == p.pid) return {};
    boost::json::object record{
        {"pid", p.pid}, {"started_unix_s", json_number(detail::unix_now())}, {"adopted", true}};
    if (alive(p))
      if (auto const ticks = detail::process_start_ticks(p.pid)) record["start_ticks"] = *ticks;
    if (p.gpu_slot) {
      record["gpu_slot"] = *p.gpu_slot;
      if (*p.gpu_slot < options_.gpu_slots.size())
        record["cuda_visible_devices"] = options_.gpu_slots[*p.gpu_slot];
    }
    return write_json_file(trial_dir(id) / detail::pid_file_name, record);
  }

  /// Writes START_INTENT.json, spawns the launcher of `l` and writes PID.json.
  result<void> start(workflow::launch_trial const& l, std::optional<std::size_t> slot) {
    auto const dir = trial_dir(l.trial_id);
    auto const cmd = protocol::make_launch_command(options_.trainer_command,
                                                   detail::launch_arguments_of(run_dir_, l));
    if (!cmd) return cmd.error();

    boost::json::object intent{{"intent_unix_s", json_number(detail::unix_now())}};
    if (slot) intent["gpu_slot"] = *slot;
    auto const intent_path = dir / detail::start_intent_file_name;
    if (auto const r = write_json_file(intent_path, intent); !r) return r.error();

    std::vector<std::string> argv{"/bin/sh",
                                  "-c",
                                  detail::launcher_script,
                                  "proxytask-launcher",
                                  dir.string(),
                                  slot ? std::to_string(*slot) : std::string()};
    argv.insert(argv.end(), cmd->argv.begin(), cmd->argv.end());
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view const var(*e);
      auto const name = var.substr(0, var.find('='));
      if (cmd->environment.contains(std::string(name)) || name == "PROXYTASK_RESUME_FROM" ||
          (slot && name == "CUDA_VISIBLE_DEVICES"))
        continue;
      env.emplace_back(var);
    }
    for (auto const& [k, v] : cmd->environment) env.push_back(k + "=" + v);
    if (slot) env.push_back("CUDA_VISIBLE_DEVICES=" + options_.gpu_slots[*slot]);

    std::vector<char*> argv_p, env_p;
    for (auto& a : argv) argv_p.push_back(a.data());
    argv_p.push_back(nullptr);
    for (auto& e : env) env_p.push_back(e.data());
    env_p.push_back(nullptr);

    auto const out = (dir / detail::stdout_file_name).string();
    auto const err = (dir / detail::stderr_file_name).string();
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    proxytask::detail::spawn_in_own_group(attr);  // cancel signals the whole group
    pid_t pid = 0;
    int const rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attr, argv_p.data(), env_p.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      std::error_code ignored;
      std::filesystem::remove(intent_path, ignored);  // nothing is being started
      return make_error(std::error_code(rc, std::generic_category()),
                        "cannot start the launcher of trial " + l.trial_id);
    }

    boost::json::object record{{"pid", pid}, {"started_unix_s", json_number(detail::unix_now())}};
    if (auto const ticks = detail::process_start_ticks(pid)) record["start_ticks"] = *ticks;
    if (slot) {
      record["gpu_slot"] = *slot;
      record["cuda_visible_devices"] = options_.gpu_slots[*slot];
    }
    return write_json_file(dir / detail::pid_file_name, record);
  }

  std::filesystem::path run_dir_;
  options options_;
};

static_assert(executor<local_process_executor>);

}  // namespace proxytask::exec
