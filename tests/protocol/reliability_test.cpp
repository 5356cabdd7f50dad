// Reliability of the trial file protocol (GitHub issue 5, item 5): a reader racing a writer
// process, writer processes killed at random moments, and malformed or hostile files. Every
// failure must be an error value that names the file (and the field where there is one), never a
// crash: the _sanitized build of this file runs the same cases under ASan + UBSan.

#include <proxytask/protocol/controller.hpp>
#include <proxytask/protocol/failure.hpp>
#include <proxytask/protocol/metrics.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/protocol/signals.hpp>
#include <proxytask/protocol/trainer.hpp>

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/json.hpp>
#include <support/temp_dir.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;
namespace fs = std::filesystem;

// --- helpers ------------------------------------------------------------------------------------

/// A forked child process running `body(report_fd)`; its return value is the exit status. The
/// child reports progress by writing int64 values to report_fd, which the parent reads back
/// with reports() once the child has ended. Killed (SIGKILL) and reaped if still running at the
/// end. The child never returns into GoogleTest: it leaves with _exit.
class forked_child {
 public:
  explicit forked_child(std::function<int(int report_fd)> const& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    pid_ = ::fork();
    if (pid_ < 0) {
      ADD_FAILURE() << "fork: " << std::strerror(errno);
      ::close(fds[0]);
      ::close(fds[1]);
      return;
    }
    if (pid_ == 0) {
      ::close(fds[0]);
      int status = 100;
      try {
        status = body(fds[1]);
      } catch (...) {
        status = 101;
      }
      ::_exit(status);
    }
    ::close(fds[1]);
    read_fd_ = fds[0];
  }
  forked_child(forked_child const&) = delete;
  forked_child& operator=(forked_child const&) = delete;
  ~forked_child() {
    kill();
    if (read_fd_ >= 0) ::close(read_fd_);
  }

  /// Whether the child has ended (then its status is in status()); does not block.
  bool ended() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    status_ = status;
    pid_ = -1;
    return true;
  }
  /// Kills the child with SIGKILL (if it still runs) and reaps it.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
  }
  /// The wait status of the ended child.
  int status() const noexcept { return status_; }

  /// Every value the child reported (call once it has ended: reads up to end of file).
  std::vector<std::int64_t> reports() {
    std::vector<std::int64_t> out;
    std::int64_t value = 0;
    // A write of 8 bytes to a pipe is atomic (<= PIPE_BUF), so no value arrives in pieces.
    while (::read(read_fd_, &value, sizeof value) == static_cast<ssize_t>(sizeof value))
      out.push_back(value);
    return out;
  }

 private:
  pid_t pid_ = -1;
  int read_fd_ = -1;
  int status_ = 0;
};

/// Reports `value` to the parent (see forked_child).
void report(int fd, std::int64_t value) {
  [[maybe_unused]] auto const n = ::write(fd, &value, sizeof value);
}

/// The accuracy that the writers in these tests record for cycle `i` (every 13th a failed
/// metric, so that nulls are exercised too).
double accuracy_of(std::int64_t i) {
  if (i % 13 == 12) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(i % 1000) / 1000.0;
}

constexpr double cycle_seconds = 0.25;  // exact in binary: sums of it are exact

/// Whether `m` is exactly what a writer that recorded cycles 0 .. n-1 of `total_steps` (one
/// step each, accuracy_of(i), cycle_seconds each) wrote.
::testing::AssertionResult is_consistent(protocol::trial_metrics const& m,
                                         std::int64_t total_steps) {
  auto const n = static_cast<std::int64_t>(m.points.size());
  if (m.time.total_training_steps != n)
    return ::testing::AssertionFailure()
           << n << " points but total_training_steps " << m.time.total_training_steps;
  if (m.time.total_training_time_in_secs != cycle_seconds * static_cast<double>(n))
    return ::testing::AssertionFailure()
           << n << " points but total_training_time_in_secs " << m.time.total_training_time_in_secs;
  if (m.latency != protocol::latency_not_measured)
    return ::testing::AssertionFailure() << "latency " << m.latency;
  for (std::int64_t i = 0; i < n; ++i) {
    auto const& p = m.points[static_cast<std::size_t>(i)];
    double const expected = accuracy_of(i);
    bool const same_accuracy =
        std::isnan(expected) ? std::isnan(p.accuracy) : p.accuracy == expected;
    if (p.training_step != i ||
        p.training_step_pct != protocol::training_step_pct(i, total_steps) || !same_accuracy)
      return ::testing::AssertionFailure() << "point " << i << " is {" << p.training_step_pct
                                           << ", " << p.training_step << ", " << p.accuracy << "}";
  }
  return ::testing::AssertionSuccess();
}

