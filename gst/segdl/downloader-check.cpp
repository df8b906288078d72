// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's check of every segment before it is output or
 * cached (see downloader.cpp and sniff.h).
 *
 * A segment's first bytes are held in its Job until check_segment() tells
 * (a few KiB; the whole body when it is shorter). A segment that is not
 * audio of the track's form -- from the network, from the disk cache, or
 * found unplayable by the consumer (reject_segment()) -- is fetched once
 * more from the network, its cached copy removed; a second refusal makes it
 * missing: pop() returns it as missing-segment says (an ERROR, a gap, or
 * the fallback), with a WARNING before, never skipped silently.
 */
#include "segdl/downloader.h"
#include "segdl/downloader-jobs.h"

#include "segdl/log.h"
#include "segdl/urls.h"

namespace segdl {

// HTTP thread. Holds `chunk` (owned; may be null when `whole`) with the
// segment's first bytes until check_segment() tells. Audio: `*out` has
// every byte held, for the caller. NeedMore: held. NotAudio: the transfer
// is stopped and the job refused (job_refused()).
SniffResult::Verdict Downloader::job_check(Job &job, GBytes *chunk, bool whole, GBytes **out) {
  *out = nullptr;
  if (!cfg_.check_segments) {
    job.checked = true;
    *out = chunk;
    return SniffResult::Verdict::Audio;
  }
  if (!job.head) job.head = g_byte_array_new();
  if (chunk) {
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(chunk, &size));
    g_byte_array_append(job.head, data, guint(size));
    g_bytes_unref(chunk);
  }
  const bool fallback = job.n == kFallbackSegment;
  SniffResult r = check_segment(job.head->data, job.head->len, whole,
                                fallback || !cfg_.same_form ? MediaForm::Unknown : track_form_);
  if (r.verdict == SniffResult::Verdict::NeedMore) return r.verdict;
  if (r.verdict == SniffResult::Verdict::NotAudio) {
    if (!whole) fetcher_->cancel(job.fetch_id);  // no callback follows
    job_refused(job, r.why);
    return r.verdict;
  }
  if (!fallback && track_form_ == MediaForm::Unknown) track_form_ = r.form;
  job.checked = true;
  *out = g_byte_array_free_to_bytes(job.head);
  job.head = nullptr;
  return r.verdict;
}

// A segment whose length is this much shorter than the status says is cut.
constexpr double kShortSegment = 0.9;

// HTTP thread. A body without a length (chunked) ended cleanly, held whole:
// libsoup 3 takes a malformed chunk size for the last chunk, so a clean end
// proves nothing. It must end where its last frame (packet, page, box) ends
// and, when the status gives the segments' durations, a segment before the
// last must hold at least kShortSegment of its length. `why` when not.
bool Downloader::held_body_whole(Job &job, std::string &why) {
  if (!job.head || job.head->len == 0) return true;  // the empty body is refused on its own
  SegmentEnd end = check_segment_end(job.head->data, job.head->len);
  if (!end.whole) {
    why = "a body without Content-Length cut short: " + end.why;
    return false;
  }
  const bool last = !progress_.end() || job.n + 1 >= *progress_.end();
  if (end.seconds < 0 || last) return true;
  double nominal;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nominal = job.n == 0 ? stats_.first_segment_duration_s : stats_.segment_duration_s;
  }
  if (nominal <= 0 || end.seconds >= kShortSegment * nominal) return true;
  char text[160];
  g_snprintf(text, sizeof text,
             "a body without Content-Length cut short: %.3f s of audio, the status says %s "
             "lasts %g s",
             end.seconds, job.n == 0 ? "segment 0" : "a segment", nominal);
  why = text;
  return false;
}

