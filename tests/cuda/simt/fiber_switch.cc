#include "tests/cuda/simt/fiber_switch.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
// dyt_simt_switch(void** save_sp, void* new_sp): pushes the System V callee-saved registers,
// stores the stack pointer in *save_sp, loads new_sp and pops the same registers from it.
// The x87/SSE control words are shared by all fibers and not switched.
asm(R"(
  .text
  .globl dyt_simt_switch
  .type dyt_simt_switch, @function
dyt_simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size dyt_simt_switch, .-dyt_simt_switch
  .section .note.GNU-stack, "", @progbits
  .text
)");
extern "C" void dyt_simt_switch(void** save_sp, void* new_sp);
#endif

namespace dyt::simt {

#if defined(__x86_64__)

void InitFiber(FiberContext* ctx, unsigned char* stack, size_t bytes, void (*entry)()) {
  // The first switch pops six zeros into the callee-saved registers and `ret`s into entry
  // with the stack as a call leaves it (rsp = 8 mod 16 at the first instruction).
  auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t{15};
  auto* slot = reinterpret_cast<uint64_t*>(top - 16);  // 16-aligned: entry's return address
  slot[1] = 0;                                         // entry never returns
  slot[0] = reinterpret_cast<uint64_t>(entry);
  uint64_t* regs = slot - 6;
  std::memset(regs, 0, 6 * sizeof(uint64_t));
  ctx->sp = regs;
}

void SwitchFiber(FiberContext* from, FiberContext* to) { dyt_simt_switch(&from->sp, to->sp); }

#else

void InitFiber(FiberContext* ctx, unsigned char* stack, size_t bytes, void (*entry)()) {
  getcontext(&ctx->uc);
  ctx->uc.uc_stack.ss_sp = stack;
  ctx->uc.uc_stack.ss_size = bytes;
  ctx->uc.uc_link = nullptr;
  makecontext(&ctx->uc, entry, 0);
}

void SwitchFiber(FiberContext* from, FiberContext* to) { swapcontext(&from->uc, &to->uc); }

#endif

}  // namespace dyt::simt
