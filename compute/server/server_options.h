// ServerOptions: the limits and KV configuration of leoam-compute (set from its flags).
#pragma once

#include <cstdint>
#include <string>

#include "compute/engine/generate.h"  // PrefillOrder
#include "compute/engine/paged_kv.h"
#include "compute/engine/selection.h"

namespace leoam::server {

struct ServerOptions {
  // Longest prompt in tokens. 0 (default) means the model's context length.
  int32_t max_prompt_tokens = 0;
  // Largest max_tokens a request may ask for. Default 4096.
  int32_t max_tokens_limit = 4096;
  // max_tokens of a request that leaves it 0. Default 256.
  int32_t default_max_tokens = 256;
  // Requests admitted at once (decoding or prefilling plus waiting); more are RESOURCE_EXHAUSTED.
  // Default 64.
  int32_t max_concurrent = 64;
  // Requests that hold a batch slot (their KV allocated, prefilling or decoding) at once; the
  // others wait in the queue. Decode steps of the slot holders run as one batched forward. Default 16.
  int32_t max_batch = 16;
  // Prompt tokens per prefill chunk; between chunks a decode step of the running requests runs.
  // Default 256.
  int32_t prefill_chunk = 256;
  // Prompt order: auto runs layer-major (one layer over the whole prompt, one chunk of it per
  // scheduler turn) when the request's KV is tiered and its prompt's KV exceeds the device budget
  // (PrefillOrder::kAuto), token-major otherwise. Default auto.
  PrefillOrder prefill_order = PrefillOrder::kAuto;
  // KV mode: dense (contiguous cache), quest, leoam, offload-all. Default dense.
  SelectionMode mode = SelectionMode::kDense;
  std::string mode_name = "dense";
  // Paged modes: page size, selection budget (device_budget_bytes is per request).
  PagedKvOptions paged{};
  std::string budget_text = "0.1";
  // Address of leoam-kvstore, "" = none.
  std::string kvstore_address;
  std::string backend_name;
  std::string model_path;
};

}  // namespace leoam::server
