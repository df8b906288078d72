// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — upstream faults (segdl-server's fault injection) end in a
 * retry, the fallback or a clear JSON error, never in a half file in the
 * cache; whole tracks come from the upstream or the old backend.
 */
#include "gwtest.h"

#include <glib/gstdio.h>

#include <unistd.h>

using namespace gwtest;

namespace {

const char *const kId = "faultyTrack";

segdl::server::Fault fault(const std::string &kind, int64_t segment, int count, double arg = 0) {
  segdl::server::Fault f;
  f.kind = kind;
  f.video_id = kId;
  f.segment = segment;
  f.count = count;
  f.arg = arg;
  return f;
}

std::string seg_url(const segdl::gateway::Gateway &g, int64_t n) {
  return g.base_url() + "/api/segments/" + kId + "/" + std::to_string(n);
}

// Names of the files of segment n anywhere in the cache (data, meta, temporary).
std::vector<std::string> segment_files(const std::string &root, int64_t n) {
  std::vector<std::string> out;
  const std::string tag = "seg_" + std::to_string(n) + ".";
  GDir *d = g_dir_open(root.c_str(), 0, nullptr);
  while (const char *track = d ? g_dir_read_name(d) : nullptr) {
    const std::string dir = root + "/" + track;
    GDir *t = g_dir_open(dir.c_str(), 0, nullptr);
    while (const char *f = t ? g_dir_read_name(t) : nullptr)
      if (std::string(f).find(tag) != std::string::npos) out.push_back(f);
    if (t) g_dir_close(t);
  }
  if (d) g_dir_close(d);
  return out;
}

// Upstream requests for segment `n` and their Range headers.
std::vector<std::string> ranges_of(const segdl::server::Server &s, int64_t n) {
  std::vector<std::string> out;
  for (const auto &r : s.requests())
    if (r.segment == n) out.push_back(r.range);
  return out;
}

// Bytes an upstream in trouble answers with, as a segment (audio/aac, 200).
Bytes bytes_of(const std::string &s) {
  return Bytes(s.begin(), s.end());
}
Bytes gzip_body() {
  Bytes b = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03};
  b.resize(120, 0);
  return b;
}
// An MP4 of `size` bytes whose moov box claims more: a file cut short.
Bytes cut_mp4(size_t size) {
  Bytes b = {0, 0, 0,   20,  'f', 't', 'y', 'p', 'M',  '4', 'A', ' ', 0,   0,
             0, 0, 'M', '4', 'A', ' ', 0,   0,   0x80, 0,   'm', 'o', 'o', 'v'};  // moov: 32 KiB
  b.resize(size, 0);
  return b;
}
// An MP4 of whole boxes with no audio in it (ftyp, free): passes the check,
// cannot be joined.
Bytes boxes_only(size_t size) {
  Bytes b = cut_mp4(size);
  const size_t rest = size - 20;
  const uint8_t free_box[8] = {uint8_t(rest >> 24),
                               uint8_t(rest >> 16),
                               uint8_t(rest >> 8),
                               uint8_t(rest),
                               'f',
                               'r',
                               'e',
                               'e'};
  std::copy(free_box, free_box + 8, b.begin() + 20);
  return b;
}
// Two MPEG-1 layer III frames (128 kbit/s, 44.1 kHz: 417 bytes each).
Bytes mp3_frames() {
  Bytes b(834, 0);
  for (size_t at : {size_t(0), size_t(417)}) {
    b[at] = 0xff;
    b[at + 1] = 0xfb;
    b[at + 2] = 0x90;
    b[at + 3] = 0x64;
  }
  return b;
}

// A continuous track of three 2.5 MB segments (ADTS), held whole in a new
// gateway's cache (bound: max_client_queue_bytes); the upstream keeps running.
// Segment 2 starts past 5 MB, more than the sockets of a client that does
// not read take in (net.ipv4.tcp_wmem's 4 MiB at most): the gateway pauses
// for the client before it opens segment 2.
constexpr size_t kSegBytes = 2500000, kTrackBytes = 3 * kSegBytes;
struct CachedTrack {
  TempDir cache;
  std::unique_ptr<segdl::server::Server> srv = start_server();
  segdl::server::Track track;
  std::unique_ptr<segdl::gateway::Gateway> gw;
  explicit CachedTrack(int64_t bound) {
    for (int k = 0; k < 3; k++) track.segments.push_back(pattern(k, kSegBytes));
    for (const Bytes &b : track.segments) track.full.insert(track.full.end(), b.begin(), b.end());
    track.mime_type = "audio/aac";
    srv->add_track(kId, track);
    auto o = gw_options(srv->base_url(), cache.path());
    o.max_client_queue_bytes = bound;
    gw = start_gateway(o);
    fail_unless_equals_int(get(gw->base_url() + "/status?v=" + kId).status, 200);
    for (int n = 0; n < 3; n++) fail_unless_equals_int(get(seg_url(*gw, n)).status, 200);
    fail_unless(gw->wait_idle(kWaitMs));
  }
  std::string url() const { return std::string("/stream?v=") + kId; }
  // The cache file of segment n.
  std::string file(int64_t n) const {
    GDir *d = g_dir_open(cache.path().c_str(), 0, nullptr);
    std::string out;
    while (const char *t = d ? g_dir_read_name(d) : nullptr)
      if (t[0] != '.') out = cache.path() + "/" + t + "/seg_" + std::to_string(n) + ".bin";
    if (d) g_dir_close(d);
    fail_unless(g_file_test(out.c_str(), G_FILE_TEST_IS_REGULAR), "no %s", out.c_str());
    return out;
  }
};

