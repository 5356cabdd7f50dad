#pragma once
// The 12 reference functions of tests/data/reference/README.md, each answering one JSON input
// with the JSON output, through proxytask's public API. Used by the proxytask-reference-check
// driver and, in-process, by the conformance tests.

#include <conformance/json_conventions.hpp>
#include <conformance/stats_functions.hpp>
#include <conformance/tool_functions.hpp>

#include <proxytask/core/error.hpp>

#include <boost/json.hpp>

#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace proxytask::conformance {

using handler = std::function<boost::json::value(boost::json::object const&)>;

/// Every function the driver answers, by name.
inline std::map<std::string, handler, std::less<>> const& functions() {
  static auto const table = [] {
    std::map<std::string, handler, std::less<>> t;
    add_stats_functions(t);
    add_tool_functions(t);
    return t;
  }();
  return table;
}

/// Runs `func` on `input`. Rejected inputs, contract violations and unknown functions are
/// answered with {"error": {"type", "message"}}, as the reference answers its exceptions.
inline boost::json::value answer(std::string_view func, boost::json::value const& input) {
  auto const& table = functions();
  auto it = table.find(func);
  if (it == table.end())
    return error_value("UnknownFunction", "no function '" + std::string(func) + "'");
  auto const* object = input.if_object();
  if (!object) return error_value("ValueError", "the input must be a JSON object");
  try {
    return it->second(*object);
  } catch (input_error const& e) {
    return error_value(e.type(), e.what());
  } catch (proxytask::logic_error const& e) {
    return error_value("ValueError", e.what());
  } catch (proxytask::exception const& e) {
    return error_value("ValueError", e.what());
  } catch (std::exception const& e) {
    return error_value("InternalError", e.what());
  }
}

}  // namespace proxytask::conformance
