// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's streaming thread: the push loop (waiting for the
 * engine, BUFFERING, errors, duration) and join=bytes (see docs/design.md;
 * join=timeline is in gstsegdlsrc-timeline.cpp and gstsegdlsrc-frames.cpp).
 * Everything here runs on the streaming thread.
 */
#include "gstsegdlsrc-stream.h"

#include <gst/audio/audio.h>
#include <gst/base/gsttypefindhelper.h>

#include "segdl/codec.h"

#include <cmath>
#include <cstring>

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
    case K::NotAudio:  // posted as STREAM/DEMUX (post_engine_error())
      return GST_RESOURCE_ERROR_READ;
  }
  return GST_RESOURCE_ERROR_FAILED;
}

// Posts a RESOURCE error (STREAM/DEMUX for a segment that is not audio)
// with the details `segment`, `uri` and `http-status-code`, so applications
// need not parse the text.
static void post_engine_error(GstSegDlSrc *self, const segdl::EngineError &e) {
  GstStructure *details = gst_structure_new("details", "segment", G_TYPE_INT64, e.segment, "uri",
                                            G_TYPE_STRING, e.uri.c_str(), "http-status-code",
                                            G_TYPE_UINT, guint(e.http_status), nullptr);
  const bool demux = e.kind == segdl::EngineError::Kind::NotAudio;
  gst_element_message_full_with_details(
      GST_ELEMENT(self), GST_MESSAGE_ERROR, demux ? GST_STREAM_ERROR : GST_RESOURCE_ERROR,
      demux ? int(GST_STREAM_ERROR_DEMUX) : int(resource_code(e.kind)), g_strdup(e.message.c_str()),
      g_strdup(e.debug.c_str()), __FILE__, GST_FUNCTION, __LINE__, details);
}

