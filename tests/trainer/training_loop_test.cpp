// The host logic of the generic training loop (basic_mlp_trainer.hpp) on the CPU back-end: the
// deferred loss log (enqueue_step, take_losses) against train_step, divergence under it, the
// training set's batches, snapshots and restores. The same behaviour on the GPU is checked in
// mlp_cuda_test.cu.

#include <proxytask/trainer/checkpoint.hpp>
#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <trainer/synthetic_data.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;
using tr::activation;

bool same_bits(std::span<float const> a, std::span<float const> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

TEST(TrainingLoop, EnqueuedStepsGiveTheBitsOfTrainStep) {
  tr::set_blas_threads(1);
  tr::mlp_spec const spec{.hidden = {32}, .act = activation::gelu, .dropout = 0.1};
  tr::training_config const config{.total_steps = 50, .ema_decay = 0.9, .seed = 2};
  auto const data = pt::testing::make_synthetic(8 * 16, 20, 5, 1);
  tr::mlp_trainer sync(spec, 20, config, 5);
  tr::mlp_trainer deferred(spec, 20, config, 5);
  std::vector<float> sync_losses;
  for (std::size_t s = 0; s < 8; ++s) {
    sync_losses.push_back(sync.train_step(data.images_of(s * 16, 16), data.labels_of(s * 16, 16)));
    deferred.enqueue_step(data.images_of(s * 16, 16), data.labels_of(s * 16, 16));
  }
  EXPECT_EQ(deferred.pending_losses(), 8u);
  EXPECT_EQ(deferred.step(), 8);
  auto const losses = deferred.take_losses();
  ASSERT_TRUE(losses);
  EXPECT_TRUE(same_bits(*losses, sync_losses));
  EXPECT_EQ(deferred.pending_losses(), 0u);
  EXPECT_TRUE(same_bits(deferred.parameters(), sync.parameters()));
  EXPECT_TRUE(same_bits(deferred.state().ema, sync.state().ema));
  EXPECT_TRUE(deferred.take_losses()->empty());
  EXPECT_TRUE(deferred.status());
}

TEST(TrainingLoop, ADivergedStepHaltsTheDeferredRunAndTakeLossesRewindsToIt) {
  tr::set_blas_threads(1);
  tr::mlp_spec const spec{.hidden = {16}};
  tr::training_config const config{.total_steps = 50, .seed = 4};
  std::size_t const features = 10, batch = 8;
  auto data = pt::testing::make_synthetic(batch * 6, features, 3, 6);
  data.images[3 * batch * features + 5] = std::numeric_limits<float>::infinity();  // batch 3

  tr::mlp_trainer deferred(spec, features, config, 3);
  for (std::size_t s = 0; s < 6; ++s)
    deferred.enqueue_step(data.images_of(s * batch, batch), data.labels_of(s * batch, batch));
  auto const losses = deferred.take_losses();
  ASSERT_TRUE(losses);
  ASSERT_EQ(losses->size(), 6u);
  for (std::size_t s = 0; s < 3; ++s) EXPECT_TRUE(std::isfinite((*losses)[s])) << s;
  for (std::size_t s = 3; s < 6; ++s) EXPECT_FALSE(std::isfinite((*losses)[s])) << s;
  EXPECT_EQ(deferred.step(), 3);

  // What train_step does: the bad step returns a non-finite loss and leaves the state alone.
  tr::mlp_trainer sync(spec, features, config, 3);
  for (std::size_t s = 0; s < 4; ++s) {
    float const loss =
        sync.train_step(data.images_of(s * batch, batch), data.labels_of(s * batch, batch));
    EXPECT_EQ(std::isfinite(loss), s < 3) << s;
  }
  EXPECT_EQ(sync.step(), 3);
  EXPECT_TRUE(same_bits(deferred.parameters(), sync.parameters()));
  EXPECT_TRUE(same_bits(deferred.state().moment1, sync.state().moment1));

  // The halt is cleared: the run can go on with a good batch.
  EXPECT_TRUE(std::isfinite(
      deferred.train_step(data.images_of(4 * batch, batch), data.labels_of(4 * batch, batch))));
  EXPECT_EQ(deferred.step(), 4);
}

TEST(TrainingLoop, TrainingSetGathersTheBatchesOfItsOrder) {
  auto const data = pt::testing::make_synthetic(20, 6, 4, 3);
  tr::training_set set(pt::backend::cpu, 6, data.images, data.labels);
  EXPECT_EQ(set.size(), 20u);
  EXPECT_EQ(set.images().data(), data.images.data());  // a view, no copy
  auto const order = tr::epoch_order(20, 5, 0);
  set.set_order(order);
  for (std::size_t const offset : {0u, 7u, 16u}) {
    std::size_t const rows = std::min<std::size_t>(8, 20 - offset);
    std::vector<float> images(rows * 6);
    std::vector<std::uint8_t> labels(rows);
    tr::gather_batch(6, data.images, data.labels,
                     std::span<std::uint32_t const>(order).subspan(offset, rows), images, labels);
    auto const b = set.batch(offset, rows);
    EXPECT_TRUE(same_bits(b.images, images)) << offset;
    EXPECT_TRUE(std::equal(labels.begin(), labels.end(), b.labels.begin(), b.labels.end()));
  }
  EXPECT_THROW(set.batch(15, 8), pt::logic_error);
}

TEST(TrainingLoop, OverfitsATinySetThroughTheTrainingSet) {
  // The GPU test (mlp_cuda_test.cu) runs the same loop with the same thresholds.
  tr::set_blas_threads(1);
  std::size_t const n = 64, features = 16, classes = 4, batch = 16;
  auto const data = pt::testing::make_synthetic(n, features, classes, 12);
  tr::training_config const config{
      .batch_size = batch, .total_steps = 400, .learning_rate = 1e-2, .seed = 3};
  auto t = tr::mlp_trainer::create({.hidden = {64}}, features, config, classes);
  ASSERT_TRUE(t);
  auto set = tr::training_set::create(pt::backend::cpu, features, data.images, data.labels);
  ASSERT_TRUE(set);
  std::int64_t const per_epoch = static_cast<std::int64_t>(n / batch);
  for (std::int64_t s = 0; s < config.total_steps; ++s) {
    if (s % per_epoch == 0)
      set->set_order(tr::epoch_order(n, config.seed, static_cast<std::uint64_t>(s / per_epoch)));
    auto const b = set->batch(static_cast<std::size_t>(s % per_epoch) * batch, batch);
    t->enqueue_step(b.images, b.labels);
  }
  auto const losses = t->take_losses();
  ASSERT_TRUE(losses);
  EXPECT_GT(losses->front(), 1.0f);
  EXPECT_LT(losses->back(), 0.3f);                             // the CPU: 0.136
  EXPECT_GE(t->evaluate(set->images(), set->labels()), 0.95);  // the CPU: 1.0
}

TEST(TrainingLoop, SnapshotCopiesTheStateAndRestoreTakesItBack) {
  tr::set_blas_threads(1);
  tr::mlp_spec const spec{.hidden = {12}, .act = activation::tanh};
  tr::training_config const config{.total_steps = 20, .ema_decay = 0.5, .seed = 1};
  auto const data = pt::testing::make_synthetic(32, 5, 3, 2);
  tr::mlp_trainer t(spec, 5, config, 3);
  pt::testing::train_for(t, data, 8, 3);
  auto const snap = t.snapshot();
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->state.step, 3);
  EXPECT_TRUE(same_bits(snap->parameters, t.parameters()));
  EXPECT_TRUE(same_bits(snap->state.moment2, t.state().moment2));
  EXPECT_TRUE(same_bits(snap->state.ema, t.state().ema));
  auto const bytes = tr::try_checkpoint_bytes(t);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, tr::checkpoint_bytes(t));

  tr::mlp_trainer other(spec, 5, config, 3);
  other.restore(snap->parameters, snap->state);
  EXPECT_EQ(other.step(), 3);
  EXPECT_EQ(pt::testing::train_for(other, data, 8, 2), pt::testing::train_for(t, data, 8, 2));
  EXPECT_TRUE(same_bits(other.parameters(), t.parameters()));
}

}  // namespace
