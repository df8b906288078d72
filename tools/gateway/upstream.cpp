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
// (nobody else needs it).
class FullProxy : public FetchListener {
 public:
  FullProxy(Gateway::Impl &gw, SoupServerMessage *msg, std::string id)
      : gw_(gw), msg_(static_cast<SoupServerMessage *>(g_object_ref(msg))), id_(std::move(id)) {
    finished_id_ = g_signal_connect(msg, "finished", G_CALLBACK(on_client_gone), this);
    disconnected_id_ = g_signal_connect(msg, "disconnected", G_CALLBACK(on_client_gone), this);
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
    status_ = resp.http_status;
    if (status_ != 200 && !(status_ == 206 && resp.range_start == range_start_)) return;
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
    soup_server_message_unpause(msg_);
  }
  void on_data(GBytes *chunk) override {
    if (!head_sent_ || !msg_) return;
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg_), chunk);
    soup_server_message_unpause(msg_);
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
                                                              : "upstream_error";
      reply_error(msg_, not_found ? 404 : (timeout ? 504 : 502), code,
                  "whole track " + id_ + ": every backend failed (last: " + why_ + ")");
      soup_server_message_unpause(msg_);
      release();
      gw_.proxy_ended(this);
      return;
    }
    FetchRequest req;
    req.url = full_track_url(sources_.front(), id_);
    req.range_start = range_start_;
    sources_.erase(sources_.begin());
    status_ = 0;
    gw_.count(&Counters::upstream_full);
    fetch_id_ = gw_.fetcher->start(req, this);
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
    GIOStream *stream = soup_server_message_steal_connection(msg);
    if (stream) {
      g_io_stream_close(stream, nullptr, nullptr);
      g_object_unref(stream);
    }
    g_object_unref(msg);
  }
  void release() {
    if (fetch_id_) gw_.fetcher->cancel(fetch_id_);
    fetch_id_ = 0;
    if (!msg_) return;
    g_signal_handler_disconnect(msg_, finished_id_);
    g_signal_handler_disconnect(msg_, disconnected_id_);
    g_clear_object(&msg_);
  }

  Gateway::Impl &gw_;
  SoupServerMessage *msg_ = nullptr;  // strong ref; null once released
  const std::string id_;
  gulong finished_id_ = 0, disconnected_id_ = 0;
  int64_t range_start_ = 0;
  std::vector<std::string> sources_;
  uint64_t fetch_id_ = 0;
  int status_ = 0;
  bool head_sent_ = false;
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
