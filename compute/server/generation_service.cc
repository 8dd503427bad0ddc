#include "compute/server/generation_service.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "compute/server/request_channel.h"

namespace leoam::server {

namespace v1 = ::leoam::v1;

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

GenerationService::GenerationService(const LlamaModel& model, const Tokenizer& tokenizer,
                                     const ServerOptions& options, const RequestBuilder& builder,
                                     Scheduler& scheduler, KvStoreLink* link, const Hash128& fingerprint,
                                     std::string chat_template)
    : model_(model), tokenizer_(tokenizer), options_(options), builder_(builder), scheduler_(scheduler), link_(link),
      fingerprint_(fingerprint), chat_template_(std::move(chat_template)) {}

grpc::Status GenerationService::Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                                         grpc::ServerWriter<v1::GenerateResponse>* writer) {
  absl::StatusOr<PreparedRequest> prepared = builder_.Build(*request);
  if (!prepared.ok()) return ToGrpc(prepared.status());
  auto channel = std::make_shared<RequestChannel>();
  absl::StatusOr<std::string> id = scheduler_.Submit(std::move(*prepared), channel);
  if (!id.ok()) return ToGrpc(id.status());

  // Write what the scheduler produces; a failed write or a cancelled call (client cancel or
  // deadline) asks the scheduler to stop, and the loop waits until it has freed the KV.
  bool write_failed = false;
  while (true) {
    bool closed = false;
    absl::Status status;
    std::vector<v1::GenerateResponse> messages = channel->Take(absl::Milliseconds(10), &closed, &status);
    for (v1::GenerateResponse& m : messages) {
      if (write_failed) break;
      if (!writer->Write(m)) {
        write_failed = true;
        channel->RequestCancel();
      }
    }
    if (closed) {
      if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
      return ToGrpc(status);
    }
    if (context->IsCancelled()) channel->RequestCancel();
  }
}

grpc::Status GenerationService::Abort(grpc::ServerContext*, const v1::AbortRequest* request, v1::AbortResponse*) {
  if (request->request_id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "request_id is empty");
  return ToGrpc(scheduler_.Abort(request->request_id()));
}

grpc::Status GenerationService::Tokenize(grpc::ServerContext*, const v1::TokenizeRequest* request,
                                         v1::TokenizeResponse* response) {
  EncodeOptions encode;
  encode.add_bos = request->add_special();
  encode.add_eos = false;
  for (int32_t id : tokenizer_.Encode(request->text(), encode)) response->add_token_ids(id);
  return grpc::Status::OK;
}

grpc::Status GenerationService::Detokenize(grpc::ServerContext*, const v1::DetokenizeRequest* request,
                                           v1::DetokenizeResponse* response) {
  std::vector<int32_t> ids(request->token_ids().begin(), request->token_ids().end());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= tokenizer_.vocab_size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrFormat("token_ids[%d] = %d is outside the vocabulary [0, %d)", i, ids[i],
                                          tokenizer_.vocab_size()));
    }
  }
  response->set_text(tokenizer_.Decode(ids, request->render_special()));
  return grpc::Status::OK;
}

grpc::Status GenerationService::GetModelInfo(grpc::ServerContext*, const v1::GetModelInfoRequest*,
                                             v1::GetModelInfoResponse* r) {
  const ModelConfig& c = model_.config();
  r->set_model_path(options_.model_path);
  r->set_name(c.name);
  r->set_architecture(c.arch_name);
  r->set_vocab_size(c.vocab_size);
  r->set_context_length(c.context_length);
  r->set_num_layers(c.num_layers);
  r->set_num_heads(c.num_heads);
  r->set_num_kv_heads(c.num_kv_heads);
  r->set_head_dim(c.head_dim);
  r->set_hidden_dim(c.dim);
  if (!model_.weights().layers.empty()) {
    r->set_weight_type(std::string(kernels::DTypeName(model_.weights().layers[0].wq.type)));
  }
  int64_t params = 0;
  for (const gguf::TensorInfo& t : model_.file().tensors()) params += t.NumElements();
  r->set_parameter_count(params);
  r->set_bos_token_id(tokenizer_.bos_id());
  for (int32_t id = 0; id < tokenizer_.vocab_size(); ++id) {
    if (tokenizer_.IsEndOfGeneration(id)) r->add_eos_token_ids(id);
  }
  r->set_chat_template(chat_template_);
  r->set_fingerprint(HashHex(fingerprint_));
  return grpc::Status::OK;
}

namespace {
void CopyTier(const kvstore::TierStats& s, v1::KvTierStats* out) {
  out->set_bytes(static_cast<int64_t>(s.bytes));
  out->set_pages(static_cast<int64_t>(s.pages));
  out->set_hits(static_cast<int64_t>(s.hits));
  out->set_misses(static_cast<int64_t>(s.misses));
  out->set_evictions(static_cast<int64_t>(s.evictions));
  out->set_read_bytes(static_cast<int64_t>(s.read_bytes));
  out->set_write_bytes(static_cast<int64_t>(s.write_bytes));
  out->set_capacity_bytes(static_cast<int64_t>(s.capacity_bytes));
}
}  // namespace

grpc::Status GenerationService::GetServerInfo(grpc::ServerContext*, const v1::GetServerInfoRequest*,
                                              v1::GetServerInfoResponse* r) {
  r->set_version(LEOAM_VERSION);
  r->set_backend(options_.backend_name);
  std::string mode = options_.mode_name;
  if (options_.mode != SelectionMode::kDense) {
    mode += absl::StrFormat(" (budget %s, page size %d)", options_.budget_text, options_.paged.page_size);
  }
  r->set_mode(mode);
  r->set_device_budget_bytes(options_.paged.device_budget_bytes);
  r->set_max_prompt_tokens(builder_.max_prompt_tokens());
  r->set_max_tokens_limit(options_.max_tokens_limit);
  r->set_default_max_tokens(options_.default_max_tokens);
  r->set_max_concurrent_requests(options_.max_concurrent);
  r->set_max_batch(options_.max_batch);
  const SchedulerStats s = scheduler_.stats();
  r->set_running_requests(s.running);
  r->set_queued_requests(s.queued);
  r->set_requests_served(s.served);
  r->set_tokens_generated(s.tokens_generated);
  r->set_cached_tokens_memory(s.cached_tokens_memory);
  r->set_cached_tokens_disk(s.cached_tokens_disk);
  if (link_ != nullptr) {
    r->set_kvstore_address(link_->target());
    r->set_kvstore_connected(link_->connected());
    r->set_kvstore_reconnects(link_->reconnects());
    absl::StatusOr<kvstore::StoreStats> stats = link_->Stats();
    if (stats.ok()) {
      CopyTier(stats->memory, r->mutable_memory_tier());
      CopyTier(stats->disk, r->mutable_disk_tier());
    }
  }
  return grpc::Status::OK;
}

}  // namespace leoam::server
