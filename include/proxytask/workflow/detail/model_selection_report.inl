#pragma once
// Definitions of workflow/model_selection_report.hpp (included at its end).

#include <proxytask/report/plot.hpp>
#include <proxytask/workflow/model_selection_report.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

namespace proxytask::workflow {

namespace detail::selection_report {

/// One fate's markers.
struct series_points {
  std::vector<double> x, y;
  std::vector<std::string> labels;
  std::size_t models = 0;
};

/// "0.8123" style numbers for people (tooltips): up to 4 significant digits after the point.
inline std::string brief(double v) {
  if (!std::isfinite(v)) return "none";
  return report::format_fixed(v, std::abs(v) >= 100 ? 2 : 4);
}

/// The tooltip of a model: trial, model, scores, and what became of it.
inline std::string label_of(selection_trial const& t, std::string_view fate) {
  std::string s = t.trial_id + " (" + t.spec.model_id + "): accuracy " + brief(t.accuracy) +
                  ", latency " + brief(t.latency) + "; " + std::string(fate);
  if (t.verdict == selection_verdict::invalid) {
    s += ": " + (t.reason ? std::string(to_string(*t.reason)) : std::string("invalid"));
    if (!t.message.empty()) s += ": " + t.message;
    if (t.replaced_by) s += " (replaced by " + *t.replaced_by + ")";
  }
  return s;
}

/// The series a trial belongs to: 0 kept, 1 reference, 2 trained (not pruned yet), 3 removed,
/// 4 invalid; none for a trial still running or awaiting its latency.
inline std::optional<std::size_t> series_of(selection_trial const& t) {
  switch (t.fate) {
    case selection_fate::kept: return 0;
    case selection_fate::reference: return 1;
    case selection_fate::removed: return 3;
    case selection_fate::invalid:
    case selection_fate::replaced: return 4;
    case selection_fate::pending: break;
  }
  if (t.verdict == selection_verdict::valid) return 2;
  if (t.verdict == selection_verdict::invalid) return 4;
  return std::nullopt;
}

inline std::string number_text(double v) {
  if (!std::isfinite(v)) return {};
  return report::format_number(v);
}

/// A JSON number (or null: "") as CSV text: integers as integers, doubles in the shortest text
/// that reads back as the same value.
inline std::string json_number_text(boost::json::value const* v) {
  if (v == nullptr || v->is_null()) return {};
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  if (v->is_double()) return number_text(v->get_double());
  if (v->is_string()) return std::string(v->get_string());
  return boost::json::serialize(*v);
}

inline std::string json_text(boost::json::object const& o, std::string_view key) {
  auto const* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_number()) return json_number_text(v);
  return boost::json::serialize(*v);
}

}  // namespace detail::selection_report

inline bool selection_plot_final(model_selection_state const& s, std::size_t iteration) {
  PROXYTASK_EXPECTS(iteration < s.iterations.size(),
                    "selection_plot_final: no such iteration in the state");
  return s.iterations[iteration].concluded || s.phase != selection_phase::training;
}

