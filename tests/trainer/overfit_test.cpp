// Training as a whole on synthetic data: a small MLP memorises 64 random samples with SGD and
// with Adam; clipping bounds the update; the EMA and the learning-rate schedule follow their
// formulas; a huge learning rate diverges and is reported as a non-finite loss; the same seed
// gives the same bits.

#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <trainer/synthetic_data.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <span>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;
using tr::activation;
using optimizer = tr::training_config::optimizer;

TEST(TrainerOverfit, SmallMlpMemorisesSixtyFourSamplesWithAdamAndSgd) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(64, 32, 10, 1);
  for (activation act : tr::all_activations) {
    for (optimizer opt : {optimizer::adam, optimizer::sgd_momentum}) {
      tr::training_config const config{.batch_size = 16,
                                       .total_steps = 600,
                                       .learning_rate = opt == optimizer::adam ? 1e-2 : 0.1,
                                       .opt = opt,
                                       .seed = 3};
      tr::mlp_trainer t({.hidden = {64}, .act = act}, 32, config);
      double const before = t.evaluate(data.images, data.labels);
      float const loss = pt::testing::train_for(t, data, 16, 600);
      EXPECT_TRUE(std::isfinite(loss));
      EXPECT_EQ(t.evaluate(data.images, data.labels), 1.0)
          << tr::to_string(act) << (opt == optimizer::adam ? " adam" : " sgd") << " loss " << loss
          << ", accuracy before " << before;
      EXPECT_LT(loss, 0.1f);
    }
  }
}

TEST(TrainerOverfit, MemorisesWithDropoutWeightDecayClippingAndEmaOn) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(64, 32, 10, 2);
  tr::training_config const config{.batch_size = 32,
                                   .total_steps = 800,
                                   .learning_rate = 1e-2,
                                   .weight_decay = 1e-4,
                                   .clip_norm = 5.0,
                                   .ema_decay = 0.99,
                                   .warmup_fraction = 0.05,
                                   .seed = 4};
  tr::mlp_trainer t({.hidden = {128, 64}, .act = activation::gelu, .dropout = 0.1}, 32, config);
  pt::testing::train_for(t, data, 32, 800);
  EXPECT_EQ(t.evaluate(data), 1.0);
}

TEST(TrainerSchedule, WarmupThenCosineToZero) {
  tr::training_config c{.total_steps = 110, .learning_rate = 0.5, .warmup_fraction = 10.0 / 110};
  EXPECT_DOUBLE_EQ(tr::learning_rate_at(c, 0), 0.05);
  EXPECT_DOUBLE_EQ(tr::learning_rate_at(c, 4), 0.25);
  EXPECT_DOUBLE_EQ(tr::learning_rate_at(c, 9), 0.5);
  EXPECT_DOUBLE_EQ(tr::learning_rate_at(c, 10), 0.5);
  EXPECT_NEAR(tr::learning_rate_at(c, 60), 0.25, 1e-15);
  EXPECT_NEAR(tr::learning_rate_at(c, 35), 0.25 * (1.0 + std::cos(std::numbers::pi / 4)), 1e-15);
  EXPECT_GT(tr::learning_rate_at(c, 109), 0.0);
  EXPECT_LT(tr::learning_rate_at(c, 109), 1e-3);
  EXPECT_EQ(tr::learning_rate_at(c, 110), 0.0);
  EXPECT_EQ(tr::learning_rate_at(c, 1000), 0.0);
  c.warmup_fraction = 0.0;
  EXPECT_DOUBLE_EQ(tr::learning_rate_at(c, 0), 0.5);
  for (std::int64_t s = 1; s < 110; ++s)
    EXPECT_LT(tr::learning_rate_at(c, s), tr::learning_rate_at(c, s - 1)) << "step " << s;
}

