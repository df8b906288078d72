// SPDX-License-Identifier: LGPL-2.1-or-later
/* Hand-built MP4 files for the tests of gst/segdl/mp4.* (test_mp4.cpp,
 * test_mp4_progressive.cpp): boxes, a moov for a Spec, a whole m4a with the
 * moov before or after the mdat, and checks of parse_mp4(). */
#pragma once

#include <gst/check/gstcheck.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "segdl/mp4.h"

namespace segdl::mp4build {

typedef std::vector<uint8_t> Bytes;

inline Bytes be(uint64_t v, int n) {
  Bytes b;
  for (int i = n - 1; i >= 0; i--) b.push_back(i < 8 ? uint8_t(v >> (8 * i)) : 0);
  return b;
}

inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes &p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

inline Bytes str(const char *s) {
  return Bytes(s, s + strlen(s));
}

inline Bytes box(const char *type, const Bytes &payload) {
  return cat({be(8 + payload.size(), 4), str(type), payload});
}

inline Bytes full(const char *type, int version, const Bytes &payload) {
  return box(type, cat({Bytes{uint8_t(version), 0, 0, 0}, payload}));
}

// What a hand-built file holds.
struct Spec {
  bool moov_first = true;
  int version = 0;  // of mvhd, tkhd, mdhd, elst
  uint32_t movie_ts = 1000, media_ts = 44100;
  std::vector<Mp4Edit> edits;
  std::vector<uint32_t> sizes = {10, 20, 30, 40, 50};
  uint32_t per_chunk = 2;
  Bytes asc = {0x12, 0x10};
  bool roll = true;
  int wave_depth = 0;              // esds inside this many 'wave' boxes
  int stz2_field = 0;              // sizes in an stz2 of 4, 8 or 16 bits instead of stsz
  const char *itunsmpb = nullptr;  // an iTunes gapless tag with this text
  bool qt_meta = false;            // QuickTime's meta (not a full box)
};

inline Bytes esds(const Bytes &asc) {
  Bytes dsi = cat({Bytes{0x05, uint8_t(asc.size())}, asc});
  Bytes dcd = cat({Bytes{0x04, uint8_t(13 + dsi.size()), 0x40, 0x15}, be(0, 3), be(96000, 4),
                   be(96000, 4), dsi});
  Bytes es = cat({Bytes{0x03, uint8_t(3 + dcd.size() + 3), 0, 1, 0}, dcd, Bytes{0x06, 1, 2}});
  return full("esds", 0, es);
}

inline Bytes mp4a(const Bytes &asc, int wave_depth) {
  Bytes config = esds(asc);
  for (int i = 0; i < wave_depth; i++) config = box("wave", config);
  Bytes entry = cat(
      {be(0, 6), be(1, 2), be(0, 8), be(2, 2), be(16, 2), be(0, 4), be(44100u << 16, 4), config});
  return box("mp4a", entry);
}

inline Bytes stbl(const Spec &s, uint64_t data_offset) {
  uint32_t n = uint32_t(s.sizes.size());
  Bytes stsz = cat({be(0, 4), be(n, 4)});
  for (uint32_t sz : s.sizes) stsz = cat({stsz, be(sz, 4)});
  Bytes sizes = full("stsz", 0, stsz);
  if (s.stz2_field) {
    Bytes packed;
    for (uint32_t i = 0; i < n; i++) {
      if (s.stz2_field == 4 && i % 2)
        packed.back() |= uint8_t(s.sizes[i]);
      else if (s.stz2_field == 4)
        packed.push_back(uint8_t(s.sizes[i] << 4));
      else
        packed = cat({packed, be(s.sizes[i], s.stz2_field / 8)});
    }
    sizes = full("stz2", 0, cat({be(uint8_t(s.stz2_field), 4), be(n, 4), packed}));
  }
  uint32_t chunks = (n + s.per_chunk - 1) / s.per_chunk;
  Bytes stco = be(chunks, 4);
  uint64_t off = data_offset;
  for (uint32_t i = 0; i < n; i++) {
    if (i % s.per_chunk == 0) stco = cat({stco, be(off, 4)});
    off += s.sizes[i];
  }
  // Full chunks, then a last one with the rest.
  Bytes stsc = cat({be(1, 4), be(1, 4), be(s.per_chunk, 4), be(1, 4)});
  if (n % s.per_chunk)
    stsc = cat({be(2, 4), be(1, 4), be(s.per_chunk, 4), be(1, 4), be(chunks, 4),
                be(n % s.per_chunk, 4), be(1, 4)});
  Bytes table = cat({full("stsd", 0, cat({be(1, 4), mp4a(s.asc, s.wave_depth)})),
                     full("stts", 0, cat({be(1, 4), be(n, 4), be(1024, 4)})), full("stsc", 0, stsc),
                     sizes, full("stco", 0, stco)});
  if (s.roll) {
    table = cat({table, full("sgpd", 1, cat({str("roll"), be(2, 4), be(1, 4), be(0xffff, 2)})),
                 full("sbgp", 0, cat({str("roll"), be(1, 4), be(n, 4), be(1, 4)}))});
  }
  return box("stbl", table);
}

inline Bytes moov(const Spec &s, uint64_t data_offset) {
  uint64_t dur = uint64_t(s.sizes.size()) * 1024;
  bool v1 = s.version == 1;
  Bytes times = v1 ? be(0, 16) : be(0, 8);
  Bytes mvhd = full(
      "mvhd", s.version,
      cat({times, be(s.movie_ts, 4), be(dur * s.movie_ts / s.media_ts, v1 ? 8 : 4), be(0, 80)}));
  Bytes tkhd = full(
      "tkhd", s.version,
      cat({times, be(1, 4), be(0, 4), be(dur * s.movie_ts / s.media_ts, v1 ? 8 : 4), be(0, 60)}));
  Bytes mdhd =
      full("mdhd", s.version, cat({times, be(s.media_ts, 4), be(dur, v1 ? 8 : 4), be(0, 4)}));
  Bytes hdlr = full("hdlr", 0, cat({be(0, 4), str("soun"), be(0, 12), Bytes{0}}));
  Bytes trak = tkhd;
  if (!s.edits.empty()) {
    Bytes el = be(s.edits.size(), 4);
    for (const Mp4Edit &e : s.edits)
      el = cat({el, be(e.segment_duration, v1 ? 8 : 4), be(uint64_t(e.media_time), v1 ? 8 : 4),
                be(uint16_t(e.rate_integer), 2), be(uint16_t(e.rate_fraction), 2)});
    trak = cat({trak, box("edts", full("elst", s.version, el))});
  }
  Bytes minf = box("minf", cat({full("smhd", 0, be(0, 4)), stbl(s, data_offset)}));
  trak = cat({trak, box("mdia", cat({mdhd, hdlr, minf}))});
  Bytes moov = cat({mvhd, box("trak", trak)});
  if (s.itunsmpb) {
    Bytes tag =
        box("----", cat({full("mean", 0, str("com.apple.iTunes")), full("name", 0, str("iTunSMPB")),
                         box("data", cat({be(1, 4), be(0, 4), str(s.itunsmpb)}))}));
    Bytes meta_body =
        cat({full("hdlr", 0, cat({be(0, 4), str("mdir"), be(0, 12), Bytes{0}})), box("ilst", tag)});
    Bytes meta = s.qt_meta ? box("meta", meta_body) : full("meta", 0, meta_body);
    moov = cat({moov, box("udta", meta)});
  }
  return box("moov", moov);
}

inline Bytes make_m4a(const Spec &s) {
  Bytes ftyp = box("ftyp", cat({str("M4A "), be(0, 4), str("isomM4A ")}));
  Bytes payload;
  for (size_t i = 0; i < s.sizes.size(); i++)
    payload.resize(payload.size() + s.sizes[i], uint8_t(i));
  Bytes mdat = box("mdat", payload);
  if (s.moov_first) {
    size_t moov_size = moov(s, 0).size();
    return cat({ftyp, moov(s, ftyp.size() + moov_size + 8), mdat});
  }
  return cat({ftyp, mdat, moov(s, ftyp.size() + 8)});
}

inline Mp4File parse_ok(const Bytes &b) {
  Mp4File f;
  std::string err;
  fail_unless(parse_mp4(b.data(), b.size(), f, &err), "refused: %s", err.c_str());
  return f;
}

inline std::string parse_refused(const Bytes &b, const char *expected) {
  Mp4File f;
  std::string err;
  fail_if(parse_mp4(b.data(), b.size(), f, &err), "accepted a bad file");
  fail_unless(err.find(expected) != std::string::npos, "reason \"%s\", expected \"%s\"",
              err.c_str(), expected);
  return err;
}

// Offset of the first `type` box header in b (a plain byte search).
inline size_t find_box(const Bytes &b, const char *type) {
  for (size_t i = 4; i + 4 <= b.size(); i++)
    if (memcmp(&b[i], type, 4) == 0) return i - 4;
  ck_abort_msg("no %s in the test file", type);
  return 0;
}

inline void put32(Bytes &b, size_t at, uint32_t v) {
  Bytes x = be(v, 4);
  std::copy(x.begin(), x.end(), b.begin() + long(at));
}

}  // namespace segdl::mp4build
