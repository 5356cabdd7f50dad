#include <proxytask/workflow/variance_tool.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/stats/variance.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "command_helpers.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::protocol::failure_kind;
using pt::stats::curve_point;
using pt::testing::commands_json;
using pt::testing::finish_of;
using pt::testing::launches;
using wf::measurement_phase;
using wf::trial_phase;

pt::protocol::model_spec sample(std::uint64_t seed) {
  return {"model-" + std::to_string(seed), boost::json::object{{"seed", seed}, {"width", 64}}};
}

wf::variance_tool make_tool(wf::variance_options o = {}) {
  o.proxy_args = {{"data_pct", "10"}};
  return wf::variance_tool(sample, o);
}

/// A curve of `n` points ending at 100% with the final accuracy `final_acc`, rising smoothly.
std::vector<curve_point> rising(double final_acc, int n = 10) {
  std::vector<curve_point> c;
  for (int i = 1; i <= n; ++i)
    c.push_back({100.0 * i / n, i * 10 - 1,
                 final_acc * (1 - std::exp(-3.0 * i / n)) / (1 - std::exp(-3.0))});
  return c;
}

/// A curve that zigzags: every other point drops.
std::vector<curve_point> zigzag(double final_acc) {
  std::vector<curve_point> c;
  for (int i = 1; i <= 20; ++i)
    c.push_back({5.0 * i, i * 10 - 1, final_acc * (i % 2 == 0 ? 1.0 : 0.2)});
  return c;
}

wf::trial_status status(std::string id, trial_phase phase, std::vector<curve_point> points = {},
                        std::optional<failure_kind> failure = std::nullopt) {
  wf::trial_status t;
  t.trial_id = std::move(id);
  t.phase = phase;
  t.failure = failure;
  if (failure) t.failure_message = "failed: " + std::string(pt::protocol::to_string(*failure));
  t.metrics.points = std::move(points);
  return t;
}

/// The state through a JSON text round trip.
wf::variance_state round_trip(wf::variance_state const& s) {
  auto const text = boost::json::serialize(boost::json::value_from(s));
  auto const back = pt::parse_json(text, "measurement_state.json");
  EXPECT_TRUE(back.has_value());
  auto const st = wf::variance_state_from_json(*back, pt::json_location("measurement_state.json"));
  EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().context);
  return *st;
}

/// Drives the tool by hand: the observation holds every launched trial; tests set their status.
struct harness {
  wf::variance_tool tool;
  wf::variance_state state;
  wf::observation obs;
  std::vector<wf::step<wf::variance_state>> history;

  explicit harness(wf::variance_options o = {}) : tool(make_tool(o)), state(tool.initial()) {}

  wf::step<wf::variance_state> const& advance() {
    auto s = tool.advance(state, obs);
    // Every step: deterministic, the same after a JSON round trip of the state, and it never
    // launches a trial the observation lists.
    auto again = tool.advance(state, obs);
    EXPECT_EQ(commands_json(s.commands), commands_json(again.commands));
    EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(again.next));
    auto resumed = tool.advance(round_trip(state), obs);
    EXPECT_EQ(commands_json(s.commands), commands_json(resumed.commands));
    EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(resumed.next));
    EXPECT_EQ(boost::json::value_from(round_trip(s.next)), boost::json::value_from(s.next));
    for (auto const& l : launches(s.commands)) {
      EXPECT_EQ(obs.find(l.trial_id), nullptr) << "relaunched " << l.trial_id;
      obs.trials.push_back(status(l.trial_id, trial_phase::pending));
    }
    state = s.next;
    history.push_back(std::move(s));
    return history.back();
  }

  void set(wf::trial_status t) {
    for (auto& x : obs.trials)
      if (x.trial_id == t.trial_id) {
        x = std::move(t);
        return;
      }
    ADD_FAILURE() << "no trial " << t.trial_id;
  }

  /// Runs to the measure phase with workable-0 workable.
  void to_measure() {
    advance();
    set(status("workable-0", trial_phase::succeeded, {{1.0, 9, 0.12}}));
    advance();
    ASSERT_EQ(state.phase, measurement_phase::measure);
  }

  /// Finishes copy c's current attempt with a curve ending at final_acc.
  void finish_copy(std::string id, std::vector<curve_point> curve) {
    set(status(std::move(id), trial_phase::succeeded, std::move(curve)));
  }
};

