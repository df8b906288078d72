// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — a whole track from the cache: when every segment of a
 * track is held and its form is continuous (segments are byte ranges of one
 * stream: ADTS AAC, MP3, MPEG-TS; see docs/protocol.md), the segments laid
 * end to end are the track, served with its length, Range and a strong ETag
 * (of the segments' ETags, so equal on every gateway), read from the
 * segment files in chunks as the client takes them (bounded memory). Self-contained forms
 * (m4a, WebM, Ogg files) need the element's timeline join and a muxer:
 * joinfile.cpp. So do MP3 segments that are files of their own (each cut
 * or encoded alone: an ID3v2 tag and a Xing/Info frame before its audio, as
 * ffmpeg writes them): laid end to end, their tags and information frames
 * would sit inside the audio, and players would take segment 0's frame
 * count for the track's. Which kind a track is shows in its segment files'
 * first bytes, read with their SHA-256 check on a worker (Verified::file_head),
 * never on this thread.
 */
#include "gateway/filebody.h"
#include "gateway/fill.h"

namespace segdl::gateway {

namespace {

bool continuous_type(const std::string &type) {
  static const char *const kTypes[] = {"audio/aac",  "audio/aacp", "audio/x-aac",
                                       "audio/mpeg", "audio/mp3",  "video/mp2t"};
  for (const char *t : kTypes)
    if (type == t) return true;
  return false;
}

bool mpeg_audio_type(const std::string &type) {
  return type == "audio/mpeg" || type == "audio/mp3";
}

// A complete MP3 track whose files are being checked (one check a file, on
// a worker): set when a segment after the first begins as a file of its own.
struct Mp3Check {
  HeldPtr held;
  Entity e;
  std::vector<FilePart> parts;
  std::shared_ptr<Cache> hold;
  JoinFallback fallback;
  size_t left = 0;
  bool files = false;
};

// Every segment file of an MP3 track checked (Verifier: on a worker, once
// per file identity), then the answer as serve_joined() gives it: the files
// laid end to end, or the joined file when a segment after the first begins
// as a file of its own. A file that fails its check is left to serve_parts(),
// which checks it again and sends the client to the backends.
void check_mp3_files(Gateway::Impl &gw, SoupServerMessage *msg, const std::string &id,
                     const Entity &e, std::vector<FilePart> parts, std::unique_ptr<Cache> cache,
                     JoinFallback fallback) {
  auto c = std::make_shared<Mp3Check>();
  c->held = std::make_shared<Held>(msg);
  c->e = e;
  c->parts = std::move(parts);
  c->hold = std::move(cache);
  c->fallback = std::move(fallback);
  c->left = c->parts.size();
  for (size_t i = 0; i < c->parts.size(); i++) {
    const FilePart &f = c->parts[i];
    gw.files().check(
        f.path, f.sha256, [&gw, c, i, id](bool ok, const Verified &v, const std::string &) {
          if (ok && i > 0 && v.file_head) c->files = true;
          if (--c->left > 0 || !c->held->msg()) return;
          // Answered as from the handler: libsoup resumes it only from the main
          // loop, and a pause before then (a join to wait for) holds it again.
          SoupServerMessage *m = static_cast<SoupServerMessage *>(g_object_ref(c->held->msg()));
          c->held->resume();
          if (!c->files) {
            serve_parts(
                gw, m, c->e, std::move(c->parts), std::move(c->hold),
                [&gw, id](SoupServerMessage *m2, const FilePart &) { gw.start_full(m2, id); });
          } else {
            c->hold.reset();  // the join takes the track's lock itself
            if (!gw.serve_joined_file(m, id, "mp3", c->fallback)) {
              if (c->fallback)
                c->fallback(m);
              else
                gw.start_full(m, id);
            }
          }
          g_object_unref(m);
        });
  }
}

}  // namespace

// Streamed from the segment files (filebody.cpp): every segment file is
// checked against its recorded SHA-256 before the head goes out (a bad one
// leaves the cache, and the track comes from the backends); the cache lock
// is held until the answer is sent (no eviction under it). MP3 segment files
// are checked first (the check is remembered per file): a track of files of
// their own is joined (serve_joined_file), `fallback` taking it if that fails.
bool Gateway::Impl::serve_joined(SoupServerMessage *msg, const std::string &id,
                                 JoinFallback fallback) {
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return false;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  CachedTrack t;
  if (!cache || !cache->read_track(t) || !t.complete || !t.total || *t.total <= 0) return false;
  Entity e;
  std::vector<FilePart> parts;
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  bool ok = true;
  for (int64_t n = 0; ok && n < *t.total; n++) {
    SegmentInfo info;
    FilePart p;
    if (!cache->locate(n, info, p.path)) {
      ok = false;
      break;
    }
    p.length = static_cast<uint64_t>(info.size);
    p.sha256 = info.sha256;
    p.segment = n;
    parts.push_back(std::move(p));
    if (n == 0) e.content_type = info.content_type;
    ok = continuous_type(info.content_type) && info.content_type == e.content_type &&
         !info.etag.empty();
    g_checksum_update(sum, reinterpret_cast<const guchar *>(info.etag.data()),
                      static_cast<gssize>(info.etag.size()));
  }
  if (ok) {
    e.etag = "\"" + std::string(g_checksum_get_string(sum), 32) + "\"";
    e.cache_control = immutable_cc(opts);
  }
  g_checksum_free(sum);
  if (!ok) return false;
  if (mpeg_audio_type(e.content_type) && parts.size() > 1) {
    check_mp3_files(*this, msg, id, e, std::move(parts), std::move(cache), std::move(fallback));
    return true;
  }
  serve_parts(*this, msg, e, std::move(parts), std::move(cache),
              [this, id](SoupServerMessage *m, const FilePart &) { start_full(m, id); });
  return true;
}

}  // namespace segdl::gateway
