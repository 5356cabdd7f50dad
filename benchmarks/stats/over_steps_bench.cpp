// correlate_over_steps on the CPU, at the sizes of the statistics issues: (steps, models) =
// (100, 10) a controller's proxy, (200, 1000) a study, (200, 15625) all of NAS-Bench-201.
// Inputs: accuracies with ties (3 decimals, like real accuracy logs) and 5% missing.
//
//   build/release/benchmarks/proxytask_stats_bench --benchmark_min_time=0.2

#include <proxytask/stats/over_steps.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

namespace pt = proxytask;
namespace st = proxytask::stats;

struct problem {
  std::size_t models, steps;
  std::vector<double> scores, reference;
};

problem make_problem(std::size_t steps, std::size_t models) {
  std::mt19937_64 gen(42);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::uniform_real_distribution<double> unit;
  problem p{models, steps, std::vector<double>(models * steps), std::vector<double>(models)};
  for (std::size_t m = 0; m < models; ++m) {
    double const quality = unit(gen);
    p.reference[m] = std::round(1000 * (0.5 + 0.4 * quality)) / 1000;
    for (std::size_t s = 0; s < steps; ++s) {
      double const progress = static_cast<double>(s + 1) / static_cast<double>(steps);
      double const acc = progress * (0.3 + 0.6 * quality) + noise(gen) * (1.2 - progress);
      p.scores[m * steps + s] = unit(gen) < 0.05 ? std::nan("") : std::round(1000 * acc) / 1000;
    }
  }
  return p;
}

void run(benchmark::State& state, st::correlation method) {
  auto const steps = static_cast<std::size_t>(state.range(0));
  auto const models = static_cast<std::size_t>(state.range(1));
  auto const p = make_problem(steps, models);
  st::over_steps_options const options{.method = method};
  for (auto _ : state) {
    auto table = st::correlate_over_steps(
        pt::backend::cpu, pt::host_matrix_view<double const>(p.scores.data(), models, steps),
        std::span<double const>(p.reference), options);
    benchmark::DoNotOptimize(table);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(steps * models));
}

void BM_OverSteps_Spearman_Cpu(benchmark::State& state) { run(state, st::correlation::spearman); }
void BM_OverSteps_Kendall_Cpu(benchmark::State& state) {
  run(state, st::correlation::kendall_tau_b);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models"});
  b->Args({100, 10})->Args({200, 1000})->Args({200, 15625});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_OverSteps_Spearman_Cpu)->Apply(sizes);
BENCHMARK(BM_OverSteps_Kendall_Cpu)->Apply(sizes);

}  // namespace
