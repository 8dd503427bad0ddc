// kvstore_bench: throughput and latency of leoam-kvstore, measured side by side in one run.
//
// Rows:
//  - memcpy bandwidth of this machine, measured in the same run: a pre-faulted source as large as
//    the memory-tier data set, copied page by page into a pre-faulted destination of one fetch
//    batch (exactly the copies a fetch makes), 1 and 2 threads. The baseline for memory-tier fetches.
//  - put (async / sync durability): AllocStaging + fill + PutPages of 64-page batches.
//  - memcpy out of the arena itself (the same pages leased once, copied without requests): the
//    ceiling of any fetch through the arena.
//  - fetch, memory tier, through the arena: FetchPages(batch) + memcpy every page out of the arena
//    into a destination buffer (what compute does on its way to the GPU) + Release. Descriptors
//    alone are not a fetch: the bytes are counted only once they are copied out. Through the
//    fetch channel (the client's default: a slot in the arena, futex doorbells) and, the same
//    patterns, over gRPC (fetch_channel=false). Then a request-size sweep (64 / 256 / 1024 pages).
//  - fetch, memory tier, bytes inside gRPC: FetchPages(batch, inline_payload) + the same memcpy.
//  - fetch, disk tier: after a restart (empty memory tier) and posix_fadvise(DONTNEED) on every
//    file of the data dir, so reads come from the device, not the page cache. A third of the
//    chain each: one request at a time; pipelined; Prefetch(batch k+1) sent before FetchPages(k)
//    (how compute is meant to stream a prefix from disk: the store reads ahead while it copies).
//    Then, restarted with --readahead_pages=256, the whole chain one request at a time.
//  - the disk tier's baseline: raw O_DIRECT 1 MiB sequential reads of the store's own segment
//    files (the same bytes, same device state), three times around the disk rows; fractions are
//    given against the fastest and the slowest. For reference, a freshly written file of the same
//    size read back (O_DIRECT 1 MiB / 64 KiB, buffered): on this virtual disk it is served from
//    the host's cache and reads much faster than data written a minute earlier, so it is no
//    baseline. Its write (+ fdatasync) is the put baseline: a put writes each payload byte once.
//  - latency p50/p99 of 1-page and 64-page fetches from the memory tier (RPC round trip).
//  - abstracts of a whole chain (what a prefix restore reads): a llama-124m-shaped layout (12
//    layers, 12 KV heads x 64, 6 KiB fp32 min/max abstract per page), --abstract_nodes nodes x 12
//    layers; GetAbstracts in max-size requests (bytes inside gRPC) vs GetChainAbstracts (through
//    the arena), each abstract copied out; warm, and cold after the restart (page cache dropped).
// Page shape: Llama-3.1-8B (8 KV heads x 128 dims) x 16 tokens, fp16: 64 KiB per page.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_format.h"
#include "bench/kvstore/abstracts_rows.h"
#include "bench/kvstore/bench_util.h"
#include "bench/kvstore/raw_disk.h"
#include "leoam/kvstore/kvstore_client.h"

ABSL_FLAG(std::string, dir, "", "Work directory on the disk to measure (default: a new dir under /tmp).");
ABSL_FLAG(int, memory_pages, 2048, "Pages for the memory-tier rows (64 KiB each).");
ABSL_FLAG(int, disk_pages, 4096, "Pages for the disk-tier rows (64 KiB each).");
ABSL_FLAG(int, latency_iters, 2000, "Fetches per latency row.");
ABSL_FLAG(std::string, kvstore_binary, LEOAM_KVSTORE_BINARY,
          "The leoam-kvstore to start (default: the one built next to this bench).");
ABSL_FLAG(std::vector<std::string>, server_args, {}, "Extra leoam-kvstore flags for every server (comma-separated).");
ABSL_FLAG(int, abstract_nodes, 512, "Chain nodes (x 12 layers) for the abstracts rows (512: an 8K-token prompt).");
ABSL_FLAG(int, batch, 64, "Pages per FetchPages / PutPages request in the throughput rows.");

extern char** environ;

