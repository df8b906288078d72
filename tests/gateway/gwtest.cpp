// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway tests — the gated upstream (see gwtest.h). */
#include "gwtest.h"
#include "server/util.h"

#include <gio/gio.h>

namespace gwtest {

GatedUpstream::GatedUpstream(std::string id, std::vector<Bytes> segments, bool half_first)
    : id_(std::move(id)), segments_(std::move(segments)), half_first_(half_first) {
  ctx_ = g_main_context_new();
  loop_ = g_main_loop_new(ctx_, FALSE);
  std::mutex started_mu;
  std::condition_variable started_cv;
  bool started = false;
  thread_ = std::thread([&] {
    g_main_context_push_thread_default(ctx_);
    soup_ = soup_server_new(nullptr, nullptr);
    soup_server_add_handler(soup_, nullptr, on_request, this, nullptr);
    GError *err = nullptr;
    GSocketAddress *addr = g_inet_socket_address_new_from_string("127.0.0.1", 0);
    fail_unless(soup_server_listen(soup_, addr, static_cast<SoupServerListenOptions>(0), &err));
    g_object_unref(addr);
    port_ = segdl::server::listening_port(soup_);
    {
      std::lock_guard<std::mutex> lock(started_mu);
      started = true;
    }
    started_cv.notify_all();
    g_main_loop_run(loop_);
    for (auto &h : held_) g_object_unref(h.first);
    held_.clear();
    soup_server_disconnect(soup_);
    g_clear_object(&soup_);
    while (g_main_context_iteration(ctx_, FALSE)) {
    }
    g_main_context_pop_thread_default(ctx_);
  });
  std::unique_lock<std::mutex> lock(started_mu);
  started_cv.wait(lock, [&] { return started; });
}

GatedUpstream::~GatedUpstream() {
  GSource *quit = g_idle_source_new();
  g_source_set_callback(
      quit,
      [](gpointer d) noexcept -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop *>(d));
        return G_SOURCE_REMOVE;
      },
      loop_, nullptr);
  g_source_attach(quit, ctx_);
  g_source_unref(quit);
  thread_.join();
  g_main_loop_unref(loop_);
  g_main_context_unref(ctx_);
}

void GatedUpstream::open() {
  GSource *s = g_idle_source_new();
  g_source_set_callback(
      s,
      [](gpointer d) noexcept -> gboolean {
        auto *self = static_cast<GatedUpstream *>(d);
        self->open_ = true;
        for (auto &h : self->held_) {
          self->answer(h.first, h.second);
          soup_server_message_unpause(h.first);
          g_object_unref(h.first);
        }
        self->held_.clear();
        return G_SOURCE_REMOVE;
      },
      this, nullptr);
  g_source_attach(s, ctx_);
  g_source_unref(s);
}

size_t GatedUpstream::segment_requests(int64_t seg) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(seg);
  return it == counts_.end() ? 0 : it->second;
}

bool GatedUpstream::wait_segment_requests(size_t total, int timeout_ms) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    size_t n = 0;
    for (const auto &kv : counts_) n += kv.second;
    return n >= total;
  });
}

void GatedUpstream::set_coding(const std::string &coding) {
  std::lock_guard<std::mutex> lock(mu_);
  coding_ = coding;
}

void GatedUpstream::set_status(int status) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = status;
}

void GatedUpstream::answer(SoupServerMessage *msg, int64_t seg) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_) {
      soup_server_message_set_status(msg, static_cast<guint>(status_), nullptr);
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Retry-After",
                                   "3");
      return;
    }
    if (!coding_.empty())
      soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                   "Content-Encoding", coding_.c_str());
  }
  const Bytes &b = segments_[static_cast<size_t>(seg)];
  SoupMessageBody *body = soup_server_message_get_response_body(msg);
  if (half_first_ && !open_) {  // head and half now, the rest at open()
    soup_server_message_set_status(msg, 200, nullptr);
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    soup_message_headers_replace(h, "Content-Type", "audio/aac");
    soup_message_headers_set_content_length(h, static_cast<goffset>(b.size()));
    soup_message_body_set_accumulate(body, FALSE);
    soup_message_body_append(body, SOUP_MEMORY_COPY, b.data(), b.size() / 2);
    return;
  }
  if (half_first_ && soup_server_message_get_status(msg) == 200) {  // the rest
    soup_message_body_append(body, SOUP_MEMORY_COPY, b.data() + b.size() / 2,
                             b.size() - b.size() / 2);
    soup_message_body_complete(body);
    return;
  }
  soup_server_message_set_status(msg, 200, nullptr);
  soup_server_message_set_response(msg, "audio/aac", SOUP_MEMORY_COPY,
                                   reinterpret_cast<const char *>(b.data()), b.size());
}

void GatedUpstream::on_request(SoupServer *, SoupServerMessage *msg, const char *path,
                               GHashTable *query, gpointer data) noexcept {
  auto *self = static_cast<GatedUpstream *>(data);
  const char *v = query ? static_cast<const char *>(g_hash_table_lookup(query, "v")) : nullptr;
  if (!v || self->id_ != v) {
    soup_server_message_set_status(msg, 404, nullptr);
    return;
  }
  if (g_strcmp0(path, "/status") == 0) {
    std::string json = "{\"ready\":[";
    for (size_t k = 0; k < self->segments_.size(); k++) json += (k ? "," : "") + std::to_string(k);
    json += "],\"totalSegments\":" + std::to_string(self->segments_.size()) + "}";
    soup_server_message_set_status(msg, 200, nullptr);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, json.data(),
                                     json.size());
    return;
  }
  const char *s = static_cast<const char *>(g_hash_table_lookup(query, "segment"));
  if (!s && g_strcmp0(path, "/stream") == 0) {  // the whole track, at once
    Bytes all;
    for (const Bytes &b : self->segments_) all.insert(all.end(), b.begin(), b.end());
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (!self->coding_.empty())
        soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                     "Content-Encoding", self->coding_.c_str());
    }
    soup_server_message_set_status(msg, 200, nullptr);
    soup_server_message_set_response(msg, "audio/aac", SOUP_MEMORY_COPY,
                                     reinterpret_cast<const char *>(all.data()), all.size());
    return;
  }
  const int64_t seg = s ? g_ascii_strtoll(s, nullptr, 10) : -1;
  if (seg < 0 || seg >= static_cast<int64_t>(self->segments_.size())) {
    soup_server_message_set_status(msg, 404, nullptr);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    self->counts_[seg]++;
  }
  self->cv_.notify_all();
  if (self->open_) return self->answer(msg, seg);
  if (self->half_first_) {
    self->answer(msg, seg);
    self->held_.emplace_back(static_cast<SoupServerMessage *>(g_object_ref(msg)), seg);
    return;  // not paused: the head and half go now; the rest waits for open()
  }
  soup_server_message_pause(msg);
  self->held_.emplace_back(static_cast<SoupServerMessage *>(g_object_ref(msg)), seg);
}

}  // namespace gwtest
