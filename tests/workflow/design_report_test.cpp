// workflow/design_report.hpp: the end-to-end design's summary, answer and HTML report, from the
// files of a real (simulated-executor) run of the four stages: every number of the summary is
// the stages' own, every number the page shows traces to the summary, the page and its SVGs are
// well-formed, every plot is inlined byte for byte, and a missing stage file is named.

#include <proxytask/workflow/design_report.hpp>

#include <proxytask/core/json.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/stats/median.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/proxy_configs.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "report/xml_check.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using pt::testing::parse_xml;

boost::json::object read_json(fs::path const& path) {
  auto const doc = pt::read_json_object_file(path);
  EXPECT_TRUE(doc && *doc) << path;
  return doc && *doc ? (*doc)->as_object() : boost::json::object{};
}

template <class Tool>
typename Tool::state read_state(fs::path const& dir) {
  auto const doc = read_json(dir / Tool::state_file_name);
  auto const s = Tool::state_from_json(doc, pt::json_location("state"));
  EXPECT_TRUE(s.has_value());
  return s ? *s : typename Tool::state{};
}

template <class Tool>
void run_stage(Tool const& tool, fs::path const& dir, std::uint64_t seed) {
  fs::create_directories(dir);
  pt::exec::simulated_options o;
  o.seed = seed;
  o.noise = 0.02;
  pt::exec::simulated_executor exec(dir, o);
  auto const r = wf::run(tool, exec, {.run_dir = dir});
  ASSERT_TRUE(r.has_value()) << r.error().message();
}

std::map<std::string, std::string> const args{{"epochs", "5"}};

/// The first two stages of a small design (variance, model selection), run on the simulated
/// executor.
void run_first_stages(fs::path const& root) {
  wf::model_sampler const sampler = [](std::uint64_t seed) {
    return pt::protocol::model_spec{
        "m" + std::to_string(seed % 1000),
        {{"final_accuracy", 0.6 + 0.3 * static_cast<double>(seed % 97) / 96.0}}};
  };
  wf::variance_options variance;
  variance.proxy_args = args;
  variance.bootstrap_resamples = 200;
  run_stage(wf::variance_tool(sampler, variance), root / wf::design_variance_dir, 1);
  wf::model_selection_tool_options selection;
  selection.schedule = {8, 6, 2};
  selection.proxy_args = args;
  run_stage(wf::model_selection_tool(sampler, selection), root / wf::design_selection_dir, 2);
}

/// The search and the re-check after run_first_stages; `reverse` gives the search reference
/// scores in reverse order, so that no proxy agrees with them.
wf::design_run run_last_stages(fs::path const& root, bool reverse = false) {
  auto const reference = wf::load_reference_models(root / wf::design_selection_dir /
                                                   wf::model_selection_tool::result_file_name);
  EXPECT_TRUE(reference.has_value());
  wf::design_run run{.run_dir = root, .baseline_args = args, .search = {}, .recheck = {}};
  auto& search = run.search;
  search.reference_models = reference ? *reference : std::vector<wf::reference_model>{};
  if (reverse) {
    std::vector<double> scores;
    for (auto const& m : search.reference_models) scores.push_back(m.accuracy);
    std::sort(scores.begin(), scores.end());
    std::vector<std::size_t> order(scores.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return search.reference_models[a].accuracy > search.reference_models[b].accuracy;
    });
    for (std::size_t i = 0; i < order.size(); ++i)
      search.reference_models[order[i]].accuracy = scores[i];  // best model gets the lowest
  }
  search.proxies = *wf::proxy_grid({{"data_pct", {"10", "50"}}}).configs();
  search.baseline_args = args;
  search.bootstrap_resamples = 200;
  search.early_stop_proxy_task_if_not_best = true;
  run_stage(wf::proxy_search_tool(search), root / wf::design_search_dir, 3);

  auto const plan =
      wf::plan_recheck(read_state<wf::proxy_search_tool>(root / wf::design_search_dir));
  if (plan) {
    auto recheck = search;
    recheck.proxies = {plan->proxy};
    recheck.seed = 1000;
    recheck.early_stop_proxy_task_if_not_best = false;
    recheck.stop_at_pct = plan->stop_at_pct;
    run_stage(wf::proxy_search_tool(recheck), root / wf::design_recheck_dir, 4);
    run.recheck = recheck;
  }
  return run;
}

