// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — tests of the reference backend (tools/server).
 *
 * Each test starts a Server on 127.0.0.1 port 0 and talks to it with a
 * libsoup 3 client on the test thread. Waits are bounded (session timeout,
 * Server::wait_idle / wait_requests, deadline sources); nothing sleeps.
 */
#include <gst/check/gstcheck.h>

#include "server/server.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using segdl::server::Bytes;
using segdl::server::Fault;
using segdl::server::Options;
using segdl::server::RequestRecord;
using segdl::server::Server;
using segdl::server::StatusStyle;
using segdl::server::Track;

namespace {

constexpr int kWaitMs = 10000;

// String equality on values (fail_unless_equals_string keeps the pointers,
// which must not come from temporaries).
#define assert_str_eq(a, b)                                                 \
  do {                                                                      \
    const std::string a_ = (a), b_ = (b);                                   \
    fail_unless(a_ == b_, "'%s' != '%s' (%s)", a_.c_str(), b_.c_str(), #a); \
  } while (0)

Bytes pattern(int seg, size_t size) {
  Bytes b(size);
  for (size_t i = 0; i < size; i++)
    b[i] = static_cast<uint8_t>((seg * 31 + i * 7 + i / 251) & 0xff);
  return b;
}

// Three segments of 20, 30 and 40 KB, audio/aac, 15 s + 30 s.
Track make_track() {
  Track t;
  for (int k = 0; k < 3; k++) t.segments.push_back(pattern(k, 20000 + 10000 * k));
  t.mime_type = "audio/aac";
  t.first_segment_duration = 15;
  t.segment_duration = 30;
  t.duration = 75.5;
  return t;
}

Bytes concat(const Track &t) {
  Bytes all;
  for (const Bytes &b : t.segments) all.insert(all.end(), b.begin(), b.end());
  return all;
}

std::unique_ptr<Server> start(Options opts = Options()) {
  auto s = std::make_unique<Server>(opts);
  s->add_track("abc", make_track());
  std::string error;
  fail_unless(s->start(error), "start: %s", error.c_str());
  fail_unless(s->port() > 0);
  return s;
}

struct Reply {
  guint status = 0;
  Bytes body;
  std::string error;  // transport error, empty if none
  std::string content_type, content_range, retry_after;
  goffset content_length = -1;
  double seconds = 0;  // request time
  std::string text() const { return std::string(body.begin(), body.end()); }
};

SoupSession *new_session() {
  SoupSession *s = soup_session_new_with_options("timeout", 10, "max-conns-per-host", 8,
                                                 "max-conns", 16, nullptr);
  soup_session_set_proxy_resolver(s, nullptr);
  return s;
}

void fill_reply(SoupMessage *msg, GBytes *body, GError *err, Reply &r) {
  r.status = soup_message_get_status(msg);
  if (err) r.error = err->message;
  if (body) {
    gsize len = 0;
    const auto *data = static_cast<const uint8_t *>(g_bytes_get_data(body, &len));
    r.body.assign(data, data + len);
  }
  SoupMessageHeaders *h = soup_message_get_response_headers(msg);
  const char *v = soup_message_headers_get_content_type(h, nullptr);
  r.content_type = v ? v : "";
  v = soup_message_headers_get_one(h, "Content-Range");
  r.content_range = v ? v : "";
  v = soup_message_headers_get_one(h, "Retry-After");
  r.retry_after = v ? v : "";
  if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH)
    r.content_length = soup_message_headers_get_content_length(h);
}

Reply get(const Server &s, const std::string &path, const char *range = nullptr) {
  SoupSession *session = new_session();
  const std::string url = s.base_url() + path;
  SoupMessage *msg = soup_message_new("GET", url.c_str());
  fail_unless(msg != nullptr, "bad url %s", url.c_str());
  if (range) soup_message_headers_replace(soup_message_get_request_headers(msg), "Range", range);
  GError *err = nullptr;
  const gint64 t0 = g_get_monotonic_time();
  GBytes *body = soup_session_send_and_read(session, msg, nullptr, &err);
  Reply r;
  r.seconds = static_cast<double>(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
  fill_reply(msg, body, err, r);
  if (body) g_bytes_unref(body);
  g_clear_error(&err);
  g_object_unref(msg);
  g_object_unref(session);
  return r;
}

// Parses a JSON object body; the caller unrefs the parser.
JsonObject *parse_object(const Reply &r, JsonParser **parser) {
  *parser = json_parser_new();
  GError *err = nullptr;
  const std::string text = r.text();
  fail_unless(json_parser_load_from_data(*parser, text.c_str(), -1, &err), "not JSON: %s",
              text.c_str());
  JsonNode *root = json_parser_get_root(*parser);
  fail_unless(root && JSON_NODE_HOLDS_OBJECT(root), "not an object: %s", text.c_str());
  return json_node_get_object(root);
}

const RequestRecord *find_record(const std::vector<RequestRecord> &log, const std::string &path,
                                 int64_t segment) {
  for (const RequestRecord &r : log)
    if (r.path == path && r.segment == segment) return &r;
  return nullptr;
}

}  // namespace

GST_START_TEST(test_start_stop) {
  auto s = start();
  const std::string url = s->base_url();
  assert_str_eq(url.c_str(), ("http://127.0.0.1:" + std::to_string(s->port())).c_str());
  Reply r = get(*s, "/status?v=abc");
  fail_unless_equals_int(r.status, 200);
  // A second server cannot take the same port.
  Options o;
  o.port = s->port();
  Server other(o);
  std::string error;
  fail_if(other.start(error));
  fail_if(error.empty());
  s->stop();
  s->stop();  // idempotent
  other.stop();
  // A server that never started stops and destroys cleanly.
  Server idle;
  idle.stop();
}
GST_END_TEST;

GST_START_TEST(test_status_bare) {
  auto s = start();
  Reply r = get(*s, "/status?v=abc");
  fail_unless_equals_int(r.status, 200);
  assert_str_eq(r.content_type.c_str(), "application/json");
  assert_str_eq(r.text().c_str(), "{\"ready\":[0,1,2],\"totalSegments\":3}");

  Options o;
  o.total_unknown = true;
  auto u = start(o);
  r = get(*u, "/status?v=abc");
  assert_str_eq(r.text().c_str(), "{\"ready\":[0,1,2]}");
}
GST_END_TEST;

GST_START_TEST(test_status_rich) {
  Options o;
  o.status_style = StatusStyle::Rich;
  auto s = start(o);
  Reply r = get(*s, "/status?v=abc");
  fail_unless_equals_int(r.status, 200);
  JsonParser *parser = nullptr;
  JsonObject *obj = parse_object(r, &parser);
  JsonArray *ready = json_object_get_array_member(obj, "ready");
  fail_unless_equals_int(json_array_get_length(ready), 3);
  fail_unless_equals_int(json_object_get_int_member(obj, "totalSegments"), 3);
  assert_str_eq(json_object_get_string_member(obj, "state"), "complete");
  fail_unless_equals_float(json_object_get_double_member(obj, "duration"), 75.5);
  fail_unless_equals_float(json_object_get_double_member(obj, "segment_duration"), 30);
  fail_unless_equals_float(json_object_get_double_member(obj, "first_segment_duration"), 15);
  assert_str_eq(json_object_get_string_member(obj, "mime_type"), "audio/aac");
  fail_if(json_object_has_member(obj, "error"));
  g_object_unref(parser);

  o.total_unknown = true;
  auto u = start(o);
  r = get(*u, "/status?v=abc");
  obj = parse_object(r, &parser);
  fail_if(json_object_has_member(obj, "totalSegments"));
  assert_str_eq(json_object_get_string_member(obj, "state"), "processing");
  g_object_unref(parser);
}
GST_END_TEST;

GST_START_TEST(test_unknown) {
  auto s = start();
  Reply r = get(*s, "/status?v=nope");
  fail_unless_equals_int(r.status, 404);
  assert_str_eq(r.content_type.c_str(), "application/json");
  JsonParser *parser = nullptr;
  JsonObject *obj = parse_object(r, &parser);
  fail_unless(json_object_has_member(obj, "error"));
  g_object_unref(parser);
  fail_unless_equals_int(get(*s, "/stream?v=nope&segment=0").status, 404);
  fail_unless_equals_int(get(*s, "/stream?v=nope").status, 404);
  fail_unless_equals_int(get(*s, "/full/nope").status, 404);
  fail_unless_equals_int(get(*s, "/status").status, 400);
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=x").status, 400);
  fail_unless_equals_int(get(*s, "/other").status, 404);
}
GST_END_TEST;

GST_START_TEST(test_segments) {
  auto s = start();
  const Track t = make_track();
  for (int k = 0; k < 3; k++) {
    Reply r = get(*s, "/stream?v=abc&segment=" + std::to_string(k));
    fail_unless_equals_int(r.status, 200);
    fail_unless(r.error.empty(), "%s", r.error.c_str());
    assert_str_eq(r.content_type.c_str(), "audio/aac");
    fail_unless_equals_int64(r.content_length, static_cast<gint64>(t.segments[k].size()));
    fail_unless(r.body == t.segments[k], "segment %d differs", k);
  }
  Reply past = get(*s, "/stream?v=abc&segment=3");
  fail_unless_equals_int(past.status, 404);
  fail_unless(past.retry_after.empty());
}
GST_END_TEST;

// libsoup's own complaints (CRITICAL, WARNING) while the server runs: a
// misuse of its API that the answer alone may not show.
struct SoupComplaints {
  std::mutex mu;
  std::vector<std::string> messages;
  guint handler = 0;
  SoupComplaints() {
    handler = g_log_set_handler(
        "libsoup", GLogLevelFlags(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING),
        [](const gchar *, GLogLevelFlags, const gchar *message, gpointer data) {
          auto *self = static_cast<SoupComplaints *>(data);
          std::lock_guard<std::mutex> lock(self->mu);
          self->messages.emplace_back(message);
        },
        this);
  }
  ~SoupComplaints() { g_log_remove_handler("libsoup", handler); }
  std::string first() {
    std::lock_guard<std::mutex> lock(mu);
    return messages.empty() ? std::string() : messages.front();
  }
};

// An empty segment (a backend's broken cut) is served as what it is: 200
// with Content-Length 0 and no body, and libsoup is not handed an empty
// chunk (it said "soup_message_body_append_bytes: assertion failed").
GST_START_TEST(test_empty_segment) {
  SoupComplaints complaints;
  Track t = make_track();
  t.segments[1].clear();
  Server s;
  s.add_track("e", t);
  std::string error;
  fail_unless(s.start(error), "start: %s", error.c_str());
  Reply r = get(s, "/stream?v=e&segment=1");
  fail_unless(r.error.empty(), "%s", r.error.c_str());
  fail_unless_equals_int(r.status, 200);
  fail_unless_equals_int64(r.content_length, 0);
  fail_unless(r.body.empty(), "%zu bytes", r.body.size());
  Reply next = get(s, "/stream?v=e&segment=2");
  fail_unless(next.body == t.segments[2], "the segment after the empty one differs");
  fail_unless(s.wait_idle(kWaitMs));
  s.stop();
  const std::string said = complaints.first();
  fail_unless(said.empty(), "libsoup: %s", said.c_str());
}
GST_END_TEST;

GST_START_TEST(test_range) {
  auto s = start();
  const Bytes seg = make_track().segments[1];
  const size_t n = seg.size();
  Reply r = get(*s, "/stream?v=abc&segment=1", "bytes=100-");
  fail_unless_equals_int(r.status, 206);
  assert_str_eq(r.content_range.c_str(),
                ("bytes 100-" + std::to_string(n - 1) + "/" + std::to_string(n)).c_str());
  fail_unless(r.body == Bytes(seg.begin() + 100, seg.end()));

  r = get(*s, "/stream?v=abc&segment=1", "bytes=10-19");
  fail_unless_equals_int(r.status, 206);
  assert_str_eq(r.content_range.c_str(), ("bytes 10-19/" + std::to_string(n)).c_str());
  fail_unless(r.body == Bytes(seg.begin() + 10, seg.begin() + 20));

  r = get(*s, "/stream?v=abc&segment=1", "bytes=-5");
  fail_unless_equals_int(r.status, 206);
  fail_unless(r.body == Bytes(seg.end() - 5, seg.end()));

  r = get(*s, "/stream?v=abc&segment=1", ("bytes=" + std::to_string(n) + "-").c_str());
  fail_unless_equals_int(r.status, 416);
  assert_str_eq(r.content_range.c_str(), ("bytes */" + std::to_string(n)).c_str());

  // A range the server does not understand is ignored: the whole body.
  r = get(*s, "/stream?v=abc&segment=1", "bytes=0-1,5-6");
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == seg);
}
GST_END_TEST;

