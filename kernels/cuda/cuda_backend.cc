#include "kernels/cuda/cuda_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/cuda_status.h"

namespace leoam::kernels {
namespace {

using cuda::CudaStatus;

cuda::WeightType ToWeightType(DType type) { return static_cast<cuda::WeightType>(static_cast<int32_t>(type)); }

absl::Status ValidateMatrix(const Matrix& w, std::string_view op) {
  if (w.data == nullptr || w.rows <= 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": empty matrix"));
  }
  if (w.type == DType::kQ8_0 && w.cols % 32 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(op), ": Q8_0 needs cols % 32 == 0"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHeads(int32_t num_heads, int32_t num_kv_heads, int32_t head_dim, std::string_view op) {
  if (num_heads <= 0 || num_kv_heads <= 0 || head_dim <= 0 || num_heads % num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: bad heads (%d heads, %d kv heads, head_dim %d)",
                                                      std::string(op), num_heads, num_kv_heads, head_dim));
  }
  if ((num_heads / num_kv_heads) * head_dim > cuda::kMaxGroupDims) {
    return absl::UnimplementedError(absl::StrFormat(
        "%s: (heads per KV head) x head_dim = %d is above the kernel's %d", std::string(op),
        (num_heads / num_kv_heads) * head_dim, cuda::kMaxGroupDims));
  }
  return absl::OkStatus();
}

cuda::DecodeAttentionProblem DecodeProblem(int32_t num_heads, int32_t num_kv_heads, int32_t head_dim, float scale) {
  cuda::DecodeAttentionProblem d;
  d.num_heads = num_heads;
  d.num_kv_heads = num_kv_heads;
  d.head_dim = head_dim;
  d.scale = scale;
  return d;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(const CudaBackendOptions& options) {
  int count = 0;
  if (cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess || count == 0) {
    cudaGetLastError();
    return absl::UnavailableError(
        absl::StrCat("no usable GPU: ", err != cudaSuccess ? cudaGetErrorString(err) : "no device found"));
  }
  if (options.device < 0 || options.device >= count) {
    return absl::InvalidArgumentError(absl::StrFormat("GPU %d requested, %d present", options.device, count));
  }
  std::unique_ptr<CudaBackend> backend(new CudaBackend());
  backend->device_ = options.device;
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  cudaDeviceProp prop;
  LEOAM_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, options.device));
  backend->device_name_ = prop.name;
  backend->sm_count_ = prop.multiProcessorCount;
  ASSIGN_OR_RETURN(backend->stream_, cuda::CreateStream());
  ASSIGN_OR_RETURN(backend->copy_stream_, cuda::CreateStream());
  ASSIGN_OR_RETURN(backend->copies_done_, cuda::CreateEvent(/*timing=*/false));
  ASSIGN_OR_RETURN(backend->cublas_, cuda::CreateCublas(backend->stream_.get()));
  ASSIGN_OR_RETURN(backend->gemm_scratch_, cuda::DeviceMemory::Create(options.gemm_scratch_bytes));
  ASSIGN_OR_RETURN(backend->attention_scratch_, cuda::DeviceMemory::Create(options.attention_scratch_bytes));
  ASSIGN_OR_RETURN(backend->error_flags_, cuda::DeviceMemory::Create(2 * sizeof(int32_t)));
  LEOAM_CUDA_RETURN_IF_ERROR(cudaMemset(backend->error_flags_.data(), 0, 2 * sizeof(int32_t)));
  return backend;
}

CudaBackend::~CudaBackend() {
  // Let enqueued work finish before its buffers go away.
  if (stream_) cudaStreamSynchronize(stream_.get());
  if (copy_stream_) cudaStreamSynchronize(copy_stream_.get());
}

absl::Status CudaBackend::RegisterHostMemory(void* host, size_t bytes) {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  ASSIGN_OR_RETURN(cuda::HostRegistration registration, cuda::HostRegistration::Create(host, bytes));
  registrations_.push_back(std::move(registration));
  return absl::OkStatus();
}

