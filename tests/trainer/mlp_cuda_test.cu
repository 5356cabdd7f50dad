// The reference trainer's CUDA back-end (cuda/proxytask/trainer/mlp.cuh) against its CPU
// back-end (mlp.hpp): the same initial parameters and dropout masks bit for bit; forward logits,
// loss and gradients, and a few Adam and SGD steps, within float rounding; the deferred loss log
// and divergence; checkpoints; a tiny overfit. Every test that needs a device derives from
// CudaTest and skips itself without one; the no-device behaviour is checked everywhere.
//
// Tolerance: cuBLAS and OpenBLAS sum a dot product in different orders and the device's expf
// and fused multiply-adds round differently, so GPU and CPU differ by a few float ulps per
// operation, amplified a little through the layers. An array agrees when every element is within
// 1e-4 * (max |cpu| over the array) + 1e-4 * |cpu element| of the CPU's (about 10^3 ulps of the
// array's scale: far below any real bug, which moves elements by their own size).

#include <proxytask/core/backend.cuh>
#include <proxytask/trainer/checkpoint.hpp>
#include <proxytask/trainer/mlp.cuh>
#include <proxytask/trainer/mlp.hpp>

#include <support/cuda_test.hpp>
#include <support/temp_dir.hpp>
#include <trainer/synthetic_data.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;
using tr::activation;
using optimizer = tr::training_config::optimizer;

// --- helpers ---------------------------------------------------------------------------------

template <class T>
pt::device_buffer<T> to_device(std::span<T const> host) {
  auto b = pt::device_buffer<T>::allocate(host.size()).value();
  if (!host.empty())
    EXPECT_EQ(cudaMemcpy(b.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  return b;
}
template <class T>
pt::device_buffer<T> to_device(std::vector<T> const& host) {
  return to_device(std::span<T const>(host));
}

template <class T>
std::vector<T> to_host(pt::device_span<T const> d) {
  std::vector<T> h(d.size());
  if (!h.empty())
    EXPECT_EQ(cudaMemcpy(h.data(), d.data(), d.size() * sizeof(T), cudaMemcpyDeviceToHost),
              cudaSuccess);
  return h;
}
template <class T>
std::vector<T> to_host(pt::device_span<T> d) {
  return to_host(pt::device_span<T const>(d));
}

/// Whether gpu agrees with cpu within the file's tolerance; names the worst element otherwise.
::testing::AssertionResult agree(std::span<float const> gpu, std::span<float const> cpu) {
  if (gpu.size() != cpu.size())
    return ::testing::AssertionFailure() << "sizes " << gpu.size() << " and " << cpu.size();
  float scale = 0.0f;
  for (float const c : cpu) scale = std::max(scale, std::abs(c));
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    float const tol = 1e-4f * scale + 1e-4f * std::abs(cpu[i]);
    if (!(std::abs(gpu[i] - cpu[i]) <= tol))
      return ::testing::AssertionFailure()
             << "element " << i << ": gpu " << gpu[i] << ", cpu " << cpu[i] << " (tolerance " << tol
             << ", array scale " << scale << ")";
  }
  return ::testing::AssertionSuccess();
}

bool same_bits(std::span<float const> a, std::span<float const> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
}

/// The GPU trainer and its CPU twin, on the same data (also on the device).
struct twin {
  tr::mlp_trainer cpu;
  tr::cuda_mlp_trainer gpu;
  pt::testing::synthetic_set data;
  pt::device_buffer<float> images;
  pt::device_buffer<std::uint8_t> labels;

  twin(tr::mlp_spec const& spec, std::size_t features, tr::training_config const& config,
       std::size_t classes, std::size_t rows, std::uint64_t data_seed)
      : cpu(spec, features, config, classes),
        gpu(spec, features, config, classes),
        data(pt::testing::make_synthetic(rows, features, classes, data_seed)),
        images(to_device(data.images)),
        labels(to_device(data.labels)) {}

  pt::device_span<float const> images_of(std::size_t begin, std::size_t rows) const {
    return images.view().subspan(begin * data.features, rows * data.features);
  }
  pt::device_span<std::uint8_t const> labels_of(std::size_t begin, std::size_t rows) const {
    return labels.view().subspan(begin, rows);
  }
};

class CudaTrainer : public CudaTest {
 protected:
  void SetUp() override {
    CudaTest::SetUp();
    tr::set_blas_threads(1);
  }
};

// --- without a device ------------------------------------------------------------------------

TEST(CudaTrainerWithoutDevice, CreateReturnsDeviceUnavailableOrATrainer) {
  auto const t = tr::cuda_mlp_trainer::create({.hidden = {4}}, 3, {.total_steps = 1}, 2);
  if (pt::backend::cuda_device_count()) {
    EXPECT_TRUE(t) << t.error().message();
  } else {
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, pt::errc::device_unavailable) << t.error().message();
  }
}

