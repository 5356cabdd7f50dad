// The trial file protocol's parsers under libFuzzer (GitHub issue 5, item 5). Every input goes
// to every parser: parse_json, parse_json_lenient, parse_trial_metrics, parse_desired_pct,
// parse_time_limit, parse_heartbeat, parse_model_spec and parse_trial_failure. Besides "no crash,
// no leak, no sanitizer report", each call checks these invariants and aborts when one fails:
//  - an error is errc::malformed_file and its context starts with the source (the file name);
//  - what parse_json accepts, parse_json_lenient accepts too, with the same value;
//  - a parsed value is valid for its type (a pct is finite and >= 0, a step >= 0, ...), and
//    serialises back to text that re-parses to the same value (NaN equal to NaN); the metrics
//    and signal files are written as strict JSON (never NaN or Infinity).
// Built with libFuzzer by PROXYTASK_BUILD_FUZZERS (tests/fuzz/run_fuzz.sh), and with g++ and
// replay_main.cpp as the test fuzz.corpus_replay, which runs it over tests/fuzz/corpus.

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/metrics.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/signals.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

constexpr std::string_view source = "fuzz/FILE.json";

/// Stops the run with a message when an invariant does not hold (libFuzzer saves the input).
void check(bool holds, char const* invariant, std::string_view detail = {}) {
  if (holds) return;
  std::string const shown(detail);  // a view may be null; printf's %s may not
  std::fprintf(stderr, "protocol_fuzz: invariant violated: %s\n  %s\n", invariant, shown.c_str());
  std::abort();
}

/// Both NaN, or equal with the same sign (-0.0 is not 0.0 here: the text keeps the sign).
bool same_double(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

/// Deep equality of JSON values with same_double for doubles (boost's == has NaN != NaN).
bool same_value(boost::json::value const& a, boost::json::value const& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case boost::json::kind::null: return true;
    case boost::json::kind::bool_: return a.get_bool() == b.get_bool();
    case boost::json::kind::int64: return a.get_int64() == b.get_int64();
    case boost::json::kind::uint64: return a.get_uint64() == b.get_uint64();
    case boost::json::kind::double_: return same_double(a.get_double(), b.get_double());
    case boost::json::kind::string: return a.get_string() == b.get_string();
    case boost::json::kind::array: {
      auto const& x = a.get_array();
      auto const& y = b.get_array();
      if (x.size() != y.size()) return false;
      for (std::size_t i = 0; i < x.size(); ++i)
        if (!same_value(x[i], y[i])) return false;
      return true;
    }
    case boost::json::kind::object: {
      auto const& x = a.get_object();
      auto const& y = b.get_object();
      if (x.size() != y.size()) return false;
      for (auto const& member : x) {
        auto const* other = y.if_contains(member.key());
        if (other == nullptr || !same_value(member.value(), *other)) return false;
      }
      return true;
    }
  }
  return false;
}

/// The invariant of every error: malformed_file, naming the source.
template <class T>
void check_error(pt::result<T> const& r, char const* parser) {
  if (r) return;
  check(r.error().code == pt::errc::malformed_file, parser, r.error().message());
  check(r.error().context.starts_with(source), parser, r.error().context);
}

template <class T>
std::string text_of(T const& x) {
  return boost::json::serialize(boost::json::value_from(x));
}

/// A file we write must be strict JSON (no NaN or Infinity).
void check_strict(std::string const& text, char const* what) {
  auto const strict = pt::parse_json(text, source);
  check(static_cast<bool>(strict), what, text);
}

void fuzz_json(std::string_view text) {
  auto const strict = pt::parse_json(text, source);
  check_error(strict, "parse_json");
  auto const lenient = pt::parse_json_lenient(text, source);
  check_error(lenient, "parse_json_lenient");
  if (strict) {
    check(static_cast<bool>(lenient), "parse_json accepts what parse_json_lenient refuses");
    check(same_value(*strict, *lenient), "parse_json and parse_json_lenient disagree",
          boost::json::serialize(*strict));
  }
}

