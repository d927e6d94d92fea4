// dyt-bench-submit: closed-loop SubmitJob load on a running dyt-scheduler.
//
// --threads client threads, each with its own completion queue, keep --in-flight requests in
// flight between them (async API: a completion immediately starts the next call) over
// --channels separate gRPC connections. Every request is a valid spec (the one
// tests/scheduler/service_test_util.h ValidSpec builds) with a unique client_request_id, so
// each acknowledged call is a new durable job. After --warmup-s the tool counts, for
// --duration-s, the calls that completed OK (acks/s) and their latencies (p50, p99, max).
// Non-OK completions are counted and the first one is printed; the exit status is 1 when any
// call failed.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dyt/v1/job_service.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

dyt::v1::JobSpec ValidSpec(const std::string& data_path) {
  dyt::v1::JobSpec spec;
  spec.set_name("load");
  spec.set_owner("bench");
  spec.mutable_model()->set_preset("tiny");
  spec.mutable_model()->set_norm("dyt");
  spec.mutable_data()->add_train_paths(data_path);
  spec.mutable_optimizer()->set_lr(3e-4f);
  spec.mutable_train()->set_steps(1000);
  spec.mutable_train()->set_batch_size(8);
  spec.mutable_resources()->set_ranks(2);
  spec.mutable_resources()->set_slots_per_rank(1);
  spec.mutable_resources()->set_kind("cpu");
  spec.set_priority(10);
  spec.set_max_restarts(3);
  spec.mutable_checkpoint()->set_every_steps(100);
  return spec;
}

struct Call {
  grpc::ClientContext context;
  dyt::v1::SubmitJobRequest request;
  dyt::v1::SubmitJobResponse response;
  grpc::Status status;
  Clock::time_point start;
  std::unique_ptr<grpc::ClientAsyncResponseReader<dyt::v1::SubmitJobResponse>> reader;
};

struct ThreadResult {
  int64_t acks = 0;
  int64_t errors = 0;
  std::string first_error;
  std::vector<int64_t> latency_us;  // acks completed in the measured window
};

struct Options {
  std::string target;
  int threads = 2;
  int channels = 4;
  int in_flight = 256;
  double warmup_s = 2;
  double duration_s = 10;
  std::string data_path = "/data/shards/train-*.bin";
};

void RunThread(int thread_index, int in_flight,
               const std::vector<std::unique_ptr<dyt::v1::JobService::Stub>>& stubs,
               const dyt::v1::JobSpec& spec, Clock::time_point measure_from,
               Clock::time_point measure_to, ThreadResult* result) {
  grpc::CompletionQueue cq;
  int64_t next_id = 0;
  size_t next_stub = static_cast<size_t>(thread_index);
  auto start_call = [&](std::unique_ptr<Call> call) {
    call->request = {};
    *call->request.mutable_spec() = spec;
    call->request.set_client_request_id("load-" + std::to_string(thread_index) + "-" +
                                        std::to_string(next_id++));
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    call->start = Clock::now();
    auto& stub = *stubs[next_stub++ % stubs.size()];
    call->reader = stub.PrepareAsyncSubmitJob(&call->context, call->request, &cq);
    call->reader->StartCall();
    Call* raw = call.release();
    raw->reader->Finish(&raw->response, &raw->status, raw);
  };
  for (int i = 0; i < in_flight; ++i) start_call(std::make_unique<Call>());
  int outstanding = in_flight;
  void* tag = nullptr;
  bool ok = false;
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    std::unique_ptr<Call> done(static_cast<Call*>(tag));
    --outstanding;
    const auto now = Clock::now();
    const bool in_window = now >= measure_from && now < measure_to;
    if (done->status.ok()) {
      if (in_window) {
        ++result->acks;
        result->latency_us.push_back(
            std::chrono::duration_cast<std::chrono::microseconds>(now - done->start).count());
      }
    } else {
      ++result->errors;
      if (result->first_error.empty()) {
        result->first_error =
            std::to_string(done->status.error_code()) + ": " + done->status.error_message();
      }
    }
    if (now < measure_to) {
      start_call(std::make_unique<Call>());
      ++outstanding;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);
}

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dyt-bench-submit: concurrent SubmitJob load on a running dyt-scheduler"};
  Options o;
  app.add_option("--target", o.target, "HOST:PORT of dyt-scheduler")->required();
  app.add_option("--threads", o.threads, "Client threads (one completion queue each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--channels", o.channels, "Separate gRPC connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--in-flight", o.in_flight, "Requests kept in flight (all threads together)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--warmup-s", o.warmup_s, "Seconds of load before measuring")
      ->capture_default_str();
  app.add_option("--duration-s", o.duration_s, "Seconds measured")->capture_default_str();
  app.add_option("--data-path", o.data_path, "Absolute train path put in every spec")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<std::unique_ptr<dyt::v1::JobService::Stub>> stubs;
  for (int c = 0; c < o.channels; ++c) {
    grpc::ChannelArguments args;
    // A distinct argument per channel keeps gRPC from sharing one subchannel (connection).
    args.SetInt("dyt.bench.channel", c);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::fprintf(stderr, "cannot connect to %s\n", o.target.c_str());
      return 2;
    }
    stubs.push_back(dyt::v1::JobService::NewStub(channel));
  }

  const dyt::v1::JobSpec spec = ValidSpec(o.data_path);
  const auto t0 = Clock::now();
  const auto from =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
  const auto to = from + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(o.duration_s));
  std::vector<ThreadResult> results(o.threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    const int share = o.in_flight / o.threads + (t < o.in_flight % o.threads ? 1 : 0);
    threads.emplace_back(RunThread, t, share, std::cref(stubs), std::cref(spec), from, to,
                         &results[t]);
  }
  for (auto& t : threads) t.join();

  int64_t acks = 0;
  int64_t errors = 0;
  std::string first_error;
  std::vector<int64_t> latency;
  for (const auto& r : results) {
    acks += r.acks;
    errors += r.errors;
    if (first_error.empty()) first_error = r.first_error;
    latency.insert(latency.end(), r.latency_us.begin(), r.latency_us.end());
  }
  std::sort(latency.begin(), latency.end());
  std::printf(
      "submit load: threads=%d channels=%d in_flight=%d duration=%.1fs: %lld acks, "
      "%.0f acks/s, latency p50 %.2f ms p99 %.2f ms max %.2f ms, errors %lld\n",
      o.threads, o.channels, o.in_flight, o.duration_s, static_cast<long long>(acks),
      static_cast<double>(acks) / o.duration_s, Percentile(latency, 0.50) / 1e3,
      Percentile(latency, 0.99) / 1e3, (latency.empty() ? 0 : latency.back()) / 1e3,
      static_cast<long long>(errors));
  if (errors > 0) {
    std::printf("first error: %s\n", first_error.c_str());
    return 1;
  }
  return 0;
}
