// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the disk cache, segdl::Cache, on real files: no GStreamer
 * element, no network, no sleeps.
 *
 * Every test works in its own folder from g_dir_make_tmp, removed at the end.
 * A kill at any point is simulated by leaving the files such a kill leaves
 * (a writer destroyed without commit, a meta without its data, a truncated
 * segment). Times of use are set on the .lock files with utimensat rather
 * than waited for.
 */
#include "segdl/cache.h"
#include "segdl/cacheworker.h"

#include <gst/check/gstcheck.h>

#include <glib/gstdio.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

using segdl::Cache;
using segdl::CacheConfig;
using segdl::CachedTrack;
using segdl::SegmentInfo;
using segdl::SegmentWriter;

namespace {

// Removes a tree without following symlinks, making folders writable first.
void remove_tree(const std::string &path) {
  GStatBuf st;
  if (g_lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    g_chmod(path.c_str(), 0700);
    if (GDir *dir = g_dir_open(path.c_str(), 0, nullptr)) {
      while (const char *name = g_dir_read_name(dir)) remove_tree(path + "/" + name);
      g_dir_close(dir);
    }
    g_rmdir(path.c_str());
  } else {
    g_unlink(path.c_str());
  }
}

// A fresh folder for one test, removed with everything in it at the end.
class TempDir {
 public:
  TempDir() {
    g_autoptr(GError) err = nullptr;
    g_autofree char *dir = g_dir_make_tmp("segdl-cache-XXXXXX", &err);
    fail_unless(dir != nullptr, "g_dir_make_tmp: %s", err ? err->message : "?");
    path_ = dir;
  }
  ~TempDir() { remove_tree(path_); }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

CacheConfig config(const std::string &dir, uint64_t max_size = 0, int64_t max_age = 0) {
  CacheConfig cfg;
  cfg.dir = dir;
  cfg.max_size_bytes = max_size;
  cfg.max_age_s = max_age;
  return cfg;
}

// Deterministic bytes, different for every seed; every byte value occurs.
std::string make_body(unsigned seed, size_t size) {
  std::string s(size, '\0');
  uint32_t x = 0x9e3779b9u * (seed + 1);
  for (char &c : s) {
    x = x * 1664525u + 1013904223u;
    c = char(x >> 24);
  }
  return s;
}

bool bytes_equal(GBytes *bytes, const std::string &expected) {
  gsize size = 0;
  const void *data = g_bytes_get_data(bytes, &size);
  return size == expected.size() && (size == 0 || std::memcmp(data, expected.data(), size) == 0);
}

// Writes a whole segment in pieces of 1000 bytes and commits it with its
// real size.
bool store(Cache &cache, int64_t n, const std::string &body) {
  std::string error;
  std::unique_ptr<SegmentWriter> w = cache.begin(n, error);
  fail_unless(w != nullptr, "begin %d: %s", int(n), error.c_str());
  for (size_t off = 0; off < body.size(); off += 1000) {
    if (!w->append(body.data() + off, std::min<size_t>(1000, body.size() - off), error))
      return false;
  }
  SegmentInfo info;
  info.size = int64_t(body.size());
  return w->commit(info, error);
}

bool exists(const std::string &path) {
  GStatBuf st;
  return g_lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> list_dir(const std::string &path) {
  std::vector<std::string> names;
  if (GDir *dir = g_dir_open(path.c_str(), 0, nullptr)) {
    while (const char *name = g_dir_read_name(dir)) names.push_back(name);
    g_dir_close(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Temporary files (names starting with '.', other than .lock) in a folder.
int count_temp_files(const std::string &dir) {
  int n = 0;
  for (const std::string &name : list_dir(dir))
    if (name[0] == '.' && name != ".lock") n++;
  return n;
}

void set_file(const std::string &path, const std::string &contents) {
  fail_unless(g_file_set_contents(path.c_str(), contents.data(), gssize(contents.size()), nullptr));
}

void set_mtime(const std::string &path, int64_t seconds_ago) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = time_t(g_get_real_time() / G_USEC_PER_SEC - seconds_ago);
  times[0].tv_nsec = times[1].tv_nsec = 0;
  fail_unless(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0, "utimensat %s",
              path.c_str());
}

// Marks a track as last used `seconds_ago`.
void set_last_used(const std::string &root, const std::string &id, int64_t seconds_ago) {
  set_mtime(root + "/" + Cache::safe_name(id) + "/.lock", seconds_ago);
}

bool track_exists(const std::string &root, const std::string &id) {
  return exists(root + "/" + Cache::safe_name(id));
}

// Makes a track with one segment of `size` bytes, and releases it.
void make_track(const std::string &root, const std::string &id, size_t size) {
  Cache cache(config(root));
  std::string error;
  fail_unless(cache.open_track(id, error), "%s", error.c_str());
  fail_unless(store(cache, 0, make_body(1, size)));
}

}  // namespace

GST_START_TEST(test_safe_name) {
  std::vector<std::string> ids = {
      "../../etc/passwd",
      "a/b",
      "..",
      ".",
      "",
      "a",
      "A",
      "abc-DEF_123",
      std::string("\x01\x02\n\r\t\x7f", 6),
      std::string("nul\0byte", 8),
      std::string("nul\0bytf", 8),
      "/",
      "./.",
      "a b",
      "ünïcödé",
      std::string(10 * 1024, 'x'),
      std::string(10 * 1024, '/'),
      std::string(48, 'y') + "z",
      std::string(48, 'y') + "w",
  };
  std::string high;
  for (int c = 0x80; c <= 0xff; c++) high += char(c);
  ids.push_back(high);
  std::set<std::string> names;
  for (const std::string &id : ids) {
    const std::string name = Cache::safe_name(id);
    fail_unless(!name.empty());
    fail_unless(name != "." && name != "..");
    fail_unless(name.find('/') == std::string::npos, "'/' in %s", name.c_str());
    fail_unless(name.size() <= 65, "%zu chars: %s", name.size(), name.c_str());
    for (char c : name)
      fail_unless(g_ascii_isalnum(c) || c == '-' || c == '_', "bad char in %s", name.c_str());
    fail_unless(name == Cache::safe_name(id), "not deterministic");
    names.insert(name);
  }
  fail_unless_equals_int(names.size(), ids.size());
  // The readable part is kept, then the hash.
  const std::string abc = Cache::safe_name("abc-DEF_123");
  fail_unless(g_str_has_prefix(abc.c_str(), "abc-DEF_123-"));
  fail_unless_equals_int(abc.size(), 11 + 1 + 16);
  fail_unless_equals_int(Cache::safe_name(std::string(10 * 1024, 'x')).size(), 48 + 1 + 16);
  // 16 hex digits of SHA-256 of the raw bytes.
  g_autofree char *sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "a/b", -1);
  const std::string ab = Cache::safe_name("a/b");
  const std::string expected = "ab-" + std::string(sha, 16);
  fail_unless_equals_string(ab.c_str(), expected.c_str());
}
GST_END_TEST;

GST_START_TEST(test_round_trip) {
  TempDir tmp;
  Cache cache(config(tmp.path() + "/not/yet/there"));
  std::string error;
  fail_unless(cache.lookup(0) == nullptr, "lookup without a track");
  fail_unless(cache.begin(0, error) == nullptr);
  fail_unless(!error.empty());
  fail_unless(cache.open_track("../../etc/passwd", error), "%s", error.c_str());
  fail_unless(
      g_str_has_prefix(cache.track_dir().c_str(), (tmp.path() + "/not/yet/there/").c_str()));
  fail_unless(exists(cache.track_dir() + "/.lock"));

  const std::string body = make_body(7, 123457);
  std::unique_ptr<SegmentWriter> w = cache.begin(5, error);
  fail_unless(w != nullptr, "%s", error.c_str());
  for (size_t off = 0; off < body.size(); off += 4096)
    fail_unless(w->append(body.data() + off, std::min<size_t>(4096, body.size() - off), error),
                "%s", error.c_str());
  fail_unless(!cache.contains(5), "visible before commit");
  SegmentInfo info;
  info.size = int64_t(body.size());
  info.etag = "\"abc\"\ninjected=1";
  info.last_modified = "Wed, 21 Oct 2015 07:28:00 GMT";
  info.content_type = "audio/ogg\r\n";
  fail_unless(w->commit(info, error), "%s", error.c_str());
  std::string again;
  fail_unless(!w->append("x", 1, again), "append after commit");
  w.reset();
  fail_unless_equals_int(count_temp_files(cache.track_dir()), 0);

  SegmentInfo got;
  GBytes *bytes = cache.lookup(5, &got);
  fail_unless(bytes != nullptr);
  fail_unless(bytes_equal(bytes, body));
  // Truncated by another program while the bytes are in use: they stay
  // readable (a memory mapping would raise SIGBUS here).
  std::string bin = cache.track_dir() + "/seg_5.bin";
  fail_unless_equals_int(::truncate(bin.c_str(), 0), 0);
  fail_unless(bytes_equal(bytes, body));
  g_bytes_unref(bytes);
  fail_unless(cache.lookup(5) == nullptr, "a truncated entry is not a hit");
  fail_unless(store(cache, 5, body));
  fail_unless_equals_int(got.size, int64_t(body.size()));
  fail_unless_equals_string(got.etag.c_str(), "\"abc\"injected=1");
  fail_unless_equals_string(got.last_modified.c_str(), "Wed, 21 Oct 2015 07:28:00 GMT");
  fail_unless_equals_string(got.content_type.c_str(), "audio/ogg");
  fail_unless(cache.contains(5));
  fail_unless(!cache.contains(4));
  fail_unless(cache.lookup(4) == nullptr);
  fail_unless(cache.lookup(-1) == nullptr);

  // An empty segment is a segment too.
  fail_unless(store(cache, 6, ""));
  bytes = cache.lookup(6);
  fail_unless(bytes != nullptr);
  fail_unless_equals_int(g_bytes_get_size(bytes), 0);
  g_bytes_unref(bytes);

  // Another Cache on the same folder finds it.
  Cache other(config(tmp.path() + "/not/yet/there"));
  fail_unless(other.open_track("../../etc/passwd", error), "%s", error.c_str());
  bytes = other.lookup(5);
  fail_unless(bytes != nullptr && bytes_equal(bytes, body));
  g_bytes_unref(bytes);
  fail_unless(cache.size_bytes() >= body.size());
}
GST_END_TEST;

GST_START_TEST(test_size_mismatch) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  for (int64_t expected : {int64_t(9999), int64_t(10001), int64_t(0)}) {
    const std::string body = make_body(2, 10000);
    std::unique_ptr<SegmentWriter> w = cache.begin(0, error);
    fail_unless(w != nullptr, "%s", error.c_str());
    fail_unless(w->append(body.data(), body.size(), error), "%s", error.c_str());
    SegmentInfo info;
    info.size = expected;
    error.clear();
    fail_unless(!w->commit(info, error), "committed %d bytes as %d", 10000, int(expected));
    fail_unless(!error.empty());
    fail_unless(!exists(cache.track_dir() + "/seg_0.bin"));
    fail_unless(!exists(cache.track_dir() + "/seg_0.meta"));
    fail_unless_equals_int(count_temp_files(cache.track_dir()), 0);
    fail_unless(cache.lookup(0) == nullptr);
  }
}
GST_END_TEST;

// A process killed mid-segment: its writer never commits.
GST_START_TEST(test_writer_destroyed) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  {
    std::unique_ptr<SegmentWriter> w = cache.begin(2, error);
    fail_unless(w != nullptr, "%s", error.c_str());
    const std::string half = make_body(3, 5000);
    fail_unless(w->append(half.data(), half.size(), error), "%s", error.c_str());
    fail_unless_equals_int(count_temp_files(cache.track_dir()), 1);
  }
  fail_unless_equals_int(count_temp_files(cache.track_dir()), 0);
  fail_unless(!exists(cache.track_dir() + "/seg_2.bin"));
  fail_unless(cache.lookup(2) == nullptr);
  fail_unless(!cache.contains(2));
}
GST_END_TEST;

// A segment whose data does not match its meta is rejected and removed.
GST_START_TEST(test_invalid_entries_removed) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  const std::string bin = cache.track_dir() + "/seg_1.bin";
  const std::string meta = cache.track_dir() + "/seg_1.meta";

