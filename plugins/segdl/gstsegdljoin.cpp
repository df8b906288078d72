// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the timeline join (see gstsegdljoin.h). */
#include "gstsegdljoin.h"

#include <gst/audio/audio.h>

#include "segdl/codec.h"
#include "segdl/mp4.h"

#include <cstring>

GST_DEBUG_CATEGORY_EXTERN(gst_seg_dl_src_debug);
#define GST_CAT_DEFAULT gst_seg_dl_src_debug

namespace segdl {

bool starts_container(const guint8 *d, gsize n, const char **name) {
  const char *found = nullptr;
  if (n >= 12 && memcmp(d + 4, "ftyp", 4) == 0) {
    found = "ISO BMFF";  // m4a/mp4 file (fragments continue with moof/styp instead)
  } else if (n >= 4 && d[0] == 0x1a && d[1] == 0x45 && d[2] == 0xdf && d[3] == 0xa3) {
    found = "Matroska/WebM";
  } else if (n >= 6 && memcmp(d, "OggS", 4) == 0 && (d[5] & 0x02)) {
    found = "Ogg";  // beginning-of-stream page: a new logical stream with its headers
  } else if (n >= 10 && memcmp(d, "ID3", 3) == 0) {
    found = "ID3-tagged";
  }
  if (name) *name = found;
  return found != nullptr;
}

FrameJoiner::FrameJoiner(GstElement *owner) : owner_(owner) {}

FrameJoiner::~FrameJoiner() {
  reset();
}

// True for AAC caps that are not raw (ADTS, LOAS, ADIF, or no format).
static bool aac_not_raw(const GstStructure *st) {
  int version = 0;
  if (!gst_structure_has_name(st, "audio/mpeg") ||
      (gst_structure_get_int(st, "mpegversion", &version) && version == 1))
    return false;
  return g_strcmp0(gst_structure_get_string(st, "stream-format"), "raw") != 0;
}

// parsebin asks before it plugs an element. ADTS (a byte stream's, or a
// transport stream's) is exposed as it is, not parsed there: on_pad_added()
// gives it to the one aacparse that outputs raw AAC. Left to parsebin, its
// aacparse settles on ADTS before the joiner is linked (it asks its
// unlinked pad what downstream takes; parsebin's autoplug-query is not
// asked then), and a second one converted every frame again. The values
// are parsebin's GstAutoplugSelectResult (in no installed header).
gint FrameJoiner::on_autoplug_select(GstElement *, GstPad *, GstCaps *caps,
                                     GstElementFactory *factory, gpointer) noexcept {
  constexpr gint kTry = 0, kExpose = 1;
  if (!caps || gst_caps_get_size(caps) == 0 ||
      g_strcmp0(gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(factory)), "aacparse") != 0)
    return kTry;
  const GstStructure *st = gst_caps_get_structure(caps, 0);
  return aac_not_raw(st) && g_strcmp0(gst_structure_get_string(st, "stream-format"), "adts") == 0
             ? kExpose
             : kTry;
}

void FrameJoiner::on_pad_added(GstElement *, GstPad *pad, gpointer data) noexcept {
  auto *self = static_cast<FrameJoiner *>(data);
  if (self->linked_) return;  // one audio stream: the first one
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  bool audio = false;
  if (caps && !gst_caps_is_empty(caps))
    audio = g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "audio/");
  const bool convert = audio && aac_not_raw(gst_caps_get_structure(caps, 0));
  if (caps) gst_caps_unref(caps);
  if (!audio) return;
  GstPad *target = self->sink_;
  GstPad *conv_sink = nullptr;
  if (convert) {
    // AAC leaves as raw frames with codec_data (what muxers take): ADTS
    // comes unparsed (on_autoplug_select()), and aacparse, linked to a
    // raw-only capsfilter from the start, parses and converts it, once.
    // Raw AAC from a demuxer was parsed by parsebin and is linked as it is.
    GstElement *conv = gst_element_factory_make("aacparse", nullptr);
    GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
    if (conv && filter) {
      GstCaps *raw = gst_caps_from_string("audio/mpeg, stream-format=(string)raw");
      g_object_set(filter, "caps", raw, nullptr);
      gst_caps_unref(raw);
      gst_bin_add_many(GST_BIN(self->bin_), conv, filter, nullptr);
      gst_element_link(conv, filter);
      GstPad *filter_src = gst_element_get_static_pad(filter, "src");
      gst_pad_link(filter_src, self->sink_);
      gst_object_unref(filter_src);
      gst_element_sync_state_with_parent(filter);
      gst_element_sync_state_with_parent(conv);
      conv_sink = gst_element_get_static_pad(conv, "sink");
      target = conv_sink;
    } else {
      if (conv) gst_object_unref(conv);
      if (filter) gst_object_unref(filter);
    }
  }
  if (gst_pad_link(pad, target) == GST_PAD_LINK_OK) self->linked_ = true;
  if (conv_sink) gst_object_unref(conv_sink);
}

