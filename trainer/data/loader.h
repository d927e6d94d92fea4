// The training data loader: deterministic, shuffled, sharded across ranks, exactly resumable.
//
// Contract (what the trainer relies on):
//
// * Windows. The training shards are read as ONE token stream (in train_paths order; a window
//   may cross from one shard into the next, as it may cross an EOS inside a shard). Window w is
//   the T+1 tokens starting at w*T (T = seq_len): non-overlapping stride-T windows, the last
//   token of one window being the first of the next. inputs = window[0..T), targets =
//   window[1..T]. There are floor((tokens - 1) / T) windows; a final partial one is dropped.
// * Shuffle. Epoch e visits the windows in the order EpochPermutation(num_windows, seed, e)
//   (permutation.h: splitmix64 + Fisher–Yates, the same on every platform).
// * Ranks. Rank r of W takes permutation entries r, r+W, r+2W, ...: every rank gets
//   floor(num_windows / W) windows per epoch (so all ranks run the same number of steps), the
//   ranks' windows are disjoint, and together they cover the epoch but for at most W-1
//   windows. After the last window of an epoch the next call continues with epoch e+1.
// * Position. (epoch, index, seed): `index` is the next entry of this rank's share. It is the
//   same on every rank when all ranks call NextBatch with the same batch size, so a checkpoint
//   may store rank 0's. Restore(p) on a loader opened over the same data, seq_len and world
//   size makes the following batches identical to those of the loader that reported p.
// * Validation. Fixed windows of the validation tokens (val_paths, or the held-out tail of
//   the training stream: data_config.h), stride T as above, in order, optionally thinned
//   evenly to max_val_windows; rank r takes r, r+W, ... of them. ValidationBatch(i, B) always
//   returns the same windows for the same (i, B), so validation losses are comparable.
// * Validation at Open. Tokens must all be < the model's vocab_size (every token is scanned
//   once: a bad id would otherwise index out of the embedding table), shards must be intact,
//   and, when tokenizer_path is set, shards must record that tokenizer's id (without it, the
//   shards that record an id must all record the same). Each failure is a Status whose message
//   names the problem and the file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/data/data_config.h"
#include "trainer/data/token_shard.h"
#include "trainer/data/token_stream.h"

namespace dyt {

struct LoaderPosition {
  uint64_t epoch = 0;
  uint64_t index = 0;  // next window in this rank's share of the epoch's permutation
  uint64_t seed = 0;   // the shuffle seed; Restore adopts it
  bool operator==(const LoaderPosition&) const = default;
};

class DataLoader {
 public:
  // seq_len T >= 1; vocab_size: the model's; 0 <= rank < world_size. Fails (message names the
  // problem) on: no files or a missing file; an empty corpus; a truncated or corrupt shard;
  // a shard whose header vocab_size exceeds the model's, or a token id >= vocab_size ("vocab
  // mismatch"); too little data for one window per rank ("training data too short");
  // validation requested but shorter than one window per rank; a tokenizer id mismatch.
  static StatusOr<std::unique_ptr<DataLoader>> Open(const DataConfig& config, int seq_len,
                                                    int vocab_size, int rank, int world_size);

  // Fills inputs and targets, each [batch, seq_len] row-major int32, with this rank's next
  // `batch` windows, moving into the next epoch when this one runs out.
  void NextBatch(int batch, int32_t* inputs, int32_t* targets);

  LoaderPosition position() const { return position_; }
  // OUT_OF_RANGE when position.index >= windows_per_epoch() (the data, seq_len or world size
  // changed since the position was saved).
  Status Restore(const LoaderPosition& position);

  // Windows this rank reads per epoch.
  uint64_t windows_per_epoch() const { return windows_per_epoch_; }

  // This rank's validation windows; 0 when there is no validation data.
  int64_t num_val_windows() const { return static_cast<int64_t>(val_windows_.size()); }
  // Whole batches of validation windows available (a trailing partial batch is not served).
  int64_t num_val_batches(int batch) const { return batch > 0 ? num_val_windows() / batch : 0; }
  // Fills inputs/targets [batch, seq_len] with validation windows [batch_index * batch,
  // (batch_index + 1) * batch) of this rank; OUT_OF_RANGE past num_val_windows().
  Status ValidationBatch(int batch_index, int batch, int32_t* inputs, int32_t* targets) const;

  // The id of the tokenizer that encoded the data: tokenizer_path's when set, else the one id
  // the shards record ("" when none records one). Open refuses shards recording different ids.
  const std::string& tokenizer_id() const { return tokenizer_id_; }

  int seq_len() const { return seq_len_; }
  uint64_t num_train_tokens() const { return train_.size(); }
  uint64_t num_val_tokens() const { return val_.size(); }
  // One line for the log: tokens, shards, windows per epoch, validation windows.
  std::string Summary() const;

 private:
  DataLoader() = default;
  Status Init(const DataConfig& config, int vocab_size);
  // `configured` (tokenizer_path's id) if set, else the shards' one recorded id.
  StatusOr<std::string> CommonTokenizerId(const std::string& configured) const;
  // Rebuilds this rank's share of the permutation when the epoch or seed changed.
  void EnsurePermutation();
  void ReadWindow(const TokenStream& stream, uint64_t window, int32_t* inputs,
                  int32_t* targets) const;

  int seq_len_ = 0;
  int rank_ = 0;
  int world_size_ = 1;
  std::vector<std::unique_ptr<TokenShard>> train_shards_;
  std::vector<std::unique_ptr<TokenShard>> val_shards_;
  TokenStream train_;
  TokenStream val_;
  uint64_t total_windows_ = 0;      // training windows, all ranks
  uint64_t windows_per_epoch_ = 0;  // this rank's
  std::vector<uint64_t> val_windows_;
  std::string tokenizer_id_;

  LoaderPosition position_;
  bool have_permutation_ = false;
  LoaderPosition permutation_for_;      // epoch and seed rank_windows_ was built for
  std::vector<uint64_t> rank_windows_;  // this rank's share of the epoch's permutation
};

}  // namespace dyt
