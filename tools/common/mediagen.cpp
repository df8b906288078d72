// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — deterministic test and demo media, made with GStreamer.
 *
 * The melody is computed sample by sample from a fixed note list (a seeded
 * random walk over a pentatonic scale), pushed into appsrc on demand, encoded
 * by GStreamer, and collected from appsink. ADTS and MP3 record every parsed
 * frame as a cut point; MPEG-TS output is parsed after the fact (PAT, PMT,
 * PES headers) to find the packets where a cut keeps the stream valid.
 */
#include "common/mediagen.h"
#include "common/gsthold.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>

#include <algorithm>
#include <cmath>
#include <memory>

namespace segdl::media {

namespace {

constexpr int kRate = 44100;
constexpr int kChannels = 2;
constexpr size_t kChunkFrames = 4096;  // PCM frames per appsrc buffer
constexpr size_t kTsPacket = 188;

using hold::ElementPtr;
using hold::PipelineGuard;
using hold::wait_eos;

// ---- the melody ------------------------------------------------------------

struct Note {
  uint64_t start = 0;   // first PCM frame
  uint64_t length = 0;  // frames
  double freq = 0;      // Hz
  double pan = 0;       // -1 (left) .. 1 (right)
};

// A fixed note list covering `total_frames`: a random walk over two octaves
// of A minor pentatonic, driven by a constant-seeded LCG, so every run (and
// every process) gets the same melody.
std::vector<Note> make_melody(uint64_t total_frames) {
  static const double kScale[] = {220.00, 261.63, 293.66, 329.63, 392.00,
                                  440.00, 523.25, 587.33, 659.26, 783.99};
  static const double kBeats[] = {0.25, 0.25, 0.5, 0.25, 0.75, 0.5, 1.0, 0.25};
  const int scale_len = static_cast<int>(G_N_ELEMENTS(kScale));
  uint64_t state = 0x5e6d1c0ffee15ULL;
  auto next = [&state]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  std::vector<Note> notes;
  int degree = 5;
  uint64_t pos = 0;
  while (pos < total_frames) {
    Note n;
    n.start = pos;
    double beats = kBeats[next() % G_N_ELEMENTS(kBeats)];
    n.length = static_cast<uint64_t>(beats * 0.5 * kRate);  // 120 bpm
    int step = static_cast<int>(next() % 5) - 2;
    degree = std::clamp(degree + step, 0, scale_len - 1);
    n.freq = kScale[degree];
    n.pan = (static_cast<int>(next() % 9) - 4) / 8.0;
    notes.push_back(n);
    pos += n.length;
  }
  return notes;
}

// Attack 10 ms, decay 100 ms to 0.6, sustain, release over the last 60 ms.
double envelope(uint64_t i, uint64_t length) {
  const double t = static_cast<double>(i) / kRate;
  const double left = static_cast<double>(length - i) / kRate;
  double e;
  if (t < 0.01)
    e = t / 0.01;
  else if (t < 0.11)
    e = 1.0 - 0.4 * (t - 0.01) / 0.1;
  else
    e = 0.6;
  if (left < 0.06) e *= left / 0.06;
  return e;
}

// Feeds appsrc from its need-data callback (streaming thread only).
struct PcmSource {
  std::vector<Note> notes;
  uint64_t total_frames = 0;
  uint64_t pos = 0;   // next frame to render
  size_t note = 0;    // index of the note containing `pos`
  bool done = false;  // EOS sent
};

void render(PcmSource &src, int16_t *out, size_t frames) {
  constexpr double kTwoPi = 6.283185307179586;
  for (size_t k = 0; k < frames; k++) {
    const uint64_t f = src.pos + k;
    while (src.note + 1 < src.notes.size() && src.notes[src.note + 1].start <= f) src.note++;
    const Note &n = src.notes[src.note];
    const uint64_t i = f - n.start;
    const double t = static_cast<double>(i) / kRate;
    const double ph = kTwoPi * n.freq * t;
    const double v = (std::sin(ph) + 0.4 * std::sin(2 * ph) + 0.15 * std::sin(3 * ph)) *
                     envelope(std::min(i, n.length), n.length) * 0.22;
    const double l = v * (1.0 - 0.4 * n.pan);
    const double r = v * (1.0 + 0.4 * n.pan);
    out[2 * k] = static_cast<int16_t>(std::lround(std::clamp(l, -1.0, 1.0) * 32767.0));
    out[2 * k + 1] = static_cast<int16_t>(std::lround(std::clamp(r, -1.0, 1.0) * 32767.0));
  }
}

void on_need_data(GstAppSrc *appsrc, guint, gpointer user_data) noexcept {
  auto *src = static_cast<PcmSource *>(user_data);
  if (src->done) return;
  if (src->pos >= src->total_frames) {
    src->done = true;
    gst_app_src_end_of_stream(appsrc);
    return;
  }
  const size_t frames =
      static_cast<size_t>(std::min<uint64_t>(kChunkFrames, src->total_frames - src->pos));
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, frames * kChannels * sizeof(int16_t), nullptr);
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_WRITE)) {
    gst_buffer_unref(buf);
    return;
  }
  render(*src, reinterpret_cast<int16_t *>(map.data), frames);
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale_int(src->pos, GST_SECOND, kRate);
  GST_BUFFER_DURATION(buf) =
      gst_util_uint64_scale_int(src->pos + frames, GST_SECOND, kRate) - GST_BUFFER_PTS(buf);
  GST_BUFFER_OFFSET(buf) = src->pos;
  GST_BUFFER_OFFSET_END(buf) = src->pos + frames;
  src->pos += frames;
  gst_app_src_push_buffer(appsrc, buf);  // takes the buffer
}

