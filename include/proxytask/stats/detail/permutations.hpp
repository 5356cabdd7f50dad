#pragma once
// The permutation test's pairings, shared by the CPU and GPU back-ends: the same Fisher-Yates
// shuffle on the same Philox words (a Monte Carlo permutation) and the same enumeration of all n!
// pairings (an exact test); and the GPU's statistic of a pairing of few pairs. Its p-value from
// the counts is summarize_permutations (over_steps_cpu.hpp).

#include <proxytask/core/config.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/philox.hpp>

#include <cstdint>
#include <type_traits>

namespace proxytask::stats::detail {

/// At most this many pairs: the test enumerates all n! pairings (exact) instead of drawing.
inline constexpr std::uint32_t exact_permutation_pairs = 8;

/// n! for the exact test's n (at most 12 fits 32 bits).
PROXYTASK_HD constexpr std::uint32_t factorial(std::uint32_t n) noexcept {
  std::uint32_t f = 1;
  for (std::uint32_t i = 2; i <= n; ++i) f *= i;
  return f;
}

/// order[0, n) = a uniform permutation of 0..n-1: Fisher-Yates from the back, index i - 1
/// swapped with uniform_index(next word, i). `Order` indexes n values (a pointer; on the GPU a
/// thread_column).
template <class Order>
PROXYTASK_HD void shuffled_order(Order order, std::uint32_t n, philox_stream& draw) noexcept {
  using value_t = std::remove_reference_t<decltype(order[0])>;
  for (std::uint32_t i = 0; i < n; ++i) order[i] = static_cast<value_t>(i);
  for (std::uint32_t i = n; i > 1; --i) {
    std::uint32_t const j = uniform_index(draw(), i);
    value_t const t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
}

// shuffled_order by many threads at once (one GPU block per pairing), with the same result: its
// swaps in rounds (Shun, Gu, Blelloch, Fineman and Gibbons, "Sequential random permutation, list
// contraction and tree contraction are highly parallel", SODA 2015). The swap at position i
// (i = n - 1 down to 1; its target, at most i, from word n - 1 - i of the stream) may run once
// every earlier swap (at a higher position) that touches position i or its target has run. In
// each round every swap still to run reserves both its positions with its priority (round, i),
// the highest kept; a swap that holds both runs, and the swaps that run in one round touch
// disjoint positions. Random targets take about 2.8 log2(n) rounds (31 at 15,625 pairs) and
// 3.5 n reservations in all, instead of n swaps one after another.

/// The target of a position whose swap has run, or of position 0, which has none (a target is
/// at most n - 1 < 2^32 - 1).
inline constexpr std::uint32_t swap_done = ~std::uint32_t{0};

/// How many Philox blocks (four words each) hold the n - 1 targets of n positions.
PROXYTASK_HD constexpr std::uint32_t swap_target_blocks(std::uint32_t n) noexcept {
  return n < 2 ? 0 : static_cast<std::uint32_t>((std::uint64_t{n} - 1 + 3) / 4);
}

/// The targets from Philox block b of the stream (b < swap_target_blocks(n)): word w = 4 b + q
/// is shuffled_order's draw for position i = n - 1 - w, the target uniform_index(word, i + 1).
PROXYTASK_HD inline void swap_targets_of_block(std::uint32_t* target, std::uint32_t n,
                                               philox_stream const& draw,
                                               std::uint32_t b) noexcept {
  r123array4x32 const words = draw.block(b);
  for (std::uint32_t q = 0; q < 4; ++q) {
    std::uint64_t const w = 4 * std::uint64_t{b} + q;
    if (w + 1 >= n) return;  // words 0 .. n - 2: positions n - 1 down to 1
    auto const i = static_cast<std::uint32_t>(n - 1 - w);
    target[i] = uniform_index(words.v[q], i + 1);
  }
}

/// The priority of the swap at position i in a round: a later round overrides what earlier ones
/// left, and within a round the higher position (the earlier swap) wins.
PROXYTASK_HD constexpr std::uint64_t swap_reservation(std::uint32_t round,
                                                      std::uint32_t i) noexcept {
  return std::uint64_t{round} << 32 | i;
}

/// A round's first phase at position i: its swap, if still to run, reserves both of its
/// positions; `reserve(position, priority)` keeps the highest (atomicMax on the GPU).
template <class Reserve>
PROXYTASK_HD void reserve_swap(std::uint32_t const* target, std::uint32_t round, std::uint32_t i,
                               Reserve&& reserve) noexcept {
  std::uint32_t const j = target[i];
  if (j == swap_done) return;
  reserve(i, swap_reservation(round, i));
  reserve(j, swap_reservation(round, i));
}

/// A round's second phase at position i, once every first phase is done: the swap runs if it
/// holds both reservations. Returns whether it is still to run.
template <class Order, class Priority>
PROXYTASK_HD bool run_reserved_swap(Order order, std::uint32_t* target, Priority const* reserved,
                                    std::uint32_t round, std::uint32_t i) noexcept {
  std::uint32_t const j = target[i];
  if (j == swap_done) return false;
  std::uint64_t const mine = swap_reservation(round, i);
  if (reserved[i] != mine || reserved[j] != mine) return true;
  auto const t = order[i];
  order[i] = order[j];
  order[j] = t;
  target[i] = swap_done;
  return false;
}

/// order[0, n) = permutation number r of 0..n-1 (r < n!, n <= 12), by its factorial-base digits:
/// r = 0 .. n! - 1 gives every permutation once.
template <class Order>
PROXYTASK_HD void nth_order(Order order, std::uint32_t n, std::uint32_t r) noexcept {
  using value_t = std::remove_reference_t<decltype(order[0])>;
  std::uint32_t unused = (1u << n) - 1;  // bit v: value v is not placed yet
  for (std::uint32_t k = 0; k < n; ++k) {
    std::uint32_t const f = factorial(n - 1 - k);
    std::uint32_t d = r / f;  // the d-th unused value, counting from the smallest
    r %= f;
    std::uint32_t v = 0;
    for (;; ++v) {
      if ((unused >> v & 1u) != 0 && d-- == 0) break;
    }
    unused &= ~(1u << v);
    order[k] = static_cast<value_t>(v);
  }
}

/// What a permutation test counts: pairings whose statistic is at least / at most the
/// observed one, out of `count`.
struct permutation_counts {
  std::uint64_t at_least = 0, at_most = 0, count = 0;
  bool exact = false;
};

/// A step's pairs as the permutation statistic reads them (at most Capacity): per position
/// (x order) its doubled x rank and the end of its x group; per valid pair in model order its
/// position, and its y group's first index in y order and doubled y rank.
template <std::uint32_t Capacity>
struct permutation_step {
  std::uint32_t x_rank[Capacity], x_hi[Capacity], draw[Capacity];
  std::uint32_t y_group[Capacity], y_rank[Capacity];
};

/// The statistic of over_steps_cpu.hpp's permutation_statistic for the pairing `order` (the k-th
/// pair in model order gets the y of pair order[k]): Spearman's sum of doubled-rank products,
/// or Kendall's concordant - discordant over pairs in different x groups, by its definition
/// (O(n^2): for the few pairs a GPU thread holds). y_of is scratch for n values.
template <std::uint32_t Capacity, class Order>
PROXYTASK_HD std::int64_t permutation_statistic(permutation_step<Capacity> const& p,
                                                correlation method, std::uint32_t n, Order order,
                                                Order y_of) noexcept {
  using value_t = std::remove_reference_t<decltype(y_of[0])>;
  std::int64_t statistic = 0;
  if (method == correlation::spearman) {
    for (std::uint32_t k = 0; k < n; ++k)
      statistic += static_cast<std::int64_t>(p.x_rank[p.draw[k]]) * p.y_rank[order[k]];
    return statistic;
  }
  for (std::uint32_t k = 0; k < n; ++k) y_of[p.draw[k]] = static_cast<value_t>(p.y_group[order[k]]);
  for (std::uint32_t i = 0; i < n; ++i) {
    auto const y = y_of[i];
    for (std::uint32_t j = p.x_hi[i]; j < n; ++j) statistic += (y_of[j] > y) - (y_of[j] < y);
  }
  return statistic;
}

}  // namespace proxytask::stats::detail
