// workflow/variance_report.hpp: the variance measurement's plot (well-formed SVG, each
// successful copy's curve and final accuracy exactly as the state holds them, failed and running
// copies absent, the title's numbers and verdicts those of variance_and_smoothness.json, and a
// valid plot without NaN for every degenerate state).

#include <proxytask/workflow/variance_report.hpp>

#include <proxytask/stats/curve.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "report/plot_data.hpp"
#include "report/xml_check.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::stats::curve_point;
using pt::testing::parse_xml;
using pt::testing::plot_number;
using pt::testing::series_by_name;
using pt::testing::series_data;
using pt::testing::series_tooltips;
using pt::testing::xml_node;
using wf::attempt_outcome;
using wf::measurement_phase;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

pt::protocol::model_spec sample(std::uint64_t seed) {
  return {"model-" + std::to_string(seed), boost::json::object{{"seed", seed}}};
}

wf::variance_tool make_tool(wf::variance_options const& o = {}) {
  return wf::variance_tool(sample, o);
}

/// A curve of `n` points ending at 100% with the final accuracy `final_acc`, rising smoothly.
std::vector<curve_point> rising(double final_acc, int n = 10) {
  std::vector<curve_point> c;
  for (int i = 1; i <= n; ++i)
    c.push_back({100.0 * i / n, i * 10 - 1,
                 final_acc * (1 - std::exp(-3.0 * i / n)) / (1 - std::exp(-3.0))});
  return c;
}

/// A curve that zigzags: every other point drops.
std::vector<curve_point> zigzag(double final_acc) {
  std::vector<curve_point> c;
  for (int i = 1; i <= 20; ++i)
    c.push_back({5.0 * i, i * 10 - 1, final_acc * (i % 2 == 0 ? 1.0 : 0.6)});
  return c;
}

wf::copy_attempt succeeded(std::string id, std::uint64_t seed, std::vector<curve_point> curve) {
  wf::copy_attempt a;
  a.trial_id = std::move(id);
  a.seed = seed;
  a.outcome = attempt_outcome::succeeded;
  a.final_accuracy = pt::stats::final_accuracy(curve).value_or(nan);
  a.curve = std::move(curve);
  return a;
}

wf::copy_attempt failed(std::string id, std::uint64_t seed) {
  wf::copy_attempt a;
  a.trial_id = std::move(id);
  a.seed = seed;
  a.outcome = attempt_outcome::failed;
  a.failure = pt::protocol::failure_kind::oom;
  a.message = "out of memory";
  return a;
}

wf::copy_attempt running(std::string id, std::uint64_t seed) {
  wf::copy_attempt a;
  a.trial_id = std::move(id);
  a.seed = seed;
  return a;
}

/// A done measurement of model-42 (the second try): copy 0 succeeded, copy 1 failed twice (left
/// out), copy 2 succeeded on its retry with a zigzag curve, copy 3 succeeded with 8 points.
wf::variance_state measured_state() {
  wf::variance_state s;
  s.phase = measurement_phase::done;
  wf::workable_try t0;
  t0.trial_id = "workable-0";
  t0.seed = 7;
  t0.spec = sample(7);
  t0.outcome = attempt_outcome::failed;
  t0.message = "diverged";
  wf::workable_try t1;
  t1.trial_id = "workable-1";
  t1.seed = 42;
  t1.spec = sample(42);
  t1.outcome = attempt_outcome::succeeded;
  t1.accuracy = 0.1;
  s.tries = {t0, t1};
  s.workable = 1;
  s.copies.resize(4);
  s.copies[0].attempts = {succeeded("copy-0", 101, rising(0.81))};
  s.copies[1].attempts = {failed("copy-1", 202), failed("copy-1-retry", 203)};
  s.copies[2].attempts = {failed("copy-2", 303), succeeded("copy-2-retry", 304, zigzag(0.79))};
  s.copies[3].attempts = {succeeded("copy-3", 404, rising(0.835, 8))};
  s.workable_model_dir = "trials/workable-1";
  s.training_job_name = "variance_measurement";
  s.finished_model_dirs = {"trials/copy-0", "trials/copy-2-retry", "trials/copy-3"};
  return s;
}

