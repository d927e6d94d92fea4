#include "common/signals.h"

#include <cstdlib>

namespace dyt {
namespace {

// The one piece of process-wide state: a signal handler can only reach a global. It is owned
// by the single live ShutdownSignal.
std::atomic<int> g_signal{0};
std::atomic<bool> g_installed{false};

void OnSignal(int sig) {
  int expected = 0;
  g_signal.compare_exchange_strong(expected, sig);
}

}  // namespace

ShutdownSignal::ShutdownSignal() {
  if (g_installed.exchange(true)) std::abort();
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &old_term_);
  sigaction(SIGINT, &sa, &old_int_);
}

ShutdownSignal::~ShutdownSignal() {
  sigaction(SIGTERM, &old_term_, nullptr);
  sigaction(SIGINT, &old_int_, nullptr);
  g_installed = false;
}

void IgnoreSigpipeIfDefault() {
  struct sigaction old {};
  if (sigaction(SIGPIPE, nullptr, &old) != 0) return;
  if ((old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_DFL) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);
  }
}

bool ShutdownSignal::requested() const { return g_signal.load() != 0; }
int ShutdownSignal::signal_number() const { return g_signal.load(); }

}  // namespace dyt
