// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the app's API (/api/segments/...) and the plain segdl
 * protocol (/status, /stream) on the cache and the upstream transfers.
 */
#include "gateway/filebody.h"
#include "gateway/fill.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstring>

namespace segdl::gateway {

namespace {

constexpr const char *kIdFile = "video-id";

std::string json_ints(const std::vector<int64_t> &v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); i++) out += (i ? "," : "") + std::to_string(v[i]);
  return out + "]";
}

std::string json_ints(const std::set<int64_t> &s) {
  return json_ints(std::vector<int64_t>(s.begin(), s.end()));
}

std::string json_double(double v) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string max_age_cc(int seconds) {
  return "public, max-age=" + std::to_string(seconds);
}

// The union of two ascending lists.
std::vector<int64_t> merge(const std::vector<int64_t> &a, const std::vector<int64_t> &b) {
  std::vector<int64_t> out;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

Held::Held(SoupServerMessage *msg) : msg_(static_cast<SoupServerMessage *>(g_object_ref(msg))) {
  finished_id_ = g_signal_connect(msg, "finished", G_CALLBACK(on_gone), this);
  disconnected_id_ = g_signal_connect(msg, "disconnected", G_CALLBACK(on_gone), this);
  soup_server_message_pause(msg);
}

Held::~Held() {
  release();
}

void Held::on_gone(SoupServerMessage *, gpointer data) noexcept {
  static_cast<Held *>(data)->release();
}

void Held::release() {
  if (!msg_) return;
  g_signal_handler_disconnect(msg_, finished_id_);
  g_signal_handler_disconnect(msg_, disconnected_id_);
  g_clear_object(&msg_);
}

void Held::resume() {
  if (!msg_) return;
  SoupServerMessage *msg = static_cast<SoupServerMessage *>(g_object_ref(msg_));
  release();
  soup_server_message_unpause(msg);
  g_object_unref(msg);
}

// ---- segments ----------------------------------------------------------------

// Cache first; else the upstream transfer (shared), streamed to the client,
// or, for Range and HEAD requests, answered whole once it is complete.
void Gateway::Impl::get_segment(SoupServerMessage *msg, const std::string &id,
                                const std::string &num) {
  if (!check_id(msg, id)) return;
  int64_t n = 0;
  if (!parse_segment_number(num, n))
    return reply_error(msg, 400, "bad_segment",
                       "segment must be a non-negative integer, got '" + num + "'");
  if (!serve_cached(msg, id, n)) fetch_segment(msg, id, n);
}

// Read from its file in chunks (filebody.cpp), once the file passed its
// SHA-256 check (on a worker, remembered per file identity). A file that
// fails it leaves the cache and the segment is fetched again.
bool Gateway::Impl::serve_cached(SoupServerMessage *msg, const std::string &id, int64_t n) {
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return false;
  std::shared_ptr<Cache> cache = open_cache(id, error);
  SegmentInfo info;
  FilePart part;
  if (!cache || !cache->locate(n, info, part.path)) return false;
  Entity e;
  e.etag = info.etag;
  e.last_modified = info.last_modified;
  e.content_type = info.content_type;
  e.cache_control = immutable_cc(opts);
  part.length = static_cast<uint64_t>(info.size);
  part.sha256 = info.sha256;
  part.segment = n;
  serve_parts(*this, msg, e, {part}, std::move(cache),
              [this, id, n](SoupServerMessage *m, const FilePart &) { fetch_segment(m, id, n); });
  return true;
}

// From the upstream. `msg` may be paused (a cached copy that failed its check).
void Gateway::Impl::fetch_segment(SoupServerMessage *msg, const std::string &id, int64_t n) {
  const std::optional<int64_t> total = known_total(id);
  if (total && n >= *total) {
    reply_error(msg, 404, "not_found",
                "segment " + std::to_string(n) + " of " + id + " does not exist (" +
                    std::to_string(*total) + " segments)");
    soup_server_message_unpause(msg);
    return;
  }
  if (fills.count(std::make_pair(id, n))) count(&Counters::joined_fills);
  Fill *f = ensure_fill(id, n, true);
  SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
  const bool whole_first = soup_message_headers_get_one(req, "Range") ||
                           strcmp(soup_server_message_get_method(msg), "HEAD") == 0;
  if (!whole_first) return f->subscribe(msg);
  auto held = std::make_shared<Held>(msg);
  f->on_finish([held](const Outcome &out, GBytes *b, const Entity &m) {
    if (!held->msg()) return;
    if (out.ok) {
      Entity e = m;
      e.bytes = b;
      reply_entity(held->msg(), e);
    } else {
      reply_error(held->msg(), out.http_status, out.error, out.message, out.retry_after_s);
    }
    held->resume();
  });
}

void Gateway::Impl::get_full(SoupServerMessage *msg, const std::string &id) {
  if (!check_id(msg, id)) return;
  if (serve_joined(msg, id) || serve_joined_file(msg, id)) return;
  start_full(msg, id);
}

// ---- status --------------------------------------------------------------------

// {"videoId", "remote": {videoId, ready, downloading, failed, totalSegments?}
//  (empty when the upstream cannot say), "local", "hasFirstSegment"}; the
// upstream's 404 as a JSON error when the cache holds nothing of the track
// either (an unknown id is not an upstream that is down).
void Gateway::Impl::api_status(SoupServerMessage *msg, const std::string &id) {
  if (!check_id(msg, id)) return;
  auto held = std::make_shared<Held>(msg);
  fetch_status(id, [this, held, id](const Outcome &out, const Status &st) {
    if (!held->msg()) return;
    const std::vector<int64_t> local = local_segments(id);
    if (!out.ok && out.http_status == 404 && local.empty()) {
      reply_error(held->msg(), out.http_status, out.error, out.message, out.retry_after_s);
      held->resume();
      return;
    }
    std::set<int64_t> downloading;
    for (const auto &kv : fills)
      if (kv.first.first == id) downloading.insert(kv.first.second);
    std::string remote = "{}";
    if (out.ok) {
      remote = "{\"videoId\":" + json_str(id) + ",\"ready\":" + json_ints(st.ready) +
               ",\"downloading\":" + json_ints(downloading) +
               ",\"failed\":" + json_ints(failed[id]);
      if (st.total_segments) remote += ",\"totalSegments\":" + std::to_string(*st.total_segments);
      remote += "}";
    }
    const bool first = !local.empty() && local.front() == 0;
    const std::string json = "{\"videoId\":" + json_str(id) + ",\"remote\":" + remote +
                             ",\"local\":" + json_ints(local) +
                             ",\"hasFirstSegment\":" + (first ? "true" : "false") + "}";
    reply_json_etag(held->msg(), json, max_age_cc(opts.status_max_age_s));
    held->resume();
  });
}

// The backend's own status document, with the cached segments added to
// "ready". A track held whole in the cache is answered without the upstream;
// when the upstream fails, what the cache holds is answered if anything.
void Gateway::Impl::plain_status(SoupServerMessage *msg, const std::string &id) {
  if (!check_id(msg, id)) return;
  auto answer = [this](SoupServerMessage *m, const std::vector<int64_t> &ready,
                       std::optional<int64_t> total, const Status *st) {
    const bool complete = total && static_cast<int64_t>(ready.size()) == *total;
    std::string json = "{\"ready\":" + json_ints(ready);
    if (total) json += ",\"totalSegments\":" + std::to_string(*total);
    if (complete) json += ",\"state\":\"complete\"";
    if (st && st->duration) json += ",\"duration\":" + json_double(*st->duration);
    if (st && st->segment_duration)
      json += ",\"segment_duration\":" + json_double(*st->segment_duration);
    if (st && st->first_segment_duration)
      json += ",\"first_segment_duration\":" + json_double(*st->first_segment_duration);
    if (st && !st->mime_type.empty()) json += ",\"mime_type\":" + json_str(st->mime_type);
    json += "}";
    reply_json_etag(m, json,
                    max_age_cc(complete ? opts.complete_status_max_age_s : opts.status_max_age_s));
  };
  std::string dir, error;
  if (cache_dir_of(id, dir)) {
    std::unique_ptr<Cache> cache = open_cache(id, error);
    CachedTrack t;
    if (cache && cache->read_track(t) && t.complete && t.total) {
      std::vector<int64_t> all;
      for (int64_t n = 0; n < *t.total; n++) all.push_back(n);
      return answer(msg, all, t.total, nullptr);
    }
  }
  auto held = std::make_shared<Held>(msg);
  fetch_status(id, [this, held, id, answer](const Outcome &out, const Status &st) {
    if (!held->msg()) return;
    const std::vector<int64_t> local = local_segments(id);
    if (out.ok) {
      answer(held->msg(), merge(st.ready, local), st.total_segments, &st);
    } else if (!local.empty()) {
      answer(held->msg(), local, known_total(id), nullptr);
    } else {
      reply_error(held->msg(), out.http_status, out.error, out.message, out.retry_after_s);
    }
    held->resume();
  });
}

// ---- preload -------------------------------------------------------------------

void Gateway::Impl::api_preload(SoupServerMessage *msg) {
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  GBytes *data = soup_message_body_flatten(body);
  gsize size = 0;
  const char *text = static_cast<const char *>(g_bytes_get_data(data, &size));
  JsonParser *parser = json_parser_new();
  GError *err = nullptr;
  std::string id;
  bool have = false;
  if (size > 0 && size < 64 * 1024 && json_parser_load_from_data(parser, text, size, &err)) {
    JsonNode *root = json_parser_get_root(parser);
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *o = json_node_get_object(root);
      JsonNode *v = json_object_get_member(o, "videoId");
      if (v && JSON_NODE_HOLDS_VALUE(v) && json_node_get_value_type(v) == G_TYPE_STRING) {
        id = json_node_get_string(v);
        have = true;
      }
    }
  }
  g_clear_error(&err);
  g_object_unref(parser);
  g_bytes_unref(data);
  if (!have)
    return reply_error(msg, 400, "bad_request", "expected a JSON body {\"videoId\": \"...\"}");
  if (!check_id(msg, id)) return;
  preload(id);
  reply_json(msg, 200,
             "{\"success\":true,\"message\":\"Preload started\",\"videoId\":" + json_str(id) + "}",
             kNoStore);
}

