// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdl::Timeline's seeks: a seek restarts at the latest
 * segment whose start was counted and counts the frames to the target, so
 * it lands on the target's own sample in segments never seen, whatever
 * their real start; key-unit seeks land on a frame start. The frames keep
 * their own times (pre-roll before the target, flagged), and what a
 * decoder makes of them is checked with GStreamer's own clipping to the
 * segment (gst_audio_buffer_clip), decision by decision.
 */
#include <gst/audio/audio.h>
#include <gst/check/gstcheck.h>

#include "segdl/timeline.h"

#include <algorithm>
#include <vector>

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

// The frame a seek lands on: the first kept that is not pre-roll.
const FrameDecision *first_landing(const Timeline::Decisions &out) {
  for (const FrameDecision &d : out)
    if (!d.drop && !d.preroll) return &d;
  return nullptr;
}

// What any GstAudioDecoder makes of the decisions after a seek: each kept
// frame decoded to its presented samples (here their numbers, counted from
// `first` over every frame, the dropped ones too) at its pts, then clipped
// by GStreamer's own gst_audio_buffer_clip() to the segment that starts at
// `segment_start` (the target; after a key-unit seek, where it landed).
// `played` gets the numbers that play, `first_pts` the pts of the first
// buffer left.
void decode_clipped(const Timeline::Decisions &out, uint64_t first, uint64_t segment_start,
                    int rate, std::vector<uint64_t> &played, GstClockTime &first_pts) {
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.start = seg.time = seg.position = segment_start;
  played.clear();
  first_pts = GST_CLOCK_TIME_NONE;
  uint64_t next = first;
  for (const FrameDecision &d : out) {
    uint64_t n = d.samples - std::min(d.samples, d.clip_start + d.clip_end);
    if (!d.drop && n > 0) {
      GstBuffer *b = gst_buffer_new_allocate(nullptr, n * 4, nullptr);
      GstMapInfo map;
      fail_unless(gst_buffer_map(b, &map, GST_MAP_WRITE));
      for (uint64_t i = 0; i < n; i++)
        reinterpret_cast<uint32_t *>(map.data)[i] = uint32_t(next + i);
      gst_buffer_unmap(b, &map);
      // GstAudioDecoder times its output from the input's pts (tolerance
      // 0) and the samples it decoded (GST_FRAMES_TO_CLOCK_TIME).
      GST_BUFFER_PTS(b) = d.pts_ns;
      GST_BUFFER_DURATION(b) = GST_FRAMES_TO_CLOCK_TIME(n, guint64(rate));
      b = gst_audio_buffer_clip(b, &seg, rate, 4);
      if (b) {
        if (!GST_CLOCK_TIME_IS_VALID(first_pts)) first_pts = GST_BUFFER_PTS(b);
        fail_unless(gst_buffer_map(b, &map, GST_MAP_READ));
        const uint32_t *v = reinterpret_cast<const uint32_t *>(map.data);
        played.insert(played.end(), v, v + map.size / 4);
        gst_buffer_unmap(b, &map);
        gst_buffer_unref(b);
      }
    }
    next += n;
  }
}

// The decoded audio after the seek plays from sample `want` on, each
// sample once, the first buffer at `at`.
void check_plays_from(const Timeline::Decisions &out, uint64_t first, uint64_t segment_start,
                      int rate, uint64_t want, GstClockTime at) {
  std::vector<uint64_t> played;
  GstClockTime first_pts = GST_CLOCK_TIME_NONE;
  decode_clipped(out, first, segment_start, rate, played, first_pts);
  fail_unless(!played.empty(), "nothing plays");
  fail_unless_equals_uint64(played.front(), want);
  size_t i = 1;  // one assertion per check: each passing one costs a pipe write
  while (i < played.size() && played[i] == played[i - 1] + 1) i++;
  fail_unless(i == played.size(), "sample %" G_GUINT64_FORMAT " after %" G_GUINT64_FORMAT,
              i < played.size() ? played[i] : 0, played[i - 1]);
  fail_unless_equals_uint64(first_pts, at);
}

