#pragma once
/// @file
/// simulated_executor: trials that "train" on synthetic learning curves under a virtual clock, so
/// that hours of training run in milliseconds. It writes the real protocol files in real trial
/// directories (<run_dir>/trials/<trial_id>/: MODEL_SPEC.json, DESIRED_TRAINING_PCT.json,
/// TRIAL_TRAINING_METRICS.json through protocol::trial_reporter, TRIAL_FAILURE.json), so the
/// driver and the state files are exercised exactly as with real trainers.
///
/// Each trial's curve is a (1 - exp(-k t)) + noise, reaching about its final accuracy at the end
/// of training: the spec's numeric parameter "final_accuracy" if there is one, else a value in
/// [0.6, 0.95] from a hash of the model_id. Noise, and whether (and where) the trial diverges,
/// runs out of memory or crashes, are seeded by (options.seed, the trial's seed, the model_id),
/// so a run is deterministic for a seed. The clock and each trial's progress are kept in small
/// JSON files (<run_dir>/simulated_executor.json, <trial_dir>/SIMULATED_TRIAL.json), so a new
/// simulated_executor on the same run directory (a controller restart) continues the same trials.
/// A trial's MODEL_LATENCY.json, written by a latency calculator (workflow/latency_calculator.hpp)
/// running next to the simulation, is reported as its trial_status::measured_latency.

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/detail/trial_files.hpp>
#include <proxytask/exec/executor.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/trainer.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::exec {

/// The simulation's settings.
struct simulated_options {
  double poll_interval_s = 60;      ///< virtual seconds per wait_for_next_poll
  double steps_per_second = 10;     ///< training speed of every trial
  std::int64_t total_steps = 1000;  ///< steps of a full training
  std::int64_t cycle_steps = 50;    ///< steps per reported cycle (one accuracy point each)
  double divergence_rate = 0;       ///< probability that a trial diverges (NaN, then failed)
  double oom_rate = 0;              ///< probability that a trial runs out of memory at its start
  double crash_rate = 0;            ///< probability that a trial crashes at some cycle
  std::uint64_t seed = 0;           ///< seeds everything random in the simulation
  double start_unix_s = 1'700'000'000;  ///< the virtual clock at the start of a new run
  double noise = 0.01;                  ///< amplitude of the accuracy noise (uniform +-noise/2)
};

