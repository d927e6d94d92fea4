// Stack switching for the SIMT emulator's fibers (one per emulated GPU thread).
//
// Why our own: glibc's swapcontext makes a sigprocmask system call on every switch, and the
// emulator switches at every barrier and warp operation of every thread (millions of times in
// an attention test); on x86-64 this saves only the callee-saved registers and the stack
// pointer, in user space. Other architectures use ucontext.
#pragma once

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace dyt::simt {

struct FiberContext {
#if defined(__x86_64__)
  void* sp = nullptr;  // the saved stack pointer (registers are pushed below it)
#else
  ucontext_t uc{};
#endif
};

// Prepares `ctx` to run `entry()` on the stack [stack, stack + bytes) when first switched to.
// `entry` must never return (it switches away for good instead).
void InitFiber(FiberContext* ctx, unsigned char* stack, size_t bytes, void (*entry)());

// Saves the running context in `from` and resumes `to`; returns when something switches back
// to `from`.
void SwitchFiber(FiberContext* from, FiberContext* to);

}  // namespace dyt::simt
