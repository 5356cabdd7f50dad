#include <proxytask/stats/pruning.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace {

namespace pt = proxytask;
using pt::stats::curve_point;
using pt::stats::trial_scores;
using indices = std::vector<std::size_t>;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

pt::stats::pruning_result prune(std::vector<trial_scores> const& trials, std::size_t remove,
                                bool latency_required = true) {
  return pt::stats::prune_trials(trials, remove, latency_required);
}

TEST(PruningRemovals, CountsInvalidTrialsTowardsTheRequest) {
  EXPECT_EQ(pt::stats::pruning_removals(5, 10, 3), 2u);
  EXPECT_EQ(pt::stats::pruning_removals(5, 10, 5), 0u);
  EXPECT_EQ(pt::stats::pruning_removals(5, 10, 7), 0u);
}

TEST(PruningRemovals, NeverLeavesFewerThanTwoValidTrials) {
  EXPECT_EQ(pt::stats::pruning_removals(5, 4, 0), 2u);
  EXPECT_EQ(pt::stats::pruning_removals(5, 2, 0), 0u);
  EXPECT_EQ(pt::stats::pruning_removals(5, 1, 0), 0u);
  EXPECT_EQ(pt::stats::pruning_removals(5, 0, 0), 0u);
}

TEST(PruneTrials, RemovesTheInnerPointsOfAnEvenlySpacedLine) {
  // edge-equal_distances_first_index_wins (tests/data/reference): all neighbours are equally
  // far; the lowest index wins every tie.
  auto const r = prune({{0.25, 1.0}, {0.5, 2.0}, {0.75, 3.0}, {1.0, 4.0}}, 2);
  EXPECT_EQ(r.removed, (indices{1, 2}));
  EXPECT_EQ(r.kept, (indices{0, 3}));
  EXPECT_TRUE(r.invalid.empty());
}

TEST(PruneTrials, BreaksTiesBetweenIdenticalPointsByTheLowestIndex) {
  std::vector<trial_scores> const same(6, trial_scores{0.5, 2.0});
  auto const r = prune(same, 3);
  EXPECT_EQ(r.removed, (indices{1, 2, 3}));
  EXPECT_EQ(r.kept, (indices{0, 4, 5}));
}

TEST(PruneTrials, MatchesTheReferenceOnAGridWithExactTies) {
  // filter_trials-public-0007 (tests/data/reference): trials "1".."8".
  auto const r = prune({{0.75, 2.5},
                        {0.25, 0.5},
                        {0.5, 3.5},
                        {0.5, 3.5},
                        {0.25, 2.5},
                        {0.5, 1.5},
                        {0.25, 0.5},
                        {0.75, 1.5}},
                       11);
  EXPECT_EQ(r.removed, (indices{6, 3, 7, 2, 5, 4}));
  EXPECT_EQ(r.kept, (indices{0, 1}));
}

TEST(PruneTrials, NormalisesOnceBeforeAnyRemoval) {
  // edge-remove_more_than_available (tests/data/reference): normalising again after each removal
  // would change the order.
  auto const r = prune({{0.1, 0.3},
                        {0.2, 1.2},
                        {0.30000000000000004, 2.6999999999999997},
                        {0.4, 4.8},
                        {0.5, 7.5},
                        {0.6000000000000001, 10.799999999999999},
                        {0.7000000000000001, 14.700000000000001},
                        {0.8, 19.2}},
                       50);
  EXPECT_EQ(r.removed, (indices{1, 3, 5, 6, 2, 4}));
  EXPECT_EQ(r.kept, (indices{0, 7}));
}

TEST(PruneTrials, KeepsAtLeastTwoValidTrials) {
  auto const r = prune({{0.1, 1.0}, {0.2, 2.0}, {0.3, 3.0}, {0.4, 4.0}, {0.5, 5.0}}, 10);
  EXPECT_EQ(r.kept.size(), 2u);
  EXPECT_EQ(r.removed.size(), 3u);
}

TEST(PruneTrials, CountsInvalidTrialsTowardsTheRemovals) {
  auto const r = prune({{0.1, 1.0}, {nan, 2.0}, {0.3, 3.0}, {0.4, 4.0}, {0.5, 5.0}}, 2);
  EXPECT_EQ(r.invalid, (indices{1}));
  EXPECT_EQ(r.removed.size(), 1u);
  EXPECT_EQ(r.kept.size(), 3u);
}

TEST(PruneTrials, CountsZeroAndNegativeAccuraciesAsScores) {
  // The reference takes an accuracy of exactly 0.0 for "missing".
  auto const r = prune({{0.0, 1.0}, {0.5, 1.0}, {0.6, 2.0}, {0.7, 3.0}, {0.71, 3.1}}, 1);
  EXPECT_TRUE(r.invalid.empty());
  EXPECT_EQ(r.removed, (indices{3}));
  auto const negative = prune({{-1.0, 1.0}, {0.5, 1.0}, {0.6, 2.0}}, 0);
  EXPECT_TRUE(negative.invalid.empty());
  EXPECT_EQ(negative.kept, (indices{0, 1, 2}));
}

