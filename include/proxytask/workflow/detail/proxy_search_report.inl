#pragma once
// Definitions of workflow/proxy_search_report.hpp (included at its end).

#include <proxytask/report/plot.hpp>
#include <proxytask/workflow/proxy_search_report.hpp>
#include <proxytask/workflow/stopping.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

namespace proxytask::workflow {

namespace detail::search_report {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// Colours (report::okabe_ito), fixed per role so that every proxy's plots read alike.
constexpr std::string_view deciding_color = "#0072B2";  // blue: the deciding method and its CI
constexpr std::string_view other_color = "#E69F00";     // orange: the other method
constexpr std::string_view stop_color = "#D55E00";      // vermillion: the stop step

/// "0.8123" style numbers for people (titles, tooltips), as model selection's plots write them.
inline std::string brief(double v) {
  if (!std::isfinite(v)) return "none";
  return report::format_fixed(v, std::abs(v) >= 100 ? 2 : 4);
}

/// A name with the bytes outside [A-Za-z0-9._-] replaced by '_', and whether any was.
struct sanitized {
  std::string text;
  bool changed = false;
};

inline sanitized sanitize(std::string_view name) {
  sanitized out;
  out.text.reserve(name.size());
  for (char const c : name) {
    bool const keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
    out.text += keep ? c : '_';
    out.changed = out.changed || !keep;
  }
  return out;
}

/// Every proxy's slug (see proxy_plot_slug). Why the rule is unique: bare slugs are unchanged
/// names that no other proxy shares, so they differ from one another; suffixed slugs end in
/// "-<index>" with distinct indices (an index has no '-'), so they differ from one another; and a
/// name that equals another proxy's suffixed form is suffixed itself, so a bare slug never
/// meets a suffixed one.
inline std::vector<std::string> slugs(proxy_search_state const& s) {
  std::size_t const n = s.proxy_tasks.size();
  std::vector<sanitized> names;
  names.reserve(n);
  for (auto const& p : s.proxy_tasks) names.push_back(sanitize(p.name));
  auto const suffixed = [&](std::size_t j) { return names[j].text + "-" + std::to_string(j); };
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    // An empty name would give "proxy__...": suffix it, so that every slug says something.
    bool suffix = names[i].changed || names[i].text.empty();
    for (std::size_t j = 0; j < n && !suffix; ++j)
      suffix = j != i && (names[j].text == names[i].text || suffixed(j) == names[i].text);
    out.push_back(suffix ? suffixed(i) : names[i].text);
  }
  return out;
}

/// The caller's contract for one proxy: one value per step in every per-step vector we draw,
/// and a stop step among the steps (a hand-built state can break either; a state read by
/// proxy_search_state_from_json cannot).
inline void check_proxy(proxy_task_entry const& p) {
  auto const& st = p.stats;
  std::size_t const n = st.training_steps.size();
  for (std::size_t const size :
       {st.accuracy_correlation_over_step.size(), st.median_accuracy_over_step.size(),
        st.median_training_time_hrs_over_step.size(), st.kendall_over_step.size(),
        st.spearman_over_step.size(), st.ci_low_over_step.size(), st.ci_high_over_step.size()})
    PROXYTASK_EXPECTS(size == n, "proxy_search_plots: proxy \"" + p.name +
                                     "\" has per-step vectors of different lengths");
  PROXYTASK_EXPECTS(!st.stop_step_index || *st.stop_step_index < n,
                    "proxy_search_plots: proxy \"" + p.name + "\" stops beyond its steps");
}

/// "Proxy "<name>": <stopping state> (stop rule: <rule>)", or "not stopped" while it runs. The
/// same for each of a proxy's plots (their axes say what they show): plot.hpp neither wraps nor
/// shortens a title, so a longer one would be cut off at the plot's edges.
inline std::string title_of(proxy_task_entry const& p) {
  std::string t = "Proxy \"" + p.name + "\": ";
  if (p.stats.state == stopping_state::none)
    return t + "not stopped (" + std::string(to_string(p.phase)) + ")";
  t += std::string(to_string(p.stats.state)) + " (stop rule: ";
  t += p.stats.stop_rule.empty() ? std::string("none") : p.stats.stop_rule;
  return t + ")";
}

inline std::vector<double> as_doubles(std::vector<std::int64_t> const& v) {
  return {v.begin(), v.end()};
}

inline std::string method_name(stats::correlation m) { return std::string(stats::to_string(m)); }

/// The correlation over `x` (steps or hours; see the file comment). `stop_x` is the stop step's
/// x (NaN: no stop line), `stop_label` its label.
inline std::string correlation_svg(proxy_search_state const& s, proxy_search_options const& o,
                                   proxy_task_entry const& p, std::vector<double> const& x,
                                   std::string x_label, double stop_x, std::string stop_label) {
  auto const& st = p.stats;
  bool const spearman_decides = s.method == stats::correlation::spearman;
  std::string const deciding = method_name(s.method);
  std::string const other = spearman_decides ? "kendall" : "spearman";
  report::plot plot(
      {.title = title_of(p),
       .x = {.label = std::move(x_label)},
       .y = {.label = "rank correlation with full training", .range = report::interval{-1, 1}},
       .width = 720,
       .height = 440});
  // Without bootstrap (resamples 0) every CI is NaN: an empty band would only add a legend entry.
  bool has_ci = false;
  for (std::size_t i = 0; i < x.size(); ++i)
    has_ci =
        has_ci || (std::isfinite(st.ci_low_over_step[i]) && std::isfinite(st.ci_high_over_step[i]));
  if (has_ci)
    plot.band(deciding + " " + report::format_fixed(o.confidence_level * 100, 2) + "% CI", x,
              st.ci_low_over_step, st.ci_high_over_step, {.color = std::string(deciding_color)});
  plot.line(deciding + " (deciding)", x, st.accuracy_correlation_over_step,
            {.color = std::string(deciding_color)});
  plot.line(other, x, spearman_decides ? st.kendall_over_step : st.spearman_over_step,
            {.color = std::string(other_color), .dashed = true});
  if (std::isfinite(s.desired_correlation))
    plot.hline(s.desired_correlation, "threshold " + report::format_number(s.desired_correlation),
               {.dashed = true});
  if (std::isfinite(stop_x))
    plot.vline(stop_x, std::move(stop_label), {.color = std::string(stop_color)});
  return plot.to_svg();
}

inline std::string median_accuracy_svg(proxy_search_options const& o, proxy_task_entry const& p,
                                       std::vector<double> const& steps, double stop_x,
                                       std::string stop_label) {
  report::plot plot({.title = title_of(p),
                     .x = {.label = "training step"},
                     .y = {.label = "median accuracy of the reference models"},
                     .width = 720,
                     .height = 440});
  plot.line("median accuracy", steps, p.stats.median_accuracy_over_step,
            {.color = std::string(deciding_color)});
  // The median accuracy rule's threshold, when it is on.
  if (o.desired_accuracy && std::isfinite(*o.desired_accuracy))
    plot.hline(*o.desired_accuracy,
               "desired accuracy " + report::format_number(*o.desired_accuracy), {.dashed = true});
  if (std::isfinite(stop_x))
    plot.vline(stop_x, std::move(stop_label), {.color = std::string(stop_color)});
  return plot.to_svg();
}

/// One marker per reference model: the proxy score at the stop step (x) against `y[m]`, named
/// "reference models (<n>[, <k> without a score])" as model selection names its series.
inline std::string models_svg(std::string title, std::string x_label, std::string y_label,
                              std::string_view y_name, proxy_search_options const& o,
                              std::vector<double> const& x, std::vector<double> const& y) {
  std::size_t const n = x.size();
  std::vector<std::string> labels;
  labels.reserve(n);
  std::size_t skipped = 0;
  for (std::size_t m = 0; m < n; ++m) {
    skipped += !(std::isfinite(x[m]) && std::isfinite(y[m]));
    labels.push_back(o.reference_models[m].model_id + ": proxy score " + brief(x[m]) + ", " +
                     std::string(y_name) + " " + brief(y[m]));
  }
  std::string name = "reference models (" + std::to_string(n);
  if (skipped > 0) name += ", " + std::to_string(skipped) + " without a score";
  name += ")";
  report::plot plot({.title = std::move(title),
                     .x = {.label = std::move(x_label)},
                     .y = {.label = std::move(y_label)},
                     .width = 720,
                     .height = 440});
  plot.scatter(std::move(name), x, y,
               {.color = std::string(deciding_color), .shape = report::marker::diamond},
               std::move(labels));
  return plot.to_svg();
}

/// The plot of every ended proxy (proxies.svg; see the file comment).
inline std::string proxies_svg(proxy_search_state const& s) {
  struct series_points {
    std::string name;
    std::vector<double> x, y;
    std::vector<std::string> labels;
  };
  constexpr std::size_t kinds = 3;
  std::array<series_points, kinds> series;
  std::string const deciding = method_name(s.method);
  std::size_t ended = 0;
  for (auto const& p : s.proxy_tasks) {
    if (p.phase != proxy_phase::done) continue;
    ++ended;
    bool const best = s.best_proxy_task_name && p.name == *s.best_proxy_task_name;
    auto& sp = series[best ? 0 : is_successful(p.stats.state) ? 1 : 2];
    if (best) sp.name = "best: " + p.name;
    auto const& stop = p.stats.stop_step_index;
    // check_proxy vouched for the index. A proxy stopped by a rule that sets no final time (not
    // best, failures) is drawn at its stop step's median training time; one without either, or
    // without a stop step, is NaN: skipped.
    double const x = p.stats.final_training_time_in_hours.value_or(
        stop ? p.stats.median_training_time_hrs_over_step[*stop] : nan);
    double const y = stop ? p.stats.accuracy_correlation_over_step[*stop] : nan;
    sp.x.push_back(x);
    sp.y.push_back(y);
    std::string label = p.name + ": " + std::string(to_string(p.stats.state)) + " (stop rule: " +
                        (p.stats.stop_rule.empty() ? std::string("none") : p.stats.stop_rule) +
                        "), training time " + brief(x) + " h, " + deciding + " " + brief(y);
    if (stop) label += " at step " + std::to_string(p.stats.training_steps[*stop]);
    sp.labels.push_back(std::move(label));
  }
  std::string title = "Proxy tasks: " + std::to_string(ended) + " of " +
                      std::to_string(s.proxy_tasks.size()) + " ended, best: " +
                      (s.best_proxy_task_name ? *s.best_proxy_task_name : std::string("none yet"));
  report::plot plot(
      {.title = std::move(title),
       .x = {.label = "training time at the stop (hours)"},
       .y = {.label = deciding + " correlation at the stop step", .range = report::interval{-1, 1}},
       .width = 720,
       .height = 440});
  constexpr std::string_view names[kinds] = {"", "successful", "failed"};
  report::style const looks[kinds] = {
      {.color = "#009E73", .shape = report::marker::diamond, .marker_size = 6},  // best
      {.color = "#56B4E9", .shape = report::marker::circle},                     // successful
      {.color = "#D55E00", .shape = report::marker::circle, .hollow = true},     // failed
  };
  for (std::size_t k = 0; k < kinds; ++k) {
    auto& sp = series[k];
    if (sp.x.empty()) continue;
    std::size_t skipped = 0;
    for (std::size_t i = 0; i < sp.x.size(); ++i)
      skipped += !(std::isfinite(sp.x[i]) && std::isfinite(sp.y[i]));
    if (k != 0) {
      // The best series is named for its proxy alone ("best: <name>"); the others count theirs.
      sp.name = std::string(names[k]) + " (" + std::to_string(sp.x.size());
      if (skipped > 0) sp.name += ", " + std::to_string(skipped) + " without a time or stop step";
      sp.name += ")";
    }
    plot.scatter(std::move(sp.name), sp.x, sp.y, looks[k], std::move(sp.labels));
  }
  if (std::isfinite(s.desired_correlation))
    plot.hline(s.desired_correlation, "threshold " + report::format_number(s.desired_correlation),
               {.dashed = true});
  return plot.to_svg();
}

}  // namespace detail::search_report

