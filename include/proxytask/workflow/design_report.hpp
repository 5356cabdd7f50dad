#pragma once
/// @file
/// The end-to-end proxy-task design's answer and report: what a run of the three tools in one
/// run directory found (variance measurement, model selection, proxy-task search) and a re-check
/// of the chosen proxy with new seeds, as
///   - a summary document (design_summary.json, for machines; design_summary builds it from the
///     stages' files),
///   - the answer for people (design_answer_text),
///   - one self-contained HTML page (design_report_html): the answer, the tables, and every plot
///     of the three tools inlined as SVG; no script, no style sheet or font from the network.
///
/// The stages' run directories, under the design's run directory:
///   variance/   the variance measurement (variance_tool)
///   selection/  model selection (model_selection_tool); its reference models are the search's
///   search/     the proxy-task search (proxy_search_tool)
///   recheck/    the re-check: proxy_search_tool with the chosen proxy alone, new seeds and
///               stop_at_pct = the pct where the search stopped it (plan_recheck)
///
/// Every number of the summary comes from those files: the variance result, the reference
/// models' full-training scores (MODEL_SELECTION_RESULT.json) and costs (their trials'
/// TRIAL_TRAINING_METRICS.json), the search's and re-check's per-step statistics at each
/// proxy's stop step (SEARCH_CONTROLLER_STATE.json). Two are derived: a proxy's cost ratio (its
/// median training time at the stop over the reference models' median full-training time) and
/// the chance that a re-measurement misses the bar (the share of bootstrap resamples of the
/// chosen proxy's stop-step scores whose correlation is at or below the desired one:
/// stats::bootstrap_summary::p_above_threshold, seeded, so the same files give the same value).
/// In the HTML page every number shown carries data-from (a JSON pointer into the summary) and
/// data-value (the exact double, shortest round trip), so a reader or a test can trace it.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/workflow/proxy_search.hpp>
#include <proxytask/workflow/proxy_search_report.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::workflow {

/// The stages' run directories under the design's run directory.
inline constexpr std::string_view design_variance_dir = "variance";
inline constexpr std::string_view design_selection_dir = "selection";
inline constexpr std::string_view design_search_dir = "search";
inline constexpr std::string_view design_recheck_dir = "recheck";
/// The outputs, in the design's run directory.
inline constexpr std::string_view design_summary_file_name = "design_summary.json";
inline constexpr std::string_view design_report_file_name = "report.html";

/// What the re-check trains: the chosen proxy, to the pct where the search stopped it.
struct proxy_recheck {
  proxy_config proxy;
  double stop_at_pct = 0;         ///< training_step_pct at the proxy's stop step
  std::int64_t stop_at_step = 0;  ///< training_steps there
};

/// The re-check of a finished search: its best proxy at its stop step; nullopt when no proxy
/// succeeded (or the search has not finished).
inline std::optional<proxy_recheck> plan_recheck(proxy_search_state const& s);

/// How the design ran: what the files do not hold.
struct design_run {
  std::filesystem::path run_dir;
  /// The full training's trainer arguments (every stage's; a proxy's override them).
  std::map<std::string, std::string> baseline_args;
  /// The search's options (its reference models, in the order of the search's trials).
  proxy_search_options search;
  /// The re-check's options, when it ran (its seed and stop_at_pct).
  std::optional<proxy_search_options> recheck;
  /// Bootstrap resamples for the chance that a re-measurement misses the bar.
  std::size_t chance_resamples = 2000;
};

/// The summary (design_summary.json) from the stages' files:
///   {"schema_version": 1, "method", "desired_correlation", "confidence_level", "baseline_args",
///    "variance": null | {"status", "model_id", "copies": [final accuracies],
///                        "coefficient_of_variation", "variance_verdict", "variance_info",
///                        "variance_ci": [low, high] | null, "smoothness", "smoothness_verdict",
///                        "smoothness_info", "advice": [...]},
///    "full_training": {"models", "median_steps", "median_hours"},
///    "reference_models": [{"model_id", "accuracy", "steps", "hours"}],
///    "proxies": [{"name", "args", "stopping_state", "stop_rule", "stop_pct", "steps", "hours",
///                 "correlation", "ci_low", "ci_high", "valid_pairs", "cost_ratio",
///                 "failed_trials", "plot_slug" (its plots' proxy_plot_slug)}],
///    "best": null | {"name", "args", "stop_pct", "steps", "hours", "cost_ratio",
///                    "correlation", "ci_low", "ci_high", "chance_below_desired",
///                    "settings": {"trainer_args", "stop_at_step", "stop_at_pct"}},
///    "recheck": null | {"seed", "status", "stop_pct", "steps", "hours", "correlation",
///                       "ci_low", "ci_high", "valid_pairs", "meets_desired"},
///    "answer": the one-line answer}
/// Numbers that are not known (a stage that did not get there) are null.
/// @returns the summary; errors name the file (and member) that is missing or malformed
inline result<boost::json::object> design_summary(design_run const& run);

/// Every plot of the stages, as the stages' own programs write them, named by their path under
/// the design's run directory: variance/variance_curves.svg, selection/iteration_<i>.svg (the
/// concluded iterations), search/<each proxy_search_plots file>, recheck/<the same> (when the
/// re-check ran); in that order.
/// @returns the plots; errors name a state file that is missing or malformed
inline result<std::vector<plot_file>> design_plots(design_run const& run);

/// The answer for people, several lines: the variance verdict, the reference models, each
/// proxy's end, the best proxy with its saving and settings, the re-check.
inline std::string design_answer_text(boost::json::object const& summary);

/// The HTML report: the summary's answer and tables, and every plot of design_plots (the
/// search's and re-check's less important ones folded in <details>). Well-formed XML (an
/// XHTML-compatible HTML5 page); the SVGs are inlined byte for byte.
inline std::string design_report_html(design_run const& run, boost::json::object const& summary,
                                      std::vector<plot_file> const& plots);

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/design_report.inl>
