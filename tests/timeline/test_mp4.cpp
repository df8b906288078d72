// SPDX-License-Identifier: LGPL-2.1-or-later
/* Tests of the MP4 reader (gst/segdl/mp4.*): hand-built files with known
 * values and hostile variants (truncated, oversize, lying sizes, deep
 * nesting, tables that disagree), then real files made at test time by
 * ffmpeg and by GStreamer's muxers, every parsed value checked against what
 * ffprobe reports for the same file, and every sample against the codec
 * parsers of gst/segdl/codec.*. */
#include <gst/check/gstcheck.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "segdl/codec.h"
#include "segdl/mp4.h"
#include "mp4build.h"

using namespace segdl;

using namespace segdl::mp4build;

namespace {}  // namespace

GST_START_TEST(handmade_values) {
  for (int version = 0; version <= 1; version++) {
    for (bool first : {true, false}) {
      Spec s;
      s.version = version;
      s.moov_first = first;
      Bytes b = make_m4a(s);
      Mp4File f = parse_ok(b);
      fail_unless(f.layout.has_ftyp && f.layout.major_brand == fourcc("M4A "));
      fail_unless(f.layout.moov_before_mdat == first);
      fail_unless(f.layout.complete);
      ck_assert_int_eq(f.movie_timescale, 1000);
      ck_assert_int_eq(f.tracks.size(), 1);
      ck_assert_int_eq(f.audio_track, 0);
      const Mp4Track &t = f.tracks[0];
      ck_assert_int_eq(t.track_id, 1);
      ck_assert_int_eq(t.timescale, 44100);
      ck_assert_int_eq(t.media_duration, 5120);
      fail_unless(t.sample_entry == fourcc("mp4a"));
      ck_assert_int_eq(t.channels, 2);
      ck_assert_int_eq(t.entry_sample_rate, 44100);
      ck_assert_int_eq(t.object_type_indication, 0x40);
      fail_unless(t.codec_data == Bytes({0x12, 0x10}));
      ck_assert_int_eq(t.samples.size(), 5);
      ck_assert_int_eq(t.samples_duration, 5120);
      uint64_t off = first ? f.layout.mdat_offset + 8 : 8 + find_box(b, "mdat");
      for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(t.samples[i].offset, off);
        ck_assert_int_eq(t.samples[i].size, s.sizes[i]);
        ck_assert_int_eq(t.samples[i].duration, 1024);
        ck_assert_int_eq(b[off], i);  // the payload byte of sample i
        off += s.sizes[i];
      }
      ck_assert_int_eq(t.groups.size(), 1);
      Mp4Presentation p;
      std::string err;
      fail_unless(mp4_presentation(f, t, b.data(), b.size(), p, &err), "%s", err.c_str());
      fail_unless(p.consistent, "%s", p.inconsistency.c_str());
      fail_unless(p.has_roll && p.roll_distance == -1);
      fail_if(p.has_edits);
      ck_assert_int_eq(p.duration, 5120);
      ck_assert_int_eq(p.end_trim, 0);
      ck_assert_int_eq(p.tolerance, 45);
    }
  }
}
GST_END_TEST;

GST_START_TEST(handmade_compact_sizes) {
  for (int field : {4, 8, 16}) {
    Spec s;
    s.stz2_field = field;
    s.sizes = field == 4 ? std::vector<uint32_t>{1, 15, 7, 2, 9}
                         : std::vector<uint32_t>{200, 3, 17, 255, 1};
    if (field == 16) s.sizes[1] = 40000;
    Bytes b = make_m4a(s);
    Mp4File f = parse_ok(b);
    const Mp4Track &t = f.tracks[0];
    ck_assert_int_eq(t.samples.size(), 5);
    uint64_t off = t.samples[0].offset;
    for (size_t i = 0; i < 5; i++) {
      ck_assert_int_eq(t.samples[i].size, s.sizes[i]);
      ck_assert_int_eq(t.samples[i].offset, off);
      off += s.sizes[i];
    }
    Mp4Presentation p;
    fail_unless(mp4_presentation(f, t, b.data(), b.size(), p) && p.consistent);
    put32(b, find_box(b, "stz2") + 12, field == 4 ? 0x00000003 : 0x00000005);  // field size 3/5
    parse_refused(b, "field size");
  }
}
GST_END_TEST;

GST_START_TEST(handmade_itunes_gapless) {
  for (bool qt : {false, true}) {
    Spec s;
    s.qt_meta = qt;
    s.itunsmpb = " 00000000 00000840 000001CA 00000000003F31F6 00000000 00000000";
    Mp4File f = parse_ok(make_m4a(s));
    fail_unless(f.gapless.present);
    ck_assert_int_eq(f.gapless.priming, 2112);
    ck_assert_int_eq(f.gapless.padding, 0x1ca);
    ck_assert_int_eq(f.gapless.original_samples, 0x3f31f6);
  }
  // Malformed text is no tag (and no error); no tag at all neither.
  for (const char *bad : {" 00000000 0000084G 000001CA 0", " 0 1", "",
                          " 00000000 00000840 000001CA 00000000003F31F6000"}) {
    Spec s;
    s.itunsmpb = bad;
    fail_if(parse_ok(make_m4a(s)).gapless.present, "accepted \"%s\"", bad);
  }
  fail_if(parse_ok(make_m4a(Spec())).gapless.present);
}
GST_END_TEST;

