// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — hostile request paths and queries get the gateway's own
 * JSON errors with CORS headers (the server keeps raw paths, so libsoup does
 * not answer them first), an id is checked on its whole length (a %00 is no
 * end of string), and /listen with the upstream down names the cause.
 */
#include "gwtest.h"

using namespace gwtest;

namespace {

const char *const kId = "hostileTrk1";

// An answer read off a raw connection: status, lower-case headers, body.
struct RawReply {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
};

// GET `target` exactly as written (no client normalising it), the whole
// answer (the server closes: Connection: close).
RawReply raw_get(int port, const std::string &target) {
  RawClient c(port, target);
  const std::string all = c.read_all();
  RawReply r;
  const size_t end = all.find("\r\n\r\n");
  fail_unless(end != std::string::npos, "GET %s: no answer head in %zu bytes", target.c_str(),
              all.size());
  g_auto(GStrv) lines = g_strsplit(all.substr(0, end).c_str(), "\r\n", -1);
  fail_unless(lines[0] && sscanf(lines[0], "HTTP/1.1 %d", &r.status) == 1, "GET %s: %s",
              target.c_str(), lines[0] ? lines[0] : "");
  for (char **l = lines + 1; *l; l++) {
    const char *colon = strchr(*l, ':');
    if (!colon) continue;
    g_autofree char *name = g_ascii_strdown(*l, colon - *l);
    g_autofree char *value = g_strdup(colon + 1);
    r.headers[name] = g_strstrip(value);
  }
  r.body = all.substr(end + 4);
  return r;
}

// A JSON error with the CORS header, as every answer of the gateway.
void assert_raw_error(int port, const std::string &target, int status, const std::string &code) {
  const RawReply r = raw_get(port, target);
  fail_unless(r.status == status, "GET %s: %d, %d expected (%s)", target.c_str(), r.status, status,
              r.body.c_str());
  Json j(r.body);
  fail_unless(j.s("error") == code, "GET %s: error %s, %s expected", target.c_str(),
              j.s("error").c_str(), code.c_str());
  fail_unless(!j.s("message").empty());
  assert_str_eq(r.headers.at("content-type"), "application/json");
  assert_str_eq(r.headers.at("cache-control"), "no-store");
  assert_str_eq(r.headers.at("access-control-allow-origin"), "*");
}

}  // namespace

// Ids with a NUL, with a %2F making "../", and dot segments: each a JSON
// error with CORS (bad_video_id), in the path and in ?v=; "v=ID%00" is not
// the track ID. Ids written with escapes of plain characters still work.
GST_START_TEST(test_hostile_ids) {
  Rig rig(kId);
  const int port = rig.gw->port();
  const std::string id = kId;
  for (const std::string &t : std::vector<std::string>{
           "/listen/a%00b", "/listen/..%2F..%2Fetc", "/listen/" + id + "%00",
           "/api/segments/..%2F" + id + "/0", "/api/segments/" + id + "%00/0",
           "/api/segments/status/" + id + "%00", "/api/segments/cache/" + id + "%00",
           "/stream?v=" + id + "%00", "/stream?v=" + id + "%00&segment=0",
           "/status?v=" + id + "%00", "/stream?v=..%2F" + id})
    assert_raw_error(port, t, 400, "bad_video_id");
  assert_raw_error(port, "/stream?v=" + id + "&segment=0%00", 400, "bad_segment");
  assert_raw_error(port, "/api/segments/" + id + "/0%00", 400, "bad_segment");
  assert_raw_error(port, "/listen/a/b", 404, "not_found");
  assert_raw_error(port, "/api%2Fsegments/" + id + "/0", 404, "not_found");
  fail_unless_equals_int(segment_requests(*rig.srv), 0);
  const std::string seg0 = str(rig.track.segments[0]);
  RawReply ok = raw_get(port, "/api/segments/" + id + "/0");
  fail_unless_equals_int(ok.status, 200);
  fail_unless(ok.body == seg0);
  ok = raw_get(port, "/api/segments/hostile%54rk1/0");  // %54 is 'T'
  fail_unless_equals_int(ok.status, 200);
  fail_unless(ok.body == seg0);
  ok = raw_get(port, "/stream?v=" + id + "&segment=%30");  // %30 is '0'
  fail_unless_equals_int(ok.status, 200);
  fail_unless(ok.body == seg0);
  // A dot segment is removed by URI normalisation before the server sees
  // the path (RFC 3986; %2e is '.'): /listen/%2e%2e is the page at /.
  ok = raw_get(port, "/listen/%2e%2e");
  fail_unless_equals_int(ok.status, 200);
  assert_str_eq(ok.headers.at("content-type"), "text/html; charset=utf-8");
}
GST_END_TEST;

// /listen/ID with the upstream down: the gateway's own status request to it
// failed with "Connection refused", and /listen says so (502
// upstream_unreachable, the same error as /status?v=), not only the 502 its
// segdlsrc got from the gateway.
GST_START_TEST(test_listen_upstream_down) {
  Rig rig(kId);
  rig.srv.reset();  // the upstream's port now refuses connections
  const Reply st = get(rig.gw->base_url() + "/status?v=" + kId);
  assert_json_error(st, 502, "upstream_unreachable");
  const Reply r = get(rig.gw->base_url() + "/listen/" + kId);
  assert_json_error(r, 502, "upstream_unreachable");
  assert_str_eq(r.h("access-control-allow-origin"), "*");
  const std::string message = Json(r.body).s("message");
  fail_unless(message.find("Connection refused") != std::string::npos, "message: %s",
              message.c_str());
  assert_str_eq(message.c_str(), Json(st.body).s("message").c_str());
}
GST_END_TEST;

static Suite *gateway_requests_suite() {
  Suite *s = suite_create("gateway-requests");
  TCase *tc = tcase_create("requests");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_hostile_ids);
  tcase_add_test(tc, test_listen_upstream_down);
  return s;
}

GST_CHECK_MAIN(gateway_requests);
