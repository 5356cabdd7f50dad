#include <proxytask/protocol/metrics.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

protocol::trial_metrics sample_metrics() {
  protocol::trial_metrics m;
  m.time = {300, 12.75};
  m.latency = 0.0125;
  m.points = {{10.0, 99, 0.25}, {20.0, 199, nan}, {30.000000000000004, 299, 0.4375}};
  return m;
}

TEST(TrialMetricsJson, WritesExactlyTheVertexFieldNames) {
  auto const v = boost::json::value_from(sample_metrics());
  auto const& o = v.as_object();
  EXPECT_EQ(o.size(), 3u);
  auto const& time = o.at("training_time").as_object();
  EXPECT_EQ(time.size(), 2u);
  EXPECT_EQ(time.at("total_training_steps").as_int64(), 300);
  EXPECT_EQ(time.at("total_training_time_in_secs").as_double(), 12.75);
  EXPECT_EQ(o.at("latency").as_double(), 0.0125);
  auto const& points = o.at("training_accuracy_over_steps").as_array();
  ASSERT_EQ(points.size(), 3u);
  auto const& p0 = points[0].as_object();
  EXPECT_EQ(p0.size(), 3u);
  EXPECT_EQ(p0.at("training_step_pct").as_double(), 10.0);
  EXPECT_EQ(p0.at("training_step").as_int64(), 99);  // an integer, not 99.0
  EXPECT_EQ(p0.at("accuracy").as_double(), 0.25);
  EXPECT_TRUE(points[1].at("accuracy").is_null());  // a failed metric: null, never NaN
}

TEST(TrialMetricsJson, RoundTripsThroughText) {
  auto const m = sample_metrics();
  auto const text = boost::json::serialize(boost::json::value_from(m));
  auto const back = protocol::parse_trial_metrics(text, "m.json").value();
  EXPECT_EQ(back.time.total_training_steps, 300);
  EXPECT_EQ(back.time.total_training_time_in_secs, 12.75);
  EXPECT_EQ(back.latency, 0.0125);
  ASSERT_EQ(back.points.size(), 3u);
  EXPECT_EQ(back.points[2].training_step_pct, 30.000000000000004);  // every bit kept
  EXPECT_EQ(back.points[2].training_step, 299);
  EXPECT_EQ(back.points[2].accuracy, 0.4375);
  EXPECT_TRUE(std::isnan(back.points[1].accuracy));
  // Boost.JSON's own conversions agree.
  auto const via_boost =
      boost::json::try_value_to<protocol::trial_metrics>(boost::json::value_from(m));
  ASSERT_TRUE(via_boost);
  EXPECT_EQ(via_boost->points.size(), 3u);
}

TEST(TrialMetricsJson, WritesNonFiniteLatencyAsNullAndKeepsMinusOne) {
  protocol::trial_metrics m;
  EXPECT_EQ(m.latency, protocol::latency_not_measured);
  EXPECT_EQ(boost::json::value_from(m).at("latency").as_double(), -1.0);
  m.latency = std::numeric_limits<double>::infinity();
  EXPECT_TRUE(boost::json::value_from(m).at("latency").is_null());
}

TEST(TrialMetricsJson, ReadsWhatPythonsJsonModuleWrites) {
  // json.dumps of a dict with float('nan'), float('inf'), and ints as Python writes them.
  auto const text = R"({"training_time": {"total_training_steps": 200,
    "total_training_time_in_secs": 3.5}, "latency": NaN,
    "training_accuracy_over_steps": [
      {"training_step_pct": 50.0, "training_step": 99, "accuracy": NaN},
      {"training_step_pct": 100.0, "training_step": 199, "accuracy": Infinity},
      {"training_step_pct": 100.0, "training_step": 199.0, "accuracy": null}],
    "extra_field_of_a_newer_writer": {"ignored": true}})";
  auto const m = protocol::parse_trial_metrics(text, "m.json").value();
  EXPECT_TRUE(std::isnan(m.latency));
  ASSERT_EQ(m.points.size(), 3u);
  for (auto const& p : m.points) EXPECT_TRUE(std::isnan(p.accuracy));
  EXPECT_EQ(m.points[2].training_step, 199);
}

