#include "trainer/dist/tcp_kv_store.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <thread>
#include <unordered_map>
#include <vector>

namespace dyt::dist {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kMagic[4] = {'D', 'Y', 'K', 'V'};
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 12;
constexpr uint8_t kOpSet = 1;
constexpr uint8_t kOpGet = 2;
constexpr size_t kMaxKeyBytes = 200;
constexpr size_t kMaxErrorBytes = 1024;
constexpr size_t kMaxFrameBytes = kHeaderBytes + kMaxKeyBytes + kTcpKvMaxValueBytes;
constexpr size_t kReadChunk = 64 * 1024;
// How long a client waits for a GET's answer beyond the timeout the server itself keeps.
constexpr milliseconds kAnswerSlack{5000};
constexpr milliseconds kFirstRetry{10};
constexpr milliseconds kMaxRetry{500};
// After accept() fails for lack of descriptors or memory, pending connections wait in the
// backlog this long before the server tries again (instead of spinning on poll).
constexpr milliseconds kAcceptPause{100};

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xFF));
}

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

uint16_t GetU16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string EncodeFrame(uint8_t kind, const std::string& key, const std::string& body) {
  std::string frame(kMagic, sizeof(kMagic));
  frame.push_back(static_cast<char>(kVersion));
  frame.push_back(static_cast<char>(kind));
  PutU16(&frame, static_cast<uint16_t>(key.size()));
  PutU32(&frame, static_cast<uint32_t>(body.size()));
  frame += key;
  frame += body;
  return frame;
}

struct Header {
  uint8_t kind = 0;  // operation or status code
  uint16_t key_len = 0;
  uint32_t body_len = 0;
};

// Checks what every frame shares (magic and version) and decodes the rest.
bool DecodeHeader(const char* p, Header* h, std::string* error) {
  if (std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    *error = "bad magic (not a dyt kv frame)";
    return false;
  }
  if (static_cast<uint8_t>(p[4]) != kVersion) {
    *error = "unsupported protocol version " + std::to_string(static_cast<uint8_t>(p[4])) +
             " (this server speaks " + std::to_string(kVersion) + ")";
    return false;
  }
  h->kind = static_cast<uint8_t>(p[5]);
  h->key_len = GetU16(p + 6);
  h->body_len = GetU32(p + 8);
  return true;
}

// The server's checks of a request header.
bool CheckRequestHeader(const Header& h, std::string* error) {
  if (h.kind != kOpSet && h.kind != kOpGet) {
    *error = "unknown operation " + std::to_string(h.kind) + " (1 = SET, 2 = GET)";
    return false;
  }
  if (h.key_len < 1 || h.key_len > kMaxKeyBytes) {
    *error = "key length " + std::to_string(h.key_len) + " is not in [1, " +
             std::to_string(kMaxKeyBytes) + "]";
    return false;
  }
  if (h.kind == kOpSet && h.body_len > kTcpKvMaxValueBytes) {
    *error = "value of " + std::to_string(h.body_len) + " bytes is over the limit of " +
             std::to_string(kTcpKvMaxValueBytes);
    return false;
  }
  if (h.kind == kOpGet && h.body_len != 4) {
    *error = "GET body of " + std::to_string(h.body_len) + " bytes (must be 4: the timeout in ms)";
    return false;
  }
  return true;
}

std::string ErrnoText(int err) { return std::strerror(err); }

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Polls one descriptor until `events` or `deadline`. 1: ready, 0: deadline, -1: error (errno).
int PollUntil(int fd, short events, Clock::time_point deadline) {
  while (true) {
    // Past the deadline this still looks once (a 0 ms poll).
    const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
    pollfd p{fd, events, 0};
    const int wait_ms =
        static_cast<int>(std::clamp<int64_t>(left.count(), 0, std::numeric_limits<int>::max()));
    const int n = ::poll(&p, 1, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n > 0) return 1;
    if (Clock::now() >= deadline) return 0;
  }
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const {
    if (a != nullptr) ::freeaddrinfo(a);
  }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for a stream socket; *error says why there is nothing.
AddrInfoPtr Resolve(const std::string& host, int port, bool passive, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* result = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &result);
  if (rc != 0) {
    *error = "cannot resolve '" + host + "': " + ::gai_strerror(rc);
    return nullptr;
  }
  return AddrInfoPtr(result);
}

