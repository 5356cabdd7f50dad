// correlate_over_steps on the GPU against the CPU back-end (all hardware threads) and against
// bare CUB sorts of the same keys (the practical ceiling of ranking: every step must be sorted
// once; a segmented sort, and one radix sort of the whole batch), on
// benchmarks/support/gpu_inputs.hpp's matrices, which benchmarks/peers/gpu_peers.py builds too
// (PyTorch, torchmetrics and scipy on the same inputs; benchmarks/device-check.sh prints the
// table). Arguments: steps / models / bootstrap resamples (or permutations); the bootstrap
// benchmarks include their confidence intervals. GPU times are wall times of the whole call on
// device data (sort, ranks, replicates, intervals, results copied to the host).
//
//   cmake --build build/device --target proxytask_stats_cuda_bench
//   build/device/benchmarks/proxytask_stats_cuda_bench --benchmark_min_time=0.2s

#include <proxytask/stats/over_steps.cuh>

#include <support/gpu_inputs.hpp>

#include <benchmark/benchmark.h>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
namespace st = proxytask::stats;

/// A bootstrap of range(2) resamples with its interval (none for 0 resamples).
st::over_steps_options bootstrap(benchmark::State const& state, st::correlation method,
                                 st::interval_method interval) {
  st::over_steps_options o{.method = method,
                           .bootstrap_resamples = static_cast<std::size_t>(state.range(2)),
                           .interval = interval};
  o.seed = 7;
  return o;
}

/// A permutation test of range(2) pairings (exact for at most 8 models).
st::over_steps_options permutation_test(benchmark::State const& state, st::correlation method) {
  st::over_steps_options o{.method = method};
  o.permutations = static_cast<std::size_t>(state.range(2));
  o.seed = 7;
  return o;
}

void set_counters(benchmark::State& state) {
  double const elements = static_cast<double>(state.range(0)) *
                          static_cast<double>(state.range(1)) *
                          static_cast<double>(1 + state.range(2));
  state.counters["ranked_elements_per_second"] =
      benchmark::Counter(elements, benchmark::Counter::kIsIterationInvariantRate);
}

/// The GPU on device data; Real = double for the steps too large for one block (more than
/// 8,192 doubles: the segmented-sort path).
template <class Real = float>
void run_cuda(benchmark::State& state, st::over_steps_options const& o) {
  auto const steps = static_cast<std::size_t>(state.range(0));
  auto const models = static_cast<std::size_t>(state.range(1));
  if (!pt::backend::cuda_device_count()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  auto const p = pt::bench::make_gpu_problem(steps, models);
  std::vector<Real> const host_scores(p.scores.begin(), p.scores.end());
  std::vector<Real> const host_reference(p.reference.begin(), p.reference.end());
  auto scores = pt::device_buffer<Real>::allocate(host_scores.size()).value();
  auto reference = pt::device_buffer<Real>::allocate(host_reference.size()).value();
  cudaMemcpy(scores.data(), host_scores.data(), host_scores.size() * sizeof(Real),
             cudaMemcpyHostToDevice);
  cudaMemcpy(reference.data(), host_reference.data(), host_reference.size() * sizeof(Real),
             cudaMemcpyHostToDevice);
  cudaStream_t stream = nullptr;
  cudaStreamCreate(&stream);
  pt::device_matrix_view<Real const> const view(scores.data(), models, steps);
  auto const first = st::correlate_over_steps(pt::backend::cuda.on(stream), view, reference.view(),
                                              o);  // warm-up and buffers
  if (!first) {
    state.SkipWithError(first.error().message().c_str());
    return;
  }
  for (auto _ : state) {
    auto r = st::correlate_over_steps(pt::backend::cuda.on(stream), view, reference.view(), o);
    benchmark::DoNotOptimize(r);
  }
  cudaStreamDestroy(stream);
  set_counters(state);
}

void run_cpu(benchmark::State& state, st::over_steps_options const& o, unsigned threads = 0) {
  auto const steps = static_cast<std::size_t>(state.range(0));
  auto const models = static_cast<std::size_t>(state.range(1));
  auto const p = pt::bench::make_gpu_problem(steps, models);
  pt::host_matrix_view<float const> const view(p.scores.data(), models, steps);
  for (auto _ : state) {
    auto r = st::correlate_over_steps(pt::backend::cpu.with_threads(threads), view,
                                      std::span<float const>(p.reference), o);
    benchmark::DoNotOptimize(r);
  }
  set_counters(state);
}

constexpr auto spearman = st::correlation::spearman;
constexpr auto kendall = st::correlation::kendall_tau_b;
constexpr auto percentile = st::interval_method::percentile;
constexpr auto bca = st::interval_method::bca;

void BM_Spearman_Cuda(benchmark::State& state) {
  run_cuda(state, bootstrap(state, spearman, percentile));
}
void BM_SpearmanDouble_Cuda(benchmark::State& state) {
  run_cuda<double>(state, bootstrap(state, spearman, percentile));
}
void BM_Spearman_Cpu(benchmark::State& state) {
  run_cpu(state, bootstrap(state, spearman, percentile));
}
/// One CPU thread: backend::auto_'s CPU side for small problems (no thread pool to start).
void BM_Spearman_Cpu1(benchmark::State& state) {
  run_cpu(state, bootstrap(state, spearman, percentile), 1);
}
void BM_SpearmanBca_Cuda(benchmark::State& state) {
  run_cuda(state, bootstrap(state, spearman, bca));
}
void BM_SpearmanBca_Cpu(benchmark::State& state) {
  run_cpu(state, bootstrap(state, spearman, bca));
}
void BM_Kendall_Cuda(benchmark::State& state) {
  run_cuda(state, bootstrap(state, kendall, percentile));
}
void BM_Kendall_Cpu(benchmark::State& state) {
  run_cpu(state, bootstrap(state, kendall, percentile));
}
void BM_SpearmanPermutation_Cuda(benchmark::State& state) {
  run_cuda(state, permutation_test(state, spearman));
}
void BM_SpearmanPermutation_Cpu(benchmark::State& state) {
  run_cpu(state, permutation_test(state, spearman));
}
void BM_KendallPermutation_Cuda(benchmark::State& state) {
  run_cuda(state, permutation_test(state, kendall));
}
void BM_KendallPermutation_Cpu(benchmark::State& state) {
  run_cpu(state, permutation_test(state, kendall));
}

/// The issue's sizes: plain Spearman over 200 steps x 15,625 models; bootstraps (steps, models,
/// resamples) with their intervals.
void target_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples"});
  b->Args({200, 15625, 0});
  b->Args({100, 10, 10000});
  b->Args({200, 1000, 1000});
  b->Args({200, 15625, 100});
}
/// Small problems, where the CPU wins: the crossover of backend::auto_.
void crossover_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples"});
  for (auto const& a : std::vector<std::vector<std::int64_t>>{{20, 16, 0},
                                                              {20, 64, 0},
                                                              {50, 256, 0},
                                                              {100, 1024, 0},
                                                              {200, 4096, 0},
                                                              {10, 10, 100},
                                                              {20, 10, 1000},
                                                              {50, 30, 1000}})
    b->Args(a);
}

