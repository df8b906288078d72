// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the app's API and the plain protocol against the reference
 * server (tools/server) and a gated upstream: cache first, deduplicated
 * transfers, Range, conditional GET, ids, status, preload, the cache
 * endpoints and the admin token. The gateway runs in-process on its own
 * thread; the client is a libsoup session on the test thread. No sleeps:
 * waits are bounded (session timeouts, Gateway::wait_for/wait_idle).
 */
#include "gwtest.h"

#include <glib/gstdio.h>

#include <sys/stat.h>
#include <utime.h>

using namespace gwtest;
using segdl::gateway::Counters;

namespace {

const char *const kId = "dQw4w9WgXcQ";  // 11 characters, as the app's ids

std::string seg_url(const segdl::gateway::Gateway &g, int64_t n, const std::string &id = kId) {
  return g.base_url() + "/api/segments/" + id + "/" + std::to_string(n);
}

// Every regular file under `dir`, recursively (relative names).
void list_files(const std::string &dir, const std::string &prefix, std::vector<std::string> &out) {
  GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
  if (!d) return;
  while (const char *name = g_dir_read_name(d)) {
    const std::string path = dir + "/" + name;
    if (g_file_test(path.c_str(), G_FILE_TEST_IS_DIR))
      list_files(path, prefix + name + "/", out);
    else
      out.push_back(prefix + name);
  }
  g_dir_close(d);
}

}  // namespace

// A miss is fetched once and streamed; the second request is a cache hit
// with validators; with the upstream stopped, cached segments still play.
GST_START_TEST(test_cache_first) {
  Rig rig(kId);

  Reply a = get(seg_url(*rig.gw, 0));
  assert_body(a, str(rig.track.segments[0]));
  assert_str_eq(a.h("content-type"), "audio/aac");
  assert_str_eq(a.h("cache-control"), "public, max-age=31536000, immutable");
  fail_unless(rig.srv->wait_idle(kWaitMs));
  fail_unless(rig.gw->wait_idle(kWaitMs));
  fail_unless_equals_int(segment_requests(*rig.srv), 1);

  Reply b = get(seg_url(*rig.gw, 0));
  assert_body(b, str(rig.track.segments[0]));
  fail_unless(b.h("etag").size() == 34 && b.h("etag")[0] == '"', "etag %s", b.h("etag").c_str());
  fail_unless(!b.h("last-modified").empty());
  assert_str_eq(b.h("cache-control"), "public, max-age=31536000, immutable");
  assert_str_eq(b.h("accept-ranges"), "bytes");
  fail_unless_equals_int(segment_requests(*rig.srv), 1);
  fail_unless_equals_int(rig.gw->counters().cache_hits, 1);

  // The plain protocol serves the same bytes from the same cache.
  Reply c = get(rig.gw->base_url() + "/stream?v=" + kId + "&segment=0");
  assert_body(c, str(rig.track.segments[0]));
  assert_str_eq(c.h("etag"), b.h("etag"));

  rig.srv->stop();
  assert_body(get(seg_url(*rig.gw, 0)), str(rig.track.segments[0]));
  // Not cached and no upstream: a clear JSON error, not cacheable.
  assert_json_error(get(seg_url(*rig.gw, 1)), 502, "upstream_unreachable");
}
GST_END_TEST;

// If-None-Match / If-Modified-Since answer 304 with the validators.
GST_START_TEST(test_conditional) {
  Rig rig(kId);
  fail_unless_equals_int(get(seg_url(*rig.gw, 1)).status, 200);
  fail_unless(rig.gw->wait_idle(kWaitMs));
  Reply full = get(seg_url(*rig.gw, 1));
  const std::string etag = full.h("etag"), lm = full.h("last-modified");
  Reply r = get(seg_url(*rig.gw, 1), {{"If-None-Match", etag}});
  fail_unless_equals_int(r.status, 304);
  fail_unless(r.body.empty());
  assert_str_eq(r.h("etag"), etag);
  assert_str_eq(r.h("cache-control"), "public, max-age=31536000, immutable");
  fail_unless_equals_int(get(seg_url(*rig.gw, 1), {{"If-None-Match", "\"other\""}}).status, 200);
  fail_unless_equals_int(get(seg_url(*rig.gw, 1), {{"If-Modified-Since", lm}}).status, 304);
}
GST_END_TEST;

