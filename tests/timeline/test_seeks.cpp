// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdl::Timeline's seeks into segments never seen: the
 * restart segment's real start (from its container) replaces the nominal
 * guess, so the first presented sample is the target's; checked decision
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

// Nominal 15 s then 30 s segments (the properties' defaults).
NominalSegments nominal() {
  NominalSegments n;
  n.first_s = 15.0;
  n.rest_s = 30.0;
  n.total = 10;
  return n;
}

// Pushes `count` frames of segment `segment`, then ends it.
Timeline::Decisions play(Timeline &tl, int64_t segment, int count) {
  Timeline::Decisions out;
  for (int i = 0; i < count; i++) tl.push(segment, kFrame, uint64_t(i), out);
  tl.end_segment(out);
  return out;
}

// The first decision that presents samples.
const FrameDecision *first_presented(const Timeline::Decisions &out) {
  for (const FrameDecision &d : out)
    if (!d.drop && d.duration_ns > 0) return &d;
  return nullptr;
}

// Segment 1 really begins 410 samples after its nominal 15 s (an ADTS
// track's encoder delay): the target at 20 s is 239590 samples into it,
// frame 233 clipped by 998 (the nominal guess would clip 384 of frame 234).
constexpr uint64_t kRealStart = 15 * 48000 + 410;
constexpr uint64_t kTarget = 20 * 48000;

}  // namespace

GST_START_TEST(test_real_start_exact) {
  Timeline tl = make(0, 2 * kFrame);
  SeekPlan plan = tl.seek(ns(kTarget), nominal());
  fail_unless_equals_int(plan.segment, 1);
  fail_unless_equals_uint64(plan.start_ns, 15000000000ull);
  fail_unless(tl.set_real_start(1, ns(kRealStart)));
  Timeline::Decisions out = play(tl, 1, 300);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->token, 233);
  fail_unless_equals_uint64(d->clip_start, 998);
  fail_unless_equals_uint64(d->pts_ns, ns(kTarget));
  // The two frames before it are the decoder's pre-roll, fully clipped (the
  // first marked DISCONT).
  fail_unless(out[231].discont);
  for (uint64_t t : {231, 232}) {
    fail_if(out[t].drop);
    fail_unless_equals_uint64(out[t].clip_start, kFrame);
    fail_unless_equals_uint64(out[t].duration_ns, 0);
  }
  fail_unless(out[230].drop);
  // The segment's start is now known: a later seek uses it.
  uint64_t start = 0;
  fail_unless(tl.segment_start(1, start));
  fail_unless_equals_uint64(start, ns(kRealStart));
}
GST_END_TEST;

// Without the real start the target is off by the 410 samples: the
// difference the real start removes.
GST_START_TEST(test_nominal_guess_is_off) {
  Timeline tl = make(0, 0);
  tl.seek(ns(kTarget), nominal());
  Timeline::Decisions out = play(tl, 1, 300);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->token, 234);
  fail_unless_equals_uint64(d->clip_start, 384);
}
GST_END_TEST;

// Frames held back (hold > 0) are still undecided: the real start, known
// only after some of them went in (an Ogg page's granule), applies.
GST_START_TEST(test_real_start_while_held) {
  Timeline tl = make(8192, 0);
  tl.seek(ns(kTarget), nominal());
  Timeline::Decisions out;
  for (uint64_t i = 0; i < 4; i++) tl.push(1, kFrame, i, out);
  fail_unless(out.empty());
  fail_unless(tl.set_real_start(1, ns(kRealStart)));
  for (uint64_t i = 4; i < 300; i++) tl.push(1, kFrame, i, out);
  tl.end_segment(out);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->token, 233);
  fail_unless_equals_uint64(d->clip_start, 998);
  fail_unless_equals_uint64(d->pts_ns, ns(kTarget));
}
GST_END_TEST;

// Once a frame of the segment was decided, its place is final.
GST_START_TEST(test_real_start_too_late) {
  Timeline tl = make(0, 0);
  tl.seek(ns(kTarget), nominal());
  Timeline::Decisions out;
  tl.push(1, kFrame, 0, out);
  fail_unless_equals_int(out.size(), 1);
  fail_unless(tl.set_real_start(1, ns(kRealStart)));  // ignored
  for (uint64_t i = 1; i < 300; i++) tl.push(1, kFrame, i, out);
  const FrameDecision *d = first_presented(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->clip_start, 384);
}
GST_END_TEST;

// A segment whose start was counted (played before) keeps it: the seek back
// to it is exact without the container's word.
GST_START_TEST(test_counted_start_kept) {
  Timeline tl = make(0, 0);
  play(tl, 0, 706);  // 15.06 s: segment 1 begins at sample 722944
  play(tl, 1, 10);
  SeekPlan plan = tl.seek(ns(kTarget), nominal());
  fail_unless_equals_int(plan.segment, 1);
  fail_unless_equals_uint64(plan.start_ns, ns(706 * kFrame));
  fail_unless(tl.set_real_start(1, ns(kRealStart)));  // ignored
  Timeline::Decisions out = play(tl, 1, 300);
  const FrameDecision *d = first_presented(out);
  uint64_t into = kTarget - 706 * kFrame;
  fail_unless_equals_uint64(d->token, into / kFrame);
  fail_unless_equals_uint64(d->clip_start, into % kFrame);
  fail_unless_equals_uint64(d->pts_ns, ns(kTarget));
}
GST_END_TEST;

// The real start lies after the target (the guess was too early by more
// than the target's distance to the boundary): false, and the segment plays
// from its real start, not from an invented earlier time.
GST_START_TEST(test_target_before_real_start) {
  Timeline tl = make(0, 0);
  uint64_t target = 15 * 48000 + 100;
  SeekPlan plan = tl.seek(ns(target), nominal());
  fail_unless_equals_int(plan.segment, 1);
  fail_if(tl.set_real_start(1, ns(kRealStart)));
  fail_if(tl.seeking());
  Timeline::Decisions out = play(tl, 1, 3);
  fail_unless_equals_uint64(out[0].pts_ns, ns(kRealStart));
  fail_unless_equals_uint64(out[0].clip_start, 0);
}
GST_END_TEST;

static Suite *seeks_suite() {
  Suite *s = suite_create("timeline-seeks");
  TCase *tc = tcase_create("real-starts");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_real_start_exact);
  tcase_add_test(tc, test_nominal_guess_is_off);
  tcase_add_test(tc, test_real_start_while_held);
  tcase_add_test(tc, test_real_start_too_late);
  tcase_add_test(tc, test_counted_start_kept);
  tcase_add_test(tc, test_target_before_real_start);
  return s;
}

GST_CHECK_MAIN(seeks);