/// The parsed SVG (fails the test when it is malformed, or holds NaN or infinity).
xml_node parsed(std::string const& svg) {
  auto doc = parse_xml(svg);
  EXPECT_TRUE(doc) << doc.error << " at " << doc.offset;
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("NaN"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  return doc.root;
}

using rows = std::vector<std::vector<double>>;

/// The visible title of a plot.
std::string title_of(xml_node const& root) {
  auto const titles = root.find_by_attr("class", "title");
  if (titles.size() != 1) {
    ADD_FAILURE() << titles.size() << " titles";
    return {};
  }
  return titles.front()->all_text();
}

/// The (pct, accuracy) rows of a curve whose points are all finite.
rows rows_of(std::vector<curve_point> const& curve) {
  rows out;
  for (auto const& p : curve) out.push_back({p.training_step_pct, p.accuracy});
  return out;
}

/// The number after `label` in `title` (up to the next space).
double number_after(std::string const& title, std::string_view label) {
  auto const at = title.find(label);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no \"" << label << "\" in: " << title;
    return nan;
  }
  auto const start = at + label.size();
  auto const end = title.find(' ', start);
  return plot_number(std::string_view(title).substr(start, end - start));
}

TEST(VarianceCurvesPlot, DrawsEachSuccessfulCopysCurveExactly) {
  auto const s = measured_state();
  auto const svg = wf::variance_curves_svg(s);
  auto const root = parsed(svg);
  EXPECT_EQ(wf::variance_curves_svg(s), svg) << "the same bytes for the same state";
  auto const series = series_by_name(root);
  ASSERT_EQ(series.size(), 4u);
  std::map<std::string, std::vector<curve_point> const*> const expected = {
      {"copy 0 (seed 101)", &s.copies[0].attempts[0].curve},
      {"copy 2 (seed 304)", &s.copies[2].attempts[1].curve},
      {"copy 3 (seed 404)", &s.copies[3].attempts[0].curve}};
  for (auto const& [name, curve] : expected) {
    ASSERT_TRUE(series.count(name)) << name;
    auto const& g = *series.at(name);
    EXPECT_EQ(g.attr("data-kind"), "line") << name;
    EXPECT_EQ(g.attr("data-skipped"), "0") << name;
    EXPECT_EQ(series_data(g), rows_of(*curve)) << name;
  }
  // The copy that failed twice has no line (and no marker).
  for (auto const& [name, g] : series) EXPECT_EQ(name.find("copy 1"), std::string::npos) << name;
  // The x axis is the training pct, 0 to 100.
  auto const axes = root.find_by_attr("class", "axis");
  ASSERT_EQ(axes.size(), 2u);
  for (auto const* a : axes) {
    if (a->attr("data-axis") != "x") continue;
    EXPECT_EQ(plot_number(a->attr("data-min").value()), 0.0);
    EXPECT_EQ(plot_number(a->attr("data-max").value()), 100.0);
  }
}

TEST(VarianceCurvesPlot, TheFinalAccuracyScatterIsEachCopysFinalAccuracyAtItsLastPct) {
  auto const s = measured_state();
  auto const root = parsed(wf::variance_curves_svg(s));
  auto const series = series_by_name(root);
  ASSERT_TRUE(series.count("final accuracy (3)"));
  auto const& g = *series.at("final accuracy (3)");
  EXPECT_EQ(g.attr("data-kind"), "scatter");
  EXPECT_EQ(series_data(g), (rows{{100.0, s.copies[0].attempts[0].final_accuracy},
                                  {100.0, s.copies[2].attempts[1].final_accuracy},
                                  {100.0, s.copies[3].attempts[0].final_accuracy}}));
  auto const tips = series_tooltips(g);
  ASSERT_EQ(tips.size(), 3u);
  EXPECT_NE(tips[1].find("copy 2 (copy-2-retry, seed 304): final accuracy 0.79"), std::string::npos)
      << tips[1];
}

