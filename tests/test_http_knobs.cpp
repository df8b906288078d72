// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdlsrc's HTTP properties (souphttpsrc's knobs) against
 * small loopback servers that record what they receive: extra-headers and
 * cookies on every request (status, segments, fallback), Basic auth (401
 * without, plays with user-id/user-pw or user:pw@), a forward proxy with
 * proxy-id/proxy-pw, HTTPS with a private CA made by openssl (fails without
 * ssl-ca-file, plays with it or with tls-database), passwords never in
 * errors, messages or logs, and the segdl-http log: one line per request.
 */
#include "harness.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <future>
#include <thread>

using namespace segdl;
using namespace segdl::test;

namespace {

struct Seen {
  std::string method, uri;  // uri as the request line gave it (absolute through a proxy)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string header(const char *name) const {
    std::string all;
    for (const auto &h : headers)
      if (g_ascii_strcasecmp(h.first.c_str(), name) == 0)
        all += (all.empty() ? "" : ",") + h.second;
    return all;
  }
};

// A SoupServer on its own thread: serves one track (status, segments, the
// whole file at /full), or forwards every request to `upstream` (a proxy).
class TestServer {
 public:
  std::vector<Bytes> segments;
  std::string auth;                 // "user:pw": Basic auth required (401 without)
  std::string proxy_auth;           // "user:pw": a proxy that requires it (407 without)
  bool proxy = false;               // forward requests (absolute URIs) instead of serving
  bool status_fails = false;        // the status answers 500 (the fallback takes over)
  GTlsCertificate *cert = nullptr;  // HTTPS when set (owned)

  ~TestServer() {
    stop();
    g_clear_object(&cert);
  }

  void start() {
    std::promise<int> port;
    thread_ = std::thread([this, &port] { run(port); });
    std::future<int> f = port.get_future();
    fail_unless(f.wait_for(std::chrono::seconds(20)) == std::future_status::ready,
                "test server did not start");
    port_ = f.get();
    fail_unless(port_ > 0, "test server did not listen");
  }

  void stop() {
    if (!thread_.joinable()) return;
    g_main_context_invoke(
        ctx_,
        [](gpointer l) -> gboolean {
          g_main_loop_quit(static_cast<GMainLoop *>(l));
          return G_SOURCE_REMOVE;
        },
        loop_);
    thread_.join();
  }

  std::string url() const {
    return std::string(cert ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
  }
  int port() const { return port_; }

  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> g(lock_);
    return seen_;
  }

 private:
  void run(std::promise<int> &port) {
    ctx_ = g_main_context_new();
    g_main_context_push_thread_default(ctx_);
    loop_ = g_main_loop_new(ctx_, FALSE);
    SoupServer *srv = soup_server_new("tls-certificate", cert, nullptr);
    soup_server_add_handler(srv, nullptr, handler, this, nullptr);
    if (proxy) session_ = soup_session_new_with_options("timeout", 20, nullptr);
    GError *err = nullptr;
    GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *addr = g_inet_socket_address_new(lo, 0);
    bool ok = soup_server_listen(
        srv, addr, cert ? SOUP_SERVER_LISTEN_HTTPS : SoupServerListenOptions(0), &err);
    g_object_unref(addr);
    g_object_unref(lo);
    int p = 0;
    if (ok) {
      GSList *uris = soup_server_get_uris(srv);
      p = g_uri_get_port(static_cast<GUri *>(uris->data));
      g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
    }
    g_clear_error(&err);
    port.set_value(p);
    if (ok) g_main_loop_run(loop_);
    soup_server_disconnect(srv);
    g_object_unref(srv);
    g_clear_object(&session_);
    while (g_main_context_iteration(ctx_, FALSE)) {
    }
    g_main_loop_unref(loop_);
    g_main_context_pop_thread_default(ctx_);
    g_main_context_unref(ctx_);
  }

