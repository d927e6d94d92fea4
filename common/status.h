// Status and StatusOr: how errors cross module lines in dyt.
//
// We keep our own small type instead of absl::Status because the trainer must build with no
// service dependencies (a GPU machine may have only CUDA and NCCL), and abseil arrives only
// with gRPC. The codes mirror gRPC's so services can map them one to one.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace dyt {

enum class StatusCode {
  kOk = 0,
  kCancelled = 1,
  kUnknown = 2,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kAlreadyExists = 6,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kAborted = 10,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kDataLoss = 15,
  kUnauthenticated = 16,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "INVALID_ARGUMENT: model.dim: must be divisible by model.n_heads".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(const std::string& context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string msg) {
  return Status(StatusCode::kInvalidArgument, std::move(msg));
}
inline Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
inline Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }
inline Status DataLoss(std::string msg) { return Status(StatusCode::kDataLoss, std::move(msg)); }
inline Status FailedPrecondition(std::string msg) {
  return Status(StatusCode::kFailedPrecondition, std::move(msg));
}
inline Status Unavailable(std::string msg) {
  return Status(StatusCode::kUnavailable, std::move(msg));
}
inline Status PermissionDenied(std::string msg) {
  return Status(StatusCode::kPermissionDenied, std::move(msg));
}
inline Status DeadlineExceeded(std::string msg) {
  return Status(StatusCode::kDeadlineExceeded, std::move(msg));
}
// An I/O failure: "<what> <path>: <strerror(err)>".
Status IoError(const std::string& what, const std::string& path, int err);

// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT
  StatusOr(T value) : value_(std::move(value)) {}                                  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace dyt

// Returns early from the enclosing function when `expr` is not OK.
#define DYT_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::dyt::Status dyt_status_ = (expr);        \
    if (!dyt_status_.ok()) return dyt_status_; \
  } while (0)

#define DYT_CONCAT_INNER_(a, b) a##b
#define DYT_CONCAT_(a, b) DYT_CONCAT_INNER_(a, b)
// DYT_ASSIGN_OR_RETURN(auto x, MakeX()); declares x from the value or returns the Status.
#define DYT_ASSIGN_OR_RETURN(lhs, expr) \
  DYT_ASSIGN_OR_RETURN_IMPL_(DYT_CONCAT_(dyt_statusor_, __LINE__), lhs, expr)
#define DYT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()
