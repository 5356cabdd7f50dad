// workflow/model_selection_report.hpp: the per-iteration plots (well-formed SVG, one series per
// fate, every model's scores in data-* attributes and tooltips, latency or rank on x), the
// reference table as CSV (read back by core/csv.hpp to the result's values), and which trials'
// checkpoints may go.

#include <proxytask/workflow/model_selection_report.hpp>

#include <proxytask/core/csv.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/model_selection.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "report/xml_check.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::testing::parse_xml;
using pt::testing::xml_node;
using wf::selection_fate;
using wf::selection_verdict;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

wf::selection_trial trial(std::size_t m, double accuracy, double latency, selection_fate fate,
                          selection_verdict verdict = selection_verdict::valid) {
  wf::selection_trial t;
  t.trial_id = "iter-0-model-" + std::to_string(m);
  t.model_index = m;
  t.seed = 100 + m;
  t.spec = {"model-" + std::to_string(m), boost::json::object{{"width", 8 * (m + 1)}}};
  t.accuracy = accuracy;
  t.latency = latency;
  t.fate = fate;
  t.verdict = verdict;
  if (verdict == selection_verdict::invalid) {
    t.reason = wf::invalid_reason::failed;
    t.message = "simulated crash";
  }
  return t;
}

/// A concluded first iteration of 6 models: 3 kept, 2 removed, 1 invalid (crashed, no score),
/// and a replaced failure with its refill.
wf::model_selection_state concluded_state(bool with_latency) {
  double const l = with_latency ? 1.0 : nan;
  wf::model_selection_state s;
  s.start_num_models = 6;
  s.final_num_models = 2;
  s.num_models_to_remove_per_iter = 2;
  s.accuracy_metric_id = "accuracy";
  s.latency_metric_id = "latency_ms";
  wf::selection_round r;
  r.num_trials = 6;
  r.desired_training_step_pct = 100.0 / 6.0;
  r.concluded = true;
  r.num_models_to_remove = 2;
  r.trials = {trial(0, 0.5, 3 * l, selection_fate::kept),
              trial(1, 0.7, 1 * l, selection_fate::removed),
              trial(2, 0.6, 2 * l, selection_fate::kept),
              trial(3, nan, nan, selection_fate::invalid, selection_verdict::invalid),
              trial(4, 0.4, 5 * l, selection_fate::removed),
              trial(5, 0.9, 4 * l, selection_fate::kept),
              trial(6, nan, nan, selection_fate::replaced, selection_verdict::invalid)};
  r.trials[6].replaced_by = "iter-0-model-6";
  r.trials_to_retrain = {"iter-0-model-0", "iter-0-model-2", "iter-0-model-5"};
  r.removed_trials = {"iter-0-model-1", "iter-0-model-4"};
  r.invalid_trials = {"iter-0-model-3"};
  s.iterations.push_back(r);
  return s;
}

/// The scatter series of a plot by the name before " (": {name: node}.
std::map<std::string, xml_node const*> series_of(xml_node const& root) {
  std::map<std::string, xml_node const*> out;
  for (auto const* g : root.find_by_attr("class", "series")) {
    auto const name = g->attr("data-name").value();
    out[name.substr(0, name.find(" ("))] = g;
  }
  return out;
}

double number(std::string const& text) {
  double v = nan;
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  EXPECT_TRUE(ec == std::errc() && end == text.data() + text.size()) << text;
  return v;
}

/// The (x, y, tooltip) of a series' markers.
struct marker_point {
  double x, y;
  std::string title;
};
std::vector<marker_point> markers(xml_node const& series) {
  std::vector<marker_point> out;
  for (auto const* n : series.find_all())
    if (auto const x = n->attr("data-x"))
      out.push_back({number(*x), number(n->attr("data-y").value()),
                     n->find_all("title").empty() ? std::string()
                                                  : n->find_all("title").front()->all_text()});
  return out;
}

