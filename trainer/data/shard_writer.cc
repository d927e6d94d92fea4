#include "trainer/data/shard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "trainer/data/shard_format.h"

namespace dyt {
namespace {

// Tokens are copied to disk in host byte order; the format is little-endian.
static_assert(std::endian::native == std::endian::little, "dyt shards assume a little-endian host");

Status WriteAll(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return IoError("cannot write", path, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

// "<dir>/.<name>.tmp": a dot file, so that a shard glob ("shards/*") never matches the
// temporary file a killed writer leaves behind.
std::string TempPathFor(const std::string& path) {
  const size_t slash = path.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  return path.substr(0, base) + "." + path.substr(base) + ".tmp";
}

}  // namespace

StatusOr<std::unique_ptr<ShardWriter>> ShardWriter::Create(const std::string& path,
                                                           uint32_t vocab_size,
                                                           const std::string& tokenizer_id) {
  if (vocab_size < 1) return InvalidArgument("shard " + path + ": vocab_size must be >= 1");
  if (!IsValidTokenizerId(tokenizer_id)) {
    return InvalidArgument("shard " + path + ": tokenizer id must be 64 lowercase hex chars");
  }
  const std::string tmp = TempPathFor(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot create", tmp, errno);
  std::unique_ptr<ShardWriter> w(new ShardWriter(path, fd, vocab_size, tokenizer_id));
  // A zero header until Finish: its checksum is wrong, so a reader rejects a crashed write.
  const std::string zeros(kDytHeaderBytes, '\0');
  DYT_RETURN_IF_ERROR(WriteAll(fd, zeros.data(), zeros.size(), tmp));
  return w;
}

ShardWriter::ShardWriter(std::string path, int fd, uint32_t vocab_size, std::string tokenizer_id)
    : path_(std::move(path)),
      tmp_path_(TempPathFor(path_)),
      fd_(fd),
      vocab_size_(vocab_size),
      token_bytes_(TokenBytesForVocab(vocab_size)),
      tokenizer_id_(std::move(tokenizer_id)) {}

ShardWriter::~ShardWriter() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_path_.c_str());
  }
}

Status ShardWriter::Append(std::span<const int32_t> tokens) {
  if (fd_ < 0) return FailedPrecondition("shard " + path_ + ": Append after Finish");
  buffer_.resize(tokens.size() * token_bytes_);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t t = tokens[i];
    if (t < 0 || static_cast<uint32_t>(t) >= vocab_size_) {
      return InvalidArgument("shard " + path_ + ": token " + std::to_string(t) + " at position " +
                             std::to_string(count_ + i) + " is outside the vocabulary [0, " +
                             std::to_string(vocab_size_) + ")");
    }
    if (token_bytes_ == 2) {
      const uint16_t v = static_cast<uint16_t>(t);
      std::memcpy(&buffer_[2 * i], &v, 2);
    } else {
      const uint32_t v = static_cast<uint32_t>(t);
      std::memcpy(&buffer_[4 * i], &v, 4);
    }
  }
  DYT_RETURN_IF_ERROR(WriteAll(fd_, buffer_.data(), buffer_.size(), tmp_path_));
  count_ += tokens.size();
  return Status::Ok();
}

Status ShardWriter::Finish() {
  if (fd_ < 0) return FailedPrecondition("shard " + path_ + ": Finish called twice");
  DytShardHeader h;
  h.token_bytes = token_bytes_;
  h.token_count = count_;
  h.vocab_size = vocab_size_;
  h.tokenizer_id = tokenizer_id_;
  const std::string header = EncodeDytHeader(h);
  if (::pwrite(fd_, header.data(), header.size(), 0) != static_cast<ssize_t>(header.size())) {
    return IoError("cannot write header of", tmp_path_, errno);
  }
  if (::fsync(fd_) != 0) return IoError("cannot fsync", tmp_path_, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    ::unlink(tmp_path_.c_str());
    return IoError("cannot close", tmp_path_, errno);
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_path_.c_str());
    return IoError("cannot rename " + tmp_path_ + " to", path_, err);
  }
  return Status::Ok();
}

Status WriteShard(const std::string& path, std::span<const int32_t> tokens, uint32_t vocab_size,
                  const std::string& tokenizer_id) {
  DYT_ASSIGN_OR_RETURN(auto writer, ShardWriter::Create(path, vocab_size, tokenizer_id));
  DYT_RETURN_IF_ERROR(writer->Append(tokens));
  return writer->Finish();
}

}  // namespace dyt
