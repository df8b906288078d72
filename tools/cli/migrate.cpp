// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — reusing an old-tools download dir (see migrate.h). */
#include "migrate.h"

#include "segdl/cache.h"
#include "segdl/mp4.h"

#include <gst/gst.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <map>

namespace segdl::cli {

namespace {

constexpr GstClockTime kValidateTimeout = 30 * GST_SECOND;
// Frames must reach the container's duration within this (AAC frame, ms rounding).
constexpr GstClockTime kDurationSlack = 100 * GST_MSECOND;

bool plain_name(const std::string &id) {
  if (id.empty() || id[0] == '.' || id.size() > 255) return false;
  for (char c : id)
    if (!(g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

// "segment_12.m4a" -> 12; -1 for any other name.
int64_t old_segment_index(const char *name) {
  if (!g_str_has_prefix(name, "segment_")) return -1;
  const char *digits = name + strlen("segment_");
  char *end = nullptr;
  const long long n = g_ascii_strtoll(digits, &end, 10);
  if (end == digits || !g_ascii_isdigit(*digits) || *end != '.' || n < 0 || n >= 100000) return -1;
  for (const char *p = end + 1; *p; p++)
    if (!g_ascii_isalnum(*p)) return -1;
  return end[1] ? n : -1;
}

std::string codec_key(const GstCaps *caps) {
  if (!caps || gst_caps_get_size(caps) == 0) return "";
  const GstStructure *s = gst_caps_get_structure(caps, 0);
  std::string key = gst_structure_get_name(s);
  int v = 0;
  if (gst_structure_get_int(s, "mpegversion", &v)) key += "," + std::to_string(v == 2 ? 4 : v);
  return key;
}

struct Probe {
  GstClockTime end = 0;  // largest pts + duration seen
  guint64 frames = 0;
};

GstPadProbeReturn count_frames(GstPad *, GstPadProbeInfo *info, gpointer data) noexcept {
  Probe *p = static_cast<Probe *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  p->frames++;
  if (GST_BUFFER_PTS_IS_VALID(buf)) {
    GstClockTime end = GST_BUFFER_PTS(buf);
    if (GST_BUFFER_DURATION_IS_VALID(buf)) end += GST_BUFFER_DURATION(buf);
    p->end = std::max(p->end, end);
  }
  return GST_PAD_PROBE_OK;
}

// Copies one file into the cache (temporary name, fsync, rename).
bool import_file(Cache &cache, int64_t index, const std::string &path, std::string &error) {
  GError *err = nullptr;
  GMappedFile *map = g_mapped_file_new(path.c_str(), FALSE, &err);
  if (!map) {
    error = err ? err->message : "cannot read";
    g_clear_error(&err);
    return false;
  }
  std::unique_ptr<SegmentWriter> w = cache.begin(index, error);
  const size_t size = g_mapped_file_get_length(map);
  bool ok = w && (size == 0 || w->append(g_mapped_file_get_contents(map), size, error));
  if (ok) {
    SegmentInfo info;
    info.size = int64_t(size);
    ok = w->commit(info, error);
  }
  g_mapped_file_unref(map);
  return ok;
}

// An MP4 (ftyp first) must hold its whole moov and end with its last box.
// Checked before parsebin: qtdemux failing on a file with no moov while
// parsebin is still plugging it may post its ERROR after parsebin dropped
// it, and then nothing ends the pipeline (a 30 s wait, then "not read").
bool mp4_whole(const std::string &path, std::string &error) {
  GError *err = nullptr;
  GMappedFile *map = g_mapped_file_new(path.c_str(), FALSE, &err);
  if (!map) {
    error = err ? err->message : "cannot read";
    g_clear_error(&err);
    return false;
  }
  const auto *data = reinterpret_cast<const uint8_t *>(g_mapped_file_get_contents(map));
  Mp4Layout layout;
  const bool mp4 =
      data && scan_mp4_layout(data, g_mapped_file_get_length(map), layout) && layout.has_ftyp;
  g_mapped_file_unref(map);
  if (!mp4 || (layout.has_moov && layout.complete)) return true;  // not MP4: parsebin decides
  error = layout.has_moov ? "cut short (an MP4 whose last box is not whole)"
                          : "cut short (an MP4 without its moov)";
  return false;
}

}  // namespace

bool validate_segment_file(const std::string &path, std::string &codec, std::string &error) {
  GError *err = nullptr;
  if (!mp4_whole(path, error)) return false;
  GstElement *pipe =
      gst_parse_launch("filesrc name=f ! parsebin ! fakesink name=s sync=false", &err);
  if (!pipe) {
    error = std::string("cannot check it: ") + (err ? err->message : "no parsebin");
    g_clear_error(&err);
    return false;
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "f");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "s");
  g_object_set(src, "location", path.c_str(), nullptr);
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  Probe probe;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_frames, &probe, nullptr);
  gst_element_set_state(pipe, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipe);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, kValidateTimeout,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool ok = false;
  if (!msg) {
    error = "not read to its end in 30 s";
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    gst_message_parse_error(msg, &err, nullptr);
    error = err->message;
    g_clear_error(&err);
  } else {
    GstCaps *caps = gst_pad_get_current_caps(pad);
    codec = codec_key(caps);
    if (caps) gst_caps_unref(caps);
    gint64 duration = -1;
    const bool known = gst_element_query_duration(pipe, GST_FORMAT_TIME, &duration) && duration > 0;
    if (probe.frames == 0 || codec.empty())
      error = "no audio frames in it";
    else if (known && probe.end + kDurationSlack < GstClockTime(duration))
      error = "cut short (frames end before the duration its header gives)";
    else
      ok = true;
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipe, GST_STATE_NULL);
  gst_object_unref(pad);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(pipe);
  return ok;
}

MigrationResult migrate_old_download_dir(const std::string &dir, const std::string &id,
                                         Progress &progress) {
  MigrationResult r;
  if (!plain_name(id)) return r;
  gchar *old_dir = g_build_filename(dir.c_str(), id.c_str(), nullptr);
  const std::string old = old_dir;
  g_free(old_dir);
  GDir *d = g_dir_open(old.c_str(), 0, nullptr);
  if (!d) return r;
  std::map<int64_t, std::string> files;
  while (const char *name = g_dir_read_name(d)) {
    const int64_t n = old_segment_index(name);
    if (n >= 0 && !files.count(n)) files[n] = old + "/" + name;
  }
  g_dir_close(d);
  r.found = int(files.size());
  if (files.empty()) return r;

  CacheConfig cfg;
  cfg.dir = dir;
  Cache cache(cfg);
  std::string error;
  if (!cache.open_track(id, error)) {
    progress.warning("cannot reuse the old files in " + old + ": " + error);
    return r;
  }
  std::string expected, rejected;
  for (const auto &f : files) {
    if (cache.contains(f.first)) {
      r.present++;
      continue;
    }
    std::string codec, why;
    bool ok = validate_segment_file(f.second, codec, why);
    if (ok && !expected.empty() && codec != expected) {
      ok = false;
      why = "not the codec of the other segments (" + codec + ", not " + expected + ")";
    }
    if (ok && !import_file(cache, f.first, f.second, why)) ok = false;
    if (!ok) {
      r.rejected++;
      rejected += "; " + f.second + ": " + why;
      continue;
    }
    if (expected.empty()) expected = codec;
    r.imported++;
  }
  if (r.imported || r.rejected)
    progress.info("reused " + std::to_string(r.imported) + " of " + std::to_string(r.found) +
                  " segment files from " + old + " (left there untouched)" +
                  (r.rejected ? ", downloading the others again" + rejected : std::string()));
  return r;
}

}  // namespace segdl::cli
