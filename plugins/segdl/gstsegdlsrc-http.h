// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's HTTP properties, the ones souphttpsrc users reach for:
 * proxy, proxy-id, proxy-pw, extra-headers, cookies, user-id, user-pw,
 * ssl-ca-file, tls-database, http-log-level. They apply to every request
 * (status, segments, fallback) through segdl::HttpOptions. And
 * tail-prefetch: the extra Range request for an m4a segment's moov, asked
 * beside its body (segdl::DownloaderConfig::tail_prefetch_bytes).
 */
#pragma once

#include "segdl/fetcher.h"

#include <gst/gst.h>

#include <memory>
#include <string>
#include <vector>

// The property values (part of the element's Settings).
struct GstSegDlSrcHttpSettings {
  std::string proxy, proxy_id, proxy_pw;
  std::shared_ptr<GstStructure> extra_headers;  // null = none
  std::vector<std::string> cookies;
  std::string user_id, user_pw;
  std::string ssl_ca_file;
  std::shared_ptr<GTlsDatabase> tls_database;
  int log_level = 2;           // SOUP_LOGGER_LOG_HEADERS, souphttpsrc's default
  int64_t tail_prefetch = -1;  // bytes; -1 = from the segment durations, 0 = never
};

void gst_seg_dl_src_install_http_properties(GObjectClass *klass);
// False for a property id that is not one of these.
bool gst_seg_dl_src_set_http_property(GstSegDlSrcHttpSettings &s, guint prop_id,
                                      const GValue *value);
bool gst_seg_dl_src_get_http_property(const GstSegDlSrcHttpSettings &s, guint prop_id,
                                      GValue *value);

// The suffix asked beside the body of the segment read next: tail-prefetch,
// or `automatic` (from the segment durations) when it is -1.
int64_t gst_seg_dl_src_tail_prefetch(const GstSegDlSrcHttpSettings &s, int64_t automatic);

// The options for the Fetcher. The user:password@ of `backend` and
// `fallback` (either may be empty) move into the options' per-origin
// credentials: the URLs come back without them, so that no message, error
// or log line built from them can show a password.
segdl::HttpOptions gst_seg_dl_src_http_options(const GstSegDlSrcHttpSettings &s,
                                               std::string &backend, std::string &fallback);
