// dyt-data: train a tokenizer, encode text into token shards, inspect and decode shards.
//
//   dyt-data train-tokenizer --input kjv.txt --model-prefix out/tokenizer --vocab-size 4096
//   dyt-data encode --tokenizer out/tokenizer.model --input kjv.txt --output out/train.bin
//                   --val-output out/val.bin --val-fraction 0.02 [--strict-utf8]
//   dyt-data stats out/train.bin out/val.bin
//   dyt-data decode --tokenizer out/tokenizer.model out/val.bin --count 200
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "common/command_line.h"
#include "common/logging.h"
#include "common/same_file.h"
#include "trainer/data/corpus_encoder.h"
#include "trainer/data/token_shard.h"
#include "trainer/data/token_stats.h"
#include "trainer/data/tokenizer.h"

namespace dyt {
namespace {

Status RunTrainTokenizer(const TokenizerTrainOptions& options) {
  std::vector<NamedPath> inputs;
  for (const std::string& in : options.input_files) inputs.push_back({"--input", in});
  for (const char* ext : {".model", ".vocab"}) {
    DYT_RETURN_IF_ERROR(CheckOutputFile({"--model-prefix", options.model_prefix + ext}));
    DYT_RETURN_IF_ERROR(RefuseSameFile({"--model-prefix", options.model_prefix + ext}, inputs));
  }
  DYT_RETURN_IF_ERROR(TrainTokenizer(options));
  const std::string model = options.model_prefix + ".model";
  DYT_ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(model));
  std::printf("tokenizer %s: vocab_size %d, bos %d, eos %d, id %s\n", model.c_str(),
              tokenizer->vocab_size(), tokenizer->bos_id(), tokenizer->eos_id(),
              tokenizer->id().c_str());
  return Status::Ok();
}

Status RunEncode(const std::string& tokenizer_path, const EncodeOptions& options) {
  // Before any work: an output over an input (or over the other output) would be lost.
  std::vector<NamedPath> inputs = {{"--tokenizer", tokenizer_path}};
  for (const std::string& in : options.input_files) inputs.push_back({"--input", in});
  DYT_RETURN_IF_ERROR(CheckOutputFile({"--output", options.output}));
  DYT_RETURN_IF_ERROR(RefuseSameFile({"--output", options.output}, inputs));
  if (!options.val_output.empty()) {
    DYT_RETURN_IF_ERROR(CheckOutputFile({"--val-output", options.val_output}));
    inputs.push_back({"--output", options.output});
    DYT_RETURN_IF_ERROR(RefuseSameFile({"--val-output", options.val_output}, inputs));
  }
  DYT_ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(tokenizer_path));
  DYT_ASSIGN_OR_RETURN(EncodeResult r, EncodeCorpus(*tokenizer, options));
  for (const InvalidUtf8Input& bad : r.invalid_utf8) {
    std::fprintf(stderr,
                 "dyt-data: warning: %s: %llu byte(s) that are not UTF-8 (the first at byte "
                 "%llu) were encoded as U+FFFD; --strict-utf8 refuses such input\n",
                 bad.path.c_str(), static_cast<unsigned long long>(bad.bytes),
                 static_cast<unsigned long long>(bad.first_offset));
  }
  const uint64_t tokens = r.train_tokens + r.val_tokens;
  if (r.unknown_tokens > 0) {
    std::fprintf(stderr,
                 "dyt-data: warning: %llu of %llu tokens are <unk> (id %d): text %s has no piece "
                 "for, which a model trained on these shards can neither learn nor write; train "
                 "the tokenizer on this text, with byte fallback (the default)\n",
                 static_cast<unsigned long long>(r.unknown_tokens),
                 static_cast<unsigned long long>(tokens), tokenizer->unk_id(),
                 tokenizer_path.c_str());
  }
  std::printf("encoded %llu document(s), %llu bytes -> %llu tokens (%.2f bytes/token)\n",
              static_cast<unsigned long long>(r.documents),
              static_cast<unsigned long long>(r.text_bytes),
              static_cast<unsigned long long>(tokens),
              tokens ? static_cast<double>(r.text_bytes) / static_cast<double>(tokens) : 0.0);
  std::printf("  %s: %llu tokens\n", options.output.c_str(),
              static_cast<unsigned long long>(r.train_tokens));
  if (!options.val_output.empty()) {
    std::printf("  %s: %llu tokens\n", options.val_output.c_str(),
                static_cast<unsigned long long>(r.val_tokens));
  }
  return Status::Ok();
}

