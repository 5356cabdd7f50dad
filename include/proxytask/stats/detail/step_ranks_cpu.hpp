#pragma once
// The ranks of one step, built once: every statistic of the step (its coefficient, each bootstrap
// or permutation replicate, the jackknife) is then computed from these integers, without sorting
// again. Values are sorted with an LSD radix sort on their IEEE bits: O(n) per step.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/stats/detail/rank_math.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace proxytask::stats::detail {

inline constexpr std::uint64_t sign_bit = std::uint64_t{1} << 63;

/// A value's sort key: unsigned integers in the order of the doubles (-0.0 taken as +0.0).
inline std::uint64_t order_key(double v) noexcept {
  auto const bits = std::bit_cast<std::uint64_t>(v + 0.0);  // -0.0 + 0.0 is +0.0
  // Negative values: every bit flipped; the others: the sign bit set. No branch.
  return bits ^ (static_cast<std::uint64_t>(static_cast<std::int64_t>(bits) >> 63) | sign_bit);
}

/// The value of a key: the inverse of order_key.
inline double key_value(std::uint64_t key) noexcept {
  return std::bit_cast<double>(key & sign_bit ? key ^ sign_bit : ~key);
}

/// The present (non-NaN) values of a column in sorted order, ties in row order, and the runs of
/// equal values. The radix sort is by the high 32 bits of the keys (sign, exponent and 20 bits of
/// mantissa) with the row in the low 32 bits of an item, so items are 8 bytes; the low key halves
/// stay in a table by row and order the rare runs whose high halves are equal but values not.
struct sorted_column {
  std::vector<std::uint64_t> items;      ///< high key half << 32 | row, in sorted order
  std::vector<std::uint32_t> group_end;  ///< runs of equal values: items[end of previous, end)
  std::vector<std::uint32_t> low;        ///< per row: the low key half
  std::vector<std::uint64_t> scratch;    // of the sort
  std::vector<std::uint32_t> counts;

  std::size_t size() const noexcept { return items.size(); }
  std::uint32_t row(std::size_t i) const noexcept { return static_cast<std::uint32_t>(items[i]); }
  double value(std::size_t i) const noexcept {
    return key_value((items[i] >> 32) << 32 | low[row(i)]);
  }
};

/// Loads `Count` columns of a row-major table into `out[0..Count)`, unsorted: value (r, c) is
/// first[r * row_stride + c]. One pass over the rows reads all the columns' values of a row from
/// one or two cache lines; a column at a time would read a line per value.
template <std::size_t Count, class Real>
void load_columns(Real const* first, std::size_t rows, std::size_t row_stride, sorted_column* out) {
  // Local copies, and a column count known at compile time: the per-column pointers and counters
  // then stay in registers (about 4x faster than with a run-time count).
  // (Their range is found by the sort, in a pass of its own: tracking it here too cost more, as
  // the per-column state then no longer fits the registers.)
  std::uint64_t* items[Count];
  std::uint32_t* low[Count];
  std::size_t n[Count];
  for (std::size_t c = 0; c < Count; ++c) {
    out[c].items.resize(rows);
    out[c].low.resize(rows);
    items[c] = out[c].items.data();
    low[c] = out[c].low.data();
    n[c] = 0;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    Real const* row = first + r * row_stride;
    for (std::size_t c = 0; c < Count; ++c) {
      auto const v = static_cast<double>(row[c]);
      std::uint64_t const key = order_key(v);
      items[c][n[c]] = key >> 32 << 32 | r;  // kept only if v is present
      low[c][r] = static_cast<std::uint32_t>(key);
      n[c] += !std::isnan(v);
    }
  }
  for (std::size_t c = 0; c < Count; ++c) out[c].items.resize(n[c]);
}

/// At most this many columns are loaded in one pass over the rows (more did not pay on an x86
/// server: the write streams and counters outgrow the registers and L1).
inline constexpr std::size_t max_columns_per_load = 8;

/// load_columns<Count> for a count known at run time, 1 <= count <= max_columns_per_load.
template <class Real>
void load_columns(Real const* first, std::size_t rows, std::size_t row_stride, std::size_t count,
                  sorted_column* out) {
  PROXYTASK_EXPECTS(rows <= std::numeric_limits<std::uint32_t>::max(),
                    "load_columns: a row index must fit in 32 bits");
  switch (count) {
    case 1: return load_columns<1>(first, rows, row_stride, out);
    case 2: return load_columns<2>(first, rows, row_stride, out);
    case 3: return load_columns<3>(first, rows, row_stride, out);
    case 4: return load_columns<4>(first, rows, row_stride, out);
    case 5: return load_columns<5>(first, rows, row_stride, out);
    case 6: return load_columns<6>(first, rows, row_stride, out);
    case 7: return load_columns<7>(first, rows, row_stride, out);
    case 8: return load_columns<8>(first, rows, row_stride, out);
    default: PROXYTASK_EXPECTS(false, "load_columns: 1 to max_columns_per_load columns at once");
  }
}

