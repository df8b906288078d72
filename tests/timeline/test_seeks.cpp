// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdl::Timeline's seeks: a seek restarts at the latest
 * segment whose start was counted and counts the frames to the target, so
 * it lands on the target's own sample in segments never seen, whatever
 * their real start; key-unit seeks land on a frame start. Checked decision
 * by decision, as in timeline-core.
 */
#include <gst/check/gstcheck.h>

#include "segdl/timeline.h"

using namespace segdl;

namespace {

constexpr int kRate = 48000;
constexpr uint64_t kFrame = 1024;

uint64_t ns(uint64_t samples) {
  return samples_to_ns(samples, kRate);
}

Timeline make(uint64_t hold, uint64_t preroll) {
  Timeline tl;
  tl.set_rate(kRate);
  tl.set_hold(hold);
  tl.set_preroll(preroll);
  return tl;
}

// Pushes `count` frames of segment `segment` (tokens from `token`), then
// ends it.
void play(Timeline &tl, int64_t segment, int count, uint64_t &token, Timeline::Decisions &out) {
  for (int i = 0; i < count; i++) tl.push(segment, kFrame, token++, out);
  tl.end_segment(out);
}

// The first decision that presents samples.
const FrameDecision *first_presented(const Timeline::Decisions &out) {
  for (const FrameDecision &d : out)
    if (!d.drop && d.duration_ns > 0) return &d;
  return nullptr;
}

// Segment 0 holds 706.4 frames' worth of time in 706 frames, then its
// encoder delay makes segment 1 start 410 samples after a nominal 15 s: no
// rule about the container is needed, the frames are counted.
constexpr int kSeg0Frames = 706;
constexpr uint64_t kTarget = 20 * 48000;

}  // namespace

// A fresh track (nothing seen): the seek restarts at segment 0 and counts
// through segment 1 to the target, which lands on its own sample; the
// decoder's pre-roll comes fully clipped at the target's pts.
GST_START_TEST(test_unseen_counted) {
  Timeline tl = make(0, 2 * kFrame);
  SeekPlan plan = tl.seek(ns(kTarget));
  fail_unless_equals_int(plan.segment, 0);
  fail_unless_equals_uint64(plan.start_ns, 0);
  Timeline::Decisions out;
  uint64_t token = 0;
  play(tl, 0, kSeg0Frames, token, out);
  play(tl, 1, 300, token, out);
  fail_unless_equals_int(out.size(), kSeg0Frames + 300);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->token, kTarget / kFrame);
  fail_unless_equals_uint64(d->clip_start, kTarget % kFrame);
  fail_unless_equals_uint64(d->pts_ns, ns(kTarget));
  size_t at = size_t(d->token);
  fail_unless(out[at - 2].discont);
  for (size_t t : {at - 2, at - 1}) {
    fail_if(out[t].drop);
    fail_unless_equals_uint64(out[t].clip_start, kFrame);
    fail_unless_equals_uint64(out[t].duration_ns, 0);
    fail_unless_equals_uint64(out[t].pts_ns, ns(kTarget));
  }
  for (size_t t = 0; t < at - 2; t++) fail_unless(out[t].drop, "frame %zu", t);
  // Both segments' starts are now known: the next seek restarts at 1.
  uint64_t start = 0;
  fail_unless(tl.segment_start(1, start));
  fail_unless_equals_uint64(start, ns(kSeg0Frames * kFrame));
  plan = tl.seek(ns(kTarget));
  fail_unless_equals_int(plan.segment, 1);
  fail_unless_equals_uint64(plan.start_ns, ns(kSeg0Frames * kFrame));
}
GST_END_TEST;

// Frames held back (hold > 0) and trims on the way are counted like any
// other: a segment trimmed by 500 samples at its start shifts the target's
// frame by that much.
GST_START_TEST(test_counted_through_trim) {
  Timeline tl = make(8192, 0);
  SegmentTrim trim;
  trim.start = 500;
  tl.set_trim(1, trim);
  tl.seek(ns(kTarget));
  Timeline::Decisions out;
  uint64_t token = 0;
  play(tl, 0, kSeg0Frames, token, out);
  play(tl, 1, 300, token, out);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  uint64_t into = kTarget - kSeg0Frames * kFrame + 500;  // samples into segment 1
  fail_unless_equals_uint64(d->token, kSeg0Frames + into / kFrame);
  fail_unless_equals_uint64(d->clip_start, into % kFrame);
  fail_unless_equals_uint64(d->pts_ns, ns(kTarget));
}
GST_END_TEST;

