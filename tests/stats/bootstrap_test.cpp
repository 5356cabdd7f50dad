#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/kendall.hpp>
#include <proxytask/stats/over_steps.hpp>
#include <proxytask/stats/p_value.hpp>
#include <proxytask/stats/philox.hpp>
#include <proxytask/stats/rank.hpp>
#include <proxytask/stats/spearman.hpp>

#include <support/random_samples.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace {

namespace pt = proxytask;
namespace st = proxytask::stats;
namespace sd = proxytask::stats::detail;
using proxytask::testing::random_sample;

double const nan = std::nan("");

/// The step ranks of paired samples, as correlate_over_steps builds them.
struct ranked {
  sd::correlation_workspace ws;
  ranked(std::vector<double> const& x, std::vector<double> const& y) {
    sd::rank_pairs(std::span<double const>(x), std::span<double const>(y), ws);
  }
};

st::correlation_result correlate(st::correlation method, std::vector<double> const& x,
                                 std::vector<double> const& y) {
  return method == st::correlation::spearman ? st::spearman<double>(x, y)
                                             : st::kendall_tau_b<double>(x, y);
}

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

TEST(BootstrapReplicate, EqualsTheCoefficientOfTheExplicitResample) {
  // A replicate is ranked by counting from the step's one sort; it must be exactly the
  // coefficient of the resample written out and sorted again.
  for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      auto const x = random_sample(40, seed, seed % 2 ? 6 : 0, 0.1);
      auto const y = random_sample(40, seed + 100, 5, 0.1);
      ranked r(x, y);
      std::vector<std::size_t> valid;  // rows with both values, in row order
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!std::isnan(x[i]) && !std::isnan(y[i])) valid.push_back(i);
      ASSERT_EQ(valid.size(), r.ws.ranks.n);
      for (std::uint32_t b = 0; b < 25; ++b) {
        st::philox_stream draw(seed, 7, b, st::draw_purpose::bootstrap);
        std::vector<double> xs, ys;
        for (std::size_t i = 0; i < valid.size(); ++i) {
          auto const k = valid[st::uniform_index(draw(), static_cast<std::uint32_t>(valid.size()))];
          xs.push_back(x[k]);
          ys.push_back(y[k]);
        }
        double const expected = correlate(method, xs, ys).coefficient;
        double const actual = sd::bootstrap_replicate(r.ws.ranks, method, seed, 7, b, r.ws.scratch);
        EXPECT_TRUE(same_bits(actual, expected) || (std::isnan(actual) && std::isnan(expected)))
            << "method " << st::to_string(method) << " seed " << seed << " resample " << b << ": "
            << actual << " vs " << expected;
      }
    }
  }
}

TEST(Jackknife, EqualsTheCoefficientWithoutEachPair) {
  for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
    for (std::uint64_t seed = 0; seed < 8; ++seed) {
      std::size_t const n = 5 + 9 * seed;
      auto const x = random_sample(n, seed, seed % 3 ? 4 : 0);
      auto const y = random_sample(n, seed + 50, seed % 2 ? 3 : 0);
      ranked r(x, y);
      std::vector<double> jack;
      sd::jackknife(r.ws.ranks, method, jack, r.ws.scratch);
      // Positions are in (x, y) order; map them back to rows through draw_position.
      for (std::uint32_t k = 0; k < n; ++k) {
        std::vector<double> xs = x, ys = y;
        xs.erase(xs.begin() + k);
        ys.erase(ys.begin() + k);
        double const expected = correlate(method, xs, ys).coefficient;
        double const actual = jack[r.ws.ranks.draw_position[k]];
        EXPECT_TRUE(same_bits(actual, expected) || (std::isnan(actual) && std::isnan(expected)))
            << "method " << st::to_string(method) << " n " << n << " without row " << k << ": "
            << actual << " vs " << expected;
      }
    }
  }
}

TEST(Quantile, InterpolatesLinearlyBetweenOrderStatisticsAsNumpy) {
  std::vector<double> const v{5, 1, 4, 2, 3};
  sd::sample_quantiles const quantile(v);
  EXPECT_EQ(quantile(0.0), 1);
  EXPECT_EQ(quantile(1.0), 5);
  EXPECT_EQ(quantile(0.5), 3);
  EXPECT_DOUBLE_EQ(quantile(0.1), 1.4);  // position 0.4 between 1 and 2
  EXPECT_DOUBLE_EQ(quantile(0.975), 4.9);
  EXPECT_TRUE(std::isnan(quantile(std::nan(""))));
  std::vector<double> const empty, equal{2, 2, 2};
  std::vector<double> const infinite{1, -std::numeric_limits<double>::infinity(), 3};
  EXPECT_TRUE(std::isnan(sd::sample_quantiles(empty)(0.5)));
  EXPECT_EQ(sd::sample_quantiles(equal)(0.3), 2);
  EXPECT_EQ(sd::sample_quantiles(infinite)(0.5), 1);
}

