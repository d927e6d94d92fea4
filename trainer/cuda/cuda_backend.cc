#include "trainer/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "trainer/cuda/adamw_kernels.h"
#include "trainer/cuda/cuda_status.h"
#include "trainer/cuda/device_buffer.h"
#include "trainer/cuda/llama_cuda.h"
#include "trainer/cuda/phase_profiler.h"
#include "trainer/cuda/reduce_kernels.h"
#include "trainer/optim/adamw.h"
#ifdef DYT_WITH_NCCL
#include "trainer/dist/nccl_communicator.h"
#endif

namespace dyt::cuda {

namespace {

// A non-blocking stream, destroyed with its owner.
class Stream {
 public:
  Stream() = default;
  ~Stream() {
    if (s_ != nullptr) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Status Create() {
    return CudaStatus(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreate");
  }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() = default;
  ~Event() {
    if (e_ != nullptr) cudaEventDestroy(e_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Status Create() {
    return CudaStatus(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming), "cudaEventCreate");
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

// `waiter` runs what is enqueued after this call only once `signaler` has done everything
// enqueued on it before the call.
Status StreamWaits(cudaStream_t waiter, cudaStream_t signaler, cudaEvent_t ev) {
  DYT_CUDA_RETURN_IF_ERROR(cudaEventRecord(ev, signaler));
  return CudaStatus(cudaStreamWaitEvent(waiter, ev, 0), "cudaStreamWaitEvent");
}

}  // namespace

struct CudaBackend::Impl {
  // Declared first, destroyed last: the model and the communicator use the streams.
  Stream stream, comm_stream;
  Event event;
  int device = 0;
  std::string device_name;
  AdamWConfig adamw;
  int grad_accum = 1;
  dist::Communicator* host = nullptr;
#ifdef DYT_WITH_NCCL
  std::unique_ptr<dist::NcclCommunicator> nccl;
#endif
  std::unique_ptr<LlamaCuda> model;
  // The optimizer's range of the parameter buffer: all of it, or with ZeRO-1 this rank's shard
  // (buffer_size / world floats). m and v hold the moments of that range only.
  bool zero1 = false;
  int64_t opt_begin = 0, opt_end = 0;
  DeviceBuffer<float> m, v;
  DeviceBuffer<double> sumsq;
  DeviceBuffer<uint8_t> reduce_scratch;
  double* h_sumsq = nullptr;  // pinned
  // Weight decay by run over the optimizer's range (AdamWDecayRuns): one AdamW launch per step.
  // adam_n: the elements it updates (the range less any padding past the parameters).
  DeviceBuffer<int64_t> run_bounds;
  DeviceBuffer<uint8_t> run_decays;
  int run_count = 0;
  int64_t adam_n = 0;
  int64_t step = 0;
  int micro = 0;  // micro-batches since ZeroGrads
  // ZeroGrads was called and no micro-batch has written the gradients since: the next one
  // overwrites them (GradMode::kOverwrite), so ZeroGrads itself does no pass over the buffer.
  bool zero_pending = true;           // also before the first ZeroGrads
  bool reduced_early = false;         // this step's gradients already all-reduced during backward
  PhaseProfiler* profiler = nullptr;  // benchmarks only
  // Set (with peers) when a call failed after this step's gradients began to be all-reduced,
  // or a call that issues collectives failed: this rank's collectives may no longer match its
  // peers', so every later call refuses (the launcher ends the job; resuming from a
  // checkpoint is the way on).
  std::string broken;

  Status CheckUsable() const {
    if (broken.empty()) return Status::Ok();
    return FailedPrecondition("CudaBackend: unusable after an earlier failure (" + broken + ")");
  }
  // Returns `st`; when it failed with all-reduces possibly in flight, marks the backend broken.
  Status Track(Status st) {
    if (!st.ok() && world() > 1 && reduced_early) broken = st.ToString();
    return st;
  }
  // After a call that issues collectives: its failure (with peers) marks the backend broken,
  // since some ranks may have issued a collective this one did not.
  void NoteCollectiveResult(const Status& st) {
    if (!st.ok() && world() > 1) broken = st.ToString();
  }

  void Mark(const char* phase) {
    if (profiler != nullptr) profiler->Mark(phase, stream.get());
  }

  ~Impl() {
#ifdef DYT_WITH_NCCL
    // Out of step with the peers, or torn down with an unfinished step's collectives queued (a
    // peer failed mid-step): those collectives may never complete, and freeing the buffers they
    // use (below) would wait for them forever. Abort them instead.
    const bool pending = reduced_early || cudaStreamQuery(comm_stream.get()) == cudaErrorNotReady;
    if (nccl != nullptr && (!broken.empty() || pending)) nccl->Abort();
#endif
    if (h_sumsq != nullptr) cudaFreeHost(h_sumsq);
  }
  int world() const { return host ? host->world_size() : 1; }
  int rank() const { return host ? host->rank() : 0; }
  int64_t total() const { return model->num_params(); }
  int64_t opt_size() const { return opt_end - opt_begin; }

  // The global gradient norm: of the whole buffer, or with ZeRO-1 of this rank's (reduced)
  // shard, summed over ranks. Waits for the stream.
  StatusOr<double> GradNorm() {
    cudaStream_t s = stream.get();
    const float* g = model->grads() + opt_begin;
    const int64_t n = zero1 ? opt_size() : total();
    DYT_RETURN_IF_ERROR(
        SumSquaresDevice(sumsq.get(), g, n, reduce_scratch.get(), reduce_scratch.bytes(), s));
    DYT_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(h_sumsq, sumsq.get(), sizeof(double), cudaMemcpyDeviceToHost, s));
    Mark("host.wait");
    DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
    double sum = *h_sumsq;
    if (zero1) {
      // Every rank's double, its bits carried as two floats (the host communicator moves floats
      // and a gather never does arithmetic on them), then summed in rank order: exact and the
      // same on every rank.
      static_assert(sizeof(double) == 2 * sizeof(float));
      float mine[2];
      std::memcpy(mine, &sum, sizeof(sum));
      std::vector<float> all(2 * size_t(world()));
      DYT_RETURN_IF_ERROR(host->AllGather(mine, all.data(), 2));
      sum = 0;
      for (int r = 0; r < world(); ++r) {
        double part = 0;
        std::memcpy(&part, all.data() + 2 * r, sizeof(part));
        sum += part;
      }
    }
    return std::sqrt(sum);
  }

  // All-reduce (average) of grads[begin, end) on the comm stream, after the compute stream's
  // work so far.
  Status AllReduceGrads(int64_t begin, int64_t end) {
#ifdef DYT_WITH_NCCL
    DYT_RETURN_IF_ERROR(StreamWaits(comm_stream.get(), stream.get(), event.get()));
    return nccl->AllReduce(model->grads() + begin, size_t(end - begin), dist::ReduceOp::kAvg);
#else
    (void)begin;
    (void)end;
    return FailedPrecondition("cuda backend: built without NCCL");
#endif
  }
};

CudaBackend::CudaBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaBackend::~CudaBackend() = default;

StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const TrainConfig& config,
                                                           dist::Communicator* comm) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return FailedPrecondition(std::string("train.device: cuda, but no CUDA GPU is usable (") +
                              (err != cudaSuccess ? cudaGetErrorString(err) : "no device") + ")");
  }
  auto impl = std::make_unique<Impl>();
  Impl& b = *impl;
  b.device = config.local_rank % count;
  DYT_CUDA_RETURN_IF_ERROR(cudaSetDevice(b.device));
  cudaDeviceProp prop{};
  DYT_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, b.device));
  b.device_name = prop.name;
  DYT_RETURN_IF_ERROR(b.stream.Create());
  DYT_RETURN_IF_ERROR(b.comm_stream.Create());
  DYT_RETURN_IF_ERROR(b.event.Create());
  b.adamw = config.optim.adamw;
  b.grad_accum = config.train.grad_accum;
  b.host = comm;
  if (b.world() > 1) {
#ifdef DYT_WITH_NCCL
    DYT_ASSIGN_OR_RETURN(b.nccl,
                         dist::NcclCommunicator::CreateOverHost(*comm, b.comm_stream.get()));
#else
    return FailedPrecondition("train.device: cuda with " + std::to_string(b.world()) +
                              " ranks needs NCCL, and this dyt-train was built without it");
#endif
  }
  b.zero1 = config.train.zero1 && b.world() > 1;
  DYT_ASSIGN_OR_RETURN(
      b.model, LlamaCuda::Create(config.model, config.train.batch_size, config.train.seq_len,
                                 config.train.recompute, b.stream.get(), b.world(),
                                 config.train.deterministic ? AttentionBackwardMode::kDeterministic
                                                            : AttentionBackwardMode::kAtomicDq));
  DYT_RETURN_IF_ERROR(b.model->InitParams(config.train.seed));
  if (b.zero1) {
    const int64_t shard = b.model->buffer_size() / b.world();
    b.opt_begin = b.rank() * shard;
    b.opt_end = b.opt_begin + shard;
  } else {
    b.opt_begin = 0;
    b.opt_end = b.total();
  }
  const size_t n = size_t(std::max<int64_t>(b.model->buffer_size(), 1));
  DYT_ASSIGN_OR_RETURN(b.m,
                       DeviceBuffer<float>::Allocate(size_t(std::max<int64_t>(b.opt_size(), 1))));
  DYT_ASSIGN_OR_RETURN(b.v,
                       DeviceBuffer<float>::Allocate(size_t(std::max<int64_t>(b.opt_size(), 1))));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(b.m.get(), 0, b.m.bytes(), b.stream.get()));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(b.v.get(), 0, b.v.bytes(), b.stream.get()));
  DYT_ASSIGN_OR_RETURN(b.sumsq, DeviceBuffer<double>::Allocate(1));
  DYT_ASSIGN_OR_RETURN(b.reduce_scratch,
                       DeviceBuffer<uint8_t>::Allocate(ReduceScratchBytes(int64_t(n))));
  DYT_CUDA_RETURN_IF_ERROR(cudaMallocHost(reinterpret_cast<void**>(&b.h_sumsq), sizeof(double)));

  // Weight decay by tensor role, merged into contiguous runs (padding goes with the tensor
  // before it: zero parameters and gradients stay zero under either rule), then cut to the
  // optimizer's range [opt_begin, min(opt_end, total)) with bounds relative to its start.
  const ParamLayout& layout = b.model->layout();
  const int64_t adam_end = std::min(b.opt_end, b.total());
  b.adam_n = std::max<int64_t>(adam_end - b.opt_begin, 0);
  std::vector<int64_t> bounds;
  std::vector<uint8_t> decays;
  for (const ParamTensor& t : layout.tensors()) {
    const bool d = DecaysWeight(b.adamw, t.role);
    if (!decays.empty() && decays.back() == uint8_t{d}) continue;
    const int64_t at = std::clamp<int64_t>(t.offset - b.opt_begin, 0, b.adam_n);
    if (decays.empty()) {
      bounds.push_back(0);
    } else if (at > bounds.back()) {
      bounds.push_back(at);
    } else {
      decays.pop_back();  // the previous run has no element in the range
    }
    decays.push_back(uint8_t{d});
  }
  bounds.push_back(b.adam_n);
  b.run_count = int(decays.size());
  if (b.run_count > AdamWDecayRuns::kMaxRuns) {
    return InvalidArgument("CudaBackend: " + std::to_string(b.run_count) +
                           " weight-decay runs, more than AdamW's " +
                           std::to_string(AdamWDecayRuns::kMaxRuns));
  }
  DYT_ASSIGN_OR_RETURN(b.run_bounds, DeviceBuffer<int64_t>::Allocate(bounds.size()));
  DYT_ASSIGN_OR_RETURN(b.run_decays, DeviceBuffer<uint8_t>::Allocate(decays.size()));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.run_bounds.get(), bounds.data(), b.run_bounds.bytes(),
                                           cudaMemcpyHostToDevice, b.stream.get()));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.run_decays.get(), decays.data(), b.run_decays.bytes(),
                                           cudaMemcpyHostToDevice, b.stream.get()));
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(b.stream.get()));
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(impl)));
}

