// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's join=timeline, part two: the parsed frames onto
 * segdl::Timeline. Each frame's samples are counted from the codec, the
 * container's trims and the demuxer's clipping go with it, the timeline's
 * decisions stamp it, and it leaves in order (see docs/design.md,
 * "Timeline"). Streaming thread, or do_seek() under the stream lock.
 */
#include "gstsegdlsrc-stream.h"

#include <gst/audio/audio.h>

#include "segdl/codec.h"

#define GST_CAT_DEFAULT gst_seg_dl_src_debug

// Two caps describe the same audio format if media type, rate, channels and
// MPEG version/layer agree: codec_data and stream headers that every segment
// repeats do not make a new format. The fields are looked up by quark and
// ints compared directly (by name it was 21 % of all the instructions of
// segdlsrc ! fakesink, docs/benchmarks.md).
static bool same_format(GstCaps *a, GstCaps *b) {
  if (!a || !b || gst_caps_is_empty(a) || gst_caps_is_empty(b)) return false;
  if (a == b) return true;  // every frame of a parser carries the same caps
  const GstStructure *sa = gst_caps_get_structure(a, 0);
  const GstStructure *sb = gst_caps_get_structure(b, 0);
  if (gst_structure_get_name_id(sa) != gst_structure_get_name_id(sb)) return false;
  static const GQuark fields[] = {
      g_quark_from_static_string("rate"), g_quark_from_static_string("channels"),
      g_quark_from_static_string("mpegversion"), g_quark_from_static_string("layer")};
  for (GQuark field : fields) {
    const GValue *va = gst_structure_id_get_value(sa, field);
    const GValue *vb = gst_structure_id_get_value(sb, field);
    if (!va && !vb) continue;
    if (!va || !vb) return false;
    if (G_VALUE_HOLDS_INT(va) && G_VALUE_HOLDS_INT(vb)) {
      if (g_value_get_int(va) != g_value_get_int(vb)) return false;
    } else if (gst_value_compare(va, vb) != GST_VALUE_EQUAL) {
      return false;
    }
  }
  return true;
}

