#include "trainer/data/loader.h"

#include <glob.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/logging.h"
#include "common/same_file.h"
#include "trainer/data/permutation.h"
#include "trainer/data/tokenizer.h"

namespace dyt {
namespace {

bool IsGlobPattern(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

StatusOr<std::vector<std::string>> ExpandPaths(const std::vector<std::string>& entries,
                                               const std::string& field) {
  std::vector<std::string> out;
  for (const std::string& entry : entries) {
    if (!IsGlobPattern(entry)) {
      out.push_back(entry);
      continue;
    }
    glob_t g{};
    const int rc = ::glob(entry.c_str(), 0, nullptr, &g);  // glob sorts its matches
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    }
    ::globfree(&g);
    if (rc != 0)
      return NotFound(field + ": pattern '" + entry + "' matches no files" + RelativeNote(entry));
  }
  return out;
}

// Opens shards and checks each against the model and tokenizer: the checks that keep bad
// data from reaching the embedding lookup.
StatusOr<std::vector<std::unique_ptr<TokenShard>>> OpenShards(const std::vector<std::string>& paths,
                                                              ShardFormat format, int vocab_size,
                                                              const std::string& tokenizer_path,
                                                              const std::string& tokenizer_id) {
  std::vector<std::unique_ptr<TokenShard>> shards;
  for (const std::string& path : paths) {
    DYT_ASSIGN_OR_RETURN(auto shard, TokenShard::Open(path, format));
    if (shard->vocab_size() > static_cast<uint32_t>(vocab_size)) {
      return InvalidArgument("vocab mismatch: shard " + path +
                             " was written for a tokenizer with vocab_size " +
                             std::to_string(shard->vocab_size()) +
                             ", larger than the model's vocab_size " + std::to_string(vocab_size));
    }
    if (!tokenizer_id.empty()) {
      if (shard->tokenizer_id().empty()) {
        spdlog::warn("data: shard {} records no tokenizer id; cannot check it against {}", path,
                     tokenizer_path);
      } else if (shard->tokenizer_id() != tokenizer_id) {
        return InvalidArgument("tokenizer mismatch: shard " + path +
                               " was encoded with tokenizer " + shard->tokenizer_id() +
                               " but tokenizer_path " + tokenizer_path + " has id " + tokenizer_id);
      }
    }
    if (auto bad = shard->FirstTokenAtLeast(static_cast<uint64_t>(vocab_size))) {
      return InvalidArgument("vocab mismatch: shard " + path + " has token id " +
                             std::to_string((*shard)[*bad]) + " at position " +
                             std::to_string(*bad) + ", outside the model's vocab_size " +
                             std::to_string(vocab_size));
    }
    shards.push_back(std::move(shard));
  }
  return shards;
}

// INVALID_ARGUMENT unless every path resolves (symlinks followed) under one of `roots`; nothing
// to check without roots. A path matched by a glob or reached through a symlink is checked as
// what it really is.
Status CheckUnderRoots(const std::vector<std::string>& paths, const std::string& field,
                       const std::vector<std::string>& roots) {
  if (roots.empty()) return Status::Ok();
  std::vector<std::string> resolved_roots;
  for (const std::string& root : roots) {
    char* real = ::realpath(root.c_str(), nullptr);
    if (real == nullptr) return InvalidArgument("roots: " + root + ": " + std::strerror(errno));
    resolved_roots.emplace_back(real);
    std::free(real);
  }
  for (const std::string& path : paths) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) continue;  // opening it reports the error
    const std::string resolved(real);
    std::free(real);
    const bool under = std::any_of(resolved_roots.begin(), resolved_roots.end(), [&](auto& r) {
      return r == "/" || resolved == r || resolved.rfind(r + "/", 0) == 0;
    });
    if (!under) {
      std::string list;
      for (const std::string& r : roots) list += (list.empty() ? "" : ", ") + r;
      return InvalidArgument(field + ": " + path + " resolves to " + resolved +
                             ", outside the data roots (" + list + ")");
    }
  }
  return Status::Ok();
}

uint64_t CountWindows(uint64_t tokens, int seq_len) {
  return tokens > static_cast<uint64_t>(seq_len) ? (tokens - 1) / seq_len : 0;
}

}  // namespace