// Range: 206 for a range and a suffix, 416 past the end, on a hit and on a miss.
GST_START_TEST(test_range) {
  Rig rig(kId);
  const std::string s2 = str(rig.track.segments[2]);  // 40000 bytes

  Reply miss = get(seg_url(*rig.gw, 2), {{"Range", "bytes=100-199"}});
  fail_unless_equals_int(miss.status, 206);
  fail_unless(miss.body == s2.substr(100, 100));
  assert_str_eq(miss.h("content-range"), "bytes 100-199/40000");

  Reply suffix = get(seg_url(*rig.gw, 2), {{"Range", "bytes=-10"}});
  fail_unless_equals_int(suffix.status, 206);
  fail_unless(suffix.body == s2.substr(39990));
  assert_str_eq(suffix.h("content-range"), "bytes 39990-39999/40000");

  Reply open_end = get(seg_url(*rig.gw, 2), {{"Range", "bytes=39000-"}});
  fail_unless_equals_int(open_end.status, 206);
  fail_unless(open_end.body == s2.substr(39000));

  Reply past = get(seg_url(*rig.gw, 2), {{"Range", "bytes=40000-"}});
  assert_json_error(past, 416, "range_not_satisfiable");
  assert_str_eq(past.h("content-range"), "bytes */40000");

  // A range for another entity (If-Range) gets the whole body.
  assert_body(get(seg_url(*rig.gw, 2), {{"Range", "bytes=0-9"}, {"If-Range", "\"nope\""}}), s2);
  fail_unless_equals_int(segment_requests(*rig.srv), 1);
}
GST_END_TEST;

// Ids and segment numbers the gateway refuses, and what it never creates.
GST_START_TEST(test_hostile) {
  Rig rig(kId);
  const std::string base = rig.gw->base_url();
  for (const char *id :
       {"short", "dQw4w9WgXcQQ", "..%2F..%2Fetc", "dQw4w9WgX%2Fc", "dQw4w9WgX.c", "dQw4w9WgX%00c",
        "%2E%2E", "dQw4w9WgX%20c", "dQw4w9WgX%25c", "", "dQw4w9WgX%C3%A9"}) {
    // In a path, libsoup itself refuses some ("../" above the root, NUL)
    // with an empty 400; every other refusal is ours, in JSON.
    for (const std::string &path :
         {"/api/segments/" + std::string(id) + "/0", "/api/segments/status/" + std::string(id)}) {
      Reply r = get(base + path);
      if (r.body.empty()) {
        fail_unless_equals_int(r.status, 400);
      } else if (r.status == 404) {
        assert_json_error(r, 404, "not_found");  // "%2E%2E" is ".." and leaves the route
      } else {
        assert_json_error(r, 400, "bad_video_id");
      }
    }
    assert_json_error(get(base + "/stream?v=" + id + "&segment=0"), 400, "bad_video_id");
    assert_json_error(get(base + "/status?v=" + id), 400, "bad_video_id");
  }
  for (const char *n : {"-1", "01", "abc", "1.5", "1e3", "99999999999", "%2B1", "0x1", "%200"})
    assert_json_error(get(base + "/api/segments/" + kId + "/" + n), 400, "bad_segment");
  assert_json_error(get(base + "/stream?v=" + std::string(kId) + "&segment=-3"), 400,
                    "bad_segment");
  assert_json_error(get(base + "/stream"), 400, "bad_request");
  // Past the known total (3 segments): 404 once the total is known.
  fail_unless_equals_int(get(base + "/api/segments/status/" + kId).status, 200);
  assert_json_error(get(seg_url(*rig.gw, 3)), 404, "not_found");
  assert_json_error(get(seg_url(*rig.gw, 1000)), 404, "not_found");
  assert_json_error(get(base + "/api/nothing"), 404, "not_found");
  assert_json_error(get(base + "/api/segments/a/b/c"), 404, "not_found");
  assert_json_error(request("PUT", seg_url(*rig.gw, 0)), 405, "method_not_allowed");
  fail_unless_equals_int(segment_requests(*rig.srv), 0);
  // A valid id the upstream does not know: 404, and no folder for it.
  assert_json_error(get(seg_url(*rig.gw, 0, "AAAAAAAAAAA")), 404, "not_found");
  assert_json_error(get(base + "/status?v=AAAAAAAAAAA"), 404, "not_found");
  fail_unless(rig.gw->wait_idle(kWaitMs));
  std::vector<std::string> files;
  list_files(rig.cache.path(), "", files);
  fail_unless(files.empty(), "cache not empty: %s", files.empty() ? "" : files[0].c_str());
}
GST_END_TEST;