// same_format(format, caps), asked once per caps object: `*like` holds a
// ref to the last caps found of `format`'s format (the ref keeps its
// address from coming back as other caps). Every frame carries caps (the
// m4a reader's those of its segment, a parser's its own), so the fields are
// compared once a segment, not twice a frame. Whoever changes `format`
// clears `*like`.
static bool same_format_as(GstCaps *format, GstCaps **like, GstCaps *caps) {
  if (format && caps == *like) return true;
  if (!same_format(format, caps)) return false;
  gst_caps_replace(like, caps);
  return true;
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
// and the pre-roll a decoder needs before a seek target, and how it goes
// (segdl::PrerollMode: timed for the decoders GStreamer plugs after us
// unless a parser in front of them would drop it, see docs/design.md).
static void enter_caps(GstSegDlSrc *self, GstCaps *caps) {
  GstSegDlSrcPrivate *priv = self->priv;
  const GstStructure *st = gst_caps_get_structure(caps, 0);
  int rate = 0;
  gst_structure_get_int(st, "rate", &rate);
  int version = 0;
  priv->vorbis = segdl::VorbisBlocks();
  priv->codec = CODEC_OTHER;
  uint64_t preroll = 0;
  segdl::PrerollMode mode = segdl::PrerollMode::Timed;
  if (gst_structure_has_name(st, "audio/x-opus")) {
    priv->codec = CODEC_OPUS;
    rate = 48000;
    preroll = 24000;  // 0.5 s: see docs/design.md (80 ms, RFC 7845, is not exact)
    mode = segdl::PrerollMode::Clipped;
    priv->opus_preskip = opus_preskip(st);
  } else if (gst_structure_has_name(st, "audio/x-vorbis")) {
    priv->codec = CODEC_VORBIS;
    init_vorbis(self, st);
    preroll = 4096;  // the previous packet's overlap, long blocks included
  } else if (gst_structure_has_name(st, "audio/mpeg") &&
             gst_structure_get_int(st, "mpegversion", &version)) {
    if (version == 1) {
      priv->codec = CODEC_MP3;
      // mpegaudioparse's lead-in on seeks: the bit reservoir reaches up
      // to 511 bytes back (9 frames at the lowest MPEG-1 rates), and the
      // frame before the target must decode whole for its overlap.
      preroll = 10 * 1152;
    } else {
      priv->codec = CODEC_AAC;
      priv->aac_frame = aac_frame_samples(st, rate);
      preroll = uint64_t(priv->aac_frame);  // the previous frame's overlap
      mode = segdl::PrerollMode::Clipped;   // aacparse drops frames before the segment
    }
  }
  priv->out_rate = rate > 0 ? rate : 0;
  priv->last_samples = -1;
  priv->timeline.set_rate(priv->out_rate);
  priv->timeline.set_preroll(preroll, mode);
  gst_caps_replace(&priv->in_caps, caps);
  gst_caps_replace(&priv->in_caps_like, nullptr);
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

void gst_seg_dl_src_free_frames(std::deque<GstSegDlSrcPrivate::Frame> &q) {
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
    uint64_t clip_end = d.clip_end;
    // An MP3 frame with nothing presented (a trim longer than a frame, e.g.
    // LAME's 1105 samples over 576-sample MPEG-2 frames): GStreamer 1.22.0's
    // mpg123audiodec takes a frame as wholly clipped only when the clipping
    // is longer than it; exactly as long, it asks its base class for a
    // 0-byte buffer (a CRITICAL). One more sample says the same, nothing
    // presented, and the decoder still gets the frame (its bit reservoir).
    if (priv->codec == CODEC_MP3 && d.samples > 0 && d.clip_start + clip_end == d.samples)
      clip_end++;
    if (d.clip_start || clip_end)
      gst_buffer_add_audio_clipping_meta(b, GST_FORMAT_DEFAULT, d.clip_start, clip_end);
    // Pre-roll of a seek: before the segment's start, decoded and clipped
    // away by the decoder (GStreamer's meaning of the flag).
    if (d.preroll)
      GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DECODE_ONLY);
    else
      GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DECODE_ONLY);
    if (d.discont || priv->discont)
      GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
    else
      GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DISCONT);
    priv->discont = false;
    f.buffer = b;
    priv->ready.push_back(f);
  }
}

void gst_seg_dl_src_end_timeline_segment(GstSegDlSrc *self) {
  segdl::Timeline::Decisions ds;
  self->priv->timeline.end_segment(ds);
  apply_decisions(self, ds);
}

// Ogg: oggdemux gives each packet's granule (OFFSET_END); demuxing in push
// mode it applies no end trim, so the granules' is applied here, as the
// packet's clipping (Opus and Vorbis, segdl::OggGranules).
static uint64_t ogg_end_trim(GstSegDlSrc *self, GstBuffer *frame, uint64_t samples) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (!priv->ogg_form) return 0;
  bool valid = GST_BUFFER_OFFSET_END_IS_VALID(frame) && GST_BUFFER_OFFSET_END(frame) < G_MAXINT64;
  uint64_t trim =
      priv->granules.packet(samples, valid ? int64_t(GST_BUFFER_OFFSET_END(frame)) : -1);
  if (trim > 0)
    GST_LOG_OBJECT(self,
                   "segment %" G_GINT64_FORMAT ": granule %" G_GUINT64_FORMAT
                   " leaves out %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " samples",
                   priv->tl_segment, GST_BUFFER_OFFSET_END(frame), trim, samples);
  return trim;
}

