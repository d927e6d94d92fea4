// Where training batches come from: token shards through the data loader, or synthetic
// random tokens (for tests and benchmarks that need no corpus).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "trainer/data/loader.h"
#include "trainer/train/train_config.h"

namespace dyt {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Fills inputs and targets [batch, seq_len] with the next training batch.
  virtual void Next(int batch, int32_t* inputs, int32_t* targets) = 0;
  // Validation batches available (0: none).
  virtual int64_t num_val_batches(int batch) const = 0;
  // The i-th fixed validation batch (the same on every call).
  virtual Status ValidationBatch(int64_t i, int batch, int32_t* inputs, int32_t* targets) = 0;

  // Where the source stands, for checkpoints: the loader position (shards) and the RNG state
  // (synthetic tokens). Restore() makes the following batches those the saved source would
  // have produced.
  virtual LoaderPosition position() const = 0;
  virtual uint64_t rng_state() const = 0;
  virtual Status Restore(const LoaderPosition& position, uint64_t rng_state) = 0;

  // The id of the tokenizer that encoded the tokens (data/loader.h); "" when unknown (synthetic
  // tokens, shards that record none). Checkpoints keep it so that dyt-generate and a resume can
  // check they are given the same tokenizer.
  virtual std::string tokenizer_id() const = 0;
  // Tokens of training data (0 for synthetic tokens): ranks of one run must read the same.
  virtual uint64_t num_train_tokens() const = 0;
};

// Opens the source the config asks for; for shards every check of the data loader (vocab,
// corruption, sizes) runs here, before training starts.
StatusOr<std::unique_ptr<BatchSource>> OpenBatchSource(const TrainConfig& config, int rank,
                                                       int world_size);

}  // namespace dyt
