// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — a whole track of a self-contained form (m4a, WebM, Ogg
 * segments) held complete in the cache, as ONE file of the same container,
 * without re-encoding: segdlsrc (the element's timeline join, reading from
 * this gateway as /listen does) ! parser ! muxer ! filesink, written once per
 * set of segments into the track's cache folder (joined-<etag>.<ext>, so it
 * goes when the track is evicted), then served like any cached entity:
 * Content-Length, Range, a strong ETag (of the segments' ETags and the
 * container), 304. Clients asking while the join runs wait for it; a join
 * that fails sends them to the backends (upstream.cpp).
 */
#include "gateway/joinfile.h"
#include "gateway/filebody.h"

#include <glib/gstdio.h>
#include <gst/gst.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace segdl::gateway {

namespace {

// The container of a self-contained segment type, or the one named by `ext`
// (/listen's choice; "aac" is ADTS, no muxer); null for the others.
const Container *container_for(const std::string &type, const char *ext) {
  static const Container kMp4 = {"m4a", "audio/mp4", "mp4mux faststart=true"};
  static const Container kWebm = {"webm", "audio/webm", "webmmux"};
  static const Container kOgg = {"ogg", "audio/ogg", "oggmux"};
  static const Container kAdts = {"aac", "audio/aac", nullptr};
  if (ext) {
    for (const Container *c : {&kMp4, &kWebm, &kOgg, &kAdts})
      if (strcmp(ext, c->ext) == 0) return c;
    return nullptr;
  }
  if (type == "audio/mp4" || type == "audio/x-m4a" || type == "audio/m4a") return &kMp4;
  if (type == "audio/webm" || type == "video/webm") return &kWebm;
  if (type == "audio/ogg" || type == "application/ogg") return &kOgg;
  return nullptr;
}

// The parser that hands the muxer segdlsrc's packets, for their caps (ADTS
// when there is no muxer).
const char *parser_for(const GstCaps *caps, const Container &c) {
  if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return nullptr;
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  const std::string name = gst_structure_get_name(s);
  int version = 0;
  if (name == "audio/mpeg" && gst_structure_get_int(s, "mpegversion", &version) && version == 4)
    return c.muxer ? "aacparse ! audio/mpeg,stream-format=raw"
                   : "aacparse ! audio/mpeg,stream-format=adts";
  if (name == "audio/x-opus") return "opusparse";
  if (name == "audio/x-vorbis") return "capsfilter caps=audio/x-vorbis";
  return nullptr;
}

}  // namespace

JoinJob::~JoinJob() {
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
  }
  if (bus_watch_) {
    g_source_destroy(bus_watch_);
    g_source_unref(bus_watch_);
  }
  if (fd_ >= 0) {
    unlink(tmp_.c_str());
    close(fd_);
  }
}

bool JoinJob::start(const std::string &backend, std::string &error) {
  tmp_ = cache_->track_dir() + "/.joined-XXXXXX";
  fd_ = g_mkstemp_full(&tmp_[0], O_RDWR | O_CLOEXEC, 0644);
  if (fd_ < 0 || flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    error = std::string("cannot write a joined file: ") + g_strerror(errno);
    return false;
  }
  return start_segdl_pipeline(backend, id_, false, on_caps, G_SOURCE_FUNC(on_bus), this, &pipeline_,
                              &bus_watch_, error);
}

// Streaming thread: on segdlsrc's first CAPS event, parser ! muxer ! filesink.
GstPadProbeReturn JoinJob::on_caps(GstPad *pad, GstPadProbeInfo *info, gpointer data) noexcept {
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(ev) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
  auto *self = static_cast<JoinJob *>(data);
  GstCaps *caps = nullptr;
  gst_event_parse_caps(ev, &caps);
  if (!self->add_tail(pad, caps)) {
    GError *e = g_error_new(GST_STREAM_ERROR, GST_STREAM_ERROR_CODEC_NOT_FOUND,
                            "cannot join these packets into %s", self->container_.ext);
    gst_element_post_message(self->pipeline_,
                             gst_message_new_error(GST_OBJECT(self->pipeline_), e, nullptr));
    g_error_free(e);
  }
  return GST_PAD_PROBE_REMOVE;
}

bool JoinJob::add_tail(GstPad *pad, GstCaps *caps) {
  const char *parser = parser_for(caps, container_);
  if (!parser) return false;
  const std::string mux = container_.muxer ? std::string(" ! ") + container_.muxer : "";
  const std::string desc = parser + mux + " ! filesink name=file sync=false";
  GError *err = nullptr;
  GstElement *bin = gst_parse_bin_from_description(desc.c_str(), TRUE, &err);
  if (!bin) {
    g_warning("segdl-gateway: join '%s': %s", desc.c_str(), err ? err->message : "?");
    g_clear_error(&err);
    return false;
  }
  GstElement *file = gst_bin_get_by_name(GST_BIN(bin), "file");
  g_object_set(file, "location", tmp_.c_str(), nullptr);
  gst_object_unref(file);
  gst_bin_add(GST_BIN(pipeline_), bin);
  GstPad *sinkpad = gst_element_get_static_pad(bin, "sink");
  const GstPadLinkReturn link = gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
  return link == GST_PAD_LINK_OK && gst_element_sync_state_with_parent(bin);
}

