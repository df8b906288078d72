// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's join=timeline reads an m4a segment while it arrives
 * (issue 11: first audio before the whole segment). ffmpeg writes each
 * segment's moov after its mdat, so the frames cannot be told apart before
 * the end. segdl::Mp4Progressive reads the head as it comes; when the moov
 * follows the mdat, its tail comes from the engine: for segment 0 (and a
 * seek's target) a suffix Range sent with the body (one round trip), else
 * asked from the mdat's end once the head shows it, unless the rest of the
 * mdat is already buffered (Downloader::request_tail()). Once the moov is
 * read, the samples whose bytes are in go into the timeline as the body
 * arrives, with the caps and the edit-list trims read_mp4_segment() gives
 * the whole file (mp4_segment_setup()), so trims, edit lists and seeks are
 * those of the whole-segment path. Without Range (or for a fragmented file,
 * another codec, an mdat to the end...) the segment is read whole, as
 * before, by flush_iso(). Streaming thread (see gstsegdlsrc-stream.h).
 */
#include "gstsegdlsrc-stream.h"

#include <algorithm>
#include <cstring>

#define GST_CAT_DEFAULT gst_seg_dl_src_debug

using Mp4State = segdl::Mp4Progressive::State;

// The reading in hand belongs to the segment being collected (a seek, a
// fallback or a new segment starts afresh).
// The reading of the segment being collected, made afresh for a new
// collection (a new segment, a seek, a fallback, a refetch); null when
// there is none or it is read whole.
static GstSegDlSrcMp4 *current(GstSegDlSrcPrivate *priv) {
  GstSegDlSrcMp4 &m = priv->mp4;
  if (m.collection != priv->iso_bytes) {
    m.clear();
    if (!priv->iso_bytes) return nullptr;
    m.collection = g_byte_array_ref(priv->iso_bytes);
    m.segment = priv->iso_segment;
  }
  return m.collection && !m.off ? &m : nullptr;
}

// Gives up reading segment m.segment while it arrives: flush_iso() reads
// it whole. Only before any of its frames went into the timeline: once the
// moov is read (from the head, while the tail was still asked), frames may
// be in, and reading the segment whole would enter them a second time (the
// fallback's frame count with them); the reading goes on from the head.
static void read_whole(GstSegDlSrc *self, GstSegDlSrcMp4 &m, const char *why) {
  if (m.caps) {
    GST_DEBUG_OBJECT(self, "segment %" G_GINT64_FORMAT ": moov read already, %s: ignored",
                     m.segment, why);
    return;
  }
  GST_DEBUG_OBJECT(self, "segment %" G_GINT64_FORMAT ": read whole (%s)", m.segment, why);
  m.off = true;
}

// The moov is read: the caps and the edit list's trims, set before the
// segment's first frame goes in. False when flush_iso() must decide
// (another codec for parsebin, or an error it reports).
static bool setup(GstSegDlSrc *self, GstSegDlSrcMp4 &m) {
  segdl::Mp4Segment seg;
  std::string error;
  if (segdl::mp4_segment_setup(m.reader.audio(), m.reader.presentation(), seg, error) !=
      segdl::Mp4Read::Ok) {
    read_whole(self, m, error.empty() ? "not AAC or MP3" : error.c_str());
    return false;
  }
  segdl::SegmentTrim trim;
  trim.start = uint64_t(seg.trim_start);
  trim.length = seg.trim_length;
  self->priv->timeline.set_trim(m.segment, trim);
  m.caps = seg.caps;
  seg.caps = nullptr;
  GST_DEBUG_OBJECT(self,
                   "segment %" G_GINT64_FORMAT
                   ": moov read (%s), %zu frames, edit from %" G_GINT64_FORMAT
                   " for %" G_GINT64_FORMAT " samples",
                   m.segment, m.tail ? "from its tail" : "from its head",
                   m.reader.audio().samples.size(), seg.trim_start, seg.trim_length);
  return true;
}

// The samples whose bytes are in (the first `len` bytes of the segment)
// into the timeline, each a copy of its bytes (the collection grows, so it
// cannot be wrapped). True when some went in.
static bool enter_samples(GstSegDlSrc *self, GstSegDlSrcMp4 &m, const guint8 *data, gsize len) {
  size_t n = m.reader.samples_in(len);
  if (n <= m.entered) return false;
  const std::vector<segdl::Mp4Sample> &samples = m.reader.audio().samples;
  for (; m.entered < n; m.entered++) {
    const segdl::Mp4Sample &s = samples[m.entered];
    GstBuffer *frame = gst_buffer_new_memdup(data + s.offset, s.size);
    gst_seg_dl_src_enter_frame(self, frame, m.caps, m.entered == 0 ? m.segment : -1);
  }
  return true;
}

// The tail in hand from the mdat's end: the part of `bytes` (from `from`
// in the segment; owned) there. False when they begin after it (a suffix
// fetched with the body, shorter than this moov).
static bool keep_tail(GstSegDlSrcMp4 &m, GBytes *bytes, uint64_t from) {
  const uint64_t offset = m.reader.tail_offset();
  const gsize size = g_bytes_get_size(bytes);
  if (from > offset || from + size < offset) {
    g_bytes_unref(bytes);
    return false;
  }
  m.tail = g_bytes_new_from_bytes(bytes, gsize(offset - from), gsize(from + size - offset));
  g_bytes_unref(bytes);
  m.tail_state = GstSegDlSrcMp4::Tail::Have;
  return true;
}

// Takes the engine's answer for the tail, if there is one yet: the one
// asked by maybe_ask_tail(), or the suffix the engine asked with the body
// (segment 0, a seek's target: Downloader::prefetch_tail()). A suffix that
// begins after the mdat's end (a moov bigger than the engine guessed) is
// followed by a request from there.
static void take_tail(GstSegDlSrc *self, segdl::Downloader *dl, GstSegDlSrcMp4 &m) {
  if (m.tail_state == GstSegDlSrcMp4::Tail::Have || m.tail_state == GstSegDlSrcMp4::Tail::Refused)
    return;
  using S = segdl::Downloader::Tail::State;
  segdl::Downloader::Tail t = dl->take_tail(m.segment);
  if (t.state == S::Pending) {
    m.tail_state = GstSegDlSrcMp4::Tail::Asked;
  } else if (t.state == S::Ready && t.bytes) {
    if (keep_tail(m, t.bytes, t.offset)) return;
    GST_DEBUG_OBJECT(self,
                     "segment %" G_GINT64_FORMAT
                     ": the tail fetched with it begins at %" G_GUINT64_FORMAT
                     ", after the mdat's end: asked from %" G_GUINT64_FORMAT,
                     m.segment, t.offset, m.reader.tail_offset());
    dl->request_tail(m.segment, m.reader.tail_offset());
    m.tail_state = GstSegDlSrcMp4::Tail::Asked;
  } else if (t.state == S::Ready || t.state == S::Unavailable) {
    m.tail_state = GstSegDlSrcMp4::Tail::Refused;
    read_whole(self, m, "no tail: the server ignores Range or the request failed");
  }
}

// The moov follows the mdat: the tail is asked for unless it is asked or
// came already (with the body), or the rest of the mdat is buffered (a
// segment fetched ahead needs no extra request).
static void maybe_ask_tail(GstSegDlSrc *self, segdl::Downloader *dl, GstSegDlSrcMp4 &m) {
  take_tail(self, dl, m);
  if (m.tail_state != GstSegDlSrcMp4::Tail::None) return;
  uint64_t offset = m.reader.tail_offset();
  uint64_t missing = offset > m.head ? offset - m.head : 0;  // of the mdat
  if (missing == 0 || dl->level().bytes_ahead >= missing) return;
  GST_DEBUG_OBJECT(self,
                   "segment %" G_GINT64_FORMAT
                   ": its moov follows the mdat, tail from %" G_GUINT64_FORMAT " asked",
                   m.segment, offset);
  dl->request_tail(m.segment, offset);
  m.tail_state = GstSegDlSrcMp4::Tail::Asked;
}

bool gst_seg_dl_src_mp4_step(GstSegDlSrc *self, segdl::Downloader *dl) {
  GstSegDlSrcPrivate *priv = self->priv;
  GstSegDlSrcMp4 *mp = current(priv);
  if (!mp) return false;
  GstSegDlSrcMp4 &m = *mp;
  const guint8 *data = priv->iso_bytes->data;
  const gsize len = priv->iso_bytes->len;
  Mp4State st = m.reader.state();
  if ((st == Mp4State::NeedHead || st == Mp4State::NeedTail) && len > m.head) {
    m.head = len;
    st = m.reader.on_head(data, len);
  }
  if (st == Mp4State::NeedTail) {
    maybe_ask_tail(self, dl, m);
    if (m.off) return false;
    if (m.tail) {
      gsize size = 0;
      const auto *t = static_cast<const guint8 *>(g_bytes_get_data(m.tail, &size));
      st = m.reader.on_tail(t, size);
    }
  }
  if (st == Mp4State::Whole || st == Mp4State::Error) {
    read_whole(self, m, st == Mp4State::Error ? m.reader.error().c_str() : "nothing to gain");
    return false;
  }
  if (st != Mp4State::Ready) return false;
  if (!m.caps && !setup(self, m)) return false;
  return enter_samples(self, m, data, len);
}

bool gst_seg_dl_src_mp4_tail_came(GstSegDlSrc *self, segdl::Downloader *dl) {
  GstSegDlSrcPrivate *priv = self->priv;
  GstSegDlSrcMp4 *m = current(priv);
  if (!m || m->tail_state != GstSegDlSrcMp4::Tail::Asked || m->reader.state() != Mp4State::NeedTail)
    return false;
  take_tail(self, dl, *m);
  return m->tail_state == GstSegDlSrcMp4::Tail::Have;
}

// The segment's own end must be the tail read apart (the server changed
// nothing between the two requests), and every sample must be in.
static bool check_whole(GstSegDlSrcMp4 &m, const guint8 *data, gsize len, std::string &why) {
  if (m.tail) {
    gsize size = 0;
    const auto *t = static_cast<const guint8 *>(g_bytes_get_data(m.tail, &size));
    uint64_t offset = m.reader.tail_offset();
    if (len != offset + size || memcmp(data + offset, t, size) != 0) {
      why = "its body (" + std::to_string(len) + " bytes) does not end with the tail read apart (" +
            std::to_string(size) + " bytes from " + std::to_string(offset) + ")";
      return false;
    }
  }
  if (m.reader.samples_in(len) < m.reader.audio().samples.size()) {
    why = "its samples run past its end (" + std::to_string(len) + " bytes)";
    return false;
  }
  return true;
}

bool gst_seg_dl_src_mp4_finish(GstSegDlSrc *self, bool &ok, std::string &why) {
  GstSegDlSrcPrivate *priv = self->priv;
  GstSegDlSrcMp4 &m = priv->mp4;
  if (!priv->iso_bytes || m.collection != priv->iso_bytes || m.off || !m.caps) {
    m.clear();
    return false;  // read whole
  }
  const guint8 *data = priv->iso_bytes->data;
  const gsize len = priv->iso_bytes->len;
  ok = check_whole(m, data, len, why);
  if (ok) {
    enter_samples(self, m, data, len);
    GST_DEBUG_OBJECT(self, "segment %" G_GINT64_FORMAT ": %zu frames, read while it arrived",
                     m.segment, m.entered);
  }
  g_byte_array_unref(priv->iso_bytes);
  priv->iso_bytes = nullptr;
  priv->iso_segment = -1;
  m.clear();
  return true;
}

void gst_seg_dl_src_mp4_reset(GstSegDlSrc *self) {
  self->priv->mp4.clear();
}

// ffmpeg's moov for AAC is about 0.8 kB plus 4 bytes a frame (172 bytes a
// second at 44.1 kHz: 3.3 kB for 15 s, 5.9 kB for 30 s), so 400 bytes a
// second of the longer nominal segment plus 4 KiB covers 48 kHz twice
// over. A bigger moov costs a second request, not an error.
int64_t gst_seg_dl_src_mp4_prefetch_bytes(double first_s, double rest_s) {
  const double longest = std::min(std::max(first_s, rest_s), 3600.0);
  return int64_t(std::max(longest, 0.0) * 400) + 4096;
}
