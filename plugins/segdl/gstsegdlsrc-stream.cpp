/* segdl — segdlsrc's streaming thread: the push loop, join=bytes and
 * join=timeline, seeking, the switch to the fallback, gaps (see
 * docs/design.md). Everything here runs on the streaming thread, or in
 * do_seek() while basesrc holds the stream lock.
 */
#include "gstsegdlsrc-private.h"

#include <gst/audio/audio.h>
#include <gst/base/gsttypefindhelper.h>

#include <cmath>

#define GST_CAT_DEFAULT gst_seg_dl_src_debug

/* ---- errors and messages ---------------------------------------------- */

static GstResourceError resource_code(segdl::EngineError::Kind kind) {
  using K = segdl::EngineError::Kind;
  switch (kind) {
    case K::NotFound:
      return GST_RESOURCE_ERROR_NOT_FOUND;
    case K::NotAuthorized:
      return GST_RESOURCE_ERROR_NOT_AUTHORIZED;
    case K::OpenRead:
      return GST_RESOURCE_ERROR_OPEN_READ;
    case K::Read:
      return GST_RESOURCE_ERROR_READ;
    case K::Settings:
      return GST_RESOURCE_ERROR_SETTINGS;
    case K::Failed:
      return GST_RESOURCE_ERROR_FAILED;
  }
  return GST_RESOURCE_ERROR_FAILED;
}

// Posts a RESOURCE error with the details `segment`, `uri` and
// `http-status-code`, so applications need not parse the text.
static void post_engine_error(GstSegDlSrc *self, const segdl::EngineError &e) {
  GstStructure *details = gst_structure_new("details", "segment", G_TYPE_INT64, e.segment, "uri",
                                            G_TYPE_STRING, e.uri.c_str(), "http-status-code",
                                            G_TYPE_UINT, guint(e.http_status), nullptr);
  gst_element_message_full_with_details(GST_ELEMENT(self), GST_MESSAGE_ERROR, GST_RESOURCE_ERROR,
                                        resource_code(e.kind), g_strdup(e.message.c_str()),
                                        g_strdup(e.debug.c_str()), __FILE__, GST_FUNCTION, __LINE__,
                                        details);
}

// A segment gone for good and skipped (missing-segment=gap): a WARNING with
// the cause, so the application knows the output is not complete.
static void post_gap_warning(GstSegDlSrc *self, const segdl::EngineError &e,
                             GstClockTime duration) {
  GstStructure *details =
      gst_structure_new("details", "segment", G_TYPE_INT64, e.segment, "uri", G_TYPE_STRING,
                        e.uri.c_str(), "http-status-code", G_TYPE_UINT, guint(e.http_status),
                        "gap-duration", G_TYPE_UINT64, guint64(duration), nullptr);
  gchar *text = g_strdup_printf("Segment %" G_GINT64_FORMAT " is missing: %" GST_TIME_FORMAT
                                " of silence instead (%s)",
                                e.segment, GST_TIME_ARGS(duration), e.message.c_str());
  gst_element_message_full_with_details(GST_ELEMENT(self), GST_MESSAGE_WARNING, GST_STREAM_ERROR,
                                        GST_STREAM_ERROR_DEMUX, text, g_strdup(e.debug.c_str()),
                                        __FILE__, GST_FUNCTION, __LINE__, details);
}

// At the end of the track, the final `stats` as an element message
// ("segdl-stats"), for tools that cannot read properties (gst-launch -m).
static void post_final_stats(GstSegDlSrc *self, segdl::Downloader *dl) {
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(GST_OBJECT(self), gst_seg_dl_src_make_stats(dl->stats())));
}

// Posts BUFFERING when the percentage changes. Streaming thread, no lock held.
static void post_buffering(GstSegDlSrc *self, int percent) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->percent.exchange(percent) == percent) return;
  GST_DEBUG_OBJECT(self, "buffering %d%%", percent);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_buffering(GST_OBJECT(self), percent));
}

