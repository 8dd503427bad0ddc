// GPU bandwidth benchmarks of the CUDA backend (issue: the CUDA backend), printed as markdown:
//   - the machine's yardsticks: device-to-device copy bandwidth (DRAM traffic = 2 x bytes copied),
//     host-to-device from pinned memory, from registered shared memory (how the kvstore arena is
//     mapped: a /dev/shm file, cudaHostRegister'ed) and from pageable memory;
//   - the sparse decode attention kernel (PagedAttention) at Llama-3.1-8B shape over selected pages:
//     K+V bytes read per call over its time, against the copy bandwidth (target >= 70%);
//   - the decode GEMV on F16 / Q8_0 weights of an 8B-sized matrix (weight bytes over time).
// Usage: leoam-bench-cuda [--iters N]. Needs a GPU; exits with a message otherwise.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_resources.h"

namespace leoam::kernels {
namespace {

int g_iters = 20;

#define CHECK_OK(expr)                                                           \
  do {                                                                           \
    if (auto s_ = (expr); !s_.ok()) {                                            \
      std::fprintf(stderr, "%s: %s\n", #expr, std::string(s_.ToString()).c_str()); \
      return 1;                                                                  \
    }                                                                            \
  } while (0)

// Seconds per run of fn() on `stream`, averaged over g_iters after one warm-up.
template <typename Fn>
double TimeIt(cudaStream_t stream, Fn fn) {
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  fn();
  cudaEventRecord(start, stream);
  for (int i = 0; i < g_iters; ++i) fn();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / 1e3 / g_iters;
}

int Run() {
  auto created = CudaBackend::Create();
  if (!created.ok()) {
    std::fprintf(stderr, "leoam-bench-cuda: %s\n", std::string(created.status().message()).c_str());
    return 1;
  }
  CudaBackend& gpu = **created;
  cudaStream_t stream = gpu.compute_stream();
  std::printf("# CUDA backend bandwidth on %s (%d SMs), %d iterations each\n\n", gpu.device_name().c_str(),
              gpu.sm_count(), g_iters);

  // --- yardsticks ---
  const size_t copy_bytes = size_t{1} << 30;
  auto a = gpu.Allocate(copy_bytes), b = gpu.Allocate(copy_bytes);
  CHECK_OK(a.status());
  CHECK_OK(b.status());
  cudaMemsetAsync(a->data(), 1, copy_bytes, stream);
  const double d2d = TimeIt(stream, [&] { cudaMemcpyAsync(b->data(), a->data(), copy_bytes, cudaMemcpyDeviceToDevice, stream); });
  const double device_bw = 2.0 * copy_bytes / d2d / 1e9;  // read + write traffic

  const size_t h2d_bytes = size_t{256} << 20;
  auto pinned = cuda::PinnedHostMemory::Create(h2d_bytes);
  CHECK_OK(pinned.status());
  std::memset(pinned->data(), 1, h2d_bytes);
  const double h2d_pinned = TimeIt(stream, [&] { cudaMemcpyAsync(a->data(), pinned->data(), h2d_bytes, cudaMemcpyHostToDevice, stream); });

  // The arena: a /dev/shm file mapped shared, pre-faulted, registered with CUDA.
  const std::string shm_path = "/dev/shm/leoam-bench-cuda-" + std::to_string(getpid());
  const int fd = open(shm_path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(h2d_bytes)) != 0) {
    std::perror("arena file");
    return 1;
  }
  void* arena = mmap(nullptr, h2d_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  unlink(shm_path.c_str());
  if (arena == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  std::memset(arena, 1, h2d_bytes);
  double h2d_arena = 0;
  {
    auto registration = cuda::HostRegistration::Create(arena, h2d_bytes);
    CHECK_OK(registration.status());
    h2d_arena = TimeIt(stream, [&] { cudaMemcpyAsync(a->data(), arena, h2d_bytes, cudaMemcpyHostToDevice, stream); });
  }
  std::vector<char> pageable(h2d_bytes, 1);
  const double h2d_pageable = TimeIt(stream, [&] { cudaMemcpyAsync(a->data(), pageable.data(), h2d_bytes, cudaMemcpyHostToDevice, stream); });
  munmap(arena, h2d_bytes);

  std::printf("| copy | GB/s | vs pinned |\n|---|---|---|\n");
  std::printf("| device -> device (DRAM traffic, read+write) | %.0f | |\n", device_bw);
  std::printf("| pinned host -> device | %.1f | 100%% |\n", h2d_bytes / h2d_pinned / 1e9);
  std::printf("| registered /dev/shm arena -> device | %.1f | %.0f%% |\n", h2d_bytes / h2d_arena / 1e9,
              100.0 * h2d_pinned / h2d_arena);
  std::printf("| pageable host -> device | %.1f | %.0f%% |\n\n", h2d_bytes / h2d_pageable / 1e9,
              100.0 * h2d_pinned / h2d_pageable);

  // --- sparse decode attention at Llama-3.1-8B shape ---
  std::printf("| PagedAttention (32 heads, 8 KV heads, d 128, P 16) | pages | us | GB/s (K+V read) | vs device copy |\n"
              "|---|---|---|---|---|\n");
  const int heads = 32, kv_heads = 8, d = 128, page = 16;
  const size_t page_bytes = size_t{page} * kv_heads * d * sizeof(float);
  for (int context : {4096, 32768, 131072}) {
    for (double fraction : {0.1, 1.0}) {
      const int slots = context / page;
      const int pages = std::max(1, static_cast<int>(slots * fraction));
      auto k = gpu.Allocate(slots * page_bytes), v = gpu.Allocate(slots * page_bytes);
      auto q = gpu.Allocate(heads * d * sizeof(float)), out = gpu.Allocate(heads * d * sizeof(float));
      CHECK_OK(k.status());
      CHECK_OK(v.status());
      cudaMemsetAsync(k->data(), 0, slots * page_bytes, stream);
      cudaMemsetAsync(v->data(), 0, slots * page_bytes, stream);
      cudaMemsetAsync(q->data(), 0, heads * d * sizeof(float), stream);
      std::vector<int32_t> ids(slots);
      for (int i = 0; i < slots; ++i) ids[i] = i;
      std::shuffle(ids.begin(), ids.end(), std::mt19937(context));
      ids.resize(pages);
      auto gids = gpu.Allocate(pages * sizeof(int32_t));
      CHECK_OK(gpu.CopyToDevice(gids->data(), ids.data(), pages * sizeof(int32_t)));
      PagedAttentionParams params{heads, kv_heads, d, page, pages, page, 0.088f};
      absl::Status status;
      const double t = TimeIt(stream, [&] {
        status.Update(gpu.PagedAttention(params, q->as<float>(), k->as<float>(), v->as<float>(), gids->as<int32_t>(),
                                         out->as<float>(), nullptr));
      });
      CHECK_OK(status);
      const double bw = 2.0 * pages * page_bytes / t / 1e9;
      std::printf("| context %d, %.0f%% selected | %d | %.1f | %.0f | %.0f%% |\n", context, fraction * 100, pages,
                  t * 1e6, bw, 100.0 * bw / device_bw);
    }
  }

  // --- decode GEMV ---
  std::printf("\n| GEMV 14336 x 4096 (decode, n=1) | us | GB/s (weights read) | vs device copy |\n|---|---|---|---|\n");
  const int64_t rows = 14336, cols = 4096;
  for (DType type : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kF32}) {
    const size_t bytes = RowBytes(type, cols) * rows;
    auto w = gpu.Allocate(bytes), x = gpu.Allocate(cols * 4 * 8), y = gpu.Allocate(rows * 4 * 8);
    CHECK_OK(w.status());
    cudaMemsetAsync(w->data(), 0, bytes, stream);
    cudaMemsetAsync(x->data(), 0, cols * 4 * 8, stream);
    const Matrix m{type, w->data(), rows, cols};
    absl::Status status;
    const double t = TimeIt(stream, [&] { status.Update(gpu.MatMul(x->as<float>(), m, 1, y->as<float>())); });
    CHECK_OK(status);
    const double bw = bytes / t / 1e9;
    std::printf("| %s | %.1f | %.0f | %.0f%% |\n", std::string(DTypeName(type)).c_str(), t * 1e6, bw,
                100.0 * bw / device_bw);
  }
  CHECK_OK(gpu.Synchronize());
  return 0;
}

}  // namespace
}  // namespace leoam::kernels

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iters") == 0 && i + 1 < argc) {
      leoam::kernels::g_iters = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: leoam-bench-cuda [--iters N]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  return leoam::kernels::Run();
}
