// Where dytctl finds the scheduler and how it talks to it.
//
// The server address comes from, first match wins: the --server flag, the DYT_SERVER
// environment variable, the `server:` key of the config file, then 127.0.0.1:50051. The config
// file is $DYT_CONFIG when set (it must then exist), else ~/.config/dyt/config.yaml when that
// exists:
//
//   server: scheduler.example.org:50051
//   connect_timeout_s: 5
//   ca_file: /etc/dyt/certs/ca.crt   # TLS: verify the scheduler with this CA (docs/security.md)
//   token: dyt_...                    # bearer token (`dytctl login` writes it; file mode 0600)
//
// $DYT_CA_FILE and $DYT_TOKEN override ca_file and token. Without a CA file the connection is
// plaintext (only a scheduler started with --insecure answers). Unknown keys in the config
// file are rejected with file:line.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

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

  // Transport security and authentication.
  std::string tls_ca_file;    // PEM roots to verify the server with; empty: plaintext
  std::string tls_cert_file;  // client certificate (mutual TLS; unused: dyt uses tokens)
  std::string tls_key_file;
  std::string bearer_token;  // sent as "authorization: Bearer <token>" metadata over TLS
  // Where tls_ca_file came from, for messages: "ca_file in PATH", "DYT_CA_FILE", "--ca-file".
  std::string ca_file_source = "ca_file";
  // The config file that was read ("" : none); `dytctl login` writes here.
  std::string config_path;
  // Said on stderr before the command runs (a config file with a token that others can read).
  std::vector<std::string> warnings;
};

// The inputs of ResolveClientConfig, so tests need not touch the process environment.
struct ClientConfigSources {
  std::string flag_server;  // --server; empty: not given
  std::string env_server;   // $DYT_SERVER
  std::string env_config;   // $DYT_CONFIG
  std::string home;         // $HOME
  std::string env_token;    // $DYT_TOKEN
  std::string env_ca_file;  // $DYT_CA_FILE
};

// What is wrong with scheduler address `address`, or "" when nothing is: HOST:PORT (a name,
// an IPv4 address or a bracketed IPv6 one, and a port 1..65535), or a gRPC target with its
// scheme (unix:/path, dns:///host:port, ipv4:..., ipv6:...), passed on as it is.
std::string ServerAddressRule(const std::string& address);

// The config file dytctl reads and `dytctl login` writes: $DYT_CONFIG, else
// $HOME/.config/dyt/config.yaml.
std::string ConfigFilePath(const ClientConfigSources& sources);

// The sources from this process's environment plus the --server flag.
ClientConfigSources SourcesFromEnvironment(const std::string& flag_server);

// Applies the precedence above. Errors: an unreadable $DYT_CONFIG, bad YAML (file:line:col),
// an unknown key or a bad value (file:line), a bad $DYT_SERVER.
StatusOr<ClientConfig> ResolveClientConfig(const ClientConfigSources& sources);

// The gRPC channel to config.server: TLS verified with tls_ca_file and the bearer token on
// every call when tls_ca_file is set, plaintext otherwise.
std::shared_ptr<grpc::Channel> MakeChannel(const ClientConfig& config);

}  // namespace dyt::cli