// With a permissive id pattern, an id full of path syntax stays inside the
// cache folder (a hashed name).
GST_START_TEST(test_id_pattern) {
  TempDir cache;
  auto srv = start_server();
  const std::string id = "../../x y/..";
  auto track = make_track();
  srv->add_track(id, track);
  auto o = gw_options(srv->base_url(), cache.path());
  o.id_pattern = "^.{1,40}$";
  auto gw = start_gateway(o);
  g_autofree char *esc = g_uri_escape_string(id.c_str(), nullptr, FALSE);
  assert_body(get(gw->base_url() + "/stream?v=" + esc + "&segment=1"), str(track.segments[1]));
  fail_unless(gw->wait_idle(kWaitMs));
  std::vector<std::string> files;
  list_files(cache.path(), "", files);
  fail_unless(!files.empty());
  for (const std::string &f : files)
    fail_unless(f.find("..") == std::string::npos && f.find(' ') == std::string::npos, "%s",
                f.c_str());
  fail_unless(!segdl::gateway::valid_video_id(std::string("a\0b", 3), "^.*$"));
  // An id with '%' in it is decoded once, not twice.
  const std::string pct = "ab%41";
  srv->add_track(pct, track);
  assert_body(get(gw->base_url() + "/api/segments/ab%2541/0"), str(track.segments[0]));
}
GST_END_TEST;

// Two clients asking for the same missing segment cause one upstream
// request; both get the whole body, streamed.
GST_START_TEST(test_dedup) {
  TempDir cache;
  auto track = make_track();
  GatedUpstream up(kId, track.segments);
  auto gw = start_gateway(gw_options(up.base_url(), cache.path()));
  Reply a, b;
  std::thread ta([&] { a = get(seg_url(*gw, 1)); });
  fail_unless(up.wait_segment_requests(1, kWaitMs));
  std::thread tb([&] { b = get(seg_url(*gw, 1)); });
  fail_unless(gw->wait_for([](const Counters &c) { return c.joined_fills >= 1; }, kWaitMs));
  up.open();
  ta.join();
  tb.join();
  fail_unless_equals_int(a.status, 200);
  fail_unless_equals_int(b.status, 200);
  fail_unless(a.body == str(track.segments[1]));
  fail_unless(b.body == str(track.segments[1]));
  fail_unless_equals_int(up.segment_requests(1), 1);
  fail_unless_equals_int(gw->counters().upstream_segments, 1);
}
GST_END_TEST;