GST_START_TEST(test_full) {
  auto s = start();
  Track odd = make_track();
  odd.mime_type = "audio/mpeg";
  s->add_track("a b/c", odd);  // added while running, needs escaping
  const Bytes all = concat(make_track());
  Reply r = get(*s, "/stream?v=abc");
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == all);
  r = get(*s, "/full/abc");
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == all);
  r = get(*s, "/full/abc", "bytes=20000-");
  fail_unless_equals_int(r.status, 206);
  fail_unless(r.body == Bytes(all.begin() + 20000, all.end()));
  r = get(*s, "/full/a%20b%2Fc");
  fail_unless_equals_int(r.status, 200);
  assert_str_eq(r.content_type.c_str(), "audio/mpeg");
  fail_unless(r.body == all);
  r = get(*s, "/status?v=a%20b%2Fc");
  assert_str_eq(r.text().c_str(), "{\"ready\":[0,1,2],\"totalSegments\":3}");

  // An explicit full file wins over the concatenation.
  Track with_full = make_track();
  with_full.full = pattern(9, 1234);
  s->add_track("f", with_full);
  r = get(*s, "/stream?v=f");
  fail_unless(r.body == with_full.full);
}
GST_END_TEST;

GST_START_TEST(test_reveal) {
  Options o;
  o.reveal_every = 30;
  o.status_style = StatusStyle::Rich;
  auto s = start(o);
  Reply r = get(*s, "/status?v=abc");
  JsonParser *parser = nullptr;
  JsonObject *obj = parse_object(r, &parser);
  fail_unless_equals_int(json_array_get_length(json_object_get_array_member(obj, "ready")), 1);
  fail_unless_equals_int(json_object_get_int_member(obj, "totalSegments"), 3);
  assert_str_eq(json_object_get_string_member(obj, "state"), "processing");
  g_object_unref(parser);

  r = get(*s, "/stream?v=abc&segment=1");
  fail_unless_equals_int(r.status, 404);
  const int after1 = atoi(r.retry_after.c_str());
  fail_unless(after1 >= 1 && after1 <= 30, "Retry-After %s", r.retry_after.c_str());
  r = get(*s, "/stream?v=abc&segment=2");
  fail_unless_equals_int(r.status, 404);
  const int after2 = atoi(r.retry_after.c_str());
  fail_unless(after2 >= 31 && after2 <= 60, "Retry-After %s", r.retry_after.c_str());
  r = get(*s, "/stream?v=abc&segment=0");
  fail_unless_equals_int(r.status, 200);
  // The full track does not wait for the reveal.
  fail_unless_equals_int(get(*s, "/full/abc").status, 200);
}
GST_END_TEST;

