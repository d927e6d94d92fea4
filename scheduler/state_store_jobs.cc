// StateStore: jobs, their events, and idempotent submission.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "scheduler/state_keys.h"
#include "scheduler/state_store.h"

namespace dyt {
namespace {

bool Matches(const JobFilter& filter, const v1::JobRecord& record) {
  const v1::Job& job = record.job();
  return (filter.state == v1::JOB_STATE_UNSPECIFIED || job.state() == filter.state) &&
         (filter.owner.empty() || job.spec().owner() == filter.owner) &&
         (filter.name.empty() || job.spec().name() == filter.name);
}

Status ParseJob(std::string_view key, std::string_view value, v1::JobRecord* record) {
  if (!record->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return DataLoss("jobs/" + std::string(key) + ": value does not parse as dyt.v1.JobRecord");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<CreateJobResult> StateStore::CreateJob(v1::JobRecord record, const v1::JobEvent& event) {
  std::vector<NewJob> one;
  one.push_back({std::move(record), event});
  return std::move(CreateJobs(std::move(one)).front());
}

std::vector<StatusOr<CreateJobResult>> StateStore::CreateJobs(std::vector<NewJob> jobs) {
  // Every job starts as a placeholder result; errors replace it, then the outcome does.
  std::vector<StatusOr<CreateJobResult>> results(jobs.size(), CreateJobResult{});
  // Hold every request id of the batch (in sorted order, so two batches never deadlock) from
  // the lookup until the commit: a concurrent retry of the same request waits and then finds
  // this job instead of creating a second one.
  std::map<std::string, size_t> first_with_id;  // request id -> the job in this batch that has it
  for (size_t i = 0; i < jobs.size(); ++i) {
    const v1::JobRecord& record = jobs[i].record;
    if (!record.job().id().empty()) {
      results[i] = InvalidArgument("job.id: must be empty, the store assigns it (got " +
                                   record.job().id() + ")");
      continue;
    }
    const std::string& request_id = record.client_request_id();
    if (request_id.empty()) continue;
    Status valid = CheckRecordId("client_request_id", request_id);
    if (!valid.ok()) {
      results[i] = valid;
      continue;
    }
    first_with_id.emplace(request_id, i);
  }
  std::vector<std::unique_ptr<KeyLockGuard>> holds;
  for (const auto& [request_id, i] : first_with_id) {
    holds.push_back(std::make_unique<KeyLockGuard>(request_ids_, request_id));
  }

  StateBatch batch = NewBatch();
  std::vector<size_t> created;
  std::vector<size_t> repeats;  // same request id as an earlier job of this batch
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].ok()) continue;
    v1::JobRecord& record = jobs[i].record;
    const std::string& request_id = record.client_request_id();
    if (!request_id.empty()) {
      if (first_with_id.at(request_id) != i) {
        repeats.push_back(i);
        continue;
      }
      StatusOr<std::string> existing = FindJobByRequestId(request_id);
      if (existing.ok()) {
        StatusOr<v1::JobRecord> job = GetJob(*existing);
        if (!job.ok()) {
          results[i] = Status(job.status().code() == StatusCode::kNotFound ? StatusCode::kDataLoss
                                                                           : job.status().code(),
                              "client request " + request_id + " is indexed to job " + *existing +
                                  ", which cannot be read: " + job.status().message());
        } else {
          results[i] = CreateJobResult{std::move(job).value(), false};
        }
        continue;
      }
      if (existing.status().code() != StatusCode::kNotFound) {
        results[i] = existing.status();
        continue;
      }
    }
    record.mutable_job()->set_id(FormatJobId(NextJobNumber()));
    Status added = batch.PutJob(record);
    if (added.ok()) added = batch.AppendJobEvent(record.job().id(), jobs[i].event).status();
    if (added.ok() && !request_id.empty())
      added = batch.IndexRequest(request_id, record.job().id());
    if (!added.ok()) {
      // A half-added job would commit with the others: fail the whole batch instead.
      for (auto& r : results) r = added;
      return results;
    }
    created.push_back(i);
  }
  Status committed = Commit(batch);
  for (size_t i : created) {
    if (!committed.ok()) {
      results[i] = committed;
      continue;
    }
    jobs[i].record.mutable_job()->clear_events();
    results[i] = CreateJobResult{std::move(jobs[i].record), true};
  }
  for (size_t i : repeats) {
    const StatusOr<CreateJobResult>& first =
        results[first_with_id.at(jobs[i].record.client_request_id())];
    if (!first.ok()) {
      results[i] = first.status();
    } else {
      results[i] = CreateJobResult{first->record, false};
    }
  }
  return results;
}

StatusOr<std::string> StateStore::FindJobByRequestId(const std::string& client_request_id) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("client_request_id", client_request_id));
  v1::RequestIndexEntry entry;
  DYT_RETURN_IF_ERROR(GetMessage(metadata_, RequestIndexKey(client_request_id), &entry,
                                 "client request " + client_request_id));
  return entry.job_id();
}

