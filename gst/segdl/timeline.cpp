// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the timeline (see timeline.h and docs/design.md). */
#include "segdl/timeline.h"

#include <algorithm>
#include <cmath>

namespace segdl {

namespace {
constexpr uint64_t kSecond = 1000000000ull;

// a * b / c rounded to nearest (`add` c / 2), down (0) or up (c - 1),
// without overflow for audio-sized values.
uint64_t scale(uint64_t a, uint64_t b, uint64_t c, uint64_t add) {
  if (c == 0) return 0;
  unsigned __int128 p = static_cast<unsigned __int128>(a) * b + add;
  return static_cast<uint64_t>(p / c);
}
uint64_t scale_round(uint64_t a, uint64_t b, uint64_t c) {
  return scale(a, b, c, c / 2);
}
}  // namespace

uint64_t samples_to_ns(uint64_t samples, int rate) {
  return rate > 0 ? scale_round(samples, kSecond, uint64_t(rate)) : 0;
}

uint64_t ns_to_samples(uint64_t ns, int rate) {
  return rate > 0 ? scale_round(ns, uint64_t(rate), kSecond) : 0;
}

uint64_t NominalSegments::start_ns(int64_t k) const {
  if (k <= 0) return 0;
  double s = first_s + double(k - 1) * rest_s;
  return uint64_t(std::llround(s * double(kSecond)));
}

int64_t NominalSegments::segment_at(uint64_t t_ns) const {
  const double t = double(t_ns) / double(kSecond);
  int64_t k = 0;
  if (t >= first_s && rest_s > 0) k = 1 + int64_t(std::floor((t - first_s) / rest_s));
  if (total > 0 && k > total - 1) k = total - 1;
  return k;
}

void Timeline::set_rate(int rate) {
  if (rate == rate_) return;
  base_ns_ = ns_at(pos_);
  pos_ = 0;
  rate_ = rate;
}

void Timeline::set_trim(int64_t segment, const SegmentTrim &trim) {
  trims_[segment] = trim;
}

uint64_t Timeline::ns_at(uint64_t pos) const {
  return base_ns_ + samples_to_ns(pos, rate_);
}

uint64_t Timeline::position_samples() const {
  return ns_to_samples(position_ns(), rate_);
}

void Timeline::begin_segment(int64_t segment) {
  current_ = segment;
  in_segment_ = 0;
  presented_in_seg_ = 0;
  if (!estimated_) starts_[segment] = Start{base_ns_, pos_, rate_};
}

// The frame's place within its segment's presented part: how much the
// segment trim and the demuxer's clipping leave of it.
void Timeline::push(int64_t segment, uint64_t samples, uint64_t token, Decisions &out,
                    uint64_t clip_start, uint64_t clip_end) {
  if (segment != current_) {
    if (current_ >= 0 || !held_.empty()) end_segment(out);
    begin_segment(segment);
  }
  SegmentTrim t;
  auto it = trims_.find(segment);
  if (it != trims_.end()) t = it->second;
  Held h;
  h.d.token = token;
  h.d.segment = segment;
  h.d.samples = samples;
  h.presented = 0;
  uint64_t a = in_segment_;
  uint64_t b = a + samples;
  in_segment_ = b;
  uint64_t lo = std::max(a + std::min(clip_start, samples), t.start);
  uint64_t hi = b - std::min(clip_end, samples);
  if (t.length >= 0) hi = std::min(hi, t.start + uint64_t(t.length));
  if (t.length >= 0 && a >= t.start + uint64_t(t.length)) {
    h.d.drop = true;  // wholly after the presented part
  } else if (hi <= lo) {
    h.d.clip_start = samples;  // wholly before it: primes the decoder
  } else {
    h.d.clip_start = lo - a;
    h.d.clip_end = b - hi;
    h.presented = hi - lo;
  }
  presented_in_seg_ += h.presented;
  held_.push_back(h);
  held_samples_ += samples;
  release(out, false);
}

// Cuts the segment's end trim from the frames held back, last first: a
// frame left with nothing to present is dropped (it lies after the end).
void Timeline::end_segment(Decisions &out) {
  auto it = trims_.find(current_);
  uint64_t remaining = it != trims_.end() ? it->second.end : 0;
  for (auto h = held_.rbegin(); h != held_.rend() && remaining > 0; ++h) {
    if (h->d.drop || h->presented == 0) continue;
    uint64_t cut = std::min(remaining, h->presented);
    h->presented -= cut;
    h->d.clip_end += cut;
    remaining -= cut;
    presented_in_seg_ -= cut;
    if (h->presented == 0) h->d.drop = true;
  }
  release(out, true);
  current_ = -1;
}

void Timeline::release(Decisions &out, bool all) {
  while (!held_.empty() && (all || held_samples_ - held_.front().d.samples >= hold_)) {
    Held h = held_.front();
    held_.pop_front();
    held_samples_ -= h.d.samples;
    decide(h, out);
  }
}

// The sample of the seek target, from base_ns_: the last one whose pts
// (rounded like every pts) is at or before it, so a seek to a pts the
// stream gave lands on that sample.
uint64_t Timeline::target_pos() const {
  if (target_ns_ <= base_ns_ || rate_ <= 0) return 0;
  // Its real time is at or before the target; the next one's pts may be too.
  uint64_t s = scale(target_ns_ - base_ns_, uint64_t(rate_), kSecond, 0);
  return ns_at(s + 1) <= target_ns_ ? s + 1 : s;
}

// A key-unit seek: moves the target to the start of the frame holding it
// (`skip` samples into its `n`) or of the next one.
void Timeline::snap_target(uint64_t skip, uint64_t n) {
  bool after =
      skip > 0 && (snap_ == SeekSnap::After || (snap_ == SeekSnap::Nearest && 2 * skip > n));
  snap_ = SeekSnap::Exact;
  target_ns_ = ns_at(pos_ + (after ? n : 0));
}

// Hands out a kept frame at `pts_ns`; the first after a start, seek or gap
// is DISCONT. The clipped pre-roll a key-unit seek deferred goes first, at
// the same pts.
void Timeline::emit(FrameDecision &d, uint64_t pts_ns, Decisions &out) {
  for (FrameDecision &p : deferred_) {
    if (!p.drop) {
      p.pts_ns = pts_ns;
      p.discont = discont_;
      discont_ = false;
    }
    out.push_back(p);
  }
  deferred_.clear();
  d.pts_ns = pts_ns;
  d.discont = discont_;
  discont_ = false;
  out.push_back(d);
}

// A dropped frame, in order behind the deferred pre-roll if there is one.
void Timeline::pass(FrameDecision &d, Decisions &out) {
  d.drop = true;
  if (deferred_.empty())
    out.push_back(d);
  else
    deferred_.push_back(d);
}

// A frame (`n` samples presented from pos_) while a seek is on its way to
// its target; false when it lies after the target (placed as usual). A
// key-unit seek first moves the target to a frame start. A frame that ends
// more than the pre-roll before the target is dropped; one that ends
// closer is pre-roll (decoded, not presented); the frame holding the
// target ends the seek, so that the first sample presented is the
// target's. How, depends on the mode (PrerollMode):
//  - Timed: everything keeps its own time; the pre-roll ends at or before
//    the target, where the segment starts, and the frame holding the
//    target is stamped so that clipping its decoded samples to the segment
//    (gst_audio_buffer_clip: the time before the segment's start, in
//    samples rounded down) drops exactly those before the target's;
//  - Clipped: the pre-roll is fully clipped, at the target's pts with no
//    duration (after a key-unit seek at the pts of the frame it lands on,
//    so it waits for that frame), and the frame holding the target is
//    clipped at its start and stamped at the target.
bool Timeline::place_in_seek(FrameDecision &d, uint64_t n, Decisions &out) {
  uint64_t target = target_pos();
  if (snap_ != SeekSnap::Exact && pos_ <= target && target < pos_ + n) {
    snap_target(target - pos_, n);
    target = target_pos();
  }
  const bool timed = preroll_mode_ == PrerollMode::Timed;
  const uint64_t start = ns_at(pos_);
  if (pos_ + n <= target) {
    pos_ += n;
    if (target - pos_ >= preroll_) {
      pass(d, out);
      return true;
    }
    d.preroll = true;
    if (timed) {
      // A decoder times its output from the frame's pts and its sample
      // count (rounded): it must end at or before the target.
      const uint64_t length = samples_to_ns(n, rate_);
      uint64_t pts = start;
      if (pts + length > target_ns_) pts = target_ns_ > length ? target_ns_ - length : 0;
      preroll_end_ns_ = std::max(preroll_end_ns_, pts + length);
      d.duration_ns = ns_at(pos_) - pts;
      emit(d, pts, out);
    } else {
      d.clip_start = d.samples - d.clip_end;
      d.duration_ns = 0;
      if (snap_ != SeekSnap::Exact)
        deferred_.push_back(d);  // its pts is the frame start found later
      else
        emit(d, target_ns_, out);
    }
    return true;
  }
  seeking_ = false;
  if (pos_ > target) return false;
  const uint64_t skip = target - pos_;
  pos_ += n;
  uint64_t pts = 0;
  if (timed && skip > 0) {
    uint64_t before = scale(skip, kSecond, uint64_t(rate_), uint64_t(rate_) - 1);  // rounded up
    pts = target_ns_ > before ? target_ns_ - before : 0;
  } else if (timed) {
    // Where the target moved to a frame start (a key-unit seek), the
    // pre-roll before may end up to 1 ns after it.
    pts = std::max(target_ns_, preroll_end_ns_);
  } else {
    d.clip_start += skip;
    pts = std::max(target_ns_, base_ns_);
  }
  const uint64_t end = ns_at(pos_);
  d.duration_ns = end > pts ? end - pts : 0;
  emit(d, pts, out);
  return true;
}

// Places a frame at the position; while a seek is on its way to its
// target, see place_in_seek().
void Timeline::decide(Held &h, Decisions &out) {
  FrameDecision &d = h.d;
  if (d.drop) {
    pass(d, out);
    return;
  }
  const uint64_t n = h.presented;
  if (seeking_ && place_in_seek(d, n, out)) return;
  const uint64_t pts = ns_at(pos_);
  pos_ += n;
  d.duration_ns = ns_at(pos_) - pts;
  emit(d, pts, out);
}

void Timeline::skip_segment(int64_t segment, const NominalSegments &nominal, uint64_t &start_ns,
                            uint64_t &duration_ns) {
  start_ns = position_ns();
  uint64_t next = segment_start_or_nominal(segment + 1, nominal);
  duration_ns = next > start_ns ? next - start_ns : 0;
  if (duration_ns > 0) {
    base_ns_ = next;
    pos_ = 0;
  }
  held_.clear();
  held_samples_ = 0;
  current_ = -1;
  discont_ = true;
}

bool Timeline::segment_start(int64_t segment, uint64_t &ns) const {
  auto it = starts_.find(segment);
  if (it == starts_.end()) return false;
  ns = it->second.ns();
  return true;
}

// A segment not seen yet starts where the nearest one seen before it did,
// plus the nominal lengths between them.
uint64_t Timeline::segment_start_or_nominal(int64_t segment, const NominalSegments &nominal) const {
  uint64_t ns = 0;
  if (segment_start(segment, ns)) return ns;
  auto it = starts_.lower_bound(segment);
  if (it == starts_.begin()) return nominal.start_ns(segment);
  --it;
  uint64_t from = nominal.start_ns(it->first);
  uint64_t to = nominal.start_ns(segment);
  return it->second.ns() + (to > from ? to - from : 0);
}

// Restarts from the latest segment whose real start was counted and lies
// at or before the target less the pre-roll (segment 0 begins at 0): the
// frames from there to the target are counted, never guessed, so the
// target lands on its own sample whatever the container says. A fast seek
// far past the counted starts restarts at the target's segment from an
// estimate instead (see timeline.h).
SeekPlan Timeline::seek(uint64_t target_ns, SeekSnap snap, const NominalSegments *fast) {
  uint64_t preroll_ns = samples_to_ns(preroll_, rate_);
  uint64_t lookup = target_ns > preroll_ns ? target_ns - preroll_ns : 0;
  SeekPlan plan;
  Start from{0, 0, rate_};
  for (const auto &s : starts_)
    if (s.first > plan.segment && s.second.ns() <= lookup) {
      plan.segment = s.first;
      plan.start_ns = s.second.ns();
      from = s.second;
    }
  estimated_ = false;
  if (fast) {
    // Counting would fetch every segment between: estimate instead.
    int64_t k = fast->segment_at(lookup);
    while (k > plan.segment + 1 && segment_start_or_nominal(k, *fast) > lookup) k--;
    if (k > plan.segment + 1) {
      plan.segment = k;
      plan.start_ns = segment_start_or_nominal(k, *fast);
      estimated_ = true;
      from = Start{plan.start_ns, 0, rate_};
    }
  }
  plan.target_ns = target_ns;
  base_ns_ = from.base_ns;
  pos_ = from.pos;
  if (from.rate > 0) rate_ = from.rate;
  held_.clear();
  held_samples_ = 0;
  current_ = -1;
  seeking_ = target_ns > plan.start_ns;
  target_ns_ = target_ns;
  snap_ = seeking_ ? snap : SeekSnap::Exact;
  deferred_.clear();
  preroll_end_ns_ = 0;
  discont_ = true;
  return plan;
}

void Timeline::reset() {
  estimated_ = false;
  base_ns_ = 0;
  pos_ = 0;
  held_.clear();
  held_samples_ = 0;
  current_ = -1;
  seeking_ = false;
  snap_ = SeekSnap::Exact;
  deferred_.clear();
  discont_ = true;
}

}  // namespace segdl
