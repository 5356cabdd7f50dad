#pragma once
// Definitions of workflow/model_selection.hpp (included at its end).

#include <proxytask/workflow/model_selection.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>
#include <span>
#include <utility>

namespace proxytask::workflow {

namespace detail::selection {

// ---- enum names -----------------------------------------------------------------------------

template <class E>
struct named {
  E value;
  std::string_view name;
};

inline constexpr named<selection_phase> phase_names[] = {{selection_phase::training, "training"},
                                                         {selection_phase::done, "done"},
                                                         {selection_phase::aborted, "aborted"}};
inline constexpr named<latency_source> latency_names[] = {
    {latency_source::none, "none"},
    {latency_source::trainer, "trainer"},
    {latency_source::calculator, "calculator"}};
inline constexpr named<selection_verdict> verdict_names[] = {
    {selection_verdict::running, "running"},
    {selection_verdict::awaiting_latency, "awaiting_latency"},
    {selection_verdict::valid, "valid"},
    {selection_verdict::invalid, "invalid"}};
inline constexpr named<invalid_reason> reason_names[] = {
    {invalid_reason::failed, "failed"},
    {invalid_reason::nan_accuracy, "nan_accuracy"},
    {invalid_reason::pct_not_reached, "pct_not_reached"},
    {invalid_reason::no_latency, "no_latency"},
    {invalid_reason::latency_failed, "latency_failed"},
    {invalid_reason::latency_timeout, "latency_timeout"}};
inline constexpr named<selection_fate> fate_names[] = {
    {selection_fate::pending, "pending"},   {selection_fate::kept, "kept"},
    {selection_fate::removed, "removed"},   {selection_fate::invalid, "invalid"},
    {selection_fate::replaced, "replaced"}, {selection_fate::reference, "reference"}};

template <class E, std::size_t N>
constexpr std::string_view name_in(named<E> const (&table)[N], E e) noexcept {
  for (auto const& n : table)
    if (n.value == e) return n.name;
  return "?";
}

/// Reads an enum written by name_in at `where`; the error lists the names.
template <class E, std::size_t N>
result<E> read_enum(named<E> const (&table)[N], boost::json::value const& v,
                    json_location const& where) {
  auto const s = read_json_string(v, where);
  if (!s) return s.error();
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) {
    if (table[i].name == *s) return table[i].value;
    expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(table[i].name);
  }
  return where.fail("unknown value \"" + *s + "\" (expected " + expected + ")");
}

}  // namespace detail::selection

inline std::string_view to_string(selection_phase p) noexcept {
  return detail::selection::name_in(detail::selection::phase_names, p);
}
inline std::string_view to_string(latency_source s) noexcept {
  return detail::selection::name_in(detail::selection::latency_names, s);
}
inline std::string_view to_string(selection_verdict v) noexcept {
  return detail::selection::name_in(detail::selection::verdict_names, v);
}
inline std::string_view to_string(invalid_reason r) noexcept {
  return detail::selection::name_in(detail::selection::reason_names, r);
}
inline std::string_view to_string(selection_fate f) noexcept {
  return detail::selection::name_in(detail::selection::fate_names, f);
}

