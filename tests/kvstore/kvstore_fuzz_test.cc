// Integration: thousands of malformed and hostile requests against the real process. Every one
// must get a precise error status, the process must stay up, and stored data must not change.
#include <random>

#include "gtest/gtest.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "grpcpp/support/byte_buffer.h"
#include "leoam/v1/kvstore.grpc.pb.h"
#include "tests/kvstore/kvstore_process.h"
#include "tests/testing/temp_dir.h"

namespace leoam::kvstore::testing {
namespace {

constexpr uint32_t kChains = 4, kLen = 16;

class Fuzzer {
 public:
  Fuzzer(std::shared_ptr<grpc::Channel> channel, std::string session, uint64_t arena_bytes)
      : channel_(channel), stub_(v1::KvStore::NewStub(channel)), session_(std::move(session)), arena_(arena_bytes) {}

  // Sends one hostile request; returns its status.
  grpc::Status Step(int kind) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    switch (kind) {
      case 0: {
        v1::HelloRequest req;
        v1::HelloResponse resp;
        req.set_protocol_version(1);
        req.set_model_fingerprint("model-fuzz");
        *req.mutable_layout() = Layout();
        switch (rng_() % 5) {
          case 0: req.set_protocol_version(Pick({0, 2, 7, 0xffffffffu})); break;
          case 1: req.set_model_fingerprint(rng_() % 2 ? "" : std::string(65 + rng_() % 100, 'x')); break;
          case 2: req.mutable_layout()->set_head_dim(Pick({0, 65537, 0xffffffffu})); break;
          case 3: req.mutable_layout()->set_dtype(static_cast<v1::KvDtype>(Pick({0, 4, 99}))); break;
          default: req.mutable_layout()->set_num_kv_heads(3); break;  // known fingerprint, other layout
        }
        return stub_->Hello(&ctx, req, &resp);
      }
      case 1: {
        v1::LookupPrefixRequest req;
        v1::LookupPrefixResponse resp;
        BadSessionOr(req.mutable_session_id(), [&] { req.add_chain(RandomBytes(BadHashLength())); });
        for (int i = 0; i < 3; ++i) req.add_chain(Hash());
        return stub_->LookupPrefix(&ctx, req, &resp);
      }
      case 2: {
        v1::AllocStagingRequest req;
        v1::AllocStagingResponse resp;
        BadSessionOr(req.mutable_session_id(), [&] {
          if (rng_() % 4 == 0) {
            for (int i = 0; i < 4097; ++i) req.add_sizes(4096);
          } else {
            for (int i = 0; i < 3; ++i) req.add_sizes(4096);
            req.add_sizes(rng_() % 2 ? 0 : 8193 + rng_() % 100000000);
          }
        });
        return stub_->AllocStaging(&ctx, req, &resp);
      }
      case 3: return BadPut(&ctx);
      case 4:
      case 5:
      case 6: {
        google::protobuf::RepeatedPtrField<v1::PageKey> keys;
        std::string session = session_;
        switch (rng_() % 4) {
          case 0: session = BadSession(); AddKey(&keys, Hash(), 0); break;
          case 1: AddKey(&keys, Hash(), 0); AddKey(&keys, RandomBytes(BadHashLength()), 0); break;
          case 2: AddKey(&keys, Hash(), 2 + rng_() % 1000000); break;
          default: for (int i = 0; i < 4097; ++i) AddKey(&keys, Hash(), 0); break;
        }
        if (kind == 4) {
          v1::FetchPagesRequest req;
          v1::FetchPagesResponse resp;
          req.set_session_id(session);
          *req.mutable_pages() = keys;
          req.set_inline_payload(rng_() % 2);
          return stub_->FetchPages(&ctx, req, &resp);
        } else if (kind == 5) {
          v1::PrefetchRequest req;
          v1::PrefetchResponse resp;
          req.set_session_id(session);
          *req.mutable_pages() = keys;
          return stub_->Prefetch(&ctx, req, &resp);
        }
        v1::GetAbstractsRequest req;
        v1::GetAbstractsResponse resp;
        req.set_session_id(session);
        *req.mutable_pages() = keys;
        return stub_->GetAbstracts(&ctx, req, &resp);
      }
      case 7: {
        v1::ReleaseRequest req;
        v1::ReleaseResponse resp;
        BadSessionOr(req.mutable_session_id(), [&] {
          if (rng_() % 2) req.add_lease_ids(rng_());
          else req.add_staging_offsets(rng_() % (2 * arena_));
        });
        return stub_->Release(&ctx, req, &resp);
      }
      case 8: {
        v1::StatsRequest req;
        v1::StatsResponse resp;
        req.set_session_id(BadSession());
        if (req.session_id().empty()) req.set_session_id("0123456789abcdeg");
        return stub_->Stats(&ctx, req, &resp);
      }
      case 9: {
        v1::DropRequest req;
        v1::DropResponse resp;
        BadSessionOr(req.mutable_session_id(), [&] {
          switch (rng_() % 3) {
            case 0: req.set_chain_hash(Hash()); break;  // no such node
            case 1: req.set_chain_hash(RandomBytes(BadHashLength())); break;
            default: req.set_all(false); break;
          }
        });
        if (!req.has_chain_hash() && req.target_case() == v1::DropRequest::TARGET_NOT_SET && rng_() % 2) {
          req.set_all(false);
        }
        return stub_->Drop(&ctx, req, &resp);
      }
      default: {
        // Raw garbage bytes as a request of a session-taking method.
        static const char* kMethods[] = {"/leoam.v1.KvStore/PutPages", "/leoam.v1.KvStore/FetchPages",
                                         "/leoam.v1.KvStore/AllocStaging", "/leoam.v1.KvStore/Release"};
        std::string bytes = RandomBytes(rng_() % 300);
        grpc::Slice slice(bytes);
        grpc::ByteBuffer req(&slice, 1), resp;
        return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
            channel_.get(), grpc::internal::RpcMethod(kMethods[rng_() % 4], grpc::internal::RpcMethod::NORMAL_RPC),
            &ctx, req, &resp);
      }
    }
  }

