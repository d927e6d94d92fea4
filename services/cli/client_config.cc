#include "services/cli/client_config.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/grpc_credentials.h"

namespace dyt::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string At(const std::string& path, const YAML::Mark& mark) {
  return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// `named_by`: the variable that named the file ("DYT_CONFIG"), or "" for the default path.
Status ReadConfigFile(const std::string& path, ClientConfig& config, const std::string& named_by) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    const int err = errno;
    return NotFound(path + ": cannot read the dytctl config file" +
                    (named_by.empty() ? "" : " that " + named_by + " names") + " (" +
                    std::strerror(err) + ")");
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(At(path, e.mark) + ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument(path + ": must be a map (server: HOST:PORT)");
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const std::string where = At(path, kv.first.Mark());
    if (key == "server") {
      if (!kv.second.IsScalar()) return InvalidArgument(where + ": server: must be HOST:PORT");
      if (std::string rule = ServerAddressRule(kv.second.Scalar()); !rule.empty()) {
        return InvalidArgument(where + ": server: " + rule);
      }
      config.server = kv.second.Scalar();
      config.server_source = path;
    } else if (key == "connect_timeout_s") {
      double v = 0;
      try {
        v = kv.second.as<double>();
      } catch (const YAML::Exception&) {
        v = -1;
      }
      if (!(v > 0 && v <= 600)) {
        return InvalidArgument(where + ": connect_timeout_s: must be a number in (0, 600]");
      }
      config.connect_timeout_s = v;
    } else if (key == "ca_file" || key == "token") {
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
        return InvalidArgument(where + ": " + key + ": must be a non-empty string");
      }
      if (key == "token") {
        config.bearer_token = kv.second.Scalar();
      } else {
        // Relative to the config file, as kubectl reads a kubeconfig's paths: the same file
        // means the same CA from any working directory.
        std::filesystem::path ca(kv.second.Scalar());
        if (ca.is_relative()) ca = std::filesystem::absolute(path).parent_path() / ca;
        config.tls_ca_file = ca.lexically_normal().string();
        config.ca_file_source = "ca_file in " + path;
      }
    } else {
      return InvalidArgument(where + ": " + key +
                             ": unknown key (known: server, connect_timeout_s, ca_file, token)");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string ServerAddressRule(const std::string& address) {
  const std::string got = " (got '" + address + "')";
  if (address.empty()) return "must not be empty";
  for (const char* scheme : {"unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:", "vsock:"}) {
    if (address.rfind(scheme, 0) == 0) return "";
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return "must be HOST:PORT" + got;
  const std::string host = address.substr(0, colon);
  if (host.find(':') != std::string::npos && (host.front() != '[' || host.back() != ']')) {
    return "must be HOST:PORT, an IPv6 host in brackets ([::1]:50051)" + got;
  }
  for (char c : host) {
    if (c <= ' ' || c == '/' || c == '\x7f') return "must be HOST:PORT" + got;
  }
  const std::string port = address.substr(colon + 1);
  int value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535) {
    return "must be HOST:PORT with a port 1..65535" + got;
  }
  return "";
}

ClientConfigSources SourcesFromEnvironment(const std::string& flag_server) {
  ClientConfigSources s;
  s.flag_server = flag_server;
  s.env_server = Env("DYT_SERVER");
  s.env_config = Env("DYT_CONFIG");
  s.home = Env("HOME");
  s.env_token = Env("DYT_TOKEN");
  s.env_ca_file = Env("DYT_CA_FILE");
  return s;
}

std::string ConfigFilePath(const ClientConfigSources& sources) {
  if (!sources.env_config.empty()) return sources.env_config;
  if (sources.home.empty()) return "";
  return sources.home + "/.config/dyt/config.yaml";
}

StatusOr<ClientConfig> ResolveClientConfig(const ClientConfigSources& sources) {
  ClientConfig config;
  if (!sources.env_config.empty()) {
    DYT_RETURN_IF_ERROR(ReadConfigFile(sources.env_config, config, "DYT_CONFIG"));
    config.config_path = sources.env_config;
  } else if (!sources.home.empty()) {
    std::string path = sources.home + "/.config/dyt/config.yaml";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      DYT_RETURN_IF_ERROR(ReadConfigFile(path, config, ""));
      config.config_path = path;
    }
  }
  if (!config.bearer_token.empty() && !config.config_path.empty()) {
    // A token others can read is a token others can use (ssh refuses such keys; we warn).
    struct stat st {};
    if (::stat(config.config_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof(mode), "%04o", unsigned(st.st_mode & 07777));
      config.warnings.push_back(config.config_path + " holds a token and has mode " + mode +
                                ": other users may read it (chmod 600 " + config.config_path + ")");
    }
  }
  if (!sources.env_token.empty()) config.bearer_token = sources.env_token;
  if (!sources.env_ca_file.empty()) {
    config.tls_ca_file = std::filesystem::absolute(sources.env_ca_file).string();
    config.ca_file_source = "DYT_CA_FILE";
  }
  if (!config.tls_ca_file.empty()) {
    DYT_RETURN_IF_ERROR(ReadCaFile(config.tls_ca_file, config.ca_file_source).status());
  }
  if (!sources.env_server.empty()) {
    if (std::string rule = ServerAddressRule(sources.env_server); !rule.empty()) {
      return InvalidArgument("DYT_SERVER: " + rule);
    }
    config.server = sources.env_server;
    config.server_source = "DYT_SERVER";
  }
  if (!sources.flag_server.empty()) {
    config.server = sources.flag_server;
    config.server_source = "--server";
  }
  return config;
}

std::shared_ptr<grpc::Channel> MakeChannel(const ClientConfig& config) {
  grpc::ChannelArguments args;
  // Reconnect quickly after a scheduler restart instead of backing off for up to 2 minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetMaxReceiveMessageSize(64 << 20);
  std::string ca_pem;
  if (!config.tls_ca_file.empty()) {
    // An unreadable CA file leaves TLS with no roots: every handshake fails, never plaintext.
    auto pem = ReadCaFile(config.tls_ca_file, config.ca_file_source);
    ca_pem = pem.ok() ? *pem : std::string("unreadable");
  }
  return grpc::CreateCustomChannel(config.server, ClientCredentials(ca_pem, config.bearer_token),
                                   args);
}

}  // namespace dyt::cli
