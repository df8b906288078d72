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
 * the fallback), with a WARNING before, never skipped silently. A body
 * without a length (chunked) is held whole until the worker thread has
 * walked it to its end (check_held_body()).
 */
#include "segdl/downloader.h"
#include "segdl/downloader-jobs.h"

#include "segdl/log.h"
#include "segdl/urls.h"

#include <memory>

namespace segdl {

// HTTP thread. Holds `chunk` (owned; may be null when `whole`) with the
// segment's first bytes until check_segment() tells. A whole body in one
// piece (a body held whole, nothing held in job.head) is checked as it is,
// without a copy. Audio: `*out` has every byte held, for the caller.
// NeedMore: held. NotAudio: the transfer is stopped and the job refused
// (job_refused()).
SniffResult::Verdict Downloader::job_check(Job &job, GBytes *chunk, bool whole, GBytes **out) {
  *out = nullptr;
  if (!cfg_.check_segments) {
    job.checked = true;
    *out = chunk;
    return SniffResult::Verdict::Audio;
  }
  GBytes *one_piece = !job.head && whole ? chunk : nullptr;  // owned
  if (!one_piece) {
    if (!job.head) job.head = g_byte_array_new();
    if (chunk) {
      gsize size = 0;
      const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(chunk, &size));
      g_byte_array_append(job.head, data, guint(size));
      g_bytes_unref(chunk);
    }
  }
  gsize size = one_piece ? g_bytes_get_size(one_piece) : job.head->len;
  const guint8 *data = one_piece ? static_cast<const guint8 *>(g_bytes_get_data(one_piece, nullptr))
                                 : job.head->data;
  const bool fallback = job.n == kFallbackSegment;
  SniffResult r = check_segment(data, size, whole,
                                fallback || !cfg_.same_form ? MediaForm::Unknown : track_form_);
  if (r.verdict == SniffResult::Verdict::NeedMore) return r.verdict;  // never when whole
  if (r.verdict == SniffResult::Verdict::NotAudio) {
    if (one_piece) g_bytes_unref(one_piece);
    if (!whole) fetcher_->cancel(job.fetch_id);  // no callback follows
    job_refused(job, r.why);
    return r.verdict;
  }
  if (!fallback && track_form_ == MediaForm::Unknown) track_form_ = r.form;
  job.checked = true;
  if (one_piece) {
    *out = one_piece;
  } else {
    *out = g_byte_array_free_to_bytes(job.head);
    job.head = nullptr;
  }
  return r.verdict;
}

namespace {

// A segment whose length is this much shorter than the status says is cut.
constexpr double kShortSegment = 0.9;

// Any thread (pure). Whether a body held whole (no Content-Length) is
// whole: it must end where its last frame (packet, page, box) ends and,
// unless it is the track's last segment (`last`), hold at least
// kShortSegment of `nominal` seconds (the status's length of segment `n`;
// <= 0 unknown). `why` when not.
bool held_body_whole(const guint8 *data, size_t size, int64_t n, bool last, double nominal,
                     std::string &why) {
  if (size == 0) return true;  // the empty body is refused on its own
  SegmentEnd end = check_segment_end(data, size);
  if (!end.whole) {
    why = "a body without Content-Length cut short: " + end.why;
    return false;
  }
  if (end.seconds < 0 || last) return true;
  if (nominal <= 0 || end.seconds >= kShortSegment * nominal) return true;
  char text[160];
  g_snprintf(text, sizeof text,
             "a body without Content-Length cut short: %.3f s of audio, the status says %s "
             "lasts %g s",
             end.seconds, n == 0 ? "segment 0" : "a segment", nominal);
  why = text;
  return false;
}

}  // namespace

// HTTP thread. A body without a length (chunked) ended cleanly, held whole
// in job.head: libsoup 3 takes a malformed chunk size for the last chunk,
// so a clean end proves nothing. Its frames are walked to its end on the
// worker thread, not here (the HTTP thread serves every transfer); the job
// waits (Waiting, no timer) for held_body_checked(). The body becomes an
// immutable GBytes that the worker and the job's answer share.
void Downloader::check_held_body(Job &job) {
  const bool last = !progress_.end() || job.n + 1 >= *progress_.end();
  double nominal;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nominal = job.n == 0 ? stats_.first_segment_duration_s : stats_.segment_duration_s;
  }
  const uint64_t token = ++held_checks_;
  job.phase = Job::Phase::Waiting;
  job.end_check = token;
  std::shared_ptr<GBytes> body(g_byte_array_free_to_bytes(job.head), g_bytes_unref);
  job.head = nullptr;
  const int64_t n = job.n;
  worker().run([this, n, token, body, last, nominal] {
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(body.get(), &size));
    std::string why;
    const bool whole = held_body_whole(data, size, n, last, nominal, why);
    SEGDL_ENGINE_LOG(GST_LEVEL_DEBUG,
                     "segment %s: body without Content-Length checked to its end (%" G_GSIZE_FORMAT
                     " bytes): %s",
                     std::to_string(n).c_str(), size, whole ? "whole" : why.c_str());
    // The answer owns its ref of the body: freed with it if it never runs (teardown).
    post([this, n, token, body, whole, why] {
      held_body_checked(n, token, whole ? body.get() : nullptr, why);
    });
  });
}

// HTTP thread: the worker's answer for segment n's held body: `body` (not
// owned) when it is whole, null when it is cut (`why`). Whole: the job ends
// as any other (checked, handed over, cached); cut: a broken transfer
// (retried from its start, then missing-segment decides), and nothing of it
// was output or cached.
void Downloader::held_body_checked(int64_t n, uint64_t token, GBytes *body,
                                   const std::string &why) {
  if (stopping_) return;
  auto it = jobs_.find(n);
  // Dropped meanwhile (a seek, a refetch, the fallback): nothing to do.
  if (it == jobs_.end() || it->second->end_check != token) return;
  Job &job = *it->second;
  job.end_check = 0;
  if (!body) {
    job_failed(job, EngineError::Kind::Read, 0, why, -1, true);
    return;
  }
  job_ended(job, FetchError::None, "", g_bytes_ref(body));
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
