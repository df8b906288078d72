// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — one track through segdlsrc (see download.h). */
#include "download.h"

#include "commands.h"
#include "migrate.h"
#include "output.h"
#include "plugin.h"
#include "segdl/cache.h"
#include "segdl/log.h"

#include <glib/gstdio.h>
#include <gst/base/gstaggregator.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace segdl::cli {

namespace {

constexpr guint kTickMs = 200;

// How segdlsrc's WARNING begins when the fallback URL takes over
// (docs/element.md): "Switching to the fallback URL: CAUSE".
constexpr const char *kFallbackWarning = "Switching to the fallback URL: ";

// "waiting for the backend" only once nothing has come for this long (and
// nothing listed is left to fetch, and the track is not all in): a pause
// between two ticks within a download, or a segment's message landing after
// its bytes, is no change.
constexpr int64_t kWaitingAfterUs = G_USEC_PER_SEC;

// How much of the stream an aggregator muxer (mp4mux) may queue on its pad.
// With GstAggregator's default latency of 0 a non-live pad holds ONE buffer:
// the streaming thread hands every AAC frame to the muxer's own thread and
// waits for it, two thread switches a frame (190 000 context switches for a
// 20-minute track, half of segdl --combine's CPU; docs/benchmarks.md). With
// room for 5 s of frames the streaming thread runs ahead and the muxer's
// thread drains batches. Only the queue changes: the file is the same.
constexpr guint64 kMuxerQueueNs = 5 * GST_SECOND;

int64_t get_i64(const GstStructure *s, const char *field) {
  gint64 v = 0;
  return s && gst_structure_get_int64(s, field, &v) ? v : 0;
}

bool get_bool(const GstStructure *s, const char *field) {
  gboolean v = FALSE;
  return s && gst_structure_get_boolean(s, field, &v) && v;
}

Snapshot snapshot_from(const GstStructure *s) {
  Snapshot out;
  gint64 total = -1;
  if (s && gst_structure_get_int64(s, "segments-total", &total)) out.total = total;
  out.available = get_i64(s, "segments-available");
  out.done = get_i64(s, "segments-downloaded");
  out.bytes = get_i64(s, "bytes-downloaded");
  out.retries = get_i64(s, "retries");
  out.cache_hits = get_i64(s, "cache-hits");
  out.gaps = get_i64(s, "gaps");
  out.complete = get_bool(s, "complete");
  out.offline = get_bool(s, "offline");
  out.fallback = get_bool(s, "fallback");
  return out;
}

// Exit code for an ERROR posted by segdlsrc (docs/element.md, Messages).
int classify_source_error(const GError *err, const GstStructure *details, int64_t segments_done) {
  gint64 segment = -1;
  guint http = 0;
  if (details) {
    gst_structure_get_int64(details, "segment", &segment);
    gst_structure_get_uint(details, "http-status-code", &http);
    // A status failure (its details may carry the consumer's segment).
    const char *uri = gst_structure_get_string(details, "uri");
    if (uri && strstr(uri, "/status?")) segment = -1;
  }
  if (err->domain == GST_RESOURCE_ERROR) {
    switch (err->code) {
      case GST_RESOURCE_ERROR_SETTINGS:
        return kExitUsage;
      case GST_RESOURCE_ERROR_NOT_AUTHORIZED:
      case GST_RESOURCE_ERROR_FAILED:
        return kExitBackend;
      case GST_RESOURCE_ERROR_NOT_FOUND:
        return segment < 0 ? kExitBackend : kExitIncomplete;
      case GST_RESOURCE_ERROR_OPEN_READ:
      case GST_RESOURCE_ERROR_READ:
        // No answer at all before anything arrived: the backend is unreachable.
        if (segment < 0 || (http == 0 && segments_done == 0)) return kExitBackend;
        return kExitIncomplete;
      case GST_RESOURCE_ERROR_NO_SPACE_LEFT:
      case GST_RESOURCE_ERROR_WRITE:
      case GST_RESOURCE_ERROR_OPEN_WRITE:
        return kExitLocalIo;
      default:
        return kExitFailed;
    }
  }
  if (err->domain == GST_STREAM_ERROR || err->domain == GST_CORE_ERROR) return kExitMedia;
  return kExitFailed;
}

// Exit code for an ERROR posted by another element (muxer, filesink, sink).
int classify_other_error(const GError *err) {
  if (err->domain == GST_RESOURCE_ERROR) return kExitLocalIo;
  if (err->domain == GST_STREAM_ERROR || err->domain == GST_CORE_ERROR) return kExitMedia;
  return kExitFailed;
}

// The OS's words for a filesink write failure. GStreamer 1.22's filesink
// posts NO_SPACE_LEFT for ENOSPC and otherwise WRITE ("Could not write to
// resource.") with g_strerror(errno) at the end of the debug text.
std::string write_failure_cause(const GError *err, const char *debug) {
  if (err->domain == GST_RESOURCE_ERROR && err->code == GST_RESOURCE_ERROR_NO_SPACE_LEFT)
    return g_strerror(ENOSPC);
  std::string best;  // the longest errno text the debug text ends with
  for (int e = 1; debug && e < 256; e++) {
    const char *text = g_strerror(e);
    if (!g_str_has_prefix(text, "Unknown error") && g_str_has_suffix(debug, text) &&
        strlen(text) > best.size())
      best = text;
  }
  return best.empty() ? err->message : best;
}

bool is_filesink(GstObject *obj) {
  if (!GST_IS_ELEMENT(obj)) return false;
  GstElementFactory *f = gst_element_get_factory(GST_ELEMENT(obj));
  return f && g_strcmp0(gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(f)), "filesink") == 0;
}

}  // namespace