TEST(ModelSelectionPlot, MarksKeptRemovedAndInvalidModelsAgainstLatency) {
  auto const svg = wf::selection_iteration_svg(concluded_state(true), 0);
  auto const doc = parse_xml(svg);
  ASSERT_TRUE(doc) << doc.error << " at " << doc.offset;
  EXPECT_NE(doc.root.all_text().find("Iteration 0: 6 models, accuracy at 16.67% of training: kept "
                                     "3, removed 2, invalid 2 (1 replaced)"),
            std::string::npos)
      << svg;
  auto const s = series_of(doc.root);
  ASSERT_EQ(s.size(), 3u) << svg;
  EXPECT_EQ(s.at("kept")->attr("data-name"), "kept (3)");
  EXPECT_EQ(s.at("removed")->attr("data-name"), "removed (2)");
  EXPECT_EQ(s.at("invalid")->attr("data-name"), "invalid (2, 2 without a score)");
  EXPECT_EQ(s.at("invalid")->attr("data-skipped"), "2");

  auto const kept = markers(*s.at("kept"));
  ASSERT_EQ(kept.size(), 3u);
  // Latency on x, accuracy on y, in trial order; the tooltip names the trial and the model.
  EXPECT_EQ(kept[0].x, 3.0);
  EXPECT_EQ(kept[0].y, 0.5);
  EXPECT_EQ(kept[2].x, 4.0);
  EXPECT_EQ(kept[2].y, 0.9);
  EXPECT_NE(kept[0].title.find("iter-0-model-0 (model-0)"), std::string::npos) << kept[0].title;
  EXPECT_NE(kept[0].title.find("kept"), std::string::npos);
  auto const removed = markers(*s.at("removed"));
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[1].x, 5.0);
  EXPECT_EQ(removed[1].y, 0.4);
  EXPECT_NE(removed[1].title.find("removed"), std::string::npos);
  EXPECT_TRUE(markers(*s.at("invalid")).empty());
  // The axes name the metrics.
  EXPECT_NE(svg.find(">latency_ms<"), std::string::npos);
  EXPECT_NE(svg.find(">accuracy at 16.67% of training<"), std::string::npos);
}

TEST(ModelSelectionPlot, RanksByAccuracyWithoutLatencyAndDrawsInvalidModelsThatHaveAScore) {
  auto s = concluded_state(false);
  // A model whose latency measurement failed: invalid, but it has an accuracy to rank.
  s.iterations[0].trials[3].accuracy = 0.8;
  s.iterations[0].trials[3].reason = wf::invalid_reason::latency_failed;
  auto const doc = parse_xml(wf::selection_iteration_svg(s, 0));
  ASSERT_TRUE(doc) << doc.error;
  auto const series = series_of(doc.root);
  // Accuracies 0.9 (model 5), 0.8 (3), 0.7 (1), 0.6 (2), 0.5 (0), 0.4 (4): ranks 1..6.
  auto const kept = markers(*series.at("kept"));
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].x, 5.0);  // model 0
  EXPECT_EQ(kept[1].x, 4.0);  // model 2
  EXPECT_EQ(kept[2].x, 1.0);  // model 5
  auto const invalid = markers(*series.at("invalid"));
  ASSERT_EQ(invalid.size(), 1u);
  EXPECT_EQ(invalid[0].x, 2.0);
  EXPECT_EQ(invalid[0].y, 0.8);
  EXPECT_NE(invalid[0].title.find("latency_failed: simulated crash"), std::string::npos)
      << invalid[0].title;
  EXPECT_EQ(series.at("invalid")->attr("data-name"), "invalid (2, 1 without a score)");
  EXPECT_NE(doc.root.all_text().find("accuracy rank (1 = best)"), std::string::npos);
}

TEST(ModelSelectionPlot, ALastIterationShowsTheReferenceModels) {
  auto s = concluded_state(true);
  wf::selection_round last;
  last.num_trials = 2;
  last.last = true;
  last.concluded = true;
  last.desired_training_step_pct = wf::train_to_completion_pct;
  last.trials = {trial(0, 0.8, 3, selection_fate::reference),
                 trial(5, 0.95, 4, selection_fate::reference)};
  s.iterations.push_back(last);
  s.phase = wf::selection_phase::done;
  auto const doc = parse_xml(wf::selection_iteration_svg(s, 1));
  ASSERT_TRUE(doc) << doc.error;
  auto const series = series_of(doc.root);
  ASSERT_EQ(series.size(), 1u);
  EXPECT_EQ(series.at("reference")->attr("data-name"), "reference (2)");
  EXPECT_NE(doc.root.all_text().find("Iteration 1 (last): 2 models, accuracy at the end of "
                                     "training"),
            std::string::npos);
  EXPECT_TRUE(wf::selection_plot_final(s, 1));
  EXPECT_THROW((void)wf::selection_iteration_svg(s, 2), pt::logic_error);
}

