// proxytask-correlation-ci-width: how sure is a rank correlation measured on 10-30 models? A
// Monte Carlo study with the library's own statistics. For each number of models n and true
// Kendall tau, R repetitions each draw n (full-training, proxy) score pairs from a bivariate
// normal with Pearson r = sin(pi tau / 2), whose Kendall tau is exactly tau (Greiner's relation),
// and measure Kendall's tau-b with a 95% BCa bootstrap interval, as the proxy-task search does.
// It prints, per (n, tau): the mean estimate, the median width of the interval, and the share of
// repetitions whose estimate, and whose interval's lower bound, reaches the bar 0.65 (the seed's
// tau-b threshold).
//
//   proxytask-correlation-ci-width [--repetitions R] [--resamples B] [--threads T] [--seed S]
//
// One call of correlate_over_steps measures all R repetitions of an (n, tau): repetition r is
// column r of an n x R matrix. The call takes one reference vector for every column, so each
// repetition's pairs are sorted by their full-training score, the reference is 1..n, and column
// r holds the proxy scores in that order: a rank correlation and a bootstrap that resamples pairs
// see the same pairs either way. The data come from Philox keyed by ~S, the bootstrap's
// resamples from Philox keyed by S, so a run is the same for every thread count.

#include <proxytask/core/backend.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/median.hpp>
#include <proxytask/stats/over_steps.hpp>
#include <proxytask/stats/philox.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace pt = proxytask;

namespace {

constexpr char const usage[] =
    R"(usage: proxytask-correlation-ci-width [options]

How wide is the 95% BCa bootstrap interval of Kendall's tau-b measured on n models,
and how often does the estimate, or the interval's lower bound, reach 0.65? A Monte
Carlo study for n in {10, 15, 20, 30} and true tau in {0.5, 0.65, 0.8}.

  --repetitions R   measurements per (n, tau) (500; at most 1,000,000)
  --resamples B     bootstrap resamples per measurement (1000; at most 1,000,000)
  --threads T       threads (1; 0: all hardware threads); never changes a result
  --seed S          seeds the data and the bootstrap (1)
)";

constexpr std::size_t model_counts[] = {10, 15, 20, 30};
constexpr double true_taus[] = {0.5, 0.65, 0.8};
constexpr double bar = 0.65;

struct settings {
  std::size_t repetitions = 500;
  std::size_t resamples = 1000;
  unsigned threads = 1;
  std::uint64_t seed = 1;
};

/// Two independent standard normal values (Box-Muller) from two Philox words.
std::pair<double, double> normal_pair(pt::stats::philox_stream& words) {
  double const u1 = (words() + 0.5) * 0x1p-32;  // in (0, 1): log(u1) is finite
  double const u2 = words() * 0x1p-32;
  double const radius = std::sqrt(-2.0 * std::log(u1));
  double const angle = 2.0 * std::numbers::pi * u2;
  return {radius * std::cos(angle), radius * std::sin(angle)};
}

/// The n x R proxy scores of configuration `config` (rows sorted by the full-training score).
std::vector<double> draw_scores(std::size_t n, double tau, std::size_t config, settings const& s) {
  double const r = std::sin(std::numbers::pi * tau / 2.0);
  std::vector<double> scores(n * s.repetitions);
  std::vector<std::pair<double, double>> pairs(n);  // (full training, proxy)
  for (std::size_t rep = 0; rep < s.repetitions; ++rep) {
    pt::stats::philox_stream words(~s.seed, static_cast<std::uint32_t>(config),
                                   static_cast<std::uint32_t>(rep),
                                   pt::stats::draw_purpose::bootstrap);
    for (auto& p : pairs) {
      auto const [z1, z2] = normal_pair(words);
      p = {z1, r * z1 + std::sqrt(1.0 - r * r) * z2};
    }
    std::sort(pairs.begin(), pairs.end());
    for (std::size_t i = 0; i < n; ++i) scores[i * s.repetitions + rep] = pairs[i].second;
  }
  return scores;
}

template <class T>
bool parse(std::string_view text, T& out) {
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    std::string_view const arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    std::string_view const value = i + 1 < argc ? argv[++i] : "";
    bool const ok = (arg == "--repetitions" && parse(value, s.repetitions) && s.repetitions > 0 &&
                     s.repetitions <= 1'000'000) ||
                    (arg == "--resamples" && parse(value, s.resamples) && s.resamples > 0 &&
                     s.resamples <= 1'000'000) ||
                    (arg == "--threads" && parse(value, s.threads) && s.threads <= 1024) ||
                    (arg == "--seed" && parse(value, s.seed));
    if (!ok) {
      std::fprintf(stderr, "proxytask-correlation-ci-width: %s: unknown, or a bad value\n\n%s",
                   arg.data(), usage);
      return 2;
    }
  }

  pt::stats::over_steps_options options;
  options.method = pt::stats::correlation::kendall_tau_b;
  options.bootstrap_resamples = s.resamples;
  options.interval = pt::stats::interval_method::bca;
  options.confidence_level = 0.95;
  options.seed = s.seed;

  std::printf(
      "Kendall tau-b, 95%% BCa interval (%zu resamples), %zu repetitions per row, seed %llu\n\n",
      s.resamples, s.repetitions, static_cast<unsigned long long>(s.seed));
  std::printf(
      "| models | true tau | mean tau-b | median CI width | estimate >= %.2f | CI low >= %.2f |\n",
      bar, bar);
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  auto const start = std::chrono::steady_clock::now();
  std::size_t undefined = 0, config = 0;
  for (std::size_t const n : model_counts) {
    std::vector<double> reference(n);
    for (std::size_t i = 0; i < n; ++i) reference[i] = static_cast<double>(i + 1);
    for (double const tau : true_taus) {
      auto const scores = draw_scores(n, tau, config++, s);
      auto const table = pt::stats::correlate_over_steps(
          pt::backend::cpu.with_threads(s.threads),
          pt::host_matrix_view<double const>(scores.data(), n, s.repetitions),
          std::span<double const>(reference), options);
      if (!table) {
        std::fprintf(stderr, "proxytask-correlation-ci-width: %s\n",
                     table.error().message().c_str());
        return 1;
      }
      double sum = 0;
      std::size_t estimate_above = 0, low_above = 0;
      std::vector<double> widths;
      for (auto const& row : *table) {
        double low = row.bootstrap.low, high = row.bootstrap.high;
        // A perfect ranking's replicates are all 1: BCa is 0 / 0 there, and the interval is the
        // point itself (as the proxy-task search takes it).
        if (std::isnan(low) && row.bootstrap.defined > 0 && row.bootstrap.standard_error == 0)
          low = high = row.coefficient;
        if (std::isnan(low)) ++undefined;
        sum += row.coefficient;
        estimate_above += row.coefficient >= bar;
        low_above += low >= bar;
        widths.push_back(high - low);
      }
      double const r = static_cast<double>(s.repetitions);
      std::printf("| %zu | %.2f | %.3f | %.2f | %.0f%% | %.0f%% |\n", n, tau, sum / r,
                  pt::stats::upper_median(std::span<double const>(widths)),  // NaN ones left out
                  100.0 * static_cast<double>(estimate_above) / r,
                  100.0 * static_cast<double>(low_above) / r);
    }
  }
  double const seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (undefined > 0)
    std::printf("\n%zu measurements had no BCa interval (counted as below the bar)\n", undefined);
  std::printf("\n%.1f s\n", seconds);
  return 0;
}
