#pragma once
// Definitions of workflow/design_report.hpp.

#include <proxytask/core/json.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/report/svg.hpp>
#include <proxytask/stats/median.hpp>
#include <proxytask/stats/over_steps.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/model_selection_report.hpp>
#include <proxytask/workflow/progress.hpp>
#include <proxytask/workflow/proxy_search_report.hpp>
#include <proxytask/workflow/variance_report.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace proxytask::workflow {

namespace detail::design {

namespace fs = std::filesystem;
inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();

/// A number for the summary: null when not finite.
inline boost::json::value number(double v) {
  return std::isfinite(v) ? boost::json::value(v) : boost::json::value(nullptr);
}
template <class T>
boost::json::value number(std::optional<T> const& v) {
  return v ? number(static_cast<double>(*v)) : boost::json::value(nullptr);
}

inline boost::json::object args_json(std::map<std::string, std::string> const& args) {
  boost::json::object o;
  for (auto const& [k, v] : args) o[k] = v;
  return o;
}

/// The member `key` of `o` as a double (NaN when missing, null or not a number).
inline double num(boost::json::object const& o, std::string_view key) {
  auto const* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<double>() : nan;
}

/// Reads a JSON file that must exist.
inline result<boost::json::value> read_required(fs::path const& path, std::string_view what) {
  auto const doc = read_json_object_file(path);
  if (!doc) return doc.error();
  if (!*doc)
    return make_error(errc::not_found, path.string() + ": missing (" + std::string(what) + ")");
  return std::move(**doc);
}

/// A tool's state from its run directory (nullopt when the stage has not started).
template <class Tool>
result<std::optional<typename Tool::state>> read_state(fs::path const& dir) {
  fs::path const path = dir / Tool::state_file_name;
  auto const doc = read_json_object_file(path);
  if (!doc) return doc.error();
  if (!*doc) return std::optional<typename Tool::state>{};
  auto s = Tool::state_from_json(**doc, json_location(path.string()));
  if (!s) return s.error();
  return std::optional<typename Tool::state>(std::move(*s));
}

/// A proxy's statistics at its stop step (the last step when it has none yet).
inline boost::json::object proxy_at_stop(proxy_task_entry const& p, double full_hours) {
  auto const& st = p.stats;
  std::size_t const cols = st.training_steps.size();
  std::optional<std::size_t> at = st.stop_step_index;
  if (!at && cols > 0) at = cols - 1;
  auto pick = [&](std::vector<double> const& v) { return at && *at < v.size() ? v[*at] : nan; };
  double const hours =
      st.final_training_time_in_hours.value_or(pick(st.median_training_time_hrs_over_step));
  std::optional<std::int64_t> steps = st.final_training_steps;
  if (!steps && at) steps = st.training_steps[*at];
  return {{"name", p.name},
          {"args", args_json(p.args)},
          {"stopping_state", p.phase == proxy_phase::done ? std::string(to_string(st.state))
                                                          : std::string("not finished")},
          {"stop_rule", st.stop_rule},
          {"stop_pct", number(pick(st.training_step_pct))},
          {"steps", number(steps)},
          {"hours", number(hours)},
          {"correlation", number(pick(st.accuracy_correlation_over_step))},
          {"ci_low", number(pick(st.ci_low_over_step))},
          {"ci_high", number(pick(st.ci_high_over_step))},
          {"valid_pairs", at && *at < st.valid_pairs_over_step.size()
                              ? boost::json::value(st.valid_pairs_over_step[*at])
                              : boost::json::value(nullptr)},
          {"cost_ratio", number(hours / full_hours)},
          {"failed_trials", p.failed_trials}};
}

/// The variance measurement's part of the summary (null before it has a result).
inline result<boost::json::value> variance_part(fs::path const& dir) {
  fs::path const path = dir / variance_tool::result_file_name;
  auto const doc = read_json_object_file(path);
  if (!doc) return doc.error();
  if (!*doc || !(*doc)->is_object()) return boost::json::value(nullptr);
  auto const& r = (*doc)->as_object();
  boost::json::array copies;
  if (auto const* c = r.if_contains("copies"); c && c->is_array())
    for (auto const& copy : c->as_array())
      if (copy.is_object()) copies.push_back(number(num(copy.as_object(), "final_accuracy")));
  std::string model_id;
  if (auto const* spec = r.if_contains("model_spec"); spec && spec->is_object())
    if (auto const* id = spec->as_object().if_contains("model_id"); id && id->is_string())
      model_id = id->as_string().c_str();
  auto text = [&](std::string_view key) {
    auto const* v = r.if_contains(key);
    return v && v->is_string() ? boost::json::value(v->as_string()) : boost::json::value(nullptr);
  };
  return boost::json::object{
      {"status", text("status")},
      {"model_id", model_id},
      {"copies", std::move(copies)},
      {"coefficient_of_variation", number(num(r, "variance_value"))},
      {"variance_verdict", text("variance_verdict")},
      {"variance_info", text("variance_info")},
      {"variance_ci", r.contains("variance_ci") ? r.at("variance_ci") : boost::json::value()},
      {"smoothness", number(num(r, "smoothness_value"))},
      {"smoothness_verdict", text("smoothness_verdict")},
      {"smoothness_info", text("smoothness_info")},
      {"advice", r.contains("advice") ? r.at("advice") : boost::json::value(boost::json::array{})}};
}

/// The share of bootstrap resamples of one step's scores whose correlation is at or below the
/// desired one: how often a measurement like this one would miss the bar.
inline double chance_below(std::vector<double> const& scores,
                           std::vector<reference_model> const& reference,
                           proxy_search_options const& o, double desired, std::size_t resamples) {
  if (scores.size() != reference.size() || scores.empty() || resamples == 0) return nan;
  std::vector<double> full(reference.size());
  for (std::size_t m = 0; m < reference.size(); ++m) full[m] = reference[m].accuracy;
  stats::over_steps_options ov;
  ov.method = o.method;
  ov.min_valid_pairs = o.min_valid_pairs;
  ov.min_valid_fraction = o.min_valid_fraction;
  ov.bootstrap_resamples = resamples;
  ov.confidence_level = o.confidence_level;
  ov.threshold = desired;
  ov.seed = o.seed;
  host_matrix_view<double const> const view(scores.data(), scores.size(), 1);
  auto const rows =
      stats::correlate_over_steps(backend::cpu, view, std::span<double const>(full), ov);
  if (!rows || rows->empty()) return nan;
  return (*rows)[0].bootstrap.p_above_threshold;
}

/// "0.712", "-" for NaN.
inline std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  return report::format_fixed(v, decimals);
}
inline std::string fixed(boost::json::object const& o, std::string_view key, int decimals) {
  return fixed(num(o, key), decimals);
}

