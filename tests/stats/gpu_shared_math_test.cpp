// The pieces the GPU back-end shares with the CPU, run on the CPU: the merge-path sort and
// Kendall score (stats/detail/merge_count.hpp), range by range as the threads of a GPU block run
// them level by level, against std::stable_sort, the quadratic inversion count and the quadratic
// definition of the score, on inputs with heavy ties; and the permutation test's pairings
// (stats/detail/permutations.hpp), with the GPU's statistic of a pairing against the CPU's.

#include <proxytask/stats/detail/merge_count.hpp>
#include <proxytask/stats/detail/permutations.hpp>
#include <proxytask/stats/over_steps.hpp>

#include <support/random_samples.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace {

namespace dt = proxytask::stats::detail;
using proxytask::testing::random_sample;

template <class Key>
std::uint64_t quadratic_inversions(std::vector<Key> const& v) {
  std::uint64_t count = 0;
  for (std::size_t i = 0; i < v.size(); ++i)
    for (std::size_t j = i + 1; j < v.size(); ++j) count += v[j] < v[i];
  return count;
}

TEST(MergeCount, SortsAndCountsStrictInversions) {
  std::uint64_t seed = 1;
  for (std::uint32_t const n : {0u, 1u, 2u, 3u, 5u, 8u, 9u, 17u, 64u, 100u, 1000u, 1025u}) {
    for (int const levels : {0, 2, 7, 50}) {
      // As many ranges as keys and more (one key or none per thread), a few, and one.
      for (std::uint32_t const ranges : {1u, 3u, 256u, 2048u}) {
        auto const sample = random_sample(n, ++seed, levels);
        std::vector<std::uint32_t> keys(n);
        for (std::uint32_t i = 0; i < n; ++i)
          keys[i] = static_cast<std::uint32_t>(levels > 0 ? sample[i] : (sample[i] + 8) * 1e6);
        auto expected = keys;
        std::stable_sort(expected.begin(), expected.end());
        std::vector<std::uint32_t> a = keys, b(n);
        std::uint64_t inversions = 0;
        std::uint32_t const* sorted =
            dt::sort_by_merges(a.data(), b.data(), n, ranges, dt::inversion_counter{&inversions});
        EXPECT_TRUE(std::equal(expected.begin(), expected.end(), sorted))
            << n << " keys, levels " << levels << ", " << ranges << " ranges";
        EXPECT_EQ(inversions, quadratic_inversions(keys))
            << n << " keys, levels " << levels << ", " << ranges << " ranges";
      }
    }
  }
}

TEST(MergeCount, TheMergeIsStable) {
  // Keys equal in their high half keep their input order: sort by the high half only.
  struct high_half {
    std::uint32_t v;
    bool operator<(high_half o) const { return (v >> 16) < (o.v >> 16); }
  };
  std::uint64_t seed = 40;
  for (std::uint32_t const n : {2u, 7u, 100u, 3000u}) {
    auto const sample = random_sample(n, ++seed, 5);
    std::vector<high_half> keys(n), spare(n);
    for (std::uint32_t i = 0; i < n; ++i)
      keys[i] = {static_cast<std::uint32_t>(sample[i]) << 16 | i};
    auto expected = keys;
    std::stable_sort(expected.begin(), expected.end());
    high_half const* sorted = dt::sort_by_merges(keys.data(), spare.data(), n, 7, dt::just_sort{});
    for (std::uint32_t i = 0; i < n; ++i)
      ASSERT_EQ(sorted[i].v, expected[i].v) << n << " keys, " << i;
  }
}

