// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's ordered buffer: what the consumer pops, in segment
 * order, the buffering level, seeks, the fallback switch and the events
 * queue (see downloader.cpp). Consumer side; everything here is under mu_.
 */
#include "segdl/downloader.h"
#include "segdl/downloader-jobs.h"

#include "segdl/urls.h"
#include "segdl/log.h"

#include <algorithm>
#include <cinttypes>

namespace segdl {

Downloader::Item Downloader::pop(std::chrono::milliseconds max_wait) {
  auto deadline = std::chrono::steady_clock::now() + max_wait;
  std::unique_lock<std::mutex> lock(mu_);
  Item item = pop_locked(lock, deadline);
  // Time spent waiting for the backend counts against max-wait.
  if (item.kind == Item::Kind::Timeout)
    wait_budget_.starve(now_us());
  else
    wait_budget_.feed(now_us());
  return item;
}

Downloader::Item Downloader::pop_locked(std::unique_lock<std::mutex> &lock,
                                        std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    Item item;
    if (flushing_) {
      item.kind = Item::Kind::Flushing;
      return item;
    }
    // Nothing leaves before the first status says what the track is (a
    // track of 0 segments must not output the start of segment 0).
    if (!track_known_ && !fatal_ && !fallback_started_) {
      if (cond_.wait_until(lock, deadline) == std::cv_status::timeout) return item;
      continue;
    }
    // The end of the stream comes after every event before it is posted:
    // the caller takes the events, then pops again.
    const bool events_pending = !events_.empty();
    if (end_ && consumer_ >= *end_) {
      if (events_pending) return item;  // Timeout
      item.kind = Item::Kind::Eos;
      stats_.complete = stats_.gaps == 0;
      return item;
    }
    // No status ever came: its verdict (the backend unreachable, the id
    // unknown) is the error, whatever segment 0 met meanwhile: one cause,
    // one error, whatever the timing.
    auto it = !track_known_ && fatal_ ? buf_.end() : buf_.find(consumer_);
    if (it != buf_.end()) {
      Buffered &b = it->second;
      if (!b.chunks.empty()) {
        item.kind = Item::Kind::Data;
        item.bytes = b.chunks.front();
        b.chunks.pop_front();
        item.segment = consumer_;
        item.segment_offset = b.popped;
        b.popped += g_bytes_get_size(item.bytes);
        return item;
      }
      if (b.complete) {
        buf_.erase(it);
        consumer_++;
        stats_.current_segment = consumer_;
        if (!wake_pending_.exchange(true)) {
          lock.unlock();
          post([this] { schedule(); });
          lock.lock();
        }
        continue;
      }
      if (b.error) {
        if (cfg_.missing_segment == MissingSegment::Gap) {
          item.kind = Item::Kind::Gap;
          item.segment = consumer_;
          item.error = *b.error;
          for (GBytes *c : b.chunks) g_bytes_unref(c);
          buf_.erase(it);
          consumer_++;
          stats_.current_segment = consumer_;
          stats_.gaps++;
          if (!wake_pending_.exchange(true)) {
            lock.unlock();
            post([this] { schedule(); });
            lock.lock();
          }
          return item;
        }
        if (cfg_.missing_segment == MissingSegment::Fallback && switch_to_fallback(lock, *b.error))
          continue;
        if (events_pending) return item;  // Timeout
        item.kind = Item::Kind::Error;
        item.error = *b.error;
        return item;
      }
    }
    if (fatal_) {
      if (switch_to_fallback(lock, *fatal_)) continue;
      if (events_pending) return item;  // Timeout
      item.kind = Item::Kind::Error;
      item.error = *fatal_;
      if (item.error.segment < 0) item.error.segment = consumer_;
      return item;
    }
    if (tail_news_) {  // a tail the consumer waits for came: Timeout, once
      tail_news_ = false;
      return item;
    }
    if (cond_.wait_until(lock, deadline) == std::cv_status::timeout) {
      item.kind = Item::Kind::Timeout;
      return item;
    }
  }
}

