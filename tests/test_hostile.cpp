// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — hostile backends and hostile ids: bounded, reported, and
 * never outside the cache folder.
 */
#include "harness.h"

#include "common/segmenter.h"
#include "segdl/cache.h"
#include "segdl/codec.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <thread>

using namespace segdl;
using namespace segdl::test;

namespace {

void expect_error(Run &run, GstResourceError code, const char *text, const char *what) {
  fail_if(run.timed_out, "%s: no ERROR in time", what);
  fail_unless(run.error != nullptr, "%s: no ERROR", what);
  fail_unless(run.error->domain == GST_RESOURCE_ERROR, "%s: domain %s", what,
              g_quark_to_string(run.error->domain));
  fail_unless(run.error->code == int(code), "%s: code %d", what, run.error->code);
  fail_unless(strstr(run.error->message, text) != nullptr, "%s: '%s' lacks '%s'", what,
              run.error->message, text);
}

}  // namespace

// A segment bigger than max-segment-size (a lying or endless body) is an
// error naming it, not unbounded memory.
GST_START_TEST(test_max_segment_size) {
  auto srv = start_server();
  srv->add_track("big", make_track(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "big", "join=bytes max-segment-size=10000",
                                "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  expect_error(run, GST_RESOURCE_ERROR_READ, "max-segment-size", "max-segment-size");
  fail_unless(strstr(run.error->message, "segment 0") != nullptr, "%s", run.error->message);
}
GST_END_TEST;

// An endless chunked body (no Content-Length) is stopped at max-segment-size.
GST_START_TEST(test_endless_body) {
  auto srv = start_server();
  srv->add_track("inf", make_track(media::Form::Adts));
  srv->add_fault(fault("endless", "inf", 1, -1));
  GstElement *p =
      make_pipeline(srv->base_url(), "inf", "join=bytes max-segment-size=1000000 max-retries=1",
                    "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  expect_error(run, GST_RESOURCE_ERROR_READ, "max-segment-size", "endless body");
  fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
}
GST_END_TEST;

// An HTML error page served with 200 is not taken for audio.
GST_START_TEST(test_wrong_content_type) {
  auto srv = start_server();
  server::Track t = make_track(media::Form::Adts);
  t.mime_type = "text/html";
  srv->add_track("html", t);
  GstElement *p =
      make_pipeline(srv->base_url(), "html", "join=bytes max-retries=1", "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  expect_error(run, GST_RESOURCE_ERROR_READ, "Content-Type text/html", "content type");
}
GST_END_TEST;

// timeout bounds a whole request, even one that is slow to start.
GST_START_TEST(test_request_timeout) {
  server::Options o;
  o.latency_ms = 3000;
  auto srv = start_server(o);
  srv->add_track("slow", make_track(media::Form::Adts));
  // Without the timeout every request would succeed after 3 s: no ERROR.
  GstElement *p =
      make_pipeline(srv->base_url(), "slow", "timeout=1 max-retries=1", "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_unless(run.error != nullptr, "no ERROR");
  fail_unless(run.error->domain == GST_RESOURCE_ERROR);
  fail_unless(strstr(run.error->message, "timed out") != nullptr, "%s", run.error->message);
}
GST_END_TEST;

// Redirects: followed to http(s) a few times, never elsewhere, never in a loop.
struct RedirectCase {
  const char *kind;
  int count;
  const char *error;  // nullptr: plays
};
const RedirectCase kRedirects[] = {
    {"redirect", 1, nullptr},
    {"redirect", -1, "too many redirects"},
    {"redirectftp", -1, "non-HTTP URL refused"},
};

GST_START_TEST(test_redirects) {
  const RedirectCase &rc = kRedirects[__i__];
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("r", track);
  srv->add_fault(fault(rc.kind, "r", 1, rc.count));
  GstElement *p = make_pipeline(srv->base_url(), "r", "join=bytes max-retries=1",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  if (!rc.error) {
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(track.segments));
  } else {
    expect_error(run, GST_RESOURCE_ERROR_OPEN_READ, rc.error, rc.kind);
    fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
  }
}
GST_END_TEST;

// HTTPS: a certificate that does not verify (self-signed) is refused by
// default, and accepted with ssl-strict=false.
static bool make_self_signed(const std::string &dir, std::string &cert, std::string &key) {
  std::string c = dir + "/cert.pem", k = dir + "/key.pem";
  gchar *argv[] = {g_strdup("openssl"),
                   g_strdup("req"),
                   g_strdup("-x509"),
                   g_strdup("-newkey"),
                   g_strdup("rsa:2048"),
                   g_strdup("-nodes"),
                   g_strdup("-keyout"),
                   g_strdup(k.c_str()),
                   g_strdup("-out"),
                   g_strdup(c.c_str()),
                   g_strdup("-days"),
                   g_strdup("1"),
                   g_strdup("-subj"),
                   g_strdup("/CN=127.0.0.1"),
                   g_strdup("-addext"),
                   g_strdup("subjectAltName=IP:127.0.0.1"),
                   nullptr};
  gint status = -1;
  gboolean ran = g_spawn_sync(
      nullptr, argv, nullptr,
      GSpawnFlags(G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL),
      nullptr, nullptr, nullptr, nullptr, &status, nullptr);
  for (gchar *a : argv) g_free(a);
  if (!ran || !g_spawn_check_wait_status(status, nullptr)) return false;
  gchar *cd = nullptr, *kd = nullptr;
  bool ok = g_file_get_contents(c.c_str(), &cd, nullptr, nullptr) &&
            g_file_get_contents(k.c_str(), &kd, nullptr, nullptr);
  if (ok) {
    cert = cd;
    key = kd;
  }
  g_free(cd);
  g_free(kd);
  return ok;
}

GST_START_TEST(test_ssl_strict) {
  gchar *dir = g_dir_make_tmp("segdl-tls-XXXXXX", nullptr);
  server::Options o;
  fail_unless(make_self_signed(dir, o.tls_cert_pem, o.tls_key_pem),
              "openssl could not make a certificate");
  auto srv = start_server(o);
  fail_unless(g_str_has_prefix(srv->base_url().c_str(), "https://"));
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("tls", track);
  {
    GstElement *p =
        make_pipeline(srv->base_url(), "tls", "join=bytes max-retries=1", "fakesink sync=false");
    Run run;
    run_pipeline(p, run, 20);
    gst_object_unref(p);
    fail_unless(run.error != nullptr, "a self-signed certificate was accepted");
    fail_unless(run.error->domain == GST_RESOURCE_ERROR);
    fail_unless(strstr(run.error->message, "TLS") != nullptr, "%s", run.error->message);
  }
  {
    GstElement *p = make_pipeline(srv->base_url(), "tls", "join=bytes ssl-strict=false",
                                  "appsink name=sink sync=false");
    Run run;
    run_pipeline(p, run, 20);
    gst_object_unref(p);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(track.segments));
  }
  srv.reset();
  for (const char *f : {"cert.pem", "key.pem"}) {
    gchar *path = g_build_filename(dir, f, nullptr);
    g_unlink(path);
    g_free(path);
  }
  g_rmdir(dir);
  g_free(dir);
}
GST_END_TEST;

// Hostile ids reach the right track and stay inside cache-dir.
static const char *const kIds[] = {
    "../../escape",           "..", ".", "a/b/../../c", "sp ace?&x=y#frag%00", "ctl\x01\x1f\x7f",
    "\xff\xfe non-utf8 \x80",
};

GST_START_TEST(test_hostile_id_cache) {
  const std::string id = kIds[__i__];
  gchar *dir = g_dir_make_tmp("segdl-hostile-XXXXXX", nullptr);
  gchar *inner = g_build_filename(dir, "cache", nullptr);
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts);
  srv->add_track(id, track);
  GstElement *p = make_pipeline(srv->base_url(), id, std::string("join=bytes cache-dir=") + inner,
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "id %zu: %s", size_t(__i__),
              run.error ? run.error->message : "no EOS");
  fail_unless(run.bytes == concat(track.segments));
  // Everything written is in cache/<safe name>/, nothing beside or above.
  std::string track_dir = std::string(inner) + "/" + Cache::safe_name(id);
  fail_unless(g_file_test((track_dir + "/seg_0.bin").c_str(), G_FILE_TEST_IS_REGULAR));
  GDir *top = g_dir_open(dir, 0, nullptr);
  int entries = 0;
  while (const char *name = g_dir_read_name(top)) {
    entries++;
    fail_unless(g_str_equal(name, "cache"), "stray %s next to the cache", name);
  }
  g_dir_close(top);
  fail_unless_equals_int(entries, 1);
  GDir *in = g_dir_open(inner, 0, nullptr);
  entries = 0;
  while (g_dir_read_name(in)) entries++;
  g_dir_close(in);
  fail_unless_equals_int(entries, 1);
  gchar *argv[] = {g_strdup("rm"), g_strdup("-rf"), g_strdup(dir), nullptr};
  g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr,
               nullptr, nullptr);
  for (gchar *a : argv) g_free(a);
  g_free(inner);
  g_free(dir);
}
GST_END_TEST;

namespace {

// A hostile backend written by hand on a raw socket, for what a
// well-behaved HTTP server library will not send: cut chunked bodies,
// Content-Length: 0, gzip nobody asked for, a status trickling a byte at a
// time. Each connection gets one response and is closed. The script maps a
// request ("status" or "segment N") to the pieces of the raw response, each
// written after its delay (the server's own pacing, not synchronisation).
struct Piece {
  std::string bytes;
  int delay_ms = 0;
  std::function<void()> before;  // runs before the piece is written (a test's hold)
};
using Script = std::function<std::vector<Piece>(const std::string &what)>;

class RawServer {
 public:
  // `ranges_apart`: a request with a Range header reaches the script as
  // "segment N range" (else as "segment N", like the whole body).
  explicit RawServer(Script script, bool ranges_apart = false)
      : script_(std::move(script)), ranges_apart_(ranges_apart) {
    std::promise<void> ready;
    thread_ = std::thread([this, &ready] {
      // The listener accepts from this thread's context.
      context_ = g_main_context_new();
      g_main_context_push_thread_default(context_);
      loop_ = g_main_loop_new(context_, FALSE);
      service_ = g_threaded_socket_service_new(8);
      GError *err = nullptr;
      port_ = g_socket_listener_add_any_inet_port(G_SOCKET_LISTENER(service_), nullptr, &err);
      if (!port_) g_error("listen: %s", err->message);
      g_signal_connect(service_, "run", G_CALLBACK(on_run), this);
      g_socket_service_start(service_);
      ready.set_value();
      g_main_loop_run(loop_);
      g_socket_service_stop(service_);
      g_socket_listener_close(G_SOCKET_LISTENER(service_));
      g_object_unref(service_);
      g_main_loop_unref(loop_);
      g_main_context_pop_thread_default(context_);
      g_main_context_unref(context_);
    });
    ready.get_future().wait();
  }
  ~RawServer() {
    GSource *quit = g_idle_source_new();
    g_source_set_callback(
        quit,
        [](gpointer loop) -> gboolean {
          g_main_loop_quit(static_cast<GMainLoop *>(loop));
          return G_SOURCE_REMOVE;
        },
        loop_, nullptr);
    g_source_attach(quit, context_);
    g_source_unref(quit);
    thread_.join();
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests(const std::string &what) {
    std::lock_guard<std::mutex> guard(lock_);
    return int(std::count(seen_.begin(), seen_.end(), what));
  }

 private:
  static gboolean on_run(GThreadedSocketService *, GSocketConnection *conn, GObject *,
                         gpointer data) noexcept {
    auto *self = static_cast<RawServer *>(data);
    GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
    GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    std::string head;
    char c;
    while (head.size() < 8192 && head.find("\r\n\r\n") == std::string::npos &&
           g_input_stream_read(in, &c, 1, nullptr, nullptr) == 1)
      head += c;
    std::string what = "?";
    if (head.find("GET /status") == 0) what = "status";
    size_t at = head.find("&segment=");
    if (head.find("GET /stream") == 0 && at != std::string::npos)
      what = "segment " + std::to_string(atoi(head.c_str() + at + 9));
    if (head.find("GET /full") == 0) what = "full";
    const bool ranged = head.find("\r\nRange:") != std::string::npos;
    {
      std::lock_guard<std::mutex> guard(self->lock_);
      self->seen_.push_back(what);
      // Also counted apart: a request for part of it (a resume, a tail).
      if (ranged) self->seen_.push_back(what + " range");
    }
    for (const Piece &p : self->script_(ranged && self->ranges_apart_ ? what + " range" : what)) {
      if (p.before) p.before();
      if (p.delay_ms > 0) g_usleep(gulong(p.delay_ms) * 1000);
      if (!g_output_stream_write_all(out, p.bytes.data(), p.bytes.size(), nullptr, nullptr,
                                     nullptr))
        break;
    }
    g_io_stream_close(G_IO_STREAM(conn), nullptr, nullptr);
    return TRUE;
  }

  Script script_;
  bool ranges_apart_ = false;
  std::thread thread_;
  GMainContext *context_ = nullptr;
  GMainLoop *loop_ = nullptr;
  GSocketService *service_ = nullptr;
  guint16 port_ = 0;
  std::mutex lock_;
  std::vector<std::string> seen_;
};

std::string bytes_of(const Bytes &b) {
  return std::string(b.begin(), b.end());
}

// A complete response with a Content-Length.
std::vector<Piece> whole(int status, const std::string &body, const std::string &extra = "") {
  return {{"HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra + "\r\n" + body}};
}

const char *kStatus4 = R"({"ready":[0,1,2,3],"totalSegments":4})";

// Serves a 4-segment ADTS track; segment 1 answered by `bad` instead.
Script track_with(const server::Track &t, std::function<std::vector<Piece>()> bad) {
  return [t, bad](const std::string &what) -> std::vector<Piece> {
    if (what == "status") return whole(200, kStatus4, "Content-Type: application/json\r\n");
    if (what == "segment 1") return bad();
    for (int i = 0; i < 4; i++)
      if (what == "segment " + std::to_string(i)) return whole(200, bytes_of(t.segments[i]));
    return whole(404, "no");
  };
}

// Runs join=bytes against `srv` and expects an ERROR about segment 1 whose
// text has `text`; nothing of segment 1 may be output.
void expect_segment1_refused(RawServer &srv, const server::Track &t, const char *text,
                             const std::string &props = "") {
  GstElement *p = make_pipeline(srv.base_url(), "x", "join=bytes max-retries=1 " + props,
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_if(run.timed_out, "%s: no end in time", text);
  fail_unless(run.error != nullptr, "%s: no ERROR", text);
  fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
  fail_unless(strstr(run.error->message, text) != nullptr, "'%s' lacks '%s'", run.error->message,
              text);
  fail_unless(run.bytes == t.segments[0], "%s: %zu bytes out, segment 0 has %zu", text,
              run.bytes.size(), t.segments[0].size());
}

}  // namespace

// A chunked body cut off in the middle of a chunk is a broken transfer:
// retried, nothing of it output.
GST_START_TEST(test_cut_chunked) {
  server::Track t = make_track(media::Form::Adts);
  RawServer srv(track_with(t, [&] {
    std::string body = bytes_of(t.segments[1]);
    char size[32];
    g_snprintf(size, sizeof size, "%zx\r\n", body.size());
    return std::vector<Piece>{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                               std::string(size) + body.substr(0, body.size() / 2)}};
  }));
  GstElement *p = make_pipeline(srv.base_url(), "x", "join=bytes max-retries=1",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_if(run.timed_out);
  fail_unless(run.error != nullptr, "a cut body taken as whole");
  fail_unless(strstr(run.error->message, "segment 1 failed") != nullptr, "%s", run.error->message);
  fail_unless_equals_int(srv.requests("segment 1"), 2);  // retried once
  // A body without a length is held until it has ended whole: nothing of
  // segment 1 went out, so the retry asks for all of it again.
  fail_unless_equals_int(srv.requests("segment 1 range"), 0);
  fail_unless(run.bytes == t.segments[0], "%zu bytes out", run.bytes.size());
}
GST_END_TEST;

// A chunked body: `body` in two chunks, the second one's size line
// malformed ("zz") when `malformed`.
std::string chunked(const std::string &body, size_t first, bool malformed) {
  char size[32];
  g_snprintf(size, sizeof size, "%zx\r\n", first);
  std::string rest = body.substr(first);
  char size2[32];
  g_snprintf(size2, sizeof size2, "%zx", rest.size());
  return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(size) +
         body.substr(0, first) + "\r\n" + (malformed ? std::string("zz") : std::string(size2)) +
         "\r\n" + rest + "\r\n0\r\n\r\n";
}

// Where the ADTS frame holding byte `at` of `b` starts.
size_t adts_frame_start(const Bytes &b, size_t at) {
  size_t off = 0;
  AdtsHeader h;
  while (off < b.size() && parse_adts_header(b.data() + off, b.size() - off, h) &&
         off + h.frame_size <= at)
    off += h.frame_size;
  return off;
}

struct MalformedCase {
  const char *name;
  const char *join;
  const char *policy;
  bool for_good;       // every copy of segment 1 is malformed (else only the first)
  bool frame_aligned;  // the bad size comes where a frame ends (the status has durations)
};
const MalformedCase kMalformed[] = {
    {"mid-frame/error/bytes", "bytes", "error", true, false},
    {"mid-frame/error/timeline", "timeline", "error", true, false},
    {"mid-frame/gap/bytes", "bytes", "gap", true, false},
    {"once/bytes", "bytes", "error", false, false},
    {"frame-aligned/error/bytes", "bytes", "error", true, true},
};

// A malformed chunk size ("zz") in segment 1's chunked body: libsoup 3
// reads it as 0, the last chunk, so the body ends cleanly after the first
// chunk. segdl holds a body without Content-Length until it ends and checks
// that it ends on a whole frame and, when the status gives durations, that
// it lasts as long as a segment: this one is a cut body, nothing of it is
// output or cached; it is asked for again (max-retries=1), then
// missing-segment decides. A good copy on the retry plays whole.
GST_START_TEST(test_malformed_chunk_size) {
  const MalformedCase &c = kMalformed[__i__];
  server::Track t = make_track(media::Form::Adts);
  const std::string body = bytes_of(t.segments[1]);
  const size_t first =
      c.frame_aligned ? adts_frame_start(t.segments[1], body.size() / 2) : body.size() / 2 + 1;
  const std::string status =
      c.frame_aligned
          ? R"({"ready":[0,1,2,3],"totalSegments":4,"firstSegmentDuration":1.5,"segmentDuration":3})"
          : kStatus4;
  std::atomic<int> served{0};
  RawServer srv([&](const std::string &req) -> std::vector<Piece> {
    if (req == "status") return whole(200, status, "Content-Type: application/json\r\n");
    if (req == "segment 1") return {{chunked(body, first, c.for_good || served++ == 0)}};
    for (int i = 0; i < 4; i++)
      if (req == "segment " + std::to_string(i)) return whole(200, bytes_of(t.segments[i]));
    return whole(404, "no");
  });
  gchar *dir = g_dir_make_tmp("segdl-chunk-XXXXXX", nullptr);
  GstElement *p = make_pipeline(srv.base_url(), "x",
                                std::string("max-retries=1 join=") + c.join +
                                    " missing-segment=" + c.policy + " cache-dir=" + dir,
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_if(run.timed_out, "%s: no end in time", c.name);
  fail_unless_equals_int(srv.requests("segment 1"), 2);
  fail_unless_equals_int(srv.requests("segment 1 range"), 0);  // nothing of it was taken
  int warned = 0;
  for (const std::string &w : run.warnings) warned += w.find("cut short") != std::string::npos;
  fail_unless(warned >= 1, "%s: no WARNING about the cut body", c.name);
  const std::string track = std::string(dir) + "/" + Cache::safe_name("x");
  const bool cached = g_file_test((track + "/seg_1.bin").c_str(), G_FILE_TEST_EXISTS);
  if (!c.for_good) {
    fail_unless(run.eos && !run.error, "%s: %s", c.name, run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == concat(t.segments), "%s: %zu bytes out", c.name, run.bytes.size());
    fail_unless(cached, "%s: the good copy was not cached", c.name);
  } else if (std::string(c.policy) == "gap") {
    fail_unless(run.eos && !run.error, "%s: %s", c.name, run.error ? run.error->message : "no EOS");
    Bytes want = t.segments[0];
    for (int i = 2; i < 4; i++) want.insert(want.end(), t.segments[i].begin(), t.segments[i].end());
    fail_unless(run.bytes == want, "%s: %zu bytes out", c.name, run.bytes.size());
  } else {
    expect_error(run, GST_RESOURCE_ERROR_READ, "segment 1 failed", c.name);
    fail_unless(strstr(run.error->message, "cut short") != nullptr, "%s", run.error->message);
    if (c.frame_aligned)
      fail_unless(strstr(run.error->message, "s of audio") != nullptr, "%s", run.error->message);
    if (std::string(c.join) == "bytes")
      fail_unless(run.bytes == t.segments[0], "%s: %zu bytes out", c.name, run.bytes.size());
  }
  if (c.for_good) fail_if(cached, "%s: the cut body was cached", c.name);
  gchar *argv[] = {g_strdup("rm"), g_strdup("-rf"), g_strdup(dir), nullptr};
  g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr,
               nullptr, nullptr);
  for (gchar *a : argv) g_free(a);
  g_free(dir);
}
GST_END_TEST;

// 200 with Content-Length: 0 is no segment.
GST_START_TEST(test_empty_body) {
  server::Track t = make_track(media::Form::Adts);
  RawServer srv(track_with(t, [] { return whole(200, ""); }));
  expect_segment1_refused(srv, t, "empty body");
}
GST_END_TEST;

// A body ending only with the connection (no length, not chunked) may be
// cut anywhere: refused.
GST_START_TEST(test_body_without_length) {
  server::Track t = make_track(media::Form::Adts);
  RawServer srv(track_with(t, [&] {
    return std::vector<Piece>{
        {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + bytes_of(t.segments[1])}};
  }));
  expect_segment1_refused(srv, t, "without a length");
}
GST_END_TEST;

// gzip nobody asked for is never output as audio.
GST_START_TEST(test_unasked_gzip) {
  server::Track t = make_track(media::Form::Adts);
  RawServer srv(track_with(t, [&] {
    return whole(200, "\x1f\x8b\x08\x00 not really gzip", "Content-Encoding: gzip\r\n");
  }));
  expect_segment1_refused(srv, t, "Content-Encoding gzip");
  fail_unless_equals_int(srv.requests("segment 1"), 1);  // not worth a retry
}
GST_END_TEST;

// A segment the status lists that answers 503 for ever: a bounded wait,
// then failures with WARNINGs, then the ERROR (max-wait is far away).
GST_START_TEST(test_endless_503) {
  server::Track t = make_track(media::Form::Adts);
  RawServer srv(track_with(t, [] { return whole(503, "busy", "Retry-After: 0\r\n"); }));
  GstElement *p = make_pipeline(srv.base_url(), "x", "join=bytes max-retries=2 max-wait=600",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_if(run.timed_out, "an endless wait");
  fail_unless(run.error != nullptr);
  fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
  fail_unless(strstr(run.error->message, "503") != nullptr, "%s", run.error->message);
  int warned = 0;
  for (const std::string &w : run.warnings) warned += w.find("segment 1") != std::string::npos;
  fail_unless_equals_int(warned, 2);  // one per retry
  fail_unless(run.bytes == t.segments[0]);
}
GST_END_TEST;

// What a backend in trouble serves as a middle segment, with 200: never
// output, never cached, whatever the join; fetched once more, then handled
// by missing-segment (each value): an ERROR (STREAM/DEMUX "segment 1 is not
// audio: ..."; an empty body is RESOURCE/READ), a gap (the rest plays,
// `complete` false), or the fallback file from where the segments stopped.
struct BadBody {
  const char *name;
  std::string body;
  const char *why;     // in the message
  bool empty = false;  // an HTTP defect (RESOURCE/READ), not a segment of something else
};

const BadBody &bad_body(int i) {
  static const BadBody kBodies[] = {
      {"html", "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "an HTML page"},
      {"garbage", std::string(5000, '\x5a') + "\x01\x02garbage", "not audio"},
      {"empty", "", "an empty body", true},
  };
  return kBodies[i];
}

// The AAC track of the m4a tests below: 10.5 s encoded once, cut into
// four m4a segments (timestamps reset, 1.5 s + 3 s), and, with `whole_m4a`,
// the same encode as one m4a file (the fallback's).
void m4a_fixture(media::Packets &packets, std::vector<Bytes> &segments, Bytes *whole_m4a) {
  std::string error;
  fail_unless(media::available(media::Codec::Aac, media::Container::M4a), "no AAC encoder");
  fail_unless(media::encode_packets(media::Codec::Aac, 10.5, packets, error), "%s", error.c_str());
  fail_unless(media::segment_files(packets, media::Container::M4a, media::TimestampMode::Reset, 1.5,
                                   3.0, segments, error),
              "%s", error.c_str());
  if (whole_m4a)
    fail_unless(media::whole_file(packets, media::Container::M4a, *whole_m4a, error), "%s",
                error.c_str());
  fail_unless_equals_int(segments.size(), 4);
}

const char *const kPolicies[] = {"error", "gap", "fallback"};
const char *const kJoins[] = {"bytes", "timeline"};

// Case i: body i / 6, policy (i / 2) % 3, join i % 2.
GST_START_TEST(test_bad_middle_segment) {
  const BadBody &bad = bad_body(__i__ / 6);
  const std::string policy = kPolicies[(__i__ / 2) % 3];
  const std::string join = kJoins[__i__ % 2];
  const std::string what = std::string(bad.name) + "/" + policy + "/" + join;
  server::Track t = make_track(media::Form::Adts);
  const Bytes track_bytes = concat(t.segments);
  RawServer srv([&](const std::string &req) -> std::vector<Piece> {
    if (req == "status") return whole(200, kStatus4, "Content-Type: application/json\r\n");
    if (req == "segment 1") return whole(200, bad.body, "Content-Type: audio/aac\r\n");
    if (req == "full") return whole(200, bytes_of(track_bytes));
    for (int i = 0; i < 4; i++)
      if (req == "segment " + std::to_string(i)) return whole(200, bytes_of(t.segments[i]));
    return whole(404, "no");
  });
  gchar *dir = g_dir_make_tmp("segdl-badseg-XXXXXX", nullptr);
  std::string props =
      "join=" + join + " max-retries=1 missing-segment=" + policy + " cache-dir=" + dir;
  if (policy == "fallback") props += " fallback-uri=" + srv.base_url() + "/full/x";
  GstElement *p = make_pipeline(srv.base_url(), "x", props, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  GstStructure *stats = stats_of(p);
  gst_object_unref(p);
  fail_if(run.timed_out, "%s: no end in time", what.c_str());
  // Once more (max-retries=1 for an empty body; always once for one that
  // is not audio), then the policy.
  fail_unless_equals_int(srv.requests("segment 1"), 2);
  int warned = 0;
  for (const std::string &w : run.warnings) warned += w.find("segment 1") != std::string::npos;
  fail_unless(warned >= 1, "%s: no WARNING about segment 1", what.c_str());
  gboolean complete = TRUE;
  fail_unless(gst_structure_get_boolean(stats, "complete", &complete));
  gst_structure_free(stats);
  if (policy == "error") {
    fail_unless(run.error != nullptr, "%s: no ERROR", what.c_str());
    if (bad.empty)
      fail_unless(
          run.error->domain == GST_RESOURCE_ERROR && run.error->code == GST_RESOURCE_ERROR_READ,
          "%s: %s", what.c_str(), run.error->message);
    else
      fail_unless(
          run.error->domain == GST_STREAM_ERROR && run.error->code == GST_STREAM_ERROR_DEMUX,
          "%s: %s", what.c_str(), run.error->message);
    fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
    fail_unless(strstr(run.error->message, bad.why) != nullptr, "%s", run.error->message);
    if (join == "bytes") fail_unless(run.bytes == t.segments[0], "%s", what.c_str());
  } else {
    fail_unless(run.eos && !run.error, "%s: %s", what.c_str(),
                run.error ? run.error->message : "no EOS");
  }
  if (policy == "gap") {
    fail_unless(!complete, "%s: complete although segment 1 is missing", what.c_str());
    if (join == "bytes") {
      Bytes want = t.segments[0];
      for (int i = 2; i < 4; i++)
        want.insert(want.end(), t.segments[i].begin(), t.segments[i].end());
      fail_unless(run.bytes == want, "%s: %zu bytes out", what.c_str(), run.bytes.size());
    }
  }
  if (policy == "fallback" && join == "bytes")
    fail_unless(run.bytes == track_bytes, "%s: %zu bytes out", what.c_str(), run.bytes.size());
  // The cache holds the good segments it got, never the bad one.
  std::string track = std::string(dir) + "/" + Cache::safe_name("x");
  fail_unless(g_file_test((track + "/seg_0.bin").c_str(), G_FILE_TEST_IS_REGULAR), "%s",
              what.c_str());
  fail_if(g_file_test((track + "/seg_1.bin").c_str(), G_FILE_TEST_EXISTS), "%s: cached",
          what.c_str());
  gchar *argv[] = {g_strdup("rm"), g_strdup("-rf"), g_strdup(dir), nullptr};
  g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr,
               nullptr, nullptr);
  for (gchar *a : argv) g_free(a);
  g_free(dir);
}
GST_END_TEST;

// A middle segment of a self-contained track (m4a) that passes the
// engine's check but gives no audio in join=timeline: nothing of it goes
// out; it is read again once (a second request), then missing-segment
// decides, never a silent skip nor audio shifted:
//  - an m4a whose moov is broken (its boxes look right, its content is
//    zeros): our MP4 reader finds no audio track;
//  - an ADTS body (audio, but not a file of the track's form).
struct UndemuxableBody {
  const char *name;
  const char *why;  // in the ERROR
};
const UndemuxableBody kUndemuxable[] = {
    {"broken moov", "no mvhd"},
    {"adts in m4a", "not a file of the track's form"},
};

// Zeros the payload of `file`'s top-level moov box, its header kept.
Bytes break_moov(Bytes file) {
  size_t off = 0;
  while (off + 8 <= file.size()) {
    uint64_t size =
        uint64_t(file[off]) << 24 | file[off + 1] << 16 | file[off + 2] << 8 | file[off + 3];
    fail_unless(size >= 8 && off + size <= file.size(), "box at %zu", off);
    if (memcmp(&file[off + 4], "moov", 4) == 0) {
      std::fill(file.begin() + long(off + 8), file.begin() + long(off + size), 0);
      return file;
    }
    off += size;
  }
  fail("no moov box");
  return file;
}

// Case i: body i / 3, policy i % 3.
GST_START_TEST(test_undemuxable_middle_segment) {
  const UndemuxableBody &bad = kUndemuxable[__i__ / 3];
  const std::string policy = kPolicies[__i__ % 3];
  const std::string what = std::string(bad.name) + "/" + policy;
  media::Packets packets;
  std::vector<Bytes> segments;
  Bytes whole_m4a;
  m4a_fixture(packets, segments, &whole_m4a);
  std::string error;
  const Bytes body =
      __i__ / 3 == 0 ? break_moov(segments[1]) : make_track(media::Form::Adts).segments[1];
  RawServer srv([&](const std::string &req) -> std::vector<Piece> {
    if (req == "status") return whole(200, kStatus4, "Content-Type: application/json\r\n");
    if (req == "segment 1") return whole(200, bytes_of(body), "Content-Type: audio/mp4\r\n");
    if (req == "full") return whole(200, bytes_of(whole_m4a));
    for (int i = 0; i < 4; i++)
      if (req == "segment " + std::to_string(i)) return whole(200, bytes_of(segments[i]));
    return whole(404, "no");
  });
  std::string props = "join=timeline missing-segment=" + policy +
                      " first-segment-duration=1.5 segment-duration=3.0";
  if (policy == "fallback") props += " fallback-uri=" + srv.base_url() + "/full/x";
  GstElement *p = make_pipeline(srv.base_url(), "x", props, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  GstStructure *stats = stats_of(p);
  gst_object_unref(p);
  fail_if(run.timed_out, "%s: no end in time", what.c_str());
  // Read again once (the engine's second copy), then the policy.
  fail_unless_equals_int(srv.requests("segment 1") - srv.requests("segment 1 range"), 2);
  int warned = 0;
  for (const std::string &w : run.warnings)
    warned += w.find("segment 1") != std::string::npos && w.find(bad.why) != std::string::npos;
  fail_unless(warned >= 1, "%s: no WARNING about segment 1 (%zu warnings)", what.c_str(),
              run.warnings.size());
  gboolean complete = TRUE, fallback = FALSE;
  fail_unless(gst_structure_get_boolean(stats, "complete", &complete));
  fail_unless(gst_structure_get_boolean(stats, "fallback", &fallback));
  gst_structure_free(stats);
  // The frames served: each segment's, parsed by the reference reader.
  std::vector<std::vector<Bytes>> served(4);
  for (int i = 0; i < 4; i++) {
    media::ParsedFrames pf;
    fail_unless(media::parse_frames(segments[i], pf, error), "%s", error.c_str());
    for (const media::ParsedFrame &f : pf.frames) served[size_t(i)].push_back(f.data);
  }
  if (policy == "error") {
    fail_unless(run.error != nullptr, "%s: no ERROR", what.c_str());
    fail_unless(g_error_matches(run.error, GST_STREAM_ERROR, GST_STREAM_ERROR_DEMUX), "%s: %s",
                what.c_str(), run.error->message);
    fail_unless(strstr(run.error->message, "segment 1 gives no audio") != nullptr, "%s: %s",
                what.c_str(), run.error->message);
    fail_unless(strstr(run.error->message, bad.why) != nullptr, "%s: '%s' lacks '%s'", what.c_str(),
                run.error->message, bad.why);
    fail_if(complete, "%s: complete after an ERROR", what.c_str());
    // Only segment 0's frames came out, in order.
    fail_unless(run.frames.size() <= served[0].size(), "%s: %zu frames out", what.c_str(),
                run.frames.size());
    for (size_t k = 0; k < run.frames.size(); k++)
      fail_unless(run.frames[k] == served[0][k], "%s: frame %zu", what.c_str(), k);
    return;
  }
  fail_unless(run.eos && !run.error, "%s: %s", what.c_str(),
              run.error ? run.error->message : "no EOS");
  if (policy == "gap") {
    fail_if(complete, "%s: complete although segment 1 is missing", what.c_str());
    bool gap_warned = false;
    for (const std::string &w : run.warnings)
      gap_warned |= w.find("Segment 1 is missing") != std::string::npos;
    fail_unless(gap_warned, "%s: no WARNING about the gap", what.c_str());
    // Segments 0, 2 and 3 whole, in order; segment 2 starts where the
    // status says (1.5 s + 3 s), not right after segment 0.
    std::vector<Bytes> want = served[0];
    want.insert(want.end(), served[2].begin(), served[2].end());
    want.insert(want.end(), served[3].begin(), served[3].end());
    fail_unless_equals_int(run.frames.size(), want.size());
    for (size_t k = 0; k < want.size(); k++)
      fail_unless(run.frames[k] == want[k], "%s: frame %zu", what.c_str(), k);
    size_t first2 = served[0].size();
    fail_unless_equals_uint64(run.pts[first2], 4500 * GST_MSECOND);
    fail_unless(run.discont[first2], "%s: no DISCONT after the gap", what.c_str());
    return;
  }
  // fallback: the whole file from where segment 0 ended, every frame of
  // the encode once, the timestamps continuous.
  fail_unless(fallback, "%s: the fallback did not take over", what.c_str());
  fail_unless_equals_int(run.frames.size(), packets.packets.size());
  for (size_t k = 0; k < run.frames.size(); k++) {
    fail_unless(run.frames[k] == packets.packets[k].data, "%s: frame %zu", what.c_str(), k);
    if (k == 0) continue;
    GstClockTimeDiff d = GST_CLOCK_DIFF(run.pts[k - 1] + run.durations[k - 1], run.pts[k]);
    fail_unless(d >= -1000 && d <= 1000, "%s: frame %zu at %" GST_TIME_FORMAT, what.c_str(), k,
                GST_TIME_ARGS(run.pts[k]));
  }
}
GST_END_TEST;

// A one-shot event a server thread waits for, bounded: a wait that runs
// out is recorded (`missed`) for the test to fail on.
struct Gate {
  std::mutex lock;
  std::condition_variable cv;
  bool open = false;
  std::atomic<bool> missed{false};
  void set() {
    std::lock_guard<std::mutex> guard(lock);
    open = true;
    cv.notify_all();
  }
  // False (and `missed`) when it did not open within `seconds`.
  bool wait(int seconds = 15) {
    std::unique_lock<std::mutex> guard(lock);
    if (cv.wait_for(guard, std::chrono::seconds(seconds), [this] { return open; })) return true;
    missed = true;
    return false;
  }
};

// A debug line of `category` holding `text` opens `gate`: the moment the
// engine reached a step (its log comes from the HTTP thread, in the same
// callback as the step).
struct LogGate {
  const char *category;
  const char *text;
  Gate *gate;
};

void on_log_gate(GstDebugCategory *cat, GstDebugLevel, const gchar *, const gchar *, gint,
                 GObject *, GstDebugMessage *message, gpointer data) noexcept {
  const LogGate *g = static_cast<const LogGate *>(data);
  if (strcmp(gst_debug_category_get_name(cat), g->category) != 0) return;
  const gchar *text = gst_debug_message_get(message);
  if (text && strstr(text, g->text)) g->gate->set();
}

// Runs `pipeline` (run_pipeline()) with `g` watching the debug log (on for
// the run: without GST_DEBUG set, the debug system is off).
void run_watching(GstElement *pipeline, Run &run, const LogGate &g, GstDebugLevel level) {
  const gboolean was_active = gst_debug_is_active();
  gst_debug_set_active(TRUE);
  gst_debug_set_threshold_for_name(g.category, level);
  gst_debug_add_log_function(on_log_gate, const_cast<LogGate *>(&g), nullptr);
  run_pipeline(pipeline, run, 60);
  gst_debug_remove_log_function(on_log_gate);
  gst_debug_unset_threshold_for_name(g.category);
  gst_debug_set_active(was_active);
}

// Renames the first `from` box type in `file` to `to` (same size).
Bytes rename_box(Bytes file, const char *from, const char *to) {
  auto it = std::search(file.begin(), file.end(), from, from + 4);
  fail_if(it == file.end(), "no %s box", from);
  std::copy(to, to + 4, it);
  return file;
}

// The order CI's ASan pass once hit (case 5 above gave 387 frames of 452):
// segment 0's moov (after its mdat) is read from its head and its frames go
// out, and only then, before the element pops anything more, its tail
// request is answered without Range. The element then read the segment
// whole again, its frames entered the timeline twice (the copy dropped past
// its edit, but counted), and the fallback skipped them twice. The order is
// made by the server and the sink: segment 0's body stops after 64 bytes
// until the element asks for its tail; the tail is answered (200, the whole
// body: Range ignored) once the sink has a buffer, and the sink holds that
// first buffer until the engine took the answer. Segment 1 is an ADTS body
// (bad: read again, then the fallback). buffer-size=32: 64 bytes end the
// BUFFERING the first wait may start, so the head is read. Case 1 serves
// segment 0 without its edit list, so frames entered twice would also be
// output twice.
GST_START_TEST(test_m4a_tail_refused_after_moov) {
  media::Packets packets;
  std::vector<Bytes> segments;
  Bytes whole_m4a;
  m4a_fixture(packets, segments, &whole_m4a);
  const Bytes seg0 = __i__ == 0 ? segments[0] : rename_box(segments[0], "edts", "free");
  const Bytes adts = make_track(media::Form::Adts).segments[1];
  Gate tail_asked, gates[2];  // the first buffer, the tail refused
  Gate &first_buffer = gates[0];
  Script script = [&](const std::string &req) -> std::vector<Piece> {
    if (req == "status") return whole(200, kStatus4, "Content-Type: application/json\r\n");
    if (req == "segment 0") {
      std::vector<Piece> r = whole(200, bytes_of(seg0), "Content-Type: audio/mp4\r\n");
      size_t head = r[0].bytes.size() - seg0.size() + 64;
      r.push_back({r[0].bytes.substr(head), 0, [&] { tail_asked.wait(); }});
      r[0].bytes.resize(head);
      return r;
    }
    if (req == "segment 0 range") {  // the tail
      tail_asked.set();
      std::vector<Piece> r = whole(200, bytes_of(seg0), "Content-Type: audio/mp4\r\n");
      r[0].before = [&] { first_buffer.wait(); };
      return r;
    }
    if (req == "segment 1") return whole(200, bytes_of(adts), "Content-Type: audio/mp4\r\n");
    if (req == "full") return whole(200, bytes_of(whole_m4a));
    for (int i = 2; i < 4; i++)
      if (req == "segment " + std::to_string(i)) return whole(200, bytes_of(segments[i]));
    return whole(404, "no");
  };
  RawServer srv(script, true);  // the tail request apart
  GstElement *p = make_pipeline(srv.base_url(), "x",
                                "join=timeline buffer-size=32 missing-segment=fallback "
                                "fallback-uri=" +
                                    srv.base_url() + "/full/x",
                                "appsink name=sink sync=false");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad *, GstPadProbeInfo *, gpointer data) -> GstPadProbeReturn {
        Gate *gates = static_cast<Gate *>(data);  // first_buffer, tail_refused
        gates[0].set();
        gates[1].wait();
        return GST_PAD_PROBE_REMOVE;
      },
      gates, nullptr);
  gst_object_unref(pad);
  gst_object_unref(sink);
  // The engine's line when the tail is answered without Range
  // (downloader-tail.cpp, finish_tail()).
  Run run;
  run_watching(p, run, {"segdl-engine", "segment 0: no tail from", &gates[1]}, GST_LEVEL_DEBUG);
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstStructure *stats = nullptr;
  g_object_get(src, "stats", &stats, nullptr);
  gst_object_unref(src);
  gst_object_unref(p);
  fail_if(tail_asked.missed || first_buffer.missed || gates[1].missed,
          "the order was not made: tail asked %d, a buffer before its answer %d, the answer "
          "taken by the engine %d",
          !tail_asked.missed, !first_buffer.missed, !gates[1].missed);
  fail_if(run.timed_out, "no end in time");
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  gboolean fallback = FALSE;
  fail_unless(gst_structure_get_boolean(stats, "fallback", &fallback));
  gst_structure_free(stats);
  fail_unless(fallback, "the fallback did not take over");
  // Every frame of the encode once, in order, the timestamps continuous.
  fail_unless_equals_int(run.frames.size(), packets.packets.size());
  for (size_t k = 0; k < run.frames.size(); k++) {
    fail_unless(run.frames[k] == packets.packets[k].data, "frame %zu", k);
    if (k == 0) continue;
    GstClockTimeDiff d = GST_CLOCK_DIFF(run.pts[k - 1] + run.durations[k - 1], run.pts[k]);
    fail_unless(d >= -1000 && d <= 1000, "frame %zu at %" GST_TIME_FORMAT, k,
                GST_TIME_ARGS(run.pts[k]));
  }
}
GST_END_TEST;

// Where the top-level box `type` of `file` begins (fails when there is none).
size_t top_box(const Bytes &file, const char *type) {
  size_t off = 0;
  while (off + 8 <= file.size()) {
    if (memcmp(&file[off + 4], type, 4) == 0) return off;
    off += size_t(file[off]) << 24 | size_t(file[off + 1]) << 16 | size_t(file[off + 2]) << 8 |
           file[off + 3];
  }
  fail("no %s box", type);
  return 0;
}

// A segment that fails after part of it went out is cut short, never read
// again nor skipped silently: segment 1 of an m4a track is read while it
// arrives (its tail, the moov, asked apart and answered 206), but its body
// ends halfway through its mdat (the server changed the file between the
// two requests). Its first frames went out; the rest is left out as
// missing-segment says: case 0 gap (a WARNING, segment 2 at its nominal
// place, DISCONT, `complete` false), case 1 error (STREAM/DEMUX naming
// segment 1, after its first frames). Its body is held at 64 bytes until
// the engine has its tail (else, fetched ahead, it would be read whole).
GST_START_TEST(test_m4a_segment_cut_short) {
  const bool gap = __i__ == 0;
  media::Packets packets;
  std::vector<Bytes> segments;
  m4a_fixture(packets, segments, nullptr);
  std::string error;
  const Bytes &seg1 = segments[1];
  const size_t moov = top_box(seg1, "moov");  // after the mdat: the tail
  const size_t mdat = top_box(seg1, "mdat");
  const size_t cut = mdat + (moov - mdat) / 2;
  Gate tail_in;
  Script script = [&](const std::string &req) -> std::vector<Piece> {
    if (req == "status") return whole(200, kStatus4, "Content-Type: application/json\r\n");
    if (req == "segment 1") {
      std::vector<Piece> r = whole(200, std::string(seg1.begin(), seg1.begin() + long(cut)),
                                   "Content-Type: audio/mp4\r\n");
      size_t head = r[0].bytes.size() - cut + 64;
      r.push_back({r[0].bytes.substr(head), 0, [&] { tail_in.wait(); }});
      r[0].bytes.resize(head);
      return r;
    }
    if (req == "segment 1 range") {
      std::string tail(seg1.begin() + long(moov), seg1.end());
      return {{"HTTP/1.1 206 X\r\nContent-Range: bytes " + std::to_string(moov) + "-" +
               std::to_string(seg1.size() - 1) + "/" + std::to_string(seg1.size()) +
               "\r\nContent-Length: " + std::to_string(tail.size()) +
               "\r\nConnection: close\r\n\r\n" + tail}};
    }
    for (int i = 0; i < 4; i++)
      if (req == "segment " + std::to_string(i)) return whole(200, bytes_of(segments[i]));
    return whole(404, "no");
  };
  RawServer srv(script, true);  // the tail request apart
  GstElement *p = make_pipeline(srv.base_url(), "x",
                                std::string("join=timeline buffer-size=32 missing-segment=") +
                                    (gap ? "gap" : "error") +
                                    " first-segment-duration=1.5 segment-duration=3.0",
                                "appsink name=sink sync=false");
  // The rest of the body goes once the engine has the tail (segdl-http's
  // line for the request): else the body could end first and the segment
  // be read whole.
  Run run;
  run_watching(p, run, {"segdl-http", "segment=1: 206,", &tail_in}, GST_LEVEL_INFO);
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstStructure *stats = nullptr;
  g_object_get(src, "stats", &stats, nullptr);
  gst_object_unref(src);
  gst_object_unref(p);
  fail_if(tail_in.missed, "the tail of segment 1 was not asked, or not answered");
  fail_if(run.timed_out, "no end in time");
  gboolean complete = TRUE;
  fail_unless(gst_structure_get_boolean(stats, "complete", &complete));
  gst_structure_free(stats);
  fail_if(complete, "complete although segment 1 was cut short");
  fail_unless_equals_int(srv.requests("segment 1") - srv.requests("segment 1 range"), 1);
  std::vector<std::vector<Bytes>> served(4);
  for (int i = 0; i < 4; i++) {
    media::ParsedFrames pf;
    fail_unless(media::parse_frames(segments[i], pf, error), "%s", error.c_str());
    for (const media::ParsedFrame &f : pf.frames) served[size_t(i)].push_back(f.data);
  }
  // Segment 0 whole, then the first frames of segment 1, in order.
  const size_t n0 = served[0].size();
  fail_unless(run.frames.size() > n0, "%zu frames out", run.frames.size());
  for (size_t k = 0; k < n0; k++) fail_unless(run.frames[k] == served[0][k], "frame %zu", k);
  size_t k1 = 0;
  while (n0 + k1 < run.frames.size() && k1 < served[1].size() &&
         run.frames[n0 + k1] == served[1][k1])
    k1++;
  fail_unless(k1 > 0 && k1 < served[1].size(), "%zu frames of segment 1 out", k1);
  if (!gap) {
    fail_unless(run.error != nullptr, "no ERROR");
    fail_unless(g_error_matches(run.error, GST_STREAM_ERROR, GST_STREAM_ERROR_DEMUX), "%s",
                run.error->message);
    fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
    fail_unless(strstr(run.error_debug.c_str(), "does not end with the tail") != nullptr, "%s",
                run.error_debug.c_str());
    fail_unless_equals_int(run.frames.size(), n0 + k1);
    return;
  }
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  bool warned = false;
  for (const std::string &w : run.warnings)
    warned |= w.find("Segment 1 is missing") != std::string::npos;
  fail_unless(warned, "no WARNING about segment 1");
  // The rest of segment 1 left out: segments 2 and 3 whole, segment 2
  // where segment 1 began plus its nominal 3 s, after the gap, DISCONT.
  std::vector<Bytes> want(served[2]);
  want.insert(want.end(), served[3].begin(), served[3].end());
  fail_unless_equals_int(run.frames.size(), n0 + k1 + want.size());
  for (size_t k = 0; k < want.size(); k++)
    fail_unless(run.frames[n0 + k1 + k] == want[k], "frame %zu of segments 2-3", k);
  fail_unless_equals_uint64(run.pts[n0 + k1], run.pts[n0] + 3 * GST_SECOND);
  fail_unless(run.discont[n0 + k1], "no DISCONT after the gap");
}
GST_END_TEST;

// An unknown id (status 404) fails at once, without retries.
GST_START_TEST(test_status_404) {
  RawServer srv([](const std::string &) { return whole(404, "unknown id"); });
  GstElement *p = make_pipeline(srv.base_url(), "x", "join=bytes max-retries=5 retry-backoff=2",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  expect_error(run, GST_RESOURCE_ERROR_NOT_FOUND, "404", "status 404");
  fail_unless_equals_int(srv.requests("status"), 1);
  fail_unless(run.bytes.empty());
}
GST_END_TEST;

// totalSegments: 0 ends cleanly with nothing output, although segment 0 was
// asked for (and served) before the status came.
GST_START_TEST(test_total_zero) {
  server::Track t = make_track(media::Form::Adts);
  RawServer srv([&](const std::string &what) -> std::vector<Piece> {
    if (what == "status") return {{"", 200}, whole(200, R"({"ready":[],"totalSegments":0})")[0]};
    return whole(200, bytes_of(t.segments[0]));
  });
  GstElement *p = make_pipeline(srv.base_url(), "x", "join=bytes", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_if(run.timed_out);
  fail_unless(run.bytes.empty(), "%zu bytes output", run.bytes.size());
  fail_unless(run.error != nullptr, "no ERROR for a track without data");
  fail_unless(strstr(run.error->message, "no data") != nullptr, "%s", run.error->message);
}
GST_END_TEST;

// A status trickling one byte every 300 ms never trips libsoup's I/O
// timeout; stall-timeout bounds the whole status request.
GST_START_TEST(test_trickling_status) {
  RawServer srv([](const std::string &what) -> std::vector<Piece> {
    std::vector<Piece> out;
    if (what != "status") return whole(404, "no");
    std::string body = kStatus4;
    out.push_back({"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                   "\r\nConnection: close\r\n\r\n"});
    for (char c : body) out.push_back({std::string(1, c), 300});
    return out;
  });
  GstElement *p = make_pipeline(srv.base_url(), "x", "join=bytes max-retries=1 stall-timeout=1",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_if(run.timed_out, "the trickle was never stopped");
  fail_unless(run.error != nullptr);
  fail_unless(strstr(run.error->message, "stall-timeout") != nullptr, "%s", run.error->message);
  fail_unless_equals_int(srv.requests("status"), 2);
}
GST_END_TEST;

// An unreachable backend is one error, whatever fails first (the status
// or segment 0, asked together).
GST_START_TEST(test_unreachable_one_error) {
  int port;
  {
    auto srv = start_server();
    port = srv->port();
  }  // stopped: the port now refuses connections
  for (int i = 0; i < 6; i++) {
    GstElement *p = make_pipeline("http://127.0.0.1:" + std::to_string(port), "abc",
                                  "max-retries=" + std::to_string(i % 3), "fakesink");
    Run run;
    run_pipeline(p, run, 20);
    gst_object_unref(p);
    expect_error(run, GST_RESOURCE_ERROR_OPEN_READ, "cannot reach the backend", "unreachable");
  }
}
GST_END_TEST;

static Suite *hostile_suite() {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_max_segment_size);
  tcase_add_test(tc, test_wrong_content_type);
  tcase_add_test(tc, test_endless_body);
  tcase_add_test(tc, test_request_timeout);
  tcase_add_loop_test(tc, test_redirects, 0, G_N_ELEMENTS(kRedirects));
  tcase_add_test(tc, test_ssl_strict);
  tcase_add_test(tc, test_cut_chunked);
  tcase_add_loop_test(tc, test_malformed_chunk_size, 0, G_N_ELEMENTS(kMalformed));
  tcase_add_test(tc, test_empty_body);
  tcase_add_test(tc, test_body_without_length);
  tcase_add_test(tc, test_unasked_gzip);
  tcase_add_test(tc, test_endless_503);
  tcase_add_test(tc, test_status_404);
  tcase_add_test(tc, test_total_zero);
  tcase_add_test(tc, test_trickling_status);
  tcase_add_test(tc, test_unreachable_one_error);
  tcase_add_loop_test(tc, test_bad_middle_segment, 0, 18);
  tcase_add_loop_test(tc, test_undemuxable_middle_segment, 0, 6);
  tcase_add_loop_test(tc, test_m4a_tail_refused_after_moov, 0, 2);
  tcase_add_loop_test(tc, test_m4a_segment_cut_short, 0, 2);
  tcase_add_loop_test(tc, test_hostile_id_cache, 0, G_N_ELEMENTS(kIds));
  return s;
}

GST_CHECK_MAIN(hostile);
