// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the timeline: where every frame of a segmented track plays.
 *
 * Pure arithmetic, no GStreamer: frames go in with their sample count (from
 * the codec: AAC frame length, Opus TOC, Vorbis block sizes, MP3 header) and
 * the segment (demuxer instance) they come from; decisions come out, in the
 * same order: drop the frame, or play it at pts for duration, with so many
 * samples clipped at its start and end (GstAudioClippingMeta downstream).
 *
 * Time is counted in samples of the current rate, so nothing accumulates
 * rounding: pts = samples presented so far / rate. The trims a player of the
 * unsegmented file would apply come in two ways:
 *  - per segment (SegmentTrim): samples not presented at the segment's start
 *    (MP4 edit media time, Opus pre-skip, LAME delay), how many are
 *    presented after that (MP4 edit duration), and samples cut from its end
 *    once the segment is complete (Vorbis end granule, LAME padding);
 *  - per frame: clipping the demuxer already put on the frame.
 * A frame wholly before the presented part of its segment is kept, fully
 * clipped (the decoder needs it to prime, see docs/design.md); one wholly
 * after it is dropped. Frames of a segment near its end are held back (at
 * most hold_samples) until the segment ends, so an end trim known only then
 * still applies.
 *
 * It remembers where each segment's frames really began, and maps a seek
 * target to the segment to restart from (the latest one whose start it
 * counted). After a seek the frames that end more than `preroll` samples
 * before the target are dropped, the rest of those before it are pre-roll
 * (decoded, not presented), and the first sample presented is the
 * target's: either everything keeps its own time, as a demuxer's frames do
 * after an accurate seek, and the decoder clips to the segment that starts
 * at the target, or the pre-roll is fully clipped and the frame holding
 * the target clipped at its start (PrerollMode; docs/design.md, "Duration
 * and seeking").
 */
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

namespace segdl {

// Samples of one segment that the container says are not presented.
struct SegmentTrim {
  uint64_t start = 0;   // at the segment's start
  int64_t length = -1;  // presented after `start`; -1 = all
  uint64_t end = 0;     // at the segment's end (applied when it ends)
};

// What to do with one frame that went in.
struct FrameDecision {
  uint64_t token = 0;  // the caller's, from push()
  bool drop = false;
  int64_t segment = -1;
  uint64_t samples = 0;      // in the frame
  uint64_t clip_start = 0;   // not presented, at the frame's start
  uint64_t clip_end = 0;     // not presented, at its end
  uint64_t pts_ns = 0;       // where its first presented sample plays
  uint64_t duration_ns = 0;  // of its presented samples (0 when fully clipped)
  bool discont = false;      // first frame after a start, seek or gap
  bool preroll = false;      // before a seek target: for the decoder only
};

// Nominal segment lengths (from the status or the properties), for
// segments not seen yet (where a gap ends).
struct NominalSegments {
  double first_s = 15.0;
  double rest_s = 30.0;
  int64_t total = -1;  // -1 = unknown
  uint64_t start_ns(int64_t k) const;
  // The segment whose nominal span holds `t_ns` (the last one if `total`
  // is known and t lies past it).
  int64_t segment_at(uint64_t t_ns) const;
};

// Where a key-unit seek lands: on the start of the frame holding the target
// (Before), of the frame after it (After), or the nearer one (Nearest);
// Exact lands on the target's own sample.
enum class SeekSnap { Exact, Before, After, Nearest };

// How the pre-roll before a seek target goes to the decoder (see
// Timeline::seek() and docs/design.md, "Duration and seeking").
enum class PrerollMode {
  // At its own times, before the segment's start (the target), for the
  // decoder to clip away, as every GstAudioDecoder clips its output to the
  // segment (and a demuxer's pre-roll comes after an accurate seek).
  Timed,
  // Fully clipped (GstAudioClippingMeta) at the target's pts with no
  // duration, the frame holding the target clipped at its start: for
  // decoders that apply the meta behind a parser that drops frames ending
  // before the segment (aacparse in front of avdec_aac).
  Clipped,
};

// Where a seek restarts.
struct SeekPlan {
  int64_t segment = 0;     // download and demux from this segment
  uint64_t target_ns = 0;  // first presented sample (the seek position)
  uint64_t start_ns = 0;   // where that segment's frames begin
};

uint64_t samples_to_ns(uint64_t samples, int rate);
uint64_t ns_to_samples(uint64_t ns, int rate);

class Timeline {
 public:
  using Decisions = std::vector<FrameDecision>;

  // The sample rate of the frames from now on (the position is kept).
  void set_rate(int rate);
  int rate() const { return rate_; }
  // Samples given to the decoder before a seek target, and how.
  void set_preroll(uint64_t samples, PrerollMode mode = PrerollMode::Timed) {
    preroll_ = samples;
    preroll_mode_ = mode;
  }
  // Frames held back near a segment's end, for end trims known late.
  void set_hold(uint64_t samples) { hold_ = samples; }
  // The trims of `segment`, before or while its frames go in (the end trim
  // until end_segment()).
  void set_trim(int64_t segment, const SegmentTrim &trim);

  // A frame of `segment` with `samples` samples, of which the demuxer said
  // `clip_start`/`clip_end` are not presented. Appends the decisions now
  // ready to `out`, in push order.
  void push(int64_t segment, uint64_t samples, uint64_t token, Decisions &out,
            uint64_t clip_start = 0, uint64_t clip_end = 0);
  // The current segment has all its frames: its end trim applies, and the
  // frames held back are decided.
  void end_segment(Decisions &out);

  // Nothing of `segment` will come (a gap): the position moves to where the
  // next segment begins. Returns the gap's start and duration in ns.
  void skip_segment(int64_t segment, const NominalSegments &nominal, uint64_t &start_ns,
                    uint64_t &duration_ns);

  // Restart for a seek to `target_ns`: frames held are forgotten. The plan
  // restarts at the latest segment whose start was counted (seen before,
  // segment 0 at 0) at or before the target less the pre-roll; the frames
  // from there on are counted to the target, so it lands on its own sample
  // (the one playing at the target, as GStreamer clips audio to a segment)
  // even in segments never played (their nominal starts are never used).
  // A key-unit seek (`snap`) moves the target to a frame start instead (the
  // caller moves the segment's start there too).
  //
  // With `fast` (a seek that did not ask to be accurate), a target more than
  // one segment past that counted start restarts at its own segment
  // instead, from that segment's estimated start (the nearest counted
  // start plus nominal lengths): nothing before it is fetched, but the
  // audio is stamped from the estimate (off by what the nominal lengths
  // are off, milliseconds) until the next seek, and no segment start is
  // recorded as counted meanwhile.
  SeekPlan seek(uint64_t target_ns, SeekSnap snap = SeekSnap::Exact,
                const NominalSegments *fast = nullptr);
  // True while the timeline runs from an estimated start (a fast seek).
  bool estimated() const { return estimated_; }
  // Back to the start (a seek to 0 without frames, or a fresh start).
  void reset();

  // Where `segment`'s frames began, if seen.
  bool segment_start(int64_t segment, uint64_t &ns) const;
  uint64_t segment_start_or_nominal(int64_t segment, const NominalSegments &nominal) const;
  uint64_t position_ns() const { return ns_at(pos_); }
  // Samples presented since the track start (exact while no seek or gap
  // happened; else from the restart point).
  uint64_t position_samples() const;
  bool seeking() const { return seeking_; }

 private:
  struct Held {
    FrameDecision d;
    uint64_t presented;  // samples after the container's clipping
  };
  // Where a segment's frames began, as the position was then (a seek that
  // restarts there stamps its frames exactly as the first pass did).
  struct Start {
    uint64_t base_ns;
    uint64_t pos;
    int rate;
    uint64_t ns() const { return base_ns + samples_to_ns(pos, rate); }
  };
  uint64_t ns_at(uint64_t pos) const;
  void begin_segment(int64_t segment);
  void decide(Held &h, Decisions &out);
  void release(Decisions &out, bool all);
  uint64_t target_pos() const;
  void snap_target(uint64_t skip, uint64_t n);
  bool place_in_seek(FrameDecision &d, uint64_t n, Decisions &out);
  void emit(FrameDecision &d, uint64_t pts_ns, Decisions &out);
  void pass(FrameDecision &d, Decisions &out);

  int rate_ = 0;
  uint64_t base_ns_ = 0;  // time at pos_ == 0 (changes with the rate or a seek)
  uint64_t pos_ = 0;      // samples presented since base_ns_
  uint64_t preroll_ = 0;
  PrerollMode preroll_mode_ = PrerollMode::Timed;
  uint64_t hold_ = 8192;
  bool discont_ = true;

  // The segment whose frames are coming in.
  int64_t current_ = -1;
  uint64_t in_segment_ = 0;        // samples of it pushed so far (before clipping)
  uint64_t presented_in_seg_ = 0;  // of them, presented after the segment trim
  std::map<int64_t, SegmentTrim> trims_;
  std::deque<Held> held_;
  uint64_t held_samples_ = 0;

  std::map<int64_t, Start> starts_;  // segment -> where its frames began

  bool seeking_ = false;
  uint64_t target_ns_ = 0;
  SeekSnap snap_ = SeekSnap::Exact;
  bool estimated_ = false;       // since a fast seek: starts are not counted ones
  Decisions deferred_;           // clipped pre-roll of a key-unit seek, until it lands
  uint64_t preroll_end_ns_ = 0;  // where a decoder ends the timed pre-roll's output
};

}  // namespace segdl
