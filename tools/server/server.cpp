// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the reference backend (see server.h).
 *
 * Threads: the public methods run on any thread and only touch state under
 * Impl::mu; everything libsoup (the SoupServer, its messages, the timers that
 * pace or delay responses) lives on the server thread, which owns its own
 * GMainContext (pushed as thread-default before the SoupServer is made).
 *
 * Every request gets a Response (server thread only). It ends exactly once,
 * in finish(): when libsoup emits "finished", when the connection goes away
 * ("disconnected"), or when a fault steals and closes the connection. That is
 * where the request log gets its end time and the in-flight count drops.
 */
#include "server/server.h"
#include "server/util.h"

#include <gio/gio.h>
#include <glib.h>
#include <libsoup/soup.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <set>
#include <thread>

namespace segdl::server {

namespace {

struct BytesUnref {
  void operator()(GBytes *b) const { g_bytes_unref(b); }
};
using BytesPtr = std::unique_ptr<GBytes, BytesUnref>;

// A track as served: immutable once stored, shared with in-flight responses.
struct StoredTrack {
  std::vector<BytesPtr> segments;
  BytesPtr full;
  std::string mime_type;
  double first_segment_duration = 0;
  double segment_duration = 0;
  double duration = 0;
};

}  // namespace

using detail::is_body_fault;
using detail::is_status_fault;
using detail::json_escape;
using detail::json_number;
using detail::kSegmentFull;
using detail::parse_range;

struct Server::Impl {
  enum class Kind { Status, Segment, Full, Other };
  enum class After { Complete, Stall, Close, Reset };
  enum class Timer { None, Latency, Pump, PhaseReached, StallOver, StatusHold };

  // One request being answered. Server thread only.
  struct Response {
    Impl *impl = nullptr;
    SoupServerMessage *msg = nullptr;  // strong ref
    size_t log_index = 0;
    Kind kind = Kind::Other;
    bool counted = false;  // counts in the segment in-flight figure
    bool paused = false;   // we paused it (latency)
    gulong finished_id = 0, disconnected_id = 0, wrote_id = 0;
    GSource *timer = nullptr;  // at most one pending timer, see Timer
    Timer timer_kind = Timer::None;
    std::string path, video_id;
    int64_t segment = -1;
    std::string range;
    bool head = false;
    bool status_held = false;  // "statushold" kept this status answer back (now done)
    bool endless = false;      // "endless": a chunked body that repeats the segment, bounded
    // Body being written (throttled or faulted responses).
    GBytes *body = nullptr;
    uint64_t size = 0, appended = 0, written = 0, phase_end = 0;
    After after = After::Complete;
    double stall_s = 0;
    bool stall_over = false;
    bool phase_handled = false;
    int64_t pace_start_us = 0;
    uint64_t pace_start_bytes = 0;
  };

  explicit Impl(Options o) : opts(std::move(o)) {}

  const Options opts;

  mutable std::mutex mu;
  std::condition_variable cv;  // start handshake; new requests; responses_open changes
  // Protected by mu (any thread):
  std::map<std::string, std::shared_ptr<const StoredTrack>> tracks;
  std::vector<Fault> faults;
  std::map<std::string, int64_t> first_request_us;  // reveal clock per id
  std::map<std::string, int64_t> held_ready;        // hold_ready() limits per id
  std::map<std::string, int64_t> last_ready_sent;   // for statusregress
  std::set<std::string> segment_asked;              // ids with a segment request (statushold)
  std::vector<RequestRecord> log;
  int segments_in_flight = 0;
  int max_segments_in_flight = 0;
  int responses_open = 0;
  bool listen_done = false;  // the server thread finished trying to listen
  std::string listen_error;
  int bound_port = 0;
  // Set by start()/stop() on the caller's thread (guarded by mu for the
  // handle; ctx/loop are only freed after the join).
  std::thread thread;
  GMainContext *ctx = nullptr;
  GMainLoop *loop = nullptr;
  // Server thread only:
  SoupServer *soup = nullptr;
  bool https = false;  // set before the server thread listens; read-only after
  std::set<Response *> responses;

  // ---- server thread -------------------------------------------------------

