// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdl::check_segment(), the check every segment passes
 * before it is output or cached: real segments of each generated form pass
 * (from their first bytes and whole), HTML, JSON, random bytes, empty and
 * cut bodies and a segment of another form than segment 0's do not.
 */
#include "segdl/sniff.h"

#include "common/mediagen.h"

#include <gst/check/gstcheck.h>

#include <cstring>
#include <string>
#include <vector>

using namespace segdl;
using V = SniffResult::Verdict;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes of(const std::string &s) {
  return Bytes(s.begin(), s.end());
}

SniffResult check(const Bytes &b, bool whole = true, MediaForm track = MediaForm::Unknown) {
  return check_segment(b.data(), b.size(), whole, track);
}

// The verdict on the first `n` bytes when they are all there is so far.
SniffResult check_head(const Bytes &b, size_t n, MediaForm track = MediaForm::Unknown) {
  return check_segment(b.data(), std::min(n, b.size()), n >= b.size(), track);
}

void put32(Bytes &b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

void box(Bytes &b, const char *type, size_t payload) {
  put32(b, uint32_t(8 + payload));
  b.insert(b.end(), type, type + 4);
  b.insert(b.end(), payload, 0);
}

Bytes random_bytes(size_t n, uint32_t seed) {
  Bytes b(n);
  for (uint8_t &c : b) {
    seed = seed * 1103515245u + 12345u;
    c = uint8_t(seed >> 16);
  }
  return b;
}

const media::Encoded &encoded(media::Form form) {
  static media::Encoded cache[3];
  static bool made[3] = {};
  int i = int(form);
  if (!made[i]) {
    std::string error;
    fail_unless(media::encode(form, 7.0, cache[i], error), "%s", error.c_str());
    made[i] = true;
  }
  return cache[i];
}

}  // namespace

// Every segment of each generated form passes, whole and from its first
// kSniffBytes, and is recognised as its form.
GST_START_TEST(test_generated_forms) {
  const struct {
    media::Form form;
    MediaForm expect;
  } kForms[] = {{media::Form::Adts, MediaForm::Adts},
                {media::Form::Mp3, MediaForm::MpegAudio},
                {media::Form::MpegTs, MediaForm::MpegTs}};
  for (const auto &f : kForms) {
    std::vector<Bytes> segs = media::cut(encoded(f.form), 1.5, 2.0);
    fail_unless(segs.size() >= 3);
    for (const Bytes &s : segs) {
      SniffResult whole = check(s, true, f.expect);
      fail_unless(whole.verdict == V::Audio, "%s: %s", media::form_name(f.form), whole.why.c_str());
      fail_unless(whole.form == f.expect);
      SniffResult head = check_head(s, kSniffBytes, f.expect);
      fail_unless(head.verdict == V::Audio, "%s head: %s", media::form_name(f.form),
                  head.why.c_str());
      // Before a header is whole the check waits for more.
      fail_unless(check_head(s, 3).verdict == V::NeedMore);
    }
  }
}
GST_END_TEST;

// An ID3v2 tag before MPEG audio is skipped; a tag alone is no audio.
GST_START_TEST(test_id3) {
  Bytes tag = {'I', 'D', '3', 4, 0, 0, 0, 0, 0x02, 0x00};  // 256 bytes of body
  tag.insert(tag.end(), 256, 0);
  std::vector<Bytes> segs = media::cut(encoded(media::Form::Mp3), 1.5, 2.0);
  Bytes tagged = tag;
  tagged.insert(tagged.end(), segs[1].begin(), segs[1].end());
  SniffResult r = check(tagged, true, MediaForm::MpegAudio);
  fail_unless(r.verdict == V::Audio, "%s", r.why.c_str());
  fail_unless(check_head(tagged, 200).verdict == V::NeedMore);  // the tag is not over yet
  r = check(tag);
  fail_unless(r.verdict == V::NotAudio);
  fail_unless(r.why == "an ID3 tag and no audio", "%s", r.why.c_str());
}
GST_END_TEST;