Download::Download(const Options &opts, const std::string &id, size_t position, size_t count,
                   Progress &progress)
    : opts_(opts), id_(id), position_(position), count_(count), progress_(progress) {}

Download::~Download() {
  if (tick_source_) g_source_remove(tick_source_);
  if (bus_watch_) g_source_remove(bus_watch_);
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
  }
  if (loop_) g_main_loop_unref(loop_);
}

int Download::run() {
  start_us_ = g_get_monotonic_time();
  last_move_us_ = start_us_;
  progress_.start(id_, position_, count_, opts_.backend_url);
  made_dir_ = !g_file_test(opts_.download_dir.c_str(), G_FILE_TEST_IS_DIR);
  if (g_mkdir_with_parents(opts_.download_dir.c_str(), 0755) != 0) {
    const int e = errno;
    progress_.error(kExitLocalIo,
                    "cannot create the download dir " + opts_.download_dir + ": " + g_strerror(e),
                    "");
    return kExitLocalIo;
  }
  if (!codec_fits_output()) return exit_code_;
  if (opts_.migrate) migrate_old_download_dir(opts_.download_dir, id_, progress_);
  std::string error;
  if (!build(error)) {
    progress_.error(kExitFailed, error, "");
    return kExitFailed;
  }
  loop_ = g_main_loop_new(nullptr, FALSE);
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(pipeline_));
  bus_watch_ = gst_bus_add_watch(bus, bus_cb, this);
  gst_object_unref(bus);
  tick_source_ = g_timeout_add(kTickMs, tick_cb, this);
  progress_.state("waiting");
  // A failure to start is also posted as an ERROR on the bus, handled there.
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  if (exit_code_ < 0) g_main_loop_run(loop_);
  return exit_code_;
}

// --combine OUT: when the backend's status names the codec (mime_type), an
// OUT that cannot hold it is refused before any segment is downloaded. With
// a status that does not say, the check comes with segment 0's caps.
bool Download::codec_fits_output() {
  if (opts_.combine.empty() || opts_.combine == "auto") return true;
  Status status;
  std::string error;
  if (!fetch_status(opts_, id_, status, error)) {
    if (exit_code_ >= 0) return false;  // interrupted
    return true;                        // segdlsrc reports a backend failure itself
  }
  GstCaps *caps = caps_for_mime_type(status.mime_type);
  if (!caps) return true;
  OutputChain chain;
  const bool ok = plan_output(path_extension(opts_.combine), caps, chain, error);
  gst_caps_unref(caps);
  if (!ok) {
    progress_.error(kExitUsage, error, "the backend's status says " + status.mime_type);
    exit_code_ = kExitUsage;
  }
  return ok;
}

