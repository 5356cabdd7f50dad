#pragma once
/// @file
/// The interface between the workflow tools and the driver (STYLE.md 2.4): what a tool observes
/// (observation, trial_status), the commands it returns (launch_trial, set_desired_pct,
/// stop_trial, finish), the step of a pure transition, and the `tool` concept. A tool is a class
/// holding only its configuration; `advance(state, observation) -> step<state>` is pure and
/// deterministic; the driver (workflow/driver.hpp) persists `next` before it acts on `commands`.

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/metrics.hpp>
#include <proxytask/protocol/model_spec.hpp>

#include <boost/json.hpp>

#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace proxytask::workflow {

/// Where a trial is in its life.
enum class trial_phase {
  pending,    ///< launch intent recorded, not started
  running,    ///< its trainer runs
  succeeded,  ///< the trainer exited 0 after training to the end or to its desired pct
  stopped,    ///< cancelled by a stop_trial command
  failed,     ///< see trial_status::failure
};

/// The phases in declaration order (for parsing and listing).
inline constexpr trial_phase all_trial_phases[] = {trial_phase::pending, trial_phase::running,
                                                   trial_phase::succeeded, trial_phase::stopped,
                                                   trial_phase::failed};

/// "pending", "running", "succeeded", "stopped", "failed".
constexpr std::string_view to_string(trial_phase p) noexcept {
  switch (p) {
    case trial_phase::pending: return "pending";
    case trial_phase::running: return "running";
    case trial_phase::succeeded: return "succeeded";
    case trial_phase::stopped: return "stopped";
    case trial_phase::failed: return "failed";
  }
  return "?";
}

/// The phase named by `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<trial_phase> parse_trial_phase(std::string_view s) noexcept {
  for (trial_phase const p : all_trial_phases)
    if (to_string(p) == s) return p;
  return std::nullopt;
}

/// Whether a trial in phase `p` has ended (succeeded, stopped or failed).
constexpr bool is_terminal(trial_phase p) noexcept {
  return p == trial_phase::succeeded || p == trial_phase::stopped || p == trial_phase::failed;
}

/// What the executor knows of one trial.
struct trial_status {
  std::string trial_id;
  trial_phase phase = trial_phase::pending;
  std::optional<protocol::failure_kind> failure;  ///< when failed
  std::string failure_message;
  protocol::trial_metrics metrics;  ///< what TRIAL_TRAINING_METRICS.json holds (maybe empty)
  /// The latency a separate latency calculator measured for the trial's model (the seed's
  /// on-premises latency device; protocol/latency.hpp), when one did: a value, or NaN for a
  /// failed measurement. Tools prefer it to metrics.latency (the trainer's own).
  std::optional<double> measured_latency;
};

/// What a tool sees at each poll. Time comes in here (real clock or simulated), never from a
/// clock read inside advance().
struct observation {
  double now_unix_s = 0;
  std::vector<trial_status> trials;  ///< every trial the run has launched, in launch order

  /// The trial `trial_id`, or nullptr.
  trial_status const* find(std::string_view trial_id) const noexcept {
    for (auto const& t : trials)
      if (t.trial_id == trial_id) return &t;
    return nullptr;
  }
};

/// Command: launch a trial (create <run_dir>/trials/<trial_id>/, MODEL_SPEC.json, the signals,
/// start the trainer).
struct launch_trial {
  std::string trial_id;  ///< unique in the run; also its directory name under <run_dir>/trials/
  protocol::model_spec spec;
  std::uint64_t seed = 0;
  std::optional<std::string> resume_from;  ///< an earlier trial_id whose checkpoint to continue
  std::map<std::string, std::string> proxy_args;  ///< trainer arguments (launch extras)
  std::optional<double> desired_pct;  ///< DESIRED_TRAINING_PCT.json written before launch
};

/// Command: post a new desired pct to a running trial (0 = stop now).
struct set_desired_pct {
  std::string trial_id;
  double pct = 0;
};

/// Command: cancel a trial (SIGTERM, then SIGKILL).
struct stop_trial {
  std::string trial_id;
};

