// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's tail requests (issue 11: m4a first audio before the
 * whole segment). A self-contained MP4 segment whose moov follows its mdat
 * can only be read with its moov. Two ways to get it while the body
 * arrives:
 *  - with the body: when the segment the consumer reads next (segment 0,
 *    a seek's target) starts and the track may be such an m4a,
 *    prefetch_tail() asks for its last tail_prefetch_bytes with a suffix
 *    Range ("bytes=-N") in parallel with the body, so first audio costs one
 *    round trip;
 *  - on demand: the consumer, having read the head (segdl::Mp4Progressive),
 *    asks for the bytes from the mdat's end with request_tail() (also when
 *    the suffix began after the mdat's end: the moov was bigger than N).
 * The consumer takes the answer with take_tail(). One attempt, no retry: a
 * server that ignores Range (200; then no tail is asked again), answers
 * anything but a 206 from the asked offset, or fails makes the tail
 * Unavailable, and the consumer reads the whole segment as before.
 *
 * Threads: request_tail()/take_tail() on the consumer, tails_ and the
 * flags under mu_; the TailJobs on the HTTP thread (see downloader.cpp).
 */
#include "segdl/downloader-jobs.h"
#include "segdl/downloader.h"
#include "segdl/log.h"

#include "segdl/urls.h"

namespace segdl {

void Downloader::request_tail(int64_t segment, uint64_t offset) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tails_wanted_ = true;
    Tail &t = tails_[segment];
    if (ranges_refused_ && t.state == Tail::State::None) t.state = Tail::State::Unavailable;
    if (t.state == Tail::State::Pending || t.state == Tail::State::Unavailable) return;
    if (t.state == Tail::State::Ready && t.offset <= offset) return;  // has it (or gave it)
    if (t.bytes) g_bytes_unref(t.bytes);  // a suffix that began too late
    t.bytes = nullptr;
    t.state = Tail::State::Pending;
    t.waited = true;
  }
  post([this, segment, offset] { start_tail(segment, int64_t(offset)); });
}

Downloader::Tail Downloader::take_tail(int64_t segment) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tails_.find(segment);
  if (it == tails_.end()) return Tail();
  Tail out = it->second;
  it->second.bytes = nullptr;  // given away (a second take sees Ready without bytes)
  if (out.state == Tail::State::Pending) it->second.waited = true;  // pop() wakes for it
  if (out.bytes) tails_wanted_ = true;  // the track's moov comes last: a seek's target too
  return out;
}

// HTTP thread: segment `segment`'s bytes from `from` (>= 0) or its last
// -from bytes (< 0: a suffix Range). Replaces a finished tail request.
void Downloader::start_tail(int64_t segment, int64_t from) {
  if (stopping_ || fallback_mode_) return;
  auto old = tail_jobs_.find(segment);
  if (old != tail_jobs_.end()) {
    if (old->second->running) return;  // one at a time
    tail_jobs_.erase(old);
  }
  auto job = std::make_unique<TailJob>();
  job->dl = this;
  job->n = segment;
  job->suffix = from < 0;
  job->offset = from < 0 ? 0 : uint64_t(from);
  FetchRequest req;
  req.url = segment_url(cfg_.backend, cfg_.video_id, segment);
  req.range_start = from;
  const std::string range = std::to_string(from) + (from < 0 ? "" : "-");
  SEGDL_ENGINE_LOG(GST_LEVEL_DEBUG, "segment %" G_GINT64_FORMAT ": tail request (bytes=%s)",
                   segment, range.c_str());
  TailJob &ref = *job;
  tail_jobs_[segment] = std::move(job);
  ref.running = true;
  ref.fetch_id = fetcher_->start(req, &ref);
}

// HTTP thread, as segment job.n's body request starts: its last
// tail_prefetch_bytes beside it, when the consumer reads it next (its
// first audio waits for its moov), on its first attempt, while the track
// may be an m4a with its moov last (its form not known yet, or ISO with a
// tail asked before) and the server has not ignored a Range.
void Downloader::prefetch_tail(const Job &job) {
  if (cfg_.tail_prefetch_bytes <= 0 || job.n == kFallbackSegment || fallback_mode_ ||
      job.failures > 0 || job.received > 0)
    return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job.n != consumer_ || ranges_refused_ || tails_.count(job.n)) return;
    const bool maybe_m4a =
        track_form_ == MediaForm::Unknown || (track_form_ == MediaForm::Iso && tails_wanted_);
    if (!maybe_m4a) return;
    tails_[job.n].state = Tail::State::Pending;
  }
  start_tail(job.n, -cfg_.tail_prefetch_bytes);
}

