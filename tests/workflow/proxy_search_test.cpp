#include <proxytask/workflow/proxy_search.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/exec/simulated.hpp>
#include <proxytask/workflow/driver.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::protocol::failure_kind;
using pt::stats::curve_point;
using wf::stopping_state;
using wf::trial_phase;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t models = 8;

double reference_accuracy(std::size_t m) { return 0.6 + 0.03 * static_cast<double>(m); }

/// 8 reference models whose spec's final_accuracy is their full-training score.
std::vector<wf::reference_model> references() {
  std::vector<wf::reference_model> out;
  for (std::size_t m = 0; m < models; ++m) {
    wf::reference_model r;
    r.model_id = "model-" + std::to_string(m);
    r.spec = {r.model_id, boost::json::object{{"final_accuracy", reference_accuracy(m)}}};
    r.accuracy = reference_accuracy(m);
    r.latency = 1.0 + static_cast<double>(m);
    out.push_back(std::move(r));
  }
  return out;
}

wf::proxy_search_options options(std::size_t proxies = 2) {
  wf::proxy_search_options o;
  o.reference_models = references();
  for (std::size_t p = 0; p < proxies; ++p)
    o.proxies.push_back(
        {"proxy" + std::to_string(p), {{"data_pct", std::to_string(25 * (p + 1))}}});
  o.baseline_args = {{"steps", "1000"}, {"data_pct", "100"}};
  o.bootstrap_resamples = 50;
  return o;
}

std::vector<wf::launch_trial> launches(std::vector<wf::command> const& cs) {
  std::vector<wf::launch_trial> out;
  for (auto const& c : cs)
    if (auto const* l = std::get_if<wf::launch_trial>(&c)) out.push_back(*l);
  return out;
}

wf::finish const* finish_of(std::vector<wf::command> const& cs) {
  for (auto const& c : cs)
    if (auto const* f = std::get_if<wf::finish>(&c)) return f;
  return nullptr;
}

boost::json::value commands_json(std::vector<wf::command> const& cs) {
  boost::json::array a;
  for (auto const& c : cs) {
    std::visit(
        [&](auto const& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, wf::launch_trial>)
            a.push_back(boost::json::value_from(x));
          else if constexpr (std::is_same_v<T, wf::finish>)
            a.push_back(boost::json::object{{"result", x.result}, {"summary", x.summary}});
          else if constexpr (std::is_same_v<T, wf::stop_trial>)
            a.push_back(boost::json::object{{"stop", x.trial_id}});
          else
            a.push_back(boost::json::object{{"pct", x.trial_id}, {"value", x.pct}});
        },
        c);
  }
  return a;
}

wf::proxy_search_state round_trip(wf::proxy_search_state const& s) {
  auto const text = boost::json::serialize(boost::json::value_from(s));
  auto const back = pt::parse_json(text, "SEARCH_CONTROLLER_STATE.json");
  EXPECT_TRUE(back.has_value());
  auto const st = wf::proxy_search_tool::state_from_json(
      *back, pt::json_location("SEARCH_CONTROLLER_STATE.json"));
  EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().context);
  return *st;
}

/// A trial's curve: points at `pcts` of a 1000-step training, accuracy acc(pct), 36 s per step.
std::vector<curve_point> curve(std::vector<double> const& pcts, auto acc) {
  std::vector<curve_point> out;
  for (double const pct : pcts)
    out.push_back({pct, static_cast<std::int64_t>(pct * 10) - 1, acc(pct)});
  return out;
}

/// Drives the tool by hand: the observation holds every launched trial; tests set their status.
struct harness {
  wf::proxy_search_tool tool;
  wf::proxy_search_state state;
  wf::observation obs;
  std::vector<wf::step<wf::proxy_search_state>> history;

  explicit harness(wf::proxy_search_options o = options())
      : tool(std::move(o)), state(tool.initial()) {}

  wf::step<wf::proxy_search_state> const& advance() {
    auto s = tool.advance(state, obs);
    auto again = tool.advance(state, obs);
    EXPECT_EQ(commands_json(s.commands), commands_json(again.commands));
    EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(again.next));
    auto resumed = tool.advance(round_trip(state), obs);
    EXPECT_EQ(commands_json(s.commands), commands_json(resumed.commands));
    EXPECT_EQ(boost::json::value_from(s.next), boost::json::value_from(resumed.next));
    EXPECT_EQ(boost::json::value_from(round_trip(s.next)), boost::json::value_from(s.next));
    auto const d1 = tool.describe(s.next, obs), d2 = tool.describe(s.next, obs);
    EXPECT_EQ(d1.decision, d2.decision);
    for (auto const& l : launches(s.commands)) {
      EXPECT_EQ(obs.find(l.trial_id), nullptr) << "relaunched " << l.trial_id;
      wf::trial_status t;
      t.trial_id = l.trial_id;
      t.phase = trial_phase::running;
      obs.trials.push_back(std::move(t));
    }
    state = s.next;
    history.push_back(std::move(s));
    return history.back();
  }

  wf::trial_status& trial(std::size_t proxy, std::size_t m) {
    auto const id = "proxy-" + std::to_string(proxy) + "-model-" + std::to_string(m);
    for (auto& t : obs.trials)
      if (t.trial_id == id) return t;
    throw std::runtime_error("no trial " + id);
  }

  /// Sets every trial of `proxy` to points at `pcts`, model m's accuracy acc(m, pct);
  /// `hrs_per_1000` hours per 1000 steps.
  template <class Acc>
  void train(std::size_t proxy, std::vector<double> const& pcts, Acc acc, double hrs_per_1000 = 1) {
    for (std::size_t m = 0; m < models; ++m) {
      auto& t = trial(proxy, m);
      t.metrics.points = curve(pcts, [&](double pct) { return acc(m, pct); });
      std::int64_t const steps = static_cast<std::int64_t>(pcts.back() * 10);
      t.metrics.time = {steps, hrs_per_1000 * 3.6 * static_cast<double>(steps)};
    }
  }

  wf::proxy_task_entry const& proxy(std::size_t p) const { return state.proxy_tasks[p]; }
};

/// Model m's accuracy at pct: ordered like the reference from `from` pct on, reversed before.
auto ordered_from(double from) {
  return [from](std::size_t m, double pct) {
    double const order = pct >= from ? static_cast<double>(m) : static_cast<double>(models - m);
    return 0.3 + 0.004 * pct + 0.01 * order;
  };
}

