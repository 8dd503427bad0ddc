// Test helpers that call leoam-compute: one Generate call collected into an Outcome, a synthetic
// model made with leoam-synth, and waiting for GetServerInfo conditions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "leoam/v1/generation.grpc.pb.h"

namespace leoam::service::testing {

struct Outcome {
  grpc::Status status;
  std::string request_id;
  std::vector<int32_t> tokens;
  std::string text;
  int progress_messages = 0;
  int32_t last_processed = 0;
  std::vector<leoam::v1::PrefillProgress> progress;  // every progress message, in order
  bool has_final = false;
  leoam::v1::FinalResult final;
};

// Runs one Generate call to its end. `on_chunk(ctx, tokens so far)` runs after each token chunk
// (e.g. to cancel the call); `deadline` 0 = none.
Outcome RunGenerate(leoam::v1::Generation::Stub& stub, const leoam::v1::GenerateRequest& request,
                    absl::Duration deadline = absl::ZeroDuration(),
                    const std::function<void(grpc::ClientContext&, int)>& on_chunk = nullptr);

absl::StatusOr<leoam::v1::GetServerInfoResponse> ServerInfo(leoam::v1::Generation::Stub& stub);

// Polls GetServerInfo until `pred` holds or `timeout` passes; returns whether it held.
bool WaitForServer(leoam::v1::Generation::Stub& stub,
                   const std::function<bool(const leoam::v1::GetServerInfoResponse&)>& pred, absl::Duration timeout);

// Writes a synthetic llama model (random weights, ~12M parameters, f32, context 4096) with
// leoam-synth to `path`: slow enough per token on the CPU that a generation can be stopped midway.
absl::Status MakeSlowSyntheticModel(const std::string& path, const std::string& dir);

leoam::v1::GenerateRequest Greedy(std::vector<int32_t> ids, int32_t max_tokens);

// BOS plus n - 1 token ids spread over [5, 1995) (a fixed long prompt for the store and layer-major tests).
std::vector<int32_t> LongPrompt(int32_t n);

}  // namespace leoam::service::testing
