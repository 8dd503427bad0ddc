// KvStoreClient: what leoam-compute links to talk to leoam-kvstore.
//
// Connect() opens a session (Hello) for one model fingerprint and KV layout and maps the store's
// shared-memory arena. Payloads move through the arena, never through gRPC:
//   put:   AllocStaging(sizes) -> write each buffer's data() -> PutPages(...) commits atomically
//   fetch: FetchPages(keys) -> read each page at data() -> Release(lease_id) when copied
// Fetched pages stay valid (the store does not reuse their memory) until Release or the lease
// timeout (HelloInfo::lease_timeout_ms). Page byte layouts: kernels/codec/page_codec.h.
// After a store restart calls fail with NOT_FOUND (unknown session) or UNAVAILABLE; Reconnect()
// opens a new session and re-maps the new arena. Thread-safe: calls may come from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "kernels/codec/page_codec.h"

namespace leoam::kvstore {

using PageEncoding = codec::PageEncoding;
// Chain hash of a page position: h_i = H(fingerprint, h_{i-1}, tokens of page i) (DESIGN §3).
using PageHash = std::array<uint8_t, 16>;

// Values match leoam.v1.KvDtype.
enum class KvDtype : uint32_t { kF16 = 1, kBf16 = 2, kF32 = 3 };

struct KvLayout {
  uint32_t num_layers = 0;
  uint32_t page_size = 16;  // tokens per page
  uint32_t num_kv_heads = 0;
  uint32_t head_dim = 0;
  KvDtype dtype = KvDtype::kF16;
};

struct ClientOptions {
  std::string target;                               // e.g. "unix:///tmp/leoam-kvstore/kvstore.sock"
  std::string client_name = "leoam-compute";        // shows in the store's log
  absl::Duration rpc_timeout = absl::Seconds(30);   // deadline of each call
  bool map_arena = true;                            // false for remote (TCP) clients: inline fetch only
  // FetchPages and Release go through a fetch channel (a request/completion slot in the arena,
  // futex doorbells: no gRPC round trip) when the store grants one; gRPC otherwise, and for calls
  // made while another thread of this client is using the channel.
  bool fetch_channel = true;
};

struct PageRef {
  PageHash hash{};
  uint32_t layer = 0;
};

struct StagingBuffer {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint8_t* data = nullptr;  // in the mapped arena
};

struct PagePut {
  PageHash hash{};
  std::optional<PageHash> parent;  // nullopt for the first page of a chain
  uint32_t layer = 0;
  PageEncoding encoding = PageEncoding::kFp16;
  uint64_t staging_offset = 0;
  uint64_t length = 0;
  std::string abstract;
};

struct PutResult {
  uint32_t committed = 0;
  uint32_t already_present = 0;
};

struct FetchedPage {
  bool found = false;
  bool from_disk = false;  // loaded from the disk tier for this request
  PageEncoding encoding = PageEncoding::kFp16;
  uint64_t offset = 0;
  uint64_t length = 0;
  const uint8_t* data = nullptr;  // in the arena; valid until the lease ends
  std::string inline_payload;     // only from FetchPagesInline
};

// Abstracts of a chain's leading nodes, every layer, in the arena (GetChainAbstracts).
struct ChainAbstracts {
  uint32_t num_nodes = 0;   // leading hashes whose every layer is here
  bool limited = false;     // stopped at the reply size limit: ask again from chain[num_nodes]
  uint64_t lease_id = 0;    // pins the bytes; Release it once read (0: nothing pinned)
  std::vector<const uint8_t*> data;  // [node * num_layers + layer], in the arena
  std::vector<uint32_t> lengths;     // same order
};

struct FetchResult {
  uint64_t lease_id = 0;  // 0 when nothing was found
  std::vector<FetchedPage> pages;
};

struct PrefixInfo {
  uint32_t num_present = 0;    // leading pages stored with all layers
  uint32_t num_in_memory = 0;  // of those, leading pages with all layers in the memory tier
};

struct PrefetchResult {
  uint32_t queued = 0;
  uint32_t in_memory = 0;
  uint32_t missing = 0;
};

struct TierStats {
  uint64_t bytes = 0, pages = 0, capacity_bytes = 0, hits = 0, misses = 0, evictions = 0;
  uint64_t read_bytes = 0, write_bytes = 0;
};

struct StoreStats {
  TierStats memory;
  TierStats disk;
  uint64_t arena_bytes = 0, staging_bytes = 0, arena_used_bytes = 0, chain_nodes = 0;
  uint32_t sessions = 0, leases = 0;
  uint64_t abstract_cache_bytes = 0, abstract_cache_entries = 0;  // abstracts kept in the store's memory
  uint32_t fetch_channels = 0;                                    // open fetch channels
};

struct HelloInfo {
  std::string session_id;
  std::string server_instance_id;
  std::string arena_path;
  uint64_t arena_bytes = 0;
  uint64_t lease_timeout_ms = 0;
  uint32_t max_pages_per_request = 0;
  bool fingerprint_known = false;
};

class KvStoreClient {
 public:
  static absl::StatusOr<std::unique_ptr<KvStoreClient>> Connect(const ClientOptions& options,
                                                                 std::string fingerprint, const KvLayout& layout);
  ~KvStoreClient();
  KvStoreClient(const KvStoreClient&) = delete;
  KvStoreClient& operator=(const KvStoreClient&) = delete;

