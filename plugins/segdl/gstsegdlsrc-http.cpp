// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's HTTP properties (see gstsegdlsrc-http.h). */
#include "gstsegdlsrc-http.h"

#include "segdl/log.h"

#include <gio/gio.h>

namespace {

// After the element's own ids (gstsegdlsrc-private.h), with room between.
enum {
  PROP_PROXY = 1000,
  PROP_PROXY_ID,
  PROP_PROXY_PW,
  PROP_EXTRA_HEADERS,
  PROP_COOKIES,
  PROP_USER_ID,
  PROP_USER_PW,
  PROP_SSL_CA_FILE,
  PROP_TLS_DATABASE,
  PROP_HTTP_LOG_LEVEL,
  PROP_TAIL_PREFETCH,
};

// SoupLoggerLogLevel's values, registered here: the plugin does not link
// libsoup (see segdl/httpmodule.h).
GType log_level_get_type() {
  static GType type = 0;
  static const GEnumValue values[] = {{0, "No log", "none"},
                                      {1, "Request and status lines", "minimal"},
                                      {2, "... and headers", "headers"},
                                      {3, "... and bodies", "body"},
                                      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstSegDlHttpLogLevel", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

std::string string_of(const GValue *value) {
  const char *v = g_value_get_string(value);
  return v ? v : "";
}

// One header value in text: strings as they are, anything else as GLib
// transforms or GStreamer serializes it.
std::string header_text(const GValue *v) {
  if (G_VALUE_HOLDS_STRING(v)) return string_of(v);
  GValue text = G_VALUE_INIT;
  g_value_init(&text, G_TYPE_STRING);
  std::string out;
  if (g_value_transform(v, &text)) {
    out = string_of(&text);
  } else {
    g_autofree char *s = gst_value_serialize(v);
    out = s ? s : "";
  }
  g_value_unset(&text);
  return out;
}

// extra-headers: a field per header; an array or list value sends the
// header once per element (souphttpsrc's rule).
void add_headers(const GstStructure *st, segdl::HttpOptions &o) {
  for (int i = 0; i < gst_structure_n_fields(st); i++) {
    const char *name = gst_structure_nth_field_name(st, guint(i));
    const GValue *v = gst_structure_get_value(st, name);
    if (GST_VALUE_HOLDS_ARRAY(v)) {
      for (guint k = 0; k < gst_value_array_get_size(v); k++)
        o.extra_headers.emplace_back(name, header_text(gst_value_array_get_value(v, k)));
    } else if (GST_VALUE_HOLDS_LIST(v)) {
      for (guint k = 0; k < gst_value_list_get_size(v); k++)
        o.extra_headers.emplace_back(name, header_text(gst_value_list_get_value(v, k)));
    } else {
      o.extra_headers.emplace_back(name, header_text(v));
    }
  }
}

}  // namespace

void gst_seg_dl_src_install_http_properties(GObjectClass *klass) {
  const auto rw = GParamFlags(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      klass, PROP_PROXY,
      g_param_spec_string("proxy", "Proxy",
                          "HTTP proxy for every request, http://host:port (NULL = the system's "
                          "proxy settings)",
                          nullptr, rw));
  g_object_class_install_property(
      klass, PROP_PROXY_ID,
      g_param_spec_string("proxy-id", "Proxy user id", "User name for the proxy's authentication",
                          nullptr, rw));
  g_object_class_install_property(
      klass, PROP_PROXY_PW,
      g_param_spec_string("proxy-pw", "Proxy password",
                          "Password for the proxy's authentication (never logged)", nullptr, rw));
  g_object_class_install_property(
      klass, PROP_EXTRA_HEADERS,
      g_param_spec_boxed("extra-headers", "Extra headers",
                         "Headers sent with every request: a field per header (an array or list "
                         "value sends the header once per element)",
                         GST_TYPE_STRUCTURE, rw));
  g_object_class_install_property(
      klass, PROP_COOKIES,
      g_param_spec_boxed("cookies", "Cookies",
                         "Cookies sent with every request, each \"name=value\" (one Cookie "
                         "header)",
                         G_TYPE_STRV, rw));
  g_object_class_install_property(
      klass, PROP_USER_ID,
      g_param_spec_string("user-id", "User id",
                          "User name for the backend's authentication (Basic or Digest); a "
                          "user:password@ in backend-url or fallback-uri wins for its host",
                          nullptr, rw));
  g_object_class_install_property(
      klass, PROP_USER_PW,
      g_param_spec_string("user-pw", "User password",
                          "Password for the backend's authentication (never logged)", nullptr, rw));
  g_object_class_install_property(
      klass, PROP_SSL_CA_FILE,
      g_param_spec_string("ssl-ca-file", "SSL CA file",
                          "PEM file of the certificate authorities to trust for HTTPS, instead "
                          "of the system's (NULL = the system's)",
                          nullptr, rw));
  g_object_class_install_property(
      klass, PROP_TLS_DATABASE,
      g_param_spec_object("tls-database", "TLS database",
                          "GTlsDatabase that verifies HTTPS certificates (wins over "
                          "ssl-ca-file; NULL = the system's)",
                          G_TYPE_TLS_DATABASE, rw));
  g_object_class_install_property(
      klass, PROP_HTTP_LOG_LEVEL,
      g_param_spec_enum("http-log-level", "HTTP log level",
                        "How much of each request libsoup logs to the segdl-http debug category "
                        "at level LOG (GST_DEBUG=segdl-http:6)",
                        log_level_get_type(), 2, rw));
  /**
   * GstSegDlSrc:tail-prefetch:
   * An m4a segment cut by ffmpeg has its moov (the index of its frames)
   * after its audio. To play it while it arrives, the last tail-prefetch
   * bytes of the segment read next (segment 0, a seek's target) are asked
   * with a suffix Range ("Range: bytes=-N") beside its body, while the
   * track may be such an m4a: first audio in one round trip. -1 (the
   * default): 400 bytes per second of the longer nominal segment + 4 KiB
   * (16096 with the default durations). 0: no such request (a track that
   * is not m4a then costs no extra request; an m4a segment's moov is asked
   * once its head shows where it begins, one round trip later). Only with
   * join=timeline; never again once a server ignored a Range.
   */
  g_object_class_install_property(
      klass, PROP_TAIL_PREFETCH,
      g_param_spec_int64("tail-prefetch", "Tail prefetch",
                         "Bytes of the end of the segment read next asked beside its body "
                         "(an m4a's moov: first audio in one round trip); -1 = from the segment "
                         "durations, 0 = never",
                         -1, G_MAXINT32, -1, rw));
  gst_type_mark_as_plugin_api(log_level_get_type(), GstPluginAPIFlags(0));
}

bool gst_seg_dl_src_set_http_property(GstSegDlSrcHttpSettings &s, guint prop_id,
                                      const GValue *value) {
  switch (prop_id) {
    case PROP_PROXY:
      s.proxy = string_of(value);
      return true;
    case PROP_PROXY_ID:
      s.proxy_id = string_of(value);
      return true;
    case PROP_PROXY_PW:
      s.proxy_pw = string_of(value);
      return true;
    case PROP_EXTRA_HEADERS: {
      const GstStructure *st = gst_value_get_structure(value);
      if (st)
        s.extra_headers.reset(gst_structure_copy(st), gst_structure_free);
      else
        s.extra_headers.reset();
      return true;
    }
    case PROP_COOKIES: {
      s.cookies.clear();
      auto *strv = static_cast<char **>(g_value_get_boxed(value));
      for (char **c = strv; c && *c; c++) s.cookies.emplace_back(*c);
      return true;
    }
    case PROP_USER_ID:
      s.user_id = string_of(value);
      return true;
    case PROP_USER_PW:
      s.user_pw = string_of(value);
      return true;
    case PROP_SSL_CA_FILE:
      s.ssl_ca_file = string_of(value);
      return true;
    case PROP_TLS_DATABASE:
      s.tls_database = segdl::share_tls_database(G_TLS_DATABASE(g_value_get_object(value)));
      return true;
    case PROP_HTTP_LOG_LEVEL:
      s.log_level = g_value_get_enum(value);
      return true;
    case PROP_TAIL_PREFETCH:
      s.tail_prefetch = g_value_get_int64(value);
      return true;
    default:
      return false;
  }
}

static void set_string(GValue *value, const std::string &v) {
  g_value_set_string(value, v.empty() ? nullptr : v.c_str());
}

bool gst_seg_dl_src_get_http_property(const GstSegDlSrcHttpSettings &s, guint prop_id,
                                      GValue *value) {
  switch (prop_id) {
    case PROP_PROXY:
      set_string(value, s.proxy);
      return true;
    case PROP_PROXY_ID:
      set_string(value, s.proxy_id);
      return true;
    case PROP_PROXY_PW:
      set_string(value, s.proxy_pw);
      return true;
    case PROP_EXTRA_HEADERS:
      gst_value_set_structure(value, s.extra_headers.get());
      return true;
    case PROP_COOKIES: {
      GStrvBuilder *b = g_strv_builder_new();
      for (const std::string &c : s.cookies) g_strv_builder_add(b, c.c_str());
      g_value_take_boxed(value, s.cookies.empty() ? nullptr : g_strv_builder_end(b));
      g_strv_builder_unref(b);
      return true;
    }
    case PROP_USER_ID:
      set_string(value, s.user_id);
      return true;
    case PROP_USER_PW:
      set_string(value, s.user_pw);
      return true;
    case PROP_SSL_CA_FILE:
      set_string(value, s.ssl_ca_file);
      return true;
    case PROP_TLS_DATABASE:
      g_value_set_object(value, s.tls_database.get());
      return true;
    case PROP_HTTP_LOG_LEVEL:
      g_value_set_enum(value, s.log_level);
      return true;
    case PROP_TAIL_PREFETCH:
      g_value_set_int64(value, s.tail_prefetch);
      return true;
    default:
      return false;
  }
}

int64_t gst_seg_dl_src_tail_prefetch(const GstSegDlSrcHttpSettings &s, int64_t automatic) {
  return s.tail_prefetch >= 0 ? s.tail_prefetch : automatic;
}

segdl::HttpOptions gst_seg_dl_src_http_options(const GstSegDlSrcHttpSettings &s,
                                               std::string &backend, std::string &fallback) {
  segdl::HttpOptions o;
  o.proxy = s.proxy;
  o.proxy_id = s.proxy_id;
  o.proxy_pw = s.proxy_pw;
  if (s.extra_headers) add_headers(s.extra_headers.get(), o);
  o.cookies = s.cookies;
  o.user_id = s.user_id;
  o.user_pw = s.user_pw;
  o.ssl_ca_file = s.ssl_ca_file;
  o.tls_database = s.tls_database;
  o.log_level = s.log_level;
  for (std::string *url : {&backend, &fallback}) {
    segdl::OriginCredentials creds;
    if (segdl::take_url_credentials(*url, creds)) o.origin_credentials.push_back(creds);
  }
  return o;
}
