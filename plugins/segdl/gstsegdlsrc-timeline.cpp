// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's join=timeline, part one: the segments' bytes into the
 * demuxers (FrameJoiner, or our MP4 reader for m4a segments), bad segments
 * and gaps, the switch to the fallback, the loop that pushes what the
 * timeline stamped (gstsegdlsrc-frames.cpp), and seeking (see
 * docs/design.md). Streaming thread, or do_seek() under the stream lock.
 */
#include "gstsegdlsrc-stream.h"

#include "segdl/codec.h"

#include <cstring>

#define GST_CAT_DEFAULT gst_seg_dl_src_debug

static void demux_error(GstSegDlSrc *self, int64_t segment, const std::string &why) {
  GST_ELEMENT_ERROR(self, STREAM, DEMUX,
                    ("Could not read the audio of segment %" G_GINT64_FORMAT ".", segment),
                    ("%s", why.c_str()));
}

static bool bad_segment(GstSegDlSrc *self, int64_t segment, const std::string &why);

// What the first bytes of a segment look like, for an error text.
static std::string describe_start(const guint8 *data, gsize size) {
  if (size == 0) return "no bytes";
  std::string text;
  for (gsize i = 0; i < size && i < 8; i++) text += g_ascii_isprint(data[i]) ? char(data[i]) : '.';
  return std::to_string(size) + "+ bytes beginning \"" + text + "\"";
}

// True when the bytes begin a box that continues a fragmented MP4.
static bool iso_fragment(const guint8 *data, gsize size) {
  if (size < 8) return false;
  for (const char *box : {"moof", "styp", "sidx", "emsg", "prft"})
    if (memcmp(data + 4, box, 4) == 0) return true;
  return false;
}

// Hands the probed first bytes of a segment to the joiner, starting a new
// demuxer instance when they begin a file of their own. When the track's
// segments are files of their own, a segment that is not one (garbage, an
// HTML page) and a file that gave no frame are bad segments (bad_segment()).
static bool feed_probe(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (!priv->probe) return true;
  GBytes *bytes = g_byte_array_free_to_bytes(priv->probe);
  priv->probe = nullptr;
  int64_t segment = priv->probe_segment;
  priv->probe_segment = -1;
  gsize size = 0;
  const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(bytes, &size));
  const char *container = nullptr;
  bool file = segdl::starts_container(data, size, &container);
  bool iso = file && strcmp(container, "ISO BMFF") == 0;
  std::string error;
  if (!priv->form_known) {
    // WebM/Matroska and Ogg segments are files of their own, m4a ones too
    // (or the init of fragments); MP3 ones once a second one is tagged too.
    priv->form_known = true;
    priv->self_contained = file && !g_str_has_prefix(container, "ID3");
    priv->iso_form = iso;
    priv->ogg_form = file && strcmp(container, "Ogg") == 0;
  } else if (file) {
    priv->self_contained = true;
  }
  if (!file && priv->self_contained && segment != segdl::kFallbackSegment &&
      !(priv->iso_form && iso_fragment(data, size))) {
    std::string why = "it is not a file of the track's form: " + describe_start(data, size);
    g_bytes_unref(bytes);
    priv->reject_segment = segment;  // the rest of its bytes are dropped
    return bad_segment(self, segment, why);
  }
  if (file || !priv->joiner->has_instance()) {
    if (priv->joiner->has_instance()) {
      GST_DEBUG_OBJECT(self, "segment %" G_GINT64_FORMAT " is a %s file", segment, container);
      int64_t previous = priv->joiner->instance_segment();
      if (!priv->joiner->finish(error) && !bad_segment(self, previous, error)) {
        g_bytes_unref(bytes);
        return false;
      }
      if (priv->refetching) {  // `previous` comes again, then this one
        g_bytes_unref(bytes);
        return true;
      }
    }
    if (iso && segment != segdl::kFallbackSegment) {
      // Read whole by our own code once complete (flush_iso()).
      priv->iso_segment = segment;
      priv->iso_bytes = g_byte_array_new();
      g_byte_array_append(priv->iso_bytes, data, guint(size));
      g_bytes_unref(bytes);
      return true;
    }
    priv->joiner->new_instance(segment);
    if (!file && priv->fmp4_init && !priv->joiner->push(priv->fmp4_init, error)) {
      g_bytes_unref(bytes);  // a seek restarts inside a fragmented MP4: its init first
      demux_error(self, segment, error);
      return false;
    }
  }
  bool ok = priv->joiner->push(bytes, error);
  g_bytes_unref(bytes);
  if (!ok) demux_error(self, segment, error);
  return ok;
}
/* ---- seeking -------------------------------------------------------------- */

