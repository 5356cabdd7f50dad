#pragma once
/// @file
/// The file names of the trial file protocol (DESIGN.md "Trial file protocol"): the files in a
/// trial's directory (the trainer's --model_dir), spelled as the Vertex AI NAS trainer library
/// spells them, and the reading helper that the trainer and controller sides share.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>

#include <filesystem>
#include <string_view>

namespace proxytask::protocol {

/// Written by the trainer: the accuracy curve, training time and latency (trial_metrics).
inline constexpr std::string_view training_metrics_file_name = "TRIAL_TRAINING_METRICS.json";
/// Written by the controller: train until this pct, 0 = stop now (desired_pct_signal).
inline constexpr std::string_view desired_pct_file_name = "DESIRED_TRAINING_PCT.json";
/// Written by the controller: stop once this much training time is recorded (time_limit_signal).
inline constexpr std::string_view max_training_time_file_name = "MAX_TRAINING_TIME.json";
/// Written by the controller: its heartbeat (heartbeat_signal).
inline constexpr std::string_view heartbeat_file_name = "controller_alive_timestamp.json";
/// Written by the controller, read by the trainer: the model to train (model_spec).
inline constexpr std::string_view model_spec_file_name = "MODEL_SPEC.json";
/// Written by the trainer before it exits non-zero: why it failed (trial_failure).
inline constexpr std::string_view trial_failure_file_name = "TRIAL_FAILURE.json";
/// Written by a separate latency calculator (the seed's on-premises latency device), read by the
/// controller: the latency of the trial's model measured where latency matters (model_latency,
/// protocol/latency.hpp). Not part of the Vertex AI NAS library's files.
inline constexpr std::string_view model_latency_file_name = "MODEL_LATENCY.json";

namespace detail {

/// Reads the file at `path` and parses it with `parse(text, source)`, the source being the path.
/// A missing file stays errc::not_found, so callers can tell "not written yet" from "broken".
template <class Parse>
auto read_protocol_file(std::filesystem::path const& path, Parse parse)
    -> decltype(parse(std::string_view{}, std::string_view{})) {
  auto const text = read_file(path);
  if (!text) return text.error();
  return parse(*text, path.string());
}

}  // namespace detail

}  // namespace proxytask::protocol
