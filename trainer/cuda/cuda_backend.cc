#include "trainer/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <cmath>
#include <string>
#include <utility>

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

// A contiguous range of the parameter buffer with one weight-decay setting.
struct DecayRun {
  int64_t begin = 0, end = 0;
  bool decays = true;
};

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
  DeviceBuffer<float> m, v;
  DeviceBuffer<double> sumsq;
  DeviceBuffer<uint8_t> reduce_scratch;
  double* h_sumsq = nullptr;  // pinned
  std::vector<DecayRun> runs;
  int64_t step = 0;
  int micro = 0;                      // micro-batches since ZeroGrads
  bool reduced_early = false;         // this step's gradients already all-reduced during backward
  PhaseProfiler* profiler = nullptr;  // benchmarks only
  // Set when a call failed after this step's gradients began to be all-reduced: this rank's
  // collectives may no longer match its peers', so every later call refuses (the launcher
  // ends the job; resuming from a checkpoint is the way on).
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

  void Mark(const char* phase) {
    if (profiler != nullptr) profiler->Mark(phase, stream.get());
  }

  ~Impl() {
#ifdef DYT_WITH_NCCL
    // Out of step with the peers: the queued collectives may never complete, and freeing the
    // buffers they use (below) would wait for them.
    if (nccl != nullptr && !broken.empty()) nccl->Abort();
#endif
    if (h_sumsq != nullptr) cudaFreeHost(h_sumsq);
  }
  int world() const { return host ? host->world_size() : 1; }
  int64_t total() const { return model->num_params(); }

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
  DYT_ASSIGN_OR_RETURN(
      b.model, LlamaCuda::Create(config.model, config.train.batch_size, config.train.seq_len,
                                 config.train.recompute, b.stream.get()));
  DYT_RETURN_IF_ERROR(b.model->InitParams(config.train.seed));
  const size_t n = size_t(b.total());
  DYT_ASSIGN_OR_RETURN(b.m, DeviceBuffer<float>::Allocate(n));
  DYT_ASSIGN_OR_RETURN(b.v, DeviceBuffer<float>::Allocate(n));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(b.m.get(), 0, b.m.bytes(), b.stream.get()));
  DYT_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(b.v.get(), 0, b.v.bytes(), b.stream.get()));
  DYT_ASSIGN_OR_RETURN(b.sumsq, DeviceBuffer<double>::Allocate(1));
  DYT_ASSIGN_OR_RETURN(b.reduce_scratch,
                       DeviceBuffer<uint8_t>::Allocate(ReduceScratchBytes(int64_t(n))));
  DYT_CUDA_RETURN_IF_ERROR(cudaMallocHost(reinterpret_cast<void**>(&b.h_sumsq), sizeof(double)));

  // Weight decay by tensor role, merged into contiguous runs (padding goes with the tensor
  // before it: zero parameters and gradients stay zero under either rule).
  const ParamLayout& layout = b.model->layout();
  for (const ParamTensor& t : layout.tensors()) {
    const bool decays = DecaysWeight(b.adamw, t.role);
    if (b.runs.empty() || b.runs.back().decays != decays) {
      if (!b.runs.empty()) b.runs.back().end = t.offset;
      b.runs.push_back({t.offset, t.offset, decays});
    }
  }
  if (!b.runs.empty()) {
    b.runs.front().begin = 0;
    b.runs.back().end = b.total();
  }
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(b.stream.get()));
  return std::unique_ptr<CudaBackend>(new CudaBackend(std::move(impl)));
}

std::string CudaBackend::DeviceSummary() const {
  return "GPU " + std::to_string(impl_->device) + " " + impl_->device_name +
         ", bf16 mixed precision" + (impl_->world() > 1 ? ", NCCL" : "") + ", " +
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
  b.Mark("zero_grads");
  if (b.world() > 1) {
    // All-reduces of the previous step write the gradients on the comm stream: zero after them
    // (ReduceAndUpdate waits for them too, but a caller may have skipped it).
    DYT_RETURN_IF_ERROR(StreamWaits(b.stream.get(), b.comm_stream.get(), b.event.get()));
  }
  b.micro = 0;
  b.reduced_early = false;
  return b.model->ZeroGrads();
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
  if (last && b.world() > 1) {
    ready = [&b](int64_t begin, int64_t end) { return b.AllReduceGrads(begin, end); };
    b.reduced_early = true;
  }
  auto loss = b.model->ForwardBackward(inputs, targets, batch, grad_scale, ready);
  if (!loss.ok()) return b.Track(loss.status());
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
  if (!norm.ok() && b.world() > 1) b.broken = norm.status().ToString();
  return norm;
}