TEST(CudaTrainerWithoutDevice, ATrainerWithoutDeviceDoesNothingAndSaysWhy) {
  if (pt::backend::cuda_device_count()) GTEST_SKIP() << "a device is present";
  tr::cuda_mlp_trainer t({.hidden = {4}}, 3, {.total_steps = 1}, 2);
  ASSERT_FALSE(t.status());
  EXPECT_EQ(t.status().error().code, pt::errc::device_unavailable);
  EXPECT_THROW(t.train_step({}, {}), pt::logic_error);  // an empty batch is a caller bug
  auto const losses = t.take_losses();
  ASSERT_FALSE(losses);
  EXPECT_EQ(losses.error().code, pt::errc::device_unavailable);
  auto const snap = t.snapshot();
  ASSERT_FALSE(snap);
  auto const set = tr::cuda_training_set::create(pt::backend::cuda, 3, std::vector<float>(6),
                                                 std::vector<std::uint8_t>(2));
  EXPECT_FALSE(set);
}

// --- element operations ----------------------------------------------------------------------

TEST_F(CudaTrainer, DropoutMasksEqualTheCpusBitForBit) {
  for (double const p : {0.1, 0.3, 0.5}) {
    for (std::size_t const n : {1u, 5u, 1000u, 4097u}) {
      for (std::int64_t const step : {0, 7, 123456789}) {
        std::vector<float> cpu(n);
        tr::dropout_mask(pt::backend::cpu, 42, step, 2, p, cpu);
        auto gpu = pt::device_buffer<float>::allocate(n).value();
        ASSERT_TRUE(tr::dropout_mask(pt::backend::cuda, 42, step, 2, p, gpu.view()));
        auto const back = to_host(gpu.view());
        EXPECT_TRUE(same_bits(back, cpu)) << "p " << p << " n " << n << " step " << step;
      }
    }
  }
}

TEST_F(CudaTrainer, ReductionsArgmaxAndGatherMatchTheCpu) {
  auto const data = pt::testing::make_synthetic(37, 12, 5, 3);
  auto const x = to_device(data.images);
  // column sums
  std::vector<float> cpu_sums(12);
  tr::column_sums(pt::backend::cpu, 37, 12, data.images, cpu_sums);
  auto sums = pt::device_buffer<float>::allocate(12).value();
  ASSERT_TRUE(tr::column_sums(pt::backend::cuda, 37, 12, x.view(), sums.view()));
  EXPECT_TRUE(agree(to_host(sums.view()), cpu_sums));
  // sum of squares, all finite
  auto squares = pt::device_buffer<double>::allocate(1).value();
  auto finite = pt::device_buffer<int>::allocate(1).value();
  ASSERT_TRUE(tr::sum_of_squares(pt::backend::cuda, x.view(), squares.view()));
  ASSERT_TRUE(tr::all_finite(pt::backend::cuda, x.view(), finite.view()));
  double const cpu_squares = tr::sum_of_squares(pt::backend::cpu, data.images);
  EXPECT_NEAR(to_host(squares.view())[0], cpu_squares, 1e-9 * cpu_squares);
  EXPECT_EQ(to_host(finite.view())[0], 1);
  std::vector<float> bad = data.images;
  bad[17] = std::numeric_limits<float>::infinity();
  auto const bad_d = to_device(bad);
  ASSERT_TRUE(tr::all_finite(pt::backend::cuda, bad_d.view(), finite.view()));
  EXPECT_EQ(to_host(finite.view())[0], 0);
  // argmax (ties: the first)
  std::vector<float> rows = {0, 3, 3, 9, 1, 2, 5, 5, 5};
  auto const rows_d = to_device(rows);
  auto arg = pt::device_buffer<std::uint8_t>::allocate(3).value();
  ASSERT_TRUE(tr::argmax_rows(pt::backend::cuda, 3, 3, rows_d.view(), arg.view()));
  EXPECT_EQ(to_host(arg.view()), (std::vector<std::uint8_t>{1, 0, 0}));
  // gather, float4 and scalar paths (12 and 5 features)
  for (std::size_t const features : {12u, 5u}) {
    auto const set = pt::testing::make_synthetic(20, features, 4, 8);
    std::vector<std::uint32_t> const idx = {19, 0, 7, 7, 3};
    std::vector<float> cpu_images(idx.size() * features);
    std::vector<std::uint8_t> cpu_labels(idx.size());
    tr::gather_batch(features, set.images, set.labels, idx, cpu_images, cpu_labels);
    tr::cuda_training_set gpu(pt::backend::cuda, features, set.images, set.labels);
    gpu.set_order(idx);
    auto const b = gpu.batch(0, idx.size());
    ASSERT_TRUE(gpu.status());
    EXPECT_TRUE(same_bits(to_host(b.images), cpu_images)) << features << " features";
    EXPECT_EQ(to_host(b.labels), cpu_labels);
  }
}