GST_START_TEST(handmade_edit_lists) {
  for (int version = 0; version <= 1; version++) {
    Spec s;
    s.version = version;
    // 2 s empty, then from media time 1024 for 50 ms.
    s.edits = {{2000, -1, 1, 0}, {50, 1024, 1, 0}};
    Bytes b = make_m4a(s);
    Mp4File f = parse_ok(b);
    const Mp4Track &t = f.tracks[0];
    ck_assert_int_eq(t.edits.size(), 2);
    ck_assert_int_eq(t.edits[0].media_time, -1);
    Mp4Presentation p;
    fail_unless(mp4_presentation(f, t, b.data(), b.size(), p));
    fail_unless(p.has_edits && p.rate_ok && !p.extra_edits);
    ck_assert_int_eq(p.empty_offset, 88200);
    ck_assert_int_eq(p.start_trim, 1024);
    ck_assert_int_eq(p.duration, 2205);
    ck_assert_int_eq(p.end_trim, 5120 - 1024 - 2205);
  }
  Spec s;
  s.edits = {{0, 2048, 1, 0}};  // duration 0: to the end of the media
  Bytes b = make_m4a(s);
  Mp4File f = parse_ok(b);
  Mp4Presentation p;
  fail_unless(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p));
  ck_assert_int_eq(p.duration, 5120 - 2048);
  ck_assert_int_eq(p.end_trim, 0);

  // Within a movie tick (45 media ticks) of the table's end: the end.
  s.edits = {{116, 0, 1, 0}};  // 116 ms = 5116 ticks, 4 short of 5120
  b = make_m4a(s);
  f = parse_ok(b);
  fail_unless(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p));
  ck_assert_int_eq(p.edit_duration, 5116);
  ck_assert_int_eq(p.duration, 5120);
  ck_assert_int_eq(p.end_trim, 0);
  s.edits = {{115, 0, 1, 0}};  // 5072: 48 short, a real trim
  b = make_m4a(s);
  f = parse_ok(b);
  fail_unless(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p));
  ck_assert_int_eq(p.duration, 5072);
  ck_assert_int_eq(p.end_trim, 48);

  s.edits = {{1000000, 0, 1, 0}};  // longer than the media: clamped, no end trim
  b = make_m4a(s);
  f = parse_ok(b);
  fail_unless(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p));
  ck_assert_int_eq(p.duration, 5120);
  ck_assert_int_eq(p.end_trim, 0);

  s.edits = {{10, 0, 0, 0}, {10, 100, 1, 0}};  // a dwell, then a second edit
  b = make_m4a(s);
  f = parse_ok(b);
  fail_unless(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p));
  fail_unless(!p.rate_ok && p.extra_edits);

  s.edits = {{10, 6000, 1, 0}};  // starts after the media's end
  b = make_m4a(s);
  f = parse_ok(b);
  std::string err;
  fail_if(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p, &err));
  fail_unless(err.find("after the media") != std::string::npos, "%s", err.c_str());

  s.edits = {{10, -2, 1, 0}};
  parse_refused(make_m4a(s), "media_time");
}
GST_END_TEST;

GST_START_TEST(samples_against_mdat) {
  Spec s;
  s.moov_first = false;
  Bytes b = make_m4a(s);
  Mp4File f = parse_ok(b);
  Mp4Presentation p;
  // The file cut in its mdat is no use (moov last), so cut a moov-first one.
  s.moov_first = true;
  b = make_m4a(s);
  f = parse_ok(b);
  Bytes cut(b.begin(), b.end() - 20);
  fail_unless(mp4_presentation(f, f.tracks[0], cut.data(), cut.size(), p));
  fail_if(p.consistent);
  fail_unless(p.inconsistency.find("sample 4") != std::string::npos &&
                  p.inconsistency.find("past the end") != std::string::npos,
              "%s", p.inconsistency.c_str());
  Mp4File g = parse_ok(cut);  // the moov alone is sound
  ck_assert_int_eq(g.tracks[0].samples.size(), 5);
  fail_if(g.layout.complete);

  // A chunk offset pointing into the moov.
  Bytes lying = b;
  size_t stco = find_box(lying, "stco");
  put32(lying, stco + 16, 20);
  f = parse_ok(lying);
  fail_unless(mp4_presentation(f, f.tracks[0], lying.data(), lying.size(), p));
  fail_unless(!p.consistent && p.inconsistency.find("outside every mdat") != std::string::npos,
              "%s", p.inconsistency.c_str());

  // With the moov last, a chunk offset past the mdat's end, into the moov.
  s.moov_first = false;
  lying = make_m4a(s);
  put32(lying, find_box(lying, "stco") + 16, uint32_t(find_box(lying, "moov") + 8));
  f = parse_ok(lying);
  fail_unless(mp4_presentation(f, f.tracks[0], lying.data(), lying.size(), p));
  fail_unless(!p.consistent && p.inconsistency.find("outside every mdat") != std::string::npos,
              "%s", p.inconsistency.c_str());
  s.moov_first = true;

  // Without data, the check is skipped.
  fail_unless(mp4_presentation(f, f.tracks[0], nullptr, 0, p) && p.consistent);
  ck_assert_int_eq(p.mdat_end, 0);

  // A track with no samples.
  s.sizes.clear();
  b = make_m4a(s);
  f = parse_ok(b);
  fail_unless(mp4_presentation(f, f.tracks[0], b.data(), b.size(), p));
  fail_unless(!p.consistent && p.inconsistency == "no samples");
}
GST_END_TEST;

