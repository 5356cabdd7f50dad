// MODEL_LATENCY.json (protocol/latency.hpp), the executors' trial_status::measured_latency, and
// workflow::latency_calculator with a fake measuring function: new trials picked up in id order,
// failures recorded (errors, exceptions, bad values), malformed and unsettled specs, no
// re-measuring, the executors' launch records, stopping, and a controller writing at the same
// time.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/exec/in_process.hpp>
#include <proxytask/exec/local_process.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/latency.hpp>
#include <proxytask/workflow/latency_calculator.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;
using pt::protocol::model_latency;
using pt::testing::temp_dir;
using namespace std::chrono_literals;

pt::protocol::model_spec spec_of(std::string id) {
  pt::protocol::model_spec s;
  s.model_id = std::move(id);
  s.parameters["width"] = 64;
  return s;
}

/// Writes <run>/trials/<id>/MODEL_SPEC.json as a controller does.
fs::path add_trial(fs::path const& run, std::string const& id) {
  auto const dir = pt::exec::trial_directory(run, id);
  fs::create_directories(dir);
  pt::protocol::post_model_spec(dir, spec_of("model-" + id)).value();
  return dir;
}

void write_text(fs::path const& p, std::string const& text) { std::ofstream(p) << text; }

/// Options for tests: no settling wait, a fixed clock.
wf::latency_calculator_options test_options() {
  wf::latency_calculator_options o;
  o.poll_interval_s = 0.01;
  o.settle_s = 0;
  o.device = "test-device";
  o.clock = [] { return 1'700'000'000.0; };
  return o;
}

// --- the file --------------------------------------------------------------------------------

TEST(ModelLatencyFile, RoundTripsThroughTheTrialDirectory) {
  temp_dir dir;
  model_latency m;
  m.latency_ms = 1.25;
  m.message = "median of 200";
  m.device = "edge board";
  m.measured_unix_s = 1'700'000'123.5;
  pt::protocol::post_model_latency(dir.path(), m).value();
  auto const back = pt::protocol::read_model_latency(dir.path()).value();
  EXPECT_EQ(back.latency_ms, 1.25);
  EXPECT_EQ(back.message, "median of 200");
  EXPECT_EQ(back.device, "edge board");
  EXPECT_EQ(back.measured_unix_s, 1'700'000'123.5);
  EXPECT_TRUE(back.ok());
}

TEST(ModelLatencyFile, AFailedMeasurementIsWrittenAsNullAndReadAsNaN) {
  temp_dir dir;
  model_latency m;
  m.message = "cannot build the model";
  m.measured_unix_s = 1;
  pt::protocol::post_model_latency(dir.path(), m).value();
  auto const text = pt::read_file(dir.path() / "MODEL_LATENCY.json").value();
  auto const doc = pt::parse_json(text, "x").value();
  EXPECT_TRUE(doc.as_object().at("latency").is_null());
  auto const back = pt::protocol::read_model_latency(dir.path()).value();
  EXPECT_TRUE(std::isnan(back.latency_ms));
  EXPECT_FALSE(back.ok());
  EXPECT_EQ(back.message, "cannot build the model");
}

TEST(ModelLatencyFile, OnlyTheLatencyIsRequiredAndNaNTokensAreFailures) {
  auto const minimal = pt::protocol::parse_model_latency(R"({"latency": 3})", "f").value();
  EXPECT_EQ(minimal.latency_ms, 3.0);
  EXPECT_EQ(minimal.device, "");
  auto const nan = pt::protocol::parse_model_latency(R"({"latency": NaN, "x": 1})", "f").value();
  EXPECT_TRUE(std::isnan(nan.latency_ms));
}

TEST(ModelLatencyFile, MalformedFilesNameTheFileAndField) {
  auto const missing = pt::protocol::parse_model_latency(R"({"message": "x"})", "T/MODEL_LATENCY");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, pt::errc::malformed_file);
  EXPECT_NE(missing.error().message().find("T/MODEL_LATENCY#/latency: missing"), std::string::npos);
  auto const text = pt::protocol::parse_model_latency(R"({"latency": "fast"})", "F");
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().message().find("F#/latency"), std::string::npos);
  auto const negative = pt::protocol::parse_model_latency(R"({"latency": -2})", "F");
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().message().find("F#/latency"), std::string::npos);
  auto const device = pt::protocol::parse_model_latency(R"({"latency": 1, "device": 3})", "F");
  ASSERT_FALSE(device);
  EXPECT_NE(device.error().message().find("F#/device"), std::string::npos);
  temp_dir dir;
  EXPECT_EQ(pt::protocol::read_model_latency(dir.path()).error().code, pt::errc::not_found);
}

