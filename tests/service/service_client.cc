#include "tests/service/service_client.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/service/compute_process.h"

namespace leoam::service::testing {

Outcome RunGenerate(leoam::v1::Generation::Stub& stub, const leoam::v1::GenerateRequest& request,
                    absl::Duration deadline, const std::function<void(grpc::ClientContext&, int)>& on_chunk) {
  Outcome o;
  grpc::ClientContext ctx;
  if (deadline > absl::ZeroDuration()) ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  auto reader = stub.Generate(&ctx, request);
  leoam::v1::GenerateResponse m;
  while (reader->Read(&m)) {
    if (o.request_id.empty()) o.request_id = m.request_id();
    if (m.has_progress()) {
      ++o.progress_messages;
      o.last_processed = m.progress().processed_tokens();
      o.progress.push_back(m.progress());
    } else if (m.has_chunk()) {
      o.tokens.insert(o.tokens.end(), m.chunk().token_ids().begin(), m.chunk().token_ids().end());
      o.text += m.chunk().text();
      if (on_chunk) on_chunk(ctx, static_cast<int>(o.tokens.size()));
    } else if (m.has_final()) {
      o.has_final = true;
      o.final = m.final();
    }
  }
  o.status = reader->Finish();
  return o;
}

absl::StatusOr<leoam::v1::GetServerInfoResponse> ServerInfo(leoam::v1::Generation::Stub& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  leoam::v1::GetServerInfoResponse r;
  grpc::Status s = stub.GetServerInfo(&ctx, leoam::v1::GetServerInfoRequest(), &r);
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return r;
}

bool WaitForServer(leoam::v1::Generation::Stub& stub,
                   const std::function<bool(const leoam::v1::GetServerInfoResponse&)>& pred, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    absl::StatusOr<leoam::v1::GetServerInfoResponse> r = ServerInfo(stub);
    if (r.ok() && pred(*r)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

absl::Status MakeSlowSyntheticModel(const std::string& path, const std::string& dir) {
  absl::StatusOr<RunResult> r = RunProcess(
      {BinaryPath("leoam-synth"), "--arch=llama", "--dim=384", "--layers=6", "--heads=6", "--kv-heads=6",
       "--ffn=1024", "--vocab=2000", "--context=4096", "--dtype=f32", "--seed=3", "--threads=1", "--out=" + path},
      dir);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) return absl::InternalError(absl::StrCat("leoam-synth failed: ", r->err));
  return absl::OkStatus();
}

leoam::v1::GenerateRequest Greedy(std::vector<int32_t> ids, int32_t max_tokens) {
  leoam::v1::GenerateRequest r;
  for (int32_t id : ids) r.add_token_ids(id);
  r.set_max_tokens(max_tokens);
  return r;
}

std::vector<int32_t> LongPrompt(int32_t n) {
  std::vector<int32_t> p = {1};
  for (int32_t i = 0; i + 1 < n; ++i) p.push_back(5 + (i * 7919) % 1990);
  return p;
}

}  // namespace leoam::service::testing
