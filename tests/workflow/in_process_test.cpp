#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/in_process.hpp>
#include <proxytask/protocol/trainer.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"
#include "toy_tool.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::exec::in_process_executor;
using pt::exec::in_process_trial;
using pt::testing::temp_dir;
using pt::testing::toy_tool;
using namespace std::chrono_literals;

/// A gate that trainers wait at until the test opens it (or their stop token is requested).
class gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  /// Whether the gate opened (false: stop requested first).
  bool wait(std::stop_token const& stop) {
    std::unique_lock lock(mutex_);
    return cv_.wait(lock, stop, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable_any cv_;
  bool open_ = false;
};

/// A callable trainer speaking the trial file protocol. Proxy arguments: total_steps (10),
/// cycle_steps (1), mode: "train" (default), "hold" (wait at the gate before training),
/// "throw", "exit" (returns 7), "oom" (TRIAL_FAILURE.json, returns 3). The curve tends to the
/// spec's "final_accuracy" (0.9). It counts the trials running at once.
struct test_trainer {
  gate hold;
  /// Called after each reported cycle (the toy-tool test holds the first cycle there).
  std::function<void(in_process_trial&, std::int64_t end_step)> after_cycle;
  std::atomic<int> running{0}, max_running{0}, started{0}, finished{0};
  std::mutex mutex;
  std::vector<std::string> start_order;

  int operator()(in_process_trial& t) {
    int const now = ++running;
    for (int m = max_running.load(); now > m && !max_running.compare_exchange_weak(m, now);) {
    }
    ++started;
    {
      std::lock_guard lock(mutex);
      start_order.push_back(t.trial_id);
    }
    struct leave {
      test_trainer& self;
      ~leave() {
        --self.running;
        ++self.finished;
      }
    } const on_exit{*this};
    t.out << "start " << t.trial_id << " seed " << t.args.seed << "\n";
    auto const arg = [&](std::string const& name, std::string fallback) {
      auto const it = t.args.proxy_args.find(name);
      return it == t.args.proxy_args.end() ? fallback : it->second;
    };
    std::int64_t const total =
        pt::protocol::parse_number<std::int64_t>(arg("total_steps", "10")).value();
    std::int64_t const cycle =
        pt::protocol::parse_number<std::int64_t>(arg("cycle_steps", "1")).value();
    std::string const mode = arg("mode", "train");
    if (mode == "throw") throw std::runtime_error("boom in " + t.trial_id);
    if (mode == "exit") return 7;
    auto const spec = pt::protocol::read_model_spec(t.args.model_spec).value();
    double final_accuracy = 0.9;
    if (auto const* a = spec.parameters.if_contains("final_accuracy"))
      final_accuracy = a->to_number<double>();
    auto reporter = pt::protocol::trial_reporter::open(t.args.model_dir).value();
    if (mode == "oom") {
      reporter.report_failure({pt::protocol::failure_kind::oom, "synthetic oom", 0}).value();
      return 3;
    }
    if (mode == "hold" && !hold.wait(t.stop)) {
      t.out << "stopped before training\n";
      return 0;
    }
    std::int64_t const first = reporter.metrics().time.total_training_steps;
    if (reporter.should_stop(first - 1, total).value() != pt::protocol::stop_reason::keep_going)
      return 0;
    for (std::int64_t begin = first; begin < total; begin += cycle) {
      if (t.stop.stop_requested()) {
        t.out << "stopped at step " << begin << "\n";
        return 0;
      }
      std::int64_t const end = std::min(begin + cycle, total) - 1;
      double const x = static_cast<double>(end + 1) / static_cast<double>(total);
      double const accuracy = final_accuracy * (1 - std::exp(-4 * x)) / (1 - std::exp(-4.0));
      reporter.report_accuracy(begin, end, 0.001, total, accuracy).value();
      if (after_cycle) after_cycle(t, end);
      if (reporter.should_stop(end, total).value() != pt::protocol::stop_reason::keep_going) {
        t.out << "stopped: desired pct\n";
        return 0;
      }
    }
    t.out << "completed\n";
    return 0;
  }
};

in_process_executor::options options(std::size_t max_concurrent = 1) {
  return {.max_concurrent = max_concurrent, .poll_interval_s = 0.001};
}

wf::launch_trial trial(std::string id, std::map<std::string, std::string> args = {}) {
  wf::launch_trial l;
  l.trial_id = std::move(id);
  l.spec.model_id = "model-" + l.trial_id;
  l.spec.parameters["final_accuracy"] = 0.8;
  l.seed = 7;
  l.proxy_args = std::move(args);
  return l;
}

/// Observes until every trial has ended (or 10 s have passed).
wf::observation until_all_ended(in_process_executor& exec) {
  auto const deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto obs = exec.observe().value();
    bool ended = true;
    for (auto const& t : obs.trials) ended = ended && wf::is_terminal(t.phase);
    if (ended || std::chrono::steady_clock::now() > deadline) return obs;
    exec.wait_for_next_poll();
  }
}