// Types the stream from the first bytes and sets the caps. Streaming thread.
static GstFlowReturn negotiate_from_held(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  g_autoptr(GstBuffer) probe = gst_buffer_new();
  for (GstBuffer *b : priv->held) probe = gst_buffer_append(probe, gst_buffer_ref(b));
  GstTypeFindProbability prob = GST_TYPE_FIND_NONE;
  g_autoptr(GstCaps) caps = gst_type_find_helper_for_buffer(GST_OBJECT(self), probe, &prob);
  if (!caps) {
    GST_ELEMENT_ERROR(self, STREAM, TYPE_NOT_FOUND,
                      ("Could not tell the format of the track from segment 0."),
                      ("typefinding %" G_GSIZE_FORMAT " bytes failed", priv->held_bytes));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  GST_INFO_OBJECT(self, "stream caps %" GST_PTR_FORMAT " (probability %d)", caps, prob);
  if (!gst_base_src_set_caps(GST_BASE_SRC(self), caps)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr),
                      ("downstream refused %" GST_PTR_FORMAT, caps));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  priv->caps_set = true;
  return GST_FLOW_OK;
}

static GstBuffer *take_held(GstSegDlSrcPrivate *priv) {
  GstBuffer *buf = priv->held.front();
  priv->held.pop_front();
  priv->held_bytes -= gst_buffer_get_size(buf);
  return buf;
}

// Posts DURATION_CHANGED when the track length becomes known or changes.
static void update_duration(GstSegDlSrc *self, segdl::Downloader *dl) {
  int64_t d = dl->track_duration_ns();
  if (self->priv->duration_ns.exchange(d) == d) return;
  GST_INFO_OBJECT(self, "duration %" GST_STIME_FORMAT, GST_STIME_ARGS(d));
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_duration_changed(GST_OBJECT(self)));
}

// Waits for the next item in order from the engine. While it waits it posts
// BUFFERING, with hysteresis: once buffering, it goes on only when
// buffer-size bytes are ready or the track can be finished. Returns
// GST_FLOW_OK with a Data or Eos item, or the flow to return.
static GstFlowReturn next_item(GstSegDlSrc *self, segdl::Downloader *dl,
                               segdl::Downloader::Item &item) {
  GstSegDlSrcPrivate *priv = self->priv;
  for (;;) {
    if (priv->buffering) {
      segdl::Downloader::Level lv = dl->level();
      int pct = lv.can_finish ? 100
                              : int(std::min<uint64_t>(
                                    100, lv.bytes_ahead * 100 / std::max(1u, priv->buffer_size)));
      if (pct < 100) {
        post_buffering(self, pct);
        if (!dl->wait_change(kPopWait)) return GST_FLOW_FLUSHING;
        continue;
      }
      priv->buffering = false;
      post_buffering(self, 100);
    }
    item = dl->pop(kPopWait);
    using K = segdl::Downloader::Item::Kind;
    switch (item.kind) {
      case K::Flushing:
        return GST_FLOW_FLUSHING;
      case K::Timeout:
        priv->buffering = true;
        continue;
      case K::Error:
        post_engine_error(self, item.error);
        return GST_FLOW_ERROR;
      case K::Eos:
      case K::Data:
      case K::Gap:
        update_duration(self, dl);
        return GST_FLOW_OK;
    }
  }
}

/* ---- join=bytes ---------------------------------------------------------- */

