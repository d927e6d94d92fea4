// The SIMT emulator's scheduler and warp-wide operations (simt.h says what it models).
//
// Why our own: the kernels must run where no GPU is (CI, most sessions), and no packaged
// CUDA-on-CPU runtime runs inline PTX or follows the tensor-core fragment layouts; this
// one runs the kernels' own source, with the PTX primitives they use (ldmatrix, mma.sync,
// cp.async) implemented from the PTX ISA's definitions.
//
// Threads of a block are fibers (fiber_switch.h) of the launching host thread. The scheduler
// resumes runnable fibers in the order DYT_SIMT_ORDER picks (SchedulingOrder); a fiber runs until
// it waits at a barrier or warp operation, or returns. All state lives in the Executor of the
// running launch (one per host thread at a time), so host threads (ranks of the multi-GPU tests)
// launch independently. With DYT_SIMT_BLOCKS=n, a launch starts n host threads, each with its
// own Executor taking blocks in index order from a shared counter (`__shared__` variables are
// thread_local, so each block still has its own).
#include "tests/cuda/simt/simt.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/cuda/emu/cuda_runtime_emu.h"
#include "tests/cuda/simt/fiber_switch.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace dyt::simt {
namespace {

constexpr size_t kStackBytes = 128 * 1024;
constexpr size_t kMaxStaticSmem = 48 * 1024;  // without cudaFuncSetAttribute
constexpr size_t kMaxOptinSmem = 227 * 1024;  // sm_90's per-block opt-in limit
constexpr size_t kSlotBytes = 48;             // a lane's operands of one warp operation

enum class Wait { kNone, kBlock, kWarp, kExited };
enum class WarpOp { kNone, kSyncWarp, kShuffle, kLdMatrix, kLdMatrixTrans, kMma };

const char* WarpOpName(WarpOp op) {
  switch (op) {
    case WarpOp::kNone:
      return "none";
    case WarpOp::kSyncWarp:
      return "__syncwarp";
    case WarpOp::kShuffle:
      return "__shfl_xor_sync";
    case WarpOp::kLdMatrix:
      return "ldmatrix";
    case WarpOp::kLdMatrixTrans:
      return "ldmatrix.trans";
    case WarpOp::kMma:
      return "mma.sync";
  }
  return "?";
}

struct Copy {
  unsigned char* dst;
  unsigned char bytes[16];
  size_t n;
};

struct Fiber {
  FiberContext ctx;
  unsigned char* stack = nullptr;
  uint3 tid{};
  int linear = 0;
  Wait wait = Wait::kNone;
  std::vector<Copy> uncommitted;
  std::deque<std::vector<Copy>> groups;
};

struct WarpState {
  WarpOp op = WarpOp::kNone;
  int arrived = 0;
  int exited = 0;
  int lanes = 32;
  alignas(16) unsigned char in[32][kSlotBytes];
  alignas(16) unsigned char out[32][kSlotBytes];
};

bool CopiesLandEarly() {
  const char* v = std::getenv("DYT_SIMT_CP_ASYNC");
  return v != nullptr && std::string(v) == "early";
}
// Which runnable thread the scheduler resumes next (DYT_SIMT_ORDER):
//   round-robin (default): each in thread order, so warps advance together, one warp
//       operation at a time;
//   low-first / high-first: always the lowest- (highest-) numbered runnable thread, so one
//       warp runs ahead of the others until a __syncthreads stops it: a missing barrier lets it
//       overwrite (or read) shared data the other warps have not finished with.
enum class Order { kRoundRobin, kLowFirst, kHighFirst };
Order SchedulingOrder() {
  const char* v = std::getenv("DYT_SIMT_ORDER");
  const std::string order = v == nullptr ? "" : v;
  if (order == "low-first") return Order::kLowFirst;
  if (order == "high-first") return Order::kHighFirst;
  if (!order.empty() && order != "round-robin") {
    std::fprintf(stderr,
                 "SIMT emulator: DYT_SIMT_ORDER=%s: must be round-robin, low-first or "
                 "high-first\n",
                 order.c_str());
    std::abort();
  }
  return Order::kRoundRobin;
}

// Host threads a launch runs its blocks on (DYT_SIMT_BLOCKS, default 1: one after another).
int BlockThreads() {
  const char* v = std::getenv("DYT_SIMT_BLOCKS");
  if (v == nullptr || *v == '\0') return 1;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 1 || n > 256) {
    std::fprintf(stderr, "SIMT emulator: DYT_SIMT_BLOCKS=%s: must be an integer in [1, 256]\n", v);
    std::abort();
  }
  return static_cast<int>(n);
}

