#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/temp_dir.hpp"
#include "toy_tool.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::exec::local_process_executor;
using pt::testing::temp_dir;
using pt::testing::toy_tool;
using namespace std::chrono_literals;

class LocalProcessExecutor : public ::testing::Test {
 protected:
  void SetUp() override {
#ifndef PROXYTASK_EXAMPLE_TRAINER
    GTEST_SKIP() << "the example trainer is not built";
#endif
  }

  static std::string trainer() {
#ifdef PROXYTASK_EXAMPLE_TRAINER
    return PROXYTASK_EXAMPLE_TRAINER;
#else
    return "";
#endif
  }

  static local_process_executor::options options(std::size_t max_concurrent = 1) {
    local_process_executor::options o;
    o.trainer_command = {trainer()};
    o.max_concurrent = max_concurrent;
    o.poll_interval_s = 0.02;
    o.grace_secs = 0.2;
    return o;
  }

  static wf::launch_trial trial(std::string id, std::map<std::string, std::string> args) {
    wf::launch_trial l;
    l.trial_id = std::move(id);
    l.spec.model_id = "model-" + l.trial_id;
    l.spec.parameters["final_accuracy"] = 0.8;
    l.seed = 7;
    l.proxy_args = std::move(args);
    return l;
  }

  /// Observes until every trial has ended (or 10 s have passed).
  static wf::observation until_all_ended(local_process_executor& exec) {
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto obs = exec.observe().value();
      bool ended = true;
      for (auto const& t : obs.trials) ended = ended && wf::is_terminal(t.phase);
      if (ended || std::chrono::steady_clock::now() > deadline) return obs;
      exec.wait_for_next_poll();
    }
  }

  /// Waits (up to 10 s) for a file to appear.
  static bool wait_for_file(std::filesystem::path const& p) {
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    while (!std::filesystem::exists(p)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  static pid_t pid_of(local_process_executor const& exec, std::string const& id) {
    auto const path = exec.trial_dir(id) / "PID.json";
    auto const doc = pt::parse_json(pt::read_file(path).value(), path.string()).value();
    return static_cast<pid_t>(doc.at("pid").to_number<std::int64_t>());
  }

  /// Waits (up to 10 s) until the process has ended (reaping it if it is our child).
  static bool wait_for_exit(pid_t pid) {
    auto const deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      int status = 0;
      pid_t const r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && ::kill(pid, 0) != 0)) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
  }

  temp_dir dir_;
};

TEST_F(LocalProcessExecutor, RunsATrialToCompletionWithMetrics) {
  local_process_executor exec(dir_.path(), options());
  ASSERT_TRUE(exec.launch(trial("a", {{"total_steps", "10"}, {"cycle_steps", "5"}})));
  auto const obs = until_all_ended(exec);
  ASSERT_EQ(obs.trials.size(), 1u);
  auto const& t = obs.trials[0];
  EXPECT_EQ(t.trial_id, "a");
  EXPECT_EQ(t.phase, wf::trial_phase::succeeded);
  ASSERT_EQ(t.metrics.points.size(), 2u);
  EXPECT_DOUBLE_EQ(t.metrics.points.back().training_step_pct, 100.0);
  EXPECT_NEAR(t.metrics.points.back().accuracy, 0.8, 0.01);
  auto const out = pt::read_file(exec.trial_dir("a") / "stdout.txt").value();
  EXPECT_NE(out.find("stopped: completed"), std::string::npos) << out;
  EXPECT_TRUE(std::filesystem::exists(exec.trial_dir("a") / "EXIT_STATUS.json"));
}

TEST_F(LocalProcessExecutor, StopsTheTrialAtItsDesiredPct) {
  local_process_executor exec(dir_.path(), options());
  auto l = trial("a", {{"total_steps", "10"}, {"cycle_steps", "1"}});
  l.desired_pct = 50;
  ASSERT_TRUE(exec.launch(l));
  auto const obs = until_all_ended(exec);
  ASSERT_EQ(obs.trials.size(), 1u);
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::succeeded);
  ASSERT_FALSE(obs.trials[0].metrics.points.empty());
  EXPECT_DOUBLE_EQ(obs.trials[0].metrics.points.back().training_step_pct, 50.0);
}

