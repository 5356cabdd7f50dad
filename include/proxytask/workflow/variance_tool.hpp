#pragma once
/// @file
/// The variance-measurement tool (DESIGN.md, "The three tools", item 1) as a pure state machine:
/// find a workable model (sample one, train it to 1%; a failure means sample another, up to 10
/// tries), train copies of it with distinct seeds to 100%, and report the coefficient of
/// variation of their final accuracies and the smoothness of their curves, with verdicts, a
/// bootstrap interval of the variance and the seed's advice when either is bad.
///
/// Files, as the reference tool names them: the state `measurement_state.json`
/// {schema_version, workable_model_dir, training_job_name, finished_model_dirs, + ours} and the
/// result `variance_and_smoothness.json` {variance_value, variance_info, smoothness_value,
/// smoothness_info, + ours} (written by the driver from the finish command).

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/metrics.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/curve.hpp>
#include <proxytask/stats/philox.hpp>
#include <proxytask/stats/variance.hpp>
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

/// Where the measurement is.
enum class measurement_phase {
  find_workable,  ///< training sampled models to workable_pct, one at a time
  measure,        ///< training the copies of the workable model to 100%
  done,           ///< finished (measured, too few copies, or no workable model)
};

/// "find_workable", "measure", "done".
constexpr std::string_view to_string(measurement_phase p) noexcept {
  switch (p) {
    case measurement_phase::find_workable: return "find_workable";
    case measurement_phase::measure: return "measure";
    case measurement_phase::done: return "done";
  }
  return "?";
}

/// The phase named by `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<measurement_phase> parse_measurement_phase(std::string_view s) noexcept {
  if (s == "find_workable") return measurement_phase::find_workable;
  if (s == "measure") return measurement_phase::measure;
  if (s == "done") return measurement_phase::done;
  return std::nullopt;
}

/// How the tool judged one of its trials.
enum class attempt_outcome {
  running,    ///< not judged yet
  succeeded,  ///< a try: workable; a copy: trained to 100% with a finite final accuracy
  failed,     ///< failed, diverged, or ended without reaching its pct (see the message)
};

/// "running", "succeeded", "failed".
constexpr std::string_view to_string(attempt_outcome o) noexcept {
  switch (o) {
    case attempt_outcome::running: return "running";
    case attempt_outcome::succeeded: return "succeeded";
    case attempt_outcome::failed: return "failed";
  }
  return "?";
}

/// The outcome named by `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<attempt_outcome> parse_attempt_outcome(std::string_view s) noexcept {
  if (s == "running") return attempt_outcome::running;
  if (s == "succeeded") return attempt_outcome::succeeded;
  if (s == "failed") return attempt_outcome::failed;
  return std::nullopt;
}

/// One sampled model trained to workable_pct (trial "workable-<n>").
struct workable_try {
  std::string trial_id;
  std::uint64_t seed = 0;     ///< the trial's seed, also the sampler's
  protocol::model_spec spec;  ///< what the sampler gave for the seed
  attempt_outcome outcome = attempt_outcome::running;
  std::optional<protocol::failure_kind> failure;  ///< when failed with a kind
  std::string message;                            ///< why it failed
  /// The accuracy at workable_pct (NaN until workable).
  double accuracy = std::numeric_limits<double>::quiet_NaN();
};

/// One training of a copy of the workable model (trial "copy-<c>" or "copy-<c>-retry").
struct copy_attempt {
  std::string trial_id;
  std::uint64_t seed = 0;
  attempt_outcome outcome = attempt_outcome::running;
  std::optional<protocol::failure_kind> failure;  ///< when failed with a kind
  std::string message;                            ///< why it failed
  /// The accuracy at the highest recorded pct (NaN until succeeded).
  double final_accuracy = std::numeric_limits<double>::quiet_NaN();
  std::vector<stats::curve_point> curve;  ///< its curve as recorded, once succeeded
};

/// One of the copies: its first training and at most one retry.
struct measured_copy {
  std::vector<copy_attempt> attempts;

  /// The successful attempt, or nullptr.
  copy_attempt const* success() const noexcept {
    return !attempts.empty() && attempts.back().outcome == attempt_outcome::succeeded
               ? &attempts.back()
               : nullptr;
  }
  /// Whether the copy is over: succeeded, or failed twice (left out).
  bool resolved() const noexcept {
    return success() != nullptr ||
           (attempts.size() >= 2 && attempts.back().outcome == attempt_outcome::failed);
  }
};

