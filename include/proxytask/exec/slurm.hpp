#pragma once
/// @file
/// slurm_executor: runs each trial's trainer as a Slurm batch job (sbatch), one driver step's
/// launches as one job array (a step with one launch: a plain job). The client commands (sbatch,
/// squeue, scontrol, scancel) run as child processes that inherit the environment (SLURM_CONF);
/// sacct is not used, since many clusters (and the test cluster) have no accounting storage.
/// Everything the executor knows lives in files, so a new executor on the same run directory (a
/// controller restart, in this process or another) sees the same trials and the same jobs:
///   - <run_dir>/slurm_executor.json: {"schema_version", "token", "launched", "submissions",
///     "queue": [trial_id...]}: the launched trials not yet submitted, in launch order (submitted
///     by the next observe()), the number of sbatch submissions made (each gets the job name
///     "proxytask-<token>-<n>", unique: the random token is drawn once per run directory);
///   - <trial_dir>/SLURM_TRIAL.json: {"launch_index", "launch"}, written at launch;
///   - <trial_dir>/SLURM_JOB.json: {"job_id": "123" | "123_4" | null, "submissions":
///     [{"job_name", "array_task"?, "intent_unix_s", "job_id"?, "adopted"?}]}: each submission's
///     intent is appended (job_id null) BEFORE sbatch runs, and its job id recorded after;
///   - <trial_dir>/SLURM_TRIAL.sh: the trial's job script (below), rewritten at each submission;
///   - <trial_dir>/SLURM_JOB_STARTED.json: {"job_id", "job_name", "array_task"?,
///     "restart_count", "host"}, written (atomically) by the job script when a run starts;
///   - <trial_dir>/EXIT_STATUS.json: {"exit_code", "job_id", "restart_count"} (128 + signal when
///     the trainer died of a signal), written atomically (temp file + mv) by the job script when
///     the trainer exits;
///   - <trial_dir>/SLURM_END.json: {"job_id", "state", "exit_code", "reason", "restarts",
///     "seen_unix_s"}: the job's end as Slurm reported it the first time observe() saw it, so
///     that a job Slurm has forgotten (MinJobAge) keeps its end;
///   - <trial_dir>/CANCELLED.json: {"cancel_unix_s"}, written by cancel() before scancel;
///   - <run_dir>/slurm/<job_name>.sbatch, <job_name>.trials: a submission's batch script and its
///     list of trial directories (array task i runs line i + 1); <job_name>.<id>.out / .err:
///     Slurm's own output of the batch script (the trainer's goes to the trial's stdout.txt and
///     stderr.txt, appended, so a requeued run adds to them).
/// A trial's MODEL_LATENCY.json, written by a separate latency calculator
/// (workflow/latency_calculator.hpp), is reported as its trial_status::measured_latency.
///
/// The run directory must be on a file system that the compute nodes share with the
/// controller, at the same path: the job scripts read the list files and the trial directories,
/// the trainers write their metrics there, and the executor reads them back.
///
/// The job script of a trial (run by the batch script of its submission) exits at once when the
/// trial is cancelled (CANCELLED.json) or when $SLURM_JOB_NAME is not the job name its current
/// SLURM_TRIAL.sh expects (a superseded submission); otherwise it removes a stale
/// EXIT_STATUS.json, writes SLURM_JOB_STARTED.json, runs the trainer with the launch
/// convention's argv and environment (protocol::make_launch_command; cwd = the trial
/// directory; stdin /dev/null), ignoring SIGTERM / SIGINT itself (the trainer gets them), then
/// writes EXIT_STATUS.json and exits with the trainer's status (so Slurm's state agrees).
///
/// Never a trial submitted twice. The driver launches a trial once (its journal); launch()
/// only queues it. Submission writes the intent (the job name, and the array task index) into
/// SLURM_JOB.json before sbatch, and the job id after; the queue entry goes once the id is
/// recorded. A controller killed in between leaves an intent without a job id; a restarted
/// executor looks the job up before submitting again: by name (`squeue -h -r -t all --name=NAME`,
/// which lists finished jobs Slurm still remembers too) and by the trial's
/// SLURM_JOB_STARTED.json (same job name). Found: the job is adopted (its id recorded). Not found
/// while the intent is younger than slurm_submit_grace_s (an sbatch of the dead controller may
/// still be under way): the trial stays pending. Not found after that: it is submitted again,
/// under a new job name, and a late job of the old submission finds its name superseded and
/// does nothing.
///
/// A trial's phase: stopped once cancelled (CANCELLED.json); pending while queued or while its
/// intent is unresolved; otherwise from Slurm's JobState of its current job (one squeue call
/// per poll for all of them; `scontrol -o show job ID` for the ExitCode and Reason of those that
/// ended, and for the ones squeue no longer lists):
///   PENDING, CONFIGURING, REQUEUED, REQUEUE_FED, REQUEUE_HOLD, RESV_DEL_HOLD, SPECIAL_EXIT,
///   RESIZING -> pending; RUNNING, COMPLETING, SUSPENDED, STOPPED, SIGNALING, STAGE_OUT (and
///   states this code does not know) -> running; COMPLETED -> from EXIT_STATUS.json
///   (detail::ended_status: succeeded, or failed with TRIAL_FAILURE.json's kind or crashed);
///   FAILED -> failed (TRIAL_FAILURE.json's kind, else crashed; Slurm's ExitCode in the message);
///   OUT_OF_MEMORY -> oom; TIMEOUT, DEADLINE -> timed_out; CANCELLED (not by cancel()) ->
///   cancelled; NODE_FAIL, BOOT_FAIL -> node_failed; PREEMPTED -> preempted; REVOKED -> lost.
///   A job that ended PREEMPTED or NODE_FAIL is submitted again (max_resubmits times at most)
///   and the trial is pending / running again under its new job. A job Slurm no longer knows
///   with no SLURM_END.json: from EXIT_STATUS.json when it is that job's, else failed/lost.
///
/// Requeue: jobs are submitted with --requeue, so a job Slurm requeues (scontrol requeue, a
/// preemption with PreemptMode=REQUEUE, a node failure) runs the same script again in the same
/// trial directory, with SLURM_RESTART_COUNT set: a trainer that resumes from its checkpoint
/// there (the reference and example trainers do) continues. The script removes the previous
/// run's EXIT_STATUS.json first, and EXIT_STATUS.json records the job id and restart count,
/// which must match the job's and Slurm's Restarts: a run that ended before the script wrote
/// anything (slurmd refusing to relaunch a job within a second of killing it, for one) is not
/// given the previous run's exit status. Note: Slurm holds a requeued job (Reason=BeginTime)
/// for about two minutes (the credential lifetime) before it runs again.

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

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace proxytask::exec {

/// How slurm_executor submits trials.
struct slurm_options {
  /// The trainer program and its leading arguments (the launch convention's flags are
  /// appended, as local_process does: protocol::make_launch_command).
  std::vector<std::string> trainer_command;
  std::string partition, account, qos;       ///< --partition/--account/--qos; empty: the default
  std::optional<std::int64_t> time_minutes;  ///< --time (Slurm counts whole minutes)
  std::int64_t cpus_per_task = 1;            ///< --cpus-per-task
  std::string gpus;                          ///< --gpus=<value> (e.g. "1", "a100:1"); empty: none
  std::string mem;                           ///< --mem=<value>; empty: the cluster's default
  std::vector<std::string> extra_args;       ///< more sbatch flags, passed through as they are
  bool job_arrays = true;  ///< the launches of one driver step go out as one job array
  /// A trial ended PREEMPTED or NODE_FAIL is submitted again (it resumes from its checkpoint),
  /// at most this many times.
  std::size_t max_resubmits = 3;
  double poll_interval_s = 10;  ///< wait_for_next_poll's sleep
};

namespace detail {

inline constexpr std::string_view slurm_queue_file_name = "slurm_executor.json";
inline constexpr std::string_view slurm_trial_file_name = "SLURM_TRIAL.json";
inline constexpr std::string_view slurm_job_file_name = "SLURM_JOB.json";
inline constexpr std::string_view slurm_job_started_file_name = "SLURM_JOB_STARTED.json";
inline constexpr std::string_view slurm_end_file_name = "SLURM_END.json";
inline constexpr std::string_view slurm_trial_script_name = "SLURM_TRIAL.sh";
inline constexpr std::string_view slurm_folder_name = "slurm";
inline constexpr int slurm_queue_schema_version = 1;
/// How long an unresolved submission intent (no job id, no job of that name) means "an sbatch
/// may still be under way" rather than "sbatch never ran" (see the file comment).
inline constexpr double slurm_submit_grace_s = 30;
/// A client command still running after this long is killed (and the call fails).
inline constexpr double slurm_command_timeout_s = 300;

using proxytask::detail::command_output;

/// Runs a Slurm client command (core/command.hpp) and captures its output; a command still running
/// after `timeout_s` is killed, and that is an error.
/// @returns its output; an error naming the command when it cannot be started or ran too long
inline result<command_output> run_command(std::vector<std::string> const& argv,
                                          double timeout_s = slurm_command_timeout_s) {
  std::string const what = "`" + proxytask::detail::command_text(argv) + "`";
  auto o = proxytask::detail::run_command(argv, timeout_s, what);
  if (o && o->timed_out)
    return make_error(errc::failed_precondition,
                      what + ": killed after running " + std::to_string(timeout_s) + " s");
  return o;
}

/// A text without its trailing newlines and spaces.
inline std::string trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.remove_suffix(1);
  while (!text.empty() && (text.front() == '\n' || text.front() == ' ')) text.remove_prefix(1);
  return std::string(text);
}

/// Runs a Slurm client command.
/// @returns its stdout; an error naming the command, its exit status and its stderr when it
///          fails (errc::failed_precondition), or when it cannot be run
inline result<std::string> slurm_command(std::vector<std::string> const& argv) {
  auto const o = run_command(argv);
  if (!o) return o.error();
  if (o->exit_status != 0) {
    std::string const err = trimmed(o->err);
    return make_error(errc::failed_precondition,
                      "`" + proxytask::detail::command_text(argv) + "` exited with status " +
                          std::to_string(o->exit_status) +
                          (err.empty() ? std::string("; no stderr") : "; stderr: " + err));
  }
  return o->out;
}

/// `s` quoted for a POSIX shell.
inline std::string sh_quote(std::string_view s) {
  std::string q = "'";
  for (char const c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

/// What Slurm's JobState means for a trial.
enum class slurm_state_class { pending, running, ended };

inline slurm_state_class classify_slurm_state(std::string_view state) {
  for (std::string_view const s : {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED",
                                   "REQUEUE_HOLD", "RESV_DEL_HOLD", "SPECIAL_EXIT", "RESIZING"})
    if (state == s) return slurm_state_class::pending;
  for (std::string_view const s : {"COMPLETED", "FAILED", "OUT_OF_MEMORY", "TIMEOUT", "DEADLINE",
                                   "NODE_FAIL", "PREEMPTED", "CANCELLED", "BOOT_FAIL", "REVOKED"})
    if (state == s) return slurm_state_class::ended;
  return slurm_state_class::running;  // RUNNING, COMPLETING, SUSPENDED, ... and unknown ones
}

/// The value of `Key=` in one line of `scontrol -o show job` (up to the next space), or "".
inline std::string scontrol_field(std::string_view line, std::string_view key) {
  std::string const needle = std::string(key) + "=";
  std::size_t pos = 0;
  while ((pos = line.find(needle, pos)) != std::string_view::npos) {
    if (pos == 0 || line[pos - 1] == ' ') {
      auto const begin = pos + needle.size();
      auto const end = line.find_first_of(" \n", begin);
      return std::string(line.substr(begin, end == std::string_view::npos ? end : end - begin));
    }
    pos += needle.size();
  }
  return {};
}

/// One submission of a trial (an element of SLURM_JOB.json's "submissions").
struct slurm_submission {
  std::string job_name;
  std::optional<std::int64_t> array_task;
  double intent_unix_s = 0;
  std::optional<std::string> job_id;  ///< "123" or "123_4"; nullopt while unresolved
  bool adopted = false;               ///< found by a restarted executor, not recorded by sbatch's
};

/// How a job ended (SLURM_END.json).
struct slurm_end {
  std::string job_id;
  std::string state;
  std::string exit_code;  ///< Slurm's "status:signal"
  std::string reason;
  std::optional<std::int64_t> restarts;  ///< Slurm's Restarts: how often the job was requeued
};

/// The batch script of a submission: picks its trial (line SLURM_ARRAY_TASK_ID + 1 of the list
/// file; line 1 outside an array) and runs that trial's job script.
inline std::string slurm_batch_script(std::filesystem::path const& list_file) {
  return "#!/bin/sh\n"
         "# proxytask slurm_executor: one submission; its trials are listed in " +
         list_file.string() +
         "\n"
         "i=${SLURM_ARRAY_TASK_ID:-0}\n"
         "d=$(sed -n \"$((i + 1))p\" " +
         sh_quote(list_file.string()) +
         ")\n"
         "if [ -z \"$d\" ]; then echo \"proxytask: no trial for task $i\" >&2; exit 125; fi\n"
         "exec /bin/sh \"$d/" +
         std::string(slurm_trial_script_name) + "\"\n";
}

/// The job script of a trial (see the file comment): `job_name` is the submission it belongs
/// to; `cmd` the trainer's argv and environment.
inline std::string slurm_trial_script(std::filesystem::path const& dir, std::string const& job_name,
                                      protocol::launch_command const& cmd) {
  std::string s =
      "#!/bin/sh\n"
      "# proxytask slurm_executor: the job script of one trial (rewritten at each submission)\n"
      "cd " +
      sh_quote(dir.string()) +
      " || exit 125\n"
      // A job of a superseded submission (a resubmission happened) or of a cancelled trial does
      // nothing and writes nothing.
      "if [ \"$SLURM_JOB_NAME\" != " +
      sh_quote(job_name) +
      " ]; then echo \"proxytask: job $SLURM_JOB_NAME superseded\" >&2; exit 0; fi\n"
      "if [ -e CANCELLED.json ]; then exit 0; fi\n"
      // The script ignores SIGTERM / SIGINT (a cancel, a time limit, a requeue), so it records
      // the trainer's end; only the trainer gets them. Slurm's SIGKILL ends both after KillWait.
      "trap '' TERM INT\n"
      "rm -f EXIT_STATUS.json\n"
      "rc=${SLURM_RESTART_COUNT:-0}\n"
      "if [ -n \"$SLURM_ARRAY_TASK_ID\" ]; then\n"
      "  id=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"; a=\", \\\"array_task\\\": "
      "$SLURM_ARRAY_TASK_ID\"\n"
      "else\n"
      "  id=$SLURM_JOB_ID; a=\n"
      "fi\n"
      "t=.SLURM_JOB_STARTED.json.$$\n"
      "printf '{\"job_id\": \"%s\", \"job_name\": \"%s\"%s, \"restart_count\": %s, \"host\": "
      "\"%s\"}\\n' \"$id\" \"$SLURM_JOB_NAME\" \"$a\" \"$rc\" \"$(hostname)\" > \"$t\" && mv -f "
      "\"$t\" SLURM_JOB_STARTED.json\n"
      "unset PROXYTASK_RESUME_FROM\n";
  for (auto const& [k, v] : cmd.environment) s += "export " + k + "=" + sh_quote(v) + "\n";
  s += "(trap - TERM INT; if [ -e CANCELLED.json ]; then exit 143; fi; exec";
  for (auto const& a : cmd.argv) s += " " + sh_quote(a);
  s += ") < /dev/null >> stdout.txt 2>> stderr.txt\n"
       "s=$?\n"
       "printf '{\"exit_code\": %d, \"job_id\": \"%s\", \"restart_count\": %s}\\n' \"$s\" \"$id\" "
       "\"$rc\" > EXIT_STATUS.json.tmp && mv -f EXIT_STATUS.json.tmp EXIT_STATUS.json\n"
       "exit $s\n";
  return s;
}

}  // namespace detail

/// An executor that runs trials as Slurm batch jobs (see the file comment). Satisfies
/// exec::executor. Not thread-safe; one controller per run directory (the driver's lock).
class slurm_executor {
 public:
  using options = slurm_options;

  /// @param[in] run_dir the run directory (created when needed), on a file system the compute
  ///                    nodes share; trials go to run_dir/trials/
  /// @param[in] opts    how to submit them
  /// @pre trainer_command not empty; cpus_per_task > 0; time_minutes > 0 when given;
  ///      poll_interval_s finite and >= 0
  slurm_executor(std::filesystem::path run_dir, options opts)
      : run_dir_(std::filesystem::absolute(run_dir)), options_(std::move(opts)) {
    PROXYTASK_EXPECTS(!options_.trainer_command.empty(),
                      "slurm_options::trainer_command must not be empty");
    PROXYTASK_EXPECTS(options_.cpus_per_task > 0, "slurm_options::cpus_per_task must be positive");
    PROXYTASK_EXPECTS(!options_.time_minutes || *options_.time_minutes > 0,
                      "slurm_options::time_minutes must be positive");
    PROXYTASK_EXPECTS(std::isfinite(options_.poll_interval_s) && options_.poll_interval_s >= 0,
                      "slurm_options::poll_interval_s must be finite and >= 0");
  }

  std::filesystem::path trial_dir(std::string const& trial_id) const {
    return trial_directory(run_dir_, trial_id);
  }

  /// Creates the trial's directory, MODEL_SPEC.json and DESIRED_TRAINING_PCT.json (when given),
  /// records the trial and queues it; the next observe() submits the queue. With resume_from,
  /// the trainer gets --resume_from=<that trial's directory>.
  /// @returns errc::invalid_argument for a bad trial id (also one with a newline or a control
  ///          character); errc::failed_precondition when the trial exists already;
  ///          errc::not_found when resume_from names no trial; the error of a write
  result<void> launch(workflow::launch_trial const& l) {
    if (auto const r = detail::check_trial_id(l.trial_id); !r) return r.error();
    for (char const c : l.trial_id)
      if (static_cast<unsigned char>(c) < 0x20)
        return make_error(errc::invalid_argument,
                          "bad trial id \"" + l.trial_id + "\" (a control character)");
    auto const dir = trial_dir(l.trial_id);
    std::error_code ec;
    if (std::filesystem::exists(dir / detail::slurm_trial_file_name, ec))
      return make_error(errc::failed_precondition,
                        "trial " + l.trial_id + " was launched already (" + dir.string() + ")");
    if (l.resume_from && !known(*l.resume_from))
      return make_error(errc::not_found,
                        "no trial " + *l.resume_from + " to resume from in " + run_dir_.string());
    // The launch command must be valid before anything is recorded.
    auto const cmd = protocol::make_launch_command(options_.trainer_command,
                                                   detail::launch_arguments_of(run_dir_, l));
    if (!cmd) return cmd.error();
    if (auto const r = detail::prepare_trial_directory(dir, l); !r) return r.error();

    auto queue = load_queue();
    if (!queue) return queue.error();
    boost::json::object record{{"launch_index", queue->launched},
                               {"launch", boost::json::value_from(l)}};
    if (auto const r = write_json_file(dir / detail::slurm_trial_file_name, record); !r)
      return r.error();
    ++queue->launched;
    queue->pending.push_back(l.trial_id);
    return save_queue(*queue);
  }

  /// Submits the queued trials (one job array, or one job each), then the statuses of all
  /// trials, in launch order.
  /// @returns the observation; the error of a Slurm command (naming it, its exit status and its
  ///          stderr) or of a file
  result<workflow::observation> observe() {
    if (auto const r = submit_queued(); !r) return r.error();
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    auto const queue = load_queue();
    if (!queue) return queue.error();
    auto const states = slurm_states(*ids);
    if (!states) return states.error();

    workflow::observation obs;
    obs.now_unix_s = detail::unix_now();
    std::vector<std::string> resubmit;
    for (auto const& id : *ids) {
      auto s = status_of(id, *queue, *states, resubmit);
      if (!s) return s.error();
      obs.trials.push_back(std::move(*s));
    }
    if (!resubmit.empty()) {
      // Preempted or failed nodes: a new job each (one array when job_arrays); the trials were
      // reported pending.
      auto q = load_queue();
      if (!q) return q.error();
      if (auto const r = submit_group(*q, resubmit); !r) return r.error();
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

  /// Cancels a trial: CANCELLED.json first (its phase is stopped from now on, and a job that
  /// has not started yet will not run the trainer), then scancel of its job; a queued trial not
  /// yet submitted just leaves the queue. An ended trial is left as it is.
  /// @returns errc::not_found for an unknown trial; the error of a write or of scancel
  result<void> cancel(std::string const& trial_id) {
    if (!known(trial_id))
      return make_error(errc::not_found, "no trial " + trial_id + " in " + run_dir_.string());
    auto const dir = trial_dir(trial_id);
    std::error_code ec;
    if (std::filesystem::exists(dir / detail::cancelled_file_name, ec)) return {};
    auto const job = read_job(trial_id);
    if (!job) return job.error();
    auto const current = job->empty() ? std::optional<detail::slurm_submission>() : job->back();
    if (current && current->job_id) {
      auto const end = read_end(trial_id);
      if (!end) return end.error();
      if (*end && (*end)->job_id == *current->job_id) return {};  // ended, and seen to end
      auto const shown = scontrol_job(*current->job_id);
      if (!shown) return shown.error();
      if (*shown &&
          detail::classify_slurm_state((*shown)->state) == detail::slurm_state_class::ended)
        return {};    // ended: the next observe() records how
      if (!*shown) {  // Slurm has forgotten it: it has ended
        auto const exit = read_exit_of(trial_id, *current->job_id);
        if (!exit) return exit.error();
        if (*exit) return {};
      }
    }
    if (auto const r = write_json_file(
            dir / detail::cancelled_file_name,
            boost::json::object{{"cancel_unix_s", json_number(detail::unix_now())}});
        !r)
      return r.error();
    auto queue = load_queue();
    if (!queue) return queue.error();
    auto const it = std::find(queue->pending.begin(), queue->pending.end(), trial_id);
    if (it != queue->pending.end()) {
      queue->pending.erase(it);
      if (auto const r = save_queue(*queue); !r) return r.error();
    }
    if (!current) return {};
    std::optional<std::string> job_id = current->job_id;
    if (!job_id) {  // an unresolved intent: find its job, if any
      std::map<std::string, std::vector<std::string>> cache;
      auto const found = find_submitted(trial_id, *current, cache);
      if (!found) return found.error();
      job_id = *found;
    }
    if (!job_id) return {};  // a late job would find CANCELLED.json and not run the trainer
    auto const o = detail::run_command({"scancel", *job_id});
    if (!o) return o.error();
    // A job that has just ended is not an error.
    if (o->exit_status != 0 && o->err.find("Invalid job id") == std::string::npos &&
        o->err.find("already completing or completed") == std::string::npos)
      return make_error(errc::failed_precondition, "`scancel " + *job_id + "` exited with status " +
                                                       std::to_string(o->exit_status) +
                                                       "; stderr: " + detail::trimmed(o->err));
    return {};
  }

  /// Sleeps poll_interval_s.
  void wait_for_next_poll() {
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.poll_interval_s));
  }

 private:
  struct queue_state {
    std::string token;
    std::int64_t launched = 0;
    std::int64_t submissions = 0;
    std::vector<std::string> pending;  ///< trial ids, in launch order
  };

  /// Slurm's JobState of each job squeue lists, by job id ("123" or "123_4").
  using state_map = std::map<std::string, std::string>;

  bool known(std::string const& id) const {
    std::error_code ec;
    return !id.empty() && id.find('/') == std::string::npos &&
           std::filesystem::exists(trial_dir(id) / detail::slurm_trial_file_name, ec);
  }

  result<queue_state> load_queue() const {
    auto const path = run_dir_ / detail::slurm_queue_file_name;
    queue_state q;
    auto const file = read_json_object_file(path);
    if (!file) return file.error();
    if (!*file) {
      std::random_device rd;
      char const* const hex = "0123456789abcdef";
      for (int i = 0; i < 8; ++i) q.token += hex[rd() % 16];
      return q;
    }
    boost::json::object const& o = (*file)->as_object();
    json_location const where(path.string());
    auto const version = read_json_member(o, "schema_version", where, read_json_int64);
    if (!version) return version.error();
    if (*version > detail::slurm_queue_schema_version)
      return make_error(errc::failed_precondition, path.string() + ": schema_version " +
                                                       std::to_string(*version) +
                                                       " is newer than this proxytask understands");
    auto token = read_json_member(o, "token", where, read_json_string);
    if (!token) return token.error();
    q.token = std::move(*token);
    auto const launched = read_json_member(o, "launched", where, read_json_count);
    if (!launched) return launched.error();
    q.launched = *launched;
    auto const submissions = read_json_member(o, "submissions", where, read_json_count);
    if (!submissions) return submissions.error();
    q.submissions = *submissions;
    auto const pending = read_json_member(o, "queue", where, read_json_array);
    if (!pending) return pending.error();
    for (std::size_t i = 0; i < (*pending)->size(); ++i) {
      auto id = read_json_string((**pending)[i], where / "queue" / i);
      if (!id) return id.error();
      q.pending.push_back(std::move(*id));
    }
    return q;
  }

  result<void> save_queue(queue_state const& q) const {
    std::error_code ec;
    std::filesystem::create_directories(run_dir_, ec);
    if (ec) return make_error(ec, "cannot create the run directory " + run_dir_.string());
    boost::json::array pending;
    for (auto const& id : q.pending) pending.emplace_back(id);
    return write_json_file(
        run_dir_ / detail::slurm_queue_file_name,
        boost::json::object{{"schema_version", detail::slurm_queue_schema_version},
                            {"token", q.token},
                            {"launched", q.launched},
                            {"submissions", q.submissions},
                            {"queue", std::move(pending)}});
  }

  result<std::optional<boost::json::object>> read_object(std::string const& id,
                                                         std::string_view name) const {
    return detail::read_trial_object(trial_dir(id), name);
  }

  /// The trial's submissions (SLURM_JOB.json); empty when it was never submitted.
  result<std::vector<detail::slurm_submission>> read_job(std::string const& id) const {
    std::vector<detail::slurm_submission> subs;
    auto const o = read_object(id, detail::slurm_job_file_name);
    if (!o) return o.error();
    if (!*o) return subs;
    json_location const where((trial_dir(id) / detail::slurm_job_file_name).string());
    auto const list = read_json_member(**o, "submissions", where, read_json_array);
    if (!list) return list.error();
    for (std::size_t i = 0; i < (*list)->size(); ++i) {
      json_location const at = where / "submissions" / i;
      auto const e = read_json_object((**list)[i], at);
      if (!e) return e.error();
      detail::slurm_submission s;
      auto name = read_json_member(**e, "job_name", at, read_json_string);
      if (!name) return name.error();
      s.job_name = std::move(*name);
      auto const t = read_json_member(**e, "intent_unix_s", at, read_json_finite);
      if (!t) return t.error();
      s.intent_unix_s = *t;
      if (auto const* a = (*e)->if_contains("array_task")) {
        auto const task = read_json_count(*a, at / "array_task");
        if (!task) return task.error();
        s.array_task = *task;
      }
      if (auto const* j = (*e)->if_contains("job_id"); j && !j->is_null()) {
        auto job_id = read_json_string(*j, at / "job_id");
        if (!job_id) return job_id.error();
        s.job_id = std::move(*job_id);
      }
      if (auto const* a = (*e)->if_contains("adopted"); a && a->is_bool())
        s.adopted = a->get_bool();
      subs.push_back(std::move(s));
    }
    return subs;
  }

  result<void> write_job(std::string const& id,
                         std::vector<detail::slurm_submission> const& subs) const {
    boost::json::array list;
    for (auto const& s : subs) {
      boost::json::object e{{"job_name", s.job_name},
                            {"intent_unix_s", json_number(s.intent_unix_s)}};
      if (s.array_task) e["array_task"] = *s.array_task;
      e["job_id"] = s.job_id ? boost::json::value(*s.job_id) : boost::json::value(nullptr);
      if (s.adopted) e["adopted"] = true;
      list.push_back(std::move(e));
    }
    boost::json::object doc;
    doc["job_id"] = !subs.empty() && subs.back().job_id ? boost::json::value(*subs.back().job_id)
                                                        : boost::json::value(nullptr);
    doc["submissions"] = std::move(list);
    return write_json_file(trial_dir(id) / detail::slurm_job_file_name, doc);
  }

  result<std::optional<detail::slurm_end>> read_end(std::string const& id) const {
    auto const o = read_object(id, detail::slurm_end_file_name);
    if (!o) return o.error();
    if (!*o) return std::optional<detail::slurm_end>();
    json_location const where((trial_dir(id) / detail::slurm_end_file_name).string());
    detail::slurm_end e;
    for (auto [key, field] :
         {std::pair{"job_id", &e.job_id}, std::pair{"state", &e.state},
          std::pair{"exit_code", &e.exit_code}, std::pair{"reason", &e.reason}}) {
      auto v = read_json_member(**o, key, where, read_json_string);
      if (!v) return v.error();
      *field = std::move(*v);
    }
    if (auto const* r = (*o)->if_contains("restarts"); r && !r->is_null()) {
      auto const restarts = read_json_count(*r, where / "restarts");
      if (!restarts) return restarts.error();
      e.restarts = *restarts;
    }
    return std::optional<detail::slurm_end>(std::move(e));
  }

  /// EXIT_STATUS.json when it was written by a run of job `job_id` (by its run after
  /// `restarts` requeues, when given); nullopt otherwise.
  result<std::optional<detail::exit_record>> read_exit_of(
      std::string const& id, std::string const& job_id,
      std::optional<std::int64_t> restarts = std::nullopt) const {
    auto const o = read_object(id, detail::exit_status_file_name);
    if (!o) return o.error();
    if (!*o) return std::optional<detail::exit_record>();
    auto const* j = (*o)->if_contains("job_id");
    if (!j || !j->is_string() || j->get_string() != job_id)
      return std::optional<detail::exit_record>();
    // A run that Slurm started but that ended before the script wrote anything (slurmd refused
    // it, say) leaves the previous run's file: it is not this run's end.
    auto const* r = (*o)->if_contains("restart_count");
    if (restarts && r && r->is_int64() && r->get_int64() != *restarts)
      return std::optional<detail::exit_record>();
    return detail::read_exit_record(trial_dir(id), detail::exit_code_convention::shell);
  }

  result<std::vector<std::string>> trial_ids() const {
    std::vector<std::pair<std::int64_t, std::string>> found;
    std::error_code ec;
    auto const root = run_dir_ / trials_directory_name;
    if (!std::filesystem::exists(root, ec)) return std::vector<std::string>();
    for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end;
         it.increment(ec)) {
      auto const id = it->path().filename().string();
      auto const o = read_object(id, detail::slurm_trial_file_name);
      if (!o) return o.error();
      if (!*o) continue;
      json_location const where((it->path() / detail::slurm_trial_file_name).string());
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

  result<workflow::launch_trial> read_launch(std::string const& id) const {
    auto const o = read_object(id, detail::slurm_trial_file_name);
    if (!o) return o.error();
    json_location const where((trial_dir(id) / detail::slurm_trial_file_name).string());
    if (!*o)
      return make_error(errc::not_found, (trial_dir(id) / detail::slurm_trial_file_name).string() +
                                             ": no such file");
    return read_json_member(**o, "launch", where, workflow::launch_trial_from_json);
  }

  /// The job ids squeue lists under job name `name` (every state Slurm still remembers).
  result<std::vector<std::string>> jobs_named(
      std::string const& name, std::map<std::string, std::vector<std::string>>& cache) const {
    if (auto const it = cache.find(name); it != cache.end()) return it->second;
    auto const out =
        detail::slurm_command({"squeue", "-h", "-r", "-t", "all", "--name=" + name, "-o", "%i"});
    if (!out) return out.error();
    std::vector<std::string> ids;
    std::size_t begin = 0;
    while (begin < out->size()) {
      auto end = out->find('\n', begin);
      if (end == std::string::npos) end = out->size();
      auto const line = detail::trimmed(std::string_view(*out).substr(begin, end - begin));
      if (!line.empty()) ids.push_back(line);
      begin = end + 1;
    }
    cache[name] = ids;
    return ids;
  }

  /// The job of an unresolved submission intent, if Slurm has it: by job name (and array task),
  /// else by the trial's SLURM_JOB_STARTED.json.
  result<std::optional<std::string>> find_submitted(
      std::string const& id, detail::slurm_submission const& s,
      std::map<std::string, std::vector<std::string>>& cache) const {
    auto const jobs = jobs_named(s.job_name, cache);
    if (!jobs) return jobs.error();
    for (auto const& j : *jobs) {
      auto const underscore = j.find('_');
      if (s.array_task) {
        if (underscore != std::string::npos &&
            j.substr(underscore + 1) == std::to_string(*s.array_task))
          return std::optional<std::string>(j);
      } else if (underscore == std::string::npos) {
        return std::optional<std::string>(j);
      }
    }
    auto const started = read_object(id, detail::slurm_job_started_file_name);
    if (!started) return started.error();
    if (*started) {
      auto const* name = (*started)->if_contains("job_name");
      auto const* job = (*started)->if_contains("job_id");
      if (name && name->is_string() && name->get_string() == s.job_name && job && job->is_string())
        return std::optional<std::string>(std::string(job->get_string()));
    }
    return std::optional<std::string>();
  }

  /// Resolves the unresolved intents, then submits the queued trials that need it: those never
  /// submitted, and those whose intent has no job after the grace period (see the file comment).
  result<void> submit_queued() {
    auto queue = load_queue();
    if (!queue) return queue.error();
    auto const ids = trial_ids();
    if (!ids) return ids.error();
    bool changed = false;
    // Trials recorded by a controller that died before it saved the queue.
    for (auto const& id : *ids) {
      if (std::find(queue->pending.begin(), queue->pending.end(), id) != queue->pending.end())
        continue;
      std::error_code ec;
      auto const dir = trial_dir(id);
      if (std::filesystem::exists(dir / detail::slurm_job_file_name, ec) ||
          std::filesystem::exists(dir / detail::cancelled_file_name, ec))
        continue;
      queue->pending.push_back(id);
      changed = true;
    }
    if (changed) {  // back in launch order
      std::vector<std::string> ordered;
      for (auto const& id : *ids)
        if (std::find(queue->pending.begin(), queue->pending.end(), id) != queue->pending.end())
          ordered.push_back(id);
      queue->pending = std::move(ordered);
    }
    std::map<std::string, std::vector<std::string>> cache;
    double const now = detail::unix_now();
    std::vector<std::string> to_submit;
    std::vector<std::string> keep;
    for (auto const& id : *ids) {
      std::error_code ec;
      bool const queued =
          std::find(queue->pending.begin(), queue->pending.end(), id) != queue->pending.end();
      bool const cancelled =
          std::filesystem::exists(trial_dir(id) / detail::cancelled_file_name, ec);
      auto job = read_job(id);
      if (!job) return job.error();
      bool const unresolved = !job->empty() && !job->back().job_id;
      if (cancelled || (!queued && !unresolved)) {
        if (queued) changed = true;  // cancelled while queued
        continue;
      }
      if (job->empty()) {  // never submitted
        to_submit.push_back(id);
        continue;
      }
      if (!unresolved) {  // submitted, but the queue was not saved after it
        changed = true;
        continue;
      }
      auto const found = find_submitted(id, job->back(), cache);
      if (!found) return found.error();
      if (*found) {  // adopt the job of the dead controller's submission
        job->back().job_id = **found;
        job->back().adopted = true;
        if (auto const r = write_job(id, *job); !r) return r.error();
        changed = changed || queued;
        continue;
      }
      if (now - job->back().intent_unix_s < detail::slurm_submit_grace_s) {
        if (queued) keep.push_back(id);
        continue;
      }
      to_submit.push_back(id);
    }
    if (changed || !to_submit.empty()) {
      // The queue keeps what is left to submit; submit_group removes each once it is recorded.
      std::vector<std::string> left = keep;
      left.insert(left.end(), to_submit.begin(), to_submit.end());
      std::vector<std::string> ordered;
      for (auto const& id : *ids)
        if (std::find(left.begin(), left.end(), id) != left.end()) ordered.push_back(id);
      queue->pending = std::move(ordered);
      if (auto const r = save_queue(*queue); !r) return r.error();
    }
    if (to_submit.empty()) return {};
    return submit_group(*queue, to_submit);
  }

  /// Submits `ids`: one job array when job_arrays (a plain job for one trial), else one job
  /// each.
  result<void> submit_group(queue_state& queue, std::vector<std::string> const& ids) {
    if (options_.job_arrays) return submit(queue, ids);
    for (auto const& id : ids)
      if (auto const r = submit(queue, {id}); !r) return r;
    return {};
  }

  /// One sbatch: intents, scripts, sbatch, job ids, queue (see the file comment).
  result<void> submit(queue_state& queue, std::vector<std::string> const& ids) {
    namespace fs = std::filesystem;
    bool const array = options_.job_arrays && ids.size() > 1;  // one trial: a plain job
    // The name is never used twice: the count is saved before the name is used.
    std::string const name = "proxytask-" + queue.token + "-" + std::to_string(++queue.submissions);
    if (auto const r = save_queue(queue); !r) return r.error();
    fs::path const folder = run_dir_ / detail::slurm_folder_name;
    std::error_code ec;
    fs::create_directories(folder, ec);
    if (ec) return make_error(ec, "cannot create " + folder.string());

    std::string list;
    double const now = detail::unix_now();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto const& id = ids[i];
      auto const dir = trial_dir(id);
      auto const l = read_launch(id);
      if (!l) return l.error();
      auto const cmd = protocol::make_launch_command(options_.trainer_command,
                                                     detail::launch_arguments_of(run_dir_, *l));
      if (!cmd) return cmd.error();
      auto job = read_job(id);
      if (!job) return job.error();
      detail::slurm_submission s;
      s.job_name = name;
      if (array) s.array_task = static_cast<std::int64_t>(i);
      s.intent_unix_s = now;
      job->push_back(std::move(s));
      // The intent first: a job of this name is ours from now on.
      if (auto const r = write_job(id, *job); !r) return r.error();
      if (auto const r = write_file_atomically(dir / detail::slurm_trial_script_name,
                                               detail::slurm_trial_script(dir, name, *cmd));
          !r)
        return r.error();
      list += dir.string() + "\n";
    }
    fs::path const list_file = folder / (name + ".trials");
    fs::path const script = folder / (name + ".sbatch");
    if (auto const r = write_file_atomically(list_file, list); !r) return r.error();
    if (auto const r = write_file_atomically(script, detail::slurm_batch_script(list_file)); !r)
      return r.error();

    std::vector<std::string> argv{"sbatch", "--parsable", "--job-name=" + name};
    std::string const pattern = array ? "%A_%a" : "%j";
    argv.push_back("--output=" + (folder / (name + "." + pattern + ".out")).string());
    argv.push_back("--error=" + (folder / (name + "." + pattern + ".err")).string());
    argv.push_back("--chdir=" + run_dir_.string());
    if (array) argv.push_back("--array=0-" + std::to_string(ids.size() - 1));
    if (options_.time_minutes) argv.push_back("--time=" + std::to_string(*options_.time_minutes));
    if (!options_.partition.empty()) argv.push_back("--partition=" + options_.partition);
    if (!options_.account.empty()) argv.push_back("--account=" + options_.account);
    if (!options_.qos.empty()) argv.push_back("--qos=" + options_.qos);
    argv.push_back("--cpus-per-task=" + std::to_string(options_.cpus_per_task));
    if (!options_.gpus.empty()) argv.push_back("--gpus=" + options_.gpus);
    if (!options_.mem.empty()) argv.push_back("--mem=" + options_.mem);
    argv.push_back("--requeue");
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    argv.push_back(script.string());
    auto const out = detail::slurm_command(argv);
    if (!out) return out.error();
    // --parsable prints "<job id>[;<cluster>]".
    std::string const text = detail::trimmed(*out);
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0)
      return make_error(errc::malformed_file,
                        "sbatch printed no job id (job name " + name + "): \"" + text + "\"");
    std::string const job_id = text.substr(0, digits);

    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto job = read_job(ids[i]);
      if (!job) return job.error();
      if (job->empty() || job->back().job_name != name)
        return make_error(errc::internal, "the submission of " + ids[i] + " was not recorded");
      job->back().job_id = array ? job_id + "_" + std::to_string(i) : job_id;
      if (auto const r = write_job(ids[i], *job); !r) return r.error();
    }
    std::erase_if(queue.pending, [&](std::string const& id) {
      return std::find(ids.begin(), ids.end(), id) != ids.end();
    });
    return save_queue(queue);
  }

  /// The JobState of the current jobs of `ids` that need one: one squeue call for all of them
  /// (by job name, every state Slurm still remembers).
  result<state_map> slurm_states(std::vector<std::string> const& ids) const {
    std::set<std::string> names;
    for (auto const& id : ids) {
      std::error_code ec;
      if (std::filesystem::exists(trial_dir(id) / detail::cancelled_file_name, ec)) continue;
      auto const job = read_job(id);
      if (!job) return job.error();
      if (job->empty() || !job->back().job_id) continue;
      auto const end = read_end(id);
      if (!end) return end.error();
      if (*end && (*end)->job_id == *job->back().job_id) continue;
      names.insert(job->back().job_name);
    }
    state_map states;
    if (names.empty()) return states;
    std::string joined;
    for (auto const& n : names) joined += (joined.empty() ? "" : ",") + n;
    auto const out = detail::slurm_command(
        {"squeue", "-h", "-r", "-t", "all", "--name=" + joined, "-o", "%i|%T"});
    if (!out) return out.error();
    std::size_t begin = 0;
    while (begin < out->size()) {
      auto end = out->find('\n', begin);
      if (end == std::string::npos) end = out->size();
      auto const line = detail::trimmed(std::string_view(*out).substr(begin, end - begin));
      begin = end + 1;
      auto const bar = line.find('|');
      if (bar == std::string::npos) continue;
      states[line.substr(0, bar)] = line.substr(bar + 1);
    }
    return states;
  }

  /// `scontrol -o show job ID`: the job's end (state, exit code, reason), or nullopt when Slurm
  /// does not know the job (any more).
  result<std::optional<detail::slurm_end>> scontrol_job(std::string const& job_id) const {
    auto const o = detail::run_command({"scontrol", "-o", "show", "job", job_id});
    if (!o) return o.error();
    if (o->exit_status != 0) {
      if (o->err.find("Invalid job id") != std::string::npos)
        return std::optional<detail::slurm_end>();
      return make_error(errc::failed_precondition, "`scontrol -o show job " + job_id +
                                                       "` exited with status " +
                                                       std::to_string(o->exit_status) +
                                                       "; stderr: " + detail::trimmed(o->err));
    }
    detail::slurm_end e;
    e.job_id = job_id;
    e.state = detail::scontrol_field(o->out, "JobState");
    e.exit_code = detail::scontrol_field(o->out, "ExitCode");
    e.reason = detail::scontrol_field(o->out, "Reason");
    if (auto const r =
            protocol::parse_number<std::int64_t>(detail::scontrol_field(o->out, "Restarts")))
      e.restarts = *r;
    if (e.state.empty()) return std::optional<detail::slurm_end>();
    return std::optional<detail::slurm_end>(std::move(e));
  }

  /// The trial's status from its files and Slurm's JobState; a job that ended PREEMPTED or
  /// NODE_FAIL with resubmissions left is added to `resubmit` (and the trial is pending).
  result<workflow::trial_status> status_of(std::string const& id, queue_state const& q,
                                           state_map const& states,
                                           std::vector<std::string>& resubmit) {
    namespace wf = workflow;
    auto const dir = trial_dir(id);
    wf::trial_status s;
    s.trial_id = id;
    if (auto const r = detail::read_metrics_into(s, dir); !r) return r.error();
    if (auto const r = detail::read_measured_latency_into(s, dir); !r) return r.error();

    std::error_code ec;
    if (std::filesystem::exists(dir / detail::cancelled_file_name, ec)) {
      s.phase = wf::trial_phase::stopped;
      return s;
    }
    auto const job = read_job(id);
    if (!job) return job.error();
    bool const queued = std::find(q.pending.begin(), q.pending.end(), id) != q.pending.end();
    if (queued || job->empty() || !job->back().job_id) {
      s.phase = wf::trial_phase::pending;  // to be submitted, or an intent being resolved
      return s;
    }
    std::string const job_id = *job->back().job_id;

    auto end = read_end(id);
    if (!end) return end.error();
    if (!*end || (*end)->job_id != job_id) {
      end->reset();
      auto const it = states.find(job_id);
      if (it != states.end()) {
        auto const cls = detail::classify_slurm_state(it->second);
        if (cls == detail::slurm_state_class::pending) {
          s.phase = wf::trial_phase::pending;
          return s;
        }
        if (cls == detail::slurm_state_class::running) {
          s.phase = wf::trial_phase::running;
          return s;
        }
      }
      // Ended, or not listed: scontrol says how (and whether Slurm still knows the job).
      auto const shown = scontrol_job(job_id);
      if (!shown) return shown.error();
      if (*shown) {
        auto const cls = detail::classify_slurm_state((*shown)->state);
        if (cls == detail::slurm_state_class::pending) {
          s.phase = wf::trial_phase::pending;
          return s;
        }
        if (cls == detail::slurm_state_class::running) {
          s.phase = wf::trial_phase::running;
          return s;
        }
        boost::json::object record{
            {"job_id", job_id},
            {"state", (*shown)->state},
            {"exit_code", (*shown)->exit_code},
            {"reason", (*shown)->reason},
            {"restarts", (*shown)->restarts ? boost::json::value(*(*shown)->restarts)
                                            : boost::json::value(nullptr)},
            {"seen_unix_s", json_number(detail::unix_now())}};
        if (auto const r = write_json_file(dir / detail::slurm_end_file_name, record); !r)
          return r.error();
        *end = std::move(*shown);
      }
    }
    if (!*end) {  // Slurm has forgotten the job and we never saw it end
      auto const exit = read_exit_of(id, job_id);
      if (!exit) return exit.error();
      if (*exit) return detail::ended_status(std::move(s), dir, **exit);
      s.phase = wf::trial_phase::failed;
      s.failure = protocol::failure_kind::lost;
      s.failure_message = "Slurm no longer knows job " + job_id + ", and it left no exit status";
      return s;
    }
    return ended(std::move(s), id, **end, job->size(), resubmit);
  }

  /// The status of a trial whose job ended as `e` says.
  result<workflow::trial_status> ended(workflow::trial_status s, std::string const& id,
                                       detail::slurm_end const& e, std::size_t submissions,
                                       std::vector<std::string>& resubmit) const {
    namespace wf = workflow;
    auto const dir = trial_dir(id);
    auto fail = [&](protocol::failure_kind kind, std::string message) {
      s.phase = wf::trial_phase::failed;
      s.failure = kind;
      s.failure_message = std::move(message);
      return s;
    };
    std::string const slurm = "Slurm job " + e.job_id + " ended " + e.state + " (ExitCode " +
                              e.exit_code + ", Reason " + e.reason + ")";
    if (e.state == "COMPLETED" || e.state == "FAILED") {
      auto const exit = read_exit_of(id, e.job_id, e.restarts);
      if (!exit) return exit.error();
      if (!*exit) {
        if (e.state == "COMPLETED")
          return fail(protocol::failure_kind::lost, slurm + " without an exit status");
        auto const f = protocol::read_failure(dir);
        if (f) return fail(f->kind, f->message + " (" + slurm + ")");
        if (f.error().code != errc::not_found) return f.error();
        return fail(protocol::failure_kind::crashed, slurm);
      }
      auto r = detail::ended_status(std::move(s), dir, **exit);
      if (r && r->phase == wf::trial_phase::failed) r->failure_message += " (" + slurm + ")";
      return r;
    }
    if (e.state == "OUT_OF_MEMORY") return fail(protocol::failure_kind::oom, slurm);
    if (e.state == "TIMEOUT" || e.state == "DEADLINE")
      return fail(protocol::failure_kind::timed_out, slurm);
    if (e.state == "CANCELLED")
      return fail(protocol::failure_kind::cancelled, slurm + ", cancelled outside proxytask");
    if (e.state == "BOOT_FAIL") return fail(protocol::failure_kind::node_failed, slurm);
    if (e.state == "PREEMPTED" || e.state == "NODE_FAIL") {
      if (submissions <= options_.max_resubmits) {
        resubmit.push_back(id);
        s.phase = wf::trial_phase::pending;
        return s;
      }
      return fail(e.state == "PREEMPTED" ? protocol::failure_kind::preempted
                                         : protocol::failure_kind::node_failed,
                  slurm + " after " + std::to_string(submissions - 1) + " resubmissions");
    }
    return fail(protocol::failure_kind::lost, slurm);
  }

  std::filesystem::path run_dir_;
  options options_;
};

static_assert(executor<slurm_executor>);

}  // namespace proxytask::exec
