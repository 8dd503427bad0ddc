// kvstore_bench: throughput and latency of leoam-kvstore, measured side by side in one run.
//
// Rows:
//  - put (async / sync durability): AllocStaging + fill + PutPages of 64-page batches.
//  - fetch, memory tier, through the arena: FetchPages(64) + read every byte + Release.
//  - fetch, memory tier, bytes inside gRPC: FetchPages(64, inline_payload) + read every byte.
//  - fetch, disk tier: after a restart (empty memory tier) and posix_fadvise(DONTNEED) on every
//    file of the data dir, so reads come from the device, not the page cache.
//  - raw sequential read/write of the same disk: a file of the same size in the same directory,
//    written + fdatasync'ed (write bandwidth), dropped from the page cache with fadvise(DONTNEED)
//    and read with O_DIRECT in 1 MiB and 64 KiB blocks. (Dropping all caches needs root;
//    DONTNEED on our own files does not.) A put writes every byte twice (WAL + blob file), so
//    put throughput is bounded by about half the raw write bandwidth.
//  - latency p50/p99 of 1-page and 64-page fetches from the memory tier (RPC round trip).
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
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "leoam/kvstore/kvstore_client.h"

ABSL_FLAG(std::string, dir, "", "Work directory on the disk to measure (default: a new dir under /tmp).");
ABSL_FLAG(int, memory_pages, 2048, "Pages for the memory-tier rows (64 KiB each).");
ABSL_FLAG(int, disk_pages, 4096, "Pages for the disk-tier rows (64 KiB each).");
ABSL_FLAG(int, latency_iters, 2000, "Fetches per latency row.");

extern char** environ;