// Max dynamic shared memory per kernel, as cudaFuncSetAttribute set it.
class FuncAttributes {
 public:
  static FuncAttributes& Get() {
    static FuncAttributes attributes;
    return attributes;
  }
  void SetMaxDynamicSmem(const void* func, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    max_dynamic_smem_[func] = bytes;
  }
  size_t MaxDynamicSmem(const void* func) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = max_dynamic_smem_.find(func);
    return it == max_dynamic_smem_.end() ? kMaxStaticSmem : it->second;
  }

 private:
  std::mutex mu_;
  std::map<const void*, size_t> max_dynamic_smem_;
};

class Executor;
thread_local Executor* tls_executor = nullptr;

// The fibers' stacks, kept by each host thread for its later launches (allocated, never
// cleared: only the pages a kernel touches cost anything).
unsigned char* Stack(int i) {
  thread_local std::vector<std::unique_ptr<unsigned char[]>> stacks;
  while (static_cast<int>(stacks.size()) <= i) {
    stacks.emplace_back(new unsigned char[kStackBytes]);
  }
  return stacks[i].get();
}

class Executor {
 public:
  Executor(const LaunchConfig& cfg, void (*body)(void*), void* ctx)
      : cfg_(cfg),
        body_(body),
        ctx_(ctx),
        early_copies_(CopiesLandEarly()),
        order_(SchedulingOrder()) {
    n_ = static_cast<int>(cfg.block.x * cfg.block.y * cfg.block.z);
    fibers_.resize(n_);
    for (int i = 0; i < n_; ++i) {
      Fiber& f = fibers_[i];
      f.stack = Stack(i);
      f.linear = i;
      f.tid = make_uint3(i % cfg.block.x, (i / cfg.block.x) % cfg.block.y,
                         i / (cfg.block.x * cfg.block.y));
    }
    warps_.resize((n_ + 31) / 32);
    for (size_t w = 0; w < warps_.size(); ++w) {
      warps_[w].lanes = std::min(32, n_ - static_cast<int>(w) * 32);
    }
    // 128 bytes of slack past the end, so a 16-byte access at the last offset stays in bounds.
    smem_.assign(cfg.smem + 128 + 128, 0xFF);
    smem_base_ = smem_.data() + (128 - reinterpret_cast<uintptr_t>(smem_.data()) % 128);
  }

  // Runs blocks in index order (x fastest), each taking the next index from `next`, until
  // all `total` have been taken.
  // `concurrent`: other host threads run blocks of this launch at the same time.
  void Run(std::atomic<int64_t>& next, int64_t total, bool concurrent) {
    Executor* outer = tls_executor;
    tls_executor = this;
    blockDim = cfg_.block;
    gridDim = cfg_.grid;
    concurrent_ = concurrent;
    const int64_t gx = cfg_.grid.x, gy = cfg_.grid.y;
    for (int64_t i = next++; i < total; i = next++) {
      blockIdx = make_uint3(static_cast<unsigned>(i % gx), static_cast<unsigned>(i / gx % gy),
                            static_cast<unsigned>(i / (gx * gy)));
      RunBlock();
    }
    tls_executor = outer;
  }

  void SpinPause() {
    if (!concurrent_) {
      Fail(Current(),
           "a spin-wait on global memory in a block that runs alone: the block it waits for "
           "comes later in index order (on a GPU it may never be resident: a deadlock)");
    }
    // The block's first spin starts the clock (RunBlock resets it): 60 s of waiting in one
    // block is a deadlock, not a slow neighbour.
    const auto now = std::chrono::steady_clock::now();
    if (spin_since_ == std::chrono::steady_clock::time_point{}) spin_since_ = now;
    if (now - spin_since_ > std::chrono::seconds(60)) {
      Fail(Current(), "a spin-wait on global memory still waits after 60 s (a deadlock)");
    }
    std::this_thread::yield();
  }

  // ---- called from fibers ----

  void* DynamicSmem() { return smem_base_; }

  void SyncThreads() {
    Fiber& f = Current();
    f.wait = Wait::kBlock;
    ++block_waiting_;
    MaybeReleaseBlock();
    if (f.wait != Wait::kNone) Yield(f);
  }

