// CheckpointDownload at the unit level: streams built from real files, fed in; sha256
// verification, .part resume, and refusing names and streams that do not match the manifest.
#include "services/cli/checkpoint_download.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/sha256.h"
#include "tests/common/temp_dir.h"

namespace dyt::cli {
namespace {

using ::dyt::testing::TempDir;
namespace fs = std::filesystem;

struct Fixture {
  std::vector<std::pair<std::string, std::string>> files = {
      {"model.safetensors", std::string(10000, 'm') + "tail"},
      {"empty.bin", ""},
      {"state.json", "{\"step\": 200}"},
  };
  // Sent after the listed files, like dyt-scheduler sends the checkpoint's manifest.json, which
  // the record does not list; its first message carries its size and sha256.
  std::pair<std::string, std::string> manifest = {"manifest.json", "{\"files\": []}"};
  v1::CheckpointRecord Record() const {
    v1::CheckpointRecord r;
    r.set_job_id("job-000000000001");
    r.set_step(200);
    for (const auto& [name, data] : files) {
      auto* f = r.add_files();
      f->set_name(name);
      f->set_size(static_cast<int64_t>(data.size()));
      f->set_sha256(Sha256Hex(data));
    }
    return r;
  }
  // The stream a server sends from `file` at `offset` on, in chunks of `chunk` bytes.
  std::vector<v1::DownloadCheckpointResponse> Stream(const std::string& start_file = "",
                                                     int64_t offset = 0, size_t chunk = 4096) {
    std::vector<v1::DownloadCheckpointResponse> out;
    bool started = start_file.empty();
    auto all = files;
    all.push_back(manifest);
    for (const auto& [name, data] : all) {
      if (!started && name != start_file) continue;
      int64_t at = started ? 0 : offset;
      started = true;
      bool first = true;
      do {
        v1::DownloadCheckpointResponse m;
        if (out.empty()) *m.mutable_checkpoint() = Record();
        m.set_file(name);
        m.set_offset(at);
        if (first) {
          m.set_file_size(static_cast<int64_t>(data.size()));
          m.set_sha256(Sha256Hex(data));
        }
        size_t n = std::min(chunk, data.size() - static_cast<size_t>(at));
        m.set_data(data.substr(static_cast<size_t>(at), n));
        at += static_cast<int64_t>(n);
        first = false;
        out.push_back(m);
      } while (at < static_cast<int64_t>(data.size()));
    }
    return out;
  }
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Status Feed(CheckpointDownload& d, const std::vector<v1::DownloadCheckpointResponse>& stream) {
  for (const auto& m : stream) DYT_RETURN_IF_ERROR(d.Consume(m));
  return d.Finish();
}

TEST(CheckpointDownloadTest, DownloadsAndVerifiesEveryFile) {
  TempDir dir;
  Fixture fx;
  CheckpointDownload d(dir.Join("out"), fx.Record());
  auto plan = d.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  EXPECT_FALSE(plan->complete);
  EXPECT_EQ(plan->file, "model.safetensors");
  EXPECT_EQ(plan->offset, 0);
  ASSERT_TRUE(Feed(d, fx.Stream()).ok());
  for (const auto& [name, data] : fx.files) {
    EXPECT_EQ(ReadAll(dir.Join("out/" + name)), data) << name;
    EXPECT_FALSE(fs::exists(dir.Join("out/" + name + ".part")));
  }
  EXPECT_EQ(ReadAll(dir.Join("out/manifest.json")), fx.manifest.second);
  EXPECT_EQ(d.bytes_received(), d.bytes_total());

  CheckpointDownload again(dir.Join("out"), fx.Record());
  auto done = again.Plan();
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->complete);
  EXPECT_EQ(done->files_kept, 3);
}

TEST(CheckpointDownloadTest, ResumesFromThePartFilesSize) {
  TempDir dir;
  Fixture fx;
  {
    CheckpointDownload d(dir.Join("out"), fx.Record());
    ASSERT_TRUE(d.Plan().ok());
    auto stream = fx.Stream("", 0, 1000);
    for (size_t i = 0; i < 4; ++i) ASSERT_TRUE(d.Consume(stream[i]).ok());
    // The connection breaks here: 4000 bytes of the model file are in its .part.
  }
  EXPECT_EQ(fs::file_size(dir.Join("out/model.safetensors.part")), 4000u);
  CheckpointDownload d(dir.Join("out"), fx.Record());
  auto plan = d.Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->file, "model.safetensors");
  EXPECT_EQ(plan->offset, 4000);
  EXPECT_EQ(plan->bytes_done, 4000);
  ASSERT_TRUE(Feed(d, fx.Stream("model.safetensors", 4000)).ok());
  EXPECT_EQ(ReadAll(dir.Join("out/model.safetensors")), fx.files[0].second);
  EXPECT_EQ(d.bytes_received(), d.bytes_total() - 4000);
}

// A symlink planted where a file (or its .part) goes is refused before anything is written:
// the pull appended checkpoint bytes to the link's target.
TEST(CheckpointDownloadTest, RefusesToWriteThroughASymlink) {
  TempDir dir;
  Fixture fx;
  fs::create_directories(dir.Join("out"));
  std::ofstream(dir.Join("victim.txt")) << "precious";
  for (const std::string name : {"model.safetensors.part", "state.json", "manifest.json.part"}) {
    fs::create_symlink(dir.Join("victim.txt"), dir.Join("out/" + name));
    CheckpointDownload d(dir.Join("out"), fx.Record());
    auto plan = d.Plan();
    EXPECT_EQ(plan.status().code(), StatusCode::kFailedPrecondition) << name;
    EXPECT_NE(plan.status().message().find(dir.Join("out/" + name) + " is a symbolic link"),
              std::string::npos)
        << plan.status().message();
    EXPECT_EQ(ReadAll(dir.Join("victim.txt")), "precious");
    fs::remove(dir.Join("out/" + name));
  }
}

TEST(CheckpointDownloadTest, KeepsCompleteFilesAndStartsAtTheFirstMissingOne) {
  TempDir dir;
  Fixture fx;
  fs::create_directories(dir.Join("out"));
  std::ofstream(dir.Join("out/model.safetensors"), std::ios::binary) << fx.files[0].second;
  std::ofstream(dir.Join("out/empty.bin"), std::ios::binary) << "";
  std::ofstream(dir.Join("out/state.json"), std::ios::binary) << "{\"step\": 999}";  // wrong
  CheckpointDownload d(dir.Join("out"), fx.Record());
  auto plan = d.Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->files_kept, 2);
  EXPECT_EQ(plan->file, "state.json");
  EXPECT_EQ(plan->offset, 0);
  ASSERT_TRUE(Feed(d, fx.Stream("state.json", 0)).ok());
  EXPECT_EQ(ReadAll(dir.Join("out/state.json")), fx.files[2].second);
}

