#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/trainer.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <support/temp_dir.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

TEST(Controller, ReadsAMissingFileAsNotFound) {
  pt::testing::temp_dir const dir;
  auto const metrics = protocol::read_metrics(dir.path());
  ASSERT_FALSE(metrics);
  EXPECT_EQ(metrics.error().code, pt::errc::not_found);
  auto const failure = protocol::read_failure(dir.path());
  ASSERT_FALSE(failure);
  EXPECT_EQ(failure.error().code, pt::errc::not_found);
  auto const spec = protocol::read_model_spec(dir.path() / "MODEL_SPEC.json");
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code, pt::errc::not_found);
  // A missing trial directory is the same outcome.
  EXPECT_EQ(protocol::read_metrics(dir.path() / "no-such-trial").error().code, pt::errc::not_found);
}

TEST(Controller, PostsSignalFilesWithTheirExactContents) {
  pt::testing::temp_dir const dir;
  ASSERT_TRUE(protocol::post_desired_pct(dir.path(), 12.5));
  ASSERT_TRUE(protocol::post_time_limit(dir.path(), 0.25));
  ASSERT_TRUE(protocol::post_heartbeat(dir.path(), 1700000000.5));
  auto const read = [&](char const* name) {
    return pt::parse_json(pt::read_file(dir.path() / name).value(), name).value();
  };
  EXPECT_EQ(read("DESIRED_TRAINING_PCT.json"),
            (boost::json::value{{"desired_training_pct", 12.5}}));
  EXPECT_EQ(read("MAX_TRAINING_TIME.json"),
            (boost::json::value{{"max_training_time_in_hrs", 0.25}}));
  EXPECT_EQ(read("controller_alive_timestamp.json"),
            (boost::json::value{{"timestamp", 1700000000.5}}));
  // The default timestamp is now.
  double const before = protocol::unix_now();
  ASSERT_TRUE(protocol::post_heartbeat(dir.path()));
  double const posted = read("controller_alive_timestamp.json").at("timestamp").as_double();
  EXPECT_GE(posted, before);
  EXPECT_LE(posted, protocol::unix_now());
}

TEST(Controller, RefusesSignalsThatCannotBeWritten) {
  pt::testing::temp_dir const dir;
  double const nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW((void)protocol::post_desired_pct(dir.path(), nan), pt::logic_error);
  EXPECT_THROW((void)protocol::post_desired_pct(dir.path(), -1.0), pt::logic_error);
  EXPECT_THROW((void)protocol::post_time_limit(dir.path(), INFINITY), pt::logic_error);
  EXPECT_THROW((void)protocol::post_heartbeat(dir.path(), nan), pt::logic_error);
  auto const missing_dir = protocol::post_desired_pct(dir.path() / "absent", 10.0);
  ASSERT_FALSE(missing_dir);  // an I/O error value, naming the file
  EXPECT_NE(missing_dir.error().context.find("DESIRED_TRAINING_PCT.json"), std::string::npos);
}

TEST(Controller, PostsTheModelSpecTheTrainerReads) {
  pt::testing::temp_dir const dir;
  protocol::model_spec const spec{"m7", {{"depth", 2}, {"final_accuracy", 0.8}}};
  ASSERT_TRUE(protocol::post_model_spec(dir.path(), spec));
  auto const back = protocol::read_model_spec(dir.path() / "MODEL_SPEC.json").value();
  EXPECT_EQ(back.model_id, "m7");
  EXPECT_EQ(back.parameters, spec.parameters);
}

TEST(Controller, ComputesAccuracyAtPctFromAReadFile) {
  pt::testing::temp_dir const dir;
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_TRUE(reporter.report_accuracy(0, 19, 1.0, 100, 0.4).value());   // 20%
  ASSERT_TRUE(reporter.report_accuracy(20, 39, 1.0, 100, 0.6).value());  // 40%
  auto const m = protocol::read_metrics(dir.path()).value();
  EXPECT_DOUBLE_EQ(protocol::accuracy_at_pct(m, 10.0).value(), 0.2);  // from the origin (0, 0)
  EXPECT_DOUBLE_EQ(protocol::accuracy_at_pct(m, 30.0).value(), 0.5);
  EXPECT_EQ(protocol::accuracy_at_pct(m, 40.0).value(), 0.6);
  EXPECT_FALSE(protocol::accuracy_at_pct(m, 40.5));  // not reached yet
}

TEST(Controller, ComputesAccuracyAtPctFromAPythonWrittenFile) {
  pt::testing::temp_dir const dir;
  ASSERT_TRUE(pt::write_file_atomically(dir.path() / "TRIAL_TRAINING_METRICS.json", R"(
    {"training_time": {"total_training_steps": 300, "total_training_time_in_secs": 9.0},
     "latency": -1,
     "training_accuracy_over_steps": [
       {"training_step_pct": 50.0, "training_step": 149, "accuracy": 0.5},
       {"training_step_pct": 100.0, "training_step": 299, "accuracy": NaN}]})"));
  auto const m = protocol::read_metrics(dir.path()).value();
  EXPECT_EQ(protocol::accuracy_at_pct(m, 25.0).value(), 0.25);
  EXPECT_TRUE(std::isnan(protocol::accuracy_at_pct(m, 75.0).value()));  // a failed metric
}

TEST(Controller, NamesThePathAndPointerOfAMalformedMetricsFile) {
  pt::testing::temp_dir const dir;
  auto const path = dir.path() / "TRIAL_TRAINING_METRICS.json";
  ASSERT_TRUE(pt::write_file_atomically(path, R"({"training_time": {"total_training_steps": 1,
    "total_training_time_in_secs": 0}, "latency": -1, "training_accuracy_over_steps": [
    {"training_step_pct": 1, "training_step": 0, "accuracy": [0.5]}]})"));
  auto const r = protocol::read_metrics(dir.path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::malformed_file);
  EXPECT_EQ(r.error().message(), "malformed file: " + path.string() +
                                     "#/training_accuracy_over_steps/0/accuracy: "
                                     "expected a number");
  ASSERT_TRUE(pt::write_file_atomically(path, "{\"training_time\": {\"total_"));  // truncated
  auto const truncated = protocol::read_metrics(dir.path());
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().context, path.string() + ": line 1, column 27: incomplete JSON");
}

}  // namespace
