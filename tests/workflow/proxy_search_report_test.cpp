// workflow/proxy_search_report.hpp: the proxy-task search's plots (the file list and its order,
// file-name slugs, well-formed SVG, every drawn number taken from the state, NaN steps as gaps,
// data-skipped counts, the threshold and stop lines, the best proxy's series).

#include <proxytask/workflow/proxy_search_report.hpp>

#include <proxytask/workflow/proxy_search.hpp>

#include <gtest/gtest.h>

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
using pt::testing::parse_xml;
using pt::testing::plot_number;
using pt::testing::series_by_name;
using pt::testing::series_data;
using pt::testing::series_tooltips;
using pt::testing::xml_node;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

/// Five reference models; m0 and m2 have a latency.
wf::proxy_search_options options() {
  wf::proxy_search_options o;
  double const accuracy[] = {0.90, 0.85, 0.80, 0.75, 0.70};
  for (std::size_t m = 0; m < 5; ++m) {
    wf::reference_model r;
    r.model_id = "m" + std::to_string(m);
    r.spec = {r.model_id, boost::json::object{}};
    r.accuracy = accuracy[m];
    o.reference_models.push_back(r);
  }
  o.reference_models[0].latency = 1.5;
  o.reference_models[2].latency = 2.5;
  o.confidence_level = 0.9;
  o.desired_accuracy = 0.6;
  return o;
}

/// Three proxies: "a/b c" done (met the correlation at its third step, with a CI; the best),
/// "a_b_c" failed with NaN gaps and no stop step (its sanitized name collides with the first's),
/// "plain-name.v2" pending with no step.
wf::proxy_search_state state() {
  wf::proxy_search_state s;
  s.method = pt::stats::correlation::kendall_tau_b;
  s.desired_correlation = 0.65;

  wf::proxy_task_entry a;
  a.name = "a/b c";
  a.phase = wf::proxy_phase::done;
  auto& sa = a.stats;
  sa.training_steps = {100, 200, 300, 400};
  sa.training_step_pct = {25, 50, 75, 100};
  sa.accuracy_correlation_over_step = {0.2, 0.5, 0.7, 0.8};
  sa.accuracy_correlation_p_value_over_step = {0.5, 0.2, 0.05, 0.01};
  sa.kendall_over_step = sa.accuracy_correlation_over_step;
  sa.spearman_over_step = {0.3, 0.6, 0.8, 0.9};
  sa.ci_low_over_step = {0.1, 0.3, 0.55, 0.6};
  sa.ci_high_over_step = {0.35, 0.7, 0.85, 0.95};
  sa.valid_pairs_over_step = {5, 5, 5, 5};
  sa.median_accuracy_over_step = {0.4, 0.5, 0.6, 0.65};
  sa.median_training_time_hrs_over_step = {0.5, 1.0, 1.5, 2.0};
  sa.state = wf::stopping_state::met_desired_accuracy_correlation;
  sa.stop_rule = "correlation";
  sa.stop_step_index = 2;
  sa.final_training_time_in_hours = 1.4;
  sa.final_training_steps = 280;
  sa.accuracy_at_stop = {0.61, nan, 0.55, 0.52, 0.4};

  wf::proxy_task_entry b;
  b.name = "a_b_c";
  b.phase = wf::proxy_phase::done;
  auto& sb = b.stats;
  sb.training_steps = {100, 200, 300};
  sb.training_step_pct = {25, 50, 75};
  sb.accuracy_correlation_over_step = {0.1, nan, 0.3};
  sb.accuracy_correlation_p_value_over_step = {0.6, nan, 0.4};
  sb.kendall_over_step = sb.accuracy_correlation_over_step;
  sb.spearman_over_step = {0.15, nan, 0.35};
  sb.ci_low_over_step = {nan, nan, nan};
  sb.ci_high_over_step = {nan, nan, nan};
  sb.valid_pairs_over_step = {5, 1, 5};
  sb.median_accuracy_over_step = {0.3, nan, 0.4};
  sb.median_training_time_hrs_over_step = {0.4, nan, 1.2};
  sb.state = wf::stopping_state::excess_trial_failures;
  sb.stop_rule = "failed_trials";
  // As the tool leaves it: scores at the last step, but no stop step (so no scatter).
  sb.accuracy_at_stop = {0.3, 0.2, nan, 0.1, 0.25};

  wf::proxy_task_entry c;
  c.name = "plain-name.v2";

  s.proxy_tasks = {a, b, c};
  s.best_proxy_task_name = "a/b c";
  return s;
}

