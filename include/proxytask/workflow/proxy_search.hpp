#pragma once
/// @file
/// The proxy-task search (DESIGN.md, "The three tools", item 3) as a pure state machine: train
/// the reference models under each candidate proxy task, correlate their scores with the
/// full-training scores at every recorded step, stop each proxy by the stop rule, and choose the
/// cheapest proxy that reaches the desired correlation.
///
/// The workflow (the seed's "Proxy-task search"):
///   - the reference set comes from model selection (MODEL_SELECTION_RESULT.json's
///     "reference_models") or from the user (load_reference_models);
///   - proxies are tried one at a time, in the generator's order (max_parallel_proxy_tasks = 1);
///     each launches every reference model ("proxy-<p>-model-<m>") with the baseline's trainer
///     arguments overridden by the proxy's (the steps stay the full baseline's: the controller
///     decides when to stop);
///   - at every poll, over the trials' curves aligned on training pct (the union of the pcts
///     the trials recorded; each trial's score there by stats::accuracy_at_pct, NaN where it has
///     not reached it, so different evaluation cadences line up; a pct's step is the steps
///     trained at the first trial's point there): the rank correlation with the full-training
///     scores (Kendall tau-b by default, Spearman always reported too), its p-value and bootstrap
///     CI, the valid pairs (stats::correlate_over_steps), the median accuracy and the median
///     trial's training time (median_over_steps);
///   - the stop rule is the foundation's check_stopping (correlation, median accuracy, time
///     limit, not-best time; interpolated crossing); in confidence mode the correlation rule
///     reads the lower bootstrap CI bound, held for k consecutive steps (the minimum of the last
///     k lower bounds); too many failed trials (the validity rule can no longer be met, or more
///     than max_failed_trials) stop it as excess_trial_failures; a proxy whose trials all ended
///     ran till completion;
///   - a stopped proxy's trials get set_desired_pct 0 and, while they run, stop_trial; with
///     latency on, a successful proxy's latency correlation must reach its threshold;
///   - re-check mode (proxy_search_options::stop_at_pct): the trials stop themselves at that
///     pct, the stop rules are off, and the result reports each proxy's correlation there
///     (status "measured") instead of choosing a best proxy;
///   - the best proxy is the foundation's best_proxy_task (the successful one with the lowest
///     final training time).
///
/// Files: the state SEARCH_CONTROLLER_STATE.json (the reference's proxy_tasks_map with
/// proxy_task_stats and best_proxy_task_name, plus ours; NaN is written as null where the
/// reference writes -5 or -1), and the result PROXY_SEARCH_RESULT.json (see result_of).
/// A search is extendable: run it again with more proxy configs (after the ones it had) and it
/// searches those too, keeping what it measured. Not done: proxies in parallel; waiting for a
/// separate latency calculator (the latency correlation uses the latencies present when the
/// proxy ends).

#include <proxytask/core/config.hpp>
#include <proxytask/core/csv.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/workflow/proxy_configs.hpp>
#include <proxytask/workflow/stopping.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::workflow {

/// One reference model: its spec and its full-training score (and latency).
struct reference_model {
  std::string model_id;
  protocol::model_spec spec;
  double accuracy = std::numeric_limits<double>::quiet_NaN();  ///< full-training score
  std::optional<double> latency;
};

/// Reads a reference set: model selection's MODEL_SELECTION_RESULT.json (its "reference_models"),
/// a JSON array of {"model_id"?, "spec", "accuracy", "latency"?} ("model_id" defaults to the
/// spec's), or, for a ".csv" file, a CSV table with the columns spec (the model spec as JSON) and
/// accuracy, and optionally model_id and latency (empty: none), as model selection's
/// reference_models.csv has them (workflow/model_selection_report.hpp).
/// @returns the models; the read error; errc::malformed_file naming "<file>#<pointer>" (JSON) or
///          "<file>:<line>" (CSV)
inline result<std::vector<reference_model>> load_reference_models(
    std::filesystem::path const& file);
/// The same from a parsed CSV table.
inline result<std::vector<reference_model>> reference_models_from_csv(csv_table const& table);
/// The same from a parsed document; `source` names it in errors.
inline result<std::vector<reference_model>> reference_models_from_json(
    boost::json::value const& doc, std::string_view source);

/// Where the search is.
enum class search_phase { searching, done };
/// Where one proxy is.
enum class proxy_phase { pending, running, done };

inline std::string_view to_string(search_phase p) noexcept;
inline std::string_view to_string(proxy_phase p) noexcept;

