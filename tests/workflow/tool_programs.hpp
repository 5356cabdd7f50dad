#pragma once
// The programs the tool CLI tests run as child processes (their paths come from CMake; a build
// without the examples skips those tests), and a file reader for their output.

#include <proxytask/core/atomic_file.hpp>

#include <filesystem>
#include <string>

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

/// A file's text, or "" when it cannot be read.
inline std::string text_of(std::filesystem::path const& p) {
  auto const text = read_file(p);
  return text ? *text : std::string();
}

}  // namespace proxytask::testing
