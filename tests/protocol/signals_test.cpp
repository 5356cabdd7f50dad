#include <proxytask/protocol/signals.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cmath>
#include <string>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

TEST(SignalJson, WritesTheReferenceFieldNames) {
  EXPECT_EQ(boost::json::value_from(protocol::desired_pct_signal{0.0}),
            (boost::json::value{{"desired_training_pct", 0.0}}));
  EXPECT_EQ(boost::json::value_from(protocol::time_limit_signal{1.5}),
            (boost::json::value{{"max_training_time_in_hrs", 1.5}}));
  EXPECT_EQ(boost::json::value_from(protocol::heartbeat_signal{1700000000.25}),
            (boost::json::value{{"timestamp", 1700000000.25}}));
}

TEST(SignalJson, RoundTripsThroughText) {
  auto const text = [](auto const& s) {
    return boost::json::serialize(boost::json::value_from(s));
  };
  EXPECT_EQ(protocol::parse_desired_pct(text(protocol::desired_pct_signal{33.333333333333336}), "f")
                .value()
                .desired_training_pct,
            33.333333333333336);
  EXPECT_EQ(protocol::parse_time_limit(text(protocol::time_limit_signal{0.1}), "f")
                .value()
                .max_training_time_in_hrs,
            0.1);
  EXPECT_EQ(
      protocol::parse_heartbeat(text(protocol::heartbeat_signal{1.7e9}), "f").value().timestamp,
      1.7e9);
  // Integers, as Python writes json.dumps({"desired_training_pct": 30}), are numbers too.
  EXPECT_EQ(protocol::parse_desired_pct(R"({"desired_training_pct": 30})", "f")
                .value()
                .desired_training_pct,
            30.0);
  auto const via_boost = boost::json::try_value_to<protocol::time_limit_signal>(
      boost::json::value{{"max_training_time_in_hrs", 2}});
  ASSERT_TRUE(via_boost);
  EXPECT_EQ(via_boost->max_training_time_in_hrs, 2.0);
  EXPECT_FALSE(boost::json::try_value_to<protocol::heartbeat_signal>(boost::json::value{1}));
}

TEST(SignalJson, NamesFileAndPointerOfABadValue) {
  auto const context = [](pt::result<protocol::desired_pct_signal> const& r) {
    EXPECT_FALSE(r);
    if (r) return std::string();
    EXPECT_EQ(r.error().code, pt::errc::malformed_file);
    return r.error().context;
  };
  EXPECT_EQ(context(protocol::parse_desired_pct(R"({"desired_training_pct": NaN})",
                                                "DESIRED_TRAINING_PCT.json")),
            "DESIRED_TRAINING_PCT.json#/desired_training_pct: expected a finite number");
  EXPECT_EQ(context(protocol::parse_desired_pct(R"({"desired_training_pct": -1})",
                                                "DESIRED_TRAINING_PCT.json")),
            "DESIRED_TRAINING_PCT.json#/desired_training_pct: expected a number >= 0");
  EXPECT_EQ(context(protocol::parse_desired_pct(R"({"desired_training_pct": "30"})",
                                                "DESIRED_TRAINING_PCT.json")),
            "DESIRED_TRAINING_PCT.json#/desired_training_pct: expected a number");
  EXPECT_EQ(
      context(protocol::parse_desired_pct(R"({"desired_pct": 30})", "DESIRED_TRAINING_PCT.json")),
      "DESIRED_TRAINING_PCT.json#/desired_training_pct: missing");
  EXPECT_EQ(context(protocol::parse_desired_pct("30", "DESIRED_TRAINING_PCT.json")),
            "DESIRED_TRAINING_PCT.json#: expected an object");
  EXPECT_EQ(context(protocol::parse_desired_pct("", "DESIRED_TRAINING_PCT.json")),
            "DESIRED_TRAINING_PCT.json: line 1, column 1: incomplete JSON");

  auto const limit = protocol::parse_time_limit(R"({"max_training_time_in_hrs": Infinity})",
                                                "MAX_TRAINING_TIME.json");
  ASSERT_FALSE(limit);
  EXPECT_EQ(limit.error().context,
            "MAX_TRAINING_TIME.json#/max_training_time_in_hrs: expected a finite number");
  auto const heartbeat = protocol::parse_heartbeat(R"({"timestamp": null})", "hb.json");
  ASSERT_FALSE(heartbeat);
  EXPECT_EQ(heartbeat.error().context, "hb.json#/timestamp: expected a number");
}

TEST(UnixNow, IsTheSystemClockInSeconds) {
  double const now = protocol::unix_now();
  EXPECT_GT(now, 1.6e9);  // after 2020
  EXPECT_LT(now, 4.2e9);  // and in seconds, not milliseconds
}

}  // namespace