void PrintStats(const TokenStats& s) {
  std::printf("  tokens        %llu\n", static_cast<unsigned long long>(s.tokens));
  std::printf("  distinct      %llu\n", static_cast<unsigned long long>(s.distinct));
  std::printf("  max_token     %u\n", s.max_token);
  std::printf("  entropy       %.4f bits/token, %.4f nats/token (unigram)\n", s.entropy_bits,
              s.entropy_nats);
}

Status RunStats(const std::vector<std::string>& paths, const std::string& format_name) {
  DYT_ASSIGN_OR_RETURN(const ShardFormat format, ParseShardFormat(format_name));
  TokenCounter all;
  std::string bad_shards;
  for (const std::string& path : paths) {
    DYT_ASSIGN_OR_RETURN(auto shard, TokenShard::Open(path, format));
    TokenCounter one;
    one.Add(*shard);
    all.Add(*shard);
    std::printf("%s\n", path.c_str());
    std::printf("  format        %s\n", ShardFormatName(shard->format()));
    std::printf("  dtype         %s\n", shard->token_bytes() == 2 ? "uint16" : "uint32");
    std::printf("  vocab_size    %u%s\n", shard->vocab_size(),
                shard->vocab_size() == 0 ? " (not recorded)" : "");
    std::printf("  tokenizer_id  %s\n",
                shard->tokenizer_id().empty() ? "(none)" : shard->tokenizer_id().c_str());
    const TokenStats stats = one.Stats();
    PrintStats(stats);
    // The trainer refuses such a shard (an embedding row past the table); say it here first.
    if (shard->vocab_size() > 0 && stats.tokens > 0 && stats.max_token >= shard->vocab_size()) {
      bad_shards += path + " (token " + std::to_string(stats.max_token) + " >= vocab_size " +
                    std::to_string(shard->vocab_size()) + ") ";
    }
  }
  if (paths.size() > 1) {
    std::printf("all %zu shards\n", paths.size());
    PrintStats(all.Stats());
  }
  if (!bad_shards.empty()) {
    return DataLoss(
        "tokens outside the vocabulary their header records, which a trainer "
        "refuses: " +
        bad_shards.substr(0, bad_shards.size() - 1));
  }
  return Status::Ok();
}

Status RunDecode(const std::string& tokenizer_path, const std::string& path,
                 const std::string& format_name, uint64_t begin, uint64_t count,
                 const std::string& output) {
  DYT_ASSIGN_OR_RETURN(const ShardFormat format, ParseShardFormat(format_name));
  if (!output.empty() && output != "-") {
    DYT_RETURN_IF_ERROR(CheckOutputFile({"--output", output}));
    DYT_RETURN_IF_ERROR(
        RefuseSameFile({"--output", output}, {{"shard", path}, {"--tokenizer", tokenizer_path}}));
  }
  DYT_ASSIGN_OR_RETURN(auto shard, TokenShard::Open(path, format));
  if (begin > shard->size() || (begin == shard->size() && shard->size() > 0)) {
    return InvalidArgument("--begin " + std::to_string(begin) + ": past the end of " + path + " (" +
                           std::to_string(shard->size()) + " tokens)");
  }
  DYT_ASSIGN_OR_RETURN(auto tokenizer, LoadTokenizer(tokenizer_path));
  if (!shard->tokenizer_id().empty() && shard->tokenizer_id() != tokenizer->id()) {
    return InvalidArgument("tokenizer mismatch: shard " + path + " was encoded with tokenizer " +
                           shard->tokenizer_id() + " but " + tokenizer_path + " has id " +
                           tokenizer->id());
  }
  count = std::min(count, shard->size() - begin);
  std::vector<int32_t> ids(count);
  shard->Read(begin, count, ids.data());
  const std::string text = tokenizer->Decode(ids);
  if (output.empty() || output == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    // The prompt on a line of its own; a pipe gets the text's bytes exactly.
    if (::isatty(STDOUT_FILENO) == 1 && (text.empty() || text.back() != '\n')) {
      std::fputc('\n', stdout);
    }
    return Status::Ok();
  }
  std::ofstream out(output, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) return Internal("cannot write " + output);
  return Status::Ok();
}

}  // namespace
}  // namespace dyt

