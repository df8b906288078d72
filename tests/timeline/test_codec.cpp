// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests of the codec parsers (gst/segdl/codec.*): hand-built headers
 * with known values, the boundaries of each field, and hostile bytes. Real
 * encodes (ffmpeg, GStreamer) are checked in test_mp4.cpp. */
#include <gst/check/gstcheck.h>

#include <string>
#include <vector>

#include "segdl/codec.h"

using namespace segdl;

namespace {

typedef std::vector<uint8_t> Bytes;

// Packs fields most significant bit first, as MPEG headers are laid out.
class BitWriter {
 public:
  BitWriter &put(uint32_t value, int bits) {
    for (int i = bits - 1; i >= 0; i--) {
      if (pos_ % 8 == 0) bytes_.push_back(0);
      if ((value >> i) & 1) bytes_.back() |= uint8_t(0x80 >> (pos_ % 8));
      pos_++;
    }
    return *this;
  }
  Bytes bytes() const { return bytes_; }

 private:
  Bytes bytes_;
  size_t pos_ = 0;
};

AacConfig aac_ok(const Bytes &b) {
  AacConfig c;
  std::string err;
  fail_unless(parse_aac_config(b.data(), b.size(), c, &err), "refused: %s", err.c_str());
  return c;
}

std::string aac_refused(const Bytes &b) {
  AacConfig c;
  std::string err;
  fail_if(parse_aac_config(b.data(), b.size(), c, &err), "accepted a bad config");
  fail_if(err.empty(), "no reason given");
  return err;
}

// An ADTS header for `payload` bytes of `blocks` raw data blocks.
Bytes adts(int profile, int sfi, int channels, size_t payload, int blocks = 1, bool crc = false) {
  size_t header = crc ? 7 + 2 * size_t(blocks - 1) + 2 : 7;
  BitWriter w;
  w.put(0xfff, 12).put(0, 1).put(0, 2).put(crc ? 0 : 1, 1);
  w.put(profile, 2).put(sfi, 4).put(0, 1).put(channels, 3).put(0, 4);
  w.put(uint32_t(header + payload), 13).put(0x7ff, 11).put(blocks - 1, 2);
  Bytes b = w.bytes();
  b.resize(header, 0);
  return b;
}

// An MPEG audio frame header.
Bytes mpa(int version_bits, int layer_bits, int bitrate_index, int rate_index, int padding,
          int mode, bool crc = false) {
  BitWriter w;
  w.put(0x7ff, 11).put(version_bits, 2).put(layer_bits, 2).put(crc ? 0 : 1, 1);
  w.put(bitrate_index, 4).put(rate_index, 2).put(padding, 1).put(0, 1);
  w.put(mode, 2).put(0, 2).put(0, 1).put(1, 1).put(0, 2);
  return w.bytes();
}

}  // namespace

GST_START_TEST(aac_lc_configs) {
  AacConfig c = aac_ok({0x12, 0x10});  // LC, 44100, stereo
  ck_assert_int_eq(c.object_type, 2);
  ck_assert_int_eq(c.sample_rate, 44100);
  ck_assert_int_eq(c.channels, 2);
  ck_assert_int_eq(c.frame_length, 1024);
  fail_if(c.sbr || c.ps);
  ck_assert_int_eq(c.output_frame_length(), 1024);
  ck_assert_int_eq(c.output_rate(), 44100);

  c = aac_ok({0x11, 0x88});  // LC, 48000, mono
  ck_assert_int_eq(c.sample_rate, 48000);
  ck_assert_int_eq(c.channels, 1);

  c = aac_ok(BitWriter().put(2, 5).put(3, 4).put(2, 4).put(1, 1).put(0, 2).bytes());
  ck_assert_int_eq(c.frame_length, 960);  // frameLengthFlag

  c = aac_ok(BitWriter().put(2, 5).put(15, 4).put(44056, 24).put(6, 4).put(0, 3).bytes());
  ck_assert_int_eq(c.sample_rate_index, 15);
  ck_assert_int_eq(c.sample_rate, 44056);  // explicit rate
  ck_assert_int_eq(c.channels, 6);

  c = aac_ok(BitWriter().put(2, 5).put(4, 4).put(7, 4).put(0, 3).bytes());
  ck_assert_int_eq(c.channels, 8);  // 7.1

  c = aac_ok(BitWriter().put(23, 5).put(3, 4).put(1, 4).put(1, 1).put(0, 2).put(0, 2).bytes());
  ck_assert_int_eq(c.frame_length, 480);  // ER AAC LD
}
GST_END_TEST;

