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

// Segment n from the disk cache, if it is there. HTTP thread. Its record
// is looked at here (a stat and the small meta file); the file is read and
// its SHA-256 checked on the cache worker, so the HTTP thread, which serves
// every transfer, never reads or hashes a whole segment. The job waits
// (Waiting, no timer) until cached_read_done() has the answer. True when a
// read started.
bool Downloader::deliver_cached(int64_t n) {
  auto it = jobs_.find(n);
  if (it != jobs_.end() && it->second->cache_unreadable) return false;
  SegmentInfo info;
  std::string path;
  if (!cache_->locate(n, info, path)) return false;
  Job &job = job_for(n);
  const uint64_t token = ++cache_reads_;
  job.phase = Job::Phase::Waiting;
  job.cache_read = token;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation = generation_;
  }
  cache_worker_->run([this, n, token, generation, info, path] {
    std::string error;
    GBytes *read = Cache::read_verified(n, path, info, error);
    // Owned by the posted call, freed with it if it never runs (teardown).
    std::shared_ptr<GBytes> bytes(read, [](GBytes *b) {
      if (b) g_bytes_unref(b);
    });
    post([this, n, token, generation, bytes, error] {
      cached_read_done(n, token, generation, bytes.get(), error);
    });
  });
  return true;
}

// HTTP thread: the cache worker read segment n (`bytes`, verified) or could
// not (nullptr: its copy is gone or unreadable; the network's turn).
// `generation`: generation_ when the read started.
void Downloader::cached_read_done(int64_t n, uint64_t token, uint64_t generation, GBytes *bytes,
                                  const std::string &error) {
  if (stopping_) return;
  auto it = jobs_.find(n);
  // Dropped meanwhile (a seek, a refetch): another job or none stands there.
  if (it == jobs_.end() || it->second->cache_read != token) return;
  Job &job = *it->second;
  job.cache_read = 0;
  bool obsolete;  // a seek since the read started cleared the buffer: read again
  {
    std::lock_guard<std::mutex> lock(mu_);
    obsolete = generation != generation_;
  }
  if (!bytes || obsolete || !cached_is_audio(n, bytes)) {
    if (!bytes)
      SEGDL_ENGINE_LOG(GST_LEVEL_INFO, "segment %s: cached copy not used: %s",
                       std::to_string(n).c_str(), error.c_str());
    job.cache_unreadable = !obsolete;
    job.phase = Job::Phase::Idle;
    schedule();
    return;
  }
  job.phase = Job::Phase::Done;
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
  cond_.notify_all();
  schedule();
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

// HTTP thread. The worker thread for work kept off the HTTP thread: the
// cache's (made by open_cache()), else made here on first use (the end
// check of a body held whole, downloader-check.cpp).
CacheWorker &Downloader::worker() {
  if (!cache_worker_) cache_worker_ = std::make_unique<CacheWorker>();
  return *cache_worker_;
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
