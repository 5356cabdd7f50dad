#pragma once
// Definitions of workflow/proxy_search.hpp (included at its end).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/backend.hpp>
#include <proxytask/core/csv.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/curve.hpp>
#include <proxytask/stats/kendall.hpp>
#include <proxytask/stats/over_steps.hpp>
#include <proxytask/stats/spearman.hpp>
#include <proxytask/workflow/proxy_search.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>
#include <span>
#include <type_traits>
#include <utility>

namespace proxytask::workflow {

inline std::string_view to_string(search_phase p) noexcept {
  return p == search_phase::done ? "done" : "searching";
}
inline std::string_view to_string(proxy_phase p) noexcept {
  switch (p) {
    case proxy_phase::pending: return "pending";
    case proxy_phase::running: return "running";
    case proxy_phase::done: return "done";
  }
  return "?";
}

namespace detail::proxy_search {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

constexpr std::uint64_t mix(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::string trial_id(std::size_t proxy, std::size_t model) {
  return "proxy-" + std::to_string(proxy) + "-model-" + std::to_string(model);
}

inline std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  auto const [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

inline bool usable(double v) noexcept { return std::isfinite(v) && v >= 0.0; }

/// The latency of a trial: the calculator's, else the trainer's (NaN: none).
inline double trial_latency(trial_status const* t) noexcept {
  if (!t) return nan;
  if (t->measured_latency && usable(*t->measured_latency)) return *t->measured_latency;
  if (usable(t->metrics.latency)) return t->metrics.latency;
  return nan;
}

/// The rule that fired, by its state (confidence mode names the correlation rule "confidence";
/// a re-check names its trials' end "stop_at_pct").
inline std::string rule_name(stopping_state s, bool confidence, bool recheck) {
  switch (s) {
    case stopping_state::none: return "";
    case stopping_state::met_desired_accuracy_correlation:
      return confidence ? "confidence" : "correlation";
    case stopping_state::met_desired_accuracy: return "median_accuracy";
    case stopping_state::exceeded_train_time_limit: return "time_limit";
    case stopping_state::exceeded_best_train_time: return "not_best";
    case stopping_state::failed_desired_latency_correlation: return "latency_correlation";
    case stopping_state::job_failed: return "job_failed";
    case stopping_state::ran_till_completion: return recheck ? "stop_at_pct" : "completion";
    case stopping_state::excess_trial_failures: return "failed_trials";
  }
  return "?";
}

inline std::vector<proxy_outcome> outcomes(proxy_search_state const& s) {
  std::vector<proxy_outcome> out;
  for (auto const& p : s.proxy_tasks)
    out.push_back({p.phase == proxy_phase::done ? p.stats.state : stopping_state::none,
                   p.stats.final_training_time_in_hours});
  return out;
}

inline std::optional<std::size_t> best_index(proxy_search_state const& s) {
  auto const o = outcomes(s);
  return best_proxy_task(std::span<proxy_outcome const>(o));
}

/// Three significant digits, for people ("nan" for NaN).
inline std::string short_text(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

/// A proxy's measurement at its stop step (result_of's "at_stop"; null without a stop step).
inline boost::json::value at_stop_json(proxy_task_entry const& p, double desired) {
  auto const& st = p.stats;
  if (!st.stop_step_index) return nullptr;
  std::size_t const c = *st.stop_step_index;
  double const r = st.accuracy_correlation_over_step[c];
  return boost::json::object{{"training_step_pct", json_number(st.training_step_pct[c])},
                             {"training_steps", st.training_steps[c]},
                             {"correlation", json_number(r)},
                             {"p_value", json_number(st.accuracy_correlation_p_value_over_step[c])},
                             {"ci_low", json_number(st.ci_low_over_step[c])},
                             {"ci_high", json_number(st.ci_high_over_step[c])},
                             {"kendall", json_number(st.kendall_over_step[c])},
                             {"spearman", json_number(st.spearman_over_step[c])},
                             {"valid_pairs", st.valid_pairs_over_step[c]},
                             {"meets_desired_correlation", !std::isnan(r) && r >= desired}};
}

/// A re-check's advice line on one proxy: its correlation with its CI at its stop step.
inline std::string measured_line(proxy_task_entry const& p, stats::correlation method,
                                 double desired, double confidence_level) {
  auto const& st = p.stats;
  std::string const name = "\"" + p.name + "\"";
  std::string const trials = std::to_string(p.failed_trials) + " of " +
                             std::to_string(p.trial_ids.size()) + " trials failed";
  if (!st.stop_step_index)
    return name + ": not measured (" + std::string(to_string(st.state)) + ", " + trials + ")";
  std::size_t const c = *st.stop_step_index;
  std::string line = name + " at " + short_text(st.training_step_pct[c]) + "% (" +
                     std::to_string(st.training_steps[c]) + " steps";
  if (st.final_training_time_in_hours)
    line += ", " + short_text(*st.final_training_time_in_hours) + " h";
  line += "): ";
  std::string const pairs = std::to_string(st.valid_pairs_over_step[c]) + " valid pairs";
  double const r = st.accuracy_correlation_over_step[c];
  if (std::isnan(r))
    return line + "no valid " + std::string(stats::to_string(method)) + " correlation (" + pairs +
           ", " + trials + ")";
  line += std::string(stats::to_string(method)) + " " + short_text(r);
  if (!std::isnan(st.ci_low_over_step[c]) && !std::isnan(st.ci_high_over_step[c]))
    line += ", " + short_text(confidence_level * 100) + "% CI [" +
            short_text(st.ci_low_over_step[c]) + ", " + short_text(st.ci_high_over_step[c]) + "]";
  line += ", p " + short_text(st.accuracy_correlation_p_value_over_step[c]) + ", " + pairs;
  return line + (r >= desired ? ": meets" : ": below") + " the desired correlation " +
         short_text(desired);
}

}  // namespace detail::proxy_search

// ---- reference models ---------------------------------------------------------------------

inline result<std::vector<reference_model>> reference_models_from_json(
    boost::json::value const& doc, std::string_view source) {
  json_location const where(source);
  boost::json::array const* list = nullptr;
  json_location at = where;
  if (auto const* o = doc.if_object()) {
    auto const a = read_json_member(*o, "reference_models", where, read_json_array);
    if (!a) return a.error();
    list = *a;
    at = where / "reference_models";
  } else if (auto const* a = doc.if_array()) {
    list = a;
  } else {
    return where.fail(
        "expected an array of reference models or an object with "
        "\"reference_models\"");
  }
  std::vector<reference_model> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    json_location const here = at / i;
    auto const o = read_json_object((*list)[i], here);
    if (!o) return o.error();
    reference_model m;
    auto spec = read_json_member(**o, "spec", here, protocol::model_spec_from_json);
    if (!spec) return spec.error();
    m.spec = std::move(*spec);
    if (auto const* id = (*o)->if_contains("model_id")) {
      auto s = read_json_string(*id, here / "model_id");
      if (!s) return s.error();
      m.model_id = std::move(*s);
    } else {
      m.model_id = m.spec.model_id;
    }
    auto const acc = read_json_member(**o, "accuracy", here, read_json_finite);
    if (!acc) return acc.error();
    m.accuracy = *acc;
    if (auto const* l = (*o)->if_contains("latency"); l && !l->is_null()) {
      auto const v = read_json_finite(*l, here / "latency");
      if (!v) return v.error();
      m.latency = *v;
    }
    out.push_back(std::move(m));
  }
  if (out.empty()) return at.fail("no reference models");
  return out;
}

inline result<std::vector<reference_model>> reference_models_from_csv(csv_table const& table) {
  auto const spec_column = table.find_column("spec");
  if (!spec_column) return spec_column.error();
  auto const accuracy_column = table.find_column("accuracy");
  if (!accuracy_column) return accuracy_column.error();
  auto const id_column = table.column_index("model_id");
  auto const latency_column = table.column_index("latency");
  std::vector<reference_model> out;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    auto const& row = table.rows[r];
    std::string const where = table.source + ":" + std::to_string(row.line);
    reference_model m;
    auto const doc = parse_json(row.fields[*spec_column], where + ": column spec");
    if (!doc) return doc.error();
    auto spec = protocol::model_spec_from_json(*doc, json_location(where + ": column spec"));
    if (!spec) return spec.error();
    m.spec = std::move(*spec);
    m.model_id = id_column ? row.fields[*id_column] : m.spec.model_id;
    auto const acc = csv_number(table, r, *accuracy_column);
    if (!acc) return acc.error();
    if (!std::isfinite(*acc))
      return make_error(errc::malformed_file, where + ": column accuracy: expected a finite score");
    m.accuracy = *acc;
    if (latency_column) {
      auto const latency = csv_number(table, r, *latency_column);
      if (!latency) return latency.error();
      if (!std::isnan(*latency)) m.latency = *latency;
    }
    out.push_back(std::move(m));
  }
  if (out.empty()) return make_error(errc::malformed_file, table.source + ": no reference models");
  return out;
}

inline result<std::vector<reference_model>> load_reference_models(
    std::filesystem::path const& file) {
  auto extension = file.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".csv") {
    auto const table = read_csv(file);
    if (!table) return table.error();
    return reference_models_from_csv(*table);
  }
  auto const text = read_file(file);
  if (!text) return text.error();
  auto const doc = parse_json(*text, file.string());
  if (!doc) return doc.error();
  return reference_models_from_json(*doc, file.string());
}

// ---- the tool -----------------------------------------------------------------------------

inline proxy_search_tool::proxy_search_tool(proxy_search_options options)
    : options_(std::move(options)) {
  auto const& o = options_;
  PROXYTASK_EXPECTS(!o.reference_models.empty(), "proxy_search_tool: no reference models");
  PROXYTASK_EXPECTS(!o.proxies.empty(), "proxy_search_tool: no proxies");
  std::set<std::string> names;
  for (auto const& p : o.proxies)
    PROXYTASK_EXPECTS(!p.name.empty() && names.insert(p.name).second,
                      "proxy_search_tool: proxy names must be non-empty and unique");
  for (auto const& m : o.reference_models)
    PROXYTASK_EXPECTS(std::isfinite(m.accuracy),
                      "proxy_search_tool: reference scores must be finite");
  PROXYTASK_EXPECTS(o.confidence_level > 0 && o.confidence_level < 1,
                    "proxy_search_tool: confidence_level in (0, 1)");
  PROXYTASK_EXPECTS(o.min_valid_pairs >= 2, "proxy_search_tool: min_valid_pairs >= 2");
  PROXYTASK_EXPECTS(o.min_valid_fraction >= 0 && o.min_valid_fraction <= 1,
                    "proxy_search_tool: min_valid_fraction in [0, 1]");
  PROXYTASK_EXPECTS(o.confidence_k == 0 || o.bootstrap_resamples > 0,
                    "proxy_search_tool: the confidence mode needs bootstrap_resamples > 0");
  if (o.stop_at_pct) {
    PROXYTASK_EXPECTS(*o.stop_at_pct > 0 && *o.stop_at_pct <= 100,
                      "proxy_search_tool: stop_at_pct in (0, 100]");
    PROXYTASK_EXPECTS(!o.desired_accuracy && !o.training_time_hrs_limit &&
                          !o.early_stop_proxy_task_if_not_best && o.confidence_k == 0,
                      "proxy_search_tool: stop_at_pct turns the stop rules off: no "
                      "desired_accuracy, training_time_hrs_limit, "
                      "early_stop_proxy_task_if_not_best or confidence_k with it");
  }
}

inline double proxy_search_tool::desired_correlation() const noexcept {
  return options_.desired_correlation.value_or(default_desired_correlation(options_.method));
}

inline std::size_t proxy_search_tool::required_valid_trials() const noexcept {
  auto const n = static_cast<double>(options_.reference_models.size());
  auto const by_fraction = static_cast<std::size_t>(std::ceil(options_.min_valid_fraction * n));
  return std::max(options_.min_valid_pairs, by_fraction);
}

inline std::uint64_t proxy_search_tool::model_seed(std::size_t m) const noexcept {
  constexpr std::uint64_t purpose = 0x70726f7879736561ULL;  // "proxysea"
  using detail::proxy_search::mix;
  return mix(mix(options_.seed ^ mix(purpose)) + m) >> 33;
}

inline proxy_search_state proxy_search_tool::initial() const {
  proxy_search_state s;
  s.method = options_.method;
  s.desired_correlation = desired_correlation();
  for (auto const& p : options_.proxies) {
    proxy_task_entry e;
    e.name = p.name;
    e.args = p.args;
    s.proxy_tasks.push_back(std::move(e));
  }
  return s;
}

namespace detail::proxy_search {

/// The launch command of model m under proxy p.
inline launch_trial launch_of(proxy_search_options const& o, proxy_task_entry const& p,
                              std::size_t index, std::size_t m, std::uint64_t seed) {
  launch_trial l;
  l.trial_id = trial_id(index, m);
  l.spec = o.reference_models[m].spec;
  l.seed = seed;
  l.proxy_args = o.baseline_args;
  for (auto const& [k, v] : p.args) l.proxy_args[k] = v;
  l.desired_pct = o.stop_at_pct;  // a re-check's trainer stops itself there
  return l;
}

/// The minimum of the last k values (NaN when fewer than k, or one of them is NaN).
inline std::vector<double> held_for(std::vector<double> const& v, std::size_t k) {
  std::vector<double> out(v.size(), nan);
  for (std::size_t i = k == 0 ? 0 : k - 1; i < v.size(); ++i) {
    double low = std::numeric_limits<double>::infinity();
    for (std::size_t j = i + 1 - k; j <= i; ++j) low = std::isnan(v[j]) ? nan : std::min(low, v[j]);
    out[i] = low;
  }
  return out;
}

}  // namespace detail::proxy_search

// Measures the running proxy `p` on the observation and applies the stop rules.
namespace detail::proxy_search {

inline void measure(proxy_search_tool const& tool, proxy_task_entry& p, observation const& obs,
                    std::optional<double> best_time) {
  auto const& o = tool.options();
  std::size_t const n = o.reference_models.size();
  std::vector<trial_status const*> trials(n, nullptr);
  std::vector<std::vector<stats::curve_point>> curves(n);
  std::map<double, std::int64_t> grid;  // pct -> steps trained (the first trial's)
  std::size_t failed = 0, ended = 0;
  for (std::size_t m = 0; m < n; ++m) {
    trials[m] = obs.find(p.trial_ids[m]);
    if (!trials[m]) continue;
    if (trials[m]->phase == trial_phase::failed) ++failed;
    if (is_terminal(trials[m]->phase)) ++ended;
    curves[m] = stats::normalise_curve(trials[m]->metrics.points);
    for (auto const& pt : curves[m])
      if (pt.training_step_pct > 0) grid.emplace(pt.training_step_pct, pt.training_step + 1);
  }
  p.failed_trials = failed;

  std::size_t const cols = grid.size();
  std::vector<double> scores(n * cols, nan);
  proxy_task_stats& st = p.stats;
  st.training_steps.clear();
  st.training_step_pct.clear();
  for (auto const& [pct, steps] : grid) {
    st.training_step_pct.push_back(pct);
    st.training_steps.push_back(steps);
  }
  for (std::size_t m = 0; m < n; ++m)
    for (std::size_t c = 0; c < cols; ++c)
      if (auto const a = stats::accuracy_at_pct(curves[m], st.training_step_pct[c]);
          a && std::isfinite(*a))
        scores[m * cols + c] = *a;
  std::vector<double> reference(n);
  for (std::size_t m = 0; m < n; ++m) reference[m] = o.reference_models[m].accuracy;

  host_matrix_view<double const> const view(scores.data(), n, cols);
  stats::over_steps_options ov;
  ov.min_valid_pairs = o.min_valid_pairs;
  ov.min_valid_fraction = o.min_valid_fraction;
  ov.seed = o.seed;
  ov.method = o.method;
  ov.bootstrap_resamples = o.bootstrap_resamples;
  ov.confidence_level = o.confidence_level;
  ov.threshold = tool.desired_correlation();
  auto const main =
      stats::correlate_over_steps(backend::cpu, view, std::span<double const>(reference), ov);
  PROXYTASK_EXPECTS(main.has_value(), "proxy_search: correlate_over_steps failed");
  ov.method = o.method == stats::correlation::spearman ? stats::correlation::kendall_tau_b
                                                       : stats::correlation::spearman;
  ov.bootstrap_resamples = 0;
  ov.threshold.reset();
  auto const other =
      stats::correlate_over_steps(backend::cpu, view, std::span<double const>(reference), ov);
  PROXYTASK_EXPECTS(other.has_value(), "proxy_search: correlate_over_steps failed");
  auto const& kendall = o.method == stats::correlation::spearman ? *other : *main;
  auto const& spearman = o.method == stats::correlation::spearman ? *main : *other;

  st.accuracy_correlation_over_step.assign(cols, nan);
  st.accuracy_correlation_p_value_over_step.assign(cols, nan);
  st.kendall_over_step.assign(cols, nan);
  st.spearman_over_step.assign(cols, nan);
  st.ci_low_over_step.assign(cols, nan);
  st.ci_high_over_step.assign(cols, nan);
  st.valid_pairs_over_step.assign(cols, 0);
  for (std::size_t c = 0; c < cols; ++c) {
    auto const& row = (*main)[c];
    st.accuracy_correlation_over_step[c] = row.coefficient;
    st.accuracy_correlation_p_value_over_step[c] = row.p_value;
    st.ci_low_over_step[c] = row.bootstrap.low;
    st.ci_high_over_step[c] = row.bootstrap.high;
    // A degenerate bootstrap (every defined replicate equal: a perfect ranking) has no BCa
    // interval (its jackknife acceleration is 0 / 0); its interval is the point itself.
    if (std::isnan(row.bootstrap.low) && !std::isnan(row.coefficient) &&
        row.bootstrap.defined > 0 && row.bootstrap.standard_error == 0.0) {
      st.ci_low_over_step[c] = row.coefficient;
      st.ci_high_over_step[c] = row.coefficient;
    }
    st.valid_pairs_over_step[c] = static_cast<std::int64_t>(row.valid_pairs);
    st.kendall_over_step[c] = kendall[c].coefficient;
    st.spearman_over_step[c] = spearman[c].coefficient;
  }

  std::vector<std::optional<stats::training_time>> times(n);
  for (std::size_t m = 0; m < n; ++m)
    if (trials[m] && !trials[m]->metrics.points.empty()) times[m] = trials[m]->metrics.time;
  auto const medians =
      median_over_steps(view, std::span<std::int64_t const>(st.training_steps),
                        std::span<double const>(st.accuracy_correlation_over_step),
                        std::span<std::optional<stats::training_time> const>(times));
  st.median_accuracy_over_step.assign(cols, nan);
  st.median_training_time_hrs_over_step.assign(cols, nan);
  for (std::size_t c = 0; c < cols; ++c) {
    st.median_accuracy_over_step[c] = medians[c].median_accuracy;
    st.median_training_time_hrs_over_step[c] = medians[c].training_time_hrs;
  }

  bool const confidence = o.confidence_k > 0;
  bool const recheck = o.stop_at_pct.has_value();
  std::vector<double> const decider = confidence ? held_for(st.ci_low_over_step, o.confidence_k)
                                                 : st.accuracy_correlation_over_step;
  proxy_step_stats const step_stats{std::span<std::int64_t const>(st.training_steps),
                                    std::span<double const>(decider),
                                    std::span<double const>(st.median_accuracy_over_step),
                                    std::span<double const>(st.median_training_time_hrs_over_step)};
  stop_criteria criteria;
  criteria.desired_correlation = tool.desired_correlation();
  criteria.desired_accuracy = o.desired_accuracy;
  criteria.training_time_hrs_limit = o.training_time_hrs_limit;
  criteria.best_training_time_hrs = best_time;
  criteria.early_stop_if_not_best = o.early_stop_proxy_task_if_not_best;
  // A re-check runs no stop rule: its trials stop themselves at stop_at_pct.
  stop_decision decision = recheck ? stop_decision{} : check_stopping(step_stats, criteria);

  if (!decision.stopped()) {
    bool const too_many = n - failed < tool.required_valid_trials() ||
                          (o.max_failed_trials && failed > *o.max_failed_trials);
    if (too_many)
      decision.state = stopping_state::excess_trial_failures;
    else if (ended == n)
      decision.state = stopping_state::ran_till_completion;
  }
  if (!decision.stopped()) return;
  if (recheck && decision.state == stopping_state::ran_till_completion && cols > 0) {
    // The first pct at or after stop_at_pct: every trial that stopped there has a score at it
    // (a later column may lie beyond a trial of another cadence); the last without one.
    auto const& pcts = st.training_step_pct;
    auto const first = std::lower_bound(pcts.begin(), pcts.end(), *o.stop_at_pct);
    std::size_t const c =
        first == pcts.end() ? cols - 1 : static_cast<std::size_t>(first - pcts.begin());
    decision.step_index = c;
    decision.final_training_steps = st.training_steps[c];
    if (double const hrs = st.median_training_time_hrs_over_step[c]; !std::isnan(hrs))
      decision.final_training_time_in_hours = hrs;
  }

  st.state = decision.state;
  st.stop_step_index = decision.step_index;
  st.final_training_time_in_hours = decision.final_training_time_in_hours;
  st.final_training_steps = decision.final_training_steps;
  st.stop_rule = rule_name(decision.state, confidence, recheck);
  std::size_t const at = decision.step_index.value_or(cols == 0 ? 0 : cols - 1);
  st.accuracy_at_stop.assign(n, nan);
  if (cols > 0)
    for (std::size_t m = 0; m < n; ++m) st.accuracy_at_stop[m] = scores[m * cols + at];

  // A re-check measures the latency correlation of every proxy that ran and fails none on it.
  bool const measure_latency =
      recheck ? st.state == stopping_state::ran_till_completion : is_successful(st.state);
  if (o.use_latency && measure_latency) {
    std::vector<double> proxy_latency(n), ref_latency(n);
    for (std::size_t m = 0; m < n; ++m) {
      proxy_latency[m] = trial_latency(trials[m]);
      ref_latency[m] = o.reference_models[m].latency.value_or(nan);
    }
    std::span<double const> const x(proxy_latency), y(ref_latency);
    auto const r = o.method == stats::correlation::spearman ? stats::spearman<double>(x, y)
                                                            : stats::kendall_tau_b<double>(x, y);
    st.latency_correlation = r.coefficient;
    double const desired = o.desired_latency_correlation.value_or(tool.desired_correlation());
    if (!recheck && (std::isnan(r.coefficient) || r.coefficient < desired)) {
      st.state = stopping_state::failed_desired_latency_correlation;
      st.stop_rule = rule_name(st.state, confidence, recheck);
    }
  }
  p.phase = proxy_phase::done;
}

}  // namespace detail::proxy_search

inline step<proxy_search_state> proxy_search_tool::advance(proxy_search_state const& s,
                                                           observation const& obs) const {
  namespace ps = detail::proxy_search;
  step<proxy_search_state> out{s, {}};
  auto& st = out.next;
  // Proxies the options name and the state does not (a search extended after it ended, the
  // seed's resume section): appended in the options' order, and a finished search goes on.
  for (auto const& c : options_.proxies) {
    bool const known = std::any_of(st.proxy_tasks.begin(), st.proxy_tasks.end(),
                                   [&](proxy_task_entry const& p) { return p.name == c.name; });
    if (known) continue;
    proxy_task_entry e;
    e.name = c.name;
    e.args = c.args;
    st.proxy_tasks.push_back(std::move(e));
    st.phase = search_phase::searching;
  }
  while (st.phase == search_phase::searching) {
    auto const current =
        std::find_if(st.proxy_tasks.begin(), st.proxy_tasks.end(),
                     [](proxy_task_entry const& p) { return p.phase != proxy_phase::done; });
    if (current == st.proxy_tasks.end()) {
      st.phase = search_phase::done;
      break;
    }
    auto const index = static_cast<std::size_t>(current - st.proxy_tasks.begin());
    auto& p = *current;
    std::size_t const n = options_.reference_models.size();
    PROXYTASK_EXPECTS(p.phase == proxy_phase::pending || p.trial_ids.size() == n,
                      "proxy_search_tool::advance: the state's proxy has one trial per reference "
                      "model");
    if (p.phase == proxy_phase::pending) {
      p.phase = proxy_phase::running;
      p.trial_ids.clear();
      for (std::size_t m = 0; m < n; ++m) {
        p.trial_ids.push_back(ps::trial_id(index, m));
        out.commands.push_back(ps::launch_of(options_, p, index, m, model_seed(m)));
      }
      return out;  // measured from the next observation on
    }
    bool missing = false;
    for (std::size_t m = 0; m < n; ++m) {
      if (obs.find(p.trial_ids[m])) continue;
      missing = true;
      out.commands.push_back(ps::launch_of(options_, p, index, m, model_seed(m)));
    }
    if (missing) return out;  // a launch lost to a kill: measure once every trial is listed
    std::optional<double> best_time;
    if (auto const b = ps::best_index(st))
      best_time = st.proxy_tasks[*b].stats.final_training_time_in_hours;
    ps::measure(*this, p, obs, best_time);
    if (p.phase != proxy_phase::done) return out;
    for (auto const& id : p.trial_ids) {
      out.commands.push_back(set_desired_pct{id, 0.0});
      if (auto const* t = obs.find(id); t && !is_terminal(t->phase))
        out.commands.push_back(stop_trial{id});
    }
    if (auto const b = ps::best_index(st)) st.best_proxy_task_name = st.proxy_tasks[*b].name;
  }
  out.commands.push_back(result_of(st));
  return out;
}

inline tool_progress proxy_search_tool::describe(proxy_search_state const& s,
                                                 observation const&) const {
  tool_progress p;
  std::size_t done = 0;
  for (auto const& t : s.proxy_tasks) done += t.phase == proxy_phase::done ? 1 : 0;
  p.fraction_done = s.proxy_tasks.empty()
                        ? 1.0
                        : static_cast<double>(done) / static_cast<double>(s.proxy_tasks.size());
  if (s.phase == search_phase::done) {
    p.phase = "done";
    if (options_.stop_at_pct)
      p.decision = "measured at " + detail::proxy_search::number_text(*options_.stop_at_pct) +
                   "% (a re-check names no best proxy)";
    else
      p.decision = s.best_proxy_task_name ? "best proxy: " + *s.best_proxy_task_name
                                          : std::string("no proxy succeeded");
    return p;
  }
  p.phase = "search";
  for (auto const& t : s.proxy_tasks) {
    if (t.phase != proxy_phase::running) continue;
    std::string last = "not measured yet";
    auto const& c = t.stats.accuracy_correlation_over_step;
    if (!c.empty())
      // Three significant digits: a progress line (the state has every digit).
      last = "correlation " + detail::proxy_search::short_text(c.back()) + " at step " +
             std::to_string(t.stats.training_steps.back());
    p.decision = "proxy " + std::to_string(done + 1) + "/" + std::to_string(s.proxy_tasks.size()) +
                 " \"" + t.name + "\": " + last + " (desired " +
                 detail::proxy_search::number_text(s.desired_correlation) + ")";
    break;
  }
  return p;
}

inline finish proxy_search_tool::result_of(proxy_search_state const& s) const {
  namespace ps = detail::proxy_search;
  PROXYTASK_EXPECTS(s.phase == search_phase::done,
                    "proxy_search_tool::result_of: the search is not finished");
  boost::json::object r;
  r["schema_version"] = schema_version;
  // A re-check ran no stop rule: it measured, and names no best proxy (see the declaration).
  auto const& recheck = options_.stop_at_pct;
  auto const best = recheck ? std::nullopt : ps::best_index(s);
  r["status"] = recheck ? "measured" : best ? "found" : "none_succeeded";
  r["method"] = stats::to_string(s.method);
  r["desired_correlation"] = json_number(s.desired_correlation);
  r["stop_at_pct"] = recheck ? json_number(*recheck) : boost::json::value(nullptr);
  r["confidence_level"] = json_number(options_.confidence_level);  // of the at_stop CIs
  boost::json::array advice, warnings;
  std::string summary;
  if (best) {
    auto const& p = s.proxy_tasks[*best];
    r["best_proxy_task_name"] = p.name;
    boost::json::object args;
    for (auto const& [k, v] : p.args) args[k] = v;
    r["proxy_args"] = std::move(args);
    std::int64_t const steps = p.stats.final_training_steps.value_or(0);
    r["final_training_steps"] = steps;
    r["final_training_time_in_hours"] =
        json_number(p.stats.final_training_time_in_hours.value_or(ps::nan));
    advice.push_back(
        boost::json::string("set the proxy's training steps and cosine-decay steps to "
                            "final_training_steps = " +
                            std::to_string(steps)));
    // The seed's final checks: the reward range and the invalid-trial rate.
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double const a : p.stats.accuracy_at_stop)
      if (std::isfinite(a)) lo = std::min(lo, a), hi = std::max(hi, a);
    if (hi > 10.0) {
      double const scale = std::pow(10.0, -std::ceil(std::log10(hi / 10.0)));
      warnings.push_back(boost::json::string(
          "the proxy's scores reach " + ps::number_text(hi) +
          ", above the reward range [1e-3, 10]: scale the reward by " + ps::number_text(scale)));
    } else if (lo < 1e-3 && lo > 0) {
      double const scale = std::pow(10.0, std::ceil(std::log10(1e-3 / lo)));
      warnings.push_back(boost::json::string(
          "the proxy's scores go down to " + ps::number_text(lo) +
          ", below the reward range [1e-3, 10]: scale the reward by " + ps::number_text(scale)));
    } else if (lo < 1e-3) {
      warnings.push_back(boost::json::string(
          "the proxy's scores go down to " + ps::number_text(lo) +
          ", below the reward range [1e-3, 10]: shift the reward to positive values"));
    } else if (hi >= lo) {
      advice.push_back(boost::json::string("the proxy's scores [" + ps::number_text(lo) + ", " +
                                           ps::number_text(hi) +
                                           "] lie within the reward range [1e-3, 10]"));
    }
    double const rate = p.trial_ids.empty() ? 0.0
                                            : static_cast<double>(p.failed_trials) /
                                                  static_cast<double>(p.trial_ids.size());
    if (rate > 0.2)
      warnings.push_back(boost::json::string("invalid-trial rate " + ps::number_text(rate * 100) +
                                             "% is above 20%: find the cause before the search"));
    summary = "best proxy \"" + p.name + "\": " + std::to_string(steps) + " steps, " +
              ps::number_text(p.stats.final_training_time_in_hours.value_or(ps::nan)) + " h";
  } else {
    r["best_proxy_task_name"] = nullptr;
    r["final_training_steps"] = nullptr;
    r["final_training_time_in_hours"] = nullptr;
    summary = "no proxy reached the desired correlation";
  }
  if (recheck) {
    std::string const pct = ps::short_text(*recheck) + "%";
    advice.push_back(boost::json::string(
        "re-check: every proxy's trials trained to " + pct +
        " of their steps, the stop rules off; the correlation there, per proxy, follows (no best "
        "proxy is named)"));
    std::size_t meets = 0;
    for (auto const& p : s.proxy_tasks) {
      advice.push_back(boost::json::string(
          ps::measured_line(p, s.method, s.desired_correlation, options_.confidence_level)));
      if (auto const& st = p.stats; st.stop_step_index) {
        double const c = st.accuracy_correlation_over_step[*st.stop_step_index];
        meets += !std::isnan(c) && c >= s.desired_correlation ? 1 : 0;
      }
      double const rate = p.trial_ids.empty() ? 0.0
                                              : static_cast<double>(p.failed_trials) /
                                                    static_cast<double>(p.trial_ids.size());
      if (rate > 0.2)
        warnings.push_back(boost::json::string(
            "\"" + p.name + "\": invalid-trial rate " + ps::number_text(rate * 100) +
            "% is above 20%: find the cause before trusting its correlation"));
    }
    summary = "re-check at " + pct + ": " + std::to_string(meets) + " of " +
              std::to_string(s.proxy_tasks.size()) + " proxies meet the desired correlation " +
              ps::short_text(s.desired_correlation);
  }
  r["advice"] = std::move(advice);
  r["warnings"] = std::move(warnings);
  boost::json::array proxies;
  for (auto const& p : s.proxy_tasks) {
    boost::json::object e{{"name", p.name},
                          {"stopping_state", to_string(p.stats.state)},
                          {"stop_rule", p.stats.stop_rule},
                          {"latency_correlation", json_number(p.stats.latency_correlation)},
                          {"failed_trials", p.failed_trials},
                          {"trials", p.trial_ids.size()},
                          {"at_stop", ps::at_stop_json(p, s.desired_correlation)}};
    e["final_training_steps"] = p.stats.final_training_steps
                                    ? boost::json::value(*p.stats.final_training_steps)
                                    : boost::json::value(nullptr);
    e["final_training_time_in_hours"] =
        json_number(p.stats.final_training_time_in_hours.value_or(ps::nan));
    proxies.push_back(std::move(e));
  }
  r["proxy_tasks"] = std::move(proxies);
  finish f;
  f.result = r;
  f.summary = summary;
  f.files.emplace(std::string(result_file_name), std::move(r));
  return f;
}