TEST_F(CudaTrainer, InitialParametersAreTheCpusBitForBit) {
  for (activation const act : tr::all_activations) {
    tr::mlp_spec const spec{.hidden = {33, 17}, .act = act};
    tr::training_config const config{.total_steps = 10, .ema_decay = 0.9, .seed = 5};
    tr::mlp_trainer cpu(spec, 20, config, 10);
    auto gpu = tr::cuda_mlp_trainer::create(spec, 20, config, 10);
    ASSERT_TRUE(gpu) << gpu.error().message();
    auto const snap = gpu->snapshot();
    ASSERT_TRUE(snap);
    EXPECT_TRUE(same_bits(snap->parameters, cpu.parameters()));
    EXPECT_TRUE(same_bits(snap->state.ema, cpu.state().ema));
    EXPECT_TRUE(same_bits(snap->state.moment1, cpu.state().moment1));
    EXPECT_TRUE(same_bits(snap->state.moment2, cpu.state().moment2));
  }
}

// --- forward and backward against the CPU ------------------------------------------------------

struct pass_case {
  std::vector<std::size_t> hidden;
  activation act;
  double dropout;
  std::size_t rows;
};

std::string case_name(pass_case const& c) {
  std::string s = "Depth" + std::to_string(c.hidden.size()) + std::string(tr::to_string(c.act));
  if (c.dropout > 0) s += "Dropout";
  return s + "Batch" + std::to_string(c.rows);
}

class CudaTrainerPass : public CudaTrainer, public ::testing::WithParamInterface<pass_case> {};

TEST_P(CudaTrainerPass, LogitsLossAndGradientsAgreeWithTheCpu) {
  auto const& c = GetParam();
  std::size_t const features = 50, classes = 10;
  tr::mlp_spec const spec{.hidden = c.hidden, .act = c.act, .dropout = c.dropout};
  tr::training_config const config{.batch_size = 64, .total_steps = 10, .seed = 3};
  twin t(spec, features, config, classes, c.rows, 17);
  ASSERT_TRUE(t.gpu.status()) << t.gpu.status().error().message();

  // Inference (no dropout): logits.
  std::vector<float> cpu_logits(c.rows * classes);
  t.cpu.infer(t.data.images, cpu_logits);
  auto logits = pt::device_buffer<float>::allocate(c.rows * classes).value();
  t.gpu.infer(t.images_of(0, c.rows), logits.view());
  EXPECT_TRUE(agree(to_host(logits.view()), cpu_logits));

  // Training pass (with the step's dropout masks): loss and every gradient.
  float const cpu_loss = t.cpu.compute_gradients(t.data.images, t.data.labels);
  float const gpu_loss = t.gpu.compute_gradients(t.images_of(0, c.rows), t.labels_of(0, c.rows));
  ASSERT_TRUE(t.gpu.status()) << t.gpu.status().error().message();
  EXPECT_NEAR(gpu_loss, cpu_loss, 1e-5f * (1.0f + std::abs(cpu_loss)));
  auto const grads = to_host(t.gpu.gradients());
  auto const& layout = t.cpu.layout();
  for (std::size_t l = 0; l < layout.layers(); ++l) {
    std::span<float const> const g(grads);
    EXPECT_TRUE(agree(layout.weights(g, l), layout.weights(t.cpu.gradients(), l))) << "W" << l;
    EXPECT_TRUE(agree(layout.bias(g, l), layout.bias(t.cpu.gradients(), l))) << "b" << l;
  }

  // Predictions and accuracy: argmax of nearly equal logits (ties aside) and the same count.
  auto predictions = pt::device_buffer<std::uint8_t>::allocate(c.rows).value();
  t.gpu.predict(t.images_of(0, c.rows), predictions.view());
  std::vector<std::uint8_t> cpu_predictions(c.rows);
  t.cpu.predict(t.data.images, cpu_predictions);
  auto const gpu_predictions = to_host(predictions.view());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < c.rows; ++i) differ += gpu_predictions[i] != cpu_predictions[i];
  EXPECT_LE(differ, c.rows / 50) << "predictions differ beyond near-ties";
}