// A segment gone for good and skipped (missing-segment=gap): a WARNING with
// the cause, so the application knows the output is not complete.
void gst_seg_dl_src_post_gap_warning(GstSegDlSrc *self, const segdl::EngineError &e,
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
void gst_seg_dl_src_post_final_stats(GstSegDlSrc *self, segdl::Downloader *dl) {
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

int64_t gst_seg_dl_src_track_duration(GstSegDlSrc *self, segdl::Downloader *dl) {
  GstSegDlSrcPrivate *priv = self->priv;
  int64_t exact = priv->exact_duration_ns.load();
  if (exact >= 0) return exact;
  int64_t d = dl->track_duration_ns();
  if (d >= 0) return d;
  // The deployed backends send only `ready` and `totalSegments`.
  segdl::EngineStats st = dl->stats();
  if (st.segments_total < 0) return -1;
  segdl::NominalSegments n;
  n.first_s =
      st.first_segment_duration_s > 0 ? st.first_segment_duration_s : priv->first_segment_duration;
  n.rest_s = st.segment_duration_s > 0 ? st.segment_duration_s : priv->segment_duration;
  return int64_t(n.start_ns(st.segments_total));
}

// Posts DURATION_CHANGED when the track length becomes known or changes.
void gst_seg_dl_src_update_duration(GstSegDlSrc *self, segdl::Downloader *dl) {
  int64_t d = gst_seg_dl_src_track_duration(self, dl);
  if (self->priv->duration_ns.exchange(d) == d) return;
  GST_INFO_OBJECT(self, "duration %" GST_STIME_FORMAT, GST_STIME_ARGS(d));
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_duration_changed(GST_OBJECT(self)));
}

// Waits for the next item in order from the engine. While it waits it posts
// BUFFERING, with hysteresis: once buffering, it goes on only when
// buffer-size bytes are ready, the track can be finished, every byte the
// backend has produced so far is here (waiting longer would wait for the
// backend: a segment smaller than buffer-size must not hold playback until
// the next one is made), or the engine's download window is full (it
// fetches more only once some is taken: a window of small segments must not
// hold playback for ever), or the tail of the m4a segment being read came
// (its frames whose bytes are in are ready). Returns
// GST_FLOW_OK with a Data, Gap or Eos item (or Timeout when the tail of
// the m4a segment being read came: gstsegdlsrc-mp4.cpp), or the flow to
// return.
GstFlowReturn gst_seg_dl_src_next_item(GstSegDlSrc *self, segdl::Downloader *dl,
                                       segdl::Downloader::Item &item) {
  GstSegDlSrcPrivate *priv = self->priv;
  for (;;) {
    gst_seg_dl_src_post_events(self, dl);  // WARNINGs and segment messages, from this thread
    // The tail of the m4a segment being read came apart from its body: the
    // frames whose bytes are in can go out (the caller reads them; Timeout
    // says so). While buffering it ends buffering first: those frames are
    // data ready, and pushed with a BUFFERING below 100 posted they would
    // block a source whose application paused on it (gst-launch with
    // several sources) and never hears 100 (5920f40); not taken, they
    // would wait for the rest of the body (bytes_ahead does not count
    // them: they were popped before the tail came).
    const bool tail = gst_seg_dl_src_mp4_tail_came(self, dl);
    if (priv->buffering) {
      segdl::Downloader::Level lv = dl->level();
      const bool all_made = lv.backend_bound && lv.bytes_ahead > 0;
      int pct = tail || lv.can_finish || all_made || lv.window_full
                    ? 100
                    : int(std::min<uint64_t>(
                          100, lv.bytes_ahead * 100 / std::max(1u, priv->buffer_size)));
      if (pct < 100) {
        post_buffering(self, pct);
        if (!dl->wait_change(kPopWait)) return GST_FLOW_FLUSHING;
        continue;
      }
      priv->buffering = false;
      if (!lv.ends_in_error) post_buffering(self, 100);  // no 100 % just before an ERROR
    }
    if (tail) {
      item.kind = segdl::Downloader::Item::Kind::Timeout;
      return GST_FLOW_OK;
    }
    item = dl->pop(kPopWait);
    using K = segdl::Downloader::Item::Kind;
    switch (item.kind) {
      case K::Flushing:
        return GST_FLOW_FLUSHING;
      case K::Timeout:
        // The engine wakes the wait early when the tail we wait for comes.
        if (gst_seg_dl_src_mp4_tail_came(self, dl)) return GST_FLOW_OK;
        priv->buffering = true;
        continue;
      case K::Error:
        post_engine_error(self, item.error);
        return GST_FLOW_ERROR;
      case K::Eos:
      case K::Data:
      case K::Gap:
        gst_seg_dl_src_update_duration(self, dl);
        return GST_FLOW_OK;
    }
  }
}

/* ---- join=bytes ---------------------------------------------------------- */

// The fallback file is the concatenation: the bytes already out are
// skipped. False when the whole chunk was (and is released).
static bool skip_fallback_bytes(GstSegDlSrcPrivate *priv, segdl::Downloader::Item &item) {
  if (item.segment_offset == 0) priv->fallback_skip_bytes = priv->offset;
  gsize n = g_bytes_get_size(item.bytes);
  uint64_t end = item.segment_offset + n;
  if (end <= priv->fallback_skip_bytes) {
    g_bytes_unref(item.bytes);
    return false;
  }
  if (item.segment_offset < priv->fallback_skip_bytes) {
    gsize drop = gsize(priv->fallback_skip_bytes - item.segment_offset);
    GBytes *rest = g_bytes_new_from_bytes(item.bytes, drop, n - drop);
    g_bytes_unref(item.bytes);
    item.bytes = rest;
  }
  return true;
}

// A later segment that is a file of its own cannot be appended: an error
// (posted; true) that says to use join=timeline.
static bool refuse_file(GstSegDlSrc *self, const segdl::Downloader::Item &item, const guint8 *data,
                        gsize size) {
  const char *container = nullptr;
  if (item.segment <= 0 || item.segment == segdl::kFallbackSegment || item.segment_offset != 0 ||
      !segdl::starts_container(data, size, &container))
    return false;
  GST_ELEMENT_ERROR(self, STREAM, WRONG_TYPE,
                    ("Segment %" G_GINT64_FORMAT " is a self-contained %s file: its bytes "
                     "cannot be appended to the previous segment's. Use join=timeline.",
                     item.segment, container),
                    ("join=bytes only joins continuous forms (ADTS, MP3, MPEG-TS, "
                     "fragmented MP4)"));
  return true;
}

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
    GstFlowReturn ret = gst_seg_dl_src_next_item(self, dl, item);
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
      gst_seg_dl_src_post_final_stats(self, dl);
      return GST_FLOW_EOS;
    }
    if (item.kind == segdl::Downloader::Item::Kind::Gap) {
      // Bytes cannot carry silence: the segment is left out, and said so.
      gst_seg_dl_src_post_gap_warning(self, item.error, 0);
      continue;
    }
    if (item.segment == segdl::kFallbackSegment && !skip_fallback_bytes(priv, item)) continue;
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(item.bytes, &size));
    if (refuse_file(self, item, data, size)) {
      g_bytes_unref(item.bytes);
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

GstFlowReturn gst_seg_dl_src_create(GstPushSrc *psrc, GstBuffer **outbuf) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(psrc);
  segdl::Downloader *dl = self->priv->downloader.get();  // stable while streaming
  if (!dl) return GST_FLOW_FLUSHING;
  if (self->priv->join == JOIN_BYTES) return create_bytes(self, dl, outbuf);
  return gst_seg_dl_src_create_timeline(self, dl, outbuf);
}