namespace {

using namespace leoam::kvstore;
using namespace leoam::kvstore::bench;

uint32_t kBatch = 64;  // --batch
constexpr size_t kPageBytes = 65536;


KvLayout BenchLayout() {
  KvLayout l;
  l.num_layers = 1;  // one layer: every page is a chain node, so chains are long
  l.page_size = 16;
  l.num_kv_heads = 8;
  l.head_dim = 128;
  l.dtype = KvDtype::kF16;
  return l;
}

struct Server {
  pid_t pid = -1;
  std::string socket;
  Server(const std::string& dir, const std::string& data, const std::vector<std::string>& extra) {
    socket = dir + "/kvstore.sock";
    std::vector<std::string> args = {absl::GetFlag(FLAGS_kvstore_binary), "--listen=unix://" + socket, "--data_dir=" + data,
                                     "--arena_size=768MiB"};
    args.insert(args.end(), extra.begin(), extra.end());
    for (const std::string& a : absl::GetFlag(FLAGS_server_args)) args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = dir + "/kvstore.log";
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Server() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      int st;
      waitpid(pid, &st, 0);
    }
  }
  std::unique_ptr<KvStoreClient> Connect(bool fetch_channel = true) {
    ClientOptions o;
    o.target = "unix://" + socket;
    o.fetch_channel = fetch_channel;
    o.client_name = "kvstore_bench";
    for (int i = 0; i < 400; ++i) {
      if (access(socket.c_str(), F_OK) == 0) {
        auto c = KvStoreClient::Connect(o, "bench-model", BenchLayout());
        if (c.ok()) return std::move(*c);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::fprintf(stderr, "kvstore_bench: cannot connect to the store\n");
    std::exit(1);
  }
};

// Puts `pages` pages as chain 0 in 64-page batches; returns seconds.
double PutChain(KvStoreClient& c, uint32_t chain, uint32_t pages) {
  const size_t bytes = *c.PageBytes(PageEncoding::kFp16);
  const auto t0 = Clock::now();
  for (uint32_t first = 0; first < pages; first += kBatch) {
    const uint32_t n = std::min(kBatch, pages - first);
    std::vector<uint64_t> sizes(n, bytes);
    auto bufs = c.AllocStaging(sizes);
    Check(bufs.status(), "AllocStaging");
    std::vector<PagePut> puts(n);
    for (uint32_t i = 0; i < n; ++i) {
      // Distinct, incompressible-ish bytes: a cheap LCG per page.
      uint64_t x = (uint64_t{chain} << 32) ^ (first + i) ^ 0x9e3779b97f4a7c15ull;
      auto* p = reinterpret_cast<uint64_t*>((*bufs)[i].data);
      for (size_t k = 0; k < bytes / 8; ++k) p[k] = (x = x * 6364136223846793005ull + 1442695040888963407ull);
      puts[i].hash = H(chain, first + i);
      if (first + i > 0) puts[i].parent = H(chain, first + i - 1);
      puts[i].staging_offset = (*bufs)[i].offset;
      puts[i].length = bytes;
      puts[i].abstract = std::string(2 * 8 * 128 * 2, 'a');  // min+max per head per channel, fp16
    }
    Check(c.PutPages(puts).status(), "PutPages");
  }
  return Seconds(Clock::now() - t0);
}

// A fetch batch's destination (pre-faulted), reused by every batch like a pinned staging buffer.
struct Dest {
  std::vector<uint8_t> bytes;
  explicit Dest(size_t n) : bytes(n, 1) {}
};

enum class FetchMode {
  kInline,     // payload bytes inside the gRPC response
  kRelease,    // FetchPages, copy, Release: two round trips per batch
  kPiggyback,  // FetchPages carrying the previous batch's release: one round trip per batch
  kPipelined,  // as kPiggyback, and a second client thread fetches batch k+1 while batch k is copied
  kPrefetchAhead,  // as kPiggyback, and Prefetch(batch k+1) is sent before FetchPages(batch k)
};

// One persistent helper thread that runs a job while the caller does something else (spawning a
// thread per batch would cost about as much as the round trip it hides).
class Helper {
 public:
  Helper() : thread_([this] { Loop(); }) {}
  ~Helper() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Start(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> l(mu_);
      job_ = std::move(job);
      done_ = false;
    }
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return done_; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [&] { return stop_ || job_ != nullptr; });
      if (stop_) return;
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      l.unlock();
      job();
      l.lock();
      done_ = true;
      cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool done_ = true, stop_ = false;
  std::thread thread_;
};

std::vector<PageRef> BatchRefs(uint32_t chain, uint32_t first, uint32_t n) {
  std::vector<PageRef> refs(n);
  for (uint32_t i = 0; i < n; ++i) refs[i] = PageRef{H(chain, first + i), 0};
  return refs;
}

void CopyOut(const FetchResult& r, Dest& dst) {
  size_t at = 0;
  for (const FetchedPage& p : r.pages) {
    if (!p.found || at + p.length > dst.bytes.size()) {
      std::fprintf(stderr, "kvstore_bench: page missing\n");
      std::exit(1);
    }
    std::memcpy(dst.bytes.data() + at, p.data, p.length);
    at += p.length;
  }
}

// Fetches pages [0, pages) of a chain in batches; copies every page into dst; returns seconds.
// Fetches pages [begin, end) of a chain in batches; copies every page into dst; returns seconds.
double FetchChainFrom(KvStoreClient& c, uint32_t chain, uint32_t begin, uint32_t pages, FetchMode mode, Dest& dst);
double FetchChain(KvStoreClient& c, uint32_t chain, uint32_t pages, FetchMode mode, Dest& dst) {
  return FetchChainFrom(c, chain, 0, pages, mode, dst);
}
double FetchChainFrom(KvStoreClient& c, uint32_t chain, uint32_t begin, uint32_t pages, FetchMode mode, Dest& dst) {
  const auto t0 = Clock::now();
  uint64_t pending_release = 0;
  auto fetch = [&](uint32_t first, uint64_t release) {
    const std::vector<PageRef> refs = BatchRefs(chain, first, std::min(kBatch, pages - first));
    const uint64_t rel[1] = {release};
    auto r = mode == FetchMode::kInline ? c.FetchPagesInline(refs) : c.FetchPages(refs, absl::MakeSpan(rel, 1));
    Check(r.status(), "FetchPages");
    return std::move(*r);
  };
  if (mode == FetchMode::kPipelined) {
    // The helper thread's fetch of batch k+1 overlaps the main thread's copy of batch k.
    Helper helper;
    FetchResult cur = fetch(begin, 0);
    for (uint32_t first = begin; first < pages; first += kBatch) {
      std::optional<FetchResult> next;
      const bool more = first + kBatch < pages;
      if (more) helper.Start([&, first] { next = fetch(first + kBatch, pending_release); });
      CopyOut(cur, dst);
      if (more) helper.Wait();
      pending_release = cur.lease_id;
      if (next.has_value()) cur = std::move(*next);
    }
    Check(c.Release({pending_release}), "Release");
    return Seconds(Clock::now() - t0);
  }
  if (mode == FetchMode::kPrefetchAhead) Check(c.Prefetch(BatchRefs(chain, begin, std::min(kBatch, pages - begin))).status(), "Prefetch");
  for (uint32_t first = begin; first < pages; first += kBatch) {
    const auto tb = Clock::now();
    if (mode == FetchMode::kPrefetchAhead && first + kBatch < pages) {
      Check(c.Prefetch(BatchRefs(chain, first + kBatch, std::min(kBatch, pages - first - kBatch))).status(), "Prefetch");
    }
    FetchResult r = fetch(first, pending_release);
    const auto tf = Clock::now();
    CopyOut(r, dst);
    if (getenv("KVB_TRACE")) {
      std::fprintf(stderr, "batch %u: fetch %.0f us, copy %.0f us\n", first, Seconds(tf - tb) * 1e6,
                   Seconds(Clock::now() - tf) * 1e6);
    }
    if (mode == FetchMode::kRelease) Check(c.Release({r.lease_id}), "Release");
    if (mode == FetchMode::kPiggyback || mode == FetchMode::kPrefetchAhead) pending_release = r.lease_id;
  }
  if (pending_release != 0) Check(c.Release({pending_release}), "Release");
  return Seconds(Clock::now() - t0);
}

// memcpy bandwidth: `total` bytes of pre-faulted source copied in page-sized pieces into a
// batch-sized destination per thread (the same copies FetchChain makes). Best of 3 runs, GB/s.
double MemcpyGBs(size_t total, size_t batch_bytes, int threads) {
  std::vector<uint8_t> src(total, 3);
  std::vector<std::vector<uint8_t>> dst(threads, std::vector<uint8_t>(batch_bytes, 1));
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        const size_t begin = total / threads * t, end = total / threads * (t + 1);
        for (size_t off = begin; off < end; off += kPageBytes) {
          std::memcpy(dst[t].data() + (off - begin) % batch_bytes, src.data() + off, std::min(kPageBytes, end - off));
        }
      });
    }
    for (auto& t : ts) t.join();
    best = std::max(best, total / Seconds(Clock::now() - t0) / 1e9);
  }
  if (dst[0][7] == 42) std::printf(" ");
  return best;
}

