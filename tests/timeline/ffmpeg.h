// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — fixtures made by ffmpeg, the way real backends cut and
 * encode: one deterministic source signal, encoded once, cut with
 * `ffmpeg -f segment` (timestamps kept or reset), plus the unsegmented file
 * of the same encode as the reference. Made at test time, once per suite
 * (FixtureCache), and the checks every form gets (check_stamps, check_pcm,
 * check_mux).
 */
#pragma once

#include "../harness.h"

#include "segdl/codec.h"

#include <gst/pbutils/pbutils.h>

#include <glib/gstdio.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace segdl::test::ff {

inline bool have_ffmpeg() {
  g_autofree gchar *ff = g_find_program_in_path("ffmpeg");
  return ff != nullptr;
}

// Runs ffmpeg with `args` (after -hide_banner -loglevel error -y); fails the
// test with its output if it fails.
inline void run_ffmpeg(const std::vector<std::string> &args) {
  std::vector<const char *> argv = {"ffmpeg",    "-nostdin", "-hide_banner",
                                    "-loglevel", "error",    "-y"};
  for (const std::string &a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  gchar *out = nullptr, *err = nullptr;
  gint status = 0;
  GError *error = nullptr;
  gboolean ok = g_spawn_sync(nullptr, const_cast<gchar **>(argv.data()), nullptr,
                             G_SPAWN_SEARCH_PATH, nullptr, nullptr, &out, &err, &status, &error);
  std::string why = error ? error->message : (err ? err : "");
  bool success = ok && g_spawn_check_wait_status(status, nullptr);
  g_free(out);
  g_free(err);
  g_clear_error(&error);
  fail_unless(success, "ffmpeg failed: %s", why.c_str());
}

inline Bytes read_file(const std::string &path) {
  gchar *data = nullptr;
  gsize size = 0;
  fail_unless(g_file_get_contents(path.c_str(), &data, &size, nullptr), "cannot read %s",
              path.c_str());
  Bytes b(reinterpret_cast<uint8_t *>(data), reinterpret_cast<uint8_t *>(data) + size);
  g_free(data);
  return b;
}

inline bool exists(const std::string &path) {
  return g_file_test(path.c_str(), G_FILE_TEST_EXISTS);
}

// One form: how ffmpeg encodes and cuts it.
struct Form {
  const char *name;
  std::vector<std::string> codec;  // encoder options
  const char *segment_format;      // -segment_format
  const char *ext;
  const char *mime;
  bool reset;      // -reset_timestamps 1
  double seconds;  // source length
  int rate;        // source rate (mono)
  bool pcm_exact;  // decoded PCM sample-exact against the unsegmented file
  // Extra options: for the segment muxer (after -f segment) and for the
  // unsegmented file's muxer (e.g. moov first: movflags=+faststart).
  std::vector<std::string> segment_opts = {};
  std::vector<std::string> whole_opts = {};
  double first_s = 1.5;  // where the cuts fall (and the status's durations)
  double seg_s = 3.0;
};

// Fixtures made once per suite: a Fixture keeps its files in a folder of
// this directory named after its form (every test runs in a child process
// of its own, the folder outlives it), and the suite's main() removes it
// all at the end (FixtureCache). Empty: each Fixture has a temp dir of its
// own.
inline std::string &cache_root() {
  static std::string root;
  return root;
}

inline void remove_tree(const std::string &path) {
  if (g_file_test(path.c_str(), G_FILE_TEST_IS_DIR)) {
    if (GDir *d = g_dir_open(path.c_str(), 0, nullptr)) {
      while (const gchar *name = g_dir_read_name(d)) remove_tree(path + "/" + name);
      g_dir_close(d);
    }
    g_rmdir(path.c_str());
  } else {
    g_unlink(path.c_str());
  }
}

// In main(), around the suite run.
class FixtureCache {
 public:
  FixtureCache() {
    gchar *dir = g_dir_make_tmp("segdl-ffcache-XXXXXX", nullptr);
    if (!dir) g_error("cannot make a temp dir");
    cache_root() = dir;
    g_free(dir);
  }
  ~FixtureCache() {
    remove_tree(cache_root());
    cache_root().clear();
  }
  FixtureCache(const FixtureCache &) = delete;
  FixtureCache &operator=(const FixtureCache &) = delete;
};

// A name for everything that makes a form's files.
inline std::string form_key(const Form &f) {
  std::string all = std::string(f.name) + "|" + f.segment_format + "|" + f.ext + "|" +
                    std::to_string(f.reset) + "|" + std::to_string(f.seconds) + "|" +
                    std::to_string(f.rate) + "|" + std::to_string(f.first_s) + "|" +
                    std::to_string(f.seg_s);
  for (const auto *list : {&f.codec, &f.segment_opts, &f.whole_opts})
    for (const std::string &a : *list) all += "|" + a;
  gchar *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA1, all.c_str(), -1);
  std::string key = std::string("form-") + sum;
  g_free(sum);
  return key;
}