GST_START_TEST(layout_of_heads) {
  for (bool first : {true, false}) {
    Spec s;
    s.moov_first = first;
    s.sizes.assign(100, 300);
    Bytes b = make_m4a(s);
    Mp4Layout whole;
    fail_unless(scan_mp4_layout(b.data(), b.size(), whole));
    fail_unless(whole.complete && whole.has_moov && whole.has_mdat);
    uint64_t moov_end = whole.moov_offset + whole.moov_size;
    for (size_t n = 0; n <= b.size(); n += (n < 200 ? 1 : 97)) {
      Mp4Layout l;
      fail_unless(scan_mp4_layout(b.data(), n, l), "prefix %zu refused", n);
      if (l.has_moov) {
        ck_assert_int_eq(l.need_bytes, moov_end);
      } else if (n >= 8) {
        // The moov is still to come, after what was seen.
        fail_unless(l.need_bytes > 0 && l.need_bytes <= whole.moov_offset, "prefix %zu", n);
      }
      Mp4File f;
      fail_unless(parse_mp4(b.data(), n, f) == (n >= moov_end), "prefix %zu", n);
    }
    if (!first) ck_assert_int_eq(whole.need_bytes, b.size());
  }
}
GST_END_TEST;

GST_START_TEST(hostile_boxes) {
  Spec s;
  Bytes good = make_m4a(s);

  // Not MP4 at all.
  Bytes html = str("<!DOCTYPE html><html><body>503</body></html>");
  Mp4Layout l;
  std::string err;
  fail_if(scan_mp4_layout(html.data(), html.size(), l, &err));
  fail_unless(err.find("not an MP4") != std::string::npos, "%s", err.c_str());
  parse_refused(html, "not an MP4");
  parse_refused(Bytes(), "no data");

  // A child claiming more than its parent holds.
  Bytes b = good;
  size_t stbl = find_box(b, "stbl");
  put32(b, stbl, 0x10000);
  parse_refused(b, "claims");
  // A parent lying the other way: trak smaller than its children.
  b = good;
  put32(b, find_box(b, "trak"), 8 + 4);
  parse_refused(b, "stray bytes");
  // Sizes below the header, and a largesize below 16.
  b = good;
  put32(b, find_box(b, "tkhd"), 4);
  parse_refused(b, "impossible size");
  b = good;
  size_t hdlr = find_box(b, "hdlr");
  put32(b, hdlr, 1);  // largesize from the next 8 bytes (0)
  parse_refused(b, "impossible size");
  // A last top-level box of size 0 runs to the end of the file.
  b = good;
  put32(b, find_box(b, "mdat"), 0);
  Mp4File zf = parse_ok(b);
  Mp4Presentation zp;
  fail_unless(mp4_presentation(zf, zf.tracks[0], b.data(), b.size(), zp) && zp.consistent);
}
GST_END_TEST;

GST_START_TEST(hostile_tables) {
  Spec s;
  Bytes good = make_m4a(s);
  // Table counts beyond what the box holds or beyond the limits.
  Bytes b = good;
  put32(b, find_box(b, "stsz") + 16, 6);  // 6 sizes, 5 stored
  parse_refused(b, "room");
  b = good;
  put32(b, find_box(b, "stsz") + 12, 4);           // constant size 4 ...
  put32(b, find_box(b, "stsz") + 16, 0x7fffffff);  // ... for 2^31 samples
  parse_refused(b, "too many");
  b = good;
  put32(b, find_box(b, "stts") + 16, 4);  // durations for 4 of 5
  parse_refused(b, "gives 4 durations");
  b = good;
  put32(b, find_box(b, "stts") + 16, 0xffffffff);
  parse_refused(b, "more samples");
  b = good;
  put32(b, find_box(b, "stsc") + 16, 2);  // the first run starts at chunk 2
  parse_refused(b, "chunk runs");
  b = good;
  put32(b, find_box(b, "stsc") + 20, 1);  // 1 sample a chunk: 3 chunks place 3 of 5
  parse_refused(b, "places 3 of 5");
  b = good;
  put32(b, find_box(b, "stco") + 12, 0x40000000);
  parse_refused(b, "too many");
  b = good;
  put32(b, find_box(b, "mdhd") + 20, 0);  // timescale 0
  parse_refused(b, "timescale 0");
  b = good;
  put32(b, find_box(b, "esds") + 12, 0x03ffffff);  // descriptor length past the box
  parse_refused(b, "descriptor");
}
GST_END_TEST;

