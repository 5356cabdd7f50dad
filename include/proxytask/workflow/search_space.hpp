#pragma once
/// @file
/// Search spaces: where the tools get their models. A search space samples a model spec
/// (MODEL_SPEC.json's contents) from a seed, deterministically: the same seed always gives the
/// same spec, so a resumed run samples the same models. Three ways to give one:
///   - C++: any type with `result<protocol::model_spec> sample(std::uint64_t seed)` (the
///     search_space concept);
///   - a JSON file of candidate specs (candidate_file_space), for users who write no C++;
///   - a command that prints a spec for a seed (command_space), in any language.
/// The variance tool's sampler has no error channel, so a binary samples the seeds it needs up
/// front with presample() and fails cleanly on the first error.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/command.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/stats/philox.hpp>

#include <boost/json.hpp>

#include <Random123/philox.h>

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxytask::workflow {

/// A search space: `s.sample(seed)` gives the model spec of a seed, the same one every time.
template <class Space>
concept search_space = requires(Space& s, std::uint64_t seed) {
  { s.sample(seed) } -> std::same_as<result<protocol::model_spec>>;
};

/// Samples every seed of `seeds` (duplicates once each), in order, stopping at the first error.
/// @returns seed -> spec, or the first error of `space`
template <search_space Space>
result<std::map<std::uint64_t, protocol::model_spec>> presample(
    Space& space, std::span<std::uint64_t const> seeds) {
  std::map<std::uint64_t, protocol::model_spec> out;
  for (std::uint64_t const seed : seeds) {
    if (out.contains(seed)) continue;
    auto spec = space.sample(seed);
    if (!spec) return spec.error();
    out.emplace(seed, std::move(*spec));
  }
  return out;
}

namespace detail {

/// The counter word of the candidate draw: distinct from stats::draw_purpose's bootstrap (0)
/// and permutation (1) streams.
inline constexpr std::uint32_t candidate_draw_purpose = 2;

/// The candidate of `seed` among n: floor(w * n / 2^32), w = word 0 of Philox4x32-10 with
/// counter {0, 0, 0, 2} and key {seed low 32 bits, seed high 32 bits}.
inline std::size_t candidate_index(std::uint64_t seed, std::size_t n) {
  r123array4x32 counter{{0u, 0u, 0u, candidate_draw_purpose}};
  r123array2x32 const key{
      {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  r123array4x32 const words = philox4x32_R(10, counter, key);
  return stats::uniform_index(words.v[0], static_cast<std::uint32_t>(n));
}

}  // namespace detail

/// A search space given as a list of candidate model specs, read from a JSON file that is
/// either an array of specs or an object {"candidates": [spec, ...]} (other members ignored),
/// each spec {"model_id": string, "parameters": {...}}. sample(seed) picks the candidate
/// detail::candidate_index(seed, n): a Philox draw keyed by the seed, so different seeds spread
/// uniformly over the candidates (and two seeds may pick the same one).
class candidate_file_space {
 public:
  /// Reads a candidate file (NaN / Infinity tokens accepted in the parameters).
  /// @returns the space; the read error; errc::malformed_file naming "<file>#<pointer>" for a
  ///          malformed document or spec, an empty list, or a duplicate model_id
  static result<candidate_file_space> load(std::filesystem::path const& file) {
    auto const text = read_file(file);
    if (!text) return text.error();
    auto const doc = parse_json_lenient(*text, file.string());
    if (!doc) return doc.error();
    return from_json(*doc, file.string());
  }

  /// The same from a parsed document; `source` names it in errors.
  static result<candidate_file_space> from_json(boost::json::value const& doc,
                                                std::string_view source) {
    json_location where(source);
    boost::json::array const* list = doc.if_array();
    if (!list) {
      auto const* o = doc.if_object();
      if (!o)
        return where.fail("expected an array of model specs or an object with \"candidates\"");
      auto const a = read_json_member(*o, "candidates", where, read_json_array);
      if (!a) return a.error();
      list = *a;
      where = where / "candidates";
    }
    if (list->empty()) return where.fail("no candidates (the list is empty)");
    candidate_file_space space;
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < list->size(); ++i) {
      auto spec = protocol::model_spec_from_json((*list)[i], where / i);
      if (!spec) return spec.error();
      auto const [it, fresh] = seen.emplace(spec->model_id, i);
      if (!fresh)
        return (where / i / "model_id")
            .fail("duplicate model_id \"" + spec->model_id + "\" (also at " +
                  (where / it->second).pointer() + ")");
      space.candidates_.push_back(std::move(*spec));
    }
    return space;
  }

  /// The candidate of `seed` (never an error).
  result<protocol::model_spec> sample(std::uint64_t seed) const {
    return candidates_[detail::candidate_index(seed, candidates_.size())];
  }

  /// The candidates, in the file's order.
  std::vector<protocol::model_spec> const& candidates() const noexcept { return candidates_; }

 private:
  candidate_file_space() = default;
  std::vector<protocol::model_spec> candidates_;
};

static_assert(search_space<candidate_file_space const>);

/// How command_space runs its command.
struct command_space_options {
  double timeout_s = 60;  ///< a run still going after this is killed, and the sample fails
  std::size_t message_chars = 500;  ///< how much of stderr / stdout an error message quotes
};

namespace detail {

/// The first `n` characters of a text, trimmed, with "..." when cut.
inline std::string excerpt(std::string_view text, std::size_t n) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r'))
    text.remove_suffix(1);
  if (text.size() <= n) return std::string(text);
  return std::string(text.substr(0, n)) + "...";
}

}  // namespace detail

/// A search space given as a command: sample(seed) runs the command with `--seed=<seed>`
/// appended as its last argument (the program is looked up in PATH; stdin is /dev/null), and
/// reads its stdout as one JSON model spec {"model_id", "parameters"}. Each seed's spec is
/// cached, so sampling a seed again does not run the command again (failures are not cached).
/// The command must print the same spec for the same seed.
class command_space {
 public:
  /// @param[in] command the program and its own arguments
  /// @param[in] options the timeout and message size
  /// @pre command is not empty; timeout_s finite and > 0
  explicit command_space(std::vector<std::string> command, command_space_options options = {})
      : command_(std::move(command)), options_(options) {
    PROXYTASK_EXPECTS(!command_.empty(), "command_space: the command is empty");
    PROXYTASK_EXPECTS(std::isfinite(options_.timeout_s) && options_.timeout_s > 0,
                      "command_space_options::timeout_s must be finite and positive");
  }

  command_space(command_space const& other) : command_(other.command_), options_(other.options_) {
    std::lock_guard lock(other.mutex_);
    cache_ = other.cache_;
  }

  /// The spec the command prints for `seed`.
  /// @returns the spec; the errno error when the command cannot be started; errc::invalid_argument
  ///          when it exits non-zero, dies of a signal or runs past the timeout;
  ///          errc::malformed_file when its stdout is not one JSON model spec. Every message
  ///          names the command, the seed and the start of its stderr (or stdout)
  result<protocol::model_spec> sample(std::uint64_t seed) const {
    {
      std::lock_guard lock(mutex_);
      if (auto const it = cache_.find(seed); it != cache_.end()) return it->second;
    }
    auto spec = run(seed);
    if (!spec) return spec.error();
    std::lock_guard lock(mutex_);
    cache_.emplace(seed, *spec);
    return spec;
  }

  std::vector<std::string> const& command() const noexcept { return command_; }

 private:
  result<protocol::model_spec> run(std::uint64_t seed) const {
    std::vector<std::string> argv = command_;
    argv.push_back("--seed=" + std::to_string(seed));
    std::string const what = "search-space command `" + proxytask::detail::command_text(argv) +
                             "` (seed " + std::to_string(seed) + ")";
    auto const run = proxytask::detail::run_command(argv, options_.timeout_s, what);
    if (!run) return run.error();
    auto const output = [&] {
      std::string const e = detail::excerpt(run->err, options_.message_chars);
      if (!e.empty()) return "; stderr: " + e;
      std::string const o = detail::excerpt(run->out, options_.message_chars);
      return o.empty() ? std::string("; no output") : "; stdout: " + o;
    };
    if (run->timed_out)
      return make_error(errc::invalid_argument,
                        what + ": killed after running " + std::to_string(options_.timeout_s) +
                            " s (command_space_options::timeout_s)" + output());
    if (run->signal != 0)
      return make_error(errc::invalid_argument,
                        what + ": died of signal " + std::to_string(run->signal) + output());
    if (run->exit_status != 0)
      return make_error(errc::invalid_argument, what + ": exited with status " +
                                                    std::to_string(run->exit_status) + output());
    auto spec = protocol::parse_model_spec(run->out, "stdout of " + what);
    if (!spec) {
      auto e = spec.error();
      e.context += "; stdout: " + detail::excerpt(run->out, options_.message_chars);
      return e;
    }
    return spec;
  }

  std::vector<std::string> command_;
  command_space_options options_;
  mutable std::mutex mutex_;
  mutable std::map<std::uint64_t, protocol::model_spec> cache_;
};

static_assert(search_space<command_space const>);

}  // namespace proxytask::workflow
