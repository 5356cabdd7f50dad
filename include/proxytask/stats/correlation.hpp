#pragma once
/// @file
/// Vocabulary shared by the rank-correlation functions: which coefficient, which alternative
/// hypothesis, why a coefficient is NaN, and the result of one correlation.

#include <cstddef>
#include <limits>
#include <optional>
#include <string_view>

namespace proxytask::stats {

/// The rank-correlation coefficient.
enum class correlation {
  spearman,       ///< Spearman's rho: Pearson correlation of the average ranks
  kendall_tau_b,  ///< Kendall's tau-b (tie-corrected)
};

/// The alternative hypothesis of a p-value (scipy's `alternative`).
enum class hypothesis {
  two_sided,  ///< the coefficient is not 0
  greater,    ///< the coefficient is > 0
  less,       ///< the coefficient is < 0
};

/// Why a coefficient is NaN. A statistic that cannot be computed is not an error.
enum class nan_reason {
  none,                  ///< computed
  too_few_pairs,         ///< fewer valid pairs than needed (2 for a coefficient, or the option)
  too_few_valid_models,  ///< the valid pairs are too small a share of the models
  constant_input,        ///< one side is constant over the valid pairs: no ranking to compare
};

/// One rank correlation of two samples (pairs with a NaN on either side are left out).
struct correlation_result {
  double coefficient = std::numeric_limits<double>::quiet_NaN();
  /// NaN when the coefficient is NaN, and for Spearman with n = 2 (no degrees of freedom).
  double p_value = std::numeric_limits<double>::quiet_NaN();
  std::size_t n = 0;  ///< pairs used
  nan_reason reason = nan_reason::too_few_pairs;
};

/// "spearman", "kendall"
constexpr std::string_view to_string(correlation c) noexcept {
  return c == correlation::spearman ? "spearman" : "kendall";
}
/// "two-sided", "greater", "less"
constexpr std::string_view to_string(hypothesis h) noexcept {
  switch (h) {
    case hypothesis::two_sided: return "two-sided";
    case hypothesis::greater: return "greater";
    case hypothesis::less: return "less";
  }
  return "?";
}
/// "" when computed; otherwise "too_few_pairs", "too_few_valid_models", "constant_input"
constexpr std::string_view to_string(nan_reason r) noexcept {
  switch (r) {
    case nan_reason::none: return "";
    case nan_reason::too_few_pairs: return "too_few_pairs";
    case nan_reason::too_few_valid_models: return "too_few_valid_models";
    case nan_reason::constant_input: return "constant_input";
  }
  return "?";
}

/// Parses "spearman" or "kendall" (also "kendall_tau_b").
constexpr std::optional<correlation> parse_correlation(std::string_view s) noexcept {
  if (s == "spearman") return correlation::spearman;
  if (s == "kendall" || s == "kendall_tau_b") return correlation::kendall_tau_b;
  return std::nullopt;
}
/// Parses "two-sided", "greater" or "less".
constexpr std::optional<hypothesis> parse_hypothesis(std::string_view s) noexcept {
  if (s == "two-sided") return hypothesis::two_sided;
  if (s == "greater") return hypothesis::greater;
  if (s == "less") return hypothesis::less;
  return std::nullopt;
}

}  // namespace proxytask::stats
