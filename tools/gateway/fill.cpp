// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — upstream segment transfers: one per segment however many
 * clients ask (see fill.h), a queue that keeps at most max_concurrent of them
 * running, streaming to clients while the body goes into the cache.
 */
#include "gateway/fill.h"
#include "segdl/urls.h"

#include <gio/gio.h>
#include <sys/socket.h>

#include <algorithm>

namespace segdl::gateway {

namespace {

constexpr size_t kMaxFailedTracks = 10000;

// The body held, in one piece.
GBytes *concat(const std::vector<GBytes *> &chunks, uint64_t total) {
  GByteArray *all = g_byte_array_sized_new(static_cast<guint>(total));
  for (GBytes *b : chunks) {
    gsize size = 0;
    const auto *d = static_cast<const guint8 *>(g_bytes_get_data(b, &size));
    g_byte_array_append(all, d, static_cast<guint>(size));
  }
  return g_byte_array_free_to_bytes(all);
}

bool is_text_type(const std::string &type) {
  return g_str_has_prefix(type.c_str(), "text/") ||
         g_str_has_prefix(type.c_str(), "application/json");
}

}  // namespace

// Takes the connection from libsoup and resets it: a client that already has
// part of a body must see it cut, never a short body taken for a whole one.
// A chunked answer's socket is closed (SO_LINGER 0: a reset) BEFORE libsoup
// lets the message go: when it does, it closes its body stream, and a
// chunked body stream's close writes the terminating chunk, which ended a
// cut answer as a whole one (the client read the reset only after it).
void abort_connection(SoupServerMessage *msg) {
  GSocket *sock = soup_server_message_get_socket(msg);
  const bool chunked = soup_message_headers_get_encoding(
                           soup_server_message_get_response_headers(msg)) == SOUP_ENCODING_CHUNKED;
  if (sock) {
    g_object_ref(sock);
    struct linger lg = {};
    lg.l_onoff = 1;
    lg.l_linger = 0;
    setsockopt(g_socket_get_fd(sock), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  if (sock && chunked) {
    // libsoup asks for these (once, then kept) as it lets the message go;
    // asked now, while the socket is open, not of a closed one (a WARNING).
    soup_server_message_get_local_address(msg);
    soup_server_message_get_remote_address(msg);
    g_socket_close(sock, nullptr);  // later writes fail: G_IO_ERROR_CLOSED
  }
  GIOStream *stream = soup_server_message_steal_connection(msg);
  if (stream) {
    g_io_stream_close(stream, nullptr, nullptr);
    g_object_unref(stream);
  }
  if (sock) {
    g_socket_close(sock, nullptr);  // nothing when closed above
    g_object_unref(sock);
  }
}

std::string unasked_coding(const FetchResponse &resp) {
  const std::string &c = resp.content_encoding;
  return c.empty() || g_ascii_strcasecmp(c.c_str(), "identity") == 0 ? std::string() : c;
}

std::string immutable_cc(const Options &o) {
  return "public, max-age=" + std::to_string(o.segment_max_age_s) + ", immutable";
}

Fill::Fill(Gateway::Impl &gw, std::string id, int64_t n)
    : gw_(gw), id_(std::move(id)), n_(n), sum_(g_checksum_new(G_CHECKSUM_SHA256)) {}

Fill::~Fill() {
  abandon();
  if (writing_) gw_.add(&Counters::fills_writing, -1);
  for (GBytes *b : chunks_) g_bytes_unref(b);
  if (head_) g_byte_array_unref(head_);
  g_checksum_free(sum_);
}

void Fill::abandon() {
  if (fetch_id_) gw_.fetcher->cancel(fetch_id_);
  fetch_id_ = 0;
  if (retry_timer_) {
    g_source_destroy(retry_timer_);
    g_source_unref(retry_timer_);
    retry_timer_ = nullptr;
  }
  while (!subs_.empty()) detach(subs_.back());
  waiters_.clear();
  ended_ = true;
}

// A segment past 0 is checked against the form of the track's segment 0:
// known when this process fetched it, else learnt from the cache (verified
// on a worker meanwhile; the check of this segment's bytes waits for it).
void Fill::start() {
  started_ = true;
  form_wait_ = n_ > 0 && gw_.learn_form(id_);
  attempt();
}

void Fill::form_known() {
  if (!form_wait_ || ended_) return;
  form_wait_ = false;
  if (!head_ && !done_wait_) return;  // no byte yet: on_data() checks them
  const bool whole = done_wait_ || (total_ >= 0 && received_ == static_cast<uint64_t>(total_));
  if (!sniff(nullptr, 0, whole)) return;  // refused (failed)
  if (checked_)
    for (Sub *s : std::vector<Sub *>(subs_))
      if (!s->head_sent) send_head(s);
  if (done_wait_) succeed();
}

// The cache entry is opened only once the upstream serves the segment: an id
// the upstream does not know leaves no folder behind.
void Fill::open_writer() {
  std::string error;
  cache_ = gw_.open_cache(id_, error);
  if (cache_) writer_ = cache_->begin(n_, error);
  if (writer_) {
    writing_ = true;
    gw_.add(&Counters::fills_writing, 1);
  }
  if (!writer_)
    g_warning("segdl-gateway: %s segment %" G_GINT64_FORMAT " will not be cached: %s", id_.c_str(),
              n_, error.c_str());
}

void Fill::attempt() {
  attempts_++;
  bad_status_ = 0;
  retry_after_s_ = -1;
  skip_ = 0;
  FetchRequest req;
  req.url = segment_url(gw_.opts.upstream, id_, n_);
  req.range_start = static_cast<int64_t>(received_);
  gw_.count(&Counters::upstream_segments);
  fetch_id_ = gw_.fetcher->start(req, this);
}

void Fill::subscribe(SoupServerMessage *msg) {
  auto *s = new Sub();
  s->fill = this;
  s->msg = static_cast<SoupServerMessage *>(g_object_ref(msg));
  s->finished_id = g_signal_connect(msg, "finished", G_CALLBACK(on_client_gone), s);
  s->disconnected_id = g_signal_connect(msg, "disconnected", G_CALLBACK(on_client_gone), s);
  soup_server_message_pause(msg);
  subs_.push_back(s);
  if (have_head_ && checked_) send_head(s);
}

void Fill::on_finish(FillCallback cb) {
  waiters_.push_back(std::move(cb));
}

void Fill::on_client_gone(SoupServerMessage *, gpointer data) noexcept {
  auto *s = static_cast<Sub *>(data);
  s->fill->detach(s);
}

void Fill::detach(Sub *s) {
  subs_.erase(std::remove(subs_.begin(), subs_.end(), s), subs_.end());
  g_signal_handler_disconnect(s->msg, s->finished_id);
  g_signal_handler_disconnect(s->msg, s->disconnected_id);
  g_object_unref(s->msg);
  delete s;
}

// The head a streaming client gets, once the first bytes passed the check:
// the upstream's type and date, a length when the upstream gave one (then
// the answer is cacheable: a cut body is detectable), and every byte held so
// far (bar a complete body's last one: see fill.h).
void Fill::send_head(Sub *s) {
  SoupMessageHeaders *h = soup_server_message_get_response_headers(s->msg);
  soup_server_message_set_status(s->msg, SOUP_STATUS_OK, nullptr);
  soup_message_headers_replace(h, "Content-Type", content_type_.c_str());
  if (!last_modified_.empty())
    soup_message_headers_replace(h, "Last-Modified", last_modified_.c_str());
  if (total_ >= 0) {
    soup_message_headers_set_content_length(h, total_);
    soup_message_headers_replace(h, "Cache-Control", immutable_cc(gw_.opts).c_str());
  } else {
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    soup_message_headers_replace(h, "Cache-Control", kNoStore);
  }
  SoupMessageBody *body = soup_server_message_get_response_body(s->msg);
  soup_message_body_set_accumulate(body, FALSE);
  append_held(s);
  s->head_sent = true;
  soup_server_message_unpause(s->msg);
}

bool Fill::accept_head(const FetchResponse &resp, std::string &why) {
  if (resp.http_status == 206 && resp.range_start == static_cast<int64_t>(received_)) return true;
  if (resp.http_status != 200) {
    why = "upstream answered " + std::to_string(resp.http_status) + " to a resumed request";
    return false;
  }
  skip_ = received_;  // a whole body again: drop what is already held
  if (have_head_ && total_ >= 0 && resp.content_length >= 0 && resp.content_length != total_) {
    why = "the segment changed size upstream during the transfer";
    return false;
  }
  return true;
}

void Fill::on_response(const FetchResponse &resp) {
  const std::string coding = unasked_coding(resp);
  if (!coding.empty() && (resp.http_status == 200 || resp.http_status == 206)) {
    gw_.fetcher->cancel(fetch_id_);  // no callback follows: end here
    fetch_id_ = 0;
    fail({false, 502, "upstream_bad_encoding",
          "segment " + std::to_string(n_) + " of " + id_ + ": the upstream answered with " +
              "Content-Encoding " + coding + ", which the gateway never asks for"});
    return;
  }
  if (resp.http_status != 200 && resp.http_status != 206) {
    bad_status_ = resp.http_status;
    retry_after_s_ = resp.retry_after_s;
    return;
  }
  std::string why;
  if (have_head_ || received_ > 0) {
    if (!accept_head(resp, why)) bad_status_ = 502;
    return;
  }
  if (resp.http_status == 206 || is_text_type(resp.content_type)) {
    bad_status_ = 502;  // not an answer to our request, or an error page
    return;
  }
  if (resp.content_length > gw_.opts.max_segment_bytes) {  // refused before any byte
    gw_.fetcher->cancel(fetch_id_);                        // no callback follows: end here
    fetch_id_ = 0;
    fail({false, 502, "segment_too_large",
          "segment " + std::to_string(n_) + " of " + id_ + " is larger than " +
              std::to_string(gw_.opts.max_segment_bytes) + " bytes (" +
              std::to_string(resp.content_length) + ")"});
    return;
  }
  have_head_ = true;
  open_writer();
  total_ = resp.content_length;
  content_type_ = resp.content_type.empty() ? "application/octet-stream" : resp.content_type;
  last_modified_ = resp.last_modified.empty() ? http_date_now() : resp.last_modified;
  // The clients get the head once the first bytes are known to be audio (on_data).
}

// Every byte held to a client's body, bar the last one of a complete body of
// known length: that one goes only after the whole body passed its check.
void Fill::append_held(Sub *s) {
  SoupMessageBody *body = soup_server_message_get_response_body(s->msg);
  const bool hold_last = total_ > 0 && received_ == static_cast<uint64_t>(total_);
  for (size_t k = 0; k < chunks_.size(); k++) {
    const gsize size = g_bytes_get_size(chunks_[k]);
    const gsize give = hold_last && k + 1 == chunks_.size() ? size - 1 : size;
    if (give == size) {
      soup_message_body_append_bytes(body, chunks_[k]);
    } else if (give > 0) {
      GBytes *part = g_bytes_new_from_bytes(chunks_[k], 0, give);
      soup_message_body_append_bytes(body, part);
      g_bytes_unref(part);
    }
  }
}

// The first bytes through check_segment() (`data` added; `whole`: the body
// ended), against the track's form once its segment 0 was fetched here.
// True while the segment may still be audio; false once refused (failed).
bool Fill::sniff(const guint8 *data, gsize size, bool whole) {
  if (!head_) head_ = g_byte_array_new();
  if (size) g_byte_array_append(head_, data, static_cast<guint>(size));
  if (form_wait_) return true;  // decided by form_known()
  auto it = gw_.forms.find(id_);
  const MediaForm track = n_ > 0 && it != gw_.forms.end() ? it->second : MediaForm::Unknown;
  const SniffResult r = check_segment(head_->data, head_->len, whole, track);
  if (r.verdict == SniffResult::Verdict::NeedMore) return true;
  if (r.verdict == SniffResult::Verdict::NotAudio) {
    refuse(r.why);
    return false;
  }
  checked_ = true;
  form_ = r.form;
  g_byte_array_unref(head_);
  head_ = nullptr;
  return true;
}

// Not audio: not retried (the upstream gave these bytes as the segment),
// nothing cached, 502 to the clients (a cut for those that had a start).
void Fill::refuse(const std::string &why) {
  if (fetch_id_) gw_.fetcher->cancel(fetch_id_);  // no callback follows
  fetch_id_ = 0;
  fail({false, 502, "upstream_not_audio",
        "segment " + std::to_string(n_) + " of " + id_ + " is not audio: " + why});
}

void Fill::on_data(GBytes *chunk) {
  if (bad_status_ || !have_head_ || g_bytes_get_size(chunk) == 0) return;
  gsize size = 0;
  const auto *data = static_cast<const guint8 *>(g_bytes_get_data(chunk, &size));
  if (skip_ > 0) {
    const gsize drop = static_cast<gsize>(std::min<uint64_t>(skip_, size));
    skip_ -= drop;
    if (drop == size) return;
    chunk = g_bytes_new_from_bytes(chunk, drop, size - drop);
  } else {
    g_bytes_ref(chunk);
  }
  data = static_cast<const guint8 *>(g_bytes_get_data(chunk, &size));
  if (received_ + size > static_cast<uint64_t>(gw_.opts.max_segment_bytes)) {
    g_bytes_unref(chunk);
    gw_.fetcher->cancel(fetch_id_);
    fetch_id_ = 0;
    fail({false, 502, "segment_too_large",
          "segment " + std::to_string(n_) + " of " + id_ + " is larger than " +
              std::to_string(gw_.opts.max_segment_bytes) + " bytes"});
    return;
  }
  chunks_.push_back(chunk);
  received_ += size;
  g_checksum_update(sum_, data, size);
  std::string error;
  if (writer_ && !writer_->append(data, size, error)) {
    g_warning("segdl-gateway: not caching %s segment %" G_GINT64_FORMAT ": %s", id_.c_str(), n_,
              error.c_str());
    writer_.reset();
  }
  if (!checked_) {
    const bool whole = total_ >= 0 && received_ == static_cast<uint64_t>(total_);
    if (!sniff(data, size, whole) || !checked_) return;
    for (Sub *s : std::vector<Sub *>(subs_)) send_head(s);
    return;
  }
  const bool last = total_ > 0 && received_ == static_cast<uint64_t>(total_);
  if (last && size == 1) return;  // held: see append_held()
  GBytes *out = last ? g_bytes_new_from_bytes(chunk, 0, size - 1) : g_bytes_ref(chunk);
  for (Sub *s : subs_) {
    if (!s->head_sent) continue;
    soup_message_body_append_bytes(soup_server_message_get_response_body(s->msg), out);
    soup_server_message_unpause(s->msg);
  }
  g_bytes_unref(out);
}

void Fill::on_done(FetchError error, const std::string &message) {
  fetch_id_ = 0;
  const std::string what = "segment " + std::to_string(n_) + " of " + id_;
  if (error == FetchError::None && !bad_status_) {
    if (total_ >= 0 && received_ != static_cast<uint64_t>(total_))
      return retry_or_fail({false, 502, "upstream_broken", what + ": body cut short"}, true);
    if (form_wait_) {
      done_wait_ = true;  // form_known() goes on
      return;
    }
    if (!checked_ && !sniff(nullptr, 0, true)) return;  // a body shorter than a verdict needs
    return succeed();
  }
  if (bad_status_ == 404 || bad_status_ == 425 || bad_status_ == 503) {
    const int status = bad_status_ == 404 ? 404 : 503;
    return fail({false, status, status == 404 ? "not_found" : "not_ready",
                 what + ": upstream answered " + std::to_string(bad_status_), retry_after_s_});
  }
  if (bad_status_ == 500 || bad_status_ == 502 || bad_status_ == 504)
    return retry_or_fail(
        {false, 502, "upstream_error", what + ": upstream answered " + std::to_string(bad_status_)},
        true);
  if (bad_status_)
    return fail({false, 502, "upstream_error",
                 what + ": upstream answered " + std::to_string(bad_status_)});
  const bool timeout = error == FetchError::Timeout;
  retry_or_fail({false, timeout ? 504 : 502,
                 timeout                        ? "upstream_timeout"
                 : error == FetchError::Connect ? "upstream_unreachable"
                                                : "upstream_broken",
                 what + ": " + fetch_error_name(error) + ": " + message},
                error != FetchError::Tls && error != FetchError::Other);
}

void Fill::retry_or_fail(Outcome why, bool transient) {
  if (!transient || attempts_ > gw_.opts.max_retries || gw_.stopping) return fail(why);
  const int64_t delay_ms = static_cast<int64_t>(gw_.opts.retry_backoff_ms) << (attempts_ - 1);
  g_message("segdl-gateway: %s; retry %d in %" G_GINT64_FORMAT " ms", why.message.c_str(),
            attempts_, delay_ms);
  retry_timer_ = g_timeout_source_new(static_cast<guint>(std::min<int64_t>(delay_ms, 30000)));
  g_source_set_callback(retry_timer_, on_retry_timer, this, nullptr);
  g_source_attach(retry_timer_, gw_.ctx);
}

gboolean Fill::on_retry_timer(gpointer data) noexcept {
  auto *f = static_cast<Fill *>(data);
  g_source_unref(f->retry_timer_);
  f->retry_timer_ = nullptr;
  f->attempt();
  return G_SOURCE_REMOVE;
}

// A whole body: checked whole when it is MP4 (a file cut short shows only
// at its end), into the cache, to the streaming clients (with the last byte
// held back until now), to the waiters.
void Fill::succeed() {
  GBytes *whole = nullptr;
  if (form_ == MediaForm::Iso || !waiters_.empty()) whole = concat(chunks_, received_);
  if (form_ == MediaForm::Iso) {
    gsize size = 0;
    const auto *d = static_cast<const guint8 *>(g_bytes_get_data(whole, &size));
    const SniffResult r = check_segment(d, size, true);
    if (r.verdict != SniffResult::Verdict::Audio) {
      g_bytes_unref(whole);
      return refuse(r.why);
    }
  }
  Entity meta;
  meta.etag = "\"" + std::string(g_checksum_get_string(sum_), 32) + "\"";
  meta.last_modified = last_modified_;
  meta.content_type = content_type_;
  meta.cache_control = immutable_cc(gw_.opts);
  if (writer_) {
    SegmentInfo info;
    info.size = static_cast<int64_t>(received_);
    info.etag = meta.etag;
    info.last_modified = meta.last_modified;
    info.content_type = meta.content_type;
    std::string error;
    if (!writer_->commit(info, error))
      g_warning("segdl-gateway: not caching %s segment %" G_GINT64_FORMAT ": %s", id_.c_str(), n_,
                error.c_str());
    writer_.reset();
  }
  if (cache_) gw_.note_total(id_, *cache_);
  gw_.failed[id_].erase(n_);
  if (n_ == 0) {
    if (gw_.forms.size() > kMaxFailedTracks) gw_.forms.clear();
    gw_.forms[id_] = form_;
  }
  GBytes *tail = nullptr;  // the byte append_held() and on_data() held back
  if (total_ > 0 && !chunks_.empty()) {
    GBytes *last = chunks_.back();
    tail = g_bytes_new_from_bytes(last, g_bytes_get_size(last) - 1, 1);
  }
  for (Sub *s : std::vector<Sub *>(subs_)) {
    if (!s->head_sent) send_head(s);
    SoupMessageBody *body = soup_server_message_get_response_body(s->msg);
    if (tail) soup_message_body_append_bytes(body, tail);
    soup_message_body_complete(body);
    soup_server_message_unpause(s->msg);
    detach(s);
  }
  if (tail) g_bytes_unref(tail);
  end({true}, whole, meta);
  if (whole) g_bytes_unref(whole);
}

void Fill::fail(const Outcome &why) {
  g_message("segdl-gateway: %s", why.message.c_str());
  writer_.reset();  // removes the temporary file: nothing half-written stays
  if (gw_.failed.size() > kMaxFailedTracks) gw_.failed.clear();  // ids are the clients' choice
  gw_.failed[id_].insert(n_);
  for (Sub *s : std::vector<Sub *>(subs_)) {
    if (s->head_sent) {
      SoupServerMessage *msg = static_cast<SoupServerMessage *>(g_object_ref(s->msg));
      detach(s);
      abort_connection(msg);
      g_object_unref(msg);
    } else {
      reply_error(s->msg, why.http_status, why.error, why.message, why.retry_after_s);
      soup_server_message_unpause(s->msg);
      detach(s);
    }
  }
  end(why, nullptr, Entity());
}

void Fill::end(const Outcome &outcome, GBytes *bytes, const Entity &meta) {
  ended_ = true;
  std::vector<FillCallback> waiters;
  waiters.swap(waiters_);
  cache_.reset();        // releases the track
  gw_.fill_ended(this);  // `this` now belongs to the graveyard
  for (FillCallback &cb : waiters) cb(outcome, bytes, meta);
}

// ---- the queue -------------------------------------------------------------

Fill *Gateway::Impl::ensure_fill(const std::string &id, int64_t n, bool urgent) {
  const auto key = std::make_pair(id, n);
  auto it = fills.find(key);
  if (it != fills.end()) {
    Fill *f = it->second.get();
    if (urgent && !f->started()) {
      queue.erase(std::remove(queue.begin(), queue.end(), f), queue.end());
      queue.push_front(f);
    }
    return f;
  }
  auto owned = std::make_unique<Fill>(*this, id, n);
  Fill *f = owned.get();
  fills.emplace(key, std::move(owned));
  {
    std::lock_guard<std::mutex> lock(mu);
    counters.fills_pending++;
  }
  cv.notify_all();
  if (urgent)
    queue.push_front(f);
  else
    queue.push_back(f);
  pump_queue();
  return f;
}

void Gateway::Impl::pump_queue() {
  while (!stopping && running < opts.max_concurrent && !queue.empty()) {
    Fill *f = queue.front();
    queue.pop_front();
    running++;
    {
      std::lock_guard<std::mutex> lock(mu);
      counters.fills_running = running;
    }
    cv.notify_all();
    f->start();
  }
}

void Gateway::Impl::fill_ended(Fill *f) {
  auto it = fills.find(std::make_pair(f->id(), f->segment()));
  if (it == fills.end()) return;
  if (f->started()) running--;
  bury(std::move(it->second));
  fills.erase(it);
  {
    std::lock_guard<std::mutex> lock(mu);
    counters.fills_pending--;
    counters.fills_running = running;
  }
  cv.notify_all();
  maybe_evict();
  pump_queue();
}

// Listeners are freed from an idle: a fetcher callback may still be on the
// stack when their transfer ends.
void Gateway::Impl::bury(std::unique_ptr<FetchListener> l) {
  graveyard.push_back(std::move(l));
  if (graveyard_idle) return;
  GSource *idle = g_idle_source_new();
  g_source_set_callback(
      idle,
      [](gpointer data) noexcept -> gboolean {
        auto *self = static_cast<Gateway::Impl *>(data);
        self->graveyard_idle = 0;
        std::vector<std::unique_ptr<FetchListener>> dead;
        dead.swap(self->graveyard);
        return G_SOURCE_REMOVE;
      },
      this, nullptr);
  graveyard_idle = g_source_attach(idle, ctx);
  g_source_unref(idle);
}

}  // namespace segdl::gateway
