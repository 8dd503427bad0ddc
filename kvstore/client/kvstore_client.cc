#include "leoam/kvstore/kvstore_client.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "grpcpp/grpcpp.h"
#include "kvstore/fetch_channel_format.h"
#include "kvstore/futex.h"
#include "kvstore/shared_memory.h"
#include "leoam/v1/kvstore.grpc.pb.h"

namespace leoam::kvstore {
namespace {

constexpr uint32_t kProtocolVersion = 1;

absl::Status FromGrpc(const grpc::Status& s, const char* rpc) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrFormat("kvstore %s: %s", rpc, s.error_message()));
}

std::string HashBytes(const PageHash& h) { return std::string(reinterpret_cast<const char*>(h.data()), h.size()); }

void FillKeys(absl::Span<const PageRef> pages, google::protobuf::RepeatedPtrField<v1::PageKey>* out) {
  out->Reserve(static_cast<int>(pages.size()));
  for (const PageRef& p : pages) {
    v1::PageKey* k = out->Add();
    k->set_hash(HashBytes(p.hash));
    k->set_layer(p.layer);
  }
}

TierStats ToTier(const v1::TierStats& t) {
  return TierStats{t.bytes(), t.pages(), t.capacity_bytes(), t.hits(), t.misses(), t.evictions(),
                   t.read_bytes(), t.write_bytes()};
}

}  // namespace

// The client end of a fetch channel (kvstore/fetch_channel_format.h).
struct ChannelEnd {
  std::shared_ptr<SharedMemoryFile> arena;  // keeps the mapping alive while the channel is used
  uint8_t* block = nullptr;
  channel::Control* control = nullptr;
  uint32_t max_pages = 0;
  absl::Mutex use_mu;  // one request at a time in the slot
};

// How long a client spins for a completion before sleeping on the futex: the store serves a
// 64-page fetch in ~10 us, a futex wakeup costs about as much.
constexpr int64_t kClientSpinUs = 50;
constexpr int64_t kClientSleepSliceUs = 100000;

struct KvStoreClient::Impl {
  ClientOptions options;
  std::string fingerprint;
  KvLayout layout;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::KvStore::Stub> stub;
  mutable absl::Mutex mu;
  HelloInfo hello ABSL_GUARDED_BY(mu);
  std::shared_ptr<SharedMemoryFile> arena ABSL_GUARDED_BY(mu);
  std::shared_ptr<ChannelEnd> fetch_channel ABSL_GUARDED_BY(mu);
  bool channel_refused ABSL_GUARDED_BY(mu) = false;  // the store said no (until the next Hello)
  std::atomic<uint64_t> channel_calls{0};

  // The open channel, opening one on first use; nullptr when there is none to use.
  std::shared_ptr<ChannelEnd> Channel() {
    std::string sid;
    std::shared_ptr<SharedMemoryFile> mapped;
    {
      absl::MutexLock l(&mu);
      if (fetch_channel != nullptr || channel_refused || !options.fetch_channel || arena == nullptr) return fetch_channel;
      sid = hello.session_id;
      mapped = arena;
    }
    v1::OpenFetchChannelRequest req;
    req.set_session_id(sid);
    v1::OpenFetchChannelResponse resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    const grpc::Status s = stub->OpenFetchChannel(&ctx, req, &resp);
    auto end = std::make_shared<ChannelEnd>();
    bool ok = s.ok() && resp.format_version() == channel::kVersion && resp.max_pages() > 0 &&
              resp.region().offset() <= mapped->size() &&
              resp.region().length() <= mapped->size() - resp.region().offset() &&
              resp.region().length() >= channel::BlockBytes(resp.max_pages());
    if (ok) {
      end->arena = mapped;
      end->block = mapped->data() + resp.region().offset();
      end->control = reinterpret_cast<channel::Control*>(end->block);
      end->max_pages = resp.max_pages();
      ok = SharedWord(end->control->magic).load(std::memory_order_acquire) == channel::kMagic &&
           end->control->channel_id == resp.channel_id() && end->control->max_pages == resp.max_pages();
    }
    absl::MutexLock l(&mu);
    if (arena != mapped) return nullptr;  // reconnected meanwhile
    if (!ok) {
      channel_refused = true;  // e.g. an older store, or its channel limit: gRPC it is
      return nullptr;
    }
    if (fetch_channel == nullptr) fetch_channel = std::move(end);
    return fetch_channel;
  }
  void DropChannel(const std::shared_ptr<ChannelEnd>& end) {
    absl::MutexLock l(&mu);
    if (fetch_channel == end) fetch_channel = nullptr;
  }