bool Download::build(std::string &error) {
  if (!ensure_segdlsrc(error)) return false;
  pipeline_ = gst_pipeline_new("segdl");
  src_ = gst_element_factory_make("segdlsrc", "src");
  tee_ = gst_element_factory_make("tee", "tee");
  if (!src_ || !tee_) {
    error = src_ ? "GStreamer's tee element is missing"
                 : "the segdlsrc element is not installed (see GST_PLUGIN_PATH)";
    if (src_) gst_object_unref(src_);
    if (tee_) gst_object_unref(tee_);
    src_ = tee_ = nullptr;
    return false;
  }
  g_object_set(src_, "backend-url", opts_.backend_url.c_str(), "video-id", id_.c_str(), "cache-dir",
               opts_.download_dir.c_str(), "max-concurrent", guint(opts_.concurrent),
               "poll-interval", opts_.poll_interval, "max-retries", guint(opts_.max_retries),
               "max-wait", opts_.max_wait, "monitor", gboolean(opts_.monitor), nullptr);
  if (!opts_.user_agent.empty())
    g_object_set(src_, "user-agent", opts_.user_agent.c_str(), nullptr);
  if (!opts_.fallback_url.empty())
    g_object_set(src_, "fallback-uri", opts_.fallback_url.c_str(), nullptr);
  if (!opts_.missing_segment.empty())
    gst_util_set_object_arg(G_OBJECT(src_), "missing-segment", opts_.missing_segment.c_str());
  gst_bin_add_many(GST_BIN(pipeline_), src_, tee_, nullptr);
  if (!gst_element_link(src_, tee_)) {
    error = "could not link segdlsrc to tee";
    return false;
  }
  if (opts_.play && !add_play_branch(error)) return false;
  if (!opts_.combine.empty()) {
    GstPad *pad = gst_element_get_static_pad(src_, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, caps_probe_cb, this, nullptr);
    gst_object_unref(pad);
  } else if (!opts_.play) {
    // Only filling the download dir: the frames go nowhere, as fast as they come.
    GstElement *sink = gst_element_factory_make("fakesink", "sink");
    g_object_set(sink, "sync", FALSE, nullptr);
    gst_bin_add(GST_BIN(pipeline_), sink);
    if (!gst_element_link(tee_, sink)) {
      error = "could not link the fakesink";
      return false;
    }
  }
  return true;
}

// decodebin's audio pad goes to audioconvert (the element in user_data).
static void on_decoded_pad(GstElement *, GstPad *pad, gpointer convert) noexcept {
  GstPad *sink = gst_element_get_static_pad(GST_ELEMENT(convert), "sink");
  if (!gst_pad_is_linked(sink)) gst_pad_link(pad, sink);
  gst_object_unref(sink);
}