/// The BCa sizes: the bootstraps of the targets.
void bca_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples"})
      ->Args({100, 10, 10000})
      ->Args({200, 1000, 1000})
      ->Args({200, 15625, 100});
}
/// Kendall: NAS-Bench scale plain, and two bootstraps.
void kendall_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples"})
      ->Args({200, 15625, 0})
      ->Args({100, 10, 10000})
      ->Args({200, 1000, 1000});
}
/// Permutation tests: the controller's 10 and 30 models, 10,000 pairings per step (one thread per
/// pairing on the GPU), and 1,000 models (one block per pairing).
void permutation_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "permutations"})
      ->Args({100, 10, 10000})
      ->Args({100, 30, 10000})
      ->Args({20, 1000, 1000});
}
/// The segmented-sort path: doubles above one block.
void double_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples"})->Args({200, 15625, 0});
}

// Wall time of whole calls, in milliseconds.
#define PROXYTASK_CALL_BENCHMARK(fn, sizes) \
  BENCHMARK(fn)->Apply(sizes)->UseRealTime()->Unit(benchmark::kMillisecond)
PROXYTASK_CALL_BENCHMARK(BM_Spearman_Cuda, target_sizes)->Apply(crossover_sizes);
PROXYTASK_CALL_BENCHMARK(BM_Spearman_Cpu, target_sizes)->Apply(crossover_sizes);
PROXYTASK_CALL_BENCHMARK(BM_Spearman_Cpu1, crossover_sizes);
PROXYTASK_CALL_BENCHMARK(BM_SpearmanDouble_Cuda, double_sizes);
PROXYTASK_CALL_BENCHMARK(BM_SpearmanBca_Cuda, bca_sizes);
PROXYTASK_CALL_BENCHMARK(BM_SpearmanBca_Cpu, bca_sizes);
PROXYTASK_CALL_BENCHMARK(BM_Kendall_Cuda, kendall_sizes);
PROXYTASK_CALL_BENCHMARK(BM_Kendall_Cpu, kendall_sizes);
PROXYTASK_CALL_BENCHMARK(BM_SpearmanPermutation_Cuda, permutation_sizes);
PROXYTASK_CALL_BENCHMARK(BM_SpearmanPermutation_Cpu, permutation_sizes);
PROXYTASK_CALL_BENCHMARK(BM_KendallPermutation_Cuda, permutation_sizes);
PROXYTASK_CALL_BENCHMARK(BM_KendallPermutation_Cpu, permutation_sizes);

/// The order key of a float (the sort keys of the GPU back-end), on the host.
std::uint32_t order_key(float v) {
  std::uint32_t bits = 0;
  float const canonical = v + 0.0f;
  std::memcpy(&bits, &canonical, sizeof bits);
  return bits ^ (static_cast<std::uint32_t>(static_cast<std::int32_t>(bits) >> 31) | 0x80000000u);
}