// ---- JSON ---------------------------------------------------------------------------------

namespace detail::proxy_search {

template <class T>
boost::json::array numbers(std::vector<T> const& v) {
  boost::json::array a;
  for (T const x : v) {
    if constexpr (std::is_floating_point_v<T>)
      a.push_back(json_number(x));
    else
      a.push_back(x);
  }
  return a;
}

inline result<std::vector<double>> read_doubles(boost::json::value const& v,
                                                json_location const& where) {
  auto const a = read_json_array(v, where);
  if (!a) return a.error();
  std::vector<double> out;
  for (std::size_t i = 0; i < (*a)->size(); ++i) {
    auto const& x = (**a)[i];
    if (x.is_null()) {
      out.push_back(nan);
      continue;
    }
    auto const d = read_json_double(x, where / i);
    if (!d) return d.error();
    out.push_back(*d);
  }
  return out;
}

inline result<std::vector<std::int64_t>> read_ints(boost::json::value const& v,
                                                   json_location const& where) {
  auto const a = read_json_array(v, where);
  if (!a) return a.error();
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < (*a)->size(); ++i) {
    auto const d = read_json_int64((**a)[i], where / i);
    if (!d) return d.error();
    out.push_back(*d);
  }
  return out;
}

inline result<double> read_nullable(boost::json::value const& v, json_location const& where) {
  if (v.is_null()) return nan;
  return read_json_double(v, where);
}