/// Whether `r` failed with errc::malformed_file and a context that starts with `prefix`.
template <class T>
::testing::AssertionResult fails_naming(pt::result<T> const& r, std::string_view prefix) {
  if (r) return ::testing::AssertionFailure() << "parsed, expected an error naming " << prefix;
  if (r.error().code != pt::errc::malformed_file)
    return ::testing::AssertionFailure() << "not malformed_file: " << r.error().message();
  if (!r.error().context.starts_with(prefix))
    return ::testing::AssertionFailure()
           << "the error \"" << r.error().context << "\" does not start with \"" << prefix << "\"";
  return ::testing::AssertionSuccess();
}

/// Writes `contents` to `path` directly (not atomically): these tests plant broken files.
void plant(fs::path const& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  ASSERT_TRUE(out.good()) << path;
}

/// The temporary files that killed writers left in `dir` for the file `name`.
std::size_t stray_temp_files(fs::path const& dir, std::string_view name) {
  std::string const prefix = "." + std::string(name) + ".tmp.";
  std::size_t n = 0;
  for (auto const& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().starts_with(prefix)) ++n;
  return n;
}

/// The six protocol parsers under one signature: whether the text parsed, or its error.
using any_parser = std::function<pt::result<void>(std::string_view, std::string_view)>;

template <class Parse>
any_parser erase(Parse parse) {
  return [parse](std::string_view text, std::string_view source) -> pt::result<void> {
    auto const r = parse(text, source);
    if (!r) return r.error();
    return {};
  };
}

struct named_parser {
  char const* file;  // the file it parses, used as the source
  any_parser parse;
};

std::vector<named_parser> all_parsers() {
  return {{"TRIAL_TRAINING_METRICS.json", erase(protocol::parse_trial_metrics)},
          {"DESIRED_TRAINING_PCT.json", erase(protocol::parse_desired_pct)},
          {"MAX_TRAINING_TIME.json", erase(protocol::parse_time_limit)},
          {"controller_alive_timestamp.json", erase(protocol::parse_heartbeat)},
          {"MODEL_SPEC.json", erase(protocol::parse_model_spec)},
          {"TRIAL_FAILURE.json", erase(protocol::parse_trial_failure)}};
}

protocol::trial_metrics sample_metrics(std::size_t points) {
  protocol::trial_metrics m;
  auto const total = static_cast<std::int64_t>(points);
  for (std::int64_t i = 0; i < total; ++i)
    m.points.push_back({protocol::training_step_pct(i, total), i, accuracy_of(i)});
  m.time = {total, cycle_seconds * static_cast<double>(total)};
  return m;
}

// --- 1a. a reader racing a writer process -------------------------------------------------------

