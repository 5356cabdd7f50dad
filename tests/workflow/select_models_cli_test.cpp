// proxytask-select-models as a user runs it: a simulated run with the defaults (10 reference
// models; the state, the result, the CSV that matches it and a well-formed plot per iteration),
// latency from the trainer, from a calculator and none, failures and NaN, an impossible schedule
// and usage errors refused before anything runs, a resume with other options refused, and a
// local-process run of the protocol example trainer that is SIGKILLed mid-run and resumed to the
// result of an uninterrupted run, with the checkpoints of removed and invalid models deleted
// (and kept with --keep-checkpoints).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/csv.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/model_selection_report.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "report/xml_check.hpp"
#include "support/child_process.hpp"
#include "support/temp_dir.hpp"
#include "tool_programs.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pt::testing::child_process;
using pt::testing::example_trainer_program;
using pt::testing::parse_xml;
using pt::testing::select_models_built;
using pt::testing::select_models_program;
using pt::testing::temp_dir;
using pt::testing::text_of;
using pt::testing::tool_programs_built;

boost::json::value read_json(fs::path const& p) {
  return pt::parse_json(pt::read_file(p).value(), p.string()).value();
}

using outcome = pt::testing::program_outcome;

class SelectModelsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!select_models_built || !tool_programs_built)
      GTEST_SKIP() << "the example programs are not built";
    // Ten candidates for the local runs (the example trainer's curves tend to final_accuracy).
    std::ofstream candidates(dir_.path() / "candidates.json");
    candidates << "[";
    for (int m = 0; m < 10; ++m)
      candidates << (m ? "," : "") << R"({"model_id": "m-)" << m
                 << R"(", "parameters": {"final_accuracy": )" << 0.5 + 0.04 * m << "}}";
    candidates << "]";
    candidates.close();
    // The trainer wrapper: a fake checkpoint in the trial directory (the example trainer writes
    // none) and a line in STARTS per start, then the trainer.
    auto const wrapper = dir_.path() / "trainer.sh";
    std::ofstream(wrapper) << "#!/bin/sh\n"
                              "echo $$ >> \"$PROXYTASK_MODEL_DIR/STARTS\"\n"
                              "echo checkpoint > \"$PROXYTASK_MODEL_DIR/CHECKPOINT.bin\"\n"
                              "exec \"$@\"\n";
    ::chmod(wrapper.c_str(), 0755);
  }

  outcome run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 120s) {
    return pt::testing::run_program(argv, dir_.path(), std::to_string(calls_++), timeout);
  }

  static std::vector<std::string> simulated(fs::path const& run_dir,
                                            std::vector<std::string> const& more = {}) {
    std::vector<std::string> argv{select_models_program, run_dir.string(), "--executor=simulated",
                                  "--quiet"};
    argv.insert(argv.end(), more.begin(), more.end());
    return argv;
  }

  /// 6 models, 1 removed per iteration, 3 final: 6 at 16.67%, 5 at 36.67%, 4 at 61.67%, 3 to
  /// completion; the example trainer's cycles are 2% of a training (0.5 s in all).
  std::vector<std::string> local(fs::path const& run_dir,
                                 std::vector<std::string> const& more = {}) const {
    std::vector<std::string> argv{select_models_program,
                                  run_dir.string(),
                                  "--search-space=" + (dir_.path() / "candidates.json").string(),
                                  "--start-models=6",
                                  "--final-models=3",
                                  "--remove-per-iter=1",
                                  "--seed=5",
                                  "--max-concurrent=3",
                                  "--poll-interval=0.02",
                                  "--arg=total_steps=500",
                                  "--arg=cycle_steps=10",
                                  "--arg=step_seconds=0.001",
                                  "--quiet"};
    argv.insert(argv.end(), more.begin(), more.end());
    argv.insert(argv.end(), {"--", (dir_.path() / "trainer.sh").string(), example_trainer_program});
    return argv;
  }

  /// The result's reference models and the CSV agree row by row, column by column.
  static void expect_csv_matches(fs::path const& run_dir) {
    auto const result = read_json(run_dir / wf::model_selection_tool::result_file_name);
    auto const table = pt::read_csv(run_dir / wf::reference_models_csv_file_name);
    ASSERT_TRUE(table) << table.error().message();
    EXPECT_EQ(table->header,
              (std::vector<std::string>{"model_index", "model_id", "trial_id", "accuracy",
                                        "latency", "seed", "trial_dir", "spec"}));
    auto const& refs = result.at("reference_models").as_array();
    ASSERT_EQ(table->rows.size(), refs.size());
    for (std::size_t i = 0; i < refs.size(); ++i) {
      auto const& ref = refs[i].as_object();
      auto const& f = table->rows[i].fields;
      EXPECT_EQ(f[0], std::to_string(ref.at("model_index").to_number<std::uint64_t>()));
      EXPECT_EQ(f[1], ref.at("model_id").as_string());
      EXPECT_EQ(f[2], ref.at("trial_id").as_string());
      EXPECT_EQ(pt::csv_number(*table, i, 3).value(), ref.at("accuracy").to_number<double>());
      if (ref.at("latency").is_null())
        EXPECT_EQ(f[4], "");
      else
        EXPECT_EQ(pt::csv_number(*table, i, 4).value(), ref.at("latency").to_number<double>());
      EXPECT_EQ(f[5], std::to_string(ref.at("seed").to_number<std::uint64_t>()));
      EXPECT_EQ(f[6], ref.at("trial_dir").as_string());
      EXPECT_EQ(boost::json::parse(f[7]), ref.at("spec"));
    }
  }

  /// One well-formed plot per iteration (and no more); returns their parsed series names.
  static std::vector<std::vector<std::string>> plots(fs::path const& run_dir) {
    auto const state = read_json(run_dir / wf::model_selection_tool::state_file_name);
    std::size_t const n = state.at("iterations").as_array().size();
    std::vector<std::vector<std::string>> names;
    for (std::size_t i = 0; i < n; ++i) {
      auto const text = text_of(run_dir / wf::selection_plot_file_name(i));
      auto const doc = parse_xml(text);
      EXPECT_TRUE(doc) << "iteration " << i << ": " << doc.error << " at " << doc.offset;
      names.emplace_back();
      for (auto const* g : doc.root.find_by_attr("class", "series"))
        names.back().push_back(g->attr("data-name").value_or(""));
    }
    EXPECT_FALSE(fs::exists(run_dir / wf::selection_plot_file_name(n)));
    return names;
  }

  static bool has_series(std::vector<std::string> const& names, std::string const& prefix) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string const& n) { return n.starts_with(prefix); });
  }

  temp_dir dir_;
  int calls_ = 0;
};

