#pragma once
/// @file
/// The reference trainer's program (DESIGN.md "Reference trainer"), shared by its two builds
/// (examples/reference_trainer.cpp is the CPU build's main and documents the program;
/// examples/reference_trainer/reference_trainer_cuda.cu is the CUDA build's) and by the
/// in-process executor (run_in_process: the same program as a C++ callable trainer): the
/// options, the data, and the training loop, written once as a template over the back-end
/// (basic_mlp_trainer, basic_training_set), so that the CPU and the GPU train, check, evaluate,
/// checkpoint and time a model through the same code. It writes to the streams of its
/// program_io (a process: std::cout and std::cerr; in-process: the trial's stdout.txt and
/// stderr.txt) and stops at the end of a cycle once its stop token is requested.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/backend.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/trainer.hpp>
#include <proxytask/trainer/basic_mlp_trainer.hpp>
#include <proxytask/trainer/checkpoint.hpp>
#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/fashion_mnist.hpp>
#include <proxytask/trainer/mlp.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <ostream>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::trainer::reference {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;
namespace tr = proxytask::trainer;
namespace fs = std::filesystem;

constexpr int exit_stopped = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_failure_recorded = 3;

/// Where the program writes, and when it must stop early.
struct program_io {
  std::ostream& out;  ///< progress lines; the last one is "stopped: <reason>"
  std::ostream& err;  ///< errors and warnings
  /// In-process cancellation (exec::in_process_executor): the training stops at the end of the
  /// cycle (after its checkpoint) and the program prints "stopped: cancelled".
  std::stop_token stop = {};
};

/// printf-style formatting into a stream (the program's messages keep their C formats).
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
inline void
print(std::ostream& to, char const* format, ...) {
  char small[512];
  va_list args;
  va_start(args, format);
  va_list again;
  va_copy(again, args);
  int const n = std::vsnprintf(small, sizeof small, format, args);
  va_end(args);
  if (n < 0) {
    va_end(again);
    return;
  }
  if (static_cast<std::size_t>(n) < sizeof small) {
    to.write(small, n);
  } else {
    std::string big(static_cast<std::size_t>(n) + 1, '\0');
    std::vsnprintf(big.data(), big.size(), format, again);
    to.write(big.data(), n);
  }
  va_end(again);
}

/// The checkpoint in a trial directory (the trainer's own file, not part of the protocol).
constexpr std::string_view checkpoint_file_name = "CHECKPOINT.bin";

/// The latency measurement: medians of this many timed runs, after a few untimed ones.
constexpr int latency_runs_batch_1 = 200;
constexpr int latency_runs_batch_256 = 50;
constexpr std::size_t latency_large_batch = 256;

/// The usage after "usage: <program> " (the program name comes first).
constexpr char const* usage_text =
    R"(--model_dir=D [--model_spec=F] [--seed=N]
           [--resume_from=P] [--<knob>=<value> ...]

Trains one MLP of the search space on Fashion-MNIST and speaks the trial file protocol
(TRIAL_TRAINING_METRICS.json, DESIRED_TRAINING_PCT.json, MAX_TRAINING_TIME.json, heartbeat,
TRIAL_FAILURE.json). MODEL_SPEC.json's "parameters" name the model; when the file is missing,
the model sample_mlp(seed) is written there. Accuracy is measured on a fixed 10,000-image
validation split of the training set.