// A client that goes away mid-transfer cancels nothing: the other client
// gets its body and the segment is cached.
GST_START_TEST(test_disconnect) {
  TempDir cache;
  auto track = make_track();
  GatedUpstream up(kId, track.segments);
  auto gw = start_gateway(gw_options(up.base_url(), cache.path()));
  GCancellable *cancel = g_cancellable_new();
  Reply a, b;
  std::thread ta([&] { a = request("GET", seg_url(*gw, 2), {}, "", cancel); });
  fail_unless(up.wait_segment_requests(1, kWaitMs));
  std::thread tb([&] { b = get(seg_url(*gw, 2)); });
  fail_unless(gw->wait_for([](const Counters &c) { return c.joined_fills >= 1; }, kWaitMs));
  g_cancellable_cancel(cancel);
  ta.join();
  fail_unless(!a.error.empty());
  up.open();
  tb.join();
  assert_body(b, str(track.segments[2]));
  fail_unless(gw->wait_idle(kWaitMs));
  const uint64_t hits = gw->counters().cache_hits;
  Reply c = get(seg_url(*gw, 2));
  fail_unless(c.body == str(track.segments[2]));
  fail_unless_equals_int(gw->counters().cache_hits, hits + 1);
  fail_unless_equals_int(up.segment_requests(2), 1);
  g_object_unref(cancel);
}
GST_END_TEST;

// The app's status: remote (the upstream's, with the gateway's own
// downloading/failed), local and hasFirstSegment; an id the upstream does
// not know and the cache holds nothing of is a 404 JSON error; with the
// upstream down, remote is empty and the rest stays true to the cache.
GST_START_TEST(test_api_status) {
  Rig rig(kId);
  const std::string url = rig.gw->base_url() + "/api/segments/status/" + kId;
  const std::string unknown = rig.gw->base_url() + "/api/segments/status/AAAAAAAAAAA";
  assert_json_error(get(unknown), 404, "not_found");
  Reply r = get(url);
  fail_unless_equals_int(r.status, 200);
  assert_str_eq(r.h("cache-control"), "public, max-age=1");
  {
    Json j(r.body);
    assert_str_eq(j.s("videoId"), kId);
    JsonObject *remote = json_object_get_object_member(j.obj(), "remote");
    assert_str_eq(json_object_get_string_member(remote, "videoId"), kId);
    fail_unless(Json::ints(remote, "ready") == std::vector<int64_t>({0, 1, 2}));
    fail_unless(Json::ints(remote, "downloading").empty());
    fail_unless(Json::ints(remote, "failed").empty());
    fail_unless_equals_int(json_object_get_int_member(remote, "totalSegments"), 3);
    fail_unless(j.ints("local").empty());
    fail_unless(!j.b("hasFirstSegment"));
  }
  fail_unless_equals_int(get(seg_url(*rig.gw, 0)).status, 200);
  fail_unless_equals_int(get(seg_url(*rig.gw, 2)).status, 200);
  fail_unless(rig.gw->wait_idle(kWaitMs));
  Reply r2 = get(url);
  {
    Json j(r2.body);
    fail_unless(j.ints("local") == std::vector<int64_t>({0, 2}));
    fail_unless(j.b("hasFirstSegment"));
  }
  // Conditional: the same document is 304.
  fail_unless_equals_int(get(url, {{"If-None-Match", r2.h("etag")}}).status, 304);
  rig.srv->stop();
  Reply down = get(url);
  fail_unless_equals_int(down.status, 200);
  Json j(down.body);
  fail_unless_equals_int(json_object_get_size(json_object_get_object_member(j.obj(), "remote")), 0);
  fail_unless(j.ints("local") == std::vector<int64_t>({0, 2}));
  fail_unless(j.b("hasFirstSegment"));
  // Upstream down: nothing says the id is unknown, so its status is empty.
  Reply none = get(unknown);
  fail_unless_equals_int(none.status, 200);
  Json n(none.body);
  fail_unless_equals_int(json_object_get_size(json_object_get_object_member(n.obj(), "remote")), 0);
  fail_unless(n.ints("local").empty());
  fail_unless(!n.b("hasFirstSegment"));
}
GST_END_TEST;