// tee ! queue ! decodebin ! audioconvert ! audioresample ! SINK, where SINK
// is autoaudiosink or $SEGDL_AUDIO_SINK (a gst-launch description).
bool Download::add_play_branch(std::string &error) {
  const char *desc = g_getenv("SEGDL_AUDIO_SINK");
  GError *err = nullptr;
  GstElement *sink = desc && *desc ? gst_parse_bin_from_description(desc, TRUE, &err)
                                   : gst_element_factory_make("autoaudiosink", nullptr);
  if (!sink) {
    error = std::string("cannot make the audio sink: ") + (err ? err->message : "no autoaudiosink");
    g_clear_error(&err);
    return false;
  }
  GstElement *queue = gst_element_factory_make("queue", nullptr);
  GstElement *decode = gst_element_factory_make("decodebin", nullptr);
  GstElement *convert = gst_element_factory_make("audioconvert", nullptr);
  GstElement *resample = gst_element_factory_make("audioresample", nullptr);
  GstElement *all[] = {queue, decode, convert, resample, sink};
  for (GstElement *e : all)
    if (!e) {
      for (GstElement *o : all)
        if (o) gst_object_unref(o);
      error = "cannot play: queue, decodebin, audioconvert or audioresample is missing";
      return false;
    }
  for (GstElement *e : all) gst_bin_add(GST_BIN(pipeline_), e);
  g_signal_connect(decode, "pad-added", G_CALLBACK(on_decoded_pad), convert);
  // The first decoded buffer: playback has started ("playing" event).
  GstPad *pad = gst_element_get_static_pad(convert, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, first_audio_cb, this, nullptr);
  gst_object_unref(pad);
  if (!gst_element_link_many(tee_, queue, decode, nullptr) ||
      !gst_element_link_many(convert, resample, sink, nullptr)) {
    error = "could not link the playback branch";
    return false;
  }
  return true;
}

GstPadProbeReturn Download::first_audio_cb(GstPad *, GstPadProbeInfo *, gpointer data) noexcept {
  static_cast<Download *>(data)->post_app("segdl-playing", "");
  return GST_PAD_PROBE_REMOVE;
}

GstPadProbeReturn Download::caps_probe_cb(GstPad *, GstPadProbeInfo *info, gpointer data) noexcept {
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(ev) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
  GstCaps *caps = nullptr;
  gst_event_parse_caps(ev, &caps);
  static_cast<Download *>(data)->attach_output(caps);
  return GST_PAD_PROBE_REMOVE;  // the caps event goes on, to the new branch
}

// Streaming thread, before the caps reach the tee: picks the muxer for the
// codec and the extension, adds [queue !] MUXER ! filesink location=OUT.part.
void Download::attach_output(GstCaps *caps) {
  std::string out = opts_.combine;
  if (out == "auto") out = file_name_for_id(id_) + "." + natural_extension(caps);
  const std::string part = out + ".part";
  std::string error;
  OutputChain plan;
  if (!plan_output(path_extension(out), caps, plan, error)) {
    // The container cannot hold the codec: the frames go nowhere, and the
    // main thread stops once segment 0 is whole in the download dir.
    std::string discard_error;
    if (!link_discard_branch(discard_error)) error += "; " + discard_error;
    post_app("segdl-combine-codec", error);
    return;
  }
  // --combine auto: a file of that name may be anything (an OUT the user
  // named is replaced, as asked): it is kept unless --overwrite.
  if (opts_.combine == "auto" && !opts_.overwrite && g_file_test(out.c_str(), G_FILE_TEST_EXISTS)) {
    error = "--combine: " + out + " exists; give --overwrite to replace it";
    std::string discard_error;
    if (!link_discard_branch(discard_error)) error += "; " + discard_error;
    post_app("segdl-combine-error", error);
    return;
  }
  if (!link_output_chain(path_extension(out), caps, part, error)) {
    post_app("segdl-combine-error", error);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    out_path_ = out;
    part_path_ = part;
  }
  post_app("segdl-output", out, codec_name(caps));
}

// tee ! fakesink: where the frames go when --combine cannot take them.
bool Download::link_discard_branch(std::string &error) {
  GstElement *sink = gst_element_factory_make("fakesink", nullptr);
  if (!sink) {
    error = "GStreamer's fakesink is missing";
    return false;
  }
  g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add(GST_BIN(pipeline_), sink);
  GstPad *teepad = gst_element_request_pad_simple(tee_, "src_%u");
  GstPad *sinkpad = gst_element_get_static_pad(sink, "sink");
  const bool ok = gst_pad_link(teepad, sinkpad) == GST_PAD_LINK_OK;
  gst_object_unref(sinkpad);
  gst_object_unref(teepad);
  gst_element_sync_state_with_parent(sink);
  if (!ok) error = "could not link the fakesink";
  return ok;
}

