// SharedMemoryFile: a file in a tmpfs directory (/dev/shm by default), created with mode 0600 and
// mapped MAP_SHARED. The store creates it; clients map the same path (returned by Hello).
//
// Why a path and not a memfd passed with SCM_RIGHTS: gRPC owns the unix socket, so passing a file
// descriptor needs a second side-channel socket and its own handshake; a 0600 file in /dev/shm gives
// the same sharing (same user only) with one open(). Its cost is that a killed server leaves the
// file behind, so the store names it after its data dir and replaces a stale one at start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace leoam::kvstore {

class SharedMemoryFile {
 public:
  // Creates (replacing any existing file at `path`), sizes and maps a file. The owner unlinks the
  // file on destruction.
  static absl::StatusOr<SharedMemoryFile> Create(const std::string& path, size_t bytes);
  // Maps an existing file read-write (client side); its size is taken from the file.
  static absl::StatusOr<SharedMemoryFile> Open(const std::string& path);

  SharedMemoryFile() = default;
  SharedMemoryFile(SharedMemoryFile&& other) noexcept;
  SharedMemoryFile& operator=(SharedMemoryFile&& other) noexcept;
  SharedMemoryFile(const SharedMemoryFile&) = delete;
  SharedMemoryFile& operator=(const SharedMemoryFile&) = delete;
  ~SharedMemoryFile();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void Reset();

  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  bool owner_ = false;
};

}  // namespace leoam::kvstore