/// What the GPU's kendall_merge_kernel computes for one step, element by element: positions in x
/// order (ties in input order) with their x group's first position and y group's first y-order
/// index, then the two sorts.
template <class Key>
std::int64_t score_by_merges(std::vector<double> const& x, std::vector<double> const& y) {
  auto const n = static_cast<std::uint32_t>(x.size());
  std::vector<std::uint32_t> by_x(n), by_y(n), y_first(n), x_first(n);
  std::iota(by_x.begin(), by_x.end(), 0u);
  std::stable_sort(by_x.begin(), by_x.end(), [&](auto a, auto b) { return x[a] < x[b]; });
  by_y = by_x;
  std::stable_sort(by_y.begin(), by_y.end(), [&](auto a, auto b) { return y[a] < y[b]; });
  for (std::uint32_t j = 0; j < n; ++j)
    y_first[by_y[j]] = j > 0 && y[by_y[j - 1]] == y[by_y[j]] ? y_first[by_y[j - 1]] : j;
  std::int64_t x_ties = 0, y_ties = 0;
  for (std::uint32_t p = 0; p < n; ++p) {
    x_first[p] = p > 0 && x[by_x[p - 1]] == x[by_x[p]] ? x_first[p - 1] : p;
    x_ties += p - x_first[p];
  }
  for (std::uint32_t j = 0; j < n; ++j) y_ties += j - y_first[by_y[j]];

  std::vector<Key> a(n), b(n);
  for (std::uint32_t p = 0; p < n; ++p) a[p] = dt::xy_key<Key>(x_first[p], y_first[by_x[p]]);
  std::uint32_t const ranges = n / 5 + 1;
  Key* sorted = dt::sort_by_merges(a.data(), b.data(), n, ranges, dt::just_sort{});
  Key* spare = sorted == a.data() ? b.data() : a.data();
  std::int64_t xy_ties = 0;
  for (std::uint32_t i = 0; i < n; ++i) xy_ties += dt::equal_keys_before(sorted, i);
  for (std::uint32_t i = 0; i < n; ++i) sorted[i] = dt::y_of_key(sorted[i]);
  std::uint64_t discordant = 0;
  dt::sort_by_merges(sorted, spare, n, ranges, dt::inversion_counter{&discordant});
  std::int64_t const total = static_cast<std::int64_t>(n) * (n - 1) / 2;
  return dt::score_of_counts(total, x_ties, y_ties, xy_ties, static_cast<std::int64_t>(discordant));
}

std::int64_t quadratic_score(std::vector<double> const& x, std::vector<double> const& y) {
  std::int64_t score = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    for (std::size_t j = i + 1; j < x.size(); ++j)
      score += ((x[i] < x[j]) - (x[i] > x[j])) * ((y[i] < y[j]) - (y[i] > y[j]));
  return score;
}

TEST(MergeCount, KendallScoreEqualsTheQuadraticDefinition) {
  std::uint64_t seed = 100;
  for (std::size_t const n : {1, 2, 3, 4, 10, 31, 33, 200, 1500}) {
    for (int const levels : {0, 1, 2, 5, 40}) {
      auto const x = random_sample(n, ++seed, levels);
      auto const y = random_sample(n, ++seed, levels == 1 ? 3 : levels);
      std::int64_t const expected = quadratic_score(x, y);
      EXPECT_EQ(score_by_merges<std::uint32_t>(x, y), expected) << n << " pairs, levels " << levels;
      EXPECT_EQ(score_by_merges<std::uint64_t>(x, y), expected) << n << " pairs, levels " << levels;
    }
  }
}

TEST(MergeCount, KendallScoreOfAResampleEqualsTheQuadraticDefinition) {
  // A bootstrap replicate sorts its draws: pairs drawn several times are copies, tied on both
  // sides with each other.
  std::mt19937 gen(5);
  for (std::size_t const n : {2, 5, 33, 300}) {
    auto const x = random_sample(n, n, 7);
    auto const y = random_sample(n, n + 1, 0);
    std::uniform_int_distribution<std::size_t> pick(0, n - 1);
    std::vector<double> rx(n), ry(n);
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t const j = pick(gen);
      rx[i] = x[j];
      ry[i] = y[j];
    }
    EXPECT_EQ(score_by_merges<std::uint32_t>(rx, ry), quadratic_score(rx, ry)) << n << " draws";
  }
}

TEST(PermutationOrders, EnumeratesEveryPermutationOnce) {
  for (std::uint32_t n = 1; n <= dt::exact_permutation_pairs; ++n) {
    std::set<std::vector<std::uint32_t>> seen;
    std::vector<std::uint32_t> order(n);
    for (std::uint32_t r = 0; r < dt::factorial(n); ++r) {
      dt::nth_order(order.data(), n, r);
      auto sorted = order;
      std::sort(sorted.begin(), sorted.end());
      for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i) << "n " << n << ", r " << r;
      seen.insert(order);
    }
    EXPECT_EQ(seen.size(), dt::factorial(n)) << "n " << n;
  }
}