  fail_unless(store(cache, 1, make_body(4, 3000)));
  fail_unless(truncate(bin.c_str(), 2999) == 0);
  fail_unless(cache.lookup(1) == nullptr);
  fail_unless(!exists(bin) && !exists(meta), "truncated entry left in place");

  // contains() too.
  fail_unless(store(cache, 1, make_body(4, 3000)));
  fail_unless(truncate(bin.c_str(), 10) == 0);
  fail_unless(!cache.contains(1));
  fail_unless(!exists(bin) && !exists(meta));

  // Data without meta, and metas that are garbage.
  const char *const bad_metas[] = {nullptr,      "",        "size=",
                                   "size=abc",   "size=-5", "size=3000x",
                                   "size= 3000", "garbage", "size=99999999999999999999999"};
  for (const char *m : bad_metas) {
    fail_unless(store(cache, 1, make_body(4, 3000)));
    if (m)
      set_file(meta, m);
    else
      g_unlink(meta.c_str());
    fail_unless(cache.lookup(1) == nullptr, "accepted meta '%s'", m ? m : "(none)");
    fail_unless(!exists(bin) && !exists(meta));
  }

  // A valid entry is still taken after all this.
  fail_unless(store(cache, 1, make_body(4, 3000)));
  GBytes *bytes = cache.lookup(1);
  fail_unless(bytes != nullptr && bytes_equal(bytes, make_body(4, 3000)));
  g_bytes_unref(bytes);
}
GST_END_TEST;

