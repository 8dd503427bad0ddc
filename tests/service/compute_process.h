// Test helper: runs the real leoam-compute binary on a unix socket in a temp dir and gives a stub.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "leoam/v1/generation.grpc.pb.h"
#include "tests/testing/child_process.h"

namespace leoam::service::testing {

struct ComputeOptions {
  std::string dir;                       // temp dir: compute.sock and compute.log live here
  std::string model;                     // GGUF path
  std::vector<std::string> extra_flags;  // e.g. "--max-batch=8"
};

class ComputeProcess {
 public:
  // Starts leoam-compute and waits until grpc.health.v1 answers SERVING.
  static absl::StatusOr<std::unique_ptr<ComputeProcess>> Start(const ComputeOptions& options);
  ~ComputeProcess();  // SIGTERM and wait

  std::string target() const { return "unix://" + socket_; }
  std::unique_ptr<leoam::v1::Generation::Stub> NewStub() const;
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  bool Alive();
  // SIGTERM and wait; the exit status (0 on a clean stop).
  int Stop();
  std::string Log() const;

 private:
  leoam::testing::ChildProcess child_;
  std::string socket_;
  std::string log_;
  std::shared_ptr<grpc::Channel> channel_;
};

// True when grpc.health.v1.Health/Check answers SERVING on `channel`.
bool HealthServing(grpc::Channel& channel);

// Path of a built binary of this build tree (bin/<name>).
std::string BinaryPath(const std::string& name);

// Runs a process to completion: argv[0] is the binary. Returns its exit status; stdout and
// stderr are captured.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
absl::StatusOr<RunResult> RunProcess(const std::vector<std::string>& argv, const std::string& dir);

}  // namespace leoam::service::testing
