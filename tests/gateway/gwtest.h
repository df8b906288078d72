// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway tests — shared helpers: a synchronous HTTP client (one
 * libsoup session per call, bounded by its timeout), JSON access, fixtures,
 * and a gated upstream whose segment answers wait until the test opens the
 * gate (so "two clients during one transfer" is a fact, not a race).
 */
#pragma once

#include "gateway/gateway.h"
#include "server/server.h"

#include <gst/check/gstcheck.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace gwtest {

using segdl::server::Bytes;

constexpr int kWaitMs = 20000;

#define assert_str_eq(a, b)                                                 \
  do {                                                                      \
    const std::string a_ = (a), b_ = (b);                                   \
    fail_unless(a_ == b_, "'%s' != '%s' (%s)", a_.c_str(), b_.c_str(), #a); \
  } while (0)

// `size` bytes that pass the gateway's check_segment(): ADTS frames (AAC LC,
// 44.1 kHz, stereo) of 1000 bytes (the last one takes the rest, < 2008), with a
// payload that differs per segment and per byte.
inline Bytes pattern(int seg, size_t size) {
  Bytes b(size);
  for (size_t i = 0; i < size; i++)
    b[i] = static_cast<uint8_t>((seg * 31 + i * 7 + i / 251) & 0xff);
  constexpr size_t kFrame = 1000;
  for (size_t at = 0; at + 8 <= size;) {
    const size_t len = size - at < 2 * kFrame + 8 ? size - at : kFrame;  // below 8192
    const uint8_t head[7] = {0xff,
                             0xf1,
                             0x50,  // LC, 44.1 kHz, channels (high bit) 0
                             static_cast<uint8_t>(0x80 | (len >> 11)),  // stereo
                             static_cast<uint8_t>((len >> 3) & 0xff),
                             static_cast<uint8_t>(((len & 7) << 5) | 0x1f),
                             0xfc};
    std::copy(head, head + 7, b.begin() + static_cast<long>(at));
    at += len;
  }
  return b;
}

inline std::string str(const Bytes &b) {
  return std::string(b.begin(), b.end());
}

// `count` segments of 20, 30, 40 ... KB.
inline segdl::server::Track make_track(int count = 3) {
  segdl::server::Track t;
  for (int k = 0; k < count; k++) t.segments.push_back(pattern(k, 20000 + 10000 * k));
  t.mime_type = "audio/aac";
  for (const Bytes &s : t.segments) t.full.insert(t.full.end(), s.begin(), s.end());
  return t;
}

struct Reply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;                           // transport error, if any
  std::string h(const std::string &name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline Reply request(const std::string &method, const std::string &url,
                     const std::vector<std::pair<std::string, std::string>> &headers = {},
                     const std::string &body = "", GCancellable *cancel = nullptr) {
  Reply r;
  SoupSession *session = soup_session_new_with_options("timeout", 30, "idle-timeout", 30, nullptr);
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  fail_unless(msg != nullptr, "bad url %s", url.c_str());
  SoupMessageHeaders *rh = soup_message_get_request_headers(msg);
  for (const auto &kv : headers)
    soup_message_headers_replace(rh, kv.first.c_str(), kv.second.c_str());
  if (!body.empty()) {
    GBytes *b = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, "application/json", b);
    g_bytes_unref(b);
  }
  GError *err = nullptr;
  GBytes *out = soup_session_send_and_read(session, msg, cancel, &err);
  if (out) {
    gsize size = 0;
    const char *d = static_cast<const char *>(g_bytes_get_data(out, &size));
    r.body.assign(d ? d : "", size);
    g_bytes_unref(out);
  }
  if (err) r.error = err->message;
  g_clear_error(&err);
  r.status = static_cast<int>(soup_message_get_status(msg));
  SoupMessageHeadersIter it;
  soup_message_headers_iter_init(&it, soup_message_get_response_headers(msg));
  const char *name, *value;
  while (soup_message_headers_iter_next(&it, &name, &value)) {
    g_autofree char *lower = g_ascii_strdown(name, -1);
    r.headers[lower] = value;
  }
  g_object_unref(msg);
  g_object_unref(session);
  return r;
}

inline Reply get(const std::string &url,
                 const std::vector<std::pair<std::string, std::string>> &headers = {}) {
  return request("GET", url, headers);
}

// A parsed JSON body (owned); fails the test when it is not a JSON object.
class Json {
 public:
  explicit Json(const std::string &text) : parser_(json_parser_new()) {
    GError *err = nullptr;
    const bool ok =
        json_parser_load_from_data(parser_, text.c_str(), static_cast<gssize>(text.size()), &err);
    fail_unless(ok, "not JSON (%s): %s", err ? err->message : "", text.c_str());
    g_clear_error(&err);
    JsonNode *root = json_parser_get_root(parser_);
    fail_unless(root && JSON_NODE_HOLDS_OBJECT(root), "not a JSON object: %s", text.c_str());
    obj_ = json_node_get_object(root);
  }
  ~Json() { g_object_unref(parser_); }
  JsonObject *obj() const { return obj_; }
  bool has(const char *k) const { return json_object_has_member(obj_, k); }
  std::string s(const char *k) const {
    fail_unless(has(k), "no member %s", k);
    return json_object_get_string_member(obj_, k);
  }
  int64_t i(const char *k) const {
    fail_unless(has(k), "no member %s", k);
    return json_object_get_int_member(obj_, k);
  }
  bool b(const char *k) const {
    fail_unless(has(k), "no member %s", k);
    return json_object_get_boolean_member(obj_, k);
  }
  static std::vector<int64_t> ints(JsonObject *o, const char *k) {
    std::vector<int64_t> out;
    fail_unless(json_object_has_member(o, k), "no member %s", k);
    JsonArray *a = json_object_get_array_member(o, k);
    for (guint n = 0; n < json_array_get_length(a); n++)
      out.push_back(json_array_get_int_element(a, n));
    return out;
  }
  std::vector<int64_t> ints(const char *k) const { return ints(obj_, k); }

 private:
  JsonParser *parser_;
  JsonObject *obj_ = nullptr;
};

// Checks a JSON error answer: status, {error: code, message: text}, no-store.
inline void assert_json_error(const Reply &r, int status, const std::string &code) {
  fail_unless_equals_int(r.status, status);
  Json j(r.body);
  assert_str_eq(j.s("error"), code);
  fail_unless(!j.s("message").empty());
  assert_str_eq(r.h("cache-control"), "no-store");
  assert_str_eq(r.h("content-type"), "application/json");
}

inline std::unique_ptr<segdl::server::Server> start_server(
    segdl::server::Options o = segdl::server::Options()) {
  auto s = std::make_unique<segdl::server::Server>(o);
  std::string error;
  fail_unless(s->start(error), "server: %s", error.c_str());
  return s;
}

// Checks that `r` is a 200 whose body is exactly `body`.
inline void assert_body(const Reply &r, const std::string &body) {
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == body, "a body of %zu bytes, %zu expected%s%s", r.body.size(), body.size(),
              r.error.empty() ? "" : ": ", r.error.c_str());
}

