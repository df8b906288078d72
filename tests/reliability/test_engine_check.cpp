// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the engine's check of every segment (check_segment()),
 * against the scripted fake Fetcher of downloader_rig.h: a segment that is
 * not audio is never handed to the consumer nor cached, is fetched once
 * more, then handled by missing-segment; a segment the consumer rejects
 * (reject_segment()) is fetched again, then missing.
 */
#include "downloader_rig.h"

#include "segdl/cache.h"

#include <glib/gstdio.h>

namespace {

// Audio as the check sees it: an MP4 file (ftyp, then mdat holding
// made-up bytes), `size` bytes in all.
std::string audio_body(int64_t seg, size_t size) {
  std::string payload = make_body(seg, size - 24);
  auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  };
  return be32(16) + "ftypM4A " + be32(0) + be32(uint32_t(8 + payload.size())) + "mdat" + payload;
}

const char *kHtml = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";

DownloaderConfig check_config(MissingSegment policy) {
  DownloaderConfig c = test_config();
  c.check_segments = true;
  c.missing_segment = policy;
  return c;
}

// Retry and cache WARNINGs about `segment` whose cause has `text`.
int warnings_about(const Drained &d, int64_t segment, const char *text) {
  int n = 0;
  for (const EngineEvent &ev : d.events)
    if (ev.kind == EngineEvent::Kind::Warning && ev.warning.segment == segment &&
        ev.warning.kind != EngineWarning::Kind::Fallback &&
        ev.warning.cause.find(text) != std::string::npos)
      n++;
  return n;
}

// A temporary cache folder, removed with everything in it.
struct TempDir {
  TempDir() : path(g_dir_make_tmp("segdl-check-XXXXXX", nullptr)) {}
  ~TempDir() {
    gchar *argv[] = {g_strdup("rm"), g_strdup("-rf"), g_strdup(path), nullptr};
    g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr,
                 nullptr, nullptr);
    for (gchar *a : argv) g_free(a);
    g_free(path);
  }
  gchar *path;
};

// What the cache holds for segment n ("" when nothing).
std::string cached(const DownloaderConfig &cfg, int64_t n) {
  Cache cache(cfg.cache);
  std::string error;
  fail_unless(cache.open_track(cfg.video_id, error), "%s", error.c_str());
  GBytes *b = cache.lookup(n);
  if (!b) return "";
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(b, &size));
  std::string out(data, size);
  g_bytes_unref(b);
  return out;
}

struct BadCase {
  const char *what;
  std::string body;
  const char *why;
};

const BadCase &bad_case(int i) {
  static const BadCase kCases[] = {
      {"html", kHtml, "an HTML page"},
      {"random", make_body(9, 6000), "not audio"},
      {"json", R"({"error":"no such segment"})", "a JSON document"},
  };
  return kCases[i];
}

}  // namespace

// A middle segment that is never audio, for each policy: two copies asked,
// nothing of it handed over or cached, one WARNING, then an ERROR naming
// it (error), a gap (gap: complete stays false), or the fallback file.
static void run_bad_middle(const BadCase &bad, MissingSegment policy) {
  TempDir dir;
  DownloaderConfig cfg = check_config(policy);
  cfg.cache.dir = dir.path;
  cfg.fallback_uri = policy == MissingSegment::Fallback ? "http://fake.invalid/whole.m4a" : "";
  Rig rig(cfg);
  std::string s0 = audio_body(0, 3000), s2 = audio_body(2, 2000), whole = audio_body(7, 9000);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(bad.body)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.server.script(cfg.fallback_uri, {ok(whole)});
  rig.start();
  Drained d = drain(*rig.dl);
  fail_unless(d.segments.count(1) == 0, "%s: %zu bytes of the bad segment handed over", bad.what,
              d.segments.count(1) ? d.segments[1].size() : size_t(0));
  fail_unless_equals_int(rig.server.log().count(rig.seg(1)), 2);
  fail_unless_equals_int(warnings_about(d, 1, "not audio"), 1);
  EngineStats st = rig.dl->stats();
  switch (policy) {
    case MissingSegment::Error:
      check_end(d, Kind::Error);
      fail_unless_equals_string(error_kind_name(d.error.kind), "not-audio");
      fail_unless_equals_int64(d.error.segment, 1);
      fail_unless(contains(d.error.message, "segment 1 is not audio"), "%s",
                  d.error.message.c_str());
      fail_unless(contains(d.error.message, bad.why), "%s lacks %s", d.error.message.c_str(),
                  bad.why);
      check_bytes(d.bytes, s0);
      break;
    case MissingSegment::Gap: {
      // drain() stops at the Gap; the rest follows it.
      check_end(d, Kind::Gap);
      fail_unless_equals_int64(d.error.segment, 1);
      Drained rest = drain(*rig.dl);
      check_end(rest, Kind::Eos);
      check_bytes(d.bytes + rest.bytes, s0 + s2);
      st = rig.dl->stats();
      fail_unless(!st.complete, "complete although segment 1 is a gap");
      fail_unless_equals_int64(st.gaps, 1);
      break;
    }
    case MissingSegment::Fallback:
      check_end(d, Kind::Eos);
      check_bytes(d.segments[kFallbackSegment], whole);
      fail_unless(st.fallback);
      break;
  }
  rig.finish();
  fail_unless(cached(cfg, 0) == s0, "%s: segment 0 not cached", bad.what);
  fail_unless(cached(cfg, 1).empty(), "%s: the bad bytes are in the cache", bad.what);
}

GST_START_TEST(test_bad_middle_error) {
  run_bad_middle(bad_case(__i__), MissingSegment::Error);
}
GST_END_TEST;

