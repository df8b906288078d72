// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segment fixtures: ISO BMFF boxes (see segmenter.h and
 * segmenter-private.h). mp4mux's output made deterministic (its wall-clock
 * times set to 0) and moved to its start time on the track's timeline (an
 * empty edit, or the fragments' tfdt), and a fragmented MP4 cut into byte
 * ranges of one file (split_fragmented).
 */
#include "common/segmenter.h"
#include "common/segmenter-private.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace segdl::media {

using namespace detail;

namespace {

// Adds `delta` to the 32-bit size of the box at `offset` (none of ours is 64-bit).
bool grow_box(Bytes &b, const Box &box, uint32_t delta) {
  if (box.header != 8 || box.size + delta > UINT32_MAX) return false;
  wr32(&b[box.offset], static_cast<uint32_t>(box.size + delta));
  return true;
}

}  // namespace

namespace detail {

uint32_t rd32(const uint8_t *p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}

uint64_t rd64(const uint8_t *p) {
  return (static_cast<uint64_t>(rd32(p)) << 32) | rd32(p + 4);
}

// The boxes directly inside [begin, end). False on a size that does not fit.
bool list_boxes(const Bytes &b, size_t begin, size_t end, std::vector<Box> &out) {
  out.clear();
  size_t off = begin;
  while (off < end) {
    if (end - off < 8) return false;
    Box box;
    box.offset = off;
    box.header = 8;
    uint64_t size = rd32(&b[off]);
    std::memcpy(box.type, &b[off + 4], 4);
    if (size == 1) {
      if (end - off < 16) return false;
      size = rd64(&b[off + 8]);
      box.header = 16;
    } else if (size == 0) {
      size = end - off;
    }
    if (size < box.header || size > end - off) return false;
    box.size = static_cast<size_t>(size);
    out.push_back(box);
    off += box.size;
  }
  return true;
}

const Box *find_box(const std::vector<Box> &boxes, const char *type) {
  for (const Box &b : boxes) {
    if (std::memcmp(b.type, type, 4) == 0) return &b;
  }
  return nullptr;
}

void wr32(uint8_t *p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void wr64(uint8_t *p, uint64_t v) {
  wr32(p, static_cast<uint32_t>(v >> 32));
  wr32(p + 4, static_cast<uint32_t>(v));
}

// The boxes inside `box` (after its header and, for a full box, `skip` more bytes).
bool children(const Bytes &b, const Box &box, std::vector<Box> &out, size_t skip) {
  return list_boxes(b, box.offset + box.header + skip, box.offset + box.size, out);
}

// mp4mux writes the wall clock (seconds) as creation and modification time
// of mvhd, tkhd and mdhd; set them to 0 so that every run gives the same
// bytes. Sizes do not change.
void zero_mp4_times(Bytes &b) {
  auto zero = [&b](const Box &full) {
    const size_t p = full.offset + full.header;  // version + flags, then the times
    if (full.size < full.header + 4 + 16) return;
    const bool v1 = b[p] == 1;
    std::fill(b.begin() + static_cast<std::ptrdiff_t>(p + 4),
              b.begin() + static_cast<std::ptrdiff_t>(p + 4 + (v1 ? 16 : 8)), 0);
  };
  std::vector<Box> top, moov, trak, mdia;
  if (!list_boxes(b, 0, b.size(), top)) return;
  const Box *mv = find_box(top, "moov");
  if (!mv || !list_boxes(b, mv->offset + mv->header, mv->offset + mv->size, moov)) return;
  for (const Box &m : moov) {
    if (std::memcmp(m.type, "mvhd", 4) == 0) zero(m);
    if (std::memcmp(m.type, "trak", 4) != 0) continue;
    if (!list_boxes(b, m.offset + m.header, m.offset + m.size, trak)) continue;
    for (const Box &t : trak) {
      if (std::memcmp(t.type, "tkhd", 4) == 0) zero(t);
      if (std::memcmp(t.type, "mdia", 4) != 0) continue;
      if (!list_boxes(b, t.offset + t.header, t.offset + t.size, mdia)) continue;
      const Box *mdhd = find_box(mdia, "mdhd");
      if (mdhd) zero(*mdhd);
    }
  }
}

// mp4mux starts every file at 0, whatever its first timestamp. A file cut
// from the middle of a track with TimestampMode::Absolute gets what ffmpeg's
// mov muxer writes for a late start: an edit list with an empty edit of
// `start_ns`, then the media (replacing mp4mux's one-entry edit list). The
// moov grows; when it comes before the mdat (faststart) the chunk offsets
// move with it.
bool add_start_edit(Bytes &b, uint64_t start_ns, std::string &error) {
  std::vector<Box> top, moov, trak, mdia, minf, stbl;
  if (!list_boxes(b, 0, b.size(), top)) return false;
  const Box *mv = find_box(top, "moov");
  const Box *mdat = find_box(top, "mdat");
  if (!mv || !mdat || !children(b, *mv, moov)) return false;
  const Box *mvhd = find_box(moov, "mvhd");
  const Box *tk = find_box(moov, "trak");
  if (!mvhd || !tk || !children(b, *tk, trak)) return false;
  const Box *tkhd = find_box(trak, "tkhd");
  const Box *md = find_box(trak, "mdia");
  if (!tkhd || !md || !children(b, *md, mdia)) return false;
  const Box *mdhd = find_box(mdia, "mdhd");
  const Box *mi = find_box(mdia, "minf");
  if (!mdhd || !mi || !children(b, *mi, minf)) return false;
  const Box *st = find_box(minf, "stbl");
  if (!st || !children(b, *st, stbl)) return false;

  // mvhd: version, flags, 2 times, timescale, duration (32 or 64 bits).
  const size_t mp = mvhd->offset + mvhd->header;
  const bool mv1 = b[mp] == 1;
  const uint32_t movie_scale = rd32(&b[mp + (mv1 ? 20 : 12)]);
  const size_t mvhd_dur = mp + (mv1 ? 24 : 16);
  // mdhd: same layout.
  const size_t dp = mdhd->offset + mdhd->header;
  const bool md1 = b[dp] == 1;
  const uint32_t media_scale = rd32(&b[dp + (md1 ? 20 : 12)]);
  const uint64_t media_dur = md1 ? rd64(&b[dp + 24]) : rd32(&b[dp + 16]);
  if (!movie_scale || !media_scale) return false;
  const uint64_t empty = gst_util_uint64_scale_round(start_ns, movie_scale, GST_SECOND);
  const uint64_t media = gst_util_uint64_scale_round(media_dur, movie_scale, media_scale);
  if (empty + media > UINT32_MAX) {
    error = "edit list too long for 32-bit entries";
    return false;
  }
  // tkhd: version, flags, 2 times, track_ID, reserved, duration.
  const size_t tp = tkhd->offset + tkhd->header;
  const bool tk1 = b[tp] == 1;
  const size_t tkhd_dur = tp + (tk1 ? 28 : 20);
  if (mv1)
    wr64(&b[mvhd_dur], empty + media);
  else
    wr32(&b[mvhd_dur], static_cast<uint32_t>(empty + media));
  if (tk1)
    wr64(&b[tkhd_dur], empty + media);
  else
    wr32(&b[tkhd_dur], static_cast<uint32_t>(empty + media));

  // The media edit keeps the media_time of the edit mp4mux wrote, if any.
  const Box *old_edts = find_box(trak, "edts");
  uint32_t media_time = 0;
  std::vector<Box> edts_kids;
  if (old_edts && children(b, *old_edts, edts_kids)) {
    const Box *elst = find_box(edts_kids, "elst");
    if (elst && elst->size >= elst->header + 20 && b[elst->offset + elst->header] == 0)
      media_time = rd32(&b[elst->offset + elst->header + 12]);
  }
  // edts { elst v0: 2 entries (duration, media_time, rate 1.0) }
  Bytes edts(48, 0);
  wr32(&edts[0], 48);
  std::memcpy(&edts[4], "edts", 4);
  wr32(&edts[8], 40);
  std::memcpy(&edts[12], "elst", 4);
  wr32(&edts[20], 2);
  wr32(&edts[24], static_cast<uint32_t>(empty));
  wr32(&edts[28], UINT32_MAX);  // media_time -1: empty edit
  wr32(&edts[32], 0x00010000);
  wr32(&edts[36], static_cast<uint32_t>(media));
  wr32(&edts[40], media_time);
  wr32(&edts[44], 0x00010000);
  const size_t removed = old_edts ? old_edts->size : 0;
  const uint32_t grow = static_cast<uint32_t>(edts.size() - removed);

  // Chunk offsets first (positions do not move before the insertion point).
  if (mv->offset < mdat->offset) {
    const Box *stco = find_box(stbl, "stco");
    const Box *co64 = find_box(stbl, "co64");
    const Box *co = stco ? stco : co64;
    if (!co) return false;
    const size_t cp = co->offset + co->header;
    const uint32_t n = rd32(&b[cp + 4]);
    const size_t width = stco ? 4 : 8;
    if (cp + 8 + n * width > co->offset + co->size) return false;
    for (uint32_t i = 0; i < n; i++) {
      uint8_t *e = &b[cp + 8 + i * width];
      if (stco) {
        if (static_cast<uint64_t>(rd32(e)) + grow > UINT32_MAX) return false;
        wr32(e, rd32(e) + grow);
      } else {
        wr64(e, rd64(e) + grow);
      }
    }
  }
  if (!grow_box(b, *tk, grow) || !grow_box(b, *mv, grow)) return false;
  const size_t at = old_edts ? old_edts->offset : tkhd->offset + tkhd->size;
  b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
          b.begin() + static_cast<std::ptrdiff_t>(at + removed));
  b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), edts.begin(), edts.end());
  return true;
}