GST_START_TEST(aac_sbr_ps_signalling) {
  // Explicit hierarchical: AOT 5, core 24 kHz, SBR 48 kHz, then AOT 2.
  AacConfig c =
      aac_ok(BitWriter().put(5, 5).put(6, 4).put(2, 4).put(3, 4).put(2, 5).put(0, 3).bytes());
  fail_unless(c.sbr && !c.ps);
  ck_assert_int_eq(c.object_type, 2);
  ck_assert_int_eq(c.sample_rate, 24000);
  ck_assert_int_eq(c.sbr_sample_rate, 48000);
  ck_assert_int_eq(c.frame_length, 1024);
  ck_assert_int_eq(c.output_frame_length(), 2048);
  ck_assert_int_eq(c.output_rate(), 48000);

  // AOT 29: PS (and SBR), mono core.
  c = aac_ok(BitWriter().put(29, 5).put(6, 4).put(1, 4).put(3, 4).put(2, 5).put(0, 3).bytes());
  fail_unless(c.sbr && c.ps);

  // Backward compatible: AAC LC 24 kHz, then sync extension 0x2b7, AOT 5,
  // sbrPresentFlag, 48 kHz, then 0x548 and psPresentFlag.
  c = aac_ok(BitWriter()
                 .put(2, 5)
                 .put(6, 4)
                 .put(1, 4)
                 .put(0, 3)
                 .put(0x2b7, 11)
                 .put(5, 5)
                 .put(1, 1)
                 .put(3, 4)
                 .put(0x548, 11)
                 .put(1, 1)
                 .bytes());
  fail_unless(c.sbr && c.ps);
  ck_assert_int_eq(c.object_type, 2);
  ck_assert_int_eq(c.sample_rate, 24000);
  ck_assert_int_eq(c.sbr_sample_rate, 48000);

  // The same with sbrPresentFlag 0: no SBR.
  c = aac_ok(BitWriter()
                 .put(2, 5)
                 .put(6, 4)
                 .put(1, 4)
                 .put(0, 3)
                 .put(0x2b7, 11)
                 .put(5, 5)
                 .put(0, 1)
                 .put(0, 4)
                 .bytes());
  fail_if(c.sbr);
}
GST_END_TEST;

GST_START_TEST(aac_program_config_element) {
  // channel_config 0: PCE with one front CPE, one front SCE and one LFE = 4.
  BitWriter w;
  w.put(2, 5).put(4, 4).put(0, 4).put(0, 3);        // LC 44100, PCE follows, GA flags
  w.put(0, 4).put(1, 2).put(4, 4);                  // tag, object type, sfi
  w.put(2, 4).put(0, 4).put(0, 4).put(1, 2);        // 2 front, 0 side, 0 back, 1 lfe
  w.put(0, 3).put(0, 4);                            // assoc, cc
  w.put(0, 1).put(0, 1).put(0, 1);                  // no mixdowns
  w.put(1, 1).put(0, 4).put(0, 1).put(1, 4);        // CPE 0, SCE 1
  w.put(2, 4);                                      // LFE tag (64 bits: aligned)
  w.put(3, 8).put('a', 8).put('b', 8).put('c', 8);  // comment
  AacConfig c = aac_ok(w.bytes());
  ck_assert_int_eq(c.channel_config, 0);
  ck_assert_int_eq(c.channels, 4);

  // The same cut inside the comment.
  Bytes cut = w.bytes();
  cut.pop_back();
  aac_refused(cut);
}
GST_END_TEST;

GST_START_TEST(aac_hostile_configs) {
  aac_refused({});
  aac_refused({0x12});
  std::string why = aac_refused({0x16, 0x90});  // sfi 13
  fail_unless(why.find("sampling frequency") != std::string::npos, "%s", why.c_str());
  why = aac_refused({0x00, 0x10});  // AOT 0
  fail_unless(why.find("object type") != std::string::npos, "%s", why.c_str());
  aac_refused(BitWriter().put(31, 5).put(10, 6).put(4, 4).put(2, 4).put(0, 3).bytes());  // AOT 42
  aac_refused(BitWriter().put(2, 5).put(4, 4).put(9, 4).put(0, 3).bytes());    // channel config 9
  aac_refused(BitWriter().put(2, 5).put(15, 4).put(0, 24).put(2, 4).bytes());  // explicit rate 0
  aac_refused(BitWriter().put(5, 5).put(4, 4).put(2, 4).put(14, 4).bytes());   // bad SBR rate
  // Every prefix of a valid PCE config is refused or parsed, never overread.
  Bytes all(64, 0xff);
  for (size_t n = 0; n <= all.size(); n++) {
    AacConfig c;
    parse_aac_config(all.data(), n, c);
  }
}
GST_END_TEST;

