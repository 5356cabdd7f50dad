// The CUDA correlate_over_steps against the CPU's: every field of every row, bit for bit, on the
// public test vectors and on random inputs with ties and NaNs, for both coefficients, with and
// without a bootstrap (percentile and BCa). Without a device the GPU tests skip (CudaTest) and
// the no-device behaviour is checked instead.

#include <proxytask/stats/over_steps.cuh>

#include <stats/public_pairs.hpp>
#include <support/cuda_test.hpp>
#include <support/random_samples.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
namespace st = proxytask::stats;
using proxytask::testing::random_sample;

/// Equal bits, or both NaN.
bool same(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

std::string describe(double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

#define EXPECT_SAME(gpu, cpu, what)                                                   \
  EXPECT_TRUE(same(gpu, cpu)) << what << ": " #gpu " = " << describe(gpu) << ", CPU " \
                              << describe(cpu)

void expect_same_tables(st::step_table const& gpu, st::step_table const& cpu,
                        std::string const& where) {
  ASSERT_EQ(gpu.size(), cpu.size()) << where;
  for (std::size_t s = 0; s < gpu.size(); ++s) {
    std::string const at = where + ", step " + std::to_string(s);
    auto const& g = gpu[s];
    auto const& c = cpu[s];
    EXPECT_EQ(g.valid_pairs, c.valid_pairs) << at;
    EXPECT_EQ(g.reason, c.reason) << at;
    EXPECT_SAME(g.coefficient, c.coefficient, at);
    EXPECT_SAME(g.p_value, c.p_value, at);
    EXPECT_SAME(g.median_score, c.median_score, at);
    EXPECT_EQ(g.bootstrap.defined, c.bootstrap.defined) << at;
    EXPECT_EQ(g.bootstrap.undefined, c.bootstrap.undefined) << at;
    EXPECT_SAME(g.bootstrap.low, c.bootstrap.low, at);
    EXPECT_SAME(g.bootstrap.high, c.bootstrap.high, at);
    EXPECT_SAME(g.bootstrap.standard_error, c.bootstrap.standard_error, at);
    EXPECT_SAME(g.bootstrap.p_above_zero, c.bootstrap.p_above_zero, at);
    EXPECT_SAME(g.bootstrap.p_above_threshold, c.bootstrap.p_above_threshold, at);
    EXPECT_EQ(g.permutation.permutations, c.permutation.permutations) << at;
    EXPECT_SAME(g.permutation.p_value, c.permutation.p_value, at);
  }
}

template <class Real>
void expect_gpu_matches_cpu(std::vector<Real> const& scores, std::size_t models, std::size_t steps,
                            std::vector<Real> const& reference, st::over_steps_options const& o,
                            std::string const& where) {
  pt::host_matrix_view<Real const> const view(scores.data(), models, steps);
  auto const cpu = st::correlate_over_steps(pt::backend::cpu.with_threads(0), view,
                                            std::span<Real const>(reference), o);
  auto const gpu =
      st::correlate_over_steps(pt::backend::cuda, view, std::span<Real const>(reference), o);
  ASSERT_TRUE(cpu) << where;
  ASSERT_TRUE(gpu) << where << ": " << gpu.error().message();
  expect_same_tables(*gpu, *cpu, where);
}

std::string name(st::over_steps_options const& o) {
  return std::string(st::to_string(o.method)) + ", " + std::to_string(o.bootstrap_resamples) +
         " resamples, " + std::string(st::to_string(o.interval));
}

/// The option sets every input is checked with.
std::vector<st::over_steps_options> option_sets(std::size_t resamples) {
  std::vector<st::over_steps_options> sets;
  for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
    st::over_steps_options o{.method = method, .min_valid_pairs = 2, .min_valid_fraction = 0.0};
    sets.push_back(o);
    o.bootstrap_resamples = resamples;
    o.seed = 20261127;
    o.threshold = method == st::correlation::spearman ? 0.84 : 0.65;
    o.interval = st::interval_method::percentile;
    sets.push_back(o);
    o.interval = st::interval_method::bca;
    o.confidence_level = 0.9;
    sets.push_back(o);
  }
  return sets;
}

TEST_F(CudaTest, MatchesTheCpuOnThePublicVectors) {
  auto const cases = pt::testing::public_pair_cases();
  ASSERT_GT(cases.size(), 100u);
  for (auto const& c : cases) {
    for (auto const& o : option_sets(500))
      expect_gpu_matches_cpu(c.x, c.x.size(), 1, c.y, o, c.id + ", " + name(o));
  }
}

TEST_F(CudaTest, MatchesTheCpuOnFewModels) {
  // The one-thread-per-replicate path (at most 32 models) and the block path just above it.
  for (std::size_t const models : {4, 10, 32, 33}) {
    std::size_t const steps = 5;
    auto const scores = random_sample(models * steps, models, 5, 0.1);
    auto const reference = random_sample(models, models + 100, 4, 0.0);
    for (auto const& o : option_sets(100))
      expect_gpu_matches_cpu(scores, models, steps, reference, o,
                             std::to_string(models) + " models, " + name(o));
  }
}

TEST_F(CudaTest, MatchesTheCpuOnStepsOfNoOrOneValue) {
  // The in-block sort passes over the bits of a step's range only: steps with no present score,
  // one score, one value repeated, and values of both signs far apart.
  double const nan = std::nan("");
  for (std::size_t const models : {5, 40, 3000}) {
    std::vector<std::vector<double>> columns = {std::vector<double>(models, nan),
                                                std::vector<double>(models, 0.5),
                                                std::vector<double>(models, nan)};
    columns[2][models / 2] = 0.25;
    columns.push_back(random_sample(models, models, 0, 0.3));
    for (std::size_t m = 0; m < models; m += 2) columns.back()[m] *= -1e30;
    std::vector<double> scores(models * columns.size());
    for (std::size_t step = 0; step < columns.size(); ++step)
      for (std::size_t m = 0; m < models; ++m) scores[m * columns.size() + step] = columns[step][m];
    auto const reference = random_sample(models, models + 1, 0, 0.0);
    for (auto const& o : option_sets(50))
      expect_gpu_matches_cpu(scores, models, columns.size(), reference, o,
                             std::to_string(models) + " models, " + name(o));
    std::vector<float> const narrow(scores.begin(), scores.end());
    std::vector<float> const narrow_reference(reference.begin(), reference.end());
    expect_gpu_matches_cpu(narrow, models, columns.size(), narrow_reference, option_sets(50)[1],
                           std::to_string(models) + " models, float");
  }
}

TEST_F(CudaTest, MatchesTheCpuOnRandomInputsWithTiesAndNaNs) {
  std::uint64_t seed = 1;
  for (std::size_t const models : {2, 3, 5, 10, 31, 32, 33, 64, 257, 1000, 3000}) {
    for (std::size_t const steps : {1, 7, 40}) {
      for (int const levels : {0, 6, 60}) {
        for (double const missing : {0.0, 0.15}) {
          if (models >= 1000 && steps == 40) continue;  // enough of the large ones
          auto const scores = random_sample(models * steps, ++seed, levels, missing);
          auto const reference = random_sample(models, ++seed, levels / 2, missing / 2);
          std::string const input = std::to_string(models) + " models x " + std::to_string(steps) +
                                    " steps, levels " + std::to_string(levels) + ", missing " +
                                    std::to_string(missing);
          for (auto const& o : option_sets(models >= 1000 ? 100 : 300))
            expect_gpu_matches_cpu(scores, models, steps, reference, o, input + ", " + name(o));
          if (HasFailure()) return;  // one input's report is enough
        }
      }
    }
  }
}

TEST_F(CudaTest, MatchesTheCpuOnFloatScoresAndTheValidityRule) {
  std::size_t const models = 40, steps = 9;
  auto const wide = random_sample(models * steps, 5, 20, 0.3);
  auto const wide_reference = random_sample(models, 6, 0, 0.1);
  std::vector<float> const scores(wide.begin(), wide.end());
  std::vector<float> const reference(wide_reference.begin(), wide_reference.end());
  st::over_steps_options o;  // the reference tool's rule: 5 pairs, 70% of the models
  o.bootstrap_resamples = 200;
  expect_gpu_matches_cpu(scores, models, steps, reference, o, "float, default options");
  o.method = st::correlation::spearman;
  o.min_valid_fraction = 0.5;
  expect_gpu_matches_cpu(scores, models, steps, reference, o, "float, spearman, 50%");
}

TEST_F(CudaTest, MatchesTheCpuAtNasBenchScale) {
  // 15,625 models (NAS-Bench-201), accuracies with 2 decimals (heavy ties), 60 steps.
  std::size_t const models = 15625, steps = 60;
  auto scores = random_sample(models * steps, 11, 0, 0.0);
  auto reference = random_sample(models, 12, 0, 0.0);
  for (auto& v : scores) v = std::round(v * 100) / 100;
  for (auto& v : reference) v = std::round(v * 100) / 100;
  for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
    st::over_steps_options o{.method = method};
    expect_gpu_matches_cpu(scores, models, steps, reference, o, "NB201 scale, plain");
  }
  st::over_steps_options o{.method = st::correlation::spearman, .bootstrap_resamples = 50};
  o.interval = st::interval_method::percentile;
  expect_gpu_matches_cpu(scores, models, 4, reference, o, "NB201 scale, bootstrap");
  // As floats, the steps fit one block (sorted in shared memory); as doubles they do not (the
  // segmented sort). 9,000 doubles: the largest in-block tier for doubles is 8,192.
  std::vector<float> const narrow(scores.begin(), scores.end());
  std::vector<float> const narrow_reference(reference.begin(), reference.end());
  for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
    o.method = method;
    expect_gpu_matches_cpu(narrow, models, 6, narrow_reference, o, "NB201 scale, float");
  }
  auto const wide = random_sample(9000 * 5, 13, 40, 0.05);
  auto const wide_reference = random_sample(9000, 14, 30, 0.05);
  for (std::size_t const models : {8192, 9000}) {
    o.method = st::correlation::spearman;
    o.interval = st::interval_method::bca;
    std::vector<double> const reference_part(wide_reference.begin(),
                                             wide_reference.begin() + models);
    expect_gpu_matches_cpu(wide, models, 5, reference_part, o,
                           std::to_string(models) + " doubles, BCa");
  }
}