// The writer is a separate process (as a trainer is), appending one cycle per update through
// trial_reporter; this process reads concurrently through the controller API. Atomic renames
// mean every read sees some complete version: it parses, is self-consistent, and never has fewer
// points than an earlier read.
TEST(ProtocolConcurrency, AReaderSeesEveryVersionOfAWriterProcessWhole) {
  // Each update rewrites the whole file (two fsyncs, about 1 ms here, and a growing document):
  // 2000 take about 2 s, 4 s under ASan; the sanitized build does half as many.
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::int64_t cycles = 1000;
#else
  constexpr std::int64_t cycles = 2000;
#endif
  pt::testing::temp_dir const dir;
  forked_child writer([&](int) {
    auto reporter = protocol::trial_reporter::open(dir.path());
    if (!reporter) return 1;
    for (std::int64_t i = 0; i < cycles; ++i) {
      auto const recorded = reporter->report_accuracy(i, i, cycle_seconds, cycles, accuracy_of(i));
      if (!recorded || !*recorded) return 2;
    }
    return 0;
  });

  std::size_t reads = 0, versions_seen = 0, last = 0;
  for (;;) {
    bool const ended = writer.ended();  // before the read: the read after the end is the last
    auto const m = protocol::read_metrics(dir.path());
    ++reads;
    if (!m) {
      // Only "not written yet" is allowed, and only before the first version.
      ASSERT_EQ(m.error().code, pt::errc::not_found) << m.error().message();
      ASSERT_EQ(last, 0u) << "the file disappeared after read " << reads;
    } else {
      ASSERT_TRUE(is_consistent(*m, cycles)) << "read " << reads;
      ASSERT_GE(m->points.size(), last) << "a lost update at read " << reads;
      if (m->points.size() != last) ++versions_seen;
      last = m->points.size();
    }
    if (ended) break;
    // A pause of about one write (with its two fsyncs) leaves the CPU to the writer on a busy
    // machine; reads still interleave with its writes.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(WIFEXITED(writer.status()) && WEXITSTATUS(writer.status()) == 0)
      << "writer wait status " << writer.status();
  EXPECT_EQ(last, static_cast<std::size_t>(cycles)) << "the final file lacks cycles";
  EXPECT_EQ(stray_temp_files(dir.path(), protocol::training_metrics_file_name), 0u);
  // The reads really overlapped the writes (not all after the writer ended).
  EXPECT_GT(versions_seen, 10u) << reads << " reads";
  std::cout << reads << " reads saw " << versions_seen << " of " << cycles << " versions\n";
}

// --- 1b. writers killed at random moments -------------------------------------------------------

constexpr int kills = 50;
constexpr std::uint32_t kill_seed = 20240605;

/// Random moments to kill the writers at, after each fork: up to four times the writers' mean
/// time per version so far, at least 25 ms and at most 1 s. A write with its two fsyncs takes
/// about 1 ms on an idle machine, tens of ms on a busy one (a sanitized build beside other tests
/// on two cores): on both, kills land before the first write, inside writes and between them,
/// and the writers get to write many versions.
class kill_moments {
 public:
  explicit kill_moments(std::uint32_t seed) : rng_(seed) {}

  /// The next delay, with `written` versions in the file so far.
  std::chrono::microseconds next(std::int64_t written) {
    std::int64_t const window = std::clamp<std::int64_t>(
        4 * slept_us_ / std::max<std::int64_t>(written, 1), 25'000, 1'000'000);
    auto const delay = std::uniform_int_distribution<std::int64_t>(0, window)(rng_);
    slept_us_ += delay;
    return std::chrono::microseconds(delay);
  }

 private:
  std::mt19937 rng_;
  std::int64_t slept_us_ = 0;
};

/// The document write_file_atomically writes as version v in the kill test: the payload's size
/// and letter follow from v, up to 256 KiB, so a half-written file cannot pass for a whole one.
std::string versioned_document(std::int64_t v) {
  auto const size = static_cast<std::size_t>((v * 7919) % 262144);
  return R"({"version": )" + std::to_string(v) + R"(, "payload": ")" +
         std::string(size, static_cast<char>('a' + v % 26)) + "\"}\n";
}

// A process rewriting a file with write_file_atomically is killed ~50 times at random moments;
// after each kill the file is a complete document, the last version the writer reported done or
// the one after it (killed between the rename and its report).
TEST(ProtocolCrashSafety, AnAtomicWriteKilledAtARandomMomentLeavesAWholeVersion) {
  pt::testing::temp_dir const dir;
  fs::path const path = dir.path() / "state.json";
  kill_moments moments(kill_seed);
  std::int64_t version = 0;  // the version in the file, 0 = no file yet
  for (int k = 0; k < kills; ++k) {
    std::int64_t const before = version;
    forked_child writer([&](int fd) {
      for (std::int64_t v = before + 1;; ++v) {
        if (!pt::write_file_atomically(path, versioned_document(v))) return 1;
        report(fd, v);
      }
    });
    std::this_thread::sleep_for(moments.next(before));
    writer.kill();
    ASSERT_TRUE(WIFSIGNALED(writer.status()) && WTERMSIG(writer.status()) == SIGKILL)
        << "the writer ended by itself (write failed?), wait status " << writer.status();
    auto const done = writer.reports();
    std::int64_t const reported = done.empty() ? before : done.back();

    auto const text = pt::read_file(path);
    if (!text) {
      ASSERT_EQ(text.error().code, pt::errc::not_found) << text.error().message();
      ASSERT_EQ(reported, 0) << "kill " << k << ": the file vanished";
      continue;
    }
    auto const doc = pt::parse_json(*text, path.string());
    ASSERT_TRUE(doc) << "kill " << k << ": " << doc.error().message();
    version = doc->at("version").as_int64();
    ASSERT_TRUE(version == reported || version == reported + 1)
        << "kill " << k << ": version " << version << " in the file, " << reported << " reported";
    ASSERT_EQ(*text, versioned_document(version)) << "kill " << k;
  }
  EXPECT_GT(version, kills / 2) << "the writer hardly ever got to write";
  std::cout << version << " versions written, " << stray_temp_files(dir.path(), "state.json")
            << " stray temporary files\n";
}

// The same with trial_reporter: each new writer process resumes the trial (trial_reporter::open
// loads the file) and appends cycles; no kill may lose a reported cycle or leave a torn file.
// Killed writers leave their temporary files (".TRIAL_TRAINING_METRICS.json.tmp.<pid>.<n>")
// behind: nothing removes them. They are harmless: readers open only the file's own name, and
// a writer never reuses a name that exists (see the next test).
TEST(ProtocolCrashSafety, ATrialReporterKilledAtARandomMomentLosesNoReportedCycle) {
  constexpr std::int64_t total = 1'000'000;
  pt::testing::temp_dir const dir;
  kill_moments moments(kill_seed + 1);
  std::int64_t recorded = 0;  // points in the file
  for (int k = 0; k < kills; ++k) {
    std::int64_t const before = recorded;
    forked_child writer([&](int fd) {
      auto reporter = protocol::trial_reporter::open(dir.path());
      if (!reporter) return 1;
      auto const n = static_cast<std::int64_t>(reporter->metrics().points.size());
      if (n != before) return 2;  // it must resume from what the file holds
      for (std::int64_t i = n; i < total; ++i) {
        auto const r = reporter->report_accuracy(i, i, cycle_seconds, total, accuracy_of(i));
        if (!r || !*r) return 3;
        report(fd, i + 1);
      }
      return 0;
    });
    std::this_thread::sleep_for(moments.next(before));
    writer.kill();
    ASSERT_TRUE(WIFSIGNALED(writer.status()) && WTERMSIG(writer.status()) == SIGKILL)
        << "kill " << k << ": the writer ended by itself, wait status " << writer.status();
    auto const done = writer.reports();
    std::int64_t const reported = done.empty() ? before : done.back();

    auto const m = protocol::read_metrics(dir.path());
    if (!m) {
      ASSERT_EQ(m.error().code, pt::errc::not_found) << m.error().message();
      ASSERT_EQ(reported, 0) << "kill " << k << ": the file vanished";
      continue;
    }
    ASSERT_TRUE(is_consistent(*m, total)) << "kill " << k;
    recorded = static_cast<std::int64_t>(m->points.size());
    ASSERT_TRUE(recorded == reported || recorded == reported + 1)
        << "kill " << k << ": " << recorded << " points in the file, " << reported << " reported";
  }
  EXPECT_GT(recorded, kills / 2) << "the writers hardly ever got to write";

  // Stray temporary files do not disturb readers or the next writer.
  std::size_t const strays = stray_temp_files(dir.path(), protocol::training_metrics_file_name);
  std::cout << recorded << " cycles recorded, " << strays << " stray temporary files\n";
  auto reporter = protocol::trial_reporter::open(dir.path()).value();
  ASSERT_EQ(reporter.metrics().points.size(), static_cast<std::size_t>(recorded));
  ASSERT_TRUE(
      reporter.report_accuracy(recorded, recorded, cycle_seconds, total, accuracy_of(recorded))
          .value());
  auto const after = protocol::read_metrics(dir.path()).value();
  EXPECT_EQ(after.points.size(), static_cast<std::size_t>(recorded + 1));
  EXPECT_TRUE(is_consistent(after, total));
  EXPECT_EQ(stray_temp_files(dir.path(), protocol::training_metrics_file_name), strays)
      << "a successful write leaves no temporary file and removes none";
}

// A killed writer's temporary file is named after its pid. A later process with the same pid (pids
// are reused; in a container a restarted trainer often gets the very same one) must still be able
// to write: it takes the next name instead of failing with EEXIST.
TEST(ProtocolCrashSafety, AStrayTempFileWithThisProcessesPidDoesNotBlockAWrite) {
  pt::testing::temp_dir const dir;
  fs::path const path = dir.path() / std::string(protocol::desired_pct_file_name);
  // temp_sibling hands out "<dir>/.<name>.tmp.<pid>.<counter>"; the next write takes counter + 1.
  std::string const probe = pt::detail::temp_sibling(path).string();
  auto const dot = probe.rfind('.');
  std::string const next =
      probe.substr(0, dot + 1) + std::to_string(std::stoull(probe.substr(dot + 1)) + 1);
  plant(next, R"({"desired_training_pct": 1)");  // what a writer killed mid-write leaves
  ASSERT_TRUE(fs::exists(next));

  auto const posted = protocol::post_desired_pct(dir.path(), 50.0);
  ASSERT_TRUE(posted) << posted.error().message();
  EXPECT_EQ(protocol::parse_desired_pct(pt::read_file(path).value(), path.string())
                .value()
                .desired_training_pct,
            50.0);
  EXPECT_TRUE(fs::exists(next)) << "another process's file is left alone";
}

// --- 1c. malformed input ------------------------------------------------------------------------

// Every proper prefix of a valid file (a writer without atomic renames, a full disk) is an error
// naming the file with the line and column, whatever the layout: Boost's compact text and the
// indented text Python's json.dump(indent=2) writes, NaN tokens included.
TEST(ProtocolMalformedInput, EveryTruncationOfAMetricsFileIsAnErrorNamingTheFile) {
  pt::testing::temp_dir const dir;
  fs::path const path = dir.path() / std::string(protocol::training_metrics_file_name);
  std::string const compact = boost::json::serialize(boost::json::value_from(sample_metrics(4)));
  std::string const python = R"({
  "training_time": {
    "total_training_steps": 200,
    "total_training_time_in_secs": 12.5
  },
  "latency": NaN,
  "training_accuracy_over_steps": [
    {
      "training_step_pct": 50.0,
      "training_step": 99,
      "accuracy": -Infinity
    },
    {
      "training_step_pct": 100.0,
      "training_step": 199,
      "accuracy": 0.875
    }
  ]
})";
  for (std::string const& text : {compact, python}) {
    ASSERT_TRUE(protocol::parse_trial_metrics(text, "whole"));
    for (std::size_t k = 0; k < text.size(); ++k) {
      auto const prefix = std::string_view(text).substr(0, k);
      ASSERT_TRUE(fails_naming(protocol::parse_trial_metrics(prefix, path.string()),
                               path.string() + ": line "))
          << "prefix of " << k << " bytes";
    }
    // The same through a file and the controller's reader, for a few lengths.
    for (std::size_t k : {std::size_t{0}, std::size_t{1}, text.size() / 3, text.size() - 1}) {
      plant(path, std::string_view(text).substr(0, k));
      ASSERT_TRUE(fails_naming(protocol::read_metrics(dir.path()), path.string() + ": line "))
          << "file of " << k << " bytes";
    }
  }
}

