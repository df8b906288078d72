// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — fallback-uri: when the segmented backend fails for good, the
 * full-file URL takes over from the position reached, with a WARNING; the
 * joined output is the unsegmented encode, nothing repeated or missing.
 */
#include "harness.h"

#include "common/segmenter.h"

using namespace segdl;
using namespace segdl::test;
using media::Codec;
using media::Container;
using media::TimestampMode;

namespace {

struct Case {
  const char *name;
  Codec codec;
  Container container;
  const char *fault;  // applied for good
  int64_t segment;    // -1: every segment
  bool status_down;   // the status fails too
};

const Case kCases[] = {
    {"aac/m4a, before the first buffer", Codec::Aac, Container::M4a, "http500", -1, true},
    {"aac/m4a, in the middle", Codec::Aac, Container::M4a, "http500", 2, false},
    {"aac/m4a, broken segment", Codec::Aac, Container::M4a, "reset", 1, false},
    {"opus/ogg, in the middle", Codec::Opus, Container::Ogg, "http500", 1, false},
    {"vorbis/webm, in the middle", Codec::Vorbis, Container::WebM, "http500", 2, false},
};

}  // namespace

GST_START_TEST(test_fallback_timeline) {
  const Case &c = kCases[__i__];
  media::Packets pk;
  std::string error;
  fail_unless(media::encode_packets(c.codec, 7.5, pk, error), "%s", error.c_str());
  Bytes whole;
  std::vector<Bytes> segs;
  fail_unless(media::whole_file(pk, c.container, whole, error), "%s", error.c_str());
  fail_unless(media::segment_files(pk, c.container, TimestampMode::Reset, 1.5, 3.0, segs, error),
              "%s", error.c_str());
  media::ParsedFrames ref;
  fail_unless(media::parse_frames(whole, ref, error), "%s", error.c_str());

  auto srv = start_server();
  server::Track t;
  t.segments = segs;
  t.full = whole;
  srv->add_track("fb", t);
  srv->add_fault(fault(c.fault, "fb", c.segment, -1));
  if (c.status_down) {
    srv->add_fault(fault("status500", "fb", -1, -1));
  }
  std::string props = "max-retries=1 stall-timeout=2 fallback-uri=" + srv->base_url() + "/full/fb";
  GstElement *p = make_pipeline(srv->base_url(), "fb", props, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 40);
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstStructure *st = nullptr;
  g_object_get(src, "stats", &st, nullptr);
  gboolean fell_back = FALSE;
  gst_structure_get_boolean(st, "fallback", &fell_back);
  gst_structure_free(st);
  gst_object_unref(src);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s: %s", c.name, run.error ? run.error->message : "no EOS");
  fail_unless(fell_back, "%s: no fallback", c.name);
  bool warned = false;
  for (const std::string &w : run.warnings) warned |= w.find("fallback") != std::string::npos;
  fail_unless(warned, "%s: no WARNING about the fallback", c.name);
  std::vector<size_t> frames;
  for (size_t i = 0; i < run.frames.size(); i++)
    if (!run.header[i]) frames.push_back(i);
  fail_unless(frames.size() == ref.frames.size(), "%s: %zu frames, the file has %zu", c.name,
              frames.size(), ref.frames.size());
  for (size_t k = 0; k < frames.size(); k++)
    fail_unless(run.frames[frames[k]] == ref.frames[k].data, "%s: frame %zu differs", c.name, k);
  for (size_t k = 1; k < frames.size(); k++)
    fail_unless(run.pts[frames[k]] == run.pts[frames[k - 1]] + run.durations[frames[k - 1]],
                "%s: gap before frame %zu", c.name, k);
}
GST_END_TEST;

// join=bytes: the fallback (the concatenation) continues at the byte reached.
GST_START_TEST(test_fallback_bytes) {
  auto [srv, track, expected] = serve_adts({}, "fb");  // Track::full empty = the concatenation
  srv->add_fault(fault("truncate", "fb", 2, -1));
  std::string props = "join=bytes max-retries=1 fallback-uri=" + srv->base_url() + "/stream?v=fb";
  GstElement *p = make_pipeline(srv->base_url(), "fb", props, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 40);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless_equals_uint64(run.bytes.size(), expected.size());
  fail_unless(run.bytes == expected);
}
GST_END_TEST;