// Nominal segment lengths: from the status, else the properties.
static segdl::NominalSegments nominal_segments(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  segdl::EngineStats st;
  {
    std::lock_guard<std::mutex> lock(priv->state_lock);
    if (priv->downloader) st = priv->downloader->stats();
  }
  segdl::NominalSegments n;
  n.first_s =
      st.first_segment_duration_s > 0 ? st.first_segment_duration_s : priv->first_segment_duration;
  n.rest_s = st.segment_duration_s > 0 ? st.segment_duration_s : priv->segment_duration;
  n.total = st.segments_total;
  return n;
}

// basesrc gives do_seek() no seek flags: a key-unit seek's snapping and
// whether the seek asked to be accurate are noted here, on the event's way
// to basesrc (a seek sent to the element itself with
// gst_element_send_event() skips this: it lands exactly, counted).
gboolean gst_seg_dl_src_event(GstBaseSrc *bsrc, GstEvent *event) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(bsrc);
  if (GST_EVENT_TYPE(event) == GST_EVENT_SEEK) {
    GstSeekFlags flags = GST_SEEK_FLAG_NONE;
    gst_event_parse_seek(event, nullptr, nullptr, &flags, nullptr, nullptr, nullptr, nullptr);
    segdl::SeekSnap snap = segdl::SeekSnap::Exact;
    if ((flags & GST_SEEK_FLAG_KEY_UNIT) && !(flags & GST_SEEK_FLAG_ACCURATE)) {
      bool before = flags & GST_SEEK_FLAG_SNAP_BEFORE, after = flags & GST_SEEK_FLAG_SNAP_AFTER;
      snap = before && after ? segdl::SeekSnap::Nearest
             : after         ? segdl::SeekSnap::After
                             : segdl::SeekSnap::Before;
    }
    self->priv->seek_snap.store(int(snap));
    self->priv->seek_fast.store(!(flags & GST_SEEK_FLAG_ACCURATE));
  }
  auto *base = static_cast<GstBaseSrcClass *>(g_type_class_peek(GST_TYPE_PUSH_SRC));
  return base->event(bsrc, event);
}

// A flushing TIME seek (basesrc has stopped the streaming thread): the
// timeline picks the segment to restart from (real starts where seen, the
// pre-roll the decoder needs included); frames before the target are then
// dropped or given as clipped pre-roll, so the first sample out is the
// target's.
gboolean gst_seg_dl_src_do_seek(GstBaseSrc *bsrc, GstSegment *segment) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(bsrc);
  GstSegDlSrcPrivate *priv = self->priv;
  // basesrc "seeks" to the start once when it starts: that one always works.
  if (priv->join != JOIN_TIMELINE || segment->format != GST_FORMAT_TIME)
    return segment->start == 0 && priv->offset == 0;
  if (segment->rate < 0) {
    GST_WARNING_OBJECT(self, "reverse playback is not supported");
    return FALSE;
  }
  segdl::Downloader *dl = priv->downloader.get();
  if (!dl) return FALSE;
  if (dl->stats().fallback) {
    GST_WARNING_OBJECT(self, "no seeking once the fallback URL has taken over");
    return FALSE;
  }
  GstClockTime target = segment->start;
  if (target == 0 && !priv->caps_set && priv->timeline.position_ns() == 0 &&
      priv->pending.empty() && priv->ready.empty())
    return TRUE;  // already there
  auto snap = segdl::SeekSnap(priv->seek_snap.exchange(int(segdl::SeekSnap::Exact)));
  // Not asked to be accurate: far targets restart from an estimate rather
  // than fetching every segment before them (docs/element.md, Seeking).
  const segdl::NominalSegments nominal = nominal_segments(self);
  const bool fast = priv->seek_fast.exchange(false);
  segdl::SeekPlan plan = priv->timeline.seek(target, snap, fast ? &nominal : nullptr);
  priv->snap_segment = snap != segdl::SeekSnap::Exact && priv->timeline.seeking();
  GST_INFO_OBJECT(self,
                  "seek to %" GST_TIME_FORMAT ": segment %" G_GINT64_FORMAT
                  " starting at %" GST_TIME_FORMAT "%s",
                  GST_TIME_ARGS(target), plan.segment, GST_TIME_ARGS(plan.start_ns),
                  priv->timeline.estimated() ? " (estimated)" : "");
  dl->seek(plan.segment);
  priv->last_segment = plan.segment - 1;
  priv->reject_segment = -1;
  priv->form_known = false;
  if (priv->iso_bytes) g_byte_array_unref(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  priv->iso_segment = -1;
  priv->joiner->reset();
  gst_seg_dl_src_free_frames(priv->pending);
  gst_seg_dl_src_free_frames(priv->ready);
  if (priv->probe) g_byte_array_unref(priv->probe);
  priv->probe = nullptr;
  priv->probe_segment = -1;
  priv->track_done = false;
  priv->tl_segment = -1;
  priv->last_samples = -1;
  // Its first packet is counted as the continuous stream counted it.
  if (priv->vorbis.ready()) priv->vorbis.restart_at(plan.segment);
  priv->frames_out_valid = false;
  priv->discont = true;
  return TRUE;
}

