#pragma once
/// @file
/// The model-selection tool (DESIGN.md, "The three tools", item 2) as a pure state machine: find
/// the ~N correlation-candidate models and their full-training scores, which the proxy-task
/// search later correlates proxy scores against.
///
/// The workflow (the seed's "Model selection"):
///   - iteration 0 samples start_num_models models (30 by default) and trains each to 100/K % of
///     a full training (K = the iteration's models);
///   - each later iteration continues the kept models from their previous trial's checkpoint
///     (launch_trial::resume_from; the metrics carry over) to a cumulative pct that grows by 100/K;
///   - after each iteration, num_models_to_remove_per_iter models (5) are dropped by the
///     distribution-preserving rule of stats::prune_trials, on the accuracy at the iteration's
///     pct and the latency (or the accuracy alone); invalid trials count towards the removals;
///   - an iteration of at most final_num_models models (10) trains them to completion: its valid
///     models, with their full-training accuracy (and latency), are the reference set.
///
/// Where the reference tool is wrong, this one is not (tests/data/reference/README.md): 0.0 is a
/// score; a NaN accuracy makes a trial invalid; a configuration whose cumulative pct would pass
/// 100 before the last iteration is rejected by the constructor; failed models of iteration 0 are
/// replaced by fresh samples (up to a budget), so that iteration 0 still has start_num_models
/// valid models; more than max_failed_fraction (20%) failures in iteration 0 abort the run with a
/// report naming each failed trial and its failure; a final set smaller than final_num_models is
/// said so in the result's status, never silently.
///
/// Files: the state MODEL_SELECTION_STATE.json (the reference's fields start_num_models,
/// final_num_models, num_models_to_remove_per_iter, accuracy_metric_id, latency_metric_id and
/// iterations[{num_trials, trials_to_retrain, desired_training_step_pct, search_job_name}], plus
/// ours: every trial with its model, seed, scores, verdict and fate), and the result
/// MODEL_SELECTION_RESULT.json (the reference table that the proxy-task search reads; see
/// model_selection_tool::result_of), written by the driver from the finish command.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/stats/curve.hpp>
#include <proxytask/stats/pruning.hpp>
#include <proxytask/workflow/schedule.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::workflow {

/// Where a model selection is.
enum class selection_phase {
  training,  ///< iterations in progress
  done,      ///< finished: the reference set (complete or not), or no valid model left
  aborted,   ///< too many failures in iteration 0 (the failure gate)
};

/// Where a model's latency comes from.
enum class latency_source {
  none,        ///< no latency: pruning is on the accuracy alone
  trainer,     ///< the trial's measured_latency when present, else the trainer's metrics latency
  calculator,  ///< a separate latency calculator (trial_status::measured_latency), required
};

/// How the tool judged a trial.
enum class selection_verdict {
  running,           ///< not judged yet
  awaiting_latency,  ///< trained; waiting for the latency calculator (latency_source::calculator)
  valid,             ///< its scores count
  invalid,           ///< see invalid_reason
};

/// Why a trial is invalid.
enum class invalid_reason {
  failed,           ///< the trial failed (trial_status::failure says how)
  nan_accuracy,     ///< its accuracy at the pct is NaN or infinite (diverged)
  pct_not_reached,  ///< it ended before the iteration's pct (100% in the last iteration)
  no_latency,       ///< latency required and the trainer reported none
  latency_failed,   ///< the latency calculator reported a failed measurement
  latency_timeout,  ///< no latency within latency_wait_s after training ended
};

/// What became of a trial once its iteration was concluded.
enum class selection_fate {
  pending,    ///< its iteration is not concluded
  kept,       ///< kept by pruning: continued in the next iteration
  removed,    ///< removed by pruning
  invalid,    ///< invalid: dropped (counted towards the removals)
  replaced,   ///< iteration 0: invalid and replaced by a fresh sample (replaced_by)
  reference,  ///< last iteration, valid: one of the reference models
};

/// The names the state and result files use (the enumerators' names).
inline std::string_view to_string(selection_phase p) noexcept;
inline std::string_view to_string(latency_source s) noexcept;
inline std::string_view to_string(selection_verdict v) noexcept;
inline std::string_view to_string(invalid_reason r) noexcept;
inline std::string_view to_string(selection_fate f) noexcept;