TEST_F(CudaTest, MatchesTheCpuAtEveryResampleTier) {
  // The bootstrap summary sorts up to 1,024 and up to 10,240 resamples in one block; above that
  // it takes the tally and radix-selection kernels. Percentile and BCa at each edge.
  std::size_t const models = 20, steps = 3;
  auto const scores = random_sample(models * steps, 71, 8, 0.05);
  auto const reference = random_sample(models, 72, 0, 0.0);
  for (std::size_t const resamples : {1024, 1025, 10240, 10241, 12000}) {
    for (auto interval : {st::interval_method::percentile, st::interval_method::bca}) {
      st::over_steps_options o{.method = st::correlation::spearman,
                               .bootstrap_resamples = resamples,
                               .interval = interval};
      o.seed = 9;
      o.threshold = 0.3;
      expect_gpu_matches_cpu(scores, models, steps, reference, o, name(o));
    }
  }
}

TEST_F(CudaTest, MatchesTheCpuAboveOneBlock) {
  // More models than one block sorts (8,192 doubles): the segmented-sort path, after calls with
  // fewer models (its buffers grow), for each kind of call.
  for (std::size_t const models : {100, 8193}) {
    auto const scores = random_sample(models * 3, 51, 50, 0.05);
    auto const reference = random_sample(models, 52, 40, 0.05);
    for (auto const& o : option_sets(20)) {
      expect_gpu_matches_cpu(scores, models, 3, reference, o,
                             std::to_string(models) + " models, " + name(o));
    }
  }
}