/// A proxy's statistics (the reference's proxy_task_stats, plus ours). Per-step vectors all
/// have one value per recorded step; NaN (null in the file) marks an invalid value.
struct proxy_task_stats {
  // reference tool: ProxyTaskStats
  std::vector<std::int64_t> training_steps;            ///< steps trained at each aligned pct
  std::vector<double> accuracy_correlation_over_step;  ///< the deciding method's coefficient
  std::vector<double> accuracy_correlation_p_value_over_step;
  std::vector<double> median_accuracy_over_step;
  std::vector<double> median_training_time_hrs_over_step;
  double latency_correlation = std::numeric_limits<double>::quiet_NaN();
  stopping_state state = stopping_state::none;  ///< "stopping_state"
  std::optional<double> final_training_time_in_hours;
  std::optional<std::int64_t> final_training_steps;
  // ours
  std::vector<double> training_step_pct;  ///< the aligned pcts
  std::vector<double> kendall_over_step;
  std::vector<double> spearman_over_step;
  /// The deciding method's bootstrap CI (a degenerate bootstrap, whose replicates all equal the
  /// coefficient, gives [coefficient, coefficient])
  std::vector<double> ci_low_over_step;
  std::vector<double> ci_high_over_step;
  std::vector<std::int64_t> valid_pairs_over_step;
  std::string stop_rule;  ///< correlation, confidence, median_accuracy, time_limit, not_best,
                          ///< failed_trials, completion, latency_correlation, stop_at_pct (a
                          ///< re-check's proxy whose trials all ended; "" while running)
  std::optional<std::size_t> stop_step_index;
  std::vector<double> accuracy_at_stop;  ///< each model's score at the stop step (NaN: none)
};

/// One proxy of the search.
struct proxy_task_entry {
  std::string name;
  std::map<std::string, std::string> args;  ///< the proxy's trainer arguments
  proxy_phase phase = proxy_phase::pending;
  std::vector<std::string> trial_ids;  ///< one per reference model, once launched
  std::size_t failed_trials = 0;
  proxy_task_stats stats;
};

/// The state of a proxy-task search (SEARCH_CONTROLLER_STATE.json).
struct proxy_search_state {
  search_phase phase = search_phase::searching;
  stats::correlation method = stats::correlation::kendall_tau_b;
  double desired_correlation = 0.65;
  std::vector<proxy_task_entry> proxy_tasks;  ///< in the generator's order ("proxy_tasks_map")
  std::optional<std::string> best_proxy_task_name;
};

/// The seed's correlation threshold of a method: 0.65 for Kendall tau-b, 0.84 for Spearman.
constexpr double default_desired_correlation(stats::correlation m) noexcept {
  return m == stats::correlation::spearman ? 0.84 : 0.65;
}

/// The tool's settings.
struct proxy_search_options {
  std::vector<reference_model> reference_models;
  std::vector<proxy_config> proxies;  ///< in the order to try them
  /// Trainer arguments of every trial (the full baseline's, steps included); a proxy's
  /// arguments override them.
  std::map<std::string, std::string> baseline_args;
  stats::correlation method = stats::correlation::kendall_tau_b;
  /// nullopt: default_desired_correlation(method)
  std::optional<double> desired_correlation;
  std::optional<double> desired_accuracy;         ///< median accuracy rule (unset: off)
  std::optional<double> training_time_hrs_limit;  ///< time rule (unset: off)
  bool early_stop_proxy_task_if_not_best = false;
  std::size_t bootstrap_resamples = 200;
  double confidence_level = 0.95;
  /// Confidence mode: > 0 replaces the correlation rule by "the lower CI bound >= desired for
  /// this many consecutive steps" (needs bootstrap_resamples > 0).
  std::size_t confidence_k = 0;
  std::size_t min_valid_pairs = 5;  ///< the validity rule (stats::over_steps_options')
  double min_valid_fraction = 0.7;
  std::uint64_t seed = 0;
  /// More failed trials than this stop a proxy (nullopt: only the validity rule).
  std::optional<std::size_t> max_failed_trials;
  bool use_latency = false;  ///< check the latency correlation of successful proxies
  std::optional<double> desired_latency_correlation;  ///< nullopt: as desired_correlation
  /// Re-check mode (unset: a search). Set, in (0, 100]: every proxy's trials are launched with
  /// launch_trial::desired_pct = stop_at_pct (the trainer stops itself at its first evaluation
  /// at or after that pct) and the stop rules are off (correlation, confidence, median accuracy,
  /// time limit, not-best: so desired_accuracy, training_time_hrs_limit,
  /// early_stop_proxy_task_if_not_best and confidence_k must stay unset); a proxy ends when
  /// every trial has ended (ran_till_completion, stop_rule "stop_at_pct") or on excess trial
  /// failures (as in a search). Its stop step is then the first aligned pct at or after
  /// stop_at_pct (with one evaluation cadence, the last, where the trials stopped; the last when
  /// none reaches it), and its final_training_steps and final_training_time_in_hours are that
  /// step's steps and median training time. With use_latency the latency correlation is
  /// measured, not checked. The result reports each proxy's correlation there (result_of) and
  /// names no best proxy. With the seed of a search and its chosen proxy, it re-measures that
  /// proxy; with another seed, it re-checks it with new trials. The mode is the options', as
  /// every rule is: resume a re-check's state with the same options.
  std::optional<double> stop_at_pct;
};