TEST(Quantile, EqualsTheSortedDefinitionOnClusteredAndSpreadSamples) {
  // Bucketing by value must not change which order statistics are picked: compare with a sort,
  // on samples with ties, a tight cluster beside outliers (crowded buckets) and uniform spreads.
  std::mt19937_64 gen(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::size_t const n = 1 + gen() % 3000;
    std::vector<double> v(n);
    for (auto& x : v) {
      switch (trial % 3) {
        case 0: x = std::floor(std::uniform_real_distribution<>(0, 20)(gen)); break;  // ties
        case 1: x = gen() % 50 == 0 ? 1e6 : std::uniform_real_distribution<>(0, 1e-9)(gen); break;
        default: x = std::uniform_real_distribution<>(-1, 1)(gen);
      }
    }
    auto sorted = v;
    std::sort(sorted.begin(), sorted.end());
    sd::sample_quantiles const quantile(v);
    for (double q : {0.0, 0.025, 0.05, 0.5, 0.95, 0.975, 1.0}) {
      double const h = static_cast<double>(n - 1) * q;
      auto const k = static_cast<std::size_t>(std::floor(h));
      double const expected =
          k + 1 < n ? sorted[k] + (h - static_cast<double>(k)) * (sorted[k + 1] - sorted[k])
                    : sorted[k];
      EXPECT_EQ(quantile(q), expected) << "n " << n << " q " << q;
    }
  }
}

TEST(SummarizeBootstrap, GivesThePercentileIntervalAndTheBootstrapPValues) {
  std::vector<double> replicates(1001);
  for (std::size_t i = 0; i < replicates.size(); ++i)
    replicates[i] = (static_cast<double>((i * 7919) % 1001) - 500) / 1000;  // -0.5 .. 0.5
  replicates.push_back(nan);
  auto const s =
      st::summarize_bootstrap(replicates, 0.0, {}, st::interval_method::percentile, 0.9, 0.3);
  EXPECT_EQ(s.defined, 1001u);
  EXPECT_EQ(s.undefined, 1u);
  EXPECT_NEAR(s.low, -0.45, 1e-12);
  EXPECT_NEAR(s.high, 0.45, 1e-12);
  EXPECT_NEAR(s.p_above_zero, (501.0 + 1) / 1002, 1e-15);       // 501 values <= 0
  EXPECT_NEAR(s.p_above_threshold, (801.0 + 1) / 1002, 1e-15);  // 801 values <= 0.3
  EXPECT_NEAR(s.standard_error, std::sqrt(1001.0 * 1002 / 12) / 1000, 1e-12);
}

TEST(SummarizeBootstrap, BcaEqualsPercentileWithoutBiasOrAcceleration) {
  // Replicates symmetric around theta_hat (z0 = 0) and a symmetric jackknife (a = 0).
  std::vector<double> replicates;
  for (int i = -500; i <= 500; ++i) replicates.push_back(0.2 + i / 1000.0);
  std::vector<double> copy = replicates;
  std::vector<double> const jackknife{0.19, 0.21, 0.18, 0.22, 0.2};
  auto const bca = st::summarize_bootstrap(replicates, 0.2, jackknife, st::interval_method::bca,
                                           0.95, std::nullopt);
  auto const pct =
      st::summarize_bootstrap(copy, 0.2, {}, st::interval_method::percentile, 0.95, std::nullopt);
  EXPECT_NEAR(bca.low, pct.low, 1e-12);
  EXPECT_NEAR(bca.high, pct.high, 1e-12);
  EXPECT_TRUE(std::isnan(bca.p_above_threshold));
}

TEST(SummarizeBootstrap, ShiftsTheBcaIntervalTowardsTheBias) {
  // theta_hat above most replicates: z0 > 0 moves both bounds up.
  std::vector<double> replicates, copy;
  for (int i = 0; i <= 1000; ++i) replicates.push_back(i / 1000.0);
  copy = replicates;
  std::vector<double> const jackknife{0.69, 0.71, 0.68, 0.72, 0.7};
  auto const bca = st::summarize_bootstrap(replicates, 0.7, jackknife, st::interval_method::bca,
                                           0.9, std::nullopt);
  auto const pct =
      st::summarize_bootstrap(copy, 0.7, {}, st::interval_method::percentile, 0.9, std::nullopt);
  EXPECT_GT(bca.low, pct.low + 0.05);
  EXPECT_GT(bca.high, pct.high);
}

