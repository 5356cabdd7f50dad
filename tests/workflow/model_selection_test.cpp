#include <proxytask/workflow/model_selection.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/protocol/files.hpp>
#include <proxytask/protocol/trainer.hpp>
#include <proxytask/stats/pruning.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>
#include <conformance/json_conventions.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
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
using pt::testing::stops;
using wf::selection_fate;
using wf::selection_phase;
using wf::selection_verdict;
using wf::trial_phase;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

pt::protocol::model_spec sample(std::uint64_t seed) {
  return {"model-" + std::to_string(seed), boost::json::object{{"seed", seed}, {"width", 32}}};
}

/// 6 models, 2 removed per iteration, 2 final: 6 at 16.67%, 4 at 41.67%, 2 to completion.
wf::model_selection_tool_options small(wf::model_selection_tool_options o = {}) {
  o.schedule = {.start_num_models = 6, .final_num_models = 2, .num_models_to_remove_per_iter = 2};
  o.proxy_args = {{"data_pct", "25"}};
  return o;
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

wf::model_selection_state round_trip(wf::model_selection_state const& s) {
  auto const text = boost::json::serialize(boost::json::value_from(s));
  auto const back = pt::parse_json(text, "MODEL_SELECTION_STATE.json");
  EXPECT_TRUE(back.has_value());
  auto const st =
      wf::model_selection_state_from_json(*back, pt::json_location("MODEL_SELECTION_STATE.json"));
  EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().context);
  return *st;
}

/// Drives the tool by hand: the observation holds every launched trial; tests set their status.
struct harness {
  wf::model_selection_tool tool;
  wf::model_selection_state state;
  wf::observation obs;
  std::vector<wf::step<wf::model_selection_state>> history;

  explicit harness(wf::model_selection_tool_options o = small())
      : tool(sample, std::move(o)), state(tool.initial()) {}

  wf::step<wf::model_selection_state> const& advance() {
    auto s = tool.advance(state, obs);
    // Every step: deterministic, the same after a JSON round trip of the state, a pure
    // describe(), and never a launch of a trial the observation lists.
    auto again = tool.advance(state, obs);
    EXPECT_EQ(commands_json(s.commands), commands_json(again.commands));
    EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(again.next));
    auto resumed = tool.advance(round_trip(state), obs);
    EXPECT_EQ(commands_json(s.commands), commands_json(resumed.commands));
    EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(resumed.next));
    EXPECT_EQ(boost::json::value_from(round_trip(s.next)), boost::json::value_from(s.next));
    auto const d1 = tool.describe(s.next, obs), d2 = tool.describe(s.next, obs);
    EXPECT_EQ(d1.decision, d2.decision);
    EXPECT_EQ(d1.phase, d2.phase);
    for (auto const& l : launches(s.commands)) {
      EXPECT_EQ(obs.find(l.trial_id), nullptr) << "relaunched " << l.trial_id;
      obs.trials.push_back(status(l.trial_id, trial_phase::pending));
    }
    state = s.next;
    history.push_back(std::move(s));
    return history.back();
  }

  wf::trial_status& get(std::string const& id) {
    for (auto& x : obs.trials)
      if (x.trial_id == id) return x;
    ADD_FAILURE() << "no trial " << id;
    static wf::trial_status none;
    return none;
  }

  void set(wf::trial_status t) { get(t.trial_id) = std::move(t); }

  wf::selection_round const& current() const { return state.iterations.back(); }

  /// Every running trial of the current iteration ends at its pct with accuracy acc(model index)
  /// (a single point at the pct, or at 100% in the last iteration).
  template <class Acc>
  void train_all(Acc acc, double latency = pt::protocol::latency_not_measured) {
    auto const& r = current();
    double const pct = r.last ? 100.0 : r.desired_training_step_pct;
    for (auto const& t : r.trials) {
      if (t.verdict != selection_verdict::running) continue;
      auto s = status(t.trial_id, trial_phase::succeeded, {{pct, 9, acc(t.model_index)}});
      s.metrics.latency = latency;
      set(std::move(s));
    }
  }
};

double num(boost::json::value const& v) { return v.to_number<double>(); }

std::string id(std::size_t i, std::size_t m) {
  return "iter-" + std::to_string(i) + "-model-" + std::to_string(m);
}

std::vector<std::string> ids(boost::json::value const& a) {
  std::vector<std::string> out;
  for (auto const& v : a.as_array()) out.emplace_back(v.as_string());
  return out;
}

// ---- the state machine, step by step ---------------------------------------------------------

TEST(ModelSelection, SatisfiesTheToolConcepts) {
  static_assert(wf::tool<wf::model_selection_tool>);
  static_assert(wf::describable<wf::model_selection_tool>);
  EXPECT_EQ(wf::model_selection_tool::state_file_name, "MODEL_SELECTION_STATE.json");
  EXPECT_EQ(wf::model_selection_tool::tool_name, "model selection");
  wf::model_selection_tool const tool(sample);
  auto const s = tool.initial();
  EXPECT_EQ(s.start_num_models, 30u);
  EXPECT_EQ(s.final_num_models, 10u);
  EXPECT_EQ(s.num_models_to_remove_per_iter, 5u);
  EXPECT_EQ(s.phase, selection_phase::training);
  EXPECT_TRUE(s.iterations.empty());
  EXPECT_EQ(tool.max_failed_trials(), 6u) << "20% of 30";
  EXPECT_EQ(tool.refill_budget(), 6u);
  ASSERT_EQ(tool.planned_schedule().size(), 5u);
  EXPECT_EQ(tool.planned_schedule()[3].desired_training_step_pct, 19.0);
}

TEST(ModelSelection, RejectsConfigurationsThatCannotFinishUpFront) {
  wf::model_selection_tool_options o;
  o.schedule = {.start_num_models = 8, .final_num_models = 5, .num_models_to_remove_per_iter = 0};
  try {
    wf::model_selection_tool const tool(sample, o);
    ADD_FAILURE() << "accepted a schedule that never shrinks";
  } catch (pt::logic_error const& e) {
    EXPECT_NE(std::string(e.what()).find("never shrink"), std::string::npos) << e.what();
  }
  o.schedule = {.start_num_models = 43, .final_num_models = 1, .num_models_to_remove_per_iter = 10};
  try {
    wf::model_selection_tool const tool(sample, o);
    ADD_FAILURE() << "accepted a schedule whose pct passes 100";
  } catch (pt::logic_error const& e) {
    EXPECT_NE(std::string(e.what()).find("> 100%"), std::string::npos) << e.what();
  }
  EXPECT_THROW(wf::model_selection_tool(nullptr), pt::logic_error);
  o = {};
  o.max_failed_fraction = 1.5;
  EXPECT_THROW(wf::model_selection_tool(sample, o), pt::logic_error);
  o = {};
  o.latency_wait_s = -1;
  EXPECT_THROW(wf::model_selection_tool(sample, o), pt::logic_error);
  o = {};
  o.schedule.start_num_models = 0;
  EXPECT_THROW(wf::model_selection_tool(sample, o), pt::logic_error);
}

