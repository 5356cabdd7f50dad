#pragma once
/// @file
/// The CUDA back-ends (nvcc only): backend::cuda (a stream-ordered GPU policy) and backend::auto_
/// (the GPU when there is one and the work is large enough, else the CPU), and the error-value
/// checking of CUDA runtime calls (STYLE.md 2.3, 2.5).

#include <proxytask/core/backend.hpp>
#include <proxytask/core/error.hpp>

#include <cuda_runtime_api.h>

#include <string>

/// Evaluates a CUDA runtime call; on failure *returns* a proxytask::error from the enclosing
/// function (CUB style; never throws): device_unavailable when there is no usable device or
/// driver, resource_exhausted on out-of-memory, cuda_failure otherwise.
#define PROXYTASK_CUDA_TRY(call)                                                      \
  do {                                                                                \
    cudaError_t const proxytask_cuda_status_ = (call);                                \
    if (proxytask_cuda_status_ != cudaSuccess)                                        \
      return ::proxytask::backend::detail::cuda_error(proxytask_cuda_status_, #call); \
  } while (false)

namespace proxytask::backend {

/// The GPU back-end: work is ordered on `stream` (default: the legacy default stream).
struct cuda_t {
  cudaStream_t stream = nullptr;
  /// `correlate_over_steps(backend::cuda.on(stream), ...)`
  constexpr cuda_t on(cudaStream_t s) const noexcept { return cuda_t{s}; }
};

/// The GPU when a device is present and the problem is large enough to gain from it, the CPU
/// otherwise (including when there is no device or driver).
struct auto_t {};

inline constexpr cuda_t cuda{};
inline constexpr auto_t auto_{};

template <>
inline constexpr bool is_visible_v<cuda_t> = true;
template <>
inline constexpr bool is_visible_v<auto_t> = true;

namespace detail {
/// The proxytask error for a failed CUDA call, naming the call and CUDA's own message.
inline error cuda_error(cudaError_t status, char const* call) {
  (void)cudaGetLastError();  // clear a sticky-free error so later calls are not blamed
  errc code = errc::cuda_failure;
  if (status == cudaErrorNoDevice || status == cudaErrorInsufficientDriver)
    code = errc::device_unavailable;
  else if (status == cudaErrorMemoryAllocation)
    code = errc::resource_exhausted;
  return make_error(code, std::string(call) + ": " + cudaGetErrorName(status) + " (" +
                              cudaGetErrorString(status) + ")");
}
}  // namespace detail

/// The number of CUDA devices, or device_unavailable when there is none or no driver.
inline result<int> cuda_device_count() {
  int count = 0;
  PROXYTASK_CUDA_TRY(cudaGetDeviceCount(&count));
  if (count == 0) return make_error(errc::device_unavailable, "cudaGetDeviceCount: 0 devices");
  return count;
}

}  // namespace proxytask::backend