// A temp dir with the source, the unsegmented encode and the segments.
class Fixture {
 public:
  // `segments` false: only the source and the unsegmented file.
  explicit Fixture(const Form &f, bool segments = true) : form_(f), segment_(segments) {
    if (!cache_root().empty()) {
      dir_ = cache_root() + "/" + form_key(f) + (segments ? "" : "-whole");
      cached_ = true;
      std::string done = dir_ + "/done";
      if (exists(done)) {
        if (segment_) load_segments();
        return;
      }
      fail_unless(g_mkdir_with_parents(dir_.c_str(), 0700) == 0, "cannot make %s", dir_.c_str());
      make();
      fail_unless(g_file_set_contents(done.c_str(), "", 0, nullptr));
      return;
    }
    GError *err = nullptr;
    gchar *dir = g_dir_make_tmp("segdl-ff-XXXXXX", &err);
    fail_unless(dir != nullptr, "tmp dir: %s", err ? err->message : "?");
    dir_ = dir;
    g_free(dir);
    make();
  }
  ~Fixture() {
    if (!cached_) remove_tree(dir_);
  }
  Fixture(const Fixture &) = delete;

  const std::string &dir() const { return dir_; }
  std::string whole() const { return dir_ + "/whole." + form_.ext; }
  std::string source() const { return dir_ + "/source.wav"; }
  // The same encode in another container (`ext`: "aac" for ADTS), made on
  // demand.
  std::string whole_as(const std::string &ext) const {
    std::string path = dir_ + "/whole-as." + ext;
    if (exists(path)) return path;  // made by an earlier test
    std::vector<std::string> args = {"-i", source()};
    args.insert(args.end(), form_.codec.begin(), form_.codec.end());
    args.push_back(path);
    run_ffmpeg(args);
    return path;
  }
  const std::vector<Bytes> &segments() const { return segments_; }

  server::Track track() const {
    server::Track t;
    t.segments = segments_;
    t.mime_type = form_.mime;
    t.first_segment_duration = form_.first_s;
    t.segment_duration = form_.seg_s;
    return t;
  }
  const Form &form() const { return form_; }

 private:
  // A chirp with a little harmonic: no two frames alike, deterministic.
  void make() {
    char expr[128];
    g_snprintf(expr, sizeof expr, "0.4*sin(2*PI*(220+60*t)*t)+0.1*sin(2*PI*1250*t)");
    std::string lavfi = std::string("aevalsrc=") + expr + ":s=" + std::to_string(form_.rate) +
                        ":d=" + std::to_string(form_.seconds);
    run_ffmpeg({"-f", "lavfi", "-i", lavfi, "-ac", "1", source()});
    std::vector<std::string> whole_args = {"-i", source()};
    whole_args.insert(whole_args.end(), form_.codec.begin(), form_.codec.end());
    whole_args.insert(whole_args.end(), form_.whole_opts.begin(), form_.whole_opts.end());
    whole_args.push_back(whole());
    run_ffmpeg(whole_args);
    if (!segment_) return;
    std::vector<std::string> seg_args = {"-i", source()};
    seg_args.insert(seg_args.end(), form_.codec.begin(), form_.codec.end());
    std::string times = std::to_string(form_.first_s);
    for (double t = form_.first_s + form_.seg_s; t < form_.seconds; t += form_.seg_s)
      times += "," + std::to_string(t);
    for (const char *a : {"-f", "segment", "-segment_times"}) seg_args.push_back(a);
    seg_args.push_back(times);
    seg_args.push_back("-segment_format");
    seg_args.push_back(form_.segment_format);
    seg_args.insert(seg_args.end(), form_.segment_opts.begin(), form_.segment_opts.end());
    if (form_.reset) {
      seg_args.push_back("-reset_timestamps");
      seg_args.push_back("1");
    }
    seg_args.push_back(dir_ + "/seg_%d." + form_.ext);
    run_ffmpeg(seg_args);
    load_segments();
  }

