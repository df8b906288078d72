// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the timeline join: parsed frames identical to the
 * unsegmented encode's, timestamps continuous across joins, duration, and
 * seeking (accurate, at joins, backwards after EOS, in a row, into segments
 * not produced yet).
 */
#include "harness.h"

#include <algorithm>

#include "common/segmenter.h"

#include <gst/pbutils/pbutils.h>

using namespace segdl;
using namespace segdl::test;

namespace {

// The reference frames of an ADTS encode, as raw AAC (header stripped: the
// element outputs stream-format=raw), with their original timing.
struct RefFrames {
  std::vector<Bytes> frames;
  std::vector<GstClockTime> pts, dur;
};

RefFrames adts_reference(const media::Encoded &enc) {
  RefFrames ref;
  for (size_t i = 0; i < enc.frames.size(); i++) {
    uint64_t off = enc.frames[i].offset;
    uint64_t end = i + 1 < enc.frames.size() ? enc.frames[i + 1].offset : enc.bytes.size();
    bool crc = (enc.bytes[off + 1] & 0x01) == 0;
    uint64_t header = crc ? 9 : 7;
    ref.frames.emplace_back(enc.bytes.begin() + off + header, enc.bytes.begin() + end);
    ref.pts.push_back(enc.frames[i].pts_ns);
    ref.dur.push_back(enc.frames[i].duration_ns);
  }
  return ref;
}

// Timestamps continuous: each frame starts where the previous ended (the
// element counts samples, so at most 1 ns of rounding).
void check_continuous(const Run &run) {
  for (size_t i = 1; i < run.pts.size(); i++) {
    GstClockTime expect = run.pts[i - 1] + run.durations[i - 1];
    GstClockTimeDiff d = GST_CLOCK_DIFF(expect, run.pts[i]);
    fail_unless(d >= -1 && d <= 1,
                "frame %zu at %" GST_TIME_FORMAT ", previous ends at %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(run.pts[i]), GST_TIME_ARGS(expect));
  }
}

// The output, from its first frame on, is the reference from frame `first`
// on: same bytes, same count, in order.
// (No local named `first`: gst-check's equality macros declare one.)
void check_frames_from(const Run &run, const RefFrames &ref, size_t from) {
  size_t expected = ref.frames.size() - from;
  fail_unless_equals_uint64(run.frames.size(), expected);
  for (size_t i = 0; i < run.frames.size(); i++)
    fail_unless(run.frames[i] == ref.frames[from + i], "frame %zu differs from reference %zu", i,
                from + i);
}

server::Options rich() {
  server::Options o;
  o.status_style = server::StatusStyle::Rich;
  return o;
}

std::function<void(GstElement *)> seek_to(GstClockTime t,
                                          GstSeekFlags extra = GST_SEEK_FLAG_ACCURATE) {
  return [t, extra](GstElement *p) {
    fail_unless(gst_element_seek_simple(p, GST_FORMAT_TIME,
                                        GstSeekFlags(GST_SEEK_FLAG_FLUSH | extra), gint64(t)));
    fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                           GST_STATE_CHANGE_SUCCESS);
  };
}

// After a seek the output lands on the target: the buffers before the first
// one with samples are the decoder's pre-roll (fully clipped, no duration,
// at the target); the first with samples starts exactly at the target.
// Returns how many pre-roll buffers came first.
size_t check_lands_on(const std::vector<GstClockTime> &pts,
                      const std::vector<GstClockTime> &durations, GstClockTime target) {
  fail_unless(!pts.empty(), "nothing after the seek");
  size_t i = 0;
  for (; i < pts.size() && durations[i] == 0; i++)
    fail_unless(pts[i] == target,
                "pre-roll buffer %zu at %" GST_TIME_FORMAT ", not the target %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(pts[i]), GST_TIME_ARGS(target));
  fail_unless(i < pts.size(), "no buffer with samples after the seek");
  fail_unless(pts[i] == target,
              "first buffer with samples at %" GST_TIME_FORMAT ", the target is %" GST_TIME_FORMAT,
              GST_TIME_ARGS(pts[i]), GST_TIME_ARGS(target));
  return i;
}

// Index of the reference frame holding `t` in the reference timeline.
size_t ref_index_at(const RefFrames &ref, GstClockTime t) {
  for (size_t i = 0; i < ref.pts.size(); i++)
    if (t < ref.pts[i] + ref.dur[i]) return i;
  return ref.pts.size();
}

}  // namespace

// ADTS segments joined: raw AAC frames with codec_data, identical to the
// encode's, timestamps from 0 and continuous.
GST_START_TEST(test_adts_frames) {
  auto srv = start_server();
  const media::Encoded &enc = fixture(media::Form::Adts);
  srv->add_track("a", make_track(media::Form::Adts));
  RefFrames ref = adts_reference(enc);
  GstElement *p = make_pipeline(srv->base_url(), "a", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless_equals_uint64(run.pts.front(), 0);
  fail_unless(run.discont.front());
  for (size_t i = 1; i < run.discont.size(); i++) fail_if(run.discont[i], "DISCONT at %zu", i);
  check_continuous(run);
  check_frames_from(run, ref, 0);
  GstClockTime end = run.pts.back() + run.durations.back();
  GstClockTimeDiff diff = GST_CLOCK_DIFF(GstClockTime(enc.duration_ns), end);
  fail_unless(diff >= -25 * GST_MSECOND && diff <= 25 * GST_MSECOND,
              "duration %" GST_TIME_FORMAT " vs %" GST_TIME_FORMAT, GST_TIME_ARGS(end),
              GST_TIME_ARGS(enc.duration_ns));
}
GST_END_TEST;

// MPEG-TS segments joined: the AAC frames inside, raw, identical to what a
// demuxer reads from the unsegmented stream, from 0 and continuous.
GST_START_TEST(test_ts_frames) {
  auto srv = start_server();
  const media::Encoded &enc = fixture(media::Form::MpegTs);
  srv->add_track("ts", make_track(media::Form::MpegTs));
  media::ParsedFrames ref;
  std::string error;
  fail_unless(media::parse_frames(enc.bytes, ref, error), "%s", error.c_str());
  GstElement *p = make_pipeline(srv->base_url(), "ts", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless_equals_uint64(run.pts.front(), 0);
  check_continuous(run);
  fail_unless_equals_uint64(run.frames.size(), ref.frames.size());
  for (size_t i = 0; i < ref.frames.size(); i++) {
    // The reference reader keeps ADTS headers; the element outputs raw AAC.
    const Bytes &f = ref.frames[i].data;
    size_t header = (f[1] & 0x01) ? 7 : 9;
    fail_unless(run.frames[i] == Bytes(f.begin() + header, f.end()), "frame %zu differs", i);
  }
}
GST_END_TEST;

// Key-unit seeks: every audio frame is a key unit; the output lands on the
// position (as an accurate seek does).
GST_START_TEST(test_seek_key_unit) {
  auto srv = start_server(rich());
  srv->add_track("k", make_track(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "k", "", "appsink name=sink sync=false");
  Run run;
  GstClockTime target = GstClockTime(4.5 * GST_SECOND);
  run_pipeline(p, run, 30,
               seek_to(target, GstSeekFlags(GST_SEEK_FLAG_KEY_UNIT | GST_SEEK_FLAG_SNAP_BEFORE)));
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  // It snaps to the start of the frame holding the target: the pre-roll and
  // the first frame with samples at that frame's pts.
  size_t i = 0;
  while (i < run.pts.size() && run.durations[i] == 0) i++;
  fail_unless(i < run.pts.size());
  fail_unless(run.pts[i] <= target && target < run.pts[i] + run.durations[i],
              "first frame at %" GST_TIME_FORMAT, GST_TIME_ARGS(run.pts[i]));
  check_lands_on(run.pts, run.durations, run.pts[i]);
  check_continuous(run);
  fail_unless(run.duration_changed >= 1, "no DURATION_CHANGED");
}
GST_END_TEST;

// The DURATION query answers the track length from the rich status.
GST_START_TEST(test_duration_query) {
  auto srv = start_server(rich());
  srv->add_track("d", make_track(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "d", "", "fakesink sync=false");
  fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                         GST_STATE_CHANGE_SUCCESS);
  gint64 dur = -1;
  // The status may still be on its way when preroll completes: bounded wait
  // for the DURATION_CHANGED the element posts.
  GstBus *bus = gst_element_get_bus(p);
  for (int i = 0; i < 50 && !gst_element_query_duration(p, GST_FORMAT_TIME, &dur); i++) {
    GstMessage *m =
        gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_DURATION_CHANGED);
    if (m) gst_message_unref(m);
  }
  gst_object_unref(bus);
  const media::Encoded &enc = fixture(media::Form::Adts);
  GstClockTimeDiff diff = GST_CLOCK_DIFF(GstClockTime(enc.duration_ns), GstClockTime(dur));
  fail_unless(dur > 0 && diff >= -GST_MSECOND && diff <= GST_MSECOND, "duration %" G_GINT64_FORMAT,
              dur);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}
GST_END_TEST;

// The deployed backends send only `ready` and `totalSegments`: the
// DURATION query estimates from the total and the nominal lengths at once,
// and answers the length counted in samples once the end was parsed.
GST_START_TEST(test_duration_estimate) {
  auto srv = start_server();  // bare status
  srv->add_track("b", make_track(media::Form::Adts));
  GstElement *p =
      make_pipeline(srv->base_url(), "b", "first-segment-duration=1.5 segment-duration=3.0",
                    "fakesink sync=false");
  GstBus *bus = gst_element_get_bus(p);
  fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                         GST_STATE_CHANGE_SUCCESS);
  gint64 dur = -1;
  for (int i = 0; i < 50 && !gst_element_query_duration(p, GST_FORMAT_TIME, &dur); i++) {
    GstMessage *m =
        gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_DURATION_CHANGED);
    if (m) gst_message_unref(m);
  }
  fail_unless_equals_int64(dur, gint64(10.5 * GST_SECOND));  // 1.5 + 3 * 3
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                             GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
  gst_message_unref(m);
  fail_unless(gst_element_query_duration(p, GST_FORMAT_TIME, &dur));
  const media::Encoded &enc = fixture(media::Form::Adts);
  uint64_t frames = enc.frames.size();
  fail_unless_equals_int64(dur, gint64(gst_util_uint64_scale_round(frames * 1024, GST_SECOND,
                                                                   guint64(enc.sample_rate))));
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(p);
}
GST_END_TEST;

// Seeks into every part of the track: the output lands on the position
// (first sample out = the target's), DISCONT, and the frames from the
// decoder's pre-roll on are the encode's.
static const double kSeekTargets[] = {0.0, 0.7, 1.5, 4.5, 9.9};

GST_START_TEST(test_seek_adts) {
  const double target_s = kSeekTargets[__i__];
  const GstClockTime target = GstClockTime(target_s * GST_SECOND);
  auto srv = start_server(rich());
  srv->add_track("s", make_track(media::Form::Adts));
  RefFrames ref = adts_reference(fixture(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "s", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30, seek_to(target));
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "seek to %.2f s: no clean EOS", target_s);
  fail_unless(!run.pts.empty());
  check_lands_on(run.pts, run.durations, target);
  fail_unless(run.discont.front());
  check_continuous(run);
  // The decoder's pre-roll (one AAC frame) comes first. The segment
  // boundaries come from the status durations, so the frame found may be
  // the encode's neighbour: it must match the frames from there on exactly.
  size_t expect = ref_index_at(ref, target);
  size_t found = ref.frames.size();
  for (size_t j = expect > 1 ? expect - 2 : 0; j <= expect + 1 && j < ref.frames.size(); j++)
    if (run.frames.front() == ref.frames[j]) found = j;
  fail_unless(found < ref.frames.size(), "first frame after the seek is not near frame %zu",
              expect);
  check_frames_from(run, ref, found);
}
GST_END_TEST;

// Seek backwards once the track has ended.
GST_START_TEST(test_seek_after_eos) {
  auto srv = start_server(rich());
  srv->add_track("e", make_track(media::Form::Adts));
  RefFrames ref = adts_reference(fixture(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "e", "", "appsink name=sink sync=false");
  // Play to EOS, then seek back to 2 s and play again.
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
  size_t all = 0;
  {
    std::lock_guard<std::mutex> g(sd.lock);
    all = sd.frames.size();
    sd.clear();
  }
  fail_unless_equals_uint64(all, ref.frames.size());
  fail_unless(gst_element_seek_simple(p, GST_FORMAT_TIME,
                                      GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
                                      2 * GST_SECOND));
  m = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                 GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "no second EOS");
  gst_message_unref(m);
  gst_element_set_state(p, GST_STATE_NULL);
  {
    std::lock_guard<std::mutex> g(sd.lock);
    size_t preroll = check_lands_on(sd.pts, sd.durations, 2 * GST_SECOND);
    size_t expect = ref_index_at(ref, 2 * GST_SECOND);
    size_t played = sd.frames.size() - preroll;
    fail_unless(played + expect >= ref.frames.size() - 1 &&
                played + expect <= ref.frames.size() + 1);
  }
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(p);
}
GST_END_TEST;

// Several flushing seeks in a row: the last one wins.
GST_START_TEST(test_seek_in_a_row) {
  auto srv = start_server(rich());
  srv->add_track("r", make_track(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "r", "", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30, [](GstElement *pl) {
    for (double t : {8.0, 1.0, 6.0, 3.2}) seek_to(GstClockTime(t * GST_SECOND))(pl);
  });
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  GstClockTime target = GstClockTime(3.2 * GST_SECOND);
  check_lands_on(run.pts, run.durations, target);
  check_continuous(run);
}
GST_END_TEST;

// A seek into a segment the backend has not produced yet waits for it
// (posting BUFFERING) instead of failing.
// The test decides when segments appear (hold_ready), so nothing races.
// Run twice: an accurate seek (counts from segment 0, so segments 1 and 2
// are fetched once produced) and one that did not ask to be accurate (it
// restarts at segment 3 from the estimate: 1 and 2 are never fetched).
GST_START_TEST(test_seek_not_yet_produced) {
  const bool accurate = __i__ == 0;
  auto srv = start_server(rich());
  srv->add_track("p", make_track(media::Form::Adts));
  // The first wait runs out before segment 0 is there (no segment is
  // produced until the element buffers), as it may on a loaded machine:
  // segment 0 alone must then end the BUFFERING for the preroll. With the
  // default buffer-size (64 KB, more than this segment) it waited for
  // segment 1, which only the seek below lets come: the preroll hung.
  srv->hold_ready("p", 0);
  GstElement *p =
      make_pipeline(srv->base_url(), "p", "buffer-size=4096", "appsink name=sink sync=false");
  fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  {
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *m = gst_bus_timed_pop_filtered(bus, 20 * GST_SECOND, GST_MESSAGE_BUFFERING);
    fail_unless(m != nullptr, "no BUFFERING while waiting for segment 0");
    gst_message_unref(m);
    gst_object_unref(bus);
  }
  srv->hold_ready("p", 1);  // only segment 0 until the seek is waiting
  Run run;
  GstClockTime target = GstClockTime(9.0 * GST_SECOND);
  int lowest_buffering = 100;
  run_pipeline(p, run, 30, [&](GstElement *pl) {
    // The BUFFERING of the preroll's wait is not the one looked for.
    GstBus *bus = gst_element_get_bus(pl);
    while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_BUFFERING)) gst_message_unref(m);
    fail_unless(gst_element_seek_simple(
        pl, GST_FORMAT_TIME,
        GstSeekFlags(GST_SEEK_FLAG_FLUSH | (accurate ? GST_SEEK_FLAG_ACCURATE : 0)),
        gint64(target)));
    // It waits for segment 3, and says so.
    for (;;) {
      GstMessage *m = gst_bus_timed_pop_filtered(
          bus, 20 * GST_SECOND, GstMessageType(GST_MESSAGE_BUFFERING | GST_MESSAGE_ERROR));
      fail_unless(m != nullptr, "no BUFFERING while waiting for segment 3");
      fail_if(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR, "ERROR while waiting for segment 3");
      gst_message_parse_buffering(m, &lowest_buffering);
      gst_message_unref(m);
      if (lowest_buffering < 100) break;
    }
    gst_object_unref(bus);
    srv->hold_ready("p", -1);  // every segment ready now
    fail_unless_equals_int(gst_element_get_state(pl, nullptr, nullptr, 20 * GST_SECOND),
                           GST_STATE_CHANGE_SUCCESS);
  });
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless(lowest_buffering < 100);
  check_lands_on(run.pts, run.durations, target);
  check_continuous(run);
  // Segments 1 and 2 were never ready before the seek. Accurate: the seek
  // restarts at segment 0 (the last start it counted) and counts their
  // frames once they are produced, so they are fetched (200) after it.
  // Not accurate: it restarts at segment 3, and they are never fetched
  // (docs/design.md).
  fail_unless(srv->wait_idle(10000));
  for (int64_t k : {1, 2}) {
    bool fetched = false;
    for (const auto &r : srv->requests())
      fetched |= r.path == "/stream" && r.segment == k && r.http_status == 200;
    fail_unless(fetched == accurate, "segment %" G_GINT64_FORMAT " %s", k,
                fetched ? "fetched" : "not counted");
  }
}
GST_END_TEST;

static Suite *timeline_suite() {
  Suite *s = suite_create("timeline");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_adts_frames);
  tcase_add_test(tc, test_duration_query);
  tcase_add_test(tc, test_duration_estimate);
  tcase_add_test(tc, test_ts_frames);
  tcase_add_test(tc, test_seek_key_unit);
  tcase_add_loop_test(tc, test_seek_adts, 0, G_N_ELEMENTS(kSeekTargets));
  tcase_add_test(tc, test_seek_after_eos);
  tcase_add_test(tc, test_seek_in_a_row);
  tcase_add_loop_test(tc, test_seek_not_yet_produced, 0, 2);
  return s;
}

GST_CHECK_MAIN(timeline);
