// proxytask-select-models: the model-selection tool (DESIGN.md "The three tools", item 2; the
// seed's "Model selection"): find the ~10 correlation-candidate models of a search space and
// their full-training scores, the reference that the proxy-task search correlates proxy scores
// against. It samples --start-models models (30), trains them to 100/K % of a full training,
// removes --remove-per-iter (5) by a rule that keeps the spread of accuracy (and latency),
// continues the kept ones from their checkpoints for another 100/K %, and so on until
// --final-models (10) are left, which it trains to completion (workflow/model_selection.hpp).
//
//   proxytask-select-models RUN_DIR [options] [-- TRAINER COMMAND ...]
//
// It writes, in RUN_DIR: MODEL_SELECTION_STATE.json (every trial, its scores and fate),
// MODEL_SELECTION_RESULT.json (the reference table, failures, iterations), reference_models.csv
// (the reference table as CSV), and iteration_<i>.svg, a plot per iteration of the models'
// accuracy against their latency (or their accuracy rank, without latency) with the kept,
// removed and invalid models marked (workflow/model_selection_report.hpp). The plots are written
// after each poll that concludes an iteration, the CSV at the end.
//
// Checkpoints: after each poll, the checkpoint file (--checkpoint-name, CHECKPOINT.bin: the
// reference trainer's) of every trial that was removed by pruning, was invalid, or was replaced
// by a fresh sample, and that has ended, is deleted from its trial directory, unless
// --keep-checkpoints. No later trial resumes from those; a kept model's checkpoint (its next
// iteration resumes from it) and a reference model's (the fully trained model) are never
// deleted, nor are any of an aborted run (too many first-iteration failures: their trials are
// evidence; deletions start once an iteration has concluded). The list comes from the state
// file, so it is idempotent and a resumed run deletes what a killed one had not.
//
// By default the trials run the reference trainer (proxytask-reference-trainer, found next to
// this program) on its MLP search space, as local processes (--executor inprocess runs the same
// trainer on threads of this process; --executor simulated, synthetic curves, where a model's
// latency, when asked for, is its spec's numeric parameter "latency", else a value from 1 to 20
// from a hash of its model_id, and --simulated-failure-rate makes trials diverge, run out of
// memory and crash). Any other trainer that speaks the trial protocol runs the same way: give its
// command after "--" and its search space with --search-space or --search-space-command. The run
// resumes after a kill or Ctrl-C: run the same command again (the options are recorded in
// RUN_DIR/selection_options.json, and a resume with different ones is refused).
// `proxytask-status RUN_DIR` shows where it stands.
//
// Exit status: 0 the selection finished (whatever its status: complete, below_final_num_models,
// no_valid_models or aborted; see the printed status), 1 an error, 2 a usage error (an
// impossible schedule included), 130 interrupted (the state is saved; run again to resume).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/trainer.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/model_selection_report.hpp>

#include "tool_cli.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using namespace tool_cli;

namespace {

constexpr std::string_view program = "proxytask-select-models";
constexpr std::string_view options_file_name = "selection_options.json";

constexpr char const usage_head[] =
    R"(usage: proxytask-select-models RUN_DIR [options] [-- TRAINER COMMAND ...]

Selects the reference models of a search space: samples --start-models models,
trains them in iterations of 100/K % of a full training each, removes
--remove-per-iter models after each (keeping the spread of accuracy and
latency), and trains the last --final-models to completion. Writes
RUN_DIR/MODEL_SELECTION_RESULT.json, RUN_DIR/reference_models.csv,
RUN_DIR/iteration_<i>.svg (a plot per iteration) and
RUN_DIR/MODEL_SELECTION_STATE.json. Run the same command again to resume an
interrupted run.

)";

constexpr char const selection_help[] =
    R"(