// Fragmented MP4 with TimestampMode::Absolute: moves every tfdt (fragment
// decode time) by `start_ns`, as a packager keeps the track's timeline.
bool shift_fragment_times(Bytes &b, uint64_t start_ns) {
  std::vector<Box> top, moov, trak, mdia, moof, traf;
  if (!list_boxes(b, 0, b.size(), top)) return false;
  const Box *mv = find_box(top, "moov");
  if (!mv || !children(b, *mv, moov)) return false;
  const Box *tk = find_box(moov, "trak");
  if (!tk || !children(b, *tk, trak)) return false;
  const Box *md = find_box(trak, "mdia");
  if (!md || !children(b, *md, mdia)) return false;
  const Box *mdhd = find_box(mdia, "mdhd");
  if (!mdhd) return false;
  const size_t dp = mdhd->offset + mdhd->header;
  const uint32_t scale = rd32(&b[dp + (b[dp] == 1 ? 20 : 12)]);
  if (!scale) return false;
  const uint64_t delta = gst_util_uint64_scale_round(start_ns, scale, GST_SECOND);
  for (const Box &m : top) {
    if (std::memcmp(m.type, "moof", 4) != 0 || !children(b, m, moof)) continue;
    for (const Box &t : moof) {
      if (std::memcmp(t.type, "traf", 4) != 0 || !children(b, t, traf)) continue;
      const Box *tfdt = find_box(traf, "tfdt");
      if (!tfdt) return false;
      const size_t p = tfdt->offset + tfdt->header;
      if (b[p] == 1) {
        wr64(&b[p + 4], rd64(&b[p + 4]) + delta);
      } else {
        if (static_cast<uint64_t>(rd32(&b[p + 4])) + delta > UINT32_MAX) return false;
        wr32(&b[p + 4], static_cast<uint32_t>(rd32(&b[p + 4]) + delta));
      }
    }
  }
  return true;
}

}  // namespace detail

