// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — self-contained segment fixtures (see segmenter.h).
 *
 * Three kinds of short pipelines, each run to EOS and waited for (bounded):
 *  - encode: the melody PCM → encoder → parser → appsink, collected as
 *    packets once per codec;
 *  - mux: appsrc with the codec caps and a range of packets → muxer, whose
 *    output is written into memory by a probe that behaves like filesink
 *    (it honours the muxer's byte segments, i.e. its seeks back to rewrite
 *    headers), so the files are the ones a muxer writes to disk;
 *  - read: appsrc with a whole file → parsebin or decodebin → appsink.
 * Fragmented MP4 is split by walking its top-level ISO boxes here.
 */
#include "common/segmenter.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/audio/audio.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace segdl::media {

namespace {

constexpr int kMelodyRate = 44100;  // melody_pcm()
constexpr int kMelodyChannels = 2;
constexpr size_t kPcmChunkFrames = 4096;
constexpr guint32 kRandomSeed = 0x5e6d1;  // reseeds g_random before every mux
constexpr GstClockTime kMinPipelineTimeout = 30 * GST_SECOND;
constexpr uint64_t kCutMarginNs = 100 * GST_MSECOND;
constexpr guint kFragmentMs = 500;

// ---- small RAII helpers for GStreamer refs --------------------------------

struct ObjectUnref {
  void operator()(gpointer p) const { gst_object_unref(p); }
};
using ElementPtr = std::unique_ptr<GstElement, ObjectUnref>;
using BusPtr = std::unique_ptr<GstBus, ObjectUnref>;
using PadPtr = std::unique_ptr<GstPad, ObjectUnref>;

struct MessageUnref {
  void operator()(GstMessage *m) const { gst_message_unref(m); }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageUnref>;

// Sets the pipeline to NULL when it goes out of scope, whatever happened.
struct PipelineGuard {
  GstElement *pipeline;
  ~PipelineGuard() { gst_element_set_state(pipeline, GST_STATE_NULL); }
};

bool have_factory(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

const char *aac_encoder() {
  static const char *const kCandidates[] = {"voaacenc", "avenc_aac"};
  for (const char *name : kCandidates) {
    if (have_factory(name)) return name;
  }
  return nullptr;
}

// Builds a pipeline from a launch line (owned, not floating).
ElementPtr launch(const std::string &line, const char *what, std::string &error) {
  GError *err = nullptr;
  GstElement *raw = gst_parse_launch(line.c_str(), &err);
  if (raw) gst_object_ref_sink(raw);
  ElementPtr pipeline(raw);
  if (err || !pipeline) {
    error = std::string("cannot build the ") + what + ": " + (err ? err->message : "unknown error");
    g_clear_error(&err);
    return nullptr;
  }
  return pipeline;
}

ElementPtr child(GstElement *pipeline, const char *name) {
  return ElementPtr(gst_bin_get_by_name(GST_BIN(pipeline), name));
}

// Waits (bounded) for EOS or an error on the pipeline's bus.
bool wait_eos(GstElement *pipeline, GstClockTime timeout, const char *what, std::string &error) {
  BusPtr bus(gst_element_get_bus(pipeline));
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout / GST_USECOND);
  for (;;) {
    const gint64 left_us = deadline - g_get_monotonic_time();
    if (left_us <= 0) {
      error = std::string("timed out waiting for the ") + what + " to finish";
      return false;
    }
    MessagePtr msg(gst_bus_timed_pop_filtered(
        bus.get(), static_cast<GstClockTime>(left_us) * GST_USECOND,
        static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
    if (!msg) continue;
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_EOS) return true;
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg.get(), &err, &dbg);
    error = std::string(what) + ": error from " + GST_OBJECT_NAME(GST_MESSAGE_SRC(msg.get())) +
            ": " + (err ? err->message : "unknown") + (dbg ? std::string(" (") + dbg + ")" : "");
    g_clear_error(&err);
    g_free(dbg);
    return false;
  }
}

// Starts the pipeline, lets `feed` push into it, waits for EOS.
template <typename Feed>
bool run(GstElement *pipeline, GstClockTime timeout, const char *what, std::string &error,
         Feed feed) {
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    error = std::string("cannot start the ") + what;
    return false;
  }
  feed();
  if (!wait_eos(pipeline, timeout, what, error)) return false;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  return true;
}

// Pushes `bytes` as one buffer, then EOS.
void push_file(GstElement *appsrc, const Bytes &bytes) {
  GstBuffer *buf = gst_buffer_new_memdup(bytes.data(), bytes.size());
  gst_app_src_push_buffer(GST_APP_SRC(appsrc), buf);  // takes the buffer
  gst_app_src_end_of_stream(GST_APP_SRC(appsrc));
}

Bytes buffer_bytes(GstBuffer *buf) {
  Bytes out;
  GstMapInfo map;
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    out.assign(map.data, map.data + map.size);
    gst_buffer_unmap(buf, &map);
  }
  return out;
}

// ---- encode -------------------------------------------------------------------

// Filled by the appsink callback on the streaming thread; read by the calling
// thread only after EOS came through the bus (which orders the two).
struct PacketCollector {
  GstCaps *caps = nullptr;  // the last caps seen (owned)
  std::vector<Packet> packets;
  bool missing_pts = false;
  ~PacketCollector() { gst_clear_caps(&caps); }
};