inline std::string selection_iteration_svg(model_selection_state const& s, std::size_t iteration) {
  namespace dr = detail::selection_report;
  PROXYTASK_EXPECTS(iteration < s.iterations.size(),
                    "selection_iteration_svg: no such iteration in the state");
  selection_round const& round = s.iterations[iteration];

  // x: the latency when any model of the iteration has one, else the accuracy rank among the
  // models with a finite accuracy (1 = best; ties by model index, so the plot is deterministic).
  bool const by_latency =
      std::any_of(round.trials.begin(), round.trials.end(),
                  [](selection_trial const& t) { return std::isfinite(t.latency); });
  std::vector<double> rank(round.trials.size(), std::numeric_limits<double>::quiet_NaN());
  if (!by_latency) {
    std::vector<std::size_t> order;
    for (std::size_t k = 0; k < round.trials.size(); ++k)
      if (std::isfinite(round.trials[k].accuracy)) order.push_back(k);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      auto const& ta = round.trials[a];
      auto const& tb = round.trials[b];
      if (ta.accuracy != tb.accuracy) return ta.accuracy > tb.accuracy;
      return ta.model_index < tb.model_index;
    });
    for (std::size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<double>(r + 1);
  }

  constexpr std::size_t kinds = 5;
  constexpr std::string_view names[kinds] = {"kept", "reference", "trained", "removed", "invalid"};
  std::array<dr::series_points, kinds> series;
  for (std::size_t k = 0; k < round.trials.size(); ++k) {
    auto const& t = round.trials[k];
    auto const which = dr::series_of(t);
    if (!which) continue;
    auto& p = series[*which];
    ++p.models;
    double const x = by_latency ? t.latency : rank[k];
    if (!std::isfinite(x) || !std::isfinite(t.accuracy)) {
      // plot.hpp skips it (data-skipped); keep the arrays aligned for it.
      p.x.push_back(std::numeric_limits<double>::quiet_NaN());
      p.y.push_back(std::numeric_limits<double>::quiet_NaN());
      p.labels.push_back({});
      continue;
    }
    p.x.push_back(x);
    p.y.push_back(t.accuracy);
    std::string_view const fate = t.fate == selection_fate::pending
                                      ? (t.verdict == selection_verdict::valid ? "trained, not "
                                                                                 "pruned yet"
                                                                               : "invalid")
                                      : to_string(t.fate);
    p.labels.push_back(dr::label_of(t, fate));
  }

  std::string const pct =
      round.last ? std::string("the end of training")
                 : report::format_fixed(round.desired_training_step_pct, 2) + "% of training";
  std::string title = "Iteration " + std::to_string(iteration) + (round.last ? " (last)" : "") +
                      ": " + std::to_string(round.num_trials) + " models, accuracy at " + pct;
  if (round.concluded && !round.last) {
    auto const replaced = static_cast<std::size_t>(
        std::count_if(round.trials.begin(), round.trials.end(),
                      [](selection_trial const& t) { return t.fate == selection_fate::replaced; }));
    title += ": kept " + std::to_string(round.trials_to_retrain.size()) + ", removed " +
             std::to_string(round.removed_trials.size()) + ", invalid " +
             std::to_string(round.invalid_trials.size() + replaced);
    if (replaced > 0) title += " (" + std::to_string(replaced) + " replaced)";
  }
  report::plot p({.title = std::move(title),
                  .x = {.label = by_latency ? (s.latency_metric_id.empty() ? std::string("latency")
                                                                           : s.latency_metric_id)
                                            : std::string("accuracy rank (1 = best)")},
                  .y = {.label = (s.accuracy_metric_id.empty() ? std::string("accuracy")
                                                               : s.accuracy_metric_id) +
                                 " at " + pct},
                  .width = 720,
                  .height = 440});
  report::style const looks[kinds] = {
      {.color = "#009E73", .shape = report::marker::circle},                  // kept
      {.color = "#0072B2", .shape = report::marker::diamond},                 // reference
      {.color = "#56B4E9", .shape = report::marker::circle},                  // trained
      {.color = "#D55E00", .shape = report::marker::circle, .hollow = true},  // removed
      {.color = "#000000", .shape = report::marker::cross},                   // invalid
  };
  for (std::size_t k = 0; k < kinds; ++k) {
    auto& sp = series[k];
    if (sp.models == 0) continue;
    std::size_t const drawn = static_cast<std::size_t>(
        std::count_if(sp.y.begin(), sp.y.end(), [](double v) { return std::isfinite(v); }));
    std::string name = std::string(names[k]) + " (" + std::to_string(sp.models);
    if (drawn < sp.models) name += ", " + std::to_string(sp.models - drawn) + " without a score";
    name += ")";
    p.scatter(std::move(name), sp.x, sp.y, looks[k], std::move(sp.labels));
  }
  return p.to_svg();
}

inline void append_csv_field(std::string& out, std::string_view field) {
  bool const quote = field.find_first_of(",\"\r\n") != std::string_view::npos ||
                     (!field.empty() && (field.front() == ' ' || field.front() == '\t' ||
                                         field.back() == ' ' || field.back() == '\t'));
  if (!quote) {
    out += field;
    return;
  }
  out += '"';
  for (char const c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

inline std::string reference_models_csv(boost::json::object const& result) {
  namespace dr = detail::selection_report;
  std::string out;
  bool first = true;
  for (auto const column : reference_models_csv_columns) {
    if (!first) out += ',';
    first = false;
    out += column;
  }
  out += '\n';
  auto const* refs = result.if_contains("reference_models");
  if (refs == nullptr || !refs->is_array()) return out;
  for (auto const& entry : refs->get_array()) {
    auto const* o = entry.if_object();
    if (o == nullptr) continue;
    first = true;
    for (auto const column : reference_models_csv_columns) {
      if (!first) out += ',';
      first = false;
      std::string field;
      if (column == "spec") {
        if (auto const* spec = o->if_contains("spec")) field = boost::json::serialize(*spec);
      } else {
        field = dr::json_text(*o, column);
      }
      append_csv_field(out, field);
    }
    out += '\n';
  }
  return out;
}

inline std::vector<std::string> discarded_trials(model_selection_state const& s,
                                                 observation const& obs) {
  std::vector<std::string> out;
  for (auto const& round : s.iterations) {
    // Fates are final once the iteration is concluded (a replaced trial's is set earlier, but
    // an aborted first iteration never concludes, and its failures are kept for inspection).
    if (!round.concluded) continue;
    for (auto const& t : round.trials) {
      if (t.fate != selection_fate::removed && t.fate != selection_fate::invalid &&
          t.fate != selection_fate::replaced)
        continue;
      // Only a trial known to have ended: its trainer no longer writes its checkpoint.
      if (auto const* status = obs.find(t.trial_id); status && is_terminal(status->phase))
        out.push_back(t.trial_id);
    }
  }
  return out;
}

}  // namespace proxytask::workflow