// MP3: the LAME delay and padding of the segment's information frame, as
// its trims (segdl::Mp3Gapless says which apply), set before its first
// audio frame goes in.
static void mp3_gapless(GstSegDlSrc *self, GstBuffer *frame, bool info) {
  GstSegDlSrcPrivate *priv = self->priv;
  GstMapInfo map;
  if (priv->codec != CODEC_MP3 || !gst_buffer_map(frame, &map, GST_MAP_READ)) return;
  segdl::MpegAudioHeader h;
  segdl::MpegInfoFrame fi;
  segdl::Mp3Trim t;
  bool ok = segdl::parse_mpeg_audio_header(map.data, map.size, h);
  if (ok && info) {
    if (segdl::parse_mpeg_info_frame(map.data, map.size, h, fi))
      priv->mp3_gapless.info_frame(priv->tl_segment, fi);
  } else if (ok && priv->mp3_gapless.audio_frame(
                       priv->tl_segment, segdl::mp3_main_data_begin(map.data, map.size, h), t)) {
    segdl::SegmentTrim trim;
    trim.start = t.start;
    trim.end = t.end;
    priv->timeline.set_trim(priv->tl_segment, trim);
    GST_DEBUG_OBJECT(
        self, "segment %" G_GINT64_FORMAT ": LAME trims %" G_GUINT64_FORMAT " + %" G_GUINT64_FORMAT,
        priv->tl_segment, t.start, t.end);
  }
  gst_buffer_unmap(frame, &map);
}

// True if `caps` carry the codec's headers (streamheader: oggdemux's Opus
// and Vorbis caps, matroskademux's, flacparse's).
static bool caps_carry_headers(GstCaps *caps) {
  if (!caps || gst_caps_is_empty(caps)) return false;
  const GValue *v = gst_structure_get_value(gst_caps_get_structure(caps, 0), "streamheader");
  return v && GST_VALUE_HOLDS_ARRAY(v) && gst_value_array_get_size(v) > 0;
}

// Codec headers that the caps carry are not output: every muxer and decoder
// reads them there (matroskamux's CodecPrivate, mp4mux's dOps, oggmux's
// header pages, opusdec, vorbisdec), and as buffers they would be muxed as
// audio (an OpusHead packet in a Matroska or MP4 track). The WebM form has
// none in-band, the Ogg form now neither: one stream whatever the form
// (but Vorbis's first three, below).
// Headers the caps lack go straight out, with no time of their own.
void gst_seg_dl_src_enter_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps, int64_t segment,
                                int64_t known_samples) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (caps && !same_format_as(priv->in_caps, &priv->in_caps_like, caps)) {
    gst_seg_dl_src_end_timeline_segment(self);  // the frames before go out with their caps
    if (priv->in_caps) GST_INFO_OBJECT(self, "format changes to %" GST_PTR_FORMAT, caps);
    enter_caps(self, caps);
  }
  if (segment >= 0) {
    priv->tl_segment = segment;
    priv->granules.reset();
    if (priv->vorbis.ready()) priv->vorbis.begin_segment(segment);
    if (segment == 0 && priv->codec == CODEC_OPUS && priv->opus_preskip > 0) {
      // The track starts with the encoder's pre-skip (demuxers mark it on
      // the first frame, or not: oggdemux in push mode does not).
      segdl::SegmentTrim trim;
      trim.start = priv->opus_preskip;
      priv->timeline.set_trim(0, trim);
    }
  }
  if (GST_BUFFER_FLAG_IS_SET(frame, GST_BUFFER_FLAG_HEADER)) {
    // Vorbis: the headers before the first packet go out too. oggmux reads
    // a packet's length from its mode, which only the setup header in a
    // buffer tells it (from the caps it takes the identification header
    // alone): without it every packet counts as a short block and the page
    // granules lag. matroskamux skips as many HEADER buffers as its
    // streamheader has; vorbisparse needs them. Later segments' repeats
    // are not output.
    bool lead = priv->codec == CODEC_VORBIS && priv->last_samples < 0;
    if (!lead && caps_carry_headers(caps ? caps : priv->in_caps)) {
      GST_LOG_OBJECT(self, "a codec header the caps carry: not output");
      gst_buffer_unref(frame);
      return;
    }
    gst_seg_dl_src_end_timeline_segment(self);
    frame = gst_buffer_make_writable(frame);
    GST_BUFFER_PTS(frame) = GST_BUFFER_DTS(frame) = priv->timeline.position_ns();
    GST_BUFFER_DURATION(frame) = GST_CLOCK_TIME_NONE;
    priv->ready.push_back({frame, caps ? gst_caps_ref(caps) : nullptr});
    return;
  }

  bool info = false;
  int64_t samples = known_samples >= 0 ? known_samples : frame_samples(self, frame, &info);
  mp3_gapless(self, frame, info);
  if (info) {
    GST_DEBUG_OBJECT(self, "an MP3 information frame in segment %" G_GINT64_FORMAT ": not audio",
                     priv->tl_segment);
    gst_buffer_unref(frame);
    return;
  }
  uint64_t clip_start = 0, clip_end = 0;
  take_clipping(self, frame, clip_start, clip_end);
  clip_end = std::max<uint64_t>(clip_end, ogg_end_trim(self, frame, uint64_t(samples)));
  priv->pending.push_back({frame, caps ? gst_caps_ref(caps) : nullptr});
  segdl::Timeline::Decisions ds;
  priv->timeline.push(priv->tl_segment, uint64_t(samples), priv->next_token++, ds, clip_start,
                      clip_end);
  apply_decisions(self, ds);
}

