// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's streaming thread: the push loop, join=bytes and
 * join=timeline, seeking, the switch to the fallback, gaps (see
 * docs/design.md). Everything here runs on the streaming thread, or in
 * do_seek() while basesrc holds the stream lock.
 */
#include "gstsegdlsrc-private.h"

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
static void update_duration(GstSegDlSrc *self, segdl::Downloader *dl) {
  int64_t d = gst_seg_dl_src_track_duration(self, dl);
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
    gst_seg_dl_src_post_events(self, dl);  // WARNINGs and segment messages, from this thread
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
      if (!lv.ends_in_error) post_buffering(self, 100);  // no 100 % just before an ERROR
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
  }
  bool ok = priv->joiner->push(bytes, error);
  g_bytes_unref(bytes);
  if (!ok) demux_error(self, segment, error);
  return ok;
}

/* ---- frames onto the timeline ------------------------------------------- */

// What the frames are, for counting their samples from the codec.
enum FrameCodec { CODEC_OTHER, CODEC_AAC, CODEC_OPUS, CODEC_MP3, CODEC_VORBIS };

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

// AAC samples per frame at the caps rate, from codec_data (1024 or 960,
// doubled when the caps rate is SBR's).
static int aac_frame_samples(const GstStructure *st, int rate) {
  const GValue *v = gst_structure_get_value(st, "codec_data");
  GstBuffer *cd = v && GST_VALUE_HOLDS_BUFFER(v) ? gst_value_get_buffer(v) : nullptr;
  GstMapInfo map;
  if (!cd || !gst_buffer_map(cd, &map, GST_MAP_READ)) return 1024;
  segdl::AacConfig cfg;
  int n = 1024;
  if (segdl::parse_aac_config(map.data, map.size, cfg) && cfg.sample_rate > 0)
    n = int(uint64_t(cfg.frame_length) * uint64_t(rate) / cfg.sample_rate);
  gst_buffer_unmap(cd, &map);
  return n > 0 ? n : 1024;
}

// The pre-skip of the OpusHead in the caps (streamheader or codec_data), 0
// if none.
static uint64_t opus_preskip(const GstStructure *st) {
  GstBuffer *head = nullptr;
  const GValue *v = gst_structure_get_value(st, "streamheader");
  if (v && GST_VALUE_HOLDS_ARRAY(v) && gst_value_array_get_size(v) > 0)
    head = gst_value_get_buffer(gst_value_array_get_value(v, 0));
  v = gst_structure_get_value(st, "codec_data");
  if (!head && v && GST_VALUE_HOLDS_BUFFER(v)) head = gst_value_get_buffer(v);
  GstMapInfo map;
  if (!head || !gst_buffer_map(head, &map, GST_MAP_READ)) return 0;
  segdl::OpusHead h;
  uint64_t n = segdl::parse_opus_head(map.data, map.size, h) ? h.pre_skip : 0;
  gst_buffer_unmap(head, &map);
  return n;
}

// New caps for the frames entering the timeline: what the codec is, its
// rate (Opus counts at 48 kHz whatever the caps say), the samples per frame
// and the pre-roll a decoder needs before a seek target.
static void enter_caps(GstSegDlSrc *self, GstCaps *caps) {
  GstSegDlSrcPrivate *priv = self->priv;
  const GstStructure *st = gst_caps_get_structure(caps, 0);
  int rate = 0;
  gst_structure_get_int(st, "rate", &rate);
  int version = 0;
  priv->vorbis = segdl::VorbisBlocks();
  priv->codec = CODEC_OTHER;
  uint64_t preroll = 0;
  if (gst_structure_has_name(st, "audio/x-opus")) {
    priv->codec = CODEC_OPUS;
    rate = 48000;
    preroll = 3840;  // 80 ms, what RFC 7845 asks for after a seek
    priv->opus_preskip = opus_preskip(st);
  } else if (gst_structure_has_name(st, "audio/x-vorbis")) {
    priv->codec = CODEC_VORBIS;
    init_vorbis(self, st);
    preroll = 4096;  // the previous packet's overlap, long blocks included
  } else if (gst_structure_has_name(st, "audio/mpeg") &&
             gst_structure_get_int(st, "mpegversion", &version)) {
    if (version == 1) {
      priv->codec = CODEC_MP3;
      preroll = 3 * 1152;  // bit reservoir (up to 511 bytes back) and overlap
    } else {
      priv->codec = CODEC_AAC;
      priv->aac_frame = aac_frame_samples(st, rate);
      preroll = uint64_t(priv->aac_frame);  // the previous frame's overlap
    }
  }
  priv->out_rate = rate > 0 ? rate : 0;
  priv->last_samples = -1;
  priv->timeline.set_rate(priv->out_rate);
  priv->timeline.set_preroll(preroll);
  gst_caps_replace(&priv->in_caps, caps);
}

