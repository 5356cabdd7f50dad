// exec::slurm_executor against a REAL Slurm (tests/slurm/slurm_cluster.sh starts one; never a
// mock). Every test skips itself when SLURM_CONF is unset or sinfo does not answer. The trainer
// is the example trainer (examples/protocol_example_trainer.cpp).
//
// The one time-limit case takes about 80 s (Slurm counts whole minutes and checks the limits
// every 30 s or so). When other tests run in the same process, it is submitted before them (by
// the environment below) and checked last, so it runs while they do.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/slurm.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using pt::exec::slurm_executor;
using pt::testing::temp_dir;
using namespace std::chrono_literals;

constexpr char const* no_slurm =
    "no Slurm: run tests/slurm/slurm_cluster.sh start DIR as root and export "
    "SLURM_CONF=DIR/slurm.conf (./build.sh test does this when run as root)";

std::string trainer() {
#ifdef PROXYTASK_EXAMPLE_TRAINER
  return PROXYTASK_EXAMPLE_TRAINER;
#else
  return "";
#endif
}

/// Whether a Slurm cluster answers (asked once per process).
bool slurm_answers() {
  static bool const answers = [] {
    if (std::getenv("SLURM_CONF") == nullptr) return false;
    auto const o = pt::exec::detail::run_command({"sinfo", "-h"}, 15);
    return o && o->exit_status == 0;
  }();
  return answers;
}

/// A Slurm client command's stdout (the test fails when it fails).
std::string slurm(std::vector<std::string> const& argv) {
  auto const out = pt::exec::detail::slurm_command(argv);
  EXPECT_TRUE(out) << out.error().message();
  return out ? *out : std::string();
}

std::vector<std::string> lines(std::string const& text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    auto end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (end > begin) out.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

boost::json::object read_object(fs::path const& path) {
  auto const file = pt::read_json_object_file(path);
  if (!file || !*file) {
    ADD_FAILURE() << "cannot read " << path << (file ? "" : ": " + file.error().message());
    return {};
  }
  return (*file)->as_object();
}

pt::exec::slurm_options options(std::vector<std::string> trainer_command = {trainer()}) {
  pt::exec::slurm_options o;
  o.trainer_command = std::move(trainer_command);
  o.poll_interval_s = 0.2;
  return o;
}

wf::launch_trial trial(std::string id, std::map<std::string, std::string> args = {}) {
  wf::launch_trial l;
  l.trial_id = std::move(id);
  l.spec.model_id = "model-" + l.trial_id;
  l.seed = 7;
  l.proxy_args = std::move(args);
  return l;
}

/// Observes every 0.2 s until `done` holds (or `timeout`); the last observation.
wf::observation observe_until(slurm_executor& exec,
                              std::function<bool(wf::observation const&)> const& done,
                              std::chrono::seconds timeout = 60s) {
  auto const deadline = std::chrono::steady_clock::now() + timeout;
  wf::observation obs;
  for (;;) {
    auto const o = exec.observe();
    if (!o) {
      ADD_FAILURE() << "observe: " << o.error().message();
      return obs;
    }
    obs = *o;
    if (done(obs)) return obs;
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "timed out waiting";
      return obs;
    }
    std::this_thread::sleep_for(200ms);
  }
}

bool all_terminal(wf::observation const& o) {
  for (auto const& t : o.trials)
    if (!wf::is_terminal(t.phase)) return false;
  return !o.trials.empty();
}

/// The trial `id` of an observation (the test fails when it is missing).
wf::trial_status status(wf::observation const& o, std::string const& id) {
  auto const* t = o.find(id);
  EXPECT_NE(t, nullptr) << id;
  return t ? *t : wf::trial_status{};
}

std::string job_id_of(slurm_executor const& exec, std::string const& id) {
  auto const o = read_object(exec.trial_dir(id) / "SLURM_JOB.json");
  auto const* j = o.if_contains("job_id");
  return j && j->is_string() ? std::string(j->get_string()) : std::string();
}

