// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — every segment form through the timeline join.
 *
 * One deterministic encode per codec, cut WITHOUT re-encoding into
 * self-contained segment files (m4a with its own moov, WebM / Matroska, Ogg
 * with its own headers; timestamps reset or absolute) or into byte ranges of
 * one fragmented MP4. segdlsrc must output exactly the frames of the
 * unsegmented file, in order, timestamped from 0 without gaps; for Opus and
 * Vorbis the decoded PCM must equal the unsegmented file's, sample for
 * sample; and the output must mux into files that play to the full length.
 */
#include "harness.h"

#include "common/segmenter.h"
#include "segdl/vorbis.h"

#include <glib/gstdio.h>

using namespace segdl;
using namespace segdl::test;
using media::Codec;
using media::Container;
using media::TimestampMode;

namespace {

constexpr double kSeconds = 7.5;  // 1.5 s + 3 s + 3 s

struct FormCase {
  const char *name;
  Codec codec;
  Container container;
  TimestampMode ts;
  const char *mime;
  bool pcm_exact;  // compare decoded PCM with the unsegmented file's
};

const FormCase kForms[] = {
    {"aac/m4a reset", Codec::Aac, Container::M4a, TimestampMode::Reset, "audio/mp4", false},
    {"aac/m4a absolute", Codec::Aac, Container::M4a, TimestampMode::Absolute, "audio/mp4", false},
    {"aac/m4a faststart", Codec::Aac, Container::M4aFaststart, TimestampMode::Reset, "audio/mp4",
     false},
    {"aac/mkv", Codec::Aac, Container::Matroska, TimestampMode::Reset, "audio/x-matroska", false},
    {"aac/fmp4 (continuous)", Codec::Aac, Container::FragmentedMp4, TimestampMode::Reset,
     "audio/mp4", false},
    {"opus/webm reset", Codec::Opus, Container::WebM, TimestampMode::Reset, "audio/webm", true},
    {"opus/webm absolute", Codec::Opus, Container::WebM, TimestampMode::Absolute, "audio/webm",
     true},
    {"opus/ogg reset", Codec::Opus, Container::Ogg, TimestampMode::Reset, "audio/ogg", true},
    {"opus/ogg absolute", Codec::Opus, Container::Ogg, TimestampMode::Absolute, "audio/ogg", true},
    {"vorbis/ogg", Codec::Vorbis, Container::Ogg, TimestampMode::Reset, "audio/ogg", true},
    {"vorbis/webm", Codec::Vorbis, Container::WebM, TimestampMode::Reset, "audio/webm", true},
    {"mp3/mkv", Codec::Mp3, Container::Matroska, TimestampMode::Reset, "audio/x-matroska", false},
    {"mp3 (continuous)", Codec::Mp3, Container::Mp3, TimestampMode::Reset, "audio/mpeg", false},
};

const media::Packets &packets(Codec codec) {
  static std::map<int, media::Packets> cache;
  auto it = cache.find(int(codec));
  if (it != cache.end()) return it->second;
  media::Packets p;
  std::string error;
  if (!media::encode_packets(codec, kSeconds, p, error)) g_error("encode: %s", error.c_str());
  return cache.emplace(int(codec), std::move(p)).first->second;
}

// The served segments and the unsegmented file of one form.
struct Fixture {
  std::vector<Bytes> segments;
  Bytes whole;
};

Fixture make_fixture(const FormCase &fc) {
  Fixture fx;
  std::string error;
  const media::Packets &p = packets(fc.codec);
  fail_unless(media::whole_file(p, fc.container, fx.whole, error), "%s", error.c_str());
  if (fc.container == Container::FragmentedMp4)
    fail_unless(media::split_fragmented(fx.whole, 1.5, 3.0, fx.segments, error), "%s",
                error.c_str());
  else
    fail_unless(media::segment_files(p, fc.container, fc.ts, 1.5, 3.0, fx.segments, error), "%s",
                error.c_str());
  fail_unless_equals_int(fx.segments.size(), 3);
  return fx;
}

server::Track track_of(const Fixture &fx, const char *mime) {
  server::Track t;
  t.segments = fx.segments;
  t.mime_type = mime;
  t.first_segment_duration = 1.5;
  t.segment_duration = 3.0;
  return t;
}

// Cases whose GStreamer elements this machine lacks are left out of the
// suite when it is made (main(), in the parent: a case forked by gst-check
// cannot tell it), and the suite then reports SKIP (exit 77), never a pass.
size_t left_out = 0;

bool usable(Codec codec, Container container, const char *name) {
  if (media::available(codec, container)) return true;
  g_print("SKIP %s: GStreamer elements missing (scripts/setup.sh installs them)\n", name);
  left_out++;
  return false;
}

}  // namespace

