// Backend: the numeric ops of the Llama-family forward pass behind one interface, with a CPU
// implementation (the reference, also what runs without a GPU) and later a CUDA one.
//
// Conventions (shaped for a GPU backend):
// - Every pointer passed to an op is backend memory ("device memory"): from Allocate() or from
//   Upload*(). On the CPU backend that is host memory.
// - Ops are enqueued in order on the backend's compute stream; results are visible to the host
//   after CopyToHost() (which synchronizes). The CPU backend runs them synchronously.
// - Ops allocate nothing: callers own outputs and workspaces (sizes from the *WorkspaceBytes
//   helpers), so a GPU run path can be captured in a graph.
// - Every op returns absl::Status; a GPU launch error comes back as a status, never an abort.
// - Activations are fp32; weights are F32, F16, BF16 or Q8_0 matrices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace leoam::kernels {

// Element type of a weight matrix.
enum class DType : int32_t { kF32 = 0, kF16 = 1, kBF16 = 2, kQ8_0 = 3 };

std::string_view DTypeName(DType type);
// Bytes of one row of `cols` elements (cols must be a multiple of 32 for Q8_0).
size_t RowBytes(DType type, int64_t cols);

// A row-major weight matrix W[rows, cols]: y = W x maps x[cols] to y[rows]. Q8_0 rows are blocks
// of 32 (fp16 scale, 32 int8), the GGUF layout. Non-owning view.
struct Matrix {
  DType type = DType::kF32;
  const void* data = nullptr;  // [rows, cols] in `type`
  int64_t rows = 0;
  int64_t cols = 0;
};

// Owned backend memory. Move-only; freed by the backend that made it.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(void* data, size_t bytes, std::function<void(void*)> free_fn)
      : data_(data), bytes_(bytes), free_fn_(std::move(free_fn)) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  void Reset();

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*)> free_fn_;
};

// Rotary embedding layout: kNormal rotates adjacent pairs (x[2i], x[2i+1]) (llama); kNeox rotates
// (x[i], x[i + rot_dim/2]) (qwen2/qwen3, GPT-NeoX).
enum class RopeStyle : int32_t { kNormal = 0, kNeox = 1 };

struct RopeParams {
  RopeStyle style = RopeStyle::kNormal;
  int32_t rot_dim = 0;  // rotated dims per head (<= head_dim, even); the rest pass through
  // inv_freq[i] for i in [0, rot_dim/2), in backend memory: the angle of pair i at position p is
  // p * inv_freq[i]. Rope frequency base and Llama-3 / linear scaling are folded in by the caller.
  const float* inv_freq = nullptr;
};

struct AttentionParams {
  int32_t num_queries = 0;   // n: query tokens in this call
  int32_t num_heads = 0;     // query heads
  int32_t num_kv_heads = 0;  // num_heads % num_kv_heads == 0 (GQA)
  int32_t head_dim = 0;
  // Query i sits at position first_position + i and attends causally to cache rows
  // [0, first_position + i]. The cache must already hold those rows.
  int32_t first_position = 0;
  float scale = 0.0f;  // usually 1/sqrt(head_dim)
};

// Workspace the caller passes to Attention().
size_t AttentionWorkspaceBytes(const AttentionParams& params, int32_t num_threads);

// Decode attention of ONE query token over a selection of KV pages (the LeoAM sparse attention):
// an exact softmax over every token of the selected pages. A page holds page_size consecutive
// tokens of one layer, all KV heads; K and V pages live in two pools indexed by slot id.
struct PagedAttentionParams {
  int32_t num_heads = 0;     // query heads
  int32_t num_kv_heads = 0;  // num_heads % num_kv_heads == 0 (GQA)
  int32_t head_dim = 0;
  int32_t page_size = 0;     // tokens per page (P)
  int32_t num_pages = 0;     // selected pages, >= 1
  // Valid tokens of the LAST selected page, in [1, page_size]; every other selected page is full.
  // (The caller lists pages in position order, so the partially filled newest page comes last.)
  int32_t last_page_tokens = 0;
  float scale = 0.0f;  // usually 1/sqrt(head_dim)
};

