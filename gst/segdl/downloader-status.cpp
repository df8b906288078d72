// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's status poller and max-wait (see downloader.cpp).
 * HTTP thread only, except publish_end() which writes the shared state
 * under mu_.
 */
#include "segdl/downloader.h"
#include "segdl/downloader-jobs.h"

#include "segdl/urls.h"
#include "segdl/log.h"

#include <algorithm>
#include <cinttypes>

namespace segdl {

void Downloader::poll_status() {
  clear_source(poll_timer_);
  if (stopping_ || status_job_) return;  // one at a time
  status_job_ = std::make_unique<StatusJob>();
  status_job_->dl = this;
  status_job_->url = status_url(cfg_.backend, cfg_.video_id);
  FetchRequest req;
  req.url = status_job_->url;
  status_job_->fetch_id = fetcher_->start(req, status_job_.get());
  // A status is small: one that takes longer than stall-timeout in all (a
  // body trickling a byte at a time never trips the I/O timeout) fails.
  if (cfg_.stall_timeout_s > 0)
    status_deadline_ = add_timer(int64_t(cfg_.stall_timeout_s) * 1000000, [this] {
      g_source_unref(status_deadline_);
      status_deadline_ = nullptr;
      if (!status_job_) return;
      fetcher_->cancel(status_job_->fetch_id);
      status_job_.reset();
      on_status_failure("the status took longer than stall-timeout (" +
                            std::to_string(cfg_.stall_timeout_s) + " s)",
                        "", 0, EngineError::Kind::OpenRead, true);
    });
  std::lock_guard<std::mutex> lock(mu_);
  stats_.status_polls++;
}

void Downloader::on_status_done(StatusJob &sj, FetchError err, const std::string &msg) {
  // Keep the job alive until this function returns.
  std::unique_ptr<StatusJob> done = std::move(status_job_);
  clear_source(status_deadline_);
  if (sj.too_large) {
    on_status_failure("status body too large",
                      "more than " + std::to_string(cfg_.status_limits.max_body_bytes) + " bytes",
                      sj.resp.http_status, EngineError::Kind::Read, true);
    return;
  }
  if (err != FetchError::None) {
    Verdict v = classify_transport(err, false);
    // The transport's own words too ("Connection refused", "Name or service
    // not known"): the user sees this line, not the debug text.
    std::string why = std::string("cannot reach the backend (") + fetch_error_name(err) +
                      (msg.empty() ? "" : ": " + msg) + ")";
    on_status_failure(why, msg, 0, EngineError::Kind::OpenRead, v.action == Verdict::Action::Retry);
    return;
  }
  int s = sj.resp.http_status;
  Verdict v = classify_http(s, Target::Status, false);
  if (v.action != Verdict::Action::Accept) {
    on_status_failure("status request failed: " + http_cause(sj.resp), "", s, v.kind,
                      v.action == Verdict::Action::Retry);
    return;
  }
  std::string cause;
  if (check_head(sj.resp, Target::Status, cause).action != Verdict::Action::Accept) {
    on_status_failure("status request failed: " + cause, "", s, EngineError::Kind::Read, false);
    return;
  }
  Status st;
  std::string perr;
  if (!parse_status(reinterpret_cast<const char *>(sj.body->data), sj.body->len, st, perr,
                    cfg_.status_limits)) {
    on_status_failure("malformed status: " + perr, "", s, EngineError::Kind::Read, true);
    return;
  }
  status_failures_ = 0;
  static const char *const kStates[] = {"not given", "processing", "complete", "error"};
  SEGDL_ENGINE_LOG(GST_LEVEL_DEBUG,
                   "status: %zu ready (leading %" G_GINT64_FORMAT "), total %s, state %s",
                   st.ready.size(), st.contiguous_ready(),
                   st.total_segments ? std::to_string(*st.total_segments).c_str() : "unknown",
                   kStates[int(st.state)]);
  if (st.state == TrackState::Error) {
    EngineError e;
    e.kind = EngineError::Kind::Failed;
    e.uri = status_url(cfg_.backend, cfg_.video_id);
    e.http_status = s;
    e.message = "the backend reports an error for this track" +
                (st.error.empty() ? std::string() : ": " + st.error);
    e.debug = "GET " + e.uri + ": state \"error\"";
    set_fatal(e);
    return;
  }
  std::optional<int64_t> old_end = progress_.end();
  progress_.update(st, now_us());
  if (old_end && progress_.end() != old_end)
    SEGDL_ENGINE_LOG(GST_LEVEL_INFO,
                     "track %s: the number of segments changed from %" G_GINT64_FORMAT,
                     cfg_.video_id.c_str(), *old_end);
  if (verifying_record_) {
    // Online, the live status is the authority over the cache's record (an
    // edited or stale track.meta): the track follows it, the record is
    // written again, and polling goes on while the track is not whole.
    verifying_record_ = false;
    if (progress_.end() != old_end) {
      track_remembered_ = false;
      std::lock_guard<std::mutex> lock(mu_);
      stats_.offline = false;
    }
    after_status();
    if (!progress_.fully_known() && !poll_tick_) start_polling();
    return;
  }
  after_status();
}

// Retries a failed status poll with backoff; gives up after max_retries
// consecutive failures.
void Downloader::on_status_failure(const std::string &why, const std::string &debug,
                                   int http_status, EngineError::Kind kind, bool retry) {
  if (verifying_record_) {
    // Offline: the cache's record of a whole track stands; play it.
    SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "status for the cached track: %s; playing the cache",
                     why.c_str());
    verifying_record_ = false;
    publish_end();
    schedule();
    return;
  }
  status_failures_++;
  std::string url = status_url(cfg_.backend, cfg_.video_id);
  if (!retry || status_failures_ > cfg_.max_retries) {
    EngineError e;
    e.kind = kind;
    e.uri = url;
    e.http_status = http_status;
    e.message = why;
    e.debug = "GET " + url + ": " + why + (debug.empty() ? "" : " (" + debug + ")") + " after " +
              std::to_string(status_failures_) + " attempts";
    set_fatal(e);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.retries++;
    stats_.faults++;
  }
  SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "status: %s (attempt %d of %d), retrying", why.c_str(),
                   status_failures_, cfg_.max_retries + 1);
  EngineWarning w;
  w.uri = url;
  w.http_status = http_status;
  w.cause = why;
  w.attempt = status_failures_;
  w.max_attempts = cfg_.max_retries + 1;
  warn(std::move(w));
  int64_t delay = backoff_delay_us(cfg_.retry_backoff_s, status_failures_, jitter());
  poll_timer_ = add_timer(delay, [this] {
    g_source_unref(poll_timer_);
    poll_timer_ = nullptr;
    poll_status();
  });
}