// Links `from` (a src pad) to `to`, choosing the sink pad (a muxer's request
// pad) that takes `caps`.
static bool link_pad_to(GstPad *from, GstElement *to, GstCaps *caps) {
  GstPad *sink = gst_element_get_compatible_pad(to, from, caps);
  if (!sink) return false;
  const bool ok = gst_pad_link(from, sink) == GST_PAD_LINK_OK;
  gst_object_unref(sink);
  return ok;
}

bool Download::link_output_chain(const std::string &ext, GstCaps *caps, const std::string &part,
                                 std::string &error) {
  OutputChain chain;
  if (!plan_output(ext, caps, chain, error)) return false;
  std::vector<GstElement *> elems;
  if (opts_.play) elems.push_back(gst_element_factory_make("queue", nullptr));
  for (const std::string &f : chain.factories) {
    GstElement *e = gst_element_factory_make(f.c_str(), nullptr);
    if (e && GST_IS_AGGREGATOR(e)) g_object_set(e, "latency", kMuxerQueueNs, nullptr);
    elems.push_back(e);
  }
  if (!chain.caps_after.empty()) {
    GstElement *filter = gst_element_factory_make("capsfilter", nullptr);
    GstCaps *c = gst_caps_from_string(chain.caps_after.c_str());
    if (filter) g_object_set(filter, "caps", c, nullptr);
    gst_caps_unref(c);
    elems.push_back(filter);
  }
  GstElement *sink = gst_element_factory_make("filesink", nullptr);
  if (sink) g_object_set(sink, "location", part.c_str(), "async", FALSE, nullptr);
  elems.push_back(sink);
  if (std::find(elems.begin(), elems.end(), nullptr) != elems.end()) {
    for (GstElement *o : elems)
      if (o) gst_object_unref(o);
    error = "a GStreamer element needed for ." + ext + " is missing";
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    part_path_ = part;  // from now on a failure removes it
  }
  for (GstElement *e : elems) gst_bin_add(GST_BIN(pipeline_), e);
  GstPad *teepad = gst_element_request_pad_simple(tee_, "src_%u");
  bool ok = link_pad_to(teepad, elems.front(), caps);
  gst_object_unref(teepad);
  for (size_t i = 0; ok && i + 1 < elems.size(); i++) {
    GstPad *src = gst_element_get_static_pad(elems[i], "src");
    ok = src && link_pad_to(src, elems[i + 1], caps);
    if (src) gst_object_unref(src);
    if (!ok) ok = gst_element_link(elems[i], elems[i + 1]);
  }
  for (auto it = elems.rbegin(); it != elems.rend(); ++it) gst_element_sync_state_with_parent(*it);
  if (!ok) error = "could not link the muxer for ." + ext;
  return ok;
}

void Download::post_app(const char *name, const std::string &message, const std::string &extra) {
  GstStructure *s = gst_structure_new(name, "message", G_TYPE_STRING, message.c_str(), "extra",
                                      G_TYPE_STRING, extra.c_str(), nullptr);
  gst_element_post_message(pipeline_, gst_message_new_application(GST_OBJECT(pipeline_), s));
}

gboolean Download::bus_cb(GstBus *, GstMessage *msg, gpointer data) noexcept {
  static_cast<Download *>(data)->on_message(msg);
  return G_SOURCE_CONTINUE;
}

gboolean Download::tick_cb(gpointer data) noexcept {
  static_cast<Download *>(data)->tick();
  return G_SOURCE_CONTINUE;
}

