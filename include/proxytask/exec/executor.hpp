#pragma once
/// @file
/// The executor concept: what the workflow driver needs from whatever runs the trials (a
/// simulation, local processes, a cluster). An executor owns <run_dir>/trials/<trial_id>/ of each
/// trial it launches and reports their statuses; the driver never starts a trainer itself.

#include <proxytask/core/error.hpp>
#include <proxytask/workflow/tool.hpp>

#include <concepts>
#include <filesystem>
#include <string>
#include <string_view>

namespace proxytask::exec {

/// The directory under a run's directory that holds the trials.
inline constexpr std::string_view trials_directory_name = "trials";

/// Where every executor keeps a trial: <run_dir>/trials/<trial_id>/. The driver posts the
/// controller's heartbeat there.
inline std::filesystem::path trial_directory(std::filesystem::path const& run_dir,
                                             std::string_view trial_id) {
  return run_dir / trials_directory_name / trial_id;
}

/// An executor of trials.
///   - launch(l): creates <run_dir>/trials/<l.trial_id>/, MODEL_SPEC.json, the signals (the
///     desired pct when given), and starts the trainer;
///   - observe(): the statuses of all trials launched by this run, in launch order (also after a
///     controller restart: it reads them back from the run directory);
///   - set_desired_pct(id, pct): posts DESIRED_TRAINING_PCT.json (0 = stop now);
///   - cancel(id): stops the trial (its phase becomes stopped);
///   - wait_for_next_poll(): real executors sleep the poll interval; the simulation advances its
///     virtual clock.
template <class E>
concept executor = requires(E& e, workflow::launch_trial const& l, std::string const& id,
                            double pct) {
  { e.launch(l) } -> std::same_as<result<void>>;
  { e.observe() } -> std::same_as<result<workflow::observation>>;
  { e.set_desired_pct(id, pct) } -> std::same_as<result<void>>;
  { e.cancel(id) } -> std::same_as<result<void>>;
  { e.wait_for_next_poll() } -> std::same_as<void>;
};

}  // namespace proxytask::exec
