// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — ISO BMFF reader for self-contained segments (see mp4.h). */
#include "segdl/mp4.h"

#include <algorithm>
#include <cstring>

#include <glib.h>

namespace segdl {

namespace {

bool fail(std::string *error, const std::string &why) {
  if (error) *error = why;
  return false;
}

uint16_t rd16(const uint8_t *p) {
  return uint16_t(p[0] << 8 | p[1]);
}
uint32_t rd32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
uint64_t rd64(const uint8_t *p) {
  return uint64_t(rd32(p)) << 32 | rd32(p + 4);
}

uint32_t code_of(const char *k) {
  return rd32(reinterpret_cast<const uint8_t *>(k));
}

bool printable_type(uint32_t t) {
  for (int i = 0; i < 4; i++) {
    uint8_t c = uint8_t(t >> (24 - 8 * i));
    if ((c < 0x20 || c > 0x7e) && c != 0xa9) return false;
  }
  return true;
}

bool top_level_start(uint32_t t) {
  static const char *const kTypes[] = {"ftyp", "styp", "moov", "mdat", "free", "skip",
                                       "wide", "pdin", "uuid", "moof", "sidx", "meta"};
  for (const char *k : kTypes)
    if (t == code_of(k)) return true;
  return false;
}

}  // namespace

std::string fourcc_name(uint32_t code) {
  std::string s;
  for (int i = 0; i < 4; i++) {
    char c = char(code >> (24 - 8 * i));
    s += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return s;
}

bool read_mp4_box(const uint8_t *data, uint64_t end, uint64_t offset, Mp4Box &out,
                  std::string *error, bool partial) {
  out = Mp4Box();
  if (!data || offset > end || end - offset < 8)
    return fail(error, "box header at " + std::to_string(offset) + " cut short");
  const uint8_t *p = data + offset;
  uint64_t size = rd32(p);
  out.type = rd32(p + 4);
  out.offset = offset;
  out.header_size = 8;
  std::string name = "'" + fourcc_name(out.type) + "' at " + std::to_string(offset);
  if (size == 1) {
    if (end - offset < 16) return fail(error, "box " + name + ": largesize cut short");
    size = rd64(p + 8);
    out.header_size = 16;
  } else if (size == 0) {
    out.to_end = true;
    size = end - offset;
  }
  if (out.type == fourcc("uuid")) out.header_size += 16;
  if (size < out.header_size)
    return fail(error, "box " + name + " has an impossible size " + std::to_string(size));
  if (end - offset < out.header_size) return fail(error, "box " + name + ": header cut short");
  if (size > end - offset && !partial)
    return fail(error, "box " + name + " claims " + std::to_string(size) + " bytes, only " +
                           std::to_string(end - offset) + " remain");
  out.size = size;
  return true;
}

bool scan_mp4_layout(const uint8_t *data, size_t size, Mp4Layout &out, std::string *error) {
  out = Mp4Layout();
  uint64_t pos = 0, reach = 0;
  while (pos < size) {
    if (size - pos < 16 && size - pos >= 8 && rd32(data + pos) == 1) break;  // largesize to come
    if (size - pos < 8) break;
    Mp4Box box;
    if (!read_mp4_box(data, size, pos, box, error, true)) return false;
    if (pos == 0 && !top_level_start(box.type))
      return fail(error, "not an MP4 file: it starts with '" + fourcc_name(box.type) + "'");
    if (!printable_type(box.type))
      return fail(error, "not an MP4 file: box type " + fourcc_name(box.type) + " at " +
                             std::to_string(pos));
    if (box.type == fourcc("ftyp") && !out.has_ftyp && box.size >= 12 && size - pos >= 12) {
      out.has_ftyp = true;
      out.major_brand = rd32(data + pos + 8);
    } else if (box.type == fourcc("moov") && !out.has_moov) {
      out.has_moov = true;
      out.moov_offset = pos;
      out.moov_size = box.size;
      out.moov_before_mdat = !out.has_mdat;
    } else if (box.type == fourcc("mdat") && !out.has_mdat) {
      out.has_mdat = true;
      out.mdat_offset = pos;
      out.mdat_size = box.size;
    } else if (box.type == fourcc("moof")) {
      out.fragmented = true;
    }
    if (box.to_end) {
      // A size-0 box runs to the end of the file: the data we have may not
      // be all of it, so nothing after it can be known.
      pos = size;
      break;
    }
    reach = box.end();
    if (box.size > size - pos) break;  // the rest has not arrived
    pos += box.size;
  }
  out.complete = pos == size && size > 0;
  out.need_bytes = out.has_moov ? out.moov_offset + out.moov_size : std::max(reach, pos);
  return true;
}

namespace {

// Reads the boxes of one moov.
class MoovParser {
 public:
  MoovParser(const uint8_t *data, uint64_t end, const Mp4Limits &limits, std::string *error)
      : data_(data), end_(end), limits_(limits), error_(error) {}

  bool moov(const Mp4Box &box, Mp4File &out);

 private:
  typedef bool (MoovParser::*ChildFn)(const Mp4Box &, void *);
  bool children(const Mp4Box &parent, uint64_t skip, int depth, ChildFn fn, void *ctx);
  bool full_box(const Mp4Box &box, uint64_t need, int &version);
  const uint8_t *payload(const Mp4Box &box, uint64_t at = 0) const {
    return data_ + box.payload_offset() + at;
  }
  uint64_t payload_size(const Mp4Box &box) const { return box.size - box.header_size; }
  bool err(const Mp4Box &box, const std::string &why) {
    return fail(error_,
                "'" + fourcc_name(box.type) + "' at " + std::to_string(box.offset) + ": " + why);
  }
  // Entry count of a table with fixed-size entries after `header` bytes.
  bool table(const Mp4Box &box, uint64_t header, uint64_t entry_size, uint32_t &count);

  bool moov_child(const Mp4Box &box, void *ctx);
  bool trak_child(const Mp4Box &box, void *ctx);
  bool meta_child(const Mp4Box &box, void *ctx);
  bool freeform(const Mp4Box &box);
  bool stbl_child(const Mp4Box &box, void *ctx);
  bool entry_child(const Mp4Box &box, void *ctx);
  bool tkhd(const Mp4Box &box, Mp4Track &t);
  bool mdhd(const Mp4Box &box, Mp4Track &t);
  bool elst(const Mp4Box &box, Mp4Track &t);
  bool stsd(const Mp4Box &box, Mp4Track &t);
  bool esds(const Mp4Box &box, Mp4Track &t);
  bool sgpd(const Mp4Box &box, Mp4Track &t);
  bool sbgp(const Mp4Box &box, Mp4Track &t);
  bool build_samples(Mp4Track &t);
  void read_sizes(Mp4Track &t);
  bool read_durations(Mp4Track &t);
  bool place_samples(Mp4Track &t);
  static Mp4SampleGroup &group(Mp4Track &t, uint32_t type) {
    for (auto &g : t.groups)
      if (g.grouping_type == type) return g;
    t.groups.emplace_back();
    t.groups.back().grouping_type = type;
    return t.groups.back();
  }

  const uint8_t *data_;
  uint64_t end_;
  const Mp4Limits &limits_;
  std::string *error_;
  int depth_ = 0;
  Mp4File *file_ = nullptr;
  // The raw tables of the track being read.
  struct Tables {
    bool stts = false, stsz = false, stsc = false, stco = false;
    Mp4Box stts_box, stsz_box, stsc_box, stco_box;
    bool co64 = false;
  } tables_;
};

bool MoovParser::children(const Mp4Box &parent, uint64_t skip, int depth, ChildFn fn, void *ctx) {
  if (depth > limits_.max_depth) return err(parent, "boxes nested too deep");
  if (skip > payload_size(parent)) return err(parent, "too short for its fields");
  uint64_t pos = parent.payload_offset() + skip, end = parent.end();
  while (pos < end) {
    if (end - pos < 8) return err(parent, std::to_string(end - pos) + " stray bytes at its end");
    Mp4Box box;
    std::string why;
    if (!read_mp4_box(data_, end, pos, box, &why)) return err(parent, why);
    int saved = depth_;
    depth_ = depth + 1;
    bool ok = (this->*fn)(box, ctx);
    depth_ = saved;
    if (!ok) return false;
    pos = box.end();
  }
  return true;
}

bool MoovParser::full_box(const Mp4Box &box, uint64_t need, int &version) {
  if (payload_size(box) < 4) return err(box, "too short for a full box");
  version = payload(box)[0];
  if (version > 1) return err(box, "unsupported version " + std::to_string(version));
  if (payload_size(box) < 4 + need) return err(box, "too short for its fields");
  return true;
}

bool MoovParser::table(const Mp4Box &box, uint64_t header, uint64_t entry_size, uint32_t &count) {
  if (payload_size(box) < header + 4) return err(box, "too short for its entry count");
  count = rd32(payload(box, header));
  if (count > limits_.max_entries) return err(box, std::to_string(count) + " entries is too many");
  if (uint64_t(count) * entry_size > payload_size(box) - header - 4)
    return err(box, "claims " + std::to_string(count) + " entries, has room for " +
                        std::to_string((payload_size(box) - header - 4) / entry_size));
  return true;
}

bool MoovParser::moov(const Mp4Box &box, Mp4File &out) {
  file_ = &out;
  out.gapless = Mp4Gapless();
  out.tracks.clear();
  out.audio_track = -1;
  if (!children(box, 0, 1, &MoovParser::moov_child, &out)) return false;
  if (out.movie_timescale == 0) return err(box, "no mvhd with a timescale");
  for (size_t i = 0; i < out.tracks.size(); i++) {
    if (out.tracks[i].is_audio()) {
      out.audio_track = int(i);
      break;
    }
  }
  return true;
}

bool MoovParser::moov_child(const Mp4Box &box, void *) {
  Mp4File &f = *file_;
  int v = 0;
  if (box.type == fourcc("mvhd")) {
    if (!full_box(box, 20, v)) return false;
    if (v == 1 && !full_box(box, 28, v)) return false;
    const uint8_t *p = payload(box, 4);
    f.movie_timescale = v == 1 ? rd32(p + 16) : rd32(p + 8);
    f.movie_duration = v == 1 ? rd64(p + 20) : rd32(p + 12);
    if (f.movie_timescale == 0) return err(box, "timescale 0");
  } else if (box.type == fourcc("trak")) {
    if (int(f.tracks.size()) >= limits_.max_tracks) return err(box, "too many tracks");
    f.tracks.emplace_back();
    tables_ = Tables();
    Mp4Track &t = f.tracks.back();
    if (!children(box, 0, depth_, &MoovParser::trak_child, &t)) return false;
    if (t.timescale == 0) return err(box, "track without an mdhd timescale");
    if (!build_samples(t)) return false;
  } else if (box.type == fourcc("mvex")) {
    f.layout.fragmented = true;
  } else if (box.type == fourcc("udta")) {
    return children(box, 0, depth_, &MoovParser::meta_child, nullptr);
  }
  return true;
}

// udta > meta > ilst > '----'. The ISO meta is a full box, QuickTime's is
// not: a 'hdlr' right after the header tells.
bool MoovParser::meta_child(const Mp4Box &box, void *ctx) {
  if (box.type == fourcc("meta")) {
    bool plain = payload_size(box) >= 8 && rd32(payload(box, 4)) == fourcc("hdlr");
    return children(box, plain ? 0 : 4, depth_, &MoovParser::meta_child, ctx);
  }
  if (box.type == fourcc("ilst")) return children(box, 0, depth_, &MoovParser::meta_child, ctx);
  if (box.type == fourcc("----")) return freeform(box);
  return true;
}

// A freeform tag: 'mean', 'name', 'data' boxes. Only iTunSMPB is read:
// " 00000000 00000840 000001CA 00000000003F31F6 ..." (hex: reserved,
// priming, padding, original sample count). A malformed one is ignored.
bool MoovParser::freeform(const Mp4Box &box) {
  std::string name, text;
  for (uint64_t pos = box.payload_offset(); pos < box.end();) {
    Mp4Box child;
    std::string why;
    if (!read_mp4_box(data_, box.end(), pos, child, &why)) return err(box, why);
    uint64_t skip = child.type == fourcc("data") ? 8 : 4;  // (type, locale) or version/flags
    if (payload_size(child) > skip && payload_size(child) - skip <= 256) {
      std::string value(reinterpret_cast<const char *>(payload(child, skip)),
                        size_t(payload_size(child) - skip));
      if (child.type == fourcc("name")) name = value;
      if (child.type == fourcc("data")) text = value;
    }
    pos = child.end();
  }
  if (name != "iTunSMPB") return true;
  uint64_t fields[4];
  const char *p = text.c_str();
  for (uint64_t &f : fields) {
    while (*p == ' ') p++;
    const char *start = p;
    f = 0;
    for (; g_ascii_isxdigit(*p) && p - start < 16; p++)
      f = f << 4 | uint64_t(g_ascii_xdigit_value(*p));
    if (p == start || (*p != ' ' && *p != '\0')) return true;
  }
  Mp4Gapless &g = file_->gapless;
  g.present = fields[1] <= UINT32_MAX && fields[2] <= UINT32_MAX;
  g.priming = uint32_t(fields[1]);
  g.padding = uint32_t(fields[2]);
  g.original_samples = fields[3];
  return true;
}

bool MoovParser::trak_child(const Mp4Box &box, void *ctx) {
  Mp4Track &t = *static_cast<Mp4Track *>(ctx);
  if (box.type == fourcc("tkhd")) return tkhd(box, t);
  if (box.type == fourcc("mdhd")) return mdhd(box, t);
  if (box.type == fourcc("elst")) return elst(box, t);
  if (box.type == fourcc("hdlr")) {
    // mdia's handler comes first; QuickTime's minf has a data handler too.
    int v = 0;
    if (!full_box(box, 8, v)) return false;
    if (t.handler == 0) t.handler = rd32(payload(box, 8));
    return true;
  }
  if (box.type == fourcc("edts") || box.type == fourcc("mdia") || box.type == fourcc("minf"))
    return children(box, 0, depth_, &MoovParser::trak_child, ctx);
  if (box.type == fourcc("stbl")) return children(box, 0, depth_, &MoovParser::stbl_child, ctx);
  return true;
}

bool MoovParser::tkhd(const Mp4Box &box, Mp4Track &t) {
  int v = 0;
  if (!full_box(box, 20, v) || (v == 1 && !full_box(box, 32, v))) return false;
  const uint8_t *p = payload(box, 4);
  t.track_id = v == 1 ? rd32(p + 16) : rd32(p + 8);
  t.tkhd_duration = v == 1 ? rd64(p + 24) : rd32(p + 16);
  return true;
}

bool MoovParser::mdhd(const Mp4Box &box, Mp4Track &t) {
  int v = 0;
  if (!full_box(box, 16, v) || (v == 1 && !full_box(box, 28, v))) return false;
  const uint8_t *p = payload(box, 4);
  t.timescale = v == 1 ? rd32(p + 16) : rd32(p + 8);
  t.media_duration = v == 1 ? rd64(p + 20) : rd32(p + 12);
  if (t.timescale == 0) return err(box, "timescale 0");
  return true;
}

bool MoovParser::elst(const Mp4Box &box, Mp4Track &t) {
  int v = 0;
  uint32_t n = 0;
  if (!full_box(box, 0, v) || !table(box, 4, v == 1 ? 20 : 12, n)) return false;
  t.edits.clear();
  t.edits.reserve(n);
  const uint8_t *p = payload(box, 8);
  for (uint32_t i = 0; i < n; i++) {
    Mp4Edit e;
    if (v == 1) {
      e.segment_duration = rd64(p);
      e.media_time = int64_t(rd64(p + 8));
      p += 16;
    } else {
      e.segment_duration = rd32(p);
      e.media_time = int32_t(rd32(p + 4));
      p += 8;
    }
    e.rate_integer = int16_t(rd16(p));
    e.rate_fraction = int16_t(rd16(p + 2));
    p += 4;
    if (e.media_time < -1) return err(box, "media_time below -1");
    t.edits.push_back(e);
  }
  return true;
}

bool MoovParser::stbl_child(const Mp4Box &box, void *ctx) {
  Mp4Track &t = *static_cast<Mp4Track *>(ctx);
  Tables &tb = tables_;
  if (box.type == fourcc("stsd")) return stsd(box, t);
  if (box.type == fourcc("sgpd")) return sgpd(box, t);
  if (box.type == fourcc("sbgp")) return sbgp(box, t);
  if (box.type == fourcc("stts")) {
    tb.stts = true;
    tb.stts_box = box;
  } else if (box.type == fourcc("stsz") || box.type == fourcc("stz2")) {
    tb.stsz = true;
    tb.stsz_box = box;
  } else if (box.type == fourcc("stsc")) {
    tb.stsc = true;
    tb.stsc_box = box;
  } else if (box.type == fourcc("stco") || box.type == fourcc("co64")) {
    tb.stco = true;
    tb.co64 = box.type == fourcc("co64");
    tb.stco_box = box;
  }
  return true;
}

bool MoovParser::stsd(const Mp4Box &box, Mp4Track &t) {
  int v = 0;
  if (!full_box(box, 4, v)) return false;
  if (rd32(payload(box, 4)) == 0) return err(box, "no sample entry");
  Mp4Box entry;
  std::string why;
  if (!read_mp4_box(data_, box.end(), box.payload_offset() + 8, entry, &why)) return err(box, why);
  t.sample_entry = entry.type;
  static const char *const kAudio[] = {"mp4a", "Opus", "fLaC", ".mp3", "alac", "ac-3", "ec-3"};
  bool audio = t.is_audio();
  for (const char *k : kAudio) audio = audio || entry.type == code_of(k);
  if (!audio) return true;
  // AudioSampleEntry: 8 bytes of SampleEntry, then version, ..., 16.16 rate.
  if (payload_size(entry) < 28) return err(entry, "audio sample entry too short");
  const uint8_t *p = payload(entry);
  int qt_version = rd16(p + 8);
  t.channels = rd16(p + 16);
  t.sample_size = rd16(p + 18);
  t.entry_sample_rate = rd32(p + 24) >> 16;
  uint64_t skip = 28;
  if (qt_version == 1) {
    skip += 16;
  } else if (qt_version == 2) {
    skip += 36;
    if (payload_size(entry) < skip) return err(entry, "version 2 sample entry too short");
    uint64_t bits = rd64(p + 32);
    double rate;
    memcpy(&rate, &bits, sizeof rate);
    t.entry_sample_rate = rate > 0 && rate < 1e7 ? uint32_t(rate) : 0;
    t.channels = int(std::min<uint32_t>(rd32(p + 40), 0xffff));
  }
  return children(entry, skip, depth_, &MoovParser::entry_child, &t);
}

bool MoovParser::entry_child(const Mp4Box &box, void *ctx) {
  Mp4Track &t = *static_cast<Mp4Track *>(ctx);
  if (box.type == fourcc("esds")) return esds(box, t);
  if (box.type == fourcc("wave")) return children(box, 0, depth_, &MoovParser::entry_child, ctx);
  uint64_t skip;
  if (box.type == fourcc("dOps"))
    skip = 0;
  else if (box.type == fourcc("dfLa"))
    skip = 4;  // version and flags, then the FLAC metadata blocks
  else
    return true;
  if (payload_size(box) < skip) return err(box, "too short");
  if (payload_size(box) - skip > limits_.max_codec_data) return err(box, "codec data too big");
  t.codec_data.assign(payload(box, skip), payload(box) + payload_size(box));
  return true;
}

namespace {

// An MPEG-4 descriptor header: tag, then a length of 1-4 bytes of 7 bits.
bool read_descriptor(const uint8_t *&p, const uint8_t *end, int &tag, uint32_t &len) {
  if (end - p < 2) return false;
  tag = *p++;
  len = 0;
  for (int i = 0; i < 4; i++) {
    if (p >= end) return false;
    uint8_t b = *p++;
    len = len << 7 | (b & 0x7f);
    if (!(b & 0x80)) return len <= uint64_t(end - p);
  }
  return false;
}

}  // namespace

bool MoovParser::esds(const Mp4Box &box, Mp4Track &t) {
  int v = 0;
  if (!full_box(box, 0, v)) return false;
  const uint8_t *p = payload(box, 4), *end = payload(box) + payload_size(box);
  int tag = 0;
  uint32_t len = 0;
  if (!read_descriptor(p, end, tag, len)) return err(box, "bad descriptor");
  if (tag == 0x03) {  // ES_Descriptor: ES_ID, flags, optional fields, then descriptors
    end = p + len;
    if (end - p < 3) return err(box, "ES_Descriptor too short");
    uint8_t flags = p[2];
    p += 3;
    if (flags & 0x80) p += 2;
    if ((flags & 0x40) && p < end) p += 1 + *p;
    if (flags & 0x20) p += 2;
    if (p > end) return err(box, "ES_Descriptor too short");
    if (!read_descriptor(p, end, tag, len)) return err(box, "bad DecoderConfigDescriptor");
  }
  if (tag != 0x04 || len < 13) return err(box, "no DecoderConfigDescriptor");
  t.object_type_indication = p[0];
  end = p + len;
  p += 13;
  while (p < end) {
    if (!read_descriptor(p, end, tag, len)) return err(box, "bad DecoderSpecificInfo");
    if (tag == 0x05) {
      if (len > limits_.max_codec_data) return err(box, "codec data too big");
      t.codec_data.assign(p, p + len);
      break;
    }
    p += len;
  }
  return true;
}

bool MoovParser::sgpd(const Mp4Box &box, Mp4Track &t) {
  // version, flags, grouping_type, [v1: default_length | v2: default index], count
  if (payload_size(box) < 8) return err(box, "too short");
  int v = payload(box)[0];
  uint32_t type = rd32(payload(box, 4));
  if (v > 2 || (type != fourcc("roll") && type != fourcc("prol"))) return true;
  uint64_t header = v == 0 ? 8 : 12;
  if (payload_size(box) < header) return err(box, "too short");
  uint32_t default_length = v == 1 ? rd32(payload(box, 8)) : 2;
  if (default_length == 1) return err(box, "roll entries under 2 bytes");
  uint32_t n = 0;
  if (!table(box, header, default_length ? default_length : 6, n)) return false;
  Mp4SampleGroup &g = group(t, type);
  g.roll_distances.clear();
  g.roll_distances.reserve(n);
  const uint8_t *p = payload(box, header + 4), *end = payload(box) + payload_size(box);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t len = default_length;
    if (!len) {
      if (end - p < 4) return err(box, "entries cut short");
      len = rd32(p);
      p += 4;
    }
    if (len < 2 || len > uint64_t(end - p)) return err(box, "entry length out of the box");
    g.roll_distances.push_back(int16_t(rd16(p)));
    p += len;
  }
  return true;
}

bool MoovParser::sbgp(const Mp4Box &box, Mp4Track &t) {
  int v = 0;
  uint32_t n = 0;
  if (!full_box(box, 4, v)) return false;
  uint32_t type = rd32(payload(box, 4));
  if (type != fourcc("roll") && type != fourcc("prol")) return true;
  uint64_t header = v == 1 ? 12 : 8;
  if (!table(box, header, 8, n)) return false;
  Mp4SampleGroup &g = group(t, type);
  g.runs.clear();
  g.runs.reserve(n);
  const uint8_t *p = payload(box, header + 4);
  for (uint32_t i = 0; i < n; i++, p += 8) g.runs.emplace_back(rd32(p), rd32(p + 4));
  return true;
}

bool MoovParser::build_samples(Mp4Track &t) {
  const Tables &tb = tables_;
  if (!tb.stsz) {
    if (tb.stts || tb.stco) return err(tb.stts ? tb.stts_box : tb.stco_box, "no stsz beside it");
    return true;  // no sample table (an fMP4 init, a track without samples)
  }
  int v = 0;
  const Mp4Box &sz = tb.stsz_box;
  if (!full_box(sz, 8, v)) return false;
  bool compact = sz.type == fourcc("stz2");
  uint32_t constant = compact ? 0 : rd32(payload(sz, 4));
  int field = compact ? payload(sz, 4)[3] : 32;
  if (field != 4 && field != 8 && field != 16 && field != 32)
    return err(sz, "field size " + std::to_string(field));
  uint32_t count = rd32(payload(sz, 8));
  if (count > limits_.max_samples) return err(sz, std::to_string(count) + " samples is too many");
  if (constant == 0 && (uint64_t(count) * uint64_t(field) + 7) / 8 > payload_size(sz) - 12)
    return err(sz, "claims " + std::to_string(count) + " samples, the box has room for fewer");
  if (count == 0) return true;
  if (!tb.stts || !tb.stsc || !tb.stco) return err(sz, "sample table without stts/stsc/stco");
  t.samples.assign(count, Mp4Sample());
  read_sizes(t);
  return read_durations(t) && place_samples(t);
}

// Sample sizes from stsz (constant or 32 bits each) or stz2 (4, 8, 16 bits).
void MoovParser::read_sizes(Mp4Track &t) {
  const Mp4Box &sz = tables_.stsz_box;
  bool compact = sz.type == fourcc("stz2");
  uint32_t constant = compact ? 0 : rd32(payload(sz, 4));
  int field = compact ? payload(sz, 4)[3] : 32;
  uint32_t count = uint32_t(t.samples.size());
  const uint8_t *p = payload(sz, 12);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t size = constant;
    if (field == 32 && !constant) size = rd32(p + 4 * size_t(i));
    if (field == 16) size = rd16(p + 2 * size_t(i));
    if (field == 8) size = p[i];
    if (field == 4) size = (p[i / 2] >> (i % 2 ? 0 : 4)) & 0x0f;
    t.samples[i].size = size;
  }
}

bool MoovParser::read_durations(Mp4Track &t) {
  const Tables &tb = tables_;
  int v = 0;
  uint32_t n = 0, count = uint32_t(t.samples.size());
  if (!full_box(tb.stts_box, 0, v) || !table(tb.stts_box, 4, 8, n)) return false;
  uint64_t idx = 0;
  t.samples_duration = 0;
  const uint8_t *p = payload(tb.stts_box, 8);
  for (uint32_t e = 0; e < n; e++, p += 8) {
    uint32_t c = rd32(p), d = rd32(p + 4);
    if (c > count - idx) return err(tb.stts_box, "describes more samples than stsz has");
    for (uint32_t k = 0; k < c; k++) t.samples[idx++].duration = d;
    t.samples_duration += uint64_t(c) * d;
  }
  if (idx != count)
    return err(tb.stts_box, "gives " + std::to_string(idx) + " durations for " +
                                std::to_string(count) + " samples");
  return true;
}

// Offsets: chunks from stco/co64, samples per chunk from stsc.
bool MoovParser::place_samples(Mp4Track &t) {
  const Tables &tb = tables_;
  int v = 0;
  uint32_t chunks = 0, runs = 0, count = uint32_t(t.samples.size());
  uint64_t esize = tb.co64 ? 8 : 4;
  if (!full_box(tb.stco_box, 0, v) || !table(tb.stco_box, 4, esize, chunks)) return false;
  if (!full_box(tb.stsc_box, 0, v) || !table(tb.stsc_box, 4, 12, runs)) return false;
  const uint8_t *sc = payload(tb.stsc_box, 8), *co = payload(tb.stco_box, 8);
  uint64_t idx = 0;
  for (uint32_t r = 0; r < runs; r++) {
    uint64_t first = rd32(sc + 12 * size_t(r)), per_chunk = rd32(sc + 12 * size_t(r) + 4);
    uint64_t next = r + 1 < runs ? rd32(sc + 12 * size_t(r + 1)) : uint64_t(chunks) + 1;
    if ((r == 0 && first != 1) || first > chunks || next <= first || next > uint64_t(chunks) + 1)
      return err(tb.stsc_box,
                 "chunk runs out of order or past the " + std::to_string(chunks) + " chunks");
    for (uint64_t c = first; c < next; c++) {
      uint64_t off = tb.co64 ? rd64(co + 8 * (c - 1)) : rd32(co + 4 * (c - 1));
      if (per_chunk > count - idx) return err(tb.stsc_box, "places more samples than stsz has");
      for (uint64_t k = 0; k < per_chunk; k++) {
        Mp4Sample &s = t.samples[idx++];
        if (off > UINT64_MAX - s.size) return err(tb.stco_box, "offsets overflow");
        s.offset = off;
        off += s.size;
      }
    }
  }
  if (idx != count)
    return err(tb.stsc_box,
               "places " + std::to_string(idx) + " of " + std::to_string(count) + " samples");
  return true;
}

}  // namespace