GstFlowReturn on_encoded_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<PacketCollector *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstCaps *caps = gst_sample_get_caps(sample);
  if (caps && (!c->caps || !gst_caps_is_equal(caps, c->caps))) {
    gst_clear_caps(&c->caps);
    c->caps = gst_caps_ref(caps);
  }
  GstBuffer *buf = gst_sample_get_buffer(sample);
  if (buf && !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_HEADER)) {
    Packet p;
    p.data = buffer_bytes(buf);
    if (GST_BUFFER_PTS_IS_VALID(buf))
      p.pts_ns = GST_BUFFER_PTS(buf);
    else
      c->missing_pts = true;
    p.duration_ns = GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0;
    if (GST_BUFFER_OFFSET_END_IS_VALID(buf)) p.granule = GST_BUFFER_OFFSET_END(buf);
    GstAudioClippingMeta *clip = gst_buffer_get_audio_clipping_meta(buf);
    if (clip && clip->format == GST_FORMAT_DEFAULT) {
      p.clip_start = clip->start;
      p.clip_end = clip->end;
    }
    c->packets.push_back(std::move(p));
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

std::string encoder_chain(Codec codec, std::string &error) {
  switch (codec) {
    case Codec::Aac: {
      const char *enc = aac_encoder();
      if (!enc) {
        error = "no AAC encoder available (voaacenc or avenc_aac)";
        return std::string();
      }
      return std::string(enc) +
             " bitrate=128000 ! aacparse ! audio/mpeg,mpegversion=4,stream-format=raw";
    }
    case Codec::Opus:
      return "audioresample ! audio/x-raw,rate=48000 ! opusenc bitrate=96000 frame-size=20 ! "
             "opusparse";
    case Codec::Vorbis:
      return "vorbisenc quality=0.4 ! vorbisparse";
    case Codec::Mp3:
      return "lamemp3enc target=bitrate bitrate=128 cbr=true encoding-engine-quality=fast ! "
             "mpegaudioparse ! audio/mpeg,mpegversion=1,layer=3,parsed=true";
  }
  error = "unknown codec";
  return std::string();
}

// ---- mux ----------------------------------------------------------------------

// A file written in memory by a probe on the muxer's src pad, as filesink
// would write it: byte segments move the write position (the muxer seeking
// back to rewrite a header), buffers are written there. Touched on the
// streaming thread only; read after EOS.
struct MemoryFile {
  Bytes bytes;
  uint64_t pos = 0;
  bool seekable = true;  // what the SEEKING query answers
};

GstPadProbeReturn on_mux_output(GstPad *, GstPadProbeInfo *info, gpointer user_data) noexcept {
  auto *f = static_cast<MemoryFile *>(user_data);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    GstMapInfo map;
    if (buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
      if (f->bytes.size() < f->pos + map.size) f->bytes.resize(f->pos + map.size);
      if (map.size) std::memcpy(f->bytes.data() + f->pos, map.data, map.size);
      f->pos += map.size;
      gst_buffer_unmap(buf, &map);
    }
    return GST_PAD_PROBE_OK;
  }
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (ev && GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) {
      const GstSegment *seg = nullptr;
      gst_event_parse_segment(ev, &seg);
      if (seg && seg->format == GST_FORMAT_BYTES) f->pos = seg->start;
    }
    return GST_PAD_PROBE_OK;
  }
  if (info->type & GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM) {
    GstQuery *q = GST_PAD_PROBE_INFO_QUERY(info);
    if (q && GST_QUERY_TYPE(q) == GST_QUERY_SEEKING) {
      GstFormat fmt = GST_FORMAT_UNDEFINED;
      gst_query_parse_seeking(q, &fmt, nullptr, nullptr, nullptr);
      if (fmt == GST_FORMAT_BYTES) {
        gst_query_set_seeking(q, fmt, f->seekable ? TRUE : FALSE, 0, -1);
        return GST_PAD_PROBE_HANDLED;
      }
    }
  }
  return GST_PAD_PROBE_OK;
}

// The muxer part of the launch line; its last element is named "mux", its
// first "in" when that is another one.
std::string mux_chain(Container c) {
  switch (c) {
    case Container::M4a:
      return "mp4mux name=mux";
    case Container::M4aFaststart:
      return "mp4mux name=mux faststart=true";
    case Container::FragmentedMp4:
      return "mp4mux name=mux fragment-duration=" + std::to_string(kFragmentMs);
    case Container::WebM:
      return "webmmux name=mux";
    case Container::Matroska:
      return "matroskamux name=mux";
    case Container::Ogg:
      return "oggmux name=mux";
    case Container::Adts:
      return "aacparse name=in ! audio/mpeg,mpegversion=4,stream-format=adts ! identity name=mux";
    case Container::Mp3:
      break;
  }
  return std::string();
}

bool is_ogg_codec(Codec c) {
  return c == Codec::Opus || c == Codec::Vorbis;
}

bool is_mp4(Container c) {
  return c == Container::M4a || c == Container::M4aFaststart || c == Container::FragmentedMp4;
}