TEST(CheckpointDownloadTest, FetchesAMissingManifestAfterCompleteFiles) {
  TempDir dir;
  Fixture fx;
  fs::create_directories(dir.Join("out"));
  for (const auto& [name, data] : fx.files) {
    std::ofstream(dir.Join("out/" + name), std::ios::binary) << data;
  }
  std::ofstream(dir.Join("out/manifest.json.part"), std::ios::binary) << "{\"fi";
  CheckpointDownload d(dir.Join("out"), fx.Record());
  auto plan = d.Plan();
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->complete);
  EXPECT_EQ(plan->file, "manifest.json");
  EXPECT_EQ(plan->offset, 4);
  ASSERT_TRUE(Feed(d, fx.Stream("manifest.json", 4)).ok());
  EXPECT_EQ(ReadAll(dir.Join("out/manifest.json")), fx.manifest.second);
}

TEST(CheckpointDownloadTest, ChecksumMismatchRemovesThePartFile) {
  TempDir dir;
  Fixture fx;
  auto record = fx.Record();
  CheckpointDownload d(dir.Join("out"), record);
  ASSERT_TRUE(d.Plan().ok());
  auto stream = fx.Stream();
  stream[1].mutable_data()->at(5) ^= 1;  // a flipped bit in the model file
  Status s = Feed(d, stream);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("file model.safetensors: sha256 mismatch"), std::string::npos)
      << s.message();
  EXPECT_FALSE(fs::exists(dir.Join("out/model.safetensors")));
  EXPECT_FALSE(fs::exists(dir.Join("out/model.safetensors.part")));
}

