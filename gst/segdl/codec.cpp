// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — samples per frame from the codec (see codec.h). */
#include "segdl/codec.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace segdl {

namespace {

bool fail(std::string *error, const std::string &why) {
  if (error) *error = why;
  return false;
}

// Most significant bit first, as MPEG packs them. Reading past the end
// sets `overrun` and returns zeros.
class BitReader {
 public:
  BitReader(const uint8_t *data, size_t size) : data_(data), bits_(size * 8) {}
  uint32_t read(int count) {
    uint32_t v = 0;
    for (int i = 0; i < count; i++) {
      v <<= 1;
      if (pos_ >= bits_) {
        overrun_ = true;
        continue;
      }
      v |= (data_[pos_ / 8] >> (7 - pos_ % 8)) & 1;
      pos_++;
    }
    return v;
  }
  void byte_align() {
    size_t next = (pos_ + 7) / 8 * 8;
    if (next > bits_) overrun_ = true;
    pos_ = next > bits_ ? bits_ : next;
  }
  size_t left() const { return bits_ - pos_; }
  bool overrun() const { return overrun_; }

 private:
  const uint8_t *data_;
  size_t bits_;
  size_t pos_ = 0;
  bool overrun_ = false;
};

const uint32_t kAacRates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                22050, 16000, 12000, 11025, 8000,  7350};

int read_object_type(BitReader &br) {
  int aot = int(br.read(5));
  if (aot == 31) aot = 32 + int(br.read(6));
  return aot;
}

bool read_rate(BitReader &br, int &index, uint32_t &rate) {
  index = int(br.read(4));
  if (index == 15) {
    rate = br.read(24);
    return rate != 0;
  }
  rate = aac_sample_rate(index);
  return rate != 0;
}

// program_config_element (14496-3 4.4.1.1): counts the channels it lays out.
bool read_pce_channels(BitReader &br, int &channels) {
  br.read(4 + 2 + 4);  // element_instance_tag, object_type, sampling_frequency_index
  int front = int(br.read(4)), side = int(br.read(4)), back = int(br.read(4));
  int lfe = int(br.read(2)), assoc = int(br.read(3)), cc = int(br.read(4));
  if (br.read(1)) br.read(4);  // mono mixdown
  if (br.read(1)) br.read(4);  // stereo mixdown
  if (br.read(1)) br.read(3);  // matrix mixdown
  channels = lfe;
  for (int i = 0; i < front + side + back; i++) {
    channels += br.read(1) ? 2 : 1;  // is_cpe
    br.read(4);
  }
  br.read(4 * lfe + 4 * assoc + 5 * cc);
  br.byte_align();
  int comment = int(br.read(8));
  for (int i = 0; i < comment; i++) br.read(8);
  return !br.overrun() && channels > 0;
}

bool is_ga_object(int aot) {
  switch (aot) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 6:
    case 7:
    case 17:
    case 19:
    case 20:
    case 21:
    case 22:
    case 23:
      return true;
    default:
      return false;
  }
}

const int kChannelsOfConfig[8] = {0, 1, 2, 3, 4, 5, 6, 8};

}  // namespace

uint32_t aac_sample_rate(int index) {
  return index >= 0 && index < 13 ? kAacRates[index] : 0;
}