// A process killed between the meta and the data renames leaves a meta and a
// temporary file: a miss, and the segment can be written again.
GST_START_TEST(test_killed_between_renames) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  const std::string body = make_body(5, 2048);
  fail_unless(store(cache, 3, body));
  const std::string dir = cache.track_dir();
  fail_unless(g_rename((dir + "/seg_3.bin").c_str(), (dir + "/.seg_3.AbCdEf").c_str()) == 0);
  fail_unless(exists(dir + "/seg_3.meta"));
  fail_unless(cache.lookup(3) == nullptr);
  fail_unless(!cache.contains(3));

  fail_unless(store(cache, 3, body));
  GBytes *bytes = cache.lookup(3);
  fail_unless(bytes != nullptr && bytes_equal(bytes, body));
  g_bytes_unref(bytes);
}
GST_END_TEST;

GST_START_TEST(test_track_meta) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  CachedTrack t;
  fail_unless(!cache.read_track(t), "read_track without a track");
  fail_unless(!cache.write_track(t, error));
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  fail_unless(!cache.read_track(t), "read_track before any write");

  CachedTrack in;
  in.total = 42;
  in.complete = true;
  in.duration = 123.456789012345;
  in.first_segment_duration = 0.1;
  in.segment_duration = 2.9999999999999996;
  in.mime_type = "audio/ogg; codecs=vorbis\nx=y";
  fail_unless(cache.write_track(in, error), "%s", error.c_str());
  CachedTrack out;
  fail_unless(cache.read_track(out));
  fail_unless(out.total && *out.total == 42);
  fail_unless(out.complete);
  fail_unless(out.duration == in.duration);
  fail_unless(out.first_segment_duration == in.first_segment_duration);
  fail_unless(out.segment_duration == in.segment_duration);
  fail_unless_equals_string(out.mime_type.c_str(), "audio/ogg; codecs=vorbisx=y");
  fail_unless_equals_int(count_temp_files(cache.track_dir()), 0);

  // Unknown total and durations.
  CachedTrack partial;
  fail_unless(cache.write_track(partial, error), "%s", error.c_str());
  fail_unless(cache.read_track(out));
  fail_unless(!out.total);
  fail_unless(!out.complete);
  fail_unless(out.duration == -1 && out.segment_duration == -1);
  fail_unless(out.mime_type.empty());

  const std::string path = cache.track_dir() + "/track.meta";
  std::string big = "complete=0\n";
  while (big.size() < 200 * 1024) big += "mime-type=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n";
  const std::vector<std::string> garbage = {
      "",
      "\n\n",
      make_body(9, 4096),
      std::string("complete=1\0total=3", 18),
      "complete=2\n",
      "complete=\n",
      "total=5\n",
      "total=abc\ncomplete=0\n",
      "total=12abc\ncomplete=0\n",
      "total= 5\ncomplete=0\n",
      "total=-1\ncomplete=0\n",
      "total=99999999999999999999\ncomplete=0\n",
      "complete=1\n",
      "complete=0\nduration=nan\n",
      "complete=0\nduration=inf\n",
      "complete=0\nduration=1e999\n",
      "complete=0\nduration=\n",
      "complete=0\nsegment-duration=1,5\n",
      "complete=0\n=x\n",
      "complete=0\njust words\n",
      big,
  };
  for (const std::string &g : garbage) {
    set_file(path, g);
    CachedTrack sentinel;
    sentinel.mime_type = "untouched";
    fail_unless(!cache.read_track(sentinel), "accepted '%.40s'", g.c_str());
    fail_unless_equals_string(sentinel.mime_type.c_str(), "untouched");
  }
  // Unknown keys are ignored (a newer writer).
  set_file(path, "total=3\ncomplete=1\nfuture-key=whatever\n");
  fail_unless(cache.read_track(out));
  fail_unless(out.total && *out.total == 3 && out.complete);
}
GST_END_TEST;