/// Command: the tool is done.
struct finish {
  boost::json::value result;
  std::string summary;
  /// Result files (name -> contents) the DRIVER writes atomically into run_dir.
  std::map<std::string, boost::json::value> files;
};

/// Everything a tool can ask of the driver.
using command = std::variant<launch_trial, set_desired_pct, stop_trial, finish>;

/// The outcome of one pure transition.
template <class State>
struct step {
  State next;
  std::vector<command> commands;
};

/// How a tool describes where it stands, for progress lines and status.json.
struct tool_progress {
  std::string phase;     ///< e.g. "measure"
  std::string decision;  ///< the last decision and why, one sentence
  /// The fraction of the tool's work done, in [0, 1], when the tool can tell (for estimates).
  std::optional<double> fraction_done;
};

/// A type that converts to JSON and back (value_from and try_value_to / value_to overloads).
template <class T>
concept json_round_trip =
    boost::json::has_value_from<T>::value && boost::json::has_value_to<T>::value;

/// A workflow tool: a configuration class with a JSON-convertible `state`, a state file name, a
/// schema version, `initial()` and a pure `advance(state, observation)`.
template <class Tool>
concept tool = json_round_trip<typename Tool::state> &&
    requires(Tool const& t, typename Tool::state const& s, observation const& o) {
  { Tool::state_file_name } -> std::convertible_to<std::string_view>;
  { Tool::schema_version } -> std::convertible_to<int>;
  { t.initial() } -> std::same_as<typename Tool::state>;
  { t.advance(s, o) } -> std::same_as<step<typename Tool::state>>;
};

/// A tool that can describe its state (optional; the driver puts it in status.json and the
/// progress line): `t.describe(state, observation)` (pure, like advance) and `Tool::tool_name`.
template <class Tool>
concept describable = tool<Tool> &&
    requires(Tool const& t, typename Tool::state const& s, observation const& o) {
  { t.describe(s, o) } -> std::same_as<tool_progress>;
  { Tool::tool_name } -> std::convertible_to<std::string_view>;
};

// ---- JSON conversions -------------------------------------------------------------------------

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, trial_phase p) {
  jv = to_string(p);
}

/// Reads a trial_phase string at `where`.
inline result<trial_phase> read_trial_phase(boost::json::value const& v,
                                            json_location const& where) {
  auto const s = read_json_string(v, where);
  if (!s) return s.error();
  if (auto const p = parse_trial_phase(*s)) return *p;
  return where.fail("unknown trial phase \"" + *s +
                    "\" (expected pending, running, succeeded, stopped or failed)");
}

inline boost::system::result<trial_phase> tag_invoke(boost::json::try_value_to_tag<trial_phase>,
                                                     boost::json::value const& jv) {
  auto p = read_trial_phase(jv, json_location(""));
  if (!p) return boost::system::error_code(p.error().code);
  return *p;
}

/// {"trial_id", "spec", "seed", "resume_from"?, "proxy_args", "desired_pct"?}
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, launch_trial const& l) {
  boost::json::object args;
  for (auto const& [k, v] : l.proxy_args) args[k] = v;
  boost::json::object o{{"trial_id", l.trial_id},
                        {"spec", boost::json::value_from(l.spec)},
                        {"seed", l.seed},
                        {"proxy_args", std::move(args)}};
  if (l.resume_from) o["resume_from"] = *l.resume_from;
  if (l.desired_pct) o["desired_pct"] = json_number(*l.desired_pct);
  jv = std::move(o);
}