bool parse_aac_config(const uint8_t *data, size_t size, AacConfig &out, std::string *error) {
  out = AacConfig();
  if (!data || size < 2) return fail(error, "AudioSpecificConfig shorter than 2 bytes");
  BitReader br(data, size);
  out.object_type = read_object_type(br);
  if (!read_rate(br, out.sample_rate_index, out.sample_rate))
    return fail(error, "AudioSpecificConfig: invalid sampling frequency index " +
                           std::to_string(out.sample_rate_index));
  out.channel_config = int(br.read(4));
  if (out.object_type == 5 || out.object_type == 29) {
    out.sbr = true;
    out.ps = out.object_type == 29;
    int ext_index = 0;
    if (!read_rate(br, ext_index, out.sbr_sample_rate))
      return fail(error, "AudioSpecificConfig: invalid SBR sampling frequency index");
    out.object_type = read_object_type(br);
    if (out.object_type == 22) br.read(4);  // extensionChannelConfiguration
  }
  if (is_ga_object(out.object_type)) {
    bool short_frames = br.read(1) != 0;
    if (out.object_type == 23)
      out.frame_length = short_frames ? 480 : 512;
    else
      out.frame_length = short_frames ? 960 : 1024;
    if (br.read(1)) br.read(14);  // dependsOnCoreCoder: coreCoderDelay
    bool extension = br.read(1) != 0;
    if (out.channel_config == 0 && !read_pce_channels(br, out.channels))
      return fail(error, "AudioSpecificConfig: bad program config element");
    if (out.object_type == 6 || out.object_type == 20) br.read(3);  // layerNr
    if (extension) {
      if (out.object_type == 22) br.read(5 + 11);
      if (out.object_type == 17 || out.object_type == 19 || out.object_type == 20 ||
          out.object_type == 23)
        br.read(3);
      br.read(1);  // extensionFlag3
    }
    if (out.object_type == 17 || (out.object_type >= 19 && out.object_type <= 23)) {
      if (br.read(2) > 1) return fail(error, "AudioSpecificConfig: unsupported epConfig");
    }
  } else if (out.object_type == 39) {  // ER AAC ELD
    out.frame_length = br.read(1) ? 480 : 512;
  } else {
    return fail(error, "AudioSpecificConfig: unsupported audio object type " +
                           std::to_string(out.object_type));
  }
  if (br.overrun()) return fail(error, "AudioSpecificConfig truncated");
  if (out.channel_config > 7)
    return fail(error, "AudioSpecificConfig: reserved channel configuration " +
                           std::to_string(out.channel_config));
  if (out.channel_config != 0) out.channels = kChannelsOfConfig[out.channel_config];
  // Backward-compatible SBR/PS signalling after the GASpecificConfig.
  if (!out.sbr && br.left() >= 16) {
    if (br.read(11) == 0x2b7) {
      int ext_type = read_object_type(br);
      if (ext_type == 5 && br.read(1)) {
        int ext_index = 0;
        uint32_t rate = 0;
        if (read_rate(br, ext_index, rate) && !br.overrun()) {
          out.sbr = true;
          out.sbr_sample_rate = rate;
          if (br.left() >= 12 && br.read(11) == 0x548 && br.read(1)) out.ps = true;
        }
      }
    }
  }
  return true;
}

bool parse_adts_header(const uint8_t *data, size_t size, AdtsHeader &out, std::string *error) {
  out = AdtsHeader();
  if (!data || size < 7) return fail(error, "ADTS header shorter than 7 bytes");
  if (data[0] != 0xff || (data[1] & 0xf0) != 0xf0) return fail(error, "no ADTS sync word");
  if (data[1] & 0x06) return fail(error, "ADTS layer is not 0");
  out.mpeg_version = (data[1] & 0x08) ? 2 : 4;
  out.has_crc = !(data[1] & 0x01);
  out.object_type = (data[2] >> 6) + 1;
  out.sample_rate_index = (data[2] >> 2) & 0x0f;
  out.sample_rate = aac_sample_rate(out.sample_rate_index);
  if (!out.sample_rate)
    return fail(error,
                "ADTS: invalid sampling frequency index " + std::to_string(out.sample_rate_index));
  out.channel_config = ((data[2] & 0x01) << 2) | (data[3] >> 6);
  out.frame_size = (size_t(data[3] & 0x03) << 11) | (size_t(data[4]) << 3) | (data[5] >> 5);
  out.raw_blocks = (data[6] & 0x03) + 1;
  out.samples = 1024 * out.raw_blocks;
  out.header_size = 7;
  if (out.has_crc) out.header_size += 2 * size_t(out.raw_blocks - 1) + 2;
  if (out.has_crc && size < 9) return fail(error, "ADTS header with CRC shorter than 9 bytes");
  if (out.frame_size < out.header_size + 1)
    return fail(error, "ADTS frame length " + std::to_string(out.frame_size) + " below its header");
  return true;
}