/// Waits (up to 10 s) until `done()`.
bool eventually(std::function<bool()> const& done) {
  auto const deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

wf::trial_status status(in_process_executor& exec, std::string const& id) {
  auto const obs = exec.observe().value();
  auto const* t = obs.find(id);
  EXPECT_NE(t, nullptr) << id;
  return t ? *t : wf::trial_status{};
}

TEST(InProcessExecutor, RunsATrialToCompletionWithMetricsAndOutput) {
  temp_dir dir;
  test_trainer trainer;
  in_process_executor exec(dir.path(), std::ref(trainer), options());
  ASSERT_TRUE(exec.launch(trial("a", {{"total_steps", "10"}, {"cycle_steps", "5"}})));
  auto const obs = until_all_ended(exec);
  ASSERT_EQ(obs.trials.size(), 1u);
  auto const& t = obs.trials[0];
  EXPECT_EQ(t.trial_id, "a");
  EXPECT_EQ(t.phase, wf::trial_phase::succeeded);
  ASSERT_EQ(t.metrics.points.size(), 2u);
  EXPECT_DOUBLE_EQ(t.metrics.points.back().training_step_pct, 100.0);
  EXPECT_NEAR(t.metrics.points.back().accuracy, 0.8, 1e-12);
  auto const trial_dir = exec.trial_dir("a");
  EXPECT_EQ(pt::read_file(trial_dir / "stdout.txt").value(), "start a seed 7\ncompleted\n");
  EXPECT_TRUE(std::filesystem::exists(trial_dir / "MODEL_SPEC.json"));
  auto const exit = pt::parse_json(pt::read_file(trial_dir / "EXIT_STATUS.json").value(), "x");
  EXPECT_EQ(exit.value().at("exit_code").as_int64(), 0);
}

TEST(InProcessExecutor, GivesTheTrainerTheLaunchConventionsArguments) {
  temp_dir dir;
  pt::protocol::launch_arguments seen;
  in_process_executor exec(
      dir.path(),
      [&](in_process_trial& t) {
        seen = t.args;
        return 0;
      },
      options());
  auto a = trial("a");
  ASSERT_TRUE(exec.launch(a));
  until_all_ended(exec);
  auto b = trial("b", {{"data_pct", "25"}});
  b.seed = 11;
  b.resume_from = "a";
  ASSERT_TRUE(exec.launch(b));
  until_all_ended(exec);
  EXPECT_EQ(seen.model_dir, exec.trial_dir("b"));
  EXPECT_EQ(seen.model_spec, exec.trial_dir("b") / "MODEL_SPEC.json");
  EXPECT_EQ(seen.seed, 11u);
  EXPECT_EQ(seen.resume_from, exec.trial_dir("a"));
  EXPECT_EQ(seen.proxy_args.at("data_pct"), "25");
  auto c = trial("c");
  c.resume_from = "nope";
  EXPECT_EQ(exec.launch(c).error().code, pt::errc::not_found);
  EXPECT_EQ(exec.launch(trial("a")).error().code, pt::errc::failed_precondition);
  EXPECT_EQ(exec.launch(trial("x/y")).error().code, pt::errc::invalid_argument);
}

TEST(InProcessExecutor, RunsTheToyToolLikeTheOtherExecutors) {
  temp_dir dir;
  test_trainer trainer;
  gate raised;
  // Each trial holds after its first cycle until the tool has raised the desired pct, so the
  // tool sees every trial running with metrics (as it needs to) whatever the timing.
  trainer.after_cycle = [&](in_process_trial& t, std::int64_t end) {
    if (end == 0) raised.wait(t.stop);
  };
  in_process_executor exec(dir.path() / "run", std::ref(trainer), options(toy_tool::trials));
  auto const result = wf::run(toy_tool{}, exec,
                              {.run_dir = dir.path() / "run",
                               .max_polls = 100000,
                               .progress =
                                   [&](wf::observation const&, wf::step_summary const& s) {
                                     if (s.desired_pct_changes > 0) raised.open();
                                   }})
                          .value();
  auto const& acc = result.at("final_accuracies").as_array();
  ASSERT_EQ(acc.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(acc[i].to_number<double>(), 0.7 + 0.05 * static_cast<double>(i), 1e-9) << i;
    EXPECT_DOUBLE_EQ(result.at("final_pcts").as_array()[i].to_number<double>(), 100.0);
  }
  EXPECT_EQ(trainer.started.load(), 3);
}

TEST(InProcessExecutor, RespectsTheConcurrencyLimitInFifoOrder) {
  temp_dir dir;
  test_trainer trainer;
  in_process_executor exec(dir.path(), std::ref(trainer), options(2));
  for (std::string id : {"a", "b", "c", "d", "e"})
    ASSERT_TRUE(exec.launch(trial(id, {{"mode", "hold"}})));
  ASSERT_TRUE(eventually([&] { return trainer.running.load() == 2; }));
  auto const obs = exec.observe().value();
  ASSERT_EQ(obs.trials.size(), 5u);
  std::vector<std::string> ids;
  for (auto const& t : obs.trials) ids.push_back(t.trial_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::running);
  EXPECT_EQ(obs.trials[1].phase, wf::trial_phase::running);
  for (std::size_t i = 2; i < 5; ++i) EXPECT_EQ(obs.trials[i].phase, wf::trial_phase::pending);
  {
    std::lock_guard lock(trainer.mutex);
    std::vector<std::string> first(trainer.start_order.begin(), trainer.start_order.end());
    std::sort(first.begin(), first.end());
    EXPECT_EQ(first, (std::vector<std::string>{"a", "b"}));
  }
  trainer.hold.open();
  auto const ended = until_all_ended(exec);
  for (auto const& t : ended.trials) EXPECT_EQ(t.phase, wf::trial_phase::succeeded) << t.trial_id;
  EXPECT_EQ(trainer.max_running.load(), 2);
  EXPECT_EQ(trainer.started.load(), 5);
}

TEST(InProcessExecutor, CancelStopsARunningTrialCooperativelyAndAQueuedOneForGood) {
  temp_dir dir;
  test_trainer trainer;
  in_process_executor exec(dir.path(), std::ref(trainer), options(1));
  ASSERT_TRUE(exec.launch(trial("a", {{"mode", "hold"}})));
  ASSERT_TRUE(exec.launch(trial("b")));
  ASSERT_TRUE(eventually([&] { return trainer.running.load() == 1; }));
  ASSERT_TRUE(exec.cancel("b"));  // queued: never starts
  ASSERT_TRUE(exec.cancel("a"));
  EXPECT_EQ(status(exec, "a").phase, wf::trial_phase::stopped);
  EXPECT_EQ(status(exec, "b").phase, wf::trial_phase::stopped);
  ASSERT_TRUE(eventually([&] { return trainer.finished.load() == 1; }));
  ASSERT_TRUE(eventually(
      [&] { return std::filesystem::exists(exec.trial_dir("a") / "EXIT_STATUS.json"); }));
  auto const obs = until_all_ended(exec);
  EXPECT_EQ(obs.trials.at(0).phase, wf::trial_phase::stopped);
  EXPECT_EQ(obs.trials.at(1).phase, wf::trial_phase::stopped);
  EXPECT_EQ(trainer.started.load(), 1);
  EXPECT_EQ(pt::read_file(exec.trial_dir("a") / "stdout.txt").value(),
            "start a seed 7\nstopped before training\n");
  EXPECT_TRUE(std::filesystem::exists(exec.trial_dir("a") / "CANCELLED.json"));
  EXPECT_TRUE(exec.cancel("a"));  // ended: nothing to do
  EXPECT_EQ(exec.cancel("nope").error().code, pt::errc::not_found);
  EXPECT_EQ(exec.set_desired_pct("nope", 5).error().code, pt::errc::not_found);
}

TEST(InProcessExecutor, ReportsExceptionsExitCodesAndRecordedFailures) {
  temp_dir dir;
  test_trainer trainer;
  in_process_executor exec(dir.path(), std::ref(trainer), options(3));
  ASSERT_TRUE(exec.launch(trial("throws", {{"mode", "throw"}})));
  ASSERT_TRUE(exec.launch(trial("exits", {{"mode", "exit"}})));
  ASSERT_TRUE(exec.launch(trial("oom", {{"mode", "oom"}})));
  auto const obs = until_all_ended(exec);
  ASSERT_EQ(obs.trials.size(), 3u);
  auto const& thrown = obs.trials[0];
  EXPECT_EQ(thrown.phase, wf::trial_phase::failed);
  EXPECT_EQ(thrown.failure, pt::protocol::failure_kind::crashed);
  EXPECT_NE(thrown.failure_message.find("boom in throws"), std::string::npos)
      << thrown.failure_message;
  EXPECT_NE(pt::read_file(exec.trial_dir("throws") / "stderr.txt").value().find("boom in throws"),
            std::string::npos);
  auto const& exited = obs.trials[1];
  EXPECT_EQ(exited.phase, wf::trial_phase::failed);
  EXPECT_EQ(exited.failure, pt::protocol::failure_kind::crashed);
  EXPECT_EQ(exited.failure_message, "the trainer exited with status 7");
  auto const& oom = obs.trials[2];
  EXPECT_EQ(oom.phase, wf::trial_phase::failed);
  EXPECT_EQ(oom.failure, pt::protocol::failure_kind::oom);
  EXPECT_EQ(oom.failure_message, "synthetic oom");
}

TEST(InProcessExecutor, HonoursTheDesiredPctAndItsRaise) {
  temp_dir dir;
  test_trainer trainer;
  in_process_executor exec(dir.path(), std::ref(trainer), options(2));
  auto a = trial("a", {{"total_steps", "10"}});
  a.desired_pct = 50;
  ASSERT_TRUE(exec.launch(a));
  auto b = trial("b", {{"total_steps", "10"}, {"mode", "hold"}});
  b.desired_pct = 30;
  ASSERT_TRUE(exec.launch(b));
  ASSERT_TRUE(exec.set_desired_pct("b", 70));  // before it trains
  trainer.hold.open();
  auto const obs = until_all_ended(exec);
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::succeeded);
  EXPECT_DOUBLE_EQ(obs.trials[0].metrics.points.back().training_step_pct, 50.0);
  EXPECT_EQ(obs.trials[0].metrics.points.size(), 5u);
  EXPECT_EQ(obs.trials[1].phase, wf::trial_phase::succeeded);
  EXPECT_DOUBLE_EQ(obs.trials[1].metrics.points.back().training_step_pct, 70.0);
  EXPECT_EQ(exec.set_desired_pct("a", -1).error().code, pt::errc::invalid_argument);
}