/// Reads a launch_trial at `where` (as written by its value_from).
inline result<launch_trial> launch_trial_from_json(boost::json::value const& v,
                                                   json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  launch_trial l;
  auto id = read_json_member(**o, "trial_id", where, read_json_string);
  if (!id) return id.error();
  l.trial_id = std::move(*id);
  auto spec = read_json_member(**o, "spec", where, protocol::model_spec_from_json);
  if (!spec) return spec.error();
  l.spec = std::move(*spec);
  auto const seed = read_json_field(**o, "seed", where);
  if (!seed) return seed.error();
  if ((*seed)->is_uint64())
    l.seed = (*seed)->get_uint64();
  else if (auto const s = read_json_count(**seed, where / "seed"))
    l.seed = static_cast<std::uint64_t>(*s);
  else
    return s.error();
  if (auto const* r = (*o)->if_contains("resume_from"); r && !r->is_null()) {
    auto s = read_json_string(*r, where / "resume_from");
    if (!s) return s.error();
    l.resume_from = std::move(*s);
  }
  if (auto const* a = (*o)->if_contains("proxy_args")) {
    auto const args = read_json_object(*a, where / "proxy_args");
    if (!args) return args.error();
    for (auto const& kv : **args) {
      auto s = read_json_string(kv.value(), where / "proxy_args" / kv.key());
      if (!s) return s.error();
      l.proxy_args.emplace(std::string(kv.key()), std::move(*s));
    }
  }
  if (auto const* d = (*o)->if_contains("desired_pct"); d && !d->is_null()) {
    auto const pct = read_json_non_negative(*d, where / "desired_pct");
    if (!pct) return pct.error();
    l.desired_pct = *pct;
  }
  return l;
}

inline boost::system::result<launch_trial> tag_invoke(boost::json::try_value_to_tag<launch_trial>,
                                                      boost::json::value const& jv) {
  auto l = launch_trial_from_json(jv, json_location(""));
  if (!l) return boost::system::error_code(l.error().code);
  return std::move(*l);
}

/// {"trial_id", "phase", "failure"? (kind string), "failure_message", "metrics",
/// "measured_latency"? (a number, or null for a failed measurement)}
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, trial_status const& t) {
  boost::json::object o{{"trial_id", t.trial_id},
                        {"phase", to_string(t.phase)},
                        {"failure_message", t.failure_message},
                        {"metrics", boost::json::value_from(t.metrics)}};
  if (t.failure) o["failure"] = protocol::to_string(*t.failure);
  if (t.measured_latency) o["measured_latency"] = json_number(*t.measured_latency);
  jv = std::move(o);
}

/// Reads a trial_status at `where` (as written by its value_from).
inline result<trial_status> trial_status_from_json(boost::json::value const& v,
                                                   json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  trial_status t;
  auto id = read_json_member(**o, "trial_id", where, read_json_string);
  if (!id) return id.error();
  t.trial_id = std::move(*id);
  auto const phase = read_json_member(**o, "phase", where, read_trial_phase);
  if (!phase) return phase.error();
  t.phase = *phase;
  if (auto const* f = (*o)->if_contains("failure"); f && !f->is_null()) {
    auto const s = read_json_string(*f, where / "failure");
    if (!s) return s.error();
    t.failure = protocol::parse_failure_kind(*s);
    if (!t.failure) return (where / "failure").fail("unknown failure kind \"" + *s + "\"");
  }
  if (auto const* m = (*o)->if_contains("failure_message")) {
    auto s = read_json_string(*m, where / "failure_message");
    if (!s) return s.error();
    t.failure_message = std::move(*s);
  }
  if (auto const* m = (*o)->if_contains("metrics")) {
    auto metrics = protocol::trial_metrics_from_json(*m, where / "metrics");
    if (!metrics) return metrics.error();
    t.metrics = std::move(*metrics);
  }
  if (auto const* m = (*o)->if_contains("measured_latency")) {
    if (m->is_null()) {
      t.measured_latency = std::numeric_limits<double>::quiet_NaN();
    } else {
      auto const latency = read_json_double(*m, where / "measured_latency");
      if (!latency) return latency.error();
      t.measured_latency = *latency;
    }
  }
  return t;
}

inline boost::system::result<trial_status> tag_invoke(boost::json::try_value_to_tag<trial_status>,
                                                      boost::json::value const& jv) {
  auto t = trial_status_from_json(jv, json_location(""));
  if (!t) return boost::system::error_code(t.error().code);
  return std::move(*t);
}

}  // namespace proxytask::workflow
