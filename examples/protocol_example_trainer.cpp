// proxytask-protocol-example-trainer: a trainer that speaks the trial file protocol, for demos
// and for the cross-process (and cross-language) protocol tests. It "trains" a synthetic model:
// the accuracy after step s of N is a smooth increasing function of s/N plus seeded noise.
//
//   proxytask-protocol-example-trainer --model_dir=D [--model_spec=F] [--seed=N]
//       [--total_steps=N (1000)] [--cycle_steps=K (100)] [--step_seconds=S (0)]
//       [--fail=oom|diverged] [--heartbeat_threshold_secs=T (900)]
//
// The launch flags (and PROXYTASK_* variables) are parsed with protocol::parse_launch; the
// others arrive as its proxy arguments. Each cycle sleeps step_seconds per step (so tests can
// race a running trainer), reports its accuracy and training time, then asks should_stop. The
// LAST line on stdout is exactly "stopped: <reason>" (a stop_reason, or "completed" after the
// last step). With --fail, the first cycle records that failure in TRIAL_FAILURE.json and the
// program exits 3. If MODEL_SPEC.json has a numeric parameter "final_accuracy", the curve tends
// to it (default 0.9).
// Exit status: 0 stopped or completed, 1 an I/O or file error, 2 a usage error, 3 a failure
// recorded in TRIAL_FAILURE.json.

#include <proxytask/core/error.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/protocol/trainer.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

namespace {

constexpr int exit_stopped = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_failure_recorded = 3;

struct trainer_options {
  std::int64_t total_steps = 1000;
  std::int64_t cycle_steps = 100;
  double step_seconds = 0.0;
  std::optional<protocol::failure_kind> fail;
  double heartbeat_threshold_secs = 900.0;
};

/// The example's own options, from the launch's proxy arguments; an error message on bad input.
pt::result<trainer_options> read_options(protocol::launch_arguments const& args) {
  trainer_options o;
  auto bad = [](std::string const& name, std::string const& value, char const* expected) {
    return pt::make_error(pt::errc::invalid_argument,
                          "--" + name + "=" + value + ": expected " + expected);
  };
  for (auto const& [name, value] : args.proxy_args) {
    if (name == "total_steps" || name == "cycle_steps") {
      auto const n = protocol::parse_number<std::int64_t>(value);
      if (!n || *n <= 0) return bad(name, value, "a positive integer");
      (name == "total_steps" ? o.total_steps : o.cycle_steps) = *n;
    } else if (name == "step_seconds" || name == "heartbeat_threshold_secs") {
      auto const d = protocol::parse_number<double>(value);
      if (!d || !std::isfinite(*d) || *d < 0) return bad(name, value, "a number >= 0");
      (name == "step_seconds" ? o.step_seconds : o.heartbeat_threshold_secs) = *d;
    } else if (name == "fail") {
      auto const kind = protocol::parse_failure_kind(value);
      if (kind != protocol::failure_kind::oom && kind != protocol::failure_kind::diverged)
        return bad(name, value, "oom or diverged");
      o.fail = kind;
    } else {
      std::cerr << "ignoring the unknown argument --" << name << "\n";
    }
  }
  return o;
}

/// A uniform draw in [-1, 1) from (seed, step): SplitMix64's finaliser, so the noise depends
/// only on the seed and the step, not on how the training was cut into cycles or resumed.
double noise(std::uint64_t seed, std::int64_t step) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(step) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1p-52 - 1.0;
}

/// The synthetic validation accuracy after `steps_done` of `total_steps` steps.
double synthetic_accuracy(double final_accuracy, std::uint64_t seed, std::int64_t steps_done,
                          std::int64_t total_steps) {
  double const progress = static_cast<double>(steps_done) / static_cast<double>(total_steps);
  double const curve = final_accuracy * (1.0 - std::exp(-4.0 * progress)) / (1.0 - std::exp(-4.0));
  return std::clamp(curve + 0.005 * noise(seed, steps_done), 0.0, 1.0);
}