TEST(SummarizeBootstrap, IsNaNWithoutDefinedReplicates) {
  std::vector<double> replicates{nan, nan};
  auto const s =
      st::summarize_bootstrap(replicates, 0.5, {}, st::interval_method::percentile, 0.95, 0.1);
  EXPECT_EQ(s.undefined, 2u);
  EXPECT_EQ(s.defined, 0u);
  EXPECT_TRUE(std::isnan(s.low) && std::isnan(s.p_above_zero));
}

// --- correlate_over_steps with bootstrap and permutations -------------------------------------

struct matrix {
  std::size_t models, steps;
  std::vector<double> values;
};

matrix learning_curves(std::size_t models, std::size_t steps, std::uint64_t seed) {
  auto noise = random_sample(models * steps, seed, 0, 0.05);
  matrix m{models, steps, std::vector<double>(models * steps)};
  for (std::size_t i = 0; i < models; ++i)
    for (std::size_t s = 0; s < steps; ++s) {
      double const progress = static_cast<double>(s + 1) / static_cast<double>(steps);
      double const v = noise[i * steps + s];
      m.values[i * steps + s] =
          std::isnan(v) ? nan : std::round(1000 * (progress * i / models + 0.05 * v)) / 1000;
    }
  return m;
}

st::step_table run(pt::backend::cpu_t policy, matrix const& m, std::vector<double> const& ref,
                   st::over_steps_options const& options) {
  return st::correlate_over_steps(
             policy, pt::host_matrix_view<double const>(m.values.data(), m.models, m.steps), ref,
             options)
      .value();
}

void expect_identical(st::step_table const& a, st::step_table const& b, char const* what) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t s = 0; s < a.size(); ++s) {
    auto same = [](double x, double y) {
      return same_bits(x, y) || (std::isnan(x) && std::isnan(y));
    };
    EXPECT_TRUE(same(a[s].coefficient, b[s].coefficient)) << what << " step " << s;
    EXPECT_TRUE(same(a[s].bootstrap.low, b[s].bootstrap.low)) << what << " step " << s;
    EXPECT_TRUE(same(a[s].bootstrap.high, b[s].bootstrap.high)) << what << " step " << s;
    EXPECT_TRUE(same(a[s].bootstrap.standard_error, b[s].bootstrap.standard_error)) << what;
    EXPECT_TRUE(same(a[s].bootstrap.p_above_threshold, b[s].bootstrap.p_above_threshold)) << what;
    EXPECT_EQ(a[s].bootstrap.undefined, b[s].bootstrap.undefined) << what;
    EXPECT_TRUE(same(a[s].permutation.p_value, b[s].permutation.p_value)) << what << " step " << s;
  }
}

TEST(CorrelateOverStepsBootstrap, GivesTheSameBitsForEveryThreadCount) {
  std::vector<double> ref(30);
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<double>(i) / 30;
  for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
    // 1 step: its replicates in parallel; 29 steps: blocks of steps in parallel
    for (std::size_t steps : {1u, 29u}) {
      auto const m = learning_curves(30, steps, 3);
      for (std::size_t resamples : {0u, 300u}) {  // plain, and with replicates
        st::over_steps_options const options{.method = method,
                                             .bootstrap_resamples = resamples,
                                             .threshold = 0.5,
                                             .permutations = resamples == 0 ? 0u : 200u,
                                             .seed = 11};
        auto const one = run(pt::backend::cpu, m, ref, options);
        for (unsigned threads : {2u, 3u, 8u})
          expect_identical(one, run(pt::backend::cpu.with_threads(threads), m, ref, options),
                           "threads");
      }
    }
  }
}