namespace detail {

inline constexpr std::string_view simulated_trial_file_name = "SIMULATED_TRIAL.json";
inline constexpr std::string_view simulated_clock_file_name = "simulated_executor.json";

/// SplitMix64's finaliser: a well-mixed 64-bit hash of a word.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// FNV-1a of a string.
constexpr std::uint64_t fnv1a(std::string_view s) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char const c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

/// A uniform double in [0, 1) from a 64-bit word.
constexpr double unit_interval(std::uint64_t r) noexcept {
  return static_cast<double>(r >> 11) * 0x1p-53;
}

/// One simulated trainer's progress (SIMULATED_TRIAL.json).
struct simulated_trial {
  std::int64_t launch_index = 0;
  std::uint64_t key = 0;  ///< seeds the noise (options.seed, trial seed, model_id)
  double final_accuracy = 0;
  workflow::trial_phase phase = workflow::trial_phase::running;
  std::int64_t trained_steps = 0;
  double step_budget = 0;  ///< steps the clock has granted and not yet spent
  std::optional<protocol::failure_kind> failure;
  std::int64_t failure_cycle = 0;  ///< the cycle (0-based) where the failure strikes
};

inline boost::json::value to_json(simulated_trial const& t) {
  boost::json::object o{{"launch_index", t.launch_index},
                        {"key", t.key},
                        {"final_accuracy", json_number(t.final_accuracy)},
                        {"phase", workflow::to_string(t.phase)},
                        {"trained_steps", t.trained_steps},
                        {"step_budget", json_number(t.step_budget)},
                        {"failure_cycle", t.failure_cycle}};
  if (t.failure) o["failure"] = protocol::to_string(*t.failure);
  return o;
}

inline result<simulated_trial> simulated_trial_from_json(boost::json::value const& v,
                                                         json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  simulated_trial t;
  auto const index = read_json_member(**o, "launch_index", where, read_json_count);
  if (!index) return index.error();
  t.launch_index = *index;
  auto const key = read_json_field(**o, "key", where);
  if (!key) return key.error();
  if ((*key)->is_uint64())
    t.key = (*key)->get_uint64();
  else if (auto const k = read_json_count(**key, where / "key"))
    t.key = static_cast<std::uint64_t>(*k);
  else
    return k.error();
  auto const acc = read_json_member(**o, "final_accuracy", where, read_json_finite);
  if (!acc) return acc.error();
  t.final_accuracy = *acc;
  auto const phase = read_json_member(**o, "phase", where, workflow::read_trial_phase);
  if (!phase) return phase.error();
  t.phase = *phase;
  auto const trained = read_json_member(**o, "trained_steps", where, read_json_count);
  if (!trained) return trained.error();
  t.trained_steps = *trained;
  auto const budget = read_json_member(**o, "step_budget", where, read_json_non_negative);
  if (!budget) return budget.error();
  t.step_budget = *budget;
  auto const cycle = read_json_member(**o, "failure_cycle", where, read_json_count);
  if (!cycle) return cycle.error();
  t.failure_cycle = *cycle;
  if (auto const* f = (*o)->if_contains("failure")) {
    auto const s = read_json_string(*f, where / "failure");
    if (!s) return s.error();
    t.failure = protocol::parse_failure_kind(*s);
    if (!t.failure) return (where / "failure").fail("unknown failure kind");
  }
  return t;
}

}  // namespace detail

/// An executor whose trials follow synthetic learning curves under a virtual clock (see the
/// file comment). Satisfies exec::executor.
class simulated_executor {
 public:
  /// @param[in] run_dir the run directory (created if needed); trials go to run_dir/trials/
  /// @param[in] options the simulation's settings
  /// @pre poll_interval_s, steps_per_second >= 0 and finite; total_steps, cycle_steps > 0;
  ///      rates in [0, 1]
  simulated_executor(std::filesystem::path run_dir, simulated_options options = {})
      : run_dir_(std::move(run_dir)), options_(options), now_(options.start_unix_s) {
    PROXYTASK_EXPECTS(std::isfinite(options_.poll_interval_s) && options_.poll_interval_s >= 0,
                      "simulated_options::poll_interval_s must be finite and >= 0");
    PROXYTASK_EXPECTS(std::isfinite(options_.steps_per_second) && options_.steps_per_second >= 0,
                      "simulated_options::steps_per_second must be finite and >= 0");
    PROXYTASK_EXPECTS(options_.total_steps > 0 && options_.cycle_steps > 0,
                      "simulated_options: total_steps and cycle_steps must be positive");
    for (double const r : {options_.divergence_rate, options_.oom_rate, options_.crash_rate})
      PROXYTASK_EXPECTS(r >= 0 && r <= 1, "simulated_options: rates must be in [0, 1]");
    load_clock();
  }

  /// The virtual clock (unix seconds).
  double now() const noexcept { return now_; }
  std::filesystem::path trial_dir(std::string const& trial_id) const {
    return trial_directory(run_dir_, trial_id);
  }