GstFlowReturn FrameJoiner::on_chain(GstPad *pad, GstObject *, GstBuffer *buf) noexcept {
  auto *self = static_cast<FrameJoiner *>(gst_pad_get_element_private(pad));
  if (self->instance_segment_ > 0) {
    // What every file repeats applies once, at the track start (segment 0):
    // in-band codec headers (Vorbis, Opus from Ogg), and the codec delay
    // (Opus pre-skip) that demuxers mark as start clipping on a file's first
    // frame.
    if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_HEADER)) {
      gst_buffer_unref(buf);
      return GST_FLOW_OK;
    }
    GstAudioClippingMeta *clip = gst_buffer_get_audio_clipping_meta(buf);
    if (clip && clip->start > 0) {
      buf = gst_buffer_make_writable(buf);
      clip = gst_buffer_get_audio_clipping_meta(buf);
      // The demuxer shortened the frame by the clipped part: give it back.
      GstClockTime clipped = GST_CLOCK_TIME_NONE;
      int rate = 0;
      if (clip->format == GST_FORMAT_TIME)
        clipped = clip->start;
      else if (clip->format == GST_FORMAT_DEFAULT && self->caps_ &&
               gst_structure_get_int(gst_caps_get_structure(self->caps_, 0), "rate", &rate) &&
               rate > 0)
        clipped = gst_util_uint64_scale_round(clip->start, GST_SECOND, rate);
      if (GST_BUFFER_DURATION_IS_VALID(buf) && GST_CLOCK_TIME_IS_VALID(clipped))
        GST_BUFFER_DURATION(buf) += clipped;
      if (clip->end > 0)
        clip->start = 0;
      else
        gst_buffer_remove_meta(buf, reinterpret_cast<GstMeta *>(clip));
    }
  }
  if (!GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_HEADER)) self->instance_frames_++;
  Frame f;
  f.buffer = buf;
  f.caps = self->caps_ ? gst_caps_ref(self->caps_) : nullptr;
  f.instance_start = self->instance_first_ ? self->instance_segment_ : -1;
  self->instance_first_ = false;
  self->frames_.push_back(f);
  return GST_FLOW_OK;
}

gboolean FrameJoiner::on_event(GstPad *pad, GstObject *, GstEvent *event) noexcept {
  auto *self = static_cast<FrameJoiner *>(gst_pad_get_element_private(pad));
  if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
    GstCaps *caps = nullptr;
    gst_event_parse_caps(event, &caps);
    gst_caps_replace(&self->caps_, caps);
  } else if (GST_EVENT_TYPE(event) == GST_EVENT_TAG && self->instance_segment_ == 0) {
    GstTagList *tags = nullptr;
    gst_event_parse_tag(event, &tags);
    if (gst_tag_list_get_scope(tags) == GST_TAG_SCOPE_GLOBAL) {
      if (!self->tags_) self->tags_ = gst_tag_list_new_empty();
      gst_tag_list_insert(self->tags_, tags, GST_TAG_MERGE_REPLACE);
      gst_tag_list_set_scope(self->tags_, GST_TAG_SCOPE_GLOBAL);
    }
  }
  gst_event_unref(event);
  return TRUE;
}