TEST(CorrelateOverStepsBootstrap, BracketsTheCoefficientAndDependsOnTheSeed) {
  std::vector<double> ref(25);
  for (std::size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<double>(i);
  auto const m = learning_curves(25, 4, 5);
  st::over_steps_options options{.bootstrap_resamples = 500, .threshold = 0.65, .seed = 1};
  auto const a = run(pt::backend::cpu, m, ref, options);
  options.seed = 2;
  auto const b = run(pt::backend::cpu, m, ref, options);
  for (std::size_t s = 0; s < 4; ++s) {
    ASSERT_EQ(a[s].reason, st::nan_reason::none);
    EXPECT_LT(a[s].bootstrap.low, a[s].coefficient);
    EXPECT_GT(a[s].bootstrap.high, a[s].coefficient);
    EXPECT_EQ(a[s].bootstrap.defined + a[s].bootstrap.undefined, 500u);
    EXPECT_NE(a[s].bootstrap.low, b[s].bootstrap.low) << "another seed, other resamples";
    EXPECT_GT(a[s].bootstrap.p_above_threshold, 0.0);
    EXPECT_LE(a[s].bootstrap.p_above_zero, a[s].bootstrap.p_above_threshold);
  }
  // The last step is almost the reference ranking: far above 0, likely above 0.65.
  EXPECT_LT(a[3].bootstrap.p_above_zero, 0.01);
  EXPECT_GT(a[3].coefficient, 0.8);
}

TEST(CorrelateOverStepsBootstrap, CountsConstantResamplesAsUndefined) {
  // 5 pairs, 3 of them tied in x: many resamples draw a constant x.
  std::vector<double> const x{1, 1, 1, 2, 3}, ref{1, 2, 3, 4, 5};
  matrix m{5, 1, x};
  auto const t = run(pt::backend::cpu, m, ref,
                     {.method = st::correlation::spearman, .bootstrap_resamples = 2000});
  EXPECT_GT(t[0].bootstrap.undefined, 0u);
  EXPECT_EQ(t[0].bootstrap.defined + t[0].bootstrap.undefined, 2000u);
  EXPECT_FALSE(std::isnan(t[0].bootstrap.low));
}

TEST(CorrelateOverStepsBootstrap, SkipsStepsThatAreNotValid) {
  std::vector<double> const ref{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  matrix m{10, 1, {1, 2, 3, nan, nan, nan, nan, 8, 9, 10}};
  auto const t = run(pt::backend::cpu, m, ref, {.bootstrap_resamples = 100, .permutations = 100});
  EXPECT_EQ(t[0].reason, st::nan_reason::too_few_valid_models);
  EXPECT_EQ(t[0].bootstrap.defined, 0u);
  EXPECT_TRUE(std::isnan(t[0].bootstrap.low) && std::isnan(t[0].permutation.p_value));
}

TEST(PermutationTest, IsExactForAtMostEightPairsAndMatchesKendallsExactNull) {
  std::vector<double> const x{1, 2, 3, 4, 5, 6, 7, 8}, ref{2, 1, 4, 3, 6, 8, 5, 7};
  matrix m{8, 1, x};
  for (auto h : {st::hypothesis::two_sided, st::hypothesis::greater, st::hypothesis::less}) {
    auto const t = run(pt::backend::cpu, m, ref,
                       {.alternative = h, .min_valid_fraction = 0, .permutations = 1});
    EXPECT_TRUE(t[0].permutation.exact);
    EXPECT_EQ(t[0].permutation.permutations, 40320u);
    EXPECT_NEAR(t[0].permutation.p_value, t[0].p_value, 1e-12) << st::to_string(h);
  }
}

TEST(PermutationTest, EnumeratesSpearmansExactNull) {
  // 7 pairs with a tie: count the pairings whose sum of rank products is at least the observed.
  std::vector<double> const x{1, 2, 2, 4, 5, 6, 7}, ref{3, 1, 2, 5, 4, 7, 6};
  matrix m{7, 1, x};
  auto const t = run(pt::backend::cpu, m, ref,
                     {.method = st::correlation::spearman,
                      .alternative = st::hypothesis::greater,
                      .permutations = 1});
  auto const rx = st::average_ranks(std::span<double const>(x));
  auto const ry = st::average_ranks(std::span<double const>(ref));
  double observed = 0;
  for (std::size_t i = 0; i < 7; ++i) observed += rx[i] * ry[i];
  std::vector<std::size_t> order(7);
  std::iota(order.begin(), order.end(), 0);
  int at_least = 0, all = 0;
  do {
    double sum = 0;
    for (std::size_t i = 0; i < 7; ++i) sum += rx[i] * ry[order[i]];
    at_least += sum >= observed - 1e-9;
    ++all;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(all, 5040);
  EXPECT_DOUBLE_EQ(t[0].permutation.p_value, static_cast<double>(at_least) / all);
}

TEST(PermutationTest, MonteCarloAgreesWithTheExactNullWithinItsError) {
  // 14 untied pairs: Kendall's exact null is known; 20000 permutations estimate it.
  std::vector<double> x(14), ref(14);
  for (int i = 0; i < 14; ++i) {
    x[i] = i;
    ref[i] = (i * 5) % 14 + 0.1 * (i % 3);
  }
  matrix m{14, 1, x};
  auto const t = run(pt::backend::cpu.with_threads(2), m, ref, {.permutations = 20000, .seed = 3});
  EXPECT_FALSE(t[0].permutation.exact);
  EXPECT_EQ(t[0].permutation.permutations, 20000u);
  double const p = t[0].p_value;  // exact (no ties, n <= 33)
  double const error = std::sqrt(p * (1 - p) / 20000);
  EXPECT_NEAR(t[0].permutation.p_value, p, 4 * 2 * error + 1e-4);
}

}  // namespace
