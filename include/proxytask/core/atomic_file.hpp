#pragma once
/// @file
/// File I/O: atomic writes (every file proxytask writes goes through write_file_atomically, so a
/// reader never sees half a file and a crash never loses the previous version) and whole-file
/// reads with errors that name the file.

#include <proxytask/core/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace proxytask {

namespace detail {

inline error io_error(int err, std::string_view what, std::filesystem::path const& path) {
  return make_error(std::error_code(err, std::system_category()),
                    std::string(what) + " " + path.string());
}

/// Closes a POSIX file descriptor on scope exit (unless released).
class unique_fd {
 public:
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd const&) = delete;
  unique_fd& operator=(unique_fd const&) = delete;
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  /// Closes now and reports close()'s error (it can report a failed delayed write).
  int close() noexcept {
    int const rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

/// A name for the temporary file, unique within this process and across processes.
inline std::filesystem::path temp_sibling(std::filesystem::path const& target) {
  static std::atomic<unsigned long> counter{0};
  // Appended piece by piece: GCC 12's -Wrestrict misfires on "." + std::string&& in Release.
  std::string name = ".";
  name += target.filename().string();
  name += ".tmp.";
  name += std::to_string(::getpid());
  name += '.';
  name += std::to_string(counter.fetch_add(1));
  return target.parent_path() / name;
}

}  // namespace detail

/// Writes `contents` to `path` atomically: a temporary file in the same directory, fsync, rename
/// over the target, fsync of the directory. On failure the target is untouched and the
/// temporary file removed.
/// @param[in] path     the file to create or replace (its directory must exist)
/// @param[in] contents the bytes to write
/// @returns an error naming the path and the failed step (its code is the errno value)
inline result<void> write_file_atomically(std::filesystem::path const& path,
                                          std::string_view contents) {
  namespace fs = std::filesystem;
  fs::path const dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  fs::path const target = path.has_parent_path() ? path : fs::path(".") / path;

  // A writer killed mid-write leaves its temporary file behind, and a later process can have the
  // same pid (pids are reused; a restarted container often gets the same one): take the next name.
  fs::path temp;
  int raw_fd = -1;
  for (int attempt = 0; attempt < 100 && raw_fd < 0; ++attempt) {
    temp = detail::temp_sibling(target);
    raw_fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (raw_fd < 0 && errno != EEXIST) break;
  }
  detail::unique_fd fd(raw_fd);
  if (fd.get() < 0) return detail::io_error(errno, "cannot create a temporary file for", path);
  auto fail = [&](int err, std::string_view what) -> result<void> {
    ::unlink(temp.c_str());
    return detail::io_error(err, what, path);
  };

  char const* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    ssize_t const n = ::write(fd.get(), p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno, "cannot write");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return fail(errno, "cannot fsync");
  if (fd.close() != 0) return fail(errno, "cannot close");
  if (::rename(temp.c_str(), path.c_str()) != 0) return fail(errno, "cannot rename into place");

  // The rename is durable only once the directory entry is on disk.
  detail::unique_fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return detail::io_error(errno, "cannot open the directory of", path);
  if (::fsync(dir_fd.get()) != 0)
    return detail::io_error(errno, "cannot fsync the directory of", path);
  return {};
}

/// Reads a whole file.
/// @returns its bytes; errc::not_found for a missing file, otherwise the errno code, with a
///          message naming the path
inline result<std::string> read_file(std::filesystem::path const& path) {
  detail::unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    int const err = errno;
    if (err == ENOENT) return make_error(errc::not_found, path.string() + ": no such file");
    return detail::io_error(err, "cannot open", path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode))
    return detail::io_error(EISDIR, "cannot read", path);
  std::string contents;
  if (st.st_size > 0) contents.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    ssize_t const n = ::read(fd.get(), buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return detail::io_error(errno, "cannot read", path);
    }
    contents.append(buffer, static_cast<std::size_t>(n));
  }
  return contents;
}

}  // namespace proxytask
