# Finds every third-party dependency. All come from Debian 12 packages that
# scripts/setup.sh installs; each has a CMake config or a pkg-config file.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS: we link the OpenMP build (Debian's libopenblas-openmp-dev) by its full path so BLAS
# and our own OpenMP loops share one thread pool; the default pthread build's threads and idle
# OpenMP workers would fight over the same cores. The full path puts its folder in the RPATH, so
# the loader picks it over the libopenblas.so.0 that Debian's alternatives point to.
set(DYT_OPENBLAS_OPENMP_DIR /usr/lib/x86_64-linux-gnu/openblas-openmp)
find_library(DYT_OPENBLAS_LIBRARY openblas PATHS ${DYT_OPENBLAS_OPENMP_DIR} NO_DEFAULT_PATH)
find_path(DYT_OPENBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
if(NOT DYT_OPENBLAS_LIBRARY OR NOT DYT_OPENBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "OpenBLAS (OpenMP build) not found: run scripts/setup.sh "
                      "(Debian package libopenblas-openmp-dev)")
endif()
add_library(dyt_openblas INTERFACE)
target_link_libraries(dyt_openblas INTERFACE ${DYT_OPENBLAS_LIBRARY})
target_include_directories(dyt_openblas SYSTEM INTERFACE ${DYT_OPENBLAS_INCLUDE_DIR})

find_package(yaml-cpp CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(GTest CONFIG REQUIRED)
find_package(benchmark CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_package(Gloo CONFIG REQUIRED)

if(NOT DYT_TRAINER_ONLY)
  find_package(Protobuf CONFIG)
  if(NOT Protobuf_FOUND)
    find_package(Protobuf REQUIRED)
  endif()
  find_package(gRPC CONFIG REQUIRED)
  find_package(RocksDB CONFIG REQUIRED)
  find_package(prometheus-cpp CONFIG REQUIRED)
endif()

# The outside reference for correctness tests: Debian's python3 with python3-torch.
find_program(DYT_REFERENCE_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
