#pragma once
/// @file
/// Version, the host/device annotation and the contract-check macro.

#include <proxytask/core/error.hpp>

#include <string>

#define PROXYTASK_VERSION_MAJOR 0
#define PROXYTASK_VERSION_MINOR 1
#define PROXYTASK_VERSION_PATCH 0

/// Marks math shared by the CPU and GPU back-ends: `__host__ __device__` under nvcc, nothing
/// elsewhere (RAFT's _RAFT_HOST_DEVICE).
#if defined(__CUDACC__)
#define PROXYTASK_HD __host__ __device__
#else
#define PROXYTASK_HD
#endif

/// Checks a caller's contract (mismatched extents, bad options): throws proxytask::logic_error
/// naming the condition and where it was checked. Not for bad data, which gets a result<T> error.
#define PROXYTASK_EXPECTS(cond, msg)                                             \
  do {                                                                           \
    if (!(cond)) {                                                               \
      throw ::proxytask::logic_error(std::string(msg) +                          \
                                     " (expected: " #cond ", at " __FILE__ ":" + \
                                     std::to_string(__LINE__) + ")");            \
    }                                                                            \
  } while (false)
