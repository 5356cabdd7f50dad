#pragma once
/// @file
/// The one driver that runs every workflow tool on every executor (STYLE.md 2.4). Each loop it
/// observes, advances the tool (pure), persists the next state atomically, THEN acts on the
/// commands, then waits for the next poll. That ordering makes resume-after-kill correct:
///   - one controller per run directory: an exclusive flock on <run_dir>/.lock;
///   - the state file <run_dir>/<Tool::state_file_name> = {"schema_version": N, ...state}; a run
///     resumes from it; a newer schema_version is refused; a broken file is an error (never
///     overwritten);
///   - the command journal <run_dir>/launches.json records each launch's intent before it and its
///     completion after it, so a restart never launches a trial twice (an intent without its
///     completion: the executor is asked whether the trial exists before it is relaunched); it
///     also holds the step's other commands (new desired pcts, stops) until they are done, and a
///     restart replays them (both are idempotent), so a kill between persisting and acting loses
///     none of them;
///   - <run_dir>/status.json: where the run stands after each poll (the tool's phase and last
///     decision, every trial's phase and progress), for proxytask-status and progress lines;
///   - SIGINT / SIGTERM: the run persists and returns errc::cancelled at the next loop boundary;
///     the trials keep running (unless run_options::cancel_on_exit), and running again resumes.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/executor.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace proxytask::workflow {

/// The lock file of a run directory (holds the controller's pid).
inline constexpr std::string_view lock_file_name = ".lock";
/// The command journal of a run directory (launch intents and the step's pending commands).
inline constexpr std::string_view launch_journal_file_name = "launches.json";
/// The schema version of launches.json.
inline constexpr int launch_journal_schema_version = 1;
/// Where the run stands, rewritten after every poll.
inline constexpr std::string_view status_file_name = "status.json";

/// What one loop of the driver did, for progress reports.
struct step_summary {
  std::size_t poll = 0;  ///< 0-based loop number in this run() call
  std::size_t launches = 0;
  std::size_t desired_pct_changes = 0;
  std::size_t stops = 0;
  bool finished = false;
  std::string summary;         ///< finish's summary, when finished
  std::string_view tool_name;  ///< Tool::tool_name, else its state file's name
  tool_progress progress;      ///< the tool's description of its next state
  double started_unix_s = 0;   ///< when this controller started (the first observation's time)
};

/// How run() runs.
struct run_options {
  std::filesystem::path run_dir;
  /// Stop (errc::cancelled, resumable) after this many loops (each ends with a wait for the next
  /// poll); 0 = until the tool finishes.
  std::size_t max_polls = 0;
  /// Called after each loop has acted (optional).
  std::function<void(observation const&, step_summary const&)> progress = nullptr;
  /// On SIGINT / SIGTERM, cancel the running and pending trials before returning (default: they
  /// keep running, and the next run re-attaches to them).
  bool cancel_on_exit = false;
};