// One attempt to connect to any address of `server`, bounded by `deadline`. The descriptor
// (non-blocking, close-on-exec, no Nagle), or -1 with *error set.
int TryConnect(const HostPort& server, Clock::time_point deadline, std::string* error) {
  AddrInfoPtr addrs = Resolve(server.host, server.port, /*passive=*/false, error);
  if (addrs == nullptr) return -1;
  for (addrinfo* a = addrs.get(); a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      *error = "socket: " + ErrnoText(errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && (errno == EINPROGRESS || errno == EINTR)) {
      const int ready = PollUntil(fd, POLLOUT, deadline);
      int err = 0;
      socklen_t len = sizeof(err);
      if (ready == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        rc = 0;
      } else {
        errno = ready == 0 ? ETIMEDOUT : (err != 0 ? err : errno);
      }
    }
    if (rc == 0) {
      SetNoDelay(fd);
      return fd;
    }
    *error = "connect: " + ErrnoText(errno);
    ::close(fd);
  }
  return -1;
}

// Connects with retries and backoff until `deadline` (at least one attempt).
StatusOr<int> ConnectWithRetry(const HostPort& server, Clock::time_point deadline,
                               milliseconds budget) {
  auto pause = kFirstRetry;
  std::string error;
  int attempts = 0;
  while (true) {
    ++attempts;
    const int fd = TryConnect(server, deadline, &error);
    if (fd >= 0) return fd;
    const auto now = Clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, kMaxRetry);
  }
  return Unavailable("TcpKvStore: nobody accepted a connection at " + server.ToString() +
                     " within " + std::to_string(budget.count()) + " ms (" +
                     std::to_string(attempts) + " attempt(s); last: " + error +
                     "); is the rendezvous server (dyt-launch on node rank 0) running?");
}

// Sends all of `data`, or fails (UNAVAILABLE, DEADLINE_EXCEEDED) naming `who`.
Status SendAll(int fd, const std::string& data, Clock::time_point deadline,
               const std::string& who) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int ready = PollUntil(fd, POLLOUT, deadline);
      if (ready == 1) continue;
      if (ready == 0)
        return DeadlineExceeded(who + ": the server took no data before the deadline");
    }
    return Unavailable(who + ": send: " + ErrnoText(errno));
  }
  return Status::Ok();
}

// Receives exactly `n` bytes into *out.
Status RecvExact(int fd, size_t n, std::string* out, Clock::time_point deadline,
                 const std::string& who, const std::string& waiting_for) {
  out->resize(n);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::recv(fd, out->data() + done, n - done, 0);
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    if (got == 0) {
      return Unavailable(who + ": the server closed the connection (did it stop?) while " +
                         waiting_for);
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const int ready = PollUntil(fd, POLLIN, deadline);
      if (ready == 1) continue;
      if (ready == 0) return DeadlineExceeded(who + ": no answer in time while " + waiting_for);
    }
    return Unavailable(who + ": recv: " + ErrnoText(errno) + " while " + waiting_for);
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Addresses

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

constexpr char kTcpScheme[] = "tcp://";

bool AllDigits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits "HOST:PORT" / "[V6]:PORT" (no scheme). False when it has neither shape.
bool SplitHostPort(const std::string& s, std::string* host, std::string* port) {
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    *host = s.substr(1, close - 1);
    *port = s.substr(close + 2);
    return !host->empty() && host->find_first_of("[]/") == std::string::npos;
  }
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  *port = s.substr(colon + 1);
  return !host->empty() && host->find_first_of(":[]/") == std::string::npos;
}

}  // namespace

bool IsTcpRendezvous(const std::string& rdzv) {
  if (rdzv.rfind(kTcpScheme, 0) == 0) return true;
  if (rdzv.find('/') != std::string::npos) return false;
  std::string host, port;
  return SplitHostPort(rdzv, &host, &port) && AllDigits(port);
}

