// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the server thread, routing and the public API (see
 * gateway.h, core.h).
 */
#include "gateway/joinfile.h"
#include "segdl/fetcher.h"
#include "segdl/httpmodule.h"
#include "segdl/urls.h"
#include "server/util.h"

#include <gio/gio.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>

// The libsoup 3 Fetcher, built into this program (soupfetcher.cpp).
extern "C" segdl::Fetcher *segdl_http_fetcher_new(int abi, const segdl::FetcherConfig *config,
                                                  char **error);

namespace segdl::gateway {

namespace {

// Bounds of Options::max_client_queue_bytes (--max-client-queue).
constexpr int64_t kMinClientQueue = 4096;
constexpr int64_t kMaxClientQueue = int64_t(1) << 30;

// `s` with its %-escapes decoded to its full length (a "%00" stays a NUL
// byte, for the id check to refuse, never an end of string); `plus` reads '+'
// as a space (a query, as libsoup's form decoding does). False on a bad escape.
bool unescape(std::string s, bool plus, std::string &out) {
  if (plus) std::replace(s.begin(), s.end(), '+', ' ');
  GBytes *b = g_uri_unescape_bytes(s.c_str(), static_cast<gssize>(s.size()), nullptr, nullptr);
  if (!b) return false;
  gsize size = 0;
  const char *d = static_cast<const char *>(g_bytes_get_data(b, &size));
  out.assign(d ? d : "", size);
  g_bytes_unref(b);
  return true;
}

// The components of a request path as it came (the server keeps raw paths),
// each decoded alone: "/api/segments/a%2Fb/0" -> ["api", "segments", "a/b",
// "0"], "/" -> [""]. libsoup would decode the whole path first and answer a
// %00 or a "/../" made by a %2F itself, with a bare 400: here the id check
// answers them (JSON, CORS). False on a bad escape.
bool path_parts(const char *path, std::vector<std::string> &parts) {
  if (path[0] != '/') return false;
  g_auto(GStrv) pieces = g_strsplit(path + 1, "/", -1);
  for (char **p = pieces; *p; p++) {
    parts.emplace_back();
    if (!unescape(*p, false, parts.back())) return false;
  }
  if (parts.empty()) parts.emplace_back();
  return true;
}

// The value of `key` in the request's query, decoded to its full length
// (libsoup's query table holds C strings: "v=mp3%00" would read as "mp3").
// The last one counts, as in that table; a pair without '=' is no value.
bool query_param(SoupServerMessage *msg, const char *key, std::string &out) {
  const char *q = g_uri_get_query(soup_server_message_get_uri(msg));
  if (!q) return false;
  bool found = false;
  g_auto(GStrv) pairs = g_strsplit(q, "&", -1);
  for (char **p = pairs; *p; p++) {
    const char *eq = strchr(*p, '=');
    std::string name, value;
    if (!eq || !unescape(std::string(*p, size_t(eq - *p)), true, name) || name != key) continue;
    if (!unescape(eq + 1, true, value)) continue;
    out = value;
    found = true;
  }
  return found;
}

bool is(const std::vector<std::string> &parts, std::initializer_list<const char *> want) {
  if (parts.size() != want.size()) return false;
  size_t i = 0;
  for (const char *w : want)
    if (parts[i++] != w) return false;
  return true;
}

}  // namespace

bool valid_video_id(const std::string &id, const std::string &pattern) {
  if (id.empty() || id.size() > 256 || id.find('\0') != std::string::npos) return false;
  if (!g_utf8_validate(id.data(), static_cast<gssize>(id.size()), nullptr)) return false;
  return g_regex_match_simple(pattern.c_str(), id.c_str(), G_REGEX_DOLLAR_ENDONLY,
                              static_cast<GRegexMatchFlags>(0));
}

Gateway::Impl::Impl(Options o) : opts(std::move(o)) {}

Gateway::Impl::~Impl() = default;

void Gateway::Impl::count(uint64_t Counters::*field) {
  {
    std::lock_guard<std::mutex> lock(mu);
    counters.*field += 1;
  }
  cv.notify_all();
}

void Gateway::Impl::add(int Counters::*field, int delta) {
  {
    std::lock_guard<std::mutex> lock(mu);
    counters.*field += delta;
  }
  cv.notify_all();
}

void Gateway::Impl::note_queue(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mu);
  if (bytes > counters.max_client_queue) counters.max_client_queue = bytes;
}

bool Gateway::Impl::check_id(SoupServerMessage *msg, const std::string &id) {
  if (valid_video_id(id, opts.id_pattern)) return true;
  reply_error(msg, 400, "bad_video_id", "not a valid video id");
  return false;
}