bool paused(const segdl::gateway::Counters &k) {
  return k.producers_paused == 1;
}

// Overwrites `len` bytes of `path` at `at` with `byte` (same size).
void scribble(const std::string &path, size_t at, size_t len, char byte) {
  g_autofree char *data = nullptr;
  gsize size = 0;
  fail_unless(g_file_get_contents(path.c_str(), &data, &size, nullptr));
  fail_unless(at + len <= size);
  memset(data + at, byte, len);
  fail_unless(g_file_set_contents(path.c_str(), data, gssize(size), nullptr));
}

std::string file_text(const std::string &path) {
  g_autofree char *data = nullptr;
  gsize size = 0;
  fail_unless(g_file_get_contents(path.c_str(), &data, &size, nullptr), "no %s", path.c_str());
  return std::string(data, size);
}

// The one file of the (only) track folder under `root` whose name starts
// with `prefix` and ends with `suffix`; empty when none.
std::string track_file(const std::string &root, const std::string &prefix,
                       const std::string &suffix) {
  std::string out;
  GDir *d = g_dir_open(root.c_str(), 0, nullptr);
  while (const char *t = d ? g_dir_read_name(d) : nullptr) {
    const std::string dir = root + "/" + t;
    GDir *f = g_dir_open(dir.c_str(), 0, nullptr);
    while (const char *name = f ? g_dir_read_name(f) : nullptr)
      if (g_str_has_prefix(name, prefix.c_str()) && g_str_has_suffix(name, suffix.c_str()))
        out = dir + "/" + name;
    if (f) g_dir_close(f);
  }
  if (d) g_dir_close(d);
  return out;
}

}  // namespace

// A transient fault once: retried, the client gets the whole segment, and a
// body broken mid-way resumes with a Range request from the bytes held.
GST_START_TEST(test_retry) {
  struct Case {
    const char *kind;
    bool resumes;
  } cases[] = {{"http500", false}, {"reset", true}, {"truncate", true}};
  for (const Case &c : cases) {
    TempDir cache;
    auto srv = start_server();
    auto track = make_track();
    srv->add_track(kId, track);
    srv->add_fault(fault(c.kind, 1, 1));
    auto gw = start_gateway(gw_options(srv->base_url(), cache.path()));
    Reply r = get(seg_url(*gw, 1));
    fail_unless_equals_int(r.status, 200);
    fail_unless(r.body == str(track.segments[1]), "%s: wrong body (%zu bytes)", c.kind,
                r.body.size());
    fail_unless(srv->wait_idle(kWaitMs));
    const std::vector<std::string> ranges = ranges_of(*srv, 1);
    fail_unless_equals_int(ranges.size(), 2);
    fail_unless(ranges[0].empty());
    if (c.resumes)
      assert_str_eq(ranges[1], "bytes=15000-");  // half of 30000 was sent before the fault
    fail_unless(gw->wait_idle(kWaitMs));
    fail_unless_equals_int(segment_files(cache.path(), 1).size(), 2);  // .bin and .meta
    Reply again = get(seg_url(*gw, 1));
    fail_unless(again.body == str(track.segments[1]));
    fail_unless_equals_int(ranges_of(*srv, 1).size(), 2);
  }
}
GST_END_TEST;

// A stalled body times out and resumes.
GST_START_TEST(test_stall) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track(kId, track);
  srv->add_fault(fault("stall", 2, 1, 4));
  auto o = gw_options(srv->base_url(), cache.path());
  o.timeout_s = 1;
  auto gw = start_gateway(o);
  assert_body(get(seg_url(*gw, 2)), str(track.segments[2]));
  fail_unless(gw->wait_idle(kWaitMs));
  fail_unless_equals_int(segment_files(cache.path(), 2).size(), 2);
}
GST_END_TEST;