/// Ordered like the reference but for two swapped pairs (tau-b 6/7).
double nearly_ordered(std::size_t m, double pct) {
  static constexpr int order[models] = {1, 0, 2, 4, 3, 5, 6, 7};
  return 0.3 + 0.004 * pct + 0.01 * order[m];
}

/// Uncorrelated with the reference at every pct (a fixed shuffle).
double shuffled(std::size_t m, double pct) {
  static constexpr int order[models] = {3, 7, 0, 5, 1, 6, 2, 4};
  return 0.3 + 0.004 * pct + 0.01 * order[m];
}

// ---- the state machine, step by step -------------------------------------------------------

TEST(ProxySearch, SatisfiesTheToolConceptsAndChecksItsOptions) {
  static_assert(wf::tool<wf::proxy_search_tool>);
  static_assert(wf::describable<wf::proxy_search_tool>);
  EXPECT_EQ(wf::proxy_search_tool::state_file_name, "SEARCH_CONTROLLER_STATE.json");
  EXPECT_EQ(wf::proxy_search_tool::tool_name, "proxy-task search");
  wf::proxy_search_tool const tool(options());
  EXPECT_EQ(tool.desired_correlation(), 0.65);
  EXPECT_EQ(tool.required_valid_trials(), 6u) << "ceil(0.7 * 8)";
  auto o = options();
  o.method = pt::stats::correlation::spearman;
  EXPECT_EQ(wf::proxy_search_tool(o).desired_correlation(), 0.84);
  o.desired_correlation = 0.0;
  EXPECT_EQ(wf::proxy_search_tool(o).desired_correlation(), 0.0) << "0.0 is a real threshold";

  o = options();
  o.proxies.push_back(o.proxies[0]);
  EXPECT_THROW(wf::proxy_search_tool{o}, pt::logic_error) << "a repeated name";
  o = options();
  o.reference_models.clear();
  EXPECT_THROW(wf::proxy_search_tool{o}, pt::logic_error);
  o = options();
  o.confidence_k = 2;
  o.bootstrap_resamples = 0;
  EXPECT_THROW(wf::proxy_search_tool{o}, pt::logic_error);
}

TEST(ProxySearch, LaunchesTheReferenceModelsWithTheProxysArguments) {
  harness h;
  auto const& s = h.advance();
  auto const l = launches(s.commands);
  ASSERT_EQ(l.size(), models);
  for (std::size_t m = 0; m < models; ++m) {
    EXPECT_EQ(l[m].trial_id, "proxy-0-model-" + std::to_string(m));
    EXPECT_EQ(l[m].spec.model_id, "model-" + std::to_string(m));
    EXPECT_EQ(l[m].proxy_args.at("data_pct"), "25") << "the proxy's argument overrides";
    EXPECT_EQ(l[m].proxy_args.at("steps"), "1000") << "the baseline's steps";
    EXPECT_EQ(l[m].seed, h.tool.model_seed(m));
  }
  EXPECT_EQ(h.proxy(0).phase, wf::proxy_phase::running);
  EXPECT_EQ(h.proxy(1).phase, wf::proxy_phase::pending);
  // Launched but not measured: nothing to do until the trials report.
  EXPECT_TRUE(h.advance().commands.empty());
  EXPECT_EQ(h.tool.describe(h.state, h.obs).phase, "search");
}

TEST(ProxySearch, ATrialMissingFromTheObservationIsLaunchedAgain) {
  harness h;
  h.advance();
  h.obs.trials.erase(h.obs.trials.begin() + 3);  // lost to a kill between persisting and acting
  auto const& s = h.advance();
  auto const l = launches(s.commands);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].trial_id, "proxy-0-model-3");
}