// The end of a tail request: its bytes, or Unavailable (the consumer then
// reads the whole segment).
void Downloader::finish_tail(TailJob &tj, bool ok, const std::string &why) {
  if (tj.running) fetcher_->cancel(tj.fetch_id);
  tj.running = false;
  if (!ok)
    SEGDL_ENGINE_LOG(GST_LEVEL_DEBUG,
                     "segment %" G_GINT64_FORMAT ": no tail from %" G_GUINT64_FORMAT " (%s)", tj.n,
                     tj.offset, why.c_str());
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tails_.find(tj.n);
    if (it == tails_.end()) return;  // dropped meanwhile
    Tail &t = it->second;
    if (t.bytes) g_bytes_unref(t.bytes);
    t.bytes = nullptr;
    t.state = ok ? Tail::State::Ready : Tail::State::Unavailable;
    t.offset = tj.offset;
    if (ok) {
      t.bytes = g_byte_array_free_to_bytes(tj.bytes);  // no copy
      tj.bytes = g_byte_array_new();
    }
    if (t.waited) tail_news_ = true;
  }
  cond_.notify_all();
}

void Downloader::tail_response(TailJob &tj, const FetchResponse &resp) {
  if (resp.http_status == 200) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ranges_refused_ = true;  // no tail again: each would bring the whole body
    }
    finish_tail(tj, false, "the server ignores Range");
    return;
  }
  // A suffix starts where the server says; it must run to the end.
  const bool placed = tj.suffix ? resp.range_start >= 0 && resp.range_total >= 0 &&
                                      resp.content_length >= 0 &&
                                      resp.range_start + resp.content_length == resp.range_total
                                : resp.range_start == int64_t(tj.offset);
  if (resp.http_status != 206 || !placed) {
    finish_tail(tj, false,
                http_cause(resp) + (resp.http_status == 206 ? ", not the range asked" : ""));
    return;
  }
  if (tj.suffix) tj.offset = uint64_t(resp.range_start);
  tj.expected = resp.content_length;
  if (resp.range_total >= 0) tj.expected = resp.range_total - int64_t(tj.offset);
}

void Downloader::tail_data(TailJob &tj, GBytes *chunk) {
  gsize size = 0;
  const auto *data = static_cast<const guint8 *>(g_bytes_get_data(chunk, &size));
  if (int64_t(tj.bytes->len + size) > cfg_.max_segment_size) {
    finish_tail(tj, false, "longer than max-segment-size");
    return;
  }
  g_byte_array_append(tj.bytes, data, guint(size));
}

void Downloader::tail_done(TailJob &tj, FetchError err, const std::string &msg) {
  tj.running = false;
  if (err != FetchError::None) {
    finish_tail(tj, false, std::string(fetch_error_name(err)) + ": " + msg);
    return;
  }
  if (tj.bytes->len == 0 || (tj.expected >= 0 && int64_t(tj.bytes->len) != tj.expected)) {
    finish_tail(tj, false,
                "a tail of " + std::to_string(tj.bytes->len) + " bytes, " +
                    std::to_string(tj.expected) + " announced");
    return;
  }
  finish_tail(tj, true, "");
}

// HTTP thread: forgets the tails of segments before `segment` (all with
// -1 = every one: a seek, the fallback, the end), cancelling their
// requests; the consumer's record of them goes too.
void Downloader::drop_tails_before(int64_t segment) {
  for (auto it = tail_jobs_.begin(); it != tail_jobs_.end();) {
    if (segment >= 0 && it->first >= segment) break;
    if (it->second->running) fetcher_->cancel(it->second->fetch_id);
    it = tail_jobs_.erase(it);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = tails_.begin(); it != tails_.end();) {
    if (segment >= 0 && it->first >= segment) break;
    if (it->second.bytes) g_bytes_unref(it->second.bytes);
    it = tails_.erase(it);
  }
  if (segment < 0) tail_news_ = false;
}

}  // namespace segdl