// Faults that last: a JSON error before any byte, a cut connection after
// some, and in both cases nothing of the segment in the cache.
GST_START_TEST(test_lasting_faults) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track(kId, track);
  srv->add_fault(fault("http500", 0, -1));
  srv->add_fault(fault("reset", 1, -1));
  srv->add_fault(fault("notready", 2, -1, 7));
  auto o = gw_options(srv->base_url(), cache.path());
  o.max_retries = 2;
  auto gw = start_gateway(o);

  Reply e = get(seg_url(*gw, 0));
  assert_json_error(e, 502, "upstream_error");
  fail_unless(srv->wait_idle(kWaitMs));
  fail_unless_equals_int(ranges_of(*srv, 0).size(), 3);  // 1 + max_retries

  Reply cut = get(seg_url(*gw, 1));
  fail_unless(!cut.error.empty() || cut.body.size() < track.segments[1].size(),
              "a broken segment must not look whole (status %d, %zu bytes)", cut.status,
              cut.body.size());
  fail_unless(cut.body != str(track.segments[1]));

  Reply nr = get(seg_url(*gw, 2));
  assert_json_error(nr, 404, "not_found");
  assert_str_eq(nr.h("retry-after"), "7");

  fail_unless(gw->wait_idle(kWaitMs));
  for (int n = 0; n < 3; n++)
    fail_unless(segment_files(cache.path(), n).empty(), "segment %d left files", n);
  Reply st = get(gw->base_url() + "/api/segments/status/" + kId);
  Json j(st.body);
  JsonObject *remote = json_object_get_object_member(j.obj(), "remote");
  fail_unless(Json::ints(remote, "failed") == std::vector<int64_t>({0, 1, 2}));
  fail_unless(j.ints("local").empty());
}
GST_END_TEST;

// Whole tracks: the upstream's full-track endpoint; when it fails, the old
// backend (--fallback-upstream); without one, a JSON error.
GST_START_TEST(test_full_and_fallback) {
  Rig rig(kId);
  Reply whole = get(rig.gw->base_url() + "/stream?v=" + kId);
  assert_body(whole, str(rig.track.full));
  assert_str_eq(whole.h("cache-control"), "no-store");
  Reply part = get(rig.gw->base_url() + "/stream?v=" + kId, {{"Range", "bytes=1000-"}});
  fail_unless_equals_int(part.status, 206);
  fail_unless(part.body == str(rig.track.full).substr(1000));
  assert_str_eq(part.h("content-range"), "bytes 1000-" + std::to_string(rig.track.full.size() - 1) +
                                             "/" + std::to_string(rig.track.full.size()));

  // The old backend holds a different encode of the track: its bytes show
  // where the answer came from.
  auto old = start_server();
  auto old_track = make_track();
  old_track.full = pattern(9, 12345);
  old->add_track(kId, old_track);
  rig.srv->add_fault(fault("http500", -2, -1));
  auto o = gw_options(rig.srv->base_url(), rig.cache.path());
  o.fallback_upstream = old->base_url();
  auto gw2 = start_gateway(o);
  assert_body(get(gw2->base_url() + "/stream?v=" + kId), str(old_track.full));
  assert_json_error(get(rig.gw->base_url() + "/stream?v=" + kId), 502, "upstream_error");
  // Neither knows the id: 404.
  assert_json_error(get(gw2->base_url() + "/stream?v=AAAAAAAAAAA"), 404, "not_found");
  // The upstream down altogether: the old backend still answers.
  rig.srv->stop();
  assert_body(get(gw2->base_url() + "/stream?v=" + kId), str(old_track.full));
}
GST_END_TEST;

// A continuous track held whole in the cache is served as one file from the
// cache (upstream stopped): length, ranges across segments, ETag, 304. A
// self-contained form (m4a) whose segments cannot be joined (MP4 boxes but
// no audio in them) goes to the backends.
GST_START_TEST(test_joined_from_cache) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track(kId, track);
  auto m4a = make_track();
  m4a.mime_type = "audio/mp4";
  for (Bytes &b : m4a.segments) b = boxes_only(b.size());
  srv->add_track("m4aTrack000", m4a);
  auto gw = start_gateway(gw_options(srv->base_url(), cache.path()));
  for (const char *id : {kId, "m4aTrack000"}) {
    fail_unless_equals_int(get(gw->base_url() + "/status?v=" + id).status, 200);
    for (int n = 0; n < 3; n++)
      fail_unless_equals_int(
          get(gw->base_url() + "/stream?v=" + id + "&segment=" + std::to_string(n)).status, 200);
  }
  fail_unless(gw->wait_idle(kWaitMs));
  srv->stop();
  const std::string url = gw->base_url() + "/stream?v=" + kId;
  const std::string all = str(track.full);
  Reply r = get(url);
  assert_body(r, all);
  assert_str_eq(r.h("content-length"), std::to_string(all.size()));
  assert_str_eq(r.h("cache-control"), "public, max-age=31536000, immutable");
  assert_str_eq(r.h("content-type"), "audio/aac");
  fail_unless(r.h("etag").size() == 34);
  Reply span = get(url, {{"Range", "bytes=19990-50009"}});  // the end of 0, all of 1, 2's start
  fail_unless_equals_int(span.status, 206);
  fail_unless(span.body == all.substr(19990, 30020));
  assert_str_eq(span.h("content-range"), "bytes 19990-50009/90000");
  Reply tail = get(url, {{"Range", "bytes=-5"}});
  fail_unless(tail.body == all.substr(all.size() - 5));
  assert_json_error(get(url, {{"Range", "bytes=90000-"}}), 416, "range_not_satisfiable");
  fail_unless_equals_int(get(url, {{"If-None-Match", r.h("etag")}}).status, 304);
  assert_json_error(get(gw->base_url() + "/stream?v=m4aTrack000"), 502, "upstream_unreachable");
}
GST_END_TEST;