// Two processes (two Cache objects) write the same segment of the same
// track at the same time: both commit, the result is whole.
GST_START_TEST(test_two_writers) {
  TempDir tmp;
  Cache a(config(tmp.path())), b(config(tmp.path()));
  std::string error;
  fail_unless(a.open_track("same", error), "%s", error.c_str());
  fail_unless(b.open_track("same", error), "%s", error.c_str());
  fail_unless_equals_string(a.track_dir().c_str(), b.track_dir().c_str());
  const std::string body = make_body(11, 50000);
  std::unique_ptr<SegmentWriter> wa = a.begin(3, error);
  std::unique_ptr<SegmentWriter> wb = b.begin(3, error);
  fail_unless(wa && wb, "%s", error.c_str());
  for (size_t off = 0; off < body.size(); off += 7000) {
    const size_t n = std::min<size_t>(7000, body.size() - off);
    fail_unless(wa->append(body.data() + off, n, error), "%s", error.c_str());
    fail_unless(wb->append(body.data() + off, n, error), "%s", error.c_str());
  }
  SegmentInfo info;
  info.size = int64_t(body.size());
  fail_unless(wa->commit(info, error), "%s", error.c_str());
  GBytes *mapped_a = a.lookup(3);  // mapped before b replaces the file
  fail_unless(mapped_a != nullptr);
  fail_unless(wb->commit(info, error), "%s", error.c_str());
  fail_unless(bytes_equal(mapped_a, body));
  g_bytes_unref(mapped_a);
  for (Cache *c : {&a, &b}) {
    GBytes *bytes = c->lookup(3);
    fail_unless(bytes != nullptr && bytes_equal(bytes, body));
    g_bytes_unref(bytes);
  }
  fail_unless_equals_int(count_temp_files(a.track_dir()), 0);
}
GST_END_TEST;

