// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the download engine (see downloader.h).
 *
 * Threads:
 *  - the HTTP thread runs everything that touches the Fetcher, the jobs, the
 *    timers and TrackProgress; those members are its own and need no lock.
 *  - the consumer calls pop()/level()/wait_change()/set_flushing()/stats();
 *    it shares buf_, consumer_, end_, fatal_, flushing_ and stats_ with the
 *    HTTP thread under mu_, and wakes the HTTP thread with post().
 * Nothing calls out (fetcher, timers) while holding mu_.
 *
 * The engine's parts, one file each: this one (the HTTP thread, scheduling,
 * the requests' lifetime), downloader-status.cpp (the status poller and
 * max-wait), downloader-buffer.cpp (the ordered buffer the consumer pops,
 * the events queue), downloader-cache.cpp (the disk cache's side);
 * policy.* decides what answers mean, for all of them.
 */
#include "segdl/downloader.h"
#include "segdl/downloader-jobs.h"

#include "segdl/urls.h"
#include "segdl/log.h"

#include <algorithm>
#include <cinttypes>

namespace segdl {

// The engine's clock: injected by tests, else GLib's monotonic time.
int64_t Downloader::now_us() const {
  return clock_->now_us();
}

int64_t EngineStats::track_duration_ns() const {
  if (duration_s > 0) return int64_t(duration_s * 1e9 + 0.5);
  if (segments_total < 0) return -1;
  if (segments_total == 0) return 0;
  if (first_segment_duration_s <= 0) return -1;
  if (segments_total > 1 && segment_duration_s <= 0) return -1;
  double total = first_segment_duration_s + double(segments_total - 1) * segment_duration_s;
  return int64_t(total * 1e9 + 0.5);
}

Downloader::Downloader(DownloaderConfig cfg, FetcherFactory factory)
    : cfg_(std::move(cfg)),
      factory_(std::move(factory)),
      clock_(cfg_.clock ? cfg_.clock : &system_clock()),
      progress_(TrackProgress::Config{int64_t(cfg_.idle_timeout_s * 1e6), cfg_.monitor}),
      wait_budget_(int64_t(cfg_.max_wait_s * 1e6)) {}

Downloader::~Downloader() {
  stop();
}

bool Downloader::start(std::string &error) {
  if (started_) return true;
  std::promise<std::string> started;
  std::future<std::string> result = started.get_future();
  thread_ = std::thread(&Downloader::thread_main, this, &started);
  error = result.get();
  if (!error.empty()) {
    thread_.join();
    return false;
  }
  started_ = true;
  return true;
}

void Downloader::stop() {
  if (!started_) return;
  started_ = false;
  // Quit from the loop's own context, join from outside.
  post([this] { g_main_loop_quit(loop_); });
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto &entry : buf_)
    for (GBytes *b : entry.second.chunks) g_bytes_unref(b);
  buf_.clear();
}

void Downloader::thread_main(std::promise<std::string> *started) {
  {
    std::lock_guard<std::mutex> lock(context_lock_);
    context_ = g_main_context_new();
  }
  g_main_context_push_thread_default(context_);
  loop_ = g_main_loop_new(context_, FALSE);

  FetcherConfig fc;
  fc.max_connections = cfg_.max_concurrent + 2;  // segments + the status poll + one spare
  fc.timeout_s = cfg_.stall_timeout_s;
  fc.request_timeout_s = cfg_.timeout_s;
  fc.user_agent = cfg_.user_agent;
  fc.ssl_strict = cfg_.ssl_strict;
  std::string error;
  fetcher_ = factory_(fc, error);
  if (!fetcher_) {
    g_main_loop_unref(loop_);
    loop_ = nullptr;
    g_main_context_pop_thread_default(context_);
    {
      std::lock_guard<std::mutex> lock(context_lock_);
      g_main_context_unref(context_);
      context_ = nullptr;
    }
    started->set_value(error.empty() ? "cannot create the HTTP client" : error);
    return;
  }
  start_us_ = now_us();
  rng_ ^= uint32_t(start_us_);
  started->set_value("");

  open_cache();
  if (progress_.fully_known()) {
    // Every segment is on disk: no segment to ask the backend for, but one
    // status checks the cache's record of the track (played as it is when
    // the backend cannot be reached).
    verifying_record_ = true;
    publish_end();
    schedule();
    poll_status();
  } else {
    // Segment 0 and the first status go out together: first audio costs
    // one round trip, not two.
    schedule();
    start_polling();
  }
  if (cfg_.max_wait_s > 0) arm_max_wait(int64_t(cfg_.max_wait_s * 1e6));

  g_main_loop_run(loop_);
  teardown();

  g_main_loop_unref(loop_);
  loop_ = nullptr;
  g_main_context_pop_thread_default(context_);
  // Sources still attached (idle posts) are destroyed with the context.
  while (g_main_context_pending(context_)) g_main_context_iteration(context_, FALSE);
  GMainContext *ctx = nullptr;
  {
    std::lock_guard<std::mutex> lock(context_lock_);
    ctx = context_;
    context_ = nullptr;
  }
  g_main_context_unref(ctx);
}

// Removes a job, cancelling its transfer first: no callback may reach a
// freed job. Returns the next position.
std::map<int64_t, std::unique_ptr<Downloader::Job>>::iterator Downloader::drop_job(
    std::map<int64_t, std::unique_ptr<Job>>::iterator it) {
  if (it->second->phase == Job::Phase::Fetching) fetcher_->cancel(it->second->fetch_id);
  return jobs_.erase(it);
}

// Cancels every transfer and timer of the segmented backend.
void Downloader::cancel_everything() {
  while (!jobs_.empty()) drop_job(jobs_.begin());
  drop_tails_before(-1);
  if (status_job_) fetcher_->cancel(status_job_->fetch_id);
  status_job_.reset();
  clear_source(status_deadline_);
  clear_source(poll_timer_);
  clear_source(poll_tick_);
  clear_source(max_wait_timer_);
}

void Downloader::teardown() {
  stopping_ = true;  // posted work that still runs while the fetcher drains does nothing
  cancel_everything();
  cache_worker_.reset();  // what was queued (a finished segment) is written first
  fetcher_.reset();
}

// Attaches `src` to the HTTP context with `fn` as its one-shot callback
// (the function is freed with the source).
static void attach_once(GSource *src, GMainContext *ctx, std::function<void()> fn) {
  auto *heap = new std::function<void()>(std::move(fn));
  g_source_set_callback(
      src,
      [](gpointer data) -> gboolean {
        (*static_cast<std::function<void()> *>(data))();
        return G_SOURCE_REMOVE;
      },
      heap, [](gpointer data) { delete static_cast<std::function<void()> *>(data); });
  g_source_attach(src, ctx);
}

// A one-shot timer on the HTTP context, due at `at_us` of the engine's
// clock (clock.h). Returns a ref the caller owns: the callback drops it
// (and clears the caller's pointer) when it fires, or the caller destroys
// it early with clear_source().
GSource *Downloader::add_timer_at(int64_t at_us, std::function<void()> fn) {
  auto *heap = new std::function<void()>(std::move(fn));
  return clock_->add_timer(
      context_, at_us,
      [](gpointer data) -> gboolean {
        (*static_cast<std::function<void()> *>(data))();
        return G_SOURCE_REMOVE;
      },
      heap, [](gpointer data) { delete static_cast<std::function<void()> *>(data); });
}

// The same, `delay_us` from now.
GSource *Downloader::add_timer(int64_t delay_us, std::function<void()> fn) {
  return add_timer_at(now_us() + std::max<int64_t>(0, delay_us), std::move(fn));
}

// Runs `fn` on the HTTP thread, never synchronously.
void Downloader::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(context_lock_);
  if (!context_) return;  // the HTTP thread is gone: nothing left to do there
  GSource *src = g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  attach_once(src, context_, std::move(fn));
  g_source_unref(src);
}

