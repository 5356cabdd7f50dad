#include <proxytask/stats/p_value.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace {

namespace st = proxytask::stats;
using st::hypothesis;

TEST(StudentTPValue, IsOneHalfAtTOneWithOneDegreeOfFreedom) {
  // With 1 dof, t is Cauchy: P(|T| > 1) = 1/2 exactly.
  EXPECT_NEAR(st::student_t_p_value(1.0, 1.0, hypothesis::two_sided), 0.5, 1e-15);
  EXPECT_NEAR(st::student_t_p_value(1.0, 1.0, hypothesis::greater), 0.25, 1e-15);
  EXPECT_NEAR(st::student_t_p_value(1.0, 1.0, hypothesis::less), 0.75, 1e-15);
  EXPECT_EQ(st::student_t_p_value(0.0, 7.0, hypothesis::two_sided), 1.0);
}

TEST(StudentTPValue, HandlesInfiniteStatisticsAndNoDegreesOfFreedom) {
  double const inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(st::student_t_p_value(inf, 3.0, hypothesis::two_sided), 0.0);
  EXPECT_EQ(st::student_t_p_value(-inf, 3.0, hypothesis::greater), 1.0);
  EXPECT_TRUE(std::isnan(st::student_t_p_value(1.0, 0.0, hypothesis::two_sided)));
  EXPECT_TRUE(std::isnan(st::student_t_p_value(std::nan(""), 3.0, hypothesis::two_sided)));
}

TEST(NormalPValue, GivesTheFamiliarFivePercent) {
  EXPECT_NEAR(st::normal_p_value(1.959963984540054, hypothesis::two_sided), 0.05, 1e-15);
  EXPECT_NEAR(st::normal_p_value(-1.6448536269514722, hypothesis::less), 0.05, 1e-15);
  EXPECT_NEAR(st::normal_p_value(-1.6448536269514722, hypothesis::greater), 0.95, 1e-15);
}

TEST(SpearmanPValue, FollowsStudentTWithNMinusTwoDegreesOfFreedom) {
  // rho = 0.6, n = 4: t = 0.6 sqrt(2 / (1.6 * 0.4)) = 1.0606601717798212 (scipy: p = 0.4)
  EXPECT_NEAR(st::spearman_p_value(0.6, 4, hypothesis::two_sided), 0.40000000000000013, 1e-14);
  EXPECT_EQ(st::spearman_p_value(1.0, 5, hypothesis::two_sided), 0.0);
  EXPECT_TRUE(std::isnan(st::spearman_p_value(1.0, 2, hypothesis::two_sided)));
}

TEST(KendallExactPValue, MatchesTheMahonianDistribution) {
  // Inversions of 5 elements: 1 4 9 15 20 22 20 15 9 4 1 (of 120).
  EXPECT_NEAR(st::kendall_exact_p_value(5, 8, hypothesis::two_sided), 28.0 / 120, 1e-15);
  EXPECT_NEAR(st::kendall_exact_p_value(5, 2, hypothesis::two_sided), 28.0 / 120, 1e-15);
  EXPECT_NEAR(st::kendall_exact_p_value(5, 10, hypothesis::two_sided), 2.0 / 120, 1e-15);
  EXPECT_NEAR(st::kendall_exact_p_value(5, 9, hypothesis::two_sided), 10.0 / 120, 1e-15);
  EXPECT_EQ(st::kendall_exact_p_value(5, 5, hypothesis::two_sided), 1.0);  // the centre
  // n = 4, 6 pairs: 1 3 5 6 5 3 1 (of 24); 3 concordant is the centre, one-sided
  EXPECT_NEAR(st::kendall_exact_p_value(4, 3, hypothesis::greater), 15.0 / 24, 1e-15);
  EXPECT_NEAR(st::kendall_exact_p_value(4, 3, hypothesis::less), 15.0 / 24, 1e-15);
}

TEST(KendallExactPValue, StaysInRangeForLargeN) {
  // scipy switches to scaled counts at n >= 171 (n! overflows a double).
  double const p = st::kendall_exact_p_value(200, 200 * 199 / 2 - 1, hypothesis::two_sided);
  EXPECT_EQ(p, 0.0);
  double const q = st::kendall_exact_p_value(180, 180 * 179 / 4 + 3, hypothesis::two_sided);
  EXPECT_GE(q, 0.0);
  EXPECT_LE(q, 1.0);
  EXPECT_NEAR(st::kendall_exact_p_value(20, 100, hypothesis::two_sided),
              st::kendall_exact_p_value(20, 190 - 100, hypothesis::two_sided), 1e-15);
}

}  // namespace