double num(boost::json::value const& v) { return v.to_number<double>(); }

TEST(VarianceTool, SatisfiesTheToolConcept) {
  static_assert(wf::tool<wf::variance_tool>);
  EXPECT_EQ(wf::variance_tool::state_file_name, "measurement_state.json");
  EXPECT_EQ(wf::variance_tool::schema_version, 1);
  auto const s = make_tool().initial();
  EXPECT_EQ(s.phase, measurement_phase::find_workable);
  EXPECT_TRUE(s.tries.empty());
}

TEST(VarianceTool, RejectsBadOptions) {
  wf::variance_options o;
  o.copies = 0;
  EXPECT_THROW(wf::variance_tool(sample, o), pt::logic_error);
  o = {};
  o.max_workable_tries = 0;
  EXPECT_THROW(wf::variance_tool(sample, o), pt::logic_error);
  o = {};
  o.workable_pct = 0;
  EXPECT_THROW(wf::variance_tool(sample, o), pt::logic_error);
  EXPECT_THROW(wf::variance_tool(nullptr), pt::logic_error);
}

TEST(VarianceTool, HappyPathMeasuresFiveCopiesOfTheFirstWorkableModel) {
  harness h;
  auto const& first = h.advance();
  auto l = launches(first.commands);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].trial_id, "workable-0");
  EXPECT_EQ(l[0].seed, h.tool.try_seed(0));
  EXPECT_EQ(l[0].spec.model_id, sample(l[0].seed).model_id);
  EXPECT_EQ(l[0].desired_pct, 1.0);
  EXPECT_EQ(l[0].proxy_args.at("data_pct"), "10");
  EXPECT_FALSE(l[0].resume_from);
  auto const spec = l[0].spec;

  // Running below 1%: nothing to do.
  h.set(status("workable-0", trial_phase::running, {{0.5, 4, 0.05}}));
  EXPECT_TRUE(h.advance().commands.empty());
  EXPECT_EQ(h.state.phase, measurement_phase::find_workable);

  // Reaching 1% makes it workable (even before the trainer exits) and launches the copies.
  h.set(status("workable-0", trial_phase::running, {{0.5, 4, 0.05}, {1.5, 14, 0.1}}));
  auto const& measure = h.advance();
  EXPECT_EQ(h.state.phase, measurement_phase::measure);
  EXPECT_EQ(h.state.workable_model_dir, "trials/workable-0");
  EXPECT_EQ(h.state.training_job_name, "variance_measurement");
  EXPECT_NEAR(h.state.tries[0].accuracy, 0.05 + (0.1 - 0.05) * 0.5, 1e-15);
  l = launches(measure.commands);
  ASSERT_EQ(l.size(), 5u);
  std::set<std::uint64_t> seeds{h.state.tries[0].seed};
  for (std::size_t c = 0; c < 5; ++c) {
    EXPECT_EQ(l[c].trial_id, "copy-" + std::to_string(c));
    EXPECT_EQ(boost::json::value_from(l[c].spec), boost::json::value_from(spec));
    EXPECT_EQ(l[c].desired_pct, 100.0);
    EXPECT_EQ(l[c].proxy_args.at("data_pct"), "10");
    seeds.insert(l[c].seed);
  }
  EXPECT_EQ(seeds.size(), 6u) << "distinct seeds for the try and every copy";

  // Copies running: nothing; then they finish one by one.
  std::vector<double> const finals{0.81, 0.79, 0.83, 0.80, 0.78};
  std::vector<std::vector<curve_point>> curves;
  for (std::size_t c = 0; c < 5; ++c) curves.push_back(rising(finals[c], 8 + static_cast<int>(c)));
  for (std::size_t c = 0; c < 5; ++c)
    h.set(status("copy-" + std::to_string(c), trial_phase::running, {curves[c][0]}));
  EXPECT_TRUE(h.advance().commands.empty());
  for (std::size_t c = 0; c < 4; ++c) h.finish_copy("copy-" + std::to_string(c), curves[c]);
  EXPECT_TRUE(h.advance().commands.empty());
  EXPECT_EQ(h.state.finished_model_dirs.size(), 4u);
  h.finish_copy("copy-4", curves[4]);
  auto const& done = h.advance();
  EXPECT_EQ(h.state.phase, measurement_phase::done);
  EXPECT_TRUE(launches(done.commands).empty());
  auto const* f = finish_of(done.commands);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(h.state.finished_model_dirs,
            (std::vector<std::string>{"trials/copy-0", "trials/copy-1", "trials/copy-2",
                                      "trials/copy-3", "trials/copy-4"}));

  auto const& r = f->result.as_object();
  auto const cv = pt::stats::coefficient_of_variation(finals);
  auto const sm = pt::stats::smoothness(curves).value();
  EXPECT_EQ(r.at("status"), "measured");
  EXPECT_EQ(num(r.at("variance_value")), cv.value);
  EXPECT_EQ(num(r.at("smoothness_value")), sm.mean.value);
  EXPECT_EQ(r.at("variance_info"), "Model variance is good.");
  EXPECT_EQ(r.at("smoothness_info"), "Model smoothness is good.");
  EXPECT_EQ(r.at("variance_verdict"), "good");
  EXPECT_EQ(r.at("smoothness_verdict"), "good");
  EXPECT_FALSE(r.contains("variance_reason"));
  EXPECT_TRUE(r.at("advice").as_array().empty());
  EXPECT_EQ(r.at("workable_trial_id"), "workable-0");
  auto const& copies = r.at("copies").as_array();
  ASSERT_EQ(copies.size(), 5u);
  for (std::size_t c = 0; c < 5; ++c) {
    auto const& o = copies[c].as_object();
    EXPECT_EQ(o.at("trial_id").as_string(), "copy-" + std::to_string(c));
    EXPECT_EQ(o.at("seed").to_number<std::uint64_t>(), l[c].seed);
    EXPECT_EQ(num(o.at("final_accuracy")), finals[c]);
    EXPECT_EQ(num(o.at("smoothness")), sm.per_curve[c].value);
    EXPECT_EQ(o.at("retried"), false);
  }
  EXPECT_TRUE(r.at("left_out_copies").as_array().empty());
  auto const& ci = r.at("variance_ci").as_object();
  EXPECT_EQ(ci.at("method"), "percentile");
  EXPECT_EQ(ci.at("resamples").to_number<std::size_t>(), 2000u);
  EXPECT_LE(num(ci.at("low")), cv.value);
  EXPECT_GE(num(ci.at("high")), cv.value);
  EXPECT_GE(num(ci.at("low")), 0.0);
  ASSERT_EQ(f->files.count("variance_and_smoothness.json"), 1u);
  EXPECT_EQ(f->files.at("variance_and_smoothness.json"), f->result);
  EXPECT_NE(f->summary.find("Model variance is good."), std::string::npos);

  // Done is final: every later advance finishes again with the same result, launching nothing.
  auto const again = h.tool.advance(h.state, h.obs);
  EXPECT_EQ(commands_json(again.commands), commands_json(done.commands));
}