// ---- split_fragmented -------------------------------------------------------------

namespace {

// Fragment timing from moov (timescale, trex default duration) and one moof
// (tfdt, tfhd / trun durations). Only the first track is considered.
struct FragmentClock {
  uint32_t timescale = 0;
  uint32_t trex_duration = 0;
};

bool read_moov_clock(const Bytes &b, const Box &moov, FragmentClock &clk) {
  std::vector<Box> kids, trak, mdia, mvex;
  if (!list_boxes(b, moov.offset + moov.header, moov.offset + moov.size, kids)) return false;
  const Box *tk = find_box(kids, "trak");
  if (!tk || !list_boxes(b, tk->offset + tk->header, tk->offset + tk->size, trak)) return false;
  const Box *md = find_box(trak, "mdia");
  if (!md || !list_boxes(b, md->offset + md->header, md->offset + md->size, mdia)) return false;
  const Box *mdhd = find_box(mdia, "mdhd");
  if (!mdhd) return false;
  const size_t p = mdhd->offset + mdhd->header;
  const bool v1 = b[p] == 1;
  const size_t ts_at = p + 4 + (v1 ? 16 : 8);
  if (ts_at + 4 > mdhd->offset + mdhd->size) return false;
  clk.timescale = rd32(&b[ts_at]);
  const Box *mx = find_box(kids, "mvex");
  if (mx && list_boxes(b, mx->offset + mx->header, mx->offset + mx->size, mvex)) {
    const Box *trex = find_box(mvex, "trex");
    // version/flags, track_ID, default_sample_description_index, default_sample_duration
    if (trex && trex->size >= trex->header + 16)
      clk.trex_duration = rd32(&b[trex->offset + trex->header + 12]);
  }
  return clk.timescale > 0;
}

// Start and duration (track timescale) of the first traf of a moof.
bool read_moof_time(const Bytes &b, const Box &moof, const FragmentClock &clk, uint64_t &start,
                    uint64_t &duration) {
  std::vector<Box> kids, traf;
  if (!list_boxes(b, moof.offset + moof.header, moof.offset + moof.size, kids)) return false;
  const Box *tf = find_box(kids, "traf");
  if (!tf || !list_boxes(b, tf->offset + tf->header, tf->offset + tf->size, traf)) return false;
  const Box *tfdt = find_box(traf, "tfdt");
  if (!tfdt || tfdt->size < tfdt->header + 8) return false;
  const size_t p = tfdt->offset + tfdt->header;
  if (b[p] == 1) {
    if (tfdt->size < tfdt->header + 12) return false;
    start = rd64(&b[p + 4]);
  } else {
    start = rd32(&b[p + 4]);
  }
  uint32_t default_duration = clk.trex_duration;
  if (const Box *tfhd = find_box(traf, "tfhd")) {
    const size_t q = tfhd->offset + tfhd->header;
    const uint32_t flags = rd32(&b[q]) & 0xffffff;
    size_t at = q + 8;          // after version/flags and track_ID
    if (flags & 0x01) at += 8;  // base_data_offset
    if (flags & 0x02) at += 4;  // sample_description_index
    if ((flags & 0x08) && at + 4 <= tfhd->offset + tfhd->size) default_duration = rd32(&b[at]);
  }
  duration = 0;
  for (const Box &t : traf) {
    if (std::memcmp(t.type, "trun", 4) != 0) continue;
    const size_t q = t.offset + t.header;
    const size_t end = t.offset + t.size;
    if (q + 8 > end) return false;
    const uint32_t flags = rd32(&b[q]) & 0xffffff;
    const uint32_t count = rd32(&b[q + 4]);
    size_t at = q + 8;
    if (flags & 0x001) at += 4;  // data_offset
    if (flags & 0x004) at += 4;  // first_sample_flags
    size_t per_sample = 0;
    for (uint32_t bit : {0x100u, 0x200u, 0x400u, 0x800u})
      if (flags & bit) per_sample += 4;
    for (uint32_t i = 0; i < count; i++) {
      if (flags & 0x100) {
        if (at + 4 > end) return false;
        duration += rd32(&b[at]);
      } else {
        duration += default_duration;
      }
      at += per_sample;
    }
  }
  return true;
}

}  // namespace

