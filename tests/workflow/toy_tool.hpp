#pragma once
// A toy workflow tool for the driver tests: launch 3 trials to 50%, raise them to 100% once
// each has reported, finish with their final accuracies.

#include <proxytask/core/json.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace proxytask::testing {

struct toy_state {
  bool launched = false;
  bool raised = false;
  std::int64_t advances = 0;
};

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, toy_state const& s) {
  jv = {{"launched", s.launched}, {"raised", s.raised}, {"advances", s.advances}};
}

inline boost::system::result<toy_state> tag_invoke(boost::json::try_value_to_tag<toy_state>,
                                                   boost::json::value const& jv) {
  auto const* o = jv.if_object();
  if (!o) return boost::system::error_code(make_error_code(errc::malformed_file));
  auto const* l = o->if_contains("launched");
  auto const* r = o->if_contains("raised");
  auto const* a = o->if_contains("advances");
  if (!l || !l->is_bool() || !r || !r->is_bool() || !a || !a->is_int64())
    return boost::system::error_code(make_error_code(errc::malformed_file));
  return toy_state{l->get_bool(), r->get_bool(), a->get_int64()};
}

class toy_tool {
 public:
  using state = toy_state;
  static constexpr std::string_view state_file_name = "toy_state.json";
  static constexpr int schema_version = 1;
  static constexpr int trials = 3;

  static std::string trial_id(int i) { return "t" + std::to_string(i); }

  state initial() const { return {}; }

  workflow::step<state> advance(state const& s, workflow::observation const& o) const {
    workflow::step<state> out{s, {}};
    ++out.next.advances;
    if (!s.launched) {
      out.next.launched = true;
      for (int i = 0; i < trials; ++i) {
        workflow::launch_trial l;
        l.trial_id = trial_id(i);
        l.spec.model_id = "model-" + std::to_string(i);
        l.spec.parameters["final_accuracy"] = 0.7 + 0.05 * i;
        l.seed = static_cast<std::uint64_t>(100 + i);
        l.desired_pct = 50;
        out.commands.emplace_back(std::move(l));
      }
      return out;
    }
    if (!s.raised) {
      for (int i = 0; i < trials; ++i) {
        auto const* t = o.find(trial_id(i));
        if (!t || t->phase != workflow::trial_phase::running || t->metrics.points.empty())
          return out;
      }
      out.next.raised = true;
      for (int i = 0; i < trials; ++i)
        out.commands.emplace_back(workflow::set_desired_pct{trial_id(i), 100});
      return out;
    }
    boost::json::array accuracies, pcts;
    for (int i = 0; i < trials; ++i) {
      auto const* t = o.find(trial_id(i));
      if (!t || !workflow::is_terminal(t->phase)) return out;
      accuracies.push_back(t->metrics.points.empty()
                               ? boost::json::value(nullptr)
                               : json_number(t->metrics.points.back().accuracy));
      pcts.push_back(t->metrics.points.empty() ? 0.0 : t->metrics.points.back().training_step_pct);
    }
    boost::json::value result = {{"final_accuracies", accuracies}, {"final_pcts", pcts}};
    out.commands.emplace_back(workflow::finish{result, "toy done", {{"toy_result.json", result}}});
    return out;
  }
};

static_assert(workflow::tool<toy_tool>);

}  // namespace proxytask::testing