TEST(ModelSelection, LaunchesTheFirstIterationWithDeterministicIdsAndSeeds) {
  harness h;
  auto const l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 6u);
  std::set<std::uint64_t> seeds;
  for (std::size_t m = 0; m < 6; ++m) {
    EXPECT_EQ(l[m].trial_id, id(0, m));
    EXPECT_EQ(l[m].seed, h.tool.model_seed(m));
    EXPECT_LT(l[m].seed, 1ULL << 31);
    EXPECT_EQ(l[m].spec.model_id, sample(l[m].seed).model_id);
    EXPECT_EQ(l[m].desired_pct, (1.0 / 6) * 100.0);
    EXPECT_EQ(l[m].proxy_args.at("data_pct"), "25");
    EXPECT_FALSE(l[m].resume_from);
    seeds.insert(l[m].seed);
  }
  EXPECT_EQ(seeds.size(), 6u);
  auto const& r = h.current();
  EXPECT_EQ(r.num_trials, 6u);
  EXPECT_EQ(r.search_job_name, "model_selection_iter_0");
  EXPECT_FALSE(r.last);
  // Running, or pending: nothing to do.
  h.set(status(id(0, 0), trial_phase::running, {{10.0, 5, 0.3}}));
  EXPECT_TRUE(h.advance().commands.empty());
}

TEST(ModelSelection, ContinuesKeptModelsFromTheirCheckpointsToTheSchedulesPct) {
  harness h;
  h.advance();
  std::vector<double> const acc0{0.10, 0.11, 0.30, 0.50, 0.51, 0.90};
  h.train_all([&](std::size_t m) { return acc0[m]; });
  auto const& step1 = h.advance();
  // Pruning on the accuracy alone, exactly stats::prune_trials.
  std::vector<pt::stats::trial_scores> scores;
  for (double a : acc0) scores.push_back({a, nan});
  auto const expected = pt::stats::prune_trials(scores, 2, false);
  auto const& r0 = h.state.iterations[0];
  ASSERT_TRUE(r0.concluded);
  ASSERT_EQ(r0.removed_trials.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k) EXPECT_EQ(r0.removed_trials[k], id(0, expected.removed[k]));
  ASSERT_EQ(r0.trials_to_retrain.size(), 4u);
  EXPECT_EQ(r0.num_models_to_remove, 2u);

  auto l = launches(step1.commands);
  ASSERT_EQ(l.size(), 4u);
  double const pct1 = wf::next_desired_training_step_pct((1.0 / 6) * 100.0, 4, 2);
  for (std::size_t k = 0; k < 4; ++k) {
    std::size_t const m = expected.kept[k];
    EXPECT_EQ(l[k].trial_id, id(1, m));
    EXPECT_EQ(l[k].resume_from, id(0, m)) << "continues from its checkpoint";
    EXPECT_EQ(l[k].seed, h.state.iterations[0].trials[m].seed) << "one run, one seed";
    EXPECT_EQ(boost::json::value_from(l[k].spec),
              boost::json::value_from(h.state.iterations[0].trials[m].spec));
    EXPECT_EQ(l[k].desired_pct, pct1);
    EXPECT_EQ(r0.trials_to_retrain[k], id(0, m));
  }
  EXPECT_EQ(h.current().num_trials, 4u);
  EXPECT_EQ(h.current().search_job_name, "model_selection_iter_1");

  // Iteration 1: the metrics carry over (the earlier point is still in the curve).
  for (auto const& t : h.current().trials)
    h.set(status(
        t.trial_id, trial_phase::succeeded,
        {{(1.0 / 6) * 100.0, 4, acc0[t.model_index]}, {pct1, 9, acc0[t.model_index] + 0.1}}));
  l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(h.current().desired_training_step_pct, wf::train_to_completion_pct);
  EXPECT_TRUE(h.current().last);
  for (auto const& x : l) {
    EXPECT_EQ(x.desired_pct, wf::train_to_completion_pct);
    EXPECT_EQ(x.resume_from->substr(0, 7), "iter-1-");
  }
  EXPECT_TRUE(h.state.iterations[1].trials[0].accuracy > acc0[expected.kept[0]]);

  // The last iteration: trained to completion; these are the reference models.
  h.train_all([](std::size_t m) { return 0.6 + 0.01 * static_cast<double>(m); });
  auto const& done = h.advance();
  EXPECT_EQ(h.state.phase, selection_phase::done);
  auto const* f = finish_of(done.commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("status"), "complete");
  EXPECT_EQ(r.at("num_reference_models"), 2);
  EXPECT_EQ(f->files.at("MODEL_SELECTION_RESULT.json"), f->result);
  auto const& refs = r.at("reference_models").as_array();
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_LT(refs[0].at("model_index").to_number<int>(), refs[1].at("model_index").to_number<int>());
  for (auto const& ref : refs) {
    auto const m = ref.at("model_index").to_number<std::size_t>();
    EXPECT_EQ(ref.at("trial_id").as_string(), id(2, m));
    EXPECT_EQ(ref.at("trial_dir").as_string(), "trials/" + id(2, m));
    EXPECT_EQ(num(ref.at("accuracy")), 0.6 + 0.01 * static_cast<double>(m));
    EXPECT_TRUE(ref.at("latency").is_null());
    EXPECT_EQ(ref.at("seed"), h.state.iterations[0].trials[m].seed);
  }
  auto const& its = r.at("iterations").as_array();
  ASSERT_EQ(its.size(), 3u);
  EXPECT_EQ(its[2].at("desired_training_step_pct"), 101.0);
  EXPECT_TRUE(its[2].at("trials_to_retrain").as_array().empty());
  // A finished state keeps answering with the same finish.
  auto const again = h.tool.advance(h.state, h.obs);
  ASSERT_NE(finish_of(again.commands), nullptr);
  EXPECT_EQ(finish_of(again.commands)->result, f->result);
  EXPECT_TRUE(launches(again.commands).empty());
}

TEST(ModelSelection, PrunesOnAccuracyAndLatencyPreferringTheMeasuredLatency) {
  auto o = small();
  o.latency = wf::latency_source::trainer;
  harness h(o);
  h.advance();
  std::vector<double> const acc{0.50, 0.51, 0.52, 0.53, 0.54, 0.55};
  std::vector<double> const lat{1.0, 50.0, 2.0, 90.0, 3.0, 100.0};
  for (std::size_t m = 0; m < 6; ++m) {
    auto s = status(id(0, m), trial_phase::succeeded, {{20.0, 9, acc[m]}});
    s.metrics.latency = 1000.0;  // the trainer's own, overridden by the calculator's
    s.measured_latency = lat[m];
    h.set(std::move(s));
  }
  h.advance();
  std::vector<pt::stats::trial_scores> scores;
  for (std::size_t m = 0; m < 6; ++m) scores.push_back({acc[m], lat[m]});
  auto const with_latency = pt::stats::prune_trials(scores, 2, true);
  for (auto& s : scores) s.latency = nan;
  auto const accuracy_only = pt::stats::prune_trials(scores, 2, false);
  ASSERT_NE(with_latency.removed, accuracy_only.removed) << "a test where latency matters";
  auto const& r0 = h.state.iterations[0];
  ASSERT_EQ(r0.removed_trials.size(), 2u);
  for (std::size_t k = 0; k < 2; ++k)
    EXPECT_EQ(r0.removed_trials[k], id(0, with_latency.removed[k]));
  EXPECT_EQ(r0.trials[1].latency, 50.0);

  // Without a measured latency, the trainer's; without either (required), invalid.
  for (auto const& t : h.current().trials) {
    auto s = status(t.trial_id, trial_phase::succeeded, {{50.0, 9, 0.6}});
    s.metrics.latency = t.model_index == h.current().trials[0].model_index ? -1.0 : 7.0;
    h.set(std::move(s));
  }
  h.advance();
  auto const& r1 = h.state.iterations[1];
  EXPECT_EQ(r1.trials[1].latency, 7.0);
  // The model's latency from iteration 0 carries over when the trainer reports none now.
  EXPECT_EQ(r1.trials[0].verdict, selection_verdict::valid);
  EXPECT_EQ(r1.trials[0].latency, lat[r1.trials[0].model_index]);
}

