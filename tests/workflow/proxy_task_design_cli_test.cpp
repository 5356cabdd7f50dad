// proxytask-proxy-task-design (examples/proxy_task_design.cpp), the end-to-end demo, as a user
// runs it: with the real reference trainer on Fashion-MNIST, sized down to seconds; SIGKILLed
// while model selection trains, then resumed to the answer, the report and the summary; run
// again once finished, it answers again without training anything; a resume with other options
// is refused; a bad option is a usage error. (Skipped where the demo is not built: it needs the
// reference trainer, hence zlib and OpenBLAS, and the Fashion-MNIST files.)

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/design_report.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "report/xml_check.hpp"
#include "support/temp_dir.hpp"
#include "workflow/tool_programs.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using pt::testing::child_process;
using pt::testing::run_program;
using pt::testing::text_of;

#if defined(PROXYTASK_PROXY_TASK_DESIGN)
constexpr char const* design_program = PROXYTASK_PROXY_TASK_DESIGN;
#else
constexpr char const* design_program = "";
#endif

/// A design sized to seconds: 6 models to 5, two proxies of a tenth of an epoch's data.
std::vector<std::string> small_design(fs::path const& run_dir) {
  return {design_program,           run_dir.string(),      "--start-models=6",
          "--final-models=5",       "--remove-per-iter=1", "--grid=data_pct=5,10",
          "--grid=model_scale=0.5", "--arg=epochs=0.5",    "--bootstrap=100",
          "--poll-interval=0.2",    "--max-concurrent=2"};
}

/// Trial directories of a stage (each launched once, never twice).
std::size_t trials_of(fs::path const& stage) {
  std::size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(stage / "trials", ec), end; !ec && it != end; it.increment(ec))
    ++n;
  return n;
}

class ProxyTaskDesignCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string_view(design_program).empty())
      GTEST_SKIP() << "proxytask-proxy-task-design is not built (it needs the reference trainer)";
    if (!fs::exists("/usr/share/datasets/fashion-mnist") &&
        std::getenv("PROXYTASK_FASHION_MNIST_DIR") == nullptr)
      GTEST_SKIP() << "no Fashion-MNIST (Debian package dataset-fashion-mnist)";
  }
  pt::testing::temp_dir dir_;
};

TEST_F(ProxyTaskDesignCli, KilledMidRunResumesToTheAnswerAndTheReport) {
  fs::path const run_dir = dir_.path() / "design";
  auto const args = small_design(run_dir);
  {
    child_process demo(args, dir_.path() / "k.out", dir_.path() / "k.err");
    // Killed once model selection has trials running.
    auto const deadline = std::chrono::steady_clock::now() + 120s;
    while (trials_of(run_dir / wf::design_selection_dir) < 2 &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    ASSERT_GE(trials_of(run_dir / wf::design_selection_dir), 2u) << text_of(dir_.path() / "k.err");
  }  // SIGKILL
  auto const resumed = run_program(args, dir_.path(), "resumed", 300s);
  ASSERT_EQ(resumed.code, 0) << resumed.out << resumed.err;
  EXPECT_NE(resumed.out.find("== 1/4 variance measurement"), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("== The answer"), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("answer:     "), std::string::npos) << resumed.out;
  EXPECT_EQ(trials_of(run_dir / wf::design_variance_dir), 6u);  // 1 workable try + 5 copies
  // 6 models, then the 5 kept continued: 11 trials however often the controller was killed.
  EXPECT_EQ(trials_of(run_dir / wf::design_selection_dir), 11u);

  // The summary and the report, next to the stages' files.
  auto const summary = pt::read_json_object_file(run_dir / wf::design_summary_file_name);
  ASSERT_TRUE(summary && *summary);
  auto const& s = (*summary)->as_object();
  EXPECT_EQ(s.at("reference_models").as_array().size(), 5u);
  EXPECT_EQ(s.at("proxies").as_array().size(), 2u);
  EXPECT_EQ(s.at("baseline_args").at("epochs"), "0.5");
  EXPECT_NE(resumed.out.find(std::string(s.at("answer").as_string())), std::string::npos);
  if (s.at("best").is_object()) {
    EXPECT_TRUE(s.at("recheck").is_object());
    EXPECT_EQ(trials_of(run_dir / wf::design_recheck_dir), 5u);
  }
  auto const html = pt::read_file(run_dir / wf::design_report_file_name);
  ASSERT_TRUE(html.has_value());
  auto const page = pt::testing::parse_xml(*html);
  EXPECT_TRUE(page.ok) << page.error;
  EXPECT_TRUE(fs::exists(run_dir / wf::design_variance_dir / "variance_curves.svg"));
  EXPECT_TRUE(fs::exists(run_dir / wf::design_search_dir / "proxies.svg"));

  // Once finished, the same command answers again without training anything.
  auto const again = run_program(args, dir_.path(), "again", 60s);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.out.find(std::string(s.at("answer").as_string())), std::string::npos);
  EXPECT_EQ(trials_of(run_dir / wf::design_selection_dir), 11u);

  // Other options on the same run directory: refused, naming the recorded ones.
  auto other = args;
  other.push_back("--seed=7");
  auto const refused = run_program(other, dir_.path(), "refused", 60s);
  EXPECT_EQ(refused.code, 1) << refused.err;
  EXPECT_NE(refused.err.find("design_options.json"), std::string::npos) << refused.err;
}

TEST_F(ProxyTaskDesignCli, BadOptionsAreUsageErrors) {
  fs::path const run_dir = dir_.path() / "bad";
  for (auto const* bad : {"--start-models=0", "--grid=data_pct", "--arg=epochs", "--nope=1"}) {
    auto const r = run_program({design_program, run_dir.string(), bad}, dir_.path(), "bad", 30s);
    EXPECT_EQ(r.code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("usage: proxytask-proxy-task-design"), std::string::npos) << r.err;
  }
  auto const help = run_program({design_program, "--help"}, dir_.path(), "help", 30s);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--grid NAME=V1,V2"), std::string::npos);
  EXPECT_FALSE(fs::exists(run_dir));
}

}  // namespace
