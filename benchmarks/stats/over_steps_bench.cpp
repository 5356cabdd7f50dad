// correlate_over_steps on the CPU at the sizes of the statistics issues, (steps, models,
// resamples) = (100, 10, 10000) a controller's proxy, (200, 1000, 1000) a study, and
// (200, 15625, 100) all of NAS-Bench-201; plain and with a percentile bootstrap; 1 and 2
// threads. The inputs (benchmarks/support/bench_data.hpp) are the ones the Python peers use:
//
//   benchmarks/run_cpu_comparison.sh          (ours and the peers, one table)
//   build/bench/benchmarks/proxytask_stats_bench --benchmark_min_time=0.5

#include <proxytask/stats/over_steps.hpp>

#include <support/bench_data.hpp>

#include <benchmark/benchmark.h>

#include <map>
#include <tuple>

namespace {

namespace pt = proxytask;
namespace st = proxytask::stats;

pt::bench::problem const& problem_of(std::size_t steps, std::size_t models) {
  static std::map<std::tuple<std::size_t, std::size_t>, pt::bench::problem> cache;
  auto [it, inserted] = cache.try_emplace({steps, models});
  if (inserted) it->second = pt::bench::make_problem(steps, models);
  return it->second;
}

void run(benchmark::State& state, st::correlation method, bool bootstrap) {
  auto const steps = static_cast<std::size_t>(state.range(0));
  auto const models = static_cast<std::size_t>(state.range(1));
  auto const resamples = static_cast<std::size_t>(state.range(2));
  auto const threads = static_cast<unsigned>(state.range(3));
  auto const& p = problem_of(steps, models);
  st::over_steps_options const options{.method = method,
                                       .bootstrap_resamples = bootstrap ? resamples : 0,
                                       .interval = st::interval_method::percentile,
                                       .seed = 7};
  auto const policy = pt::backend::cpu.with_threads(threads);
  for (auto _ : state) {
    auto table = st::correlate_over_steps(
        policy, pt::host_matrix_view<double const>(p.scores.data(), models, steps), p.reference,
        options);
    benchmark::DoNotOptimize(table);
  }
  state.counters["elements"] =
      benchmark::Counter(static_cast<double>(steps * models * (bootstrap ? resamples : 1)),
                         benchmark::Counter::kIsIterationInvariantRate);
}

void BM_OverSteps_Spearman_Plain_Cpu(benchmark::State& s) {
  run(s, st::correlation::spearman, false);
}
void BM_OverSteps_Kendall_Plain_Cpu(benchmark::State& s) {
  run(s, st::correlation::kendall_tau_b, false);
}
void BM_OverSteps_Spearman_Bootstrap_Cpu(benchmark::State& s) {
  run(s, st::correlation::spearman, true);
}
void BM_OverSteps_Kendall_Bootstrap_Cpu(benchmark::State& s) {
  run(s, st::correlation::kendall_tau_b, true);
}

void plain_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples", "threads"});
  for (long threads : {1, 2})
    b->Args({100, 10, 0, threads})->Args({200, 1000, 0, threads})->Args({200, 15625, 0, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}
void bootstrap_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"steps", "models", "resamples", "threads"});
  for (long threads : {1, 2})
    b->Args({100, 10, 10000, threads})
        ->Args({200, 1000, 1000, threads})
        ->Args({200, 15625, 100, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_OverSteps_Spearman_Plain_Cpu)->Apply(plain_sizes);
BENCHMARK(BM_OverSteps_Kendall_Plain_Cpu)->Apply(plain_sizes);
BENCHMARK(BM_OverSteps_Spearman_Bootstrap_Cpu)->Apply(bootstrap_sizes);
BENCHMARK(BM_OverSteps_Kendall_Bootstrap_Cpu)->Apply(bootstrap_sizes);

}  // namespace
