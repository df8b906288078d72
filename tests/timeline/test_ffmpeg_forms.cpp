// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — join=timeline on segments made by ffmpeg (`-f segment`, the
 * way real backends cut): the Xiph forms (Opus in WebM and Ogg, Vorbis in
 * Ogg), tags and hostile middle segments.
 * Each buffer has a pts and a duration, continuous to 1 us; the decoded PCM
 * equals the decode of the unsegmented file of the same encode (sample for
 * sample where the decoder is deterministic and the segments keep the
 * file's trims); the output muxes into a file of the right duration (see
 * ffmpeg.h; docs/element.md, "Tested forms").
 */
#include "ffmpeg.h"

using namespace segdl;
using namespace segdl::test;
using namespace segdl::test::ff;

namespace {

const Form kForms[] = {
    {"opus/webm",
     {"-c:a", "libopus", "-b:a", "48k"},
     "webm",
     "webm",
     "audio/webm",
     false,
     7.5,
     48000,
     true},
    {"opus/ogg",
     {"-c:a", "libopus", "-b:a", "48k"},
     "ogg",
     "ogg",
     "audio/ogg",
     false,
     7.5,
     48000,
     true},
    {"vorbis/ogg",
     {"-c:a", "libvorbis", "-q:a", "2"},
     "ogg",
     "ogg",
     "audio/ogg",
     false,
     7.5,
     44100,
     true},
};

}  // namespace

GST_START_TEST(test_stamps) {
  check_form_stamps(kForms[__i__]);
}
GST_END_TEST;

GST_START_TEST(test_pcm) {
  check_form_pcm(kForms[__i__]);
}
GST_END_TEST;

// Vorbis cut the way a backend cuts: the whole file encoded once, then cut
// with `-c copy` at 15 s and 45 s (ffmpeg's copy shifts every granule by
// 128, the last page's trim stays). Every buffer's pts and duration
// continue, and the track ends at the whole file's last granule: the end
// trim is on the last frame as GstAudioClippingMeta (duration without it).
// The decoded PCM equals the whole file's up to there (vorbisdec does not
// apply the clipping, see test_pcm).
GST_START_TEST(test_vorbis_cut) {
  Form f = kForms[2];
  f.seconds = 50;
  f.rate = 22050;
  Fixture fx(f, false);  // the source and the whole file, no -f segment cut
  std::string cut = fx.dir() + "/cut_%d.ogg";
  run_ffmpeg({"-i", fx.whole(), "-c", "copy", "-f", "segment", "-segment_times", "15,45",
              "-segment_format", "ogg", cut});
  server::Track t;
  for (int i = 0; i < 3; i++)
    t.segments.push_back(read_file(fx.dir() + "/cut_" + std::to_string(i) + ".ogg"));
  fail_if(exists(fx.dir() + "/cut_3.ogg"));
  t.mime_type = "audio/ogg";
  t.first_segment_duration = 15;
  t.segment_duration = 30;
  int64_t granule = last_granule(read_file(fx.whole()));
  fail_unless(granule == int64_t(f.seconds * f.rate), "whole file ends at %" G_GINT64_FORMAT,
              granule);
  auto srv = start_server();
  srv->add_track("v", t);
  Run run;
  GstElement *p = make_pipeline(srv->base_url(), "v", "", "appsink name=sink sync=false");
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  check_stamps(run);
  GstClockTime end = run.pts.back() + run.durations.back();
  GstClockTime want = gst_util_uint64_scale_round(uint64_t(granule), GST_SECOND, uint64_t(f.rate));
  fail_unless(GST_CLOCK_DIFF(want, end) >= -1000 && GST_CLOCK_DIFF(want, end) <= 1000,
              "the track ends at %" GST_TIME_FORMAT ", its last granule at %" GST_TIME_FORMAT,
              GST_TIME_ARGS(end), GST_TIME_ARGS(want));
  Run ref, out;
  decode_file(fx.whole(), ref);
  p = make_pipeline(srv->base_url(), "v", "", kPcm);
  run_pipeline(p, out, 60);
  gst_object_unref(p);
  srv->stop();
  fail_unless(out.eos);
  size_t got = out.bytes.size() / 4;
  fail_unless(got >= size_t(granule) && got - size_t(granule) < 1024, "%zu samples decoded", got);
  int64_t at = first_difference(ref.bytes, out.bytes);
  fail_unless(at < 0 || at >= granule, "decoded PCM differs from sample %" G_GINT64_FORMAT, at);
}
GST_END_TEST;

// A middle segment that gives no audio: garbage, an HTML page served with
// the audio Content-Type, an empty body.
static Bytes hostile_body(int kind) {
  if (kind == 0) {
    Bytes b(20000);
    guint32 x = 12345;
    for (auto &c : b) c = uint8_t((x = x * 1103515245u + 12345u) >> 24);
    return b;
  }
  if (kind == 1) {
    std::string html = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n";
    return Bytes(html.begin(), html.end());
  }
  return Bytes();
}
static const char *const kHostile[] = {"garbage", "html", "empty"};

