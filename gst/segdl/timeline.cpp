// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the timeline (see timeline.h and docs/design.md). */
#include "segdl/timeline.h"

#include <algorithm>
#include <cmath>

namespace segdl {

namespace {
constexpr uint64_t kSecond = 1000000000ull;

// a * b / c rounded to nearest, without overflow for audio-sized values.
uint64_t scale_round(uint64_t a, uint64_t b, uint64_t c) {
  if (c == 0) return 0;
  unsigned __int128 p = static_cast<unsigned __int128>(a) * b + c / 2;
  return static_cast<uint64_t>(p / c);
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
  if (!estimated_) starts_[segment] = ns_at(pos_);
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

// Hands out a kept frame at `pts_ns`; the first after a start, seek or gap
// is DISCONT. The pre-roll deferred by a key-unit seek goes first, at the
// same pts.
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

// A key-unit seek: moves the target to the start of the frame holding it
// (`skip` samples into its `n`) or of the next one. True when the target
// moved past this frame (it becomes pre-roll).
bool Timeline::snap_target(uint64_t skip, uint64_t n) {
  bool after =
      skip > 0 && (snap_ == SeekSnap::After || (snap_ == SeekSnap::Nearest && 2 * skip > n));
  snap_ = SeekSnap::Exact;
  target_ns_ = ns_at(pos_ + (after ? n : 0));
  return after;
}

// Places a frame: at the position, or, while a seek is on its way to its
// target, dropped (too early), given as pre-roll (fully clipped) or clipped
// at its start so its first presented sample is the target's.
void Timeline::decide(Held &h, Decisions &out) {
  FrameDecision &d = h.d;
  if (d.drop) {
    if (deferred_.empty())
      out.push_back(d);
    else
      deferred_.push_back(d);  // in order behind the deferred pre-roll
    return;
  }
  uint64_t n = h.presented;
  if (seeking_) {
    uint64_t target = target_ns_ > base_ns_ ? ns_to_samples(target_ns_ - base_ns_, rate_) : 0;
    bool before = pos_ + n <= target;
    if (!before && snap_ != SeekSnap::Exact && pos_ <= target && snap_target(target - pos_, n)) {
      target = pos_ + n;
      before = true;
    }
    if (before) {
      pos_ += n;
      if (target - pos_ >= preroll_) {  // before the pre-roll the decoder needs
        d.drop = true;
        out.push_back(d);
        return;
      }
      d.clip_start = d.samples - d.clip_end;  // pre-roll: decoded, not presented
      d.duration_ns = 0;
      if (snap_ != SeekSnap::Exact) {
        deferred_.push_back(d);  // its pts is the frame start found later
        return;
      }
      emit(d, target_ns_, out);
      return;
    }
    seeking_ = false;
    if (snap_ != SeekSnap::Exact && pos_ <= target) snap_target(target - pos_, n);
    target = target_ns_ > base_ns_ ? ns_to_samples(target_ns_ - base_ns_, rate_) : 0;
    if (pos_ <= target) {
      // The first presented sample is the target's: its pts is the target.
      uint64_t skip = target - pos_;
      d.clip_start += skip;
      pos_ = target + (n - skip);
      uint64_t pts = std::max(target_ns_, base_ns_);
      d.duration_ns = ns_at(pos_) - std::min(pts, ns_at(pos_));
      emit(d, pts, out);
      return;
    }
  }
  uint64_t pts = ns_at(pos_);
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
  ns = it->second;
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
  return it->second + (to > from ? to - from : 0);
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
  for (const auto &s : starts_)
    if (s.first > plan.segment && s.second <= lookup) {
      plan.segment = s.first;
      plan.start_ns = s.second;
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
    }
  }
  plan.target_ns = target_ns;
  base_ns_ = plan.start_ns;
  pos_ = 0;
  held_.clear();
  held_samples_ = 0;
  current_ = -1;
  seeking_ = target_ns > plan.start_ns;
  target_ns_ = target_ns;
  snap_ = seeking_ ? snap : SeekSnap::Exact;
  deferred_.clear();
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
