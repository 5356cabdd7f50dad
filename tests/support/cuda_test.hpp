#pragma once
// Fixture for GPU tests: skips cleanly when there is no CUDA device or driver. No CUDA call runs
// at static-initialisation time (gtest_discover_tests runs the binary on GPU-less machines).

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

class CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
      (void)cudaGetLastError();
      GTEST_SKIP() << "no CUDA device";
    }
  }
};