// The restart segment is the latest seen at or before the target less the
// pre-roll, not a later one seen, nor one whose start lies past it.
GST_START_TEST(test_restart_segment) {
  Timeline tl = make(0, 2 * kFrame);
  Timeline::Decisions out;
  uint64_t token = 0;
  play(tl, 0, 10, token, out);
  play(tl, 1, 10, token, out);
  play(tl, 2, 10, token, out);
  fail_unless_equals_int(tl.seek(ns(25 * kFrame)).segment, 2);
  fail_unless_equals_int(tl.seek(ns(21 * kFrame)).segment, 1);  // pre-roll in segment 1
  fail_unless_equals_int(tl.seek(ns(15 * kFrame)).segment, 1);
  fail_unless_equals_int(tl.seek(ns(5 * kFrame)).segment, 0);
  fail_unless_equals_int(tl.seek(ns(500 * kFrame)).segment, 2);
  SeekPlan plan = tl.seek(0);
  fail_unless_equals_int(plan.segment, 0);
  fail_if(tl.seeking());
}
GST_END_TEST;

// Key-unit seeks land on a frame start: the one holding the target
// (before), the next one (after), or the nearer (nearest); the pre-roll
// comes at that frame's pts, DISCONT on the first.
GST_START_TEST(test_key_unit) {
  struct Case {
    SeekSnap snap;
    uint64_t target;  // samples
    uint64_t frame;   // the first presented frame
  };
  const Case cases[] = {
      {SeekSnap::Before, 10 * kFrame + 700, 10},  {SeekSnap::After, 10 * kFrame + 300, 11},
      {SeekSnap::Nearest, 10 * kFrame + 300, 10}, {SeekSnap::Nearest, 10 * kFrame + 700, 11},
      {SeekSnap::After, 10 * kFrame, 10},
  };
  for (const Case &c : cases) {
    Timeline tl = make(4096, 2 * kFrame);
    SeekPlan plan = tl.seek(ns(c.target), c.snap);
    fail_unless_equals_int(plan.segment, 0);
    Timeline::Decisions out;
    uint64_t token = 0;
    play(tl, 0, 20, token, out);
    fail_unless_equals_int(out.size(), 20);
    const FrameDecision *d = first_presented(out);
    fail_unless(d != nullptr);
    fail_unless_equals_uint64(d->token, c.frame);
    fail_unless_equals_uint64(d->clip_start, 0);
    fail_unless_equals_uint64(d->pts_ns, ns(c.frame * kFrame));
    fail_unless_equals_uint64(d->duration_ns, ns((c.frame + 1) * kFrame) - ns(c.frame * kFrame));
    // At least the two frames before it are its pre-roll (an "after" snap
    // keeps what was pre-roll of the target asked for).
    fail_if(out[c.frame - 2].drop || out[c.frame - 1].drop);
    bool first = true;
    for (uint64_t t = 0; t < c.frame; t++) {
      if (out[t].drop) continue;
      fail_unless_equals_uint64(out[t].pts_ns, ns(c.frame * kFrame));
      fail_unless_equals_uint64(out[t].clip_start, kFrame);
      fail_unless_equals_uint64(out[t].duration_ns, 0);
      fail_unless(out[t].discont == first, "frame %" G_GUINT64_FORMAT, t);
      first = false;
    }
  }
}
GST_END_TEST;

// A seek that did not ask to be accurate ("fast") and lies more than one
// segment past the counted starts restarts at its own segment, from the
// nominal estimate, and records no start as counted; a near one still
// counts, and an accurate one afterwards counts from the real starts.
GST_START_TEST(test_fast_seek_estimates) {
  NominalSegments nominal;  // 15 s, then 30 s
  nominal.total = 10;
  Timeline tl = make(0, 2 * kFrame);
  Timeline::Decisions out;
  uint64_t token = 0;
  play(tl, 0, kSeg0Frames, token, out);
  out.clear();

  SeekPlan plan = tl.seek(ns(20 * 48000), SeekSnap::Exact, &nominal);  // in segment 1
  fail_unless_equals_int(plan.segment, 0);
  fail_if(tl.estimated());

  const uint64_t target = 100 * 48000;  // in segment 3 (75-105 s)
  plan = tl.seek(ns(target), SeekSnap::Exact, &nominal);
  fail_unless_equals_int(plan.segment, 3);
  fail_unless_equals_uint64(plan.start_ns, 75 * GST_SECOND);
  fail_unless(tl.estimated());
  play(tl, 3, 1200, token, out);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  const uint64_t into = target - 75 * 48000;  // samples into segment 3, as estimated
  fail_unless_equals_uint64(d->token, kSeg0Frames + into / kFrame);
  fail_unless_equals_uint64(d->clip_start, into % kFrame);
  fail_unless_equals_uint64(d->pts_ns, ns(target));
  uint64_t start = 0;
  fail_if(tl.segment_start(3, start), "an estimated start was recorded as counted");

  plan = tl.seek(ns(target));  // accurate: from the counted start
  fail_unless_equals_int(plan.segment, 0);
  fail_if(tl.estimated());
}
GST_END_TEST;

static Suite *seeks_suite() {
  Suite *s = suite_create("timeline-seeks");
  TCase *tc = tcase_create("seeks");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_unseen_counted);
  tcase_add_test(tc, test_counted_through_trim);
  tcase_add_test(tc, test_restart_segment);
  tcase_add_test(tc, test_key_unit);
  tcase_add_test(tc, test_fast_seek_estimates);
  return s;
}

GST_CHECK_MAIN(seeks);
