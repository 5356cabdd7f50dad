#pragma once
// Kendall's concordance score in O(n log n) work that parallelises over the elements: a
// bottom-up merge sort whose levels are split into ranges of outputs (merge path: each range
// finds where it starts in its two runs by one binary search, then merges sequentially), and a
// right-run key placed in the merged run counts the left-run keys greater than it (its inversions
// at that level). No range depends on another's result within a level, so each GPU thread of a
// block does one range of every level; the CPU runs the same functions in a loop, which is how
// they are tested without a device.
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
// from the sorted xy keys and one more sort: of their y groups, in that order, in which each
// left-run key counts the right-run keys placed after it (later_at_least), and the later keys of
// its own y group are subtracted at the end (later_in_y_group).

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

/// The merge path: how many of the first d outputs of the stable merge of sorted a[0, la) and
/// b[0, lb) come from a (a key of a goes before the keys of b that are not less than it).
/// @pre d <= la + lb
template <class Key>
PROXYTASK_HD std::uint32_t merge_path(Key const* a, std::uint32_t la, Key const* b,
                                      std::uint32_t lb, std::uint32_t d) noexcept {
  std::uint32_t lo = d > lb ? d - lb : 0, hi = d < la ? d : la;
  while (lo < hi) {  // a[mid] is among the first d outputs unless b[d - 1 - mid] goes before it
    std::uint32_t const mid = lo + (hi - lo) / 2;
    if (b[d - 1 - mid] < a[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

/// Outputs [begin, end) of one level of a bottom-up merge sort: src holds sorted runs of `width`
/// keys (the last one may be shorter), and runs 2q and 2q + 1 merge stably into dst at the same
/// place. Every key placed is reported as visit(key, from_right, later), `later` being the keys
/// of the other run placed after it: for a right-run key, the left-run keys greater than it (its
/// inversions at this level); for a left-run key, the right-run keys not less than it. Ranges
/// that cover [0, n) between them do the whole level, in any order: one binary search each, then
/// a sequential merge, O(n + ranges log n) work per level.
template <class Key, class Visit>
PROXYTASK_HD void merge_outputs(Key const* src, Key* dst, std::uint32_t n, std::uint32_t width,
                                std::uint32_t begin, std::uint32_t end, Visit&& visit) {
  std::uint32_t o = begin;
  while (o < end) {
    std::uint32_t const pair = o - o % (2 * width);  // where the two runs of output o start
    std::uint32_t const la = n - pair < width ? n - pair : width;
    std::uint32_t const lb = n - pair - la < width ? n - pair - la : width;
    Key const* const a = src + pair;
    Key const* const b = a + la;
    std::uint32_t i = merge_path(a, la, b, lb, o - pair);
    std::uint32_t j = o - pair - i;
    std::uint32_t const stop = pair + la + lb < end ? pair + la + lb : end;
    for (; o < stop; ++o) {
      if (j == lb || (i < la && !(b[j] < a[i]))) {
        dst[o] = a[i];
        visit(a[i], false, lb - j);
        ++i;
      } else {
        dst[o] = b[j];
        visit(b[j], true, la - i);
        ++j;
      }
    }
  }
}

/// Outputs [begin, end) of range r of `ranges` equal ranges covering a level's n outputs (those
/// of GPU thread r of a block of `ranges`).
struct output_range {
  std::uint32_t begin, end;
};
PROXYTASK_HD inline output_range output_range_of(std::uint32_t n, std::uint32_t ranges,
                                                 std::uint32_t r) noexcept {
  std::uint32_t const share = (n + ranges - 1) / ranges;
  std::uint32_t const begin = r * share < n ? r * share : n;
  return {begin, n - begin < share ? n : begin + share};
}

/// A merge_outputs visitor that counts the strict inversions: for every right-run key, the
/// left-run keys placed after it.
struct inversion_counter {
  std::uint64_t* inversions;
  template <class Key>
  PROXYTASK_HD void operator()(Key, bool from_right, std::uint32_t later) const noexcept {
    if (from_right) *inversions += later;
  }
};

/// A merge_outputs visitor that counts nothing: the sort alone.
struct just_sort {
  template <class Key>
  PROXYTASK_HD void operator()(Key, bool, std::uint32_t) const noexcept {}
};

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

/// The merge sort of keys[0, n) with `spare` room for n more, one level after another, each level
/// in `ranges` ranges of outputs (what the threads of a GPU block do, in a loop): returns the
/// buffer that holds the sorted keys. visit sees every key placed (merge_outputs).
template <class Key, class Visit>
Key* sort_by_merges(Key* keys, Key* spare, std::uint32_t n, std::uint32_t ranges, Visit visit) {
  for (std::uint32_t width = 1; width < n; width *= 2) {
    for (std::uint32_t r = 0; r < ranges; ++r) {
      output_range const o = output_range_of(n, ranges, r);
      merge_outputs(keys, spare, n, width, o.begin, o.end, visit);
    }
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

/// A merge_outputs visitor of the dominance sort (keys y_index_key): a left-run key adds the
/// right-run keys placed after it, those with a y group at least its own (a right-run key of the
/// same group has a later index, so it is greater), to at_least[its index]. Over all levels, the
/// element at index i counts every later index with a y group at least its own once.
struct later_at_least {
  std::uint32_t* at_least;
  PROXYTASK_HD void operator()(std::uint64_t key, bool from_right,
                               std::uint32_t later) const noexcept {
    if (!from_right) at_least[static_cast<std::uint32_t>(key)] += later;
  }
};

/// The later indices of the same y group as the key at q of the finished dominance sort (sorted
/// y_index_keys): the rest of its run of equal y groups. at_least less this is the later indices
/// with a greater y group.
PROXYTASK_HD inline std::uint32_t later_in_y_group(std::uint64_t const* sorted, std::uint32_t n,
                                                   std::uint32_t q) noexcept {
  std::uint64_t const next_group = ((sorted[q] >> 32) + 1) << 32;
  return first_not_less(sorted, q + 1, n, next_group) - q - 1;
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