TEST(TrainerSchedule, TrainerUsesTheScheduleAndCountsSteps) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(8, 4, 3, 1);
  tr::training_config const config{
      .total_steps = 4, .learning_rate = 0.1, .opt = optimizer::sgd_momentum, .momentum = 0.0};
  tr::mlp_trainer t({.hidden = {3}}, 4, config, 3);
  for (std::int64_t s = 0; s < 4; ++s) {
    EXPECT_EQ(t.step(), s);
    EXPECT_DOUBLE_EQ(t.learning_rate(), tr::learning_rate_at(config, s));
    t.train_step(data.images, data.labels);
  }
  // After total_steps the learning rate is 0: further steps leave the weights alone.
  std::vector<float> const before(t.parameters().begin(), t.parameters().end());
  t.train_step(data.images, data.labels);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), t.parameters().begin()));
  EXPECT_EQ(t.step(), 5);
}

TEST(TrainerClipping, BoundsTheGlobalNormOfTheUpdate) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(16, 8, 4, 9);
  // Plain SGD, momentum 0, learning rate 1: the update is minus the (clipped) gradient.
  for (double clip : {0.0, 0.05, 1e6}) {
    tr::training_config const config{.total_steps = 100,
                                     .learning_rate = 1.0,
                                     .opt = optimizer::sgd_momentum,
                                     .momentum = 0.0,
                                     .clip_norm = clip,
                                     .seed = 1};
    tr::mlp_trainer t({.hidden = {16}}, 8, config, 4);
    std::vector<float> const before(t.parameters().begin(), t.parameters().end());
    t.train_step(data.images, data.labels);
    double const norm = t.last_gradient_norm();
    double moved = 0.0;
    for (std::size_t i = 0; i < before.size(); ++i) {
      double const d = static_cast<double>(t.parameters()[i]) - before[i];
      moved += d * d;
    }
    moved = std::sqrt(moved);
    ASSERT_GT(norm, 0.05) << "the test needs a gradient larger than the smallest clip";
    double const expected = clip > 0.0 ? std::min(norm, clip) : norm;
    EXPECT_NEAR(moved, expected, 1e-4 * expected) << "clip " << clip;
  }
}

TEST(TrainerEma, FollowsTheWarmedUpDecayAndIsWhatEvaluationUses) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(32, 8, 4, 5);
  tr::training_config const config{
      .total_steps = 50, .learning_rate = 0.05, .ema_decay = 0.9, .seed = 2};
  tr::mlp_trainer t({.hidden = {16}}, 8, config, 4);
  std::vector<float> ema(t.parameters().begin(), t.parameters().end());
  EXPECT_TRUE(std::equal(ema.begin(), ema.end(), t.state().ema.begin()));
  for (std::int64_t s = 1; s <= 20; ++s) {
    t.train_step(data.images, data.labels);
    double const d = std::min(0.9, (1.0 + s) / (10.0 + s));
    EXPECT_DOUBLE_EQ(tr::ema_decay_at(0.9, s), d);
    auto const w = t.parameters();
    for (std::size_t i = 0; i < ema.size(); ++i)
      ema[i] = static_cast<float>(d) * ema[i] + (1.0f - static_cast<float>(d)) * w[i];
  }
  for (std::size_t i = 0; i < ema.size(); ++i)
    ASSERT_FLOAT_EQ(t.state().ema[i], ema[i]) << "element " << i;
  EXPECT_EQ(t.inference_parameters().data(), t.state().ema.data());

  // Evaluation uses the EMA: the same predictions as a model whose live weights are the EMA.
  tr::training_config no_ema = config;
  no_ema.ema_decay = 0.0;
  tr::mlp_trainer plain({.hidden = {16}}, 8, no_ema, 4);
  std::copy(t.state().ema.begin(), t.state().ema.end(), plain.parameters().begin());
  std::vector<float> l1(32 * 4), l2(32 * 4);
  t.infer(data.images, l1);
  plain.infer(data.images, l2);
  EXPECT_EQ(l1, l2);
}

TEST(TrainerDivergence, HugeLearningRateGivesANonFiniteLossAndLeavesTheStateAlone) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(64, 16, 10, 6);
  tr::training_config const config{
      .total_steps = 200, .learning_rate = 1e30, .opt = optimizer::sgd_momentum, .seed = 1};
  tr::mlp_trainer t({.hidden = {32}}, 16, config);
  float loss = 0.0f;
  std::int64_t steps = 0;
  while (steps < 200 && std::isfinite(loss)) {
    loss = t.train_step(data.images, data.labels);
    ++steps;
  }
  EXPECT_FALSE(std::isfinite(loss)) << "after " << steps << " steps";
  // The diverged step did not count, and trying again changes nothing.
  std::int64_t const step = t.step();
  EXPECT_EQ(step, steps - 1);
  std::vector<float> const before(t.parameters().begin(), t.parameters().end());
  EXPECT_FALSE(std::isfinite(t.train_step(data.images, data.labels)));
  EXPECT_EQ(t.step(), step);
  EXPECT_TRUE(std::equal(before.begin(), before.end(), t.parameters().begin(),
                         [](float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }));
}