absl::Status CudaBackend::UnregisterHostMemory(void* host) {
  for (auto it = registrations_.begin(); it != registrations_.end(); ++it) {
    if (it->data() == host) {
      // A copy in flight may still read it.
      LEOAM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(copy_stream_.get()));
      registrations_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError("UnregisterHostMemory: that memory is not registered");
}

absl::Status CudaBackend::CopyToDeviceAsync(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  LEOAM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copy_stream_.get()));
  return absl::OkStatus();
}

absl::Status CudaBackend::WaitForCopies() {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaEventRecord(copies_done_.get(), copy_stream_.get()));
  LEOAM_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_.get(), copies_done_.get(), 0));
  return absl::OkStatus();
}

absl::Status CudaBackend::SynchronizeCopies() {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(copy_stream_.get()));
  return absl::OkStatus();
}

absl::StatusOr<DeviceBuffer> CudaBackend::Allocate(size_t bytes) {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  void* p = nullptr;
  if (bytes > 0) LEOAM_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, bytes));
  return DeviceBuffer(p, bytes, [](void* ptr) { cudaFree(ptr); });
}

absl::Status CudaBackend::SyncAndCheck() {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_.get()));
  int32_t flags[2] = {0, 0};
  LEOAM_CUDA_RETURN_IF_ERROR(cudaMemcpy(flags, error_flags_.data(), sizeof(flags), cudaMemcpyDeviceToHost));
  if (flags[0] != 0) {
    LEOAM_CUDA_RETURN_IF_ERROR(cudaMemset(error_flags_.data(), 0, sizeof(flags)));
    return absl::InvalidArgumentError(absl::StrFormat("Embed: token id %d outside the table", flags[1]));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  // Ordered after the work already enqueued; synchronous so the caller may reuse `src` at once.
  LEOAM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_.get()));
  LEOAM_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_.get()));
  return absl::OkStatus();
}

absl::Status CudaBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  if (bytes > 0) {
    LEOAM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_.get()));
  }
  return SyncAndCheck();
}

absl::Status CudaBackend::CopyOnDevice(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  LEOAM_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_.get()));
  return absl::OkStatus();
}

absl::Status CudaBackend::Synchronize() {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  return SyncAndCheck();
}

absl::StatusOr<const void*> CudaBackend::UploadConstant(const void* host, size_t bytes,
                                                        bool /*host_outlives_backend*/) {
  LEOAM_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  ASSIGN_OR_RETURN(cuda::DeviceMemory memory, cuda::DeviceMemory::Create(bytes));
  if (bytes > 0) LEOAM_CUDA_RETURN_IF_ERROR(cudaMemcpy(memory.data(), host, bytes, cudaMemcpyHostToDevice));
  const void* device = memory.data();
  constants_.push_back(std::move(memory));
  return device;
}

absl::Status CudaBackend::Embed(const Matrix& table, const int32_t* ids, int32_t n, float* out) {
  RETURN_IF_ERROR(ValidateMatrix(table, "Embed"));
  if (n < 0) return absl::InvalidArgumentError("Embed: n < 0");
  return CudaStatus(cuda::LaunchEmbed(ToWeightType(table.type), table.data, table.rows, table.cols, ids, n, out,
                                      error_flags_.as<int32_t>(), stream_.get()),
                    "Embed");
}

absl::Status CudaBackend::RmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps,
                                  float* y) {
  if (rows < 0 || dim <= 0) return absl::InvalidArgumentError("RmsNorm: bad shape");
  return CudaStatus(cuda::LaunchRmsNorm(x, weight, rows, dim, eps, y, stream_.get()), "RmsNorm");
}

absl::Status CudaBackend::MatMul(const float* x, const Matrix& w, int32_t n, float* y) {
  RETURN_IF_ERROR(ValidateMatrix(w, "MatMul"));
  if (n < 0) return absl::InvalidArgumentError("MatMul: n < 0");
  if (n == 0) return absl::OkStatus();
  if (n <= cuda::kMaxGemvBatch) {
    return CudaStatus(cuda::LaunchGemv(ToWeightType(w.type), w.data, w.rows, w.cols, x, n, y, stream_.get()),
                      "MatMul (GEMV)");
  }
  if (w.type == DType::kF32) {
    // Row-major y[n, rows] = x[n, cols] W^T is column-major y^T[rows, n] = W[cols, rows]^T x^T[cols, n].
    const float one = 1.0f, zero = 0.0f;
    LEOAM_CUBLAS_RETURN_IF_ERROR(cublasSgemm(cublas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), n,
                                             static_cast<int>(w.cols), &one, static_cast<const float*>(w.data),
                                             static_cast<int>(w.cols), x, static_cast<int>(w.cols), &zero, y,
                                             static_cast<int>(w.rows)));
    return absl::OkStatus();
  }
  return GemmHalf(x, w, n, y);
}

