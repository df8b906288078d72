// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the music app's segment API in front of a segdl backend.
 *
 *   segdl-gateway --upstream http://127.0.0.1:8080 --cache-dir /var/cache/segdl \
 *                 [--fallback-upstream URL] [--listen 127.0.0.1:8090] [--max-concurrent 4]
 *                 [--cache-max-size 2G] [--cache-max-age 7d] [--admin-token TOKEN]
 *                 [--max-client-queue 1M]
 *
 * Prints "segdl-gateway listening on http://HOST:PORT" once it accepts
 * connections (port 0 picks a free one), runs until SIGINT/SIGTERM. Bad
 * options exit with status 2. See docs/gateway.md.
 */
#include "gateway/gateway.h"
#include "server/util.h"

#include <glib.h>
#include <gst/gst.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace {

constexpr int kExitUsage = 2;

int usage_error(const std::string &msg) {
  g_printerr("segdl-gateway: %s\n", msg.c_str());
  g_printerr("Try 'segdl-gateway --help'.\n");
  return kExitUsage;
}

// "500M", "2G", "1048576": bytes (K, M, G, T are powers of 1024).
bool parse_size(const char *s, uint64_t &out) {
  char *end = nullptr;
  const double v = g_ascii_strtod(s, &end);
  if (!end || end == s || !(v >= 0)) return false;
  double mult = 1;
  switch (g_ascii_toupper(*end)) {
    case '\0':
      break;
    case 'K':
      mult = 1024.0;
      break;
    case 'M':
      mult = 1024.0 * 1024;
      break;
    case 'G':
      mult = 1024.0 * 1024 * 1024;
      break;
    case 'T':
      mult = 1024.0 * 1024 * 1024 * 1024;
      break;
    default:
      return false;
  }
  if (*end && end[1] && !(g_ascii_toupper(end[1]) == 'B' && !end[2])) return false;
  out = static_cast<uint64_t>(v * mult);
  return true;
}

// "90", "90s", "30m", "12h", "7d": seconds.
bool parse_duration(const char *s, int64_t &out) {
  char *end = nullptr;
  const double v = g_ascii_strtod(s, &end);
  if (!end || end == s || !(v >= 0) || v > 1e9) return false;
  double mult = 1;
  if (*end == 'm')
    mult = 60;
  else if (*end == 'h')
    mult = 3600;
  else if (*end == 'd')
    mult = 86400;
  else if (*end != 's' && *end)
    return false;
  if (*end && end[1]) return false;
  out = static_cast<int64_t>(v * mult);
  return true;
}

// "127.0.0.1:8090", "0.0.0.0:0", ":8090".
bool parse_listen(const std::string &s, std::string &host, int &port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  const std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  port = std::stoi(p);
  host = colon ? s.substr(0, colon) : "0.0.0.0";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return port <= 65535;
}

}  // namespace

int main(int argc, char **argv) {
  g_autofree gchar *upstream = nullptr, *fallback = nullptr, *cache_dir = nullptr;
  g_autofree gchar *listen = nullptr, *max_size = nullptr, *max_age = nullptr;
  g_autofree gchar *token = nullptr, *id_pattern = nullptr, *client_queue = nullptr;
  gint max_concurrent = 4;
  const GOptionEntry entries[] = {
      {"upstream", 'u', 0, G_OPTION_ARG_STRING, &upstream, "The segmented backend (required)",
       "URL"},
      {"fallback-upstream", 0, 0, G_OPTION_ARG_STRING, &fallback,
       "The old full-file backend, for whole tracks the upstream cannot give", "URL"},
      {"cache-dir", 'c', 0, G_OPTION_ARG_FILENAME, &cache_dir, "Segment cache folder (required)",
       "DIR"},
      {"listen", 'l', 0, G_OPTION_ARG_STRING, &listen,
       "Address and port (default 127.0.0.1:8090; port 0 picks one)", "ADDR:PORT"},
      {"max-concurrent", 0, 0, G_OPTION_ARG_INT, &max_concurrent,
       "Upstream segment downloads at once, all tracks together (default 4)", "N"},
      {"cache-max-size", 0, 0, G_OPTION_ARG_STRING, &max_size,
       "Evict least recently used tracks above this (e.g. 2G; default no limit)", "SIZE"},
      {"cache-max-age", 0, 0, G_OPTION_ARG_STRING, &max_age,
       "Evict tracks unused for this long (e.g. 7d, 12h; default no limit)", "DURATION"},
      {"max-client-queue", 0, 0, G_OPTION_ARG_STRING, &client_queue,
       "Bytes a whole-track or /listen answer may hold for a slow client before its producer "
       "pauses (e.g. 256K; default 1M)",
       "SIZE"},
      {"admin-token", 0, 0, G_OPTION_ARG_STRING, &token,
       "Allow DELETE /api/segments/cache with 'Authorization: Bearer TOKEN'", "TOKEN"},
      {"id-pattern", 0, 0, G_OPTION_ARG_STRING, &id_pattern,
       "Regular expression every video id must match (default ^[A-Za-z0-9_-]{11}$)", "REGEX"},
      {nullptr}};
  GOptionContext *octx = g_option_context_new("- the music app's segment API on segdl");
  g_option_context_add_main_entries(octx, entries, nullptr);
  g_option_context_add_group(octx, gst_init_get_option_group());  // --gst-debug...; gst_init
  GError *err = nullptr;
  const bool parsed = g_option_context_parse(octx, &argc, &argv, &err);
  g_option_context_free(octx);
  if (!parsed) {
    const std::string msg = err ? err->message : "bad options";
    g_clear_error(&err);
    return usage_error(msg);
  }
  if (argc > 1) return usage_error(std::string("unexpected argument: ") + argv[1]);
  if (!upstream) return usage_error("--upstream URL is required");
  if (!cache_dir) return usage_error("--cache-dir DIR is required");

  segdl::gateway::Options opts;
  opts.upstream = upstream;
  if (fallback) opts.fallback_upstream = fallback;
  opts.cache_dir = cache_dir;
  if (listen && !parse_listen(listen, opts.host, opts.port))
    return usage_error("--listen wants ADDR:PORT");
  opts.max_concurrent = max_concurrent;
  if (max_size && !parse_size(max_size, opts.cache_max_size))
    return usage_error("--cache-max-size wants a size such as 500M or 2G");
  if (max_age && !parse_duration(max_age, opts.cache_max_age_s))
    return usage_error("--cache-max-age wants a duration such as 90s, 30m, 12h or 7d");
  uint64_t queue = 0;
  if (client_queue && !parse_size(client_queue, queue))
    return usage_error("--max-client-queue wants a size such as 256K or 1M");
  if (client_queue)
    opts.max_client_queue_bytes = static_cast<int64_t>(std::min<uint64_t>(queue, INT64_MAX));
  if (token) opts.admin_token = token;
  if (id_pattern) opts.id_pattern = id_pattern;

  segdl::gateway::Gateway gateway(opts);
  std::string error;
  if (!gateway.start(error)) {
    g_printerr("segdl-gateway: %s\n", error.c_str());
    return error.rfind("--", 0) == 0 ? kExitUsage : 1;
  }
  g_print("segdl-gateway listening on %s\n", gateway.base_url().c_str());
  fflush(stdout);

  segdl::server::run_until_signal();
  gateway.stop();
  g_print("segdl-gateway stopped\n");
  return 0;
}
