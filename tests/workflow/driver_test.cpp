#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/signals.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "toy_tool.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::testing::temp_dir;
using pt::testing::toy_tool;

pt::exec::simulated_options sim_options() {
  pt::exec::simulated_options o;
  o.poll_interval_s = 100;
  o.steps_per_second = 2;  // 200 steps = 20% per poll
  o.total_steps = 1000;
  o.cycle_steps = 100;
  o.seed = 42;
  return o;
}

boost::json::value read_json(std::filesystem::path const& p) {
  return pt::parse_json(pt::read_file(p).value(), p.string()).value();
}

boost::json::value run_uninterrupted(std::filesystem::path const& dir) {
  pt::exec::simulated_executor exec(dir, sim_options());
  return wf::run(toy_tool{}, exec, {.run_dir = dir}).value();
}

TEST(WorkflowDriver, FinishesTheToyToolWithItsFinalAccuracies) {
  temp_dir dir;
  auto const result = run_uninterrupted(dir.path());
  auto const& acc = result.at("final_accuracies").as_array();
  ASSERT_EQ(acc.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(acc[i].to_number<double>(), 0.7 + 0.05 * i, 0.01) << i;
    EXPECT_DOUBLE_EQ(result.at("final_pcts").as_array()[i].to_number<double>(), 100.0);
  }
  EXPECT_EQ(read_json(dir.path() / "toy_result.json"), result);
}

TEST(WorkflowDriver, WritesTheStateFileWithSchemaVersion) {
  temp_dir dir;
  run_uninterrupted(dir.path());
  auto const state = read_json(dir.path() / toy_tool::state_file_name);
  EXPECT_EQ(state.at("schema_version").as_int64(), toy_tool::schema_version);
  EXPECT_TRUE(state.at("launched").as_bool());
  EXPECT_TRUE(state.at("raised").as_bool());
}

// Wraps the simulation; at each action, records whether the state file already holds the step's
// next state (persist BEFORE acting).
struct recording_executor {
  pt::exec::simulated_executor inner;
  std::filesystem::path state_file;
  std::vector<std::string> violations;
  int launches = 0, raises = 0;

  boost::json::value state() const { return read_json(state_file); }
  pt::result<void> launch(wf::launch_trial const& l) {
    ++launches;
    if (!state().at("launched").as_bool()) violations.push_back("launch before persist");
    auto const journal = read_json(state_file.parent_path() / wf::launch_journal_file_name);
    bool found = false;
    for (auto const& e : journal.at("launches").as_array())
      found = found || e.at("trial_id").as_string() == l.trial_id;
    if (!found) violations.push_back("launch before its intent was journalled");
    return inner.launch(l);
  }
  pt::result<wf::observation> observe() { return inner.observe(); }
  pt::result<void> set_desired_pct(std::string const& id, double pct) {
    ++raises;
    if (!state().at("raised").as_bool()) violations.push_back("raise before persist");
    return inner.set_desired_pct(id, pct);
  }
  pt::result<void> cancel(std::string const& id) { return inner.cancel(id); }
  void wait_for_next_poll() { inner.wait_for_next_poll(); }
};
static_assert(pt::exec::executor<recording_executor>);

TEST(WorkflowDriver, PostsTheControllersHeartbeatInRunningTrials) {
  // Each poll, every running trial gets controller_alive_timestamp.json with the observation's
  // time (the virtual clock here): its last value is from the last poll that saw it running.
  temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  wf::run(toy_tool{}, exec, {.run_dir = dir.path()}).value();
  for (int i = 0; i < 3; ++i) {
    std::string const id = toy_tool::trial_id(i);
    auto const file = pt::exec::trial_directory(dir.path(), id) / "controller_alive_timestamp.json";
    auto const heartbeat =
        pt::protocol::parse_heartbeat(pt::read_file(file).value(), file.string());
    ASSERT_TRUE(heartbeat) << id;
    EXPECT_GT(heartbeat->timestamp, sim_options().start_unix_s) << id;
    EXPECT_LT(heartbeat->timestamp, exec.now())
        << id << ": the trial had finished by the last poll";
  }
}