TEST(ProxySearch, StopsOnCorrelationAtTheInterpolatedCrossing) {
  harness h;
  h.advance();
  h.train(0, {10, 20, 30}, ordered_from(35));
  h.advance();
  EXPECT_EQ(h.proxy(0).phase, wf::proxy_phase::running);
  h.train(0, {10, 20, 30, 40}, ordered_from(35));
  auto const& s = h.advance();
  auto const& st = h.proxy(0).stats;
  ASSERT_EQ(h.proxy(0).phase, wf::proxy_phase::done);
  EXPECT_EQ(st.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(st.stop_rule, "correlation");
  ASSERT_EQ(st.training_steps, (std::vector<std::int64_t>{100, 200, 300, 400}));
  EXPECT_EQ(st.accuracy_correlation_over_step[3], 1.0);
  EXPECT_EQ(st.accuracy_correlation_over_step[2], -1.0);
  EXPECT_EQ(st.stop_step_index, 3u);
  // Crossing 0.65 between -1 (step 300) and 1 (step 400): x = 2 + 1.65 / 2.
  EXPECT_EQ(st.final_training_steps, 382);
  EXPECT_NEAR(*st.final_training_time_in_hours, 0.3825, 1e-12);
  for (std::size_t c = 0; c < 4; ++c) {
    EXPECT_EQ(st.valid_pairs_over_step[c], 8);
    EXPECT_EQ(st.kendall_over_step[c], st.accuracy_correlation_over_step[c]);
    EXPECT_FALSE(std::isnan(st.spearman_over_step[c])) << "Spearman is always reported";
    EXPECT_NEAR(st.median_training_time_hrs_over_step[c], 0.1 * static_cast<double>(c + 1), 1e-12);
  }
  // Every trial gets the stop signal; the running ones are stopped; the next proxy starts.
  std::size_t signals = 0, stops = 0;
  for (auto const& c : s.commands) {
    if (auto const* d = std::get_if<wf::set_desired_pct>(&c)) signals += d->pct == 0 ? 1 : 0;
    stops += std::holds_alternative<wf::stop_trial>(c) ? 1 : 0;
  }
  EXPECT_EQ(signals, models);
  EXPECT_EQ(stops, models);
  auto const l = launches(s.commands);
  ASSERT_EQ(l.size(), models);
  EXPECT_EQ(l[0].trial_id, "proxy-1-model-0");
  EXPECT_EQ(h.state.best_proxy_task_name, "proxy0");
}

TEST(ProxySearch, AlignsTrialsOnPctAcrossEvaluationCadences) {
  harness h;
  h.advance();
  h.train(0, {10, 20}, ordered_from(0));
  // Model 0 evaluates only at 20%: its 10% score is interpolated from the origin.
  h.trial(0, 0).metrics.points = curve({20}, [](double pct) { return 0.3 + 0.004 * pct; });
  h.trial(0, 0).metrics.time = {200, 720};
  h.advance();
  auto const& st = h.proxy(0).stats;
  ASSERT_EQ(st.training_step_pct, (std::vector<double>{10, 20}));
  EXPECT_EQ(st.valid_pairs_over_step[0], 8) << "the 10% point of model 0 is interpolated";
}

TEST(ProxySearch, AProxyThatNeverCorrelatesEndsOnTheTimeLimitOrRunsTillCompletion) {
  auto o = options();
  o.training_time_hrs_limit = 0.3;
  harness h(o);
  h.advance();
  h.train(0, {10, 20}, shuffled);
  h.advance();
  EXPECT_EQ(h.proxy(0).phase, wf::proxy_phase::running);
  h.train(0, {10, 20, 30, 40}, shuffled);
  h.advance();
  EXPECT_EQ(h.proxy(0).stats.state, stopping_state::exceeded_train_time_limit);
  EXPECT_EQ(h.proxy(0).stats.stop_rule, "time_limit");
  EXPECT_EQ(h.proxy(0).stats.stop_step_index, 2u);
  EXPECT_FALSE(h.proxy(0).stats.final_training_steps) << "a time stop carries no crossing";

  // Without a limit: all trials end, the proxy ran till completion.
  harness g;
  g.advance();
  g.train(0, {50, 100}, shuffled);
  for (std::size_t m = 0; m < models; ++m) g.trial(0, m).phase = trial_phase::succeeded;
  auto const& s = g.advance();
  EXPECT_EQ(g.proxy(0).stats.state, stopping_state::ran_till_completion);
  EXPECT_EQ(g.proxy(0).stats.stop_rule, "completion");
  std::size_t stops = 0;
  for (auto const& c : s.commands) stops += std::holds_alternative<wf::stop_trial>(c) ? 1 : 0;
  EXPECT_EQ(stops, 0u) << "ended trials are not stopped";
}

TEST(ProxySearch, TooManyFailedTrialsEndAProxy) {
  harness h;
  h.advance();
  h.train(0, {10}, shuffled);
  h.trial(0, 1).phase = trial_phase::failed;
  h.trial(0, 1).failure = failure_kind::oom;
  h.trial(0, 5).phase = trial_phase::failed;
  h.advance();
  EXPECT_EQ(h.proxy(0).phase, wf::proxy_phase::running) << "6 valid trials still suffice";
  h.trial(0, 6).phase = trial_phase::failed;
  h.advance();
  EXPECT_EQ(h.proxy(0).stats.state, stopping_state::excess_trial_failures);
  EXPECT_EQ(h.proxy(0).stats.stop_rule, "failed_trials");
  EXPECT_EQ(h.proxy(0).failed_trials, 3u);

  auto o = options();
  o.max_failed_trials = 0;
  harness g(o);
  g.advance();
  g.train(0, {10}, shuffled);
  g.trial(0, 2).phase = trial_phase::failed;
  g.advance();
  EXPECT_EQ(g.proxy(0).stats.state, stopping_state::excess_trial_failures);
}

TEST(ProxySearch, StopsOnTheMedianAccuracy) {
  auto o = options();
  o.desired_accuracy = 0.4;  // the median reaches it at 20% (0.38 + 0.04 at the upper median)
  harness h(o);
  h.advance();
  h.train(0, {10, 20, 30}, shuffled);
  h.advance();
  auto const& st = h.proxy(0).stats;
  EXPECT_EQ(st.state, stopping_state::met_desired_accuracy);
  EXPECT_EQ(st.stop_rule, "median_accuracy");
  ASSERT_TRUE(st.stop_step_index);
  EXPECT_GE(st.median_accuracy_over_step[*st.stop_step_index], 0.4);
  EXPECT_TRUE(st.final_training_steps);
}

TEST(ProxySearch, EarlyStopsAProxyThatCannotBeatTheBest) {
  auto o = options();
  o.early_stop_proxy_task_if_not_best = true;
  harness h(o);
  h.advance();
  h.train(0, {10, 20}, ordered_from(0));
  h.advance();  // proxy0 succeeds at step 100 (the first step: no interpolation)
  ASSERT_EQ(h.proxy(0).stats.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(h.proxy(0).stats.final_training_steps, 100);
  EXPECT_NEAR(*h.proxy(0).stats.final_training_time_in_hours, 0.1, 1e-12);
  h.train(1, {10}, shuffled, 0.5);
  h.advance();
  EXPECT_EQ(h.proxy(1).phase, wf::proxy_phase::running) << "0.05 h < 0.1 h";
  h.train(1, {10, 20}, shuffled, 0.5);
  auto const& s = h.advance();
  EXPECT_EQ(h.proxy(1).stats.state, stopping_state::exceeded_best_train_time);
  EXPECT_EQ(h.proxy(1).stats.stop_rule, "not_best");
  ASSERT_NE(finish_of(s.commands), nullptr);
  EXPECT_EQ(h.state.phase, wf::search_phase::done);
  EXPECT_EQ(finish_of(s.commands)->result.at("best_proxy_task_name"), "proxy0");
}

TEST(ProxySearch, ChoosesTheSuccessfulProxyWithTheLowestTime) {
  harness h(options(3));
  h.advance();
  h.train(0, {10, 20}, ordered_from(15));  // succeeds at 182 steps
  h.advance();
  h.train(1, {10, 20}, ordered_from(0), 0.5);  // succeeds at 100 steps, half as slow
  h.advance();
  h.train(2, {10}, shuffled, 0.01);
  for (std::size_t m = 0; m < models; ++m) h.trial(2, m).phase = trial_phase::succeeded;
  auto const& s = h.advance();
  EXPECT_EQ(h.proxy(2).stats.state, stopping_state::ran_till_completion);
  auto const* f = finish_of(s.commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result.as_object();
  EXPECT_EQ(r.at("status"), "found");
  EXPECT_EQ(r.at("best_proxy_task_name"), "proxy1");
  EXPECT_EQ(r.at("final_training_steps"), 100);
  EXPECT_NEAR(r.at("final_training_time_in_hours").to_number<double>(), 0.05, 1e-12);
  EXPECT_EQ(r.at("proxy_args").at("data_pct"), "50");
  EXPECT_NE(std::string(r.at("advice").as_array()[0].as_string()).find("= 100"), std::string::npos);
  EXPECT_EQ(r.at("warnings").as_array().size(), 0u);
  EXPECT_EQ(r.at("proxy_tasks").as_array().size(), 3u);
  EXPECT_TRUE(f->files.contains("PROXY_SEARCH_RESULT.json"));
  EXPECT_EQ(h.tool.describe(h.state, h.obs).phase, "done");
  // Once done, every step finishes again with the same result.
  auto const again = h.tool.advance(h.state, h.obs);
  ASSERT_NE(finish_of(again.commands), nullptr);
  EXPECT_EQ(finish_of(again.commands)->result, f->result);
}

TEST(ProxySearch, ConfidenceModeNeedsTheLowerBoundHeldForKSteps) {
  auto o = options(1);
  o.desired_correlation = 0.3;
  harness plain(o);
  plain.advance();
  plain.train(0, {10, 20, 30}, nearly_ordered);
  plain.advance();
  EXPECT_EQ(plain.proxy(0).stats.stop_step_index, 0u) << "tau-b 6/7 >= 0.3 at once";
  EXPECT_EQ(plain.proxy(0).stats.stop_rule, "correlation");

  o.confidence_k = 2;
  harness h(o);
  h.advance();
  h.train(0, {10, 20, 30}, nearly_ordered);
  h.advance();
  auto const& st = h.proxy(0).stats;
  ASSERT_EQ(st.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(st.stop_rule, "confidence");
  ASSERT_TRUE(st.stop_step_index);
  std::size_t const k = *st.stop_step_index;
  ASSERT_GE(k, 1u) << "held for 2 consecutive steps";
  EXPECT_GE(st.ci_low_over_step[k - 1], 0.3);
  EXPECT_GE(st.ci_low_over_step[k], 0.3);
  if (k > 1) {
    EXPECT_LT(std::min(st.ci_low_over_step[k - 2], st.ci_low_over_step[k - 1]), 0.3);
  }
  for (std::size_t c = 0; c < 3; ++c) {
    EXPECT_LE(st.ci_low_over_step[c], st.ci_high_over_step[c]);
  }
  EXPECT_EQ(h.state.phase, wf::search_phase::done);

  // A perfect ranking: every replicate is 1, the interval [1, 1].
  harness perfect(o);
  perfect.advance();
  perfect.train(0, {10, 20, 30}, ordered_from(0));
  perfect.advance();
  EXPECT_EQ(perfect.proxy(0).stats.ci_low_over_step, (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(perfect.proxy(0).stats.stop_step_index, 1u);
  EXPECT_EQ(perfect.proxy(0).stats.final_training_steps, 200) << "no crossing between 1 and 1";

  o.confidence_k = 4;  // more steps than recorded: never held long enough
  harness g(o);
  g.advance();
  g.train(0, {10, 20, 30}, nearly_ordered);
  g.advance();
  EXPECT_EQ(g.proxy(0).phase, wf::proxy_phase::running);
}

TEST(ProxySearch, ALatencyCorrelationBelowItsThresholdFailsAProxy) {
  auto o = options(1);
  o.use_latency = true;
  harness h(o);
  h.advance();
  h.train(0, {10}, ordered_from(0));
  for (std::size_t m = 0; m < models; ++m)
    h.trial(0, m).measured_latency = 10.0 - static_cast<double>(m);  // reversed
  h.advance();
  EXPECT_EQ(h.proxy(0).stats.state, stopping_state::failed_desired_latency_correlation);
  EXPECT_EQ(h.proxy(0).stats.latency_correlation, -1.0);
  EXPECT_EQ(h.state.best_proxy_task_name, std::nullopt);

  harness g(o);
  g.advance();
  g.train(0, {10}, ordered_from(0));
  for (std::size_t m = 0; m < models; ++m) g.trial(0, m).metrics.latency = 2.0 * double(m);
  g.advance();
  EXPECT_EQ(g.proxy(0).stats.state, stopping_state::met_desired_accuracy_correlation);
  EXPECT_EQ(g.proxy(0).stats.latency_correlation, 1.0);
}

TEST(ProxySearch, WarnsOnScoresOutsideTheRewardRangeAndManyInvalidTrials) {
  harness h(options(1));
  h.advance();
  h.train(0, {10}, [](std::size_t m, double) { return 20.0 + static_cast<double>(m); });
  h.trial(0, 7).phase = trial_phase::failed;
  h.trial(0, 7).metrics.points.clear();
  h.trial(0, 6).phase = trial_phase::failed;
  h.trial(0, 6).metrics.points.clear();
  auto const& s = h.advance();
  auto const* f = finish_of(s.commands);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->result.at("status"), "found");
  EXPECT_TRUE(f->result.at("stop_at_pct").is_null()) << "a search, not a re-check";
  auto const& at_stop = f->result.at("proxy_tasks").at(0).at("at_stop");
  EXPECT_EQ(at_stop.at("training_step_pct").to_number<double>(), 10.0);
  EXPECT_EQ(at_stop.at("valid_pairs"), 6);
  EXPECT_EQ(at_stop.at("meets_desired_correlation"), true);
  auto const& w = f->result.at("warnings").as_array();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(std::string(w[0].as_string()).find("scale the reward by 0.1"), std::string::npos)
      << w[0];
  EXPECT_NE(std::string(w[1].as_string()).find("25%"), std::string::npos) << w[1];
}

// ---- re-check mode (stop_at_pct) ------------------------------------------------------------

TEST(ProxySearchRecheck, StopAtPctMustBeAPctAndTurnsTheStopRulesOff) {
  auto o = options();
  for (double const bad : {0.0, -5.0, 100.5, nan, std::numeric_limits<double>::infinity()}) {
    o.stop_at_pct = bad;
    EXPECT_THROW(wf::proxy_search_tool{o}, pt::logic_error) << bad;
  }
  for (double const good : {0.5, 40.0, 100.0}) {
    o.stop_at_pct = good;
    EXPECT_NO_THROW(wf::proxy_search_tool{o}) << good;
  }
  o.stop_at_pct = 40;
  auto with = [&](auto set) {
    auto x = o;
    set(x);
    return x;
  };
  using opts = wf::proxy_search_options;
  EXPECT_THROW(wf::proxy_search_tool{with([](opts& x) { x.desired_accuracy = 0.5; })},
               pt::logic_error);
  EXPECT_THROW(wf::proxy_search_tool{with([](opts& x) { x.training_time_hrs_limit = 1; })},
               pt::logic_error);
  EXPECT_THROW(
      wf::proxy_search_tool{with([](opts& x) { x.early_stop_proxy_task_if_not_best = true; })},
      pt::logic_error);
  EXPECT_THROW(wf::proxy_search_tool{with([](opts& x) { x.confidence_k = 2; })}, pt::logic_error);
}

TEST(ProxySearchRecheck, TrainsEveryTrialToThePctAndReportsTheCorrelationThere) {
  auto o = options(2);
  o.stop_at_pct = 40;
  harness h(o);
  auto const first = launches(h.advance().commands);
  ASSERT_EQ(first.size(), models);
  for (auto const& l : first) EXPECT_EQ(l.desired_pct, 40.0) << l.trial_id;

  // Correlation 1 from the first step: a search would stop here; a re-check trains on.
  h.train(0, {10, 20, 30}, ordered_from(0));
  h.advance();
  EXPECT_EQ(h.proxy(0).phase, wf::proxy_phase::running);
  EXPECT_EQ(h.proxy(0).stats.accuracy_correlation_over_step[0], 1.0);
  EXPECT_EQ(h.proxy(0).stats.stop_rule, "");
  // Every trial at 40% but one still running: the proxy waits for it.
  h.train(0, {10, 20, 30, 40}, ordered_from(0));
  for (std::size_t m = 0; m + 1 < models; ++m) h.trial(0, m).phase = trial_phase::succeeded;
  h.advance();
  EXPECT_EQ(h.proxy(0).phase, wf::proxy_phase::running);
  h.trial(0, models - 1).phase = trial_phase::succeeded;
  auto const& s = h.advance();

  auto const& st = h.proxy(0).stats;
  ASSERT_EQ(h.proxy(0).phase, wf::proxy_phase::done);
  EXPECT_EQ(st.state, stopping_state::ran_till_completion);
  EXPECT_EQ(st.stop_rule, "stop_at_pct");
  EXPECT_EQ(st.stop_step_index, 3u) << "the last column: where the trials stopped";
  EXPECT_EQ(st.final_training_steps, 400) << "the column's steps, no interpolation";
  ASSERT_TRUE(st.final_training_time_in_hours);
  EXPECT_NEAR(*st.final_training_time_in_hours, 0.4, 1e-12);
  EXPECT_EQ(*st.final_training_time_in_hours, st.median_training_time_hrs_over_step[3]);
  ASSERT_EQ(st.accuracy_at_stop.size(), models);
  for (std::size_t m = 0; m < models; ++m)
    EXPECT_NEAR(st.accuracy_at_stop[m], 0.46 + 0.01 * static_cast<double>(m), 1e-12);
  EXPECT_EQ(h.state.best_proxy_task_name, std::nullopt) << "no proxy succeeds by a rule";
  // The ended trials get the stop signal, nothing to stop; the next proxy starts at 40% too.
  std::size_t signals = 0, stops = 0;
  for (auto const& c : s.commands) {
    signals += std::holds_alternative<wf::set_desired_pct>(c) ? 1 : 0;
    stops += std::holds_alternative<wf::stop_trial>(c) ? 1 : 0;
  }
  EXPECT_EQ(signals, models);
  EXPECT_EQ(stops, 0u);
  auto const second = launches(s.commands);
  ASSERT_EQ(second.size(), models);
  EXPECT_EQ(second[0].trial_id, "proxy-1-model-0");
  for (auto const& l : second) EXPECT_EQ(l.desired_pct, 40.0) << l.trial_id;

  h.train(1, {10, 20, 30, 40}, shuffled);
  for (std::size_t m = 0; m < models; ++m) h.trial(1, m).phase = trial_phase::succeeded;
  auto const* f = finish_of(h.advance().commands);
  ASSERT_NE(f, nullptr);
  auto const& r = f->result;
  EXPECT_EQ(r.at("status"), "measured");
  EXPECT_TRUE(r.at("best_proxy_task_name").is_null());
  EXPECT_TRUE(r.at("final_training_steps").is_null());
  EXPECT_FALSE(r.as_object().contains("proxy_args"));
  EXPECT_EQ(r.at("stop_at_pct").to_number<double>(), 40.0);
  EXPECT_EQ(r.at("confidence_level").to_number<double>(), 0.95);
  auto const& proxies = r.at("proxy_tasks").as_array();
  ASSERT_EQ(proxies.size(), 2u);
  auto const& good = proxies[0].at("at_stop");
  EXPECT_EQ(proxies[0].at("stop_rule"), "stop_at_pct");
  EXPECT_EQ(proxies[0].at("final_training_steps"), 400);
  EXPECT_EQ(good.at("training_step_pct").to_number<double>(), 40.0);
  EXPECT_EQ(good.at("training_steps"), 400);
  EXPECT_EQ(good.at("correlation").to_number<double>(), 1.0);
  EXPECT_EQ(good.at("ci_low").to_number<double>(), 1.0) << "a perfect ranking's CI is [1, 1]";
  EXPECT_EQ(good.at("ci_high").to_number<double>(), 1.0);
  EXPECT_EQ(good.at("valid_pairs"), 8);
  EXPECT_EQ(good.at("meets_desired_correlation"), true);
  auto const& bad = proxies[1].at("at_stop");
  EXPECT_EQ(bad.at("meets_desired_correlation"), false);
  EXPECT_EQ(bad.at("correlation").to_number<double>(), h.proxy(1).stats.kendall_over_step[3]);
  auto const& advice = r.at("advice").as_array();
  ASSERT_EQ(advice.size(), 3u);
  EXPECT_NE(std::string(advice[0].as_string()).find("re-check"), std::string::npos) << advice[0];
  std::string const line(advice[1].as_string());
  EXPECT_EQ(line.rfind("\"proxy0\" at 40% (400 steps, 0.4 h): kendall 1, 95% CI [1, 1], p ", 0), 0u)
      << line;
  EXPECT_TRUE(line.ends_with(", 8 valid pairs: meets the desired correlation 0.65")) << line;
  EXPECT_NE(std::string(advice[2].as_string()).find(": below the desired correlation 0.65"),
            std::string::npos)
      << advice[2];
  EXPECT_NE(f->summary.find("1 of 2 proxies meet"), std::string::npos) << f->summary;
  EXPECT_EQ(h.tool.describe(h.state, h.obs).decision,
            "measured at 40% (a re-check names no best proxy)");
}

TEST(ProxySearchRecheck, StopsAtTheFirstPctAtOrAfterItAcrossEvaluationCadences) {
  auto o = options(1);
  o.stop_at_pct = 40;
  harness h(o);
  h.advance();
  h.train(0, {10, 20, 30, 40}, ordered_from(0));
  // Model 0 evaluates every 25%: its first point at or after 40% is 50%.
  h.trial(0, 0).metrics.points = curve({25, 50}, [](double pct) { return 0.3 + 0.004 * pct; });
  h.trial(0, 0).metrics.time = {500, 1800};
  for (std::size_t m = 0; m < models; ++m) h.trial(0, m).phase = trial_phase::succeeded;
  h.advance();
  auto const& st = h.proxy(0).stats;
  ASSERT_EQ(st.training_step_pct, (std::vector<double>{10, 20, 25, 30, 40, 50}));
  EXPECT_EQ(st.stop_step_index, 4u) << "40%, not the last column (50%: model 0 alone)";
  EXPECT_EQ(st.valid_pairs_over_step[4], 8) << "model 0's 40% is interpolated";
  EXPECT_EQ(st.valid_pairs_over_step[5], 1);
  EXPECT_EQ(st.final_training_steps, 400);
}

TEST(ProxySearchRecheck, ExcessFailuresStillEndAProxyAndTheLatencyIsMeasuredNotChecked) {
  auto o = options(1);
  o.stop_at_pct = 50;
  harness h(o);
  h.advance();
  h.train(0, {10}, ordered_from(0));
  for (std::size_t const m : {1, 5, 6}) h.trial(0, m).phase = trial_phase::failed;
  auto const* f = finish_of(h.advance().commands);
  EXPECT_EQ(h.proxy(0).stats.state, stopping_state::excess_trial_failures);
  EXPECT_EQ(h.proxy(0).stats.stop_rule, "failed_trials");
  EXPECT_FALSE(h.proxy(0).stats.stop_step_index);
  EXPECT_FALSE(h.proxy(0).stats.final_training_steps);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->result.at("status"), "measured");
  auto const& p = f->result.at("proxy_tasks").as_array().at(0);
  EXPECT_TRUE(p.at("at_stop").is_null());
  EXPECT_EQ(std::string(f->result.at("advice").as_array().at(1).as_string()),
            "\"proxy0\": not measured (Excess trial failures, 3 of 8 trials failed)");
  auto const& w = f->result.at("warnings").as_array();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_NE(std::string(w[0].as_string()).find("37.5%"), std::string::npos) << w[0];

  o.stop_at_pct = 20;
  o.use_latency = true;
  harness g(o);
  g.advance();
  g.train(0, {10, 20}, ordered_from(0));
  for (std::size_t m = 0; m < models; ++m) {
    g.trial(0, m).measured_latency = 10.0 - static_cast<double>(m);  // reversed
    g.trial(0, m).phase = trial_phase::succeeded;
  }
  g.advance();
  EXPECT_EQ(g.proxy(0).stats.state, stopping_state::ran_till_completion);
  EXPECT_EQ(g.proxy(0).stats.stop_rule, "stop_at_pct");
  EXPECT_EQ(g.proxy(0).stats.latency_correlation, -1.0);
}

// ---- the state file ------------------------------------------------------------------------

TEST(ProxySearchState, HoldsTheReferenceFieldsAndOurs) {
  harness h;
  h.advance();
  h.train(0, {10, 20}, ordered_from(15));
  h.advance();
  auto const v = boost::json::value_from(h.state);
  auto const& o = v.as_object();
  EXPECT_EQ(o.at("best_proxy_task_name"), "proxy0");
  EXPECT_EQ(o.at("method"), "kendall");
  auto const& map = o.at("proxy_tasks_map").as_object();
  ASSERT_EQ(map.size(), 2u);
  auto const& stats = map.at("proxy0").at("proxy_task_stats").as_object();
  for (auto const* key :
       {"training_steps", "accuracy_correlation_over_step",
        "accuracy_correlation_p_value_over_step", "median_accuracy_over_step",
        "median_training_time_hrs_over_step", "latency_correlation", "stopping_state",
        "final_training_steps", "final_training_time_in_hours", "ci_low_over_step",
        "ci_high_over_step", "stop_rule", "valid_pairs_over_step"})
    EXPECT_TRUE(stats.contains(key)) << key;
  EXPECT_EQ(stats.at("stopping_state"), "Met desired correlation");
  EXPECT_EQ(stats.at("final_training_steps"), 182) << "-1 at 100, 1 at 200";
  EXPECT_TRUE(stats.at("latency_correlation").is_null());
  EXPECT_EQ(map.at("proxy1").at("phase"), "running") << "launched, not yet measured";
  EXPECT_TRUE(map.at("proxy1").at("proxy_task_stats").at("training_steps").as_array().empty());
  EXPECT_EQ(boost::json::value_from(round_trip(h.state)), v);
}

TEST(ProxySearchState, ErrorsNameTheFileAndThePointer) {
  harness h;
  h.advance();
  h.train(0, {10, 20}, shuffled);
  h.advance();
  auto const good = boost::json::value_from(h.state);
  auto const error_of = [](boost::json::value const& v) {
    auto const r = wf::proxy_search_tool::state_from_json(v, pt::json_location("S.json"));
    EXPECT_FALSE(r.has_value());
    return r ? std::string() : r.error().context;
  };
  auto v = good;
  v.as_object().erase("proxy_tasks_map");
  EXPECT_EQ(error_of(v), "S.json#/proxy_tasks_map: missing");
  v = good;
  v.at("proxy_tasks_map").at("proxy0").at("proxy_task_stats").as_object()["training_steps"] = 3;
  EXPECT_EQ(error_of(v),
            "S.json#/proxy_tasks_map/proxy0/proxy_task_stats/training_steps: "
            "expected an array");
  v = good;
  v.at("proxy_tasks_map").at("proxy0").at("proxy_task_stats").as_object()["stopping_state"] = "x";
  EXPECT_NE(error_of(v).find("#/proxy_tasks_map/proxy0/proxy_task_stats/stopping_state: unknown"),
            std::string::npos);
  v = good;
  v.at("proxy_tasks_map").at("proxy0").as_object()["phase"] = "sleeping";
  EXPECT_NE(error_of(v).find("#/proxy_tasks_map/proxy0/phase"), std::string::npos);
  v = good;
  v.as_object()["schema_version"] = 99;
  EXPECT_NE(error_of(v).find("#/schema_version"), std::string::npos);
}

TEST(ReferenceModels, LoadModelSelectionsResultAndAJsonArray) {
  pt::testing::temp_dir dir;
  auto const ms = dir.path() / "MODEL_SELECTION_RESULT.json";
  boost::json::object spec{{"model_id", "m0"}, {"parameters", {{"width", 3}}}};
  ASSERT_TRUE(pt::write_file_atomically(
      ms, boost::json::serialize(boost::json::object{
              {"status", "complete"},
              {"reference_models",
               {{{"model_id", "m0"}, {"spec", spec}, {"accuracy", 0.5}, {"latency", nullptr}}}}})));
  auto const a = wf::load_reference_models(ms);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].model_id, "m0");
  EXPECT_EQ((*a)[0].accuracy, 0.5);
  EXPECT_FALSE((*a)[0].latency);

  auto const user = dir.path() / "refs.json";
  ASSERT_TRUE(pt::write_file_atomically(
      user,
      boost::json::serialize(boost::json::array{{{"spec", spec}, {"accuracy", 0.7}, {"latency", 3}},
                                                {{"spec", spec}, {"accuracy", "high"}}})));
  auto const b = wf::load_reference_models(user);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().context.find("#/1/accuracy"), std::string::npos) << b.error().context;
}

TEST(ReferenceModels, LoadModelSelectionsCsvTable) {
  pt::testing::temp_dir dir;
  auto const csv = dir.path() / "reference_models.csv";
  ASSERT_TRUE(pt::write_file_atomically(
      csv,
      "model_index,model_id,trial_id,accuracy,latency,seed,trial_dir,spec\n"
      "0,m0,iter-4-model-0,0.81,,7,trials/iter-4-model-0,"
      "\"{\"\"model_id\"\":\"\"m0\"\",\"\"parameters\"\":{\"\"width\"\":3}}\"\n"
      "3,m3,iter-4-model-3,0.5,2.5,9,trials/iter-4-model-3,"
      "\"{\"\"model_id\"\":\"\"m3\"\",\"\"parameters\"\":{}}\"\n"));
  auto const a = wf::load_reference_models(csv);
  ASSERT_TRUE(a) << a.error().message();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].model_id, "m0");
  EXPECT_EQ((*a)[0].spec.parameters.at("width"), 3);
  EXPECT_EQ((*a)[0].accuracy, 0.81);
  EXPECT_FALSE((*a)[0].latency);
  EXPECT_EQ((*a)[1].latency, 2.5);

  auto const bad = dir.path() / "bad.CSV";
  ASSERT_TRUE(pt::write_file_atomically(bad, "model_id,accuracy,spec\nm0,0.5,{not json\n"));
  auto const b = wf::load_reference_models(bad);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().context.find("bad.CSV:2"), std::string::npos) << b.error().context;
  auto const missing = dir.path() / "missing.csv";
  ASSERT_TRUE(pt::write_file_atomically(missing, "model_id,accuracy\nm0,0.5\n"));
  EXPECT_FALSE(wf::load_reference_models(missing));
}