TEST(ModelSelectionPlot, AnIterationInProgressIsNotFinalAndShowsTrainedModels) {
  auto s = concluded_state(true);
  auto& r = s.iterations[0];
  r.concluded = false;
  for (auto& t : r.trials)
    if (t.fate != selection_fate::replaced) t.fate = selection_fate::pending;
  r.trials[5].verdict = selection_verdict::running;
  EXPECT_FALSE(wf::selection_plot_final(s, 0));
  auto const doc = parse_xml(wf::selection_iteration_svg(s, 0));
  ASSERT_TRUE(doc) << doc.error;
  auto const series = series_of(doc.root);
  EXPECT_EQ(series.at("trained")->attr("data-name"), "trained (4)");
  EXPECT_EQ(series.at("invalid")->attr("data-name"), "invalid (2, 2 without a score)");
  EXPECT_FALSE(series.contains("kept"));
  // An aborted selection's first iteration is final as it stands.
  s.phase = wf::selection_phase::aborted;
  EXPECT_TRUE(wf::selection_plot_final(s, 0));
}

TEST(ReferenceModelsCsv, QuotesFieldsAndReadsBackToTheResultsValues) {
  boost::json::object result{
      {"reference_models",
       boost::json::array{
           {{"model_index", 3},
            {"model_id", "m, \"quoted\""},
            {"spec", {{"model_id", "m, \"quoted\""}, {"parameters", {{"hidden", {64, 32}}}}}},
            {"seed", 4000000000ULL},
            {"trial_id", "iter-2-model-3"},
            {"trial_dir", "trials/iter-2-model-3"},
            {"accuracy", 0.1 + 0.2},
            {"latency", nullptr}},
           {{"model_index", 7},
            {"model_id", "plain"},
            {"spec", {{"model_id", "plain"}, {"parameters", boost::json::object()}}},
            {"seed", 9},
            {"trial_id", "iter-2-model-7"},
            {"trial_dir", "trials/iter-2-model-7"},
            {"accuracy", 1.0},
            {"latency", 0.011}}}}};
  auto const text = wf::reference_models_csv(result);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "model_index,model_id,trial_id,accuracy,latency,seed,trial_dir,spec");
  auto const table = pt::parse_csv(text, "reference_models.csv").value();
  ASSERT_EQ(table.rows.size(), 2u);
  auto const& r0 = table.rows[0].fields;
  EXPECT_EQ(r0[0], "3");
  EXPECT_EQ(r0[1], "m, \"quoted\"");
  EXPECT_EQ(r0[2], "iter-2-model-3");
  EXPECT_EQ(pt::csv_number(table, 0, 3).value(), 0.1 + 0.2) << "the exact double";
  EXPECT_TRUE(std::isnan(pt::csv_number(table, 0, 4).value())) << "null: an empty field";
  EXPECT_EQ(r0[5], "4000000000");
  EXPECT_EQ(r0[6], "trials/iter-2-model-3");
  EXPECT_EQ(boost::json::parse(r0[7]), result.at("reference_models").at(0).at("spec"));
  EXPECT_EQ(r0[7].find('\n'), std::string::npos) << "compact JSON";
  auto const& r1 = table.rows[1].fields;
  EXPECT_EQ(r1[3], "1");
  EXPECT_EQ(pt::csv_number(table, 1, 4).value(), 0.011);

  // No reference models (an aborted run): the header alone.
  EXPECT_EQ(
      wf::reference_models_csv(boost::json::object{{"reference_models", boost::json::array()}}),
      "model_index,model_id,trial_id,accuracy,latency,seed,trial_dir,spec\n");
  EXPECT_EQ(wf::reference_models_csv({}),
            "model_index,model_id,trial_id,accuracy,latency,seed,trial_dir,spec\n");
}