// ---- collecting the encoded stream ----------------------------------------

// Filled by the appsink callback on the streaming thread; read by the calling
// thread only after EOS came through the bus (which orders the two).
struct Collector {
  Bytes bytes;
  std::vector<Frame> frames;  // one per buffer (ADTS / MP3 parsers output frames)
  uint64_t aac_end_ns = 0;    // TS: end of the last AAC frame entering the muxer
  bool have_aac_end = false;
};

GstFlowReturn on_new_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<Collector *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstBuffer *buf = gst_sample_get_buffer(sample);
  GstMapInfo map;
  if (buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
    Frame f;
    f.offset = c->bytes.size();
    f.pts_ns = GST_BUFFER_PTS_IS_VALID(buf) ? GST_BUFFER_PTS(buf) : 0;
    f.duration_ns = GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0;
    c->bytes.insert(c->bytes.end(), map.data, map.data + map.size);
    c->frames.push_back(f);
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

GstPadProbeReturn on_aac_buffer(GstPad *, GstPadProbeInfo *info, gpointer user_data) noexcept {
  auto *c = static_cast<Collector *>(user_data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  if (buf && GST_BUFFER_PTS_IS_VALID(buf)) {
    uint64_t end = GST_BUFFER_PTS(buf);
    if (GST_BUFFER_DURATION_IS_VALID(buf)) end += GST_BUFFER_DURATION(buf);
    c->aac_end_ns = std::max(c->aac_end_ns, end);
    c->have_aac_end = true;
  }
  return GST_PAD_PROBE_OK;
}

const char *aac_encoder() {
  static const char *const kCandidates[] = {"voaacenc", "avenc_aac", "fdkaacenc"};
  for (const char *name : kCandidates) {
    GstElementFactory *f = gst_element_factory_find(name);
    if (f) {
      gst_object_unref(f);
      return name;
    }
  }
  return nullptr;
}

// ---- MPEG-TS cut points -----------------------------------------------------

// Offset of a packet's payload, or 0 when it has none.
size_t ts_payload(const uint8_t *p) {
  const int afc = (p[3] >> 4) & 3;
  if (!(afc & 1)) return 0;
  size_t off = 4;
  if (afc & 2) off += 1 + p[4];
  return off < kTsPacket ? off : 0;
}

// Returns the section following the pointer field of a PSI packet, with its
// usable length, or nullptr.
const uint8_t *psi_section(const uint8_t *p, size_t &len) {
  const size_t off = ts_payload(p);
  if (!off) return nullptr;
  const size_t sec = off + 1 + p[off];
  if (sec + 3 > kTsPacket) return nullptr;
  const uint8_t *s = p + sec;
  const size_t section_length = ((s[1] & 0x0f) << 8) | s[2];
  len = std::min(section_length + 3, kTsPacket - sec);
  return s;
}

// Finds, in muxed TS bytes, every packet of the audio PID that starts a PES
// (moved back over the PAT/PMT packets right before it, so a segment starting
// there carries its own tables), with the PES PTS rebased to 0.
bool ts_cut_points(const Bytes &ts, std::vector<Frame> &out, std::string &error) {
  if (ts.size() % kTsPacket != 0) {
    error = "transport stream size is not a multiple of 188";
    return false;
  }
  int pmt_pid = -1;
  int audio_pid = -1;
  int64_t run_start = -1;  // first PAT/PMT packet of the run just before, -1 if none
  std::vector<std::pair<uint64_t, uint64_t>> points;  // offset, PTS (90 kHz)
  for (size_t off = 0; off < ts.size(); off += kTsPacket) {
    const uint8_t *p = ts.data() + off;
    if (p[0] != 0x47) {
      error = "lost TS sync at byte " + std::to_string(off);
      return false;
    }
    const bool pusi = p[1] & 0x40;
    const int pid = ((p[1] & 0x1f) << 8) | p[2];
    const bool is_psi = pid == 0 || pid == pmt_pid;
    if (pid == 0 && pusi) {
      size_t len = 0;
      const uint8_t *s = psi_section(p, len);
      if (s && s[0] == 0x00 && len >= 12) {
        for (size_t i = 8; i + 4 <= len - 4; i += 4) {
          const int program = (s[i] << 8) | s[i + 1];
          if (program != 0) {
            pmt_pid = ((s[i + 2] & 0x1f) << 8) | s[i + 3];
            break;
          }
        }
      }
    } else if (pid == pmt_pid && pusi) {
      size_t len = 0;
      const uint8_t *s = psi_section(p, len);
      if (s && s[0] == 0x02 && len >= 16) {
        const size_t info_len = ((s[10] & 0x0f) << 8) | s[11];
        for (size_t i = 12 + info_len; i + 5 <= len - 4;) {
          const int type = s[i];
          const int es_pid = ((s[i + 1] & 0x1f) << 8) | s[i + 2];
          const size_t es_info = ((s[i + 3] & 0x0f) << 8) | s[i + 4];
          if (audio_pid < 0 && (type == 0x0f || type == 0x11 || type == 0x03 || type == 0x04))
            audio_pid = es_pid;
          i += 5 + es_info;
        }
      }
    } else if (pid == audio_pid && pusi) {
      const size_t po = ts_payload(p);
      if (po && po + 14 <= kTsPacket && p[po] == 0 && p[po + 1] == 0 && p[po + 2] == 1 &&
          (p[po + 7] & 0x80)) {
        const uint8_t *t = p + po + 9;
        const uint64_t pts = (static_cast<uint64_t>((t[0] >> 1) & 7) << 30) |
                             (static_cast<uint64_t>(t[1]) << 22) |
                             (static_cast<uint64_t>(t[2] >> 1) << 15) |
                             (static_cast<uint64_t>(t[3]) << 7) | (t[4] >> 1);
        const uint64_t cut = run_start >= 0 ? static_cast<uint64_t>(run_start) : off;
        points.emplace_back(points.empty() ? 0 : cut, pts);
      }
    }
    if (is_psi) {
      if (run_start < 0) run_start = static_cast<int64_t>(off);
    } else {
      run_start = -1;
    }
  }
  if (points.empty()) {
    error = "no audio PES found in the transport stream";
    return false;
  }
  const uint64_t first = points.front().second;
  out.clear();
  for (const auto &[offset, pts] : points) {
    Frame f;
    f.offset = offset;
    f.pts_ns = gst_util_uint64_scale(pts >= first ? pts - first : 0, GST_SECOND, 90000);
    out.push_back(f);
  }
  return true;
}

}  // namespace

const char *form_name(Form f) {
  switch (f) {
    case Form::Adts:
      return "adts";
    case Form::Mp3:
      return "mp3";
    case Form::MpegTs:
      return "ts";
  }
  return "adts";
}

const char *form_extension(Form f) {
  switch (f) {
    case Form::Adts:
      return "aac";
    case Form::Mp3:
      return "mp3";
    case Form::MpegTs:
      return "ts";
  }
  return "bin";
}

const char *form_mime_type(Form f) {
  switch (f) {
    case Form::Adts:
      return "audio/aac";
    case Form::Mp3:
      return "audio/mpeg";
    case Form::MpegTs:
      return "video/mp2t";
  }
  return "application/octet-stream";
}

bool form_from_name(const std::string &name, Form &out) {
  if (name == "adts" || name == "aac") {
    out = Form::Adts;
  } else if (name == "mp3") {
    out = Form::Mp3;
  } else if (name == "ts" || name == "mpegts") {
    out = Form::MpegTs;
  } else {
    return false;
  }
  return true;
}

bool encode(Form form, double seconds, Encoded &out, std::string &error) {
  if (!(seconds > 0) || seconds > 24 * 3600) {
    error = "bad length: " + std::to_string(seconds) + " s";
    return false;
  }
  std::string launch =
      "appsrc name=src format=time is-live=false "
      "caps=audio/x-raw,format=S16LE,layout=interleaved,rate=44100,channels=2,"
      "channel-mask=(bitmask)0x3 ! audioconvert ! ";
  if (form == Form::Mp3) {
    launch +=
        "lamemp3enc target=bitrate bitrate=128 cbr=true encoding-engine-quality=fast ! "
        "mpegaudioparse ! audio/mpeg,mpegversion=1,layer=3,parsed=true ! ";
  } else {
    const char *enc = aac_encoder();
    if (!enc) {
      error = "no AAC encoder available (voaacenc or avenc_aac)";
      return false;
    }
    launch += std::string(enc) + " bitrate=128000 ! aacparse ! " +
              "audio/mpeg,mpegversion=4,stream-format=adts ! identity name=aac ! ";
    if (form == Form::MpegTs) launch += "mpegtsmux ! video/mpegts,packetsize=188 ! ";
  }
  launch += "appsink name=sink sync=false async=false";

  GError *err = nullptr;
  GstElement *raw = gst_parse_launch(launch.c_str(), &err);
  if (raw) gst_object_ref_sink(raw);
  ElementPtr pipeline(raw);
  if (err || !pipeline) {
    error = std::string("cannot build the ") + form_name(form) +
            " encoder: " + (err ? err->message : "unknown error");
    g_clear_error(&err);
    return false;
  }

  PcmSource pcm;
  pcm.total_frames = static_cast<uint64_t>(std::llround(seconds * kRate));
  pcm.notes = make_melody(pcm.total_frames);
  Collector col;

  ElementPtr src(gst_bin_get_by_name(GST_BIN(pipeline.get()), "src"));
  ElementPtr sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
  GstAppSrcCallbacks src_cbs = {};
  src_cbs.need_data = on_need_data;
  gst_app_src_set_callbacks(GST_APP_SRC(src.get()), &src_cbs, &pcm, nullptr);
  GstAppSinkCallbacks sink_cbs = {};
  sink_cbs.new_sample = on_new_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &sink_cbs, &col, nullptr);
  if (form == Form::MpegTs) {
    ElementPtr aac(gst_bin_get_by_name(GST_BIN(pipeline.get()), "aac"));
    GstPad *pad = gst_element_get_static_pad(aac.get(), "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_aac_buffer, &col, nullptr);
    gst_object_unref(pad);
  }

  PipelineGuard guard{pipeline.get()};
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    error = std::string("cannot start the ") + form_name(form) + " encoder";
    return false;
  }
  // Generous: encoding runs at many times real time, this only guards hangs.
  const GstClockTime timeout = 30 * GST_SECOND + static_cast<GstClockTime>(seconds * GST_SECOND);
  if (!wait_eos(pipeline.get(), timeout, "encoder", error)) return false;
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);

  if (col.bytes.empty()) {
    error = "the encoder produced no data";
    return false;
  }
  out = Encoded();
  out.form = form;
  out.sample_rate = kRate;
  out.channels = kChannels;
  if (form == Form::MpegTs) {
    if (!ts_cut_points(col.bytes, out.frames, error)) return false;
    out.duration_ns = col.have_aac_end ? col.aac_end_ns : 0;
    for (size_t i = 0; i < out.frames.size(); i++) {
      const uint64_t end = i + 1 < out.frames.size() ? out.frames[i + 1].pts_ns : out.duration_ns;
      out.frames[i].duration_ns = end > out.frames[i].pts_ns ? end - out.frames[i].pts_ns : 0;
    }
  } else {
    out.frames = std::move(col.frames);
    const uint64_t first = out.frames.front().pts_ns;
    for (Frame &f : out.frames) f.pts_ns = f.pts_ns >= first ? f.pts_ns - first : 0;
    const Frame &last = out.frames.back();
    out.duration_ns = last.pts_ns + last.duration_ns;
  }
  out.bytes = std::move(col.bytes);
  return true;
}