uint32_t rd32(const uint8_t *p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

uint64_t rd64(const uint8_t *p) {
  return (static_cast<uint64_t>(rd32(p)) << 32) | rd32(p + 4);
}

// One ISO BMFF box inside [begin, end) of a buffer.
struct Box {
  size_t offset = 0;  // of the box header
  size_t header = 0;  // 8, or 16 with a 64-bit size
  size_t size = 0;    // whole box
  char type[5] = {0, 0, 0, 0, 0};
};

// The boxes directly inside [begin, end). False on a size that does not fit.
bool list_boxes(const Bytes &b, size_t begin, size_t end, std::vector<Box> &out) {
  out.clear();
  size_t off = begin;
  while (off < end) {
    if (end - off < 8) return false;
    Box box;
    box.offset = off;
    box.header = 8;
    uint64_t size = rd32(&b[off]);
    std::memcpy(box.type, &b[off + 4], 4);
    if (size == 1) {
      if (end - off < 16) return false;
      size = rd64(&b[off + 8]);
      box.header = 16;
    } else if (size == 0) {
      size = end - off;
    }
    if (size < box.header || size > end - off) return false;
    box.size = static_cast<size_t>(size);
    out.push_back(box);
    off += box.size;
  }
  return true;
}

const Box *find_box(const std::vector<Box> &boxes, const char *type) {
  for (const Box &b : boxes) {
    if (std::memcmp(b.type, type, 4) == 0) return &b;
  }
  return nullptr;
}

// mp4mux writes the wall clock (seconds) as creation and modification time
// of mvhd, tkhd and mdhd; set them to 0 so that every run gives the same
// bytes. Sizes do not change.
void zero_mp4_times(Bytes &b) {
  auto zero = [&b](const Box &full) {
    const size_t p = full.offset + full.header;  // version + flags, then the times
    if (full.size < full.header + 4 + 16) return;
    const bool v1 = b[p] == 1;
    std::fill(b.begin() + static_cast<std::ptrdiff_t>(p + 4),
              b.begin() + static_cast<std::ptrdiff_t>(p + 4 + (v1 ? 16 : 8)), 0);
  };
  std::vector<Box> top, moov, trak, mdia;
  if (!list_boxes(b, 0, b.size(), top)) return;
  const Box *mv = find_box(top, "moov");
  if (!mv || !list_boxes(b, mv->offset + mv->header, mv->offset + mv->size, moov)) return;
  for (const Box &m : moov) {
    if (std::memcmp(m.type, "mvhd", 4) == 0) zero(m);
    if (std::memcmp(m.type, "trak", 4) != 0) continue;
    if (!list_boxes(b, m.offset + m.header, m.offset + m.size, trak)) continue;
    for (const Box &t : trak) {
      if (std::memcmp(t.type, "tkhd", 4) == 0) zero(t);
      if (std::memcmp(t.type, "mdia", 4) != 0) continue;
      if (!list_boxes(b, t.offset + t.header, t.offset + t.size, mdia)) continue;
      const Box *mdhd = find_box(mdia, "mdhd");
      if (mdhd) zero(*mdhd);
    }
  }
}

void wr32(uint8_t *p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void wr64(uint8_t *p, uint64_t v) {
  wr32(p, static_cast<uint32_t>(v >> 32));
  wr32(p + 4, static_cast<uint32_t>(v));
}

// The boxes inside `box` (after its header and, for a full box, `skip` more bytes).
bool children(const Bytes &b, const Box &box, std::vector<Box> &out, size_t skip = 0) {
  return list_boxes(b, box.offset + box.header + skip, box.offset + box.size, out);
}

// Adds `delta` to the 32-bit size of the box at `offset` (none of ours is 64-bit).
bool grow_box(Bytes &b, const Box &box, uint32_t delta) {
  if (box.header != 8 || box.size + delta > UINT32_MAX) return false;
  wr32(&b[box.offset], static_cast<uint32_t>(box.size + delta));
  return true;
}

// mp4mux starts every file at 0, whatever its first timestamp. A file cut
// from the middle of a track with TimestampMode::Absolute gets what ffmpeg's
// mov muxer writes for a late start: an edit list with an empty edit of
// `start_ns`, then the media (replacing mp4mux's one-entry edit list). The
// moov grows; when it comes before the mdat (faststart) the chunk offsets
// move with it.
bool add_start_edit(Bytes &b, uint64_t start_ns, std::string &error) {
  std::vector<Box> top, moov, trak, mdia, minf, stbl;
  if (!list_boxes(b, 0, b.size(), top)) return false;
  const Box *mv = find_box(top, "moov");
  const Box *mdat = find_box(top, "mdat");
  if (!mv || !mdat || !children(b, *mv, moov)) return false;
  const Box *mvhd = find_box(moov, "mvhd");
  const Box *tk = find_box(moov, "trak");
  if (!mvhd || !tk || !children(b, *tk, trak)) return false;
  const Box *tkhd = find_box(trak, "tkhd");
  const Box *md = find_box(trak, "mdia");
  if (!tkhd || !md || !children(b, *md, mdia)) return false;
  const Box *mdhd = find_box(mdia, "mdhd");
  const Box *mi = find_box(mdia, "minf");
  if (!mdhd || !mi || !children(b, *mi, minf)) return false;
  const Box *st = find_box(minf, "stbl");
  if (!st || !children(b, *st, stbl)) return false;

  // mvhd: version, flags, 2 times, timescale, duration (32 or 64 bits).
  const size_t mp = mvhd->offset + mvhd->header;
  const bool mv1 = b[mp] == 1;
  const uint32_t movie_scale = rd32(&b[mp + (mv1 ? 20 : 12)]);
  const size_t mvhd_dur = mp + (mv1 ? 24 : 16);
  // mdhd: same layout.
  const size_t dp = mdhd->offset + mdhd->header;
  const bool md1 = b[dp] == 1;
  const uint32_t media_scale = rd32(&b[dp + (md1 ? 20 : 12)]);
  const uint64_t media_dur = md1 ? rd64(&b[dp + 24]) : rd32(&b[dp + 16]);
  if (!movie_scale || !media_scale) return false;
  const uint64_t empty = gst_util_uint64_scale_round(start_ns, movie_scale, GST_SECOND);
  const uint64_t media = gst_util_uint64_scale_round(media_dur, movie_scale, media_scale);
  if (empty + media > UINT32_MAX) {
    error = "edit list too long for 32-bit entries";
    return false;
  }
  // tkhd: version, flags, 2 times, track_ID, reserved, duration.
  const size_t tp = tkhd->offset + tkhd->header;
  const bool tk1 = b[tp] == 1;
  const size_t tkhd_dur = tp + (tk1 ? 28 : 20);
  if (mv1)
    wr64(&b[mvhd_dur], empty + media);
  else
    wr32(&b[mvhd_dur], static_cast<uint32_t>(empty + media));
  if (tk1)
    wr64(&b[tkhd_dur], empty + media);
  else
    wr32(&b[tkhd_dur], static_cast<uint32_t>(empty + media));

  // The media edit keeps the media_time of the edit mp4mux wrote, if any.
  const Box *old_edts = find_box(trak, "edts");
  uint32_t media_time = 0;
  std::vector<Box> edts_kids;
  if (old_edts && children(b, *old_edts, edts_kids)) {
    const Box *elst = find_box(edts_kids, "elst");
    if (elst && elst->size >= elst->header + 20 && b[elst->offset + elst->header] == 0)
      media_time = rd32(&b[elst->offset + elst->header + 12]);
  }
  // edts { elst v0: 2 entries (duration, media_time, rate 1.0) }
  Bytes edts(48, 0);
  wr32(&edts[0], 48);
  std::memcpy(&edts[4], "edts", 4);
  wr32(&edts[8], 40);
  std::memcpy(&edts[12], "elst", 4);
  wr32(&edts[20], 2);
  wr32(&edts[24], static_cast<uint32_t>(empty));
  wr32(&edts[28], UINT32_MAX);  // media_time -1: empty edit
  wr32(&edts[32], 0x00010000);
  wr32(&edts[36], static_cast<uint32_t>(media));
  wr32(&edts[40], media_time);
  wr32(&edts[44], 0x00010000);
  const size_t removed = old_edts ? old_edts->size : 0;
  const uint32_t grow = static_cast<uint32_t>(edts.size() - removed);

  // Chunk offsets first (positions do not move before the insertion point).
  if (mv->offset < mdat->offset) {
    const Box *stco = find_box(stbl, "stco");
    const Box *co64 = find_box(stbl, "co64");
    const Box *co = stco ? stco : co64;
    if (!co) return false;
    const size_t cp = co->offset + co->header;
    const uint32_t n = rd32(&b[cp + 4]);
    const size_t width = stco ? 4 : 8;
    if (cp + 8 + n * width > co->offset + co->size) return false;
    for (uint32_t i = 0; i < n; i++) {
      uint8_t *e = &b[cp + 8 + i * width];
      if (stco) {
        if (static_cast<uint64_t>(rd32(e)) + grow > UINT32_MAX) return false;
        wr32(e, rd32(e) + grow);
      } else {
        wr64(e, rd64(e) + grow);
      }
    }
  }
  if (!grow_box(b, *tk, grow) || !grow_box(b, *mv, grow)) return false;
  const size_t at = old_edts ? old_edts->offset : tkhd->offset + tkhd->size;
  b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
          b.begin() + static_cast<std::ptrdiff_t>(at + removed));
  b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), edts.begin(), edts.end());
  return true;
}

