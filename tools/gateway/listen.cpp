// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — GET /listen/ID: the joined track as one progressive HTTP
 * answer a browser's <audio> element plays natively, without re-encoding.
 *
 * The format follows the codec and the client's Accept header (Vary: Accept
 * on every answer): AAC as ADTS (audio/aac, the default) or fragmented MP4
 * (audio/mp4), MP3 as is, Opus in WebM (default) or Ogg, Vorbis in Ogg
 * (default) or WebM, FLAC as is. Nothing acceptable: 406 with a JSON error.
 *
 * One GStreamer pipeline per listener: segdlsrc reading from this gateway
 * itself (so the cache, the shared transfers and the retries apply), and the
 * chosen format's tail linked on segdlsrc's first CAPS event; then an
 * appsink. Samples are handed to the gateway thread with an idle source on
 * its GMainContext and appended there to the chunked body; libsoup is never
 * called from a GStreamer thread. The Listen owns its pipeline and ends when
 * the client goes (pipeline stopped) or the answer is complete. An error
 * before the first byte is a JSON error; after it the body is ended and the
 * cause logged.
 *
 * A complete track is one file instead, with its length, Range and ETag:
 * the segments' bytes when they are the chosen format (ADTS, MP3;
 * joined.cpp), else the track joined once into it (joinfile.cpp: m4a, WebM,
 * Ogg, ADTS, FLAC, and MP3 segments that are files of their own). A join
 * that fails streams the track as above, never the backend's whole file
 * (its form may not be the one negotiated).
 *
 * GStreamer and the plugins all this uses are loaded when the gateway
 * starts (prepare_gstreamer), not by the first listener.
 */
#include "cli/plugin.h"
#include "gateway/fill.h"
#include "segdl/httpmodule.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

namespace segdl::gateway {

namespace {

// A stream format /listen answers with: the Content-Type sent, the other
// media types that name it in an Accept header, the tail after segdlsrc
// while the track is streamed, and the container a complete track is joined
// into (joinfile.cpp; null: the segments' bytes, joined.cpp, or streamed).
struct Format {
  const char *type;
  const char *aliases[3];
  const char *tail;
  const char *ext;
};

constexpr Format kAdts = {"audio/aac",
                          {"audio/aacp", "audio/x-aac", nullptr},
                          "aacparse ! audio/mpeg,stream-format=adts",
                          "aac"};
// Fragmented MP4: a moov up front, then a moof + mdat a second.
constexpr Format kFmp4 = {
    "audio/mp4",
    {"audio/x-m4a", "audio/m4a", nullptr},
    "aacparse ! audio/mpeg,stream-format=raw ! mp4mux fragment-duration=1000 streamable=true",
    "m4a"};
constexpr Format kMp3 = {"audio/mpeg", {"audio/mp3", nullptr, nullptr}, "mpegaudioparse", nullptr};
constexpr Format kOpusWebm = {
    "audio/webm", {"video/webm", nullptr, nullptr}, "opusparse ! webmmux streamable=true", "webm"};
constexpr Format kOpusOgg = {
    "audio/ogg", {"application/ogg", nullptr, nullptr}, "opusparse ! oggmux", "ogg"};
// Not vorbisparse: it holds every packet until EOS. The caps make the parser
// take the muxer's audio pad.
constexpr Format kVorbisOgg = {"audio/ogg",
                               {"application/ogg", nullptr, nullptr},
                               "capsfilter caps=audio/x-vorbis ! oggmux",
                               "ogg"};
constexpr Format kVorbisWebm = {"audio/webm",
                                {"video/webm", nullptr, nullptr},
                                "capsfilter caps=audio/x-vorbis ! webmmux streamable=true",
                                "webm"};
// Complete: joined into one FLAC file, the same bytes as streamed.
constexpr Format kFlac = {"audio/flac", {"audio/x-flac", nullptr, nullptr}, "flacparse", "flac"};

using Offers = std::vector<const Format *>;

// The formats of segdlsrc's caps, the default (for */*) first.
Offers offers_for(const GstCaps *caps) {
  if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return {};
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  const std::string name = gst_structure_get_name(s);
  int version = 0;
  if (name == "audio/mpeg" && gst_structure_get_int(s, "mpegversion", &version)) {
    if (version == 1) return {&kMp3};
    if (version == 2 || version == 4) return {&kAdts, &kFmp4};
    return {};
  }
  if (name == "audio/x-opus") return {&kOpusWebm, &kOpusOgg};
  if (name == "audio/x-vorbis") return {&kVorbisOgg, &kVorbisWebm};
  if (name == "audio/x-flac") return {&kFlac};
  return {};
}

// The formats of a cached track, from its segments' Content-Type (the codec
// of WebM and Ogg segments is not in it: both containers take Opus and
// Vorbis); the segments' own form first.
Offers offers_for(const std::string &type) {
  for (const char *t : {"audio/aac", "audio/aacp", "audio/x-aac", "video/mp2t"})
    if (type == t) return {&kAdts, &kFmp4};
  for (const char *t : {"audio/mp4", "audio/x-m4a", "audio/m4a"})
    if (type == t) return {&kFmp4, &kAdts};
  if (type == "audio/mpeg" || type == "audio/mp3") return {&kMp3};
  if (type == "audio/webm" || type == "video/webm") return {&kOpusWebm, &kOpusOgg};
  if (type == "audio/ogg" || type == "application/ogg") return {&kOpusOgg, &kOpusWebm};
  if (type == "audio/flac" || type == "audio/x-flac") return {&kFlac};
  return {};
}

}  // namespace

// An Accept header: its media ranges and their qualities (RFC 9110 12.5.1).
class Accept {
 public:
  explicit Accept(const char *header) {
    if (!header || !*header) header = "*/*";
    gchar **items = g_strsplit(header, ",", -1);
    for (gchar **it = items; *it; it++) add(*it);
    g_strfreev(items);
  }
  const std::string &text() const { return text_; }
  // The quality of `f`: that of the most specific range naming it, 0 if none.
  double quality(const Format &f) const {
    int best = 0;
    double q = 0;
    for (const Range &r : ranges_) {
      const int k = specificity(r.name, f);
      if (k > best) {
        best = k;
        q = r.q;
      }
    }
    return q;
  }
  // The acceptable offer of the highest quality (the first on a tie), or null.
  const Format *choose(const Offers &offers) const {
    const Format *pick = nullptr;
    double best = 0;
    for (const Format *f : offers) {
      const double q = quality(*f);
      if (q > best) {
        best = q;
        pick = f;
      }
    }
    return pick;
  }

