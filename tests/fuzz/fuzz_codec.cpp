// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl fuzz target — the codec parsers (gst/segdl/codec.*) on hostile
 * headers and packets. Input: a selector byte, then the bytes for that
 * parser (0 AudioSpecificConfig, 1 ADTS stream, 2 Opus packet, 3 OpusHead,
 * 4 dOps, 5 MPEG audio stream, 6 MP3 file start). Checks what must hold of
 * whatever is accepted.
 */
#include "segdl/codec.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

namespace {

void aac(const uint8_t *d, size_t n) {
  segdl::AacConfig c;
  std::string error;
  if (!segdl::parse_aac_config(d, n, c, &error)) {
    if (error.empty()) abort();
    return;
  }
  if (c.sample_rate == 0 || c.channels < 0 || c.channels > 8 * 4 * 16 + 3) abort();
  if (c.frame_length != 1024 && c.frame_length != 960 && c.frame_length != 512 &&
      c.frame_length != 480)
    abort();
}

void adts(const uint8_t *d, size_t n) {
  // Walks the frames the headers describe.
  for (size_t pos = 0; pos < n;) {
    segdl::AdtsHeader h;
    if (!segdl::parse_adts_header(d + pos, n - pos, h)) return;
    if (h.frame_size <= h.header_size || h.samples != 1024 * h.raw_blocks) abort();
    segdl::AacConfig c;
    std::vector<uint8_t> asc = segdl::adts_to_aac_config(h);
    if (segdl::parse_aac_config(asc.data(), asc.size(), c) && c.sample_rate != h.sample_rate)
      abort();
    pos += h.frame_size;
  }
}

void opus(const uint8_t *d, size_t n) {
  segdl::OpusPacketInfo info;
  if (!segdl::parse_opus_packet(d, n, info)) {
    if (segdl::opus_packet_samples(d, n) != -1) abort();
    return;
  }
  if (info.samples <= 0 || info.samples > 5760 || info.samples % 120 != 0) abort();
  if (info.frames < 1 || info.frames > 48 || info.padding > n) abort();
  if (segdl::opus_packet_samples(d, n) != info.samples) abort();
}

void opus_head(const uint8_t *d, size_t n, bool dops) {
  segdl::OpusHead h;
  bool ok = dops ? segdl::parse_opus_dops(d, n, h) : segdl::parse_opus_head(d, n, h);
  if (!ok) return;
  if (h.channels < 1 || h.stream_count < 1 || h.coupled_count > h.stream_count) abort();
  if (h.mapping_family != 0 && h.mapping.size() != size_t(h.channels)) abort();
}

void mpeg(const uint8_t *d, size_t n) {
  for (size_t pos = 0; pos < n;) {
    segdl::MpegAudioHeader h;
    if (!segdl::parse_mpeg_audio_header(d + pos, n - pos, h)) return;
    if (h.frame_size < 4 + h.side_info_size() || h.frame_size > 2881) abort();
    segdl::MpegInfoFrame info;
    if (segdl::parse_mpeg_info_frame(d + pos, n - pos, h, info) && info.has_lame &&
        (info.encoder_delay > 4095 || info.encoder_padding > 4095))
      abort();
    pos += h.frame_size;
  }
}

void mp3_start(const uint8_t *d, size_t n) {
  segdl::Mp3Start s;
  if (!segdl::parse_mp3_start(d, n, s)) return;
  if (s.audio_offset > n || s.id3_size > s.audio_offset) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  switch (data[0] % 7) {
    case 0:
      aac(d, n);
      break;
    case 1:
      adts(d, n);
      break;
    case 2:
      opus(d, n);
      break;
    case 3:
      opus_head(d, n, false);
      break;
    case 4:
      opus_head(d, n, true);
      break;
    case 5:
      mpeg(d, n);
      break;
    default:
      mp3_start(d, n);
      break;
  }
  return 0;
}
