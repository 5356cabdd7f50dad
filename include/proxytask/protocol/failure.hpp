#pragma once
/// @file
/// Why a trial failed: the one failure taxonomy of proxytask, and TRIAL_FAILURE.json, which a
/// trainer writes before it exits non-zero:
///   {"kind": "crashed" | "oom" | "diverged" | "no_metrics" | "timed_out" | "cancelled" |
///            "preempted" | "node_failed" | "lost",
///    "message": string, "training_step": int (optional: the step where it failed)}

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace proxytask::protocol {

/// How a trial failed.
enum class failure_kind {
  crashed,      ///< the trainer exited non-zero or died of a signal, for no reason given
  oom,          ///< out of (device) memory
  diverged,     ///< the loss or accuracy became NaN or infinite
  no_metrics,   ///< the trainer ended without reporting any metric
  timed_out,    ///< it ran past its wall-clock limit
  cancelled,    ///< the controller cancelled it
  preempted,    ///< the machine was taken away (spot / preemptible capacity)
  node_failed,  ///< the machine failed
  lost,         ///< the executor lost track of it (no status any more)
};

/// The kinds in declaration order (for parsing and listing).
inline constexpr failure_kind all_failure_kinds[] = {
    failure_kind::crashed,    failure_kind::oom,         failure_kind::diverged,
    failure_kind::no_metrics, failure_kind::timed_out,   failure_kind::cancelled,
    failure_kind::preempted,  failure_kind::node_failed, failure_kind::lost};

/// The file's string for a kind: "crashed", "oom", ...
constexpr std::string_view to_string(failure_kind k) noexcept {
  switch (k) {
    case failure_kind::crashed: return "crashed";
    case failure_kind::oom: return "oom";
    case failure_kind::diverged: return "diverged";
    case failure_kind::no_metrics: return "no_metrics";
    case failure_kind::timed_out: return "timed_out";
    case failure_kind::cancelled: return "cancelled";
    case failure_kind::preempted: return "preempted";
    case failure_kind::node_failed: return "node_failed";
    case failure_kind::lost: return "lost";
  }
  return "?";
}

/// The kind named by `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<failure_kind> parse_failure_kind(std::string_view s) noexcept {
  for (failure_kind const k : all_failure_kinds)
    if (to_string(k) == s) return k;
  return std::nullopt;
}

/// The contents of TRIAL_FAILURE.json.
struct trial_failure {
  failure_kind kind = failure_kind::crashed;
  std::string message;                        ///< for people: what happened
  std::optional<std::int64_t> training_step;  ///< the step where it failed, when known
};

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       trial_failure const& f) {
  boost::json::object o{{"kind", to_string(f.kind)}, {"message", f.message}};
  if (f.training_step) o["training_step"] = *f.training_step;
  jv = std::move(o);
}

/// Reads a trial_failure from a parsed document; unknown members are ignored.
/// @returns the failure, or errc::malformed_file naming "<source>#/kind" (missing, not a string,
///          or not one of the kinds), "#/message" or "#/training_step" (not an integer >= 0)
inline result<trial_failure> trial_failure_from_json(boost::json::value const& v,
                                                     json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  trial_failure f;
  auto const kind = read_json_member(**o, "kind", where, read_json_string);
  if (!kind) return kind.error();
  auto const parsed = parse_failure_kind(*kind);
  if (!parsed) {
    std::string expected;
    for (failure_kind const k : all_failure_kinds)
      expected += (expected.empty() ? "" : ", ") + std::string(to_string(k));
    return (where / "kind")
        .fail("unknown failure kind \"" + *kind + "\" (expected one of " + expected + ")");
  }
  f.kind = *parsed;
  auto message = read_json_member(**o, "message", where, read_json_string);
  if (!message) return message.error();
  f.message = std::move(*message);
  if (auto const* step = (*o)->if_contains("training_step")) {
    auto const s = read_json_count(*step, where / "training_step");
    if (!s) return s.error();
    f.training_step = *s;
  }
  return f;
}

/// Parses TRIAL_FAILURE.json's text.
/// @returns the failure, or errc::malformed_file naming the source and the bad line or field
inline result<trial_failure> parse_trial_failure(std::string_view text, std::string_view source) {
  auto const doc = parse_json_lenient(text, source);
  if (!doc) return doc.error();
  return trial_failure_from_json(*doc, json_location(source));
}

/// Boost.JSON's non-throwing conversion (error code only; parse_trial_failure gives the message).
inline boost::system::result<trial_failure> tag_invoke(boost::json::try_value_to_tag<trial_failure>,
                                                       boost::json::value const& jv) {
  auto f = trial_failure_from_json(jv, json_location(""));
  if (!f) return boost::system::error_code(f.error().code);
  return std::move(*f);
}

}  // namespace proxytask::protocol