/// "12.3 s" / "4m05s" for hours.
inline std::string duration(double hours) {
  if (!std::isfinite(hours)) return "-";
  double const s = hours * 3600.0;
  if (s < 60) return fixed(s, 1) + " s";
  return format_duration(s);
}

inline std::string text(boost::json::object const& o, std::string_view key) {
  auto const* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string("-");
}

inline std::string args_text(boost::json::value const& args) {
  std::string out;
  if (!args.is_object()) return out;
  for (auto const& kv : args.as_object()) {
    if (!out.empty()) out += ' ';
    out += "--" + std::string(kv.key()) + "=" +
           (kv.value().is_string() ? std::string(kv.value().as_string())
                                   : boost::json::serialize(kv.value()));
  }
  return out;
}

inline std::string correlation_text(boost::json::object const& o) {
  return fixed(o, "correlation", 2) + " [" + fixed(o, "ci_low", 2) + ", " + fixed(o, "ci_high", 2) +
         "]";
}

inline std::string method_name(boost::json::object const& s) {
  return text(s, "method") == "spearman" ? "Spearman rho" : "Kendall tau-b";
}

/// The one-line answer.
inline std::string one_line(boost::json::object const& s) {
  auto const* best = s.if_contains("best");
  if (!best || !best->is_object())
    return "no proxy reached " + method_name(s) + " " + fixed(s, "desired_correlation", 2) +
           ": none is trustworthy at this cost; try more expensive proxies (more data, larger "
           "scale) or more reference models";
  auto const& b = best->as_object();
  return "use proxy \"" + text(b, "name") + "\": " + fixed(b, "cost_ratio", 2) +
         "x the cost of full training, " + method_name(s) + " " + correlation_text(b) +
         " with full training";
}

