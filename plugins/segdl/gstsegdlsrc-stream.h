// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — what the three files of segdlsrc's streaming thread share:
 *  - gstsegdlsrc-stream.cpp: the push loop (waiting, buffering, errors,
 *    duration) and join=bytes;
 *  - gstsegdlsrc-timeline.cpp: join=timeline's demux glue (segment bytes
 *    into the joiner, m4a read whole, gaps, the fallback), its loop and
 *    seeking;
 *  - gstsegdlsrc-frames.cpp: parsed frames onto segdl::Timeline (counted
 *    from the codec, trims, stamping) and out in order.
 * Everything here runs on the streaming thread, or in do_seek() while
 * basesrc holds the stream lock.
 */
#pragma once

#include "gstsegdlsrc-private.h"

#include <string>

/* gstsegdlsrc-stream.cpp */

// Waits for the next item in order from the engine, posting BUFFERING and
// the engine's queued messages meanwhile. GST_FLOW_OK with a Data, Gap or
// Eos item (or Timeout: the tail of the m4a segment being read came), or
// the flow to return (the error already posted).
GstFlowReturn gst_seg_dl_src_next_item(GstSegDlSrc *self, segdl::Downloader *dl,
                                       segdl::Downloader::Item &item);
// A segment left out (missing-segment=gap): a WARNING with the cause.
void gst_seg_dl_src_post_gap_warning(GstSegDlSrc *self, const segdl::EngineError &e,
                                     GstClockTime duration);
// The final `stats` as an element message, at the end of the track.
void gst_seg_dl_src_post_final_stats(GstSegDlSrc *self, segdl::Downloader *dl);
// Posts DURATION_CHANGED when the track length becomes known or changes.
void gst_seg_dl_src_update_duration(GstSegDlSrc *self, segdl::Downloader *dl);

/* gstsegdlsrc-timeline.cpp */

// join=timeline: the next stamped buffer, or the flow to return.
GstFlowReturn gst_seg_dl_src_create_timeline(GstSegDlSrc *self, segdl::Downloader *dl,
                                             GstBuffer **outbuf);

/* gstsegdlsrc-mp4.cpp: an m4a segment read while it arrives (issue 11) */

// The m4a segment being collected (iso_bytes): reads its moov as soon as
// it can (from its head, or from its tail fetched apart by a Range
// request) and hands the frames whose bytes are in to the timeline. True
// when frames went in (the caller goes round its loop to push them).
bool gst_seg_dl_src_mp4_step(GstSegDlSrc *self, segdl::Downloader *dl);
// While waiting for the engine: true once the tail asked for has come
// (the caller stops waiting; the next step() reads it).
bool gst_seg_dl_src_mp4_tail_came(GstSegDlSrc *self, segdl::Downloader *dl);
// flush_iso(): the segment is whole. True when it was read while it
// arrived (its last frames go in now; `ok` false when it cannot be, `why`
// says why: a bad segment; iso_bytes is released); false: read it whole.
bool gst_seg_dl_src_mp4_finish(GstSegDlSrc *self, bool &ok, std::string &why);
// Forgets the segment being read (seek, fallback, start).
void gst_seg_dl_src_mp4_reset(GstSegDlSrc *self);
// The suffix the engine asks with the body of the first segment read
// (DownloaderConfig::tail_prefetch_bytes), from the nominal segment lengths.
int64_t gst_seg_dl_src_mp4_prefetch_bytes(double first_s, double rest_s);

/* gstsegdlsrc-frames.cpp */

// A parsed frame into the timeline (codec headers go straight out).
// `segment` is the segment whose file the frame begins, -1 if it continues
// the one before; `known_samples` its sample count when already counted.
void gst_seg_dl_src_enter_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps, int64_t segment,
                                int64_t known_samples = -1);
// A frame out of the joiner (of the demuxer instance that began at
// segment `instance_start`, or -1), the fallback's replayed part skipped.
void gst_seg_dl_src_on_joined_frame(GstSegDlSrc *self, GstBuffer *frame, GstCaps *caps,
                                    int64_t instance_start);
// The frames of the segment that entered last are all in: its end trims
// apply and the frames held back are decided.
void gst_seg_dl_src_end_timeline_segment(GstSegDlSrc *self);
// The next stamped buffer (or event: *outbuf stays null), caps set first
// when they change.
GstFlowReturn gst_seg_dl_src_take_ready(GstSegDlSrc *self, GstBuffer **outbuf);
// Frees the frames (and events) of a queue.
void gst_seg_dl_src_free_frames(std::deque<GstSegDlSrcPrivate::Frame> &q);
