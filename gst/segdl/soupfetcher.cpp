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
 *
 * Every request carries the HttpOptions (proxy, extra headers, cookies,
 * credentials, CA file or TLS database) and is logged to the segdl-http
 * debug category: the request at DEBUG, one line at INFO when it ends
 * (method, URL without its password, status, bytes, seconds), and libsoup's
 * own log (SoupLogger, headers or more) at LOG when http-log-level asks.
 */
#include "segdl/httpmodule.h"
#include "segdl/log.h"

#include <gio/gio.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
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
  int64_t range_start = 0;      // Range: bytes=N- (< 0: bytes=-N) on every (redirected) request
  std::string shown_url;        // the URL asked for, without its password (logs)
  int http_status = 0;          // of the final response; 0 before one
  uint64_t bytes = 0;           // body bytes received
  int64_t start_us = 0;         // g_get_monotonic_time() at start()

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

// "scheme://host:port" of a URI, as OriginCredentials::origin.
std::string origin_of(GUri *uri) {
  g_autofree char *text = g_uri_to_string(uri);
  return url_origin(text);
}

// A proxy URL without its userinfo; the user and password of the userinfo
// are returned in `user`/`password` (empty when absent).
bool split_proxy(const std::string &proxy, std::string &bare, std::string &user,
                 std::string &password, std::string &error) {
  g_autoptr(GError) err = nullptr;
  g_autoptr(GUri) uri = g_uri_parse(proxy.c_str(), G_URI_FLAGS_HAS_PASSWORD, &err);
  if (!uri || !g_uri_get_host(uri)) {
    error = "invalid proxy URL " + redact_url(proxy);
    return false;
  }
  user = g_uri_get_user(uri) ? g_uri_get_user(uri) : "";
  password = g_uri_get_password(uri) ? g_uri_get_password(uri) : "";
  g_autofree char *shown =
      g_uri_join(G_URI_FLAGS_NONE, g_uri_get_scheme(uri), nullptr, g_uri_get_host(uri),
                 g_uri_get_port(uri), "", nullptr, nullptr);
  bare = shown;
  return true;
}

// libsoup's own log (SoupLogger) into segdl-http at LOG, credentials hidden.
void log_printer(SoupLogger *, SoupLoggerLogLevel, char direction, const char *data, gpointer) {
  static const char *const secret[] = {"Authorization:", "Proxy-Authorization:"};
  for (const char *name : secret) {
    if (g_ascii_strncasecmp(data, name, strlen(name)) == 0) {
      SEGDL_HTTP_LOG(GST_LEVEL_LOG, "%c %s [redacted]", direction, name);
      return;
    }
  }
  SEGDL_HTTP_LOG(GST_LEVEL_LOG, "%c %s", direction, data);
}

class SoupFetcher final : public Fetcher {
 public:
  explicit SoupFetcher(const FetcherConfig &cfg)
      : ssl_strict_(cfg.ssl_strict), request_timeout_s_(cfg.request_timeout_s), http_(cfg.http) {
    int conns = cfg.max_connections < 2 ? 2 : cfg.max_connections;
    session_ = soup_session_new_with_options("max-conns", conns, "max-conns-per-host", conns,
                                             "timeout", guint(cfg.timeout_s), nullptr);
    if (!cfg.user_agent.empty()) soup_session_set_user_agent(session_, cfg.user_agent.c_str());
    // Bytes must arrive exactly as served (byte-exact output, Range resume).
    soup_session_remove_feature_by_type(session_, SOUP_TYPE_CONTENT_DECODER);
    context_ = g_main_context_ref_thread_default();
    for (const auto &h : http_.extra_headers)
      if (g_ascii_strcasecmp(h.first.c_str(), "Cookie") == 0) http_.cookies.push_back(h.second);
    if (!http_.cookies.empty()) {
      std::string joined;
      for (const std::string &c : http_.cookies) joined += (joined.empty() ? "" : "; ") + c;
      cookie_header_ = joined;
    }
  }