GST_START_TEST(test_faults_status) {
  Options o;
  auto s = start(o);
  Fault f;
  std::string error;
  fail_unless(segdl::server::parse_fault("status500:abc:*:1", f, error));
  s->add_fault(f);
  fail_unless_equals_int(get(*s, "/status?v=abc").status, 500);
  fail_unless_equals_int(get(*s, "/status?v=abc").status, 200);  // count 1: consumed

  fail_unless(segdl::server::parse_fault("badjson:abc:*:1", f, error));
  s->add_fault(f);
  Reply r = get(*s, "/status?v=abc");
  fail_unless_equals_int(r.status, 200);
  JsonParser *parser = json_parser_new();
  fail_if(json_parser_load_from_data(parser, r.text().c_str(), -1, nullptr));
  g_object_unref(parser);

  fail_unless(segdl::server::parse_fault("statuserror:abc:*:1", f, error));
  s->add_fault(f);
  r = get(*s, "/status?v=abc");
  fail_unless_equals_int(r.status, 200);
  JsonObject *obj = parse_object(r, &parser);
  assert_str_eq(json_object_get_string_member(obj, "state"), "error");
  assert_str_eq(json_object_get_string_member(obj, "error"), "injected failure");
  g_object_unref(parser);

  assert_str_eq(get(*s, "/status?v=abc").text().c_str(), "{\"ready\":[0,1,2],\"totalSegments\":3}");
  fail_unless(segdl::server::parse_fault("statusregress:abc:*:1", f, error));
  s->add_fault(f);
  assert_str_eq(get(*s, "/status?v=abc").text().c_str(), "{\"ready\":[0,1],\"totalSegments\":3}");
  // A status fault for another id does not fire.
  fail_unless(segdl::server::parse_fault("status500:other:*:-1", f, error));
  s->add_fault(f);
  fail_unless_equals_int(get(*s, "/status?v=abc").status, 200);
}
GST_END_TEST;

