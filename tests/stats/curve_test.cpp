#include <proxytask/stats/curve.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

namespace pt = proxytask;
using pt::stats::curve_point;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

std::vector<double> pcts_of(std::vector<curve_point> const& curve) {
  std::vector<double> out;
  for (auto const& p : curve) out.push_back(p.training_step_pct);
  return out;
}

TEST(NormaliseCurve, OrdersPointsByPct) {
  std::vector<curve_point> const curve{{60.0, 5, 0.6}, {30.0, 2, 0.3}, {100.0, 9, 0.9}};
  auto const out = pt::stats::normalise_curve(curve);
  EXPECT_EQ(pcts_of(out), (std::vector<double>{30.0, 60.0, 100.0}));
  EXPECT_EQ(out[0].training_step, 2);
  EXPECT_EQ(out[0].accuracy, 0.3);
}

TEST(NormaliseCurve, KeepsTheLatestValueOfADuplicatePct) {
  std::vector<curve_point> const curve{
      {50.0, 4, 0.1}, {100.0, 9, 0.2}, {50.0, 4, 0.3}, {50.0, 4, 0.35}};
  auto const out = pt::stats::normalise_curve(curve);
  ASSERT_EQ(pcts_of(out), (std::vector<double>{50.0, 100.0}));
  EXPECT_EQ(out[0].accuracy, 0.35);
  EXPECT_EQ(out[1].accuracy, 0.2);
}

TEST(NormaliseCurve, DropsPointsWithoutAPct) {
  std::vector<curve_point> const curve{{nan, 1, 0.5}, {20.0, 2, 0.4}};
  auto const out = pt::stats::normalise_curve(curve);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].accuracy, 0.4);
  EXPECT_TRUE(pt::stats::normalise_curve({}).empty());
}

TEST(FinalAccuracy, IsTheLatestValueAtTheHighestPct) {
  std::vector<curve_point> const curve{{100.0, 9, 0.8}, {50.0, 4, 0.5}, {100.0, 9, 0.81}};
  EXPECT_EQ(pt::stats::final_accuracy(curve), 0.81);
  EXPECT_EQ(pt::stats::final_accuracy({}), std::nullopt);
}

TEST(AccuracyAtPct, InterpolatesFromTheOrigin) {
  std::vector<curve_point> const curve{{40.0, 39, 0.8}};
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(curve, 10.0), 0.2);
}

TEST(AccuracyAtPct, InterpolatesBetweenRecordedPoints) {
  std::vector<curve_point> const curve{{20.0, 19, 0.4}, {60.0, 59, 0.6}, {100.0, 99, 0.7}};
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(curve, 40.0), 0.5);
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(curve, 80.0), 0.65);
}

TEST(AccuracyAtPct, ReturnsTheRecordedValueAtAPoint) {
  std::vector<curve_point> const curve{
      {14.0, 139, 0.694795}, {24.0, 239, 0.83882}, {100.0, 999, 0.884052}};
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 14.0), 0.694795);
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 100.0), 0.884052);
}

TEST(AccuracyAtPct, IsAbsentBeyondTheHighestRecordedPct) {
  std::vector<curve_point> const curve{{40.0, 39, 0.8}};
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 40.0001), std::nullopt);
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 40.0), 0.8);
  EXPECT_EQ(pt::stats::accuracy_at_pct({}, 0.0), std::nullopt);
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, nan), std::nullopt);
}

TEST(AccuracyAtPct, GivesTheOriginValueBelowTheOrigin) {
  // numpy.interp returns its first value left of the first knot: the origin's 0.0.
  std::vector<curve_point> const curve{{20.0, 19, 0.4}};
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, -3.0), 0.0);
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 0.0), 0.0);
}

TEST(AccuracyAtPct, UsesARecordedPointAtPctZeroInsteadOfTheOrigin) {
  std::vector<curve_point> const curve{{0.0, 0, 0.3}, {100.0, 9, 0.9}};
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 0.0), 0.3);
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(curve, 50.0), 0.6);
}

TEST(AccuracyAtPct, SortsUnsortedPointsFirst) {
  std::vector<curve_point> const curve{{60.0, 5, 0.6}, {30.0, 2, 0.3}, {100.0, 9, 0.9}};
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(curve, 45.0), 0.45);
  // Availability follows the highest pct, not the last point in recording order (the reference
  // looks at the last one and would answer "not reached" here).
  std::vector<curve_point> const late_low{{100.0, 9, 0.9}, {50.0, 4, 0.5}};
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(late_low, 75.0), 0.7);
}

TEST(AccuracyAtPct, UsesTheLatestValueOfADuplicatePct) {
  std::vector<curve_point> const curve{{50.0, 4, 0.1}, {50.0, 4, 0.3}, {100.0, 9, 0.5}};
  EXPECT_EQ(pt::stats::accuracy_at_pct(curve, 50.0), 0.3);
  EXPECT_DOUBLE_EQ(*pt::stats::accuracy_at_pct(curve, 75.0), 0.4);
}

TEST(AccuracyAtPct, MatchesNumpyInterpOnAReferenceVector) {
  // accuracy_at_step-public-0017 (tests/data/reference)
  std::vector<curve_point> const curve{{21.295917, 211, 0.34038},  {43.705093, 436, 0.407853},
                                       {45.506184, 454, 0.447902}, {81.726081, 816, 0.476008},
                                       {92.178486, 920, 0.499407}, {100.0, 999, 0.503535}};
  EXPECT_NEAR(*pt::stats::accuracy_at_pct(curve, 11.527879), 0.18425407339914035, 1e-15);
}

}  // namespace