INSTANTIATE_TEST_SUITE_P(Specs, CudaTrainerPass,
                         ::testing::Values(pass_case{{32}, activation::relu, 0.0, 1},
                                           pass_case{{32}, activation::relu, 0.0, 256},
                                           pass_case{{64, 16}, activation::tanh, 0.0, 33},
                                           pass_case{{64, 16}, activation::gelu, 0.3, 33},
                                           pass_case{{40, 30, 20}, activation::relu, 0.2, 100},
                                           pass_case{{40, 30, 20}, activation::gelu, 0.0, 7},
                                           pass_case{{24, 24, 24, 24}, activation::tanh, 0.5, 129},
                                           pass_case{{24, 24, 24, 24}, activation::relu, 0.1, 1},
                                           pass_case{{300}, activation::gelu, 0.0, 300}),
                         [](auto const& info) { return case_name(info.param); });

// --- optimizer steps -------------------------------------------------------------------------

struct step_case {
  optimizer opt;
  double clip;
  double weight_decay;
  double ema;
  double dropout;
};

class CudaTrainerSteps : public CudaTrainer, public ::testing::WithParamInterface<step_case> {};

TEST_P(CudaTrainerSteps, AFewStepsTrackTheCpu) {
  auto const& c = GetParam();
  std::size_t const features = 30, classes = 6, batch = 40, steps = 6;
  tr::mlp_spec const spec{.hidden = {48, 24}, .act = activation::relu, .dropout = c.dropout};
  tr::training_config const config{.batch_size = batch,
                                   .total_steps = 20,
                                   .learning_rate = c.opt == optimizer::adam ? 1e-2 : 0.1,
                                   .opt = c.opt,
                                   // Adam's update is g / (|g| + epsilon): with the default 1e-8
                                   // a gradient that cancels to ~1e-8 makes the step a sign of
                                   // rounding noise, on either back-end; 1e-4 keeps the
                                   // comparison about the arithmetic.
                                   .adam_epsilon = 1e-4,
                                   .weight_decay = c.weight_decay,
                                   .clip_norm = c.clip,
                                   .ema_decay = c.ema,
                                   .warmup_fraction = 0.1,
                                   .seed = 9};
  twin t(spec, features, config, classes, batch * steps, 4);
  for (std::size_t s = 0; s < steps; ++s) {
    float const cpu_loss =
        t.cpu.train_step(t.data.images_of(s * batch, batch), t.data.labels_of(s * batch, batch));
    float const gpu_loss =
        t.gpu.train_step(t.images_of(s * batch, batch), t.labels_of(s * batch, batch));
    ASSERT_TRUE(t.gpu.status()) << t.gpu.status().error().message();
    EXPECT_NEAR(gpu_loss, cpu_loss, 1e-4f * (1.0f + std::abs(cpu_loss))) << "step " << s;
    EXPECT_NEAR(t.gpu.last_gradient_norm(), t.cpu.last_gradient_norm(),
                1e-4 * t.cpu.last_gradient_norm())
        << "step " << s;
  }
  EXPECT_EQ(t.gpu.step(), t.cpu.step());
  auto const snap = t.gpu.snapshot();
  ASSERT_TRUE(snap);
  EXPECT_TRUE(agree(snap->parameters, t.cpu.parameters()));
  EXPECT_TRUE(agree(snap->state.moment1, t.cpu.state().moment1));
  EXPECT_TRUE(agree(snap->state.moment2, t.cpu.state().moment2));
  EXPECT_TRUE(agree(snap->state.ema, t.cpu.state().ema));
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CudaTrainerSteps,
                         ::testing::Values(step_case{optimizer::adam, 0.0, 0.0, 0.0, 0.0},
                                           step_case{optimizer::adam, 0.5, 1e-2, 0.9, 0.2},
                                           step_case{optimizer::sgd_momentum, 0.0, 0.0, 0.0, 0.0},
                                           step_case{optimizer::sgd_momentum, 0.5, 1e-3, 0.5, 0.3}),
                         [](auto const& info) {
                           auto const& c = info.param;
                           return std::string(c.opt == optimizer::adam ? "Adam" : "Sgd") +
                                  (c.clip > 0 ? "ClipDecayEmaDropout" : "Plain");
                         });

