#include <proxytask/workflow/progress.hpp>

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace {

namespace wf = proxytask::workflow;

wf::observation observation_with(std::initializer_list<wf::trial_phase> phases, double now) {
  wf::observation o;
  o.now_unix_s = now;
  int i = 0;
  for (auto const p : phases) {
    wf::trial_status t;
    t.trial_id = "t" + std::to_string(i++);
    t.phase = p;
    o.trials.push_back(t);
  }
  return o;
}

wf::step_summary summary(std::string phase, std::string decision, double fraction) {
  wf::step_summary s;
  s.tool_name = "variance measurement";
  s.progress = {std::move(phase), std::move(decision), fraction};
  s.started_unix_s = 1000;
  return s;
}

TEST(ProgressFormat, Durations) {
  EXPECT_EQ(wf::format_duration(0), "0s");
  EXPECT_EQ(wf::format_duration(59.4), "59s");
  EXPECT_EQ(wf::format_duration(245), "4m05s");
  EXPECT_EQ(wf::format_duration(7380), "2h03m");
  EXPECT_EQ(wf::format_duration(-1), "?");
}

TEST(ProgressPrinter, LogLinesOnlyWhenSomethingOtherThanTheClockChanges) {
  std::ostringstream out;
  wf::progress_printer print(out, /*terminal=*/false);
  using P = wf::trial_phase;
  auto const s = summary("measure", "training copies", 0.5);
  print(observation_with({P::running, P::succeeded, P::failed, P::pending}, 1100), s);
  print(observation_with({P::running, P::succeeded, P::failed, P::pending}, 1200), s);  // same
  print(observation_with({P::succeeded, P::succeeded, P::failed, P::running}, 1300), s);
  std::string const text = out.str();
  EXPECT_EQ(text,
            "variance measurement | measure | 1 running, 1 queued, 1 done, 1 failed | 1m40s | "
            "~1m40s left | training copies\n"
            "variance measurement | measure | 1 running, 2 done, 1 failed | 5m00s | ~5m00s left | "
            "training copies\n");
}

TEST(ProgressPrinter, UpdatesOneTerminalLineInPlace) {
  std::ostringstream out;
  wf::progress_printer print(out, /*terminal=*/true);
  using P = wf::trial_phase;
  print(observation_with({P::running}, 1010), summary("find_workable", "", 0.0));
  auto done = summary("done", "measured", 1.0);
  done.finished = true;
  print(observation_with({P::succeeded}, 1020), done);
  EXPECT_EQ(out.str(),
            "\rvariance measurement | find_workable | 1 running, 0 done, 0 failed | 10s\x1b[K"
            "\rvariance measurement | done | 0 running, 1 done, 0 failed | 20s | measured\x1b[K\n");
}

TEST(ProgressPrinter, QuietPrintsNothing) {
  std::ostringstream out;
  wf::progress_printer print(out, /*terminal=*/false, /*quiet=*/true);
  print(observation_with({wf::trial_phase::running}, 1010), summary("measure", "x", 0.5));
  print.end_line();
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
