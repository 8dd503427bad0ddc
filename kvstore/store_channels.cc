// Store: fetch channels (kvstore/fetch_channel.h) — opening one for a session, and joining the
// threads of closed ones.
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "kvstore/store.h"

namespace leoam::kvstore {

void Store::ReapChannels() {
  std::vector<ChannelEntry> done;
  {
    absl::MutexLock l(&mu_);
    done.swap(closing_channels_);
  }
  if (done.empty()) return;
  for (ChannelEntry& e : done) e.channel.reset();  // joins
  absl::MutexLock l(&mu_);
  for (const ChannelEntry& e : done) arena_.Unref(e.offset);
}

absl::Status Store::OpenFetchChannel(const v1::OpenFetchChannelRequest& req, v1::OpenFetchChannelResponse* resp) {
  absl::MutexLock l(&mu_);
  ASSIGN_OR_RETURN(auto session, FindSession(req.session_id()));
  if (channels_.size() >= options_.max_fetch_channels) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%d fetch channels are open (the limit); use the FetchPages RPC", channels_.size()));
  }
  const uint32_t max_pages = options_.max_pages_per_request;
  const uint64_t bytes = channel::BlockBytes(max_pages);
  std::optional<uint64_t> off = AllocateBlock(bytes);
  if (!off.has_value()) {
    return absl::ResourceExhaustedError(absl::StrFormat("arena full: no room for a %d-byte fetch channel", bytes));
  }
  uint64_t id = 0;
  do id = rng_(); while (id == 0 || channels_.contains(id));
  FetchChannelHandlers handlers;
  handlers.fetch = [this](const v1::FetchPagesRequest& r, v1::FetchPagesResponse* out) { return FetchPages(r, out); };
  handlers.release = [this](const v1::ReleaseRequest& r, v1::ReleaseResponse* out) { return Release(r, out); };
  ChannelEntry& e = channels_[id];
  e.session = session.first;
  e.offset = *off;
  e.channel = std::make_unique<FetchChannel>(arena_file_.data() + *off, id, max_pages, req.session_id(),
                                             std::move(handlers), options_.fetch_channel_spin_us);
  resp->set_channel_id(id);
  resp->mutable_region()->set_offset(*off);
  resp->mutable_region()->set_length(bytes);
  resp->set_max_pages(max_pages);
  resp->set_format_version(channel::kVersion);
  return absl::OkStatus();
}

}  // namespace leoam::kvstore
