// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — is this segment audio? (see sniff.h)
 *
 * Each form is recognised by its own structure, not by one magic number:
 * MP4 box headers are walked, ADTS and MPEG audio need a second frame header
 * where the first frame says it ends (a stray 0xFFF in random bytes does not
 * pass), MPEG-TS needs its sync byte at every 188 bytes it has.
 */
#include "segdl/sniff.h"

#include "segdl/codec.h"

#include <glib.h>

#include <cstring>

namespace segdl {

namespace {

using Verdict = SniffResult::Verdict;

constexpr size_t kTsPacket = 188;
constexpr size_t kMinHead = 12;  // enough to tell every magic below
constexpr int kMaxId3Tags = 4;   // tags in a row before the audio

SniffResult audio(MediaForm form) {
  SniffResult r;
  r.verdict = Verdict::Audio;
  r.form = form;
  return r;
}

SniffResult need_more() {
  return SniffResult{};
}

SniffResult refuse(std::string why) {
  SniffResult r;
  r.verdict = Verdict::NotAudio;
  r.why = std::move(why);
  return r;
}

uint32_t be32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}

bool printable4(const uint8_t *p) {
  for (int i = 0; i < 4; i++)
    if (p[i] < 0x20 || p[i] > 0x7e) return false;
  return true;
}

// What a refused head looks like, for the message: HTML, JSON, text or
// bytes (the first ones shown).
std::string describe(const uint8_t *d, size_t n) {
  if (n == 0) return "an empty body";
  if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) return "gzip-compressed data";
  size_t i = 0;
  while (i < n && g_ascii_isspace(d[i])) i++;
  bool text = true;
  for (size_t k = 0; k < n && k < kSniffBytes; k++)
    if (!(g_ascii_isprint(d[k]) || g_ascii_isspace(d[k]) || d[k] >= 0x80)) text = false;
  if (text && i < n) {
    std::string head(reinterpret_cast<const char *>(d + i), std::min<size_t>(n - i, 256));
    g_autofree char *lower = g_ascii_strdown(head.c_str(), gssize(head.size()));
    if (d[i] == '<' && (strstr(lower, "<html") || strstr(lower, "<!doctype html")))
      return "an HTML page";
    if (d[i] == '<') return "an XML or HTML document";
    if (d[i] == '{' || d[i] == '[') return "a JSON document";
  }
  std::string shown;
  for (size_t k = 0; k < n && k < 8; k++) shown += g_ascii_isprint(d[k]) ? char(d[k]) : '.';
  return std::string(text ? "text" : "not audio") + " (" + std::to_string(n) +
         (n >= kSniffBytes ? "+" : "") + " bytes beginning \"" + shown + "\")";
}

bool iso_first_box(const uint8_t *type) {
  static const char *const kTypes[] = {"ftyp", "styp", "moov", "moof", "sidx",
                                       "emsg", "prft", "free", "skip", "wide"};
  for (const char *t : kTypes)
    if (memcmp(type, t, 4) == 0) return true;
  return false;
}

// ISO BMFF: every box header the head holds has a printable type and a
// sane size; a whole segment ends with its last box.
SniffResult sniff_iso(const uint8_t *d, size_t n, bool whole) {
  uint64_t off = 0;
  while (off + 8 <= n) {
    uint64_t size = be32(d + off);
    if (!printable4(d + off + 4)) return refuse("broken MP4 boxes");
    if (size == 0) return audio(MediaForm::Iso);  // the last box runs to the end
    if (size == 1) {
      if (off + 16 > n) break;
      size = uint64_t(be32(d + off + 8)) << 32 | be32(d + off + 12);
      if (size < 16) return refuse("broken MP4 boxes");
    } else if (size < 8) {
      return refuse("broken MP4 boxes");
    }
    if (size > UINT64_MAX - off) return refuse("broken MP4 boxes");
    off += size;
  }
  if (whole && off != n) return refuse("an MP4 file cut short (its last box is not whole)");
  return audio(MediaForm::Iso);
}

SniffResult sniff_ts(const uint8_t *d, size_t n, bool whole) {
  if (n < 3 * kTsPacket && !whole) return need_more();
  for (size_t off = 0; off < n && off < kSniffBytes; off += kTsPacket)
    if (d[off] != 0x47) return refuse("an MPEG-TS stream that loses its sync");
  return audio(MediaForm::MpegTs);
}