// "statushold": the status answer waits for the id's first segment
// request, so a test learns the order of a client's requests whatever the
// machine's speed. Once a segment was asked for, statuses are not held.
GST_START_TEST(test_status_hold) {
  auto s = start();
  Fault f;
  std::string error;
  fail_unless(segdl::server::parse_fault("statushold:abc:*:1:30", f, error), "%s", error.c_str());
  s->add_fault(f);
  Reply held;
  std::thread asker([&s, &held] { held = get(*s, "/status?v=abc"); });
  fail_unless(s->wait_requests(1, kWaitMs));
  fail_unless_equals_int64(s->requests()[0].end_us, 0);  // held: no segment asked yet
  Reply seg = get(*s, "/stream?v=abc&segment=0");
  asker.join();
  fail_unless_equals_int(seg.status, 200);
  fail_unless_equals_int(held.status, 200);
  assert_str_eq(held.text(), "{\"ready\":[0,1,2],\"totalSegments\":3}");
  fail_unless(s->wait_idle(kWaitMs));
  auto log = s->requests();
  const RequestRecord *status = find_record(log, "/status", -1);
  const RequestRecord *first = find_record(log, "/stream", 0);
  fail_unless(status && first);
  fail_unless(status->end_us >= first->start_us, "the status was answered before segment 0");
  // The next status is not held (a segment was asked for), even with a hold.
  s->add_fault(f);
  fail_unless_equals_int(get(*s, "/status?v=abc").status, 200);
}
GST_END_TEST;

