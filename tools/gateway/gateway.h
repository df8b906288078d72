// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the music app's segment API on the segdl core (library
 * behind the segdl-gateway program and its tests).
 *
 * A libsoup 3 SoupServer on its own thread and GMainContext. Every request is
 * answered from the disk cache first, then from the segmented upstream
 * (segments fetched once however many clients ask, streamed to them while
 * they are written atomically into the cache), then, for whole tracks, from
 * the old full-file backend. Responses carry standard HTTP caching headers so
 * that nginx, Varnish or a CDN can front several gateways. See docs/gateway.md.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace segdl::gateway {

struct Options {
  std::string upstream;           // segmented backend, http(s)://host[:port][/path]
  std::string fallback_upstream;  // old full-file backend (empty = none)
  std::string cache_dir;          // required
  std::string host = "127.0.0.1";
  int port = 8090;              // 0 = pick a free one
  int max_concurrent = 4;       // upstream segment downloads at once, all tracks together
  uint64_t cache_max_size = 0;  // bytes, 0 = no limit
  int64_t cache_max_age_s = 0;  // seconds, 0 = no limit
  std::string admin_token;      // DELETE /api/segments/cache needs "Bearer TOKEN"; empty = refused
  std::string id_pattern = "^[A-Za-z0-9_-]{11}$";  // a GRegex every video id must match
  int max_retries = 3;                             // per upstream transfer, for transient faults
  int retry_backoff_ms = 250;                      // first retry delay; doubles per attempt
  unsigned timeout_s = 15;                         // upstream: seconds without progress
  int64_t max_segment_bytes = 64 * 1024 * 1024;    // a bigger upstream segment is an error
  int segment_max_age_s = 31536000;                // Cache-Control max-age of whole segments
  int status_max_age_s = 1;                        // of the status of a track still produced
  int complete_status_max_age_s = 60;              // of the status of a complete track
  int preload_poll_ms = 2000;                      // status polls of a preload job
  int preload_max_idle_polls = 10;                 // polls with nothing new before a job gives up
  // Bytes a /listen or whole-track answer may hold for a slow client (made but
  // not yet written to its socket); above it the producer pauses. 4 KiB..1 GiB
  // (--max-client-queue).
  int64_t max_client_queue_bytes = 1024 * 1024;
};

// What a test or an operator can read of a running gateway.
struct Counters {
  uint64_t requests = 0;           // HTTP requests received
  uint64_t upstream_segments = 0;  // upstream segment transfers started (retries included)
  uint64_t upstream_status = 0;    // upstream status requests
  uint64_t upstream_full = 0;      // upstream / fallback full-track requests
  uint64_t cache_hits = 0;         // segments answered from the cache
  uint64_t joined_fills = 0;       // clients attached to a transfer already running
  uint64_t file_reads = 0;         // reads (at most 64 KiB) of cache files for answers
  uint64_t file_checks = 0;        // cache files hashed whole before they were served
  int fills_running = 0;           // upstream segment transfers in flight now
  int fills_pending = 0;           // queued or running
  int fills_writing = 0;           // transfers writing into the cache (their track locked)
  int preloads = 0;                // preload jobs not finished
  int listeners = 0;               // /listen pipelines running
  int producers_paused = 0;        // /listen or whole-track producers waiting for a slow client
  int64_t max_client_queue = 0;    // the most bytes ever held for one client
};

class Gateway {
 public:
  explicit Gateway(Options opts);
  ~Gateway();  // stops
  Gateway(const Gateway &) = delete;
  Gateway &operator=(const Gateway &) = delete;

  // Checks the options, listens and starts the server thread; returns once it
  // accepts connections. False with `error`.
  bool start(std::string &error);
  void stop();  // idempotent: cancels transfers, closes connections, joins

  int port() const;
  std::string base_url() const;  // "http://HOST:PORT"
  Counters counters() const;
  // Waits until no upstream segment transfer is running or queued and no
  // preload job is left. False on timeout.
  bool wait_idle(int timeout_ms) const;
  // Waits until `pred` holds for the counters (checked on every change).
  bool wait_for(const std::function<bool(const Counters &)> &pred, int timeout_ms) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when `id` matches `pattern` (a GRegex), has no NUL and at most 256 bytes.
bool valid_video_id(const std::string &id, const std::string &pattern);

}  // namespace segdl::gateway