/// The error of parsing `text`, which must fail with errc::malformed_file.
std::string error_of(std::string const& text) {
  auto const r = protocol::parse_trial_metrics(text, "TRIAL_TRAINING_METRICS.json");
  EXPECT_FALSE(r) << text;
  if (r) return "";
  EXPECT_EQ(r.error().code, pt::errc::malformed_file) << text;
  return r.error().context;
}

std::string with_points(std::string const& points) {
  return R"({"training_time": {"total_training_steps": 1, "total_training_time_in_secs": 1},
             "latency": -1, "training_accuracy_over_steps": [)" +
         points + "]}";
}

TEST(TrialMetricsJson, NamesFileAndPointerOfABadField) {
  std::string const ok = R"({"training_step_pct": 10, "training_step": 0, "accuracy": 0.5})";
  EXPECT_EQ(error_of(with_points(ok + "," + ok + "," + ok +
                                 R"(,{"training_step_pct": 40, "training_step": 3,
                                      "accuracy": "0.5"})")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/3/accuracy: "
            "expected a number");
  EXPECT_EQ(error_of(with_points(R"({"training_step_pct": 10, "accuracy": 0.5})")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/0/training_step: missing");
  EXPECT_EQ(error_of(with_points(R"({"training_step_pct": 10, "training_step": -1,
                                     "accuracy": 0.5})")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/0/training_step: "
            "expected an integer >= 0");
  EXPECT_EQ(error_of(with_points(R"({"training_step_pct": 10, "training_step": 1.5,
                                     "accuracy": 0.5})")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/0/training_step: "
            "expected an integer");
  EXPECT_EQ(error_of(with_points(R"({"training_step_pct": NaN, "training_step": 1,
                                     "accuracy": 0.5})")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/0/training_step_pct: "
            "expected a finite number");
  EXPECT_EQ(error_of(with_points(R"({"training_step_pct": -5, "training_step": 1,
                                     "accuracy": 0.5})")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/0/training_step_pct: "
            "expected a number >= 0");
  EXPECT_EQ(error_of(with_points("[]")),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps/0: expected an object");
}

TEST(TrialMetricsJson, NamesTopLevelProblems) {
  EXPECT_EQ(error_of("[]"), "TRIAL_TRAINING_METRICS.json#: expected an object");
  EXPECT_EQ(error_of(R"({"latency": -1, "training_accuracy_over_steps": []})"),
            "TRIAL_TRAINING_METRICS.json#/training_time: missing");
  EXPECT_EQ(error_of(R"({"training_time": {"total_training_steps": 1,
                                           "total_training_time_in_secs": -2},
                         "latency": -1, "training_accuracy_over_steps": []})"),
            "TRIAL_TRAINING_METRICS.json#/training_time/total_training_time_in_secs: "
            "expected a number >= 0");
  EXPECT_EQ(error_of(R"({"training_time": {"total_training_steps": 1,
                                           "total_training_time_in_secs": 2},
                         "latency": "fast", "training_accuracy_over_steps": []})"),
            "TRIAL_TRAINING_METRICS.json#/latency: expected a number");
  EXPECT_EQ(error_of(R"({"training_time": {"total_training_steps": 1,
                                           "total_training_time_in_secs": 2},
                         "latency": -1, "training_accuracy_over_steps": {}})"),
            "TRIAL_TRAINING_METRICS.json#/training_accuracy_over_steps: expected an array");
  EXPECT_EQ(error_of(R"({"training_time": 5, "latency": -1,
                         "training_accuracy_over_steps": []})"),
            "TRIAL_TRAINING_METRICS.json#/training_time: expected an object");
}

TEST(TrialMetricsJson, NamesLineAndColumnOfEmptyAndTruncatedText) {
  EXPECT_EQ(error_of(""), "TRIAL_TRAINING_METRICS.json: line 1, column 1: incomplete JSON");
  auto const full = boost::json::serialize(boost::json::value_from(sample_metrics()));
  auto const truncated = full.substr(0, full.size() / 2);
  auto const message = error_of(truncated);
  EXPECT_EQ(message.rfind("TRIAL_TRAINING_METRICS.json: line 1, column ", 0), 0u) << message;
  // A valid document followed by the rest of another (two writers without atomic renames).
  EXPECT_NE(error_of(full + full.substr(5)).find("extra data"), std::string::npos);
}

}  // namespace