GST_START_TEST(test_evict_by_size) {
  TempDir tmp;
  const std::string root = tmp.path();
  // Name order is not age order.
  make_track(root, "track-c", 1000);
  make_track(root, "track-b", 1000);
  make_track(root, "track-a", 1000);
  set_last_used(root, "track-c", 300);
  set_last_used(root, "track-b", 200);
  set_last_used(root, "track-a", 100);

  Cache cache(config(root, 2500));
  std::string error;
  fail_unless(cache.open_track("playing", error), "%s", error.c_str());
  fail_unless(store(cache, 0, make_body(1, 1000)));
  set_last_used(root, "playing", 10000);  // the oldest of all, but open
  const uint64_t before = cache.size_bytes();
  fail_unless(before >= 4000 && before < 4500, "%d bytes", int(before));  // data + metas

  fail_unless_equals_int(cache.evict(), 2);
  fail_unless(!track_exists(root, "track-c"));
  fail_unless(!track_exists(root, "track-b"));
  fail_unless(track_exists(root, "track-a"));
  fail_unless(track_exists(root, "playing"));
  fail_unless(cache.size_bytes() <= 2500);
  fail_unless_equals_int(cache.evict(), 0);

  Cache tiny(config(root, 1));
  fail_unless(tiny.open_track("playing", error), "%s", error.c_str());
  fail_unless_equals_int(tiny.evict(), 1);
  fail_unless(!track_exists(root, "track-a"));
  fail_unless(track_exists(root, "playing"));
  GBytes *bytes = cache.lookup(0);
  fail_unless(bytes != nullptr && bytes_equal(bytes, make_body(1, 1000)));
  g_bytes_unref(bytes);

  // Nothing outside the track folders is touched.
  set_file(root + "/notes.txt", "mine");
  fail_unless(g_mkdir(std::string(root + "/photos").c_str(), 0700) == 0);
  set_file(root + "/photos/a.jpg", std::string(5000, 'j'));
  fail_unless_equals_int(tiny.evict(), 0);
  fail_unless(exists(root + "/notes.txt") && exists(root + "/photos/a.jpg"));
}
GST_END_TEST;