bool parse_mp4_moov(const uint8_t *moov, size_t size, Mp4File &out, std::string *error,
                    const Mp4Limits &limits) {
  Mp4Box box;
  if (!read_mp4_box(moov, size, 0, box, error)) return false;
  if (box.type != fourcc("moov")) return fail(error, "not a moov: '" + fourcc_name(box.type) + "'");
  out.movie_timescale = 0;
  out.movie_duration = 0;
  MoovParser parser(moov, box.end(), limits, error);
  return parser.moov(box, out);
}

bool parse_mp4(const uint8_t *data, size_t size, Mp4File &out, std::string *error,
               const Mp4Limits &limits) {
  out = Mp4File();
  if (!data || size == 0) return fail(error, "no data");
  if (!scan_mp4_layout(data, size, out.layout, error)) return false;
  const Mp4Layout &l = out.layout;
  if (!l.has_moov) return fail(error, "no moov in " + std::to_string(size) + " bytes");
  if (l.moov_offset + l.moov_size > size)
    return fail(error, "moov cut short: it ends at " + std::to_string(l.moov_offset + l.moov_size) +
                           ", the data at " + std::to_string(size));
  Mp4Box box;
  if (!read_mp4_box(data, size, l.moov_offset, box, error)) return false;
  out.movie_timescale = 0;
  MoovParser parser(data, box.end(), limits, error);
  return parser.moov(box, out);
}