GST_START_TEST(hostile_nesting_and_noise) {
  Spec s;
  Bytes good = make_m4a(s);
  // Nesting: 'wave' boxes inside one another past the depth limit.
  s.wave_depth = 40;
  parse_refused(make_m4a(s), "nested too deep");
  s.wave_depth = 3;
  fail_unless(parse_ok(make_m4a(s)).tracks[0].codec_data == Bytes({0x12, 0x10}));
  s.wave_depth = 0;

  // Every prefix and many corruptions of a valid file: never a crash or an
  // overread (the sanitizer build checks), and a refusal always says why.
  for (size_t n = 0; n < good.size(); n++) {
    Mp4File f;
    std::string why;
    if (!parse_mp4(good.data(), n, f, &why)) fail_if(why.empty(), "no reason at %zu", n);
  }
  guint32 seed = 7;
  for (int round = 0; round < 3000; round++) {
    Bytes m = good;
    for (int k = 0; k < 1 + round % 4; k++) {
      seed = seed * 1103515245 + 12345;
      m[(seed >> 8) % m.size()] = uint8_t(seed >> 24);
    }
    Mp4File f;
    std::string why;
    if (parse_mp4(m.data(), m.size(), f, &why) && f.audio_track >= 0) {
      Mp4Presentation p;
      mp4_presentation(f, f.tracks[size_t(f.audio_track)], m.data(), m.size(), p, &why);
    } else {
      fail_if(why.empty() && f.audio_track >= 0);
    }
  }
}
GST_END_TEST;

// ---------------------------------------------------------------- real files

namespace {

// A fresh folder for one test's fixtures, removed with its files.
struct TempDir {
  std::string path;
  TempDir() {
    gchar *p = g_dir_make_tmp("segdl-mp4-XXXXXX", nullptr);
    fail_unless(p != nullptr);
    path = p;
    g_free(p);
  }
  ~TempDir() {
    GDir *d = g_dir_open(path.c_str(), 0, nullptr);
    while (const char *name = d ? g_dir_read_name(d) : nullptr)
      g_remove((path + "/" + name).c_str());
    if (d) g_dir_close(d);
    g_rmdir(path.c_str());
  }
  std::string operator/(const char *name) const { return path + "/" + name; }
};

// Runs a command (bounded by timeout(1)); fails the test with its stderr
// unless it exits 0. Returns its stdout.
std::string run(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"timeout", "120"});
  std::vector<char *> args;
  for (std::string &a : argv) args.push_back(&a[0]);
  args.push_back(nullptr);
  gchar *out = nullptr, *err = nullptr;
  gint status = 0;
  GError *error = nullptr;
  gboolean ok = g_spawn_sync(nullptr, args.data(), nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr,
                             &out, &err, &status, &error);
  std::string o = out ? out : "", e = err ? err : (error ? error->message : "");
  g_free(out);
  g_free(err);
  if (error) g_error_free(error);
  fail_unless(ok && g_spawn_check_wait_status(status, nullptr), "%s %s failed: %s", argv[2].c_str(),
              argv.size() > 3 ? argv[3].c_str() : "", e.c_str());
  return o;
}

Bytes read_file(const std::string &path) {
  gchar *data = nullptr;
  gsize len = 0;
  fail_unless(g_file_get_contents(path.c_str(), &data, &len, nullptr), "cannot read %s",
              path.c_str());
  Bytes b(data, data + len);
  g_free(data);
  return b;
}

struct Packet {
  int64_t pts = 0, duration = 0, size = 0, pos = 0;
};

// What ffprobe says about a file's first audio stream.
struct Probe {
  std::string codec;
  int64_t timescale = 0;  // time_base denominator
  int64_t nb_frames = -1, duration_ts = -1;
  Bytes extradata;
  std::vector<Packet> packets;
};

int64_t member_int(JsonObject *o, const char *name) {
  JsonNode *n = json_object_get_member(o, name);
  fail_unless(n != nullptr && JSON_NODE_HOLDS_VALUE(n), "ffprobe gave no %s", name);
  if (json_node_get_value_type(n) == G_TYPE_STRING)
    return g_ascii_strtoll(json_node_get_string(n), nullptr, 10);
  return json_node_get_int(n);
}

// ffprobe's hex dump ("00000000: 1208 56e5 00   ..V..") back to bytes.
Bytes from_hexdump(const char *dump) {
  Bytes out;
  gchar **lines = g_strsplit(dump, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    std::string line = *l;
    if (line.size() < 10 || line[8] != ':') continue;
    // 8 columns of 4 hex digits; two spaces end them (then the ASCII).
    std::string hex = line.substr(10, 40);
    hex = hex.substr(0, hex.find("  "));
    std::string digits;
    for (char c : hex)
      if (g_ascii_isxdigit(c)) digits += c;
    for (size_t i = 0; i + 1 < digits.size(); i += 2)
      out.push_back(
          uint8_t(g_ascii_xdigit_value(digits[i]) << 4 | g_ascii_xdigit_value(digits[i + 1])));
  }
  g_strfreev(lines);
  return out;
}