// Containers by their structure: MP4 boxes (init and fragments), EBML,
// Ogg, FLAC, WAV.
GST_START_TEST(test_containers) {
  Bytes m4a;
  box(m4a, "ftyp", 12);
  box(m4a, "moov", 100);
  box(m4a, "mdat", 5000);
  fail_unless(check(m4a).form == MediaForm::Iso);
  fail_unless(check_head(m4a, kSniffBytes).verdict == V::Audio);
  Bytes frag;
  box(frag, "moof", 40);
  box(frag, "mdat", 300);
  fail_unless(check(frag, true, MediaForm::Iso).verdict == V::Audio);
  Bytes cut(m4a.begin(), m4a.end() - 10);  // the last box is not whole
  SniffResult r = check(cut);
  fail_unless(r.verdict == V::NotAudio && r.why.find("cut short") != std::string::npos, "%s",
              r.why.c_str());
  Bytes broken = m4a;
  broken[24] = 0x01;  // moov's type no longer printable
  fail_unless(check(broken).verdict == V::NotAudio);

  Bytes webm = {0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01};
  fail_unless(check(webm).form == MediaForm::Matroska);
  Bytes cluster = {0x1f, 0x43, 0xb6, 0x75, 0x01, 0, 0, 0, 0, 0, 0, 0x10, 0xe7};
  fail_unless(check(cluster, true, MediaForm::Matroska).verdict == V::Audio);
  Bytes ogg = of("OggS");
  ogg.insert(ogg.end(), {0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0});
  fail_unless(check(ogg).form == MediaForm::Ogg);
  Bytes flac = of("fLaC");
  flac.insert(flac.end(), 30, 0);
  fail_unless(check(flac).form == MediaForm::Flac);
  Bytes wav = of("RIFF");
  wav.insert(wav.end(), {0x24, 0, 0, 0});
  for (char c : std::string("WAVEfmt ")) wav.push_back(uint8_t(c));
  fail_unless(check(wav).form == MediaForm::Wav);
}
GST_END_TEST;

// What a backend in trouble sends instead: never audio, and the reason
// says what it looks like.
GST_START_TEST(test_not_audio) {
  const struct {
    Bytes body;
    const char *why;
  } kBad[] = {
      {Bytes(), "an empty body"},
      {of("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"), "an HTML page"},
      {of("  <html><head><title>Oops</title></head></html>\n"), "an HTML page"},
      {of("{\"error\":\"segment not found\"}"), "a JSON document"},
      {of("Service Unavailable\r\n"), "text"},
      {random_bytes(20000, 7), "not audio"},
      {random_bytes(5, 9), "5 bytes beginning"},
      {Bytes{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3}, "gzip"},
  };
  for (const auto &b : kBad) {
    SniffResult r = check(b.body);
    fail_unless(r.verdict == V::NotAudio, "'%s' passed", b.why);
    fail_unless(r.why.find(b.why) != std::string::npos, "'%s' lacks '%s'", r.why.c_str(), b.why);
    if (b.body.size() >= kSniffBytes)
      fail_unless(check_head(b.body, kSniffBytes).verdict == V::NotAudio);
  }
  // Random bytes of every seed never pass (a stray sync byte needs a
  // second frame where the first ends).
  for (uint32_t seed = 0; seed < 2000; seed++) {
    Bytes junk = random_bytes(kSniffBytes, seed);
    junk[0] = 0xff;  // the worst case: a sync byte first
    junk[1] = uint8_t(0xf0 | (seed & 0x0f));
    SniffResult r = check(junk);
    fail_unless(r.verdict == V::NotAudio, "seed %u passed as %s", seed, media_form_name(r.form));
  }
}
GST_END_TEST;

