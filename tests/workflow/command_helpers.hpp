#pragma once
// What the workflow tools' transition tests read from a step's commands: the launches, the
// stops, the finish, and all of them as JSON (to compare two steps).

#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace proxytask::testing {

inline std::vector<workflow::launch_trial> launches(std::vector<workflow::command> const& cs) {
  std::vector<workflow::launch_trial> out;
  for (auto const& c : cs)
    if (auto const* l = std::get_if<workflow::launch_trial>(&c)) out.push_back(*l);
  return out;
}

inline std::vector<std::string> stops(std::vector<workflow::command> const& cs) {
  std::vector<std::string> out;
  for (auto const& c : cs)
    if (auto const* s = std::get_if<workflow::stop_trial>(&c)) out.push_back(s->trial_id);
  return out;
}

inline workflow::finish const* finish_of(std::vector<workflow::command> const& cs) {
  for (auto const& c : cs)
    if (auto const* f = std::get_if<workflow::finish>(&c)) return f;
  return nullptr;
}

/// Every command as JSON, in order, to compare two steps.
inline boost::json::value commands_json(std::vector<workflow::command> const& cs) {
  boost::json::array a;
  for (auto const& c : cs) {
    std::visit(
        [&](auto const& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, workflow::launch_trial>) {
            a.push_back(boost::json::value_from(x));
          } else if constexpr (std::is_same_v<T, workflow::finish>) {
            boost::json::object files;
            for (auto const& [k, v] : x.files) files[k] = v;
            a.push_back(boost::json::object{
                {"result", x.result}, {"summary", x.summary}, {"files", std::move(files)}});
          } else if constexpr (std::is_same_v<T, workflow::stop_trial>) {
            a.push_back(boost::json::object{{"stop", x.trial_id}});
          } else {
            a.push_back(boost::json::object{{"set_desired_pct", x.trial_id}, {"pct", x.pct}});
          }
        },
        c);
  }
  return a;
}

}  // namespace proxytask::testing