std::pair<double, double> Percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
}

std::pair<double, double> FetchLatency(KvStoreClient& c, uint32_t chain, uint32_t pages, uint32_t n, int iters) {
  std::vector<double> us;
  uint64_t sink = 0;
  for (int it = 0; it < iters; ++it) {
    const uint32_t first = static_cast<uint32_t>((it * 7919u) % (pages - n + 1));
    std::vector<PageRef> refs(n);
    for (uint32_t i = 0; i < n; ++i) refs[i] = PageRef{H(chain, first + i), 0};
    const auto t0 = Clock::now();
    auto r = c.FetchPages(refs);
    us.push_back(Seconds(Clock::now() - t0) * 1e6);
    Check(r.status(), "FetchPages");
    sink += r->pages[0].data[0];
    Check(c.Release({r->lease_id}), "Release");
  }
  if (sink == 42) std::printf(" ");
  return Percentiles(us);
}

// memcpy out of the arena itself: the chain's pages leased once, then copied page by page into
// a batch-sized destination (as FetchChain copies them) without any request. Best of 3, GB/s.
double ArenaMemcpyGBs(KvStoreClient& c, uint32_t chain, uint32_t pages, Dest& dst) {
  std::vector<FetchResult> leased;
  for (uint32_t first = 0; first < pages; first += kBatch) {
    auto r = c.FetchPages(BatchRefs(chain, first, std::min(kBatch, pages - first)));
    Check(r.status(), "FetchPages");
    leased.push_back(std::move(*r));
  }
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    for (const FetchResult& r : leased) CopyOut(r, dst);
    best = std::max(best, pages * double(kPageBytes) / Seconds(Clock::now() - t0) / 1e9);
  }
  for (const FetchResult& r : leased) Check(c.Release({r.lease_id}), "Release");
  return best;
}

