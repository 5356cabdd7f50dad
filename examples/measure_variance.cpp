// proxytask-measure-variance: the variance-measurement tool (DESIGN.md "The three tools", item 1;
// the seed's "Measure variance"): is the trainer's final score stable and its curve smooth
// enough for a proxy task to be judged on it? It finds a workable model of the search space
// (trained to 1%; up to 10 tries), trains 5 copies of it with distinct seeds to 100%, and writes
// RUN_DIR/variance_and_smoothness.json (coefficient of variation and smoothness with their
// verdicts, a bootstrap interval of the variance, per-copy scores, and advice) next to its state,
// RUN_DIR/measurement_state.json.
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
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/in_process.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/progress.hpp>
#include <proxytask/workflow/search_space.hpp>
#include <proxytask/workflow/variance_tool.hpp>
#if PROXYTASK_HAS_TRAINER
#include <proxytask/trainer/reference_program.hpp>
#include <proxytask/trainer/search_space.hpp>
#endif

#include <boost/json.hpp>

#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_interrupted = 130;

constexpr std::string_view options_file_name = "variance_options.json";

constexpr char const usage[] =
    R"(usage: proxytask-measure-variance RUN_DIR [options] [-- TRAINER COMMAND ...]

Measures the variance and smoothness of a trainer's scores: finds a workable
model, trains copies of it with distinct seeds to 100%, and writes
RUN_DIR/variance_and_smoothness.json and RUN_DIR/measurement_state.json.
Run the same command again to resume an interrupted run.

Trials:
  --executor E            local (default): each trial a local process;
                          inprocess: the reference trainer on threads of this
                          process (no trainer command; trials die with it);
                          simulated: synthetic learning curves under a virtual
                          clock (hours of training in milliseconds; for trying
                          the tool and its settings)
  -- TRAINER ...          the trainer command (local; default: the reference
                          trainer, proxytask-reference-trainer, next to this
                          program)
  --max-concurrent N      trials running at once (local, inprocess; default: the
                          number of CPU cores)
  --gpus LIST             comma-separated CUDA device ids: one trial per device
                          at a time, through CUDA_VISIBLE_DEVICES (local)
  --poll-interval S       seconds between polls (default 5; simulated: virtual
                          seconds, default 60)
  --arg NAME=VALUE        a trainer argument of every trial: the proxy settings
                          being measured (repeatable), e.g. --arg data_pct=50

Search space (default: the reference trainer's MLPs, sample_mlp(seed)):
  --search-space FILE     a JSON file of candidate model specs
  --search-space-command C
                          a command that prints a model spec (JSON) for
                          --seed=N appended to it (run through /bin/sh -c)

Measurement:
  --copies N              copies of the workable model (default 5)
  --max-tries N           models tried before giving up (default 10)
  --workable-pct P        a model is workable when it reaches P% (default 1)
  --seed S                seeds the trials, the sampler and the bootstrap (0)
  --resamples B           bootstrap resamples of the variance interval (2000)

Output:
  --quiet                 no progress lines (errors and the result still print)
  --cancel-on-exit        on Ctrl-C / SIGTERM, cancel the running trials too
                          (default: they keep running, and a resume re-attaches)
  -h, --help              print this help and exit
)";

struct usage_error {
  std::string message;
};
struct help_requested {};

struct settings {
  fs::path run_dir;
  std::string executor = "local";
  std::vector<std::string> trainer;  ///< empty: the reference trainer
  std::size_t max_concurrent = 0;    ///< 0: hardware concurrency
  std::vector<std::string> gpus;
  std::optional<double> poll_interval_s;
  std::map<std::string, std::string> args;
  std::optional<fs::path> search_space_file;
  std::optional<std::string> search_space_command;
  wf::variance_options variance;
  bool quiet = false;
  bool cancel_on_exit = false;
};

