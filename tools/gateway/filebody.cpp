// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — bodies read from cache files in chunks, and the check of
 * those files before anything is answered (see filebody.h).
 *
 * Files are read, never mapped: a mapped file that another program
 * truncates kills the process with SIGBUS at the first access past its new
 * end. Every file is hashed whole (SHA-256, on a worker thread: a 64 MiB
 * segment takes a while) and compared with its record before the answer's
 * head goes out, so a Range request, a HEAD or a 304 never answers for bytes
 * nobody checked; the result is remembered per file identity (FileStamp), so
 * a file served again unchanged is not hashed again. The body is then read
 * synchronously on the gateway thread but bounded (64 KiB from a local
 * file, usually the page cache), and only as much as the client takes:
 * libsoup's "wrote-body-data" tells what reached its socket. The stamp is
 * checked again when a file is opened and once it is read, so bytes changed
 * after the check cut the answer before its last byte.
 */
#include "gateway/filebody.h"
#include "segdl/codec.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace segdl::gateway {

namespace {
constexpr uint64_t kReadBytes = 64 * 1024;
constexpr size_t kHashChunk = 1024 * 1024;
constexpr size_t kHeadBytes = 64 * 1024;  // of a file, for check_segment()
constexpr size_t kMaxMemo = 100000;       // files remembered as hashed

FileStamp stamp_of(const struct stat &st) {
  FileStamp s;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.ctime_ns = int64_t(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return s;
}

// An ID3v2 tag or an MPEG audio information frame at the start of `head`.
bool file_head(const std::vector<uint8_t> &head) {
  if (id3v2_size(head.data(), head.size()) > 0) return true;
  Mp3Start st;
  return parse_mp3_start(head.data(), head.size(), st) && st.info.kind != MpegInfoFrame::Kind::None;
}

// One file hashed on a worker thread: what it read, or why it could not.
struct HashWork {
  std::string path;
  bool ok = false;
  Verified v;
  std::string why;
};

void hash_file(HashWork &w, GCancellable *cancel) {
  const int fd = open(w.path.c_str(), O_RDONLY | O_CLOEXEC);
  FileStamp before, after;
  if (fd < 0 || !stamp_of_fd(fd, before)) {
    w.why = w.path + ": " + g_strerror(errno);
    if (fd >= 0) close(fd);
    return;
  }
  GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
  std::vector<uint8_t> buf(kHashChunk), head;
  int64_t total = 0;
  for (;;) {
    if (g_cancellable_is_cancelled(cancel)) {
      w.why = "cancelled";
      break;
    }
    const ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) w.why = w.path + ": " + g_strerror(errno);
    if (n <= 0) break;
    g_checksum_update(sum, buf.data(), n);
    if (head.size() < kHeadBytes)
      head.insert(head.end(), buf.begin(), buf.begin() + std::min<ssize_t>(n, kHeadBytes));
    total += n;
  }
  if (w.why.empty() && (!stamp_of_fd(fd, after) || after != before || total != before.size))
    w.why = w.path + " changed while it was read";
  close(fd);
  if (w.why.empty()) {
    w.ok = true;
    w.v.stamp = before;
    w.v.sha256 = g_checksum_get_string(sum);
    const SniffResult r =
        check_segment(head.data(), head.size(), static_cast<int64_t>(head.size()) == total);
    if (r.verdict == SniffResult::Verdict::Audio) w.v.form = r.form;
    w.v.file_head = file_head(head);
  }
  g_checksum_free(sum);
}

}  // namespace

bool stamp_of_fd(int fd, FileStamp &out) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out = stamp_of(st);
  return true;
}

bool stamp_of_path(const std::string &path, FileStamp &out) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out = stamp_of(st);
  return true;
}

// ---- Verifier ------------------------------------------------------------------

struct Verifier::Job {
  Verifier *owner = nullptr;
  HashWork work;
  std::vector<std::pair<std::string, Done>> waiters;  // expected SHA-256, callback
};

Verifier::~Verifier() {
  if (cancel_) g_object_unref(cancel_);
}

bool Verifier::known(const std::string &path, const std::string &sha256, Verified &out) {
  auto it = memo_.find(path);
  FileStamp now;
  if (it == memo_.end() || !stamp_of_path(path, now) || now != it->second.stamp) return false;
  if (!sha256.empty() && sha256 != it->second.sha256) return false;
  out = it->second;
  return true;
}