Launch flags (also PROXYTASK_MODEL_DIR, PROXYTASK_MODEL_SPEC, PROXYTASK_SEED,
PROXYTASK_RESUME_FROM, PROXYTASK_PROXY_ARGS):
  --model_dir=D        the trial directory (required)
  --model_spec=F       the model spec (D/MODEL_SPEC.json)
  --seed=N             initialisation, data order, dropout, data subsample (0)
  --resume_from=P      start from P/CHECKPOINT.bin (and P's metrics) when D has no checkpoint

Proxy knobs and training arguments (defaults in parentheses):
  --data_pct=P         % of the training split used, class-balanced, seeded (100)
  --model_scale=S      every hidden width times S, rounded, at least 8 (1.0)
  --downsample=0|1     28x28 -> 14x14 images (0)
  --epochs=E           passes over the training subset, a real number > 0 such as 2.5: the
                       run's steps are max(1, round(E x steps per epoch)) (10)
  --total_steps=N      optimizer steps instead of --epochs (not both); the cosine schedule
                       spans the run's steps (from --epochs)
  --batch_size=B       (256)
  --optimizer=adam|sgd (adam; sgd is SGD with momentum)
  --learning_rate=R    peak learning rate (1e-3)
  --momentum=M         SGD's momentum (0.9)
  --weight_decay=W     (0)
  --clip_norm=C        global gradient-norm clipping, 0 = off (0)
  --ema_decay=E        EMA of the weights for validation and inference, 0 = off (0)
  --warmup_fraction=F  linear warmup over this fraction of the steps (0)
  --eval_every=K       steps per cycle (validation, metrics point, checkpoint) (half an epoch)
  --max_loss=L         a batch loss above L is divergence, 0 = only NaN/inf (1e4)
  --blas_threads=T     OpenBLAS threads (CPU back-end); 1 is bitwise reproducible (1)
  --device=D           cpu, cuda or auto: the back-end that trains and times the model. auto
                       is cuda when this is the CUDA build (proxytask-reference-trainer-cuda)
                       and a CUDA device is present, else cpu; cuda needs the CUDA build (auto)
  --final_test=0|1     also evaluate the 10,000 test images at the end (0)
  --data_dir=DIR       Fashion-MNIST's IDX files ($PROXYTASK_FASHION_MNIST_DIR, else
                       /usr/share/datasets/fashion-mnist)

The last line on stdout is "stopped: <reason>" (completed, desired_pct_reached,
time_limit_reached, controller_lost). Exit status: 0 stopped, 1 I/O, file or data error,
2 usage error, 3 failure recorded in TRIAL_FAILURE.json (diverged, oom).
)";

/// The epochs of a run given neither --epochs nor --total_steps.
constexpr double default_epochs = 10.0;

/// --epochs' upper bound: any data and batch then give fewer steps than --total_steps' bound.
constexpr double max_epochs = 1e6;

/// --device: which back-end trains.
enum class device_choice { cpu, cuda, automatic };

/// The trainer's own arguments (the launch's proxy arguments), with their defaults.
struct trainer_options {
  double data_pct = 100.0;
  double model_scale = 1.0;
  bool downsample = false;
  std::optional<double> epochs;             ///< default: default_epochs (without total_steps)
  std::optional<std::int64_t> total_steps;  ///< default: from epochs
  std::int64_t batch_size = 256;
  tr::training_config::optimizer opt = tr::training_config::optimizer::adam;
  double learning_rate = 1e-3;
  double momentum = 0.9;
  double weight_decay = 0.0;
  double clip_norm = 0.0;
  double ema_decay = 0.0;
  double warmup_fraction = 0.0;
  std::optional<std::int64_t> eval_every;  ///< default: half an epoch
  double max_loss = 1e4;                   ///< 0: only a NaN or infinite loss is divergence
  std::int64_t blas_threads = 1;
  device_choice device = device_choice::automatic;
  bool final_test = false;
  std::optional<fs::path> data_dir;
};