Selection:
  --start-models N        models sampled for the first iteration (30)
  --final-models N        models trained to completion, the reference (10)
  --remove-per-iter N     models removed after each iteration (5)
  --latency SOURCE        none (default): prune on the accuracy alone;
                          trainer: the latency the trainer reports (required:
                          a model without one is invalid, unless
                          --latency-optional); calculator: a latency
                          calculator's MODEL_LATENCY.json in each trial
                          directory (proxytask-latency-calculator RUN_DIR,
                          run beside this program), waited for
  --latency-optional      --latency trainer: a model without a latency is
                          valid, and latency counts only if every model has one
  --latency-wait S        --latency calculator: seconds to wait for a trained
                          model's latency before it counts as invalid (3600)
  --max-failed-fraction F more than this fraction of failed first-iteration
                          models aborts the run (0.2; 1 = never)
  --seed S                seeds the models (and the simulation) (0)
  --keep-checkpoints      keep the checkpoints of removed and invalid models
                          (default: deleted once their trials have ended)
  --checkpoint-name NAME  the checkpoint file in a trial directory
                          (CHECKPOINT.bin, the reference trainer's)
  --simulated-failure-rate F
                          --executor simulated: each of divergence (NaN),
                          out-of-memory and crash strikes this share of the
                          trials (0)

Output:
)";

std::string usage() {
  return std::string(usage_head) + trial_options_help + selection_help + output_options_help;
}

struct settings {
  common_settings common;
  wf::model_selection_tool_options selection;
  double simulated_failure_rate = 0;
  bool latency_optional = false;
  bool keep_checkpoints = false;
  std::string checkpoint_name = "CHECKPOINT.bin";
};

std::variant<settings, usage_error, help_requested> parse_arguments(int argc, char** argv) {
  settings s;
  flag const flags[] = {{"--latency-optional", &s.latency_optional},
                        {"--keep-checkpoints", &s.keep_checkpoints}};
  auto const parsed = parse_command_line(
      argc, argv, s.common, flags,
      [&](std::string_view name, std::string_view value) -> option_outcome {
        auto count = [&](std::size_t& out) {
          auto const n = parse_value<std::size_t>(value);
          if (!n || *n == 0) return not_a("a positive count");
          out = *n;
          return taken();
        };
        auto fraction = [&](double& out) {
          auto const v = parse_value<double>(value);
          if (!v || !(*v >= 0 && *v <= 1)) return not_a("a fraction in [0, 1]");
          out = *v;
          return taken();
        };
        auto& schedule = s.selection.schedule;
        if (name == "--start-models") return count(schedule.start_num_models);
        if (name == "--final-models") return count(schedule.final_num_models);
        if (name == "--remove-per-iter") return count(schedule.num_models_to_remove_per_iter);
        if (name == "--max-failed-fraction") return fraction(s.selection.max_failed_fraction);
        if (name == "--simulated-failure-rate") return fraction(s.simulated_failure_rate);
        if (name == "--latency") {
          if (value == "none")
            s.selection.latency = wf::latency_source::none;
          else if (value == "trainer")
            s.selection.latency = wf::latency_source::trainer;
          else if (value == "calculator")
            s.selection.latency = wf::latency_source::calculator;
          else
            return not_a("none, trainer or calculator");
          return taken();
        }
        if (name == "--latency-wait") {
          auto const v = parse_value<double>(value);
          if (!v || !(*v >= 0) || !std::isfinite(*v)) return not_a("a number of seconds >= 0");
          s.selection.latency_wait_s = *v;
          return taken();
        }
        if (name == "--seed") {
          auto const v = parse_value<std::uint64_t>(value);
          if (!v) return not_a("a non-negative integer");
          s.selection.seed = *v;
          return taken();
        }
        if (name == "--checkpoint-name") {
          fs::path const file(value);
          if (value.empty() || file.has_parent_path() || value == "." || value == "..")
            return not_a("a file name");
          s.checkpoint_name = std::string(value);
          return taken();
        }
        return not_mine();
      });
  if (auto const* e = std::get_if<usage_error>(&parsed)) return *e;
  if (std::holds_alternative<help_requested>(parsed)) return help_requested{};
  if (s.latency_optional && s.selection.latency != wf::latency_source::trainer)
    return usage_error{"--latency-optional is for --latency trainer"};
  if (s.simulated_failure_rate > 0 && s.common.executor != "simulated")
    return usage_error{"--simulated-failure-rate is for --executor simulated"};
  s.selection.latency_required = !s.latency_optional;
  s.selection.proxy_args = s.common.args;
  return s;
}

