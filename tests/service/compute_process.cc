#include "tests/service/compute_process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_format.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/client_unary_call.h"

namespace leoam::service::testing {

bool HealthServing(grpc::Channel& channel) {
  // grpc.health.v1.HealthCheckRequest{service: ""} serializes to no bytes; the reply
  // HealthCheckResponse{status: SERVING (1)} to 0x08 0x01.
  grpc::Slice empty;
  grpc::ByteBuffer req(&empty, 1), resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::Status s = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      &channel, grpc::internal::RpcMethod("/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC),
      &ctx, req, &resp);
  if (!s.ok()) return false;
  std::vector<grpc::Slice> slices;
  if (!resp.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const grpc::Slice& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  return bytes == std::string("\x08\x01", 2);
}

std::string BinaryPath(const std::string& name) {
  const char* build = std::getenv("LEOAM_BUILD_DIR");
  return std::string(build != nullptr ? build : ".") + "/bin/" + name;
}

absl::StatusOr<std::unique_ptr<ComputeProcess>> ComputeProcess::Start(const ComputeOptions& options) {
  auto p = std::unique_ptr<ComputeProcess>(new ComputeProcess());
  p->socket_ = options.dir + "/compute.sock";
  p->log_ = options.dir + "/compute.log";
  std::vector<std::string> args = {BinaryPath("leoam-compute"), "--model=" + options.model,
                                   "--listen=unix://" + p->socket_, "--threads=1"};
  args.insert(args.end(), options.extra_flags.begin(), options.extra_flags.end());
  absl::StatusOr<leoam::testing::ChildProcess> child = leoam::testing::ChildProcess::Spawn(args, "/dev/null", p->log_);
  if (!child.ok()) return child.status();
  p->child_ = std::move(*child);
  grpc::ChannelArguments channel_args;
  p->channel_ = grpc::CreateCustomChannel(p->target(), grpc::InsecureChannelCredentials(), channel_args);
  for (int i = 0; i < 600; ++i) {
    if (!p->Alive()) return absl::InternalError("leoam-compute exited at start:\n" + p->Log());
    if (::access(p->socket_.c_str(), F_OK) == 0) {
      if (HealthServing(*p->channel_)) return p;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError("leoam-compute did not become ready:\n" + p->Log());
}

ComputeProcess::~ComputeProcess() = default;  // the child is stopped with SIGTERM

std::unique_ptr<leoam::v1::Generation::Stub> ComputeProcess::NewStub() const {
  return leoam::v1::Generation::NewStub(channel_);
}

bool ComputeProcess::Alive() { return child_.Alive(); }

int ComputeProcess::Stop() { return child_.SignalAndWait(SIGTERM); }

std::string ComputeProcess::Log() const { return leoam::testing::ReadFileOrEmpty(log_); }

absl::StatusOr<RunResult> RunProcess(const std::vector<std::string>& argv, const std::string& dir) {
  static int counter = 0;
  const std::string out = absl::StrFormat("%s/run%d.out", dir, counter);
  const std::string err = absl::StrFormat("%s/run%d.err", dir, counter++);
  absl::StatusOr<leoam::testing::ChildProcess> child = leoam::testing::ChildProcess::Spawn(argv, out, err);
  if (!child.ok()) return child.status();
  RunResult r;
  r.exit_code = child->SignalAndWait(/*signal=*/0);
  r.out = leoam::testing::ReadFileOrEmpty(out);
  r.err = leoam::testing::ReadFileOrEmpty(err);
  return r;
}

}  // namespace leoam::service::testing
