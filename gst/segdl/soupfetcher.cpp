// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the libsoup 3 Fetcher, built as the run-time module libsegdl-http.so.
 *
 * One SoupSession per Fetcher, created on the calling (HTTP) thread with that
 * thread's context as thread-default; every transfer is
 * soup_session_send_async() followed by a chain of
 * g_input_stream_read_bytes_async() calls, each chunk handed on as the
 * GBytes libsoup produced (no copy).
 *
 * Ownership of a Transfer: exactly one async operation is pending on it at
 * any time, and whoever completes that operation decides its fate. cancel()
 * only marks it and cancels the GCancellable; the completion callback (or the
 * code returning from a listener callback) then frees it.
 */
#include "segdl/httpmodule.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <cstdlib>
#include <memory>
#include <unordered_map>

namespace segdl {
namespace {

constexpr gsize kReadSize = 64 * 1024;
constexpr int kMaxRedirects = 5;

class SoupFetcher;

struct Transfer {
  SoupFetcher *owner = nullptr;
  uint64_t id = 0;
  FetchListener *listener = nullptr;
  SoupMessage *msg = nullptr;
  GInputStream *stream = nullptr;
  GCancellable *cancellable = nullptr;
  GSource *deadline = nullptr;  // request_timeout_s: cancels the transfer when it fires
  bool cancelled = false;       // set by SoupFetcher::cancel(); HTTP thread only
  bool timed_out = false;       // the deadline fired
  int redirects = 0;            // followed so far
  int64_t range_start = 0;      // Range: bytes=N- on every (redirected) request

  ~Transfer() {
    if (deadline) {
      g_source_destroy(deadline);
      g_source_unref(deadline);
    }
    g_clear_object(&stream);
    g_clear_object(&msg);
    g_clear_object(&cancellable);
  }
};

FetchError classify(const GError *err) {
  if (err->domain == G_RESOLVER_ERROR) return FetchError::Connect;
  if (err->domain == G_TLS_ERROR) return FetchError::Tls;
  if (err->domain == G_IO_ERROR) {
    switch (err->code) {
      case G_IO_ERROR_TIMED_OUT:
        return FetchError::Timeout;
      case G_IO_ERROR_CONNECTION_REFUSED:
      case G_IO_ERROR_HOST_NOT_FOUND:
      case G_IO_ERROR_HOST_UNREACHABLE:
      case G_IO_ERROR_NETWORK_UNREACHABLE:
      case G_IO_ERROR_PROXY_FAILED:
        return FetchError::Connect;
      default:
        return FetchError::Io;
    }
  }
  return FetchError::Other;
}

// Retry-After is either delta-seconds or an HTTP date.
int parse_retry_after(const char *value) {
  if (!value) return -1;
  char *end = nullptr;
  long secs = strtol(value, &end, 10);
  if (end != value && *end == '\0' && secs >= 0) return secs > 86400 ? 86400 : int(secs);
  g_autoptr(GDateTime) when = soup_date_time_new_from_http_string(value);
  if (!when) return -1;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  GTimeSpan diff = g_date_time_difference(when, now) / G_TIME_SPAN_SECOND;
  if (diff < 0) return 0;
  return diff > 86400 ? 86400 : int(diff);
}

class SoupFetcher final : public Fetcher {
 public:
  explicit SoupFetcher(const FetcherConfig &cfg)
      : ssl_strict_(cfg.ssl_strict), request_timeout_s_(cfg.request_timeout_s) {
    int conns = cfg.max_connections < 2 ? 2 : cfg.max_connections;
    session_ = soup_session_new_with_options("max-conns", conns, "max-conns-per-host", conns,
                                             "timeout", guint(cfg.timeout_s), nullptr);
    if (!cfg.user_agent.empty()) soup_session_set_user_agent(session_, cfg.user_agent.c_str());
    // Bytes must arrive exactly as served (byte-exact output, Range resume).
    soup_session_remove_feature_by_type(session_, SOUP_TYPE_CONTENT_DECODER);
    context_ = g_main_context_ref_thread_default();
  }

  ~SoupFetcher() override {
    for (auto &entry : live_) {
      entry.second->cancelled = true;
      g_cancellable_cancel(entry.second->cancellable);
    }
    live_.clear();
    // Let the cancelled operations complete so their Transfers are freed;
    // bounded, in case a callback never comes.
    bool expired = false;
    GSource *guard = g_timeout_source_new_seconds(5);
    g_source_set_callback(
        guard,
        [](gpointer flag) -> gboolean {
          *static_cast<bool *>(flag) = true;
          return G_SOURCE_REMOVE;
        },
        &expired, nullptr);
    g_source_attach(guard, context_);
    while (pending_ > 0 && !expired) g_main_context_iteration(context_, TRUE);
    // Close every connection, then let libsoup's own pending operations
    // (connecting, closing) finish on this context: they hold the session,
    // its connections and their sockets until they are dispatched here.
    soup_session_abort(session_);
    SoupSession *alive = session_;
    g_object_add_weak_pointer(G_OBJECT(alive), reinterpret_cast<gpointer *>(&alive));
    g_object_unref(session_);
    session_ = nullptr;
    while (alive && !expired) g_main_context_iteration(context_, TRUE);
    if (alive) g_object_remove_weak_pointer(G_OBJECT(alive), reinterpret_cast<gpointer *>(&alive));
    g_source_destroy(guard);
    g_source_unref(guard);
    g_main_context_unref(context_);
  }