// The job waits `delay_us`, then may be started again.
void Downloader::wait_then_retry(Job &job, int64_t delay_us) {
  job.phase = Job::Phase::Waiting;
  clear_source(job.stall);
  clear_source(job.timer);
  Job *jp = &job;
  job.timer = add_timer(delay_us, [this, jp] {
    g_source_unref(jp->timer);
    jp->timer = nullptr;
    jp->phase = Job::Phase::Idle;
    schedule();
  });
  schedule();
}

// Stall timeout: a transfer that makes no progress (no head, no byte) for
// stall-timeout fails as a transport timeout (retried, resumed with Range).
// One timer per transfer, armed for the last progress + stall-timeout and
// moved forward only when it fires (no re-arm per chunk).
void Downloader::arm_stall(Job &job, int64_t at_us) {
  clear_source(job.stall);
  if (cfg_.stall_timeout_s == 0) return;
  Job *jp = &job;
  job.stall = add_timer_at(at_us, [this, jp] {
    g_source_unref(jp->stall);
    jp->stall = nullptr;
    job_stalled(*jp);
  });
}

void Downloader::job_stalled(Job &job) {
  if (job.phase != Job::Phase::Fetching) return;
  const int64_t due = job.last_byte_us + int64_t(cfg_.stall_timeout_s) * 1000000;
  if (now_us() < due) {  // bytes came meanwhile
    arm_stall(job, due);
    return;
  }
  fetcher_->cancel(job.fetch_id);
  Verdict v = classify_transport(FetchError::Timeout, job.received > 0);
  job_failed(job, v.kind, 0,
             "no data for " + std::to_string(cfg_.stall_timeout_s) + " s (stall-timeout)", -1,
             v.action == Verdict::Action::Retry);
}