Probe probe(const std::string &path) {
  std::string json = run({"ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=codec_name,time_base,nb_frames,duration_ts,extradata:"
                          "packet=pts,duration,size,pos",
                          "-show_data", "-of", "json", path});
  JsonParser *parser = json_parser_new();
  fail_unless(json_parser_load_from_data(parser, json.c_str(), -1, nullptr), "bad ffprobe JSON");
  JsonObject *root = json_node_get_object(json_parser_get_root(parser));
  Probe p;
  JsonArray *streams = json_object_get_array_member(root, "streams");
  fail_unless(streams && json_array_get_length(streams) == 1, "ffprobe found no audio stream");
  JsonObject *st = json_array_get_object_element(streams, 0);
  p.codec = json_object_get_string_member(st, "codec_name");
  const char *tb = json_object_get_string_member(st, "time_base");
  p.timescale = g_ascii_strtoll(strchr(tb, '/') + 1, nullptr, 10);
  if (json_object_has_member(st, "nb_frames")) p.nb_frames = member_int(st, "nb_frames");
  if (json_object_has_member(st, "duration_ts")) p.duration_ts = member_int(st, "duration_ts");
  if (json_object_has_member(st, "extradata"))
    p.extradata = from_hexdump(json_object_get_string_member(st, "extradata"));
  JsonArray *packets = json_object_get_array_member(root, "packets");
  for (guint i = 0; packets && i < json_array_get_length(packets); i++) {
    JsonObject *o = json_array_get_object_element(packets, i);
    Packet k;
    k.pts = member_int(o, "pts");
    k.duration = member_int(o, "duration");
    k.size = member_int(o, "size");
    k.pos = member_int(o, "pos");
    p.packets.push_back(k);
  }
  g_object_unref(parser);
  return p;
}

// One file parsed by us and by ffprobe.
struct Checked {
  Bytes data;
  Mp4File file;
  Mp4Track track;
  Mp4Presentation pres;
  Probe probe;
};

void check_codec(const Checked &c) {
  const Mp4Track &t = c.track;
  size_t n = t.samples.size();
  if (t.sample_entry == fourcc("mp4a") && t.object_type_indication == 0x40) {
    ck_assert_str_eq(c.probe.codec.c_str(), "aac");
    fail_unless(t.codec_data == c.probe.extradata, "codec_data differs from ffprobe's extradata");
    AacConfig ac;
    std::string err;
    fail_unless(parse_aac_config(t.codec_data.data(), t.codec_data.size(), ac, &err), "%s",
                err.c_str());
    ck_assert_int_eq(ac.sample_rate, t.timescale);
    // Every sample lasts a frame; the last may be shorter (an end trim in stts).
    for (size_t i = 0; i + 1 < n; i++) ck_assert_int_eq(t.samples[i].duration, ac.frame_length);
    ck_assert_int_le(t.samples[n - 1].duration, ac.frame_length);
  } else if (t.sample_entry == fourcc("Opus")) {
    ck_assert_str_eq(c.probe.codec.c_str(), "opus");
    OpusHead dops, head;
    std::string err;
    fail_unless(parse_opus_dops(t.codec_data.data(), t.codec_data.size(), dops, &err), "%s",
                err.c_str());
    fail_unless(parse_opus_head(c.probe.extradata.data(), c.probe.extradata.size(), head, &err),
                "%s", err.c_str());
    ck_assert_int_eq(dops.channels, head.channels);
    if (dops.byte_swapped) {
      // ffmpeg reads a little-endian dOps as big-endian: its values are ours swapped.
      ck_assert_int_eq(GUINT16_SWAP_LE_BE(dops.pre_skip), head.pre_skip);
      ck_assert_int_eq(GUINT32_SWAP_LE_BE(dops.input_rate), head.input_rate);
    } else {
      ck_assert_int_eq(dops.pre_skip, head.pre_skip);
      ck_assert_int_eq(dops.input_rate, head.input_rate);
    }
    ck_assert_int_eq(t.timescale, 48000);
    for (size_t i = 0; i < n; i++) {
      const Mp4Sample &s = t.samples[i];
      // The first and last samples may be shorter than their packet: a
      // trim in the sample table (GStreamer's pre-skip, ffmpeg's end).
      int samples = opus_packet_samples(c.data.data() + s.offset, s.size);
      if (i > 0 && i + 1 < n)
        ck_assert_int_eq(samples, s.duration);
      else
        fail_unless(samples > 0 && s.duration <= uint32_t(samples));
    }
  } else if (t.sample_entry == fourcc("fLaC")) {
    // dfLa holds metadata blocks: STREAMINFO's header, then what ffmpeg
    // calls the extradata.
    ck_assert_str_eq(c.probe.codec.c_str(), "flac");
    fail_unless(t.codec_data.size() >= 38 && (t.codec_data[0] & 0x7f) == 0);
    fail_unless(Bytes(t.codec_data.begin() + 4, t.codec_data.begin() + 38) == c.probe.extradata);
    const uint8_t *si = t.codec_data.data() + 4;
    ck_assert_int_eq(si[10] << 12 | si[11] << 4 | si[12] >> 4, t.timescale);
    uint32_t max_block = uint32_t(si[2] << 8 | si[3]);
    for (size_t i = 0; i < n; i++) fail_unless(t.samples[i].duration <= max_block);
  } else {
    fail_unless(t.object_type_indication == 0x6b || t.object_type_indication == 0x69 ||
                t.sample_entry == fourcc(".mp3"));
    ck_assert_str_eq(c.probe.codec.c_str(), "mp3");
    for (size_t i = 0; i < n; i++) {
      const Mp4Sample &s = t.samples[i];
      MpegAudioHeader h;
      fail_unless(parse_mpeg_audio_header(c.data.data() + s.offset, s.size, h));
      ck_assert_int_eq(h.samples, s.duration);
      ck_assert_int_eq(h.frame_size, s.size);
    }
  }
}