void Verifier::check(const std::string &path, const std::string &sha256, Done done) {
  if (stopped_) return;
  Verified v;
  if (known(path, sha256, v)) return done(true, v, "");
  auto it = jobs_.find(path);
  if (it != jobs_.end()) {
    it->second->waiters.emplace_back(sha256, std::move(done));
    return;
  }
  if (!cancel_) cancel_ = g_cancellable_new();
  auto *job = new Job();
  job->owner = this;
  job->work.path = path;
  job->waiters.emplace_back(sha256, std::move(done));
  jobs_.emplace(path, job);
  workers_++;
  gw_.count(&Counters::file_checks);
  GTask *task = g_task_new(nullptr, cancel_, on_hashed, job);
  g_task_set_task_data(task, &job->work, nullptr);
  g_task_run_in_thread(task, [](GTask *t, gpointer, gpointer data, GCancellable *c) noexcept {
    hash_file(*static_cast<HashWork *>(data), c);
    g_task_return_boolean(t, TRUE);
  });
  g_object_unref(task);
}

void Verifier::on_hashed(GObject *, GAsyncResult *, gpointer data) noexcept {
  auto *job = static_cast<Job *>(data);
  Verifier *self = job->owner;
  self->workers_--;
  self->jobs_.erase(job->work.path);
  std::unique_ptr<Job> owned(job);
  if (self->stopped_) return;
  const HashWork &w = job->work;
  if (w.ok) {
    if (self->memo_.size() >= kMaxMemo) self->memo_.clear();
    self->memo_[w.path] = w.v;
  }
  for (auto &kv : job->waiters) {
    const bool same = w.ok && (kv.first.empty() || kv.first == w.v.sha256);
    kv.second(same, w.v,
              !w.ok  ? w.why
              : same ? ""
                     : w.path + " changed on disk (its SHA-256 differs from its record)");
  }
}

void Verifier::stop() {
  stopped_ = true;
  if (cancel_) g_cancellable_cancel(cancel_);
  for (auto &kv : jobs_) kv.second->waiters.clear();
  while (workers_ > 0) g_main_context_iteration(gw_.ctx, TRUE);
}

Verifier &Gateway::Impl::files() {
  if (!verifier) verifier = std::make_unique<Verifier>(*this);
  return *verifier;
}

// ---- serving files ---------------------------------------------------------------

std::vector<FilePart> slice_parts(const std::vector<FilePart> &parts, uint64_t first,
                                  uint64_t last) {
  std::vector<FilePart> out;
  uint64_t at = 0;  // offset of the part in the body
  for (const FilePart &p : parts) {
    const uint64_t lo = std::max(first, at), hi = std::min(last + 1, at + p.length);
    if (lo < hi) {
      FilePart s = p;
      s.offset = p.offset + (lo - at);
      s.length = hi - lo;
      out.push_back(std::move(s));
    }
    at += p.length;
  }
  return out;
}

namespace {

// An answer waiting for its files' check.
struct Pending {
  HeldPtr held;
  Entity e;
  std::vector<FilePart> parts;
  std::shared_ptr<Cache> hold;
  BadPart on_bad;
  size_t left = 0;  // checks not yet done
  int bad = -1;     // the first part that failed
};

// Every part verified: the head (200, 206, 304, 416), then the body.
void answer_parts(Gateway::Impl &gw, SoupServerMessage *msg, const Pending &p) {
  uint64_t size = 0;
  for (const FilePart &f : p.parts) size += f.length;
  gw.count(&Counters::cache_hits);
  uint64_t first = 0, last = 0;
  if (reply_entity_head(msg, p.e, size, first, last))
    stream_file_parts(gw, msg, slice_parts(p.parts, first, last), p.hold);
}

void checked(Gateway::Impl &gw, Pending &p) {
  if (p.bad >= 0) {
    const FilePart &f = p.parts[size_t(p.bad)];
    if (f.segment >= 0 && p.hold) p.hold->remove(f.segment);
    if (!p.held->msg()) return;
    SoupServerMessage *msg = static_cast<SoupServerMessage *>(g_object_ref(p.held->msg()));
    p.held->release();  // still paused: on_bad answers it
    p.on_bad(msg, f);
    g_object_unref(msg);
    return;
  }
  if (!p.held->msg()) return;
  answer_parts(gw, p.held->msg(), p);
  p.held->resume();
}

}  // namespace

