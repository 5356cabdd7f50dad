#pragma once
// Definitions of workflow/variance_report.hpp (included at its end).

#include <proxytask/report/plot.hpp>
#include <proxytask/stats/curve.hpp>
#include <proxytask/workflow/variance_report.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

namespace proxytask::workflow {

namespace detail::variance_report {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

/// "0.8123" style numbers for people (tooltips), as the other tools' plots write them.
inline std::string brief(double v) {
  if (!std::isfinite(v)) return "none";
  return report::format_fixed(v, std::abs(v) >= 100 ? 2 : 4);
}

/// `v` to 4 significant digits ("0.002147", "1.458").
inline std::string significant(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v);
  return text;
}

/// "<name> <value> (<verdict>[: <reason>])" from the result's members "<key>_value",
/// "<key>_verdict" and "<key>_reason". The value is variance_and_smoothness.json's, to 4
/// significant digits (a title people read; the file has every digit).
inline std::string measured_text(boost::json::object const& r, std::string_view name,
                                 std::string const& key) {
  std::string out(name);
  out += ' ';
  auto const* value = r.if_contains(key + "_value");
  if (value != nullptr && value->is_number() && std::isfinite(value->to_number<double>()))
    out += significant(value->to_number<double>());
  else
    out += "none";
  out += " (";
  if (auto const* verdict = r.if_contains(key + "_verdict"); verdict && verdict->is_string())
    out += verdict->get_string();
  if (auto const* reason = r.if_contains(key + "_reason"); reason && reason->is_string()) {
    out += ": ";
    out += reason->get_string();
  }
  return out + ")";
}

/// The title (see the file comment).
inline std::string title_of(variance_state const& s, variance_options const& o,
                            std::size_t finished) {
  if (!s.workable) {
    if (s.phase == measurement_phase::done)
      return "Variance measurement: no workable model in " + std::to_string(s.tries.size()) +
             " tries";
    if (s.tries.empty()) return "Variance measurement: looking for a workable model (no try yet)";
    return "Variance measurement: looking for a workable model (try " +
           std::to_string(s.tries.size()) + " of " + std::to_string(o.max_workable_tries) + ")";
  }
  std::string title = "Variance of " + s.tries[*s.workable].spec.model_id + ": " +
                      std::to_string(finished) + " of " + std::to_string(s.copies.size()) +
                      " copies";
  if (s.phase != measurement_phase::done) return title + " finished";
  // The function that makes variance_and_smoothness.json (variance_tool::result_of), so that
  // the numbers and verdicts are the file's.
  auto const result = measured_result(s, o).result;
  auto const& r = result.as_object();
  return title + "; " + measured_text(r, "CV", "variance") + ", " +
         measured_text(r, "smoothness", "smoothness");
}

}  // namespace detail::variance_report

inline std::string variance_curves_svg(variance_state const& s, variance_options const& o) {
  namespace dr = detail::variance_report;
  PROXYTASK_EXPECTS(!s.workable || *s.workable < s.tries.size(),
                    "variance_curves_svg: the workable try is not one of the state's tries");

  struct drawn_copy {
    std::size_t index;
    copy_attempt const* attempt;
    std::vector<double> pct, accuracy;
  };
  std::vector<drawn_copy> drawn;
  for (std::size_t c = 0; c < s.copies.size(); ++c) {
    auto const* a = s.copies[c].success();
    if (a == nullptr) continue;
    drawn_copy d{c, a, {}, {}};
    for (auto const& p : stats::normalise_curve(a->curve)) {
      d.pct.push_back(p.training_step_pct);
      d.accuracy.push_back(p.accuracy);
    }
    drawn.push_back(std::move(d));
  }

  std::string title = dr::title_of(s, o, drawn.size());
  // plot.hpp neither wraps nor shortens a title: widen the plot to fit a long one (about 9 px a
  // byte in bold 14 px sans-serif).
  int const width = static_cast<int>(std::clamp<std::size_t>(title.size() * 9 + 48, 960, 4000));
  report::plot p({.title = std::move(title),
                  .x = {.label = "training step (%)", .range = report::interval{0, 100}},
                  .y = {.label = "validation accuracy"},
                  .width = width,
                  .height = 480});
  // A copy keeps its colour from poll to poll, whichever copies finish first; black, the
  // palette's last colour, is left to the final-accuracy markers.
  for (auto const& d : drawn)
    p.line("copy " + std::to_string(d.index) + " (seed " + std::to_string(d.attempt->seed) + ")",
           d.pct, d.accuracy,
           {.color = std::string(report::palette_color(d.index % (report::okabe_ito.size() - 1)))});
  if (drawn.empty()) return p.to_svg();

  // The final accuracies at the lines' end: the spread the coefficient of variation measures.
  std::vector<double> x, y;
  std::vector<std::string> labels;
  for (auto const& d : drawn) {
    // A hand-built state may have a successful copy without a curve: no pct, so skipped.
    x.push_back(d.pct.empty() ? dr::nan : d.pct.back());
    y.push_back(d.attempt->final_accuracy);
    labels.push_back("copy " + std::to_string(d.index) + " (" + d.attempt->trial_id + ", seed " +
                     std::to_string(d.attempt->seed) + "): final accuracy " +
                     dr::brief(d.attempt->final_accuracy));
  }
  p.scatter("final accuracy (" + std::to_string(drawn.size()) + ")", x, y,
            {.color = "#000000", .shape = report::marker::diamond, .marker_size = 4.5},
            std::move(labels));
  return p.to_svg();
}

}  // namespace proxytask::workflow