/// The parsed file `name` of `files` (fails the test when it is missing or malformed).
xml_node svg_of(std::vector<wf::plot_file> const& files, std::string_view name) {
  for (auto const& f : files) {
    if (f.name != name) continue;
    auto doc = parse_xml(f.svg);
    EXPECT_TRUE(doc) << name << ": " << doc.error << " at " << doc.offset;
    return doc.root;
  }
  ADD_FAILURE() << "no file " << name;
  return {};
}

/// The reference lines of a plot along `axis` ("x": vertical, "y": horizontal): their values.
std::vector<double> references(xml_node const& root, std::string_view axis) {
  std::vector<double> out;
  for (auto const* g : root.find_by_attr("class", "reference"))
    if (g->attr("data-axis") == axis) out.push_back(plot_number(g->attr("data-value").value()));
  return out;
}

using rows = std::vector<std::vector<double>>;

/// The rows (x[i], y[i]) where both are finite: what a line of x against y draws.
rows finite_pairs(std::vector<double> const& x, std::vector<double> const& y) {
  rows out;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) out.push_back({x[i], y[i]});
  return out;
}

std::vector<double> steps_of(wf::proxy_task_entry const& p) {
  return {p.stats.training_steps.begin(), p.stats.training_steps.end()};
}

TEST(ProxySearchPlots, ListsEachProxysFilesInStateOrderThenTheProxiesPlot) {
  auto const files = wf::proxy_search_plots(state(), options());
  std::vector<std::string> names;
  for (auto const& f : files) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "proxy_a_b_c-0_correlation_steps.svg",
                       "proxy_a_b_c-0_correlation_time.svg",
                       "proxy_a_b_c-0_median_accuracy.svg",
                       "proxy_a_b_c-0_scatter.svg",
                       "proxy_a_b_c-0_latency.svg",
                       "proxy_a_b_c-1_correlation_steps.svg",
                       "proxy_a_b_c-1_correlation_time.svg",
                       "proxy_a_b_c-1_median_accuracy.svg",
                       "proxies.svg",
                   }));
  for (auto const& f : files) {
    auto const doc = parse_xml(f.svg);
    EXPECT_TRUE(doc) << f.name << ": " << doc.error << " at " << doc.offset;
    // NaN is never written (plot.hpp promises it; the titles and tooltips say "none").
    EXPECT_EQ(f.svg.find("nan"), std::string::npos) << f.name;
    EXPECT_EQ(f.svg.find("inf"), std::string::npos) << f.name;
  }
  // Pure: the same state gives the same bytes.
  auto const again = wf::proxy_search_plots(state(), options());
  ASSERT_EQ(again.size(), files.size());
  for (std::size_t i = 0; i < files.size(); ++i) EXPECT_EQ(again[i].svg, files[i].svg);
}