TEST(VarianceTool, FailedFirstModelIsReplacedByTheNextSample) {
  harness h;
  h.advance();
  h.set(status("workable-0", trial_phase::failed, {}, failure_kind::oom));
  auto l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].trial_id, "workable-1");
  EXPECT_NE(l[0].seed, h.state.tries[0].seed);
  EXPECT_EQ(l[0].spec.model_id, sample(l[0].seed).model_id);
  EXPECT_EQ(h.state.tries[0].outcome, wf::attempt_outcome::failed);
  EXPECT_EQ(h.state.tries[0].failure, failure_kind::oom);
  EXPECT_EQ(h.state.tries[0].message, "failed: oom");

  h.set(status("workable-1", trial_phase::succeeded, {{1.0, 9, 0.2}}));
  l = launches(h.advance().commands);
  EXPECT_EQ(h.state.phase, measurement_phase::measure);
  EXPECT_EQ(h.state.workable, 1u);
  EXPECT_EQ(h.state.workable_model_dir, "trials/workable-1");
  ASSERT_EQ(l.size(), 5u);
  EXPECT_EQ(l[0].spec.model_id, h.state.tries[1].spec.model_id);
}

TEST(VarianceTool, NotReachingTheWorkablePctOrANanAccuracyIsAFailedTry) {
  harness h;
  h.advance();
  h.set(status("workable-0", trial_phase::succeeded, {{0.5, 4, 0.1}}));
  h.advance();
  EXPECT_EQ(h.state.tries[0].outcome, wf::attempt_outcome::failed);
  EXPECT_NE(h.state.tries[0].message.find("without reaching 1.0%"), std::string::npos);
  h.set(status("workable-1", trial_phase::running, {{2.0, 19, std::nan("")}}));
  h.advance();
  EXPECT_EQ(h.state.tries[1].failure, failure_kind::diverged);
  h.set(status("workable-2", trial_phase::stopped));
  h.advance();
  EXPECT_EQ(h.state.tries[2].failure, failure_kind::no_metrics);
  EXPECT_EQ(h.state.tries.size(), 4u);
}

