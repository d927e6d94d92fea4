#include "trainer/dist/local_communicator.h"

#include <gtest/gtest.h>

#include <vector>

namespace dyt::dist {
namespace {

TEST(LocalCommunicatorTest, IsAWorldOfOneOnHostMemory) {
  LocalCommunicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.world_size(), 1);
  EXPECT_FALSE(comm.device_buffers());
  EXPECT_EQ(comm.native_stream(), nullptr);
  EXPECT_STREQ(comm.backend_name(), "local");
}

TEST(LocalCommunicatorTest, CollectivesAreTheIdentity) {
  LocalCommunicator comm;
  const std::vector<float> v = {1.5f, -2.f, 3.25f};
  std::vector<float> buf = v;
  ASSERT_TRUE(comm.AllReduce(buf.data(), buf.size(), ReduceOp::kSum).ok());
  EXPECT_EQ(buf, v);
  ASSERT_TRUE(comm.AllReduce(buf.data(), buf.size(), ReduceOp::kAvg).ok());
  EXPECT_EQ(buf, v);
  ASSERT_TRUE(comm.Broadcast(buf.data(), buf.size(), 0).ok());
  EXPECT_EQ(buf, v);
  std::vector<float> recv(3, -1.f);
  ASSERT_TRUE(comm.AllGather(v.data(), recv.data(), v.size()).ok());
  EXPECT_EQ(recv, v);
  recv.assign(3, -1.f);
  ASSERT_TRUE(comm.ReduceScatter(v.data(), recv.data(), v.size(), ReduceOp::kAvg).ok());
  EXPECT_EQ(recv, v);
  EXPECT_TRUE(comm.Barrier().ok());
}

TEST(LocalCommunicatorTest, RejectsBadArguments) {
  LocalCommunicator comm;
  float x = 1.f;
  EXPECT_EQ(comm.Broadcast(&x, 1, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.Broadcast(&x, 1, -1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(comm.AllReduce(nullptr, 4, ReduceOp::kSum).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(comm.AllReduce(nullptr, 0, ReduceOp::kSum).ok());
  EXPECT_EQ(comm.AllGather(&x, nullptr, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_STREQ(ReduceOpName(ReduceOp::kAvg), "avg");
}

}  // namespace
}  // namespace dyt::dist
