// proxytask-measure-variance: the variance-measurement tool (DESIGN.md "The three tools", item 1;
// the seed's "Measure variance"): is the trainer's final score stable and its curve smooth
// enough for a proxy task to be judged on it? It finds a workable model of the search space
// (trained to 1%; up to 10 tries), trains 5 copies of it with distinct seeds to 100%, and writes
// RUN_DIR/variance_and_smoothness.json (coefficient of variation and smoothness with their
// verdicts, a bootstrap interval of the variance, per-copy scores, and advice) next to its state,
// RUN_DIR/measurement_state.json, and RUN_DIR/variance_curves.svg, a plot of the copies'
// validation curves and final accuracies with the verdicts in its title
// (workflow/variance_report.hpp), rewritten after each poll.
//
//   proxytask-measure-variance RUN_DIR [options] [-- TRAINER COMMAND ...]
//
// By default the trials run the reference trainer (proxytask-reference-trainer, found next to
// this program) on its MLP search space, as local processes (--executor inprocess runs the same
// trainer on threads of this process; --executor simulated, synthetic curves). Any other trainer
// that speaks the trial protocol runs the same way: give its command after "--" and its search
// space with
// --search-space or --search-space-command. The run resumes after a kill or Ctrl-C: run the same
// command again (the options are recorded in RUN_DIR/variance_options.json, and a resume with
// different ones is refused). `proxytask-status RUN_DIR` shows where it stands.
//
// Exit status: 0 the measurement finished (whatever its verdicts), 1 an error, 2 a usage error,
// 130 interrupted (the state is saved; run again to resume).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/variance_report.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include "tool_cli.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using namespace tool_cli;

namespace {

constexpr std::string_view program = "proxytask-measure-variance";
constexpr std::string_view options_file_name = "variance_options.json";

constexpr char const usage_head[] =
    R"(usage: proxytask-measure-variance RUN_DIR [options] [-- TRAINER COMMAND ...]

Measures the variance and smoothness of a trainer's scores: finds a workable
model, trains copies of it with distinct seeds to 100%, and writes
RUN_DIR/variance_and_smoothness.json, RUN_DIR/measurement_state.json and
RUN_DIR/variance_curves.svg (the copies' curves).
Run the same command again to resume an interrupted run.

)";

constexpr char const measurement_help[] =
    R"(
Measurement:
  --copies N              copies of the workable model (default 5)
  --max-tries N           models tried before giving up (default 10)
  --workable-pct P        a model is workable when it reaches P% (default 1)
  --seed S                seeds the trials, the sampler and the bootstrap (0)
  --resamples B           bootstrap resamples of the variance interval (2000)

Output:
)";

std::string usage() {
  return std::string(usage_head) + trial_options_help + measurement_help + output_options_help;
}

struct settings {
  common_settings common;
  wf::variance_options variance;
};

std::variant<settings, usage_error, help_requested> parse_arguments(int argc, char** argv) {
  settings s;
  auto const parsed =
      parse_command_line(argc, argv, s.common, {},
                         [&](std::string_view name, std::string_view value) -> option_outcome {
                           if (name == "--copies") {
                             auto const n = parse_value<std::size_t>(value);
                             if (!n || *n < 2) return not_a("a count >= 2");
                             s.variance.copies = *n;
                           } else if (name == "--max-tries") {
                             auto const n = parse_value<std::size_t>(value);
                             if (!n || *n == 0) return not_a("a positive count");
                             s.variance.max_workable_tries = *n;
                           } else if (name == "--workable-pct") {
                             auto const v = parse_value<double>(value);
                             if (!v || !(*v > 0 && *v <= 100)) return not_a("a pct in (0, 100]");
                             s.variance.workable_pct = *v;
                           } else if (name == "--seed") {
                             auto const v = parse_value<std::uint64_t>(value);
                             if (!v) return not_a("a non-negative integer");
                             s.variance.seed = *v;
                           } else if (name == "--resamples") {
                             auto const n = parse_value<std::size_t>(value);
                             if (!n || *n == 0) return not_a("a positive count");
                             s.variance.bootstrap_resamples = *n;
                           } else {
                             return not_mine();
                           }
                           return taken();
                         });
  if (auto const* e = std::get_if<usage_error>(&parsed)) return *e;
  if (std::holds_alternative<help_requested>(parsed)) return help_requested{};
  s.variance.proxy_args = s.common.args;
  return s;
}

/// The options that decide the measurement's result, as recorded in variance_options.json.
boost::json::object recorded_options(settings const& s) {
  auto o = recorded_common_options(s.common);
  o["copies"] = s.variance.copies;
  o["max_tries"] = s.variance.max_workable_tries;
  o["workable_pct"] = s.variance.workable_pct;
  o["seed"] = s.variance.seed;
  o["resamples"] = s.variance.bootstrap_resamples;
  return o;
}

