// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — self-contained segment fixtures for the "timeline join" tests.
 *
 * Continuous forms (ADTS, MP3, TS) are made by mediagen.h. This file makes
 * the other kind: every segment a whole file with its own header (m4a with
 * its own moov, WebM / Matroska with its own EBML header, Ogg with its own
 * headers), as `ffmpeg -f segment` writes them, plus fragmented MP4 cut into
 * byte ranges of one file. Everything is made with GStreamer at test time
 * and is deterministic (same bytes in every run and process).
 *
 * The melody (mediagen.h) is encoded ONCE per codec into a list of packets
 * (encode_packets); every file is then muxed from those packets without
 * re-encoding (mux_file), so the packets of all the segments of one encode,
 * laid end to end, are exactly the packets of the unsegmented file
 * (whole_file). parse_frames() is the reference reader the element tests
 * compare against, decode_pcm() the reference decoder.
 *
 * What survives a round trip (mux_file, then parse_frames), checked by
 * tests/test_segmenter.cpp in both timestamp modes: for every pairing below
 * the frames of the segments, concatenated, equal the frames of whole_file()
 * byte for byte, in order, same count, and every frame is its packet.
 *   Aac:    M4a, M4aFaststart, FragmentedMp4, Matroska, Adts
 *           (Adts frames = 7-byte ADTS header + the raw packet)
 *   Opus:   WebM, Ogg        Vorbis: Ogg, WebM        Mp3: Mp3, Matroska
 * (Opus / Vorbis in Matroska and MP3 in the MP4 forms behave the same; not
 * in the suite.) No muxer or demuxer drops, merges or alters a packet.
 * Caveats, from the containers and their GStreamer demuxers:
 *  - Codec headers are not frames. Vorbis (3) and Opus (OpusHead, OpusTags)
 *    headers are in the caps' streamheader; every Ogg / WebM / Matroska
 *    segment file repeats them. Parsers push some of them in band, flagged
 *    HEADER (vorbisparse: 3 in every container; opusparse: 2 from Ogg, none
 *    from WebM): parse_frames keeps those in ParsedFrames::headers, apart.
 *  - Opus pre-skip (312 samples, in OpusHead) is the same in every segment.
 *    oggdemux and matroskademux turn it into an audio clipping meta
 *    (clip_start 312) on the first frame of a file whose timestamps start at
 *    0: with TimestampMode::Reset that is EVERY segment file, with Absolute
 *    segment 0 only. A joiner applies it once, for segment 0. The last
 *    packet's end trim (clip_end 649) is kept, so Opus decodes to exactly
 *    the encoded length.
 *  - Timestamps are not bytes: Matroska / WebM store milliseconds (pts within
 *    0.5 ms); oggdemux recomputes Vorbis pts from granules (the first packet
 *    of every Ogg Vorbis stream comes 2.9 ms late, and the whole file drifts
 *    up to 40 ms early near its end against the encoder's pts). Compare
 *    bytes exactly, pts with a tolerance.
 *  - Decoding each segment on its own is not decoding the stream: a fresh
 *    decoder lacks the previous frame's overlap (AAC, MP3), skips pre-skip
 *    again (Opus, Reset) and outputs nothing for the first Vorbis packet.
 *    Compare decode_pcm(whole_file) with ONE decoder fed the joined frames.
 *  - vorbisdec ignores the end granule: Vorbis decodes 13 ms long (7.513 s
 *    for 7.5 s), in the whole file as in any join.
 *  - TimestampMode::Absolute: Matroska / WebM / Ogg / fragmented MP4 (tfdt)
 *    keep the pts, so the first frame of segment k has the original pts.
 *    mp4mux always starts at 0, so for M4a / M4aFaststart an edit list with
 *    an empty edit is added here (what ffmpeg's mov muxer writes): qtdemux
 *    then gives buffer pts from 0 and stream time (ParsedFrame::stream_ns)
 *    from the cut. ADTS and MP3 have no timestamps: both modes give the same
 *    bytes and parse_frames counts from 0 in each file.
 * Nondeterminism removed: mp4mux writes the wall clock into mvhd / tkhd /
 * mdhd (set to 0 here after muxing); matroskamux takes creation-time (set to
 * a fixed date); matroskamux UIDs and oggmux serial numbers come from
 * g_random (GLib's global generator is reseeded before every mux, so do not
 * mux from two threads at once).
 *
 * Every call runs its own short pipeline and waits for it (bounded); all
 * return false with `error` set on failure. gst_init() must have been called.
 */
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/mediagen.h"

namespace segdl::media {

enum class Codec {
  Aac,     // voaacenc (or avenc_aac) → aacparse, stream-format=raw + codec_data, 44100 Hz
  Opus,    // opusenc (20 ms frames) → opusparse, 48000 Hz, streamheader with OpusHead
  Vorbis,  // vorbisenc → vorbisparse, 44100 Hz, streamheader with the 3 headers
  Mp3,     // lamemp3enc (CBR 128k) → mpegaudioparse, 44100 Hz
};

enum class Container {
  M4a,            // mp4mux, moov at the end (the default, like ffmpeg without +faststart)
  M4aFaststart,   // mp4mux faststart=true: moov first
  FragmentedMp4,  // mp4mux fragment-duration=500 ms, streamable (no mfra): init + moof/mdat...
  WebM,           // webmmux (Opus, Vorbis)
  Matroska,       // matroskamux
  Ogg,            // oggmux (Opus, Vorbis)
  Adts,           // AAC frames with ADTS headers, no container (continuous)
  Mp3,            // MP3 frames, no container (continuous)
};

enum class TimestampMode {
  Reset,     // each file's timestamps start at 0 (ffmpeg -f segment -reset_timestamps 1)
  Absolute,  // the packets keep their place on the timeline of the whole encode
};

const char *codec_name(Codec c);          // "aac", "opus", "vorbis", "mp3"
const char *container_name(Container c);  // "m4a", "m4a-faststart", "fmp4", "webm", "mkv", ...

// True when the encoder, the parser and the muxer for this pairing are
// installed and the pairing is one mux_file supports (e.g. not Opus in M4a).
bool available(Codec codec);
bool supports(Codec codec, Container c);
bool available(Codec codec, Container c);

constexpr uint64_t kNoGranule = UINT64_MAX;

struct Packet {
  Bytes data;
  uint64_t pts_ns = 0;       // on the timeline of the whole encode
  uint64_t duration_ns = 0;  // 0 when the parser gave none
  // The parser's offset_end: the Ogg granule position (Vorbis: end sample;
  // Opus: end sample + pre-skip, 48 kHz); kNoGranule when none.
  uint64_t granule = kNoGranule;
  // Audio clipping meta, in samples (Opus: pre-skip on the first packet;
  // Opus / Vorbis: padding trimmed from the last one); 0 when none.
  uint64_t clip_start = 0;
  uint64_t clip_end = 0;
};

// One encode: the codec caps (owned; codec_data for AAC, streamheader for
// Opus and Vorbis) and its packets in order, header packets excluded.
// Copying refs the caps.
struct Packets {
  Codec codec = Codec::Aac;
  GstCaps *caps = nullptr;
  std::vector<Packet> packets;
  int rate = 0;
  int channels = 0;

  Packets() = default;
  Packets(const Packets &o);
  Packets(Packets &&o) noexcept;
  Packets &operator=(Packets o) noexcept;
  ~Packets();

  uint64_t end_ns() const;  // end of the last packet
};

// Encodes `seconds` of the melody (stereo; 48000 Hz for Opus, 44100 otherwise).
bool encode_packets(Codec codec, double seconds, Packets &out, std::string &error);

// Muxes packets [first, first + count) into one self-contained file, without
// re-encoding; granules and clipping metas go with the packets. Reset rebases
// the timestamps to 0, and the granules by as many samples.
bool mux_file(const Packets &p, size_t first, size_t count, Container c, TimestampMode ts,
              Bytes &out, std::string &error);

// mux_file of all the packets: the unsegmented encode.
bool whole_file(const Packets &p, Container c, Bytes &out, std::string &error);

// Index of the first packet of every segment: 0, then the packet boundaries
// nearest first_s, first_s + seg_s, ... A cut is only made while its target
// lies more than 100 ms before the end, so no sliver of a last segment.
std::vector<size_t> cut_points(const Packets &p, double first_s, double seg_s);

// Cuts at cut_points() and muxes every part with mux_file.
bool segment_files(const Packets &p, Container c, TimestampMode ts, double first_s, double seg_s,
                   std::vector<Bytes> &out, std::string &error);

// Fragmented MP4 as a CONTINUOUS form: byte ranges of ONE fragmented file,
// segment 0 = ftyp + moov + the first fragments, the others whole moof+mdat
// fragments, cut at the moof nearest first_s, then every seg_s (times from
// the tfdt of each fragment). The concatenation of `out` is `fmp4`.
bool split_fragmented(const Bytes &fmp4, double first_s, double seg_s, std::vector<Bytes> &out,
                      std::string &error);

struct ParsedFrame {
  Bytes data;
  uint64_t pts_ns = GST_CLOCK_TIME_NONE;  // GST_CLOCK_TIME_NONE when the demuxer gave none
  uint64_t duration_ns = GST_CLOCK_TIME_NONE;
  // pts as stream time, the demuxer's segment applied; GST_CLOCK_TIME_NONE
  // outside it. Meaningful for MP4 edit lists (see above); matroskademux and
  // oggdemux give their own segment times, do not compare those.
  uint64_t stream_ns = GST_CLOCK_TIME_NONE;
  uint64_t clip_start = 0;  // GstAudioClippingMeta, in its own format (samples for Opus)
  uint64_t clip_end = 0;
};

struct ParsedFrames {
  GstCaps *caps = nullptr;     // caps of the first audio stream (owned)
  std::vector<Bytes> headers;  // in-band header buffers (flag HEADER), in order
  std::vector<ParsedFrame> frames;

  ParsedFrames() = default;
  ParsedFrames(const ParsedFrames &) = delete;
  ParsedFrames &operator=(const ParsedFrames &) = delete;
  ParsedFrames(ParsedFrames &&o) noexcept;
  ParsedFrames &operator=(ParsedFrames &&o) noexcept;
  ~ParsedFrames();
};

// The reference reader: appsrc ! parsebin ! appsink, the first audio stream.
bool parse_frames(const Bytes &file, ParsedFrames &out, std::string &error);

// The reference decoder: decodebin ! audioconvert ! F32LE interleaved.
bool decode_pcm(const Bytes &file, Bytes &pcm_f32, int &rate, int &channels, std::string &error);

}  // namespace segdl::media
