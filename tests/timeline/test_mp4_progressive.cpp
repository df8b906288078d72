// SPDX-License-Identifier: LGPL-2.1-or-later
/* Tests of segdl::Mp4Progressive (gst/segdl/mp4.*): reading a
 * self-contained m4a while it arrives. For a moov after the mdat (ffmpeg's
 * default) the head tells where the tail starts, the tail gives the moov,
 * and then the samples are released as their bytes arrive; for a moov
 * before the mdat the head alone does it. Everything read this way equals
 * what parse_mp4() + mp4_presentation() read from the whole file. */
#include <gst/check/gstcheck.h>

#include <string>
#include <vector>

#include "mp4build.h"
#include "segdl/mp4.h"

using namespace segdl;
using namespace segdl::mp4build;

namespace {

Spec spec_with_edits(bool moov_first) {
  Spec s;
  s.moov_first = moov_first;
  s.sizes = {7, 300, 1, 45, 2000, 13, 600, 90};
  s.per_chunk = 3;
  // ffmpeg's kind: start trim 2112, presented length a little short of
  // the table's end.
  s.edits = {Mp4Edit{140, 2112, 1, 0}};
  return s;
}

// The progressive reading equals the whole file's.
void check_same_as_whole(const Bytes &b, const Mp4Progressive &p) {
  Mp4File whole = parse_ok(b);
  fail_unless(whole.audio_track >= 0);
  const Mp4Track &t = whole.tracks[size_t(whole.audio_track)];
  Mp4Presentation pres;
  std::string err;
  fail_unless(mp4_presentation(whole, t, b.data(), b.size(), pres, &err), "%s", err.c_str());
  const Mp4Track &u = p.audio();
  fail_unless_equals_int(u.samples.size(), t.samples.size());
  for (size_t i = 0; i < t.samples.size(); i++) {
    fail_unless_equals_uint64(u.samples[i].offset, t.samples[i].offset);
    fail_unless_equals_int(u.samples[i].size, t.samples[i].size);
    fail_unless_equals_int(u.samples[i].duration, t.samples[i].duration);
  }
  fail_unless(u.codec_data == t.codec_data);
  fail_unless_equals_int(u.timescale, t.timescale);
  fail_unless_equals_int(p.file().movie_timescale, whole.movie_timescale);
  const Mp4Presentation &q = p.presentation();
  fail_unless_equals_int64(q.start_trim, pres.start_trim);
  fail_unless_equals_int64(q.duration, pres.duration);
  fail_unless_equals_int64(q.end_trim, pres.end_trim);
  fail_unless_equals_int64(q.empty_offset, pres.empty_offset);
  fail_unless_equals_int(q.has_edits, pres.has_edits);
  fail_unless_equals_int(q.has_roll, pres.has_roll);
  fail_unless_equals_int(q.roll_distance, pres.roll_distance);
  fail_unless_equals_uint64(q.mdat_end, pres.mdat_end);
  fail_unless(q.consistent);
  fail_unless_equals_uint64(p.file().layout.moov_offset, whole.layout.moov_offset);
  fail_unless_equals_uint64(p.file().layout.mdat_offset, whole.layout.mdat_offset);
  fail_unless_equals_int(p.file().layout.moov_before_mdat, whole.layout.moov_before_mdat);
}

// For every head length: samples_in() = the leading samples whose last
// byte is in, never more, never fewer.
void check_release(const Bytes &b, Mp4Progressive &p) {
  const std::vector<Mp4Sample> &samples = p.audio().samples;
  for (uint64_t have = 0; have <= b.size(); have++) {
    size_t expected = 0;
    while (expected < samples.size() && samples[expected].offset + samples[expected].size <= have)
      expected++;
    fail_unless_equals_int(p.samples_in(have), expected);
  }
  fail_unless_equals_int(p.samples_in(b.size()), samples.size());
}

}  // namespace

// moov after the mdat: NeedHead until the mdat's header is in, then
// NeedTail at the moov's offset whatever more of the head comes; the tail
// gives the moov; samples leave as their bytes arrive.
GST_START_TEST(moov_at_end) {
  Bytes b = make_m4a(spec_with_edits(false));
  const size_t moov_at = find_box(b, "moov"), mdat_at = find_box(b, "mdat");
  Mp4Progressive p;
  for (size_t have = 0; have < mdat_at + 8; have++)
    fail_unless(p.on_head(b.data(), have) == Mp4Progressive::State::NeedHead, "at %zu", have);
  for (size_t have = mdat_at + 8; have < moov_at; have += 97) {
    fail_unless(p.on_head(b.data(), have) == Mp4Progressive::State::NeedTail, "at %zu", have);
    fail_unless_equals_uint64(p.tail_offset(), moov_at);
  }
  fail_unless(p.on_tail(b.data() + moov_at, b.size() - moov_at) == Mp4Progressive::State::Ready,
              "%s", p.error().c_str());
  check_same_as_whole(b, p);
  check_release(b, p);
}
GST_END_TEST;

