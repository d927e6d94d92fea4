// Key encodings of the scheduler's RocksDB column families (docs/scheduler.md, "State layout").
//
// Records that belong to a job are keyed "<job id> 0x00 <big-endian number>": the NUL ends the
// id (ids never contain one, CheckRecordId enforces it), so "job-1" never prefix-matches the
// records of "job-10", and the big-endian number makes RocksDB's bytewise order the numeric
// order. A job's records are therefore one contiguous, ordered range: JobPrefix(id) up to
// JobPrefixEnd(id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dyt {

// Longest id (job, worker, client request, rendezvous key) the store accepts.
inline constexpr size_t kMaxRecordIdBytes = 512;

// INVALID_ARGUMENT "<field>: ..." unless `id` is 1..kMaxRecordIdBytes bytes without NUL.
Status CheckRecordId(std::string_view field, std::string_view id);

// Job ids the store assigns: "job-" and the job number in 12 zero-padded digits
// ("job-000000000042"), so lexicographic order (RocksDB's) is submission order. That holds up
// to 10^12 - 1 (6 years of a sustained 5,000 submissions/s); past it ids get longer, stay
// unique, and no longer sort by number.
std::string FormatJobId(uint64_t number);
// The number of an id FormatJobId made; nullopt for any other id.
std::optional<uint64_t> ParseJobId(std::string_view id);

// Big-endian fixed-width integers: bytewise order == numeric order.
std::string EncodeBigEndian64(uint64_t value);
std::string EncodeBigEndian32(uint32_t value);
// The value of exactly 8 big-endian bytes; nullopt for any other length.
std::optional<uint64_t> DecodeBigEndian64(std::string_view bytes);

// "<job id>\0": every job_events, checkpoints and rendezvous key of the job starts with it.
std::string JobPrefix(std::string_view job_id);
// The first key past all of JobPrefix(job_id)'s keys ("<job id>\1"), an iterator upper bound.
std::string JobPrefixEnd(std::string_view job_id);

// job_events: "<job id>\0<seq, 8 bytes BE>".
std::string JobEventKey(std::string_view job_id, uint64_t seq);
// checkpoints: "<job id>\0<step, 8 bytes BE>" (step >= 0).
std::string CheckpointKey(std::string_view job_id, int64_t step);
// The trailing number of a JobEventKey / CheckpointKey of `job_id`; nullopt when `key` is not
// one (another job's, or malformed).
std::optional<uint64_t> JobKeySuffixNumber(std::string_view key, std::string_view job_id);

// rendezvous: "<job id>\0<attempt, 4 bytes BE><key>"; the attempt's keys share
// RendezvousAttemptPrefix and end before RendezvousAttemptEnd.
std::string RendezvousAttemptPrefix(std::string_view job_id, int32_t attempt);
std::string RendezvousAttemptEnd(std::string_view job_id, int32_t attempt);
std::string RendezvousKey(std::string_view job_id, int32_t attempt, std::string_view key);

// metadata keys.
inline constexpr std::string_view kStoreInfoKey = "store";
inline constexpr std::string_view kJobNumberKey = "job_number";   // highest job number used
inline constexpr std::string_view kEventSeqKey = "event_seq";     // highest event seq used
std::string RequestIndexKey(std::string_view client_request_id);  // "request/<id>"
// The id the job service indexes a submission under: "<owner>/<client_request_id>", so that
// request ids are per owner (another user's id neither finds a job nor blocks one). Owners
// have no '/'. Ids indexed before this scoping (unscoped) are simply not found.
std::string ScopedRequestId(std::string_view owner, std::string_view client_request_id);

// ListJobs page tokens: opaque to clients (hex of "v1:<last job id returned>").
std::string EncodeJobPageToken(std::string_view last_job_id);
// The last job id of a token EncodeJobPageToken made; INVALID_ARGUMENT "page_token: ..." for
// anything else.
StatusOr<std::string> DecodeJobPageToken(std::string_view token);

}  // namespace dyt