  static bool has_basic(SoupMessageHeaders *h, const char *header, const std::string &cred) {
    const char *v = soup_message_headers_get_one(h, header);
    g_autofree char *want =
        g_base64_encode(reinterpret_cast<const guchar *>(cred.data()), cred.size());
    return v && std::string(v) == std::string("Basic ") + want;
  }

  static void handler(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *query,
                      gpointer data) noexcept {
    auto *self = static_cast<TestServer *>(data);
    SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
    Seen s;
    s.method = soup_server_message_get_method(msg);
    g_autofree char *uri = g_uri_to_string(soup_server_message_get_uri(msg));
    s.uri = uri;
    SoupMessageHeadersIter it;
    const char *name, *value;
    soup_message_headers_iter_init(&it, req);
    while (soup_message_headers_iter_next(&it, &name, &value)) s.headers.emplace_back(name, value);
    {
      std::lock_guard<std::mutex> g(self->lock_);
      self->seen_.push_back(s);
    }
    SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
    if (self->proxy) {
      if (!self->proxy_auth.empty() && !has_basic(req, "Proxy-Authorization", self->proxy_auth)) {
        soup_message_headers_append(resp, "Proxy-Authenticate", "Basic realm=\"proxy\"");
        soup_server_message_set_status(msg, 407, nullptr);
        return;
      }
      self->forward(msg, uri);
      return;
    }
    if (!self->auth.empty() && !has_basic(req, "Authorization", self->auth)) {
      soup_message_headers_append(resp, "WWW-Authenticate", "Basic realm=\"segdl\"");
      soup_server_message_set_status(msg, 401, nullptr);
      return;
    }
    self->serve(msg, path, query);
  }

  void serve(SoupServerMessage *msg, const char *path, GHashTable *query) {
    const char *seg =
        query ? static_cast<const char *>(g_hash_table_lookup(query, "segment")) : nullptr;
    if (g_str_equal(path, "/status")) {
      if (status_fails) {
        soup_server_message_set_status(msg, 500, nullptr);
        return;
      }
      std::string json = "{\"ready\":[";
      for (size_t i = 0; i < segments.size(); i++) json += (i ? "," : "") + std::to_string(i);
      json += "],\"totalSegments\":" + std::to_string(segments.size()) + "}";
      soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, json.data(),
                                       json.size());
    } else if (g_str_equal(path, "/stream") && seg && size_t(atoi(seg)) < segments.size()) {
      const Bytes &b = segments[size_t(atoi(seg))];
      soup_server_message_set_response(msg, "audio/aac", SOUP_MEMORY_COPY,
                                       reinterpret_cast<const char *>(b.data()), b.size());
    } else if (g_str_equal(path, "/full")) {
      Bytes all = concat(segments);
      soup_server_message_set_response(msg, "audio/aac", SOUP_MEMORY_COPY,
                                       reinterpret_cast<const char *>(all.data()), all.size());
    } else {
      soup_server_message_set_status(msg, 404, nullptr);
      return;
    }
    soup_server_message_set_status(msg, 200, nullptr);
  }

  // The proxy: the same request to the upstream, answered with its reply
  // (blocking this server's thread: the upstream runs on its own).
  void forward(SoupServerMessage *msg, const char *uri) {
    SoupMessage *out = soup_message_new("GET", uri);
    GError *err = nullptr;
    GBytes *body = out ? soup_session_send_and_read(session_, out, nullptr, &err) : nullptr;
    if (!body) {
      soup_server_message_set_status(msg, 502, nullptr);
    } else {
      const char *type =
          soup_message_headers_get_content_type(soup_message_get_response_headers(out), nullptr);
      gsize n = 0;
      const char *d = static_cast<const char *>(g_bytes_get_data(body, &n));
      soup_server_message_set_response(msg, type ? type : "application/octet-stream",
                                       SOUP_MEMORY_COPY, d, n);
      soup_server_message_set_status(msg, soup_message_get_status(out), nullptr);
    }
    if (body) g_bytes_unref(body);
    g_clear_error(&err);
    g_clear_object(&out);
  }

  std::thread thread_;
  GMainContext *ctx_ = nullptr;
  GMainLoop *loop_ = nullptr;
  SoupSession *session_ = nullptr;
  int port_ = 0;
  std::mutex lock_;
  std::vector<Seen> seen_;
};