double number(boost::json::value const& v) {
  return v.is_number() ? v.to_number<double>() : std::nan("");
}

/// a == b for doubles, NaN == NaN (null in the summary).
void expect_same(double a, double b, std::string const& what) {
  if (std::isnan(a) || std::isnan(b))
    EXPECT_TRUE(std::isnan(a) && std::isnan(b)) << what << ": " << a << " vs " << b;
  else
    EXPECT_EQ(a, b) << what;
}

class DesignReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new pt::testing::temp_dir;
    run_first_stages(dir_->path());
    run_ = new wf::design_run(run_last_stages(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete run_;
    delete dir_;
  }
  static pt::testing::temp_dir* dir_;
  static wf::design_run* run_;
};
pt::testing::temp_dir* DesignReport::dir_ = nullptr;
wf::design_run* DesignReport::run_ = nullptr;

TEST_F(DesignReport, SummaryNumbersAreTheStagesOwn) {
  auto const& root = run_->run_dir;
  auto const summary = wf::design_summary(*run_);
  ASSERT_TRUE(summary.has_value()) << summary.error().message();
  auto const& s = *summary;

  // Variance: the tool's result as written.
  auto const variance =
      read_json(root / wf::design_variance_dir / wf::variance_tool::result_file_name);
  auto const& v = s.at("variance").as_object();
  expect_same(number(v.at("coefficient_of_variation")), number(variance.at("variance_value")),
              "coefficient of variation");
  expect_same(number(v.at("smoothness")), number(variance.at("smoothness_value")), "smoothness");
  EXPECT_EQ(v.at("variance_info"), variance.at("variance_info"));
  ASSERT_EQ(v.at("copies").as_array().size(), variance.at("copies").as_array().size());

  // Reference models: scores from the selection's result, costs from their trials' metrics.
  fs::path const selection = root / wf::design_selection_dir;
  auto const result = read_json(selection / wf::model_selection_tool::result_file_name);
  auto const& models = result.at("reference_models").as_array();
  auto const& refs = s.at("reference_models").as_array();
  ASSERT_EQ(refs.size(), models.size());
  ASSERT_EQ(refs.size(), 6u);
  std::vector<double> hours;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    auto const& m = models[i].as_object();
    auto const& r = refs[i].as_object();
    EXPECT_EQ(r.at("model_id"), m.at("model_id"));
    expect_same(number(r.at("accuracy")), number(m.at("accuracy")), "accuracy");
    auto const metrics =
        pt::protocol::read_metrics(selection / std::string(m.at("trial_dir").as_string()));
    ASSERT_TRUE(metrics.has_value());
    EXPECT_EQ(r.at("steps").to_number<std::int64_t>(), metrics->time.total_training_steps);
    expect_same(number(r.at("hours")), metrics->time.total_training_time_in_secs / 3600.0, "hours");
    hours.push_back(metrics->time.total_training_time_in_secs / 3600.0);
  }
  double const full = pt::stats::upper_median(std::span<double const>(hours));
  expect_same(number(s.at("full_training").at("median_hours")), full, "full training");

  // Proxies: each one's statistics at its stop step, as the search state holds them.
  auto const search = read_state<wf::proxy_search_tool>(root / wf::design_search_dir);
  auto const& proxies = s.at("proxies").as_array();
  ASSERT_EQ(proxies.size(), search.proxy_tasks.size());
  for (std::size_t i = 0; i < proxies.size(); ++i) {
    auto const& p = proxies[i].as_object();
    auto const& st = search.proxy_tasks[i].stats;
    ASSERT_TRUE(st.stop_step_index.has_value() || !st.training_steps.empty());
    std::size_t const at = st.stop_step_index.value_or(st.training_steps.size() - 1);
    EXPECT_EQ(p.at("name").as_string(), search.proxy_tasks[i].name);
    expect_same(number(p.at("correlation")), st.accuracy_correlation_over_step[at], "corr");
    expect_same(number(p.at("ci_low")), st.ci_low_over_step[at], "ci low");
    expect_same(number(p.at("ci_high")), st.ci_high_over_step[at], "ci high");
    expect_same(number(p.at("stop_pct")), st.training_step_pct[at], "stop pct");
    double const h =
        st.final_training_time_in_hours.value_or(st.median_training_time_hrs_over_step[at]);
    expect_same(number(p.at("hours")), h, "hours");
    expect_same(number(p.at("cost_ratio")), h / full, "cost ratio");
  }

  // The best proxy and its settings; the re-check at the same pct with new seeds.
  ASSERT_TRUE(search.best_proxy_task_name.has_value());
  auto const& best = s.at("best").as_object();
  EXPECT_EQ(best.at("name").as_string(), *search.best_proxy_task_name);
  auto const& settings = best.at("settings").as_object();
  EXPECT_EQ(settings.at("trainer_args").at("epochs"), "5");
  EXPECT_TRUE(settings.at("trainer_args").as_object().contains("data_pct"));
  double const chance = number(best.at("chance_below_desired"));
  EXPECT_TRUE(chance > 0 && chance <= 1) << chance;
  ASSERT_TRUE(run_->recheck.has_value());
  auto const recheck = read_state<wf::proxy_search_tool>(root / wf::design_recheck_dir);
  ASSERT_EQ(recheck.proxy_tasks.size(), 1u);
  auto const& rs = recheck.proxy_tasks[0].stats;
  auto const& r = s.at("recheck").as_object();
  expect_same(number(r.at("correlation")), rs.accuracy_correlation_over_step.back(), "recheck");
  expect_same(number(r.at("stop_pct")), number(settings.at("stop_at_pct")), "recheck pct");
  EXPECT_EQ(r.at("seed").to_number<std::uint64_t>(), 1000u);
  EXPECT_EQ(s.at("answer").as_string().find("use proxy \"" + *search.best_proxy_task_name), 0u);
}