// The plain status: the upstream's document plus the cache; from the cache
// alone when the track is whole there; a JSON error when nothing is known.
GST_START_TEST(test_plain_status) {
  Rig rig(kId);
  const std::string url = rig.gw->base_url() + "/status?v=" + kId;
  Reply r = get(url);
  fail_unless_equals_int(r.status, 200);
  Json j(r.body);
  fail_unless(j.ints("ready") == std::vector<int64_t>({0, 1, 2}));
  fail_unless_equals_int(j.i("totalSegments"), 3);
  assert_str_eq(r.h("cache-control"), "public, max-age=60");  // complete: longer
  fail_unless(!r.h("etag").empty());
  assert_json_error(get(rig.gw->base_url() + "/status?v=AAAAAAAAAAA"), 404, "not_found");
  for (int k = 0; k < 3; k++) fail_unless_equals_int(get(seg_url(*rig.gw, k)).status, 200);
  fail_unless(rig.gw->wait_idle(kWaitMs));
  rig.srv->stop();
  Reply cached = get(url);
  fail_unless_equals_int(cached.status, 200);
  Json c(cached.body);
  fail_unless(c.ints("ready") == std::vector<int64_t>({0, 1, 2}));
  fail_unless_equals_int(c.i("totalSegments"), 3);
  assert_str_eq(c.s("state"), "complete");
  assert_json_error(get(rig.gw->base_url() + "/status?v=BBBBBBBBBBB"), 502, "upstream_unreachable");
}
GST_END_TEST;

// Preload: 200 at once, one job per track, segment 0 first, progress in the
// status, then every segment cached with one upstream request each.
GST_START_TEST(test_preload) {
  TempDir cache;
  auto track = make_track(5);
  GatedUpstream up(kId, track.segments);
  auto o = gw_options(up.base_url(), cache.path());
  o.max_concurrent = 2;
  auto gw = start_gateway(o);
  const std::string body = std::string("{\"videoId\":\"") + kId + "\"}";
  Reply r = request("POST", gw->base_url() + "/api/segments/preload", {}, body);
  fail_unless_equals_int(r.status, 200);
  Json j(r.body);
  fail_unless(j.b("success"));
  assert_str_eq(j.s("videoId"), kId);
  fail_unless(!j.s("message").empty());
  // Asked again while running: still one job.
  fail_unless_equals_int(request("POST", gw->base_url() + "/api/segments/preload", {}, body).status,
                         200);
  fail_unless(up.wait_segment_requests(2, kWaitMs));
  fail_unless_equals_int(up.segment_requests(0), 1);  // segment 0 first
  Reply st = get(gw->base_url() + "/api/segments/status/" + kId);
  Json s(st.body);
  JsonObject *remote = json_object_get_object_member(s.obj(), "remote");
  fail_unless(Json::ints(remote, "downloading") == std::vector<int64_t>({0, 1, 2, 3, 4}));
  fail_unless_equals_int(gw->counters().fills_running, 2);  // max-concurrent
  up.open();
  fail_unless(gw->wait_idle(kWaitMs));
  Reply done = get(gw->base_url() + "/api/segments/status/" + kId);
  Json d(done.body);
  fail_unless(d.ints("local") == std::vector<int64_t>({0, 1, 2, 3, 4}));
  fail_unless(d.b("hasFirstSegment"));
  fail_unless(Json::ints(json_object_get_object_member(d.obj(), "remote"), "downloading").empty());
  for (int k = 0; k < 5; k++) fail_unless_equals_int(up.segment_requests(k), 1);
  // A whole track preloaded again asks for no segment.
  fail_unless_equals_int(request("POST", gw->base_url() + "/api/segments/preload", {}, body).status,
                         200);
  fail_unless(gw->wait_idle(kWaitMs));
  for (int k = 0; k < 5; k++) fail_unless_equals_int(up.segment_requests(k), 1);
  // Bad bodies.
  const std::string url = gw->base_url() + "/api/segments/preload";
  assert_json_error(request("POST", url, {}, "not json"), 400, "bad_request");
  assert_json_error(request("POST", url, {}, "{\"id\":\"x\"}"), 400, "bad_request");
  assert_json_error(request("POST", url, {}, "{\"videoId\":7}"), 400, "bad_request");
  assert_json_error(request("POST", url, {}, "{\"videoId\":\"../etc\"}"), 400, "bad_video_id");
  assert_json_error(get(url), 405, "method_not_allowed");
}
GST_END_TEST;