TEST(ProxySearchPlots, CorrelationOverStepsDrawsTheStatesNumbersWithCiThresholdAndStop) {
  auto const s = state();
  auto const& st = s.proxy_tasks[0].stats;
  auto const root =
      svg_of(wf::proxy_search_plots(s, options()), "proxy_a_b_c-0_correlation_steps.svg");
  // The title names the proxy, its stopping state and its stop rule.
  EXPECT_EQ(root.find_all("title").front()->all_text(),
            "Proxy \"a/b c\": Met desired correlation (stop rule: correlation)");
  auto const series = series_by_name(root);
  ASSERT_EQ(series.size(), 3u);
  auto const steps = steps_of(s.proxy_tasks[0]);
  auto const& deciding = *series.at("kendall (deciding)");
  EXPECT_EQ(deciding.attr("data-kind"), "line");
  EXPECT_EQ(series_data(deciding), finite_pairs(steps, st.accuracy_correlation_over_step));
  EXPECT_EQ(deciding.attr("data-skipped"), "0");
  EXPECT_EQ(series_data(*series.at("spearman")), finite_pairs(steps, st.spearman_over_step));
  auto const& band = *series.at("kendall 90% CI");
  EXPECT_EQ(band.attr("data-kind"), "band");
  rows ci;
  for (std::size_t i = 0; i < steps.size(); ++i)
    ci.push_back({steps[i], st.ci_low_over_step[i], st.ci_high_over_step[i]});
  EXPECT_EQ(series_data(band), ci);
  // The threshold (horizontal, labelled) and the stop step (vertical, at step 300).
  EXPECT_EQ(references(root, "y"), std::vector<double>{0.65});
  EXPECT_NE(root.all_text().find("threshold 0.65"), std::string::npos);
  EXPECT_EQ(references(root, "x"), std::vector<double>{300});
  EXPECT_NE(root.all_text().find("stop at step 300"), std::string::npos);
  // Correlations share a fixed [-1, 1] axis.
  auto const axis = root.find_by_attr("data-axis", "y");
  ASSERT_FALSE(axis.empty());
  EXPECT_EQ(axis.front()->attr("data-min"), "-1");
  EXPECT_EQ(axis.front()->attr("data-max"), "1");
}

TEST(ProxySearchPlots, CorrelationOverTimeUsesTheMedianTrainingHours) {
  auto const s = state();
  auto const& st = s.proxy_tasks[0].stats;
  auto const root =
      svg_of(wf::proxy_search_plots(s, options()), "proxy_a_b_c-0_correlation_time.svg");
  auto const series = series_by_name(root);
  auto const& hours = st.median_training_time_hrs_over_step;
  EXPECT_EQ(series_data(*series.at("kendall (deciding)")),
            finite_pairs(hours, st.accuracy_correlation_over_step));
  EXPECT_EQ(series_data(*series.at("spearman")), finite_pairs(hours, st.spearman_over_step));
  EXPECT_EQ(references(root, "y"), std::vector<double>{0.65});
  EXPECT_EQ(references(root, "x"), std::vector<double>{1.5});  // the stop step's hours
  EXPECT_NE(root.all_text().find("median trial's training time (hours)"), std::string::npos);
}