// Fragmented MP4 with TimestampMode::Absolute: moves every tfdt (fragment
// decode time) by `start_ns`, as a packager keeps the track's timeline.
bool shift_fragment_times(Bytes &b, uint64_t start_ns) {
  std::vector<Box> top, moov, trak, mdia, moof, traf;
  if (!list_boxes(b, 0, b.size(), top)) return false;
  const Box *mv = find_box(top, "moov");
  if (!mv || !children(b, *mv, moov)) return false;
  const Box *tk = find_box(moov, "trak");
  if (!tk || !children(b, *tk, trak)) return false;
  const Box *md = find_box(trak, "mdia");
  if (!md || !children(b, *md, mdia)) return false;
  const Box *mdhd = find_box(mdia, "mdhd");
  if (!mdhd) return false;
  const size_t dp = mdhd->offset + mdhd->header;
  const uint32_t scale = rd32(&b[dp + (b[dp] == 1 ? 20 : 12)]);
  if (!scale) return false;
  const uint64_t delta = gst_util_uint64_scale_round(start_ns, scale, GST_SECOND);
  for (const Box &m : top) {
    if (std::memcmp(m.type, "moof", 4) != 0 || !children(b, m, moof)) continue;
    for (const Box &t : moof) {
      if (std::memcmp(t.type, "traf", 4) != 0 || !children(b, t, traf)) continue;
      const Box *tfdt = find_box(traf, "tfdt");
      if (!tfdt) return false;
      const size_t p = tfdt->offset + tfdt->header;
      if (b[p] == 1) {
        wr64(&b[p + 4], rd64(&b[p + 4]) + delta);
      } else {
        if (static_cast<uint64_t>(rd32(&b[p + 4])) + delta > UINT32_MAX) return false;
        wr32(&b[p + 4], static_cast<uint32_t>(rd32(&b[p + 4]) + delta));
      }
    }
  }
  return true;
}

// Index of the packet whose start is nearest `target`, searching from `from`.
size_t nearest(const std::vector<uint64_t> &starts, size_t from, uint64_t target) {
  size_t best = starts.size();
  uint64_t best_dist = 0;
  for (size_t i = from; i < starts.size(); i++) {
    const uint64_t t = starts[i];
    const uint64_t dist = t > target ? t - target : target - t;
    if (best == starts.size() || dist < best_dist) {
      best = i;
      best_dist = dist;
    }
    if (t > target) break;
  }
  return best;
}

// Cut indices over a list of start times ending at end_ns (see cut_points).
std::vector<size_t> cuts_over(const std::vector<uint64_t> &starts, uint64_t end_ns, double first_s,
                              double seg_s) {
  std::vector<size_t> cuts;
  if (starts.empty()) return cuts;
  cuts.push_back(0);
  for (int k = 0; first_s > 0 && seg_s > 0; k++) {
    const uint64_t target = static_cast<uint64_t>((first_s + k * seg_s) * GST_SECOND);
    if (target + kCutMarginNs >= end_ns) break;
    const size_t best = nearest(starts, cuts.back() + 1, target);
    if (best >= starts.size()) break;
    cuts.push_back(best);
  }
  return cuts;
}

// ---- read ---------------------------------------------------------------------

// Filled on the streaming thread, read after EOS (see PacketCollector).
struct FrameCollector {
  GstCaps *caps = nullptr;  // of the first sample (owned)
  std::vector<Bytes> headers;
  std::vector<ParsedFrame> frames;
  ~FrameCollector() { gst_clear_caps(&caps); }
};