// ---- the cache -----------------------------------------------------------------

namespace {

// One track folder as JSON: its id, total, completeness, segments (with sizes
// and ages when `detailed`).
std::string track_json(const std::string &dir, const std::string &id, Cache &cache,
                       const std::vector<int64_t> &segments, bool detailed) {
  const int64_t now = g_get_real_time() / G_USEC_PER_SEC;
  uint64_t bytes = 0;
  std::string list = "[";
  for (size_t i = 0; i < segments.size(); i++) {
    g_autofree char *path =
        g_strdup_printf("%s/seg_%" G_GINT64_FORMAT ".bin", dir.c_str(), segments[i]);
    GStatBuf st;
    if (g_stat(path, &st) != 0) continue;
    bytes += static_cast<uint64_t>(st.st_size);
    if (detailed)
      list += std::string(i ? "," : "") + "{\"segment\":" + std::to_string(segments[i]) +
              ",\"size\":" + std::to_string(st.st_size) +
              ",\"ageSeconds\":" + std::to_string(std::max<int64_t>(0, now - st.st_mtime)) + "}";
  }
  list += "]";
  CachedTrack t;
  const bool have_track = cache.read_track(t);
  std::string json = "{\"videoId\":" + json_str(id) +
                     ",\"segmentCount\":" + std::to_string(segments.size()) +
                     ",\"sizeBytes\":" + std::to_string(bytes) +
                     ",\"complete\":" + (have_track && t.complete ? "true" : "false");
  if (have_track && t.total) json += ",\"totalSegments\":" + std::to_string(*t.total);
  if (detailed) json += ",\"segments\":" + list;
  return json + "}";
}

}  // namespace