/// The state of a measurement (measurement_state.json).
struct variance_state {
  measurement_phase phase = measurement_phase::find_workable;
  std::vector<workable_try> tries;      ///< in launch order; only the last may be running
  std::optional<std::size_t> workable;  ///< index into tries of the workable model
  std::vector<measured_copy> copies;    ///< filled when the measure phase starts
  // reference tool: MeasurementState's fields (directories relative to the run directory)
  std::string workable_model_dir;                ///< "trials/<workable trial id>"
  std::string training_job_name;                 ///< set when the copies are launched
  std::vector<std::string> finished_model_dirs;  ///< "trials/<id>" of the successful copies
};

/// A deterministic function from a seed to a model of the search space.
using model_sampler = std::function<protocol::model_spec(std::uint64_t)>;

/// The tool's settings other than the search space.
struct variance_options {
  /// Copies of the workable model. reference tool: NUM_TRIALS_FOR_MEASUREMENT
  std::size_t copies = 5;
  /// Models tried before giving up. reference tool: MAX_FAILED_MODELS_TO_ABORT
  std::size_t max_workable_tries = 10;
  /// A model is workable when it reaches this pct with a finite accuracy (reference tool: 1).
  double workable_pct = 1.0;
  /// Seeds every trial, the sampler and the bootstrap.
  std::uint64_t seed = 0;
  /// Trainer arguments of every trial (the proxy settings being measured).
  std::map<std::string, std::string> proxy_args;
  /// Resamples of the bootstrap interval of the coefficient of variation.
  std::size_t bootstrap_resamples = 2000;
  /// Its confidence level.
  double confidence = 0.95;
  /// The state's training_job_name once the copies are launched.
  std::string job_name = "variance_measurement";
};

/// The variance-measurement tool: configuration only; all progress is in its `state`.
class variance_tool {
 public:
  using state = variance_state;
  /// reference tool: MEASUREMENT_STATE_FILE_NAME
  static constexpr std::string_view state_file_name = "measurement_state.json";
  /// reference tool: MEASUREMENT_RESULT_FILE_NAME
  static constexpr std::string_view result_file_name = "variance_and_smoothness.json";
  static constexpr int schema_version = 1;
  /// For progress lines and status.json.
  static constexpr std::string_view tool_name = "variance measurement";

  /// @param[in] sampler the search space: a model for a seed; it must be deterministic (advance
  ///                    calls it once per try and records the spec in the state)
  /// @param[in] options the settings
  /// @throws logic_error without a sampler, with copies or max_workable_tries 0,
  ///         workable_pct outside (0, 100], no bootstrap resamples or a confidence outside (0, 1)
  explicit variance_tool(model_sampler sampler, variance_options options = {});

  /// The settings.
  variance_options const& options() const noexcept { return options_; }

  /// The state before anything is launched.
  state initial() const { return state{}; }

  /// The pure transition. A recorded trial that the observation does not list (a launch lost to
  /// a kill between persisting and acting) is launched again with the same id, spec and seed; a
  /// trial the observation lists is never launched again. In phase done, and on the step that
  /// reaches it, the commands end with `finish` (computed from the state alone).
  /// @param[in] s   the current state
  /// @param[in] obs the statuses of the run's trials
  step<state> advance(state const& s, observation const& obs) const;

  /// Where the measurement stands (pure): the phase, the last decision, and the fraction of the
  /// copies' training done (0 while looking for a workable model).
  tool_progress describe(state const& s, observation const& obs) const;

  /// The finish command of a state in phase done: the result, a one-line summary and
  /// variance_and_smoothness.json (not written when no model was workable).
  finish result_of(state const& s) const;

  /// Reads a state file's document (the driver's loader uses it, so that errors name the
  /// member: "<file>#/copies/2/attempts/0/seed: missing"); see variance_state_from_json.
  static result<state> state_from_json(boost::json::value const& v, json_location const& where);

  /// The seed of try `n` (also given to the sampler), before de-duplication.
  std::uint64_t try_seed(std::size_t n) const noexcept;

 private:
  model_sampler sampler_;
  variance_options options_;
};

/// Writes the state as measurement_state.json holds it, with "schema_version" (non-finite
/// numbers as null).
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       variance_state const& s);

/// Reads a state written by value_from; unknown members are ignored.
/// @param[in] v     the document
/// @param[in] where its location, for messages (the state file's path)
/// @returns the state; errc::malformed_file naming "<source>#<pointer>" for a missing or
///          mistyped member, or a schema_version newer than variance_tool::schema_version
inline result<variance_state> variance_state_from_json(boost::json::value const& v,
                                                       json_location const& where);

/// Boost.JSON's non-throwing conversion (error code only; variance_state_from_json gives the
/// message).
inline boost::system::result<variance_state> tag_invoke(
    boost::json::try_value_to_tag<variance_state>, boost::json::value const& jv);

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/variance_tool.inl>