TEST_F(LocalProcessExecutor, ReportsTheFailureTheTrainerRecorded) {
  local_process_executor exec(dir_.path(), options());
  ASSERT_TRUE(exec.launch(trial("a", {{"total_steps", "10"}, {"fail", "oom"}})));
  auto const obs = until_all_ended(exec);
  ASSERT_EQ(obs.trials.size(), 1u);
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::failed);
  EXPECT_EQ(obs.trials[0].failure, pt::protocol::failure_kind::oom);
}

TEST_F(LocalProcessExecutor, ReportsANonZeroExitWithoutFailureFileAsCrashed) {
  auto o = options();
  o.trainer_command = {"/bin/sh", "-c", "echo boom >&2; exit 7", "fake-trainer"};
  local_process_executor exec(dir_.path(), o);
  ASSERT_TRUE(exec.launch(trial("a", {})));
  auto const obs = until_all_ended(exec);
  ASSERT_EQ(obs.trials.size(), 1u);
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::failed);
  EXPECT_EQ(obs.trials[0].failure, pt::protocol::failure_kind::crashed);
  EXPECT_NE(obs.trials[0].failure_message.find('7'), std::string::npos);
  EXPECT_EQ(pt::read_file(exec.trial_dir("a") / "stderr.txt").value(), "boom\n");
}

TEST_F(LocalProcessExecutor, CancelStopsARunningTrial) {
  local_process_executor exec(dir_.path(), options());
  ASSERT_TRUE(exec.launch(
      trial("a", {{"total_steps", "10000"}, {"cycle_steps", "1"}, {"step_seconds", "0.01"}})));
  EXPECT_EQ(exec.observe().value().trials.at(0).phase, wf::trial_phase::running);
  ASSERT_TRUE(exec.cancel("a"));
  EXPECT_EQ(exec.observe().value().trials.at(0).phase, wf::trial_phase::stopped);
  // SIGTERM ends the trainer; the launcher records its status.
  ASSERT_TRUE(wait_for_file(exec.trial_dir("a") / "EXIT_STATUS.json"));
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "a")));
  EXPECT_EQ(exec.observe().value().trials.at(0).phase, wf::trial_phase::stopped);
  EXPECT_EQ(exec.cancel("nope").error().code, pt::errc::not_found);
}

TEST_F(LocalProcessExecutor, CancelSendsSigkillAfterTheGracePeriod) {
  auto o = options();
  o.trainer_command = {"/bin/sh", "-c", "trap '' TERM; sleep 30", "stubborn-trainer"};
  local_process_executor exec(dir_.path(), o);
  ASSERT_TRUE(exec.launch(trial("a", {})));
  std::this_thread::sleep_for(50ms);  // let the trainer install its trap
  pid_t const pid = pid_of(exec, "a");
  ASSERT_TRUE(exec.cancel("a"));
  auto const deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    EXPECT_EQ(exec.observe().value().trials.at(0).phase, wf::trial_phase::stopped);
    int status = 0;
    pid_t const r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      ASSERT_TRUE(WIFSIGNALED(status));
      EXPECT_EQ(WTERMSIG(status), SIGKILL);
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the trial was never killed";
    exec.wait_for_next_poll();
  }
}

TEST_F(LocalProcessExecutor, RunsQueuedTrialsOneAfterTheOther) {
  local_process_executor exec(dir_.path(), options(1));
  std::map<std::string, std::string> const args{
      {"total_steps", "10"}, {"cycle_steps", "1"}, {"step_seconds", "0.02"}};
  ASSERT_TRUE(exec.launch(trial("a", args)));
  ASSERT_TRUE(exec.launch(trial("b", args)));
  auto const first = exec.observe().value();
  ASSERT_EQ(first.trials.size(), 2u);
  EXPECT_EQ(first.trials[0].trial_id, "a");
  EXPECT_EQ(first.trials[1].trial_id, "b");
  EXPECT_EQ(first.trials[1].phase, wf::trial_phase::pending);
  auto const deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto const obs = exec.observe().value();
    int running = 0;
    for (auto const& t : obs.trials) running += t.phase == wf::trial_phase::running;
    EXPECT_LE(running, 1);
    if (wf::is_terminal(obs.trials[0].phase) && wf::is_terminal(obs.trials[1].phase)) {
      EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::succeeded);
      EXPECT_EQ(obs.trials[1].phase, wf::trial_phase::succeeded);
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    exec.wait_for_next_poll();
  }
}

