// SPDX-License-Identifier: LGPL-2.1-or-later
// clang-format off
/**
 * SECTION:element-segdlsrc
 * @title: segdlsrc
 *
 * segdlsrc plays an audio track that a backend publishes as numbered
 * segments while it is still producing them (docs/protocol.md). It polls
 * `GET {backend-url}/status?v={video-id}`, downloads the segments
 * (segment 0 at once, then up to #GstSegDlSrc:max-concurrent at a time) and
 * pushes them, in order, as one stream: no need to wait for the whole
 * track, and no joining step afterwards. With the default join=timeline the
 * output is one parsed, timestamped audio stream whatever the segments are
 * (continuous byte ranges or self-contained files); join=bytes outputs the
 * segments' bytes joined, for continuous forms.
 *
 * It answers segdl:// (HTTP) and segdls:// (HTTPS) URIs:
 * `segdl://host[:port][/base/path]/VIDEO_ID`.
 *
 * While it waits for data it posts BUFFERING messages, and it answers the
 * BUFFERING query.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 segdlsrc backend-url=http://127.0.0.1:8080 video-id=demo ! decodebin ! audioconvert ! autoaudiosink
 * ]|
 * |[
 * gst-launch-1.0 playbin uri=segdl://127.0.0.1:8080/demo
 * ]|
 * Save the joined track without re-encoding:
 * |[
 * gst-launch-1.0 -e segdlsrc backend-url=http://127.0.0.1:8080 video-id=demo ! mp4mux ! filesink location=demo.m4a
 * ]|
 * The original container bytes of a continuous form (ADTS here):
 * |[
 * gst-launch-1.0 segdlsrc backend-url=http://127.0.0.1:8080 video-id=demo join=bytes ! filesink location=demo.aac
 * ]|
 */
// clang-format on
#include "config.h"

#include "gstsegdlsrc-stream.h"

#include "segdl/httpmodule.h"
#include "segdl/log.h"
#include "segdl/urls.h"

GST_DEBUG_CATEGORY(gst_seg_dl_src_debug);
#define GST_CAT_DEFAULT gst_seg_dl_src_debug

namespace {

GType missing_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {int(segdl::MissingSegment::Error), "End with an ERROR", "error"},
      {int(segdl::MissingSegment::Fallback),
       "Switch to fallback-uri if set, else end with an ERROR", "fallback"},
      {int(segdl::MissingSegment::Gap),
       "Leave a gap (silence) of the segment's duration, with a WARNING", "gap"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstSegDlMissingSegment", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType join_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {
      {JOIN_TIMELINE, "Parsed frames of every segment laid end to end on one timeline", "timeline"},
      {JOIN_BYTES, "The segments' bytes concatenated (continuous forms only)", "bytes"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstSegDlJoin", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

}  // namespace

static void gst_seg_dl_src_uri_handler_init(gpointer iface, gpointer data);

#define gst_seg_dl_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstSegDlSrc, gst_seg_dl_src, GST_TYPE_PUSH_SRC,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_URI_HANDLER,
                                              gst_seg_dl_src_uri_handler_init));
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE(segdlsrc, "segdlsrc", GST_RANK_PRIMARY, GST_TYPE_SEG_DL_SRC,
                                      GST_DEBUG_CATEGORY_INIT(gst_seg_dl_src_debug, "segdlsrc", 0,
                                                              "segmented audio download source"));

// Audio only (so that muxers give us an audio pad): the parsed elementary
// streams of join=timeline, and for join=bytes the containers of the
// continuous forms.
#define SEGDL_SRC_CAPS                                                                    \
  "audio/mpeg; audio/x-opus; audio/x-vorbis; audio/x-flac; audio/x-speex; audio/x-alac; " \
  "audio/x-ac3; audio/x-eac3; audio/x-dts; audio/x-wma; audio/x-raw; audio/x-alaw; "      \
  "audio/x-mulaw; audio/x-adpcm; audio/x-wavpack; audio/x-gsm; audio/AMR; audio/AMR-WB; " \
  "video/mpegts; audio/x-m4a; video/quicktime; application/ogg; audio/ogg; audio/webm; "  \
  "audio/x-matroska; application/x-id3; audio/x-wav"
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(SEGDL_SRC_CAPS));

GstStructure *gst_seg_dl_src_make_stats(const segdl::EngineStats &s) {
  return gst_structure_new(
      "segdl-stats", "segments-total", G_TYPE_INT64, s.segments_total, "segments-available",
      G_TYPE_INT64, s.segments_available, "segments-downloaded", G_TYPE_INT64,
      s.segments_downloaded, "bytes-downloaded", G_TYPE_INT64, s.bytes_downloaded, "retries",
      G_TYPE_INT64, s.retries, "status-polls", G_TYPE_INT64, s.status_polls, "time-to-first-byte",
      G_TYPE_UINT64,
      s.time_to_first_byte_us < 0 ? GST_CLOCK_TIME_NONE
                                  : GstClockTime(s.time_to_first_byte_us) * GST_USECOND,
      "current-segment", G_TYPE_INT64, s.current_segment, "cache-hits", G_TYPE_INT64, s.cache_hits,
      "offline", G_TYPE_BOOLEAN, gboolean(s.offline), "fallback", G_TYPE_BOOLEAN,
      gboolean(s.fallback), "gaps", G_TYPE_INT64, s.gaps, "resumes", G_TYPE_INT64, s.resumes,
      "faults", G_TYPE_INT64, s.faults, "complete", G_TYPE_BOOLEAN, gboolean(s.complete), nullptr);
}

