#include "kvstore/fetch_channel.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "kvstore/futex.h"

namespace leoam::kvstore {
namespace {

// Sleep slices: the thread re-checks stop_ at least this often even if a wakeup were lost.
constexpr int64_t kSleepSliceUs = 200000;

}  // namespace

FetchChannel::FetchChannel(uint8_t* block, uint64_t channel_id, uint32_t max_pages, std::string session_id,
                           FetchChannelHandlers handlers, int64_t spin_us)
    : block_(block),
      control_(reinterpret_cast<channel::Control*>(block)),
      max_pages_(max_pages),
      spin_us_(spin_us),
      session_id_(std::move(session_id)),
      handlers_(std::move(handlers)) {
  std::memset(block_, 0, channel::BlockBytes(max_pages));
  control_->version = channel::kVersion;
  control_->max_pages = max_pages;
  control_->channel_id = channel_id;
  SharedWord(control_->magic).store(channel::kMagic, std::memory_order_release);
  thread_ = std::thread([this] { Loop(); });
}

FetchChannel::~FetchChannel() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void FetchChannel::Stop() {
  if (stop_.exchange(true)) return;
  SharedWord(control_->closed).store(1, std::memory_order_seq_cst);
  FutexWakeAll(&control_->req_seq);
  FutexWakeAll(&control_->resp_seq);  // a client waiting for a completion sees `closed`
}

void FetchChannel::Loop() {
  // The constructor zeroed the slot before the channel was handed out; a client may ring before
  // this thread runs, so start from 0, not from what the word says now.
  uint32_t seen = 0;
  auto stopping = [this] { return stop_.load(std::memory_order_relaxed); };
  while (!stopping()) {
    const uint32_t cur =
        WaitForChange(control_->req_seq, seen, control_->server_sleeping, spin_us_, kSleepSliceUs, 0, stopping);
    if (cur == seen) continue;  // stopping
    seen = cur;
    Serve();
    requests_.fetch_add(1, std::memory_order_relaxed);
    PublishAndWake(control_->resp_seq, seen, control_->client_sleeping);
  }
}

void FetchChannel::Serve() {
  // Copy everything out of shared memory before checking it: the client could change it meanwhile.
  channel::RequestHeader h;
  std::memcpy(&h, block_ + channel::kRequestOffset, sizeof(h));
  auto* out = reinterpret_cast<channel::ResponseHeader*>(block_ + channel::ResponseOffset(max_pages_));
  auto* descs = reinterpret_cast<channel::DescriptorWire*>(out + 1);
  auto reply = [&](const absl::Status& s) {
    out->code = static_cast<int32_t>(s.code());
    const size_t n = std::min(s.message().size(), channel::kMessageBytes);
    std::memcpy(out->message, s.message().data(), n);
    out->message_bytes = static_cast<uint32_t>(n);
  };
  out->num_pages = 0;
  out->lease_id = 0;
  out->lease_expires_in_ms = 0;
  out->message_bytes = 0;
  if (h.num_pages > max_pages_ || h.num_release > max_pages_) {
    reply(absl::ResourceExhaustedError(absl::StrFormat(
        "%d pages and %d lease ids in one channel request; the channel takes at most %d of each", h.num_pages,
        h.num_release, max_pages_)));
    return;
  }
  std::vector<uint64_t> ids(h.num_release);
  std::vector<channel::PageKeyWire> keys(h.num_pages);
  const uint8_t* p = block_ + channel::kRequestOffset + sizeof(h);
  std::memcpy(ids.data(), p, ids.size() * sizeof(uint64_t));
  std::memcpy(keys.data(), p + ids.size() * sizeof(uint64_t), keys.size() * sizeof(channel::PageKeyWire));

  if (h.op == channel::kOpRelease) {
    if (h.num_pages != 0) {
      reply(absl::InvalidArgumentError("a channel Release carries lease ids only, no pages"));
      return;
    }
    v1::ReleaseRequest req;
    req.set_session_id(session_id_);
    for (uint64_t id : ids) req.add_lease_ids(id);
    v1::ReleaseResponse resp;
    const absl::Status s = handlers_.release(req, &resp);
    if (s.ok()) out->lease_id = resp.num_released();
    reply(s);
    return;
  }
  if (h.op != channel::kOpFetch) {
    reply(absl::InvalidArgumentError(absl::StrFormat("unknown channel op %d", h.op)));
    return;
  }
  v1::FetchPagesRequest req;
  req.set_session_id(session_id_);
  for (uint64_t id : ids) req.add_release_lease_ids(id);
  req.mutable_pages()->Reserve(static_cast<int>(keys.size()));
  for (const channel::PageKeyWire& k : keys) {
    v1::PageKey* pk = req.add_pages();
    pk->set_hash(reinterpret_cast<const char*>(k.hash), sizeof(k.hash));
    pk->set_layer(k.layer);
  }
  v1::FetchPagesResponse resp;
  const absl::Status s = handlers_.fetch(req, &resp);
  if (s.ok()) {
    out->lease_id = resp.lease_id();
    out->lease_expires_in_ms = resp.lease_expires_in_ms();
    out->num_pages = static_cast<uint32_t>(resp.pages_size());
    for (int i = 0; i < resp.pages_size(); ++i) {
      const v1::PageDescriptor& d = resp.pages(i);
      descs[i] = channel::DescriptorWire{d.offset(), static_cast<uint32_t>(d.length()), d.found() ? uint8_t{1} : uint8_t{0},
                                         static_cast<uint8_t>(d.encoding()), static_cast<uint8_t>(d.tier()), 0};
    }
  }
  reply(s);
}

}  // namespace leoam::kvstore