// An empty or blank file, as every reader sees it (a trainer's own files and the signals).
TEST(ProtocolMalformedInput, AnEmptyFileIsAnErrorNamingTheFile) {
  for (std::string_view const contents : {"", " \n\t\r\n"}) {
    pt::testing::temp_dir const dir;
    auto const at = [&](std::string_view name) { return dir.path() / std::string(name); };
    for (auto name : {protocol::training_metrics_file_name, protocol::trial_failure_file_name,
                      protocol::model_spec_file_name})
      plant(at(name), contents);
    EXPECT_TRUE(fails_naming(protocol::read_metrics(dir.path()),
                             at(protocol::training_metrics_file_name).string() + ": line "));
    EXPECT_TRUE(fails_naming(protocol::read_failure(dir.path()),
                             at(protocol::trial_failure_file_name).string() + ": line "));
    EXPECT_TRUE(fails_naming(protocol::read_model_spec(at(protocol::model_spec_file_name)),
                             at(protocol::model_spec_file_name).string() + ": line "));
    // trial_reporter::open refuses to overwrite a metrics file it cannot read.
    EXPECT_TRUE(fails_naming(protocol::trial_reporter::open(dir.path()),
                             at(protocol::training_metrics_file_name).string() + ": line "));
    fs::remove(at(protocol::training_metrics_file_name));
    auto const reporter = protocol::trial_reporter::open(dir.path()).value();
    for (auto name : {protocol::desired_pct_file_name, protocol::max_training_time_file_name,
                      protocol::heartbeat_file_name}) {
      plant(at(name), contents);
      EXPECT_TRUE(fails_naming(reporter.should_stop(0, 10), at(name).string() + ": line ")) << name;
      fs::remove(at(name));
    }
    for (named_parser const& p : all_parsers())
      EXPECT_TRUE(fails_naming(p.parse(contents, p.file), std::string(p.file) + ": line "));
  }
}