  // Deposits this lane's operands (in, in_bytes) of warp operation `op`; when the last lane of
  // the warp arrives, `compute` fills every lane's result; copies this lane's result to out.
  void WarpCollective(WarpOp op, const void* in, size_t in_bytes, void* out, size_t out_bytes,
                      void (*compute)(WarpState&)) {
    Fiber& f = Current();
    WarpState& w = warps_[f.linear / 32];
    const int lane = f.linear % 32;
    if (w.exited > 0) Fail(f, std::string(WarpOpName(op)) + " in a warp where a lane has exited");
    if (w.arrived == 0) {
      w.op = op;
    } else if (w.op != op) {
      Fail(f, std::string("lanes of one warp at different warp operations: ") + WarpOpName(op) +
                  " and " + WarpOpName(w.op));
    }
    std::memcpy(w.in[lane], in, in_bytes);
    if (++w.arrived == w.lanes) {
      compute(w);
      w.arrived = 0;
      for (int l = 0; l < w.lanes; ++l) {
        Fiber& g = fibers_[f.linear - lane + l];
        if (g.wait == Wait::kWarp) g.wait = Wait::kNone;
      }
    } else {
      f.wait = Wait::kWarp;
      Yield(f);
    }
    if (out_bytes > 0) std::memcpy(out, w.out[lane], out_bytes);
  }

  uint32_t SharedOffset(const void* p) {
    const auto* c = static_cast<const unsigned char*>(p);
    if (c < smem_base_ || c >= smem_base_ + cfg_.smem) {
      Fail(Current(), "a shared-memory address outside the dynamic shared memory (" +
                          std::to_string(cfg_.smem) + " bytes)");
    }
    return static_cast<uint32_t>(c - smem_base_);
  }
  // The shared bytes [offset, offset + n), checked against the launch's dynamic size.
  unsigned char* SharedBytes(uint32_t offset, size_t n, size_t align) {
    if (offset % align != 0 || offset + n > cfg_.smem) {
      Fail(Current(), "shared access of " + std::to_string(n) + " bytes at offset " +
                          std::to_string(offset) + " (dynamic shared memory " +
                          std::to_string(cfg_.smem) + " bytes, alignment " + std::to_string(align) +
                          ")");
    }
    return smem_base_ + offset;
  }

  void CpAsync(uint32_t dst, const void* src, size_t bytes, bool valid) {
    Copy c{SharedBytes(dst, bytes, bytes), {}, bytes};
    // PTX: the global source is aligned to the copy size too (a GPU faults otherwise).
    if (valid && reinterpret_cast<uintptr_t>(src) % bytes != 0) {
      Fail(Current(), "cp.async of " + std::to_string(bytes) + " bytes from a global address " +
                          "not aligned to " + std::to_string(bytes));
    }
    if (valid) std::memcpy(c.bytes, src, bytes);
    if (early_copies_) {
      std::memcpy(c.dst, c.bytes, c.n);
    } else {
      Current().uncommitted.push_back(c);
    }
  }
  void CpAsyncCommit() {
    Fiber& f = Current();
    f.groups.push_back(std::move(f.uncommitted));
    f.uncommitted.clear();
  }
  void CpAsyncWait(int pending) {
    Fiber& f = Current();
    while (static_cast<int>(f.groups.size()) > pending) {
      for (const Copy& c : f.groups.front()) std::memcpy(c.dst, c.bytes, c.n);
      f.groups.pop_front();
    }
  }

  [[noreturn]] void Fail(const Fiber& f, const std::string& what) {
    std::fprintf(stderr,
                 "SIMT emulator: %s\n  kernel %s, grid (%u,%u,%u), block (%u,%u,%u), "
                 "block index (%u,%u,%u), thread (%u,%u,%u)\n",
                 what.c_str(), cfg_.name, cfg_.grid.x, cfg_.grid.y, cfg_.grid.z, cfg_.block.x,
                 cfg_.block.y, cfg_.block.z, blockIdx.x, blockIdx.y, blockIdx.z, f.tid.x, f.tid.y,
                 f.tid.z);
    std::abort();
  }

 private:
  static void FiberMain() {
    Executor* e = tls_executor;
    Fiber& f = *e->current_;
    e->body_(e->ctx_);
    // Copies still in flight complete (a GPU would complete them too).
    e->CpAsyncWait(0);
    for (const Copy& c : f.uncommitted) std::memcpy(c.dst, c.bytes, c.n);
    f.uncommitted.clear();
    f.wait = Wait::kExited;
    ++e->exited_;
    WarpState& w = e->warps_[f.linear / 32];
    ++w.exited;
    if (w.arrived > 0) {
      e->Fail(f, std::string("a lane exited while its warp waits at ") + WarpOpName(w.op));
    }
    e->MaybeReleaseBlock();
    SwitchFiber(&f.ctx, &e->scheduler_);  // never resumed
  }