// An upstream answer in a content coding the gateway never asks for is
// refused (502 upstream_bad_encoding, not retried) and never cached, for a
// segment and a whole track; "identity" and plain answers are taken.
GST_START_TEST(test_unasked_coding) {
  TempDir cache;
  auto track = make_track(2);
  GatedUpstream up(kId, track.segments);
  up.open();
  up.set_coding("gzip");
  auto gw = start_gateway(gw_options(up.base_url(), cache.path()));
  assert_json_error(get(seg_url(*gw, 0)), 502, "upstream_bad_encoding");
  fail_unless_equals_int(up.segment_requests(0), 1);
  fail_unless(segment_files(cache.path(), 0).empty());
  assert_json_error(get(gw->base_url() + "/stream?v=" + kId), 502, "upstream_bad_encoding");
  up.set_coding("identity");
  assert_body(get(seg_url(*gw, 0)), str(track.segments[0]));
  fail_unless_equals_int(up.segment_requests(0), 2);
  up.set_coding("");
  assert_body(get(gw->base_url() + "/stream?v=" + kId), str(track.full));
}
GST_END_TEST;

// A whole-track client that does not read: once max_client_queue_bytes wait
// for it, the upstream transfer pauses, and resumes with a Range request as
// it reads; it gets every byte, and never more than the bound (plus one
// upstream chunk) is held for it.
GST_START_TEST(test_slow_whole_track) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  track.full = pattern(5, 3000000);
  srv->add_track(kId, track);
  auto o = gw_options(srv->base_url(), cache.path());
  o.max_client_queue_bytes = 65536;
  auto gw = start_gateway(o);
  RawClient c(gw->port(), std::string("/stream?v=") + kId);
  fail_unless(
      gw->wait_for([](const segdl::gateway::Counters &k) { return k.producers_paused == 1; },
                   kWaitMs),
      "the transfer did not pause for a client that does not read");
  const std::string all = c.read_all();
  const size_t head = all.find("\r\n\r\n");
  fail_unless(head != std::string::npos && g_str_has_prefix(all.c_str(), "HTTP/1.1 200"));
  fail_unless(all.substr(head + 4) == str(track.full), "the body differs");
  const int64_t high = gw->counters().max_client_queue;
  fail_unless(high > 65536 && high <= 2 * 65536, "%" G_GINT64_FORMAT " bytes held", high);
  size_t resumed = 0;
  for (const auto &r : srv->requests())
    resumed += r.segment < 0 && r.path == "/stream" && g_str_has_prefix(r.range.c_str(), "bytes=");
  fail_unless(resumed > 0, "no resumed request upstream");
  fail_unless_equals_int(gw->counters().producers_paused, 0);
}
GST_END_TEST;

// Bytes that are not audio (an HTML page, gzip, an empty body, an MP4 cut
// short, MP3 in an ADTS track) are refused: 502 upstream_not_audio, not
// retried, nothing of them in the cache; the next request asks again.
GST_START_TEST(test_not_audio) {
  TempDir cache;
  const std::vector<Bytes> segs = {
      pattern(0, 20000),
      bytes_of("<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"),
      gzip_body(),
      Bytes(),
      cut_mp4(208),
      mp3_frames()};
  GatedUpstream up(kId, segs);
  up.open();
  auto gw = start_gateway(gw_options(up.base_url(), cache.path()));
  assert_body(get(seg_url(*gw, 0)), str(segs[0]));
  for (int64_t n = 1; n < 6; n++) {
    Reply r = get(seg_url(*gw, n));
    assert_json_error(r, 502, "upstream_not_audio");
    fail_unless(r.body.find("segment " + std::to_string(n) + " of " + kId + " is not audio") !=
                    std::string::npos,
                "%s", r.body.c_str());
    fail_unless_equals_int(up.segment_requests(n), 1);
    fail_unless(segment_files(cache.path(), n).empty(), "segment %d left files", int(n));
  }
  assert_json_error(get(seg_url(*gw, 1)), 502, "upstream_not_audio");
  fail_unless_equals_int(up.segment_requests(1), 2);
  fail_unless(gw->wait_idle(kWaitMs));
  Json st(get(gw->base_url() + "/api/segments/status/" + kId).body);
  fail_unless(Json::ints(json_object_get_object_member(st.obj(), "remote"), "failed") ==
              std::vector<int64_t>({1, 2, 3, 4, 5}));
}
GST_END_TEST;