// ---- end to end: the driver on the simulated executor ------------------------------------------

pt::exec::simulated_options sim_options() {
  pt::exec::simulated_options o;
  o.poll_interval_s = 100;
  o.steps_per_second = 2;  // 200 steps = 20% per poll
  o.total_steps = 1000;
  o.cycle_steps = 50;
  o.noise = 0.01;
  o.seed = 5;
  return o;
}

/// The simulated executor with proxies that differ: proxy 0 ranks the models in reverse (its
/// final accuracies mirrored), and proxy p's training takes `slowdown[p]` times as long.
class proxy_simulation {
 public:
  explicit proxy_simulation(pt::exec::simulated_executor& inner) : inner_(inner) {}
  pt::result<void> launch(wf::launch_trial l) {
    if (l.trial_id.rfind("proxy-0-", 0) == 0) {
      double const a = l.spec.parameters.at("final_accuracy").to_number<double>();
      l.spec.parameters["final_accuracy"] = 1.5 - a;
    }
    return inner_.launch(l);
  }
  pt::result<wf::observation> observe() {
    auto obs = inner_.observe();
    if (!obs) return obs;
    for (auto& t : obs->trials) {
      double const slowdown = t.trial_id.rfind("proxy-1-", 0) == 0 ? 3.0 : 1.0;
      t.metrics.time.total_training_time_in_secs *= slowdown;
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

boost::json::value read_json(std::filesystem::path const& p) {
  return pt::parse_json(pt::read_file(p).value(), p.string()).value();
}

wf::proxy_search_options e2e_options() {
  auto o = options(3);
  o.training_time_hrs_limit = 0.12;
  return o;
}

TEST(ProxySearchEndToEnd, FindsTheCheapestCorrelatingProxyAndResumesToTheSameResult) {
  wf::proxy_search_tool const tool(e2e_options());
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor sim(dir.path(), sim_options());
  proxy_simulation exec(sim);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(read_json(dir.path() / "PROXY_SEARCH_RESULT.json"), *r);
  auto const state = read_json(dir.path() / "SEARCH_CONTROLLER_STATE.json");
  auto const& map = state.at("proxy_tasks_map").as_object();
  EXPECT_NE(map.at("proxy0").at("proxy_task_stats").at("stopping_state"), "Met desired correlation")
      << "the mirrored proxy never correlates";
  EXPECT_EQ(map.at("proxy0").at("proxy_task_stats").at("stop_rule"), "time_limit");
  EXPECT_EQ(map.at("proxy1").at("proxy_task_stats").at("stopping_state"),
            "Met desired correlation");
  EXPECT_EQ(map.at("proxy2").at("proxy_task_stats").at("stopping_state"),
            "Met desired correlation");
  EXPECT_EQ(r->at("best_proxy_task_name"), "proxy2") << "as good as proxy1, three times faster";
  EXPECT_GT(r->at("final_training_steps").to_number<std::int64_t>(), 0);

  // max_polls = 1: every poll is a fresh controller on the same run directory.
  pt::testing::temp_dir again_dir;
  for (int restarts = 0; restarts < 500; ++restarts) {
    pt::exec::simulated_executor sim2(again_dir.path(), sim_options());
    proxy_simulation exec2(sim2);
    auto const again = wf::run(tool, exec2, {.run_dir = again_dir.path(), .max_polls = 1});
    if (again) {
      EXPECT_EQ(*again, *r);
      EXPECT_EQ(read_json(again_dir.path() / "SEARCH_CONTROLLER_STATE.json"), state);
      return;
    }
    ASSERT_EQ(again.error().code, pt::errc::cancelled) << again.error().message();
  }
  FAIL() << "did not finish";
}

TEST(ProxySearchEndToEnd, ConfidenceModeStopsAtTheInterpolatedCrossingOfTheHeldLowerBound) {
  auto o = e2e_options();
  o.confidence_k = 2;
  wf::proxy_search_tool const tool(o);
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor sim(dir.path(), sim_options());
  proxy_simulation exec(sim);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at("best_proxy_task_name"), "proxy2");
  auto const state = read_json(dir.path() / "SEARCH_CONTROLLER_STATE.json");
  auto const& stats = state.at("proxy_tasks_map").at("proxy2").at("proxy_task_stats");
  EXPECT_EQ(stats.at("stop_rule"), "confidence");
  auto const index = stats.at("stop_step_index").to_number<std::size_t>();
  ASSERT_GE(index, 1u);
  auto const& steps = stats.at("training_steps").as_array();
  auto const final_steps = stats.at("final_training_steps").to_number<std::int64_t>();
  EXPECT_LE(final_steps, steps.at(index).to_number<std::int64_t>());
  EXPECT_GT(final_steps, steps.at(index - 1).to_number<std::int64_t>())
      << "interpolated from the step before";
  for (std::size_t c = index - 1; c <= index; ++c)
    EXPECT_GE(stats.at("ci_low_over_step").at(c).to_number<double>(), 0.65);
}

TEST(ProxySearchEndToEnd, AProxyWhoseTrialsFailEndsOnExcessFailures) {
  auto o = options(1);
  o.training_time_hrs_limit = 0.12;
  wf::proxy_search_tool const tool(o);
  pt::testing::temp_dir dir;
  auto so = sim_options();
  so.oom_rate = 0.6;
  pt::exec::simulated_executor exec(dir.path(), so);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  auto const& p = r->at("proxy_tasks").as_array().at(0);
  EXPECT_EQ(p.at("stopping_state"), "Excess trial failures");
  EXPECT_EQ(p.at("stop_rule"), "failed_trials");
  EXPECT_GT(p.at("failed_trials").to_number<int>(), 2);
  EXPECT_EQ(r->at("status"), "none_succeeded");
  EXPECT_TRUE(r->at("best_proxy_task_name").is_null());
}

TEST(ProxySearchEndToEnd, AnEndedSearchExtendedWithNewProxiesSearchesThemAndKeepsTheRest) {
  // The seed's resume section: a search that ended is run again with one more proxy config.
  auto two = e2e_options();
  two.proxies.resize(2);
  pt::testing::temp_dir dir;
  {
    wf::proxy_search_tool const tool(two);
    pt::exec::simulated_executor sim(dir.path(), sim_options());
    proxy_simulation exec(sim);
    auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->at("best_proxy_task_name"), "proxy1");
  }
  auto const before = read_json(dir.path() / "SEARCH_CONTROLLER_STATE.json");
  wf::proxy_search_tool const tool(e2e_options());  // proxy0, proxy1 and now proxy2
  pt::exec::simulated_executor sim(dir.path(), sim_options());
  proxy_simulation exec(sim);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at("best_proxy_task_name"), "proxy2") << "as good as proxy1, three times faster";
  auto const after = read_json(dir.path() / "SEARCH_CONTROLLER_STATE.json");
  auto const& map = after.at("proxy_tasks_map").as_object();
  ASSERT_EQ(map.size(), 3u);
  for (char const* kept : {"proxy0", "proxy1"})
    EXPECT_EQ(map.at(kept), before.at("proxy_tasks_map").at(kept)) << kept << " measured again";
  EXPECT_EQ(map.at("proxy2").at("proxy_task_stats").at("stopping_state"),
            "Met desired correlation");
  EXPECT_EQ(map.at("proxy2").at("trial_ids").as_array().at(0), "proxy-2-model-0");
}