/// The proxy-task search tool: configuration only; all progress is in its `state`.
class proxy_search_tool {
 public:
  using state = proxy_search_state;
  /// reference tool: SEARCH_CONTROLLER_STATE_FILE
  static constexpr std::string_view state_file_name = "SEARCH_CONTROLLER_STATE.json";
  static constexpr std::string_view result_file_name = "PROXY_SEARCH_RESULT.json";
  static constexpr int schema_version = 1;
  static constexpr std::string_view tool_name = "proxy-task search";

  /// @throws logic_error for no reference model, no proxy, a repeated proxy name, a non-finite
  ///         reference score, confidence_level outside (0, 1), min_valid_pairs < 2,
  ///         min_valid_fraction outside [0, 1], confidence mode without bootstrap, stop_at_pct
  ///         outside (0, 100] (NaN included) or with a stop rule's option set
  explicit proxy_search_tool(proxy_search_options options);

  proxy_search_options const& options() const noexcept { return options_; }
  double desired_correlation() const noexcept;
  /// The trials a proxy needs to be valid: max(min_valid_pairs, ceil(fraction * models)).
  std::size_t required_valid_trials() const noexcept;
  /// The seed of model `m` (the same under every proxy).
  std::uint64_t model_seed(std::size_t m) const noexcept;

  state initial() const;
  /// The pure transition (see the file comment). A recorded trial missing from the observation
  /// is launched again with the same command; a listed trial never is. Proxies of the options
  /// that the state lacks are appended to it (an ended search extended with new proxy configs
  /// searches them too; the state's own proxies keep their arguments). In phase done the
  /// commands end with finish.
  step<state> advance(state const& s, observation const& obs) const;
  tool_progress describe(state const& s, observation const& obs) const;
  /// The finish command of a done state; its result, also PROXY_SEARCH_RESULT.json:
  ///   {"schema_version", "status": "found" | "none_succeeded" | "measured",
  ///    "best_proxy_task_name" (or null), "proxy_args" (found only), "final_training_steps",
  ///    "final_training_time_in_hours" (the best's, or null), "method", "desired_correlation",
  ///    "stop_at_pct" (null in a search), "confidence_level" (of the CIs), "advice": [lines],
  ///    "warnings": [lines],
  ///    "proxy_tasks": [{"name", "stopping_state", "stop_rule", "final_training_steps",
  ///                     "final_training_time_in_hours", "latency_correlation",
  ///                     "failed_trials", "trials", "at_stop"}]}
  /// where "at_stop" is the proxy's measurement at its stop step (null without one):
  ///   {"training_step_pct", "training_steps", "correlation" (the method's), "p_value",
  ///    "ci_low", "ci_high" (its bootstrap CI), "kendall", "spearman", "valid_pairs",
  ///    "meets_desired_correlation" (correlation >= desired)}; an invalid value is null.
  /// A search (stop_at_pct unset) is "found" with the best proxy (best_proxy_task) or
  /// "none_succeeded". A re-check (stop_at_pct set) is "measured": no stop rule ran, so no proxy
  /// succeeded by one and none is named best (best_proxy_task_name null, even when a proxy's
  /// correlation meets the desired one: that is a measurement, read it from "at_stop"); its
  /// advice gives each proxy's correlation with its CI at its stop pct, and its warnings each
  /// invalid-trial rate above 20%.
  finish result_of(state const& s) const;

  static result<state> state_from_json(boost::json::value const& v, json_location const& where);

 private:
  proxy_search_options options_;
};

/// Writes the state as SEARCH_CONTROLLER_STATE.json holds it (non-finite numbers as null).
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       proxy_search_state const& s);
/// Reads a state written by value_from; errors name "<source>#<pointer>".
inline result<proxy_search_state> proxy_search_state_from_json(boost::json::value const& v,
                                                               json_location const& where);
inline boost::system::result<proxy_search_state> tag_invoke(
    boost::json::try_value_to_tag<proxy_search_state>, boost::json::value const& jv);

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/proxy_search.inl>
