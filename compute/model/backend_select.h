// Picks the compute backend at run time: the CUDA backend only when a GPU is present, else CPU.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace leoam {

struct BackendChoice {
  // "auto" (GPU when present, else CPU), "cpu", or "cuda". Default "auto".
  std::string kind = "auto";
  // CPU threads; 0 means DefaultThreadCount() (LEOAM_THREADS or the CPU count).
  int num_threads = 0;
};

// INVALID_ARGUMENT for an unknown kind; UNAVAILABLE for "cuda" without a GPU; UNIMPLEMENTED for
// "cuda" in a build without CUDA; the CUDA backend's own error when it fails to start. "auto" falls
// back to the CPU and logs why.
absl::StatusOr<std::unique_ptr<kernels::Backend>> CreateBackend(const BackendChoice& choice);

}  // namespace leoam
