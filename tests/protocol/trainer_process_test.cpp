// The trial file protocol across processes: an example trainer runs as a child process and this
// test drives it as a controller would, through the controller API only. The test is generic
// over the trainer command, so the same cases run the C++ example trainer and the Python one.

#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/protocol/trainer.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <support/child_process.hpp>
#include <support/temp_dir.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using proxytask::testing::child_process;
using proxytask::testing::last_line;

/// A trainer program: a name for the test and the command that starts it.
struct trainer_command {
  std::string name;
  std::vector<std::string> command;
};

void PrintTo(trainer_command const& t, std::ostream* os) { *os << t.name; }

std::vector<trainer_command> trainer_commands() {
  std::vector<trainer_command> out;
#ifdef PROXYTASK_EXAMPLE_TRAINER
  out.push_back({"Cpp", {PROXYTASK_EXAMPLE_TRAINER}});
#endif
#ifdef PROXYTASK_PYTHON3
  out.push_back(
      {"Python", {PROXYTASK_PYTHON3, PROXYTASK_SOURCE_DIR "/examples/python/example_trainer.py"}});
#endif
  return out;
}

/// What a finished trainer left: exit status and outputs.
struct finished {
  int status;
  std::string out, err;
};

class TrainerProcess : public ::testing::TestWithParam<trainer_command> {
 protected:
  void SetUp() override {
    for (auto const& part : GetParam().command)
      if (part.ends_with(".py") && !fs::exists(part)) GTEST_SKIP() << part << " does not exist";
    trial_ = dir_.path() / "trial";
    fs::create_directories(trial_);
  }

  /// Starts the trainer on trial_ with the launch convention's flags and `proxy_args`.
  std::unique_ptr<child_process> start(std::map<std::string, std::string> proxy_args) {
    protocol::launch_arguments args;
    args.model_dir = trial_;
    args.seed = 11;
    args.proxy_args.insert(proxy_args.begin(), proxy_args.end());
    auto const cmd = protocol::make_launch_command(GetParam().command, args).value();
    return std::make_unique<child_process>(cmd.argv, dir_.path() / "stdout.txt",
                                           dir_.path() / "stderr.txt");
  }

  /// Waits for the trainer to end (failing the test after a minute) and collects its outputs.
  finished wait(child_process& child) {
    auto const status = child.wait(60s);
    EXPECT_TRUE(status) << "the trainer did not end within a minute";
    auto const out = pt::read_file(dir_.path() / "stdout.txt");
    auto const err = pt::read_file(dir_.path() / "stderr.txt");
    return {status.value_or(-1), out ? *out : "", err ? *err : ""};
  }

  finished run(std::map<std::string, std::string> proxy_args) {
    auto child = start(std::move(proxy_args));
    return wait(*child);
  }

  pt::testing::temp_dir dir_;
  fs::path trial_;
};

TEST_P(TrainerProcess, StopsAtTheDesiredPct) {
  ASSERT_TRUE(protocol::post_model_spec(trial_, {"m1", {{"final_accuracy", 0.8}}}));
  ASSERT_TRUE(protocol::post_desired_pct(trial_, 30.0));
  auto const r = run({{"total_steps", "1000"}, {"cycle_steps", "100"}});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "stopped: desired_pct_reached") << r.out;
  auto const m = protocol::read_metrics(trial_).value();
  ASSERT_FALSE(m.points.empty());
  EXPECT_GE(m.points.back().training_step_pct, 30.0);
  EXPECT_LT(m.points.back().training_step_pct, 40.0);  // it stopped at the first cycle there
  EXPECT_EQ(m.time.total_training_steps, m.points.back().training_step + 1);
  EXPECT_TRUE(protocol::accuracy_at_pct(m, 30.0));
  EXPECT_FALSE(protocol::accuracy_at_pct(m, 50.0));
  EXPECT_EQ(protocol::read_failure(trial_).error().code, pt::errc::not_found);
}

TEST_P(TrainerProcess, ContinuesAResumedTrialToTheNextDesiredPct) {
  ASSERT_TRUE(protocol::post_desired_pct(trial_, 30.0));
  auto const first = run({{"total_steps", "1000"}, {"cycle_steps", "100"}});
  ASSERT_EQ(first.status, 0) << first.err;
  double const first_secs = protocol::read_metrics(trial_).value().time.total_training_time_in_secs;
  ASSERT_TRUE(protocol::post_desired_pct(trial_, 60.0));  // model selection's next iteration
  auto const second = run({{"total_steps", "1000"}, {"cycle_steps", "100"}});
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(last_line(second.out), "stopped: desired_pct_reached") << second.out;
  auto const m = protocol::read_metrics(trial_).value();
  ASSERT_EQ(m.points.size(), 6u);
  for (std::size_t i = 0; i < m.points.size(); ++i)
    EXPECT_EQ(m.points[i].training_step_pct, 10.0 * static_cast<double>(i + 1));
  EXPECT_GE(m.time.total_training_time_in_secs, first_secs);
}

