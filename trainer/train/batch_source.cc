#include "trainer/train/batch_source.h"

#include <algorithm>

#include "trainer/model/rng.h"

namespace dyt {
namespace {

// Random tokens: each window is seq_len + 1 uniform tokens, targets shifted by one. With
// repeat_batch the same batch comes back every call (a memorization test).
class SyntheticSource : public BatchSource {
 public:
  SyntheticSource(int vocab, int seq_len, uint64_t seed, bool repeat)
      : vocab_(vocab), T_(seq_len), seed_(seed), rng_(seed), repeat_(repeat) {}

  void Next(int batch, int32_t* inputs, int32_t* targets) override {
    if (repeat_) rng_.set_state(seed_);
    Fill(rng_, batch, inputs, targets);
  }
  int64_t num_val_batches(int) const override { return 4; }
  Status ValidationBatch(int64_t i, int batch, int32_t* inputs, int32_t* targets) override {
    Rng r(MixSeed(seed_ ^ 0x5eed, uint64_t(i)));
    Fill(r, batch, inputs, targets);
    return Status::Ok();
  }
  LoaderPosition position() const override { return {}; }
  uint64_t rng_state() const override { return rng_.state(); }
  Status Restore(const LoaderPosition&, uint64_t rng_state) override {
    rng_.set_state(rng_state);
    return Status::Ok();
  }
  std::string tokenizer_id() const override { return ""; }
  uint64_t num_train_tokens() const override { return 0; }

 private:
  void Fill(Rng& r, int batch, int32_t* inputs, int32_t* targets) const {
    for (int b = 0; b < batch; ++b) {
      int32_t prev = int32_t(r.NextBelow(uint64_t(vocab_)));
      for (int t = 0; t < T_; ++t) {
        const int32_t next = int32_t(r.NextBelow(uint64_t(vocab_)));
        inputs[b * T_ + t] = prev;
        targets[b * T_ + t] = next;
        prev = next;
      }
    }
  }

  int vocab_, T_;
  uint64_t seed_;
  Rng rng_;
  bool repeat_;
};

class ShardSource : public BatchSource {
 public:
  explicit ShardSource(std::unique_ptr<DataLoader> loader) : loader_(std::move(loader)) {}

  void Next(int batch, int32_t* inputs, int32_t* targets) override {
    loader_->NextBatch(batch, inputs, targets);
  }
  int64_t num_val_batches(int batch) const override { return loader_->num_val_batches(batch); }
  Status ValidationBatch(int64_t i, int batch, int32_t* inputs, int32_t* targets) override {
    return loader_->ValidationBatch(int(i), batch, inputs, targets);
  }
  LoaderPosition position() const override { return loader_->position(); }
  uint64_t rng_state() const override { return 0; }
  Status Restore(const LoaderPosition& position, uint64_t) override {
    return loader_->Restore(position);
  }
  std::string tokenizer_id() const override { return loader_->tokenizer_id(); }
  uint64_t num_train_tokens() const override { return loader_->num_train_tokens(); }

 private:
  std::unique_ptr<DataLoader> loader_;
};

}  // namespace

StatusOr<std::unique_ptr<BatchSource>> OpenBatchSource(const TrainConfig& config, int rank,
                                                       int world_size) {
  const DataSection& d = config.data;
  if (d.synthetic) {
    return std::unique_ptr<BatchSource>(
        new SyntheticSource(config.model.vocab_size, config.train.seq_len,
                            MixSeed(d.shards.seed, uint64_t(rank)), d.repeat_batch));
  }
  auto loader =
      DataLoader::Open(d.shards, config.train.seq_len, config.model.vocab_size, rank, world_size);
  if (!loader.ok()) return loader.status().WithContext("data");
  return std::unique_ptr<BatchSource>(new ShardSource(std::move(loader).value()));
}

}  // namespace dyt
