// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdl::Timeline alone: synthetic frame sequences with
 * segment trims (edit lists, pre-skip, end trims), demuxer clipping, gaps,
 * rate changes and seeks, checked decision by decision.
 */
#include <gst/check/gstcheck.h>

#include "segdl/timeline.h"

using namespace segdl;

namespace {

constexpr int kRate = 48000;

// ns of `samples` at 48 kHz.
uint64_t ns(uint64_t samples) {
  return samples_to_ns(samples, kRate);
}

// Pushes `count` frames of `samples` each for `segment`, tokens from `token`.
void push_frames(Timeline &tl, int64_t segment, int count, uint64_t samples, uint64_t &token,
                 Timeline::Decisions &out) {
  for (int i = 0; i < count; i++) tl.push(segment, samples, token++, out);
}

// Every decision kept is continuous with the one before.
void check_continuous(const Timeline::Decisions &out) {
  uint64_t end = 0;
  bool have = false;
  for (const FrameDecision &d : out) {
    if (d.drop) continue;
    if (have && !d.discont)
      fail_unless(d.pts_ns == end,
                  "token %" G_GUINT64_FORMAT " at %" G_GUINT64_FORMAT
                  " after an end at %" G_GUINT64_FORMAT,
                  d.token, d.pts_ns, end);
    end = d.pts_ns + d.duration_ns;
    have = true;
  }
}

Timeline make(uint64_t hold = 0) {
  Timeline tl;
  tl.set_rate(kRate);
  tl.set_hold(hold);
  return tl;
}

}  // namespace

GST_START_TEST(test_plain_frames) {
  Timeline tl = make();
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 10, 1024, token, out);
  fail_unless_equals_int(out.size(), 10);
  for (size_t i = 0; i < out.size(); i++) {
    fail_unless_equals_uint64(out[i].token, i);
    fail_if(out[i].drop);
    fail_unless_equals_uint64(out[i].pts_ns, ns(1024 * i));
    fail_unless_equals_uint64(out[i].duration_ns, ns(1024 * (i + 1)) - ns(1024 * i));
    fail_unless_equals_uint64(out[i].clip_start + out[i].clip_end, 0);
    fail_unless(out[i].discont == (i == 0));
  }
  fail_unless_equals_uint64(tl.position_samples(), 10240);
}
GST_END_TEST;

// An edit list's media time: the frames wholly before it prime the decoder
// (kept, fully clipped, no duration); the one straddling it is clipped.
GST_START_TEST(test_start_trim) {
  Timeline tl = make();
  SegmentTrim t;
  t.start = 2048 + 100;
  tl.set_trim(0, t);
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 4, 1024, token, out);
  fail_unless_equals_int(out.size(), 4);
  for (int i = 0; i < 2; i++) {
    fail_if(out[i].drop);
    fail_unless_equals_uint64(out[i].clip_start, 1024);
    fail_unless_equals_uint64(out[i].duration_ns, 0);
    fail_unless_equals_uint64(out[i].pts_ns, 0);
  }
  fail_unless_equals_uint64(out[2].clip_start, 100);
  fail_unless_equals_uint64(out[2].pts_ns, 0);
  fail_unless_equals_uint64(out[2].duration_ns, ns(924));
  fail_unless_equals_uint64(out[3].pts_ns, ns(924));
  fail_unless_equals_uint64(tl.position_samples(), 924 + 1024);
  check_continuous(out);
}
GST_END_TEST;

// An edit's duration: the frame straddling its end is clipped, the ones
// after it dropped.
GST_START_TEST(test_length_trim) {
  Timeline tl = make();
  SegmentTrim t;
  t.start = 0;
  t.length = 5000;
  tl.set_trim(0, t);
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 6, 1024, token, out);
  fail_unless_equals_int(out.size(), 6);
  fail_unless_equals_uint64(out[4].clip_end, 5 * 1024 - 5000);
  fail_if(out[4].drop);
  fail_unless(out[5].drop);
  fail_unless_equals_uint64(tl.position_samples(), 5000);
  check_continuous(out);
}
GST_END_TEST;

// An end trim known only when the segment ends (Vorbis end granule, LAME
// padding): the frames held back take it.
GST_START_TEST(test_end_trim) {
  Timeline tl = make(4096);
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 8, 1024, token, out);
  fail_unless(out.size() < 8, "frames near the end are held back");
  SegmentTrim t;
  t.end = 1500;
  tl.set_trim(0, t);
  tl.end_segment(out);
  fail_unless_equals_int(out.size(), 8);
  fail_unless(out[7].drop);
  fail_unless_equals_uint64(out[6].clip_end, 1500 - 1024);
  fail_unless_equals_uint64(tl.position_samples(), 8 * 1024 - 1500);
  check_continuous(out);
}
GST_END_TEST;

