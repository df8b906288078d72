// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — what the parts of the download engine share (private to
 * gst/segdl/downloader*.cpp): the request records of the HTTP thread.
 *
 * A Job is one segment's request and its lifetime, owned by
 * Downloader::jobs_ (one owner): its `phase` is its state (Idle: may be
 * started; Fetching: a transfer runs, fetch_id names it; Waiting: a timer
 * will make it Idle; Done; Failed). A Job is only destroyed through
 * Downloader::drop_job(), which cancels its transfer first, so no Fetcher
 * callback can reach a freed Job. The StatusJob is the status request in
 * flight (at most one).
 */
#pragma once

#include "segdl/downloader.h"

#include <glib.h>

#include <string>

namespace segdl {

// Destroys a timer we hold a ref on, if any.
inline void clear_source(GSource *&src) {
  if (!src) return;
  g_source_destroy(src);
  g_source_unref(src);
  src = nullptr;
}

inline std::string http_cause(const FetchResponse &r) {
  return "HTTP " + std::to_string(r.http_status) + (r.reason.empty() ? "" : " " + r.reason);
}

// One segment being fetched (HTTP thread only).
struct Downloader::Job final : FetchListener {
  enum class Phase { Idle, Fetching, Waiting, Done, Failed };

  Downloader *dl = nullptr;
  int64_t n = 0;
  Phase phase = Phase::Idle;
  uint64_t fetch_id = 0;
  int failures = 0;                 // failed attempts so far
  int64_t first_start_us = -1;      // when its first attempt started
  int64_t not_ready_since_us = -1;  // first "not yet" answer while listed
  bool waits_unlisted = false;      // Waiting after a "not yet" while the status did not list it
  int64_t received = 0;             // bytes of the segment handed to the buffer
  int64_t expected = -1;            // size of the whole segment, once known
  int64_t skip = 0;                 // bytes to drop from the current response (resume answered 200)
  uint64_t generation = 0;          // Downloader::generation_ when the job was made
  std::unique_ptr<SegmentWriter> writer;  // the segment going to the disk cache
  SegmentInfo info;                       // what the response said, for the cache
  // The first bytes, held until check_segment() passes them; then `checked`
  // and the rest goes straight to the buffer. `refused`: copies found not
  // audio (one more is fetched, then missing-segment decides).
  GByteArray *head = nullptr;
  bool checked = false;
  int refused = 0;
  // This attempt's body has no length (chunked): all of it is held until it
  // has ended and the worker says it is whole (check_held_body(); its token,
  // from Downloader::held_checks_, in end_check while it runs, else 0).
  bool hold_whole = false;
  uint64_t end_check = 0;
  // Waiting for the cache worker's read of its cached copy (a token; 0
  // none), and whether that copy failed to read or verify (the network's turn).
  uint64_t cache_read = 0;
  bool cache_unreadable = false;
  GSource *timer = nullptr;  // Waiting: makes it Idle
  GSource *stall = nullptr;  // Fetching: stall-timeout, checked against last_byte_us
  int64_t last_byte_us = 0;  // when the transfer last made progress (started, head, bytes)
  std::string url;

  void on_response(const FetchResponse &resp) override { dl->job_response(*this, resp); }
  void on_data(GBytes *chunk) override { dl->job_data(*this, chunk); }
  void on_done(FetchError err, const std::string &msg) override { dl->job_done(*this, err, msg); }

  ~Job() override {
    clear_source(timer);
    clear_source(stall);
    if (head) g_byte_array_unref(head);
  }
};

// The status request in flight (HTTP thread only).
struct Downloader::StatusJob final : FetchListener {
  Downloader *dl = nullptr;
  uint64_t fetch_id = 0;
  FetchResponse resp;
  GByteArray *body = g_byte_array_new();
  bool too_large = false;
  std::string url;

  void on_response(const FetchResponse &r) override { resp = r; }
  void on_data(GBytes *chunk) override {
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(chunk, &size));
    if (body->len + size > dl->cfg_.status_limits.max_body_bytes) {
      too_large = true;
      dl->fetcher_->cancel(fetch_id);
      dl->on_status_done(*this, FetchError::None, "");
      return;
    }
    g_byte_array_append(body, data, guint(size));
  }
  void on_done(FetchError err, const std::string &msg) override {
    dl->on_status_done(*this, err, msg);
  }
  ~StatusJob() override { g_byte_array_unref(body); }
};

// One tail request (HTTP thread only; downloader-tail.cpp). Kept until the consumer has passed
// its segment (drop_tails_before()) or a seek/stop cancels it, never freed
// from its own callbacks.
struct Downloader::TailJob final : FetchListener {
  Downloader *dl = nullptr;
  int64_t n = 0;
  uint64_t offset = 0;  // where the bytes begin (a suffix's: from its Content-Range)
  bool suffix = false;  // asked as the last N bytes (prefetch_tail())
  uint64_t fetch_id = 0;
  bool running = false;  // a transfer runs (cancel it when dropped)
  int64_t expected = -1;
  GByteArray *bytes = g_byte_array_new();

  void on_response(const FetchResponse &resp) override { dl->tail_response(*this, resp); }
  void on_data(GBytes *chunk) override { dl->tail_data(*this, chunk); }
  void on_done(FetchError err, const std::string &msg) override { dl->tail_done(*this, err, msg); }
  ~TailJob() override { g_byte_array_unref(bytes); }
};

}  // namespace segdl