// A fault being worked around, as a WARNING message.
static void post_engine_warning(GstSegDlSrc *self, const segdl::EngineWarning &w) {
  std::string what = w.segment >= 0 ? "segment " + std::to_string(w.segment) : "status";
  gchar *text =
      w.kind == segdl::EngineWarning::Kind::Fallback
          ? g_strdup_printf("Switching to the fallback URL: %s", w.cause.c_str())
      : w.kind == segdl::EngineWarning::Kind::Cache
          ? g_strdup_printf("Disk cache off, playback goes on without it: %s", w.cause.c_str())
          : g_strdup_printf("%s: %s (attempt %d of %d), retrying", what.c_str(), w.cause.c_str(),
                            w.attempt, w.max_attempts);
  gchar *debug = g_strdup_printf("GET %s", w.uri.c_str());
  GstStructure *details =
      gst_structure_new("details", "segment", G_TYPE_INT64, w.segment, "uri", G_TYPE_STRING,
                        w.uri.c_str(), "http-status-code", G_TYPE_UINT, guint(w.http_status),
                        "attempt", G_TYPE_INT, w.attempt, nullptr);
  gst_element_message_full_with_details(GST_ELEMENT(self), GST_MESSAGE_WARNING, GST_RESOURCE_ERROR,
                                        GST_RESOURCE_ERROR_READ, text, debug, __FILE__,
                                        GST_FUNCTION, __LINE__, details);
}

// A segment whole in the buffer, as a "segdl-segment" element message
// (docs/element.md).
static void post_segment_message(GstSegDlSrc *self, const segdl::EngineEvent &ev) {
  const segdl::SegmentDone &d = ev.segment;
  const char *source = d.source == segdl::SegmentDone::Source::Cache      ? "cache"
                       : d.source == segdl::SegmentDone::Source::Fallback ? "fallback"
                                                                          : "network";
  GstStructure *st = gst_structure_new("segdl-segment", "index", G_TYPE_INT64, d.index, "bytes",
                                       G_TYPE_UINT64, d.bytes, "seconds", G_TYPE_DOUBLE, d.seconds,
                                       "source", G_TYPE_STRING, source, "retries", G_TYPE_INT,
                                       d.retries, "segments-total", G_TYPE_INT64, ev.segments_total,
                                       "segments-done", G_TYPE_INT64, ev.segments_done, nullptr);
  gst_element_post_message(GST_ELEMENT(self), gst_message_new_element(GST_OBJECT(self), st));
}

// Posts what the engine queued (WARNINGs, finished segments). Called by the
// streaming thread: no application code ever runs on the HTTP thread.
void gst_seg_dl_src_post_events(GstSegDlSrc *self, segdl::Downloader *dl) {
  for (const segdl::EngineEvent &ev : dl->take_events()) {
    if (ev.kind == segdl::EngineEvent::Kind::Warning)
      post_engine_warning(self, ev.warning);
    else
      post_segment_message(self, ev);
  }
}

/* ---- GstBaseSrc vfuncs ------------------------------------------------ */

// The engine's configuration from the element's settings.
static segdl::DownloaderConfig engine_config(GstSegDlSrc *self, const Settings &s,
                                             const std::string &backend,
                                             const std::string &fallback) {
  segdl::DownloaderConfig cfg;
  cfg.backend = backend;
  cfg.video_id = s.video_id;
  cfg.max_concurrent = int(s.max_concurrent);
  cfg.poll_interval_s = s.poll_interval;
  cfg.max_retries = int(s.max_retries);
  cfg.retry_backoff_s = s.retry_backoff;
  cfg.timeout_s = s.timeout;
  cfg.stall_timeout_s = s.stall_timeout;
  cfg.max_segment_size = int64_t(std::min<guint64>(s.max_segment_size, G_MAXINT64));
  cfg.max_wait_s = s.max_wait;
  cfg.monitor = s.monitor;
  cfg.idle_timeout_s = s.idle_timeout;
  cfg.speculative_fetch = s.speculative_fetch;
  // Only join=timeline reads an m4a while it arrives.
  const int64_t tail =
      gst_seg_dl_src_mp4_prefetch_bytes(s.first_segment_duration, s.segment_duration);
  cfg.tail_prefetch_bytes =
      s.join == JOIN_TIMELINE ? gst_seg_dl_src_tail_prefetch(s.http, tail) : 0;
  cfg.user_agent = s.user_agent;
  cfg.ssl_strict = s.ssl_strict;
  cfg.cache.dir = s.cache_dir;
  cfg.fallback_uri = fallback;
  cfg.missing_segment = s.missing_segment;
  cfg.same_form = s.join == JOIN_BYTES;  // appended bytes: one form (the timeline renegotiates)
  cfg.cache.max_size_bytes = s.cache_max_size;
  cfg.cache.max_age_s = int64_t(std::min<guint64>(s.cache_max_age, G_MAXINT64));
  // Tests only: the engine's clock (docs/design.md, "Timers"); null = real time.
  cfg.clock =
      static_cast<segdl::EngineClock *>(g_object_get_data(G_OBJECT(self), "segdl-engine-clock"));
  return cfg;
}

