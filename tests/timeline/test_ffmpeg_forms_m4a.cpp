// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — join=timeline on AAC in m4a segments made by ffmpeg, the
 * way real backends make them: `-f segment` with timestamps reset or kept
 * (empty edits), moov last (ffmpeg's default) and moov first (+faststart),
 * 48 kHz, a track over 4 minutes in 15 s + 30 s segments; each segment cut
 * from the whole file with `-ss/-t -c copy` (edit lists trimming the frames
 * two segments share); each segment encoded on its own (each with its
 * priming and end trim). Each buffer has a pts and a duration, continuous
 * to 1 us; the frames are the encode's; the decoded PCM is checked against
 * the same encode's (see ffmpeg.h; docs/element.md, "Tested forms").
 */
#include "ffmpeg.h"

using namespace segdl;
using namespace segdl::test;
using namespace segdl::test::ff;

namespace {

#define AAC(rate_kbps) \
  { "-c:a", "aac", "-b:a", rate_kbps }
const Form kForms[] = {
    {"aac/m4a reset (moov last)", AAC("64k"), "mp4", "m4a", "audio/mp4", true, 7.5, 44100, false},
    {"aac/m4a kept (moov last)", AAC("64k"), "mp4", "m4a", "audio/mp4", false, 7.5, 44100, false},
    {"aac/m4a moov first",
     AAC("64k"),
     "mp4",
     "m4a",
     "audio/mp4",
     false,
     7.5,
     44100,
     false,
     {"-segment_format_options", "movflags=+faststart"},
     {"-movflags", "+faststart"}},
    {"aac/m4a 48 kHz", AAC("64k"), "mp4", "m4a", "audio/mp4", false, 7.5, 48000, false},
    // Over 4 minutes in the deployed backends' 15 s + 30 s: 9 segments.
    {"aac/m4a kept, 250 s",
     AAC("16k"),
     "mp4",
     "m4a",
     "audio/mp4",
     false,
     250,
     16000,
     false,
     {},
     {},
     15,
     30},
};
#undef AAC

// The top-level boxes of an MP4 file, in order.
std::vector<std::string> top_boxes(const Bytes &file) {
  std::vector<std::string> boxes;
  size_t off = 0;
  while (off + 8 <= file.size()) {
    uint64_t size = uint64_t(file[off]) << 24 | uint64_t(file[off + 1]) << 16 |
                    uint64_t(file[off + 2]) << 8 | file[off + 3];
    boxes.emplace_back(reinterpret_cast<const char *>(&file[off + 4]), 4);
    fail_unless(size >= 8, "box %s of size %" G_GUINT64_FORMAT, boxes.back().c_str(), size);
    off += size;
  }
  return boxes;
}

size_t box_index(const std::vector<std::string> &boxes, const char *type) {
  auto it = std::find(boxes.begin(), boxes.end(), type);
  fail_unless(it != boxes.end(), "no %s box", type);
  return size_t(it - boxes.begin());
}

// What an m4a file with one track says of itself: its samples (packets),
// and its edit (the first entry of the elst): presented from `media_time`
// (media timescale) for `duration` (movie timescale).
struct M4aEdit {
  uint32_t movie_timescale = 0;
  uint32_t media_timescale = 0;
  uint32_t packets = 0;
  uint64_t duration = 0;
  int64_t media_time = -1;
};

void read_boxes(const Bytes &b, size_t off, size_t end, M4aEdit &e) {
  auto be32 = [&](size_t at) {
    return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | b[at + 3];
  };
  while (off + 8 <= end) {
    size_t size = be32(off);
    fail_unless(size >= 8 && off + size <= end, "box at %zu", off);
    std::string type(reinterpret_cast<const char *>(&b[off + 4]), 4);
    const bool v1 = b[off + 8] == 1;
    if (type == "moov" || type == "trak" || type == "edts" || type == "mdia" || type == "minf" ||
        type == "stbl") {
      read_boxes(b, off + 8, off + size, e);
    } else if (type == "mvhd") {
      e.movie_timescale = be32(off + (v1 ? 28 : 20));
    } else if (type == "mdhd") {
      e.media_timescale = be32(off + (v1 ? 28 : 20));
    } else if (type == "stsz") {
      e.packets = be32(off + 16);
    } else if (type == "elst" && e.media_time < 0) {
      fail_unless(be32(off + 12) >= 1 && !v1, "an elst of another kind");
      e.duration = be32(off + 16);
      e.media_time = int32_t(be32(off + 20));
    }
    off += size;
  }
}

M4aEdit read_edit(const Bytes &file) {
  M4aEdit e;
  read_boxes(file, 0, file.size(), e);
  fail_unless(e.movie_timescale > 0 && e.media_timescale > 0 && e.packets > 0 && e.media_time >= 0,
              "not an m4a with one edit");
  return e;
}

// The packets of an m4a file, all of them (no edit applied), through its
// ADTS remux: each ADTS frame's payload.
std::vector<Bytes> packets_of(const std::string &path) {
  std::string adts = path + ".aac";
  if (!exists(adts)) run_ffmpeg({"-i", path, "-c", "copy", adts});
  Bytes b = read_file(adts);
  std::vector<Bytes> out;
  for (size_t off = 0; off + 7 <= b.size();) {
    fail_unless(b[off] == 0xff && (b[off + 1] & 0xf6) == 0xf0, "ADTS sync at %zu", off);
    size_t len = size_t(b[off + 3] & 3) << 11 | size_t(b[off + 4]) << 3 | b[off + 5] >> 5;
    size_t header = (b[off + 1] & 1) ? 7 : 9;
    fail_unless(len > header && off + len <= b.size());
    out.emplace_back(b.begin() + long(off + header), b.begin() + long(off + len));
    off += len;
  }
  return out;
}

// The decoded PCM of `path` through its ADTS remux (the same packets, no
// edit list): every sample the packets give.
Bytes decode_packets(const std::string &path) {
  std::string adts = path + ".aac";
  if (!exists(adts)) run_ffmpeg({"-i", path, "-c", "copy", adts});
  Run run;
  decode_file(adts, run);
  return std::move(run.bytes);
}

// The frames of the served segments through segdlsrc, and their decode.
void run_segments(const std::vector<Bytes> &segments, Run &frames, Run &pcm) {
  server::Track t;
  t.segments = segments;
  t.mime_type = "audio/mp4";
  t.first_segment_duration = 1.5;
  t.segment_duration = 3;
  auto srv = start_server();
  srv->add_track("m", t);
  GstElement *p = make_pipeline(srv->base_url(), "m", "", "appsink name=sink sync=false");
  run_pipeline(p, frames, 60);
  gst_object_unref(p);
  p = make_pipeline(srv->base_url(), "m", "", kPcm);
  run_pipeline(p, pcm, 60);
  gst_object_unref(p);
  srv->stop();
  check_stamps(frames);
  fail_unless(pcm.eos, "no EOS: %s", pcm.error ? pcm.error->message : "none");
}

}  // namespace

GST_START_TEST(test_stamps) {
  check_form_stamps(kForms[__i__]);
}
GST_END_TEST;

GST_START_TEST(test_pcm) {
  check_form_pcm(kForms[__i__]);
}
GST_END_TEST;

// The fixtures are the forms they claim: ffmpeg's default puts every
// segment's moov after its mdat, +faststart before.
GST_START_TEST(test_moov_order) {
  for (size_t form : {size_t(1), size_t(2)}) {
    Fixture fx(kForms[form]);
    const bool first = form == 2;
    for (const Bytes &seg : fx.segments()) {
      std::vector<std::string> boxes = top_boxes(seg);
      fail_unless((box_index(boxes, "moov") < box_index(boxes, "mdat")) == first,
                  "%s: moov %s mdat", kForms[form].name, first ? "after" : "before");
    }
  }
}
GST_END_TEST;

// Each segment cut from the whole file with `ffmpeg -ss S -t D -c copy`:
// the packet the cut falls in goes into both segments, each with an edit
// list presenting its part. The output is every packet of the encode once,
// in order (a shared packet is dropped where its edit presents none of it),
// the stamps continuous, the decoded PCM the whole file's.
GST_START_TEST(test_copy_cut) {
  const Form &f = kForms[1];
  Fixture fx(f, false);
  const double starts[] = {0, 1.5, 4.5, 7.5};
  std::vector<Bytes> segments;
  for (int i = 0; i < 3; i++) {
    std::string path = fx.dir() + "/copy_" + std::to_string(i) + ".m4a";
    run_ffmpeg({"-ss", std::to_string(starts[i]), "-t", std::to_string(starts[i + 1] - starts[i]),
                "-i", fx.whole(), "-c", "copy", path});
    segments.push_back(read_file(path));
  }
  Run frames, pcm;
  run_segments(segments, frames, pcm);
  // Where each segment's packets sit among the whole file's, and what its
  // edit presents of them (never more than its packets hold).
  const std::vector<Bytes> whole = packets_of(fx.whole());
  const Bytes ref = decode_packets(fx.whole());
  const float *r = reinterpret_cast<const float *>(ref.data());
  std::vector<float> want;
  // Where the decoder starts (its first frame comes out a little
  // differently) and where a segment whose first packet was shared begins.
  std::vector<size_t> joins = {0};
  std::vector<Bytes> packets;
  size_t prev_end = 0;  // packet index after the previous segment
  for (int i = 0; i < 3; i++) {
    std::string path = fx.dir() + "/copy_" + std::to_string(i) + ".m4a";
    M4aEdit e = read_edit(segments[size_t(i)]);
    std::vector<Bytes> own = packets_of(path);
    fail_unless_equals_int(own.size(), e.packets);
    size_t first = 0;
    while (first < whole.size() && whole[first] != own[0]) first++;
    fail_unless(first + e.packets <= whole.size(), "segment %d's packets are not the file's", i);
    for (size_t k = 0; k < e.packets; k++) {
      fail_unless(own[k] == whole[first + k], "segment %d, packet %zu", i, k);
      packets.push_back(own[k]);
    }
    uint64_t length = gst_util_uint64_scale_round(e.duration, e.media_timescale, e.movie_timescale);
    length = std::min<uint64_t>(length, uint64_t(e.packets) * 1024 - uint64_t(e.media_time));
    size_t from = first * 1024 + size_t(e.media_time);
    fail_unless(from + length <= ref.size() / 4);
    if (first < prev_end) joins.push_back(want.size());
    want.insert(want.end(), r + from, r + from + length);
    prev_end = first + e.packets;
  }
  // The frames out are the segments' packets: every one of the encode, in
  // order, a shared one once per segment.
  fail_unless_equals_int(frames.frames.size(), packets.size());
  for (size_t k = 0; k < packets.size(); k++)
    fail_unless(frames.frames[k] == packets[k], "frame %zu is not the segments' packet", k);
  // Every segment as its edit presents it, laid end to end: the whole
  // file's decode at those places (within 1e-3: avdec_aac fed raw AAC
  // rounds a little differently from its ADTS decode; one sample off in
  // time differs by more than 0.01 in this signal), but where a segment
  // begins with the packet the previous one ended with: that packet
  // decoded a second time gives other samples (up to one frame), and the
  // decoder's first and last frames.
  fail_unless_equals_int(pcm.bytes.size() / 4, want.size());
  const float *a = reinterpret_cast<const float *>(pcm.bytes.data());
  for (size_t i = 0; i < want.size(); i++) {
    bool after_join = i + 1024 >= want.size();  // the decoder's last frame
    for (size_t j : joins) after_join |= i >= j && i < j + 1024;
    fail_unless(after_join || std::fabs(a[i] - want[i]) <= 1e-3f, "sample %zu is %f, not %f", i,
                double(a[i]), double(want[i]));
  }
}
GST_END_TEST;

// Each segment encoded on its own (`-ss S -t D -i source`): each file has
// its priming (1024 samples) and end padding trimmed by its edit list. The
// output lasts exactly the source, and its decode is each file's
// presented samples.
GST_START_TEST(test_each_encoded) {
  const Form &f = kForms[1];
  Fixture fx(f, false);
  const double starts[] = {0, 1.5, 4.5, 7.5};
  std::vector<Bytes> segments;
  Bytes want;
  for (int i = 0; i < 3; i++) {
    std::string path = fx.dir() + "/each_" + std::to_string(i) + ".m4a";
    double d = starts[i + 1] - starts[i];
    std::vector<std::string> args = {
        "-ss", std::to_string(starts[i]), "-t", std::to_string(d), "-i", fx.source()};
    args.insert(args.end(), f.codec.begin(), f.codec.end());
    args.push_back(path);
    run_ffmpeg(args);
    segments.push_back(read_file(path));
    Bytes dec = decode_packets(path);
    size_t n = size_t(d * f.rate + 0.5);
    fail_unless(dec.size() / 4 >= 1024 + n, "%s decodes to %zu samples", path.c_str(),
                dec.size() / 4);
    want.insert(want.end(), dec.begin() + 4 * 1024, dec.begin() + 4 * (1024 + n));
  }
  Run frames, pcm;
  run_segments(segments, frames, pcm);
  GstClockTime end = frames.pts.back() + frames.durations.back();
  fail_unless(GST_CLOCK_DIFF(GstClockTime(7.5 * GST_SECOND), end) <= 1000 &&
                  GST_CLOCK_DIFF(GstClockTime(7.5 * GST_SECOND), end) >= -1000,
              "ends at %" GST_TIME_FORMAT, GST_TIME_ARGS(end));
  fail_unless_equals_int(pcm.bytes.size(), want.size());
  // Within 0.004: one decoder across the joins is not three fresh ones
  // (up to 0.0016 apart here, in every sample after the first join); one
  // sample off in time differs by more than 0.01 in this signal.
  const float *a = reinterpret_cast<const float *>(pcm.bytes.data());
  const float *b = reinterpret_cast<const float *>(want.data());
  for (size_t i = 0; i < want.size() / 4; i++)
    fail_unless(std::fabs(a[i] - b[i]) <= 0.004f, "sample %zu is %f, not %f", i, double(a[i]),
                double(b[i]));
}
GST_END_TEST;

static Suite *ffmpeg_forms_suite() {
  Suite *s = suite_create("ffmpeg-forms-m4a");
  TCase *tc = tcase_create("forms");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(tc, test_stamps, 0, G_N_ELEMENTS(kForms));
  tcase_add_loop_test(tc, test_pcm, 0, G_N_ELEMENTS(kForms));
  tcase_add_test(tc, test_moov_order);
  tcase_add_test(tc, test_copy_cut);
  tcase_add_test(tc, test_each_encoded);
  return s;
}

int main(int argc, char **argv) {
  return run_suite(argc, argv, ffmpeg_forms_suite, "ffmpeg-forms-m4a", __FILE__);
}