TEST_F(SelectModelsCli, ASimulatedRunWithTheDefaultsWritesTheReferenceTableAndAPlotPerIteration) {
  auto const run_dir = dir_.path() / "run";
  auto const r = run(simulated(run_dir));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("status:  complete: 10 reference models"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  model "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find((run_dir / "reference_models.csv").string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find((run_dir / "iteration_4.svg").string()), std::string::npos) << r.out;

  auto const result = read_json(run_dir / wf::model_selection_tool::result_file_name);
  EXPECT_EQ(result.at("status"), "complete");
  EXPECT_EQ(result.at("reference_models").as_array().size(), 10u);
  auto const state = read_json(run_dir / wf::model_selection_tool::state_file_name);
  EXPECT_EQ(state.at("phase"), "done");
  ASSERT_EQ(state.at("iterations").as_array().size(), 5u);  // 30, 25, 20, 15, 10
  expect_csv_matches(run_dir);
  auto const names = plots(run_dir);
  ASSERT_EQ(names.size(), 5u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(has_series(names[i], "kept (")) << i;
    EXPECT_TRUE(has_series(names[i], "removed (5)")) << i;
  }
  EXPECT_EQ(names[4], std::vector<std::string>{"reference (10)"});
  // Accuracy alone: the plots rank the models.
  EXPECT_NE(text_of(run_dir / "iteration_0.svg").find("accuracy rank (1 = best)"),
            std::string::npos);
  // The tooltips name the trials.
  EXPECT_NE(text_of(run_dir / "iteration_0.svg").find("<title>iter-0-model-3 ("),
            std::string::npos);
  EXPECT_NE(text_of(run_dir / "iteration_4.svg").find("<title>iter-4-model-"), std::string::npos);

  // Running a finished run again gives the same output and files without training anything.
  auto const csv = text_of(run_dir / "reference_models.csv");
  auto const svg = text_of(run_dir / "iteration_2.svg");
  auto const again = run(simulated(run_dir));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
  EXPECT_EQ(text_of(run_dir / "reference_models.csv"), csv);
  EXPECT_EQ(text_of(run_dir / "iteration_2.svg"), svg);
}

TEST_F(SelectModelsCli, LatencyFromTheTrainerOrACalculatorIsPlottedAndTabulated) {
  for (char const* source : {"trainer", "calculator"}) {
    SCOPED_TRACE(source);
    auto const run_dir = dir_.path() / source;
    auto const r = run(simulated(run_dir, {std::string("--latency=") + source}));
    ASSERT_EQ(r.code, 0) << r.err;
    auto const result = read_json(run_dir / wf::model_selection_tool::result_file_name);
    EXPECT_EQ(result.at("status"), "complete");
    EXPECT_EQ(result.at("latency_source"), source);
    for (auto const& ref : result.at("reference_models").as_array()) {
      auto const latency = ref.at("latency").to_number<double>();
      EXPECT_TRUE(latency >= 1 && latency <= 20) << latency;
    }
    expect_csv_matches(run_dir);
    plots(run_dir);
    auto const svg = text_of(run_dir / "iteration_0.svg");
    EXPECT_NE(svg.find(">latency<"), std::string::npos) << "the x axis is the latency";
    EXPECT_EQ(svg.find("accuracy rank"), std::string::npos);
  }
  // Without latency: nulls in the result, empty CSV fields.
  auto const none = dir_.path() / "none";
  ASSERT_EQ(run(simulated(none, {"--latency=none"})).code, 0);
  auto const result = read_json(none / wf::model_selection_tool::result_file_name);
  for (auto const& ref : result.at("reference_models").as_array())
    EXPECT_TRUE(ref.at("latency").is_null());
  expect_csv_matches(none);
}

TEST_F(SelectModelsCli, FailuresAndNanAreInvalidAndMarkedInThePlots) {
  auto const run_dir = dir_.path() / "run";
  auto const r = run(simulated(run_dir, {"--simulated-failure-rate=0.05",
                                         "--max-failed-fraction=0.5", "--latency=trainer"}));
  ASSERT_EQ(r.code, 0) << r.err;
  auto const result = read_json(run_dir / wf::model_selection_tool::result_file_name);
  auto const& failures = result.at("failures").as_array();
  ASSERT_FALSE(failures.empty());
  EXPECT_NE(r.out.find("invalid trials (" + std::to_string(failures.size()) + "):"),
            std::string::npos)
      << r.out;
  bool diverged = false;
  for (auto const& f : failures) diverged = diverged || f.at("failure") == "diverged";
  EXPECT_TRUE(diverged) << "a NaN loss among the failures";
  expect_csv_matches(run_dir);
  auto const names = plots(run_dir);
  bool invalid_drawn = false;
  for (auto const& n : names) invalid_drawn = invalid_drawn || has_series(n, "invalid (");
  EXPECT_TRUE(invalid_drawn);

  // Too many failures: aborted, said so, no reference models, the first iteration plotted.
  auto const aborted = dir_.path() / "aborted";
  auto const a = run(simulated(aborted, {"--simulated-failure-rate=0.3"}));
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find("status:  aborted: "), std::string::npos) << a.out;
  expect_csv_matches(aborted);
  auto const aborted_plots = plots(aborted);
  ASSERT_EQ(aborted_plots.size(), 1u);
  EXPECT_TRUE(has_series(aborted_plots[0], "invalid ("));
}

