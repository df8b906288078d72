// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — cache info, cache clean.
 *
 * `cache info` only reads: it does not open tracks through segdl::Cache
 * (that would create folders and mark tracks as used). It reads the layout
 * cache.h documents: DIR/<safe name>/seg_N.bin, track.meta (key=value:
 * total, complete), and the mtime of .lock as "last used". `cache clean`
 * goes through segdl::Cache::evict(), which never removes a track in use nor
 * anything but the cache's own folders (an old-tools DIR/<id>/ is safe).
 * After a download, remove_empty_track() takes away the folder of a track
 * of which nothing came (an unknown id), by evict()'s rules.
 */
#include "commands.h"
#include "json.h"
#include "progress.h"
#include "segdl/cache.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

namespace segdl::cli {

namespace {

struct TrackInfo {
  std::string name;
  int64_t segments = 0;
  int64_t total = -1;
  bool complete_flag = false;
  uint64_t bytes = 0;
  int64_t last_used = 0;  // seconds since the epoch
  bool complete() const { return complete_flag && total >= 0 && segments >= total; }
};

// The names Cache::safe_name() makes: up to 48 of [A-Za-z0-9_-], '-', 16 hex digits.
bool is_track_folder(const std::string &name) {
  if (name.size() < 18 || name.size() > 48 + 17) return false;
  const size_t dash = name.size() - 17;
  if (name[dash] != '-') return false;
  for (size_t i = dash + 1; i < name.size(); i++)
    if (!g_ascii_isxdigit(name[i])) return false;
  for (size_t i = 0; i < dash; i++)
    if (!(g_ascii_isalnum(name[i]) || name[i] == '-' || name[i] == '_')) return false;
  return true;
}

void read_track_meta(const std::string &path, TrackInfo &t) {
  gchar *text = nullptr;
  if (!g_file_get_contents(path.c_str(), &text, nullptr, nullptr)) return;
  gchar **lines = g_strsplit(text, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    if (g_str_has_prefix(*l, "total=")) t.total = g_ascii_strtoll(*l + 6, nullptr, 10);
    if (g_str_has_prefix(*l, "complete=")) t.complete_flag = strcmp(*l + 9, "1") == 0;
  }
  g_strfreev(lines);
  g_free(text);
}

bool scan_track(const std::string &dir, const std::string &name, TrackInfo &t) {
  const std::string path = dir + "/" + name;
  GDir *d = g_dir_open(path.c_str(), 0, nullptr);
  if (!d) return false;
  t.name = name;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) t.last_used = st.st_mtime;
  while (const char *entry = g_dir_read_name(d)) {
    const std::string file = path + "/" + entry;
    if (lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (strcmp(entry, ".lock") == 0) t.last_used = st.st_mtime;
    if (entry[0] == '.') continue;
    t.bytes += uint64_t(st.st_size);
    if (g_str_has_prefix(entry, "seg_") && g_str_has_suffix(entry, ".bin")) t.segments++;
  }
  g_dir_close(d);
  read_track_meta(path + "/track.meta", t);
  return true;
}

std::string age_text(int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + " s";
  if (seconds < 7200) return std::to_string(seconds / 60) + " min";
  if (seconds < 172800) return std::to_string(seconds / 3600) + " h";
  return std::to_string(seconds / 86400) + " d";
}

void print_tracks_json(const std::string &dir, const std::vector<TrackInfo> &tracks) {
  const int64_t now = int64_t(time(nullptr));
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "dir");
  json_builder_add_string_value(b, dir.c_str());
  json_builder_set_member_name(b, "tracks");
  json_builder_begin_array(b);
  uint64_t total = 0;
  for (const TrackInfo &t : tracks) {
    total += t.bytes;
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "folder");
    json_builder_add_string_value(b, t.name.c_str());
    json_builder_set_member_name(b, "segments");
    json_builder_add_int_value(b, t.segments);
    json_builder_set_member_name(b, "segments_total");
    if (t.total >= 0)
      json_builder_add_int_value(b, t.total);
    else
      json_builder_add_null_value(b);
    json_builder_set_member_name(b, "bytes");
    json_builder_add_int_value(b, int64_t(t.bytes));
    json_builder_set_member_name(b, "age_seconds");
    json_builder_add_int_value(b, std::max<int64_t>(0, now - t.last_used));
    json_builder_set_member_name(b, "complete");
    json_builder_add_boolean_value(b, t.complete());
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_set_member_name(b, "bytes");
  json_builder_add_int_value(b, int64_t(total));
  json_builder_end_object(b);
  printf("%s\n", json_text(b).c_str());
  g_object_unref(b);
}

void print_tracks(const std::string &dir, const std::vector<TrackInfo> &tracks) {
  const int64_t now = int64_t(time(nullptr));
  uint64_t total = 0;
  printf("%-40s %9s %10s %8s  %s\n", "TRACK FOLDER", "SEGMENTS", "SIZE", "USED", "COMPLETE");
  for (const TrackInfo &t : tracks) {
    total += t.bytes;
    const std::string segs =
        std::to_string(t.segments) + "/" + (t.total >= 0 ? std::to_string(t.total) : "?");
    printf("%-40s %9s %10s %8s  %s\n", t.name.c_str(), segs.c_str(),
           human_bytes(double(t.bytes)).c_str(),
           (age_text(std::max<int64_t>(0, now - t.last_used)) + " ago").c_str(),
           t.complete() ? "yes" : "no");
  }
  printf("%s, %s in %s\n", count_of(int64_t(tracks.size()), "track").c_str(),
         human_bytes(double(total)).c_str(), dir.c_str());
}

// True when the track folder holds nothing but the cache's bookkeeping:
// .lock and a track.meta (regular files), no segment, no temporary file.
bool only_bookkeeping(const std::string &track) {
  GDir *d = g_dir_open(track.c_str(), 0, nullptr);
  if (!d) return false;
  bool only = true;
  while (const char *entry = g_dir_read_name(d)) {
    struct stat st;
    const std::string path = track + "/" + entry;
    if ((strcmp(entry, ".lock") != 0 && strcmp(entry, "track.meta") != 0) ||
        lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      only = false;
      break;
    }
  }
  g_dir_close(d);
  return only;
}

}  // namespace

