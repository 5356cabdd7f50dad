// proxytask-search-proxy as a user runs it: a simulated search over a grid (the cheapest proxy
// that correlates wins; the state, the result and well-formed plots are written), usage errors
// refused before anything runs, and a local-process search with the protocol example trainer
// (a proxy whose trials fail, a slow one and a fast one) that is SIGKILLed mid-run and resumed
// to the result of an uninterrupted run.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/proxy_search.hpp>

#include <gtest/gtest.h>

#include <chrono>
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
using pt::testing::search_proxy_built;
using pt::testing::search_proxy_program;
using pt::testing::temp_dir;
using pt::testing::text_of;
using pt::testing::tool_programs_built;

boost::json::value read_json(fs::path const& p) {
  return pt::parse_json(pt::read_file(p).value(), p.string()).value();
}

class SearchProxyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!search_proxy_built || !tool_programs_built)
      GTEST_SKIP() << "the example programs are not built";
    // Eight reference models: the example trainer's (and the simulation's) curves tend to the
    // spec's final_accuracy, which is also the full-training score.
    std::ofstream reference(dir_.path() / "reference.json");
    reference << "[";
    for (int m = 0; m < 8; ++m) {
      double const a = 0.5 + 0.02 * m;
      reference << (m ? "," : "") << R"({"spec": {"model_id": "m-)" << m
                << R"(", "parameters": {"final_accuracy": )" << a << R"(}}, "accuracy": )" << a
                << "}";
    }
    reference << "]";
    reference.close();
    // The local proxies: one whose trials run out of memory, a slow one, a fast one.
    std::ofstream(dir_.path() / "proxies.json")
        << R"({"proxies": [{"name": "failing", "args": {"fail": "oom"}},
                           {"name": "slow", "args": {"step_seconds": 0.02}},
                           {"name": "fast", "args": {"step_seconds": 0.005}}]})";
  }

  pt::testing::program_outcome run(std::vector<std::string> argv,
                                   std::chrono::milliseconds timeout = 120s) {
    return pt::testing::run_program(argv, dir_.path(), std::to_string(calls_++), timeout);
  }

  std::vector<std::string> simulated(fs::path const& run_dir,
                                     std::vector<std::string> const& more = {}) const {
    std::vector<std::string> argv{search_proxy_program,
                                  run_dir.string(),
                                  "--executor=simulated",
                                  "--reference=" + (dir_.path() / "reference.json").string(),
                                  "--grid=data_pct=25,50,75,100",
                                  "--early-stop-if-not-best",
                                  "--quiet"};
    argv.insert(argv.end(), more.begin(), more.end());
    return argv;
  }

  /// 8 models at once; the example trainer's cycles are 2% of 500 steps.
  std::vector<std::string> local(fs::path const& run_dir) const {
    return {search_proxy_program,
            run_dir.string(),
            "--reference=" + (dir_.path() / "reference.json").string(),
            "--proxies=" + (dir_.path() / "proxies.json").string(),
            "--seed=3",
            "--max-concurrent=8",
            "--poll-interval=0.02",
            "--arg=total_steps=500",
            "--arg=cycle_steps=10",
            "--arg=step_seconds=0.01",
            "--quiet",
            "--",
            example_trainer_program};
  }

  /// The plot files the program listed, each well-formed.
  static std::size_t plots(std::string const& out) {
    std::size_t n = 0;
    for (std::size_t at = out.find(".svg"); at != std::string::npos;
         at = out.find(".svg", at + 1)) {
      auto const begin = out.rfind(' ', at) + 1;
      fs::path const file = out.substr(begin, at + 4 - begin);
      auto const doc = parse_xml(text_of(file));
      EXPECT_TRUE(doc) << file << ": " << doc.error << " at " << doc.offset;
      ++n;
    }
    return n;
  }

  temp_dir dir_;
  int calls_ = 0;
};

