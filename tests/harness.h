// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — shared helpers: fixtures made once per process, an
 * in-process reference server, and a pipeline runner that collects output
 * bytes and bus messages with bounded waits (never sleeps).
 */
#pragma once

#include "common/mediagen.h"
#include "segdl/clock.h"
#include "server/server.h"

#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <gst/gst.h>

#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace segdl::test {

using media::Bytes;

// ---- Fixtures shared on disk ----------------------------------------------
// gst-check forks every test case, so a cache in the process alone would
// encode again in every child. With SEGDL_FIXTURE_CACHE (a folder in the
// build tree) and SEGDL_FIXTURE_GEN (a hash of the generator's sources, both
// set by tests/meson.build), an encode is kept in a file named by what it
// is, written atomically, and read back only when its key (generator hash,
// encoder plugin versions, form, length) and its SHA-256 match. Without them
// every process encodes.
namespace fixture_file {

inline void put_u64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; i++) out.push_back(char((v >> (8 * i)) & 0xff));
}

inline void put_bytes(std::string &out, const void *data, size_t len) {
  put_u64(out, len);
  out.append(static_cast<const char *>(data), len);
}

// Reads a file's fields in order; any read past the end fails it for good.
struct Reader {
  const std::string &in;
  size_t pos;
  size_t end;
  bool ok = true;
  uint64_t u64() {
    uint64_t v = 0;
    if (!ok || end - pos < 8) {
      ok = false;
      return 0;
    }
    for (int i = 0; i < 8; i++) v |= uint64_t(uint8_t(in[pos + i])) << (8 * i);
    pos += 8;
    return v;
  }
  // A count of items of at least `item` bytes each that the rest can hold.
  size_t count(size_t item) {
    uint64_t n = u64();
    if (n > (end - pos) / item) ok = false;
    return ok ? size_t(n) : 0;
  }
  Bytes bytes() {
    size_t n = count(1);
    Bytes b(in.begin() + long(pos), in.begin() + long(pos + n));
    pos += n;
    return b;
  }
};

inline std::string sha256(const std::string &data, size_t len) {
  gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256,
                                           reinterpret_cast<const guchar *>(data.data()), len);
  std::string out(hex);
  g_free(hex);
  return out;
}

// What decides the bytes besides the caller's form and length: the
// generator's sources and the encoders' plugins.
inline std::string key(const std::string &what, const char *gen) {
  std::string k = "segdl-fixture-2 " + what + " gen=" + gen;
  for (const char *name : {"voaacenc", "avenc_aac", "lamemp3enc", "opusenc", "vorbisenc",
                           "mpegtsmux", "aacparse", "mpegaudioparse", "opusparse"}) {
    GstElementFactory *f = gst_element_factory_find(name);
    if (!f) continue;
    GstPlugin *plugin = gst_plugin_feature_get_plugin(GST_PLUGIN_FEATURE(f));
    k += std::string(" ") + name + "=" + (plugin ? gst_plugin_get_version(plugin) : "?");
    if (plugin) gst_object_unref(plugin);
    gst_object_unref(f);
  }
  return k;
}

// The file NAME of the cache: its key, NUL, the payload, then the SHA-256
// (hex) of all before it. `parse` reads a payload (false: not usable);
// `make` encodes and gives the payload to keep. False only when `make` is.
inline bool load_or_make(const std::string &name, const std::string &what,
                         const std::function<bool(Reader &)> &parse,
                         const std::function<bool(std::string &)> &make) {
  const char *dir = g_getenv("SEGDL_FIXTURE_CACHE");
  const char *gen = g_getenv("SEGDL_FIXTURE_GEN");
  std::string payload;
  if (!dir || !*dir || !gen || !*gen) return make(payload);
  constexpr size_t kHex = 64;
  const std::string k = key(what, gen);
  const std::string path = std::string(dir) + "/" + name + ".fixture";
  gchar *data = nullptr;
  gsize len = 0;
  if (g_file_get_contents(path.c_str(), &data, &len, nullptr)) {
    const std::string in(data, len);
    g_free(data);
    if (in.size() >= k.size() + 1 + kHex &&
        in.compare(in.size() - kHex, kHex, sha256(in, in.size() - kHex)) == 0 &&
        in.compare(0, k.size() + 1, k.c_str(), k.size() + 1) == 0) {
      Reader r{in, k.size() + 1, in.size() - kHex};
      if (parse(r) && r.ok && r.pos == r.end) return true;
    }
  }
  if (!make(payload)) return false;
  std::string file = k;
  file.push_back('\0');
  file += payload;
  file += sha256(file, file.size());
  // Written to a temporary file and renamed: a reader never sees half of it.
  GError *err = nullptr;
  if (g_mkdir_with_parents(dir, 0755) != 0 ||
      !g_file_set_contents(path.c_str(), file.data(), gssize(file.size()), &err))
    g_warning("fixture cache %s not written: %s", path.c_str(),
              err ? err->message : g_strerror(errno));
  g_clear_error(&err);
  return true;
}

