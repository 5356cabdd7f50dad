// proxytask-reference-trainer (examples/reference_trainer.cpp) as a controller sees it: run as a
// child process on a trial directory, driven through the protocol's files only. The training
// cases use the real Fashion-MNIST files and skip themselves when Debian's
// dataset-fashion-mnist is not installed; they train a 784-32-10 MLP on 5% of the data for 200
// steps (cycles of 50) with one BLAS thread, so each run takes well under a second (the --epochs
// cases train a few epochs of the same 5%, 10 steps each, or of 10% at batch 100).

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/launch.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/trainer.hpp>
#include <proxytask/trainer/checkpoint.hpp>
#include <proxytask/trainer/fashion_mnist.hpp>
#include <proxytask/trainer/search_space.hpp>

#include <support/child_process.hpp>
#include <support/temp_dir.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;
namespace tr = proxytask::trainer;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// What a finished trainer left: exit status and outputs.
struct finished {
  int status;
  std::string out, err;
};

/// The tiny run's knobs (every case that trains uses them, plus its own).
std::map<std::string, std::string> tiny_run() {
  return {{"data_pct", "5"},
          {"total_steps", "200"},
          {"eval_every", "50"},
          {"blas_threads", "1"},
          {"data_dir", tr::default_fashion_mnist_dir().string()}};
}

/// The tiny run measured in epochs rather than steps (one cycle: a single validation).
std::map<std::string, std::string> tiny_epochs_run(std::string const& epochs) {
  auto args = tiny_run();
  args.erase("total_steps");
  args["epochs"] = epochs;
  args["eval_every"] = "100000";
  return args;
}

/// The size of a run as its first lines print it: "<n> training images" and
/// "<total> steps of batch <b> (<k> per epoch)"; -1 where not printed.
struct printed_size {
  std::int64_t training_images = -1, total_steps = -1, batch = -1, steps_per_epoch = -1;
};

printed_size size_of_run(std::string const& out) {
  printed_size p;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"((\d+) training images)")))
    p.training_images = std::stoll(m[1]);
  if (std::regex_search(out, m, std::regex(R"((\d+) steps of batch (\d+) \((\d+) per epoch\))"))) {
    p.total_steps = std::stoll(m[1]);
    p.batch = std::stoll(m[2]);
    p.steps_per_epoch = std::stoll(m[3]);
  }
  return p;
}

/// The 1-layer, 32-wide ReLU MLP the training cases train.
protocol::model_spec tiny_model() {
  return tr::to_model_spec(tr::mlp_spec{{32}, tr::activation::relu, 0.0});
}

#define SKIP_WITHOUT_FASHION_MNIST()                                               \
  if (!fs::is_directory(tr::default_fashion_mnist_dir()))                          \
  GTEST_SKIP() << "Fashion-MNIST not found at " << tr::default_fashion_mnist_dir() \
               << ": install the Debian package dataset-fashion-mnist or set "     \
                  "PROXYTASK_FASHION_MNIST_DIR"

class ReferenceTrainer : public ::testing::Test {
 protected:
  /// A trial directory under the test's temporary directory.
  fs::path trial(std::string const& name) {
    fs::path const d = dir_.path() / name;
    fs::create_directories(d);
    return d;
  }

  /// Runs the trainer on `model_dir` with the launch flags and `proxy_args` (and, when given,
  /// --resume_from) and waits for it (a minute at most).
  finished run(fs::path const& model_dir, std::map<std::string, std::string> proxy_args,
               std::optional<fs::path> resume_from = std::nullopt) {
    protocol::launch_arguments args;
    args.model_dir = model_dir;
    args.seed = 3;
    args.resume_from = std::move(resume_from);
    args.proxy_args.insert(proxy_args.begin(), proxy_args.end());
    std::vector<std::string> const program{PROXYTASK_REFERENCE_TRAINER};
    return run_argv(protocol::make_launch_command(program, args).value().argv);
  }

  finished run_argv(std::vector<std::string> const& argv) {
    fs::path const out = dir_.path() / "stdout.txt", err = dir_.path() / "stderr.txt";
    pt::testing::child_process child(argv, out, err);
    auto const status = child.wait(60s);
    EXPECT_TRUE(status) << "the trainer did not end within a minute";
    auto const o = pt::read_file(out);
    auto const e = pt::read_file(err);
    return {status.value_or(-1), o ? *o : "", e ? *e : ""};
  }

