#pragma once
/// @file
/// Progress lines for a running tool (run_options::progress): on a terminal, one line that
/// updates in place; elsewhere (a log file, CI), a plain line each time something other than the
/// clock changes; nothing when quiet. The line:
///
///   variance measurement | measure | 2 running, 3 done, 1 failed | 4m05s | ~2m10s left | ...
///
/// The estimate is the elapsed time scaled by the fraction of the work the tool says is left
/// (tool_progress::fraction_done), shown once that fraction is at least 5%.

#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/tool.hpp>

#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>

namespace proxytask::workflow {

/// "45s", "4m05s", "2h03m".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto const s = static_cast<std::int64_t>(std::llround(seconds));
  char text[32];
  if (s < 60)
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(s));
  else if (s < 3600)
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  return text;
}

/// How many of the observed trials are in each state.
struct trial_counts {
  std::size_t pending = 0, running = 0, done = 0, failed = 0;
};

inline trial_counts count_trials(observation const& obs) noexcept {
  trial_counts c;
  for (auto const& t : obs.trials) {
    switch (t.phase) {
      case trial_phase::pending: ++c.pending; break;
      case trial_phase::running: ++c.running; break;
      case trial_phase::succeeded:
      case trial_phase::stopped: ++c.done; break;
      case trial_phase::failed: ++c.failed; break;
    }
  }
  return c;
}

/// The progress line of one poll, without the clock parts (those change every poll).
inline std::string progress_state_text(observation const& obs, step_summary const& s) {
  auto const c = count_trials(obs);
  std::string line(s.tool_name);
  if (!s.progress.phase.empty()) line += " | " + s.progress.phase;
  line += " | " + std::to_string(c.running) + " running, ";
  if (c.pending != 0) line += std::to_string(c.pending) + " queued, ";
  line += std::to_string(c.done) + " done, " + std::to_string(c.failed) + " failed";
  return line;
}

/// Prints progress lines; pass it (by value) as run_options::progress.
class progress_printer {
 public:
  /// @param[in] out      where the lines go
  /// @param[in] terminal whether `out` is a terminal (one line updated in place)
  /// @param[in] quiet    print nothing
  progress_printer(std::ostream& out, bool terminal, bool quiet = false)
      : out_(&out), terminal_(terminal), quiet_(quiet) {}

  /// For std::cerr: terminal when standard error is one.
  static progress_printer for_stderr(std::ostream& err, bool quiet) {
    return progress_printer(err, ::isatty(STDERR_FILENO) != 0, quiet);
  }

  void operator()(observation const& obs, step_summary const& s) {
    if (quiet_) return;
    std::string const state = progress_state_text(obs, s);
    double const elapsed = obs.now_unix_s - s.started_unix_s;
    std::string line = state + " | " + format_duration(elapsed);
    if (auto const f = s.progress.fraction_done; f && *f >= 0.05 && *f < 1.0)
      line += " | ~" + format_duration(elapsed * (1.0 - *f) / *f) + " left";
    if (terminal_) {
      std::string shown = line;
      if (!s.progress.decision.empty()) shown += " | " + s.progress.decision;
      if (shown.size() > width) shown = shown.substr(0, width - 3) + "...";
      *out_ << '\r' << shown << "\x1b[K";
      if (s.finished) *out_ << '\n';
      out_->flush();
      return;
    }
    // Not a terminal: a line only when something other than the clock changed.
    std::string const key = state + "|" + s.progress.decision + (s.finished ? "|done" : "");
    if (key == last_) return;
    last_ = key;
    *out_ << line;
    if (!s.progress.decision.empty()) *out_ << " | " << s.progress.decision;
    *out_ << '\n';
    out_->flush();
  }

  /// Ends an in-place line (call after run() returns, so that later output starts afresh).
  void end_line() {
    if (terminal_ && !quiet_) *out_ << '\n';
  }

  /// The terminal line's width (longer lines are cut).
  static constexpr std::size_t width = 160;

 private:
  std::ostream* out_;
  bool terminal_;
  bool quiet_;
  std::string last_;
};

}  // namespace proxytask::workflow