absl::Status CudaBackend::MatMulMany(const float* x, std::span<const Matrix> w, int32_t n,
                                     std::span<float* const> y) {
  if (w.size() != y.size()) return absl::InvalidArgumentError("MatMulMany: as many outputs as matrices needed");
  // Decode-sized batches of matrices of one type and width: one GEMV launch over all their rows.
  bool one_launch = n > 0 && n <= cuda::kMaxGemvBatch && !w.empty() && w.size() <= cuda::kMaxGemvMatrices;
  cuda::GemvMatrices m;
  for (size_t i = 0; one_launch && i < w.size(); ++i) {
    RETURN_IF_ERROR(ValidateMatrix(w[i], "MatMulMany"));
    one_launch = w[i].type == w[0].type && w[i].cols == w[0].cols;
    m.w[i] = w[i].data;
    m.rows[i] = w[i].rows;
    m.y[i] = y[i];
  }
  if (!one_launch) return Backend::MatMulMany(x, w, n, y);
  m.count = static_cast<int32_t>(w.size());
  return CudaStatus(cuda::LaunchGemvMany(ToWeightType(w[0].type), m, w[0].cols, x, n, stream_.get()),
                    "MatMulMany (GEMV)");
}

absl::Status CudaBackend::GemmHalf(const float* x, const Matrix& w, int32_t n, float* y) {
  const bool q8 = w.type == DType::kQ8_0;
  const bool bf16 = w.type == DType::kBF16;
  const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  const size_t row_half_bytes = static_cast<size_t>(w.cols) * 2;
  // Q8_0 splits the scratch between the 16-bit activations and a block of dequantized rows.
  const size_t x_capacity = q8 ? gemm_scratch_.bytes() / 2 : gemm_scratch_.bytes();
  const int64_t n_chunk = std::min<int64_t>(n, static_cast<int64_t>(x_capacity / row_half_bytes));
  const int64_t rows_per_block =
      q8 ? std::min<int64_t>(w.rows, static_cast<int64_t>((gemm_scratch_.bytes() - x_capacity) / row_half_bytes)) : w.rows;
  if (n_chunk <= 0 || rows_per_block <= 0) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("MatMul: %d columns do not fit the %d-byte GEMM scratch", w.cols, gemm_scratch_.bytes()));
  }
  char* x_half = gemm_scratch_.as<char>();
  char* w_half = x_half + x_capacity;
  const float one = 1.0f, zero = 0.0f;
  const int k = static_cast<int>(w.cols);
  for (int64_t n0 = 0; n0 < n; n0 += n_chunk) {
    const int nc = static_cast<int>(std::min<int64_t>(n_chunk, n - n0));
    LEOAM_CUDA_RETURN_IF_ERROR(cuda::LaunchConvertToHalf(x + n0 * w.cols, static_cast<size_t>(nc) * w.cols, bf16,
                                                         x_half, stream_.get()));
    for (int64_t r0 = 0; r0 < w.rows; r0 += rows_per_block) {
      const int rb = static_cast<int>(std::min<int64_t>(rows_per_block, w.rows - r0));
      const void* a = nullptr;
      if (q8) {
        LEOAM_CUDA_RETURN_IF_ERROR(cuda::LaunchDequantizeQ8ToHalf(w.data, r0, rb, w.cols, w_half, stream_.get()));
        a = w_half;
      } else {
        a = static_cast<const char*>(w.data) + r0 * row_half_bytes;
      }
      LEOAM_CUBLAS_RETURN_IF_ERROR(cublasGemmEx(cublas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, rb, nc, k, &one, a, type, k,
                                                x_half, type, k, &zero, y + n0 * w.rows + r0, CUDA_R_32F,
                                                static_cast<int>(w.rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::AddBias(float* y, const float* bias, int32_t n, int32_t dim) {
  if (n < 0 || dim < 0) return absl::InvalidArgumentError("AddBias: bad shape");
  return CudaStatus(cuda::LaunchAddBias(y, bias, n, dim, stream_.get()), "AddBias");
}

absl::Status CudaBackend::Add(float* x, const float* y, size_t count) {
  return CudaStatus(cuda::LaunchAdd(x, y, count, stream_.get()), "Add");
}

absl::Status CudaBackend::SwiGlu(const float* gate, const float* up, size_t count, float* out) {
  return CudaStatus(cuda::LaunchSwiGlu(gate, up, count, out, stream_.get()), "SwiGlu");
}

absl::Status CudaBackend::Rope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                               const RopeParams& rope) {
  if (n < 0 || num_heads <= 0 || head_dim <= 0) return absl::InvalidArgumentError("Rope: bad shape");
  if (rope.rot_dim <= 0 || rope.rot_dim > head_dim || rope.rot_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("Rope: rot_dim %d must be even and in (0, head_dim = %d]", rope.rot_dim, head_dim));
  }
  if (rope.inv_freq == nullptr) return absl::InvalidArgumentError("Rope: no inv_freq table");
  return CudaStatus(cuda::LaunchRope(x, positions, n, num_heads, head_dim, static_cast<int32_t>(rope.style),
                                     rope.rot_dim, rope.inv_freq, stream_.get()),
                    "Rope");
}

absl::Status CudaBackend::Attention(const AttentionParams& params, const float* q, const float* k, const float* v,
                                    float* out, void* /*workspace*/) {
  RETURN_IF_ERROR(ValidateHeads(params.num_heads, params.num_kv_heads, params.head_dim, "Attention"));
  if (params.num_queries < 0 || params.first_position < 0) {
    return absl::InvalidArgumentError("Attention: negative query count or position");
  }
  if (params.num_queries == 0) return absl::OkStatus();
  if (params.num_queries == 1) {
    cuda::DecodeAttentionProblem d = DecodeProblem(params.num_heads, params.num_kv_heads, params.head_dim, params.scale);
    d.num_items = 1;
    d.k[0] = k;
    d.v[0] = v;
    d.num_tokens[0] = params.first_position + 1;
    ASSIGN_OR_RETURN(bool done, TryDecodeAttention(d, q, out));
    if (done) return absl::OkStatus();
  }
  cuda::AttentionProblem p;
  p.num_queries = params.num_queries;
  p.num_heads = params.num_heads;
  p.num_kv_heads = params.num_kv_heads;
  p.head_dim = params.head_dim;
  p.scale = params.scale;
  p.first_position = params.first_position;
  const size_t capacity = attention_scratch_.bytes() / sizeof(float);
  const int32_t splits = cuda::ChooseAttentionSplits(p, sm_count_, capacity);
  return CudaStatus(
      cuda::LaunchAttention(p, q, k, v, out, splits, attention_scratch_.as<float>(), stream_.get()), "Attention");
}

absl::Status CudaBackend::PagedAttention(const PagedAttentionParams& params, const float* q, const float* k_pages,
                                         const float* v_pages, const int32_t* page_ids, float* out,
                                         void* /*workspace*/) {
  RETURN_IF_ERROR(ValidateHeads(params.num_heads, params.num_kv_heads, params.head_dim, "PagedAttention"));
  if (params.page_size <= 0 || params.num_pages <= 0 || params.last_page_tokens < 1 ||
      params.last_page_tokens > params.page_size) {
    return absl::InvalidArgumentError(absl::StrFormat("PagedAttention: bad pages (page_size %d, pages %d, last %d)",
                                                      params.page_size, params.num_pages, params.last_page_tokens));
  }
  {
    cuda::DecodeAttentionProblem d = DecodeProblem(params.num_heads, params.num_kv_heads, params.head_dim, params.scale);
    d.num_items = 1;
    d.page_ids = page_ids;
    d.page_size = params.page_size;
    d.k[0] = k_pages;
    d.v[0] = v_pages;
    d.num_tokens[0] = (params.num_pages - 1) * params.page_size + params.last_page_tokens;
    ASSIGN_OR_RETURN(bool done, TryDecodeAttention(d, q, out));
    if (done) return absl::OkStatus();
  }
  cuda::AttentionProblem p;
  p.num_queries = 1;
  p.num_heads = params.num_heads;
  p.num_kv_heads = params.num_kv_heads;
  p.head_dim = params.head_dim;
  p.scale = params.scale;
  p.page_ids = page_ids;
  p.page_size = params.page_size;
  p.num_tokens = (params.num_pages - 1) * params.page_size + params.last_page_tokens;
  const size_t capacity = attention_scratch_.bytes() / sizeof(float);
  const int32_t splits = cuda::ChooseAttentionSplits(p, sm_count_, capacity);
  return CudaStatus(cuda::LaunchAttention(p, q, k_pages, v_pages, out, splits, attention_scratch_.as<float>(),
                                          stream_.get()),
                    "PagedAttention");
}

absl::StatusOr<bool> CudaBackend::TryDecodeAttention(const cuda::DecodeAttentionProblem& p, const float* q,
                                                      float* out) {
  if (!cuda::DecodeAttentionSupported(p, q, out)) return false;
  const int32_t splits =
      cuda::ChooseDecodeSplits(p, sm_count_, attention_scratch_.bytes() / sizeof(float));
  RETURN_IF_ERROR(CudaStatus(
      cuda::LaunchDecodeAttention(p, q, out, splits, attention_scratch_.as<float>(), stream_.get()), "decode attention"));
  return true;
}

absl::Status CudaBackend::DecodeAttentionBatch(const AttentionParams& params, std::span<const DecodeRows> items,
                                               const float* q, float* out, void* workspace) {
  RETURN_IF_ERROR(ValidateHeads(params.num_heads, params.num_kv_heads, params.head_dim, "DecodeAttentionBatch"));
  const size_t row = static_cast<size_t>(params.num_heads) * params.head_dim;
  for (size_t first = 0; first < items.size(); first += cuda::kMaxDecodeItems) {
    const size_t count = std::min<size_t>(cuda::kMaxDecodeItems, items.size() - first);
    const std::span<const DecodeRows> chunk = items.subspan(first, count);
    cuda::DecodeAttentionProblem d = DecodeProblem(params.num_heads, params.num_kv_heads, params.head_dim, params.scale);
    d.num_items = static_cast<int32_t>(count);
    for (size_t i = 0; i < count; ++i) {
      if (chunk[i].num_tokens < 1) return absl::InvalidArgumentError("DecodeAttentionBatch: an item has no keys");
      d.k[i] = chunk[i].k;
      d.v[i] = chunk[i].v;
      d.num_tokens[i] = chunk[i].num_tokens;
    }
    ASSIGN_OR_RETURN(bool done, TryDecodeAttention(d, q + first * row, out + first * row));
    if (!done) RETURN_IF_ERROR(Backend::DecodeAttentionBatch(params, chunk, q + first * row, out + first * row, workspace));
  }
  return absl::OkStatus();
}

absl::Status CudaBackend::ScatterRows(std::span<float* const> k_dst, std::span<float* const> v_dst, const float* k,
                                      const float* v, int32_t row_floats) {
  if (k_dst.size() != v_dst.size() || row_floats < 0) return absl::InvalidArgumentError("ScatterRows: bad shape");
  for (size_t first = 0; first < k_dst.size(); first += cuda::kMaxScatterRows) {
    const size_t count = std::min<size_t>(cuda::kMaxScatterRows, k_dst.size() - first);
    cuda::RowScatter dst;
    for (size_t i = 0; i < count; ++i) {
      dst.k_dst[i] = k_dst[first + i];
      dst.v_dst[i] = v_dst[first + i];
    }
    const size_t offset = first * static_cast<size_t>(row_floats);
    RETURN_IF_ERROR(CudaStatus(cuda::LaunchScatterRows(dst, static_cast<int32_t>(count), k + offset, v + offset,
                                                       row_floats, stream_.get()),
                               "ScatterRows"));
  }
  return absl::OkStatus();
}

}  // namespace leoam::kernels