void Download::on_message(GstMessage *msg) {
  if (exit_code_ >= 0) return;  // finished: what follows is teardown noise
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
      on_error(msg);
      break;
    case GST_MESSAGE_WARNING:
      on_warning(msg);
      break;
    case GST_MESSAGE_ELEMENT:
      on_element(msg);
      break;
    case GST_MESSAGE_BUFFERING:
      on_buffering(msg);
      break;
    case GST_MESSAGE_EOS:
      on_eos();
      break;
    case GST_MESSAGE_APPLICATION: {
      const GstStructure *s = gst_message_get_structure(msg);
      const char *text = gst_structure_get_string(s, "message");
      if (g_str_has_prefix(gst_structure_get_name(s), "segdl-combine-") ||
          gst_structure_has_name(s, "segdl-output"))
        caps_came_ = true;
      if (gst_structure_has_name(s, "segdl-combine-error")) {
        progress_.error(kExitUsage, text ? text : "", "");
        finish(kExitUsage);
      } else if (gst_structure_has_name(s, "segdl-combine-codec")) {
        codec_error_ = text ? text : "";
        if (segment0_done_) finish_codec_error();
      } else if (gst_structure_has_name(s, "segdl-playing")) {
        progress_.playing();
      } else if (gst_structure_has_name(s, "segdl-output")) {
        progress_.output(text ? text : "", gst_structure_get_string(s, "extra"));
      }
      break;
    }
    default:
      break;
  }
}

void Download::on_error(GstMessage *msg) {
  if (!codec_error_.empty()) {
    finish_codec_error();  // the first cause found; segment 0 will not come
    return;
  }
  GError *err = nullptr;
  gchar *debug = nullptr;
  gst_message_parse_error(msg, &err, &debug);
  const GstStructure *details = nullptr;
  gst_message_parse_error_details(msg, &details);
  const bool from_src = GST_MESSAGE_SRC(msg) == GST_OBJECT(src_);
  const int code =
      from_src ? classify_source_error(err, details, read_stats().done) : classify_other_error(err);
  std::string text = err->message;
  if (!from_src) text = std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(msg))) + ": " + text;
  const char *uri = details ? gst_structure_get_string(details, "uri") : nullptr;
  guint http = 0;
  if (from_src && details && gst_structure_get_uint(details, "http-status-code", &http) &&
      http == 404 && uri && strstr(uri, "/status?"))
    text = unknown_id_text(id_, uri);
  if (err->domain == GST_RESOURCE_ERROR && is_filesink(GST_MESSAGE_SRC(msg)))
    text = output_write_error(write_failure_cause(err, debug));
  std::string more = debug ? debug : "";
  if (details) {
    gchar *d = gst_structure_to_string(details);
    more += std::string(" [") + g_quark_to_string(err->domain) + " " + std::to_string(err->code) +
            "; " + d + "]";
    g_free(d);
  }
  progress_.error(code, text, more);
  g_clear_error(&err);
  g_free(debug);
  finish(code);
}

void Download::on_warning(GstMessage *msg) {
  GError *err = nullptr;
  gst_message_parse_warning(msg, &err, nullptr);
  const GstStructure *details = nullptr;
  gst_message_parse_warning_details(msg, &details);
  gint attempt = 0;
  gint64 segment = -1;
  guint http = 0;
  if (details) {
    gst_structure_get_int(details, "attempt", &attempt);
    gst_structure_get_int64(details, "segment", &segment);
    gst_structure_get_uint(details, "http-status-code", &http);
  }
  // Attempts count from 1; segdlsrc's other WARNINGs carry 0 (or none).
  if (attempt >= 1) {
    progress_.retry(segment, attempt, http, err->message);
  } else if (g_str_has_prefix(err->message, kFallbackWarning)) {
    const char *uri = details ? gst_structure_get_string(details, "uri") : nullptr;
    progress_.fallback(segment, http, err->message + strlen(kFallbackWarning),
                       uri ? redact_url(uri) : "");
  } else {
    if (g_str_has_prefix(err->message, "Disk cache off")) cache_error_ = err->message;
    progress_.warning(err->message);
  }
  g_clear_error(&err);
}

