// proxytask-measure-variance and proxytask-status as a user runs them: a simulated run to the
// end, a resume of a finished run, a resume with other options, usage errors, the status of a
// finished, a running and an empty run directory, the lock, and Ctrl-C with and without
// --cancel-on-exit.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/variance_report.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdio>
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
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pt::testing::child_process;
using pt::testing::temp_dir;

using pt::testing::example_trainer_program;
using pt::testing::measure_variance_program;
using pt::testing::status_program;
using pt::testing::text_of;
using pt::testing::tool_programs_built;

using outcome = pt::testing::program_outcome;

class ToolCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tool_programs_built) GTEST_SKIP() << "the example programs are not built";
    std::ofstream(dir_.path() / "candidates.json")
        << R"([{"model_id": "m-a", "parameters": {"final_accuracy": 0.8}},
               {"model_id": "m-b", "parameters": {"final_accuracy": 0.9}}])";
  }

  fs::path candidates() const { return dir_.path() / "candidates.json"; }

  outcome run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 60s) {
    return pt::testing::run_program(argv, dir_.path(), std::to_string(calls_++), timeout);
  }

  std::vector<std::string> simulated(fs::path const& run_dir) const {
    return {measure_variance_program, run_dir.string(),
            "--executor=simulated",   "--search-space=" + candidates().string(),
            "--resamples=100",        "--quiet"};
  }

  /// A local run whose trials are slow (20 s to the first point), for a controller that is still
  /// running in its first phase.
  std::vector<std::string> slow_local(fs::path const& run_dir) const {
    return {measure_variance_program,
            run_dir.string(),
            "--search-space=" + candidates().string(),
            "--poll-interval=0.02",
            "--copies=2",
            "--arg=total_steps=1000",
            "--arg=cycle_steps=100",
            "--arg=step_seconds=0.2",
            "--",
            example_trainer_program};
  }

  static boost::json::value read_json(fs::path const& p) {
    return pt::parse_json(pt::read_file(p).value(), p.string()).value();
  }

  /// Waits for status.json to list `trials` running trials.
  static bool wait_for_running(fs::path const& run_dir, std::size_t trials) {
    auto const deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto const text = pt::read_file(run_dir / pt::workflow::status_file_name)) {
        auto const doc = pt::parse_json(*text, "status.json");
        std::size_t running = 0;
        if (doc)
          for (auto const& t : doc->at("trials").as_array())
            running += t.at("phase").as_string() == "running";
        if (running >= trials) return true;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  /// Kills the trials of a run (orphans of a controller that is gone).
  static void kill_trials(fs::path const& run_dir) {
    std::error_code ec;
    for (auto const& e : fs::directory_iterator(run_dir / "trials", ec))
      if (auto const text = pt::read_file(e.path() / "PID.json"))
        if (auto const doc = pt::parse_json(*text, "PID.json"))
          ::kill(-static_cast<pid_t>(doc->at("pid").to_number<std::int64_t>()), SIGKILL);
  }

  temp_dir dir_;
  int calls_ = 0;
};