TEST(ProxySearchPlots, NanStepsAreGapsAndAProxyWithoutStopHasNoStopLineNorScatter) {
  auto const s = state();
  auto const& p = s.proxy_tasks[1];
  auto const files = wf::proxy_search_plots(s, options());
  auto const steps = steps_of(p);

  auto const root = svg_of(files, "proxy_a_b_c-1_correlation_steps.svg");
  EXPECT_EQ(root.find_all("title").front()->all_text(),
            "Proxy \"a_b_c\": Excess trial failures (stop rule: failed_trials)");
  auto const series = series_by_name(root);
  // No CI at any step: no band.
  ASSERT_EQ(series.size(), 2u);
  auto const& deciding = *series.at("kendall (deciding)");
  // Steps 100 and 300 only, as two separate lone points: the NaN at step 200 is a gap, not 0.
  EXPECT_EQ(series_data(deciding), (rows{{100, 0.1}, {300, 0.3}}));
  EXPECT_EQ(deciding.find_by_attr("class", "lone-point").size(), 2u);
  EXPECT_TRUE(deciding.find_by_attr("class", "line-piece").empty());
  EXPECT_EQ(deciding.attr("data-skipped"), "1");
  EXPECT_EQ(series_data(*series.at("spearman")), (rows{{100, 0.15}, {300, 0.35}}));
  EXPECT_EQ(references(root, "y"), std::vector<double>{0.65});
  EXPECT_TRUE(references(root, "x").empty()) << "no stop step";

  auto const time_root = svg_of(files, "proxy_a_b_c-1_correlation_time.svg");
  auto const time = series_by_name(time_root);  // pointers into time_root: it must outlive them
  EXPECT_EQ(series_data(*time.at("kendall (deciding)")), (rows{{0.4, 0.1}, {1.2, 0.3}}));
  EXPECT_EQ(time.at("kendall (deciding)")->attr("data-skipped"), "1");

  auto const accuracy = svg_of(files, "proxy_a_b_c-1_median_accuracy.svg");
  auto const& median = *series_by_name(accuracy).at("median accuracy");
  EXPECT_EQ(series_data(median), finite_pairs(steps, p.stats.median_accuracy_over_step));
  EXPECT_EQ(median.attr("data-skipped"), "1");
  EXPECT_EQ(references(accuracy, "y"), std::vector<double>{0.6}) << "options.desired_accuracy";
  EXPECT_TRUE(references(accuracy, "x").empty());

  for (auto const& f : files) {
    EXPECT_NE(f.name, "proxy_a_b_c-1_scatter.svg");
    EXPECT_NE(f.name, "proxy_a_b_c-1_latency.svg");
  }
}

TEST(ProxySearchPlots, MedianAccuracyOverStepsMarksTheStopAndTheDesiredAccuracy) {
  auto const s = state();
  auto const root =
      svg_of(wf::proxy_search_plots(s, options()), "proxy_a_b_c-0_median_accuracy.svg");
  auto const& median = *series_by_name(root).at("median accuracy");
  EXPECT_EQ(series_data(median), finite_pairs(steps_of(s.proxy_tasks[0]),
                                              s.proxy_tasks[0].stats.median_accuracy_over_step));
  EXPECT_EQ(references(root, "x"), std::vector<double>{300});
  EXPECT_EQ(references(root, "y"), std::vector<double>{0.6});
  EXPECT_NE(root.all_text().find("desired accuracy 0.6"), std::string::npos);
  // Without the median accuracy rule, no such line.
  auto o = options();
  o.desired_accuracy.reset();
  EXPECT_TRUE(
      references(svg_of(wf::proxy_search_plots(s, o), "proxy_a_b_c-0_median_accuracy.svg"), "y")
          .empty());
}

TEST(ProxySearchPlots, ScatterPlotsEachModelsProxyScoreAgainstItsFullTrainingScore) {
  auto const root = svg_of(wf::proxy_search_plots(state(), options()), "proxy_a_b_c-0_scatter.svg");
  auto const series = series_by_name(root);
  ASSERT_EQ(series.size(), 1u);
  auto const& models = *series.at("reference models (5, 1 without a score)");
  EXPECT_EQ(models.attr("data-kind"), "scatter");
  EXPECT_EQ(models.attr("data-skipped"), "1");  // m1: no score at the stop step
  EXPECT_EQ(series_data(models), (rows{{0.61, 0.90}, {0.55, 0.80}, {0.52, 0.75}, {0.4, 0.70}}));
  auto const titles = series_tooltips(models);
  ASSERT_EQ(titles.size(), 4u);
  EXPECT_EQ(titles[0], "m0: proxy score 0.61, full-training score 0.9");
  EXPECT_EQ(titles[1], "m2: proxy score 0.55, full-training score 0.8");
  EXPECT_NE(root.all_text().find("score under the proxy at step 300 (75% of training)"),
            std::string::npos);
}

