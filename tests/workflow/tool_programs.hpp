#pragma once
// The programs the tool CLI tests run as child processes (their paths come from CMake; a build
// without the examples skips those tests), and a file reader for their output.

#include <proxytask/core/atomic_file.hpp>

#include <gtest/gtest.h>

#include <chrono>

#include <filesystem>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace proxytask::testing {

#if defined(PROXYTASK_MEASURE_VARIANCE) && defined(PROXYTASK_STATUS) && \
    defined(PROXYTASK_EXAMPLE_TRAINER)
inline constexpr bool tool_programs_built = true;
inline constexpr char const* measure_variance_program = PROXYTASK_MEASURE_VARIANCE;
inline constexpr char const* status_program = PROXYTASK_STATUS;
inline constexpr char const* example_trainer_program = PROXYTASK_EXAMPLE_TRAINER;
#else
inline constexpr bool tool_programs_built = false;
inline constexpr char const* measure_variance_program = "";
inline constexpr char const* status_program = "";
inline constexpr char const* example_trainer_program = "";
#endif

// proxytask-latency-calculator: only where the reference trainer (proxytask::trainer) is built.
#if defined(PROXYTASK_LATENCY_CALCULATOR)
inline constexpr bool latency_calculator_built = true;
inline constexpr char const* latency_calculator_program = PROXYTASK_LATENCY_CALCULATOR;
#else
inline constexpr bool latency_calculator_built = false;
inline constexpr char const* latency_calculator_program = "";
#endif

// proxytask-select-models (select_models_cli_test.cpp).
#if defined(PROXYTASK_SELECT_MODELS)
inline constexpr bool select_models_built = true;
inline constexpr char const* select_models_program = PROXYTASK_SELECT_MODELS;
#else
inline constexpr bool select_models_built = false;
inline constexpr char const* select_models_program = "";
#endif

// proxytask-search-proxy (search_proxy_cli_test.cpp).
#if defined(PROXYTASK_SEARCH_PROXY)
inline constexpr bool search_proxy_built = true;
inline constexpr char const* search_proxy_program = PROXYTASK_SEARCH_PROXY;
#else
inline constexpr bool search_proxy_built = false;
inline constexpr char const* search_proxy_program = "";
#endif

/// A file's text, or "" when it cannot be read.
inline std::string text_of(std::filesystem::path const& p) {
  auto const text = read_file(p);
  return text ? *text : std::string();
}

/// How a program ended and what it printed.
struct program_outcome {
  int code = -1;  ///< the exit status (128 + signal if killed); -1 when it did not end in time
  std::string out, err;
};

/// Runs `argv` to its end (at most `timeout`; then it is killed), its stdout and stderr going to
/// <dir>/out-<tag> and <dir>/err-<tag>.
inline program_outcome run_program(std::vector<std::string> const& argv,
                                   std::filesystem::path const& dir, std::string const& tag,
                                   std::chrono::milliseconds timeout) {
  auto const out = dir / ("out-" + tag);
  auto const err = dir / ("err-" + tag);
  program_outcome o;
  {
    child_process p(argv, out, err);
    auto const code = p.wait(timeout);
    EXPECT_TRUE(code) << argv.at(0) << " did not end";
    o.code = code.value_or(-1);
  }
  o.out = text_of(out);
  o.err = text_of(err);
  return o;
}

}  // namespace proxytask::testing