namespace detail::selection {

// ---- seeds, ids, numbers --------------------------------------------------------------------

/// SplitMix64's finaliser.
constexpr std::uint64_t mix(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// The seed of model m, below 2^31 (trainers pass seeds to 32-bit RNGs); its own stream,
/// distinct from the variance tool's.
constexpr std::uint64_t model_seed(std::uint64_t seed, std::uint64_t m) noexcept {
  constexpr std::uint64_t purpose = 0x6d6f64656c73656cULL;  // "modelsel"
  return mix(mix(seed ^ mix(purpose)) + m) >> 33;
}

inline std::string trial_id(std::size_t iteration, std::size_t model) {
  return "iter-" + std::to_string(iteration) + "-model-" + std::to_string(model);
}

inline std::string trial_dir(std::string_view id) { return "trials/" + std::string(id); }

/// The shortest text that reads back as `v` ("3.3333333333333335", "101").
/// A pct for a progress line, to 4 significant digits ("11.67", not "11.666666666666668"; the
/// state has every digit).
inline std::string brief_pct(double pct) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", pct);
  return text;
}

inline std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  auto const [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

/// A latency that counts: finite and >= 0 (the trainer's -1 and a failed NaN do not).
inline bool usable_latency(double v) noexcept { return std::isfinite(v) && v >= 0.0; }
inline bool usable_latency(std::optional<double> v) noexcept { return v && usable_latency(*v); }

inline void make_invalid(selection_trial& t, invalid_reason reason,
                         std::optional<protocol::failure_kind> failure, std::string message) {
  t.verdict = selection_verdict::invalid;
  t.reason = reason;
  t.failure = failure;
  t.message = std::move(message);
}

inline std::string reached_text(std::span<stats::curve_point const> points) {
  auto const curve = stats::normalise_curve(points);
  if (curve.empty()) return "without any metrics";
  return "at " + number_text(curve.back().training_step_pct) + "%";
}

/// Judges the latency of a trained trial (its accuracy is known): valid, awaiting it, or invalid.
/// `inherited` is the model's latency from its previous iteration's trial (a latency belongs to
/// the model, not to its training), used when the trial has none of its own.
inline void judge_latency(selection_trial& t, trial_status const* status,
                          std::optional<double> inherited, double now,
                          model_selection_tool_options const& o) {
  std::optional<double> const measured = status ? status->measured_latency : std::nullopt;
  switch (o.latency) {
    case latency_source::none: t.verdict = selection_verdict::valid; return;
    case latency_source::trainer: {
      double const trainer = status ? status->metrics.latency : protocol::latency_not_measured;
      if (usable_latency(measured))
        t.latency = *measured;
      else if (usable_latency(trainer))
        t.latency = trainer;
      else if (usable_latency(inherited))
        t.latency = *inherited;
      if (usable_latency(t.latency) || !o.latency_required) {
        t.verdict = selection_verdict::valid;
        return;
      }
      make_invalid(t, invalid_reason::no_latency, std::nullopt,
                   "no latency: the trainer reported none (latency is required)");
      return;
    }
    case latency_source::calculator:
      if (measured) {
        if (usable_latency(*measured)) {
          t.latency = *measured;
          t.verdict = selection_verdict::valid;
        } else {
          make_invalid(t, invalid_reason::latency_failed, std::nullopt,
                       "the latency calculator failed to measure the model");
        }
        return;
      }
      if (usable_latency(inherited)) {
        t.latency = *inherited;
        t.verdict = selection_verdict::valid;
        return;
      }
      if (t.ended_unix_s && now - *t.ended_unix_s >= o.latency_wait_s) {
        make_invalid(t, invalid_reason::latency_timeout, std::nullopt,
                     "no latency measured within " + number_text(o.latency_wait_s) +
                         " s after training ended");
        return;
      }
      t.verdict = selection_verdict::awaiting_latency;
      return;
  }
}

/// Judges a trial by its status (it stays running while its trainer runs).
inline void judge(selection_trial& t, trial_status const& status, selection_round const& round,
                  std::optional<double> inherited, double now,
                  model_selection_tool_options const& o) {
  if (t.verdict == selection_verdict::awaiting_latency) {
    judge_latency(t, &status, inherited, now, o);
    return;
  }
  if (status.phase == trial_phase::failed) {
    make_invalid(t, invalid_reason::failed, status.failure,
                 status.failure_message.empty() ? "the trial failed" : status.failure_message);
    return;
  }
  // A trial is judged once it has ended: the next iteration continues from its checkpoint.
  if (!is_terminal(status.phase)) return;
  auto const& points = status.metrics.points;
  std::string const ended = "it " + std::string(to_string(status.phase)) + " ";
  double accuracy = 0;
  if (round.last) {
    auto const curve = stats::normalise_curve(points);
    if (curve.empty() || curve.back().training_step_pct < 100.0) {
      make_invalid(t, invalid_reason::pct_not_reached,
                   curve.empty() ? std::optional(protocol::failure_kind::no_metrics) : std::nullopt,
                   ended + reached_text(points) + " without reaching 100%");
      return;
    }
    accuracy = curve.back().accuracy;
  } else {
    auto const at = stats::accuracy_at_pct(points, round.desired_training_step_pct);
    if (!at) {
      make_invalid(
          t, invalid_reason::pct_not_reached,
          points.empty() ? std::optional(protocol::failure_kind::no_metrics) : std::nullopt,
          ended + reached_text(points) + " without reaching " +
              number_text(round.desired_training_step_pct) + "%");
      return;
    }
    accuracy = *at;
  }
  if (!std::isfinite(accuracy)) {
    make_invalid(t, invalid_reason::nan_accuracy, protocol::failure_kind::diverged,
                 "the accuracy at " +
                     (round.last ? std::string("the end of training")
                                 : number_text(round.desired_training_step_pct) + "%") +
                     " is not finite");
    return;
  }
  t.accuracy = accuracy;
  t.ended_unix_s = now;
  judge_latency(t, &status, inherited, now, o);
}

inline bool judged(selection_trial const& t) noexcept {
  return t.verdict == selection_verdict::valid || t.verdict == selection_verdict::invalid;
}

/// The model's latency from its trial of the previous iteration (NaN-free), if any.
inline std::optional<double> inherited_latency(model_selection_state const& s, std::size_t i,
                                               selection_trial const& t) {
  if (i == 0 || !t.resume_from) return std::nullopt;
  for (auto const& p : s.iterations[i - 1].trials)
    if (p.trial_id == *t.resume_from && usable_latency(p.latency)) return p.latency;
  return std::nullopt;
}

inline launch_trial launch_of(selection_trial const& t, selection_round const& round,
                              model_selection_tool_options const& o) {
  return launch_trial{t.trial_id,    t.spec,       t.seed,
                      t.resume_from, o.proxy_args, round.desired_training_step_pct};
}

inline std::size_t count_invalid(selection_round const& round) {
  return static_cast<std::size_t>(std::count_if(
      round.trials.begin(), round.trials.end(),
      [](selection_trial const& t) { return t.verdict == selection_verdict::invalid; }));
}

inline std::string failure_text(selection_trial const& t) {
  std::string s = t.reason ? std::string(to_string(*t.reason)) : std::string("invalid");
  if (t.failure) s += " (" + std::string(protocol::to_string(*t.failure)) + ")";
  return s + ": " + t.message;
}

// ---- the result -----------------------------------------------------------------------------

inline boost::json::array string_array(std::vector<std::string> const& v) {
  boost::json::array a;
  for (auto const& s : v) a.push_back(boost::json::string(s));
  return a;
}

inline boost::json::value optional_string(std::optional<std::string> const& s) {
  return s ? boost::json::value(boost::json::string(*s)) : boost::json::value(nullptr);
}

inline boost::json::object failure_json(selection_trial const& t, std::size_t iteration) {
  boost::json::object o{{"trial_id", t.trial_id},
                        {"iteration", iteration},
                        {"model_index", t.model_index},
                        {"model_id", t.spec.model_id},
                        {"reason", t.reason ? to_string(*t.reason) : std::string_view("invalid")},
                        {"message", t.message},
                        {"replaced_by", optional_string(t.replaced_by)}};
  if (t.failure)
    o["failure"] = protocol::to_string(*t.failure);
  else
    o["failure"] = nullptr;
  return o;
}

// ---- JSON -----------------------------------------------------------------------------------

inline boost::json::object trial_json(selection_trial const& t) {
  boost::json::object o{{"trial_id", t.trial_id},
                        {"model_index", t.model_index},
                        {"seed", t.seed},
                        {"spec", boost::json::value_from(t.spec)},
                        {"resume_from", optional_string(t.resume_from)},
                        {"verdict", to_string(t.verdict)},
                        {"message", t.message},
                        {"accuracy", json_number(t.accuracy)},
                        {"latency", json_number(t.latency)},
                        {"fate", to_string(t.fate)},
                        {"replaced_by", optional_string(t.replaced_by)}};
  o["invalid_reason"] = t.reason ? boost::json::value(to_string(*t.reason)) : nullptr;
  o["failure"] = t.failure ? boost::json::value(protocol::to_string(*t.failure)) : nullptr;
  o["ended_unix_s"] = t.ended_unix_s ? json_number(*t.ended_unix_s) : nullptr;
  return o;
}

inline boost::json::object round_json(selection_round const& r) {
  boost::json::array trials;
  for (auto const& t : r.trials) trials.push_back(trial_json(t));
  return {{"num_trials", r.num_trials},
          {"trials_to_retrain", string_array(r.trials_to_retrain)},
          {"desired_training_step_pct", json_number(r.desired_training_step_pct)},
          {"search_job_name", r.search_job_name},
          {"last", r.last},
          {"cut_short", r.cut_short},
          {"concluded", r.concluded},
          {"num_models_to_remove", r.num_models_to_remove},
          {"removed_trials", string_array(r.removed_trials)},
          {"invalid_trials", string_array(r.invalid_trials)},
          {"trials", std::move(trials)}};
}

inline result<std::size_t> read_size(boost::json::value const& v, json_location const& where) {
  if (v.is_uint64()) return static_cast<std::size_t>(v.get_uint64());  // as value_from writes it
  auto const n = read_json_count(v, where);
  if (!n) return n.error();
  return static_cast<std::size_t>(*n);
}

inline result<std::uint64_t> read_seed(boost::json::value const& v, json_location const& where) {
  if (v.is_uint64()) return v.get_uint64();
  auto const s = read_json_count(v, where);
  if (!s) return s.error();
  return static_cast<std::uint64_t>(*s);
}

inline result<bool> read_bool(boost::json::value const& v, json_location const& where) {
  if (v.is_bool()) return v.get_bool();
  return where.fail("expected true or false");
}

inline result<std::string> read_id(boost::json::value const& v, json_location const& where) {
  auto s = read_json_string(v, where);
  if (s && s->empty()) return where.fail("a trial id cannot be empty");
  return s;
}

/// A trial id or null.
inline result<std::optional<std::string>> read_optional_id(boost::json::value const& v,
                                                           json_location const& where) {
  if (v.is_null()) return std::optional<std::string>();
  auto s = read_id(v, where);
  if (!s) return s.error();
  return std::optional<std::string>(std::move(*s));
}

/// A number or null (NaN).
inline result<double> read_optional_number(boost::json::value const& v,
                                           json_location const& where) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  return read_json_double(v, where);
}

inline result<std::vector<std::string>> read_ids(boost::json::value const& v,
                                                 json_location const& where) {
  auto const a = read_json_array(v, where);
  if (!a) return a.error();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < (*a)->size(); ++i) {
    auto s = read_id((**a)[i], where / i);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

inline result<selection_trial> read_trial(boost::json::value const& v, json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  selection_trial t;
  auto id = read_json_member(**o, "trial_id", where, read_id);
  if (!id) return id.error();
  t.trial_id = std::move(*id);
  auto const m = read_json_member(**o, "model_index", where, read_size);
  if (!m) return m.error();
  t.model_index = *m;
  auto const seed = read_json_member(**o, "seed", where, read_seed);
  if (!seed) return seed.error();
  t.seed = *seed;
  auto spec = read_json_member(**o, "spec", where, protocol::model_spec_from_json);
  if (!spec) return spec.error();
  t.spec = std::move(*spec);
  auto resume = read_json_member(**o, "resume_from", where, read_optional_id);
  if (!resume) return resume.error();
  t.resume_from = std::move(*resume);
  auto const verdict = read_json_member(**o, "verdict", where,
                                        [](boost::json::value const& x, json_location const& at) {
                                          return read_enum(verdict_names, x, at);
                                        });
  if (!verdict) return verdict.error();
  t.verdict = *verdict;
  if (auto const* r = (*o)->if_contains("invalid_reason"); r && !r->is_null()) {
    auto const reason = read_enum(reason_names, *r, where / "invalid_reason");
    if (!reason) return reason.error();
    t.reason = *reason;
  }
  if (t.verdict == selection_verdict::invalid && !t.reason)
    return (where / "invalid_reason").fail("an invalid trial needs a reason");
  if (auto const* f = (*o)->if_contains("failure"); f && !f->is_null()) {
    auto const s = read_json_string(*f, where / "failure");
    if (!s) return s.error();
    t.failure = protocol::parse_failure_kind(*s);
    if (!t.failure) return (where / "failure").fail("unknown failure kind \"" + *s + "\"");
  }
  auto message = read_json_member(**o, "message", where, read_json_string);
  if (!message) return message.error();
  t.message = std::move(*message);
  auto const accuracy = read_json_member(**o, "accuracy", where, read_optional_number);
  if (!accuracy) return accuracy.error();
  t.accuracy = *accuracy;
  auto const latency = read_json_member(**o, "latency", where, read_optional_number);
  if (!latency) return latency.error();
  t.latency = *latency;
  if (auto const* e = (*o)->if_contains("ended_unix_s"); e && !e->is_null()) {
    auto const ended = read_json_finite(*e, where / "ended_unix_s");
    if (!ended) return ended.error();
    t.ended_unix_s = *ended;
  }
  auto const fate = read_json_member(**o, "fate", where,
                                     [](boost::json::value const& x, json_location const& at) {
                                       return read_enum(fate_names, x, at);
                                     });
  if (!fate) return fate.error();
  t.fate = *fate;
  if (auto const* r = (*o)->if_contains("replaced_by")) {
    auto by = read_optional_id(*r, where / "replaced_by");
    if (!by) return by.error();
    t.replaced_by = std::move(*by);
  }
  return t;
}

inline result<selection_round> read_round(boost::json::value const& v, json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  selection_round r;
  auto const n = read_json_member(**o, "num_trials", where, read_size);
  if (!n) return n.error();
  r.num_trials = *n;
  auto retrain = read_json_member(**o, "trials_to_retrain", where, read_ids);
  if (!retrain) return retrain.error();
  r.trials_to_retrain = std::move(*retrain);
  auto const pct =
      read_json_member(**o, "desired_training_step_pct", where, read_json_non_negative);
  if (!pct) return pct.error();
  r.desired_training_step_pct = *pct;
  if (auto const* j = (*o)->if_contains("search_job_name")) {
    auto name = read_json_string(*j, where / "search_job_name");
    if (!name) return name.error();
    r.search_job_name = std::move(*name);
  }
  for (auto [key, flag] : {std::pair<std::string_view, bool*>{"last", &r.last},
                           {"cut_short", &r.cut_short},
                           {"concluded", &r.concluded}}) {
    auto const b = read_json_member(**o, key, where, read_bool);
    if (!b) return b.error();
    *flag = *b;
  }
  auto const remove = read_json_member(**o, "num_models_to_remove", where, read_size);
  if (!remove) return remove.error();
  r.num_models_to_remove = *remove;
  auto removed = read_json_member(**o, "removed_trials", where, read_ids);
  if (!removed) return removed.error();
  r.removed_trials = std::move(*removed);
  auto invalid = read_json_member(**o, "invalid_trials", where, read_ids);
  if (!invalid) return invalid.error();
  r.invalid_trials = std::move(*invalid);
  auto const trials = read_json_member(**o, "trials", where, read_json_array);
  if (!trials) return trials.error();
  for (std::size_t i = 0; i < (*trials)->size(); ++i) {
    auto t = read_trial((**trials)[i], where / "trials" / i);
    if (!t) return t.error();
    r.trials.push_back(std::move(*t));
  }
  return r;
}

}  // namespace detail::selection

// ---- model_selection_tool ---------------------------------------------------------------------

inline model_selection_tool::model_selection_tool(model_sampler sampler,
                                                  model_selection_tool_options options)
    : sampler_(std::move(sampler)), options_(std::move(options)) {
  PROXYTASK_EXPECTS(static_cast<bool>(sampler_),
                    "model_selection_tool: a model sampler is required");
  PROXYTASK_EXPECTS(options_.max_failed_fraction >= 0 && options_.max_failed_fraction <= 1,
                    "model_selection_tool: max_failed_fraction must be in [0, 1]");
  PROXYTASK_EXPECTS(std::isfinite(options_.latency_wait_s) && options_.latency_wait_s >= 0,
                    "model_selection_tool: latency_wait_s must be finite and >= 0");
  // reference tool: finds out at run time (it crashes); here the configuration is rejected.
  auto schedule = model_selection_schedule(options_.schedule);
  if (!schedule) throw logic_error(schedule.error().context);
  planned_ = std::move(*schedule);
}

inline std::size_t model_selection_tool::max_failed_trials() const noexcept {
  // The epsilon keeps 0.2 * 30 at 6 whichever way the product rounds.
  return static_cast<std::size_t>(std::floor(
      options_.max_failed_fraction * static_cast<double>(options_.schedule.start_num_models) +
      1e-9));
}

inline std::size_t model_selection_tool::refill_budget() const noexcept {
  return options_.max_refills.value_or(max_failed_trials());
}

inline std::uint64_t model_selection_tool::model_seed(std::size_t m) const noexcept {
  return detail::selection::model_seed(options_.seed, m);
}

inline model_selection_state model_selection_tool::initial() const {
  model_selection_state s;
  s.start_num_models = options_.schedule.start_num_models;
  s.final_num_models = options_.schedule.final_num_models;
  s.num_models_to_remove_per_iter = options_.schedule.num_models_to_remove_per_iter;
  s.accuracy_metric_id = options_.accuracy_metric_id;
  s.latency_metric_id = options_.latency_metric_id;
  return s;
}

inline step<model_selection_state> model_selection_tool::advance(model_selection_state const& s,
                                                                 observation const& obs) const {
  namespace ds = detail::selection;
  PROXYTASK_EXPECTS(
      s.start_num_models == options_.schedule.start_num_models &&
          s.final_num_models == options_.schedule.final_num_models &&
          s.num_models_to_remove_per_iter == options_.schedule.num_models_to_remove_per_iter,
      "model_selection_tool: the state was written with other counts "
      "(start_num_models, final_num_models, num_models_to_remove_per_iter)");
  step<model_selection_state> out{s, {}};
  model_selection_state& st = out.next;
  auto const& sched = options_.schedule;

  // A new model: its seed (distinct from every recorded model's) and its spec.
  auto new_trial = [&](std::size_t model_index) {
    std::set<std::uint64_t> used;
    for (auto const& r : st.iterations)
      for (auto const& t : r.trials) used.insert(t.seed);
    std::uint64_t seed = model_seed(model_index);
    while (used.count(seed) != 0) seed = (seed + 1) & 0x7fffffffULL;
    selection_trial t;
    t.trial_id = ds::trial_id(0, model_index);
    t.model_index = model_index;
    t.seed = seed;
    t.spec = sampler_(seed);
    return t;
  };
  auto new_round = [&](std::size_t num_trials, double pct, bool last) {
    selection_round r;
    r.num_trials = num_trials;
    r.desired_training_step_pct = pct;
    r.last = last;
    r.search_job_name = options_.job_name + "_iter_" + std::to_string(st.iterations.size());
    return r;
  };

  if (st.phase == selection_phase::training && st.iterations.empty()) {
    // Iteration 0: start_num_models fresh models. reference tool: run_model_selection_loop
    std::size_t const k = sched.start_num_models;
    st.iterations.push_back(
        new_round(k, next_desired_training_step_pct(0.0, k, sched.final_num_models),
                  k <= sched.final_num_models));
    for (std::size_t m = 0; m < k; ++m) st.iterations[0].trials.push_back(new_trial(m));
    for (auto const& t : st.iterations[0].trials)
      out.commands.push_back(ds::launch_of(t, st.iterations[0], options_));
  } else if (st.phase == selection_phase::training) {
    std::size_t const i = st.iterations.size() - 1;
    {
      selection_round& round = st.iterations[i];
      for (auto& t : round.trials) {
        if (ds::judged(t)) continue;
        auto const* status = obs.find(t.trial_id);
        if (!status && t.verdict == selection_verdict::running) {
          // Recorded, not launched: a kill between persisting and acting.
          out.commands.push_back(ds::launch_of(t, round, options_));
          continue;
        }
        auto const inherited = ds::inherited_latency(st, i, t);
        if (status)
          ds::judge(t, *status, round, inherited, obs.now_unix_s, options_);
        else
          ds::judge_latency(t, nullptr, inherited, obs.now_unix_s, options_);
      }
    }

    if (i == 0) {
      // The failure gate, then the refills. The seed: "if more than 20% of your trials in the
      // first iteration fail, cancel your model-selection job and identify the root cause".
      selection_round& round = st.iterations[0];
      if (ds::count_invalid(round) > max_failed_trials()) {
        st.phase = selection_phase::aborted;
      } else {
        std::size_t refills = round.trials.size() - sched.start_num_models;
        std::size_t const n = round.trials.size();
        for (std::size_t k = 0; k < n && refills < refill_budget(); ++k) {
          if (round.trials[k].verdict != selection_verdict::invalid ||
              round.trials[k].fate == selection_fate::replaced)
            continue;
          selection_trial t = new_trial(round.trials.size());
          round.trials[k].fate = selection_fate::replaced;
          round.trials[k].replaced_by = t.trial_id;
          round.trials.push_back(std::move(t));
          out.commands.push_back(ds::launch_of(round.trials.back(), round, options_));
          ++refills;
        }
      }
    }

    selection_round& round = st.iterations[i];
    if (st.phase == selection_phase::training &&
        std::all_of(round.trials.begin(), round.trials.end(), ds::judged)) {
      // Conclude the iteration. Its models: every trial not replaced, in trial order.
      std::vector<std::size_t> entries;
      for (std::size_t k = 0; k < round.trials.size(); ++k)
        if (round.trials[k].fate != selection_fate::replaced) entries.push_back(k);
      round.concluded = true;
      if (round.last) {
        for (std::size_t k : entries) {
          auto& t = round.trials[k];
          bool const valid = t.verdict == selection_verdict::valid;
          t.fate = valid ? selection_fate::reference : selection_fate::invalid;
          if (!valid) round.invalid_trials.push_back(t.trial_id);
        }
        st.phase = selection_phase::done;
      } else {
        // reference tool: filter_trials_based_on_scores, min(5, K - final) removals.
        std::vector<stats::trial_scores> scores;
        for (std::size_t k : entries) {
          auto const& t = round.trials[k];
          bool const valid = t.verdict == selection_verdict::valid;
          constexpr double nan = std::numeric_limits<double>::quiet_NaN();
          scores.push_back({valid ? t.accuracy : nan, valid ? t.latency : nan});
        }
        bool const latency_required =
            options_.latency == latency_source::calculator ||
            (options_.latency == latency_source::trainer && options_.latency_required);
        round.num_models_to_remove = num_models_to_remove(round.num_trials, sched);
        auto const pruned =
            stats::prune_trials(scores, round.num_models_to_remove, latency_required);
        auto mark = [&](std::vector<std::size_t> const& which, selection_fate fate,
                        std::vector<std::string>& ids) {
          for (std::size_t e : which) {
            auto& t = round.trials[entries[e]];
            t.fate = fate;
            ids.push_back(t.trial_id);
          }
        };
        mark(pruned.removed, selection_fate::removed, round.removed_trials);
        mark(pruned.invalid, selection_fate::invalid, round.invalid_trials);
        mark(pruned.kept, selection_fate::kept, round.trials_to_retrain);

        if (pruned.kept.empty()) {
          st.phase = selection_phase::done;  // nothing left to train: said so in the result
        } else {
          std::size_t const k = pruned.kept.size();
          double pct = next_desired_training_step_pct(round.desired_training_step_pct, k,
                                                      sched.final_num_models);
          bool last = k <= sched.final_num_models;
          bool cut_short = false;
          if (!last && pct > 100.0) {
            // Invalid trials shrank the iterations faster than planned and the next 100/K step
            // would pass 100%: train these models to completion instead (more than
            // final_num_models reference models, never fewer).
            last = true;
            cut_short = true;
            pct = train_to_completion_pct;
          }
          std::vector<selection_trial> next_trials;
          for (std::size_t e : pruned.kept) {
            auto const& prev = round.trials[entries[e]];
            selection_trial t;
            t.trial_id = ds::trial_id(i + 1, prev.model_index);
            t.model_index = prev.model_index;
            t.seed = prev.seed;
            t.spec = prev.spec;
            t.resume_from = prev.trial_id;
            next_trials.push_back(std::move(t));
          }
          selection_round next = new_round(k, pct, last);
          next.cut_short = cut_short;
          next.trials = std::move(next_trials);
          st.iterations.push_back(std::move(next));
          for (auto const& t : st.iterations.back().trials)
            out.commands.push_back(ds::launch_of(t, st.iterations.back(), options_));
        }
      }
    }
  }

  if (st.phase == selection_phase::aborted && !st.iterations.empty())
    for (auto const& t : st.iterations[0].trials)
      if (auto const* status = obs.find(t.trial_id); status && !is_terminal(status->phase))
        out.commands.push_back(stop_trial{t.trial_id});
  if (st.phase != selection_phase::training) out.commands.push_back(result_of(st));
  return out;
}

inline tool_progress model_selection_tool::describe(model_selection_state const& s,
                                                    observation const& obs) const {
  tool_progress p;
  p.phase = std::string(to_string(s.phase));
  if (s.phase != selection_phase::training) {
    p.fraction_done = 1.0;
    p.decision = result_of(s).summary;
    return p;
  }
  if (s.iterations.empty()) {
    p.fraction_done = 0.0;
    p.decision = "sampling " + std::to_string(options_.schedule.start_num_models) + " models";
    return p;
  }
  // Planned cost: the models of each planned iteration times the pcts it adds.
  auto const capped = [](double pct) { return std::min(pct, 100.0); };
  double total = 0, previous = 0;
  for (auto const& it : planned_) {
    total += static_cast<double>(it.num_trials) * (capped(it.desired_training_step_pct) - previous);
    previous = capped(it.desired_training_step_pct);
  }
  double done = 0;
  previous = 0;
  for (auto const& r : s.iterations) {
    double const target = capped(r.desired_training_step_pct);
    for (auto const& t : r.trials) {
      if (detail::selection::judged(t) || t.verdict == selection_verdict::awaiting_latency) {
        done += target - previous;
        continue;
      }
      if (auto const* status = obs.find(t.trial_id); status && !status->metrics.points.empty())
        done += std::clamp(status->metrics.points.back().training_step_pct - previous, 0.0,
                           target - previous);
    }
    previous = target;
  }
  if (total > 0) p.fraction_done = std::clamp(done / total, 0.0, 1.0);

  std::size_t const i = s.iterations.size() - 1;
  auto const& r = s.iterations[i];
  std::size_t valid = 0, invalid = 0, awaiting = 0, running = 0, refills = 0;
  for (auto const& t : r.trials) {
    if (t.model_index >= s.start_num_models && i == 0) ++refills;
    switch (t.verdict) {
      case selection_verdict::valid: ++valid; break;
      case selection_verdict::invalid: ++invalid; break;
      case selection_verdict::awaiting_latency: ++awaiting; break;
      case selection_verdict::running: ++running; break;
    }
  }
  p.decision =
      "iteration " + std::to_string(i) + ": training " + std::to_string(r.num_trials) + " models " +
      (r.last ? std::string("to completion")
              : "to " + detail::selection::brief_pct(r.desired_training_step_pct) + "%") +
      (i > 0 ? " (continued from iteration " + std::to_string(i - 1) + ")" : "") + ": " +
      std::to_string(valid) + " trained, " + std::to_string(invalid) + " invalid, " +
      std::to_string(running) + " running";
  if (awaiting > 0) p.decision += ", " + std::to_string(awaiting) + " awaiting their latency";
  if (refills > 0) p.decision += ", " + std::to_string(refills) + " refills of failed models";
  if (i > 0) {
    auto const& before = s.iterations[i - 1];
    p.decision += "; iteration " + std::to_string(i - 1) + " removed " +
                  std::to_string(before.removed_trials.size()) + " and dropped " +
                  std::to_string(before.invalid_trials.size()) + " invalid";
  }
  return p;
}

inline finish model_selection_tool::result_of(model_selection_state const& s) const {
  namespace ds = detail::selection;
  PROXYTASK_EXPECTS(s.phase != selection_phase::training,
                    "model_selection_tool::result_of: the selection is not finished");
  boost::json::array failures, iterations, references;
  std::size_t first_failures = 0;
  for (std::size_t i = 0; i < s.iterations.size(); ++i) {
    auto const& r = s.iterations[i];
    for (auto const& t : r.trials)
      if (t.verdict == selection_verdict::invalid) {
        failures.push_back(ds::failure_json(t, i));
        if (i == 0) ++first_failures;
      }
    iterations.push_back({{"iteration", i},
                          {"num_trials", r.num_trials},
                          {"desired_training_step_pct", json_number(r.desired_training_step_pct)},
                          {"last", r.last},
                          {"cut_short", r.cut_short},
                          {"num_models_to_remove", r.num_models_to_remove},
                          {"trials_to_retrain", ds::string_array(r.trials_to_retrain)},
                          {"removed", ds::string_array(r.removed_trials)},
                          {"invalid", ds::string_array(r.invalid_trials)}});
  }

  std::string status, message;
  std::size_t const wanted = s.final_num_models;
  if (s.phase == selection_phase::aborted) {
    status = "aborted";
    std::string listed;
    for (auto const& t : s.iterations.at(0).trials)
      if (t.verdict == selection_verdict::invalid)
        listed += (listed.empty() ? "" : "; ") + t.trial_id + " (" + t.spec.model_id +
                  "): " + ds::failure_text(t);
    message = std::to_string(first_failures) + " trials of the first iteration failed, more than " +
              std::to_string(max_failed_trials()) + " (" +
              ds::number_text(100.0 * options_.max_failed_fraction) + "% of " +
              std::to_string(s.start_num_models) +
              "): identify the root cause (search space, batch size, learning rate) before "
              "selecting models. Failed: " +
              listed;
  } else {
    auto const& last = s.iterations.back();
    std::vector<selection_trial const*> refs;
    if (last.concluded && last.last)
      for (auto const& t : last.trials)
        if (t.fate == selection_fate::reference) refs.push_back(&t);
    std::sort(refs.begin(), refs.end(),
              [](auto const* a, auto const* b) { return a->model_index < b->model_index; });
    for (auto const* t : refs)
      references.push_back(
          {{"model_index", t->model_index},
           {"model_id", t->spec.model_id},
           {"spec", boost::json::value_from(t->spec)},
           {"seed", t->seed},
           {"trial_id", t->trial_id},
           {"trial_dir", ds::trial_dir(t->trial_id)},
           {"accuracy", json_number(t->accuracy)},
           {"latency", options_.latency == latency_source::none ? boost::json::value(nullptr)
                                                                : json_number(t->latency)}});
    if (refs.empty()) {
      status = "no_valid_models";
      message = "no valid model is left after iteration " +
                std::to_string(s.iterations.size() - 1) + ": there is no reference set";
    } else if (refs.size() < wanted) {
      status = "below_final_num_models";
      message = std::to_string(refs.size()) +
                " reference models, fewer than final_num_models = " + std::to_string(wanted) +
                " (" + std::to_string(last.invalid_trials.size()) +
                " invalid in the last iteration" +
                (s.iterations.size() > 1 || last.num_trials < wanted
                     ? ", " + std::to_string(last.num_trials) + " entered it"
                     : std::string()) +
                ")";
    } else {
      status = "complete";
      message = std::to_string(refs.size()) + " reference models trained to completion" +
                (last.cut_short ? " (the last iteration was cut short: its 100/K step would "
                                  "have passed 100%)"
                                : "");
    }
  }

  boost::json::object doc{{"schema_version", schema_version},
                          {"status", status},
                          {"message", message},
                          {"final_num_models", wanted},
                          {"num_reference_models", references.size()},
                          {"accuracy_metric_id", s.accuracy_metric_id},
                          {"latency_metric_id", s.latency_metric_id},
                          {"latency_source", to_string(options_.latency)},
                          {"reference_models", std::move(references)},
                          {"iterations", std::move(iterations)},
                          {"failures", std::move(failures)},
                          {"max_failed_trials", max_failed_trials()},
                          {"first_iteration_failures", first_failures}};
  std::string summary = status + ": " + message;
  boost::json::value result = doc;
  std::map<std::string, boost::json::value> files;
  files.emplace(std::string(result_file_name), std::move(doc));
  return finish{std::move(result), std::move(summary), std::move(files)};
}

// ---- JSON -------------------------------------------------------------------------------------

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       model_selection_state const& s) {
  boost::json::array iterations;
  for (auto const& r : s.iterations) iterations.push_back(detail::selection::round_json(r));
  jv = boost::json::object{{"schema_version", model_selection_tool::schema_version},
                           {"start_num_models", s.start_num_models},
                           {"final_num_models", s.final_num_models},
                           {"num_models_to_remove_per_iter", s.num_models_to_remove_per_iter},
                           {"accuracy_metric_id", s.accuracy_metric_id},
                           {"latency_metric_id", s.latency_metric_id},
                           {"phase", to_string(s.phase)},
                           {"iterations", std::move(iterations)}};
}