// Two clients sharing a fill whose bytes are refused: at the first bytes,
// both get the JSON error; at the end (an MP4 cut short, whose start both
// already streamed), both are cut before the body's last byte. One upstream
// request each time, nothing cached.
GST_START_TEST(test_not_audio_shared) {
  for (const bool at_end : {false, true}) {
    TempDir cache;
    const Bytes bad = at_end ? cut_mp4(20000) : bytes_of(std::string(5000, '<'));
    GatedUpstream up(kId, {bad}, at_end);
    auto gw = start_gateway(gw_options(up.base_url(), cache.path()));
    Reply a, b;
    std::thread ta([&] { a = get(seg_url(*gw, 0)); });
    fail_unless(up.wait_segment_requests(1, kWaitMs));
    std::thread tb([&] { b = get(seg_url(*gw, 0)); });
    fail_unless(gw->wait_for([](const segdl::gateway::Counters &c) { return c.joined_fills >= 1; },
                             kWaitMs));
    up.open();
    ta.join();
    tb.join();
    for (const Reply *r : {&a, &b}) {
      if (at_end) {
        fail_unless(!r->error.empty(), "a cut MP4 ended as a whole answer (%d)", r->status);
        fail_unless(r->body.size() < bad.size());
      } else {
        assert_json_error(*r, 502, "upstream_not_audio");
      }
    }
    fail_unless_equals_int(up.segment_requests(0), 1);
    fail_unless(gw->wait_idle(kWaitMs));
    fail_unless(segment_files(cache.path(), 0).empty());
  }
}
GST_END_TEST;

// A whole continuous track from the cache is read from the segment files in
// chunks, as the client takes them: a client that does not read pauses the
// reading with max_client_queue_bytes held, and still gets every byte.
GST_START_TEST(test_joined_in_chunks) {
  CachedTrack t(16384);
  const uint64_t reads = t.gw->counters().file_reads;
  RawClient c(t.gw->port(), t.url());
  fail_unless(t.gw->wait_for(paused, kWaitMs), "the reading did not pause for the client");
  const std::string all = c.read_all();
  const size_t head = all.find("\r\n\r\n");
  fail_unless(head != std::string::npos && g_str_has_prefix(all.c_str(), "HTTP/1.1 200"));
  fail_unless(all.find("Content-Length: 7500000\r\n") < head, "%s", all.substr(0, head).c_str());
  fail_unless(all.substr(head + 4) == str(t.track.full), "the body differs");
  const segdl::gateway::Counters k = t.gw->counters();
  fail_unless(k.max_client_queue > 0 && k.max_client_queue <= 16384,
              "%" G_GINT64_FORMAT " bytes held", k.max_client_queue);
  fail_unless(k.file_reads - reads >= kTrackBytes / 16384, "%" G_GUINT64_FORMAT " reads",
              k.file_reads - reads);
  fail_unless_equals_int(k.producers_paused, 0);
  Reply part = get(t.gw->base_url() + t.url(), {{"Range", "bytes=2499990-5000009"}});
  fail_unless_equals_int(part.status, 206);
  fail_unless(part.body == str(t.track.full).substr(2499990, 2500020));
  Reply head_only = request("HEAD", t.gw->base_url() + t.url());
  fail_unless_equals_int(head_only.status, 200);
  assert_str_eq(head_only.h("content-length"), "7500000");
  fail_unless(head_only.body.empty());
}
GST_END_TEST;