/* ---- the timeline join's loop --------------------------------------------- */

// The frame a key-unit seek lands on: not a codec header, not pre-roll.
static bool lands(const GstSegDlSrcPrivate::Frame &f) {
  return f.buffer && !GST_BUFFER_FLAG_IS_SET(f.buffer, GST_BUFFER_FLAG_HEADER) &&
         !GST_BUFFER_FLAG_IS_SET(f.buffer, GST_BUFFER_FLAG_DECODE_ONLY);
}

// A key-unit seek: true until the frame it lands on is stamped (its pts is
// where the timeline snapped to). Codec headers and pre-roll do not tell.
static bool snap_unknown(GstSegDlSrcPrivate *priv) {
  if (!priv->snap_segment || priv->track_done || priv->fallback_first) return false;
  for (const GstSegDlSrcPrivate::Frame &f : priv->ready)
    if (lands(f)) return false;
  return true;
}

// The segment basesrc sends with the first buffer after a key-unit seek
// starts at the frame start the timeline snapped to (the pre-roll before
// it is clipped away by the decoder, as after an accurate seek).
static void apply_snap(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  priv->snap_segment = false;
  for (const GstSegDlSrcPrivate::Frame &f : priv->ready) {
    if (!lands(f)) continue;
    GstClockTime pts = GST_BUFFER_PTS(f.buffer);
    GST_OBJECT_LOCK(self);
    GstSegment *seg = &GST_BASE_SRC(self)->segment;
    GST_DEBUG_OBJECT(self, "key-unit seek: the segment starts at %" GST_TIME_FORMAT,
                     GST_TIME_ARGS(pts));
    seg->start = seg->time = seg->position = pts;
    GST_OBJECT_UNLOCK(self);
    return;
  }
}

// Segment `segment` will give nothing: the frames held back go out, then a
// GAP (in order with them) up to where the next segment begins, with a
// WARNING.
static void place_gap(GstSegDlSrc *self, int64_t segment, const segdl::EngineError &e) {
  GstSegDlSrcPrivate *priv = self->priv;
  gst_seg_dl_src_end_timeline_segment(self);
  uint64_t start = 0, dur = 0;
  priv->timeline.skip_segment(segment, nominal_segments(self), start, dur);
  gst_seg_dl_src_post_gap_warning(self, e, dur);
  if (dur > 0) priv->ready.push_back({nullptr, nullptr, gst_event_new_gap(start, dur)});
  priv->frames_out_valid = false;  // a fallback later can no longer count frames
  if (priv->vorbis.ready()) priv->vorbis.reset();
  priv->tl_segment = -1;
  priv->discont = true;
}

