// proxytask-proxy-task-design: the whole proxy-task design, end to end, on the reference trainer
// (Fashion-MNIST MLPs): the program `./build.sh demo` runs. It is written as a user would write
// their own orchestrator, from the public headers only: the three tools of the workflow
// (workflow/variance_tool.hpp, model_selection.hpp, proxy_search.hpp) run one after the other by
// the driver (workflow/driver.hpp) on local processes, each in its own directory under RUN_DIR,
// then a re-check of the chosen proxy with new seeds, then the answer (printed), a JSON summary
// and an HTML report (workflow/design_report.hpp).
//
//   proxytask-proxy-task-design RUN_DIR [options]
//
// Stages (each resumes after a kill: run the same command again; a finished stage is not run
// again; the options are recorded in RUN_DIR/design_options.json and a resume with other ones
// is refused):
//   1. variance/   is the trainer's score stable enough to judge proxies on? (5 copies of one
//                  model, full training)
//   2. selection/  model selection: --start-models sampled MLPs pruned to --final-models
//                  reference models with their full-training scores
//   3. search/     proxy-task search over the --grid of proxies (default: data_pct x
//                  model_scale), cheapest first, each stopped once its ranking agrees with full
//                  training (Kendall tau-b >= 0.65) or once it costs more than the best so far
//   4. recheck/    the best proxy again, with new seeds, to the same step
//
// The trials run the reference trainer found next to this program on all CPU cores, one
// single-threaded process per core; when the CUDA build of the trainer is there too and the
// machine has NVIDIA GPUs, it runs one trial per GPU with that one instead.
//
// Exit status: 0 done (whatever the answer), 1 an error, 2 a usage error, 130 interrupted (the
// state is saved; run again to resume).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/trainer/search_space.hpp>
#include <proxytask/workflow/design_report.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/progress.hpp>
#include <proxytask/workflow/proxy_configs.hpp>
#include <proxytask/workflow/proxy_search.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;

namespace {

constexpr char const usage[] = R"(usage: proxytask-proxy-task-design RUN_DIR [options]

Runs the whole proxy-task design on the reference trainer (Fashion-MNIST MLPs):
variance measurement, model selection, proxy-task search over a grid of proxies,
and a re-check of the best proxy with new seeds; prints the answer and writes
RUN_DIR/report.html and RUN_DIR/design_summary.json. Run the same command again
to resume an interrupted run.

Options (defaults sized for about 10 minutes on 2 CPU cores):
  --start-models N        models sampled by model selection (20)
  --final-models N        reference models it keeps (10)
  --remove-per-iter N     models it removes per iteration (5)
  --grid NAME=V1,V2,...   a knob of the proxy grid (repeatable; the first varies
                          slowest; default data_pct=10,25,50 and model_scale=0.5,1)
  --arg NAME=VALUE        a trainer argument of the full training (repeatable;
                          default epochs=5)
  --seed S                seeds every stage (0); the re-check uses S + 1000
  --bootstrap N           bootstrap resamples for the correlation's CI (1000)
  --max-concurrent N      trials at once on the CPU (default: the CPU cores)
  --poll-interval S       seconds between polls (2)
  --quiet                 no progress lines
  -h, --help              print this help
)";

struct settings {
  fs::path run_dir;
  wf::model_selection_options schedule{20, 10, 5};
  std::vector<wf::proxy_knob> grid;
  std::map<std::string, std::string> args;
  std::uint64_t seed = 0;
  std::size_t bootstrap = 1000;
  std::size_t max_concurrent = 0;
  double poll_interval_s = 2;
  bool quiet = false;
};

template <class T>
std::optional<T> parse_number(std::string_view text) {
  T value{};
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t comma; (comma = text.find(',')) != std::string_view::npos;
       text.remove_prefix(comma + 1))
    out.emplace_back(text.substr(0, comma));
  out.emplace_back(text);
  return out;
}

