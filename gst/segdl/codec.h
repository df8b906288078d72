// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — samples per frame, from the codec itself.
 *
 * The timeline counts samples, never demuxer durations: an AAC frame is
 * 1024 (or 960) samples whatever the container says, an Opus packet's length
 * is in its TOC byte, an MP3 frame's in its header. These parsers read those
 * headers from bytes that come from the backend, so every one of them treats
 * its input as hostile: every length is checked, nothing is allocated from a
 * size read out of the input, and a refusal says why (when `error` is given).
 *
 * Plain value-in, value-out functions; no GStreamer.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace segdl {

// ---------------------------------------------------------------- AAC

// MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1), the `codec_data` of
// raw AAC (in MP4: esds' DecoderSpecificInfo).
struct AacConfig {
  int object_type = 0;        // audio object type of the core (2 = AAC LC), after SBR/PS signalling
  int sample_rate_index = 0;  // 0..12, or 15 with an explicit rate
  uint32_t sample_rate = 0;   // core sampling rate (Hz)
  int channel_config = 0;     // 0 = program config element
  int channels = 0;           // from channel_config, or counted in the PCE
  int frame_length = 1024;    // samples per frame at sample_rate (1024/960; 512/480 for LD/ELD)
  bool sbr = false;           // SBR signalled (explicitly: AOT 5/29 or the 0x2b7 sync extension)
  bool ps = false;            // parametric stereo signalled
  uint32_t sbr_sample_rate = 0;  // the SBR (output) rate when sbr, else 0
  // Samples per frame and rate of a decoder's output: doubled by SBR. A frame
  // lasts frame_length / sample_rate seconds either way.
  int output_frame_length() const { return sbr ? frame_length * 2 : frame_length; }
  uint32_t output_rate() const { return sbr && sbr_sample_rate ? sbr_sample_rate : sample_rate; }
};

bool parse_aac_config(const uint8_t *data, size_t size, AacConfig &out,
                      std::string *error = nullptr);

// The rate of an MPEG-4 sampling frequency index (0..12), else 0.
uint32_t aac_sample_rate(int index);

// One ADTS frame header (ISO/IEC 13818-7 6.2 / 14496-3 1.A.2.2).
struct AdtsHeader {
  int mpeg_version = 4;  // 2 or 4 (the ID bit)
  bool has_crc = false;  // protection_absent == 0
  int object_type = 2;   // profile + 1
  int sample_rate_index = 0;
  uint32_t sample_rate = 0;
  int channel_config = 0;
  size_t header_size = 7;  // 7, or with CRC 9 (+2 per extra raw data block)
  size_t frame_size = 0;   // the whole frame, header included
  int raw_blocks = 1;      // number_of_raw_data_blocks_in_frame + 1
  int samples = 1024;      // 1024 per raw data block
};

// Parses the header at data[0]. Needs at least 7 bytes (9 with CRC); the
// frame itself may extend past `size`.
bool parse_adts_header(const uint8_t *data, size_t size, AdtsHeader &out,
                       std::string *error = nullptr);

// Builds the 2-byte AudioSpecificConfig an ADTS stream implies.
std::vector<uint8_t> adts_to_aac_config(const AdtsHeader &h);

// ---------------------------------------------------------------- Opus

// Samples at 48 kHz of each frame of a packet with this TOC byte (120..2880).
int opus_frame_samples(uint8_t toc);

struct OpusPacketInfo {
  int config = 0;         // TOC config 0..31
  bool stereo = false;    // TOC s bit
  int code = 0;           // frame count code 0..3
  int frames = 0;         // frames in the packet (1..48)
  int frame_samples = 0;  // per frame, at 48 kHz
  int samples = 0;        // frames * frame_samples (at most 5760 = 120 ms)
  size_t padding = 0;     // code 3 padding bytes
};

// Checks a whole packet against RFC 6716 section 3.4 (R1-R7: frame lengths,
// code 1 even sizes, code 3 frame count, padding and the 120 ms limit).
bool parse_opus_packet(const uint8_t *data, size_t size, OpusPacketInfo &out,
                       std::string *error = nullptr);
// Samples at 48 kHz of a valid packet, -1 for an invalid one.
int opus_packet_samples(const uint8_t *data, size_t size);

// The identification header: OpusHead (RFC 7845 5.1), also filled from an
// MP4 dOps box (parse_opus_dops).
struct OpusHead {
  int version = 1;
  int channels = 0;
  uint16_t pre_skip = 0;    // samples at 48 kHz to drop at the start
  uint32_t input_rate = 0;  // informational only: Opus always decodes at 48 kHz
  int16_t output_gain = 0;  // Q7.8 dB
  int mapping_family = 0;
  int stream_count = 1;
  int coupled_count = 0;         // family 0: channels - 1
  std::vector<uint8_t> mapping;  // one entry a channel (family != 0)
  // parse_opus_dops only: the box was written little-endian (as OpusHead is)
  // and was read as such.
  bool byte_swapped = false;
};

bool parse_opus_head(const uint8_t *data, size_t size, OpusHead &out, std::string *error = nullptr);
// The payload of an MP4 'dOps' box (Opus in ISOBMFF 4.3.2: big-endian, no magic).
bool parse_opus_dops(const uint8_t *data, size_t size, OpusHead &out, std::string *error = nullptr);

// ---------------------------------------------------------------- MP3

// An MPEG-1/2/2.5 audio frame header (ISO/IEC 11172-3 2.4.2.3).
struct MpegAudioHeader {
  int version = 1;       // 1 (MPEG-1), 2 (MPEG-2), 25 (MPEG-2.5)
  int layer = 3;         // 1, 2, 3
  bool has_crc = false;  // protection_bit == 0
  int bitrate = 0;       // bits per second (free format is refused)
  uint32_t sample_rate = 0;
  bool padding = false;
  int channel_mode = 0;  // 0 stereo, 1 joint, 2 dual, 3 mono
  int channels = 2;
  size_t frame_size = 0;  // bytes, header included
  int samples = 0;        // per frame: 384, 1152 or 576
  // Bytes of side information after the header (and CRC), layer 3 only.
  size_t side_info_size() const;
};

bool parse_mpeg_audio_header(const uint8_t *data, size_t size, MpegAudioHeader &out,
                             std::string *error = nullptr);

// An ID3v2 tag at data[0] (id3v2.4.0-structure 3.1).
struct Id3v2Tag {
  int major = 0, revision = 0;  // 2, 3 or 4
  bool unsync = false;          // flags bit 7
  bool extended = false;        // bit 6
  bool footer = false;          // bit 4 (v2.4): 10 more bytes after the tag
  size_t size = 0;              // whole tag: header + body + footer
};

// False if data does not start with a valid ID3v2 header (10 bytes needed).
bool parse_id3v2(const uint8_t *data, size_t size, Id3v2Tag &out, std::string *error = nullptr);
// Size of the ID3v2 tag at data[0], 0 if there is none.
size_t id3v2_size(const uint8_t *data, size_t size);

// The first frame of an encode that carries no audio but the stream's
// information: Xing (VBR) / Info (CBR) with an optional LAME tag, or VBRI.
struct MpegInfoFrame {
  enum class Kind { None, Xing, Info, Vbri };
  Kind kind = Kind::None;
  bool has_frames = false;
  uint32_t frames = 0;  // audio frames in the stream (the info frame excluded)
  bool has_bytes = false;
  uint32_t bytes = 0;
  bool has_lame = false;    // a LAME (or Lavc/Lavf) extension follows
  std::string encoder;      // its 9-byte version string, printable characters only
  int encoder_delay = 0;    // samples to drop at the start (12 bits)
  int encoder_padding = 0;  // samples to drop at the end (12 bits)
  // The tag's CRC-16 matches: over the bytes before it (LAME), or over 190
  // bytes with it zeroed (ffmpeg, which a frame under 190 bytes defeats).
  bool lame_crc_ok = false;
  int vbri_delay = 0;  // VBRI's own delay field
};

// Looks for an information frame in the frame at data[0] (whose header is
// `h`; `size` may be less than h.frame_size, then only what is there is
// read). Kind::None when the frame is audio.
bool parse_mpeg_info_frame(const uint8_t *data, size_t size, const MpegAudioHeader &h,
                           MpegInfoFrame &out, std::string *error = nullptr);

// How an MP3 file or segment starts: ID3v2 tag(s), then maybe an info frame,
// then audio.
struct Mp3Start {
  size_t id3_size = 0;      // bytes of ID3v2 tags before the first frame
  MpegAudioHeader first;    // header of the first frame
  MpegInfoFrame info;       // kind None when the first frame is audio
  size_t audio_offset = 0;  // the first audio frame
};

// Needs the tag(s) and the first frame (whole, for the info frame) in data.
bool parse_mp3_start(const uint8_t *data, size_t size, Mp3Start &out, std::string *error = nullptr);

// Layer III only: main_data_begin of the frame at data[0] (its header `h`):
// how many bytes before this frame its audio data begins (the bit
// reservoir). 0 for the first frame of an encode; -1 when unreadable.
int mp3_main_data_begin(const uint8_t *data, size_t size, const MpegAudioHeader &h);

// Samples an MP3 decoder's synthesis delays its output by (528 + 1), which
// the LAME tag's delay and padding leave out (LAME's "gapless" convention,
// as mpg123 and ffmpeg apply it).
constexpr int kMp3DecoderDelay = 529;

// Samples to trim from one MP3 segment's decoded output.
struct Mp3Trim {
  uint64_t start = 0;  // at its start
  uint64_t end = 0;    // at its end
};

// LAME encoder delay and padding applied across segments the way a gapless
// player of the unsegmented file applies them: the delay where the encode
// starts, the padding where it ends. Each segment's information frame has
// its own tag, which does not say whether the segment is a piece of one
// encode (`ffmpeg -f segment`: the tag of segment 0 has the delay, the last
// one's the padding, the others 0 or, ffmpeg's last segment, a delay that
// is no delay) or an encode of its own (every tag has its delay and
// padding). A later segment starts an encode of its own when its first
// audio frame reaches back into no bit reservoir (main_data_begin 0) and its
// tag's delay is segment 0's; the padding of every tag applies at its
// segment's end (a piece of one encode has 0 but in the last segment).
class Mp3Gapless {
 public:
  // Forget everything (a new track).
  void reset() { *this = Mp3Gapless(); }
  // The information frame that begins `segment`.
  void info_frame(int64_t segment, const MpegInfoFrame &info);
  // An audio frame of `segment` (main_data_begin as mp3_main_data_begin()
  // reads it). For the first one after the segment's information frame:
  // the segment's trims, true if there are any. False for every other
  // frame and for a segment without a LAME tag.
  bool audio_frame(int64_t segment, int main_data_begin, Mp3Trim &out);

 private:
  bool have_first_ = false;
  int first_delay_ = 0;  // segment 0's
  int64_t info_segment_ = -1;
  MpegInfoFrame info_;
};

// ---------------------------------------------------------------- Ogg

// The end trim of an Ogg stream (Opus: RFC 7845 4.4; Vorbis: Vorbis I
// A.2): a granule position is the count of samples decoded up to the end of
// its packet, and the last page's may be short of what the packets hold: so
// many samples of the last packet are not presented. Fed the packets of one
// file (segment) in order with their granules (the demuxer gives each
// packet one) and their sample counts (from the codec), it says how many
// samples to cut at each packet's end. The first packet of a file only sets
// the count (a file cut from a longer stream starts anywhere). A granule
// that leaves out a whole packet is no trim (no encoder makes a packet of
// nothing but padding; oggmux-made segments repeat a granule so) and only
// sets the count again.
class OggGranules {
 public:
  // A new file begins.
  void reset() { end_ = -1; }
  // A packet of `samples` samples with granule `granule` (-1: none, the
  // count goes on from the packet's samples): samples to cut at its end.
  uint64_t packet(uint64_t samples, int64_t granule);

 private:
  int64_t end_ = -1;  // granule at the end of the packet before
};

}  // namespace segdl