// --- the deferred loss log, divergence -------------------------------------------------------

TEST_F(CudaTrainer, EnqueuedStepsGiveTheSameBitsAsSynchronousOnes) {
  tr::mlp_spec const spec{.hidden = {32}, .act = activation::gelu, .dropout = 0.1};
  tr::training_config const config{.total_steps = 50, .ema_decay = 0.9, .seed = 2};
  twin t(spec, 20, config, 5, 8 * 16, 1);
  tr::cuda_mlp_trainer deferred(spec, 20, config, 5);
  std::vector<float> sync_losses;
  for (std::size_t s = 0; s < 8; ++s) {
    sync_losses.push_back(t.gpu.train_step(t.images_of(s * 16, 16), t.labels_of(s * 16, 16)));
    deferred.enqueue_step(t.images_of(s * 16, 16), t.labels_of(s * 16, 16));
  }
  EXPECT_EQ(deferred.pending_losses(), 8u);
  auto const losses = deferred.take_losses();
  ASSERT_TRUE(losses) << losses.error().message();
  EXPECT_TRUE(same_bits(*losses, sync_losses));
  EXPECT_EQ(deferred.pending_losses(), 0u);
  EXPECT_EQ(deferred.step(), 8);
  EXPECT_TRUE(same_bits(to_host(deferred.parameters()), to_host(t.gpu.parameters())));
  EXPECT_TRUE(
      same_bits(to_host(deferred.inference_parameters()), to_host(t.gpu.inference_parameters())));
}

TEST_F(CudaTrainer, ADivergedStepHaltsTheRunWhereTheCpuStops) {
  tr::mlp_spec const spec{.hidden = {16}};
  tr::training_config const config{.total_steps = 50, .seed = 4};
  std::size_t const features = 10, batch = 8;
  auto data = pt::testing::make_synthetic(batch * 6, features, 3, 6);
  // An infinite pixel in batch 3: infinite pre-activations, a NaN loss on both back-ends (a NaN
  // pixel would not do: ReLU maps it to 0, and BLAS may skip its zero products).
  data.images[3 * batch * features + 5] = std::numeric_limits<float>::infinity();
  auto const images = to_device(data.images);
  auto const labels = to_device(data.labels);
  auto batch_of = [&](std::size_t s) {
    return std::pair{images.view().subspan(s * batch * features, batch * features),
                     labels.view().subspan(s * batch, batch)};
  };

  tr::cuda_mlp_trainer deferred(spec, features, config, 3);
  for (std::size_t s = 0; s < 6; ++s) {
    auto const [x, y] = batch_of(s);
    deferred.enqueue_step(x, y);
  }
  EXPECT_EQ(deferred.step(), 6);  // not known yet
  auto const losses = deferred.take_losses();
  ASSERT_TRUE(losses);
  for (std::size_t s = 0; s < 3; ++s) EXPECT_TRUE(std::isfinite((*losses)[s])) << s;
  for (std::size_t s = 3; s < 6; ++s) EXPECT_TRUE(std::isnan((*losses)[s])) << s;
  EXPECT_EQ(deferred.step(), 3);

  // The state is the one after 3 good steps, as a run that stopped there; and as the CPU's.
  tr::cuda_mlp_trainer three(spec, features, config, 3);
  tr::mlp_trainer cpu(spec, features, config, 3);
  for (std::size_t s = 0; s < 4; ++s) {
    auto const [x, y] = batch_of(s);
    float const g = three.train_step(x, y);
    float const c =
        cpu.train_step(data.images_of(s * batch, batch), data.labels_of(s * batch, batch));
    EXPECT_EQ(std::isfinite(g), std::isfinite(c)) << "step " << s;
  }
  EXPECT_EQ(three.step(), 3);
  EXPECT_EQ(cpu.step(), 3);
  EXPECT_TRUE(same_bits(to_host(deferred.parameters()), to_host(three.parameters())));

  // The halt is cleared: the run can go on (with a good batch).
  auto const [x, y] = batch_of(4);
  EXPECT_TRUE(std::isfinite(deferred.train_step(x, y)));
  EXPECT_EQ(deferred.step(), 4);
}