GST_START_TEST(test_evict_by_age) {
  TempDir tmp;
  const std::string root = tmp.path();
  make_track(root, "old", 100);
  make_track(root, "recent", 100);
  set_last_used(root, "old", 7200);
  set_last_used(root, "recent", 60);
  // A temporary file of a killed writer, and one of a writer still going.
  const std::string recent = root + "/" + Cache::safe_name("recent");
  set_file(recent + "/.seg_5.AAAAAA", "stale");
  set_mtime(recent + "/.seg_5.AAAAAA", 2 * 3600);
  set_file(recent + "/.seg_6.BBBBBB", "fresh");

  Cache cache(config(root, 0, 3600));
  std::string error;
  fail_unless(cache.open_track("me", error), "%s", error.c_str());
  fail_unless_equals_int(cache.evict(), 1);
  fail_unless(!track_exists(root, "old"));
  fail_unless(track_exists(root, "recent"));
  fail_unless(track_exists(root, "me"));
  fail_unless(!exists(recent + "/.seg_5.AAAAAA"), "stale temporary file kept");
  fail_unless(exists(recent + "/.seg_6.BBBBBB"));
  fail_unless(!exists(recent + "/seg_5.bin"));

  // Opening a track marks it used now.
  set_last_used(root, "recent", 7200);
  {
    Cache user(config(root));
    fail_unless(user.open_track("recent", error), "%s", error.c_str());
  }
  fail_unless_equals_int(cache.evict(), 0);
  fail_unless(track_exists(root, "recent"));
}
GST_END_TEST;

// A track another process has open (its .lock held shared) stays.
GST_START_TEST(test_evict_skips_locked) {
  TempDir tmp;
  const std::string root = tmp.path();
  std::string error;
  auto holder = std::make_unique<Cache>(config(root));
  fail_unless(holder->open_track("busy", error), "%s", error.c_str());
  fail_unless(store(*holder, 0, make_body(8, 4000)));
  set_last_used(root, "busy", 100000);

  Cache cache(config(root, 1, 60));
  fail_unless(cache.open_track("me", error), "%s", error.c_str());
  fail_unless_equals_int(cache.evict(), 0);
  fail_unless(track_exists(root, "busy"));
  GBytes *bytes = holder->lookup(0);
  fail_unless(bytes != nullptr && bytes_equal(bytes, make_body(8, 4000)));
  g_bytes_unref(bytes);

  holder.reset();
  set_last_used(root, "busy", 100000);
  fail_unless_equals_int(cache.evict(), 1);
  fail_unless(!track_exists(root, "busy"));

  // The track comes back when opened again.
  Cache again(config(root));
  fail_unless(again.open_track("busy", error), "%s", error.c_str());
  fail_unless(again.lookup(0) == nullptr);
  fail_unless(store(again, 0, make_body(8, 10)));
}
GST_END_TEST;