bool split_fragmented(const Bytes &fmp4, double first_s, double seg_s, std::vector<Bytes> &out,
                      std::string &error) {
  std::vector<Box> top;
  if (!list_boxes(fmp4, 0, fmp4.size(), top)) {
    error = "not an ISO BMFF file (bad top-level box sizes)";
    return false;
  }
  const Box *moov = find_box(top, "moov");
  FragmentClock clk;
  if (!moov || !read_moov_clock(fmp4, *moov, clk)) {
    error = "no moov with a track timescale";
    return false;
  }
  std::vector<size_t> offsets;  // of every moof
  std::vector<uint64_t> starts;
  uint64_t end_ns = 0;
  for (const Box &box : top) {
    if (std::memcmp(box.type, "moof", 4) != 0) continue;
    uint64_t start = 0, duration = 0;
    if (!read_moof_time(fmp4, box, clk, start, duration)) {
      error = "moof at byte " + std::to_string(box.offset) + " has no usable tfdt / trun";
      return false;
    }
    offsets.push_back(box.offset);
    starts.push_back(gst_util_uint64_scale(start, GST_SECOND, clk.timescale));
    end_ns = std::max(end_ns, gst_util_uint64_scale(start + duration, GST_SECOND, clk.timescale));
  }
  if (offsets.empty()) {
    error = "no moof: not a fragmented MP4";
    return false;
  }
  // The first cut is at byte 0 (init + first fragments), not at the first moof.
  std::vector<size_t> cuts = cuts_over(starts, end_ns, first_s, seg_s);
  std::vector<Bytes> parts;
  for (size_t k = 0; k < cuts.size(); k++) {
    const size_t begin = k == 0 ? 0 : offsets[cuts[k]];
    const size_t end = k + 1 < cuts.size() ? offsets[cuts[k + 1]] : fmp4.size();
    parts.emplace_back(fmp4.begin() + static_cast<std::ptrdiff_t>(begin),
                       fmp4.begin() + static_cast<std::ptrdiff_t>(end));
  }
  out = std::move(parts);
  return true;
}

}  // namespace segdl::media
