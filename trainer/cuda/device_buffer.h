// DeviceBuffer<T>: an owning, move-only handle on a cudaMalloc'd array (tests, benchmarks and
// the trainer's one-allocation parameter and activation blocks).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "common/status.h"
#include "trainer/cuda/cuda_status.h"

namespace dyt::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { Reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // `count` elements of T (uninitialised).
  static StatusOr<DeviceBuffer> Allocate(size_t count) {
    DeviceBuffer buf;
    if (count > 0) {
      void* p = nullptr;
      Status st =
          CudaStatus(cudaMalloc(&p, count * sizeof(T)),
                     ("cudaMalloc(" + std::to_string(count * sizeof(T)) + " bytes)").c_str());
      if (!st.ok()) return st;
      buf.ptr_ = static_cast<T*>(p);
      buf.size_ = count;
    }
    return buf;
  }

  void Reset() {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }

  T* get() const { return ptr_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dyt::cuda