TEST(PermutationOrders, ShufflesUniformlyFromPhilox) {
  // Every value lands in every place about equally often over many replicates of 5 values.
  std::uint32_t const n = 5, replicates = 50000;
  std::vector<std::vector<std::uint32_t>> placed(n, std::vector<std::uint32_t>(n));
  std::vector<std::uint32_t> order(n);
  for (std::uint32_t r = 0; r < replicates; ++r) {
    proxytask::stats::philox_stream draw(7, 3, r, proxytask::stats::draw_purpose::permutation);
    dt::shuffled_order(order.data(), n, draw);
    for (std::uint32_t i = 0; i < n; ++i) ++placed[order[i]][i];
  }
  for (auto const& value : placed)
    for (std::uint32_t count : value) EXPECT_NEAR(count, replicates / n, 500);
}

/// shuffled_order as a GPU block runs it in rounds (reserve_swap for every position, then
/// run_reserved_swap for every position), visiting positions in a fresh random order in each
/// phase as threads might. Returns the number of rounds.
std::uint32_t shuffle_in_rounds(std::vector<std::uint32_t>& order, std::uint32_t n,
                                proxytask::stats::philox_stream const& draw, std::mt19937& visits) {
  std::vector<std::uint32_t> target(n), blocks(dt::swap_target_blocks(n)), positions(n);
  std::vector<std::uint64_t> reserved(n, 0);
  std::iota(blocks.begin(), blocks.end(), 0u);
  std::shuffle(blocks.begin(), blocks.end(), visits);
  for (std::uint32_t const b : blocks) dt::swap_targets_of_block(target.data(), n, draw, b);
  if (n > 0) target[0] = dt::swap_done;
  order.resize(n);
  std::iota(order.begin(), order.end(), 0u);
  std::iota(positions.begin(), positions.end(), 0u);
  for (std::uint32_t round = 1;; ++round) {
    std::shuffle(positions.begin(), positions.end(), visits);
    for (std::uint32_t const i : positions)
      dt::reserve_swap(target.data(), round, i, [&](std::uint32_t slot, std::uint64_t priority) {
        reserved[slot] = std::max(reserved[slot], priority);
      });
    std::shuffle(positions.begin(), positions.end(), visits);
    bool pending = false;
    for (std::uint32_t const i : positions)
      pending |= dt::run_reserved_swap(order.data(), target.data(), reserved.data(), round, i);
    if (!pending) return round;
  }
}

TEST(PermutationOrders, TheShuffleInRoundsIsTheSequentialShuffle) {
  std::mt19937 visits(11);
  for (std::uint32_t const n : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 9u, 33u, 100u, 1000u, 4097u, 15625u}) {
    std::uint32_t const replicates = n <= 1000 ? 20 : 3;
    for (std::uint32_t r = 0; r < replicates; ++r) {
      proxytask::stats::philox_stream const draw(3, n, r,
                                                 proxytask::stats::draw_purpose::permutation);
      std::vector<std::uint32_t> expected(n), order;
      auto sequential = draw;
      dt::shuffled_order(expected.data(), n, sequential);
      std::uint32_t const rounds = shuffle_in_rounds(order, n, draw, visits);
      ASSERT_EQ(order, expected) << n << " pairs, replicate " << r;
      // Logarithmic depth: about 2.8 log2(n) rounds on random targets (31 at 15,625).
      EXPECT_LE(rounds, 4 * std::bit_width(n) + 4) << n << " pairs, replicate " << r;
    }
  }
}

