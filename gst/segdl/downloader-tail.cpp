// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's tail requests (issue 11: m4a first audio before the
 * whole segment). A self-contained MP4 segment whose moov follows its mdat
 * can only be read with its moov; the consumer, having read the head
 * (segdl::Mp4Progressive), asks for the segment's bytes from the mdat's
 * end with request_tail(), in parallel with the body still arriving, and
 * takes them with take_tail(). One attempt, no retry: a server that ignores
 * Range (200), answers anything but a 206 from that offset, or fails makes
 * the tail Unavailable, and the consumer reads the whole segment as before.
 *
 * Threads: request_tail()/take_tail() on the consumer, tails_ under mu_;
 * the TailJobs on the HTTP thread (see downloader.cpp).
 */
#include "segdl/downloader-jobs.h"
#include "segdl/downloader.h"
#include "segdl/log.h"

#include "segdl/urls.h"

namespace segdl {

void Downloader::request_tail(int64_t segment, uint64_t offset) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Tail &t = tails_[segment];
    if (t.state != Tail::State::None) return;  // asked already
    t.state = Tail::State::Pending;
  }
  post([this, segment, offset] { start_tail(segment, offset); });
}

Downloader::Tail Downloader::take_tail(int64_t segment) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tails_.find(segment);
  if (it == tails_.end()) return Tail();
  Tail out = it->second;
  it->second.bytes = nullptr;  // given away (a second take sees Ready without bytes)
  return out;
}

void Downloader::start_tail(int64_t segment, uint64_t offset) {
  if (stopping_ || fallback_mode_ || tail_jobs_.count(segment)) return;
  auto job = std::make_unique<TailJob>();
  job->dl = this;
  job->n = segment;
  job->offset = offset;
  FetchRequest req;
  req.url = segment_url(cfg_.backend, cfg_.video_id, segment);
  req.range_start = int64_t(offset);
  TailJob &ref = *job;
  tail_jobs_[segment] = std::move(job);
  ref.running = true;
  ref.fetch_id = fetcher_->start(req, &ref);
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
    if (ok) {
      t.bytes = g_byte_array_free_to_bytes(tj.bytes);  // no copy
      tj.bytes = g_byte_array_new();
    }
  }
  cond_.notify_all();
}

void Downloader::tail_response(TailJob &tj, const FetchResponse &resp) {
  if (resp.http_status != 206 || resp.range_start != int64_t(tj.offset)) {
    finish_tail(tj, false, resp.http_status == 200 ? "the server ignores Range" : http_cause(resp));
    return;
  }
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
}

}  // namespace segdl