GST_START_TEST(adts_headers) {
  AdtsHeader h;
  std::string err;
  Bytes b = adts(1, 4, 2, 300);
  fail_unless(parse_adts_header(b.data(), b.size(), h, &err), "%s", err.c_str());
  ck_assert_int_eq(h.object_type, 2);
  ck_assert_int_eq(h.sample_rate, 44100);
  ck_assert_int_eq(h.channel_config, 2);
  ck_assert_int_eq(h.header_size, 7);
  ck_assert_int_eq(h.frame_size, 307);
  ck_assert_int_eq(h.raw_blocks, 1);
  ck_assert_int_eq(h.samples, 1024);
  fail_unless(adts_to_aac_config(h) == Bytes({0x12, 0x10}));

  b = adts(1, 3, 1, 900, 4, true);  // 4 raw data blocks, CRC
  fail_unless(parse_adts_header(b.data(), b.size(), h, &err), "%s", err.c_str());
  ck_assert_int_eq(h.raw_blocks, 4);
  ck_assert_int_eq(h.samples, 4096);
  fail_unless(h.has_crc);
  ck_assert_int_eq(h.header_size, 7 + 6 + 2);
  ck_assert_int_eq(h.frame_size, 915);
  fail_unless(adts_to_aac_config(h) == Bytes({0x11, 0x88}));

  fail_if(parse_adts_header(b.data(), 6, h, &err));  // short
  b = adts(1, 4, 2, 0);                              // frame length = header: no payload
  fail_if(parse_adts_header(b.data(), b.size(), h, &err));
  b = adts(1, 13, 2, 100);  // reserved rate
  fail_if(parse_adts_header(b.data(), b.size(), h, &err));
  b = adts(1, 4, 2, 100);
  b[1] |= 0x02;  // layer 1
  fail_if(parse_adts_header(b.data(), b.size(), h, &err));
  b = adts(1, 4, 2, 100, 1, true);
  fail_if(parse_adts_header(b.data(), 8, h, &err));  // CRC missing
  Bytes zeros(16, 0);
  fail_if(parse_adts_header(zeros.data(), zeros.size(), h, &err));
}
GST_END_TEST;

GST_START_TEST(opus_toc_durations) {
  // RFC 6716 table 2: configs 0-11 SILK, 12-15 hybrid, 16-31 CELT.
  const int expected[32] = {480,  960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920,
                            2880, 480, 960,  480,  960, 120, 240,  480,  960, 120, 240,
                            480,  960, 120,  240,  480, 960, 120,  240,  480, 960};
  for (int config = 0; config < 32; config++)
    ck_assert_int_eq(opus_frame_samples(uint8_t(config << 3 | 4)), expected[config]);
}
GST_END_TEST;

GST_START_TEST(opus_packets) {
  const uint8_t celt20 = 31 << 3;  // CELT FB 20 ms
  OpusPacketInfo info;
  std::string err;
  Bytes p = {uint8_t(celt20 | 0), 1, 2, 3};
  fail_unless(parse_opus_packet(p.data(), p.size(), info, &err), "%s", err.c_str());
  ck_assert_int_eq(info.frames, 1);
  ck_assert_int_eq(info.samples, 960);
  ck_assert_int_eq(opus_packet_samples(p.data(), 1), 960);  // TOC alone: a DTX frame

  p = {uint8_t(celt20 | 1), 1, 2, 3, 4};  // code 1: two equal frames
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), 1920);
  ck_assert_int_eq(opus_packet_samples(p.data(), 4), -1);  // odd payload (R3)

  p = {uint8_t(celt20 | 2), 2, 1, 2, 3};  // code 2: first frame 2 bytes
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), 1920);
  p = {uint8_t(celt20 | 2), 5, 1, 2};  // first frame longer than the packet (R4)
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);
  p = {uint8_t(celt20 | 2), 253};  // two-byte length cut
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);

  // Code 3 CBR: 3 frames of 2 bytes.
  p = {uint8_t(celt20 | 3), 3, 1, 1, 2, 2, 3, 3};
  fail_unless(parse_opus_packet(p.data(), p.size(), info, &err), "%s", err.c_str());
  ck_assert_int_eq(info.frames, 3);
  ck_assert_int_eq(info.samples, 2880);
  p.pop_back();  // 5 bytes for 3 frames (R6)
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);

  // Code 3 VBR with padding: frames 1 and 2 bytes, then 3 bytes; padding 256
  // (255 = 254 + next byte 2).
  p = {uint8_t(celt20 | 3), 0x80 | 0x40 | 3, 255, 2, 1, 2, 9, 8, 8, 7, 7, 7};
  p.resize(p.size() + 256, 0);
  fail_unless(parse_opus_packet(p.data(), p.size(), info, &err), "%s", err.c_str());
  ck_assert_int_eq(info.padding, 256);
  ck_assert_int_eq(info.samples, 2880);
  // Frames longer than what the padding leaves (R7); padding longer than the packet.
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size() - 4), -1);
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size() - 9), -1);

  // 120 ms is the most: 6 frames of 20 ms pass, 7 do not (R5); 0 frames neither.
  p = {uint8_t(celt20 | 3), 6};
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), 5760);
  p = {uint8_t(celt20 | 3), 7};
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);
  p = {uint8_t(16 << 3 | 3), 48};  // 48 frames of 2.5 ms = 120 ms
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), 5760);
  p = {uint8_t(celt20 | 3), 0};
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);
  p = {uint8_t(celt20 | 3)};  // no count byte
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);
  ck_assert_int_eq(opus_packet_samples(p.data(), 0), -1);  // R1

  // A frame above 1275 bytes (R2).
  p.assign(1277, 0);
  p[0] = celt20;
  ck_assert_int_eq(opus_packet_samples(p.data(), p.size()), -1);
  ck_assert_int_eq(opus_packet_samples(p.data(), 1276), 960);
}
GST_END_TEST;

