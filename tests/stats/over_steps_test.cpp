#include <proxytask/stats/kendall.hpp>
#include <proxytask/stats/median.hpp>
#include <proxytask/stats/over_steps.hpp>
#include <proxytask/stats/spearman.hpp>

#include <support/random_samples.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace {

namespace pt = proxytask;
namespace st = proxytask::stats;
using proxytask::testing::random_sample;

double const nan = std::nan("");

/// models x steps, row-major
struct scores {
  std::size_t models, steps;
  std::vector<double> values;
  pt::host_matrix_view<double const> view() const { return {values.data(), models, steps}; }
  std::vector<double> column(std::size_t s) const {
    std::vector<double> c(models);
    for (std::size_t m = 0; m < models; ++m) c[m] = values[m * steps + s];
    return c;
  }
};

st::step_table run(scores const& s, std::vector<double> const& reference,
                   st::over_steps_options const& options = {}) {
  return st::correlate_over_steps(pt::backend::cpu, s.view(), std::span<double const>(reference),
                                  options)
      .value();
}

TEST(CorrelateOverSteps, GivesEachStepTheSingleCallAnswer) {
  std::size_t const models = 23, steps = 9;
  scores s{models, steps, random_sample(models * steps, 1, 6, 0.1)};
  auto const reference = random_sample(models, 2, 0, 0.05);
  for (auto method : {st::correlation::kendall_tau_b, st::correlation::spearman}) {
    st::over_steps_options options{.method = method, .min_valid_pairs = 2, .min_valid_fraction = 0};
    auto const table = run(s, reference, options);
    ASSERT_EQ(table.size(), steps);
    for (std::size_t step = 0; step < steps; ++step) {
      auto const column = s.column(step);
      auto const single = method == st::correlation::spearman
                              ? st::spearman<double>(column, reference)
                              : st::kendall_tau_b<double>(column, reference);
      EXPECT_EQ(table[step].coefficient, single.coefficient) << "step " << step;
      EXPECT_EQ(table[step].p_value, single.p_value) << "step " << step;
      EXPECT_EQ(table[step].valid_pairs, single.n);
      EXPECT_EQ(table[step].reason, single.reason);
      EXPECT_EQ(table[step].median_score, st::upper_median(std::span<double const>(column)));
    }
  }
}

TEST(CorrelateOverSteps, GivesTheSingleCallAnswerAtRadixSortSizes) {
  // Hundreds and thousands of models (the radix-sorted paths), steps loaded in a block of 8 and
  // one of 3, accuracies with 3 decimals (ties) and values equal but for their last bits; with a
  // complete reference (no per-row look-ups) and with one that misses models.
  for (std::size_t const models : {300, 5000}) {
    std::size_t const steps = 11;
    scores s{models, steps, random_sample(models * steps, models, 0, 0.05)};
    for (std::size_t i = 0; i < s.values.size(); ++i) {
      if (i % 7 == 0) s.values[i] = std::round(s.values[i] * 1000) / 1000;
      if (i % 11 == 0) s.values[i] = 0.5 + 0x1p-44 * static_cast<double>(i % 5);
    }
    for (double const missing : {0.0, 0.1}) {
      auto const reference = random_sample(models, models + 1, 0, missing);
      for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
        st::over_steps_options options{.method = method};
        auto const table = run(s, reference, options);
        for (std::size_t step = 0; step < steps; ++step) {
          auto const column = s.column(step);
          auto const single = method == st::correlation::spearman
                                  ? st::spearman<double>(column, reference)
                                  : st::kendall_tau_b<double>(column, reference);
          EXPECT_EQ(table[step].coefficient, single.coefficient) << models << " step " << step;
          EXPECT_EQ(table[step].p_value, single.p_value) << models << " step " << step;
          EXPECT_EQ(table[step].valid_pairs, single.n);
          EXPECT_EQ(table[step].median_score, st::upper_median(std::span<double const>(column)));
        }
      }
    }
  }
}

