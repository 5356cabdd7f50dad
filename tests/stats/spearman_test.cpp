#include <proxytask/stats/spearman.hpp>

#include <support/random_samples.hpp>
#include <support/rank_oracle.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

namespace st = proxytask::stats;
using proxytask::testing::random_sample;

double const nan = std::nan("");

// Pearson correlation of the average ranks, from the definitions, in plain double arithmetic.
double spearman_by_definition(std::vector<double> const& x, std::vector<double> const& y) {
  auto const a = proxytask::testing::average_ranks_by_definition(x);
  auto const b = proxytask::testing::average_ranks_by_definition(y);
  double const mean = (static_cast<double>(x.size()) + 1) / 2;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - mean) * (b[i] - mean);
    saa += (a[i] - mean) * (a[i] - mean);
    sbb += (b[i] - mean) * (b[i] - mean);
  }
  return sab / std::sqrt(saa * sbb);
}

st::correlation_result spearman(std::vector<double> const& x, std::vector<double> const& y,
                                st::hypothesis h = st::hypothesis::two_sided) {
  return st::spearman<double>(x, y, h);
}

TEST(Spearman, MatchesScipyWithOmittedNaNPairs) {
  // scipy 1.10.1: spearmanr([1,2,nan,4,5,6], [2,1,3,nan,5,4], nan_policy='omit')
  auto const r = spearman({1, 2, nan, 4, 5, 6}, {2, 1, 3, nan, 5, 4});
  EXPECT_EQ(r.n, 4u);
  EXPECT_EQ(r.reason, st::nan_reason::none);
  EXPECT_NEAR(r.coefficient, 0.6, 1e-15);
  EXPECT_NEAR(r.p_value, 0.40000000000000013, 1e-14);
}

TEST(Spearman, MatchesScipyOnHeavyTies) {
  // scipy 1.10.1 (tests/data/reference/scipy_spearman.jsonl, scipy_spearman-public-0044)
  auto const r = spearman({3, 3, 2, 0, 3, 4, 3, 2}, {0, 0, 2, 3, 1, 3, 3, 0});
  EXPECT_NEAR(r.coefficient, 0.02685108067705274, 1e-14);
  EXPECT_NEAR(r.p_value, 0.9496784173795394, 1e-12);
}

TEST(Spearman, AgreesWithPearsonOfAverageRanksOnRandomSamples) {
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    int const levels = seed % 3 == 0 ? 0 : static_cast<int>(2 + seed % 6);
    auto const x = random_sample(5 + seed * 7, seed, levels);
    auto const y = random_sample(5 + seed * 7, seed + 1000, levels);
    auto const r = spearman(x, y);
    if (r.reason == st::nan_reason::constant_input) continue;
    EXPECT_NEAR(r.coefficient, spearman_by_definition(x, y), 1e-13) << "seed " << seed;
  }
}

TEST(Spearman, IsOneForMonotoneDataWithZeroPValue) {
  auto const r = spearman({1, 2, 3, 4, 5}, {10, 20, 30, 40, 1000});
  EXPECT_EQ(r.coefficient, 1.0);
  EXPECT_EQ(r.p_value, 0.0);
  auto const reversed = spearman({1, 2, 3, 4, 5}, {5, 4, 3, 2, 1});
  EXPECT_EQ(reversed.coefficient, -1.0);
}

TEST(Spearman, GivesNaNWithAReasonForConstantInput) {
  auto const r = spearman({1, 1, 1, 1}, {1, 2, 3, 4});
  EXPECT_TRUE(std::isnan(r.coefficient));
  EXPECT_TRUE(std::isnan(r.p_value));
  EXPECT_EQ(r.reason, st::nan_reason::constant_input);
  // constant only once the NaN pair is left out
  EXPECT_EQ(spearman({7, 2, 2, 2}, {nan, 1, 2, 3}).reason, st::nan_reason::constant_input);
}

TEST(Spearman, GivesNaNWithAReasonForTooFewPairs) {
  EXPECT_EQ(spearman({}, {}).reason, st::nan_reason::too_few_pairs);
  auto const one = spearman({1, nan, 3}, {1, 2, nan});
  EXPECT_EQ(one.reason, st::nan_reason::too_few_pairs);
  EXPECT_EQ(one.n, 1u);
  EXPECT_TRUE(std::isnan(one.coefficient));
}

TEST(Spearman, TwoPairsHaveACoefficientButNoPValue) {
  auto const r = spearman({1, 2}, {2, 1});
  EXPECT_EQ(r.coefficient, -1.0);
  EXPECT_TRUE(std::isnan(r.p_value));
  EXPECT_EQ(r.reason, st::nan_reason::none);
}

TEST(Spearman, OneSidedPValuesSplitTheTwoSidedOne) {
  auto const x = random_sample(30, 1), y = random_sample(30, 2);
  auto const two = spearman(x, y), greater = spearman(x, y, st::hypothesis::greater),
             less = spearman(x, y, st::hypothesis::less);
  EXPECT_NEAR(greater.p_value + less.p_value, 1.0, 1e-14);
  EXPECT_NEAR(std::min(greater.p_value, less.p_value) * 2, two.p_value, 1e-14);
  EXPECT_EQ(greater.coefficient, two.coefficient);
}

TEST(Spearman, RejectsSamplesOfDifferentLengths) {
  std::vector<double> const x{1, 2, 3}, y{1, 2};
  EXPECT_THROW(st::spearman<double>(x, y), proxytask::logic_error);
}

TEST(Spearman, AcceptsFloatSamples) {
  std::vector<float> const x{1, 2, 3, 4, 5}, y{2, 1, 4, 3, 5};
  auto const r = st::spearman<float>(x, y);
  EXPECT_NEAR(r.coefficient, 0.8, 1e-15);
}

}  // namespace
