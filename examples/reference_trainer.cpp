// proxytask-reference-trainer: the reference trainer (DESIGN.md "Reference trainer"). It trains
// one multilayer perceptron of the search space (trainer/search_space.hpp) on Fashion-MNIST with
// the CPU back-end (OpenBLAS) and speaks the trial file protocol, so every proxytask tool can
// drive it as a child process.
//
//   proxytask-reference-trainer --model_dir=D [--model_spec=F] [--seed=N] [--resume_from=P]
//       [--<knob>=<value> ...]        (or the PROXYTASK_* variables: protocol/launch.hpp)
//   proxytask-reference-trainer --help
//
// Proxy knobs and training arguments (all optional; every one is a --name=value proxy argument):
//   --data_pct=P         % of the training split used, class-balanced, seeded (100)
//   --model_scale=S      every hidden width times S, rounded, at least 8 (1.0)
//   --downsample=0|1     28x28 -> 14x14 images by 2x2 means (0)
//   --total_steps=N      optimizer steps of the whole run; the cosine schedule spans them
//                        (10 epochs of the training subset at the batch size)
//   --batch_size=B       (256)
//   --optimizer=adam|sgd adam, or SGD with momentum (adam)
//   --learning_rate=R    the peak learning rate (1e-3)
//   --momentum=M         SGD's momentum (0.9)
//   --weight_decay=W     decoupled for Adam, L2 for SGD; weights only (0)
//   --clip_norm=C        global gradient-norm clipping, 0 = off (0)
//   --ema_decay=E        EMA of the weights, used for validation and inference, 0 = off (0)
//   --warmup_fraction=F  linear warmup over this fraction of total_steps (0)
//   --eval_every=K       steps per training cycle: each cycle ends with a validation
//                        accuracy, a metrics point and a checkpoint (half an epoch, rounded up)
//   --max_loss=L         a batch loss above L counts as divergence, 0 = only NaN/inf (1e4)
//   --blas_threads=T     OpenBLAS threads; 1 is bitwise reproducible (1)
//   --final_test=0|1     at the end, also evaluate the 10,000 test images and print it (0)
//   --data_dir=DIR       the Fashion-MNIST IDX files ($PROXYTASK_FASHION_MNIST_DIR, else
//                        /usr/share/datasets/fashion-mnist)
// An unknown argument is a usage error: a misspelt knob must not silently train another proxy.
//
// The model: MODEL_SPEC.json's "parameters" ({"hidden": [...], "activation": ..., "dropout": ...});
// when the file does not exist, the model the seed names (sample_mlp(seed)) is written there, so
// the trial directory documents what was trained. The data: the 60,000 training images minus a
// fixed, seed-independent 10,000-image validation split; the proxy's accuracy is measured on that
// split, never on the test set; data_pct then subsamples the rest with the seed.
//
// Training runs in cycles of eval_every steps. Each cycle is timed (training only), then the
// validation accuracy is recorded in TRIAL_TRAINING_METRICS.json, the whole training state is
// saved atomically to CHECKPOINT.bin in the trial directory, and the controller's signals are
// read (DESIRED_TRAINING_PCT.json, MAX_TRAINING_TIME.json, the heartbeat), also once before the
// first cycle (a posted 0 stops it before any training). Resuming: a trial directory holding a
// CHECKPOINT.bin continues from it; otherwise --resume_from=P with a P/CHECKPOINT.bin starts from
// that one, after copying P's TRIAL_TRAINING_METRICS.json, so the curve continues (model
// selection continuing a model's training). With --blas_threads=1 a resumed run gives the same
// bits as an uninterrupted one. After training stops, batch-1 inference is timed (the median of
// 200 runs, in milliseconds) and recorded as the trial's latency; batch-1 and batch-256 latencies
// are printed. The LAST line on stdout is exactly "stopped: <reason>": a protocol stop_reason, or
// "completed" once every step is trained.
// A NaN or infinite loss, or one above max_loss, records TRIAL_FAILURE.json {"kind": "diverged"};
// running out of memory records {"kind": "oom"}; both exit 3. (max_loss: a run whose weights
// blew up often keeps a finite loss, its ReLUs dead and its logits huge: a learning rate of 1e6
// gives losses of 1e13 to 1e31 and chance accuracy, never a NaN. A healthy run's mean
// cross-entropy stays near log(10) = 2.3; the initial loss of any model is below 100.)
// Exit status: 0 stopped or completed, 1 an I/O, file or data error (missing Fashion-MNIST, a
// malformed MODEL_SPEC.json, a checkpoint of another model or config), 2 a usage error, 3 a
// failure recorded in TRIAL_FAILURE.json.
//
// The documented full run: 784-256-10 ReLU, 15 epochs (2940 steps = 15 x 196) of Adam at a peak
// learning rate of 2e-3 with an EMA of 0.999, batch 256, on the 50,000 training images:
//   mkdir -p /tmp/rt1 && echo '{"model_id": "mlp-256-relu-d0", "parameters": {"hidden": [256],
//     "activation": "relu", "dropout": 0}}' > /tmp/rt1/MODEL_SPEC.json
//   proxytask-reference-trainer --model_dir=/tmp/rt1 --seed=1 --final_test=1 --blas_threads=2
//       --total_steps=2940 --learning_rate=2e-3 --ema_decay=0.999
// gave a validation accuracy of 0.8422 after the first half epoch, 0.8921 at 50%, 0.8975 at the
// end, and a test accuracy of 0.8883, in 14.7 s wall (12.4 s of training, 0.83 s per epoch; a
// shared 2-core AMD EPYC machine, OpenBLAS pthread, RelWithDebInfo). Batch-1 latency 0.011 ms,
// batch 256 0.81 ms. (10 epochs, --total_steps left at its default, reach 0.8824.)

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/trainer.hpp>
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
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace pt = proxytask;
namespace protocol = proxytask::protocol;
namespace tr = proxytask::trainer;
namespace fs = std::filesystem;

