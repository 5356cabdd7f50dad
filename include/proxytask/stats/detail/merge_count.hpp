#pragma once
// Kendall's concordance score in O(n log^2 n) work that parallelises over the elements: a
// bottom-up merge sort in which every element finds its place in the merged run by a binary
// search in the neighbouring run (merge by rank), and a right-run element's place counts the
// left-run keys greater than it (its inversions at that level). No step depends on another
// element's result within a level, so one GPU thread per element does a level; the CPU runs the
// same functions in a loop, which is how they are tested without a device.
//
// The score from two such sorts of a step's positions (x order, ties in model order):
//   1. sort the keys (x group, y group): this orders each x tie group by y, and its runs of equal
//      keys are the pairs tied on both sides;
//   2. count the strict inversions of the y groups in that order: these are the discordant pairs
//      (pairs within an x group are in y order now and never count).
// Then concordant = total - x_ties - y_ties + xy_ties - discordant, and score = concordant -
// discordant, the same exact integer as the CPU's Fenwick-tree count.
//
// The jackknife's dominance counts (how many pairs lie above a pair on both sides, and so on) come
// from the sorted xy keys and one more sort: of their y groups, in that order, with each element
// counting the later ones above it (count_right_run_above).

#include <proxytask/core/config.hpp>
#include <proxytask/stats/detail/rank_math.hpp>

#include <cstdint>

