#pragma once
/// @file
/// What a proxy-task search (workflow/proxy_search.hpp) shows people besides its state and result
/// files: its plots, as pure functions of the state and the tool's options. A program writes each
/// plot_file atomically into the run directory, next to SEARCH_CONTROLLER_STATE.json.
///
/// Per proxy that has recorded at least one step (stats.training_steps non-empty), in state
/// order, with <slug> = proxy_plot_slug (the proxy's name made safe for a file name):
///
///   - proxy_<slug>_correlation_steps.svg: the rank correlation with the full-training scores
///     over training steps (x) on a fixed [-1, 1] axis (y): the deciding method
///     (s.method; accuracy_correlation_over_step) as a line named "<method> (deciding)", its
///     bootstrap CI (ci_low/ci_high_over_step) as a band "<method> <level>% CI" (only when some
///     step has one), the other method (kendall/spearman_over_step) as a dashed line
///     "<method>", the desired correlation as a horizontal reference line "threshold <value>",
///     and the stop step (stats.stop_step_index), when there is one, as a vertical reference
///     line. The title names the proxy, its stopping state and its stop rule.
///   - proxy_<slug>_correlation_time.svg: the same against the median trial's training time
///     (median_training_time_hrs_over_step, in hours) on x; the stop line at that step's time.
///   - proxy_<slug>_median_accuracy.svg: median_accuracy_over_step (y) over training steps (x),
///     with the stop step and, when options.desired_accuracy is set, that threshold.
///   - proxy_<slug>_scatter.svg (only when the proxy has a stop step and accuracy_at_stop): each
///     reference model's score under the proxy at the stop step (stats.accuracy_at_stop[m], x)
///     against its full-training score (options.reference_models[m].accuracy, y), one marker
///     per model with a `<title>` tooltip naming the model and both scores. A model without a
///     proxy score (NaN) cannot be drawn: the series' data-skipped counts it, and its name says
///     so, as model selection's plots do.
///   - proxy_<slug>_latency.svg (only when the scatter is drawn and some reference model has a
///     latency): the proxy score (x) against the model's latency (y), same conventions (a model
///     without a latency is skipped and counted too).
///
/// And last, once at least one proxy has ended (phase done):
///
///   - proxies.svg: one marker per ended proxy, its final_training_time_in_hours (x; when its
///     stop rule sets none, such as not-best, its stop step's median training time) against
///     the deciding correlation at its stop step (y), on a fixed [-1, 1] axis with the
///     threshold line. Three scatter series: the best proxy (s.best_proxy_task_name) as
///     "best: <name>", the other successful ones (is_successful) and the failed ones; a series
///     with no proxy is left out. A proxy without a time or a stop step cannot be drawn
///     (data-skipped counts it, and the series' name says so).
///
/// Every drawn number is the state's own value, written by report/plot.hpp as data-x / data-y
/// (markers), data-points (lines, bands) and data-value (reference lines), so a reader or a test
/// recovers the exact doubles. NaN values in the per-step vectors are gaps: plot.hpp breaks the
/// line there and draws nothing in their place (never 0).

#include <proxytask/core/config.hpp>
#include <proxytask/workflow/proxy_search.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::workflow {

/// One output file: its name (relative to the run directory) and its SVG text.
struct plot_file {
  std::string name;
  std::string svg;
};

/// The file name of the plot of all ended proxies.
inline constexpr std::string_view proxies_plot_file_name = "proxies.svg";

/// Every plot of the search's current state (see the file comment), in a stable order: per proxy
/// with a recorded step, in state order, its correlation_steps, correlation_time,
/// median_accuracy, scatter and latency files (the last two when drawable); then proxies.svg
/// when a proxy has ended.
/// @param[in] s       the search state (SEARCH_CONTROLLER_STATE.json)
/// @param[in] options the tool's options: the reference models (their full-training scores and
///                    latencies), the confidence level, the desired accuracy
/// @returns the files; none for a state with no recorded step and no ended proxy
/// @pre each drawn proxy's per-step vectors have one value per training step; its stop step is
///      one of them; its accuracy_at_stop, when drawn, has one score per reference model
/// @throws proxytask::logic_error when a precondition fails
inline std::vector<plot_file> proxy_search_plots(proxy_search_state const& s,
                                                 proxy_search_options const& options);

/// A proxy name as a file-name part: the bytes [A-Za-z0-9._-] kept and every other byte as '_';
/// when that changed anything (an empty name included), or when the result equals another
/// proxy's, or could equal another proxy's suffixed slug, "-<index>" is appended (index = the
/// proxy's position in s.proxy_tasks). Slugs are thereby unique within the state and depend only
/// on the proxies' names and order.
/// @pre proxy_index < s.proxy_tasks.size()
/// @throws proxytask::logic_error otherwise
inline std::string proxy_plot_slug(proxy_search_state const& s, std::size_t proxy_index);

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/proxy_search_report.inl>