  void load_segments() {
    for (int i = 0;; i++) {
      std::string p = dir_ + "/seg_" + std::to_string(i) + "." + form_.ext;
      if (!exists(p)) break;
      segments_.push_back(read_file(p));
    }
    fail_unless(segments_.size() >= 2, "ffmpeg made %zu segments", segments_.size());
  }

  Form form_;
  bool segment_ = true;
  std::string dir_;
  bool cached_ = false;
  std::vector<Bytes> segments_;
};

/* ---- the checks every form gets ------------------------------------------ */

// Samples the segments keep that the unsegmented file trims: `-f segment`
// drops the file's AAC priming edit (1024) from segment 0.
inline uint64_t priming(const Form &f) {
  return g_str_equal(f.ext, "m4a") ? 1024 : 0;
}

// The granule of an Ogg file's last page: the samples it presents.
inline int64_t last_granule(const Bytes &ogg) {
  static const uint8_t kCapture[] = {'O', 'g', 'g', 'S'};
  auto it = std::find_end(ogg.begin(), ogg.end(), kCapture, kCapture + 4);
  fail_unless(it != ogg.end() && ogg.end() - it >= 14, "no Ogg page");
  int64_t g = 0;
  for (int i = 7; i >= 0; i--) g = (g << 8) | it[6 + i];
  return g;
}

// What a player of the unsegmented file presents of GStreamer's own decode
// of it (`decoded` samples): [from, from + count). Vorbis: up to the last
// page's granule (oggdemux in pull mode trims the end, to a rounding: one
// sample more here). MP3: LAME's gapless trims, delay + 529 at the start
// and padding - 529 at the end, which GStreamer 1.22 (mpegaudioparse,
// mpg123audiodec) does not apply, as ffmpeg's decoder does. Else all.
inline void presented(const Form &f, const std::string &whole, size_t decoded, size_t &from,
                      size_t &count) {
  from = 0;
  count = decoded;
  if (g_str_equal(f.codec[1].c_str(), "libvorbis")) {
    count = size_t(last_granule(read_file(whole)));
  } else if (g_str_equal(f.codec[1].c_str(), "libmp3lame")) {
    Bytes b = read_file(whole);
    Mp3Start st;
    fail_unless(parse_mp3_start(b.data(), b.size(), st) && st.info.has_lame, "no LAME tag in %s",
                whole.c_str());
    size_t cut = size_t(st.info.encoder_delay) + size_t(st.info.encoder_padding);
    fail_unless(decoded > cut);
    from = size_t(st.info.encoder_delay) + kMp3DecoderDelay;
    count = decoded - cut;
  }
  fail_unless(from + count <= decoded, "%s: %zu + %zu of %zu samples", f.name, from, count,
              decoded);
}

// Every buffer but codec headers has a pts and a duration; each starts
// where the previous ended (to 1 us), from 0.
inline void check_stamps(const Run &run) {
  fail_unless(run.eos, "no EOS (error: %s)", run.error ? run.error->message : "none");
  fail_unless(!run.pts.empty());
  GstClockTime end = 0;
  size_t n = 0;
  for (size_t i = 0; i < run.pts.size(); i++) {
    if (run.header[i]) continue;
    fail_unless(GST_CLOCK_TIME_IS_VALID(run.pts[i]), "buffer %zu has no pts", i);
    fail_unless(GST_CLOCK_TIME_IS_VALID(run.durations[i]), "buffer %zu has no duration", i);
    GstClockTimeDiff d = GST_CLOCK_DIFF(end, run.pts[i]);
    fail_unless(d >= -1000 && d <= 1000,
                "buffer %zu at %" GST_TIME_FORMAT ", the previous ends at %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(run.pts[i]), GST_TIME_ARGS(end));
    end = run.pts[i] + run.durations[i];
    n++;
  }
  fail_unless(n > 10);
}

// Float, as the decoders give it (no dither of a conversion to integers).
inline const char *const kPcm =
    "decodebin ! audioconvert ! audio/x-raw,format=F32LE,channels=1 ! "
    "appsink name=sink sync=false";

// The decoded PCM of the unsegmented file.
inline void decode_file(const std::string &path, Run &run) {
  std::string desc = "filesrc location=\"" + path + "\" ! " + kPcm;
  GstElement *p = gst_parse_launch(desc.c_str(), nullptr);
  fail_unless(p != nullptr);
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "reference decode: %s", run.error ? run.error->message : "no EOS");
}