// Segment 1 repeats the last frame of segment 0 (cut separately with
// -c copy) and says so by its edit: that frame is decoded, not heard twice.
// Each segment's real start is remembered.
GST_START_TEST(test_segments_and_starts) {
  Timeline tl = make();
  SegmentTrim shared;
  shared.start = 1024;
  tl.set_trim(1, shared);
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 5, 1024, token, out);
  push_frames(tl, 1, 5, 1024, token, out);
  tl.end_segment(out);
  fail_unless_equals_int(out.size(), 10);
  fail_unless_equals_uint64(out[5].clip_start, 1024);
  fail_unless_equals_uint64(out[5].duration_ns, 0);
  fail_unless_equals_uint64(out[6].pts_ns, ns(5 * 1024));
  uint64_t start = 0;
  fail_unless(tl.segment_start(1, start));
  fail_unless_equals_uint64(start, ns(5 * 1024));
  fail_unless_equals_uint64(tl.position_samples(), 9 * 1024);
  check_continuous(out);
}
GST_END_TEST;

// Clipping the demuxer put on a frame (Opus pre-skip, discard padding).
GST_START_TEST(test_frame_clipping) {
  Timeline tl = make();
  Timeline::Decisions out;
  tl.push(0, 960, 0, out, 312, 0);
  tl.push(0, 960, 1, out);
  tl.push(0, 960, 2, out, 0, 200);
  fail_unless_equals_int(out.size(), 3);
  fail_unless_equals_uint64(out[0].clip_start, 312);
  fail_unless_equals_uint64(out[0].duration_ns, ns(648));
  fail_unless_equals_uint64(out[1].pts_ns, ns(648));
  fail_unless_equals_uint64(out[2].clip_end, 200);
  fail_unless_equals_uint64(tl.position_samples(), 648 + 960 + 760);
  check_continuous(out);
}
GST_END_TEST;

// A missing segment: the position moves to where the next one begins (its
// nominal start, shifted by what was seen of the real ones).
GST_START_TEST(test_gap) {
  Timeline tl = make();
  NominalSegments nominal;
  nominal.first_s = 1.5;
  nominal.rest_s = 3.0;
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 70, 1024, token, out);  // 1.4933 s: a little short of 1.5 s
  tl.end_segment(out);
  uint64_t start = 0, duration = 0;
  tl.skip_segment(1, nominal, start, duration);
  fail_unless_equals_uint64(start, ns(70 * 1024));
  fail_unless_equals_uint64(start + duration, 4500000000ull);
  out.clear();
  tl.push(2, 1024, token++, out);
  fail_unless_equals_int(out.size(), 1);
  fail_unless(out[0].discont);
  fail_unless_equals_uint64(out[0].pts_ns, 4500000000ull);
}
GST_END_TEST;

namespace {

// The seek of the two tests below: segment 0 (71 frames of 1024, so
// segment 1 really starts at 71 * 1024) and 10 frames of segment 1 seen,
// a seek 300 samples into segment 1's frame 5 with 2048 samples of
// pre-roll in `mode`, then segment 1's 10 frames again: their decisions.
// Frames 0..2 end before target - preroll: dropped; 3 and 4 are the
// pre-roll (3 with DISCONT); 5 holds the target.
const uint64_t kSeekTarget = ns(71 * 1024 + 5 * 1024 + 300);
Timeline::Decisions seek_into_segment_1(PrerollMode mode) {
  Timeline tl = make();
  tl.set_preroll(2048, mode);
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 71, 1024, token, out);
  push_frames(tl, 1, 10, 1024, token, out);
  tl.end_segment(out);
  SeekPlan plan = tl.seek(kSeekTarget);
  fail_unless_equals_int(plan.segment, 1);
  fail_unless_equals_uint64(plan.start_ns, ns(71 * 1024));
  out.clear();
  push_frames(tl, 1, 10, 1024, token, out);
  fail_unless_equals_int(out.size(), 10);
  for (int i = 0; i < 3; i++) fail_unless(out[i].drop, "frame %d", i);
  for (int i = 3; i < 5; i++) {
    fail_if(out[i].drop, "frame %d", i);
    fail_unless(out[i].preroll, "frame %d", i);
  }
  fail_unless(out[3].discont);
  fail_if(out[5].preroll);
  fail_if(out[6].preroll);
  return out;
}

}  // namespace