std::size_t submissions_of(slurm_executor const& exec, std::string const& id) {
  auto const o = read_object(exec.trial_dir(id) / "SLURM_JOB.json");
  auto const* s = o.if_contains("submissions");
  return s && s->is_array() ? s->as_array().size() : 0;
}

/// JobState in `scontrol -o show job ID`.
std::string job_state(std::string const& job_id) {
  return pt::exec::detail::scontrol_field(slurm({"scontrol", "-o", "show", "job", job_id}),
                                          "JobState");
}

/// Cancels the jobs still in Slurm's queue of the run directories under `dir` (a failed test
/// must not leave jobs that take the CPUs of the next one).
void cancel_leftovers(fs::path const& dir) {
  if (!slurm_answers()) return;
  std::vector<std::string> prefixes;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename() != "slurm_executor.json") continue;
    auto const file = pt::read_json_object_file(it->path());
    if (!file || !*file) continue;
    auto const* token = (*file)->as_object().if_contains("token");
    if (token && token->is_string())
      prefixes.push_back("proxytask-" + std::string(token->get_string()) + "-");
  }
  if (prefixes.empty()) return;
  auto const out = pt::exec::detail::run_command({"squeue", "-h", "-o", "%F|%j"});
  if (!out || out->exit_status != 0) return;
  std::set<std::string> ids;
  for (auto const& line : lines(out->out)) {
    auto const bar = line.find('|');
    if (bar == std::string::npos) continue;
    for (auto const& prefix : prefixes)
      if (line.substr(bar + 1).starts_with(prefix)) ids.insert(line.substr(0, bar));
  }
  for (auto const& id : ids) (void)pt::exec::detail::run_command({"scancel", id});
}

/// The time-limit case: one trial that would train for ~17 minutes under --time=1.
struct timeout_case {
  std::unique_ptr<temp_dir> dir;
  std::unique_ptr<slurm_executor> exec;
  std::chrono::steady_clock::time_point started;

  void start() {
    if (exec) return;
    dir = std::make_unique<temp_dir>();
    auto o = options();
    o.time_minutes = 1;
    exec = std::make_unique<slurm_executor>(dir->path(), o);
    ASSERT_TRUE(exec->launch(
        trial("slow", {{"total_steps", "1000"}, {"cycle_steps", "1"}, {"step_seconds", "1"}})));
    auto const obs = exec->observe();  // submits it
    ASSERT_TRUE(obs) << obs.error().message();
    started = std::chrono::steady_clock::now();
  }
  ~timeout_case() {
    if (dir) cancel_leftovers(dir->path());
  }
};

timeout_case& the_timeout_case() {
  static timeout_case c;
  return c;
}

constexpr char const* timeout_test_name = "ATrialPastItsTimeLimitTimesOut";

/// Submits the time-limit case before the other tests when they run in the same process.
class start_timeout_case_first : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!slurm_answers() || trainer().empty()) return;
    auto const* unit = ::testing::UnitTest::GetInstance();
    bool timeout_selected = false;
    int selected = 0;
    for (int i = 0; i < unit->total_test_suite_count(); ++i) {
      auto const* suite = unit->GetTestSuite(i);
      for (int j = 0; j < suite->total_test_count(); ++j) {
        auto const* info = suite->GetTestInfo(j);
        if (!info->should_run()) continue;
        ++selected;
        if (std::string(suite->name()) == "SlurmExecutor" &&
            info->name() == std::string(timeout_test_name))
          timeout_selected = true;
      }
    }
    if (timeout_selected && selected > 1) the_timeout_case().start();
  }
  void TearDown() override {
    auto& c = the_timeout_case();
    if (c.dir) cancel_leftovers(c.dir->path());
  }
};

[[maybe_unused]] ::testing::Environment* const timeout_environment =
    ::testing::AddGlobalTestEnvironment(new start_timeout_case_first);

class SlurmExecutor : public ::testing::Test {
 protected:
  void SetUp() override {
    if (trainer().empty()) GTEST_SKIP() << "the example trainer is not built";
    if (!slurm_answers()) GTEST_SKIP() << no_slurm;
  }
  void TearDown() override { cancel_leftovers(dir_.path()); }