  // One request through the channel. nullopt: not sent (channel busy, closed or too small): use gRPC.
  template <typename FillRequest>
  std::optional<absl::Status> ChannelCall(const std::shared_ptr<ChannelEnd>& end, uint32_t op, uint32_t pages,
                                          uint32_t releases, FillRequest fill, const char* rpc,
                                          channel::ResponseHeader** response) {
    if (pages > end->max_pages || releases > end->max_pages || !end->use_mu.TryLock()) return std::nullopt;
    channel::Control* c = end->control;
    if (SharedWord(c->closed).load(std::memory_order_acquire) != 0) {
      end->use_mu.Unlock();
      DropChannel(end);
      return std::nullopt;
    }
    uint8_t* req = end->block + channel::kRequestOffset;
    const channel::RequestHeader h{op, pages, releases, 0};
    std::memcpy(req, &h, sizeof(h));
    fill(req + sizeof(h));
    const uint32_t seq = SharedWord(c->req_seq).load(std::memory_order_relaxed) + 1;
    PublishAndWake(c->req_seq, seq, c->server_sleeping);
    const int64_t deadline = MonotonicMicros() + absl::ToInt64Microseconds(options.rpc_timeout);
    auto closed = [c] { return SharedWord(c->closed).load(std::memory_order_relaxed) != 0; };
    const uint32_t got = WaitForChange(c->resp_seq, seq - 1, c->client_sleeping, kClientSpinUs, kClientSleepSliceUs,
                                       deadline, closed);
    if (got != seq) {
      // No completion: the store closed the channel or is stuck. Never reuse this slot.
      const bool was_closed = closed();
      end->use_mu.Unlock();
      DropChannel(end);
      if (was_closed) {
        return absl::UnavailableError(absl::StrFormat("kvstore %s: the fetch channel closed during the call", rpc));
      }
      return absl::DeadlineExceededError(absl::StrFormat("kvstore %s: no completion from the fetch channel", rpc));
    }
    *response = reinterpret_cast<channel::ResponseHeader*>(end->block + channel::ResponseOffset(end->max_pages));
    channel_calls.fetch_add(1, std::memory_order_relaxed);
    if ((*response)->code != 0) {
      const std::string msg((*response)->message, std::min<size_t>((*response)->message_bytes, channel::kMessageBytes));
      const auto code = static_cast<absl::StatusCode>((*response)->code);
      end->use_mu.Unlock();
      return absl::Status(code, absl::StrFormat("kvstore %s: %s", rpc, msg));
    }
    return absl::OkStatus();  // the caller reads the response, then unlocks use_mu
  }

  void Prepare(grpc::ClientContext* ctx) const {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::microseconds(absl::ToInt64Microseconds(options.rpc_timeout)));
  }
  std::string session() const {
    absl::MutexLock l(&mu);
    return hello.session_id;
  }
  uint8_t* base() const {
    absl::MutexLock l(&mu);
    return arena ? arena->data() : nullptr;
  }

  absl::Status DoHello() {
    v1::HelloRequest req;
    req.set_protocol_version(kProtocolVersion);
    req.set_model_fingerprint(fingerprint);
    req.set_client_name(options.client_name);
    v1::KvLayout* l = req.mutable_layout();
    l->set_num_layers(layout.num_layers);
    l->set_page_size(layout.page_size);
    l->set_num_kv_heads(layout.num_kv_heads);
    l->set_head_dim(layout.head_dim);
    l->set_dtype(static_cast<v1::KvDtype>(layout.dtype));
    v1::HelloResponse resp;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    ctx.set_wait_for_ready(false);
    RETURN_IF_ERROR(FromGrpc(stub->Hello(&ctx, req, &resp), "Hello"));
    std::shared_ptr<SharedMemoryFile> mapped;
    if (options.map_arena) {
      ASSIGN_OR_RETURN(SharedMemoryFile f, SharedMemoryFile::Open(resp.arena_path()));
      if (f.size() < resp.arena_bytes()) return absl::InternalError("arena file is smaller than the store says");
      mapped = std::make_shared<SharedMemoryFile>(std::move(f));
    }
    absl::MutexLock lock(&mu);
    fetch_channel = nullptr;
    channel_refused = false;
    hello = HelloInfo{resp.session_id(), resp.server_instance_id(), resp.arena_path(), resp.arena_bytes(),
                      resp.lease_timeout_ms(), resp.max_pages_per_request(), resp.fingerprint_known()};
    arena = std::move(mapped);
    return absl::OkStatus();
  }
};