  // Releases the legitimate staging buffers the put cases allocated.
  void Cleanup() {
    if (staged_.empty()) return;
    grpc::ClientContext ctx;
    v1::ReleaseRequest req;
    v1::ReleaseResponse resp;
    req.set_session_id(session_);
    for (uint64_t off : staged_) req.add_staging_offsets(off);
    EXPECT_TRUE(stub_->Release(&ctx, req, &resp).ok());
    staged_.clear();
  }

 private:
  static v1::KvLayout Layout() {
    v1::KvLayout l;
    l.set_num_layers(2);
    l.set_page_size(16);
    l.set_num_kv_heads(2);
    l.set_head_dim(32);
    l.set_dtype(v1::KV_DTYPE_F16);
    return l;
  }
  uint32_t Pick(std::initializer_list<uint32_t> v) { return v.begin()[rng_() % v.size()]; }
  std::string RandomBytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng_());
    return s;
  }
  size_t BadHashLength() { return Pick({0, 1, 15, 17, 32, 1000}); }
  std::string Hash() { return RandomBytes(16); }
  std::string BadSession() {
    switch (rng_() % 3) {
      case 0: return "";
      case 1: {  // printable (proto3 strings must be UTF-8; raw bytes are the garbage case)
        std::string id(rng_() % 40, 'a');
        for (char& c : id) c = static_cast<char>(' ' + rng_() % 95);
        return id;
      }
      default: return absl::StrFormat("%016x", rng_());  // well-formed, unknown
    }
  }
  template <typename F>
  void BadSessionOr(std::string* session, F bad_field) {
    if (rng_() % 3 == 0) {
      *session = BadSession();
    } else {
      *session = session_;
      bad_field();
    }
  }
  void AddKey(google::protobuf::RepeatedPtrField<v1::PageKey>* keys, std::string hash, uint32_t layer) {
    v1::PageKey* k = keys->Add();
    k->set_hash(std::move(hash));
    k->set_layer(layer);
  }

  // A PutPages with valid pages (on fresh staging buffers) and exactly one bad one.
  grpc::Status BadPut(grpc::ClientContext* ctx) {
    if (staged_.size() < 8) {
      grpc::ClientContext actx;
      v1::AllocStagingRequest areq;
      v1::AllocStagingResponse aresp;
      areq.set_session_id(session_);
      for (int i = 0; i < 8; ++i) areq.add_sizes(4096);
      EXPECT_TRUE(stub_->AllocStaging(&actx, areq, &aresp).ok());
      for (const auto& b : aresp.buffers()) staged_.push_back(b.offset());
    }
    v1::PutPagesRequest req;
    v1::PutPagesResponse resp;
    req.set_session_id(session_);
    // A new chain start and its child: valid on their own.
    const std::string root = Hash();
    for (int i = 0; i < 2; ++i) {
      v1::PutPage* p = req.add_pages();
      p->set_hash(i == 0 ? root : Hash());
      if (i == 1) p->set_parent_hash(root);
      p->set_layer(0);
      p->set_encoding(v1::PAGE_ENCODING_FP16);
      p->set_staging_offset(staged_[i]);
      p->set_length(4096);
    }
    v1::PutPage* bad = req.add_pages();
    bad->set_hash(Hash());
    bad->set_layer(1);
    bad->set_encoding(v1::PAGE_ENCODING_FP16);
    bad->set_staging_offset(staged_[2]);
    bad->set_length(4096);
    switch (rng_() % 10) {
      case 0: bad->set_length(Pick({0, 1, 4095, 4097, 2048 + 256, 1u << 30})); break;  // int8 size under fp16
      case 1: bad->set_encoding(static_cast<v1::PageEncoding>(Pick({0, 6, 7, 1000}))); break;
      case 2: bad->set_layer(2 + rng_() % 100); break;
      case 3: bad->set_hash(RandomBytes(BadHashLength())); break;
      case 4: bad->set_staging_offset(Pick({1, 63, 65}) + staged_[3]); break;
      case 5: bad->set_staging_offset(arena_ + rng_() % arena_); break;
      case 6: bad->set_parent_hash(Hash()); break;  // parent not stored
      case 7: bad->set_staging_offset(staged_[0]); break;  // reused buffer
      case 8: bad->set_parent_hash(RandomBytes(Pick({1, 15, 17}))); break;
      default: bad->set_abstract(std::string((1 << 20) + 1, 'a')); break;
    }
    return stub_->PutPages(ctx, req, &resp);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KvStore::Stub> stub_;
  std::string session_;
  uint64_t arena_;
  std::vector<uint64_t> staged_;
  std::mt19937_64 rng_{20261122};
};

