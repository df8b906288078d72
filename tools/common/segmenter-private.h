// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — what the parts of the segment fixtures share (see segmenter.h):
 * private to tools/common/segmenter*.cpp.
 *
 *   segmenter.cpp       running a short pipeline, encode_packets, mux_file,
 *                       the cuts, names and availability
 *   segmenter-mp4.cpp   ISO BMFF boxes: mp4mux's output made deterministic
 *                       and moved to its start time, split_fragmented
 *   segmenter-read.cpp  the reference reader and decoder (parse_frames,
 *                       decode_pcm)
 */
#pragma once

#include "common/gsthold.h"
#include "common/segmenter.h"

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace segdl::media::detail {

// No pipeline is waited for less long than this.
constexpr GstClockTime kMinPipelineTimeout = 30 * GST_SECOND;

using hold::BusPtr;
using hold::ElementPtr;
using hold::MessagePtr;
using hold::PadPtr;
using hold::PipelineGuard;
using hold::wait_eos;

// ---- running a short pipeline (segmenter.cpp) -------------------------------

bool have_factory(const char *name);
// Builds a pipeline from a launch line (owned, not floating).
ElementPtr launch(const std::string &line, const char *what, std::string &error);
ElementPtr child(GstElement *pipeline, const char *name);
// Pushes `bytes` as one buffer, then EOS.
void push_file(GstElement *appsrc, const Bytes &bytes);
Bytes buffer_bytes(GstBuffer *buf);

// Starts the pipeline, lets `feed` push into it, waits for EOS.
template <typename Feed>
bool run(GstElement *pipeline, GstClockTime timeout, const char *what, std::string &error,
         Feed feed) {
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    error = std::string("cannot start the ") + what;
    return false;
  }
  feed();
  if (!wait_eos(pipeline, timeout, what, error)) return false;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  return true;
}

// Cut indices over a list of start times ending at end_ns (see cut_points).
std::vector<size_t> cuts_over(const std::vector<uint64_t> &starts, uint64_t end_ns, double first_s,
                              double seg_s);

// ---- ISO BMFF boxes (segmenter-mp4.cpp) ----------------------------------------

uint32_t rd32(const uint8_t *p);
uint64_t rd64(const uint8_t *p);
void wr32(uint8_t *p, uint32_t v);
void wr64(uint8_t *p, uint64_t v);

// One ISO BMFF box inside [begin, end) of a buffer.
struct Box {
  size_t offset = 0;  // of the box header
  size_t header = 0;  // 8, or 16 with a 64-bit size
  size_t size = 0;    // whole box
  char type[5] = {0, 0, 0, 0, 0};
};

// The boxes directly inside [begin, end). False on a size that does not fit.
bool list_boxes(const Bytes &b, size_t begin, size_t end, std::vector<Box> &out);
const Box *find_box(const std::vector<Box> &boxes, const char *type);
// The boxes inside `box` (after its header and, for a full box, `skip` more bytes).
bool children(const Bytes &b, const Box &box, std::vector<Box> &out, size_t skip = 0);

// mp4mux's creation and modification times set to 0 (the same bytes in every run).
void zero_mp4_times(Bytes &b);
// An empty edit of `start_ns` before the media (what ffmpeg writes for a late start).
bool add_start_edit(Bytes &b, uint64_t start_ns, std::string &error);
// Every tfdt of a fragmented MP4 moved by `start_ns`.
bool shift_fragment_times(Bytes &b, uint64_t start_ns);

}  // namespace segdl::media::detail