TEST(VarianceTool, TenFailedTriesFinishWithNoWorkableModel) {
  harness h;
  failure_kind const kinds[] = {failure_kind::oom, failure_kind::diverged, failure_kind::crashed};
  for (int i = 0; i < 10; ++i) {
    auto const& s = h.advance();
    ASSERT_EQ(launches(s.commands).size(), 1u) << i;
    ASSERT_EQ(finish_of(s.commands), nullptr);
    h.set(status("workable-" + std::to_string(i), trial_phase::failed, {}, kinds[i % 3]));
  }
  auto const& last = h.advance();
  EXPECT_TRUE(launches(last.commands).empty());
  EXPECT_EQ(h.state.phase, measurement_phase::done);
  auto const* f = finish_of(last.commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("status"), "no_workable_model");
  EXPECT_NE(std::string(r.at("message").as_string()).find("no workable model in 10 tries"),
            std::string::npos);
  auto const& tries = r.at("tries").as_array();
  ASSERT_EQ(tries.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(tries[i].at("trial_id").as_string(), "workable-" + std::to_string(i));
    EXPECT_EQ(tries[i].at("failure").as_string(), pt::protocol::to_string(kinds[i % 3]));
  }
  EXPECT_NE(f->summary.find("workable-9"), std::string::npos);
  EXPECT_NE(f->summary.find("oom"), std::string::npos);
  EXPECT_TRUE(f->files.empty());
  EXPECT_FALSE(r.at("advice").as_array().empty());
}

TEST(VarianceTool, AFailedCopyIsRetriedOnceAndASecondFailureLeavesItOut) {
  harness h;
  h.to_measure();
  h.set(status("copy-1", trial_phase::failed, {}, failure_kind::preempted));
  h.set(status("copy-3", trial_phase::failed, {}, failure_kind::oom));
  auto l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].trial_id, "copy-1-retry");
  EXPECT_EQ(l[1].trial_id, "copy-3-retry");
  EXPECT_EQ(l[0].desired_pct, 100.0);
  std::set<std::uint64_t> seeds;
  for (auto const& c : h.state.copies)
    for (auto const& a : c.attempts) seeds.insert(a.seed);
  EXPECT_EQ(seeds.size(), 7u);

  // The retry of copy-3 fails too: copy 3 is left out, no third launch.
  h.set(status("copy-3-retry", trial_phase::failed, {}, failure_kind::oom));
  EXPECT_TRUE(launches(h.advance().commands).empty());
  EXPECT_TRUE(h.state.copies[3].resolved());

  std::vector<double> const finals{0.7, 0.72, 0.71, 0.69};
  std::vector<std::vector<curve_point>> curves;
  for (double a : finals) curves.push_back(rising(a));
  h.finish_copy("copy-0", curves[0]);
  h.finish_copy("copy-1-retry", curves[1]);
  h.finish_copy("copy-2", curves[2]);
  h.finish_copy("copy-4", curves[3]);
  auto const& done = h.advance();
  auto const* f = finish_of(done.commands);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(h.state.finished_model_dirs,
            (std::vector<std::string>{"trials/copy-0", "trials/copy-1-retry", "trials/copy-2",
                                      "trials/copy-4"}));
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("status"), "measured");
  EXPECT_EQ(num(r.at("variance_value")), pt::stats::coefficient_of_variation(finals).value);
  EXPECT_EQ(num(r.at("smoothness_value")), pt::stats::smoothness(curves).value().mean.value);
  auto const& copies = r.at("copies").as_array();
  ASSERT_EQ(copies.size(), 4u);
  EXPECT_EQ(copies[1].at("trial_id"), "copy-1-retry");
  EXPECT_EQ(copies[1].at("retried"), true);
  auto const& left = r.at("left_out_copies").as_array();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].at("copy").to_number<int>(), 3);
  ASSERT_EQ(left[0].at("attempts").as_array().size(), 2u);
  EXPECT_EQ(left[0].at("attempts").as_array()[1].at("trial_id"), "copy-3-retry");
  EXPECT_EQ(left[0].at("attempts").as_array()[1].at("failure"), "oom");
}