std::vector<uint8_t> adts_to_aac_config(const AdtsHeader &h) {
  unsigned aot = unsigned(h.object_type), sfi = unsigned(h.sample_rate_index);
  unsigned ch = unsigned(h.channel_config);
  return {uint8_t(aot << 3 | sfi >> 1), uint8_t((sfi & 1) << 7 | ch << 3)};
}

// ---------------------------------------------------------------- Opus

int opus_frame_samples(uint8_t toc) {
  int config = toc >> 3;
  if (config < 12) {
    static const int silk[4] = {480, 960, 1920, 2880};  // 10, 20, 40, 60 ms
    return silk[config & 3];
  }
  if (config < 16) return (config & 1) ? 960 : 480;  // hybrid: 10, 20 ms
  static const int celt[4] = {120, 240, 480, 960};   // 2.5, 5, 10, 20 ms
  return celt[config & 3];
}

namespace {

const size_t kOpusMaxFrame = 1275;

// One frame length (RFC 6716 3.2.1): 1 or 2 bytes. False if they are missing.
bool read_opus_length(const uint8_t *&p, const uint8_t *end, size_t &len) {
  if (p >= end) return false;
  if (p[0] < 252) {
    len = *p++;
    return true;
  }
  if (end - p < 2) return false;
  len = size_t(p[1]) * 4 + p[0];
  p += 2;
  return true;
}

bool parse_opus_code3(const uint8_t *p, const uint8_t *end, OpusPacketInfo &out,
                      std::string *error) {
  if (p >= end) return fail(error, "Opus code 3 packet without frame count byte");  // R6/R7
  uint8_t fc = *p++;
  bool vbr = fc & 0x80, has_padding = fc & 0x40;
  out.frames = fc & 0x3f;
  if (out.frames == 0) return fail(error, "Opus code 3 packet with 0 frames");  // R5
  if (out.frames * out.frame_samples > 5760)
    return fail(error, "Opus packet longer than 120 ms");  // R5
  if (has_padding) {
    size_t total = 0;
    for (;;) {
      if (p >= end) return fail(error, "Opus padding length truncated");
      uint8_t b = *p++;
      total += b == 255 ? 254 : b;
      if (b != 255) break;
    }
    out.padding = total;
  }
  if (size_t(end - p) < out.padding) return fail(error, "Opus padding longer than the packet");
  end -= out.padding;
  if (vbr) {
    size_t sum = 0;
    for (int i = 0; i < out.frames - 1; i++) {
      size_t len = 0;
      if (!read_opus_length(p, end, len)) return fail(error, "Opus frame lengths truncated");
      if (len > kOpusMaxFrame) return fail(error, "Opus frame longer than 1275 bytes");
      sum += len;
    }
    if (sum > size_t(end - p)) return fail(error, "Opus frames longer than the packet");  // R7
    if (size_t(end - p) - sum > kOpusMaxFrame)
      return fail(error, "Opus last frame longer than 1275 bytes");
    return true;
  }
  size_t data = size_t(end - p);
  if (data % size_t(out.frames) != 0)
    return fail(error, "Opus CBR frames do not divide the packet");  // R6
  if (data / size_t(out.frames) > kOpusMaxFrame)
    return fail(error, "Opus frame longer than 1275 bytes");
  return true;
}

}  // namespace

