#include <proxytask/stats/variance.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace {

namespace pt = proxytask;
using pt::stats::curve_point;
using pt::stats::smoothness_reason;
using pt::stats::variance_reason;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

pt::stats::variance_result cv(std::vector<double> const& values) {
  return pt::stats::coefficient_of_variation(values);
}

std::vector<curve_point> curve(std::vector<double> const& pcts, std::vector<double> const& accs) {
  std::vector<curve_point> out;
  for (std::size_t i = 0; i < pcts.size(); ++i) out.push_back({pcts[i], 0, accs[i]});
  return out;
}

double smoothness_of(std::vector<curve_point> const& c) {
  return pt::stats::curve_smoothness(c).value().value;
}

TEST(PairwiseSum, AddsFewerThanEightValuesInOrder) {
  // 1 + 2^55 rounds to 2^55; then - 2^55 + 1 = 1.
  double const big = std::ldexp(1.0, 55);
  std::vector<double> const v{1.0, big, -big, 1.0};
  EXPECT_EQ(pt::stats::detail::pairwise_sum(v), 1.0);
}

TEST(PairwiseSum, AddsEightOrMoreValuesInEightInterleavedAccumulators) {
  // numpy: ((r0 + r1) + (r2 + r3)) + ... = ((1 + 2^55) + (-2^55 + 1)) + 0 = 2^55 - 2^55 = 0,
  // where a plain loop gives 1.
  double const big = std::ldexp(1.0, 55);
  std::vector<double> const v{1.0, big, -big, 1.0, 0.0, 0.0, 0.0, 0.0};
  EXPECT_EQ(pt::stats::detail::pairwise_sum(v), 0.0);
  std::vector<double> many(1000, 0.25);
  EXPECT_EQ(pt::stats::detail::pairwise_sum(many), 250.0);
}

TEST(CoefficientOfVariation, IsThePopulationStdOverTheMean) {
  // edge-population_std and variance-public-0025 (tests/data/reference)
  EXPECT_NEAR(cv({0.6, 0.8}).value, 0.1428571428571429, 1e-15);
  EXPECT_NEAR(cv({0.696819, 0.738174}).value, 0.028818955911283212, 1e-15);
  EXPECT_EQ(cv({0.6, 0.8}).reason, variance_reason::none);
}

TEST(CoefficientOfVariation, IsZeroForFewerThanTwoValuesAsTheReference) {
  EXPECT_EQ(cv({}).value, 0.0);
  EXPECT_EQ(cv({0.5}).value, 0.0);
  EXPECT_EQ(cv({0.5}).reason, variance_reason::none);
}

TEST(CoefficientOfVariation, IsZeroForIdenticalValues) {
  EXPECT_EQ(cv({0.5, 0.5, 0.5}).value, 0.0);
  // As in numpy, a mean that is not exact leaves a spread of rounding size.
  EXPECT_LT(cv({0.7, 0.7, 0.7}).value, 1e-15);
}

TEST(CoefficientOfVariation, IsNanWithAReasonForAZeroMean) {
  for (auto const& values : {std::vector<double>{0.0, 0.0}, std::vector<double>{0.5, -0.5}}) {
    auto const r = cv(values);
    EXPECT_TRUE(std::isnan(r.value));
    EXPECT_EQ(r.reason, variance_reason::zero_mean);
    EXPECT_FALSE(pt::stats::is_good(r));
  }
}

TEST(CoefficientOfVariation, IsNanWithAReasonForANegativeMean) {
  // The reference answers a negative ratio, which its verdict calls good.
  auto const r = cv({-0.85519, -0.213339, -0.898926, 0.185561});
  EXPECT_TRUE(std::isnan(r.value));
  EXPECT_EQ(r.reason, variance_reason::negative_mean);
  EXPECT_FALSE(pt::stats::is_good(r));
}

TEST(CoefficientOfVariation, IsNanWithAReasonForAMissingValue) {
  for (auto const& values : {std::vector<double>{0.5, nan, 0.6}, std::vector<double>{nan},
                             std::vector<double>{0.5, inf}}) {
    auto const r = cv(values);
    EXPECT_TRUE(std::isnan(r.value));
    EXPECT_EQ(r.reason, variance_reason::non_finite_value);
  }
}

TEST(VarianceVerdict, IsGoodUpToTheThreshold) {
  EXPECT_TRUE(pt::stats::is_good(pt::stats::variance_result{0.4, variance_reason::none}));
  EXPECT_FALSE(pt::stats::is_good(pt::stats::variance_result{0.41, variance_reason::none}));
  EXPECT_TRUE(pt::stats::is_good(pt::stats::smoothness_result{10.0, smoothness_reason::none}));
  EXPECT_FALSE(pt::stats::is_good(pt::stats::smoothness_result{10.5, smoothness_reason::none}));
  EXPECT_FALSE(pt::stats::is_good(pt::stats::smoothness_result{}));
}