TEST(VarianceCurvesPlot, TheTitleGivesTheResultsCoefficientOfVariationAndSmoothness) {
  auto const s = measured_state();
  wf::variance_options o;
  o.bootstrap_resamples = 100;
  auto const result = make_tool(o).result_of(s).result.as_object();
  ASSERT_EQ(result.at("status").as_string(), "measured");
  auto const title = title_of(parsed(wf::variance_curves_svg(s, o)));
  EXPECT_EQ(title.rfind("Variance of model-42: 3 of 4 copies; ", 0), 0u) << title;
  // The result's values to the 4 significant digits the title shows.
  auto const cv = result.at("variance_value").as_double();
  auto const smoothness = result.at("smoothness_value").as_double();
  EXPECT_NEAR(number_after(title, "CV "), cv, 5e-4 * std::abs(cv)) << title;
  EXPECT_NEAR(number_after(title, "smoothness "), smoothness, 5e-4 * std::abs(smoothness)) << title;
  std::string const variance_verdict(result.at("variance_verdict").as_string());
  std::string const smoothness_verdict(result.at("smoothness_verdict").as_string());
  EXPECT_NE(title.find(" (" + variance_verdict + "), smoothness "), std::string::npos) << title;
  EXPECT_NE(title.find(" (" + smoothness_verdict + ")"), std::string::npos) << title;
  // The zigzag copy makes the smoothness too high; the final accuracies are close.
  EXPECT_EQ(variance_verdict, "good");
  EXPECT_EQ(smoothness_verdict, "too_high");
  // The bootstrap settings change no number of the title.
  EXPECT_EQ(wf::variance_curves_svg(s, o), wf::variance_curves_svg(s));
}

TEST(VarianceCurvesPlot, AnUndefinedVerdictNamesItsReason) {
  auto s = measured_state();
  s.copies[2].attempts.back() = failed("copy-2-retry", 304);
  s.copies[3].attempts = {failed("copy-3", 404), failed("copy-3-retry", 405)};
  auto const result = make_tool().result_of(s).result.as_object();
  ASSERT_EQ(result.at("status").as_string(), "too_few_copies");
  auto const root = parsed(wf::variance_curves_svg(s));
  auto const title = title_of(root);
  EXPECT_NE(title.find("1 of 4 copies; CV none (undefined: too_few_copies), smoothness "),
            std::string::npos)
      << title;
  EXPECT_NEAR(number_after(title, "smoothness "), result.at("smoothness_value").as_double(),
              5e-4 * std::abs(result.at("smoothness_value").as_double()))
      << title;
  EXPECT_NE(title.find("(" + std::string(result.at("smoothness_verdict").as_string()) + ")"),
            std::string::npos)
      << title;
  auto const series = series_by_name(root);
  EXPECT_EQ(series.size(), 2u);
  EXPECT_TRUE(series.count("copy 0 (seed 101)"));
  EXPECT_TRUE(series.count("final accuracy (1)"));
}

TEST(VarianceCurvesPlot, DrawsARecordedCurveInPctOrderAsTheToolReadsIt) {
  auto s = measured_state();
  // Out of order, with a re-evaluation at 50% (the later value counts) and a NaN point (a gap).
  std::vector<curve_point> curve = {
      {50, 49, 0.5}, {25, 24, 0.3}, {50, 49, 0.55}, {75, 74, nan}, {100, 99, 0.8}};
  s.copies[0].attempts[0] = succeeded("copy-0", 101, curve);
  auto const root = parsed(wf::variance_curves_svg(s));
  auto const& g = *series_by_name(root).at("copy 0 (seed 101)");
  EXPECT_EQ(series_data(g), (rows{{25, 0.3}, {50, 0.55}, {100, 0.8}}));
  EXPECT_EQ(g.attr("data-skipped"), "1");
  // Copy 0: a piece from 25% to 50%, then a lone point at 100%; copies 2 and 3: one piece each.
  EXPECT_EQ(g.find_by_attr("class", "line-piece").size(), 1u);
  EXPECT_EQ(g.find_by_attr("class", "lone-point").size(), 1u);
}