TEST_F(CudaTest, AcceptsDeviceDataAndAStream) {
  std::size_t const models = 100, steps = 12;
  auto const scores = random_sample(models * steps, 21, 30, 0.05);
  auto const reference = random_sample(models, 22, 0, 0.0);
  st::over_steps_options const o{.method = st::correlation::spearman, .bootstrap_resamples = 100};
  auto device_scores = pt::device_buffer<double>::allocate(scores.size()).value();
  auto device_reference = pt::device_buffer<double>::allocate(models).value();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device_scores.data(), scores.data(), scores.size() * sizeof(double),
                       cudaMemcpyHostToDevice),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device_reference.data(), reference.data(), models * sizeof(double),
                       cudaMemcpyHostToDevice),
            cudaSuccess);
  auto const gpu = st::correlate_over_steps(
      pt::backend::cuda.on(stream),
      pt::device_matrix_view<double const>(device_scores.data(), models, steps),
      device_reference.view(), o);
  ASSERT_TRUE(gpu) << gpu.error().message();
  auto const cpu = st::correlate_over_steps(
      pt::backend::cpu, pt::host_matrix_view<double const>(scores.data(), models, steps),
      std::span<double const>(reference), o);
  expect_same_tables(*gpu, cpu.value(), "device data");
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST_F(CudaTest, MatchesTheCpuOnPermutationTests) {
  // Exact (up to 8 pairs: every pairing) and Monte Carlo, one thread per pairing (up to 32
  // models) and one block per pairing (33); both coefficients, every alternative, with ties and
  // NaNs, alone and with a bootstrap.
  std::uint64_t seed = 30;
  for (std::size_t const models : {3, 5, 8, 9, 12, 32, 33}) {
    std::size_t const steps = 7;
    auto const scores = random_sample(models * steps, ++seed, 6, 0.1);
    auto const reference = random_sample(models, ++seed, 5, 0.05);
    for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
      for (auto alternative :
           {st::hypothesis::two_sided, st::hypothesis::greater, st::hypothesis::less}) {
        st::over_steps_options o{.method = method, .alternative = alternative};
        o.min_valid_pairs = 2;
        o.min_valid_fraction = 0.0;
        o.permutations = 700;
        o.seed = 5;
        std::string const where = std::to_string(models) + " models, " + name(o) + ", " +
                                  std::string(st::to_string(alternative)) + ", permutations";
        expect_gpu_matches_cpu(scores, models, steps, reference, o, where);
        o.bootstrap_resamples = 300;
        expect_gpu_matches_cpu(scores, models, steps, reference, o, where + " and bootstrap");
      }
    }
    if (HasFailure()) return;
  }
  // The reference tool's validity rule (5 pairs, 70% of the models): at 12 models a step of 8
  // pairs is tested exactly, at 30 models every step is Monte Carlo.
  for (std::size_t const models : {12, 30}) {
    auto const scores = random_sample(models * 9, ++seed, 0, 0.2);
    auto const reference = random_sample(models, ++seed, 0, 0.0);
    st::over_steps_options o{.permutations = 500, .seed = 3};
    expect_gpu_matches_cpu(scores, models, 9, reference, o,
                           std::to_string(models) + " models, default rule, permutations");
  }
}

