// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the disk cache of segments.
 *
 * cache.h describes the layout. How the pieces stay consistent when several
 * processes share DIR, and when any of them is killed at any point:
 *
 *  - Every file is written under a temporary name starting with '.' (in the
 *    same folder, so rename() is atomic), fsync'ed, then renamed into place.
 *    Names starting with '.' are never read as segments. A writer holds its
 *    temporary file locked (flock) for its life: open_track() removes the
 *    ones nobody holds (a writer killed), evict() those older than
 *    kStaleTempAge in other tracks.
 *  - seg_N.meta holds the SHA-256 of seg_N.bin, computed while writing;
 *    lookup() reads the file (read(), never mmap) and checks it: an entry
 *    whose bytes changed is removed, never returned.
 *  - A segment's meta is renamed into place before its data. A reader only
 *    trusts seg_N.bin when its size equals the size in seg_N.meta, so a kill
 *    between the two renames leaves a meta without data: a miss. A seg_N.bin
 *    that does not validate is removed by the reader.
 *  - A process using a track holds .lock shared (flock). evict() removes a
 *    track only after taking .lock exclusive without waiting, and only if the
 *    .lock it holds is still the one in the folder. It unlinks .lock last,
 *    just before rmdir. An open_track() that waited on the lock of a track
 *    being removed sees that its .lock is no longer the folder's and starts
 *    again, so it never keeps a lock on a file that is gone.
 *  - "Last used" is the mtime of .lock, set by open_track() and lookup().
 *  - evict() and size_bytes() only look at folders whose names safe_name()
 *    can produce, and remove only regular files (lstat, no symlink is ever
 *    followed), so a DIR set by mistake to a folder with other contents loses
 *    nothing else.
 */
#include "segdl/cache.h"
#include "segdl/log.h"

#include <glib.h>
#include <glib/gstdio.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <utility>
#include <vector>

