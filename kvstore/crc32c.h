// CRC32C (Castagnoli) of page payloads, with the SSE4.2 instruction where the CPU has it.
//
// Why our own: Debian's RocksDB is a portable build whose crc32c is the table-driven software
// version (~1 GB/s), which made verifying every 64 KiB blob on read the bottleneck of disk-tier
// fetches. The store keeps its own checksum of each payload in the page's metadata and reads
// blobs with RocksDB's verification off (see disk_tier.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace leoam::kvstore {

// CRC32C of data[0, n), continuing from `crc` (0 to start).
[[nodiscard]] uint32_t Crc32c(const void* data, size_t n, uint32_t crc = 0);

// The table-driven version (what Crc32c falls back to), for tests.
[[nodiscard]] uint32_t Crc32cPortable(const void* data, size_t n, uint32_t crc = 0);

// Whether Crc32c uses the CPU instruction (else a table-driven fallback). The hardware path
// runs three independent crc32 chains side by side and combines them (~3x one chain).
bool Crc32cIsHardware();

}  // namespace leoam::kvstore