std::string CudaBackend::DeviceSummary() const {
  return "GPU " + std::to_string(impl_->device) + " " + impl_->device_name +
         ", bf16 mixed precision" + (impl_->world() > 1 ? ", NCCL" : "") +
         (impl_->zero1 ? ", ZeRO-1" : "") + ", " +
         std::to_string(impl_->model->device_bytes() >> 20) + " MiB for the model";
}

const ParamLayout& CudaBackend::layout() const { return impl_->model->layout(); }
int64_t CudaBackend::step() const { return impl_->step; }
int64_t CudaBackend::device_bytes() const {
  return impl_->model->device_bytes() + int64_t(impl_->m.bytes() + impl_->v.bytes());
}

void CudaBackend::SetProfiler(PhaseProfiler* profiler) {
  impl_->profiler = profiler;
  impl_->model->SetProfiler(profiler);
}
cudaStream_t CudaBackend::stream() const { return impl_->stream.get(); }

Status CudaBackend::ZeroGrads() {
  Impl& b = *impl_;
  DYT_RETURN_IF_ERROR(b.CheckUsable());
  if (b.world() > 1) {
    // All-reduces of the previous step write the gradients on the comm stream: zero after them
    // (ReduceAndUpdate waits for them too, but a caller may have skipped it).
    DYT_RETURN_IF_ERROR(StreamWaits(b.stream.get(), b.comm_stream.get(), b.event.get()));
  }
  b.micro = 0;
  b.reduced_early = false;
  b.zero_pending = true;  // done by the first micro-batch's backward pass
  return Status::Ok();
}