// ---- HTML ----

/// An element with a number: its display text, and where it comes from.
inline report::element cell(std::string_view tag, boost::json::object const& summary_part,
                            std::string_view key, std::string const& pointer, int decimals) {
  report::element e{std::string(tag)};
  double const v = num(summary_part, key);
  e.attr("data-from", pointer + "/" + std::string(key));
  if (std::isfinite(v)) e.attr("data-value", report::format_number(v));
  e.text(fixed(v, decimals));
  return e;
}

inline report::element text_cell(std::string_view tag, std::string const& content) {
  report::element e{std::string(tag)};
  e.text(content);
  return e;
}

inline report::element header_row(std::initializer_list<std::string_view> names) {
  report::element tr("tr");
  for (auto const n : names) tr.add(text_cell("th", std::string(n)));
  return tr;
}

inline report::element paragraph(std::string const& content) { return text_cell("p", content); }

/// A figure: the SVG as is (a complete <svg> element: report/plot.hpp's output) and a caption.
inline std::string figure(std::string const& svg, std::string const& caption) {
  return "<figure>\n" + svg + "\n" + text_cell("figcaption", caption).to_string() + "\n</figure>\n";
}

inline constexpr char const style_sheet[] = R"(
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
td[data-from] { text-align: right; font-variant-numeric: tabular-nums; }
.answer { font-size: 1.15em; background: #f3f7fb; border-left: 4px solid #0072B2;
          padding: .6em 1em; }
figure { display: inline-block; margin: .5em; vertical-align: top; }
figcaption { font-size: .85em; color: #555; max-width: 640px; }
details { margin: .5em 0; }
)";

}  // namespace detail::design

inline std::optional<proxy_recheck> plan_recheck(proxy_search_state const& s) {
  if (s.phase != search_phase::done || !s.best_proxy_task_name) return std::nullopt;
  for (auto const& p : s.proxy_tasks) {
    if (p.name != *s.best_proxy_task_name) continue;
    auto const& st = p.stats;
    if (!st.stop_step_index || *st.stop_step_index >= st.training_step_pct.size())
      return std::nullopt;
    return proxy_recheck{proxy_config{p.name, p.args}, st.training_step_pct[*st.stop_step_index],
                         st.training_steps[*st.stop_step_index]};
  }
  return std::nullopt;
}