// The consumer reached an error it cannot go past: with a fallback URL (and
// not already on it), switch there instead of failing. Called with mu_ held
// (through `lock`); the HTTP thread does the rest.
bool Downloader::switch_to_fallback(std::unique_lock<std::mutex> &lock, EngineError why) {
  // `why` is a copy: it usually lives in buf_ or fatal_, both cleared here.
  if (cfg_.fallback_uri.empty() || fallback_started_) return false;
  fallback_started_ = true;
  generation_++;
  for (auto &entry : buf_)
    for (GBytes *b : entry.second.chunks) g_bytes_unref(b);
  buf_.clear();
  consumer_ = kFallbackSegment;
  end_ = kFallbackSegment + 1;
  fatal_.reset();
  stats_.fallback = true;
  lock.unlock();
  post([this, why] { start_fallback(why); });
  lock.lock();
  return true;
}

bool Downloader::wait_change(std::chrono::milliseconds max_wait) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!flushing_) cond_.wait_for(lock, max_wait);
  return !flushing_;
}

Downloader::Level Downloader::level() {
  std::lock_guard<std::mutex> lock(mu_);
  Level lv;
  const bool can_fall_back = !cfg_.fallback_uri.empty() && !fallback_started_;
  if (flushing_) lv.can_finish = true;
  if (fatal_) {
    lv.can_finish = true;
    lv.ends_in_error = !can_fall_back;
  }
  for (int64_t n = consumer_;; n++) {
    if (end_ && n >= *end_) {
      lv.can_finish = true;
      break;
    }
    if (n >= consumer_ + window_size()) {
      lv.window_full = true;
      break;
    }
    auto it = buf_.find(n);
    if (it == buf_.end()) {
      // Nothing of segment n yet, and the backend has not made it yet.
      lv.backend_bound = status_seen_ && !fallback_started_ && !listed_ready_.count(n);
      break;
    }
    for (GBytes *b : it->second.chunks) lv.bytes_ahead += g_bytes_get_size(b);
    if (it->second.error) {
      lv.can_finish = true;
      lv.ends_in_error = cfg_.missing_segment == MissingSegment::Error ||
                         (cfg_.missing_segment == MissingSegment::Fallback && !can_fall_back);
      break;
    }
    if (!it->second.complete) break;
  }
  return lv;
}

void Downloader::set_flushing(bool flushing) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    flushing_ = flushing;
  }
  cond_.notify_all();
}

void Downloader::seek(int64_t segment) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_++;
    for (auto &entry : buf_)
      for (GBytes *b : entry.second.chunks) g_bytes_unref(b);
    buf_.clear();
    consumer_ = segment < 0 ? 0 : segment;
    stats_.current_segment = consumer_;
  }
  cond_.notify_all();
  post([this] { restart_jobs(); });
}

// Queues a WARNING for the application (posted from its streaming thread).
void Downloader::warn(EngineWarning w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    EngineEvent ev;
    ev.kind = EngineEvent::Kind::Warning;
    ev.warning = std::move(w);
    events_.push_back(std::move(ev));
  }
  cond_.notify_all();
}

// A segment is whole in the buffer: count it once (a segment fetched again
// after a seek is not a new one) and queue its event. mu_ held.
void Downloader::segment_done(const SegmentDone &done) {
  if (done.index >= 0) segments_whole_.insert(done.index);
  stats_.segments_downloaded = int64_t(segments_whole_.size());
  static const char *const kSources[] = {"network", "cache", "fallback"};
  SEGDL_ENGINE_LOG(GST_LEVEL_INFO,
                   "segment %" G_GINT64_FORMAT " whole: %" G_GUINT64_FORMAT
                   " bytes from the %s in %.3f s, %d retries",
                   done.index, done.bytes, kSources[int(done.source)], done.seconds, done.retries);
  EngineEvent ev;
  ev.kind = EngineEvent::Kind::Segment;
  ev.segment = done;
  ev.segments_total = end_ && !fallback_started_ ? *end_ : stats_.segments_total;
  ev.segments_done = stats_.segments_downloaded;
  events_.push_back(std::move(ev));
}

std::deque<EngineEvent> Downloader::take_events() {
  std::lock_guard<std::mutex> lock(mu_);
  std::deque<EngineEvent> out;
  out.swap(events_);
  return out;
}

int64_t Downloader::track_duration_ns() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_.track_duration_ns();
}

EngineStats Downloader::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace segdl
