// NcclCommunicator at world size 1 (NCCL does not allow two ranks on one GPU, and the test
// machines have one), each collective checked against the value computed on the CPU; and the
// rendezvous timeout, which needs no GPU.
#include "trainer/dist/nccl_communicator.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "tests/cuda/test_util.h"
#include "trainer/dist/file_kv_store.h"

namespace dyt::dist {
namespace {

using cuda::test::DevArray;
using std::chrono::milliseconds;

class NcclCommunicatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/dyt_nccl_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = FileKvStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::unique_ptr<FileKvStore> store_;
};

// Runs without a GPU: a rank > 0 waits for rank 0's id and gives up, naming the key, before
// it touches the device.
TEST_F(NcclCommunicatorTest, RendezvousTimeoutNamesTheKey) {
  auto comm = NcclCommunicator::Create(*store_, "job9.attempt0.nccl_id", /*rank=*/1,
                                       /*world_size=*/2, nullptr, milliseconds(200));
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), StatusCode::kDeadlineExceeded) << comm.status().ToString();
  EXPECT_NE(comm.status().message().find("'job9.attempt0.nccl_id'"), std::string::npos)
      << comm.status().ToString();
}

TEST_F(NcclCommunicatorTest, RejectsBadRankAndKey) {
  EXPECT_EQ(NcclCommunicator::Create(*store_, "k", 2, 2, nullptr, milliseconds(0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(NcclCommunicator::Create(*store_, "k", 0, 0, nullptr, milliseconds(0)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      NcclCommunicator::Create(*store_, "a/b", 0, 1, nullptr, milliseconds(0)).status().code(),
      StatusCode::kInvalidArgument);
}

// The expected results of each collective, computed on the CPU from every rank's input
// (inputs[r] is rank r's buffer).
std::vector<float> CpuAllReduce(const std::vector<std::vector<float>>& inputs, ReduceOp op) {
  std::vector<float> out(inputs[0].size(), 0.f);
  for (const auto& in : inputs) {
    for (size_t i = 0; i < out.size(); ++i) out[i] += in[i];
  }
  if (op == ReduceOp::kAvg) {
    for (float& v : out) v /= static_cast<float>(inputs.size());
  }
  return out;
}

std::vector<float> CpuAllGather(const std::vector<std::vector<float>>& inputs) {
  std::vector<float> out;
  for (const auto& in : inputs) out.insert(out.end(), in.begin(), in.end());
  return out;
}

std::vector<float> CpuReduceScatter(const std::vector<std::vector<float>>& inputs, int rank,
                                    size_t n_per_rank, ReduceOp op) {
  const std::vector<float> all = CpuAllReduce(inputs, op);
  return std::vector<float>(all.begin() + rank * n_per_rank, all.begin() + (rank + 1) * n_per_rank);
}

TEST_F(NcclCommunicatorTest, CollectivesAtWorldSizeOne) {
  DYT_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  // A blocking stream: it orders after the legacy-stream copies DevArray makes.
  DYT_TEST_CUDA(cudaStreamCreate(&stream));
  auto made = NcclCommunicator::Create(*store_, "test.nccl_id", 0, 1, stream, milliseconds(5000));
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  std::unique_ptr<NcclCommunicator> owned = std::move(made).value();
  NcclCommunicator& comm = *owned;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.world_size(), 1);
  EXPECT_TRUE(comm.device_buffers());
  EXPECT_EQ(comm.stream(), stream);
  EXPECT_EQ(comm.native_stream(), static_cast<void*>(stream));
  // Rank 0 published the id for the others.
  auto id = store_->Get("test.nccl_id", milliseconds(0));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->size(), sizeof(ncclUniqueId));

  const uint64_t seed = cuda::test::TestSeed();
  SCOPED_TRACE(testing::Message() << "seed=" << seed);
  std::mt19937_64 rng(seed);
  const size_t n = 1001;  // odd on purpose
  const std::vector<float> v = cuda::test::RandomNonZero(rng, n, 0.1f, 10.f);
  const std::vector<std::vector<float>> inputs = {v};  // one rank
  auto sync = [&] { DYT_TEST_CUDA(cudaStreamSynchronize(stream)); };

  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
    DevArray<float> buf(v);
    DYT_ASSERT_OK(comm.AllReduce(buf.get(), n, op));
    sync();
    EXPECT_EQ(buf.Download(), CpuAllReduce(inputs, op)) << ReduceOpName(op);
  }
  {
    DevArray<float> buf(v);
    DYT_ASSERT_OK(comm.Broadcast(buf.get(), n, 0));
    sync();
    EXPECT_EQ(buf.Download(), v);
    EXPECT_EQ(comm.Broadcast(buf.get(), n, 1).code(), StatusCode::kInvalidArgument);
  }
  {
    DevArray<float> send(v), recv(n * comm.world_size());
    recv.Poison();
    DYT_ASSERT_OK(comm.AllGather(send.get(), recv.get(), n));
    sync();
    EXPECT_EQ(recv.Download(), CpuAllGather(inputs));
  }
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
    DevArray<float> send(v), recv(n);
    recv.Poison();
    DYT_ASSERT_OK(comm.ReduceScatter(send.get(), recv.get(), n, op));
    sync();
    EXPECT_EQ(recv.Download(), CpuReduceScatter(inputs, 0, n, op)) << ReduceOpName(op);
  }
  DYT_ASSERT_OK(comm.Barrier());
  EXPECT_EQ(comm.AllReduce(nullptr, 4, ReduceOp::kSum).code(), StatusCode::kInvalidArgument);
  // After Abort every collective refuses, naming why; destroying it afterwards is fine.
  comm.Abort();
  {
    DevArray<float> buf(v);
    const Status st = comm.AllReduce(buf.get(), n, ReduceOp::kSum);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("aborted"), std::string::npos) << st.ToString();
    EXPECT_EQ(comm.Barrier().code(), StatusCode::kFailedPrecondition);
  }
  owned.reset();  // the communicator goes before its stream
  DYT_TEST_CUDA(cudaStreamDestroy(stream));
}

}  // namespace
}  // namespace dyt::dist