inline result<boost::json::object> design_summary(design_run const& run) {
  namespace d = detail::design;
  namespace fs = std::filesystem;
  auto const& o = run.search;
  boost::json::object s;
  s["schema_version"] = 1;
  s["method"] = stats::to_string(o.method);
  double const desired = o.desired_correlation.value_or(default_desired_correlation(o.method));
  s["desired_correlation"] = desired;
  s["confidence_level"] = o.confidence_level;
  s["baseline_args"] = d::args_json(run.baseline_args);

  auto variance = d::variance_part(run.run_dir / design_variance_dir);
  if (!variance) return variance.error();
  s["variance"] = std::move(*variance);

  // The reference models: scores from model selection's result, costs from their trials.
  fs::path const selection = run.run_dir / design_selection_dir;
  fs::path const result_path = selection / model_selection_tool::result_file_name;
  auto const result = d::read_required(result_path, "model selection's result");
  if (!result) return result.error();
  json_location const where(result_path.string());
  auto const* models =
      result->is_object() ? result->as_object().if_contains("reference_models") : nullptr;
  if (!models || !models->is_array())
    return (where / "reference_models").fail("missing or not an array");
  boost::json::array reference;
  std::vector<double> steps, hours;
  for (std::size_t i = 0; i < models->as_array().size(); ++i) {
    auto const& m = models->as_array()[i];
    if (!m.is_object()) return (where / "reference_models" / i).fail("not an object");
    auto const& mo = m.as_object();
    auto const* dir = mo.if_contains("trial_dir");
    if (!dir || !dir->is_string())
      return (where / "reference_models" / i / "trial_dir").fail("missing or not a string");
    fs::path trial_dir(std::string(dir->as_string()));
    if (trial_dir.is_relative()) trial_dir = selection / trial_dir;
    auto const metrics = protocol::read_metrics(trial_dir);
    if (!metrics) return metrics.error();
    double const h = metrics->time.total_training_time_in_secs / 3600.0;
    steps.push_back(static_cast<double>(metrics->time.total_training_steps));
    hours.push_back(h);
    reference.push_back(boost::json::object{{"model_id", d::text(mo, "model_id")},
                                            {"accuracy", d::number(d::num(mo, "accuracy"))},
                                            {"steps", metrics->time.total_training_steps},
                                            {"hours", d::number(h)}});
  }
  double const full_hours = stats::upper_median(std::span<double const>(hours));
  s["full_training"] = {
      {"models", reference.size()},
      {"median_steps", d::number(stats::upper_median(std::span<double const>(steps)))},
      {"median_hours", d::number(full_hours)}};
  s["reference_models"] = std::move(reference);

  auto const search = d::read_state<proxy_search_tool>(run.run_dir / design_search_dir);
  if (!search) return search.error();
  boost::json::array proxies;
  boost::json::value best = nullptr;
  if (*search) {
    for (std::size_t i = 0; i < (*search)->proxy_tasks.size(); ++i) {
      auto const& p = (*search)->proxy_tasks[i];
      auto row = d::proxy_at_stop(p, full_hours);
      row["plot_slug"] = proxy_plot_slug(**search, i);
      if ((*search)->best_proxy_task_name == p.name) {
        auto b = row;
        b.erase("stopping_state");
        b.erase("stop_rule");
        b.erase("valid_pairs");
        b.erase("failed_trials");
        b.erase("plot_slug");
        b["chance_below_desired"] = d::number(d::chance_below(
            p.stats.accuracy_at_stop, o.reference_models, o, desired, run.chance_resamples));
        auto trainer_args = d::args_json(run.baseline_args);
        for (auto const& [k, v] : p.args) trainer_args[k] = v;
        // The recorded step where the search stopped it (its "steps" may be an interpolated
        // crossing between two recorded steps): where the NAS trials stop, and the re-check.
        auto const plan = plan_recheck(**search);
        b["settings"] = {
            {"trainer_args", std::move(trainer_args)},
            {"stop_at_step", plan ? boost::json::value(plan->stop_at_step) : row.at("steps")},
            {"stop_at_pct", plan ? boost::json::value(plan->stop_at_pct) : row.at("stop_pct")}};
        best = std::move(b);
      }
      proxies.push_back(std::move(row));
    }
  }
  s["proxies"] = std::move(proxies);
  s["best"] = std::move(best);

  boost::json::value recheck = nullptr;
  if (run.recheck) {
    auto const state = d::read_state<proxy_search_tool>(run.run_dir / design_recheck_dir);
    if (!state) return state.error();
    if (*state && !(*state)->proxy_tasks.empty()) {
      auto const& p = (*state)->proxy_tasks.front();
      auto row = d::proxy_at_stop(p, full_hours);
      double const r = d::num(row, "correlation");
      boost::json::object c{{"seed", run.recheck->seed},
                            {"status", row.at("stopping_state")},
                            {"stop_pct", row.at("stop_pct")},
                            {"steps", row.at("steps")},
                            {"hours", row.at("hours")},
                            {"correlation", row.at("correlation")},
                            {"ci_low", row.at("ci_low")},
                            {"ci_high", row.at("ci_high")},
                            {"valid_pairs", row.at("valid_pairs")},
                            {"meets_desired", std::isfinite(r) ? boost::json::value(r >= desired)
                                                               : boost::json::value(nullptr)}};
      recheck = std::move(c);
    }
  }
  s["recheck"] = std::move(recheck);
  s["answer"] = d::one_line(s);
  return s;
}