StatusOr<HostPort> ParseHostPort(const std::string& text) {
  std::string s = text;
  if (s.rfind(kTcpScheme, 0) == 0) s = s.substr(sizeof(kTcpScheme) - 1);
  std::string host, port;
  if (!SplitHostPort(s, &host, &port) || s.find('/') != std::string::npos) {
    return InvalidArgument("address '" + text +
                           "': must be [tcp://]HOST:PORT or [tcp://][IPV6]:PORT");
  }
  if (!AllDigits(port) || port.size() > 5 || std::stoi(port) > 65535) {
    return InvalidArgument("address '" + text + "': port '" + port +
                           "' must be a number in [0, 65535]");
  }
  return HostPort{host, std::stoi(port)};
}

// ---------------------------------------------------------------------------------------------
// The server loop

class TcpKvStoreServer::Loop {
 public:
  Loop(int listen_fd, int wake_read, int wake_write)
      : listen_fd_(listen_fd), wake_read_(wake_read), wake_write_(wake_write) {}

  ~Loop() {
    Stop();
    for (int fd : {listen_fd_, wake_read_, wake_write_}) ::close(fd);
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!thread_.joinable()) return;
    stop_.store(true);
    const char byte = 1;
    while (::write(wake_write_, &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }

  Stats stats() const {
    Stats s;
    s.connections = connections_.load();
    s.requests = requests_.load();
    s.bad_frames = bad_frames_.load();
    s.keys = keys_.load();
    return s;
  }

 private:
  struct Conn {
    int fd = -1;
    std::string in;   // received, not yet handled
    std::string out;  // answers not yet sent
    size_t out_pos = 0;
    bool dead = false;               // to be closed at the end of this round
    bool close_after_write = false;  // a bad frame was answered; close once it is sent
    bool parked = false;             // a GET waiting for its key
    std::string parked_key;
    uint32_t parked_ms = 0;
    Clock::time_point deadline;

    bool writing() const { return out_pos < out.size(); }
  };

  void Run() {
    std::vector<pollfd> fds;
    while (!stop_.load()) {
      const Clock::time_point now = Clock::now();
      const bool accepting = now >= accept_paused_until_;
      fds.clear();
      fds.push_back({wake_read_, POLLIN, 0});
      fds.push_back({accepting ? listen_fd_ : -1, POLLIN, 0});  // poll skips a negative fd
      const size_t polled = conns_.size();
      for (const auto& c : conns_) {
        short events = 0;
        if (!c->close_after_write && c->in.size() < kMaxFrameBytes) events |= POLLIN;
        if (c->writing()) events |= POLLOUT;
        fds.push_back({c->fd, events, 0});
      }
      if (::poll(fds.data(), fds.size(), PollTimeoutMs(now, accepting)) < 0) {
        if (errno != EINTR) std::this_thread::sleep_for(milliseconds(10));  // ENOMEM: retry
        continue;
      }
      if (fds[0].revents != 0) DrainWakePipe();
      if (stop_.load()) break;
      if ((fds[1].revents & POLLIN) != 0) Accept();
      for (size_t i = 0; i < polled; ++i) {
        Conn& c = *conns_[i];
        const short ev = fds[i + 2].revents;
        if ((ev & POLLIN) != 0 ||
            ((ev & (POLLHUP | POLLERR)) != 0 && (fds[i + 2].events & POLLIN) != 0)) {
          Read(c);
        } else if ((ev & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
          c.dead = true;
        }
        if (!c.dead && (ev & POLLOUT) != 0) Flush(c);
      }
      for (const auto& c : conns_) ready_.push_back(c.get());
      Expire(Clock::now());
      while (!ready_.empty()) {
        Conn* c = ready_.back();
        ready_.pop_back();
        Handle(*c);
      }
      Sweep();
    }
    for (const auto& c : conns_) ::close(c->fd);
    conns_.clear();
    waiters_.clear();
  }

  // Until the nearest GET deadline or the end of an accept pause; -1 (forever) when neither.
  int PollTimeoutMs(Clock::time_point now, bool accepting) const {
    Clock::time_point wake = Clock::time_point::max();
    if (!accepting) wake = accept_paused_until_;
    for (const auto& c : conns_) {
      if (c->parked) wake = std::min(wake, c->deadline);
    }
    if (wake == Clock::time_point::max()) return -1;
    const auto left = std::chrono::ceil<milliseconds>(wake - now).count();
    return static_cast<int>(std::clamp<int64_t>(left, 0, 60 * 60 * 1000));
  }

  void DrainWakePipe() {
    char buf[64];
    while (::read(wake_read_, buf, sizeof(buf)) > 0) {
    }
  }

  void Accept() {
    while (true) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        SetNoDelay(fd);
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        conns_.push_back(std::move(c));
        connections_.fetch_add(1);
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_ = Clock::now() + kAcceptPause;
      }
      return;  // EAGAIN: nothing more to accept now
    }
  }