namespace segdl {

namespace {

constexpr size_t kMaxSafeChars = 48;
constexpr size_t kHashDigits = 16;
constexpr const char *kLockName = ".lock";
constexpr const char *kTrackMetaName = "track.meta";
// A temporary file not modified for this long belongs to a writer that is
// gone (one that is alive writes its segment within seconds).
constexpr int64_t kStaleTempAge = 3600;
// Meta files are a few lines; anything bigger is not ours.
constexpr goffset kMaxMetaSize = 64 * 1024;
// open_track() retries when the track was removed under it.
constexpr int kOpenAttempts = 8;

// Owns a file descriptor; move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd &operator=(UniqueFd &&o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and reports close()'s own error (0 when fine).
  int close_checked() {
    if (fd_ < 0) return 0;
    int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }
  void reset() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

std::string describe(const char *what, const std::string &path, int err) {
  return std::string(what) + " " + path + ": " + g_strerror(err);
}

std::string join(const std::string &dir, const std::string &name) {
  return dir + "/" + name;
}

std::string segment_name(int64_t segment, const char *suffix) {
  return "seg_" + std::to_string(segment) + suffix;
}

int64_t now_seconds() {
  return g_get_real_time() / G_USEC_PER_SEC;
}

bool is_safe_char(unsigned char c) {
  return g_ascii_isalnum(c) || c == '_' || c == '-';
}

// True for the names safe_name() makes: safe characters, then '-' and 16
// lowercase hex digits.
bool is_track_name(const std::string &name) {
  if (name.size() < kHashDigits + 1 || name.size() > kMaxSafeChars + 1 + kHashDigits) return false;
  const size_t dash = name.size() - kHashDigits - 1;
  if (name[dash] != '-') return false;
  for (size_t i = 0; i < dash; i++)
    if (!is_safe_char(static_cast<unsigned char>(name[i]))) return false;
  for (size_t i = dash + 1; i < name.size(); i++) {
    const char c = name[i];
    if (!g_ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// Writes everything, through short writes and EINTR. 0 or the errno.
int write_all(int fd, const void *data, size_t size) {
  const char *p = static_cast<const char *>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENOSPC;  // no progress: the same as a full disk
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

int fsync_retry(int fd) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

// Makes the renames in `dir` durable. Best effort: some file systems refuse
// fsync on a folder, and the files are in place already.
void fsync_dir(const std::string &dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) fsync_retry(fd.get());
}

bool fd_is_path(int fd, const std::string &path);

// Creates a temporary file `<dir>/<prefix>XXXXXX`; the path goes to `path`.
UniqueFd make_temp(const std::string &dir, const std::string &prefix, std::string &path,
                   std::string &error) {
  std::string tmpl = join(dir, prefix + "XXXXXX");
  int fd = g_mkstemp_full(&tmpl[0], O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = describe("cannot create a temporary file in", dir, errno);
    return UniqueFd();
  }
  // Held for the file's life: a temporary file nobody holds locked belongs
  // to a writer that is gone (killed), and the next open_track() removes it.
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  path = tmpl;
  return UniqueFd(fd);
}

// Removes the temporary files of `dir` whose writer is gone (no lock on
// them): what a kill -9 left behind. A live writer's file stays.
void remove_dead_temps(const std::string &dir) {
  GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
  if (!d) return;
  while (const char *entry = g_dir_read_name(d)) {
    if (entry[0] != '.' || g_str_equal(entry, kLockName)) continue;
    const std::string path = join(dir, entry);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) continue;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0 && fd_is_path(fd.get(), path))
      ::unlink(path.c_str());
  }
  g_dir_close(d);
}

// SHA-256 of `size` bytes, in hex.
std::string sha256_hex(const void *data, size_t size) {
  gchar *hex =
      g_compute_checksum_for_data(G_CHECKSUM_SHA256, static_cast<const guchar *>(data), size);
  std::string out = hex;
  g_free(hex);
  return out;
}

// Writes `contents` to `<dir>/<name>` atomically: a temporary file, fsync,
// rename. Does not fsync the folder.
bool write_file_atomic(const std::string &dir, const std::string &name, const std::string &contents,
                       std::string &error) {
  std::string tmp;
  UniqueFd fd = make_temp(dir, "." + name + ".", tmp, error);
  if (!fd.valid()) return false;
  int err = write_all(fd.get(), contents.data(), contents.size());
  if (err == 0) err = fsync_retry(fd.get());
  if (err == 0) err = fd.close_checked();
  if (err != 0) {
    fd.reset();
    ::unlink(tmp.c_str());
    error = describe("cannot write", tmp, err);
    return false;
  }
  const std::string path = join(dir, name);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    error = describe("cannot rename into", path, err);
    return false;
  }
  return true;
}

// Reads a small regular file (no symlink followed). False when it is absent,
// not a regular file, too big or unreadable.
bool read_small_file(const std::string &path, std::string &out) {
  GStatBuf st;
  if (g_lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxMetaSize)
    return false;
  g_autofree char *contents = nullptr;
  gsize length = 0;
  if (!g_file_get_contents(path.c_str(), &contents, &length, nullptr)) return false;
  out.assign(contents, length);
  return true;
}

// Splits key=value lines. False when a non-empty line has no '='.
bool parse_lines(const std::string &text, std::vector<std::pair<std::string, std::string>> &out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0) return false;
    out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  return true;
}

// A whole decimal integer, nothing before or after it.
bool parse_int64(const std::string &s, int64_t &out) {
  if (s.empty() || s.find('\0') != std::string::npos) return false;
  if (!g_ascii_isdigit(s[0]) && !(s[0] == '-' && s.size() > 1 && g_ascii_isdigit(s[1])))
    return false;
  char *end = nullptr;
  errno = 0;
  const gint64 v = g_ascii_strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  out = v;
  return true;
}

// A whole finite number, nothing before or after it.
bool parse_double(const std::string &s, double &out) {
  if (s.empty() || s.find('\0') != std::string::npos || g_ascii_isspace(s[0])) return false;
  char *end = nullptr;
  errno = 0;
  const double v = g_ascii_strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  out = v;
  return true;
}

std::string format_double(double v) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  return g_ascii_dtostr(buf, sizeof buf, v);
}

// A value for a key=value line: no line breaks, no NUL.
std::string clean_value(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != '\n' && c != '\r' && c != '\0') out += c;
  return out;
}

// Reads seg_N.meta. False when absent or unparsable.
bool read_segment_meta(const std::string &path, SegmentInfo &info) {
  std::string text;
  std::vector<std::pair<std::string, std::string>> lines;
  if (!read_small_file(path, text) || !parse_lines(text, lines)) return false;
  bool have_size = false;
  SegmentInfo parsed;
  for (const auto &kv : lines) {
    if (kv.first == "size") {
      if (!parse_int64(kv.second, parsed.size) || parsed.size < 0) return false;
      have_size = true;
    } else if (kv.first == "etag") {
      parsed.etag = kv.second;
    } else if (kv.first == "last-modified") {
      parsed.last_modified = kv.second;
    } else if (kv.first == "content-type") {
      parsed.content_type = kv.second;
    } else if (kv.first == "sha256") {
      parsed.sha256 = kv.second;
    }
  }
  // An entry without its checksum cannot be verified: not trusted.
  if (!have_size || parsed.sha256.size() != 64) return false;
  info = std::move(parsed);
  return true;
}

