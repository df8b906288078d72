// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — deterministic test and demo media, made with GStreamer.
 *
 * Used by segdl-server --demo and by the test suites: a deterministic
 * musical signal (a melody of enveloped sine notes, generated sample by
 * sample, so every run gives the same PCM), encoded into one of the segment
 * forms, then cut into segments on frame boundaries.
 * gst_init() must have been called.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace segdl::media {

enum class Form {
  Adts,    // AAC in ADTS frames (audio/aac, .aac)
  Mp3,     // MPEG-1 layer 3 frames (audio/mpeg, .mp3)
  MpegTs,  // AAC in an MPEG transport stream (video/mp2t, .ts)
};

const char *form_name(Form f);       // "adts", "mp3", "ts"
const char *form_extension(Form f);  // "aac", "mp3", "ts"
const char *form_mime_type(Form f);  // "audio/aac", "audio/mpeg", "video/mp2t"
bool form_from_name(const std::string &name, Form &out);

using Bytes = std::vector<uint8_t>;

struct Frame {
  uint64_t offset = 0;  // byte offset of the frame (TS: of the packet) in Encoded::bytes
  uint64_t pts_ns = 0;  // presentation time of the frame
  uint64_t duration_ns = 0;
};

struct Encoded {
  Form form = Form::Adts;
  Bytes bytes;                // the whole unsegmented stream
  std::vector<Frame> frames;  // cut points, in order (ADTS/MP3: every frame; TS: packets
                              // starting a PES, i.e. where a cut keeps a valid stream)
  uint64_t duration_ns = 0;   // decoded duration of the whole stream
  int sample_rate = 44100;
  int channels = 2;
};

// Encodes `seconds` of the melody. Returns false with `error` set.
bool encode(Form form, double seconds, Encoded &out, std::string &error);

// Cuts at the cut point nearest to first_s, then every seg_s seconds after it
// (the backend's 15 s + 30 s, or shorter for tests). The concatenation of the
// result equals enc.bytes exactly.
std::vector<Bytes> cut(const Encoded &enc, double first_s, double seg_s);

// The melody encode() feeds its encoders: `seconds` of 44100 Hz stereo PCM,
// S16LE interleaved, the same samples in every run. False with `error` for a
// bad length.
bool melody_pcm(double seconds, Bytes &s16le, std::string &error);

// Decodes `bytes` (any form above, or anything decodebin plays) and returns
// the duration of the decoded PCM. For tests and checks. False with `error`.
bool decoded_duration(const Bytes &bytes, uint64_t &duration_ns, std::string &error);

}  // namespace segdl::media