/// The trainer's options from the launch's proxy arguments, or a usage error naming the argument.
inline pt::result<trainer_options> read_options(protocol::launch_arguments const& args) {
  trainer_options o;
  auto bad = [](std::string const& name, std::string const& value, char const* expected) {
    return pt::make_error(pt::errc::invalid_argument,
                          "--" + name + "=" + value + ": expected " + expected);
  };
  // A double within [lo, hi] (open at the ends the flags say).
  auto real = [&](std::string const& name, std::string const& value, double& into, double lo,
                  double hi, bool lo_open, bool hi_open,
                  char const* expected) -> std::optional<pt::error> {
    auto const d = protocol::parse_number<double>(value);
    if (!d || !std::isfinite(*d) || (lo_open ? *d <= lo : *d < lo) ||
        (hi_open ? *d >= hi : *d > hi))
      return bad(name, value, expected);
    into = *d;
    return std::nullopt;
  };
  auto integer = [&](std::string const& name, std::string const& value, std::int64_t hi,
                     std::int64_t& into) -> std::optional<pt::error> {
    auto const n = protocol::parse_number<std::int64_t>(value);
    if (!n || *n < 1 || *n > hi)
      return bad(name, value, ("an integer in 1.." + std::to_string(hi)).c_str());
    into = *n;
    return std::nullopt;
  };
  auto flag = [&](std::string const& name, std::string const& value,
                  bool& into) -> std::optional<pt::error> {
    if (value == "1" || value == "true") {
      into = true;
    } else if (value == "0" || value == "false") {
      into = false;
    } else {
      return bad(name, value, "0 or 1");
    }
    return std::nullopt;
  };
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr std::int64_t max_steps = std::int64_t{1} << 40;
  for (auto const& [name, value] : args.proxy_args) {
    std::optional<pt::error> e;
    if (name == "data_pct") {
      e = real(name, value, o.data_pct, 0, 100, true, false, "a number in (0, 100]");
    } else if (name == "model_scale") {
      e = real(name, value, o.model_scale, 0, inf, true, true, "a number > 0");
    } else if (name == "downsample") {
      e = flag(name, value, o.downsample);
    } else if (name == "epochs") {
      double epochs = 0.0;
      e = real(name, value, epochs, 0, max_epochs, true, false, "a number > 0 (at most 1e6)");
      o.epochs = epochs;
    } else if (name == "total_steps") {
      std::int64_t n = 0;
      e = integer(name, value, max_steps, n);
      o.total_steps = n;
    } else if (name == "batch_size") {
      e = integer(name, value, 1 << 16, o.batch_size);
    } else if (name == "optimizer") {
      if (value == "adam")
        o.opt = tr::training_config::optimizer::adam;
      else if (value == "sgd")
        o.opt = tr::training_config::optimizer::sgd_momentum;
      else
        e = bad(name, value, "adam or sgd");
    } else if (name == "learning_rate") {
      e = real(name, value, o.learning_rate, 0, inf, false, true, "a number >= 0");
    } else if (name == "momentum") {
      e = real(name, value, o.momentum, 0, 1, false, true, "a number in [0, 1)");
    } else if (name == "weight_decay") {
      e = real(name, value, o.weight_decay, 0, inf, false, true, "a number >= 0");
    } else if (name == "clip_norm") {
      e = real(name, value, o.clip_norm, 0, inf, false, true, "a number >= 0 (0 = off)");
    } else if (name == "ema_decay") {
      e = real(name, value, o.ema_decay, 0, 1, false, true, "a number in [0, 1) (0 = off)");
    } else if (name == "warmup_fraction") {
      e = real(name, value, o.warmup_fraction, 0, 1, false, false, "a number in [0, 1]");
    } else if (name == "eval_every") {
      std::int64_t n = 0;
      e = integer(name, value, max_steps, n);
      o.eval_every = n;
    } else if (name == "max_loss") {
      e = real(name, value, o.max_loss, 0, inf, false, true, "a number >= 0 (0 = off)");
    } else if (name == "blas_threads") {
      e = integer(name, value, 1024, o.blas_threads);
    } else if (name == "device") {
      if (value == "cpu")
        o.device = device_choice::cpu;
      else if (value == "cuda")
        o.device = device_choice::cuda;
      else if (value == "auto")
        o.device = device_choice::automatic;
      else
        e = bad(name, value, "cpu, cuda or auto");
    } else if (name == "final_test") {
      e = flag(name, value, o.final_test);
    } else if (name == "data_dir") {
      if (value.empty()) e = bad(name, value, "a directory");
      o.data_dir = fs::path(value);
    } else {
      e = pt::make_error(pt::errc::invalid_argument,
                         "unknown argument --" + name + " (see --help)");
    }
    if (e) return *e;
  }
  // Both would define the run's length: a proxy must not silently train something else.
  if (o.epochs && o.total_steps)
    return pt::make_error(pt::errc::invalid_argument,
                          "--total_steps=" + args.proxy_args.find("total_steps")->second +
                              " and --epochs=" + args.proxy_args.find("epochs")->second +
                              ": give one of them, not both");
  return o;
}