TEST(VarianceTool, ACopyThatStopsShortOf100PctOrEndsInNanIsAFailure) {
  harness h;
  h.to_measure();
  h.set(status("copy-0", trial_phase::succeeded, {{50.0, 49, 0.5}}));
  h.set(status("copy-1", trial_phase::succeeded, {{50.0, 49, 0.5}, {100.0, 99, std::nan("")}}));
  auto const l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(h.state.copies[0].attempts[0].outcome, wf::attempt_outcome::failed);
  EXPECT_NE(h.state.copies[0].attempts[0].message.find("without reaching 100%"), std::string::npos);
  EXPECT_EQ(h.state.copies[1].attempts[0].failure, failure_kind::diverged);
}

TEST(VarianceTool, FewerThanTwoCopiesSaySo) {
  wf::variance_options o;
  o.copies = 2;
  harness h(o);
  h.to_measure();
  h.finish_copy("copy-0", rising(0.8));
  h.set(status("copy-1", trial_phase::failed, {}, failure_kind::crashed));
  h.advance();
  h.set(status("copy-1-retry", trial_phase::failed, {}, failure_kind::crashed));
  auto const& done = h.advance();
  auto const* f = finish_of(done.commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("status"), "too_few_copies");
  EXPECT_TRUE(r.at("variance_value").is_null());
  EXPECT_EQ(r.at("variance_verdict"), "undefined");
  EXPECT_EQ(r.at("variance_reason"), "too_few_copies");
  EXPECT_NE(std::string(r.at("variance_info").as_string()).find("1 of 2 copies finished"),
            std::string::npos);
  EXPECT_TRUE(r.at("variance_ci").is_null());
  // The one curve still has a smoothness.
  EXPECT_EQ(r.at("smoothness_verdict"), "good");
  EXPECT_NE(f->summary.find("too few copies"), std::string::npos);
}

TEST(VarianceTool, FlatCurvesAndAZeroMeanAreNeverGood) {
  harness h;
  h.to_measure();
  for (int c = 0; c < 5; ++c)
    h.finish_copy("copy-" + std::to_string(c), {{50.0, 49, 0.0}, {100.0, 99, 0.0}});
  auto const* f = finish_of(h.advance().commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("variance_verdict"), "undefined");
  EXPECT_EQ(r.at("variance_reason"), "zero_mean");
  EXPECT_TRUE(r.at("variance_value").is_null());
  EXPECT_EQ(r.at("smoothness_verdict"), "undefined");
  EXPECT_EQ(r.at("smoothness_reason"), "flat_curve");
  EXPECT_EQ(num(r.at("smoothness_value")), 0.0);
  EXPECT_NE(std::string(r.at("variance_info").as_string()).find("undefined"), std::string::npos);
  EXPECT_NE(std::string(r.at("smoothness_info").as_string()).find("undefined"), std::string::npos);
  EXPECT_EQ(r.at("advice").as_array().size(), 2u);
}

