// dist_test_worker: one rank of the multi-process Gloo tests (dist_gloo_test.cc starts it
// directly or through dyt-launch). It learns its place from the DYT_* environment through
// DistEnvFromEnvironment / MakeHostCommunicator, like a real trainer.
//
//   dist_test_worker collectives OUTDIR
//       Runs every collective on data that makes the summation order matter, checks each
//       result bit for bit against the value computed here by summing all ranks' data in rank
//       order, and writes OUTDIR/rank<R>.bin (every result, for comparing ranks) and
//       OUTDIR/rank<R>.txt ("ok ..." or the first failure). Exit 0 when all checks pass.
//   dist_test_worker loop OUTDIR
//       After one AllReduce, writes OUTDIR/ready.<R> and runs AllReduce after AllReduce until
//       one fails (the test kills or stops a peer), then writes OUTDIR/fail.<R>: the status
//       code, CLOCK_MONOTONIC ms at the failure, the next call's code, and the message.
//       Exit 0 after a failure, 2 when 20 s pass without one.
#include <time.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/communicator.h"
#include "trainer/dist/make_communicator.h"

namespace {

using dyt::Status;
using dyt::dist::Communicator;
using dyt::dist::ReduceOp;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Rank `rank`'s input for test case `id`, element i: signs and exponents spread over 2^-10 to
// 2^10, so that summing in another order gives other bits.
float Value(int rank, uint32_t id, size_t i) {
  const uint64_t h = SplitMix64((static_cast<uint64_t>(rank) << 56) ^
                                (static_cast<uint64_t>(id) << 40) ^ static_cast<uint64_t>(i));
  const float mantissa = 1.0f + static_cast<float>(h & 0xFFFFFF) / 16777216.0f;
  const int exponent = static_cast<int>((h >> 24) % 21) - 10;
  return ((h >> 40) & 1 ? -1.0f : 1.0f) * std::ldexp(mantissa, exponent);
}

std::vector<float> Input(int rank, uint32_t id, size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = Value(rank, id, i);
  return v;
}

// The reference: element i summed over ranks in rank order, then divided for kAvg.
float Reduced(int world, uint32_t id, size_t i, ReduceOp op) {
  float acc = Value(0, id, i);
  for (int r = 1; r < world; ++r) acc += Value(r, id, i);
  return op == ReduceOp::kAvg ? acc / static_cast<float>(world) : acc;
}

int64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

class Checker {
 public:
  explicit Checker(std::string* results) : results_(results) {}

  // Compares `got` with `want`, recording `got` when it is the same on every rank; false and
  // a message on the first mismatch.
  bool Same(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
            bool record = true) {
    if (record) {
      results_->append(reinterpret_cast<const char*>(got.data()), got.size() * sizeof(float));
    }
    if (got.size() == want.size() &&
        (got.empty() || std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0)) {
      return true;
    }
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
      uint32_t a, b;
      std::memcpy(&a, &got[i], 4);
      std::memcpy(&b, &want[i], 4);
      if (a != b) {
        char buf[256];
        std::snprintf(buf, sizeof(buf), "%s: element %zu is %.9g (0x%08x), expected %.9g (0x%08x)",
                      what.c_str(), i, got[i], a, want[i], b);
        error_ = buf;
        return false;
      }
    }
    error_ =
        what + ": size " + std::to_string(got.size()) + ", expected " + std::to_string(want.size());
    return false;
  }
  bool Ok(const std::string& what, const Status& st) {
    if (st.ok()) return true;
    error_ = what + ": " + st.ToString();
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  std::string* results_;
  std::string error_;
};

// Returns "" when every check passed, else the first failure.
std::string RunCollectives(Communicator& comm, std::string* results, long* order_matters) {
  const int world = comm.world_size(), rank = comm.rank();
  Checker check(results);
  uint32_t id = 0;
  // Sizes: empty, smaller than the world, not divisible by it, and a few MB.
  const std::vector<size_t> sizes = {0, 1, 2, 1000, 100003, (1u << 20) + 7};
  for (size_t n : sizes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
      ++id;
      std::vector<float> buf = Input(rank, id, n), want(n);
      for (size_t i = 0; i < n; ++i) want[i] = Reduced(world, id, i, op);
      const std::string what = "AllReduce(" + std::string(dyt::dist::ReduceOpName(op)) +
                               ", n=" + std::to_string(n) + ")";
      if (!check.Ok(what, comm.AllReduce(buf.data(), n, op))) return check.error();
      if (!check.Same(what, buf, want)) return check.error();
      // Evidence that the data is a real test of the order: count elements whose sum in
      // another order (rotated, as a ring algorithm would add them) has other bits.
      if (op == ReduceOp::kSum && world > 2) {
        for (size_t i = 0; i < n; ++i) {
          float rotated = Value(1, id, i);
          for (int r = 2; r < world; ++r) rotated += Value(r, id, i);
          rotated += Value(0, id, i);
          if (rotated != want[i]) ++*order_matters;
        }
      }
    }
  }
  for (size_t n : {size_t{1}, size_t{5}, size_t{4099}, size_t{300000}}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
      ++id;
      const std::vector<float> send = Input(rank, id, n * world);
      std::vector<float> recv(n, -1.0f), want(n);
      for (size_t i = 0; i < n; ++i) want[i] = Reduced(world, id, rank * n + i, op);
      const std::string what = "ReduceScatter(" + std::string(dyt::dist::ReduceOpName(op)) +
                               ", n_per_rank=" + std::to_string(n) + ")";
      if (!check.Ok(what, comm.ReduceScatter(send.data(), recv.data(), n, op))) {
        return check.error();
      }
      // Each rank has its own shard: check it, then gather the shards (the same on every rank)
      // for the cross-rank comparison.
      if (!check.Same(what, recv, want, /*record=*/false)) return check.error();
      std::vector<float> full(n * world), want_full(n * world);
      for (size_t i = 0; i < n * world; ++i) want_full[i] = Reduced(world, id, i, op);
      if (!check.Ok(what + " gathered", comm.AllGather(recv.data(), full.data(), n))) {
        return check.error();
      }
      if (!check.Same(what + " gathered", full, want_full)) return check.error();
    }
  }
  for (size_t n : {size_t{1}, size_t{3}, size_t{4099}, size_t{300000}}) {
    ++id;
    const std::vector<float> send = Input(rank, id, n);
    std::vector<float> recv(n * world, -1.0f), want(n * world);
    for (int r = 0; r < world; ++r) {
      for (size_t i = 0; i < n; ++i) want[r * n + i] = Value(r, id, i);
    }
    const std::string what = "AllGather(n_per_rank=" + std::to_string(n) + ")";
    if (!check.Ok(what, comm.AllGather(send.data(), recv.data(), n))) return check.error();
    if (!check.Same(what, recv, want)) return check.error();
  }
  for (int root = 0; root < world; ++root) {
    for (size_t n : {size_t{1}, size_t{12345}}) {
      ++id;
      std::vector<float> buf = Input(rank, id, n);
      const std::vector<float> want = Input(root, id, n);
      const std::string what =
          "Broadcast(root=" + std::to_string(root) + ", n=" + std::to_string(n) + ")";
      if (!check.Ok(what, comm.Broadcast(buf.data(), n, root))) return check.error();
      if (!check.Same(what, buf, want)) return check.error();
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (!check.Ok("Barrier", comm.Barrier())) return check.error();
  }
  // Bad arguments are refused on every rank alike, without breaking the communicator.
  if (comm.Broadcast(nullptr, 0, world).code() != dyt::StatusCode::kInvalidArgument) {
    return "Broadcast with root == world_size was not INVALID_ARGUMENT";
  }
  std::vector<float> one = {static_cast<float>(rank + 1)};
  if (!check.Ok("AllReduce after a refused call", comm.AllReduce(one.data(), 1, ReduceOp::kSum))) {
    return check.error();
  }
  if (one[0] != static_cast<float>(world * (world + 1) / 2)) return "final AllReduce is wrong";
  return "";
}