GstFlowReturn gst_seg_dl_src_take_ready(GstSegDlSrc *self, GstBuffer **outbuf) {
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
  if (f.caps && !same_format_as(priv->out_caps, &priv->out_caps_like, f.caps)) {
    if (!gst_base_src_set_caps(GST_BASE_SRC(self), f.caps)) {
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr),
                        ("downstream refused %" GST_PTR_FORMAT, f.caps));
      gst_buffer_unref(f.buffer);
      gst_caps_unref(f.caps);
      return GST_FLOW_NOT_NEGOTIATED;
    }
    gst_caps_replace(&priv->out_caps, f.caps);
    gst_caps_replace(&priv->out_caps_like, nullptr);
  }
  if (f.caps) gst_caps_unref(f.caps);
  if (!priv->caps_set) GST_BUFFER_FLAG_SET(f.buffer, GST_BUFFER_FLAG_DISCONT);
  priv->caps_set = true;
  // What a fallback skips: the frames that left, not those that went in
  // (a frame the timeline or a flush dropped was never heard).
  if (!GST_BUFFER_FLAG_IS_SET(f.buffer, GST_BUFFER_FLAG_HEADER)) priv->frames_out++;
  *outbuf = f.buffer;
  return GST_FLOW_OK;
}

void gst_seg_dl_src_reset_timeline(GstSegDlSrc *self) {
  GstSegDlSrcPrivate *priv = self->priv;
  gst_seg_dl_src_free_frames(priv->pending);
  gst_seg_dl_src_free_frames(priv->ready);
  priv->timeline = segdl::Timeline();
  priv->next_token = 0;
  gst_caps_replace(&priv->in_caps, nullptr);
  gst_caps_replace(&priv->in_caps_like, nullptr);
  gst_caps_replace(&priv->out_caps_like, nullptr);  // stop() clears out_caps, then calls this
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
  gst_seg_dl_src_mp4_reset(self);
  if (priv->fmp4_init) g_bytes_unref(priv->fmp4_init);
  priv->fmp4_init = nullptr;
  priv->ogg_form = false;
  priv->granules.reset();
  priv->mp3_gapless.reset();
  priv->opus_preskip = 0;
  if (priv->tags) gst_tag_list_unref(priv->tags);
  priv->tags = nullptr;
  priv->exact_duration_ns = -1;
}

// The fallback file from its start: drops what was already played. True
// when the frame was dropped; else `samples` is its count.
static bool skip_fallback_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps,
                                int64_t &samples) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (caps && !same_format_as(priv->in_caps, &priv->in_caps_like, caps)) {
    gst_seg_dl_src_end_timeline_segment(self);
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

void gst_seg_dl_src_on_joined_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps,
                                    int64_t instance_start) {
  GstSegDlSrcPrivate *priv = self->priv;
  if (priv->fallback_skipping && !GST_BUFFER_FLAG_IS_SET(frame, GST_BUFFER_FLAG_HEADER)) {
    int64_t samples = -1;
    if (skip_fallback_frame(self, frame, caps, samples)) return;
    // The first frame of the fallback file played: a segment of its own.
    gst_seg_dl_src_enter_frame(self, frame, caps, segdl::kFallbackSegment, samples);
    return;
  }
  if (instance_start == segdl::kFallbackSegment) instance_start = -1;  // handled above
  gst_seg_dl_src_enter_frame(self, frame, caps, instance_start);
}
