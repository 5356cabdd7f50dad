#pragma once
// Reference functions answered by proxytask::stats: scipy_spearman, scipy_kendall,
// correlation_over_step and scipy_bootstrap_ci.

#include <conformance/json_conventions.hpp>

#include <proxytask/stats/kendall.hpp>
#include <proxytask/stats/over_steps.hpp>
#include <proxytask/stats/spearman.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace proxytask::conformance {

namespace detail {

struct paired_input {
  std::vector<double> x, y;
};

inline paired_input read_pairs(boost::json::object const& in) {
  paired_input p{to_doubles(array_field(in, "x"), "x"), to_doubles(array_field(in, "y"), "y")};
  if (p.x.size() != p.y.size())
    throw input_error("ValueError", "x and y must have the same length");
  return p;
}

inline boost::json::value statistic_and_p(stats::correlation_result const& r) {
  return {{"statistic", from_double(r.coefficient)}, {"pvalue", from_double(r.p_value)}};
}

inline bool has_nan(std::vector<double> const& v) {
  return std::any_of(v.begin(), v.end(), [](double d) { return std::isnan(d); });
}

/// scipy.stats.spearmanr(x, y, nan_policy='omit'). Where pairs were omitted, scipy computes in
/// its masked-array code (mstats), which answers a constant side with 0 and p = 1 instead of
/// NaN, and rejects fewer than 3 pairs. proxytask's spearman() answers NaN (constant_input);
/// only this scipy-conformance answer reproduces mstats.
inline boost::json::value scipy_spearman(boost::json::object const& in) {
  auto const p = read_pairs(in);
  auto const r = stats::spearman<double>(p.x, p.y);
  bool const omitted = has_nan(p.x) || has_nan(p.y);
  if (!omitted || p.x.size() <= 1) return statistic_and_p(r);
  bool all_zero = true;
  for (std::size_t i = 0; i < p.x.size(); ++i)
    if (!std::isnan(p.x[i]) && !std::isnan(p.y[i]) && (p.x[i] != 0 || p.y[i] != 0))
      all_zero = false;
  if (all_zero) return statistic_and_p(stats::correlation_result{});
  if (r.n < 2) throw input_error("ValueError", "The input must have at least 3 entries!");
  if (r.reason == stats::nan_reason::constant_input) return {{"statistic", 0.0}, {"pvalue", 1.0}};
  return statistic_and_p(r);
}

/// scipy.stats.kendalltau(x, y, nan_policy='omit')
inline boost::json::value scipy_kendall(boost::json::object const& in) {
  auto const p = read_pairs(in);
  return statistic_and_p(stats::kendall_tau_b<double>(p.x, p.y));
}

/// The reference tool's per-step Kendall correlation with its validity rule. Input: trials x
/// steps with -1 = missing, full-training scores with null = missing. Output -5 = invalid.
inline boost::json::value correlation_over_step(boost::json::object const& in) {
  auto const& rows = array_field(in, "proxy_accuracies");
  auto const reference = to_doubles(array_field(in, "full_training"), "full_training");
  if (rows.size() != reference.size())
    throw input_error("ValueError", "proxy_accuracies has " + std::to_string(rows.size()) +
                                        " trials but full_training has " +
                                        std::to_string(reference.size()));
  std::size_t const steps = rows.empty() ? 0 : as_array(rows[0], "proxy_accuracies/0").size();
  std::vector<double> scores;
  scores.reserve(rows.size() * steps);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    auto const& row = as_array(rows[r], "proxy_accuracies/" + std::to_string(r));
    if (row.size() != steps)
      throw input_error("ValueError", "proxy_accuracies/" + std::to_string(r) + " has " +
                                          std::to_string(row.size()) + " steps, expected " +
                                          std::to_string(steps));
    for (auto const& v : row) {
      double const d = to_double_or_nan(v, "proxy_accuracies");
      scores.push_back(d == -1.0 ? std::nan("") : d);  // the reference's missing marker
    }
  }
  auto const table =
      stats::correlate_over_steps(
          backend::cpu, host_matrix_view<double const>(scores.data(), rows.size(), steps),
          std::span<double const>(reference),
          stats::over_steps_options{.method = stats::correlation::kendall_tau_b})
          .value();
  boost::json::array correlation, p_value;
  for (auto const& row : table) {
    bool const valid = !std::isnan(row.coefficient);
    correlation.push_back(valid ? row.coefficient : -5.0);
    p_value.push_back(valid && !std::isnan(row.p_value) ? row.p_value : -5.0);
  }
  return {{"correlation", correlation}, {"p_value", p_value}};
}

/// The options of scipy_bootstrap_ci: n_resamples (9999), seed (0), confidence_level (0.95).
inline stats::over_steps_options bootstrap_options(boost::json::object const& in) {
  stats::over_steps_options o{.method = stats::correlation::spearman,
                              .min_valid_pairs = 2,  // scipy has no validity rule
                              .min_valid_fraction = 0.0};
  o.bootstrap_resamples = 9999;
  if (auto const* v = in.if_contains("n_resamples"); v && !v->is_null())
    o.bootstrap_resamples = static_cast<std::size_t>(to_int(*v, "n_resamples"));
  if (auto const* v = in.if_contains("seed"); v && !v->is_null())
    o.seed = static_cast<std::uint64_t>(to_int(*v, "seed"));
  o.confidence_level = optional_double(in, "confidence_level").value_or(0.95);
  if (!(o.confidence_level > 0 && o.confidence_level < 1))
    throw input_error("ValueError", "confidence_level must be in (0, 1)");
  return o;
}

/// scipy.stats.bootstrap((x, y), spearman, paired=True) after dropping NaN pairs: n, theta_hat,
/// the percentile and BCa intervals, the standard error and the undefined (constant) resamples.
/// The resamples are proxytask's (Philox), not numpy's, so the intervals agree with scipy's only
/// statistically; and undefined resamples are left out where scipy's intervals become NaN.
inline boost::json::value scipy_bootstrap_ci(boost::json::object const& in) {
  auto const p = read_pairs(in);
  auto options = bootstrap_options(in);
  auto const view = host_matrix_view<double const>(p.x.data(), p.x.size(), 1);
  options.interval = stats::interval_method::percentile;
  auto const percentile = stats::correlate_over_steps(backend::cpu, view, p.y, options).value()[0];
  options.interval = stats::interval_method::bca;
  auto const bca = stats::correlate_over_steps(backend::cpu, view, p.y, options).value()[0];
  auto interval = [](stats::bootstrap_summary const& b) {
    return boost::json::array{from_double(b.low), from_double(b.high)};
  };
  return {{"n", percentile.valid_pairs},
          {"theta_hat", from_double(percentile.coefficient)},
          {"percentile", interval(percentile.bootstrap)},
          {"bca", interval(bca.bootstrap)},
          {"standard_error", from_double(percentile.bootstrap.standard_error)},
          {"num_nan_resamples", percentile.bootstrap.undefined}};
}

}  // namespace detail

template <class Table>
void add_stats_functions(Table& table) {
  table.emplace("scipy_spearman", detail::scipy_spearman);
  table.emplace("scipy_kendall", detail::scipy_kendall);
  table.emplace("correlation_over_step", detail::correlation_over_step);
  table.emplace("scipy_bootstrap_ci", detail::scipy_bootstrap_ci);
}

}  // namespace proxytask::conformance