  fs::path run_dir() const { return dir_.path() / "run"; }

  temp_dir dir_;
};

TEST_F(SlurmExecutor, ATrialThatSucceedsReportsItsMetrics) {
  slurm_executor exec(run_dir(), options());
  ASSERT_TRUE(exec.launch(trial("ok", {{"total_steps", "200"}, {"cycle_steps", "100"}})));
  ASSERT_EQ(exec.observe().value().trials.size(), 1u);
  auto const obs = observe_until(exec, all_terminal);
  auto const t = status(obs, "ok");
  EXPECT_EQ(t.phase, wf::trial_phase::succeeded) << t.failure_message;
  ASSERT_EQ(t.metrics.points.size(), 2u);
  EXPECT_DOUBLE_EQ(t.metrics.points.back().training_step_pct, 100);
  EXPECT_EQ(t.metrics.time.total_training_steps, 200);

  auto const dir = exec.trial_dir("ok");
  std::string const job_id = job_id_of(exec, "ok");
  EXPECT_FALSE(job_id.empty());
  EXPECT_EQ(submissions_of(exec, "ok"), 1u);
  auto const started = read_object(dir / "SLURM_JOB_STARTED.json");
  EXPECT_EQ(started.at("job_id"), job_id.c_str());
  EXPECT_EQ(started.at("restart_count"), 0);
  auto const exit = read_object(dir / "EXIT_STATUS.json");
  EXPECT_EQ(exit.at("exit_code"), 0);
  auto const end = read_object(dir / "SLURM_END.json");
  EXPECT_EQ(end.at("state"), "COMPLETED");
  EXPECT_EQ(job_state(job_id), "COMPLETED");
  auto const stdout_text = pt::read_file(dir / "stdout.txt").value();
  EXPECT_NE(stdout_text.find("stopped: completed"), std::string::npos) << stdout_text;

  // A new executor on the same directory sees the same end, from SLURM_END.json.
  slurm_executor again(run_dir(), options());
  auto const t2 = status(again.observe().value(), "ok");
  EXPECT_EQ(t2.phase, wf::trial_phase::succeeded);
  EXPECT_EQ(t2.metrics.points.size(), 2u);
}

TEST_F(SlurmExecutor, ATrialThatFailsReportsItsFailureKindOrCrashed) {
  // Two runs side by side: the example trainer's recorded failure, and a program that just
  // exits 7.
  slurm_executor diverges(run_dir() / "diverges", options());
  slurm_executor crashes(run_dir() / "crashes",
                         options({"/bin/sh", "-c", "echo boom >&2; exit 7", "fake-trainer"}));
  ASSERT_TRUE(diverges.launch(trial("d", {{"fail", "diverged"}})));
  ASSERT_TRUE(crashes.launch(trial("c")));
  (void)diverges.observe().value();
  auto const c = status(observe_until(crashes, all_terminal), "c");
  auto const d = status(observe_until(diverges, all_terminal), "d");

  EXPECT_EQ(d.phase, wf::trial_phase::failed);
  ASSERT_TRUE(d.failure.has_value());
  EXPECT_EQ(*d.failure, pt::protocol::failure_kind::diverged) << d.failure_message;
  EXPECT_NE(d.failure_message.find("NaN"), std::string::npos) << d.failure_message;

  EXPECT_EQ(c.phase, wf::trial_phase::failed);
  ASSERT_TRUE(c.failure.has_value());
  EXPECT_EQ(*c.failure, pt::protocol::failure_kind::crashed) << c.failure_message;
  EXPECT_NE(c.failure_message.find("status 7"), std::string::npos) << c.failure_message;
  EXPECT_NE(c.failure_message.find("FAILED"), std::string::npos) << c.failure_message;
  EXPECT_NE(c.failure_message.find("ExitCode 7:0"), std::string::npos) << c.failure_message;
  EXPECT_EQ(job_state(job_id_of(crashes, "c")), "FAILED");
  auto const err = pt::read_file(crashes.trial_dir("c") / "stderr.txt").value();
  EXPECT_NE(err.find("boom"), std::string::npos);
}