inline std::string design_answer_text(boost::json::object const& s) {
  namespace d = detail::design;
  std::string out;
  auto line = [&](std::string const& l) { out += l + "\n"; };
  if (auto const* v = s.if_contains("variance"); v && v->is_object()) {
    auto const& vo = v->as_object();
    line("variance:   " + d::text(vo, "variance_info") + " " + d::text(vo, "smoothness_info") +
         " (coefficient of variation " + d::fixed(vo, "coefficient_of_variation", 4) +
         ", smoothness " + d::fixed(vo, "smoothness", 4) + "; " +
         std::to_string(vo.at("copies").as_array().size()) + " copies of " +
         d::text(vo, "model_id") + ")");
  } else {
    line("variance:   not measured");
  }
  auto const& full = s.at("full_training").as_object();
  auto const& refs = s.at("reference_models").as_array();
  double lo = d::nan, hi = d::nan;
  for (auto const& r : refs) {
    double const a = d::num(r.as_object(), "accuracy");
    lo = std::isnan(lo) ? a : std::min(lo, a);
    hi = std::isnan(hi) ? a : std::max(hi, a);
  }
  line("reference:  " + std::to_string(refs.size()) + " models, full-training accuracy " +
       d::fixed(lo, 4) + " .. " + d::fixed(hi, 4) + "; full training " +
       d::fixed(full, "median_steps", 0) + " steps, " + d::duration(d::num(full, "median_hours")) +
       " per model (median)");
  for (std::size_t i = 0; i < refs.size(); ++i) {
    auto const& r = refs[i].as_object();
    line("  " + d::text(r, "model_id") + "  accuracy " + d::fixed(r, "accuracy", 4) + "  " +
         d::fixed(r, "steps", 0) + " steps  " + d::duration(d::num(r, "hours")));
  }
  line("proxies:    " + d::method_name(s) + " with full training at each proxy's stop, " +
       d::fixed(100 * d::num(s, "confidence_level"), 0) + "% CI; desired " +
       d::fixed(s, "desired_correlation", 2));
  std::size_t width = 5;
  for (auto const& p : s.at("proxies").as_array())
    width = std::max(width, d::text(p.as_object(), "name").size());
  auto pad = [](std::string t, std::size_t w) {
    return t + std::string(t.size() < w ? w - t.size() : 1, ' ');
  };
  line("  " + pad("proxy", width + 2) + pad("end", 30) + pad("correlation [CI]", 20) +
       pad("steps", 7) + pad("cost", 9) + "x full");
  for (auto const& p : s.at("proxies").as_array()) {
    auto const& po = p.as_object();
    line("  " + pad(d::text(po, "name"), width + 2) + pad(d::text(po, "stopping_state"), 30) +
         pad(d::correlation_text(po), 20) + pad(d::fixed(po, "steps", 0), 7) +
         pad(d::duration(d::num(po, "hours")), 9) + d::fixed(po, "cost_ratio", 3));
  }
  if (auto const* b = s.if_contains("best"); b && b->is_object()) {
    auto const& bo = b->as_object();
    auto const& set = bo.at("settings").as_object();
    line("best proxy: \"" + d::text(bo, "name") + "\": " + d::fixed(bo, "cost_ratio", 2) +
         "x the cost of full training (" + d::duration(d::num(bo, "hours")) + " instead of " +
         d::duration(d::num(full, "median_hours")) + " per model), " + d::method_name(s) + " " +
         d::correlation_text(bo));
    line("settings:   " + d::args_text(set.at("trainer_args")) + "; stop each trial at step " +
         d::fixed(set, "stop_at_step", 0) + " (" + d::fixed(set, "stop_at_pct", 1) +
         "% of its schedule)");
    line("chance:     a measurement like this one, with " + std::to_string(refs.size()) +
         " models, lands at or below " + d::fixed(s, "desired_correlation", 2) + " in " +
         d::fixed(100 * d::num(bo, "chance_below_desired"), 0) +
         "% of bootstrap resamples: that is how likely a re-check misses the bar by chance");
  } else {
    line("best proxy: none succeeded");
  }
  if (auto const* r = s.if_contains("recheck"); r && r->is_object()) {
    auto const& ro = r->as_object();
    auto const* meets = ro.if_contains("meets_desired");
    line("re-check:   new seeds (seed " + d::fixed(ro, "seed", 0) + "), step " +
         d::fixed(ro, "steps", 0) + ": " + d::method_name(s) + " " + d::correlation_text(ro) +
         (meets && meets->is_bool()
              ? (meets->as_bool() ? ": meets the bar again" : ": below the bar this time")
              : ": not measured"));
  }
  line("answer:     " + d::text(s, "answer"));
  return out;
}

