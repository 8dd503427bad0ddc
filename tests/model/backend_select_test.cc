#include "compute/model/backend_select.h"

#include "gtest/gtest.h"
#include "kernels/cuda/cuda_probe.h"

namespace leoam {
namespace {

#ifdef LEOAM_HAVE_CUDA_BACKEND
constexpr bool kBuiltWithCuda = true;
#else
constexpr bool kBuiltWithCuda = false;
#endif

TEST(BackendSelectTest, AutoAlwaysGivesAWorkingBackend) {
  const bool gpu = kernels::ProbeCuda().device_count > 0;
  auto backend = CreateBackend({.kind = "auto", .num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  // The GPU when there is one and this build has the CUDA backend, else the CPU.
  EXPECT_EQ((*backend)->name(), gpu && kBuiltWithCuda ? "cuda" : "cpu");
}

TEST(BackendSelectTest, CudaNeedsAGpuAndTheCudaBackend) {
  const bool gpu = kernels::ProbeCuda().device_count > 0;
  auto backend = CreateBackend({.kind = "cuda"});
  if (!gpu) {
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnavailable) << backend.status();
  } else if (!kBuiltWithCuda) {
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnimplemented) << backend.status();
  } else {
    ASSERT_TRUE(backend.ok()) << backend.status();
    EXPECT_EQ((*backend)->name(), "cuda");
  }
}

TEST(BackendSelectTest, UnknownKindIsInvalid) {
  auto backend = CreateBackend({.kind = "tpu"});
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateBackend({.kind = "cpu", .num_threads = -2}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leoam
