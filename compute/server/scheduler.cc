#include "compute/server/scheduler.h"

#include <algorithm>
#include <optional>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "compute/engine/generate.h"  // LayerMajorPrefillPays
#include "compute/engine/paged_kv.h"
#include "compute/sampling/sampler.h"
#include "compute/server/stop_strings.h"

namespace leoam::server {

namespace v1 = ::leoam::v1;

struct Scheduler::Request {
  PreparedRequest p;
  std::shared_ptr<RequestChannel> channel;
  absl::Time arrival, admitted, first_token;

  enum class State { kQueued, kPrefill, kDecode } state = State::kQueued;
  std::unique_ptr<KvSequence> kv;
  PagedKvSequence* paged = nullptr;
  std::shared_ptr<kvstore::KvStoreClient> store;  // keeps the session (and arena) of a tiered KV alive
  std::optional<Sampler> sampler;
  uint64_t seed = 0;
  std::optional<StreamingDetokenizer> detok;
  std::optional<StopStringFilter> stops;
  int32_t prefilled = 0;
  // Layer-major prefill (tiered, and the prompt's KV exceeds the device budget): wanted from
  // CreateKv, started at the first prefill turn if more than one chunk remains.
  bool layer_major_wanted = false;
  std::optional<LayerMajorPrefill> layer_major;
  int32_t layer_major_start = 0;  // prompt tokens before the layer-major part (cached)
  int32_t cached_memory = 0, cached_disk = 0;
  int32_t position = 0;  // next KV position to fill
  int32_t next_token = -1;
  int32_t completion = 0;
  std::vector<float> logits;
  bool done = false;
  bool counted_running = false;  // admitted: counted in running_ until retired
};

Scheduler::Scheduler(LlamaModel& model, const Tokenizer& tokenizer, const ServerOptions& options, KvStoreLink* link,
                     const Hash128& fingerprint)
    : model_(model), tokenizer_(tokenizer), options_(options), link_(link), fingerprint_(fingerprint) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() { Shutdown(); }

void Scheduler::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Scheduler::KvBytes(int32_t positions) const {
  const ModelConfig& c = model_.config();
  int64_t rows = positions;
  if (options_.mode != SelectionMode::kDense) {
    const int64_t page = options_.paged.page_size;
    rows = (rows + page - 1) / page * page;
  }
  return rows * c.num_layers * c.kv_dim() * 2 * static_cast<int64_t>(sizeof(float));
}

absl::Status Scheduler::CheckKvAvailable(const PreparedRequest& p) const {
  if (link_ == nullptr || link_->connected()) return absl::OkStatus();
  const int64_t need = KvBytes(p.kv_capacity);
  const int64_t budget = options_.paged.device_budget_bytes;
  if (need <= budget) return absl::OkStatus();
  return absl::UnavailableError(absl::StrFormat(
      "this request needs %.1f MiB of KV (%d positions), more than the device budget of %.1f MiB, and the KV store at "
      "%s is not reachable right now; retry later or send a shorter request",
      need / 1048576.0, p.kv_capacity, budget / 1048576.0, link_->target()));
}

absl::StatusOr<std::string> Scheduler::Submit(PreparedRequest request, std::shared_ptr<RequestChannel> channel) {
  RETURN_IF_ERROR(CheckKvAvailable(request));
  auto r = std::make_shared<Request>();
  r->arrival = absl::Now();
  r->channel = std::move(channel);
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::UnavailableError("leoam-compute is shutting down");
    if (request.request_id.empty()) {
      do {
        request.request_id = absl::StrFormat("req-%d", next_id_++);
      } while (by_id_.contains(request.request_id));
    } else if (by_id_.contains(request.request_id)) {
      return absl::AlreadyExistsError(
          absl::StrFormat("a request with id \"%s\" is still running; choose another id", request.request_id));
    }
    const int64_t open = static_cast<int64_t>(by_id_.size());
    if (open >= options_.max_concurrent) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "the server already has %d requests open, its limit (--max-concurrent); retry later", open));
    }
    id = request.request_id;
    r->p = std::move(request);
    by_id_[id] = r;
    queue_.push_back(r);
  }
  cv_.notify_all();
  return id;
}

