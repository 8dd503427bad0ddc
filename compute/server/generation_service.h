// GenerationService: the leoam.v1.Generation gRPC service (synchronous API). Generate validates
// the request (RequestBuilder), hands it to the Scheduler and writes the messages the scheduler
// produces; it polls the call for cancellation and deadline and passes them on.
#pragma once

#include <string>

#include "compute/model/fingerprint.h"
#include "compute/model/llama_model.h"
#include "compute/server/kvstore_link.h"
#include "compute/server/request_builder.h"
#include "compute/server/scheduler.h"
#include "compute/server/server_options.h"
#include "compute/tokenizer/tokenizer.h"
#include "leoam/v1/generation.grpc.pb.h"

namespace leoam::server {

class GenerationService final : public leoam::v1::Generation::Service {
 public:
  // Everything passed in outlives the service. `link` may be null.
  GenerationService(const LlamaModel& model, const Tokenizer& tokenizer, const ServerOptions& options,
                    const RequestBuilder& builder, Scheduler& scheduler, KvStoreLink* link, const Hash128& fingerprint,
                    std::string chat_template);

  grpc::Status Generate(grpc::ServerContext* context, const leoam::v1::GenerateRequest* request,
                        grpc::ServerWriter<leoam::v1::GenerateResponse>* writer) override;
  grpc::Status Abort(grpc::ServerContext* context, const leoam::v1::AbortRequest* request,
                     leoam::v1::AbortResponse* response) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const leoam::v1::TokenizeRequest* request,
                        leoam::v1::TokenizeResponse* response) override;
  grpc::Status Detokenize(grpc::ServerContext* context, const leoam::v1::DetokenizeRequest* request,
                          leoam::v1::DetokenizeResponse* response) override;
  grpc::Status GetModelInfo(grpc::ServerContext* context, const leoam::v1::GetModelInfoRequest* request,
                            leoam::v1::GetModelInfoResponse* response) override;
  grpc::Status GetServerInfo(grpc::ServerContext* context, const leoam::v1::GetServerInfoRequest* request,
                             leoam::v1::GetServerInfoResponse* response) override;

 private:
  const LlamaModel& model_;
  const Tokenizer& tokenizer_;
  const ServerOptions& options_;
  const RequestBuilder& builder_;
  Scheduler& scheduler_;
  KvStoreLink* link_;
  Hash128 fingerprint_;
  std::string chat_template_;
};

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace leoam::server