inline bool encoded(media::Form form, double seconds, media::Encoded &enc, std::string &error) {
  const int ms = int(seconds * 1000);
  const std::string what =
      std::string("encoded ") + media::form_name(form) + " " + std::to_string(ms);
  auto parse = [&](Reader &r) {
    enc = media::Encoded();
    enc.form = media::Form(r.u64());
    enc.duration_ns = r.u64();
    enc.sample_rate = int(r.u64());
    enc.channels = int(r.u64());
    enc.frames.resize(r.count(24));
    for (media::Frame &f : enc.frames) {
      f.offset = r.u64();
      f.pts_ns = r.u64();
      f.duration_ns = r.u64();
    }
    enc.bytes = r.bytes();
    return enc.form == form;
  };
  auto make = [&](std::string &out) {
    if (!media::encode(form, seconds, enc, error)) return false;
    put_u64(out, uint64_t(enc.form));
    put_u64(out, enc.duration_ns);
    put_u64(out, uint64_t(enc.sample_rate));
    put_u64(out, uint64_t(enc.channels));
    put_u64(out, enc.frames.size());
    for (const media::Frame &f : enc.frames) {
      put_u64(out, f.offset);
      put_u64(out, f.pts_ns);
      put_u64(out, f.duration_ns);
    }
    put_bytes(out, enc.bytes.data(), enc.bytes.size());
    return true;
  };
  return load_or_make(std::string(media::form_name(form)) + "-" + std::to_string(ms), what, parse,
                      make);
}

}  // namespace fixture_file

// One encode per form and length per build (see fixture_file above), and
// once per process in memory.
inline const media::Encoded &fixture(media::Form form, double seconds = 10.5) {
  static std::mutex lock;
  static std::map<std::pair<int, int>, media::Encoded> cache;
  std::lock_guard<std::mutex> guard(lock);
  auto key = std::make_pair(int(form), int(seconds * 1000));
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  media::Encoded enc;
  std::string error;
  if (!fixture_file::encoded(form, seconds, enc, error)) g_error("fixture: %s", error.c_str());
  return cache.emplace(key, std::move(enc)).first->second;
}

inline Bytes concat(const std::vector<Bytes> &segs) {
  Bytes all;
  for (const Bytes &s : segs) all.insert(all.end(), s.begin(), s.end());
  return all;
}

// A track cut 1.5 s + 3 s (short, so the suite is quick; the element never
// assumes 15 s + 30 s).
inline server::Track make_track(media::Form form, double seconds = 10.5) {
  const media::Encoded &enc = fixture(form, seconds);
  server::Track t;
  for (Bytes &b : media::cut(enc, 1.5, 3.0)) t.segments.push_back(std::move(b));
  t.mime_type = media::form_mime_type(form);
  t.first_segment_duration = 1.5;
  t.segment_duration = 3.0;
  t.duration = double(enc.duration_ns) / 1e9;
  return t;
}

// A scripted server fault (see server::Fault).
inline server::Fault fault(const std::string &kind, const std::string &id, int64_t segment = -1,
                           int count = 1, double arg = 0) {
  server::Fault f;
  f.kind = kind;
  f.video_id = id;
  f.segment = segment;
  f.count = count;
  f.arg = arg;
  return f;
}

inline std::unique_ptr<server::Server> start_server(server::Options opts = server::Options()) {
  auto srv = std::make_unique<server::Server>(opts);
  std::string error;
  if (!srv->start(error)) g_error("server: %s", error.c_str());
  return srv;
}

