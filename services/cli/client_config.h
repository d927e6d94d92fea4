// Where dytctl finds the scheduler and how it talks to it.
//
// The server address comes from, first match wins: the --server flag, the DYT_SERVER
// environment variable, the `server:` key of the config file, then 127.0.0.1:50051. The config
// file is $DYT_CONFIG when set (it must then exist), else ~/.config/dyt/config.yaml when that
// exists:
//
//   server: scheduler.example.org:50051
//   connect_timeout_s: 5
//
// Unknown keys in the config file are rejected with file:line. TLS files and a bearer token
// have their place in ClientConfig already; the security work adds the keys that fill them and
// the credentials MakeChannel builds from them.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace dyt::cli {

inline constexpr char kDefaultServer[] = "127.0.0.1:50051";

struct ClientConfig {
  std::string server = kDefaultServer;
  // What chose `server`, for error messages: "--server", "DYT_SERVER", a config path, "default".
  std::string server_source = "default";
  // How long dytctl waits for the first connection before saying the server is unreachable.
  double connect_timeout_s = 5.0;
  // How long one unary call may take once connected.
  double rpc_timeout_s = 30.0;

  // Transport security and authentication (not used yet; the security work fills these in).
  std::string tls_ca_file;    // PEM roots to verify the server with; empty: plaintext
  std::string tls_cert_file;  // client certificate (mutual TLS)
  std::string tls_key_file;
  std::string bearer_token;  // sent as "authorization: Bearer <token>" metadata
};

// The inputs of ResolveClientConfig, so tests need not touch the process environment.
struct ClientConfigSources {
  std::string flag_server;  // --server; empty: not given
  std::string env_server;   // $DYT_SERVER
  std::string env_config;   // $DYT_CONFIG
  std::string home;         // $HOME
};

// The sources from this process's environment plus the --server flag.
ClientConfigSources SourcesFromEnvironment(const std::string& flag_server);

// Applies the precedence above. Errors: an unreadable $DYT_CONFIG, bad YAML (file:line:col),
// an unknown key or a bad value (file:line).
StatusOr<ClientConfig> ResolveClientConfig(const ClientConfigSources& sources);

// The gRPC channel to config.server (plaintext today; TLS goes here).
std::shared_ptr<grpc::Channel> MakeChannel(const ClientConfig& config);

}  // namespace dyt::cli