namespace detail {

/// Set by the SIGINT / SIGTERM handler that run() installs.
inline volatile std::sig_atomic_t cancel_requested = 0;

inline void on_cancel_signal(int) { cancel_requested = 1; }

/// Installs the cancel handler for SIGINT and SIGTERM; restores the previous ones.
class signal_guard {
 public:
  signal_guard() {
    cancel_requested = 0;
    struct sigaction sa {};
    sa.sa_handler = &on_cancel_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  signal_guard(signal_guard const&) = delete;
  signal_guard& operator=(signal_guard const&) = delete;
  ~signal_guard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

/// The exclusive lock of a run directory, held while it lives.
class run_lock {
 public:
  /// Locks <run_dir>/.lock and writes our pid into it.
  /// @returns errc::failed_precondition naming the directory and the holder's pid when another
  ///          controller holds it; an I/O error otherwise
  static result<run_lock> acquire(std::filesystem::path const& run_dir) {
    auto const path = run_dir / lock_file_name;
    int const fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return make_error(std::error_code(errno, std::generic_category()),
                        "cannot open the lock file " + path.string());
    run_lock lock(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int const err = errno;
      if (err != EWOULDBLOCK)
        return make_error(std::error_code(err, std::generic_category()),
                          "cannot lock " + path.string());
      std::string holder;
      if (auto const text = read_file(path); text) holder = *text;
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return make_error(
          errc::failed_precondition,
          "the run directory " + run_dir.string() + " is in use by another controller (pid " +
              (holder.empty() ? std::string("unknown") : holder) + ", lock " + path.string() + ")");
    }
    std::string const pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
      return make_error(std::error_code(errno, std::generic_category()),
                        "cannot write the pid into " + path.string());
    return lock;
  }
  run_lock(run_lock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  run_lock& operator=(run_lock&&) = delete;
  ~run_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

 private:
  explicit run_lock(int fd) noexcept : fd_(fd) {}
  int fd_;
};

/// One launch in the journal.
struct journal_entry {
  launch_trial launch;
  bool launched = false;  ///< the executor's launch returned successfully
};

/// A command of the current step other than a launch or finish (replayed after a restart).
using pending_command = std::variant<set_desired_pct, stop_trial>;

/// launches.json: {"schema_version": 1, "launches": [{"trial_id", "launched", "launch": {...}}],
/// "pending": [{"command": "set_desired_pct", "trial_id", "pct"} | {"command": "stop_trial",
/// "trial_id"}]}
class launch_journal {
 public:
  static result<launch_journal> load(std::filesystem::path path) {
    launch_journal j;
    j.path_ = std::move(path);
    auto const file = read_json_object_file(j.path_);
    if (!file) return file.error();
    if (!*file) return j;
    boost::json::object const& o = (*file)->as_object();
    json_location const where(j.path_.string());
    auto const version = read_json_member(o, "schema_version", where, read_json_int64);
    if (!version) return version.error();
    if (*version > launch_journal_schema_version)
      return make_error(errc::failed_precondition,
                        j.path_.string() + ": schema_version " + std::to_string(*version) +
                            " is newer than this proxytask understands (" +
                            std::to_string(launch_journal_schema_version) + ")");
    auto const launches = read_json_member(o, "launches", where, read_json_array);
    if (!launches) return launches.error();
    for (std::size_t i = 0; i < (*launches)->size(); ++i) {
      json_location const at = where / "launches" / i;
      auto const e = read_json_object((**launches)[i], at);
      if (!e) return e.error();
      auto l = read_json_member(**e, "launch", at, launch_trial_from_json);
      if (!l) return l.error();
      auto const launched = read_json_field(**e, "launched", at);
      if (!launched) return launched.error();
      if (!(*launched)->is_bool()) return (at / "launched").fail("expected true or false");
      j.entries_.push_back({std::move(*l), (*launched)->get_bool()});
    }
    if (auto const* p = o.if_contains("pending")) {
      auto const pending = read_json_array(*p, where / "pending");
      if (!pending) return pending.error();
      for (std::size_t i = 0; i < (*pending)->size(); ++i) {
        auto c = read_pending((**pending)[i], where / "pending" / i);
        if (!c) return c.error();
        j.pending_.push_back(std::move(*c));
      }
    }
    return j;
  }

  result<void> save() const {
    boost::json::array launches;
    for (auto const& e : entries_)
      launches.push_back({{"trial_id", e.launch.trial_id},
                          {"launched", e.launched},
                          {"launch", boost::json::value_from(e.launch)}});
    boost::json::array pending;
    for (auto const& c : pending_) {
      if (auto const* d = std::get_if<set_desired_pct>(&c))
        pending.push_back(
            {{"command", "set_desired_pct"}, {"trial_id", d->trial_id}, {"pct", d->pct}});
      else
        pending.push_back(
            {{"command", "stop_trial"}, {"trial_id", std::get<stop_trial>(c).trial_id}});
    }
    return write_json_file(path_,
                           boost::json::object{{"schema_version", launch_journal_schema_version},
                                               {"launches", std::move(launches)},
                                               {"pending", std::move(pending)}});
  }

  journal_entry* find(std::string_view trial_id) {
    for (auto& e : entries_)
      if (e.launch.trial_id == trial_id) return &e;
    return nullptr;
  }
  void add_intent(launch_trial l) { entries_.push_back({std::move(l), false}); }
  std::vector<journal_entry>& entries() noexcept { return entries_; }
  /// The commands persisted before acting and not yet known to be done.
  std::vector<pending_command>& pending() noexcept { return pending_; }

 private:
  static result<pending_command> read_pending(boost::json::value const& v,
                                              json_location const& where) {
    auto const o = read_json_object(v, where);
    if (!o) return o.error();
    auto const kind = read_json_member(**o, "command", where, read_json_string);
    if (!kind) return kind.error();
    auto id = read_json_member(**o, "trial_id", where, read_json_string);
    if (!id) return id.error();
    if (*kind == "stop_trial") return pending_command(stop_trial{std::move(*id)});
    if (*kind != "set_desired_pct")
      return (where / "command")
          .fail("unknown command \"" + *kind + "\" (expected set_desired_pct or stop_trial)");
    auto const pct = read_json_member(**o, "pct", where, read_json_non_negative);
    if (!pct) return pct.error();
    return pending_command(set_desired_pct{std::move(*id), *pct});
  }

  std::filesystem::path path_;
  std::vector<journal_entry> entries_;
  std::vector<pending_command> pending_;
};

/// Sends one journalled command to the executor.
template <exec::executor Exec>
result<void> act_on(Exec& exec, pending_command const& c) {
  if (auto const* d = std::get_if<set_desired_pct>(&c))
    return exec.set_desired_pct(d->trial_id, d->pct);
  return exec.cancel(std::get<stop_trial>(c).trial_id);
}

/// The tool's name for people: Tool::tool_name, else its state file's name.
template <class Tool>
constexpr std::string_view tool_name_of() noexcept {
  if constexpr (requires { std::string_view(Tool::tool_name); })
    return Tool::tool_name;
  else
    return Tool::state_file_name;
}

/// The tool's description of `s` (empty when the tool has no describe()).
template <class Tool>
tool_progress describe(Tool const& tool, typename Tool::state const& s, observation const& obs) {
  if constexpr (describable<Tool>)
    return tool.describe(s, obs);
  else
    return {};
}

/// status.json's document after a poll.
inline boost::json::object status_document(observation const& obs, step_summary const& summary) {
  boost::json::array trials;
  for (auto const& t : obs.trials) {
    boost::json::object o{{"trial_id", t.trial_id}, {"phase", to_string(t.phase)}};
    if (t.failure) {
      o["failure"] = protocol::to_string(*t.failure);
      o["failure_message"] = t.failure_message;
    }
    if (!t.metrics.points.empty()) {
      o["training_step_pct"] = json_number(t.metrics.points.back().training_step_pct);
      o["accuracy"] = json_number(t.metrics.points.back().accuracy);
    }
    trials.push_back(std::move(o));
  }
  boost::json::object doc{{"tool", summary.tool_name},
                          {"phase", summary.progress.phase},
                          {"decision", summary.progress.decision},
                          {"controller_pid", static_cast<std::int64_t>(::getpid())},
                          {"started_unix_s", json_number(summary.started_unix_s)},
                          {"updated_unix_s", json_number(obs.now_unix_s)},
                          {"finished", summary.finished},
                          {"summary", summary.summary},
                          {"trials", std::move(trials)}};
  if (summary.progress.fraction_done)
    doc["fraction_done"] = json_number(*summary.progress.fraction_done);
  return doc;
}

/// cancel_on_exit: cancels every trial that is running or pending.
template <exec::executor Exec>
void cancel_unfinished(Exec& exec) {
  auto const obs = exec.observe();
  if (!obs) return;  // the cancellation error is the one to report
  for (auto const& t : obs->trials)
    if (!is_terminal(t.phase)) (void)exec.cancel(t.trial_id);
}

/// The tool's state from its state file, or nullopt when there is none.
template <class Tool>
result<std::optional<typename Tool::state>> load_state(std::filesystem::path const& path) {
  using state_type = typename Tool::state;
  auto const file = read_json_object_file(path);
  if (!file) return file.error();
  if (!*file) return std::optional<state_type>();
  boost::json::value const& doc = **file;
  json_location const where(path.string());
  auto const version = read_json_member(doc.as_object(), "schema_version", where, read_json_int64);
  if (!version) return version.error();
  if (*version > static_cast<std::int64_t>(Tool::schema_version))
    return make_error(errc::failed_precondition, path.string() + ": schema_version " +
                                                     std::to_string(*version) +
                                                     " is newer than this proxytask understands (" +
                                                     std::to_string(Tool::schema_version) +
                                                     "); resume this run with a newer proxytask");
  if constexpr (requires { Tool::state_from_json(doc, where); }) {
    // A tool may offer a reader whose errors name the field ("file#/pointer: ...").
    auto s = Tool::state_from_json(doc, where);
    if (!s) return s.error();
    return std::optional<state_type>(std::move(*s));
  } else {
    auto s = boost::json::try_value_to<state_type>(doc);
    if (!s)
      return make_error(errc::malformed_file,
                        path.string() + "#: not a valid state (" + s.error().message() + ")");
    return std::optional<state_type>(std::move(*s));
  }
}

/// Writes {"schema_version": N, ...state} atomically.
template <class Tool>
result<void> save_state(std::filesystem::path const& path, typename Tool::state const& s) {
  auto const jv = boost::json::value_from(s);
  auto const* members = jv.if_object();
  if (!members)
    return make_error(errc::internal, std::string(Tool::state_file_name) +
                                          ": the tool's state does not convert to a JSON object");
  boost::json::object o{{"schema_version", static_cast<int>(Tool::schema_version)}};
  for (auto const& kv : *members)
    if (kv.key() != "schema_version") o[kv.key()] = kv.value();
  return write_json_file(path, o);
}

inline error cancelled_error(std::filesystem::path const& run_dir, std::string const& why) {
  return make_error(errc::cancelled, why + "; the state of " + run_dir.string() +
                                         " is saved and its trials keep running: run again to "
                                         "resume");
}

}  // namespace detail

/// Runs `tool` on `exec` in options.run_dir until the tool finishes (see the file comment).
/// @returns finish.result (finish.files written atomically into run_dir first);
///          errc::failed_precondition when another controller holds the directory or the state
///          file is of a newer schema; errc::malformed_file naming the file (and line/column or
///          JSON pointer) for a broken state file or journal; errc::cancelled on SIGINT/SIGTERM
///          or after options.max_polls loops (resumable); an executor's error
template <tool Tool, exec::executor Exec>
result<boost::json::value> run(Tool const& tool, Exec& exec, run_options const& options) {
  namespace fs = std::filesystem;
  fs::path const& run_dir = options.run_dir;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return make_error(ec, "cannot create the run directory " + run_dir.string());
  auto const lock = detail::run_lock::acquire(run_dir);
  if (!lock) return lock.error();
  detail::signal_guard const signals;

  fs::path const state_path = run_dir / Tool::state_file_name;
  auto loaded = detail::load_state<Tool>(state_path);
  if (!loaded) return loaded.error();
  bool const resumed = loaded->has_value();
  typename Tool::state state = resumed ? std::move(**loaded) : tool.initial();
  if (!resumed)
    if (auto const r = detail::save_state<Tool>(state_path, state); !r) return r.error();

  auto journal = detail::launch_journal::load(run_dir / launch_journal_file_name);
  if (!journal) return journal.error();

  // Launches whose intent was recorded but whose completion was not (killed in between): the
  // trial may or may not exist. Ask the executor; launch only those it does not know.
  bool any_unfinished = false;
  for (auto const& e : journal->entries()) any_unfinished = any_unfinished || !e.launched;
  if (any_unfinished) {
    auto const obs = exec.observe();
    if (!obs) return obs.error();
    for (auto& e : journal->entries()) {
      if (e.launched) continue;
      if (!obs->find(e.launch.trial_id))
        if (auto const r = exec.launch(e.launch); !r) return r.error();
      e.launched = true;
      if (auto const r = journal->save(); !r) return r.error();
    }
  }
  // Commands persisted by a controller that was killed before it had done them all.
  if (!journal->pending().empty()) {
    for (auto const& c : journal->pending())
      if (auto const r = detail::act_on(exec, c); !r) return r.error();
    journal->pending().clear();
    if (auto const r = journal->save(); !r) return r.error();
  }

  auto const interrupted = [&] {
    if (options.cancel_on_exit) detail::cancel_unfinished(exec);
    return detail::cancelled_error(run_dir, options.cancel_on_exit
                                                ? "interrupted by a signal (trials cancelled)"
                                                : "interrupted by a signal");
  };
  double started_unix_s = -1;
  for (std::size_t poll = 0;; ++poll) {
    if (detail::cancel_requested) return interrupted();
    auto const obs = exec.observe();
    if (!obs) return obs.error();
    if (started_unix_s < 0) started_unix_s = obs->now_unix_s;
    // The controller's heartbeat in every running trial's directory: a trainer whose controller
    // is gone for longer than its threshold (15 minutes by default) stops gracefully.
    for (auto const& t : obs->trials)
      if (t.phase == trial_phase::running)
        if (auto const r = protocol::post_heartbeat(exec::trial_directory(run_dir, t.trial_id),
                                                    obs->now_unix_s);
            !r)
          return r.error();
    auto stepped = tool.advance(state, *obs);

    // Persist before acting: the launch intents and the other commands, then the next state.
    bool journal_changed = false;
    for (auto const& c : stepped.commands) {
      if (auto const* l = std::get_if<launch_trial>(&c); l && !journal->find(l->trial_id)) {
        journal->add_intent(*l);
        journal_changed = true;
      } else if (auto const* d = std::get_if<set_desired_pct>(&c)) {
        journal->pending().emplace_back(*d);
        journal_changed = true;
      } else if (auto const* x = std::get_if<stop_trial>(&c)) {
        journal->pending().emplace_back(*x);
        journal_changed = true;
      }
    }
    if (journal_changed)
      if (auto const r = journal->save(); !r) return r.error();
    if (auto const r = detail::save_state<Tool>(state_path, stepped.next); !r) return r.error();

    step_summary summary;
    summary.poll = poll;
    summary.tool_name = detail::tool_name_of<Tool>();
    summary.progress = detail::describe(tool, stepped.next, *obs);
    summary.started_unix_s = started_unix_s;
    std::optional<boost::json::value> outcome;
    for (auto const& c : stepped.commands) {
      result<void> acted = std::visit(
          [&](auto const& cmd) -> result<void> {
            using C = std::decay_t<decltype(cmd)>;
            if constexpr (std::is_same_v<C, launch_trial>) {
              auto* entry = journal->find(cmd.trial_id);
              if (entry && entry->launched) return {};  // never launch a trial twice
              if (auto const r = exec.launch(cmd); !r) return r.error();
              if (entry) entry->launched = true;
              ++summary.launches;
              return journal->save();
            } else if constexpr (std::is_same_v<C, set_desired_pct>) {
              ++summary.desired_pct_changes;
              return exec.set_desired_pct(cmd.trial_id, cmd.pct);
            } else if constexpr (std::is_same_v<C, stop_trial>) {
              ++summary.stops;
              return exec.cancel(cmd.trial_id);
            } else {
              for (auto const& [name, contents] : cmd.files) {
                fs::path const file(name);
                if (name.empty() || file.has_parent_path() || name == "." || name == "..")
                  return make_error(errc::invalid_argument, "finish: result file name \"" + name +
                                                                "\" is not a plain file name");
                if (auto const r = write_json_file(run_dir / file, contents); !r) return r;
              }
              summary.finished = true;
              summary.summary = cmd.summary;
              if (!outcome) outcome = cmd.result;
              return {};
            }
          },
          c);
      if (!acted) return acted.error();
    }
    if (!journal->pending().empty()) {
      journal->pending().clear();
      if (auto const r = journal->save(); !r) return r.error();
    }
    state = std::move(stepped.next);
    if (auto const r =
            write_json_file(run_dir / status_file_name, detail::status_document(*obs, summary));
        !r)
      return r.error();
    if (options.progress) options.progress(*obs, summary);
    if (outcome) return std::move(*outcome);
    if (detail::cancel_requested) return interrupted();
    exec.wait_for_next_poll();
    if (options.max_polls != 0 && poll + 1 >= options.max_polls)
      return detail::cancelled_error(run_dir, "stopped after " + std::to_string(options.max_polls) +
                                                  " polls (run_options::max_polls)");
  }
}

}  // namespace proxytask::workflow