GST_START_TEST(test_faults_segment) {
  auto s = start();
  const Track t = make_track();
  Fault f;
  std::string error;
  fail_unless(segdl::server::parse_fault("http500:abc:1:2", f, error));
  s->add_fault(f);
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=0").status, 200);  // other segment
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=1").status, 500);
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=1").status, 500);
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=1").status, 200);

  fail_unless(segdl::server::parse_fault("notready:abc:*:1:7", f, error));
  s->add_fault(f);
  Reply r = get(*s, "/stream?v=abc&segment=2");
  fail_unless_equals_int(r.status, 404);
  assert_str_eq(r.retry_after.c_str(), "7");
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=2").status, 200);

  // truncate: the full Content-Length is declared, half is sent, then EOF.
  fail_unless(segdl::server::parse_fault("truncate:abc:2:1", f, error));
  s->add_fault(f);
  r = get(*s, "/stream?v=abc&segment=2");
  fail_unless_equals_int(r.status, 200);
  fail_unless_equals_int64(r.content_length, static_cast<gint64>(t.segments[2].size()));
  fail_if(r.error.empty(), "a truncated body must fail the read");
  fail_unless(r.body.size() < t.segments[2].size());

  // reset: headers and part of the body, then the connection is reset.
  fail_unless(segdl::server::parse_fault("reset:abc:0:1", f, error));
  s->add_fault(f);
  r = get(*s, "/stream?v=abc&segment=0");
  fail_if(r.error.empty(), "a reset body must fail the read");
  fail_unless(r.body.size() < t.segments[0].size());

  // stall: the whole body arrives, after a pause.
  fail_unless(segdl::server::parse_fault("stall:abc:1:1:0.3", f, error));
  s->add_fault(f);
  r = get(*s, "/stream?v=abc&segment=1");
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.error.empty(), "%s", r.error.c_str());
  fail_unless(r.body == t.segments[1]);
  fail_unless(r.seconds >= 0.28, "stalled only %f s", r.seconds);

  // Faults on "full" touch the full track only.
  fail_unless(segdl::server::parse_fault("http500:abc:full:1", f, error));
  s->add_fault(f);
  fail_unless_equals_int(get(*s, "/stream?v=abc&segment=0").status, 200);
  fail_unless_equals_int(get(*s, "/stream?v=abc").status, 500);
  fail_unless_equals_int(get(*s, "/stream?v=abc").status, 200);

  // Every response ended, the broken ones included, with the status sent.
  fail_unless(s->wait_idle(kWaitMs));
  for (const RequestRecord &rec : s->requests()) {
    fail_unless(rec.end_us >= rec.start_us && rec.end_us > 0);
    fail_unless(rec.http_status > 0);
  }
}
GST_END_TEST;

