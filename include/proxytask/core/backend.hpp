#pragma once
/// @file
/// Compute back-ends, passed first like Thrust's execution policies. Host code sees only
/// backend::cpu; <proxytask/core/backend.cuh> adds backend::cuda and backend::auto_ under nvcc.

#include <type_traits>

namespace proxytask::backend {

/// The CPU back-end.
struct cpu_t {};

/// `correlate_over_steps(proxytask::backend::cpu, ...)`
inline constexpr cpu_t cpu{};

/// True for the policy types whose overloads are visible in this translation unit.
template <class Policy>
inline constexpr bool is_visible_v = std::is_same_v<Policy, cpu_t>;

namespace detail {
template <class>
inline constexpr bool dependent_false_v = false;
}  // namespace detail

}  // namespace proxytask::backend