KvStoreClient::KvStoreClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvStoreClient::~KvStoreClient() = default;

absl::StatusOr<std::unique_ptr<KvStoreClient>> KvStoreClient::Connect(const ClientOptions& options,
                                                                       std::string fingerprint,
                                                                       const KvLayout& layout) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->fingerprint = std::move(fingerprint);
  impl->layout = layout;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(64 << 20);
  impl->channel = grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  impl->stub = v1::KvStore::NewStub(impl->channel);
  RETURN_IF_ERROR(impl->DoHello());
  return std::unique_ptr<KvStoreClient>(new KvStoreClient(std::move(impl)));
}

absl::Status KvStoreClient::Reconnect() { return impl_->DoHello(); }

HelloInfo KvStoreClient::hello() const {
  absl::MutexLock l(&impl_->mu);
  return impl_->hello;
}

uint8_t* KvStoreClient::arena_data() const { return impl_->base(); }

uint64_t KvStoreClient::channel_calls() const { return impl_->channel_calls.load(std::memory_order_relaxed); }

absl::StatusOr<size_t> KvStoreClient::PageBytes(PageEncoding encoding) const {
  const KvLayout& l = impl_->layout;
  return codec::EncodedPageBytes(encoding, codec::PageShape{int64_t{2} * l.page_size * l.num_kv_heads, l.head_dim});
}

absl::StatusOr<PrefixInfo> KvStoreClient::LookupPrefix(absl::Span<const PageHash> chain) {
  v1::LookupPrefixRequest req;
  req.set_session_id(impl_->session());
  for (const PageHash& h : chain) req.add_chain(HashBytes(h));
  v1::LookupPrefixResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->LookupPrefix(&ctx, req, &resp), "LookupPrefix"));
  return PrefixInfo{resp.num_present(), resp.num_in_memory()};
}

absl::StatusOr<std::vector<StagingBuffer>> KvStoreClient::AllocStaging(absl::Span<const uint64_t> sizes) {
  v1::AllocStagingRequest req;
  req.set_session_id(impl_->session());
  for (uint64_t s : sizes) req.add_sizes(s);
  v1::AllocStagingResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->AllocStaging(&ctx, req, &resp), "AllocStaging"));
  uint8_t* base = impl_->base();
  std::vector<StagingBuffer> out;
  for (const v1::ArenaRegion& r : resp.buffers()) {
    out.push_back(StagingBuffer{r.offset(), r.length(), base != nullptr ? base + r.offset() : nullptr});
  }
  return out;
}

absl::StatusOr<PutResult> KvStoreClient::PutPages(absl::Span<const PagePut> pages) {
  v1::PutPagesRequest req;
  req.set_session_id(impl_->session());
  for (const PagePut& p : pages) {
    v1::PutPage* q = req.add_pages();
    q->set_hash(HashBytes(p.hash));
    if (p.parent.has_value()) q->set_parent_hash(HashBytes(*p.parent));
    q->set_layer(p.layer);
    q->set_encoding(static_cast<v1::PageEncoding>(p.encoding));
    q->set_staging_offset(p.staging_offset);
    q->set_length(p.length);
    q->set_abstract(p.abstract);
  }
  v1::PutPagesResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->PutPages(&ctx, req, &resp), "PutPages"));
  return PutResult{resp.num_committed(), resp.num_already_present()};
}

absl::StatusOr<std::vector<std::optional<std::string>>> KvStoreClient::GetAbstracts(absl::Span<const PageRef> pages) {
  v1::GetAbstractsRequest req;
  req.set_session_id(impl_->session());
  FillKeys(pages, req.mutable_pages());
  v1::GetAbstractsResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->GetAbstracts(&ctx, req, &resp), "GetAbstracts"));
  std::vector<std::optional<std::string>> out;
  for (v1::AbstractEntry& e : *resp.mutable_entries()) {
    if (e.found()) out.emplace_back(std::move(*e.mutable_abstract()));
    else out.emplace_back(std::nullopt);
  }
  return out;
}