  /// The accuracies of a trial's recorded points.
  static std::vector<double> accuracies(fs::path const& model_dir) {
    std::vector<double> out;
    for (auto const& p : protocol::read_metrics(model_dir).value().points)
      out.push_back(p.accuracy);
    return out;
  }

  pt::testing::temp_dir dir_;
};

// --- without the data -------------------------------------------------------------------------

TEST_F(ReferenceTrainer, PrintsItsUsageWithHelp) {
  auto const r = run_argv({PROXYTASK_REFERENCE_TRAINER, "--help"});
  EXPECT_EQ(r.status, 0) << r.err;
  for (char const* knob : {"--data_pct", "--model_scale", "--downsample", "--total_steps",
                           "--eval_every", "--final_test", "--resume_from"})
    EXPECT_NE(r.out.find(knob), std::string::npos) << knob << "\n" << r.out;
}

TEST_F(ReferenceTrainer, RejectsBadAndUnknownArgumentsWithExitTwo) {
  fs::path const t = trial("t");
  auto const bad = run(t, {{"data_pct", "0"}});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--data_pct=0"), std::string::npos) << bad.err;
  auto const unknown = run(t, {{"data_pc", "5"}});  // a misspelt knob
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("unknown argument --data_pc"), std::string::npos) << unknown.err;
  auto const no_dir = run_argv({PROXYTASK_REFERENCE_TRAINER, "--seed=1"});
  EXPECT_EQ(no_dir.status, 2);
  EXPECT_NE(no_dir.err.find("--model_dir"), std::string::npos) << no_dir.err;
}

TEST_F(ReferenceTrainer, RejectsEpochsTogetherWithTotalSteps) {
  // Either defines the run's length: taking one silently would train another proxy.
  fs::path const t = trial("t");
  auto args = tiny_epochs_run("2.5");
  args["total_steps"] = "200";
  auto const r = run(t, args);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.err.find("--total_steps=200"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--epochs=2.5"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not both"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / protocol::training_metrics_file_name));
}

TEST_F(ReferenceTrainer, RejectsEpochsThatAreNotAPositiveNumber) {
  fs::path const t = trial("t");
  for (char const* epochs : {"0", "-1", "-0.5", "two", "", "nan", "inf", "2e6"}) {
    auto const r = run(t, tiny_epochs_run(epochs));
    EXPECT_EQ(r.status, 2) << epochs << "\n" << r.out;
    EXPECT_NE(r.err.find("--epochs=" + std::string(epochs) + ": expected a number > 0"),
              std::string::npos)
        << r.err;
  }
  EXPECT_FALSE(fs::exists(t / protocol::training_metrics_file_name));
}

