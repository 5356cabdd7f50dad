#pragma once
// What the tool programs (measure_variance.cpp, select_models.cpp) share: the command line of
// their trials and search space, the options recorded in the run directory (a resume with other
// ones is refused), the search space as a model sampler, the executor chosen by --executor, and
// the driver run with its progress lines. Each program adds its own options and prints its own
// result. The including program defines PROXYTASK_HAS_TRAINER (0 or 1: whether it links
// proxytask::trainer, whose reference trainer and MLP search space are the defaults).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/in_process.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/exec/slurm.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/progress.hpp>
#include <proxytask/workflow/search_space.hpp>
#include <proxytask/workflow/variance_tool.hpp>  // model_sampler
#if PROXYTASK_HAS_TRAINER
#include <proxytask/trainer/reference_program.hpp>
#include <proxytask/trainer/search_space.hpp>
#endif

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace tool_cli {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_interrupted = 130;

/// The options' help text common to the tools (after "Trials:" and before the tool's own).
constexpr char const trial_options_help[] =
    R"(Trials:
  --executor E            local (default): each trial a local process;
                          inprocess: the reference trainer on threads of this
                          process (no trainer command; trials die with it);
                          simulated: synthetic learning curves under a virtual
                          clock (hours of training in milliseconds; for trying
                          the tool and its settings);
                          slurm: each trial a Slurm batch job (sbatch; the run
                          directory must be on a filesystem the compute nodes
                          share; SLURM_CONF from the environment)
  -- TRAINER ...          the trainer command (local, slurm; default: the
                          reference trainer, proxytask-reference-trainer, next
                          to this program)
  --max-concurrent N      trials running at once (local, inprocess; default: the
                          number of CPU cores)
  --gpus LIST             comma-separated CUDA device ids: one trial per device
                          at a time, through CUDA_VISIBLE_DEVICES (local)
  --poll-interval S       seconds between polls (default 5; simulated: virtual
                          seconds, default 60)
  --slurm-partition P, --slurm-account A, --slurm-qos Q
                          sbatch's --partition, --account, --qos (slurm)
  --slurm-time MINUTES    each trial's time limit (sbatch --time; slurm)
  --slurm-cpus N          CPUs per trial (sbatch --cpus-per-task; slurm; 1)
  --slurm-gpus G          GPUs per trial (sbatch --gpus, e.g. 1 or a100:1; slurm)
  --slurm-mem M           memory per trial (sbatch --mem, e.g. 8G; slurm)
  --slurm-arg FLAG        another sbatch flag, as it is (repeatable; slurm)
  --arg NAME=VALUE        a trainer argument of every trial: the proxy settings
                          being measured (repeatable), e.g. --arg data_pct=50

Search space (default: the reference trainer's MLPs, sample_mlp(seed)):
  --search-space FILE     a JSON file of candidate model specs
  --search-space-command C
                          a command that prints a model spec (JSON) for
                          --seed=N appended to it (run through /bin/sh -c)
)";

/// The output options' help text common to the tools (the last lines of the help).
constexpr char const output_options_help[] =
    R"(  --quiet                 no progress lines (errors and the result still print)
  --cancel-on-exit        on Ctrl-C / SIGTERM, cancel the running trials too
                          (default: they keep running, and a resume re-attaches)
  -h, --help              print this help and exit
)";

struct usage_error {
  std::string message;
};
struct help_requested {};