void Gateway::Impl::api_cache(SoupServerMessage *msg, const std::string *only) {
  if (only) {
    if (!check_id(msg, *only)) return;
    std::string dir, error;
    if (!cache_dir_of(*only, dir))
      return reply_error(msg, 404, "not_found", "nothing cached for " + *only);
    std::unique_ptr<Cache> cache = open_cache(*only, error);
    if (!cache) return reply_error(msg, 500, "cache_error", error);
    return reply_json(msg, 200, track_json(dir, *only, *cache, local_segments(*only), true),
                      kNoStore);
  }
  CacheConfig cfg;
  cfg.dir = opts.cache_dir;
  std::string tracks = "[";
  GDir *d = g_dir_open(opts.cache_dir.c_str(), 0, nullptr);
  bool first = true;
  while (const char *name = d ? g_dir_read_name(d) : nullptr) {
    g_autofree char *idfile = g_build_filename(opts.cache_dir.c_str(), name, kIdFile, nullptr);
    g_autofree char *id = nullptr;
    if (!g_file_get_contents(idfile, &id, nullptr, nullptr) || !valid_video_id(id, opts.id_pattern))
      continue;
    std::string dir, error;
    std::unique_ptr<Cache> cache;
    if (!cache_dir_of(id, dir) || !(cache = open_cache(id, error))) continue;
    tracks += (first ? "" : ",") + track_json(dir, id, *cache, local_segments(id), false);
    first = false;
  }
  if (d) g_dir_close(d);
  tracks += "]";
  const std::string json =
      "{\"cacheDir\":" + json_str(opts.cache_dir) +
      ",\"maxSizeBytes\":" + std::to_string(opts.cache_max_size) +
      ",\"maxAgeSeconds\":" + std::to_string(opts.cache_max_age_s) +
      ",\"sizeBytes\":" + std::to_string(Cache(cfg).size_bytes()) +
      ",\"maxConcurrent\":" + std::to_string(opts.max_concurrent) +
      ",\"maxClientQueueBytes\":" + std::to_string(opts.max_client_queue_bytes) +
      ",\"tracks\":" + tracks + "}";
  reply_json(msg, 200, json, kNoStore);
}

