// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the HTTP seam.
 *
 * The download engine talks to the network only through Fetcher. The real
 * implementation (soupfetcher.cpp, libsoup 3) lives in a module loaded at run
 * time (see httpmodule.h); tests may substitute a fake.
 *
 * Threading: a Fetcher belongs to the thread that created it. It is created,
 * used and destroyed on that thread, with that thread's GMainContext pushed as
 * thread-default, and every listener callback runs there too.
 */
#pragma once

#include <gio/gio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace segdl {

// Credentials for one origin ("scheme://host:port"), taken out of a URL's
// user:password@ so that the URL can be shown.
struct OriginCredentials {
  std::string origin;
  std::string user;
  std::string password;
};

// What souphttpsrc users expect to set on every request (the element's HTTP
// properties). Applied to every request of a Fetcher.
struct HttpOptions {
  std::string proxy;  // http://host:port (userinfo allowed); empty = the system's proxy settings
  std::string proxy_id, proxy_pw;  // proxy credentials (Basic or Digest)
  std::vector<std::pair<std::string, std::string>> extra_headers;  // sent as they are
  std::vector<std::string> cookies;                                // "name=value", one Cookie
  std::string user_id, user_pw;  // server credentials (for any origin without its own)
  std::vector<OriginCredentials> origin_credentials;  // from user:pw@ of the URLs, per origin
  std::string ssl_ca_file;  // PEM file of the CAs to trust instead of the system's
  std::shared_ptr<GTlsDatabase> tls_database;  // wins over ssl_ca_file; null = none
  int log_level = 0;  // SoupLoggerLogLevel: 0 none, 1 minimal, 2 headers, 3 body
};

// Shares a GTlsDatabase (one reference held by the returned pointer).
inline std::shared_ptr<GTlsDatabase> share_tls_database(GTlsDatabase *db) {
  if (!db) return nullptr;
  g_object_ref(db);
  return std::shared_ptr<GTlsDatabase>(db, [](GTlsDatabase *d) { g_object_unref(d); });
}

struct FetcherConfig {
  int max_connections = 8;         // per host and in total; above max-concurrent + 1
  unsigned timeout_s = 15;         // seconds without progress before a request fails (0 = none)
  unsigned request_timeout_s = 0;  // seconds a whole request may take (0 = no limit)
  std::string user_agent;          // empty = library default
  bool ssl_strict = true;          // verify TLS certificates
  HttpOptions http;
};

struct FetchRequest {
  std::string url;
  int64_t range_start = 0;  // > 0 sends "Range: bytes=N-"; < 0 "bytes=-N" (the last N bytes)
};

// What the response head said.
struct FetchResponse {
  int http_status = 0;
  std::string reason;
  int64_t content_length = -1;  // of this response body; -1 if unknown
  int64_t range_start = -1;     // first byte of a 206 body (Content-Range); -1 otherwise
  int64_t range_total = -1;     // total size from Content-Range; -1 if unknown
  int retry_after_s = -1;       // Retry-After in seconds; -1 if absent
  std::string content_type;
  std::string content_encoding;  // Content-Encoding, empty if absent
  bool length_known = false;     // Content-Length, or chunked: the body's end is known
  std::string etag;              // ETag, empty if absent
  std::string last_modified;     // Last-Modified, empty if absent
};

enum class FetchError {
  None,
  Connect,  // could not resolve or connect
  Timeout,  // no progress for timeout_s, or longer than request_timeout_s
  Io,       // broken transfer: reset, body shorter than announced, ...
  Tls,      // certificate or handshake failure
  Other,
};

const char *fetch_error_name(FetchError e);

// Receives the events of one transfer, in this order: on_response once (not
// for a transfer that failed before a response), on_data zero or more times,
// on_done exactly once. None is called after Fetcher::cancel() for that id.
class FetchListener {
 public:
  virtual ~FetchListener() = default;
  virtual void on_response(const FetchResponse &resp) = 0;
  // `chunk` is borrowed: g_bytes_ref() it to keep it.
  virtual void on_data(GBytes *chunk) = 0;
  virtual void on_done(FetchError error, const std::string &message) = 0;
};

class Fetcher {
 public:
  virtual ~Fetcher() = default;
  // Starts a transfer; `listener` must outlive it (until on_done or cancel).
  // Returns an id, never 0.
  virtual uint64_t start(const FetchRequest &req, FetchListener *listener) = 0;
  // Stops a transfer; no callback for it follows. Unknown ids are ignored.
  virtual void cancel(uint64_t id) = 0;
};

}  // namespace segdl