// The cache endpoints: configuration and tracks; one track in detail.
GST_START_TEST(test_cache_listing) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track(kId, track);
  auto o = gw_options(srv->base_url(), cache.path());
  o.cache_max_size = 1 << 30;
  auto gw = start_gateway(o);
  fail_unless_equals_int(get(gw->base_url() + "/status?v=" + kId).status, 200);
  for (int k = 0; k < 3; k++) fail_unless_equals_int(get(seg_url(*gw, k)).status, 200);
  fail_unless(gw->wait_idle(kWaitMs));
  Reply r = get(gw->base_url() + "/api/segments/cache");
  fail_unless_equals_int(r.status, 200);
  Json j(r.body);
  assert_str_eq(j.s("cacheDir"), cache.path());
  fail_unless_equals_int(j.i("maxSizeBytes"), 1 << 30);
  JsonArray *tracks = json_object_get_array_member(j.obj(), "tracks");
  fail_unless_equals_int(json_array_get_length(tracks), 1);
  JsonObject *t = json_array_get_object_element(tracks, 0);
  assert_str_eq(json_object_get_string_member(t, "videoId"), kId);
  fail_unless_equals_int(json_object_get_int_member(t, "segmentCount"), 3);
  fail_unless_equals_int(json_object_get_int_member(t, "sizeBytes"), 20000 + 30000 + 40000);
  fail_unless(json_object_get_boolean_member(t, "complete"));

  Reply one = get(gw->base_url() + "/api/segments/cache/" + kId);
  fail_unless_equals_int(one.status, 200);
  Json k(one.body);
  fail_unless_equals_int(k.i("totalSegments"), 3);
  JsonArray *segs = json_object_get_array_member(k.obj(), "segments");
  fail_unless_equals_int(json_array_get_length(segs), 3);
  for (guint n = 0; n < 3; n++) {
    JsonObject *s = json_array_get_object_element(segs, n);
    fail_unless_equals_int(json_object_get_int_member(s, "segment"), n);
    fail_unless_equals_int(json_object_get_int_member(s, "size"), 20000 + 10000 * n);
    fail_unless(json_object_get_int_member(s, "ageSeconds") >= 0);
  }
  assert_json_error(get(gw->base_url() + "/api/segments/cache/AAAAAAAAAAA"), 404, "not_found");
  assert_json_error(get(gw->base_url() + "/api/segments/cache/bad"), 400, "bad_video_id");
}
GST_END_TEST;