StatusOr<double> CudaBackend::ReduceAndUpdateOnce(float lr, float clip) {
  Impl& b = *impl_;
  cudaStream_t s = b.stream.get();
  if (b.world() > 1) {
    b.Mark("allreduce.wait");
    if (!b.reduced_early) DYT_RETURN_IF_ERROR(b.AllReduceGrads(0, b.total()));
    DYT_RETURN_IF_ERROR(StreamWaits(s, b.comm_stream.get(), b.event.get()));
  }
  b.reduced_early = false;
  float* g = b.model->grads();
  b.Mark("grad_norm");
  DYT_RETURN_IF_ERROR(SumSquaresDevice(b.sumsq.get(), g, b.total(), b.reduce_scratch.get(),
                                       b.reduce_scratch.bytes(), s));
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(b.h_sumsq, b.sumsq.get(), sizeof(double), cudaMemcpyDeviceToHost, s));
  b.Mark("host.wait");
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
  const double norm = std::sqrt(*b.h_sumsq);
  // clip_grad_norm_ semantics, as the CPU backend: scale when max_norm / (norm + 1e-6) < 1.
  float coef = 1.0f;
  if (clip > 0) {
    const float c = float(clip / (norm + 1e-6));
    if (c < 1.0f) coef = c;
  }
  ++b.step;
  float* p = b.model->params();
  bf16* p16 = b.model->params_bf16();
  b.Mark("adamw");
  for (const DecayRun& r : b.runs) {
    const AdamWScalars sc = AdamWStepScalars(lr, b.adamw.beta1, b.adamw.beta2, b.adamw.eps,
                                             b.adamw.weight_decay, r.decays, b.step, coef);
    DYT_RETURN_IF_ERROR(AdamWUpdate(p + r.begin, p16 + r.begin, g + r.begin, b.m.get() + r.begin,
                                    b.v.get() + r.begin, r.end - r.begin, sc, s));
  }
  return norm;
}

StatusOr<std::vector<float>> CudaBackend::Alphas() { return impl_->model->Alphas(); }

StatusOr<HostTrainState> CudaBackend::ExportState() {
  Impl& b = *impl_;
  HostTrainState st;
  const size_t n = size_t(b.total());
  st.params.resize(n);
  st.adam_m.resize(n);
  st.adam_v.resize(n);
  DYT_RETURN_IF_ERROR(b.model->DownloadParams(st.params.data()));
  cudaStream_t s = b.stream.get();
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(st.adam_m.data(), b.m.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(st.adam_v.data(), b.v.get(), n * sizeof(float), cudaMemcpyDeviceToHost, s));
  DYT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
  st.adam_step = b.step;
  return st;
}

Status CudaBackend::ImportState(const HostTrainState& st) {
  Impl& b = *impl_;
  const size_t n = size_t(b.total());
  if (st.params.size() != n || st.adam_m.size() != n || st.adam_v.size() != n) {
    return FailedPrecondition("checkpoint: parameter buffers do not match the model");
  }
  cudaStream_t s = b.stream.get();
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(b.m.get(), st.adam_m.data(), n * sizeof(float), cudaMemcpyHostToDevice, s));
  DYT_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(b.v.get(), st.adam_v.data(), n * sizeof(float), cudaMemcpyHostToDevice, s));
  DYT_RETURN_IF_ERROR(b.model->UploadParams(st.params.data()));  // waits for the stream
  b.step = st.adam_step;
  return BroadcastParams();
}

Status CudaBackend::BroadcastParams() {
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
