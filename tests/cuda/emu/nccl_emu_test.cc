// The NCCL emulation itself (nccl_emu.cc): collectives compute what NCCL's would, and ranks that
// issue different collectives as their n-th call both fail, saying what differed, instead of
// hanging - the property the data-parallel tests built on it rely on.
#include <gtest/gtest.h>
#include <nccl.h>

#include <string>
#include <thread>
#include <vector>

namespace {

// Runs fn(rank, comm) on two ranks (threads) of one emulated group.
template <typename Fn>
void OnTwoRanks(Fn fn) {
  ncclUniqueId id;
  ASSERT_EQ(ncclGetUniqueId(&id), ncclSuccess);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      ncclComm_t comm = nullptr;
      ASSERT_EQ(ncclCommInitRank(&comm, 2, id, r), ncclSuccess);
      fn(r, comm);
      ncclCommDestroy(comm);
    });
  }
  for (auto& t : threads) t.join();
}

TEST(NcclEmulationTest, AllReduceAverageAndBroadcastComputeWhatNcclWould) {
  OnTwoRanks([](int r, ncclComm_t comm) {
    std::vector<float> v = {float(r + 1), float(10 * (r + 1))};  // rank 0: 1, 10; rank 1: 2, 20
    ASSERT_EQ(ncclAllReduce(v.data(), v.data(), 2, ncclFloat32, ncclAvg, comm, nullptr),
              ncclSuccess);
    EXPECT_EQ(v, (std::vector<float>{1.5f, 15.f}));
    std::vector<float> b = {float(r), float(r)};
    ASSERT_EQ(ncclBroadcast(b.data(), b.data(), 2, ncclFloat32, 1, comm, nullptr), ncclSuccess);
    EXPECT_EQ(b, (std::vector<float>{1.f, 1.f}));
  });
}

TEST(NcclEmulationTest, MismatchedCollectivesFailOnEveryRank) {
  OnTwoRanks([](int r, ncclComm_t comm) {
    std::vector<float> v(5, 1.f);
    const size_t count = r == 0 ? 4 : 5;
    EXPECT_EQ(ncclAllReduce(v.data(), v.data(), count, ncclFloat32, ncclSum, comm, nullptr),
              ncclInvalidUsage);
    EXPECT_NE(std::string(ncclGetLastError(comm)).find("differs between ranks"), std::string::npos)
        << ncclGetLastError(comm);
  });
}

}  // namespace
