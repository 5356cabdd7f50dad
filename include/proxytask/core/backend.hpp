#pragma once
/// @file
/// Compute back-ends, passed first like Thrust's execution policies. Host code sees only
/// backend::cpu; <proxytask/core/backend.cuh> adds backend::cuda and backend::auto_ under nvcc.

#include <type_traits>

namespace proxytask::backend {

/// The CPU back-end, on `threads` threads (0: all hardware threads). Results do not depend on
/// the thread count.
struct cpu_t {
  unsigned threads = 1;
  /// `correlate_over_steps(backend::cpu.with_threads(8), ...)`
  constexpr cpu_t with_threads(unsigned n) const noexcept { return cpu_t{n}; }
};

/// `correlate_over_steps(proxytask::backend::cpu, ...)`: one thread.
inline constexpr cpu_t cpu{};

/// True for the policy types whose overloads are visible in this translation unit.
template <class Policy>
inline constexpr bool is_visible_v = std::is_same_v<Policy, cpu_t>;

namespace detail {
template <class>
inline constexpr bool dependent_false_v = false;
}  // namespace detail

}  // namespace proxytask::backend