inline boost::json::value stats_json(proxy_task_stats const& s) {
  boost::json::object o{
      {"training_steps", numbers(s.training_steps)},
      {"accuracy_correlation_over_step", numbers(s.accuracy_correlation_over_step)},
      {"accuracy_correlation_p_value_over_step", numbers(s.accuracy_correlation_p_value_over_step)},
      {"median_accuracy_over_step", numbers(s.median_accuracy_over_step)},
      {"median_training_time_hrs_over_step", numbers(s.median_training_time_hrs_over_step)},
      {"latency_correlation", json_number(s.latency_correlation)},
      {"stopping_state", to_string(s.state)},
      {"final_training_time_in_hours", json_number(s.final_training_time_in_hours.value_or(nan))},
      {"training_step_pct", numbers(s.training_step_pct)},
      {"kendall_over_step", numbers(s.kendall_over_step)},
      {"spearman_over_step", numbers(s.spearman_over_step)},
      {"ci_low_over_step", numbers(s.ci_low_over_step)},
      {"ci_high_over_step", numbers(s.ci_high_over_step)},
      {"valid_pairs_over_step", numbers(s.valid_pairs_over_step)},
      {"stop_rule", s.stop_rule},
      {"accuracy_at_stop", numbers(s.accuracy_at_stop)}};
  o["final_training_steps"] = s.final_training_steps ? boost::json::value(*s.final_training_steps)
                                                     : boost::json::value(nullptr);
  o["stop_step_index"] =
      s.stop_step_index ? boost::json::value(*s.stop_step_index) : boost::json::value(nullptr);
  return o;
}