StatusOr<std::unique_ptr<DataLoader>> DataLoader::Open(const DataConfig& config, int seq_len,
                                                       int vocab_size, int rank, int world_size) {
  if (seq_len < 1) return InvalidArgument("data loader: seq_len must be >= 1");
  if (vocab_size < 1) return InvalidArgument("data loader: vocab_size must be >= 1");
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    return InvalidArgument("data loader: rank " + std::to_string(rank) + " is not in [0, " +
                           std::to_string(world_size) + ")");
  }
  std::unique_ptr<DataLoader> loader(new DataLoader());
  loader->seq_len_ = seq_len;
  loader->rank_ = rank;
  loader->world_size_ = world_size;
  loader->position_.seed = config.seed;
  DYT_RETURN_IF_ERROR(loader->Init(config, vocab_size));
  return loader;
}

StatusOr<std::string> DataLoader::CommonTokenizerId(const std::string& configured) const {
  if (!configured.empty()) return configured;  // OpenShards checked every shard against it
  const TokenShard* first = nullptr;
  for (const auto* shards : {&train_shards_, &val_shards_}) {
    for (const auto& shard : *shards) {
      if (shard->tokenizer_id().empty()) continue;
      if (first == nullptr) {
        first = shard.get();
      } else if (shard->tokenizer_id() != first->tokenizer_id()) {
        return InvalidArgument("tokenizer mismatch: shard " + first->path() +
                               " was encoded with tokenizer " + first->tokenizer_id() +
                               " but shard " + shard->path() + " with tokenizer " +
                               shard->tokenizer_id() + "; they cannot be trained on together");
      }
    }
  }
  return first ? first->tokenizer_id() : std::string();
}

Status DataLoader::Init(const DataConfig& config, int vocab_size) {
  if (config.train_paths.empty()) return InvalidArgument("no training files: train_paths is empty");
  if (!(config.val_fraction >= 0 && config.val_fraction < 1)) {
    return InvalidArgument("val_fraction must be in [0, 1) (got " +
                           std::to_string(config.val_fraction) + ")");
  }
  if (config.val_fraction > 0 && !config.val_paths.empty()) {
    return InvalidArgument("set val_paths or val_fraction, not both");
  }
  if (config.max_val_windows < 0) return InvalidArgument("max_val_windows must be >= 0");
  DYT_ASSIGN_OR_RETURN(const ShardFormat format, ParseShardFormat(config.format));
  std::string tokenizer_id;
  if (!config.tokenizer_path.empty()) {
    DYT_RETURN_IF_ERROR(CheckUnderRoots({config.tokenizer_path}, "tokenizer_path", config.roots));
    DYT_ASSIGN_OR_RETURN(tokenizer_id, TokenizerFileId(config.tokenizer_path));
  }
  DYT_ASSIGN_OR_RETURN(auto train_paths, ExpandPaths(config.train_paths, "train_paths"));
  DYT_ASSIGN_OR_RETURN(auto val_paths, ExpandPaths(config.val_paths, "val_paths"));
  DYT_RETURN_IF_ERROR(CheckUnderRoots(train_paths, "train_paths", config.roots));
  DYT_RETURN_IF_ERROR(CheckUnderRoots(val_paths, "val_paths", config.roots));
  DYT_ASSIGN_OR_RETURN(train_shards_, OpenShards(train_paths, format, vocab_size,
                                                 config.tokenizer_path, tokenizer_id));
  DYT_ASSIGN_OR_RETURN(
      val_shards_, OpenShards(val_paths, format, vocab_size, config.tokenizer_path, tokenizer_id));
  DYT_ASSIGN_OR_RETURN(tokenizer_id_, CommonTokenizerId(tokenizer_id));

  uint64_t total = 0;
  for (const auto& s : train_shards_) total += s->size();
  if (total == 0) {
    return InvalidArgument("empty corpus: the " + std::to_string(train_shards_.size()) +
                           " training shard(s) hold no tokens");
  }
  // The held-out tail, if any, is cut at a token boundary, possibly inside a shard.
  const uint64_t held_out =
      static_cast<uint64_t>(std::ceil(config.val_fraction * static_cast<double>(total)));
  const uint64_t train_tokens = total - std::min(held_out, total);
  uint64_t seen = 0;
  for (const auto& s : train_shards_) {
    const uint64_t in_train = std::min(s->size(), train_tokens - std::min(seen, train_tokens));
    train_.Append(s.get(), 0, in_train);
    val_.Append(s.get(), in_train, s->size() - in_train);
    seen += s->size();
  }
  for (const auto& s : val_shards_) val_.Append(s.get(), 0, s->size());

  const uint64_t world = static_cast<uint64_t>(world_size_);
  total_windows_ = CountWindows(train_.size(), seq_len_);
  windows_per_epoch_ = total_windows_ / world;
  if (windows_per_epoch_ == 0) {
    return InvalidArgument(
        "training data too short: seq_len " + std::to_string(seq_len_) + " needs windows of " +
        std::to_string(seq_len_ + 1) + " tokens and " + std::to_string(world_size_) +
        " rank(s) need at least one window each (" + std::to_string(world * seq_len_ + 1) +
        " tokens), but the training data has " + std::to_string(train_.size()) + " tokens");
  }

  const bool want_val = !val_shards_.empty() || config.val_fraction > 0;
  const uint64_t val_total = CountWindows(val_.size(), seq_len_);
  const uint64_t n_val =
      config.max_val_windows > 0
          ? std::min<uint64_t>(val_total, static_cast<uint64_t>(config.max_val_windows))
          : val_total;
  if (want_val && n_val / world == 0) {
    return InvalidArgument("validation data too short: seq_len " + std::to_string(seq_len_) +
                           " and " + std::to_string(world_size_) + " rank(s) need at least " +
                           std::to_string(world * seq_len_ + 1) +
                           " validation tokens, but there are " + std::to_string(val_.size()));
  }
  // Spread the chosen windows evenly: window k of n is floor(k * val_total / n), computed
  // without overflowing 64 bits.
  for (uint64_t j = 0; n_val > 0 && j < n_val / world; ++j) {
    const uint64_t k = j * world + static_cast<uint64_t>(rank_);
    val_windows_.push_back(k * (val_total / n_val) + k * (val_total % n_val) / n_val);
  }
  EnsurePermutation();
  return Status::Ok();
}

