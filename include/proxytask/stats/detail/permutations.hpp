#pragma once
// The permutation test's pairings, shared by the CPU and GPU back-ends: the same Fisher-Yates
// shuffle on the same Philox words (a Monte Carlo permutation) and the same enumeration of all n!
// pairings (an exact test). Its p-value from the counts is summarize_permutations
// (over_steps_cpu.hpp).

#include <proxytask/core/config.hpp>
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

}  // namespace proxytask::stats::detail