GST_START_TEST(opus_headers) {
  Bytes head = {'O',  'p',  'u',  's',  'H', 'e', 'a',  'd',  1, 2,
                0x38, 0x01, 0x80, 0xbb, 0,   0,   0x00, 0xff, 0};
  OpusHead h;
  std::string err;
  fail_unless(parse_opus_head(head.data(), head.size(), h, &err), "%s", err.c_str());
  ck_assert_int_eq(h.channels, 2);
  ck_assert_int_eq(h.pre_skip, 312);
  ck_assert_int_eq(h.input_rate, 48000);
  ck_assert_int_eq(h.output_gain, -256);
  ck_assert_int_eq(h.mapping_family, 0);
  ck_assert_int_eq(h.stream_count, 1);
  ck_assert_int_eq(h.coupled_count, 1);

  // Family 1, 3 channels: 2 streams, 1 coupled, mapping 0 2 1.
  Bytes multi = head;
  multi[9] = 3;
  multi[18] = 1;
  multi.insert(multi.end(), {2, 1, 0, 2, 1});
  fail_unless(parse_opus_head(multi.data(), multi.size(), h, &err), "%s", err.c_str());
  ck_assert_int_eq(h.stream_count, 2);
  fail_unless(h.mapping == Bytes({0, 2, 1}));
  fail_if(parse_opus_head(multi.data(), multi.size() - 1, h, &err));  // mapping cut
  multi.back() = 3;                                                   // names stream 3 of 3
  fail_if(parse_opus_head(multi.data(), multi.size(), h, &err));

  Bytes bad = head;
  bad[9] = 3;  // family 0 with 3 channels
  fail_if(parse_opus_head(bad.data(), bad.size(), h, &err));
  bad = head;
  bad[8] = 0x10;  // major version 1
  fail_if(parse_opus_head(bad.data(), bad.size(), h, &err));
  bad = head;
  bad[9] = 0;
  fail_if(parse_opus_head(bad.data(), bad.size(), h, &err));
  fail_if(parse_opus_head(head.data(), 18, h, &err));
  bad = head;
  bad[0] = 'o';
  fail_if(parse_opus_head(bad.data(), bad.size(), h, &err));

  // dOps: big-endian, no magic.
  Bytes dops = {0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0xff, 0x00, 0};
  fail_unless(parse_opus_dops(dops.data(), dops.size(), h, &err), "%s", err.c_str());
  ck_assert_int_eq(h.channels, 2);
  ck_assert_int_eq(h.pre_skip, 312);
  ck_assert_int_eq(h.input_rate, 48000);
  ck_assert_int_eq(h.output_gain, -256);
  fail_if(h.byte_swapped);
  // The same written little-endian, as GStreamer 1.22's mp4mux does.
  Bytes swapped = {0, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0x00, 0xff, 0};
  fail_unless(parse_opus_dops(swapped.data(), swapped.size(), h, &err), "%s", err.c_str());
  fail_unless(h.byte_swapped);
  ck_assert_int_eq(h.pre_skip, 312);
  ck_assert_int_eq(h.input_rate, 48000);
  ck_assert_int_eq(h.output_gain, -256);
  // A rate of 0 ("unknown") stays big-endian.
  Bytes zero_rate = {0, 1, 0x01, 0x38, 0, 0, 0, 0, 0, 0, 0};
  fail_unless(parse_opus_dops(zero_rate.data(), zero_rate.size(), h, &err));
  fail_unless(!h.byte_swapped && h.pre_skip == 312);
  fail_if(parse_opus_dops(dops.data(), 10, h, &err));
  dops[0] = 1;
  fail_if(parse_opus_dops(dops.data(), dops.size(), h, &err));
}
GST_END_TEST;

