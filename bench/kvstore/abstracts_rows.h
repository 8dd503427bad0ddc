// kvstore_bench's abstracts rows: the abstracts of a whole chain (what a prefix restore reads), a
// llama-124m-shaped layout (12 layers, 12 KV heads x 64, 6 KiB fp32 min/max abstract per page).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "leoam/kvstore/kvstore_client.h"

namespace leoam::kvstore::bench {

KvLayout AbstractsLayout();
inline constexpr size_t kAbstractBytes = 2 * 12 * 64 * sizeof(float);

// A client of the store at unix socket `socket` for the abstracts fingerprint.
std::unique_ptr<KvStoreClient> ConnectAbstracts(const std::string& socket);
// Puts `nodes` nodes x 12 layers (int4 pages; random abstracts).
void PutAbstractChain(KvStoreClient& c, uint32_t nodes);
// Reads every abstract of the chain and copies it into `out`; returns seconds. Old: GetAbstracts
// in max-size requests (bytes inside gRPC); Chain: GetChainAbstracts (through the arena).
double ReadAbstractsOld(KvStoreClient& c, uint32_t nodes, std::vector<uint8_t>& out);
double ReadAbstractsChain(KvStoreClient& c, uint32_t nodes, std::vector<uint8_t>& out);

}  // namespace leoam::kvstore::bench
