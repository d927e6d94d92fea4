// dyt-generate: samples text from a trained checkpoint.
//
//   dyt-generate --checkpoint DIR | --store STORE  --tokenizer tokenizer.model
//                [--prompt TEXT] [--max-tokens 200] [--temperature 0.8] [--top-k 0]
//                [--top-p 1.0] [--seed 1]
//
// Generation runs token by token with a KV cache (trainer/cpu/llama_decoder.h). When the
// context reaches the model's max_seq_len, the cache is rebuilt from the most recent half of
// the text and generation goes on. --tokenizer must be the tokenizer the training data was
// encoded with (its id, recorded in the checkpoint, is checked). Exit codes: 0 ok, 1 failure,
// 2 bad arguments.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/command_line.h"
#include "common/logging.h"
#include "trainer/checkpoint/checkpoint_reader.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/cpu/llama_decoder.h"
#include "trainer/data/tokenizer.h"
#include "trainer/model/rng.h"

int main(int argc, char** argv) {
  CLI::App app{"dyt-generate: sample text from a dyt checkpoint"};
  std::string checkpoint, store, tokenizer_path, prompt;
  int max_tokens = 200;
  dyt::SamplingOptions opt;
  int64_t seed = 1;
  auto* src = app.add_option_group("source");
  src->add_option("--checkpoint", checkpoint, "a checkpoint directory (step-XXXXXXXX)");
  src->add_option("--store", store, "an artifact store: its newest good checkpoint");
  src->require_option(1);
  app.add_option("--tokenizer", tokenizer_path, "sentencepiece model of the training data")
      ->required();
  app.add_option("--prompt", prompt, "text to continue (default: start of a document)");
  app.add_option("--max-tokens", max_tokens, "tokens to generate")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--temperature", opt.temperature, "0 = greedy")
      ->check(dyt::NumberIn(0.0, 100.0))
      ->capture_default_str();
  app.add_option("--top-k", opt.top_k, "keep the k most likely tokens (0 = all)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  // 0 kept no token at all (greedy in effect, silently): the smallest mass is above 0.
  app.add_option("--top-p", opt.top_p, "nucleus sampling mass, in (0, 1] (1 = off)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            char* end = nullptr;
            const double v = std::strtod(text.c_str(), &end);
            return (end != text.c_str() && *end == '\0' && v > 0 && v <= 1)
                       ? ""
                       : "must be a number in (0, 1]: above 0 (0 would keep no token), 1 = off";
          },
          "(0, 1]"))
      ->capture_default_str();
  app.add_option("--seed", seed,
                 "sampling seed: the same seed, checkpoint and options give the same text")
      ->capture_default_str();
  if (auto exit = dyt::ParseCommandLine(app, argc, argv)) return *exit;
  dyt::InitLogging("dyt-generate", "warn");

  dyt::StatusOr<dyt::CheckpointState> state = dyt::NotFound("no checkpoint");
  if (!store.empty()) {
    auto point = dyt::FindLatestGood(store, nullptr);
    if (!point.ok()) {
      std::cerr << "dyt-generate: " << point.status().ToString() << "\n";
      return 1;
    }
    for (const auto& w : point->warnings) std::cerr << "dyt-generate: warning: " << w << "\n";
    state = std::move(point->state);
  } else {
    state = dyt::LoadCheckpoint(checkpoint, nullptr, dyt::CheckpointUse::kWeights);
  }
  if (!state.ok()) {
    std::cerr << "dyt-generate: " << state.status().ToString();
    std::error_code ec;
    if (store.empty() && std::filesystem::exists(checkpoint + "/latest", ec)) {
      std::cerr << " (" << checkpoint << " is a store of checkpoints: --store " << checkpoint
                << " takes its newest good one)";
    }
    std::cerr << "\n";
    return 1;
  }
  auto config = dyt::ModelConfigFromJson(state->model_config_json);
  auto tok = dyt::LoadTokenizer(tokenizer_path);
  if (!config.ok() || !tok.ok()) {
    std::cerr << "dyt-generate: " << (config.ok() ? tok.status() : config.status()).ToString()
              << "\n";
    return 1;
  }
  const std::string& trained_on = state->meta.tokenizer_id;
  if (trained_on.empty()) {
    std::cerr << "dyt-generate: warning: the checkpoint does not record the tokenizer of its "
                 "training data; cannot check --tokenizer\n";
  } else if ((*tok)->id() != trained_on) {
    std::cerr << "dyt-generate: --tokenizer: " << tokenizer_path << " has id " << (*tok)->id()
              << ", but the model was trained on data of tokenizer " << trained_on
              << " (pass the tokenizer.model the training data was encoded with)\n";
    return 2;
  }
  if ((*tok)->vocab_size() > config->vocab_size) {
    std::cerr << "dyt-generate: --tokenizer: vocabulary of " << (*tok)->vocab_size()
              << " tokens does not fit the model's " << config->vocab_size << "\n";
    return 2;
  }

  const std::vector<int32_t> prompt_ids = (*tok)->Encode(prompt);
  std::vector<int32_t> context = prompt_ids;
  if (context.empty()) context.push_back((*tok)->eos_id());  // a document boundary
  dyt::LlamaDecoder decoder(*config, state->params.data(), config->max_seq_len);
  dyt::Rng rng{static_cast<uint64_t>(seed)};
  std::vector<float> logits(config->vocab_size);
  std::vector<int32_t> generated;
  size_t fed = 0;  // tokens of `context` already in the cache
  for (int i = 0; i < max_tokens; ++i) {
    if (decoder.position() + (context.size() - fed) > size_t(decoder.max_len())) {
      // The window is full: keep the most recent half and rebuild the cache from it.
      const size_t keep = std::max<size_t>(1, size_t(decoder.max_len()) / 2);
      context.erase(context.begin(), context.end() - keep);
      decoder.Reset();
      fed = 0;
    }
    const float* out = nullptr;
    for (; fed < context.size(); ++fed) out = decoder.Step(context[fed]);
    std::copy(out, out + config->vocab_size, logits.begin());
    const int32_t next = dyt::SampleToken(logits.data(), config->vocab_size, opt, rng);
    if (next == (*tok)->eos_id()) break;
    generated.push_back(next);
    context.push_back(next);
  }
  std::cout << prompt << dyt::DecodeContinuation(**tok, prompt_ids, generated) << std::endl;
  return 0;
}
