#pragma once
/// @file
/// The controller's signals to a running trainer, one file each, with their JSON conversions:
///   DESIRED_TRAINING_PCT.json        {"desired_training_pct": float}   (0 = stop now)
///   MAX_TRAINING_TIME.json           {"max_training_time_in_hrs": float}
///   controller_alive_timestamp.json  {"timestamp": float unix seconds}
/// The files are independent: posting one never drops another.

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <string_view>

namespace proxytask::protocol {

/// DESIRED_TRAINING_PCT.json: train until 100 * (end_step + 1) / total_steps >= this.
struct desired_pct_signal {
  double desired_training_pct;  ///< finite, >= 0; 0 means "stop now"
};

/// MAX_TRAINING_TIME.json: stop once the recorded training time reaches this.
struct time_limit_signal {
  double max_training_time_in_hrs;  ///< finite, >= 0
};

/// controller_alive_timestamp.json: when the controller last said it was alive.
struct heartbeat_signal {
  double timestamp;  ///< unix seconds (finite)
};

/// Seconds since the unix epoch, now (what a heartbeat's timestamp holds).
inline double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       desired_pct_signal const& s) {
  jv = {{"desired_training_pct", json_number(s.desired_training_pct)}};
}
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       time_limit_signal const& s) {
  jv = {{"max_training_time_in_hrs", json_number(s.max_training_time_in_hrs)}};
}
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       heartbeat_signal const& s) {
  jv = {{"timestamp", json_number(s.timestamp)}};
}

namespace detail {

/// Reads the one number member `key` of a signal file's object with `read`.
template <class Read>
result<double> read_signal(boost::json::value const& v, json_location const& where,
                           std::string_view key, Read read) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  return read_json_member(**o, key, where, read);
}

/// Parses a signal file's text and converts its one member with `read`.
template <class Signal, class Read>
result<Signal> parse_signal(std::string_view text, std::string_view source, std::string_view key,
                            Read read) {
  auto const doc = parse_json_lenient(text, source);
  if (!doc) return doc.error();
  auto const d = read_signal(*doc, json_location(source), key, read);
  if (!d) return d.error();
  return Signal{*d};
}

}  // namespace detail

/// Parses DESIRED_TRAINING_PCT.json's text.
/// @returns the signal, or errc::malformed_file naming "<source>#/desired_training_pct" when the
///          member is missing, not a number, not finite or negative
inline result<desired_pct_signal> parse_desired_pct(std::string_view text,
                                                    std::string_view source) {
  return detail::parse_signal<desired_pct_signal>(text, source, "desired_training_pct",
                                                  read_json_non_negative);
}

/// Parses MAX_TRAINING_TIME.json's text.
/// @returns the signal, or errc::malformed_file naming "<source>#/max_training_time_in_hrs"
///          when the member is missing, not a number, not finite or negative
inline result<time_limit_signal> parse_time_limit(std::string_view text, std::string_view source) {
  return detail::parse_signal<time_limit_signal>(text, source, "max_training_time_in_hrs",
                                                 read_json_non_negative);
}

/// Parses controller_alive_timestamp.json's text.
/// @returns the signal, or errc::malformed_file naming "<source>#/timestamp" when the member is
///          missing, not a number or not finite
inline result<heartbeat_signal> parse_heartbeat(std::string_view text, std::string_view source) {
  return detail::parse_signal<heartbeat_signal>(text, source, "timestamp", read_json_finite);
}

/// Boost.JSON's non-throwing conversions (error code only; parse_* give the messages).
inline boost::system::result<desired_pct_signal> tag_invoke(
    boost::json::try_value_to_tag<desired_pct_signal>, boost::json::value const& jv) {
  auto const d =
      detail::read_signal(jv, json_location(""), "desired_training_pct", read_json_non_negative);
  if (!d) return boost::system::error_code(d.error().code);
  return desired_pct_signal{*d};
}
inline boost::system::result<time_limit_signal> tag_invoke(
    boost::json::try_value_to_tag<time_limit_signal>, boost::json::value const& jv) {
  auto const d = detail::read_signal(jv, json_location(""), "max_training_time_in_hrs",
                                     read_json_non_negative);
  if (!d) return boost::system::error_code(d.error().code);
  return time_limit_signal{*d};
}
inline boost::system::result<heartbeat_signal> tag_invoke(
    boost::json::try_value_to_tag<heartbeat_signal>, boost::json::value const& jv) {
  auto const d = detail::read_signal(jv, json_location(""), "timestamp", read_json_finite);
  if (!d) return boost::system::error_code(d.error().code);
  return heartbeat_signal{*d};
}

}  // namespace proxytask::protocol
