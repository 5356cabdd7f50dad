#include <proxytask/core/atomic_file.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/controller.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::exec::simulated_executor;
using pt::exec::simulated_options;
using pt::testing::temp_dir;

simulated_options options(std::uint64_t seed = 7) {
  simulated_options o;
  o.poll_interval_s = 100;
  o.steps_per_second = 1;  // 10% per poll
  o.total_steps = 1000;
  o.cycle_steps = 50;
  o.seed = seed;
  return o;
}

wf::launch_trial trial(std::string id, std::optional<double> desired = std::nullopt) {
  wf::launch_trial l;
  l.trial_id = std::move(id);
  l.spec.model_id = "model-" + l.trial_id;
  l.seed = 3;
  l.desired_pct = desired;
  return l;
}

wf::trial_status status_of(simulated_executor& e, std::string const& id) {
  auto const obs = e.observe().value();
  auto const* t = obs.find(id);
  EXPECT_NE(t, nullptr) << id;
  return t ? *t : wf::trial_status{};
}

void poll(simulated_executor& e, int n) {
  for (int i = 0; i < n; ++i) e.wait_for_next_poll();
}

TEST(SimulatedExecutor, TrainsToTheEndAlongTheCurve) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  auto l = trial("a");
  l.spec.parameters["final_accuracy"] = 0.8;
  ASSERT_TRUE(e.launch(l));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "trials" / "a" / "MODEL_SPEC.json"));
  EXPECT_EQ(status_of(e, "a").phase, wf::trial_phase::running);
  poll(e, 1);
  auto s = status_of(e, "a");
  EXPECT_EQ(s.phase, wf::trial_phase::running);
  ASSERT_EQ(s.metrics.points.size(), 2u);  // 100 steps in cycles of 50
  EXPECT_DOUBLE_EQ(s.metrics.points.back().training_step_pct, 10.0);
  poll(e, 9);
  s = status_of(e, "a");
  EXPECT_EQ(s.phase, wf::trial_phase::succeeded);
  ASSERT_EQ(s.metrics.points.size(), 20u);
  EXPECT_NEAR(s.metrics.points.back().accuracy, 0.8, 0.01);
  EXPECT_LT(s.metrics.points.front().accuracy, s.metrics.points.back().accuracy);
  EXPECT_DOUBLE_EQ(e.observe().value().now_unix_s, options().start_unix_s + 1000);
}

TEST(SimulatedExecutor, FinalAccuracyFromTheModelIdIsInRange) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(e.launch(trial("m" + std::to_string(i))));
  poll(e, 10);
  for (auto const& t : e.observe().value().trials) {
    EXPECT_EQ(t.phase, wf::trial_phase::succeeded);
    EXPECT_GE(t.metrics.points.back().accuracy, 0.6 - 0.01);
    EXPECT_LE(t.metrics.points.back().accuracy, 0.95 + 0.01);
  }
}

TEST(SimulatedExecutor, StopsAtTheDesiredPctAndHonoursARaise) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  ASSERT_TRUE(e.launch(trial("a", 30)));
  ASSERT_TRUE(e.launch(trial("b", 20)));
  poll(e, 1);
  ASSERT_TRUE(e.set_desired_pct("b", 40));
  poll(e, 10);
  auto const a = status_of(e, "a");
  EXPECT_EQ(a.phase, wf::trial_phase::succeeded);
  EXPECT_DOUBLE_EQ(a.metrics.points.back().training_step_pct, 30.0);
  auto const b = status_of(e, "b");
  EXPECT_EQ(b.phase, wf::trial_phase::succeeded);
  EXPECT_DOUBLE_EQ(b.metrics.points.back().training_step_pct, 40.0);
}

TEST(SimulatedExecutor, DesiredPctZeroStopsBeforeTraining) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  ASSERT_TRUE(e.launch(trial("a", 0)));
  poll(e, 1);
  auto const a = status_of(e, "a");
  EXPECT_EQ(a.phase, wf::trial_phase::succeeded);
  EXPECT_TRUE(a.metrics.points.empty());
}

TEST(SimulatedExecutor, CancelStopsATrial) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  ASSERT_TRUE(e.launch(trial("a")));
  poll(e, 1);
  ASSERT_TRUE(e.cancel("a"));
  poll(e, 3);
  auto const a = status_of(e, "a");
  EXPECT_EQ(a.phase, wf::trial_phase::stopped);
  EXPECT_EQ(a.metrics.points.size(), 2u);
  EXPECT_FALSE(e.cancel("nope"));
  EXPECT_FALSE(e.set_desired_pct("nope", 10));
}