GST_START_TEST(mpeg_audio_headers) {
  MpegAudioHeader h;
  std::string err;
  Bytes b = mpa(3, 1, 9, 0, 0, 1);  // MPEG-1 layer 3, 128 kbit/s, 44100, joint stereo
  fail_unless(parse_mpeg_audio_header(b.data(), b.size(), h, &err), "%s", err.c_str());
  ck_assert_int_eq(h.version, 1);
  ck_assert_int_eq(h.layer, 3);
  ck_assert_int_eq(h.bitrate, 128000);
  ck_assert_int_eq(h.sample_rate, 44100);
  ck_assert_int_eq(h.frame_size, 417);
  ck_assert_int_eq(h.samples, 1152);
  ck_assert_int_eq(h.side_info_size(), 32);
  b = mpa(3, 1, 9, 0, 1, 3);  // padded, mono
  fail_unless(parse_mpeg_audio_header(b.data(), b.size(), h, &err));
  ck_assert_int_eq(h.frame_size, 418);
  ck_assert_int_eq(h.channels, 1);
  ck_assert_int_eq(h.side_info_size(), 17);

  b = mpa(2, 1, 8, 1, 0, 0);  // MPEG-2 layer 3, 64 kbit/s, 24000
  fail_unless(parse_mpeg_audio_header(b.data(), b.size(), h, &err));
  ck_assert_int_eq(h.version, 2);
  ck_assert_int_eq(h.sample_rate, 24000);
  ck_assert_int_eq(h.samples, 576);
  ck_assert_int_eq(h.frame_size, 192);
  ck_assert_int_eq(h.side_info_size(), 17);

  b = mpa(0, 1, 8, 2, 0, 3);  // MPEG-2.5 layer 3, 64 kbit/s, 8000, mono
  fail_unless(parse_mpeg_audio_header(b.data(), b.size(), h, &err));
  ck_assert_int_eq(h.version, 25);
  ck_assert_int_eq(h.sample_rate, 8000);
  ck_assert_int_eq(h.frame_size, 576);
  ck_assert_int_eq(h.side_info_size(), 9);

  b = mpa(3, 2, 12, 1, 0, 0);  // MPEG-1 layer 2, 256 kbit/s, 48000
  fail_unless(parse_mpeg_audio_header(b.data(), b.size(), h, &err));
  ck_assert_int_eq(h.samples, 1152);
  ck_assert_int_eq(h.frame_size, 768);
  b = mpa(3, 3, 12, 1, 1, 0);  // MPEG-1 layer 1, 384 kbit/s, 48000, padded
  fail_unless(parse_mpeg_audio_header(b.data(), b.size(), h, &err));
  ck_assert_int_eq(h.samples, 384);
  ck_assert_int_eq(h.frame_size, 388);

  fail_if(parse_mpeg_audio_header(mpa(1, 1, 9, 0, 0, 0).data(), 4, h, &err));   // version
  fail_if(parse_mpeg_audio_header(mpa(3, 0, 9, 0, 0, 0).data(), 4, h, &err));   // layer
  fail_if(parse_mpeg_audio_header(mpa(3, 1, 0, 0, 0, 0).data(), 4, h, &err));   // free format
  fail_if(parse_mpeg_audio_header(mpa(3, 1, 15, 0, 0, 0).data(), 4, h, &err));  // bitrate 15
  fail_if(parse_mpeg_audio_header(mpa(3, 1, 9, 3, 0, 0).data(), 4, h, &err));   // rate 3
  fail_if(parse_mpeg_audio_header(mpa(3, 1, 9, 0, 0, 0).data(), 3, h, &err));   // short
}
GST_END_TEST;

GST_START_TEST(id3v2_tags) {
  Bytes tag = {'I', 'D', '3', 4, 0, 0x10, 0, 0, 0x02, 0x01};  // v2.4, footer, 257 bytes
  Id3v2Tag t;
  std::string err;
  fail_unless(parse_id3v2(tag.data(), tag.size(), t, &err), "%s", err.c_str());
  ck_assert_int_eq(t.major, 4);
  fail_unless(t.footer && !t.unsync);
  ck_assert_int_eq(t.size, 10 + 257 + 10);
  tag[5] = 0x80;  // unsync, no footer
  ck_assert_int_eq(id3v2_size(tag.data(), tag.size()), 267);
  fail_unless(parse_id3v2(tag.data(), tag.size(), t, &err) && t.unsync);
  tag[3] = 3;
  tag[5] = 0x10;  // v2.3 has no footer flag
  ck_assert_int_eq(id3v2_size(tag.data(), tag.size()), 267);
  tag[8] = 0x80;  // not synchsafe
  ck_assert_int_eq(id3v2_size(tag.data(), tag.size()), 0);
  tag[8] = 0x7f;
  tag[6] = tag[7] = tag[9] = 0x7f;
  ck_assert_int_eq(id3v2_size(tag.data(), tag.size()), 10 + 0x0fffffff);
  tag[3] = 5;
  ck_assert_int_eq(id3v2_size(tag.data(), tag.size()), 0);
  ck_assert_int_eq(id3v2_size(tag.data(), 9), 0);
}
GST_END_TEST;