void DataLoader::EnsurePermutation() {
  if (have_permutation_ && permutation_for_.epoch == position_.epoch &&
      permutation_for_.seed == position_.seed) {
    return;
  }
  const std::vector<uint64_t> perm =
      EpochPermutation(total_windows_, position_.seed, position_.epoch);
  rank_windows_.resize(windows_per_epoch_);
  for (uint64_t k = 0; k < windows_per_epoch_; ++k) {
    rank_windows_[k] = perm[k * world_size_ + rank_];
  }
  permutation_for_ = position_;
  have_permutation_ = true;
}

void DataLoader::ReadWindow(const TokenStream& stream, uint64_t window, int32_t* inputs,
                            int32_t* targets) const {
  const uint64_t start = window * static_cast<uint64_t>(seq_len_);
  stream.Read(start, seq_len_, inputs);
  stream.Read(start + 1, seq_len_, targets);
}

void DataLoader::NextBatch(int batch, int32_t* inputs, int32_t* targets) {
  for (int b = 0; b < batch; ++b) {
    EnsurePermutation();
    const size_t row = static_cast<size_t>(b) * seq_len_;
    ReadWindow(train_, rank_windows_[position_.index], inputs + row, targets + row);
    if (++position_.index == windows_per_epoch_) {
      position_.index = 0;
      ++position_.epoch;
    }
  }
}

Status DataLoader::Restore(const LoaderPosition& position) {
  if (position.index >= windows_per_epoch_) {
    return Status(StatusCode::kOutOfRange,
                  "loader position index " + std::to_string(position.index) +
                      " is past this rank's " + std::to_string(windows_per_epoch_) +
                      " windows per epoch (did the data, seq_len or world size change?)");
  }
  position_ = position;
  EnsurePermutation();
  return Status::Ok();
}

Status DataLoader::ValidationBatch(int batch_index, int batch, int32_t* inputs,
                                   int32_t* targets) const {
  const int64_t first = static_cast<int64_t>(batch_index) * batch;
  if (batch < 1 || batch_index < 0 || first + batch > num_val_windows()) {
    return Status(StatusCode::kOutOfRange,
                  "validation batch " + std::to_string(batch_index) + " of size " +
                      std::to_string(batch) + " is past this rank's " +
                      std::to_string(num_val_windows()) + " validation windows");
  }
  for (int b = 0; b < batch; ++b) {
    const size_t row = static_cast<size_t>(b) * seq_len_;
    ReadWindow(val_, val_windows_[first + b], inputs + row, targets + row);
  }
  return Status::Ok();
}

std::string DataLoader::Summary() const {
  return "train " + std::to_string(train_.size()) + " tokens in " +
         std::to_string(train_shards_.size()) + " shard(s), " + std::to_string(total_windows_) +
         " windows of " + std::to_string(seq_len_ + 1) + " tokens, " +
         std::to_string(windows_per_epoch_) + " per rank per epoch (rank " + std::to_string(rank_) +
         " of " + std::to_string(world_size_) + "); val " + std::to_string(val_.size()) +
         " tokens, " + std::to_string(num_val_windows()) + " windows on this rank";
}

}  // namespace dyt