  /// Creates the trial's directory, MODEL_SPEC.json and DESIRED_TRAINING_PCT.json (when given)
  /// and starts its simulated trainer. With resume_from, it continues that trial's metrics.
  /// @returns errc::failed_precondition when the trial exists already; errc::not_found when
  ///          resume_from names no trial; the error of a write
  result<void> launch(workflow::launch_trial const& l) {
    if (auto const e = take_error()) return *e;
    if (l.trial_id.empty() || l.trial_id.find('/') != std::string::npos || l.trial_id == "." ||
        l.trial_id == "..")
      return make_error(errc::invalid_argument, "bad trial id \"" + l.trial_id + "\"");
    auto const dir = trial_dir(l.trial_id);
    std::error_code ec;
    if (std::filesystem::exists(dir / detail::simulated_trial_file_name, ec))
      return make_error(errc::failed_precondition,
                        "trial " + l.trial_id + " was launched already (" + dir.string() + ")");
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_error(ec, "cannot create the trial directory " + dir.string());
    if (auto const r = protocol::post_model_spec(dir, l.spec); !r) return r.error();
    if (l.desired_pct)
      if (auto const r = protocol::post_desired_pct(dir, *l.desired_pct); !r) return r.error();

    detail::simulated_trial t;
    t.launch_index = launched_;
    t.key = detail::mix64(detail::mix64(options_.seed ^ detail::mix64(l.seed)) ^
                          detail::fnv1a(l.spec.model_id));
    t.final_accuracy = final_accuracy_of(l.spec);
    draw_failure(t);
    if (l.resume_from) {
      auto const from = read_trial(*l.resume_from);
      if (!from) return from.error();
      t.trained_steps = from->trained_steps;
      auto const text = read_file(trial_dir(*l.resume_from) / protocol::training_metrics_file_name);
      if (text) {
        if (auto const w = write_file_atomically(dir / protocol::training_metrics_file_name, *text);
            !w)
          return w.error();
      } else if (text.error().code != errc::not_found) {
        return text.error();
      }
    }
    if (auto const r = write_trial(l.trial_id, t); !r) return r.error();
    ++launched_;
    return save_clock();
  }

  /// The statuses of all trials in the run directory, in launch order, read from their files.
  result<workflow::observation> observe() {
    if (auto const e = take_error()) return *e;
    workflow::observation obs;
    obs.now_unix_s = now_;
    auto ids = trial_ids();
    if (!ids) return ids.error();
    std::vector<std::pair<std::int64_t, workflow::trial_status>> found;
    for (auto const& id : *ids) {
      auto const t = read_trial(id);
      if (!t) return t.error();
      workflow::trial_status s;
      s.trial_id = id;
      s.phase = t->phase;
      auto metrics = protocol::read_metrics(trial_dir(id));
      if (metrics)
        s.metrics = std::move(*metrics);
      else if (metrics.error().code != errc::not_found)
        return metrics.error();
      if (auto const r = detail::read_measured_latency_into(s, trial_dir(id)); !r) return r.error();
      if (t->phase == workflow::trial_phase::failed) {
        auto const f = protocol::read_failure(trial_dir(id));
        if (!f) return f.error();
        s.failure = f->kind;
        s.failure_message = f->message;
      }
      found.emplace_back(t->launch_index, std::move(s));
    }
    std::sort(found.begin(), found.end(),
              [](auto const& a, auto const& b) { return a.first < b.first; });
    for (auto& f : found) obs.trials.push_back(std::move(f.second));
    return obs;
  }

  /// Posts DESIRED_TRAINING_PCT.json; the trial obeys it at its next cycle boundary.
  result<void> set_desired_pct(std::string const& trial_id, double pct) {
    if (auto const e = take_error()) return *e;
    auto const t = read_trial(trial_id);
    if (!t) return t.error();
    if (!std::isfinite(pct) || pct < 0)
      return make_error(errc::invalid_argument, "desired pct must be finite and >= 0");
    return protocol::post_desired_pct(trial_dir(trial_id), pct);
  }

  /// Stops a running trial (phase stopped); an ended trial is left as it is.
  result<void> cancel(std::string const& trial_id) {
    if (auto const e = take_error()) return *e;
    auto t = read_trial(trial_id);
    if (!t) return t.error();
    if (workflow::is_terminal(t->phase)) return {};
    t->phase = workflow::trial_phase::stopped;
    return write_trial(trial_id, *t);
  }