// Segment requests (any id) the reference server received.
inline size_t segment_requests(const segdl::server::Server &s, int64_t seg = -1) {
  size_t n = 0;
  for (const auto &r : s.requests())
    if (r.segment >= 0 && (seg < 0 || r.segment == seg)) n++;
  return n;
}

// A temporary folder, removed (with what it holds) at the end of the test.
class TempDir {
 public:
  TempDir() {
    GError *err = nullptr;
    char *p = g_dir_make_tmp("segdl-gw-XXXXXX", &err);
    fail_unless(p != nullptr, "tmp dir: %s", err ? err->message : "");
    path_ = p;
    g_free(p);
  }
  ~TempDir() {
    const std::string cmd = "rm -rf '" + path_ + "'";
    if (system(cmd.c_str()) != 0) g_warning("cannot remove %s", path_.c_str());
  }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

inline segdl::gateway::Options gw_options(const std::string &upstream, const std::string &cache) {
  segdl::gateway::Options o;
  o.upstream = upstream;
  o.cache_dir = cache;
  o.port = 0;
  o.retry_backoff_ms = 10;
  o.timeout_s = 10;
  return o;
}

inline std::unique_ptr<segdl::gateway::Gateway> start_gateway(const segdl::gateway::Options &o) {
  auto g = std::make_unique<segdl::gateway::Gateway>(o);
  std::string error;
  fail_unless(g->start(error), "gateway: %s", error.c_str());
  return g;
}

// The usual set-up: a reference server (`so`) holding `track` as `id`
// (none when it has no segment: the test adds its own), and a gateway in
// front of it (gw_options()) with a cache folder of its own. Members go in
// reverse: the gateway stops first, the folder goes last.
struct Rig {
  explicit Rig(const std::string &id, segdl::server::Track t = make_track(),
               const segdl::server::Options &so = segdl::server::Options())
      : track(std::move(t)), srv(start_server(so)) {
    if (!track.segments.empty()) srv->add_track(id, track);
    gw = start_gateway(gw_options(srv->base_url(), cache.path()));
  }
  TempDir cache;
  const segdl::server::Track track;
  std::unique_ptr<segdl::server::Server> srv;
  std::unique_ptr<segdl::gateway::Gateway> gw;
};

// An upstream whose segment answers are held until open() (status answers
// at once). Runs on its own thread and context; counts segment requests.
class GatedUpstream {
 public:
  // With `half_first`, held answers send their head and the first half of
  // the body at once, and the rest at open().
  GatedUpstream(std::string id, std::vector<Bytes> segments, bool half_first = false);
  ~GatedUpstream();
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void open();                                 // answers the held requests, and all later ones
  size_t segment_requests(int64_t seg) const;  // received so far
  bool wait_segment_requests(size_t total, int timeout_ms) const;
  // Later segment and whole-track answers (GET /stream?v=ID, the segments
  // end to end) carry "Content-Encoding: CODING" (empty = none).
  void set_coding(const std::string &coding);
  // Later segment answers are this status (with "Retry-After: 3" and an
  // empty body) instead of the segment; 0 = the segment again.
  void set_status(int status);