/// The run's optimizer steps: --total_steps when given, else max(1, round(E x steps_per_epoch))
/// for E = --epochs (default_epochs when not given).
/// @param[in] steps_per_epoch ceil(training images / batch size), at least 1
inline std::int64_t total_steps_of(trainer_options const& o, std::int64_t steps_per_epoch) {
  if (o.total_steps) return *o.total_steps;
  // A length in epochs rather than steps: a proxy with less data (data_pct) then trains the same
  // number of epochs in proportionally fewer steps, and a full training can be set to fewer
  // epochs than 10 (the end-to-end demo uses epochs=5 so that its whole workflow fits in
  // minutes). max_epochs keeps the product far below int64's range.
  double const steps =
      std::round(o.epochs.value_or(default_epochs) * static_cast<double>(steps_per_epoch));
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(steps));
}

/// The model to train: MODEL_SPEC.json's parameters, or the seed's model written there.
inline pt::result<tr::mlp_spec> read_or_sample_model(protocol::launch_arguments const& args,
                                                     program_io& io) {
  auto const file = protocol::read_model_spec(args.model_spec);
  if (file) return tr::mlp_spec_from_model_spec(*file, args.model_spec.string());
  if (file.error().code != pt::errc::not_found) return file.error();
  tr::mlp_spec const sampled = tr::sample_mlp(args.seed);
  std::error_code ec;
  if (args.model_spec.has_parent_path()) fs::create_directories(args.model_spec.parent_path(), ec);
  auto const written =
      pt::write_json_file(args.model_spec, boost::json::value_from(tr::to_model_spec(sampled)));
  if (!written) return written.error();
  print(io.out, "no model spec at %s: trained the seed's model %s and wrote it there\n",
        args.model_spec.string().c_str(), tr::mlp_model_id(sampled).c_str());
  return sampled;
}

/// The data of a run: the training subset, the validation split and (for --final_test) the
/// test set, each downsampled when asked.
struct run_data {
  tr::image_set train, validation, test;
};

inline pt::result<run_data> load_data(trainer_options const& o, std::uint64_t seed) {
  auto loaded = tr::load_fashion_mnist(o.data_dir.value_or(tr::default_fashion_mnist_dir()));
  if (!loaded) return loaded.error();
  auto split = tr::split_validation(loaded->train);
  run_data d;
  d.train = tr::subsample(split.train, o.data_pct, seed);
  d.validation = std::move(split.validation);
  if (o.final_test) d.test = std::move(loaded->test);
  if (o.downsample) {
    d.train = tr::downsample_2x(d.train);
    d.validation = tr::downsample_2x(d.validation);
    if (o.final_test) d.test = tr::downsample_2x(d.test);
  }
  return d;
}

/// Copies a file atomically (the metrics of --resume_from into the trial directory).
inline pt::result<void> copy_atomically(fs::path const& from, fs::path const& to) {
  auto const bytes = pt::read_file(from);
  if (!bytes) return bytes.error();
  return pt::write_file_atomically(to, *bytes);
}