absl::StatusOr<ChainAbstracts> KvStoreClient::GetChainAbstracts(absl::Span<const PageHash> chain) {
  uint8_t* base = impl_->base();
  if (base == nullptr) return absl::FailedPreconditionError("GetChainAbstracts needs the arena mapped (map_arena)");
  const uint64_t arena_bytes = hello().arena_bytes;
  v1::GetChainAbstractsRequest req;
  req.set_session_id(impl_->session());
  req.mutable_chain()->Reserve(static_cast<int>(chain.size()));
  for (const PageHash& h : chain) req.add_chain(HashBytes(h));
  v1::GetChainAbstractsResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->GetChainAbstracts(&ctx, req, &resp), "GetChainAbstracts"));
  ChainAbstracts out;
  out.num_nodes = resp.num_nodes();
  out.limited = resp.limited();
  out.lease_id = resp.lease_id();
  const uint64_t region = resp.region().offset(), length = resp.region().length();
  uint64_t sum = 0;
  for (uint32_t len : resp.abstract_bytes()) sum += len;
  const uint64_t expected = uint64_t{out.num_nodes} * impl_->layout.num_layers;
  if (static_cast<uint64_t>(resp.abstract_bytes_size()) != expected || out.num_nodes > chain.size() ||
      sum > length || region > arena_bytes || length > arena_bytes - region) {
    return absl::InternalError(absl::StrFormat(
        "kvstore GetChainAbstracts: malformed reply (%d nodes, %d lengths, %d bytes in a %d-byte region at %d)",
        out.num_nodes, resp.abstract_bytes_size(), sum, length, region));
  }
  out.data.reserve(expected);
  out.lengths.assign(resp.abstract_bytes().begin(), resp.abstract_bytes().end());
  uint64_t at = region;
  for (uint32_t len : out.lengths) {
    out.data.push_back(base + at);
    at += len;
  }
  return out;
}

absl::StatusOr<FetchResult> KvStoreClient::FetchPages(absl::Span<const PageRef> pages,
                                                      absl::Span<const uint64_t> release_lease_ids) {
  if (std::shared_ptr<ChannelEnd> end = impl_->Channel()) {
    std::vector<uint64_t> ids;
    for (uint64_t id : release_lease_ids) {
      if (id != 0) ids.push_back(id);
    }
    channel::ResponseHeader* r = nullptr;
    std::optional<absl::Status> s = impl_->ChannelCall(
        end, channel::kOpFetch, static_cast<uint32_t>(pages.size()), static_cast<uint32_t>(ids.size()),
        [&](uint8_t* p) {
          std::memcpy(p, ids.data(), ids.size() * sizeof(uint64_t));
          auto* keys = reinterpret_cast<channel::PageKeyWire*>(p + ids.size() * sizeof(uint64_t));
          for (size_t i = 0; i < pages.size(); ++i) {
            std::memcpy(keys[i].hash, pages[i].hash.data(), sizeof(keys[i].hash));
            keys[i].layer = pages[i].layer;
          }
        },
        "FetchPages", &r);
    if (s.has_value()) {
      if (!s->ok()) return *s;
      FetchResult out;
      out.lease_id = r->lease_id;
      const auto* d = reinterpret_cast<const channel::DescriptorWire*>(r + 1);
      const uint32_t n = std::min<uint32_t>(r->num_pages, static_cast<uint32_t>(pages.size()));
      const uint8_t* base = end->arena->data();
      out.pages.resize(n);
      for (uint32_t i = 0; i < n; ++i) {
        FetchedPage& p = out.pages[i];
        p.found = d[i].found != 0;
        p.from_disk = d[i].tier == v1::TIER_DISK;
        p.encoding = static_cast<PageEncoding>(d[i].encoding);
        p.offset = p.found ? d[i].offset : 0;
        p.length = p.found ? d[i].length : 0;
        p.data = p.found ? base + d[i].offset : nullptr;
      }
      end->use_mu.Unlock();
      return out;
    }
  }
  v1::FetchPagesRequest req;
  req.set_session_id(impl_->session());
  for (uint64_t id : release_lease_ids) {
    if (id != 0) req.add_release_lease_ids(id);
  }
  FillKeys(pages, req.mutable_pages());
  v1::FetchPagesResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->FetchPages(&ctx, req, &resp), "FetchPages"));
  uint8_t* base = impl_->base();
  FetchResult out;
  out.lease_id = resp.lease_id();
  for (const v1::PageDescriptor& d : resp.pages()) {
    FetchedPage p;
    p.found = d.found();
    p.from_disk = d.tier() == v1::TIER_DISK;
    p.encoding = static_cast<PageEncoding>(d.encoding());
    p.offset = d.offset();
    p.length = d.length();
    p.data = (p.found && base != nullptr) ? base + d.offset() : nullptr;
    out.pages.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<FetchResult> KvStoreClient::FetchPagesInline(absl::Span<const PageRef> pages) {
  v1::FetchPagesRequest req;
  req.set_session_id(impl_->session());
  req.set_inline_payload(true);
  FillKeys(pages, req.mutable_pages());
  v1::FetchPagesResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->FetchPages(&ctx, req, &resp), "FetchPages"));
  FetchResult out;
  for (v1::PageDescriptor& d : *resp.mutable_pages()) {
    FetchedPage p;
    p.found = d.found();
    p.from_disk = d.tier() == v1::TIER_DISK;
    p.encoding = static_cast<PageEncoding>(d.encoding());
    p.length = d.length();
    p.inline_payload = std::move(*d.mutable_payload());
    p.data = reinterpret_cast<const uint8_t*>(p.inline_payload.data());
    out.pages.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<PrefetchResult> KvStoreClient::Prefetch(absl::Span<const PageRef> pages) {
  v1::PrefetchRequest req;
  req.set_session_id(impl_->session());
  FillKeys(pages, req.mutable_pages());
  v1::PrefetchResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->Prefetch(&ctx, req, &resp), "Prefetch"));
  return PrefetchResult{resp.num_queued(), resp.num_in_memory(), resp.num_missing()};
}