// A track folder found under DIR.
struct TrackEntry {
  std::string name, path;
  uint64_t size = 0;      // bytes in its regular files
  int64_t last_used = 0;  // seconds since the epoch
};

// Sums the regular files of a track and finds when it was last used (the
// mtime of .lock, or of the folder when there is none). With
// `remove_stale`, deletes temporary files older than kStaleTempAge.
TrackEntry scan_track(const std::string &root, const std::string &name, int64_t dir_mtime,
                      bool remove_stale, int64_t now) {
  TrackEntry t;
  t.name = name;
  t.path = join(root, name);
  t.last_used = dir_mtime;
  GDir *dir = g_dir_open(t.path.c_str(), 0, nullptr);
  if (!dir) return t;
  while (const char *entry = g_dir_read_name(dir)) {
    const std::string path = join(t.path, entry);
    GStatBuf st;
    if (g_lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (g_strcmp0(entry, kLockName) == 0) {
      t.last_used = st.st_mtime;
    } else if (entry[0] == '.' && remove_stale && now - st.st_mtime > kStaleTempAge &&
               ::unlink(path.c_str()) == 0) {
      continue;
    }
    t.size += static_cast<uint64_t>(st.st_size);
  }
  g_dir_close(dir);
  return t;
}

std::vector<TrackEntry> scan_tracks(const std::string &root, bool remove_stale) {
  std::vector<TrackEntry> tracks;
  GDir *dir = g_dir_open(root.c_str(), 0, nullptr);
  if (!dir) return tracks;
  const int64_t now = now_seconds();
  while (const char *entry = g_dir_read_name(dir)) {
    if (!is_track_name(entry)) continue;
    GStatBuf st;
    if (g_lstat(join(root, entry).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    tracks.push_back(scan_track(root, entry, st.st_mtime, remove_stale, now));
  }
  g_dir_close(dir);
  return tracks;
}

bool same_file(const struct stat &a, const struct stat &b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// True when `fd` is the file at `path` now (not one unlinked meanwhile).
bool fd_is_path(int fd, const std::string &path) {
  struct stat by_fd, by_path;
  return ::fstat(fd, &by_fd) == 0 && ::lstat(path.c_str(), &by_path) == 0 &&
         same_file(by_fd, by_path);
}

// Removes a whole track folder unless a process uses it. Returns the bytes
// removed; `gone` tells whether the folder itself is gone.
uint64_t remove_track(const TrackEntry &t, bool &gone) {
  gone = false;
  const std::string lock_path = join(t.path, kLockName);
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!lock.valid()) return 0;
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return 0;  // in use
  if (!fd_is_path(lock.get(), lock_path)) return 0;           // removed and made again
  uint64_t removed = 0;
  GDir *dir = g_dir_open(t.path.c_str(), 0, nullptr);
  if (!dir) return 0;
  while (const char *entry = g_dir_read_name(dir)) {
    if (g_strcmp0(entry, kLockName) == 0) continue;
    const std::string path = join(t.path, entry);
    GStatBuf st;
    if (g_lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlink(path.c_str()) == 0) removed += static_cast<uint64_t>(st.st_size);
  }
  g_dir_close(dir);
  // .lock last, while still holding it: whoever waits on it starts again.
  ::unlink(lock_path.c_str());
  gone = ::rmdir(t.path.c_str()) == 0;
  return removed;
}

// The segment being written: a temporary file in the track folder.
class FileSegmentWriter : public SegmentWriter {
 public:
  FileSegmentWriter(std::string dir, int64_t segment, std::string tmp_path, UniqueFd fd)
      : dir_(std::move(dir)),
        segment_(segment),
        tmp_path_(std::move(tmp_path)),
        fd_(std::move(fd)),
        sum_(g_checksum_new(G_CHECKSUM_SHA256)) {}

  ~FileSegmentWriter() override {
    discard();
    g_checksum_free(sum_);
  }

  bool append(const void *data, size_t size, std::string &error) override {
    if (!fd_.valid()) {
      error = "segment " + std::to_string(segment_) + " is no longer being written";
      return false;
    }
    const int err = write_all(fd_.get(), data, size);
    if (err != 0) {
      error = describe("cannot write", tmp_path_, err);
      discard();
      return false;
    }
    g_checksum_update(sum_, static_cast<const guchar *>(data), gssize(size));
    written_ += size;
    return true;
  }

  // Size check, fsync and close the data; the meta into place; the data into
  // place; fsync the folder.
  bool commit(const SegmentInfo &info, std::string &error) override {
    if (!fd_.valid()) {
      error = "segment " + std::to_string(segment_) + " is no longer being written";
      return false;
    }
    if (info.size >= 0 && static_cast<uint64_t>(info.size) != written_) {
      error = "segment " + std::to_string(segment_) + ": " + std::to_string(written_) +
              " bytes written, " + std::to_string(info.size) + " expected; not cached";
      discard();
      return false;
    }
    int err = fsync_retry(fd_.get());
    if (err == 0) err = fd_.close_checked();
    if (err != 0) {
      error = describe("cannot write", tmp_path_, err);
      discard();
      return false;
    }
    std::string meta = "size=" + std::to_string(written_) + "\n";
    meta += "etag=" + clean_value(info.etag) + "\n";
    meta += "last-modified=" + clean_value(info.last_modified) + "\n";
    meta += "content-type=" + clean_value(info.content_type) + "\n";
    meta += std::string("sha256=") + g_checksum_get_string(sum_) + "\n";
    if (!write_file_atomic(dir_, segment_name(segment_, ".meta"), meta, error)) {
      discard();
      return false;
    }
    const std::string bin = join(dir_, segment_name(segment_, ".bin"));
    if (::rename(tmp_path_.c_str(), bin.c_str()) != 0) {
      error = describe("cannot rename into", bin, errno);
      discard();
      return false;
    }
    tmp_path_.clear();
    fsync_dir(dir_);
    SEGDL_CACHE_LOG(GST_LEVEL_DEBUG,
                    "segment %" G_GINT64_FORMAT " stored: %" G_GUINT64_FORMAT " bytes in %s",
                    segment_, uint64_t(written_), dir_.c_str());
    return true;
  }

 private:
  void discard() {
    fd_.reset();
    if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }

  std::string dir_;
  int64_t segment_;
  std::string tmp_path_;  // empty once renamed or removed
  UniqueFd fd_;           // invalid once closed (committed or failed)
  uint64_t written_ = 0;
  GChecksum *sum_;  // SHA-256 of what was written, stored in the meta
};

}  // namespace

struct Cache::Impl {
  CacheConfig cfg;
  std::string track_name;  // safe name of the open track; empty when none
  std::string track_dir;   // DIR/<track_name>; empty when none
  UniqueFd lock;           // .lock of the open track, held shared

  void close_track() {
    lock.reset();
    track_name.clear();
    track_dir.clear();
  }

  void touch() {
    if (lock.valid()) ::futimens(lock.get(), nullptr);
  }

  // Validates segment `n`: seg_N.bin a regular file whose size equals the
  // size in seg_N.meta. A seg_N.bin that does not validate is removed with its
  // meta. A meta without data is a miss (a writer killed between renames).
  bool validate(int64_t n, SegmentInfo &info, std::string &bin_path) {
    if (track_dir.empty() || n < 0) return false;
    bin_path = join(track_dir, segment_name(n, ".bin"));
    const std::string meta_path = join(track_dir, segment_name(n, ".meta"));
    GStatBuf st;
    if (g_lstat(bin_path.c_str(), &st) != 0) return false;
    if (S_ISREG(st.st_mode) && read_segment_meta(meta_path, info) && st.st_size == info.size)
      return true;
    if (!S_ISDIR(st.st_mode)) ::unlink(bin_path.c_str());
    ::unlink(meta_path.c_str());
    return false;
  }
};

Cache::Cache(CacheConfig cfg) : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(cfg);
}

Cache::~Cache() = default;

std::string Cache::safe_name(const std::string &video_id) {
  std::string name;
  for (char c : video_id) {
    if (name.size() == kMaxSafeChars) break;
    if (is_safe_char(static_cast<unsigned char>(c))) name += c;
  }
  g_autofree char *sha = g_compute_checksum_for_data(
      G_CHECKSUM_SHA256, reinterpret_cast<const guchar *>(video_id.data()), video_id.size());
  name += '-';
  name.append(sha, kHashDigits);
  return name;
}

// Makes the folder, opens .lock and takes it shared. When the lock was
// waited for because evict() was removing the track, the .lock held is no
// longer in the folder: start again with a new folder.
bool Cache::open_track(const std::string &video_id, std::string &error) {
  impl_->close_track();
  if (impl_->cfg.dir.empty()) {
    error = "no cache folder set";
    return false;
  }
  const std::string name = safe_name(video_id);
  const std::string dir = join(impl_->cfg.dir, name);
  const std::string lock_path = join(dir, kLockName);
  for (int attempt = 0; attempt < kOpenAttempts; attempt++) {
    if (g_mkdir_with_parents(dir.c_str(), 0755) != 0) {
      error = describe("cannot create cache folder", dir, errno);
      return false;
    }
    UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      if (errno == ENOENT) continue;  // the folder was removed meanwhile
      error = describe("cannot open", lock_path, errno);
      return false;
    }
    int rc;
    while ((rc = ::flock(fd.get(), LOCK_SH)) != 0 && errno == EINTR) {
    }
    if (rc != 0) {
      error = describe("cannot lock", lock_path, errno);
      return false;
    }
    if (!fd_is_path(fd.get(), lock_path)) continue;
    impl_->lock = std::move(fd);
    impl_->track_name = name;
    impl_->track_dir = dir;
    impl_->touch();
    remove_dead_temps(dir);
    SEGDL_CACHE_LOG(GST_LEVEL_DEBUG, "track folder %s", dir.c_str());
    return true;
  }
  error = "cannot open cache folder " + dir + ": it keeps being removed";
  return false;
}

