// Client channel credentials for dyt's gRPC connections to dyt-scheduler (docs/security.md):
// TLS verified against a CA file, plus "authorization: Bearer <token>" on every call.
//
// Header-only: every user already links gRPC::grpc++. No global state.
#pragma once

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "common/status.h"

namespace dyt {

// The whole file; NOT_FOUND "<what> <path>: cannot read" when it cannot be read.
inline StatusOr<std::string> ReadSmallFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(what + " " + path + ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A CA file's PEM text: NOT_FOUND when unreadable, INVALID_ARGUMENT when it holds no PEM
// certificate (gRPC would only fail later, as "cannot reach" the server).
inline StatusOr<std::string> ReadCaFile(const std::string& path, const std::string& what) {
  DYT_ASSIGN_OR_RETURN(std::string pem, ReadSmallFile(path, what));
  if (pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgument(what + " " + path +
                           ": no PEM certificate in it (-----BEGIN CERTIFICATE-----); give the "
                           "cluster's ca.crt (scripts/dyt-certs.sh)");
  }
  return pem;
}

// A token file's token: its first line without surrounding whitespace. INVALID_ARGUMENT when
// empty. The token is never part of an error message.
inline StatusOr<std::string> ReadTokenFile(const std::string& path) {
  DYT_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path, "token file"));
  std::string token = text.substr(0, text.find('\n'));
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  while (!token.empty() && token.front() == ' ') token.erase(0, 1);
  if (token.empty()) return InvalidArgument("token file " + path + ": empty");
  return token;
}

// Plaintext when `ca_pem` is empty (a scheduler started with --insecure; the token is then not
// sent, gRPC never puts call credentials on a plaintext channel); else TLS verified with
// `ca_pem`, and the token as a bearer token on every call when it is not empty.
inline std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(const std::string& ca_pem,
                                                                   const std::string& token) {
  if (ca_pem.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  auto channel = grpc::SslCredentials(ssl);
  if (token.empty()) return channel;
  return grpc::CompositeChannelCredentials(channel, grpc::AccessTokenCredentials(token));
}

}  // namespace dyt