  void Read(Conn& c) {
    const size_t room =
        std::min(kReadChunk, kMaxFrameBytes - std::min(kMaxFrameBytes, c.in.size()));
    if (room == 0) return;
    char buf[kReadChunk];
    ssize_t n;
    do {
      n = ::recv(c.fd, buf, room, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      c.dead = true;  // the client went away (a waiting GET is dropped with it)
    }
  }

  void Flush(Conn& c) {
    while (c.writing()) {
      const ssize_t n =
          ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_pos += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;
      } else {
        c.dead = true;
        return;
      }
    }
    c.out.clear();
    c.out_pos = 0;
    if (c.close_after_write) c.dead = true;
  }

  void Answer(Conn& c, StatusCode code, const std::string& body) {
    c.out += EncodeFrame(static_cast<uint8_t>(code), "", body);
    Flush(c);
  }

  void AnswerError(Conn& c, StatusCode code, std::string message) {
    if (message.size() > kMaxErrorBytes) message.resize(kMaxErrorBytes);
    Answer(c, code, message);
  }

  // Handles the complete frames buffered for `c`, one at a time: only while it is not waiting
  // in a GET and its previous answer has gone out (so one connection never holds more than
  // one frame in and one answer out).
  void Handle(Conn& c) {
    while (!c.dead && !c.parked && !c.close_after_write && !c.writing() &&
           c.in.size() >= kHeaderBytes) {
      Header h;
      std::string error;
      if (!DecodeHeader(c.in.data(), &h, &error) || !CheckRequestHeader(h, &error)) {
        bad_frames_.fetch_add(1);
        c.in.clear();
        c.close_after_write = true;
        AnswerError(c, StatusCode::kInvalidArgument, "malformed frame: " + error);
        return;
      }
      const size_t frame = kHeaderBytes + h.key_len + h.body_len;
      if (c.in.size() < frame) return;
      std::string key = c.in.substr(kHeaderBytes, h.key_len);
      std::string body = c.in.substr(kHeaderBytes + h.key_len, h.body_len);
      c.in.erase(0, frame);
      requests_.fetch_add(1);
      if (Status st = ValidateKvKey(key); !st.ok()) {
        AnswerError(c, StatusCode::kInvalidArgument, st.message());
        continue;
      }
      if (h.kind == kOpSet) {
        Set(c, key, std::move(body));
      } else {
        Get(c, key, GetU32(body.data()));
      }
    }
  }

  void Set(Conn& c, const std::string& key, std::string value) {
    Answer(c, StatusCode::kOk, "");
    auto waiting = waiters_.find(key);
    if (waiting != waiters_.end()) {
      for (Conn* w : waiting->second) {
        w->parked = false;
        Answer(*w, StatusCode::kOk, value);
        ready_.push_back(w);  // it may have the next request buffered
      }
      waiters_.erase(waiting);
    }
    values_[key] = std::move(value);
    keys_.store(values_.size());
  }

  void Get(Conn& c, const std::string& key, uint32_t timeout_ms) {
    const auto it = values_.find(key);
    if (it != values_.end()) {
      Answer(c, StatusCode::kOk, it->second);
      return;
    }
    if (timeout_ms == 0) {
      AnswerError(c, StatusCode::kDeadlineExceeded, NotSetMessage(key, 0));
      return;
    }
    c.parked = true;
    c.parked_key = key;
    c.parked_ms = timeout_ms;
    c.deadline = Clock::now() + milliseconds(timeout_ms);
    waiters_[key].push_back(&c);
  }