  uint64_t start(const FetchRequest &req, FetchListener *listener) override {
    auto *t = new Transfer;
    t->owner = this;
    t->id = next_id_++;
    t->listener = listener;
    t->cancellable = g_cancellable_new();
    t->msg = soup_message_new("GET", req.url.c_str());
    live_[t->id] = t;
    pending_++;
    if (!t->msg) {
      // Invalid URL: report it from an idle callback, never re-entrantly.
      GSource *src = g_idle_source_new();
      g_source_set_callback(src, on_bad_url, t, nullptr);
      g_source_attach(src, context_);
      g_source_unref(src);
      return t->id;
    }
    t->range_start = req.range_start;
    prepare(t);
    if (request_timeout_s_ > 0) {
      // The whole request must be done in time: past it, cancel and report a
      // timeout (the pending operation completes as cancelled).
      t->deadline = g_timeout_source_new_seconds(request_timeout_s_);
      g_source_set_callback(
          t->deadline,
          [](gpointer data) -> gboolean {
            auto *tr = static_cast<Transfer *>(data);
            tr->timed_out = true;
            g_cancellable_cancel(tr->cancellable);
            return G_SOURCE_REMOVE;
          },
          t, nullptr);
      g_source_attach(t->deadline, context_);
    }
    soup_session_send_async(session_, t->msg, G_PRIORITY_DEFAULT, t->cancellable, on_sent, t);
    return t->id;
  }

  void cancel(uint64_t id) override {
    auto it = live_.find(id);
    if (it == live_.end()) return;
    it->second->cancelled = true;
    g_cancellable_cancel(it->second->cancellable);
    live_.erase(it);
  }

 private:
  // Request headers and flags of a transfer's (current) message. Redirects
  // are followed here, not by libsoup, so that only http(s) targets and a
  // few hops are taken.
  void prepare(Transfer *t) {
    soup_message_add_flags(t->msg, SOUP_MESSAGE_NO_REDIRECT);
    if (t->range_start > 0)
      soup_message_headers_set_range(soup_message_get_request_headers(t->msg), t->range_start, -1);
    if (!ssl_strict_)
      g_signal_connect(t->msg, "accept-certificate", G_CALLBACK(accept_any_certificate), nullptr);
  }

  // Follows a redirect answer: true if a new request went out for `t`;
  // false with `why` set if it was refused.
  bool follow_redirect(Transfer *t, std::string &why) {
    const char *location =
        soup_message_headers_get_one(soup_message_get_response_headers(t->msg), "Location");
    if (!location) {
      why = "redirect without a Location";
      return false;
    }
    if (++t->redirects > kMaxRedirects) {
      why = "too many redirects (more than " + std::to_string(kMaxRedirects) + ")";
      return false;
    }
    g_autoptr(GError) err = nullptr;
    g_autoptr(GUri) target = g_uri_parse_relative(soup_message_get_uri(t->msg), location,
                                                  GUriFlags(SOUP_HTTP_URI_FLAGS), &err);
    const char *scheme = target ? g_uri_get_scheme(target) : nullptr;
    if (!target || !scheme ||
        (g_ascii_strcasecmp(scheme, "http") != 0 && g_ascii_strcasecmp(scheme, "https") != 0)) {
      why = std::string("redirect to a non-HTTP URL refused: ") + location;
      return false;
    }
    g_clear_object(&t->stream);
    g_clear_object(&t->msg);
    t->msg = soup_message_new_from_uri("GET", target);
    prepare(t);
    soup_session_send_async(session_, t->msg, G_PRIORITY_DEFAULT, t->cancellable, on_sent, t);
    return true;
  }

  static gboolean accept_any_certificate(SoupMessage *, GTlsCertificate *, GTlsCertificateFlags,
                                         gpointer) {
    return TRUE;
  }

  // Ends a transfer whose pending operation just completed.
  void finish(Transfer *t, FetchError err, const std::string &message) {
    pending_--;
    if (!t->cancelled) {
      live_.erase(t->id);
      t->listener->on_done(err, message);
    }
    delete t;
  }

  // A pending operation completed on a transfer that was cancelled.
  void drop(Transfer *t) {
    pending_--;
    delete t;
  }

  static gboolean on_bad_url(gpointer data) {
    auto *t = static_cast<Transfer *>(data);
    if (t->cancelled)
      t->owner->drop(t);
    else
      t->owner->finish(t, FetchError::Other, "invalid URL");
    return G_SOURCE_REMOVE;
  }