// A segment file cut short (truncated by another program) or changed while
// a client reads the track: the client's answer is cut (a reset before
// Content-Length bytes; what it got before is the track's), never a crash
// nor a whole-looking body; the next request finds the segment changed
// before answering (it leaves the cache) and fetches the track again.
GST_START_TEST(test_joined_file_changes) {
  for (const bool truncate_it : {true, false}) {
    CachedTrack t(16384);
    RawClient c(t.gw->port(), t.url());
    fail_unless(t.gw->wait_for(paused, kWaitMs));
    const std::string victim = t.file(2);
    if (truncate_it) {
      fail_unless(truncate(victim.c_str(), 1000) == 0);
    } else {
      Bytes other = pattern(7, kSegBytes);
      fail_unless(g_file_set_contents(victim.c_str(), reinterpret_cast<const char *>(other.data()),
                                      gssize(other.size()), nullptr));
    }
    bool reset = false;
    const std::string all = c.read_to_end(&reset);
    const size_t head = all.find("\r\n\r\n");
    fail_unless(head != std::string::npos && g_str_has_prefix(all.c_str(), "HTTP/1.1 200"));
    const std::string body = all.substr(head + 4);
    fail_unless(reset, "the answer was not cut (%zu bytes)", body.size());
    fail_unless(body.size() < kTrackBytes, "%zu bytes", body.size());
    const std::string good = str(t.track.full).substr(0, (truncate_it ? 3 : 2) * kSegBytes);
    fail_unless(body.compare(0, std::min(body.size(), good.size()), good, 0,
                             std::min(body.size(), good.size())) == 0,
                "the bytes before the change differ");
    // The next request checks segment 2 before answering: not whole in the
    // cache now (cut short, or its SHA-256 differs: removed), so the track
    // comes from the upstream.
    assert_body(get(t.gw->base_url() + t.url()), str(t.track.full));
    if (!truncate_it) fail_unless(!g_file_test(victim.c_str(), G_FILE_TEST_EXISTS));
  }
}
GST_END_TEST;

// A cached segment is checked against its recorded SHA-256 before the first
// byte of any answer (a Range, a HEAD as much as a whole GET), once per file
// identity: the same file again is not hashed again. A file changed on disk
// (same size) is never served in part: it leaves the cache and the segment
// comes from the upstream again; with the upstream down, a JSON error.
GST_START_TEST(test_cached_range_checked) {
  Rig rig(kId);
  const std::string s1 = str(rig.track.segments[1]);  // 30000 bytes
  fail_unless_equals_int(get(seg_url(*rig.gw, 1)).status, 200);
  fail_unless(rig.gw->wait_idle(kWaitMs));
  fail_unless_equals_int(rig.gw->counters().file_checks, 0);
  Reply r = get(seg_url(*rig.gw, 1), {{"Range", "bytes=100-199"}});
  fail_unless_equals_int(r.status, 206);
  fail_unless(r.body == s1.substr(100, 100));
  fail_unless_equals_int(rig.gw->counters().file_checks, 1);
  fail_unless(get(seg_url(*rig.gw, 1)).body == s1);
  fail_unless_equals_int(request("HEAD", seg_url(*rig.gw, 1)).status, 200);
  fail_unless_equals_int(rig.gw->counters().file_checks, 1);  // remembered
  fail_unless_equals_int(rig.gw->counters().cache_hits, 3);

  const std::string file = track_file(rig.cache.path(), "seg_1.", ".bin");
  scribble(file, 100, 100, 'X');
  Reply again = get(seg_url(*rig.gw, 1), {{"Range", "bytes=100-199"}});
  fail_unless_equals_int(again.status, 206);
  fail_unless(again.body == s1.substr(100, 100), "changed bytes were served");
  fail_unless_equals_int(rig.gw->counters().file_checks, 2);
  fail_unless_equals_int(ranges_of(*rig.srv, 1).size(), 2);  // fetched again
  fail_unless(rig.gw->wait_idle(kWaitMs));
  fail_unless(file_text(file) == s1, "the cache holds the segment again");

  scribble(file, 0, 10, 'Y');
  rig.srv->stop();
  assert_json_error(get(seg_url(*rig.gw, 1), {{"Range", "bytes=-10"}}), 502,
                    "upstream_unreachable");
  fail_unless(!g_file_test(file.c_str(), G_FILE_TEST_EXISTS));
  fail_unless_equals_int(rig.gw->counters().cache_hits, 3);
}
GST_END_TEST;

// A single cached segment is read from its file in chunks as the client
// takes it, like a whole track: a client that does not read pauses the
// reading with at most max_client_queue_bytes held, and gets every byte.
GST_START_TEST(test_segment_in_chunks) {
  CachedTrack t(16384);
  const uint64_t reads = t.gw->counters().file_reads;
  RawClient c(t.gw->port(), std::string("/api/segments/") + kId + "/1");
  fail_unless(t.gw->wait_for(paused, kWaitMs), "the reading did not pause for the client");
  const std::string all = c.read_all();
  const size_t head = all.find("\r\n\r\n");
  fail_unless(head != std::string::npos && g_str_has_prefix(all.c_str(), "HTTP/1.1 200"));
  fail_unless(all.find("Content-Length: 2500000\r\n") < head, "%s", all.substr(0, head).c_str());
  fail_unless(all.substr(head + 4) == str(t.track.segments[1]), "the body differs");
  const segdl::gateway::Counters k = t.gw->counters();
  fail_unless(k.max_client_queue > 0 && k.max_client_queue <= 16384,
              "%" G_GINT64_FORMAT " bytes held", k.max_client_queue);
  fail_unless(k.file_reads - reads >= kSegBytes / 16384, "%" G_GUINT64_FORMAT " reads",
              k.file_reads - reads);
}
GST_END_TEST;