// Samples in a frame, from the codec itself (Opus TOC, MP3 header, AAC
// frame length, Vorbis block sizes); else from its duration, else the
// previous frame's. `info` is set for an MP3 information frame (no audio).
static int64_t frame_samples(GstSegDlSrc *self, GstBuffer *frame, bool *info) {
  GstSegDlSrcPrivate *priv = self->priv;
  *info = false;
  int64_t n = -1;
  GstMapInfo map;
  if (priv->codec != CODEC_OTHER && gst_buffer_map(frame, &map, GST_MAP_READ)) {
    switch (priv->codec) {
      case CODEC_OPUS:
        n = segdl::opus_packet_samples(map.data, map.size);
        break;
      case CODEC_AAC:
        n = priv->aac_frame;
        break;
      case CODEC_VORBIS:
        if (priv->vorbis.ready()) n = priv->vorbis.next(map.data, map.size);
        break;
      case CODEC_MP3: {
        segdl::MpegAudioHeader h;
        segdl::MpegInfoFrame fi;
        if (segdl::parse_mpeg_audio_header(map.data, map.size, h)) {
          n = h.samples;
          *info = segdl::parse_mpeg_info_frame(map.data, map.size, h, fi) &&
                  fi.kind != segdl::MpegInfoFrame::Kind::None;
        }
        break;
      }
      default:
        break;
    }
    gst_buffer_unmap(frame, &map);
  }
  if (n < 0 && GST_BUFFER_DURATION_IS_VALID(frame) && priv->out_rate)
    n = int64_t(segdl::ns_to_samples(GST_BUFFER_DURATION(frame), priv->out_rate));
  if (n < 0) n = priv->last_samples;
  if (n < 0) {
    GST_WARNING_OBJECT(self, "a frame of unknown length: counted as empty");
    n = 0;
  }
  priv->last_samples = n;
  return n;
}

// The clipping a demuxer put on a frame, in samples at the timeline's
// rate; the meta is removed (the timeline's own replaces it).
static void take_clipping(GstSegDlSrc *self, GstBuffer *frame, uint64_t &start, uint64_t &end) {
  start = end = 0;
  GstAudioClippingMeta *clip = gst_buffer_get_audio_clipping_meta(frame);
  if (!clip) return;
  int rate = self->priv->out_rate;
  if (clip->format == GST_FORMAT_DEFAULT) {
    start = clip->start;
    end = clip->end;
  } else if (clip->format == GST_FORMAT_TIME) {
    start = segdl::ns_to_samples(clip->start, rate);
    end = segdl::ns_to_samples(clip->end, rate);
  }
  gst_buffer_remove_meta(frame, reinterpret_cast<GstMeta *>(clip));
}

static void free_frames(std::deque<GstSegDlSrcPrivate::Frame> &q) {
  for (auto &f : q) {
    if (f.buffer) gst_buffer_unref(f.buffer);
    if (f.caps) gst_caps_unref(f.caps);
    if (f.event) gst_event_unref(f.event);
  }
  q.clear();
}

// Applies the timeline's decisions to the frames waiting for them, in order.
static void apply_decisions(GstSegDlSrc *self, const segdl::Timeline::Decisions &ds) {
  GstSegDlSrcPrivate *priv = self->priv;
  for (const segdl::FrameDecision &d : ds) {
    if (priv->pending.empty()) break;
    GstSegDlSrcPrivate::Frame f = priv->pending.front();
    priv->pending.pop_front();
    if (d.drop) {
      gst_buffer_unref(f.buffer);
      if (f.caps) gst_caps_unref(f.caps);
      continue;
    }
    GstBuffer *b = gst_buffer_make_writable(f.buffer);
    GST_BUFFER_PTS(b) = GST_BUFFER_DTS(b) = d.pts_ns;
    GST_BUFFER_DURATION(b) = d.duration_ns;
    GST_BUFFER_OFFSET(b) = GST_BUFFER_OFFSET_END(b) = GST_BUFFER_OFFSET_NONE;
    if (d.clip_start || d.clip_end)
      gst_buffer_add_audio_clipping_meta(b, GST_FORMAT_DEFAULT, d.clip_start, d.clip_end);
    if (d.discont || priv->discont)
      GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    else
      GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DISCONT);
    priv->discont = false;
    f.buffer = b;
    priv->ready.push_back(f);
  }
}

