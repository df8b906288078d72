// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdlsrc with a disk cache: cache first, then the backend.
 * A cached track replays with the backend gone; a download killed mid-way
 * leaves no partial segment; two pipelines share a cache; an unusable cache
 * is turned off with a WARNING while playback goes on; old tracks are
 * evicted.
 */
#include "harness.h"

#include "segdl/cache.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

using namespace segdl;
using namespace segdl::test;

namespace {

// A temporary folder, removed (recursively) at the end of the test.
struct TempDir {
  gchar *path = g_dir_make_tmp("segdl-cache-XXXXXX", nullptr);
  ~TempDir() {
    gchar *argv[] = {g_strdup("rm"), g_strdup("-rf"), g_strdup(path), nullptr};
    g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr,
                 nullptr, nullptr);
    for (gchar *a : argv) g_free(a);
    g_free(path);
  }
  std::string track(const std::string &id) const {
    return std::string(path) + "/" + Cache::safe_name(id);
  }
};

Bytes read_file(const std::string &path) {
  gchar *data = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(path.c_str(), &data, &len, nullptr)) return {};
  Bytes b(data, data + len);
  g_free(data);
  return b;
}

}  // namespace

// Played once with a cache, the track replays from the cache alone, with
// the backend stopped, in both joins.
GST_START_TEST(test_replay_offline) {
  TempDir dir;
  server::Track track = make_track(media::Form::Adts);
  Bytes expected = concat(track.segments);
  std::string url;
  {
    auto srv = start_server();
    srv->add_track("off", track);
    url = srv->base_url();
    GstElement *p = make_pipeline(url, "off", std::string("join=bytes cache-dir=") + dir.path,
                                  "appsink name=sink sync=false");
    Run run;
    run_pipeline(p, run);
    gst_object_unref(p);
    fail_unless(run.eos && !run.error && run.bytes == expected);
  }  // the backend is gone
  for (size_t n = 0; n < track.segments.size(); n++)
    fail_unless(
        read_file(dir.track("off") + "/seg_" + std::to_string(n) + ".bin") == track.segments[n],
        "cached segment %zu differs", n);
  for (const char *join : {"bytes", "timeline"}) {
    GstElement *p =
        make_pipeline(url, "off", std::string("join=") + join + " cache-dir=" + dir.path,
                      "appsink name=sink sync=false");
    Run run;
    run_pipeline(p, run);
    fail_unless(run.eos && !run.error, "join=%s: %s", join, run.error ? run.error->message : "");
    if (g_str_equal(join, "bytes")) fail_unless(run.bytes == expected);
    GstStructure *st = stats_of(p);
    gint64 hits = 0;
    gboolean offline = FALSE;
    fail_unless(gst_structure_get_int64(st, "cache-hits", &hits));
    fail_unless(gst_structure_get_boolean(st, "offline", &offline));
    fail_unless_equals_int(hits, 4);
    fail_unless(offline);
    gst_structure_free(st);
    gst_object_unref(p);
  }
}
GST_END_TEST;