TEST_F(DesignReport, PageIsWellFormedAndEveryShownNumberTracesToTheSummary) {
  auto const summary = wf::design_summary(*run_);
  ASSERT_TRUE(summary.has_value());
  auto const plots = wf::design_plots(*run_);
  ASSERT_TRUE(plots.has_value()) << plots.error().message();
  std::string const html = wf::design_report_html(*run_, *summary, *plots);
  auto const doc = parse_xml(html);
  ASSERT_TRUE(doc.ok) << doc.error;

  boost::json::value const document(*summary);  // find_pointer's pointers point into it
  std::size_t traced = 0;
  for (auto const* n : doc.root.find_all()) {
    auto const from = n->attr("data-from");
    if (!from) continue;
    ++traced;
    boost::system::error_code ec;
    auto const* v = document.find_pointer(*from, ec);
    ASSERT_NE(v, nullptr) << *from;
    if (!v->is_number()) {
      EXPECT_EQ(n->text, "-") << *from;
      EXPECT_FALSE(n->attr("data-value").has_value()) << *from;
      continue;
    }
    auto const shown = n->attr("data-value");
    ASSERT_TRUE(shown.has_value()) << *from;
    double exact = 0;
    std::from_chars(shown->data(), shown->data() + shown->size(), exact);
    EXPECT_EQ(exact, v->to_number<double>()) << *from;
    // The text is the value rounded to the digits it shows.
    auto const dot = n->text.find('.');
    int const digits = dot == std::string::npos ? 0 : static_cast<int>(n->text.size() - dot - 1);
    EXPECT_NEAR(std::stod(n->text), exact, 0.5 * std::pow(10.0, -digits) + 1e-12) << *from;
  }
  EXPECT_GT(traced, 40u);  // 6 reference models x 3, 2 proxies x 7, the best, the re-check

  // Every plot inlined as is, in a figure of its own, and well-formed alone.
  ASSERT_GE(plots->size(), 4u);
  EXPECT_EQ(plots->front().name, "variance/variance_curves.svg");
  std::size_t figures = 0;
  for (std::size_t at = 0; (at = html.find("<figure>", at)) != std::string::npos; ++at) ++figures;
  EXPECT_EQ(figures, plots->size());
  bool recheck_plot = false, selection_plot = false;
  for (auto const& p : *plots) {
    EXPECT_NE(html.find(p.svg), std::string::npos) << p.name;
    EXPECT_TRUE(parse_xml(p.svg).ok) << p.name;
    recheck_plot |= p.name.starts_with("recheck/");
    selection_plot |= p.name == "selection/iteration_0.svg";
  }
  EXPECT_TRUE(recheck_plot);
  EXPECT_TRUE(selection_plot);
  // Self-contained: nothing fetched (the SVG namespace URI is a name, not a fetch).
  for (char const* fetch : {"<script", "<link", "<img", "src=", "href=", "url(", "@import"})
    EXPECT_EQ(html.find(fetch), std::string::npos) << fetch;
}