namespace {

constexpr int exit_stopped = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_failure_recorded = 3;

/// The checkpoint in a trial directory (the trainer's own file, not part of the protocol).
constexpr std::string_view checkpoint_file_name = "CHECKPOINT.bin";

/// The latency measurement: medians of this many timed runs, after a few untimed ones.
constexpr int latency_runs_batch_1 = 200;
constexpr int latency_runs_batch_256 = 50;
constexpr std::size_t latency_large_batch = 256;

constexpr char const* usage_text =
    R"(usage: proxytask-reference-trainer --model_dir=D [--model_spec=F] [--seed=N]
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
  --total_steps=N      optimizer steps; the cosine schedule spans them (10 epochs)
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
  --blas_threads=T     OpenBLAS threads; 1 is bitwise reproducible (1)
  --final_test=0|1     also evaluate the 10,000 test images at the end (0)
  --data_dir=DIR       Fashion-MNIST's IDX files ($PROXYTASK_FASHION_MNIST_DIR, else
                       /usr/share/datasets/fashion-mnist)

The last line on stdout is "stopped: <reason>" (completed, desired_pct_reached,
time_limit_reached, controller_lost). Exit status: 0 stopped, 1 I/O, file or data error,
2 usage error, 3 failure recorded in TRIAL_FAILURE.json (diverged, oom).
)";

/// The trainer's own arguments (the launch's proxy arguments), with their defaults.
struct trainer_options {
  double data_pct = 100.0;
  double model_scale = 1.0;
  bool downsample = false;
  std::optional<std::int64_t> total_steps;  ///< default: 10 epochs
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
  bool final_test = false;
  std::optional<fs::path> data_dir;
};

/// The trainer's options from the launch's proxy arguments, or a usage error naming the argument.
pt::result<trainer_options> read_options(protocol::launch_arguments const& args) {
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
  return o;
}