/// The median (the upper one for an even count) of `runs` timed forward passes over `rows`
/// images, in milliseconds.
/// The median (the upper one for an even count) of `runs` timed forward passes over the first
/// `rows` images of `images`, in milliseconds, on the back-end's clock (the CPU: steady_clock
/// around the call; CUDA: events around the kernels on the stream, input and output on the
/// device).
template <class Backend>
double inference_latency_ms(tr::basic_mlp_trainer<Backend>& t,
                            tr::basic_training_set<Backend> const& images, std::size_t rows,
                            int runs) {
  rows = std::min(rows, images.size());
  auto const input = images.images().first(rows * images.features());
  auto& context = t.context();
  typename tr::basic_mlp_trainer<Backend>::template buffer<float> logits;
  context.resize(logits, rows * t.layout().classes());
  if (!t.status()) return std::numeric_limits<double>::quiet_NaN();
  auto const out = context.view(logits);
  for (int i = 0; i < 10; ++i) t.infer(input, out);  // warm caches and workspace
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(runs));
  for (int i = 0; i < runs; ++i) ms.push_back(context.elapsed_ms([&] { t.infer(input, out); }));
  auto const mid = ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2);
  std::nth_element(ms.begin(), mid, ms.end());
  return *mid;
}

inline int fail_with(program_io& io, pt::error const& e) {
  print(io.err, "reference-trainer: %s\n", e.message().c_str());
  return exit_error;
}

/// Records a failure in TRIAL_FAILURE.json and returns exit status 3.
inline int record_failure(program_io& io, fs::path const& model_dir,
                          protocol::trial_failure const& failure) {
  auto const written = pt::write_json_file(model_dir / protocol::trial_failure_file_name,
                                           boost::json::value_from(failure));
  if (!written)
    print(io.err, "reference-trainer: cannot record the failure: %s\n",
          written.error().message().c_str());
  print(io.err, "failed: %s: %s\n", std::string(protocol::to_string(failure.kind)).c_str(),
        failure.message.c_str());
  return exit_failure_recorded;
}

/// A back-end's error: device out of memory is the trial's failure (oom, exit 3), as
/// std::bad_alloc on the CPU; anything else (no device, a file) exits 1.
inline int failure_of(program_io& io, fs::path const& model_dir, pt::error const& e) {
  if (e.code == pt::errc::resource_exhausted)
    return record_failure(io, model_dir, {protocol::failure_kind::oom, e.message(), {}});
  return fail_with(io, e);
}