// The segments' bytes, in order, wrapped without copying; caps from
// typefinding the first bytes.
static GstFlowReturn create_bytes(GstSegDlSrc *self, segdl::Downloader *dl, GstBuffer **outbuf) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->caps_set && !priv->held.empty()) {
    *outbuf = take_held(priv);
    return GST_FLOW_OK;
  }
  for (;;) {
    segdl::Downloader::Item item;
    GstFlowReturn ret = next_item(self, dl, item);
    if (ret != GST_FLOW_OK) return ret;
    if (item.kind == segdl::Downloader::Item::Kind::Eos) {
      if (!priv->held.empty()) {
        // A track shorter than the typefind probe.
        ret = negotiate_from_held(self);
        if (ret != GST_FLOW_OK) return ret;
        *outbuf = take_held(priv);
        return GST_FLOW_OK;
      }
      if (priv->offset == 0) {
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("The track has no data."),
                          ("the backend announced no segments, or only empty ones"));
        return GST_FLOW_ERROR;
      }
      GST_INFO_OBJECT(self, "end of track after %" G_GUINT64_FORMAT " bytes", priv->offset);
      post_final_stats(self, dl);
      return GST_FLOW_EOS;
    }
    if (item.kind == segdl::Downloader::Item::Kind::Gap) {
      // Bytes cannot carry silence: the segment is left out, and said so.
      post_gap_warning(self, item.error, 0);
      continue;
    }
    if (item.segment == segdl::kFallbackSegment) {
      // The fallback file is the concatenation: skip the bytes already out.
      if (item.segment_offset == 0) priv->fallback_skip_bytes = priv->offset;
      gsize n = g_bytes_get_size(item.bytes);
      uint64_t end = item.segment_offset + n;
      if (end <= priv->fallback_skip_bytes) {
        g_bytes_unref(item.bytes);
        continue;
      }
      if (item.segment_offset < priv->fallback_skip_bytes) {
        gsize drop = gsize(priv->fallback_skip_bytes - item.segment_offset);
        GBytes *rest = g_bytes_new_from_bytes(item.bytes, drop, n - drop);
        g_bytes_unref(item.bytes);
        item.bytes = rest;
      }
    }
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(item.bytes, &size));
    const char *container = nullptr;
    if (item.segment > 0 && item.segment != segdl::kFallbackSegment && item.segment_offset == 0 &&
        segdl::starts_container(data, size, &container)) {
      g_bytes_unref(item.bytes);
      GST_ELEMENT_ERROR(self, STREAM, WRONG_TYPE,
                        ("Segment %" G_GINT64_FORMAT " is a self-contained %s file: its bytes "
                         "cannot be appended to the previous segment's. Use join=timeline.",
                         item.segment, container),
                        ("join=bytes only joins continuous forms (ADTS, MP3, MPEG-TS, "
                         "fragmented MP4)"));
      return GST_FLOW_ERROR;
    }
    GstBuffer *buf = gst_buffer_new_wrapped_bytes(item.bytes);  // no copy
    g_bytes_unref(item.bytes);
    GST_BUFFER_OFFSET(buf) = priv->offset;
    GST_BUFFER_OFFSET_END(buf) = priv->offset + size;
    if (priv->offset == 0) GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
    priv->offset += size;
    if (priv->caps_set) {
      *outbuf = buf;
      return GST_FLOW_OK;
    }
    priv->held.push_back(buf);
    priv->held_bytes += size;
    if (priv->held_bytes < kTypefindBytes) continue;
    ret = negotiate_from_held(self);
    if (ret != GST_FLOW_OK) return ret;
    *outbuf = take_held(priv);
    return GST_FLOW_OK;
  }
}

/* ---- join=timeline -------------------------------------------------------- */

// Two caps describe the same audio format if media type, rate, channels and
// MPEG version/layer agree: codec_data and stream headers that every segment
// repeats do not make a new format.
static bool same_format(GstCaps *a, GstCaps *b) {
  if (!a || !b || gst_caps_is_empty(a) || gst_caps_is_empty(b)) return false;
  const GstStructure *sa = gst_caps_get_structure(a, 0);
  const GstStructure *sb = gst_caps_get_structure(b, 0);
  if (!gst_structure_has_name(sb, gst_structure_get_name(sa))) return false;
  for (const char *field : {"rate", "channels", "mpegversion", "layer"}) {
    const GValue *va = gst_structure_get_value(sa, field);
    const GValue *vb = gst_structure_get_value(sb, field);
    if (!va && !vb) continue;
    if (!va || !vb || gst_value_compare(va, vb) != GST_VALUE_EQUAL) return false;
  }
  return true;
}

static void demux_error(GstSegDlSrc *self, int64_t segment, const std::string &why) {
  GST_ELEMENT_ERROR(self, STREAM, DEMUX,
                    ("Could not read the audio of segment %" G_GINT64_FORMAT ".", segment),
                    ("%s", why.c_str()));
}

// Hands the probed first bytes of a segment to the joiner, starting a new
// demuxer instance when they begin a file of their own.
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
  std::string error;
  bool ok = true;
  if (!priv->joiner->has_instance() || segdl::starts_container(data, size, &container)) {
    if (priv->joiner->has_instance()) {
      GST_DEBUG_OBJECT(self, "segment %" G_GINT64_FORMAT " is a %s file", segment, container);
      ok = priv->joiner->finish(error);
    }
    if (ok) priv->joiner->new_instance(segment);
  }
  if (ok) ok = priv->joiner->push(bytes, error);
  g_bytes_unref(bytes);
  if (!ok) demux_error(self, segment, error);
  return ok;
}

