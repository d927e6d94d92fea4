// Host-side helpers for the kernel launchers: argument checks that name the function and the
// argument, and compile-time dispatch of runtime flags (internal to trainer/cuda).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace dyt::cuda::detail {

inline Status CheckShape(const char* fn, int64_t N, int D) {
  if (N < 0) return InvalidArgument(std::string(fn) + ": N=" + std::to_string(N) + " must be >= 0");
  if (D <= 0) return InvalidArgument(std::string(fn) + ": D=" + std::to_string(D) + " must be > 0");
  return Status::Ok();
}

inline Status CheckNotNull(const char* fn, const char* name, const void* p) {
  if (p == nullptr) return InvalidArgument(std::string(fn) + ": " + name + " is null");
  return Status::Ok();
}

inline Status CheckScratch(const char* fn, const void* scratch, size_t have, size_t need) {
  if (need > 0 && (scratch == nullptr || have < need)) {
    return InvalidArgument(std::string(fn) + ": scratch holds " + std::to_string(have) +
                           " bytes, needs " + std::to_string(need));
  }
  if ((reinterpret_cast<uintptr_t>(scratch) & 3u) != 0) {
    return InvalidArgument(std::string(fn) + ": scratch must be 4-byte aligned");
  }
  return Status::Ok();
}

// Calls f(std::true_type{}) or f(std::false_type{}): turns a runtime flag into a template
// argument (decltype(flag)::value inside f).
template <typename F>
void WithBool(bool b, F&& f) {
  if (b) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

}  // namespace dyt::cuda::detail
