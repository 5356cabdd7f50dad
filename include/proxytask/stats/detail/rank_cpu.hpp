#pragma once
// Sorting and ranking kernels of the CPU back-end. No argument checks here: the public
// functions check, and the batched paths call these on data they have already filtered.

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace proxytask::stats::detail {

/// A value with its position, so that one std::sort gives a deterministic (stable) order.
template <class Real>
struct keyed {
  Real value;
  std::uint32_t index;
  friend bool operator<(keyed const& a, keyed const& b) noexcept {
    return a.value < b.value || (a.value == b.value && a.index < b.index);
  }
};

/// Sorts (value, index) pairs of `values` into `sorted`.
template <class Real>
void sort_keyed(std::span<Real const> values, std::vector<keyed<Real>>& sorted) {
  sorted.resize(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    sorted[i] = {values[i], static_cast<std::uint32_t>(i)};
  std::sort(sorted.begin(), sorted.end());
}

/// Doubled average ranks of `values` (no NaN) into `ranks`; `scratch` is reused storage.
template <class Real>
void doubled_ranks(std::span<Real const> values, std::span<std::int64_t> ranks,
                   std::vector<keyed<Real>>& scratch) {
  sort_keyed(values, scratch);
  std::size_t const n = scratch.size();
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && scratch[j].value == scratch[i].value) ++j;
    // 1-based positions i+1 .. j share the average (i+1+j)/2; doubled: i + 1 + j.
    auto const rank = static_cast<std::int64_t>(i + 1 + j);
    for (std::size_t k = i; k < j; ++k) ranks[scratch[k].index] = rank;
    i = j;
  }
}

}  // namespace proxytask::stats::detail