// --- checkpoints -----------------------------------------------------------------------------

TEST_F(CudaTrainer, CheckpointRoundTripsAndResumesWithTheSameBits) {
  pt::testing::temp_dir dir;
  auto const path = dir.path() / "CHECKPOINT.bin";
  tr::mlp_spec const spec{.hidden = {24, 12}, .act = activation::gelu, .dropout = 0.2};
  tr::training_config const config{
      .batch_size = 16, .total_steps = 40, .learning_rate = 5e-3, .ema_decay = 0.9, .seed = 8};
  twin t(spec, 10, config, 4, 16 * 8, 3);
  for (std::size_t s = 0; s < 4; ++s)
    t.gpu.train_step(t.images_of(s * 16, 16), t.labels_of(s * 16, 16));
  ASSERT_TRUE(tr::save_checkpoint(path, t.gpu));

  auto const loaded = tr::load_checkpoint(path);
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto const snap = t.gpu.snapshot();
  ASSERT_TRUE(snap);
  EXPECT_EQ(loaded->state.step, 4);
  EXPECT_TRUE(same_bits(loaded->parameters, snap->parameters));
  EXPECT_TRUE(same_bits(loaded->state.moment1, snap->state.moment1));
  EXPECT_TRUE(same_bits(loaded->state.moment2, snap->state.moment2));
  EXPECT_TRUE(same_bits(loaded->state.ema, snap->state.ema));
  auto const bytes = tr::try_checkpoint_bytes(t.gpu);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, pt::read_file(path).value());

  auto resumed = tr::resume_trainer(path, spec, 10, config, 4, pt::backend::cuda);
  ASSERT_TRUE(resumed) << resumed.error().message();
  EXPECT_EQ(resumed->step(), 4);
  for (std::size_t s = 4; s < 8; ++s) {
    float const a = t.gpu.train_step(t.images_of(s * 16, 16), t.labels_of(s * 16, 16));
    float const b = resumed->train_step(t.images_of(s * 16, 16), t.labels_of(s * 16, 16));
    EXPECT_EQ(a, b) << "step " << s;
  }
  EXPECT_TRUE(same_bits(to_host(resumed->parameters()), to_host(t.gpu.parameters())));

  // The format is the CPU's: a CPU trainer resumes from the GPU's file.
  auto const cpu = tr::resume_trainer(path, spec, 10, config, 4);
  ASSERT_TRUE(cpu) << cpu.error().message();
  EXPECT_EQ(cpu->step(), 4);
  EXPECT_TRUE(same_bits(cpu->parameters(), loaded->parameters));
}

// --- a tiny overfit --------------------------------------------------------------------------

TEST_F(CudaTrainer, OverfitsATinySetThroughTheDeviceResidentTrainingSet) {
  std::size_t const n = 64, features = 16, classes = 4, batch = 16;
  auto const data = pt::testing::make_synthetic(n, features, classes, 12);
  tr::training_config const config{
      .batch_size = batch, .total_steps = 400, .learning_rate = 1e-2, .seed = 3};
  auto t = tr::cuda_mlp_trainer::create({.hidden = {64}}, features, config, classes);
  ASSERT_TRUE(t);
  auto set = tr::cuda_training_set::create(pt::backend::cuda, features, data.images, data.labels);
  ASSERT_TRUE(set);
  std::int64_t const per_epoch = static_cast<std::int64_t>(n / batch);
  for (std::int64_t s = 0; s < config.total_steps; ++s) {
    if (s % per_epoch == 0)
      set->set_order(tr::epoch_order(n, config.seed, static_cast<std::uint64_t>(s / per_epoch)));
    auto const b = set->batch(static_cast<std::size_t>(s % per_epoch) * batch, batch);
    t->enqueue_step(b.images, b.labels);
  }
  auto const losses = t->take_losses();
  ASSERT_TRUE(losses) << losses.error().message();
  EXPECT_GT(losses->front(), 1.0f);
  EXPECT_LT(losses->back(), 0.3f);  // the CPU: 0.136
  double const accuracy = t->evaluate(set->images(), set->labels());
  EXPECT_GE(accuracy, 0.95);  // the CPU: 1.0
  EXPECT_TRUE(t->status());
}

}  // namespace
