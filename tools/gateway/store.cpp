// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the disk cache as the gateway uses it, on the core's public
 * Cache API only. The gateway adds one file of its own to a track folder,
 * "video-id" (the id in clear, for the cache listing: folder names are
 * hashes); the Cache removes it with the folder.
 */
#include "gateway/filebody.h"
#include "gateway/fill.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <algorithm>

namespace segdl::gateway {

namespace {
constexpr const char *kIdFile = "video-id";
constexpr int64_t kEvictEveryUs = 5 * G_USEC_PER_SEC;
// Tracks whose form is remembered (ids are the clients' choice).
constexpr size_t kMaxForms = 10000;
}  // namespace

bool Gateway::Impl::cache_dir_of(const std::string &id, std::string &dir) const {
  g_autofree char *path =
      g_build_filename(opts.cache_dir.c_str(), Cache::safe_name(id).c_str(), nullptr);
  dir = path;
  return g_file_test(path, G_FILE_TEST_IS_DIR);
}

std::unique_ptr<Cache> Gateway::Impl::open_cache(const std::string &id, std::string &error) {
  CacheConfig cfg;
  cfg.dir = opts.cache_dir;
  auto cache = std::make_unique<Cache>(cfg);
  if (!cache->open_track(id, error)) return nullptr;
  g_autofree char *idfile = g_build_filename(cache->track_dir().c_str(), kIdFile, nullptr);
  if (!g_file_test(idfile, G_FILE_TEST_EXISTS))
    g_file_set_contents(idfile, id.data(), static_cast<gssize>(id.size()), nullptr);
  return cache;
}

// The segments held whole, ascending. Opens the track only when its folder
// exists (a status request for an unknown id creates nothing).
std::vector<int64_t> Gateway::Impl::local_segments(const std::string &id) {
  std::vector<int64_t> out;
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return out;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  if (!cache) return out;
  GDir *d = g_dir_open(cache->track_dir().c_str(), 0, nullptr);
  if (!d) return out;
  while (const char *name = g_dir_read_name(d)) {
    if (!g_str_has_prefix(name, "seg_") || !g_str_has_suffix(name, ".bin")) continue;
    const std::string num(name + 4, strlen(name) - 8);
    int64_t n = 0;
    if (parse_segment_number(num, n) && cache->contains(n)) out.push_back(n);
  }
  g_dir_close(d);
  std::sort(out.begin(), out.end());
  return out;
}

// The form of segment 0 from its cached file, once the file passed its
// SHA-256 check (the Verifier reads its first bytes through
// check_segment()); a file that fails leaves the cache.
bool Gateway::Impl::learn_form(const std::string &id) {
  if (forms.count(id)) return false;
  std::string dir, error, path;
  if (!cache_dir_of(id, dir)) return false;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  SegmentInfo info;
  if (!cache || !cache->locate(0, info, path)) return false;
  auto learnt = [this, id](const Verified &v) {
    if (forms.size() > kMaxForms) forms.clear();
    forms[id] = v.form;
  };
  Verified v;
  if (files().known(path, info.sha256, v)) {
    learnt(v);
    return false;
  }
  files().check(
      path, info.sha256, [this, id, learnt](bool ok, const Verified &v, const std::string &why) {
        if (ok) {
          learnt(v);
        } else {
          g_message("segdl-gateway: %s segment 0 left the cache: %s", id.c_str(), why.c_str());
          std::string error;
          std::unique_ptr<Cache> c = open_cache(id, error);
          if (c) c->remove(0);
        }
        std::vector<Fill *> waiting;
        for (auto &kv : fills)
          if (kv.first.first == id) waiting.push_back(kv.second.get());
        for (Fill *f : waiting) f->form_known();  // may end fills
      });
  return true;
}

// The total the upstream last told, else the one the cache remembers.
std::optional<int64_t> Gateway::Impl::known_total(const std::string &id) {
  auto it = known.find(id);
  if (it != known.end() && it->second.status.total_segments)
    return it->second.status.total_segments;
  std::string dir, error;
  if (!cache_dir_of(id, dir)) return std::nullopt;
  std::unique_ptr<Cache> cache = open_cache(id, error);
  CachedTrack t;
  if (cache && cache->read_track(t)) return t.total;
  return std::nullopt;
}

// Records in track.meta what is known of the track: its total, and whether
// every segment is held.
void Gateway::Impl::note_total(const std::string &id, Cache &cache) {
  auto it = known.find(id);
  if (it == known.end() || !it->second.status.total_segments) return;
  const Status &st = it->second.status;
  CachedTrack t;
  t.total = st.total_segments;
  t.complete = true;
  for (int64_t n = 0; t.complete && n < *t.total; n++) t.complete = cache.contains(n);
  if (st.duration) t.duration = *st.duration;
  if (st.segment_duration) t.segment_duration = *st.segment_duration;
  if (st.first_segment_duration) t.first_segment_duration = *st.first_segment_duration;
  t.mime_type = st.mime_type;
  std::string error;
  if (!cache.write_track(t, error))
    g_warning("segdl-gateway: cannot record track %s: %s", id.c_str(), error.c_str());
}

// Applies --cache-max-size / --cache-max-age now and then (tracks in use are
// never removed: their lock is held).
void Gateway::Impl::maybe_evict() {
  if (!opts.cache_max_size && !opts.cache_max_age_s) return;
  const int64_t now = g_get_monotonic_time();
  if (last_evict_us && now - last_evict_us < kEvictEveryUs) return;
  last_evict_us = now;
  CacheConfig cfg;
  cfg.dir = opts.cache_dir;
  cfg.max_size_bytes = opts.cache_max_size;
  cfg.max_age_s = opts.cache_max_age_s;
  Cache(cfg).evict();
}

}  // namespace segdl::gateway