double Downloader::jitter() {
  // xorshift32: enough to spread retries of several clients apart.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return double(rng_ % 1000000) / 1e6;
}

// Starts what may start: segments in the window, in order, up to
// max_concurrent transfers.
void Downloader::schedule() {
  wake_pending_ = false;
  if (stopping_) return;
  if (fallback_mode_) {  // only the fallback job, restarted after a failed attempt
    auto it = jobs_.find(kFallbackSegment);
    if (it != jobs_.end() && it->second->phase == Job::Phase::Idle) start_job(*it->second);
    return;
  }
  int64_t consumer;
  {
    std::lock_guard<std::mutex> lock(mu_);
    consumer = consumer_;
    if (fatal_) return;
  }
  // Segments behind the consumer are consumed (or skipped by a seek): stop
  // and forget them.
  while (!jobs_.empty() && jobs_.begin()->first < consumer) drop_job(jobs_.begin());
  drop_tails_before(consumer);

  const int window = window_size();
  // Cache first: whatever the disk has is delivered without a request.
  if (cache_) {
    for (int64_t n = consumer; n < consumer + window; n++) {
      if (progress_.end() && n >= *progress_.end()) break;
      auto it = jobs_.find(n);
      if (it != jobs_.end() && it->second->phase != Job::Phase::Idle) continue;
      deliver_cached(n);
    }
  }
  int in_flight = 0;
  for (auto &entry : jobs_)
    if (entry.second->phase == Job::Phase::Fetching) in_flight++;
  auto startable = [this](int64_t n) {
    auto it = jobs_.find(n);
    if (it != jobs_.end() && it->second->phase != Job::Phase::Idle) return false;
    // Before the first status only segment 0 is worth asking for; after
    // it, the next one while the track is produced (speculative fetch).
    return progress_.is_ready(n) || (n == 0 && !progress_.seen_status()) ||
           speculative_candidate(n);
  };
  for (int64_t n : pick_downloads(consumer, window, cfg_.max_concurrent, in_flight, progress_.end(),
                                  startable)) {
    start_job(job_for(n));
  }
}