GST_START_TEST(test_unwritable_dir) {
  TempDir tmp;
  std::string error;
  // Under a regular file: fails for root too.
  set_file(tmp.path() + "/file", "x");
  const std::string under_file = tmp.path() + "/file/sub";
  Cache cache(config(under_file));
  fail_unless(!cache.open_track("v", error));
  fail_unless(error.find(under_file) != std::string::npos, "message: %s", error.c_str());
  fail_unless(error.find(g_strerror(ENOTDIR)) != std::string::npos, "message: %s", error.c_str());
  fail_unless(cache.track_dir().empty());
  fail_unless(cache.lookup(0) == nullptr);
  fail_unless_equals_int(cache.evict(), 0);

  // A folder without write permission: root ignores it.
  if (geteuid() != 0) {
    const std::string ro = tmp.path() + "/ro";
    fail_unless(g_mkdir(ro.c_str(), 0500) == 0);
    Cache ro_cache(config(ro + "/cache"));
    error.clear();
    fail_unless(!ro_cache.open_track("v", error));
    fail_unless(error.find(ro) != std::string::npos, "message: %s", error.c_str());
    fail_unless(error.find(g_strerror(EACCES)) != std::string::npos, "message: %s", error.c_str());
  }
}
GST_END_TEST;

// A write error (here EFBIG from a file size limit, as ENOSPC would be on a
// full disk) fails append with a message and leaves nothing behind.
GST_START_TEST(test_write_error) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  std::unique_ptr<SegmentWriter> w = cache.begin(0, error);
  fail_unless(w != nullptr, "%s", error.c_str());

  struct rlimit saved;
  fail_unless(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  struct sigaction ignore = {}, old_action = {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGXFSZ, &ignore, &old_action);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  fail_unless(setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string body = make_body(6, 10000);
  const bool ok = w->append(body.data(), body.size(), error);
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &old_action, nullptr);

  fail_unless(!ok, "append past the limit succeeded");
  fail_unless(error.find(cache.track_dir()) != std::string::npos, "message: %s", error.c_str());
  fail_unless_equals_int(count_temp_files(cache.track_dir()), 0);
  SegmentInfo info;
  info.size = int64_t(body.size());
  fail_unless(!w->commit(info, error));
  fail_unless(!exists(cache.track_dir() + "/seg_0.bin"));
}
GST_END_TEST;

namespace {

std::string file_text(const std::string &path) {
  gchar *text = nullptr;
  gsize len = 0;
  fail_unless(g_file_get_contents(path.c_str(), &text, &len, nullptr), "cannot read %s",
              path.c_str());
  std::string out(text, len);
  g_free(text);
  return out;
}

}  // namespace

// Every cached segment carries its SHA-256, verified on every read: bytes
// flipped in place (same size), or a segment swapped for another with its
// size fixed in the meta, are removed and missed, never returned.
GST_START_TEST(test_checksum) {
  TempDir tmp;
  Cache cache(config(tmp.path()));
  std::string error;
  fail_unless(cache.open_track("v", error), "%s", error.c_str());
  const std::string b1 = make_body(1, 5000), b2 = make_body(2, 6000);
  fail_unless(store(cache, 1, b1));
  fail_unless(store(cache, 2, b2));
  const std::string dir = cache.track_dir();
  fail_unless(file_text(dir + "/seg_1.meta").find("sha256=") != std::string::npos);

  // Same-size corruption.
  std::string flipped = b1;
  flipped[2500] = char(flipped[2500] ^ 0x40);
  set_file(dir + "/seg_1.bin", flipped);
  fail_unless(cache.contains(1), "the sizes still agree");
  fail_unless(cache.lookup(1) == nullptr, "corrupted bytes returned");
  fail_unless(!exists(dir + "/seg_1.bin") && !exists(dir + "/seg_1.meta"), "bad entry kept");

  // Segment 2's file replaced by segment 1's bytes, the meta's size fixed.
  fail_unless(store(cache, 1, b1));
  set_file(dir + "/seg_2.bin", b1);
  std::string meta = file_text(dir + "/seg_2.meta");
  size_t at = meta.find("size=6000");
  fail_unless(at != std::string::npos);
  meta.replace(at, 9, "size=5000");
  set_file(dir + "/seg_2.meta", meta);
  fail_unless(cache.lookup(2) == nullptr, "a swapped segment returned");
  GBytes *ok = cache.lookup(1);
  fail_unless(ok != nullptr && bytes_equal(ok, b1));
  g_bytes_unref(ok);

  // An entry without a checksum (edited meta) is not trusted.
  fail_unless(store(cache, 2, b2));
  meta = file_text(dir + "/seg_2.meta");
  at = meta.find("sha256=");
  set_file(dir + "/seg_2.meta", meta.substr(0, at));
  fail_unless(cache.lookup(2) == nullptr);
}
GST_END_TEST;

