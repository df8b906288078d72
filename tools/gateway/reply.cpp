// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — writing HTTP answers (see reply.h). */
#include "gateway/reply.h"
#include "server/util.h"

#include <algorithm>
#include <cstring>

namespace segdl::gateway {

namespace {

constexpr const char *kNoStore = "no-store";

void set_body(SoupServerMessage *msg, const char *type, const std::string &body) {
  soup_server_message_set_response(msg, type, SOUP_MEMORY_COPY, body.data(), body.size());
}

// A strong ETag of some bytes: 32 hex digits of their SHA-256, quoted.
std::string etag_of(const void *data, size_t size) {
  g_autofree char *sha =
      g_compute_checksum_for_data(G_CHECKSUM_SHA256, static_cast<const guchar *>(data), size);
  return "\"" + std::string(sha, 32) + "\"";
}

// True when an If-None-Match list names `etag` (or is "*").
bool none_match_hits(const char *header, const std::string &etag) {
  if (!header || etag.empty()) return false;
  g_auto(GStrv) parts = g_strsplit(header, ",", -1);
  for (char **p = parts; *p; p++) {
    std::string tag = g_strstrip(*p);
    if (tag == "*") return true;
    if (g_str_has_prefix(tag.c_str(), "W/")) tag = tag.substr(2);  // weak comparison
    if (tag == etag) return true;
  }
  return false;
}

void set_validators(SoupMessageHeaders *h, const Entity &e) {
  if (!e.etag.empty()) soup_message_headers_replace(h, "ETag", e.etag.c_str());
  if (!e.last_modified.empty())
    soup_message_headers_replace(h, "Last-Modified", e.last_modified.c_str());
  if (!e.cache_control.empty())
    soup_message_headers_replace(h, "Cache-Control", e.cache_control.c_str());
}

// The conditional part of reply_entity: true when a 304 was sent.
bool answer_not_modified(SoupServerMessage *msg, const Entity &e) {
  SoupMessageHeaders *req = soup_server_message_get_request_headers(msg);
  const char *inm = soup_message_headers_get_one(req, "If-None-Match");
  const char *ims = soup_message_headers_get_one(req, "If-Modified-Since");
  bool hit = false;
  if (inm)
    hit = none_match_hits(inm, e.etag);
  else if (ims && !e.last_modified.empty())
    hit = e.last_modified == ims;
  if (!hit) return false;
  set_validators(soup_server_message_get_response_headers(msg), e);
  soup_server_message_set_status(msg, SOUP_STATUS_NOT_MODIFIED, nullptr);
  return true;
}

// If-Range: the range applies only when it names the current entity.
bool if_range_allows(SoupServerMessage *msg, const Entity &e) {
  const char *ir =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "If-Range");
  if (!ir) return true;
  return (!e.etag.empty() && e.etag == ir) || (!e.last_modified.empty() && e.last_modified == ir);
}

}  // namespace

std::string json_str(const std::string &s) {
  return "\"" + server::detail::json_escape(s) + "\"";
}

void reply_json(SoupServerMessage *msg, int status, const std::string &json,
                const std::string &cache_control) {
  soup_server_message_set_status(msg, static_cast<guint>(status), nullptr);
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Cache-Control", cache_control.c_str());
  set_body(msg, "application/json", json);
}

void reply_json_etag(SoupServerMessage *msg, const std::string &json,
                     const std::string &cache_control) {
  const std::string etag = etag_of(json.data(), json.size());
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "ETag", etag.c_str());
  soup_message_headers_replace(h, "Cache-Control", cache_control.c_str());
  const char *inm =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "If-None-Match");
  if (none_match_hits(inm, etag)) {
    soup_server_message_set_status(msg, SOUP_STATUS_NOT_MODIFIED, nullptr);
    return;
  }
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  set_body(msg, "application/json", json);
}

void reply_error(SoupServerMessage *msg, int status, const std::string &error,
                 const std::string &message, int retry_after_s) {
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  // Whatever was prepared for a success goes.
  soup_message_headers_remove(h, "ETag");
  soup_message_headers_remove(h, "Last-Modified");
  soup_message_headers_remove(h, "Content-Range");
  if (retry_after_s >= 0)
    soup_message_headers_replace(h, "Retry-After", std::to_string(retry_after_s).c_str());
  reply_json(msg, status,
             "{\"error\":" + json_str(error) + ",\"message\":" + json_str(message) + "}", kNoStore);
}