TEST_F(SelectModelsCli, AnImpossibleScheduleIsRefusedBeforeAnythingRuns) {
  auto const run_dir = dir_.path() / "run";
  // 30 models losing one per iteration: 100/30 + 100/29 + ... passes 100% before 10 are left.
  auto const r = run(simulated(run_dir, {"--remove-per-iter=1"}));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("impossible schedule (--start-models 30 --final-models 10 "
                       "--remove-per-iter 1)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("before the cumulative pct passes 100"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(run_dir));
}

TEST_F(SelectModelsCli, UsageErrorsExitTwo) {
  for (std::vector<std::string> const& args : {std::vector<std::string>{},
                                               {"r", "--latency=sometimes"},
                                               {"r", "--latency-optional"},
                                               {"r", "--start-models=0"},
                                               {"r", "--max-failed-fraction=1.5"},
                                               {"r", "--latency-wait=-1"},
                                               {"r", "--checkpoint-name=a/b"},
                                               {"r", "--simulated-failure-rate=0.1"},
                                               {"r", "--bogus=1"},
                                               {"r", "--executor=simulated", "--", "t"}}) {
    std::vector<std::string> argv{select_models_program};
    argv.insert(argv.end(), args.begin(), args.end());
    auto const r = run(argv);
    EXPECT_EQ(r.code, 2) << testing::PrintToString(args) << r.err;
    EXPECT_NE(r.err.find("usage: proxytask-select-models"), std::string::npos) << r.err;
  }
  auto const help = run({select_models_program, "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--keep-checkpoints"), std::string::npos);
  EXPECT_NE(help.out.find("--search-space FILE"), std::string::npos);
}

TEST_F(SelectModelsCli, RefusesToResumeWithOtherOptions) {
  auto const run_dir = dir_.path() / "run";
  ASSERT_EQ(run(simulated(run_dir)).code, 0);
  auto const r = run(simulated(run_dir, {"--final-models=8"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("final_models was 10, now 8"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("selection_options.json"), std::string::npos) << r.err;
  auto const latency = run(simulated(run_dir, {"--latency=trainer"}));
  EXPECT_EQ(latency.code, 1);
  EXPECT_NE(latency.err.find("latency was \"none\", now \"trainer\""), std::string::npos)
      << latency.err;
}

/// Waits until every trial of a run has ended (orphans of a killed controller included).
void wait_for_trials(fs::path const& run_dir) {
  auto const deadline = std::chrono::steady_clock::now() + 30s;
  std::error_code ec;
  for (auto const& e : fs::directory_iterator(run_dir / "trials", ec))
    while (!fs::exists(e.path() / "EXIT_STATUS.json") && fs::exists(e.path() / "PID.json") &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
}

/// Each trial's checkpoint is there exactly when its model was kept or is a reference model.
void expect_checkpoints_of_kept_models_only(fs::path const& run_dir) {
  auto const state = read_json(run_dir / wf::model_selection_tool::state_file_name);
  std::size_t deleted = 0;
  for (auto const& it : state.at("iterations").as_array())
    for (auto const& t : it.at("trials").as_array()) {
      auto const id = std::string(t.at("trial_id").as_string());
      auto const fate = std::string(t.at("fate").as_string());
      bool const kept = fate == "kept" || fate == "reference";
      EXPECT_EQ(fs::exists(run_dir / "trials" / id / "CHECKPOINT.bin"), kept) << id << ": " << fate;
      EXPECT_TRUE(fs::exists(run_dir / "trials" / id / "STARTS")) << id;
      deleted += !kept;
    }
  EXPECT_EQ(deleted, 3u) << "one model removed after each of three iterations";
}

TEST_F(SelectModelsCli, ALocalRunKilledMidRunResumesToTheUninterruptedResult) {
  // Uninterrupted.
  auto const reference = dir_.path() / "uninterrupted";
  auto const r = run(local(reference));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("status:  complete: 3 reference models"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("deleted: 3 CHECKPOINT.bin"), std::string::npos) << r.out;
  auto const expected = read_json(reference / wf::model_selection_tool::result_file_name);
  ASSERT_EQ(expected.at("iterations").as_array().size(), 4u);
  expect_csv_matches(reference);
  EXPECT_EQ(plots(reference).size(), 4u);
  expect_checkpoints_of_kept_models_only(reference);

  // Killed once the first iteration has concluded, then resumed.
  auto const killed = dir_.path() / "killed";
  {
    child_process controller(local(killed), dir_.path() / "k.out", dir_.path() / "k.err");
    auto const deadline = std::chrono::steady_clock::now() + 60s;
    bool mid_run = false;
    while (!mid_run && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
      auto const text = pt::read_file(killed / wf::model_selection_tool::state_file_name);
      if (!text) continue;
      auto const doc = pt::parse_json(*text, "state");
      mid_run = doc && doc->at("iterations").as_array().size() >= 2;
    }
    ASSERT_TRUE(mid_run) << text_of(dir_.path() / "k.err");
  }  // SIGKILL
  auto const mid = read_json(killed / wf::model_selection_tool::state_file_name);
  EXPECT_EQ(mid.at("phase"), "training") << "killed mid-run";
  auto const resumed = run(local(killed));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(read_json(killed / wf::model_selection_tool::result_file_name), expected);
  EXPECT_EQ(text_of(killed / "reference_models.csv"), text_of(reference / "reference_models.csv"));
  expect_checkpoints_of_kept_models_only(killed);
  for (auto const& e : fs::directory_iterator(killed / "trials")) {
    auto const starts = text_of(e.path() / "STARTS");
    EXPECT_EQ(std::count(starts.begin(), starts.end(), '\n'), 1) << e.path() << " started twice";
  }

  // --keep-checkpoints keeps them all.
  auto const keep = dir_.path() / "keep";
  auto const k = run(local(keep, {"--keep-checkpoints"}));
  ASSERT_EQ(k.code, 0) << k.err;
  EXPECT_EQ(read_json(keep / wf::model_selection_tool::result_file_name)
                .at("reference_models")
                .as_array()
                .size(),
            3u);
  for (auto const& e : fs::directory_iterator(keep / "trials"))
    EXPECT_TRUE(fs::exists(e.path() / "CHECKPOINT.bin")) << e.path();

  wait_for_trials(reference);
  wait_for_trials(killed);
  wait_for_trials(keep);
}

}  // namespace