/// The settings, or a usage error's message (empty for --help).
std::variant<settings, std::string> parse(int argc, char** argv) {
  settings s;
  std::optional<fs::path> run_dir;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") return std::string();
    if (arg == "--quiet") {
      s.quiet = true;
      continue;
    }
    if (!arg.starts_with("-")) {
      if (run_dir) return "unexpected argument '" + std::string(arg) + "'";
      run_dir = fs::path(arg);
      continue;
    }
    std::string_view name = arg, value;
    if (auto const eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return "option " + std::string(name) + " needs a value";
    }
    auto const bad = "option " + std::string(name) + ": '" + std::string(value) + "' is not ";
    auto count = [&](std::size_t& out) {
      auto const n = parse_number<std::size_t>(value);
      if (n && *n > 0) out = *n;
      return n && *n > 0;
    };
    auto pair = [&]() -> std::optional<std::pair<std::string, std::string>> {
      auto const eq = value.find('=');
      if (eq == std::string_view::npos || eq == 0 || eq + 1 == value.size()) return std::nullopt;
      return std::pair{std::string(value.substr(0, eq)), std::string(value.substr(eq + 1))};
    };
    if (name == "--start-models") {
      if (!count(s.schedule.start_num_models)) return bad + "a positive count";
    } else if (name == "--final-models") {
      if (!count(s.schedule.final_num_models)) return bad + "a positive count";
    } else if (name == "--remove-per-iter") {
      if (!count(s.schedule.num_models_to_remove_per_iter)) return bad + "a positive count";
    } else if (name == "--bootstrap") {
      if (!count(s.bootstrap)) return bad + "a positive count";
    } else if (name == "--max-concurrent") {
      if (!count(s.max_concurrent)) return bad + "a positive count";
    } else if (name == "--grid") {
      auto const p = pair();
      if (!p) return bad + "NAME=V1,V2,...";
      s.grid.push_back({p->first, split_commas(p->second)});
    } else if (name == "--arg") {
      auto const p = pair();
      if (!p) return bad + "NAME=VALUE";
      s.args[p->first] = p->second;
    } else if (name == "--seed") {
      auto const v = parse_number<std::uint64_t>(value);
      if (!v) return bad + "a non-negative integer";
      s.seed = *v;
    } else if (name == "--poll-interval") {
      auto const v = parse_number<double>(value);
      if (!v || !(*v >= 0 && *v < 3600)) return bad + "a number of seconds in [0, 3600)";
      s.poll_interval_s = *v;
    } else {
      return "unknown option " + std::string(name);
    }
  }
  if (!run_dir) return std::string("which run directory?");
  s.run_dir = *run_dir;
  if (s.grid.empty()) s.grid = {{"data_pct", {"10", "25", "50"}}, {"model_scale", {"0.5", "1"}}};
  if (s.args.empty()) s.args = {{"epochs", "5"}};
  return s;
}

/// The options that decide the answer, as RUN_DIR/design_options.json records them.
boost::json::object recorded(settings const& s) {
  boost::json::object args, grid;
  for (auto const& [k, v] : s.args) args[k] = v;
  boost::json::array knobs;
  for (auto const& k : s.grid) {
    boost::json::array values;
    for (auto const& v : k.values) values.emplace_back(v);
    knobs.push_back({{"name", k.name}, {"values", std::move(values)}});
  }
  return {{"start_models", s.schedule.start_num_models},
          {"final_models", s.schedule.final_num_models},
          {"remove_per_iter", s.schedule.num_models_to_remove_per_iter},
          {"grid", std::move(knobs)},
          {"args", std::move(args)},
          {"seed", s.seed},
          {"bootstrap", s.bootstrap}};
}

/// Records the options of a new run, or refuses to resume a run started with other ones.
pt::result<void> check_options(settings const& s) {
  fs::path const path = s.run_dir / "design_options.json";
  auto const now = recorded(s);
  auto const before = pt::read_json_object_file(path);
  if (!before) return before.error();
  if (!*before) return pt::write_json_file(path, now);
  if (**before != boost::json::value(now))
    return pt::make_error(pt::errc::failed_precondition,
                          s.run_dir.string() + " holds a design started with other options (" +
                              path.string() + "): " + boost::json::serialize(**before) +
                              "; resume it with those, or use a new run directory");
  return {};
}

/// How the trials run: the reference trainer on every CPU core, or its CUDA build on every GPU.
struct trial_runner {
  pt::exec::local_process_options options;
  std::string description;
};