 private:
  struct Range {
    std::string name;  // lower case, "*/*", "audio/*" or "audio/webm"
    double q = 1;
  };
  void add(gchar *item) {
    gchar **parts = g_strsplit(item, ";", -1);
    if (!parts[0]) {  // an empty item ("a, , b"): g_strsplit gives no part
      g_strfreev(parts);
      return;
    }
    Range r;
    gchar *name = g_ascii_strdown(g_strstrip(parts[0]), -1);
    r.name = name;
    g_free(name);
    for (gchar **p = parts + 1; *p; p++) {
      gchar *param = g_strstrip(*p);
      if ((param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
        r.q = std::clamp(g_ascii_strtod(param + 2, nullptr), 0.0, 1.0);
    }
    g_strfreev(parts);
    if (r.name.find('/') == std::string::npos) return;  // not a media range
    if (!text_.empty()) text_ += ", ";
    text_ += g_strstrip(item);
    ranges_.push_back(std::move(r));
  }
  // 3 for the type or an alias, 2 for its "major/*", 1 for "*/*", else 0.
  static int specificity(const std::string &range, const Format &f) {
    if (range == "*/*") return 1;
    int k = 0;
    const char *names[] = {f.type, f.aliases[0], f.aliases[1], f.aliases[2]};
    for (const char *n : names) {
      if (!n) continue;
      if (range == n) return 3;
      const char *slash = strchr(n, '/');
      if (g_str_has_suffix(range.c_str(), "/*") && range.size() == size_t(slash - n) + 2 &&
          range.compare(0, range.size() - 1, n, size_t(slash - n) + 1) == 0)
        k = 2;
    }
    return k;
  }

  std::vector<Range> ranges_;
  std::string text_;
};

namespace {

// The types of `offers`, for an error text ("audio/aac, audio/mp4").
std::string type_list(const Offers &offers) {
  std::string out;
  for (const Format *f : offers) out += std::string(out.empty() ? "" : ", ") + f->type;
  return out;
}

// 406 Not Acceptable: what was asked, what there is.
void reply_not_acceptable(SoupServerMessage *msg, const std::string &id, const Accept &accept,
                          const Offers &offers) {
  reply_error(msg, 406, "not_acceptable",
              "no stream of " + id + " matches Accept: " + accept.text() + " (it can be sent as " +
                  type_list(offers) + ")");
}

// The answer for an error segdlsrc posted before anything was sent.
// `upstream`: why this gateway's last status request for the id failed (the
// cause segdlsrc saw only as our 502 or 504), or null.
void error_reply(SoupServerMessage *msg, const std::string &id, const GError *e,
                 const GstStructure *details, const Outcome *upstream) {
  guint http = 0;
  if (details) gst_structure_get_uint(details, "http-status-code", &http);
  const std::string text = std::string(e ? e->message : "the pipeline failed") + " (" + id + ")";
  if (http == 404) return reply_error(msg, 404, "not_found", text);
  if (upstream && (http == 502 || http == 504))
    return reply_error(msg, upstream->http_status, upstream->error, upstream->message);
  if (e && e->domain == GST_STREAM_ERROR && e->code == GST_STREAM_ERROR_CODEC_NOT_FOUND)
    return reply_error(msg, 502, "unsupported_codec", text);
  if (http == 504 || (e && strstr(e->message, "timed out")))
    return reply_error(msg, 504, "upstream_timeout", text);
  reply_error(msg, 502, "upstream_error", text);
}

}  // namespace

// One listener: its message and its pipeline. Deletes itself when it ends.
class Listen {
 public:
  Listen(Gateway::Impl &gw, SoupServerMessage *msg, std::string id, const Accept &accept)
      : gw_(gw),
        msg_(static_cast<SoupServerMessage *>(g_object_ref(msg))),
        id_(std::move(id)),
        accept_(accept) {
    finished_id_ = g_signal_connect(msg, "finished", G_CALLBACK(on_gone), this);
    disconnected_id_ = g_signal_connect(msg, "disconnected", G_CALLBACK(on_gone), this);
    wrote_id_ = g_signal_connect(msg, "wrote-body-data", G_CALLBACK(on_wrote), this);
    soup_server_message_pause(msg);
    gw_.add(&Counters::listeners, 1);
    watch_client();
  }
  ~Listen();
  Listen(const Listen &) = delete;
  Listen &operator=(const Listen &) = delete;

  bool start(const std::string &backend, std::string &error);

 private:
  static void on_gone(SoupServerMessage *, gpointer data) noexcept {
    delete static_cast<Listen *>(data);
  }
  static void on_wrote(SoupServerMessage *, guint size, gpointer data) noexcept;
  void watch_client();
  static gboolean on_client_readable(GSocket *sock, GIOCondition, gpointer data) noexcept;
  bool wait_for_client(GstBuffer *buf);
  static GstPadProbeReturn on_caps(GstPad *pad, GstPadProbeInfo *info, gpointer data) noexcept;
  static GstFlowReturn on_sample(GstAppSink *sink, gpointer data) noexcept;
  static gboolean on_bus(GstBus *, GstMessage *m, gpointer data) noexcept;
  static gboolean on_idle(gpointer data) noexcept;
  bool add_tail(GstPad *pad, GstCaps *caps);
  void flush();
  bool ended(GstMessage *m);  // true when this is deleted

  Gateway::Impl &gw_;
  SoupServerMessage *msg_;
  const std::string id_;
  const Accept accept_;
  gulong finished_id_ = 0, disconnected_id_ = 0, wrote_id_ = 0;
  GstElement *pipeline_ = nullptr;
  GSource *bus_watch_ = nullptr;
  GSource *client_watch_ = nullptr;  // the client's socket, for its end while nothing is written
  bool head_sent_ = false, done_ = false;  // gateway thread
  std::mutex mu_;                          // the fields below
  std::condition_variable cv_;             // pending_ fell, or closing_
  int64_t pending_ = 0;  // bytes made and not yet written to the client (queued or in libsoup)
  bool closing_ = false;
  std::deque<GBytes *> chunks_;
  std::string type_;
  Offers refused_;  // the formats there were when none was acceptable
  GSource *idle_ = nullptr;
};

Listen::~Listen() {
  if (finished_id_) g_signal_handler_disconnect(msg_, finished_id_);
  if (disconnected_id_) g_signal_handler_disconnect(msg_, disconnected_id_);
  g_signal_handler_disconnect(msg_, wrote_id_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;  // a producer waiting for the client gives up
  }
  cv_.notify_all();
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);  // joins the streaming threads
    gst_object_unref(pipeline_);
  }
  if (bus_watch_) {
    g_source_destroy(bus_watch_);
    g_source_unref(bus_watch_);
  }
  if (client_watch_) {
    g_source_destroy(client_watch_);
    g_source_unref(client_watch_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_) {
    g_source_destroy(idle_);
    g_source_unref(idle_);
  }
  for (GBytes *b : chunks_) g_bytes_unref(b);
  g_object_unref(msg_);
  gw_.add(&Counters::listeners, -1);
}

// libsoup reads nothing while it sends an answer, so a client that leaves
// while its stream waits for the next segment is only seen at the next
// write. Its socket turning readable with nothing to read (EOF) says so at
// once: the pipeline is stopped then. (Bytes to read are a next request:
// the watch ends, libsoup reads them after this answer.)
void Listen::watch_client() {
  GSocket *sock = soup_server_message_get_socket(msg_);
  if (!sock) return;
  client_watch_ =
      g_socket_create_source(sock, GIOCondition(G_IO_IN | G_IO_HUP | G_IO_ERR), nullptr);
  g_source_set_callback(client_watch_, G_SOURCE_FUNC(on_client_readable), this, nullptr);
  g_source_attach(client_watch_, gw_.ctx);
}

gboolean Listen::on_client_readable(GSocket *sock, GIOCondition, gpointer data) noexcept {
  auto *self = static_cast<Listen *>(data);
  char byte;
  const ssize_t n = recv(g_socket_get_fd(sock), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return G_SOURCE_CONTINUE;
  g_source_unref(self->client_watch_);
  self->client_watch_ = nullptr;
  if (n > 0) return G_SOURCE_REMOVE;
  g_signal_handler_disconnect(self->msg_, self->finished_id_);
  g_signal_handler_disconnect(self->msg_, self->disconnected_id_);
  self->finished_id_ = self->disconnected_id_ = 0;
  self->done_ = true;
  abort_connection(self->msg_);
  delete self;
  return G_SOURCE_REMOVE;
}

bool Listen::start(const std::string &backend, std::string &error) {
  // Poll often and go on with whatever is there: the browser buffers itself.
  return start_segdl_pipeline(backend, id_, true, on_caps, G_SOURCE_FUNC(on_bus), this, &pipeline_,
                              &bus_watch_, error);
}

bool start_segdl_pipeline(const std::string &backend, const std::string &id, bool live,
                          GstPadProbeCallback on_caps, GSourceFunc on_bus, gpointer data,
                          GstElement **pipeline, GSource **bus_watch, std::string &error) {
  GstElement *src = gst_element_factory_make("segdlsrc", nullptr);
  if (!src) {
    error = "the segdlsrc element is not installed";
    return false;
  }
  g_object_set(src, "backend-url", backend.c_str(), "video-id", id.c_str(), nullptr);
  if (live) g_object_set(src, "poll-interval", 0.5, "buffer-size", 1u, nullptr);
  *pipeline = gst_pipeline_new(nullptr);
  gst_bin_add(GST_BIN(*pipeline), src);
  GstPad *pad = gst_element_get_static_pad(src, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_caps, data, nullptr);
  gst_object_unref(pad);
  GstBus *bus = gst_element_get_bus(*pipeline);
  *bus_watch = gst_bus_create_watch(bus);
  gst_object_unref(bus);
  g_source_set_callback(*bus_watch, on_bus, data, nullptr);
  g_source_attach(*bus_watch, g_main_context_get_thread_default());
  if (gst_element_set_state(*pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    error = "the pipeline did not start";
    return false;
  }
  return true;
}

// Streaming thread: on segdlsrc's first CAPS event, the tail for them.
GstPadProbeReturn Listen::on_caps(GstPad *pad, GstPadProbeInfo *info, gpointer data) noexcept {
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(ev) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
  auto *self = static_cast<Listen *>(data);
  GstCaps *caps = nullptr;
  gst_event_parse_caps(ev, &caps);
  if (!self->add_tail(pad, caps)) {
    gchar *text = gst_caps_to_string(caps);
    GError *e = g_error_new(GST_STREAM_ERROR, GST_STREAM_ERROR_CODEC_NOT_FOUND,
                            "no browser format for %s", text);
    g_free(text);
    gst_element_post_message(self->pipeline_,
                             gst_message_new_error(GST_OBJECT(self->pipeline_), e, nullptr));
    g_error_free(e);
  }
  return GST_PAD_PROBE_REMOVE;
}

// The tail of the format the client accepts best; false (refused_ set when
// it is the client's Accept) when there is none.
bool Listen::add_tail(GstPad *pad, GstCaps *caps) {
  const Offers offers = offers_for(caps);
  const Format *f = accept_.choose(offers);
  if (!f) {
    std::lock_guard<std::mutex> lock(mu_);
    refused_ = offers;
    return false;
  }
  const std::string type = f->type;
  const std::string tail = std::string(f->tail) + " ! appsink name=sink sync=false";
  GError *err = nullptr;
  GstElement *bin = gst_parse_bin_from_description(tail.c_str(), TRUE, &err);
  if (!bin) {
    g_warning("segdl-gateway: /listen tail '%s': %s", tail.c_str(), err ? err->message : "?");
    g_clear_error(&err);
    return false;
  }
  GstElement *sink = gst_bin_get_by_name(GST_BIN(bin), "sink");
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, this, nullptr);
  gst_object_unref(sink);
  {
    std::lock_guard<std::mutex> lock(mu_);
    type_ = type;
  }
  gst_bin_add(GST_BIN(pipeline_), bin);
  GstPad *sinkpad = gst_element_get_static_pad(bin, "sink");
  const GstPadLinkReturn link = gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
  if (link != GST_PAD_LINK_OK) {
    g_warning("segdl-gateway: /listen tail '%s': %s", tail.c_str(), gst_pad_link_get_name(link));
    return false;
  }
  return gst_element_sync_state_with_parent(bin);
}

// Streaming thread: queue the bytes, wake the gateway thread once, and
// while more than max_client_queue_bytes wait for the client, block here
// (back-pressure: the pipeline pauses, the track is not made into memory).
GstFlowReturn Listen::on_sample(GstAppSink *sink, gpointer data) noexcept {
  auto *self = static_cast<Listen *>(data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  const bool go_on = self->wait_for_client(gst_sample_get_buffer(sample));
  gst_sample_unref(sample);
  return go_on ? GST_FLOW_OK : GST_FLOW_FLUSHING;
}

bool Listen::wait_for_client(GstBuffer *buf) {
  GstMapInfo map;
  if (!buf || !gst_buffer_map(buf, &map, GST_MAP_READ)) return true;
  GBytes *b = g_bytes_new(map.data, map.size);
  gst_buffer_unmap(buf, &map);
  std::unique_lock<std::mutex> lock(mu_);
  if (closing_) {
    g_bytes_unref(b);
    return false;
  }
  chunks_.push_back(b);
  pending_ += static_cast<int64_t>(g_bytes_get_size(b));
  gw_.note_queue(pending_);
  if (!idle_) {
    // At the priority of the gateway's own I/O: at the idle priority it
    // would wait until every transfer the gateway serves (the element's
    // own segment requests among them) had gone quiet.
    idle_ = g_idle_source_new();
    g_source_set_priority(idle_, G_PRIORITY_DEFAULT);
    g_source_set_callback(idle_, on_idle, this, nullptr);
    g_source_attach(idle_, gw_.ctx);
  }
  const int64_t bound = gw_.opts.max_client_queue_bytes;
  if (pending_ <= bound) return true;
  gw_.add(&Counters::producers_paused, 1);
  cv_.wait(lock, [&] { return closing_ || pending_ <= bound; });
  gw_.add(&Counters::producers_paused, -1);
  return !closing_;
}

// Gateway thread: libsoup wrote `size` bytes of the body to the socket.
void Listen::on_wrote(SoupServerMessage *, guint size, gpointer data) noexcept {
  auto *self = static_cast<Listen *>(data);
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    self->pending_ = std::max<int64_t>(0, self->pending_ - static_cast<int64_t>(size));
  }
  self->cv_.notify_all();
}

gboolean Listen::on_idle(gpointer data) noexcept {
  auto *self = static_cast<Listen *>(data);
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    g_source_unref(self->idle_);
    self->idle_ = nullptr;
  }
  self->flush();
  return G_SOURCE_REMOVE;
}

// Gateway thread: the head on the first bytes, then every queued chunk.
void Listen::flush() {
  std::deque<GBytes *> chunks;
  std::string type;
  {
    std::lock_guard<std::mutex> lock(mu_);
    chunks.swap(chunks_);
    type = type_;
  }
  if (done_ || chunks.empty()) {
    for (GBytes *b : chunks) g_bytes_unref(b);
    return;
  }
  SoupMessageBody *body = soup_server_message_get_response_body(msg_);
  if (!head_sent_) {
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg_);
    soup_server_message_set_status(msg_, SOUP_STATUS_OK, nullptr);
    soup_message_headers_replace(h, "Content-Type", type.c_str());
    soup_message_headers_replace(h, "Cache-Control", kNoStore);
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    soup_message_body_set_accumulate(body, FALSE);
    head_sent_ = true;
  }
  for (GBytes *b : chunks) {
    soup_message_body_append_bytes(body, b);
    g_bytes_unref(b);
  }
  soup_server_message_unpause(msg_);
}

gboolean Listen::on_bus(GstBus *, GstMessage *m, gpointer data) noexcept {
  auto *self = static_cast<Listen *>(data);
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS || GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
    if (self->ended(m)) return G_SOURCE_REMOVE;
  return G_SOURCE_CONTINUE;
}

// EOS or the first ERROR: the answer is finished, and libsoup's "finished"
// deletes this once it has gone out; or, after an error under a body already
// begun, the connection is cut and this deleted at once.
bool Listen::ended(GstMessage *m) {
  if (done_) return false;
  flush();
  done_ = true;
  GError *e = nullptr;
  const GstStructure *details = nullptr;
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    gst_message_parse_error(m, &e, nullptr);
    gst_message_parse_error_details(m, &details);
  }
  if (head_sent_ && e) {
    g_warning("segdl-gateway: /listen/%s cut short: %s", id_.c_str(), e->message);
    g_error_free(e);
    g_signal_handler_disconnect(msg_, finished_id_);
    g_signal_handler_disconnect(msg_, disconnected_id_);
    finished_id_ = disconnected_id_ = 0;
    abort_connection(msg_);
    delete this;
    return true;
  }
  Offers refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    refused = refused_;
  }
  if (head_sent_) {
    soup_message_body_complete(soup_server_message_get_response_body(msg_));
  } else if (!refused.empty()) {
    reply_not_acceptable(msg_, id_, accept_, refused);
  } else {
    if (!e) e = g_error_new(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED, "the track has no audio");
    auto why = gw_.status_failed.find(id_);
    error_reply(msg_, id_, e, details, why == gw_.status_failed.end() ? nullptr : &why->second);
  }
  g_clear_error(&e);
  soup_server_message_unpause(msg_);
  return false;
}

