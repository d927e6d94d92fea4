#include "services/cli/client_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>

namespace dyt::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::string At(const std::string& path, const YAML::Mark& mark) {
  return path + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

Status ReadConfigFile(const std::string& path, ClientConfig& config) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return NotFound(path + ": cannot read the dytctl config file");
  } catch (const YAML::ParserException& e) {
    return InvalidArgument(At(path, e.mark) + ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) return InvalidArgument(path + ": must be a map (server: HOST:PORT)");
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const std::string where = At(path, kv.first.Mark());
    if (key == "server") {
      if (!kv.second.IsScalar() || kv.second.Scalar().empty()) {
        return InvalidArgument(where + ": server: must be HOST:PORT");
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
    } else {
      return InvalidArgument(where + ": " + key +
                             ": unknown key (known: server, connect_timeout_s)");
    }
  }
  return Status::Ok();
}

}  // namespace

ClientConfigSources SourcesFromEnvironment(const std::string& flag_server) {
  ClientConfigSources s;
  s.flag_server = flag_server;
  s.env_server = Env("DYT_SERVER");
  s.env_config = Env("DYT_CONFIG");
  s.home = Env("HOME");
  return s;
}

StatusOr<ClientConfig> ResolveClientConfig(const ClientConfigSources& sources) {
  ClientConfig config;
  if (!sources.env_config.empty()) {
    DYT_RETURN_IF_ERROR(ReadConfigFile(sources.env_config, config));
  } else if (!sources.home.empty()) {
    std::string path = sources.home + "/.config/dyt/config.yaml";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) DYT_RETURN_IF_ERROR(ReadConfigFile(path, config));
  }
  if (!sources.env_server.empty()) {
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
  return grpc::CreateCustomChannel(config.server, grpc::InsecureChannelCredentials(), args);
}

}  // namespace dyt::cli
