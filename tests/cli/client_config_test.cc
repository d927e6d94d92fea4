// Where dytctl finds the scheduler: --server over DYT_SERVER over the config file over the
// default; config file errors name file:line.
#include "services/cli/client_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/common/temp_dir.h"

namespace dyt::cli {
namespace {

using ::dyt::testing::TempDir;

void Write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

TEST(ClientConfigTest, TlsFileAndTokenFromTheFileOrTheEnvironment) {
  TempDir dir;
  Write(dir.Join("ca.crt"), "-----BEGIN CERTIFICATE-----\n");
  ClientConfigSources s;
  s.env_config = dir.Join("config.yaml");
  Write(s.env_config, "ca_file: " + dir.Join("ca.crt") + "\ntoken: dyt_file\n");
  auto c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->tls_ca_file, dir.Join("ca.crt"));
  EXPECT_EQ(c->bearer_token, "dyt_file");
  EXPECT_EQ(c->config_path, s.env_config);

  s.env_token = "dyt_env";
  c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->bearer_token, "dyt_env");

  // A CA file that cannot be read is an error, never a silent fallback to plaintext.
  s.env_ca_file = dir.Join("missing.crt");
  c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "DYT_CA_FILE " + dir.Join("missing.crt") + ": cannot read");
  EXPECT_EQ(c.status().message().find("dyt_env"), std::string::npos);

  // Nor is one with no certificate in it (it used to surface as "cannot reach ...").
  Write(dir.Join("junk.pem"), "not a certificate\n");
  s.env_ca_file = dir.Join("junk.pem");
  c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message().rfind(
                "DYT_CA_FILE " + dir.Join("junk.pem") + ": no PEM certificate in it", 0),
            0u)
      << c.status().message();
}

// A relative ca_file in a config file is the config file's neighbour, from any working directory
// (dytctl login once saved DYT_CA_FILE=certs/ca.crt as it was, which broke after a cd); one from
// DYT_CA_FILE is the working directory's. Errors say where the path came from.
TEST(ClientConfigTest, RelativeCaFilesAndWhereTheyCameFrom) {
  TempDir dir;
  Write(dir.Join("conf/certs/ca.crt"), "-----BEGIN CERTIFICATE-----\n");
  ClientConfigSources s;
  s.env_config = dir.Join("conf/config.yaml");
  Write(s.env_config, "ca_file: certs/ca.crt\n");
  auto c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->tls_ca_file, dir.Join("conf/certs/ca.crt"));
  Write(s.env_config, "ca_file: certs/missing.crt\n");
  c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "ca_file in " + s.env_config + " " +
                                      dir.Join("conf/certs/missing.crt") + ": cannot read");
  s.env_ca_file = "certs/ca.crt";  // relative to the working directory
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.Join("conf"));
  c = ResolveClientConfig(s);
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->tls_ca_file, dir.Join("conf/certs/ca.crt"));
}

// A config file holding a token that other users can read gets a warning (ssh refuses such
// keys); mode 0600, what dytctl login writes, gets none.
TEST(ClientConfigTest, AConfigFileWithATokenOthersCanReadIsWarnedAbout) {
  TempDir dir;
  ClientConfigSources s;
  s.env_config = dir.Join("config.yaml");
  Write(s.env_config, "token: dyt_secret\n");
  std::filesystem::permissions(s.env_config, std::filesystem::perms(0644));
  auto c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_EQ(c->warnings[0], s.env_config +
                                " holds a token and has mode 0644: other users may "
                                "read it (chmod 600 " +
                                s.env_config + ")");
  EXPECT_EQ(c->warnings[0].find("dyt_secret"), std::string::npos);
  std::filesystem::permissions(s.env_config, std::filesystem::perms(0600));
  c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->warnings.empty());
  Write(s.env_config, "server: a:1\n");  // no token: nothing to protect
  std::filesystem::permissions(s.env_config, std::filesystem::perms(0644));
  c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->warnings.empty());
}

TEST(ClientConfigTest, Precedence) {
  TempDir home;
  ClientConfigSources s;
  s.home = home.path();
  auto c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server, "127.0.0.1:50051");
  EXPECT_EQ(c->server_source, "default");

  Write(home.Join(".config/dyt/config.yaml"), "server: from-file:1\nconnect_timeout_s: 2.5\n");
  c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->server, "from-file:1");
  EXPECT_DOUBLE_EQ(c->connect_timeout_s, 2.5);

  s.env_server = "from-env:2";
  c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server, "from-env:2");
  EXPECT_EQ(c->server_source, "DYT_SERVER");

  s.flag_server = "from-flag:3";
  c = ResolveClientConfig(s);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server, "from-flag:3");

  // $DYT_CONFIG replaces the file in $HOME.
  ClientConfigSources t;
  t.home = home.path();
  t.env_config = home.Join("other.yaml");
  Write(t.env_config, "server: other:4\n");
  c = ResolveClientConfig(t);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server, "other:4");
  EXPECT_EQ(c->server_source, t.env_config);
}

TEST(ClientConfigTest, ErrorsNameTheFileAndLine) {
  TempDir dir;
  ClientConfigSources s;
  s.env_config = dir.Join("missing.yaml");
  auto c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), s.env_config +
                                      ": cannot read the dytctl config file that DYT_CONFIG "
                                      "names (No such file or directory)");

  s.env_config = dir.Join("bad.yaml");
  Write(s.env_config, "server: a:1\nsrever: b:2\n");
  c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            s.env_config +
                ":2:1: srever: unknown key (known: server, connect_timeout_s, ca_file, token)");

  Write(s.env_config, "# the scheduler\nserver: sched.example.org\n");
  c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            s.env_config + ":2:1: server: must be HOST:PORT (got 'sched.example.org')");

  Write(s.env_config, "connect_timeout_s: never\n");
  c = ResolveClientConfig(s);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            s.env_config + ":1:1: connect_timeout_s: must be a number in (0, 600]");
}

TEST(ClientConfigTest, ServerAddressRule) {
  for (const char* good : {"127.0.0.1:50051", "sched.example.org:1", "[::1]:65535",
                           "unix:/run/dyt.sock", "dns:///sched:50051", "ipv4:10.0.0.1:50051"}) {
    EXPECT_EQ(ServerAddressRule(good), "") << good;
  }
  EXPECT_EQ(ServerAddressRule(""), "must not be empty");
  EXPECT_EQ(ServerAddressRule("sched"), "must be HOST:PORT (got 'sched')");
  EXPECT_EQ(ServerAddressRule(":50051"), "must be HOST:PORT (got ':50051')");
  EXPECT_EQ(ServerAddressRule("a b:1"), "must be HOST:PORT (got 'a b:1')");
  EXPECT_EQ(ServerAddressRule("sched:0"), "must be HOST:PORT with a port 1..65535 (got 'sched:0')");
  EXPECT_EQ(ServerAddressRule("sched:"), "must be HOST:PORT with a port 1..65535 (got 'sched:')");
  EXPECT_EQ(ServerAddressRule("sched:http"),
            "must be HOST:PORT with a port 1..65535 (got 'sched:http')");
  EXPECT_EQ(ServerAddressRule("fe80::1:50051"),
            "must be HOST:PORT, an IPv6 host in brackets ([::1]:50051) (got 'fe80::1:50051')");
}

}  // namespace
}  // namespace dyt::cli
