// AuthServiceImpl: the gRPC AuthService of dyt-scheduler (proto/dyt/v1/auth_service.proto):
// creating, listing and revoking bearer tokens (admin only) and WhoAmI (any valid token).
// Tokens are returned once by CreateToken and never logged.
#pragma once

#include <grpcpp/grpcpp.h>

#include "dyt/v1/auth_service.grpc.pb.h"
#include "scheduler/auth.h"
#include "scheduler/scheduler_metrics.h"

namespace dyt {

class AuthServiceImpl final : public v1::AuthService::Service {
 public:
  // `auth` (and `metrics`) must outlive the service.
  explicit AuthServiceImpl(const Authenticator* auth, SchedulerMetrics* metrics = nullptr)
      : auth_(auth), metrics_(metrics) {}

  grpc::Status CreateToken(grpc::ServerContext* context, const v1::CreateTokenRequest* request,
                           v1::CreateTokenResponse* response) override;
  grpc::Status ListTokens(grpc::ServerContext* context, const v1::ListTokensRequest* request,
                          v1::ListTokensResponse* response) override;
  grpc::Status RevokeToken(grpc::ServerContext* context, const v1::RevokeTokenRequest* request,
                           v1::TokenInfo* response) override;
  grpc::Status WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest* request,
                      v1::TokenInfo* response) override;

 private:
  const Authenticator* auth_;
  SchedulerMetrics* metrics_;
};

}  // namespace dyt