std::vector<Bytes> cut(const Encoded &enc, double first_s, double seg_s) {
  std::vector<Bytes> segments;
  if (enc.bytes.empty()) return segments;
  // Boundaries (byte offsets) at the cut points nearest first_s, first_s + seg_s, ...
  // A boundary is only made while the target is clearly inside the stream, so
  // encoder padding never yields a sliver of a last segment.
  std::vector<uint64_t> bounds;
  const uint64_t end_ns = enc.duration_ns;
  const uint64_t margin_ns = 100 * GST_MSECOND;
  size_t next = 1;  // frames before `next` are already used
  for (int k = 0; first_s > 0 && seg_s > 0; k++) {
    const double target_s = first_s + k * seg_s;
    const uint64_t target = static_cast<uint64_t>(target_s * GST_SECOND);
    if (target + margin_ns >= end_ns) break;
    size_t best = enc.frames.size();
    for (size_t i = next; i < enc.frames.size(); i++) {
      const uint64_t pts = enc.frames[i].pts_ns;
      if (best == enc.frames.size() ||
          (pts > target ? pts - target : target - pts) < (enc.frames[best].pts_ns > target
                                                              ? enc.frames[best].pts_ns - target
                                                              : target - enc.frames[best].pts_ns)) {
        best = i;
      }
      if (pts > target) break;
    }
    if (best >= enc.frames.size()) break;
    const uint64_t off = enc.frames[best].offset;
    if (off == 0 || off >= enc.bytes.size() || (!bounds.empty() && off <= bounds.back())) break;
    bounds.push_back(off);
    next = best + 1;
  }
  uint64_t start = 0;
  bounds.push_back(enc.bytes.size());
  for (uint64_t b : bounds) {
    segments.emplace_back(enc.bytes.begin() + static_cast<std::ptrdiff_t>(start),
                          enc.bytes.begin() + static_cast<std::ptrdiff_t>(b));
    start = b;
  }
  return segments;
}

