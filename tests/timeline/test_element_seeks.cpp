// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdlsrc's seeks (join=timeline) on segments made by
 * ffmpeg, every form: one pipeline per form, seeks at positions that are no
 * segment boundary, forwards into segments never played, backwards, near
 * the end, and back after EOS. After each accurate seek the first decoded
 * buffer is at the target, and the decoded audio from there equals the
 * unseeked decode of the same track from the target's sample (the decoder
 * got its pre-roll), exactly or within what the decoder allows (the
 * tolerances below); after a key-unit seek the first buffer is at a frame
 * start at or before the target, with the audio of that place.
 *
 * Built twice (SEEK_PART 0 and 1, half the forms each) so the two halves
 * run in parallel.
 */
#include "ffmpeg.h"

#include "common/segmenter.h"

#include <gst/app/gstappsink.h>

#include <cmath>
#include <cstring>

using namespace segdl;
using namespace segdl::test;
using namespace segdl::test::ff;

namespace {

constexpr double kSeconds = 66.0;  // 22 segments of 1.5 s + 3 s

struct SeekForm {
  Form form;
  bool fragmented;   // one fragmented MP4, cut into byte ranges at its fragments
  double tolerance;  // largest sample difference after a seek
};

// How far the decode after a seek may be from the continuous decode (a
// sample off in time differs by ~0.03 here, the chirp's slope: the lag
// check below tells the two apart). Vorbis: exact. MP3: one 16-bit step
// (mpg123audiodec decodes to integers; restarted after its pre-roll it
// rounds a sample now and then the other way). opusdec: libopus converges
// over ~0.1 s after the 0.5 s pre-roll (1.5e-3 at 7.3 s, one 16-bit step
// elsewhere). avdec_aac: ffmpeg's AAC encoder fills some bands with noise
// (PNS), which the decoder draws from a pseudo-random generator seeded
// once at its start and not reset by a flush, so after a seek those bands
// carry other noise of the same energy: within 4e-5 over the first half
// second, near the end (where the encoder uses more of it) 4.2e-3 to 5.1e-3
// (measured; it depends on where the generator stood when the decoder was
// flushed, so on how much it decoded before the seek); the same encode
// without PNS ("without PNS" below) decodes exactly.
constexpr double kVorbisTolerance = 0;
constexpr double kMp3Tolerance = 1.0 / 32768;
constexpr double kOpusTolerance = 2e-3;
constexpr double kAacTolerance = 1e-2;

// AAC in ADTS from ffmpeg's encoder, with `extra` encoder options.
Form adts(const char *name, std::vector<std::string> extra = {}) {
  Form f = {
      name, {"-c:a", "aac", "-b:a", "64k"}, "adts", "aac", "audio/aac", false, kSeconds, 44100,
      true};
  f.codec.insert(f.codec.end(), extra.begin(), extra.end());
  return f;
}

const SeekForm kForms[] = {
    {adts("aac/adts"), false, kAacTolerance},
    {{"aac/mpegts",
      {"-c:a", "aac", "-b:a", "64k"},
      "mpegts",
      "ts",
      "video/mp2t",
      false,
      kSeconds,
      44100,
      false},
     false,
     kAacTolerance},
    {{"opus/webm",
      {"-c:a", "libopus", "-b:a", "48k"},
      "webm",
      "webm",
      "audio/webm",
      false,
      kSeconds,
      48000,
      true},
     false,
     kOpusTolerance},
    {{"aac/m4a kept",
      {"-c:a", "aac", "-b:a", "64k"},
      "mp4",
      "m4a",
      "audio/mp4",
      false,
      kSeconds,
      44100,
      false},
     false,
     kAacTolerance},
    {{"aac/fmp4",
      {"-c:a", "aac", "-b:a", "64k"},
      "mp4",
      "mp4",
      "audio/mp4",
      false,
      kSeconds,
      44100,
      false},
     true,
     kAacTolerance},
    {{"opus/ogg",
      {"-c:a", "libopus", "-b:a", "48k"},
      "ogg",
      "ogg",
      "audio/ogg",
      false,
      kSeconds,
      48000,
      true},
     false,
     kOpusTolerance},
    // ffmpeg's default MP3 segments: an ID3v2 tag and a Xing/LAME Info
    // frame at the start of each.
    {{"mp3",
      {"-c:a", "libmp3lame", "-b:a", "64k"},
      "mp3",
      "mp3",
      "audio/mpeg",
      false,
      kSeconds,
      44100,
      true},
     false,
     kMp3Tolerance},
    {{"vorbis/ogg",
      {"-c:a", "libvorbis", "-q:a", "2"},
      "ogg",
      "ogg",
      "audio/ogg",
      false,
      kSeconds,
      44100,
      true},
     false,
     kVorbisTolerance},
    {{"aac/m4a reset",
      {"-c:a", "aac", "-b:a", "64k"},
      "mp4",
      "m4a",
      "audio/mp4",
      true,
      kSeconds,
      44100,
      false},
     false,
     kAacTolerance},
    // ffmpeg's AAC encoder without perceptual noise substitution (PNS):
    // the decode after a seek is exact (see kAacTolerance).
    {adts("aac/adts without PNS", {"-aac_pns", "0"}), false, 0},
};

#ifndef SEEK_PART
#define SEEK_PART 0
#endif
// This binary's half of kForms.
constexpr size_t kPartSize = (G_N_ELEMENTS(kForms) + 1) / 2;
constexpr size_t kFirstForm = SEEK_PART * kPartSize;

const char *kPulledPcm =
    "decodebin ! audioconvert ! audio/x-raw,format=F32LE,channels=1 ! "
    "appsink name=sink sync=false max-buffers=4";

// The track's segments: ffmpeg's `-f segment` cut (Fixture), or for a
// fragmented MP4 one ffmpeg file cut at its fragments (segment 0 holds the
// init, the others continue it).
server::Track make_track(const SeekForm &sf, const Fixture &fx) {
  if (!sf.fragmented) return fx.track();
  std::string path = fx.dir() + "/frag.mp4";
  std::vector<std::string> args = {"-i", fx.source()};
  args.insert(args.end(), sf.form.codec.begin(), sf.form.codec.end());
  for (const char *a :
       {"-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "500000"})
    args.push_back(a);
  args.push_back(path);
  run_ffmpeg(args);
  server::Track t = fx.track();
  std::string error;
  t.segments.clear();
  fail_unless(media::split_fragmented(read_file(path), 1.5, 3.0, t.segments, error), "%s",
              error.c_str());
  fail_unless(t.segments.size() > 10, "%zu fragments' segments", t.segments.size());
  return t;
}

// A pipeline that is pulled from: the appsink holds a few buffers and
// blocks the stream until they are taken.
class Seeker {
 public:
  Seeker(const std::string &base, const std::string &id) {
    pipeline_ = make_pipeline(base, id, "", kPulledPcm);
    sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
    bus_ = gst_element_get_bus(pipeline_);
    fail_unless(gst_element_set_state(pipeline_, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
    wait_state();
  }
  ~Seeker() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(bus_);
    gst_object_unref(sink_);
    gst_object_unref(pipeline_);
  }

  void wait_state() {
    GstStateChangeReturn r = gst_element_get_state(pipeline_, nullptr, nullptr, 20 * GST_SECOND);
    check_error();
    fail_unless(r == GST_STATE_CHANGE_SUCCESS || r == GST_STATE_CHANGE_NO_PREROLL,
                "state change: %d", int(r));
  }

  void seek(GstClockTime target, GstSeekFlags how) {
    fail_unless(gst_element_seek_simple(pipeline_, GST_FORMAT_TIME,
                                        GstSeekFlags(GST_SEEK_FLAG_FLUSH | how), gint64(target)),
                "the seek to %" GST_TIME_FORMAT " was refused", GST_TIME_ARGS(target));
    if (!playing_) {
      wait_state();
      fail_unless(gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
      playing_ = true;
    }
  }

  // Takes decoded samples until `count` (or the end); the first buffer's
  // pts in `first_pts`. True at EOS.
  bool pull(size_t count, std::vector<float> &out, GstClockTime &first_pts) {
    out.clear();
    first_pts = GST_CLOCK_TIME_NONE;
    while (out.size() < count) {
      GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), 20 * GST_SECOND);
      check_error();
      if (!s) {
        fail_unless(gst_app_sink_is_eos(GST_APP_SINK(sink_)), "no sample in 20 s");
        return true;
      }
      GstBuffer *b = gst_sample_get_buffer(s);
      if (!GST_CLOCK_TIME_IS_VALID(first_pts)) first_pts = GST_BUFFER_PTS(b);
      GstMapInfo map;
      fail_unless(gst_buffer_map(b, &map, GST_MAP_READ));
      const float *f = reinterpret_cast<const float *>(map.data);
      out.insert(out.end(), f, f + map.size / 4);
      gst_buffer_unmap(b, &map);
      gst_sample_unref(s);
    }
    return false;
  }

 private:
  void check_error() {
    GstMessage *m = gst_bus_pop_filtered(bus_, GST_MESSAGE_ERROR);
    if (!m) return;
    GError *e = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(m, &e, &dbg);
    fail("ERROR: %s (%s)", e->message, dbg ? dbg : "");
  }

  GstElement *pipeline_ = nullptr;
  GstElement *sink_ = nullptr;
  GstBus *bus_ = nullptr;
  bool playing_ = false;
};

// The sample that plays at `pts`: the last one whose pts (rounded to the
// ns, as every stamp) is at or before it, where a decoder's clipping to a
// segment that starts at `pts` begins.
size_t sample_at(GstClockTime pts, int rate) {
  uint64_t s = gst_util_uint64_scale(pts, guint64(rate), GST_SECOND);
  return size_t(gst_util_uint64_scale_round(s + 1, GST_SECOND, guint64(rate)) <= pts ? s + 1 : s);
}

// The shift (in samples, within +-max_lag) at which `got` best matches the
// reference around `from`, and the largest difference there.
int64_t best_lag(const std::vector<float> &ref, size_t from, const std::vector<float> &got,
                 int64_t max_lag, double &max_diff) {
  size_t n = std::min<size_t>(got.size(), 2048);
  int64_t best = 0;
  max_diff = 1e9;
  for (int64_t lag = -max_lag; lag <= max_lag; lag++) {
    int64_t at = int64_t(from) + lag;
    if (at < 0 || size_t(at) + n > ref.size()) continue;
    double worst = 0;
    for (size_t i = 0; i < n && worst < max_diff; i++)
      worst = std::max(worst, double(std::fabs(ref[size_t(at) + i] - got[i])));
    if (worst < max_diff) {
      max_diff = worst;
      best = lag;
    }
  }
  return best;
}

struct Step {
  double target_s;  // < 0: that far before the end
  bool key_unit;    // GST_SEEK_FLAG_KEY_UNIT | SNAP_BEFORE instead of ACCURATE
  bool to_eos;      // play on to the end
};

// Forwards into segments never played, backwards into one never played,
// a key-unit seek, near the end to EOS, back to the start after EOS.
const Step kSteps[] = {
    {7.3, false, false},  {61.0, false, false}, {44.9, false, false},
    {25.62, true, false}, {-0.7, false, true},  {2.0, false, false},
};

}  // namespace

GST_START_TEST(test_seeks) {
  const SeekForm &sf = kForms[kFirstForm + size_t(__i__)];
  const Form &f = sf.form;
  Fixture fx(f);
  auto srv = start_server();
  srv->add_track("s", make_track(sf, fx));
  // The unseeked decode of the same track: the reference.
  Run whole;
  GstElement *p = make_pipeline(srv->base_url(), "s", "", kPulledPcm);
  run_pipeline(p, whole, 120);  // bounded: ASan beside other tests is slow
  gst_object_unref(p);
  fail_unless(whole.eos, "%s: %s", f.name, whole.error ? whole.error->message : "no EOS");
  std::vector<float> ref(whole.bytes.size() / 4);
  memcpy(ref.data(), whole.bytes.data(), ref.size() * 4);
  GstClockTime end = gst_util_uint64_scale_round(ref.size(), GST_SECOND, guint64(f.rate));

  Seeker s(srv->base_url(), "s");
  const size_t count = size_t(f.rate) / 2;
  for (const Step &st : kSteps) {
    GstClockTime target = st.target_s >= 0 ? GstClockTime(st.target_s * GST_SECOND)
                                           : end - GstClockTime(-st.target_s * GST_SECOND);
    s.seek(target, st.key_unit ? GstSeekFlags(GST_SEEK_FLAG_KEY_UNIT | GST_SEEK_FLAG_SNAP_BEFORE)
                               : GST_SEEK_FLAG_ACCURATE);
    std::vector<float> got;
    GstClockTime first = GST_CLOCK_TIME_NONE;
    bool eos = s.pull(st.to_eos ? ref.size() : count, got, first);
    fail_unless(!got.empty(), "%s @%" GST_TIME_FORMAT ": no audio", f.name, GST_TIME_ARGS(target));
    fail_unless(GST_CLOCK_TIME_IS_VALID(first));
    size_t from = sample_at(first, f.rate);
    double diff = 0;
    int64_t lag = best_lag(ref, from, got, 2000, diff);
    // Every sample pulled (half a second, or to the end): the largest
    // difference, and the first beyond the form's tolerance (one check:
    // each passing one costs gst-check a pipe write).
    double worst = 0;
    size_t bad = got.size();
    for (size_t i = 0; i < got.size() && from + i < ref.size(); i++) {
      double d = std::fabs(double(got[i]) - double(ref[from + i]));
      worst = std::max(worst, d);
      if (d > sf.tolerance && bad == got.size()) bad = i;
    }
    g_print("SEEK %s @%.3f%s: first pts %.6f, off %" G_GINT64_FORMAT
            " samples, max diff %g over %zu samples\n",
            f.name, double(target) / GST_SECOND, st.key_unit ? " key-unit" : "",
            double(first) / GST_SECOND, lag, worst, got.size());
    if (st.key_unit) {
      fail_unless(first <= target && target - first < 30 * GST_MSECOND && first != target,
                  "%s @%" GST_TIME_FORMAT " key-unit: first buffer at %" GST_TIME_FORMAT, f.name,
                  GST_TIME_ARGS(target), GST_TIME_ARGS(first));
    } else {
      GstClockTimeDiff d = GST_CLOCK_DIFF(target, first);
      fail_unless(d >= -GstClockTimeDiff(GST_USECOND) && d <= GstClockTimeDiff(GST_USECOND),
                  "%s @%" GST_TIME_FORMAT ": first buffer at %" GST_TIME_FORMAT, f.name,
                  GST_TIME_ARGS(target), GST_TIME_ARGS(first));
    }
    fail_unless(lag == 0,
                "%s @%" GST_TIME_FORMAT ": the audio is %" G_GINT64_FORMAT " samples off its time",
                f.name, GST_TIME_ARGS(target), lag);
    fail_unless(bad == got.size(), "%s @%" GST_TIME_FORMAT ": sample %zu is %f, not %f", f.name,
                GST_TIME_ARGS(target), bad, bad < got.size() ? double(got[bad]) : 0.0,
                bad < got.size() ? double(ref[from + bad]) : 0.0);
    if (st.to_eos) {
      fail_unless(eos, "%s: no EOS", f.name);
      fail_unless(from + got.size() == ref.size(),
                  "%s @%" GST_TIME_FORMAT ": %zu samples to the end, not %zu", f.name,
                  GST_TIME_ARGS(target), got.size(), ref.size() - from);
    }
  }
  srv->stop();
}
GST_END_TEST;

#if SEEK_PART == 1
namespace {

int audio_criticals = 0;  // CRITICALs of the GStreamer-Audio domain (the test's process)

void count_audio_critical(const gchar *, GLogLevelFlags, const gchar *message, gpointer) {
  g_atomic_int_inc(&audio_criticals);
  g_printerr("GStreamer-Audio CRITICAL: %s\n", message);
}

}  // namespace

// MPEG-2 MP3 (22.05 kHz, frames of 576 samples): the LAME delay (1105
// samples) clips the track's first frame whole and the second in part.
// Through mpg123audiodec, which in GStreamer 1.22.0 asked its base class
// for a 0-byte buffer (a CRITICAL) for a frame clipped exactly whole: no
// CRITICAL, and the decode lasts exactly the source.
GST_START_TEST(test_mp3_frame_clipped_whole) {
  GstElementFactory *dec = gst_element_factory_find("mpg123audiodec");
  fail_unless(dec != nullptr, "mpg123audiodec (gstreamer1.0-plugins-good) is missing");
  gst_object_unref(dec);
  const Form form = {"mp3 22.05 kHz",
                     {"-c:a", "libmp3lame", "-b:a", "32k"},
                     "mp3",
                     "mp3",
                     "audio/mpeg",
                     false,
                     4.5,
                     22050,
                     true};
  Fixture fx(form);
  g_log_set_handler("GStreamer-Audio", G_LOG_LEVEL_CRITICAL, count_audio_critical, nullptr);
  Run run;
  serve_and_run(fx,
                "mpg123audiodec ! audioconvert ! audio/x-raw,format=F32LE,channels=1 ! "
                "appsink name=sink sync=false",
                run);
  fail_unless(run.eos, "%s", run.error ? run.error->message : "no EOS");
  fail_unless_equals_int(g_atomic_int_get(&audio_criticals), 0);
  fail_unless_equals_uint64(run.bytes.size() / 4, uint64_t(4.5 * 22050));
}
GST_END_TEST;
#endif

static Suite *element_seeks_suite() {
  Suite *s = suite_create("element-seeks");
  TCase *tc = tcase_create("seeks");
  tcase_set_timeout(tc, 240);
  suite_add_tcase(s, tc);
  size_t n = std::min(kPartSize, G_N_ELEMENTS(kForms) - kFirstForm);
  tcase_add_loop_test(tc, test_seeks, 0, int(n));
#if SEEK_PART == 1
  tcase_add_test(tc, test_mp3_frame_clipped_whole);
#endif
  return s;
}

int main(int argc, char **argv) {
  if (!have_ffmpeg()) {
    g_print("SKIP: ffmpeg is not installed (scripts/setup.sh installs it)\n");
    return 77;
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(element_seeks_suite(), "element-seeks", __FILE__);
}