// Workspace the caller passes to PagedAttention() for a selection of up to `max_pages` pages.
size_t PagedAttentionWorkspaceBytes(const PagedAttentionParams& params, int32_t max_pages, int32_t num_threads);

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;

  // --- memory ---
  virtual absl::StatusOr<DeviceBuffer> Allocate(size_t bytes) = 0;
  // Host -> device, device -> host (synchronizes first), device -> device.
  virtual absl::Status CopyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyOnDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status Synchronize() = 0;

  // --- the host -> device data path of KV pages (the kvstore arena) ---
  // Pins `bytes` of existing host memory for DMA (the arena mapping) until UnregisterHostMemory or
  // the backend's end; the memory must outlive the registration. Default: nothing to do.
  virtual absl::Status RegisterHostMemory(void* /*host*/, size_t /*bytes*/) { return absl::OkStatus(); }
  virtual absl::Status UnregisterHostMemory(void* /*host*/) { return absl::OkStatus(); }
  // Starts a host -> device copy on the copy stream, overlapping the ops already enqueued; `src`
  // must stay valid until SynchronizeCopies() returns, and `dst` must not be read or written by
  // enqueued ops that may still run (copy into free page slots). Ops enqueued after WaitForCopies()
  // see every copy started before it. Default (backends without a copy engine): a synchronous CopyToDevice.
  virtual absl::Status CopyToDeviceAsync(void* dst, const void* src, size_t bytes) {
    return CopyToDevice(dst, src, bytes);
  }
  // Orders the compute stream after the copies started so far (no host wait).
  virtual absl::Status WaitForCopies() { return absl::OkStatus(); }
  // Blocks the host until the copies started so far are done (then their sources may be reused).
  virtual absl::Status SynchronizeCopies() { return absl::OkStatus(); }

  // Makes constant data (weights, norms, tables) available to ops for the backend's lifetime.
  // When `host_outlives_backend` is true a backend may use `host` in place (the CPU backend does,
  // so memory-mapped weights are not copied).
  virtual absl::StatusOr<const void*> UploadConstant(const void* host, size_t bytes,
                                                     bool host_outlives_backend) = 0;

  // --- ops ---
  // out[i, :] = row ids[i] of `table` as fp32.                table: [vocab, dim]; ids: [n]; out: [n, dim]
  virtual absl::Status Embed(const Matrix& table, const int32_t* ids, int32_t n, float* out) = 0;

  // y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.  x, y: [rows, dim]; weight: [dim] fp32.
  // x == y allowed.
  virtual absl::Status RmsNorm(const float* x, const float* weight, int32_t rows, int32_t dim, float eps,
                               float* y) = 0;

  // y[n, rows] = x[n, cols] * W^T.                        x: [n, w.cols]; y: [n, w.rows]
  virtual absl::Status MatMul(const float* x, const Matrix& w, int32_t n, float* y) = 0;

  // y[i] = MatMul(x, w[i], n) for several matrices over the same input (Q/K/V, gate/up); w.size()
  // == y.size(). Results equal one MatMul per matrix; a GPU backend runs them as one launch.
  virtual absl::Status MatMulMany(const float* x, std::span<const Matrix> w, int32_t n, std::span<float* const> y);

  // y[i, :] += bias.                                        y: [n, dim]; bias: [dim]
  virtual absl::Status AddBias(float* y, const float* bias, int32_t n, int32_t dim) = 0;

  // x[i] += y[i].                                           x, y: [count]
  virtual absl::Status Add(float* x, const float* y, size_t count) = 0;

  // out = silu(gate) * up.                                  gate, up, out: [count]; out may alias gate
  virtual absl::Status SwiGlu(const float* gate, const float* up, size_t count, float* out) = 0;

  // Rotates x in place.                                     x: [n, num_heads, head_dim]; positions: [n]
  virtual absl::Status Rope(float* x, const int32_t* positions, int32_t n, int32_t num_heads, int32_t head_dim,
                            const RopeParams& rope) = 0;

  // Causal multi-head attention with GQA over a contiguous fp32 cache.
  //   q:   [num_queries, num_heads, head_dim]
  //   k,v: [>= first_position + num_queries, num_kv_heads, head_dim]
  //   out: [num_queries, num_heads, head_dim]
  //   workspace: AttentionWorkspaceBytes(params, num_threads()) bytes
  virtual absl::Status Attention(const AttentionParams& params, const float* q, const float* k, const float* v,
                                 float* out, void* workspace) = 0;

  // Sparse decode attention over selected pages (one query token).
  //   q:        [num_heads, head_dim]
  //   k_pages:  [num_slots, page_size, num_kv_heads, head_dim] (slot pool)
  //   v_pages:  [num_slots, page_size, num_kv_heads, head_dim]
  //   page_ids: [num_pages] slot ids, in position order (int32, backend memory)
  //   out:      [num_heads, head_dim]
  //   workspace: PagedAttentionWorkspaceBytes(params, >= num_pages, num_threads()) bytes
  virtual absl::Status PagedAttention(const PagedAttentionParams& params, const float* q, const float* k_pages,
                                      const float* v_pages, const int32_t* page_ids, float* out,
                                      void* workspace) = 0;

  // Decode attention of a batch of sequences, one query each, every sequence over its own
  // contiguous cache (the batched decode step of several requests). Results equal one Attention
  // call per item; a GPU backend runs the batch as one launch.
  //   params: heads, head_dim and scale (num_queries and first_position are ignored)
  //   items[i]: item i's K and V rows [num_tokens, num_kv_heads, head_dim]; it attends all of them
  //   q, out: [items.size(), num_heads, head_dim]
  //   workspace: AttentionWorkspaceBytes(params with the largest num_tokens, num_threads()) bytes
  struct DecodeRows {
    const float* k = nullptr;
    const float* v = nullptr;
    int32_t num_tokens = 0;
  };
  virtual absl::Status DecodeAttentionBatch(const AttentionParams& params, std::span<const DecodeRows> items,
                                            const float* q, float* out, void* workspace);

  // Row i of k and of v ([n, row_floats], n = k_dst.size() = v_dst.size()) to k_dst[i] / v_dst[i]
  // (a decode batch's new KV rows into each sequence's cache). Default: CopyOnDevice per row.
  virtual absl::Status ScatterRows(std::span<float* const> k_dst, std::span<float* const> v_dst, const float* k,
                                   const float* v, int32_t row_floats);

  virtual int32_t num_threads() const { return 1; }
};

}  // namespace leoam::kernels