  static std::string NotSetMessage(const std::string& key, uint32_t ms) {
    return "key '" + key + "' was not set within " + std::to_string(ms) + " ms";
  }

  void Unpark(Conn& c) {
    c.parked = false;
    auto it = waiters_.find(c.parked_key);
    if (it == waiters_.end()) return;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), &c), list.end());
    if (list.empty()) waiters_.erase(it);
  }

  void Expire(Clock::time_point now) {
    for (const auto& c : conns_) {
      if (!c->parked || c->dead || c->deadline > now) continue;
      Unpark(*c);
      AnswerError(*c, StatusCode::kDeadlineExceeded, NotSetMessage(c->parked_key, c->parked_ms));
    }
  }

  void Sweep() {
    auto keep = conns_.begin();
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
      if ((*it)->dead) {
        if ((*it)->parked) Unpark(**it);
        ::close((*it)->fd);
      } else {
        *keep++ = std::move(*it);
      }
    }
    conns_.erase(keep, conns_.end());
  }

  const int listen_fd_;
  const int wake_read_;
  const int wake_write_;
  std::thread thread_;
  std::mutex stop_mu_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> connections_{0}, requests_{0}, bad_frames_{0}, keys_{0};

  // Owned by the server thread.
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> ready_;  // connections whose buffered frames may now be handled
  std::map<std::string, std::string> values_;
  std::unordered_map<std::string, std::vector<Conn*>> waiters_;  // GETs parked on each key
  Clock::time_point accept_paused_until_;
};

TcpKvStoreServer::TcpKvStoreServer(std::unique_ptr<Loop> loop, std::string bind_host, int port)
    : loop_(std::move(loop)), bind_host_(std::move(bind_host)), port_(port) {}

TcpKvStoreServer::~TcpKvStoreServer() { Stop(); }

void TcpKvStoreServer::Stop() { loop_->Stop(); }

TcpKvStoreServer::Stats TcpKvStoreServer::stats() const { return loop_->stats(); }

StatusOr<std::unique_ptr<TcpKvStoreServer>> TcpKvStoreServer::Start(const std::string& bind_host,
                                                                    int port) {
  if (bind_host.empty()) return InvalidArgument("TcpKvStoreServer: bind host is empty");
  if (port < 0 || port > 65535) {
    return InvalidArgument("TcpKvStoreServer: port " + std::to_string(port) +
                           " must be in [0, 65535]");
  }
  const std::string where = HostPort{bind_host, port}.ToString();
  std::string error;
  AddrInfoPtr addrs = Resolve(bind_host, port, /*passive=*/true, &error);
  if (addrs == nullptr)
    return Unavailable("TcpKvStoreServer: cannot listen on " + where + ": " + error);
  int fd = -1;
  for (addrinfo* a = addrs.get(); a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = "socket: " + ErrnoText(errno);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = "bind: " + ErrnoText(errno);
    } else if (::listen(fd, SOMAXCONN) != 0) {
      error = "listen: " + ErrnoText(errno);
    } else {
      break;
    }
    ::close(fd);
    fd = -1;
  }
  if (fd < 0) return Unavailable("TcpKvStoreServer: cannot listen on " + where + ": " + error);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return Internal("TcpKvStoreServer: getsockname: " + ErrnoText(err));
  }
  const int bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  int wake[2];
  if (::pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0) {
    const int err = errno;
    ::close(fd);
    return Internal("TcpKvStoreServer: pipe: " + ErrnoText(err));
  }
  auto loop = std::make_unique<Loop>(fd, wake[0], wake[1]);
  loop->Start();
  return std::unique_ptr<TcpKvStoreServer>(
      new TcpKvStoreServer(std::move(loop), bind_host, bound_port));
}

// ---------------------------------------------------------------------------------------------
// The client