TEST_F(ToolCli, MeasuresOnTheSimulatedExecutorAndPrintsTheVerdicts) {
  auto const run_dir = dir_.path() / "run";
  auto const r = run(simulated(run_dir));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("variance:   "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("smoothness: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("copies:     copy-0="), std::string::npos) << r.out;
  auto const result = read_json(run_dir / pt::workflow::variance_tool::result_file_name);
  EXPECT_EQ(result.at("status").as_string(), "measured");
  EXPECT_EQ(result.at("copies").as_array().size(), 5u);
  auto const state = read_json(run_dir / pt::workflow::variance_tool::state_file_name);
  EXPECT_EQ(state.at("phase").as_string(), "done");

  // The plot of the copies' curves: well-formed, one line per copy plus the final accuracies,
  // and the result's coefficient of variation in its title; its path is printed.
  fs::path const plot = run_dir / pt::workflow::variance_curves_plot_file_name;
  EXPECT_NE(r.out.find(plot.string()), std::string::npos) << r.out;
  auto const svg = pt::read_file(plot);
  ASSERT_TRUE(svg) << plot;
  auto const doc = pt::testing::parse_xml(*svg);
  ASSERT_TRUE(doc) << doc.error << " at " << doc.offset;
  std::size_t lines = 0, scatters = 0;
  for (auto const* g : doc.root.find_by_attr("class", "series")) {
    lines += g->attr("data-kind") == "line";
    scatters += g->attr("data-name") == "final accuracy (5)";
  }
  EXPECT_EQ(lines, 5u);
  EXPECT_EQ(scatters, 1u);
  char cv[32];
  std::snprintf(cv, sizeof cv, "%.4g", result.at("variance_value").as_double());
  EXPECT_NE(svg->find("5 of 5 copies; CV " + std::string(cv) + " ("), std::string::npos);

  // Running a finished run again gives the same result without training anything.
  auto const again = run(simulated(run_dir));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
  EXPECT_EQ(read_json(run_dir / pt::workflow::variance_tool::result_file_name), result);
}

TEST_F(ToolCli, RunsTheReferenceTrainerInProcess) {
  // The reference trainer as a C++ callable on the executor's threads, on real data, with the
  // same files as its process runs write.
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto const run_dir = dir_.path() / "run";
  auto const r = run({measure_variance_program, run_dir.string(), "--executor=inprocess",
                      "--copies=2", "--max-concurrent=2", "--poll-interval=0.05", "--resamples=100",
                      "--arg=data_pct=2", "--arg=total_steps=20", "--quiet"},
                     300s);
  if (r.code == 1 && r.err.find("this build") != std::string::npos)
    GTEST_SKIP() << "this build has no reference trainer";
  ASSERT_EQ(r.code, 0) << r.err;
  auto const result = read_json(run_dir / pt::workflow::variance_tool::result_file_name);
  EXPECT_EQ(result.at("copies").as_array().size(), 2u);
  for (char const* id : {"workable-0", "copy-0", "copy-1"}) {
    auto const trial = run_dir / "trials" / id;
    EXPECT_EQ(read_json(trial / "EXIT_STATUS.json").at("exit_code").as_int64(), 0) << id;
    EXPECT_TRUE(fs::exists(trial / "CHECKPOINT.bin")) << id;
    auto const out = text_of(trial / "stdout.txt");
    EXPECT_NE(out.find("\nstopped: "), std::string::npos) << id << ": " << out;
  }
}

TEST_F(ToolCli, RefusesToResumeWithOtherOptions) {
  auto const run_dir = dir_.path() / "run";
  ASSERT_EQ(run(simulated(run_dir)).code, 0);
  auto argv = simulated(run_dir);
  argv.push_back("--copies=4");
  auto const r = run(argv);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("copies was 5, now 4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("variance_options.json"), std::string::npos) << r.err;
}

TEST_F(ToolCli, UsageErrorsExitTwo) {
  for (std::vector<std::string> const& args : {std::vector<std::string>{},
                                               {"r", "--copies=1"},
                                               {"r", "--executor=cloud"},
                                               {"r", "--bogus=1"},
                                               {"r", "--arg=novalue"},
                                               {"r", "--"},
                                               {"r", "--executor=simulated", "--", "t"},
                                               {"r", "--slurm-partition=gpu"},
                                               {"r", "--executor=slurm", "--gpus=0"},
                                               {"r", "--executor=slurm", "--slurm-time=0"},
                                               {"r", "--executor=slurm", "--slurm-cpus=x"},
                                               {"r", "--executor=slurm", "--slurm-nodes=2"}}) {
    std::vector<std::string> argv{measure_variance_program};
    argv.insert(argv.end(), args.begin(), args.end());
    auto const r = run(argv);
    EXPECT_EQ(r.code, 2) << testing::PrintToString(args) << r.err;
    EXPECT_NE(r.err.find("usage: proxytask-measure-variance"), std::string::npos);
  }
  EXPECT_EQ(run({measure_variance_program, "--help"}).code, 0);
  EXPECT_EQ(run({status_program}).code, 2);
  EXPECT_EQ(run({status_program, "--help"}).code, 0);
}

TEST_F(ToolCli, ABrokenSearchSpaceFailsBeforeAnythingRuns) {
  std::ofstream(dir_.path() / "bad.json") << R"({"candidates": [{"parameters": {}}]})";
  auto const run_dir = dir_.path() / "run";
  auto const r = run({measure_variance_program, run_dir.string(), "--executor=simulated",
                      "--search-space=" + (dir_.path() / "bad.json").string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find((dir_.path() / "bad.json").string()), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(run_dir / "trials"));
}

TEST_F(ToolCli, StatusOfAFinishedRun) {
  auto const run_dir = dir_.path() / "run";
  ASSERT_EQ(run(simulated(run_dir)).code, 0);
  auto const r = run({status_program, run_dir.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tool:          variance measurement"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("controller:    finished"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("phase:         done"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("trials:        6"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("copy-4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("result:        measured "), std::string::npos) << r.out;

  auto const j = run({status_program, run_dir.string(), "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  auto const doc = pt::parse_json(j.out, "stdout").value();
  EXPECT_FALSE(doc.at("controller_running").as_bool());
  EXPECT_EQ(doc.at("trials").as_array().size(), 6u);
  EXPECT_EQ(doc.at("phase").as_string(), "done");
}

TEST_F(ToolCli, StatusOfADirectoryWithoutARun) {
  auto const r = run({status_program, dir_.path().string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no proxytask tool has polled"), std::string::npos) << r.err;
}

TEST_F(ToolCli, ARunningControllerHoldsTheDirectoryAndStatusSaysSo) {
  auto const run_dir = dir_.path() / "run";
  child_process controller(slow_local(run_dir), dir_.path() / "c.out", dir_.path() / "c.err");
  ASSERT_TRUE(wait_for_running(run_dir, 1));
  auto const r = run({status_program, run_dir.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("controller:    running (pid "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("phase:         find_workable"), std::string::npos) << r.out;

  auto const second = run(slow_local(run_dir));
  EXPECT_EQ(second.code, 1);
  EXPECT_NE(second.err.find("is in use by another controller"), std::string::npos) << second.err;
  kill_trials(run_dir);
}

TEST_F(ToolCli, CtrlCKeepsTheTrialsRunningUnlessAskedToCancelThem) {
  for (bool const cancel : {false, true}) {
    auto const run_dir = dir_.path() / (cancel ? "cancel" : "keep");
    auto argv = slow_local(run_dir);
    if (cancel) argv.insert(argv.begin() + 2, "--cancel-on-exit");
    // Non-terminal stderr: plain progress lines.
    child_process controller(argv, dir_.path() / "c.out", dir_.path() / "c.err");
    ASSERT_TRUE(wait_for_running(run_dir, 1));
    ASSERT_EQ(::kill(controller.pid(), SIGINT), 0);
    auto const code = controller.wait(20s);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 130);
    auto const err = text_of(dir_.path() / "c.err");
    EXPECT_NE(err.find("variance measurement | find_workable | 1 running"), std::string::npos)
        << err;
    EXPECT_NE(err.find("interrupted by a signal"), std::string::npos) << err;
    auto const trial = run_dir / "trials" / "workable-0";
    if (cancel) {
      EXPECT_TRUE(fs::exists(trial / "CANCELLED.json"));
    } else {
      EXPECT_FALSE(fs::exists(trial / "CANCELLED.json"));
      EXPECT_FALSE(fs::exists(trial / "EXIT_STATUS.json")) << "the trial keeps running";
    }
    kill_trials(run_dir);
  }
}

}  // namespace
