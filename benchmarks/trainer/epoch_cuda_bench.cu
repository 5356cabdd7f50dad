// One training epoch of the issue's target model on the GPU: a 784-256-10 ReLU MLP, batch 256,
// Adam, cosine learning rate, over the 60,000 training images of Fashion-MNIST
// ($PROXYTASK_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist) when they are there, else
// 60,000 synthetic images of the same shape (the label says which; the time does not depend on
// the pixel values). As a training run does it (examples/reference_trainer): the set stays on
// the device, each epoch's order is drawn on the host and uploaded once, batches are gathered
// on the device, and the host reads the losses back once per epoch. Timed with CUDA events
// around the whole epoch (host order included), after one untimed warm-up epoch; the counter
// samples_per_second is what benchmarks/device-check.sh compares with PyTorch
// (benchmarks/peers/torch_mlp.py). Also the forward pass a latency measurement times, for a
// batch of 1 and of 256.
//
//   cmake --build build/device --target proxytask_trainer_cuda_bench
//   build/device/benchmarks/proxytask_trainer_cuda_bench

#include <proxytask/core/backend.cuh>
#include <proxytask/trainer/fashion_mnist.hpp>
#include <proxytask/trainer/mlp.cuh>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;

constexpr std::size_t images = 60000;
constexpr std::size_t features = 784;
constexpr std::size_t batch = 256;

struct host_data {
  std::vector<float> pixels;
  std::vector<std::uint8_t> labels;
  std::string source;
};

host_data const& data() {
  static host_data const d = [] {
    host_data s;
    std::error_code ec;
    if (std::filesystem::is_directory(tr::default_fashion_mnist_dir(), ec)) {
      auto loaded = tr::load_fashion_mnist();
      if (loaded && loaded->train.size() == images) {
        s.pixels = std::move(loaded->train.images);
        s.labels = std::move(loaded->train.labels);
        s.source = "fashion-mnist";
        return s;
      }
    }
    s.pixels.resize(images * features);
    s.labels.resize(images);
    std::uint64_t x = 88172645463325252ull;  // xorshift64, as the CPU benchmark
    auto next = [&] {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    for (float& p : s.pixels) p = static_cast<float>(next() >> 56) / 255.0f;
    for (auto& l : s.labels) l = static_cast<std::uint8_t>(next() % 10);
    s.source = "synthetic (no Fashion-MNIST found)";
    return s;
  }();
  return d;
}

void BM_TrainEpoch_Cuda(benchmark::State& state) {
  auto const& d = data();
  std::size_t const steps_per_epoch = (images + batch - 1) / batch;
  tr::training_config const config{.batch_size = batch,
                                   .total_steps = static_cast<std::int64_t>(steps_per_epoch * 100),
                                   .learning_rate = 1e-3,
                                   .seed = 1};
  auto t = tr::cuda_mlp_trainer::create({.hidden = {256}, .act = tr::activation::relu}, features,
                                        config);
  if (!t) return state.SkipWithError(t.error().message().c_str());
  auto set = tr::cuda_training_set::create(pt::backend::cuda, features, d.pixels, d.labels);
  if (!set) return state.SkipWithError(set.error().message().c_str());
  std::uint64_t epoch = 0;
  auto run_epoch = [&] {
    set->set_order(tr::epoch_order(images, config.seed, epoch++));
    for (std::size_t begin = 0; begin < images; begin += batch) {
      auto const b = set->batch(begin, std::min(batch, images - begin));
      t->enqueue_step(b.images, b.labels);
    }
  };
  run_epoch();  // warm-up: cuBLAS's handle and heuristics, the workspace, the loss log
  if (auto const losses = t->take_losses(); !losses)
    return state.SkipWithError(losses.error().message().c_str());
  double seconds = 0.0;
  float loss = 0.0f;
  for (auto _ : state) {
    double const ms = t->context().elapsed_ms([&] {
      run_epoch();
      auto const losses = t->take_losses();  // the once-per-epoch read-back is part of the epoch
      if (losses && !losses->empty()) loss = losses->back();
    });
    if (!t->status()) return state.SkipWithError(t->status().error().message().c_str());
    state.SetIterationTime(ms / 1000.0);
    seconds += ms / 1000.0;
  }
  state.counters["samples_per_second"] =
      static_cast<double>(images) * static_cast<double>(state.iterations()) / seconds;
  state.counters["loss"] = loss;
  state.SetLabel(d.source);
}
BENCHMARK(BM_TrainEpoch_Cuda)->Unit(benchmark::kMillisecond)->UseManualTime()->MinTime(3.0);

void BM_Infer_Cuda(benchmark::State& state) {
  auto const rows = static_cast<std::size_t>(state.range(0));
  auto const& d = data();
  auto t = tr::cuda_mlp_trainer::create({.hidden = {256}}, features, {.total_steps = 1, .seed = 1});
  if (!t) return state.SkipWithError(t.error().message().c_str());
  auto set = tr::cuda_training_set::create(pt::backend::cuda, features,
                                           std::span<float const>(d.pixels).first(rows * features),
                                           std::span<std::uint8_t const>(d.labels).first(rows));
  if (!set) return state.SkipWithError(set.error().message().c_str());
  auto logits = pt::device_buffer<float>::allocate(rows * 10);
  if (!logits) return state.SkipWithError(logits.error().message().c_str());
  for (int i = 0; i < 10; ++i) t->infer(set->images(), logits->view());
  for (auto _ : state) {
    double const ms = t->context().elapsed_ms([&] { t->infer(set->images(), logits->view()); });
    state.SetIterationTime(ms / 1000.0);
  }
  if (!t->status()) return state.SkipWithError(t->status().error().message().c_str());
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Infer_Cuda)
    ->ArgNames({"batch"})
    ->Arg(1)
    ->Arg(256)
    ->Unit(benchmark::kMicrosecond)
    ->UseManualTime();

}  // namespace