TEST(ReferenceModelsCsv, QuotesOnlyWhatNeedsIt) {
  auto field = [](std::string_view f) {
    std::string out;
    wf::append_csv_field(out, f);
    return out;
  };
  EXPECT_EQ(field("abc"), "abc");
  EXPECT_EQ(field(""), "");
  EXPECT_EQ(field("a,b"), "\"a,b\"");
  EXPECT_EQ(field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(field(" padded"), "\" padded\"");
}

TEST(DiscardedTrials, AreTheRemovedInvalidAndReplacedTrialsThatHaveEnded) {
  auto const s = concluded_state(true);
  wf::observation obs;
  for (auto const& t : s.iterations[0].trials) {
    wf::trial_status status;
    status.trial_id = t.trial_id;
    status.phase = wf::trial_phase::succeeded;
    obs.trials.push_back(status);
  }
  obs.trials[3].phase = wf::trial_phase::failed;
  obs.trials[6].phase = wf::trial_phase::failed;
  EXPECT_EQ(wf::discarded_trials(s, obs),
            (std::vector<std::string>{"iter-0-model-1", "iter-0-model-3", "iter-0-model-4",
                                      "iter-0-model-6"}));
  // A trial the observation shows running (or does not list) keeps its checkpoint.
  obs.trials[1].phase = wf::trial_phase::running;
  obs.trials.pop_back();
  EXPECT_EQ(wf::discarded_trials(s, obs),
            (std::vector<std::string>{"iter-0-model-3", "iter-0-model-4"}));
  // Nothing of an iteration that has not concluded (an aborted first iteration).
  auto aborted = s;
  aborted.iterations[0].concluded = false;
  aborted.phase = wf::selection_phase::aborted;
  EXPECT_TRUE(wf::discarded_trials(aborted, obs).empty());
}

TEST(ModelSelectionReport, TheCsvOfARealResultMatchesItsReferenceModels) {
  pt::testing::temp_dir dir;
  pt::exec::simulated_options so;
  so.poll_interval_s = 100;
  so.seed = 3;
  pt::exec::simulated_executor exec(dir.path(), so);
  wf::model_selection_tool_options o;
  o.schedule = {.start_num_models = 8, .final_num_models = 4, .num_models_to_remove_per_iter = 2};
  wf::model_selection_tool const tool(
      [](std::uint64_t seed) {
        return pt::protocol::model_spec{"model-" + std::to_string(seed),
                                        boost::json::object{{"seed", seed}}};
      },
      o);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  auto const table = pt::parse_csv(wf::reference_models_csv(r->as_object()), "csv").value();
  auto const& refs = r->at("reference_models").as_array();
  ASSERT_EQ(table.rows.size(), refs.size());
  ASSERT_EQ(refs.size(), 4u);
  for (std::size_t i = 0; i < refs.size(); ++i) {
    auto const& f = table.rows[i].fields;
    EXPECT_EQ(f[0], std::to_string(refs[i].at("model_index").to_number<std::size_t>()));
    EXPECT_EQ(f[1], refs[i].at("model_id").as_string());
    EXPECT_EQ(f[2], refs[i].at("trial_id").as_string());
    EXPECT_EQ(pt::csv_number(table, i, 3).value(), refs[i].at("accuracy").to_number<double>());
    EXPECT_EQ(f[4], "");
    EXPECT_EQ(boost::json::parse(f[7]), refs[i].at("spec"));
  }
  // Every iteration plots as well-formed SVG.
  auto const state =
      wf::model_selection_state_from_json(
          pt::parse_json(pt::read_file(dir.path() / "MODEL_SELECTION_STATE.json").value(), "s")
              .value(),
          pt::json_location("s"))
          .value();
  ASSERT_EQ(state.iterations.size(), 3u);
  for (std::size_t i = 0; i < state.iterations.size(); ++i) {
    auto const doc = parse_xml(wf::selection_iteration_svg(state, i));
    EXPECT_TRUE(doc) << "iteration " << i << ": " << doc.error;
  }
}

}  // namespace