void Cache::remove(int64_t segment) {
  if (impl_->track_dir.empty() || segment < 0) return;
  ::unlink(join(impl_->track_dir, segment_name(segment, ".bin")).c_str());
  ::unlink(join(impl_->track_dir, segment_name(segment, ".meta")).c_str());
}

const std::string &Cache::track_dir() const {
  return impl_->track_dir;
}

GBytes *Cache::lookup(int64_t segment, SegmentInfo *info) {
  SegmentInfo found;
  std::string path;
  if (!impl_->validate(segment, found, path)) {
    SEGDL_CACHE_LOG(GST_LEVEL_LOG, "segment %" G_GINT64_FORMAT ": miss", segment);
    return nullptr;
  }
  std::string error;
  GBytes *bytes = read_verified(segment, path, found, error);
  if (!bytes) return nullptr;
  impl_->touch();
  if (info) *info = std::move(found);
  return bytes;
}

GBytes *Cache::read_verified(int64_t segment, const std::string &path, const SegmentInfo &info,
                             std::string &error) {
  // Read, not mapped: a file truncated by another program while it plays
  // would kill the process with SIGBUS through a mapping.
  gchar *contents = nullptr;
  gsize length = 0;
  GError *err = nullptr;
  if (!g_file_get_contents(path.c_str(), &contents, &length, &err)) {
    error = err->message;
    g_error_free(err);
    return nullptr;
  }
  // The file may have been replaced since it was checked: check what was read.
  // Verified on every read: bytes changed on disk (same size or not), or a
  // segment swapped for another, are removed, never played or served.
  if (length != static_cast<gsize>(info.size) || sha256_hex(contents, length) != info.sha256) {
    g_free(contents);
    error = path + " changed on disk (size or SHA-256); removed";
    SEGDL_CACHE_LOG(GST_LEVEL_WARNING, "segment %" G_GINT64_FORMAT ": %s", segment, error.c_str());
    ::unlink(path.c_str());
    const size_t dot = path.rfind(".bin");
    if (dot != std::string::npos) ::unlink((path.substr(0, dot) + ".meta").c_str());
    return nullptr;
  }
  SEGDL_CACHE_LOG(GST_LEVEL_DEBUG, "segment %" G_GINT64_FORMAT ": hit, %" G_GSIZE_FORMAT " bytes",
                  segment, length);
  return g_bytes_new_take(contents, length);
}