GST_START_TEST(test_latency_bandwidth) {
  Options o;
  o.latency_ms = 200;
  auto s = start(o);
  Reply r = get(*s, "/status?v=abc");
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.seconds >= 0.19, "latency only %f s", r.seconds);
  r = get(*s, "/stream?v=abc&segment=0");
  fail_unless(r.body == make_track().segments[0]);
  fail_unless(r.seconds >= 0.19);

  Options b;
  b.bandwidth_kbps = 800;  // 100 kB/s
  b.chunk_bytes = 8000;
  auto t = start(b);
  r = get(*t, "/stream?v=abc&segment=2");  // 40 kB: the last 32 kB are paced
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == make_track().segments[2]);
  fail_unless(r.seconds >= 0.3, "40 kB at 100 kB/s took only %f s", r.seconds);
  // Throttled ranges and faults still deliver the right bytes.
  r = get(*t, "/stream?v=abc&segment=0", "bytes=5000-");
  fail_unless_equals_int(r.status, 206);
  const Bytes seg0 = make_track().segments[0];
  fail_unless(r.body == Bytes(seg0.begin() + 5000, seg0.end()));
  Fault f;
  std::string error;
  fail_unless(segdl::server::parse_fault("stall:abc:0:1:0.1", f, error));
  t->add_fault(f);
  r = get(*t, "/stream?v=abc&segment=0");
  fail_unless(r.body == make_track().segments[0]);
}
GST_END_TEST;