// Vorbis: count each packet's samples across joins from the stream headers
// (a parser restarted per segment gets the first packet of each one wrong).
static void init_vorbis(GstSegDlSrc *self, const GstStructure *st) {
  const GValue *hdrs = gst_structure_get_value(st, "streamheader");
  if (!hdrs || !GST_VALUE_HOLDS_ARRAY(hdrs) || gst_value_array_get_size(hdrs) < 3) return;
  GstBuffer *id = gst_value_get_buffer(gst_value_array_get_value(hdrs, 0));
  GstBuffer *setup = gst_value_get_buffer(gst_value_array_get_value(hdrs, 2));
  GstMapInfo a, b;
  if (!id || !setup || !gst_buffer_map(id, &a, GST_MAP_READ)) return;
  if (gst_buffer_map(setup, &b, GST_MAP_READ)) {
    if (!self->priv->vorbis.init(a.data, a.size, b.data, b.size))
      GST_WARNING_OBJECT(self, "cannot read the Vorbis headers: durations as parsed");
    gst_buffer_unmap(setup, &b);
  }
  gst_buffer_unmap(id, &a);
}

// A frame's duration on the timeline: Vorbis counted across joins, else the
// parser's, else the previous frame's. Advances the Vorbis state.
static GstClockTime frame_duration(GstSegDlSrc *self, GstBuffer *frame) {
  GstSegDlSrcPrivate *priv = self->priv;
  GstClockTime dur = GST_BUFFER_DURATION(frame);
  if (priv->vorbis.ready() && priv->out_rate) {
    GstMapInfo map;
    if (gst_buffer_map(frame, &map, GST_MAP_READ)) {
      int64_t samples = priv->vorbis.next(map.data, map.size);
      gst_buffer_unmap(frame, &map);
      if (samples >= 0) dur = gst_util_uint64_scale_round(samples, GST_SECOND, priv->out_rate);
    }
  }
  if (!GST_CLOCK_TIME_IS_VALID(dur)) dur = priv->last_frame_duration;
  priv->last_frame_duration = dur;
  return dur;
}

// Puts a parsed frame on the timeline: pts = the end of the previous frame,
// counted in samples so that no rounding accumulates.
static GstFlowReturn stamp_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps,
                                 GstBuffer **outbuf,
                                 GstClockTime known_duration = GST_CLOCK_TIME_NONE) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (caps && !same_format(priv->out_caps, caps)) {
    if (priv->out_caps) GST_INFO_OBJECT(self, "format changes to %" GST_PTR_FORMAT, caps);
    if (!gst_base_src_set_caps(GST_BASE_SRC(self), caps)) {
      gst_buffer_unref(frame);
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr),
                        ("downstream refused %" GST_PTR_FORMAT, caps));
      return GST_FLOW_NOT_NEGOTIATED;
    }
    gst_caps_replace(&priv->out_caps, caps);
    int rate = 0;
    const GstStructure *st = gst_caps_get_structure(caps, 0);
    gst_structure_get_int(st, "rate", &rate);
    priv->vorbis = segdl::VorbisBlocks();
    if (gst_structure_has_name(st, "audio/x-vorbis")) init_vorbis(self, st);
    priv->out_rate = rate > 0 ? rate : 0;
    if (priv->out_rate)
      priv->out_samples = gst_util_uint64_scale_round(priv->out_time, priv->out_rate, GST_SECOND);
  }
  if (GST_BUFFER_FLAG_IS_SET(frame, GST_BUFFER_FLAG_HEADER)) {
    // Codec headers (once, at the start): no time of their own.
    frame = gst_buffer_make_writable(frame);
    GST_BUFFER_PTS(frame) = GST_BUFFER_DTS(frame) = priv->out_time;
    GST_BUFFER_DURATION(frame) = GST_CLOCK_TIME_NONE;
    *outbuf = frame;
    return GST_FLOW_OK;
  }
  GstClockTime dur =
      GST_CLOCK_TIME_IS_VALID(known_duration) ? known_duration : frame_duration(self, frame);

  frame = gst_buffer_make_writable(frame);
  GstClockTime pts = priv->out_time;
  GstClockTime end = pts;
  if (GST_CLOCK_TIME_IS_VALID(dur)) {
    if (priv->out_rate) {
      priv->out_samples += gst_util_uint64_scale_round(dur, priv->out_rate, GST_SECOND);
      end = gst_util_uint64_scale_round(priv->out_samples, GST_SECOND, priv->out_rate);
    } else {
      end = pts + dur;
    }
  }
  priv->out_time = end;
  priv->frames_out++;
  GST_BUFFER_PTS(frame) = pts;
  GST_BUFFER_DTS(frame) = pts;
  GST_BUFFER_DURATION(frame) = GST_CLOCK_TIME_IS_VALID(dur) ? end - pts : GST_CLOCK_TIME_NONE;
  GST_BUFFER_OFFSET(frame) = GST_BUFFER_OFFSET_NONE;
  GST_BUFFER_OFFSET_END(frame) = GST_BUFFER_OFFSET_NONE;
  if (priv->caps_set)
    GST_BUFFER_FLAG_UNSET(frame, GST_BUFFER_FLAG_DISCONT);
  else
    GST_BUFFER_FLAG_SET(frame, GST_BUFFER_FLAG_DISCONT);
  priv->caps_set = true;
  *outbuf = frame;
  return GST_FLOW_OK;
}