TEST(VarianceTool, HighVarianceAndRoughCurvesAreTooHighWithTheSeedsAdvice) {
  harness h;
  h.to_measure();
  std::vector<double> const finals{0.1, 0.9, 0.05, 0.8, 0.02};
  std::vector<std::vector<curve_point>> curves;
  for (double a : finals) curves.push_back(zigzag(a));
  for (int c = 0; c < 5; ++c) h.finish_copy("copy-" + std::to_string(c), curves[c]);
  auto const* f = finish_of(h.advance().commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  auto const cv = pt::stats::coefficient_of_variation(finals);
  auto const sm = pt::stats::smoothness(curves).value().mean;
  ASSERT_GT(cv.value, pt::stats::max_good_variance);
  ASSERT_GT(sm.value, pt::stats::max_good_smoothness);
  EXPECT_EQ(r.at("variance_verdict"), "too_high");
  EXPECT_EQ(r.at("smoothness_verdict"), "too_high");
  char buf[64];
  auto const end = std::to_chars(buf, buf + sizeof buf, cv.value).ptr;
  EXPECT_EQ(std::string(r.at("variance_info").as_string()),
            "Model variance is not good, measured:" + std::string(buf, end) +
                " > threshold:0.4. See proxy-task-design#variance_measurement");
  EXPECT_NE(std::string(r.at("variance_info").as_string()).find(" > threshold:0.4. "),
            std::string::npos);
  EXPECT_NE(std::string(r.at("smoothness_info").as_string()).find(" > threshold:10. "),
            std::string::npos);
  auto const& advice = r.at("advice").as_array();
  ASSERT_EQ(advice.size(), 2u);
  EXPECT_NE(std::string(advice[0].as_string()).find("cosine"), std::string::npos);
  EXPECT_NE(std::string(advice[1].as_string()).find("augmentation"), std::string::npos);
  EXPECT_NE(std::string(advice[1].as_string()).find("moving average"), std::string::npos);
}

TEST(VarianceTool, DescribesEachPhaseWithItsDecisionAndProgress) {
  harness h;
  auto d = h.tool.describe(h.state, h.obs);
  EXPECT_EQ(d.phase, "find_workable");
  EXPECT_EQ(d.decision, "sampling the first model");
  h.advance();
  h.set(status("workable-0", trial_phase::failed, {}, pt::protocol::failure_kind::oom));
  h.advance();
  d = h.tool.describe(h.state, h.obs);
  EXPECT_EQ(d.fraction_done, 0.0);
  EXPECT_NE(d.decision.find("training workable-1"), std::string::npos) << d.decision;
  EXPECT_NE(d.decision.find("try 2 of 10"), std::string::npos) << d.decision;
  EXPECT_NE(d.decision.find("workable-0 was not (oom: failed: oom)"), std::string::npos)
      << d.decision;

  h.set(status("workable-1", trial_phase::succeeded, {{1.0, 9, 0.12}}));
  h.advance();
  h.set(status("copy-0", trial_phase::running, {{50.0, 90, 0.5}}));
  h.finish_copy("copy-1", rising(0.8));
  h.advance();
  d = h.tool.describe(h.state, h.obs);
  EXPECT_EQ(d.phase, "measure");
  ASSERT_TRUE(d.fraction_done);
  EXPECT_DOUBLE_EQ(*d.fraction_done, 1.5 / 5.0);  // copy-1 done, copy-0 half way
  EXPECT_NE(d.decision.find("workable-1 (model-"), std::string::npos) << d.decision;
  EXPECT_NE(d.decision.find("1 finished, 0 retrying after a failure, 0 left out"),
            std::string::npos)
      << d.decision;

  for (std::size_t c = 0; c < 5; ++c) h.finish_copy("copy-" + std::to_string(c), rising(0.8));
  h.advance();
  d = h.tool.describe(h.state, h.obs);
  EXPECT_EQ(d.phase, "done");
  EXPECT_EQ(d.fraction_done, 1.0);
  EXPECT_EQ(d.decision, h.tool.result_of(h.state).summary);
}

TEST(VarianceTool, ARecordedTrialMissingFromTheObservationIsLaunchedAgain) {
  harness h;
  h.to_measure();
  // A controller killed after persisting the measure state and before launching: the executor
  // knows copy-0..2 only. copy-3 and copy-4 are launched again, with the same seeds.
  wf::observation partial = h.obs;
  partial.trials.erase(partial.trials.end() - 2, partial.trials.end());
  auto const s = h.tool.advance(h.state, partial);
  auto const l = launches(s.commands);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].trial_id, "copy-3");
  EXPECT_EQ(l[0].seed, h.state.copies[3].attempts[0].seed);
  EXPECT_EQ(l[1].trial_id, "copy-4");
  EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(h.state));
}