TEST_F(CudaTest, MatchesTheCpuOnPermutationTestsOfManyModels) {
  // One block per pairing: steps of at most 8 pairs among 40 models (exact, most scores NaN),
  // the arrays in shared memory (300 models) and in global scratch (3,000 and 5,000), 64-bit
  // Kendall keys (70,000 models); ties and NaNs.
  std::uint64_t seed = 90;
  struct size {
    std::size_t models, steps, permutations;
    double nan_share;
  };
  for (auto const [models, steps, permutations, nan_share] :
       {size{40, 5, 300, 0.85}, size{300, 4, 400, 0.05}, size{3000, 3, 60, 0.02},
        size{5000, 2, 40, 0.0}, size{70000, 2, 6, 0.01}}) {
    auto const scores = random_sample(models * steps, ++seed, 40, nan_share);
    auto const reference = random_sample(models, ++seed, 30, nan_share / 4);
    for (auto method : {st::correlation::spearman, st::correlation::kendall_tau_b}) {
      if (models == 70000 && method == st::correlation::spearman) continue;
      st::over_steps_options o{.method = method, .permutations = permutations, .seed = 11};
      o.min_valid_pairs = 2;
      o.min_valid_fraction = 0.0;
      expect_gpu_matches_cpu(scores, models, steps, reference, o,
                             std::to_string(models) + " models, " + name(o) + ", permutations");
    }
    if (HasFailure()) return;
  }
}