/// The digit histograms of the radix sort's passes (Passes of them, `bits` wide each), of the
/// items' high key halves less `base`.
template <int Passes>
void count_digits(std::span<std::uint64_t const> items, std::uint32_t base, int bits,
                  std::uint32_t* counts) {
  std::uint32_t const mask = (1u << bits) - 1;
  for (std::uint64_t const item : items) {
    std::uint32_t const key = static_cast<std::uint32_t>(item >> 32) - base;
    for (int p = 0; p < Passes; ++p) ++counts[(p << bits) + ((key >> (bits * p)) & mask)];
  }
}

/// Sorts a loaded column and finds its runs of equal values. Stable LSD radix sort by the high key
/// halves less their minimum, with only the passes their range needs (11-bit digits; 8-bit below
/// 4096 items, where histograms would dominate; std::sort below 256). Then each run of equal high
/// halves is checked on the low halves, and put in exact order when they differ.
inline void sort_loaded(sorted_column& c) {
  auto& items = c.items;
  std::size_t const n = items.size();
  if (n < 256) {
    std::sort(items.begin(), items.end());  // by high half, then row
  } else {
    int const bits = n < 4096 ? 8 : 11;
    std::uint32_t const mask = (1u << bits) - 1;
    // Digits of the high halves less their minimum: only as many passes as their range needs.
    std::uint32_t base = ~std::uint32_t{0}, top = 0;
    for (std::uint64_t const item : items) {
      auto const high = static_cast<std::uint32_t>(item >> 32);
      base = std::min(base, high);
      top = std::max(top, high);
    }
    int const passes = (std::bit_width(top - base) + bits - 1) / bits;
    c.counts.assign(static_cast<std::size_t>(passes) << bits, 0);
    switch (passes) {  // the digit loop unrolled: one counter per pass, no branch per item
      case 1: count_digits<1>(items, base, bits, c.counts.data()); break;
      case 2: count_digits<2>(items, base, bits, c.counts.data()); break;
      case 3: count_digits<3>(items, base, bits, c.counts.data()); break;
      case 4: count_digits<4>(items, base, bits, c.counts.data()); break;
      default: break;  // all keys equal: no pass
    }
    c.scratch.resize(n);
    for (int p = 0; p < passes; ++p) {
      std::uint32_t* count = c.counts.data() + (static_cast<std::size_t>(p) << bits);
      std::uint32_t offset = 0;
      for (std::uint32_t d = 0; d <= mask; ++d) offset += std::exchange(count[d], offset);
      std::uint64_t* out = c.scratch.data();
      int const shift = bits * p;
      for (std::uint64_t const item : items)
        out[count[((static_cast<std::uint32_t>(item >> 32) - base) >> shift) & mask]++] = item;
      items.swap(c.scratch);
    }
  }
  // Runs of equal values: runs of equal high halves whose low halves agree (as a rule); the others
  // are put in exact order (low half, then row) first.
  c.group_end.clear();
  std::uint32_t const* low = c.low.data();
  auto low_of = [&](std::uint64_t item) { return low[static_cast<std::uint32_t>(item)]; };
  for (std::size_t i = 0; i < n;) {
    std::uint64_t const high = items[i] >> 32;
    std::uint32_t const first_low = low_of(items[i]);
    std::size_t j = i + 1;
    bool differ = false;
    for (; j < n && items[j] >> 32 == high; ++j) differ |= low_of(items[j]) != first_low;
    if (!differ) {
      c.group_end.push_back(static_cast<std::uint32_t>(j));
    } else {
      auto const begin = items.begin() + static_cast<std::ptrdiff_t>(i);
      std::sort(begin, begin + static_cast<std::ptrdiff_t>(j - i),
                [&](std::uint64_t a, std::uint64_t b) {
                  return low_of(a) != low_of(b) ? low_of(a) < low_of(b) : a < b;
                });
      for (std::size_t k = i + 1; k <= j; ++k)
        if (k == j || low_of(items[k]) != low_of(items[k - 1]))
          c.group_end.push_back(static_cast<std::uint32_t>(k));
    }
    i = j;
  }
}