// Parses `path` and checks it against ffprobe: timescale, sample count and
// every sample's offset, size and duration, the first pts (empty edit minus
// start trim), codec_data, and each sample through the codec parsers.
Checked check_file(const std::string &path) {
  Checked c;
  c.data = read_file(path);
  std::string err;
  fail_unless(parse_mp4(c.data.data(), c.data.size(), c.file, &err), "%s: %s", path.c_str(),
              err.c_str());
  fail_unless(c.file.audio_track >= 0, "%s: no audio track", path.c_str());
  c.track = c.file.tracks[size_t(c.file.audio_track)];
  fail_unless(mp4_presentation(c.file, c.track, c.data.data(), c.data.size(), c.pres, &err),
              "%s: %s", path.c_str(), err.c_str());
  fail_unless(c.pres.consistent, "%s: %s", path.c_str(), c.pres.inconsistency.c_str());
  fail_unless(c.pres.rate_ok && !c.pres.extra_edits);
  c.probe = probe(path);
  ck_assert_int_eq(c.track.timescale, c.probe.timescale);
  ck_assert_int_eq(c.track.samples.size(), c.probe.nb_frames);
  ck_assert_int_eq(c.track.samples.size(), c.probe.packets.size());
  for (size_t i = 0; i < c.track.samples.size(); i++) {
    const Mp4Sample &s = c.track.samples[i];
    const Packet &k = c.probe.packets[i];
    // ffmpeg fits the last packet to the edit's end: its duration is the
    // edit's, not the sample table's (which is what we report).
    bool last_edited = c.pres.has_edits && i + 1 == c.track.samples.size();
    fail_unless(int64_t(s.offset) == k.pos && int64_t(s.size) == k.size &&
                    (int64_t(s.duration) == k.duration || last_edited),
                "%s sample %zu: ours (%" G_GUINT64_FORMAT ", %u, %u), ffprobe's (%" G_GINT64_FORMAT
                ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")",
                path.c_str(), i, s.offset, s.size, s.duration, k.pos, k.size, k.duration);
  }
  ck_assert_int_eq(c.probe.packets[0].pts, c.pres.empty_offset - c.pres.start_trim);
  check_codec(c);
  return c;
}

const char *const kSine44 = "sine=frequency=440:sample_rate=44100:duration=70";

std::vector<std::string> ffmpeg(std::initializer_list<std::string> args) {
  std::vector<std::string> v = {"ffmpeg", "-v", "error", "-nostdin", "-y"};
  v.insert(v.end(), args);
  return v;
}

}  // namespace

GST_START_TEST(ffmpeg_segments) {
  TempDir dir;
  for (bool reset : {false, true}) {
    std::vector<std::string> cmd = ffmpeg({"-f", "lavfi", "-i", kSine44, "-c:a", "aac", "-b:a",
                                           "96k", "-f", "segment", "-segment_time", "30"});
    if (reset) cmd.insert(cmd.end(), {"-reset_timestamps", "1"});
    cmd.push_back(dir / "seg%d.m4a");
    run(cmd);
    int64_t samples_before = 0;
    for (int k = 0; k < 3; k++) {
      std::string path = dir / ("seg" + std::to_string(k) + ".m4a").c_str();
      Checked c = check_file(path);
      // ffmpeg writes the mdat first, the moov at the end.
      fail_if(c.file.layout.moov_before_mdat);
      ck_assert_int_eq(c.file.layout.need_bytes, c.data.size());
      ck_assert_int_eq(c.track.timescale, 44100);
      ck_assert_int_eq(c.pres.start_trim, 0);  // -f segment drops the priming edit
      ck_assert_int_eq(c.pres.duration, c.pres.samples_duration);  // the edit ends with the table
      // The segment starts (as an empty edit) where the previous one ended,
      // to the millisecond the movie timescale holds; with reset, at 0.
      if (reset || k == 0) {
        ck_assert_int_eq(c.pres.empty_offset, 0);
      } else {
        fail_unless(std::abs(c.pres.empty_offset - samples_before) <= c.pres.tolerance,
                    "segment %d starts at %" G_GINT64_FORMAT ", expected %" G_GINT64_FORMAT, k,
                    c.pres.empty_offset, samples_before);
      }
      samples_before += c.pres.samples_duration;
      // Every sample a whole frame, but the very last: shorter in stts.
      uint32_t last = c.track.samples.back().duration;
      if (k < 2)
        ck_assert_int_eq(last, 1024);
      else
        fail_unless(last > 0 && last < 1024, "last sample lasts %u", last);
    }
    // The priming is no longer trimmed: 70 s and 1024 samples in all.
    ck_assert_int_eq(samples_before, 70 * 44100 + 1024);
  }
}
GST_END_TEST;