/// One trial: one model trained in one iteration ("iter-<i>-model-<m>").
struct selection_trial {
  std::string trial_id;
  std::size_t model_index = 0;  ///< stable across iterations; refills get start_num_models, ...
  std::uint64_t seed = 0;       ///< the model's seed (also the sampler's), the same every iteration
  protocol::model_spec spec;
  std::optional<std::string> resume_from;  ///< its trial of the previous iteration
  selection_verdict verdict = selection_verdict::running;
  std::optional<invalid_reason> reason;           ///< when invalid
  std::optional<protocol::failure_kind> failure;  ///< the failure's kind, when there is one
  std::string message;                            ///< why it is invalid
  /// The accuracy at the iteration's pct (last iteration: at the end of training); NaN if none.
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  /// The latency pruning used; NaN when none (or latency_source::none).
  double latency = std::numeric_limits<double>::quiet_NaN();
  std::optional<double> ended_unix_s;  ///< when the tool saw it trained (the latency wait's start)
  selection_fate fate = selection_fate::pending;
  std::optional<std::string> replaced_by;  ///< iteration 0: the refill's trial id
};

/// One iteration (MODEL_SELECTION_STATE.json's "iterations" entries).
struct selection_round {
  // reference tool: num_trials, trials_to_retrain, desired_training_step_pct, search_job_name
  std::size_t num_trials = 0;  ///< models in the iteration (iteration 0: start_num_models)
  std::vector<std::string> trials_to_retrain;  ///< kept trial ids, once concluded (in trial order)
  double desired_training_step_pct = 0;        ///< cumulative; train_to_completion_pct in the last
  std::string search_job_name;                 ///< "<job_name>_iter_<i>"
  // ours
  bool last = false;       ///< trains to completion: its valid models are the reference set
  bool cut_short = false;  ///< made the last because the next pct would have passed 100
  bool concluded = false;  ///< every trial judged (and, unless last, pruned)
  std::size_t num_models_to_remove = 0;     ///< removals asked of pruning
  std::vector<std::string> removed_trials;  ///< in removal order
  std::vector<std::string> invalid_trials;  ///< invalid and not replaced, in trial order
  std::vector<selection_trial> trials;      ///< in launch order (= model index order)
};

/// The state of a model selection (MODEL_SELECTION_STATE.json).
struct model_selection_state {
  // reference tool: ModelSelectionState's fields
  std::size_t start_num_models = 0;
  std::size_t final_num_models = 0;
  std::size_t num_models_to_remove_per_iter = 0;
  std::string accuracy_metric_id;
  std::string latency_metric_id;
  std::vector<selection_round> iterations;
  // ours
  selection_phase phase = selection_phase::training;
};

/// A deterministic function from a seed to a model of the search space (as the variance tool's).
using model_sampler = std::function<protocol::model_spec(std::uint64_t)>;

/// The tool's settings other than the search space.
struct model_selection_tool_options {
  /// start_num_models (30), final_num_models (10), num_models_to_remove_per_iter (5).
  model_selection_options schedule;
  /// Seeds the models (each model's seed is also its trials' seed).
  std::uint64_t seed = 0;
  /// Trainer arguments of every trial.
  std::map<std::string, std::string> proxy_args;
  /// Where latencies come from (none: accuracy alone).
  latency_source latency = latency_source::none;
  /// latency_source::trainer: a trial without a latency is invalid. When false, the latency is a
  /// score only if every valid trial has one (stats::prune_trials' rule).
  bool latency_required = true;
  /// latency_source::calculator: observation seconds to wait, after a trial has trained, for
  /// its measured latency; then it is invalid (latency_timeout).
  double latency_wait_s = 3600;
  /// The failure gate: more than this fraction of start_num_models failing in iteration 0
  /// (originals and refills together) aborts the run. The seed's 20%. 1 = never.
  double max_failed_fraction = 0.2;
  /// Fresh samples that may replace failed models of iteration 0; nullopt = as many failures as
  /// the gate allows (floor(max_failed_fraction * start_num_models)). 0 = no refills.
  std::optional<std::size_t> max_refills;
  /// The state's metric ids (what the trainer's accuracy and latency are; informational).
  /// reference tool: --accuracy_metric_id, --latency_metric_id
  std::string accuracy_metric_id = "accuracy";
  std::string latency_metric_id = "latency";
  /// The iterations' search_job_name prefix.
  std::string job_name = "model_selection";
};

/// The model-selection tool: configuration only; all progress is in its `state`.
class model_selection_tool {
 public:
  using state = model_selection_state;
  /// reference tool: MODEL_SELECTION_STATE_FILE
  static constexpr std::string_view state_file_name = "MODEL_SELECTION_STATE.json";
  /// The reference table (see result_of).
  static constexpr std::string_view result_file_name = "MODEL_SELECTION_RESULT.json";
  static constexpr int schema_version = 1;
  /// For progress lines and status.json.
  static constexpr std::string_view tool_name = "model selection";