 private:
  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *query,
                         gpointer data) noexcept;
  void answer(SoupServerMessage *msg, int64_t seg);
  std::string id_;
  std::vector<Bytes> segments_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<int64_t, size_t> counts_;  // under mu_
  bool open_ = false;                 // server thread only
  bool half_first_ = false;
  std::string coding_;                                         // under mu_
  int status_ = 0;                                             // under mu_
  std::vector<std::pair<SoupServerMessage *, int64_t>> held_;  // server thread only
  int port_ = 0;
  GMainContext *ctx_ = nullptr;
  GMainLoop *loop_ = nullptr;
  SoupServer *soup_ = nullptr;
  std::thread thread_;
};

// A raw HTTP/1.1 client with a small receive buffer, reading only when told.
class RawClient {
 public:
  RawClient(int port, const std::string &path) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    fail_unless(fd_ >= 0);
    const int small = 4096;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fail_unless(connect(fd_, reinterpret_cast<struct sockaddr *>(&a), sizeof a) == 0);
    const std::string req =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    fail_unless(send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()));
  }
  ~RawClient() { close_now(); }
  // One read of what is there, waiting at most kWaitMs; empty at the end.
  std::string read_some() {
    struct pollfd p = {fd_, POLLIN, 0};
    fail_unless(poll(&p, 1, kWaitMs) == 1, "nothing to read in time");
    char buf[16384];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    fail_unless(n >= 0, "recv: %s", g_strerror(errno));
    return std::string(buf, size_t(n));
  }
  std::string read_all() {
    std::string all;
    for (std::string s = read_some(); !s.empty(); s = read_some()) all += s;
    return all;
  }
  // Everything until the end, which may be a reset (`*reset` then true).
  std::string read_to_end(bool *reset) {
    std::string all;
    *reset = false;
    for (;;) {
      struct pollfd p = {fd_, POLLIN, 0};
      fail_unless(poll(&p, 1, kWaitMs) == 1, "nothing to read in time");
      char buf[16384];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == ECONNRESET) *reset = true;
      fail_unless(n >= 0 || errno == ECONNRESET, "recv: %s", g_strerror(errno));
      if (n <= 0) return all;
      all.append(buf, size_t(n));
    }
  }
  void close_now() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Threads of this process that are not exiting: /proc/self/task lists a
// thread a little after pthread_join() returned (the kernel reaps it
// later), but from the start of its exit its flags carry PF_EXITING. So
// once something joined its threads (a listener's pipeline torn down:
// Counters::listeners fell, which the test waits for with wait_for()), this
// count has already dropped: no polling needed.
inline int live_thread_count() {
  constexpr unsigned long kPfExiting = 0x4;  // include/linux/sched.h
  int n = 0;
  GDir *d = g_dir_open("/proc/self/task", 0, nullptr);
  while (const char *tid = d ? g_dir_read_name(d) : nullptr) {
    g_autofree char *path = g_strdup_printf("/proc/self/task/%s/stat", tid);
    g_autofree char *stat = nullptr;
    if (!g_file_get_contents(path, &stat, nullptr, nullptr)) continue;  // gone meanwhile
    const char *after = strrchr(stat, ')');  // the name may hold anything
    if (!after) continue;
    g_auto(GStrv) f = g_strsplit(after + 2, " ", 8);  // state ppid pgrp session tty tpgid flags
    if (g_strv_length(f) >= 7 && !(g_ascii_strtoull(f[6], nullptr, 10) & kPfExiting)) n++;
  }
  if (d) g_dir_close(d);
  return n;
}

// Threads of this process now.
inline int thread_count() {
  int n = 0;
  GDir *d = g_dir_open("/proc/self/task", 0, nullptr);
  while (d && g_dir_read_name(d)) n++;
  if (d) g_dir_close(d);
  return n;
}

}  // namespace gwtest