TEST(ModelLatencyFile, WritingANegativeLatencyIsACallerBug) {
  temp_dir dir;
  model_latency m;
  m.latency_ms = -1;
  EXPECT_THROW((void)pt::protocol::post_model_latency(dir.path(), m), pt::logic_error);
}

// --- the executors report it -----------------------------------------------------------------

wf::launch_trial launch_of(std::string id, std::map<std::string, std::string> args = {}) {
  wf::launch_trial l;
  l.trial_id = std::move(id);
  l.spec = spec_of("model-" + l.trial_id);
  l.seed = 3;
  l.proxy_args = std::move(args);
  return l;
}

model_latency latency(double ms) {
  model_latency m;
  m.latency_ms = ms;
  m.measured_unix_s = 1;
  return m;
}

/// The measured_latency of each trial of an observation.
std::map<std::string, std::optional<double>> measured(wf::observation const& obs) {
  std::map<std::string, std::optional<double>> out;
  for (auto const& t : obs.trials) out[t.trial_id] = t.measured_latency;
  return out;
}

TEST(MeasuredLatency, SimulatedExecutorReportsIt) {
  temp_dir run;
  pt::exec::simulated_executor exec(run.path());
  exec.launch(launch_of("a")).value();
  exec.launch(launch_of("b")).value();
  exec.launch(launch_of("c")).value();
  EXPECT_FALSE(measured(exec.observe().value())["a"].has_value());
  pt::protocol::post_model_latency(exec.trial_dir("a"), latency(2.5)).value();
  pt::protocol::post_model_latency(exec.trial_dir("b"), latency(NAN)).value();
  auto m = measured(exec.observe().value());
  EXPECT_EQ(m["a"], 2.5);
  ASSERT_TRUE(m["b"].has_value());
  EXPECT_TRUE(std::isnan(*m["b"]));
  EXPECT_FALSE(m["c"].has_value());

  write_text(exec.trial_dir("c") / "MODEL_LATENCY.json", R"({"latency": "x"})");
  auto const broken = exec.observe();
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("MODEL_LATENCY.json#/latency"), std::string::npos);
}

TEST(MeasuredLatency, InProcessExecutorReportsIt) {
  temp_dir run;
  pt::exec::in_process_executor exec(run.path(), [](pt::exec::in_process_trial&) { return 0; },
                                     {.poll_interval_s = 0.01});
  exec.launch(launch_of("a")).value();
  exec.launch(launch_of("b")).value();
  pt::protocol::post_model_latency(exec.trial_dir("a"), latency(0.75)).value();
  auto m = measured(exec.observe().value());
  EXPECT_EQ(m["a"], 0.75);
  EXPECT_FALSE(m["b"].has_value());

  write_text(exec.trial_dir("b") / "MODEL_LATENCY.json", "{");
  auto const broken = exec.observe();
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("MODEL_LATENCY.json"), std::string::npos);
}