absl::Status Scheduler::Abort(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_id_.find(request_id);
  if (it == by_id_.end()) {
    return absl::NotFoundError(absl::StrFormat("no running request has id \"%s\"", request_id));
  }
  it->second->channel->RequestCancel();
  cv_.notify_all();
  return absl::OkStatus();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.queued = static_cast<int32_t>(queue_.size());
  }
  s.running = running_.load();
  s.served = served_.load();
  s.tokens_generated = tokens_generated_.load();
  s.cached_tokens_memory = cached_memory_.load();
  s.cached_tokens_disk = cached_disk_.load();
  return s;
}

void Scheduler::ReleaseRequest(Request& r) {
  r.done = true;
  // Free the KV and forget the id before the client hears the end, so a finished stream means
  // freed memory, an id Abort no longer finds, and running_requests no longer counting it.
  r.layer_major.reset();  // refers to the KV
  r.kv.reset();
  r.paged = nullptr;
  r.store.reset();
  if (r.counted_running) {
    r.counted_running = false;
    running_.fetch_sub(1);
  }
  std::lock_guard<std::mutex> lock(mu_);
  by_id_.erase(r.p.request_id);
}

void Scheduler::Retire(Request& r, absl::Status close_status) {
  if (r.done) return;
  ReleaseRequest(r);
  r.channel->Close(std::move(close_status));
}

void Scheduler::Finish(Request& r, v1::FinishReason reason, const std::string& error) {
  if (r.done) return;
  // Text still held back (an incomplete UTF-8 sequence or a possible stop-string start) goes
  // out unless a stop string matched.
  if (r.detok.has_value() && r.stops.has_value() && !r.stops->stopped()) {
    std::string tail = r.stops->Push(r.detok->Flush());
    tail += r.stops->Flush();
    if (!tail.empty()) {
      v1::GenerateResponse m;
      m.set_request_id(r.p.request_id);
      m.mutable_chunk()->set_text(tail);
      r.channel->Push(std::move(m));
    }
  }
  const absl::Time now = absl::Now();
  v1::GenerateResponse m;
  m.set_request_id(r.p.request_id);
  v1::FinalResult* f = m.mutable_final();
  f->set_finish_reason(reason);
  if (!error.empty()) f->set_error(error);
  v1::Usage* u = f->mutable_usage();
  u->set_prompt_tokens(static_cast<int32_t>(r.p.prompt.size()));
  u->set_completion_tokens(r.completion);
  u->set_cached_tokens_memory(r.cached_memory);
  u->set_cached_tokens_disk(r.cached_disk);
  if (r.completion > 0) u->set_ttft_ms(absl::ToDoubleMilliseconds(r.first_token - r.arrival));
  if (r.completion > 1) {
    const double s = absl::ToDoubleSeconds(now - r.first_token);
    if (s > 0) u->set_decode_tokens_per_second((r.completion - 1) / s);
  }
  const absl::Time admitted = r.state == Request::State::kQueued ? now : r.admitted;
  u->set_queue_ms(absl::ToDoubleMilliseconds(admitted - r.arrival));
  u->set_seed(r.seed);
  if (r.paged != nullptr) {
    const PagedKvStats& s = r.paged->stats();
    u->set_pages_fetched_memory(s.pages_fetched_memory);
    u->set_pages_fetched_disk(s.pages_fetched_disk);
    u->set_fetch_stall_ms(s.fetch_stall_seconds * 1e3);
  }
  served_.fetch_add(1);
  ReleaseRequest(r);
  r.channel->Push(std::move(m));
  r.channel->Close(absl::OkStatus());
}

void Scheduler::Fail(Request& r, const absl::Status& status) {
  LEOAM_LOG(WARNING, "request %s failed: %s", r.p.request_id, status.ToString());
  if (r.store != nullptr && link_ != nullptr) link_->ReportFailure(r.store.get(), status);
  Finish(r, v1::FINISH_REASON_ERROR, status.ToString());
}