// Frames of an elementary stream (ADTS, MPEG audio): the first header and,
// where it says the frame ends, a second one of the same stream.
template <typename Header, typename Parse, typename Same>
SniffResult sniff_frames(const uint8_t *d, size_t n, bool whole, MediaForm form, const char *name,
                         Parse parse, Same same) {
  Header first;
  if (!parse(d, n, first)) return n < 9 && !whole ? need_more() : refuse(describe(d, n));
  size_t next = first.frame_size;
  if (next == n && whole) return audio(form);  // a segment of one frame
  if (next + 9 > n && !whole) return need_more();
  Header second;
  if (next < n && parse(d + next, n - next, second) && same(first, second)) return audio(form);
  if (next < n && n - next < 4 && whole)  // a few trailing bytes cannot hold a header
    return refuse(std::string(name) + " with trailing bytes");
  if (next > n) return refuse(std::string("a cut ") + name + " frame");
  return refuse(std::string("a stray ") + name + " sync (no second frame where the first ends)");
}

SniffResult sniff_adts(const uint8_t *d, size_t n, bool whole) {
  return sniff_frames<AdtsHeader>(
      d, n, whole, MediaForm::Adts, "ADTS",
      [](const uint8_t *p, size_t s, AdtsHeader &h) {
        return s >= 7 && parse_adts_header(p, s, h) && h.frame_size >= h.header_size;
      },
      [](const AdtsHeader &a, const AdtsHeader &b) {
        return a.sample_rate_index == b.sample_rate_index && a.channel_config == b.channel_config &&
               a.mpeg_version == b.mpeg_version;
      });
}

SniffResult sniff_mpeg_audio(const uint8_t *d, size_t n, bool whole) {
  return sniff_frames<MpegAudioHeader>(
      d, n, whole, MediaForm::MpegAudio, "MPEG audio",
      [](const uint8_t *p, size_t s, MpegAudioHeader &h) {
        return s >= 4 && parse_mpeg_audio_header(p, s, h) && h.frame_size > 4;
      },
      [](const MpegAudioHeader &a, const MpegAudioHeader &b) {
        return a.version == b.version && a.layer == b.layer && a.sample_rate == b.sample_rate;
      });
}

// The form of the bytes at d[0], ID3v2 tags skipped.
SniffResult sniff_form(const uint8_t *d, size_t n, bool whole) {
  for (int tags = 0; n >= 3 && memcmp(d, "ID3", 3) == 0; tags++) {
    if (n < 10) return whole ? refuse("a cut ID3 tag") : need_more();
    size_t tag = id3v2_size(d, n);
    if (tag == 0 || tags == kMaxId3Tags) return refuse("a broken ID3 tag");
    if (tag >= n) return whole ? refuse("an ID3 tag and no audio") : need_more();
    d += tag;
    n -= tag;
  }
  if (n < kMinHead && !whole) return need_more();
  if (n >= 8 && iso_first_box(d + 4)) return sniff_iso(d, n, whole);
  if (n >= 4 && (be32(d) == 0x1a45dfa3 || be32(d) == 0x18538067 || be32(d) == 0x1f43b675))
    return audio(MediaForm::Matroska);
  if (n >= 6 && memcmp(d, "OggS", 4) == 0 && d[4] == 0 && (d[5] & ~0x07) == 0)
    return audio(MediaForm::Ogg);
  if (n >= 4 && memcmp(d, "fLaC", 4) == 0) return audio(MediaForm::Flac);
  if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WAVE", 4) == 0)
    return audio(MediaForm::Wav);
  if (n >= 1 && d[0] == 0x47) return sniff_ts(d, n, whole);
  if (n >= 2 && d[0] == 0xff && (d[1] & 0xf6) == 0xf0) return sniff_adts(d, n, whole);
  if (n >= 2 && d[0] == 0xff && (d[1] & 0xe0) == 0xe0) return sniff_mpeg_audio(d, n, whole);
  return refuse(describe(d, n));
}

}  // namespace

const char *media_form_name(MediaForm form) {
  switch (form) {
    case MediaForm::Unknown:
      return "unknown";
    case MediaForm::Iso:
      return "MP4";
    case MediaForm::Matroska:
      return "Matroska/WebM";
    case MediaForm::Ogg:
      return "Ogg";
    case MediaForm::Flac:
      return "FLAC";
    case MediaForm::Wav:
      return "WAV";
    case MediaForm::MpegTs:
      return "MPEG-TS";
    case MediaForm::Adts:
      return "ADTS";
    case MediaForm::MpegAudio:
      return "MPEG audio";
  }
  return "unknown";
}

