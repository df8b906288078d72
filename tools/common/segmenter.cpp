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
 *  - read: appsrc with a whole file → parsebin or decodebin → appsink
 *    (segmenter-read.cpp).
 * Fragmented MP4 is split by walking its top-level ISO boxes
 * (segmenter-mp4.cpp); segmenter-private.h is what the three files share.
 */
#include "common/segmenter.h"
#include "common/segmenter-private.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/audio/audio.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>

namespace segdl::media {

using namespace detail;

namespace {

constexpr int kMelodyRate = 44100;  // melody_pcm()
constexpr int kMelodyChannels = 2;
constexpr size_t kPcmChunkFrames = 4096;
constexpr guint32 kRandomSeed = 0x5e6d1;  // reseeds g_random before every mux
constexpr uint64_t kCutMarginNs = 100 * GST_MSECOND;
constexpr guint kFragmentMs = 500;

const char *aac_encoder() {
  static const char *const kCandidates[] = {"voaacenc", "avenc_aac"};
  for (const char *name : kCandidates) {
    if (have_factory(name)) return name;
  }
  return nullptr;
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

}  // namespace

// ---- running a short pipeline ------------------------------------------------

namespace detail {

bool have_factory(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return false;
  gst_object_unref(f);
  return true;
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

namespace {

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

}  // namespace

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

}  // namespace detail

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

}  // namespace segdl::media
