#pragma once
// Rank statistics of one step from integer ranks: Spearman's sums, Kendall's score, their
// bootstrap replicates (a resample is a multiset of the step's pairs, so its ranks follow from
// the step's one sort by counting) and their jackknife (leave-one-out) values. Every count and
// sum is an exact integer; only the final division and square root are floating point.

#include <proxytask/core/config.hpp>
#include <proxytask/stats/correlation.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace proxytask::stats::detail {

/// A quiet NaN, in host and device code.
PROXYTASK_HD inline double quiet_nan() noexcept {
#ifdef __CUDA_ARCH__
  return __longlong_as_double(0x7ff8000000000000LL);
#else
  return std::numeric_limits<double>::quiet_NaN();
#endif
}

/// The correctly rounded square root, in host and device code (the same bits on both).
PROXYTASK_HD inline double sqrt_rn(double x) noexcept {
#ifdef __CUDA_ARCH__
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

/// The ranks of one step's n valid pairs. Pairs sit at positions 0..n-1 in x order (ties in row
/// order); x and y values are replaced by their group (dense rank). Group g of x spans positions
/// x_start[g] .. x_start[g+1]-1; the pairs of y group h are y_order[y_start[h] .. y_start[h+1]-1].
struct step_ranks {
  std::uint32_t n = 0;
  std::vector<std::uint32_t> x_group, y_group;  // per position
  std::vector<std::uint32_t> x_start, y_start;  // per group, plus n at the end
  std::vector<std::uint32_t> y_order;           // positions in y order
  std::vector<std::uint32_t> draw_position;     // the k-th valid pair in row order: its position

  std::uint32_t x_groups() const noexcept { return static_cast<std::uint32_t>(x_start.size() - 1); }
  std::uint32_t y_groups() const noexcept { return static_cast<std::uint32_t>(y_start.size() - 1); }
};

/// Doubled average rank of the group spanning sorted positions [begin, end): begin + end + 1.
constexpr std::int64_t doubled_rank(std::int64_t begin, std::int64_t end) noexcept {
  return begin + end + 1;
}

/// sum over tie groups of t (t - 1) / 2, from group boundaries.
inline std::int64_t tied_pairs(std::span<std::uint32_t const> start) {
  std::int64_t ties = 0;
  for (std::size_t g = 0; g + 1 < start.size(); ++g) {
    std::int64_t const t = start[g + 1] - start[g];
    ties += t * (t - 1) / 2;
  }
  return ties;
}

// ---------------------------------------------------------------------------------------------
// Spearman

/// The centred sums of doubled ranks a, b over N draws: S_ab = sum(a b) - N (N + 1)^2 (the mean
/// doubled rank is exactly N + 1), likewise S_aa and S_bb. Exact in int64 for N < 2^20.
struct spearman_sums {
  std::int64_t ab = 0, aa = 0, bb = 0;

  /// From raw sums of products over N draws to centred ones: subtracts N (N + 1)^2 from each.
  PROXYTASK_HD void centre(std::int64_t draws) noexcept {
    std::int64_t const c = draws * (draws + 1) * (draws + 1);
    ab -= c;
    aa -= c;
    bb -= c;
  }
  PROXYTASK_HD double rho() const noexcept {
    if (aa == 0 || bb == 0) return quiet_nan();
    // sqrt(x * x) == x in IEEE arithmetic: a perfect ranking gives exactly +-1.
    double const r =
        static_cast<double>(ab) / sqrt_rn(static_cast<double>(aa) * static_cast<double>(bb));
    return r < -1.0 ? -1.0 : (r > 1.0 ? 1.0 : r);
  }
};

/// rho of the step's pairs.
inline spearman_sums spearman_of(step_ranks const& s) {
  std::int64_t const n = s.n;
  spearman_sums sums;
  for (std::uint32_t p = 0; p < s.n; ++p) {
    std::int64_t const a = doubled_rank(s.x_start[s.x_group[p]], s.x_start[s.x_group[p] + 1]);
    std::int64_t const b = doubled_rank(s.y_start[s.y_group[p]], s.y_start[s.y_group[p] + 1]);
    sums.ab += a * b;
    sums.aa += a * a;
    sums.bb += b * b;
  }
  sums.centre(n);
  return sums;
}

/// Scratch of one resample or permutation.
struct replicate_scratch {
  std::vector<std::uint32_t> count;   // per position: times drawn (all 0 between replicates)
  std::vector<std::int64_t> x_rank;   // per position: its x group's doubled rank in the resample
  std::vector<std::int64_t> fenwick;  // Kendall's y-group tree
  std::vector<std::uint32_t> y_of;    // per position: the (permuted) y group
};

/// rho of a resample given how often each position was drawn (N draws in all). A group holding
/// m of the draws, with `below` draws in lower groups, has doubled rank 2 below + m + 1. The x
/// pass ranks the x groups; the y pass ranks the y groups and accumulates sum(a b): a y group of
/// doubled rank r adds r times the sum of its draws' x ranks. The y pass also sets the counts back
/// to 0 as it reads them, for the next replicate (cheaper than clearing them before each one).
inline spearman_sums spearman_of_resample(step_ranks const& s, std::int64_t draws,
                                          replicate_scratch& w) {
  spearman_sums sums;
  w.x_rank.resize(s.n);
  std::int64_t below = 0;
  for (std::uint32_t g = 0; g < s.x_groups(); ++g) {
    std::int64_t m = 0;
    for (std::uint32_t p = s.x_start[g]; p < s.x_start[g + 1]; ++p) m += w.count[p];
    std::int64_t const r = 2 * below + m + 1;
    for (std::uint32_t p = s.x_start[g]; p < s.x_start[g + 1]; ++p) w.x_rank[p] = r;
    sums.aa += m * r * r;
    below += m;
  }
  below = 0;
  for (std::uint32_t h = 0; h < s.y_groups(); ++h) {
    std::int64_t m = 0, a = 0;
    for (std::uint32_t i = s.y_start[h]; i < s.y_start[h + 1]; ++i) {
      std::uint32_t const p = s.y_order[i];
      m += w.count[p];
      a += w.count[p] * w.x_rank[p];
      w.count[p] = 0;
    }
    std::int64_t const r = 2 * below + m + 1;
    sums.ab += r * a;
    sums.bb += m * r * r;
    below += m;
  }
  sums.centre(draws);
  return sums;
}

/// sum_p a_p b_{perm(p)}: Spearman's statistic under a permutation of the pairing. rho is an
/// increasing function of it (the marginal ranks do not change), so p-values compare it exactly.
inline std::int64_t spearman_permuted_ab(step_ranks const& s, std::span<std::uint32_t const> y_of) {
  std::int64_t ab = 0;
  for (std::uint32_t p = 0; p < s.n; ++p)
    ab += doubled_rank(s.x_start[s.x_group[p]], s.x_start[s.x_group[p] + 1]) *
          doubled_rank(s.y_start[y_of[p]], s.y_start[y_of[p] + 1]);
  return ab;
}

// ---------------------------------------------------------------------------------------------
// Kendall

/// concordant - discordant over pairs of draws in different x groups:
/// sum over x groups in order, of each draw's weight times (earlier draws with a smaller y minus
/// earlier draws with a larger y), with a Fenwick tree over the y groups. O(n log n).
/// `y_of(p)` is position p's y group; `weight(p)` how often it is drawn (1 without resampling).
template <class YOf, class Weight>
std::int64_t kendall_score(step_ranks const& s, YOf y_of, Weight weight,
                           std::vector<std::int64_t>& fenwick) {
  std::uint32_t const groups = s.y_groups();
  fenwick.assign(groups + 1, 0);
  auto prefix = [&](std::uint32_t h) {  // weight of y groups < h
    std::int64_t sum = 0;
    for (; h > 0; h &= h - 1) sum += fenwick[h];
    return sum;
  };
  std::int64_t score = 0, inserted = 0;
  for (std::uint32_t g = 0; g < s.x_groups(); ++g) {
    std::uint32_t const begin = s.x_start[g], end = s.x_start[g + 1];
    for (std::uint32_t p = begin; p < end; ++p) {
      std::int64_t const w = weight(p);
      if (w == 0) continue;
      std::uint32_t const h = y_of(p);
      std::int64_t const less = prefix(h);
      std::int64_t const greater = inserted - prefix(h + 1);
      score += w * (less - greater);
    }
    for (std::uint32_t p = begin; p < end; ++p) {
      std::int64_t const w = weight(p);
      if (w == 0) continue;
      for (std::uint32_t h = y_of(p) + 1; h <= groups; h += h & (0u - h)) fenwick[h] += w;
      inserted += w;
    }
  }
  return score;
}

/// Everything tau-b and its p-value need.
struct kendall_counts {
  std::int64_t n = 0;                   // draws
  std::int64_t total = 0;               // n (n - 1) / 2
  std::int64_t score = 0;               // concordant - discordant
  std::int64_t x_ties = 0, y_ties = 0;  // pairs tied in x, in y
  double x_t2 = 0, y_t2 = 0;            // sum over tie groups of t (t - 1) (t - 2)
  double x_t5 = 0, y_t5 = 0;            // sum over tie groups of t (t - 1) (2 t + 5)

  /// tau-b = score / sqrt((total - x_ties)(total - y_ties)); NaN when a side is constant.
  PROXYTASK_HD double tau_b() const noexcept {
    if (x_ties == total || y_ties == total) return quiet_nan();
    double const t = static_cast<double>(score) / sqrt_rn(static_cast<double>(total - x_ties) *
                                                          static_cast<double>(total - y_ties));
    return t < -1.0 ? -1.0 : (t > 1.0 ? 1.0 : t);
  }
};

inline void add_tie_group(std::int64_t t, std::int64_t& ties, double& t2, double& t5) {
  ties += t * (t - 1) / 2;
  t2 += static_cast<double>(t) * static_cast<double>(t - 1) * static_cast<double>(t - 2);
  t5 += static_cast<double>(t) * static_cast<double>(t - 1) * static_cast<double>(2 * t + 5);
}

/// The counts of the step's pairs.
inline kendall_counts kendall_of(step_ranks const& s, std::vector<std::int64_t>& fenwick) {
  kendall_counts k;
  k.n = s.n;
  k.total = k.n * (k.n - 1) / 2;
  k.score = kendall_score(
      s, [&](std::uint32_t p) { return s.y_group[p]; }, [](std::uint32_t) { return 1; }, fenwick);
  for (std::uint32_t g = 0; g < s.x_groups(); ++g)
    add_tie_group(s.x_start[g + 1] - s.x_start[g], k.x_ties, k.x_t2, k.x_t5);
  for (std::uint32_t h = 0; h < s.y_groups(); ++h)
    add_tie_group(s.y_start[h + 1] - s.y_start[h], k.y_ties, k.y_t2, k.y_t5);
  return k;
}

/// tau-b of a resample given how often each position was drawn (draws in all).
inline double kendall_of_resample(step_ranks const& s, std::int64_t draws, replicate_scratch& w) {
  std::int64_t const total = draws * (draws - 1) / 2;
  std::int64_t x_ties = 0, y_ties = 0;
  for (std::uint32_t g = 0; g < s.x_groups(); ++g) {
    std::int64_t m = 0;
    for (std::uint32_t p = s.x_start[g]; p < s.x_start[g + 1]; ++p) m += w.count[p];
    x_ties += m * (m - 1) / 2;
  }
  for (std::uint32_t h = 0; h < s.y_groups(); ++h) {
    std::int64_t m = 0;
    for (std::uint32_t i = s.y_start[h]; i < s.y_start[h + 1]; ++i) m += w.count[s.y_order[i]];
    y_ties += m * (m - 1) / 2;
  }
  kendall_counts k;
  k.total = total;
  k.x_ties = x_ties;
  k.y_ties = y_ties;
  k.score = kendall_score(
      s, [&](std::uint32_t p) { return s.y_group[p]; },
      [&](std::uint32_t p) { return static_cast<std::int64_t>(w.count[p]); }, w.fenwick);
  return k.tau_b();
}

// ---------------------------------------------------------------------------------------------
// Jackknife (leave one pair out), O(n log n) for all n values

/// What the coefficient without pair j needs to know of it (the CPU and GPU back-ends compute
/// these integers differently and share the formulas below). Sides: x (positions) and y (the
/// reference order); "above" is a strictly greater value, "in" the same group, j excluded only
/// from the counts.
struct jackknife_pair {
  std::int64_t x_lo = 0, x_hi = 0;  ///< j's x group: positions [x_lo, x_hi)
  std::int64_t y_lo = 0, y_hi = 0;  ///< j's y group: y-order indices [y_lo, y_hi)
  std::int64_t gt_gt = 0;           ///< pairs above j on both sides
  std::int64_t gt_eq = 0;           ///< above in x, tied with j in y
  std::int64_t eq_gt = 0;           ///< tied in x, above in y
  std::int64_t eq_eq = 0;           ///< tied with j on both sides (j excluded)
  std::int64_t b_in_x = 0;          ///< Spearman: sum of the doubled y ranks of j's x group
  std::int64_t b_above_x = 0;       ///< ... of the x groups above j's
  std::int64_t a_in_y = 0;          ///< sum of the doubled x ranks of j's y group
  std::int64_t a_above_y = 0;       ///< ... of the y groups above j's
};

/// Spearman's rho of the n pairs without pair j, from `total` (their sums of doubled ranks'
/// products, not centred). Removing j lowers the doubled rank of every pair above it by 2 and of
/// every pair tied with it by 1, on each side. The sum of doubled ranks over the groups above a
/// group boundary k of n positions is n (n + 1) - k (k + 1).
PROXYTASK_HD inline double spearman_without(jackknife_pair const& j, std::int64_t n,
                                            spearman_sums const& total) noexcept {
  std::int64_t const m = n - 1;  // pairs left
  std::int64_t const a = j.x_lo + j.x_hi + 1, b = j.y_lo + j.y_hi + 1;
  std::int64_t const x_gt = n - j.x_hi, x_eq = j.x_hi - j.x_lo - 1;
  std::int64_t const y_gt = n - j.y_hi, y_eq = j.y_hi - j.y_lo - 1;
  std::int64_t const a_above_x = n * (n + 1) - j.x_hi * (j.x_hi + 1);
  std::int64_t const b_above_y = n * (n + 1) - j.y_hi * (j.y_hi + 1);
  // sums over i != j of a_i dx_i, b_i dx_i, a_i dy_i, b_i dy_i (d = the rank drop of i)
  std::int64_t const a_dx = 2 * a_above_x + x_eq * a;
  std::int64_t const b_dx = 2 * j.b_above_x + (j.b_in_x - b);
  std::int64_t const a_dy = 2 * j.a_above_y + (j.a_in_y - a);
  std::int64_t const b_dy = 2 * b_above_y + y_eq * b;
  std::int64_t const dx_dy = 4 * j.gt_gt + 2 * j.gt_eq + 2 * j.eq_gt + j.eq_eq;
  std::int64_t const centre = m * (m + 1) * (m + 1);
  spearman_sums sums;
  sums.ab = total.ab - a * b - a_dy - b_dx + dx_dy - centre;
  sums.aa = total.aa - a * a - 2 * a_dx + 4 * x_gt + x_eq - centre;
  sums.bb = total.bb - b * b - 2 * b_dy + 4 * y_gt + y_eq - centre;
  return sums.rho();
}

/// Kendall's tau-b of the n pairs without pair j, from `all` (the counts of the n pairs).
PROXYTASK_HD inline double kendall_without(jackknife_pair const& j, std::int64_t n,
                                           kendall_counts const& all) noexcept {
  std::int64_t const m = n - 1;  // pairs left
  std::int64_t const x_size = j.x_hi - j.x_lo, y_size = j.y_hi - j.y_lo;
  std::int64_t const x_gt = n - j.x_hi, y_lt = j.y_lo, y_gt = n - j.y_hi;
  std::int64_t const gt_lt = x_gt - j.gt_gt - j.gt_eq;
  std::int64_t const eq_lt = x_size - 1 - j.eq_gt - j.eq_eq;
  std::int64_t const lt_lt = y_lt - gt_lt - eq_lt;
  std::int64_t const lt_gt = y_gt - j.gt_gt - j.eq_gt;
  kendall_counts k;
  k.total = m * (m - 1) / 2;
  k.score = all.score - (lt_lt + j.gt_gt - lt_gt - gt_lt);
  k.x_ties = all.x_ties - (x_size - 1);
  k.y_ties = all.y_ties - (y_size - 1);
  return k.tau_b();
}

/// The coefficient of the step without each of its pairs, by position: rank and count updates
/// instead of n recomputations. Removing pair j lowers the doubled rank of every pair above it
/// by 2 and of every pair tied with it by 1, on each side, so all sums follow from per-pair
/// dominance counts (one Fenwick sweep over the x groups in descending order).
inline void jackknife(step_ranks const& s, correlation method, std::vector<double>& out,
                      replicate_scratch& w) {
  std::uint32_t const n = s.n;
  out.assign(n, std::numeric_limits<double>::quiet_NaN());
  if (n < 3) return;
  std::uint32_t const gx = s.x_groups(), gy = s.y_groups();
  auto x_rank = [&](std::uint32_t g) { return doubled_rank(s.x_start[g], s.x_start[g + 1]); };
  auto y_rank = [&](std::uint32_t h) { return doubled_rank(s.y_start[h], s.y_start[h + 1]); };

  // gt_gt[p] = #{q: x_q > x_p, y_q > y_p}, gt_eq[p] = #{q: x_q > x_p, y_q = y_p}
  std::vector<std::int64_t> gt_gt(n), gt_eq(n);
  w.fenwick.assign(gy + 1, 0);
  auto prefix = [&](std::uint32_t h) {
    std::int64_t sum = 0;
    for (; h > 0; h &= h - 1) sum += w.fenwick[h];
    return sum;
  };
  std::int64_t inserted = 0;
  for (std::uint32_t g = gx; g-- > 0;) {
    for (std::uint32_t p = s.x_start[g]; p < s.x_start[g + 1]; ++p) {
      std::uint32_t const h = s.y_group[p];
      gt_gt[p] = inserted - prefix(h + 1);
      gt_eq[p] = prefix(h + 1) - prefix(h);
    }
    for (std::uint32_t p = s.x_start[g]; p < s.x_start[g + 1]; ++p) {
      for (std::uint32_t h = s.y_group[p] + 1; h <= gy; h += h & (0u - h)) ++w.fenwick[h];
      ++inserted;
    }
  }
  // Within an x group: how many have a greater y, how many the same y (itself excluded). The
  // group's positions sorted by y make these runs.
  std::vector<std::int64_t> eq_gt(n), eq_eq(n);
  std::vector<std::uint32_t> by_y;
  for (std::uint32_t g = 0; g < gx; ++g) {
    by_y.assign(s.y_group.begin() + s.x_start[g], s.y_group.begin() + s.x_start[g + 1]);
    std::sort(by_y.begin(), by_y.end());
    for (std::uint32_t p = s.x_start[g]; p < s.x_start[g + 1]; ++p) {
      auto const [lo, hi] = std::equal_range(by_y.begin(), by_y.end(), s.y_group[p]);
      eq_gt[p] = by_y.end() - hi;
      eq_eq[p] = hi - lo - 1;
    }
  }

  if (method == correlation::spearman) {
    // Per group sums of the other side's ranks, and suffix sums over groups.
    std::vector<std::int64_t> b_in_x(gx + 1, 0), a_in_y(gy + 1, 0);
    spearman_sums total;  // not centred
    for (std::uint32_t p = 0; p < n; ++p) {
      std::int64_t const a = x_rank(s.x_group[p]), b = y_rank(s.y_group[p]);
      b_in_x[s.x_group[p]] += b;
      a_in_y[s.y_group[p]] += a;
      total.ab += a * b;
      total.aa += a * a;
      total.bb += b * b;
    }
    std::vector<std::int64_t> b_above_x(gx + 1, 0), a_above_y(gy + 1, 0);
    for (std::uint32_t g = gx; g-- > 0;) b_above_x[g] = b_above_x[g + 1] + b_in_x[g];
    for (std::uint32_t h = gy; h-- > 0;) a_above_y[h] = a_above_y[h + 1] + a_in_y[h];
    for (std::uint32_t j = 0; j < n; ++j) {
      std::uint32_t const g = s.x_group[j], h = s.y_group[j];
      jackknife_pair const pair{s.x_start[g], s.x_start[g + 1], s.y_start[h], s.y_start[h + 1],
                                gt_gt[j],     gt_eq[j],         eq_gt[j],     eq_eq[j],
                                b_in_x[g],    b_above_x[g + 1], a_in_y[h],    a_above_y[h + 1]};
      out[j] = spearman_without(pair, n, total);
    }
  } else {
    auto const all = kendall_of(s, w.fenwick);
    for (std::uint32_t j = 0; j < n; ++j) {
      std::uint32_t const g = s.x_group[j], h = s.y_group[j];
      jackknife_pair const pair{s.x_start[g], s.x_start[g + 1], s.y_start[h], s.y_start[h + 1],
                                gt_gt[j],     gt_eq[j],         eq_gt[j],     eq_eq[j]};
      out[j] = kendall_without(pair, n, all);
    }
  }
}

}  // namespace proxytask::stats::detail