TEST(ProxySearchPlots, LatencyPlotsTheModelsThatHaveALatency) {
  auto const files = wf::proxy_search_plots(state(), options());
  auto const root = svg_of(files, "proxy_a_b_c-0_latency.svg");
  auto const& models = *series_by_name(root).at("reference models (5, 3 without a score)");
  EXPECT_EQ(models.attr("data-skipped"), "3");
  EXPECT_EQ(series_data(models), (rows{{0.61, 1.5}, {0.55, 2.5}}));
  auto const titles = series_tooltips(models);
  ASSERT_EQ(titles.size(), 2u);
  EXPECT_EQ(titles[1], "m2: proxy score 0.55, latency 2.5");
  // No model with a latency: no latency file.
  auto o = options();
  for (auto& r : o.reference_models) r.latency.reset();
  for (auto const& f : wf::proxy_search_plots(state(), o))
    EXPECT_NE(f.name, "proxy_a_b_c-0_latency.svg");
}

TEST(ProxySearchPlots, ProxiesPlotShowsTheBestSuccessfulAndFailedProxies) {
  auto s = state();
  auto root = svg_of(wf::proxy_search_plots(s, options()), "proxies.svg");
  auto series = series_by_name(root);
  ASSERT_EQ(series.size(), 2u);
  // The best: its final time against its deciding correlation at the stop step (0.7, step 300).
  auto const& best = *series.at("best: a/b c");
  EXPECT_EQ(series_data(best), (rows{{1.4, 0.7}}));
  ASSERT_EQ(series_tooltips(best).size(), 1u);
  EXPECT_NE(series_tooltips(best)[0].find("a/b c: Met desired correlation"), std::string::npos);
  // The failed one has neither a final time nor a stop step: skipped and counted.
  auto const& failed = *series.at("failed (1, 1 without a time or stop step)");
  EXPECT_EQ(failed.attr("data-skipped"), "1");
  EXPECT_TRUE(series_data(failed).empty());
  EXPECT_EQ(references(root, "y"), std::vector<double>{0.65});
  EXPECT_NE(root.all_text().find("Proxy tasks: 2 of 3 ended, best: a/b c"), std::string::npos);

  // A successful proxy that is not the best gets the third series (one without steps: skipped).
  s.proxy_tasks[2].phase = wf::proxy_phase::done;
  s.proxy_tasks[2].stats.state = wf::stopping_state::met_desired_accuracy;
  s.proxy_tasks[2].stats.final_training_time_in_hours = 3.0;
  root = svg_of(wf::proxy_search_plots(s, options()), "proxies.svg");
  series = series_by_name(root);
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series.at("successful (1, 1 without a time or stop step)")->attr("data-skipped"), "1");
  EXPECT_TRUE(series.contains("best: a/b c"));
}

TEST(ProxySearchPlots, SpearmanDecidingSwapsTheLines) {
  auto s = state();
  s.method = pt::stats::correlation::spearman;
  s.desired_correlation = 0.84;
  auto& st = s.proxy_tasks[0].stats;
  st.accuracy_correlation_over_step = st.spearman_over_step;
  st.kendall_over_step = {0.2, 0.5, 0.7, 0.8};
  auto const root =
      svg_of(wf::proxy_search_plots(s, options()), "proxy_a_b_c-0_correlation_steps.svg");
  auto const series = series_by_name(root);
  auto const steps = steps_of(s.proxy_tasks[0]);
  EXPECT_EQ(series_data(*series.at("spearman (deciding)")),
            finite_pairs(steps, st.spearman_over_step));
  EXPECT_EQ(series_data(*series.at("kendall")), finite_pairs(steps, st.kendall_over_step));
  EXPECT_TRUE(series.contains("spearman 90% CI"));
  EXPECT_EQ(references(root, "y"), std::vector<double>{0.84});
  EXPECT_NE(root.all_text().find("threshold 0.84"), std::string::npos);
}

