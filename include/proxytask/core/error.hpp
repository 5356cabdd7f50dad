#pragma once
/// @file
/// The error model: proxytask::errc and its category, proxytask::error, result<T>, and the two
/// exception types (STYLE.md 2.5).

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace proxytask {

/// Canonical error codes (abseil's names). I/O failures keep their std::errc / errno codes.
enum class errc {
  invalid_argument = 1,  ///< bad data or option given at run time (not a caller bug)
  not_found,             ///< a file, column or field that must exist does not
  malformed_file,        ///< a file that exists but cannot be parsed or has a bad field
  failed_precondition,   ///< the system is not in a state where this can run (lock held ...)
  device_unavailable,    ///< no CUDA device or driver
  resource_exhausted,    ///< out of (device) memory
  cuda_failure,          ///< a CUDA runtime call failed
  internal,              ///< a bug of ours
  cancelled,             ///< stopped on request (SIGINT / SIGTERM); it can be resumed
};

namespace detail {
class error_category_impl final : public std::error_category {
 public:
  char const* name() const noexcept override { return "proxytask"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::invalid_argument: return "invalid argument";
      case errc::not_found: return "not found";
      case errc::malformed_file: return "malformed file";
      case errc::failed_precondition: return "failed precondition";
      case errc::device_unavailable: return "no CUDA device available";
      case errc::resource_exhausted: return "resource exhausted";
      case errc::cuda_failure: return "CUDA failure";
      case errc::internal: return "internal error";
      case errc::cancelled: return "cancelled";
    }
    return "unknown proxytask error";
  }
};
}  // namespace detail

/// The "proxytask" error category.
inline std::error_category const& error_category() noexcept {
  static detail::error_category_impl const instance;
  return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace proxytask

template <>
struct std::is_error_code_enum<proxytask::errc> : std::true_type {};

namespace proxytask {

/// An error value: what went wrong (code) and where (context: a file, a JSON pointer, a column).
struct error {
  std::error_code code;
  std::string context;

  /// "malformed file: runs/a/TRIAL_TRAINING_METRICS.json#/latency: expected a number"
  std::string message() const {
    return context.empty() ? code.message() : code.message() + ": " + context;
  }
};

/// Builds an error from a code and a context message.
inline error make_error(std::error_code code, std::string context) {
  return error{code, std::move(context)};
}

/// Thrown by result<T>::value() on an error, and by the tools' exception-based entry points.
class exception : public std::runtime_error {
 public:
  explicit exception(proxytask::error e) : std::runtime_error(e.message()), error_(std::move(e)) {}
  proxytask::error const& error() const noexcept { return error_; }

 private:
  proxytask::error error_;
};

/// Thrown by PROXYTASK_EXPECTS when a caller breaks a documented precondition.
class logic_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// Found by ADL from boost::system::result<T, error>::value(): makes it throw our exception.
[[noreturn]] inline void throw_exception_from_error(error const& e, boost::source_location const&) {
  throw exception(e);
}

/// The return type of everything that can fail for environmental or data reasons.
template <class T>
using result = boost::system::result<T, error>;

}  // namespace proxytask