/// The step_ranks of n pairs without NaN: positions in x order (ties in row order), dense groups.
dt::step_ranks ranks_of(std::vector<double> const& x, std::vector<double> const& y) {
  auto const n = static_cast<std::uint32_t>(x.size());
  dt::step_ranks s;
  s.n = n;
  std::vector<std::uint32_t> row_at(n);  // the row at each position
  std::iota(row_at.begin(), row_at.end(), 0u);
  std::stable_sort(row_at.begin(), row_at.end(), [&](auto a, auto b) { return x[a] < x[b]; });
  s.draw_position.resize(n);
  s.x_group.resize(n);
  for (std::uint32_t p = 0; p < n; ++p) {
    s.draw_position[row_at[p]] = p;
    if (p == 0 || x[row_at[p]] != x[row_at[p - 1]]) s.x_start.push_back(p);
    s.x_group[p] = static_cast<std::uint32_t>(s.x_start.size() - 1);
  }
  s.x_start.push_back(n);
  s.y_order.resize(n);
  std::iota(s.y_order.begin(), s.y_order.end(), 0u);
  std::stable_sort(s.y_order.begin(), s.y_order.end(),
                   [&](auto a, auto b) { return y[row_at[a]] < y[row_at[b]]; });
  s.y_group.resize(n);
  for (std::uint32_t j = 0; j < n; ++j) {
    if (j == 0 || y[row_at[s.y_order[j]]] != y[row_at[s.y_order[j - 1]]]) s.y_start.push_back(j);
    s.y_group[s.y_order[j]] = static_cast<std::uint32_t>(s.y_start.size() - 1);
  }
  s.y_start.push_back(n);
  return s;
}

TEST(PermutationStatistic, TheGpuStatisticEqualsTheCpuOneForEveryPairing) {
  // The GPU's step layout (group ends and first indices instead of dense groups) and its O(n^2)
  // Kendall count, against the CPU's statistic, over random pairings of tied data.
  constexpr std::uint32_t cap = 32;
  std::uint64_t seed = 900;
  for (std::uint32_t const n : {2u, 3u, 8u, 9u, 20u, 32u}) {
    auto const x = random_sample(n, ++seed, 4);
    auto const y = random_sample(n, ++seed, 5);
    dt::step_ranks const s = ranks_of(x, y);
    dt::permutation_step<cap> gpu{};
    for (std::uint32_t p = 0; p < n; ++p) {
      std::uint32_t const x_lo = s.x_start[s.x_group[p]], x_hi = s.x_start[s.x_group[p] + 1];
      gpu.x_rank[p] = x_lo + x_hi + 1;
      gpu.x_hi[p] = x_hi;
    }
    std::vector<std::uint32_t> y_by_row(n);
    for (std::uint32_t k = 0; k < n; ++k) {
      std::uint32_t const p = s.draw_position[k], h = s.y_group[p];
      gpu.draw[k] = p;
      gpu.y_group[k] = s.y_start[h];
      gpu.y_rank[k] = s.y_start[h] + s.y_start[h + 1] + 1;
      y_by_row[k] = h;
    }
    dt::replicate_scratch w;
    std::vector<std::uint32_t> order(n), y_of(n);
    for (std::uint32_t r = 0; r < 200; ++r) {
      proxytask::stats::philox_stream draw(seed, 0, r, proxytask::stats::draw_purpose::permutation);
      dt::shuffled_order(order.data(), n, draw);
      for (auto method : {proxytask::stats::correlation::spearman,
                          proxytask::stats::correlation::kendall_tau_b}) {
        dt::pair_in_row_order(s, y_by_row, order, w.y_of);
        std::int64_t const cpu = dt::permutation_statistic(s, method, w.y_of, w);
        EXPECT_EQ(dt::permutation_statistic(gpu, method, n, order.data(), y_of.data()), cpu)
            << n << " pairs, pairing " << r << ", " << proxytask::stats::to_string(method);
      }
    }
  }
}

