#include <proxytask/core/matrix_view.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(HostMatrixView, IsRowMajorWithModelsAsRows) {
  std::vector<double> v{1, 2, 3, 4, 5, 6};  // 2 models x 3 steps
  proxytask::host_matrix_view<double> m(v.data(), 2, 3);
  EXPECT_EQ(m.rows(), 2u);
  EXPECT_EQ(m.cols(), 3u);
  EXPECT_EQ(m.size(), 6u);
  EXPECT_EQ(m(0, 2), 3);
  EXPECT_EQ(m(1, 0), 4);
  m(1, 1) = 50;
  EXPECT_EQ(v[4], 50);
  auto const row = m.row(1);
  ASSERT_EQ(row.size(), 3u);
  EXPECT_EQ(row[2], 6);
}

TEST(HostMatrixView, ConvertsToAReadOnlyView) {
  std::vector<float> v{1, 2};
  proxytask::host_matrix_view<float> m(v.data(), 1, 2);
  proxytask::host_matrix_view<float const> c = m;
  EXPECT_EQ(c(0, 1), 2.0f);
}

TEST(HostMatrixView, RejectsASpanOfTheWrongSize) {
  std::vector<double> v(5);
  EXPECT_THROW((proxytask::host_matrix_view<double>(std::span<double>(v), 2, 3)),
               proxytask::logic_error);
  EXPECT_NO_THROW((proxytask::host_matrix_view<double>(std::span<double>(v), 5, 1)));
}

}  // namespace