SniffResult check_segment(const uint8_t *data, size_t size, bool whole, MediaForm track_form) {
  if (size == 0) return whole ? refuse("an empty body") : need_more();
  SniffResult r = sniff_form(data, size, whole);
  if (r.verdict == Verdict::Audio && track_form != MediaForm::Unknown && r.form != track_form)
    return refuse(std::string(media_form_name(r.form)) + " in a track whose segment 0 is " +
                  media_form_name(track_form));
  return r;
}

// ------------------------------------------------------- a whole body's end

namespace {

SegmentEnd cut_short(std::string why) {
  SegmentEnd e;
  e.whole = false;
  e.why = std::move(why);
  return e;
}

// Bytes of the ID3v2 tags at d[0] (they passed check_segment()).
size_t id3_prefix(const uint8_t *d, size_t n) {
  size_t off = 0;
  for (int tags = 0; tags < kMaxId3Tags && n - off >= 10 && memcmp(d + off, "ID3", 3) == 0;
       tags++) {
    size_t tag = id3v2_size(d + off, n - off);
    if (tag == 0 || tag > n - off) break;
    off += tag;
  }
  return off;
}

// Frames of an elementary stream, each where the one before ends, up to
// the last byte; an ID3v1 tag (128 bytes, "TAG") may close MPEG audio.
template <typename Header, typename Parse>
SegmentEnd walk_frames(const uint8_t *d, size_t n, const char *name, bool id3v1, Parse parse) {
  size_t off = id3_prefix(d, n);
  uint64_t samples = 0;
  uint32_t rate = 0;
  while (off < n) {
    if (id3v1 && n - off == 128 && memcmp(d + off, "TAG", 3) == 0) break;
    Header h;
    if (!parse(d + off, n - off, h))
      return cut_short(std::string("no ") + name + " frame where the one before ends (byte " +
                       std::to_string(off) + " of " + std::to_string(n) + ")");
    if (h.frame_size > n - off)
      return cut_short(std::string("its last ") + name + " frame is cut (" +
                       std::to_string(n - off) + " of " + std::to_string(h.frame_size) + " bytes)");
    samples += uint64_t(h.samples);
    rate = h.sample_rate;
    off += h.frame_size;
  }
  SegmentEnd e;
  if (rate > 0) e.seconds = double(samples) / double(rate);
  return e;
}

SegmentEnd walk_ogg(const uint8_t *d, size_t n) {
  size_t off = 0;
  while (off < n) {
    const size_t left = n - off;
    if (left < 27 || memcmp(d + off, "OggS", 4) != 0)
      return cut_short(left < 27 ? "its last Ogg page is cut"
                                 : "no Ogg page where the one before ends (byte " +
                                       std::to_string(off) + ")");
    const size_t segs = d[off + 26];
    if (left < 27 + segs) return cut_short("its last Ogg page is cut");
    size_t page = 27 + segs;
    for (size_t i = 0; i < segs; i++) page += d[off + 27 + i];
    if (page > left) return cut_short("its last Ogg page is cut");
    off += page;
  }
  return SegmentEnd{};
}

}  // namespace

SegmentEnd check_segment_end(const uint8_t *data, size_t size) {
  SniffResult r = check_segment(data, size, true);
  if (r.verdict != Verdict::Audio) return SegmentEnd{};  // check_segment() refuses it
  switch (r.form) {
    case MediaForm::Adts:
      return walk_frames<AdtsHeader>(
          data, size, "ADTS", false, [](const uint8_t *p, size_t s, AdtsHeader &h) {
            return s >= 7 && parse_adts_header(p, s, h) && h.frame_size >= h.header_size;
          });
    case MediaForm::MpegAudio:
      return walk_frames<MpegAudioHeader>(
          data, size, "MPEG audio", true, [](const uint8_t *p, size_t s, MpegAudioHeader &h) {
            return s >= 4 && parse_mpeg_audio_header(p, s, h) && h.frame_size > 4;
          });
    case MediaForm::MpegTs:
      if (size % kTsPacket != 0)
        return cut_short(std::to_string(size % kTsPacket) +
                         " bytes after its last whole MPEG-TS packet");
      return SegmentEnd{};
    case MediaForm::Ogg:
      return walk_ogg(data, size);
    default:  // MP4: check_segment() walked its boxes to the end; the others are not walked
      return SegmentEnd{};
  }
}

}  // namespace segdl
