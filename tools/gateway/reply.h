// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — writing HTTP answers: JSON bodies, JSON errors, whole or
 * partial entities with their caching headers. Gateway thread only (every
 * function touches a SoupServerMessage).
 */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>

#include <cstdint>
#include <string>
#include <vector>

namespace segdl::gateway {

// "text" with quotes, escaped for JSON.
std::string json_str(const std::string &s);

// A JSON answer. `cache_control` is sent as is.
void reply_json(SoupServerMessage *msg, int status, const std::string &json,
                const std::string &cache_control);
// A 200 JSON answer with a strong ETag of its body; 304 when If-None-Match has it.
void reply_json_etag(SoupServerMessage *msg, const std::string &json,
                     const std::string &cache_control);
// {"error": ERROR, "message": MESSAGE}, never cacheable. Retry-After when >= 0.
void reply_error(SoupServerMessage *msg, int status, const std::string &error,
                 const std::string &message, int retry_after_s = -1);

// A segment (or any immutable body) and its validators.
struct Entity {
  GBytes *bytes = nullptr;     // borrowed
  std::vector<GBytes *> more;  // borrowed; when set, the body is these parts in order instead
  std::string etag;            // strong, with quotes; empty = none
  std::string last_modified;
  std::string content_type;
  std::string cache_control;
};
// Answers GET/HEAD for `e`: 304 on a matching If-None-Match (or, without it,
// an If-Modified-Since equal to Last-Modified), 206 for one satisfiable byte
// range (suffix ranges too; If-Range honoured), 416 with "bytes */SIZE" for an
// unsatisfiable one, 200 otherwise. Accept-Ranges: bytes on all of them.
void reply_entity(SoupServerMessage *msg, const Entity &e);
// reply_entity()'s head for an entity of `size` bytes whose body the caller
// streams (e.bytes and e.more unused): true with the bytes [first, last] to
// send (200 or 206 and Content-Length set, the body not accumulated); false
// when the answer is complete (304, 416, an empty body).
bool reply_entity_head(SoupServerMessage *msg, const Entity &e, uint64_t size, uint64_t &first,
                       uint64_t &last);

// Now as an HTTP date ("Mon, 30 Nov 2026 07:00:00 GMT").
std::string http_date_now();
// A file time as an HTTP date.
std::string http_date(int64_t unix_seconds);

// "0", "17": a non-negative decimal integer below 10^9 with no sign, space or
// leading zero. False otherwise.
bool parse_segment_number(const std::string &s, int64_t &out);

// The "Bearer TOKEN" check, in constant time for equal lengths.
bool bearer_matches(SoupServerMessage *msg, const std::string &token);

}  // namespace segdl::gateway
