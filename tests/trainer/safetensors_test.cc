#include "trainer/io/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace dyt {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "_" + std::to_string(::getpid()) + ".safetensors"))
      .string();
}

TEST(SafetensorsTest, RoundTripKeepsNamesShapesDtypesAndBytes) {
  const std::string path = TempPath("st_roundtrip");
  std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1e-3f};
  std::vector<int32_t> b = {4, 5, 6};
  SafetensorsWriter w;
  w.AddF32("layers.0.w", {2, 3}, a.data());
  w.Add("tokens", StDtype::kI32, {3}, b.data());
  w.SetMetadata("format", "dyt");
  ASSERT_TRUE(w.Write(path).ok());
  auto f = ReadSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->metadata.at("format"), "dyt");
  auto pa = f->F32("layers.0.w", 6);
  ASSERT_TRUE(pa.ok());
  EXPECT_EQ(std::vector<float>(*pa, *pa + 6), a);
  EXPECT_EQ(f->tensors.at("layers.0.w").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(f->tensors.at("tokens").dtype, StDtype::kI32);
  EXPECT_FALSE(f->F32("tokens", 3).ok());      // wrong dtype
  EXPECT_FALSE(f->F32("layers.0.w", 5).ok());  // wrong size
  EXPECT_EQ(f->F32("missing", 1).status().code(), StatusCode::kNotFound);
  std::filesystem::remove(path);
}

TEST(SafetensorsTest, RejectsTruncatedAndCorruptHeaders) {
  const std::string path = TempPath("st_bad");
  std::vector<float> a(100, 1.0f);
  SafetensorsWriter w;
  w.AddF32("x", {100}, a.data());
  ASSERT_TRUE(w.Write(path).ok());
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 4);
  auto f = ReadSafetensors(path);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("outside the file"), std::string::npos);

  {
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(10);
    io.write("}}}}", 4);
  }
  f = ReadSafetensors(path);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("not a JSON object"), std::string::npos);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace dyt