// What /listen and the joins use, loaded once when the gateway starts so the
// first listener does not pay for it: GStreamer itself (the registry), the
// elements' plugins (segdlsrc, parsebin and the demuxers and common
// typefinders it plugs, the parsers and muxers of every form, appsink,
// filesink) and segdl's HTTP module (segdlsrc loads the same file; it stays
// resident).
// False with `error` when GStreamer cannot be initialised; a missing element
// is left to the request that needs it, whose error names it.
bool Gateway::Impl::prepare_gstreamer(std::string &error) {
  GError *gerr = nullptr;
  if (!gst_init_check(nullptr, nullptr, &gerr)) {
    error = std::string("GStreamer: ") + (gerr ? gerr->message : "cannot initialise");
    g_clear_error(&gerr);
    return false;
  }
  static std::once_flag once;
  std::call_once(once, [] {
    // segdlsrc from the registry, else beside this program (a build tree,
    // or its own prefix wherever it was moved), as segdl finds it.
    std::string where;
    if (!segdl::cli::ensure_segdlsrc(where))
      g_warning("segdl-gateway: %s: /listen will answer 500 until it is found", where.c_str());
    static const char *const kElements[] = {
        "segdlsrc", "parsebin",       "typefind",  "capsfilter", "appsink", "filesink", "identity",
        "aacparse", "mpegaudioparse", "opusparse", "flacparse",  "mp4mux",  "webmmux",  "oggmux",
        "qtdemux",  "matroskademux",  "oggdemux",  "tsdemux",    "id3demux"};
    for (const char *name : kElements) {
      GstElement *e = gst_element_factory_make(name, nullptr);  // the plugin loaded, class_init
      if (e) gst_object_unref(gst_object_ref_sink(e));
    }
    // The common typefinders (parsebin's); not every plugin with one (libav
    // alone would map its codecs' libraries, and is loaded only if needed).
    GList *finders = gst_type_find_factory_get_list();
    for (GList *l = finders; l; l = l->next) {
      GstPluginFeature *f = GST_PLUGIN_FEATURE(l->data);
      if (g_strcmp0(gst_plugin_feature_get_plugin_name(f), "typefindfunctions") != 0) continue;
      GstPluginFeature *loaded = gst_plugin_feature_load(f);
      if (loaded) gst_object_unref(loaded);
    }
    gst_plugin_feature_list_free(finders);
    std::string module_error;
    if (!load_http_module(module_error))
      g_warning("segdl-gateway: %s (/listen will fail)", module_error.c_str());
  });
  return true;
}