TEST(VarianceCurvesPlot, DegenerateStatesGiveAValidPlot) {
  wf::variance_options o;
  o.max_workable_tries = 4;

  // Nothing yet.
  wf::variance_state s;
  auto root = parsed(wf::variance_curves_svg(s, o));
  EXPECT_EQ(title_of(root), "Variance measurement: looking for a workable model (no try yet)");
  EXPECT_TRUE(series_by_name(root).empty());

  // A try running.
  wf::workable_try t;
  t.trial_id = "workable-0";
  t.seed = 9;
  t.spec = sample(9);
  s.tries = {t};
  root = parsed(wf::variance_curves_svg(s, o));
  EXPECT_EQ(title_of(root), "Variance measurement: looking for a workable model (try 1 of 4)");

  // No workable model.
  s.tries[0].outcome = attempt_outcome::failed;
  s.phase = measurement_phase::done;
  root = parsed(wf::variance_curves_svg(s, o));
  EXPECT_EQ(title_of(root), "Variance measurement: no workable model in 1 tries");
  EXPECT_TRUE(series_by_name(root).empty());

  // Copies running, one failed, one retrying.
  s.tries[0].outcome = attempt_outcome::succeeded;
  s.tries[0].accuracy = 0.1;
  s.workable = 0;
  s.phase = measurement_phase::measure;
  s.copies.resize(3);
  s.copies[0].attempts = {running("copy-0", 1)};
  s.copies[1].attempts = {failed("copy-1", 2), failed("copy-1-retry", 3)};
  s.copies[2].attempts = {failed("copy-2", 4), running("copy-2-retry", 5)};
  root = parsed(wf::variance_curves_svg(s, o));
  EXPECT_EQ(title_of(root), "Variance of model-9: 0 of 3 copies finished");
  EXPECT_TRUE(series_by_name(root).empty());

  // One finished, while the others run.
  s.copies[0].attempts = {succeeded("copy-0", 1, rising(0.7))};
  root = parsed(wf::variance_curves_svg(s, o));
  EXPECT_EQ(title_of(root), "Variance of model-9: 1 of 3 copies finished");
  EXPECT_EQ(series_by_name(root).size(), 2u);

  // Done with every copy failed: no curve, no variance, no smoothness.
  s.copies[0].attempts = {failed("copy-0", 1), failed("copy-0-retry", 6)};
  s.copies[2].attempts.back() = failed("copy-2-retry", 5);
  s.phase = measurement_phase::done;
  root = parsed(wf::variance_curves_svg(s, o));
  EXPECT_EQ(title_of(root),
            "Variance of model-9: 0 of 3 copies; CV none (undefined: too_few_copies), smoothness "
            "none (undefined: too_few_copies)");
  EXPECT_TRUE(series_by_name(root).empty());

  // Done with no copy at all (a hand-built state) and with a successful copy without a curve.
  s.copies.clear();
  parsed(wf::variance_curves_svg(s, o));
  s.copies.resize(1);
  auto bare = succeeded("copy-0", 1, {});
  bare.final_accuracy = 0.5;
  s.copies[0].attempts = {bare};
  root = parsed(wf::variance_curves_svg(s, o));
  auto const series = series_by_name(root);
  ASSERT_TRUE(series.count("final accuracy (1)"));
  EXPECT_EQ(series.at("final accuracy (1)")->attr("data-skipped"), "1");
}

TEST(VarianceCurvesPlot, RefusesAWorkableIndexOutsideTheTries) {
  auto s = measured_state();
  s.workable = 2;
  EXPECT_THROW((void)wf::variance_curves_svg(s), pt::logic_error);
}

}  // namespace
