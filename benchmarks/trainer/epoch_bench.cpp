// One training epoch of the target model on the CPU: a 784-256-10 ReLU MLP, batch 256,
// Adam, over 60,000 synthetic images (the size of Fashion-MNIST's training set; the time does
// not depend on the pixel values), shuffled and gathered per epoch as a training run does, with
// 1 and 2 OpenBLAS threads. Target (issue 6): <= 3 s per epoch on 2 cores. Also the forward
// pass a latency measurement times, for a batch of 1 and of 256.
//
//   cmake --preset bench && cmake --build build/bench --target proxytask_trainer_bench
//   build/bench/benchmarks/proxytask_trainer_bench

#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;

constexpr std::size_t images = 60000;
constexpr std::size_t features = 784;
constexpr std::size_t batch = 256;

struct synthetic {
  std::vector<float> pixels;
  std::vector<std::uint8_t> labels;
};

synthetic const& data() {
  static synthetic const d = [] {
    synthetic s;
    s.pixels.resize(images * features);
    s.labels.resize(images);
    std::uint64_t x = 88172645463325252ull;  // xorshift64
    auto next = [&] {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    for (float& p : s.pixels) p = static_cast<float>(next() >> 56) / 255.0f;
    for (auto& l : s.labels) l = static_cast<std::uint8_t>(next() % 10);
    return s;
  }();
  return d;
}

void BM_TrainEpoch_Cpu(benchmark::State& state) {
  int const threads = static_cast<int>(state.range(0));
  tr::set_blas_threads(threads);
  auto const& d = data();
  std::size_t const steps_per_epoch = (images + batch - 1) / batch;
  tr::training_config const config{.batch_size = batch,
                                   .total_steps = static_cast<std::int64_t>(steps_per_epoch * 10),
                                   .learning_rate = 1e-3,
                                   .seed = 1};
  tr::mlp_trainer t({.hidden = {256}, .act = tr::activation::relu}, features, config);
  std::vector<float> batch_images(batch * features);
  std::vector<std::uint8_t> batch_labels(batch);
  std::uint64_t epoch = 0;
  float loss = 0.0f;
  for (auto _ : state) {
    auto const order = tr::epoch_order(images, config.seed, epoch++);
    for (std::size_t begin = 0; begin < images; begin += batch) {
      std::size_t const rows = std::min(batch, images - begin);
      auto const idx = std::span<std::uint32_t const>(order).subspan(begin, rows);
      tr::gather_batch(features, d.pixels, d.labels, idx,
                       std::span<float>(batch_images).first(rows * features),
                       std::span<std::uint8_t>(batch_labels).first(rows));
      loss = t.train_step(std::span<float const>(batch_images).first(rows * features),
                          std::span<std::uint8_t const>(batch_labels).first(rows));
    }
    benchmark::DoNotOptimize(loss);
  }
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(images) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.counters["loss"] = loss;
  tr::set_blas_threads(1);
}
BENCHMARK(BM_TrainEpoch_Cpu)
    ->ArgNames({"blas_threads"})
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(5.0)
    ->UseRealTime();

void BM_Infer_Cpu(benchmark::State& state) {
  tr::set_blas_threads(1);
  auto const rows = static_cast<std::size_t>(state.range(0));
  auto const& d = data();
  tr::mlp_trainer t({.hidden = {256}}, features, {.total_steps = 1, .seed = 1});
  std::vector<float> logits(rows * 10);
  auto const in = std::span<float const>(d.pixels).first(rows * features);
  for (auto _ : state) {
    t.infer(in, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["images_per_s"] =
      benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Infer_Cpu)->ArgNames({"batch"})->Arg(1)->Arg(256)->Unit(benchmark::kMicrosecond);

}  // namespace