void serve_parts(Gateway::Impl &gw, SoupServerMessage *msg, const Entity &e,
                 std::vector<FilePart> parts, std::shared_ptr<Cache> hold, BadPart on_bad) {
  auto p = std::make_shared<Pending>();
  p->e = e;
  p->parts = std::move(parts);
  p->hold = std::move(hold);
  p->on_bad = std::move(on_bad);
  std::vector<size_t> unknown;
  for (size_t i = 0; i < p->parts.size(); i++) {
    Verified v;
    if (gw.files().known(p->parts[i].path, p->parts[i].sha256, v) &&
        v.stamp.size == static_cast<int64_t>(p->parts[i].length))
      p->parts[i].stamp = v.stamp;
    else
      unknown.push_back(i);
  }
  if (unknown.empty()) return answer_parts(gw, msg, *p);
  p->held = std::make_shared<Held>(msg);
  p->left = unknown.size();
  for (size_t i : unknown) {
    const FilePart &f = p->parts[i];
    gw.files().check(f.path, f.sha256,
                     [&gw, p, i](bool ok, const Verified &v, const std::string &why) {
                       ok = ok && v.stamp.size == static_cast<int64_t>(p->parts[i].length);
                       if (ok) {
                         p->parts[i].stamp = v.stamp;
                       } else if (p->bad < 0) {
                         p->bad = static_cast<int>(i);
                         g_message("segdl-gateway: not served from the cache: %s",
                                   why.empty() ? "size differs from its record" : why.c_str());
                       }
                       if (--p->left == 0) checked(gw, *p);
                     });
  }
}

// One answer being read from its files. Deletes itself when the client is
// done or gone, or when it cuts the client; the gateway deletes those left
// when it stops.
class FileBody {
 public:
  FileBody(Gateway::Impl &gw, SoupServerMessage *msg, std::vector<FilePart> parts,
           std::shared_ptr<Cache> hold)
      : gw_(gw),
        msg_(static_cast<SoupServerMessage *>(g_object_ref(msg))),
        parts_(std::move(parts)),
        hold_(std::move(hold)) {
    finished_id_ = g_signal_connect(msg, "finished", G_CALLBACK(on_gone), this);
    disconnected_id_ = g_signal_connect(msg, "disconnected", G_CALLBACK(on_gone), this);
    wrote_id_ = g_signal_connect(msg, "wrote-body-data", G_CALLBACK(on_wrote), this);
    soup_server_message_pause(msg);
    gw_.bodies.insert(this);
  }
  ~FileBody();
  FileBody(const FileBody &) = delete;
  FileBody &operator=(const FileBody &) = delete;

  void produce();  // may delete this

 private:
  static void on_gone(SoupServerMessage *, gpointer data) noexcept {
    delete static_cast<FileBody *>(data);
  }
  static void on_wrote(SoupServerMessage *, guint size, gpointer data) noexcept;
  static gboolean on_resume(gpointer data) noexcept;
  bool open_part(std::string &why);
  bool end_part(std::string &why);
  bool read_chunk(std::string &why);
  void cut(const std::string &why);  // deletes this

  Gateway::Impl &gw_;
  SoupServerMessage *msg_;  // strong ref
  gulong finished_id_ = 0, disconnected_id_ = 0, wrote_id_ = 0;
  std::vector<FilePart> parts_;
  std::shared_ptr<Cache> hold_;
  size_t next_ = 0;             // the part to open next
  int fd_ = -1;                 // the part being read
  uint64_t at_ = 0, left_ = 0;  // its next offset, its bytes not yet read
  GBytes *tail_ = nullptr;      // the body's last byte, until its file passed the last check
  int64_t pending_ = 0;         // bytes handed to libsoup, not yet written to the socket
  bool paused_ = false;         // counted in Counters::producers_paused
  bool done_ = false;           // the body is complete
  GSource *resume_ = nullptr;   // produce() from the main loop, after "wrote-body-data"
};

FileBody::~FileBody() {
  gw_.bodies.erase(this);
  g_signal_handler_disconnect(msg_, finished_id_);
  g_signal_handler_disconnect(msg_, disconnected_id_);
  g_signal_handler_disconnect(msg_, wrote_id_);
  g_object_unref(msg_);
  if (fd_ >= 0) close(fd_);
  if (tail_) g_bytes_unref(tail_);
  if (paused_) gw_.add(&Counters::producers_paused, -1);
  if (resume_) {
    g_source_destroy(resume_);
    g_source_unref(resume_);
  }
}

// Reads while fewer than max_client_queue_bytes wait for the client; then
// waits for "wrote-body-data" to bring it below half of that.
void FileBody::produce() {
  const int64_t bound = gw_.opts.max_client_queue_bytes;
  std::string why;
  while (!done_ && pending_ < bound) {
    if (fd_ < 0 && next_ == parts_.size()) {
      done_ = true;
      soup_message_body_complete(soup_server_message_get_response_body(msg_));
      break;
    }
    if (fd_ < 0 && !open_part(why)) return cut(why);
    if (fd_ >= 0 && !read_chunk(why)) return cut(why);
  }
  if (!done_ && !paused_) {
    paused_ = true;
    gw_.add(&Counters::producers_paused, 1);
  }
  soup_server_message_unpause(msg_);
}

