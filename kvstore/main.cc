// leoam-kvstore: the KV page store process (shared-memory arena + segment files / RocksDB tier) behind gRPC.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/flags.h"
#include "common/log.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "kvstore/service.h"
#include "common/byte_size.h"
#include "kvstore/store.h"

ABSL_FLAG(std::string, listen, "unix:///tmp/leoam-kvstore/kvstore.sock",
          "Address to serve on: unix:///path/to/socket (the default transport; compute maps the arena, so it "
          "must run on the same host) or host:port for TCP (remote clients can only use inline fetches).");
ABSL_FLAG(std::string, data_dir, "",
          "Directory of the disk tier (FORMAT, segments/ with page payloads, db/ with RocksDB metadata; see "
          "kvstore/README.md). Required; created if missing. A directory written by an older, incompatible "
          "leoam-kvstore is refused with a clear error.");
ABSL_FLAG(std::string, arena_dir, "/dev/shm",
          "Directory (a tmpfs) where the shared-memory arena file is created, mode 0600. Clients open the path "
          "Hello returns.");
ABSL_FLAG(std::string, arena_size, "1GiB",
          "Size of the shared-memory arena that holds the memory tier, staging buffers and leased pages. "
          "Accepts B, KiB, MiB, GiB, TiB suffixes (or K, M, G, T).");
ABSL_FLAG(std::string, memory_limit, "0",
          "Most payload bytes the memory tier caches in the arena; 0 means 3/4 of --arena_size. Least recently "
          "used pages beyond it are dropped from memory (they stay on disk).");
ABSL_FLAG(std::string, disk_limit, "64GiB",
          "Most payload+abstract bytes the disk tier keeps. Beyond it, whole chain tails are evicted, least "
          "recently used first, so a stored page always has its predecessors. Files on disk may exceed it: a "
          "segment file is deleted only once none of its pages is live (see --segment_size).");
ABSL_FLAG(int, io_threads, 4,
          "Threads that read pages from the disk tier into the arena (fetch misses run in parallel on them; "
          "Prefetch runs on them in the background). Blocking I/O wants more threads than cores.");
ABSL_FLAG(std::string, durability, "async",
          "When a put is acknowledged. A put appends the page payloads to a segment file, then commits their "
          "metadata (location, CRC32C) and abstracts in one RocksDB write batch (WAL on); only then does it reply. "
          "sync: the segment is fdatasync'ed before the metadata commit and the WAL is fsynced before the reply "
          "(concurrent puts share WAL fsyncs); an acknowledged put survives power loss. async: nothing is "
          "fsynced; an acknowledged put survives a crash or kill -9 of leoam-kvstore (the bytes are in the OS page "
          "cache), not a crash of the machine: the last puts may then be lost. Either way a page is never served "
          "partially: every disk read is checked against the page's CRC32C.");
ABSL_FLAG(int64_t, lease_timeout_ms, 60000,
          "Pages handed out by FetchPages stay pinned (their arena memory is not reused) until Release or this "
          "many milliseconds; uncommitted staging buffers are reclaimed after the same time.");
ABSL_FLAG(int64_t, session_timeout_s, 600, "Sessions idle this long are closed (their leases and staging freed).");
ABSL_FLAG(bool, direct_reads, true,
          "Read the disk tier's segment files with O_DIRECT: pages that lie next to each other (a chain's pages, "
          "put together) are read with one large read straight into the arena, without passing through the page "
          "cache. Falls back to buffered reads where the file system refuses O_DIRECT (tmpfs).");
ABSL_FLAG(std::string, segment_size, "128MiB",
          "Size at which the disk tier starts a new segment file for page payloads. A segment file is deleted once "
          "all its pages are evicted or dropped; space of dead pages in a segment that still holds live ones is "
          "not reclaimed, so smaller segments reclaim space sooner.");
ABSL_FLAG(int64_t, fetch_channel_spin_us, 20,
          "Fetch channels (FetchPages/Release through a slot in the arena, no gRPC round trip): how long a "
          "channel's thread spins for the next request before it sleeps on a futex. Longer saves a wakeup "
          "(tens of us on a VM) per request of a streaming client but keeps a core busy meanwhile.");
ABSL_FLAG(int, readahead_pages, 0,
          "A FetchPages that reads pages from the disk tier also starts loading the next nodes of their chain "
          "(same layers; as many pages as it read, at most this many) into the memory tier in the background, so "
          "a client streaming a chain finds them loaded or loading. 0 (default) turns readahead off: clients that pick "
          "scattered pages gain nothing from it, and streaming clients can Prefetch.");
ABSL_FLAG(int, max_fetch_channels, 64, "Most fetch channels open at once (one server thread each).");
ABSL_FLAG(std::string, abstract_cache_size, "512MiB",
          "Page abstracts kept in memory (filled by puts, reads and a background scan at start) so that a prefix "
          "restore (GetChainAbstracts) does not pay RocksDB's random reads; 0 turns it off.");