// HTTP thread. Segment n's job, made (idle, of the current generation)
// when there is none.
Downloader::Job &Downloader::job_for(int64_t n) {
  auto &slot = jobs_[n];
  if (!slot) {
    slot = std::make_unique<Job>();
    slot->dl = this;
    slot->n = n;
    slot->url = segment_url(cfg_.backend, cfg_.video_id, n);
    std::lock_guard<std::mutex> lock(mu_);
    slot->generation = generation_;
  }
  return *slot;
}

// "segment N", or "the fallback URL", for log lines.
static std::string job_name(int64_t n) {
  return n == kFallbackSegment ? std::string("the fallback URL") : "segment " + std::to_string(n);
}

void Downloader::start_job(Job &job) {
  job.phase = Job::Phase::Fetching;
  job.waits_unlisted = false;
  if (job.first_start_us < 0) job.first_start_us = now_us();
  if (cache_ && !job.writer && job.received == 0 && job.n != kFallbackSegment) {
    std::string error;
    job.writer = cache_->begin(job.n, error);
    if (!job.writer) cache_failed(error);
  }
  job.skip = 0;
  if (job.head) {  // bytes held from a broken attempt: asked for again
    g_byte_array_unref(job.head);
    job.head = nullptr;
  }
  FetchRequest req;
  req.url = job.url;
  req.range_start = job.received;  // resume where the last attempt broke off
  if (job.received > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.resumes++;
  }
  SEGDL_ENGINE_LOG(GST_LEVEL_DEBUG, "%s: request, attempt %d%s", job_name(job.n).c_str(),
                   job.failures + 1, job.received > 0 ? " (resumed with Range)" : "");
  job.fetch_id = fetcher_->start(req, &job);
  prefetch_tail(job);  // an m4a's moov beside its body (downloader-tail.cpp)
  job.last_byte_us = now_us();
  arm_stall(job, job.last_byte_us + int64_t(cfg_.stall_timeout_s) * 1000000);
}

void Downloader::job_response(Job &job, const FetchResponse &resp) {
  job.last_byte_us = now_us();
  int s = resp.http_status;
  const Target target = job.n == kFallbackSegment ? Target::File : Target::Segment;
  const bool listed = progress_.is_ready(job.n);
  Verdict v = classify_http(s, target, listed);
  if (v.action == Verdict::Action::NotReady && listed) {
    // The status says it is there: wait a bounded time, then count failures.
    if (job.not_ready_since_us < 0) job.not_ready_since_us = now_us();
    if (listed_not_ready_fails(job.not_ready_since_us, now_us(), not_ready_grace_us())) {
      fetcher_->cancel(job.fetch_id);
      job_failed(job, v.kind, s, http_cause(resp) + " although the status lists it as ready",
                 resp.retry_after_s, true);
      return;
    }
  }
  if (v.action == Verdict::Action::NotReady) {
    fetcher_->cancel(job.fetch_id);
    job_not_ready(job, resp.retry_after_s);  // not produced yet: no failure
    return;
  }
  if (v.action != Verdict::Action::Accept) {
    fetcher_->cancel(job.fetch_id);
    job_failed(job, v.kind, s, http_cause(resp), resp.retry_after_s,
               v.action == Verdict::Action::Retry);
    return;
  }
  std::string cause;
  Verdict head = check_head(resp, target, cause);
  if (head.action != Verdict::Action::Accept) {
    fetcher_->cancel(job.fetch_id);
    job_failed(job, head.kind, s, cause, -1, head.action == Verdict::Action::Retry);
    return;
  }
  if (s == 206 && resp.range_start != job.received) {
    fetcher_->cancel(job.fetch_id);
    job_failed(job, EngineError::Kind::Read, s, "the server resumed at the wrong offset", -1, true);
    return;
  }
  // A 200 to a resume carries the whole segment again: drop what we have.
  job.skip = s == 200 ? job.received : 0;
  if (s == 200 && resp.content_length >= 0) job.expected = resp.content_length;
  if (s == 206 && resp.range_total >= 0) job.expected = resp.range_total;
  if (s == 206 && resp.range_total < 0 && resp.content_length >= 0)
    job.expected = job.received + resp.content_length;
  if (target == Target::Segment && job.expected > cfg_.max_segment_size) {
    fetcher_->cancel(job.fetch_id);
    job_failed(job, EngineError::Kind::Read, s,
               "announced " + std::to_string(job.expected) +
                   " bytes, more than max-segment-size (" + std::to_string(cfg_.max_segment_size) +
                   ")",
               -1, false);
    return;
  }
  // No length to check the end against: held whole, judged when it ends.
  job.hold_whole = cfg_.check_segments && target == Target::Segment && s == 200 &&
                   resp.content_length < 0 && job.received == 0;
  job.info.size = job.expected;
  job.info.etag = resp.etag;
  job.info.last_modified = resp.last_modified;
  job.info.content_type = resp.content_type;
}