// Segment timing: nominal durations from the status, else the properties.
struct SegmentTimes {
  double first = kDefaultFirstSegmentDuration;  // seconds
  double rest = kDefaultSegmentDuration;
  int64_t total = -1;
};

static SegmentTimes segment_times(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  segdl::EngineStats st;
  {
    std::lock_guard<std::mutex> lock(priv->state_lock);
    if (priv->downloader) st = priv->downloader->stats();
  }
  SegmentTimes t;
  t.first =
      st.first_segment_duration_s > 0 ? st.first_segment_duration_s : priv->first_segment_duration;
  t.rest = st.segment_duration_s > 0 ? st.segment_duration_s : priv->segment_duration;
  t.total = st.segments_total;
  return t;
}

// Where segment k begins on the timeline: where its frames really began when
// that was seen (self-contained files), else from the nominal durations.
static GstClockTime segment_start(GstSegDlSrc *self, const SegmentTimes &t, int64_t k) {
  auto it = self->priv->segment_starts.find(k);
  if (it != self->priv->segment_starts.end()) return it->second;
  if (k <= 0) return 0;
  return GstClockTime((t.first + double(k - 1) * t.rest) * GST_SECOND);
}

// Maps a time on the track to the segment holding it and that segment's
// start time.
static int64_t segment_for_time(GstSegDlSrc *self, GstClockTime t, GstClockTime *start) {
  GstSegDlSrcPrivate *priv = self->priv;
  SegmentTimes times = segment_times(self);
  double secs = double(t) / GST_SECOND;
  int64_t k = secs < times.first ? 0 : 1 + int64_t(std::floor((secs - times.first) / times.rest));
  if (times.total > 0 && k >= times.total) k = times.total - 1;
  // Correct the estimate with what the frames showed (bounded steps).
  for (int i = 0; i < 64 && k > 0 && segment_start(self, times, k) > t; i++) k--;
  for (int i = 0; i < 64 && priv->segment_starts.count(k + 1) && priv->segment_starts[k + 1] <= t;
       i++)
    k++;
  *start = segment_start(self, times, k);
  return k;
}

// A flushing TIME seek (basesrc has stopped the streaming thread): restart
// the downloads at the segment holding the position, and the timeline at
// that segment's start; frames before the position are dropped in create().
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
  if (target == 0 && !priv->caps_set && priv->out_time == 0) return TRUE;  // already there
  GstClockTime seg_start = 0;
  int64_t k = segment_for_time(self, target, &seg_start);
  GST_INFO_OBJECT(self,
                  "seek to %" GST_TIME_FORMAT ": segment %" G_GINT64_FORMAT
                  " starting at %" GST_TIME_FORMAT,
                  GST_TIME_ARGS(target), k, GST_TIME_ARGS(seg_start));
  dl->seek(k);
  priv->joiner->reset();
  if (priv->probe) g_byte_array_unref(priv->probe);
  priv->probe = nullptr;
  priv->probe_segment = -1;
  priv->track_done = false;
  priv->out_time = seg_start;
  priv->out_samples =
      priv->out_rate ? gst_util_uint64_scale_round(seg_start, priv->out_rate, GST_SECOND) : 0;
  priv->last_frame_duration = GST_CLOCK_TIME_NONE;
  priv->vorbis.reset();
  priv->frames_out_valid = false;
  priv->seek_target = target;
  priv->discont = true;
  return TRUE;
}

