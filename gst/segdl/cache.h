// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the disk cache of segments ("cache first, then the backend").
 *
 * Layout: DIR/<safe name of the id>/
 *           seg_N.bin        a complete, validated segment (never partial)
 *           seg_N.meta       its size, ETag, Last-Modified, Content-Type (key=value lines)
 *           track.meta       what is known of the track (total, complete, durations)
 *           .lock            held shared (flock) while a pipeline uses the track
 * A segment is written to a temporary file in the same folder, fsync'ed, and
 * renamed into place: a crash or kill never leaves a partial seg_N.bin, and
 * two processes writing the same segment both end with a whole one. The
 * folder name is derived from the id (safe_name) so no id can leave DIR.
 *
 * Plain C++ and GLib (GIO for files), no GStreamer. Not thread-safe: one
 * thread (the engine's HTTP thread) uses a Cache.
 */
#pragma once

#include <glib.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace segdl {

struct CacheConfig {
  std::string dir;              // root folder; created if missing
  uint64_t max_size_bytes = 0;  // evict least recently used tracks above this (0 = no limit)
  int64_t max_age_s = 0;        // evict tracks not used for this long (0 = no limit)
};

// What the cache remembers of a track, so that a fully cached track plays
// without asking the backend anything.
struct CachedTrack {
  std::optional<int64_t> total;  // number of segments, when known
  bool complete = false;         // every segment below total is known to exist
  double duration = -1, first_segment_duration = -1, segment_duration = -1;  // seconds
  std::string mime_type;
};

struct SegmentInfo {
  int64_t size = -1;  // bytes; -1 unknown (then the segment is not cached)
  std::string etag, last_modified, content_type;
  std::string sha256;  // hex SHA-256 of the bytes (set by the cache; verified on every read)
};

// One segment being written. Destroying it without commit() removes the
// temporary file.
class SegmentWriter {
 public:
  virtual ~SegmentWriter() = default;
  virtual bool append(const void *data, size_t size, std::string &error) = 0;
  // Checks the size against info.size (when >= 0), fsyncs, renames into
  // place, writes the meta file. False (and nothing in place) on failure.
  virtual bool commit(const SegmentInfo &info, std::string &error) = 0;
};

class Cache {
 public:
  explicit Cache(CacheConfig cfg);
  ~Cache();  // releases the track lock
  Cache(const Cache &) = delete;
  Cache &operator=(const Cache &) = delete;

  // A file name for the id: its safe characters (at most 48 of
  // [A-Za-z0-9_-]) then '-' and 16 hex digits of its SHA-256. Never empty,
  // never "." or "..", never contains '/'.
  static std::string safe_name(const std::string &video_id);

  // Creates DIR/<safe name>/, takes the shared lock, marks the track used
  // now. False with `error` (unwritable dir, ...): the caller goes on
  // without a cache.
  bool open_track(const std::string &video_id, std::string &error);
  const std::string &track_dir() const;

  // The cached segment if present and valid (file size equals the recorded
  // size), read into memory (never mapped: see lookup()); nullptr otherwise (an invalid entry is
  // removed). Caller owns the GBytes.
  GBytes *lookup(int64_t segment, SegmentInfo *info = nullptr);
  bool contains(int64_t segment);
  // The record and file of a cached segment that is present and valid (as
  // lookup() checks it), without reading it: for a caller that streams the
  // file in pieces and checks `info.sha256` itself (the gateway).
  bool locate(int64_t segment, SegmentInfo &info, std::string &path);
  // Reads the file locate() gave and checks it against `info` (size and
  // SHA-256): the bytes, or nullptr with `error` when it cannot be read or
  // does not match (then its data and meta are removed). Touches no state
  // of a Cache: safe on any thread, e.g. the cache worker while the HTTP
  // thread goes on. Caller owns the GBytes.
  static GBytes *read_verified(int64_t segment, const std::string &path, const SegmentInfo &info,
                               std::string &error);

  std::unique_ptr<SegmentWriter> begin(int64_t segment, std::string &error);
  // Removes segment `segment` (its data and meta), e.g. bytes found not to
  // be audio by the engine.
  void remove(int64_t segment);

  bool read_track(CachedTrack &out);
  bool write_track(const CachedTrack &track, std::string &error);

  // Removes least recently used tracks (whole folders) until the cache is
  // under max_size_bytes and no track is older than max_age_s. Never the
  // open track, never a track another process holds (its .lock is held).
  // Returns the number of tracks removed.
  int evict();
  // Bytes used by all tracks under DIR.
  uint64_t size_bytes();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace segdl