GST_START_TEST(ffmpeg_faststart_and_cut) {
  TempDir dir;
  run(ffmpeg(
      {"-f", "lavfi", "-i", kSine44, "-c:a", "aac", "-movflags", "+faststart", dir / "whole.m4a"}));
  Checked whole = check_file(dir / "whole.m4a");
  fail_unless(whole.file.layout.moov_before_mdat);
  ck_assert_int_eq(whole.file.layout.need_bytes,
                   whole.file.layout.moov_offset + whole.file.layout.moov_size);
  fail_unless(whole.file.layout.need_bytes < whole.data.size());
  fail_unless(whole.pres.has_edits);
  ck_assert_int_eq(whole.pres.start_trim, 1024);  // the AAC encoder's priming
  ck_assert_int_eq(whole.pres.duration, 70 * 44100);
  ck_assert_int_eq(whole.pres.duration, whole.probe.duration_ts);
  ck_assert_int_eq(whole.pres.end_trim, whole.pres.samples_duration - 1024 - 70 * 44100);

  // A segment cut out of it with -ss/-t -c copy starts inside a frame.
  run(ffmpeg({"-ss", "10", "-t", "30", "-i", dir / "whole.m4a", "-c", "copy", dir / "cut.m4a"}));
  Checked cut = check_file(dir / "cut.m4a");
  fail_unless(cut.pres.has_edits);
  fail_unless(cut.pres.start_trim > 0 && cut.pres.start_trim < 1024);
  // The edit, rounded to the movie's milliseconds, runs past the media by
  // a tick: ffprobe's duration is the edit's, ours the table's end.
  ck_assert_int_eq(cut.pres.edit_duration, cut.probe.duration_ts);
  ck_assert_int_eq(cut.pres.duration, cut.pres.samples_duration - cut.pres.start_trim);
  ck_assert_int_eq(cut.pres.end_trim, 0);
  fail_unless(std::abs(cut.pres.duration - 30 * 44100) <= 1024, "cut lasts %" G_GINT64_FORMAT,
              cut.pres.duration);
}
GST_END_TEST;

GST_START_TEST(ffmpeg_opus_in_mp4) {
  TempDir dir;
  run(ffmpeg({"-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000:duration=10", "-c:a",
              "libopus", dir / "opus.mp4"}));
  Checked c = check_file(dir / "opus.mp4");
  fail_unless(c.track.sample_entry == fourcc("Opus"));
  OpusHead dops;
  fail_unless(parse_opus_dops(c.track.codec_data.data(), c.track.codec_data.size(), dops));
  ck_assert_int_eq(dops.pre_skip, 312);
  ck_assert_int_eq(c.pres.start_trim, dops.pre_skip);  // ffmpeg writes the pre-skip as an edit
  fail_unless(c.pres.has_roll);
  ck_assert_int_eq(c.pres.roll_distance, -4);  // Opus wants 80 ms of pre-roll: 4 frames
}
GST_END_TEST;

GST_START_TEST(ffmpeg_flac_in_mp4) {
  TempDir dir;
  run(ffmpeg({"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=3", "-c:a",
              "flac", "-strict", "-2", dir / "flac.mp4"}));
  Checked c = check_file(dir / "flac.mp4");
  fail_unless(c.track.sample_entry == fourcc("fLaC"));
  ck_assert_int_eq(c.pres.samples_duration, 3 * 44100);
}
GST_END_TEST;

GST_START_TEST(gstreamer_muxers) {
  TempDir dir;
  struct Case {
    const char *file, *pipeline, *entry;
  } cases[] = {
      {"vo.m4a", "audio/x-raw,rate=44100,channels=2 ! voaacenc ! mp4mux", "mp4a"},
      {"av.mov", "audio/x-raw,rate=48000,channels=1 ! avenc_aac ! qtmux", "mp4a"},
      {"opus.mp4", "audio/x-raw,rate=48000,channels=2 ! opusenc ! mp4mux", "Opus"},
      {"mp3.mp4", "audio/x-raw,rate=44100,channels=2 ! lamemp3enc ! mp4mux", "mp4a"},
      {"mp3.mov", "audio/x-raw,rate=22050,channels=1 ! lamemp3enc ! qtmux", ".mp3"},
  };
  for (const Case &k : cases) {
    std::string launch = std::string("audiotestsrc num-buffers=200 ! ") + k.pipeline +
                         " ! filesink location=" + (dir / k.file);
    std::vector<std::string> argv = {"gst-launch-1.0", "-q"};
    gchar **words = g_strsplit(launch.c_str(), " ", -1);
    for (gchar **w = words; *w; w++) argv.push_back(*w);
    g_strfreev(words);
    run(argv);
    Checked c = check_file(dir / k.file);
    fail_unless(fourcc_name(c.track.sample_entry) == k.entry, "%s: entry %s", k.file,
                fourcc_name(c.track.sample_entry).c_str());
    fail_unless(c.file.layout.complete);
    // GStreamer's movie timescale is 1800: edits convert with rounding.
    ck_assert_int_eq(c.file.movie_timescale, 1800);
    // ... which the reading of edits absorbs: no end trim, the table's end.
    if (strcmp(k.file, "vo.m4a") == 0) ck_assert_int_eq(c.pres.edit_duration, 204796);
    ck_assert_int_eq(c.pres.end_trim, 0);
    ck_assert_int_eq(c.pres.duration, c.pres.samples_duration);
    if (c.track.sample_entry == fourcc("Opus")) {
      // mp4mux writes dOps little-endian and the pre-skip as a shorter
      // first sample, with no start trim in the edit.
      OpusHead dops;
      fail_unless(parse_opus_dops(c.track.codec_data.data(), c.track.codec_data.size(), dops));
      fail_unless(dops.byte_swapped);
      ck_assert_int_eq(dops.input_rate, 48000);
      ck_assert_int_eq(c.pres.start_trim, 0);
      ck_assert_int_eq(c.track.samples[0].duration, 960 - dops.pre_skip);
    }
  }
}
GST_END_TEST;

