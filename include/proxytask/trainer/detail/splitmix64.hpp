#pragma once
/// @file
/// SplitMix64 and the integer draws built on it: the data subsampling and the search space use
/// these instead of <random>'s distributions, whose output differs between standard libraries,
/// so that a seed names the same subsample and the same model on every platform.

#include <proxytask/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace proxytask::trainer::detail {

/// SplitMix64 (Steele, Lea and Flood, 2014; the constants of Vigna's reference splitmix64.c).
class splitmix64 {
 public:
  explicit constexpr splitmix64(std::uint64_t seed) noexcept : state_(seed) {}

  /// The next 64-bit word.
  constexpr std::uint64_t operator()() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// A uniform integer in [0, n), without modulo bias: words below 2^64 mod n are rejected.
  /// @pre n > 0
  constexpr std::uint64_t below(std::uint64_t n) {
    PROXYTASK_EXPECTS(n > 0, "splitmix64::below needs a non-empty range");
    std::uint64_t const threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      std::uint64_t const r = (*this)();
      if (r >= threshold) return r % n;
    }
  }

 private:
  std::uint64_t state_;
};

/// Fisher-Yates shuffle (Durstenfeld's form: from the back, each position swapped with a uniform
/// position at or before it), drawing from `rng`.
template <class T>
constexpr void shuffle(std::span<T> items, splitmix64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    auto const j = static_cast<std::size_t>(rng.below(i));
    using std::swap;
    swap(items[i - 1], items[j]);
  }
}

}  // namespace proxytask::trainer::detail