GstFlowReturn on_parsed_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<FrameCollector *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstCaps *caps = gst_sample_get_caps(sample);
  if (caps && !c->caps) c->caps = gst_caps_ref(caps);
  GstBuffer *buf = gst_sample_get_buffer(sample);
  if (buf && GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_HEADER)) {
    c->headers.push_back(buffer_bytes(buf));
  } else if (buf) {
    ParsedFrame f;
    f.data = buffer_bytes(buf);
    f.pts_ns = GST_BUFFER_PTS(buf);
    f.duration_ns = GST_BUFFER_DURATION(buf);
    const GstSegment *seg = gst_sample_get_segment(sample);
    if (seg && seg->format == GST_FORMAT_TIME && GST_BUFFER_PTS_IS_VALID(buf))
      f.stream_ns = gst_segment_to_stream_time(seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    if (GstAudioClippingMeta *clip = gst_buffer_get_audio_clipping_meta(buf)) {
      f.clip_start = clip->start;
      f.clip_end = clip->end;
    }
    c->frames.push_back(std::move(f));
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

// parsebin / decodebin pad-added: links the first audio pad to the element
// passed as user data (its "sink" pad). Streaming thread.
void on_pad_added(GstElement *, GstPad *pad, gpointer user_data) noexcept {
  auto *target = static_cast<GstElement *>(user_data);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  bool audio = false;
  if (caps && !gst_caps_is_empty(caps)) {
    const gchar *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    audio = g_str_has_prefix(name, "audio/");
  }
  if (caps) gst_caps_unref(caps);
  if (!audio) return;
  PadPtr sinkpad(gst_element_get_static_pad(target, "sink"));
  if (sinkpad && !gst_pad_is_linked(sinkpad.get())) gst_pad_link(pad, sinkpad.get());
}

// Filled on the streaming thread, read after EOS (see PacketCollector).
struct PcmCollector {
  Bytes pcm;
  int rate = 0;
  int channels = 0;
};

GstFlowReturn on_pcm_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<PcmCollector *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstCaps *caps = gst_sample_get_caps(sample);
  GstAudioInfo info;
  if (caps && gst_audio_info_from_caps(&info, caps)) {
    c->rate = GST_AUDIO_INFO_RATE(&info);
    c->channels = GST_AUDIO_INFO_CHANNELS(&info);
  }
  GstBuffer *buf = gst_sample_get_buffer(sample);
  GstMapInfo map;
  if (buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
    c->pcm.insert(c->pcm.end(), map.data, map.data + map.size);
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

GstClockTime read_timeout(const Bytes &file) {
  // A generous bound: reading runs at many times real time.
  return kMinPipelineTimeout + static_cast<GstClockTime>(file.size() / 1000) * GST_MSECOND;
}

}  // namespace

// ---- names and availability -----------------------------------------------------

const char *codec_name(Codec c) {
  switch (c) {
    case Codec::Aac:
      return "aac";
    case Codec::Opus:
      return "opus";
    case Codec::Vorbis:
      return "vorbis";
    case Codec::Mp3:
      return "mp3";
  }
  return "unknown";
}

const char *container_name(Container c) {
  switch (c) {
    case Container::M4a:
      return "m4a";
    case Container::M4aFaststart:
      return "m4a-faststart";
    case Container::FragmentedMp4:
      return "fmp4";
    case Container::WebM:
      return "webm";
    case Container::Matroska:
      return "mkv";
    case Container::Ogg:
      return "ogg";
    case Container::Adts:
      return "adts";
    case Container::Mp3:
      return "mp3";
  }
  return "unknown";
}

bool available(Codec codec) {
  switch (codec) {
    case Codec::Aac:
      return aac_encoder() && have_factory("aacparse");
    case Codec::Opus:
      return have_factory("opusenc") && have_factory("opusparse") && have_factory("audioresample");
    case Codec::Vorbis:
      return have_factory("vorbisenc") && have_factory("vorbisparse");
    case Codec::Mp3:
      return have_factory("lamemp3enc") && have_factory("mpegaudioparse");
  }
  return false;
}

bool supports(Codec codec, Container c) {
  switch (c) {
    case Container::M4a:
    case Container::M4aFaststart:
    case Container::FragmentedMp4:
      return codec == Codec::Aac || codec == Codec::Mp3;
    case Container::WebM:
    case Container::Ogg:
      return codec == Codec::Opus || codec == Codec::Vorbis;
    case Container::Matroska:
      return true;
    case Container::Adts:
      return codec == Codec::Aac;
    case Container::Mp3:
      return codec == Codec::Mp3;
  }
  return false;
}

bool available(Codec codec, Container c) {
  if (!supports(codec, c) || !available(codec)) return false;
  switch (c) {
    case Container::M4a:
    case Container::M4aFaststart:
    case Container::FragmentedMp4:
      return have_factory("mp4mux");
    case Container::WebM:
      return have_factory("webmmux");
    case Container::Matroska:
      return have_factory("matroskamux");
    case Container::Ogg:
      return have_factory("oggmux");
    case Container::Adts:
    case Container::Mp3:
      return true;
  }
  return false;
}

// ---- Packets / ParsedFrames -------------------------------------------------------

Packets::Packets(const Packets &o)
    : codec(o.codec),
      caps(o.caps ? gst_caps_ref(o.caps) : nullptr),
      packets(o.packets),
      rate(o.rate),
      channels(o.channels) {}

Packets::Packets(Packets &&o) noexcept
    : codec(o.codec),
      caps(std::exchange(o.caps, nullptr)),
      packets(std::move(o.packets)),
      rate(o.rate),
      channels(o.channels) {}

Packets &Packets::operator=(Packets o) noexcept {
  std::swap(codec, o.codec);
  std::swap(caps, o.caps);
  std::swap(packets, o.packets);
  std::swap(rate, o.rate);
  std::swap(channels, o.channels);
  return *this;
}

Packets::~Packets() {
  gst_clear_caps(&caps);
}

uint64_t Packets::end_ns() const {
  if (packets.empty()) return 0;
  return packets.back().pts_ns + packets.back().duration_ns;
}

ParsedFrames::ParsedFrames(ParsedFrames &&o) noexcept
    : caps(std::exchange(o.caps, nullptr)),
      headers(std::move(o.headers)),
      frames(std::move(o.frames)) {}

ParsedFrames &ParsedFrames::operator=(ParsedFrames &&o) noexcept {
  if (this != &o) {
    gst_clear_caps(&caps);
    caps = std::exchange(o.caps, nullptr);
    headers = std::move(o.headers);
    frames = std::move(o.frames);
  }
  return *this;
}

ParsedFrames::~ParsedFrames() {
  gst_clear_caps(&caps);
}

// ---- encode_packets ---------------------------------------------------------------

bool encode_packets(Codec codec, double seconds, Packets &out, std::string &error) {
  Bytes pcm;
  if (!melody_pcm(seconds, pcm, error)) return false;
  const std::string chain = encoder_chain(codec, error);
  if (chain.empty()) return false;
  const std::string line =
      "appsrc name=src format=time is-live=false max-bytes=0 "
      "caps=audio/x-raw,format=S16LE,layout=interleaved,rate=44100,channels=2,"
      "channel-mask=(bitmask)0x3 ! audioconvert ! " +
      chain + " ! appsink name=sink sync=false async=false";
  const std::string what = std::string(codec_name(codec)) + " encoder";
  ElementPtr pipeline = launch(line, what.c_str(), error);
  if (!pipeline) return false;
  ElementPtr src = child(pipeline.get(), "src");
  ElementPtr sink = child(pipeline.get(), "sink");
  PacketCollector col;
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_encoded_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &cbs, &col, nullptr);

  PipelineGuard guard{pipeline.get()};
  const size_t bpf = kMelodyChannels * sizeof(int16_t);
  const size_t total = pcm.size() / bpf;
  const GstClockTime timeout =
      kMinPipelineTimeout + static_cast<GstClockTime>(seconds * GST_SECOND);
  const bool ok = run(pipeline.get(), timeout, what.c_str(), error, [&]() {
    for (size_t pos = 0; pos < total; pos += kPcmChunkFrames) {
      const size_t n = std::min(kPcmChunkFrames, total - pos);
      GstBuffer *buf = gst_buffer_new_memdup(pcm.data() + pos * bpf, n * bpf);
      GST_BUFFER_PTS(buf) = gst_util_uint64_scale_int(pos, GST_SECOND, kMelodyRate);
      GST_BUFFER_DURATION(buf) =
          gst_util_uint64_scale_int(pos + n, GST_SECOND, kMelodyRate) - GST_BUFFER_PTS(buf);
      GST_BUFFER_OFFSET(buf) = pos;
      GST_BUFFER_OFFSET_END(buf) = pos + n;
      gst_app_src_push_buffer(GST_APP_SRC(src.get()), buf);
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src.get()));
  });
  if (!ok) return false;
  if (col.packets.empty() || !col.caps) {
    error = what + " produced no packets";
    return false;
  }
  if (col.missing_pts) {
    error = what + " produced packets without timestamps";
    return false;
  }
  GstStructure *s = gst_caps_get_structure(col.caps, 0);
  Packets result;
  result.codec = codec;
  result.caps = std::exchange(col.caps, nullptr);
  result.packets = std::move(col.packets);
  if (!gst_structure_get_int(s, "rate", &result.rate))
    result.rate = codec == Codec::Opus ? 48000 : kMelodyRate;
  if (!gst_structure_get_int(s, "channels", &result.channels)) result.channels = kMelodyChannels;
  out = std::move(result);
  return true;
}