// After a good status: publish what is known, start what may start, and
// poll again unless nothing more is to be learnt.
void Downloader::after_status() {
  publish_end();
  wake_listed_waiters();
  schedule();
  if (progress_.fully_known()) {
    clear_source(poll_tick_);  // nothing more to learn
    remember_track();
  }
}

// Polls at a fixed rate: tick k is due at the first poll's start + k *
// poll-interval, whatever the replies take and however late a tick runs
// (the next one is computed from the grid, not from when this one ran or
// its reply came, so polls never drift). A tick asks only when no status
// request is in flight and no retry is waiting (a failed poll is retried
// on its own backoff timer); a tick that came so late that later ones are
// past is not repeated.
void Downloader::start_polling() {
  poll_due_us_ = now_us();
  poll_status();
  arm_poll_tick();
}

void Downloader::arm_poll_tick() {
  clear_source(poll_tick_);
  const int64_t interval = std::max<int64_t>(1000, int64_t(cfg_.poll_interval_s * 1e6));
  const int64_t now = now_us();
  poll_due_us_ += interval;
  if (poll_due_us_ <= now) poll_due_us_ += ((now - poll_due_us_) / interval + 1) * interval;
  poll_tick_ = add_timer_at(poll_due_us_, [this] {
    g_source_unref(poll_tick_);
    poll_tick_ = nullptr;
    poll_tick();
  });
}

void Downloader::poll_tick() {
  if (stopping_) return;
  progress_.tick(now_us());
  if (progress_.fully_known()) {
    after_status();  // nothing more to learn: no next tick
    return;
  }
  arm_poll_tick();
  if (!status_job_ && !poll_timer_) poll_status();
}

