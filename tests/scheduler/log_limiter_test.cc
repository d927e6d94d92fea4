// LogLimiter: a flood of loggable refusals costs a bounded number of lines per window, and the
// first line after it says how many were left out.
#include "scheduler/log_limiter.h"

#include <gtest/gtest.h>

#include <thread>

namespace dyt {
namespace {

TEST(LogLimiterTest, AllowsAFewLinesPerWindowThenCountsTheRest) {
  LogLimiter limiter(3, std::chrono::milliseconds(200));
  std::string note = "stale";
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.Allow(&note) ? 1 : 0;
  EXPECT_EQ(allowed, 3);
  EXPECT_EQ(note, "");  // the third line: nothing was suppressed before it
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_TRUE(limiter.Allow(&note));
  EXPECT_EQ(note, " (7 similar lines suppressed before it)");
  ASSERT_TRUE(limiter.Allow(&note));
  EXPECT_EQ(note, "");
}

}  // namespace
}  // namespace dyt