TEST_F(LocalProcessExecutor, ANewExecutorSeesTheSameTrialsAfterARestart) {
  std::map<std::string, std::string> const slow{
      {"total_steps", "10000"}, {"cycle_steps", "1"}, {"step_seconds", "0.01"}};
  {
    local_process_executor exec(dir_.path(), options(1));
    ASSERT_TRUE(exec.launch(trial("a", slow)));
    ASSERT_TRUE(exec.launch(trial("b", {{"total_steps", "10"}})));
  }
  local_process_executor exec(dir_.path(), options(1));  // a controller restart
  auto const obs = exec.observe().value();
  ASSERT_EQ(obs.trials.size(), 2u);
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::running);
  EXPECT_EQ(obs.trials[1].phase, wf::trial_phase::pending);
  ASSERT_TRUE(exec.cancel("a"));  // frees the slot: the queued trial starts
  auto const ended = until_all_ended(exec);
  EXPECT_EQ(ended.trials[0].phase, wf::trial_phase::stopped);
  EXPECT_EQ(ended.trials[1].phase, wf::trial_phase::succeeded);
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "a")));
}

TEST_F(LocalProcessExecutor, CollectsATrialThatFinishedWhileNoExecutorExisted) {
  {
    local_process_executor exec(dir_.path(), options());
    ASSERT_TRUE(exec.launch(trial("a", {{"total_steps", "10"}, {"cycle_steps", "5"}})));
  }
  ASSERT_TRUE(wait_for_file(dir_.path() / "trials" / "a" / "EXIT_STATUS.json"));
  local_process_executor exec(dir_.path(), options());
  auto const obs = exec.observe().value();
  ASSERT_EQ(obs.trials.size(), 1u);
  EXPECT_EQ(obs.trials[0].phase, wf::trial_phase::succeeded);
  EXPECT_EQ(obs.trials[0].metrics.points.size(), 2u);
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "a")));
}

TEST_F(LocalProcessExecutor, GivesEachRunningTrialItsOwnGpuSlot) {
  auto o = options(4);
  o.trainer_command = {"/bin/sh", "-c",
                       "echo \"$CUDA_VISIBLE_DEVICES\" > \"$PROXYTASK_MODEL_DIR/gpu.txt\"; "
                       "sleep 0.3",
                       "gpu-trainer"};
  o.gpu_slots = {"3", "5"};
  local_process_executor exec(dir_.path(), o);
  for (std::string id : {"a", "b", "c"}) ASSERT_TRUE(exec.launch(trial(id, {})));
  auto const first = exec.observe().value();
  EXPECT_EQ(first.trials.at(2).phase, wf::trial_phase::pending);  // two slots only
  auto const obs = until_all_ended(exec);
  std::set<std::string> first_two;
  for (std::string id : {"a", "b", "c"}) {
    auto const gpu = pt::read_file(exec.trial_dir(id) / "gpu.txt").value();
    EXPECT_TRUE(gpu == "3\n" || gpu == "5\n") << id << ": " << gpu;
    if (id != "c") first_two.insert(gpu);
  }
  EXPECT_EQ(first_two.size(), 2u);
  for (auto const& t : obs.trials) EXPECT_EQ(t.phase, wf::trial_phase::succeeded) << t.trial_id;
}

TEST_F(LocalProcessExecutor, RunsTheToyToolLikeTheSimulatedExecutor) {
  auto o = options(toy_tool::trials);
  o.trainer_command = {trainer(), "--total_steps=20", "--cycle_steps=1", "--step_seconds=0.05"};
  local_process_executor exec(dir_.path() / "run", o);
  auto const result =
      wf::run(toy_tool{}, exec, {.run_dir = dir_.path() / "run", .max_polls = 1000}).value();
  auto const& acc = result.at("final_accuracies").as_array();
  ASSERT_EQ(acc.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(acc[i].to_number<double>(), 0.7 + 0.05 * static_cast<double>(i), 0.01) << i;
    EXPECT_DOUBLE_EQ(result.at("final_pcts").as_array()[i].to_number<double>(), 100.0);
  }
}

// ---- The kill window between spawning a launcher and writing PID.json -------------------------