void Downloader::publish_end() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A cached track's record is checked against the live status first.
    if (!verifying_record_) track_known_ = true;
    if (!fallback_started_) end_ = progress_.end();
    stats_.segments_total = end_ ? *end_ : -1;
    stats_.segments_available = progress_.ready_count();
    status_seen_ = progress_.seen_status();
    if (listed_ready_.size() != progress_.ready().size()) listed_ready_ = progress_.ready();
    const Status &st = progress_.last();
    if (st.duration) stats_.duration_s = *st.duration;
    if (st.first_segment_duration) stats_.first_segment_duration_s = *st.first_segment_duration;
    if (st.segment_duration) stats_.segment_duration_s = *st.segment_duration;
  }
  cond_.notify_all();
}

void Downloader::arm_max_wait(int64_t delay_us) {
  clear_source(max_wait_timer_);
  max_wait_timer_ = add_timer(delay_us, [this] {
    g_source_unref(max_wait_timer_);
    max_wait_timer_ = nullptr;
    check_max_wait();
  });
}

// max-wait bounds the time the consumer spends waiting for the backend,
// whatever the status says (a track "complete" whose segment never comes
// included). Checked when the budget could have run out; re-armed for what
// is left otherwise.
void Downloader::check_max_wait() {
  int64_t remaining, waited_for;
  bool starving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    remaining = wait_budget_.remaining(now_us());
    starving = wait_budget_.starving();
    waited_for = consumer_;
  }
  if (remaining > 0 || !starving) {
    arm_max_wait(std::max<int64_t>(remaining, 100000));
    return;
  }
  EngineError e;
  e.kind = EngineError::Kind::NotFound;
  e.segment = waited_for;
  e.uri = segment_url(cfg_.backend, cfg_.video_id, waited_for);
  char secs[32];
  g_snprintf(secs, sizeof secs, "%g", cfg_.max_wait_s);
  e.message =
      "segment " + std::to_string(waited_for) + " was not ready after " + secs + " s (max-wait)";
  e.debug = "waited " + std::string(secs) +
            " s in all for the backend; last status: " + std::to_string(progress_.ready_count()) +
            " segments ready, total " +
            (progress_.advertised_total() ? std::to_string(*progress_.advertised_total())
                                          : std::string("unknown"));
  set_fatal(e);
}

// Speculative fetch. While the status says the backend is still producing
// the track (a total above the ready segments, or the state "processing"),
// the segment after the ready ones is asked for before the status lists
// it: the first one not ready, within the download window
// (pick_downloads() decides that). A backend that says neither (its tracks
// end by the idle rule) is not asked for what may never come. The "not
// yet" answers (404/425/503) are not failures (policy.cpp); the segment is
// asked again after unlisted_retry_delay_us(), or at once when a status
// lists it.
bool Downloader::speculative_candidate(int64_t n) const {
  if (!cfg_.speculative_fetch || !cfg_.monitor || !progress_.seen_status()) return false;
  if (progress_.fully_known()) return false;
  const TrackState state = progress_.state();
  const bool producing = state == TrackState::Processing ||
                         (state == TrackState::Unknown && progress_.advertised_total());
  if (!producing) return false;
  if (progress_.end() && n >= *progress_.end()) return false;
  return n == progress_.first_missing();
}

// The wait after a "not yet" for a segment the status does not list: the
// speculative rate (poll-interval / 4, at least 50 ms) or the server's
// Retry-After when longer (up to a minute); without speculative fetch, the
// Retry-After or a poll interval, as for any segment.
int64_t Downloader::unlisted_retry_delay_us(int retry_after_s) const {
  const int64_t asked = retry_after_s >= 0 ? int64_t(std::min(retry_after_s, 60)) * 1000000 : -1;
  if (!cfg_.speculative_fetch) return asked >= 0 ? asked : int64_t(cfg_.poll_interval_s * 1e6);
  const int64_t rate = std::max<int64_t>(50000, int64_t(cfg_.poll_interval_s * 1e6 / 4));
  return std::max(asked, rate);
}

// A segment waiting because it was not listed yet is started as soon as a
// status lists it (its timer is dropped).
void Downloader::wake_listed_waiters() {
  for (auto &entry : jobs_) {
    Job &job = *entry.second;
    if (job.phase != Job::Phase::Waiting || !job.waits_unlisted || !progress_.is_ready(job.n))
      continue;
    clear_source(job.timer);
    job.waits_unlisted = false;
    job.phase = Job::Phase::Idle;
  }
}

}  // namespace segdl