// Loads the HTTP module and starts the engine; null (an error posted) on failure.
static std::unique_ptr<segdl::Downloader> start_engine(GstSegDlSrc *self,
                                                       const segdl::DownloaderConfig &cfg,
                                                       const segdl::HttpOptions &http) {
  // libsoup 3 would abort this process if libsoup 2 were in it already.
  if (segdl::libsoup2_loaded()) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT,
                      ("segdlsrc cannot run in a process that has libsoup 2 loaded: it needs "
                       "libsoup 3, and the two cannot be used in one process."),
                      ("libsoup-2.4 symbols found in the process; not loading libsegdl-http"));
    return nullptr;
  }
  std::string error;
  SegdlHttpFetcherNew entry = segdl::load_http_module(error);
  if (!entry) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Could not load the segdl HTTP module."),
                      ("%s", error.c_str()));
    return nullptr;
  }
  auto factory = [entry, http](const segdl::FetcherConfig &fc,
                               std::string &err) -> std::unique_ptr<segdl::Fetcher> {
    segdl::FetcherConfig full = fc;
    full.http = http;
    char *msg = nullptr;
    segdl::Fetcher *f = entry(SEGDL_HTTP_MODULE_ABI, &full, &msg);
    if (!f) err = msg ? msg : "unknown error";
    g_free(msg);
    return std::unique_ptr<segdl::Fetcher>(f);
  };
  auto dl = std::make_unique<segdl::Downloader>(cfg, factory);
  if (!dl->start(error)) {
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("Could not start the HTTP client."),
                      ("%s", error.c_str()));
    return nullptr;
  }
  return dl;
}

// The streaming state of a new run.
static void reset_stream_state(GstSegDlSrc *self, const Settings &s) {
  GstSegDlSrcPrivate *priv = self->priv;
  priv->join = s.join;
  priv->first_segment_duration = s.first_segment_duration;
  priv->segment_duration = s.segment_duration;
  priv->discont = false;
  priv->frames_out = 0;
  priv->frames_out_valid = true;
  priv->gap_segment = -1;
  gst_base_src_set_format(GST_BASE_SRC(self),
                          s.join == JOIN_TIMELINE ? GST_FORMAT_TIME : GST_FORMAT_BYTES);
  priv->joiner.reset(s.join == JOIN_TIMELINE ? new segdl::FrameJoiner(GST_ELEMENT(self)) : nullptr);
  priv->track_done = false;
  gst_seg_dl_src_reset_timeline(self);
  priv->duration_ns = -1;
  priv->buffer_size = s.buffer_size;
  priv->caps_set = false;
  priv->offset = 0;
  priv->buffering = false;
  priv->percent = 100;
}

static gboolean gst_seg_dl_src_start(GstBaseSrc *bsrc) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(bsrc);
  GstSegDlSrcPrivate *priv = self->priv;
  Settings s;
  {
    std::lock_guard<std::mutex> lock(priv->settings_lock);
    s = priv->settings;
  }
  // The URLs' user:password@ move into the HTTP options: nothing built from
  // them (messages, errors, logs) can show a password.
  std::string backend = s.backend_url, fallback = s.fallback_uri;
  segdl::HttpOptions http = gst_seg_dl_src_http_options(s.http, backend, fallback);
  if (backend.empty() || s.video_id.empty()) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, SETTINGS, ("No backend-url or video-id set."),
        ("backend-url='%s' video-id='%s'", segdl::redact_url(backend).c_str(), s.video_id.c_str()));
    return FALSE;
  }
  if (!segdl::is_http_url(backend)) {
    GST_ELEMENT_ERROR(
        self, RESOURCE, SETTINGS,
        ("backend-url must be an http:// or https:// URL: %s", segdl::redact_url(backend).c_str()),
        (nullptr));
    return FALSE;
  }
  std::unique_ptr<segdl::Downloader> dl =
      start_engine(self, engine_config(self, s, backend, fallback), http);
  if (!dl) return FALSE;
  reset_stream_state(self, s);
  GST_INFO_OBJECT(self, "starting %s for id '%s'", backend.c_str(), s.video_id.c_str());
  std::lock_guard<std::mutex> lock(priv->state_lock);
  priv->downloader = std::move(dl);
  return TRUE;
}

static gboolean gst_seg_dl_src_stop(GstBaseSrc *bsrc) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(bsrc);
  GstSegDlSrcPrivate *priv = self->priv;
  std::unique_ptr<segdl::Downloader> dl;
  {
    std::lock_guard<std::mutex> lock(priv->state_lock);
    dl = std::move(priv->downloader);
    if (dl) priv->last_stats = dl->stats();
  }
  if (dl) dl->stop();  // joins the HTTP thread: outside the lock
  if (dl)
    GST_INFO_OBJECT(self,
                    "stopped: %" G_GINT64_FORMAT " segments, %" G_GINT64_FORMAT
                    " bytes, %" G_GINT64_FORMAT " retries",
                    priv->last_stats.segments_downloaded, priv->last_stats.bytes_downloaded,
                    priv->last_stats.retries);
  for (GstBuffer *b : priv->held) gst_buffer_unref(b);
  priv->held.clear();
  priv->held_bytes = 0;
  priv->joiner.reset();
  if (priv->probe) g_byte_array_unref(priv->probe);
  priv->probe = nullptr;
  priv->probe_segment = -1;
  gst_caps_replace(&priv->out_caps, nullptr);
  gst_seg_dl_src_reset_timeline(self);
  if (priv->fallback_first) g_bytes_unref(priv->fallback_first);
  priv->fallback_first = nullptr;
  priv->fallback_skipping = false;
  priv->fallback_skip_bytes = 0;
  return TRUE;
}

static gboolean gst_seg_dl_src_unlock(GstBaseSrc *bsrc) noexcept {
  GstSegDlSrcPrivate *priv = GST_SEG_DL_SRC(bsrc)->priv;
  std::lock_guard<std::mutex> lock(priv->state_lock);
  if (priv->downloader) priv->downloader->set_flushing(true);
  return TRUE;
}

