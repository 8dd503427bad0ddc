#include "compute/model/backend_select.h"

#include "gtest/gtest.h"
#include "kernels/cuda/cuda_probe.h"

namespace leoam {
namespace {

TEST(BackendSelectTest, AutoAlwaysGivesAWorkingBackend) {
  auto backend = CreateBackend({.kind = "auto", .num_threads = 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  // Until the CUDA backend exists, auto runs on the CPU even where a GPU is present.
  EXPECT_EQ((*backend)->name(), "cpu");
}

TEST(BackendSelectTest, CudaWithoutGpuIsUnavailableNotACrash) {
  kernels::CudaProbe probe = kernels::ProbeCuda();
  auto backend = CreateBackend({.kind = "cuda"});
  ASSERT_FALSE(backend.ok());
  if (probe.device_count == 0) {
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnavailable) << backend.status();
  } else {
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnimplemented) << backend.status();
  }
}

TEST(BackendSelectTest, UnknownKindIsInvalid) {
  auto backend = CreateBackend({.kind = "tpu"});
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CreateBackend({.kind = "cpu", .num_threads = -2}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace leoam
