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
#include <proxytask/stats/detail/rank_math.hpp>
#include <proxytask/stats/detail/step_ranks_cpu.hpp>
#include <proxytask/stats/philox.hpp>

#include <algorithm>
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
  w.count.assign(s.n, 0);
  std::uint32_t i = 0;
  for (std::uint32_t b = 0; i < s.n; ++b) {
    auto const words = draw.block(b);
    for (std::uint32_t j = 0; j < 4 && i < s.n; ++j, ++i)
      ++w.count[s.draw_position[uniform_index(words.v[j], s.n)]];
  }
  if (method == correlation::spearman) return spearman_of_resample(s, s.n, w).rho();
  return kendall_of_resample(s, s.n, w);
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

/// The permutation test of one step: the share of pairings of x with y (all n! of them when
/// n <= 8, else `permutations` random ones, Fisher-Yates on Philox) whose statistic is at least
/// as extreme as the observed one (scipy.stats.permutation_test's rules: +1 for Monte Carlo,
/// two-sided = twice the smaller tail, at most 1).
inline permutation_summary permutation_test(step_ranks const& s, correlation method,
                                            hypothesis alternative, std::size_t permutations,
                                            std::uint64_t seed, std::uint32_t step,
                                            replicate_scratch& w) {
  std::vector<std::uint32_t> y_by_row(s.n), order(s.n);
  for (std::uint32_t k = 0; k < s.n; ++k) y_by_row[k] = s.y_group[s.draw_position[k]];
  std::iota(order.begin(), order.end(), 0u);
  pair_in_row_order(s, y_by_row, order, w.y_of);
  std::int64_t const observed = permutation_statistic(s, method, w.y_of, w);

  std::size_t at_least = 0, at_most = 0, count = 0;
  auto tally = [&] {
    pair_in_row_order(s, y_by_row, order, w.y_of);
    std::int64_t const t = permutation_statistic(s, method, w.y_of, w);
    at_least += t >= observed;
    at_most += t <= observed;
    ++count;
  };
  bool const exact = s.n <= 8;
  if (exact) {
    do tally();
    while (std::next_permutation(order.begin(), order.end()));
  } else {
    for (std::size_t r = 0; r < permutations; ++r) {
      philox_stream draw(seed, step, static_cast<std::uint32_t>(r), draw_purpose::permutation);
      std::iota(order.begin(), order.end(), 0u);
      for (std::uint32_t i = s.n - 1; i > 0; --i)
        std::swap(order[i], order[uniform_index(draw(), i + 1)]);
      tally();
    }
  }
  double const adjust = exact ? 0.0 : 1.0;
  double const denominator = static_cast<double>(count) + adjust;
  double const greater = (static_cast<double>(at_least) + adjust) / denominator;
  double const less = (static_cast<double>(at_most) + adjust) / denominator;
  permutation_summary out;
  out.permutations = count;
  out.exact = exact;
  out.p_value = alternative == hypothesis::greater ? greater
                : alternative == hypothesis::less  ? less
                                                   : std::min(1.0, 2 * std::min(greater, less));
  return out;
}

/// Per-thread storage.
template <class Real>
struct step_workspace {
  correlation_workspace correlation;
  std::vector<double> replicates, jackknife;
  std::vector<Real> columns;  // a block of steps, column by column
};

/// Steps are read a block at a time: the models x steps matrix is row-major, so one pass over
/// the rows reads a block's columns a cache line at a time instead of one line per value.
inline constexpr std::size_t steps_per_block = 4;

/// Copies columns [first, first + count) of `scores` into `out`, column by column.
template <class Real>
void gather_columns(host_matrix_view<Real const> scores, std::size_t first, std::size_t count,
                    std::vector<Real>& out) {
  std::size_t const rows = scores.rows();
  out.resize(rows * count);
  for (std::size_t r = 0; r < rows; ++r) {
    Real const* row = scores.data() + r * scores.cols() + first;
    for (std::size_t c = 0; c < count; ++c) out[c * rows + r] = row[c];
  }
}

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

/// One step, start to finish, from its column (one value per model). With a pool, its
/// replicates run in parallel on it.
template <class Real>
step_row compute_step(Real const* column, std::size_t rows, std::size_t step,
                      sorted_column const& reference, std::span<std::uint8_t const> has_reference,
                      over_steps_options const& options, std::span<step_workspace<Real>> workspaces,
                      thread_pool* pool) {
  step_workspace<Real>& ws = workspaces[0];
  auto& cw = ws.correlation;
  step_row row;
  sort_column(column, rows, 1, cw.x_sorted);
  if (!cw.x_sorted.items.empty())
    row.median_score =
        static_cast<double>(column[cw.x_sorted.items[cw.x_sorted.items.size() / 2].index]);
  build_step_ranks(cw.x_sorted, reference, has_reference, cw.rows, cw.ranks);
  step_ranks const& s = cw.ranks;
  row.valid_pairs = s.n;
  // reference tool: valid only with >= 5 valid pairs and valid / models >= 0.7
  if (row.valid_pairs < options.min_valid_pairs) {
    row.reason = nan_reason::too_few_pairs;
    return row;
  }
  if (static_cast<double>(row.valid_pairs) / static_cast<double>(rows) <
      options.min_valid_fraction) {
    row.reason = nan_reason::too_few_valid_models;
    return row;
  }
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
  std::vector<step_workspace<Real>> workspaces(pool.size());
  sorted_column reference_sorted;
  sort_column(reference.data(), reference.size(), 1, reference_sorted);
  auto const has_reference = present_rows(reference_sorted, reference.size());
  std::size_t const rows = scores.rows(), steps = scores.cols();
  step_table table(steps);
  bool const replicates = options.bootstrap_resamples > 0 || options.permutations > 0;
  if (replicates && steps < pool.size()) {
    // Few steps: parallel over each step's replicates (the permutation test stays serial).
    for (std::size_t step = 0; step < steps; ++step) {
      gather_columns(scores, step, 1, workspaces[0].columns);
      table[step] = compute_step(workspaces[0].columns.data(), rows, step, reference_sorted,
                                 has_reference, options, std::span(workspaces), &pool);
    }
    return table;
  }
  std::size_t const blocks = (steps + steps_per_block - 1) / steps_per_block;
  pool.parallel_for(blocks, [&](std::size_t block, unsigned thread) {
    auto& ws = workspaces[thread];
    std::size_t const first = block * steps_per_block;
    std::size_t const count = std::min(steps_per_block, steps - first);
    gather_columns(scores, first, count, ws.columns);
    for (std::size_t c = 0; c < count; ++c)
      table[first + c] =
          compute_step(ws.columns.data() + c * rows, rows, first + c, reference_sorted,
                       has_reference, options, std::span(&ws, 1), nullptr);
  });
  return table;
}

}  // namespace proxytask::stats::detail