GST_START_TEST(test_request_log) {
  auto s = start();
  get(*s, "/status?v=abc");
  get(*s, "/stream?v=abc&segment=1", "bytes=5-");
  get(*s, "/full/abc");
  get(*s, "/stream?v=abc&segment=9");
  fail_unless(s->wait_idle(kWaitMs));
  const std::vector<RequestRecord> log = s->requests();
  fail_unless_equals_int(log.size(), 4);
  assert_str_eq(log[0].path.c_str(), "/status");
  assert_str_eq(log[0].video_id.c_str(), "abc");
  fail_unless_equals_int(log[0].segment, -1);
  fail_unless_equals_int(log[0].http_status, 200);
  const RequestRecord *seg = find_record(log, "/stream", 1);
  fail_unless(seg != nullptr);
  assert_str_eq(seg->range.c_str(), "bytes=5-");
  fail_unless_equals_int(seg->http_status, 206);
  const RequestRecord *full = find_record(log, "/full/abc", -1);
  fail_unless(full != nullptr);
  assert_str_eq(full->video_id.c_str(), "abc");
  fail_unless_equals_int(find_record(log, "/stream", 9)->http_status, 404);
  for (size_t i = 0; i < log.size(); i++) {
    fail_unless(log[i].end_us >= log[i].start_us);
    if (i) fail_unless(log[i].start_us >= log[i - 1].start_us);
  }
  fail_unless_equals_int(s->max_segment_requests_in_flight(), 1);
}
GST_END_TEST;

namespace {

struct Pending {
  int left = 0;
  std::vector<guint> statuses;
};

void on_read(GObject *source, GAsyncResult *res, gpointer data) noexcept {
  auto *p = static_cast<Pending *>(data);
  GError *err = nullptr;
  SoupSession *session = SOUP_SESSION(source);
  GBytes *body = soup_session_send_and_read_finish(session, res, &err);
  SoupMessage *msg = soup_session_get_async_result_message(session, res);
  p->statuses.push_back(msg ? soup_message_get_status(msg) : 0);
  if (body) g_bytes_unref(body);
  g_clear_error(&err);
  p->left--;
}

gboolean on_deadline(gpointer data) noexcept {
  *static_cast<bool *>(data) = true;
  return G_SOURCE_REMOVE;
}

}  // namespace

GST_START_TEST(test_in_flight) {
  Options o;
  o.latency_ms = 400;
  auto s = start(o);
  GMainContext *ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  SoupSession *session = new_session();
  Pending p;
  for (int k = 0; k < 3; k++) {
    const std::string url = s->base_url() + "/stream?v=abc&segment=" + std::to_string(k);
    SoupMessage *msg = soup_message_new("GET", url.c_str());
    soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, nullptr, on_read, &p);
    g_object_unref(msg);
    p.left++;
  }
  bool late = false;
  GSource *deadline = g_timeout_source_new(kWaitMs);
  g_source_set_callback(deadline, on_deadline, &late, nullptr);
  g_source_attach(deadline, ctx);
  while (p.left > 0 && !late) g_main_context_iteration(ctx, TRUE);
  g_source_destroy(deadline);
  g_source_unref(deadline);
  fail_if(late, "requests did not finish in time");
  for (guint st : p.statuses) fail_unless_equals_int(st, 200);
  fail_unless_equals_int(s->max_segment_requests_in_flight(), 3);
  g_object_unref(session);
  while (g_main_context_iteration(ctx, FALSE)) {
  }
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
}
GST_END_TEST;

GST_START_TEST(test_stop_with_pending) {
  Options o;
  // The request is still waiting when stop() comes; a stop() that waited
  // for it would outlast the test's timeout.
  o.latency_ms = 3600 * 1000;
  auto s = start(o);
  Reply r;
  std::thread client([&s, &r] { r = get(*s, "/stream?v=abc&segment=0"); });
  fail_unless(s->wait_requests(1, kWaitMs));
  s->stop();
  client.join();
  fail_if(r.status == 200);
  const std::vector<RequestRecord> log = s->requests();
  fail_unless_equals_int(log.size(), 1);
  fail_unless(log[0].end_us > 0);
  fail_unless(s->wait_idle(0));
  s->stop();
}
GST_END_TEST;