// The frames before the landing one that are kept are the pre-roll: at
// their own pts, continuous, each ending at or before `target_ns`; the
// first of them is DISCONT.
void check_preroll(const Timeline::Decisions &out, size_t landing, size_t count,
                   uint64_t target_ns) {
  size_t kept = 0;
  for (size_t t = 0; t < landing; t++) {
    if (out[t].drop) {
      fail_if(kept > 0, "frame %zu dropped inside the pre-roll", t);
      continue;
    }
    fail_unless(out[t].preroll, "frame %zu", t);
    fail_unless_equals_uint64(out[t].clip_start, 0);
    fail_unless(out[t].pts_ns + out[t].duration_ns <= target_ns, "frame %zu ends after the target",
                t);
    fail_unless(out[t].discont == (kept == 0), "frame %zu", t);
    if (kept > 0)
      fail_unless_equals_uint64(out[t].pts_ns, out[t - 1].pts_ns + out[t - 1].duration_ns);
    kept++;
  }
  fail_unless_equals_uint64(kept, count);
}

// Segment 0 holds 706.4 frames' worth of time in 706 frames, then its
// encoder delay makes segment 1 start 410 samples after a nominal 15 s: no
// rule about the container is needed, the frames are counted.
constexpr int kSeg0Frames = 706;
constexpr uint64_t kTarget = 20 * 48000;

}  // namespace

// A fresh track (nothing seen): the seek restarts at segment 0 and counts
// through segment 1 to the target, which lands on its own sample; the
// decoder's pre-roll comes before it at its own times.
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
  const FrameDecision *d = first_landing(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->token, kTarget / kFrame);
  fail_unless_equals_uint64(d->clip_start, 0);
  fail_unless_equals_uint64(d->pts_ns, ns(kTarget / kFrame * kFrame));
  size_t at = size_t(d->token);
  check_preroll(out, at, 2, ns(kTarget));
  for (size_t t : {at - 2, at - 1}) fail_unless_equals_uint64(out[t].pts_ns, ns(t * kFrame));
  check_plays_from(out, 0, ns(kTarget), kRate, kTarget, ns(kTarget));
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
  const FrameDecision *d = first_landing(out);
  fail_unless(d != nullptr);
  uint64_t into = kTarget - kSeg0Frames * kFrame + 500;  // samples into segment 1
  fail_unless_equals_uint64(d->token, kSeg0Frames + into / kFrame);
  check_plays_from(out, 0, ns(kTarget), kRate, kTarget, ns(kTarget));
}
GST_END_TEST;