// A whole continuous track from the cache whose segment changed on disk
// (same size) is never served from it, in part or whole: the segment leaves
// the cache and the track comes from the upstream's full-track endpoint.
GST_START_TEST(test_joined_range_checked) {
  CachedTrack t(1024 * 1024);
  const std::string victim = t.file(1);
  fail_unless_equals_int(get(t.gw->base_url() + t.url(), {{"Range", "bytes=0-9"}}).status, 206);
  const uint64_t full = t.gw->counters().upstream_full;
  scribble(victim, kSegBytes / 2, 10, 'Z');
  Reply r =
      get(t.gw->base_url() + t.url(), {{"Range", "bytes=" + std::to_string(kSegBytes) + "-"}});
  fail_unless_equals_int(r.status, 206);
  fail_unless(r.body == str(t.track.full).substr(kSegBytes), "changed bytes were served");
  fail_unless_equals_int(t.gw->counters().upstream_full, full + 1);
  fail_unless(!g_file_test(victim.c_str(), G_FILE_TEST_EXISTS));
}
GST_END_TEST;

// After a restart the gateway knows the track's form from its cached
// segment 0 (verified first): a later segment of another form is refused.
GST_START_TEST(test_form_after_restart) {
  TempDir cache;
  const std::vector<Bytes> segs = {pattern(0, 20000), mp3_frames(), pattern(2, 20000)};
  GatedUpstream up(kId, segs);
  up.open();
  {
    auto before = start_gateway(gw_options(up.base_url(), cache.path()));
    fail_unless_equals_int(get(seg_url(*before, 0)).status, 200);
    fail_unless(before->wait_idle(kWaitMs));
  }
  auto gw = start_gateway(gw_options(up.base_url(), cache.path()));
  Reply r = get(seg_url(*gw, 1));
  assert_json_error(r, 502, "upstream_not_audio");
  fail_unless(r.body.find("in a track whose segment 0 is") != std::string::npos, "%s",
              r.body.c_str());
  fail_unless_equals_int(gw->counters().file_checks, 1);  // segment 0, hashed once
  assert_body(get(seg_url(*gw, 2)), str(segs[2]));
  fail_unless(segment_files(cache.path(), 1).empty());
}
GST_END_TEST;

// A joined file (a complete m4a track as one file) is written with a record
// of its size and SHA-256 beside it (hashed once, when written), and checked
// like a segment before any answer: a file changed on disk (same size) is
// never served, in part or whole, but joined again; a file without its
// record is joined again too.
GST_START_TEST(test_joined_file_checked) {
  TempDir dir;
  const std::string folder = dir.path() + "/root/" + kId;
  fail_unless_equals_int(g_mkdir_with_parents(folder.c_str(), 0755), 0);
  const std::string cmd =
      "ffmpeg -nostdin -v error -f lavfi -i sine=frequency=440:duration=6 -c:a aac -f segment "
      "-segment_time 2 -segment_format mp4 '" +
      folder + "/seg_%d.m4a'";
  fail_unless_equals_int(system(cmd.c_str()), 0);
  auto srv = start_server();
  std::string error;
  fail_unless(srv->load_dir(dir.path() + "/root", error), "%s", error.c_str());
  const std::string cache = dir.path() + "/cache";
  auto gw = start_gateway(gw_options(srv->base_url(), cache));
  Json st(get(gw->base_url() + "/status?v=" + kId).body);
  const int64_t total = st.i("totalSegments");
  fail_unless(total >= 3, "%d segments", int(total));
  for (int64_t n = 0; n < total; n++) fail_unless_equals_int(get(seg_url(*gw, n)).status, 200);
  fail_unless(gw->wait_idle(kWaitMs));

  const std::string url = gw->base_url() + "/stream?v=" + kId;
  Reply whole = get(url);
  fail_unless_equals_int(whole.status, 200);
  assert_str_eq(whole.h("content-type"), "audio/mp4");
  const std::string joined = track_file(cache, "joined-", ".m4a");
  fail_unless(!joined.empty());
  fail_unless(file_text(joined) == whole.body);
  auto sha_of = [](const std::string &body) -> std::string {
    g_autofree char *sha = g_compute_checksum_for_data(
        G_CHECKSUM_SHA256, reinterpret_cast<const guchar *>(body.data()), body.size());
    return sha;
  };
  auto record_of = [&](const std::string &body) {
    return "size=" + std::to_string(body.size()) + "\nsha256=" + sha_of(body) + "\n";
  };
  assert_str_eq(file_text(joined + ".meta"), record_of(whole.body));
  assert_str_eq(whole.h("etag"), "\"" + sha_of(whole.body).substr(0, 32) + "\"");
  const uint64_t checks = gw->counters().file_checks;
  Reply part = get(url, {{"Range", "bytes=100-199"}});
  fail_unless_equals_int(part.status, 206);
  fail_unless(part.body == whole.body.substr(100, 100));
  fail_unless_equals_int(gw->counters().file_checks, checks);  // hashed when written

  scribble(joined, 100, 100, '\0');
  Reply again = get(url, {{"Range", "bytes=100-199"}});
  fail_unless_equals_int(again.status, 206);
  const std::string rejoined = file_text(joined);
  fail_unless(again.body != std::string(100, '\0'), "changed bytes were served");
  fail_unless(again.body == rejoined.substr(100, 100));
  assert_str_eq(file_text(joined + ".meta"), record_of(rejoined));
  // Another join, other bytes (mp4mux writes the time), another ETag.
  fail_unless(rejoined == whole.body || again.h("etag") != whole.h("etag"));

  fail_unless_equals_int(g_unlink((joined + ".meta").c_str()), 0);
  Reply third = get(url);
  assert_body(third, file_text(joined));
  assert_str_eq(file_text(joined + ".meta"), record_of(third.body));
  fail_unless_equals_int(gw->counters().upstream_full, 0);
}
GST_END_TEST;

