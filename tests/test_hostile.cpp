/* segdl tests — hostile backends and hostile ids: bounded, reported, and
 * never outside the cache folder.
 */
#include "harness.h"

#include "segdl/cache.h"

#include <glib/gstdio.h>

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
  gint64 t0 = g_get_monotonic_time();
  GstElement *p =
      make_pipeline(srv->base_url(), "slow", "timeout=1 max-retries=1", "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_unless(run.error != nullptr, "no ERROR");
  fail_unless(run.error->domain == GST_RESOURCE_ERROR);
  fail_unless(strstr(run.error->message, "timed out") != nullptr, "%s", run.error->message);
  fail_unless(g_get_monotonic_time() - t0 < 15 * G_USEC_PER_SEC, "took too long");
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
  tcase_add_loop_test(tc, test_hostile_id_cache, 0, G_N_ELEMENTS(kIds));
  return s;
}

GST_CHECK_MAIN(hostile);