inline result<std::vector<plot_file>> design_plots(design_run const& run) {
  namespace d = detail::design;
  namespace fs = std::filesystem;
  std::vector<plot_file> out;
  auto in = [](std::string_view dir, std::string name) {
    return (fs::path(dir) / name).generic_string();
  };
  auto const variance = d::read_state<variance_tool>(run.run_dir / design_variance_dir);
  if (!variance) return variance.error();
  if (*variance)
    out.push_back(plot_file{in(design_variance_dir, std::string(variance_curves_plot_file_name)),
                            variance_curves_svg(**variance)});
  auto const selection = d::read_state<model_selection_tool>(run.run_dir / design_selection_dir);
  if (!selection) return selection.error();
  if (*selection)
    for (std::size_t i = 0; i < (*selection)->iterations.size(); ++i)
      if (selection_plot_final(**selection, i))
        out.push_back(plot_file{in(design_selection_dir, selection_plot_file_name(i)),
                                selection_iteration_svg(**selection, i)});
  auto searched = [&](std::string_view dir, proxy_search_options const& o) -> result<void> {
    auto const state = d::read_state<proxy_search_tool>(run.run_dir / dir);
    if (!state) return state.error();
    if (*state)
      for (auto& f : proxy_search_plots(**state, o))
        out.push_back(plot_file{in(dir, f.name), std::move(f.svg)});
    return {};
  };
  if (auto const r = searched(design_search_dir, run.search); !r) return r.error();
  if (run.recheck)
    if (auto const r = searched(design_recheck_dir, *run.recheck); !r) return r.error();
  return out;
}

