// proxytask-latency-calculator as a user runs it: --once over a run directory of reference-trainer
// model specs (positive, finite latencies; a bad spec and a bad proxy argument give failed
// measurements with their reason), a second --once that measures nothing again, watching a run
// directory until SIGTERM, and usage errors.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/latency.hpp>
#include <proxytask/workflow/tool.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"
#include "tool_programs.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pt::testing::child_process;
using pt::testing::latency_calculator_built;
using pt::testing::latency_calculator_program;
using pt::testing::temp_dir;
using pt::testing::text_of;

using outcome = pt::testing::program_outcome;

class LatencyCalculatorCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!latency_calculator_built) GTEST_SKIP() << "proxytask-latency-calculator is not built";
  }

  fs::path run_dir() const { return dir_.path() / "run"; }
  fs::path trial(std::string const& id) const { return run_dir() / "trials" / id; }

  /// A trial directory with a MODEL_SPEC.json of the given parameters (JSON text).
  fs::path add_trial(std::string const& id, std::string const& parameters) const {
    fs::create_directories(trial(id));
    std::ofstream(trial(id) / "MODEL_SPEC.json")
        << R"({"model_id": "m-)" << id << R"(", "parameters": )" << parameters << "}";
    return trial(id);
  }

  outcome run(std::vector<std::string> args, std::chrono::milliseconds timeout = 60s) {
    args.insert(args.begin(), latency_calculator_program);
    return pt::testing::run_program(args, dir_.path(), std::to_string(calls_++), timeout);
  }

  temp_dir dir_;
  int calls_ = 0;
};

TEST_F(LatencyCalculatorCli, OnceMeasuresEachTrialsModelAndRecordsABadSpec) {
  add_trial("a", R"({"hidden": [256, 128], "activation": "relu", "dropout": 0.1})");
  add_trial("b", R"({"hidden": [64], "activation": "gelu", "dropout": 0})");
  add_trial("c", R"({"hidden": [64], "activation": "sigmoid", "dropout": 0})");
  auto const o = run({run_dir().string(), "--once", "--runs=5", "--device-name=test box"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_NE(o.out.find("measured 2, failed 1"), std::string::npos) << o.out;
  for (auto const* id : {"a", "b"}) {
    auto const m = pt::protocol::read_model_latency(trial(id));
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_TRUE(std::isfinite(m->latency_ms)) << id;
    EXPECT_GT(m->latency_ms, 0) << id;
    EXPECT_EQ(m->device, "test box");
    EXPECT_GT(m->measured_unix_s, 1e9);
  }
  auto const bad = pt::protocol::read_model_latency(trial("c"));
  ASSERT_TRUE(bad) << bad.error().message();
  EXPECT_TRUE(std::isnan(bad->latency_ms));
  EXPECT_NE(bad->message.find("MODEL_SPEC.json#/parameters/activation"), std::string::npos)
      << bad->message;
  // The raw file: null for the failed one, as the protocol says.
  auto const doc = pt::parse_json(text_of(trial("c") / "MODEL_LATENCY.json"), "c").value();
  EXPECT_TRUE(doc.as_object().at("latency").is_null());

  // A second pass measures nothing again.
  auto const before = text_of(trial("a") / "MODEL_LATENCY.json");
  auto const again = run({run_dir().string(), "--once", "--runs=5"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find("measured 0, failed 0"), std::string::npos) << again.out;
  EXPECT_EQ(text_of(trial("a") / "MODEL_LATENCY.json"), before);
}

TEST_F(LatencyCalculatorCli, AppliesTheTrialsRecordedProxyArguments) {
  // LOCAL_TRIAL.json as the local-process executor records a launch: the calculator builds the
  // model the trial trains, so a proxy argument the trainer would refuse fails the measurement.
  auto const launch = [](std::string const& id, std::string const& scale) {
    wf::launch_trial l;
    l.trial_id = id;
    l.spec.model_id = "m-" + id;
    l.proxy_args = {{"model_scale", scale}, {"downsample", "1"}};
    return boost::json::object{{"launch_index", 0}, {"launch", boost::json::value_from(l)}};
  };
  std::string const parameters = R"({"hidden": [512, 512], "activation": "tanh", "dropout": 0})";
  pt::write_json_file(add_trial("scaled", parameters) / "LOCAL_TRIAL.json",
                      launch("scaled", "0.25"))
      .value();
  pt::write_json_file(add_trial("refused", parameters) / "LOCAL_TRIAL.json",
                      launch("refused", "-1"))
      .value();
  auto const o = run({run_dir().string(), "--once", "--runs=3", "--quiet"});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out, "");
  auto const scaled = pt::protocol::read_model_latency(trial("scaled")).value();
  EXPECT_GT(scaled.latency_ms, 0);
  auto const refused = pt::protocol::read_model_latency(trial("refused")).value();
  EXPECT_TRUE(std::isnan(refused.latency_ms));
  EXPECT_NE(refused.message.find("model_scale=-1"), std::string::npos) << refused.message;
}

TEST_F(LatencyCalculatorCli, WatchesTheRunDirectoryUntilSigterm) {
  fs::create_directories(run_dir());
  auto const out = dir_.path() / "watch-out";
  auto const err = dir_.path() / "watch-err";
  child_process p(
      {latency_calculator_program, run_dir().string(), "--poll-interval=0.05", "--runs=3"}, out,
      err);
  add_trial("late", R"({"hidden": [32], "activation": "relu", "dropout": 0})");
  auto const deadline = std::chrono::steady_clock::now() + 30s;
  while (!fs::exists(trial("late") / "MODEL_LATENCY.json") &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(fs::exists(trial("late") / "MODEL_LATENCY.json")) << text_of(err);
  EXPECT_GT(pt::protocol::read_model_latency(trial("late")).value().latency_ms, 0);
  ASSERT_EQ(::kill(p.pid(), SIGTERM), 0);
  auto const code = p.wait(10s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 0) << text_of(err);
  EXPECT_NE(text_of(out).find("late: "), std::string::npos) << text_of(out);
}

TEST_F(LatencyCalculatorCli, UsageErrorsExitWithTwoAndHelpWithZero) {
  auto const none = run({});
  EXPECT_EQ(none.code, 2);
  EXPECT_NE(none.err.find("which run directory?"), std::string::npos) << none.err;
  auto const unknown = run({run_dir().string(), "--fast"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown option --fast"), std::string::npos) << unknown.err;
  auto const bad = run({run_dir().string(), "--batch-size=0"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--batch-size"), std::string::npos) << bad.err;
  auto const help = run({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("usage: proxytask-latency-calculator RUN_DIR"), std::string::npos);
  EXPECT_FALSE(fs::exists(run_dir()));  // nothing written by a refused command
}

}  // namespace
