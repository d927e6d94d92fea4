#include "trainer/train/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

namespace dyt {

namespace {
// Gradients travel in buckets of this many floats (16 MB), so no single message is huge.
constexpr int64_t kBucketFloats = int64_t(1) << 22;
}  // namespace

CpuBackend::CpuBackend(const ModelConfig& model, const AdamWConfig& adamw, int batch, int seq_len,
                       uint64_t seed, bool zero1, dist::Communicator* comm)
    : model_(model, batch, seq_len, comm ? comm->world_size() : 1), comm_(comm) {
  model_.InitParams(seed);
  const int world = world_size();
  if (zero1 && world > 1) {
    const int rank = comm_->rank();
    const int64_t shard = model_.buffer_size() / world;
    optim_ = std::make_unique<AdamW>(model_.layout(), adamw, rank * shard, (rank + 1) * shard);
    shard_.resize(shard);
  } else {
    optim_ = std::make_unique<AdamW>(model_.layout(), adamw);
  }
}

std::string CpuBackend::DeviceSummary() const {
  return std::to_string(omp_get_max_threads()) + " OpenMP threads, fp32" +
         (shard_.empty() ? "" : ", ZeRO-1");
}

Status CpuBackend::ZeroGrads() {
  model_.ZeroGrads();
  return Status::Ok();
}

StatusOr<double> CpuBackend::ForwardBackward(const int32_t* inputs, const int32_t* targets,
                                             int batch, float grad_scale) {
  return model_.ForwardBackward(inputs, targets, batch, grad_scale);
}

StatusOr<double> CpuBackend::Loss(const int32_t* inputs, const int32_t* targets, int batch) {
  return model_.Loss(inputs, targets, batch);
}

Status CpuBackend::BroadcastParams() {
  if (world_size() == 1) return Status::Ok();
  float* p = model_.params();
  for (int64_t off = 0; off < model_.buffer_size(); off += kBucketFloats) {
    const int64_t n = std::min(kBucketFloats, model_.buffer_size() - off);
    DYT_RETURN_IF_ERROR(comm_->Broadcast(p + off, size_t(n), 0));
  }
  return Status::Ok();
}

StatusOr<double> CpuBackend::ReduceAndUpdate(float lr, float clip) {
  float* g = model_.grads();
  float* p = model_.params();
  const int64_t total = model_.buffer_size();
  const int world = world_size();
  if (world > 1 && !shard_.empty()) {
    // ZeRO-1: this rank receives the averaged gradient of its shard only.
    const int64_t n = int64_t(shard_.size()), begin = optim_->begin();
    DYT_RETURN_IF_ERROR(comm_->ReduceScatter(g, shard_.data(), size_t(n), dist::ReduceOp::kAvg));
    std::copy(shard_.begin(), shard_.end(), g + begin);
    const double local = GradNorm(g + begin, n);
    float sumsq = float(local * local);
    DYT_RETURN_IF_ERROR(comm_->AllReduce(&sumsq, 1, dist::ReduceOp::kSum));
    const double norm = std::sqrt(double(sumsq));
    const float coef = float(clip / (norm + 1e-6));
    if (clip > 0 && coef < 1.0f) {
      for (int64_t i = 0; i < n; ++i) g[begin + i] *= coef;
    }
    optim_->Step(p, g, lr);
    std::copy(p + begin, p + begin + n, shard_.begin());  // AllGather needs disjoint buffers
    DYT_RETURN_IF_ERROR(comm_->AllGather(shard_.data(), p, size_t(n)));
    return norm;
  }
  if (world > 1) {
    for (int64_t off = 0; off < total; off += kBucketFloats) {
      const int64_t n = std::min(kBucketFloats, total - off);
      DYT_RETURN_IF_ERROR(comm_->AllReduce(g + off, size_t(n), dist::ReduceOp::kAvg));
    }
  }
  const int64_t n = model_.num_params();
  const double norm = clip > 0 ? ClipGradNorm(g, n, clip) : GradNorm(g, n);
  optim_->Step(p, g, lr);
  return norm;
}

StatusOr<HostTrainState> CpuBackend::ExportState() {
  HostTrainState st;
  const int64_t n = model_.num_params();
  if (!shard_.empty()) {
    // ZeRO-1: gather the sharded moments so the state holds the full optimizer state.
    std::vector<float> full(model_.buffer_size());
    for (auto [src, dst] : {std::pair{&optim_->m(), &st.adam_m}, {&optim_->v(), &st.adam_v}}) {
      DYT_RETURN_IF_ERROR(comm_->AllGather(src->data(), full.data(), src->size()));
      dst->assign(full.begin(), full.begin() + n);
    }
  } else {
    st.adam_m = optim_->m();
    st.adam_v = optim_->v();
  }
  st.params.assign(model_.params(), model_.params() + n);
  st.adam_step = optim_->step();
  return st;
}

Status CpuBackend::ImportState(const HostTrainState& st) {
  const int64_t n = model_.num_params();
  if (int64_t(st.params.size()) != n || int64_t(st.adam_m.size()) != n ||
      int64_t(st.adam_v.size()) != n) {
    return FailedPrecondition("checkpoint: parameter buffers do not match the model");
  }
  std::memcpy(model_.params(), st.params.data(), size_t(n) * sizeof(float));
  // The optimizer keeps the moments of its range only (everything, or this rank's ZeRO-1
  // shard), so a checkpoint from any number of ranks restores onto any other.
  for (auto [src, dst] : {std::pair{&st.adam_m, &optim_->m()}, {&st.adam_v, &optim_->v()}}) {
    for (int64_t i = optim_->begin(); i < optim_->end(); ++i) {
      (*dst)[i - optim_->begin()] = i < n ? (*src)[i] : 0.0f;
    }
  }
  optim_->set_step(st.adam_step);
  return BroadcastParams();
}

}  // namespace dyt