/// The options that decide the selection's result, as recorded in selection_options.json.
boost::json::object recorded_options(settings const& s) {
  auto o = recorded_common_options(s.common);
  auto const& schedule = s.selection.schedule;
  o["start_models"] = schedule.start_num_models;
  o["final_models"] = schedule.final_num_models;
  o["remove_per_iter"] = schedule.num_models_to_remove_per_iter;
  o["latency"] = wf::to_string(s.selection.latency);
  o["latency_required"] = s.selection.latency_required;
  o["latency_wait_s"] = s.selection.latency_wait_s;
  o["max_failed_fraction"] = s.selection.max_failed_fraction;
  o["seed"] = s.selection.seed;
  o["simulated_failure_rate"] = s.simulated_failure_rate;
  return o;
}

/// The simulated executor with latencies: a model's latency is its spec's numeric parameter
/// "latency", else a value in [1, 20] from a hash of its model_id. With latency_source::trainer
/// the simulated trainer reports it once the trial has trained (as the reference trainer does);
/// with latency_source::calculator a simulated calculator measures it as soon as the trial has
/// its spec, unless a real one (MODEL_LATENCY.json) did.
class simulated_with_latency : public forwarding_executor<pt::exec::simulated_executor> {
 public:
  simulated_with_latency(pt::exec::simulated_executor& inner, wf::latency_source source)
      : forwarding_executor(inner), source_(source) {}

  pt::result<void> launch(wf::launch_trial const& l) {
    latency_.emplace(l.trial_id, latency_of(l.spec));
    return inner_.launch(l);
  }
  pt::result<wf::observation> observe() {
    auto obs = inner_.observe();
    if (!obs || source_ == wf::latency_source::none) return obs;
    for (auto& t : obs->trials) {
      bool const trained =
          t.phase == wf::trial_phase::succeeded || t.phase == wf::trial_phase::stopped;
      if (source_ == wf::latency_source::trainer && !trained) continue;
      if (source_ == wf::latency_source::calculator && t.measured_latency) continue;
      auto const latency = latency_for(t.trial_id);
      if (!latency) return latency.error();
      if (source_ == wf::latency_source::trainer)
        t.metrics.latency = *latency;
      else
        t.measured_latency = *latency;
    }
    return obs;
  }

 private:
  static double latency_of(pt::protocol::model_spec const& spec) {
    if (auto const* v = spec.parameters.if_contains("latency"); v && v->is_number())
      return v->to_number<double>();
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (char const c : spec.model_id) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    double const unit = static_cast<double>(h >> 11) * 0x1p-53;
    return std::round((1.0 + 19.0 * unit) * 1000.0) / 1000.0;
  }
  /// A trial's latency; after a controller restart, from its MODEL_SPEC.json.
  pt::result<double> latency_for(std::string const& trial_id) {
    if (auto const it = latency_.find(trial_id); it != latency_.end()) return it->second;
    auto const spec = pt::protocol::read_model_spec(inner_.trial_dir(trial_id) /
                                                    pt::protocol::model_spec_file_name);
    if (!spec) return spec.error();
    return latency_.emplace(trial_id, latency_of(*spec)).first->second;
  }

  wf::latency_source source_;
  std::map<std::string, double> latency_;
};

/// The plots, the CSV and the checkpoint deletions, from the state file after each poll and
/// from the result at the end.
class selection_outputs {
 public:
  explicit selection_outputs(settings const& s) : s_(s) {}

  /// After a poll: the plots of newly concluded iterations, and the discarded checkpoints.
  /// Failures are warnings here (the selection goes on); the final write reports its own.
  void after_poll(wf::observation const& obs) {
    auto const state = read_state();
    if (!state) {
      warn(state.error().message());
      return;
    }
    if (auto const r = write_plots(*state); !r) warn(r.error().message());
    if (!s_.keep_checkpoints) delete_checkpoints(*state, obs);
  }