TEST_F(SlurmExecutor, AClientCommandThatFailsIsAnErrorNamingItsStatusAndStderr) {
  auto o = options();
  o.partition = "no-such-partition";
  slurm_executor exec(run_dir(), o);
  ASSERT_TRUE(exec.launch(trial("p")));
  auto const obs = exec.observe();
  ASSERT_FALSE(obs);
  std::string const message = obs.error().message();
  EXPECT_NE(message.find("`sbatch --parsable"), std::string::npos) << message;
  EXPECT_NE(message.find("--partition=no-such-partition"), std::string::npos) << message;
  EXPECT_NE(message.find("exited with status 1"), std::string::npos) << message;
  EXPECT_NE(message.find("stderr: sbatch: error:"), std::string::npos) << message;
  // The intent stays; nothing was submitted under its name.
  EXPECT_EQ(submissions_of(exec, "p"), 1u);
  EXPECT_TRUE(job_id_of(exec, "p").empty());
}

TEST_F(SlurmExecutor, ACancelledTrialIsStoppedAndCancelledInSlurm) {
  slurm_executor exec(run_dir(), options());
  ASSERT_TRUE(exec.launch(
      trial("long", {{"total_steps", "10000"}, {"cycle_steps", "1"}, {"step_seconds", "0.05"}})));
  auto const running = observe_until(exec, [](wf::observation const& o) {
    auto const* t = o.find("long");
    return t && t->phase == wf::trial_phase::running && !t->metrics.points.empty();
  });
  ASSERT_EQ(status(running, "long").phase, wf::trial_phase::running);
  std::string const job_id = job_id_of(exec, "long");
  ASSERT_TRUE(exec.cancel("long"));
  EXPECT_EQ(status(exec.observe().value(), "long").phase, wf::trial_phase::stopped);
  // Slurm ends it as CANCELLED.
  auto const deadline = std::chrono::steady_clock::now() + 40s;
  std::string state;
  while ((state = job_state(job_id)) != "CANCELLED" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  EXPECT_EQ(state, "CANCELLED");
  EXPECT_EQ(status(exec.observe().value(), "long").phase, wf::trial_phase::stopped);
  EXPECT_TRUE(exec.cancel("long"));  // again: nothing to do

  // A trial cancelled before it was submitted is dropped from the queue: never submitted.
  ASSERT_TRUE(exec.launch(trial("queued")));
  ASSERT_TRUE(exec.cancel("queued"));
  auto const obs = exec.observe().value();
  EXPECT_EQ(status(obs, "queued").phase, wf::trial_phase::stopped);
  EXPECT_FALSE(fs::exists(exec.trial_dir("queued") / "SLURM_JOB.json"));
  EXPECT_TRUE(fs::exists(exec.trial_dir("queued") / "CANCELLED.json"));
}

TEST_F(SlurmExecutor, OneStepsLaunchesGoOutAsOneJobArray) {
  slurm_executor exec(run_dir(), options());
  for (std::string const id : {"a", "b", "c"})
    ASSERT_TRUE(exec.launch(trial(id, {{"total_steps", "100"}, {"cycle_steps", "50"}})));
  auto const obs = observe_until(exec, all_terminal);
  std::set<std::string> arrays;
  std::set<std::string> tasks;
  for (std::string const id : {"a", "b", "c"}) {
    auto const t = status(obs, id);
    EXPECT_EQ(t.phase, wf::trial_phase::succeeded) << id << ": " << t.failure_message;
    EXPECT_EQ(t.metrics.points.size(), 2u) << id;
    std::string const job_id = job_id_of(exec, id);
    auto const underscore = job_id.find('_');
    ASSERT_NE(underscore, std::string::npos) << job_id;
    arrays.insert(job_id.substr(0, underscore));
    tasks.insert(job_id.substr(underscore + 1));
    EXPECT_EQ(submissions_of(exec, id), 1u);
  }
  EXPECT_EQ(arrays.size(), 1u);
  EXPECT_EQ(tasks, (std::set<std::string>{"0", "1", "2"}));
  // One sbatch: one submission counted, one job name.
  auto const q = read_object(run_dir() / "slurm_executor.json");
  EXPECT_EQ(q.at("submissions"), 1);
  EXPECT_TRUE(q.at("queue").as_array().empty());

  // Without job_arrays: one job each.
  auto o = options();
  o.job_arrays = false;
  slurm_executor single(run_dir() / "single", o);
  ASSERT_TRUE(single.launch(trial("x", {{"total_steps", "10"}, {"cycle_steps", "10"}})));
  ASSERT_TRUE(single.launch(trial("y", {{"total_steps", "10"}, {"cycle_steps", "10"}})));
  auto const s = observe_until(single, all_terminal);
  for (std::string const id : {"x", "y"}) {
    EXPECT_EQ(status(s, id).phase, wf::trial_phase::succeeded) << id;
    EXPECT_EQ(job_id_of(single, id).find('_'), std::string::npos);
  }
  EXPECT_NE(job_id_of(single, "x"), job_id_of(single, "y"));
}

// A small tool for the controller-kill test: launches `trials` trials in its first step (one job
// array) and finishes once all have ended. (toy_tool needs all three trials running at once,
// which a two-CPU test node cannot do.)
struct batch_state {
  bool launched = false;
};

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, batch_state const& s) {
  jv = {{"launched", s.launched}};
}

