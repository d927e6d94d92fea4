#include "trainer/dist/file_kv_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace dyt::dist {
namespace {

using std::chrono::milliseconds;

// A fresh directory under the test's temp dir, removed at the end.
class FileKvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/dyt_kv_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = FileKvStore::Open(dir_ + "/store");  // Open creates missing directories
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

TEST_F(FileKvStoreTest, SetThenGetReturnsTheBytes) {
  const std::string value("nccl\0id\xff\x01", 9);  // binary, embedded zero
  ASSERT_TRUE(store_->Set("job1.attempt0.nccl_id", value).ok());
  auto got = store_->Get("job1.attempt0.nccl_id", milliseconds(0));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, value);
}

TEST_F(FileKvStoreTest, SetReplacesAnEarlierValue) {
  ASSERT_TRUE(store_->Set("k", "first").ok());
  ASSERT_TRUE(store_->Set("k", "second, longer").ok());
  auto got = store_->Get("k", milliseconds(0));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "second, longer");
}

TEST_F(FileKvStoreTest, EmptyValueIsAValue) {
  ASSERT_TRUE(store_->Set("empty", "").ok());
  auto got = store_->Get("empty", milliseconds(0));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "");
}

TEST_F(FileKvStoreTest, GetTimesOutNamingTheKey) {
  const auto start = std::chrono::steady_clock::now();
  auto got = store_->Get("job7.attempt2.nccl_id", milliseconds(150));
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(got.status().message().find("'job7.attempt2.nccl_id'"), std::string::npos)
      << got.status().ToString();
  EXPECT_NE(got.status().message().find(store_->dir()), std::string::npos);
  EXPECT_GE(waited, milliseconds(150));
  EXPECT_LT(waited, milliseconds(2000));
}

TEST_F(FileKvStoreTest, RejectsKeysThatAreNotPlainFileNames) {
  const std::vector<std::string> bad = {"",        "../escape", "a/b",
                                        ".hidden", "sp ace",    std::string(201, 'k')};
  for (const std::string& key : bad) {
    Status st = store_->Set(key, "v");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << "key '" << key << "'";
    EXPECT_EQ(store_->Get(key, milliseconds(0)).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(store_->Set("A-z_0.9", "v").ok());
}

TEST_F(FileKvStoreTest, OpenFailsOnAFile) {
  const std::string file = dir_ + "/plain_file";
  ASSERT_TRUE(store_->Set("x", "").ok());
  {
    FILE* f = fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    fclose(f);
  }
  auto store = FileKvStore::Open(file);
  EXPECT_FALSE(store.ok());
}

TEST_F(FileKvStoreTest, GetWaitsForAnotherThreadsSet) {
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(store_->Set("late", "arrived").ok());
  });
  auto got = store_->Get("late", milliseconds(10000));
  writer.join();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "arrived");
}

TEST_F(FileKvStoreTest, GetWaitsForAnotherProcessesSet) {
  // The child opens its own store on the same directory, as another rank would.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::this_thread::sleep_for(milliseconds(100));
    auto store = FileKvStore::Open(store_->dir());
    const bool ok = store.ok() && (*store)->Set("from_child", "rank1 says hi").ok() &&
                    (*store)->Get("from_parent", milliseconds(10000)).ok();
    ::_exit(ok ? 0 : 1);
  }
  auto got = store_->Get("from_child", milliseconds(10000));
  ASSERT_TRUE(store_->Set("from_parent", "ack").ok());
  int wstatus = 0;
  ASSERT_EQ(::waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "rank1 says hi");
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
}

TEST_F(FileKvStoreTest, ReadersNeverSeeAPartialValue) {
  // Two writers keep replacing one key with two different 256 KiB values; every read must be
  // one of them whole (rename is atomic), never a mix or a truncated file.
  const std::string a(256 * 1024, 'a');
  const std::string b(256 * 1024, 'b');
  ASSERT_TRUE(store_->Set("big", a).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> write_errors{0};
  auto writer = [&](const std::string& v) {
    while (!stop.load()) {
      if (!store_->Set("big", v).ok()) write_errors.fetch_add(1);
    }
  };
  std::thread wa(writer, std::cref(a)), wb(writer, std::cref(b));
  int reads = 0, bad = 0;
  const auto end = std::chrono::steady_clock::now() + milliseconds(300);
  while (std::chrono::steady_clock::now() < end) {
    auto got = store_->Get("big", milliseconds(1000));
    ++reads;
    if (!got.ok() || (*got != a && *got != b)) ++bad;
  }
  stop = true;
  wa.join();
  wb.join();
  EXPECT_GT(reads, 0);
  EXPECT_EQ(bad, 0) << "of " << reads << " reads";
  EXPECT_EQ(write_errors.load(), 0);
  // No temp files left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(store_->dir())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace dyt::dist