// Our sink takes whatever the parser settled on.
gboolean FrameJoiner::on_query(GstPad *pad, GstObject *parent, GstQuery *query) noexcept {
  if (GST_QUERY_TYPE(query) == GST_QUERY_ACCEPT_CAPS) {
    gst_query_set_accept_caps_result(query, TRUE);
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

void FrameJoiner::new_instance(int64_t first_segment) {
  std::string ignored;
  if (bin_) finish(ignored);
  instances_++;
  instance_segment_ = first_segment;
  instance_first_ = true;
  instance_frames_ = 0;
  linked_ = false;
  accepting_ = true;
  gst_caps_replace(&caps_, nullptr);

  bin_ = gst_bin_new(nullptr);
  gst_object_ref_sink(bin_);
  parsebin_ = gst_element_factory_make("parsebin", nullptr);
  gst_bin_add(GST_BIN(bin_), parsebin_);
  bus_ = gst_bus_new();
  gst_element_set_bus(bin_, bus_);
  g_signal_connect(parsebin_, "pad-added", G_CALLBACK(on_pad_added), this);
  g_signal_connect(parsebin_, "autoplug-select", G_CALLBACK(on_autoplug_select), nullptr);

  sink_ = gst_pad_new("joinsink", GST_PAD_SINK);
  gst_pad_set_element_private(sink_, this);
  gst_pad_set_chain_function(sink_, on_chain);
  gst_pad_set_event_function(sink_, on_event);
  gst_pad_set_query_function(sink_, on_query);
  gst_pad_set_active(sink_, TRUE);

  src_ = gst_pad_new("joinsrc", GST_PAD_SRC);
  gst_pad_set_active(src_, TRUE);
  GstPad *pbsink = gst_element_get_static_pad(parsebin_, "sink");
  gst_pad_link(src_, pbsink);
  gst_object_unref(pbsink);
  gst_element_set_state(bin_, GST_STATE_PAUSED);

  gchar *sid = g_strdup_printf("segdl/%" G_GINT64_FORMAT, instances_);
  gst_pad_push_event(src_, gst_event_new_stream_start(sid));
  g_free(sid);
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_BYTES);
  gst_pad_push_event(src_, gst_event_new_segment(&seg));
  GST_DEBUG_OBJECT(owner_, "demuxer instance %" G_GINT64_FORMAT " from segment %" G_GINT64_FORMAT,
                   instances_, first_segment);
}

bool FrameJoiner::check_bus(std::string &error) {
  bool ok = true;
  while (GstMessage *msg = gst_bus_pop(bus_)) {
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR && ok) {
      GError *err = nullptr;
      gchar *dbg = nullptr;
      gst_message_parse_error(msg, &err, &dbg);
      error = std::string(err->message) + (dbg ? std::string(" (") + dbg + ")" : "");
      g_error_free(err);
      g_free(dbg);
      ok = false;
    }
    gst_message_unref(msg);
  }
  return ok;
}

bool FrameJoiner::push(GBytes *bytes, std::string &error) {
  if (!bin_) new_instance(-1);
  if (!accepting_) return true;  // the demuxer has all it wants of this file
  GstFlowReturn ret = gst_pad_push(src_, gst_buffer_new_wrapped_bytes(bytes));  // refs `bytes`
  if (!check_bus(error)) return false;
  switch (ret) {
    case GST_FLOW_OK:
    case GST_FLOW_NOT_LINKED:  // a stream we do not use
      return true;
    case GST_FLOW_EOS:
      accepting_ = false;
      return true;
    default:
      error = std::string("the demuxer refused the data: ") + gst_flow_get_name(ret);
      return false;
  }
}

bool FrameJoiner::finish(std::string &error) {
  if (!bin_) return true;
  gst_pad_push_event(src_, gst_event_new_eos());
  bool ok = check_bus(error);
  if (ok && !linked_) {
    error = "no audio stream found";
    ok = false;
  } else if (ok && instance_frames_ == 0) {
    error = "its audio stream has no frame";
    ok = false;
  }
  teardown();
  return ok;
}

void FrameJoiner::teardown() {
  if (!bin_) return;
  gst_element_set_state(bin_, GST_STATE_NULL);
  gst_element_set_bus(bin_, nullptr);
  gst_object_unref(bus_);
  bus_ = nullptr;
  gst_pad_set_active(src_, FALSE);
  gst_pad_set_active(sink_, FALSE);
  gst_object_unref(src_);
  gst_object_unref(sink_);
  src_ = sink_ = nullptr;
  gst_object_unref(bin_);
  bin_ = parsebin_ = nullptr;
  gst_caps_replace(&caps_, nullptr);
}

GstBuffer *FrameJoiner::pop(GstCaps **caps, int64_t *instance_start) {
  if (frames_.empty()) return nullptr;
  Frame f = frames_.front();
  frames_.pop_front();
  gst_caps_replace(&popped_caps_, f.caps);
  if (f.caps) gst_caps_unref(f.caps);
  if (caps) *caps = popped_caps_;
  if (instance_start) *instance_start = f.instance_start;
  return f.buffer;
}

GstTagList *FrameJoiner::take_tags() {
  GstTagList *t = tags_;
  tags_ = nullptr;
  return t;
}

void FrameJoiner::reset() {
  if (tags_) gst_tag_list_unref(tags_);
  tags_ = nullptr;
  teardown();
  for (Frame &f : frames_) {
    gst_buffer_unref(f.buffer);
    if (f.caps) gst_caps_unref(f.caps);
  }
  frames_.clear();
  gst_caps_replace(&popped_caps_, nullptr);
  instance_segment_ = -1;
}

}  // namespace segdl