// Segment bytes into the joiner, parsed frames out, laid end to end.
static GstFlowReturn create_timeline(GstSegDlSrc *self, segdl::Downloader *dl, GstBuffer **outbuf) {
  GstSegDlSrcPrivate *priv = self->priv;
  for (;;) {
    GstCaps *caps = nullptr;
    int64_t instance_start = -1;
    GstClockTime known_duration = GST_CLOCK_TIME_NONE;
    if (GstBuffer *frame = priv->joiner->pop(&caps, &instance_start)) {
      if (priv->fallback_skipping && !GST_BUFFER_FLAG_IS_SET(frame, GST_BUFFER_FLAG_HEADER)) {
        // The fallback file from its start: drop what was already played.
        GstClockTime dur = frame_duration(self, frame);
        uint64_t n = priv->fallback_by_frames        ? 1
                     : !GST_CLOCK_TIME_IS_VALID(dur) ? 0
                     : priv->out_rate ? gst_util_uint64_scale_round(dur, priv->out_rate, GST_SECOND)
                                      : dur;
        if (priv->fallback_seen + n <= priv->fallback_skip && n > 0) {
          priv->fallback_seen += n;
          gst_buffer_unref(frame);
          continue;
        }
        priv->fallback_skipping = false;
        if (priv->fallback_seen != priv->fallback_skip)
          GST_WARNING_OBJECT(
              self, "fallback frames do not align: %" G_GUINT64_FORMAT " vs %" G_GUINT64_FORMAT,
              priv->fallback_seen, priv->fallback_skip);
        // This frame's duration is counted already: stamp it with it.
        known_duration = dur;
      } else if (instance_start >= 0 && instance_start != segdl::kFallbackSegment) {
        priv->segment_starts[instance_start] = priv->out_time;
      }
      GstFlowReturn ret = stamp_frame(self, frame, caps, outbuf, known_duration);
      if (ret != GST_FLOW_OK) return ret;
      GstClockTime pts = GST_BUFFER_PTS(*outbuf);
      GstClockTime end =
          pts + (GST_BUFFER_DURATION_IS_VALID(*outbuf) ? GST_BUFFER_DURATION(*outbuf) : 0);
      bool lead_in = false;  // a frame without samples before the position (decoder priming)
      if (GST_CLOCK_TIME_IS_VALID(priv->seek_target)) {
        if (end <= priv->seek_target && end > pts) {  // before the seek position
          gst_buffer_replace(outbuf, nullptr);
          continue;
        }
        lead_in = end == pts && end <= priv->seek_target;
        if (!lead_in) priv->seek_target = GST_CLOCK_TIME_NONE;
      }
      if (priv->discont) {
        // Also on the first frame with samples: sinks drop lead-in frames
        // that lie before the segment.
        GST_BUFFER_FLAG_SET(*outbuf, GST_BUFFER_FLAG_DISCONT);
        priv->discont = lead_in;
      }
      GstClockTime stop = GST_BASE_SRC(self)->segment.stop;
      if (GST_CLOCK_TIME_IS_VALID(stop) && pts >= stop) {
        gst_buffer_replace(outbuf, nullptr);
        return GST_FLOW_EOS;  // basesrc turns this into SEGMENT_DONE for segment seeks
      }
      return GST_FLOW_OK;
    }
    if (priv->gap_segment >= 0) {
      // Silence up to where the next segment begins.
      int64_t n = priv->gap_segment;
      priv->gap_segment = -1;
      GstClockTime next = segment_start(self, segment_times(self), n + 1);
      GstClockTime dur = next > priv->out_time ? next - priv->out_time : 0;
      post_gap_warning(self, priv->gap_error, dur);
      if (dur > 0) {
        if (priv->caps_set)
          gst_pad_push_event(GST_BASE_SRC_PAD(self), gst_event_new_gap(priv->out_time, dur));
        priv->out_time = next;
        if (priv->out_rate)
          priv->out_samples = gst_util_uint64_scale_round(next, priv->out_rate, GST_SECOND);
      }
      priv->frames_out_valid = false;  // a fallback later can no longer count frames
      priv->vorbis.reset();
      priv->discont = true;
      continue;
    }
    if (priv->fallback_first) {
      // Everything before the switch is out: the fallback file starts now,
      // from its beginning, skipping what was played.
      GBytes *first = priv->fallback_first;
      priv->fallback_first = nullptr;
      bool fresh = !priv->caps_set;
      // The same encode has the same frames: count them when the count is
      // from the track start, else measure the time played.
      priv->fallback_by_frames = priv->frames_out_valid;
      priv->fallback_skip = priv->fallback_by_frames ? priv->frames_out
                            : priv->out_rate         ? priv->out_samples
                                                     : priv->out_time;
      priv->fallback_seen = 0;
      priv->fallback_skipping = priv->fallback_skip > 0;
      priv->vorbis.reset();
      // Nothing played yet: the file is the track start (headers, pre-skip).
      priv->joiner->new_instance(fresh ? 0 : segdl::kFallbackSegment);
      std::string error;
      bool ok = priv->joiner->push(first, error);
      g_bytes_unref(first);
      if (!ok) {
        demux_error(self, segdl::kFallbackSegment, error);
        return GST_FLOW_ERROR;
      }
      continue;
    }
    if (priv->track_done) {
      if (!priv->caps_set) {
        GST_ELEMENT_ERROR(self, STREAM, DEMUX, ("The track has no audio."),
                          ("no frame came out of %" G_GINT64_FORMAT " demuxer instance(s)",
                           priv->joiner->instance_count()));
        return GST_FLOW_ERROR;
      }
      GST_INFO_OBJECT(self, "end of track at %" GST_TIME_FORMAT, GST_TIME_ARGS(priv->out_time));
      post_final_stats(self, dl);
      return GST_FLOW_EOS;
    }
    segdl::Downloader::Item item;
    GstFlowReturn ret = next_item(self, dl, item);
    if (ret != GST_FLOW_OK) return ret;
    if (item.kind == segdl::Downloader::Item::Kind::Eos) {
      std::string error;
      if (!feed_probe(self)) return GST_FLOW_ERROR;
      if (!priv->joiner->finish(error)) {
        demux_error(self, priv->joiner->instance_segment(), error);
        return GST_FLOW_ERROR;
      }
      priv->track_done = true;
      continue;
    }
    if (item.kind == segdl::Downloader::Item::Kind::Gap) {
      // The frames of what came before go out first; the gap follows (above).
      std::string error;
      if (!feed_probe(self)) return GST_FLOW_ERROR;
      if (!priv->joiner->finish(error))
        GST_INFO_OBJECT(self, "the missing segment ends: %s", error.c_str());
      priv->gap_segment = item.segment;
      priv->gap_error = item.error;
      continue;
    }
    if (item.segment == segdl::kFallbackSegment && item.segment_offset == 0) {
      // The fallback URL takes over: finish what the segments gave (their
      // frames come out first), then start the file (above).
      std::string error;
      if (!feed_probe(self)) {
        g_bytes_unref(item.bytes);
        return GST_FLOW_ERROR;
      }
      // The segment that failed may be cut short: what it gave is played, a
      // demuxer error about its missing rest is expected.
      if (!priv->joiner->finish(error))
        GST_INFO_OBJECT(self, "the broken segment ends: %s", error.c_str());
      priv->fallback_first = item.bytes;
      priv->discont = true;
      continue;
    }
    if (item.segment_offset == 0) {
      // A new segment: decide about the previous one's probe first.
      if (!feed_probe(self)) {
        g_bytes_unref(item.bytes);
        return GST_FLOW_ERROR;
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
      continue;
    }
    std::string error;
    bool ok = priv->joiner->push(item.bytes, error);
    g_bytes_unref(item.bytes);
    if (!ok) {
      demux_error(self, item.segment, error);
      return GST_FLOW_ERROR;
    }
  }
}

GstFlowReturn gst_seg_dl_src_create(GstPushSrc *psrc, GstBuffer **outbuf) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(psrc);
  segdl::Downloader *dl = self->priv->downloader.get();  // stable while streaming
  if (!dl) return GST_FLOW_FLUSHING;
  if (self->priv->join == JOIN_BYTES) return create_bytes(self, dl, outbuf);
  return create_timeline(self, dl, outbuf);
}