TEST(InProcessExecutor, ARestartListsEndedTrialsAndReportsInterruptedOnesAsLost) {
  temp_dir dir;
  {
    test_trainer trainer;
    in_process_executor exec(dir.path(), std::ref(trainer), options(1));
    ASSERT_TRUE(exec.launch(trial("done", {{"total_steps", "4"}})));
    ASSERT_TRUE(exec.launch(trial("failed", {{"mode", "exit"}})));
    ASSERT_TRUE(exec.launch(trial("cancelled", {{"mode", "hold"}})));
    ASSERT_TRUE(eventually([&] { return trainer.started.load() == 3; }));
    ASSERT_TRUE(exec.cancel("cancelled"));
    ASSERT_TRUE(exec.launch(trial("running", {{"mode", "hold"}})));
    ASSERT_TRUE(exec.launch(trial("queued")));
    ASSERT_TRUE(eventually([&] { return trainer.started.load() == 4; }));
    EXPECT_EQ(status(exec, "running").phase, wf::trial_phase::running);
    EXPECT_EQ(status(exec, "queued").phase, wf::trial_phase::pending);
  }  // the controller goes: "running" is stopped, "queued" never runs
  test_trainer trainer;
  in_process_executor exec(dir.path(), std::ref(trainer), options(1));
  auto const obs = exec.observe().value();
  ASSERT_EQ(obs.trials.size(), 5u);
  EXPECT_EQ(obs.trials[0].trial_id, "done");
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::succeeded);
  EXPECT_EQ(obs.trials[0].metrics.points.size(), 4u);
  EXPECT_EQ(obs.trials[1].trial_id, "failed");
  EXPECT_EQ(obs.trials[1].phase, wf::trial_phase::failed);
  EXPECT_EQ(obs.trials[1].failure, pt::protocol::failure_kind::crashed);
  EXPECT_EQ(obs.trials[1].failure_message, "the trainer exited with status 7");
  EXPECT_EQ(obs.trials[2].trial_id, "cancelled");
  EXPECT_EQ(obs.trials[2].phase, wf::trial_phase::stopped);
  for (std::size_t i : {3u, 4u}) {
    auto const& t = obs.trials[i];
    EXPECT_EQ(t.phase, wf::trial_phase::failed) << t.trial_id;
    EXPECT_EQ(t.failure, pt::protocol::failure_kind::lost) << t.trial_id;
    EXPECT_NE(t.failure_message.find("cannot outlive their controller"), std::string::npos)
        << t.failure_message;
  }
  EXPECT_NE(obs.trials[3].failure_message.find("was running"), std::string::npos);
  EXPECT_NE(obs.trials[4].failure_message.find("was queued"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(exec.trial_dir("running") / "EXIT_STATUS.json"));

  // The new executor refuses the old ids, leaves the old trials alone, and runs new ones.
  EXPECT_EQ(exec.launch(trial("done")).error().code, pt::errc::failed_precondition);
  EXPECT_TRUE(exec.cancel("running"));
  auto resumed = trial("more", {{"total_steps", "8"}});
  resumed.resume_from = "done";
  ASSERT_TRUE(exec.launch(resumed));
  auto const ended = until_all_ended(exec);
  ASSERT_EQ(ended.trials.size(), 6u);
  EXPECT_EQ(ended.trials[3].failure, pt::protocol::failure_kind::lost);
  EXPECT_EQ(ended.trials[5].trial_id, "more");
  EXPECT_EQ(ended.trials[5].phase, wf::trial_phase::succeeded);
  EXPECT_EQ(trainer.started.load(), 1);
}

TEST(InProcessExecutor, RefusesALaunchFileOfANewerSchema) {
  temp_dir dir;
  ASSERT_TRUE(pt::write_file_atomically(dir.path() / "in_process_executor.json",
                                        R"({"schema_version": 99, "launches": []})"));
  in_process_executor exec(
      dir.path(), [](in_process_trial&) { return 0; }, options());
  auto const obs = exec.observe();
  ASSERT_FALSE(obs);
  EXPECT_EQ(obs.error().code, pt::errc::failed_precondition);
  ASSERT_TRUE(pt::write_file_atomically(dir.path() / "in_process_executor.json",
                                        R"({"schema_version": 1, "launches": [{"x": 1}]})"));
  in_process_executor broken(
      dir.path(), [](in_process_trial&) { return 0; }, options());
  auto const bad = broken.observe();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, pt::errc::malformed_file);
  EXPECT_NE(bad.error().context.find("in_process_executor.json#/launches/0/trial_id"),
            std::string::npos)
      << bad.error().context;
}

}  // namespace
