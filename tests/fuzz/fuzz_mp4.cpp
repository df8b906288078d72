// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl fuzz target — the MP4 reader (gst/segdl/mp4.*) on hostile files:
 * the segments come from the backend. Input: the file's bytes. Checks what
 * must hold of whatever it accepts: counts within the limits, samples inside
 * the data when called consistent, trims that add up.
 */
#include "segdl/mp4.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  segdl::Mp4Limits limits;
  limits.max_samples = 1 << 16;  // keep each input fast; the caps are what is tested
  limits.max_entries = 1 << 16;

  segdl::Mp4Layout layout;
  if (segdl::scan_mp4_layout(data, size, layout)) {
    if (layout.has_moov && layout.need_bytes != layout.moov_offset + layout.moov_size) abort();
    if (layout.complete && size == 0) abort();
  }

  segdl::Mp4File file;
  std::string error;
  if (!segdl::parse_mp4(data, size, file, &error, limits)) {
    if (error.empty()) abort();  // a refusal always says why
    return 0;
  }
  if (file.movie_timescale == 0 || int(file.tracks.size()) > limits.max_tracks) abort();
  for (const segdl::Mp4Track &t : file.tracks) {
    if (t.samples.size() > limits.max_samples || t.timescale == 0) abort();
    if (t.codec_data.size() > limits.max_codec_data) abort();
    uint64_t total = 0;
    for (const segdl::Mp4Sample &s : t.samples) total += s.duration;
    if (total != t.samples_duration) abort();
    segdl::Mp4Presentation p;
    if (!segdl::mp4_presentation(file, t, data, size, p, &error)) continue;
    if (p.start_trim < 0 || p.duration < 0 || p.end_trim < 0) abort();
    if (p.start_trim + p.duration + p.end_trim != p.samples_duration) abort();
    if (p.consistent) {
      for (const segdl::Mp4Sample &s : t.samples)
        if (s.offset > size || s.size > size - s.offset) abort();
    }
  }
  // The moov alone parses the same way.
  if (file.layout.has_moov) {
    segdl::Mp4File again;
    if (!segdl::parse_mp4_moov(data + file.layout.moov_offset, size_t(file.layout.moov_size), again,
                               &error, limits))
      abort();
    if (again.tracks.size() != file.tracks.size()) abort();
  }
  return 0;
}