// A gst-launch process killed in the middle of a segment leaves only whole
// segments in the cache; the next run completes the track byte-exact.
GST_START_TEST(test_killed_mid_segment) {
  TempDir dir;
  server::Options o;
  o.bandwidth_kbps = 300;  // a segment takes about a second
  auto srv = start_server(o);
  server::Track track = make_track(media::Form::Adts);
  Bytes expected = concat(track.segments);
  srv->add_track("kill", track);
  std::string backend = "backend-url=" + srv->base_url();
  std::string cache = std::string("cache-dir=") + dir.path;
  gchar *argv[] = {g_strdup("gst-launch-1.0"), g_strdup("-q"),
                   g_strdup("segdlsrc"),       g_strdup(backend.c_str()),
                   g_strdup("video-id=kill"),  g_strdup(cache.c_str()),
                   g_strdup("join=bytes"),     g_strdup("!"),
                   g_strdup("fakesink"),       nullptr};
  GPid pid = 0;
  GError *err = nullptr;
  // A sanitized plugin needs its runtime preloaded in the child.
  gchar **envp = g_get_environ();
  if (const char *preload = g_getenv("SEGDL_CHILD_PRELOAD"))
    envp = g_environ_setenv(envp, "LD_PRELOAD", preload, TRUE);
  fail_unless(g_spawn_async(nullptr, argv, envp,
                            GSpawnFlags(G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                        G_SPAWN_STDOUT_TO_DEV_NULL),
                            nullptr, nullptr, &pid, &err),
              "%s", err ? err->message : "");
  g_strfreev(envp);
  for (gchar *a : argv) g_free(a);
  // Kill it once segment 1 is on its way (status + segments 0, 1, ...).
  // The child's start-up (a sanitized one on a loaded machine, a registry
  // to update) is bounded by 60 s, not by a count of short waits.
  bool started = false;
  const gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
  for (size_t seen = 0; !started && g_get_monotonic_time() < deadline;) {
    srv->wait_requests(seen + 1, 100);
    const std::vector<server::RequestRecord> reqs = srv->requests();
    seen = reqs.size();
    for (const auto &r : reqs) started |= r.path == "/stream" && r.segment == 1;
  }
  fail_unless(started, "segment 1 never requested");
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  g_spawn_close_pid(pid);
  fail_unless(WIFSIGNALED(status));
  // Whatever is cached is whole.
  int whole = 0;
  GDir *d = g_dir_open(dir.track("kill").c_str(), 0, nullptr);
  fail_unless(d != nullptr);
  while (const char *name = g_dir_read_name(d)) {
    int n = -1;
    if (sscanf(name, "seg_%d.bin", &n) == 1 && g_str_has_suffix(name, ".bin")) {
      fail_unless(n >= 0 && n < 4);
      fail_unless(read_file(dir.track("kill") + "/" + name) == track.segments[size_t(n)],
                  "partial or wrong %s in the cache", name);
      whole++;
    }
  }
  g_dir_close(d);
  fail_unless(whole < 4, "the kill came too late to test anything");
  GstElement *p =
      make_pipeline(srv->base_url(), "kill", "join=bytes " + cache, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == expected);
}
GST_END_TEST;

// Two pipelines on one cache and one id at the same time both complete with
// the right output.
GST_START_TEST(test_two_pipelines_one_cache) {
  TempDir dir;
  server::Options o;
  o.bandwidth_kbps = 3000;
  auto srv = start_server(o);
  server::Track track = make_track(media::Form::Mp3);
  Bytes expected = concat(track.segments);
  srv->add_track("two", track);
  std::string props = std::string("join=bytes cache-dir=") + dir.path;
  Run a, b;
  std::thread other([&] {
    GstElement *p = make_pipeline(srv->base_url(), "two", props, "appsink name=sink sync=false");
    run_pipeline(p, b, 60);
    gst_object_unref(p);
  });
  GstElement *p = make_pipeline(srv->base_url(), "two", props, "appsink name=sink sync=false");
  run_pipeline(p, a, 60);
  gst_object_unref(p);
  other.join();
  fail_unless(a.eos && !a.error && a.bytes == expected);
  fail_unless(b.eos && !b.error && b.bytes == expected);
  for (size_t n = 0; n < track.segments.size(); n++)
    fail_unless(read_file(dir.track("two") + "/seg_" + std::to_string(n) + ".bin") ==
                track.segments[n]);
}
GST_END_TEST;

// A cache that cannot be written: a WARNING, and the track still plays.
GST_START_TEST(test_unusable_cache) {
  TempDir dir;
  std::string file = std::string(dir.path) + "/not-a-folder";
  fail_unless(g_file_set_contents(file.c_str(), "x", 1, nullptr));
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("u", track);
  GstElement *p = make_pipeline(srv->base_url(), "u", "join=bytes cache-dir=" + file + "/sub",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == concat(track.segments));
  bool warned = false;
  for (const std::string &w : run.warnings) warned |= w.find("cache") != std::string::npos;
  fail_unless(warned, "no WARNING about the cache");
}
GST_END_TEST;