// The frames the joiner holds, in order, onto the timeline (segment 0's
// container tags kept for after the first buffer), but those of
// `drop_instance`'s demuxer instance (-1: none), which are dropped. Frames
// after an instance's first carry no segment: they belong to the instance
// of the frame before them (the first popped, to the timeline's). Only
// the next one unless `all`; false when there was none.
static bool take_joined_frames(GstSegDlSrc *self, int64_t drop_instance, bool all) {
  GstSegDlSrcPrivate *priv = self->priv;
  bool took = false;
  int64_t instance = priv->tl_segment;
  GstCaps *caps = nullptr;
  int64_t instance_start = -1;
  while (GstBuffer *frame = priv->joiner->pop(&caps, &instance_start)) {
    if (instance_start >= 0) instance = instance_start;
    if (GstTagList *tags = priv->joiner->take_tags()) {
      if (priv->tags) gst_tag_list_unref(priv->tags);
      priv->tags = tags;
    }
    if (drop_instance >= 0 && instance == drop_instance)
      gst_buffer_unref(frame);
    else
      gst_seg_dl_src_on_joined_frame(self, frame, caps, instance_start);
    took = true;
    if (!all) break;
  }
  return took;
}

// Nothing of `segment` went out (no frame of it entered the timeline) and
// the segments still come from the backend: it can be read again.
static bool can_refetch(GstSegDlSrc *self, int64_t segment) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (segment < 0 || segment == segdl::kFallbackSegment || priv->tl_segment == segment)
    return false;
  segdl::Downloader *dl = priv->downloader.get();
  return dl && !dl->stats().fallback;
}

// The engine fetches `segment` once more and delivers it again from its
// first byte (Downloader::reject_segment()); a second failure comes back
// from it as missing-segment says. What the demuxer holds of the segments
// before it is finished first (their frames go out); what a failed instance
// of `segment` left queued is dropped, while the frames an instance before
// it gave when it ended in this same step (the last frames of a segment
// before a skipped one) go on; the per-segment state starts afresh, and
// the item in hand is stale (`refetching`).
static void refetch(GstSegDlSrc *self, int64_t segment, const std::string &why) {
  GstSegDlSrcPrivate *priv = self->priv;
  GST_WARNING_OBJECT(self, "segment %" G_GINT64_FORMAT " gives no audio, read again: %s", segment,
                     why.c_str());
  std::string error;
  if (!priv->joiner->has_instance()) {
    take_joined_frames(self, segment, true);
    priv->joiner->reset();
  } else if (!priv->joiner->finish(error)) {
    GST_INFO_OBJECT(self, "the segment before it ends: %s", error.c_str());
  }
  if (priv->probe) g_byte_array_unref(priv->probe);
  priv->probe = nullptr;
  priv->probe_segment = -1;
  if (priv->iso_bytes) g_byte_array_unref(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  priv->iso_segment = -1;
  priv->reject_segment = -1;
  priv->last_segment = segment - 1;
  priv->refetching = true;
  priv->downloader->reject_segment(segment, why);
}

// A segment that gives no audio (not a file of the track's form, no audio
// stream, no frame, an empty body, a demuxer error): never skipped
// silently. When nothing of it went out it is fetched again (refetch()).
// Else missing-segment=gap leaves the rest out, a gap with a WARNING, and
// the track is not complete; any other policy stops with STREAM/DEMUX
// naming the segment. False when the stream must stop.
static bool bad_segment(GstSegDlSrc *self, int64_t segment, const std::string &why) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (can_refetch(self, segment)) {
    refetch(self, segment, why);
    return true;
  }
  segdl::MissingSegment policy;
  {
    std::lock_guard<std::mutex> lock(priv->settings_lock);
    policy = priv->settings.missing_segment;
  }
  GST_WARNING_OBJECT(self, "segment %" G_GINT64_FORMAT " gives no audio: %s", segment, why.c_str());
  if (priv->downloader) priv->downloader->segment_cut_short(segment);
  if (policy != segdl::MissingSegment::Gap) {
    demux_error(self, segment, why);
    return false;
  }
  segdl::EngineError e;
  e.kind = segdl::EngineError::Kind::Read;
  e.segment = segment;
  e.message = "it gives no audio";
  e.debug = why;
  place_gap(self, segment, e);
  return true;
}

