#include <proxytask/stats/median.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

double upper_median(std::vector<double> const& v) {
  return proxytask::stats::upper_median(std::span<double const>(v));
}

TEST(UpperMedian, TakesTheElementAtHalfTheCountOfTheSortedValues) {
  EXPECT_EQ(upper_median({3, 1, 2}), 2);
  EXPECT_EQ(upper_median({4, 1, 3, 2}), 3);  // the upper of the two middle values
  EXPECT_EQ(upper_median({5}), 5);
}

TEST(UpperMedian, IgnoresNaNAndIsNaNWhenNothingIsLeft) {
  double const nan = std::nan("");
  EXPECT_EQ(upper_median({nan, 1, nan, 2}), 2);
  EXPECT_TRUE(std::isnan(upper_median({nan, nan})));
  EXPECT_TRUE(std::isnan(upper_median({})));
}

}  // namespace