TEST(MeasuredLatency, LocalProcessExecutorReportsIt) {
  temp_dir run;
  pt::exec::local_process_executor::options o;
  o.trainer_command = {"/bin/true"};
  o.poll_interval_s = 0.01;
  pt::exec::local_process_executor exec(run.path(), o);
  exec.launch(launch_of("a")).value();
  exec.launch(launch_of("b")).value();
  pt::protocol::post_model_latency(exec.trial_dir("b"), latency(NAN)).value();
  pt::protocol::post_model_latency(exec.trial_dir("a"), latency(4)).value();
  auto m = measured(exec.observe().value());
  EXPECT_EQ(m["a"], 4.0);
  ASSERT_TRUE(m["b"].has_value());
  EXPECT_TRUE(std::isnan(*m["b"]));

  write_text(exec.trial_dir("a") / "MODEL_LATENCY.json", R"({"latency": -1})");
  auto const broken = exec.observe();
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().message().find("MODEL_LATENCY.json#/latency"), std::string::npos);
}

TEST(MeasuredLatency, RoundTripsThroughTheTrialStatusJson) {
  wf::trial_status s;
  s.trial_id = "t";
  s.measured_latency = std::nan("");
  auto const v = boost::json::value_from(s);
  EXPECT_TRUE(v.as_object().at("measured_latency").is_null());
  auto const back = wf::trial_status_from_json(v, pt::json_location("s")).value();
  ASSERT_TRUE(back.measured_latency.has_value());
  EXPECT_TRUE(std::isnan(*back.measured_latency));
}

// --- the calculator --------------------------------------------------------------------------

/// A fake measure: the latency is 0.5 + the number of calls so far, and the calls are recorded.
struct fake_measure {
  std::vector<std::string>* calls;
  pt::result<double> operator()(wf::latency_request const& r) const {
    calls->push_back(r.trial_id);
    EXPECT_EQ(r.trial_dir, pt::exec::trial_directory(r.run_dir, r.trial_id));
    EXPECT_EQ(r.spec.model_id, "model-" + r.trial_id);
    return 0.5 + static_cast<double>(calls->size());
  }
};

TEST(LatencyCalculator, MeasuresEveryTrialWithASpecInIdOrderAndWritesItsFile) {
  temp_dir run;
  for (auto const* id : {"t2", "t10", "t1"}) add_trial(run.path(), id);
  fs::create_directories(pt::exec::trial_directory(run.path(), "no-spec-yet"));
  std::vector<std::string> calls;
  std::vector<std::string> written;
  auto o = test_options();
  o.on_written = [&](std::string const& id, model_latency const&) { written.push_back(id); };
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, o);
  auto const pass = calc.poll().value();
  std::vector<std::string> const order = {"t1", "t10", "t2"};
  EXPECT_EQ(calls, order);
  EXPECT_EQ(pass.measured, order);
  EXPECT_EQ(written, order);
  EXPECT_TRUE(pass.failed.empty());
  EXPECT_TRUE(pass.waiting.empty());
  auto const t1 = pt::protocol::read_model_latency(pt::exec::trial_directory(run.path(), "t1"));
  ASSERT_TRUE(t1);
  EXPECT_EQ(t1->latency_ms, 1.5);
  EXPECT_EQ(t1->device, "test-device");
  EXPECT_EQ(t1->measured_unix_s, 1'700'000'000.0);
  EXPECT_EQ(pt::protocol::read_model_latency(pt::exec::trial_directory(run.path(), "t2"))
                .value()
                .latency_ms,
            3.5);
  EXPECT_FALSE(
      fs::exists(pt::exec::trial_directory(run.path(), "no-spec-yet") / "MODEL_LATENCY.json"));
}

TEST(LatencyCalculator, AnEmptyOrMissingRunDirectoryIsNotAnError) {
  temp_dir run;
  std::vector<std::string> calls;
  wf::latency_calculator calc(run.path() / "not-yet", fake_measure{&calls}, test_options());
  auto const pass = calc.poll().value();
  EXPECT_TRUE(pass.measured.empty());
  EXPECT_TRUE(calls.empty());
}