// A fragmented MP4's init (its boxes before the first moof, in segment 0)
// is kept: a seek that restarts at a later segment hands it to the new
// demuxer instance first (feed_probe()).
static void keep_fmp4_init(GstSegDlSrc *self, GBytes *bytes) {
  GstSegDlSrcPrivate *priv = self->priv;
  gsize size = 0, at = 0;
  const guint8 *d = static_cast<const guint8 *>(g_bytes_get_data(bytes, &size));
  while (at + 8 <= size && memcmp(d + at + 4, "moof", 4) != 0) {
    uint64_t box = GST_READ_UINT32_BE(d + at);
    if (box == 1 && at + 16 <= size) box = GST_READ_UINT64_BE(d + at + 8);
    if (box < 8 || box > size - at) return;  // not boxes to the first moof: nothing kept
    at += gsize(box);
  }
  if (at + 8 > size) return;
  if (priv->fmp4_init) g_bytes_unref(priv->fmp4_init);
  priv->fmp4_init = g_bytes_new_from_bytes(bytes, 0, at);
}

// The m4a segment collected whole: read by our own code (no qtdemux, so no
// edit list can make it unplayable), its edit list a trim of the timeline,
// its frames into it. An init of fragments, or a codec we do not read, goes
// to parsebin instead.
static bool flush_iso(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (!priv->iso_bytes) return true;
  bool read_ok = true;
  std::string why;
  const int64_t read_segment = priv->iso_segment;
  if (gst_seg_dl_src_mp4_finish(self, read_ok, why))  // read while it arrived
    return read_ok || bad_segment(self, read_segment, why);
  GBytes *bytes = g_byte_array_free_to_bytes(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  int64_t segment = priv->iso_segment;
  priv->iso_segment = -1;
  segdl::Mp4Segment m;
  std::string error;
  switch (segdl::read_mp4_segment(bytes, m, error)) {
    case segdl::Mp4Read::Ok:
      break;
    case segdl::Mp4Read::Fragmented:
    case segdl::Mp4Read::OtherCodec: {
      keep_fmp4_init(self, bytes);
      priv->joiner->new_instance(segment);
      bool ok = priv->joiner->push(bytes, error);
      g_bytes_unref(bytes);
      if (!ok) demux_error(self, segment, error);
      return ok;
    }
    case segdl::Mp4Read::Error:
      g_bytes_unref(bytes);
      return bad_segment(self, segment, error);
  }
  segdl::SegmentTrim trim;
  trim.start = uint64_t(m.trim_start);
  trim.length = m.trim_length;
  priv->timeline.set_trim(segment, trim);
  GST_DEBUG_OBJECT(self,
                   "segment %" G_GINT64_FORMAT ": %zu frames, edit from %" G_GINT64_FORMAT
                   " for %" G_GINT64_FORMAT " samples",
                   segment, m.frames.size(), m.trim_start, m.trim_length);
  for (size_t i = 0; i < m.frames.size(); i++)
    gst_seg_dl_src_enter_frame(self, m.frames[i], m.caps, i == 0 ? segment : -1);
  m.frames.clear();  // the timeline's now
  g_bytes_unref(bytes);
  return true;
}

// Segments between the last one seen and `segment` gave no bytes at all.
static bool check_skipped(GstSegDlSrc *self, int64_t segment) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->refetching) return true;  // a segment before comes again first
  for (int64_t k = priv->last_segment + 1; k < segment; k++) {
    if (!bad_segment(self, k, "its body is empty")) return false;
    if (priv->refetching) return true;  // k comes again
  }
  priv->last_segment = segment;
  return true;
}

