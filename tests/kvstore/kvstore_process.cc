#include "tests/kvstore/kvstore_process.h"

#include <signal.h>

#include <thread>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace leoam::kvstore::testing {

absl::StatusOr<std::unique_ptr<KvStoreProcess>> KvStoreProcess::Start(const ProcessOptions& options) {
  auto p = std::unique_ptr<KvStoreProcess>(new KvStoreProcess());
  p->socket_ = options.dir + "/kvstore.sock";
  p->log_ = options.dir + "/kvstore.log";
  std::vector<std::string> args = {LEOAM_KVSTORE_BINARY, "--listen=unix://" + p->socket_,
                                   "--data_dir=" + options.dir + "/data", "--arena_size=64MiB"};
  args.insert(args.end(), options.extra_flags.begin(), options.extra_flags.end());
  ASSIGN_OR_RETURN(p->child_, leoam::testing::ChildProcess::Spawn(args, "/dev/null", p->log_));

  // Ready when a Stats call succeeds (the socket exists before the service is registered).
  for (int i = 0; i < 600; ++i) {
    if (!p->Alive()) return absl::InternalError("leoam-kvstore exited at start:\n" + p->Log());
    if (::access(p->socket_.c_str(), F_OK) == 0) {
      ClientOptions co;
      co.target = p->target();
      co.rpc_timeout = absl::Seconds(2);
      // A throwaway session proves Hello, the arena and the disk tier all work.
      auto c = KvStoreClient::Connect(co, "readiness-probe", TestLayout());
      if (c.ok()) return p;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError("leoam-kvstore did not become ready:\n" + p->Log());
}

// The child's destructor stops the server with SIGTERM, so it removes its arena file from /dev/shm.
KvStoreProcess::~KvStoreProcess() = default;

bool KvStoreProcess::Alive() { return child_.Alive(); }

void KvStoreProcess::Kill9() { child_.SignalAndWait(SIGKILL); }

int KvStoreProcess::Stop() { return child_.SignalAndWait(SIGTERM); }

std::string KvStoreProcess::Log() const { return leoam::testing::ReadFileOrEmpty(log_); }

KvLayout TestLayout() {
  KvLayout l;
  l.num_layers = 2;
  l.page_size = 16;
  l.num_kv_heads = 2;
  l.head_dim = 32;
  l.dtype = KvDtype::kF16;
  return l;
}

PageHash ChainHash(uint32_t chain, uint32_t pos) {
  PageHash h{};
  for (int i = 0; i < 4; ++i) {
    h[i] = static_cast<uint8_t>(chain >> (8 * i));
    h[4 + i] = static_cast<uint8_t>(pos >> (8 * i));
  }
  h[15] = 0x5a;
  return h;
}

namespace {
uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
uint64_t Seed(uint32_t chain, uint32_t pos, uint32_t layer) {
  return SplitMix((uint64_t{chain} << 40) ^ (uint64_t{pos} << 12) ^ layer);
}
}  // namespace

void FillPayload(uint32_t chain, uint32_t pos, uint32_t layer, uint8_t* dst, size_t n) {
  uint64_t s = Seed(chain, pos, layer);
  for (size_t i = 0; i < n; i += 8) {
    s = SplitMix(s);
    std::memcpy(dst + i, &s, std::min<size_t>(8, n - i));
  }
}

bool PayloadMatches(uint32_t chain, uint32_t pos, uint32_t layer, const uint8_t* data, size_t n) {
  std::vector<uint8_t> want(n);
  FillPayload(chain, pos, layer, want.data(), n);
  return std::memcmp(want.data(), data, n) == 0;
}

std::string AbstractFor(uint32_t chain, uint32_t pos, uint32_t layer) {
  return absl::StrFormat("abstract/%d/%d/%d", chain, pos, layer);
}

absl::Status PutNodes(KvStoreClient& client, uint32_t chain, uint32_t first, uint32_t count) {
  const uint32_t layers = TestLayout().num_layers;
  ASSIGN_OR_RETURN(const size_t page_bytes, client.PageBytes(PageEncoding::kFp16));
  std::vector<uint64_t> sizes(static_cast<size_t>(count) * layers, page_bytes);
  ASSIGN_OR_RETURN(std::vector<StagingBuffer> bufs, client.AllocStaging(sizes));
  std::vector<PagePut> puts;
  size_t b = 0;
  for (uint32_t pos = first; pos < first + count; ++pos) {
    for (uint32_t layer = 0; layer < layers; ++layer, ++b) {
      FillPayload(chain, pos, layer, bufs[b].data, page_bytes);
      PagePut p;
      p.hash = ChainHash(chain, pos);
      if (pos > 0) p.parent = ChainHash(chain, pos - 1);
      p.layer = layer;
      p.encoding = PageEncoding::kFp16;
      p.staging_offset = bufs[b].offset;
      p.length = page_bytes;
      p.abstract = AbstractFor(chain, pos, layer);
      puts.push_back(std::move(p));
    }
  }
  absl::StatusOr<PutResult> r = client.PutPages(puts);
  if (!r.ok()) {
    std::vector<uint64_t> offsets;
    for (const StagingBuffer& s : bufs) offsets.push_back(s.offset);
    (void)client.Release({}, offsets);  // best effort: the session may be gone
    return r.status();
  }
  return absl::OkStatus();
}

absl::Status FetchAndCheck(KvStoreClient& client, uint32_t chain, uint32_t first, uint32_t count, size_t* ok) {
  const uint32_t layers = TestLayout().num_layers;
  std::vector<PageRef> refs;
  for (uint32_t pos = first; pos < first + count; ++pos) {
    for (uint32_t layer = 0; layer < layers; ++layer) refs.push_back(PageRef{ChainHash(chain, pos), layer});
  }
  ASSIGN_OR_RETURN(FetchResult r, client.FetchPages(refs));
  absl::Status status;
  for (size_t i = 0; i < refs.size(); ++i) {
    const FetchedPage& p = r.pages[i];
    if (!p.found) continue;
    const uint32_t pos = first + static_cast<uint32_t>(i / layers), layer = static_cast<uint32_t>(i % layers);
    if (p.encoding != PageEncoding::kFp16 || !PayloadMatches(chain, pos, layer, p.data, p.length)) {
      status = absl::DataLossError(absl::StrFormat("chain %d page %d layer %d differs", chain, pos, layer));
    } else {
      ++*ok;
    }
  }
  RETURN_IF_ERROR(client.Release({r.lease_id}));
  return status;
}

}  // namespace leoam::kvstore::testing

namespace leoam::kvstore::testing {

absl::Status RunWorkload(const std::string& target, uint32_t worker, uint32_t chains, uint32_t len) {
  ClientOptions o;
  o.target = target;
  o.client_name = absl::StrFormat("worker-%d", worker);
  ASSIGN_OR_RETURN(std::unique_ptr<KvStoreClient> client, KvStoreClient::Connect(o, "model-concurrency", TestLayout()));
  constexpr uint32_t kShared = 999999, kStep = 8;
  for (uint32_t n = 0; n < len; n += kStep) {
    for (uint32_t c = 0; c < chains; ++c) RETURN_IF_ERROR(PutNodes(*client, worker * 1000 + c, n, kStep));
    RETURN_IF_ERROR(PutNodes(*client, kShared, n, kStep));
    size_t ok = 0;
    for (uint32_t c = 0; c < chains; ++c) RETURN_IF_ERROR(FetchAndCheck(*client, worker * 1000 + c, 0, n + kStep, &ok));
    RETURN_IF_ERROR(FetchAndCheck(*client, kShared, 0, n + kStep, &ok));
    const size_t want = size_t{chains + 1} * (n + kStep) * TestLayout().num_layers;
    if (ok != want) return absl::DataLossError(absl::StrFormat("worker %d: %d of %d pages found", worker, ok, want));
  }
  return absl::OkStatus();
}

}  // namespace leoam::kvstore::testing
