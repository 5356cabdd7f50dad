#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/trainer.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <support/temp_dir.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;
using protocol::stop_reason;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

TEST(StopReason, NamesEveryReasonAndParsesItBack) {
  for (auto const r : {stop_reason::keep_going, stop_reason::desired_pct_reached,
                       stop_reason::time_limit_reached, stop_reason::controller_lost})
    EXPECT_EQ(protocol::parse_stop_reason(protocol::to_string(r)), r);
  EXPECT_EQ(protocol::to_string(stop_reason::desired_pct_reached), "desired_pct_reached");
  EXPECT_EQ(protocol::to_string(stop_reason::controller_lost), "controller_lost");
  EXPECT_FALSE(protocol::parse_stop_reason("completed"));
}

TEST(TrainingStepPct, IsOneHundredTimesStepsDoneOverTotal) {
  EXPECT_EQ(protocol::training_step_pct(99, 1000), 10.0);
  EXPECT_EQ(protocol::training_step_pct(-1, 1000), 0.0);
  EXPECT_EQ(protocol::training_step_pct(0, 3), 100.0 / 3.0);  // Python: 100 * 1 / 3
  EXPECT_EQ(protocol::training_step_pct(2, 3), 100.0);
}

TEST(TrialReporter, RewritesTheWholeMetricsFileOnEachReport) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path() / "trial").value();
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() / "trial"));  // created
  EXPECT_TRUE(reporter.report_accuracy(0, 99, 2.5, 400, 0.25).value());
  EXPECT_TRUE(reporter.report_accuracy(100, 199, 3.0, 400, 0.5).value());
  auto const m = protocol::read_metrics(dir.path() / "trial").value();
  EXPECT_EQ(m.time.total_training_steps, 200);
  EXPECT_EQ(m.time.total_training_time_in_secs, 5.5);
  EXPECT_EQ(m.latency, -1.0);
  ASSERT_EQ(m.points.size(), 2u);
  EXPECT_EQ(m.points[0].training_step_pct, 25.0);
  EXPECT_EQ(m.points[0].training_step, 99);
  EXPECT_EQ(m.points[0].accuracy, 0.25);
  EXPECT_EQ(m.points[1].training_step_pct, 50.0);
  EXPECT_EQ(m.points[1].accuracy, 0.5);
  EXPECT_EQ(reporter.metrics().points.size(), 2u);
}

TEST(TrialReporter, IgnoresACycleThatIsNotBeyondTheLastPct) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(reporter.report_accuracy(0, 199, 4.0, 400, 0.5).value());
  EXPECT_FALSE(reporter.report_accuracy(100, 199, 9.0, 400, 0.6).value());  // the same pct
  EXPECT_FALSE(reporter.report_accuracy(0, 99, 9.0, 400, 0.6).value());     // an earlier one
  auto const m = protocol::read_metrics(dir.path()).value();
  ASSERT_EQ(m.points.size(), 1u);
  EXPECT_EQ(m.points[0].accuracy, 0.5);
  EXPECT_EQ(m.time.total_training_time_in_secs, 4.0);  // no time added
  EXPECT_EQ(m.time.total_training_steps, 200);
}

TEST(TrialReporter, RecordsANonFiniteAccuracyAsAFailedMetric) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(reporter.report_accuracy(0, 9, 1.0, 100, nan).value());
  ASSERT_TRUE(reporter.report_accuracy(10, 19, 1.0, 100, -INFINITY).value());
  auto const text = pt::read_file(dir.path() / "TRIAL_TRAINING_METRICS.json").value();
  EXPECT_EQ(text.find("NaN"), std::string::npos) << text;
  EXPECT_EQ(text.find("Infinity"), std::string::npos) << text;
  auto const v = pt::parse_json(text, "m").value();  // strict JSON: no NaN tokens written
  for (auto const& p : v.at("training_accuracy_over_steps").as_array())
    EXPECT_TRUE(p.at("accuracy").is_null());
  EXPECT_TRUE(std::isnan(reporter.metrics().points[1].accuracy));
}

TEST(TrialReporter, ReportsLatencyAndKeepsTheCurve) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(reporter.report_accuracy(0, 9, 1.0, 100, 0.3).value());
  ASSERT_TRUE(reporter.report_latency(0.042));
  auto m = protocol::read_metrics(dir.path()).value();
  EXPECT_EQ(m.latency, 0.042);
  EXPECT_EQ(m.points.size(), 1u);
  ASSERT_TRUE(reporter.report_latency(nan));
  auto const text = pt::read_file(dir.path() / "TRIAL_TRAINING_METRICS.json").value();
  EXPECT_TRUE(pt::parse_json(text, "m").value().at("latency").is_null());
  EXPECT_TRUE(std::isnan(protocol::read_metrics(dir.path()).value().latency));
}

