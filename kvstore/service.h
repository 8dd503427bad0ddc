// KvStoreService: the gRPC face of a Store; converts absl::Status to grpc::Status and nothing else.
#pragma once

#include "grpcpp/grpcpp.h"
#include "kvstore/store.h"
#include "leoam/v1/kvstore.grpc.pb.h"

namespace leoam::kvstore {

grpc::Status ToGrpcStatus(const absl::Status& s);

class KvStoreService final : public v1::KvStore::Service {
 public:
  explicit KvStoreService(Store* store) : store_(store) {}

  grpc::Status Hello(grpc::ServerContext*, const v1::HelloRequest* req, v1::HelloResponse* resp) override;
  grpc::Status LookupPrefix(grpc::ServerContext*, const v1::LookupPrefixRequest* req,
                            v1::LookupPrefixResponse* resp) override;
  grpc::Status AllocStaging(grpc::ServerContext*, const v1::AllocStagingRequest* req,
                            v1::AllocStagingResponse* resp) override;
  grpc::Status PutPages(grpc::ServerContext*, const v1::PutPagesRequest* req, v1::PutPagesResponse* resp) override;
  grpc::Status GetAbstracts(grpc::ServerContext*, const v1::GetAbstractsRequest* req,
                            v1::GetAbstractsResponse* resp) override;
  grpc::Status GetChainAbstracts(grpc::ServerContext*, const v1::GetChainAbstractsRequest* req,
                                 v1::GetChainAbstractsResponse* resp) override;
  grpc::Status FetchPages(grpc::ServerContext*, const v1::FetchPagesRequest* req,
                          v1::FetchPagesResponse* resp) override;
  grpc::Status OpenFetchChannel(grpc::ServerContext*, const v1::OpenFetchChannelRequest* req,
                                v1::OpenFetchChannelResponse* resp) override;
  grpc::Status Prefetch(grpc::ServerContext*, const v1::PrefetchRequest* req, v1::PrefetchResponse* resp) override;
  grpc::Status Release(grpc::ServerContext*, const v1::ReleaseRequest* req, v1::ReleaseResponse* resp) override;
  grpc::Status Stats(grpc::ServerContext*, const v1::StatsRequest* req, v1::StatsResponse* resp) override;
  grpc::Status Drop(grpc::ServerContext*, const v1::DropRequest* req, v1::DropResponse* resp) override;

 private:
  Store* store_;  // not owned
};

}  // namespace leoam::kvstore