GST_START_TEST(test_bad_middle_gap) {
  run_bad_middle(bad_case(__i__), MissingSegment::Gap);
}
GST_END_TEST;

GST_START_TEST(test_bad_middle_fallback) {
  run_bad_middle(bad_case(__i__), MissingSegment::Fallback);
}
GST_END_TEST;

// One bad copy, then a good one: the good one plays and is cached.
GST_START_TEST(test_bad_then_good) {
  Rig rig(check_config(MissingSegment::Error));
  std::string s0 = audio_body(0, 3000), s1 = audio_body(1, 5000), s2 = audio_body(2, 100);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(kHtml), ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();
  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);
  fail_unless_equals_int(warnings_about(d, 1, "an HTML page"), 1);
  EngineStats st = rig.dl->stats();
  fail_unless(st.complete);
  fail_unless_equals_int64(st.retries, 1);
  rig.finish();
}
GST_END_TEST;

// A segment of another form than segment 0's, and an empty body, are
// refused too.
GST_START_TEST(test_other_form_and_empty) {
  Rig rig(check_config(MissingSegment::Error));
  std::string s0 = audio_body(0, 3000);
  std::string ogg = "OggS" + std::string(1, '\0') + std::string(1, '\0') + make_body(1, 400);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(ogg), ok("")});
  rig.server.script(rig.seg(2), {ok(audio_body(2, 100))});
  rig.start();
  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  fail_unless_equals_int(warnings_about(d, 1, "Ogg in a track whose segment 0 is MP4"), 1);
  fail_unless(contains(d.error.message, "empty body"), "%s", d.error.message.c_str());
  check_bytes(d.bytes, s0);
  rig.finish();
}
GST_END_TEST;

// A cached copy that is not audio (written before the check existed, or
// by another program with a matching checksum) is removed and fetched
// again; the network's good copy replaces it.
GST_START_TEST(test_bad_cached_copy) {
  TempDir dir;
  DownloaderConfig cfg = check_config(MissingSegment::Error);
  cfg.cache.dir = dir.path;
  {
    Cache cache(cfg.cache);
    std::string error;
    fail_unless(cache.open_track(cfg.video_id, error), "%s", error.c_str());
    std::unique_ptr<SegmentWriter> w = cache.begin(1, error);
    fail_unless(w && w->append(kHtml, strlen(kHtml), error), "%s", error.c_str());
    SegmentInfo info;
    info.size = int64_t(strlen(kHtml));
    fail_unless(w->commit(info, error), "%s", error.c_str());
  }
  fail_unless(cached(cfg, 1) == kHtml);
  Rig rig(cfg);
  std::string s0 = audio_body(0, 3000), s1 = audio_body(1, 4000), s2 = audio_body(2, 500);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();
  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);
  fail_unless_equals_int(rig.server.log().count(rig.seg(1)), 1);
  fail_unless_equals_int(warnings_about(d, 1, "cached segment 1 is not audio"), 1);
  rig.finish();
  fail_unless(cached(cfg, 1) == s1, "the cache does not hold the good copy");
}
GST_END_TEST;

// The consumer rejects segment 1 (its bytes passed the check but gave no
// audio): it comes again from the network, from its first byte; rejected
// again, it is a gap (missing-segment=gap), and the track is not complete.
GST_START_TEST(test_reject_segment) {
  Rig rig(check_config(MissingSegment::Gap));
  std::string s0 = audio_body(0, 3000), s1 = audio_body(1, 4000), s2 = audio_body(2, 500);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();
  std::map<int64_t, std::string> got;
  int rejects = 0;
  bool gap = false, eos = false;
  auto deadline = Clock::now() + 30000ms;
  while (!eos && Clock::now() < deadline) {
    Downloader::Item item = rig.dl->pop(100ms);
    rig.dl->take_events();
    if (item.kind == Kind::Timeout) continue;
    if (item.kind == Kind::Gap) {
      fail_unless_equals_int64(item.segment, 1);
      fail_unless_equals_string(error_kind_name(item.error.kind), "not-audio");
      gap = true;
      continue;
    }
    if (item.kind == Kind::Eos) {
      eos = true;
      continue;
    }
    fail_unless(item.kind == Kind::Data, "%s", kind_name(item.kind));
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(item.bytes, &size));
    if (item.segment == 1 && item.segment_offset == 0) got[1].clear();  // delivered again
    fail_unless_equals_uint64(item.segment_offset, got[item.segment].size());
    got[item.segment].append(data, size);
    g_bytes_unref(item.bytes);
    if (item.segment == 1 && got[1].size() == s1.size() && rejects < 2) {
      if (rejects == 0) check_bytes(got[1], s1);
      rejects++;
      rig.dl->reject_segment(1, "no frame");
    }
  }
  fail_unless(eos && gap, "eos %d gap %d", eos, gap);
  fail_unless_equals_int(rejects, 2);
  fail_unless_equals_int(rig.server.log().count(rig.seg(1)), 2);
  check_bytes(got[2], s2);
  EngineStats st = rig.dl->stats();
  fail_unless(!st.complete);
  fail_unless_equals_int64(st.gaps, 1);
  rig.finish();
}
GST_END_TEST;

static Suite *engine_check_suite() {
  Suite *s = suite_create("engine-check");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(tc, test_bad_middle_error, 0, 3);
  tcase_add_loop_test(tc, test_bad_middle_gap, 0, 3);
  tcase_add_loop_test(tc, test_bad_middle_fallback, 0, 3);
  tcase_add_test(tc, test_bad_then_good);
  tcase_add_test(tc, test_other_form_and_empty);
  tcase_add_test(tc, test_bad_cached_copy);
  tcase_add_test(tc, test_reject_segment);
  return s;
}

GST_CHECK_MAIN(engine_check)