  // New session (and arena mapping) after the store restarted. Pointers from before are invalid.
  absl::Status Reconnect();

  absl::StatusOr<PrefixInfo> LookupPrefix(absl::Span<const PageHash> chain);
  absl::StatusOr<std::vector<StagingBuffer>> AllocStaging(absl::Span<const uint64_t> sizes);
  absl::StatusOr<PutResult> PutPages(absl::Span<const PagePut> pages);
  // One entry per key: the abstract, or nullopt if the page is not stored.
  absl::StatusOr<std::vector<std::optional<std::string>>> GetAbstracts(absl::Span<const PageRef> pages);
  // Abstracts of every layer of chain's leading stored nodes, through the arena (needs it mapped):
  // one round trip and no copy of the bytes into a message. Release(result.lease_id) when read.
  absl::StatusOr<ChainAbstracts> GetChainAbstracts(absl::Span<const PageHash> chain);
  // release_lease_ids: leases to end first (as Release does, in the same round trip), e.g. the
  // previous batch's once it is copied. If one is unknown the call fails and nothing changes.
  absl::StatusOr<FetchResult> FetchPages(absl::Span<const PageRef> pages,
                                         absl::Span<const uint64_t> release_lease_ids = {});
  // Copies the payloads inside the gRPC response (no lease, no arena mapping needed).
  absl::StatusOr<FetchResult> FetchPagesInline(absl::Span<const PageRef> pages);
  absl::StatusOr<PrefetchResult> Prefetch(absl::Span<const PageRef> pages);
  absl::Status Release(absl::Span<const uint64_t> lease_ids, absl::Span<const uint64_t> staging_offsets = {});
  absl::StatusOr<StoreStats> Stats();
  // Drops every page of this fingerprint / one chain node and all nodes after it. Returns pages dropped.
  absl::StatusOr<uint64_t> DropAll();
  absl::StatusOr<uint64_t> DropChain(const PageHash& hash);

  // Encoded bytes of one page of this layout in `encoding`. Any encoding may be put under any
  // KvDtype (e.g. int8 pages in an f32 session); the store checks each page against its own.
  absl::StatusOr<size_t> PageBytes(PageEncoding encoding) const;
  // The largest page of this layout (an F32 page): the most AllocStaging gives one buffer.
  absl::StatusOr<size_t> MaxPageBytes() const { return PageBytes(codec::kLargestPageEncoding); }
  HelloInfo hello() const;
  uint8_t* arena_data() const;
  // Calls served by the fetch channel so far (the rest went over gRPC).
  uint64_t channel_calls() const;

 private:
  struct Impl;
  explicit KvStoreClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace leoam::kvstore
