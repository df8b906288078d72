// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — answers whose body is read from cache files in chunks
 * (filebody.cpp): single segments, whole tracks laid end to end from their
 * segment files, joined files; and the check that every such file holds the
 * bytes its record says (SHA-256) before the first byte goes out. Gateway
 * thread only, but for the hashing, which runs on GIO's worker threads.
 */
#pragma once

#include "gateway/core.h"

#include <sys/types.h>

namespace segdl::gateway {

// What identifies the contents of a file without reading it: a file whose
// stamp is unchanged holds the bytes it held when it was hashed (a write
// changes the modification and change times, a replacement the inode).
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t size = -1;
  int64_t mtime_ns = 0, ctime_ns = 0;
  bool operator==(const FileStamp &o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns &&
           ctime_ns == o.ctime_ns;
  }
  bool operator!=(const FileStamp &o) const { return !(*this == o); }
};
bool stamp_of_fd(int fd, FileStamp &out);
bool stamp_of_path(const std::string &path, FileStamp &out);

// A file whose SHA-256 was computed, as it was then.
struct Verified {
  FileStamp stamp;
  std::string sha256;                   // hex
  MediaForm form = MediaForm::Unknown;  // check_segment() of its first bytes, when audio
  // It begins with an ID3v2 tag or an MPEG audio information frame
  // (Xing/Info/VBRI): the head of a file of its own, not a byte range
  // inside one stream (joined.cpp).
  bool file_head = false;
};

// Hashes files on worker threads (one job per file at a time, however many
// ask) and remembers the result per file identity: a file asked for again
// with the same stamp is not read again. Gateway thread only.
class Verifier {
 public:
  explicit Verifier(Gateway::Impl &gw) : gw_(gw) {}
  ~Verifier();
  Verifier(const Verifier &) = delete;
  Verifier &operator=(const Verifier &) = delete;

  // True when `path` was hashed as it is now (and, with `sha256` non-empty,
  // found equal to it); fills `out`.
  bool known(const std::string &path, const std::string &sha256, Verified &out);
  // Hashes `path` (unless known()) and calls `done` on the gateway thread:
  // ok when it could be read whole and, with `sha256` non-empty, matches it;
  // `why` says what failed. Never called once stop() ran.
  using Done = std::function<void(bool ok, const Verified &v, const std::string &why)>;
  void check(const std::string &path, const std::string &sha256, Done done);
  // Drops every callback not yet called and waits for the workers (they
  // stop early: cancelled).
  void stop();

 private:
  struct Job;
  static void on_hashed(GObject *, GAsyncResult *res, gpointer data) noexcept;

  Gateway::Impl &gw_;
  std::map<std::string, Verified> memo_;
  std::map<std::string, Job *> jobs_;  // running, by path
  GCancellable *cancel_ = nullptr;
  int workers_ = 0;
  bool stopped_ = false;
};

// A stretch of a file that is part of a body.
struct FilePart {
  std::string path;
  uint64_t offset = 0, length = 0;
  std::string sha256;    // hex SHA-256 of the whole file, as recorded
  int64_t segment = -1;  // the cached segment the file holds (removed when its bytes differ)
  FileStamp stamp;       // the file as verified (serve_parts sets it)
};

// Bytes [first, last] of the body the parts make end to end.
std::vector<FilePart> slice_parts(const std::vector<FilePart> &parts, uint64_t first,
                                  uint64_t last);

// A file of `parts` that failed its check (its segment already removed from
// the cache when it is one): the caller answers `msg` (still paused) another
// way.
using BadPart = std::function<void(SoupServerMessage *msg, const FilePart &bad)>;

// Answers GET/HEAD `msg` with the entity `e` (its validators; e.bytes unused)
// whose body is the whole files `parts` end to end (304, 206, 416 as
// reply_entity() does). Before anything is answered, every file is verified
// against its recorded SHA-256 (Verifier: on a worker, once per file
// identity); a file that fails goes to `on_bad`. `hold` keeps the track's
// cache lock until the body is sent.
void serve_parts(Gateway::Impl &gw, SoupServerMessage *msg, const Entity &e,
                 std::vector<FilePart> parts, std::shared_ptr<Cache> hold, BadPart on_bad);

// Sends `parts` (verified: their stamps set) as the body of `msg`, whose head
// reply_entity_head() set. Reads at most 64 KiB at a time and keeps at most
// max_client_queue_bytes waiting for the client (then pauses:
// Counters::producers_paused), never a mapping: a file whose stamp is not
// the verified one when opened or once read (cut short, changed, replaced by
// another program) cuts the client's connection, before the body's last
// byte — never a crash, never a short or changed body taken for whole.
void stream_file_parts(Gateway::Impl &gw, SoupServerMessage *msg, std::vector<FilePart> parts,
                       std::shared_ptr<Cache> hold);

}  // namespace segdl::gateway