void fuzz_metrics(std::string_view text) {
  auto const m = protocol::parse_trial_metrics(text, source);
  check_error(m, "parse_trial_metrics");
  if (!m) return;
  check(m->time.total_training_steps >= 0, "total_training_steps >= 0");
  check(std::isfinite(m->time.total_training_time_in_secs) &&
            m->time.total_training_time_in_secs >= 0,
        "total_training_time_in_secs finite and >= 0");
  check(std::isfinite(m->latency) || std::isnan(m->latency), "latency finite or NaN");
  double max_pct = 0;
  for (auto const& p : m->points) {
    check(std::isfinite(p.training_step_pct) && p.training_step_pct >= 0, "pct finite and >= 0");
    check(p.training_step >= 0, "training_step >= 0");
    check(std::isfinite(p.accuracy) || std::isnan(p.accuracy), "accuracy finite or NaN");
    max_pct = std::max(max_pct, p.training_step_pct);
  }

  std::string const written = text_of(*m);
  check_strict(written, "the metrics serialise to strict JSON");
  auto const back = protocol::parse_trial_metrics(written, source);
  check(static_cast<bool>(back), "serialised metrics re-parse", written);
  check(back->time.total_training_steps == m->time.total_training_steps &&
            same_double(back->time.total_training_time_in_secs,
                        m->time.total_training_time_in_secs) &&
            same_double(back->latency, m->latency) && back->points.size() == m->points.size(),
        "metrics round trip", written);
  for (std::size_t i = 0; i < m->points.size(); ++i) {
    auto const& a = m->points[i];
    auto const& b = back->points[i];
    check(same_double(a.training_step_pct, b.training_step_pct) &&
              a.training_step == b.training_step && same_double(a.accuracy, b.accuracy),
          "metrics point round trip", written);
  }

  // The controller's use of a read file: accuracy at a pct is defined up to the highest one.
  if (!m->points.empty()) {
    check(protocol::accuracy_at_pct(*m, max_pct).has_value(), "accuracy at the highest pct");
    check(protocol::accuracy_at_pct(*m, max_pct / 2).has_value(), "accuracy below it");
    check(!protocol::accuracy_at_pct(*m, std::nextafter(max_pct, INFINITY)).has_value(),
          "no accuracy beyond the highest pct");
  }
}

template <class Parse, class Get>
void fuzz_signal(std::string_view text, Parse parse, Get get, bool non_negative, char const* name) {
  auto const s = parse(text, source);
  check_error(s, name);
  if (!s) return;
  double const v = get(*s);
  check(std::isfinite(v) && (!non_negative || v >= 0), name);
  std::string const written = text_of(*s);
  check_strict(written, name);
  auto const back = parse(written, source);
  check(back && same_double(get(*back), v), name, written);
}

void fuzz_model_spec(std::string_view text) {
  auto const spec = protocol::parse_model_spec(text, source);
  check_error(spec, "parse_model_spec");
  if (!spec) return;
  // Parameters may hold NaN or Infinity (parse_model_spec accepts Python's tokens there), and
  // Boost.JSON 1.81 writes them back as the same tokens: compare through the lenient parser.
  std::string const written = text_of(*spec);
  auto const back = protocol::parse_model_spec(written, source);
  check(static_cast<bool>(back), "serialised model spec re-parses", written);
  check(back->model_id == spec->model_id &&
            same_value(boost::json::value(back->parameters), boost::json::value(spec->parameters)),
        "model spec round trip", written);
}

void fuzz_failure(std::string_view text) {
  auto const f = protocol::parse_trial_failure(text, source);
  check_error(f, "parse_trial_failure");
  if (!f) return;
  check(!f->training_step || *f->training_step >= 0, "failure training_step >= 0");
  std::string const written = text_of(*f);
  check_strict(written, "the failure serialises to strict JSON");
  auto const back = protocol::parse_trial_failure(written, source);
  check(back && back->kind == f->kind && back->message == f->message &&
            back->training_step == f->training_step,
        "failure round trip", written);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string_view const text(reinterpret_cast<char const*>(data), size);
  fuzz_json(text);
  fuzz_metrics(text);
  fuzz_signal(
      text, protocol::parse_desired_pct,
      [](protocol::desired_pct_signal const& s) { return s.desired_training_pct; }, true,
      "parse_desired_pct");
  fuzz_signal(
      text, protocol::parse_time_limit,
      [](protocol::time_limit_signal const& s) { return s.max_training_time_in_hrs; }, true,
      "parse_time_limit");
  fuzz_signal(
      text, protocol::parse_heartbeat,
      [](protocol::heartbeat_signal const& s) { return s.timestamp; }, false, "parse_heartbeat");
  fuzz_model_spec(text);
  fuzz_failure(text);
  return 0;
}
