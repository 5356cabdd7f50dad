#pragma once
// The CPU implementations of Spearman's rho and Kendall's tau-b on paired samples. Every
// coefficient is computed from exact integer counts (doubled ranks, pair counts), so the CPU
// and GPU back-ends give the same bits; only the last division and square root are in floating
// point, and those are IEEE-exact operations on both.

#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/rank_cpu.hpp>
#include <proxytask/stats/p_value.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace proxytask::stats::detail {

/// Reusable storage, so that a batched caller allocates once.
template <class Real>
struct correlation_workspace {
  std::vector<Real> x, y;  // the valid pairs
  std::vector<keyed<Real>> sorted;
  std::vector<std::int64_t> rank_x, rank_y;
  struct xy {
    Real x, y;
  };
  std::vector<xy> pairs;
  std::vector<Real> merge_a, merge_b;
};

/// True when all values are equal (n >= 1).
template <class Real>
bool is_constant(std::span<Real const> v) {
  return std::adjacent_find(v.begin(), v.end(), [](Real a, Real b) { return a != b; }) == v.end();
}

/// Spearman's rho from doubled ranks. The mean doubled rank is exactly n + 1, so the centred
/// sums are integer identities: S_ab = sum(a b) - n (n + 1)^2. Exact in int64 for n < 2^20.
inline double spearman_from_doubled_ranks(std::span<std::int64_t const> a,
                                          std::span<std::int64_t const> b) {
  auto const n = static_cast<std::int64_t>(a.size());
  std::int64_t sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += a[i] * b[i];
    saa += a[i] * a[i];
    sbb += b[i] * b[i];
  }
  std::int64_t const centre = n * (n + 1) * (n + 1);
  sab -= centre;
  saa -= centre;
  sbb -= centre;
  double const rho =
      static_cast<double>(sab) / std::sqrt(static_cast<double>(saa) * static_cast<double>(sbb));
  return std::clamp(rho, -1.0, 1.0);
}

/// The integer counts behind tau-b and its variance.
struct kendall_counts {
  std::int64_t n = 0;
  std::int64_t total = 0;                               // n (n - 1) / 2 pairs
  std::int64_t discordant = 0;                          // x and y ordered oppositely
  std::int64_t x_ties = 0, y_ties = 0, joint_ties = 0;  // pairs tied in x, in y, in both
  double x_t2 = 0, y_t2 = 0;                            // sum over tie groups of t (t - 1) (t - 2)
  double x_t5 = 0, y_t5 = 0;  // sum over tie groups of t (t - 1) (2 t + 5)

  /// concordant - discordant
  std::int64_t score() const noexcept {
    return total - x_ties - y_ties + joint_ties - 2 * discordant;
  }
};

/// Counts the runs of equal values in a sorted sequence: pairs tied, and the variance sums.
template <class It, class Eq>
void count_tie_groups(It first, It last, Eq eq, std::int64_t& pairs, double* t2, double* t5) {
  while (first != last) {
    It run_end = std::next(first);
    while (run_end != last && eq(*first, *run_end)) ++run_end;
    auto const t = static_cast<std::int64_t>(std::distance(first, run_end));
    pairs += t * (t - 1) / 2;
    if (t2) *t2 += static_cast<double>(t) * (t - 1) * (t - 2);
    if (t5) *t5 += static_cast<double>(t) * (t - 1) * (2 * t + 5);
    first = run_end;
  }
}