Status StateStore::PutJob(const v1::JobRecord& record) {
  StateBatch batch = NewBatch();
  return CommitOne(batch, batch.PutJob(record));
}

StatusOr<uint64_t> StateStore::PutJobWithEvent(const v1::JobRecord& record,
                                               const v1::JobEvent& event) {
  StateBatch batch = NewBatch();
  DYT_RETURN_IF_ERROR(batch.PutJob(record));
  DYT_ASSIGN_OR_RETURN(const uint64_t seq, batch.AppendJobEvent(record.job().id(), event));
  DYT_RETURN_IF_ERROR(Commit(batch));
  return seq;
}

StatusOr<v1::JobRecord> StateStore::GetJob(const std::string& job_id) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  v1::JobRecord record;
  DYT_RETURN_IF_ERROR(GetMessage(jobs_, job_id, &record, "job " + job_id));
  return record;
}

StatusOr<JobPage> StateStore::ListJobs(const JobFilter& filter, int page_size,
                                       const std::string& page_token) const {
  if (page_size <= 0) page_size = kDefaultPageSize;
  page_size = std::min(page_size, kMaxPageSize);
  std::string lower;
  if (!page_token.empty()) {
    DYT_ASSIGN_OR_RETURN(const std::string last_id, DecodeJobPageToken(page_token));
    lower = last_id + '\0';  // the smallest key after last_id
  }
  JobPage page;
  DYT_RETURN_IF_ERROR(
      Scan(jobs_, lower, "", false, [&](std::string_view key, std::string_view value, bool* stop) {
        v1::JobRecord record;
        DYT_RETURN_IF_ERROR(ParseJob(key, value, &record));
        if (!Matches(filter, record)) return Status::Ok();
        if (static_cast<int>(page.jobs.size()) == page_size) {
          // One more match exists: this page is not the last.
          page.next_page_token = EncodeJobPageToken(page.jobs.back().job().id());
          *stop = true;
          return Status::Ok();
        }
        page.jobs.push_back(std::move(record));
        return Status::Ok();
      }));
  return page;
}

Status StateStore::ForEachJob(const std::function<Status(const v1::JobRecord&)>& visit) const {
  return Scan(jobs_, "", "", false, [&](std::string_view key, std::string_view value, bool*) {
    v1::JobRecord record;
    DYT_RETURN_IF_ERROR(ParseJob(key, value, &record));
    return visit(record);
  });
}

StatusOr<uint64_t> StateStore::AppendJobEvent(const std::string& job_id,
                                              const v1::JobEvent& event) {
  StateBatch batch = NewBatch();
  DYT_ASSIGN_OR_RETURN(const uint64_t seq, batch.AppendJobEvent(job_id, event));
  DYT_RETURN_IF_ERROR(Commit(batch));
  return seq;
}

StatusOr<std::vector<StoredJobEvent>> StateStore::ListJobEvents(const std::string& job_id,
                                                                uint64_t after_seq,
                                                                size_t limit) const {
  DYT_RETURN_IF_ERROR(CheckRecordId("job id", job_id));
  std::vector<StoredJobEvent> events;
  const std::string lower =
      after_seq == UINT64_MAX ? JobPrefixEnd(job_id) : JobEventKey(job_id, after_seq + 1);
  DYT_RETURN_IF_ERROR(Scan(
      job_events_, lower, JobPrefixEnd(job_id), false,
      [&](std::string_view key, std::string_view value, bool* stop) {
        const auto seq = JobKeySuffixNumber(key, job_id);
        StoredJobEvent stored;
        if (!seq || !stored.event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
          return DataLoss("job_events of job " + job_id + ": a record (key " +
                          std::to_string(key.size()) + " bytes) does not parse");
        }
        stored.seq = *seq;
        events.push_back(std::move(stored));
        *stop = limit > 0 && events.size() >= limit;
        return Status::Ok();
      }));
  return events;
}

}  // namespace dyt