// A fallback that fails too: a clear ERROR, bounded.
GST_START_TEST(test_fallback_fails) {
  auto srv = start_server();
  srv->add_track("fb", make_track(media::Form::Adts));
  srv->add_fault(fault("http500", "fb", 1, -1));
  std::string props = "max-retries=1 fallback-uri=" + srv->base_url() + "/full/nosuchtrack";
  GstElement *p = make_pipeline(srv->base_url(), "fb", props, "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_unless(run.error != nullptr);
  fail_unless(run.error->domain == GST_RESOURCE_ERROR);
  fail_unless(strstr(run.error->message, "fallback") != nullptr, "%s", run.error->message);
}
GST_END_TEST;

// missing-segment=gap: a segment gone for good leaves silence up to where
// the next one begins, with a WARNING; the rest plays.
GST_START_TEST(test_missing_segment_gap) {
  media::Packets pk;
  std::string error;
  fail_unless(media::encode_packets(Codec::Aac, 7.5, pk, error), "%s", error.c_str());
  std::vector<Bytes> segs;
  fail_unless(media::segment_files(pk, Container::M4a, TimestampMode::Reset, 1.5, 3.0, segs, error),
              "%s", error.c_str());
  media::ParsedFrames f0, f2;
  fail_unless(media::parse_frames(segs[0], f0, error) && media::parse_frames(segs[2], f2, error));
  server::Options o;
  o.status_style = server::StatusStyle::Rich;
  auto srv = start_server(o);
  server::Track t;
  t.segments = segs;
  t.first_segment_duration = 1.5;
  t.segment_duration = 3.0;
  srv->add_track("gap", t);
  srv->add_fault(fault("http500", "gap", 1, -1));
  GstElement *p = make_pipeline(srv->base_url(), "gap", "max-retries=1 missing-segment=gap",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstStructure *st = nullptr;
  g_object_get(src, "stats", &st, nullptr);
  gint64 gaps = 0;
  gboolean complete = TRUE;
  gst_structure_get_int64(st, "gaps", &gaps);
  fail_unless(gst_structure_get_boolean(st, "complete", &complete));
  fail_if(complete, "a track with a gap reported complete");
  gst_structure_free(st);
  gst_object_unref(src);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless_equals_int(gaps, 1);
  bool warned = false;
  for (const std::string &w : run.warnings) warned |= w.find("Segment 1 is missing") == 0;
  fail_unless(warned, "no WARNING naming the missing segment");
  fail_unless_equals_uint64(run.frames.size(), f0.frames.size() + f2.frames.size());
  size_t k = f0.frames.size();  // the first frame after the gap
  fail_unless(run.frames[k] == f2.frames[0].data);
  fail_unless_equals_uint64(run.pts[k], 4500 * GST_MSECOND);
  fail_unless(run.discont[k], "no DISCONT after the gap");
}
GST_END_TEST;

// missing-segment=error: an ERROR even with a fallback at hand.
GST_START_TEST(test_missing_segment_error) {
  auto srv = start_server();
  srv->add_track("err", make_track(media::Form::Adts));
  srv->add_fault(fault("http500", "err", 1, -1));
  std::string props =
      "max-retries=1 missing-segment=error fallback-uri=" + srv->base_url() + "/full/err";
  GstElement *p = make_pipeline(srv->base_url(), "err", props, "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_unless(run.error != nullptr);
  fail_unless(strstr(run.error->message, "segment 1") != nullptr, "%s", run.error->message);
  for (const auto &r : srv->requests()) fail_if(r.path == "/full/err", "the fallback was used");
}
GST_END_TEST;

// A case whose codec or container has no GStreamer element here is not
// added (it would pass without checking anything); `whole` tells main().
static Suite *fallback_suite(bool &whole) {
  Suite *s = suite_create("fallback");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  whole = true;
  for (int i = 0; i < static_cast<int>(G_N_ELEMENTS(kCases)); i++) {
    if (media::available(kCases[i].codec, kCases[i].container)) {
      tcase_add_loop_test(tc, test_fallback_timeline, i, i + 1);
    } else {
      g_print("SKIP: fallback %s (GStreamer elements missing)\n", kCases[i].name);
      whole = false;
    }
  }
  tcase_add_test(tc, test_fallback_bytes);
  tcase_add_test(tc, test_fallback_fails);
  tcase_add_test(tc, test_missing_segment_gap);
  tcase_add_test(tc, test_missing_segment_error);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  bool whole = true;
  Suite *s = fallback_suite(whole);
  const int failed = gst_check_run_suite(s, "fallback", __FILE__);
  // What ran passed, but a case could not run: the suite is skipped (77).
  return failed ? 1 : whole ? 0 : 77;
}