inline boost::system::result<batch_state> tag_invoke(boost::json::try_value_to_tag<batch_state>,
                                                     boost::json::value const& jv) {
  auto const* o = jv.if_object();
  auto const* l = o ? o->if_contains("launched") : nullptr;
  if (!l || !l->is_bool())
    return boost::system::error_code(make_error_code(pt::errc::malformed_file));
  return batch_state{l->get_bool()};
}

class batch_tool {
 public:
  using state = batch_state;
  static constexpr std::string_view state_file_name = "batch_state.json";
  static constexpr int schema_version = 1;
  static constexpr int trials = 3;

  state initial() const { return {}; }

  wf::step<state> advance(state const& s, wf::observation const& o) const {
    wf::step<state> out{s, {}};
    if (!s.launched) {
      out.next.launched = true;
      for (int i = 0; i < trials; ++i)
        out.commands.emplace_back(
            trial("t" + std::to_string(i),
                  {{"total_steps", "20"}, {"cycle_steps", "1"}, {"step_seconds", "0.1"}}));
      return out;
    }
    if (o.trials.size() < static_cast<std::size_t>(trials) || !all_terminal(o)) return out;
    boost::json::array phases;
    for (auto const& t : o.trials) phases.emplace_back(wf::to_string(t.phase));
    boost::json::value result = {{"phases", phases}};
    out.commands.emplace_back(wf::finish{result, "batch done", {}});
    return out;
  }
};

static_assert(wf::tool<batch_tool>);