// The end of the track, or a segment that will give nothing: what the
// demuxers hold is finished first (its frames go out before the gap).
static GstFlowReturn end_or_gap(GstSegDlSrc *self, const segdl::Downloader::Item &item) {
  GstSegDlSrcPrivate *priv = self->priv;
  std::string error;
  if (!feed_probe(self) || !flush_iso(self)) return GST_FLOW_ERROR;
  if (priv->refetching) {
    priv->refetching = false;  // the end (or gap) comes again after the segment
    return GST_FLOW_OK;
  }
  if (item.kind == segdl::Downloader::Item::Kind::Eos) {
    int64_t last = priv->joiner->instance_segment();
    if (!priv->joiner->finish(error) && !bad_segment(self, last, error)) return GST_FLOW_ERROR;
    if (priv->refetching) {
      priv->refetching = false;
      return GST_FLOW_OK;
    }
    priv->track_done = true;
    return GST_FLOW_OK;
  }
  if (!priv->joiner->finish(error))
    GST_INFO_OBJECT(self, "the missing segment ends: %s", error.c_str());
  if (!check_skipped(self, item.segment)) return GST_FLOW_ERROR;
  if (priv->refetching) {
    priv->refetching = false;
    return GST_FLOW_OK;
  }
  priv->gap_segment = item.segment;
  priv->gap_error = item.error;
  return GST_FLOW_OK;
}

// The fallback URL takes over (`first` is its first chunk, taken): finish
// what the segments gave (their frames come out first), then start the file.
static GstFlowReturn fallback_begins(GstSegDlSrc *self, GBytes *first) {
  GstSegDlSrcPrivate *priv = self->priv;
  std::string error;
  if (!feed_probe(self)) {
    g_bytes_unref(first);
    return GST_FLOW_ERROR;
  }
  // An m4a segment cut short gives nothing: the fallback covers it.
  if (priv->iso_bytes) g_byte_array_unref(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  priv->iso_segment = -1;
  // The segment that failed may be cut short: what it gave is played, a
  // demuxer error about its missing rest is expected.
  if (!priv->joiner->finish(error))
    GST_INFO_OBJECT(self, "the broken segment ends: %s", error.c_str());
  priv->fallback_first = first;
  priv->discont = true;
  return GST_FLOW_OK;
}

// The next item from the engine into the joiner: segment bytes (probed at
// each segment's start), the end, a gap or the fallback's first bytes.
static GstFlowReturn feed_next_item(GstSegDlSrc *self, segdl::Downloader *dl) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (gst_seg_dl_src_mp4_step(self, dl)) return GST_FLOW_OK;  // an m4a segment's frames went in
  segdl::Downloader::Item item;
  GstFlowReturn ret = gst_seg_dl_src_next_item(self, dl, item);
  if (ret != GST_FLOW_OK) return ret;
  using K = segdl::Downloader::Item::Kind;
  if (item.kind == K::Timeout) return GST_FLOW_OK;  // the m4a segment's tail came: step()
  if (item.kind == K::Eos || item.kind == K::Gap) return end_or_gap(self, item);
  if (item.segment == segdl::kFallbackSegment && item.segment_offset == 0)
    return fallback_begins(self, item.bytes);
  if (item.segment == priv->reject_segment) {
    g_bytes_unref(item.bytes);  // a segment refused as a whole
    return GST_FLOW_OK;
  }
  if (item.segment == priv->iso_segment && item.segment_offset > 0) {
    gsize n = 0;
    const guint8 *d = static_cast<const guint8 *>(g_bytes_get_data(item.bytes, &n));
    g_byte_array_append(priv->iso_bytes, d, guint(n));
    g_bytes_unref(item.bytes);
    return GST_FLOW_OK;
  }
  if (item.segment_offset == 0) {
    // A new segment: decide about the previous one's probe first.
    if (!feed_probe(self) || !flush_iso(self) || !check_skipped(self, item.segment)) {
      g_bytes_unref(item.bytes);
      return GST_FLOW_ERROR;
    }
    if (priv->refetching) {  // an earlier segment comes again first
      priv->refetching = false;
      g_bytes_unref(item.bytes);
      return GST_FLOW_OK;
    }
    priv->probe = g_byte_array_new();
    priv->probe_segment = item.segment;
  }
  if (priv->probe) {
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(item.bytes, &size));
    g_byte_array_append(priv->probe, data, guint(size));
    g_bytes_unref(item.bytes);
    if (priv->probe->len >= kHeaderProbeBytes && !feed_probe(self)) return GST_FLOW_ERROR;
    priv->refetching = false;  // the probe was the stale part
    return GST_FLOW_OK;
  }
  std::string error;
  bool ok = priv->joiner->push(item.bytes, error);
  g_bytes_unref(item.bytes);
  if (!ok) {
    demux_error(self, item.segment, error);
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

// Everything before the switch is out: the fallback file starts now, from
// its beginning, skipping what was played. False on a demuxer error (posted).
static bool start_fallback(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  GBytes *first = priv->fallback_first;
  priv->fallback_first = nullptr;
  bool fresh = !priv->caps_set;
  // The same encode has the same frames: count them when the count is
  // from the track start, else measure the time played.
  priv->fallback_by_frames = priv->frames_out_valid;
  priv->fallback_skip =
      priv->fallback_by_frames ? priv->frames_out : priv->timeline.position_samples();
  priv->fallback_seen = 0;
  priv->fallback_skipping = priv->fallback_skip > 0;
  if (priv->vorbis.ready()) priv->vorbis.reset();
  // Nothing played yet: the file is the track start (headers, pre-skip).
  priv->joiner->new_instance(fresh ? 0 : segdl::kFallbackSegment);
  std::string error;
  bool ok = priv->joiner->push(first, error);
  g_bytes_unref(first);
  if (!ok) demux_error(self, segdl::kFallbackSegment, error);
  return ok;
}

// Everything is out: EOS, the length now counted, not estimated.
static GstFlowReturn finish_track(GstSegDlSrc *self, segdl::Downloader *dl) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (!priv->caps_set) {
    GST_ELEMENT_ERROR(self, STREAM, DEMUX, ("The track has no audio."),
                      ("no frame came out of %" G_GINT64_FORMAT " demuxer instance(s)",
                       priv->joiner->instance_count()));
    return GST_FLOW_ERROR;
  }
  GST_INFO_OBJECT(self, "end of track at %" GST_TIME_FORMAT,
                  GST_TIME_ARGS(priv->timeline.position_ns()));
  priv->exact_duration_ns = int64_t(priv->timeline.position_ns());
  gst_seg_dl_src_update_duration(self, dl);
  gst_seg_dl_src_post_final_stats(self, dl);
  return GST_FLOW_EOS;
}