// Every request: GET/HEAD for reads, POST for preload, DELETE for eviction.
// The web player (/, /listen/ID) and CORS preflights go to web_route() first.
// `path` is the request's path undecoded (raw-paths, thread_main()).
void Gateway::Impl::route(SoupServerMessage *msg, const char *path, GHashTable *query) {
  count(&Counters::requests);
  const std::string method = soup_server_message_get_method(msg);
  const bool read = method == "GET" || method == "HEAD";
  std::vector<std::string> parts;
  const bool decoded = path_parts(path, parts);
  // CORS, OPTIONS, the page, /listen/ID (web.cpp)
  if (web_route(msg, path, decoded ? parts : std::vector<std::string>{}, method)) return;
  if (!decoded) return reply_error(msg, 400, "bad_request", std::string("bad path: ") + path);
  if (is(parts, {"status"}) || is(parts, {"stream"})) {
    if (!read) return reply_error(msg, 405, "method_not_allowed", method + " " + path);
    std::string v, seg;
    if (!query_param(msg, "v", v))
      return reply_error(msg, 400, "bad_request", "missing v=VIDEO_ID");
    if (parts[0] == "status") return plain_status(msg, v);
    return query_param(msg, "segment", seg) ? get_segment(msg, v, seg) : get_full(msg, v);
  }
  if (is(parts, {"api", "segments", "preload"})) {
    if (method != "POST") return reply_error(msg, 405, "method_not_allowed", method + " " + path);
    return api_preload(msg);
  }
  if (is(parts, {"api", "segments", "cache"})) {
    if (method == "DELETE") return api_evict(msg, query);
    if (!read) return reply_error(msg, 405, "method_not_allowed", method + " " + path);
    return api_cache(msg, nullptr);
  }
  if (parts.size() < 2 || parts[0] != "api" || parts[1] != "segments")
    return reply_error(msg, 404, "not_found", std::string("no such endpoint: ") + path);
  if (!read) return reply_error(msg, 405, "method_not_allowed", method + " " + path);
  const std::vector<std::string> p(parts.begin() + 2, parts.end());
  if (p.size() == 2 && p[0] == "status") return api_status(msg, p[1]);
  if (p.size() == 2 && p[0] == "cache") return api_cache(msg, &p[1]);
  if (p.size() == 2) return get_segment(msg, p[0], p[1]);
  reply_error(msg, 404, "not_found", std::string("no such endpoint: ") + path);
}

void Gateway::Impl::thread_main() noexcept {
  g_main_context_push_thread_default(ctx);
  std::string err;
  int port = 0;
  FetcherConfig fc;
  fc.max_connections = opts.max_concurrent + 16;  // status and whole tracks besides
  fc.timeout_s = opts.timeout_s;
  fc.user_agent = "segdl-gateway";
  char *ferr = nullptr;
  fetcher.reset(segdl_http_fetcher_new(SEGDL_HTTP_MODULE_ABI, &fc, &ferr));
  // raw-paths: route() decodes each path component itself, so a %00 or a
  // %2F in an id gets our JSON error, not libsoup's bare 400.
  soup = soup_server_new("server-header", "segdl-gateway ", "raw-paths", TRUE, nullptr);
  soup_server_add_handler(
      soup, nullptr,
      [](SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *query,
         gpointer data) noexcept {
        try {
          static_cast<Impl *>(data)->route(msg, path, query);
        } catch (const std::exception &e) {
          reply_error(msg, 500, "internal_error", e.what());
        }
      },
      this, nullptr);
  const bool ok = fetcher && listen(err, port);
  if (!fetcher) err = std::string("HTTP client: ") + (ferr ? ferr : "unknown error");
  g_free(ferr);
  {
    std::lock_guard<std::mutex> lock(mu);
    bound_port = port;
    listen_error = ok ? "" : err;
    listen_done = true;
  }
  cv.notify_all();
  if (ok) g_main_loop_run(loop);
  shutdown();
  g_main_context_pop_thread_default(ctx);
}

bool Gateway::Impl::listen(std::string &err, int &port) {
  GError *gerr = nullptr;
  GSocketAddress *addr =
      g_inet_socket_address_new_from_string(opts.host.c_str(), static_cast<guint>(opts.port));
  if (!addr) {
    err = "not an IP address: " + opts.host;
    return false;
  }
  const gboolean ok =
      soup_server_listen(soup, addr, static_cast<SoupServerListenOptions>(0), &gerr);
  g_object_unref(addr);
  if (!ok) {
    err = "cannot listen on " + opts.host + ":" + std::to_string(opts.port) + ": " +
          (gerr ? gerr->message : "unknown error");
    g_clear_error(&gerr);
    return false;
  }
  port = server::listening_port(soup);
  if (port <= 0) {
    err = "cannot find the listening port";
    return false;
  }
  return true;
}