TEST_F(CudaTest, MatchesTheCpuOnKendallScoresOfManyModels) {
  // The merge sorts' keys in shared memory (up to 29,018 models on an H100; at 6,144 they fill
  // the default 48 KiB, which the kernel's static shared memory pushes past), in global scratch
  // (40,000), and as 64-bit keys (65,536 models and more); heavy ties and NaNs.
  std::uint64_t seed = 60;
  for (std::size_t const models : {2049, 6144, 25600, 40000, 70000}) {
    std::size_t const steps = 3;
    auto const scores = random_sample(models * steps, ++seed, 300, 0.02);
    auto const reference = random_sample(models, ++seed, 200, 0.01);
    st::over_steps_options const o{.method = st::correlation::kendall_tau_b};
    expect_gpu_matches_cpu(scores, models, steps, reference, o,
                           std::to_string(models) + " models, Kendall");
    std::vector<float> const narrow(scores.begin(), scores.end());
    std::vector<float> const narrow_reference(reference.begin(), reference.end());
    expect_gpu_matches_cpu(narrow, models, steps, narrow_reference, o,
                           std::to_string(models) + " models, Kendall, float");
  }
  // Bootstrap replicates and the BCa jackknife with 64-bit keys.
  std::size_t const models = 70000;
  auto const scores = random_sample(models, ++seed, 300, 0.02);
  auto const reference = random_sample(models, ++seed, 200, 0.01);
  st::over_steps_options const o{.method = st::correlation::kendall_tau_b,
                                 .bootstrap_resamples = 3};
  expect_gpu_matches_cpu(scores, models, 1, reference, o, "70000 models, Kendall, BCa");
}

TEST_F(CudaTest, HandlesNoStepsAndNoModels) {
  std::vector<double> const none;
  for (auto [models, steps] : {std::pair<std::size_t, std::size_t>{0, 3}, {4, 0}}) {
    std::vector<double> const scores(models * steps, 1.0), reference(models, 1.0);
    expect_gpu_matches_cpu(scores, models, steps, reference, {}, "empty");
  }
}

TEST(CudaOverSteps, AutoGivesTheCpuAnswerWithOrWithoutADevice) {
  std::size_t const models = 500, steps = 200;  // above auto_'s threshold
  auto const scores = random_sample(models * steps, 41, 50, 0.02);
  auto const reference = random_sample(models, 42, 0, 0.0);
  pt::host_matrix_view<double const> const view(scores.data(), models, steps);
  st::over_steps_options const o{.method = st::correlation::spearman};
  auto const cpu = st::correlate_over_steps(pt::backend::cpu, view, std::span(reference), o);
  auto const chosen = st::correlate_over_steps(pt::backend::auto_, view, std::span(reference), o);
  ASSERT_TRUE(chosen) << chosen.error().message();
  expect_same_tables(*chosen, cpu.value(), "auto_");
}

TEST(CudaOverSteps, ExplicitCudaWithoutADeviceIsAnErrorValue) {
  if (pt::backend::cuda_device_count()) GTEST_SKIP() << "a device is present";
  std::vector<double> const scores(20, 1.0), reference(10, 2.0);
  auto const r = st::correlate_over_steps(pt::backend::cuda,
                                          pt::host_matrix_view<double const>(scores.data(), 10, 2),
                                          std::span<double const>(reference));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::device_unavailable) << r.error().message();
}

TEST(CudaOverSteps, KeepsTheCpuContract) {
  std::vector<double> const scores(20, 1.0), reference(9, 2.0);
  EXPECT_THROW((void)st::correlate_over_steps(
                   pt::backend::cuda, pt::host_matrix_view<double const>(scores.data(), 10, 2),
                   std::span<double const>(reference)),
               pt::logic_error);
}

}  // namespace