TEST(ModelSelection, MissingRequiredLatencyIsInvalidAndOptionalLatencyIsNot) {
  auto o = small();
  o.latency = wf::latency_source::trainer;
  o.max_refills = 0;
  o.max_failed_fraction = 1;
  {
    harness h(o);
    h.advance();
    h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); }, -1.0);
    h.advance();
    for (auto const& t : h.state.iterations[0].trials) {
      EXPECT_EQ(t.verdict, selection_verdict::invalid);
      EXPECT_EQ(t.reason, wf::invalid_reason::no_latency);
    }
    EXPECT_EQ(h.state.phase, selection_phase::done);
    EXPECT_EQ(finish_of(h.history.back().commands)->result.at("status"), "no_valid_models");
  }
  o.latency_required = false;
  harness h(o);
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); }, -1.0);
  h.advance();
  for (auto const& t : h.state.iterations[0].trials)
    EXPECT_NE(t.verdict, selection_verdict::invalid);
  EXPECT_EQ(h.state.iterations[0].removed_trials.size(), 2u);
}

TEST(ModelSelection, ZeroAccuracyIsAScoreAndNanMakesATrialInvalid) {
  auto o = small();
  o.max_refills = 0;  // keep the invalid trial in the iteration
  o.max_failed_fraction = 1;
  harness h(o);
  h.advance();
  std::vector<double> const acc{0.0, nan, 0.2, 0.4, 0.6, 0.8};
  h.train_all([&](std::size_t m) { return acc[m]; });
  h.advance();
  auto const& r0 = h.state.iterations[0];
  EXPECT_EQ(r0.trials[0].verdict, selection_verdict::valid) << "0.0 is a score";
  EXPECT_EQ(r0.trials[0].accuracy, 0.0);
  EXPECT_EQ(r0.trials[1].verdict, selection_verdict::invalid);
  EXPECT_EQ(r0.trials[1].reason, wf::invalid_reason::nan_accuracy);
  EXPECT_EQ(r0.trials[1].failure, failure_kind::diverged);
  EXPECT_EQ(r0.trials[1].fate, selection_fate::invalid);
  // The invalid trial counts towards the 2 removals: one valid trial is removed.
  EXPECT_EQ(r0.invalid_trials, std::vector<std::string>{id(0, 1)});
  EXPECT_EQ(r0.removed_trials.size(), 1u);
  EXPECT_EQ(r0.trials_to_retrain.size(), 4u);
  EXPECT_EQ(h.current().num_trials, 4u);
}

TEST(ModelSelection, NotReachingThePctOrFailingIsInvalid) {
  auto o = small();
  o.max_refills = 0;
  o.max_failed_fraction = 1;
  harness h(o);
  h.advance();
  h.set(status(id(0, 0), trial_phase::succeeded, {{10.0, 4, 0.3}}));  // short of 16.67%
  h.set(status(id(0, 1), trial_phase::succeeded));                    // no metrics at all
  h.set(status(id(0, 2), trial_phase::failed, {{20.0, 9, 0.3}}, failure_kind::oom));
  h.advance();
  auto const& t = h.state.iterations[0].trials;
  EXPECT_EQ(t[0].reason, wf::invalid_reason::pct_not_reached);
  EXPECT_NE(t[0].message.find("at 10%"), std::string::npos) << t[0].message;
  EXPECT_EQ(t[1].reason, wf::invalid_reason::pct_not_reached);
  EXPECT_EQ(t[1].failure, failure_kind::no_metrics);
  EXPECT_EQ(t[2].reason, wf::invalid_reason::failed);
  EXPECT_EQ(t[2].failure, failure_kind::oom);
  EXPECT_EQ(t[2].message, "failed: oom");
  EXPECT_EQ(t[3].verdict, selection_verdict::running);
}

TEST(ModelSelection, FirstIterationFailuresAreReplacedByFreshSamplesUpToTheBudget) {
  auto o = small();
  o.max_failed_fraction = 0.5;  // 3 failures allowed
  o.max_refills = 2;
  harness h(o);
  EXPECT_EQ(h.tool.max_failed_trials(), 3u);
  h.advance();
  h.set(status(id(0, 0), trial_phase::failed, {}, failure_kind::oom));
  auto l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].trial_id, id(0, 6)) << "a new model index";
  EXPECT_FALSE(l[0].resume_from);
  EXPECT_EQ(l[0].desired_pct, (1.0 / 6) * 100.0);
  std::set<std::uint64_t> seeds;
  for (auto const& t : h.state.iterations[0].trials) seeds.insert(t.seed);
  EXPECT_EQ(seeds.size(), 7u) << "a new seed";
  EXPECT_EQ(h.state.iterations[0].trials[0].fate, selection_fate::replaced);
  EXPECT_EQ(h.state.iterations[0].trials[0].replaced_by, id(0, 6));

  h.set(status(id(0, 1), trial_phase::failed, {}, failure_kind::crashed));
  h.set(status(id(0, 6), trial_phase::failed, {}, failure_kind::diverged));
  l = launches(h.advance().commands);
  ASSERT_EQ(l.size(), 1u) << "the budget of 2 is spent";
  EXPECT_EQ(l[0].trial_id, id(0, 7));
  EXPECT_EQ(h.state.phase, selection_phase::training) << "3 failures: within the gate";
  EXPECT_FALSE(h.state.iterations[0].trials[6].replaced_by);

  h.train_all([](std::size_t m) { return 0.1 + 0.05 * static_cast<double>(m); });
  h.advance();
  auto const& r0 = h.state.iterations[0];
  EXPECT_EQ(r0.num_trials, 6u);
  // The iteration's 6 models: 2..5, 6 (failed, not replaced) and 7; the unreplaced failure
  // counts towards the removals.
  EXPECT_EQ(r0.invalid_trials, std::vector<std::string>{id(0, 6)});
  EXPECT_EQ(r0.removed_trials.size(), 1u);
  EXPECT_EQ(r0.trials_to_retrain.size(), 4u);
  auto const& r = h.tool
                      .result_of([&] {
                        auto s = h.state;
                        s.phase = selection_phase::done;
                        return s;
                      }())
                      .result;
  EXPECT_EQ(r.at("first_iteration_failures"), 3);
  auto const& failures = r.at("failures").as_array();
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].at("trial_id").as_string(), id(0, 0));
  EXPECT_EQ(failures[0].at("failure"), "oom");
  EXPECT_EQ(failures[0].at("replaced_by").as_string(), id(0, 6));
  EXPECT_TRUE(failures[2].at("replaced_by").is_null());
}

