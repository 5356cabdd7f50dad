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
