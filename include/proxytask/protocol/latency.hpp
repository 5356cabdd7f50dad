#pragma once
/// @file
/// MODEL_LATENCY.json: the latency of a trial's model as a separate latency calculator measured
/// it on the device where latency matters (the seed's "on-premises latency device": a CPU host,
/// an edge board), written into the trial's directory next to the trainer's files:
///   {"latency": float (milliseconds) | null (the measurement failed),
///    "message": string (why it failed, or how it was measured),
///    "device": string (what measured it, e.g. "cpu: 1 BLAS thread, batch 1, median of 200"),
///    "measured_unix_s": float}
/// It is part of the trial file protocol (protocol/files.hpp): the calculator writes it once per
/// trial, atomically, and writes no other file; the executors report it as
/// workflow::trial_status::measured_latency, which tools prefer to the trainer's own
/// TRIAL_TRAINING_METRICS.json "latency". Readers accept NaN / Infinity tokens (a non-finite
/// latency reads as a failed measurement) and ignore unknown members; only "latency" is required.

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/files.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace proxytask::protocol {

/// The contents of MODEL_LATENCY.json.
struct model_latency {
  /// Milliseconds (finite, >= 0), or NaN for a failed measurement (written as null).
  double latency_ms = std::numeric_limits<double>::quiet_NaN();
  std::string message;         ///< why the measurement failed, or a note on how it was made
  std::string device;          ///< what measured it (free text)
  double measured_unix_s = 0;  ///< when

  /// Whether the measurement succeeded (a finite latency).
  bool ok() const noexcept { return std::isfinite(latency_ms); }
};

/// Serialises to the file's JSON (a failed latency as null).
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       model_latency const& m) {
  jv = {{"latency", json_number(m.latency_ms)},
        {"message", m.message},
        {"device", m.device},
        {"measured_unix_s", json_number(m.measured_unix_s)}};
}

/// Reads a model_latency from a parsed document. Unknown members are ignored; "message",
/// "device" and "measured_unix_s" are optional.
/// @returns the record, or errc::malformed_file naming "<source>#<pointer>": "#/latency" when it
///          is missing, not a number or null, or negative; "#/message", "#/device" when not a
///          string; "#/measured_unix_s" when not a finite number
inline result<model_latency> model_latency_from_json(boost::json::value const& v,
                                                     json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  model_latency m;
  auto const latency = read_json_field(**o, "latency", where);
  if (!latency) return latency.error();
  if (!(*latency)->is_null()) {
    auto const d = read_json_double(**latency, where / "latency");
    if (!d) return (where / "latency").fail("expected a number of milliseconds or null");
    if (*d < 0) return (where / "latency").fail("expected a latency >= 0");
    m.latency_ms = std::isfinite(*d) ? *d : std::numeric_limits<double>::quiet_NaN();
  }
  for (auto [key, into] : {std::pair{"message", &m.message}, std::pair{"device", &m.device}}) {
    if (auto const* s = (*o)->if_contains(key)) {
      auto text = read_json_string(*s, where / key);
      if (!text) return text.error();
      *into = std::move(*text);
    }
  }
  if (auto const* t = (*o)->if_contains("measured_unix_s")) {
    auto const when = read_json_finite(*t, where / "measured_unix_s");
    if (!when) return when.error();
    m.measured_unix_s = *when;
  }
  return m;
}

/// Parses the text of a MODEL_LATENCY.json (NaN / Infinity tokens accepted).
/// @param[in] text   the file's contents
/// @param[in] source what the text is, for messages (usually the file's path)
/// @returns the record, or errc::malformed_file naming source and the line and column (syntax)
///          or the JSON pointer of the bad field
inline result<model_latency> parse_model_latency(std::string_view text, std::string_view source) {
  auto const doc = parse_json_lenient(text, source);
  if (!doc) return doc.error();
  return model_latency_from_json(*doc, json_location(source));
}

/// Boost.JSON's non-throwing conversion (error code only; parse_model_latency gives the message).
inline boost::system::result<model_latency> tag_invoke(boost::json::try_value_to_tag<model_latency>,
                                                       boost::json::value const& jv) {
  auto m = model_latency_from_json(jv, json_location(""));
  if (!m) return boost::system::error_code(m.error().code);
  return std::move(*m);
}

/// Reads the trial's MODEL_LATENCY.json.
/// @returns the record; errc::not_found when no latency calculator has written it (yet);
///          errc::malformed_file naming the file and field (or line and column)
inline result<model_latency> read_model_latency(std::filesystem::path const& trial_dir) {
  return detail::read_protocol_file(trial_dir / model_latency_file_name, parse_model_latency);
}

/// Writes the trial's MODEL_LATENCY.json atomically (what a latency calculator does, once).
/// @pre m.latency_ms is NaN (a failed measurement) or finite and >= 0; m.measured_unix_s finite
/// @returns the error of the write
inline result<void> post_model_latency(std::filesystem::path const& trial_dir,
                                       model_latency const& m) {
  PROXYTASK_EXPECTS(std::isnan(m.latency_ms) || (std::isfinite(m.latency_ms) && m.latency_ms >= 0),
                    "post_model_latency: the latency must be NaN (failed) or finite and >= 0");
  PROXYTASK_EXPECTS(std::isfinite(m.measured_unix_s),
                    "post_model_latency: the timestamp must be finite");
  return write_json_file(trial_dir / model_latency_file_name, boost::json::value_from(m));
}

}  // namespace proxytask::protocol
