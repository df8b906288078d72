// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — one upstream segment transfer shared by every client that
 * wants the segment (see fill.cpp). Gateway thread only.
 */
#pragma once

#include "gateway/core.h"
#include "segdl/sniff.h"
#include "segdl/urls.h"

namespace segdl::gateway {

// The download of segment `n` of `id` from the upstream into the cache.
// Clients either stream it as it arrives (subscribe) or get the whole body
// once it is complete (on_finish: Range, HEAD, preload). A client that goes
// away cancels nothing: the transfer goes on for the cache and the others.
// Transient faults (connect, timeout, broken body, 500/502/504) are retried
// with backoff, resuming with a Range request from the bytes already held;
// only a whole, size-checked body is committed to the cache. Nothing that is
// not audio is sent or cached: clients get the head only once the first bytes
// pass check_segment() (of the track's form: of segment 0 as fetched, or as
// cached, verified, after a restart), and
// the last byte of a body of known length only once the whole body passed it
// (an MP4 cut short is only seen whole): a body refused then cuts the
// clients that had its start, never ends as a whole answer.
class Fill : public FetchListener {
 public:
  Fill(Gateway::Impl &gw, std::string id, int64_t n);
  ~Fill() override;

  const std::string &id() const { return id_; }
  int64_t segment() const { return n_; }
  bool started() const { return started_; }
  void start();                            // first attempt (called by the queue)
  void subscribe(SoupServerMessage *msg);  // stream the body to this client
  void on_finish(FillCallback cb);         // called once, when the fill ends
  void abandon();                          // gateway stopping: cancel, answer no one
  void form_known();                       // the track's form was learnt (or not): check on

  void on_response(const FetchResponse &resp) override;
  void on_data(GBytes *chunk) override;
  void on_done(FetchError error, const std::string &message) override;

 private:
  struct Sub {
    Fill *fill = nullptr;
    SoupServerMessage *msg = nullptr;  // strong ref
    gulong finished_id = 0, disconnected_id = 0;
    bool head_sent = false;
  };

  void attempt();
  void open_writer();
  void send_head(Sub *s);
  void detach(Sub *s);
  static void on_client_gone(SoupServerMessage *msg, gpointer data) noexcept;
  void retry_or_fail(Outcome why, bool transient);
  void succeed();
  void fail(const Outcome &why);
  void end(const Outcome &outcome, GBytes *bytes, const Entity &meta);
  static gboolean on_retry_timer(gpointer data) noexcept;
  bool accept_head(const FetchResponse &resp, std::string &why);
  bool sniff(const guint8 *data, gsize size, bool whole);  // false once refused (failed)
  void append_held(Sub *s);  // every byte held, bar a complete body's last
  void refuse(const std::string &why);

  Gateway::Impl &gw_;
  const std::string id_;
  const int64_t n_;
  bool started_ = false, ended_ = false;
  bool writing_ = false;   // counted in Counters::fills_writing
  uint64_t fetch_id_ = 0;  // 0 when no transfer is running
  int attempts_ = 0;
  GSource *retry_timer_ = nullptr;
  // The response head of the first attempt (what clients are told).
  bool have_head_ = false;
  int64_t total_ = -1;  // Content-Length of the whole segment, -1 unknown
  std::string content_type_, last_modified_;
  // This attempt.
  int bad_status_ = 0;  // non-2xx answer of this attempt
  int retry_after_s_ = -1;
  uint64_t skip_ = 0;  // bytes of this attempt's body already held
  // The body so far (bounded by max_segment_bytes).
  std::vector<GBytes *> chunks_;
  uint64_t received_ = 0;
  GChecksum *sum_ = nullptr;
  // check_segment(): its verdict so far, and the first bytes until it is Audio.
  bool checked_ = false;
  GByteArray *head_ = nullptr;
  MediaForm form_ = MediaForm::Unknown;
  bool form_wait_ = false;        // the track's form is being learnt: no verdict before it
  bool done_wait_ = false;        // the body ended whole meanwhile
  std::unique_ptr<Cache> cache_;  // holds the track (evict never removes it meanwhile)
  std::unique_ptr<SegmentWriter> writer_;
  std::vector<Sub *> subs_;
  std::vector<FillCallback> waiters_;
};

constexpr size_t kMaxStatusBytes = 1024 * 1024;
constexpr size_t kMaxStatusFailures = 1024;  // ids in Impl::status_failed, at most

// One status request to the upstream; every caller asking meanwhile waits on it.
class StatusFetch : public FetchListener {
 public:
  StatusFetch(Gateway::Impl &gw, std::string id) : gw_(gw), id_(std::move(id)) {}
  ~StatusFetch() override {
    if (fetch_id_) gw_.fetcher->cancel(fetch_id_);
  }

