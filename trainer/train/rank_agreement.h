// Ranks of one data-parallel run must be started with the same training config: the first
// collectives size their buffers from the model, and ranks that differ in batch, learning rate,
// schedule, data or save cadence train different replicas (rank 0's is the one saved), read
// overlapping data, or wait forever in a collective the other ranks never enter. dyt-launch
// and the worker give every rank one config, but a multi-node launch takes one per node.
//
// So before their first collective on the model the ranks compare what must agree (and PyTorch
// DDP does not: it checks parameter shapes only) and refuse to train when it does not, every
// rank with the same answer, naming the field, the rank and both values.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "trainer/dist/communicator.h"
#include "trainer/train/train_config.h"

namespace dyt {

// "field: value" for everything the ranks must agree on: each model field, train (but threads), the
// optimizer and schedule, the data's seed, format, split, tokenizer id and size in tokens
// (`train_tokens`; paths may differ between nodes, the tokens they hold may not), the save
// cadence, the job and attempt. Not compared: threads, output and checkpoint directories,
// retention, data paths and roots, the local rank.
std::vector<std::string> AgreementLines(const TrainConfig& config, const std::string& tokenizer_id,
                                        uint64_t train_tokens);

// Collective (a no-op for one rank or a null communicator): rank 0's lines go to every rank,
// each compares them with `mine`, and all learn which ranks differ. INVALID_ARGUMENT on every
// rank when any does: "rank 1 was started with another config than rank 0: train.batch_size is
// 6 there, 4 on rank 0 (2 of 3 ranks differ)". A transport failure is returned as it is.
Status CheckRanksAgree(const std::vector<std::string>& mine, dist::Communicator* comm);

}  // namespace dyt