  void thread_main() noexcept {
    g_main_context_push_thread_default(ctx);
    std::string err;
    int port = 0;
    soup = soup_server_new("server-header", "segdl-server ", nullptr);
    if (!opts.tls_cert_pem.empty() && !opts.tls_key_pem.empty()) {
      std::string pem = opts.tls_cert_pem + "\n" + opts.tls_key_pem;
      GError *terr = nullptr;
      GTlsCertificate *cert = g_tls_certificate_new_from_pem(pem.c_str(), -1, &terr);
      if (cert) {
        soup_server_set_tls_certificate(soup, cert);
        g_object_unref(cert);
        https = true;
      } else {
        g_warning("segdl-server: bad TLS certificate: %s", terr->message);
        g_clear_error(&terr);
      }
    }
    soup_server_add_handler(soup, nullptr, on_request, this, nullptr);
    if (listen(err, port)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        bound_port = port;
        listen_done = true;
      }
      cv.notify_all();
      g_main_loop_run(loop);
    } else {
      {
        std::lock_guard<std::mutex> lock(mu);
        listen_error = err;
        listen_done = true;
      }
      cv.notify_all();
    }
    while (!responses.empty()) finish(*responses.begin());
    soup_server_disconnect(soup);
    g_clear_object(&soup);
    while (g_main_context_iteration(ctx, FALSE)) {
    }
    g_main_context_pop_thread_default(ctx);
  }

  bool listen(std::string &err, int &port) {
    GError *gerr = nullptr;
    gboolean ok;
    const std::string &host = opts.host;
    if (host.empty() || host == "localhost") {
      ok = soup_server_listen_local(soup, static_cast<guint>(opts.port),
                                    SoupServerListenOptions(SOUP_SERVER_LISTEN_IPV4_ONLY |
                                                            (https ? SOUP_SERVER_LISTEN_HTTPS : 0)),
                                    &gerr);
    } else if (host == "0.0.0.0" || host == "*") {
      ok = soup_server_listen_all(soup, static_cast<guint>(opts.port), SOUP_SERVER_LISTEN_IPV4_ONLY,
                                  &gerr);
    } else {
      GSocketAddress *addr =
          g_inet_socket_address_new_from_string(host.c_str(), static_cast<guint>(opts.port));
      if (!addr) {
        err = "not an IP address: " + host;
        return false;
      }
      ok = soup_server_listen(
          soup, addr, static_cast<SoupServerListenOptions>(https ? SOUP_SERVER_LISTEN_HTTPS : 0),
          &gerr);
      g_object_unref(addr);
    }
    if (!ok) {
      err = std::string("cannot listen on ") + host + ":" + std::to_string(opts.port) + ": " +
            (gerr ? gerr->message : "unknown error");
      g_clear_error(&gerr);
      return false;
    }
    port = listening_port(soup);
    if (port <= 0) {
      err = "cannot find the listening port";
      return false;
    }
    return true;
  }

  static gboolean on_shutdown(gpointer data) noexcept {
    auto *self = static_cast<Impl *>(data);
    // Connections first: their messages end through finish() ("disconnected").
    if (self->soup) soup_server_disconnect(self->soup);
    while (!self->responses.empty()) self->finish(*self->responses.begin());
    g_main_loop_quit(self->loop);
    return G_SOURCE_REMOVE;
  }

