// proxytask-status RUN_DIR [--json]: where a tool's run stands, from the files its controller
// keeps in the run directory (any tool: the driver rewrites RUN_DIR/status.json after every
// poll). It prints the tool, whether a controller is running on the directory now (it holds the
// lock RUN_DIR/.lock), the phase, the last decision and why, the progress, every trial with its
// phase, training pct, accuracy and failure, and, once the tool has finished, its summary.
// It never changes the run directory.
//
// Exit status: 0 printed, 1 no status (no tool has polled there yet) or a broken file, 2 usage.

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/workflow/driver.hpp>
#include <proxytask/workflow/progress.hpp>

#include <boost/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace pt = proxytask;
namespace wf = proxytask::workflow;
namespace fs = std::filesystem;

namespace {

constexpr char const usage[] = R"(usage: proxytask-status RUN_DIR [--json]

Where the run of a proxytask tool in RUN_DIR stands: the tool, whether its
controller is running, the phase, the last decision, and every trial.

  --json       print RUN_DIR/status.json with "controller_running" added
  -h, --help   print this help and exit
)";

/// Whether a controller holds RUN_DIR/.lock now: a shared, non-blocking flock that is released at
/// once (a controller starting in that instant would see the directory as busy and say so).
bool controller_running(fs::path const& run_dir) {
  int const fd = ::open((run_dir / wf::lock_file_name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool const held = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);  // releases our lock, if we took it
  return held;
}

std::string text_of(boost::json::object const& o, std::string_view key) {
  if (auto const* v = o.if_contains(key); v && v->is_string()) return std::string(v->get_string());
  return "";
}

std::optional<double> number_of(boost::json::object const& o, std::string_view key) {
  if (auto const* v = o.if_contains(key); v && v->is_number()) return v->to_number<double>();
  return std::nullopt;
}

std::string fixed(std::optional<double> v, int decimals) {
  if (!v) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, *v);
  return text;
}

std::string padded(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

int print_status(fs::path const& run_dir, bool as_json) {
  fs::path const path = run_dir / wf::status_file_name;
  auto const file = pt::read_json_object_file(path);
  if (!file) {
    std::cerr << "proxytask-status: " << file.error().message() << '\n';
    return 1;
  }
  if (!*file) {
    std::cerr << "proxytask-status: " << path.string()
              << " does not exist: no proxytask tool has polled in " << run_dir.string()
              << " yet\n";
    return 1;
  }
  boost::json::object status = (*file)->as_object();
  bool const running = controller_running(run_dir);
  if (as_json) {
    status["controller_running"] = running;
    std::cout << boost::json::serialize(status) << '\n';
    return 0;
  }

  double const now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto const updated = number_of(status, "updated_unix_s");
  auto const started = number_of(status, "started_unix_s");
  bool const finished = status.contains("finished") && status.at("finished").is_bool() &&
                        status.at("finished").get_bool();
  std::cout << "run directory: " << run_dir.string() << '\n'
            << "tool:          " << text_of(status, "tool") << '\n'
            << "controller:    ";
  if (running)
    std::cout << "running (pid " << fixed(number_of(status, "controller_pid"), 0) << ")";
  else
    std::cout << (finished ? "finished" : "not running (run the tool again to resume)");
  if (updated && !finished)
    std::cout << "; last poll " << wf::format_duration(now - *updated) << " ago"
              << " (the controller's clock)";
  std::cout << '\n';
  std::cout << "phase:         " << text_of(status, "phase") << '\n';
  if (auto const decision = text_of(status, "decision"); !decision.empty())
    std::cout << "decision:      " << decision << '\n';
  if (auto const f = number_of(status, "fraction_done")) {
    std::cout << "progress:      " << fixed(*f * 100, 0) << "%";
    if (started && updated) std::cout << " after " << wf::format_duration(*updated - *started);
    std::cout << '\n';
  }

  boost::json::array const* trials = nullptr;
  if (auto const* t = status.if_contains("trials")) trials = t->if_array();
  std::size_t const n = trials ? trials->size() : 0;
  std::cout << "trials:        " << n << '\n';
  if (n != 0) {
    std::cout << "  " << padded("trial", 22) << padded("phase", 11) << padded("pct", 8)
              << padded("accuracy", 10) << "failure\n";
    for (auto const& v : *trials) {
      auto const* t = v.if_object();
      if (!t) continue;
      std::string failure = text_of(*t, "failure");
      if (auto const m = text_of(*t, "failure_message"); !m.empty()) failure += ": " + m;
      std::cout << "  " << padded(text_of(*t, "trial_id"), 22) << padded(text_of(*t, "phase"), 11)
                << padded(fixed(number_of(*t, "training_step_pct"), 1), 8)
                << padded(fixed(number_of(*t, "accuracy"), 4), 10) << failure << '\n';
    }
  }
  if (finished) std::cout << "result:        " << text_of(status, "summary") << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<fs::path> run_dir;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view const arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--json") {
      as_json = true;
    } else if (arg.starts_with("-") || run_dir) {
      std::cerr << "proxytask-status: unexpected argument '" << arg << "'\n" << usage;
      return 2;
    } else {
      run_dir = fs::path(arg);
    }
  }
  if (!run_dir) {
    std::cerr << "proxytask-status: which run directory?\n" << usage;
    return 2;
  }
  return print_status(*run_dir, as_json);
}