// The frames of the segment that entered last are all in: its end trims
// apply and the frames held back are decided.
static void end_timeline_segment(GstSegDlSrc *self) {
  segdl::Timeline::Decisions ds;
  self->priv->timeline.end_segment(ds);
  apply_decisions(self, ds);
}

// Ogg: oggdemux gives each packet's granule (OFFSET_END): the samples
// decoded up to its end. A packet whose granule is short of the count from
// the packet before is cut at its end by that much (the end trim of the
// last page, RFC 7845 4.4 / Vorbis I A.2): demuxing in push mode, oggdemux
// does not apply it.
static uint64_t ogg_end_trim(GstSegDlSrc *self, GstBuffer *frame, uint64_t samples) {
  GstSegDlSrcPrivate *priv = self->priv;
  // Opus only: for Vorbis oggdemux counts the last packet itself.
  if (!priv->ogg_form || priv->codec != CODEC_OPUS) return 0;
  int64_t expected = priv->granule_end >= 0 ? priv->granule_end + int64_t(samples) : -1;
  uint64_t trim = 0;
  if (GST_BUFFER_OFFSET_END_IS_VALID(frame) && GST_BUFFER_OFFSET_END(frame) < G_MAXINT64) {
    int64_t granule = int64_t(GST_BUFFER_OFFSET_END(frame));
    if (expected > granule) trim = std::min<uint64_t>(uint64_t(expected - granule), samples);
    priv->granule_end = granule;
  } else {
    priv->granule_end = expected;
  }
  return trim;
}

// A parsed frame into the timeline (codec headers straight out: no time of
// their own). `segment` is the segment whose file the frame begins, -1 if
// it continues the one before.
static void enter_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps, int64_t segment,
                        int64_t known_samples = -1) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (caps && !same_format(priv->in_caps, caps)) {
    end_timeline_segment(self);  // the frames before go out with their caps
    if (priv->in_caps) GST_INFO_OBJECT(self, "format changes to %" GST_PTR_FORMAT, caps);
    enter_caps(self, caps);
  }
  if (segment >= 0) {
    priv->tl_segment = segment;
    priv->granule_end = -1;
    if (segment == 0 && priv->codec == CODEC_OPUS && priv->opus_preskip > 0) {
      // The track starts with the encoder's pre-skip (demuxers mark it on
      // the first frame, or not: oggdemux in push mode does not).
      segdl::SegmentTrim trim;
      trim.start = priv->opus_preskip;
      priv->timeline.set_trim(0, trim);
    }
  }
  if (GST_BUFFER_FLAG_IS_SET(frame, GST_BUFFER_FLAG_HEADER)) {
    end_timeline_segment(self);
    frame = gst_buffer_make_writable(frame);
    GST_BUFFER_PTS(frame) = GST_BUFFER_DTS(frame) = priv->timeline.position_ns();
    GST_BUFFER_DURATION(frame) = GST_CLOCK_TIME_NONE;
    priv->ready.push_back({frame, caps ? gst_caps_ref(caps) : nullptr});
    return;
  }

  bool info = false;
  int64_t samples = known_samples >= 0 ? known_samples : frame_samples(self, frame, &info);
  if (info) {
    GST_DEBUG_OBJECT(self, "an MP3 information frame in segment %" G_GINT64_FORMAT ": not audio",
                     priv->tl_segment);
    gst_buffer_unref(frame);
    return;
  }
  uint64_t clip_start = 0, clip_end = 0;
  take_clipping(self, frame, clip_start, clip_end);
  clip_end = std::max<uint64_t>(clip_end, ogg_end_trim(self, frame, uint64_t(samples)));
  priv->frames_out++;
  priv->pending.push_back({frame, caps ? gst_caps_ref(caps) : nullptr});
  segdl::Timeline::Decisions ds;
  priv->timeline.push(priv->tl_segment, uint64_t(samples), priv->next_token++, ds, clip_start,
                      clip_end);
  apply_decisions(self, ds);
}

