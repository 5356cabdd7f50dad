// proxytask-search-proxy: the proxy-task search (DESIGN.md "The three tools", item 3; the seed's
// "Proxy-task search"): find the cheapest proxy task whose ranking of the reference models agrees
// with their full training. For each candidate proxy (a --grid of trainer-argument values, or a
// --proxies file), in order, it trains the reference models (--reference: model selection's
// MODEL_SELECTION_RESULT.json or reference_models.csv, or your own table of fully trained models)
// with the baseline's arguments (--arg, the full training's steps included) overridden by the
// proxy's, correlates their scores with the full-training scores at every recorded step (Kendall
// tau-b by default, with a bootstrap confidence interval), stops the proxy as soon as the stop
// rule decides, and names the successful proxy with the lowest training time
// (workflow/proxy_search.hpp).
//
//   proxytask-search-proxy RUN_DIR --reference FILE (--grid NAME=V1,V2... | --proxies FILE)
//                          [options] [-- TRAINER COMMAND ...]
//
// It writes, in RUN_DIR: SEARCH_CONTROLLER_STATE.json (every proxy's statistics per step, in the
// reference tool's shape plus ours), PROXY_SEARCH_RESULT.json (the best proxy, its steps and
// hours, the advice and warnings, every proxy's end), and the plots of
// workflow/proxy_search_report.hpp (per proxy: correlation over steps and over time with its CI
// and the threshold, median accuracy, the scores at the stop step against the full-training
// scores; and proxies.svg, cost against correlation), rewritten after each poll.
//
// By default the trials run the reference trainer (proxytask-reference-trainer, found next to
// this program) as local processes; --executor inprocess runs it on threads of this process;
// --executor simulated runs synthetic curves, where a proxy's fidelity f is the product of its
// numeric arguments named *pct (divided by 100) and *scale: a trial's final score is its
// model's true accuracy plus a model-specific error of up to +-0.1 (1 - f), and its training takes
// f of the time, so cheaper proxies rank the models worse, and a search has something to find (each
// recorded score also carries noise of +-0.025, so early rankings are unsure). The run
// resumes after a kill or Ctrl-C: run the same command again (the options are recorded in
// RUN_DIR/search_options.json; a resume with different ones is refused). A search, ended or not,
// is extended by running it with more proxies after its own (more values at the end of the
// first --grid knob, which varies slowest, or more entries at the end of the --proxies file): it
// keeps what it measured and searches the new ones too.
//
// --stop-at-pct P re-checks instead of searching: every proxy's trials stop themselves at P% of
// their steps, no stop rule runs, and the result (status "measured") gives each proxy's
// correlation with its CI there and names no best proxy. Run with the chosen proxy alone (its
// P: where the search stopped it) and another --seed, it tests the choice with new trials.
//
// Exit status: 0 the search finished (whether or not a proxy succeeded; see the printed status),
// 1 an error, 2 a usage error, 130 interrupted (the state is saved; run again to resume).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/workflow/proxy_configs.hpp>
#include <proxytask/workflow/proxy_search.hpp>
#include <proxytask/workflow/proxy_search_report.hpp>

#include "tool_cli.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
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

constexpr std::string_view program = "proxytask-search-proxy";
constexpr std::string_view options_file_name = "search_options.json";

constexpr char const usage_head[] =
    R"(usage: proxytask-search-proxy RUN_DIR --reference FILE
                              (--grid NAME=V1,V2,... | --proxies FILE)
                              [options] [-- TRAINER COMMAND ...]

