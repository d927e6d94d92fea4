// dist_tcp_kv_tool: the TCP rendezvous store from another process, for tcp_kv_store_test.cc.
//
//   dist_tcp_kv_tool serve BIND PORT_FILE
//       Serves a TcpKvStoreServer on BIND with an ephemeral port, writes the port to PORT_FILE
//       (complete when it appears: written to a temp name, then renamed), and runs until
//       SIGTERM or SIGINT. Exit 0.
//   dist_tcp_kv_tool set HOST:PORT KEY VALUE CONNECT_MS
//       Exit 0 when the SET succeeded, else 1 (the status on stderr).
//   dist_tcp_kv_tool get HOST:PORT KEY TIMEOUT_MS CONNECT_MS OUT_FILE
//       Writes "OK\n<value>" or "<STATUS CODE>\n<message>" to OUT_FILE. Exit 0 when OK, else 1.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "trainer/dist/tcp_kv_store.h"

namespace {

using dyt::dist::HostPort;
using dyt::dist::TcpKvStore;
using dyt::dist::TcpKvStoreServer;
using std::chrono::milliseconds;

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

int Serve(const std::string& bind, const std::string& port_file) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  auto server = TcpKvStoreServer::Start(bind, 0);
  if (!server.ok()) {
    std::fprintf(stderr, "serve: %s\n", server.status().ToString().c_str());
    return 1;
  }
  WriteFile(port_file + ".tmp", std::to_string((*server)->port()));
  std::filesystem::rename(port_file + ".tmp", port_file);
  while (!g_stop.load()) std::this_thread::sleep_for(milliseconds(10));
  (*server)->Stop();
  return 0;
}

std::unique_ptr<TcpKvStore> ConnectOrDie(const std::string& address, const std::string& ms) {
  auto server = dyt::dist::ParseHostPort(address);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    std::exit(64);
  }
  auto store = TcpKvStore::Connect(*server, milliseconds(std::stoll(ms)));
  if (!store.ok()) {
    std::fprintf(stderr, "connect: %s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*store);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve" && argc == 4) return Serve(argv[2], argv[3]);
  if (mode == "set" && argc == 6) {
    auto store = ConnectOrDie(argv[2], argv[5]);
    const dyt::Status st = store->Set(argv[3], argv[4]);
    if (!st.ok()) std::fprintf(stderr, "set: %s\n", st.ToString().c_str());
    return st.ok() ? 0 : 1;
  }
  if (mode == "get" && argc == 7) {
    auto store = ConnectOrDie(argv[2], argv[5]);
    auto value = store->Get(argv[3], milliseconds(std::stoll(argv[4])));
    if (value.ok()) {
      WriteFile(argv[6], "OK\n" + *value);
      return 0;
    }
    WriteFile(argv[6], std::string(dyt::StatusCodeName(value.status().code())) + "\n" +
                           value.status().message());
    return 1;
  }
  std::fprintf(stderr,
               "usage: dist_tcp_kv_tool serve BIND PORT_FILE | set HOST:PORT KEY VALUE CONNECT_MS"
               " | get HOST:PORT KEY TIMEOUT_MS CONNECT_MS OUT_FILE\n");
  return 64;
}