TEST(ModelSelection, FirstIterationRefillsKeepStartNumModelsValid) {
  harness h;  // default gate: 1 failure of 6 allowed, 1 refill
  h.advance();
  h.set(status(id(0, 3), trial_phase::failed, {}, failure_kind::crashed));
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 + 0.05 * static_cast<double>(m); });
  h.advance();
  auto const& r0 = h.state.iterations[0];
  EXPECT_TRUE(r0.invalid_trials.empty());
  EXPECT_EQ(r0.removed_trials.size(), 2u) << "6 valid models, 2 removed";
  EXPECT_EQ(h.current().num_trials, 4u);
}

TEST(ModelSelection, MoreThanTheGateOfFirstIterationFailuresAbortsWithAReport) {
  wf::model_selection_tool_options o;
  o.schedule = {.start_num_models = 10, .final_num_models = 4, .num_models_to_remove_per_iter = 3};
  harness h(o);
  EXPECT_EQ(h.tool.max_failed_trials(), 2u);
  h.advance();
  h.set(status(id(0, 0), trial_phase::failed, {}, failure_kind::oom));
  h.set(status(id(0, 1), trial_phase::failed, {}, failure_kind::crashed));
  EXPECT_EQ(launches(h.advance().commands).size(), 2u) << "both replaced";
  h.set(status(id(0, 2), trial_phase::succeeded, {{10.0, 4, nan}}));
  h.set(status(id(0, 4), trial_phase::running, {{5.0, 4, 0.1}}));
  auto const& aborted = h.advance();
  EXPECT_EQ(h.state.phase, selection_phase::aborted);
  EXPECT_TRUE(launches(aborted.commands).empty());
  // Every trial that still runs is stopped, then the finish.
  auto const stopped = stops(aborted.commands);
  EXPECT_EQ(stopped.size(), 9u);  // 3, 4, ..., 9 and the two refills
  EXPECT_EQ(std::count(stopped.begin(), stopped.end(), id(0, 4)), 1);
  EXPECT_TRUE(std::holds_alternative<wf::finish>(aborted.commands.back()));
  auto const* f = finish_of(aborted.commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("status"), "aborted");
  EXPECT_TRUE(r.at("reference_models").as_array().empty());
  EXPECT_EQ(r.at("first_iteration_failures"), 3);
  auto const& failures = r.at("failures").as_array();
  ASSERT_EQ(failures.size(), 3u);
  EXPECT_EQ(failures[0].at("failure"), "oom");
  EXPECT_EQ(failures[1].at("failure"), "crashed");
  EXPECT_EQ(failures[2].at("failure"), "diverged");
  EXPECT_EQ(failures[2].at("reason"), "nan_accuracy");
  std::string const message(r.at("message").as_string());
  for (std::size_t m = 0; m < 3; ++m)
    EXPECT_NE(message.find(id(0, m)), std::string::npos) << message;
  EXPECT_NE(message.find("oom"), std::string::npos);
  EXPECT_NE(message.find("20%"), std::string::npos) << message;
  EXPECT_NE(f->summary.find("aborted"), std::string::npos);
}

TEST(ModelSelection, AFinalSetBelowFinalNumModelsIsSaidSo) {
  harness h;
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  ASSERT_TRUE(h.current().last);
  auto const& last = h.current().trials;
  h.set(status(last[0].trial_id, trial_phase::succeeded, {{50.0, 4, 0.5}, {100.0, 9, 0.8}}));
  h.set(status(last[1].trial_id, trial_phase::failed, {{50.0, 4, 0.5}}, failure_kind::preempted));
  auto const* f = finish_of(h.advance().commands);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->result.at("status"), "below_final_num_models");
  EXPECT_EQ(f->result.at("num_reference_models"), 1);
  EXPECT_EQ(f->result.at("final_num_models"), 2);
  EXPECT_EQ(num(f->result.at("reference_models").as_array()[0].at("accuracy")), 0.8);
  EXPECT_EQ(h.state.iterations[2].trials[1].fate, selection_fate::invalid);
  EXPECT_EQ(h.state.iterations[2].trials[0].fate, selection_fate::reference);
}

TEST(ModelSelection, ExternalLatencyIsAwaitedUntilItsTimeout) {
  auto o = small();
  o.latency = wf::latency_source::calculator;
  o.latency_wait_s = 100;
  o.max_refills = 0;
  o.max_failed_fraction = 1;
  harness h(o);
  h.obs.now_unix_s = 1000;
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); }, 5.0);
  h.get(id(0, 0)).measured_latency = 3.0;
  h.get(id(0, 1)).measured_latency = nan;  // a failed measurement
  h.advance();
  auto const* t = &h.state.iterations[0].trials;
  EXPECT_EQ((*t)[0].verdict, selection_verdict::valid);
  EXPECT_EQ((*t)[0].latency, 3.0);
  EXPECT_EQ((*t)[1].reason, wf::invalid_reason::latency_failed);
  EXPECT_EQ((*t)[2].verdict, selection_verdict::awaiting_latency) << "the trainer's is not used";
  EXPECT_EQ((*t)[2].ended_unix_s, 1000.0);

  h.obs.now_unix_s = 1050;
  h.get(id(0, 2)).measured_latency = 4.0;
  EXPECT_TRUE(h.advance().commands.empty());
  EXPECT_EQ(h.state.iterations[0].trials[2].latency, 4.0);
  for (std::size_t m = 3; m < 6; ++m) h.get(id(0, m)).measured_latency = 10.0 * m;
  h.obs.now_unix_s = 1099;
  h.get(id(0, 5)).measured_latency.reset();
  EXPECT_TRUE(h.advance().commands.empty());
  EXPECT_EQ(h.state.iterations[0].trials[5].verdict, selection_verdict::awaiting_latency);
  h.obs.now_unix_s = 1100;
  auto const& step = h.advance();
  t = &h.state.iterations[0].trials;
  EXPECT_EQ((*t)[5].reason, wf::invalid_reason::latency_timeout);
  EXPECT_NE((*t)[5].message.find("100 s"), std::string::npos) << (*t)[5].message;
  // Two invalid: they are the iteration's 2 removals; 4 kept.
  EXPECT_EQ(launches(step.commands).size(), 4u);
  EXPECT_TRUE(h.state.iterations[0].removed_trials.empty());

  // Iteration 1: each model's latency carries over; no waiting.
  h.obs.now_unix_s = 5000;
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 2); });
  h.advance();
  for (auto const& x : h.state.iterations[1].trials) {
    EXPECT_EQ(x.verdict, selection_verdict::valid);
    EXPECT_EQ(x.latency, h.state.iterations[0].trials[x.model_index].latency);
  }
}

TEST(ModelSelection, ARecordedTrialMissingFromTheObservationIsLaunchedAgain) {
  harness h;
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  // Killed after persisting iteration 1 and before launching: the executor knows two of them.
  wf::observation partial = h.obs;
  partial.trials.erase(partial.trials.end() - 2, partial.trials.end());
  auto const s = h.tool.advance(h.state, partial);
  auto const l = launches(s.commands);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0].trial_id, h.current().trials[2].trial_id);
  EXPECT_EQ(l[0].resume_from, h.current().trials[2].resume_from);
  EXPECT_EQ(l[1].trial_id, h.current().trials[3].trial_id);
  EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(h.state));
}