// ---- mux_file ---------------------------------------------------------------------

bool mux_file(const Packets &p, size_t first, size_t count, Container c, TimestampMode ts,
              Bytes &out, std::string &error) {
  if (!p.caps || first >= p.packets.size() || count == 0 || count > p.packets.size() - first) {
    error = "bad packet range";
    return false;
  }
  if (!supports(p.codec, c)) {
    error = std::string(codec_name(p.codec)) + " cannot go in " + container_name(c);
    return false;
  }
  if (c == Container::Mp3) {
    // No container: the frames as they are.
    out.clear();
    for (size_t i = first; i < first + count; i++)
      out.insert(out.end(), p.packets[i].data.begin(), p.packets[i].data.end());
    return true;
  }
  const std::string what = std::string(container_name(c)) + " muxer";
  // appsrc is linked once it has its caps, so that a muxer gives it an audio pad.
  const std::string line = "appsrc name=src format=time is-live=false max-bytes=0 " + mux_chain(c) +
                           " ! fakesink name=sink sync=false async=false";
  // matroskamux UIDs and oggmux serial numbers come from g_random.
  g_random_set_seed(kRandomSeed);
  ElementPtr pipeline = launch(line, what.c_str(), error);
  if (!pipeline) return false;
  ElementPtr src = child(pipeline.get(), "src");
  ElementPtr mux = child(pipeline.get(), "mux");
  g_object_set(src.get(), "caps", p.caps, nullptr);
  ElementPtr in = child(pipeline.get(), "in");
  PadPtr out_pad(gst_element_get_static_pad(src.get(), "src"));
  // A pad for these caps (a muxer's audio request pad, not its video one).
  PadPtr in_pad(gst_element_get_compatible_pad(in ? in.get() : mux.get(), out_pad.get(), p.caps));
  if (!in_pad || GST_PAD_LINK_FAILED(gst_pad_link(out_pad.get(), in_pad.get()))) {
    error = "cannot link " + std::string(codec_name(p.codec)) + " packets to the " + what;
    return false;
  }
  if (c == Container::WebM || c == Container::Matroska) {
    GDateTime *when = g_date_time_new_utc(2024, 1, 1, 0, 0, 0);
    g_object_set(mux.get(), "creation-time", when, nullptr);
    g_date_time_unref(when);
  }
  MemoryFile file;
  // Fragmented MP4 as a live stream writes (no mfra, no rewrites); the others
  // rewrite their headers at the end as they do on disk.
  file.seekable = c != Container::FragmentedMp4;
  PadPtr srcpad(gst_element_get_static_pad(mux.get(), "src"));
  gst_pad_add_probe(
      srcpad.get(),
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                   GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM),
      on_mux_output, &file, nullptr);

  const uint64_t base = ts == TimestampMode::Reset ? p.packets[first].pts_ns : 0;
  const uint64_t base_samples = gst_util_uint64_scale_round(base, p.rate, GST_SECOND);
  PipelineGuard guard{pipeline.get()};
  const bool ok = run(pipeline.get(), kMinPipelineTimeout, what.c_str(), error, [&]() {
    for (size_t i = first; i < first + count; i++) {
      const Packet &pk = p.packets[i];
      GstBuffer *buf = gst_buffer_new_memdup(pk.data.data(), pk.data.size());
      GST_BUFFER_PTS(buf) = pk.pts_ns - std::min(base, pk.pts_ns);
      GST_BUFFER_DTS(buf) = GST_BUFFER_PTS(buf);
      if (pk.duration_ns) GST_BUFFER_DURATION(buf) = pk.duration_ns;
      // Only the Ogg mappings use granules (AAC / MP3 parsers set other offsets).
      if (pk.granule != kNoGranule && is_ogg_codec(p.codec))
        GST_BUFFER_OFFSET_END(buf) = pk.granule - std::min(base_samples, pk.granule);
      if (pk.clip_start || pk.clip_end)
        gst_buffer_add_audio_clipping_meta(buf, GST_FORMAT_DEFAULT, pk.clip_start, pk.clip_end);
      if (i == first) GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
      gst_app_src_push_buffer(GST_APP_SRC(src.get()), buf);
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src.get()));
  });
  if (!ok) return false;
  if (file.bytes.empty()) {
    error = what + " produced no data";
    return false;
  }
  if (is_mp4(c)) zero_mp4_times(file.bytes);
  const uint64_t start_ns = p.packets[first].pts_ns;
  if (ts == TimestampMode::Absolute && start_ns > 0 && is_mp4(c)) {
    std::string why;
    const bool ok_times = c == Container::FragmentedMp4 ? shift_fragment_times(file.bytes, start_ns)
                                                        : add_start_edit(file.bytes, start_ns, why);
    if (!ok_times) {
      error = "cannot move the " + what + " output to its start time" +
              (why.empty() ? std::string() : ": " + why);
      return false;
    }
  }
  out = std::move(file.bytes);
  return true;
}