void Download::on_element(GstMessage *msg) {
  const GstStructure *s = gst_message_get_structure(msg);
  if (!s || GST_MESSAGE_SRC(msg) != GST_OBJECT(src_)) return;
  if (gst_structure_has_name(s, "segdl-stats")) {
    final_stats_ = snapshot_from(s);
    have_final_stats_ = true;
  } else if (gst_structure_has_name(s, "segdl-segment")) {
    segment_messages_ = true;
    SegmentEvent e;
    gint64 v = 0;
    guint64 bytes = 0;
    if (gst_structure_get_int64(s, "index", &v)) e.index = v;
    if (gst_structure_get_uint64(s, "bytes", &bytes)) e.bytes = bytes;
    gst_structure_get_double(s, "seconds", &e.seconds);
    const char *source = gst_structure_get_string(s, "source");
    e.source = source ? source : "network";
    gst_structure_get_int(s, "retries", &e.retries);
    if (gst_structure_get_int64(s, "segments-total", &v)) e.total = v;
    if (gst_structure_get_int64(s, "segments-done", &v)) e.done = v;
    // The total the status gave, when the segment was whole before its answer.
    if (e.total < 0) e.total = read_stats().total;
    // The state stays the tick's: the message may come after the bytes.
    progress_.segment(e);
    if (e.index == 0) {
      segment0_done_ = true;
      if (!codec_error_.empty()) {
        finish_codec_error();
      } else if (!caps_came_ && !opts_.combine.empty() && opts_.combine != "auto") {
        probe_segment0_ = true;
        probe_segment0_codec();
      }
    }
  }
}

// --combine OUT cannot hold the codec, and segment 0 (which told it) is
// whole in the download dir: nothing more is fetched (docs/segdl.1.md).
void Download::finish_codec_error() {
  progress_.error(kExitUsage, codec_error_, "");
  finish(kExitUsage);
}

// --combine OUT, a status that did not name the codec, and segment 0 whole
// before segdlsrc output any caps: an m4a segment's frames may leave only
// once the next segment begins, which a backend still producing the track
// may list much later. Segment 0's copy in the download dir tells the codec
// now (the cache renames it into place whole, after its meta; until then
// the stats tick tries again). Files that are not MP4 wait for the caps.
void Download::probe_segment0_codec() {
  if (!probe_segment0_ || caps_came_ || exit_code_ >= 0) {
    probe_segment0_ = false;
    return;
  }
  const std::string path = opts_.download_dir + "/" + Cache::safe_name(id_) + "/seg_0.bin";
  GStatBuf st;
  if (g_stat(path.c_str(), &st) != 0) return;  // not in place yet
  probe_segment0_ = false;
  constexpr goffset kMaxBytes = 256 << 20;
  gchar *data = nullptr;
  gsize size = 0;
  if (st.st_size > kMaxBytes || !g_file_get_contents(path.c_str(), &data, &size, nullptr)) return;
  GstCaps *caps = caps_for_mp4_file(reinterpret_cast<const uint8_t *>(data), size);
  g_free(data);
  if (!caps) return;
  OutputChain chain;
  std::string error;
  const bool fits = plan_output(path_extension(opts_.combine), caps, chain, error);
  const std::string codec = codec_name(caps);
  gst_caps_unref(caps);
  if (fits) return;
  progress_.error(kExitUsage, error, "segment 0 in the download dir holds " + codec);
  finish(kExitUsage);
}

// BUFFERING from segdlsrc: the push loop ran dry. While playing, pause the
// sound until it is back at 100 %, as players do. The state shown is the
// tick's (from the stats): running dry between two segments, while the next
// one downloads, is not waiting for the backend.
void Download::on_buffering(GstMessage *msg) {
  gint percent = 100;
  gst_message_parse_buffering(msg, &percent);
  if (!opts_.play) return;
  if (percent < 100 && !buffering_paused_) {
    buffering_paused_ = true;
    gst_element_set_state(pipeline_, GST_STATE_PAUSED);
  } else if (percent >= 100 && buffering_paused_) {
    buffering_paused_ = false;
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  }
}