/// The sort keys of every step, step after step, with the model as the value: what a ranking
/// that sorts each step once must sort.
struct step_keys {
  std::size_t steps = 0, models = 0;
  std::vector<std::uint32_t> keys, values;
};

/// The step keys of the benchmark's (steps, models); none, and the benchmark skipped, without a
/// device.
std::optional<step_keys> step_keys_or_skip(benchmark::State& state) {
  if (!pt::backend::cuda_device_count()) {
    state.SkipWithError("no CUDA device");
    return std::nullopt;
  }
  auto const steps = static_cast<std::size_t>(state.range(0));
  auto const models = static_cast<std::size_t>(state.range(1));
  auto const p = pt::bench::make_gpu_problem(steps, models);
  step_keys k{steps, models, std::vector<std::uint32_t>(steps * models),
              std::vector<std::uint32_t>(steps * models)};
  for (std::size_t s = 0; s < steps; ++s)
    for (std::size_t m = 0; m < models; ++m) {
      k.keys[s * models + m] = order_key(p.scores[m * steps + s]);
      k.values[s * models + m] = static_cast<std::uint32_t>(m);
    }
  return k;
}

/// A copy of a host vector in a new device buffer.
template <class T>
pt::device_buffer<T> to_device(std::vector<T> const& host) {
  auto d = pt::device_buffer<T>::allocate(host.size()).value();
  cudaMemcpy(d.data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
  return d;
}

/// Times sort(temp, temp_bytes) with CUDA events, after one untimed call; sort(nullptr,
/// temp_bytes) sizes temp first (CUB's two-call protocol).
template <class Sort>
void time_sort(benchmark::State& state, std::size_t elements, Sort sort) {
  std::size_t temp_bytes = 0;
  sort(nullptr, temp_bytes);
  auto temp = pt::device_buffer<std::byte>::allocate(temp_bytes).value();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  sort(temp.data(), temp_bytes);
  for (auto _ : state) {
    cudaEventRecord(start);
    sort(temp.data(), temp_bytes);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    state.SetIterationTime(ms / 1e3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  state.counters["ranked_elements_per_second"] = benchmark::Counter(
      static_cast<double>(elements), benchmark::Counter::kIsIterationInvariantRate);
}

/// CUB's segmented sort alone, of the same keys (one segment per step, the model as the value):
/// the ceiling of any ranking that sorts each step once. Timed with CUDA events.
void BM_CubSegmentedSort(benchmark::State& state) {
  auto const host = step_keys_or_skip(state);
  if (!host) return;
  std::size_t const steps = host->steps, n = host->keys.size();
  std::vector<std::int64_t> offsets(steps + 1);
  for (std::size_t s = 0; s <= steps; ++s) offsets[s] = static_cast<std::int64_t>(s * host->models);
  auto keys_in = to_device(host->keys);
  auto values_in = to_device(host->values);
  auto device_offsets = to_device(offsets);
  auto keys_out = pt::device_buffer<std::uint32_t>::allocate(n).value();
  auto values_out = pt::device_buffer<std::uint32_t>::allocate(n).value();
  time_sort(state, n, [&](void* temp, std::size_t& bytes) {
    return cub::DeviceSegmentedSort::StableSortPairs(
        temp, bytes, keys_in.data(), keys_out.data(), values_in.data(), values_out.data(),
        static_cast<std::int64_t>(n), static_cast<std::int64_t>(steps), device_offsets.data(),
        device_offsets.data() + 1);
  });
}

/// The other way to sort every step at once: one device-wide radix sort of the whole batch, with
/// the step in the key's high bits (step << 32 | key), so that the whole GPU works on every pass
/// instead of one block per step. Sorts only the bits the steps use. If this is much faster than
/// the segmented sort, a ranking built on it could beat the in-block sort at NAS-Bench scale.
void BM_CubBatchRadixSort(benchmark::State& state) {
  auto const host = step_keys_or_skip(state);
  if (!host) return;
  std::size_t const steps = host->steps, n = host->keys.size();
  std::vector<std::uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i)
    keys[i] = (static_cast<std::uint64_t>(i / host->models) << 32) | host->keys[i];
  auto keys_in = to_device(keys);
  auto values_in = to_device(host->values);
  auto keys_out = pt::device_buffer<std::uint64_t>::allocate(n).value();
  auto values_out = pt::device_buffer<std::uint32_t>::allocate(n).value();
  int const end_bit = 32 + static_cast<int>(std::bit_width(steps - 1));
  time_sort(state, n, [&](void* temp, std::size_t& bytes) {
    return cub::DeviceRadixSort::SortPairs(temp, bytes, keys_in.data(), keys_out.data(),
                                           values_in.data(), values_out.data(),
                                           static_cast<std::int64_t>(n), 0, end_bit);
  });
}

/// The two ceilings at the plain target's size and at 1,000 models.
void sort_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models"})->Args({200, 15625})->Args({200, 1000});
}
BENCHMARK(BM_CubSegmentedSort)->Apply(sort_sizes)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CubBatchRadixSort)->Apply(sort_sizes)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