void Downloader::job_data(Job &job, GBytes *chunk) {
  job.last_byte_us = now_us();
  gsize size = g_bytes_get_size(chunk);
  const int64_t held = job.head ? int64_t(job.head->len) : 0;
  if (job.n != kFallbackSegment && job.received + held + int64_t(size) > cfg_.max_segment_size) {
    // An endless body: stop it here (no callback follows a cancel).
    fetcher_->cancel(job.fetch_id);
    job_failed(job, EngineError::Kind::Read, 0,
               "more than max-segment-size (" + std::to_string(cfg_.max_segment_size) + " bytes)",
               -1, false);
    return;
  }
  GBytes *keep = nullptr;
  if (job.skip > 0) {
    gsize drop = gsize(std::min<int64_t>(job.skip, int64_t(size)));
    job.skip -= int64_t(drop);
    if (drop == size) return;
    keep = g_bytes_new_from_bytes(chunk, drop, size - drop);  // no copy
  } else {
    keep = g_bytes_ref(chunk);
  }
  // Nothing of a segment leaves (to the consumer or the cache) before its
  // first bytes pass check_segment().
  if (!job.checked && job.hold_whole) {
    if (!job.head) job.head = g_byte_array_new();
    g_byte_array_append(job.head, static_cast<const guint8 *>(g_bytes_get_data(keep, nullptr)),
                        guint(g_bytes_get_size(keep)));
    g_bytes_unref(keep);
    return;
  }
  if (!job.checked) {
    GBytes *passed = nullptr;
    if (job_check(job, keep, false, &passed) != SniffResult::Verdict::Audio) return;
    keep = passed;
  }
  hand_over(job, keep);
}

// Gives `keep` (owned; checked) to the buffer and the cache writer.
void Downloader::hand_over(Job &job, GBytes *keep) {
  gsize kept = g_bytes_get_size(keep);
  if (job.writer) g_bytes_ref(keep);  // still needed below, after the consumer may have it
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job.generation != generation_) {  // a seek made this job obsolete
      g_bytes_unref(keep);
      if (job.writer) g_bytes_unref(keep);
      return;
    }
    buf_[job.n].chunks.push_back(keep);
    stats_.bytes_downloaded += int64_t(kept);
    if (job.n == 0 && job.received == 0 && stats_.time_to_first_byte_us < 0)
      stats_.time_to_first_byte_us = now_us() - start_us_;
  }
  job.received += int64_t(kept);
  cond_.notify_all();
  if (job.writer) {
    std::string error;
    if (cache_ && !job.writer->append(g_bytes_get_data(keep, nullptr), kept, error)) {
      job.writer.reset();
      cache_failed(error);
    }
    g_bytes_unref(keep);
  }
}

