# The CUDA backend builds when nvcc is found (CUDA 13 lives in /usr/local/cuda on our
# machines); otherwise the build says so in one line and goes on without it.
set(DYT_HAVE_CUDA OFF)
if(DYT_ENABLE_CUDA)
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${DYT_CUDA_ARCHITECTURES})
    enable_language(CUDA)
    # CMake 3.25 knows no C++20 flag for nvcc; the CUDA sources are C++17.
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit REQUIRED)
    # NCCL ships with CUDA 13 on our machines but has no CMake config: find it by hand.
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
    find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
    set(DYT_HAVE_CUDA ON)
  endif()
endif()
if(DYT_HAVE_CUDA)
  message(STATUS "dyt: CUDA backend: ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}, NCCL ${NCCL_LIBRARY})")
else()
  message(STATUS "dyt: CUDA backend: OFF (nvcc not found or DYT_ENABLE_CUDA=OFF)")
endif()