/// A trainer that appends a line to <model_dir>/runs.txt each time it runs; with --block=1 it
/// sleeps 30 s (to hold the only slot), else 0.2 s.
std::vector<std::string> counting_trainer() {
  return {"/bin/sh", "-c",
          "for a; do case $a in --model_dir=*) d=${a#--model_dir=};; esac; done; "
          "echo run >> \"$d/runs.txt\"; "
          "case \"$*\" in *--block=1*) exec sleep 30;; *) exec sleep 0.2;; esac",
          "counting-trainer"};
}

/// The argv of the launcher of `dir` (no GPU slot) running `trainer` with the launch flags, as
/// local_process_executor spawns it.
std::vector<std::string> launcher_argv(std::filesystem::path const& dir,
                                       std::vector<std::string> const& trainer) {
  pt::protocol::launch_arguments args;
  args.model_dir = dir;
  args.seed = 7;
  auto const cmd = pt::protocol::make_launch_command(trainer, args).value();
  std::vector<std::string> argv{
      "/bin/sh", "-c", pt::exec::detail::launcher_script, "proxytask-launcher", dir.string(), ""};
  argv.insert(argv.end(), cmd.argv.begin(), cmd.argv.end());
  return argv;
}

void write_intent(std::filesystem::path const& dir, double unix_s) {
  ASSERT_TRUE(pt::write_json_file(dir / "START_INTENT.json",
                                  boost::json::object{{"intent_unix_s", unix_s}}));
}

double now_unix_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// Leaves trial "a" queued behind a blocking trial "x" (one slot), as a controller that was
/// killed would.
void queue_behind_a_blocker(std::filesystem::path const& run_dir,
                            local_process_executor::options const& o) {
  local_process_executor exec(run_dir, o);
  wf::launch_trial x;
  x.trial_id = "x";
  x.spec.model_id = "x";
  x.proxy_args = {{"block", "1"}};
  ASSERT_TRUE(exec.launch(x));
  wf::launch_trial a;
  a.trial_id = "a";
  a.spec.model_id = "a";
  a.seed = 7;
  ASSERT_TRUE(exec.launch(a));
  ASSERT_EQ(exec.observe().value().trials.at(1).phase, wf::trial_phase::pending);
}

TEST_F(LocalProcessExecutor, ARestartAdoptsALauncherSpawnedBeforeTheControllerDied) {
  auto o = options(1);
  o.trainer_command = counting_trainer();
  o.start_grace_secs = 60;
  queue_behind_a_blocker(dir_.path(), o);
  auto const a_dir = dir_.path() / "trials" / "a";
  // The dead controller's last acts: the intent, then the spawn; no PID.json, queue not saved.
  write_intent(a_dir, now_unix_s());
  pt::testing::child_process launcher(launcher_argv(a_dir, counting_trainer()),
                                      a_dir / "stdout.txt", a_dir / "stderr.txt");
  ASSERT_TRUE(wait_for_file(a_dir / "LAUNCHER_PID.json"));
  EXPECT_FALSE(std::filesystem::exists(a_dir / "PID.json"));

  local_process_executor exec(dir_.path(), o);  // the restarted controller
  auto const obs = exec.observe().value();
  EXPECT_EQ(obs.trials.at(1).phase, wf::trial_phase::running);  // picked up, not queued
  ASSERT_TRUE(exec.cancel("x"));
  auto const ended = until_all_ended(exec);
  EXPECT_EQ(ended.trials.at(0).phase, wf::trial_phase::stopped);
  EXPECT_EQ(ended.trials.at(1).phase, wf::trial_phase::succeeded);
  // The launcher is this test's child; the executor may have reaped it already.
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "a")));
  EXPECT_EQ(pt::read_file(a_dir / "runs.txt").value(), "run\n");  // ran once
  // PID.json, completed by the new executor, names the launcher the dead controller spawned.
  auto const claim = pt::parse_json(pt::read_file(a_dir / "LAUNCHER_PID.json").value(), "c");
  EXPECT_EQ(pid_of(exec, "a"), static_cast<pid_t>(claim.value().at("pid").as_int64()));
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "x")));
}