void Downloader::job_done(Job &job, FetchError err, const std::string &msg) {
  clear_source(job.stall);
  // Whole only when the length is known and met, and not empty.
  const int64_t held = job.head ? int64_t(job.head->len) : 0;
  if (err == FetchError::None && job.expected >= 0 && job.received + held < job.expected) {
    job_failed(job, EngineError::Kind::Read, 0,
               "body ended after " + std::to_string(job.received) + " of " +
                   std::to_string(job.expected) + " bytes",
               -1, true);
    return;
  }
  if (err == FetchError::None && job.hold_whole && !job.checked && held > 0) {
    check_held_body(job);  // on the worker; held_body_checked() goes on
    return;
  }
  job_ended(job, err, msg, nullptr);
}

// HTTP thread: the rest of job_done(). `held` (owned, or null): a body held
// whole, found whole by the worker (downloader-check.cpp), not checked yet.
void Downloader::job_ended(Job &job, FetchError err, const std::string &msg, GBytes *held) {
  if (err == FetchError::None && !job.checked) {
    // A body shorter than the check needed, or held whole, is whole now:
    // judged as it is.
    GBytes *passed = nullptr;
    if (job_check(job, held, true, &passed) != SniffResult::Verdict::Audio) return;
    if (passed && g_bytes_get_size(passed) > 0)
      hand_over(job, passed);
    else if (passed)
      g_bytes_unref(passed);
  }
  if (err == FetchError::None && job.received == 0) {
    job_failed(job, EngineError::Kind::Read, 0, "an empty body", -1, true);
    return;
  }
  if (err != FetchError::None) {
    Verdict v = classify_transport(err, job.received > 0);
    job_failed(job, v.kind, 0, std::string(fetch_error_name(err)) + ": " + msg, -1,
               v.action == Verdict::Action::Retry);
    return;
  }
  job.phase = Job::Phase::Done;
  if (job.writer) {
    job.info.size = job.received;
    if (job.expected >= 0 && job.expected != job.received) job.info.size = job.expected;
    // Size check, fsync and renames on the cache worker.
    std::shared_ptr<SegmentWriter> writer(std::move(job.writer));
    SegmentInfo info = job.info;
    cache_async(
        [writer, info](Cache &, std::string &error) { return writer->commit(info, error); });
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job.generation != generation_) return;
    buf_[job.n].complete = true;
    SegmentDone done;
    done.index = job.n == kFallbackSegment ? -1 : job.n;
    done.bytes = uint64_t(job.received);
    done.seconds = double(now_us() - job.first_start_us) / 1e6;
    done.source =
        job.n == kFallbackSegment ? SegmentDone::Source::Fallback : SegmentDone::Source::Network;
    done.retries = job.failures;
    segment_done(done);
  }
  cond_.notify_all();
  schedule();
}

// How long a listed segment may answer "not yet" before that counts as a
// failure: a few polls, at least a second.
int64_t Downloader::not_ready_grace_us() const {
  return std::max<int64_t>(1000000, int64_t(3 * cfg_.poll_interval_s * 1e6));
}

void Downloader::job_not_ready(Job &job, int retry_after_s) {
  // Retry-After is honoured up to a minute; max-wait bounds the whole wait.
  int64_t delay = retry_after_s >= 0 ? int64_t(std::min(retry_after_s, 60)) * 1000000
                                     : int64_t(cfg_.poll_interval_s * 1e6);
  // Not listed: the status listing it starts it at once (wake_listed_waiters()).
  job.waits_unlisted = !progress_.is_ready(job.n);
  if (job.waits_unlisted) delay = unlisted_retry_delay_us(retry_after_s);
  wait_then_retry(job, delay);
}