bool Cache::locate(int64_t segment, SegmentInfo &info, std::string &path) {
  if (!impl_->validate(segment, info, path)) return false;
  impl_->touch();
  return true;
}

bool Cache::contains(int64_t segment) {
  SegmentInfo found;
  std::string path;
  if (!impl_->validate(segment, found, path)) return false;
  impl_->touch();
  return true;
}

std::unique_ptr<SegmentWriter> Cache::begin(int64_t segment, std::string &error) {
  if (impl_->track_dir.empty()) {
    error = "no track open in the cache";
    return nullptr;
  }
  if (segment < 0) {
    error = "invalid segment " + std::to_string(segment);
    return nullptr;
  }
  std::string tmp;
  UniqueFd fd = make_temp(impl_->track_dir, "." + segment_name(segment, "."), tmp, error);
  if (!fd.valid()) return nullptr;
  return std::make_unique<FileSegmentWriter>(impl_->track_dir, segment, tmp, std::move(fd));
}

bool Cache::read_track(CachedTrack &out) {
  if (impl_->track_dir.empty()) return false;
  std::string text;
  std::vector<std::pair<std::string, std::string>> lines;
  if (!read_small_file(join(impl_->track_dir, kTrackMetaName), text) || !parse_lines(text, lines))
    return false;
  CachedTrack t;
  bool have_complete = false;
  for (const auto &kv : lines) {
    const std::string &key = kv.first, &value = kv.second;
    if (key == "total") {
      int64_t total = 0;
      if (!parse_int64(value, total) || total < 0) return false;
      t.total = total;
    } else if (key == "complete") {
      if (value != "0" && value != "1") return false;
      t.complete = value == "1";
      have_complete = true;
    } else if (key == "duration") {
      if (!parse_double(value, t.duration)) return false;
    } else if (key == "first-segment-duration") {
      if (!parse_double(value, t.first_segment_duration)) return false;
    } else if (key == "segment-duration") {
      if (!parse_double(value, t.segment_duration)) return false;
    } else if (key == "mime-type") {
      t.mime_type = value;
    }
  }
  if (!have_complete) return false;
  // "complete" only means something with a total.
  if (t.complete && !t.total) return false;
  out = std::move(t);
  return true;
}