TEST(VarianceState, RoundTripsThroughJsonAtEveryPhase) {
  harness h;
  // The harness checks the round trip at each advance; check the fields of the file here too.
  h.advance();
  h.set(status("workable-0", trial_phase::failed, {}, failure_kind::oom));
  h.advance();
  auto v = boost::json::value_from(h.state).as_object();
  EXPECT_EQ(v.at("schema_version"), 1);
  EXPECT_EQ(v.at("phase"), "find_workable");
  EXPECT_EQ(v.at("workable_model_dir"), "");
  EXPECT_EQ(v.at("training_job_name"), "");
  EXPECT_TRUE(v.at("finished_model_dirs").as_array().empty());
  EXPECT_EQ(v.at("tries").as_array()[0].at("failure"), "oom");
  EXPECT_TRUE(v.at("workable_try").is_null());

  h.set(status("workable-1", trial_phase::succeeded, {{1.0, 9, 0.2}}));
  h.advance();
  h.finish_copy("copy-0", {{50.0, 49, std::nan("")}, {100.0, 99, 0.7}});
  h.advance();
  v = boost::json::value_from(h.state).as_object();
  EXPECT_EQ(v.at("phase"), "measure");
  EXPECT_EQ(v.at("workable_model_dir"), "trials/workable-1");
  EXPECT_EQ(v.at("workable_try"), 1);
  auto const& curve = v.at("copies").as_array()[0].at("attempts").as_array()[0].at("curve");
  EXPECT_TRUE(curve.as_array()[0].at("accuracy").is_null()) << "NaN is written as null";
  auto const back = round_trip(h.state);
  EXPECT_TRUE(std::isnan(back.copies[0].attempts[0].curve[0].accuracy));
  EXPECT_EQ(back.copies[0].attempts[0].final_accuracy, 0.7);

  for (int c = 1; c < 5; ++c) h.finish_copy("copy-" + std::to_string(c), rising(0.7));
  h.advance();
  EXPECT_EQ(h.state.phase, measurement_phase::done);
  EXPECT_EQ(boost::json::value_from(round_trip(h.state)), boost::json::value_from(h.state));
  // Also through Boost.JSON's generic conversion.
  auto const generic =
      boost::json::try_value_to<wf::variance_state>(boost::json::value_from(h.state));
  ASSERT_TRUE(generic.has_value());
  EXPECT_EQ(boost::json::value_from(*generic), boost::json::value_from(h.state));
}

TEST(VarianceState, ErrorsNameTheFileAndThePointer) {
  harness h;
  h.to_measure();
  auto const good = boost::json::value_from(h.state);
  pt::json_location const file("run/measurement_state.json");

  auto v = good;
  v.as_object()["schema_version"] = 2;
  auto r = wf::variance_state_from_json(v, file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("run/measurement_state.json#/schema_version"), std::string::npos)
      << r.error().context;
  EXPECT_NE(r.error().context.find("newer"), std::string::npos);

  v = good;
  v.as_object()["copies"].as_array()[2].as_object()["attempts"].as_array()[0].as_object().erase(
      "seed");
  r = wf::variance_state_from_json(v, file);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::malformed_file);
  EXPECT_NE(r.error().context.find("#/copies/2/attempts/0/seed: missing"), std::string::npos)
      << r.error().context;

  v = good;
  v.as_object()["phase"] = "measuring";
  r = wf::variance_state_from_json(v, file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("#/phase"), std::string::npos);

  v = good;
  v.as_object()["workable_try"] = 7;
  r = wf::variance_state_from_json(v, file);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("#/workable_try"), std::string::npos);

  v = good;
  v.as_object()["tries"].as_array()[0].as_object()["outcome"] = "won";
  EXPECT_FALSE(boost::json::try_value_to<wf::variance_state>(v).has_value());
}