static gboolean gst_seg_dl_src_unlock_stop(GstBaseSrc *bsrc) noexcept {
  GstSegDlSrcPrivate *priv = GST_SEG_DL_SRC(bsrc)->priv;
  std::lock_guard<std::mutex> lock(priv->state_lock);
  if (priv->downloader) priv->downloader->set_flushing(false);
  return TRUE;
}

// Caps come from the data (typefinding, or the parsed frames), set by
// create() once known: nothing to negotiate up front.
static gboolean gst_seg_dl_src_negotiate(GstBaseSrc *) noexcept {
  return TRUE;
}

static gboolean gst_seg_dl_src_is_seekable(GstBaseSrc *bsrc) noexcept {
  return GST_SEG_DL_SRC(bsrc)->priv->join == JOIN_TIMELINE;
}

// The track length in ns now, -1 while unknown. Any thread.
static int64_t current_duration(GstSegDlSrc *self) {
  std::lock_guard<std::mutex> lock(self->priv->state_lock);
  segdl::Downloader *dl = self->priv->downloader.get();
  return dl ? gst_seg_dl_src_track_duration(self, dl) : -1;
}

static gboolean gst_seg_dl_src_query(GstBaseSrc *bsrc, GstQuery *query) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(bsrc);
  if (GST_QUERY_TYPE(query) == GST_QUERY_BUFFERING) {
    int pct = self->priv->percent.load();
    segdl::EngineStats st;
    {
      std::lock_guard<std::mutex> lock(self->priv->state_lock);
      st = self->priv->downloader ? self->priv->downloader->stats() : self->priv->last_stats;
    }
    gst_query_set_buffering_percent(query, pct < 100, pct);
    gst_query_set_buffering_stats(query, GST_BUFFERING_STREAM, -1, -1, -1);
    gst_query_set_buffering_range(query, GST_FORMAT_BYTES, 0, st.bytes_downloaded, -1);
    return TRUE;
  }
  if (GST_QUERY_TYPE(query) == GST_QUERY_SEEKING && self->priv->join == JOIN_TIMELINE) {
    GstFormat format;
    gst_query_parse_seeking(query, &format, nullptr, nullptr, nullptr);
    if (format != GST_FORMAT_TIME) return FALSE;
    int64_t d = current_duration(self);
    // The whole track is reachable: segments not produced yet are waited for.
    gst_query_set_seeking(query, GST_FORMAT_TIME, TRUE, 0, d);
    return TRUE;
  }
  if (GST_QUERY_TYPE(query) == GST_QUERY_DURATION) {
    GstFormat format;
    gst_query_parse_duration(query, &format, nullptr);
    // Live from the engine: the streaming thread may be blocked downstream.
    int64_t d = current_duration(self);
    if (format == GST_FORMAT_TIME && self->priv->join == JOIN_TIMELINE) {
      gst_query_set_duration(query, GST_FORMAT_TIME, d >= 0 ? d : -1);
      return d >= 0;
    }
  }
  return GST_BASE_SRC_CLASS(parent_class)->query(bsrc, query);
}

/* ---- properties -------------------------------------------------------- */