TEST_F(ReferenceTrainer, HelpDocumentsEpochsAndItsDefault) {
  auto const r = run_argv({PROXYTASK_REFERENCE_TRAINER, "--help"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("--epochs=E"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max(1, round(E x steps per epoch))"), std::string::npos) << r.out;
}

TEST_F(ReferenceTrainer, NamesTheMissingDataAndExitsOne) {
  fs::path const t = trial("t");
  ASSERT_TRUE(protocol::post_model_spec(t, tiny_model()));
  auto args = tiny_run();
  args["data_dir"] = (dir_.path() / "absent").string();
  auto const r = run(t, args);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("absent"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dataset-fashion-mnist"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / protocol::trial_failure_file_name));  // an error, not a trial failure
}

TEST_F(ReferenceTrainer, NamesTheFileAndPointerOfAMalformedModelSpec) {
  fs::path const t = trial("t");
  ASSERT_TRUE(pt::write_file_atomically(t / "MODEL_SPEC.json",
                                        R"({"model_id": "m",
          "parameters": {"hidden": [32, -4], "activation": "relu", "dropout": 0}})"));
  auto const r = run(t, tiny_run());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("MODEL_SPEC.json#/parameters/hidden/1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(t / protocol::training_metrics_file_name));
}

// --- with the data ----------------------------------------------------------------------------

TEST_F(ReferenceTrainer, TinyRunWritesMetricsACheckpointAndTheLatency) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const t = trial("t");
  ASSERT_TRUE(protocol::post_model_spec(t, tiny_model()));
  auto const r = run(t, tiny_run());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(pt::testing::last_line(r.out), "stopped: completed") << r.out;

  auto const m = protocol::read_metrics(t).value();
  ASSERT_EQ(m.points.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(m.points[i].training_step_pct, 25.0 * static_cast<double>(i + 1));
    EXPECT_EQ(m.points[i].training_step, 50 * static_cast<std::int64_t>(i + 1) - 1);
    EXPECT_GT(m.points[i].accuracy, 0.6) << "chance is 0.1";  // about 0.75 to 0.8
    EXPECT_LE(m.points[i].accuracy, 1.0);
  }
  EXPECT_EQ(m.time.total_training_steps, 200);
  EXPECT_GT(m.time.total_training_time_in_secs, 0.0);
  EXPECT_GT(m.latency, 0.0);  // milliseconds of one batch-1 forward pass
  EXPECT_LT(m.latency, 100.0);

  auto const c = tr::load_checkpoint(t / "CHECKPOINT.bin").value();
  EXPECT_EQ(c.state.step, 200);
  EXPECT_EQ(c.spec.hidden, std::vector<std::size_t>{32});
  EXPECT_EQ(c.features, 784u);
  EXPECT_EQ(protocol::read_failure(t).error().code, pt::errc::not_found);
}

TEST_F(ReferenceTrainer, TrainsTheRoundedStepsOfItsEpochs) {
  // 5% of the training split at batch 256: about 10 steps per epoch, so 2.5 epochs are about 25.
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const t = trial("t");
  ASSERT_TRUE(protocol::post_model_spec(t, tiny_model()));
  auto const r = run(t, tiny_epochs_run("2.5"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(pt::testing::last_line(r.out), "stopped: completed") << r.out;
  auto const size = size_of_run(r.out);
  ASSERT_GT(size.training_images, 0) << r.out;
  EXPECT_EQ(size.batch, 256) << r.out;
  EXPECT_EQ(size.steps_per_epoch, (size.training_images + 255) / 256) << r.out;
  std::int64_t const expected = std::llround(2.5 * static_cast<double>(size.steps_per_epoch));
  EXPECT_EQ(size.total_steps, expected) << r.out;

  auto const m = protocol::read_metrics(t).value();
  EXPECT_EQ(m.time.total_training_steps, expected);
  ASSERT_EQ(m.points.size(), 1u);  // one cycle of every step
  EXPECT_EQ(m.points[0].training_step, expected - 1);
  EXPECT_EQ(m.points[0].training_step_pct, 100.0);
  EXPECT_EQ(tr::load_checkpoint(t / "CHECKPOINT.bin").value().state.step, expected);
}

TEST_F(ReferenceTrainer, TrainsTenEpochsByDefaultAndAtLeastOneStep) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const by_default = trial("default"), tiny = trial("tiny");
  ASSERT_TRUE(protocol::post_model_spec(by_default, tiny_model()));
  ASSERT_TRUE(protocol::post_model_spec(tiny, tiny_model()));
  auto args = tiny_epochs_run("1");
  args.erase("epochs");  // neither --epochs nor --total_steps
  auto const d = run(by_default, args);
  ASSERT_EQ(d.status, 0) << d.err;
  auto const size = size_of_run(d.out);
  ASSERT_GT(size.steps_per_epoch, 0) << d.out;
  EXPECT_EQ(size.total_steps, 10 * size.steps_per_epoch) << d.out;
  EXPECT_EQ(protocol::read_metrics(by_default).value().time.total_training_steps,
            10 * size.steps_per_epoch);

  // 0.01 epochs of about 10 steps round to 0: the run still trains one step.
  auto const one = run(tiny, tiny_epochs_run("0.01"));
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(size_of_run(one.out).total_steps, 1) << one.out;
  auto const m = protocol::read_metrics(tiny).value();
  EXPECT_EQ(m.time.total_training_steps, 1);
  ASSERT_EQ(m.points.size(), 1u);
  EXPECT_EQ(m.points[0].training_step, 0);
}

TEST_F(ReferenceTrainer, TrainsTheSameEpochsInFewerStepsWithLessData) {
  // The point of --epochs: a proxy on half the data trains as many epochs in half the steps.
  SKIP_WITHOUT_FASHION_MNIST();
  std::map<std::string, printed_size> sizes;
  std::map<std::string, std::int64_t> recorded;
  for (char const* data_pct : {"5", "10"}) {
    fs::path const t = trial(std::string("pct") + data_pct);
    ASSERT_TRUE(protocol::post_model_spec(t, tiny_model()));
    auto args = tiny_epochs_run("2");
    args["data_pct"] = data_pct;
    args["batch_size"] = "100";
    auto const r = run(t, args);
    ASSERT_EQ(r.status, 0) << r.err;
    sizes[data_pct] = size_of_run(r.out);
    recorded[data_pct] = protocol::read_metrics(t).value().time.total_training_steps;
  }
  for (auto const& [data_pct, size] : sizes) {
    EXPECT_EQ(size.steps_per_epoch, (size.training_images + 99) / 100) << data_pct;
    EXPECT_EQ(recorded[data_pct], 2 * size.steps_per_epoch) << data_pct;
  }
  // 2,500 and 5,000 images (class-balanced 5% and 10% of 50,000): 25 and 50 steps per epoch.
  EXPECT_EQ(sizes["5"].training_images, 2500);
  EXPECT_EQ(sizes["10"].training_images, 5000);
  EXPECT_EQ(recorded["5"], 50);
  EXPECT_EQ(recorded["10"], 100);
}

TEST_F(ReferenceTrainer, CompletesARunUnderTheLocalProcessExecutor) {
  // As a tool runs it: launched by the local-process executor (the launch convention, its own
  // process group, exit status collected), observed through the trial's files only.
  SKIP_WITHOUT_FASHION_MNIST();
  namespace wf = proxytask::workflow;
  fs::path const run_dir = dir_.path() / "run";
  pt::exec::local_process_executor exec(
      run_dir, {.trainer_command = {PROXYTASK_REFERENCE_TRAINER}, .poll_interval_s = 0.05});
  wf::launch_trial launch;
  launch.trial_id = "tiny";
  launch.spec = tiny_model();
  launch.seed = 3;
  launch.proxy_args = tiny_run();
  ASSERT_TRUE(exec.launch(launch));
  std::optional<wf::trial_status> done;
  for (auto const deadline = std::chrono::steady_clock::now() + 60s;
       !done && std::chrono::steady_clock::now() < deadline; exec.wait_for_next_poll()) {
    auto const seen = exec.observe().value();
    ASSERT_EQ(seen.trials.size(), 1u);
    if (wf::is_terminal(seen.trials[0].phase)) done = seen.trials[0];
  }
  ASSERT_TRUE(done) << "the trainer did not finish within a minute";
  EXPECT_EQ(done->phase, wf::trial_phase::succeeded) << done->failure_message;
  ASSERT_EQ(done->metrics.points.size(), 4u);
  EXPECT_EQ(done->metrics.points.back().training_step_pct, 100.0);
  EXPECT_GT(done->metrics.points.back().accuracy, 0.6);
  EXPECT_GT(done->metrics.latency, 0.0);
  fs::path const t = exec.trial_dir("tiny");
  EXPECT_EQ(pt::testing::last_line(pt::read_file(t / "stdout.txt").value()), "stopped: completed");
  EXPECT_TRUE(tr::load_checkpoint(t / "CHECKPOINT.bin"));
}

TEST_F(ReferenceTrainer, StopsAtTheDesiredPctThenResumesToTheUninterruptedResult) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const whole = trial("whole"), cut = trial("cut");
  ASSERT_TRUE(protocol::post_model_spec(whole, tiny_model()));
  ASSERT_TRUE(protocol::post_model_spec(cut, tiny_model()));
  auto const uninterrupted = run(whole, tiny_run());
  ASSERT_EQ(uninterrupted.status, 0) << uninterrupted.err;

  ASSERT_TRUE(protocol::post_desired_pct(cut, 50.0));
  auto const first = run(cut, tiny_run());
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(pt::testing::last_line(first.out), "stopped: desired_pct_reached") << first.out;
  auto const half = protocol::read_metrics(cut).value();
  ASSERT_EQ(half.points.size(), 2u);
  EXPECT_EQ(half.points.back().training_step_pct, 50.0);
  EXPECT_GT(half.latency, 0.0);  // measured on a graceful stop too
  EXPECT_EQ(tr::load_checkpoint(cut / "CHECKPOINT.bin").value().state.step, 100);

  ASSERT_TRUE(protocol::post_desired_pct(cut, 100.0));  // model selection's next iteration
  auto const second = run(cut, tiny_run());
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(pt::testing::last_line(second.out), "stopped: completed") << second.out;
  EXPECT_NE(second.out.find("resumed from"), std::string::npos) << second.out;
  // One BLAS thread: the resumed run continues with the same bits as the uninterrupted one.
  EXPECT_EQ(accuracies(cut), accuracies(whole));
  EXPECT_EQ(protocol::read_metrics(cut).value().time.total_training_steps, 200);
}

TEST_F(ReferenceTrainer, ContinuesFromResumeFromWithThePreviousCurve) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const whole = trial("whole"), previous = trial("previous"), next = trial("next");
  for (auto const& d : {whole, previous, next})
    ASSERT_TRUE(protocol::post_model_spec(d, tiny_model()));
  ASSERT_EQ(run(whole, tiny_run()).status, 0);
  ASSERT_TRUE(protocol::post_desired_pct(previous, 25.0));
  ASSERT_EQ(run(previous, tiny_run()).status, 0);

  auto const r = run(next, tiny_run(), previous);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(pt::testing::last_line(r.out), "stopped: completed") << r.out;
  EXPECT_EQ(accuracies(next), accuracies(whole));  // the copied point, then the continuation
  EXPECT_EQ(accuracies(previous).size(), 1u);      // the previous trial is left as it was
}

TEST_F(ReferenceTrainer, APostedZeroStopsBeforeTraining) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const t = trial("t");
  ASSERT_TRUE(protocol::post_model_spec(t, tiny_model()));
  ASSERT_TRUE(protocol::post_desired_pct(t, 0.0));
  auto const r = run(t, tiny_run());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(pt::testing::last_line(r.out), "stopped: desired_pct_reached") << r.out;
  auto const m = protocol::read_metrics(t).value();
  EXPECT_TRUE(m.points.empty());
  EXPECT_EQ(m.time.total_training_steps, 0);
  EXPECT_FALSE(fs::exists(t / "CHECKPOINT.bin"));
}

TEST_F(ReferenceTrainer, WritesTheSeedsModelWhenThereIsNoSpec) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const t = trial("t");
  ASSERT_TRUE(protocol::post_desired_pct(t, 0.0));  // no training needed to see the spec
  auto args = tiny_run();
  args["model_scale"] = "0.125";
  auto const r = run(t, args);
  ASSERT_EQ(r.status, 0) << r.err;
  auto const spec = protocol::read_model_spec(t / "MODEL_SPEC.json").value();
  EXPECT_EQ(tr::mlp_spec_from_model_spec(spec, "MODEL_SPEC.json").value(), tr::sample_mlp(3));
  EXPECT_EQ(spec.model_id, tr::mlp_model_id(tr::sample_mlp(3)));  // unscaled: the model itself
}

TEST_F(ReferenceTrainer, RecordsDivergenceAndExitsThree) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const t = trial("t");
  ASSERT_TRUE(protocol::post_model_spec(t, tiny_model()));
  auto args = tiny_run();
  args["learning_rate"] = "1e6";
  auto const r = run(t, args);
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  auto const f = protocol::read_failure(t).value();
  EXPECT_EQ(f.kind, protocol::failure_kind::diverged);
  ASSERT_TRUE(f.training_step);
  EXPECT_LT(*f.training_step, 50);  // in the first cycle: nothing recorded
  EXPECT_EQ(r.out.find("stopped:"), std::string::npos) << r.out;
}

TEST_F(ReferenceTrainer, RecordsOutOfMemoryAndExitsThree) {
  SKIP_WITHOUT_FASHION_MNIST();
  fs::path const t = trial("t");
  // 65536 x 65536 weights are 16 GiB: over a 4 GB address-space limit, std::bad_alloc.
  ASSERT_TRUE(protocol::post_model_spec(
      t, tr::to_model_spec(tr::mlp_spec{{65536, 65536}, tr::activation::relu, 0.0})));
  protocol::launch_arguments args;
  args.model_dir = t;
  auto const proxy_args = tiny_run();
  args.proxy_args.insert(proxy_args.begin(), proxy_args.end());
  std::vector<std::string> const program{"/bin/sh", "-c", "ulimit -v 4000000 && exec \"$@\"", "sh",
                                         PROXYTASK_REFERENCE_TRAINER};
  auto const r = run_argv(protocol::make_launch_command(program, args).value().argv);
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_EQ(protocol::read_failure(t).value().kind, protocol::failure_kind::oom);
}

}  // namespace