void Downloader::job_failed(Job &job, EngineError::Kind kind, int http_status,
                            const std::string &cause, int retry_after_s, bool transient) {
  clear_source(job.stall);
  job.failures++;
  if (transient && job.failures <= cfg_.max_retries) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.retries++;
      stats_.faults++;
    }
    SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "%s: %s (attempt %d of %d), retrying", job_name(job.n).c_str(),
                     cause.c_str(), job.failures, cfg_.max_retries + 1);
    EngineWarning w;
    w.segment = job.n;
    w.uri = job.url;
    w.http_status = http_status;
    w.cause = cause;
    w.attempt = job.failures;
    w.max_attempts = cfg_.max_retries + 1;
    warn(std::move(w));
    wait_then_retry(job,
                    backoff_delay_us(cfg_.retry_backoff_s, job.failures, jitter(), retry_after_s));
    return;
  }
  job.phase = Job::Phase::Failed;
  SEGDL_ENGINE_LOG(GST_LEVEL_WARNING, "%s failed: %s after %d attempt(s)", job_name(job.n).c_str(),
                   cause.c_str(), job.failures);
  EngineError e;
  e.kind = kind;
  e.segment = job.n;
  e.uri = job.url;
  e.http_status = http_status;
  e.message = job.n == kFallbackSegment ? "the fallback URL failed too: " + cause
                                        : "segment " + std::to_string(job.n) + " failed: " + cause;
  e.debug = "GET " + job.url + ": " + cause + " after " + std::to_string(job.failures) +
            (job.failures == 1 ? " attempt" : " attempts");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job.generation != generation_) return;
    buf_[job.n].error = e;
  }
  cond_.notify_all();
  schedule();
}

void Downloader::set_fatal(EngineError e) {
  // Stop asking the network; the consumer gets what is buffered, then this.
  for (auto &entry : jobs_)
    if (entry.second->phase == Job::Phase::Fetching) {
      fetcher_->cancel(entry.second->fetch_id);
      clear_source(entry.second->stall);
      entry.second->phase = Job::Phase::Failed;
    }
  if (status_job_) fetcher_->cancel(status_job_->fetch_id);
  status_job_.reset();
  clear_source(status_deadline_);
  clear_source(poll_timer_);
  clear_source(poll_tick_);
  clear_source(max_wait_timer_);
  SEGDL_ENGINE_LOG(GST_LEVEL_WARNING, "giving up: %s (%s)", e.message.c_str(), e.debug.c_str());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fatal_) fatal_ = std::move(e);
  }
  cond_.notify_all();
}

// After a seek: every job belongs to the old position. Cancel them all and
// schedule from the new one.
void Downloader::restart_jobs() {
  if (stopping_) return;
  while (!jobs_.empty()) drop_job(jobs_.begin());
  drop_tails_before(-1);
  {
    // Data that old jobs delivered between seek() and now.
    std::lock_guard<std::mutex> lock(mu_);
    for (auto &entry : buf_)
      for (GBytes *b : entry.second.chunks) g_bytes_unref(b);
    buf_.clear();
  }
  schedule();
}

// HTTP thread: stop everything of the segmented backend and fetch the
// fallback URL as one pseudo-segment.
void Downloader::start_fallback(EngineError reason) {
  if (stopping_) return;
  fallback_mode_ = true;
  SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "switching to the fallback URL %s: %s",
                   cfg_.fallback_uri.c_str(), reason.message.c_str());
  cancel_everything();
  EngineWarning w;
  w.kind = EngineWarning::Kind::Fallback;
  w.segment = reason.segment;
  w.uri = cfg_.fallback_uri;
  w.http_status = reason.http_status;
  w.cause = reason.message;
  warn(std::move(w));
  auto job = std::make_unique<Job>();
  job->dl = this;
  job->n = kFallbackSegment;
  job->url = cfg_.fallback_uri;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->generation = generation_;
  }
  Job &ref = *job;
  jobs_[kFallbackSegment] = std::move(job);
  start_job(ref);
}

}  // namespace segdl