  // The options that can fail (proxy URL, CA file); false with `error` set.
  bool configure(std::string &error) {
    if (!http_.proxy.empty()) {
      std::string bare, user, password;
      if (!split_proxy(http_.proxy, bare, user, password, error)) return false;
      if (http_.proxy_id.empty()) http_.proxy_id = user;
      if (http_.proxy_pw.empty()) http_.proxy_pw = password;
      GProxyResolver *resolver = g_simple_proxy_resolver_new(bare.c_str(), nullptr);
      soup_session_set_proxy_resolver(session_, resolver);
      g_object_unref(resolver);
      SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "proxy %s%s", bare.c_str(),
                     http_.proxy_id.empty() ? "" : " (with credentials)");
    }
    if (http_.tls_database) {
      soup_session_set_tls_database(session_, http_.tls_database.get());
    } else if (!http_.ssl_ca_file.empty()) {
      g_autoptr(GError) err = nullptr;
      GTlsDatabase *db = g_tls_file_database_new(http_.ssl_ca_file.c_str(), &err);
      if (!db) {
        error = "cannot use ssl-ca-file " + http_.ssl_ca_file + ": " + err->message;
        return false;
      }
      soup_session_set_tls_database(session_, db);
      g_object_unref(db);
    }
    if (http_.log_level > SOUP_LOGGER_LOG_NONE &&
        gst_debug_category_get_threshold(http_debug_category()) >= GST_LEVEL_LOG) {
      int level = std::min<int>(http_.log_level, SOUP_LOGGER_LOG_BODY);
      SoupLogger *logger = soup_logger_new(SoupLoggerLogLevel(level));
      soup_logger_set_printer(logger, log_printer, nullptr, nullptr);
      soup_session_add_feature(session_, SOUP_SESSION_FEATURE(logger));
      g_object_unref(logger);
    }
    return true;
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
    t->shown_url = redact_url(req.url);
    t->start_us = g_get_monotonic_time();
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
    if (t->range_start != 0)
      SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "GET %s (Range: bytes=%" G_GINT64_FORMAT "%s)",
                     t->shown_url.c_str(), t->range_start, t->range_start > 0 ? "-" : "");
    else
      SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "GET %s", t->shown_url.c_str());
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
    if (t->range_start != 0)  // < 0: a suffix, the last -range_start bytes
      soup_message_headers_set_range(soup_message_get_request_headers(t->msg), t->range_start, -1);
    if (!ssl_strict_)
      g_signal_connect(t->msg, "accept-certificate", G_CALLBACK(accept_any_certificate), nullptr);
    SoupMessageHeaders *hdrs = soup_message_get_request_headers(t->msg);
    for (const auto &h : http_.extra_headers)
      if (g_ascii_strcasecmp(h.first.c_str(), "Cookie") != 0)
        soup_message_headers_append(hdrs, h.first.c_str(), h.second.c_str());
    if (!cookie_header_.empty())
      soup_message_headers_replace(hdrs, "Cookie", cookie_header_.c_str());
    g_signal_connect(t->msg, "authenticate", G_CALLBACK(on_authenticate), this);
  }

  // Credentials for a 401 (the URL's own for its origin, else user-id) or a
  // 407 (proxy-id). Once only: wrong credentials end as the 401/407.
  static gboolean on_authenticate(SoupMessage *msg, SoupAuth *auth, gboolean retrying,
                                  gpointer data) {
    auto *self = static_cast<SoupFetcher *>(data);
    if (retrying) return FALSE;
    const HttpOptions &o = self->http_;
    const std::string *user = nullptr, *password = nullptr;
    if (soup_auth_is_for_proxy(auth)) {
      if (!o.proxy_id.empty()) user = &o.proxy_id, password = &o.proxy_pw;
    } else {
      std::string origin = origin_of(soup_message_get_uri(msg));
      for (const OriginCredentials &c : o.origin_credentials)
        if (c.origin == origin) user = &c.user, password = &c.password;
      if (!user && !o.user_id.empty()) user = &o.user_id, password = &o.user_pw;
    }
    if (!user) return FALSE;
    SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "%s authentication (%s) as %s",
                   soup_auth_is_for_proxy(auth) ? "proxy" : "server",
                   soup_auth_get_scheme_name(auth), user->c_str());
    soup_auth_authenticate(auth, user->c_str(), password->c_str());
    return TRUE;
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
      why = std::string("redirect to a non-HTTP URL refused: ") + redact_url(location);
      return false;
    }
    g_clear_object(&t->stream);
    g_clear_object(&t->msg);
    g_autofree char *next = g_uri_to_string(target);
    SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "GET %s: redirected to %s", t->shown_url.c_str(),
                   redact_url(next).c_str());
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
    double secs = double(g_get_monotonic_time() - t->start_us) / G_USEC_PER_SEC;
    if (t->cancelled)
      SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "GET %s: cancelled", t->shown_url.c_str());
    else if (err == FetchError::None)
      SEGDL_HTTP_LOG(GST_LEVEL_INFO, "GET %s: %d, %" G_GUINT64_FORMAT " bytes in %.3f s",
                     t->shown_url.c_str(), t->http_status, t->bytes, secs);
    else
      SEGDL_HTTP_LOG(GST_LEVEL_INFO,
                     "GET %s: %d, %" G_GUINT64_FORMAT " bytes in %.3f s, failed: %s (%s)",
                     t->shown_url.c_str(), t->http_status, t->bytes, secs, fetch_error_name(err),
                     message.c_str());
    if (!t->cancelled) {
      live_.erase(t->id);
      t->listener->on_done(err, message);
    }
    delete t;
  }

  // A pending operation completed on a transfer that was cancelled.
  void drop(Transfer *t) {
    pending_--;
    SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "GET %s: cancelled after %" G_GUINT64_FORMAT " bytes",
                   t->shown_url.c_str(), t->bytes);
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
    t->http_status = int(status);
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
    SEGDL_HTTP_LOG(GST_LEVEL_DEBUG, "GET %s: %d %s, Content-Length %" G_GINT64_FORMAT,
                   t->shown_url.c_str(), resp.http_status, resp.reason.c_str(),
                   resp.content_length);

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
    t->bytes += g_bytes_get_size(bytes);
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
  HttpOptions http_;
  std::string cookie_header_;  // every cookie in one Cookie header; empty = none
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
    auto fetcher = std::make_unique<segdl::SoupFetcher>(*config);
    std::string why;
    if (!fetcher->configure(why)) {
      if (error) *error = g_strdup(why.c_str());
      return nullptr;
    }
    return fetcher.release();
  } catch (...) {
    if (error) *error = g_strdup("out of memory creating the HTTP session");
    return nullptr;
  }
}
