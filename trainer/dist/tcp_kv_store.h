// TcpKvStoreServer and TcpKvStore: the rendezvous key-value store over TCP, for machines that
// share no file system (the role of torchrun's c10d TCPStore). dyt-launch on node rank 0 serves
// it; every rank connects as a client with DYT_RDZV=HOST:PORT.
//
// Why our own: Debian has no small embeddable key-value server library, and gRPC (which the
// scheduler's store uses) is a service dependency the trainer must build without. What is
// needed is small: set a key, wait for a key, with bounded sizes. Plain POSIX sockets and
// poll() do it in one server thread.
//
// Wire protocol, version 1. Each request and each answer is one frame; integers are big-endian:
//
//   bytes 0-3   magic "DYKV"
//   byte  4     version, 1
//   byte  5     request: the operation, 1 = SET, 2 = GET
//               answer:  a StatusCode (0 = OK, 3 = INVALID_ARGUMENT, 4 = DEADLINE_EXCEEDED)
//   bytes 6-7   key length K: request 1 to 200, answer 0
//   bytes 8-11  body length B
//   then K bytes of key, then B bytes of body.
//
//   SET key value    body = the value, at most kTcpKvMaxValueBytes. Answer: OK, empty body.
//   GET key timeout  body = 4 bytes, the timeout in ms. Answer: OK with the value as soon as
//                    the key is set, or DEADLINE_EXCEEDED when `timeout` passes first, its body
//                    a message naming the key.
//   Any other answer's body is an error message (at most 1 KiB).
//
// One request at a time per connection: the server reads the next frame of a connection only
// after answering the previous one (a waiting GET holds its connection).
//
// Bad input never crashes the server and never makes it allocate more than one frame's worth
// per connection. A frame with a bad header (magic, version, operation, a key or body length
// out of bounds) is answered with INVALID_ARGUMENT and the connection is closed, since the
// byte stream can no longer be trusted; a well-formed frame with an invalid key (see
// kv_store.h) is answered with INVALID_ARGUMENT and the connection stays usable.
//
// There is no authentication: anyone who can reach the port can read and write keys. Serve it
// on a cluster-internal network (dyt-launch binds to the loopback address itself when the
// rendezvous host is one).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "trainer/dist/kv_store.h"

namespace dyt::dist {

// The largest value a SET may carry (Gloo's addresses and NCCL's unique id are far smaller).
constexpr size_t kTcpKvMaxValueBytes = size_t{1} << 20;

// A TCP endpoint. `host` is a name or a numeric address, IPv6 without brackets.
struct HostPort {
  std::string host;
  int port = 0;

  // "host:port", or "[v6addr]:port" when the host contains ':'.
  std::string ToString() const;
};

// True when a rendezvous string (DYT_RDZV, dyt-launch --rdzv) names a TCP store rather than a
// directory: it starts with "tcp://", or it is NAME:DIGITS or [V6ADDR]:DIGITS with no '/'
// (so "node0:29500" and "10.0.0.1:29500" are stores; write "./node0:29500" for a directory
// of that name).
bool IsTcpRendezvous(const std::string& rdzv);

// Parses "[tcp://]HOST:PORT" or "[tcp://][V6ADDR]:PORT", PORT in [0, 65535] (0 means "any" to
// a server, and is refused by a client). INVALID_ARGUMENT naming the text and the rule.
StatusOr<HostPort> ParseHostPort(const std::string& text);

// The server: a thread answering requests, holding the keys in memory until it stops.
class TcpKvStoreServer {
 public:
  // Listens on `bind_host` ("0.0.0.0": every IPv4 interface; "::": every interface;
  // "127.0.0.1": this machine only; or a host name) and `port` (0: an ephemeral port, see
  // port()). The socket is created with SO_REUSEADDR, so a restarted launcher can take the
  // port again at once, and close-on-exec, so launched ranks do not inherit it.
  // UNAVAILABLE naming the address when it cannot listen (e.g. the port is taken).
  static StatusOr<std::unique_ptr<TcpKvStoreServer>> Start(const std::string& bind_host, int port);

  // Stops the server.
  ~TcpKvStoreServer();
  TcpKvStoreServer(const TcpKvStoreServer&) = delete;
  TcpKvStoreServer& operator=(const TcpKvStoreServer&) = delete;

  // Closes the listening socket and every connection (a client waiting in GET sees the
  // connection close: UNAVAILABLE) and joins the thread. Idempotent.
  void Stop();

  // The port it listens on (the one the kernel chose when started with port 0).
  int port() const { return port_; }
  const std::string& bind_host() const { return bind_host_; }

  // Counters, for tests and logs; safe to read from any thread.
  struct Stats {
    uint64_t connections = 0;  // accepted so far
    uint64_t requests = 0;     // well-framed requests
    uint64_t bad_frames = 0;   // frames refused for a bad header (connection then closed)
    uint64_t keys = 0;         // keys held now
  };
  Stats stats() const;

  class Loop;  // the server thread's state (tcp_kv_store.cc)

 private:
  TcpKvStoreServer(std::unique_ptr<Loop> loop, std::string bind_host, int port);

  std::unique_ptr<Loop> loop_;
  const std::string bind_host_;
  const int port_;
};

// The client: one TCP connection to a TcpKvStoreServer.
//
// Calls from several threads are serialized on that connection (a waiting Get holds it); give
// each thread its own TcpKvStore to wait concurrently. After a failed exchange (connection
// lost, no answer in time) the connection is dropped and the next call connects again.
class TcpKvStore final : public KvStore {
 public:
  // Connects to `server`, retrying with backoff (10 ms doubling to 500 ms) for up to `timeout`,
  // since the server may start after its clients. `timeout` also bounds how long Set waits for
  // its answer. UNAVAILABLE naming HOST:PORT and the last error when nobody accepted the
  // connection in time; INVALID_ARGUMENT for port 0 or an empty host.
  static StatusOr<std::unique_ptr<TcpKvStore>> Connect(const HostPort& server,
                                                       std::chrono::milliseconds timeout);
  ~TcpKvStore() override;
  TcpKvStore(const TcpKvStore&) = delete;
  TcpKvStore& operator=(const TcpKvStore&) = delete;

  // INVALID_ARGUMENT for a bad key or a value over kTcpKvMaxValueBytes; UNAVAILABLE when the
  // server cannot be reached.
  Status Set(const std::string& key, const std::string& value) override;

  // The server waits for the key for `timeout` (at most 2^32-1 ms) and answers
  // DEADLINE_EXCEEDED naming the key and this store's address; the client gives it `timeout`
  // plus 5 s to answer before giving up on the connection itself (DEADLINE_EXCEEDED too).
  StatusOr<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;

  const HostPort& server() const { return server_; }

 private:
  TcpKvStore(HostPort server, std::chrono::milliseconds timeout, int fd)
      : server_(std::move(server)), timeout_(timeout), fd_(fd) {}

  // One request and its answer. Connects first if needed (retrying until `connect_deadline`).
  // A non-OK status is a transport failure; the server's own answer is in *code and *body.
  Status Exchange(uint8_t op, const std::string& key, const std::string& body,
                  std::chrono::steady_clock::time_point connect_deadline,
                  std::chrono::steady_clock::time_point answer_deadline, StatusCode* code,
                  std::string* answer);

  const HostPort server_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  int fd_ = -1;  // guarded by mu_; -1 when not connected
};

}  // namespace dyt::dist