ABSL_FLAG(int, max_pages_per_request, 4096, "Most pages (or sizes, or leases) one request may carry.");

namespace {

// A byte-size flag (common/byte_size.h syntax) into `out`; false when malformed.
bool ParseSizeFlag(const std::string& text, uint64_t* out) {
  absl::StatusOr<int64_t> size = leoam::ParseByteSize(text);
  if (!size.ok()) return false;
  *out = static_cast<uint64_t>(*size);
  return true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "leoam-kvstore: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  leoam::ParseFlags(argc, argv,
      "The LeoAM KV page store (shared-memory arena + segment-file/RocksDB disk tier) behind gRPC.\n"
      "Usage: leoam-kvstore --data_dir=/var/lib/leoam/kv [--listen=unix:///run/leoam/kvstore.sock] "
      "[--arena_size=8GiB] [--disk_limit=500GiB] [--durability=sync|async]"
      "\nFlags may be written with dashes or underscores (--data-dir, --data_dir).");

  leoam::kvstore::StoreOptions options;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.arena_dir = absl::GetFlag(FLAGS_arena_dir);
  if (options.data_dir.empty()) return Fail("--data_dir is required (see --help)");
  if (!ParseSizeFlag(absl::GetFlag(FLAGS_arena_size), &options.arena_bytes)) return Fail("bad --arena_size");
  if (!ParseSizeFlag(absl::GetFlag(FLAGS_memory_limit), &options.memory_limit_bytes)) return Fail("bad --memory_limit");
  if (!ParseSizeFlag(absl::GetFlag(FLAGS_disk_limit), &options.disk_limit_bytes)) return Fail("bad --disk_limit");
  options.io_threads = absl::GetFlag(FLAGS_io_threads);
  const std::string durability = absl::GetFlag(FLAGS_durability);
  if (durability == "sync") {
    options.durability = leoam::kvstore::Durability::kSync;
  } else if (durability == "async") {
    options.durability = leoam::kvstore::Durability::kAsync;
  } else {
    return Fail("--durability must be sync or async");
  }
  if (absl::GetFlag(FLAGS_lease_timeout_ms) <= 0) return Fail("--lease_timeout_ms must be > 0");
  if (absl::GetFlag(FLAGS_session_timeout_s) <= 0) return Fail("--session_timeout_s must be > 0");
  if (absl::GetFlag(FLAGS_max_pages_per_request) <= 0) return Fail("--max_pages_per_request must be > 0");
  options.lease_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_lease_timeout_ms));
  options.session_timeout = absl::Seconds(absl::GetFlag(FLAGS_session_timeout_s));
  if (!ParseSizeFlag(absl::GetFlag(FLAGS_segment_size), &options.segment_bytes) || options.segment_bytes < (1u << 20)) {
    return Fail("bad --segment_size (at least 1MiB)");
  }
  options.direct_reads = absl::GetFlag(FLAGS_direct_reads);
  options.fetch_channel_spin_us = absl::GetFlag(FLAGS_fetch_channel_spin_us);
  if (absl::GetFlag(FLAGS_readahead_pages) < 0) return Fail("--readahead_pages must be >= 0");
  options.readahead_pages = static_cast<uint32_t>(absl::GetFlag(FLAGS_readahead_pages));
  if (options.fetch_channel_spin_us < 0 || options.fetch_channel_spin_us > 1000000) {
    return Fail("--fetch_channel_spin_us must be in 0..1000000");
  }
  if (absl::GetFlag(FLAGS_max_fetch_channels) < 0) return Fail("--max_fetch_channels must be >= 0");
  options.max_fetch_channels = static_cast<uint32_t>(absl::GetFlag(FLAGS_max_fetch_channels));
  if (!ParseSizeFlag(absl::GetFlag(FLAGS_abstract_cache_size), &options.abstract_cache_bytes)) {
    return Fail("bad --abstract_cache_size");
  }
  options.max_pages_per_request = static_cast<uint32_t>(absl::GetFlag(FLAGS_max_pages_per_request));

  // Signals are taken by a dedicated thread (sigwait), so block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<leoam::kvstore::Store>> store = leoam::kvstore::Store::Open(options);
  if (!store.ok()) return Fail("cannot start: " + store.status().ToString());

  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (absl::StartsWith(listen, "unix://")) {
    std::string path = listen.substr(std::strlen("unix://"));
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::filesystem::remove(path, ec);  // a stale socket of a killed predecessor
  }
  leoam::kvstore::KvStoreService service(store->get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(-1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return Fail("cannot listen on " + listen);
  LEOAM_LOG(INFO, "leoam-kvstore listening on %s (arena %s, %d bytes; durability %s)", listen,
            (*store)->arena_path(), options.arena_bytes, durability);

  std::thread signal_thread([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    LEOAM_LOG(INFO, "signal %d: shutting down", sig);
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  });
  server->Wait();
  signal_thread.join();
  server.reset();
  store->reset();  // flushes RocksDB and removes the arena file
  LEOAM_LOG(INFO, "leoam-kvstore stopped");
  return 0;
}