/// The model to train: MODEL_SPEC.json's parameters, or the seed's model written there.
pt::result<tr::mlp_spec> read_or_sample_model(protocol::launch_arguments const& args) {
  auto const file = protocol::read_model_spec(args.model_spec);
  if (file) return tr::mlp_spec_from_model_spec(*file, args.model_spec.string());
  if (file.error().code != pt::errc::not_found) return file.error();
  tr::mlp_spec const sampled = tr::sample_mlp(args.seed);
  std::error_code ec;
  if (args.model_spec.has_parent_path()) fs::create_directories(args.model_spec.parent_path(), ec);
  auto const written =
      pt::write_json_file(args.model_spec, boost::json::value_from(tr::to_model_spec(sampled)));
  if (!written) return written.error();
  std::printf("no model spec at %s: trained the seed's model %s and wrote it there\n",
              args.model_spec.string().c_str(), tr::mlp_model_id(sampled).c_str());
  return sampled;
}

/// The data of a run: the training subset, the validation split and (for --final_test) the
/// test set, each downsampled when asked.
struct run_data {
  tr::image_set train, validation, test;
};

pt::result<run_data> load_data(trainer_options const& o, std::uint64_t seed) {
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
pt::result<void> copy_atomically(fs::path const& from, fs::path const& to) {
  auto const bytes = pt::read_file(from);
  if (!bytes) return bytes.error();
  return pt::write_file_atomically(to, *bytes);
}

/// The median (the upper one for an even count) of `runs` timed forward passes over `rows`
/// images, in milliseconds.
double inference_latency_ms(tr::mlp_trainer& t, tr::image_set const& images, std::size_t rows,
                            int runs) {
  rows = std::min(rows, images.size());
  std::span<float const> const input(images.images.data(), rows * images.features);
  std::vector<float> logits(rows * t.layout().classes());
  for (int i = 0; i < 10; ++i) t.infer(input, logits);  // warm caches and workspace
  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(runs));
  for (int i = 0; i < runs; ++i) {
    auto const start = std::chrono::steady_clock::now();
    t.infer(input, logits);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  auto const mid = ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2);
  std::nth_element(ms.begin(), mid, ms.end());
  return *mid;
}

int fail_with(pt::error const& e) {
  std::fprintf(stderr, "reference-trainer: %s\n", e.message().c_str());
  return exit_error;
}

/// Records a failure in TRIAL_FAILURE.json and returns exit status 3.
int record_failure(fs::path const& model_dir, protocol::trial_failure const& failure) {
  auto const written = pt::write_json_file(model_dir / protocol::trial_failure_file_name,
                                           boost::json::value_from(failure));
  if (!written)
    std::fprintf(stderr, "reference-trainer: cannot record the failure: %s\n",
                 written.error().message().c_str());
  std::fprintf(stderr, "failed: %s: %s\n", std::string(protocol::to_string(failure.kind)).c_str(),
               failure.message.c_str());
  return exit_failure_recorded;
}

