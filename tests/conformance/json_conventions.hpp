#pragma once
// The JSON conventions of the test vectors (tests/data/reference/README.md): a non-finite number
// is the string "nan", "inf" or "-inf"; null means absent; a rejected input is answered with
// {"error": {"type", "message"}}.

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::conformance {

/// Thrown by a handler for an input that proxytask rejects; the driver turns it into
/// {"error": {"type": type, "message": what()}}.
class input_error : public std::runtime_error {
 public:
  input_error(std::string type, std::string const& message)
      : std::runtime_error(message), type_(std::move(type)) {}
  std::string const& type() const noexcept { return type_; }

 private:
  std::string type_;
};

/// A number, or "nan" / "inf" / "-inf". `where` names the field in error messages.
inline double to_double(boost::json::value const& v, std::string_view where) {
  if (v.is_number()) return v.to_number<double>();
  if (auto const* s = v.if_string()) {
    if (*s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (*s == "inf") return std::numeric_limits<double>::infinity();
    if (*s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  throw input_error("ValueError", std::string(where) + ": expected a number");
}

/// A number, or NaN for null (used where null stands for a missing value).
inline double to_double_or_nan(boost::json::value const& v, std::string_view where) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  return to_double(v, where);
}

/// An optional number: absent or null gives nullopt.
inline std::optional<double> optional_double(boost::json::object const& o, std::string_view key) {
  auto const* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  return to_double(*v, key);
}

inline std::int64_t to_int(boost::json::value const& v, std::string_view where) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64()) return static_cast<std::int64_t>(v.as_uint64());
  if (v.is_double() && std::trunc(v.as_double()) == v.as_double())
    return static_cast<std::int64_t>(v.as_double());
  throw input_error("ValueError", std::string(where) + ": expected an integer");
}

inline boost::json::value const& field(boost::json::object const& o, std::string_view key) {
  auto const* v = o.if_contains(key);
  if (!v) throw input_error("KeyError", "missing field '" + std::string(key) + "'");
  return *v;
}

inline boost::json::array const& array_field(boost::json::object const& o, std::string_view key) {
  auto const* a = field(o, key).if_array();
  if (!a) throw input_error("ValueError", "field '" + std::string(key) + "' must be an array");
  return *a;
}

inline boost::json::object const& as_object(boost::json::value const& v, std::string_view where) {
  auto const* o = v.if_object();
  if (!o) throw input_error("ValueError", std::string(where) + ": expected an object");
  return *o;
}

inline boost::json::array const& as_array(boost::json::value const& v, std::string_view where) {
  auto const* a = v.if_array();
  if (!a) throw input_error("ValueError", std::string(where) + ": expected an array");
  return *a;
}

/// An array of numbers; null becomes NaN (missing).
inline std::vector<double> to_doubles(boost::json::array const& a, std::string_view where) {
  std::vector<double> out;
  out.reserve(a.size());
  for (auto const& v : a) out.push_back(to_double_or_nan(v, where));
  return out;
}

/// A number for the output: non-finite values are written as "nan", "inf", "-inf".
inline boost::json::value from_double(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  return d;
}

inline boost::json::array from_doubles(std::vector<double> const& values) {
  boost::json::array a;
  a.reserve(values.size());
  for (double d : values) a.push_back(from_double(d));
  return a;
}

inline boost::json::value error_value(std::string_view type, std::string_view message) {
  return {{"error", {{"type", type}, {"message", message}}}};
}

}  // namespace proxytask::conformance