/// The settings every tool program has: the run directory, the trials, the search space, the
/// output.
struct common_settings {
  fs::path run_dir;
  std::string executor = "local";
  std::vector<std::string> trainer;  ///< empty: the reference trainer
  std::size_t max_concurrent = 0;    ///< 0: hardware concurrency
  std::vector<std::string> gpus;
  std::optional<double> poll_interval_s;
  pt::exec::slurm_options slurm;  ///< --executor slurm's sbatch settings (not its trainer)
  bool slurm_given = false;       ///< some --slurm-* option was given
  std::map<std::string, std::string> args;
  std::optional<fs::path> search_space_file;
  std::optional<std::string> search_space_command;
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

inline std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  while (true) {
    auto const comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

/// What a tool's option handler made of "--name value": not its option, taken, or a bad value
/// ("option NAME: 'VALUE' is not <expected>").
struct option_outcome {
  bool known = true;
  std::string expected;  ///< non-empty: the value is not this
};
inline option_outcome not_mine() { return {false, {}}; }
inline option_outcome taken() { return {}; }
inline option_outcome not_a(std::string expected) { return {true, std::move(expected)}; }

/// A tool's flag (an option without a value).
struct flag {
  std::string_view name;
  bool* value;
};

/// A tool's options with a value: (name, value) -> option_outcome.
using value_options = std::function<option_outcome(std::string_view, std::string_view)>;

/// Reads one --slurm-* option into `o`.
/// @returns what the value is not (an unknown name: "a --slurm-* option"), or nullopt when taken
inline std::optional<std::string> slurm_option(pt::exec::slurm_options& o, std::string_view name,
                                               std::string_view value) {
  if (name == "--slurm-partition")
    o.partition = value;
  else if (name == "--slurm-account")
    o.account = value;
  else if (name == "--slurm-qos")
    o.qos = value;
  else if (name == "--slurm-gpus")
    o.gpus = value;
  else if (name == "--slurm-mem")
    o.mem = value;
  else if (name == "--slurm-arg")
    o.extra_args.emplace_back(value);
  else if (name == "--slurm-time") {
    auto const n = parse_value<std::int64_t>(value);
    if (!n || *n <= 0) return "a positive number of minutes";
    o.time_minutes = *n;
  } else if (name == "--slurm-cpus") {
    auto const n = parse_value<std::int64_t>(value);
    if (!n || *n <= 0) return "a positive count";
    o.cpus_per_task = *n;
  } else {
    return "a --slurm-* option (--slurm-partition, --slurm-account, --slurm-qos, --slurm-time, "
           "--slurm-cpus, --slurm-gpus, --slurm-mem, --slurm-arg)";
  }
  return std::nullopt;
}

/// Parses the command line into `s` (the common options) and the tool's flags and value options.
/// @returns std::monostate when the command line is good, else a usage error or --help
inline std::variant<std::monostate, usage_error, help_requested> parse_command_line(
    int argc, char** argv, common_settings& s, std::span<flag const> flags,
    value_options const& tool_option) {
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
    if (auto const f =
            std::find_if(flags.begin(), flags.end(), [&](flag const& x) { return x.name == arg; });
        f != flags.end()) {
      *f->value = true;
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
    auto bad = [&](std::string_view expected) {
      return usage_error{"option " + std::string(name) + ": '" + std::string(value) + "' is not " +
                         std::string(expected)};
    };
    if (name == "--executor") {
      if (value != "local" && value != "inprocess" && value != "simulated" && value != "slurm")
        return bad("local, inprocess, simulated or slurm");
      s.executor = std::string(value);
    } else if (name.starts_with("--slurm-")) {
      if (auto const e = slurm_option(s.slurm, name, value)) return bad(*e);
      s.slurm_given = true;
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
    } else {
      auto const o = tool_option(name, value);
      if (!o.known) return usage_error{"unknown option " + std::string(name)};
      if (!o.expected.empty()) return bad(o.expected);
    }
  }
  if (!run_dir) return usage_error{"which run directory?"};
  s.run_dir = *run_dir;
  if (s.search_space_file && s.search_space_command)
    return usage_error{"--search-space and --search-space-command exclude each other"};
  if (s.executor != "local" && s.executor != "slurm" && !s.trainer.empty())
    return usage_error{"a trainer command is for --executor local or slurm"};
  if (s.executor != "local" && !s.gpus.empty())
    return usage_error{"--gpus is for --executor local (with slurm: --slurm-gpus)"};
  if (s.executor != "slurm" && s.slurm_given)
    return usage_error{"the --slurm-* options are for --executor slurm"};
  return std::monostate{};
}

/// The common options that decide a tool's result, for its recorded options file (the tool
/// appends its own).
inline boost::json::object recorded_common_options(common_settings const& s) {
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
          {"args", std::move(args)}};
}

/// Records the options of a new run in run_dir/file_name, or checks that a resume uses the same
/// ones (the first that differs is named).
/// @param[in] instead what to do instead of resuming, for the message ("measure in a new run
///                    directory")
inline pt::result<void> check_recorded_options(fs::path const& run_dir, std::string_view file_name,
                                               boost::json::object const& options,
                                               std::string_view instead) {
  fs::path const path = run_dir / file_name;
  auto const file = pt::read_json_object_file(path);
  if (!file) return file.error();
  if (!*file) return pt::write_json_file(path, options);
  auto const& before = (*file)->as_object();
  for (auto const& kv : options) {
    auto const* old = before.if_contains(kv.key());
    if (!old || *old != kv.value())
      return pt::make_error(
          pt::errc::failed_precondition,
          run_dir.string() + " holds a run started with other options: " + std::string(kv.key()) +
              " was " + (old ? boost::json::serialize(*old) : std::string("not set")) + ", now " +
              boost::json::serialize(kv.value()) + " (" + path.string() +
              "); resume it with the same options, or " + std::string(instead));
  }
  return {};
}

/// The directory of this program (to find the reference trainer next to it).
inline fs::path program_directory(char const* argv0) {
  std::error_code ec;
  auto const self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) return self.parent_path();
  return fs::absolute(argv0, ec).parent_path();
}