/// Sorts the non-NaN entries of a column (element r at values[r * stride]); ties keep row order.
template <class Real>
void sort_column(Real const* values, std::size_t rows, std::size_t stride, sorted_column& out) {
  load_columns(values, rows, stride, 1, &out);
  sort_loaded(out);
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
  for (std::size_t i = 0; i < y_sorted.size(); ++i) present[y_sorted.row(i)] = 1;
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
  out.x_group.resize(x_sorted.size());
  std::uint32_t n = 0;
  std::size_t i = 0;
  for (std::uint32_t const end : x_sorted.group_end) {
    std::uint32_t const group_begin = n;
    for (; i < end; ++i) {
      std::uint32_t const r = x_sorted.row(i);
      if (!y_present[r]) continue;
      if (n == group_begin) out.x_start.push_back(n);
      out.x_group[n] = static_cast<std::uint32_t>(out.x_start.size() - 1);
      rs.row[r] = {epoch, n++};
    }
  }
  out.n = n;
  out.x_group.resize(n);
  out.x_start.push_back(n);

  // y groups (dense ranks) of the valid rows, in y order.
  out.y_group.resize(n);
  out.y_order.resize(n);
  out.y_start.clear();
  std::uint32_t placed = 0;
  i = 0;
  for (std::uint32_t const end : y_sorted.group_end) {
    std::uint32_t const group_begin = placed;
    for (; i < end; ++i) {
      auto const row = rs.row[y_sorted.row(i)];
      if (row.stamp != epoch) continue;
      if (placed == group_begin) out.y_start.push_back(placed);
      std::uint32_t const p = row.slot;
      out.y_group[p] = static_cast<std::uint32_t>(out.y_start.size() - 1);
      out.y_order[placed++] = p;
    }
  }
  out.y_start.push_back(n);

  // The k-th valid row in row order is drawn as index k.
  out.draw_position.resize(n);
  std::uint32_t k = 0;
  for (std::size_t r = 0; r < rows; ++r)
    if (rs.row[r].stamp == epoch) out.draw_position[k++] = rs.row[r].slot;
}

/// Spearman's sums of the pairs (x[r], y[r]) present on both sides, straight from the sorted
/// columns: the plain coefficient needs none of step_ranks. The x pass gives each valid row its
/// doubled x rank (0 for the others); the y pass sums them per y group.
/// @param y_present     present_rows(y_sorted, rows), or empty when every row has a y value
/// @param rows          the number of rows
/// @param x_rank_of_row scratch
/// @param[out] pairs    the number of valid pairs
inline spearman_sums spearman_of_columns(sorted_column const& x_sorted,
                                         sorted_column const& y_sorted,
                                         std::span<std::uint8_t const> y_present, std::size_t rows,
                                         std::vector<std::uint32_t>& x_rank_of_row,
                                         std::uint32_t& pairs) {
  x_rank_of_row.assign(rows, 0);  // rows whose x is missing keep 0
  spearman_sums sums;
  std::int64_t below = 0;
  std::size_t i = 0;
  if (y_present.empty()) {  // every present x is a valid pair: no look-ups
    for (std::uint32_t const end : x_sorted.group_end) {
      std::int64_t const m = end - i;
      auto const r = static_cast<std::uint32_t>(2 * below + m + 1);
      for (; i < end; ++i) x_rank_of_row[x_sorted.row(i)] = r;
      sums.aa += m * r * r;
      below += m;
    }
  } else {
    for (std::uint32_t const end : x_sorted.group_end) {
      std::int64_t m = 0;
      for (std::size_t k = i; k < end; ++k) m += y_present[x_sorted.row(k)];
      auto const r = static_cast<std::uint32_t>(2 * below + m + 1);
      for (; i < end; ++i) {
        std::uint32_t const row = x_sorted.row(i);
        x_rank_of_row[row] = r & (0u - y_present[row]);  // r where valid, else 0
      }
      sums.aa += m * r * r;
      below += m;
    }
  }
  std::int64_t const n = below;
  below = 0;
  i = 0;
  for (std::uint32_t const end : y_sorted.group_end) {
    std::int64_t m = 0, a = 0;
    for (; i < end; ++i) {
      std::uint32_t const rank = x_rank_of_row[y_sorted.row(i)];
      m += rank != 0;
      a += rank;
    }
    std::int64_t const r = 2 * below + m + 1;
    sums.ab += r * a;
    sums.bb += m * r * r;
    below += m;
  }
  sums.centre(n);
  pairs = static_cast<std::uint32_t>(n);
  return sums;
}

}  // namespace proxytask::stats::detail