namespace {

// A whole MPEG-1 layer 3 frame (128 kbit/s, 44100, stereo) carrying an Info
// header with frames, bytes and a LAME tag.
Bytes info_frame(const char *magic, int delay, int padding, bool good_crc) {
  Bytes f = mpa(3, 1, 9, 0, 0, 0);
  f.resize(417, 0);
  size_t p = 4 + 32;
  memcpy(&f[p], magic, 4);
  f[p + 7] = 0x03;                  // frames + bytes
  f[p + 11] = 100;                  // 100 frames
  f[p + 14] = 0xa2, f[p + 15] = 0;  // 41472 bytes
  p += 16;
  memcpy(&f[p], "LAME3.100", 9);
  f[p + 21] = uint8_t(delay >> 4);
  f[p + 22] = uint8_t((delay & 15) << 4 | padding >> 8);
  f[p + 23] = uint8_t(padding & 0xff);
  uint16_t crc = 0;
  for (size_t i = 0; i < p + 34; i++) {
    crc ^= f[i];
    for (int k = 0; k < 8; k++) crc = (crc & 1) ? uint16_t((crc >> 1) ^ 0xa001) : crc >> 1;
  }
  if (!good_crc) crc ^= 1;
  f[p + 34] = uint8_t(crc >> 8);
  f[p + 35] = uint8_t(crc);
  return f;
}

}  // namespace

GST_START_TEST(mp3_info_frames) {
  Bytes f = info_frame("Info", 576, 1500, true);
  MpegAudioHeader h;
  MpegInfoFrame info;
  std::string err;
  fail_unless(parse_mpeg_audio_header(f.data(), f.size(), h));
  fail_unless(parse_mpeg_info_frame(f.data(), f.size(), h, info, &err), "%s", err.c_str());
  fail_unless(info.kind == MpegInfoFrame::Kind::Info);
  fail_unless(info.has_frames && info.frames == 100);
  fail_unless(info.has_bytes && info.bytes == 0xa200);
  fail_unless(info.has_lame);
  ck_assert_str_eq(info.encoder.c_str(), "LAME3.100");
  ck_assert_int_eq(info.encoder_delay, 576);
  ck_assert_int_eq(info.encoder_padding, 1500);
  fail_unless(info.lame_crc_ok);

  f = info_frame("Xing", 4095, 4095, false);  // 12-bit maxima, wrong CRC
  fail_unless(parse_mpeg_info_frame(f.data(), f.size(), h, info, &err));
  fail_unless(info.kind == MpegInfoFrame::Kind::Xing);
  ck_assert_int_eq(info.encoder_delay, 4095);
  ck_assert_int_eq(info.encoder_padding, 4095);
  fail_if(info.lame_crc_ok);

  // Cut inside the Xing fields: refused; cut before the LAME tag: no tag.
  fail_if(parse_mpeg_info_frame(f.data(), 36 + 12, h, info, &err));
  fail_unless(parse_mpeg_info_frame(f.data(), 36 + 16 + 20, h, info, &err));
  fail_if(info.has_lame);

  // An audio frame (zeros after the header) is no info frame.
  Bytes audio = mpa(3, 1, 9, 0, 0, 0);
  audio.resize(417, 0);
  fail_unless(parse_mpeg_info_frame(audio.data(), audio.size(), h, info, &err));
  fail_unless(info.kind == MpegInfoFrame::Kind::None);

  // VBRI, 32 bytes after the header.
  Bytes vbri = audio;
  memcpy(&vbri[36], "VBRI", 4);
  vbri[36 + 7] = 0x40;  // delay 64
  vbri[36 + 17] = 50;   // 50 frames
  fail_unless(parse_mpeg_info_frame(vbri.data(), vbri.size(), h, info, &err));
  fail_unless(info.kind == MpegInfoFrame::Kind::Vbri);
  ck_assert_int_eq(info.vbri_delay, 64);
  ck_assert_int_eq(info.frames, 50);
}
GST_END_TEST;

