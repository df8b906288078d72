// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the download engine behind segdlsrc.
 *
 * A Downloader owns one HTTP thread (its GMainContext, GMainLoop and the
 * Fetcher, created there) that polls the status, fetches segments up to
 * max_concurrent at a time within a window ahead of the consumer, retries
 * with backoff, and appends the received chunks to an ordered buffer. The
 * consumer (the element's streaming thread) takes the chunks in segment
 * order with pop(); it never touches the network.
 *
 * Memory is bounded: only segments in [consumer, consumer + window) are
 * fetched or held, whatever the length of the track.
 */
#pragma once

#include "segdl/cache.h"
#include "segdl/clock.h"
#include "segdl/cacheworker.h"
#include "segdl/fetcher.h"
#include "segdl/policy.h"
#include "segdl/scheduler.h"
#include "segdl/sniff.h"
#include "segdl/status.h"

#include <glib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

namespace segdl {

// A fault the engine is working around (it retries): for applications to
// show, before the retry happens.
struct EngineWarning {
  enum class Kind { Retry, Cache, Fallback };
  // Cache: the disk cache failed and is off from now on. Fallback: the
  // segmented backend failed for good; the fallback URL takes over.
  Kind kind = Kind::Retry;
  int64_t segment = -1;  // -1: the status request (or the cache as a whole)
  std::string uri;
  int http_status = 0;  // 0 when none
  std::string cause;
  int attempt = 0;       // the attempt that failed, from 1
  int max_attempts = 0;  // max-retries + 1
};

// A segment now whole in the buffer, for the application's progress.
struct SegmentDone {
  enum class Source { Network, Cache, Fallback };
  int64_t index = -1;  // -1 for the fallback URL's full file
  uint64_t bytes = 0;  // its size
  double seconds = 0;  // from its first request to its last byte; 0 from the cache
  Source source = Source::Network;
  int retries = 0;  // failed attempts before it came whole
};

// What the engine has to tell the application. The engine queues events
// (under its lock, never calling out); the element takes them with
// Downloader::take_events() and posts them from its streaming thread, so no
// application code runs on the HTTP thread.
struct EngineEvent {
  enum class Kind { Warning, Segment };
  Kind kind = Kind::Warning;
  EngineWarning warning;        // Warning
  SegmentDone segment;          // Segment
  int64_t segments_total = -1;  // Segment: the track's segments, -1 while unknown
  int64_t segments_done = 0;    // Segment: distinct segments whole so far
};

// Items of the fallback full-file URL carry this segment number.
constexpr int64_t kFallbackSegment = int64_t(1) << 40;

// What to do with a segment that is gone for good (failed after its retries).
enum class MissingSegment {
  Error,     // the stream ends with an ERROR
  Fallback,  // the fallback URL takes over, if there is one; else Error
  Gap,       // skip it: the element leaves a gap (silence) of its duration
};

struct DownloaderConfig {
  std::string backend;   // http(s)://host[:port][/base]
  std::string video_id;  // raw id; percent-encoded in every URL
  int max_concurrent = 3;
  int window = 0;  // segments held or fetched ahead of the consumer; 0 = max_concurrent + 1
  double poll_interval_s = 2.0;
  int max_retries = 3;
  double retry_backoff_s = 1.0;   // first retry delay; doubles per attempt
  unsigned timeout_s = 0;         // per request: seconds it may take in all (0 = no limit)
  unsigned stall_timeout_s = 15;  // seconds without a byte before a transfer is retried
  int64_t max_segment_size = 256 * 1024 * 1024;  // bytes; a bigger segment is an error
  double max_wait_s = 600;  // the track must be complete within this (0 = no limit)
  bool monitor = true;
  double idle_timeout_s = 20;
  std::string user_agent;
  bool ssl_strict = true;
  StatusLimits status_limits;
  CacheConfig cache;  // cache.dir empty = no disk cache
  // The whole track at one URL (the old backend): used, from the position
  // reached, when the segmented backend fails for good. Empty = none.
  std::string fallback_uri;
  MissingSegment missing_segment = MissingSegment::Fallback;
  // Every segment (and the fallback file) passes check_segment() before a
  // byte of it is output or cached: one that is not audio of segment 0's
  // form is fetched once more, then handled by missing_segment. false only
  // for tests that serve made-up bytes.
  bool check_segments = true;
  // ...and every segment is of segment 0's form (container or stream).
  // false when the consumer renegotiates a change of form (join=timeline).
  bool same_form = true;
  // While the backend is still producing the track, ask for the segment
  // after the ready ones before the status lists it (one request at a
  // time, every poll_interval_s / 4 at most, or the server's Retry-After),
  // so it is fetched as soon as it exists (downloader-status.cpp).
  bool speculative_fetch = true;
  // The last N bytes of the segment the consumer reads next (segment 0 at
  // the start, a seek's target) asked with a suffix Range beside its body
  // while the track may be m4a with its moov last (downloader-tail.cpp):
  // first audio in one round trip. 0 = off (only request_tail()).
  int64_t tail_prefetch_bytes = 0;
  // The engine's time and every one of its timers (clock.h); not owned,
  // must outlive the engine. nullptr = system_clock() (real time).
  EngineClock *clock = nullptr;
};

// Why the engine gave up. The element maps `kind` to a GStreamer error code.
struct EngineError {
  using Kind = FailKind;  // see policy.h
  Kind kind = Kind::Failed;
  int64_t segment = -1;  // -1: not about one segment
  std::string uri;
  int http_status = 0;
  std::string message;  // short, for users
  std::string debug;    // details: URL, status, cause, attempts
};

struct EngineStats {
  int64_t segments_total = -1;  // end of the track, -1 while unknown
  int64_t segments_available = 0;
  int64_t segments_downloaded = 0;
  int64_t bytes_downloaded = 0;
  int64_t retries = 0;
  int64_t status_polls = 0;
  int64_t time_to_first_byte_us = -1;  // from start() to the first byte of segment 0
  int64_t current_segment = 0;         // the one the consumer is reading
  int64_t cache_hits = 0;              // segments read from the disk cache
  bool offline = false;                // the whole track came from the cache, no request made
  bool fallback = false;               // the fallback URL took over
  int64_t gaps = 0;                    // segments skipped (missing-segment=gap)
  int64_t resumes = 0;                 // transfers resumed where they broke off (Range)
  int64_t faults = 0;                  // faults met (each retried one, each cache failure)
  bool complete = false;               // the end was reached with every segment (no gap)
  // From the status, when the backend gives them (seconds; < 0 = unknown).
  double duration_s = -1;
  double first_segment_duration_s = -1;
  double segment_duration_s = -1;

  // The track length in ns: the status duration, else the sum of the
  // segment durations once the number of segments is known; -1 if unknown.
  int64_t track_duration_ns() const;
};

class Downloader {
 public:
  // Creates the Fetcher on the HTTP thread (thread-default context pushed).
  using FetcherFactory =
      std::function<std::unique_ptr<Fetcher>(const FetcherConfig &, std::string &error)>;

  struct Item {
    // Gap: `segment` is gone for good and skipped (missing-segment=gap);
    // `error` says why.
    enum class Kind { Data, Eos, Error, Flushing, Timeout, Gap };
    Kind kind = Kind::Timeout;
    GBytes *bytes = nullptr;  // Data: owned by the Item's receiver (unref it)
    int64_t segment = -1;     // Data: which segment; offset within it:
    uint64_t segment_offset = 0;
    EngineError error;  // Error
  };

  struct Level {
    uint64_t bytes_ahead = 0;    // contiguous bytes ready for the consumer
    bool can_finish = false;     // the consumer can run to the end (or to an error) without waiting
    bool ends_in_error = false;  // ...and that end is an ERROR (no fallback, no gap to take)
    // Every byte the backend has produced so far is here: the next segment
    // is not listed ready yet, so waiting longer waits for the backend, not
    // for the network.
    bool backend_bound = false;
    // Every segment of the download window is here, whole: nothing more is
    // fetched until the consumer takes some, so waiting for more bytes
    // would wait forever (a window of small segments holds fewer bytes
    // than a buffer-size).
    bool window_full = false;
  };

  Downloader(DownloaderConfig cfg, FetcherFactory factory);
  ~Downloader();  // stop()
  Downloader(const Downloader &) = delete;
  Downloader &operator=(const Downloader &) = delete;

  // Starts the HTTP thread; returns once it runs (false if the Fetcher
  // could not be made).
  bool start(std::string &error);
  // Cancels every request and joins the HTTP thread. Idempotent.
  void stop();

  // Consumer side (any one thread). Waits at most `max_wait` for the next
  // item in order; Timeout when nothing came in time.
  Item pop(std::chrono::milliseconds max_wait);
  // Waits until the buffer changes (or `max_wait` passes, or flushing).
  // Returns false when flushing.
  bool wait_change(std::chrono::milliseconds max_wait);
  Level level();
  // While flushing, pop() and wait_change() return at once.
  void set_flushing(bool flushing);
  // The consumer could not play segment `n` although its bytes passed
  // check_segment() (no audio stream, no frame, a demuxer error). The first
  // time, n is fetched again from the network (its cached copy removed) and
  // delivered again from its first byte, as after seek(n); the second time
  // it is gone: the next pop() returns it as missing_segment says (Error,
  // Gap, or the fallback's first bytes), never silently skipped.
  void reject_segment(int64_t n, const std::string &why);
  // The consumer left out the rest of segment `n` after part of it was
  // output (a demuxer error mid-segment, missing-segment=gap): it counts as
  // a gap, so the track is not `complete`.
  void segment_cut_short(int64_t n);
  // Restarts delivery at `segment` (a seek): drops what is buffered,
  // cancels the transfers in flight, and fetches from there. The next pop()
  // returns that segment's first bytes (waiting for it if the backend has
  // not produced it yet).
  void seek(int64_t segment);
  EngineStats stats();
  // The events queued since the last call, oldest first (any thread).
  std::deque<EngineEvent> take_events();

  // A segment's tail, fetched apart (downloader-tail.cpp): an MP4 segment
  // whose moov follows its mdat is readable before its body is whole.
  struct Tail {
    enum class State { None, Pending, Ready, Unavailable };
    State state = State::None;  // None: not asked (or dropped by a seek)
    GBytes *bytes = nullptr;    // Ready: the bytes, given once (the taker unrefs them)
    uint64_t offset = 0;        // Ready: where they begin in the segment
    bool waited = false;        // the consumer waits for it (pop() wakes when it comes)
  };
  // Consumer: asks for segment `segment`'s bytes from `offset` to its end
  // (one Range request beside its body), unless a tail from at or before
  // `offset` is asked or came already.
  void request_tail(int64_t segment, uint64_t offset);
  // Consumer: the tail's state; Ready hands its bytes over (from `offset`,
  // which may lie before the one asked: a suffix fetched with the body).
  // Unavailable: the server ignores Range or the request failed; read the
  // whole segment. wait_change() wakes when it changes, and pop() returns
  // Timeout early when a tail the consumer waits for (Pending when taken)
  // comes.
  Tail take_tail(int64_t segment);
  // EngineStats::track_duration_ns() without copying the stats.
  int64_t track_duration_ns();

 private:
  struct Job;
  struct StatusJob;
  struct TailJob;
  struct Buffered {
    std::deque<GBytes *> chunks;
    uint64_t popped = 0;  // bytes already given to the consumer
    bool complete = false;
    std::optional<EngineError> error;
  };

  // HTTP thread.
  void thread_main(std::promise<std::string> *started);
  void schedule();
  void start_job(Job &job);
  void poll_status();
  void on_status_done(StatusJob &sj, FetchError err, const std::string &msg);
  void on_status_failure(const std::string &why, const std::string &debug, int http_status,
                         EngineError::Kind kind, bool retry);
  void after_status();
  void start_polling();
  void arm_poll_tick();
  void poll_tick();
  void job_response(Job &job, const FetchResponse &resp);
  void job_data(Job &job, GBytes *chunk);
  void job_done(Job &job, FetchError err, const std::string &msg);
  void job_ended(Job &job, FetchError err, const std::string &msg, GBytes *held);
  SniffResult::Verdict job_check(Job &job, GBytes *chunk, bool whole, GBytes **out);
  void hand_over(Job &job, GBytes *keep);
  void check_held_body(Job &job);
  void held_body_checked(int64_t n, uint64_t token, GBytes *body, const std::string &why);
  CacheWorker &worker();
  void job_refused(Job &job, const std::string &why);
  bool cached_is_audio(int64_t n, GBytes *bytes);
  Job &job_for(int64_t n);
  void refetch(int64_t n, const std::string &why, bool gone);
  void job_failed(Job &job, EngineError::Kind kind, int http_status, const std::string &cause,
                  int retry_after_s, bool transient);
  void job_not_ready(Job &job, int retry_after_s);
  int64_t not_ready_grace_us() const;
  void wait_then_retry(Job &job, int64_t delay_us);
  void arm_stall(Job &job, int64_t at_us);
  void job_stalled(Job &job);
  void open_cache();
  bool deliver_cached(int64_t n);
  void cached_read_done(int64_t n, uint64_t token, uint64_t generation, GBytes *bytes,
                        const std::string &error);
  void cache_failed(const std::string &why);
  void cache_async(std::function<bool(Cache &, std::string &)> work);
  void remember_track();
  void start_fallback(EngineError reason);
  bool switch_to_fallback(std::unique_lock<std::mutex> &lock, EngineError why);
  void set_fatal(EngineError e);
  void publish_end();
  void start_tail(int64_t segment, int64_t from);
  void prefetch_tail(const Job &job);
  void tail_response(TailJob &tj, const FetchResponse &resp);
  void tail_data(TailJob &tj, GBytes *chunk);
  void tail_done(TailJob &tj, FetchError err, const std::string &msg);
  void finish_tail(TailJob &tj, bool ok, const std::string &why);
  void drop_tails_before(int64_t segment);
  bool speculative_candidate(int64_t n) const;
  // Segments held or fetched ahead of the consumer (cfg_.window, or
  // max_concurrent + 1).
  int window_size() const { return cfg_.window > 0 ? cfg_.window : cfg_.max_concurrent + 1; }
  int64_t unlisted_retry_delay_us(int retry_after_s) const;
  void wake_listed_waiters();
  void check_max_wait();
  void arm_max_wait(int64_t delay_us);
  int64_t now_us() const;
  Item pop_locked(std::unique_lock<std::mutex> &lock,
                  std::chrono::steady_clock::time_point deadline);
  GSource *add_timer(int64_t delay_us, std::function<void()> fn);
  GSource *add_timer_at(int64_t at_us, std::function<void()> fn);
  void post(std::function<void()> fn);
  void warn(EngineWarning w);
  void segment_done(const SegmentDone &done);
  void teardown();
  void cancel_everything();
  std::map<int64_t, std::unique_ptr<Job>>::iterator drop_job(
      std::map<int64_t, std::unique_ptr<Job>>::iterator it);
  void restart_jobs();
  double jitter();

  const DownloaderConfig cfg_;
  const FetcherFactory factory_;
  EngineClock *const clock_;  // cfg_.clock or system_clock(); any thread
  std::thread thread_;
  bool started_ = false;  // start()/stop() caller only

  // The HTTP thread's context: made and freed by that thread; post() from
  // any thread reads it under context_lock_.
  std::mutex context_lock_;
  // HTTP thread only.
  GMainContext *context_ = nullptr;
  GMainLoop *loop_ = nullptr;
  std::unique_ptr<Fetcher> fetcher_;
  std::map<int64_t, std::unique_ptr<Job>> jobs_;
  std::unique_ptr<StatusJob> status_job_;
  std::map<int64_t, std::unique_ptr<TailJob>> tail_jobs_;  // by segment
  GSource *poll_timer_ = nullptr;                          // a failed status poll's retry (backoff)
  GSource *poll_tick_ = nullptr;                           // the fixed-rate poll's next tick
  // When poll_tick_ is due: the first poll's start + k * poll-interval.
  int64_t poll_due_us_ = 0;
  GSource *max_wait_timer_ = nullptr;
  GSource *status_deadline_ = nullptr;  // the status request's stall-timeout
  TrackProgress progress_;
  std::shared_ptr<Cache> cache_;  // null when off or failed; shared with cache_worker_'s tasks
  // The worker thread: fsync, track record, eviction, cached reads, the end
  // check of bodies held whole. Made at start with a cache, else on first use.
  std::unique_ptr<CacheWorker> cache_worker_;
  bool track_remembered_ = false;
  uint64_t held_checks_ = 0;  // the last token check_held_body() gave a job's end_check
  uint64_t cache_reads_ = 0;  // the last token deliver_cached() gave a job's cache_read
  // The form of the first segment that passed check_segment().
  MediaForm track_form_ = MediaForm::Unknown;
  bool verifying_record_ = false;  // one status checks the cache's record of a whole track
  bool fallback_mode_ = false;     // HTTP thread: only the fallback job runs
  int status_failures_ = 0;        // consecutive
  bool stopping_ = false;          // teardown has begun
  int64_t start_us_ = 0;
  uint32_t rng_ = 0x9e3779b9u;

  // Shared with the consumer, protected by mu_.
  std::mutex mu_;
  std::condition_variable cond_;
  std::map<int64_t, Buffered> buf_;  // segments from consumer_ on
  int64_t consumer_ = 0;             // the segment the consumer is reading
  uint64_t generation_ = 0;          // bumped by seek(); older jobs' data is dropped
  std::optional<int64_t> end_;       // segments in the track, once known
  std::optional<EngineError> fatal_;
  bool flushing_ = false;
  bool track_known_ = false;       // a status (or the cache) said what the track is
  bool status_seen_ = false;       // a status came: listed_ready_ is the backend's word
  std::set<int64_t> listed_ready_;  // the segments the backend listed ready (level())
  WaitBudget wait_budget_;         // max-wait: the consumer's time waiting for the backend
  bool fallback_started_ = false;  // the switch happened (at most once)
  EngineStats stats_;
  std::deque<EngineEvent> events_;    // for take_events()
  std::set<int64_t> segments_whole_;  // distinct segments completed (stats, events)
  std::map<int64_t, Tail> tails_;     // request_tail()'s segments, by segment
  bool tail_news_ = false;            // a tail the consumer waits for came: pop() returns
  bool ranges_refused_ = false;       // a tail was answered 200: no more tails
  bool tails_wanted_ = false;         // the consumer asked for a tail: the moov comes last
  // Segments the consumer could not play (reject_segment()).
  std::set<int64_t> rejected_;

  std::atomic<bool> wake_pending_{false};  // a reschedule is already posted
};

}  // namespace segdl