TEST(PruneTrials, MarksANanAccuracyInvalidWithoutDisturbingTheOthers) {
  // The reference lets a NaN poison every distance. Here the NaN trial is invalid and the others
  // are pruned as if it were absent (with one removal fewer: it counts towards them).
  std::vector<trial_scores> const others{{0.717014, 18.32}, {0.745491, 2.58}, {0.212114, 13.7},
                                         {0.574212, 0.59},  {0.724354, 9.1},  {0.3, 5.0}};
  std::vector<trial_scores> with_nan = others;
  with_nan.insert(with_nan.begin() + 2, trial_scores{nan, 4.0});
  auto const a = prune(with_nan, 3);
  auto const b = prune(others, 2);
  EXPECT_EQ(a.invalid, (indices{2}));
  indices shifted;
  for (std::size_t i : b.removed) shifted.push_back(i >= 2 ? i + 1 : i);
  EXPECT_EQ(a.removed, shifted);
}

TEST(PruneTrials, MarksAMissingOrNegativeLatencyInvalid) {
  auto const r = prune({{0.1, 1.0}, {0.2, nan}, {0.3, -0.5}, {0.4, -1.0}, {0.5, 0.0}}, 0);
  EXPECT_EQ(r.invalid, (indices{1, 2, 3}));
  EXPECT_EQ(r.kept, (indices{0, 4}));
}

TEST(PruneTrials, UsesAccuracyAloneWhenAnOptionalLatencyIsMissing) {
  std::vector<trial_scores> const scattered{
      {0.1, nan}, {0.2, 50.0}, {0.3, -1.0}, {0.35, 7.0}, {0.9, 3.0}};
  std::vector<trial_scores> const flat{{0.1, 0.0}, {0.2, 0.0}, {0.3, 0.0}, {0.35, 0.0}, {0.9, 0.0}};
  auto const r = prune(scattered, 2, false);
  EXPECT_TRUE(r.invalid.empty()) << "an optional latency invalidates no trial";
  EXPECT_EQ(r.removed, prune(flat, 2, false).removed);
  EXPECT_EQ(r.removed, (indices{2, 1}));
}

TEST(PruneTrials, UsesAnOptionalLatencyThatEveryTrialHas) {
  // On accuracy alone 0.5 and 0.52 are the closest pair and 0.52 (index 2) goes; its latency
  // sets it apart, and then 0.5 (index 1) goes.
  std::vector<trial_scores> const trials{{0.0, 1.0}, {0.5, 1.0}, {0.52, 10.0}, {1.0, 1.0}};
  EXPECT_EQ(prune(trials, 1, false).removed, (indices{1}));
  EXPECT_EQ(prune(trials, 1, true).removed, (indices{1}));
  std::vector<trial_scores> accuracy_only = trials;
  for (auto& t : accuracy_only) t.latency = nan;
  EXPECT_EQ(prune(accuracy_only, 1, false).removed, (indices{2}));
}

TEST(PruneTrials, AnswersWhenEveryTrialIsInvalid) {
  // The reference crashes (np.min of an empty array).
  auto const r = prune({{nan, 1.0}, {0.4, -1.0}, {0.3, nan}}, 1);
  EXPECT_EQ(r.invalid, (indices{0, 1, 2}));
  EXPECT_TRUE(r.kept.empty());
  EXPECT_TRUE(r.removed.empty());
  EXPECT_TRUE(prune({}, 3).kept.empty());
}

TEST(PruneTrials, KeepsASingleValidTrial) {
  auto const r = prune({{nan, 1.0}, {0.4, 2.0}, {nan, 3.0}}, 1);
  EXPECT_EQ(r.kept, (indices{1}));
  EXPECT_TRUE(r.removed.empty());
}

TEST(PruningAccuracy, IsTheAccuracyAtTheDesiredPct) {
  std::vector<curve_point> const c{{50.0, 499, 0.0}, {100.0, 999, 0.442126}};
  EXPECT_EQ(pt::stats::pruning_accuracy(c, 50.0), 0.0);
  EXPECT_DOUBLE_EQ(pt::stats::pruning_accuracy(c, 75.0), 0.221063);
  EXPECT_TRUE(std::isnan(pt::stats::pruning_accuracy(c, 100.5)));
}

TEST(PruneTrials, KeepsATrialWhoseCurveGivesZeroAccuracy) {
  // filter_trials-public-0022's trials "10" and "24": 0.0 at 50% is a score here; the reference
  // drops them as "missing".
  std::vector<curve_point> const zero_at_half{{50.0, 499, 0.0}, {100.0, 999, 0.442126}};
  std::vector<curve_point> const short_run{{12.0, 119, 0.35}, {40.0, 399, 0.41}};
  std::vector<trial_scores> const trials{{pt::stats::pruning_accuracy(zero_at_half, 50.0), 2.5},
                                         {pt::stats::pruning_accuracy(short_run, 50.0), 4.1},
                                         {0.57, 4.0},
                                         {0.28, 15.7}};
  auto const r = prune(trials, 1);
  EXPECT_EQ(r.invalid, (indices{1}));
  EXPECT_EQ(r.kept, (indices{0, 2, 3}));
}

}  // namespace