// Segment bytes into the joiner, parsed frames through the timeline, out in
// order.
GstFlowReturn gst_seg_dl_src_create_timeline(GstSegDlSrc *self, segdl::Downloader *dl,
                                             GstBuffer **outbuf) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->caps_set && priv->tags) {
    // Segment 0's container tags: after the first buffer, so after the
    // segment event basesrc sends before it.
    GstTagList *tags = priv->tags;
    priv->tags = nullptr;
    gst_pad_push_event(GST_BASE_SRC_PAD(self), gst_event_new_tag(tags));
  }
  for (;;) {
    if (!priv->ready.empty() && !snap_unknown(priv)) {
      if (priv->snap_segment) apply_snap(self);
      GstFlowReturn ret = gst_seg_dl_src_take_ready(self, outbuf);
      if (ret != GST_FLOW_OK) return ret;
      if (!*outbuf) continue;  // an event
      GstClockTime stop = GST_BASE_SRC(self)->segment.stop;
      if (GST_CLOCK_TIME_IS_VALID(stop) && GST_BUFFER_PTS(*outbuf) >= stop &&
          GST_BUFFER_DURATION(*outbuf) > 0) {
        gst_buffer_replace(outbuf, nullptr);
        return GST_FLOW_EOS;  // basesrc turns this into SEGMENT_DONE for segment seeks
      }
      return GST_FLOW_OK;
    }
    if (take_joined_frames(self, -1, false)) continue;
    if (priv->gap_segment >= 0) {
      // The frames before it are out of the joiner: the gap follows them.
      int64_t n = priv->gap_segment;
      priv->gap_segment = -1;
      place_gap(self, n, priv->gap_error);
      continue;
    }
    if (priv->fallback_first) {
      // Everything before the switch is out: the fallback file starts now,
      // from its beginning, skipping what was played.
      gst_seg_dl_src_end_timeline_segment(self);
      if (!priv->ready.empty()) continue;
      if (!start_fallback(self)) return GST_FLOW_ERROR;
      continue;
    }
    if (priv->track_done) {
      gst_seg_dl_src_end_timeline_segment(self);
      if (!priv->ready.empty()) continue;
      return finish_track(self, dl);
    }
    GstFlowReturn ret = feed_next_item(self, dl);
    if (ret != GST_FLOW_OK) return ret;
  }
}
