// proxytask-latency-calculator: the seed's "on-premises latency device" job for the reference
// trainer. Run it on the machine whose latency matters (a CPU host, an edge board) over a run
// directory that a controller writes (proxytask-measure-variance, model selection, proxy-task
// search; any executor), at the same time or afterwards, locally or over a shared file system.
// It watches RUN_DIR/trials/*/, and for each trial that has a MODEL_SPEC.json and no
// MODEL_LATENCY.json it builds the trial's multilayer perceptron, times its inference on this
// machine's CPU with the reference trainer's CPU back-end (OpenBLAS: mlp_trainer::infer), and
// writes the trial's MODEL_LATENCY.json (protocol/latency.hpp) atomically. It writes no other
// file. The library piece is include/proxytask/workflow/latency_calculator.hpp.
//
//   proxytask-latency-calculator RUN_DIR [--once] [--poll-interval S] [--batch-size N]
//       [--runs N] [--blas-threads T] [--device-name TEXT] [--quiet]
//
// The model timed is the one the trial trains: MODEL_SPEC.json's "parameters" (hidden widths,
// activation; dropout is off at inference), with the trial's proxy arguments applied the way the
// reference trainer applies them (reference::read_options): --model_scale scales the widths
// (trainer::scale_widths), --downsample=1 makes 196 inputs instead of 784. The proxy arguments
// are read from the executor's record of the launch (LOCAL_TRIAL.json of the local-process
// executor, RUN_DIR/in_process_executor.json of the in-process one); a run directory without such
// a record (trials launched by another system) is timed unscaled at 784 inputs. A model-scaled
// proxy is therefore timed at its scale: that is the latency the proxy task reports, to be
// correlated with the full model's (the seed: "use a tighter latency constraint for the
// scaled-down model"). Weights are random (latency does not depend on them) and the input is
// random; each measurement is the median (the upper one for an even count) of --runs timed
// forward passes of --batch-size images, after 10 untimed ones, on steady_clock, in milliseconds.
// A spec the trainer would refuse (a width out of range, an unknown activation, a bad proxy
// argument) gives a failed measurement (latency null) whose message names the file and field.
//
// How the model-selection tool uses it: when latency is required, the tool waits for each
// trial's measured_latency (the executors read MODEL_LATENCY.json into
// trial_status::measured_latency, which tools prefer to the trainer's own reported latency),
// with a timeout after which the trial counts as invalid; a failed measurement (null) makes the
// trial invalid at once. Start this program next to the controller, on the latency device, with
// the same RUN_DIR (the seed's run_latency_calculator_local with --controller_job_id).
//
// Exit status: 0 done (--once) or stopped by SIGINT / SIGTERM (the normal end of a watcher),
// 1 an error (the run directory cannot be read, a file cannot be written), 2 a usage error.

#include <proxytask/core/error.hpp>
#include <proxytask/protocol/latency.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/trainer/basic_mlp_trainer.hpp>
#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/mlp.hpp>
#include <proxytask/trainer/reference_program.hpp>
#include <proxytask/trainer/search_space.hpp>
#include <proxytask/workflow/latency_calculator.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace pt = proxytask;
namespace tr = proxytask::trainer;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;

constexpr std::size_t input_features = 784;        // 28x28 Fashion-MNIST images
constexpr std::size_t downsampled_features = 196;  // 14x14 (--downsample=1)
constexpr std::size_t classes = 10;
constexpr int warmup_runs = 10;

constexpr char const usage[] =
    R"(usage: proxytask-latency-calculator RUN_DIR [options]