TEST(ProxySearchEndToEnd, ARecheckStopsEveryTrialAtThePctAndResumesToTheSameResult) {
  auto o = options(3);
  o.stop_at_pct = 30;
  wf::proxy_search_tool const tool(o);
  pt::testing::temp_dir dir;
  pt::exec::simulated_executor sim(dir.path(), sim_options());
  proxy_simulation exec(sim);
  auto const r = wf::run(tool, exec, {.run_dir = dir.path()});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->at("status"), "measured");
  EXPECT_TRUE(r->at("best_proxy_task_name").is_null());
  auto const state = read_json(dir.path() / "SEARCH_CONTROLLER_STATE.json");
  for (auto const& kv : state.at("proxy_tasks_map").as_object()) {
    std::string const name(kv.key());
    auto const& stats = kv.value().at("proxy_task_stats");
    EXPECT_EQ(stats.at("stop_rule"), "stop_at_pct") << name;
    auto const& pcts = stats.at("training_step_pct").as_array();
    ASSERT_FALSE(pcts.empty()) << name;
    EXPECT_EQ(pcts.back().to_number<double>(), 30.0) << name << ": the trainers stopped there";
    EXPECT_EQ(stats.at("final_training_steps"), 300) << name;
  }
  auto const& proxies = r->at("proxy_tasks").as_array();
  EXPECT_EQ(proxies.at(0).at("at_stop").at("meets_desired_correlation"), false) << "mirrored";
  EXPECT_EQ(proxies.at(2).at("at_stop").at("meets_desired_correlation"), true);

  // max_polls = 1: every poll is a fresh controller on the same run directory.
  pt::testing::temp_dir again_dir;
  for (int restarts = 0; restarts < 500; ++restarts) {
    pt::exec::simulated_executor sim2(again_dir.path(), sim_options());
    proxy_simulation exec2(sim2);
    auto const again = wf::run(tool, exec2, {.run_dir = again_dir.path(), .max_polls = 1});
    if (again) {
      EXPECT_EQ(*again, *r);
      EXPECT_EQ(read_json(again_dir.path() / "SEARCH_CONTROLLER_STATE.json"), state);
      return;
    }
    ASSERT_EQ(again.error().code, pt::errc::cancelled) << again.error().message();
  }
  FAIL() << "did not finish";
}

}  // namespace