TEST_F(DesignReport, AnswerNamesTheBestProxyItsSavingAndTheRecheck) {
  auto const summary = wf::design_summary(*run_);
  ASSERT_TRUE(summary.has_value());
  std::string const text = wf::design_answer_text(*summary);
  auto const& best = summary->at("best").as_object();
  EXPECT_NE(text.find("best proxy: \"" + std::string(best.at("name").as_string()) + "\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("x the cost of full training"), std::string::npos) << text;
  EXPECT_NE(text.find("settings:   --"), std::string::npos) << text;
  EXPECT_NE(
      text.find(" --data_pct=" +
                std::string(best.at("settings").at("trainer_args").at("data_pct").as_string())),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("re-check:   new seeds (seed 1000)"), std::string::npos) << text;
  EXPECT_NE(text.find("variance:   Model variance is"), std::string::npos) << text;
}

TEST_F(DesignReport, NoSuccessfulProxyMeansNoBestAndNoRecheck) {
  pt::testing::temp_dir dir;
  for (auto const stage : {wf::design_variance_dir, wf::design_selection_dir})
    fs::copy(run_->run_dir / stage, dir.path() / stage, fs::copy_options::recursive);
  auto const run = run_last_stages(dir.path(), /*reverse=*/true);
  EXPECT_FALSE(run.recheck.has_value());
  auto const summary = wf::design_summary(run);
  ASSERT_TRUE(summary.has_value()) << summary.error().message();
  EXPECT_TRUE(summary->at("best").is_null());
  EXPECT_TRUE(summary->at("recheck").is_null());
  EXPECT_EQ(summary->at("answer").as_string().find("no proxy reached"), 0u);
  auto const plots = wf::design_plots(run);
  ASSERT_TRUE(plots.has_value());
  std::string const html = wf::design_report_html(run, *summary, *plots);
  EXPECT_TRUE(parse_xml(html).ok);
  EXPECT_NE(html.find("nothing to re-check"), std::string::npos);
}

TEST(DesignReportAlone, AMissingSelectionResultIsNamed) {
  pt::testing::temp_dir dir;
  wf::design_run run{.run_dir = dir.path(), .baseline_args = {}, .search = {}, .recheck = {}};
  auto const summary = wf::design_summary(run);
  ASSERT_FALSE(summary.has_value());
  EXPECT_EQ(summary.error().code, pt::errc::not_found);
  EXPECT_NE(summary.error().message().find("MODEL_SELECTION_RESULT.json"), std::string::npos)
      << summary.error().message();
}

}  // namespace
