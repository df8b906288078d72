// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — upstream faults (segdl-server's fault injection) end in a
 * retry, the fallback or a clear JSON error, never in a half file in the
 * cache; whole tracks come from the upstream or the old backend.
 */
#include "gwtest.h"

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
  Reply r = get(seg_url(*gw, 2));
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == str(track.segments[2]));
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
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track(kId, track);
  auto gw = start_gateway(gw_options(srv->base_url(), cache.path()));
  Reply whole = get(gw->base_url() + "/stream?v=" + kId);
  fail_unless_equals_int(whole.status, 200);
  fail_unless(whole.body == str(track.full));
  assert_str_eq(whole.h("cache-control"), "no-store");
  Reply part = get(gw->base_url() + "/stream?v=" + kId, {{"Range", "bytes=1000-"}});
  fail_unless_equals_int(part.status, 206);
  fail_unless(part.body == str(track.full).substr(1000));
  assert_str_eq(part.h("content-range"), "bytes 1000-" + std::to_string(track.full.size() - 1) +
                                             "/" + std::to_string(track.full.size()));

  // The old backend holds a different encode of the track: its bytes show
  // where the answer came from.
  auto old = start_server();
  auto old_track = make_track();
  old_track.full = pattern(9, 12345);
  old->add_track(kId, old_track);
  srv->add_fault(fault("http500", -2, -1));
  auto o = gw_options(srv->base_url(), cache.path());
  o.fallback_upstream = old->base_url();
  auto gw2 = start_gateway(o);
  Reply fb = get(gw2->base_url() + "/stream?v=" + kId);
  fail_unless_equals_int(fb.status, 200);
  fail_unless(fb.body == str(old_track.full));
  assert_json_error(get(gw->base_url() + "/stream?v=" + kId), 502, "upstream_error");
  // Neither knows the id: 404.
  assert_json_error(get(gw2->base_url() + "/stream?v=AAAAAAAAAAA"), 404, "not_found");
  // The upstream down altogether: the old backend still answers.
  srv->stop();
  Reply down = get(gw2->base_url() + "/stream?v=" + kId);
  fail_unless_equals_int(down.status, 200);
  fail_unless(down.body == str(old_track.full));
}
GST_END_TEST;

// A continuous track held whole in the cache is served as one file from the
// cache (upstream stopped): length, ranges across segments, ETag, 304. A
// self-contained form (m4a) is not joined: it goes to the backends.
GST_START_TEST(test_joined_from_cache) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track(kId, track);
  auto m4a = make_track();
  m4a.mime_type = "audio/mp4";
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
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == all);
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
  Reply r = get(seg_url(*gw, 0));
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == str(track.segments[0]));
  fail_unless_equals_int(up.segment_requests(0), 2);
  up.set_coding("");
  Reply whole = get(gw->base_url() + "/stream?v=" + kId);
  fail_unless_equals_int(whole.status, 200);
  fail_unless(whole.body == str(track.full));
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
  return s;
}

GST_CHECK_MAIN(gateway_faults);