/// The JSON text of `doc` with the value at `pointer` replaced by the raw text `token`.
std::string substitute(boost::json::value doc, std::string const& pointer, std::string_view token) {
  static constexpr std::string_view placeholder = "@@substituted@@";
  if (pointer.empty())
    doc = boost::json::string(placeholder);
  else
    doc.at_pointer(pointer) = boost::json::string(placeholder);
  std::string text = boost::json::serialize(doc);
  std::string const quoted = "\"" + std::string(placeholder) + "\"";
  text.replace(text.find(quoted), quoted.size(), token);
  return text;
}

/// The value tokens substituted at each field: every JSON type, numbers that are negative,
/// fractional, out of range, and Python's non-finite tokens.
constexpr std::string_view substitutes[] = {
    "\"text\"",
    "true",
    "null",
    "{}",
    "[]",
    "7",
    "1.5",
    "-1",
    "1e400",
    "NaN",
    "-Infinity",
    "9223372036854775808",    // 2^63: a uint64 in Boost.JSON, beyond int64
    "18446744073709551616"};  // 2^64: a double in Boost.JSON

/// A field of a sample document and the substitutes its parser accepts there.
struct field_case {
  std::string pointer;
  std::set<std::string_view> accepted;
};

/// Substitutes every token at every field of `doc`, parses with `parse`, and checks: an accepted
/// token parses; any other fails with an error naming "<file>#<pointer>" (a value of the wrong
/// type) or a member under it ("{}" where an object is expected: "<file>#<pointer>/<key>:
/// missing").
void check_every_substitution(boost::json::value const& doc, named_parser const& parser,
                              std::vector<field_case> const& fields) {
  ASSERT_TRUE(parser.parse(boost::json::serialize(doc), parser.file)) << parser.file;
  for (field_case const& field : fields) {
    for (std::string_view const token : substitutes) {
      std::string const text = substitute(doc, field.pointer, token);
      auto const r = parser.parse(text, parser.file);
      SCOPED_TRACE(std::string(parser.file) + "#" + field.pointer + " = " + std::string(token));
      if (field.accepted.contains(token)) {
        EXPECT_TRUE(r) << r.error().message();
        continue;
      }
      std::string const at = std::string(parser.file) + "#" + field.pointer;
      EXPECT_TRUE(fails_naming(r, token == "{}" ? at : at + ": ")) << text;
    }
  }
}