TEST(TrainerDeterminism, SameSeedSameBitsOtherSeedOtherModel) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(96, 20, 10, 7);
  tr::mlp_spec const spec{.hidden = {32, 16}, .act = activation::tanh, .dropout = 0.2};
  tr::training_config config{
      .total_steps = 30, .learning_rate = 1e-2, .ema_decay = 0.5, .seed = 42};
  auto run = [&](tr::training_config const& c) {
    tr::mlp_trainer t(spec, 20, c);
    pt::testing::train_for(t, data, 32, 30);
    return std::vector<float>(t.parameters().begin(), t.parameters().end());
  };
  auto const a = run(config);
  auto const b = run(config);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  config.seed = 43;
  EXPECT_NE(a, run(config));
}

TEST(TrainerInference, BatchOfOneMatchesTheRowsOfABatch) {
  tr::set_blas_threads(1);
  auto const data = pt::testing::make_synthetic(10, 12, 10, 8);
  tr::mlp_trainer t({.hidden = {24, 24}, .act = activation::gelu, .dropout = 0.3}, 12,
                    {.total_steps = 5, .seed = 5});
  pt::testing::train_for(t, data, 10, 3);
  std::vector<float> all(10 * 10), one(10);
  t.infer(data.images, all);
  for (std::size_t r = 0; r < 10; ++r) {
    t.infer(data.images_of(r, 1), one);
    for (std::size_t c = 0; c < 10; ++c) EXPECT_NEAR(one[c], all[r * 10 + c], 1e-5);
  }
  std::vector<std::uint8_t> predicted(10);
  t.predict(data.images, predicted);
  for (std::size_t r = 0; r < 10; ++r) {
    auto const row = std::span<float const>(all).subspan(r * 10, 10);
    EXPECT_EQ(predicted[r], std::max_element(row.begin(), row.end()) - row.begin());
  }
}

TEST(TrainerBatches, EpochOrderIsASeededPermutationAndGatherCopiesRows) {
  auto const a = tr::epoch_order(1000, 1, 0);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(a, tr::epoch_order(1000, 1, 0));
  EXPECT_NE(a, tr::epoch_order(1000, 1, 1));
  EXPECT_NE(a, tr::epoch_order(1000, 2, 0));

  auto const data = pt::testing::make_synthetic(5, 3, 4, 1);
  std::vector<std::uint32_t> const idx = {4, 0};
  std::vector<float> images(6);
  std::vector<std::uint8_t> labels(2);
  tr::gather_batch(3, data.images, data.labels, idx, images, labels);
  EXPECT_TRUE(std::equal(images.begin(), images.begin() + 3, data.images.begin() + 12));
  EXPECT_TRUE(std::equal(images.begin() + 3, images.end(), data.images.begin()));
  EXPECT_EQ(labels[0], data.labels[4]);
  EXPECT_EQ(labels[1], data.labels[0]);
}

TEST(TrainerContracts, RejectsBadConfigsAndBatches) {
  EXPECT_THROW(tr::mlp_trainer({.hidden = {4}}, 3, {.total_steps = 0}), pt::logic_error);
  EXPECT_THROW(tr::mlp_trainer({.hidden = {4}}, 3, {.total_steps = 1, .ema_decay = 1.0}),
               pt::logic_error);
  EXPECT_THROW(tr::mlp_trainer({.hidden = {}}, 3, {.total_steps = 1}), pt::logic_error);
  tr::mlp_trainer t({.hidden = {4}}, 3, {.total_steps = 1});
  std::vector<float> const images(7);
  std::vector<std::uint8_t> const labels(2);
  EXPECT_THROW(t.train_step(images, labels), pt::logic_error);
}

}  // namespace
