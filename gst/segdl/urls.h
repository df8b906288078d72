// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — URLs of the backend protocol and the segdl:// URI scheme.
 *
 * The video id is always percent-encoded (every byte outside RFC 3986's
 * unreserved set), so no id can change the path or add query parameters.
 */
#pragma once

#include <cstdint>
#include <string>

namespace segdl {

// Percent-encodes every byte outside [A-Za-z0-9-._~].
std::string percent_encode(const std::string &s);

// Strips trailing '/' from base. status: {base}/status?v={id}
std::string status_url(const std::string &backend, const std::string &video_id);
// {base}/stream?v={id}&segment={n}
std::string segment_url(const std::string &backend, const std::string &video_id, int64_t n);
// {base}/stream?v={id}   (the deployed backend's full-track endpoint)
std::string full_track_url(const std::string &backend, const std::string &video_id);

// True when `url` is an absolute http:// or https:// URL with a host.
bool is_http_url(const std::string &url);

// segdl://host[:port][/base/path]/VIDEO_ID  -> http://host[:port][/base/path], VIDEO_ID
// segdls://...                              -> https://...
// The last path component is percent-decoded to give the id; it must not be
// empty. Query and fragment are not allowed. Returns false with `error` set.
bool parse_segdl_uri(const std::string &uri, std::string &backend, std::string &video_id,
                     std::string &error);
// The inverse: the canonical segdl(s):// URI for a backend and id.
// Returns "" when the pair has no segdl URI: a backend that is not http(s)://
// host[:port][/path] without user information, query or fragment, or an
// empty id or one with a NUL byte.
std::string make_segdl_uri(const std::string &backend, const std::string &video_id);

}  // namespace segdl