// A started server (`opts`) serving make_track(Adts) as `id`, with the track
// and the bytes join=bytes outputs for it (its segments concatenated).
struct Served {
  std::unique_ptr<server::Server> srv;
  server::Track track;
  Bytes bytes;
};
inline Served serve_adts(server::Options opts, const std::string &id) {
  Served s{start_server(std::move(opts)), make_track(media::Form::Adts), {}};
  s.bytes = concat(s.track.segments);
  s.srv->add_track(id, s.track);
  return s;
}

// What a pipeline run produced.
struct Run {
  Bytes bytes;                    // from the appsink named "sink", if any
  std::vector<Bytes> frames;      // the same, buffer by buffer
  std::vector<GstClockTime> pts;  // of the sink's buffers
  std::vector<GstClockTime> durations;
  std::vector<bool> discont;
  std::vector<bool> header;           // buffers flagged HEADER (codec headers, not frames)
  GstClockTime decoded_duration = 0;  // sum of buffer durations at the sink
  bool eos = false;
  GError *error = nullptr;  // first ERROR, if any
  std::string error_debug;
  GstStructure *error_details = nullptr;
  std::vector<int> buffering;         // BUFFERING percentages in order
  int duration_changed = 0;           // DURATION_CHANGED messages
  std::vector<std::string> warnings;  // WARNING texts in order
  std::vector<std::string> elements;  // names of ELEMENT messages' structures
  std::vector<GstCaps *> caps;        // caps the sink got, in order (owned)
  bool timed_out = false;

  Run() = default;
  Run(const Run &) = delete;
  ~Run() {
    for (GstCaps *c : caps) gst_caps_unref(c);
    g_clear_error(&error);
    if (error_details) gst_structure_free(error_details);
  }
};

struct SinkData {
  std::mutex lock;
  Bytes bytes;
  std::vector<Bytes> frames;
  std::vector<GstClockTime> pts;
  std::vector<GstClockTime> durations;
  std::vector<bool> discont;
  std::vector<bool> header;
  std::vector<GstCaps *> caps;
  GstClockTime duration = 0;
  ~SinkData() { clear(); }
  void clear() {
    for (GstCaps *c : caps) gst_caps_unref(c);
    caps.clear();
    header.clear();
    bytes.clear();
    frames.clear();
    pts.clear();
    durations.clear();
    discont.clear();
    duration = 0;
  }
};

inline GstFlowReturn on_new_sample(GstAppSink *sink, gpointer data) noexcept {
  auto *sd = static_cast<SinkData *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_ERROR;
  GstBuffer *buf = gst_sample_get_buffer(sample);
  GstCaps *caps = gst_sample_get_caps(sample);
  {
    std::lock_guard<std::mutex> guard(sd->lock);
    if (caps && (sd->caps.empty() || !gst_caps_is_equal(sd->caps.back(), caps)))
      sd->caps.push_back(gst_caps_ref(caps));
  }
  GstMapInfo map;
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    std::lock_guard<std::mutex> guard(sd->lock);
    sd->bytes.insert(sd->bytes.end(), map.data, map.data + map.size);
    sd->frames.emplace_back(map.data, map.data + map.size);
    sd->pts.push_back(GST_BUFFER_PTS(buf));
    sd->durations.push_back(GST_BUFFER_DURATION(buf));
    sd->discont.push_back(GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT));
    sd->header.push_back(GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_HEADER));
    if (GST_BUFFER_DURATION_IS_VALID(buf)) sd->duration += GST_BUFFER_DURATION(buf);
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