GST_START_TEST(mp3_stream_start) {
  Bytes tag = {'I', 'D', '3', 3, 0, 0, 0, 0, 0, 20};
  tag.resize(30, 0);
  Bytes file = tag;
  Bytes info = info_frame("Info", 576, 1000, true);
  file.insert(file.end(), info.begin(), info.end());
  Bytes audio = mpa(3, 1, 9, 0, 0, 0);
  audio.resize(417, 0x55);
  file.insert(file.end(), audio.begin(), audio.end());

  Mp3Start s;
  std::string err;
  fail_unless(parse_mp3_start(file.data(), file.size(), s, &err), "%s", err.c_str());
  ck_assert_int_eq(s.id3_size, 30);
  fail_unless(s.info.kind == MpegInfoFrame::Kind::Info);
  ck_assert_int_eq(s.info.encoder_delay, 576);
  ck_assert_int_eq(s.audio_offset, 30 + 417);

  // Two tags in a row, then audio straight away.
  Bytes two = tag;
  two.insert(two.end(), tag.begin(), tag.end());
  two.insert(two.end(), audio.begin(), audio.end());
  fail_unless(parse_mp3_start(two.data(), two.size(), s, &err), "%s", err.c_str());
  ck_assert_int_eq(s.id3_size, 60);
  fail_unless(s.info.kind == MpegInfoFrame::Kind::None);
  ck_assert_int_eq(s.audio_offset, 60);

  // A tag claiming more than there is; an info frame cut short; garbage.
  Bytes lying = {'I', 'D', '3', 3, 0, 0, 0, 0, 0x7f, 0x7f};
  fail_if(parse_mp3_start(lying.data(), lying.size(), s, &err));
  fail_unless(err.find("ID3v2") != std::string::npos, "%s", err.c_str());
  fail_if(parse_mp3_start(file.data(), 30 + 300, s, &err));
  Bytes junk(100, 0x42);
  fail_if(parse_mp3_start(junk.data(), junk.size(), s, &err));
}
GST_END_TEST;

GST_START_TEST(mp3_main_data_begin_values) {
  MpegAudioHeader h;
  // MPEG-1: 9 bits after the header; with CRC after its 2 bytes.
  Bytes f = mpa(3, 1, 9, 0, 0, 0);
  f.resize(417, 0);
  fail_unless(parse_mpeg_audio_header(f.data(), f.size(), h));
  ck_assert_int_eq(mp3_main_data_begin(f.data(), f.size(), h), 0);
  f[4] = 0xff, f[5] = 0x80;
  ck_assert_int_eq(mp3_main_data_begin(f.data(), f.size(), h), 511);
  f[4] = 0x01, f[5] = 0x00;
  ck_assert_int_eq(mp3_main_data_begin(f.data(), f.size(), h), 2);
  ck_assert_int_eq(mp3_main_data_begin(f.data(), 5, h), -1);  // cut short
  Bytes c = mpa(3, 1, 9, 0, 0, 0, true);
  c.resize(417, 0);
  c[6] = 0x80;
  fail_unless(parse_mpeg_audio_header(c.data(), c.size(), h));
  ck_assert_int_eq(mp3_main_data_begin(c.data(), c.size(), h), 256);
  // MPEG-2: 8 bits.
  Bytes m2 = mpa(2, 1, 8, 0, 0, 3);
  m2.resize(300, 0);
  m2[4] = 0xff;
  fail_unless(parse_mpeg_audio_header(m2.data(), m2.size(), h));
  ck_assert_int_eq(mp3_main_data_begin(m2.data(), m2.size(), h), 255);
  // Not layer 3.
  Bytes l2 = mpa(3, 2, 9, 0, 0, 0);
  l2.resize(417, 0);
  fail_unless(parse_mpeg_audio_header(l2.data(), l2.size(), h));
  ck_assert_int_eq(mp3_main_data_begin(l2.data(), l2.size(), h), -1);
}
GST_END_TEST;

namespace {

MpegInfoFrame lame_info(int delay, int padding) {
  MpegInfoFrame i;
  i.kind = MpegInfoFrame::Kind::Info;
  i.has_lame = true;
  i.encoder_delay = delay;
  i.encoder_padding = padding;
  return i;
}

}  // namespace

// ffmpeg -f segment (one encode cut): segment 0's tag has the delay, the
// middle ones nothing, the last one the padding and a delay that is no
// delay (ffmpeg 5.1 writes 3567 there); later segments' first frames reach
// back into the bit reservoir.
GST_START_TEST(mp3_gapless_one_encode) {
  Mp3Gapless g;
  Mp3Trim t;
  g.info_frame(0, lame_info(576, 0));
  fail_unless(g.audio_frame(0, 0, t));
  ck_assert_uint_eq(t.start, 576 + 529);
  ck_assert_uint_eq(t.end, 0);
  fail_if(g.audio_frame(0, 120, t));  // once per segment
  g.info_frame(1, lame_info(0, 0));
  fail_if(g.audio_frame(1, 200, t));
  g.info_frame(2, lame_info(3567, 1656));
  fail_unless(g.audio_frame(2, 150, t));
  ck_assert_uint_eq(t.start, 0);
  ck_assert_uint_eq(t.end, 1656 - 529);
  // Even a cut where the reservoir is empty: the delay is not segment 0's.
  g.info_frame(3, lame_info(3567, 1656));
  fail_unless(g.audio_frame(3, 0, t));
  ck_assert_uint_eq(t.start, 0);
}
GST_END_TEST;