std::vector<Bytes> track_segments() {
  return make_track(media::Form::Adts, 4.5).segments;  // 1.5 s + 3 s
}

// Plays `id` from `backend` with join=bytes into an appsink.
void play(const std::string &backend, const std::string &props, Run &run,
          const std::function<void(GstElement *)> &setup = {}) {
  GstElement *p = make_pipeline(backend, "trk", "join=bytes max-retries=0 " + props,
                                "appsink name=sink sync=false");
  if (setup) {
    GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
    setup(src);
    gst_object_unref(src);
  }
  run_pipeline(p, run, 30);
  gst_object_unref(p);
}

// Every text the application could see of a run holds no `secret`.
void assert_hidden(const Run &run, const char *secret) {
  if (run.error) {
    fail_if(strstr(run.error->message, secret), "password in error: %s", run.error->message);
    fail_if(run.error_debug.find(secret) != std::string::npos, "password in debug: %s",
            run.error_debug.c_str());
    if (run.error_details) {
      g_autofree char *d = gst_structure_to_string(run.error_details);
      fail_if(strstr(d, secret), "password in details: %s", d);
    }
  }
  for (const std::string &w : run.warnings)
    fail_if(w.find(secret) != std::string::npos, "password in warning: %s", w.c_str());
}

// Lines of the segdl-http category at or below `max`, collected in-process.
struct LogCapture {
  std::mutex lock;
  std::vector<std::pair<GstDebugLevel, std::string>> lines;
  static void fn(GstDebugCategory *cat, GstDebugLevel level, const gchar *, const gchar *, gint,
                 GObject *, GstDebugMessage *message, gpointer data) {
    if (g_strcmp0(gst_debug_category_get_name(cat), "segdl-http") != 0) return;
    auto *self = static_cast<LogCapture *>(data);
    std::lock_guard<std::mutex> g(self->lock);
    self->lines.emplace_back(level, gst_debug_message_get(message));
  }
  explicit LogCapture(GstDebugLevel level) {
    gst_debug_set_active(TRUE);
    gst_debug_set_threshold_for_name("segdl-http", level);
    gst_debug_remove_log_function(gst_debug_log_default);
    gst_debug_add_log_function(fn, this, nullptr);
  }
  ~LogCapture() {
    gst_debug_remove_log_function(fn);
    gst_debug_add_log_function(gst_debug_log_default, nullptr, nullptr);
    gst_debug_unset_threshold_for_name("segdl-http");
  }
};

}  // namespace

// extra-headers and cookies reach every request: status, segments and the
// fallback file.
GST_START_TEST(test_headers_and_cookies) {
  for (bool via_fallback : {false, true}) {
    TestServer srv;
    srv.segments = track_segments();
    srv.status_fails = via_fallback;
    srv.start();
    Run run;
    play(srv.url(), "fallback-uri=" + srv.url() + "/full?v=trk", run, [](GstElement *src) {
      GstStructure *h = gst_structure_new("headers", "X-Token", G_TYPE_STRING, "abc", "X-Num",
                                          G_TYPE_INT, 7, nullptr);
      const char *cookies[] = {"a=1", "b=2", nullptr};
      g_object_set(src, "extra-headers", h, "cookies", cookies, nullptr);
      gst_structure_free(h);
    });
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(srv.segments));
    std::vector<Seen> seen = srv.seen();
    bool status = false, full = false;
    size_t segs = 0;
    for (const Seen &s : seen) {
      // Kept in variables: the check macros hold on to the pointers.
      const std::string token = s.header("X-Token"), num = s.header("X-Num"),
                        cookie = s.header("Cookie");
      fail_unless_equals_string(token.c_str(), "abc");
      fail_unless_equals_string(num.c_str(), "7");
      fail_unless_equals_string(cookie.c_str(), "a=1; b=2");
      status |= s.uri.find("/status?") != std::string::npos;
      full |= s.uri.find("/full?") != std::string::npos;
      segs += s.uri.find("segment=") != std::string::npos;
    }
    fail_unless(status);
    fail_unless(via_fallback ? full : segs >= srv.segments.size());
  }
}
GST_END_TEST;