// The status codes of upstream answers that are not the segment: 425 and
// 503 are 503 not_ready with the upstream's Retry-After (not retried); a
// segment above max_segment_bytes is 502 segment_too_large; a status
// document that does not parse is 502 upstream_bad_status. Nothing cached.
GST_START_TEST(test_upstream_statuses) {
  TempDir cache;
  auto track = make_track(2);
  GatedUpstream up(kId, track.segments);
  up.open();
  auto o = gw_options(up.base_url(), cache.path());
  o.max_segment_bytes = 25000;
  auto gw = start_gateway(o);
  for (int status : {503, 425}) {
    up.set_status(status);
    Reply r = get(seg_url(*gw, 0));
    assert_json_error(r, 503, "not_ready");
    assert_str_eq(r.h("retry-after"), "3");
  }
  fail_unless_equals_int(up.segment_requests(0), 2);  // once each: not retried
  up.set_status(0);
  assert_json_error(get(seg_url(*gw, 1)), 502, "segment_too_large");  // 30000 bytes
  fail_unless_equals_int(get(seg_url(*gw, 0)).status, 200);           // 20000 bytes
  fail_unless(gw->wait_idle(kWaitMs));
  fail_unless(segment_files(cache.path(), 1).empty());

  auto srv = start_server();
  srv->add_track(kId, make_track());
  srv->add_fault(fault("badjson", -1, -1));
  auto gw2 = start_gateway(gw_options(srv->base_url(), cache.path() + "/2"));
  assert_json_error(get(gw2->base_url() + "/status?v=" + kId), 502, "upstream_bad_status");
  Json st(get(gw2->base_url() + "/api/segments/status/" + kId).body);
  fail_unless_equals_int(json_object_get_size(json_object_get_object_member(st.obj(), "remote")),
                         0);
}
GST_END_TEST;

static Suite *gateway_faults_suite() {
  Suite *s = suite_create("gateway-faults");
  TCase *tc = tcase_create("faults");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_retry);
  tcase_add_test(tc, test_stall);
  tcase_add_test(tc, test_lasting_faults);
  tcase_add_test(tc, test_full_and_fallback);
  tcase_add_test(tc, test_joined_from_cache);
  tcase_add_test(tc, test_unasked_coding);
  tcase_add_test(tc, test_slow_whole_track);
  tcase_add_test(tc, test_not_audio);
  tcase_add_test(tc, test_not_audio_shared);
  tcase_add_test(tc, test_joined_in_chunks);
  tcase_add_test(tc, test_joined_file_changes);
  tcase_add_test(tc, test_cached_range_checked);
  tcase_add_test(tc, test_segment_in_chunks);
  tcase_add_test(tc, test_joined_range_checked);
  tcase_add_test(tc, test_form_after_restart);
  tcase_add_test(tc, test_joined_file_checked);
  tcase_add_test(tc, test_upstream_statuses);
  return s;
}

GST_CHECK_MAIN(gateway_faults);
