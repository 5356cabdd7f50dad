#include <proxytask/stats/kendall.hpp>

#include <support/random_samples.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

namespace st = proxytask::stats;
using proxytask::testing::random_sample;

double const nan = std::nan("");

st::correlation_result kendall(std::vector<double> const& x, std::vector<double> const& y,
                               st::hypothesis h = st::hypothesis::two_sided) {
  return st::kendall_tau_b<double>(x, y, h);
}

TEST(KendallTauB, AgreesWithTheQuadraticDefinitionOnTiedRandomSamples) {
  for (std::uint64_t seed = 0; seed < 60; ++seed) {
    int const levels = seed % 4 == 0 ? 0 : static_cast<int>(2 + seed % 7);
    std::size_t const n = 2 + seed * 5;
    auto const x = random_sample(n, seed, levels);
    auto const y = random_sample(n, seed + 500, levels);
    double const oracle = st::kendall_tau_b_quadratic<double>(x, y);
    auto const r = kendall(x, y);
    if (std::isnan(oracle)) {
      EXPECT_EQ(r.reason, st::nan_reason::constant_input) << "seed " << seed;
      continue;
    }
    EXPECT_NEAR(r.coefficient, oracle, 1e-14) << "seed " << seed << " n " << n;
  }
}

TEST(KendallTauB, MatchesScipyWithOmittedNaNPairs) {
  // scipy 1.10.1: kendalltau([1,2,nan,4,5,6], [2,1,3,nan,5,4], nan_policy='omit')
  auto const r = kendall({1, 2, nan, 4, 5, 6}, {2, 1, 3, nan, 5, 4});
  EXPECT_EQ(r.n, 4u);
  EXPECT_NEAR(r.coefficient, 1.0 / 3, 1e-15);
  EXPECT_NEAR(r.p_value, 0.75, 1e-15);
}

TEST(KendallTauB, UsesTheTieCorrectedNormalApproximationWithTies) {
  // scipy 1.10.1 (scipy_kendall-public-0048)
  auto const r = kendall({0, 1, 2, 2, 3, 1, 2, 1}, {1, 0, 3, 1, 3, 0, 1, 1});
  EXPECT_NEAR(r.coefficient, 0.5720775535473553, 1e-14);
  EXPECT_NEAR(r.p_value, 0.08693496882636004, 1e-13);
}

TEST(KendallTauB, UsesTheNormalApproximationAbove33UntiedPairs) {
  // scipy 1.10.1 (edge-n34_no_ties_asymptotic): n = 34, no ties
  std::vector<double> x(34), y(34);
  for (int i = 0; i < 34; ++i) {
    x[i] = i;
    y[i] = (i % 5) * 7 + i / 5;
  }
  auto const r = kendall(x, y);
  EXPECT_NEAR(r.coefficient, 0.251336898395722, 1e-14);
  EXPECT_NEAR(r.p_value, 0.03659566165329499, 1e-12);
}

TEST(KendallTauB, UsesTheExactNullForPerfectOrderings) {
  std::vector<double> x(10), y(10);
  for (int i = 0; i < 10; ++i) {
    x[i] = i;
    y[i] = -i;
  }
  auto const r = kendall(x, y);
  EXPECT_EQ(r.coefficient, -1.0);
  EXPECT_NEAR(r.p_value, 5.511463844797178e-07, 1e-20);  // 2 / 10!
}

TEST(KendallTauB, GivesNaNWithAReasonForConstantInputAndTooFewPairs) {
  EXPECT_EQ(kendall({1, 1, 1, 1}, {1, 2, 3, 4}).reason, st::nan_reason::constant_input);
  EXPECT_EQ(kendall({1, 2, 3}, {5, 5, 5}).reason, st::nan_reason::constant_input);
  auto const empty = kendall({}, {});
  EXPECT_EQ(empty.reason, st::nan_reason::too_few_pairs);
  EXPECT_TRUE(std::isnan(empty.coefficient) && std::isnan(empty.p_value));
  EXPECT_EQ(kendall({nan, 1}, {1, 2}).reason, st::nan_reason::too_few_pairs);
}

TEST(KendallTauB, TwoPairsAreFullyDetermined) {
  auto const r = kendall({1, 2}, {2, 1});
  EXPECT_EQ(r.coefficient, -1.0);
  EXPECT_EQ(r.p_value, 1.0);
}

TEST(KendallTauB, IsExactlySymmetricInItsArguments) {
  auto const x = random_sample(200, 4, 9), y = random_sample(200, 5, 4);
  EXPECT_EQ(kendall(x, y).coefficient, kendall(y, x).coefficient);
  EXPECT_EQ(kendall(x, y).p_value, kendall(y, x).p_value);
}

TEST(KendallTauB, OneSidedPValuesPickTheTail) {
  std::vector<double> const x{1, 2, 3, 4, 5}, y{1, 3, 2, 5, 4};  // 8 concordant, 2 discordant
  EXPECT_NEAR(kendall(x, y).p_value, 28.0 / 120, 1e-15);
  EXPECT_NEAR(kendall(x, y, st::hypothesis::greater).p_value, 14.0 / 120, 1e-15);
  EXPECT_NEAR(kendall(x, y, st::hypothesis::less).p_value, 1 - 14.0 / 120 + 9.0 / 120, 1e-15);
}

TEST(KendallTauB, HandlesLargeSamplesInNLogN) {
  auto const x = random_sample(100000, 11, 1000), y = random_sample(100000, 12);
  auto const r = kendall(x, y);
  EXPECT_EQ(r.n, 100000u);
  EXPECT_LT(std::abs(r.coefficient), 0.02);
  EXPECT_GT(r.p_value, 0.0);
}

}  // namespace