TEST(WorkflowDriver, PersistsTheNextStateBeforeActing) {
  temp_dir dir;
  recording_executor exec{pt::exec::simulated_executor(dir.path(), sim_options()),
                          dir.path() / toy_tool::state_file_name,
                          {}};
  ASSERT_TRUE(wf::run(toy_tool{}, exec, {.run_dir = dir.path()}));
  EXPECT_EQ(exec.launches, 3);
  EXPECT_EQ(exec.raises, 3);
  EXPECT_TRUE(exec.violations.empty()) << exec.violations.front();
}

void expect_each_trial_launched_once(std::filesystem::path const& dir) {
  auto const journal = read_json(dir / wf::launch_journal_file_name);
  auto const& launches = journal.at("launches").as_array();
  ASSERT_EQ(launches.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(launches[i].at("trial_id").as_string(), toy_tool::trial_id(i));
    EXPECT_TRUE(launches[i].at("launched").as_bool());
  }
}

TEST(WorkflowDriver, ResumesAfterARestartWithTheSameResult) {
  temp_dir base;
  auto const expected = run_uninterrupted(base.path());
  for (std::size_t k : {1u, 2u, 4u}) {
    temp_dir dir;
    {
      pt::exec::simulated_executor exec(dir.path(), sim_options());
      auto const first = wf::run(toy_tool{}, exec, {.run_dir = dir.path(), .max_polls = k});
      ASSERT_FALSE(first) << k;
      EXPECT_EQ(first.error().code, pt::errc::cancelled) << k;
    }
    pt::exec::simulated_executor exec(dir.path(), sim_options());  // a controller restart
    auto const resumed = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
    ASSERT_TRUE(resumed) << k << ": " << resumed.error().message();
    EXPECT_EQ(*resumed, expected) << k;
    expect_each_trial_launched_once(dir.path());
  }
}

TEST(WorkflowDriver, ResumesAcrossManyOnePollRestarts) {
  temp_dir base;
  auto const expected = run_uninterrupted(base.path());
  temp_dir dir;
  for (int restarts = 0; restarts < 100; ++restarts) {
    pt::exec::simulated_executor exec(dir.path(), sim_options());
    auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path(), .max_polls = 1});
    if (r) {
      EXPECT_EQ(*r, expected);
      expect_each_trial_launched_once(dir.path());
      return;
    }
    ASSERT_EQ(r.error().code, pt::errc::cancelled) << r.error().message();
  }
  FAIL() << "did not finish";
}

TEST(WorkflowDriver, RelaunchesOnlyJournalledIntentsWhoseTrialDoesNotExist) {
  temp_dir dir;
  // A controller killed between launching t0 and recording it: an intent, and the trial exists.
  wf::launch_trial l;
  l.trial_id = "t0";
  l.spec.model_id = "model-0";
  l.spec.parameters["final_accuracy"] = 0.7;
  l.seed = 100;
  l.desired_pct = 50;
  {
    pt::exec::simulated_executor exec(dir.path(), sim_options());
    ASSERT_TRUE(exec.launch(l));
  }
  boost::json::array launches;
  launches.push_back(
      {{"trial_id", "t0"}, {"launched", false}, {"launch", boost::json::value_from(l)}});
  ASSERT_TRUE(pt::write_json_file(dir.path() / wf::launch_journal_file_name,
                                  {{"schema_version", 1}, {"launches", launches}}));
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  // The toy tool's initial state launches t0..t2; t0 must not be launched again.
  auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  expect_each_trial_launched_once(dir.path());
}

TEST(WorkflowDriver, RefusesARunDirectoryLockedByAnotherController) {
  temp_dir dir;
  auto const held = wf::detail::run_lock::acquire(dir.path());
  ASSERT_TRUE(held);
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::failed_precondition);
  EXPECT_NE(r.error().message().find(dir.path().string()), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << r.error().message();
}