TEST(CorrelateOverSteps, AppliesTheReferenceValidityRule) {
  // 10 models; step 0: 7 valid pairs (70%, valid); step 1: 6 valid pairs (60%); step 2: 4 valid.
  std::vector<double> reference{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  scores s{10, 3, std::vector<double>(30, nan)};
  for (std::size_t m = 0; m < 10; ++m) {
    if (m < 7) s.values[m * 3 + 0] = static_cast<double>(m);
    if (m < 6) s.values[m * 3 + 1] = static_cast<double>(m);
    if (m < 4) s.values[m * 3 + 2] = static_cast<double>(m);
  }
  auto const table = run(s, reference);
  EXPECT_EQ(table[0].reason, st::nan_reason::none);
  EXPECT_EQ(table[0].coefficient, 1.0);
  EXPECT_EQ(table[0].valid_pairs, 7u);
  EXPECT_EQ(table[1].reason, st::nan_reason::too_few_valid_models);
  EXPECT_TRUE(std::isnan(table[1].coefficient) && std::isnan(table[1].p_value));
  EXPECT_EQ(table[1].valid_pairs, 6u);
  EXPECT_EQ(table[2].reason, st::nan_reason::too_few_pairs);
  EXPECT_EQ(table[2].median_score, 2.0) << "the median is reported even when invalid";
}

TEST(CorrelateOverSteps, CountsPairsMissingTheirReferenceAsInvalid) {
  std::vector<double> reference{1, 2, 3, 4, 5, nan};
  scores s{6, 1, {1, 2, 3, 4, 5, 6}};
  auto const table = run(s, reference, {.min_valid_fraction = 0.9});
  EXPECT_EQ(table[0].valid_pairs, 5u);
  EXPECT_EQ(table[0].reason, st::nan_reason::too_few_valid_models);
  EXPECT_EQ(table[0].median_score, 4.0) << "median over the proxy scores present";
  EXPECT_EQ(run(s, reference, {.min_valid_fraction = 0.8})[0].coefficient, 1.0);
}

TEST(CorrelateOverSteps, TreatsARealMinusOneAsAScore) {
  // The reference tool used -1 as "missing"; here missing is NaN and -1 is a score.
  std::vector<double> reference{1, 2, 3, 4, 5};
  scores s{5, 1, {-1, -0.5, 0, 0.5, 1}};
  auto const table = run(s, reference);
  EXPECT_EQ(table[0].valid_pairs, 5u);
  EXPECT_EQ(table[0].coefficient, 1.0);
}

TEST(CorrelateOverSteps, ReportsAConstantStepWithItsReason) {
  std::vector<double> reference{1, 2, 3, 4, 5};
  scores s{5, 2, {0.5, 1, 0.5, 2, 0.5, 3, 0.5, 4, 0.5, 5}};
  auto const table = run(s, reference, {.method = st::correlation::spearman});
  EXPECT_EQ(table[0].reason, st::nan_reason::constant_input);
  EXPECT_EQ(table[1].coefficient, 1.0);
}

TEST(CorrelateOverSteps, AcceptsFloatScores) {
  std::vector<float> values{0.1f, 0.3f, 0.2f, 0.4f, 0.5f, 0.6f};  // 6 models x 1 step
  std::vector<float> reference{1, 2, 3, 4, 5, 6};
  auto const table = st::correlate_over_steps(
                         pt::backend::cpu, pt::host_matrix_view<float const>(values.data(), 6, 1),
                         std::span<float const>(reference))
                         .value();
  EXPECT_NEAR(table[0].coefficient, 13.0 / 15, 1e-15);
  EXPECT_NEAR(table[0].median_score, 0.4, 1e-7);
}

TEST(CorrelateOverSteps, HandlesNoStepsAndNoModels) {
  scores none{4, 0, {}};
  EXPECT_TRUE(run(none, {1, 2, 3, 4}).empty());
  scores empty{0, 2, {}};
  auto const table = run(empty, {});
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[0].reason, st::nan_reason::too_few_pairs);
  EXPECT_TRUE(std::isnan(table[0].median_score));
}

TEST(CorrelateOverSteps, RejectsAReferenceOfTheWrongLengthAndBadOptions) {
  scores s{3, 1, {1, 2, 3}};
  EXPECT_THROW(run(s, {1, 2}), pt::logic_error);
  EXPECT_THROW(run(s, {1, 2, 3}, {.min_valid_pairs = 1}), pt::logic_error);
  EXPECT_THROW(run(s, {1, 2, 3}, {.min_valid_fraction = 1.5}), pt::logic_error);
}

}  // namespace