inline result<proxy_task_stats> stats_from_json(boost::json::value const& v,
                                                json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  proxy_task_stats s;
  auto ints = [&](std::string_view key, std::vector<std::int64_t>& out) -> result<void> {
    auto r = read_json_member(**o, key, where, read_ints);
    if (!r) return r.error();
    out = std::move(*r);
    return {};
  };
  auto doubles = [&](std::string_view key, std::vector<double>& out) -> result<void> {
    auto r = read_json_member(**o, key, where, read_doubles);
    if (!r) return r.error();
    out = std::move(*r);
    return {};
  };
  for (auto const& r :
       {ints("training_steps", s.training_steps),
        doubles("accuracy_correlation_over_step", s.accuracy_correlation_over_step),
        doubles("accuracy_correlation_p_value_over_step", s.accuracy_correlation_p_value_over_step),
        doubles("median_accuracy_over_step", s.median_accuracy_over_step),
        doubles("median_training_time_hrs_over_step", s.median_training_time_hrs_over_step),
        doubles("training_step_pct", s.training_step_pct),
        doubles("kendall_over_step", s.kendall_over_step),
        doubles("spearman_over_step", s.spearman_over_step),
        doubles("ci_low_over_step", s.ci_low_over_step),
        doubles("ci_high_over_step", s.ci_high_over_step),
        ints("valid_pairs_over_step", s.valid_pairs_over_step),
        doubles("accuracy_at_stop", s.accuracy_at_stop)})
    if (!r) return r.error();
  std::size_t const n = s.training_steps.size();
  for (std::size_t const size :
       {s.accuracy_correlation_over_step.size(), s.accuracy_correlation_p_value_over_step.size(),
        s.median_accuracy_over_step.size(), s.median_training_time_hrs_over_step.size(),
        s.training_step_pct.size(), s.kendall_over_step.size(), s.spearman_over_step.size(),
        s.ci_low_over_step.size(), s.ci_high_over_step.size(), s.valid_pairs_over_step.size()})
    if (size != n) return (where / "training_steps").fail("the per-step lists differ in length");
  auto const latency = read_json_member(**o, "latency_correlation", where, read_nullable);
  if (!latency) return latency.error();
  s.latency_correlation = *latency;
  auto const state = read_json_member(**o, "stopping_state", where, read_json_string);
  if (!state) return state.error();
  auto const parsed = parse_stopping_state(*state);
  if (!parsed) return (where / "stopping_state").fail("unknown stopping state \"" + *state + "\"");
  s.state = *parsed;
  auto const time = read_json_member(**o, "final_training_time_in_hours", where, read_nullable);
  if (!time) return time.error();
  if (!std::isnan(*time)) s.final_training_time_in_hours = *time;
  auto const steps = read_json_field(**o, "final_training_steps", where);
  if (!steps) return steps.error();
  if (!(*steps)->is_null()) {
    auto const v = read_json_int64(**steps, where / "final_training_steps");
    if (!v) return v.error();
    s.final_training_steps = *v;
  }
  auto const index = read_json_field(**o, "stop_step_index", where);
  if (!index) return index.error();
  if (!(*index)->is_null()) {
    auto const v = read_json_count(**index, where / "stop_step_index");
    if (!v) return v.error();
    if (static_cast<std::size_t>(*v) >= n)
      return (where / "stop_step_index").fail("beyond the recorded steps");
    s.stop_step_index = static_cast<std::size_t>(*v);
  }
  auto rule = read_json_member(**o, "stop_rule", where, read_json_string);
  if (!rule) return rule.error();
  s.stop_rule = std::move(*rule);
  return s;
}

}  // namespace detail::proxy_search

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       proxy_search_state const& s) {
  boost::json::object map;
  for (auto const& p : s.proxy_tasks) {
    boost::json::object args;
    for (auto const& [k, v] : p.args) args[k] = v;
    boost::json::array ids;
    for (auto const& id : p.trial_ids) ids.push_back(boost::json::string(id));
    map[p.name] =
        boost::json::object{{"proxy_task_stats", detail::proxy_search::stats_json(p.stats)},
                            {"args", std::move(args)},
                            {"phase", to_string(p.phase)},
                            {"trial_ids", std::move(ids)},
                            {"failed_trials", p.failed_trials}};
  }
  boost::json::object o{{"schema_version", proxy_search_tool::schema_version},
                        {"proxy_tasks_map", std::move(map)},
                        {"phase", to_string(s.phase)},
                        {"method", stats::to_string(s.method)},
                        {"desired_correlation", json_number(s.desired_correlation)}};
  o["best_proxy_task_name"] =
      s.best_proxy_task_name ? boost::json::value(*s.best_proxy_task_name) : nullptr;
  jv = std::move(o);
}