TEST_P(TrainerProcess, StopsAtItsNextCycleWhenToldToStopNow) {
  // 100 cycles of 0.1 s: time enough to post the signal while it trains.
  auto child = start({{"total_steps", "1000"}, {"cycle_steps", "10"}, {"step_seconds", "0.01"}});
  std::size_t points_before = 0;  // wait until it has reported a cycle: it is training
  auto const deadline = std::chrono::steady_clock::now() + 30s;
  while (points_before == 0 && std::chrono::steady_clock::now() < deadline) {
    if (auto const m = protocol::read_metrics(trial_)) points_before = m->points.size();
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_GT(points_before, 0u) << "the trainer reported nothing within 30 s";
  ASSERT_TRUE(protocol::post_desired_pct(trial_, 0.0));
  // Read after posting, so the bound below holds however long this process is descheduled.
  std::size_t const points_after_post = protocol::read_metrics(trial_).value().points.size();
  auto const r = wait(*child);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "stopped: desired_pct_reached") << r.out;
  auto const m = protocol::read_metrics(trial_).value();
  // It may finish the cycle that was running when the signal came, and no more.
  EXPECT_LE(m.points.size(), points_after_post + 1);
  EXPECT_LT(m.points.back().training_step_pct, 100.0);
}

TEST_P(TrainerProcess, StopsAtTheTimeLimit) {
  ASSERT_TRUE(protocol::post_time_limit(trial_, 0.25 / 3600.0));  // 0.25 s; cycles of 0.1 s
  auto const r = run({{"total_steps", "1000"}, {"cycle_steps", "50"}, {"step_seconds", "0.002"}});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "stopped: time_limit_reached") << r.out;
  auto const m = protocol::read_metrics(trial_).value();
  EXPECT_GE(m.time.total_training_time_in_secs, 0.25 / 3600.0 * 3600.0);
  EXPECT_LT(m.points.back().training_step_pct, 100.0);
}

TEST_P(TrainerProcess, StopsWhenTheControllerIsLost) {
  ASSERT_TRUE(protocol::post_heartbeat(trial_, protocol::unix_now() - 3600.0));  // > 15 min old
  auto const r = run({{"total_steps", "1000"}, {"cycle_steps", "100"}});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "stopped: controller_lost") << r.out;
  if (auto const m = protocol::read_metrics(trial_)) {
    EXPECT_LE(m->points.size(), 1u);
  }
}

TEST_P(TrainerProcess, CompletesWhileTheHeartbeatIsFresh) {
  ASSERT_TRUE(protocol::post_heartbeat(trial_));
  auto const r = run({{"total_steps", "300"}, {"cycle_steps", "100"}});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(last_line(r.out), "stopped: completed") << r.out;
  auto const m = protocol::read_metrics(trial_).value();
  ASSERT_EQ(m.points.size(), 3u);
  EXPECT_EQ(m.points.back().training_step_pct, 100.0);
  EXPECT_EQ(m.points.back().training_step, 299);
  EXPECT_EQ(m.time.total_training_steps, 300);
  for (auto const& p : m.points) {
    EXPECT_GE(p.accuracy, 0.0);
    EXPECT_LE(p.accuracy, 1.0);
  }
  EXPECT_EQ(protocol::accuracy_at_pct(m, 100.0), m.points.back().accuracy);
}

TEST_P(TrainerProcess, RecordsAFailureAndExitsThree) {
  auto const r = run({{"total_steps", "1000"}, {"cycle_steps", "100"}, {"fail", "oom"}});
  EXPECT_EQ(r.status, 3) << r.err;
  auto const f = protocol::read_failure(trial_).value();
  EXPECT_EQ(f.kind, protocol::failure_kind::oom);
}

// Numbered instances printed by name: gtest_discover_tests then names the ctest tests
// ".../StopsAtTheDesiredPct/Cpp" (its pretty values), with no object dump in the name.
INSTANTIATE_TEST_SUITE_P(ExampleTrainers, TrainerProcess, ::testing::ValuesIn(trainer_commands()));
// A build without the examples (PROXYTASK_BUILD_EXAMPLES=OFF) and without Python has none.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TrainerProcess);

}  // namespace