/// Knight's algorithm: sort by (x, y); then the discordant pairs are the strict inversions of
/// the y sequence, counted by a bottom-up merge sort. O(n log n).
template <class Real>
kendall_counts count_kendall(std::span<Real const> x, std::span<Real const> y,
                             correlation_workspace<Real>& ws) {
  kendall_counts k;
  auto const n = x.size();
  k.n = static_cast<std::int64_t>(n);
  k.total = k.n * (k.n - 1) / 2;
  auto& pairs = ws.pairs;
  pairs.resize(n);
  for (std::size_t i = 0; i < n; ++i) pairs[i] = {x[i], y[i]};
  std::sort(pairs.begin(), pairs.end(),
            [](auto const& a, auto const& b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
  count_tie_groups(
      pairs.begin(), pairs.end(), [](auto const& a, auto const& b) { return a.x == b.x; }, k.x_ties,
      &k.x_t2, &k.x_t5);
  count_tie_groups(
      pairs.begin(), pairs.end(),
      [](auto const& a, auto const& b) { return a.x == b.x && a.y == b.y; }, k.joint_ties, nullptr,
      nullptr);

  auto& src = ws.merge_a;
  auto& dst = ws.merge_b;
  src.resize(n);
  dst.resize(n);
  for (std::size_t i = 0; i < n; ++i) src[i] = pairs[i].y;
  for (std::size_t width = 1; width < n; width *= 2) {
    for (std::size_t lo = 0; lo < n; lo += 2 * width) {
      std::size_t const mid = std::min(lo + width, n), hi = std::min(lo + 2 * width, n);
      std::size_t i = lo, j = mid, out = lo;
      while (i < mid && j < hi) {
        if (src[j] < src[i]) {  // strictly smaller: inverts with every element left in [i, mid)
          k.discordant += static_cast<std::int64_t>(mid - i);
          dst[out++] = src[j++];
        } else {
          dst[out++] = src[i++];
        }
      }
      while (i < mid) dst[out++] = src[i++];
      while (j < hi) dst[out++] = src[j++];
    }
    std::swap(src, dst);
  }
  count_tie_groups(
      src.begin(), src.end(), [](Real a, Real b) { return a == b; }, k.y_ties, &k.y_t2, &k.y_t5);
  return k;
}

/// tau-b and its p-value from the counts (scipy.stats.kendalltau's formulas).
inline correlation_result kendall_from_counts(kendall_counts const& k, hypothesis alternative) {
  correlation_result r;
  r.n = static_cast<std::size_t>(k.n);
  if (k.x_ties == k.total || k.y_ties == k.total) {
    r.reason = nan_reason::constant_input;
    return r;
  }
  r.reason = nan_reason::none;
  auto const s = static_cast<double>(k.score());
  // One square root of the product (not scipy's two): sqrt(x * x) == x in IEEE arithmetic, so
  // a perfect ordering gives exactly +-1.
  r.coefficient = std::clamp(s / std::sqrt(static_cast<double>(k.total - k.x_ties) *
                                           static_cast<double>(k.total - k.y_ties)),
                             -1.0, 1.0);
  bool const untied = k.x_ties == 0 && k.y_ties == 0;
  if (untied && (k.n <= 33 || std::min(k.discordant, k.total - k.discordant) <= 1)) {
    r.p_value = kendall_exact_p_value(k.n, k.total - k.discordant, alternative);
  } else {
    auto const n = static_cast<double>(k.n);
    double const m = n * (n - 1);
    double const var = (m * (2 * n + 5) - k.x_t5 - k.y_t5) / 18 +
                       2.0 * static_cast<double>(k.x_ties) * static_cast<double>(k.y_ties) / m +
                       k.x_t2 * k.y_t2 / (9 * m * (n - 2));
    r.p_value = normal_p_value(s / std::sqrt(var), alternative);
  }
  return r;
}

/// The coefficient of pairs that are all valid (no NaN), n >= 2.
template <class Real>
correlation_result correlate_valid_pairs(correlation method, std::span<Real const> x,
                                         std::span<Real const> y, hypothesis alternative,
                                         correlation_workspace<Real>& ws) {
  if (method == correlation::kendall_tau_b)
    return kendall_from_counts(count_kendall(x, y, ws), alternative);
  correlation_result r;
  r.n = x.size();
  if (is_constant(x) || is_constant(y)) {
    r.reason = nan_reason::constant_input;
    return r;
  }
  ws.rank_x.resize(x.size());
  ws.rank_y.resize(y.size());
  doubled_ranks(x, std::span<std::int64_t>(ws.rank_x), ws.sorted);
  doubled_ranks(y, std::span<std::int64_t>(ws.rank_y), ws.sorted);
  r.reason = nan_reason::none;
  r.coefficient = spearman_from_doubled_ranks(ws.rank_x, ws.rank_y);
  r.p_value = spearman_p_value(r.coefficient, r.n, alternative);
  return r;
}

/// Pairwise deletion (a NaN on either side drops the pair), then the coefficient.
template <class Real>
correlation_result correlate_pairs(correlation method, std::span<Real const> x,
                                   std::span<Real const> y, hypothesis alternative,
                                   correlation_workspace<Real>& ws) {
  ws.x.clear();
  ws.y.clear();
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) || std::isnan(y[i])) continue;
    ws.x.push_back(x[i]);
    ws.y.push_back(y[i]);
  }
  if (ws.x.size() < 2) {
    correlation_result r;
    r.n = ws.x.size();
    return r;
  }
  return correlate_valid_pairs(method, std::span<Real const>(ws.x), std::span<Real const>(ws.y),
                               alternative, ws);
}

/// The O(n^2) definition of tau-b, for tests. NaN when a side is constant or n < 2.
template <class Real>
double kendall_tau_b_quadratic(std::span<Real const> x, std::span<Real const> y) {
  std::int64_t s = 0, x_ties = 0, y_ties = 0, total = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    for (std::size_t j = i + 1; j < x.size(); ++j) {
      int const dx = (x[i] > x[j]) - (x[i] < x[j]);
      int const dy = (y[i] > y[j]) - (y[i] < y[j]);
      s += dx * dy;
      x_ties += dx == 0;
      y_ties += dy == 0;
      ++total;
    }
  }
  if (total == 0 || x_ties == total || y_ties == total) return std::nan("");
  return static_cast<double>(s) /
         std::sqrt(static_cast<double>(total - x_ties) * static_cast<double>(total - y_ties));
}

}  // namespace proxytask::stats::detail