inline result<model_selection_state> model_selection_state_from_json(boost::json::value const& v,
                                                                     json_location const& where) {
  namespace ds = detail::selection;
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  auto const version = read_json_member(**o, "schema_version", where, read_json_count);
  if (!version) return version.error();
  if (*version > model_selection_tool::schema_version)
    return (where / "schema_version")
        .fail("written by a newer proxytask (schema_version " + std::to_string(*version) +
              "; this one reads up to " + std::to_string(model_selection_tool::schema_version) +
              ")");
  model_selection_state s;
  for (auto [key, count] :
       {std::pair<std::string_view, std::size_t*>{"start_num_models", &s.start_num_models},
        {"final_num_models", &s.final_num_models},
        {"num_models_to_remove_per_iter", &s.num_models_to_remove_per_iter}}) {
    auto const n = read_json_member(**o, key, where, ds::read_size);
    if (!n) return n.error();
    *count = *n;
  }
  for (auto [key, text] :
       {std::pair<std::string_view, std::string*>{"accuracy_metric_id", &s.accuracy_metric_id},
        {"latency_metric_id", &s.latency_metric_id}}) {
    auto t = read_json_member(**o, key, where, read_json_string);
    if (!t) return t.error();
    *text = std::move(*t);
  }
  auto const phase = read_json_member(**o, "phase", where,
                                      [](boost::json::value const& x, json_location const& at) {
                                        return ds::read_enum(ds::phase_names, x, at);
                                      });
  if (!phase) return phase.error();
  s.phase = *phase;
  auto const iterations = read_json_member(**o, "iterations", where, read_json_array);
  if (!iterations) return iterations.error();
  for (std::size_t i = 0; i < (*iterations)->size(); ++i) {
    auto r = ds::read_round((**iterations)[i], where / "iterations" / i);
    if (!r) return r.error();
    s.iterations.push_back(std::move(*r));
  }
  if (s.phase == selection_phase::aborted && s.iterations.empty())
    return (where / "iterations").fail("an aborted selection has its first iteration");
  return s;
}

inline boost::system::result<model_selection_state> tag_invoke(
    boost::json::try_value_to_tag<model_selection_state>, boost::json::value const& jv) {
  auto s = model_selection_state_from_json(jv, json_location(""));
  if (!s) return boost::system::error_code(s.error().code);
  return std::move(*s);
}

inline result<model_selection_state> model_selection_tool::state_from_json(
    boost::json::value const& v, json_location const& where) {
  return model_selection_state_from_json(v, where);
}

static_assert(tool<model_selection_tool>);
static_assert(describable<model_selection_tool>);

}  // namespace proxytask::workflow