TEST(KvStoreFuzzTest, HostileRequestsGetPreciseErrorsAndChangeNothing) {
  leoam::testing::TempDir dir;
  auto proc = KvStoreProcess::Start({dir.path(), {}});
  ASSERT_TRUE(proc.ok()) << proc.status();
  ClientOptions o;
  o.target = (*proc)->target();
  auto client = KvStoreClient::Connect(o, "model-fuzz", TestLayout());
  ASSERT_TRUE(client.ok()) << client.status();
  for (uint32_t c = 0; c < kChains; ++c) ASSERT_TRUE(PutNodes(**client, c, 0, kLen).ok());
  auto before = (*client)->Stats();
  ASSERT_TRUE(before.ok());

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel((*proc)->target(), grpc::InsecureChannelCredentials(), args);
  Fuzzer fuzzer(channel, (*client)->hello().session_id, (*client)->hello().arena_bytes);
  std::map<grpc::StatusCode, int> codes;
  constexpr int kRequests = 4000;
  for (int i = 0; i < kRequests; ++i) {
    const int kind = i % 11;
    grpc::Status s = fuzzer.Step(kind);
    ASSERT_FALSE(s.ok()) << "request " << i << " (kind " << kind << ") was accepted";
    const grpc::StatusCode c = s.error_code();
    const bool precise = c == grpc::INVALID_ARGUMENT || c == grpc::NOT_FOUND || c == grpc::RESOURCE_EXHAUSTED ||
                         c == grpc::FAILED_PRECONDITION;
    // Bytes that do not parse as the request message are refused by gRPC itself before our code.
    const bool unparsable = kind == 10 && c == grpc::INTERNAL;
    ASSERT_TRUE(precise || unparsable) << "request " << i << " (kind " << kind << "): " << c << " "
                                       << s.error_message();
    ++codes[c];
    if (i % 500 == 0) {
      ASSERT_TRUE((*proc)->Alive()) << (*proc)->Log();
    }
  }
  fuzzer.Cleanup();
  ASSERT_TRUE((*proc)->Alive());
  for (const auto& [code, n] : codes) std::printf("status %d: %d requests\n", code, n);
  EXPECT_GE(codes.size(), 4u);

  auto after = (*client)->Stats();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->disk.pages, before->disk.pages);
  EXPECT_EQ(after->disk.bytes, before->disk.bytes);
  EXPECT_EQ(after->chain_nodes, before->chain_nodes);
  EXPECT_EQ(after->staging_bytes, 0u);
  EXPECT_EQ(after->leases, 0u);
  EXPECT_EQ(after->arena_used_bytes, before->arena_used_bytes);  // nothing leaked in the arena
  for (uint32_t c = 0; c < kChains; ++c) {
    size_t ok = 0;
    ASSERT_TRUE(FetchAndCheck(**client, c, 0, kLen, &ok).ok());
    EXPECT_EQ(ok, size_t{kLen} * TestLayout().num_layers);
  }
}

}  // namespace
}  // namespace leoam::kvstore::testing
