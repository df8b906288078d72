// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — join=timeline on segments made by ffmpeg (`-f segment`, the
 * way real backends cut): the MPEG forms (MP3 with ID3 + Info per
 * segment and encoded per segment, AAC in ADTS and in MPEG-TS), and the
 * seeks and the mux of AAC in m4a.
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
    {"mp3 (ID3 + Info per segment)",
     {"-c:a", "libmp3lame", "-b:a", "64k"},
     "mp3",
     "mp3",
     "audio/mpeg",
     false,
     7.5,
     44100,
     true},
    {"aac/adts",
     {"-c:a", "aac", "-b:a", "64k"},
     "adts",
     "aac",
     "audio/aac",
     false,
     7.5,
     44100,
     true},
    {"aac/mpegts",
     {"-c:a", "aac", "-b:a", "64k"},
     "mpegts",
     "ts",
     "video/mp2t",
     false,
     7.5,
     44100,
     false},
    // The seeks and the mux of AAC in m4a (here to balance the suites;
    // test_ffmpeg_forms_m4a.cpp has the m4a forms).
    {"aac/m4a kept (moov last)",
     {"-c:a", "aac", "-b:a", "64k"},
     "mp4",
     "m4a",
     "audio/mp4",
     false,
     7.5,
     44100,
     false},
};
const size_t kMpegForms = 3;  // the forms of this suite's stamps and PCM checks

}  // namespace

GST_START_TEST(test_stamps) {
  check_form_stamps(kForms[__i__]);
}
GST_END_TEST;

GST_START_TEST(test_pcm) {
  check_form_pcm(kForms[__i__]);
}
GST_END_TEST;

// MP3 segments encoded one by one (1.5 s, 3 s, 3 s of the source, each its
// own ID3v2 + Info/LAME tag with delay 576 and its padding): each segment's
// delay and padding apply, so the output is the concatenation of each
// file's gapless decode (GStreamer's decode of it with the LAME trims),
// the track lasts exactly the source, and the samples are those to one
// 16-bit step.
GST_START_TEST(test_mp3_each_encoded) {
  Fixture fx(kForms[0]);
  const double starts[] = {0, 1.5, 4.5, 7.5};
  server::Track t;
  Bytes want;
  for (int i = 0; i < 3; i++) {
    std::string path = fx.dir() + "/each_" + std::to_string(i) + ".mp3";
    run_ffmpeg({"-ss", std::to_string(starts[i]), "-t", std::to_string(starts[i + 1] - starts[i]),
                "-i", fx.source(), "-c:a", "libmp3lame", "-b:a", "64k", path});
    t.segments.push_back(read_file(path));
    Run dec;
    decode_file(path, dec);
    size_t from = 0, count = 0;
    presented(kForms[0], path, dec.bytes.size() / 4, from, count);
    want.insert(want.end(), dec.bytes.begin() + 4 * from, dec.bytes.begin() + 4 * (from + count));
  }
  t.mime_type = "audio/mpeg";
  t.first_segment_duration = 1.5;
  t.segment_duration = 3;
  auto srv = start_server();
  srv->add_track("e", t);
  Run stamps, out;
  GstElement *p = make_pipeline(srv->base_url(), "e", "", "appsink name=sink sync=false");
  run_pipeline(p, stamps, 60);
  gst_object_unref(p);
  check_stamps(stamps);
  p = make_pipeline(srv->base_url(), "e", "", kPcm);
  run_pipeline(p, out, 60);
  gst_object_unref(p);
  srv->stop();
  fail_unless(out.eos);
  size_t source = size_t(kForms[0].rate * 7.5);
  fail_unless_equals_uint64(want.size() / 4, source);
  fail_unless_equals_uint64(out.bytes.size() / 4, source);
  GstClockTime end = stamps.pts.back() + stamps.durations.back();
  fail_unless(GST_CLOCK_DIFF(GstClockTime(7.5 * GST_SECOND), end) <= 1000 &&
                  GST_CLOCK_DIFF(GstClockTime(7.5 * GST_SECOND), end) >= -1000,
              "ends at %" GST_TIME_FORMAT, GST_TIME_ARGS(end));
  // Within one 16-bit step (mpg123audiodec decodes to S16): an independent
  // decode starts its synthesis ring buffer at another phase than the
  // continuous one, which rounds a sample now and then the other way. A
  // sample off in time would differ by far more.
  const float *a = reinterpret_cast<const float *>(out.bytes.data());
  const float *b = reinterpret_cast<const float *>(want.data());
  for (size_t i = 0; i < source; i++)
    fail_unless(std::fabs(a[i] - b[i]) <= 1.0f / 32768 + 1e-7f, "sample %zu is %f, not %f", i,
                double(a[i]), double(b[i]));
}
GST_END_TEST;

// MP3 and AAC/m4a `! mp4mux`.
GST_START_TEST(test_mux) {
  check_form_mux(kForms[__i__ == 0 ? 0 : 3], "mp4mux", "m4a");
}
GST_END_TEST;

// Accurate seeks back once played, within 1e-4: after a flush avdec_aac
// does not restart from exactly the state the continuous decode had
// (~1e-5 on the first samples).
GST_START_TEST(test_seek_pcm) {
  const double targets[] = {2.3, 5.1};
  check_seek_pcm(kForms[3], targets[__i__], 1e-4);
}
GST_END_TEST;

static Suite *ffmpeg_forms_suite() {
  Suite *s = suite_create("ffmpeg-forms-mpeg");
  TCase *tc = tcase_create("forms");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(tc, test_stamps, 0, kMpegForms);
  tcase_add_loop_test(tc, test_pcm, 0, kMpegForms);
  tcase_add_test(tc, test_mp3_each_encoded);
  tcase_add_loop_test(tc, test_mux, 0, 2);
  tcase_add_loop_test(tc, test_seek_pcm, 0, 2);
  return s;
}

int main(int argc, char **argv) {
  return run_suite(argc, argv, ffmpeg_forms_suite, "ffmpeg-forms-mpeg", __FILE__);
}