inline std::string proxy_plot_slug(proxy_search_state const& s, std::size_t proxy_index) {
  PROXYTASK_EXPECTS(proxy_index < s.proxy_tasks.size(),
                    "proxy_plot_slug: no such proxy in the state");
  return detail::search_report::slugs(s)[proxy_index];
}

inline std::vector<plot_file> proxy_search_plots(proxy_search_state const& s,
                                                 proxy_search_options const& options) {
  namespace dr = detail::search_report;
  for (auto const& p : s.proxy_tasks) dr::check_proxy(p);
  auto const slugs = dr::slugs(s);
  std::vector<plot_file> out;
  for (std::size_t i = 0; i < s.proxy_tasks.size(); ++i) {
    auto const& p = s.proxy_tasks[i];
    auto const& st = p.stats;
    if (st.training_steps.empty()) continue;
    std::string const prefix = "proxy_" + slugs[i] + "_";
    auto const steps = dr::as_doubles(st.training_steps);
    auto const& stop = st.stop_step_index;
    double const stop_step = stop ? steps[*stop] : dr::nan;
    std::string const stop_label =
        stop ? "stop at step " + std::to_string(st.training_steps[*stop]) : std::string();
    out.push_back(
        {prefix + "correlation_steps.svg",
         dr::correlation_svg(s, options, p, steps, "training step", stop_step, stop_label)});
    double const stop_time = stop ? st.median_training_time_hrs_over_step[*stop] : dr::nan;
    out.push_back({prefix + "correlation_time.svg",
                   dr::correlation_svg(s, options, p, st.median_training_time_hrs_over_step,
                                       "median trial's training time (hours)", stop_time,
                                       "stop at " + dr::brief(stop_time) + " h")});
    out.push_back({prefix + "median_accuracy.svg",
                   dr::median_accuracy_svg(options, p, steps, stop_step, stop_label)});

    // The scores at the stop step: only a proxy that stopped at a recorded step has them (one
    // that failed without a stop step took them at its last step, which is no decision point).
    if (!stop || st.accuracy_at_stop.empty()) continue;
    PROXYTASK_EXPECTS(st.accuracy_at_stop.size() == options.reference_models.size(),
                      "proxy_search_plots: proxy \"" + p.name +
                          "\" has not one score at its stop step per reference model");
    std::size_t const n = options.reference_models.size();
    std::vector<double> full(n), latency(n);
    for (std::size_t m = 0; m < n; ++m) {
      full[m] = options.reference_models[m].accuracy;
      latency[m] = options.reference_models[m].latency.value_or(dr::nan);
    }
    std::string x_label =
        "score under the proxy at step " + std::to_string(st.training_steps[*stop]);
    // The pct is only a label: a hand-built state may leave training_step_pct out.
    if (*stop < st.training_step_pct.size() && std::isfinite(st.training_step_pct[*stop]))
      x_label += " (" + dr::brief(st.training_step_pct[*stop]) + "% of training)";
    out.push_back({prefix + "scatter.svg",
                   dr::models_svg(dr::title_of(p), x_label, "full-training score",
                                  "full-training score", options, st.accuracy_at_stop, full)});
    bool const any_latency = std::any_of(
        options.reference_models.begin(), options.reference_models.end(),
        [](reference_model const& r) { return r.latency && std::isfinite(*r.latency); });
    if (any_latency)
      out.push_back(
          {prefix + "latency.svg", dr::models_svg(dr::title_of(p), x_label, "latency", "latency",
                                                  options, st.accuracy_at_stop, latency)});
  }
  bool const any_ended =
      std::any_of(s.proxy_tasks.begin(), s.proxy_tasks.end(),
                  [](proxy_task_entry const& p) { return p.phase == proxy_phase::done; });
  if (any_ended) out.push_back({std::string(proxies_plot_file_name), dr::proxies_svg(s)});
  return out;
}

}  // namespace proxytask::workflow