TEST(CurveSmoothness, IsZeroForAMonotoneCurve) {
  EXPECT_EQ(smoothness_of(curve({50.0, 100.0}, {0.870298, 0.975864})), 0.0);
  EXPECT_EQ(smoothness_of(curve({10, 40, 70, 100}, {0.1, 0.3, 0.3, 0.9})), 0.0);
}

TEST(CurveSmoothness, SumsThirtyNegativeSlopesOfAFallingLine) {
  // Normalised, a falling line has slope -1 at each of the 3 x 10 samples.
  EXPECT_DOUBLE_EQ(smoothness_of(curve({50.0, 100.0}, {0.2, 0.1})), 30.0);
}

TEST(CurveSmoothness, MatchesTheReferenceOnADropAtAKnot) {
  // edge-drop_at_knot (tests/data/reference): the float32 normalisation shows in the last digits.
  auto const c = curve({10, 20, 30, 40, 50, 60, 70, 80, 90, 100},
                       {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.6, 0.8, 0.9});
  EXPECT_NEAR(smoothness_of(c), 4.499998122453578, 1e-9 * 4.5);
}

TEST(CurveSmoothness, IgnoresDifferencesBelowFloat32Resolution) {
  // In double the first segment falls by 1e-9; in float32 both values are 0.5.
  EXPECT_EQ(smoothness_of(curve({25.0, 50.0, 100.0}, {0.5 + 1e-9, 0.5, 0.6})), 0.0);
}

TEST(CurveSmoothness, IsZeroForAConstantCurveByDefinition) {
  auto const r = pt::stats::curve_smoothness(curve({25, 50, 75, 100}, {0.5, 0.5, 0.5, 0.5}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, 0.0);
  EXPECT_EQ(r->reason, smoothness_reason::none);
}

TEST(CurveSmoothness, SortsUnsortedPointsFirst) {
  // The reference's spline fit rejects this input; sorted it is monotone.
  EXPECT_EQ(smoothness_of(curve({50, 25, 100}, {0.4, 0.3, 0.5})), 0.0);
}

TEST(CurveSmoothness, KeepsTheLatestValueOfADuplicatePct) {
  // (50, 0.3) replaces (50, 0.1): a falling line from 0.3 to 0.2.
  EXPECT_DOUBLE_EQ(smoothness_of(curve({50, 50, 100}, {0.1, 0.3, 0.2})), 30.0);
}

TEST(CurveSmoothness, RejectsACurveWithFewerThanTwoDistinctPcts) {
  for (auto const& c : {curve({100.0}, {0.5}), curve({50.0, 50.0}, {0.4, 0.5}), curve({}, {})}) {
    auto const r = pt::stats::curve_smoothness(c);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, pt::errc::invalid_argument);
  }
}

TEST(CurveSmoothness, IsNanWithAReasonForAMissingAccuracy) {
  // The reference's NaN poisons its normalisation and it reports 0, "good".
  auto const r = pt::stats::curve_smoothness(curve({10, 20, 30}, {0.3, nan, 0.2}));
  ASSERT_TRUE(r);
  EXPECT_TRUE(std::isnan(r->value));
  EXPECT_EQ(r->reason, smoothness_reason::non_finite_value);
  EXPECT_FALSE(pt::stats::is_good(*r));
}

TEST(Smoothness, AveragesTheCurves) {
  std::vector<std::vector<curve_point>> const curves{curve({50, 100}, {0.2, 0.1}),
                                                     curve({50, 100}, {0.1, 0.2})};
  auto const r = pt::stats::smoothness(curves);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->per_curve.size(), 2u);
  EXPECT_DOUBLE_EQ(r->per_curve[0].value, 30.0);
  EXPECT_EQ(r->per_curve[1].value, 0.0);
  EXPECT_DOUBLE_EQ(r->mean.value, 15.0);
}

TEST(Smoothness, IsZeroForNoCurveAsTheReference) {
  auto const r = pt::stats::smoothness({});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mean.value, 0.0);
  EXPECT_TRUE(r->per_curve.empty());
}

TEST(Smoothness, IsNanWhenACurveIsNan) {
  std::vector<std::vector<curve_point>> const curves{curve({50, 100}, {0.2, 0.1}),
                                                     curve({50, 100}, {nan, 0.2})};
  auto const r = pt::stats::smoothness(curves);
  ASSERT_TRUE(r);
  EXPECT_TRUE(std::isnan(r->mean.value));
  EXPECT_EQ(r->mean.reason, smoothness_reason::non_finite_value);
  EXPECT_EQ(r->per_curve[0].reason, smoothness_reason::none);
}

TEST(Smoothness, NamesTheCurveThatIsInvalid) {
  std::vector<std::vector<curve_point>> const curves{curve({50, 100}, {0.2, 0.1}),
                                                     curve({100}, {0.2})};
  auto const r = pt::stats::smoothness(curves);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("curve 1"), std::string::npos) << r.error().context;
}

}  // namespace
