// KvStore: the small key-value rendezvous ranks use to find each other (rank 0 publishes the
// NCCL unique id or Gloo's address under a key; the other ranks wait for it).
//
// Under a worker the store is the scheduler's per-attempt key-value; run by hand it is a
// FileKvStore in a shared directory. Values are opaque bytes (std::string as a byte buffer;
// embedded zeros are fine).
//
// Keys: 1 to 200 characters from [A-Za-z0-9._-], not starting with '.'. Stores reject other
// keys with INVALID_ARGUMENT so that every backend accepts the same keys (a FileKvStore key is
// a file name). Put the job and attempt into the key ("job42.attempt3.nccl_id") so that a
// restarted attempt never reads a stale value.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace dyt::dist {

class KvStore {
 public:
  virtual ~KvStore() = default;

  // Publishes `value` under `key`, replacing any earlier value. A reader sees either the old
  // value or the whole new one, never a mix.
  virtual Status Set(const std::string& key, const std::string& value) = 0;

  // Waits up to `timeout` for `key` to be set and returns its value. DEADLINE_EXCEEDED, naming
  // the key and the store, when it never arrives.
  virtual StatusOr<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) = 0;
};

// OK when `key` follows the key rules above; INVALID_ARGUMENT naming the key and the rule
// otherwise.
Status ValidateKvKey(const std::string& key);

}  // namespace dyt::dist