StatusOr<double> CudaBackend::ForwardBackward(const int32_t* inputs, const int32_t* targets,
                                              int batch, float grad_scale) {
  Impl& b = *impl_;
  DYT_RETURN_IF_ERROR(b.CheckUsable());
  if (b.micro >= b.grad_accum) {
    // The step's gradients may already be (partly) all-reduced: more micro-batches would add
    // unreduced gradients that ReduceAndUpdate no longer averages.
    return FailedPrecondition("CudaBackend: more than train.grad_accum = " +
                              std::to_string(b.grad_accum) + " micro-batches since ZeroGrads");
  }
  const bool last = ++b.micro == b.grad_accum;
  GradReadyFn ready;
  // ZeRO-1 reduce-scatters the whole buffer in ReduceAndUpdate instead (its shards do not
  // follow the blocks' ranges).
  if (last && b.world() > 1 && !b.zero1) {
    ready = [&b](int64_t begin, int64_t end) { return b.AllReduceGrads(begin, end); };
    b.reduced_early = true;
  }
  auto loss =
      b.model->ForwardBackward(inputs, targets, batch, grad_scale, ready,
                               b.zero_pending ? GradMode::kOverwrite : GradMode::kAccumulate);
  // On failure the gradients may be partly written: a retry overwrites them again.
  if (!loss.ok()) return b.Track(loss.status());
  b.zero_pending = false;
  return loss;
}

