// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — reference backend helpers: fault specs, Range parsing, JSON text,
 * and loading a folder of segments (see server.h, util.h).
 */
#include "server/util.h"
#include "server/server.h"

#include <gio/gio.h>
#include <glib-unix.h>
#include <glib.h>
#include <libsoup/soup.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace segdl::server {

int listening_port(SoupServer *soup) {
  GSList *listeners = soup_server_get_listeners(soup);
  int port = 0;
  if (listeners) {
    GSocketAddress *addr =
        g_socket_get_local_address(static_cast<GSocket *>(listeners->data), nullptr);
    if (addr && G_IS_INET_SOCKET_ADDRESS(addr))
      port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(addr));
    g_clear_object(&addr);
  }
  g_slist_free(listeners);
  return port;
}

void run_until_signal() {
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  const auto quit = [](gpointer data) noexcept -> gboolean {
    g_main_loop_quit(static_cast<GMainLoop *>(data));
    return G_SOURCE_CONTINUE;
  };
  const guint sigint = g_unix_signal_add(SIGINT, quit, loop);
  const guint sigterm = g_unix_signal_add(SIGTERM, quit, loop);
  g_main_loop_run(loop);
  g_source_remove(sigint);
  g_source_remove(sigterm);
  g_main_loop_unref(loop);
}