int Collectives(Communicator& comm, const std::string& outdir) {
  std::string results;
  long order_matters = 0;
  const std::string error = RunCollectives(comm, &results, &order_matters);
  const std::string base = outdir + "/rank" + std::to_string(comm.rank());
  WriteFile(base + ".bin", results);
  if (!error.empty()) {
    WriteFile(base + ".txt", "FAIL " + error + "\n");
    std::fprintf(stderr, "dist_test_worker rank %d: %s\n", comm.rank(), error.c_str());
    return 1;
  }
  WriteFile(base + ".txt", "ok backend=" + std::string(comm.backend_name()) +
                               " world=" + std::to_string(comm.world_size()) +
                               " order_matters=" + std::to_string(order_matters) + "\n");
  return 0;
}

int Loop(Communicator& comm, const std::string& outdir) {
  const std::string r = std::to_string(comm.rank());
  std::vector<float> buf(1 << 16, 1.0f);
  Status st = comm.AllReduce(buf.data(), buf.size(), ReduceOp::kAvg);
  if (!st.ok()) {
    std::fprintf(stderr, "first AllReduce failed: %s\n", st.ToString().c_str());
    return 1;
  }
  WriteFile(outdir + "/ready." + r, "ready\n");
  const int64_t start = MonotonicMs();
  while (MonotonicMs() - start < 20000) {
    st = comm.AllReduce(buf.data(), buf.size(), ReduceOp::kAvg);
    if (st.ok()) continue;
    const int64_t failed_at = MonotonicMs();
    const Status next = comm.AllReduce(buf.data(), buf.size(), ReduceOp::kAvg);
    WriteFile(outdir + "/fail." + r,
              std::string(dyt::StatusCodeName(st.code())) + "\n" + std::to_string(failed_at) +
                  "\n" + dyt::StatusCodeName(next.code()) + "\n" + st.message() + "\n");
    return 0;
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: dist_test_worker collectives|loop OUTDIR\n");
    return 64;
  }
  const std::string mode = argv[1], outdir = argv[2];
  auto env = dyt::dist::DistEnvFromEnvironment();
  if (!env.ok()) {
    std::fprintf(stderr, "dist_test_worker: %s\n", env.status().ToString().c_str());
    return 65;
  }
  auto comm = dyt::dist::MakeHostCommunicator(*env);
  if (!comm.ok()) {
    std::fprintf(stderr, "dist_test_worker rank %d: %s\n", env->rank,
                 comm.status().ToString().c_str());
    WriteFile(outdir + "/create_failed." + std::to_string(env->rank), comm.status().ToString());
    return 66;
  }
  if (mode == "collectives") return Collectives(**comm, outdir);
  if (mode == "loop") return Loop(**comm, outdir);
  std::fprintf(stderr, "dist_test_worker: unknown mode '%s'\n", mode.c_str());
  return 64;
}