/// Trains (or continues) the trial on the back-end `policy`; returns the exit status. One code
/// path for every back-end: the training set and the validation (and test) images live where
/// the back-end computes (basic_training_set), and the losses are checked as soon as reading
/// them is free (the CPU: every step, stopping at the first bad one) or once per cycle (CUDA:
/// one sync; a diverged step halts the trainer where it is, so the same step is reported).
/// @param[in] described how the back-end is described in the output ("1 BLAS thread(s)")
template <class Backend>
int train(Backend policy, protocol::launch_arguments const& args, trainer_options const& o,
          std::string const& described, program_io& io) {
  using context = tr::backend_context<Backend>;

  auto const file_spec = read_or_sample_model(args, io);
  if (!file_spec) return fail_with(io, file_spec.error());
  tr::mlp_spec const spec = tr::scale_widths(*file_spec, o.model_scale);

  auto data = load_data(o, args.seed);
  if (!data) return fail_with(io, data.error());
  std::size_t const features = data->train.features;
  std::size_t const n_train = data->train.size();
  auto const batch = static_cast<std::size_t>(o.batch_size);
  auto const steps_per_epoch = static_cast<std::int64_t>((n_train + batch - 1) / batch);
  std::int64_t const total = total_steps_of(o, steps_per_epoch);
  std::int64_t const cycle =
      o.eval_every.value_or(std::max<std::int64_t>(1, (steps_per_epoch + 1) / 2));

  tr::training_config const config{.batch_size = batch,
                                   .total_steps = total,
                                   .learning_rate = o.learning_rate,
                                   .opt = o.opt,
                                   .momentum = o.momentum,
                                   .weight_decay = o.weight_decay,
                                   .clip_norm = o.clip_norm,
                                   .ema_decay = o.ema_decay,
                                   .warmup_fraction = o.warmup_fraction,
                                   .seed = args.seed};

  // Where to start: this trial's checkpoint, else --resume_from's (with its metrics).
  fs::path const checkpoint = args.model_dir / checkpoint_file_name;
  std::error_code ec;
  fs::create_directories(args.model_dir, ec);
  if (ec) return fail_with(io, pt::make_error(ec, "cannot create " + args.model_dir.string()));
  std::optional<fs::path> resume_path;
  bool from_previous_trial = false;
  if (fs::exists(checkpoint, ec)) {
    resume_path = checkpoint;
  } else if (args.resume_from) {
    fs::path const previous = *args.resume_from / checkpoint_file_name;
    if (fs::exists(previous, ec)) {
      resume_path = previous;
      from_previous_trial = true;
    } else {
      print(io.err, "reference-trainer: %s has no %s: training from scratch\n",
            args.resume_from->string().c_str(), std::string(checkpoint_file_name).c_str());
    }
  }

  std::optional<tr::basic_mlp_trainer<Backend>> trainer;
  if (resume_path) {
    auto resumed = tr::resume_trainer(*resume_path, spec, features, config, 10, policy);
    if (!resumed) return failure_of(io, args.model_dir, resumed.error());
    trainer.emplace(std::move(*resumed));
  } else {
    auto created = tr::basic_mlp_trainer<Backend>::create(spec, features, config, 10, policy);
    if (!created) return failure_of(io, args.model_dir, created.error());
    trainer.emplace(std::move(*created));
  }
  tr::basic_mlp_trainer<Backend>& t = *trainer;

  // The images where the back-end computes (the CPU: views of data's arrays).
  auto train_set = tr::basic_training_set<Backend>::create(policy, features, data->train.images,
                                                           data->train.labels);
  if (!train_set) return failure_of(io, args.model_dir, train_set.error());
  auto validation = tr::basic_training_set<Backend>::create(
      policy, features, data->validation.images, data->validation.labels);
  if (!validation) return failure_of(io, args.model_dir, validation.error());

  // The previous trial's curve goes first (only once its checkpoint has proved usable), so this
  // trial's metrics continue it; the reporter then opens the copy.
  if (from_previous_trial) {
    fs::path const metrics_from = *args.resume_from / protocol::training_metrics_file_name;
    fs::path const metrics_to = args.model_dir / protocol::training_metrics_file_name;
    if (fs::exists(metrics_from, ec) && !fs::exists(metrics_to, ec))
      if (auto const copied = copy_atomically(metrics_from, metrics_to); !copied)
        return fail_with(io, copied.error());
  }
  auto reporter = protocol::trial_reporter::open(args.model_dir);
  if (!reporter) return fail_with(io, reporter.error());

  print(io.out,
        "model %s: %zu parameters; %zu training images (%g%%), %zu validation, %zu features\n"
        "%lld steps of batch %zu (%lld per epoch), cycles of %lld; %s, learning rate %g; "
        "%s\n",
        tr::mlp_model_id(spec).c_str(), t.layout().parameter_count(), n_train, o.data_pct,
        data->validation.size(), features, static_cast<long long>(total), batch,
        static_cast<long long>(steps_per_epoch), static_cast<long long>(cycle),
        o.opt == tr::training_config::optimizer::adam ? "adam" : "sgd", o.learning_rate,
        described.c_str());
  if (resume_path)
    print(io.out, "resumed from %s at step %lld\n", resume_path->string().c_str(),
          static_cast<long long>(t.step()));
  io.out.flush();

  std::int64_t const first = std::min(t.step(), total);
  std::optional<protocol::stop_reason> stopped;  // nullopt: train to the end ("completed")
  double session_seconds = 0.0;
  std::int64_t session_steps = 0;
  if (first < total) {
    // The controller may have said "stop" (a desired pct of 0, say) before the first cycle.
    auto const before = reporter->should_stop(first - 1, total);
    if (!before) return fail_with(io, before.error());
    if (*before != protocol::stop_reason::keep_going) stopped = *before;
  }

  std::int64_t order_epoch = -1;
  for (std::int64_t begin = first; !stopped && begin < total; begin += cycle) {
    std::int64_t const end = std::min(begin + cycle, total) - 1;
    double loss_sum = 0.0;
    auto const started = std::chrono::steady_clock::now();
    for (std::int64_t s = begin; s <= end; ++s) {
      // The batch of step s depends on s alone, so a resumed run draws the same batches.
      std::int64_t const epoch = s / steps_per_epoch;
      if (epoch != order_epoch) {
        train_set->set_order(
            tr::epoch_order(n_train, args.seed, static_cast<std::uint64_t>(epoch)));
        order_epoch = epoch;
      }
      std::size_t const offset = static_cast<std::size_t>(s % steps_per_epoch) * batch;
      auto const b = train_set->batch(offset, std::min(batch, n_train - offset));
      t.enqueue_step(b.images, b.labels);
      if (context::defers_losses && s != end) continue;
      // The losses of steps s + 1 - losses.size() .. s (one on the CPU, the cycle's on a GPU).
      auto const losses = t.take_losses();
      if (!losses) return failure_of(io, args.model_dir, losses.error());
      std::int64_t const first_step = s + 1 - static_cast<std::int64_t>(losses->size());
      for (std::size_t i = 0; i < losses->size(); ++i) {
        float const loss = (*losses)[i];
        std::int64_t const step = first_step + static_cast<std::int64_t>(i);
        if (!std::isfinite(loss) || (o.max_loss > 0 && loss > o.max_loss)) {
          char what[160];
          std::snprintf(what, sizeof what,
                        "the training loss at step %lld is %g%s (peak learning rate %g)",
                        static_cast<long long>(step), static_cast<double>(loss),
                        std::isfinite(loss) ? ", above --max_loss" : "", o.learning_rate);
          return record_failure(io, args.model_dir, {protocol::failure_kind::diverged, what, step});
        }
        loss_sum += static_cast<double>(loss);
      }
    }
    double const seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    session_seconds += seconds;
    session_steps += end - begin + 1;

    double const accuracy = t.evaluate(validation->images(), validation->labels());
    if (auto const ok = t.status(); !ok) return failure_of(io, args.model_dir, ok.error());
    auto const recorded = reporter->report_accuracy(begin, end, seconds, total, accuracy);
    if (!recorded) return fail_with(io, recorded.error());
    if (auto const saved = tr::save_checkpoint(checkpoint, t); !saved)
      return fail_with(io, saved.error());
    print(io.out, "steps %lld..%lld pct %.2f loss %.4f validation accuracy %.4f (%.3f s)\n",
          static_cast<long long>(begin), static_cast<long long>(end),
          protocol::training_step_pct(end, total), loss_sum / static_cast<double>(end - begin + 1),
          accuracy, seconds);
    io.out.flush();

    if (end + 1 == total) break;  // every step trained: "completed", whatever the signals say
    if (io.stop.stop_requested()) {
      print(io.out, "stopped: cancelled\n");
      io.out.flush();
      return exit_stopped;
    }
    auto const after = reporter->should_stop(end, total);
    if (!after) return fail_with(io, after.error());
    if (*after != protocol::stop_reason::keep_going) stopped = *after;
  }

  if (session_steps > 0)
    print(
        io.out, "trained %lld steps in %.3f s: %.3f s per epoch of %zu images\n",
        static_cast<long long>(session_steps), session_seconds,
        session_seconds * static_cast<double>(steps_per_epoch) / static_cast<double>(session_steps),
        n_train);

  // The latency of the model as trained so far (also on a graceful stop).
  double const latency_1 = inference_latency_ms(t, *validation, 1, latency_runs_batch_1);
  double const latency_256 =
      inference_latency_ms(t, *validation, latency_large_batch, latency_runs_batch_256);
  if (auto const ok = t.status(); !ok) return failure_of(io, args.model_dir, ok.error());
  if (auto const reported = reporter->report_latency(latency_1); !reported)
    return fail_with(io, reported.error());
  print(io.out,
        "latency: batch 1 %.4f ms (median of %d), batch %zu %.4f ms (median of %d), "
        "%s\n",
        latency_1, latency_runs_batch_1, std::min(latency_large_batch, data->validation.size()),
        latency_256, latency_runs_batch_256, described.c_str());

  if (o.final_test) {
    auto test = tr::basic_training_set<Backend>::create(policy, features, data->test.images,
                                                        data->test.labels);
    if (!test) return failure_of(io, args.model_dir, test.error());
    double const accuracy = t.evaluate(test->images(), test->labels());
    if (auto const ok = t.status(); !ok) return failure_of(io, args.model_dir, ok.error());
    print(io.out, "test accuracy %.4f (%zu test images)\n", accuracy, data->test.size());
  }
  print(io.out, "stopped: %s\n",
        stopped ? std::string(protocol::to_string(*stopped)).c_str() : "completed");
  io.out.flush();
  return exit_stopped;
}
/// "N BLAS thread(s)", how the CPU back-end is described in the output.
inline std::string cpu_description() {
  if (!tr::has_blas) return "no BLAS (portable loops)";
  return std::to_string(tr::blas_threads()) + " BLAS thread(s)";
}

