// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — fixtures made by ffmpeg, the way real backends cut and
 * encode: one deterministic source signal, encoded once, cut with
 * `ffmpeg -f segment` (timestamps kept or reset), plus the unsegmented file
 * of the same encode as the reference. Made at test time in a temp dir that
 * the fixture removes.
 */
#pragma once

#include "../harness.h"

#include <glib/gstdio.h>

#include <string>
#include <vector>

namespace segdl::test::ff {

inline bool have_ffmpeg() {
  g_autofree gchar *ff = g_find_program_in_path("ffmpeg");
  return ff != nullptr;
}

// Runs ffmpeg with `args` (after -hide_banner -loglevel error -y); fails the
// test with its output if it fails.
inline void run_ffmpeg(const std::vector<std::string> &args) {
  std::vector<const char *> argv = {"ffmpeg",    "-nostdin", "-hide_banner",
                                    "-loglevel", "error",    "-y"};
  for (const std::string &a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  gchar *out = nullptr, *err = nullptr;
  gint status = 0;
  GError *error = nullptr;
  gboolean ok = g_spawn_sync(nullptr, const_cast<gchar **>(argv.data()), nullptr,
                             G_SPAWN_SEARCH_PATH, nullptr, nullptr, &out, &err, &status, &error);
  std::string why = error ? error->message : (err ? err : "");
  bool success = ok && g_spawn_check_wait_status(status, nullptr);
  g_free(out);
  g_free(err);
  g_clear_error(&error);
  fail_unless(success, "ffmpeg failed: %s", why.c_str());
}

inline Bytes read_file(const std::string &path) {
  gchar *data = nullptr;
  gsize size = 0;
  fail_unless(g_file_get_contents(path.c_str(), &data, &size, nullptr), "cannot read %s",
              path.c_str());
  Bytes b(reinterpret_cast<uint8_t *>(data), reinterpret_cast<uint8_t *>(data) + size);
  g_free(data);
  return b;
}

inline bool exists(const std::string &path) {
  return g_file_test(path.c_str(), G_FILE_TEST_EXISTS);
}

// One form: how ffmpeg encodes and cuts it.
struct Form {
  const char *name;
  std::vector<std::string> codec;  // encoder options
  const char *segment_format;      // -segment_format
  const char *ext;
  const char *mime;
  bool reset;      // -reset_timestamps 1
  double seconds;  // source length
  int rate;        // source rate (mono)
  bool pcm_exact;  // decoded PCM sample-exact against the unsegmented file
};

// A temp dir with the source, the unsegmented encode and the segments.
class Fixture {
 public:
  explicit Fixture(const Form &f) : form_(f) {
    GError *err = nullptr;
    gchar *dir = g_dir_make_tmp("segdl-ff-XXXXXX", &err);
    fail_unless(dir != nullptr, "tmp dir: %s", err ? err->message : "?");
    dir_ = dir;
    g_free(dir);
    make();
  }
  ~Fixture() { remove_all(); }
  Fixture(const Fixture &) = delete;

  const std::string &dir() const { return dir_; }
  std::string whole() const { return dir_ + "/whole." + form_.ext; }
  std::string source() const { return dir_ + "/source.wav"; }
  // The same encode in another container (`ext`: "aac" for ADTS), made on
  // demand.
  std::string whole_as(const std::string &ext) const {
    std::string path = dir_ + "/whole-as." + ext;
    std::vector<std::string> args = {"-i", source()};
    args.insert(args.end(), form_.codec.begin(), form_.codec.end());
    args.push_back(path);
    run_ffmpeg(args);
    return path;
  }
  const std::vector<Bytes> &segments() const { return segments_; }

  server::Track track() const {
    server::Track t;
    t.segments = segments_;
    t.mime_type = form_.mime;
    t.first_segment_duration = 1.5;
    t.segment_duration = 3.0;
    return t;
  }

 private:
  // A chirp with a little harmonic: no two frames alike, deterministic.
  void make() {
    char expr[128];
    g_snprintf(expr, sizeof expr, "0.4*sin(2*PI*(220+60*t)*t)+0.1*sin(2*PI*1250*t)");
    std::string lavfi = std::string("aevalsrc=") + expr + ":s=" + std::to_string(form_.rate) +
                        ":d=" + std::to_string(form_.seconds);
    run_ffmpeg({"-f", "lavfi", "-i", lavfi, "-ac", "1", source()});
    std::vector<std::string> whole_args = {"-i", source()};
    whole_args.insert(whole_args.end(), form_.codec.begin(), form_.codec.end());
    whole_args.push_back(whole());
    run_ffmpeg(whole_args);
    std::vector<std::string> seg_args = {"-i", source()};
    seg_args.insert(seg_args.end(), form_.codec.begin(), form_.codec.end());
    std::string times = "1.5";
    for (double t = 4.5; t < form_.seconds; t += 3.0) times += "," + std::to_string(t);
    for (const char *a : {"-f", "segment", "-segment_times"}) seg_args.push_back(a);
    seg_args.push_back(times);
    seg_args.push_back("-segment_format");
    seg_args.push_back(form_.segment_format);
    if (form_.reset) {
      seg_args.push_back("-reset_timestamps");
      seg_args.push_back("1");
    }
    seg_args.push_back(dir_ + "/seg_%d." + form_.ext);
    run_ffmpeg(seg_args);
    for (int i = 0;; i++) {
      std::string p = dir_ + "/seg_" + std::to_string(i) + "." + form_.ext;
      if (!exists(p)) break;
      segments_.push_back(read_file(p));
    }
    fail_unless(segments_.size() >= 2, "ffmpeg made %zu segments", segments_.size());
  }

  void remove_all() {
    GDir *d = g_dir_open(dir_.c_str(), 0, nullptr);
    if (d) {
      while (const gchar *name = g_dir_read_name(d)) g_unlink((dir_ + "/" + name).c_str());
      g_dir_close(d);
    }
    g_rmdir(dir_.c_str());
  }

  Form form_;
  std::string dir_;
  std::vector<Bytes> segments_;
};

}  // namespace segdl::test::ff
