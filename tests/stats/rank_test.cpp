#include <proxytask/stats/rank.hpp>

#include <support/random_samples.hpp>
#include <support/rank_oracle.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

namespace {

namespace st = proxytask::stats;

using proxytask::testing::average_ranks_by_definition;

TEST(AverageRanks, MatchesScipyRankdataOnTies) {
  std::vector<double> const v{10, 20, 20, 30, 20, -1};
  auto const r = st::average_ranks(std::span<double const>(v));
  EXPECT_EQ(r, (std::vector<double>{2, 4, 4, 6, 4, 1}));
}

TEST(AverageRanks, AgreesWithTheDefinitionOnRandomTiedSamples) {
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    auto const v = proxytask::testing::random_sample(37, seed, seed % 2 ? 5 : 0);
    EXPECT_EQ(st::average_ranks(std::span<double const>(v)), average_ranks_by_definition(v))
        << "seed " << seed;
  }
}

TEST(DoubledRanks, AreIntegersThatSumToNTimesNPlusOne) {
  auto const v = proxytask::testing::random_sample(101, 3, 7);
  std::vector<std::int64_t> r(v.size());
  st::doubled_ranks(std::span<double const>(v), std::span<std::int64_t>(r));
  EXPECT_EQ(std::accumulate(r.begin(), r.end(), std::int64_t{0}), 101 * 102);
  auto const avg = st::average_ranks(std::span<double const>(v));
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(static_cast<double>(r[i]), 2 * avg[i]);
}

TEST(DoubledRanks, TreatsSignedZerosAsTiesAndRanksInfinities) {
  double const inf = std::numeric_limits<double>::infinity();
  std::vector<double> const v{0.0, -0.0, inf, -inf};
  std::vector<std::int64_t> r(4);
  st::doubled_ranks(std::span<double const>(v), std::span<std::int64_t>(r));
  EXPECT_EQ(r, (std::vector<std::int64_t>{5, 5, 8, 2}));
}

TEST(DoubledRanks, AgreeWithTheDefinitionAtEverySortSize) {
  // The sort orders by the high halves of the values' bits and only then by the low halves:
  // values that differ beyond the 20th mantissa bit (1 + 2^-40 ...), signed zeros, infinities and
  // negatives, at sizes taking each path (std::sort, 8-bit and 11-bit radix digits).
  double const inf = std::numeric_limits<double>::infinity();
  std::vector<double> const near{1.0,  1.0 + 0x1p-40, 1.0 + 0x1p-45,  1.0 - 0x1p-50,
                                 -0.0, 0.0,           -1.0 - 0x1p-40, -1.0,
                                 inf,  -inf,          0x1p-1074,      -0x1p-1074};
  for (std::size_t n : {100, 1000, 5000}) {
    auto v = proxytask::testing::random_sample(n, n, n == 1000 ? 0 : 40);
    for (std::size_t i = 0; i < n; i += 3) v[i] = near[(i / 3) % near.size()];
    std::vector<std::int64_t> r(n);
    st::doubled_ranks(std::span<double const>(v), std::span<std::int64_t>(r));
    auto const expected = average_ranks_by_definition(v);
    for (std::size_t i = 0; i < n; ++i)
      ASSERT_EQ(static_cast<double>(r[i]), 2 * expected[i]) << "n " << n << " value " << v[i];
  }
}

TEST(DoubledRanks, RejectsNaNAndSizeMismatch) {
  std::vector<double> const v{1.0, std::nan("")};
  std::vector<std::int64_t> r(2), short_r(1);
  EXPECT_THROW(st::doubled_ranks(std::span<double const>(v), std::span<std::int64_t>(r)),
               proxytask::logic_error);
  std::vector<double> const ok{1.0, 2.0};
  EXPECT_THROW(st::doubled_ranks(std::span<double const>(ok), std::span<std::int64_t>(short_r)),
               proxytask::logic_error);
}

TEST(AverageRanks, HandlesEmptyAndSingleSamples) {
  EXPECT_TRUE(st::average_ranks(std::span<double const>()).empty());
  std::vector<float> const one{3.5f};
  EXPECT_EQ(st::average_ranks(std::span<float const>(one)), std::vector<double>{1.0});
}

}  // namespace