// Each field of each file, set to a value of each JSON type (and to NaN, infinities, negative,
// fractional and out-of-range numbers): either the value is valid there, or the error names the
// file and the field's JSON pointer.
TEST(ProtocolMalformedInput, AWrongValueAtAnyFieldIsAnErrorNamingTheField) {
  std::set<std::string_view> const any_number = {
      "7", "1.5", "-1", "1e400", "NaN", "-Infinity", "9223372036854775808", "18446744073709551616"};
  std::set<std::string_view> const finite = {"7", "1.5", "-1", "9223372036854775808",
                                             "18446744073709551616"};
  std::set<std::string_view> const non_negative = {"7", "1.5", "9223372036854775808",
                                                   "18446744073709551616"};
  std::set<std::string_view> const count = {"7"};
  std::set<std::string_view> metric = any_number;  // a failed metric may also be null
  metric.insert("null");
  std::set<std::string_view> const string = {"\"text\""};
  std::set<std::string_view> const none = {};
  auto const parsers = all_parsers();
  auto const parser = [&](std::string_view file) {
    for (named_parser const& p : parsers)
      if (p.file == file) return p;
    ADD_FAILURE() << file;
    return parsers.front();
  };

  check_every_substitution(boost::json::value_from(sample_metrics(2)),
                           parser(protocol::training_metrics_file_name),
                           {{"", none},
                            {"/training_time", none},
                            {"/training_time/total_training_steps", count},
                            {"/training_time/total_training_time_in_secs", non_negative},
                            {"/latency", metric},
                            {"/training_accuracy_over_steps", {"[]"}},
                            {"/training_accuracy_over_steps/1", none},
                            {"/training_accuracy_over_steps/1/training_step_pct", non_negative},
                            {"/training_accuracy_over_steps/1/training_step", count},
                            {"/training_accuracy_over_steps/1/accuracy", metric}});
  check_every_substitution(boost::json::value_from(protocol::desired_pct_signal{50.0}),
                           parser(protocol::desired_pct_file_name),
                           {{"", none}, {"/desired_training_pct", non_negative}});
  check_every_substitution(boost::json::value_from(protocol::time_limit_signal{1.5}),
                           parser(protocol::max_training_time_file_name),
                           {{"", none}, {"/max_training_time_in_hrs", non_negative}});
  check_every_substitution(boost::json::value_from(protocol::heartbeat_signal{1.7e9}),
                           parser(protocol::heartbeat_file_name),
                           {{"", none}, {"/timestamp", finite}});
  // The parameters are the search space's business: any value is accepted inside them.
  std::set<std::string_view> const anything(std::begin(substitutes), std::end(substitutes));
  check_every_substitution(
      boost::json::value_from(protocol::model_spec{"m1", {{"depth", 2}, {"sizes", {8, 4}}}}),
      parser(protocol::model_spec_file_name),
      {{"", none},
       {"/model_id", string},
       {"/parameters", {"{}"}},
       {"/parameters/depth", anything},
       {"/parameters/sizes/1", anything}});
  check_every_substitution(
      boost::json::value_from(protocol::trial_failure{protocol::failure_kind::oom, "out", 12}),
      parser(protocol::trial_failure_file_name),
      {{"", none}, {"/kind", none}, {"/message", string}, {"/training_step", count}});
}

// NaN, Infinity and -Infinity are accepted exactly where a value can stand and nowhere else;
// look-alikes are syntax errors naming the file, line and column.
TEST(ProtocolMalformedInput, OnlyPythonsExactNonFiniteTokensAreAccepted) {
  auto const latency = [](std::string_view token) {
    return R"({"training_time": {"total_training_steps": 1, "total_training_time_in_secs": 1},
"latency": )" +
           std::string(token) + R"(, "training_accuracy_over_steps": []})";
  };
  for (std::string_view const token : {"NaN", "Infinity", "-Infinity"}) {
    auto const m = protocol::parse_trial_metrics(latency(token), "m.json");
    ASSERT_TRUE(m) << token << ": " << m.error().message();
    EXPECT_TRUE(std::isnan(m->latency)) << token;  // every non-finite latency is a failed one
  }
  for (std::string_view const token :
       {"nan", "NAN", "-NaN", "+NaN", "inf", "Inf", "+Infinity", "-inf", "NaNx", "Infinity1",
        "-Infinityy", "NaN0", "Na", "Infinit", "\"NaN\"x", "NaN NaN", "[NaN", "{NaN: 1}"}) {
    auto const text = latency(token);
    EXPECT_TRUE(
        fails_naming(protocol::parse_trial_metrics(text, "m.json"), "m.json: line 2, column "))
        << token;
  }
  // Inside strings the tokens are text, not numbers.
  auto const spec =
      protocol::parse_model_spec(R"({"model_id": "NaN", "parameters": {"Infinity": "-Infinity"}})",
                                 "MODEL_SPEC.json")
          .value();
  EXPECT_EQ(spec.model_id, "NaN");
  EXPECT_EQ(spec.parameters.at("Infinity"), "-Infinity");
}

