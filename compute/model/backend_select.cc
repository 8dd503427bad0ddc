#include "compute/model/backend_select.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_probe.h"
#ifdef LEOAM_HAVE_CUDA_BACKEND
#include "kernels/cuda/cuda_backend.h"
#endif

namespace leoam {

absl::StatusOr<std::unique_ptr<kernels::Backend>> CreateBackend(const BackendChoice& choice) {
  if (choice.kind != "auto" && choice.kind != "cpu" && choice.kind != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat("unknown backend '", choice.kind, "' (use auto, cpu or cuda)"));
  }
  if (choice.num_threads < 0) return absl::InvalidArgumentError("threads must be >= 0");
  if (choice.kind != "cpu") {
    kernels::CudaProbe probe = kernels::ProbeCuda();
    if (choice.kind == "cuda" && probe.device_count == 0) {
      return absl::UnavailableError(absl::StrCat("backend cuda requested but ", probe.detail));
    }
    if (probe.device_count > 0) {
#ifdef LEOAM_HAVE_CUDA_BACKEND
      absl::StatusOr<std::unique_ptr<kernels::CudaBackend>> cuda = kernels::CudaBackend::Create();
      if (cuda.ok()) {
        LEOAM_LOG(INFO, "using the CUDA backend on %s", (*cuda)->device_name());
        return std::unique_ptr<kernels::Backend>(std::move(*cuda));
      }
      if (choice.kind == "cuda") return cuda.status();
      LEOAM_LOG(WARNING, "GPU found (%s) but the CUDA backend failed to start (%s); using the CPU backend",
                probe.detail, cuda.status().ToString());
#else
      if (choice.kind == "cuda") {
        return absl::UnimplementedError(
            absl::StrCat("GPU found (", probe.detail, ") but this build has no CUDA backend (LEOAM_CUDA=OFF)"));
      }
      LEOAM_LOG(WARNING, "GPU found (%s) but this build has no CUDA backend; using the CPU backend", probe.detail);
#endif
    } else {
      LEOAM_LOG(DEBUG, "using the CPU backend: %s", probe.detail);
    }
  }
  kernels::CpuBackendOptions options;
  options.num_threads = choice.num_threads > 0 ? choice.num_threads : DefaultThreadCount();
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::CpuBackend> cpu, kernels::CpuBackend::Create(options));
  return std::unique_ptr<kernels::Backend>(std::move(cpu));
}

}  // namespace leoam