absl::Status Scheduler::CreateKv(Request& r) {
  r.layer_major_wanted = false;
  RETURN_IF_ERROR(CheckKvAvailable(r.p));
  const ModelConfig& config = model_.config();
  const int32_t capacity = r.p.kv_capacity;
  if (options_.mode == SelectionMode::kDense) {
    ASSIGN_OR_RETURN(KvCache dense, KvCache::Create(model_.backend(), config, capacity));
    r.kv = std::make_unique<KvCache>(std::move(dense));
    return absl::OkStatus();
  }
  PagedKvOptions paged = options_.paged;
  std::shared_ptr<kvstore::KvStoreClient> store = link_ != nullptr ? link_->client() : nullptr;
  if (store != nullptr) {
    paged.kvstore = store.get();
    paged.fingerprint = fingerprint_;
  } else {
    // No store (none configured, or down and this request fits): every page stays resident.
    paged.device_budget_bytes = 0;
    paged.kvstore = nullptr;
  }
  if (store == nullptr && paged.mode == SelectionMode::kOffloadAll) {
    // offload-all always goes through the store; without it, the dense cache serves the request.
    ASSIGN_OR_RETURN(KvCache dense, KvCache::Create(model_.backend(), config, capacity));
    r.kv = std::make_unique<KvCache>(std::move(dense));
    return absl::OkStatus();
  }
  r.layer_major_wanted = options_.prefill_order == PrefillOrder::kLayerMajor ||
                         (options_.prefill_order == PrefillOrder::kAuto &&
                          LayerMajorPrefillPays(model_, paged, static_cast<int32_t>(r.p.prompt.size())));
  paged.layer_major_prompt = r.layer_major_wanted;
  ASSIGN_OR_RETURN(std::unique_ptr<PagedKvSequence> seq, PagedKvSequence::Create(model_.backend(), config, capacity, paged));
  r.paged = seq.get();
  r.kv = std::move(seq);
  if (!r.paged->tiered()) return absl::OkStatus();
  r.store = store;
  // Prefix reuse: the leading pages the store already holds need no prefill.
  absl::StatusOr<PrefixRestore> restored = r.paged->RestorePrefix(r.p.prompt);
  if (!restored.ok()) {
    link_->ReportFailure(store.get(), restored.status());
    r.kv.reset();
    r.paged = nullptr;
    r.store.reset();
    return restored.status();
  }
  r.prefilled = restored->cached_tokens;
  const int32_t page = options_.paged.page_size;
  r.cached_disk = std::min(restored->pages_disk * page, restored->cached_tokens);
  r.cached_memory = restored->cached_tokens - r.cached_disk;
  cached_memory_.fetch_add(r.cached_memory);
  cached_disk_.fetch_add(r.cached_disk);
  return absl::OkStatus();
}

absl::Status Scheduler::Admit(Request& r) {
  r.admitted = absl::Now();
  absl::Status kv = CreateKv(r);
  if (!kv.ok() && r.kv == nullptr && link_ != nullptr && !link_->connected()) {
    // The store failed under us: once more without it (fits the device budget, or UNAVAILABLE).
    kv = CreateKv(r);
  }
  RETURN_IF_ERROR(kv);
  r.seed = r.p.sampling.seed;
  ASSIGN_OR_RETURN(Sampler sampler, Sampler::Create(r.p.sampling));
  r.sampler.emplace(std::move(sampler));
  r.detok.emplace(tokenizer_, /*at_text_start=*/false);
  r.stops.emplace(r.p.stop_strings);
  r.logits.resize(model_.config().vocab_size);
  r.state = Request::State::kPrefill;
  if (r.p.report_progress && r.prefilled > 0) {
    v1::GenerateResponse m;
    m.set_request_id(r.p.request_id);
    m.mutable_progress()->set_processed_tokens(r.prefilled);
    m.mutable_progress()->set_prompt_tokens(static_cast<int32_t>(r.p.prompt.size()));
    m.mutable_progress()->set_cached_tokens(r.prefilled);
    r.channel->Push(std::move(m));
  }
  return absl::OkStatus();
}

