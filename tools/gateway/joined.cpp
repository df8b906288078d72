// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — a whole track from the cache: when every segment of a
 * track is held and its form is continuous (segments are byte ranges of one
 * stream: ADTS AAC, MP3, MPEG-TS; see docs/protocol.md), the segments laid
 * end to end are the track, served with its length, Range and a strong ETag
 * (of the segments' ETags, so equal on every gateway), read from the
 * segment files in chunks as the client takes them (bounded memory). Self-contained forms
 * (m4a, WebM, Ogg files) need the element's timeline join and a muxer:
 * joinfile.cpp.
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

}  // namespace

// Streamed from the segment files (filebody.cpp): every segment file is
// checked against its recorded SHA-256 before the head goes out (a bad one
// leaves the cache, and the track comes from the backends); the cache lock
// is held until the answer is sent (no eviction under it).
bool Gateway::Impl::serve_joined(SoupServerMessage *msg, const std::string &id) {
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
    serve_parts(*this, msg, e, std::move(parts), std::move(cache),
                [this, id](SoupServerMessage *m, const FilePart &) { start_full(m, id); });
  }
  g_checksum_free(sum);
  return ok;
}

}  // namespace segdl::gateway