inline std::string design_report_html(design_run const& run, boost::json::object const& s,
                                      std::vector<plot_file> const& plots) {
  namespace d = detail::design;
  using report::element;
  std::string page =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<title>Proxy-task design report</title>\n<style>" +
      std::string(d::style_sheet) + "</style>\n</head>\n<body>\n";
  auto add = [&](element const& e) { page += e.to_string() + "\n"; };
  // The plots under `dir`: those `shown` in the page, the others folded.
  auto figures = [&](std::string_view dir, auto shown) {
    std::string open, folded;
    std::string const prefix = std::string(dir) + "/";
    for (auto const& f : plots) {
      if (!f.name.starts_with(prefix)) continue;
      std::string const name = f.name.substr(prefix.size());
      (shown(name) ? open : folded) += d::figure(f.svg, f.name);
    }
    page += open;
    if (!folded.empty())
      page += "<details>\n" + d::text_cell("summary", "more plots").to_string() + "\n" + folded +
              "</details>\n";
  };
  auto all = [](std::string const&) { return true; };
  add(d::text_cell("h1", "Proxy-task design report: " + run.run_dir.filename().string()));
  element answer("p");
  answer.attr("class", "answer").text(d::text(s, "answer"));
  add(answer);
  element pre("pre");
  pre.text(design_answer_text(s));
  add(pre);

  // 1. Variance.
  add(d::text_cell("h2", "1. Variance measurement"));
  if (auto const* v = s.if_contains("variance"); v && v->is_object()) {
    auto const& vo = v->as_object();
    add(
        d::paragraph("Is the trainer's final score stable, and its curve smooth, enough to judge "
                     "a proxy on? " +
                     std::to_string(vo.at("copies").as_array().size()) + " copies of " +
                     d::text(vo, "model_id") + " trained to 100% with distinct seeds."));
    element table("table");
    table.add(d::header_row({"", "value", "verdict"}));
    element cv("tr");
    cv.add(d::text_cell("td", "coefficient of variation of the final accuracy"));
    cv.add(d::cell("td", vo, "coefficient_of_variation", "/variance", 5));
    cv.add(d::text_cell("td", d::text(vo, "variance_info")));
    table.add(std::move(cv));
    element sm("tr");
    sm.add(d::text_cell("td", "smoothness of the curves"));
    sm.add(d::cell("td", vo, "smoothness", "/variance", 5));
    sm.add(d::text_cell("td", d::text(vo, "smoothness_info")));
    table.add(std::move(sm));
    add(table);
    for (auto const& a : vo.at("advice").as_array())
      if (a.is_string()) add(d::paragraph("Advice: " + std::string(a.as_string())));
  } else {
    add(d::paragraph("Not measured."));
  }
  figures(design_variance_dir, all);

  // 2. Model selection.
  add(d::text_cell("h2", "2. Model selection: the reference models"));
  add(
      d::paragraph("Models of the search space, pruned over iterations to a set whose "
                   "full-training accuracies and costs spread widely; each reference model's "
                   "full-training score is what the proxies must rank."));
  element refs("table");
  refs.add(d::header_row({"model", "full-training accuracy", "steps", "training hours"}));
  auto const& models = s.at("reference_models").as_array();
  for (std::size_t i = 0; i < models.size(); ++i) {
    auto const& m = models[i].as_object();
    std::string const at = "/reference_models/" + std::to_string(i);
    element tr("tr");
    tr.add(d::text_cell("td", d::text(m, "model_id")));
    tr.add(d::cell("td", m, "accuracy", at, 4));
    tr.add(d::cell("td", m, "steps", at, 0));
    tr.add(d::cell("td", m, "hours", at, 5));
    refs.add(std::move(tr));
  }
  add(refs);
  figures(design_selection_dir, all);

  // 3. Proxy-task search.
  add(d::text_cell("h2", "3. Proxy-task search"));
  add(
      d::paragraph("Each proxy trains the reference models and stops once its ranking agrees "
                   "with full training (" +
                   d::method_name(s) + " >= " + d::fixed(s, "desired_correlation", 2) +
                   "), or once it costs more than the "
                   "best proxy so far. Cost: the median model's training time at the stop."));
  element proxies("table");
  proxies.add(d::header_row({"proxy", "end", "correlation", "CI low", "CI high", "stop pct",
                             "steps", "hours", "x full training"}));
  auto const& rows = s.at("proxies").as_array();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto const& p = rows[i].as_object();
    std::string const at = "/proxies/" + std::to_string(i);
    element tr("tr");
    tr.add(d::text_cell("td", d::text(p, "name")));
    tr.add(d::text_cell("td", d::text(p, "stopping_state")));
    tr.add(d::cell("td", p, "correlation", at, 3));
    tr.add(d::cell("td", p, "ci_low", at, 3));
    tr.add(d::cell("td", p, "ci_high", at, 3));
    tr.add(d::cell("td", p, "stop_pct", at, 1));
    tr.add(d::cell("td", p, "steps", at, 0));
    tr.add(d::cell("td", p, "hours", at, 5));
    tr.add(d::cell("td", p, "cost_ratio", at, 3));
    proxies.add(std::move(tr));
  }
  add(proxies);
  // Shown: the cost-against-correlation plot and the best proxy's correlation and scatter.
  std::string best_prefix = "-";
  if (auto const* b = s.if_contains("best"); b && b->is_object())
    for (std::size_t i = 0; i < rows.size(); ++i)
      if (d::text(rows[i].as_object(), "name") == d::text(b->as_object(), "name"))
        best_prefix = "proxy_" + d::text(rows[i].as_object(), "plot_slug") + "_";
  auto main_plot = [&](std::string const& name) {
    return name == proxies_plot_file_name ||
           (name.starts_with(best_prefix) &&
            (name.ends_with("_correlation_steps.svg") || name.ends_with("_scatter.svg")));
  };
  figures(design_search_dir, main_plot);

  // 4. The answer and its re-check.
  add(d::text_cell("h2", "4. The answer, and a re-check with new seeds"));
  if (auto const* b = s.if_contains("best"); b && b->is_object()) {
    auto const& bo = b->as_object();
    auto const& set = bo.at("settings").as_object();
    element table("table");
    table.add(d::header_row({"", "value"}));
    auto row = [&](std::string const& label, element value) {
      element tr("tr");
      tr.add(d::text_cell("td", label));
      tr.add(std::move(value));
      table.add(std::move(tr));
    };
    row("best proxy", d::text_cell("td", d::text(bo, "name")));
    row("trainer arguments", d::text_cell("td", d::args_text(set.at("trainer_args"))));
    row("stop at step", d::cell("td", set, "stop_at_step", "/best/settings", 0));
    row("stop at pct of its schedule", d::cell("td", set, "stop_at_pct", "/best/settings", 1));
    row("cost, x full training", d::cell("td", bo, "cost_ratio", "/best", 3));
    row("correlation at the stop", d::cell("td", bo, "correlation", "/best", 3));
    row("its CI low", d::cell("td", bo, "ci_low", "/best", 3));
    row("its CI high", d::cell("td", bo, "ci_high", "/best", 3));
    row("chance a re-measurement lands at or below the bar",
        d::cell("td", bo, "chance_below_desired", "/best", 3));
    if (auto const* r = s.if_contains("recheck"); r && r->is_object()) {
      auto const& ro = r->as_object();
      row("re-check seed", d::cell("td", ro, "seed", "/recheck", 0));
      row("re-check: step", d::cell("td", ro, "steps", "/recheck", 0));
      row("re-check: correlation", d::cell("td", ro, "correlation", "/recheck", 3));
      row("re-check: CI low", d::cell("td", ro, "ci_low", "/recheck", 3));
      row("re-check: CI high", d::cell("td", ro, "ci_high", "/recheck", 3));
    }
    add(table);
    add(d::paragraph(
        "The re-check trains the reference models again under the chosen proxy, with new seeds, "
        "to the same step. It is a measurement, not a pass condition: with " +
        std::to_string(models.size()) +
        " models the correlation's interval is wide, and a re-measurement lands at or below the "
        "bar in about " +
        d::fixed(100 * d::num(bo, "chance_below_desired"), 0) +
        "% of bootstrap resamples of the search's own measurement."));
  } else {
    add(d::paragraph("No proxy succeeded, so there is nothing to re-check."));
  }
  figures(design_recheck_dir, [](std::string const& name) {
    return name.ends_with("_correlation_steps.svg") || name.ends_with("_scatter.svg");
  });
  page += "</body>\n</html>\n";
  return page;
}

}  // namespace proxytask::workflow