TEST(ModelSelection, DescribesWhereItStands) {
  harness h;
  auto d = h.tool.describe(h.state, h.obs);
  EXPECT_EQ(d.phase, "training");
  EXPECT_EQ(d.fraction_done, 0.0);
  h.advance();
  h.set(status(id(0, 0), trial_phase::running, {{10.0, 4, 0.2}}));
  d = h.tool.describe(h.state, h.obs);
  EXPECT_NE(d.decision.find("iteration 0"), std::string::npos) << d.decision;
  double const early = *d.fraction_done;
  EXPECT_GT(early, 0.0);
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  d = h.tool.describe(h.state, h.obs);
  EXPECT_NE(d.decision.find("continued from iteration 0"), std::string::npos) << d.decision;
  EXPECT_GT(*d.fraction_done, early);
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  d = h.tool.describe(h.state, h.obs);
  EXPECT_EQ(d.phase, "done");
  EXPECT_EQ(d.fraction_done, 1.0);
  EXPECT_NE(d.decision.find("complete"), std::string::npos);
}

TEST(ModelSelection, IsDeterministicAcrossToolInstancesAndSeedsMatter) {
  auto run = [](std::uint64_t seed) {
    auto o = small();
    o.seed = seed;
    harness h(o);
    h.advance();
    for (int i = 0; i < 3; ++i) {
      h.train_all([](std::size_t m) { return 0.3 + 0.07 * static_cast<double>(m % 4); });
      h.advance();
    }
    auto const* f = finish_of(h.history.back().commands);
    return f ? boost::json::value(f->result) : boost::json::value(nullptr);
  };
  auto const a = run(1), b = run(1), c = run(2);
  EXPECT_EQ(a, b);
  ASSERT_TRUE(a.is_object());
  EXPECT_NE(a.at("reference_models").as_array()[0].at("seed"),
            c.at("reference_models").as_array()[0].at("seed"));
}

// ---- the state file --------------------------------------------------------------------------

TEST(ModelSelectionState, HoldsTheReferenceFieldsAndOurs) {
  auto o = small();
  o.accuracy_metric_id = "top_1_accuracy_without_latency";
  o.latency_metric_id = "latency_milli_seconds";
  harness h(o);
  h.advance();
  h.set(status(id(0, 0), trial_phase::failed, {}, failure_kind::oom));
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  auto const v = boost::json::value_from(h.state).as_object();
  EXPECT_EQ(v.at("schema_version"), 1);
  EXPECT_EQ(v.at("start_num_models"), 6);
  EXPECT_EQ(v.at("final_num_models"), 2);
  EXPECT_EQ(v.at("num_models_to_remove_per_iter"), 2);
  EXPECT_EQ(v.at("accuracy_metric_id"), "top_1_accuracy_without_latency");
  EXPECT_EQ(v.at("latency_metric_id"), "latency_milli_seconds");
  EXPECT_EQ(v.at("phase"), "training");
  auto const& its = v.at("iterations").as_array();
  ASSERT_EQ(its.size(), 2u);
  EXPECT_EQ(its[0].at("num_trials"), 6);
  EXPECT_EQ(ids(its[0].at("trials_to_retrain")).size(), 4u);
  EXPECT_EQ(num(its[0].at("desired_training_step_pct")), (1.0 / 6) * 100.0);
  EXPECT_EQ(its[0].at("search_job_name"), "model_selection_iter_0");
  auto const& t0 = its[0].at("trials").as_array()[0];
  EXPECT_EQ(t0.at("trial_id").as_string(), id(0, 0));
  EXPECT_EQ(t0.at("failure"), "oom");
  EXPECT_EQ(t0.at("invalid_reason"), "failed");
  EXPECT_EQ(t0.at("fate"), "replaced");
  EXPECT_EQ(t0.at("replaced_by").as_string(), id(0, 6));
  EXPECT_TRUE(t0.at("accuracy").is_null()) << "NaN is written as null";
  EXPECT_EQ(t0.at("spec").at("model_id").as_string(), sample(h.tool.model_seed(0)).model_id);
  auto const& t1 = its[1].at("trials").as_array()[0];
  EXPECT_FALSE(t1.at("resume_from").is_null());
  auto const generic =
      boost::json::try_value_to<wf::model_selection_state>(boost::json::value_from(h.state));
  ASSERT_TRUE(generic.has_value());
  EXPECT_EQ(boost::json::value_from(*generic), boost::json::value_from(h.state));
}

TEST(ModelSelectionState, ErrorsNameTheFileAndThePointer) {
  harness h;
  h.advance();
  h.train_all([](std::size_t m) { return 0.1 * static_cast<double>(m + 1); });
  h.advance();
  auto const good = boost::json::value_from(h.state);
  pt::json_location const file("run/MODEL_SELECTION_STATE.json");
  auto expect_error = [&](boost::json::value const& v, std::string const& where) {
    auto const r = wf::model_selection_state_from_json(v, file);
    ASSERT_FALSE(r) << where;
    EXPECT_EQ(r.error().code, pt::errc::malformed_file);
    EXPECT_NE(r.error().context.find("run/MODEL_SELECTION_STATE.json#" + where), std::string::npos)
        << r.error().context;
  };
  auto v = good;
  v.as_object()["schema_version"] = 2;
  expect_error(v, "/schema_version");
  v = good;
  v.at("iterations").as_array()[1].at("trials").as_array()[3].as_object().erase("seed");
  expect_error(v, "/iterations/1/trials/3/seed: missing");
  v = good;
  v.at("iterations").as_array()[0].at("trials").as_array()[2].as_object()["verdict"] = "great";
  expect_error(v, "/iterations/0/trials/2/verdict: unknown value \"great\"");
  v = good;
  v.as_object()["phase"] = "selecting";
  expect_error(v, "/phase");
  v = good;
  v.at("iterations").as_array()[0].as_object()["num_trials"] = -1;
  expect_error(v, "/iterations/0/num_trials");
  v = good;
  v.at("iterations").as_array()[0].at("trials").as_array()[0].as_object()["verdict"] = "invalid";
  expect_error(v, "/iterations/0/trials/0/invalid_reason");
  v = good;
  v.as_object().erase("final_num_models");
  expect_error(v, "/final_num_models: missing");
  EXPECT_FALSE(boost::json::try_value_to<wf::model_selection_state>(v).has_value());
}

// ---- the reference vectors, through the state machine ----------------------------------------

struct vector_case {
  std::string id;
  std::vector<std::string> tags;
  boost::json::object input;
  boost::json::value expected;
  bool has_tag(std::string const& tag) const {
    return std::find(tags.begin(), tags.end(), tag) != tags.end();
  }
  bool is_quirk() const {
    return std::any_of(tags.begin(), tags.end(),
                       [](std::string const& t) { return t.rfind("quirk:", 0) == 0; });
  }
};

