#include <proxytask/workflow/stopping.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <vector>

namespace {

namespace pt = proxytask;
using pt::workflow::median_reason;
using pt::workflow::proxy_outcome;
using pt::workflow::stop_criteria;
using pt::workflow::stopping_state;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

/// Owns the per-step statistics that check_stopping views.
struct steps {
  std::vector<std::int64_t> training_steps;
  std::vector<double> correlation, accuracy, hours;

  pt::workflow::stop_decision check(stop_criteria const& c) const {
    return pt::workflow::check_stopping({training_steps, correlation, accuracy, hours}, c);
  }
};

TEST(StoppingState, RoundTripsTheReferenceStringsAndNames) {
  for (auto s : {stopping_state::none, stopping_state::met_desired_accuracy_correlation,
                 stopping_state::met_desired_accuracy, stopping_state::exceeded_train_time_limit,
                 stopping_state::exceeded_best_train_time,
                 stopping_state::failed_desired_latency_correlation, stopping_state::job_failed,
                 stopping_state::ran_till_completion, stopping_state::excess_trial_failures}) {
    EXPECT_EQ(pt::workflow::parse_stopping_state(pt::workflow::to_string(s)), s);
    EXPECT_EQ(pt::workflow::parse_stopping_state(pt::workflow::reference_name(s)), s);
  }
  EXPECT_EQ(pt::workflow::to_string(stopping_state::met_desired_accuracy_correlation),
            "Met desired correlation");
  EXPECT_EQ(pt::workflow::reference_name(stopping_state::met_desired_accuracy_correlation),
            "MET_DESIRED_ACCURACY_CORRELATION");
  EXPECT_EQ(pt::workflow::to_string(stopping_state::none), "");
  EXPECT_EQ(pt::workflow::reference_name(stopping_state::none), "INVALID_STOPPING_STATE");
  EXPECT_EQ(pt::workflow::parse_stopping_state("Excess trial failures"),
            stopping_state::excess_trial_failures);
  EXPECT_EQ(pt::workflow::parse_stopping_state("Met correlation"), std::nullopt);
}

TEST(StoppingState, OnlyMeetingCorrelationOrAccuracyIsASuccess) {
  EXPECT_TRUE(pt::workflow::is_successful(stopping_state::met_desired_accuracy_correlation));
  EXPECT_TRUE(pt::workflow::is_successful(stopping_state::met_desired_accuracy));
  EXPECT_FALSE(pt::workflow::is_successful(stopping_state::ran_till_completion));
  EXPECT_FALSE(pt::workflow::is_successful(stopping_state::exceeded_best_train_time));
  EXPECT_FALSE(pt::workflow::is_successful(stopping_state::none));
}

TEST(CheckStopping, StopsAtTheFirstStepWithoutInterpolation) {
  steps const s{{100, 200}, {0.95, 0.97}, {0.3, 0.5}, {0.5, 1.0}};
  auto const d = s.check({.desired_correlation = 0.9});
  EXPECT_EQ(d.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(d.step_index, 0u);
  EXPECT_EQ(d.final_training_time_in_hours, 0.5);
  EXPECT_EQ(d.final_training_steps, 100);
}

TEST(CheckStopping, InterpolatesTheCrossingAndTruncatesTheSteps) {
  // edge-steps_truncate_toward_zero: x = 0.75, steps 100 + 0.75 * 101 = 175.75 -> 175.
  steps const s{{100, 201}, {0.5, 0.9}, {0.3, 0.5}, {0.5, 1.0}};
  auto const d = s.check({.desired_correlation = 0.8});
  EXPECT_EQ(d.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(d.step_index, 1u);
  EXPECT_DOUBLE_EQ(*d.final_training_time_in_hours, 0.875);
  EXPECT_EQ(d.final_training_steps, 175);
}

TEST(CheckStopping, InterpolatesFromTheNearestEarlierValidStep) {
  // Step 1 is invalid: the crossing lies between steps 0 and 2, at x = 0 + 0.3 * 2 / 0.4 = 1.5.
  steps const s{{100, 200, 300}, {0.5, nan, 0.9}, {0.3, nan, 0.5}, {0.5, nan, 1.5}};
  auto const d = s.check({.desired_correlation = 0.8});
  EXPECT_EQ(d.step_index, 2u);
  EXPECT_DOUBLE_EQ(*d.final_training_time_in_hours, 1.25);
  EXPECT_EQ(d.final_training_steps, 250);
}

TEST(CheckStopping, DoesNotInterpolateFromAnInvalidStep) {
  // edge-interpolates_from_sentinel: the reference interpolates from step 0's -5 / -1 and
  // answers 0.966 h; without an earlier valid step the crossing is step 1 itself.
  steps const s{{100, 200, 300}, {nan, 0.9, 0.9}, {nan, 0.3, 0.5}, {nan, 1.0, 2.0}};
  auto const d = s.check({.desired_correlation = 0.8});
  EXPECT_EQ(d.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(d.final_training_time_in_hours, 1.0);
  EXPECT_EQ(d.final_training_steps, 200);
}

TEST(CheckStopping, AnInvalidStepNeverMeetsAThreshold) {
  // With a threshold of -10 the reference stops at its -5 "invalid" marker, at time -1.
  steps const s{{2129, 2229}, {nan, 0.003373}, {nan, 0.356345}, {nan, 0.27716}};
  auto const d = s.check({.desired_correlation = -10.0, .training_time_hrs_limit = -1.0});
  EXPECT_EQ(d.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(d.step_index, 1u);
  EXPECT_EQ(d.final_training_time_in_hours, 0.27716);
  EXPECT_EQ(d.final_training_steps, 2229);
}

TEST(CheckStopping, TreatsZeroAsARealThreshold) {
  // The reference ignores 0.0 thresholds as "unset".
  steps const s{{100, 200}, {-0.1, 0.2}, {0.3, 0.5}, {0.5, 1.0}};
  auto const d = s.check({.desired_correlation = 0.0});
  EXPECT_EQ(d.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_DOUBLE_EQ(*d.final_training_time_in_hours, 0.5 + 0.5 / 3.0);
  EXPECT_EQ(s.check({.training_time_hrs_limit = 0.0}).state,
            stopping_state::exceeded_train_time_limit);
  EXPECT_EQ(s.check({.best_training_time_hrs = 0.0, .early_stop_if_not_best = true}).state,
            stopping_state::exceeded_best_train_time);
}

TEST(CheckStopping, ChecksCorrelationThenAccuracyThenTimeLimitThenBestTime) {
  steps const s{{100, 200}, {0.1, 0.9}, {0.1, 0.9}, {0.1, 0.9}};
  stop_criteria c{.desired_correlation = 0.5,
                  .desired_accuracy = 0.5,
                  .training_time_hrs_limit = 0.5,
                  .best_training_time_hrs = 0.5,
                  .early_stop_if_not_best = true};
  EXPECT_EQ(s.check(c).state, stopping_state::met_desired_accuracy_correlation);
  c.desired_correlation.reset();
  auto const by_accuracy = s.check(c);
  EXPECT_EQ(by_accuracy.state, stopping_state::met_desired_accuracy);
  EXPECT_DOUBLE_EQ(*by_accuracy.final_training_time_in_hours, 0.5);
  EXPECT_EQ(by_accuracy.final_training_steps, 150);
  c.desired_accuracy.reset();
  EXPECT_EQ(s.check(c).state, stopping_state::exceeded_train_time_limit);
  c.training_time_hrs_limit.reset();
  EXPECT_EQ(s.check(c).state, stopping_state::exceeded_best_train_time);
}

TEST(CheckStopping, ScansStepsInOrder) {
  // The time limit at step 1 comes before the correlation at step 2.
  steps const s{{100, 200, 300}, {0.1, 0.2, 0.9}, {0.1, 0.2, 0.3}, {0.5, 1.0, 1.5}};
  auto const d = s.check({.desired_correlation = 0.8, .training_time_hrs_limit = 1.0});
  EXPECT_EQ(d.state, stopping_state::exceeded_train_time_limit);
  EXPECT_EQ(d.step_index, 1u);
}

TEST(CheckStopping, LeavesNoFinalTimeForTimeStops) {
  // edge-early_stop_best_time
  steps const s{{100, 200}, {0.1, 0.2}, {0.3, 0.5}, {0.5, 1.0}};
  auto const d = s.check({.best_training_time_hrs = 1.0, .early_stop_if_not_best = true});
  EXPECT_EQ(d.state, stopping_state::exceeded_best_train_time);
  EXPECT_EQ(d.step_index, 1u);
  EXPECT_EQ(d.final_training_time_in_hours, std::nullopt);
  EXPECT_EQ(d.final_training_steps, std::nullopt);
}

TEST(CheckStopping, IgnoresTheBestTimeWithoutEarlyStopping) {
  steps const s{{100, 200}, {0.1, 0.2}, {0.3, 0.5}, {0.5, 1.0}};
  EXPECT_FALSE(s.check({.best_training_time_hrs = 0.1}).stopped());
}

TEST(CheckStopping, NeverStopsWithoutThresholdsOrOnNanValues) {
  steps const s{{100, 200}, {nan, 0.99}, {nan, 0.99}, {nan, nan}};
  auto const d = s.check({});
  EXPECT_FALSE(d.stopped());
  EXPECT_EQ(d.state, stopping_state::none);
  EXPECT_EQ(d.step_index, std::nullopt);
  EXPECT_FALSE(s.check({.training_time_hrs_limit = -100.0}).stopped());
  EXPECT_FALSE(pt::workflow::check_stopping({}, {.desired_correlation = 0.1}).stopped());
}

TEST(CheckStopping, MatchesTheReferenceAfterInvalidSteps) {
  // stopping-public-0004 (tests/data/reference), the reference's -5 / -1 as NaN.
  steps const s{{100, 600, 1100, 1600, 2100, 3100, 4981, 5081, 5581, 5681, 6181},
                {nan, nan, nan, -0.290562, -0.196948, -0.184117, -0.073566, -0.074659, -0.051841,
                 0.053719, 0.062874},
                {nan, nan, nan, 0.275667, 0.341195, 0.347417, 0.377806, 0.417202, 0.479617, 0.54116,
                 0.618656},
                {nan, nan, nan, 1.331439, 2.188932, 3.639642, 4.196094, 5.26548, 5.687146, 6.860459,
                 6.965126}};
  auto const d = s.check({.desired_correlation = -0.172121});
  EXPECT_EQ(d.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_NEAR(*d.final_training_time_in_hours, 3.700023165181681, 1e-12 * 3.7);
  EXPECT_EQ(d.final_training_steps, 3304);
}

TEST(CheckStopping, RejectsStatisticsOfDifferentLengths) {
  steps const s{{100, 200}, {0.1}, {0.3, 0.5}, {0.5, 1.0}};
  EXPECT_THROW(s.check({}), pt::logic_error);
}

TEST(BestProxyTask, PicksTheSuccessfulProxyWithTheLowestTime) {
  std::vector<proxy_outcome> const p{{stopping_state::met_desired_accuracy, 3.0},
                                     {stopping_state::ran_till_completion, 1.0},
                                     {stopping_state::met_desired_accuracy_correlation, 2.0},
                                     {stopping_state::excess_trial_failures, 0.5}};
  EXPECT_EQ(pt::workflow::best_proxy_task(p), 2u);
}

TEST(BestProxyTask, KeepsTheEarlierProxyOnATie) {
  std::vector<proxy_outcome> const p{{stopping_state::met_desired_accuracy, 2.0},
                                     {stopping_state::met_desired_accuracy, 2.0}};
  EXPECT_EQ(pt::workflow::best_proxy_task(p), 0u);
}

TEST(BestProxyTask, CountsZeroAndNegativeTimesAsRealTimes) {
  // The reference takes a best time of 0.0 for "no best yet" and replaces it.
  std::vector<proxy_outcome> const p{{stopping_state::met_desired_accuracy, 0.0},
                                     {stopping_state::met_desired_accuracy_correlation, 5.0}};
  EXPECT_EQ(pt::workflow::best_proxy_task(p), 0u);
  std::vector<proxy_outcome> const negative{{stopping_state::met_desired_accuracy, 4.6},
                                            {stopping_state::met_desired_accuracy, -0.52}};
  EXPECT_EQ(pt::workflow::best_proxy_task(negative), 1u);
}

TEST(BestProxyTask, ANanOrMissingTimeIsNotASuccess) {
  // In the reference a first successful NaN time is never replaced.
  std::vector<proxy_outcome> const p{{stopping_state::met_desired_accuracy_correlation, nan},
                                     {stopping_state::met_desired_accuracy, std::nullopt},
                                     {stopping_state::met_desired_accuracy, 11.3}};
  EXPECT_EQ(pt::workflow::best_proxy_task(p), 2u);
}

TEST(BestProxyTask, IsNoneWithoutASuccess) {
  std::vector<proxy_outcome> const p{{stopping_state::exceeded_train_time_limit, 1.0},
                                     {stopping_state::none, 0.5}};
  EXPECT_EQ(pt::workflow::best_proxy_task(p), std::nullopt);
  EXPECT_EQ(pt::workflow::best_proxy_task({}), std::nullopt);
}

/// Owns the inputs that median_over_steps views.
struct trials {
  std::size_t rows, cols;
  std::vector<double> accuracies;  // row-major, trials x steps
  std::vector<std::int64_t> training_steps;
  std::vector<double> correlation;
  std::vector<std::optional<pt::stats::training_time>> times;

  std::vector<pt::workflow::median_step> medians() const {
    return pt::workflow::median_over_steps(
        pt::host_matrix_view<double const>(accuracies.data(), rows, cols), training_steps,
        correlation, times);
  }
};

TEST(MedianOverSteps, TakesTheUpperMedianAndItsTrialsTimeAtTheStep) {
  // Step 0: values 0.2, 0.4, 0.3, 0.1 -> sorted[2] = 0.3, trial 2. Step 1: NaN left out:
  // 0.5, 0.6, 0.7 -> 0.6, trial 2.
  trials const t{4,
                 2,
                 {0.2, 0.5, 0.4, nan, 0.3, 0.6, 0.1, 0.7},
                 {100, 250},
                 {0.7, 0.8},
                 {pt::stats::training_time{1000, 3600.0}, pt::stats::training_time{1000, 7200.0},
                  pt::stats::training_time{2000, 1800.0}, pt::stats::training_time{500, 100.0}}};
  auto const m = t.medians();
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].median_accuracy, 0.3);
  EXPECT_DOUBLE_EQ(m[0].training_time_hrs, (1800.0 / 2000.0) * 100.0 / 3600.0);
  EXPECT_EQ(m[0].reason, median_reason::none);
  EXPECT_EQ(m[1].median_accuracy, 0.6);
  EXPECT_DOUBLE_EQ(m[1].training_time_hrs, (1800.0 / 2000.0) * 250.0 / 3600.0);
}

TEST(MedianOverSteps, TakesTheTimeOfTheFirstTrialWithTheMedianValue) {
  trials const t{3,
                 1,
                 {0.4, 0.5, 0.5},
                 {100},
                 {0.9},
                 {pt::stats::training_time{100, 10.0}, pt::stats::training_time{100, 360.0},
                  pt::stats::training_time{100, 720.0}}};
  auto const m = t.medians();
  EXPECT_EQ(m[0].median_accuracy, 0.5);
  EXPECT_DOUBLE_EQ(m[0].training_time_hrs, 0.1);
}

TEST(MedianOverSteps, SkipsStepsWithAnInvalidCorrelation) {
  trials const t{2,
                 2,
                 {0.2, 0.5, 0.4, 0.6},
                 {100, 200},
                 {nan, 0.5},
                 {pt::stats::training_time{10, 36.0}, pt::stats::training_time{10, 36.0}}};
  auto const m = t.medians();
  EXPECT_EQ(m[0].reason, median_reason::invalid_correlation);
  EXPECT_TRUE(std::isnan(m[0].median_accuracy));
  EXPECT_TRUE(std::isnan(m[0].training_time_hrs));
  EXPECT_EQ(m[1].reason, median_reason::none);
}

TEST(MedianOverSteps, GivesAReasonWhereTheReferenceCrashes) {
  // No accuracy at a valid step; the median trial without a training-time record; zero steps.
  trials const t{
      3,
      3,
      {nan, 0.4, 0.5, nan, 0.6, 0.2, nan, 0.7, 0.3},
      {100, 200, 300},
      {0.5, 0.5, 0.5},
      {pt::stats::training_time{10, 36.0}, std::nullopt, pt::stats::training_time{0, 36.0}}};
  auto const m = t.medians();
  EXPECT_EQ(m[0].reason, median_reason::no_valid_accuracy);
  EXPECT_TRUE(std::isnan(m[0].median_accuracy));
  EXPECT_EQ(m[1].reason, median_reason::no_training_time);  // median 0.6, trial 1
  EXPECT_EQ(m[1].median_accuracy, 0.6);
  EXPECT_TRUE(std::isnan(m[1].training_time_hrs));
  EXPECT_EQ(m[2].reason, median_reason::zero_training_steps);  // median 0.3, trial 2
  EXPECT_EQ(m[2].median_accuracy, 0.3);
  EXPECT_TRUE(std::isnan(m[2].training_time_hrs));
}

TEST(MedianOverSteps, RejectsMismatchedExtents) {
  trials const t{
      2,     2,          {0.2, 0.5, 0.4, 0.6},
      {100}, {0.5, 0.5}, {pt::stats::training_time{10, 36.0}, pt::stats::training_time{10, 36.0}}};
  EXPECT_THROW(t.medians(), pt::logic_error);
}

}  // namespace
