// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — a whole track of a self-contained form (m4a, WebM, Ogg
 * segments) held complete in the cache, as ONE file of the same container,
 * without re-encoding: segdlsrc (the element's timeline join, reading from
 * this gateway as /listen does) ! parser ! muxer ! filesink, written once per
 * set of segments into the track's cache folder (joined-<etag>.<ext>, so it
 * goes when the track is evicted), then served like any cached entity:
 * Content-Length, Range, a strong ETag (of the segments' ETags and the
 * container), 304. Clients asking while the join runs wait for it; a join
 * that fails sends them to the backends (upstream.cpp). MP3 segments that
 * are files of their own (joined.cpp) are joined the same way into plain
 * MP3 frames (mpegaudioparse: no ID3 tag, no Xing/Info frame).
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
// (/listen's choice; "aac" is ADTS and "flac" FLAC, no muxer); null for the
// others.
const Container *container_for(const std::string &type, const char *ext) {
  static const Container kMp4 = {"m4a", "audio/mp4", "mp4mux faststart=true"};
  static const Container kWebm = {"webm", "audio/webm", "webmmux"};
  static const Container kOgg = {"ogg", "audio/ogg", "oggmux"};
  static const Container kAdts = {"aac", "audio/aac", nullptr};
  static const Container kFlac = {"flac", "audio/flac", nullptr};
  static const Container kMp3 = {"mp3", "audio/mpeg", nullptr};
  if (ext) {
    for (const Container *c : {&kMp4, &kWebm, &kOgg, &kAdts, &kFlac, &kMp3})
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
  if (name == "audio/x-flac" && !c.muxer) return "flacparse";  // FLAC's own stream
  if (name == "audio/mpeg" && gst_structure_get_int(s, "mpegversion", &version) && version == 1 &&
      !c.muxer)
    return "mpegaudioparse";  // MP3 frames, nothing else (joined.cpp)
  return nullptr;
}

// The record of a joined file, beside it: "size=N\nsha256=HEX\n".
std::string record_path(const std::string &path) {
  return path + ".meta";
}

bool read_record(const std::string &path, int64_t &size, std::string &sha256) {
  g_autofree char *text = nullptr;
  gsize len = 0;
  if (!g_file_get_contents(record_path(path).c_str(), &text, &len, nullptr) || len > 4096)
    return false;
  size = -1;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    if (g_str_has_prefix(*l, "size=")) {
      char *end = nullptr;
      size = g_ascii_strtoll(*l + 5, &end, 10);
      if (!end || *end || end == *l + 5) size = -1;
    } else if (g_str_has_prefix(*l, "sha256=")) {
      sha256 = *l + 7;
    }
  }
  return size >= 0 && sha256.size() == 64;
}