namespace {

struct DecodeCount {
  uint64_t frames = 0;  // PCM frames seen by the sink
  int rate = 0;
};

GstFlowReturn on_decoded_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<DecodeCount *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstAudioInfo info;
  GstCaps *caps = gst_sample_get_caps(sample);
  GstBuffer *buf = gst_sample_get_buffer(sample);
  if (caps && buf && gst_audio_info_from_caps(&info, caps) && GST_AUDIO_INFO_BPF(&info) > 0) {
    c->frames += gst_buffer_get_size(buf) / GST_AUDIO_INFO_BPF(&info);
    c->rate = GST_AUDIO_INFO_RATE(&info);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

}  // namespace

bool decoded_duration(const Bytes &bytes, uint64_t &duration_ns, std::string &error) {
  GError *err = nullptr;
  GstElement *raw = gst_parse_launch(
      "appsrc name=src format=bytes ! decodebin ! audioconvert ! "
      "audio/x-raw,format=S16LE ! appsink name=sink sync=false async=false",
      &err);
  if (raw) gst_object_ref_sink(raw);
  ElementPtr pipeline(raw);
  if (err || !pipeline) {
    error = std::string("cannot build the decoder: ") + (err ? err->message : "unknown error");
    g_clear_error(&err);
    return false;
  }
  DecodeCount count;
  ElementPtr src(gst_bin_get_by_name(GST_BIN(pipeline.get()), "src"));
  ElementPtr sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
  GstAppSinkCallbacks sink_cbs = {};
  sink_cbs.new_sample = on_decoded_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &sink_cbs, &count, nullptr);
  g_object_set(src.get(), "max-bytes", static_cast<guint64>(0), nullptr);