TEST(CheckpointDownloadTest, RefusesBadNamesFromTheServer) {
  for (const char* bad : {"../evil", "a/b", "..", ".", "", "x\\y"}) {
    Status s = CheckServerFileName(bad);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << bad;
    EXPECT_EQ(s.message().rfind("refusing file name '", 0), 0u) << s.message();
  }
  EXPECT_TRUE(CheckServerFileName("model.safetensors").ok());
  EXPECT_TRUE(CheckServerFileName("..hidden").ok());

  TempDir dir;
  Fixture fx;
  fx.files.push_back({"../escape", "x"});
  CheckpointDownload in_manifest(dir.Join("out"), fx.Record());
  auto plan = in_manifest.Plan();
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message(),
            "refusing file name '../escape' from the server: contains a path separator");
  EXPECT_FALSE(fs::exists(dir.path() + "/escape"));

  Fixture good;
  CheckpointDownload in_stream(dir.Join("out2"), good.Record());
  ASSERT_TRUE(in_stream.Plan().ok());
  v1::DownloadCheckpointResponse m;
  m.set_file("/etc/passwd");
  m.set_data("x");
  EXPECT_EQ(in_stream.Consume(m).code(), StatusCode::kDataLoss);
  m.set_file("other.bin");
  EXPECT_EQ(in_stream.Consume(m).message(),
            "the server sent file 'other.bin', which the checkpoint does not list, without its "
            "size and sha256");
}

TEST(CheckpointDownloadTest, RefusesStreamsThatDoNotAddUp) {
  TempDir dir;
  Fixture fx;
  {  // a gap inside a file
    CheckpointDownload d(dir.Join("a"), fx.Record());
    ASSERT_TRUE(d.Plan().ok());
    auto stream = fx.Stream("", 0, 1000);
    ASSERT_TRUE(d.Consume(stream[0]).ok());
    Status s = d.Consume(stream[2]);
    EXPECT_EQ(s.message(), "file model.safetensors: chunk at byte 2000, expected 1000");
  }
  {  // the stream ends early
    CheckpointDownload d(dir.Join("b"), fx.Record());
    ASSERT_TRUE(d.Plan().ok());
    auto stream = fx.Stream();
    stream.resize(stream.size() - 2);  // without state.json and manifest.json
    Status s = Feed(d, stream);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("the download ended before file state.json"), std::string::npos)
        << s.message();
  }
  {  // the stream's header disagrees with ListCheckpoints' manifest
    CheckpointDownload d(dir.Join("c"), fx.Record());
    ASSERT_TRUE(d.Plan().ok());
    auto stream = fx.Stream();
    stream[0].set_sha256(std::string(64, '0'));
    stream[0].clear_checkpoint();
    EXPECT_NE(d.Consume(stream[0]).message().find("disagree with the checkpoint's manifest"),
              std::string::npos);
  }
  {  // the checkpoint changed between ListCheckpoints and the download
    CheckpointDownload d(dir.Join("d"), fx.Record());
    ASSERT_TRUE(d.Plan().ok());
    auto stream = fx.Stream();
    stream[0].mutable_checkpoint()->set_step(300);
    EXPECT_EQ(d.Consume(stream[0]).code(), StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace dyt::cli