namespace {

// Appends bytes [first, last] of the parts to the body (slices, no copy).
void append_range(SoupMessageBody *body, const std::vector<GBytes *> &parts, uint64_t first,
                  uint64_t last) {
  uint64_t offset = 0;
  for (GBytes *p : parts) {
    const uint64_t size = g_bytes_get_size(p);
    const uint64_t lo = std::max(first, offset), hi = std::min(last + 1, offset + size);
    if (lo < hi) {
      GBytes *slice = g_bytes_new_from_bytes(p, lo - offset, hi - lo);
      soup_message_body_append_bytes(body, slice);
      g_bytes_unref(slice);
    }
    offset += size;
  }
}

}  // namespace

bool reply_entity_head(SoupServerMessage *msg, const Entity &e, uint64_t size, uint64_t &first,
                       uint64_t &last) {
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Accept-Ranges", "bytes");
  if (answer_not_modified(msg, e)) return false;
  const char *range =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Range");
  bool satisfiable = false;
  first = 0;
  last = size ? size - 1 : 0;
  const bool ranged = range && if_range_allows(msg, e) &&
                      server::detail::parse_range(range, size, satisfiable, first, last);
  if (ranged && !satisfiable) {
    const std::string cr = "bytes */" + std::to_string(size);
    reply_error(msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE, "range_not_satisfiable",
                "the body has " + std::to_string(size) + " bytes; asked: " + range);
    soup_message_headers_replace(h, "Content-Range", cr.c_str());
    return false;
  }
  set_validators(h, e);
  const char *type = e.content_type.empty() ? "application/octet-stream" : e.content_type.c_str();
  soup_message_headers_replace(h, "Content-Type", type);
  if (ranged) {
    const std::string cr =
        "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size);
    soup_message_headers_replace(h, "Content-Range", cr.c_str());
  }
  soup_server_message_set_status(msg, ranged ? SOUP_STATUS_PARTIAL_CONTENT : SOUP_STATUS_OK,
                                 nullptr);
  SoupMessageBody *body = soup_server_message_get_response_body(msg);
  // Not accumulated: libsoup would otherwise apply a Range we chose to
  // ignore (If-Range) to a 200 itself.
  soup_message_body_set_accumulate(body, FALSE);
  soup_message_headers_set_content_length(h, static_cast<goffset>(size ? last - first + 1 : 0));
  if (size) return true;
  soup_message_body_complete(body);
  return false;
}

void reply_entity(SoupServerMessage *msg, const Entity &e) {
  const std::vector<GBytes *> parts = e.more.empty() ? std::vector<GBytes *>{e.bytes} : e.more;
  uint64_t size = 0;
  for (GBytes *p : parts) size += g_bytes_get_size(p);
  uint64_t first = 0, last = 0;
  if (!reply_entity_head(msg, e, size, first, last)) return;
  SoupMessageBody *body = soup_server_message_get_response_body(msg);
  append_range(body, parts, first, last);
  soup_message_body_complete(body);
}

std::string http_date(int64_t unix_seconds) {
  GDateTime *dt = g_date_time_new_from_unix_utc(unix_seconds);
  if (!dt) return "";
  char *s = soup_date_time_to_string(dt, SOUP_DATE_HTTP);
  std::string out = s ? s : "";
  g_free(s);
  g_date_time_unref(dt);
  return out;
}

std::string http_date_now() {
  return http_date(g_get_real_time() / G_USEC_PER_SEC);
}

bool parse_segment_number(const std::string &s, int64_t &out) {
  if (s.empty() || s.size() > 9) return false;
  if (s.find_first_not_of("0123456789") != std::string::npos) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  out = g_ascii_strtoll(s.c_str(), nullptr, 10);
  return true;
}

bool bearer_matches(SoupServerMessage *msg, const std::string &token) {
  const char *auth =
      soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
  if (!auth || token.empty() || g_ascii_strncasecmp(auth, "Bearer ", 7) != 0) return false;
  const char *given = auth + 7;
  if (strlen(given) != token.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < token.size(); i++) diff |= static_cast<unsigned char>(given[i] ^ token[i]);
  return diff == 0;
}

}  // namespace segdl::gateway