static void gst_seg_dl_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(object);
  // Properties are GST_PARAM_MUTABLE_READY: they are copied at start(), so a
  // change while running would silently do nothing. Refuse it, and say so.
  GST_OBJECT_LOCK(self);
  bool running = GST_STATE(self) > GST_STATE_READY;
  GST_OBJECT_UNLOCK(self);
  if (running) {
    GST_WARNING_OBJECT(self,
                       "property '%s' can be changed only in the NULL or READY state; "
                       "the change is ignored",
                       pspec->name);
    return;
  }
  std::lock_guard<std::mutex> lock(self->priv->settings_lock);
  Settings &s = self->priv->settings;
  switch (prop_id) {
    case PROP_BACKEND_URL: {
      const char *v = g_value_get_string(value);
      s.backend_url = v ? v : "";
      break;
    }
    case PROP_VIDEO_ID: {
      const char *v = g_value_get_string(value);
      s.video_id = v ? v : "";
      break;
    }
    case PROP_MAX_CONCURRENT:
      s.max_concurrent = g_value_get_uint(value);
      break;
    case PROP_POLL_INTERVAL:
      s.poll_interval = g_value_get_double(value);
      break;
    case PROP_MAX_RETRIES:
      s.max_retries = g_value_get_uint(value);
      break;
    case PROP_RETRY_BACKOFF:
      s.retry_backoff = g_value_get_double(value);
      break;
    case PROP_TIMEOUT:
      s.timeout = g_value_get_uint(value);
      break;
    case PROP_STALL_TIMEOUT:
      s.stall_timeout = g_value_get_uint(value);
      break;
    case PROP_MAX_SEGMENT_SIZE:
      s.max_segment_size = g_value_get_uint64(value);
      break;
    case PROP_MAX_WAIT:
      s.max_wait = g_value_get_double(value);
      break;
    case PROP_MONITOR:
      s.monitor = g_value_get_boolean(value);
      break;
    case PROP_IDLE_TIMEOUT:
      s.idle_timeout = g_value_get_double(value);
      break;
    case PROP_SPECULATIVE_FETCH:
      s.speculative_fetch = g_value_get_boolean(value);
      break;
    case PROP_USER_AGENT: {
      const char *v = g_value_get_string(value);
      s.user_agent = v ? v : "";
      break;
    }
    case PROP_SSL_STRICT:
      s.ssl_strict = g_value_get_boolean(value);
      break;
    case PROP_BUFFER_SIZE:
      s.buffer_size = g_value_get_uint(value);
      break;
    case PROP_JOIN:
      s.join = Join(g_value_get_enum(value));
      break;
    case PROP_FIRST_SEGMENT_DURATION:
      s.first_segment_duration = g_value_get_double(value);
      break;
    case PROP_SEGMENT_DURATION:
      s.segment_duration = g_value_get_double(value);
      break;
    case PROP_CACHE_DIR: {
      const char *v = g_value_get_string(value);
      s.cache_dir = v ? v : "";
      break;
    }
    case PROP_CACHE_MAX_SIZE:
      s.cache_max_size = g_value_get_uint64(value);
      break;
    case PROP_CACHE_MAX_AGE:
      s.cache_max_age = g_value_get_uint64(value);
      break;
    case PROP_FALLBACK_URI: {
      const char *v = g_value_get_string(value);
      s.fallback_uri = v ? v : "";
      break;
    }
    case PROP_MISSING_SEGMENT:
      s.missing_segment = segdl::MissingSegment(g_value_get_enum(value));
      break;
    default:
      if (!gst_seg_dl_src_set_http_property(s.http, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

static void gst_seg_dl_src_get_property(GObject *object, guint prop_id, GValue *value,
                                        GParamSpec *pspec) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(object);
  GstSegDlSrcPrivate *priv = self->priv;
  if (prop_id == PROP_STATS) {
    segdl::EngineStats st;
    {
      std::lock_guard<std::mutex> lock(priv->state_lock);
      st = priv->downloader ? priv->downloader->stats() : priv->last_stats;
    }
    g_value_take_boxed(value, gst_seg_dl_src_make_stats(st));
    return;
  }
  std::lock_guard<std::mutex> lock(priv->settings_lock);
  const Settings &s = priv->settings;
  switch (prop_id) {
    case PROP_BACKEND_URL:
      g_value_set_string(value, s.backend_url.empty() ? nullptr : s.backend_url.c_str());
      break;
    case PROP_VIDEO_ID:
      g_value_set_string(value, s.video_id.empty() ? nullptr : s.video_id.c_str());
      break;
    case PROP_MAX_CONCURRENT:
      g_value_set_uint(value, s.max_concurrent);
      break;
    case PROP_POLL_INTERVAL:
      g_value_set_double(value, s.poll_interval);
      break;
    case PROP_MAX_RETRIES:
      g_value_set_uint(value, s.max_retries);
      break;
    case PROP_RETRY_BACKOFF:
      g_value_set_double(value, s.retry_backoff);
      break;
    case PROP_TIMEOUT:
      g_value_set_uint(value, s.timeout);
      break;
    case PROP_STALL_TIMEOUT:
      g_value_set_uint(value, s.stall_timeout);
      break;
    case PROP_MAX_SEGMENT_SIZE:
      g_value_set_uint64(value, s.max_segment_size);
      break;
    case PROP_MAX_WAIT:
      g_value_set_double(value, s.max_wait);
      break;
    case PROP_MONITOR:
      g_value_set_boolean(value, s.monitor);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_double(value, s.idle_timeout);
      break;
    case PROP_SPECULATIVE_FETCH:
      g_value_set_boolean(value, s.speculative_fetch);
      break;
    case PROP_USER_AGENT:
      g_value_set_string(value, s.user_agent.c_str());
      break;
    case PROP_SSL_STRICT:
      g_value_set_boolean(value, s.ssl_strict);
      break;
    case PROP_BUFFER_SIZE:
      g_value_set_uint(value, s.buffer_size);
      break;
    case PROP_JOIN:
      g_value_set_enum(value, s.join);
      break;
    case PROP_FIRST_SEGMENT_DURATION:
      g_value_set_double(value, s.first_segment_duration);
      break;
    case PROP_SEGMENT_DURATION:
      g_value_set_double(value, s.segment_duration);
      break;
    case PROP_CACHE_DIR:
      g_value_set_string(value, s.cache_dir.empty() ? nullptr : s.cache_dir.c_str());
      break;
    case PROP_CACHE_MAX_SIZE:
      g_value_set_uint64(value, s.cache_max_size);
      break;
    case PROP_CACHE_MAX_AGE:
      g_value_set_uint64(value, s.cache_max_age);
      break;
    case PROP_FALLBACK_URI:
      g_value_set_string(value, s.fallback_uri.empty() ? nullptr : s.fallback_uri.c_str());
      break;
    case PROP_MISSING_SEGMENT:
      g_value_set_enum(value, int(s.missing_segment));
      break;
    default:
      if (!gst_seg_dl_src_get_http_property(s.http, prop_id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
}

/* ---- URI handler -------------------------------------------------------- */

static GstURIType uri_get_type(GType) noexcept {
  return GST_URI_SRC;
}

static const gchar *const *uri_get_protocols(GType) noexcept {
  static const gchar *protocols[] = {"segdl", "segdls", nullptr};
  return protocols;
}

static gchar *uri_get_uri(GstURIHandler *handler) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(handler);
  std::lock_guard<std::mutex> lock(self->priv->settings_lock);
  const Settings &s = self->priv->settings;
  if (s.backend_url.empty() || s.video_id.empty()) return nullptr;
  std::string uri = segdl::make_segdl_uri(s.backend_url, s.video_id);
  return uri.empty() ? nullptr : g_strdup(uri.c_str());
}

static gboolean uri_set_uri(GstURIHandler *handler, const gchar *uri, GError **error) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(handler);
  if (GST_STATE(self) >= GST_STATE_PAUSED) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
                "Changing the URI of segdlsrc while it runs is not supported");
    return FALSE;
  }
  std::string backend, id, why;
  if (!segdl::parse_segdl_uri(uri ? uri : "", backend, id, why)) {
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI, "Invalid segdl URI '%s': %s",
                uri ? uri : "(null)", why.c_str());
    return FALSE;
  }
  {
    std::lock_guard<std::mutex> lock(self->priv->settings_lock);
    self->priv->settings.backend_url = backend;
    self->priv->settings.video_id = id;
  }
  g_object_notify(G_OBJECT(self), "backend-url");
  g_object_notify(G_OBJECT(self), "video-id");
  return TRUE;
}

