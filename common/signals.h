// Clean shutdown on SIGTERM / SIGINT.
//
// A ShutdownSignal installs handlers that only record which signal arrived (async-signal-safe);
// the program polls `requested()` at safe points (the trainer: between steps) and shuts down
// in order. Only one ShutdownSignal may be alive at a time, since signal handlers are
// process-wide; a second one is a programming error and aborts.
#pragma once

#include <atomic>
#include <csignal>

namespace dyt {

class ShutdownSignal {
 public:
  ShutdownSignal();   // installs SIGTERM and SIGINT handlers
  ~ShutdownSignal();  // restores the previous handlers
  ShutdownSignal(const ShutdownSignal&) = delete;
  ShutdownSignal& operator=(const ShutdownSignal&) = delete;

  bool requested() const;
  // The signal number that arrived first, 0 if none.
  int signal_number() const;

 private:
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
};

// Sets SIGPIPE to SIG_IGN when it is at its default (termination), leaving a handler someone
// installed alone: a write to a closed pipe or socket then fails with EPIPE instead of killing
// the process. Daemons' children need it: when the worker reading a trainer's output dies, the
// trainer must still save its checkpoint on the SIGTERM that follows, not die at its next log
// line. Process-wide, and idempotent.
void IgnoreSigpipeIfDefault();

}  // namespace dyt
