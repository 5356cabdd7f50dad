#pragma once
// The CPU back-end of correlate_over_steps: one pass over the steps, one workspace reused.

#include <proxytask/core/error.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/detail/correlation_cpu.hpp>
#include <proxytask/stats/median.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

namespace proxytask::stats::detail {

// Included by <proxytask/stats/over_steps.hpp> after over_steps_options and step_row.
template <class Real>
result<step_table> correlate_over_steps_cpu(host_matrix_view<Real const> scores,
                                            std::span<Real const> reference,
                                            over_steps_options const& options) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  step_table table(scores.cols());
  correlation_workspace<Real> ws;
  std::vector<Real> column(scores.rows());
  for (std::size_t step = 0; step < scores.cols(); ++step) {
    ws.x.clear();
    ws.y.clear();
    for (std::size_t model = 0; model < scores.rows(); ++model) {
      Real const s = scores(model, step);
      column[model] = s;
      if (std::isnan(s) || std::isnan(reference[model])) continue;
      ws.x.push_back(s);
      ws.y.push_back(reference[model]);
    }
    step_row& row = table[step];
    row.valid_pairs = ws.x.size();
    row.median_score = upper_median(std::span<Real const>(column));
    row.coefficient = row.p_value = nan;
    // reference tool: valid only with >= 5 valid pairs and valid / models >= 0.7
    if (row.valid_pairs < options.min_valid_pairs) {
      row.reason = nan_reason::too_few_pairs;
    } else if (static_cast<double>(row.valid_pairs) / static_cast<double>(scores.rows()) <
               options.min_valid_fraction) {
      row.reason = nan_reason::too_few_valid_models;
    } else {
      auto const r = correlate_valid_pairs(options.method, std::span<Real const>(ws.x),
                                           std::span<Real const>(ws.y), options.alternative, ws);
      row.coefficient = r.coefficient;
      row.p_value = r.p_value;
      row.reason = r.reason;
    }
  }
  return table;
}

}  // namespace proxytask::stats::detail
