#include "scheduler/auth_service.h"

#include <spdlog/spdlog.h>

#include "scheduler/rpc_guard.h"

namespace dyt {

grpc::Status AuthServiceImpl::CreateToken(grpc::ServerContext* context,
                                          const v1::CreateTokenRequest* request,
                                          v1::CreateTokenResponse* response) {
  return RpcGuard(metrics_, "CreateToken", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, auth_->Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kManageTokens));
    DYT_ASSIGN_OR_RETURN(*response, auth_->CreateToken(request->user(), request->role(),
                                                       request->expires_in_s(), caller.user));
    spdlog::info("token {} created for user {} with role {} by {}", response->info().id(),
                 request->user(), request->role(), CallerText(caller));
    return Status::Ok();
  });
}

grpc::Status AuthServiceImpl::ListTokens(grpc::ServerContext* context, const v1::ListTokensRequest*,
                                         v1::ListTokensResponse* response) {
  return RpcGuard(metrics_, "ListTokens", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, auth_->Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kManageTokens));
    DYT_ASSIGN_OR_RETURN(auto tokens, auth_->ListTokens());
    for (auto& t : tokens) *response->add_tokens() = std::move(t);
    return Status::Ok();
  });
}

grpc::Status AuthServiceImpl::RevokeToken(grpc::ServerContext* context,
                                          const v1::RevokeTokenRequest* request,
                                          v1::TokenInfo* response) {
  return RpcGuard(metrics_, "RevokeToken", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, auth_->Authenticate(*context));
    DYT_RETURN_IF_ERROR(auth_->Check(caller, Action::kManageTokens));
    DYT_ASSIGN_OR_RETURN(*response, auth_->RevokeToken(request->id()));
    spdlog::info("token {} of user {} revoked by {}", response->id(), response->user(),
                 CallerText(caller));
    return Status::Ok();
  });
}

grpc::Status AuthServiceImpl::WhoAmI(grpc::ServerContext* context, const v1::WhoAmIRequest*,
                                     v1::TokenInfo* response) {
  return RpcGuard(metrics_, "WhoAmI", [&]() -> Status {
    DYT_ASSIGN_OR_RETURN(Caller caller, auth_->Authenticate(*context));
    response->set_user(caller.user);
    response->set_role(RoleName(caller.role));
    response->set_id(caller.token_id);
    return Status::Ok();
  });
}

}  // namespace dyt