inline result<proxy_search_state> proxy_search_state_from_json(boost::json::value const& v,
                                                               json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  proxy_search_state s;
  auto const version = read_json_member(**o, "schema_version", where, read_json_count);
  if (!version) return version.error();
  if (*version > proxy_search_tool::schema_version)
    return (where / "schema_version").fail("newer than this tool's schema version");
  auto const phase = read_json_member(**o, "phase", where, read_json_string);
  if (!phase) return phase.error();
  if (*phase == "done")
    s.phase = search_phase::done;
  else if (*phase != "searching")
    return (where / "phase").fail("unknown phase \"" + *phase + "\" (expected searching or done)");
  auto const method = read_json_member(**o, "method", where, read_json_string);
  if (!method) return method.error();
  auto const m = stats::parse_correlation(*method);
  if (!m) return (where / "method").fail("unknown method \"" + *method + "\"");
  s.method = *m;
  auto const desired = read_json_member(**o, "desired_correlation", where, read_json_finite);
  if (!desired) return desired.error();
  s.desired_correlation = *desired;
  auto const best = read_json_field(**o, "best_proxy_task_name", where);
  if (!best) return best.error();
  if (!(*best)->is_null()) {
    auto name = read_json_string(**best, where / "best_proxy_task_name");
    if (!name) return name.error();
    s.best_proxy_task_name = std::move(*name);
  }
  auto const map = read_json_member(**o, "proxy_tasks_map", where, read_json_object);
  if (!map) return map.error();
  for (auto const& kv : **map) {
    json_location const at = where / "proxy_tasks_map" / kv.key();
    auto const e = read_json_object(kv.value(), at);
    if (!e) return e.error();
    proxy_task_entry p;
    p.name = std::string(kv.key());
    auto st = read_json_member(**e, "proxy_task_stats", at, detail::proxy_search::stats_from_json);
    if (!st) return st.error();
    p.stats = std::move(*st);
    auto const args = read_json_member(**e, "args", at, read_json_object);
    if (!args) return args.error();
    for (auto const& a : **args) {
      auto value = read_json_string(a.value(), at / "args" / a.key());
      if (!value) return value.error();
      p.args.emplace(std::string(a.key()), std::move(*value));
    }
    auto const ph = read_json_member(**e, "phase", at, read_json_string);
    if (!ph) return ph.error();
    if (*ph == "pending")
      p.phase = proxy_phase::pending;
    else if (*ph == "running")
      p.phase = proxy_phase::running;
    else if (*ph == "done")
      p.phase = proxy_phase::done;
    else
      return (at / "phase")
          .fail("unknown phase \"" + *ph + "\" (expected pending, running or done)");
    auto const ids = read_json_member(**e, "trial_ids", at, read_json_array);
    if (!ids) return ids.error();
    for (std::size_t i = 0; i < (*ids)->size(); ++i) {
      auto id = read_json_string((**ids)[i], at / "trial_ids" / i);
      if (!id) return id.error();
      p.trial_ids.push_back(std::move(*id));
    }
    auto const failed = read_json_member(**e, "failed_trials", at, read_json_count);
    if (!failed) return failed.error();
    p.failed_trials = static_cast<std::size_t>(*failed);
    s.proxy_tasks.push_back(std::move(p));
  }
  return s;
}

inline result<proxy_search_state> proxy_search_tool::state_from_json(boost::json::value const& v,
                                                                     json_location const& where) {
  return proxy_search_state_from_json(v, where);
}

inline boost::system::result<proxy_search_state> tag_invoke(
    boost::json::try_value_to_tag<proxy_search_state>, boost::json::value const& jv) {
  auto s = proxy_search_state_from_json(jv, json_location(""));
  if (!s) return boost::system::error_code(s.error().code);
  return std::move(*s);
}

}  // namespace proxytask::workflow