void Scheduler::PrefillStep(Request& r) {
  const int32_t total = static_cast<int32_t>(r.p.prompt.size());
  const int32_t remaining = total - r.prefilled;
  if (r.layer_major_wanted && !r.layer_major.has_value() && remaining > options_.prefill_chunk) {
    // A long prompt whose KV exceeds the device budget: one layer over the whole remainder at a
    // time (one layer chunk per turn, so other requests keep decoding in between).
    std::span<const int32_t> rest(r.p.prompt.data() + r.prefilled, remaining);
    if (r.paged != nullptr) r.paged->PushTokens(rest);
    absl::StatusOr<LayerMajorPrefill> started =
        model_.StartLayerMajor(rest, r.prefilled, *r.kv, options_.prefill_chunk);
    if (!started.ok()) {
      Fail(r, started.status());
      return;
    }
    r.layer_major.emplace(*std::move(started));
    r.layer_major_start = r.prefilled;
  }
  if (r.layer_major.has_value()) {
    LayerMajorPrefill& lm = *r.layer_major;
    absl::Status s = lm.Step();
    if (s.ok() && lm.done()) s = lm.Logits(r.logits.data());
    if (!s.ok()) {
      Fail(r, s);
      return;
    }
    const int32_t computed = total - r.layer_major_start;
    r.prefilled = lm.done() ? total
                            : r.layer_major_start + static_cast<int32_t>(static_cast<int64_t>(computed) *
                                                                         lm.steps_done() / lm.steps_total());
  } else {
    const int32_t n = std::min(options_.prefill_chunk, remaining);
    std::span<const int32_t> chunk(r.p.prompt.data() + r.prefilled, n);
    if (r.paged != nullptr) r.paged->PushTokens(chunk);
    if (absl::Status s = model_.Forward(chunk, r.prefilled, *r.kv, /*all_logits=*/false, r.logits.data()); !s.ok()) {
      Fail(r, s);
      return;
    }
    r.prefilled += n;
  }
  if (r.p.report_progress) {
    v1::GenerateResponse m;
    m.set_request_id(r.p.request_id);
    v1::PrefillProgress* p = m.mutable_progress();
    p->set_processed_tokens(r.prefilled);
    p->set_prompt_tokens(total);
    p->set_cached_tokens(r.cached_memory + r.cached_disk);
    if (r.layer_major.has_value()) {
      const int32_t layers = model_.config().num_layers;
      p->set_layer_major(true);
      p->set_num_layers(layers);
      p->set_layers_done(r.layer_major->steps_done() / (r.layer_major->steps_total() / layers));
    }
    r.channel->Push(std::move(m));
  }
  if (r.prefilled < total) return;
  r.layer_major.reset();  // frees the prompt's hidden states
  if (r.paged != nullptr) {
    // leoam's per-layer policies are measured here, as part of the prompt (not the first step).
    if (absl::Status s = r.paged->FinishPrefill(); !s.ok()) {
      Fail(r, s);
      return;
    }
  }
  r.position = total;
  r.state = Request::State::kDecode;
  TakeToken(r);
}

void Scheduler::TakeToken(Request& r) {
  absl::StatusOr<int32_t> sampled = r.sampler->Sample(r.logits.data(), model_.config().vocab_size);
  if (!sampled.ok()) {
    Fail(r, sampled.status());
    return;
  }
  const int32_t token = *sampled;
  if (r.completion == 0) r.first_token = absl::Now();
  const bool stop_token =
      std::find(r.p.stop_tokens.begin(), r.p.stop_tokens.end(), token) != r.p.stop_tokens.end() ||
      (!r.p.ignore_eos && (tokenizer_.IsEndOfGeneration(token) || token == tokenizer_.bos_id()));
  if (stop_token) {
    Finish(r, v1::FINISH_REASON_STOP);
    return;
  }
  ++r.completion;
  tokens_generated_.fetch_add(1);
  v1::GenerateResponse m;
  m.set_request_id(r.p.request_id);
  m.mutable_chunk()->add_token_ids(token);
  m.mutable_chunk()->set_text(r.stops->Push(r.detok->Push(token)));
  r.channel->Push(std::move(m));
  if (r.stops->stopped()) {
    Finish(r, v1::FINISH_REASON_STOP);
  } else if (r.completion >= r.p.max_tokens) {
    Finish(r, v1::FINISH_REASON_LENGTH);
  } else if (r.position >= r.kv->capacity()) {
    Finish(r, v1::FINISH_REASON_CONTEXT_FULL);
  } else {
    r.next_token = token;
  }
}