/* ---- m4a segments read by our own code ----------------------------------- */

namespace segdl {

Mp4Segment::~Mp4Segment() {
  for (GstBuffer *b : frames) gst_buffer_unref(b);
  if (caps) gst_caps_unref(caps);
}

// Caps for the track's codec (AAC or MP3), else null.
static GstCaps *mp4_track_caps(const Mp4Track &t, int &rate) {
  bool aac = t.sample_entry == fourcc("mp4a") &&
             (t.object_type_indication == 0x40 || t.object_type_indication == 0x66 ||
              t.object_type_indication == 0x67 || t.object_type_indication == 0x68);
  bool mp3 = (t.sample_entry == fourcc("mp4a") &&
              (t.object_type_indication == 0x6b || t.object_type_indication == 0x69)) ||
             t.sample_entry == fourcc(".mp3");
  if (aac) {
    AacConfig cfg;
    if (t.codec_data.empty() || !parse_aac_config(t.codec_data.data(), t.codec_data.size(), cfg))
      return nullptr;
    rate = int(cfg.sample_rate);
    int channels = cfg.channels > 0 ? cfg.channels : t.channels;
    GstBuffer *cd = gst_buffer_new_memdup(t.codec_data.data(), t.codec_data.size());
    GstCaps *caps = gst_caps_new_simple("audio/mpeg", "mpegversion", G_TYPE_INT, 4, "stream-format",
                                        G_TYPE_STRING, "raw", "framed", G_TYPE_BOOLEAN, TRUE,
                                        "rate", G_TYPE_INT, rate, "channels", G_TYPE_INT, channels,
                                        "codec_data", GST_TYPE_BUFFER, cd, nullptr);
    gst_buffer_unref(cd);
    return caps;
  }
  if (mp3) {
    rate = int(t.entry_sample_rate);
    return gst_caps_new_simple("audio/mpeg", "mpegversion", G_TYPE_INT, 1, "layer", G_TYPE_INT, 3,
                               "parsed", G_TYPE_BOOLEAN, TRUE, "rate", G_TYPE_INT, rate, "channels",
                               G_TYPE_INT, t.channels, nullptr);
  }
  return nullptr;
}

Mp4Read mp4_segment_setup(const Mp4Track &t, const Mp4Presentation &pres, Mp4Segment &out,
                          std::string &error) {
  int rate = 0;
  out.caps = mp4_track_caps(t, rate);
  if (!out.caps) return Mp4Read::OtherCodec;
  if (rate <= 0 || pres.timescale == 0) {
    error = "no sample rate";
    return Mp4Read::Error;
  }
  out.rate = rate;
  auto to_samples = [&](int64_t ticks) {
    return int64_t(gst_util_uint64_scale_round(guint64(ticks), guint64(rate), pres.timescale));
  };
  if (pres.has_edits) {
    out.trim_start = to_samples(pres.start_trim);
    out.trim_length = to_samples(pres.duration);
  }
  if (t.samples.empty()) {
    error = "its audio track has no sample";
    return Mp4Read::Error;
  }
  return Mp4Read::Ok;
}

Mp4Read read_mp4_segment(GBytes *bytes, Mp4Segment &out, std::string &error) {
  gsize size = 0;
  const auto *data = static_cast<const uint8_t *>(g_bytes_get_data(bytes, &size));
  Mp4File file;
  if (!parse_mp4(data, size, file, &error)) return Mp4Read::Error;
  if (file.layout.fragmented) return Mp4Read::Fragmented;
  if (file.audio_track < 0) {
    error = "no audio track";
    return Mp4Read::Error;
  }
  const Mp4Track &t = file.tracks[size_t(file.audio_track)];
  Mp4Presentation pres;
  if (!mp4_presentation(file, t, data, size, pres, &error)) return Mp4Read::Error;
  if (!pres.consistent) {
    error = pres.inconsistency;
    return Mp4Read::Error;
  }
  Mp4Read r = mp4_segment_setup(t, pres, out, error);
  if (r != Mp4Read::Ok) return r;
  for (const Mp4Sample &s : t.samples) {
    GBytes *part = g_bytes_new_from_bytes(bytes, gsize(s.offset), s.size);  // no copy
    out.frames.push_back(gst_buffer_new_wrapped_bytes(part));
    g_bytes_unref(part);
  }
  return Mp4Read::Ok;
}

}  // namespace segdl
