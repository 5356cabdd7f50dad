// The CUDA back-end's plumbing. Runs everywhere: with a GPU the device tests run, without one
// they skip (CudaTest) and the no-device behaviour is checked instead.

#include <proxytask/core/backend.cuh>

#include <support/cuda_test.hpp>

#include <gtest/gtest.h>

#include <string>
#include <type_traits>

namespace {

namespace pt = proxytask;

TEST(CudaBackend, PoliciesAreVisibleUnderNvcc) {
  static_assert(pt::backend::is_visible_v<pt::backend::cuda_t>);
  static_assert(pt::backend::is_visible_v<pt::backend::auto_t>);
  static_assert(pt::backend::is_visible_v<pt::backend::cpu_t>);
  cudaStream_t const stream = reinterpret_cast<cudaStream_t>(0x1);
  EXPECT_EQ(pt::backend::cuda.on(stream).stream, stream);
  EXPECT_EQ(pt::backend::cuda.stream, nullptr);
}

TEST(CudaBackend, DeviceCountIsAValueOrADeviceUnavailableError) {
  auto const count = pt::backend::cuda_device_count();
  if (count) {
    EXPECT_GT(*count, 0);
  } else {
    EXPECT_EQ(count.error().code, pt::errc::device_unavailable) << count.error().message();
    EXPECT_NE(count.error().message().find("cudaGetDeviceCount"), std::string::npos);
  }
}

pt::result<int> failing_call() {
  PROXYTASK_CUDA_TRY(cudaErrorMemoryAllocation);
  return 1;
}

TEST(CudaBackend, CudaTryReturnsTheMappedErrorInsteadOfThrowing) {
  auto const r = failing_call();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, pt::errc::resource_exhausted);
  EXPECT_NE(r.error().message().find("cudaErrorMemoryAllocation"), std::string::npos);
}

TEST_F(CudaTest, AllocatesAndCopiesOnTheDevice) {
  int* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, sizeof(int)), cudaSuccess);
  int const value = 42;
  int back = 0;
  EXPECT_EQ(cudaMemcpy(device, &value, sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(&back, device, sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, 42);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
}

}  // namespace