  /// @param[in] sampler the search space: a model for a seed; it must be deterministic (advance
  ///                    calls it once per model and records the spec in the state)
  /// @param[in] options the settings
  /// @throws logic_error without a sampler; for a schedule that cannot finish (the message of
  ///         model_selection_schedule: e.g. the cumulative pct would pass 100 before the models
  ///         shrink to final_num_models); max_failed_fraction outside [0, 1]; latency_wait_s
  ///         negative or not finite
  explicit model_selection_tool(model_sampler sampler, model_selection_tool_options options = {});

  /// The settings.
  model_selection_tool_options const& options() const noexcept { return options_; }
  /// The planned iterations when no trial is invalid (model_selection_schedule).
  std::vector<selection_iteration> const& planned_schedule() const noexcept { return planned_; }
  /// The failures the gate allows in iteration 0: floor(max_failed_fraction * start_num_models).
  std::size_t max_failed_trials() const noexcept;
  /// The refills allowed in iteration 0 (max_refills, or max_failed_trials()).
  std::size_t refill_budget() const noexcept;
  /// The seed of model `m` (also given to the sampler), before de-duplication.
  std::uint64_t model_seed(std::size_t m) const noexcept;

  /// The state before anything is launched (the counts and metric ids filled in).
  state initial() const;

  /// The pure transition. A recorded trial that the observation does not list (a launch lost to
  /// a kill between persisting and acting) is launched again with the same command; a trial the
  /// observation lists is never launched again. In phase done or aborted, and on the step that
  /// reaches it, the commands end with `finish` (computed from the state alone); an abort first
  /// stops the trials of iteration 0 that still run.
  /// @pre the state's counts are the options' (it was made by this configuration)
  step<state> advance(state const& s, observation const& obs) const;

  /// Where the selection stands (pure): the phase, the iteration and its trials, and the
  /// fraction of the planned training done.
  tool_progress describe(state const& s, observation const& obs) const;

  /// The finish command of a state in phase done or aborted. Its result, also written as
  /// MODEL_SELECTION_RESULT.json:
  ///   {"schema_version": 1,
  ///    "status": "complete" | "below_final_num_models" | "no_valid_models" | "aborted",
  ///    "message", "final_num_models", "num_reference_models", "accuracy_metric_id",
  ///    "latency_metric_id", "latency_source",
  ///    "reference_models": [{"model_index", "model_id", "spec", "seed", "trial_id",
  ///                          "trial_dir", "accuracy", "latency" (null without)}]  (model order),
  ///    "iterations": [{"iteration", "num_trials", "desired_training_step_pct", "last",
  ///                    "cut_short", "num_models_to_remove", "trials_to_retrain", "removed",
  ///                    "invalid"}],
  ///    "failures": [{"trial_id", "iteration", "model_index", "model_id", "reason", "failure"
  ///                  (kind or null), "message", "replaced_by" (or null)}],
  ///    "max_failed_trials", "first_iteration_failures"}
  /// reference_models is empty unless the status is complete or below_final_num_models.
  finish result_of(state const& s) const;

  /// Reads a state file's document (the driver's loader uses it, so that errors name the
  /// member: "<file>#/iterations/1/trials/3/seed: missing"); see model_selection_state_from_json.
  static result<state> state_from_json(boost::json::value const& v, json_location const& where);

 private:
  model_sampler sampler_;
  model_selection_tool_options options_;
  std::vector<selection_iteration> planned_;
};

/// Writes the state as MODEL_SELECTION_STATE.json holds it, with "schema_version" (non-finite
/// numbers as null).
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       model_selection_state const& s);

/// Reads a state written by value_from; unknown members are ignored.
/// @param[in] v     the document
/// @param[in] where its location, for messages (the state file's path)
/// @returns the state; errc::malformed_file naming "<source>#<pointer>" for a missing or
///          mistyped member, or a schema_version newer than model_selection_tool::schema_version
inline result<model_selection_state> model_selection_state_from_json(boost::json::value const& v,
                                                                     json_location const& where);

/// Boost.JSON's non-throwing conversion (error code only; model_selection_state_from_json gives
/// the message).
inline boost::system::result<model_selection_state> tag_invoke(
    boost::json::try_value_to_tag<model_selection_state>, boost::json::value const& jv);

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/model_selection.inl>