// HTTP thread. A copy of segment job.n is not audio: nothing of it was
// output or cached (the cache's temporary file goes with the writer). The
// first time it is fetched again; then it is missing.
void Downloader::job_refused(Job &job, const std::string &why) {
  job.writer.reset();
  if (job.head) g_byte_array_unref(job.head);
  job.head = nullptr;
  job.refused++;
  const bool fallback = job.n == kFallbackSegment;
  const std::string what = fallback ? "the fallback URL" : "segment " + std::to_string(job.n);
  SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "%s is not audio: %s (copy %d)", what.c_str(), why.c_str(),
                   job.refused);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.faults++;
    if (job.refused == 1) stats_.retries++;
  }
  if (job.refused == 1) {
    EngineWarning w;
    w.segment = fallback ? -1 : job.n;
    w.uri = job.url;
    w.cause = "not audio: " + why;
    w.attempt = 1;
    w.max_attempts = 2;
    warn(std::move(w));
    wait_then_retry(job, backoff_delay_us(cfg_.retry_backoff_s, 1, jitter()));
    return;
  }
  job.phase = Job::Phase::Failed;
  EngineError e;
  e.kind = EngineError::Kind::NotAudio;
  e.segment = job.n;
  e.uri = job.url;
  e.message = what + " is not audio: " + why;
  e.debug = "GET " + job.url + ": " + why + " in 2 copies";
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job.generation != generation_) return;
    buf_[job.n].error = e;
  }
  cond_.notify_all();
  schedule();
}

// HTTP thread. A cached segment is checked as a downloaded one: one that is
// not audio is removed and fetched again (that fetch is its second copy).
bool Downloader::cached_is_audio(int64_t n, GBytes *bytes) {
  if (!cfg_.check_segments) return true;
  gsize size = 0;
  const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(bytes, &size));
  SniffResult r =
      check_segment(data, size, true, cfg_.same_form ? track_form_ : MediaForm::Unknown);
  if (r.verdict == SniffResult::Verdict::Audio) {
    if (track_form_ == MediaForm::Unknown) track_form_ = r.form;
    return true;
  }
  cache_->remove(n);
  job_for(n).refused = 1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.faults++;
  }
  EngineWarning w;
  w.kind = EngineWarning::Kind::Cache;
  w.segment = n;
  w.uri = cfg_.cache.dir;
  w.cause = "cached segment " + std::to_string(n) + " is not audio (" + r.why +
            "): removed, fetched again";
  warn(std::move(w));
  return false;
}

// Consumer side (see downloader.h).
void Downloader::reject_segment(int64_t n, const std::string &why) {
  bool gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gone = !rejected_.insert(n).second;
    generation_++;
    for (auto &entry : buf_)
      for (GBytes *b : entry.second.chunks) g_bytes_unref(b);
    buf_.clear();
    consumer_ = n;
    stats_.current_segment = n;
  }
  cond_.notify_all();
  post([this, n, why, gone] { refetch(n, why, gone); });
}

// Consumer side (see downloader.h).
void Downloader::segment_cut_short(int64_t n) {
  SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "segment %s was cut short by the consumer",
                   std::to_string(n).c_str());
  std::lock_guard<std::mutex> lock(mu_);
  stats_.gaps++;
}

// HTTP thread: the consumer could not play segment n. Everything restarts
// at n, fetched from the network; when it was refused before, n is missing.
void Downloader::refetch(int64_t n, const std::string &why, bool gone) {
  if (stopping_) return;
  while (!jobs_.empty()) drop_job(jobs_.begin());
  if (cache_) cache_->remove(n);
  auto job = std::make_unique<Job>();
  job->dl = this;
  job->n = n;
  job->url = segment_url(cfg_.backend, cfg_.video_id, n);
  job->refused = 1;
  std::string what = "segment " + std::to_string(n);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->generation = generation_;
    stats_.faults++;
    for (auto &entry : buf_)  // cached data delivered since reject_segment()
      for (GBytes *b : entry.second.chunks) g_bytes_unref(b);
    buf_.clear();
    if (gone) {
      EngineError e;
      e.kind = EngineError::Kind::NotAudio;
      e.segment = n;
      e.uri = job->url;
      e.message = what + " gives no audio: " + why;
      e.debug = "GET " + job->url + ": " + why + " in 2 copies";
      buf_[n].error = e;
    } else {
      stats_.retries++;
    }
  }
  if (gone) {
    job->phase = Job::Phase::Failed;
  } else {
    EngineWarning w;
    w.segment = n;
    w.uri = job->url;
    w.cause = "gives no audio: " + why;
    w.attempt = 1;
    w.max_attempts = 2;
    warn(std::move(w));
  }
  jobs_[n] = std::move(job);
  cond_.notify_all();
  schedule();
}

}  // namespace segdl