template <class T>
std::optional<T> parse_value(std::string_view text) {
  T value{};
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    auto const comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

std::variant<settings, usage_error, help_requested> parse_arguments(int argc, char** argv) {
  settings s;
  std::optional<fs::path> run_dir;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      for (int j = i + 1; j < argc; ++j) s.trainer.emplace_back(argv[j]);
      if (s.trainer.empty()) return usage_error{"'--' must be followed by the trainer command"};
      break;
    }
    if (arg == "-h" || arg == "--help") return help_requested{};
    if (!arg.starts_with("-")) {
      if (run_dir) return usage_error{"unexpected argument '" + std::string(arg) + "'"};
      run_dir = fs::path(arg);
      continue;
    }
    if (arg == "--quiet") {
      s.quiet = true;
      continue;
    }
    if (arg == "--cancel-on-exit") {
      s.cancel_on_exit = true;
      continue;
    }
    std::string_view name = arg, value;
    if (auto const eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc) return usage_error{"option " + std::string(name) + " needs a value"};
      value = argv[++i];
    }
    auto bad = [&](char const* expected) {
      return usage_error{"option " + std::string(name) + ": '" + std::string(value) + "' is not " +
                         expected};
    };
    if (name == "--executor") {
      if (value != "local" && value != "inprocess" && value != "simulated")
        return bad("local, inprocess or simulated");
      s.executor = std::string(value);
    } else if (name == "--max-concurrent") {
      auto const n = parse_value<std::size_t>(value);
      if (!n || *n == 0) return bad("a positive count");
      s.max_concurrent = *n;
    } else if (name == "--gpus") {
      s.gpus = split_commas(value);
      for (auto const& g : s.gpus)
        if (g.empty()) return bad("a comma-separated list of device ids");
    } else if (name == "--poll-interval") {
      auto const v = parse_value<double>(value);
      if (!v || !(*v >= 0) || !std::isfinite(*v)) return bad("a number of seconds >= 0");
      s.poll_interval_s = *v;
    } else if (name == "--arg") {
      auto const eq = value.find('=');
      if (eq == std::string_view::npos || eq == 0) return bad("NAME=VALUE");
      s.args[std::string(value.substr(0, eq))] = std::string(value.substr(eq + 1));
    } else if (name == "--search-space") {
      s.search_space_file = fs::path(value);
    } else if (name == "--search-space-command") {
      s.search_space_command = std::string(value);
    } else if (name == "--copies") {
      auto const n = parse_value<std::size_t>(value);
      if (!n || *n < 2) return bad("a count >= 2");
      s.variance.copies = *n;
    } else if (name == "--max-tries") {
      auto const n = parse_value<std::size_t>(value);
      if (!n || *n == 0) return bad("a positive count");
      s.variance.max_workable_tries = *n;
    } else if (name == "--workable-pct") {
      auto const v = parse_value<double>(value);
      if (!v || !(*v > 0 && *v <= 100)) return bad("a pct in (0, 100]");
      s.variance.workable_pct = *v;
    } else if (name == "--seed") {
      auto const v = parse_value<std::uint64_t>(value);
      if (!v) return bad("a non-negative integer");
      s.variance.seed = *v;
    } else if (name == "--resamples") {
      auto const n = parse_value<std::size_t>(value);
      if (!n || *n == 0) return bad("a positive count");
      s.variance.bootstrap_resamples = *n;
    } else {
      return usage_error{"unknown option " + std::string(name)};
    }
  }
  if (!run_dir) return usage_error{"which run directory?"};
  s.run_dir = *run_dir;
  if (s.search_space_file && s.search_space_command)
    return usage_error{"--search-space and --search-space-command exclude each other"};
  if (s.executor != "local" && (!s.trainer.empty() || !s.gpus.empty()))
    return usage_error{"a trainer command and --gpus are for --executor local"};
  s.variance.proxy_args = s.args;
  return s;
}