TEST_F(SlurmExecutor, AKilledControllerReattachesWithoutSubmittingTwice) {
  fs::create_directories(run_dir());
  pid_t const child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The controller: SIGKILLed at the first poll that sees a trial running.
    slurm_executor exec(run_dir(), options());
    (void)wf::run(batch_tool{}, exec,
                  {.run_dir = run_dir(),
                   .max_polls = 2000,
                   .progress = [](wf::observation const& o, wf::step_summary const&) {
                     for (auto const& t : o.trials)
                       if (t.phase == wf::trial_phase::running) ::kill(::getpid(), SIGKILL);
                   }});
    ::_exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "the controller was not killed mid-run";
  EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);

  // Its jobs run on without it.
  std::string const array_id = job_id_of(slurm_executor(run_dir(), options()), "t0");
  ASSERT_FALSE(array_id.empty());
  EXPECT_FALSE(slurm({"squeue", "-h", "-j", array_id.substr(0, array_id.find('_'))}).empty());

  // A new controller re-attaches and runs the tool to its end.
  slurm_executor exec(run_dir(), options());
  auto const r = wf::run(batch_tool{}, exec, {.run_dir = run_dir(), .max_polls = 2000});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at("phases"), (boost::json::array{"succeeded", "succeeded", "succeeded"}));

  // Nothing was submitted twice: one submission per trial, one sbatch, one job per name.
  std::set<std::string> names;
  for (int i = 0; i < batch_tool::trials; ++i) {
    std::string const id = "t" + std::to_string(i);
    EXPECT_EQ(submissions_of(exec, id), 1u) << id;
    auto const t = read_object(exec.trial_dir(id) / "SLURM_JOB.json");
    names.insert(std::string(t.at("submissions").as_array()[0].at("job_name").as_string()));
    auto const started = read_object(exec.trial_dir(id) / "SLURM_JOB_STARTED.json");
    EXPECT_EQ(started.at("restart_count"), 0) << id;
    // The trainer ran once: its stdout has one "stopped" line.
    auto const out = pt::read_file(exec.trial_dir(id) / "stdout.txt").value();
    EXPECT_EQ(out.find("stopped:"), out.rfind("stopped:")) << out;
  }
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(read_object(run_dir() / "slurm_executor.json").at("submissions"), 1);
  auto const jobs =
      lines(slurm({"squeue", "-h", "-r", "-t", "all", "--name=" + *names.begin(), "-o", "%i"}));
  EXPECT_EQ(jobs.size(), 3u);  // the three array tasks, nothing more
}

TEST_F(SlurmExecutor, ARequeuedJobResumesFromItsCheckpoint) {
  slurm_executor exec(run_dir(), options());
  ASSERT_TRUE(exec.launch(
      trial("r", {{"total_steps", "40"}, {"cycle_steps", "1"}, {"step_seconds", "0.1"}})));
  (void)observe_until(exec, [](wf::observation const& o) {
    auto const* t = o.find("r");
    return t && t->metrics.points.size() >= 5;
  });
  std::string const job_id = job_id_of(exec, "r");
  slurm({"scontrol", "requeue", job_id});
  // Slurm holds a requeued job for about two minutes (Reason=BeginTime); release it early. Not
  // at once: slurmd refuses to relaunch a job within the second it was killed ("Job N already
  // killed, do not launch batch job": the job then ends FAILED).
  auto const deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    if (job_state(job_id) == "PENDING") {
      std::this_thread::sleep_for(1500ms);
      auto const o =
          pt::exec::detail::run_command({"scontrol", "update", "JobId=" + job_id, "StartTime=now"});
      if (o && o->exit_status == 0) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the job was not requeued";
    std::this_thread::sleep_for(100ms);
  }
  auto const t = status(observe_until(exec, all_terminal), "r");
  EXPECT_EQ(t.phase, wf::trial_phase::succeeded) << t.failure_message;

  auto const dir = exec.trial_dir("r");
  EXPECT_EQ(read_object(dir / "SLURM_JOB_STARTED.json").at("restart_count"), 1);
  EXPECT_EQ(read_object(dir / "EXIT_STATUS.json").at("restart_count"), 1);
  EXPECT_EQ(submissions_of(exec, "r"), 1u);  // Slurm's requeue, not a new submission
  // The metrics continue: every step once, in order, to the end.
  ASSERT_EQ(t.metrics.points.size(), 40u);
  for (std::size_t i = 0; i < t.metrics.points.size(); ++i)
    EXPECT_EQ(t.metrics.points[i].training_step, static_cast<std::int64_t>(i));
  // Two runs of the trainer; the second did not start from step 0.
  auto const out = pt::read_file(dir / "stdout.txt").value();
  EXPECT_EQ(out.find("cycle 0..0 "), out.rfind("cycle 0..0 ")) << out;
  EXPECT_NE(out.find("stopped: completed"), std::string::npos) << out;
}