// Targets anywhere between two samples' pts, at 44.1 kHz (where most pts
// are rounded): the first sample played is the last one whose pts is at or
// before the target, each sample after it once, the first buffer at the
// target. So a seek to a pts the stream gave lands on that sample.
GST_START_TEST(test_between_samples) {
  constexpr int kRate44 = 44100;
  constexpr uint64_t kMp3 = 1152;
  for (uint64_t k = 0; k < 12; k++) {
    const uint64_t sample = 3 * kMp3 + 26399 * k;  // frame starts included (k = 0)
    const uint64_t at = samples_to_ns(sample, kRate44);
    const uint64_t next = samples_to_ns(sample + 1, kRate44);
    for (uint64_t target : {at, at + 1, (at + next) / 2, next - 1}) {
      Timeline tl;
      tl.set_rate(kRate44);
      tl.set_hold(0);
      tl.set_preroll(3 * kMp3);
      tl.seek(target);
      Timeline::Decisions out;
      uint64_t token = 0;
      for (int i = 0; i < 300; i++) tl.push(0, kMp3, token++, out);
      tl.end_segment(out);
      const FrameDecision *d = first_landing(out);
      fail_unless(d != nullptr);
      fail_unless_equals_uint64(d->token, sample / kMp3);
      check_preroll(out, size_t(d->token), std::min<uint64_t>(3, sample / kMp3), target);
      check_plays_from(out, 0, target, kRate44, sample, target);
    }
  }
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

namespace {

// A key-unit seek (`snap`) to `target` samples, with 2 frames of pre-roll
// in `mode`, then the 20 frames of segment 0 (`out`, their decisions):
// the frame it lands on, checked to be frame `frame`, from its start.
const FrameDecision *key_unit_seek(SeekSnap snap, uint64_t target, PrerollMode mode, uint64_t frame,
                                   Timeline::Decisions &out) {
  Timeline tl = make(4096, 2 * kFrame);
  tl.set_preroll(2 * kFrame, mode);
  fail_unless_equals_int(tl.seek(ns(target), snap).segment, 0);
  uint64_t token = 0;
  play(tl, 0, 20, token, out);
  fail_unless_equals_int(out.size(), 20);
  const FrameDecision *d = first_landing(out);
  fail_unless(d != nullptr);
  fail_unless_equals_uint64(d->token, frame);
  fail_unless_equals_uint64(d->clip_start, 0);
  fail_unless_equals_uint64(d->pts_ns, ns(frame * kFrame));
  return d;
}

}  // namespace

// Key-unit seeks land on a frame start: the one holding the target
// (before), the next one (after), or the nearer (nearest); the pre-roll
// comes before it at its own times, DISCONT on the first, and the audio
// plays from that frame's first sample once the segment starts there.
GST_START_TEST(test_key_unit) {
  struct Case {
    SeekSnap snap;
    uint64_t target;  // samples
    uint64_t frame;   // the frame landed on
    size_t preroll;   // frames before it
  };
  const Case cases[] = {
      {SeekSnap::Before, 10 * kFrame + 700, 10, 2},  {SeekSnap::After, 10 * kFrame + 300, 11, 3},
      {SeekSnap::Nearest, 10 * kFrame + 300, 10, 2}, {SeekSnap::Nearest, 10 * kFrame + 700, 11, 3},
      {SeekSnap::After, 10 * kFrame, 10, 2},
  };
  for (const Case &c : cases) {
    Timeline::Decisions out;
    const FrameDecision *d = key_unit_seek(c.snap, c.target, PrerollMode::Timed, c.frame, out);
    fail_unless_equals_uint64(d->duration_ns, ns((c.frame + 1) * kFrame) - ns(c.frame * kFrame));
    // The pre-roll of the target asked for (an "after" snap keeps the frame
    // holding it as pre-roll).
    check_preroll(out, c.frame, c.preroll, d->pts_ns);
    check_plays_from(out, 0, d->pts_ns, kRate, c.frame * kFrame, d->pts_ns);
  }
}
GST_END_TEST;

// The same with the pre-roll clipped (PrerollMode::Clipped): it waits for
// the frame the seek lands on, then comes fully clipped at that frame's
// pts with no duration, DISCONT on the first.
GST_START_TEST(test_key_unit_clipped) {
  const SeekSnap snaps[] = {SeekSnap::Before, SeekSnap::After, SeekSnap::Nearest};
  for (SeekSnap snap : snaps) {
    const uint64_t frame = snap == SeekSnap::Before ? 10 : 11;
    Timeline::Decisions out;
    key_unit_seek(snap, 10 * kFrame + 700, PrerollMode::Clipped, frame, out);
    bool first = true;
    for (uint64_t t = 0; t < frame; t++) {
      if (out[t].drop) continue;
      fail_unless(out[t].preroll);
      fail_unless_equals_uint64(out[t].pts_ns, ns(frame * kFrame));
      fail_unless_equals_uint64(out[t].clip_start, kFrame);
      fail_unless_equals_uint64(out[t].duration_ns, 0);
      fail_unless(out[t].discont == first, "frame %" G_GUINT64_FORMAT, t);
      first = false;
    }
    fail_if(out[frame - 2].drop || out[frame - 1].drop);
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
  const FrameDecision *d = first_landing(out);
  fail_unless(d != nullptr);
  const uint64_t into = target - 75 * 48000;  // samples into segment 3, as estimated
  fail_unless_equals_uint64(d->token, kSeg0Frames + into / kFrame);
  // Numbered from segment 3's estimated start.
  check_plays_from(out, 0, ns(target), kRate, into, ns(target));
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
  tcase_add_test(tc, test_between_samples);
  tcase_add_test(tc, test_restart_segment);
  tcase_add_test(tc, test_key_unit);
  tcase_add_test(tc, test_key_unit_clipped);
  tcase_add_test(tc, test_fast_seek_estimates);
  return s;
}

GST_CHECK_MAIN(seeks);