// 50 MB of points parse (within a few seconds even under the sanitizers); the same text cut
// short is an error naming the file, not a crash.
TEST(ProtocolMalformedInput, AFiftyMegabyteMetricsFileParsesAndItsTruncationIsAnError) {
  constexpr std::size_t points = 700'000;  // about 80 bytes each
  pt::testing::temp_dir const dir;
  std::string const text = boost::json::serialize(boost::json::value_from(sample_metrics(points)));
  ASSERT_GT(text.size(), std::size_t{50} << 20);
  plant(dir.path() / "TRIAL_TRAINING_METRICS.json", text);
  auto const m = protocol::read_metrics(dir.path());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(is_consistent(*m, static_cast<std::int64_t>(points)));

  auto const cut = protocol::parse_trial_metrics(std::string_view(text).substr(0, text.size() - 7),
                                                 "TRIAL_TRAINING_METRICS.json");
  EXPECT_TRUE(fails_naming(cut, "TRIAL_TRAINING_METRICS.json: line 1, column "));
}

// Boost.JSON's parser recurses per nesting level but stops at parse_options::max_depth (32 by
// default, which proxytask keeps): a document nested a million levels deep is the error
// "too deep" at the 33rd opening bracket, not a stack overflow. 32 levels still parse.
TEST(ProtocolMalformedInput, DeepNestingIsAClearErrorNotAStackOverflow) {
  constexpr std::size_t million = 1'000'000;
  std::string arrays(million, '[');
  std::string const closed_arrays = arrays + std::string(million, ']');
  std::string objects;
  objects.reserve(6 * million);
  for (std::size_t i = 0; i < million; ++i) objects += R"({"a":)";
  for (named_parser const& p : all_parsers()) {
    for (std::string const& text : {arrays, closed_arrays, objects}) {
      auto const r = p.parse(text, p.file);
      ASSERT_TRUE(fails_naming(r, std::string(p.file) + ": line 1, column "));
      EXPECT_TRUE(r.error().context.ends_with(": too deep")) << r.error().context;
    }
    // Nested at a field, through the field's own syntax.
    auto const r = p.parse(R"({"parameters": )" + arrays, p.file);
    EXPECT_EQ(r.error().context, std::string(p.file) + ": line 1, column 47: too deep");
  }
  EXPECT_EQ(pt::parse_json(arrays, "deep").error().context, "deep: line 1, column 33: too deep");
  EXPECT_EQ(pt::parse_json_lenient(arrays, "deep").error().context,
            "deep: line 1, column 33: too deep");

  // The limit: a model spec whose document nests 32 levels parses; 33 does not.
  auto const spec_nested = [](std::size_t parameter_depth) {
    return R"({"model_id": "deep", "parameters": {"x": )" + std::string(parameter_depth, '[') +
           std::string(parameter_depth, ']') + "}}";
  };
  EXPECT_TRUE(protocol::parse_model_spec(spec_nested(30), "MODEL_SPEC.json"));  // 2 + 30 levels
  EXPECT_TRUE(fails_naming(protocol::parse_model_spec(spec_nested(31), "MODEL_SPEC.json"),
                           "MODEL_SPEC.json: line 1, column "));

  // Through a file and a reader too.
  pt::testing::temp_dir const dir;
  plant(dir.path() / "TRIAL_TRAINING_METRICS.json", arrays);
  EXPECT_EQ(
      protocol::read_metrics(dir.path()).error().context,
      (dir.path() / "TRIAL_TRAINING_METRICS.json").string() + ": line 1, column 33: too deep");
}

