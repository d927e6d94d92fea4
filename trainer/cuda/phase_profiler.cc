#include "trainer/cuda/phase_profiler.h"

#include <string>

#include "trainer/cuda/cuda_status.h"

namespace dyt::cuda {

StatusOr<std::unique_ptr<PhaseProfiler>> PhaseProfiler::Create(int capacity) {
  if (capacity < 2) return InvalidArgument("PhaseProfiler: capacity must be >= 2");
  std::vector<cudaEvent_t> events;
  events.reserve(size_t(capacity));
  for (int i = 0; i < capacity; ++i) {
    cudaEvent_t e = nullptr;
    const cudaError_t err = cudaEventCreate(&e);
    if (err != cudaSuccess) {
      for (cudaEvent_t made : events) cudaEventDestroy(made);
      return CudaStatus(err, "PhaseProfiler: cudaEventCreate");
    }
    events.push_back(e);
  }
  return std::unique_ptr<PhaseProfiler>(new PhaseProfiler(std::move(events)));
}

PhaseProfiler::PhaseProfiler(std::vector<cudaEvent_t> events) : events_(std::move(events)) {
  names_.reserve(events_.size());
}

PhaseProfiler::~PhaseProfiler() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

void PhaseProfiler::Mark(const char* phase, cudaStream_t stream) {
  if (names_.empty()) {
    stream_ = stream;
  } else if (stream != stream_) {
    mixed_streams_ = true;
  }
  // One event is kept for Flush's end of the last phase.
  if (names_.size() + 1 >= events_.size()) {
    overflow_ = true;
    return;
  }
  if (cudaEventRecord(events_[names_.size()], stream) != cudaSuccess) {
    cudaGetLastError();
    overflow_ = true;  // reported by Flush like any lost mark
    return;
  }
  names_.push_back(phase);
}

Status PhaseProfiler::Flush(cudaStream_t stream) {
  if (names_.empty()) return Status::Ok();
  const size_t n = names_.size();
  Status st = Status::Ok();
  if (mixed_streams_ || stream != stream_) {
    st = FailedPrecondition("PhaseProfiler: marks on more than one stream since the last flush");
  } else if (overflow_) {
    st = FailedPrecondition("PhaseProfiler: more than " + std::to_string(events_.size() - 1) +
                            " marks (the capacity) since the last flush, or a mark failed");
  }
  if (st.ok()) {
    st = CudaStatus(cudaEventRecord(events_[n], stream), "PhaseProfiler::Flush: cudaEventRecord");
  }
  if (st.ok()) {
    st = CudaStatus(cudaEventSynchronize(events_[n]), "PhaseProfiler::Flush: cudaEventSynchronize");
  }
  std::vector<float> ms(n, 0.f);
  for (size_t i = 0; st.ok() && i < n; ++i) {
    st = CudaStatus(cudaEventElapsedTime(&ms[i], events_[i], events_[i + 1]),
                    "PhaseProfiler::Flush: cudaEventElapsedTime");
  }
  for (size_t i = 0; st.ok() && i < n; ++i) {  // all or nothing
    auto it = totals_.begin();
    while (it != totals_.end() && it->first != names_[i]) ++it;
    if (it == totals_.end()) {
      totals_.emplace_back(names_[i], double(ms[i]));
    } else {
      it->second += double(ms[i]);
    }
  }
  names_.clear();
  mixed_streams_ = false;
  overflow_ = false;
  return st;
}

double PhaseProfiler::total_ms() const {
  double sum = 0;
  for (const auto& [name, ms] : totals_) sum += ms;
  return sum;
}

}  // namespace dyt::cuda
