// WriteSyntheticModel: writes a GGUF v3 file holding a random-weight Llama-family model of any
// shape (SyntheticModelSpec), with llama.cpp's key and tensor names and a working tokenizer, so
// the LeoAM loader, llama.cpp and an independent PyTorch reference all read it.
//
// Tensors are generated while the file is written (a bounded buffer, rows in parallel), so an
// 8B-parameter shape needs ~chunk_bytes of memory, not the model size. The bytes depend only on
// the spec (seed included), never on the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "compute/synth/synthetic_spec.h"

namespace leoam::synth {

struct SynthWriteOptions {
  // Threads generating rows; 0 means DefaultThreadCount() (LEOAM_THREADS or all CPUs). Default 0.
  int num_threads = 0;
  // Bytes of tensor data generated per step. Default 64 MiB.
  uint64_t chunk_bytes = 64ull << 20;
  // fsync before the atomic rename. Default true.
  bool sync = true;
};

struct SynthWriteResult {
  uint64_t parameters = 0;  // weight elements written
  uint64_t file_bytes = 0;  // size of the GGUF file
};

// Validates the spec (ValidateSpec) and writes the model to `path` atomically.
absl::StatusOr<SynthWriteResult> WriteSyntheticModel(const SyntheticModelSpec& spec, const std::string& path,
                                                     const SynthWriteOptions& options);
absl::Status WriteSyntheticModel(const SyntheticModelSpec& spec, const std::string& path);

// Initialization used for each tensor kind (documented here because references rely on the
// scale of the values, not their exact bits):
//   token_embd: N(0, 1) untied, N(0, 3/sqrt(dim)) tied; output: N(0, 3/sqrt(dim)) (logits ~ N(0, 9));
//   attn_q/k/v, ffn_gate/up: N(0, 1/sqrt(dim)); attn_output: N(0, 1/sqrt(heads*head_dim));
//   ffn_down: N(0, 1/sqrt(ffn)); RMSNorm weights (incl. qwen3 q/k norms): 1 + N(0, 0.1);
//   qwen2 biases: N(0, 0.1). N is the approximate normal of weight_init.h.
// With attention structure (SyntheticModelSpec::qk_scale / retrieval_logit, off by default):
//   attn_q/k of a layer: N(0, sqrt(qk_scale)/sqrt(dim)); in retrieval heads the last `topics`
//   channels of each head are zero except one weight g = sqrt(retrieval_logit x sqrt(head_dim)) /
//   topic_amplitude (query channel k on embedding coordinate topics + k, key channel k on k);
//   token_embd rows get +topic_amplitude on their planted coordinates (DrawTokenTraits).

}  // namespace leoam::synth