// missing-segment=error (and fallback without a fallback URL): an error
// that names the segment, never an EOS with the audio shifted.
GST_START_TEST(test_bad_segment_error) {
  Fixture fx(kForms[0]);
  server::Track t = fx.track();
  t.segments[1] = hostile_body(__i__);
  auto srv = start_server();
  srv->add_track("h", t);
  for (const char *policy : {"error", "fallback"}) {
    GstElement *p = make_pipeline(srv->base_url(), "h", std::string("missing-segment=") + policy,
                                  "appsink name=sink sync=false");
    Run run;
    run_pipeline(p, run, 60);
    gst_object_unref(p);
    fail_if(run.eos, "%s, %s: EOS", kHostile[__i__], policy);
    fail_unless(run.error != nullptr, "%s, %s: no error", kHostile[__i__], policy);
    // STREAM/DEMUX from the timeline, or the engine's own error for a body
    // it refuses (an empty one): either names segment 1.
    fail_unless(g_error_matches(run.error, GST_STREAM_ERROR, GST_STREAM_ERROR_DEMUX) ||
                    run.error->domain == GST_RESOURCE_ERROR,
                "%s: %s", kHostile[__i__], run.error->message);
    g_autofree gchar *lower = g_ascii_strdown(run.error->message, -1);
    fail_unless(strstr(lower, "segment 1") != nullptr, "%s: '%s'", kHostile[__i__],
                run.error->message);
    // Segment 0 played before.
    fail_unless(!run.pts.empty() && run.pts.back() < GST_SECOND * 3 / 2);
  }
  srv->stop();
}
GST_END_TEST;

// missing-segment=gap: a WARNING, a gap up to where segment 2 begins, and
// segment 2's audio at its place.
GST_START_TEST(test_bad_segment_gap) {
  Fixture fx(kForms[0]);
  server::Track t = fx.track();
  t.segments[1] = hostile_body(__i__);
  Run run;
  {
    auto srv = start_server();
    srv->add_track("h", t);
    GstElement *p = make_pipeline(
        srv->base_url(), "h", "missing-segment=gap first-segment-duration=1.5 segment-duration=3.0",
        "appsink name=sink sync=false");
    run_pipeline(p, run, 60);
    gst_object_unref(p);
    srv->stop();
  }
  fail_unless(run.eos && !run.error, "%s: %s", kHostile[__i__],
              run.error ? run.error->message : "no EOS");
  bool warned = false;
  for (const std::string &w : run.warnings)
    if (w.find("Segment 1 is missing") != std::string::npos) warned = true;
  fail_unless(warned, "%s: no WARNING about segment 1", kHostile[__i__]);
  size_t jump = 0;
  for (size_t i = 1; i < run.pts.size(); i++)
    if (run.pts[i] != run.pts[i - 1] + run.durations[i - 1]) {
      fail_unless(jump == 0, "%s: more than one jump", kHostile[__i__]);
      jump = i;
    }
  fail_unless(jump > 0, "%s: no gap", kHostile[__i__]);
  fail_unless_equals_uint64(run.pts[jump], 4500 * GST_MSECOND);
  fail_unless(run.discont[jump]);
}
GST_END_TEST;

// The container tags of segment 0 (title, artist) go downstream as a TAG
// event: the sink posts them.
GST_START_TEST(test_tags) {
  Form f = kForms[0];
  f.codec.insert(f.codec.end(), {"-metadata", "title=Segdl Tune", "-metadata", "artist=Tester"});
  Fixture fx(f);
  auto srv = start_server();
  srv->add_track("t", fx.track());
  GstElement *p = make_pipeline(srv->base_url(), "t", "", "fakesink sync=false");
  GstBus *bus = gst_element_get_bus(p);
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  gchar *title = nullptr, *artist = nullptr;
  bool eos = false;
  while (!eos) {
    GstMessage *m = gst_bus_timed_pop_filtered(
        bus, 30 * GST_SECOND,
        GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_TAG));
    fail_unless(m != nullptr, "no EOS in time");
    fail_if(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR);
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_TAG) {
      GstTagList *tags = nullptr;
      gst_message_parse_tag(m, &tags);
      if (!title) gst_tag_list_get_string(tags, GST_TAG_TITLE, &title);
      if (!artist) gst_tag_list_get_string(tags, GST_TAG_ARTIST, &artist);
      gst_tag_list_unref(tags);
    }
    eos = GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
    gst_message_unref(m);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(p);
  srv->stop();
  fail_unless_equals_string(title, "Segdl Tune");
  fail_unless_equals_string(artist, "Tester");
  g_free(title);
  g_free(artist);
}
GST_END_TEST;

// Opus/WebM `! matroskamux`, Opus/Ogg and Vorbis/Ogg `! oggmux`.
GST_START_TEST(test_mux) {
  const char *const muxes[][2] = {{"matroskamux", "mkv"}, {"oggmux", "ogg"}, {"oggmux", "ogg"}};
  check_form_mux(kForms[__i__], muxes[__i__][0], muxes[__i__][1]);
}
GST_END_TEST;

static Suite *ffmpeg_forms_suite() {
  Suite *s = suite_create("ffmpeg-forms");
  TCase *tc = tcase_create("forms");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(tc, test_stamps, 0, G_N_ELEMENTS(kForms));
  tcase_add_loop_test(tc, test_pcm, 0, G_N_ELEMENTS(kForms));
  tcase_add_test(tc, test_vorbis_cut);
  tcase_add_loop_test(tc, test_bad_segment_error, 0, G_N_ELEMENTS(kHostile));
  tcase_add_loop_test(tc, test_bad_segment_gap, 0, G_N_ELEMENTS(kHostile));
  tcase_add_test(tc, test_tags);
  tcase_add_loop_test(tc, test_mux, 0, G_N_ELEMENTS(kForms));
  return s;
}

int main(int argc, char **argv) {
  return run_suite(argc, argv, ffmpeg_forms_suite, "ffmpeg-forms", __FILE__);
}