// The frames out are the unsegmented file's frames, byte for byte, in order,
// with pts from 0, each where the previous ended.
GST_START_TEST(test_frames_identical) {
  const FormCase &fc = kForms[__i__];
  GST_INFO("form %s", fc.name);
  Fixture fx = make_fixture(fc);
  media::ParsedFrames ref;
  std::string error;
  fail_unless(media::parse_frames(fx.whole, ref, error), "%s", error.c_str());

  auto srv = start_server();
  srv->add_track("t", track_of(fx, fc.mime));
  GstElement *p = make_pipeline(srv->base_url(), "t", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s: %s", fc.name, run.error ? run.error->message : "no EOS");

  // Codec headers travel in the caps (streamheader); Vorbis's three also
  // go out first as HEADER buffers (oggmux needs the setup header).
  const size_t lead = fc.codec == Codec::Vorbis ? ref.headers.size() : 0;
  std::vector<size_t> frames;  // indices of the buffers
  for (size_t i = 0; i < run.frames.size(); i++) {
    if (i < lead) {
      fail_unless(run.header[i] && run.frames[i] == ref.headers[i],
                  "%s: buffer %zu is not header %zu", fc.name, i, i);
      continue;
    }
    fail_if(run.header[i], "%s: buffer %zu is flagged HEADER", fc.name, i);
    frames.push_back(i);
  }
  if (!ref.headers.empty()) {
    fail_unless(!run.caps.empty());
    const GValue *h =
        gst_structure_get_value(gst_caps_get_structure(run.caps.front(), 0), "streamheader");
    fail_unless(h && GST_VALUE_HOLDS_ARRAY(h) && gst_value_array_get_size(h) == ref.headers.size(),
                "%s: the caps carry no streamheader of %zu headers", fc.name, ref.headers.size());
    for (size_t k = 0; k < ref.headers.size(); k++) {
      GstBuffer *b = gst_value_get_buffer(gst_value_array_get_value(h, guint(k)));
      GstMapInfo map;
      fail_unless(b && gst_buffer_map(b, &map, GST_MAP_READ));
      Bytes got(map.data, map.data + map.size);
      gst_buffer_unmap(b, &map);
      fail_unless(got == ref.headers[k], "%s: streamheader %zu differs", fc.name, k);
    }
  }
  fail_unless(frames.size() == ref.frames.size(), "%s: %zu frames, the file has %zu", fc.name,
              frames.size(), ref.frames.size());
  GstClockTime expect = 0, ref_total = 0;
  for (size_t k = 0; k < frames.size(); k++) {
    size_t i = frames[k];
    fail_unless(run.frames[i] == ref.frames[k].data, "%s: frame %zu differs", fc.name, k);
    GstClockTimeDiff d = GST_CLOCK_DIFF(expect, run.pts[i]);
    fail_unless(d >= -1 && d <= 1,
                "%s: frame %zu at %" GST_TIME_FORMAT ", expected %" GST_TIME_FORMAT, fc.name, k,
                GST_TIME_ARGS(run.pts[i]), GST_TIME_ARGS(expect));
    fail_unless(GST_CLOCK_TIME_IS_VALID(run.durations[i]));
    expect = run.pts[i] + run.durations[i];
    ref_total += ref.frames[k].duration_ns;
  }
  // Length: the unsegmented file's, within one frame. For Vorbis the
  // demuxers' packet durations disagree between containers (Ogg from
  // granules, Matroska from rounded block times), and Opus frames carry
  // pre-skip and end trims the timeline applies: the decoded length is the
  // truth there.
  if (fc.codec == Codec::Vorbis || fc.codec == Codec::Opus) {
    Bytes pcm;
    int rate = 0, channels = 0;
    fail_unless(media::decode_pcm(fx.whole, pcm, rate, channels, error), "%s", error.c_str());
    ref_total = gst_util_uint64_scale(pcm.size() / (4 * channels), GST_SECOND, rate);
  }
  GstClockTimeDiff diff = GST_CLOCK_DIFF(ref_total, expect);
  GstClockTime frame = run.durations[frames.back()];
  fail_unless(diff >= -GstClockTimeDiff(frame) && diff <= GstClockTimeDiff(frame),
              "%s: %" GST_TIME_FORMAT " long, the file %" GST_TIME_FORMAT, fc.name,
              GST_TIME_ARGS(expect), GST_TIME_ARGS(ref_total));
  // A demuxer per self-contained file, one for a continuous stream.
  bool self_contained = fc.container != Container::FragmentedMp4 && fc.container != Container::Mp3;
  if (self_contained) fail_unless_equals_int(srv->requests().size() >= 3, TRUE);
}
GST_END_TEST;

// Decoded through one decoder, the joined stream gives exactly the PCM of
// the unsegmented file: no codec delay re-applied at joins, no lost packet.
GST_START_TEST(test_pcm_identical) {
  const FormCase &fc = kForms[__i__];
  Fixture fx = make_fixture(fc);
  Bytes ref_pcm;
  int rate = 0, channels = 0;
  std::string error;
  fail_unless(media::decode_pcm(fx.whole, ref_pcm, rate, channels, error), "%s", error.c_str());

  auto srv = start_server();
  srv->add_track("t", track_of(fx, fc.mime));
  GstElement *p = make_pipeline(
      srv->base_url(), "t", "",
      "decodebin ! audioconvert ! audio/x-raw,format=F32LE ! appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s: %s", fc.name, run.error ? run.error->message : "no EOS");
  fail_unless(run.bytes.size() == ref_pcm.size(), "%s: %zu PCM bytes, the file decodes to %zu",
              fc.name, run.bytes.size(), ref_pcm.size());
  gchar *a = g_compute_checksum_for_data(G_CHECKSUM_SHA256, run.bytes.data(), run.bytes.size());
  gchar *b = g_compute_checksum_for_data(G_CHECKSUM_SHA256, ref_pcm.data(), ref_pcm.size());
  fail_unless(g_str_equal(a, b), "%s: PCM checksum %s, the file's %s", fc.name, a, b);
  g_free(a);
  g_free(b);
}
GST_END_TEST;

// The joined stream muxes into a file that plays to the full length.
struct MuxCase {
  const char *name;
  Codec codec;
  Container source;
  const char *mime;
  const char *mux;
};

const MuxCase kMuxes[] = {
    {"aac→mp4", Codec::Aac, Container::M4a, "audio/mp4", "mp4mux"},
    {"mp3→mp4", Codec::Mp3, Container::Matroska, "audio/x-matroska", "mp4mux"},
    {"opus→mp4", Codec::Opus, Container::WebM, "audio/webm", "mp4mux"},
    {"aac→mkv", Codec::Aac, Container::M4a, "audio/mp4", "matroskamux"},
    {"opus→mkv", Codec::Opus, Container::Ogg, "audio/ogg", "matroskamux"},
    {"vorbis→mkv", Codec::Vorbis, Container::Ogg, "audio/ogg", "matroskamux"},
    {"mp3→mkv", Codec::Mp3, Container::Matroska, "audio/x-matroska", "matroskamux"},
    {"vorbis→ogg", Codec::Vorbis, Container::WebM, "audio/webm", "oggmux"},
    {"opus→ogg", Codec::Opus, Container::WebM, "audio/webm", "oggmux"},
};

GST_START_TEST(test_mux_to_file) {
  const MuxCase &mc = kMuxes[__i__];
  FormCase fc = {mc.name, mc.codec, mc.source, TimestampMode::Reset, mc.mime, false};
  Fixture fx = make_fixture(fc);
  auto srv = start_server();
  srv->add_track("m", track_of(fx, mc.mime));
  gchar *dir = g_dir_make_tmp("segdl-mux-XXXXXX", nullptr);
  fail_unless(dir != nullptr);
  gchar *path = g_build_filename(dir, "out", nullptr);
  std::string tail = std::string(mc.mux) + " ! filesink location=\"" + path + "\"";
  GstElement *p = make_pipeline(srv->base_url(), "m", "", tail);
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s: %s", mc.name, run.error ? run.error->message : "no EOS");
  gchar *data = nullptr;
  gsize len = 0;
  fail_unless(g_file_get_contents(path, &data, &len, nullptr));
  Bytes file(data, data + len);
  g_free(data);
  g_unlink(path);
  g_rmdir(dir);
  g_free(path);
  g_free(dir);
  uint64_t out_ns = 0, ref_ns = 0;
  std::string error;
  fail_unless(media::decoded_duration(file, out_ns, error), "%s: %s", mc.name, error.c_str());
  fail_unless(media::decoded_duration(fx.whole, ref_ns, error), "%s: %s", mc.name, error.c_str());
  GstClockTimeDiff diff = GST_CLOCK_DIFF(ref_ns, out_ns);
  fail_unless(diff >= -50 * GST_MSECOND && diff <= 50 * GST_MSECOND,
              "%s: the file plays %" GST_TIME_FORMAT ", the source %" GST_TIME_FORMAT, mc.name,
              GST_TIME_ARGS(out_ns), GST_TIME_ARGS(ref_ns));
}
GST_END_TEST;

// join=bytes refuses self-contained segments with a clear error.
GST_START_TEST(test_bytes_refuses_files) {
  FormCase fc = kForms[0];
  Fixture fx = make_fixture(fc);
  auto srv = start_server();
  srv->add_track("b", track_of(fx, fc.mime));
  GstElement *p = make_pipeline(srv->base_url(), "b", "join=bytes", "fakesink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.error != nullptr);
  fail_unless(run.error->domain == GST_STREAM_ERROR &&
              run.error->code == GST_STREAM_ERROR_WRONG_TYPE);
  fail_unless(strstr(run.error->message, "join=timeline") != nullptr, "%s", run.error->message);
  fail_unless(strstr(run.error->message, "Segment 1") != nullptr, "%s", run.error->message);
}
GST_END_TEST;

// Seeks into self-contained forms: the first sample out is the position's
// and the frames from the decoder's pre-roll on are the unsegmented file's.
const size_t kSeekForms[] = {0, 7, 9, 11};  // aac/m4a, opus/ogg, vorbis/ogg, mp3/mkv
const double kSeekTargets[] = {0.0, 0.7, 1.5, 4.5, 6.9};

GST_START_TEST(test_seek_forms) {
  const FormCase &fc = kForms[kSeekForms[__i__ / G_N_ELEMENTS(kSeekTargets)]];
  const double target_s = kSeekTargets[__i__ % G_N_ELEMENTS(kSeekTargets)];
  const GstClockTime target = GstClockTime(target_s * GST_SECOND);
  Fixture fx = make_fixture(fc);
  media::ParsedFrames ref;
  std::string error;
  fail_unless(media::parse_frames(fx.whole, ref, error), "%s", error.c_str());
  server::Options o;
  o.status_style = server::StatusStyle::Rich;
  auto srv = start_server(o);
  srv->add_track("s", track_of(fx, fc.mime));
  GstElement *p = make_pipeline(srv->base_url(), "s", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30, [target](GstElement *pl) {
    fail_unless(gst_element_seek_simple(pl, GST_FORMAT_TIME,
                                        GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
                                        gint64(target)));
    fail_unless_equals_int(gst_element_get_state(pl, nullptr, nullptr, 20 * GST_SECOND),
                           GST_STATE_CHANGE_SUCCESS);
  });
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s @%.1f: %s", fc.name, target_s,
              run.error ? run.error->message : "no EOS");
  std::vector<size_t> frames;
  for (size_t i = 0; i < run.frames.size(); i++)
    if (!run.header[i]) frames.push_back(i);
  fail_unless(!frames.empty());
  // The output lands on the target: the decoder's pre-roll first, ending
  // at or before it (AAC, Opus: fully clipped at the target with no
  // duration; MP3, Vorbis: at their own times before the segment's start,
  // for a decoder to clip away, so this sink drops them), then the frame
  // holding the target (AAC, Opus: clipped to start exactly at it; see
  // docs/design.md, "Duration and seeking").
  size_t k0 = 0;
  while (k0 < frames.size() && run.pts[frames[k0]] + run.durations[frames[k0]] <= target) k0++;
  fail_unless(k0 < frames.size());
  size_t f0 = frames[k0];
  fail_unless(run.pts[f0] <= target && target < run.pts[f0] + run.durations[f0],
              "%s @%.1f: first frame at %" GST_TIME_FORMAT, fc.name, target_s,
              GST_TIME_ARGS(run.pts[f0]));
  // DISCONT comes with the first buffer after the seek; the sink drops a
  // timed pre-roll (MP3, Vorbis) as outside the segment, and its DISCONT.
  const bool timed = fc.codec == Codec::Mp3 || fc.codec == Codec::Vorbis;
  fail_unless(run.discont[0] || (timed && k0 == 0), "%s: no DISCONT after the seek", fc.name);
  // Which reference frame is it? The one with the same bytes whose index
  // fits the count of frames that follow.
  size_t from = ref.frames.size() - frames.size();
  fail_unless(from < ref.frames.size());
  for (size_t k = 0; k < frames.size(); k++)
    fail_unless(run.frames[frames[k]] == ref.frames[from + k].data,
                "%s @%.1f: frame %zu differs from reference %zu", fc.name, target_s, k, from + k);
  // And the first with samples holds the target on the reference timeline
  // too, within a frame (segment starts not seen yet are nominal).
  GstClockTime ref_start = 0;
  for (size_t k = 0; k < from + k0; k++) ref_start += ref.frames[k].duration_ns;
  GstClockTime ref_end = ref_start + ref.frames[from + k0].duration_ns;
  GstClockTime frame = ref.frames[from + k0].duration_ns;
  fail_unless(ref_start <= target + frame && target < ref_end + frame,
              "%s @%.1f: the frame at the target is at %" GST_TIME_FORMAT " in the file", fc.name,
              target_s, GST_TIME_ARGS(ref_start));
}
GST_END_TEST;

// A segment seek ends with SEGMENT_DONE at its stop, not EOS.
GST_START_TEST(test_segment_seek) {
  const FormCase &fc = kForms[0];
  Fixture fx = make_fixture(fc);
  auto srv = start_server();
  srv->add_track("g", track_of(fx, fc.mime));
  GstElement *p = make_pipeline(srv->base_url(), "g", "", "appsink name=sink sync=false");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  SinkData sd;
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, &sd, nullptr);
  fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                         GST_STATE_CHANGE_SUCCESS);
  // The whole track is reported seekable.
  GstQuery *q = gst_query_new_seeking(GST_FORMAT_TIME);
  fail_unless(gst_element_query(p, q));
  gboolean seekable = FALSE;
  gst_query_parse_seeking(q, nullptr, &seekable, nullptr, nullptr);
  fail_unless(seekable);
  gst_query_unref(q);
  fail_unless(gst_element_seek(
      p, 1.0, GST_FORMAT_TIME,
      GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_SEGMENT | GST_SEEK_FLAG_ACCURATE),
      GST_SEEK_TYPE_SET, 1 * GST_SECOND, GST_SEEK_TYPE_SET, 4 * GST_SECOND));
  fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                         GST_STATE_CHANGE_SUCCESS);
  {
    std::lock_guard<std::mutex> g(sd.lock);
    sd.clear();
  }
  GstBus *bus = gst_element_get_bus(p);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstMessage *m = gst_bus_timed_pop_filtered(
      bus, 20 * GST_SECOND,
      GstMessageType(GST_MESSAGE_SEGMENT_DONE | GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m != nullptr, "nothing within 20 s");
  fail_unless(GST_MESSAGE_TYPE(m) == GST_MESSAGE_SEGMENT_DONE, "got %s", GST_MESSAGE_TYPE_NAME(m));
  gst_message_unref(m);
  {
    std::lock_guard<std::mutex> g(sd.lock);
    fail_unless(!sd.pts.empty());
    fail_unless(sd.pts.front() <= GST_SECOND);
    fail_unless(sd.pts.back() < 4 * GST_SECOND);
    fail_unless(sd.pts.back() + sd.durations.back() >= 4 * GST_SECOND - 50 * GST_MSECOND);
  }
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(p);
}
GST_END_TEST;

