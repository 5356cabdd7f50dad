#pragma once
// Definitions of workflow/variance_tool.hpp (included at its end).

#include <proxytask/workflow/variance_tool.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <span>
#include <utility>

namespace proxytask::workflow {

namespace detail {

/// SplitMix64's finaliser: a bijection that spreads nearby inputs over all 64 bits.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// What a derived seed is for: no two purposes share a stream.
enum class seed_purpose : std::uint64_t { workable_try = 1, copy = 2, bootstrap = 3 };

/// A seed for (purpose, index) from the tool's seed, below 2^31: trainers pass seeds to RNGs
/// that take 32-bit (numpy) or even signed 32-bit values.
constexpr std::uint64_t derive_seed(std::uint64_t seed, seed_purpose purpose,
                                    std::uint64_t index) noexcept {
  return mix64(mix64(seed ^ mix64(static_cast<std::uint64_t>(purpose))) + index) >> 33;
}

/// `wanted`, or the next free value (mod 2^31) when a recorded trial already has it, so that
/// every trial of a measurement has its own seed.
inline std::uint64_t unused_seed(variance_state const& s, std::uint64_t wanted) {
  std::set<std::uint64_t> used;
  for (auto const& t : s.tries) used.insert(t.seed);
  for (auto const& c : s.copies)
    for (auto const& a : c.attempts) used.insert(a.seed);
  while (used.count(wanted) != 0) wanted = (wanted + 1) & 0x7fffffffULL;
  return wanted;
}

/// Appends a running attempt to `copy` and returns it.
inline copy_attempt const& new_attempt(measured_copy& copy, std::string trial_id,
                                       std::uint64_t seed) {
  copy_attempt a;
  a.trial_id = std::move(trial_id);
  a.seed = seed;
  copy.attempts.push_back(std::move(a));
  return copy.attempts.back();
}

inline std::string trial_dir(std::string_view trial_id) {
  return "trials/" + std::string(trial_id);
}

/// Python's str() of a float for the info strings (shortest round trip; "12.0", not "12").
inline std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto const [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

/// The number as Python writes an int constant (10) or a float (0.4).
inline std::string python_threshold(double v) {
  if (v == std::trunc(v) && std::abs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return python_float(v);
}

/// "12.5%" or "no metrics" for a failure message.
inline std::string reached_text(std::span<stats::curve_point const> points) {
  auto const curve = stats::normalise_curve(points);
  if (curve.empty()) return "without any metrics";
  return "at " + python_float(curve.back().training_step_pct) + "%";
}

/// Judges the last workable try by its trial's status (it stays running while undecided).
inline void judge_try(workable_try& t, trial_status const& status, double workable_pct) {
  if (status.phase == trial_phase::failed) {
    t.outcome = attempt_outcome::failed;
    t.failure = status.failure;
    t.message = status.failure_message.empty() ? "the trial failed" : status.failure_message;
    return;
  }
  auto const acc = stats::accuracy_at_pct(status.metrics.points, workable_pct);
  if (acc) {
    if (std::isfinite(*acc)) {
      t.outcome = attempt_outcome::succeeded;
      t.accuracy = *acc;
    } else {
      t.outcome = attempt_outcome::failed;
      t.failure = protocol::failure_kind::diverged;
      t.message = "the accuracy at " + python_float(workable_pct) + "% is not finite";
    }
    return;
  }
  if (is_terminal(status.phase)) {
    t.outcome = attempt_outcome::failed;
    if (status.metrics.points.empty()) t.failure = protocol::failure_kind::no_metrics;
    t.message = "it " + std::string(to_string(status.phase)) + " " +
                reached_text(status.metrics.points) + " without reaching " +
                python_float(workable_pct) + "%";
  }
}

/// The pct a copy must reach. reference tool:
/// monitor_and_stop_trials(desired_training_step_pct=100) and "Desired 100% training" in
/// _get_trial_training_metrics.
inline constexpr double copy_pct = 100.0;

/// Judges a copy's attempt by its trial's status (it stays running while the trial runs).
inline void judge_copy(copy_attempt& a, trial_status const& status) {
  if (status.phase == trial_phase::failed) {
    a.outcome = attempt_outcome::failed;
    a.failure = status.failure;
    a.message = status.failure_message.empty() ? "the trial failed" : status.failure_message;
    return;
  }
  if (!is_terminal(status.phase)) return;
  auto const curve = stats::normalise_curve(status.metrics.points);
  a.outcome = attempt_outcome::failed;
  if (curve.empty()) {
    a.failure = protocol::failure_kind::no_metrics;
    a.message = "it " + std::string(to_string(status.phase)) + " without any metrics";
  } else if (curve.back().training_step_pct < copy_pct) {
    a.message = "it " + std::string(to_string(status.phase)) + " " +
                reached_text(status.metrics.points) + " without reaching 100%";
  } else if (!std::isfinite(curve.back().accuracy)) {
    a.failure = protocol::failure_kind::diverged;
    a.message = "its final accuracy is not finite";
  } else {
    a.outcome = attempt_outcome::succeeded;
    a.final_accuracy = curve.back().accuracy;
    a.curve = status.metrics.points;
  }
}

// ---- the result -----------------------------------------------------------------------------

/// A verdict and, when undefined, why.
struct verdict {
  std::string_view word;  ///< "good", "too_high", "undefined"
  std::string reason;     ///< when undefined
  std::string why;        ///< a sentence for the info string, when undefined
};

inline constexpr char const variance_advice[] =
    "Variance is high: use a cosine learning-rate decay whose decay steps equal the reduced "
    "training steps, so that the learning rate is almost zero at the end. With a constant (or "
    "step-wise) rate the score jumps around at the end of training, and a small change in the "
    "number of proxy-task steps then causes a big change in the proxy-task reward.";
inline constexpr char const smoothness_advice[] =
    "Smoothness is high: use a cosine learning-rate decay, which makes the curve smoother "
    "towards the end of training. If you use heavy augmentation, the curve may stay rough: "
    "heavy augmentation indicates a lack of training data, and then Neural Architecture Search "
    "is not recommended (consider augmentation search instead). Otherwise smooth further with "
    "an exponential moving average of the weights (TensorFlow 2) or stochastic weight "
    "averaging (PyTorch).";
inline constexpr char const failures_advice[] =
    "Trials failed: for out-of-memory errors reduce the batch size (sampled models can be much "
    "larger than the baseline); for NaN errors reduce the initial learning rate or add "
    "gradient clipping.";
inline constexpr char const flat_advice[] =
    "A copy's accuracy never changed during training: check that the model learns (learning "
    "rate, data, the reported metric) before measuring.";
inline constexpr char const mean_advice[] =
    "The final accuracies average to 0 or less: check the metric the trainer reports (it "
    "should be an accuracy-like score, higher is better).";

/// {"trial_id", "seed", "failure" (kind or null), "message"}
inline boost::json::object failure_json(std::string_view trial_id, std::uint64_t seed,
                                        std::optional<protocol::failure_kind> failure,
                                        std::string const& message) {
  boost::json::object o{{"trial_id", trial_id}, {"seed", seed}, {"message", message}};
  if (failure)
    o["failure"] = protocol::to_string(*failure);
  else
    o["failure"] = nullptr;
  return o;
}

inline std::string failure_text(std::optional<protocol::failure_kind> failure,
                                std::string const& message) {
  return (failure ? std::string(protocol::to_string(*failure)) + ": " : std::string()) + message;
}

/// Whether a curve's accuracy is constant (in float32, where curve_smoothness decides that).
inline bool is_flat(std::span<stats::curve_point const> curve) {
  auto const points = stats::normalise_curve(curve);
  if (points.empty()) return false;
  auto const first = static_cast<float>(points.front().accuracy);
  return std::all_of(points.begin(), points.end(), [first](stats::curve_point const& p) {
    return static_cast<float>(p.accuracy) == first;
  });
}

/// A percentile bootstrap interval of the coefficient of variation over resampled copies:
/// resample r draws n indices from philox_stream(seed, 0, r, bootstrap).
inline boost::json::object variance_interval(std::span<double const> values, double theta,
                                             variance_options const& o) {
  std::uint64_t const seed = derive_seed(o.seed, seed_purpose::bootstrap, 0);
  auto const n = static_cast<std::uint32_t>(values.size());
  std::vector<double> replicates;
  replicates.reserve(o.bootstrap_resamples);
  std::vector<double> sample(values.size());
  for (std::size_t r = 0; r < o.bootstrap_resamples; ++r) {
    stats::philox_stream draw(seed, 0, static_cast<std::uint32_t>(r),
                              stats::draw_purpose::bootstrap);
    for (auto& v : sample) v = values[stats::uniform_index(draw(), n)];
    replicates.push_back(stats::coefficient_of_variation(sample).value);
  }
  auto const summary = stats::summarize_bootstrap(
      replicates, theta, {}, stats::interval_method::percentile, o.confidence, std::nullopt);
  return {{"method", "percentile"},
          {"confidence", o.confidence},
          {"resamples", o.bootstrap_resamples},
          {"seed", seed},
          {"low", json_number(summary.low)},
          {"high", json_number(summary.high)},
          {"undefined_resamples", summary.undefined}};
}

inline finish no_workable_result(variance_state const& s, variance_options const& o) {
  boost::json::array tries;
  std::string listed;
  for (auto const& t : s.tries) {
    auto f = failure_json(t.trial_id, t.seed, t.failure, t.message);
    f["model_id"] = t.spec.model_id;
    tries.push_back(std::move(f));
    listed += (listed.empty() ? "" : "; ") + t.trial_id + " (" + t.spec.model_id +
              "): " + failure_text(t.failure, t.message);
  }
  std::string const message = "no workable model in " + std::to_string(s.tries.size()) +
                              " tries (a model is workable when it reaches " +
                              python_float(o.workable_pct) + "% with a finite accuracy)";
  boost::json::object result{{"status", "no_workable_model"},
                             {"message", message},
                             {"tries", std::move(tries)},
                             {"advice", boost::json::array{failures_advice}}};
  return finish{std::move(result), message + ": " + listed, {}};
}

inline finish measured_result(variance_state const& s, variance_options const& o) {
  auto const& workable = s.tries.at(*s.workable);
  std::vector<double> accuracies;
  std::vector<std::vector<stats::curve_point>> curves;
  boost::json::array copies, left_out;
  for (std::size_t c = 0; c < s.copies.size(); ++c) {
    auto const& copy = s.copies[c];
    if (auto const* a = copy.success()) {
      accuracies.push_back(a->final_accuracy);
      curves.push_back(a->curve);
      copies.push_back({{"copy", c},
                        {"trial_id", a->trial_id},
                        {"seed", a->seed},
                        {"final_accuracy", json_number(a->final_accuracy)},
                        {"retried", copy.attempts.size() > 1}});
    } else {
      boost::json::array attempts;
      for (auto const& a : copy.attempts)
        attempts.push_back(failure_json(a.trial_id, a.seed, a.failure, a.message));
      left_out.push_back({{"copy", c}, {"attempts", std::move(attempts)}});
    }
  }
  bool const enough = accuracies.size() >= 2;

  // Variance.
  stats::variance_result variance;
  verdict variance_verdict{"undefined", "too_few_copies",
                           std::to_string(accuracies.size()) + " of " +
                               std::to_string(s.copies.size()) +
                               " copies finished, at least 2 are needed"};
  if (enough) {
    variance = stats::coefficient_of_variation(accuracies);
    if (variance.reason != stats::variance_reason::none)
      variance_verdict = {
          "undefined", std::string(stats::to_string(variance.reason)),
          variance.reason == stats::variance_reason::non_finite_value
              ? "a final accuracy is not finite"
              : "the mean of the final accuracies is " +
                    std::string(variance.reason == stats::variance_reason::zero_mean ? "0"
                                                                                     : "negative")};
    else
      variance_verdict = {stats::is_good(variance) ? "good" : "too_high", "", ""};
  }

  // Smoothness.
  stats::smoothness_result smooth;
  boost::json::array per_curve;
  verdict smooth_verdict{"undefined", "too_few_copies", "no copy finished"};
  if (!curves.empty()) {
    auto const all = stats::smoothness(curves);
    if (!all) {
      smooth_verdict = {"undefined", "too_few_points", all.error().context};
    } else {
      smooth = all->mean;
      for (std::size_t c = 0; c < all->per_curve.size(); ++c)
        per_curve.push_back(json_number(all->per_curve[c].value));
      bool const flat = std::any_of(curves.begin(), curves.end(),
                                    [](auto const& curve) { return is_flat(curve); });
      if (smooth.reason != stats::smoothness_reason::none)
        smooth_verdict = {"undefined", std::string(stats::to_string(smooth.reason)),
                          "an accuracy is not finite"};
      else if (flat)
        // A flat curve has smoothness 0 by definition, which says nothing about the noise.
        smooth_verdict = {"undefined", "flat_curve", "a copy's accuracy never changed"};
      else
        smooth_verdict = {stats::is_good(smooth) ? "good" : "too_high", "", ""};
    }
  }
  for (std::size_t i = 0; i < copies.size() && i < per_curve.size(); ++i)
    copies[i].as_object()["smoothness"] = per_curve[i];

  // reference tool: generate_measurement_results
  std::string variance_info, smoothness_info;
  if (variance_verdict.word == "good")
    variance_info = "Model variance is good.";
  else if (variance_verdict.word == "too_high")
    variance_info = "Model variance is not good, measured:" + python_float(variance.value) +
                    " > threshold:" + python_threshold(stats::max_good_variance) +
                    ". See proxy-task-design#variance_measurement";
  else
    variance_info = "Model variance is undefined: " + variance_verdict.why + ".";
  if (smooth_verdict.word == "good")
    smoothness_info = "Model smoothness is good.";
  else if (smooth_verdict.word == "too_high")
    smoothness_info = "Model smoothness is not good, measured:" + python_float(smooth.value) +
                      " > threshold:" + python_threshold(stats::max_good_smoothness) +
                      ". See proxy-task-design#variance_measurement";
  else
    smoothness_info = "Model smoothness is undefined: " + smooth_verdict.why + ".";

  boost::json::array advice;
  if (variance_verdict.word == "too_high") advice.push_back(variance_advice);
  if (smooth_verdict.word == "too_high") advice.push_back(smoothness_advice);
  if (smooth_verdict.reason == "flat_curve") advice.push_back(flat_advice);
  if (variance_verdict.reason == "zero_mean" || variance_verdict.reason == "negative_mean")
    advice.push_back(mean_advice);
  if (!left_out.empty()) advice.push_back(failures_advice);

  boost::json::object m{
      {"variance_value", enough ? json_number(variance.value) : boost::json::value(nullptr)},
      {"variance_info", variance_info},
      {"smoothness_value",
       curves.empty() ? boost::json::value(nullptr) : json_number(smooth.value)},
      {"smoothness_info", smoothness_info},
      {"status", enough ? "measured" : "too_few_copies"},
      {"variance_verdict", variance_verdict.word},
      {"smoothness_verdict", smooth_verdict.word},
      {"variance_threshold", stats::max_good_variance},
      {"smoothness_threshold", stats::max_good_smoothness},
      {"workable_trial_id", workable.trial_id},
      {"model_spec", boost::json::value_from(workable.spec)},
      {"copies_requested", s.copies.size()},
      {"copies", std::move(copies)},
      {"left_out_copies", std::move(left_out)},
      {"advice", std::move(advice)}};
  if (!variance_verdict.reason.empty()) m["variance_reason"] = variance_verdict.reason;
  if (!smooth_verdict.reason.empty()) m["smoothness_reason"] = smooth_verdict.reason;
  m["variance_ci"] = enough && variance.reason == stats::variance_reason::none
                         ? boost::json::value(variance_interval(accuracies, variance.value, o))
                         : boost::json::value(nullptr);

  std::string summary = enough ? "measured " : "too few copies: ";
  summary += variance_info + " " + smoothness_info + " (" + std::to_string(accuracies.size()) +
             " of " + std::to_string(s.copies.size()) + " copies of " + workable.spec.model_id +
             ")";
  boost::json::value result = m;
  std::map<std::string, boost::json::value> files;
  files.emplace(std::string(variance_tool::result_file_name), std::move(m));
  return finish{std::move(result), std::move(summary), std::move(files)};
}

// ---- JSON -----------------------------------------------------------------------------------

inline boost::json::array curve_json(std::span<stats::curve_point const> curve) {
  boost::json::array a;
  a.reserve(curve.size());
  for (auto const& p : curve)
    a.push_back({{"training_step_pct", json_number(p.training_step_pct)},
                 {"training_step", p.training_step},
                 {"accuracy", json_number(p.accuracy)}});
  return a;
}

inline void put_outcome(boost::json::object& o, attempt_outcome outcome,
                        std::optional<protocol::failure_kind> failure, std::string const& message) {
  o["outcome"] = to_string(outcome);
  if (failure) o["failure"] = protocol::to_string(*failure);
  o["message"] = message;
}

inline result<std::uint64_t> read_seed(boost::json::value const& v, json_location const& where) {
  if (v.is_uint64()) return v.get_uint64();
  auto const s = read_json_count(v, where);
  if (!s) return s.error();
  return static_cast<std::uint64_t>(*s);
}

inline result<attempt_outcome> read_outcome(boost::json::value const& v,
                                            json_location const& where) {
  auto const s = read_json_string(v, where);
  if (!s) return s.error();
  if (auto const o = parse_attempt_outcome(*s)) return *o;
  return where.fail("unknown outcome \"" + *s + "\" (expected running, succeeded or failed)");
}

/// "outcome", "failure"? and "message" of a try or an attempt.
template <class T>
result<void> read_outcome_fields(boost::json::object const& o, json_location const& where, T& out) {
  auto const outcome = read_json_member(o, "outcome", where, read_outcome);
  if (!outcome) return outcome.error();
  out.outcome = *outcome;
  if (auto const* f = o.if_contains("failure"); f && !f->is_null()) {
    auto const s = read_json_string(*f, where / "failure");
    if (!s) return s.error();
    out.failure = protocol::parse_failure_kind(*s);
    if (!out.failure) return (where / "failure").fail("unknown failure kind \"" + *s + "\"");
  }
  auto message = read_json_member(o, "message", where, read_json_string);
  if (!message) return message.error();
  out.message = std::move(*message);
  return {};
}

/// A number or null (NaN).
inline result<double> read_optional_number(boost::json::value const& v,
                                           json_location const& where) {
  if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
  return read_json_double(v, where);
}

inline result<std::string> read_trial_id(boost::json::value const& v, json_location const& where) {
  auto s = read_json_string(v, where);
  if (s && s->empty()) return where.fail("a trial id cannot be empty");
  return s;
}

inline result<workable_try> read_try(boost::json::value const& v, json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  workable_try t;
  auto id = read_json_member(**o, "trial_id", where, read_trial_id);
  if (!id) return id.error();
  t.trial_id = std::move(*id);
  auto const seed = read_json_member(**o, "seed", where, read_seed);
  if (!seed) return seed.error();
  t.seed = *seed;
  auto spec = read_json_member(**o, "spec", where, protocol::model_spec_from_json);
  if (!spec) return spec.error();
  t.spec = std::move(*spec);
  if (auto r = read_outcome_fields(**o, where, t); !r) return r.error();
  auto const acc = read_json_member(**o, "accuracy", where, read_optional_number);
  if (!acc) return acc.error();
  t.accuracy = *acc;
  return t;
}

inline result<copy_attempt> read_attempt(boost::json::value const& v, json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  copy_attempt a;
  auto id = read_json_member(**o, "trial_id", where, read_trial_id);
  if (!id) return id.error();
  a.trial_id = std::move(*id);
  auto const seed = read_json_member(**o, "seed", where, read_seed);
  if (!seed) return seed.error();
  a.seed = *seed;
  if (auto r = read_outcome_fields(**o, where, a); !r) return r.error();
  auto const acc = read_json_member(**o, "final_accuracy", where, read_optional_number);
  if (!acc) return acc.error();
  a.final_accuracy = *acc;
  auto const curve = read_json_member(**o, "curve", where, read_json_array);
  if (!curve) return curve.error();
  for (std::size_t i = 0; i < (*curve)->size(); ++i) {
    auto const p = protocol::detail::read_curve_point((**curve)[i], where / "curve" / i);
    if (!p) return p.error();
    a.curve.push_back(*p);
  }
  return a;
}

inline result<std::vector<std::string>> read_string_list(boost::json::value const& v,
                                                         json_location const& where) {
  auto const a = read_json_array(v, where);
  if (!a) return a.error();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < (*a)->size(); ++i) {
    auto s = read_json_string((**a)[i], where / i);
    if (!s) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace detail

// ---- variance_tool ----------------------------------------------------------------------------

inline variance_tool::variance_tool(model_sampler sampler, variance_options options)
    : sampler_(std::move(sampler)), options_(std::move(options)) {
  PROXYTASK_EXPECTS(static_cast<bool>(sampler_), "variance_tool: a model sampler is required");
  PROXYTASK_EXPECTS(options_.copies >= 1, "variance_tool: copies must be >= 1");
  PROXYTASK_EXPECTS(options_.max_workable_tries >= 1,
                    "variance_tool: max_workable_tries must be >= 1");
  PROXYTASK_EXPECTS(options_.workable_pct > 0 && options_.workable_pct <= 100,
                    "variance_tool: workable_pct must be in (0, 100]");
  PROXYTASK_EXPECTS(options_.bootstrap_resamples >= 1 &&
                        options_.bootstrap_resamples <= std::numeric_limits<std::uint32_t>::max(),
                    "variance_tool: bootstrap_resamples must be >= 1");
  PROXYTASK_EXPECTS(options_.confidence > 0 && options_.confidence < 1,
                    "variance_tool: confidence must be in (0, 1)");
}

inline std::uint64_t variance_tool::try_seed(std::size_t n) const noexcept {
  return detail::derive_seed(options_.seed, detail::seed_purpose::workable_try, n);
}

inline step<variance_state> variance_tool::advance(variance_state const& s,
                                                   observation const& obs) const {
  step<variance_state> out{s, {}};
  variance_state& st = out.next;

  auto launch_try = [&](workable_try const& t) {
    out.commands.push_back(launch_trial{t.trial_id, t.spec, t.seed, std::nullopt,
                                        options_.proxy_args, options_.workable_pct});
  };
  auto launch_copy = [&](copy_attempt const& a) {
    out.commands.push_back(launch_trial{a.trial_id, st.tries.at(*st.workable).spec, a.seed,
                                        std::nullopt, options_.proxy_args, detail::copy_pct});
  };

  if (st.phase == measurement_phase::find_workable) {
    bool need_next = st.tries.empty();
    if (!st.tries.empty()) {
      workable_try& t = st.tries.back();
      if (t.outcome == attempt_outcome::running) {
        if (auto const* status = obs.find(t.trial_id))
          detail::judge_try(t, *status, options_.workable_pct);
        else
          launch_try(t);  // recorded, not launched: a kill between persisting and acting
      }
      if (t.outcome == attempt_outcome::succeeded) {
        st.workable = st.tries.size() - 1;
        st.workable_model_dir = detail::trial_dir(t.trial_id);
        st.training_job_name = options_.job_name;
        st.phase = measurement_phase::measure;
        st.copies.resize(options_.copies);
        for (std::size_t c = 0; c < options_.copies; ++c) {
          std::uint64_t const seed = detail::unused_seed(
              st, detail::derive_seed(options_.seed, detail::seed_purpose::copy, 2 * c));
          launch_copy(detail::new_attempt(st.copies[c], "copy-" + std::to_string(c), seed));
        }
      } else if (t.outcome == attempt_outcome::failed) {
        if (st.tries.size() >= options_.max_workable_tries)
          st.phase = measurement_phase::done;
        else
          need_next = true;
      }
    }
    if (need_next) {
      std::size_t const n = st.tries.size();
      std::uint64_t const seed = detail::unused_seed(st, try_seed(n));
      workable_try t;
      t.trial_id = "workable-" + std::to_string(n);
      t.seed = seed;
      t.spec = sampler_(seed);
      st.tries.push_back(std::move(t));
      launch_try(st.tries.back());
    }
  } else if (st.phase == measurement_phase::measure) {
    for (std::size_t c = 0; c < st.copies.size(); ++c) {
      auto& attempts = st.copies[c].attempts;
      if (attempts.empty()) continue;  // not from advance; nothing to judge
      copy_attempt& a = attempts.back();
      if (a.outcome == attempt_outcome::running) {
        if (auto const* status = obs.find(a.trial_id))
          detail::judge_copy(a, *status);
        else
          launch_copy(a);
      }
      if (a.outcome == attempt_outcome::failed && attempts.size() == 1) {
        // One retry with a new trial and seed; a second failure leaves the copy out.
        std::uint64_t const seed = detail::unused_seed(
            st, detail::derive_seed(options_.seed, detail::seed_purpose::copy, 2 * c + 1));
        launch_copy(
            detail::new_attempt(st.copies[c], "copy-" + std::to_string(c) + "-retry", seed));
      }
    }
    st.finished_model_dirs.clear();
    for (auto const& c : st.copies)
      if (auto const* a = c.success())
        st.finished_model_dirs.push_back(detail::trial_dir(a->trial_id));
    if (std::all_of(st.copies.begin(), st.copies.end(),
                    [](measured_copy const& c) { return c.resolved(); }))
      st.phase = measurement_phase::done;
  }

  if (st.phase == measurement_phase::done) out.commands.push_back(result_of(st));
  return out;
}

inline tool_progress variance_tool::describe(variance_state const& s,
                                             observation const& obs) const {
  tool_progress p;
  p.phase = std::string(to_string(s.phase));
  if (s.phase == measurement_phase::find_workable) {
    p.fraction_done = 0.0;
    if (s.tries.empty()) {
      p.decision = "sampling the first model";
      return p;
    }
    auto const& t = s.tries.back();
    std::string const tried = "try " + std::to_string(s.tries.size()) + " of " +
                              std::to_string(options_.max_workable_tries);
    p.decision = "training " + t.trial_id + " (" + t.spec.model_id + ", " + tried + ") to " +
                 detail::python_float(options_.workable_pct) + "% to see whether it is workable";
    if (s.tries.size() >= 2) {
      auto const& before = s.tries[s.tries.size() - 2];
      p.decision += "; " + before.trial_id + " was not (" +
                    detail::failure_text(before.failure, before.message) + ")";
    }
    return p;
  }
  if (s.phase == measurement_phase::measure) {
    std::size_t done = 0, retrying = 0, left_out = 0;
    double trained = 0;
    for (auto const& c : s.copies) {
      if (c.resolved()) {
        trained += 1;
        (c.success() ? done : left_out) += 1;
        continue;
      }
      if (c.attempts.size() > 1) ++retrying;
      if (c.attempts.empty()) continue;
      if (auto const* t = obs.find(c.attempts.back().trial_id); t && !t->metrics.points.empty())
        trained +=
            std::clamp(t->metrics.points.back().training_step_pct / detail::copy_pct, 0.0, 1.0);
    }
    if (!s.copies.empty()) p.fraction_done = trained / static_cast<double>(s.copies.size());
    auto const& workable = s.tries.at(*s.workable);
    p.decision = workable.trial_id + " (" + workable.spec.model_id + ") is workable; training " +
                 std::to_string(s.copies.size()) +
                 " copies of it to 100%: " + std::to_string(done) + " finished, " +
                 std::to_string(retrying) + " retrying after a failure, " +
                 std::to_string(left_out) + " left out";
    return p;
  }
  p.fraction_done = 1.0;
  p.decision = result_of(s).summary;
  return p;
}

inline finish variance_tool::result_of(variance_state const& s) const {
  PROXYTASK_EXPECTS(s.phase == measurement_phase::done,
                    "variance_tool::result_of: the measurement is not done");
  if (!s.workable) return detail::no_workable_result(s, options_);
  return detail::measured_result(s, options_);
}

// ---- JSON -------------------------------------------------------------------------------------

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv,
                       variance_state const& s) {
  boost::json::array tries, copies, finished;
  for (auto const& t : s.tries) {
    boost::json::object o{
        {"trial_id", t.trial_id}, {"seed", t.seed}, {"spec", boost::json::value_from(t.spec)}};
    detail::put_outcome(o, t.outcome, t.failure, t.message);
    o["accuracy"] = json_number(t.accuracy);
    tries.push_back(std::move(o));
  }
  for (auto const& c : s.copies) {
    boost::json::array attempts;
    for (auto const& a : c.attempts) {
      boost::json::object o{{"trial_id", a.trial_id}, {"seed", a.seed}};
      detail::put_outcome(o, a.outcome, a.failure, a.message);
      o["final_accuracy"] = json_number(a.final_accuracy);
      o["curve"] = detail::curve_json(a.curve);
      attempts.push_back(std::move(o));
    }
    copies.push_back(boost::json::object{{"attempts", std::move(attempts)}});
  }
  for (auto const& d : s.finished_model_dirs) finished.push_back(boost::json::string(d));
  boost::json::object o{{"schema_version", variance_tool::schema_version},
                        {"workable_model_dir", s.workable_model_dir},
                        {"training_job_name", s.training_job_name},
                        {"finished_model_dirs", std::move(finished)},
                        {"phase", to_string(s.phase)},
                        {"tries", std::move(tries)},
                        {"copies", std::move(copies)}};
  if (s.workable)
    o["workable_try"] = static_cast<std::int64_t>(*s.workable);
  else
    o["workable_try"] = nullptr;
  jv = std::move(o);
}

inline result<variance_state> variance_state_from_json(boost::json::value const& v,
                                                       json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  auto const version = read_json_member(**o, "schema_version", where, read_json_count);
  if (!version) return version.error();
  if (*version > variance_tool::schema_version)
    return (where / "schema_version")
        .fail("written by a newer proxytask (schema_version " + std::to_string(*version) +
              "; this one reads up to " + std::to_string(variance_tool::schema_version) + ")");

  variance_state s;
  auto dir = read_json_member(**o, "workable_model_dir", where, read_json_string);
  if (!dir) return dir.error();
  s.workable_model_dir = std::move(*dir);
  auto job = read_json_member(**o, "training_job_name", where, read_json_string);
  if (!job) return job.error();
  s.training_job_name = std::move(*job);
  auto finished = read_json_member(**o, "finished_model_dirs", where, detail::read_string_list);
  if (!finished) return finished.error();
  s.finished_model_dirs = std::move(*finished);

  auto const phase = read_json_member(**o, "phase", where, read_json_string);
  if (!phase) return phase.error();
  auto const parsed = parse_measurement_phase(*phase);
  if (!parsed)
    return (where / "phase")
        .fail("unknown phase \"" + *phase + "\" (expected find_workable, measure or done)");
  s.phase = *parsed;

  auto const tries = read_json_member(**o, "tries", where, read_json_array);
  if (!tries) return tries.error();
  for (std::size_t i = 0; i < (*tries)->size(); ++i) {
    auto t = detail::read_try((**tries)[i], where / "tries" / i);
    if (!t) return t.error();
    s.tries.push_back(std::move(*t));
  }
  auto const copies = read_json_member(**o, "copies", where, read_json_array);
  if (!copies) return copies.error();
  for (std::size_t c = 0; c < (*copies)->size(); ++c) {
    json_location const at = where / "copies" / c;
    auto const copy = read_json_object((**copies)[c], at);
    if (!copy) return copy.error();
    auto const attempts = read_json_member(**copy, "attempts", at, read_json_array);
    if (!attempts) return attempts.error();
    measured_copy mc;
    for (std::size_t i = 0; i < (*attempts)->size(); ++i) {
      auto a = detail::read_attempt((**attempts)[i], at / "attempts" / i);
      if (!a) return a.error();
      mc.attempts.push_back(std::move(*a));
    }
    s.copies.push_back(std::move(mc));
  }

  auto const workable = read_json_field(**o, "workable_try", where);
  if (!workable) return workable.error();
  if (!(*workable)->is_null()) {
    auto const w = read_json_count(**workable, where / "workable_try");
    if (!w) return w.error();
    if (static_cast<std::size_t>(*w) >= s.tries.size())
      return (where / "workable_try")
          .fail("index " + std::to_string(*w) + " is not one of the " +
                std::to_string(s.tries.size()) + " tries");
    s.workable = static_cast<std::size_t>(*w);
  }
  if (s.phase == measurement_phase::measure && !s.workable)
    return (where / "workable_try").fail("the measure phase needs a workable try");
  return s;
}

inline boost::system::result<variance_state> tag_invoke(
    boost::json::try_value_to_tag<variance_state>, boost::json::value const& jv) {
  auto s = variance_state_from_json(jv, json_location(""));
  if (!s) return boost::system::error_code(s.error().code);
  return std::move(*s);
}

inline result<variance_state> variance_tool::state_from_json(boost::json::value const& v,
                                                             json_location const& where) {
  return variance_state_from_json(v, where);
}

static_assert(tool<variance_tool>);

}  // namespace proxytask::workflow
