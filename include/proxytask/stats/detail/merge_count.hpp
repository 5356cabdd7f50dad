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

#include <proxytask/core/config.hpp>

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

}  // namespace proxytask::stats::detail