// A real format change mid-track (AAC, then MP3 files) is renegotiated:
// new caps at the join, frames still continuous.
GST_START_TEST(test_codec_change) {
  Fixture aac = make_fixture(kForms[0]);   // aac/m4a
  Fixture mp3 = make_fixture(kForms[11]);  // mp3/mkv
  media::ParsedFrames a0, m1, m2;
  std::string error;
  fail_unless(media::parse_frames(aac.segments[0], a0, error), "%s", error.c_str());
  fail_unless(media::parse_frames(mp3.segments[1], m1, error), "%s", error.c_str());
  fail_unless(media::parse_frames(mp3.segments[2], m2, error), "%s", error.c_str());
  server::Track t;
  t.segments = {aac.segments[0], mp3.segments[1], mp3.segments[2]};
  t.mime_type = "application/octet-stream";
  auto srv = start_server();
  srv->add_track("c", t);
  GstElement *p = make_pipeline(srv->base_url(), "c", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless_equals_int(run.caps.size(), 2);
  int v0 = 0, v1 = 0;
  gst_structure_get_int(gst_caps_get_structure(run.caps[0], 0), "mpegversion", &v0);
  gst_structure_get_int(gst_caps_get_structure(run.caps[1], 0), "mpegversion", &v1);
  fail_unless_equals_int(v0, 4);
  fail_unless_equals_int(v1, 1);
  fail_unless_equals_uint64(run.frames.size(),
                            a0.frames.size() + m1.frames.size() + m2.frames.size());
  fail_unless(run.frames[a0.frames.size()] == m1.frames[0].data);
  for (size_t i = 1; i < run.pts.size(); i++)
    fail_unless(run.pts[i] == run.pts[i - 1] + run.durations[i - 1], "gap at frame %zu", i);
}
GST_END_TEST;

// playbin plays the deployed form (m4a segments) through seeks.
GST_START_TEST(test_playbin_seeks) {
  Fixture fx = make_fixture(kForms[0]);
  server::Options o;
  o.status_style = server::StatusStyle::Rich;
  auto srv = start_server(o);
  srv->add_track("pb", track_of(fx, "audio/mp4"));
  std::string uri = "segdl://127.0.0.1:" + std::to_string(srv->port()) + "/pb";
  GstElement *playbin = gst_element_factory_make("playbin", nullptr);
  GstElement *asink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(asink, "sync", FALSE, nullptr);
  g_object_set(playbin, "uri", uri.c_str(), "audio-sink", asink, nullptr);
  Run run;
  run_pipeline(playbin, run, 30, [](GstElement *pl) {
    for (double t : {5.0, 0.5, 3.0, 6.0}) {
      fail_unless(
          gst_element_seek_simple(pl, GST_FORMAT_TIME,
                                  GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
                                  gint64(t * GST_SECOND)),
          "seek to %.1f refused", t);
      fail_unless_equals_int(gst_element_get_state(pl, nullptr, nullptr, 20 * GST_SECOND),
                             GST_STATE_CHANGE_SUCCESS);
      gint64 pos = -1;
      fail_unless(gst_element_query_position(pl, GST_FORMAT_TIME, &pos));
      fail_unless(std::llabs(pos - gint64(t * GST_SECOND)) < 50 * GST_MSECOND,
                  "position %" G_GINT64_FORMAT " after seeking to %.1f", pos, t);
    }
  });
  fail_unless(run.error == nullptr, "%s", run.error ? run.error->message : "");
  fail_unless(run.eos);
  gst_object_unref(playbin);
}
GST_END_TEST;

// VorbisBlocks reads the real encoder's headers and counts exactly the
// samples the decoder produces for the whole stream.
GST_START_TEST(test_vorbis_blocks) {
  const media::Packets &p = packets(Codec::Vorbis);
  const GValue *hdrs = gst_structure_get_value(gst_caps_get_structure(p.caps, 0), "streamheader");
  fail_unless(hdrs && gst_value_array_get_size(hdrs) == 3);
  GstBuffer *id = gst_value_get_buffer(gst_value_array_get_value(hdrs, 0));
  GstBuffer *setup = gst_value_get_buffer(gst_value_array_get_value(hdrs, 2));
  GstMapInfo a, b;
  fail_unless(gst_buffer_map(id, &a, GST_MAP_READ) && gst_buffer_map(setup, &b, GST_MAP_READ));
  VorbisBlocks vb;
  fail_unless(vb.init(a.data, a.size, b.data, b.size));
  fail_unless(vb.mode_count() >= 1 && vb.mode_count() <= 64);
  fail_unless(vb.block_size(false) < vb.block_size(true));
  // Not Vorbis headers: refused.
  fail_if(vb.init(b.data, b.size, a.data, a.size));
  fail_unless(vb.init(a.data, a.size, b.data, b.size));
  gst_buffer_unmap(id, &a);
  gst_buffer_unmap(setup, &b);
  int64_t samples = 0;
  for (const media::Packet &pk : p.packets) {
    int64_t n = vb.next(pk.data.data(), pk.data.size());
    fail_unless(n >= 0);
    samples += n;
  }
  Bytes whole, pcm;
  int rate = 0, channels = 0;
  std::string error;
  fail_unless(media::whole_file(p, Container::Ogg, whole, error), "%s", error.c_str());
  fail_unless(media::decode_pcm(whole, pcm, rate, channels, error), "%s", error.c_str());
  fail_unless_equals_int64(samples, int64_t(pcm.size() / (4 * channels)));
}
GST_END_TEST;

static Suite *forms_suite() {
  Suite *s = suite_create("forms");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  for (int i = 0; i < int(G_N_ELEMENTS(kForms)); i++) {
    const FormCase &fc = kForms[i];
    if (!usable(fc.codec, fc.container, fc.name)) continue;
    tcase_add_loop_test(tc, test_frames_identical, i, i + 1);
    if (fc.pcm_exact) tcase_add_loop_test(tc, test_pcm_identical, i, i + 1);
  }
  for (int i = 0; i < int(G_N_ELEMENTS(kMuxes)); i++) {
    const MuxCase &mc = kMuxes[i];
    if (usable(mc.codec, mc.source, mc.name)) tcase_add_loop_test(tc, test_mux_to_file, i, i + 1);
  }
  tcase_add_test(tc, test_bytes_refuses_files);
  tcase_add_test(tc, test_vorbis_blocks);
  const int targets = int(G_N_ELEMENTS(kSeekTargets));
  for (int f = 0; f < int(G_N_ELEMENTS(kSeekForms)); f++) {
    const FormCase &fc = kForms[kSeekForms[f]];
    if (usable(fc.codec, fc.container, fc.name))
      tcase_add_loop_test(tc, test_seek_forms, f * targets, (f + 1) * targets);
  }
  tcase_add_test(tc, test_segment_seek);
  tcase_add_test(tc, test_codec_change);
  tcase_add_test(tc, test_playbin_seeks);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  const int failed = gst_check_run_suite(forms_suite(), "forms", __FILE__);
  return failed == 0 && left_out > 0 ? 77 : failed;
}