std::vector<vector_case> load_vectors(std::string const& func) {
  auto const path =
      std::filesystem::path(PROXYTASK_TEST_DATA_DIR) / "reference" / (func + ".jsonl");
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  std::vector<vector_case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto const v = pt::parse_json(line, path.string()).value().as_object();
    vector_case c{
        std::string(v.at("id").as_string()), {}, v.at("input").as_object(), v.at("expected")};
    for (auto const& t : v.at("tags").as_array()) c.tags.emplace_back(t.as_string());
    cases.push_back(std::move(c));
  }
  return cases;
}

/// What a filter_trials vector's pruning became in the state machine.
struct pruning_outcome {
  boost::json::array removed, kept, invalid;
  std::string status;  ///< the result's status when the run finished at once
};

/// Runs a filter_trials vector through the tool: one model per trial, the counts chosen so that
/// the first iteration asks pruning for the vector's removals (or, with none, is the last), the
/// trials' observations built from the vector (accuracy at the iteration's pct, the trainer's
/// latency, -1 for null), no refills and no gate.
pruning_outcome run_filter_vector(vector_case const& c) {
  namespace cf = pt::conformance;
  auto const& trials = c.input.at("trials").as_array();
  std::size_t const k = trials.size();
  auto const r = static_cast<std::size_t>(c.input.at("num_to_remove").to_number<std::int64_t>());
  bool const requires_latency = !c.input.contains("requires_latency") ||
                                c.input.at("requires_latency").is_null() ||
                                c.input.at("requires_latency").as_bool();
  double const desired = cf::optional_double(c.input, "desired_training_step_pct").value_or(100);

  wf::model_selection_tool_options o;
  // Asking for min(r, K - final) removals: final = K - r, or 2 when r > K - 2 (pruning keeps 2
  // valid trials either way), or K (no pruning, the last iteration) when r = 0.
  std::size_t const final_num = r == 0 ? k : std::max<std::size_t>(k > r ? k - r : 0, 2);
  o.schedule = {.start_num_models = k,
                .final_num_models = final_num,
                .num_models_to_remove_per_iter = std::max<std::size_t>(r, 1)};
  o.latency = wf::latency_source::trainer;
  o.latency_required = requires_latency;
  o.max_refills = 0;
  o.max_failed_fraction = 1;
  harness h(o);
  h.advance();
  auto const& round = h.current();
  double const pct = round.desired_training_step_pct;
  for (std::size_t t = 0; t < k; ++t) {
    auto const& trial = trials[t].as_object();
    std::vector<curve_point> points;
    if (auto const* curve = trial.if_contains("curve"); curve && !curve->is_null()) {
      std::vector<curve_point> original;
      for (auto const& p : curve->as_array())
        original.push_back({cf::to_double(p.at("training_step_pct"), "pct"),
                            p.at("training_step").to_number<std::int64_t>(),
                            cf::to_double_or_nan(p.at("accuracy"), "accuracy")});
      if (round.last) {
        double const a = pt::stats::pruning_accuracy(original, desired);
        points = {{100.0, 99, a}};
      } else {
        // The curve scaled so that the vector's pct falls on the iteration's, with the value
        // there exact (a knot at the iteration's pct, where the vector's curve reaches its pct).
        double const there = pt::stats::pruning_accuracy(original, desired);
        bool const reached = pt::stats::accuracy_at_pct(original, desired).has_value();
        for (auto const& p : original)
          if (!reached || p.training_step_pct != desired)
            points.push_back({p.training_step_pct * (pct / desired), p.training_step, p.accuracy});
        if (reached) points.push_back({pct, 0, there});
        double const here = pt::stats::pruning_accuracy(points, pct);
        EXPECT_TRUE(here == there || (std::isnan(here) && std::isnan(there)))
            << c.id << " trial " << t << ": the scaled curve gives " << here << ", not " << there;
      }
    } else if (auto const* a = trial.if_contains("accuracy"); a && !a->is_null()) {
      points = {{round.last ? 100.0 : pct, 9, cf::to_double(*a, "accuracy")}};
    }
    auto s = status(id(0, t), trial_phase::succeeded, std::move(points));
    auto const* latency = trial.if_contains("latency");
    s.metrics.latency = latency && !latency->is_null() ? cf::to_double(*latency, "latency")
                                                       : pt::protocol::latency_not_measured;
    h.set(std::move(s));
  }
  auto const& stepped = h.advance();
  auto const& r0 = h.state.iterations[0];
  EXPECT_TRUE(r0.concluded) << c.id;
  pruning_outcome out;
  auto vector_id = [&](std::string const& trial_id) {
    std::size_t const m = std::stoul(trial_id.substr(trial_id.rfind('-') + 1));
    return trials[m].at("id");
  };
  for (auto const& x : r0.removed_trials) out.removed.push_back(vector_id(x));
  for (auto const& x : r0.invalid_trials) out.invalid.push_back(vector_id(x));
  if (r0.last) {
    for (auto const& t : r0.trials)
      if (t.fate == selection_fate::reference) out.kept.push_back(vector_id(t.trial_id));
  } else {
    for (auto const& x : r0.trials_to_retrain) out.kept.push_back(vector_id(x));
    // The kept models continue, from their trials of iteration 0.
    auto const l = launches(stepped.commands);
    EXPECT_EQ(l.size(), r0.trials_to_retrain.size()) << c.id;
    for (std::size_t i = 0; i < l.size() && i < r0.trials_to_retrain.size(); ++i)
      EXPECT_EQ(l[i].resume_from, r0.trials_to_retrain[i]) << c.id;
  }
  if (auto const* f = finish_of(stepped.commands))
    out.status = std::string(f->result.at("status").as_string());
  return out;
}

// Cases whose expectation depends on a reference defect without a quirk tag
// (tests/conformance/conformance_test.cpp: untagged_quirks).
bool untagged_quirk(std::string const& id) {
  return id == "filter_trials-public-0010" || id == "filter_trials-public-0022";
}

TEST(ModelSelectionConformance, FilterTrialsVectorsPassThroughTheStateMachine) {
  int compared = 0;
  for (auto const& c : load_vectors("filter_trials")) {
    if (c.is_quirk() || untagged_quirk(c.id)) continue;
    auto const out = run_filter_vector(c);
    auto const& e = c.expected.as_object();
    EXPECT_EQ(out.removed, e.at("removed").as_array()) << c.id;
    EXPECT_EQ(out.kept, e.at("kept").as_array()) << c.id;
    EXPECT_EQ(out.invalid, e.at("invalid").as_array()) << c.id;
    ++compared;
  }
  EXPECT_GE(compared, 45);
}

