// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — what browsers need: CORS headers on every answer (and the
 * OPTIONS preflight), the web player page at / (built into the program as a
 * GResource, tools/gateway/web/), and /listen/ID (listen.cpp).
 */
#include "gateway/fill.h"
extern "C" {
#include "segdl-gateway-web.h"  // generated from web/web.gresource.xml
}

#include <gio/gio.h>

#include <cstring>

namespace segdl::gateway {

namespace {

constexpr const char *kAllowMethods = "GET, HEAD, POST, DELETE, OPTIONS";
constexpr const char *kAllowHeaders =
    "Authorization, Content-Type, Range, If-None-Match, If-Modified-Since, If-Range";
constexpr const char *kExposeHeaders =
    "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Retry-After";

void serve_resource(SoupServerMessage *msg, const char *name, const char *type) {
  GError *err = nullptr;
  GBytes *page = g_resource_lookup_data(segdl_gateway_web_get_resource(), name,
                                        G_RESOURCE_LOOKUP_FLAGS_NONE, &err);
  if (!page) {
    reply_error(msg, 500, "internal_error",
                std::string("the web page is missing: ") + (err ? err->message : name));
    g_clear_error(&err);
    return;
  }
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Cache-Control", "no-cache");
  soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
  soup_server_message_set_status(msg, SOUP_STATUS_OK, nullptr);
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(page, &size));
  soup_server_message_set_response(msg, type, SOUP_MEMORY_COPY, data, size);
  g_bytes_unref(page);
}

}  // namespace

bool Gateway::Impl::web_route(SoupServerMessage *msg, const char *path,
                              const std::vector<std::string> &parts, const std::string &method) {
  SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
  soup_message_headers_replace(h, "Access-Control-Allow-Origin", "*");
  soup_message_headers_replace(h, "Access-Control-Expose-Headers", kExposeHeaders);
  if (method == "OPTIONS") {  // a CORS preflight (or a plain OPTIONS): what may be asked
    soup_message_headers_replace(h, "Access-Control-Allow-Methods", kAllowMethods);
    soup_message_headers_replace(h, "Access-Control-Allow-Headers", kAllowHeaders);
    soup_message_headers_replace(h, "Access-Control-Max-Age", "86400");
    soup_message_headers_replace(h, "Allow", kAllowMethods);
    soup_server_message_set_status(msg, SOUP_STATUS_NO_CONTENT, nullptr);
    return true;
  }
  const bool read = method == "GET" || method == "HEAD";
  const bool page = parts.size() == 1 && (parts[0].empty() || parts[0] == "index.html");
  const bool listen = parts.size() >= 2 && parts[0] == "listen";
  if (!page && !listen) return false;
  if (!read) {
    reply_error(msg, 405, "method_not_allowed", method + " " + path);
    return true;
  }
  if (page) {
    serve_resource(msg, "/org/segdl/gateway/index.html", "text/html; charset=utf-8");
    return true;
  }
  if (parts.size() > 2) {
    reply_error(msg, 404, "not_found", std::string("no such endpoint: ") + path);
    return true;
  }
  listen_track(msg, parts[1]);
  return true;
}

}  // namespace segdl::gateway