// The next stamped buffer, caps set first when they change.
static GstFlowReturn take_ready(GstSegDlSrc *self, GstBuffer **outbuf) {
  GstSegDlSrcPrivate *priv = self->priv;
  GstSegDlSrcPrivate::Frame f = priv->ready.front();
  priv->ready.pop_front();
  *outbuf = nullptr;
  if (f.event) {
    // Events go out only once the stream has begun (caps set).
    if (priv->caps_set)
      gst_pad_push_event(GST_BASE_SRC_PAD(self), f.event);
    else
      gst_event_unref(f.event);
    return GST_FLOW_OK;
  }
  if (f.caps && !same_format(priv->out_caps, f.caps)) {
    if (!gst_base_src_set_caps(GST_BASE_SRC(self), f.caps)) {
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr),
                        ("downstream refused %" GST_PTR_FORMAT, f.caps));
      gst_buffer_unref(f.buffer);
      gst_caps_unref(f.caps);
      return GST_FLOW_NOT_NEGOTIATED;
    }
    gst_caps_replace(&priv->out_caps, f.caps);
  }
  if (f.caps) gst_caps_unref(f.caps);
  if (!priv->caps_set) GST_BUFFER_FLAG_SET(f.buffer, GST_BUFFER_FLAG_DISCONT);
  priv->caps_set = true;
  *outbuf = f.buffer;
  return GST_FLOW_OK;
}

void gst_seg_dl_src_reset_timeline(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  free_frames(priv->pending);
  free_frames(priv->ready);
  priv->timeline = segdl::Timeline();
  priv->next_token = 0;
  gst_caps_replace(&priv->in_caps, nullptr);
  priv->codec = CODEC_OTHER;
  priv->out_rate = 0;
  priv->tl_segment = -1;
  priv->last_samples = -1;
  priv->self_contained = false;
  priv->iso_form = false;
  priv->last_segment = -1;
  priv->reject_segment = -1;
  priv->form_known = false;
  if (priv->iso_bytes) g_byte_array_unref(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  priv->iso_segment = -1;
  priv->ogg_form = false;
  priv->granule_end = -1;
  priv->opus_preskip = 0;
  if (priv->tags) gst_tag_list_unref(priv->tags);
  priv->tags = nullptr;
  priv->exact_duration_ns = -1;
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
  segdl::SeekPlan plan = priv->timeline.seek(target, nominal_segments(self));
  GST_INFO_OBJECT(self,
                  "seek to %" GST_TIME_FORMAT ": segment %" G_GINT64_FORMAT
                  " starting at %" GST_TIME_FORMAT,
                  GST_TIME_ARGS(target), plan.segment, GST_TIME_ARGS(plan.start_ns));
  dl->seek(plan.segment);
  priv->last_segment = plan.segment - 1;
  priv->reject_segment = -1;
  priv->form_known = false;
  if (priv->iso_bytes) g_byte_array_unref(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  priv->iso_segment = -1;
  priv->joiner->reset();
  free_frames(priv->pending);
  free_frames(priv->ready);
  if (priv->probe) g_byte_array_unref(priv->probe);
  priv->probe = nullptr;
  priv->probe_segment = -1;
  priv->track_done = false;
  priv->tl_segment = -1;
  priv->last_samples = -1;
  if (priv->vorbis.ready()) priv->vorbis.reset();
  priv->frames_out_valid = false;
  priv->discont = true;
  return TRUE;
}

/* ---- the timeline join's loop --------------------------------------------- */

// The fallback file from its start: drops what was already played. True
// when the frame was dropped; else `samples` is its count.
static bool skip_fallback_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps,
                                int64_t &samples) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (caps && !same_format(priv->in_caps, caps)) {
    end_timeline_segment(self);
    enter_caps(self, caps);
  }
  bool info = false;
  samples = frame_samples(self, frame, &info);
  uint64_t n = priv->fallback_by_frames ? 1 : uint64_t(samples);
  if (info || (priv->fallback_seen + n <= priv->fallback_skip && n > 0)) {
    if (!info) priv->fallback_seen += n;
    gst_buffer_unref(frame);
    return true;
  }
  priv->fallback_skipping = false;
  if (priv->fallback_seen != priv->fallback_skip)
    GST_WARNING_OBJECT(self,
                       "fallback frames do not align: %" G_GUINT64_FORMAT " vs %" G_GUINT64_FORMAT,
                       priv->fallback_seen, priv->fallback_skip);
  return false;
}