// DELETE /api/segments/cache?maxAge=HOURS: removes the tracks not used for
// that long (and, with --cache-max-size, the least recently used ones above
// it). Tracks in use (a transfer holds their lock) are never removed.
void Gateway::Impl::api_evict(SoupServerMessage *msg, GHashTable *query) {
  if (opts.admin_token.empty())
    return reply_error(msg, 403, "forbidden",
                       "cache administration is disabled (start with --admin-token)");
  if (!bearer_matches(msg, opts.admin_token)) {
    reply_error(msg, 401, "unauthorized", "Authorization: Bearer TOKEN required");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "WWW-Authenticate",
                                 "Bearer");
    return;
  }
  CacheConfig cfg;
  cfg.dir = opts.cache_dir;
  cfg.max_size_bytes = opts.cache_max_size;
  cfg.max_age_s = opts.cache_max_age_s;
  const char *max_age =
      query ? static_cast<const char *>(g_hash_table_lookup(query, "maxAge")) : nullptr;
  if (max_age) {
    char *end = nullptr;
    const double hours = g_ascii_strtod(max_age, &end);
    if (!end || *end || end == max_age || !(hours >= 0) || hours > 1e6)
      return reply_error(msg, 400, "bad_request",
                         std::string("maxAge must be a number of hours, got '") + max_age + "'");
    cfg.max_age_s = std::max<int64_t>(1, static_cast<int64_t>(hours * 3600));
  }
  const int removed = Cache(cfg).evict();
  reply_json(msg, 200,
             "{\"success\":true,\"removedTracks\":" + std::to_string(removed) +
                 ",\"sizeBytes\":" + std::to_string(Cache(cfg).size_bytes()) + "}",
             kNoStore);
}

}  // namespace segdl::gateway