bool parse_opus_packet(const uint8_t *data, size_t size, OpusPacketInfo &out, std::string *error) {
  out = OpusPacketInfo();
  if (!data || size < 1) return fail(error, "empty Opus packet");  // R1
  uint8_t toc = data[0];
  out.config = toc >> 3;
  out.stereo = toc & 0x04;
  out.code = toc & 0x03;
  out.frame_samples = opus_frame_samples(toc);
  const uint8_t *p = data + 1, *end = data + size;
  size_t rest = size - 1;
  switch (out.code) {
    case 0:
      out.frames = 1;
      if (rest > kOpusMaxFrame) return fail(error, "Opus frame longer than 1275 bytes");  // R2
      break;
    case 1:
      out.frames = 2;
      if (rest % 2) return fail(error, "Opus code 1 packet with an odd payload");  // R3
      if (rest / 2 > kOpusMaxFrame) return fail(error, "Opus frame longer than 1275 bytes");
      break;
    case 2: {
      out.frames = 2;
      size_t len = 0;
      if (!read_opus_length(p, end, len)) return fail(error, "Opus code 2 length truncated");
      if (len > kOpusMaxFrame || len > size_t(end - p))
        return fail(error, "Opus code 2 first frame longer than the packet");  // R4
      if (size_t(end - p) - len > kOpusMaxFrame)
        return fail(error, "Opus frame longer than 1275 bytes");
      break;
    }
    default:
      if (!parse_opus_code3(p, end, out, error)) return false;
  }
  out.samples = out.frames * out.frame_samples;
  return true;
}

int opus_packet_samples(const uint8_t *data, size_t size) {
  OpusPacketInfo info;
  return parse_opus_packet(data, size, info) ? info.samples : -1;
}

namespace {

bool check_opus_mapping(OpusHead &out, std::string *error) {
  if (out.channels < 1) return fail(error, "Opus header with 0 channels");
  if (out.mapping_family == 0) {
    if (out.channels > 2) return fail(error, "Opus mapping family 0 with more than 2 channels");
    out.stream_count = 1;
    out.coupled_count = out.channels - 1;
    out.mapping.clear();
    return true;
  }
  if (out.mapping_family == 1 && out.channels > 8)
    return fail(error, "Opus mapping family 1 with more than 8 channels");
  if (out.stream_count < 1) return fail(error, "Opus header with 0 streams");
  if (out.coupled_count > out.stream_count || out.stream_count + out.coupled_count > 255)
    return fail(error, "Opus header with impossible stream counts");
  for (uint8_t m : out.mapping)
    if (m != 255 && m >= out.stream_count + out.coupled_count)
      return fail(error, "Opus channel mapping names a stream that does not exist");
  return true;
}

}  // namespace

bool parse_opus_head(const uint8_t *data, size_t size, OpusHead &out, std::string *error) {
  out = OpusHead();
  if (!data || size < 19 || memcmp(data, "OpusHead", 8) != 0)
    return fail(error, "not an OpusHead packet");
  out.version = data[8];
  if (out.version & 0xf0) return fail(error, "OpusHead major version is not 0");
  out.channels = data[9];
  out.pre_skip = uint16_t(data[10] | data[11] << 8);
  out.input_rate = uint32_t(data[12]) | uint32_t(data[13]) << 8 | uint32_t(data[14]) << 16 |
                   uint32_t(data[15]) << 24;
  out.output_gain = int16_t(uint16_t(data[16] | data[17] << 8));
  out.mapping_family = data[18];
  if (out.mapping_family != 0) {
    if (size < 21 + size_t(out.channels)) return fail(error, "OpusHead channel mapping truncated");
    out.stream_count = data[19];
    out.coupled_count = data[20];
    out.mapping.assign(data + 21, data + 21 + out.channels);
  }
  return check_opus_mapping(out, error);
}

bool parse_opus_dops(const uint8_t *data, size_t size, OpusHead &out, std::string *error) {
  out = OpusHead();
  if (!data || size < 11) return fail(error, "dOps shorter than 11 bytes");
  if (data[0] != 0) return fail(error, "dOps version is not 0");
  out.version = 1;
  out.channels = data[1];
  uint32_t be_rate = uint32_t(data[4]) << 24 | uint32_t(data[5]) << 16 | uint32_t(data[6]) << 8 |
                     uint32_t(data[7]);
  uint32_t le_rate = uint32_t(data[7]) << 24 | uint32_t(data[6]) << 16 | uint32_t(data[5]) << 8 |
                     uint32_t(data[4]);
  // Some writers copy OpusHead's little-endian fields verbatim (GStreamer
  // 1.22's mp4mux): an impossible big-endian rate that reads as a real one
  // little-endian tells them apart.
  const uint32_t kMaxRate = 768000;
  out.byte_swapped = be_rate > kMaxRate && le_rate != 0 && le_rate <= kMaxRate;
  if (out.byte_swapped) {
    out.pre_skip = uint16_t(data[2] | data[3] << 8);
    out.input_rate = le_rate;
    out.output_gain = int16_t(uint16_t(data[8] | data[9] << 8));
  } else {
    out.pre_skip = uint16_t(data[2] << 8 | data[3]);
    out.input_rate = be_rate;
    out.output_gain = int16_t(uint16_t(data[8] << 8 | data[9]));
  }
  out.mapping_family = data[10];
  if (out.mapping_family != 0) {
    if (size < 13 + size_t(out.channels)) return fail(error, "dOps channel mapping truncated");
    out.stream_count = data[11];
    out.coupled_count = data[12];
    out.mapping.assign(data + 13, data + 13 + out.channels);
  }
  return check_opus_mapping(out, error);
}

