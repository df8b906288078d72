// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the gateway's inside, shared by its source files.
 *
 * Threads: Gateway's public methods run on any thread and touch only what
 * Impl::mu protects (the counters and the start/stop handshake). Everything
 * else — the SoupServer, the Fetcher (libsoup 3, on the core's seam), the
 * caches, the transfers and jobs below — lives on the gateway thread, which
 * owns its own GMainContext, pushed as thread-default before anything is made.
 */
#pragma once

#include "gateway/gateway.h"
#include "gateway/reply.h"
#include "segdl/cache.h"
#include "segdl/fetcher.h"
#include "segdl/sniff.h"
#include "segdl/status.h"

#include <glib.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace segdl::gateway {

class Fill;
class StatusFetch;
class FullProxy;
class JoinJob;
class FileBody;  // a body read from cache files (filebody.cpp)
class Verifier;  // cache files hashed before they are served (filebody.cpp)
class Accept;    // a request's Accept header (listen.cpp)
struct Preload;

// How an upstream transfer ended, for the clients waiting on it.
struct Outcome {
  bool ok = false;
  int http_status = 200;  // what to answer when !ok (404, 502, 503, 504)
  std::string error;      // short code: "upstream_unreachable", ...
  std::string message;    // a sentence naming the id, segment and cause
  int retry_after_s = -1;
};

// What an upstream status said, remembered per id (gateway thread).
struct KnownTrack {
  Status status;
  int64_t when_us = 0;  // monotonic
};

using StatusCallback = std::function<void(const Outcome &, const Status &)>;
using FillCallback = std::function<void(const Outcome &, GBytes *bytes, const Entity &meta)>;
// Where a client waiting for a joined file goes when the join fails (it
// gets the message paused, with no answer set).
using JoinFallback = std::function<void(SoupServerMessage *msg)>;

struct Gateway::Impl {
  // Out of line (gateway.cpp): the members' destructors need the complete
  // transfer types (fill.h), which a file including only this header lacks.
  explicit Impl(Options o);
  ~Impl();

  const Options opts;

  // Protected by mu (any thread).
  mutable std::mutex mu;
  mutable std::condition_variable cv;  // start handshake; idle changes
  Counters counters;
  bool listen_done = false;
  std::string listen_error;
  int bound_port = 0;
  // Set by start()/stop() on the caller's thread.
  std::thread thread;
  GMainContext *ctx = nullptr;
  GMainLoop *loop = nullptr;

  // Gateway thread only.
  SoupServer *soup = nullptr;
  std::unique_ptr<Fetcher> fetcher;
  bool stopping = false;
  std::map<std::pair<std::string, int64_t>, std::unique_ptr<Fill>> fills;
  std::deque<Fill *> queue;  // fills waiting for a slot (max_concurrent)
  int running = 0;
  std::map<std::string, std::unique_ptr<StatusFetch>> status_fetches;
  std::map<std::string, KnownTrack> known;
  std::map<std::string, std::set<int64_t>> failed;  // segments whose last fill failed
  std::map<std::string, Outcome> status_failed;     // the last upstream status failure, per id
  std::map<std::string, MediaForm> forms;  // the form of segment 0 of a track, once fetched
  std::map<std::string, std::unique_ptr<Preload>> preloads;
  std::set<FullProxy *> proxies;
  std::map<std::string, std::unique_ptr<JoinJob>> joins;  // by the joined file's path
  std::set<FileBody *> bodies;         // answers being read from cache files (each deletes itself)
  std::unique_ptr<Verifier> verifier;  // made by files(), stopped first by shutdown()
  std::vector<std::unique_ptr<FetchListener>> graveyard;  // freed from an idle
  guint graveyard_idle = 0;
  int64_t last_evict_us = 0;

  // ---- gateway.cpp: the server and its routes ----
  void thread_main() noexcept;
  bool listen(std::string &err, int &port);
  void shutdown();
  void count(uint64_t Counters::*field);
  void add(int Counters::*field, int delta);
  void note_queue(int64_t bytes);  // raises Counters::max_client_queue (any thread)
  void route(SoupServerMessage *msg, const char *path, GHashTable *query);
  bool check_id(SoupServerMessage *msg, const std::string &id);

  // ---- api.cpp: the app's API and the plain protocol ----
  void api_status(SoupServerMessage *msg, const std::string &id);
  void api_preload(SoupServerMessage *msg);
  void api_cache(SoupServerMessage *msg, const std::string *id);
  void api_evict(SoupServerMessage *msg, GHashTable *query);
  void plain_status(SoupServerMessage *msg, const std::string &id);
  void get_segment(SoupServerMessage *msg, const std::string &id, const std::string &num);
  // Segment n from the cache (verified first; a bad entry is removed and the
  // segment fetched): false when not cached. Else from the upstream.
  bool serve_cached(SoupServerMessage *msg, const std::string &id, int64_t n);
  void fetch_segment(SoupServerMessage *msg, const std::string &id, int64_t n);
  void get_full(SoupServerMessage *msg, const std::string &id);
  // A complete track whose segments laid end to end are one stream (joined.cpp);
  // MP3 segments that are files of their own are joined (serve_joined_file,
  // `fallback` as there).
  bool serve_joined(SoupServerMessage *msg, const std::string &id, JoinFallback fallback = {});

  // ---- joinfile.cpp: self-contained tracks joined into one cached file ----
  bool serve_joined_file(SoupServerMessage *msg, const std::string &id, const char *ext = nullptr,
                         JoinFallback fallback = {});
  // The joined file at `path` if it has its record (size, SHA-256: checked
  // before serving), else false; one found changed is removed and joined
  // again (`ext` as above).
  bool reply_joined(SoupServerMessage *msg, const std::string &id, const std::string &path,
                    const Entity &meta, const char *ext, JoinFallback fallback = {});
  void join_ended(JoinJob *j);  // deletes it
  void abandon_joins();
  void abandon_bodies();         // filebody.cpp
  Verifier &files();             // filebody.cpp
  std::string self_url() const;  // this gateway, as a segdlsrc backend (gateway.cpp)

  // ---- web.cpp, listen.cpp: CORS, the web player page, /listen/ID ----
  // Adds the CORS headers; answers OPTIONS, "/" and "/listen/ID" (true), else
  // false. `parts`: the path's components, each decoded (empty: undecodable).
  bool web_route(SoupServerMessage *msg, const char *path, const std::vector<std::string> &parts,
                 const std::string &method);
  void listen_track(SoupServerMessage *msg, const std::string &id);
  bool serve_listen_file(SoupServerMessage *msg, const std::string &id, const Accept &accept);
  bool prepare_gstreamer(std::string &error);  // at start: GStreamer, the plugins /listen uses

  // ---- fill.cpp: upstream segments, status, whole tracks ----
  // The running or queued fill of a segment, made (and queued) if needed;
  // `urgent` puts a new or queued fill at the front of the queue.
  Fill *ensure_fill(const std::string &id, int64_t n, bool urgent);
  void fill_ended(Fill *f);
  void pump_queue();
  void fetch_status(const std::string &id, StatusCallback cb);
  void status_ended(StatusFetch *s);
  void start_full(SoupServerMessage *msg, const std::string &id);
  void proxy_ended(FullProxy *p);
  void abandon_proxies();
  void bury(std::unique_ptr<FetchListener> l);
  void maybe_evict();

  // ---- preload.cpp ----
  void preload(const std::string &id);
  void preload_step(Preload *p);
  void preload_ended(Preload *p);
  void set_preload_count();

  // ---- store.cpp: the cache, on the core's public API ----
  bool cache_dir_of(const std::string &id, std::string &dir) const;  // false if no folder
  std::unique_ptr<Cache> open_cache(const std::string &id, std::string &error);
  std::vector<int64_t> local_segments(const std::string &id);
  std::optional<int64_t> known_total(const std::string &id);
  // Learns the form of the track's segment 0 from the cache (verified on a
  // worker) when this process has not seen it: true when the answer comes
  // later, through Fill::form_known() of the track's fills.
  bool learn_form(const std::string &id);
  void note_total(const std::string &id, Cache &cache);
};

// A client answer deferred until an upstream result arrives: the message is
// paused, and forgotten (msg() null) if the client goes away meanwhile.
class Held {
 public:
  explicit Held(SoupServerMessage *msg);
  ~Held();
  Held(const Held &) = delete;
  Held &operator=(const Held &) = delete;
  SoupServerMessage *msg() const { return msg_; }
  void resume();   // unpauses (the answer is set) and lets go
  void release();  // lets go, still paused (another owner takes the message over)

 private:
  static void on_gone(SoupServerMessage *, gpointer data) noexcept;
  SoupServerMessage *msg_ = nullptr;  // strong ref; null once gone
  gulong finished_id_ = 0, disconnected_id_ = 0;
};
using HeldPtr = std::shared_ptr<Held>;

// A pipeline of segdlsrc reading `id` from `backend` (this gateway), playing:
// `on_caps` probes its first CAPS event (the tail is linked there), `on_bus`
// watches its bus on the calling thread's context (both get `data`); `live`
// polls every 0.5 s and buffers nothing ahead (/listen). The pipeline and
// the watch are the caller's even on failure (false with `error`).
bool start_segdl_pipeline(const std::string &backend, const std::string &id, bool live,
                          GstPadProbeCallback on_caps, GSourceFunc on_bus, gpointer data,
                          GstElement **pipeline, GSource **bus_watch, std::string &error);

// Takes the connection from libsoup and resets it (fill.cpp): a client that
// already has part of a body must see it cut, never a short body taken for a
// whole one.
void abort_connection(SoupServerMessage *msg);

// The gateway never asks for a content coding (no Accept-Encoding), so a
// coded upstream answer is refused, as the element does: its bytes are not
// the segment's. Returns the coding, or empty when none (or "identity").
std::string unasked_coding(const FetchResponse &resp);

// Cache-Control values.
std::string immutable_cc(const Options &o);
constexpr const char *kNoStore = "no-store";

}  // namespace segdl::gateway