void Scheduler::DecodeStep(std::vector<Request*>& batch) {
  // Tiered sequences share the store: if it fails mid-step the whole step fails and the
  // sequences' KV may be half-appended. Running them apart keeps the others' KV consistent.
  std::vector<Request*> groups[2];
  for (Request* r : batch) groups[r->store != nullptr ? 1 : 0].push_back(r);
  const int32_t vocab = model_.config().vocab_size;
  std::vector<float> logits;
  for (std::vector<Request*>& group : groups) {
    if (group.empty()) continue;
    std::vector<DecodeItem> items;
    for (Request* r : group) {
      const int32_t one[1] = {r->next_token};
      if (r->paged != nullptr) r->paged->PushTokens(one);
      items.push_back(DecodeItem{r->next_token, r->position, r->kv.get()});
    }
    logits.resize(static_cast<size_t>(items.size()) * vocab);
    absl::Status s = model_.ForwardDecodeBatch(items, logits.data());
    for (size_t i = 0; i < group.size(); ++i) {
      Request& r = *group[i];
      if (!s.ok()) {
        Fail(r, s);
        continue;
      }
      ++r.position;
      std::copy_n(logits.data() + i * vocab, vocab, r.logits.data());
      TakeToken(r);
    }
  }
}

void Scheduler::Loop() {
  while (true) {
    std::vector<std::shared_ptr<Request>> admitted;
    std::vector<std::shared_ptr<Request>> dropped;  // cancelled while queued
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty() || !active_.empty(); });
      if (stop_) break;
      const absl::Time now = absl::Now();
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->channel->cancel_requested() || now - (*it)->arrival > (*it)->p.time_limit) {
          dropped.push_back(*it);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      while (!queue_.empty() && active_.size() + admitted.size() < static_cast<size_t>(options_.max_batch)) {
        admitted.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    for (auto& r : dropped) {
      Finish(*r, r->channel->cancel_requested() ? v1::FINISH_REASON_CANCELLED : v1::FINISH_REASON_TIME_LIMIT);
    }
    for (auto& r : admitted) {
      if (absl::Status s = Admit(*r); !s.ok()) {
        LEOAM_LOG(WARNING, "request %s not admitted: %s", r->p.request_id, s.ToString());
        Retire(*r, s);
        continue;
      }
      r->counted_running = true;
      running_.fetch_add(1);
      active_.push_back(r);
    }

    // Stop conditions that do not need the model.
    const absl::Time now = absl::Now();
    for (auto& r : active_) {
      if (r->channel->cancel_requested()) {
        Finish(*r, v1::FINISH_REASON_CANCELLED);
      } else if (now - r->arrival > r->p.time_limit) {
        Finish(*r, v1::FINISH_REASON_TIME_LIMIT);
      }
    }
    // One prefill chunk, oldest request first.
    for (auto& r : active_) {
      if (!r->done && r->state == Request::State::kPrefill) {
        PrefillStep(*r);
        break;
      }
    }
    // One decode step of everyone decoding.
    std::vector<Request*> batch;
    for (auto& r : active_) {
      if (!r->done && r->state == Request::State::kDecode && r->next_token >= 0) batch.push_back(r.get());
    }
    if (!batch.empty()) DecodeStep(batch);
    active_.erase(std::remove_if(active_.begin(), active_.end(), [](const auto& r) { return r->done; }),
                  active_.end());
  }
  // Shutdown: whatever is still open ends with UNAVAILABLE.
  std::vector<std::shared_ptr<Request>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open.assign(queue_.begin(), queue_.end());
    queue_.clear();
  }
  open.insert(open.end(), active_.begin(), active_.end());
  active_.clear();
  for (auto& r : open) Retire(*r, absl::UnavailableError("leoam-compute is shutting down"));
  running_.store(0);
}

}  // namespace leoam::server
