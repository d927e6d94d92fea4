// RpcGuard: how every dyt-scheduler RPC handler runs its body. An exception escaping the body
// becomes INTERNAL (the server never goes down on a request), the dyt::Status becomes the
// grpc::Status with the same code, and the call is counted and timed in SchedulerMetrics
// (method, code) when metrics are on.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "common/status.h"
#include "scheduler/scheduler_metrics.h"

namespace dyt {

// An error message goes back in a response header, which clients refuse beyond 8 KiB: one that
// quotes a huge request field (a 20,000-character file name) is cut, at a UTF-8 boundary.
inline constexpr size_t kMaxErrorMessageBytes = 2048;

// The grpc::Status with the same code and message (cut to kMaxErrorMessageBytes).
inline grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message = status.message();
  if (message.size() > kMaxErrorMessageBytes) {
    size_t cut = kMaxErrorMessageBytes;
    while (cut > 0 && (static_cast<unsigned char>(message[cut]) & 0xC0) == 0x80) --cut;
    message = message.substr(0, cut) + "... (" + std::to_string(message.size() - cut) +
              " more bytes of this message cut)";
  }
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(status.code())), message);
}

// "OK", "NOT_FOUND", ...: the code's canonical name, for metric labels.
const char* GrpcCodeName(grpc::StatusCode code);

template <typename Body>
grpc::Status RpcGuard(SchedulerMetrics* metrics, const char* method, Body&& body) {
  auto start = std::chrono::steady_clock::now();
  grpc::Status result;
  try {
    result = ToGrpcStatus(std::forward<Body>(body)());
  } catch (const std::exception& e) {
    result = grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": " + e.what());
  } catch (...) {
    result = grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": unknown exception");
  }
  if (metrics != nullptr) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics->Rpc(method, GrpcCodeName(result.error_code()), seconds);
  }
  return result;
}

}  // namespace dyt