  void start() {
    FetchRequest req;
    req.url = status_url(gw_.opts.upstream, id_);
    gw_.count(&Counters::upstream_status);
    fetch_id_ = gw_.fetcher->start(req, this);
  }
  void wait(StatusCallback cb) { waiters_.push_back(std::move(cb)); }
  const std::string &id() const { return id_; }

  void on_response(const FetchResponse &resp) override {
    http_status_ = resp.http_status;
    coding_ = unasked_coding(resp);
  }
  void on_data(GBytes *chunk) override {
    gsize size = 0;
    const char *d = static_cast<const char *>(g_bytes_get_data(chunk, &size));
    if (body_.size() + size > kMaxStatusBytes) {
      too_big_ = true;
      return;
    }
    body_.append(d, size);
  }
  void on_done(FetchError error, const std::string &message) override {
    fetch_id_ = 0;
    Outcome out = judge(error, message);
    std::vector<StatusCallback> waiters;
    waiters.swap(waiters_);
    if (out.ok) gw_.known[id_] = KnownTrack{status_, g_get_monotonic_time()};
    // Why the upstream's status failed, for /listen (whose segdlsrc sees
    // only this gateway's 502); a later answer of the upstream clears it.
    if (out.ok || out.http_status == 404) {
      gw_.status_failed.erase(id_);
    } else {
      if (gw_.status_failed.size() >= kMaxStatusFailures) gw_.status_failed.clear();
      gw_.status_failed[id_] = out;
    }
    gw_.status_ended(this);  // `this` now belongs to the graveyard
    for (StatusCallback &cb : waiters) cb(out, status_);
  }

 private:
  Outcome judge(FetchError error, const std::string &message) {
    const std::string what = "status of " + id_;
    if (error == FetchError::Timeout)
      return {false, 504, "upstream_timeout", what + ": " + message};
    if (error != FetchError::None)
      return {false, 502, error == FetchError::Connect ? "upstream_unreachable" : "upstream_broken",
              what + ": " + fetch_error_name(error) + ": " + message};
    if (http_status_ == 404) return {false, 404, "not_found", what + ": unknown upstream"};
    if (http_status_ != 200)
      return {false, 502, "upstream_error",
              what + ": upstream answered " + std::to_string(http_status_)};
    if (!coding_.empty())
      return {false, 502, "upstream_bad_encoding",
              what + ": the upstream answered with Content-Encoding " + coding_};
    std::string why;
    if (too_big_ || !parse_status(body_.data(), body_.size(), status_, why))
      return {false, 502, "upstream_bad_status",
              what + ": " + (too_big_ ? std::string("body too large") : why)};
    return {true};
  }

  Gateway::Impl &gw_;
  const std::string id_;
  uint64_t fetch_id_ = 0;
  int http_status_ = 0;
  bool too_big_ = false;
  std::string coding_;  // an unasked Content-Encoding of the answer
  std::string body_;
  Status status_;
  std::vector<StatusCallback> waiters_;
};

// A preload job (preload.cpp).
struct Preload {
  std::string id;
  int pending = 0;          // fills of this round not yet ended
  int idle_polls = 0;       // polls in a row that brought nothing new
  bool progressed = false;  // this round queued something
  GSource *timer = nullptr;

  ~Preload() {
    if (timer) {
      g_source_destroy(timer);
      g_source_unref(timer);
    }
  }
};

}  // namespace segdl::gateway