  /// Advances the virtual clock by poll_interval_s and trains every running trial for that
  /// time. An I/O error is kept and returned by the next call of another member.
  void wait_for_next_poll() {
    if (error_) return;
    now_ += options_.poll_interval_s;
    if (auto const r = save_clock(); !r) {
      error_ = r.error();
      return;
    }
    auto const ids = trial_ids();
    if (!ids) {
      error_ = ids.error();
      return;
    }
    for (auto const& id : *ids)
      if (auto const r = train(id); !r) {
        error_ = r.error();
        return;
      }
  }

 private:
  double final_accuracy_of(protocol::model_spec const& spec) const {
    if (auto const* a = spec.parameters.if_contains("final_accuracy")) {
      auto const d = read_json_finite(*a, json_location(""));
      if (d) return std::clamp(*d, 0.0, 1.0);
    }
    return 0.6 + 0.35 * detail::unit_interval(detail::mix64(detail::fnv1a(spec.model_id)));
  }

  void draw_failure(detail::simulated_trial& t) const {
    std::uint64_t s = t.key ^ 0x5eedfa11ULL;
    auto next = [&s] { return detail::mix64(s++); };
    double const u_oom = detail::unit_interval(next());
    double const u_div = detail::unit_interval(next());
    double const u_crash = detail::unit_interval(next());
    std::uint64_t const cycles = static_cast<std::uint64_t>(
        (options_.total_steps + options_.cycle_steps - 1) / options_.cycle_steps);
    auto const cycle = static_cast<std::int64_t>(next() % cycles);
    if (u_oom < options_.oom_rate) {
      t.failure = protocol::failure_kind::oom;
      t.failure_cycle = 0;
    } else if (u_div < options_.divergence_rate) {
      t.failure = protocol::failure_kind::diverged;
      t.failure_cycle = cycle;
    } else if (u_crash < options_.crash_rate) {
      t.failure = protocol::failure_kind::crashed;
      t.failure_cycle = cycle;
    }
  }

  /// The curve's accuracy after the cycle that ended at end_step.
  double accuracy_at(detail::simulated_trial const& t, std::int64_t end_step) const {
    double constexpr k = 5.0;
    double const x = static_cast<double>(end_step + 1) / static_cast<double>(options_.total_steps);
    double const a = t.final_accuracy / (1.0 - std::exp(-k));
    double const u = detail::unit_interval(
        detail::mix64(t.key ^ detail::mix64(static_cast<std::uint64_t>(end_step))));
    return std::clamp(a * (1.0 - std::exp(-k * x)) + options_.noise * (u - 0.5), 0.0, 1.0);
  }