TEST(LatencyCalculator, PicksUpNewTrialsAndNeverMeasuresATrialTwice) {
  temp_dir run;
  add_trial(run.path(), "a");
  std::vector<std::string> calls;
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, test_options());
  EXPECT_EQ(calc.poll().value().measured, std::vector<std::string>{"a"});
  EXPECT_TRUE(calc.poll().value().measured.empty());
  add_trial(run.path(), "b");
  EXPECT_EQ(calc.poll().value().measured, std::vector<std::string>{"b"});
  // A trial measured by someone else (another calculator, an earlier run) is left alone.
  auto const c = add_trial(run.path(), "c");
  pt::protocol::post_model_latency(c, latency(9)).value();
  EXPECT_TRUE(calc.poll().value().measured.empty());
  EXPECT_EQ(pt::protocol::read_model_latency(c).value().latency_ms, 9.0);
  // A new calculator on the same run directory (a restart) does not measure again either.
  wf::latency_calculator again(run.path(), fake_measure{&calls}, test_options());
  EXPECT_TRUE(again.poll().value().measured.empty());
  EXPECT_EQ(calls, (std::vector<std::string>{"a", "b"}));
}

TEST(LatencyCalculator, RecordsFailuresOfTheMeasuringFunctionWithTheirMessage) {
  temp_dir run;
  for (auto const* id : {"err", "neg", "nan", "throws", "throws-other", "ok"})
    add_trial(run.path(), id);
  wf::latency_calculator calc(
      run.path(),
      [](wf::latency_request const& r) -> pt::result<double> {
        if (r.trial_id == "err")
          return pt::make_error(pt::errc::invalid_argument, "no such layer type");
        if (r.trial_id == "neg") return -3.0;
        if (r.trial_id == "nan") return std::nan("");
        if (r.trial_id == "throws") throw std::runtime_error("board unplugged");
        if (r.trial_id == "throws-other") throw 42;
        return 7.0;
      },
      test_options());
  auto const pass = calc.poll().value();
  EXPECT_EQ(pass.measured, std::vector<std::string>{"ok"});
  EXPECT_EQ(pass.failed, (std::vector<std::string>{"err", "nan", "neg", "throws", "throws-other"}));
  auto const message = [&](std::string const& id) {
    auto const m =
        pt::protocol::read_model_latency(pt::exec::trial_directory(run.path(), id)).value();
    EXPECT_TRUE(std::isnan(m.latency_ms)) << id;
    return m.message;
  };
  EXPECT_NE(message("err").find("no such layer type"), std::string::npos);
  EXPECT_NE(message("neg").find("returned -3"), std::string::npos);
  EXPECT_NE(message("nan").find("returned"), std::string::npos);
  EXPECT_NE(message("throws").find("board unplugged"), std::string::npos);
  EXPECT_NE(message("throws-other").find("threw"), std::string::npos);
  // Failed measurements are final too.
  EXPECT_TRUE(calc.poll().value().failed.empty());
}

TEST(LatencyCalculator, RetriesASpecBeingWrittenAndMeasuresItOnceComplete) {
  temp_dir run;
  auto const dir = pt::exec::trial_directory(run.path(), "a");
  fs::create_directories(dir);
  write_text(dir / "MODEL_SPEC.json", R"({"model_id": "model-a", "param)");
  std::vector<std::string> calls;
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, test_options());
  for (int i = 0; i < 2; ++i) {
    auto const pass = calc.poll().value();
    EXPECT_EQ(pass.waiting, std::vector<std::string>{"a"});
    EXPECT_FALSE(fs::exists(dir / "MODEL_LATENCY.json"));
  }
  pt::protocol::post_model_spec(dir, spec_of("model-a")).value();
  EXPECT_EQ(calc.poll().value().measured, std::vector<std::string>{"a"});
  EXPECT_EQ(calls, std::vector<std::string>{"a"});
}