inline void serve_and_run(const Fixture &fx, const std::string &tail, Run &run,
                          const std::string &props = "") {
  auto srv = start_server();
  srv->add_track("ff", fx.track());
  GstElement *p = make_pipeline(srv->base_url(), "ff", props, tail);
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  srv->stop();
}

// Index of the first sample where two PCM streams differ (from sample
// `from` of `a`), or -1.
inline int64_t first_difference(const Bytes &a, const Bytes &b, size_t from = 0) {
  size_t n = std::min(a.size() / 4 - std::min(a.size() / 4, from), b.size() / 4);
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a[4 * (from + i)], &b[4 * i], 4) != 0) return int64_t(i);
  return -1;
}

inline double ffprobe_duration(const std::string &path) {
  const char *argv[] = {"ffprobe", "-v",      "error",      "-show_entries", "format=duration",
                        "-of",     "csv=p=0", path.c_str(), nullptr};
  gchar *out = nullptr;
  gint status = 0;
  fail_unless(g_spawn_sync(nullptr, const_cast<gchar **>(argv), nullptr, G_SPAWN_SEARCH_PATH,
                           nullptr, nullptr, &out, nullptr, &status, nullptr));
  double d = out ? g_ascii_strtod(out, nullptr) : 0;
  g_free(out);
  return d;
}

// Every buffer has a pts and a duration, continuous from 0.
inline void check_form_stamps(const Form &f) {
  GST_INFO("form %s", f.name);
  Fixture fx(f);
  Run run;
  serve_and_run(fx, "appsink name=sink sync=false", run);
  check_stamps(run);
}

// The decoded PCM against the unsegmented file's (see presented()).
inline void check_form_pcm(const Form &f) {
  GST_INFO("form %s", f.name);
  Fixture fx(f);
  Run run;
  serve_and_run(fx, kPcm, run);
  Run ref;  // the unsegmented file's decode (AAC in m4a: its ADTS twin's, below)
  if (priming(f) == 0) decode_file(fx.whole(), ref);
  fail_unless(run.eos, "%s: no EOS (%s)", f.name, run.error ? run.error->message : "none");
  size_t got = run.bytes.size() / 4, want = ref.bytes.size() / 4;
  if (priming(f) > 0) {
    // The segments keep the priming the whole file's edit trims, and GStreamer
    // applies that edit or not depending on the file: the reference is the
    // same encode as ADTS (no edit list, the same packets), whose decode
    // runs past the source's end by its padding. The output is its first
    // priming + source samples exactly: the last segment's edit applied.
    Run adts;
    decode_file(fx.whole_as("aac"), adts);
    uint64_t source = uint64_t(f.rate * f.seconds + 0.5);
    fail_unless(got == priming(f) + source, "%s: %zu samples decoded, expected %" G_GUINT64_FORMAT,
                f.name, got, priming(f) + source);
    fail_unless(adts.bytes.size() / 4 >= got);
    int64_t at = first_difference(run.bytes, adts.bytes);
    fail_unless(at < 0, "%s: decoded PCM differs from sample %" G_GINT64_FORMAT, f.name, at);
  } else if (g_str_equal(f.codec[1].c_str(), "libvorbis")) {
    // The last frame carries the granule's end trim as clipping (see
    // test_vorbis_cut), which vorbisdec (GStreamer 1.22) does not apply:
    // its output is the whole file's up to the granule, then that frame's
    // trimmed samples.
    size_t from = 0;
    presented(f, fx.whole(), want, from, want);
    fail_unless(got >= want && got - want < 1024, "%s: %zu samples decoded, %zu presented", f.name,
                got, want);
    int64_t at = first_difference(ref.bytes, run.bytes);
    fail_unless(at < 0 || size_t(at) >= want,
                "%s: decoded PCM differs from sample %" G_GINT64_FORMAT, f.name, at);
  } else if (f.pcm_exact) {
    size_t from = 0;
    presented(f, fx.whole(), want, from, want);
    fail_unless(got == want, "%s: %zu samples decoded, the unsegmented file presents %zu", f.name,
                got, want);
    int64_t at = first_difference(ref.bytes, run.bytes, from);
    fail_unless(at < 0, "%s: decoded PCM differs from sample %" G_GINT64_FORMAT, f.name, at);
  } else {
    // Within one frame of the unsegmented file (see docs/element.md).
    size_t diff = got > want ? got - want : want - got;
    fail_unless(diff <= 1024, "%s: %zu samples decoded, the unsegmented file has %zu", f.name, got,
                want);
  }
}

