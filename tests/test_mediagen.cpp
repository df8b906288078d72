// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — tests of the deterministic media generator (tools/common/mediagen).
 *
 * For every form: 6 s encode, decodes back to about 6 s, cut(1.5, 3) gives
 * three segments that start on a sync word and join back to the exact bytes,
 * and a second encode in the same process gives the same bytes. A form whose
 * encoder is not installed is reported as skipped (its cases are not added).
 */
#include <gst/check/gstcheck.h>

#include "common/mediagen.h"

#include <cstdlib>
#include <string>

using segdl::media::Bytes;
using segdl::media::Encoded;
using segdl::media::Form;

namespace {

constexpr double kSeconds = 6.0;

bool have(const char *factory) {
  GstElementFactory *f = gst_element_factory_find(factory);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

bool have_form(Form form) {
  switch (form) {
    case Form::Mp3:
      return have("lamemp3enc") && have("mpegaudioparse") && have("mpg123audiodec");
    case Form::MpegTs:
      return (have("voaacenc") || have("avenc_aac")) && have("aacparse") && have("mpegtsmux") &&
             have("tsdemux") && have("avdec_aac");
    case Form::Adts:
      return (have("voaacenc") || have("avenc_aac")) && have("aacparse") && have("avdec_aac");
  }
  return false;
}

// Encoding is the slow part: each form is encoded once per process and shared.
const Encoded &encoded(Form form) {
  static Encoded cache[3];
  static bool done[3] = {false, false, false};
  const int i = static_cast<int>(form);
  if (!done[i]) {
    std::string error;
    fail_unless(segdl::media::encode(form, kSeconds, cache[i], error), "encode %s: %s",
                segdl::media::form_name(form), error.c_str());
    done[i] = true;
  }
  return cache[i];
}

// True when `b` starts with the form's sync: ADTS 0xFFF, MPEG audio 0xFFE, TS 0x47.
bool starts_on_sync(Form form, const Bytes &b) {
  if (b.size() < 4) return false;
  switch (form) {
    case Form::Adts:
      return b[0] == 0xff && (b[1] & 0xf6) == 0xf0;
    case Form::Mp3:
      return b[0] == 0xff && (b[1] & 0xe0) == 0xe0;
    case Form::MpegTs:
      return b[0] == 0x47 && b.size() % 188 == 0;
  }
  return false;
}

void check_encode(Form form) {
  const Encoded &enc = encoded(form);
  fail_unless(enc.form == form);
  fail_unless(!enc.bytes.empty());
  fail_unless(enc.sample_rate == 44100 && enc.channels == 2);
  fail_unless(!enc.frames.empty());
  fail_unless_equals_uint64(enc.frames.front().offset, 0);
  fail_unless_equals_uint64(enc.frames.front().pts_ns, 0);
  for (size_t i = 1; i < enc.frames.size(); i++) {
    fail_unless(enc.frames[i].offset > enc.frames[i - 1].offset, "frame %zu offset", i);
    fail_unless(enc.frames[i].offset < enc.bytes.size());
    fail_unless(enc.frames[i].pts_ns > enc.frames[i - 1].pts_ns, "frame %zu pts", i);
  }
  const double dur = static_cast<double>(enc.duration_ns) / GST_SECOND;
  fail_unless(dur > kSeconds - 0.05 && dur < kSeconds + 0.2, "duration %f", dur);
  fail_unless(starts_on_sync(form, enc.bytes));
}

void check_decodes(Form form) {
  const Encoded &enc = encoded(form);
  uint64_t ns = 0;
  std::string error;
  fail_unless(segdl::media::decoded_duration(enc.bytes, ns, error), "decode: %s", error.c_str());
  const double dur = static_cast<double>(ns) / GST_SECOND;
  fail_unless(dur > kSeconds - 0.15 && dur < kSeconds + 0.15, "decoded duration %f", dur);
}

void check_cut(Form form) {
  const Encoded &enc = encoded(form);
  const std::vector<Bytes> segs = segdl::media::cut(enc, 1.5, 3.0);
  fail_unless_equals_int(segs.size(), 3);
  Bytes joined;
  for (const Bytes &s : segs) {
    fail_unless(starts_on_sync(form, s));
    joined.insert(joined.end(), s.begin(), s.end());
  }
  fail_unless(joined == enc.bytes);
  // The cuts land on cut points near 1.5 s and 4.5 s.
  uint64_t off = 0;
  const double targets[] = {1.5, 4.5};
  for (int k = 0; k < 2; k++) {
    off += segs[static_cast<size_t>(k)].size();
    bool found = false;
    for (const auto &f : enc.frames) {
      if (f.offset != off) continue;
      const double t = static_cast<double>(f.pts_ns) / GST_SECOND;
      fail_unless(t > targets[k] - 0.1 && t < targets[k] + 0.1, "cut %d at %f s", k, t);
      found = true;
    }
    fail_unless(found, "cut %d is not on a cut point", k);
  }
  // The middle segment decodes on its own to about 3 s.
  uint64_t ns = 0;
  std::string error;
  fail_unless(segdl::media::decoded_duration(segs[1], ns, error), "decode: %s", error.c_str());
  const double dur = static_cast<double>(ns) / GST_SECOND;
  fail_unless(dur > 2.8 && dur < 3.2, "segment 1 decodes to %f s", dur);
}

void check_deterministic(Form form) {
  const Encoded &a = encoded(form);
  Encoded b;
  std::string error;
  fail_unless(segdl::media::encode(form, kSeconds, b, error), "encode: %s", error.c_str());
  fail_unless(a.bytes == b.bytes, "two encodes differ");
  fail_unless_equals_int(a.frames.size(), b.frames.size());
  fail_unless_equals_uint64(a.duration_ns, b.duration_ns);
}

}  // namespace

GST_START_TEST(test_adts) {
  check_encode(Form::Adts);
  check_decodes(Form::Adts);
  check_cut(Form::Adts);
}
GST_END_TEST;

GST_START_TEST(test_mp3) {
  check_encode(Form::Mp3);
  check_decodes(Form::Mp3);
  check_cut(Form::Mp3);
}
GST_END_TEST;

GST_START_TEST(test_ts) {
  check_encode(Form::MpegTs);
  check_decodes(Form::MpegTs);
  check_cut(Form::MpegTs);
}
GST_END_TEST;

GST_START_TEST(test_deterministic_adts) {
  check_deterministic(Form::Adts);
}
GST_END_TEST;

GST_START_TEST(test_deterministic_mp3) {
  check_deterministic(Form::Mp3);
}
GST_END_TEST;

GST_START_TEST(test_deterministic_ts) {
  check_deterministic(Form::MpegTs);
}
GST_END_TEST;

GST_START_TEST(test_cut_edges) {
  const Encoded &enc = encoded(Form::Adts);
  // First segment longer than the track: one segment, the whole stream.
  std::vector<Bytes> one = segdl::media::cut(enc, 60, 30);
  fail_unless_equals_int(one.size(), 1);
  fail_unless(one[0] == enc.bytes);
  // Targets right at the end never make a sliver of a segment.
  std::vector<Bytes> two = segdl::media::cut(enc, 3, 3);
  fail_unless_equals_int(two.size(), 2);
  // Short segments: every cut on a frame, joined bytes equal.
  std::vector<Bytes> many = segdl::media::cut(enc, 0.5, 0.5);
  fail_unless(many.size() >= 11 && many.size() <= 12, "%zu segments", many.size());
  Bytes joined;
  for (const Bytes &s : many) joined.insert(joined.end(), s.begin(), s.end());
  fail_unless(joined == enc.bytes);
  fail_unless(segdl::media::cut(Encoded(), 1, 1).empty());
}
GST_END_TEST;

GST_START_TEST(test_form_names) {
  const Form forms[] = {Form::Adts, Form::Mp3, Form::MpegTs};
  for (Form f : forms) {
    Form back = Form::Adts;
    fail_unless(segdl::media::form_from_name(segdl::media::form_name(f), back));
    fail_unless(back == f);
  }
  fail_unless_equals_string(segdl::media::form_extension(Form::Adts), "aac");
  fail_unless_equals_string(segdl::media::form_mime_type(Form::MpegTs), "video/mp2t");
  Form out = Form::Adts;
  fail_if(segdl::media::form_from_name("flac", out));
}
GST_END_TEST;

GST_START_TEST(test_bad_length) {
  Encoded enc;
  std::string error;
  fail_if(segdl::media::encode(Form::Adts, 0, enc, error));
  fail_if(error.empty());
}
GST_END_TEST;

static Suite *mediagen_suite() {
  Suite *s = suite_create("mediagen");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_form_names);
  tcase_add_test(tc, test_bad_length);
  if (have_form(Form::Adts)) {
    tcase_add_test(tc, test_adts);
    tcase_add_test(tc, test_deterministic_adts);
    tcase_add_test(tc, test_cut_edges);
  } else {
    g_printerr("SKIP: mediagen adts (AAC encoder, aacparse or decoder missing)\n");
  }
  if (have_form(Form::Mp3)) {
    tcase_add_test(tc, test_mp3);
    tcase_add_test(tc, test_deterministic_mp3);
  } else {
    g_printerr("SKIP: mediagen mp3 (lamemp3enc, mpegaudioparse or decoder missing)\n");
  }
  if (have_form(Form::MpegTs)) {
    tcase_add_test(tc, test_ts);
    tcase_add_test(tc, test_deterministic_ts);
  } else {
    g_printerr("SKIP: mediagen ts (AAC encoder, mpegtsmux, tsdemux or decoder missing)\n");
  }
  return s;
}

GST_CHECK_MAIN(mediagen);