TEST(ModelSelectionConformance, FilterTrialsQuirksGetTheDocumentedFix) {
  namespace cf = pt::conformance;
  int zero = 0, nans = 0, all_invalid = 0;
  for (auto const& c : load_vectors("filter_trials")) {
    if (!c.is_quirk() && !untagged_quirk(c.id)) continue;
    auto const out = run_filter_vector(c);
    // Ours: a trial is invalid when its accuracy is missing or not finite (0.0 is a score, NaN
    // is not), or when a required latency is missing (null, -1, NaN); never a crash.
    bool const requires_latency = !c.input.contains("requires_latency") ||
                                  c.input.at("requires_latency").is_null() ||
                                  c.input.at("requires_latency").as_bool();
    double const desired = cf::optional_double(c.input, "desired_training_step_pct").value_or(100);
    boost::json::array expected_invalid;
    for (auto const& v : c.input.at("trials").as_array()) {
      auto const& t = v.as_object();
      double accuracy = nan;
      if (auto const* curve = t.if_contains("curve"); curve && !curve->is_null()) {
        std::vector<curve_point> points;
        for (auto const& p : curve->as_array())
          points.push_back({cf::to_double(p.at("training_step_pct"), "pct"),
                            p.at("training_step").to_number<std::int64_t>(),
                            cf::to_double_or_nan(p.at("accuracy"), "accuracy")});
        accuracy = pt::stats::pruning_accuracy(points, desired);
      } else if (auto const* a = t.if_contains("accuracy"); a && !a->is_null()) {
        accuracy = cf::to_double(*a, "accuracy");
        if (a->is_string() && a->as_string() == "nan") ++nans;
      }
      if (accuracy == 0.0) ++zero;
      auto const* l = t.if_contains("latency");
      double const latency = l && !l->is_null() ? cf::to_double(*l, "latency") : -1.0;
      bool const latency_ok = std::isfinite(latency) && latency >= 0;
      if (!std::isfinite(accuracy) || (requires_latency && !latency_ok))
        expected_invalid.push_back(t.at("id"));
    }
    EXPECT_EQ(out.invalid, expected_invalid) << c.id;
    if (expected_invalid.size() == c.input.at("trials").as_array().size()) {
      // The reference crashes (quirk:all_invalid_crash); here the run finishes and says so.
      EXPECT_EQ(out.status, "no_valid_models") << c.id;
      ++all_invalid;
    }
  }
  EXPECT_GT(zero, 0);
  EXPECT_GT(nans, 0);
  EXPECT_GT(all_invalid, 0);
}

TEST(ModelSelectionConformance, ScheduleVectorsPassThroughTheStateMachine) {
  int compared = 0, rejected = 0;
  for (auto const& c : load_vectors("model_selection_schedule")) {
    wf::model_selection_tool_options o;
    auto count = [&](char const* key, std::size_t& target) {
      if (auto const* v = c.input.if_contains(key); v && !v->is_null())
        target = static_cast<std::size_t>(v->to_number<std::int64_t>());
    };
    count("start_num_models", o.schedule.start_num_models);
    count("final_num_models", o.schedule.final_num_models);
    count("num_models_to_remove_per_iter", o.schedule.num_models_to_remove_per_iter);
    std::vector<std::size_t> invalid;
    if (auto const* v = c.input.if_contains("invalid_per_iter"); v && !v->is_null())
      for (auto const& n : v->as_array()) invalid.push_back(n.to_number<std::size_t>());
    o.max_refills = 0;  // the invalid trials stay and count towards the removals
    o.max_failed_fraction = 1;
    bool const expects_error = c.expected.as_object().contains("error");
    std::optional<harness> h;
    try {
      h.emplace(o);
    } catch (pt::logic_error const& e) {
      // quirk:pct_exceeds_100_crash: rejected up front, with the reason.
      EXPECT_TRUE(expects_error && c.is_quirk()) << c.id << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("model selection:"), std::string::npos);
      ++rejected;
      continue;
    }
    for (int steps = 0; steps < 100 && h->state.phase == selection_phase::training; ++steps) {
      h->advance();
      if (h->state.phase != selection_phase::training) break;
      std::size_t const i = h->state.iterations.size() - 1;
      std::size_t failing = i < invalid.size() ? invalid[i] : 0;
      auto const& r = h->current();
      double const pct = r.last ? 100.0 : r.desired_training_step_pct;
      for (auto const& t : r.trials) {
        if (failing > 0) {
          h->set(status(t.trial_id, trial_phase::failed, {}, failure_kind::crashed));
          --failing;
        } else {
          h->set(status(t.trial_id, trial_phase::succeeded,
                        {{pct, 9, 0.3 + 0.001 * static_cast<double>(t.model_index)}}));
        }
      }
    }
    ASSERT_NE(h->state.phase, selection_phase::training) << c.id;
    if (expects_error) {
      // A quirk the configuration does not show: the run ends explicitly, never past 100%.
      EXPECT_TRUE(c.is_quirk()) << c.id;
      for (auto const& r : h->state.iterations)
        EXPECT_TRUE(r.last || r.desired_training_step_pct <= 100.0) << c.id;
      continue;
    }
    auto const& expected = c.expected.at("iterations").as_array();
    ASSERT_EQ(h->state.iterations.size(), expected.size()) << c.id;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(h->state.iterations[i].num_trials,
                expected[i].at("num_trials").to_number<std::size_t>())
          << c.id << " iteration " << i;
      EXPECT_EQ(h->state.iterations[i].desired_training_step_pct,
                num(expected[i].at("desired_training_step_pct")))
          << c.id << " iteration " << i;
    }
    EXPECT_EQ(h->state.phase, selection_phase::done) << c.id;
    ++compared;
  }
  EXPECT_GE(compared, 40);
  EXPECT_GE(rejected, 5);
}

// ---- end to end: the driver on the simulated executor ------------------------------------------

pt::exec::simulated_options sim_options(double failure_rate = 0) {
  pt::exec::simulated_options o;
  o.poll_interval_s = 100;
  o.steps_per_second = 4;  // 400 steps = 40% per poll
  o.total_steps = 1000;
  o.cycle_steps = 50;
  o.oom_rate = failure_rate;
  o.divergence_rate = failure_rate;
  o.crash_rate = failure_rate;
  o.noise = 0.02;
  o.seed = 11;
  return o;
}

boost::json::value read_json(std::filesystem::path const& p) {
  return pt::parse_json(pt::read_file(p).value(), p.string()).value();
}

/// Adds a latency calculator to the simulated executor: every trial that has trained gets a
/// measured latency, a function of its model.
class with_latency_calculator {
 public:
  explicit with_latency_calculator(pt::exec::simulated_executor& inner) : inner_(inner) {}
  pt::result<void> launch(wf::launch_trial const& l) { return inner_.launch(l); }
  pt::result<wf::observation> observe() {
    auto obs = inner_.observe();
    if (!obs) return obs;
    for (auto& t : obs->trials) {
      if (t.phase != trial_phase::succeeded) continue;
      auto const spec = pt::protocol::read_model_spec(inner_.trial_dir(t.trial_id) /
                                                      pt::protocol::model_spec_file_name);
      if (!spec) return spec.error();
      t.measured_latency = 1.0 + static_cast<double>(std::hash<std::string>{}(spec->model_id) % 97);
    }
    return obs;
  }
  pt::result<void> set_desired_pct(std::string const& id, double pct) {
    return inner_.set_desired_pct(id, pct);
  }
  pt::result<void> cancel(std::string const& id) { return inner_.cancel(id); }
  void wait_for_next_poll() { inner_.wait_for_next_poll(); }

 private:
  pt::exec::simulated_executor& inner_;
};

