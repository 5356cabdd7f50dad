#pragma once
/// @file
/// Non-owning views over host memory that say what they hold: rows = models, columns = steps.

#include <proxytask/core/config.hpp>

#include <cstddef>
#include <span>
#include <type_traits>

namespace proxytask {

/// A row-major matrix in host memory. Element (r, c) is at data[r * cols + c].
/// @tparam T element type (const-qualified for read-only views)
template <class T>
class host_matrix_view {
 public:
  using element_type = T;

  constexpr host_matrix_view() = default;
  /// @pre data holds rows * cols elements
  constexpr host_matrix_view(T* data, std::size_t rows, std::size_t cols) noexcept
      : data_(data), rows_(rows), cols_(cols) {}
  /// Views a flat span as a rows x cols matrix.
  /// @throws proxytask::logic_error when the span's size is not rows * cols
  host_matrix_view(std::span<T> values, std::size_t rows, std::size_t cols)
      : data_(values.data()), rows_(rows), cols_(cols) {
    PROXYTASK_EXPECTS(values.size() == rows * cols, "matrix view: span size must be rows * cols");
  }
  /// A read-only view of a mutable one.
  template <class U>
  requires std::is_same_v<T, U const>
  constexpr host_matrix_view(host_matrix_view<U> other) noexcept
      : data_(other.data()), rows_(other.rows()), cols_(other.cols()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t rows() const noexcept { return rows_; }
  constexpr std::size_t cols() const noexcept { return cols_; }
  constexpr std::size_t size() const noexcept { return rows_ * cols_; }
  constexpr T& operator()(std::size_t r, std::size_t c) const noexcept {
    return data_[r * cols_ + c];
  }
  /// The values of one model (all steps).
  constexpr std::span<T> row(std::size_t r) const noexcept { return {data_ + r * cols_, cols_}; }

 private:
  T* data_ = nullptr;
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
};

}  // namespace proxytask