gboolean JoinJob::on_bus(GstBus *, GstMessage *m, gpointer data) noexcept {
  auto *self = static_cast<JoinJob *>(data);
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS) {
    self->finish(true, "");
    return G_SOURCE_REMOVE;
  }
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError *e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    self->finish(false, e ? e->message : "the pipeline failed");
    g_clear_error(&e);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

// The file into place (or the temporary removed), the waiters answered, and
// this job deleted (by join_ended).
void JoinJob::finish(bool ok, const std::string &why) {
  gst_element_set_state(pipeline_, GST_STATE_NULL);  // filesink has closed the file
  if (ok && rename(tmp_.c_str(), path_.c_str()) != 0) {
    ok = false;
    unlink(tmp_.c_str());
  }
  close(fd_);
  fd_ = -1;
  if (!ok) {
    unlink(tmp_.c_str());
    g_warning("segdl-gateway: joining %s into %s failed: %s", id_.c_str(), container_.ext,
              why.c_str());
  }
  std::vector<HeldPtr> waiters;
  waiters.swap(waiters_);
  JoinJob *self = this;
  const std::string id = id_;
  Gateway::Impl &gw = gw_;
  const Entity meta = meta_;
  const std::string path = path_;
  gw.join_ended(self);  // deletes this
  for (HeldPtr &h : waiters) {
    SoupServerMessage *msg = h->msg();
    if (!msg) continue;
    if (ok && gw.reply_file(msg, path, meta)) {
      h->resume();
      continue;
    }
    g_object_ref(msg);
    h->release();  // the backends take the paused message over
    gw.start_full(msg, id);
    g_object_unref(msg);
  }
}

// Answers `msg` from the joined file at `path` (read in chunks as the
// client takes them, never mapped: filebody.cpp), with `meta`'s validators;
// false when the file cannot be opened.
bool Gateway::Impl::reply_file(SoupServerMessage *msg, const std::string &path,
                               const Entity &meta) {
  GStatBuf st;
  if (g_stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || g_access(path.c_str(), R_OK) != 0)
    return false;
  Entity e = meta;
  e.last_modified = http_date(st.st_mtime);
  FilePart part;
  part.path = path;
  part.length = static_cast<uint64_t>(st.st_size);
  count(&Counters::cache_hits);
  uint64_t first = 0, last = 0;
  if (reply_entity_head(msg, e, part.length, first, last))
    stream_file_parts(*this, msg, slice_parts({part}, first, last), nullptr);
  return true;
}

void Gateway::Impl::join_ended(JoinJob *j) {
  auto it = joins.find(j->path());
  if (it != joins.end() && it->second.get() == j) joins.erase(it);
}

void Gateway::Impl::abandon_joins() {
  joins.clear();
}

// A complete track of a self-contained form: the joined file (made first if
// needed); with `ext`, joined into that container whatever the segments' form.
// False when the track is not such a track (the caller goes on).
bool Gateway::Impl::serve_joined_file(SoupServerMessage *msg, const std::string &id,
                                      const char *ext) {
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return false;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  CachedTrack t;
  if (!cache || !cache->read_track(t) || !t.complete || !t.total || *t.total <= 0) return false;
  std::string type;
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  bool ok = true;
  for (int64_t n = 0; ok && n < *t.total; n++) {
    SegmentInfo info;
    GBytes *b = cache->lookup(n, &info);
    ok = b && !info.etag.empty() && (n == 0 || info.content_type == type);
    if (b) g_bytes_unref(b);
    if (n == 0) type = info.content_type;
    g_checksum_update(sum, reinterpret_cast<const guchar *>(info.etag.data()),
                      static_cast<gssize>(info.etag.size()));
  }
  const Container *c = ok ? container_for(type, ext) : nullptr;
  if (c) g_checksum_update(sum, reinterpret_cast<const guchar *>(c->ext), strlen(c->ext));
  const std::string hex = g_checksum_get_string(sum);
  g_checksum_free(sum);
  if (!c) return false;
  Entity meta;
  meta.etag = "\"" + hex.substr(0, 32) + "\"";
  meta.content_type = c->type;
  meta.cache_control = immutable_cc(opts);
  const std::string path = cache->track_dir() + "/joined-" + hex.substr(0, 16) + "." + c->ext;
  if (g_file_test(path.c_str(), G_FILE_TEST_IS_REGULAR) && reply_file(msg, path, meta)) return true;
  auto it = joins.find(path);
  if (it != joins.end()) {
    it->second->wait(msg);
    return true;
  }
  if (!gst_init_check(nullptr, nullptr, nullptr)) return false;
  auto job = std::make_unique<JoinJob>(*this, id, path, meta, std::move(cache), *c);
  if (!job->start(self_url(), error)) {
    g_warning("segdl-gateway: cannot join %s: %s", id.c_str(), error.c_str());
    return false;
  }
  job->wait(msg);
  joins.emplace(path, std::move(job));
  return true;
}

}  // namespace segdl::gateway