TEST(TrialReporter, ContinuesTheMetricsFileOfAResumedTrial) {
  pt::testing::temp_dir const dir;
  {
    auto first = protocol::trial_reporter::open(dir.path()).value();
    ASSERT_TRUE(first.report_accuracy(0, 99, 10.0, 300, 0.4).value());
    ASSERT_TRUE(first.report_latency(0.5));
  }
  auto resumed = protocol::trial_reporter::open(dir.path()).value();
  EXPECT_EQ(resumed.metrics().time.total_training_steps, 100);
  EXPECT_FALSE(resumed.report_accuracy(0, 99, 10.0, 300, 0.4).value());  // a re-run cycle
  EXPECT_TRUE(resumed.report_accuracy(100, 199, 5.0, 300, 0.6).value());
  auto const m = protocol::read_metrics(dir.path()).value();
  ASSERT_EQ(m.points.size(), 2u);
  EXPECT_EQ(m.points[0].accuracy, 0.4);
  EXPECT_EQ(m.points[1].accuracy, 0.6);
  EXPECT_EQ(m.time.total_training_time_in_secs, 15.0);
  EXPECT_EQ(m.time.total_training_steps, 200);
  EXPECT_EQ(m.latency, 0.5);
}

TEST(TrialReporter, RefusesToOverwriteAMetricsFileItCannotRead) {
  pt::testing::temp_dir const dir;
  auto const path = dir.path() / "TRIAL_TRAINING_METRICS.json";
  ASSERT_TRUE(pt::write_file_atomically(path, R"({"training_time": 3})"));
  auto const r = protocol::trial_reporter::open(dir.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::malformed_file);
  EXPECT_EQ(r.error().context, path.string() + "#/training_time: expected an object");
  EXPECT_EQ(pt::read_file(path).value(), R"({"training_time": 3})");
}

TEST(TrialReporter, ReportsAFailureTheControllerCanRead) {
  pt::testing::temp_dir const dir;
  auto const reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(reporter.report_failure({protocol::failure_kind::oom, "CUDA out of memory", 40}));
  auto const f = protocol::read_failure(dir.path()).value();
  EXPECT_EQ(f.kind, protocol::failure_kind::oom);
  EXPECT_EQ(f.message, "CUDA out of memory");
  EXPECT_EQ(f.training_step, 40);
}

TEST(TrialReporter, ChecksItsCallersArguments) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  EXPECT_THROW((void)reporter.report_accuracy(10, 9, 1.0, 100, 0.5), pt::logic_error);
  EXPECT_THROW((void)reporter.report_accuracy(-1, 9, 1.0, 100, 0.5), pt::logic_error);
  EXPECT_THROW((void)reporter.report_accuracy(0, 9, 1.0, 0, 0.5), pt::logic_error);
  EXPECT_THROW((void)reporter.report_accuracy(0, 9, -1.0, 100, 0.5), pt::logic_error);
  EXPECT_THROW((void)reporter.report_accuracy(0, 9, nan, 100, 0.5), pt::logic_error);
  EXPECT_THROW((void)reporter.should_stop(-2, 100), pt::logic_error);
  EXPECT_THROW((void)reporter.should_stop(0, 0), pt::logic_error);
  EXPECT_THROW((void)protocol::trial_reporter::open(dir.path(), {.clock = nullptr}),
               pt::logic_error);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "TRIAL_TRAINING_METRICS.json"));
}

// A fake clock the test moves by hand.
struct fake_clock {
  std::shared_ptr<double> now = std::make_shared<double>(1'000'000.0);
  protocol::reporter_options options(double threshold = 900.0) const {
    return {.heartbeat_threshold_secs = threshold, .clock = [now = now] { return *now; }};
  }
};

TEST(ShouldStop, KeepsGoingWithoutSignals) {
  pt::testing::temp_dir const dir;
  auto const reporter = protocol::trial_reporter::open(dir.path()).value();
  EXPECT_EQ(reporter.should_stop(-1, 100).value(), stop_reason::keep_going);
  EXPECT_EQ(reporter.should_stop(99, 100).value(), stop_reason::keep_going);
}

TEST(ShouldStop, StopsNowOnADesiredPctOfZero) {
  pt::testing::temp_dir const dir;
  auto const reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 0.0));
  ASSERT_TRUE(std::filesystem::exists(dir.path() / "DESIRED_TRAINING_PCT.json"));  // written
  EXPECT_EQ(reporter.should_stop(-1, 100).value(), stop_reason::desired_pct_reached);
  EXPECT_EQ(reporter.should_stop(4, 100).value(), stop_reason::desired_pct_reached);
}