namespace {

// The track streamed to `msg` by a Listen of its own (a JSON error if it
// cannot start). `msg` may be paused already (a join's waiter).
void stream_track(Gateway::Impl &gw, SoupServerMessage *msg, const std::string &id,
                  const Accept &accept) {
  std::string error;
  if (!gw.prepare_gstreamer(error)) {  // once done, only gst_init_check's answer
    reply_error(msg, 500, "internal_error", error);
    soup_server_message_unpause(msg);
    return;
  }
  auto *l = new Listen(gw, msg, id, accept);
  if (!l->start(gw.self_url(), error)) {
    delete l;
    reply_error(msg, 500, "internal_error", error);
    soup_server_message_unpause(msg);
  }
}

}  // namespace

void Gateway::Impl::listen_track(SoupServerMessage *msg, const std::string &id) {
  SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Vary", "Accept");
  if (!check_id(msg, id)) return;
  const Accept accept(soup_message_headers_get_list(req, "Accept"));
  const Offers every = {&kAdts, &kFmp4, &kMp3, &kOpusWebm, &kOpusOgg, &kFlac};
  if (!accept.choose(every)) return reply_not_acceptable(msg, id, accept, every);
  if (serve_listen_file(msg, id, accept)) return;
  stream_track(*this, msg, id, accept);
}