Watches RUN_DIR/trials/*/ and, for each trial with a MODEL_SPEC.json and no
MODEL_LATENCY.json, times the inference of the trial's model (the reference
trainer's MLP, with the trial's model_scale and downsample proxy arguments
applied, random weights) on this machine's CPU and writes the trial's
MODEL_LATENCY.json: {"latency": ms or null, "message", "device",
"measured_unix_s"}. A model that cannot be built gives a failed measurement
(latency null) with its reason. It writes no other file, so it can run next to
the controller, on the device whose latency matters.

Options:
  --once                  one pass over the trials there now, then exit
  --poll-interval S       seconds between passes (default 5)
  --batch-size N          images per timed forward pass (default 1)
  --runs N                timed forward passes; the latency is their median
                          (default 200)
  --blas-threads T        OpenBLAS threads (default 1)
  --device-name TEXT      the "device" written into each file (default: this
                          host's name and the settings)
  --quiet                 no line per measured trial (errors still print)
  -h, --help              print this help and exit

Exit status: 0 done (--once) or stopped by SIGINT / SIGTERM, 1 an error,
2 a usage error.
)";

struct usage_error {
  std::string message;
};
struct help_requested {};

struct settings {
  fs::path run_dir;
  bool once = false;
  double poll_interval_s = 5;
  std::size_t batch_size = 1;
  int runs = 200;
  int blas_threads = 1;
  std::optional<std::string> device_name;
  bool quiet = false;
};

template <class T>
std::optional<T> parse_value(std::string_view text) {
  T value{};
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::variant<settings, usage_error, help_requested> parse_arguments(int argc, char** argv) {
  settings s;
  std::optional<fs::path> run_dir;
  for (int i = 1; i < argc; ++i) {
    std::string_view const arg = argv[i];
    if (arg == "-h" || arg == "--help") return help_requested{};
    if (!arg.starts_with("-")) {
      if (run_dir) return usage_error{"unexpected argument '" + std::string(arg) + "'"};
      run_dir = fs::path(arg);
      continue;
    }
    if (arg == "--once") {
      s.once = true;
      continue;
    }
    if (arg == "--quiet") {
      s.quiet = true;
      continue;
    }
    std::string_view name = arg, value;
    auto const eq = arg.find('=');
    if (eq != std::string_view::npos) name = arg.substr(0, eq);
    if (name != "--poll-interval" && name != "--batch-size" && name != "--runs" &&
        name != "--blas-threads" && name != "--device-name")
      return usage_error{"unknown option " + std::string(name)};
    if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc) return usage_error{"option " + std::string(name) + " needs a value"};
      value = argv[++i];
    }
    auto bad = [&](char const* expected) {
      return usage_error{"option " + std::string(name) + ": '" + std::string(value) + "' is not " +
                         expected};
    };
    if (name == "--poll-interval") {
      auto const d = parse_value<double>(value);
      if (!d || !std::isfinite(*d) || *d < 0) return bad("a number of seconds >= 0");
      s.poll_interval_s = *d;
    } else if (name == "--batch-size") {
      auto const n = parse_value<std::size_t>(value);
      if (!n || *n == 0 || *n > 65536) return bad("a count in 1..65536");
      s.batch_size = *n;
    } else if (name == "--runs") {
      auto const n = parse_value<int>(value);
      if (!n || *n < 1 || *n > 1000000) return bad("a count in 1..1000000");
      s.runs = *n;
    } else if (name == "--blas-threads") {
      auto const n = parse_value<int>(value);
      if (!n || *n < 1 || *n > 1024) return bad("a count in 1..1024");
      s.blas_threads = *n;
    } else if (name == "--device-name") {
      if (value.empty()) return bad("a name");
      s.device_name = std::string(value);
    }
  }
  if (!run_dir) return usage_error{"which run directory?"};
  s.run_dir = *run_dir;
  return s;
}

/// "cpu on <host>: OpenBLAS, 1 thread, batch 1, median of 200 runs".
std::string default_device_name(settings const& s) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string("cpu") + (host[0] ? std::string(" on ") + host : std::string()) +
         ": OpenBLAS, " + std::to_string(s.blas_threads) +
         (s.blas_threads == 1 ? " thread" : " threads") + ", batch " +
         std::to_string(s.batch_size) + ", median of " + std::to_string(s.runs) + " runs";
}

/// The model the trial trains: its spec with the trial's proxy arguments applied as the
/// reference trainer applies them, and its input width.
struct timed_model {
  tr::mlp_spec spec;
  std::size_t features = input_features;
};

pt::result<timed_model> model_of(wf::latency_request const& r) {
  auto const source = (r.trial_dir / pt::protocol::model_spec_file_name).string();
  auto spec = tr::mlp_spec_from_model_spec(r.spec, source);
  if (!spec) return spec.error();
  timed_model m{std::move(*spec), input_features};
  if (r.launch) {
    pt::protocol::launch_arguments args;
    args.model_dir = r.trial_dir;
    for (auto const& [k, v] : r.launch->proxy_args) args.proxy_args.emplace(k, v);
    auto const options = tr::reference::read_options(args);
    if (!options)
      return pt::make_error(options.error().code,
                            "the trial's proxy arguments: " + options.error().context);
    m.spec = tr::scale_widths(std::move(m.spec), options->model_scale);
    if (options->downsample) m.features = downsampled_features;
  }
  return m;
}

/// Times `runs` forward passes of `batch` random images through a randomly initialised model;
/// the median (the upper one for an even count), in milliseconds.
double time_inference(timed_model const& m, std::size_t batch, int runs) {
  tr::training_config config;
  config.total_steps = 1;
  config.seed = 0;
  tr::mlp_trainer t(m.spec, m.features, config, classes);
  std::vector<float> images(batch * m.features);
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  for (float& x : images) {  // values in [0, 1), as the trainer's scaled pixels
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    x = static_cast<float>(state >> 40) * 0x1p-24f;
  }
  std::vector<float> logits(batch * classes);
  std::span<float const> const in(images);
  std::span<float> const out(logits);
  for (int i = 0; i < warmup_runs; ++i) t.infer(in, out);  // warm caches and workspace
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(runs));
  for (int i = 0; i < runs; ++i) {
    auto const start = std::chrono::steady_clock::now();
    t.infer(in, out);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  auto const mid = ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2);
  std::nth_element(ms.begin(), mid, ms.end());
  return *mid;
}

/// Set by the SIGINT / SIGTERM handler.
volatile std::sig_atomic_t stop_signalled = 0;
extern "C" void on_stop_signal(int) { stop_signalled = 1; }

int run(settings const& s) {
  tr::set_blas_threads(s.blas_threads);
  wf::latency_calculator_options options;
  options.poll_interval_s = s.poll_interval_s;
  options.device = s.device_name ? *s.device_name : default_device_name(s);
  options.on_written = [&](std::string const& id, pt::protocol::model_latency const& m) {
    if (s.quiet) return;
    if (m.ok()) {
      char text[64];
      std::snprintf(text, sizeof text, "%.6g", m.latency_ms);
      std::cout << id << ": " << text << " ms\n" << std::flush;
    } else {
      std::cout << id << ": failed: " << m.message << '\n' << std::flush;
    }
  };
  std::size_t const batch = s.batch_size;
  int const runs = s.runs;
  wf::latency_calculator calc(
      s.run_dir,
      [batch, runs](wf::latency_request const& r) -> pt::result<double> {
        auto const m = model_of(r);
        if (!m) return m.error();
        return time_inference(*m, batch, runs);
      },
      options);

  // SIGINT / SIGTERM end the watcher between two measurements: the handler sets a flag, and a
  // thread turns it into a stop request (a handler cannot request a stop itself safely).
  struct sigaction sa {};
  sa.sa_handler = &on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::stop_source stop;
  std::jthread watcher([&stop](std::stop_token self) {
    while (!self.stop_requested()) {
      if (stop_signalled) {
        stop.request_stop();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  if (s.once) {
    auto const pass = calc.run_once(stop.get_token());
    if (!pass) {
      std::cerr << "proxytask-latency-calculator: " << pass.error().message() << '\n';
      return exit_error;
    }
    if (!s.quiet)
      std::cout << "measured " << pass->measured.size() << ", failed " << pass->failed.size()
                << (pass->waiting.empty()
                        ? std::string()
                        : ", still waiting " + std::to_string(pass->waiting.size()))
                << '\n';
    return exit_ok;
  }
  if (!s.quiet)
    std::cout << "watching " << (s.run_dir / pt::exec::trials_directory_name).string()
              << " (Ctrl-C to stop)\n"
              << std::flush;
  auto const done = calc.run(stop.get_token());
  if (!done) {
    std::cerr << "proxytask-latency-calculator: " << done.error().message() << '\n';
    return exit_error;
  }
  if (!s.quiet) std::cout << "stopped\n";
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  auto const parsed = parse_arguments(argc, argv);
  if (std::holds_alternative<help_requested>(parsed)) {
    std::cout << usage;
    return exit_ok;
  }
  if (auto const* e = std::get_if<usage_error>(&parsed)) {
    std::cerr << "proxytask-latency-calculator: " << e->message << "\n\n" << usage;
    return exit_usage;
  }
  try {
    return run(std::get<settings>(parsed));
  } catch (std::exception const& e) {
    std::cerr << "proxytask-latency-calculator: " << e.what() << '\n';
    return exit_error;
  }
}
