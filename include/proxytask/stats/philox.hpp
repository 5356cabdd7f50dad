#pragma once
/// @file
/// The counter-based random numbers of the bootstrap and permutation tests: Philox4x32-10
/// (Random123), keyed by the seed and counted by (step, replicate, purpose, block), so that
/// replicate r of step s is the same draw on every back-end and for every thread count.

#include <proxytask/core/config.hpp>

#include <Random123/philox.h>

#include <cstdint>

namespace proxytask::stats {

/// What a stream is drawn for: the two tests never share a stream.
enum class draw_purpose : std::uint32_t { bootstrap = 0, permutation = 1 };

/// The uniform 32-bit words of one replicate: word i is word (i % 4) of
/// Philox4x32-10(counter = {i / 4, replicate, step, purpose}, key = {seed low, seed high}).
class philox_stream {
 public:
  PROXYTASK_HD philox_stream(std::uint64_t seed, std::uint32_t step, std::uint32_t replicate,
                             draw_purpose purpose) noexcept
      : key_{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}},
        counter_{{0u, replicate, step, static_cast<std::uint32_t>(purpose)}} {}

  /// Words 4 b .. 4 b + 3, at once (loops that consume four words at a time need no branch).
  PROXYTASK_HD r123array4x32 block(std::uint32_t b) const noexcept {
    r123array4x32 counter = counter_;
    counter.v[0] = b;
    return philox4x32_R(10, counter, key_);
  }

  /// The next 32-bit word.
  PROXYTASK_HD std::uint32_t operator()() noexcept {
    if (used_ == 4) {
      block_ = block(next_block_++);
      used_ = 0;
    }
    return block_.v[used_++];
  }

 private:
  r123array2x32 key_;
  r123array4x32 counter_;
  r123array4x32 block_{};
  std::uint32_t next_block_ = 0;
  unsigned used_ = 4;
};

/// A uniform index in [0, n) from a 32-bit word by multiply-shift: floor(u * n / 2^32). Its bias
/// is below n / 2^32 (under 4e-6 for 15,625 models) and it is the same integer on every back-end.
PROXYTASK_HD constexpr std::uint32_t uniform_index(std::uint32_t u, std::uint32_t n) noexcept {
  return static_cast<std::uint32_t>((static_cast<std::uint64_t>(u) * n) >> 32);
}

}  // namespace proxytask::stats