// moov before the mdat: the head alone is enough, once the moov and the
// mdat's header are in; no tail is asked for.
GST_START_TEST(moov_first) {
  Bytes b = make_m4a(spec_with_edits(true));
  const size_t mdat_at = find_box(b, "mdat");
  Mp4Progressive p;
  for (size_t have = 0; have < mdat_at + 8; have++)
    fail_unless(p.on_head(b.data(), have) == Mp4Progressive::State::NeedHead, "at %zu", have);
  fail_unless(p.on_head(b.data(), mdat_at + 8) == Mp4Progressive::State::Ready, "%s",
              p.error().c_str());
  check_same_as_whole(b, p);
  check_release(b, p);
}
GST_END_TEST;

// The whole file as the head (the body came before the tail's answer, or
// no Range): read from the head, the same result.
GST_START_TEST(whole_file_as_head) {
  Bytes b = make_m4a(spec_with_edits(false));
  Mp4Progressive p;
  fail_unless(p.on_head(b.data(), 40) == Mp4Progressive::State::NeedTail);
  fail_unless(p.on_head(b.data(), b.size()) == Mp4Progressive::State::Ready, "%s",
              p.error().c_str());
  check_same_as_whole(b, p);
  check_release(b, p);
}
GST_END_TEST;

// Boxes between the mdat and the moov (free, udta...) are skipped in the
// tail; boxes after the moov are ignored.
GST_START_TEST(tail_with_other_boxes) {
  Bytes b = make_m4a(spec_with_edits(false));
  const size_t moov_at = find_box(b, "moov");
  Bytes with = cat({Bytes(b.begin(), b.begin() + long(moov_at)), box("free", Bytes(33, 0)),
                    Bytes(b.begin() + long(moov_at), b.end()), box("skip", Bytes(5, 1))});
  Mp4Progressive p;
  fail_unless(p.on_head(with.data(), moov_at) == Mp4Progressive::State::NeedTail);
  fail_unless_equals_uint64(p.tail_offset(), moov_at);
  fail_unless(
      p.on_tail(with.data() + moov_at, with.size() - moov_at) == Mp4Progressive::State::Ready, "%s",
      p.error().c_str());
  fail_unless_equals_uint64(p.file().layout.moov_offset, moov_at + 41);
  check_same_as_whole(with, p);
}
GST_END_TEST;

// Layouts with nothing to gain are handed back (Whole), bad bytes are
// errors with a reason; nothing is released before Ready.
GST_START_TEST(whole_and_errors) {
  Bytes b = make_m4a(spec_with_edits(false));
  const size_t moov_at = find_box(b, "moov"), mdat_at = find_box(b, "mdat");
  {
    // An mdat of size 0 runs to the end of the file: no moov after it.
    Bytes z = b;
    put32(z, mdat_at, 0);
    Mp4Progressive p;
    fail_unless(p.on_head(z.data(), mdat_at + 100) == Mp4Progressive::State::Whole);
    fail_unless_equals_int(p.samples_in(z.size()), 0);
  }
  {
    // Fragmented: a moof.
    Bytes f = cat({box("ftyp", cat({str("iso6"), be(0, 4)})), box("moof", Bytes(8, 0)),
                   box("mdat", Bytes(16, 0))});
    Mp4Progressive p;
    fail_unless(p.on_head(f.data(), f.size()) == Mp4Progressive::State::Whole);
  }
  {
    // A tail with no moov.
    Mp4Progressive p;
    fail_unless(p.on_head(b.data(), moov_at) == Mp4Progressive::State::NeedTail);
    Bytes junk = box("free", Bytes(20, 0));
    fail_unless(p.on_tail(junk.data(), junk.size()) == Mp4Progressive::State::Error);
    fail_unless(p.error().find("no moov") != std::string::npos, "%s", p.error().c_str());
    fail_unless_equals_int(p.samples_in(b.size()), 0);
  }
  {
    // A tail cut inside the moov.
    Mp4Progressive p;
    fail_unless(p.on_head(b.data(), moov_at) == Mp4Progressive::State::NeedTail);
    fail_unless(p.on_tail(b.data() + moov_at, 50) == Mp4Progressive::State::Error);
  }
  {
    // Not an MP4 at all.
    Bytes html = str("<html><body>not found</body></html>");
    Mp4Progressive p;
    fail_unless(p.on_head(html.data(), html.size()) == Mp4Progressive::State::Error);
    fail_if(p.error().empty());
  }
  {
    // A sample table pointing past the mdat: the whole-file path judges.
    Bytes bad = b;
    size_t stco = find_box(bad, "stco");
    put32(bad, stco + 16, uint32_t(moov_at + 4));
    Mp4Progressive p;
    fail_unless(p.on_head(bad.data(), moov_at) == Mp4Progressive::State::NeedTail);
    fail_unless(p.on_tail(bad.data() + moov_at, bad.size() - moov_at) ==
                Mp4Progressive::State::Whole);
  }
}
GST_END_TEST;

static Suite *mp4_progressive_suite() {
  Suite *s = suite_create("mp4-progressive");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, moov_at_end);
  tcase_add_test(tc, moov_first);
  tcase_add_test(tc, whole_file_as_head);
  tcase_add_test(tc, tail_with_other_boxes);
  tcase_add_test(tc, whole_and_errors);
  return s;
}

GST_CHECK_MAIN(mp4_progressive)
