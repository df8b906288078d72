// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's side of the disk cache: opening the track, cached
 * segments into the buffer, remembering a fully known track (see
 * downloader.cpp). HTTP thread.
 */
#include "segdl/downloader.h"
#include "segdl/downloader-jobs.h"

#include "segdl/urls.h"
#include "segdl/log.h"

#include <algorithm>
#include <cinttypes>

namespace segdl {

// Opens the disk cache for this track. A track the cache holds whole (it
// remembered the total and has every segment) is known without a status.
void Downloader::open_cache() {
  if (cfg_.cache.dir.empty()) return;
  cache_ = std::make_shared<Cache>(cfg_.cache);
  cache_worker_ = std::make_unique<CacheWorker>();
  std::string error;
  if (!cache_->open_track(cfg_.video_id, error)) {
    cache_failed(error);
    return;
  }
  cache_async([](Cache &c, std::string &) {
    c.evict();  // never the open track
    return true;
  });
  CachedTrack ct;
  if (!cache_->read_track(ct) || !ct.complete || !ct.total) return;
  for (int64_t n = 0; n < *ct.total; n++)
    if (!cache_->contains(n)) return;
  Status st;
  st.total_segments = ct.total;
  for (int64_t n = 0; n < *ct.total; n++) st.ready.push_back(n);
  st.state = TrackState::Complete;
  if (ct.duration > 0) st.duration = ct.duration;
  if (ct.first_segment_duration > 0) st.first_segment_duration = ct.first_segment_duration;
  if (ct.segment_duration > 0) st.segment_duration = ct.segment_duration;
  st.mime_type = ct.mime_type;
  progress_.update(st, now_us());
  track_remembered_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  stats_.offline = true;
}

// Delivers segment n from the disk cache if it is there. HTTP thread.
bool Downloader::deliver_cached(int64_t n) {
  SegmentInfo info;
  GBytes *bytes = cache_->lookup(n, &info);
  if (!bytes) return false;
  if (!cached_is_audio(n, bytes)) {  // removed: fetched again from the network
    g_bytes_unref(bytes);
    return false;
  }
  auto &slot = jobs_[n];
  if (!slot) {
    slot = std::make_unique<Job>();
    slot->dl = this;
    slot->n = n;
    slot->url = segment_url(cfg_.backend, cfg_.video_id, n);
  }
  slot->phase = Job::Phase::Done;
  gsize size = g_bytes_get_size(bytes);
  {
    std::lock_guard<std::mutex> lock(mu_);
    Buffered &b = buf_[n];
    // Slices of the file read, so the push loop streams it like a download.
    const gsize piece = 64 * 1024;
    for (gsize off = 0; off < size; off += piece)
      b.chunks.push_back(g_bytes_new_from_bytes(bytes, off, std::min(piece, size - off)));
    b.complete = true;
    stats_.cache_hits++;
    SegmentDone done;
    done.index = n;
    done.bytes = size;
    done.source = SegmentDone::Source::Cache;
    segment_done(done);
    if (n == 0 && stats_.time_to_first_byte_us < 0)
      stats_.time_to_first_byte_us = now_us() - start_us_;
  }
  g_bytes_unref(bytes);
  cond_.notify_all();
  return true;
}

// The cache failed (full disk, unwritable folder...): go on without it.
void Downloader::cache_failed(const std::string &why) {
  cache_.reset();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.faults++;
  }
  for (auto &entry : jobs_) entry.second->writer.reset();
  SEGDL_ENGINE_LOG(GST_LEVEL_WARNING, "cache off: %s", why.c_str());
  EngineWarning w;
  w.kind = EngineWarning::Kind::Cache;
  w.uri = cfg_.cache.dir;
  w.cause = why;
  warn(std::move(w));
}

// Once the track is fully known, the cache remembers it: a later run with
// every segment cached needs no status.
void Downloader::remember_track() {
  if (!cache_ || track_remembered_ || !progress_.end()) return;
  CachedTrack ct;
  ct.total = progress_.end();
  ct.complete = true;
  const Status &st = progress_.last();
  if (st.duration) ct.duration = *st.duration;
  if (st.first_segment_duration) ct.first_segment_duration = *st.first_segment_duration;
  if (st.segment_duration) ct.segment_duration = *st.segment_duration;
  ct.mime_type = st.mime_type;
  track_remembered_ = true;
  cache_async([ct](Cache &c, std::string &error) { return c.write_track(ct, error); });
}

// Runs `work` on the cache worker (the disk never stalls the HTTP thread);
// a failure comes back to the HTTP thread and turns the cache off.
void Downloader::cache_async(std::function<bool(Cache &, std::string &)> work) {
  if (!cache_ || !cache_worker_) return;
  std::shared_ptr<Cache> cache = cache_;
  cache_worker_->run([this, cache, work] {
    std::string error;
    if (!work(*cache, error))
      post([this, error] {
        if (cache_) cache_failed(error);
      });
  });
}

}  // namespace segdl
