#pragma once
/// @file
/// device_matrix_view: the device-memory twin of host_matrix_view (rows = models, columns =
/// steps, row-major), a distinct type so that host and device data are never mixed up.

#include <proxytask/core/backend.cuh>
#include <proxytask/core/matrix_view.hpp>

#include <cstddef>
#include <type_traits>

namespace proxytask {

/// A row-major matrix in device memory. Element (r, c) is at data[r * cols + c].
template <class T>
class device_matrix_view {
 public:
  using element_type = T;

  constexpr device_matrix_view() = default;
  /// @pre data points to rows * cols elements of device memory
  constexpr device_matrix_view(T* data, std::size_t rows, std::size_t cols) noexcept
      : data_(data), rows_(rows), cols_(cols) {}
  /// A read-only view of a mutable one.
  template <class U>
  requires std::is_same_v<T, U const>
  constexpr device_matrix_view(device_matrix_view<U> other) noexcept
      : data_(other.data()), rows_(other.rows()), cols_(other.cols()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t rows() const noexcept { return rows_; }
  constexpr std::size_t cols() const noexcept { return cols_; }
  constexpr std::size_t size() const noexcept { return rows_ * cols_; }

 private:
  T* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
};

}  // namespace proxytask
