// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — debug categories and URL redaction (see log.h). */
#include "segdl/log.h"

namespace segdl {

namespace {

GstDebugCategory *make_category(const char *name, const char *description) {
  // GStreamer returns the existing category of that name: the plugin and the
  // HTTP module (each with a copy of this file) share one.
  return _gst_debug_category_new(name, 0, description);
}

}  // namespace

GstDebugCategory *engine_debug_category() {
  static GstDebugCategory *cat =
      make_category("segdl-engine", "segdl download engine: status, scheduling, retries");
  return cat;
}

GstDebugCategory *http_debug_category() {
  static GstDebugCategory *cat =
      make_category("segdl-http", "segdl HTTP client: requests, responses, headers at LOG");
  return cat;
}

GstDebugCategory *cache_debug_category() {
  static GstDebugCategory *cat =
      make_category("segdl-cache", "segdl disk cache: hits, misses, writes, eviction");
  return cat;
}

// Here, not in httpmodule.cpp: the HTTP module logs it too.
const char *fetch_error_name(FetchError e) {
  switch (e) {
    case FetchError::None:
      return "none";
    case FetchError::Connect:
      return "connection failed";
    case FetchError::Timeout:
      return "timed out";
    case FetchError::Io:
      return "transfer broken";
    case FetchError::Tls:
      return "TLS failure";
    case FetchError::Other:
      return "error";
  }
  return "error";
}

std::string redact_url(const std::string &url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  size_t host_start = scheme_end + 3;
  size_t authority_end = url.find_first_of("/?#", host_start);
  if (authority_end == std::string::npos) authority_end = url.size();
  size_t at = url.rfind('@', authority_end == 0 ? 0 : authority_end - 1);
  if (at == std::string::npos || at < host_start) return url;
  size_t colon = url.find(':', host_start);
  if (colon == std::string::npos || colon > at) return url;  // a user without a password
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

std::string url_origin(const std::string &url) {
  g_autoptr(GUri) uri = g_uri_parse(url.c_str(), G_URI_FLAGS_NONE, nullptr);
  if (!uri || !g_uri_get_scheme(uri) || !g_uri_get_host(uri)) return {};
  int port = g_uri_get_port(uri);
  if (port < 0) port = g_ascii_strcasecmp(g_uri_get_scheme(uri), "https") == 0 ? 443 : 80;
  g_autofree char *scheme = g_ascii_strdown(g_uri_get_scheme(uri), -1);
  g_autofree char *host = g_ascii_strdown(g_uri_get_host(uri), -1);
  g_autofree char *origin = g_strdup_printf("%s://%s:%d", scheme, host, port);
  return origin;
}

bool take_url_credentials(std::string &url, OriginCredentials &creds) {
  g_autoptr(GUri) uri =
      g_uri_parse(url.c_str(), GUriFlags(G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED), nullptr);
  if (!uri || !g_uri_get_user(uri)) return false;
  g_autofree char *user = g_uri_unescape_string(g_uri_get_user(uri), nullptr);
  g_autofree char *password =
      g_uri_get_password(uri) ? g_uri_unescape_string(g_uri_get_password(uri), nullptr) : nullptr;
  g_autofree char *bare = g_uri_join(G_URI_FLAGS_ENCODED, g_uri_get_scheme(uri), nullptr,
                                     g_uri_get_host(uri), g_uri_get_port(uri), g_uri_get_path(uri),
                                     g_uri_get_query(uri), g_uri_get_fragment(uri));
  if (!user || !bare) return false;
  creds.user = user;
  creds.password = password ? password : "";
  url = bare;
  creds.origin = url_origin(url);
  return true;
}

}  // namespace segdl
