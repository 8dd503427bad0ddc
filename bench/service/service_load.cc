// leoam-bench-service: N concurrent clients, each sending R generation requests back to back
// (random prompt token ids, greedy, ignore_eos, fixed max_tokens) to a running leoam-compute.
// Client-side measurements: TTFT (send -> first token chunk), inter-token latency (gap between
// successive token chunks of one request), aggregate throughput (tokens / wall time).
//
//   leoam-bench-service --server unix:///tmp/leoam/compute.sock --clients 16 --requests 2 --max-tokens 64
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "grpcpp/grpcpp.h"
#include "leoam/v1/generation.grpc.pb.h"

ABSL_FLAG(std::string, server, "unix:///tmp/leoam/compute.sock", "Address of leoam-compute.");
ABSL_FLAG(int32_t, clients, 1, "Concurrent clients (one channel and thread each).");
ABSL_FLAG(int32_t, requests, 2, "Requests per client, sent one after another.");
ABSL_FLAG(int32_t, prompt_tokens, 32, "Prompt length in tokens (random ids).");
ABSL_FLAG(int32_t, max_tokens, 64, "Tokens generated per request (ignore_eos).");
ABSL_FLAG(int32_t, warmup, 1, "Requests sent (by one client) before measuring.");
ABSL_FLAG(std::string, label, "", "Label printed in the result row.");
ABSL_FLAG(bool, markdown, true, "Print a markdown table row (else key=value).");

namespace {

namespace v1 = ::leoam::v1;

struct Samples {
  std::vector<double> ttft_ms, itl_ms;
  int64_t tokens = 0;
  int32_t failures = 0;
  std::string first_error;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5));
  return v[i];
}

v1::GenerateRequest MakeRequest(std::mt19937& rng, int32_t vocab) {
  v1::GenerateRequest r;
  r.add_token_ids(1);
  std::uniform_int_distribution<int32_t> id(3, vocab - 1);
  for (int i = 1; i < absl::GetFlag(FLAGS_prompt_tokens); ++i) r.add_token_ids(id(rng));
  r.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  r.set_ignore_eos(true);
  return r;
}

void RunOne(v1::Generation::Stub& stub, const v1::GenerateRequest& req, Samples& s) {
  grpc::ClientContext ctx;
  const absl::Time start = absl::Now();
  absl::Time last = start;
  bool first = true;
  auto reader = stub.Generate(&ctx, req);
  v1::GenerateResponse m;
  while (reader->Read(&m)) {
    if (!m.has_chunk() || m.chunk().token_ids_size() == 0) continue;
    const absl::Time now = absl::Now();
    if (first) {
      s.ttft_ms.push_back(absl::ToDoubleMilliseconds(now - start));
      first = false;
    } else {
      s.itl_ms.push_back(absl::ToDoubleMilliseconds(now - last));
    }
    last = now;
    s.tokens += m.chunk().token_ids_size();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) {
    if (s.failures++ == 0) s.first_error = st.error_message();
  }
}

int Main() {
  const std::string server = absl::GetFlag(FLAGS_server);
  auto stub = v1::Generation::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
  v1::GetModelInfoResponse info;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
    if (!s.ok()) {
      std::fprintf(stderr, "leoam-bench-service: %s: %s\n", server.c_str(), s.error_message().c_str());
      return 1;
    }
  }
  std::mt19937 warm_rng(7);
  Samples ignored;
  for (int i = 0; i < absl::GetFlag(FLAGS_warmup); ++i) RunOne(*stub, MakeRequest(warm_rng, info.vocab_size()), ignored);

  const int32_t clients = absl::GetFlag(FLAGS_clients);
  std::vector<Samples> per_client(clients);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      // Own channel per client, as separate client processes would have.
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", c);  // distinct channels, not one shared subchannel
      auto own = v1::Generation::NewStub(grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args));
      std::mt19937 rng(1000 + c);
      for (int r = 0; r < absl::GetFlag(FLAGS_requests); ++r) RunOne(*own, MakeRequest(rng, info.vocab_size()), per_client[c]);
    });
  }
  for (auto& t : threads) t.join();
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  Samples all;
  for (const Samples& s : per_client) {
    all.ttft_ms.insert(all.ttft_ms.end(), s.ttft_ms.begin(), s.ttft_ms.end());
    all.itl_ms.insert(all.itl_ms.end(), s.itl_ms.begin(), s.itl_ms.end());
    all.tokens += s.tokens;
    all.failures += s.failures;
    if (all.first_error.empty()) all.first_error = s.first_error;
  }
  const double tps = all.tokens / wall;
  if (absl::GetFlag(FLAGS_markdown)) {
    std::printf("| %s | %d | %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %d |\n", absl::GetFlag(FLAGS_label).c_str(),
                clients, static_cast<long long>(all.tokens), tps, Percentile(all.ttft_ms, 50),
                Percentile(all.ttft_ms, 99), Percentile(all.itl_ms, 50), Percentile(all.itl_ms, 99), all.failures);
  } else {
    std::printf("label=%s clients=%d tokens=%lld wall_s=%.3f tokens_per_s=%.2f ttft_p50_ms=%.2f ttft_p99_ms=%.2f "
                "itl_p50_ms=%.2f itl_p99_ms=%.2f failures=%d\n",
                absl::GetFlag(FLAGS_label).c_str(), clients, static_cast<long long>(all.tokens), wall, tps,
                Percentile(all.ttft_ms, 50), Percentile(all.ttft_ms, 99), Percentile(all.itl_ms, 50),
                Percentile(all.itl_ms, 99), all.failures);
  }
  if (all.failures > 0) std::fprintf(stderr, "%d requests failed, first: %s\n", all.failures, all.first_error.c_str());
  return all.failures > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
                    "Load generator for leoam-compute: TTFT, inter-token latency and throughput at N clients.\n"
                    "  leoam-bench-service --server unix:///tmp/leoam/compute.sock --clients 16 --requests 2");
  return Main();
}