TEST(ProxySearchPlots, ARunningProxyIsTitledNotStoppedAndIsNotInTheProxiesPlot) {
  auto s = state();
  auto& p = s.proxy_tasks[1];
  p.phase = wf::proxy_phase::running;
  p.stats.state = wf::stopping_state::none;
  p.stats.stop_rule.clear();
  p.stats.accuracy_at_stop.clear();
  auto const files = wf::proxy_search_plots(s, options());
  auto const root = svg_of(files, "proxy_a_b_c-1_correlation_steps.svg");
  EXPECT_EQ(root.find_all("title").front()->all_text(), "Proxy \"a_b_c\": not stopped (running)");
  auto const proxies = svg_of(files, "proxies.svg");
  auto const series = series_by_name(proxies);  // pointers into proxies: it must outlive them
  ASSERT_EQ(series.size(), 1u);
  EXPECT_TRUE(series.contains("best: a/b c"));
}

TEST(ProxySearchPlots, AStateWithoutRecordedStepsHasNoPerProxyFiles) {
  auto s = state();
  for (auto& p : s.proxy_tasks) {
    p.phase = wf::proxy_phase::pending;
    p.stats = {};
  }
  s.best_proxy_task_name.reset();
  EXPECT_TRUE(wf::proxy_search_plots(s, options()).empty());
  // A running proxy without a step yet: still nothing.
  s.proxy_tasks[0].phase = wf::proxy_phase::running;
  EXPECT_TRUE(wf::proxy_search_plots(s, options()).empty());
  // One ended without a step (all its trials failed at once): only proxies.svg.
  s.proxy_tasks[0].phase = wf::proxy_phase::done;
  s.proxy_tasks[0].stats.state = wf::stopping_state::excess_trial_failures;
  auto const files = wf::proxy_search_plots(s, options());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].name, "proxies.svg");
  EXPECT_TRUE(parse_xml(files[0].svg));
}

TEST(ProxySearchPlots, RejectsAStateThatBreaksItsContract) {
  auto s = state();
  s.proxy_tasks[0].stats.spearman_over_step.pop_back();
  EXPECT_THROW((void)wf::proxy_search_plots(s, options()), pt::logic_error);
  s = state();
  s.proxy_tasks[0].stats.stop_step_index = 4;
  EXPECT_THROW((void)wf::proxy_search_plots(s, options()), pt::logic_error);
  s = state();
  s.proxy_tasks[0].stats.accuracy_at_stop.pop_back();
  EXPECT_THROW((void)wf::proxy_search_plots(s, options()), pt::logic_error);
}

TEST(ProxyPlotSlug, KeepsSafeNamesAndSuffixesChangedOrCollidingOnes) {
  auto const s = state();
  EXPECT_EQ(wf::proxy_plot_slug(s, 0), "a_b_c-0");  // '/' and ' ' replaced
  EXPECT_EQ(wf::proxy_plot_slug(s, 1), "a_b_c-1");  // safe, but collides with proxy 0's
  EXPECT_EQ(wf::proxy_plot_slug(s, 2), "plain-name.v2");
  EXPECT_THROW((void)wf::proxy_plot_slug(s, 3), pt::logic_error);

  auto slugs = [](std::vector<std::string> const& names) {
    wf::proxy_search_state st;
    for (auto const& n : names) {
      wf::proxy_task_entry p;
      p.name = n;
      st.proxy_tasks.push_back(p);
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < names.size(); ++i) out.push_back(wf::proxy_plot_slug(st, i));
    return out;
  };
  // Repeated names, an empty one, and non-ASCII bytes (each byte one '_').
  EXPECT_EQ(slugs({"x", "x", "", "\xC3\xA9t\xC3\xA9"}),
            (std::vector<std::string>{"x-0", "x-1", "-2", "__t__-3"}));
  // A safe name equal to another proxy's suffixed slug is suffixed too, so slugs stay unique.
  EXPECT_EQ(slugs({"a b", "a_b-0"}), (std::vector<std::string>{"a_b-0", "a_b-0-1"}));
  EXPECT_EQ(slugs({"short", "long.name_v-2"}),
            (std::vector<std::string>{"short", "long.name_v-2"}));
}

}  // namespace