// This gateway's own address, as segdlsrc's backend (/listen, joins).
std::string Gateway::Impl::self_url() const {
  int port = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    port = bound_port;
  }
  std::string h = opts.host;
  if (h == "0.0.0.0") h = "127.0.0.1";
  if (h == "::") h = "::1";
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return "http://" + h + ":" + std::to_string(port);
}

// Cancels every transfer (answering no one), closes the connections, frees
// everything on this thread.
void Gateway::Impl::shutdown() {
  stopping = true;
  if (verifier) verifier->stop();  // drops the answers waiting for a check
  preloads.clear();
  queue.clear();
  for (auto &kv : fills) kv.second->abandon();
  abandon_proxies();
  abandon_joins();
  abandon_bodies();
  if (soup) soup_server_disconnect(soup);
  fills.clear();
  status_fetches.clear();
  graveyard.clear();
  if (graveyard_idle) {
    GSource *s = g_main_context_find_source_by_id(ctx, graveyard_idle);
    if (s) g_source_destroy(s);
    graveyard_idle = 0;
  }
  g_clear_object(&soup);
  while (g_main_context_iteration(ctx, FALSE)) {
  }
  fetcher.reset();
  while (g_main_context_iteration(ctx, FALSE)) {
  }
  std::lock_guard<std::mutex> lock(mu);
  counters.fills_pending = 0;
  counters.fills_running = 0;
  counters.preloads = 0;
  cv.notify_all();
}

// ---- public API ----------------------------------------------------------------

Gateway::Gateway(Options opts) : impl_(std::make_unique<Impl>(std::move(opts))) {}

Gateway::~Gateway() {
  stop();
}

bool Gateway::start(std::string &error) {
  const Options &o = impl_->opts;
  if (!is_http_url(o.upstream)) {
    error = "--upstream must be an http:// or https:// URL";
    return false;
  }
  if (!o.fallback_upstream.empty() && !is_http_url(o.fallback_upstream)) {
    error = "--fallback-upstream must be an http:// or https:// URL";
    return false;
  }
  if (o.cache_dir.empty() || g_mkdir_with_parents(o.cache_dir.c_str(), 0755) != 0) {
    error = "--cache-dir: cannot use '" + o.cache_dir + "'";
    return false;
  }
  GError *rerr = nullptr;
  GRegex *re = g_regex_new(o.id_pattern.c_str(), static_cast<GRegexCompileFlags>(0),
                           static_cast<GRegexMatchFlags>(0), &rerr);
  if (!re) {
    error = "--id-pattern: " + std::string(rerr ? rerr->message : "bad pattern");
    g_clear_error(&rerr);
    return false;
  }
  g_regex_unref(re);
  if (o.max_concurrent < 1 || o.max_concurrent > 64) {
    error = "--max-concurrent must be 1..64";
    return false;
  }
  if (o.max_client_queue_bytes < kMinClientQueue || o.max_client_queue_bytes > kMaxClientQueue) {
    error = "--max-client-queue must be 4K..1G";
    return false;
  }
  if (impl_->thread.joinable()) {
    error = "already started";
    return false;
  }
  // GStreamer now, not on the first /listen (listen.cpp); without it the
  // API still works and /listen answers the error.
  std::string gst_error;
  if (!impl_->prepare_gstreamer(gst_error)) g_warning("segdl-gateway: %s", gst_error.c_str());
  impl_->ctx = g_main_context_new();
  impl_->loop = g_main_loop_new(impl_->ctx, FALSE);
  impl_->thread = std::thread([this] { impl_->thread_main(); });
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait(lock, [this] { return impl_->listen_done; });
  if (!impl_->listen_error.empty()) {
    error = impl_->listen_error;
    lock.unlock();
    stop();
    return false;
  }
  return true;
}

void Gateway::stop() {
  if (!impl_->thread.joinable()) return;
  GSource *quit = g_idle_source_new();
  g_source_set_callback(
      quit,
      [](gpointer data) noexcept -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop *>(data));
        return G_SOURCE_REMOVE;
      },
      impl_->loop, nullptr);
  g_source_attach(quit, impl_->ctx);
  g_source_unref(quit);
  impl_->thread.join();
  g_main_loop_unref(impl_->loop);
  g_main_context_unref(impl_->ctx);
  impl_->loop = nullptr;
  impl_->ctx = nullptr;
}

int Gateway::port() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->bound_port;
}

std::string Gateway::base_url() const {
  return "http://" + impl_->opts.host + ":" + std::to_string(port());
}

Counters Gateway::counters() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->counters;
}

bool Gateway::wait_idle(int timeout_ms) const {
  return wait_for([](const Counters &c) { return c.fills_pending == 0 && c.preloads == 0; },
                  timeout_ms);
}

bool Gateway::wait_for(const std::function<bool(const Counters &)> &pred, int timeout_ms) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                            [&] { return pred(impl_->counters); });
}

}  // namespace segdl::gateway