TEST(ModelSelectionEndToEnd, SelectsTheReferenceModelsOnTheSimulatedExecutor) {
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options());
  wf::model_selection_tool const tool(sample);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  auto const& o = r->as_object();
  EXPECT_EQ(o.at("status"), "complete");
  EXPECT_EQ(read_json(dir.path() / "MODEL_SELECTION_RESULT.json"), *r);

  auto const state = read_json(dir.path() / "MODEL_SELECTION_STATE.json");
  EXPECT_EQ(state.at("phase"), "done");
  auto const& its = state.at("iterations").as_array();
  auto const planned = tool.planned_schedule();
  ASSERT_EQ(its.size(), planned.size());
  for (std::size_t i = 0; i < its.size(); ++i) {
    EXPECT_EQ(its[i].at("num_trials").to_number<std::size_t>(), planned[i].num_trials);
    EXPECT_EQ(num(its[i].at("desired_training_step_pct")), planned[i].desired_training_step_pct);
  }
  // The reference models: full-training accuracies of curves continued over five iterations.
  auto const& refs = o.at("reference_models").as_array();
  ASSERT_EQ(refs.size(), 10u);
  for (auto const& ref : refs) {
    auto const trial_dir = dir.path() / std::string(ref.at("trial_dir").as_string());
    auto const m = pt::protocol::read_metrics(trial_dir).value();
    EXPECT_EQ(num(ref.at("accuracy")), pt::stats::final_accuracy(m.points).value());
    auto const curve = pt::stats::normalise_curve(m.points);
    EXPECT_EQ(curve.front().training_step_pct, 5.0) << "the curve carried over from iteration 0";
    EXPECT_EQ(curve.back().training_step_pct, 100.0);
    EXPECT_EQ(m.time.total_training_steps, 1000);
  }
}

TEST(ModelSelectionEndToEnd, PrunesOnMeasuredLatencyFromACalculator) {
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor sim(dir.path(), sim_options());
  with_latency_calculator exec(sim);
  wf::model_selection_tool_options o;
  o.latency = wf::latency_source::calculator;
  o.latency_wait_s = 1000;
  wf::model_selection_tool const tool(sample, o);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at("status"), "complete");
  for (auto const& ref : r->at("reference_models").as_array()) {
    auto const id_text = std::string(ref.at("model_id").as_string());
    EXPECT_EQ(num(ref.at("latency")),
              1.0 + static_cast<double>(std::hash<std::string>{}(id_text) % 97));
  }
}

/// A run with failures, uninterrupted: its result and state.
struct finished_run {
  boost::json::value result, state;
};

finished_run uninterrupted(wf::model_selection_tool const& tool, double failure_rate) {
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options(failure_rate));
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  EXPECT_TRUE(r) << r.error().message();
  return {r ? *r : boost::json::value(), read_json(dir.path() / "MODEL_SELECTION_STATE.json")};
}

/// 12 models, 4 removed per iteration, 4 final (12 at 8.33%, 8 at 20.83%, 4 to completion),
/// half of iteration 0 may fail.
/// Each of oom, divergence and crash strikes this share of the simulated trials.
constexpr double e2e_failure_rate = 0.2;

wf::model_selection_tool_options failure_tolerant() {
  wf::model_selection_tool_options o;
  o.schedule = {.start_num_models = 12, .final_num_models = 4, .num_models_to_remove_per_iter = 4};
  o.max_failed_fraction = 0.5;
  return o;
}

TEST(ModelSelectionEndToEnd, SurvivesFailuresAndResumesAfterRestartsWithTheSameResult) {
  wf::model_selection_tool const tool(sample, failure_tolerant());
  auto const expected = uninterrupted(tool, e2e_failure_rate);
  auto const& r = expected.result;
  ASSERT_TRUE(r.is_object());
  std::set<std::string> kinds;
  for (auto const& f : r.at("failures").as_array())
    kinds.insert(std::string(f.at("failure").as_string()));
  EXPECT_GT(r.at("failures").as_array().size(), 2u) << "the run met failures";
  EXPECT_GT(r.at("first_iteration_failures").to_number<int>(), 1) << "and refilled them";
  EXPECT_TRUE(kinds.contains("oom") && kinds.contains("diverged"));
  bool later = false;
  for (auto const& f : r.at("failures").as_array())
    later = later || f.at("iteration").to_number<int>() > 0;
  EXPECT_TRUE(later) << "a continued training failed too";
  EXPECT_TRUE(r.at("status") == "complete" || r.at("status") == "below_final_num_models");
  if (r.at("status") == "below_final_num_models") {
    EXPECT_LT(r.at("num_reference_models").to_number<int>(), 10);
  }

  pt::testing::temp_dir dir;
  // max_polls = 1: every poll is a fresh controller on the same run directory.
  for (int restarts = 0; restarts < 500; ++restarts) {
    pt::exec::simulated_executor exec(dir.path(), sim_options(e2e_failure_rate));
    auto const again = wf::run(tool, exec, {.run_dir = dir.path(), .max_polls = 1});
    if (again) {
      EXPECT_EQ(*again, r);
      EXPECT_EQ(read_json(dir.path() / "MODEL_SELECTION_STATE.json"), expected.state);
      return;
    }
    ASSERT_EQ(again.error().code, pt::errc::cancelled) << again.error().message();
  }
  FAIL() << "did not finish";
}

TEST(ModelSelectionEndToEnd, TooManyFirstIterationFailuresAbortWithAReport) {
  wf::model_selection_tool const tool(sample);
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor exec(dir.path(), sim_options(0.3));
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at("status"), "aborted");
  EXPECT_GT(r->at("first_iteration_failures").to_number<int>(), 6);
  EXPECT_TRUE(r->at("reference_models").as_array().empty());
  for (auto const& f : r->at("failures").as_array()) {
    EXPECT_FALSE(f.at("failure").is_null());
    EXPECT_FALSE(std::string(f.at("message").as_string()).empty());
  }
  EXPECT_EQ(read_json(dir.path() / "MODEL_SELECTION_RESULT.json"), *r);
  // Nothing of iteration 0 is left running.
  auto const obs = exec.observe().value();
  for (auto const& t : obs.trials) EXPECT_TRUE(wf::is_terminal(t.phase)) << t.trial_id;
}

TEST(ModelSelectionEndToEnd, AControllerKilledMidIterationResumesToTheSameReferenceSet) {
  wf::model_selection_tool const tool(sample, failure_tolerant());
  auto const expected = uninterrupted(tool, e2e_failure_rate);
  ASSERT_TRUE(expected.result.is_object());
  for (std::size_t kill_at : {1u, 2u, 4u}) {
    pt::testing::temp_dir dir;
    pid_t const child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // The controller: SIGKILLed after poll kill_at (mid-iteration: trials running).
      pt::exec::simulated_executor exec(dir.path(), sim_options(e2e_failure_rate));
      (void)wf::run(tool, exec,
                    {.run_dir = dir.path(),
                     .progress = [&](wf::observation const&, wf::step_summary const& s) {
                       if (s.poll + 1 == kill_at) ::kill(::getpid(), SIGKILL);
                     }});
      ::_exit(0);
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "killed at poll " << kill_at;
    EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);
    auto const mid = read_json(dir.path() / "MODEL_SELECTION_STATE.json");
    EXPECT_EQ(mid.at("phase"), "training");
    pt::exec::simulated_executor exec(dir.path(), sim_options(e2e_failure_rate));
    auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->at("reference_models"), expected.result.at("reference_models"))
        << "killed at poll " << kill_at;
    EXPECT_EQ(*r, expected.result);
  }
}

}  // namespace