namespace {

// v * to / from, rounded to the nearest, saturating.
int64_t rescale(uint64_t v, uint32_t to, uint32_t from) {
  unsigned __int128 x = (unsigned __int128)v * to + from / 2;
  x /= from;
  return x > (unsigned __int128)INT64_MAX ? INT64_MAX : int64_t(x);
}

void apply_edits(const Mp4File &file, const Mp4Track &track, Mp4Presentation &out) {
  const std::vector<Mp4Edit> &edits = track.edits;
  size_t i = 0;
  uint64_t empty = 0;
  for (; i < edits.size() && edits[i].media_time == -1; i++)
    empty = edits[i].segment_duration > UINT64_MAX - empty ? UINT64_MAX
                                                           : empty + edits[i].segment_duration;
  out.empty_offset = rescale(empty, track.timescale, file.movie_timescale);
  out.duration = out.samples_duration;
  if (i == edits.size()) return;
  const Mp4Edit &e = edits[i];
  out.has_edits = true;
  out.start_trim = e.media_time;
  out.rate_ok = e.rate_integer == 1 && e.rate_fraction == 0;
  for (size_t j = i + 1; j < edits.size(); j++)
    if (edits[j].media_time != -1) out.extra_edits = true;
  int64_t available = out.samples_duration - std::min(out.start_trim, out.samples_duration);
  out.edit_duration = e.segment_duration == 0
                          ? available
                          : rescale(e.segment_duration, track.timescale, file.movie_timescale);
  // An edit within a movie tick of the sample table's end means that end:
  // writers compute it from the table and round it to the movie timescale.
  bool to_table_end = std::abs(out.edit_duration - available) <= out.tolerance;
  out.duration = to_table_end ? available : std::min(available, out.edit_duration);
  out.end_trim = available - out.duration;
}

void find_roll(const Mp4Track &track, Mp4Presentation &out) {
  for (const Mp4SampleGroup &g : track.groups) {
    if (g.grouping_type != fourcc("roll") || g.roll_distances.empty()) continue;
    // The first group sbgp maps samples to (ffmpeg leaves an Opus track's
    // first samples out of it), or the only one when there is no sbgp.
    uint32_t index = g.runs.empty() && g.roll_distances.size() == 1 ? 1 : 0;
    for (const auto &run : g.runs) {
      if (run.first > 0 && run.second > 0) {
        index = run.second;
        break;
      }
    }
    if (index == 0 || index > g.roll_distances.size()) continue;
    out.has_roll = true;
    out.roll_distance = g.roll_distances[index - 1];
  }
}

// Checks every sample against the mdat boxes present in data.
void check_samples(const Mp4Track &track, const uint8_t *data, size_t size, Mp4Presentation &out) {
  std::vector<std::pair<uint64_t, uint64_t>> mdats;  // payload [start, end), clipped to size
  for (uint64_t pos = 0; pos < size;) {
    Mp4Box box;
    if (!read_mp4_box(data, size, pos, box, nullptr, true)) break;
    uint64_t end = std::min<uint64_t>(box.end(), size);
    if (box.type == fourcc("mdat")) mdats.emplace_back(box.payload_offset(), end);
    if (box.size > size - pos) break;
    pos += box.size;
  }
  for (size_t i = 0; i < track.samples.size(); i++) {
    const Mp4Sample &s = track.samples[i];
    auto it = std::upper_bound(mdats.begin(), mdats.end(), std::make_pair(s.offset, UINT64_MAX));
    bool inside = it != mdats.begin() && s.offset >= (it - 1)->first &&
                  s.offset <= (it - 1)->second && s.size <= (it - 1)->second - s.offset;
    out.mdat_end = std::max(out.mdat_end, s.offset + s.size);
    if (!inside && out.consistent) {
      out.consistent = false;
      out.inconsistency = "sample " + std::to_string(i) + " (offset " + std::to_string(s.offset) +
                          ", " + std::to_string(s.size) + " bytes) lies " +
                          (s.offset + s.size > size
                               ? "past the end of the data (" + std::to_string(size) + " bytes)"
                               : std::string("outside every mdat"));
    }
  }
}

}  // namespace