TEST(VarianceTool, IsDeterministicAcrossToolInstancesAndSeedsMatter) {
  auto run = [](std::uint64_t seed) {
    wf::variance_options o;
    o.seed = seed;
    harness h(o);
    h.to_measure();
    for (int c = 0; c < 5; ++c) h.finish_copy("copy-" + std::to_string(c), rising(0.6 + 0.01 * c));
    auto const* f = finish_of(h.advance().commands);
    return f ? boost::json::value(f->result) : boost::json::value(nullptr);
  };
  auto const a = run(1), b = run(1), c = run(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.at("copies").as_array()[0].at("seed"), c.at("copies").as_array()[0].at("seed"));
  // Same accuracies: same variance; the interval's resamples depend on the seed.
  EXPECT_EQ(a.at("variance_value"), c.at("variance_value"));
}

// ---- end to end: the driver on the simulated executor ------------------------------------------

pt::exec::simulated_options sim_options(double oom_rate = 0) {
  pt::exec::simulated_options o;
  o.poll_interval_s = 100;
  o.steps_per_second = 4;  // 400 steps = 40% per poll
  o.total_steps = 1000;
  o.cycle_steps = 50;
  o.oom_rate = oom_rate;
  o.noise = 0.02;
  o.seed = 7;
  return o;
}

boost::json::value read_json(std::filesystem::path const& p) {
  return pt::parse_json(pt::read_file(p).value(), p.string()).value();
}

TEST(VarianceToolEndToEnd, MeasuresOnTheSimulatedExecutor) {
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  auto const tool = make_tool();
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message() << " " << r.error().context;
  auto const& o = r->as_object();
  EXPECT_EQ(o.at("status"), "measured");
  EXPECT_EQ(read_json(dir.path() / "variance_and_smoothness.json"), *r);

  // The numbers are stats' functions of the curves the trials wrote.
  auto const state = read_json(dir.path() / "measurement_state.json");
  EXPECT_EQ(state.at("phase"), "done");
  EXPECT_EQ(state.at("schema_version"), 1);
  EXPECT_EQ(state.at("workable_model_dir"), "trials/workable-0");
  auto const& dirs = state.at("finished_model_dirs").as_array();
  ASSERT_EQ(dirs.size(), 5u);
  std::vector<double> finals;
  std::vector<std::vector<curve_point>> curves;
  for (auto const& d : dirs) {
    auto const m = pt::protocol::read_metrics(dir.path() / std::string(d.as_string())).value();
    curves.push_back(m.points);
    finals.push_back(pt::stats::final_accuracy(m.points).value());
  }
  EXPECT_EQ(num(o.at("variance_value")), pt::stats::coefficient_of_variation(finals).value);
  EXPECT_EQ(num(o.at("smoothness_value")), pt::stats::smoothness(curves).value().mean.value);
  EXPECT_EQ(o.at("variance_verdict"), "good");
}

TEST(VarianceToolEndToEnd, SurvivesOomsAndResumesAfterRestartsWithTheSameResult) {
  auto const tool = make_tool();
  pt::testing::temp_dir base;
  boost::json::value expected;
  {
    pt::exec::simulated_executor exec(base.path(), sim_options(0.4));
    auto const r = wf::run(tool, exec, {.run_dir = base.path()});
    ASSERT_TRUE(r) << r.error().message() << " " << r.error().context;
    expected = *r;
  }
  auto const state = read_json(base.path() / "measurement_state.json");
  std::size_t attempts = state.at("tries").as_array().size();
  for (auto const& c : state.at("copies").as_array())
    attempts += c.at("attempts").as_array().size();
  EXPECT_GT(attempts, 6u) << "some trials ran out of memory and were replaced";
  EXPECT_EQ(state.at("phase"), "done");

  pt::testing::temp_dir dir;
  // max_polls = 2: the driver returns before the wait of its last poll, and the simulated
  // clock advances only in wait_for_next_poll; each restart thus moves time one poll on.
  for (int restarts = 0; restarts < 200; ++restarts) {
    pt::exec::simulated_executor exec(dir.path(), sim_options(0.4));
    auto const r = wf::run(tool, exec, {.run_dir = dir.path(), .max_polls = 2});
    if (r) {
      EXPECT_EQ(*r, expected);
      EXPECT_EQ(read_json(dir.path() / "measurement_state.json"), state);
      return;
    }
    ASSERT_EQ(r.error().code, pt::errc::cancelled) << r.error().message();
  }
  FAIL() << "did not finish";
}

}  // namespace