/// The sampler a tool calls: the search space's spec for a seed. Samples are drawn up front for
/// `seeds` (the seeds the tool will most likely ask for), so that a broken search space fails
/// before anything runs; the tool may ask for another seed (then a failure throws, and the
/// program reports it: advance() has not persisted anything yet).
inline pt::result<wf::model_sampler> make_sampler(common_settings const& s,
                                                  std::vector<std::uint64_t> const& seeds) {
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

/// Builds the executor that --executor names and returns run(exec) (an exit status); or prints
/// why it cannot be built (prefixed by `program`) and returns exit_error.
/// @param[in] simulation the simulated executor's settings (its poll interval is
///                       --poll-interval's when given)
template <class Run>
int with_executor(common_settings const& s, pt::exec::simulated_options simulation,
                  char const* argv0, std::string_view program, Run&& run) {
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
    return run(exec);
#else
    std::cerr << program
              << ": --executor inprocess runs the reference trainer, which this build does not "
                 "have (it needs zlib and OpenBLAS)\n";
    return exit_error;
#endif
  }
  if (s.executor == "simulated") {
    if (s.poll_interval_s) simulation.poll_interval_s = *s.poll_interval_s;
    pt::exec::simulated_executor exec(s.run_dir, simulation);
    return run(exec);
  }
  auto trainer = s.trainer;
  if (trainer.empty()) {
    std::error_code ec;
    fs::path const reference = program_directory(argv0) / "proxytask-reference-trainer";
    if (!fs::exists(reference, ec)) {
      std::cerr << program << ": the reference trainer is not at " << reference.string()
                << "; give a trainer command after --\n";
      return exit_error;
    }
    trainer = {reference.string()};
  }
  if (s.executor == "slurm") {
    pt::exec::slurm_options o = s.slurm;
    o.trainer_command = trainer;
    o.poll_interval_s = s.poll_interval_s.value_or(5.0);
    pt::exec::slurm_executor exec(s.run_dir, o);
    return run(exec);
  }
  pt::exec::local_process_options o;
  o.trainer_command = trainer;
  o.max_concurrent = concurrency;
  o.gpu_slots = s.gpus;
  o.poll_interval_s = s.poll_interval_s.value_or(5.0);
  pt::exec::local_process_executor exec(s.run_dir, o);
  return run(exec);
}

/// An executor that passes every call to `inner`: the base of a program's wrapper that changes
/// what a launch or an observation carries (it hides launch or observe with its own).
template <class Inner>
class forwarding_executor {
 public:
  explicit forwarding_executor(Inner& inner) : inner_(inner) {}
  pt::result<void> launch(wf::launch_trial const& l) { return inner_.launch(l); }
  pt::result<wf::observation> observe() { return inner_.observe(); }
  pt::result<void> set_desired_pct(std::string const& id, double pct) {
    return inner_.set_desired_pct(id, pct);
  }
  pt::result<void> cancel(std::string const& id) { return inner_.cancel(id); }
  void wait_for_next_poll() { inner_.wait_for_next_poll(); }

 protected:
  Inner& inner_;
};

/// Runs `tool` on `exec` in s.run_dir with progress lines on stderr (unless --quiet); `also`,
/// when given, is called after each poll too.
template <class Tool, class Exec>
pt::result<boost::json::value> run_with_progress(
    common_settings const& s, Tool const& tool, Exec& exec,
    std::function<void(wf::observation const&, wf::step_summary const&)> also = nullptr) {
  auto printer = wf::progress_printer::for_stderr(std::cerr, s.quiet);
  wf::run_options options{.run_dir = s.run_dir};
  options.progress = [&](wf::observation const& obs, wf::step_summary const& summary) {
    printer(obs, summary);
    if (also) also(obs, summary);
  };
  options.cancel_on_exit = s.cancel_on_exit;
  auto result = wf::run(tool, exec, options);
  printer.end_line();
  return result;
}

/// The exit status of a run's error (130 for an interrupted run, which resumes).
inline int exit_status_of(pt::error const& e) {
  return e.code == pt::errc::cancelled ? exit_interrupted : exit_error;
}

/// A JSON member as text for people: strings as they are, numbers with 4 significant digits,
/// "-" for anything else (null, missing).
inline std::string text_of(boost::json::object const& o, std::string_view key) {
  if (auto const* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  if (auto const* v = o.if_contains(key); v && v->is_number()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", v->to_number<double>());
    return text;
  }
  return "-";
}

/// Creates the run directory; prints why not (prefixed by `program`).
inline bool create_run_directory(common_settings const& s, std::string_view program) {
  std::error_code ec;
  fs::create_directories(s.run_dir, ec);
  if (!ec) return true;
  std::cerr << program << ": cannot create " << s.run_dir.string() << ": " << ec.message() << '\n';
  return false;
}

/// A tool program's main: the parsed command line (parse(argc, argv) gives the program's
/// settings, usage_error or help_requested), --help (exit 0), a usage error with the usage text
/// (exit 2), then body(settings). An exception from the body is the search space failing for a
/// seed that was not sampled up front: nothing was persisted for the step that asked for it, and
/// the program exits 1 naming it.
template <class Settings, class Body>
int tool_main(std::string_view program, std::string const& usage,
              std::variant<Settings, usage_error, help_requested> parsed, Body&& body) {
  if (std::holds_alternative<help_requested>(parsed)) {
    std::cout << usage;
    return exit_ok;
  }
  if (auto const* e = std::get_if<usage_error>(&parsed)) {
    std::cerr << program << ": " << e->message << "\n\n" << usage;
    return exit_usage;
  }
  try {
    return std::forward<Body>(body)(std::move(std::get<Settings>(parsed)));
  } catch (std::exception const& e) {
    std::cerr << program << ": " << e.what() << '\n';
    return exit_error;
  }
}

}  // namespace tool_cli
