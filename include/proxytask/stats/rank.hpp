#pragma once
/// @file
/// Ranks with ties: scipy.stats.rankdata's 'average' method, and the doubled ranks (always
/// integers) from which every coefficient is computed exactly.

#include <proxytask/core/config.hpp>
#include <proxytask/stats/detail/step_ranks_cpu.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace proxytask::stats {

/// Doubled average ranks: 2 x the 1-based average rank. A tie group at sorted positions i..j
/// (1-based) gets i + j, so the ranks are integers and sums of them are exact.
/// @param[in]  values the sample; no NaN
/// @param[out] ranks  one rank per value
/// @throws proxytask::logic_error on a size mismatch or a NaN value
template <class Real>
void doubled_ranks(std::span<Real const> values, std::span<std::int64_t> ranks) {
  PROXYTASK_EXPECTS(values.size() == ranks.size(), "doubled_ranks: one rank per value");
  for (Real v : values) PROXYTASK_EXPECTS(!std::isnan(v), "doubled_ranks: NaN cannot be ranked");
  detail::sorted_column sorted;
  detail::sort_column(values.data(), values.size(), 1, sorted);
  std::size_t i = 0;
  for (std::uint32_t const end : sorted.group_end) {
    // Sorted positions [i, end) are one tie group.
    auto const rank = detail::doubled_rank(static_cast<std::int64_t>(i), end);
    for (; i < end; ++i) ranks[sorted.row(i)] = rank;
  }
}

/// Average ranks, 1-based, ties sharing the mean of their positions: scipy.stats.rankdata(values).
/// @throws proxytask::logic_error on a NaN value
template <class Real>
std::vector<double> average_ranks(std::span<Real const> values) {
  std::vector<std::int64_t> doubled(values.size());
  doubled_ranks(values, std::span<std::int64_t>(doubled));
  std::vector<double> ranks(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) ranks[i] = static_cast<double>(doubled[i]) / 2;
  return ranks;
}

}  // namespace proxytask::stats
