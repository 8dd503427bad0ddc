// A process a test starts (a server, a CLI): fork + exec with stdout and stderr sent to files.
// The child asks for SIGTERM when the test process dies (PR_SET_PDEATHSIG), so a crashed test
// never leaves a server (or its /dev/shm arena) behind. Move-only; the destructor stops a child
// that still runs (SIGTERM, then reaps it).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace leoam::testing {

class ChildProcess {
 public:
  // argv[0] is the binary's path. stdout truncates `out_path`; stderr appends to `err_path` (a
  // restarted server keeps one log).
  static absl::StatusOr<ChildProcess> Spawn(const std::vector<std::string>& argv, const std::string& out_path,
                                            const std::string& err_path);
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it once it has).
  bool Alive();
  // Sends `signal` (none when 0) and waits for the exit; returns the exit code, 128 + signal when
  // killed by one, -1 when there is no child.
  int SignalAndWait(int signal);

 private:
  pid_t pid_ = -1;
};

// The whole file ("" when it cannot be read): logs for failure messages.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace leoam::testing