// Basic auth: 401 without credentials (a NOT_AUTHORIZED error), plays with
// user-id/user-pw or with user:pw@ in the URL; a wrong password is never
// shown, nor the right one in the HTTP log (headers at LOG).
GST_START_TEST(test_basic_auth) {
  TestServer srv;
  srv.segments = track_segments();
  srv.auth = "alice:s3cret-pw";
  srv.start();
  {
    Run run;
    play(srv.url(), "", run);
    fail_unless(run.error != nullptr);
    fail_unless(g_error_matches(run.error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED),
                "%s", run.error->message);
  }
  {
    LogCapture log(GST_LEVEL_LOG);
    Run run;
    play(srv.url(), "user-id=alice user-pw=s3cret-pw http-log-level=headers", run);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(srv.segments));
    g_autofree char *b64 = g_base64_encode(reinterpret_cast<const guchar *>("alice:s3cret-pw"), 15);
    bool headers_logged = false;
    std::lock_guard<std::mutex> g(log.lock);
    for (const auto &l : log.lines) {
      fail_if(l.second.find("s3cret") != std::string::npos, "password logged: %s",
              l.second.c_str());
      fail_if(l.second.find(b64) != std::string::npos, "credentials logged: %s", l.second.c_str());
      headers_logged |=
          l.first == GST_LEVEL_LOG && l.second.find("User-Agent:") != std::string::npos;
    }
    fail_unless(headers_logged, "no request headers at LOG");
  }
  std::string hostport = srv.url().substr(strlen("http://"));
  {
    Run run;
    play("http://alice:s3cret-pw@" + hostport, "", run);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(srv.segments));
  }
  {
    Run run;
    play("http://alice:wr0ng-pw@" + hostport, "user-pw=wr0ng-pw2", run);
    fail_unless(run.error != nullptr);
    fail_unless(strstr(run.error->message, "127.0.0.1") ||
                    run.error_debug.find("127.0.0.1") != std::string::npos,
                "the error names no URL");
    assert_hidden(run, "wr0ng-pw");
  }
}
GST_END_TEST;

// Every request goes through the proxy (absolute URIs to the backend, with
// the proxy's credentials); the backend sees the same requests.
GST_START_TEST(test_proxy) {
  TestServer backend;
  backend.segments = track_segments();
  backend.start();
  TestServer proxy;
  proxy.proxy = true;
  proxy.proxy_auth = "bob:px-pw";
  proxy.start();
  std::string purl = proxy.url();
  {
    Run run;
    play(backend.url(), "proxy=" + purl, run);
    fail_unless(run.error != nullptr, "played through a proxy without its credentials");
  }
  size_t refused = proxy.seen().size(), before = backend.seen().size();
  fail_unless_equals_int(before, 0);
  Run run;
  play(backend.url(), "proxy=" + purl + " proxy-id=bob proxy-pw=px-pw", run);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless(run.bytes == concat(backend.segments));
  std::vector<Seen> via = proxy.seen();
  via.erase(via.begin(), via.begin() + refused);
  std::vector<Seen> direct = backend.seen();
  fail_unless(direct.size() >= 1 + backend.segments.size());
  size_t forwarded = 0;
  for (const Seen &s : via) {
    fail_unless(s.uri.rfind(backend.url() + "/", 0) == 0, "not for the backend: %s", s.uri.c_str());
    forwarded += !s.header("Proxy-Authorization").empty();
  }
  fail_unless_equals_int(forwarded, direct.size());
  assert_hidden(run, "px-pw");
}
GST_END_TEST;