// What a kill -9 leaves (a temporary file nobody writes any more) is
// removed when the track is opened; a live writer's file stays.
GST_START_TEST(test_dead_temps_removed) {
  TempDir tmp;
  std::string error;
  Cache writer(config(tmp.path()));
  fail_unless(writer.open_track("v", error), "%s", error.c_str());
  std::unique_ptr<SegmentWriter> live = writer.begin(3, error);
  fail_unless(live != nullptr, "%s", error.c_str());
  fail_unless(live->append("abc", 3, error));
  const std::string dir = writer.track_dir();
  set_file(dir + "/.seg_7.bin.Zq81xA", "half a segment");  // its writer was killed
  set_file(dir + "/.seg_7.meta.Zq81xB", "size=");
  fail_unless_equals_int(count_temp_files(dir), 3);

  Cache reader(config(tmp.path()));
  fail_unless(reader.open_track("v", error), "%s", error.c_str());
  fail_unless_equals_int(count_temp_files(dir), 1);  // the live one
  SegmentInfo info;
  info.size = 3;
  fail_unless(live->commit(info, error), "%s", error.c_str());
  GBytes *got = reader.lookup(3);
  fail_unless(got != nullptr && bytes_equal(got, "abc"));
  g_bytes_unref(got);
  fail_unless_equals_int(count_temp_files(dir), 0);
}
GST_END_TEST;

// The cache worker runs its tasks in order, on its own thread (never the
// caller's: fsync must not stall the HTTP thread), and finishes what is
// queued before it is destroyed.
GST_START_TEST(test_cache_worker) {
  std::vector<int> order;
  GThread *caller = g_thread_self();
  bool on_caller = false;
  {
    segdl::CacheWorker worker;
    for (int i = 0; i < 100; i++)
      worker.run([&order, &on_caller, caller, i] {
        order.push_back(i);
        on_caller |= g_thread_self() == caller;
      });
  }
  fail_unless_equals_int(int(order.size()), 100);
  for (int i = 0; i < 100; i++) fail_unless_equals_int(order[size_t(i)], i);
  fail_if(on_caller, "a task ran on the caller's thread");
}
GST_END_TEST;

static Suite *cache_suite(void) {
  Suite *s = suite_create("segdl-cache");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_safe_name);
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_size_mismatch);
  tcase_add_test(tc, test_writer_destroyed);
  tcase_add_test(tc, test_invalid_entries_removed);
  tcase_add_test(tc, test_killed_between_renames);
  tcase_add_test(tc, test_track_meta);
  tcase_add_test(tc, test_two_writers);
  tcase_add_test(tc, test_evict_by_size);
  tcase_add_test(tc, test_evict_by_age);
  tcase_add_test(tc, test_evict_skips_locked);
  tcase_add_test(tc, test_unwritable_dir);
  tcase_add_test(tc, test_write_error);
  tcase_add_test(tc, test_checksum);
  tcase_add_test(tc, test_dead_temps_removed);
  tcase_add_test(tc, test_cache_worker);
  return s;
}

GST_CHECK_MAIN(cache);
