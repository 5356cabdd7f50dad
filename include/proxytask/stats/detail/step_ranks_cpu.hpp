#pragma once
// The ranks of one step, built once: every statistic of the step (its coefficient, each bootstrap
// or permutation replicate, the jackknife) is then computed from these integers, without sorting
// again. Values are sorted with an LSD radix sort on their IEEE bits: O(n) per step.

#include <proxytask/stats/detail/rank_math.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace proxytask::stats::detail {

/// A value's sort key: unsigned integers in the order of the doubles (-0.0 taken as +0.0).
inline std::uint64_t order_key(double v) noexcept {
  if (v == 0.0) v = 0.0;
  auto const bits = std::bit_cast<std::uint64_t>(v);
  return bits >> 63 ? ~bits : bits | (std::uint64_t{1} << 63);
}

struct keyed_index {
  std::uint64_t key;  // order_key of the value
  std::uint32_t index;
};

/// The present values of a column in sorted order (ties by row), with scratch for the sort.
struct sorted_column {
  std::vector<keyed_index> items;  // key and row of each non-NaN value, sorted
  std::vector<keyed_index> scratch;
  std::vector<std::uint32_t> counts;
};

/// Stable LSD radix sort by the high 32 bits of the keys (sign, exponent and 20 bits of
/// mantissa: values that differ by more than about 1e-6 relative): 3 passes of 11 bits (4 of 8
/// bits for short inputs; std::stable_sort below 256 items, where histograms would dominate); a
/// pass is skipped when all keys share its digit. Then runs of equal high halves (ties, as a
/// rule) are put in exact order.
inline void sort_by_key(sorted_column& c) {
  auto& items = c.items;
  std::size_t const n = items.size();
  auto const by_key = [](keyed_index const& a, keyed_index const& b) { return a.key < b.key; };
  if (n < 256) {
    std::stable_sort(items.begin(), items.end(), by_key);
    return;
  }
  int const bits = n < 4096 ? 8 : 11;
  int const passes = (32 + bits - 1) / bits;
  std::uint32_t const mask = (1u << bits) - 1;
  auto digit = [&](std::uint64_t key, int pass) {
    return static_cast<std::uint32_t>(key >> (32 + bits * pass)) & mask;
  };
  c.counts.assign(static_cast<std::size_t>(passes) << bits, 0);
  for (auto const& it : items)
    for (int p = 0; p < passes; ++p)
      ++c.counts[(static_cast<std::size_t>(p) << bits) + digit(it.key, p)];
  c.scratch.resize(n);
  for (int p = 0; p < passes; ++p) {
    std::uint32_t* count = c.counts.data() + (static_cast<std::size_t>(p) << bits);
    if (count[digit(items[0].key, p)] == n) continue;  // every key has this digit
    std::uint32_t offset = 0;
    for (std::uint32_t d = 0; d <= mask; ++d) offset += std::exchange(count[d], offset);
    for (auto const& it : items) c.scratch[count[digit(it.key, p)]++] = it;
    items.swap(c.scratch);
  }
  for (std::size_t i = 1; i < n; ++i) {
    if (items[i].key >= items[i - 1].key) continue;
    // Equal high halves, out of exact order: stable-sort that run.
    std::uint64_t const run = items[i].key >> 32;
    std::size_t begin = i - 1, end = i;
    while (begin > 0 && items[begin - 1].key >> 32 == run) --begin;
    while (end < n && items[end].key >> 32 == run) ++end;
    std::stable_sort(items.begin() + static_cast<std::ptrdiff_t>(begin),
                     items.begin() + static_cast<std::ptrdiff_t>(end), by_key);
    i = end - 1;
  }
}

/// Sorts the non-NaN entries of column `values` (element r at values[r * stride]); ties keep row
/// order.
template <class Real>
void sort_column(Real const* values, std::size_t rows, std::size_t stride, sorted_column& out) {
  out.items.resize(rows);
  std::size_t n = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    double const v = static_cast<double>(values[r * stride]);
    out.items[n] = {order_key(v), static_cast<std::uint32_t>(r)};
    n += !std::isnan(v);
  }
  out.items.resize(n);
  sort_by_key(out);
}

/// Per-row scratch of build_step_ranks, reused across steps without clearing: an entry counts
/// only where its stamp is the current step's epoch.
struct row_scratch {
  struct entry {
    std::uint32_t stamp, slot;  // together: one cache line per row visit
  };
  std::vector<entry> row;
  std::uint32_t epoch = 0;
};

/// One flag per row: does the row have a y (reference) value? Computed once per call.
inline std::vector<std::uint8_t> present_rows(sorted_column const& y_sorted, std::size_t rows) {
  std::vector<std::uint8_t> present(rows, 0);
  for (auto const& it : y_sorted.items) present[it.index] = 1;
  return present;
}

/// Builds the ranks of the pairs (x[r], y[r]) whose x and y are both present.
/// @param x_sorted  the present x values, sorted (sort_column)
/// @param y_sorted  the present y values, sorted (sort_column)
/// @param y_present present_rows(y_sorted, rows)
template <class Ranks>
void build_step_ranks(sorted_column const& x_sorted, sorted_column const& y_sorted,
                      std::span<std::uint8_t const> y_present, row_scratch& rs, Ranks& out) {
  std::size_t const rows = y_present.size();
  if (rs.row.size() != rows || ++rs.epoch == 0) {
    rs.row.assign(rows, {0, 0});
    rs.epoch = 1;
  }
  std::uint32_t const epoch = rs.epoch;

  // Positions are the valid rows in x order (ties by row): x groups are runs of equal values.
  // A valid row is stamped, its slot is its position.
  out.x_start.clear();
  out.x_group.resize(x_sorted.items.size());
  std::uint32_t n = 0;
  std::uint64_t previous = 0;
  for (auto const& it : x_sorted.items) {
    if (!y_present[it.index]) continue;
    if (n == 0 || it.key != previous) out.x_start.push_back(n);
    previous = it.key;
    out.x_group[n] = static_cast<std::uint32_t>(out.x_start.size() - 1);
    rs.row[it.index] = {epoch, n++};
  }
  out.n = n;
  out.x_group.resize(n);
  out.x_start.push_back(n);

  // y groups (dense ranks) of the valid rows, in y order.
  out.y_group.resize(n);
  out.y_order.resize(n);
  out.y_start.clear();
  std::uint32_t placed = 0;
  for (auto const& it : y_sorted.items) {
    auto const row = rs.row[it.index];
    if (row.stamp != epoch) continue;
    if (placed == 0 || it.key != previous) out.y_start.push_back(placed);
    previous = it.key;
    std::uint32_t const p = row.slot;
    out.y_group[p] = static_cast<std::uint32_t>(out.y_start.size() - 1);
    out.y_order[placed++] = p;
  }
  out.y_start.push_back(n);

  // The k-th valid row in row order is drawn as index k.
  out.draw_position.resize(n);
  std::uint32_t k = 0;
  for (std::size_t r = 0; r < rows; ++r)
    if (rs.row[r].stamp == epoch) out.draw_position[k++] = rs.row[r].slot;
}

}  // namespace proxytask::stats::detail