  static void on_sent(GObject *source, GAsyncResult *res, gpointer data) {
    auto *t = static_cast<Transfer *>(data);
    SoupFetcher *self = t->owner;
    g_autoptr(GError) err = nullptr;
    GInputStream *stream = soup_session_send_finish(SOUP_SESSION(source), res, &err);
    if (t->cancelled) {
      g_clear_object(&stream);
      self->drop(t);
      return;
    }
    if (t->timed_out) {
      g_clear_object(&stream);
      self->finish(t, FetchError::Timeout, "the request took longer than its timeout");
      return;
    }
    if (!stream) {
      self->finish(t, classify(err), err->message);
      return;
    }
    t->stream = stream;

    guint status = soup_message_get_status(t->msg);
    if (SOUP_STATUS_IS_REDIRECTION(status) && status != SOUP_STATUS_NOT_MODIFIED) {
      std::string why;
      if (self->follow_redirect(t, why)) return;  // the new request carries on
      self->finish(t, FetchError::Other, why);
      return;
    }
    FetchResponse resp;
    resp.http_status = int(status);
    const char *reason = soup_message_get_reason_phrase(t->msg);
    resp.reason = reason ? reason : "";
    SoupMessageHeaders *hdrs = soup_message_get_response_headers(t->msg);
    SoupEncoding encoding = soup_message_headers_get_encoding(hdrs);
    if (encoding == SOUP_ENCODING_CONTENT_LENGTH)
      resp.content_length = soup_message_headers_get_content_length(hdrs);
    resp.length_known = encoding == SOUP_ENCODING_CONTENT_LENGTH ||
                        encoding == SOUP_ENCODING_CHUNKED || encoding == SOUP_ENCODING_NONE;
    const char *coding = soup_message_headers_get_one(hdrs, "Content-Encoding");
    resp.content_encoding = coding ? coding : "";
    goffset start = 0, end = 0, total = 0;
    if (resp.http_status == SOUP_STATUS_PARTIAL_CONTENT &&
        soup_message_headers_get_content_range(hdrs, &start, &end, &total)) {
      resp.range_start = start;
      resp.range_total = total;
    }
    resp.retry_after_s = parse_retry_after(soup_message_headers_get_one(hdrs, "Retry-After"));
    const char *ctype = soup_message_headers_get_content_type(hdrs, nullptr);
    resp.content_type = ctype ? ctype : "";
    const char *etag = soup_message_headers_get_one(hdrs, "ETag");
    resp.etag = etag ? etag : "";
    const char *modified = soup_message_headers_get_one(hdrs, "Last-Modified");
    resp.last_modified = modified ? modified : "";

    t->listener->on_response(resp);
    if (t->cancelled) {  // the listener cancelled from its callback
      self->drop(t);
      return;
    }
    self->read_next(t);
  }

  void read_next(Transfer *t) {
    g_input_stream_read_bytes_async(t->stream, kReadSize, G_PRIORITY_DEFAULT, t->cancellable,
                                    on_read, t);
  }

  static void on_read(GObject *source, GAsyncResult *res, gpointer data) {
    auto *t = static_cast<Transfer *>(data);
    SoupFetcher *self = t->owner;
    g_autoptr(GError) err = nullptr;
    g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish(G_INPUT_STREAM(source), res, &err);
    if (t->cancelled) {
      self->drop(t);
      return;
    }
    if (t->timed_out) {
      self->finish(t, FetchError::Timeout, "the request took longer than its timeout");
      return;
    }
    if (!bytes) {
      self->finish(t, classify(err), err->message);
      return;
    }
    if (g_bytes_get_size(bytes) == 0) {
      self->finish(t, FetchError::None, "");
      return;
    }
    t->listener->on_data(bytes);
    if (t->cancelled) {
      self->drop(t);
      return;
    }
    self->read_next(t);
  }

  SoupSession *session_ = nullptr;
  GMainContext *context_ = nullptr;
  bool ssl_strict_ = true;
  unsigned request_timeout_s_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Transfer *> live_;  // not cancelled, not done
  int pending_ = 0;                                // Transfers not yet freed
};

}  // namespace
}  // namespace segdl

extern "C" __attribute__((visibility("default"))) segdl::Fetcher *segdl_http_fetcher_new(
    int abi, const segdl::FetcherConfig *config, char **error) {
  if (abi != SEGDL_HTTP_MODULE_ABI) {
    if (error)
      *error = g_strdup_printf("libsegdl-http ABI %d does not match the plugin's %d",
                               SEGDL_HTTP_MODULE_ABI, abi);
    return nullptr;
  }
  try {
    return new segdl::SoupFetcher(*config);
  } catch (...) {
    if (error) *error = g_strdup("out of memory creating the HTTP session");
    return nullptr;
  }
}