/// The result for people: the verdicts, the copies, the advice.
void print_result(boost::json::object const& r) {
  if (text_of(r, "status") == "no_workable_model") {
    std::cout << "no workable model: " << text_of(r, "message") << '\n';
    for (auto const& t : r.at("tries").as_array())
      std::cout << "  " << text_of(t.as_object(), "trial_id") << " ("
                << text_of(t.as_object(), "model_id") << "): " << text_of(t.as_object(), "failure")
                << ": " << text_of(t.as_object(), "message") << '\n';
  } else {
    std::cout << "model:      " << text_of(r.at("model_spec").as_object(), "model_id") << " ("
              << text_of(r, "workable_trial_id") << ")\n"
              << "variance:   " << text_of(r, "variance_value") << " ("
              << text_of(r, "variance_verdict") << ", threshold "
              << text_of(r, "variance_threshold") << ")";
    if (auto const* ci = r.if_contains("variance_ci"); ci && ci->is_object())
      std::cout << ", " << text_of(ci->as_object(), "confidence") << " interval ["
                << text_of(ci->as_object(), "low") << ", " << text_of(ci->as_object(), "high")
                << "]";
    std::cout << "\nsmoothness: " << text_of(r, "smoothness_value") << " ("
              << text_of(r, "smoothness_verdict") << ", threshold "
              << text_of(r, "smoothness_threshold") << ")\n"
              << "copies:    ";
    for (auto const& c : r.at("copies").as_array())
      std::cout << ' ' << text_of(c.as_object(), "trial_id") << '='
                << text_of(c.as_object(), "final_accuracy");
    std::cout << '\n';
    if (auto const& left = r.at("left_out_copies").as_array(); !left.empty())
      std::cout << "left out:   " << left.size() << " copies failed twice\n";
    std::cout << text_of(r, "variance_info") << '\n' << text_of(r, "smoothness_info") << '\n';
  }
  for (auto const& a : r.at("advice").as_array()) std::cout << "advice: " << a.as_string() << '\n';
}

/// RUN_DIR/variance_curves.svg from the state file (nothing before a poll has written one).
pt::result<void> write_plot(settings const& s) {
  fs::path const path = s.common.run_dir / wf::variance_tool::state_file_name;
  auto const doc = pt::read_json_object_file(path);
  if (!doc) return doc.error();
  if (!*doc) return {};
  auto const state = wf::variance_tool::state_from_json(**doc, pt::json_location(path.string()));
  if (!state) return state.error();
  return pt::write_file_atomically(s.common.run_dir / wf::variance_curves_plot_file_name,
                                   wf::variance_curves_svg(*state, s.variance));
}

int measure(settings s, char const* argv0) {
  if (!create_run_directory(s.common, program)) return exit_error;
  // The seeds the tries will use, sampled up front.
  wf::variance_tool const probe([](std::uint64_t) { return pt::protocol::model_spec{}; },
                                s.variance);
  std::vector<std::uint64_t> seeds;
  for (std::size_t n = 0; n < s.variance.max_workable_tries; ++n)
    seeds.push_back(probe.try_seed(n));
  auto sampler = make_sampler(s.common, seeds);
  if (!sampler) {
    std::cerr << program << ": " << sampler.error().message() << '\n';
    return exit_error;
  }
  if (auto const r = check_recorded_options(s.common.run_dir, options_file_name,
                                            recorded_options(s), "measure in a new run directory");
      !r) {
    std::cerr << program << ": " << r.error().message() << '\n';
    return exit_error;
  }
  wf::variance_tool const tool(std::move(*sampler), s.variance);
  pt::exec::simulated_options simulation;
  simulation.seed = s.variance.seed;
  return with_executor(s.common, simulation, argv0, program, [&](auto& exec) {
    // The plot after each poll (a failure is a warning: the measurement goes on) and at the end.
    auto const result = run_with_progress(
        s.common, tool, exec, [&](wf::observation const&, wf::step_summary const&) {
          if (auto const r = write_plot(s); !r)
            std::cerr << '\n' << program << ": warning: " << r.error().message() << '\n';
        });
    if (!result) {
      std::cerr << program << ": " << result.error().message() << '\n';
      return exit_status_of(result.error());
    }
    if (auto const r = write_plot(s); !r) {
      std::cerr << program << ": " << r.error().message() << '\n';
      return exit_error;
    }
    print_result(result->as_object());
    auto const& dir = s.common.run_dir;
    std::cout << "written: " << (dir / wf::variance_tool::result_file_name).string() << ", "
              << (dir / wf::variance_tool::state_file_name).string() << '\n'
              << "plot:    " << (dir / wf::variance_curves_plot_file_name).string() << '\n';
    return exit_ok;
  });
}

}  // namespace

int main(int argc, char** argv) {
  return tool_main(program, usage(), parse_arguments(argc, argv),
                   [&](settings s) { return measure(std::move(s), argv[0]); });
}