TEST_F(SlurmExecutor, ASubmissionWhoseJobIdWasNotRecordedIsAdoptedNotRepeated) {
  // sbatch ran, but the controller died before recording the job id: the intent is there, the
  // trial is still queued.
  std::string job_id;
  {
    slurm_executor exec(run_dir(), options());
    ASSERT_TRUE(exec.launch(trial("a", {{"total_steps", "10"}, {"cycle_steps", "5"}})));
    (void)exec.observe().value();
    job_id = job_id_of(exec, "a");
    ASSERT_FALSE(job_id.empty());
    auto job = read_object(exec.trial_dir("a") / "SLURM_JOB.json");
    job["job_id"] = nullptr;
    job["submissions"].as_array()[0].as_object()["job_id"] = nullptr;
    ASSERT_TRUE(pt::write_json_file(exec.trial_dir("a") / "SLURM_JOB.json", job));
    auto q = read_object(run_dir() / "slurm_executor.json");
    q["queue"] = boost::json::array{"a"};
    ASSERT_TRUE(pt::write_json_file(run_dir() / "slurm_executor.json", q));
  }
  slurm_executor exec(run_dir(), options());
  auto const t = status(observe_until(exec, all_terminal), "a");
  EXPECT_EQ(t.phase, wf::trial_phase::succeeded) << t.failure_message;
  EXPECT_EQ(job_id_of(exec, "a"), job_id);
  EXPECT_EQ(submissions_of(exec, "a"), 1u);
  auto const job = read_object(exec.trial_dir("a") / "SLURM_JOB.json");
  EXPECT_EQ(job.at("submissions").as_array()[0].at("adopted"), true);
  EXPECT_EQ(read_object(run_dir() / "slurm_executor.json").at("submissions"), 1);
  auto const name = std::string(job.at("submissions").as_array()[0].at("job_name").as_string());
  EXPECT_EQ(lines(slurm({"squeue", "-h", "-r", "-t", "all", "--name=" + name, "-o", "%i"})),
            std::vector<std::string>{job_id});

  // The intent was written, but sbatch never ran: while the intent is young the trial waits
  // (an sbatch may still be under way); after the grace period it is submitted, once.
  ASSERT_TRUE(exec.launch(trial("b", {{"total_steps", "10"}, {"cycle_steps", "5"}})));
  auto const lost_name = "proxytask-lost-" + std::to_string(::getpid());
  auto write_intent = [&](double age_s) {
    boost::json::object sub{{"job_name", lost_name},
                            {"intent_unix_s", pt::exec::detail::unix_now() - age_s},
                            {"job_id", nullptr}};
    ASSERT_TRUE(pt::write_json_file(
        exec.trial_dir("b") / "SLURM_JOB.json",
        boost::json::object{{"job_id", nullptr}, {"submissions", boost::json::array{sub}}}));
  };
  write_intent(1);
  EXPECT_EQ(status(exec.observe().value(), "b").phase, wf::trial_phase::pending);
  EXPECT_EQ(submissions_of(exec, "b"), 1u);  // not submitted yet
  write_intent(pt::exec::detail::slurm_submit_grace_s + 1);
  auto const b = status(observe_until(exec, all_terminal), "b");
  EXPECT_EQ(b.phase, wf::trial_phase::succeeded) << b.failure_message;
  EXPECT_EQ(submissions_of(exec, "b"), 2u);  // the lost intent, then one real submission
  EXPECT_TRUE(slurm({"squeue", "-h", "-t", "all", "--name=" + lost_name, "-o", "%i"}).empty());
}

// Last: in a run of the whole suite its job was submitted before the other tests.
TEST_F(SlurmExecutor, ATrialPastItsTimeLimitTimesOut) {
  auto& c = the_timeout_case();
  c.start();
  ASSERT_TRUE(c.exec);
  auto const obs = observe_until(*c.exec, all_terminal, 170s);
  auto const t = status(obs, "slow");
  EXPECT_EQ(t.phase, wf::trial_phase::failed);
  ASSERT_TRUE(t.failure.has_value());
  EXPECT_EQ(*t.failure, pt::protocol::failure_kind::timed_out) << t.failure_message;
  EXPECT_NE(t.failure_message.find("TIMEOUT"), std::string::npos) << t.failure_message;
  EXPECT_FALSE(t.metrics.points.empty());
  std::cout << "[          ] the time limit ended the trial "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                c.started)
                   .count()
            << " s after its submission\n";
}

}  // namespace