// The codec parsers on whole real streams: every MP3 frame and ADTS frame
// found where ffprobe finds it, the LAME delay where ffmpeg starts.
GST_START_TEST(ffmpeg_mp3_and_adts) {
  TempDir dir;
  for (const char *mode : {"cbr", "vbr"}) {
    std::string path = dir / (std::string(mode) + ".mp3").c_str();
    run(ffmpeg({"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=10", "-c:a",
                "libmp3lame", strcmp(mode, "cbr") == 0 ? "-b:a" : "-q:a",
                strcmp(mode, "cbr") == 0 ? "128k" : "4", path}));
    Bytes data = read_file(path);
    Mp3Start st;
    std::string err;
    fail_unless(parse_mp3_start(data.data(), data.size(), st, &err), "%s", err.c_str());
    fail_unless(st.id3_size > 10);  // ffmpeg writes an ID3v2 tag first
    fail_unless(st.info.kind ==
                (strcmp(mode, "cbr") == 0 ? MpegInfoFrame::Kind::Info : MpegInfoFrame::Kind::Xing));
    fail_unless(st.info.has_lame);
    // ffmpeg's tag CRC covers 190 bytes: only a frame that long can match.
    if (strcmp(mode, "cbr") == 0) fail_unless(st.info.lame_crc_ok);
    std::string start = run(
        {"ffprobe", "-v", "error", "-show_entries", "stream=start_time", "-of", "csv=p=0", path});
    // ffmpeg starts at the encoder delay plus the decoder's 529 samples.
    ck_assert_int_eq(st.info.encoder_delay + 529,
                     int(g_ascii_strtod(start.c_str(), nullptr) * 44100 + 0.5));
    fail_unless(st.info.encoder_padding > 0 && st.info.encoder_padding < 1152 * 2);
    Probe pr = probe(path);
    size_t pos = st.audio_offset, frames = 0;
    for (const Packet &k : pr.packets) {
      MpegAudioHeader h;
      fail_unless(pos < data.size() && parse_mpeg_audio_header(&data[pos], data.size() - pos, h),
                  "no frame at %zu", pos);
      ck_assert_int_eq(int64_t(pos), k.pos);
      ck_assert_int_eq(int64_t(h.frame_size), k.size);
      ck_assert_int_eq(h.samples, 1152);
      pos += h.frame_size;
      frames++;
    }
    ck_assert_int_eq(pos, data.size());
    ck_assert_int_eq(frames, st.info.frames);
  }

  std::string path = dir / "x.aac";
  run(ffmpeg({"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=5", "-c:a", "aac",
              "-f", "adts", path}));
  Bytes data = read_file(path);
  Probe pr = probe(path);
  size_t pos = 0;
  for (size_t i = 0; i < pr.packets.size(); i++) {
    AdtsHeader h;
    std::string err;
    fail_unless(pos < data.size() && parse_adts_header(&data[pos], data.size() - pos, h, &err),
                "frame %zu: %s", i, err.c_str());
    ck_assert_int_eq(h.sample_rate, 48000);
    ck_assert_int_eq(h.samples, 1024);
    ck_assert_int_eq(int64_t(pos), pr.packets[i].pos);
    ck_assert_int_eq(int64_t(h.frame_size), pr.packets[i].size);
    pos += h.frame_size;
  }
  ck_assert_int_eq(pos, data.size());
}
GST_END_TEST;

static Suite *mp4_suite(bool real_files) {
  Suite *s = suite_create("mp4");
  TCase *tc = tcase_create("handmade");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, handmade_values);
  tcase_add_test(tc, handmade_compact_sizes);
  tcase_add_test(tc, handmade_itunes_gapless);
  tcase_add_test(tc, handmade_edit_lists);
  tcase_add_test(tc, samples_against_mdat);
  tcase_add_test(tc, layout_of_heads);
  tcase_add_test(tc, hostile_boxes);
  tcase_add_test(tc, hostile_tables);
  tcase_add_test(tc, hostile_nesting_and_noise);
  if (real_files) {
    TCase *real = tcase_create("real-files");
    tcase_set_timeout(real, 240);
    suite_add_tcase(s, real);
    tcase_add_test(real, ffmpeg_segments);
    tcase_add_test(real, ffmpeg_faststart_and_cut);
    tcase_add_test(real, ffmpeg_opus_in_mp4);
    tcase_add_test(real, ffmpeg_flac_in_mp4);
    tcase_add_test(real, gstreamer_muxers);
    tcase_add_test(real, ffmpeg_mp3_and_adts);
  }
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  bool real = true;
  for (const char *tool : {"ffmpeg", "ffprobe", "gst-launch-1.0", "timeout"}) {
    gchar *found = g_find_program_in_path(tool);
    if (!found) {
      g_printerr("%s is not installed: the real-file tests cannot run\n", tool);
      real = false;
    }
    g_free(found);
  }
  int failed = gst_check_run_suite(mp4_suite(real), "mp4", __FILE__);
  // Without the tools, what ran passed but the suite is not whole: skipped.
  return failed ? 1 : real ? 0 : 77;
}