TEST(WorkflowDriver, RefusesANewerSchemaVersionAndKeepsTheFile) {
  temp_dir dir;
  auto const path = dir.path() / toy_tool::state_file_name;
  std::string const text =
      R"({"schema_version": 99, "launched": true, "raised": false, "advances": 1})";
  ASSERT_TRUE(pt::write_file_atomically(path, text));
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::failed_precondition);
  EXPECT_NE(r.error().message().find("schema_version 99"), std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find(path.string()), std::string::npos);
  EXPECT_EQ(pt::read_file(path).value(), text);
}

TEST(WorkflowDriver, ReportsABrokenStateFileAndKeepsIt) {
  temp_dir dir;
  auto const path = dir.path() / toy_tool::state_file_name;
  for (std::string const& text : {std::string("{\"schema_version\": 1, \"launched\": tru"),
                                  std::string("{\"launched\": true}"),
                                  std::string("{\"schema_version\": 1, \"launched\": 3}")}) {
    ASSERT_TRUE(pt::write_file_atomically(path, text));
    pt::exec::simulated_executor exec(dir.path(), sim_options());
    auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, pt::errc::malformed_file) << text;
    EXPECT_NE(r.error().message().find(path.string()), std::string::npos) << r.error().message();
    EXPECT_EQ(pt::read_file(path).value(), text);
  }
  auto const r2 = pt::read_file(path);
  EXPECT_TRUE(r2);
}

TEST(WorkflowDriver, NamesTheMissingSchemaVersionByPointer) {
  temp_dir dir;
  auto const path = dir.path() / toy_tool::state_file_name;
  ASSERT_TRUE(pt::write_file_atomically(path, "{\"launched\": true}"));
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find(path.string() + "#/schema_version"), std::string::npos)
      << r.error().message();
}

TEST(WorkflowDriver, ReturnsCancelledOnSigintAndResumes) {
  temp_dir base;
  auto const expected = run_uninterrupted(base.path());
  temp_dir dir;
  {
    pt::exec::simulated_executor exec(dir.path(), sim_options());
    wf::run_options options{.run_dir = dir.path()};
    options.progress = [](wf::observation const&, wf::step_summary const& s) {
      if (s.poll == 2) std::raise(SIGINT);
    };
    auto const r = wf::run(toy_tool{}, exec, options);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, pt::errc::cancelled);
    EXPECT_NE(r.error().message().find("signal"), std::string::npos) << r.error().message();
    EXPECT_EQ(read_json(dir.path() / toy_tool::state_file_name).at("advances").as_int64(), 3);
  }
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const resumed = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(resumed) << resumed.error().message();
  EXPECT_EQ(*resumed, expected);
}

TEST(WorkflowDriver, ReportsProgressEachPoll) {
  temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  std::size_t polls = 0, launches = 0, raises = 0;
  bool finished = false;
  wf::run_options options{.run_dir = dir.path()};
  options.progress = [&](wf::observation const&, wf::step_summary const& s) {
    EXPECT_EQ(s.poll, polls++);
    launches += s.launches;
    raises += s.desired_pct_changes;
    finished = finished || s.finished;
  };
  ASSERT_TRUE(wf::run(toy_tool{}, exec, options));
  EXPECT_EQ(launches, 3u);
  EXPECT_EQ(raises, 3u);
  EXPECT_TRUE(finished);
}

// A controller that dies after persisting a step but before acting on all of it: here the
// executor fails the first raise (set_desired_pct), as a kill at that moment would leave it.
struct failing_raise_executor {
  pt::exec::simulated_executor inner;
  bool failed = false;
  pt::result<void> launch(wf::launch_trial const& l) { return inner.launch(l); }
  pt::result<wf::observation> observe() { return inner.observe(); }
  pt::result<void> set_desired_pct(std::string const& id, double pct) {
    if (!failed) {
      failed = true;
      return pt::make_error(pt::errc::internal, "killed before the raise");
    }
    return inner.set_desired_pct(id, pct);
  }
  pt::result<void> cancel(std::string const& id) { return inner.cancel(id); }
  void wait_for_next_poll() { inner.wait_for_next_poll(); }
};
static_assert(pt::exec::executor<failing_raise_executor>);