TEST_F(SearchProxyCli, ASimulatedGridSearchNamesTheCheapestCorrelatingProxy) {
  auto const run_dir = dir_.path() / "run";
  auto const r = run(simulated(run_dir));
  ASSERT_EQ(r.code, 0) << r.err;
  auto const result = read_json(run_dir / wf::proxy_search_tool::result_file_name);
  EXPECT_EQ(result.at("status"), "found") << r.out;
  // The best is the successful proxy with the lowest training time.
  std::string cheapest;
  double lowest = 1e300;
  for (auto const& p : result.at("proxy_tasks").as_array())
    if (p.at("stopping_state") == "Met desired correlation" &&
        p.at("final_training_time_in_hours").to_number<double>() < lowest) {
      lowest = p.at("final_training_time_in_hours").to_number<double>();
      cheapest = std::string(p.at("name").as_string());
    }
  EXPECT_EQ(result.at("best_proxy_task_name"), boost::json::value(cheapest)) << r.out;
  // A quarter of the data ranks the models mostly by their error; half of it correlates later
  // than three quarters, which correlate as early as all of it, at 3/4 of the cost.
  EXPECT_EQ(cheapest, "data_pct=75") << r.out;
  auto const state = read_json(run_dir / wf::proxy_search_tool::state_file_name);
  auto const& map = state.at("proxy_tasks_map").as_object();
  EXPECT_NE(map.at("data_pct=25").at("proxy_task_stats").at("stopping_state"),
            "Met desired correlation");
  EXPECT_NE(r.out.find("status:  found: best proxy \"data_pct=75\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("advice:  set the proxy's training steps"), std::string::npos) << r.out;
  EXPECT_GE(plots(r.out), 4u) << r.out;
  EXPECT_TRUE(fs::exists(run_dir / "proxies.svg"));
  // The same command again: the finished run's result, nothing trained again.
  auto const again = run(simulated(run_dir));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(read_json(run_dir / wf::proxy_search_tool::result_file_name), result);
  // Other options on the same run directory are refused.
  auto const other = run(simulated(run_dir, {"--method=spearman"}));
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.err.find("other options: method"), std::string::npos) << other.err;
}

TEST_F(SearchProxyCli, AnEndedSearchIsExtendedWithMoreProxies) {
  auto const run_dir = dir_.path() / "run";
  auto with_grid = [&](std::string grid) {
    auto argv = simulated(run_dir);
    argv.at(4) = "--grid=data_pct=" + grid;
    return argv;
  };
  auto const first = run(with_grid("25,75"));
  ASSERT_EQ(first.code, 0) << first.err;
  auto const before = read_json(run_dir / wf::proxy_search_tool::state_file_name);
  auto const extended = run(with_grid("25,75,100"));
  ASSERT_EQ(extended.code, 0) << extended.err;
  auto const state = read_json(run_dir / wf::proxy_search_tool::state_file_name);
  auto const& map = state.at("proxy_tasks_map").as_object();
  ASSERT_EQ(map.size(), 3u);
  for (char const* kept : {"data_pct=25", "data_pct=75"})
    EXPECT_EQ(map.at(kept), before.at("proxy_tasks_map").at(kept)) << kept;
  EXPECT_EQ(map.at("data_pct=100").at("phase"), "done");
  EXPECT_NE(extended.out.find("data_pct=100"), std::string::npos) << extended.out;
  // Not an extension (a proxy left out): refused.
  auto const other = run(with_grid("75,100"));
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.err.find("other options: proxies"), std::string::npos) << other.err;
}