  Fiber& Current() { return *current_; }

  void Yield(Fiber& f) { SwitchFiber(&f.ctx, &scheduler_); }

  // Exited threads count as arrived (as on the GPU, where exited warps leave the barrier).
  void MaybeReleaseBlock() {
    if (block_waiting_ > 0 && block_waiting_ + exited_ == n_) {
      for (Fiber& g : fibers_) {
        if (g.wait == Wait::kBlock) g.wait = Wait::kNone;
      }
      block_waiting_ = 0;
    }
  }

  void RunBlock() {
    spin_since_ = {};
    std::fill(smem_.begin(), smem_.end(), 0xFF);
    for (Fiber& f : fibers_) {
      InitFiber(&f.ctx, f.stack, kStackBytes, &Executor::FiberMain);
      f.wait = Wait::kNone;
      f.groups.clear();
      f.uncommitted.clear();
    }
    for (WarpState& w : warps_) {
      w.arrived = 0;
      w.exited = 0;
      w.op = WarpOp::kNone;
    }
    block_waiting_ = 0;
    exited_ = 0;
    while (exited_ < n_) {
      bool ran = false;
      for (int k = 0; k < n_; ++k) {
        Fiber& f = fibers_[order_ == Order::kHighFirst ? n_ - 1 - k : k];
        if (f.wait != Wait::kNone) continue;
        current_ = &f;
        threadIdx = f.tid;
        SwitchFiber(&scheduler_, &f.ctx);
        ran = true;
        if (order_ != Order::kRoundRobin) break;  // rescan from the first thread
      }
      if (!ran) Deadlock();
    }
  }

  [[noreturn]] void Deadlock() {
    int at_block = 0, at_warp = 0;
    const Fiber* first_warp = nullptr;
    for (const Fiber& f : fibers_) {
      if (f.wait == Wait::kBlock) ++at_block;
      if (f.wait == Wait::kWarp) {
        ++at_warp;
        if (first_warp == nullptr) first_warp = &f;
      }
    }
    Fail(first_warp != nullptr ? *first_warp : fibers_[0],
         "deadlock: " + std::to_string(at_block) + " threads wait at __syncthreads, " +
             std::to_string(at_warp) + " at a warp operation, " + std::to_string(exited_) +
             " have exited (a barrier not every thread reaches)");
  }

  LaunchConfig cfg_;
  void (*body_)(void*);
  void* ctx_;
  bool early_copies_;
  bool concurrent_ = false;
  std::chrono::steady_clock::time_point spin_since_{};
  Order order_;
  int n_ = 0;
  std::vector<Fiber> fibers_;
  std::vector<WarpState> warps_;
  std::vector<unsigned char> smem_;
  unsigned char* smem_base_ = nullptr;
  FiberContext scheduler_;
  Fiber* current_ = nullptr;
  int block_waiting_ = 0;
  int exited_ = 0;
};

Executor& Exec() {
  if (tls_executor == nullptr) {
    std::fprintf(stderr, "SIMT emulator: a device function called outside a kernel\n");
    std::abort();
  }
  return *tls_executor;
}

// The kernels only synchronise and shuffle whole warps; a partial mask is not emulated.
void RequireFullMask(unsigned mask, const char* op) {
  if (mask == 0xffffffffu) return;
  std::fprintf(stderr, "SIMT emulator: %s with lane mask 0x%08x: only full warps are emulated\n",
               op, mask);
  std::abort();
}