  /// Trains one trial for the granted time, honouring its signals.
  result<void> train(std::string const& id) {
    auto t = read_trial(id);
    if (!t) return t.error();
    if (t->phase != workflow::trial_phase::running) return {};
    t->step_budget += options_.steps_per_second * options_.poll_interval_s;
    double const now = now_;
    auto reporter = protocol::trial_reporter::open(
        trial_dir(id), protocol::reporter_options{.heartbeat_threshold_secs = 1e300,
                                                  .clock = [now] { return now; }});
    if (!reporter) return reporter.error();
    std::int64_t const total = options_.total_steps;
    for (;;) {
      auto const stop = reporter->should_stop(t->trained_steps - 1, total);
      if (!stop) return stop.error();
      if (*stop != protocol::stop_reason::keep_going || t->trained_steps >= total) {
        t->phase = workflow::trial_phase::succeeded;
        break;
      }
      std::int64_t const n = std::min(options_.cycle_steps, total - t->trained_steps);
      if (t->step_budget < static_cast<double>(n)) break;
      std::int64_t const begin = t->trained_steps, end = begin + n - 1;
      std::int64_t const cycle = begin / options_.cycle_steps;
      double const secs = static_cast<double>(n) / std::max(options_.steps_per_second, 1e-300);
      if (t->failure && cycle >= t->failure_cycle) {
        std::string message;
        if (*t->failure == protocol::failure_kind::diverged) {
          auto const r = reporter->report_accuracy(begin, end, secs, total,
                                                   std::numeric_limits<double>::quiet_NaN());
          if (!r) return r.error();
          message = "simulated divergence: the loss became NaN";
        } else if (*t->failure == protocol::failure_kind::oom) {
          message = "simulated out of memory";
        } else {
          message = "simulated crash";
        }
        auto const r = reporter->report_failure({*t->failure, message, begin});
        if (!r) return r.error();
        t->phase = workflow::trial_phase::failed;
        break;
      }
      auto const r = reporter->report_accuracy(begin, end, secs, total, accuracy_at(*t, end));
      if (!r) return r.error();
      t->trained_steps = end + 1;
      t->step_budget -= static_cast<double>(n);
    }
    if (workflow::is_terminal(t->phase)) t->step_budget = 0;
    return write_trial(id, *t);
  }

  result<std::vector<std::string>> trial_ids() const {
    std::vector<std::string> ids;
    std::error_code ec;
    auto const root = run_dir_ / trials_directory_name;
    if (!std::filesystem::exists(root, ec)) return ids;
    for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
      if (std::filesystem::exists(it->path() / detail::simulated_trial_file_name))
        ids.push_back(it->path().filename().string());
    if (ec) return make_error(ec, "cannot list " + root.string());
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  result<detail::simulated_trial> read_trial(std::string const& id) const {
    auto const path = trial_dir(id) / detail::simulated_trial_file_name;
    auto const text = read_file(path);
    if (!text) {
      if (text.error().code == errc::not_found)
        return make_error(errc::not_found, "no trial " + id + " in " + run_dir_.string());
      return text.error();
    }
    auto const doc = parse_json(*text, path.string());
    if (!doc) return doc.error();
    return detail::simulated_trial_from_json(*doc, json_location(path.string()));
  }

  result<void> write_trial(std::string const& id, detail::simulated_trial const& t) const {
    return write_json_file(trial_dir(id) / detail::simulated_trial_file_name, detail::to_json(t));
  }

  void load_clock() {
    auto const path = run_dir_ / detail::simulated_clock_file_name;
    auto const text = read_file(path);
    if (!text) {
      if (text.error().code != errc::not_found) error_ = text.error();
      return;
    }
    auto const doc = parse_json(*text, path.string());
    if (!doc) {
      error_ = doc.error();
      return;
    }
    json_location const where(path.string());
    auto const o = read_json_object(*doc, where);
    if (!o) {
      error_ = o.error();
      return;
    }
    auto const now = read_json_member(**o, "now_unix_s", where, read_json_finite);
    auto const launched = read_json_member(**o, "launched", where, read_json_count);
    if (!now)
      error_ = now.error();
    else if (!launched)
      error_ = launched.error();
    else {
      now_ = *now;
      launched_ = *launched;
    }
  }

  result<void> save_clock() const {
    std::error_code ec;
    std::filesystem::create_directories(run_dir_, ec);
    if (ec) return make_error(ec, "cannot create the run directory " + run_dir_.string());
    return write_json_file(run_dir_ / detail::simulated_clock_file_name,
                           boost::json::object{{"now_unix_s", now_}, {"launched", launched_}});
  }

  std::optional<error> take_error() {
    if (!error_) return std::nullopt;
    auto e = std::move(error_);
    error_.reset();
    return e;
  }

  std::filesystem::path run_dir_;
  simulated_options options_;
  double now_;
  std::int64_t launched_ = 0;
  std::optional<error> error_;
};

static_assert(executor<simulated_executor>);

}  // namespace proxytask::exec