TEST(WorkflowDriver, ReplaysJournalledCommandsThatAKilledControllerDidNotDo) {
  temp_dir base;
  auto const expected = run_uninterrupted(base.path());
  temp_dir dir;
  {
    failing_raise_executor exec{pt::exec::simulated_executor(dir.path(), sim_options())};
    auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("killed before the raise"), std::string::npos);
  }
  // The state says "raised", so the tool will not raise again: the journal must.
  EXPECT_TRUE(read_json(dir.path() / toy_tool::state_file_name).at("raised").as_bool());
  auto const pending = read_json(dir.path() / wf::launch_journal_file_name).at("pending");
  ASSERT_EQ(pending.as_array().size(), 3u);
  EXPECT_EQ(pending.as_array()[0].at("command").as_string(), "set_desired_pct");
  EXPECT_EQ(pending.as_array()[0].at("pct").to_number<double>(), 100.0);

  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const resumed = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(resumed) << resumed.error().message();
  EXPECT_EQ(*resumed, expected);  // every trial trained to 100%, not stopped at 50%
  EXPECT_TRUE(
      read_json(dir.path() / wf::launch_journal_file_name).at("pending").as_array().empty());
}

TEST(WorkflowDriver, ReportsAMalformedPendingCommandByPointer) {
  temp_dir dir;
  auto const path = dir.path() / wf::launch_journal_file_name;
  ASSERT_TRUE(pt::write_json_file(
      path, {{"schema_version", 1},
             {"launches", boost::json::array{}},
             {"pending", boost::json::array{{{"command", "reboot"}, {"trial_id", "t0"}}}}}));
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const r = wf::run(toy_tool{}, exec, {.run_dir = dir.path()});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::malformed_file);
  EXPECT_NE(r.error().message().find(path.string() + "#/pending/0/command"), std::string::npos)
      << r.error().message();
}

TEST(WorkflowDriver, WritesTheRunsStatusAfterEveryPoll) {
  temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  wf::run_options options{.run_dir = dir.path()};
  int polls = 0;
  options.progress = [&](wf::observation const& obs, wf::step_summary const& s) {
    ++polls;
    auto const status = read_json(dir.path() / wf::status_file_name);
    EXPECT_EQ(status.at("tool").as_string(), toy_tool::state_file_name);
    EXPECT_EQ(status.at("trials").as_array().size(), obs.trials.size());
    EXPECT_EQ(status.at("finished").as_bool(), s.finished);
    EXPECT_EQ(status.at("updated_unix_s").to_number<double>(), obs.now_unix_s);
    EXPECT_EQ(status.at("controller_pid").as_int64(), ::getpid());
  };
  ASSERT_TRUE(wf::run(toy_tool{}, exec, options));
  EXPECT_GT(polls, 2);
  auto const status = read_json(dir.path() / wf::status_file_name);
  EXPECT_EQ(status.at("summary").as_string(), "toy done");
  for (auto const& t : status.at("trials").as_array()) {
    EXPECT_EQ(t.at("phase").as_string(), "succeeded");
    EXPECT_EQ(t.at("training_step_pct").to_number<double>(), 100.0);
  }
}

TEST(WorkflowDriver, CancelsTheTrialsOnSigintOnlyWhenAsked) {
  for (bool const cancel_on_exit : {false, true}) {
    temp_dir dir;
    pt::exec::simulated_executor exec(dir.path(), sim_options());
    wf::run_options options{.run_dir = dir.path(), .cancel_on_exit = cancel_on_exit};
    options.progress = [](wf::observation const&, wf::step_summary const& s) {
      if (s.poll == 1) std::raise(SIGINT);
    };
    auto const r = wf::run(toy_tool{}, exec, options);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, pt::errc::cancelled);
    auto const obs = exec.observe().value();
    ASSERT_EQ(obs.trials.size(), 3u);
    for (auto const& t : obs.trials)
      EXPECT_EQ(t.phase, cancel_on_exit ? wf::trial_phase::stopped : wf::trial_phase::running)
          << t.trial_id << " cancel_on_exit=" << cancel_on_exit;
  }
}

}  // namespace