namespace detail {

bool is_status_fault(const std::string &k) {
  return k == "status500" || k == "badjson" || k == "statusregress" || k == "statuserror" ||
         k == "statushold";
}

bool is_body_fault(const std::string &k) {
  return k == "http500" || k == "reset" || k == "truncate" || k == "stall" || k == "notready" ||
         k == "redirect" || k == "redirectftp" || k == "endless";
}

std::string json_escape(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          g_snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string json_number(double v) {
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string mime_for_extension(std::string ext) {
  for (char &c : ext) c = static_cast<char>(g_ascii_tolower(c));
  static const std::pair<const char *, const char *> kTypes[] = {
      {"aac", "audio/aac"}, {"adts", "audio/aac"},       {"mp3", "audio/mpeg"},
      {"ts", "video/mp2t"}, {"m4a", "audio/mp4"},        {"mp4", "audio/mp4"},
      {"m4s", "audio/mp4"}, {"webm", "audio/webm"},      {"ogg", "audio/ogg"},
      {"oga", "audio/ogg"}, {"opus", "audio/ogg"},       {"flac", "audio/flac"},
      {"wav", "audio/wav"}, {"mka", "audio/x-matroska"},
  };
  for (const auto &[e, mime] : kTypes)
    if (ext == e) return mime;
  return "application/octet-stream";
}

// Parses a Range header for a body of `size` bytes. Returns false when the
// header should be ignored (absent, not a single byte range we understand);
// otherwise sets `satisfiable` and, if so, the inclusive range [first, last].
bool parse_range(const char *header, uint64_t size, bool &satisfiable, uint64_t &first,
                 uint64_t &last) {
  if (!header) return false;
  while (*header == ' ') header++;
  if (g_ascii_strncasecmp(header, "bytes=", 6) != 0) return false;
  std::string spec(header + 6);
  while (!spec.empty() && spec.back() == ' ') spec.pop_back();
  if (spec.empty() || spec.find(',') != std::string::npos) return false;
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return false;
  const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto number = [](const std::string &s, uint64_t &v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
    v = g_ascii_strtoull(s.c_str(), nullptr, 10);
    return true;
  };
  uint64_t x = 0, y = 0;
  if (a.empty()) {  // suffix: the last y bytes
    if (!number(b, y)) return false;
    satisfiable = y > 0 && size > 0;
    if (satisfiable) {
      first = size - std::min(y, size);
      last = size - 1;
    }
    return true;
  }
  if (!number(a, x)) return false;
  if (!b.empty()) {
    if (!number(b, y) || y < x) return false;
  } else {
    y = UINT64_MAX;
  }
  satisfiable = x < size;
  if (satisfiable) {
    first = x;
    last = std::min(y, size - 1);
  }
  return true;
}

}  // namespace detail

using detail::is_body_fault;
using detail::is_status_fault;
using detail::kSegmentFull;
using detail::mime_for_extension;

bool parse_fault(const std::string &spec, Fault &out, std::string &error) {
  gchar **parts = g_strsplit(spec.c_str(), ":", -1);
  const guint n = g_strv_length(parts);
  auto fail = [&](const std::string &why) {
    error = "bad fault spec '" + spec + "': " + why + " (expected KIND:ID:SEGMENT:COUNT[:ARG])";
    g_strfreev(parts);
    return false;
  };
  if (n < 4 || n > 5) return fail("wrong number of fields");
  Fault f;
  f.kind = parts[0];
  if (!is_status_fault(f.kind) && !is_body_fault(f.kind)) return fail("unknown kind");
  f.video_id = parts[1];
  if (f.video_id.empty()) return fail("empty id");
  const std::string seg = parts[2];
  if (seg == "*") {
    f.segment = -1;
  } else if (seg == "full") {
    f.segment = kSegmentFull;
  } else {
    guint64 v = 0;
    if (!g_ascii_string_to_unsigned(seg.c_str(), 10, 0, G_MAXINT64, &v, nullptr))
      return fail("bad segment");
    f.segment = static_cast<int64_t>(v);
  }
  gint64 count = 0;
  if (!g_ascii_string_to_signed(parts[3], 10, -1, G_MAXINT, &count, nullptr) || count == 0)
    return fail("bad count");
  f.count = static_cast<int>(count);
  if (n == 5) {
    gchar *end = nullptr;
    f.arg = g_ascii_strtod(parts[4], &end);
    if (!end || *end || end == parts[4] || !(f.arg >= 0) || f.arg > 86400)
      return fail("bad argument");
  }
  g_strfreev(parts);
  out = f;
  return true;
}

bool Server::load_dir(const std::string &root, std::string &error) {
  return load_dir(root, 15.0, 30.0, error);
}

bool Server::load_dir(const std::string &root, double first_segment_duration,
                      double segment_duration, std::string &error) {
  GError *gerr = nullptr;
  GDir *dir = g_dir_open(root.c_str(), 0, &gerr);
  if (!dir) {
    error = "cannot open " + root + ": " + (gerr ? gerr->message : "unknown error");
    g_clear_error(&gerr);
    return false;
  }
  std::vector<std::string> ids;
  while (const char *name = g_dir_read_name(dir)) {
    gchar *path = g_build_filename(root.c_str(), name, nullptr);
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) ids.emplace_back(name);
    g_free(path);
  }
  g_dir_close(dir);
  std::sort(ids.begin(), ids.end());
  std::vector<std::pair<std::string, Track>> loaded;
  for (const std::string &id : ids) {
    gchar *folder = g_build_filename(root.c_str(), id.c_str(), nullptr);
    GDir *d = g_dir_open(folder, 0, nullptr);
    std::map<int64_t, std::string> files;  // segment number -> file name
    std::string full_name;
    std::string ext;
    bool bad = false;
    while (const char *name = d ? g_dir_read_name(d) : nullptr) {
      const char *dot = strrchr(name, '.');
      if (!dot) continue;
      const std::string stem(name, static_cast<size_t>(dot - name));
      std::string num;
      if (g_str_has_prefix(stem.c_str(), "seg_"))
        num = stem.substr(4);
      else if (g_str_has_prefix(stem.c_str(), "segment_"))
        num = stem.substr(8);
      if (stem == "full") full_name = name;
      guint64 n = 0;
      if (num.empty() || !g_ascii_string_to_unsigned(num.c_str(), 10, 0, 1000000, &n, nullptr))
        continue;
      if (files.count(static_cast<int64_t>(n)) || (!ext.empty() && ext != dot + 1)) {
        error = "ambiguous or mixed segment files in " + std::string(folder);
        bad = true;
        break;
      }
      ext = dot + 1;
      files[static_cast<int64_t>(n)] = name;
    }
    if (d) g_dir_close(d);
    if (!bad && !files.empty() &&
        (files.begin()->first != 0 ||
         files.rbegin()->first + 1 != static_cast<int64_t>(files.size()))) {
      error = "segments in " + std::string(folder) + " are not numbered 0..N-1 without gaps";
      bad = true;
    }
    Track track;
    for (const auto &[n, name] : files) {
      if (bad) break;
      gchar *path = g_build_filename(folder, name.c_str(), nullptr);
      gchar *data = nullptr;
      gsize len = 0;
      if (!g_file_get_contents(path, &data, &len, &gerr)) {
        error = std::string("cannot read ") + path + ": " + (gerr ? gerr->message : "?");
        g_clear_error(&gerr);
        bad = true;
      } else {
        track.segments.emplace_back(reinterpret_cast<uint8_t *>(data),
                                    reinterpret_cast<uint8_t *>(data) + len);
      }
      g_free(data);
      g_free(path);
    }
    if (!bad && !full_name.empty()) {
      gchar *path = g_build_filename(folder, full_name.c_str(), nullptr);
      gchar *data = nullptr;
      gsize len = 0;
      if (g_file_get_contents(path, &data, &len, nullptr))
        track.full.assign(reinterpret_cast<uint8_t *>(data),
                          reinterpret_cast<uint8_t *>(data) + len);
      g_free(data);
      g_free(path);
    }
    g_free(folder);
    if (bad) return false;
    if (track.segments.empty()) continue;
    track.mime_type = mime_for_extension(ext);
    track.first_segment_duration = first_segment_duration;
    track.segment_duration = segment_duration;
    loaded.emplace_back(id, std::move(track));
  }
  if (loaded.empty()) {
    error = "no tracks (ID/seg_N.EXT) under " + root;
    return false;
  }
  for (auto &[id, track] : loaded) add_track(id, std::move(track));
  return true;
}

}  // namespace segdl::server