/// The options that decide the measurement's result, as recorded in variance_options.json.
boost::json::object recorded_options(settings const& s) {
  boost::json::object args;
  for (auto const& [k, v] : s.args) args[k] = v;
  boost::json::array trainer;
  for (auto const& t : s.trainer) trainer.emplace_back(t);
  return {{"executor", s.executor},
          {"trainer", std::move(trainer)},
          {"search_space_file",
           s.search_space_file ? boost::json::value(s.search_space_file->string()) : nullptr},
          {"search_space_command",
           s.search_space_command ? boost::json::value(*s.search_space_command) : nullptr},
          {"args", std::move(args)},
          {"copies", s.variance.copies},
          {"max_tries", s.variance.max_workable_tries},
          {"workable_pct", s.variance.workable_pct},
          {"seed", s.variance.seed},
          {"resamples", s.variance.bootstrap_resamples}};
}

/// Records the options of a new run, or checks that a resume uses the same ones.
pt::result<void> check_recorded_options(settings const& s) {
  fs::path const path = s.run_dir / options_file_name;
  auto const options = recorded_options(s);
  auto const file = pt::read_json_object_file(path);
  if (!file) return file.error();
  if (!*file) return pt::write_json_file(path, options);
  auto const& before = (*file)->as_object();
  for (auto const& kv : options) {
    auto const* old = before.if_contains(kv.key());
    if (!old || *old != kv.value())
      return pt::make_error(
          pt::errc::failed_precondition,
          s.run_dir.string() + " holds a run started with other options: " + std::string(kv.key()) +
              " was " + (old ? boost::json::serialize(*old) : std::string("not set")) + ", now " +
              boost::json::serialize(kv.value()) + " (" + path.string() +
              "); resume it with the same options, or measure in a new run directory");
  }
  return {};
}

/// The directory of this program (to find the reference trainer next to it).
fs::path program_directory(char const* argv0) {
  std::error_code ec;
  auto const self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) return self.parent_path();
  return fs::absolute(argv0, ec).parent_path();
}

/// The sampler the tool calls: the search space's spec for a seed. Samples are drawn up front
/// for the seeds the tries will use, so that a broken search space fails before anything runs;
/// the tool may ask for another seed when one is taken (then a failure throws, and main reports
/// it: advance() has not persisted anything yet).
pt::result<wf::model_sampler> make_sampler(settings const& s) {
  wf::variance_tool const probe([](std::uint64_t) { return pt::protocol::model_spec{}; },
                                s.variance);
  std::vector<std::uint64_t> seeds;
  for (std::size_t n = 0; n < s.variance.max_workable_tries; ++n)
    seeds.push_back(probe.try_seed(n));

  auto sample_with = [&](auto space) -> pt::result<wf::model_sampler> {
    auto const presampled = wf::presample(*space, seeds);
    if (!presampled) return presampled.error();
    return wf::model_sampler([space, samples = *presampled](std::uint64_t seed) {
      if (auto const it = samples.find(seed); it != samples.end()) return it->second;
      auto spec = space->sample(seed);
      if (!spec) throw std::runtime_error(spec.error().message());
      return std::move(*spec);
    });
  };
  if (s.search_space_file) {
    auto space = wf::candidate_file_space::load(*s.search_space_file);
    if (!space) return space.error();
    return sample_with(std::make_shared<wf::candidate_file_space>(std::move(*space)));
  }
  if (s.search_space_command)
    // Through the shell, with the seed flag as its "$@": `CMD --seed=N`.
    return sample_with(std::make_shared<wf::command_space>(std::vector<std::string>{
        "/bin/sh", "-c", *s.search_space_command + " \"$@\"", "proxytask-search-space"}));
#if PROXYTASK_HAS_TRAINER
  return wf::model_sampler(
      [](std::uint64_t seed) { return pt::trainer::to_model_spec(pt::trainer::sample_mlp(seed)); });
#else
  return pt::make_error(pt::errc::invalid_argument,
                        "this build has no reference trainer (it needs zlib and OpenBLAS): "
                        "give a search space (--search-space or --search-space-command) and "
                        "a trainer command after --");
#endif
}

