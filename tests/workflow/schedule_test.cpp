#include <proxytask/workflow/schedule.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
using pt::workflow::model_selection_options;

std::vector<std::size_t> sizes(std::vector<pt::workflow::selection_iteration> const& its) {
  std::vector<std::size_t> out;
  for (auto const& it : its) out.push_back(it.num_trials);
  return out;
}

std::vector<double> pcts(std::vector<pt::workflow::selection_iteration> const& its) {
  std::vector<double> out;
  for (auto const& it : its) out.push_back(it.desired_training_step_pct);
  return out;
}

TEST(ModelSelectionSchedule, DefaultsTrainThirtyModelsDownToTen) {
  auto const s = pt::workflow::model_selection_schedule({});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(sizes(*s), (std::vector<std::size_t>{30, 25, 20, 15, 10}));
  // Exact: the README's values, bit for bit.
  EXPECT_EQ(pcts(*s), (std::vector<double>{3.3333333333333335, 7.333333333333334,
                                           12.333333333333334, 19.0, 101.0}));
}

TEST(ModelSelectionSchedule, NeverRemovesBelowTheFinalNumber) {
  auto const s = pt::workflow::model_selection_schedule({.start_num_models = 33});
  ASSERT_TRUE(s);
  EXPECT_EQ(sizes(*s), (std::vector<std::size_t>{33, 28, 23, 18, 13, 10}));
  EXPECT_EQ(s->back().desired_training_step_pct, pt::workflow::train_to_completion_pct);
}

TEST(ModelSelectionSchedule, TrainsToCompletionAtOnceWhenStartIsAtMostFinal) {
  for (std::size_t start : {1u, 3u, 10u}) {
    auto const s = pt::workflow::model_selection_schedule({.start_num_models = start});
    ASSERT_TRUE(s);
    ASSERT_EQ(s->size(), 1u);
    EXPECT_EQ((*s)[0].num_trials, start);
    EXPECT_EQ((*s)[0].desired_training_step_pct, 101.0);
  }
}

TEST(ModelSelectionSchedule, CountsInvalidTrialsTowardsTheRemovals) {
  // model_selection_schedule-public-0003 (tests/data/reference)
  std::vector<std::size_t> const invalid{5, 0, 0, 5, 2, 0, 1, 2, 0, 1, 1, 2};
  auto const s = pt::workflow::model_selection_schedule(
      {.start_num_models = 38, .final_num_models = 10, .num_models_to_remove_per_iter = 6},
      invalid);
  ASSERT_TRUE(s);
  EXPECT_EQ(sizes(*s), (std::vector<std::size_t>{38, 32, 26, 20, 14, 10}));
  EXPECT_EQ((*s)[4].desired_training_step_pct, 21.74558993637941);
}

TEST(ModelSelectionSchedule, RejectsAConfigurationThatWouldTrainBeyondOneHundredPercent) {
  // Pruning keeps 2 valid models, so 1 is never reached: the reference crashes when the
  // iteration at 100.73% finds no trial with an accuracy there.
  auto const s = pt::workflow::model_selection_schedule(
      {.start_num_models = 43, .final_num_models = 1, .num_models_to_remove_per_iter = 10});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, pt::errc::invalid_argument);
  EXPECT_NE(s.error().context.find("iteration 5"), std::string::npos) << s.error().context;
  EXPECT_NE(s.error().context.find("final_num_models = 1"), std::string::npos);
}

TEST(ModelSelectionSchedule, RejectsZeroRemovalsPerIteration) {
  auto const s = pt::workflow::model_selection_schedule(
      {.start_num_models = 8, .final_num_models = 5, .num_models_to_remove_per_iter = 0});
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().context.find("num_models_to_remove_per_iter is 0"), std::string::npos);
  // Zero removals are fine when no removal is needed.
  EXPECT_TRUE(pt::workflow::model_selection_schedule(
      {.start_num_models = 5, .final_num_models = 5, .num_models_to_remove_per_iter = 0}));
}

TEST(ModelSelectionSchedule, RejectsAnIterationWhoseTrialsAreAllInvalid) {
  // model_selection_schedule-public-0007: 16, 10, then 4 trials of which 5 are invalid.
  std::vector<std::size_t> const invalid{1, 0, 5, 2, 5, 0, 0, 2, 5, 0, 5, 2};
  auto const s = pt::workflow::model_selection_schedule(
      {.start_num_models = 16, .final_num_models = 1, .num_models_to_remove_per_iter = 6}, invalid);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().context.find("iteration 2: all 4 trials are invalid"), std::string::npos)
      << s.error().context;
}

TEST(ModelSelectionSchedule, RejectsStartingWithoutModels) {
  EXPECT_FALSE(pt::workflow::model_selection_schedule({.start_num_models = 0}));
}

TEST(NextDesiredTrainingStepPct, AddsOneOverKTimesOneHundred) {
  // (1.0 / 3) * 100 = 33.33333333333333, where 100.0 / 3 = 33.333333333333336: the reference's
  // arithmetic, exactly.
  EXPECT_EQ(pt::workflow::next_desired_training_step_pct(0.0, 3, 1), 33.33333333333333);
  EXPECT_EQ(pt::workflow::next_desired_training_step_pct(19.0, 4, 1), 44.0);
}

TEST(NextDesiredTrainingStepPct, TrainsToCompletionAtOrBelowTheFinalNumber) {
  EXPECT_EQ(pt::workflow::next_desired_training_step_pct(19.0, 10, 10), 101.0);
  EXPECT_EQ(pt::workflow::next_desired_training_step_pct(0.0, 2, 10), 101.0);
}

TEST(NumModelsToRemove, StopsAtTheFinalNumber) {
  model_selection_options const o{};
  EXPECT_EQ(pt::workflow::num_models_to_remove(30, o), 5u);
  EXPECT_EQ(pt::workflow::num_models_to_remove(13, o), 3u);
  EXPECT_EQ(pt::workflow::num_models_to_remove(10, o), 0u);
  EXPECT_EQ(pt::workflow::num_models_to_remove(4, o), 0u);
}

}  // namespace