absl::Status KvStoreClient::Release(absl::Span<const uint64_t> lease_ids, absl::Span<const uint64_t> staging_offsets) {
  v1::ReleaseRequest req;
  req.set_session_id(impl_->session());
  for (uint64_t id : lease_ids) {
    if (id != 0) req.add_lease_ids(id);
  }
  for (uint64_t off : staging_offsets) req.add_staging_offsets(off);
  if (req.lease_ids_size() == 0 && req.staging_offsets_size() == 0) return absl::OkStatus();
  if (staging_offsets.empty()) {
    if (std::shared_ptr<ChannelEnd> end = impl_->Channel()) {
      channel::ResponseHeader* r = nullptr;
      std::optional<absl::Status> s = impl_->ChannelCall(
          end, channel::kOpRelease, 0, static_cast<uint32_t>(req.lease_ids_size()),
          [&](uint8_t* p) { std::memcpy(p, req.lease_ids().data(), req.lease_ids_size() * sizeof(uint64_t)); },
          "Release", &r);
      if (s.has_value()) {
        if (s->ok()) end->use_mu.Unlock();
        return *s;
      }
    }
  }
  v1::ReleaseResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  return FromGrpc(impl_->stub->Release(&ctx, req, &resp), "Release");
}

absl::StatusOr<StoreStats> KvStoreClient::Stats() {
  v1::StatsRequest req;
  v1::StatsResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->Stats(&ctx, req, &resp), "Stats"));
  StoreStats s;
  s.memory = ToTier(resp.memory());
  s.disk = ToTier(resp.disk());
  s.arena_bytes = resp.arena_bytes();
  s.staging_bytes = resp.staging_bytes();
  s.arena_used_bytes = resp.arena_used_bytes();
  s.chain_nodes = resp.chain_nodes();
  s.sessions = resp.sessions();
  s.leases = resp.leases();
  s.abstract_cache_bytes = resp.abstract_cache_bytes();
  s.abstract_cache_entries = resp.abstract_cache_entries();
  s.fetch_channels = resp.fetch_channels();
  return s;
}

absl::StatusOr<uint64_t> KvStoreClient::DropAll() {
  v1::DropRequest req;
  req.set_session_id(impl_->session());
  req.set_all(true);
  v1::DropResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->Drop(&ctx, req, &resp), "Drop"));
  return resp.pages_dropped();
}

absl::StatusOr<uint64_t> KvStoreClient::DropChain(const PageHash& hash) {
  v1::DropRequest req;
  req.set_session_id(impl_->session());
  req.set_chain_hash(HashBytes(hash));
  v1::DropResponse resp;
  grpc::ClientContext ctx;
  impl_->Prepare(&ctx);
  RETURN_IF_ERROR(FromGrpc(impl_->stub->Drop(&ctx, req, &resp), "Drop"));
  return resp.pages_dropped();
}

}  // namespace leoam::kvstore