std::string text_of(boost::json::object const& o, std::string_view key) {
  if (auto const* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  if (auto const* v = o.if_contains(key); v && v->is_number()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", v->to_number<double>());
    return text;
  }
  return "-";
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

template <class Exec>
int run_tool(settings const& s, wf::variance_tool const& tool, Exec& exec) {
  auto printer = wf::progress_printer::for_stderr(std::cerr, s.quiet);
  wf::run_options options{.run_dir = s.run_dir};
  options.progress = std::ref(printer);
  options.cancel_on_exit = s.cancel_on_exit;
  auto const result = wf::run(tool, exec, options);
  printer.end_line();
  if (!result) {
    std::cerr << "proxytask-measure-variance: " << result.error().message() << '\n';
    return result.error().code == pt::errc::cancelled ? exit_interrupted : exit_error;
  }
  print_result(result->as_object());
  std::cout << "written: " << (s.run_dir / wf::variance_tool::result_file_name).string() << " and "
            << (s.run_dir / wf::variance_tool::state_file_name).string() << '\n';
  return exit_ok;
}

int measure(settings s, char const* argv0) {
  std::error_code ec;
  fs::create_directories(s.run_dir, ec);
  if (ec) {
    std::cerr << "proxytask-measure-variance: cannot create " << s.run_dir.string() << ": "
              << ec.message() << '\n';
    return exit_error;
  }
  auto sampler = make_sampler(s);
  if (!sampler) {
    std::cerr << "proxytask-measure-variance: " << sampler.error().message() << '\n';
    return exit_error;
  }
  if (auto const r = check_recorded_options(s); !r) {
    std::cerr << "proxytask-measure-variance: " << r.error().message() << '\n';
    return exit_error;
  }
  wf::variance_tool const tool(std::move(*sampler), s.variance);

  std::size_t const concurrency =
      s.max_concurrent != 0 ? s.max_concurrent
                            : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  if (s.executor == "inprocess") {
#if PROXYTASK_HAS_TRAINER
    pt::exec::in_process_options o;
    o.max_concurrent = concurrency;
    o.poll_interval_s = s.poll_interval_s.value_or(5.0);
    pt::exec::in_process_executor exec(
        s.run_dir,
        [](pt::exec::in_process_trial& t) {
          pt::trainer::reference::program_io io{t.out, t.err, t.stop};
          return pt::trainer::reference::run_launch(t.args, io);
        },
        o);
    return run_tool(s, tool, exec);
#else
    std::cerr << "proxytask-measure-variance: --executor inprocess runs the reference trainer, "
                 "which this build does not have (it needs zlib and OpenBLAS)\n";
    return exit_error;
#endif
  }
  if (s.executor == "simulated") {
    pt::exec::simulated_options o;
    o.poll_interval_s = s.poll_interval_s.value_or(60.0);
    o.seed = s.variance.seed;
    pt::exec::simulated_executor exec(s.run_dir, o);
    return run_tool(s, tool, exec);
  }
  pt::exec::local_process_options o;
  o.trainer_command = s.trainer;
  if (o.trainer_command.empty()) {
    fs::path const reference = program_directory(argv0) / "proxytask-reference-trainer";
    if (!fs::exists(reference, ec)) {
      std::cerr << "proxytask-measure-variance: the reference trainer is not at "
                << reference.string() << "; give a trainer command after --\n";
      return exit_error;
    }
    o.trainer_command = {reference.string()};
  }
  o.max_concurrent = concurrency;
  o.gpu_slots = s.gpus;
  o.poll_interval_s = s.poll_interval_s.value_or(5.0);
  pt::exec::local_process_executor exec(s.run_dir, o);
  return run_tool(s, tool, exec);
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = parse_arguments(argc, argv);
  if (std::holds_alternative<help_requested>(parsed)) {
    std::cout << usage;
    return exit_ok;
  }
  if (auto const* e = std::get_if<usage_error>(&parsed)) {
    std::cerr << "proxytask-measure-variance: " << e->message << "\n\n" << usage;
    return exit_usage;
  }
  try {
    return measure(std::move(std::get<settings>(parsed)), argv[0]);
  } catch (std::exception const& e) {
    // The search space failed for a seed that was not sampled up front; nothing was persisted
    // for the step that asked for it.
    std::cerr << "proxytask-measure-variance: " << e.what() << '\n';
    return exit_error;
  }
}
