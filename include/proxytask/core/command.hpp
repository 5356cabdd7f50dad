#pragma once
/// @file
/// Runs a short external command and captures what it prints: the search space's sampling
/// command and the Slurm client commands (sbatch, squeue, scontrol, scancel) both go through it.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern "C" char** environ;

namespace proxytask::detail {

/// What a finished (or killed) command printed and how it ended.
struct command_output {
  int exit_status = 0;     ///< the exit status, or 128 + the signal that killed it
  int signal = 0;          ///< the signal that killed it (0: it exited)
  bool timed_out = false;  ///< it ran past the timeout and was killed (with its process group)
  std::string out;
  std::string err;
};

/// The command line as text: its arguments joined by spaces.
inline std::string command_text(std::vector<std::string> const& argv) {
  std::string shown;
  for (auto const& a : argv) shown += (shown.empty() ? "" : " ") + a;
  return shown;
}

/// Spawn attributes for a child in its own process group (so that one signal to the group
/// reaches whatever it starts), with default signal dispositions and an empty signal mask,
/// whatever the parent's are. @pre attr is initialised (posix_spawnattr_init)
inline void spawn_in_own_group(posix_spawnattr_t& attr) {
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

/// Runs `argv` (argv[0] looked up in PATH; stdin /dev/null; the environment inherited; its own
/// process group, so that a timeout kills whatever it started too) and captures its stdout and
/// stderr. Past `timeout_s` the group is killed and the output says so (`timed_out`).
/// @param[in] what names the command in error messages
/// @returns its output; an errno error naming it when it cannot be started or waited for
inline result<command_output> run_command(std::vector<std::string> const& argv, double timeout_s,
                                          std::string const& what) {
  // stdout and stderr go to unlinked temporary files: no pipe can fill up and block the child.
  auto temp = [] {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "proxytask-cmd-XXXXXX").string();
    int const fd = ::mkostemp(pattern.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(pattern.c_str());
    return fd;
  };
  unique_fd out(temp()), err(temp());
  if (out.get() < 0 || err.get() < 0)
    return make_error(std::error_code(errno, std::generic_category()),
                      what + ": cannot create a temporary file for its output");
  std::vector<std::string> args = argv;
  std::vector<char*> argv_p;
  for (auto& a : args) argv_p.push_back(a.data());
  argv_p.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.get(), 2);
  spawn_in_own_group(attr);
  pid_t pid = 0;
  int const rc = ::posix_spawnp(&pid, argv_p[0], &actions, &attr, argv_p.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return make_error(std::error_code(rc, std::generic_category()), what + ": cannot start it");

  command_output o;
  auto const deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::microseconds(200);
  int status = 0;
  for (;;) {
    pid_t const r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR)
      return make_error(std::error_code(errno, std::generic_category()),
                        what + ": cannot wait for it");
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      o.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20'000));
  }
  auto read_all = [](int fd) {
    std::string text;
    char buffer[4096];
    ::lseek(fd, 0, SEEK_SET);
    for (;;) {
      ssize_t const n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
  };
  o.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  o.exit_status = o.signal != 0 ? 128 + o.signal : WEXITSTATUS(status);
  o.out = read_all(out.get());
  o.err = read_all(err.get());
  return o;
}

}  // namespace proxytask::detail