namespace {

// A private CA and a certificate for 127.0.0.1 signed by it, made with
// openssl in `dir`; the server certificate (with its key) is returned.
GTlsCertificate *make_ca(const std::string &dir) {
  std::string script =
      "set -e; cd '" + dir +
      "'; "
      "openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=segdl-test-CA 2>/dev/null; "
      "openssl req -new -nodes -newkey rsa:2048 -keyout srv.key -out srv.csr "
      "-subj /CN=127.0.0.1 2>/dev/null; "
      "printf 'subjectAltName=IP:127.0.0.1\\n' > ext; "
      "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
      "-days 2 -extfile ext 2>/dev/null";
  const char *argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  gint status = -1;
  GError *err = nullptr;
  fail_unless(g_spawn_sync(nullptr, const_cast<char **>(argv), nullptr, G_SPAWN_DEFAULT, nullptr,
                           nullptr, nullptr, nullptr, &status, &err),
              "openssl: %s", err ? err->message : "?");
  fail_unless(g_spawn_check_wait_status(status, nullptr), "openssl failed");
  GTlsCertificate *cert = g_tls_certificate_new_from_files((dir + "/srv.pem").c_str(),
                                                           (dir + "/srv.key").c_str(), &err);
  fail_unless(cert != nullptr, "certificate: %s", err ? err->message : "?");
  return cert;
}

}  // namespace

// HTTPS with a private CA: an error without ssl-ca-file, plays with it and
// with tls-database.
GST_START_TEST(test_private_ca) {
  g_autofree char *dir = g_dir_make_tmp("segdl-ca-XXXXXX", nullptr);
  fail_unless(dir != nullptr);
  TestServer srv;
  srv.segments = track_segments();
  srv.cert = make_ca(dir);
  srv.start();
  std::string ca = std::string(dir) + "/ca.pem";
  {
    Run run;
    play(srv.url(), "", run);
    fail_unless(run.error != nullptr, "a certificate from an unknown CA was accepted");
  }
  {
    Run run;
    play(srv.url(), "ssl-ca-file=" + ca, run);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(srv.segments));
  }
  {
    GTlsDatabase *db = g_tls_file_database_new(ca.c_str(), nullptr);
    fail_unless(db != nullptr);
    Run run;
    play(srv.url(), "", run,
         [db](GstElement *src) { g_object_set(src, "tls-database", db, nullptr); });
    g_object_unref(db);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  }
  srv.stop();
  for (const char *f : {"ca.key", "ca.pem", "ca.srl", "srv.key", "srv.csr", "srv.pem", "ext"})
    g_remove((std::string(dir) + "/" + f).c_str());
  fail_unless(g_rmdir(dir) == 0);
}
GST_END_TEST;

// GST_DEBUG=segdl-http:4 shows one line per request when it ends: one per
// segment (and the status), with the status code and the byte count.
GST_START_TEST(test_request_log) {
  TestServer srv;
  srv.segments = track_segments();
  srv.start();
  LogCapture log(GST_LEVEL_INFO);
  Run run;
  play(srv.url(), "", run);
  fail_unless(run.eos && !run.error);
  std::lock_guard<std::mutex> g(log.lock);
  for (size_t n = 0; n < srv.segments.size(); n++) {
    std::string want = "&segment=" + std::to_string(n) + ": 200, " +
                       std::to_string(srv.segments[n].size()) + " bytes in ";
    int count = 0;
    for (const auto &l : log.lines)
      count += l.first == GST_LEVEL_INFO && l.second.find(want) != std::string::npos;
    fail_unless_equals_int(count, 1);
  }
  bool status = false;
  for (const auto &l : log.lines)
    status |= l.second.rfind("GET " + srv.url() + "/status?v=trk: 200", 0) == 0;
  fail_unless(status, "no status line");
}
GST_END_TEST;

static Suite *http_knobs_suite() {
  Suite *s = suite_create("http-knobs");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_headers_and_cookies);
  tcase_add_test(tc, test_basic_auth);
  tcase_add_test(tc, test_proxy);
  tcase_add_test(tc, test_private_ca);
  tcase_add_test(tc, test_request_log);
  return s;
}

GST_CHECK_MAIN(http_knobs);