namespace proxytask::stats::detail {

/// The first index in sorted [lo, hi) whose key is not less than k.
template <class Key>
PROXYTASK_HD std::uint32_t first_not_less(Key const* a, std::uint32_t lo, std::uint32_t hi,
                                          Key k) noexcept {
  while (lo < hi) {
    std::uint32_t const mid = lo + (hi - lo) / 2;
    if (a[mid] < k)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// The first index in sorted [lo, hi) whose key is greater than k.
template <class Key>
PROXYTASK_HD std::uint32_t first_greater(Key const* a, std::uint32_t lo, std::uint32_t hi,
                                         Key k) noexcept {
  while (lo < hi) {
    std::uint32_t const mid = lo + (hi - lo) / 2;
    if (k < a[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/// One element's part of one merge level: src holds sorted runs of `width` keys (the last one
/// shorter); runs 2j and 2j + 1 merge into dst at the same place, stably (a left key goes after
/// the right keys less than it, a right key after the left keys not greater than it). Writes
/// element i to its place and returns its inversions at this level: for a right-run key, the
/// left-run keys greater than it.
template <class Key>
PROXYTASK_HD std::uint32_t merge_element(Key const* src, Key* dst, std::uint32_t n,
                                         std::uint32_t width, std::uint32_t i) noexcept {
  std::uint32_t const start = i - i % width;
  Key const k = src[i];
  if ((i / width) % 2 == 0) {  // a left run: its right neighbour, if any, starts at start + width
    std::uint32_t const right = start + width;
    std::uint32_t before = 0;
    if (right < n)
      before = first_not_less(src, right, n - right > width ? right + width : n, k) - right;
    dst[i + before] = k;
    return 0;
  }
  std::uint32_t const left = start - width;
  std::uint32_t const not_greater = first_greater(src, left, start, k) - left;
  dst[left + (i - start) + not_greater] = k;
  return width - not_greater;
}

/// The key of step 1: x group above y group (both below 2^(bits of Key / 2)).
template <class Key>
PROXYTASK_HD Key xy_key(std::uint32_t x_group, std::uint32_t y_group) noexcept {
  return static_cast<Key>(static_cast<Key>(x_group) << (4 * sizeof(Key))) | y_group;
}

/// The y group of an xy_key.
template <class Key>
PROXYTASK_HD std::uint32_t y_of_key(Key k) noexcept {
  return static_cast<std::uint32_t>(k & ((Key{1} << (4 * sizeof(Key))) - 1));
}

/// Pairs tied on both sides before element i of the sorted xy keys: i minus the start of its run
/// of equal keys (summed over i: sum over runs of m (m - 1) / 2).
template <class Key>
PROXYTASK_HD std::uint32_t equal_keys_before(Key const* sorted, std::uint32_t i) noexcept {
  Key const k = sorted[i];
  return i == 0 || sorted[i - 1] != k ? 0 : i - first_not_less(sorted, 0, i, k);
}

/// concordant - discordant from the pair counts: concordant = total - x_ties - y_ties + xy_ties
/// - discordant (a pair tied on both sides is in both tie counts).
PROXYTASK_HD inline std::int64_t score_of_counts(std::int64_t total, std::int64_t x_ties,
                                                 std::int64_t y_ties, std::int64_t xy_ties,
                                                 std::int64_t discordant) noexcept {
  return total - x_ties - y_ties + xy_ties - 2 * discordant;
}

/// The merge sort of keys[0, n) with `spare` room for n more, one level after another, element
/// by element (what a GPU block does a level at a time, in a loop): returns the buffer that holds
/// the sorted keys and adds the strict inversions to `inversions`.
template <class Key>
Key* sort_by_merges(Key* keys, Key* spare, std::uint32_t n, std::uint64_t& inversions) {
  for (std::uint32_t width = 1; width < n; width *= 2) {
    for (std::uint32_t i = 0; i < n; ++i) inversions += merge_element(keys, spare, n, width, i);
    Key* const t = keys;
    keys = spare;
    spare = t;
  }
  return keys;
}

/// A key of the dominance sort of the jackknife: the y group above the element's index in the
/// sorted xy keys (unique keys: merged by y group, then index).
PROXYTASK_HD inline std::uint64_t y_index_key(std::uint32_t y_group, std::uint32_t index) noexcept {
  return static_cast<std::uint64_t>(y_group) << 32 | index;
}

/// Element i's part of one level of the dominance sort (keys y_index_key): a left-run element adds
/// the keys of its right neighbour run with a greater y group to greater[its index], and those
/// with a y group at least its own to at_least[its index]; a right-run element adds nothing. Over
/// all levels, the element at index i has counted every later index once.
PROXYTASK_HD inline void count_right_run_above(std::uint64_t const* src, std::uint32_t n,
                                               std::uint32_t width, std::uint32_t i,
                                               std::uint32_t* greater,
                                               std::uint32_t* at_least) noexcept {
  if ((i / width) % 2 != 0) return;
  std::uint32_t const right = i - i % width + width;
  if (right >= n) return;
  std::uint32_t const end = n - right > width ? right + width : n;
  std::uint64_t const k = src[i];
  std::uint64_t const y = k >> 32;
  auto const index = static_cast<std::uint32_t>(k);
  greater[index] += end - first_not_less(src, right, end, (y + 1) << 32);
  at_least[index] += end - first_not_less(src, right, end, y << 32);
}

/// Everything the jackknife formulas need of the pair in x group [x_lo, x_hi) and y group
/// [y_lo, y_hi): its dominance counts, from the sorted xy keys (64-bit) of the n pairs and the
/// dominance sort's counts, by sorted index, of their later pairs (`greater`: y group above,
/// `at_least`: not below); and the other side's doubled ranks summed over its groups and above
/// them, from prefix sums (b_before over positions, a_before over the y order; n + 1 each).
/// Later pairs of the pair's first copy in the sorted keys: its other copies, the rest of its x
/// group above it in y, then every pair of a higher x group.
PROXYTASK_HD inline jackknife_pair jackknife_pair_of(std::uint64_t const* sorted, std::uint32_t n,
                                                     std::uint32_t x_lo, std::uint32_t x_hi,
                                                     std::uint32_t y_lo, std::uint32_t y_hi,
                                                     std::uint32_t const* greater,
                                                     std::uint32_t const* at_least,
                                                     std::int64_t const* b_before,
                                                     std::int64_t const* a_before) noexcept {
  std::uint64_t const key = xy_key<std::uint64_t>(x_lo, y_lo);
  std::uint32_t const first = first_not_less(sorted, 0, n, key);
  std::uint32_t const copies_end = first_greater(sorted, first, n, key);
  std::uint32_t const group_end =
      first_not_less(sorted, copies_end, n, xy_key<std::uint64_t>(x_hi, 0));
  jackknife_pair j;
  j.x_lo = x_lo;
  j.x_hi = x_hi;
  j.y_lo = y_lo;
  j.y_hi = y_hi;
  j.eq_eq = copies_end - first - 1;
  j.eq_gt = group_end - copies_end;
  j.gt_gt = static_cast<std::int64_t>(greater[first]) - j.eq_gt;
  j.gt_eq = static_cast<std::int64_t>(at_least[first]) - j.eq_gt - j.eq_eq - j.gt_gt;
  j.b_in_x = b_before[x_hi] - b_before[x_lo];
  j.b_above_x = b_before[n] - b_before[x_hi];
  j.a_in_y = a_before[y_hi] - a_before[y_lo];
  j.a_above_y = a_before[n] - a_before[y_hi];
  return j;
}

}  // namespace proxytask::stats::detail