bool whole_file(const Packets &p, Container c, Bytes &out, std::string &error) {
  return mux_file(p, 0, p.packets.size(), c, TimestampMode::Absolute, out, error);
}

std::vector<size_t> cut_points(const Packets &p, double first_s, double seg_s) {
  std::vector<uint64_t> starts;
  starts.reserve(p.packets.size());
  for (const Packet &pk : p.packets) starts.push_back(pk.pts_ns);
  return cuts_over(starts, p.end_ns(), first_s, seg_s);
}

bool segment_files(const Packets &p, Container c, TimestampMode ts, double first_s, double seg_s,
                   std::vector<Bytes> &out, std::string &error) {
  const std::vector<size_t> cuts = cut_points(p, first_s, seg_s);
  if (cuts.empty()) {
    error = "no packets to segment";
    return false;
  }
  std::vector<Bytes> files;
  for (size_t k = 0; k < cuts.size(); k++) {
    const size_t end = k + 1 < cuts.size() ? cuts[k + 1] : p.packets.size();
    Bytes file;
    if (!mux_file(p, cuts[k], end - cuts[k], c, ts, file, error)) {
      error = "segment " + std::to_string(k) + ": " + error;
      return false;
    }
    files.push_back(std::move(file));
  }
  out = std::move(files);
  return true;
}

// ---- split_fragmented -------------------------------------------------------------

namespace {

// Fragment timing from moov (timescale, trex default duration) and one moof
// (tfdt, tfhd / trun durations). Only the first track is considered.
struct FragmentClock {
  uint32_t timescale = 0;
  uint32_t trex_duration = 0;
};

bool read_moov_clock(const Bytes &b, const Box &moov, FragmentClock &clk) {
  std::vector<Box> kids, trak, mdia, mvex;
  if (!list_boxes(b, moov.offset + moov.header, moov.offset + moov.size, kids)) return false;
  const Box *tk = find_box(kids, "trak");
  if (!tk || !list_boxes(b, tk->offset + tk->header, tk->offset + tk->size, trak)) return false;
  const Box *md = find_box(trak, "mdia");
  if (!md || !list_boxes(b, md->offset + md->header, md->offset + md->size, mdia)) return false;
  const Box *mdhd = find_box(mdia, "mdhd");
  if (!mdhd) return false;
  const size_t p = mdhd->offset + mdhd->header;
  const bool v1 = b[p] == 1;
  const size_t ts_at = p + 4 + (v1 ? 16 : 8);
  if (ts_at + 4 > mdhd->offset + mdhd->size) return false;
  clk.timescale = rd32(&b[ts_at]);
  const Box *mx = find_box(kids, "mvex");
  if (mx && list_boxes(b, mx->offset + mx->header, mx->offset + mx->size, mvex)) {
    const Box *trex = find_box(mvex, "trex");
    // version/flags, track_ID, default_sample_description_index, default_sample_duration
    if (trex && trex->size >= trex->header + 16)
      clk.trex_duration = rd32(&b[trex->offset + trex->header + 12]);
  }
  return clk.timescale > 0;
}

// Start and duration (track timescale) of the first traf of a moof.
bool read_moof_time(const Bytes &b, const Box &moof, const FragmentClock &clk, uint64_t &start,
                    uint64_t &duration) {
  std::vector<Box> kids, traf;
  if (!list_boxes(b, moof.offset + moof.header, moof.offset + moof.size, kids)) return false;
  const Box *tf = find_box(kids, "traf");
  if (!tf || !list_boxes(b, tf->offset + tf->header, tf->offset + tf->size, traf)) return false;
  const Box *tfdt = find_box(traf, "tfdt");
  if (!tfdt || tfdt->size < tfdt->header + 8) return false;
  const size_t p = tfdt->offset + tfdt->header;
  if (b[p] == 1) {
    if (tfdt->size < tfdt->header + 12) return false;
    start = rd64(&b[p + 4]);
  } else {
    start = rd32(&b[p + 4]);
  }
  uint32_t default_duration = clk.trex_duration;
  if (const Box *tfhd = find_box(traf, "tfhd")) {
    const size_t q = tfhd->offset + tfhd->header;
    const uint32_t flags = rd32(&b[q]) & 0xffffff;
    size_t at = q + 8;          // after version/flags and track_ID
    if (flags & 0x01) at += 8;  // base_data_offset
    if (flags & 0x02) at += 4;  // sample_description_index
    if ((flags & 0x08) && at + 4 <= tfhd->offset + tfhd->size) default_duration = rd32(&b[at]);
  }
  duration = 0;
  for (const Box &t : traf) {
    if (std::memcmp(t.type, "trun", 4) != 0) continue;
    const size_t q = t.offset + t.header;
    const size_t end = t.offset + t.size;
    if (q + 8 > end) return false;
    const uint32_t flags = rd32(&b[q]) & 0xffffff;
    const uint32_t count = rd32(&b[q + 4]);
    size_t at = q + 8;
    if (flags & 0x001) at += 4;  // data_offset
    if (flags & 0x004) at += 4;  // first_sample_flags
    size_t per_sample = 0;
    for (uint32_t bit : {0x100u, 0x200u, 0x400u, 0x800u})
      if (flags & bit) per_sample += 4;
    for (uint32_t i = 0; i < count; i++) {
      if (flags & 0x100) {
        if (at + 4 > end) return false;
        duration += rd32(&b[at]);
      } else {
        duration += default_duration;
      }
      at += per_sample;
    }
  }
  return true;
}

}  // namespace