  // end_stalls() on the server thread: a "stall" pausing now resumes at
  // once; one whose pause has not begun yet will not pause.
  struct EndStalls {
    Impl *impl;
    std::string video_id;
    int64_t segment;
    bool ranged_only;
  };
  static gboolean on_end_stalls(gpointer data) noexcept {
    auto *e = static_cast<EndStalls *>(data);
    for (Response *r : e->impl->responses) {
      if (r->video_id != e->video_id || r->segment != e->segment || r->after != After::Stall ||
          r->stall_over || (e->ranged_only && r->range.empty()))
        continue;
      r->stall_s = 0;
      if (r->timer_kind == Timer::StallOver) e->impl->schedule(r, 0, Timer::StallOver);
    }
    return G_SOURCE_REMOVE;
  }

  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *query,
                         gpointer data) noexcept {
    static_cast<Impl *>(data)->begin(msg, path, query);
  }

  void begin(SoupServerMessage *msg, const char *raw_path, GHashTable *query) {
    auto *r = new Response;
    r->impl = this;
    r->msg = static_cast<SoupServerMessage *>(g_object_ref(msg));
    const char *method = soup_server_message_get_method(msg);
    r->head = method == SOUP_METHOD_HEAD;
    gchar *decoded = g_uri_unescape_string(raw_path, nullptr);
    r->path = decoded ? decoded : raw_path;
    g_free(decoded);
    const char *v = query ? static_cast<const char *>(g_hash_table_lookup(query, "v")) : nullptr;
    const char *seg =
        query ? static_cast<const char *>(g_hash_table_lookup(query, "segment")) : nullptr;
    if (r->path == "/status") {
      r->kind = Kind::Status;
      r->video_id = v ? v : "";
    } else if (r->path == "/stream") {
      r->video_id = v ? v : "";
      if (seg) {
        r->kind = Kind::Segment;
        guint64 n = 0;
        r->segment = g_ascii_string_to_unsigned(seg, 10, 0, G_MAXINT32, &n, nullptr)
                         ? static_cast<int64_t>(n)
                         : G_MAXINT64;  // unparsable: answered 400 below
      } else {
        r->kind = Kind::Full;
      }
    } else if (g_str_has_prefix(r->path.c_str(), "/full/")) {
      r->kind = Kind::Full;
      r->video_id = r->path.substr(6);
    }
    const char *range =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Range");
    r->range = range ? range : "";

    const int64_t now = g_get_monotonic_time();
    {
      std::lock_guard<std::mutex> lock(mu);
      RequestRecord rec;
      rec.path = r->path;
      rec.video_id = r->video_id;
      rec.segment = r->kind == Kind::Segment && r->segment != G_MAXINT64 ? r->segment : -1;
      rec.range = r->range;
      rec.start_us = now;
      r->log_index = log.size();
      log.push_back(rec);
      responses_open++;
      // Segment downloads in flight: a tail asked beside one (suffix) is not one.
      if (r->kind == Kind::Segment && !g_str_has_prefix(r->range.c_str(), "bytes=-")) {
        r->counted = true;
        segments_in_flight++;
        max_segments_in_flight = std::max(max_segments_in_flight, segments_in_flight);
      }
      if ((r->kind == Kind::Status || r->kind == Kind::Segment) && !r->video_id.empty())
        first_request_us.emplace(r->video_id, now);
      if (r->kind == Kind::Segment) segment_asked.insert(r->video_id);
    }
    cv.notify_all();
    if (r->kind == Kind::Segment) release_status_holds(r->video_id);
    responses.insert(r);
    r->finished_id = g_signal_connect(msg, "finished", G_CALLBACK(on_msg_finished), r);
    r->disconnected_id = g_signal_connect(msg, "disconnected", G_CALLBACK(on_msg_finished), r);

    if (opts.latency_ms > 0) {
      soup_server_message_pause(msg);
      r->paused = true;
      schedule(r, opts.latency_ms, Timer::Latency);
      return;
    }
    respond(r);
  }

  static void on_msg_finished(SoupServerMessage *, gpointer data) noexcept {
    auto *r = static_cast<Response *>(data);
    r->impl->finish(r);
  }

  // Ends a response: log, counters, and frees it. Idempotent per response
  // because the response is gone afterwards and its handlers disconnected.
  void finish(Response *r) {
    if (r->finished_id) g_signal_handler_disconnect(r->msg, r->finished_id);
    if (r->disconnected_id) g_signal_handler_disconnect(r->msg, r->disconnected_id);
    if (r->wrote_id) g_signal_handler_disconnect(r->msg, r->wrote_id);
    cancel_timer(r);
    {
      std::lock_guard<std::mutex> lock(mu);
      RequestRecord &rec = log[r->log_index];
      rec.end_us = g_get_monotonic_time();
      if (!rec.http_status)
        rec.http_status = static_cast<int>(soup_server_message_get_status(r->msg));
      if (r->counted) segments_in_flight--;
      responses_open--;
    }
    cv.notify_all();
    if (r->body) g_bytes_unref(r->body);
    responses.erase(r);
    g_object_unref(r->msg);
    delete r;
  }

  // ---- timers ----------------------------------------------------------------

  void cancel_timer(Response *r) {
    if (!r->timer) return;
    g_source_destroy(r->timer);
    g_source_unref(r->timer);
    r->timer = nullptr;
    r->timer_kind = Timer::None;
  }

  void schedule(Response *r, int64_t delay_ms, Timer kind) {
    cancel_timer(r);
    r->timer = g_timeout_source_new(static_cast<guint>(std::max<int64_t>(0, delay_ms)));
    r->timer_kind = kind;
    g_source_set_callback(r->timer, on_timer, r, nullptr);
    g_source_attach(r->timer, ctx);
  }

  static gboolean on_timer(gpointer data) noexcept {
    auto *r = static_cast<Response *>(data);
    Impl *self = r->impl;
    const Timer kind = r->timer_kind;
    g_source_unref(r->timer);  // the dispatching main loop still holds one
    r->timer = nullptr;
    r->timer_kind = Timer::None;
    switch (kind) {
      case Timer::Latency:
        self->respond(r);
        break;
      case Timer::Pump:
        self->pump(r);
        break;
      case Timer::PhaseReached:
        self->phase_reached(r);
        break;
      case Timer::StatusHold:
        r->status_held = true;
        self->respond(r);
        break;
      case Timer::StallOver:
        r->stall_over = true;
        r->pace_start_us = g_get_monotonic_time();
        r->pace_start_bytes = r->appended;
        self->pump(r);
        break;
      case Timer::None:
        break;
    }
    return G_SOURCE_REMOVE;
  }

  // ---- responses -----------------------------------------------------------

  void set_status(Response *r, guint status) {
    soup_server_message_set_status(r->msg, status, nullptr);
    std::lock_guard<std::mutex> lock(mu);
    log[r->log_index].http_status = static_cast<int>(status);
  }

  // A complete, small response.
  void reply(Response *r, guint status, const char *content_type, const std::string &body) {
    set_status(r, status);
    // No accumulation: libsoup would otherwise answer Range requests on its own.
    soup_message_body_set_accumulate(soup_server_message_get_response_body(r->msg), FALSE);
    soup_server_message_set_response(r->msg, content_type, SOUP_MEMORY_COPY, body.data(),
                                     body.size());
    if (r->paused) soup_server_message_unpause(r->msg);
    r->paused = false;
  }

  void reply_error(Response *r, guint status, const std::string &text) {
    reply(r, status, "application/json", "{\"error\":\"" + json_escape(text) + "\"}");
  }

  void reply_not_ready(Response *r, double retry_after_s, const std::string &text) {
    const int64_t secs = static_cast<int64_t>(std::ceil(std::max(0.0, retry_after_s)));
    soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Retry-After",
                                 std::to_string(secs).c_str());
    reply_error(r, SOUP_STATUS_NOT_FOUND, text);
  }

  void respond(Response *r) {
    const char *method = soup_server_message_get_method(r->msg);
    if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD) {
      soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Allow",
                                   "GET, HEAD");
      reply_error(r, SOUP_STATUS_METHOD_NOT_ALLOWED, "only GET and HEAD");
      return;
    }
    switch (r->kind) {
      case Kind::Status:
        respond_status(r);
        return;
      case Kind::Segment:
      case Kind::Full:
        respond_body(r);
        return;
      case Kind::Other:
        reply_error(r, SOUP_STATUS_NOT_FOUND, "no such endpoint: " + r->path);
        return;
    }
  }

  // Takes (consumes one use of) the first fault that matches. Caller holds mu.
  bool take_fault(const std::string &id, Kind kind, int64_t segment, bool (*accept)(const Fault &),
                  Fault &out) {
    for (auto it = faults.begin(); it != faults.end(); ++it) {
      Fault &f = *it;
      if (f.count == 0 || f.video_id != id || !accept(f)) continue;
      if (kind == Kind::Segment && f.segment != -1 && f.segment != segment) continue;
      if (kind == Kind::Full && f.segment != kSegmentFull) continue;
      out = f;
      if (f.count > 0 && --f.count == 0) faults.erase(it);
      return true;
    }
    return false;
  }

  // Number of leading segments ready at `now`. Caller holds mu.
  int64_t ready_count(const std::string &id, const StoredTrack &t, int64_t now) const {
    const auto total = static_cast<int64_t>(t.segments.size());
    auto held = held_ready.find(id);
    if (held != held_ready.end()) return std::clamp<int64_t>(held->second, 0, total);
    if (opts.reveal_every <= 0) return total;
    auto it = first_request_us.find(id);
    const int64_t first = it != first_request_us.end() ? it->second : now;
    const double elapsed = static_cast<double>(now - first) / G_USEC_PER_SEC;
    const auto n = static_cast<int64_t>(std::floor(elapsed / opts.reveal_every)) + 1;
    return std::clamp<int64_t>(n, 0, total);
  }

  // "statushold": a status answer waits for the id's first segment request
  // (at most `seconds`). Server thread.
  void hold_status(Response *r, double seconds) {
    if (!r->paused) soup_server_message_pause(r->msg);
    r->paused = true;
    schedule(r, static_cast<int64_t>(seconds * 1000.0), Timer::StatusHold);
  }

  // A segment of `id` was asked for: the status answers held for it go now.
  void release_status_holds(const std::string &id) {
    for (Response *h : responses)
      if (h->timer_kind == Timer::StatusHold && h->video_id == id)
        schedule(h, 0, Timer::StatusHold);
  }

  void respond_status(Response *r) {
    std::shared_ptr<const StoredTrack> t;
    Fault fault;
    bool faulted = false;
    int64_t ready = 0;
    double hold_s = -1;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = tracks.find(r->video_id);
      Fault hold;
      if (it != tracks.end() && !r->status_held && !segment_asked.count(r->video_id) &&
          take_fault(
              r->video_id, Kind::Status, -1, [](const Fault &f) { return f.kind == "statushold"; },
              hold))
        hold_s = hold.arg;
      if (it != tracks.end() && hold_s < 0) {
        t = it->second;
        faulted = take_fault(
            r->video_id, Kind::Status, -1,
            [](const Fault &f) { return is_status_fault(f.kind) && f.kind != "statushold"; },
            fault);
        ready = ready_count(r->video_id, *t, g_get_monotonic_time());
        if (faulted && fault.kind == "statusregress") {
          auto last = last_ready_sent.find(r->video_id);
          const int64_t prev = last != last_ready_sent.end() ? last->second : ready;
          ready = std::max<int64_t>(0, std::min(prev, ready) - 1);
        }
        if (!faulted || (fault.kind != "status500" && fault.kind != "badjson"))
          last_ready_sent[r->video_id] = ready;
      }
    }
    if (hold_s >= 0) {
      hold_status(r, hold_s);
      return;
    }
    if (r->video_id.empty()) {
      reply_error(r, SOUP_STATUS_BAD_REQUEST, "missing v");
      return;
    }
    if (!t) {
      reply_error(r, SOUP_STATUS_NOT_FOUND, "unknown video id");
      return;
    }
    if (faulted && fault.kind == "status500") {
      reply_error(r, SOUP_STATUS_INTERNAL_SERVER_ERROR, "injected failure");
      return;
    }
    if (faulted && fault.kind == "badjson") {
      reply(r, SOUP_STATUS_OK, "application/json", "<html>this is not JSON {\"ready\":[0,");
      return;
    }
    const bool error_state = faulted && fault.kind == "statuserror";
    const auto total = static_cast<int64_t>(t->segments.size());
    std::string json = "{\"ready\":[";
    for (int64_t i = 0; i < ready; i++) {
      if (i) json += ',';
      json += std::to_string(i);
    }
    json += ']';
    if (!opts.total_unknown) json += ",\"totalSegments\":" + std::to_string(total);
    if (opts.status_style == StatusStyle::Rich || error_state) {
      const char *state = "processing";
      if (error_state)
        state = "error";
      else if (!opts.total_unknown && ready == total)
        state = "complete";
      json += ",\"state\":\"" + std::string(state) + "\"";
      if (error_state) json += ",\"error\":\"injected failure\"";
      if (t->duration > 0) json += ",\"duration\":" + json_number(t->duration);
      json += ",\"segment_duration\":" + json_number(t->segment_duration);
      json += ",\"first_segment_duration\":" + json_number(t->first_segment_duration);
      json += ",\"mime_type\":\"" + json_escape(t->mime_type) + "\"";
    }
    json += '}';
    reply(r, SOUP_STATUS_OK, "application/json", json);
  }

  void respond_body(Response *r) {
    std::shared_ptr<const StoredTrack> t;
    Fault fault;
    bool faulted = false;
    double reveal_in_s = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = tracks.find(r->video_id);
      if (it != tracks.end()) t = it->second;
      const bool in_range =
          t && (r->kind == Kind::Full || r->segment < static_cast<int64_t>(t->segments.size()));
      // A tail asked with a suffix Range beside a body ("bytes=-N") meets
      // no fault: the faults are the body's (a test holding or failing a
      // body must not hit the tail instead, whichever request comes first).
      const bool suffix = g_str_has_prefix(r->range.c_str(), "bytes=-");
      if (in_range) {
        // Faults that replace the answer come first, whatever the reveal state.
        auto replaces = [](const Fault &f) {
          return f.kind == "http500" || f.kind == "notready" || f.kind == "redirect" ||
                 f.kind == "redirectftp";
        };
        faulted = !suffix && take_fault(r->video_id, r->kind, r->segment, replaces, fault);
        const bool held = held_ready.count(r->video_id) > 0;
        if (!faulted && r->kind == Kind::Segment && (held || opts.reveal_every > 0)) {
          const int64_t now = g_get_monotonic_time();
          if (r->segment >= ready_count(r->video_id, *t, now)) {
            reveal_in_s = 1.0;
            if (!held) {
              const int64_t first = first_request_us[r->video_id];
              const double at_s = static_cast<double>(r->segment) * opts.reveal_every;
              reveal_in_s = at_s - static_cast<double>(now - first) / G_USEC_PER_SEC;
              reveal_in_s = std::max(1.0, reveal_in_s);
            }
          }
        }
        // Faults that damage the body only apply to bodies.
        if (!faulted && reveal_in_s == 0 && !suffix) {
          faulted = take_fault(
              r->video_id, r->kind, r->segment,
              [](const Fault &f) {
                return f.kind == "reset" || f.kind == "truncate" || f.kind == "stall" ||
                       f.kind == "endless";
              },
              fault);
        }
      }
    }
    if (r->video_id.empty()) {
      reply_error(r, SOUP_STATUS_BAD_REQUEST, "missing v");
      return;
    }
    if (r->kind == Kind::Segment && r->segment == G_MAXINT64) {
      reply_error(r, SOUP_STATUS_BAD_REQUEST, "bad segment number");
      return;
    }
    if (!t) {
      reply_error(r, SOUP_STATUS_NOT_FOUND, "unknown video id");
      return;
    }
    if (r->kind == Kind::Segment && r->segment >= static_cast<int64_t>(t->segments.size())) {
      reply_error(r, SOUP_STATUS_NOT_FOUND, "no such segment");
      return;
    }
    if (faulted && fault.kind == "http500") {
      reply_error(r, SOUP_STATUS_INTERNAL_SERVER_ERROR, "injected failure");
      return;
    }
    if (faulted && (fault.kind == "redirect" || fault.kind == "redirectftp")) {
      // 302 to the same URL (a loop while the fault lasts), or to ftp://.
      gchar *here = g_uri_to_string(soup_server_message_get_uri(r->msg));
      std::string to = fault.kind == "redirect" ? here : "ftp://127.0.0.1/segment";
      g_free(here);
      soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Location",
                                   to.c_str());
      reply_error(r, SOUP_STATUS_FOUND, "moved (injected)");
      return;
    }
    if (faulted && fault.kind == "notready") {
      reply_not_ready(r, fault.arg, "segment not ready (injected)");
      return;
    }
    if (reveal_in_s > 0) {
      reply_not_ready(r, reveal_in_s, "segment not ready");
      return;
    }
    GBytes *whole = r->kind == Kind::Segment ? t->segments[static_cast<size_t>(r->segment)].get()
                                             : t->full.get();
    const uint64_t size = g_bytes_get_size(whole);
    SoupMessageHeaders *hdrs = soup_server_message_get_response_headers(r->msg);
    soup_message_headers_replace(hdrs, "Accept-Ranges", opts.ranges ? "bytes" : "none");
    bool satisfiable = false;
    uint64_t first = 0, last = 0;
    guint status = SOUP_STATUS_OK;
    GBytes *body;
    if (opts.ranges && parse_range(r->range.empty() ? nullptr : r->range.c_str(), size, satisfiable,
                                   first, last)) {
      if (!satisfiable) {
        soup_message_headers_replace(hdrs, "Content-Range",
                                     ("bytes */" + std::to_string(size)).c_str());
        reply_error(r, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE, "range not satisfiable");
        return;
      }
      status = SOUP_STATUS_PARTIAL_CONTENT;
      soup_message_headers_set_content_range(hdrs, static_cast<goffset>(first),
                                             static_cast<goffset>(last),
                                             static_cast<goffset>(size));
      body = g_bytes_new_from_bytes(whole, first, last - first + 1);
    } else {
      body = g_bytes_ref(whole);
    }
    start_body(r, status, t->mime_type, body, faulted ? &fault : nullptr);
  }

  // Starts writing `body` (owned). Unthrottled, unfaulted bodies go to libsoup
  // whole; the others are fed piece by piece by pump().
  void start_body(Response *r, guint status, const std::string &mime, GBytes *body,
                  const Fault *fault) {
    r->body = body;
    r->size = g_bytes_get_size(body);
    SoupMessageHeaders *hdrs = soup_server_message_get_response_headers(r->msg);
    soup_message_headers_set_content_type(hdrs, mime.c_str(), nullptr);
    soup_message_headers_set_content_length(hdrs, static_cast<goffset>(r->size));
    set_status(r, status);
    SoupMessageBody *out = soup_server_message_get_response_body(r->msg);
    // We answer ranges ourselves; without accumulation libsoup never tries
    // (it would turn a multi-range request into a multipart 206).
    soup_message_body_set_accumulate(out, FALSE);
    if (fault && fault->kind == "endless" && r->size > 0 && !r->head) {
      // No length, and the same bytes again and again (up to kEndlessCap).
      r->endless = true;
      soup_message_headers_set_encoding(hdrs, SOUP_ENCODING_CHUNKED);
      pump(r);
      return;
    }
    if (fault && r->size > 0 && !r->head) {
      r->phase_end = std::max<uint64_t>(1, r->size / 2);
      if (fault->kind == "stall") {
        r->after = After::Stall;
        r->stall_s = fault->arg;
      } else if (fault->kind == "truncate") {
        r->after = After::Close;
      } else {
        r->after = After::Reset;
      }
    }
    const bool throttled = opts.bandwidth_kbps > 0 && !r->head;
    if (!throttled && r->after == After::Complete) {
      // An empty body is no chunk: libsoup refuses one (a CRITICAL).
      if (r->size > 0) soup_message_body_append_bytes(out, body);
      soup_message_body_complete(out);
      if (r->paused) soup_server_message_unpause(r->msg);
      r->paused = false;
      return;
    }
    if (r->after != After::Complete)
      r->wrote_id = g_signal_connect(r->msg, "wrote-body-data", G_CALLBACK(on_wrote_body_data), r);
    r->pace_start_us = g_get_monotonic_time();
    r->pace_start_bytes = 0;
    pump(r);
  }

  // Appends the next piece of the body (all of the current phase when not
  // throttled), then arranges what comes next: another piece on the pacing
  // clock, or the end of the phase once libsoup reports the bytes written.
  void pump(Response *r) {
    SoupMessageBody *out = soup_server_message_get_response_body(r->msg);
    if (r->endless) {
      constexpr uint64_t kEndlessCap = 64 * 1024 * 1024;  // the server stops somewhere
      soup_message_body_append_bytes(out, r->body);
      r->appended += r->size;
      if (r->appended >= kEndlessCap) soup_message_body_complete(out);
      soup_server_message_unpause(r->msg);
      r->paused = false;
      if (r->appended < kEndlessCap) schedule(r, 5, Timer::Pump);
      return;
    }
    const bool throttled = opts.bandwidth_kbps > 0;
    const uint64_t limit =
        r->after == After::Complete || (r->after == After::Stall && r->stall_over) ? r->size
                                                                                   : r->phase_end;
    if (r->appended < limit) {
      uint64_t n = limit - r->appended;
      if (throttled) n = std::min<uint64_t>(n, std::max<size_t>(1, opts.chunk_bytes));
      GBytes *piece = g_bytes_new_from_bytes(r->body, r->appended, n);
      soup_message_body_append_bytes(out, piece);
      g_bytes_unref(piece);
      r->appended += n;
    }
    if (r->appended == r->size) soup_message_body_complete(out);
    soup_server_message_unpause(r->msg);
    r->paused = false;
    if (r->appended < limit) {
      // kbps = 1000 bits per second: when may the bytes so far have been sent?
      const double bytes = static_cast<double>(r->appended - r->pace_start_bytes);
      const auto due_us =
          r->pace_start_us + static_cast<int64_t>(bytes * 8.0 * 1000.0 / opts.bandwidth_kbps);
      const int64_t wait_ms = (due_us - g_get_monotonic_time() + 999) / 1000;
      schedule(r, wait_ms, Timer::Pump);
    } else if (r->appended < r->size && r->written >= r->phase_end && !r->phase_handled) {
      r->phase_handled = true;
      schedule(r, 0, Timer::PhaseReached);
    }
  }

  static void on_wrote_body_data(SoupServerMessage *, guint n, gpointer data) noexcept {
    auto *r = static_cast<Response *>(data);
    r->written += n;
    // Act outside libsoup's write loop.
    if (!r->phase_handled && r->written >= r->phase_end && r->appended == r->phase_end &&
        r->after != After::Complete) {
      r->phase_handled = true;
      r->impl->schedule(r, 0, Timer::PhaseReached);
    }
  }

  // The first part of a faulted body is on the wire.
  void phase_reached(Response *r) {
    if (r->after == After::Stall) {
      schedule(r, static_cast<int64_t>(r->stall_s * 1000.0), Timer::StallOver);
      return;
    }
    close_connection(r, r->after == After::Reset);
  }

  // Takes the connection away from libsoup and closes it: gracefully (FIN,
  // "truncate") or abortively (RST through SO_LINGER 0, "reset"). libsoup does
  // not emit "finished" for a stolen connection, so the response ends here.
  void close_connection(Response *r, bool abortive) {
    SoupServerMessage *msg = static_cast<SoupServerMessage *>(g_object_ref(r->msg));
    GSocket *sock = soup_server_message_get_socket(msg);
    if (sock) g_object_ref(sock);
    finish(r);  // r is gone
    GIOStream *stream = soup_server_message_steal_connection(msg);
    if (abortive && sock) {
      struct linger lg = {};
      lg.l_onoff = 1;
      lg.l_linger = 0;
      setsockopt(g_socket_get_fd(sock), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    if (stream) {
      g_io_stream_close(stream, nullptr, nullptr);
      g_object_unref(stream);
    }
    if (sock) {
      g_socket_close(sock, nullptr);
      g_object_unref(sock);
    }
    g_object_unref(msg);
  }
};

// ---- public API ----------------------------------------------------------------

Server::Server(Options opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

Server::~Server() {
  stop();
}

void Server::add_track(const std::string &video_id, Track track) {
  auto t = std::make_shared<StoredTrack>();
  uint64_t total = 0;
  for (Bytes &b : track.segments) {
    total += b.size();
    t->segments.emplace_back(g_bytes_new(b.data(), b.size()));
  }
  if (!track.full.empty()) {
    t->full.reset(g_bytes_new(track.full.data(), track.full.size()));
  } else {
    Bytes all;
    all.reserve(total);
    for (const Bytes &b : track.segments) all.insert(all.end(), b.begin(), b.end());
    t->full.reset(g_bytes_new(all.data(), all.size()));
  }
  t->mime_type = track.mime_type;
  t->first_segment_duration = track.first_segment_duration;
  t->segment_duration = track.segment_duration;
  t->duration = track.duration;
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->tracks[video_id] = std::move(t);
}

void Server::add_fault(const Fault &f) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->faults.push_back(f);
}

void Server::hold_ready(const std::string &video_id, int64_t n) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (n < 0)
    impl_->held_ready.erase(video_id);
  else
    impl_->held_ready[video_id] = n;
}