TEST_F(LocalProcessExecutor, AnIntentWithoutALauncherWaitsForTheGracePeriodThenStarts) {
  auto o = options(1);
  o.trainer_command = counting_trainer();
  o.start_grace_secs = 60;
  queue_behind_a_blocker(dir_.path(), o);
  auto const a_dir = dir_.path() / "trials" / "a";
  write_intent(a_dir, now_unix_s());  // killed between the intent and the spawn
  local_process_executor exec(dir_.path(), o);
  ASSERT_TRUE(exec.cancel("x"));
  ASSERT_TRUE(wait_for_exit(pid_of(exec, "x")));
  // The slot is free, but a launcher may still be about to claim "a": it is left alone.
  for (int i = 0; i < 3; ++i) {
    auto const obs = exec.observe().value();
    EXPECT_EQ(obs.trials.at(1).phase, wf::trial_phase::pending);
    exec.wait_for_next_poll();
  }
  EXPECT_FALSE(std::filesystem::exists(a_dir / "LAUNCHER_PID.json"));
  EXPECT_FALSE(std::filesystem::exists(a_dir / "runs.txt"));
  // Once the grace period is over (an intent as old as that), nothing was spawned: start it.
  write_intent(a_dir, now_unix_s() - 120);
  auto const ended = until_all_ended(exec);
  EXPECT_EQ(ended.trials.at(1).phase, wf::trial_phase::succeeded);
  EXPECT_EQ(pt::read_file(a_dir / "runs.txt").value(), "run\n");
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "a")));
}

TEST_F(LocalProcessExecutor, ALaunchRecordedButNeverQueuedIsQueuedAfterARestart) {
  auto o = options(1);
  o.trainer_command = counting_trainer();
  queue_behind_a_blocker(dir_.path(), o);
  auto const a_dir = dir_.path() / "trials" / "a";
  // The dead controller wrote a's LOCAL_TRIAL.json but not the queue that lists it.
  auto const queue_file = dir_.path() / "local_process_executor.json";
  auto queue = pt::parse_json(pt::read_file(queue_file).value(), queue_file.string()).value();
  queue.as_object()["pending"] = boost::json::array{};
  queue.as_object()["launched"] = 1;
  ASSERT_TRUE(pt::write_json_file(queue_file, queue));
  local_process_executor exec(dir_.path(), o);
  EXPECT_EQ(exec.observe().value().trials.at(1).phase, wf::trial_phase::pending);
  ASSERT_TRUE(exec.cancel("x"));
  ASSERT_TRUE(wait_for_exit(pid_of(exec, "x")));
  auto const ended = until_all_ended(exec);
  EXPECT_EQ(ended.trials.at(1).phase, wf::trial_phase::succeeded)
      << ended.trials.at(1).failure_message;
  EXPECT_EQ(pt::read_file(a_dir / "runs.txt").value(), "run\n");
  EXPECT_TRUE(wait_for_exit(pid_of(exec, "a")));
}

TEST_F(LocalProcessExecutor, TwoLaunchersForOneTrialRunItsTrainerOnce) {
  auto const a_dir = dir_.path() / "a";
  std::filesystem::create_directories(a_dir);
  pt::testing::child_process first(launcher_argv(a_dir, counting_trainer()), a_dir / "out1.txt",
                                   a_dir / "err1.txt");
  pt::testing::child_process second(launcher_argv(a_dir, counting_trainer()), a_dir / "out2.txt",
                                    a_dir / "err2.txt");
  EXPECT_EQ(first.wait(10s), 0);
  EXPECT_EQ(second.wait(10s), 0);
  EXPECT_EQ(pt::read_file(a_dir / "runs.txt").value(), "run\n");
  EXPECT_EQ(pt::read_file(a_dir / "EXIT_STATUS.json").value(), "{\"exit_code\": 0}\n");
}

TEST_F(LocalProcessExecutor, ALauncherThatFindsTheTrialCancelledDoesNotRunTheTrainer) {
  auto const a_dir = dir_.path() / "a";
  std::filesystem::create_directories(a_dir);
  ASSERT_TRUE(pt::write_file_atomically(a_dir / "CANCELLED.json",
                                        "{\"sigterm_unix_s\": 1, \"sigkill_sent\": false}\n"));
  pt::testing::child_process launcher(launcher_argv(a_dir, counting_trainer()),
                                      a_dir / "stdout.txt", a_dir / "stderr.txt");
  EXPECT_EQ(launcher.wait(10s), 0);
  EXPECT_FALSE(std::filesystem::exists(a_dir / "runs.txt"));
  auto const exit = pt::parse_json(pt::read_file(a_dir / "EXIT_STATUS.json").value(), "e");
  EXPECT_EQ(exit.value().at("trainer_started").as_bool(), false);
}

}  // namespace