trial_runner choose_runner(settings const& s) {
  std::error_code ec;
  fs::path const self = fs::read_symlink("/proc/self/exe", ec);
  fs::path const dir = ec ? fs::current_path() : self.parent_path();
  trial_runner r;
  r.options.poll_interval_s = s.poll_interval_s;
  std::vector<std::string> gpus;
  if (fs::exists(dir / "proxytask-reference-trainer-cuda", ec))
    for (fs::directory_iterator it("/proc/driver/nvidia/gpus", ec), end; !ec && it != end;
         it.increment(ec))
      gpus.push_back(std::to_string(gpus.size()));
  if (!gpus.empty()) {
    r.options.trainer_command = {(dir / "proxytask-reference-trainer-cuda").string()};
    r.options.gpu_slots = gpus;
    r.options.max_concurrent = gpus.size();
    r.description = std::to_string(gpus.size()) + " GPU(s), one trial each";
    return r;
  }
  r.options.trainer_command = {(dir / "proxytask-reference-trainer").string()};
  r.options.max_concurrent = s.max_concurrent
                                 ? s.max_concurrent
                                 : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  r.description = std::to_string(r.options.max_concurrent) + " CPU trial(s) at a time";
  return r;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// Runs one stage's tool in RUN_DIR/<dir> with progress lines; its result, or the error.
template <class Tool>
pt::result<boost::json::value> run_stage(settings const& s, trial_runner const& runner,
                                         std::string_view dir, std::string const& title,
                                         Tool const& tool) {
  fs::path const stage_dir = s.run_dir / dir;
  std::error_code ec;
  fs::create_directories(stage_dir, ec);
  if (ec)
    return pt::make_error(pt::errc::failed_precondition,
                          "cannot create " + stage_dir.string() + ": " + ec.message());
  std::cout << "\n== " << title << "  (" << stage_dir.string() << ")\n" << std::flush;
  auto const started = std::chrono::steady_clock::now();
  pt::exec::local_process_executor exec(stage_dir, runner.options);
  auto printer = wf::progress_printer::for_stderr(std::cerr, s.quiet);
  wf::run_options options{.run_dir = stage_dir};
  options.progress = [&](wf::observation const& obs, wf::step_summary const& summary) {
    printer(obs, summary);
  };
  auto result = wf::run(tool, exec, options);
  printer.end_line();
  if (result) std::cout << "   done in " << wf::format_duration(seconds_since(started)) << '\n';
  return result;
}

int fail(pt::error const& e) {
  std::cerr << "proxytask-proxy-task-design: " << e.message() << '\n';
  return e.code == pt::errc::cancelled ? 130 : 1;
}

int design(settings const& s) {
  auto const started = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(s.run_dir, ec);
  if (ec)
    return fail(
        pt::make_error(pt::errc::failed_precondition, "cannot create " + s.run_dir.string()));
  if (auto const r = check_options(s); !r) return fail(r.error());
  auto const runner = choose_runner(s);
  std::cout << "proxy-task design in " << s.run_dir.string() << ": the reference trainer ("
            << runner.options.trainer_command.front() << "), " << runner.description << '\n';

  // The search space: the reference trainer's MLPs, one per seed.
  wf::model_sampler const sampler = [](std::uint64_t seed) {
    return pt::trainer::to_model_spec(pt::trainer::sample_mlp(seed));
  };

  // 1. Variance: the full training of one model, five times.
  wf::variance_options variance;
  variance.seed = s.seed;
  variance.proxy_args = s.args;
  auto const measured = run_stage(s, runner, wf::design_variance_dir,
                                  "1/4 variance measurement: 5 copies of one model, full training",
                                  wf::variance_tool(sampler, variance));
  if (!measured) return fail(measured.error());

  // 2. Model selection: the reference models and their full-training scores.
  wf::model_selection_tool_options selection;
  selection.schedule = s.schedule;
  selection.seed = s.seed;
  selection.proxy_args = s.args;
  auto const selected = run_stage(
      s, runner, wf::design_selection_dir,
      "2/4 model selection: " + std::to_string(s.schedule.start_num_models) + " models -> " +
          std::to_string(s.schedule.final_num_models) + " reference models",
      wf::model_selection_tool(sampler, selection));
  if (!selected) return fail(selected.error());
  auto const reference = wf::load_reference_models(s.run_dir / wf::design_selection_dir /
                                                   wf::model_selection_tool::result_file_name);
  if (!reference) return fail(reference.error());

  // 3. Proxy-task search over the grid, cheapest first.
  auto const proxies = wf::proxy_grid(s.grid).configs();
  if (!proxies) return fail(proxies.error());
  wf::proxy_search_options search;
  search.reference_models = *reference;
  search.proxies = *proxies;
  search.baseline_args = s.args;
  search.early_stop_proxy_task_if_not_best = true;
  search.bootstrap_resamples = s.bootstrap;
  search.seed = s.seed;
  auto const found =
      run_stage(s, runner, wf::design_search_dir,
                "3/4 proxy-task search: " + std::to_string(proxies->size()) + " proxies x " +
                    std::to_string(reference->size()) + " reference models",
                wf::proxy_search_tool(search));
  if (!found) return fail(found.error());

  // 4. The re-check: the best proxy, new seeds, the same step.
  wf::design_run run{
      .run_dir = s.run_dir, .baseline_args = s.args, .search = search, .recheck = std::nullopt};
  auto const state_doc = pt::read_json_object_file(s.run_dir / wf::design_search_dir /
                                                   wf::proxy_search_tool::state_file_name);
  if (!state_doc) return fail(state_doc.error());
  auto const state = wf::proxy_search_tool::state_from_json(
      state_doc->value(), pt::json_location(wf::proxy_search_tool::state_file_name));
  if (!state) return fail(state.error());
  if (auto const plan = wf::plan_recheck(*state)) {
    wf::proxy_search_options recheck = search;
    recheck.proxies = {plan->proxy};
    recheck.seed = s.seed + 1000;
    recheck.early_stop_proxy_task_if_not_best = false;
    recheck.stop_at_pct = plan->stop_at_pct;
    auto const rechecked =
        run_stage(s, runner, wf::design_recheck_dir,
                  "4/4 re-check: \"" + plan->proxy.name + "\" with new seeds, to step " +
                      std::to_string(plan->stop_at_step),
                  wf::proxy_search_tool(recheck));
    if (!rechecked) return fail(rechecked.error());
    run.recheck = recheck;
  } else {
    std::cout << "\n== 4/4 re-check: skipped, no proxy succeeded\n";
  }

  // The answer, the summary and the report.
  // The stages' plots are written next to their state files, as their own programs do.
  auto const plots = wf::design_plots(run);
  if (!plots) return fail(plots.error());
  for (auto const& p : *plots)
    if (auto const r = pt::write_file_atomically(s.run_dir / p.name, p.svg); !r)
      return fail(r.error());
  auto const summary = wf::design_summary(run);
  if (!summary) return fail(summary.error());
  fs::path const summary_path = s.run_dir / wf::design_summary_file_name;
  fs::path const report_path = s.run_dir / wf::design_report_file_name;
  if (auto const r = pt::write_json_file(summary_path, *summary); !r) return fail(r.error());
  if (auto const r =
          pt::write_file_atomically(report_path, wf::design_report_html(run, *summary, *plots));
      !r)
    return fail(r.error());
  std::cout << "\n== The answer\n" << wf::design_answer_text(*summary);
  std::cout << "\nreport:     " << report_path.string() << "\nsummary:    " << summary_path.string()
            << "\ntook:       " << wf::format_duration(seconds_since(started))
            << " (this run; a resumed run counts only its own time)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto const parsed = parse(argc, argv);
  if (auto const* message = std::get_if<std::string>(&parsed)) {
    if (message->empty()) {
      std::cout << usage;
      return 0;
    }
    std::cerr << "proxytask-proxy-task-design: " << *message << "\n\n" << usage;
    return 2;
  }
  try {
    return design(std::get<settings>(parsed));
  } catch (std::exception const& e) {  // a tool's constructor rejecting the options
    std::cerr << "proxytask-proxy-task-design: " << e.what() << '\n';
    return 2;
  }
}