int main(int argc, char** argv) {
  dyt::InitLogging("dyt-data");
  CLI::App app{"dyt-data: tokenizer training, token shards, shard statistics"};
  app.require_subcommand(1);

  dyt::TokenizerTrainOptions train;
  auto* train_cmd = app.add_subcommand("train-tokenizer", "train a sentencepiece BPE tokenizer");
  train_cmd->add_option("--input", train.input_files, "text files (one sentence per line)")
      ->required()
      ->check(dyt::RegularFile());
  train_cmd->add_option("--model-prefix", train.model_prefix, "writes PREFIX.model/.vocab")
      ->required();
  train_cmd->add_option("--vocab-size", train.vocab_size, "vocabulary size")->capture_default_str();
  train_cmd
      ->add_option("--character-coverage", train.character_coverage,
                   "fraction of characters given their own pieces")
      ->capture_default_str();
  train_cmd->add_flag("--byte-fallback,!--no-byte-fallback", train.byte_fallback,
                      "encode unknown characters as UTF-8 bytes (default on)");
  train_cmd->add_option("--threads", train.num_threads, "training threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  train_cmd
      ->add_option("--max-sentences", train.max_sentences,
                   "train on at most this many lines (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();

  std::string tokenizer_path;
  dyt::EncodeOptions encode;
  auto* encode_cmd = app.add_subcommand("encode", "encode text files into token shards");
  encode_cmd->add_option("--tokenizer", tokenizer_path, "sentencepiece model")->required();
  encode_cmd->add_option("--input", encode.input_files, "text files, one document each")
      ->required()
      ->check(dyt::RegularFile());
  encode_cmd->add_option("--output", encode.output, "training shard")->required();
  encode_cmd->add_option("--val-output", encode.val_output, "validation shard");
  encode_cmd
      ->add_option("--val-fraction", encode.val_fraction,
                   "the last fraction of the tokens goes to --val-output")
      ->capture_default_str();
  encode_cmd->add_flag("--strict-utf8", encode.strict_utf8,
                       "refuse input that is not UTF-8 (default: encode each bad byte as U+FFFD "
                       "and warn)");

  std::vector<std::string> stats_paths;
  std::string format = "auto";
  auto* stats_cmd = app.add_subcommand("stats", "print token statistics of shards");
  stats_cmd->add_option("shards", stats_paths, "shard files")->required();
  stats_cmd->add_option("--format", format, "auto, dyt, llmc, raw_u16, raw_u32")
      ->capture_default_str();

  std::string decode_path;
  std::string decode_output;
  uint64_t begin = 0;
  uint64_t count = UINT64_MAX;
  auto* decode_cmd = app.add_subcommand("decode", "decode a shard (or a range of it) to text");
  decode_cmd->add_option("--tokenizer", tokenizer_path, "sentencepiece model")->required();
  decode_cmd->add_option("shard", decode_path, "shard file")->required();
  decode_cmd->add_option("--format", format, "auto, dyt, llmc, raw_u16, raw_u32")
      ->capture_default_str();
  decode_cmd->add_option("--begin", begin, "first token")->capture_default_str();
  decode_cmd->add_option("--count", count, "number of tokens (default: to the end)");
  decode_cmd->add_option("--output", decode_output, "output file (default: stdout)");

  if (auto exit = dyt::ParseCommandLine(app, argc, argv)) return *exit;

  dyt::Status status;
  if (*train_cmd) {
    status = dyt::RunTrainTokenizer(train);
  } else if (*encode_cmd) {
    status = dyt::RunEncode(tokenizer_path, encode);
  } else if (*stats_cmd) {
    status = dyt::RunStats(stats_paths, format);
  } else if (*decode_cmd) {
    status = dyt::RunDecode(tokenizer_path, decode_path, format, begin, count, decode_output);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "dyt-data: %s\n", status.ToString().c_str());
    // Like every dyt tool: 2 for what the user asked wrong, 1 for what failed.
    return status.code() == dyt::StatusCode::kInvalidArgument ? dyt::kExitUsage : 1;
  }
  return 0;
}