namespace {

using namespace leoam::kvstore;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kBatch = 64;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

KvLayout BenchLayout() {
  KvLayout l;
  l.num_layers = 1;  // one layer: every page is a chain node, so chains are long
  l.page_size = 16;
  l.num_kv_heads = 8;
  l.head_dim = 128;
  l.dtype = KvDtype::kF16;
  return l;
}

PageHash H(uint32_t chain, uint32_t pos) {
  PageHash h{};
  std::memcpy(h.data(), &chain, 4);
  std::memcpy(h.data() + 4, &pos, 4);
  h[15] = 0xbe;
  return h;
}

struct Server {
  pid_t pid = -1;
  std::string socket;
  Server(const std::string& dir, const std::string& data, const std::vector<std::string>& extra) {
    socket = dir + "/kvstore.sock";
    std::vector<std::string> args = {LEOAM_KVSTORE_BINARY, "--listen=unix://" + socket, "--data_dir=" + data,
                                     "--arena_size=768MiB"};
    args.insert(args.end(), extra.begin(), extra.end());
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
  std::unique_ptr<KvStoreClient> Connect() {
    ClientOptions o;
    o.target = "unix://" + socket;
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

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "kvstore_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

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

uint64_t Touch(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i += 64) s += p[i];
  return s;
}

// Fetches pages [0, pages) of a chain in batches; reads all bytes; returns seconds.
double FetchChain(KvStoreClient& c, uint32_t chain, uint32_t pages, bool inline_payload, uint64_t* sink) {
  const auto t0 = Clock::now();
  for (uint32_t first = 0; first < pages; first += kBatch) {
    const uint32_t n = std::min(kBatch, pages - first);
    std::vector<PageRef> refs(n);
    for (uint32_t i = 0; i < n; ++i) refs[i] = PageRef{H(chain, first + i), 0};
    auto r = inline_payload ? c.FetchPagesInline(refs) : c.FetchPages(refs);
    Check(r.status(), "FetchPages");
    for (const FetchedPage& p : r->pages) {
      if (!p.found) {
        std::fprintf(stderr, "kvstore_bench: page missing\n");
        std::exit(1);
      }
      *sink += Touch(p.data, p.length);
    }
    if (!inline_payload) Check(c.Release({r->lease_id}), "Release");
  }
  return Seconds(Clock::now() - t0);
}

void DropFromPageCache(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    const int fd = open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
}

struct RawDisk {
  double write_s = -1;     // sequential 1 MiB writes + fdatasync
  double read_1m_s = -1;   // O_DIRECT sequential reads, 1 MiB
  double read_64k_s = -1;  // O_DIRECT sequential reads, 64 KiB (the page size)
};

double DirectRead(const std::string& path, size_t block, void* buf, size_t bytes) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return -1;
  const auto t0 = Clock::now();
  size_t got = 0;
  for (ssize_t r; (r = read(fd, buf, block)) > 0;) got += static_cast<size_t>(r);
  const double s = Seconds(Clock::now() - t0);
  close(fd);
  return got == bytes ? s : -1;
}

// Raw bandwidth of the same disk: writes a file of `bytes`, syncs it, drops it from the page
// cache and reads it back with O_DIRECT in 1 MiB and in 64 KiB blocks.
RawDisk MeasureRawDisk(const std::string& path, size_t bytes) {
  constexpr size_t kBlock = 1 << 20;
  RawDisk out;
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, kBlock) != 0) return out;
  std::memset(buf, 0x5a, kBlock);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const auto t0 = Clock::now();
  for (size_t done = 0; done < bytes; done += kBlock) {
    if (write(fd, buf, kBlock) != static_cast<ssize_t>(kBlock)) return out;
  }
  fdatasync(fd);
  out.write_s = Seconds(Clock::now() - t0);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  out.read_1m_s = DirectRead(path, kBlock, buf, bytes);
  out.read_64k_s = DirectRead(path, 64 << 10, buf, bytes);
  unlink(path.c_str());
  free(buf);
  return out;
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

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty()) {
    char tmpl[] = "/tmp/leoam-kvstore-bench-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  std::filesystem::create_directories(dir);
  const uint32_t mem_pages = absl::GetFlag(FLAGS_memory_pages), disk_pages = absl::GetFlag(FLAGS_disk_pages);
  const double page_mib = 64.0 / 1024.0;
  uint64_t sink = 0;
  struct Row {
    std::string name;
    std::string value;
  };
  std::vector<Row> rows;
  auto gbs = [&](uint32_t pages, double s) { return absl::StrFormat("%8.2f GB/s", pages * 65536.0 / s / 1e9); };

  double mem_arena_s = 0, mem_inline_s = 0, disk_s = 0, raw_s = 0, raw_64k_s = 0;
  {
    Server server(dir, dir + "/data-async", {"--durability=async"});
    auto c = server.Connect();
    const double put_s = PutChain(*c, 1, disk_pages);
    rows.push_back({absl::StrFormat("put, durability=async (%d pages, %.0f MiB)", disk_pages, disk_pages * page_mib),
                    gbs(disk_pages, put_s)});
    PutChain(*c, 2, mem_pages);
    FetchChain(*c, 2, mem_pages, false, &sink);  // warm-up
    mem_arena_s = FetchChain(*c, 2, mem_pages, false, &sink);
    mem_inline_s = FetchChain(*c, 2, mem_pages, true, &sink);
    rows.push_back({absl::StrFormat("fetch memory tier, arena descriptors (64-page RPCs)"), gbs(mem_pages, mem_arena_s)});
    rows.push_back({absl::StrFormat("fetch memory tier, bytes inside gRPC (64-page RPCs)"), gbs(mem_pages, mem_inline_s)});
    for (uint32_t n : {1u, 64u}) {
      auto [p50, p99] = FetchLatency(*c, 2, mem_pages, n, n == 1 ? absl::GetFlag(FLAGS_latency_iters)
                                                                  : absl::GetFlag(FLAGS_latency_iters) / 4);
      rows.push_back({absl::StrFormat("fetch latency memory tier, %d page(s): p50 / p99", n),
                      absl::StrFormat("%.0f / %.0f us", p50, p99)});
    }
  }
  {
    // Restart: empty memory tier; drop the data files from the page cache.
    DropFromPageCache(dir + "/data-async");
    Server server(dir, dir + "/data-async", {});
    auto c = server.Connect();
    DropFromPageCache(dir + "/data-async");
    disk_s = FetchChain(*c, 1, disk_pages, false, &sink);
    rows.push_back({absl::StrFormat("fetch disk tier after restart + fadvise(DONTNEED) (%d pages)", disk_pages),
                    gbs(disk_pages, disk_s)});
    const RawDisk raw = MeasureRawDisk(dir + "/raw.bin", static_cast<size_t>(disk_pages) * 65536);
    raw_s = raw.read_1m_s;
    raw_64k_s = raw.read_64k_s;
    rows.push_back({"raw sequential read, same disk, O_DIRECT 1 MiB blocks", gbs(disk_pages, raw.read_1m_s)});
    rows.push_back({"raw sequential read, same disk, O_DIRECT 64 KiB blocks", gbs(disk_pages, raw.read_64k_s)});
    rows.push_back({"raw sequential write, same disk, 1 MiB blocks + fdatasync", gbs(disk_pages, raw.write_s)});
  }
  {
    Server server(dir, dir + "/data-sync", {"--durability=sync"});
    auto c = server.Connect();
    const uint32_t n = std::max<uint32_t>(kBatch, disk_pages / 4);
    const double put_s = PutChain(*c, 1, n);
    rows.push_back({absl::StrFormat("put, durability=sync (%d pages, one fsync per 64-page batch)", n), gbs(n, put_s)});
  }
  std::printf("\nleoam-kvstore bench: 64 KiB pages (Llama-3.1-8B layer: 8 KV heads x 128 x 16 tokens, fp16), unix socket\n");
  std::printf("%-72s %s\n", "measurement", "result");
  std::printf("%s\n", std::string(90, '-').c_str());
  for (const Row& r : rows) std::printf("%-72s %s\n", r.name.c_str(), r.value.c_str());
  std::printf("%s\n", std::string(90, '-').c_str());
  std::printf("arena / inline-gRPC fetch: %.1fx   disk tier / raw read: %.2f of 1 MiB O_DIRECT, %.2f of 64 KiB O_DIRECT\n",
              mem_inline_s / mem_arena_s, raw_s / disk_s, raw_64k_s / disk_s);
  if (absl::GetFlag(FLAGS_dir).empty()) std::filesystem::remove_all(dir);
  return sink == 1 ? 1 : 0;
}