TEST(LatencyCalculator, APersistentlyMalformedSpecIsAFailedMeasurementNamingTheFile) {
  temp_dir run;
  auto const dir = pt::exec::trial_directory(run.path(), "bad");
  fs::create_directories(dir);
  write_text(dir / "MODEL_SPEC.json", R"({"model_id": 5, "parameters": {}})");
  add_trial(run.path(), "good");
  std::vector<std::string> calls;
  auto o = test_options();
  o.spec_read_attempts = 3;
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, o);
  auto const first = calc.poll().value();
  EXPECT_EQ(first.measured, std::vector<std::string>{"good"});  // never blocked by "bad"
  EXPECT_EQ(first.waiting, std::vector<std::string>{"bad"});
  EXPECT_EQ(calc.poll().value().waiting, std::vector<std::string>{"bad"});
  auto const third = calc.poll().value();
  EXPECT_EQ(third.failed, std::vector<std::string>{"bad"});
  EXPECT_TRUE(third.waiting.empty());
  auto const m = pt::protocol::read_model_latency(dir).value();
  EXPECT_TRUE(std::isnan(m.latency_ms));
  EXPECT_NE(m.message.find((dir / "MODEL_SPEC.json").string() + "#/model_id"), std::string::npos)
      << m.message;
  EXPECT_EQ(calls, std::vector<std::string>{"good"});
}

TEST(LatencyCalculator, RunOnceRetriesUntilNothingWaits) {
  temp_dir run;
  auto const dir = pt::exec::trial_directory(run.path(), "bad");
  fs::create_directories(dir);
  write_text(dir / "MODEL_SPEC.json", "not json");
  add_trial(run.path(), "good");
  std::vector<std::string> calls;
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, test_options());
  auto const pass = calc.run_once({}, 0.001).value();
  EXPECT_EQ(pass.measured, std::vector<std::string>{"good"});
  EXPECT_EQ(pass.failed, std::vector<std::string>{"bad"});
  EXPECT_TRUE(pass.waiting.empty());
}

TEST(LatencyCalculator, AFreshSpecWithoutALaunchRecordWaitsToSettle) {
  temp_dir run;
  add_trial(run.path(), "a");
  std::vector<std::string> calls;
  auto o = test_options();
  o.settle_s = 3600;
  wf::latency_calculator patient(run.path(), fake_measure{&calls}, o);
  EXPECT_EQ(patient.poll().value().waiting, std::vector<std::string>{"a"});
  EXPECT_TRUE(calls.empty());
  o.settle_s = 0.05;
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, o);
  auto const pass = calc.run_once({}, 0.01).value();
  EXPECT_EQ(pass.measured, std::vector<std::string>{"a"});
}

TEST(LatencyCalculator, GivesTheMeasureTheLaunchTheExecutorRecorded) {
  temp_dir run;
  {  // the in-process executor's record (RUN_DIR/in_process_executor.json)
    pt::exec::in_process_executor exec(run.path() / "inproc",
                                       [](pt::exec::in_process_trial&) { return 0; });
    exec.launch(launch_of("a", {{"model_scale", "0.5"}})).value();
  }
  pt::exec::local_process_executor::options lo;
  lo.trainer_command = {"/bin/true"};
  pt::exec::local_process_executor local(run.path() / "local", lo);
  local.launch(launch_of("b", {{"model_scale", "0.25"}, {"downsample", "1"}})).value();

  std::map<std::string, std::map<std::string, std::string>> seen;
  auto const record = [&](wf::latency_request const& r) -> pt::result<double> {
    EXPECT_TRUE(r.launch.has_value()) << r.trial_id;
    if (r.launch) seen[r.trial_id] = r.launch->proxy_args;
    return 1.0;
  };
  auto o = test_options();
  o.settle_s = 3600;  // a record is there: no waiting
  wf::latency_calculator inproc(run.path() / "inproc", record, o);
  EXPECT_EQ(inproc.poll().value().measured, std::vector<std::string>{"a"});
  wf::latency_calculator by_local(run.path() / "local", record, o);
  EXPECT_EQ(by_local.poll().value().measured, std::vector<std::string>{"b"});
  EXPECT_EQ(seen["a"].at("model_scale"), "0.5");
  EXPECT_EQ(seen["b"].at("model_scale"), "0.25");
  EXPECT_EQ(seen["b"].at("downsample"), "1");
}