// ---------------------------------------------------------------- MP3

namespace {

// kbit/s by [MPEG-1 ? 0 : 1][layer - 1][index 1..14].
const int kMpegBitrates[2][3][15] = {
    {{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
     {0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
     {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320}},
    {{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
     {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160}}};

const uint32_t kMpegRates[3] = {44100, 48000, 32000};

uint32_t be32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// CRC-16 (polynomial 0x8005, reflected, initial 0) as the LAME tag uses it.
uint16_t lame_crc16(const uint8_t *data, size_t size) {
  uint16_t crc = 0;
  for (size_t i = 0; i < size; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++)
      crc = (crc & 1) ? uint16_t((crc >> 1) ^ 0xa001) : uint16_t(crc >> 1);
  }
  return crc;
}

}  // namespace

size_t MpegAudioHeader::side_info_size() const {
  if (layer != 3) return 0;
  if (version == 1) return channels == 1 ? 17 : 32;
  return channels == 1 ? 9 : 17;
}

bool parse_mpeg_audio_header(const uint8_t *data, size_t size, MpegAudioHeader &out,
                             std::string *error) {
  out = MpegAudioHeader();
  if (!data || size < 4) return fail(error, "MPEG audio header shorter than 4 bytes");
  if (data[0] != 0xff || (data[1] & 0xe0) != 0xe0) return fail(error, "no MPEG audio sync");
  int version_bits = (data[1] >> 3) & 3, layer_bits = (data[1] >> 1) & 3;
  if (version_bits == 1) return fail(error, "reserved MPEG audio version");
  if (layer_bits == 0) return fail(error, "reserved MPEG audio layer");
  out.version = version_bits == 3 ? 1 : version_bits == 2 ? 2 : 25;
  out.layer = 4 - layer_bits;
  out.has_crc = !(data[1] & 1);
  int bitrate_index = data[2] >> 4, rate_index = (data[2] >> 2) & 3;
  if (bitrate_index == 0) return fail(error, "free-format MPEG audio is not supported");
  if (bitrate_index == 15) return fail(error, "invalid MPEG audio bitrate index");
  if (rate_index == 3) return fail(error, "reserved MPEG audio sampling rate");
  out.bitrate = kMpegBitrates[out.version == 1 ? 0 : 1][out.layer - 1][bitrate_index] * 1000;
  out.sample_rate = kMpegRates[rate_index] >> (out.version == 1 ? 0 : out.version == 2 ? 1 : 2);
  out.padding = (data[2] >> 1) & 1;
  out.channel_mode = data[3] >> 6;
  out.channels = out.channel_mode == 3 ? 1 : 2;
  size_t bitrate = size_t(out.bitrate), rate = out.sample_rate, pad = out.padding ? 1 : 0;
  if (out.layer == 1) {
    out.samples = 384;
    out.frame_size = (12 * bitrate / rate + pad) * 4;
  } else if (out.layer == 2 || out.version == 1) {
    out.samples = 1152;
    out.frame_size = 144 * bitrate / rate + pad;
  } else {
    out.samples = 576;
    out.frame_size = 72 * bitrate / rate + pad;
  }
  return true;
}

bool parse_id3v2(const uint8_t *data, size_t size, Id3v2Tag &out, std::string *error) {
  out = Id3v2Tag();
  if (!data || size < 10 || memcmp(data, "ID3", 3) != 0) return fail(error, "no ID3v2 header");
  out.major = data[3];
  out.revision = data[4];
  if (out.major < 2 || out.major > 4 || out.revision == 0xff)
    return fail(error, "unsupported ID3v2 version 2." + std::to_string(out.major));
  for (int i = 6; i < 10; i++)
    if (data[i] & 0x80) return fail(error, "ID3v2 size is not a synchsafe integer");
  uint8_t flags = data[5];
  out.unsync = flags & 0x80;
  out.extended = flags & 0x40;
  out.footer = out.major == 4 && (flags & 0x10);
  size_t body = size_t(data[6]) << 21 | size_t(data[7]) << 14 | size_t(data[8]) << 7 | data[9];
  out.size = 10 + body + (out.footer ? 10 : 0);
  return true;
}

size_t id3v2_size(const uint8_t *data, size_t size) {
  Id3v2Tag tag;
  return parse_id3v2(data, size, tag) ? tag.size : 0;
}

namespace {

bool parse_lame_tag(const uint8_t *frame, size_t size, size_t at, MpegInfoFrame &out) {
  // 9 bytes of version, then 27 bytes of which delay/padding are at 21..23
  // and the tag's CRC at 34..35 (CRC over the frame up to the CRC itself).
  if (size < at + 36) return false;
  const uint8_t *tag = frame + at;
  static const char *const kEncoders[] = {"LAME", "Lavf", "Lavc", "L3.9", "GOGO"};
  bool known = false;
  for (const char *name : kEncoders) known = known || memcmp(tag, name, 4) == 0;
  if (!known) return false;
  out.has_lame = true;
  out.encoder.clear();
  for (int i = 0; i < 9 && tag[i] >= 0x20 && tag[i] < 0x7f; i++) out.encoder += char(tag[i]);
  out.encoder_delay = tag[21] << 4 | tag[22] >> 4;
  out.encoder_padding = (tag[22] & 0x0f) << 8 | tag[23];
  // LAME covers the bytes before the CRC (190 in an MPEG-1 stereo frame);
  // ffmpeg always 190 bytes, with the CRC field still zero.
  uint16_t stored = uint16_t(tag[34] << 8 | tag[35]);
  out.lame_crc_ok = lame_crc16(frame, at + 34) == stored;
  if (!out.lame_crc_ok && size >= 190 && at + 36 <= 190) {
    uint8_t copy[190];
    memcpy(copy, frame, 190);
    copy[at + 34] = copy[at + 35] = 0;
    out.lame_crc_ok = lame_crc16(copy, 190) == stored;
  }
  return true;
}

}  // namespace

bool parse_mpeg_info_frame(const uint8_t *data, size_t size, const MpegAudioHeader &h,
                           MpegInfoFrame &out, std::string *error) {
  out = MpegInfoFrame();
  if (!data) return fail(error, "no frame");
  if (size > h.frame_size) size = h.frame_size;
  size_t at = 4 + h.side_info_size();
  // Xing/Info sit after the side information; some writers count the CRC.
  for (size_t pos : {at, at + 2}) {
    if (h.layer != 3 || (pos != at && !h.has_crc) || size < pos + 8) continue;
    bool xing = memcmp(data + pos, "Xing", 4) == 0, info = memcmp(data + pos, "Info", 4) == 0;
    if (!xing && !info) continue;
    out.kind = xing ? MpegInfoFrame::Kind::Xing : MpegInfoFrame::Kind::Info;
    uint32_t flags = be32(data + pos + 4);
    size_t p = pos + 8;
    size_t need =
        p + (flags & 1 ? 4 : 0) + (flags & 2 ? 4 : 0) + (flags & 4 ? 100 : 0) + (flags & 8 ? 4 : 0);
    if (size < need) return fail(error, "Xing/Info header truncated");
    if (flags & 1) {
      out.has_frames = true;
      out.frames = be32(data + p);
      p += 4;
    }
    if (flags & 2) {
      out.has_bytes = true;
      out.bytes = be32(data + p);
      p += 4;
    }
    if (flags & 4) p += 100;
    if (flags & 8) p += 4;
    parse_lame_tag(data, size, p, out);
    return true;
  }
  // VBRI: always 32 bytes after the header.
  if (size >= 4 + 32 + 18 && memcmp(data + 36, "VBRI", 4) == 0) {
    const uint8_t *v = data + 36;
    out.kind = MpegInfoFrame::Kind::Vbri;
    out.vbri_delay = v[6] << 8 | v[7];
    out.has_bytes = true;
    out.bytes = be32(v + 10);
    out.has_frames = true;
    out.frames = be32(v + 14);
  }
  return true;
}

bool parse_mp3_start(const uint8_t *data, size_t size, Mp3Start &out, std::string *error) {
  out = Mp3Start();
  if (!data) return fail(error, "no data");
  size_t pos = 0;
  Id3v2Tag tag;
  // Several tags may follow one another; each is checked to fit.
  for (int n = 0; n < 16 && parse_id3v2(data + pos, size - pos, tag); n++) {
    if (tag.size > size - pos) return fail(error, "ID3v2 tag longer than the data");
    pos += tag.size;
  }
  out.id3_size = pos;
  std::string why;
  if (!parse_mpeg_audio_header(data + pos, size - pos, out.first, &why))
    return fail(error, "no MPEG audio frame after " + std::to_string(pos) + " bytes: " + why);
  if (!parse_mpeg_info_frame(data + pos, size - pos, out.first, out.info, error)) return false;
  out.audio_offset = pos;
  if (out.info.kind != MpegInfoFrame::Kind::None) {
    if (out.first.frame_size > size - pos) return fail(error, "MP3 info frame truncated");
    out.audio_offset = pos + out.first.frame_size;
  }
  return true;
}

int mp3_main_data_begin(const uint8_t *data, size_t size, const MpegAudioHeader &h) {
  if (h.layer != 3) return -1;
  size_t at = h.has_crc ? 6 : 4;
  if (size < at + 2) return -1;
  unsigned v = (unsigned(data[at]) << 8) | data[at + 1];
  return h.version == 1 ? int(v >> 7) : int(v >> 8);  // 9 bits (MPEG-1), else 8
}

void Mp3Gapless::info_frame(int64_t segment, const MpegInfoFrame &info) {
  info_segment_ = segment;
  info_ = info;
  if (segment == 0 && info.has_lame) {
    have_first_ = true;
    first_delay_ = info.encoder_delay;
  }
}

bool Mp3Gapless::audio_frame(int64_t segment, int main_data_begin, Mp3Trim &out) {
  out = Mp3Trim();
  if (info_segment_ != segment || !info_.has_lame) return false;
  int delay = info_.encoder_delay;
  bool starts_encode = segment == 0 || (main_data_begin == 0 && delay > 0 &&
                                        (!have_first_ || delay == first_delay_));
  if (starts_encode) out.start = uint64_t(delay) + kMp3DecoderDelay;
  if (info_.encoder_padding > kMp3DecoderDelay)
    out.end = uint64_t(info_.encoder_padding - kMp3DecoderDelay);
  info_segment_ = -1;  // once per segment
  return out.start > 0 || out.end > 0;
}

// ---------------------------------------------------------------- Ogg

uint64_t OggGranules::packet(uint64_t samples, int64_t granule) {
  if (granule < 0) {
    if (end_ >= 0) end_ = int64_t(std::min<uint64_t>(uint64_t(end_) + samples, INT64_MAX));
    return 0;
  }
  uint64_t trim = 0;
  if (end_ >= 0) {
    uint64_t expected = uint64_t(end_) + samples;  // no overflow: both below 2^63
    if (expected > uint64_t(granule) && expected - uint64_t(granule) < samples)
      trim = expected - uint64_t(granule);
  }
  end_ = granule;
  return trim;
}

}  // namespace segdl