void Server::end_stalls(const std::string &video_id, int64_t segment, bool ranged_only) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->thread.joinable()) return;
  GSource *src = g_idle_source_new();
  g_source_set_callback(src, Impl::on_end_stalls,
                        new Impl::EndStalls{impl_.get(), video_id, segment, ranged_only},
                        [](gpointer p) { delete static_cast<Impl::EndStalls *>(p); });
  g_source_attach(src, impl_->ctx);
  g_source_unref(src);
}

bool Server::start(std::string &error) {
  Impl &m = *impl_;
  std::unique_lock<std::mutex> lock(m.mu);
  if (m.thread.joinable()) {
    error = "already started";
    return false;
  }
  m.listen_done = false;
  m.listen_error.clear();
  m.bound_port = 0;
  m.ctx = g_main_context_new();
  m.loop = g_main_loop_new(m.ctx, FALSE);
  m.thread = std::thread([&m] { m.thread_main(); });
  const bool done = m.cv.wait_for(lock, std::chrono::seconds(10), [&m] { return m.listen_done; });
  if (done && m.listen_error.empty()) return true;
  if (!done) {
    error = "the server thread did not start in time";
    lock.unlock();
    stop();
    return false;
  }
  // The thread gave up listening and is ending on its own.
  error = m.listen_error;
  std::thread t = std::move(m.thread);
  lock.unlock();
  t.join();
  g_main_loop_unref(m.loop);
  m.loop = nullptr;
  g_main_context_unref(m.ctx);
  m.ctx = nullptr;
  return false;
}

void Server::stop() {
  Impl &m = *impl_;
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(m.mu);
    if (!m.thread.joinable()) return;
    t = std::move(m.thread);
  }
  GSource *src = g_idle_source_new();
  g_source_set_callback(src, Impl::on_shutdown, &m, nullptr);
  g_source_attach(src, m.ctx);
  g_source_unref(src);
  t.join();
  // The thread has ended: nothing else uses the loop or the context.
  g_main_loop_unref(m.loop);
  m.loop = nullptr;
  g_main_context_unref(m.ctx);
  m.ctx = nullptr;
}

int Server::port() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->bound_port;
}

std::string Server::base_url() const {
  std::string host = impl_->opts.host;
  if (host.empty() || host == "localhost" || host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(impl_->https ? "https://" : "http://") + host + ":" + std::to_string(port());
}

std::vector<RequestRecord> Server::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->log;
}

int Server::max_segment_requests_in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->max_segments_in_flight;
}

bool Server::wait_idle(int timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [this] { return impl_->responses_open == 0; });
}

bool Server::wait_requests(size_t count, int timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [this, count] { return impl_->log.size() >= count; });
}

}  // namespace segdl::server