// DELETE /api/segments/cache: refused without --admin-token, 401 without or
// with a wrong bearer token; with it, tracks older than maxAge go, and
// without maxAge those above --cache-max-size.
GST_START_TEST(test_admin_token) {
  TempDir cache;
  auto srv = start_server();
  srv->add_track(kId, make_track());
  srv->add_track("AAAAAAAAAAA", make_track());
  auto o = gw_options(srv->base_url(), cache.path());
  {
    auto open_gw = start_gateway(o);
    assert_json_error(request("DELETE", open_gw->base_url() + "/api/segments/cache?maxAge=1"), 403,
                      "forbidden");
  }
  o.admin_token = "s3cret";
  auto gw = start_gateway(o);
  fail_unless_equals_int(get(seg_url(*gw, 0)).status, 200);
  fail_unless_equals_int(get(seg_url(*gw, 0, "AAAAAAAAAAA")).status, 200);
  fail_unless(gw->wait_idle(kWaitMs));
  const std::string url = gw->base_url() + "/api/segments/cache?maxAge=1";
  Reply no = request("DELETE", url);
  assert_json_error(no, 401, "unauthorized");
  assert_str_eq(no.h("www-authenticate"), "Bearer");
  assert_json_error(request("DELETE", url, {{"Authorization", "Bearer s3cre"}}), 401,
                    "unauthorized");
  assert_json_error(request("DELETE", url, {{"Authorization", "Basic s3cret"}}), 401,
                    "unauthorized");
  assert_json_error(request("DELETE", gw->base_url() + "/api/segments/cache?maxAge=x",
                            {{"Authorization", "Bearer s3cret"}}),
                    400, "bad_request");
  // Age kId's track by two hours (its .lock's time is its last use).
  std::vector<std::string> files;
  list_files(cache.path(), "", files);
  std::string lock;
  {
    Reply one = get(gw->base_url() + "/api/segments/cache/" + kId);
    fail_unless_equals_int(one.status, 200);
  }
  for (const std::string &f : files) {
    const std::string dir = f.substr(0, f.find('/'));
    g_autofree char *idf = g_build_filename(cache.path().c_str(), dir.c_str(), "video-id", nullptr);
    g_autofree char *content = nullptr;
    if (g_file_get_contents(idf, &content, nullptr, nullptr) && std::string(content) == kId)
      lock = cache.path() + "/" + dir + "/.lock";
  }
  fail_unless(!lock.empty());
  struct utimbuf old;
  old.actime = old.modtime = time(nullptr) - 7200;
  fail_unless_equals_int(utime(lock.c_str(), &old), 0);
  Reply ok = request("DELETE", url, {{"Authorization", "Bearer s3cret"}});
  fail_unless_equals_int(ok.status, 200);
  Json j(ok.body);
  fail_unless(j.b("success"));
  fail_unless_equals_int(j.i("removedTracks"), 1);
  fail_unless_equals_int(get(gw->base_url() + "/api/segments/cache/" + kId).status, 404);
  fail_unless_equals_int(get(gw->base_url() + "/api/segments/cache/AAAAAAAAAAA").status, 200);
  // Without maxAge, the size limit (--cache-max-size) evicts what is above it.
  o.cache_max_size = 1;
  auto small = start_gateway(o);
  Reply by_size = request("DELETE", small->base_url() + "/api/segments/cache",
                          {{"Authorization", "Bearer s3cret"}});
  fail_unless_equals_int(by_size.status, 200);
  fail_unless_equals_int(Json(by_size.body).i("removedTracks"), 1);
  fail_unless_equals_int(get(gw->base_url() + "/api/segments/cache/AAAAAAAAAAA").status, 404);
}
GST_END_TEST;

// HEAD: the GET's head and length, no body, on a miss and on a hit.
GST_START_TEST(test_head) {
  Rig rig(kId);
  for (int round = 0; round < 2; round++) {
    Reply h = request("HEAD", seg_url(*rig.gw, 1));
    fail_unless_equals_int(h.status, 200);
    fail_unless(h.body.empty());
    assert_str_eq(h.h("content-length"), "30000");
    assert_str_eq(h.h("cache-control"), "public, max-age=31536000, immutable");
    fail_unless(!h.h("etag").empty());
  }
  fail_unless_equals_int(segment_requests(*rig.srv), 1);
}
GST_END_TEST;

// A preload whose segment keeps failing: the others are cached, the failed
// one shows in the status, and the job ends.
GST_START_TEST(test_preload_failed) {
  TempDir cache;
  auto srv = start_server();
  srv->add_track(kId, make_track());
  segdl::server::Fault f;
  f.kind = "http500";
  f.video_id = kId;
  f.segment = 1;
  f.count = -1;
  srv->add_fault(f);
  auto o = gw_options(srv->base_url(), cache.path());
  o.max_retries = 1;
  o.preload_poll_ms = 10;
  o.preload_max_idle_polls = 2;
  auto gw = start_gateway(o);
  const std::string body = std::string("{\"videoId\":\"") + kId + "\"}";
  fail_unless_equals_int(request("POST", gw->base_url() + "/api/segments/preload", {}, body).status,
                         200);
  fail_unless(gw->wait_idle(kWaitMs));
  Json j(get(gw->base_url() + "/api/segments/status/" + kId).body);
  fail_unless(j.ints("local") == std::vector<int64_t>({0, 2}));
  JsonObject *remote = json_object_get_object_member(j.obj(), "remote");
  fail_unless(Json::ints(remote, "failed") == std::vector<int64_t>({1}));
  fail_unless(Json::ints(remote, "downloading").empty());
  fail_unless_equals_int(segment_requests(*srv, 1), 2);  // one try and one retry, not more
}
GST_END_TEST;