bool mp4_presentation(const Mp4File &file, const Mp4Track &track, const uint8_t *data, size_t size,
                      Mp4Presentation &out, std::string *error) {
  out = Mp4Presentation();
  if (track.timescale == 0 || file.movie_timescale == 0) return fail(error, "timescale 0");
  out.timescale = track.timescale;
  out.samples_duration = int64_t(std::min<uint64_t>(track.samples_duration, INT64_MAX));
  out.tolerance = (track.timescale + file.movie_timescale - 1) / file.movie_timescale;
  apply_edits(file, track, out);
  if (out.start_trim > out.samples_duration)
    return fail(error, "the edit starts at " + std::to_string(out.start_trim) +
                           ", after the media's end at " + std::to_string(out.samples_duration));
  find_roll(track, out);
  if (track.samples.empty()) {
    out.consistent = false;
    out.inconsistency = "no samples";
  } else if (data) {
    check_samples(track, data, size, out);
  }
  return true;
}

Mp4Progressive::State Mp4Progressive::fail_with(const std::string &why) {
  error_ = why;
  state_ = State::Error;
  return state_;
}

Mp4Progressive::State Mp4Progressive::on_head(const uint8_t *data, size_t size) {
  if (state_ != State::NeedHead && state_ != State::NeedTail) return state_;
  Mp4Layout l;
  std::string why;
  if (!scan_mp4_layout(data, size, l, &why)) return fail_with(why);
  if (l.fragmented) return state_ = State::Whole;
  if (!l.has_mdat) return state_;  // NeedHead: the mdat's header tells what to do
  Mp4Box mdat;
  if (!read_mp4_box(data, size, l.mdat_offset, mdat, &why, true)) return fail_with(why);
  // Only a sized mdat has an end the samples can be checked against.
  if (mdat.to_end) return state_ = State::Whole;
  head_layout_ = l;
  mdat_payload_ = mdat.payload_offset();
  tail_offset_ = mdat.end();
  if (l.has_moov && size >= l.moov_offset + l.moov_size)
    return read_moov(data + l.moov_offset, size_t(l.moov_size), l);  // in the head already
  if (l.has_moov && l.moov_before_mdat) return state_;  // NeedHead: the rest of the moov
  return state_ = State::NeedTail;
}

