// The fetch channel's shared-memory format: a request/completion slot in the arena through which
// a client sends FetchPages and Release without a gRPC round trip (gRPC stays the control plane:
// Hello, OpenFetchChannel, puts, lookups). Only descriptors cross it, like gRPC's messages; page
// bytes stay where they are in the arena.
//
// One slot per channel, one request at a time (a synchronous call):
//   client: writes the request, then req_seq += 1 (release); if server_sleeping, FUTEX_WAKE(req_seq)
//   server: waits until req_seq != the last seen (spins briefly, then sets server_sleeping and
//           FUTEX_WAITs on req_seq), copies the request out (the client could change it meanwhile),
//           serves it exactly as the FetchPages / Release RPC would (same checks, same statuses),
//           writes the response, then resp_seq = req_seq (release); wakes the client likewise.
//   client: waits until resp_seq == its req_seq, reads the response.
// The server sets `closed` (and wakes the client) when the channel ends with its session.
// Everything the server reads is copied and bounds-checked: a hostile client gets error statuses.
// All integers little-endian (both ends are on one host).
#pragma once

#include <cstddef>
#include <cstdint>

namespace leoam::kvstore::channel {

inline constexpr uint32_t kMagic = 0x4e48434c;  // "LCHN"
inline constexpr uint32_t kVersion = 1;

enum Op : uint32_t {
  kOpFetch = 1,    // FetchPages (release_lease_ids, then pages)
  kOpRelease = 2,  // Release (lease ids only)
};

// At the start of the channel block; each futex word on its own cache line.
struct Control {
  uint32_t magic;
  uint32_t version;
  uint32_t max_pages;     // most keys (and release ids) one request may carry
  uint32_t closed;        // set by the server when the channel ends
  uint64_t channel_id;    // as OpenFetchChannel returned it
  uint8_t pad0[40];
  uint32_t req_seq;       // futex word: bumped by the client per request
  uint32_t server_sleeping;
  uint8_t pad1[56];
  uint32_t resp_seq;      // futex word: set to req_seq by the server once the response is written
  uint32_t client_sleeping;
  uint8_t pad2[56];
};
static_assert(sizeof(Control) == 192);

struct RequestHeader {
  uint32_t op;
  uint32_t num_pages;
  uint32_t num_release;
  uint32_t reserved;
  // Then num_release uint64 lease ids, then num_pages PageKeyWire.
};

struct PageKeyWire {
  uint8_t hash[16];
  uint32_t layer;
};
static_assert(sizeof(PageKeyWire) == 20);

inline constexpr size_t kMessageBytes = 240;

struct ResponseHeader {
  int32_t code;            // absl::StatusCode (0: OK)
  uint32_t num_pages;      // descriptors that follow (one per requested page on OK)
  uint64_t lease_id;       // FetchPages: the lease (0 when nothing was pinned); Release: leases ended
  uint64_t lease_expires_in_ms;
  uint32_t message_bytes;  // of `message` (error text, truncated)
  uint32_t reserved;
  char message[kMessageBytes];
};

struct DescriptorWire {
  uint64_t offset;    // arena offset of the payload
  uint32_t length;    // payload bytes
  uint8_t found;      // 0: not stored
  uint8_t encoding;   // PageEncoding
  uint8_t tier;       // leoam.v1.Tier
  uint8_t reserved;
};
static_assert(sizeof(DescriptorWire) == 16);

inline constexpr size_t kRequestOffset = sizeof(Control);
inline size_t RequestBytes(uint32_t max_pages) {
  return sizeof(RequestHeader) + size_t{max_pages} * (sizeof(uint64_t) + sizeof(PageKeyWire));
}
inline size_t ResponseOffset(uint32_t max_pages) { return (kRequestOffset + RequestBytes(max_pages) + 63) / 64 * 64; }
inline size_t BlockBytes(uint32_t max_pages) {
  return ResponseOffset(max_pages) + sizeof(ResponseHeader) + size_t{max_pages} * sizeof(DescriptorWire);
}

}  // namespace leoam::kvstore::channel
