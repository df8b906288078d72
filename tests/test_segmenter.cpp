// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — tests of the self-contained segment fixtures (tools/common/segmenter).
 *
 * For every codec × container pairing the timeline-join tests use: a 7.5 s
 * encode cut 1.5 s + 3 s gives three segment files, each parses on its own,
 * and their frames laid end to end are the frames of the unsegmented file,
 * byte for byte. Also: determinism, Reset vs Absolute timestamps, fragmented
 * MP4 split into byte ranges, decoding. A pairing whose elements are not
 * installed is reported as skipped (its cases are not added).
 */
#include <gst/check/gstcheck.h>

#include "common/segmenter.h"

#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

using segdl::media::Bytes;
using segdl::media::Codec;
using segdl::media::Container;
using segdl::media::Packets;
using segdl::media::ParsedFrames;
using segdl::media::TimestampMode;

namespace {

constexpr double kSeconds = 7.5;
constexpr double kFirst = 1.5;
constexpr double kSeg = 3.0;

struct Pairing {
  Codec codec;
  Container container;
};

// The pairings the timeline-join tests use.
const Pairing kPairings[] = {
    {Codec::Aac, Container::M4a},           {Codec::Aac, Container::M4aFaststart},
    {Codec::Aac, Container::Matroska},      {Codec::Aac, Container::Adts},
    {Codec::Aac, Container::FragmentedMp4}, {Codec::Opus, Container::WebM},
    {Codec::Opus, Container::Ogg},          {Codec::Vorbis, Container::Ogg},
    {Codec::Vorbis, Container::WebM},       {Codec::Mp3, Container::Mp3},
    {Codec::Mp3, Container::Matroska},
};

bool have(const char *factory) {
  GstElementFactory *f = gst_element_factory_find(factory);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

const char *demuxer(Container c) {
  switch (c) {
    case Container::M4a:
    case Container::M4aFaststart:
    case Container::FragmentedMp4:
      return "qtdemux";
    case Container::WebM:
    case Container::Matroska:
      return "matroskademux";
    case Container::Ogg:
      return "oggdemux";
    case Container::Adts:
      return "aacparse";
    case Container::Mp3:
      return "mpegaudioparse";
  }
  return "none";
}

const char *decoder(Codec c) {
  switch (c) {
    case Codec::Aac:
      return "avdec_aac";
    case Codec::Opus:
      return "opusdec";
    case Codec::Vorbis:
      return "vorbisdec";
    case Codec::Mp3:
      return "mpg123audiodec";
  }
  return "none";
}

bool usable(const Pairing &p) {
  return segdl::media::available(p.codec, p.container) && have("parsebin") &&
         have(demuxer(p.container));
}

// Encoding is the slow part: each codec is encoded once per process.
const Packets &packets(Codec codec) {
  static std::map<Codec, Packets> cache;
  auto it = cache.find(codec);
  if (it == cache.end()) {
    Packets p;
    std::string error;
    fail_unless(segdl::media::encode_packets(codec, kSeconds, p, error), "encode %s: %s",
                segdl::media::codec_name(codec), error.c_str());
    it = cache.emplace(codec, std::move(p)).first;
  }
  return it->second;
}

std::string label(const Pairing &p) {
  return std::string(segdl::media::codec_name(p.codec)) + "/" +
         segdl::media::container_name(p.container);
}

ParsedFrames parse(const Bytes &file, const std::string &what) {
  ParsedFrames f;
  std::string error;
  fail_unless(segdl::media::parse_frames(file, f, error), "%s: parse: %s", what.c_str(),
              error.c_str());
  fail_unless(f.caps != nullptr, "%s: no caps", what.c_str());
  fail_if(f.frames.empty(), "%s: no frames", what.c_str());
  return f;
}

Bytes whole(const Pairing &p) {
  Bytes out;
  std::string error;
  fail_unless(segdl::media::whole_file(packets(p.codec), p.container, out, error), "%s: %s",
              label(p).c_str(), error.c_str());
  return out;
}

std::vector<Bytes> segments(const Pairing &p, TimestampMode ts) {
  std::vector<Bytes> out;
  std::string error;
  fail_unless(
      segdl::media::segment_files(packets(p.codec), p.container, ts, kFirst, kSeg, out, error),
      "%s: %s", label(p).c_str(), error.c_str());
  return out;
}

// Opus pre-skip as the demuxers report it: a clipping meta of 312 samples
// on the first frame of every file whose timestamps start at 0 (Reset: all
// segments; Absolute: segment 0), and the end trim on the very last frame.
void check_opus_clipping(const Pairing &p, TimestampMode ts, const std::vector<Bytes> &segs) {
  const std::string name = label(p);
  for (size_t k = 0; k < segs.size(); k++) {
    ParsedFrames f = parse(segs[k], name);
    const uint64_t want = ts == TimestampMode::Reset || k == 0 ? 312 : 0;
    fail_unless_equals_uint64(f.frames.front().clip_start, want);
    for (size_t i = 1; i < f.frames.size(); i++)
      fail_unless_equals_uint64(f.frames[i].clip_start, 0);
    if (k + 1 == segs.size())
      fail_unless(f.frames.back().clip_end > 0, "%s: no end trim", name.c_str());
  }
}

// The property the timeline join relies on: frames of the segments, laid end
// to end, are the frames of the whole file (count, bytes, order).
void check_frames_preserved(const Pairing &p, TimestampMode ts) {
  const std::string name = label(p);
  const Packets &pk = packets(p.codec);
  ParsedFrames ref = parse(whole(p), name + " whole");
  fail_unless_equals_int(ref.frames.size(), pk.packets.size());
  const std::vector<Bytes> segs = segments(p, ts);
  fail_unless_equals_int(segs.size(), 3);
  size_t next = 0;
  for (size_t k = 0; k < segs.size(); k++) {
    const std::string what = name + " segment " + std::to_string(k);
    ParsedFrames f = parse(segs[k], what);
    fail_unless(gst_caps_is_equal(f.caps, ref.caps) || gst_caps_can_intersect(f.caps, ref.caps),
                "%s: caps differ", what.c_str());
    // Headers (Vorbis, Opus in Ogg) are repeated in every file, unchanged.
    fail_unless(f.headers == ref.headers, "%s: headers differ", what.c_str());
    for (size_t i = 0; i < f.frames.size(); i++, next++) {
      fail_unless(next < ref.frames.size(), "%s: more frames than the whole file", what.c_str());
      fail_unless(f.frames[i].data == ref.frames[next].data, "%s: frame %zu (whole %zu) differs",
                  what.c_str(), i, next);
    }
  }
  fail_unless_equals_int(next, ref.frames.size());
  if (p.codec == Codec::Opus) check_opus_clipping(p, ts, segs);
  // A packet stays a frame (the parsers neither merge nor split them).
  for (size_t i = 0; i < ref.frames.size(); i++) {
    const Bytes &b = ref.frames[i].data;
    const Bytes &a = pk.packets[i].data;
    if (p.container == Container::Adts) {
      // ADTS frames = 7-byte header (no CRC) + the raw packet.
      fail_unless(b.size() == a.size() + 7 && std::equal(a.begin(), a.end(), b.begin() + 7),
                  "%s: frame %zu is not its packet", name.c_str(), i);
    } else {
      fail_unless(a == b, "%s: frame %zu is not its packet", name.c_str(), i);
    }
  }
}

void check_deterministic(const Pairing &p) {
  const std::string name = label(p);
  fail_unless(whole(p) == whole(p), "%s: whole file differs between runs", name.c_str());
  const std::vector<Bytes> a = segments(p, TimestampMode::Reset);
  const std::vector<Bytes> b = segments(p, TimestampMode::Reset);
  fail_unless(a == b, "%s: segments differ between runs", name.c_str());
}

// Segment 1 on its own: Reset starts at 0, Absolute at the cut.
void check_timestamps(const Pairing &p) {
  const std::string name = label(p);
  const Packets &pk = packets(p.codec);
  const std::vector<size_t> cuts = segdl::media::cut_points(pk, kFirst, kSeg);
  fail_unless_equals_int(cuts.size(), 3);
  const uint64_t cut_ns = pk.packets[cuts[1]].pts_ns;
  fail_unless(cut_ns > 1400 * GST_MSECOND && cut_ns < 1600 * GST_MSECOND, "%s: cut at %" PRIu64,
              name.c_str(), cut_ns);
  const std::vector<Bytes> reset = segments(p, TimestampMode::Reset);
  const std::vector<Bytes> absolute = segments(p, TimestampMode::Absolute);
  ParsedFrames r = parse(reset[1], name + " reset segment 1");
  ParsedFrames a = parse(absolute[1], name + " absolute segment 1");
  const GstClockTime tolerance = 10 * GST_MSECOND;
  // 0, but oggdemux puts the first Vorbis packet of a stream 2.9 ms late
  // (it gives that packet no duration, see segmenter.h).
  fail_unless(r.frames[0].pts_ns < tolerance, "%s: reset pts %" GST_TIME_FORMAT, name.c_str(),
              GST_TIME_ARGS(r.frames[0].pts_ns));
  if (p.container != Container::Ogg) fail_unless_equals_uint64(r.frames[0].pts_ns, 0);
  switch (p.container) {
    case Container::Adts:
    case Container::Mp3:
      // No timestamps in the stream: the two modes are the same bytes.
      fail_unless(reset[1] == absolute[1]);
      fail_unless_equals_uint64(a.frames[0].pts_ns, 0);
      break;
    case Container::M4a:
    case Container::M4aFaststart:
      // The empty edit: buffer pts from 0, stream time from the cut.
      fail_unless_equals_uint64(r.frames[0].stream_ns, 0);
      fail_unless_equals_uint64(a.frames[0].pts_ns, 0);
      fail_unless(a.frames[0].stream_ns != GST_CLOCK_TIME_NONE &&
                      a.frames[0].stream_ns + tolerance > cut_ns &&
                      a.frames[0].stream_ns < cut_ns + tolerance,
                  "%s: absolute stream time %" GST_TIME_FORMAT " for a cut at %" GST_TIME_FORMAT,
                  name.c_str(), GST_TIME_ARGS(a.frames[0].stream_ns), GST_TIME_ARGS(cut_ns));
      break;
    default:
      fail_unless(
          a.frames[0].pts_ns + tolerance > cut_ns && a.frames[0].pts_ns < cut_ns + tolerance,
          "%s: absolute pts %" GST_TIME_FORMAT " for a cut at %" GST_TIME_FORMAT, name.c_str(),
          GST_TIME_ARGS(a.frames[0].pts_ns), GST_TIME_ARGS(cut_ns));
      break;
  }
}

void check_decodes(const Pairing &p) {
  if (!have(decoder(p.codec))) return;
  const std::string name = label(p);
  Bytes pcm, pcm2;
  int rate = 0, channels = 0;
  std::string error;
  const Bytes file = whole(p);
  fail_unless(segdl::media::decode_pcm(file, pcm, rate, channels, error), "%s: decode: %s",
              name.c_str(), error.c_str());
  fail_unless_equals_int(rate, p.codec == Codec::Opus ? 48000 : 44100);
  fail_unless_equals_int(channels, 2);
  const double seconds = static_cast<double>(pcm.size()) / (4.0 * channels * rate);
  fail_unless(seconds > kSeconds - 0.05 && seconds < kSeconds + 0.1, "%s: decodes to %f s",
              name.c_str(), seconds);
  fail_unless(segdl::media::decode_pcm(file, pcm2, rate, channels, error), "%s", error.c_str());
  fail_unless(pcm == pcm2, "%s: two decodes differ", name.c_str());
}

void check_pairing(const Pairing &p) {
  check_frames_preserved(p, TimestampMode::Reset);
  check_frames_preserved(p, TimestampMode::Absolute);
  check_deterministic(p);
  check_timestamps(p);
  check_decodes(p);
}

bool starts_with_box(const Bytes &b, const char *type) {
  return b.size() >= 8 && std::memcmp(&b[4], type, 4) == 0;
}

}  // namespace

// Indices into kPairings of the pairings whose elements are installed; set
// when the suite is built, before any test runs.
std::vector<size_t> usable_pairings;

// One test per usable pairing, selected by the loop index.
GST_START_TEST(test_pairing) {
  check_pairing(kPairings[usable_pairings[static_cast<size_t>(__i__)]]);
}
GST_END_TEST;

GST_START_TEST(test_encode_deterministic) {
  const Codec codecs[] = {Codec::Aac, Codec::Opus, Codec::Vorbis, Codec::Mp3};
  for (Codec c : codecs) {
    if (!segdl::media::available(c)) continue;
    const Packets &a = packets(c);
    Packets b;
    std::string error;
    fail_unless(segdl::media::encode_packets(c, kSeconds, b, error), "%s", error.c_str());
    fail_unless_equals_int(a.packets.size(), b.packets.size());
    for (size_t i = 0; i < a.packets.size(); i++) {
      fail_unless(a.packets[i].data == b.packets[i].data, "%s packet %zu",
                  segdl::media::codec_name(c), i);
      fail_unless_equals_uint64(a.packets[i].pts_ns, b.packets[i].pts_ns);
    }
    fail_unless(gst_caps_is_equal(a.caps, b.caps));
    fail_unless_equals_int(a.rate, c == Codec::Opus ? 48000 : 44100);
    fail_unless_equals_int(a.channels, 2);
    const double end = static_cast<double>(a.end_ns()) / GST_SECOND;
    fail_unless(end > kSeconds - 0.05 && end < kSeconds + 0.1, "%s ends at %f",
                segdl::media::codec_name(c), end);
    // Copies share the caps.
    Packets copy = a;
    fail_unless(copy.caps == a.caps && copy.packets.size() == a.packets.size());
  }
}
GST_END_TEST;

GST_START_TEST(test_split_fragmented) {
  const Pairing p{Codec::Aac, Container::FragmentedMp4};
  const Packets &pk = packets(p.codec);
  const Bytes fmp4 = whole(p);
  std::vector<Bytes> parts;
  std::string error;
  fail_unless(segdl::media::split_fragmented(fmp4, kFirst, kSeg, parts, error), "%s",
              error.c_str());
  fail_unless_equals_int(parts.size(), 3);
  Bytes joined;
  for (const Bytes &b : parts) joined.insert(joined.end(), b.begin(), b.end());
  fail_unless(joined == fmp4);
  fail_unless(starts_with_box(parts[0], "ftyp"));
  fail_unless(starts_with_box(parts[1], "moof"));
  fail_unless(starts_with_box(parts[2], "moof"));
  // The cuts land on fragments near 1.5 s and 4.5 s (fragments of 0.5 s).
  const double targets[] = {kFirst, kFirst + kSeg};
  for (int k = 1; k <= 2; k++) {
    Bytes prefix;
    for (int j = 0; j < k; j++) prefix.insert(prefix.end(), parts[j].begin(), parts[j].end());
    ParsedFrames f = parse(prefix, "fmp4 prefix");
    const double t = static_cast<double>(pk.packets[f.frames.size()].pts_ns) / GST_SECOND;
    fail_unless(t > targets[k - 1] - 0.3 && t < targets[k - 1] + 0.3, "cut %d at %f s", k, t);
  }
  // Garbage is refused.
  fail_if(segdl::media::split_fragmented(Bytes(100, 0xab), 1, 1, parts, error));
  const Bytes m4a = whole(Pairing{Codec::Aac, Container::M4a});
  fail_if(segdl::media::split_fragmented(m4a, 1, 1, parts, error), "no moof: %s", error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_mp4_times_zeroed) {
  const Container cs[] = {Container::M4a, Container::M4aFaststart, Container::FragmentedMp4};
  for (Container c : cs) {
    const Bytes b = whole(Pairing{Codec::Aac, c});
    const uint8_t *hit = nullptr;
    for (size_t i = 0; i + 16 <= b.size() && !hit; i++)
      if (std::memcmp(&b[i], "mvhd", 4) == 0) hit = &b[i];
    fail_unless(hit != nullptr);
    for (int j = 4; j < 12; j++) fail_unless_equals_int(hit[j + 4], 0);  // after version/flags
  }
}
GST_END_TEST;

GST_START_TEST(test_cut_points) {
  const Packets &pk = packets(Codec::Aac);
  const std::vector<size_t> cuts = segdl::media::cut_points(pk, kFirst, kSeg);
  fail_unless_equals_int(cuts.size(), 3);
  fail_unless_equals_int(cuts[0], 0);
  const double targets[] = {kFirst, kFirst + kSeg};
  for (int k = 1; k <= 2; k++) {
    const double t = static_cast<double>(pk.packets[cuts[k]].pts_ns) / GST_SECOND;
    fail_unless(t > targets[k - 1] - 0.03 && t < targets[k - 1] + 0.03, "cut %d at %f", k, t);
  }
  // Longer than the track: one segment; no sliver at the end.
  fail_unless_equals_int(segdl::media::cut_points(pk, 60, 30).size(), 1);
  fail_unless_equals_int(segdl::media::cut_points(pk, 3.75, 3.75).size(), 2);
  fail_unless(segdl::media::cut_points(Packets(), 1, 1).empty());
}
GST_END_TEST;

GST_START_TEST(test_errors) {
  const Packets &pk = packets(Codec::Aac);
  Bytes out;
  std::string error;
  fail_if(segdl::media::mux_file(pk, pk.packets.size(), 1, Container::M4a, TimestampMode::Reset,
                                 out, error));
  fail_if(error.empty());
  error.clear();
  fail_if(segdl::media::mux_file(pk, 0, 10, Container::Ogg, TimestampMode::Reset, out, error));
  fail_if(error.empty());
  ParsedFrames f;
  error.clear();
  fail_if(segdl::media::parse_frames(Bytes(), f, error));
  fail_if(error.empty());
  Bytes pcm;
  int rate = 0, channels = 0;
  error.clear();
  fail_if(segdl::media::decode_pcm(Bytes(4096, 0), pcm, rate, channels, error));
  fail_if(error.empty());
}
GST_END_TEST;

static Suite *segmenter_suite() {
  Suite *s = suite_create("segmenter");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  for (size_t i = 0; i < G_N_ELEMENTS(kPairings); i++) {
    if (usable(kPairings[i]))
      usable_pairings.push_back(i);
    else
      g_printerr("SKIP: segmenter %s (elements missing)\n", label(kPairings[i]).c_str());
  }
  tcase_add_loop_test(tc, test_pairing, 0, static_cast<int>(usable_pairings.size()));
  tcase_add_test(tc, test_encode_deterministic);
  if (usable(Pairing{Codec::Aac, Container::FragmentedMp4})) {
    tcase_add_test(tc, test_split_fragmented);
    tcase_add_test(tc, test_mp4_times_zeroed);
    tcase_add_test(tc, test_cut_points);
    tcase_add_test(tc, test_errors);
  } else {
    g_printerr("SKIP: segmenter AAC / MP4 cases (elements missing)\n");
  }
  return s;
}

GST_CHECK_MAIN(segmenter);