  /// At the end: every plot not written yet and the CSV.
  pt::result<void> finish(boost::json::object const& result) {
    auto const state = read_state();
    if (!state) return state.error();
    if (auto const r = write_plots(*state); !r) return r;
    iterations_ = state->iterations.size();
    return pt::write_file_atomically(s_.common.run_dir / wf::reference_models_csv_file_name,
                                     wf::reference_models_csv(result));
  }

  std::size_t iterations() const noexcept { return iterations_; }
  std::size_t deleted_checkpoints() const noexcept { return deleted_; }

 private:
  pt::result<wf::model_selection_state> read_state() const {
    fs::path const path = s_.common.run_dir / wf::model_selection_tool::state_file_name;
    auto const doc = pt::read_json_object_file(path);
    if (!doc) return doc.error();
    if (!*doc) return pt::make_error(pt::errc::not_found, "no state file " + path.string());
    return wf::model_selection_tool::state_from_json(**doc, pt::json_location(path.string()));
  }

  /// The plots of the iterations whose plots are final and not written by this controller yet
  /// (a resumed controller writes them again: the same bytes).
  pt::result<void> write_plots(wf::model_selection_state const& state) {
    for (; plotted_ < state.iterations.size() && wf::selection_plot_final(state, plotted_);
         ++plotted_)
      if (auto const r =
              pt::write_file_atomically(s_.common.run_dir / wf::selection_plot_file_name(plotted_),
                                        wf::selection_iteration_svg(state, plotted_));
          !r)
        return r;
    return {};
  }

  void delete_checkpoints(wf::model_selection_state const& state, wf::observation const& obs) {
    for (auto const& id : wf::discarded_trials(state, obs)) {
      fs::path const file = pt::exec::trial_directory(s_.common.run_dir, id) / s_.checkpoint_name;
      std::error_code ec;
      if (fs::remove(file, ec)) ++deleted_;
      if (ec) warn("cannot delete " + file.string() + ": " + ec.message());
    }
  }

  void warn(std::string const& message) const {
    std::cerr << '\n' << program << ": warning: " << message << '\n';
  }

  settings const& s_;
  std::size_t plotted_ = 0;
  std::size_t iterations_ = 0;
  std::size_t deleted_ = 0;
};

std::string number_or_dash(boost::json::object const& o, std::string_view key, char const* format) {
  auto const* v = o.if_contains(key);
  if (!v || !v->is_number()) return "-";
  char text[32];
  std::snprintf(text, sizeof text, format, v->to_number<double>());
  return text;
}

/// The result for people: the status, the reference table, the failures.
void print_result(boost::json::object const& r) {
  std::cout << "status:  " << text_of(r, "status") << ": " << text_of(r, "message") << '\n';
  auto const& refs = r.at("reference_models").as_array();
  if (!refs.empty()) {
    std::size_t width = 5;
    for (auto const& m : refs) width = std::max(width, text_of(m.as_object(), "model_id").size());
    std::cout << "reference models (accuracy at the end of training, latency: "
              << text_of(r, "latency_source") << "):\n";
    auto row = [&](std::string const& model, std::string const& accuracy,
                   std::string const& latency, std::string const& trial) {
      std::cout << "  " << model << std::string(width - model.size(), ' ') << "  " << accuracy
                << std::string(accuracy.size() < 8 ? 8 - accuracy.size() : 0, ' ') << "  "
                << latency << std::string(latency.size() < 10 ? 10 - latency.size() : 0, ' ')
                << "  " << trial << '\n';
    };
    row("model", "accuracy", "latency", "trial");
    for (auto const& m : refs) {
      auto const& o = m.as_object();
      row(text_of(o, "model_id"), number_or_dash(o, "accuracy", "%.4f"),
          number_or_dash(o, "latency", "%.4g"), text_of(o, "trial_id"));
    }
  }
  if (auto const& failures = r.at("failures").as_array(); !failures.empty()) {
    std::cout << "invalid trials (" << failures.size() << "):\n";
    for (auto const& f : failures) {
      auto const& o = f.as_object();
      std::cout << "  " << text_of(o, "trial_id") << " (" << text_of(o, "model_id")
                << "): " << text_of(o, "reason");
      if (auto const kind = text_of(o, "failure"); kind != "-") std::cout << " (" << kind << ")";
      std::cout << ": " << text_of(o, "message");
      if (auto const by = text_of(o, "replaced_by"); by != "-")
        std::cout << " [replaced by " << by << "]";
      std::cout << '\n';
    }
  }
}