bool write_record(const std::string &path, int64_t size, const std::string &sha256,
                  std::string &error) {
  const std::string text = "size=" + std::to_string(size) + "\nsha256=" + sha256 + "\n";
  GError *err = nullptr;
  if (g_file_set_contents(record_path(path).c_str(), text.data(), gssize(text.size()), &err))
    return true;
  error = err ? err->message : "cannot write";
  g_clear_error(&err);
  return false;
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

// The file into place, then hashed (on a worker) and its record written
// beside it: a joined file is served only with its record (reply_joined),
// so one without (a join cut by a stop, a crash) is joined again.
void JoinJob::finish(bool ok, const std::string &why) {
  gst_element_set_state(pipeline_, GST_STATE_NULL);  // filesink has closed the file
  if (!ok) return done(false, why);
  if (rename(tmp_.c_str(), path_.c_str()) != 0)
    return done(false, std::string("cannot put the file in place: ") + g_strerror(errno));
  Gateway::Impl &gw = gw_;
  const std::string path = path_;
  gw_.files().check(path_, "", [&gw, path](bool ok, const Verified &v, const std::string &why) {
    auto it = gw.joins.find(path);
    if (it == gw.joins.end()) return;
    std::string error = why;
    if (ok && !write_record(path, v.stamp.size, v.sha256, error)) ok = false;
    if (!ok) unlink(path.c_str());
    it->second->done(ok, error);
  });
}

// The waiters answered, and this job deleted (by join_ended).
void JoinJob::done(bool ok, const std::string &why) {
  close(fd_);
  fd_ = -1;
  if (!ok) {
    unlink(tmp_.c_str());
    g_warning("segdl-gateway: joining %s into %s failed: %s", id_.c_str(), container_.ext,
              why.c_str());
  }
  std::vector<std::pair<HeldPtr, JoinFallback>> waiters;
  waiters.swap(waiters_);
  JoinJob *self = this;
  const std::string id = id_;
  Gateway::Impl &gw = gw_;
  const Entity meta = meta_;
  const std::string path = path_;
  const char *ext = container_.ext;
  gw.join_ended(self);  // deletes this
  for (auto &[h, fallback] : waiters) {
    SoupServerMessage *msg = h->msg();
    if (!msg) continue;
    g_object_ref(msg);
    // Answered as from the handler: libsoup resumes it only from the main
    // loop, and a pause before then (reply_joined() checking a file that
    // changed, the backends or the fallback waiting) holds it again.
    h->resume();
    if (!ok || !gw.reply_joined(msg, id, path, meta, ext, fallback)) {
      if (fallback)
        fallback(msg);
      else
        gw.start_full(msg, id);
    }
    g_object_unref(msg);
  }
}

// Answers `msg` from the joined file at `path` when its record is there
// and its size holds (read in chunks as the client takes them, never mapped,
// its SHA-256 checked first: filebody.cpp), with `meta`'s validators; false
// otherwise. A file found changed is removed with its record, and the track
// joined again (or `fallback`, or the backends).
bool Gateway::Impl::reply_joined(SoupServerMessage *msg, const std::string &id,
                                 const std::string &path, const Entity &meta, const char *ext,
                                 JoinFallback fallback) {
  FilePart part;
  int64_t size = -1;
  FileStamp st;
  if (!read_record(path, size, part.sha256) || !stamp_of_path(path, st) || st.size != size)
    return false;
  // The file's own SHA-256 is its ETag: two joins of the same segments are
  // not the same bytes (mp4mux writes the time of the join into the file),
  // so a strong ETag made of the segments' would splice them in Range
  // requests across a re-join or across gateways.
  Entity e = meta;
  e.etag = "\"" + part.sha256.substr(0, 32) + "\"";
  e.last_modified = http_date(st.mtime_ns / 1000000000);
  part.path = path;
  part.length = static_cast<uint64_t>(size);
  serve_parts(*this, msg, e, {part}, nullptr,
              [this, id, ext, fallback](SoupServerMessage *m, const FilePart &bad) {
                unlink(bad.path.c_str());
                unlink(record_path(bad.path).c_str());
                if (serve_joined_file(m, id, ext, fallback)) return;
                if (fallback)
                  fallback(m);
                else
                  start_full(m, id);
              });
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
                                      const char *ext, JoinFallback fallback) {
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return false;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  CachedTrack t;
  if (!cache || !cache->read_track(t) || !t.complete || !t.total || *t.total <= 0) return false;
  std::string type;
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  bool ok = true;
  for (int64_t n = 0; ok && n < *t.total; n++) {
    // Located (size checked), not read: the join reads each segment through
    // this gateway, which verifies it before serving it.
    SegmentInfo info;
    std::string seg_path;
    ok = cache->locate(n, info, seg_path) && !info.etag.empty() &&
         (n == 0 || info.content_type == type);
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
  auto it = joins.find(path);
  if (it != joins.end()) {
    it->second->wait(msg, std::move(fallback));
    return true;
  }
  if (reply_joined(msg, id, path, meta, c->ext, fallback)) return true;
  unlink(record_path(path).c_str());  // a file is served only with its record
  if (!gst_init_check(nullptr, nullptr, nullptr)) return false;
  auto job = std::make_unique<JoinJob>(*this, id, path, meta, std::move(cache), *c);
  if (!job->start(self_url(), error)) {
    g_warning("segdl-gateway: cannot join %s: %s", id.c_str(), error.c_str());
    return false;
  }
  job->wait(msg, std::move(fallback));
  joins.emplace(path, std::move(job));
  return true;
}

}  // namespace segdl::gateway