  PipelineGuard guard{pipeline.get()};
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    error = "cannot start the decoder";
    return false;
  }
  GstBuffer *buf = gst_buffer_new_memdup(bytes.data(), bytes.size());
  gst_app_src_push_buffer(GST_APP_SRC(src.get()), buf);
  gst_app_src_end_of_stream(GST_APP_SRC(src.get()));
  if (!wait_eos(pipeline.get(), 60 * GST_SECOND, "decoder", error)) return false;
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
  if (count.rate <= 0) {
    error = "the decoder produced no audio";
    return false;
  }
  duration_ns = gst_util_uint64_scale_int(count.frames, GST_SECOND, count.rate);
  return true;
}

bool melody_pcm(double seconds, Bytes &s16le, std::string &error) {
  if (!(seconds > 0) || seconds > 24 * 3600) {
    error = "bad length: " + std::to_string(seconds) + " s";
    return false;
  }
  PcmSource pcm;
  pcm.total_frames = static_cast<uint64_t>(std::llround(seconds * kRate));
  pcm.notes = make_melody(pcm.total_frames);
  s16le.assign(pcm.total_frames * kChannels * sizeof(int16_t), 0);
  std::vector<int16_t> chunk(kChunkFrames * kChannels);
  while (pcm.pos < pcm.total_frames) {
    const size_t frames =
        static_cast<size_t>(std::min<uint64_t>(kChunkFrames, pcm.total_frames - pcm.pos));
    render(pcm, chunk.data(), frames);
    uint8_t *dst = s16le.data() + pcm.pos * kChannels * sizeof(int16_t);
    for (size_t i = 0; i < frames * kChannels; i++) {
      const uint16_t v = static_cast<uint16_t>(chunk[i]);
      dst[2 * i] = static_cast<uint8_t>(v & 0xff);
      dst[2 * i + 1] = static_cast<uint8_t>(v >> 8);
    }
    pcm.pos += frames;
  }
  return true;
}

}  // namespace segdl::media