Mp4Progressive::State Mp4Progressive::on_tail(const uint8_t *data, size_t size) {
  if (state_ != State::NeedTail) return state_;
  std::string why;
  for (uint64_t pos = 0; pos < size;) {
    Mp4Box box;
    if (!read_mp4_box(data, size, pos, box, &why))
      return fail_with("the file's tail from " + std::to_string(tail_offset_) + ": " + why);
    if (box.type == fourcc("moov")) {
      Mp4Layout l = head_layout_;
      l.has_moov = true;
      l.moov_offset = tail_offset_ + pos;
      l.moov_size = box.size;
      l.moov_before_mdat = false;
      return read_moov(data + pos, size_t(box.size), l);
    }
    pos = box.end();
  }
  return fail_with("no moov in the " + std::to_string(size) + " bytes after the mdat");
}

// Reads the moov (whole, from its header) with what the head said of the
// layout; checks the audio track's samples against the mdat as
// mp4_presentation() does with the whole file.
Mp4Progressive::State Mp4Progressive::read_moov(const uint8_t *moov, size_t size,
                                                const Mp4Layout &layout) {
  std::string why;
  file_ = Mp4File();
  if (!parse_mp4_moov(moov, size, file_, &why, limits_)) return fail_with(why);
  file_.layout = layout;
  if (file_.audio_track < 0) return state_ = State::Whole;  // the whole-file path says why
  if (!mp4_presentation(file_, audio(), nullptr, 0, presentation_, &why)) return fail_with(why);
  if (!presentation_.consistent) return fail_with(presentation_.inconsistency);
  const std::vector<Mp4Sample> &samples = audio().samples;
  for (size_t i = 0; i < samples.size(); i++) {
    const Mp4Sample &s = samples[i];
    presentation_.mdat_end = std::max(presentation_.mdat_end, s.offset + s.size);
    if (s.offset < mdat_payload_ || s.offset > tail_offset_ || s.size > tail_offset_ - s.offset) {
      // Outside the first mdat (another mdat, or a bad table): the
      // whole-file path judges it.
      error_ = "sample " + std::to_string(i) + " lies outside the first mdat";
      return state_ = State::Whole;
    }
  }
  ready_ = 0;
  return state_ = State::Ready;
}

size_t Mp4Progressive::samples_in(uint64_t head_bytes) {
  if (state_ != State::Ready) return 0;
  const std::vector<Mp4Sample> &samples = audio().samples;
  while (ready_ < samples.size() && samples[ready_].offset + samples[ready_].size <= head_bytes)
    ready_++;
  return ready_;
}

}  // namespace segdl