int select_models(settings s, char const* argv0) {
  // An impossible schedule is refused before anything is created or run.
  std::optional<wf::model_selection_tool> probe;
  try {
    probe.emplace([](std::uint64_t) { return pt::protocol::model_spec{}; }, s.selection);
  } catch (pt::logic_error const& e) {
    auto const& sched = s.selection.schedule;
    std::cerr << program << ": impossible schedule (--start-models " << sched.start_num_models
              << " --final-models " << sched.final_num_models << " --remove-per-iter "
              << sched.num_models_to_remove_per_iter << "): " << e.what() << "\n(" << program
              << " --help lists the options)\n";
    return exit_usage;
  }
  if (!create_run_directory(s.common, program)) return exit_error;
  // The seeds of the first iteration and its refills, sampled up front.
  std::vector<std::uint64_t> seeds;
  for (std::size_t m = 0; m < s.selection.schedule.start_num_models + probe->refill_budget(); ++m)
    seeds.push_back(probe->model_seed(m));
  auto sampler = make_sampler(s.common, seeds);
  if (!sampler) {
    std::cerr << program << ": " << sampler.error().message() << '\n';
    return exit_error;
  }
  if (auto const r =
          check_recorded_options(s.common.run_dir, options_file_name, recorded_options(s),
                                 "select models in a new run directory");
      !r) {
    std::cerr << program << ": " << r.error().message() << '\n';
    return exit_error;
  }
  wf::model_selection_tool const tool(std::move(*sampler), s.selection);

  auto run = [&](auto& exec) {
    selection_outputs outputs(s);
    auto const result = run_with_progress(
        s.common, tool, exec,
        [&](wf::observation const& obs, wf::step_summary const&) { outputs.after_poll(obs); });
    if (!result) {
      std::cerr << program << ": " << result.error().message() << '\n';
      return exit_status_of(result.error());
    }
    if (auto const r = outputs.finish(result->as_object()); !r) {
      std::cerr << program << ": " << r.error().message() << '\n';
      return exit_error;
    }
    print_result(result->as_object());
    auto const& dir = s.common.run_dir;
    std::cout << "written: " << (dir / wf::model_selection_tool::result_file_name).string() << ", "
              << (dir / wf::reference_models_csv_file_name).string() << ", "
              << (dir / wf::model_selection_tool::state_file_name).string() << '\n';
    for (std::size_t i = 0; i < outputs.iterations(); ++i)
      std::cout << (i == 0 ? "plots:   " : "         ")
                << (dir / wf::selection_plot_file_name(i)).string() << '\n';
    if (!s.keep_checkpoints && outputs.deleted_checkpoints() > 0)
      std::cout << "deleted: " << outputs.deleted_checkpoints() << ' ' << s.checkpoint_name
                << " of removed and invalid models (--keep-checkpoints keeps them)\n";
    return exit_ok;
  };
  pt::exec::simulated_options simulation;
  simulation.seed = s.selection.seed;
  simulation.divergence_rate = simulation.oom_rate = simulation.crash_rate =
      s.simulated_failure_rate;
  return with_executor(s.common, simulation, argv0, program, [&](auto& exec) {
    if constexpr (std::is_same_v<std::decay_t<decltype(exec)>, pt::exec::simulated_executor>) {
      simulated_with_latency with_latency(exec, s.selection.latency);
      return run(with_latency);
    } else {
      return run(exec);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  return tool_main(program, usage(), parse_arguments(argc, argv),
                   [&](settings s) { return select_models(std::move(s), argv[0]); });
}