// Plays `pipeline` to EOS or ERROR, at most `timeout_s`; then sets NULL.
// With `before_play`, the pipeline is prerolled (PAUSED) first and the
// callback runs then (to seek, say); what the sink got before it is dropped.
inline void run_pipeline(GstElement *pipeline, Run &run, double timeout_s = 30,
                         const std::function<void(GstElement *)> &before_play = {}) {
  SinkData sd;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  if (sink && GST_IS_APP_SINK(sink)) {
    GstAppSinkCallbacks cbs = {};
    cbs.new_sample = on_new_sample;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, &sd, nullptr);
  }
  GstBus *bus = gst_element_get_bus(pipeline);
  if (before_play) {
    fail_unless(gst_element_set_state(pipeline, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int(gst_element_get_state(pipeline, nullptr, nullptr, 20 * GST_SECOND),
                           GST_STATE_CHANGE_SUCCESS);
    before_play(pipeline);
    std::lock_guard<std::mutex> guard(sd.lock);
    sd.clear();
  }
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  gint64 deadline = g_get_monotonic_time() + gint64(timeout_s * G_USEC_PER_SEC);
  for (;;) {
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0) {
      run.timed_out = true;
      break;
    }
    GstMessage *msg = gst_bus_timed_pop_filtered(
        bus, GstClockTime(left) * GST_USECOND,
        GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_BUFFERING |
                       GST_MESSAGE_DURATION_CHANGED | GST_MESSAGE_WARNING | GST_MESSAGE_ELEMENT));
    if (!msg) {
      run.timed_out = true;
      break;
    }
    bool done = false;
    switch (GST_MESSAGE_TYPE(msg)) {
      case GST_MESSAGE_EOS:
        run.eos = true;
        done = true;
        break;
      case GST_MESSAGE_ERROR: {
        gchar *dbg = nullptr;
        gst_message_parse_error(msg, &run.error, &dbg);
        run.error_debug = dbg ? dbg : "";
        g_free(dbg);
        const GstStructure *details = nullptr;
        gst_message_parse_error_details(msg, &details);
        if (details) run.error_details = gst_structure_copy(details);
        done = true;
        break;
      }
      case GST_MESSAGE_DURATION_CHANGED:
        run.duration_changed++;
        break;
      case GST_MESSAGE_ELEMENT:
        if (const GstStructure *st = gst_message_get_structure(msg))
          run.elements.push_back(gst_structure_get_name(st));
        break;
      case GST_MESSAGE_WARNING: {
        GError *w = nullptr;
        gst_message_parse_warning(msg, &w, nullptr);
        run.warnings.push_back(w ? w->message : "");
        g_clear_error(&w);
        break;
      }
      case GST_MESSAGE_BUFFERING: {
        gint pct = 0;
        gst_message_parse_buffering(msg, &pct);
        run.buffering.push_back(pct);
        break;
      }
      default:
        break;
    }
    gst_message_unref(msg);
    if (done) break;
  }
  fail_unless(gst_element_set_state(pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(bus);
  if (sink) gst_object_unref(sink);
  std::lock_guard<std::mutex> guard(sd.lock);
  run.bytes = std::move(sd.bytes);
  run.frames = std::move(sd.frames);
  run.pts = std::move(sd.pts);
  run.durations = std::move(sd.durations);
  run.discont = std::move(sd.discont);
  run.header = std::move(sd.header);
  run.caps = std::move(sd.caps);
  sd.caps.clear();
  run.decoded_duration = sd.duration;
}

// "segdlsrc name=src ... ! <tail>" with the backend and id set.
inline GstElement *make_pipeline(const std::string &backend, const std::string &id,
                                 const std::string &src_props, const std::string &tail) {
  std::string desc =
      "segdlsrc name=src poll-interval=0.1 retry-backoff=0.05 " + src_props + " ! " + tail;
  GError *err = nullptr;
  GstElement *p = gst_parse_launch(desc.c_str(), &err);
  if (!p) g_error("pipeline '%s': %s", desc.c_str(), err ? err->message : "?");
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  g_object_set(src, "backend-url", backend.c_str(), "video-id", id.c_str(), nullptr);
  gst_object_unref(src);
  return p;
}

// Hands the segdlsrc named "src" an engine clock (the GObject data
// "segdl-engine-clock", tests only) before it starts; `clock` must outlive
// the pipeline's engine.
inline void use_engine_clock(GstElement *pipeline, segdl::EngineClock &clock) {
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  fail_unless(src != nullptr, "no element named src");
  g_object_set_data(G_OBJECT(src), "segdl-engine-clock", &clock);
  gst_object_unref(src);
}

// The `stats` of the segdlsrc named "src" (after run_pipeline()); the
// caller frees it.
inline GstStructure *stats_of(GstElement *pipeline) {
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  fail_unless(src != nullptr, "no element named src");
  GstStructure *stats = nullptr;
  g_object_get(src, "stats", &stats, nullptr);
  gst_object_unref(src);
  fail_unless(stats != nullptr, "no stats");
  return stats;
}

}  // namespace segdl::test