bool split_fragmented(const Bytes &fmp4, double first_s, double seg_s, std::vector<Bytes> &out,
                      std::string &error) {
  std::vector<Box> top;
  if (!list_boxes(fmp4, 0, fmp4.size(), top)) {
    error = "not an ISO BMFF file (bad top-level box sizes)";
    return false;
  }
  const Box *moov = find_box(top, "moov");
  FragmentClock clk;
  if (!moov || !read_moov_clock(fmp4, *moov, clk)) {
    error = "no moov with a track timescale";
    return false;
  }
  std::vector<size_t> offsets;  // of every moof
  std::vector<uint64_t> starts;
  uint64_t end_ns = 0;
  for (const Box &box : top) {
    if (std::memcmp(box.type, "moof", 4) != 0) continue;
    uint64_t start = 0, duration = 0;
    if (!read_moof_time(fmp4, box, clk, start, duration)) {
      error = "moof at byte " + std::to_string(box.offset) + " has no usable tfdt / trun";
      return false;
    }
    offsets.push_back(box.offset);
    starts.push_back(gst_util_uint64_scale(start, GST_SECOND, clk.timescale));
    end_ns = std::max(end_ns, gst_util_uint64_scale(start + duration, GST_SECOND, clk.timescale));
  }
  if (offsets.empty()) {
    error = "no moof: not a fragmented MP4";
    return false;
  }
  // The first cut is at byte 0 (init + first fragments), not at the first moof.
  std::vector<size_t> cuts = cuts_over(starts, end_ns, first_s, seg_s);
  std::vector<Bytes> parts;
  for (size_t k = 0; k < cuts.size(); k++) {
    const size_t begin = k == 0 ? 0 : offsets[cuts[k]];
    const size_t end = k + 1 < cuts.size() ? offsets[cuts[k + 1]] : fmp4.size();
    parts.emplace_back(fmp4.begin() + static_cast<std::ptrdiff_t>(begin),
                       fmp4.begin() + static_cast<std::ptrdiff_t>(end));
  }
  out = std::move(parts);
  return true;
}

// ---- parse_frames / decode_pcm -----------------------------------------------------

bool parse_frames(const Bytes &file, ParsedFrames &out, std::string &error) {
  if (file.empty()) {
    error = "empty file";
    return false;
  }
  ElementPtr pipeline = launch(
      "appsrc name=src format=bytes max-bytes=0 ! parsebin name=bin "
      "appsink name=sink sync=false async=false",
      "parser", error);
  if (!pipeline) return false;
  ElementPtr src = child(pipeline.get(), "src");
  ElementPtr bin = child(pipeline.get(), "bin");
  ElementPtr sink = child(pipeline.get(), "sink");
  g_signal_connect(bin.get(), "pad-added", G_CALLBACK(on_pad_added), sink.get());
  FrameCollector col;
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_parsed_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &cbs, &col, nullptr);

  PipelineGuard guard{pipeline.get()};
  if (!run(pipeline.get(), read_timeout(file), "parser", error,
           [&]() { push_file(src.get(), file); }))
    return false;
  if (!col.caps) {
    error = "no audio stream found";
    return false;
  }
  ParsedFrames result;
  result.caps = std::exchange(col.caps, nullptr);
  result.headers = std::move(col.headers);
  result.frames = std::move(col.frames);
  out = std::move(result);
  return true;
}

bool decode_pcm(const Bytes &file, Bytes &pcm_f32, int &rate, int &channels, std::string &error) {
  if (file.empty()) {
    error = "empty file";
    return false;
  }
  ElementPtr pipeline = launch(
      "appsrc name=src format=bytes max-bytes=0 ! decodebin name=bin "
      "audioconvert name=conv ! audio/x-raw,format=F32LE,layout=interleaved ! "
      "appsink name=sink sync=false async=false",
      "decoder", error);
  if (!pipeline) return false;
  ElementPtr src = child(pipeline.get(), "src");
  ElementPtr bin = child(pipeline.get(), "bin");
  ElementPtr conv = child(pipeline.get(), "conv");
  ElementPtr sink = child(pipeline.get(), "sink");
  g_signal_connect(bin.get(), "pad-added", G_CALLBACK(on_pad_added), conv.get());
  PcmCollector col;
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_pcm_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &cbs, &col, nullptr);

  PipelineGuard guard{pipeline.get()};
  if (!run(pipeline.get(), read_timeout(file), "decoder", error,
           [&]() { push_file(src.get(), file); }))
    return false;
  if (col.rate <= 0 || col.pcm.empty()) {
    error = "the decoder produced no audio";
    return false;
  }
  rate = col.rate;
  channels = col.channels;
  pcm_f32 = std::move(col.pcm);
  return true;
}

}  // namespace segdl::media