TEST_F(SearchProxyCli, UsageErrorsExitTwoBeforeAnythingRuns) {
  auto const run_dir = dir_.path() / "never";
  auto const reference = "--reference=" + (dir_.path() / "reference.json").string();
  for (auto const& argv : std::vector<std::vector<std::string>>{
           {search_proxy_program, run_dir.string(), "--grid=data_pct=25"},
           {search_proxy_program, run_dir.string(), reference},
           {search_proxy_program, run_dir.string(), reference, "--grid=data_pct=25",
            "--proxies=p.json"},
           {search_proxy_program, run_dir.string(), reference, "--grid=data_pct"},
           {search_proxy_program, run_dir.string(), reference, "--grid=x=1", "--method=pearson"},
           {search_proxy_program, run_dir.string(), reference, "--grid=x=1", "--bootstrap=0",
            "--confidence-k=2"},
           {search_proxy_program, run_dir.string(), reference, "--grid=x=1",
            "--search-space=s.json"}}) {
    auto const r = run(argv);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("usage: proxytask-search-proxy"), std::string::npos) << r.err;
  }
  // A reference file that does not parse is an error naming it.
  std::ofstream(dir_.path() / "bad.json") << R"([{"spec": {"model_id": "m"}, "accuracy": "x"}])";
  auto const bad = run({search_proxy_program, run_dir.string(), "--executor=simulated",
                        "--reference=" + (dir_.path() / "bad.json").string(), "--grid=x=1"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("bad.json"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(run_dir));
}

TEST_F(SearchProxyCli, ARecheckMeasuresEveryProxyAtThePctAndNamesNoBest) {
  auto const run_dir = dir_.path() / "recheck";
  std::vector<std::string> const argv{search_proxy_program,
                                      run_dir.string(),
                                      "--executor=simulated",
                                      "--reference=" + (dir_.path() / "reference.json").string(),
                                      "--grid=data_pct=75,100",
                                      "--stop-at-pct=40",
                                      "--seed=11",
                                      "--quiet"};
  auto const r = run(argv);
  ASSERT_EQ(r.code, 0) << r.err;
  auto const result = read_json(run_dir / wf::proxy_search_tool::result_file_name);
  EXPECT_EQ(result.at("status"), "measured") << r.out;
  EXPECT_TRUE(result.at("best_proxy_task_name").is_null());
  EXPECT_EQ(result.at("stop_at_pct").to_number<double>(), 40.0);
  auto const& proxies = result.at("proxy_tasks").as_array();
  ASSERT_EQ(proxies.size(), 2u);
  for (auto const& p : proxies) {
    EXPECT_EQ(p.at("stopping_state"), "Ran till completion") << p;
    EXPECT_EQ(p.at("stop_rule"), "stop_at_pct") << p;
    EXPECT_EQ(p.at("final_training_steps"), 400) << p;  // the simulation trains 1000 steps
    EXPECT_EQ(p.at("at_stop").at("training_step_pct").to_number<double>(), 40.0) << p;
    EXPECT_EQ(p.at("at_stop").at("valid_pairs"), 8) << p;
  }
  // The simulated trainers honoured the launch's desired pct: none trained beyond 40%.
  auto const state = read_json(run_dir / wf::proxy_search_tool::state_file_name);
  for (auto const& kv : state.at("proxy_tasks_map").as_object())
    EXPECT_EQ(kv.value()
                  .at("proxy_task_stats")
                  .at("training_step_pct")
                  .as_array()
                  .back()
                  .to_number<double>(),
              40.0)
        << kv.key();
  EXPECT_NE(r.out.find("status:  measured: re-check at 40% of the steps, no best proxy named"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("advice:  \"data_pct=100\" at 40% (400 steps"), std::string::npos) << r.out;
  EXPECT_GE(plots(r.out), 2u) << r.out;
  EXPECT_EQ(read_json(run_dir / "search_options.json").at("stop_at_pct").to_number<double>(), 40.0);
  // The same command again: the finished run's result; without --stop-at-pct: refused.
  auto const again = run(argv);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(read_json(run_dir / wf::proxy_search_tool::result_file_name), result);
  auto without = argv;
  std::erase(without, std::string("--stop-at-pct=40"));
  auto const other = run(without);
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.err.find("other options: stop_at_pct was"), std::string::npos) << other.err;
  EXPECT_NE(other.err.find("now not set"), std::string::npos) << other.err;
}

TEST_F(SearchProxyCli, ARecheckWithAStopRuleOrOutsideZeroToHundredIsAUsageError) {
  auto const run_dir = dir_.path() / "never";
  auto const reference = "--reference=" + (dir_.path() / "reference.json").string();
  for (auto const* rule : {"--early-stop-if-not-best", "--desired-accuracy=0.7",
                           "--time-limit-hours=1", "--confidence-k=2"}) {
    auto const r = run({search_proxy_program, run_dir.string(), "--executor=simulated", reference,
                        "--grid=data_pct=50", "--stop-at-pct=50", rule});
    EXPECT_EQ(r.code, 2) << rule << ": " << r.err;
    EXPECT_NE(r.err.find("--stop-at-pct turns the stop rules off"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("usage: proxytask-search-proxy"), std::string::npos) << r.err;
  }
  for (auto const* pct : {"--stop-at-pct=0", "--stop-at-pct=100.5", "--stop-at-pct=nan"}) {
    auto const r = run({search_proxy_program, run_dir.string(), "--executor=simulated", reference,
                        "--grid=data_pct=50", pct});
    EXPECT_EQ(r.code, 2) << pct << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(run_dir));
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

/// What must not depend on an interruption: every proxy's end, and the best proxy. (Not the
/// steps and times: training times are measured wall time, and which trials have reported a
/// cycle by the poll that decides depends on timing, with or without a kill.)
boost::json::array ends_of(boost::json::value const& result) {
  boost::json::array out;
  for (auto const& p : result.at("proxy_tasks").as_array())
    out.push_back({p.at("name"), p.at("stopping_state"), p.at("stop_rule")});
  out.push_back(result.at("best_proxy_task_name"));
  return out;
}

TEST_F(SearchProxyCli, ALocalSearchKilledMidRunResumesToTheUninterruptedResult) {
  auto const uninterrupted = dir_.path() / "uninterrupted";
  auto const r = run(local(uninterrupted));
  ASSERT_EQ(r.code, 0) << r.err;
  auto const expected = read_json(uninterrupted / wf::proxy_search_tool::result_file_name);
  EXPECT_EQ(expected.at("best_proxy_task_name"), "fast") << r.out;
  auto const& proxies = expected.at("proxy_tasks").as_array();
  EXPECT_EQ(proxies.at(0).at("stopping_state"), "Excess trial failures") << r.out;
  EXPECT_EQ(proxies.at(1).at("stopping_state"), "Met desired correlation") << r.out;
  EXPECT_EQ(proxies.at(2).at("stopping_state"), "Met desired correlation") << r.out;
  EXPECT_GE(plots(r.out), 3u) << r.out;

  // Killed while the second proxy trains, then resumed.
  auto const killed = dir_.path() / "killed";
  {
    child_process controller(local(killed), dir_.path() / "k.out", dir_.path() / "k.err");
    auto const deadline = std::chrono::steady_clock::now() + 60s;
    bool mid_run = false;
    while (!mid_run && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
      auto const text = pt::read_file(killed / wf::proxy_search_tool::state_file_name);
      if (!text) continue;
      auto const doc = pt::parse_json(*text, "state");
      if (!doc) continue;
      auto const& slow = doc->at("proxy_tasks_map").at("slow");
      mid_run = slow.at("phase") == "running" &&
                !slow.at("proxy_task_stats").at("training_steps").as_array().empty();
    }
    ASSERT_TRUE(mid_run) << text_of(dir_.path() / "k.err");
  }  // SIGKILL
  auto const resumed = run(local(killed));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  auto const result = read_json(killed / wf::proxy_search_tool::result_file_name);
  EXPECT_EQ(ends_of(result), ends_of(expected));
  wait_for_trials(uninterrupted);
  wait_for_trials(killed);
}

}  // namespace