StatusOr<double> CudaBackend::Loss(const int32_t* inputs, const int32_t* targets, int batch) {
  return impl_->model->Loss(inputs, targets, batch);
}

StatusOr<double> CudaBackend::ReduceAndUpdate(float lr, float clip) {
  Impl& b = *impl_;
  DYT_RETURN_IF_ERROR(b.CheckUsable());
  auto norm = ReduceAndUpdateOnce(lr, clip);
  // With peers, a failure here may leave an all-reduce issued on some ranks only.
  if (!norm.ok()) b.NoteCollectiveResult(norm.status());
  return norm;
}

StatusOr<double> CudaBackend::ReduceAndUpdateOnce(float lr, float clip) {
  Impl& b = *impl_;
  cudaStream_t s = b.stream.get();
  if (b.zero_pending) {
    // An update with no micro-batch since ZeroGrads: its gradients are zero.
    b.Mark("zero_grads");
    DYT_RETURN_IF_ERROR(b.model->ZeroGrads());
    b.zero_pending = false;
  }
  float* g = b.model->grads();
  float* p = b.model->params();
  if (b.world() > 1) {
    b.Mark("allreduce.wait");
    if (b.zero1) {
#ifdef DYT_WITH_NCCL
      // This rank's shard of the averaged gradient, in place (NCCL's in-place reduce-scatter:
      // the output is the rank's own slice of the input).
      DYT_RETURN_IF_ERROR(StreamWaits(b.comm_stream.get(), s, b.event.get()));
      DYT_RETURN_IF_ERROR(
          b.nccl->ReduceScatter(g, g + b.opt_begin, size_t(b.opt_size()), dist::ReduceOp::kAvg));
#endif
    } else if (!b.reduced_early) {
      DYT_RETURN_IF_ERROR(b.AllReduceGrads(0, b.total()));
    }
    DYT_RETURN_IF_ERROR(StreamWaits(s, b.comm_stream.get(), b.event.get()));
  }
  b.reduced_early = false;
  b.Mark("grad_norm");
  DYT_ASSIGN_OR_RETURN(const double norm, b.GradNorm());
  // clip_grad_norm_ semantics, as the CPU backend: scale when max_norm / (norm + 1e-6) < 1.
  float coef = 1.0f;
  if (clip > 0) {
    const float c = float(clip / (norm + 1e-6));
    if (c < 1.0f) coef = c;
  }
  ++b.step;
  // With ZeRO-1 the bf16 copy is refreshed whole after the all-gather.
  bf16* p16 = b.zero1 ? nullptr : b.model->params_bf16();
  b.Mark("adamw");
  // One launch over the optimizer's range (m and v are indexed from its start); the runs say
  // which elements decay by sc.decay.
  const AdamWScalars sc = AdamWStepScalars(lr, b.adamw.beta1, b.adamw.beta2, b.adamw.eps,
                                           b.adamw.weight_decay, /*decays=*/true, b.step, coef);
  AdamWDecayRuns runs;
  runs.bounds = b.run_bounds.get();
  runs.decays = b.run_decays.get();
  runs.count = b.run_count;
  const int64_t o = b.opt_begin;
  DYT_RETURN_IF_ERROR(AdamWUpdate(p + o, p16 != nullptr ? p16 + o : nullptr, g + o, b.m.get(),
                                  b.v.get(), b.adam_n, sc, s, &runs));
  if (b.zero1) {
#ifdef DYT_WITH_NCCL
    // Every rank's updated shard to every rank (in place), then the bf16 copy of the others'.
    b.Mark("allgather");
    DYT_RETURN_IF_ERROR(StreamWaits(b.comm_stream.get(), s, b.event.get()));
    DYT_RETURN_IF_ERROR(b.nccl->AllGather(p + b.opt_begin, p, size_t(b.opt_size())));
    DYT_RETURN_IF_ERROR(StreamWaits(s, b.comm_stream.get(), b.event.get()));
    DYT_RETURN_IF_ERROR(b.model->RefreshBf16());
#endif
  }
  return norm;
}

