// TcpKvStoreServer and TcpKvStore: set/get across threads and processes, waiting and timeouts,
// connecting before the server is up, and a server that survives malformed and hostile input
// (frames built here by hand from the protocol described in tcp_kv_store.h).
#include "trainer/dist/tcp_kv_store.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/dist/subprocess.h"

namespace dyt::dist {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using testing::ReadFile;
using testing::Spawn;
using testing::TempDir;
using testing::WaitFor;

int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
}

std::unique_ptr<TcpKvStoreServer> StartLoopbackServer(int port = 0) {
  auto server = TcpKvStoreServer::Start("127.0.0.1", port);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(*server) : nullptr;
}

std::unique_ptr<TcpKvStore> ConnectTo(int port, milliseconds timeout = milliseconds(2000)) {
  auto store = TcpKvStore::Connect(HostPort{"127.0.0.1", port}, timeout);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(*store) : nullptr;
}

// A loopback port nobody listens on (bound and released; another process could take it in
// between, which is unlikely enough for a test).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// ---- Raw frames, as the header of tcp_kv_store.h describes them -----------------------------

void PutU16(std::string* s, uint16_t v) {
  s->push_back(static_cast<char>(v >> 8));
  s->push_back(static_cast<char>(v));
}
void PutU32(std::string* s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>(v >> shift));
}

// A request frame with explicit header fields (so they can lie about the lengths).
std::string RawFrame(uint8_t op, uint16_t key_len, uint32_t body_len, const std::string& payload,
                     uint8_t version = 1) {
  std::string f = "DYKV";
  f.push_back(static_cast<char>(version));
  f.push_back(static_cast<char>(op));
  PutU16(&f, key_len);
  PutU32(&f, body_len);
  return f + payload;
}
std::string SetFrame(const std::string& key, const std::string& value) {
  return RawFrame(1, static_cast<uint16_t>(key.size()), static_cast<uint32_t>(value.size()),
                  key + value);
}
std::string GetFrame(const std::string& key, uint32_t timeout_ms) {
  std::string body;
  PutU32(&body, timeout_ms);
  return RawFrame(2, static_cast<uint16_t>(key.size()), 4, key + body);
}

class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConn() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads n bytes; false on EOF, error or 3 s without data.
  bool Read(size_t n, std::string* out) {
    out->clear();
    while (out->size() < n) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 3000) <= 0) return false;
      char buf[4096];
      const ssize_t got = ::recv(fd_, buf, std::min(sizeof(buf), n - out->size()), 0);
      if (got <= 0) return false;
      out->append(buf, static_cast<size_t>(got));
    }
    return true;
  }
  struct Answer {
    bool ok = false;  // a whole answer frame arrived
    int code = -1;
    std::string body;
  };
  Answer ReadAnswer() {
    Answer a;
    std::string h;
    if (!Read(12, &h) || h.compare(0, 5, std::string("DYKV\x01", 5)) != 0) return a;
    a.code = static_cast<uint8_t>(h[5]);
    const uint32_t len = (static_cast<uint32_t>(static_cast<uint8_t>(h[8])) << 24) |
                         (static_cast<uint32_t>(static_cast<uint8_t>(h[9])) << 16) |
                         (static_cast<uint32_t>(static_cast<uint8_t>(h[10])) << 8) |
                         static_cast<uint8_t>(h[11]);
    if (h[6] != 0 || h[7] != 0 || !Read(len, &a.body)) return a;
    a.ok = true;
    return a;
  }
  // True when the server closed the connection (EOF within 3 s).
  bool ClosedByPeer() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 3000) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

constexpr int kOk = 0;
constexpr int kInvalidArgument = 3;
constexpr int kDeadlineExceeded = 4;

// ---- Addresses ------------------------------------------------------------------------------

