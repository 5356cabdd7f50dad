#pragma once
// The CPU back-end of correlate_over_steps. Included by <proxytask/stats/over_steps.hpp> after
// over_steps_options and step_row. Steps run in parallel on a thread pool (or, when there are
// fewer steps than threads, each step's replicates do); every replicate depends only on
// (seed, step, replicate), so the results do not depend on the thread count.

#include <proxytask/core/error.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/core/thread_pool.hpp>
#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/correlation_cpu.hpp>
#include <proxytask/stats/detail/permutations.hpp>
#include <proxytask/stats/detail/rank_math.hpp>
#include <proxytask/stats/detail/step_ranks_cpu.hpp>
#include <proxytask/stats/philox.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

namespace proxytask::stats::detail {

/// Draws resample `replicate` of the step (n indices into its valid pairs, in row order, with
/// replacement) and returns its coefficient, NaN when the resample is constant on a side.
inline double bootstrap_replicate(step_ranks const& s, correlation method, std::uint64_t seed,
                                  std::uint32_t step, std::uint32_t replicate,
                                  replicate_scratch& w) {
  philox_stream const draw(seed, step, replicate, draw_purpose::bootstrap);
  // The counts are 0 between replicates (Spearman's y pass clears them as it reads them; after
  // Kendall they are cleared here): no clearing call per replicate, a tenth of the time at 10
  // models.
  if (w.count.size() != s.n) w.count.assign(s.n, 0);
  std::uint32_t i = 0;
  for (std::uint32_t b = 0; i < s.n; ++b) {
    auto const words = draw.block(b);
    for (std::uint32_t j = 0; j < 4 && i < s.n; ++j, ++i)
      ++w.count[s.draw_position[uniform_index(words.v[j], s.n)]];
  }
  if (method == correlation::spearman) return spearman_of_resample(s, s.n, w).rho();
  double const t = kendall_of_resample(s, s.n, w);
  std::fill(w.count.begin(), w.count.end(), 0u);
  return t;
}

/// The integer statistic the permutation test compares (increasing in the coefficient, for a
/// fixed pairing of marginals): sum a_p b_p for Spearman, concordant - discordant for Kendall.
/// `y_of[p]` is the y group paired with position p.
inline std::int64_t permutation_statistic(step_ranks const& s, correlation method,
                                          std::span<std::uint32_t const> y_of,
                                          replicate_scratch& w) {
  if (method == correlation::spearman) return spearman_permuted_ab(s, y_of);
  return kendall_score(
      s, [&](std::uint32_t p) { return y_of[p]; }, [](std::uint32_t) { return 1; }, w.fenwick);
}

/// Pairs the valid rows' y groups (taken in row order) with the rows of `order`.
inline void pair_in_row_order(step_ranks const& s, std::span<std::uint32_t const> y_by_row,
                              std::span<std::uint32_t const> order,
                              std::vector<std::uint32_t>& y_of) {
  y_of.resize(s.n);
  for (std::uint32_t k = 0; k < s.n; ++k) y_of[s.draw_position[k]] = y_by_row[order[k]];
}

/// The p-value of the counts, by scipy.stats.permutation_test's rules: +1 in numerator and
/// denominator for Monte Carlo, two-sided = twice the smaller tail, at most 1.
inline permutation_summary summarize_permutations(permutation_counts const& k,
                                                  hypothesis alternative) {
  double const adjust = k.exact ? 0.0 : 1.0;
  double const denominator = static_cast<double>(k.count) + adjust;
  double const greater = (static_cast<double>(k.at_least) + adjust) / denominator;
  double const less = (static_cast<double>(k.at_most) + adjust) / denominator;
  permutation_summary out;
  out.permutations = k.count;
  out.exact = k.exact;
  out.p_value = alternative == hypothesis::greater ? greater
                : alternative == hypothesis::less  ? less
                                                   : std::min(1.0, 2 * std::min(greater, less));
  return out;
}

/// The permutation test of one step: the share of pairings of x with y (all n! of them when
/// n <= exact_permutation_pairs, else `permutations` random ones, Fisher-Yates on Philox) whose
/// statistic is at least as extreme as the observed one.
inline permutation_summary permutation_test(step_ranks const& s, correlation method,
                                            hypothesis alternative, std::size_t permutations,
                                            std::uint64_t seed, std::uint32_t step,
                                            replicate_scratch& w) {
  std::vector<std::uint32_t> y_by_row(s.n), order(s.n);
  for (std::uint32_t k = 0; k < s.n; ++k) y_by_row[k] = s.y_group[s.draw_position[k]];
  std::iota(order.begin(), order.end(), 0u);
  pair_in_row_order(s, y_by_row, order, w.y_of);
  std::int64_t const observed = permutation_statistic(s, method, w.y_of, w);

  permutation_counts k;
  k.exact = s.n <= exact_permutation_pairs;
  k.count = k.exact ? factorial(s.n) : permutations;
  for (std::size_t r = 0; r < k.count; ++r) {
    if (k.exact) {
      nth_order(order.data(), s.n, static_cast<std::uint32_t>(r));
    } else {
      philox_stream draw(seed, step, static_cast<std::uint32_t>(r), draw_purpose::permutation);
      shuffled_order(order.data(), s.n, draw);
    }
    pair_in_row_order(s, y_by_row, order, w.y_of);
    std::int64_t const t = permutation_statistic(s, method, w.y_of, w);
    k.at_least += t >= observed;
    k.at_most += t <= observed;
  }
  return summarize_permutations(k, alternative);
}

/// Steps are loaded a block at a time: the models x steps matrix is row-major, so one pass over
/// the rows reads a block's columns a cache line at a time instead of one line per value.
inline constexpr std::size_t steps_per_block = max_columns_per_load;

/// Per-thread storage.
struct step_workspace {
  correlation_workspace correlation;
  std::vector<double> replicates, jackknife;
  std::array<sorted_column, steps_per_block> columns;  // a block of steps
  std::vector<std::uint32_t> x_rank_of_row;
};

/// Runs `count` independent items on the pool, in chunks, or inline without a pool.
template <class Body>
void for_each_item(thread_pool* pool, std::size_t count, Body body) {
  if (!pool) {
    for (std::size_t i = 0; i < count; ++i) body(i, 0u);
    return;
  }
  constexpr std::size_t chunk = 64;
  pool->parallel_for((count + chunk - 1) / chunk, [&](std::size_t c, unsigned thread) {
    for (std::size_t i = c * chunk; i < std::min(count, (c + 1) * chunk); ++i) body(i, thread);
  });
}

/// The reference tool's validity rule: at least `min_valid_pairs` valid pairs, and at least
/// `min_valid_fraction` of the models. Sets the row's reason when the step is not valid.
inline bool enough_pairs(step_row& row, std::size_t rows, over_steps_options const& options) {
  if (row.valid_pairs < options.min_valid_pairs) {
    row.reason = nan_reason::too_few_pairs;
    return false;
  }
  if (static_cast<double>(row.valid_pairs) / static_cast<double>(rows) <
      options.min_valid_fraction) {
    row.reason = nan_reason::too_few_valid_models;
    return false;
  }
  return true;
}

/// The plain Spearman coefficient of a step (no replicates): straight from the sorted columns.
inline void plain_spearman(sorted_column const& x, sorted_column const& reference,
                           std::span<std::uint8_t const> has_reference, std::size_t rows,
                           over_steps_options const& options, step_workspace& ws, step_row& row) {
  std::uint32_t pairs = 0;
  // With a complete reference, every present x makes a pair: no per-row look-ups.
  auto const y_present = reference.size() == rows ? std::span<std::uint8_t const>() : has_reference;
  auto const sums = spearman_of_columns(x, reference, y_present, rows, ws.x_rank_of_row, pairs);
  row.valid_pairs = pairs;
  if (!enough_pairs(row, rows, options)) return;
  row.coefficient = sums.rho();
  if (std::isnan(row.coefficient)) {
    row.reason = nan_reason::constant_input;
    return;
  }
  row.reason = nan_reason::none;
  row.p_value = spearman_p_value(row.coefficient, pairs, options.alternative);
}

/// One step, start to finish, from its sorted column (one value per model). With a pool, its
/// replicates run in parallel on it.
inline step_row compute_step(sorted_column const& x, std::size_t rows, std::size_t step,
                             sorted_column const& reference,
                             std::span<std::uint8_t const> has_reference,
                             over_steps_options const& options,
                             std::span<step_workspace> workspaces, thread_pool* pool) {
  step_workspace& ws = workspaces[0];
  auto& cw = ws.correlation;
  step_row row;
  if (x.size() > 0) row.median_score = x.value(x.size() / 2);
  if (options.method == correlation::spearman && options.bootstrap_resamples == 0 &&
      options.permutations == 0) {
    plain_spearman(x, reference, has_reference, rows, options, ws, row);
    return row;
  }
  build_step_ranks(x, reference, has_reference, cw.rows, cw.ranks);
  step_ranks const& s = cw.ranks;
  row.valid_pairs = s.n;
  if (!enough_pairs(row, rows, options)) return row;
  auto const r = correlate_ranks(options.method, s, options.alternative, cw.scratch);
  row.coefficient = r.coefficient;
  row.p_value = r.p_value;
  row.reason = r.reason;
  if (r.reason != nan_reason::none) return row;

  auto const step32 = static_cast<std::uint32_t>(step);
  if (options.bootstrap_resamples > 0) {
    ws.replicates.resize(options.bootstrap_resamples);
    for_each_item(pool, options.bootstrap_resamples, [&](std::size_t b, unsigned thread) {
      ws.replicates[b] = bootstrap_replicate(s, options.method, options.seed, step32,
                                             static_cast<std::uint32_t>(b),
                                             workspaces[thread].correlation.scratch);
    });
    ws.jackknife.clear();
    if (options.interval == interval_method::bca)
      jackknife(s, options.method, ws.jackknife, cw.scratch);
    row.bootstrap =
        summarize_bootstrap(ws.replicates, row.coefficient, ws.jackknife, options.interval,
                            options.confidence_level, options.threshold);
  }
  if (options.permutations > 0)
    row.permutation = permutation_test(s, options.method, options.alternative, options.permutations,
                                       options.seed, step32, cw.scratch);
  return row;
}

template <class Real>
result<step_table> correlate_over_steps_cpu(unsigned threads, host_matrix_view<Real const> scores,
                                            std::span<Real const> reference,
                                            over_steps_options const& options) {
  thread_pool pool(threads);
  // Scratch kept between calls on this thread (a controller polls the same sizes again and
  // again): fresh megabytes on every call cost page faults, 4% of a call at 15,625 models. The
  // pool's threads reach it through this reference (by its name they would get their own).
  static thread_local std::vector<step_workspace> kept;
  std::vector<step_workspace>& workspaces = kept;
  workspaces.resize(pool.size());
  sorted_column reference_sorted;
  sort_column(reference.data(), reference.size(), 1, reference_sorted);
  auto const has_reference = present_rows(reference_sorted, reference.size());
  std::size_t const rows = scores.rows(), steps = scores.cols();
  step_table table(steps);
  bool const replicates = options.bootstrap_resamples > 0 || options.permutations > 0;
  if (replicates && steps < pool.size()) {
    // Few steps: parallel over each step's replicates (the permutation test stays serial).
    for (std::size_t step = 0; step < steps; ++step) {
      sorted_column& x = workspaces[0].columns[0];
      sort_column(scores.data() + step, rows, steps, x);
      table[step] = compute_step(x, rows, step, reference_sorted, has_reference, options,
                                 std::span(workspaces), &pool);
    }
    return table;
  }
  std::size_t const blocks = (steps + steps_per_block - 1) / steps_per_block;
  pool.parallel_for(blocks, [&](std::size_t block, unsigned thread) {
    auto& ws = workspaces[thread];
    std::size_t const first = block * steps_per_block;
    std::size_t const count = std::min(steps_per_block, steps - first);
    load_columns(scores.data() + first, rows, steps, count, ws.columns.data());
    for (std::size_t c = 0; c < count; ++c) {
      sort_loaded(ws.columns[c]);
      table[first + c] = compute_step(ws.columns[c], rows, first + c, reference_sorted,
                                      has_reference, options, std::span(&ws, 1), nullptr);
    }
  });
  return table;
}

}  // namespace proxytask::stats::detail