// A frame out of the joiner, into the timeline.
static void on_joined_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps,
                            int64_t instance_start) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->fallback_skipping && !GST_BUFFER_FLAG_IS_SET(frame, GST_BUFFER_FLAG_HEADER)) {
    int64_t samples = -1;
    if (skip_fallback_frame(self, frame, caps, samples)) return;
    // The first frame of the fallback file played: a segment of its own.
    enter_frame(self, frame, caps, segdl::kFallbackSegment, samples);
    return;
  }
  if (instance_start == segdl::kFallbackSegment) instance_start = -1;  // handled above
  enter_frame(self, frame, caps, instance_start);
}

// Segment `segment` will give nothing: the frames held back go out, then a
// GAP (in order with them) up to where the next segment begins, with a
// WARNING.
static void place_gap(GstSegDlSrc *self, int64_t segment, const segdl::EngineError &e) {
  GstSegDlSrcPrivate *priv = self->priv;
  end_timeline_segment(self);
  uint64_t start = 0, dur = 0;
  priv->timeline.skip_segment(segment, nominal_segments(self), start, dur);
  post_gap_warning(self, e, dur);
  if (dur > 0) priv->ready.push_back({nullptr, nullptr, gst_event_new_gap(start, dur)});
  priv->frames_out_valid = false;  // a fallback later can no longer count frames
  if (priv->vorbis.ready()) priv->vorbis.reset();
  priv->tl_segment = -1;
  priv->discont = true;
}