Finds the cheapest proxy task whose ranking of the reference models agrees with
their full training: trains the reference models under each proxy in turn,
correlates their scores with the full-training scores at every step, stops each
proxy as soon as the answer is known, and names the successful proxy with the
lowest training time. Writes RUN_DIR/PROXY_SEARCH_RESULT.json,
RUN_DIR/SEARCH_CONTROLLER_STATE.json and plots (RUN_DIR/*.svg). Run the same
command again to resume an interrupted run, or with more proxies after the
ones it had to extend a search.

Reference and proxies:
  --reference FILE        the reference models with their full-training scores:
                          MODEL_SELECTION_RESULT.json or reference_models.csv
                          of proxytask-select-models, or a JSON array of
                          {"spec", "accuracy", "latency"?} (required)
  --grid NAME=V1,V2,...   a knob of a grid of proxies (repeatable; the first
                          knob varies slowest), e.g. --grid data_pct=25,50
                          --grid model_scale=0.5,1
  --proxies FILE          proxies from a JSON file:
                          {"proxies": [{"name": ..., "args": {...}}, ...]}
  --arg NAME=VALUE        a trainer argument of every trial: the full
                          baseline's (its total steps included; repeatable);
                          a proxy's arguments override these

)";

constexpr char const search_help[] =
    R"(
Search:
  --method M              kendall (default; threshold 0.65) or spearman (0.84)
  --desired-correlation X the correlation that makes a proxy succeed
  --desired-accuracy X    also stop a proxy once its median accuracy reaches X
  --time-limit-hours X    stop a proxy at X hours of (median) training time
  --early-stop-if-not-best
                          stop a proxy once it has trained longer than the
                          best successful proxy so far
  --bootstrap N           bootstrap resamples per step for the CI (200)
  --confidence-level X    of the CI (0.95)
  --confidence-k K        confidence mode: succeed only when the CI's lower
                          bound reaches the desired correlation for K steps
                          in a row (0: off)
  --min-valid-pairs N     the validity rule: at least N models (5) and
  --min-valid-fraction F  at least F of them (0.7) with a score at a step
  --max-failed-trials N   more failed trials than N end a proxy (default: only
                          when the validity rule can no longer be met)
  --latency               check a successful proxy's latency correlation
  --desired-latency-correlation X
                          its threshold (default: the desired correlation)
  --seed S                seeds the trials and the bootstrap (0)
  --stop-at-pct P         re-check: train every reference model under each
                          proxy to P% of its steps and report the correlation
                          there (the stop rules are off); with --seed other
                          than the search's, a re-check of a chosen proxy
                          with new seeds
  --simulated-failure-rate F
                          --executor simulated: each of divergence,
                          out-of-memory and crash strikes this share of the
                          trials (0)

Output:
)";

std::string usage() {
  return std::string(usage_head) + trial_options_help + search_help + output_options_help;
}

struct settings {
  common_settings common;
  wf::proxy_search_options search;
  std::optional<fs::path> reference_file;
  std::optional<fs::path> proxies_file;
  std::vector<wf::proxy_knob> grid;
  double simulated_failure_rate = 0;
  bool early_stop = false;
  bool latency = false;
};

std::variant<settings, usage_error, help_requested> parse_arguments(int argc, char** argv) {
  settings s;
  flag const flags[] = {{"--early-stop-if-not-best", &s.early_stop}, {"--latency", &s.latency}};
  auto const parsed = parse_command_line(
      argc, argv, s.common, flags,
      [&](std::string_view name, std::string_view value) -> option_outcome {
        auto number = [&](std::optional<double>& out) {
          auto const v = parse_value<double>(value);
          if (!v || !std::isfinite(*v)) return not_a("a number");
          out = *v;
          return taken();
        };
        auto count = [&](std::size_t& out, std::size_t least) {
          auto const n = parse_value<std::size_t>(value);
          if (!n || *n < least) return not_a(least == 0 ? "a count" : "a positive count");
          out = *n;
          return taken();
        };
        auto fraction = [&](double& out, bool open) {
          auto const v = parse_value<double>(value);
          if (!v || !(*v >= 0 && *v <= 1) || (open && (*v == 0 || *v == 1)))
            return not_a(open ? "a number in (0, 1)" : "a fraction in [0, 1]");
          out = *v;
          return taken();
        };
        auto& o = s.search;
        if (name == "--reference") {
          s.reference_file = fs::path(value);
          return taken();
        }
        if (name == "--proxies") {
          s.proxies_file = fs::path(value);
          return taken();
        }
        if (name == "--grid") {
          auto const eq = value.find('=');
          if (eq == std::string_view::npos || eq == 0 || eq + 1 == value.size())
            return not_a("NAME=V1,V2,...");
          s.grid.push_back({std::string(value.substr(0, eq)), split_commas(value.substr(eq + 1))});
          return taken();
        }
        if (name == "--method") {
          auto const m = pt::stats::parse_correlation(value);
          if (!m) return not_a("kendall or spearman");
          o.method = *m;
          return taken();
        }
        if (name == "--desired-correlation") return number(o.desired_correlation);
        if (name == "--desired-accuracy") return number(o.desired_accuracy);
        if (name == "--time-limit-hours") return number(o.training_time_hrs_limit);
        if (name == "--desired-latency-correlation") return number(o.desired_latency_correlation);
        if (name == "--bootstrap") return count(o.bootstrap_resamples, 0);
        if (name == "--confidence-level") return fraction(o.confidence_level, true);
        if (name == "--confidence-k") return count(o.confidence_k, 0);
        if (name == "--min-valid-pairs") return count(o.min_valid_pairs, 2);
        if (name == "--min-valid-fraction") return fraction(o.min_valid_fraction, false);
        if (name == "--simulated-failure-rate") return fraction(s.simulated_failure_rate, false);
        if (name == "--max-failed-trials") {
          std::size_t n = 0;
          auto const r = count(n, 0);
          if (r.expected.empty()) o.max_failed_trials = n;
          return r;
        }
        if (name == "--stop-at-pct") {
          auto const v = parse_value<double>(value);
          if (!v || !(*v > 0 && *v <= 100)) return not_a("a pct in (0, 100]");
          o.stop_at_pct = *v;
          return taken();
        }
        if (name == "--seed") {
          auto const v = parse_value<std::uint64_t>(value);
          if (!v) return not_a("a non-negative integer");
          o.seed = *v;
          return taken();
        }
        return not_mine();
      });
  if (auto const* e = std::get_if<usage_error>(&parsed)) return *e;
  if (std::holds_alternative<help_requested>(parsed)) return help_requested{};
  if (!s.reference_file) return usage_error{"which reference models? (--reference FILE)"};
  if (s.proxies_file.has_value() == !s.grid.empty())
    return usage_error{"give the proxies either as --grid knobs or as a --proxies file"};
  if (s.common.search_space_file || s.common.search_space_command)
    return usage_error{"no search space: the reference models come with their specs"};
  if (s.simulated_failure_rate > 0 && s.common.executor != "simulated")
    return usage_error{"--simulated-failure-rate is for --executor simulated"};
  if (s.search.confidence_k > 0 && s.search.bootstrap_resamples == 0)
    return usage_error{"--confidence-k needs --bootstrap > 0"};
  if (s.search.stop_at_pct && (s.early_stop || s.search.desired_accuracy ||
                               s.search.training_time_hrs_limit || s.search.confidence_k > 0))
    return usage_error{
        "--stop-at-pct turns the stop rules off: not with --early-stop-if-not-best, "
        "--desired-accuracy, --time-limit-hours or --confidence-k"};
  s.search.early_stop_proxy_task_if_not_best = s.early_stop;
  s.search.use_latency = s.latency;
  s.search.baseline_args = s.common.args;
  return s;
}

/// The options that decide the search's result, as recorded in search_options.json.
boost::json::object recorded_options(settings const& s) {
  auto o = recorded_common_options(s.common);
  auto const& x = s.search;
  auto optional = [](auto const& v) {
    return v ? boost::json::value(*v) : boost::json::value(nullptr);
  };
  o["reference"] = s.reference_file->string();
  boost::json::array proxies;
  for (auto const& p : x.proxies) {
    boost::json::object args;
    for (auto const& [k, v] : p.args) args[k] = v;
    proxies.push_back({{"name", p.name}, {"args", std::move(args)}});
  }
  o["proxies"] = std::move(proxies);
  o["method"] = pt::stats::to_string(x.method);
  o["desired_correlation"] = optional(x.desired_correlation);
  o["desired_accuracy"] = optional(x.desired_accuracy);
  o["time_limit_hours"] = optional(x.training_time_hrs_limit);
  o["early_stop_if_not_best"] = x.early_stop_proxy_task_if_not_best;
  o["bootstrap"] = x.bootstrap_resamples;
  o["confidence_level"] = x.confidence_level;
  o["confidence_k"] = x.confidence_k;
  o["min_valid_pairs"] = x.min_valid_pairs;
  o["min_valid_fraction"] = x.min_valid_fraction;
  o["max_failed_trials"] = optional(x.max_failed_trials);
  o["latency"] = x.use_latency;
  o["desired_latency_correlation"] = optional(x.desired_latency_correlation);
  o["seed"] = x.seed;
  o["simulated_failure_rate"] = s.simulated_failure_rate;
  // Only when given: a search recorded before the option resumes (see check_not_dropped).
  if (x.stop_at_pct) o["stop_at_pct"] = *x.stop_at_pct;
  return o;
}

/// Refuses a resume whose options lack one the run recorded (a re-check resumed without
/// --stop-at-pct): check_recorded_options compares the keys of the options given.
pt::result<void> check_not_dropped(fs::path const& run_dir, boost::json::object const& options) {
  fs::path const path = run_dir / options_file_name;
  auto const file = pt::read_json_object_file(path);
  if (!file) return file.error();
  if (!*file || !(*file)->is_object()) return {};
  for (auto const& kv : (*file)->as_object())
    if (!options.contains(kv.key()))
      return pt::make_error(
          pt::errc::failed_precondition,
          run_dir.string() + " holds a run started with other options: " + std::string(kv.key()) +
              " was " + boost::json::serialize(kv.value()) + ", now not set (" + path.string() +
              "); resume it with the same options, or search in a new run "
              "directory");
  return {};
}

/// A search extended with proxy configs after its own (the recorded list a prefix of the new
/// one): the recorded options take the longer list, so that the check that follows passes; any
/// other difference is still refused there.
pt::result<void> accept_extension(fs::path const& run_dir, boost::json::object const& options) {
  fs::path const path = run_dir / options_file_name;
  auto const file = pt::read_json_object_file(path);
  if (!file) return file.error();
  if (!*file || !(*file)->is_object()) return {};
  auto recorded = (*file)->as_object();
  auto const* old = recorded.if_contains("proxies");
  auto const& now = options.at("proxies").as_array();
  if (!old || !old->is_array()) return {};
  auto const& before = old->as_array();
  if (before.size() >= now.size() || !std::equal(before.begin(), before.end(), now.begin()))
    return {};
  recorded["proxies"] = now;
  return pt::write_json_file(path, recorded);
}

/// A proxy's fidelity in the simulation: the product of its numeric arguments named *pct
/// (divided by 100) and *scale, in (0, 1]; 1 without any.
double fidelity_of(std::map<std::string, std::string> const& args) {
  double f = 1.0;
  for (auto const& [name, text] : args) {
    bool const pct = name.ends_with("pct"), scale = name.ends_with("scale");
    if (!pct && !scale) continue;
    double v = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || !(v > 0)) continue;
    f *= pct ? v / 100.0 : v;
  }
  return std::clamp(f, 1e-3, 1.0);
}

/// The simulated executor with proxies that differ (see the file comment). A trial's fidelity
/// travels in its spec ("simulated_fidelity"), so a restarted controller reads it back from
/// MODEL_SPEC.json.
class simulated_proxies : public forwarding_executor<pt::exec::simulated_executor> {
 public:
  using forwarding_executor::forwarding_executor;

  pt::result<void> launch(wf::launch_trial l) {
    namespace d = pt::exec::detail;
    double const f = fidelity_of(l.proxy_args);
    auto& p = l.spec.parameters;
    double const truth = p.contains("final_accuracy") && p.at("final_accuracy").is_number()
                             ? p.at("final_accuracy").to_number<double>()
                             : 0.6 + 0.35 * d::unit_interval(d::mix64(d::fnv1a(l.spec.model_id)));
    // A model-specific error, larger the lower the fidelity: +-0.1 at f = 0.
    double const error =
        0.2 * (d::unit_interval(d::mix64(d::fnv1a(l.spec.model_id) ^ 0x5eedULL)) - 0.5);
    p["final_accuracy"] = std::clamp(truth + (1 - f) * error, 0.0, 1.0);
    p["simulated_fidelity"] = f;
    fidelity_[l.trial_id] = f;
    return inner_.launch(l);
  }
  pt::result<wf::observation> observe() {
    auto obs = inner_.observe();
    if (!obs) return obs;
    for (auto& t : obs->trials) {
      auto const f = fidelity(t.trial_id);
      if (!f) return f.error();
      t.metrics.time.total_training_time_in_secs *= *f;
    }
    return obs;
  }

 private:
  pt::result<double> fidelity(std::string const& trial_id) {
    if (auto const it = fidelity_.find(trial_id); it != fidelity_.end()) return it->second;
    auto const spec = pt::protocol::read_model_spec(inner_.trial_dir(trial_id) /
                                                    pt::protocol::model_spec_file_name);
    if (!spec) return spec.error();
    auto const* v = spec->parameters.if_contains("simulated_fidelity");
    double const f = v && v->is_number() ? v->to_number<double>() : 1.0;
    return fidelity_.emplace(trial_id, f).first->second;
  }

  std::map<std::string, double> fidelity_;
};

/// The plots, rewritten from the state file after each poll and at the end.
class search_plots {
 public:
  search_plots(settings const& s, wf::proxy_search_options const& options)
      : s_(s), options_(options) {}

  /// Failures are warnings after a poll (the search goes on) and errors at the end.
  pt::result<std::size_t> write() {
    fs::path const path = s_.common.run_dir / wf::proxy_search_tool::state_file_name;
    auto const doc = pt::read_json_object_file(path);
    if (!doc) return doc.error();
    if (!*doc) return std::size_t{0};  // no poll has written a state yet
    auto const state =
        wf::proxy_search_tool::state_from_json(**doc, pt::json_location(path.string()));
    if (!state) return state.error();
    auto const files = wf::proxy_search_plots(*state, options_);
    for (auto const& f : files)
      if (auto const r = pt::write_file_atomically(s_.common.run_dir / f.name, f.svg); !r)
        return r.error();
    names_.clear();
    for (auto const& f : files) names_.push_back(f.name);
    return files.size();
  }
  void after_poll() {
    if (auto const r = write(); !r)
      std::cerr << '\n' << program << ": warning: " << r.error().message() << '\n';
  }
  std::vector<std::string> const& names() const noexcept { return names_; }

 private:
  settings const& s_;
  wf::proxy_search_options const& options_;
  std::vector<std::string> names_;
};

/// The result for people: the status, the best proxy and what to set (a re-check: where it
/// measured; its advice gives each proxy's correlation there), every proxy's end.
void print_result(boost::json::object const& r) {
  std::cout << "status:  " << text_of(r, "status");
  if (auto const best = text_of(r, "best_proxy_task_name"); best != "-")
    std::cout << ": best proxy \"" << best << "\", " << text_of(r, "final_training_steps")
              << " steps, " << text_of(r, "final_training_time_in_hours") << " h";
  else if (auto const pct = text_of(r, "stop_at_pct"); pct != "-")
    std::cout << ": re-check at " << pct << "% of the steps, no best proxy named";
  std::cout << " (" << text_of(r, "method") << ", desired " << text_of(r, "desired_correlation")
            << ")\n";
  std::size_t width = 5;
  auto const& proxies = r.at("proxy_tasks").as_array();
  for (auto const& p : proxies) width = std::max(width, text_of(p.as_object(), "name").size());
  auto row = [&](std::string const& name, std::string const& state, std::string const& rule,
                 std::string const& steps, std::string const& hours, std::string const& failed) {
    auto pad = [](std::string const& t, std::size_t w) {
      return t + std::string(t.size() < w ? w - t.size() : 1, ' ');
    };
    std::cout << "  " << pad(name, width + 2) << pad(state, 26) << pad(rule, 19) << pad(steps, 8)
              << pad(hours, 9) << failed << '\n';
  };
  std::cout << "proxies:\n";
  row("proxy", "end", "rule", "steps", "hours", "failed/trials");
  for (auto const& p : proxies) {
    auto const& o = p.as_object();
    row(text_of(o, "name"), text_of(o, "stopping_state"), text_of(o, "stop_rule"),
        text_of(o, "final_training_steps"), text_of(o, "final_training_time_in_hours"),
        text_of(o, "failed_trials") + "/" + text_of(o, "trials"));
  }
  for (auto const& a : r.at("advice").as_array())
    std::cout << "advice:  " << a.as_string().c_str() << '\n';
  for (auto const& w : r.at("warnings").as_array())
    std::cout << "warning: " << w.as_string().c_str() << '\n';
}

int search_proxy(settings s, char const* argv0) {
  auto const reference = wf::load_reference_models(*s.reference_file);
  if (!reference) {
    std::cerr << program << ": " << reference.error().message() << '\n';
    return exit_error;
  }
  s.search.reference_models = *reference;
  auto const proxies = [&]() -> pt::result<std::vector<wf::proxy_config>> {
    if (!s.proxies_file) return wf::proxy_grid(s.grid).configs();
    auto const file = wf::proxy_config_file::load(*s.proxies_file);
    if (!file) return file.error();
    return file->configs();
  }();
  if (!proxies) {
    std::cerr << program << ": " << proxies.error().message() << '\n';
    return exit_error;
  }
  s.search.proxies = *proxies;
  std::optional<wf::proxy_search_tool> tool;
  try {
    tool.emplace(s.search);
  } catch (pt::logic_error const& e) {
    std::cerr << program << ": " << e.what() << "\n(" << program << " --help lists the options)\n";
    return exit_usage;
  }
  if (!create_run_directory(s.common, program)) return exit_error;
  auto const options = recorded_options(s);
  if (auto const r = accept_extension(s.common.run_dir, options); !r) {
    std::cerr << program << ": " << r.error().message() << '\n';
    return exit_error;
  }
  if (auto const r = check_not_dropped(s.common.run_dir, options); !r) {
    std::cerr << program << ": " << r.error().message() << '\n';
    return exit_error;
  }
  if (auto const r = check_recorded_options(s.common.run_dir, options_file_name, options,
                                            "search in a new run directory");
      !r) {
    std::cerr << program << ": " << r.error().message() << '\n';
    return exit_error;
  }

  auto run = [&](auto& exec) {
    search_plots plots(s, tool->options());
    auto const result = run_with_progress(
        s.common, *tool, exec,
        [&](wf::observation const&, wf::step_summary const&) { plots.after_poll(); });
    if (!result) {
      std::cerr << program << ": " << result.error().message() << '\n';
      return exit_status_of(result.error());
    }
    if (auto const r = plots.write(); !r) {
      std::cerr << program << ": " << r.error().message() << '\n';
      return exit_error;
    }
    print_result(result->as_object());
    auto const& dir = s.common.run_dir;
    std::cout << "written: " << (dir / wf::proxy_search_tool::result_file_name).string() << ", "
              << (dir / wf::proxy_search_tool::state_file_name).string() << '\n';
    for (std::size_t i = 0; i < plots.names().size(); ++i)
      std::cout << (i == 0 ? "plots:   " : "         ") << (dir / plots.names()[i]).string()
                << '\n';
    return exit_ok;
  };
  pt::exec::simulated_options simulation;
  simulation.seed = s.search.seed;
  simulation.noise = 0.05;  // early in training the ranking is unsure, as in real runs
  simulation.divergence_rate = simulation.oom_rate = simulation.crash_rate =
      s.simulated_failure_rate;
  return with_executor(s.common, simulation, argv0, program, [&](auto& exec) {
    if constexpr (std::is_same_v<std::decay_t<decltype(exec)>, pt::exec::simulated_executor>) {
      simulated_proxies with_proxies(exec);
      return run(with_proxies);
    } else {
      return run(exec);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  return tool_main(program, usage(), parse_arguments(argc, argv),
                   [&](settings s) { return search_proxy(std::move(s), argv[0]); });
}