// A complete track as one file with its length (Range and validators as for
// any cached entity), in the format the client accepts best: the segments'
// own bytes when they are that format (ADTS, MP3), else the track joined
// into it (joinfile.cpp). True when answered (406 included); false to stream.
bool Gateway::Impl::serve_listen_file(SoupServerMessage *msg, const std::string &id,
                                      const Accept &accept) {
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return false;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  CachedTrack track;
  SegmentInfo info;
  std::string path;  // located (its size checked), not read: no file I/O on this thread
  if (!cache || !cache->read_track(track) || !track.complete || !cache->locate(0, info, path))
    return false;
  const Offers offers = offers_for(info.content_type);
  if (offers.empty()) return false;
  const Format *f = accept.choose(offers);
  if (!f) {
    reply_not_acceptable(msg, id, accept, offers);
    return true;
  }
  const std::string &t = info.content_type;
  const bool same =
      (f == &kAdts && (t == "audio/aac" || t == "audio/aacp" || t == "audio/x-aac")) || f == &kMp3;
  // A join that fails (the segments' type promised a codec they do not
  // hold, the disk is full...) streams the track instead: the form the
  // client accepts for the codec segdlsrc finds, or a JSON error before any
  // byte; never the backend's bytes, whose form may be another.
  JoinFallback stream = [this, id, accept](SoupServerMessage *m) {
    stream_track(*this, m, id, accept);
  };
  // MP3 segments that are files of their own are joined too (joined.cpp).
  if (same) return serve_joined(msg, id, std::move(stream));
  return f->ext && serve_joined_file(msg, id, f->ext, std::move(stream));
}

}  // namespace segdl::gateway