void Download::on_eos() {
  if (!codec_error_.empty()) {
    finish_codec_error();
    return;
  }
  const Snapshot s = have_final_stats_ ? final_stats_ : read_stats();
  std::string out, part;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = out_path_;
    part = part_path_;
  }
  gst_element_set_state(pipeline_, GST_STATE_NULL);  // closes the file
  if (!part.empty() && g_rename(part.c_str(), out.c_str()) != 0) {
    const int e = errno;
    progress_.error(kExitLocalIo, "cannot rename " + part + " to " + out + ": " + g_strerror(e),
                    "");
    finish(kExitLocalIo);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    part_path_.clear();  // in place: nothing partial to remove any more
  }
  derive_segments(s);
  prev_ = s;
  progress_.done(s, out, double(g_get_monotonic_time() - start_us_) / 1e6);
  if (!cache_error_.empty()) {
    // The track was read, but the download dir does not hold it.
    progress_.error(kExitLocalIo, "the download dir could not be written: " + cache_error_, "");
    finish(kExitLocalIo);
    return;
  }
  if (s.gaps > 0) {
    progress_.error(kExitIncomplete,
                    count_of(s.gaps, "segment") + " missing, left out (--missing-segment gap)", "");
    finish(kExitIncomplete);
    return;
  }
  finish(kExitOk);
}

Snapshot Download::read_stats() {
  GstStructure *st = nullptr;
  g_object_get(src_, "stats", &st, nullptr);
  Snapshot s = snapshot_from(st);
  if (st) gst_structure_free(st);
  return s;
}

// A segdlsrc that posts no "segdl-segment" messages: at the end, one
// segment event per segment the stats count (index unknown, the bytes on the
// last). Not while running: the stats may count a segment before its
// message is on the bus, and the event would come twice.
void Download::derive_segments(const Snapshot &s) {
  if (segment_messages_) return;
  for (int64_t n = 1; n <= s.done; n++) {
    SegmentEvent e;
    e.done = n;
    e.total = s.total;
    if (n == s.done) e.bytes = uint64_t(std::max<int64_t>(0, s.bytes));
    e.source = n <= s.cache_hits ? "cache" : "network";
    progress_.segment(e);
  }
}

// Every kTickMs: the stats for the bar and the state.
void Download::tick() {
  if (exit_code_ >= 0) return;
  if (probe_segment0_) probe_segment0_codec();
  if (exit_code_ >= 0) return;
  const Snapshot s = read_stats();
  const int64_t now = g_get_monotonic_time();
  const bool moving = s.done > prev_.done || s.bytes > prev_.bytes;
  if (moving) last_move_us_ = now;
  if (s.total >= 0 && s.done >= s.total && !opts_.combine.empty())
    progress_.state("joining");
  else if (moving)
    progress_.state("downloading");
  else if (s.available <= s.done && (s.total < 0 || s.done < s.total) &&
           now - last_move_us_ >= kWaitingAfterUs)
    progress_.state("waiting");
  prev_ = s;
  progress_.update(s);
}

void Download::finish(int code) {
  if (exit_code_ >= 0) return;
  exit_code_ = code;
  cancel_status_fetch();
  if (pipeline_) gst_element_set_state(pipeline_, GST_STATE_NULL);
  if (code != kExitOk) remove_partial();
  if (loop_) g_main_loop_quit(loop_);
}

void Download::interrupt(int signo) {
  if (exit_code_ >= 0) return;
  progress_.interrupted(signo);
  finish(128 + signo);
}

// "cannot write OUT: CAUSE (OUT.part removed)", for an error of the
// output's filesink (finish() removes the partial file).
std::string Download::output_write_error(const std::string &cause) {
  std::string part;
  {
    std::lock_guard<std::mutex> lock(mu_);
    part = part_path_;
  }
  std::string out = part;
  if (g_str_has_suffix(out.c_str(), ".part")) out.resize(out.size() - 5);
  return "cannot write " + out + ": " + cause + " (" + part + " removed)";
}

void Download::remove_partial() {
  std::string part;
  {
    std::lock_guard<std::mutex> lock(mu_);
    part.swap(part_path_);
  }
  if (!part.empty()) g_unlink(part.c_str());
}

}  // namespace segdl::cli
