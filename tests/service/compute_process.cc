#include "tests/service/compute_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_format.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/client_unary_call.h"

namespace leoam::service::testing {
namespace {

// fork + exec with stdout/stderr redirected; the child gets SIGTERM when the test dies.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args, const std::string& out_path,
                            const std::string& err_path) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) return absl::InternalError("cannot open output files");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrFormat("fork: %s", std::strerror(errno)));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  return pid;
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

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
  absl::StatusOr<pid_t> pid = Spawn(args, "/dev/null", p->log_);
  if (!pid.ok()) return pid.status();
  p->pid_ = *pid;
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

ComputeProcess::~ComputeProcess() {
  if (pid_ > 0 && Alive()) Stop();
}

std::unique_ptr<leoam::v1::Generation::Stub> ComputeProcess::NewStub() const {
  return leoam::v1::Generation::NewStub(channel_);
}

bool ComputeProcess::Alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

int ComputeProcess::Stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ComputeProcess::Log() const { return ReadAll(log_); }

absl::StatusOr<RunResult> RunProcess(const std::vector<std::string>& argv, const std::string& dir) {
  static int counter = 0;
  const std::string out = absl::StrFormat("%s/run%d.out", dir, counter);
  const std::string err = absl::StrFormat("%s/run%d.err", dir, counter++);
  absl::StatusOr<pid_t> pid = Spawn(argv, out, err);
  if (!pid.ok()) return pid.status();
  int status = 0;
  ::waitpid(*pid, &status, 0);
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  return r;
}

}  // namespace leoam::service::testing
