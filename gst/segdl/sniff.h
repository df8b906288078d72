// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — is this segment audio? The check every segment passes before any
 * of its bytes is output or cached.
 *
 * A backend in trouble answers 200 with an HTML error page, a JSON body, an
 * empty body or bytes of another file: none of that may reach a decoder or
 * the disk cache. check_segment() reads the first bytes of a segment and
 * tells whether they begin a known audio container or codec stream (MP4
 * boxes, EBML/WebM, Ogg, FLAC, WAV, MPEG-TS, ADTS, MPEG audio, after any
 * ID3v2 tag), and whether that form is the one segment 0 had (a track does
 * not change container in the middle).
 *
 * Pure: bytes in, a verdict out; no GStreamer, no I/O. The download engine
 * uses it for every segment, from the network or from the cache; the
 * gateway and the command line can call it on bytes they hold.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace segdl {

// The container or elementary stream a segment is in.
enum class MediaForm {
  Unknown,    // not (yet) known
  Iso,        // ISO BMFF: m4a/mp4 (ftyp, moov) and its fragments (styp, moof, sidx)
  Matroska,   // EBML: Matroska/WebM files, or a Segment/Cluster continuing one
  Ogg,        // Ogg pages
  Flac,       // native FLAC ("fLaC")
  Wav,        // RIFF WAVE
  MpegTs,     // MPEG transport stream (0x47 every 188 bytes)
  Adts,       // AAC in ADTS frames
  MpegAudio,  // MPEG-1/2/2.5 layer I/II/III frames (MP3)
};

const char *media_form_name(MediaForm form);

struct SniffResult {
  enum class Verdict {
    Audio,     // the bytes begin audio of `form`, the track's form
    NeedMore,  // cannot tell yet: give more bytes (never when `whole`)
    NotAudio,  // refuse the segment; `why` says what it looks like
  };
  Verdict verdict = Verdict::NeedMore;
  MediaForm form = MediaForm::Unknown;
  std::string why;
};

// Bytes of a segment's start that are enough for a verdict, unless an ID3v2
// tag or a large frame comes first (then NeedMore asks for more).
constexpr size_t kSniffBytes = 4096;

// Checks the first `size` bytes of a segment (`whole`: that is all of it).
// `track_form` is the form of the track's segment 0 (Unknown while not
// known: then any audio form passes). A segment of another form than the
// track's is NotAudio.
SniffResult check_segment(const uint8_t *data, size_t size, bool whole,
                          MediaForm track_form = MediaForm::Unknown);

// What the whole body of a segment says about its end, for a body no
// header gave a length (chunked): libsoup 3 reads a malformed chunk size as
// 0, the last chunk, so such a body can end cleanly in the middle. A body
// that passed check_segment() must end where its last unit ends: ADTS and
// MPEG audio frames walked from the first (an ID3v1 tag may follow MPEG
// audio), MPEG-TS packets of 188 bytes, Ogg pages, MP4 boxes (see
// check_segment()). Matroska, FLAC and WAV are not walked (`whole` true).
// `seconds`: the audio it holds (ADTS, MPEG audio), else -1.
struct SegmentEnd {
  bool whole = true;
  double seconds = -1;
  std::string why;  // when not whole: where it stops
};
SegmentEnd check_segment_end(const uint8_t *data, size_t size);

}  // namespace segdl
