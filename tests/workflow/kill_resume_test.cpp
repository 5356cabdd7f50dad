// The controller survives SIGKILL at any moment: proxytask-measure-variance runs the protocol
// example trainer as local processes, is killed at random moments (seeded, so a failure
// reproduces) and run again until it finishes. Every resumed run must end with the same
// variance_and_smoothness.json as an uninterrupted one (the example trainer's curves depend only
// on its seed and steps, so the files are compared whole; measured times do not enter them), and
// no trial may be started twice: a wrapper around the trainer appends a line to STARTS in the
// trial directory each time a trainer starts there.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

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
using pt::testing::text_of;
using pt::testing::tool_programs_built;

class KillResume : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tool_programs_built) GTEST_SKIP() << "the example programs are not built";
    // Three candidate models; the first sampled one is workable (the example trainer never
    // fails unless told to).
    std::ofstream(base_.path() / "candidates.json") << R"({"candidates": [
              {"model_id": "m-a", "parameters": {"final_accuracy": 0.80}},
              {"model_id": "m-b", "parameters": {"final_accuracy": 0.85}},
              {"model_id": "m-c", "parameters": {"final_accuracy": 0.90}}]})";
    // The wrapper records every start of a trainer in its trial directory, then runs it.
    auto const wrapper = base_.path() / "trainer.sh";
    std::ofstream(wrapper) << "#!/bin/sh\n"
                              "echo $$ >> \"$PROXYTASK_MODEL_DIR/STARTS\"\n"
                              "exec \"$@\"\n";
    ::chmod(wrapper.c_str(), 0755);
  }

  /// Starts the controller on `run_dir`.
  std::unique_ptr<child_process> start(fs::path const& run_dir) const {
    std::vector<std::string> argv{measure_variance_program,
                                  run_dir.string(),
                                  "--executor=local",
                                  "--search-space=" + (base_.path() / "candidates.json").string(),
                                  "--copies=3",
                                  "--max-concurrent=4",
                                  "--poll-interval=0.02",
                                  "--resamples=200",
                                  "--seed=7",
                                  "--arg=total_steps=600",
                                  "--arg=cycle_steps=100",
                                  "--arg=step_seconds=0.0005",
                                  "--quiet",
                                  "--",
                                  (base_.path() / "trainer.sh").string(),
                                  example_trainer_program};
    return std::make_unique<child_process>(argv, run_dir.string() + ".out",
                                           run_dir.string() + ".err");
  }

  /// Runs the controller to the end (restarting it if it was killed meanwhile).
  void finish(fs::path const& run_dir) const {
    auto controller = start(run_dir);
    auto const code = controller->wait(120s);
    ASSERT_TRUE(code) << "the controller did not finish in 2 minutes";
    ASSERT_EQ(*code, 0) << text_of(run_dir.string() + ".err");
  }

  static boost::json::value result_of(fs::path const& run_dir) {
    auto const path = run_dir / pt::workflow::variance_tool::result_file_name;
    auto const text = pt::read_file(path);
    EXPECT_TRUE(text) << path;
    return text ? pt::parse_json(*text, path.string()).value() : boost::json::value();
  }

  /// Every trial directory's STARTS file has exactly one line; returns the trial ids.
  static std::vector<std::string> trials_started_once(fs::path const& run_dir) {
    std::vector<std::string> ids;
    for (auto const& e : fs::directory_iterator(run_dir / "trials")) {
      ids.push_back(e.path().filename().string());
      auto const starts = pt::read_file(e.path() / "STARTS");
      EXPECT_TRUE(starts) << e.path() << " never started";
      if (!starts) continue;
      EXPECT_EQ(std::count(starts->begin(), starts->end(), '\n'), 1)
          << e.path() << " started more than once: " << *starts;
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  /// Waits until every trial of the run has ended (orphans of a killed controller included), so
  /// that the temporary directories can go.
  static void wait_for_trials(fs::path const& run_dir) {
    auto const deadline = std::chrono::steady_clock::now() + 30s;
    for (auto const& e : fs::directory_iterator(run_dir / "trials"))
      while (!fs::exists(e.path() / "EXIT_STATUS.json") && fs::exists(e.path() / "PID.json") &&
             std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
  }

  /// Kills the controller at `kills` random moments of each of `runs` runs, then lets it finish,
  /// and compares with an uninterrupted run.
  void kill_and_resume(std::uint32_t seed, int runs) {
    fs::path const reference = base_.path() / "uninterrupted";
    auto const begin = std::chrono::steady_clock::now();
    finish(reference);
    auto const uninterrupted_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - begin)
                                      .count();
    auto const expected = result_of(reference);
    auto const expected_trials = trials_started_once(reference);
    ASSERT_EQ(expected.at("status").as_string(), "measured");

    std::mt19937 random(seed);
    for (int run = 0; run < runs; ++run) {
      fs::path const dir = base_.path() / ("run-" + std::to_string(run));
      // One kill in most runs, two or three in some; each at a moment within the length of an
      // uninterrupted run (the second and later ones count from their controller's start).
      int const kills =
          1 + static_cast<int>(random() % 4 == 0) + static_cast<int>(random() % 8 == 0);
      std::string moments;
      for (int k = 0; k < kills; ++k) {
        auto const at = std::chrono::milliseconds(random() % (uninterrupted_ms + 1));
        moments += std::to_string(at.count()) + "ms ";
        auto controller = start(dir);
        std::this_thread::sleep_for(at);
        controller.reset();  // SIGKILL (and reap) unless it has finished already
      }
      SCOPED_TRACE("run " + std::to_string(run) + ", killed at " + moments);
      finish(dir);
      EXPECT_EQ(result_of(dir), expected);
      EXPECT_EQ(trials_started_once(dir), expected_trials);
      wait_for_trials(dir);
    }
    wait_for_trials(reference);
  }

  temp_dir base_;
};

// 50 kills in all, in five groups that ctest can run side by side.
TEST_F(KillResume, Group1) { kill_and_resume(1, 10); }
TEST_F(KillResume, Group2) { kill_and_resume(2, 10); }
TEST_F(KillResume, Group3) { kill_and_resume(3, 10); }
TEST_F(KillResume, Group4) { kill_and_resume(4, 10); }
TEST_F(KillResume, Group5) { kill_and_resume(5, 10); }

}  // namespace
