#include "kvstore/service.h"

namespace leoam::kvstore {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

#define LEOAM_RPC(Name, Req, Resp)                                                                 \
  grpc::Status KvStoreService::Name(grpc::ServerContext*, const v1::Req* req, v1::Resp* resp) {   \
    absl::Status s = store_->Name(*req, resp);                                                     \
    if (!s.ok()) resp->Clear();                                                                    \
    return ToGrpcStatus(s);                                                                        \
  }

LEOAM_RPC(Hello, HelloRequest, HelloResponse)
LEOAM_RPC(LookupPrefix, LookupPrefixRequest, LookupPrefixResponse)
LEOAM_RPC(AllocStaging, AllocStagingRequest, AllocStagingResponse)
LEOAM_RPC(PutPages, PutPagesRequest, PutPagesResponse)
LEOAM_RPC(GetAbstracts, GetAbstractsRequest, GetAbstractsResponse)
LEOAM_RPC(GetChainAbstracts, GetChainAbstractsRequest, GetChainAbstractsResponse)
LEOAM_RPC(FetchPages, FetchPagesRequest, FetchPagesResponse)
LEOAM_RPC(OpenFetchChannel, OpenFetchChannelRequest, OpenFetchChannelResponse)
LEOAM_RPC(Prefetch, PrefetchRequest, PrefetchResponse)
LEOAM_RPC(Release, ReleaseRequest, ReleaseResponse)
LEOAM_RPC(Stats, StatsRequest, StatsResponse)
LEOAM_RPC(Drop, DropRequest, DropResponse)

#undef LEOAM_RPC

}  // namespace leoam::kvstore