GST_START_TEST(test_parse_fault) {
  Fault f;
  std::string error;
  fail_unless(segdl::server::parse_fault("stall:abc:3:2:1.5", f, error));
  assert_str_eq(f.kind.c_str(), "stall");
  assert_str_eq(f.video_id.c_str(), "abc");
  fail_unless_equals_int(f.segment, 3);
  fail_unless_equals_int(f.count, 2);
  fail_unless_equals_float(f.arg, 1.5);
  fail_unless(segdl::server::parse_fault("http500:x:*:-1", f, error));
  fail_unless_equals_int(f.segment, -1);
  fail_unless_equals_int(f.count, -1);
  fail_unless(segdl::server::parse_fault("reset:x:full:1", f, error));
  fail_unless_equals_int(f.segment, -2);
  const char *bad[] = {"",
                       "http500",
                       "http500:x:1",
                       "boom:x:1:1",
                       "http500::1:1",
                       "http500:x:-3:1",
                       "http500:x:1:0",
                       "http500:x:1:z",
                       "stall:x:1:1:-2",
                       "stall:x:1:1:abc",
                       "http500:x:1:1:2:3"};
  for (const char *spec : bad) {
    error.clear();
    fail_if(segdl::server::parse_fault(spec, f, error), "accepted '%s'", spec);
    fail_if(error.empty());
  }
}
GST_END_TEST;

namespace {

void write_file(const std::string &path, const Bytes &b) {
  fail_unless(g_file_set_contents(path.c_str(), reinterpret_cast<const char *>(b.data()),
                                  static_cast<gssize>(b.size()), nullptr));
}

}  // namespace

GST_START_TEST(test_load_dir) {
  gchar *root = g_dir_make_tmp("segdl-server-XXXXXX", nullptr);
  fail_unless(root != nullptr);
  const std::string dir = root;
  g_mkdir((dir + "/t1").c_str(), 0700);
  write_file(dir + "/t1/seg_0.mp3", pattern(0, 100));
  write_file(dir + "/t1/seg_1.mp3", pattern(1, 200));
  auto s = std::make_unique<Server>();
  std::string error;
  fail_unless(s->load_dir(dir, error), "%s", error.c_str());
  fail_unless(s->start(error));
  Reply r = get(*s, "/stream?v=t1&segment=1");
  fail_unless_equals_int(r.status, 200);
  assert_str_eq(r.content_type.c_str(), "audio/mpeg");
  fail_unless(r.body == pattern(1, 200));
  assert_str_eq(get(*s, "/status?v=t1").text().c_str(), "{\"ready\":[0,1],\"totalSegments\":2}");
  s->stop();

  // A gap in the numbering is an error, and so is a missing folder.
  g_mkdir((dir + "/t2").c_str(), 0700);
  write_file(dir + "/t2/seg_0.aac", pattern(0, 10));
  write_file(dir + "/t2/seg_2.aac", pattern(2, 10));
  Server other;
  fail_if(other.load_dir(dir, error));
  fail_unless(error.find("t2") != std::string::npos, "%s", error.c_str());
  error.clear();
  fail_if(other.load_dir(dir + "/missing", error));
  fail_if(error.empty());

  for (const char *rel :
       {"t1/seg_0.mp3", "t1/seg_1.mp3", "t2/seg_0.aac", "t2/seg_2.aac", "t1", "t2", ""}) {
    gchar *p = g_build_filename(root, rel, nullptr);
    g_remove(p);
    g_free(p);
  }
  g_free(root);
}
GST_END_TEST;

static Suite *server_suite() {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_start_stop);
  tcase_add_test(tc, test_status_bare);
  tcase_add_test(tc, test_status_rich);
  tcase_add_test(tc, test_unknown);
  tcase_add_test(tc, test_segments);
  tcase_add_test(tc, test_empty_segment);
  tcase_add_test(tc, test_range);
  tcase_add_test(tc, test_full);
  tcase_add_test(tc, test_reveal);
  tcase_add_test(tc, test_faults_status);
  tcase_add_test(tc, test_status_hold);
  tcase_add_test(tc, test_faults_segment);
  tcase_add_test(tc, test_latency_bandwidth);
  tcase_add_test(tc, test_request_log);
  tcase_add_test(tc, test_in_flight);
  tcase_add_test(tc, test_stop_with_pending);
  tcase_add_test(tc, test_parse_fault);
  tcase_add_test(tc, test_load_dir);
  return s;
}

GST_CHECK_MAIN(server);