// Round trip of a Stats RPC (no page work): the gRPC floor under the fetch latencies.
std::pair<double, double> RpcFloor(KvStoreClient& c, int iters) {
  std::vector<double> us;
  for (int it = 0; it < iters; ++it) {
    const auto t0 = Clock::now();
    Check(c.Stats().status(), "Stats");
    us.push_back(Seconds(Clock::now() - t0) * 1e6);
  }
  return Percentiles(us);
}

double Load1() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "kvstore_bench [--dir=/path/on/the/disk] [--memory_pages=2048] [--disk_pages=4096] [--batch=64]\n"
      "Starts leoam-kvstore, measures it against memcpy and raw disk reads of this machine, prints a table.");
  absl::ParseCommandLine(argc, argv);
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    char tmpl[] = "/tmp/leoam-kvstore-bench-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  std::filesystem::create_directories(dir);
  kBatch = static_cast<uint32_t>(std::max(1, absl::GetFlag(FLAGS_batch)));
  const uint32_t mem_pages = absl::GetFlag(FLAGS_memory_pages), disk_pages = absl::GetFlag(FLAGS_disk_pages);
  const double load_start = Load1();
  auto gbs = [](uint32_t pages, double s) { return pages * double(kPageBytes) / s / 1e9; };
  Dest dst(size_t{kBatch} * kPageBytes);

  const size_t mem_bytes = size_t{mem_pages} * kPageBytes;
  const double memcpy1 = MemcpyGBs(mem_bytes, size_t{kBatch} * kPageBytes, 1);
  const double memcpy2 = MemcpyGBs(mem_bytes, size_t{kBatch} * kPageBytes, 2);

  double put_async = 0, put_sync = 0, mem_inline = 0, disk_seq = 0, disk_pipe = 0;
  double mem[4] = {0, 0, 0, 0};  // by FetchMode
  double mem_grpc[4] = {0, 0, 0, 0};
  double arena_memcpy = 0;  // by FetchMode, fetch_channel=false
  double lat1g_50 = 0, lat1g_99 = 0, lat64g_50 = 0, lat64g_99 = 0;
  struct SweepRow {
    uint32_t batch;
    double one_trip, pipelined;
  };
  std::vector<SweepRow> sweep;
  double disk_prefetch = 0;
  double lat1_50 = 0, lat1_99 = 0, lat64_50 = 0, lat64_99 = 0, rpc_50 = 0, rpc_99 = 0;
  RawDisk raw;
  std::vector<double> raw_segments;  // raw reads of the segment files around the disk rows
  double disk_readahead = 0;
  const uint32_t abs_nodes = static_cast<uint32_t>(std::max(1, absl::GetFlag(FLAGS_abstract_nodes)));
  const double abs_bytes = double(abs_nodes) * AbstractsLayout().num_layers * kAbstractBytes;
  std::vector<uint8_t> abs_out(static_cast<size_t>(abs_bytes), 1);
  double abs_old_warm = 0, abs_new_warm = 0, abs_new_cold = 0, abs_new_first = 0;
  {
    Server server(dir, dir + "/data-async", {"--durability=async"});
    auto c = server.Connect();
    put_async = gbs(disk_pages, PutChain(*c, 1, disk_pages));
    PutChain(*c, 2, mem_pages);
    FetchChain(*c, 2, mem_pages, FetchMode::kRelease, dst);  // warm-up
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    for (int rep = 0; rep < 3; ++rep) {  // best of 3: the machine is shared
      for (int m = 0; m < 4; ++m) {
        best[m] = std::min(best[m], FetchChain(*c, 2, mem_pages, static_cast<FetchMode>(m), dst));
      }
    }
    for (int m = 0; m < 4; ++m) mem[m] = gbs(mem_pages, best[m]);
    arena_memcpy = ArenaMemcpyGBs(*c, 2, mem_pages, dst);
    if (c->channel_calls() == 0) {
      std::fprintf(stderr, "kvstore_bench: the store granted no fetch channel\n");
      std::exit(1);
    }
    // The same over gRPC (descriptors in messages): the round trip the channel removes.
    {
      auto cg = server.Connect(/*fetch_channel=*/false);
      double bg[4] = {1e9, 1e9, 1e9, 1e9};
      for (int rep = 0; rep < 3; ++rep) {
        for (int m = 1; m < 4; ++m) bg[m] = std::min(bg[m], FetchChain(*cg, 2, mem_pages, static_cast<FetchMode>(m), dst));
      }
      for (int m = 1; m < 4; ++m) mem_grpc[m] = gbs(mem_pages, bg[m]);
      std::tie(lat1g_50, lat1g_99) = FetchLatency(*cg, 2, mem_pages, 1, absl::GetFlag(FLAGS_latency_iters));
      std::tie(lat64g_50, lat64g_99) =
          FetchLatency(*cg, 2, mem_pages, std::min(64u, mem_pages), std::max(1, absl::GetFlag(FLAGS_latency_iters) / 4));
    }
    mem_inline = mem[0];
    // Request-size sweep: the per-request cost (RPC round trip) amortised over more bytes.
    const uint32_t saved_batch = kBatch;
    for (uint32_t b : {64u, 256u, 1024u}) {
      if (b > mem_pages / 2) continue;
      kBatch = b;
      Dest d(size_t{b} * kPageBytes);
      double t_one = 1e9, t_pipe = 1e9;
      for (int rep = 0; rep < 3; ++rep) {
        t_one = std::min(t_one, FetchChain(*c, 2, mem_pages, FetchMode::kPiggyback, d));
        t_pipe = std::min(t_pipe, FetchChain(*c, 2, mem_pages, FetchMode::kPipelined, d));
      }
      sweep.push_back({b, gbs(mem_pages, t_one), gbs(mem_pages, t_pipe)});
    }
    kBatch = saved_batch;
    const int iters = absl::GetFlag(FLAGS_latency_iters);
    std::tie(rpc_50, rpc_99) = RpcFloor(*c, iters);
    std::tie(lat1_50, lat1_99) = FetchLatency(*c, 2, mem_pages, 1, iters);
    std::tie(lat64_50, lat64_99) = FetchLatency(*c, 2, mem_pages, std::min(64u, mem_pages), std::max(1, iters / 4));
    auto ac = ConnectAbstracts(server.socket);
    PutAbstractChain(*ac, abs_nodes);
    abs_new_first = abs_bytes / ReadAbstractsChain(*ac, abs_nodes, abs_out) / 1e6;  // right after the puts
    double t_old = 1e9, t_new = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      t_old = std::min(t_old, ReadAbstractsOld(*ac, abs_nodes, abs_out));
      t_new = std::min(t_new, ReadAbstractsChain(*ac, abs_nodes, abs_out));
    }
    abs_old_warm = abs_bytes / t_old / 1e6;
    abs_new_warm = abs_bytes / t_new / 1e6;
  }
  {
    // Restart: empty memory tier; drop the data files from the page cache.
    DropFromPageCache(dir + "/data-async");
    Server server(dir, dir + "/data-async", {});
    auto c = server.Connect();
    DropFromPageCache(dir + "/data-async");
    {
      auto ac = ConnectAbstracts(server.socket);
      abs_new_cold = abs_bytes / ReadAbstractsChain(*ac, abs_nodes, abs_out) / 1e6;
      DropFromPageCache(dir + "/data-async");
    }
    // First third of the chain one batch at a time, second third pipelined, last third with
    // Prefetch(next batch) ahead of each FetchPages; all cold.
    raw_segments.push_back(RawReadOfSegments(dir + "/data-async/segments"));
    DropFromPageCache(dir + "/data-async");
    const uint32_t third = disk_pages / 3 / kBatch * kBatch;
    disk_seq = gbs(third, FetchChain(*c, 1, third, FetchMode::kPiggyback, dst));
    disk_pipe = gbs(third, FetchChainFrom(*c, 1, third, 2 * third, FetchMode::kPipelined, dst));
    disk_prefetch = gbs(disk_pages - 2 * third, FetchChainFrom(*c, 1, 2 * third, disk_pages, FetchMode::kPrefetchAhead, dst));
    raw_segments.push_back(RawReadOfSegments(dir + "/data-async/segments"));
    raw = MeasureRawDisk(dir + "/raw.bin", size_t{disk_pages} * kPageBytes);
  }
  {
    // The store's own readahead (--readahead_pages): the whole chain, one request at a time.
    DropFromPageCache(dir + "/data-async");
    Server server(dir, dir + "/data-async", {"--readahead_pages=256"});
    auto c = server.Connect();
    DropFromPageCache(dir + "/data-async");
    const double before = RawReadOfSegments(dir + "/data-async/segments");
    DropFromPageCache(dir + "/data-async");
    disk_readahead = gbs(disk_pages, FetchChain(*c, 1, disk_pages, FetchMode::kPiggyback, dst));
    raw_segments.push_back(before);
  }
  {
    Server server(dir, dir + "/data-sync", {"--durability=sync"});
    auto c = server.Connect();
    const uint32_t n = std::max<uint32_t>(kBatch, disk_pages / 4);
    put_sync = gbs(n, PutChain(*c, 1, n));
  }
  const double load_end = Load1();
  const double raw_direct = gbs(disk_pages, raw.read_1m_s), raw_64k = gbs(disk_pages, raw.read_64k_s);
  const double raw_buffered = gbs(disk_pages, raw.read_buffered_s);
  std::printf("\n## leoam-kvstore bench\n\n");
  std::printf("64 KiB pages (Llama-3.1-8B layer: 8 KV heads x 128 x 16 tokens, fp16), unix socket, %u-page requests; "
              "memory tier %u pages (%.0f MiB), disk tier %u pages (%.0f MiB); load average %.2f at start, %.2f at end "
              "(%u CPUs).\n\n",
              kBatch, mem_pages, mem_bytes / 1048576.0, disk_pages, disk_pages * 65536.0 / 1048576.0, load_start,
              load_end, std::thread::hardware_concurrency());
  std::printf("| measurement | result |\n|---|---|\n");
  std::printf("| memcpy, 1 thread (page copies into a %u-page buffer) | %.2f GB/s |\n", kBatch, memcpy1);
  std::printf("| memcpy, 2 threads | %.2f GB/s |\n", memcpy2);
  std::printf("| memcpy out of the arena: the same pages leased once, copied without requests | %.2f GB/s (%.0f%% of "
              "1-thread memcpy) |\n", arena_memcpy, 100 * arena_memcpy / memcpy1);
  const char* names[4] = {"", "FetchPages + memcpy out + Release RPC", "FetchPages(release previous) + memcpy out",
                          "same, pipelined: 2nd client thread fetches batch k+1 during the copy of k"};
  for (int m = 1; m < 4; ++m) {
    std::printf("| fetch, memory tier via arena, fetch channel: %s | %.2f GB/s (%.0f%% of 1-thread memcpy) |\n", names[m],
                mem[m], 100 * mem[m] / memcpy1);
  }
  for (int m = 1; m < 4; ++m) {
    std::printf("| fetch, memory tier via arena, descriptors over gRPC: %s | %.2f GB/s (%.0f%% of 1-thread memcpy) |\n",
                names[m], mem_grpc[m], 100 * mem_grpc[m] / memcpy1);
  }
  for (const SweepRow& r : sweep) {
    std::printf("| fetch, memory tier via arena (fetch channel), %u-page (%u MiB) requests: 1 request / pipelined | %.2f GB/s (%.0f%%) / "
                "%.2f GB/s (%.0f%%) of 1-thread memcpy |\n",
                r.batch, r.batch / 16, r.one_trip, 100 * r.one_trip / memcpy1, r.pipelined, 100 * r.pipelined / memcpy1);
  }
  std::printf("| fetch, memory tier, bytes inside gRPC (inline_payload) + memcpy out | %.2f GB/s (%.0f%% of memcpy) |\n",
              mem_inline, 100 * mem_inline / memcpy1);
  // The disk tier's baseline: the same segment files read raw, before and after the fetch rows
  // (the virtual disk drifts); a freshly written file reads faster (the host caches it), so its
  // rows are printed for reference only.
  const double raw_seg = *std::min_element(raw_segments.begin(), raw_segments.end());
  const double raw_seg_max = *std::max_element(raw_segments.begin(), raw_segments.end());
  std::printf("| raw O_DIRECT 1 MiB sequential read of the store's segment files (the same bytes), slowest / fastest of "
              "3 reads around the disk rows | %.2f / %.2f GB/s |\n", raw_seg, raw_seg_max);
  std::printf("| raw sequential read of a freshly written file, O_DIRECT 1 MiB / 64 KiB / buffered 1 MiB (reference: "
              "host-cached) | %.2f / %.2f / %.2f GB/s |\n", raw_direct, raw_64k, raw_buffered);
  auto frac = [&](double v) {
    return absl::StrFormat("%.2f GB/s (%.0f-%.0f%% of the segment files' raw reads)", v,
                           100 * v / raw_seg_max, 100 * v / raw_seg);
  };
  std::printf("| fetch, disk tier, cold (restart + fadvise(DONTNEED) on every data file) + memcpy out | %s |\n",
              frac(disk_seq).c_str());
  std::printf("| same, pipelined (2nd third of the chain) | %s |\n", frac(disk_pipe).c_str());
  std::printf("| same, Prefetch(batch k+1) before FetchPages(batch k) (last third) | %s |\n", frac(disk_prefetch).c_str());
  std::printf("| same, 1 request at a time, store readahead on (--readahead_pages=256; whole chain, restarted) | %s |\n",
              frac(disk_readahead).c_str());
  std::printf("| raw sequential write, 1 MiB blocks + fdatasync | %.2f GB/s |\n", gbs(disk_pages, raw.write_s));
  std::printf("| put, durability=async / sync (%u-page requests) | %.2f / %.2f GB/s |\n", kBatch, put_async, put_sync);
  std::printf("| RPC floor: Stats round trip p50 / p99 | %.0f / %.0f us |\n", rpc_50, rpc_99);
  std::printf("| fetch latency, memory tier, 1 page: p50 / p99, fetch channel / gRPC | %.0f / %.0f us, %.0f / %.0f us |\n",
              lat1_50, lat1_99, lat1g_50, lat1g_99);
  std::printf("| fetch latency, memory tier, 64 pages: p50 / p99, fetch channel / gRPC | %.0f / %.0f us, %.0f / %.0f us |\n",
              lat64_50, lat64_99, lat64g_50, lat64g_99);
  std::printf("| abstracts of a %u-node x 12-layer chain (%.1f MiB, 6 KiB each), warm: GetAbstracts (inside gRPC) / "
              "GetChainAbstracts (arena) | %.0f / %.0f MB/s |\n",
              abs_nodes, abs_bytes / 1048576.0, abs_old_warm, abs_new_warm);
  std::printf("| same, GetChainAbstracts: first read right after the puts / cold (restart, page cache dropped) | "
              "%.0f / %.0f MB/s |\n", abs_new_first, abs_new_cold);
  if (absl::GetFlag(FLAGS_dir).empty()) std::filesystem::remove_all(dir);
  return 0;
}
