#include <proxytask/protocol/failure.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

TEST(FailureKind, NamesEveryKindAndParsesItBack) {
  char const* const names[] = {"crashed",   "oom",       "diverged",    "no_metrics", "timed_out",
                               "cancelled", "preempted", "node_failed", "lost"};
  ASSERT_EQ(std::size(protocol::all_failure_kinds), std::size(names));
  for (std::size_t i = 0; i < std::size(names); ++i) {
    EXPECT_EQ(protocol::to_string(protocol::all_failure_kinds[i]), names[i]);
    EXPECT_EQ(protocol::parse_failure_kind(names[i]), protocol::all_failure_kinds[i]);
  }
  EXPECT_FALSE(protocol::parse_failure_kind("OOM"));
  EXPECT_FALSE(protocol::parse_failure_kind(""));
}

TEST(TrialFailureJson, RoundTripsWithAndWithoutAStep) {
  protocol::trial_failure const with_step{protocol::failure_kind::diverged, "loss is NaN", 1234};
  auto const v = boost::json::value_from(with_step);
  EXPECT_EQ(v, (boost::json::value{
                   {"kind", "diverged"}, {"message", "loss is NaN"}, {"training_step", 1234}}));
  auto const back = protocol::parse_trial_failure(boost::json::serialize(v), "f").value();
  EXPECT_EQ(back.kind, protocol::failure_kind::diverged);
  EXPECT_EQ(back.message, "loss is NaN");
  EXPECT_EQ(back.training_step, 1234);

  protocol::trial_failure const without{protocol::failure_kind::oom, "", std::nullopt};
  auto const w = boost::json::value_from(without);
  EXPECT_FALSE(w.as_object().contains("training_step"));
  auto const w_back = boost::json::try_value_to<protocol::trial_failure>(w);
  ASSERT_TRUE(w_back);
  EXPECT_EQ(w_back->kind, protocol::failure_kind::oom);
  EXPECT_FALSE(w_back->training_step);
}

TEST(TrialFailureJson, NamesFileAndPointerOfABadField) {
  auto const context = [](char const* text) {
    auto const r = protocol::parse_trial_failure(text, "TRIAL_FAILURE.json");
    EXPECT_FALSE(r) << text;
    if (r) return std::string();
    EXPECT_EQ(r.error().code, pt::errc::malformed_file);
    return r.error().context;
  };
  EXPECT_EQ(context(R"({"kind": "exploded", "message": ""})"),
            "TRIAL_FAILURE.json#/kind: unknown failure kind \"exploded\" (expected one of "
            "crashed, oom, diverged, no_metrics, timed_out, cancelled, preempted, node_failed, "
            "lost)");
  EXPECT_EQ(context(R"({"message": ""})"), "TRIAL_FAILURE.json#/kind: missing");
  EXPECT_EQ(context(R"({"kind": "oom"})"), "TRIAL_FAILURE.json#/message: missing");
  EXPECT_EQ(context(R"({"kind": "oom", "message": "", "training_step": -3})"),
            "TRIAL_FAILURE.json#/training_step: expected an integer >= 0");
  EXPECT_EQ(context(R"({"kind": "oom", "message": "", "training_step": "7"})"),
            "TRIAL_FAILURE.json#/training_step: expected an integer");
}

}  // namespace
