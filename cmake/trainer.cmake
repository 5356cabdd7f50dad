# proxytask::trainer (proxytask_trainer): the reference trainer's host side (DESIGN.md
# "Reference trainer"): the Fashion-MNIST loader (zlib, for the gzip-compressed IDX files of
# Debian's dataset-fashion-mnist), the search space and the training math. Included from the
# root CMakeLists.txt. The target exists only when its dependencies are found, so that the rest
# of the project still configures without them; PROXYTASK_HAS_TRAINER says whether it does.
# Debian 12 packages: zlib1g-dev, libopenblas-dev (data files: dataset-fashion-mnist, found at run
# time).
#
# BLAS: OpenBLAS, found explicitly in Debian's openblas-pthread directories. Not find_package(BLAS)
# and not the generic libblas.so / cblas.h: on Debian those are alternatives that may point to
# the reference BLAS (libblas3), which is many times slower. The pthread variant's thread count is
# set at run time (trainer::set_blas_threads; 1 per trial when trials run side by side).

set(PROXYTASK_HAS_TRAINER OFF)
find_package(ZLIB)
set(proxytask_openblas_arch "${CMAKE_LIBRARY_ARCHITECTURE}")
if(NOT proxytask_openblas_arch)
  set(proxytask_openblas_arch "x86_64-linux-gnu")
endif()
find_path(PROXYTASK_OPENBLAS_INCLUDE_DIR cblas.h
  PATHS "/usr/include/${proxytask_openblas_arch}/openblas-pthread" NO_DEFAULT_PATH
  DOC "The directory of OpenBLAS's cblas.h (Debian: libopenblas-pthread-dev)")
find_library(PROXYTASK_OPENBLAS_LIBRARY openblas
  PATHS "/usr/lib/${proxytask_openblas_arch}/openblas-pthread" NO_DEFAULT_PATH
  DOC "OpenBLAS (Debian: libopenblas-pthread-dev), never the reference libblas")
if(ZLIB_FOUND AND PROXYTASK_OPENBLAS_INCLUDE_DIR AND PROXYTASK_OPENBLAS_LIBRARY)
  add_library(proxytask_trainer INTERFACE)
  add_library(proxytask::trainer ALIAS proxytask_trainer)
  set_target_properties(proxytask_trainer PROPERTIES EXPORT_NAME trainer)
  target_link_libraries(proxytask_trainer INTERFACE proxytask::proxytask ZLIB::ZLIB)
  target_include_directories(proxytask_trainer SYSTEM INTERFACE "${PROXYTASK_OPENBLAS_INCLUDE_DIR}")
  target_link_libraries(proxytask_trainer INTERFACE "${PROXYTASK_OPENBLAS_LIBRARY}")
  set(PROXYTASK_HAS_TRAINER ON)
else()
  message(STATUS "proxytask: reference trainer OFF (needs zlib1g-dev and libopenblas-dev; "
                 "zlib: ${ZLIB_FOUND}, OpenBLAS: ${PROXYTASK_OPENBLAS_LIBRARY})")
endif()
message(STATUS "proxytask: reference trainer ${PROXYTASK_HAS_TRAINER}")

# proxytask::trainer_cuda (proxytask_trainer_cuda): the reference trainer's CUDA back-end
# (cuda/proxytask/trainer/mlp.cuh: cuBLAS + fused kernels), for nvcc translation units. Only
# where nvcc was found (PROXYTASK_HAS_CUDA) and zlib (the Fashion-MNIST loader). OpenBLAS is
# optional here: a GPU machine may lack it (the device check runs on Ubuntu 24.04 without
# libopenblas-dev). Without it, PROXYTASK_TRAINER_NO_BLAS makes the CPU back-end's gemm portable
# loops (cpu_backend.hpp): slow, but enough for the GPU tests' CPU reference and for
# `--device=cpu` on small runs. PROXYTASK_HAS_TRAINER_CUDA says whether the target exists.
set(PROXYTASK_HAS_TRAINER_CUDA OFF)
if(PROXYTASK_HAS_CUDA AND ZLIB_FOUND)
  add_library(proxytask_trainer_cuda INTERFACE)
  add_library(proxytask::trainer_cuda ALIAS proxytask_trainer_cuda)
  set_target_properties(proxytask_trainer_cuda PROPERTIES EXPORT_NAME trainer_cuda)
  target_link_libraries(proxytask_trainer_cuda INTERFACE proxytask::cuda CUDA::cublas ZLIB::ZLIB)
  if(PROXYTASK_OPENBLAS_INCLUDE_DIR AND PROXYTASK_OPENBLAS_LIBRARY)
    target_include_directories(proxytask_trainer_cuda SYSTEM INTERFACE
                               "${PROXYTASK_OPENBLAS_INCLUDE_DIR}")
    target_link_libraries(proxytask_trainer_cuda INTERFACE "${PROXYTASK_OPENBLAS_LIBRARY}")
    set(proxytask_trainer_cuda_blas "OpenBLAS")
  else()
    target_compile_definitions(proxytask_trainer_cuda INTERFACE PROXYTASK_TRAINER_NO_BLAS=1)
    set(proxytask_trainer_cuda_blas "no BLAS: portable loops for the CPU back-end")
  endif()
  set(PROXYTASK_HAS_TRAINER_CUDA ON)
  message(STATUS "proxytask: reference trainer CUDA back-end ON (${proxytask_trainer_cuda_blas})")
else()
  message(STATUS "proxytask: reference trainer CUDA back-end OFF (needs nvcc and zlib1g-dev)")
endif()