// cache-max-size evicts the least recently used other track, never the one
// playing.
GST_START_TEST(test_eviction) {
  TempDir dir;
  auto srv = start_server();
  srv->add_track("first", make_track(media::Form::Adts));
  srv->add_track("second", make_track(media::Form::Mp3));
  for (const char *id : {"first", "second"}) {
    GstElement *p = make_pipeline(srv->base_url(), id,
                                  std::string("cache-dir=") + dir.path + " cache-max-size=1",
                                  "fakesink sync=false");
    Run run;
    run_pipeline(p, run);
    gst_object_unref(p);
    fail_unless(run.eos && !run.error);
  }
  fail_if(g_file_test(dir.track("first").c_str(), G_FILE_TEST_EXISTS), "the old track stayed");
  fail_unless(g_file_test((dir.track("second") + "/seg_0.bin").c_str(), G_FILE_TEST_EXISTS),
              "the track in use was evicted");
}
GST_END_TEST;

// A cached segment corrupted in place (same size): online it is re-fetched
// and the output is the track; offline it is a clean ERROR naming it, and
// its bytes are never output.
GST_START_TEST(test_corrupted_entry) {
  TempDir dir;
  server::Track track = make_track(media::Form::Adts);
  Bytes expected = concat(track.segments);
  auto srv = start_server();
  srv->add_track("bad", track);
  const std::string props =
      std::string("join=bytes max-retries=1 missing-segment=error cache-dir=") + dir.path;
  auto play = [&](Run &run) {
    GstElement *p = make_pipeline(srv->base_url(), "bad", props, "appsink name=sink sync=false");
    run_pipeline(p, run, 30);
    gst_object_unref(p);
  };
  auto corrupt = [&] {
    std::string bin = dir.track("bad") + "/seg_1.bin";
    Bytes b = read_file(bin);
    fail_unless(b.size() == track.segments[1].size());
    b[b.size() / 2] ^= 0x20;
    fail_unless(g_file_set_contents(bin.c_str(), reinterpret_cast<const char *>(b.data()),
                                    gssize(b.size()), nullptr));
  };
  {
    Run run;
    play(run);
    fail_unless(run.eos && !run.error && run.bytes == expected);
  }
  corrupt();
  {
    Run run;  // online: re-fetched
    play(run);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == expected, "corrupted cache bytes output");
  }
  fail_unless(read_file(dir.track("bad") + "/seg_1.bin") == track.segments[1], "not re-cached");
  corrupt();
  srv->stop();  // offline
  {
    Run run;
    play(run);
    fail_if(run.timed_out);
    fail_unless(run.error != nullptr, "no ERROR offline");
    fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
    fail_unless(run.bytes == track.segments[0], "%zu bytes out", run.bytes.size());
  }
}
GST_END_TEST;

