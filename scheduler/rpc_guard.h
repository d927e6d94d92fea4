// RpcGuard / StreamGuard: how every dyt-scheduler RPC handler runs its body. An exception
// escaping the body becomes INTERNAL (the server never goes down on a request), the dyt::Status
// becomes the grpc::Status with the same code, and the call is counted in SchedulerMetrics
// (method, code) when metrics are on; unary calls are timed too.
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

// The body's Status as a grpc::Status; an escaping exception as INTERNAL.
template <typename Body>
grpc::Status RunGuarded(const char* method, Body&& body) {
  try {
    return ToGrpcStatus(std::forward<Body>(body)());
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": " + e.what());
  } catch (...) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": unknown exception");
  }
}

// A unary call: counted and timed (dyt_scheduler_rpcs_total, dyt_scheduler_rpc_duration_seconds).
template <typename Body>
grpc::Status RpcGuard(SchedulerMetrics* metrics, const char* method, Body&& body) {
  auto start = std::chrono::steady_clock::now();
  grpc::Status result = RunGuarded(method, std::forward<Body>(body));
  if (metrics != nullptr) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics->Rpc(method, GrpcCodeName(result.error_code()), seconds);
  }
  return result;
}

// A stream (WatchJob, GetJobLogs, DownloadCheckpoint, a worker's Connect): counted apart when
// it ends (dyt_scheduler_streams_total), not timed: its length is the client's (or the file's),
// and long streams ending CANCELLED when the client left made the unary latency and error
// panels lie.
template <typename Body>
grpc::Status StreamGuard(SchedulerMetrics* metrics, const char* method, Body&& body) {
  grpc::Status result = RunGuarded(method, std::forward<Body>(body));
  if (metrics != nullptr) metrics->StreamEnded(method, GrpcCodeName(result.error_code()));
  return result;
}

}  // namespace dyt
