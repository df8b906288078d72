// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — a body read from files in chunks (see filebody.h).
 *
 * Files are read, never mapped: a mapped file that another program
 * truncates kills the process with SIGBUS at the first access past its new
 * end. Reads are synchronous on the gateway thread but bounded (64 KiB from
 * a local file, usually the page cache), and only as many as the client
 * takes: libsoup's "wrote-body-data" tells what reached its socket.
 */
#include "gateway/filebody.h"

#include <gio/gio.h>

#include <algorithm>

namespace segdl::gateway {

namespace {
constexpr uint64_t kReadBytes = 64 * 1024;
}  // namespace

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
      if (s.length != p.length) s.sha256.clear();
      out.push_back(std::move(s));
    }
    at += p.length;
  }
  return out;
}

// One answer being read from its files. Deletes itself when the client is
// done or gone, or when it cuts the client; the gateway deletes those left
// when it stops.
class FileBody {
 public:
  FileBody(Gateway::Impl &gw, SoupServerMessage *msg, std::vector<FilePart> parts,
           std::unique_ptr<Cache> hold)
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
  std::unique_ptr<Cache> hold_;
  size_t next_ = 0;             // the part to open next
  GInputStream *in_ = nullptr;  // the part being read
  uint64_t left_ = 0;           // its bytes not yet read
  GChecksum *sum_ = nullptr;    // of its bytes, when it is checked
  GBytes *tail_ = nullptr;      // the body's last byte, until its part passed the check
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
  if (in_) g_object_unref(in_);
  if (sum_) g_checksum_free(sum_);
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
    if (!in_ && next_ == parts_.size()) {
      done_ = true;
      soup_message_body_complete(soup_server_message_get_response_body(msg_));
      break;
    }
    if (!in_ && !open_part(why)) return cut(why);
    if (in_ && !read_chunk(why)) return cut(why);
  }
  if (!done_ && !paused_) {
    paused_ = true;
    gw_.add(&Counters::producers_paused, 1);
  }
  soup_server_message_unpause(msg_);
}

bool FileBody::open_part(std::string &why) {
  const FilePart &p = parts_[next_++];
  GFile *file = g_file_new_for_path(p.path.c_str());
  GError *err = nullptr;
  GFileInputStream *in = g_file_read(file, nullptr, &err);
  g_object_unref(file);
  if (in && p.offset &&
      !g_seekable_seek(G_SEEKABLE(in), static_cast<goffset>(p.offset), G_SEEK_SET, nullptr, &err))
    g_clear_object(&in);
  if (!in) {
    why = p.path + ": " + (err ? err->message : "cannot read");
    g_clear_error(&err);
    return false;
  }
  in_ = G_INPUT_STREAM(in);
  left_ = p.length;
  if (!p.sha256.empty()) sum_ = g_checksum_new(G_CHECKSUM_SHA256);
  return left_ > 0 || end_part(why);
}

// A part read whole: its checksum, when it has one, must hold; a cached
// segment whose bytes changed is removed (the next request fetches it).
bool FileBody::end_part(std::string &why) {
  const FilePart &p = parts_[next_ - 1];
  g_clear_object(&in_);
  if (!sum_) return true;
  const bool same = p.sha256 == g_checksum_get_string(sum_);
  g_checksum_free(sum_);
  sum_ = nullptr;
  GBytes *tail = tail_;
  tail_ = nullptr;
  if (same && tail) {
    soup_message_body_append_bytes(soup_server_message_get_response_body(msg_), tail);
    pending_ += 1;
  }
  if (tail) g_bytes_unref(tail);
  if (same) return true;
  why = p.path + " changed on disk (SHA-256)";
  if (hold_ && p.segment >= 0) hold_->remove(p.segment);
  return false;
}

bool FileBody::read_chunk(std::string &why) {
  const uint64_t room = static_cast<uint64_t>(gw_.opts.max_client_queue_bytes - pending_);
  const gsize want = static_cast<gsize>(std::min({left_, kReadBytes, room}));
  GError *err = nullptr;
  GBytes *b = g_input_stream_read_bytes(in_, want, nullptr, &err);
  const gsize got = b ? g_bytes_get_size(b) : 0;
  if (got == 0) {
    const FilePart &p = parts_[next_ - 1];
    why = p.path + ": " + (err ? err->message : "ends before its length (cut short)");
    g_clear_error(&err);
    if (b) g_bytes_unref(b);
    return false;
  }
  if (sum_)
    g_checksum_update(sum_, static_cast<const guchar *>(g_bytes_get_data(b, nullptr)),
                      static_cast<gssize>(got));
  left_ -= got;
  if (sum_ && left_ == 0 && next_ == parts_.size()) {
    // The body's last byte waits for the last part's check (end_part): a
    // client never gets all Content-Length bytes of a body that fails it.
    tail_ = g_bytes_new_from_bytes(b, got - 1, 1);
    GBytes *head = g_bytes_new_from_bytes(b, 0, got - 1);
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
                       std::unique_ptr<Cache> hold) {
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