bool Cache::write_track(const CachedTrack &track, std::string &error) {
  if (impl_->track_dir.empty()) {
    error = "no track open in the cache";
    return false;
  }
  std::string text;
  if (track.total) text += "total=" + std::to_string(*track.total) + "\n";
  text += std::string("complete=") + (track.complete ? "1" : "0") + "\n";
  text += "duration=" + format_double(track.duration) + "\n";
  text += "first-segment-duration=" + format_double(track.first_segment_duration) + "\n";
  text += "segment-duration=" + format_double(track.segment_duration) + "\n";
  text += "mime-type=" + clean_value(track.mime_type) + "\n";
  if (!write_file_atomic(impl_->track_dir, kTrackMetaName, text, error)) return false;
  fsync_dir(impl_->track_dir);
  return true;
}

// Oldest first: tracks past max_age_s go whatever the size, then the least
// recently used ones until the total fits max_size_bytes.
int Cache::evict() {
  const CacheConfig &cfg = impl_->cfg;
  if (cfg.dir.empty()) return 0;
  std::vector<TrackEntry> tracks = scan_tracks(cfg.dir, true);
  uint64_t total = 0;
  for (const TrackEntry &t : tracks) total += t.size;
  std::sort(tracks.begin(), tracks.end(), [](const TrackEntry &a, const TrackEntry &b) {
    return a.last_used != b.last_used ? a.last_used < b.last_used : a.name < b.name;
  });
  const int64_t now = now_seconds();
  int count = 0;
  for (const TrackEntry &t : tracks) {
    if (t.name == impl_->track_name) continue;
    const bool too_old = cfg.max_age_s > 0 && now - t.last_used > cfg.max_age_s;
    const bool too_big = cfg.max_size_bytes > 0 && total > cfg.max_size_bytes;
    if (!too_old && !too_big) continue;
    bool gone = false;
    const uint64_t removed = remove_track(t, gone);
    SEGDL_CACHE_LOG(GST_LEVEL_INFO, "evicted %s (%s): %" G_GUINT64_FORMAT " bytes freed%s",
                    t.name.c_str(), too_old ? "unused too long" : "over cache-max-size", removed,
                    gone ? "" : " (folder kept: in use or not empty)");
    total -= std::min(total, removed);
    if (gone) count++;
  }
  return count;
}

uint64_t Cache::size_bytes() {
  if (impl_->cfg.dir.empty()) return 0;
  uint64_t total = 0;
  for (const TrackEntry &t : scan_tracks(impl_->cfg.dir, false)) total += t.size;
  return total;
}

}  // namespace segdl