TEST(ShouldStop, StopsWhenThePctReachesTheDesiredPct) {
  pt::testing::temp_dir const dir;
  auto const reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 30.0));
  EXPECT_EQ(reporter.should_stop(28, 100).value(), stop_reason::keep_going);           // 29%
  EXPECT_EQ(reporter.should_stop(29, 100).value(), stop_reason::desired_pct_reached);  // 30%
  EXPECT_EQ(reporter.should_stop(80, 100).value(), stop_reason::desired_pct_reached);
  // The controller raises it for the next iteration (model selection): training goes on.
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 60.0));
  EXPECT_EQ(reporter.should_stop(29, 100).value(), stop_reason::keep_going);
}

TEST(ShouldStop, StopsWhenTheRecordedTimeReachesTheLimit) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(protocol::post_time_limit(dir.path(), 0.5));  // 1800 s
  ASSERT_TRUE(reporter.report_accuracy(0, 9, 1000.0, 100, 0.1).value());
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::keep_going);
  ASSERT_TRUE(reporter.report_accuracy(10, 19, 800.0, 100, 0.2).value());  // exactly 1800
  EXPECT_EQ(reporter.should_stop(19, 100).value(), stop_reason::time_limit_reached);  // >=
}

TEST(ShouldStop, KeepsBothTheDesiredPctAndTheTimeLimit) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 50.0));
  ASSERT_TRUE(protocol::post_time_limit(dir.path(), 1.0));
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 40.0));  // reposting keeps the limit
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "MAX_TRAINING_TIME.json"));
  ASSERT_TRUE(reporter.report_accuracy(0, 9, 3600.0, 100, 0.1).value());
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::time_limit_reached);
  // Both reached: the desired pct is checked first.
  EXPECT_EQ(reporter.should_stop(39, 100).value(), stop_reason::desired_pct_reached);
}

TEST(ShouldStop, StopsWhenTheHeartbeatIsOlderThanTheThreshold) {
  pt::testing::temp_dir const dir;
  fake_clock const clock;
  auto const reporter = protocol::trial_reporter::open(dir.path(), clock.options()).value();
  // No heartbeat file: no heartbeat is used.
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::keep_going);
  ASSERT_TRUE(protocol::post_heartbeat(dir.path(), *clock.now - 5.0));
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::keep_going);
  *clock.now += 895.0;  // exactly 900 s old: not older than the threshold
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::keep_going);
  *clock.now += 0.5;
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::controller_lost);
  ASSERT_TRUE(protocol::post_heartbeat(dir.path(), *clock.now));  // the controller is back
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::keep_going);
}

TEST(ShouldStop, UsesTheConfiguredHeartbeatThreshold) {
  pt::testing::temp_dir const dir;
  fake_clock const clock;
  auto const reporter = protocol::trial_reporter::open(dir.path(), clock.options(10.0)).value();
  ASSERT_TRUE(protocol::post_heartbeat(dir.path(), *clock.now - 10.5));
  EXPECT_EQ(reporter.should_stop(9, 100).value(), stop_reason::controller_lost);
  // The default threshold is 15 minutes.
  EXPECT_EQ(protocol::reporter_options{}.heartbeat_threshold_secs, 900.0);
}

TEST(ShouldStop, ChecksTheReasonsInOrder) {
  pt::testing::temp_dir const dir;
  fake_clock const clock;
  auto reporter = protocol::trial_reporter::open(dir.path(), clock.options()).value();
  ASSERT_TRUE(reporter.report_accuracy(0, 49, 7200.0, 100, 0.1).value());
  ASSERT_TRUE(protocol::post_heartbeat(dir.path(), 0.0));
  EXPECT_EQ(reporter.should_stop(49, 100).value(), stop_reason::controller_lost);
  ASSERT_TRUE(protocol::post_time_limit(dir.path(), 2.0));
  EXPECT_EQ(reporter.should_stop(49, 100).value(), stop_reason::time_limit_reached);
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 50.0));
  EXPECT_EQ(reporter.should_stop(49, 100).value(), stop_reason::desired_pct_reached);
}

TEST(ShouldStop, NamesAMalformedSignalFile) {
  pt::testing::temp_dir const dir;
  auto const reporter = protocol::trial_reporter::open(dir.path()).value();
  auto const path = dir.path() / "MAX_TRAINING_TIME.json";
  ASSERT_TRUE(pt::write_file_atomically(path, R"({"max_training_time_in_hrs": "1"})"));
  auto const r = reporter.should_stop(9, 100);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::malformed_file);
  EXPECT_EQ(r.error().context, path.string() + "#/max_training_time_in_hrs: expected a number");
  ASSERT_TRUE(pt::write_file_atomically(path, ""));
  auto const empty = reporter.should_stop(9, 100);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().context, path.string() + ": line 1, column 1: incomplete JSON");
}

}  // namespace