// Only a file as it was verified: its stamp now is the one it was hashed with.
bool FileBody::open_part(std::string &why) {
  const FilePart &p = parts_[next_++];
  fd_ = open(p.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    why = p.path + ": " + g_strerror(errno);
    return false;
  }
  FileStamp now;
  if (p.stamp.size < 0 || !stamp_of_fd(fd_, now) || now != p.stamp) {
    why = p.path + (p.stamp.size < 0 ? " was not verified" : " changed since it was verified");
    return false;
  }
  at_ = p.offset;
  left_ = p.length;
  return left_ > 0 || end_part(why);
}

// A part read: its file must still be as verified (a write during the read
// changes its stamp); then the body's last byte, when held, goes out.
bool FileBody::end_part(std::string &why) {
  const FilePart &p = parts_[next_ - 1];
  FileStamp now;
  const bool same = stamp_of_fd(fd_, now) && now == p.stamp;
  close(fd_);
  fd_ = -1;
  GBytes *tail = tail_;
  tail_ = nullptr;
  if (same && tail) {
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg_), tail);
    pending_ += 1;
  }
  if (tail) g_bytes_unref(tail);
  if (same) return true;
  why = p.path + " changed while it was read";
  return false;
}

bool FileBody::read_chunk(std::string &why) {
  const uint64_t room = static_cast<uint64_t>(gw_.opts.max_client_queue_bytes - pending_);
  const size_t want = static_cast<size_t>(std::min({left_, kReadBytes, room}));
  auto *buf = static_cast<uint8_t *>(g_malloc(want));
  ssize_t got = -1;
  do {
    got = pread(fd_, buf, want, static_cast<off_t>(at_));
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    g_free(buf);
    why = parts_[next_ - 1].path + ": " +
          (got < 0 ? g_strerror(errno) : "ends before its length (cut short)");
    return false;
  }
  GBytes *b = g_bytes_new_take(buf, static_cast<gsize>(got));
  at_ += static_cast<uint64_t>(got);
  left_ -= static_cast<uint64_t>(got);
  if (left_ == 0 && next_ == parts_.size()) {
    // The body's last byte waits for the last file's check (end_part): a
    // client never gets all Content-Length bytes of a body that fails it.
    tail_ = g_bytes_new_from_bytes(b, static_cast<gsize>(got) - 1, 1);
    GBytes *head = g_bytes_new_from_bytes(b, 0, static_cast<gsize>(got) - 1);
    g_bytes_unref(b);
    b = head;
  }
  if (g_bytes_get_size(b))
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg_), b);
  pending_ += static_cast<int64_t>(g_bytes_get_size(b));
  g_bytes_unref(b);
  gw_.count(&Counters::file_reads);
  gw_.note_queue(pending_);
  return left_ > 0 || end_part(why);
}

void FileBody::on_wrote(SoupServerMessage *, guint size, gpointer data) noexcept {
  auto *self = static_cast<FileBody *>(data);
  self->pending_ = std::max<int64_t>(0, self->pending_ - static_cast<int64_t>(size));
  if (!self->paused_ || self->resume_ || self->pending_ > self->gw_.opts.max_client_queue_bytes / 2)
    return;
  // Not from inside libsoup's write: a cut there would close the connection under it.
  self->resume_ = g_idle_source_new();
  g_source_set_callback(self->resume_, on_resume, self, nullptr);
  g_source_attach(self->resume_, self->gw_.ctx);
}

gboolean FileBody::on_resume(gpointer data) noexcept {
  auto *self = static_cast<FileBody *>(data);
  g_source_unref(self->resume_);
  self->resume_ = nullptr;
  self->paused_ = false;
  self->gw_.add(&Counters::producers_paused, -1);
  self->produce();
  return G_SOURCE_REMOVE;
}

// The body cannot go on: the client had its head (and maybe bytes), so its
// connection is reset, never ended as if the body were whole.
void FileBody::cut(const std::string &why) {
  g_message("segdl-gateway: a body read from the cache is cut: %s", why.c_str());
  SoupServerMessage *msg = static_cast<SoupServerMessage *>(g_object_ref(msg_));
  delete this;
  abort_connection(msg);
  g_object_unref(msg);
}

void stream_file_parts(Gateway::Impl &gw, SoupServerMessage *msg, std::vector<FilePart> parts,
                       std::shared_ptr<Cache> hold) {
  if (g_strcmp0(soup_server_message_get_method(msg), SOUP_METHOD_HEAD) == 0) {
    soup_message_body_complete(soup_server_message_get_response_body(msg));
    return;
  }
  (new FileBody(gw, msg, std::move(parts), std::move(hold)))->produce();
}

void Gateway::Impl::abandon_bodies() {
  while (!bodies.empty()) delete *bodies.begin();
}

}  // namespace segdl::gateway