/// What the GPU's jackknife_kernel computes for one step, element by element: the pairs' xy keys
/// sorted, the dominance sort with its counts, the prefix sums of the other side's ranks, and
/// the shared formulas.
std::vector<double> jackknife_by_merges(dt::step_ranks const& s,
                                        proxytask::stats::correlation method) {
  std::uint32_t const n = s.n;
  std::vector<std::uint32_t> x_lo(n), x_hi(n), y_lo(n), y_hi(n);
  for (std::uint32_t p = 0; p < n; ++p) {
    x_lo[p] = s.x_start[s.x_group[p]];
    x_hi[p] = s.x_start[s.x_group[p] + 1];
    y_lo[p] = s.y_start[s.y_group[p]];
    y_hi[p] = s.y_start[s.y_group[p] + 1];
  }
  std::vector<std::uint64_t> xy(n), spare(n), keys(n);
  for (std::uint32_t p = 0; p < n; ++p) xy[p] = dt::xy_key<std::uint64_t>(x_lo[p], y_lo[p]);
  std::uint32_t const ranges = n / 3 + 1;
  std::uint64_t const* sorted =
      dt::sort_by_merges(xy.data(), spare.data(), n, ranges, dt::just_sort{});
  for (std::uint32_t i = 0; i < n; ++i) keys[i] = dt::y_index_key(dt::y_of_key(sorted[i]), i);
  std::vector<std::uint64_t> other(n);
  std::vector<std::uint32_t> greater(n), at_least(n);
  std::uint64_t const* by_y =
      dt::sort_by_merges(keys.data(), other.data(), n, ranges, dt::later_at_least{at_least.data()});
  for (std::uint32_t q = 0; q < n; ++q) {
    auto const i = static_cast<std::uint32_t>(by_y[q]);
    greater[i] = at_least[i] - dt::later_in_y_group(by_y, n, q);
  }
  std::vector<std::int64_t> b_before(n + 1), a_before(n + 1);  // over positions, over y order
  for (std::uint32_t p = 0; p < n; ++p) b_before[p + 1] = b_before[p] + y_lo[p] + y_hi[p] + 1;
  for (std::uint32_t j = 0; j < n; ++j) {
    std::uint32_t const p = s.y_order[j];
    a_before[j + 1] = a_before[j] + x_lo[p] + x_hi[p] + 1;
  }
  dt::spearman_sums total;
  for (std::uint32_t p = 0; p < n; ++p) {
    std::int64_t const ra = x_lo[p] + x_hi[p] + 1, rb = y_lo[p] + y_hi[p] + 1;
    total.ab += ra * rb;
    total.aa += ra * ra;
    total.bb += rb * rb;
  }
  std::vector<std::int64_t> fenwick;
  dt::kendall_counts const all = dt::kendall_of(s, fenwick);
  std::vector<double> out(n, std::nan(""));
  if (n < 3) return out;
  for (std::uint32_t p = 0; p < n; ++p) {
    dt::jackknife_pair const j =
        dt::jackknife_pair_of(sorted, n, x_lo[p], x_hi[p], y_lo[p], y_hi[p], greater.data(),
                              at_least.data(), b_before.data(), a_before.data());
    out[p] = method == proxytask::stats::correlation::spearman ? dt::spearman_without(j, n, total)
                                                               : dt::kendall_without(j, n, all);
  }
  return out;
}

TEST(JackknifeByMerges, EqualsTheCpuJackknifeBitForBit) {
  std::uint64_t seed = 1200;
  for (std::uint32_t const n : {1u, 2u, 3u, 4u, 9u, 33u, 300u, 2000u}) {
    for (int const levels : {0, 3, 30}) {
      auto const x = random_sample(n, ++seed, levels);
      auto const y = random_sample(n, ++seed, levels == 3 ? 2 : levels);
      dt::step_ranks const s = ranks_of(x, y);
      for (auto method : {proxytask::stats::correlation::spearman,
                          proxytask::stats::correlation::kendall_tau_b}) {
        std::vector<double> cpu;
        dt::replicate_scratch w;
        dt::jackknife(s, method, cpu, w);
        auto const gpu = jackknife_by_merges(s, method);
        ASSERT_EQ(gpu.size(), cpu.size());
        for (std::uint32_t p = 0; p < n; ++p)
          EXPECT_TRUE(std::bit_cast<std::uint64_t>(gpu[p]) ==
                          std::bit_cast<std::uint64_t>(cpu[p]) ||
                      (std::isnan(gpu[p]) && std::isnan(cpu[p])))
              << n << " pairs, levels " << levels << ", " << proxytask::stats::to_string(method)
              << ", pair " << p << ": " << gpu[p] << " vs CPU " << cpu[p];
      }
      if (HasFailure()) return;
    }
  }
}

}  // namespace
