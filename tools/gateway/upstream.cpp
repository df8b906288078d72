// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the other upstream transfers: status documents (one
 * request per id at a time, whoever asks) and whole tracks (the segmented
 * upstream's full-track endpoint, then the old backend), proxied to one
 * client each.
 */
#include "gateway/fill.h"
#include "segdl/urls.h"

#include <gio/gio.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace segdl::gateway {

void Gateway::Impl::fetch_status(const std::string &id, StatusCallback cb) {
  auto it = status_fetches.find(id);
  if (it == status_fetches.end()) {
    auto s = std::make_unique<StatusFetch>(*this, id);
    StatusFetch *raw = s.get();
    status_fetches.emplace(id, std::move(s));
    raw->wait(std::move(cb));
    raw->start();
    return;
  }
  it->second->wait(std::move(cb));
}

void Gateway::Impl::status_ended(StatusFetch *s) {
  auto it = status_fetches.find(s->id());
  if (it == status_fetches.end() || it->second.get() != s) return;
  bury(std::move(it->second));
  status_fetches.erase(it);
}

// ---- whole tracks ------------------------------------------------------------

// Proxies one client's whole-track request: the segmented upstream's
// full-track endpoint first, the fallback (old) backend when that fails
// before any byte was sent. "Range: bytes=N-" is passed on; other ranges are
// ignored (200, as HTTP allows). The client going away cancels the transfer
// (nobody else needs it). A slow client pauses the transfer: once more than
// max_client_queue_bytes wait for it, the upstream request is cancelled, and
// resumed with "Range: bytes=N-" from the next byte when half of that is
// written (a resumed answer that is not the same entity cuts the client).
class FullProxy : public FetchListener {
 public:
  FullProxy(Gateway::Impl &gw, SoupServerMessage *msg, std::string id)
      : gw_(gw), msg_(static_cast<SoupServerMessage *>(g_object_ref(msg))), id_(std::move(id)) {
    finished_id_ = g_signal_connect(msg, "finished", G_CALLBACK(on_client_gone), this);
    disconnected_id_ = g_signal_connect(msg, "disconnected", G_CALLBACK(on_client_gone), this);
    wrote_id_ = g_signal_connect(msg, "wrote-body-data", G_CALLBACK(on_wrote), this);
    const char *range =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Range");
    if (range && g_str_has_prefix(range, "bytes=") && g_str_has_suffix(range, "-")) {
      const std::string n(range + 6, strlen(range) - 7);
      if (!n.empty() && n.find_first_not_of("0123456789") == std::string::npos)
        range_start_ = g_ascii_strtoll(n.c_str(), nullptr, 10);
    }
    soup_server_message_pause(msg);
  }
  ~FullProxy() override { release(); }

  void start() {
    sources_.push_back(gw_.opts.upstream);
    if (!gw_.opts.fallback_upstream.empty()) sources_.push_back(gw_.opts.fallback_upstream);
    next_source();
  }
  void abandon() { release(); }

  void on_response(const FetchResponse &resp) override {
    if (head_sent_) return on_resumed(resp);
    status_ = resp.http_status;
    if (status_ != 200 && !(status_ == 206 && resp.range_start == range_start_)) return;
    const std::string coding = unasked_coding(resp);
    if (!coding.empty()) {  // not the track's bytes: the next backend, if any
      gw_.fetcher->cancel(fetch_id_);
      fetch_id_ = 0;
      why_ = "answered with Content-Encoding " + coding + ", which the gateway never asks for";
      bad_coding_ = true;
      last_error_ = FetchError::None;
      next_source();
      return;
    }
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg_);
    soup_server_message_set_status(msg_, static_cast<guint>(status_), nullptr);
    soup_message_headers_replace(
        h, "Content-Type",
        resp.content_type.empty() ? "application/octet-stream" : resp.content_type.c_str());
    soup_message_headers_replace(h, "Cache-Control", kNoStore);
    if (resp.content_length >= 0)
      soup_message_headers_set_content_length(h, resp.content_length);
    else
      soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    if (status_ == 206) {
      const std::string cr =
          "bytes " + std::to_string(resp.range_start) + "-" +
          std::to_string(resp.range_start + std::max<int64_t>(resp.content_length, 1) - 1) + "/" +
          (resp.range_total >= 0 ? std::to_string(resp.range_total) : std::string("*"));
      soup_message_headers_replace(h, "Content-Range", cr.c_str());
    }
    soup_message_body_set_accumulate(soup_server_message_get_response_body(msg_), FALSE);
    head_sent_ = true;
    etag_ = resp.etag;
    if (resp.content_length >= 0) end_ = range_start_ + resp.content_length;
    soup_server_message_unpause(msg_);
  }
  void on_data(GBytes *chunk) override {
    if (!head_sent_ || !msg_) return;
    gsize size = g_bytes_get_size(chunk);
    if (skip_ >= static_cast<int64_t>(size)) {
      skip_ -= static_cast<int64_t>(size);
      return;
    }
    GBytes *part =
        g_bytes_new_from_bytes(chunk, static_cast<gsize>(skip_), size - static_cast<gsize>(skip_));
    skip_ = 0;
    size = g_bytes_get_size(part);
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg_), part);
    g_bytes_unref(part);
    soup_server_message_unpause(msg_);
    sent_ += static_cast<int64_t>(size);
    pending_ += static_cast<int64_t>(size);
    gw_.note_queue(pending_);
    const bool more = end_ < 0 || range_start_ + sent_ < end_;
    if (pending_ > gw_.opts.max_client_queue_bytes && more && fetch_id_) {
      gw_.fetcher->cancel(fetch_id_);  // no callback follows; on_wrote resumes
      fetch_id_ = 0;
      paused_ = true;
      gw_.add(&Counters::producers_paused, 1);
    }
  }
  void on_done(FetchError error, const std::string &message) override {
    fetch_id_ = 0;
    if (!msg_) return;
    if (head_sent_) {
      if (error == FetchError::None) {
        soup_message_body_complete(soup_server_message_get_response_body(msg_));
        soup_server_message_unpause(msg_);
        release();
      } else {
        cut();
      }
      gw_.proxy_ended(this);
      return;
    }
    why_ = error != FetchError::None ? std::string(fetch_error_name(error)) + ": " + message
                                     : "answered " + std::to_string(status_);
    last_error_ = error;
    next_source();
  }

 private:
  void next_source() {
    if (sources_.empty() || gw_.stopping) {
      const bool not_found = status_ == 404;
      const bool timeout = last_error_ == FetchError::Timeout;
      const char *code = not_found                            ? "not_found"
                         : timeout                            ? "upstream_timeout"
                         : last_error_ == FetchError::Connect ? "upstream_unreachable"
                         : last_error_ != FetchError::None    ? "upstream_broken"
                         : bad_coding_                        ? "upstream_bad_encoding"
                                                              : "upstream_error";
      reply_error(msg_, not_found ? 404 : (timeout ? 504 : 502), code,
                  "whole track " + id_ + ": every backend failed (last: " + why_ + ")");
      soup_server_message_unpause(msg_);
      release();
      gw_.proxy_ended(this);
      return;
    }
    FetchRequest req;
    source_ = sources_.front();
    req.url = full_track_url(source_, id_);
    req.range_start = range_start_;
    sources_.erase(sources_.begin());
    status_ = 0;
    bad_coding_ = false;
    gw_.count(&Counters::upstream_full);
    fetch_id_ = gw_.fetcher->start(req, this);
  }
  // A resumed transfer must go on with the same entity from the next byte.
  void on_resumed(const FetchResponse &resp) {
    const int64_t next = range_start_ + sent_;
    const bool same =
        (etag_.empty() || resp.etag.empty() || resp.etag == etag_) && unasked_coding(resp).empty();
    if (same && resp.http_status == 206 && resp.range_start == next) return;
    if (same && resp.http_status == 200 &&
        (end_ < 0 || resp.content_length < 0 || resp.content_length == end_)) {
      skip_ = next;  // the whole entity again: drop what the client has
      return;
    }
    g_message("segdl-gateway: whole track %s: the resumed answer (%d) is not the same track",
              id_.c_str(), resp.http_status);
    cut();
    gw_.proxy_ended(this);
  }
  // libsoup wrote `size` bytes of the body: resume a paused transfer once
  // half the bound is left.
  static void on_wrote(SoupServerMessage *, guint size, gpointer data) noexcept {
    auto *p = static_cast<FullProxy *>(data);
    p->pending_ = std::max<int64_t>(0, p->pending_ - static_cast<int64_t>(size));
    if (!p->paused_ || p->pending_ > p->gw_.opts.max_client_queue_bytes / 2) return;
    p->paused_ = false;
    p->gw_.add(&Counters::producers_paused, -1);
    FetchRequest req;
    req.url = full_track_url(p->source_, p->id_);
    req.range_start = p->range_start_ + p->sent_;
    p->gw_.count(&Counters::upstream_full);
    p->fetch_id_ = p->gw_.fetcher->start(req, p);
  }
  static void on_client_gone(SoupServerMessage *, gpointer data) noexcept {
    auto *p = static_cast<FullProxy *>(data);
    p->release();
    p->gw_.proxy_ended(p);
  }
  // Cuts the client's connection (the body broke after its head was sent).
  void cut() {
    SoupServerMessage *msg = static_cast<SoupServerMessage *>(g_object_ref(msg_));
    release();
    abort_connection(msg);
    g_object_unref(msg);
  }
  void release() {
    if (fetch_id_) gw_.fetcher->cancel(fetch_id_);
    fetch_id_ = 0;
    if (paused_) gw_.add(&Counters::producers_paused, -1);
    paused_ = false;
    if (!msg_) return;
    g_signal_handler_disconnect(msg_, finished_id_);
    g_signal_handler_disconnect(msg_, disconnected_id_);
    g_signal_handler_disconnect(msg_, wrote_id_);
    g_clear_object(&msg_);
  }

  Gateway::Impl &gw_;
  SoupServerMessage *msg_ = nullptr;  // strong ref; null once released
  const std::string id_;
  gulong finished_id_ = 0, disconnected_id_ = 0, wrote_id_ = 0;
  int64_t range_start_ = 0;
  std::vector<std::string> sources_;
  std::string source_;  // the backend answering
  // Once the head is sent: the entity, what the client was given, what waits.
  std::string etag_;
  int64_t end_ = -1;     // the entity's end (range_start_ + length), -1 unknown
  int64_t sent_ = 0;     // body bytes handed to libsoup
  int64_t pending_ = 0;  // of those, not yet written to the socket
  int64_t skip_ = 0;     // bytes of a resumed 200 answer the client already has
  bool paused_ = false;  // transfer cancelled until the client catches up
  uint64_t fetch_id_ = 0;
  int status_ = 0;
  bool head_sent_ = false;
  bool bad_coding_ = false;  // the last backend tried answered with a content coding
  FetchError last_error_ = FetchError::None;  // of the last backend tried
  std::string why_ = "no backend";
};

void Gateway::Impl::start_full(SoupServerMessage *msg, const std::string &id) {
  auto *p = new FullProxy(*this, msg, id);
  proxies.insert(p);
  p->start();
}

void Gateway::Impl::proxy_ended(FullProxy *p) {
  if (proxies.erase(p) == 0) return;
  bury(std::unique_ptr<FetchListener>(p));
}

void Gateway::Impl::abandon_proxies() {
  for (FullProxy *p : proxies) {
    p->abandon();
    delete p;
  }
  proxies.clear();
}

}  // namespace segdl::gateway