StatusOr<std::unique_ptr<TcpKvStore>> TcpKvStore::Connect(const HostPort& server,
                                                          milliseconds timeout) {
  if (server.host.empty()) return InvalidArgument("TcpKvStore: the server's host is empty");
  if (server.port < 1 || server.port > 65535) {
    return InvalidArgument("TcpKvStore: " + server.ToString() + ": the port must be in [1, 65535]");
  }
  if (timeout.count() < 0) timeout = milliseconds(0);
  DYT_ASSIGN_OR_RETURN(int fd, ConnectWithRetry(server, Clock::now() + timeout, timeout));
  return std::unique_ptr<TcpKvStore>(new TcpKvStore(server, timeout, fd));
}

TcpKvStore::~TcpKvStore() {
  if (fd_ >= 0) ::close(fd_);
}

Status TcpKvStore::Exchange(uint8_t op, const std::string& key, const std::string& body,
                            Clock::time_point connect_deadline, Clock::time_point answer_deadline,
                            StatusCode* code, std::string* answer) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string who = "TcpKvStore " + server_.ToString();
  if (fd_ < 0) {
    const auto budget = std::chrono::duration_cast<milliseconds>(connect_deadline - Clock::now());
    DYT_ASSIGN_OR_RETURN(
        fd_, ConnectWithRetry(server_, connect_deadline, std::max(milliseconds(0), budget)));
  }
  const std::string waiting_for =
      "waiting for the answer to " + std::string(op == kOpSet ? "SET" : "GET") + " '" + key + "'";
  Status st = SendAll(fd_, EncodeFrame(op, key, body), answer_deadline, who);
  std::string header;
  if (st.ok()) st = RecvExact(fd_, kHeaderBytes, &header, answer_deadline, who, waiting_for);
  Header h;
  std::string error;
  if (st.ok() && (!DecodeHeader(header.data(), &h, &error) || h.key_len != 0 ||
                  h.body_len > kTcpKvMaxValueBytes ||
                  h.kind > static_cast<uint8_t>(StatusCode::kUnauthenticated))) {
    if (error.empty()) error = "bad answer header";
    st = Unavailable(who + ": not a dyt kv server? " + error);
  }
  if (st.ok()) st = RecvExact(fd_, h.body_len, answer, answer_deadline, who, waiting_for);
  if (!st.ok()) {
    // The byte stream is out of step (or gone): start afresh on the next call.
    ::close(fd_);
    fd_ = -1;
    return st;
  }
  *code = static_cast<StatusCode>(h.kind);
  return Status::Ok();
}

Status TcpKvStore::Set(const std::string& key, const std::string& value) {
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));
  if (value.size() > kTcpKvMaxValueBytes) {
    return InvalidArgument("TcpKvStore: value for key '" + key + "' has " +
                           std::to_string(value.size()) + " bytes, over the limit of " +
                           std::to_string(kTcpKvMaxValueBytes));
  }
  const Clock::time_point deadline = Clock::now() + timeout_;
  StatusCode code = StatusCode::kOk;
  std::string answer;
  DYT_RETURN_IF_ERROR(Exchange(kOpSet, key, value, deadline, deadline, &code, &answer));
  if (code != StatusCode::kOk)
    return Status(code, "TcpKvStore " + server_.ToString() + ": " + answer);
  return Status::Ok();
}

StatusOr<std::string> TcpKvStore::Get(const std::string& key, milliseconds timeout) {
  DYT_RETURN_IF_ERROR(ValidateKvKey(key));
  const int64_t ms = std::clamp<int64_t>(timeout.count(), 0, std::numeric_limits<uint32_t>::max());
  const Clock::time_point now = Clock::now();
  std::string body;
  PutU32(&body, static_cast<uint32_t>(ms));
  StatusCode code = StatusCode::kOk;
  std::string answer;
  DYT_RETURN_IF_ERROR(Exchange(kOpGet, key, body, now + milliseconds(ms),
                               now + milliseconds(ms) + kAnswerSlack, &code, &answer));
  if (code != StatusCode::kOk)
    return Status(code, "TcpKvStore " + server_.ToString() + ": " + answer);
  return answer;
}

}  // namespace dyt::dist