TEST(LatencyCalculator, AMalformedLaunchRecordIsRetriedThenAFailedMeasurement) {
  temp_dir run;
  auto const dir = add_trial(run.path(), "a");
  write_text(dir / "LOCAL_TRIAL.json", R"({"launch_index": 0, "launch": 7})");
  std::vector<std::string> calls;
  auto o = test_options();
  o.spec_read_attempts = 2;
  wf::latency_calculator calc(run.path(), fake_measure{&calls}, o);
  EXPECT_EQ(calc.poll().value().waiting, std::vector<std::string>{"a"});
  EXPECT_EQ(calc.poll().value().failed, std::vector<std::string>{"a"});
  EXPECT_NE(pt::protocol::read_model_latency(dir).value().message.find("LOCAL_TRIAL.json#/launch"),
            std::string::npos);
  EXPECT_TRUE(calls.empty());
}

TEST(LatencyCalculator, RunStopsWhenAskedAndMeasuresWhileItRuns) {
  temp_dir run;
  std::atomic<int> count{0};
  wf::latency_calculator calc(
      run.path(),
      [&](wf::latency_request const&) -> pt::result<double> {
        ++count;
        return 1.0;
      },
      test_options());
  std::stop_source stop;
  std::optional<pt::result<void>> ended;
  std::thread t([&] { ended = calc.run(stop.get_token()); });
  add_trial(run.path(), "late");
  auto const deadline = std::chrono::steady_clock::now() + 10s;
  while (count == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  stop.request_stop();
  t.join();
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(*ended);
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(fs::exists(pt::exec::trial_directory(run.path(), "late") / "MODEL_LATENCY.json"));
}

TEST(LatencyCalculator, IsSafeWithAControllerWritingAtTheSameTime) {
  temp_dir run;
  constexpr int trials = 40;
  std::atomic<int> measured{0};
  wf::latency_calculator calc(
      run.path(),
      [&](wf::latency_request const& r) -> pt::result<double> {
        EXPECT_EQ(r.spec.model_id, "model-" + r.trial_id);
        ++measured;
        return 0.25;
      },
      test_options());
  std::stop_source stop;
  std::optional<pt::result<void>> ended;
  std::thread calculator([&] { ended = calc.run(stop.get_token()); });
  // The controller: new trials, and the trial files it keeps rewriting (atomically).
  for (int i = 0; i < trials; ++i) {
    auto const dir = add_trial(run.path(), "t" + std::to_string(i));
    pt::protocol::post_desired_pct(dir, 50).value();
    pt::protocol::post_heartbeat(dir, 1).value();
    for (int j = 0; j < i; j += 7)
      pt::protocol::post_heartbeat(pt::exec::trial_directory(run.path(), "t" + std::to_string(j)),
                                   2)
          .value();
    std::this_thread::sleep_for(1ms);
  }
  auto const deadline = std::chrono::steady_clock::now() + 20s;
  while (measured < trials && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  stop.request_stop();
  calculator.join();
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(*ended);
  EXPECT_EQ(measured, trials);
  // Every trial has its latency, and the calculator wrote nothing else (no temp files left).
  std::set<std::string> const expected = {"MODEL_SPEC.json", "DESIRED_TRAINING_PCT.json",
                                          "controller_alive_timestamp.json", "MODEL_LATENCY.json"};
  for (int i = 0; i < trials; ++i) {
    auto const dir = pt::exec::trial_directory(run.path(), "t" + std::to_string(i));
    std::set<std::string> names;
    for (auto const& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
    EXPECT_EQ(names, expected) << dir;
    EXPECT_EQ(pt::protocol::read_model_latency(dir).value().latency_ms, 0.25);
  }
  std::set<std::string> top;
  for (auto const& e : fs::directory_iterator(run.path())) top.insert(e.path().filename().string());
  EXPECT_EQ(top, std::set<std::string>{"trials"});
}

}  // namespace
