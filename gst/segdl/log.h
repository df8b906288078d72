// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — debug logging of the core and the HTTP module.
 *
 * The core is plain C++ without a GstElement, but it links libgstreamer for
 * its debug API: its lines go to GStreamer debug categories, so GST_DEBUG
 * controls them like any element's (docs/element.md, "Debugging"):
 *   segdl-engine  the download engine: status, scheduling, retries
 *   segdl-http    the HTTP client: one line per request, headers at LOG
 *   segdl-cache   the disk cache: hits, misses, writes, eviction
 * The element's own category is segdlsrc. Nothing is printed unless
 * GST_DEBUG asks; before gst_init() the macros do nothing.
 */
#pragma once

#include "segdl/fetcher.h"

#include <gst/gst.h>

#include <string>

namespace segdl {

// The categories, made on first use (safe from any thread).
GstDebugCategory *engine_debug_category();
GstDebugCategory *http_debug_category();
GstDebugCategory *cache_debug_category();

// `url` with the password of its user:password@ replaced by "***" (the user
// name is kept); anything else unchanged. For every URL put in a log line,
// message or error.
std::string redact_url(const std::string &url);

// "scheme://host:port" of an http(s) URL, the default port filled in;
// empty if it cannot be parsed.
std::string url_origin(const std::string &url);

// Moves the user:password@ of `url` into `creds` (origin filled in), leaving
// `url` without it. False, with `url` unchanged, when it has no userinfo.
bool take_url_credentials(std::string &url, OriginCredentials &creds);

}  // namespace segdl

#define SEGDL_ENGINE_LOG(level, ...) \
  GST_CAT_LEVEL_LOG(segdl::engine_debug_category(), level, nullptr, __VA_ARGS__)
#define SEGDL_HTTP_LOG(level, ...) \
  GST_CAT_LEVEL_LOG(segdl::http_debug_category(), level, nullptr, __VA_ARGS__)
#define SEGDL_CACHE_LOG(level, ...) \
  GST_CAT_LEVEL_LOG(segdl::cache_debug_category(), level, nullptr, __VA_ARGS__)