/// The final accuracy the model tends to: the spec's "final_accuracy" parameter, or 0.9.
pt::result<double> final_accuracy_of(protocol::launch_arguments const& args) {
  auto const spec = protocol::read_model_spec(args.model_spec);
  if (!spec) {
    if (spec.error().code != pt::errc::not_found) return spec.error();
    std::cerr << "no model spec at " << args.model_spec.string() << "; using the defaults\n";
    return 0.9;
  }
  if (auto const* v = spec->parameters.if_contains("final_accuracy")) {
    auto const d = pt::read_json_double(
        *v, pt::json_location(args.model_spec.string()) / "parameters" / "final_accuracy");
    if (!d) return d.error();
    return *d;
  }
  return 0.9;
}

int stop(std::string_view reason) {
  std::cout << "stopped: " << reason << std::endl;
  return exit_stopped;
}

int run(int argc, char const* const* argv) {
  auto const args = protocol::parse_launch(argc, argv);
  if (!args) {
    std::cerr << "protocol-example-trainer: " << args.error().message() << "\n";
    return exit_usage;
  }
  auto const options = read_options(*args);
  if (!options) {
    std::cerr << "protocol-example-trainer: " << options.error().message() << "\n";
    return exit_usage;
  }
  auto const final_accuracy = final_accuracy_of(*args);
  if (!final_accuracy) {
    std::cerr << "protocol-example-trainer: " << final_accuracy.error().message() << "\n";
    return exit_error;
  }
  auto reporter = protocol::trial_reporter::open(
      args->model_dir, {.heartbeat_threshold_secs = options->heartbeat_threshold_secs});
  if (!reporter) {
    std::cerr << "protocol-example-trainer: " << reporter.error().message() << "\n";
    return exit_error;
  }
  auto fail = [](pt::error const& e) {
    std::cerr << "protocol-example-trainer: " << e.message() << "\n";
    return exit_error;
  };

  std::int64_t const total = options->total_steps;
  // A resumed trial continues after the steps its metrics file already records.
  std::int64_t const first = reporter->metrics().time.total_training_steps;
  // The controller may have said "stop" (a desired pct of 0, say) before the first cycle.
  auto reason = reporter->should_stop(first - 1, total);
  if (!reason) return fail(reason.error());
  if (*reason != protocol::stop_reason::keep_going) return stop(protocol::to_string(*reason));

  for (std::int64_t begin = first; begin < total; begin += options->cycle_steps) {
    std::int64_t const end = std::min(begin + options->cycle_steps, total) - 1;
    auto const started = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(
        options->step_seconds * static_cast<double>(end - begin + 1)));
    double const seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    if (options->fail) {
      protocol::trial_failure const failure{*options->fail,
                                            *options->fail == protocol::failure_kind::oom
                                                ? "synthetic out-of-memory (--fail=oom)"
                                                : "synthetic NaN loss (--fail=diverged)",
                                            end};
      if (auto const written = reporter->report_failure(failure); !written)
        return fail(written.error());
      std::cerr << "failed: " << protocol::to_string(*options->fail) << "\n";
      return exit_failure_recorded;
    }

    double const accuracy = synthetic_accuracy(*final_accuracy, args->seed, end + 1, total);
    if (auto const recorded = reporter->report_accuracy(begin, end, seconds, total, accuracy);
        !recorded)
      return fail(recorded.error());
    std::cout << "cycle " << begin << ".." << end << " pct "
              << protocol::training_step_pct(end, total) << " accuracy " << accuracy << "\n";

    reason = reporter->should_stop(end, total);
    if (!reason) return fail(reason.error());
    if (*reason != protocol::stop_reason::keep_going) return stop(protocol::to_string(*reason));
  }
  return stop("completed");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (std::exception const& e) {
    std::cerr << "protocol-example-trainer: " << e.what() << "\n";
    return exit_error;
  }
}
