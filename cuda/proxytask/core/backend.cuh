#pragma once
/// @file
/// The CUDA back-ends (nvcc only): backend::cuda (a stream-ordered GPU policy) and backend::auto_
/// (the GPU when there is one and the work is large enough, else the CPU), the error-value
/// checking of CUDA runtime calls (STYLE.md 2.3, 2.5), and device memory: device_span (a view
/// that says it is device memory) and device_buffer (owning, allocation errors as values).

#include <proxytask/core/backend.hpp>
#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

/// Kernels have hidden visibility (CCCL, cuCollections): two shared libraries built with
/// different proxytask versions do not share a kernel by name.
#ifndef PROXYTASK_KERNEL
#define PROXYTASK_KERNEL __attribute__((visibility("hidden"))) __global__
#endif

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

namespace proxytask {

/// A contiguous view of device memory: std::span's interface (data, size, subspan, first), but a
/// distinct type, so a host array is never passed where device memory is expected. Built only
/// from a pointer and a size (or a device_buffer), never from a host container.
template <class T>
class device_span {
 public:
  using element_type = T;
  constexpr device_span() noexcept = default;
  constexpr device_span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
  /// device_span<T> -> device_span<T const>
  template <class U>
  requires(std::is_same_v<U const, T> &&
           !std::is_same_v<U, T>) constexpr device_span(device_span<U> other) noexcept
      : data_(other.data()), size_(other.size()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  /// Elements [offset, offset + count).
  constexpr device_span subspan(std::size_t offset, std::size_t count) const {
    PROXYTASK_EXPECTS(offset <= size_ && count <= size_ - offset, "device_span::subspan: extent");
    return {data_ + offset, count};
  }
  constexpr device_span first(std::size_t count) const { return subspan(0, count); }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Owning device memory for size() elements of a trivially copyable T (cudaMalloc). Allocation
/// failures are values (allocate, resize), never throws; move-only.
template <class T>
class device_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "device_buffer holds trivially copyable types");

 public:
  device_buffer() noexcept = default;
  device_buffer(device_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  device_buffer& operator=(device_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  device_buffer(device_buffer const&) = delete;
  device_buffer& operator=(device_buffer const&) = delete;
  ~device_buffer() { release(); }

  /// n uninitialised elements.
  /// @returns the buffer; errc::resource_exhausted when the device is out of memory,
  ///          errc::device_unavailable without a device
  static result<device_buffer> allocate(std::size_t n) {
    device_buffer b;
    if (auto const r = b.resize(n); !r) return r.error();
    return b;
  }

  /// Makes size() n, keeping the first min(n, size()) elements; reallocates only to grow past
  /// the capacity (ordered after the work already on `stream`: the copy is on it, and the old
  /// block is freed once the device is done with it).
  result<void> resize(std::size_t n, cudaStream_t stream = nullptr) {
    if (n <= capacity_) {
      size_ = n;
      return {};
    }
    T* fresh = nullptr;
    PROXYTASK_CUDA_TRY(cudaMalloc(reinterpret_cast<void**>(&fresh), n * sizeof(T)));
    if (size_ > 0) {
      cudaError_t const copied =
          cudaMemcpyAsync(fresh, data_, size_ * sizeof(T), cudaMemcpyDeviceToDevice, stream);
      if (copied != cudaSuccess) {
        (void)cudaFree(fresh);
        return backend::detail::cuda_error(copied, "cudaMemcpyAsync (device_buffer::resize)");
      }
    }
    release();  // cudaFree waits for the copy
    data_ = fresh;
    size_ = n;
    capacity_ = n;
    return {};
  }

  T* data() noexcept { return data_; }
  T const* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  device_span<T> view() noexcept { return {data_, size_}; }
  device_span<T const> view() const noexcept { return {data_, size_}; }

 private:
  void release() noexcept {
    if (data_ != nullptr) (void)cudaFree(data_);  // no error to report from a destructor
    data_ = nullptr;
    size_ = capacity_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace proxytask