/// Trains on the CPU back-end, with --blas_threads OpenBLAS threads.
inline int train_on_cpu(protocol::launch_arguments const& args, trainer_options const& o,
                        program_io& io) {
  tr::set_blas_threads(static_cast<int>(o.blas_threads));
  return train(pt::backend::cpu, args, o, cpu_description(), io);
}

/// Trains after parse_launch (the options from the launch's proxy arguments), catching
/// std::bad_alloc as the trial's oom failure; returns the exit status.
template <class Dispatch>
int dispatch_launch(protocol::launch_arguments const& args, program_io& io, Dispatch&& dispatch) {
  auto const options = read_options(args);
  if (!options) {
    print(io.err, "reference-trainer: %s\n", options.error().message().c_str());
    return exit_usage;
  }
  try {
    return dispatch(args, *options, io);
  } catch (std::bad_alloc const&) {
    // The unwinding has freed the training's memory: there is room to write the record.
    return record_failure(io, args.model_dir,
                          {protocol::failure_kind::oom, "out of memory (std::bad_alloc)", {}});
  }
}

/// The reference trainer as an in-process trainer (exec::in_process_executor), on the CPU
/// back-end: the same program as the process, given its launch arguments, writing to io and
/// stopping when io.stop is requested. Trials that run side by side in one process share
/// OpenBLAS's thread count (process-wide): leave --blas_threads at 1.
inline int run_launch(protocol::launch_arguments const& args, program_io& io) {
  return dispatch_launch(
      args, io,
      [](protocol::launch_arguments const& a, trainer_options const& o, program_io& out) -> int {
        if (o.device == device_choice::cuda) {
          print(out.err,
                "reference-trainer: --device=cuda: the in-process reference "
                "trainer runs on the CPU\n");
          return exit_usage;
        }
        return train_on_cpu(a, o, out);
      });
}

/// The program: --help, the launch, the options, then dispatch(args, options, io) trains on the
/// back-end the build and --device choose; returns the exit status.
template <class Dispatch>
int run(int argc, char const* const* argv, char const* program, program_io& io,
        Dispatch&& dispatch) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      print(io.out, "usage: %s ", program);
      io.out << usage_text;
      return exit_stopped;
    }
  auto const args = protocol::parse_launch(argc, argv);
  if (!args) {
    print(io.err, "reference-trainer: %s (see --help)\n", args.error().message().c_str());
    return exit_usage;
  }
  return dispatch_launch(*args, io, std::forward<Dispatch>(dispatch));
}

}  // namespace proxytask::trainer::reference