// Frame streams cut, or losing their sync, fail; a segment of another form
// than the track's fails.
GST_START_TEST(test_broken_streams) {
  std::vector<Bytes> adts = media::cut(encoded(media::Form::Adts), 1.5, 2.0);
  Bytes cut(adts[1].begin(), adts[1].begin() + 100);  // a whole body of part of a frame
  fail_unless(check(cut).verdict == V::NotAudio);
  std::vector<Bytes> ts = media::cut(encoded(media::Form::MpegTs), 1.5, 2.0);
  Bytes lost = ts[1];
  lost[188 * 2] = 0x00;
  SniffResult r = check(lost);
  fail_unless(r.verdict == V::NotAudio && r.why.find("sync") != std::string::npos, "%s",
              r.why.c_str());
  r = check(ts[1], true, MediaForm::Adts);
  fail_unless(r.verdict == V::NotAudio);
  fail_unless(r.why == "MPEG-TS in a track whose segment 0 is ADTS", "%s", r.why.c_str());
  Bytes m4a;
  box(m4a, "ftyp", 12);
  box(m4a, "moov", 10);
  fail_unless(check(m4a, true, MediaForm::MpegAudio).verdict == V::NotAudio);
}
GST_END_TEST;

// check_segment_end(), for bodies without a length: every generated
// segment ends on a whole frame (packet) and, for ADTS and MP3, holds the
// seconds it was cut to; the same bytes cut anywhere in a frame, or
// missing whole frames (then shorter), are caught; Ogg pages are walked.
GST_START_TEST(test_segment_end) {
  const struct {
    media::Form form;
    bool timed;
  } kForms[] = {{media::Form::Adts, true}, {media::Form::Mp3, true}, {media::Form::MpegTs, false}};
  for (const auto &f : kForms) {
    std::vector<Bytes> segs = media::cut(encoded(f.form), 1.5, 2.0);
    for (size_t i = 0; i + 1 < segs.size(); i++) {
      const Bytes &s = segs[i];
      SegmentEnd e = check_segment_end(s.data(), s.size());
      fail_unless(e.whole, "%s segment %zu: %s", media::form_name(f.form), i, e.why.c_str());
      const double nominal = i == 0 ? 1.5 : 2.0;
      if (f.timed)
        fail_unless(e.seconds > nominal - 0.1 && e.seconds < nominal + 0.1, "%s %zu: %.3f s",
                    media::form_name(f.form), i, e.seconds);
      else
        fail_unless(e.seconds < 0);
      // Cut at every 97th byte past the check's head: never whole, or (on a
      // frame boundary by chance) shorter.
      for (size_t cut = kSniffBytes; cut < s.size(); cut += 97) {
        if (!f.timed && cut % 188 == 0) continue;  // whole packets: a cut the walk cannot see
        SegmentEnd c = check_segment_end(s.data(), cut);
        fail_unless(!c.whole || (f.timed && c.seconds < e.seconds), "%s %zu cut at %zu taken whole",
                    media::form_name(f.form), i, cut);
        if (!c.whole) fail_unless(!c.why.empty());
      }
    }
  }
  // Ogg: two whole pages, then the second one cut.
  Bytes ogg;
  for (int page = 0; page < 2; page++) {
    Bytes p = {'O', 'g', 'g', 'S', 0, uint8_t(page == 0 ? 2 : 0)};
    p.insert(p.end(), 20, 0);
    p.push_back(2);  // two lacing values: 255 + 10 bytes
    p.push_back(255);
    p.push_back(10);
    p.insert(p.end(), 265, uint8_t(page));
    ogg.insert(ogg.end(), p.begin(), p.end());
  }
  fail_unless(check_segment_end(ogg.data(), ogg.size()).whole);
  fail_if(check_segment_end(ogg.data(), ogg.size() - 1).whole);
  fail_if(check_segment_end(ogg.data(), ogg.size() / 2 + 10).whole);
  // Not audio is check_segment()'s to refuse: no verdict here.
  Bytes html = of("<html>error</html>");
  fail_unless(check_segment_end(html.data(), html.size()).whole);
}
GST_END_TEST;

static Suite *sniff_suite() {
  Suite *s = suite_create("sniff");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_generated_forms);
  tcase_add_test(tc, test_id3);
  tcase_add_test(tc, test_containers);
  tcase_add_test(tc, test_not_audio);
  tcase_add_test(tc, test_broken_streams);
  tcase_add_test(tc, test_segment_end);
  return s;
}

GST_CHECK_MAIN(sniff)