// Segments encoded one by one: each tag's delay and padding.
GST_START_TEST(mp3_gapless_each_encoded) {
  Mp3Gapless g;
  Mp3Trim t;
  for (int64_t k = 0; k < 3; k++) {
    g.info_frame(k, lame_info(576, 756));
    fail_unless(g.audio_frame(k, 0, t));
    ck_assert_uint_eq(t.start, 1105);
    ck_assert_uint_eq(t.end, 756 - 529);
    fail_if(g.audio_frame(k, 0, t));
  }
  // A padding under the decoder delay cuts nothing at the end.
  g.info_frame(3, lame_info(576, 300));
  fail_unless(g.audio_frame(3, 0, t));
  ck_assert_uint_eq(t.end, 0);
  // No LAME tag (a Xing frame alone), no info frame at all: nothing.
  MpegInfoFrame bare = lame_info(576, 756);
  bare.has_lame = false;
  g.info_frame(4, bare);
  fail_if(g.audio_frame(4, 0, t));
  fail_if(g.audio_frame(5, 0, t));
  // Straight into a later segment (a seek) without segment 0 seen: an
  // empty reservoir and a delay are an encode's start.
  Mp3Gapless s;
  s.info_frame(7, lame_info(576, 756));
  fail_unless(s.audio_frame(7, 0, t));
  ck_assert_uint_eq(t.start, 1105);
  s.reset();
  s.info_frame(7, lame_info(576, 756));
  fail_unless(s.audio_frame(7, 12, t));  // reservoir used: a cut, not a start
  ck_assert_uint_eq(t.start, 0);
  ck_assert_uint_eq(t.end, 227);
}
GST_END_TEST;

// Granules: the last packet of a file whose granule is short of the count
// is cut by the difference; the first packet of each file only sets the
// count; packets without a granule go on from the count.
GST_START_TEST(ogg_granule_end_trims) {
  OggGranules g;
  ck_assert_uint_eq(g.packet(0, 0), 0);  // Vorbis' first packet: no samples
  ck_assert_uint_eq(g.packet(1024, 1024), 0);
  ck_assert_uint_eq(g.packet(576, -1), 0);
  ck_assert_uint_eq(g.packet(128, 1728), 0);
  ck_assert_uint_eq(g.packet(1024, 2376), 376);  // the end page
  // A new file cut from the middle of the stream: its first granule is
  // anywhere (ffmpeg's cut even shifts them by 128).
  g.reset();
  ck_assert_uint_eq(g.packet(1024, 1986368), 0);
  ck_assert_uint_eq(g.packet(1024, 1987392), 0);
  // A granule that leaves out the whole packet (oggmux repeats one): no
  // trim, the count is set again.
  ck_assert_uint_eq(g.packet(1024, 1987392), 0);
  ck_assert_uint_eq(g.packet(1024, 1987392 + 1024 - 64), 64);
  // A granule far behind (hostile): no trim either.
  ck_assert_uint_eq(g.packet(1024, 5), 0);
  ck_assert_uint_eq(g.packet(1024, 1029 - 1000), 1000);
  // Near the largest granule: no overflow.
  g.reset();
  ck_assert_uint_eq(g.packet(960, INT64_MAX - 10), 0);
  ck_assert_uint_eq(g.packet(960, INT64_MAX), 950);
  ck_assert_uint_eq(g.packet(960, -1), 0);  // the count stops at the largest value
}
GST_END_TEST;

static Suite *codec_suite() {
  Suite *s = suite_create("codec");
  TCase *tc = tcase_create("codec");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, aac_lc_configs);
  tcase_add_test(tc, aac_sbr_ps_signalling);
  tcase_add_test(tc, aac_program_config_element);
  tcase_add_test(tc, aac_hostile_configs);
  tcase_add_test(tc, adts_headers);
  tcase_add_test(tc, opus_toc_durations);
  tcase_add_test(tc, opus_packets);
  tcase_add_test(tc, opus_headers);
  tcase_add_test(tc, mpeg_audio_headers);
  tcase_add_test(tc, id3v2_tags);
  tcase_add_test(tc, mp3_info_frames);
  tcase_add_test(tc, mp3_stream_start);
  tcase_add_test(tc, mp3_main_data_begin_values);
  tcase_add_test(tc, mp3_gapless_one_encode);
  tcase_add_test(tc, mp3_gapless_each_encoded);
  tcase_add_test(tc, ogg_granule_end_trims);
  return s;
}

GST_CHECK_MAIN(codec);