StatusOr<std::vector<float>> CudaBackend::Alphas() { return impl_->model->Alphas(); }

StatusOr<HostTrainState> CudaBackend::ExportState() {
  DYT_RETURN_IF_ERROR(impl_->CheckUsable());
  auto st = ExportStateOnce();
  if (!st.ok()) impl_->NoteCollectiveResult(st.status());
  return st;
}

Status CudaBackend::ImportState(const HostTrainState& state) {
  DYT_RETURN_IF_ERROR(impl_->CheckUsable());
  Status st = ImportStateOnce(state);
  impl_->NoteCollectiveResult(st);
  return st;
}

Status CudaBackend::BroadcastParams() {
  DYT_RETURN_IF_ERROR(impl_->CheckUsable());
  Status st = BroadcastParamsOnce();
  impl_->NoteCollectiveResult(st);
  return st;
}

StatusOr<HostTrainState> CudaBackend::ExportStateOnce() {
  Impl& b = *impl_;
  HostTrainState st;
  const size_t n = size_t(b.total());
  st.params.resize(n);
  DYT_RETURN_IF_ERROR(b.model->DownloadParams(st.params.data()));
  cudaStream_t s = b.stream.get();
  if (b.zero1) {
#ifdef DYT_WITH_NCCL
    // Collective: every rank's shard of the moments gathered, so the state is the full one.
    // Gathered into the gradient buffer (its size, and unused between steps: the next
    // micro-batch overwrites it, as zero_pending now says), so a checkpoint needs none of the
    // memory ZeRO-1 saved.
    float* full = b.model->grads();
    b.zero_pending = true;
    for (auto [src, dst] : {std::pair{&b.m, &st.adam_m}, {&b.v, &st.adam_v}}) {
      DYT_RETURN_IF_ERROR(StreamWaits(b.comm_stream.get(), s, b.event.get()));
      DYT_RETURN_IF_ERROR(b.nccl->AllGather(src->get(), full, size_t(b.opt_size())));
      DYT_RETURN_IF_ERROR(StreamWaits(s, b.comm_stream.get(), b.event.get()));
      dst->resize(n);
      DYT_CUDA_RETURN_IF_ERROR(
          cudaMemcpyAsync(dst->data(), full, n * sizeof(float), cudaMemcpyDeviceToHost, s));
      DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
    }
#endif
  } else {
    st.adam_m.resize(n);
    st.adam_v.resize(n);
    DYT_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(st.adam_m.data(), b.m.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
    DYT_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(st.adam_v.data(), b.v.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
    DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
  }
  st.adam_step = b.step;
  return st;
}

Status CudaBackend::ImportStateOnce(const HostTrainState& st) {
  Impl& b = *impl_;
  const size_t n = size_t(b.total());
  if (st.params.size() != n || st.adam_m.size() != n || st.adam_v.size() != n) {
    return FailedPrecondition("checkpoint: parameter buffers do not match the model");
  }
  // The optimizer keeps the moments of its range only (everything, or this rank's ZeRO-1
  // shard; the padding past the parameters is zero), so a checkpoint from any number of
  // ranks restores onto any other.
  const size_t k = size_t(b.opt_size());
  std::vector<float> m(k, 0.0f), v(k, 0.0f);
  for (size_t i = 0; i < k && size_t(b.opt_begin) + i < n; ++i) {
    m[i] = st.adam_m[size_t(b.opt_begin) + i];
    v[i] = st.adam_v[size_t(b.opt_begin) + i];
  }
  cudaStream_t s = b.stream.get();
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(b.m.get(), m.data(), k * sizeof(float), cudaMemcpyHostToDevice, s));
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(b.v.get(), v.data(), k * sizeof(float), cudaMemcpyHostToDevice, s));
  DYT_RETURN_IF_ERROR(b.model->UploadParams(st.params.data()));  // waits for the stream
  b.step = st.adam_step;
  return BroadcastParamsOnce();
}

Status CudaBackend::BroadcastParamsOnce() {
  Impl& b = *impl_;
  if (b.world() == 1) return Status::Ok();
#ifdef DYT_WITH_NCCL
  cudaStream_t s = b.stream.get();
  DYT_RETURN_IF_ERROR(StreamWaits(b.comm_stream.get(), s, b.event.get()));
  DYT_RETURN_IF_ERROR(b.nccl->Broadcast(b.model->params(), size_t(b.total()), 0));
  DYT_RETURN_IF_ERROR(StreamWaits(s, b.comm_stream.get(), b.event.get()));
  DYT_RETURN_IF_ERROR(b.model->RefreshBf16());
  return CudaStatus(cudaStreamSynchronize(s), "CudaBackend::BroadcastParams");
#else
  return FailedPrecondition("cuda backend: built without NCCL");
#endif
}

}  // namespace dyt::cuda