void remove_empty_track(const std::string &dir, const std::string &id) {
  const std::string track = dir + "/" + Cache::safe_name(id);
  const std::string lock_path = track + "/.lock";
  const int fd = open(lock_path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  struct stat by_fd, by_path;
  const bool held = flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &by_fd) == 0 &&
                    lstat(lock_path.c_str(), &by_path) == 0 && by_fd.st_dev == by_path.st_dev &&
                    by_fd.st_ino == by_path.st_ino;
  if (held && only_bookkeeping(track)) {
    g_unlink((track + "/track.meta").c_str());
    // .lock last, while still holding it: whoever waits on it starts again.
    g_unlink(lock_path.c_str());
    g_rmdir(track.c_str());
  }
  close(fd);
}

int cmd_cache_info(const Options &opts, const std::string &id, bool have_id) {
  const std::string &dir = opts.download_dir;
  std::vector<TrackInfo> tracks;
  if (have_id) {
    TrackInfo t;
    if (!scan_track(dir, Cache::safe_name(id), t)) {
      fprintf(stderr, "segdl: %s: not in the download dir %s\n", id.c_str(), dir.c_str());
      return kExitFailed;
    }
    tracks.push_back(t);
  } else if (GDir *d = g_dir_open(dir.c_str(), 0, nullptr)) {
    while (const char *name = g_dir_read_name(d)) {
      TrackInfo t;
      if (is_track_folder(name) && scan_track(dir, name, t)) tracks.push_back(t);
    }
    g_dir_close(d);
  } else if (g_file_test(dir.c_str(), G_FILE_TEST_EXISTS)) {
    fprintf(stderr, "segdl: cannot read the download dir %s\n", dir.c_str());
    return kExitLocalIo;
  }
  std::sort(tracks.begin(), tracks.end(),
            [](const TrackInfo &a, const TrackInfo &b) { return a.name < b.name; });
  if (opts.json)
    print_tracks_json(dir, tracks);
  else
    print_tracks(dir, tracks);
  return kExitOk;
}

int cmd_cache_clean(const Options &opts, int64_t max_age_s, uint64_t max_size) {
  if (!g_file_test(opts.download_dir.c_str(), G_FILE_TEST_IS_DIR)) {
    if (!opts.quiet) printf("nothing to clean: %s does not exist\n", opts.download_dir.c_str());
    return kExitOk;
  }
  CacheConfig cfg;
  cfg.dir = opts.download_dir;
  cfg.max_age_s = max_age_s;
  // No limit given: every track not in use goes (any size above 0 bytes).
  cfg.max_size_bytes = max_age_s == 0 && max_size == 0 ? 1 : max_size;
  Cache cache(cfg);
  const uint64_t before = cache.size_bytes();
  const int removed = cache.evict();
  const uint64_t after = cache.size_bytes();
  if (opts.json)
    printf("{\"removed_tracks\":%d,\"bytes_before\":%" G_GUINT64_FORMAT
           ",\"bytes_after\":%" G_GUINT64_FORMAT "}\n",
           removed, before, after);
  else if (!opts.quiet)
    printf("removed %s: %s -> %s in %s\n", count_of(removed, "track").c_str(),
           human_bytes(double(before)).c_str(), human_bytes(double(after)).c_str(),
           opts.download_dir.c_str());
  return kExitOk;
}

}  // namespace segdl::cli