uint16_t Bf16Bits(uint32_t reg, int half) { return static_cast<uint16_t>(reg >> (16 * half)); }
float Bf16ToFloat(uint16_t bits) {
  const uint32_t u = uint32_t{bits} << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

cudaError_t CheckConfig(const LaunchConfig& c) {
  const uint64_t threads = uint64_t{c.block.x} * c.block.y * c.block.z;
  if (threads == 0 || c.grid.x == 0 || c.grid.y == 0 || c.grid.z == 0) {
    return cudaErrorInvalidConfiguration;
  }
  if (threads > 1024 || c.block.z > 64 || c.grid.y > 65535 || c.grid.z > 65535) {
    return cudaErrorInvalidConfiguration;
  }
  if (c.smem > FuncAttributes::Get().MaxDynamicSmem(c.func)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

}  // namespace

void RunGrid(const LaunchConfig& cfg, void (*body)(void*), void* ctx) {
  if (const cudaError_t err = CheckConfig(cfg); err != cudaSuccess) {
    emu::RecordLaunchError(err);
    return;
  }
  const int64_t total = int64_t(cfg.grid.x) * cfg.grid.y * cfg.grid.z;
  std::atomic<int64_t> next{0};
  const int64_t threads = std::min<int64_t>(BlockThreads(), total);
  if (threads <= 1) {
    Executor(cfg, body, ctx).Run(next, total, false);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < threads; ++t) {
    pool.emplace_back([&] { Executor(cfg, body, ctx).Run(next, total, true); });
  }
  for (std::thread& t : pool) t.join();
}

void SpinPause() { Exec().SpinPause(); }

void* DynamicSharedMemory() { return Exec().DynamicSmem(); }
void SyncThreads() { Exec().SyncThreads(); }

void SyncWarp(unsigned mask) {
  RequireFullMask(mask, "__syncwarp");
  Exec().WarpCollective(WarpOp::kSyncWarp, nullptr, 0, nullptr, 0, [](WarpState&) {});
}

void ShuffleXor(unsigned mask, void* value, size_t bytes, int lane_mask, int width) {
  struct In {
    unsigned char value[8];
    int lane_mask;
    int width;
  } in{};
  static_assert(sizeof(In) <= kSlotBytes);
  RequireFullMask(mask, "__shfl_xor_sync");
  std::memcpy(in.value, value, bytes);
  in.lane_mask = lane_mask;
  in.width = width;
  Exec().WarpCollective(WarpOp::kShuffle, &in, sizeof(in), value, bytes, [](WarpState& w) {
    for (int l = 0; l < w.lanes; ++l) {
      In self;
      std::memcpy(&self, w.in[l], sizeof(self));
      // Lanes stay inside their width-sized segment (PTX shfl.bfly with a segment mask).
      const int segment = l & ~(self.width - 1);
      const int src = segment | ((l ^ self.lane_mask) & (self.width - 1));
      const int from = src < w.lanes ? src : l;
      std::memcpy(w.out[l], reinterpret_cast<In*>(w.in[from])->value, 8);
    }
  });
}

uint32_t SharedAddress(const void* p) { return Exec().SharedOffset(p); }

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes 8j..8j+7 give the row addresses of
// matrix j (16 bytes each); lane l receives in r[j] the pair of row l/4, columns 2(l%4) and
// 2(l%4)+1 of matrix j (of its transpose with .trans), lower column in the low half.
void LdMatrixX4(uint32_t (&r)[4], uint32_t addr, bool trans) {
  struct In {
    uint32_t addr;
    uint32_t trans;
  } in{addr, trans ? 1u : 0u};
  Executor& e = Exec();
  e.SharedBytes(addr, 16, 16);  // this lane's row is in bounds
  const WarpOp op = trans ? WarpOp::kLdMatrixTrans : WarpOp::kLdMatrix;
  e.WarpCollective(op, &in, sizeof(in), r, sizeof(r), [](WarpState& w) {
    Executor& ex = Exec();
    for (int l = 0; l < 32; ++l) {
      uint32_t regs[4];
      for (int j = 0; j < 4; ++j) {
        uint16_t half[2];
        for (int h = 0; h < 2; ++h) {
          In row_in;
          uint32_t col;
          if (reinterpret_cast<In*>(w.in[0])->trans == 0) {
            std::memcpy(&row_in, w.in[8 * j + l / 4], sizeof(row_in));
            col = 2 * (l % 4) + h;
          } else {
            std::memcpy(&row_in, w.in[8 * j + 2 * (l % 4) + h], sizeof(row_in));
            col = l / 4;
          }
          std::memcpy(&half[h], ex.SharedBytes(row_in.addr, 16, 16) + 2 * col, 2);
        }
        regs[j] = uint32_t{half[0]} | (uint32_t{half[1]} << 16);
      }
      std::memcpy(w.out[l], regs, sizeof(regs));
    }
  });
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, lane l = 4 g + t:
//   A (16 x 16): a[0] = A[g][2t, 2t+1], a[1] = A[g+8][2t, 2t+1], a[2] = A[g][2t+8, 2t+9],
//                a[3] = A[g+8][2t+8, 2t+9]
//   B (16 x 8):  b0 = B[2t, 2t+1][g], b1 = B[2t+8, 2t+9][g]
//   C, D (16 x 8 fp32): d[0], d[1] = D[g][2t, 2t+1], d[2], d[3] = D[g+8][2t, 2t+1]
void MmaM16N8K16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  struct In {
    uint32_t a[4];
    uint32_t b[2];
    float c[4];
  } in{{a[0], a[1], a[2], a[3]}, {b0, b1}, {d[0], d[1], d[2], d[3]}};
  static_assert(sizeof(In) <= kSlotBytes);
  Exec().WarpCollective(WarpOp::kMma, &in, sizeof(in), d, sizeof(d), [](WarpState& w) {
    float A[16][16], B[16][8], C[16][8];
    for (int l = 0; l < 32; ++l) {
      In x;
      std::memcpy(&x, w.in[l], sizeof(x));
      const int g = l / 4, t = l % 4;
      for (int h = 0; h < 2; ++h) {
        A[g][2 * t + h] = Bf16ToFloat(Bf16Bits(x.a[0], h));
        A[g + 8][2 * t + h] = Bf16ToFloat(Bf16Bits(x.a[1], h));
        A[g][2 * t + 8 + h] = Bf16ToFloat(Bf16Bits(x.a[2], h));
        A[g + 8][2 * t + 8 + h] = Bf16ToFloat(Bf16Bits(x.a[3], h));
        B[2 * t + h][g] = Bf16ToFloat(Bf16Bits(x.b[0], h));
        B[2 * t + 8 + h][g] = Bf16ToFloat(Bf16Bits(x.b[1], h));
        C[g][2 * t + h] = x.c[h];
        C[g + 8][2 * t + h] = x.c[2 + h];
      }
    }
    for (int l = 0; l < 32; ++l) {
      const int g = l / 4, t = l % 4;
      float out[4];
      for (int i = 0; i < 4; ++i) {
        const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float s = 0.f;  // bf16 products are exact in fp32
        for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
        out[i] = C[row][col] + s;
      }
      std::memcpy(w.out[l], out, sizeof(out));
    }
  });
}

void CpAsync(uint32_t dst, const void* src, size_t bytes, bool valid) {
  Exec().CpAsync(dst, src, bytes, valid);
}
void CpAsyncCommit() { Exec().CpAsyncCommit(); }
void CpAsyncWait(int pending) { Exec().CpAsyncWait(pending); }

}  // namespace dyt::simt

// ---- the runtime calls about kernels (the rest is tests/cuda/emu/cuda_runtime_emu.cc) --------

extern "C" {

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || static_cast<size_t>(value) > dyt::simt::kMaxOptinSmem) {
      return cudaErrorInvalidValue;
    }
    dyt::simt::FuncAttributes::Get().SetMaxDynamicSmem(func, static_cast<size_t>(value));
  }
  return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void*) {
  std::memset(attr, 0, sizeof(*attr));
  attr->maxThreadsPerBlock = 1024;
  attr->numRegs = 32;
  attr->maxDynamicSharedSizeBytes = static_cast<int>(dyt::simt::kMaxStaticSmem);
  return cudaSuccess;
}

// Occupancy by threads and shared memory alone (sm_90: 2048 threads, 32 blocks, 228 KB).
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, const void*, int threads,
                                                          size_t smem) {
  if (threads <= 0) return cudaErrorInvalidValue;
  int n = std::min(32, 2048 / threads);
  if (smem > 0) n = std::min<int>(n, static_cast<int>(228 * 1024 / (smem + 1024)));
  *blocks = std::max(n, 0);
  return cudaSuccess;
}

cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks, const void* func,
                                                                   int threads, size_t smem,
                                                                   unsigned int) {
  return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, func, threads, smem);
}

// A small device (4 SMs), so persistent grids stride over many rows per block.
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  switch (attr) {
    case cudaDevAttrMultiProcessorCount:
      *value = 4;
      return cudaSuccess;
    case cudaDevAttrMaxThreadsPerMultiProcessor:
      *value = 2048;
      return cudaSuccess;
    case cudaDevAttrMaxBlocksPerMultiprocessor:
      *value = 32;
      return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = static_cast<int>(dyt::simt::kMaxOptinSmem);
      return cudaSuccess;
    default:
      return cudaErrorInvalidValue;
  }
}

}  // extern "C"