// A segment that gives no audio (not a file of the track's form, no audio
// stream, no frame, an empty body): never skipped silently.
// missing-segment=gap leaves a gap with a WARNING; any other policy stops
// with STREAM/DEMUX naming the segment. False when the stream must stop.
static bool bad_segment(GstSegDlSrc *self, int64_t segment, const std::string &why) {
  GstSegDlSrcPrivate *priv = self->priv;
  segdl::MissingSegment policy;
  {
    std::lock_guard<std::mutex> lock(priv->settings_lock);
    policy = priv->settings.missing_segment;
  }
  GST_WARNING_OBJECT(self, "segment %" G_GINT64_FORMAT " gives no audio: %s", segment, why.c_str());
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

// The m4a segment collected whole: read by our own code (no qtdemux, so no
// edit list can make it unplayable), its edit list a trim of the timeline,
// its frames into it. An init of fragments, or a codec we do not read, goes
// to parsebin instead.
static bool flush_iso(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (!priv->iso_bytes) return true;
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
    enter_frame(self, m.frames[i], m.caps, i == 0 ? segment : -1);
  m.frames.clear();  // the timeline's now
  g_bytes_unref(bytes);
  return true;
}

// Segments between the last one seen and `segment` gave no bytes at all.
static bool check_skipped(GstSegDlSrc *self, int64_t segment) {
  GstSegDlSrcPrivate *priv = self->priv;
  for (int64_t k = priv->last_segment + 1; k < segment; k++)
    if (!bad_segment(self, k, "its body is empty")) return false;
  priv->last_segment = segment;
  return true;
}

// The next item from the engine into the joiner: segment bytes (probed at
// each segment's start), the end, a gap or the fallback's first bytes.
static GstFlowReturn feed_next_item(GstSegDlSrc *self, segdl::Downloader *dl) {
  GstSegDlSrcPrivate *priv = self->priv;
  segdl::Downloader::Item item;
  GstFlowReturn ret = next_item(self, dl, item);
  if (ret != GST_FLOW_OK) return ret;
  using K = segdl::Downloader::Item::Kind;
  if (item.kind == K::Eos) {
    std::string error;
    if (!feed_probe(self) || !flush_iso(self)) return GST_FLOW_ERROR;
    int64_t last = priv->joiner->instance_segment();
    if (!priv->joiner->finish(error) && !bad_segment(self, last, error)) return GST_FLOW_ERROR;
    priv->track_done = true;
    return GST_FLOW_OK;
  }
  if (item.kind == K::Gap) {
    // The frames of what came before go out first; the gap follows.
    std::string error;
    if (!feed_probe(self) || !flush_iso(self)) return GST_FLOW_ERROR;
    if (!priv->joiner->finish(error))
      GST_INFO_OBJECT(self, "the missing segment ends: %s", error.c_str());
    if (!check_skipped(self, item.segment)) return GST_FLOW_ERROR;
    priv->gap_segment = item.segment;
    priv->gap_error = item.error;
    return GST_FLOW_OK;
  }
  if (item.segment == segdl::kFallbackSegment && item.segment_offset == 0) {
    // The fallback URL takes over: finish what the segments gave (their
    // frames come out first), then start the file.
    std::string error;
    if (!feed_probe(self)) {
      g_bytes_unref(item.bytes);
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
    priv->fallback_first = item.bytes;
    priv->discont = true;
    return GST_FLOW_OK;
  }
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
    priv->probe = g_byte_array_new();
    priv->probe_segment = item.segment;
  }
  if (priv->probe) {
    gsize size = 0;
    const guint8 *data = static_cast<const guint8 *>(g_bytes_get_data(item.bytes, &size));
    g_byte_array_append(priv->probe, data, guint(size));
    g_bytes_unref(item.bytes);
    if (priv->probe->len >= kHeaderProbeBytes && !feed_probe(self)) return GST_FLOW_ERROR;
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

// Segment bytes into the joiner, parsed frames through the timeline, out in
// order.
static GstFlowReturn create_timeline(GstSegDlSrc *self, segdl::Downloader *dl, GstBuffer **outbuf) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->caps_set && priv->tags) {
    // Segment 0's container tags: after the first buffer, so after the
    // segment event basesrc sends before it.
    GstTagList *tags = priv->tags;
    priv->tags = nullptr;
    gst_pad_push_event(GST_BASE_SRC_PAD(self), gst_event_new_tag(tags));
  }
  for (;;) {
    if (!priv->ready.empty()) {
      GstFlowReturn ret = take_ready(self, outbuf);
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
    GstCaps *caps = nullptr;
    int64_t instance_start = -1;
    if (GstBuffer *frame = priv->joiner->pop(&caps, &instance_start)) {
      if (GstTagList *tags = priv->joiner->take_tags()) {
        if (priv->tags) gst_tag_list_unref(priv->tags);
        priv->tags = tags;
      }
      on_joined_frame(self, frame, caps, instance_start);
      continue;
    }
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
      end_timeline_segment(self);
      if (!priv->ready.empty()) continue;
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
      if (!ok) {
        demux_error(self, segdl::kFallbackSegment, error);
        return GST_FLOW_ERROR;
      }
      continue;
    }
    if (priv->track_done) {
      end_timeline_segment(self);
      if (!priv->ready.empty()) continue;
      if (!priv->caps_set) {
        GST_ELEMENT_ERROR(self, STREAM, DEMUX, ("The track has no audio."),
                          ("no frame came out of %" G_GINT64_FORMAT " demuxer instance(s)",
                           priv->joiner->instance_count()));
        return GST_FLOW_ERROR;
      }
      GST_INFO_OBJECT(self, "end of track at %" GST_TIME_FORMAT,
                      GST_TIME_ARGS(priv->timeline.position_ns()));
      // The length is now counted, not estimated.
      priv->exact_duration_ns = int64_t(priv->timeline.position_ns());
      update_duration(self, dl);
      post_final_stats(self, dl);
      return GST_FLOW_EOS;
    }
    GstFlowReturn ret = feed_next_item(self, dl);
    if (ret != GST_FLOW_OK) return ret;
  }
}

GstFlowReturn gst_seg_dl_src_create(GstPushSrc *psrc, GstBuffer **outbuf) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(psrc);
  segdl::Downloader *dl = self->priv->downloader.get();  // stable while streaming
  if (!dl) return GST_FLOW_FLUSHING;
  if (self->priv->join == JOIN_BYTES) return create_bytes(self, dl, outbuf);
  return create_timeline(self, dl, outbuf);
}