// The output through `mux` into a file plays to the track's length, in
// GStreamer (discoverer) and in ffprobe.
inline void check_form_mux(const Form &f, const char *mux, const char *ext) {
  Fixture fx(f);
  std::string out = fx.dir() + "/muxed." + ext;
  Run run;
  serve_and_run(fx, std::string(mux) + " ! filesink location=\"" + out + "\"", run);
  fail_unless(run.eos, "%s ! %s: %s", f.name, mux, run.error ? run.error->message : "no EOS");
  // Within a frame or two: muxers keep the samples the clipping trims.
  const double tolerance = 0.05;
  double probed = ffprobe_duration(out);
  fail_unless(std::fabs(probed - f.seconds) <= tolerance, "%s ! %s: ffprobe says %.3f s", f.name,
              mux, probed);
  GstDiscoverer *disc = gst_discoverer_new(20 * GST_SECOND, nullptr);
  fail_unless(disc != nullptr);
  g_autofree gchar *uri = gst_filename_to_uri(out.c_str(), nullptr);
  GstDiscovererInfo *info = gst_discoverer_discover_uri(disc, uri, nullptr);
  fail_unless(info != nullptr);
  double seconds = double(gst_discoverer_info_get_duration(info)) / GST_SECOND;
  fail_unless(std::fabs(seconds - f.seconds) <= tolerance, "%s ! %s: discoverer says %.3f s",
              f.name, mux, seconds);
  gst_discoverer_info_unref(info);
  g_object_unref(disc);
}

// An accurate seek back to `target_s` once the track was played: the
// decoded audio from there is the first decode's (within `tolerance`).
inline void check_seek_pcm(const Form &f, double target_s, double tolerance) {
  Fixture fx(f);
  auto srv = start_server();
  srv->add_track("s", fx.track());
  GstElement *p = make_pipeline(srv->base_url(), "s", "", kPcm);
  SinkData sd;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, &sd, nullptr);
  GstBus *bus = gst_element_get_bus(p);
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                             GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
  gst_message_unref(m);
  Bytes whole;
  {
    std::lock_guard<std::mutex> g(sd.lock);
    whole = sd.bytes;
    sd.clear();
  }
  GstClockTime target = GstClockTime(target_s * GST_SECOND);
  fail_unless(gst_element_seek_simple(p, GST_FORMAT_TIME,
                                      GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
                                      gint64(target)));
  m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                 GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "no EOS after the seek");
  gst_message_unref(m);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(p);
  srv->stop();
  std::lock_guard<std::mutex> g(sd.lock);
  fail_unless(!sd.pts.empty());
  GstClockTimeDiff d = GST_CLOCK_DIFF(target, sd.pts.front());
  fail_unless(d >= -GstClockTimeDiff(GST_USECOND) && d <= GstClockTimeDiff(GST_USECOND),
              "%s @%.1f: first buffer at %" GST_TIME_FORMAT, f.name, target_s,
              GST_TIME_ARGS(sd.pts.front()));
  size_t from = size_t(gst_util_uint64_scale_round(target, guint64(f.rate), GST_SECOND));
  size_t n = sd.bytes.size() / 4;
  fail_unless(n + from == whole.size() / 4, "%s @%.1f: %zu samples after the seek, not %zu", f.name,
              target_s, n, whole.size() / 4 - from);
  const float *a = reinterpret_cast<const float *>(sd.bytes.data());
  const float *b = reinterpret_cast<const float *>(whole.data()) + from;
  size_t checked = std::min<size_t>(n, size_t(f.rate));  // the first second
  for (size_t i = 0; i < checked; i++)
    fail_unless(std::fabs(a[i] - b[i]) <= tolerance, "%s @%.1f: sample %zu is %f, not %f", f.name,
                target_s, i, double(a[i]), double(b[i]));
}

// main() of every ffmpeg-forms suite: skipped (77) without ffmpeg; the
// fixtures made once for the whole suite.
inline int run_suite(int argc, char **argv, Suite *(*make)(), const char *name, const char *file) {
  if (!have_ffmpeg()) {
    g_print("SKIP: ffmpeg is not installed (scripts/setup.sh installs it)\n");
    return 77;
  }
  gst_check_init(&argc, &argv);
  FixtureCache cache;
  return gst_check_run_suite(make(), name, file);
}

}  // namespace segdl::test::ff
