// A CUDA user's translation unit: the CUDA header compiles under nvcc and, without a GPU,
// reports the missing device as an error value.
#include <proxytask/core/backend.cuh>

#include <cstdio>

int main() {
  auto const devices = proxytask::backend::cuda_device_count();
  if (devices)
    std::printf("%d CUDA device(s)\n", *devices);
  else
    std::printf("no CUDA device: %s\n", devices.error().message().c_str());
  return 0;
}