// A seek lands on the target's sample: the frames before the pre-roll are
// dropped, those in it kept at their own times for the decoder only
// (pre-roll, ending at or before the target), and the one holding the
// target is stamped so that clipping its decoded samples to the segment
// (which starts at the target) leaves those from the target's on.
GST_START_TEST(test_seek_exact) {
  const uint64_t target = kSeekTarget;
  Timeline::Decisions out = seek_into_segment_1(PrerollMode::Timed);
  for (int i = 3; i < 5; i++) {
    fail_unless_equals_uint64(out[i].clip_start, 0);
    fail_unless_equals_uint64(out[i].pts_ns, ns(71 * 1024 + uint64_t(i) * 1024));
    fail_unless_equals_uint64(out[i].duration_ns, ns(71 * 1024 + uint64_t(i + 1) * 1024) -
                                                      ns(71 * 1024 + uint64_t(i) * 1024));
  }
  fail_unless_equals_uint64(out[5].clip_start, 0);
  // 300 samples before the target, rounded up to whole ns (the clipping
  // rounds down): here the frame's own pts.
  fail_unless_equals_uint64(out[5].pts_ns, target - 6250000);
  fail_unless_equals_uint64(out[5].pts_ns, ns(71 * 1024 + 5 * 1024));
  fail_unless_equals_uint64(out[5].pts_ns + out[5].duration_ns, ns(71 * 1024 + 6 * 1024));
  check_continuous(out);
}
GST_END_TEST;

// The same seek with the pre-roll clipped (PrerollMode::Clipped, for AAC
// behind aacparse): the pre-roll decoded but fully clipped at the target's
// pts with no duration, the frame holding the target clipped at its start.
GST_START_TEST(test_seek_exact_clipped) {
  const uint64_t target = kSeekTarget;
  Timeline::Decisions out = seek_into_segment_1(PrerollMode::Clipped);
  for (int i = 3; i < 5; i++) {
    fail_unless_equals_uint64(out[i].clip_start, 1024);
    fail_unless_equals_uint64(out[i].pts_ns, target);
    fail_unless_equals_uint64(out[i].duration_ns, 0);
  }
  fail_unless_equals_uint64(out[5].clip_start, 300);
  fail_unless_equals_uint64(out[5].pts_ns, target);
  fail_unless_equals_uint64(out[5].pts_ns + out[5].duration_ns, ns(71 * 1024 + 6 * 1024));
  fail_unless_equals_uint64(out[6].clip_start, 0);
  check_continuous(out);
}
GST_END_TEST;

// A target just after a segment's start: the pre-roll comes from the
// segment before it.
GST_START_TEST(test_seek_preroll_previous_segment) {
  Timeline tl = make();
  tl.set_preroll(2048);
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 71, 1024, token, out);
  push_frames(tl, 1, 2, 1024, token, out);
  tl.end_segment(out);
  SeekPlan plan = tl.seek(ns(71 * 1024 + 10));
  fail_unless_equals_int(plan.segment, 0);
  fail_unless_equals_uint64(plan.start_ns, 0);
}
GST_END_TEST;

// Segments not seen yet: the seek restarts at the last segment whose start
// was seen (the frames to the target are counted from there).
GST_START_TEST(test_seek_unseen) {
  Timeline tl = make();
  Timeline::Decisions out;
  uint64_t token = 0;
  push_frames(tl, 0, 71, 1024, token, out);
  push_frames(tl, 1, 1, 1024, token, out);
  tl.end_segment(out);
  uint64_t s1 = ns(71 * 1024);
  SeekPlan plan = tl.seek(s1 + 3000000000ull + 1000000);
  fail_unless_equals_int(plan.segment, 1);
  fail_unless_equals_uint64(plan.start_ns, s1);
  plan = tl.seek(60000000000ull);
  fail_unless_equals_int(plan.segment, 1);
  plan = tl.seek(0);
  fail_unless_equals_int(plan.segment, 0);
  fail_if(tl.seeking());
}
GST_END_TEST;

// A new rate: the time so far is kept, samples count at the new rate.
GST_START_TEST(test_rate_change) {
  Timeline tl = make();
  Timeline::Decisions out;
  tl.push(0, 48000, 0, out);
  tl.end_segment(out);
  tl.set_rate(44100);
  tl.push(1, 44100, 1, out);
  fail_unless_equals_int(out.size(), 2);
  fail_unless_equals_uint64(out[1].pts_ns, 1000000000ull);
  fail_unless_equals_uint64(out[1].duration_ns, 1000000000ull);
  fail_unless_equals_uint64(tl.position_ns(), 2000000000ull);
}
GST_END_TEST;

static Suite *timeline_core_suite() {
  Suite *s = suite_create("timeline-core");
  TCase *tc = tcase_create("core");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_plain_frames);
  tcase_add_test(tc, test_start_trim);
  tcase_add_test(tc, test_length_trim);
  tcase_add_test(tc, test_end_trim);
  tcase_add_test(tc, test_segments_and_starts);
  tcase_add_test(tc, test_frame_clipping);
  tcase_add_test(tc, test_gap);
  tcase_add_test(tc, test_seek_exact);
  tcase_add_test(tc, test_seek_exact_clipped);
  tcase_add_test(tc, test_seek_preroll_previous_segment);
  tcase_add_test(tc, test_seek_unseen);
  tcase_add_test(tc, test_rate_change);
  return s;
}

GST_CHECK_MAIN(timeline_core)