// An upstream that accepts and never answers: 504 upstream_timeout after
// the retries, the second attempt counted upstream.
GST_START_TEST(test_timeout) {
  TempDir cache;
  auto track = make_track();
  GatedUpstream up(kId, track.segments);
  auto o = gw_options(up.base_url(), cache.path());
  o.timeout_s = 1;
  o.max_retries = 1;
  auto gw = start_gateway(o);
  assert_json_error(get(seg_url(*gw, 0)), 504, "upstream_timeout");
  fail_unless_equals_int(up.segment_requests(0), 2);
  up.open();
}
GST_END_TEST;

// Eviction never removes a track a transfer is writing into, however old
// its last use says it is; once the transfer is done, it can go.
GST_START_TEST(test_evict_in_use) {
  TempDir cache;
  auto track = make_track();
  GatedUpstream up(kId, track.segments, true);
  auto o = gw_options(up.base_url(), cache.path());
  o.admin_token = "t";
  auto gw = start_gateway(o);
  Reply a;
  std::thread ta([&] { a = get(seg_url(*gw, 1)); });
  fail_unless(gw->wait_for([](const Counters &c) { return c.fills_writing == 1; }, kWaitMs));
  std::string dir;
  {
    std::vector<std::string> files;
    list_files(cache.path(), "", files);
    fail_unless(!files.empty());
    dir = cache.path() + "/" + files[0].substr(0, files[0].find('/'));
  }
  const std::string lock = dir + "/.lock";
  struct utimbuf old;
  old.actime = old.modtime = time(nullptr) - 7200;
  fail_unless_equals_int(utime(lock.c_str(), &old), 0);
  const std::string url = gw->base_url() + "/api/segments/cache?maxAge=1";
  Reply busy = request("DELETE", url, {{"Authorization", "Bearer t"}});
  fail_unless_equals_int(busy.status, 200);
  fail_unless_equals_int(Json(busy.body).i("removedTracks"), 0);
  fail_unless(g_file_test(dir.c_str(), G_FILE_TEST_IS_DIR));
  up.open();
  ta.join();
  assert_body(a, str(track.segments[1]));
  fail_unless(gw->wait_idle(kWaitMs));
  fail_unless_equals_int(utime(lock.c_str(), &old), 0);
  Reply done = request("DELETE", url, {{"Authorization", "Bearer t"}});
  fail_unless_equals_int(Json(done.body).i("removedTracks"), 1);
  fail_unless(!g_file_test(dir.c_str(), G_FILE_TEST_EXISTS));
}
GST_END_TEST;

static Suite *gateway_api_suite() {
  Suite *s = suite_create("gateway-api");
  TCase *tc = tcase_create("api");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_cache_first);
  tcase_add_test(tc, test_conditional);
  tcase_add_test(tc, test_range);
  tcase_add_test(tc, test_hostile);
  tcase_add_test(tc, test_id_pattern);
  tcase_add_test(tc, test_dedup);
  tcase_add_test(tc, test_disconnect);
  tcase_add_test(tc, test_api_status);
  tcase_add_test(tc, test_plain_status);
  tcase_add_test(tc, test_preload);
  tcase_add_test(tc, test_cache_listing);
  tcase_add_test(tc, test_admin_token);
  tcase_add_test(tc, test_head);
  tcase_add_test(tc, test_preload_failed);
  tcase_add_test(tc, test_timeout);
  tcase_add_test(tc, test_evict_in_use);
  return s;
}

GST_CHECK_MAIN(gateway_api);