static void gst_seg_dl_src_uri_handler_init(gpointer g_iface, gpointer) {
  auto *iface = static_cast<GstURIHandlerInterface *>(g_iface);
  iface->get_type = uri_get_type;
  iface->get_protocols = uri_get_protocols;
  iface->get_uri = uri_get_uri;
  iface->set_uri = uri_set_uri;
}

/* ---- GObject ------------------------------------------------------------ */

static void gst_seg_dl_src_finalize(GObject *object) noexcept {
  GstSegDlSrc *self = GST_SEG_DL_SRC(object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_seg_dl_src_init(GstSegDlSrc *self) {
  self->priv = new GstSegDlSrcPrivate;
  gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_BYTES);
  gst_base_src_set_live(GST_BASE_SRC(self), FALSE);
}

static void gst_seg_dl_src_class_init(GstSegDlSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseSrcClass *basesrc_class = GST_BASE_SRC_CLASS(klass);
  GstPushSrcClass *pushsrc_class = GST_PUSH_SRC_CLASS(klass);

  gobject_class->set_property = gst_seg_dl_src_set_property;
  gobject_class->get_property = gst_seg_dl_src_get_property;
  gobject_class->finalize = gst_seg_dl_src_finalize;

  const auto rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);

  /**
   * GstSegDlSrc:backend-url:
   * Base URL of the backend, http:// or https://, e.g. `http://127.0.0.1:8080`
   * or `https://example.com/api`. Required.
   */
  g_object_class_install_property(
      gobject_class, PROP_BACKEND_URL,
      g_param_spec_string("backend-url", "Backend URL",
                          "Base URL of the segment backend (http:// or https://); status is "
                          "{backend-url}/status?v=ID, segments {backend-url}/stream?v=ID&segment=N",
                          nullptr, rw));
  /**
   * GstSegDlSrc:video-id:
   * The track's id, sent percent-encoded as `v=`. Required.
   */
  g_object_class_install_property(
      gobject_class, PROP_VIDEO_ID,
      g_param_spec_string("video-id", "Video ID",
                          "Id of the track (e.g. a YouTube video id); always percent-encoded in "
                          "URLs",
                          nullptr, rw));
  /**
   * GstSegDlSrc:max-concurrent:
   * Segment downloads in flight at once (1-16, default 3).
   */
  g_object_class_install_property(
      gobject_class, PROP_MAX_CONCURRENT,
      g_param_spec_uint("max-concurrent", "Max concurrent downloads",
                        "Segments downloaded at the same time (segment 0 always first)", 1, 16,
                        kDefaultMaxConcurrent, rw));
  /**
   * GstSegDlSrc:poll-interval:
   * Seconds between status requests while the track is produced (default 2).
   */
  g_object_class_install_property(
      gobject_class, PROP_POLL_INTERVAL,
      g_param_spec_double("poll-interval", "Poll interval",
                          "Seconds between two status requests while the backend is still "
                          "producing the track",
                          0.01, 3600.0, kDefaultPollInterval, rw));
  /**
   * GstSegDlSrc:max-retries:
   * Retries of a failing request before giving up (default 3): a request
   * is tried at most max-retries + 1 times.
   */
  g_object_class_install_property(
      gobject_class, PROP_MAX_RETRIES,
      g_param_spec_uint("max-retries", "Max retries",
                        "Retries of a failing segment or status request (transient errors: "
                        "connection failures, timeouts, broken bodies, 5xx) before an error",
                        0, 100, kDefaultMaxRetries, rw));
  /**
   * GstSegDlSrc:retry-backoff:
   * Seconds before the first retry; doubled for each further one, with
   * jitter, never below the server's Retry-After (default 1).
   */
  g_object_class_install_property(
      gobject_class, PROP_RETRY_BACKOFF,
      g_param_spec_double("retry-backoff", "Retry backoff",
                          "Seconds before the first retry, doubled for each further retry (with "
                          "jitter; Retry-After is honoured)",
                          0.0, 600.0, kDefaultRetryBackoff, rw));
  /**
   * GstSegDlSrc:timeout:
   * Seconds one request may take in all, from connecting to its last byte,
   * before it fails and is retried (0 = no limit, default 300). Not
   * souphttpsrc's timeout, which bounds each wait for the server (the
   * response headers, then every read): that is #GstSegDlSrc:stall-timeout
   * here.
   */
  g_object_class_install_property(
      gobject_class, PROP_TIMEOUT,
      g_param_spec_uint("timeout", "Timeout",
                        "Seconds one request may take in all, connect to last byte, before it "
                        "fails and is retried (0 = no limit); souphttpsrc's timeout (each wait "
                        "for the server) is stall-timeout here",
                        0, 86400, kDefaultTimeout, rw));
  /**
   * GstSegDlSrc:stall-timeout:
   * Seconds a request may go without progress (connect, headers, body)
   * before it is aborted and retried — resumed with Range where it broke
   * off (0 = no limit, default 15).
   */
  g_object_class_install_property(
      gobject_class, PROP_STALL_TIMEOUT,
      g_param_spec_uint("stall-timeout", "Stall timeout",
                        "Seconds without progress before a transfer is aborted and resumed "
                        "(0 = no limit)",
                        0, 3600, kDefaultStallTimeout, rw));
  /**
   * GstSegDlSrc:max-segment-size:
   * Bytes one segment may have; a bigger (or endless) one is an error
   * (default 256 MiB). Not applied to the fallback file.
   */
  g_object_class_install_property(
      gobject_class, PROP_MAX_SEGMENT_SIZE,
      g_param_spec_uint64("max-segment-size", "Max segment size",
                          "Bytes one segment may have; a bigger or endless body is an error", 1,
                          G_MAXUINT64, kDefaultMaxSegmentSize, rw));
  /**
   * GstSegDlSrc:max-wait:
   * Seconds the stream may spend in all waiting for the backend (the push
   * loop starved for data, whatever the status says); then an error names
   * the segment waited for (0 = no limit, default 600).
   */
  g_object_class_install_property(
      gobject_class, PROP_MAX_WAIT,
      g_param_spec_double("max-wait", "Max wait",
                          "Seconds the stream may spend in all waiting for the backend's data; "
                          "after that, an error (0 = wait forever)",
                          0.0, G_MAXDOUBLE, kDefaultMaxWait, rw));
  /**
   * GstSegDlSrc:monitor:
   * TRUE: follow the backend until the track is complete. FALSE: take only
   * the segments ready at the first status, then end (the old tools'
   * `--no-monitor`).
   */
  g_object_class_install_property(
      gobject_class, PROP_MONITOR,
      g_param_spec_boolean("monitor", "Monitor",
                           "Follow the backend until the track is complete (false: only the "
                           "segments ready at start, then EOS)",
                           kDefaultMonitor, rw));
  /**
   * GstSegDlSrc:idle-timeout:
   * For backends that send neither a total nor a state: the track is
   * complete when no new segment appeared for this many seconds (default
   * 20, the old tools' rule).
   */
  g_object_class_install_property(
      gobject_class, PROP_IDLE_TIMEOUT,
      g_param_spec_double("idle-timeout", "Idle timeout",
                          "Seconds without a new segment after which a track whose backend "
                          "gives no total and no state is taken as complete",
                          0.0, 86400.0, kDefaultIdleTimeout, rw));
  /**
   * GstSegDlSrc:speculative-fetch:
   * While the backend is still producing the track, ask for the segment
   * after the ready ones before the status lists it (one request at a time,
   * every poll-interval / 4 at most, or the server's Retry-After when
   * longer), so it is fetched as soon as it exists. FALSE: only segments
   * the status lists are asked for (default TRUE).
   */
  g_object_class_install_property(
      gobject_class, PROP_SPECULATIVE_FETCH,
      g_param_spec_boolean("speculative-fetch", "Speculative fetch",
                           "While the track is produced, also ask for the next segment before "
                           "the status lists it (at most every poll-interval/4)",
                           kDefaultSpeculativeFetch, rw));
  /**
   * GstSegDlSrc:user-agent:
   * The User-Agent header of every request (default "segdl/VERSION").
   */
  g_object_class_install_property(
      gobject_class, PROP_USER_AGENT,
      g_param_spec_string("user-agent", "User-Agent", "User-Agent header sent with every request",
                          "segdl/" VERSION, rw));
  /**
   * GstSegDlSrc:ssl-strict:
   * Verify HTTPS certificates (default TRUE).
   */
  g_object_class_install_property(
      gobject_class, PROP_SSL_STRICT,
      g_param_spec_boolean("ssl-strict", "SSL strict",
                           "Fail on HTTPS certificates that cannot be verified", TRUE, rw));
  /**
   * GstSegDlSrc:buffer-size:
   * Bytes that must be ready before playback goes on after the element ran
   * dry (the BUFFERING hysteresis; default 65536), unless every byte the
   * backend has made so far is ready (the next segment is not listed yet)
   * or the download window (max-concurrent + 1 segments) is whole: the
   * engine fetches nothing past it until playback takes some.
   */
  g_object_class_install_property(
      gobject_class, PROP_BUFFER_SIZE,
      g_param_spec_uint("buffer-size", "Buffer size",
                        "Bytes to have ready before going on after running dry (buffering "
                        "reaches 100% then)",
                        1, G_MAXINT, kDefaultBufferSize, rw));
  /**
   * GstSegDlSrc:join:
   * How segments become one stream. `timeline` (default): parsed frames
   * (e.g. raw AAC with codec_data, Opus, Vorbis, MP3 frames), timestamped
   * from 0 end to end, whatever the segment form. `bytes`: the segments'
   * bytes concatenated (continuous forms only: ADTS, MP3, MPEG-TS,
   * fragmented MP4), e.g. to save the original container with filesink.
   */
  g_object_class_install_property(
      gobject_class, PROP_JOIN,
      g_param_spec_enum("join", "Join",
                        "How segments become one stream: timeline = parsed, timestamped frames "
                        "of every segment laid end to end; bytes = the raw concatenated bytes",
                        join_get_type(), kDefaultJoin, rw));
  /**
   * GstSegDlSrc:first-segment-duration:
   * Seconds of audio in segment 0, used to map seek positions to segments
   * when the status does not give `first_segment_duration` (default 15).
   */
  g_object_class_install_property(
      gobject_class, PROP_FIRST_SEGMENT_DURATION,
      g_param_spec_double("first-segment-duration", "First segment duration",
                          "Seconds of audio in segment 0 when the status does not say (used to "
                          "map seek positions to segments)",
                          0.001, 86400.0, kDefaultFirstSegmentDuration, rw));
  /**
   * GstSegDlSrc:segment-duration:
   * Seconds of audio in every segment after the first, when the status does
   * not give `segment_duration` (default 30).
   */
  g_object_class_install_property(
      gobject_class, PROP_SEGMENT_DURATION,
      g_param_spec_double("segment-duration", "Segment duration",
                          "Seconds of audio in each later segment when the status does not say "
                          "(used to map seek positions to segments)",
                          0.001, 86400.0, kDefaultSegmentDuration, rw));
  /**
   * GstSegDlSrc:cache-dir:
   * Folder of the disk cache (NULL = none). Segments are looked up there
   * first and written there as they download (atomically: never a partial
   * segment); a track held whole plays without any request. A cache that
   * cannot be written is turned off with a WARNING.
   */
  g_object_class_install_property(
      gobject_class, PROP_CACHE_DIR,
      g_param_spec_string("cache-dir", "Cache folder",
                          "Disk cache of segments, looked up before the backend (NULL = no cache)",
                          nullptr, rw));
  /**
   * GstSegDlSrc:cache-max-size:
   * Bytes the cache may hold; least recently used tracks are removed to stay
   * under it (never one in use). 0 = no limit.
   */
  g_object_class_install_property(
      gobject_class, PROP_CACHE_MAX_SIZE,
      g_param_spec_uint64("cache-max-size", "Cache max size",
                          "Bytes the disk cache may hold; least recently used tracks are removed "
                          "(0 = no limit)",
                          0, G_MAXUINT64, 0, rw));
  /**
   * GstSegDlSrc:cache-max-age:
   * Seconds a cached track may go unused before it is removed. 0 = no limit.
   */
  g_object_class_install_property(
      gobject_class, PROP_CACHE_MAX_AGE,
      g_param_spec_uint64("cache-max-age", "Cache max age",
                          "Seconds a cached track may go unused before it is removed (0 = no "
                          "limit)",
                          0, G_MAXUINT64, 0, rw));
  /**
   * GstSegDlSrc:fallback-uri:
   * The whole track at one http(s) URL (the deployed backend's
   * `/stream?v=ID`, or an old full-file server). When the segmented backend
   * fails for good (status unreachable or in error after its retries, a
   * segment failing after its retries, max-wait), the element switches to it
   * with a WARNING and goes on from the position reached: no audio repeated
   * or missing. NULL = no fallback: the same failure is an ERROR.
   */
  g_object_class_install_property(
      gobject_class, PROP_FALLBACK_URI,
      g_param_spec_string("fallback-uri", "Fallback URI",
                          "Full-file URL of the same track, used from the position reached when "
                          "the segmented backend fails for good (NULL = none)",
                          nullptr, rw));
  /**
   * GstSegDlSrc:missing-segment:
   * What to do with a segment that is gone for good (failed after its
   * retries): `fallback` (default) switches to fallback-uri when set, else
   * ends with an ERROR; `error` always ends with an ERROR; `gap` leaves it
   * out — a GAP event (silence) up to where the next segment begins, a
   * WARNING naming it, and `stats` `gaps` counts it: the output is then not
   * complete.
   */
  g_object_class_install_property(
      gobject_class, PROP_MISSING_SEGMENT,
      g_param_spec_enum("missing-segment", "Missing segment",
                        "What to do with a segment gone for good: fallback (to fallback-uri, "
                        "else error), error, or gap (silence of its duration, with a WARNING)",
                        missing_get_type(), int(segdl::MissingSegment::Fallback), rw));
  /**
   * GstSegDlSrc:stats:
   * A "segdl-stats" structure: segments-total (-1 while unknown),
   * segments-available, segments-downloaded, bytes-downloaded, retries,
   * status-polls, time-to-first-byte (ns, NONE until known), current-segment,
   * cache-hits, offline (the whole track came from the disk cache), fallback
   * (the fallback URL took over), gaps (segments left out), resumes
   * (transfers resumed with Range), faults (faults met and worked around).
   * complete: TRUE once the end of the track was reached with every segment
   * (no gap) — FALSE until then, and after an ERROR.
   */
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed("stats", "Statistics",
                         "Download statistics (segments total/available/downloaded, bytes, "
                         "retries, status polls, time to first byte in ns, current segment, "
                         "cache hits, offline)",
                         GST_TYPE_STRUCTURE,
                         GParamFlags(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  gst_seg_dl_src_install_http_properties(gobject_class);

  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_type_mark_as_plugin_api(join_get_type(), GstPluginAPIFlags(0));
  gst_type_mark_as_plugin_api(missing_get_type(), GstPluginAPIFlags(0));
  gst_element_class_set_static_metadata(
      element_class, "Segmented audio download source", "Source/Network",
      "Downloads an audio track that a backend publishes as numbered segments, while it is "
      "produced, and outputs it as one stream",
      "segdl developers");

  basesrc_class->start = gst_seg_dl_src_start;
  basesrc_class->stop = gst_seg_dl_src_stop;
  basesrc_class->unlock = gst_seg_dl_src_unlock;
  basesrc_class->unlock_stop = gst_seg_dl_src_unlock_stop;
  basesrc_class->is_seekable = gst_seg_dl_src_is_seekable;
  basesrc_class->negotiate = gst_seg_dl_src_negotiate;
  basesrc_class->do_seek = gst_seg_dl_src_do_seek;
  basesrc_class->event = gst_seg_dl_src_event;
  basesrc_class->query = gst_seg_dl_src_query;
  pushsrc_class->create = gst_seg_dl_src_create;
}
