#pragma once
/// @file
/// The model-selection schedule: how many models each iteration trains, and to which cumulative
/// training-step percentage.

#include <proxytask/core/error.hpp>
#include <proxytask/stats/pruning.hpp>

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace proxytask::workflow {

/// The desired pct of the last iteration: beyond any recorded pct, so training runs to
/// completion. reference tool: TRAINING_STEP_PCT_TO_COMPLETE_TRAINING
inline constexpr double train_to_completion_pct = 101.0;

/// The shape of model selection. reference tool: START_NUM_MODELS, FINAL_NUM_MODELS,
/// NUM_MODELS_TO_REMOVE_PER_ITER.
struct model_selection_options {
  std::size_t start_num_models = 30;
  /// An iteration of at most this many models trains them to completion (the last one).
  std::size_t final_num_models = 10;
  std::size_t num_models_to_remove_per_iter = 5;
};

/// One iteration of model selection.
struct selection_iteration {
  std::size_t num_trials;            ///< models trained in this iteration
  double desired_training_step_pct;  ///< cumulative pct to train to; train_to_completion_pct last
};

/// The desired pct of an iteration with `num_trials` models after an iteration that reached
/// `previous_pct` (0 before the first): K models train for 1/K of a full training more, and an
/// iteration of at most `final_num_models` trains to completion.
/// reference tool: run_model_selection_loop, `(1.0 / K) * 100` (not 100.0 / K: they differ in the
/// last bit for some K).
constexpr double next_desired_training_step_pct(double previous_pct, std::size_t num_trials,
                                                std::size_t final_num_models) noexcept {
  if (num_trials <= final_num_models) return train_to_completion_pct;
  return previous_pct + (1.0 / static_cast<double>(num_trials)) * 100.0;
}

/// The removals asked of pruning after an iteration of `num_trials` models: never below
/// final_num_models. reference tool: min(NUM_MODELS_TO_REMOVE_PER_ITER, K - FINAL_NUM_MODELS).
constexpr std::size_t num_models_to_remove(std::size_t num_trials,
                                           model_selection_options const& options) noexcept {
  std::size_t const above_final =
      num_trials > options.final_num_models ? num_trials - options.final_num_models : 0;
  return std::min(options.num_models_to_remove_per_iter, above_final);
}

/// The whole schedule, iteration by iteration, given how many trials of each iteration turn out
/// invalid (missing entries are 0): each iteration keeps its valid trials less the removals of
/// stats::pruning_removals. With the defaults: 30, 25, 20, 15, 10 models at 3.33, 7.33, 12.33,
/// 19.0 and 101 (to completion).
/// The reference tool finds out only at run time that a configuration cannot finish: an
/// iteration asked to train beyond 100% (the models do not shrink to final_num_models in time:
/// no removals, too few per iteration, or final_num_models below the 2 valid models pruning
/// keeps) leaves every trial without an accuracy and it crashes; so does an iteration whose
/// trials are all invalid. Here both are an error before anything is trained.
/// @param[in] options          the schedule's shape
/// @param[in] invalid_per_iter invalid trials in each iteration (what-if planning; empty = none)
/// @returns the iterations, the last one at train_to_completion_pct; errc::invalid_argument
///          when the schedule cannot finish (the message says why)
inline result<std::vector<selection_iteration>> model_selection_schedule(
    model_selection_options const& options, std::span<std::size_t const> invalid_per_iter = {}) {
  if (options.start_num_models == 0)
    return make_error(errc::invalid_argument, "model selection: start_num_models must be >= 1");
  if (options.start_num_models > options.final_num_models &&
      options.num_models_to_remove_per_iter == 0)
    return make_error(errc::invalid_argument,
                      "model selection: num_models_to_remove_per_iter is 0, so the " +
                          std::to_string(options.start_num_models) +
                          " models never shrink to final_num_models = " +
                          std::to_string(options.final_num_models));
  std::vector<selection_iteration> iterations;
  std::size_t num_trials = options.start_num_models;
  double pct = 0.0;
  for (;;) {
    pct = next_desired_training_step_pct(pct, num_trials, options.final_num_models);
    std::size_t const i = iterations.size();
    bool const last = num_trials <= options.final_num_models;
    if (!last && pct > 100.0)
      return make_error(
          errc::invalid_argument,
          "model selection: iteration " + std::to_string(i) + " would train " +
              std::to_string(num_trials) + " models to " + std::to_string(pct) +
              "% (> 100%): the models do not shrink to final_num_models = " +
              std::to_string(options.final_num_models) +
              " before the cumulative pct passes 100 (K models add 100/K % each iteration; "
              "pruning removes at most num_models_to_remove_per_iter = " +
              std::to_string(options.num_models_to_remove_per_iter) + " and keeps at least " +
              std::to_string(stats::min_trials_after_pruning) + " valid models)");
    iterations.push_back({num_trials, pct});
    if (last) return iterations;

    std::size_t const invalid =
        std::min(i < invalid_per_iter.size() ? invalid_per_iter[i] : std::size_t{0}, num_trials);
    std::size_t const valid = num_trials - invalid;
    if (valid == 0)
      return make_error(errc::invalid_argument, "model selection: iteration " + std::to_string(i) +
                                                    ": all " + std::to_string(num_trials) +
                                                    " trials are invalid");
    num_trials =
        valid - stats::pruning_removals(num_models_to_remove(num_trials, options), valid, invalid);
  }
}

}  // namespace proxytask::workflow
