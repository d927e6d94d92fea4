// Times full training steps of the CPU trainer (forward, loss, backward, clipping, AdamW) on
// synthetic tokens, printing one JSON line in the format of bench/torch_train_step.py so
// bench/cpu_vs_torch.sh can put both in one table.
//
//   dyt-bench-train-step --preset tiny --norm dyt --batch 8 --seq 256 --threads 2
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "trainer/train/trainer.h"

int main(int argc, char** argv) {
  CLI::App app{"Time CPU training steps"};
  std::string preset = "tiny", norm = "dyt";
  int batch = 8, seq = 256, threads = 2, warmup = 2, steps = 5;
  app.add_option("--preset", preset);
  app.add_option("--norm", norm);
  app.add_option("--batch", batch);
  app.add_option("--seq", seq);
  app.add_option("--threads", threads);
  app.add_option("--warmup", warmup);
  app.add_option("--steps", steps);
  CLI11_PARSE(app, argc, argv);
  dyt::InitLogging("dyt-bench", "warn");

  auto node = dyt::LoadYamlString(
      "model: {preset: " + preset + ", norm: " + norm + ", max_seq_len: " + std::to_string(seq) +
      "}\ndata: {synthetic: true}\ntrain: {steps: 1000000, batch_size: " + std::to_string(batch) +
      ", threads: " + std::to_string(threads) + "}\n");
  if (!node.ok()) return 2;
  auto config = dyt::ParseTrainConfig(*node);
  if (!config.ok()) {
    std::cerr << config.status().ToString() << "\n";
    return 2;
  }
  auto trainer = dyt::Trainer::Create(*config, nullptr);
  if (!trainer.ok()) {
    std::cerr << trainer.status().ToString() << "\n";
    return 1;
  }
  std::vector<double> secs;
  for (int i = 0; i < warmup + steps; ++i) {
    auto s = (*trainer)->TrainStep();
    if (!s.ok()) {
      std::cerr << s.status().ToString() << "\n";
      return 1;
    }
    if (i >= warmup) secs.push_back(s->seconds);
  }
  std::sort(secs.begin(), secs.end());
  const double median = secs[secs.size() / 2];
  nlohmann::json out = {{"impl", "dyt"},           {"norm", norm},
                        {"preset", preset},        {"tokens_per_s", double(batch) * seq / median},
                        {"step_ms", median * 1e3}, {"threads", omp_get_max_threads()}};
  std::cout << out.dump() << std::endl;
  return 0;
}