// Bytes that are not UTF-8 (a lone continuation byte, an overlong encoding, a UTF-16 surrogate,
// a sequence cut short, a code point above U+10FFFF), in a string of each file or outside any
// string, are an error naming the file, line and column. So is a lone \u surrogate escape.
TEST(ProtocolMalformedInput, InvalidUtf8IsAnErrorNamingTheFile) {
  std::string_view const invalid[] = {
      "\x80",         "\xff",     "\xc0\xaf",         "\xe0\x80\xaf",
      "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80"};
  for (std::string_view const bytes : invalid) {
    std::string const s(bytes);
    std::string const texts[][2] = {
        {"MODEL_SPEC.json", R"({"model_id": "m)" + s + R"(", "parameters": {}})"},
        {"MODEL_SPEC.json", R"({"model_id": "m", "parameters": {")" + s + R"(": 1}})"},
        {"TRIAL_FAILURE.json", R"({"kind": "oom", "message": ")" + s + R"("})"},
        {"TRIAL_TRAINING_METRICS.json", R"({"note": ")" + s + R"(", "latency": -1})"},
        {"DESIRED_TRAINING_PCT.json", R"({"desired_training_pct": 5)" + s + "}"},
        {"controller_alive_timestamp.json", s + R"({"timestamp": 1})"}};
    for (auto const& [file, text] : texts) {
      for (named_parser const& p : all_parsers()) {
        if (p.file != file) continue;
        EXPECT_TRUE(fails_naming(p.parse(text, p.file), std::string(p.file) + ": line 1, column "))
            << text;
      }
    }
  }
  for (std::string_view const escape : {R"(\ud800)", R"(\udc00)", R"(\ud800\u0041)"})
    EXPECT_TRUE(fails_naming(protocol::parse_model_spec(R"({"model_id": ")" + std::string(escape) +
                                                            R"(", "parameters": {}})",
                                                        "MODEL_SPEC.json"),
                             "MODEL_SPEC.json: line 1, column "))
        << escape;
  // Valid multi-byte UTF-8 is kept as is.
  EXPECT_EQ(protocol::parse_model_spec(R"({"model_id": "m\u00e9-é-€-😀", "parameters": {}})", "f")
                .value()
                .model_id,
            "m\u00e9-é-€-😀");
}

// A directory where a protocol file should be (a bad volume mount, a mistaken mkdir): every
// reader and writer returns an error naming the path; nothing throws or blocks.
TEST(ProtocolMalformedInput, ADirectoryWhereAFileIsExpectedIsAnErrorNamingIt) {
  pt::testing::temp_dir const dir;
  auto const at = [&](std::string_view name) { return dir.path() / std::string(name); };
  for (auto name : {protocol::training_metrics_file_name, protocol::trial_failure_file_name,
                    protocol::model_spec_file_name, protocol::desired_pct_file_name,
                    protocol::max_training_time_file_name, protocol::heartbeat_file_name})
    fs::create_directory(at(name));
  auto const names = [](auto const& r, fs::path const& path) -> ::testing::AssertionResult {
    if (r) return ::testing::AssertionFailure() << "succeeded on the directory " << path;
    if (r.error().code != std::errc::is_a_directory)
      return ::testing::AssertionFailure() << r.error().message();
    if (r.error().context.find(path.string()) == std::string::npos)
      return ::testing::AssertionFailure() << r.error().context << " does not name " << path;
    return ::testing::AssertionSuccess();
  };
  EXPECT_TRUE(names(protocol::read_metrics(dir.path()), at(protocol::training_metrics_file_name)));
  EXPECT_TRUE(names(protocol::read_failure(dir.path()), at(protocol::trial_failure_file_name)));
  EXPECT_TRUE(names(protocol::read_model_spec(at(protocol::model_spec_file_name)),
                    at(protocol::model_spec_file_name)));
  EXPECT_TRUE(
      names(protocol::trial_reporter::open(dir.path()), at(protocol::training_metrics_file_name)));
  // Writers: the rename over a directory fails, and the temporary file is removed.
  EXPECT_TRUE(
      names(protocol::post_desired_pct(dir.path(), 10.0), at(protocol::desired_pct_file_name)));
  EXPECT_TRUE(
      names(protocol::post_model_spec(dir.path(), {"m", {}}), at(protocol::model_spec_file_name)));
  EXPECT_EQ(stray_temp_files(dir.path(), protocol::desired_pct_file_name), 0u);
  EXPECT_EQ(stray_temp_files(dir.path(), protocol::model_spec_file_name), 0u);

  // The trainer's signal files, in should_stop's order (each read only once the one before it is
  // a readable file or absent).
  fs::remove(at(protocol::training_metrics_file_name));
  auto const reporter = protocol::trial_reporter::open(dir.path()).value();
  for (auto name : {protocol::desired_pct_file_name, protocol::max_training_time_file_name,
                    protocol::heartbeat_file_name}) {
    EXPECT_TRUE(names(reporter.should_stop(0, 10), at(name))) << name;
    fs::remove(at(name));
  }
  EXPECT_EQ(reporter.should_stop(0, 10).value(), protocol::stop_reason::keep_going);

  // A regular file where the trial directory should be.
  plant(dir.path() / "not-a-dir", "x");
  auto const r = protocol::read_metrics(dir.path() / "not-a-dir");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::not_a_directory);
  EXPECT_NE(r.error().context.find("not-a-dir"), std::string::npos) << r.error().context;
  auto const opened = protocol::trial_reporter::open(dir.path() / "not-a-dir");
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().context.find("not-a-dir"), std::string::npos) << opened.error().context;
}

}  // namespace
