// proxytask-reference-trainer-cuda: the reference trainer with the GPU back-end as well as the
// CPU one (examples/reference_trainer.cpp documents the program; the two builds share
// proxytask/trainer/reference_program.hpp). --device=cuda trains on CUDA device 0 with cuBLAS and
// the kernels of cuda/proxytask/trainer/mlp.cuh; --device=cpu on the CPU back-end (OpenBLAS, or
// portable loops where the build found no OpenBLAS); --device=auto (the default) on the GPU when
// there is one.
// --device=cuda without a usable device exits 1, naming CUDA's error.

#include <proxytask/core/backend.cuh>
#include <proxytask/trainer/mlp.cuh>

#include <proxytask/trainer/reference_program.hpp>

#include <cuda_runtime_api.h>

#include <exception>
#include <iostream>
#include <string>

namespace rt = proxytask::trainer::reference;

namespace {

/// "CUDA device 0 (NVIDIA H100 80GB HBM3)", how the GPU back-end is described in the output.
std::string cuda_description() {
  int device = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return "CUDA device";
  }
  return "CUDA device " + std::to_string(device) + " (" + prop.name + ")";
}

int dispatch(rt::protocol::launch_arguments const& args, rt::trainer_options const& o,
             rt::program_io& io) {
  auto const devices = rt::pt::backend::cuda_device_count();
  bool const use_cuda = o.device == rt::device_choice::cuda ||
                        (o.device == rt::device_choice::automatic && devices.has_value());
  if (!use_cuda) return rt::train_on_cpu(args, o, io);
  if (!devices) return rt::fail_with(io, devices.error());
  return rt::train(rt::pt::backend::cuda, args, o, cuda_description(), io);
}

}  // namespace

int main(int argc, char** argv) {
  rt::program_io io{std::cout, std::cerr};
  try {
    return rt::run(argc, argv, "proxytask-reference-trainer-cuda", io, dispatch);
  } catch (std::exception const& e) {
    std::cerr << "reference-trainer: " << e.what() << '\n';
    return rt::exit_error;
  }
}