/// Trains (or continues) the trial; returns the exit status.
int train(protocol::launch_arguments const& args, trainer_options const& o) {
  tr::set_blas_threads(static_cast<int>(o.blas_threads));

  auto const file_spec = read_or_sample_model(args);
  if (!file_spec) return fail_with(file_spec.error());
  tr::mlp_spec const spec = tr::scale_widths(*file_spec, o.model_scale);

  auto data = load_data(o, args.seed);
  if (!data) return fail_with(data.error());
  std::size_t const features = data->train.features;
  std::size_t const n_train = data->train.size();
  auto const batch = static_cast<std::size_t>(o.batch_size);
  auto const steps_per_epoch = static_cast<std::int64_t>((n_train + batch - 1) / batch);
  std::int64_t const total = o.total_steps.value_or(10 * steps_per_epoch);
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
  if (ec) return fail_with(pt::make_error(ec, "cannot create " + args.model_dir.string()));
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
      std::fprintf(stderr, "reference-trainer: %s has no %s: training from scratch\n",
                   args.resume_from->string().c_str(), std::string(checkpoint_file_name).c_str());
    }
  }

  std::optional<tr::mlp_trainer> trainer;
  if (resume_path) {
    auto resumed = tr::resume_trainer(*resume_path, spec, features, config);
    if (!resumed) return fail_with(resumed.error());
    trainer.emplace(std::move(*resumed));
  } else {
    trainer.emplace(spec, features, config);
  }
  tr::mlp_trainer& t = *trainer;

  // The previous trial's curve goes first (only once its checkpoint has proved usable), so this
  // trial's metrics continue it; the reporter then opens the copy.
  if (from_previous_trial) {
    fs::path const metrics_from = *args.resume_from / protocol::training_metrics_file_name;
    fs::path const metrics_to = args.model_dir / protocol::training_metrics_file_name;
    if (fs::exists(metrics_from, ec) && !fs::exists(metrics_to, ec))
      if (auto const copied = copy_atomically(metrics_from, metrics_to); !copied)
        return fail_with(copied.error());
  }
  auto reporter = protocol::trial_reporter::open(args.model_dir);
  if (!reporter) return fail_with(reporter.error());

  std::printf(
      "model %s: %zu parameters; %zu training images (%g%%), %zu validation, %zu features\n"
      "%lld steps of batch %zu (%lld per epoch), cycles of %lld; %s, learning rate %g; "
      "%d BLAS thread(s)\n",
      tr::mlp_model_id(spec).c_str(), t.layout().parameter_count(), n_train, o.data_pct,
      data->validation.size(), features, static_cast<long long>(total), batch,
      static_cast<long long>(steps_per_epoch), static_cast<long long>(cycle),
      o.opt == tr::training_config::optimizer::adam ? "adam" : "sgd", o.learning_rate,
      tr::blas_threads());
  if (resume_path)
    std::printf("resumed from %s at step %lld\n", resume_path->string().c_str(),
                static_cast<long long>(t.step()));
  std::fflush(stdout);

  std::int64_t const first = std::min(t.step(), total);
  std::optional<protocol::stop_reason> stopped;  // nullopt: train to the end ("completed")
  double session_seconds = 0.0;
  std::int64_t session_steps = 0;
  if (first < total) {
    // The controller may have said "stop" (a desired pct of 0, say) before the first cycle.
    auto const before = reporter->should_stop(first - 1, total);
    if (!before) return fail_with(before.error());
    if (*before != protocol::stop_reason::keep_going) stopped = *before;
  }

  std::vector<float> batch_images(batch * features);
  std::vector<std::uint8_t> batch_labels(batch);
  std::vector<std::uint32_t> order;
  std::int64_t order_epoch = -1;
  for (std::int64_t begin = first; !stopped && begin < total; begin += cycle) {
    std::int64_t const end = std::min(begin + cycle, total) - 1;
    double loss_sum = 0.0;
    auto const started = std::chrono::steady_clock::now();
    for (std::int64_t s = begin; s <= end; ++s) {
      // The batch of step s depends on s alone, so a resumed run draws the same batches.
      std::int64_t const epoch = s / steps_per_epoch;
      if (epoch != order_epoch) {
        order = tr::epoch_order(n_train, args.seed, static_cast<std::uint64_t>(epoch));
        order_epoch = epoch;
      }
      std::size_t const offset = static_cast<std::size_t>(s % steps_per_epoch) * batch;
      std::size_t const rows = std::min(batch, n_train - offset);
      std::span<float> const images = std::span<float>(batch_images).first(rows * features);
      std::span<std::uint8_t> const labels = std::span<std::uint8_t>(batch_labels).first(rows);
      tr::gather_batch(features, data->train.images, data->train.labels,
                       std::span<std::uint32_t const>(order).subspan(offset, rows), images, labels);
      float const loss = t.train_step(images, labels);
      if (!std::isfinite(loss) || (o.max_loss > 0 && loss > o.max_loss)) {
        char what[160];
        std::snprintf(what, sizeof what,
                      "the training loss at step %lld is %g%s (peak learning rate %g)",
                      static_cast<long long>(s), static_cast<double>(loss),
                      std::isfinite(loss) ? ", above --max_loss" : "", o.learning_rate);
        return record_failure(args.model_dir, {protocol::failure_kind::diverged, what, s});
      }
      loss_sum += static_cast<double>(loss);
    }
    double const seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    session_seconds += seconds;
    session_steps += end - begin + 1;

    double const accuracy = t.evaluate(data->validation);
    auto const recorded = reporter->report_accuracy(begin, end, seconds, total, accuracy);
    if (!recorded) return fail_with(recorded.error());
    if (auto const saved = tr::save_checkpoint(checkpoint, t); !saved)
      return fail_with(saved.error());
    std::printf("steps %lld..%lld pct %.2f loss %.4f validation accuracy %.4f (%.3f s)\n",
                static_cast<long long>(begin), static_cast<long long>(end),
                protocol::training_step_pct(end, total),
                loss_sum / static_cast<double>(end - begin + 1), accuracy, seconds);
    std::fflush(stdout);

    if (end + 1 == total) break;  // every step trained: "completed", whatever the signals say
    auto const after = reporter->should_stop(end, total);
    if (!after) return fail_with(after.error());
    if (*after != protocol::stop_reason::keep_going) stopped = *after;
  }

  if (session_steps > 0)
    std::printf(
        "trained %lld steps in %.3f s: %.3f s per epoch of %zu images\n",
        static_cast<long long>(session_steps), session_seconds,
        session_seconds * static_cast<double>(steps_per_epoch) / static_cast<double>(session_steps),
        n_train);

  // The latency of the model as trained so far (also on a graceful stop).
  double const latency_1 = inference_latency_ms(t, data->validation, 1, latency_runs_batch_1);
  double const latency_256 =
      inference_latency_ms(t, data->validation, latency_large_batch, latency_runs_batch_256);
  if (auto const reported = reporter->report_latency(latency_1); !reported)
    return fail_with(reported.error());
  std::printf(
      "latency: batch 1 %.4f ms (median of %d), batch %zu %.4f ms (median of %d), "
      "%d BLAS thread(s)\n",
      latency_1, latency_runs_batch_1, std::min(latency_large_batch, data->validation.size()),
      latency_256, latency_runs_batch_256, tr::blas_threads());

  if (o.final_test)
    std::printf("test accuracy %.4f (%zu test images)\n", t.evaluate(data->test),
                data->test.size());
  std::printf("stopped: %s\n",
              stopped ? std::string(protocol::to_string(*stopped)).c_str() : "completed");
  std::fflush(stdout);
  return exit_stopped;
}

int run(int argc, char const* const* argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
      std::fputs(usage_text, stdout);
      return exit_stopped;
    }
  auto const args = protocol::parse_launch(argc, argv);
  if (!args) {
    std::fprintf(stderr, "reference-trainer: %s (see --help)\n", args.error().message().c_str());
    return exit_usage;
  }
  auto const options = read_options(*args);
  if (!options) {
    std::fprintf(stderr, "reference-trainer: %s\n", options.error().message().c_str());
    return exit_usage;
  }
  try {
    return train(*args, *options);
  } catch (std::bad_alloc const&) {
    // The unwinding has freed the training's memory: there is room to write the record.
    return record_failure(args->model_dir,
                          {protocol::failure_kind::oom, "out of memory (std::bad_alloc)", {}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "reference-trainer: %s\n", e.what());
    return exit_error;
  }
}