TEST(SimulatedExecutor, RefusesToLaunchATrialTwice) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  ASSERT_TRUE(e.launch(trial("a")));
  auto const again = e.launch(trial("a"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, pt::errc::failed_precondition);
}

void expect_failure(double simulated_options::*rate, pt::protocol::failure_kind kind) {
  temp_dir dir;
  auto o = options();
  o.*rate = 1.0;
  simulated_executor e(dir.path(), o);
  ASSERT_TRUE(e.launch(trial("a")));
  poll(e, 10);
  auto const a = status_of(e, "a");
  EXPECT_EQ(a.phase, wf::trial_phase::failed);
  ASSERT_TRUE(a.failure);
  EXPECT_EQ(*a.failure, kind);
  EXPECT_FALSE(a.failure_message.empty());
  auto const f = pt::protocol::read_failure(dir.path() / "trials" / "a").value();
  EXPECT_EQ(f.kind, kind);
  if (kind == pt::protocol::failure_kind::diverged) {
    ASSERT_FALSE(a.metrics.points.empty());
    EXPECT_TRUE(std::isnan(a.metrics.points.back().accuracy));
  }
  if (kind == pt::protocol::failure_kind::oom) {
    EXPECT_TRUE(a.metrics.points.empty());
  }
}

TEST(SimulatedExecutor, FailsWithEachKindAtRateOne) {
  expect_failure(&simulated_options::oom_rate, pt::protocol::failure_kind::oom);
  expect_failure(&simulated_options::divergence_rate, pt::protocol::failure_kind::diverged);
  expect_failure(&simulated_options::crash_rate, pt::protocol::failure_kind::crashed);
}

std::string metrics_text(std::uint64_t seed, double crash_rate) {
  temp_dir dir;
  auto o = options(seed);
  o.crash_rate = crash_rate;
  o.total_steps = 300;  // 3 polls
  simulated_executor e(dir.path(), o);
  std::string all;
  for (int i = 0; i < 4; ++i) {
    std::string const id = "t" + std::to_string(i);
    EXPECT_TRUE(e.launch(trial(id)));
  }
  poll(e, 3);
  for (int i = 0; i < 4; ++i) {
    auto const text = pt::read_file(dir.path() / "trials" / ("t" + std::to_string(i)) /
                                    "TRIAL_TRAINING_METRICS.json");
    all += text ? *text : std::string("none");
    all += "|";
  }
  return all;
}

TEST(SimulatedExecutor, IsDeterministicForASeed) {
  EXPECT_EQ(metrics_text(1, 0.5), metrics_text(1, 0.5));
  EXPECT_NE(metrics_text(1, 0.5), metrics_text(2, 0.5));
}

TEST(SimulatedExecutor, ANewExecutorOnTheSameDirectoryContinues) {
  temp_dir base;
  {
    simulated_executor e(base.path(), options());
    ASSERT_TRUE(e.launch(trial("a")));
    poll(e, 10);
  }
  temp_dir dir;
  {
    simulated_executor e(dir.path(), options());
    ASSERT_TRUE(e.launch(trial("a")));
    poll(e, 4);
  }
  simulated_executor e(dir.path(), options());
  EXPECT_DOUBLE_EQ(e.now(), options().start_unix_s + 400);
  EXPECT_EQ(status_of(e, "a").metrics.points.size(), 8u);
  poll(e, 6);
  EXPECT_EQ(pt::read_file(dir.path() / "trials/a/TRIAL_TRAINING_METRICS.json").value(),
            pt::read_file(base.path() / "trials/a/TRIAL_TRAINING_METRICS.json").value());
}

TEST(SimulatedExecutor, ResumeFromContinuesTheEarlierTrialsMetrics) {
  temp_dir dir;
  simulated_executor e(dir.path(), options());
  ASSERT_TRUE(e.launch(trial("a", 20)));
  poll(e, 3);
  auto b = trial("b", 50);
  b.spec.model_id = "model-a";
  b.resume_from = "a";
  ASSERT_TRUE(e.launch(b));
  poll(e, 5);
  auto const s = status_of(e, "b");
  EXPECT_EQ(s.phase, wf::trial_phase::succeeded);
  ASSERT_EQ(s.metrics.points.size(), 10u);
  EXPECT_DOUBLE_EQ(s.metrics.points[3].training_step_pct, 20.0);
  EXPECT_DOUBLE_EQ(s.metrics.points.back().training_step_pct, 50.0);
}

}  // namespace
