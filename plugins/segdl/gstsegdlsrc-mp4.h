// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the state of segdlsrc's progressive m4a reading (issue 11: first
 * audio before the whole segment; the code is gstsegdlsrc-mp4.cpp, its
 * functions are declared in gstsegdlsrc-stream.h). One m4a segment at a
 * time: the one join=timeline collects in `iso_bytes`.
 */
#pragma once

#include <gst/gst.h>

#include "segdl/mp4.h"

#include <cstdint>

// Streaming thread only (or do_seek() under the stream lock).
struct GstSegDlSrcMp4 {
  enum class Tail {
    None,     // not asked
    Asked,    // request_tail() sent, no answer taken yet
    Have,     // the tail's bytes are in `tail`
    Refused,  // the server ignores Range or the request failed
  };
  // The collection this reading is of (a ref on the element's iso_bytes:
  // while held, no later collection can have its address) and its segment.
  GByteArray *collection = nullptr;
  int64_t segment = -1;
  segdl::Mp4Progressive reader;
  bool off = false;   // nothing to gain here: the segment is read whole (flush_iso())
  uint64_t head = 0;  // bytes of the segment given to the reader so far
  Tail tail_state = Tail::None;
  GBytes *tail = nullptr;   // Have: the bytes from the mdat's end (owned)
  GstCaps *caps = nullptr;  // once the moov is read: the frames' caps (owned)
  size_t entered = 0;       // samples handed to the timeline so far

  GstSegDlSrcMp4() = default;
  GstSegDlSrcMp4(const GstSegDlSrcMp4 &) = delete;
  GstSegDlSrcMp4 &operator=(const GstSegDlSrcMp4 &) = delete;
  ~GstSegDlSrcMp4() { clear(); }
  // Back to no segment.
  void clear() {
    if (tail) g_bytes_unref(tail);
    if (caps) gst_caps_unref(caps);
    if (collection) g_byte_array_unref(collection);
    tail = nullptr;
    caps = nullptr;
    collection = nullptr;
    segment = -1;
    reader = segdl::Mp4Progressive();
    off = false;
    head = 0;
    tail_state = Tail::None;
    entered = 0;
  }
};