// A cached segment truncated by another program while the track plays
// from the cache: no crash (the cache is read with read(), not mmap), and
// no byte of it output unchecked. Online it is fetched again and the track
// is whole; offline it is a clean ERROR after the segments before it. The
// truncation happens when the sink gets its first buffer: with
// max-concurrent=1 the engine has read segments 0-1 only, so segment 3 is
// still on disk alone.
GST_START_TEST(test_truncated_during_playback) {
  TempDir dir;
  server::Track track = make_track(media::Form::Adts);
  fail_unless_equals_int(int(track.segments.size()), 4);
  Bytes expected = concat(track.segments);
  auto srv = start_server();
  srv->add_track("cut", track);
  const std::string props =
      std::string("join=bytes max-concurrent=1 max-retries=1 missing-segment=error cache-dir=") +
      dir.path;
  const std::string bin = dir.track("cut") + "/seg_3.bin";
  // Plays the track; the first buffer at the sink cuts seg_3.bin in half.
  auto play = [&](Run &run, bool cut) {
    GstElement *p = make_pipeline(srv->base_url(), "cut", props, "appsink name=sink sync=false");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    static const auto probe = [](GstPad *, GstPadProbeInfo *, gpointer data) {
      auto *path = static_cast<std::string *>(data);
      GStatBuf st;
      fail_unless(g_stat(path->c_str(), &st) == 0, "%s is not cached", path->c_str());
      fail_unless(truncate(path->c_str(), st.st_size / 2) == 0);
      return GST_PAD_PROBE_REMOVE;
    };
    std::string path = bin;
    if (cut) gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, probe, &path, nullptr);
    gst_object_unref(pad);
    gst_object_unref(sink);
    run_pipeline(p, run, 30);
    gst_object_unref(p);
  };
  {
    Run run;  // fills the cache
    play(run, false);
    fail_unless(run.eos && !run.error && run.bytes == expected);
  }
  {
    Run run;  // online: segment 3 fails its check and is fetched again
    play(run, true);
    fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == expected, "truncated cache bytes output");
  }
  fail_unless(read_file(bin) == track.segments[3], "not re-cached whole");
  srv->stop();  // offline
  {
    Run run;
    play(run, true);
    fail_if(run.timed_out);
    fail_unless(run.error != nullptr, "no ERROR offline (the cut came too late to test anything?)");
    fail_unless(strstr(run.error->message, "segment 3") != nullptr, "%s", run.error->message);
    Bytes head = concat({track.segments[0], track.segments[1], track.segments[2]});
    fail_unless(run.bytes == head, "%zu bytes out, %zu expected", run.bytes.size(), head.size());
  }
}
GST_END_TEST;

// The cache's record of a whole track (track.meta) edited to fewer
// segments: online the live status is the authority and the whole track
// plays; the record is written again.
GST_START_TEST(test_edited_record) {
  TempDir dir;
  server::Track track = make_track(media::Form::Adts);
  Bytes expected = concat(track.segments);
  auto srv = start_server();
  srv->add_track("rec", track);
  const std::string props = std::string("join=bytes cache-dir=") + dir.path;
  for (int round = 0; round < 2; round++) {
    if (round == 1) {
      std::string meta_path = dir.track("rec") + "/track.meta";
      Bytes meta = read_file(meta_path);
      std::string text(meta.begin(), meta.end());
      size_t at = text.find("total=4");
      fail_unless(at != std::string::npos, "%s", text.c_str());
      text.replace(at, 7, "total=3");
      fail_unless(g_file_set_contents(meta_path.c_str(), text.c_str(), -1, nullptr));
    }
    GstElement *p = make_pipeline(srv->base_url(), "rec", props, "appsink name=sink sync=false");
    Run run;
    run_pipeline(p, run, 30);
    gst_object_unref(p);
    fail_unless(run.eos && !run.error, "round %d: %s", round,
                run.error ? run.error->message : "no EOS");
    fail_unless(run.bytes == expected, "round %d: %zu bytes, the track has %zu", round,
                run.bytes.size(), expected.size());
  }
  Bytes meta = read_file(dir.track("rec") + "/track.meta");
  fail_unless(std::string(meta.begin(), meta.end()).find("total=4") != std::string::npos,
              "the record was not corrected");
}
GST_END_TEST;

static Suite *cachesrc_suite() {
  Suite *s = suite_create("cachesrc");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_replay_offline);
  tcase_add_test(tc, test_corrupted_entry);
  tcase_add_test(tc, test_edited_record);
  tcase_add_test(tc, test_truncated_during_playback);
  tcase_add_test(tc, test_killed_mid_segment);
  tcase_add_test(tc, test_two_pipelines_one_cache);
  tcase_add_test(tc, test_unusable_cache);
  tcase_add_test(tc, test_eviction);
  return s;
}

GST_CHECK_MAIN(cachesrc);