TEST(TcpAddressTest, TellsHostPortFromDirectories) {
  for (const char* tcp : {"127.0.0.1:29500", "node-7.cluster:1", "tcp://h:2", "[::1]:29500",
                          "tcp://[fe80::1]:3", "localhost:0", "tcp://not a host"}) {
    EXPECT_TRUE(IsTcpRendezvous(tcp)) << tcp;
  }
  for (const char* dir : {"/shared/rdzv", "rdzv", "./node0:29500", "/a/b:1", "host:", "host:x1",
                          ":29500", "a:b:1", ""}) {
    EXPECT_FALSE(IsTcpRendezvous(dir)) << dir;
  }
}

TEST(TcpAddressTest, ParsesAndPrintsHostPort) {
  auto a = ParseHostPort("tcp://10.0.0.1:29500");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "10.0.0.1");
  EXPECT_EQ(a->port, 29500);
  EXPECT_EQ(a->ToString(), "10.0.0.1:29500");
  auto v6 = ParseHostPort("[::1]:7");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:7");
  for (const char* bad : {"host:65536", "host:123456", "tcp://host", "tcp://h:1/x", "[::1:5",
                          "tcp://:5", "host:-1"}) {
    auto r = ParseHostPort(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
}

// ---- Set and Get ----------------------------------------------------------------------------

TEST(TcpKvStoreTest, SetThenGetInOneProcess) {
  auto server = StartLoopbackServer();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  auto store = ConnectTo(server->port());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Set("job1.a", "first").ok());
  ASSERT_TRUE(store->Set("job1.a", "second").ok());  // replaces
  const std::string binary("\0x\0\xff", 4);
  ASSERT_TRUE(store->Set("job1.bin", binary).ok());
  ASSERT_TRUE(store->Set("job1.empty", "").ok());
  const std::string big(kTcpKvMaxValueBytes, 'v');
  ASSERT_TRUE(store->Set("job1.big", big).ok());
  EXPECT_EQ(store->Get("job1.a", milliseconds(100)).value(), "second");
  EXPECT_EQ(store->Get("job1.bin", milliseconds(100)).value(), binary);
  EXPECT_EQ(store->Get("job1.empty", milliseconds(0)).value(), "");
  EXPECT_EQ(store->Get("job1.big", milliseconds(100)).value(), big);
  // A second client sees the same keys.
  auto other = ConnectTo(server->port());
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->Get("job1.a", milliseconds(100)).value(), "second");

  EXPECT_EQ(store->Set("job1.big", big + "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Set("bad key", "v").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Get(".hidden", milliseconds(10)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(server->stats().keys, 4u);
}

// "<prefix><n>", built by appending (GCC 12 warns falsely about "literal" + std::to_string()).
std::string Numbered(const char* prefix, int n) {
  std::string s(prefix);
  s.append(std::to_string(n));
  return s;
}

TEST(TcpKvStoreTest, GetWaitsForASetFromAnotherThread) {
  auto server = StartLoopbackServer();
  ASSERT_NE(server, nullptr);
  // Like a rendezvous: each of 8 threads publishes its own key and reads everyone else's.
  constexpr int kThreads = 8;
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto store = TcpKvStore::Connect(HostPort{"127.0.0.1", server->port()}, milliseconds(2000));
      if (!store.ok()) {
        errors[t] = store.status().ToString();
        return;
      }
      std::this_thread::sleep_for(milliseconds(20 * t));  // staggered, so most Gets wait
      if (Status st = (*store)->Set(Numbered("r.", t), Numbered("v", t)); !st.ok()) {
        errors[t] = st.ToString();
        return;
      }
      for (int peer = 0; peer < kThreads; ++peer) {
        auto v = (*store)->Get(Numbered("r.", peer), milliseconds(5000));
        if (!v.ok() || *v != Numbered("v", peer)) {
          errors[t] = Numbered("peer ", peer) + ": " +
                      (v.ok() ? "wrong value " + *v : v.status().ToString());
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(errors[t], "") << "thread " << t;
  EXPECT_EQ(server->stats().keys, static_cast<uint64_t>(kThreads));
}

TEST(TcpKvStoreTest, GetTimesOutNamingTheKeyAndTheServer) {
  auto server = StartLoopbackServer();
  ASSERT_NE(server, nullptr);
  auto store = ConnectTo(server->port());
  ASSERT_NE(store, nullptr);
  const auto start = Clock::now();
  auto v = store->Get("job3.gloo.rank_1", milliseconds(300));
  const int64_t took = MsSince(start);
  ASSERT_EQ(v.status().code(), StatusCode::kDeadlineExceeded) << v.status().ToString();
  EXPECT_NE(v.status().message().find("'job3.gloo.rank_1'"), std::string::npos)
      << v.status().message();
  EXPECT_NE(v.status().message().find("127.0.0.1:" + std::to_string(server->port())),
            std::string::npos)
      << v.status().message();
  EXPECT_NE(v.status().message().find("300 ms"), std::string::npos) << v.status().message();
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 2000);
  // The connection is still good.
  ASSERT_TRUE(store->Set("job3.gloo.rank_1", "late").ok());
  EXPECT_EQ(store->Get("job3.gloo.rank_1", milliseconds(100)).value(), "late");
}

TEST(TcpKvStoreTest, ConnectRetriesUntilTheServerStarts) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  std::unique_ptr<TcpKvStoreServer> server;
  std::thread late([&] {
    std::this_thread::sleep_for(milliseconds(600));
    server = StartLoopbackServer(port);
  });
  const auto start = Clock::now();
  auto store = TcpKvStore::Connect(HostPort{"127.0.0.1", port}, milliseconds(5000));
  const int64_t took = MsSince(start);
  late.join();
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_NE(server, nullptr);
  EXPECT_GE(took, 550);
  EXPECT_LT(took, 2500);  // backoff is capped at 500 ms
  ASSERT_TRUE((*store)->Set("k", "v").ok());
  EXPECT_EQ((*store)->Get("k", milliseconds(100)).value(), "v");
  std::printf("[ info ] connected %lld ms after the first try (server up at 600 ms)\n",
              static_cast<long long>(took));
}

TEST(TcpKvStoreTest, NobodyListeningIsUnavailableNamingTheAddress) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const auto start = Clock::now();
  auto store = TcpKvStore::Connect(HostPort{"127.0.0.1", port}, milliseconds(400));
  const int64_t took = MsSince(start);
  ASSERT_EQ(store.status().code(), StatusCode::kUnavailable) << store.status().ToString();
  EXPECT_NE(store.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << store.status().message();
  EXPECT_NE(store.status().message().find("Connection refused"), std::string::npos)
      << store.status().message();
  EXPECT_GE(took, 400);
  EXPECT_LT(took, 2000);
  EXPECT_EQ(TcpKvStore::Connect(HostPort{"127.0.0.1", 0}, milliseconds(10)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(TcpKvStoreTest, StoppingTheServerReleasesAWaitingClient) {
  auto server = StartLoopbackServer();
  ASSERT_NE(server, nullptr);
  auto store = ConnectTo(server->port());
  ASSERT_NE(store, nullptr);
  Status got;
  int64_t took = 0;
  std::thread waiter([&] {
    const auto start = Clock::now();
    got = store->Get("never", milliseconds(10000)).status();
    took = MsSince(start);
  });
  std::this_thread::sleep_for(milliseconds(200));
  const auto stop_start = Clock::now();
  server->Stop();
  EXPECT_LT(MsSince(stop_start), 1000);
  waiter.join();
  EXPECT_EQ(got.code(), StatusCode::kUnavailable) << got.ToString();
  EXPECT_NE(got.message().find("closed the connection"), std::string::npos) << got.message();
  EXPECT_LT(took, 2000);
  server->Stop();  // idempotent
}

// ---- Bad input ------------------------------------------------------------------------------

TEST(TcpKvStoreServerTest, MalformedFramesAreRefusedAndTheServerGoesOn) {
  auto server = StartLoopbackServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();

  struct Case {
    const char* what;
    std::string bytes;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"text", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"},
      {"version 2", RawFrame(1, 1, 1, "kv", 2), "version 2"},
      {"unknown op", RawFrame(9, 1, 0, "k"), "unknown operation 9"},
      {"empty key", RawFrame(1, 0, 1, "v"), "key length 0"},
      {"key too long", RawFrame(1, 201, 0, std::string(201, 'k')), "key length 201"},
      {"huge value", RawFrame(1, 1, 0xFFFFFFFFu, "k"), "over the limit"},
      {"value one over", RawFrame(1, 1, (1u << 20) + 1, "k"), "over the limit"},
      {"GET body of 5", RawFrame(2, 1, 5, "k12345"), "must be 4"},
  };
  for (const Case& c : cases) {
    RawConn conn(port);
    ASSERT_TRUE(conn.connected());
    ASSERT_TRUE(conn.Send(c.bytes)) << c.what;
    const RawConn::Answer a = conn.ReadAnswer();
    ASSERT_TRUE(a.ok) << c.what;
    EXPECT_EQ(a.code, kInvalidArgument) << c.what;
    EXPECT_NE(a.body.find("malformed frame"), std::string::npos) << c.what << ": " << a.body;
    EXPECT_NE(a.body.find(c.says), std::string::npos) << c.what << ": " << a.body;
    EXPECT_TRUE(conn.ClosedByPeer()) << c.what;
  }
  EXPECT_EQ(server->stats().bad_frames, cases.size());

  // A well-framed request with a bad key is refused, and the connection stays usable.
  {
    RawConn conn(port);
    ASSERT_TRUE(conn.Send(SetFrame("bad key!", "v")));
    RawConn::Answer a = conn.ReadAnswer();
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.code, kInvalidArgument);
    EXPECT_NE(a.body.find("bad key!"), std::string::npos) << a.body;
    ASSERT_TRUE(conn.Send(SetFrame("good", "v")));
    a = conn.ReadAnswer();
    EXPECT_TRUE(a.ok && a.code == kOk) << a.body;
  }
  // Requests sent back to back (one write) are answered in order, one at a time.
  {
    RawConn conn(port);
    ASSERT_TRUE(conn.Send(GetFrame("piped", 2000) + SetFrame("x", "1") + GetFrame("x", 0)));
    RawConn setter(port);
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(setter.Send(SetFrame("piped", "p")));
    EXPECT_EQ(setter.ReadAnswer().code, kOk);
    RawConn::Answer a = conn.ReadAnswer();
    EXPECT_TRUE(a.ok && a.code == kOk && a.body == "p") << a.code << " " << a.body;
    a = conn.ReadAnswer();
    EXPECT_TRUE(a.ok && a.code == kOk && a.body.empty()) << a.code << " " << a.body;
    a = conn.ReadAnswer();
    EXPECT_TRUE(a.ok && a.code == kOk && a.body == "1") << a.code << " " << a.body;
  }
  // A GET with timeout 0 for a missing key answers at once.
  {
    RawConn conn(port);
    ASSERT_TRUE(conn.Send(GetFrame("absent", 0)));
    const RawConn::Answer a = conn.ReadAnswer();
    EXPECT_EQ(a.code, kDeadlineExceeded);
    EXPECT_NE(a.body.find("'absent'"), std::string::npos) << a.body;
  }
  // Clients that vanish: mid-frame, while waiting in GET, right after a SET.
  {
    RawConn half(port), waiting(port), fire(port);
    ASSERT_TRUE(half.Send(SetFrame("half", std::string(1000, 'h')).substr(0, 500)));
    ASSERT_TRUE(waiting.Send(GetFrame("gone.waiting", 10000)));
    ASSERT_TRUE(fire.Send(SetFrame("fire", "and forget")));
    std::this_thread::sleep_for(milliseconds(50));
  }
  // Random bytes, some behind a valid magic and version so they reach the later checks.
  std::mt19937 rng(1234);
  for (int i = 0; i < 200; ++i) {
    RawConn conn(port);
    ASSERT_TRUE(conn.connected()) << "connection " << i;
    std::string junk(rng() % 300, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    if (i % 2 == 0) junk = std::string("DYKV\x01", 5) + junk;
    conn.Send(junk);
    if (i % 10 == 0 && junk.size() >= 12) conn.ReadAnswer();  // sometimes wait for the verdict
  }

  // The server is alive and serves well-behaved clients.
  auto store = ConnectTo(port);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get("fire", milliseconds(2000)).value(), "and forget");
  ASSERT_TRUE(store->Set("gone.waiting", "nobody reads this").ok());
  ASSERT_TRUE(store->Set("after", "garbage").ok());
  EXPECT_EQ(store->Get("after", milliseconds(100)).value(), "garbage");
  EXPECT_EQ(store->Get("half", milliseconds(0)).status().code(), StatusCode::kDeadlineExceeded);
  const TcpKvStoreServer::Stats stats = server->stats();
  EXPECT_GT(stats.bad_frames, cases.size() + 50);
  std::printf("[ info ] %llu connections, %llu requests, %llu bad frames\n",
              static_cast<unsigned long long>(stats.connections),
              static_cast<unsigned long long>(stats.requests),
              static_cast<unsigned long long>(stats.bad_frames));
}

TEST(TcpKvStoreServerTest, RefusesAPortInUseNamingIt) {
  auto first = StartLoopbackServer();
  ASSERT_NE(first, nullptr);
  auto second = TcpKvStoreServer::Start("127.0.0.1", first->port());
  ASSERT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(first->port())),
            std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().message();
  EXPECT_EQ(TcpKvStoreServer::Start("127.0.0.1", 70000).status().code(),
            StatusCode::kInvalidArgument);
}

// ---- Across processes -----------------------------------------------------------------------

TEST(TcpKvStoreTest, SetAndGetAcrossProcesses) {
  TempDir dir;
  // The server in a child process; a getter process waits before the key exists.
  const std::string port_file = dir.path() + "/port";
  const pid_t serve =
      Spawn({DYT_TCP_KV_TOOL, "serve", "127.0.0.1", port_file}, {}, dir.path() + "/serve.err");
  ASSERT_TRUE(testing::WaitForFile(port_file, milliseconds(5000)));
  const int port = std::stoi(ReadFile(port_file).value_or("0"));
  ASSERT_GT(port, 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);

  const pid_t getter =
      Spawn({DYT_TCP_KV_TOOL, "get", address, "proc.key", "5000", "2000", dir.path() + "/got"}, {});
  std::this_thread::sleep_for(milliseconds(200));
  auto store = ConnectTo(port);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Set("proc.key", "from the test process").ok());
  const testing::ExitInfo got = WaitFor(getter, milliseconds(5000));
  EXPECT_TRUE(got.exited && got.code == 0) << ReadFile(dir.path() + "/got").value_or("");
  EXPECT_EQ(ReadFile(dir.path() + "/got").value_or(""), "OK\nfrom the test process");

  // A setter process, read here; then a getter that times out names the key.
  const testing::ExitInfo set = WaitFor(
      Spawn({DYT_TCP_KV_TOOL, "set", address, "proc.other", "v2", "2000"}, {}), milliseconds(5000));
  EXPECT_TRUE(set.exited && set.code == 0);
  EXPECT_EQ(store->Get("proc.other", milliseconds(100)).value(), "v2");
  const testing::ExitInfo missing = WaitFor(
      Spawn({DYT_TCP_KV_TOOL, "get", address, "proc.missing", "200", "2000", dir.path() + "/miss"},
            {}),
      milliseconds(5000));
  EXPECT_TRUE(missing.exited && missing.code == 1);
  const std::string miss = ReadFile(dir.path() + "/miss").value_or("");
  EXPECT_EQ(miss.rfind("DEADLINE_EXCEEDED\n", 0), 0u) << miss;
  EXPECT_NE(miss.find("'proc.missing'"), std::string::npos) << miss;

  ASSERT_EQ(::kill(serve, SIGTERM), 0);
  const testing::ExitInfo served = WaitFor(serve, milliseconds(3000));
  EXPECT_TRUE(served.exited && served.code == 0)
      << ReadFile(dir.path() + "/serve.err").value_or("");
}

}  // namespace
}  // namespace dyt::dist
