// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — ISO BMFF (MP4/m4a) reader for self-contained segments.
 *
 * What a timeline needs from an m4a segment, read by our own code rather
 * than taken from a demuxer: where the moov is (before or after the mdat:
 * can the caller parse now, or must it wait for the tail), the timescales,
 * the audio track's edit list (empty edits, start trim, presentation length),
 * its sample entry and codec_data, and its sample table as a list of
 * (offset, size, duration). `mp4_presentation` turns the edit list into the
 * numbers a timeline applies.
 *
 * The bytes come from the backend: every box size is checked against its
 * parent, nesting and counts are capped (Mp4Limits), nothing is allocated
 * from a count before the box is known to hold that many entries.
 *
 * Plain value-in, value-out functions; no GStreamer.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace segdl {

// A four-character code as a number ('moov' = 0x6d6f6f76).
constexpr uint32_t fourcc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) << 24 | uint32_t(uint8_t(s[1])) << 16 |
         uint32_t(uint8_t(s[2])) << 8 | uint32_t(uint8_t(s[3]));
}
// "moov" from 0x6d6f6f76; non-printable bytes as '?'.
std::string fourcc_name(uint32_t code);

struct Mp4Limits {
  size_t max_samples = 1u << 22;  // per track (a 3-hour track at 48 kHz / 1024 is ~0.5 M)
  size_t max_entries = 1u << 22;  // per table (stts, stsc, stco, elst, sbgp...)
  int max_depth = 16;             // box nesting
  int max_tracks = 64;
  size_t max_codec_data = 1u << 16;
};

struct Mp4Box {
  uint32_t type = 0;
  uint64_t offset = 0;       // of the header, from the start of the data
  uint64_t header_size = 0;  // 8, 16 (largesize) (+16 for 'uuid')
  uint64_t size = 0;         // whole box; for size 0 (to the end) the bytes to the end
  bool to_end = false;       // size field 0
  uint64_t payload_offset() const { return offset + header_size; }
  uint64_t end() const { return offset + size; }
};

// Reads the box header at `offset` of data[0..end). False (and why) if the
// header does not fit or the size is impossible (below the header, past end).
// With `partial` a box whose header is there but whose body extends past
// `end` is accepted (the caller holds only the head of a file).
bool read_mp4_box(const uint8_t *data, uint64_t end, uint64_t offset, Mp4Box &out,
                  std::string *error = nullptr, bool partial = false);

// Top-level layout of a file, or of the part of it that has arrived.
struct Mp4Layout {
  bool has_ftyp = false;
  uint32_t major_brand = 0;
  bool has_moov = false;  // its header was seen
  uint64_t moov_offset = 0, moov_size = 0;
  bool has_mdat = false;                    // the first mdat's header was seen
  uint64_t mdat_offset = 0, mdat_size = 0;  // header included
  bool moov_before_mdat = false;
  bool fragmented = false;  // a moof (or mvex) was seen
  // Bytes from the start that must be present to read the moov: its end
  // once its header was seen, else the end of the last box whose header was
  // seen (the moov comes after it; 0 if nothing could be scanned).
  uint64_t need_bytes = 0;
  bool complete = false;  // the data ends exactly at the end of its last box
};

// Scans the top-level boxes of data[0..size) (the whole file or its head).
// False only for bytes that are not an MP4 (a box size that is impossible).
bool scan_mp4_layout(const uint8_t *data, size_t size, Mp4Layout &out,
                     std::string *error = nullptr);

struct Mp4Edit {
  uint64_t segment_duration = 0;  // movie timescale
  int64_t media_time = 0;         // media timescale, -1 = empty edit
  int16_t rate_integer = 1;
  int16_t rate_fraction = 0;
};

struct Mp4Sample {
  uint64_t offset = 0;  // in the file
  uint32_t size = 0;
  uint32_t duration = 0;  // media timescale (stts)
};

// A sample group ('roll' / 'prol': an int16 per entry, e.g. AAC -1, Opus -N).
struct Mp4SampleGroup {
  uint32_t grouping_type = 0;
  std::vector<int16_t> roll_distances;  // sgpd entries, index 1.. in sbgp
  // sbgp runs: (sample_count, group_description_index; 0 = no group)
  std::vector<std::pair<uint32_t, uint32_t>> runs;
};

struct Mp4Track {
  uint32_t track_id = 0;
  uint32_t handler = 0;         // 'soun', 'vide', ...
  uint64_t tkhd_duration = 0;   // movie timescale
  uint32_t timescale = 0;       // mdhd
  uint64_t media_duration = 0;  // mdhd, media timescale
  std::vector<Mp4Edit> edits;   // elst, in order
  // Sample entry (first of stsd).
  uint32_t sample_entry = 0;  // 'mp4a', 'Opus', 'fLaC', '.mp3', ...
  int channels = 0;
  int sample_size = 0;
  uint32_t entry_sample_rate = 0;      // integer part of the entry's 16.16 rate
  uint8_t object_type_indication = 0;  // esds: 0x40 AAC, 0x6b/0x69 MP3
  // esds DecoderSpecificInfo (the AudioSpecificConfig) for mp4a, the dOps
  // payload for Opus, the dfLa payload for fLaC.
  std::vector<uint8_t> codec_data;
  std::vector<Mp4Sample> samples;      // from stts/stsz/stsc/stco|co64
  uint64_t samples_duration = 0;       // sum of the sample durations
  std::vector<Mp4SampleGroup> groups;  // 'roll' / 'prol' if present
  bool is_audio() const { return handler == fourcc("soun"); }
};

// iTunes' gapless information (moov/udta/meta/ilst '----' iTunSMPB), which
// Apple's encoders write instead of (or beside) an edit list.
struct Mp4Gapless {
  bool present = false;
  uint32_t priming = 0;           // samples to drop at the start (encoder delay)
  uint32_t padding = 0;           // samples to drop at the end
  uint64_t original_samples = 0;  // samples of the source
};

struct Mp4File {
  Mp4Layout layout;
  Mp4Gapless gapless;            // present only when the file carries iTunSMPB
  uint32_t movie_timescale = 0;  // mvhd
  uint64_t movie_duration = 0;
  std::vector<Mp4Track> tracks;
  int audio_track = -1;  // index of the first audio track, -1 if none
};

// Parses a whole self-contained file: the layout, the moov and every
// track's tables. The samples are checked against the data (see
// Mp4Presentation::consistent); here only the boxes must be sound.
bool parse_mp4(const uint8_t *data, size_t size, Mp4File &out, std::string *error = nullptr,
               const Mp4Limits &limits = Mp4Limits());

// Parses a moov box alone (its bytes from its header on), for a caller that
// fetched it apart from the mdat. `layout` of out is left as it is.
bool parse_mp4_moov(const uint8_t *moov, size_t size, Mp4File &out, std::string *error = nullptr,
                    const Mp4Limits &limits = Mp4Limits());

// What a timeline applies for one track of a segment, in the media
// timescale. Edit lists as ISO/IEC 14496-12 8.6.6 define them: leading empty
// edits shift the presentation; the first non-empty edit starts at
// media_time and lasts segment_duration (movie timescale, converted here
// with rounding to the nearest media tick). Writers compute that duration
// from the sample table and round it to the movie timescale (1000 for
// ffmpeg, 1800 for GStreamer): an edit that ends within `tolerance` ticks
// of the table's end is taken to end there (exactly: a shorter last sample
// in stts is how ffmpeg marks the real end), else where it says (clamped to
// the table's end).
struct Mp4Presentation {
  uint32_t timescale = 0;    // media
  int64_t empty_offset = 0;  // where the segment's presentation starts (sum of leading empty edits)
  int64_t start_trim = 0;    // media time of the first presented sample instant (edit media_time)
  int64_t duration = 0;      // presented length from start_trim
  int64_t edit_duration = 0;  // the edit's segment_duration as converted, before that reading
  int64_t end_trim = 0;  // samples_duration - start_trim - duration (>= 0; 0 if the edit runs past)
  int64_t samples_duration = 0;  // sum of the sample durations
  int64_t tolerance = 0;     // ceil(media / movie timescale): the rounding of converted edit values
  bool has_edits = false;    // an edit list with a non-empty edit
  bool extra_edits = false;  // more non-empty edits after the first (not applied)
  bool rate_ok = true;       // the edit's media_rate is 1.0
  bool has_roll = false;     // a 'roll' group maps samples (the first such group sbgp names)
  int16_t roll_distance = 0;  // its distance in samples (AAC: -1; negative = pre-roll)
  bool consistent = true;     // every sample lies inside an mdat present in the data
  std::string inconsistency;  // why not
  uint64_t mdat_end = 0;      // end of the bytes the samples use
};

// Summarises `track` of `file` (parsed from `data`, which may be null to
// skip the check of the samples against the mdat).
bool mp4_presentation(const Mp4File &file, const Mp4Track &track, const uint8_t *data, size_t size,
                      Mp4Presentation &out, std::string *error = nullptr);

// Reading a self-contained file while it arrives (issue 11: first audio
// before the whole segment). The caller gives the head of the file (its
// first bytes, in order, as many as have arrived) to on_head(). A moov
// before the mdat is read from the head; a moov after it (ffmpeg's default)
// is read from the tail: the rest of the file from tail_offset() (the
// mdat's end), which the caller fetches apart (a Range request) and gives to
// on_tail(). Once the moov is read (Ready), samples_in() says how many of
// the audio track's samples, from the first, have all their bytes in the
// head: those can be output before the mdat is whole. The samples, the
// presentation (edit list) and the checks are those of parse_mp4() and
// mp4_presentation() on the whole file; a file this cannot read as well
// (samples outside the first mdat, no audio track) says Whole: the caller
// reads the whole file as before.
class Mp4Progressive {
 public:
  enum class State {
    NeedHead,  // more of the head is needed to tell
    NeedTail,  // the moov follows the mdat: fetch the file from tail_offset()
    Ready,     // the moov is read: samples_in() tells what can go
    Whole,     // nothing to gain: a fragmented file, an mdat running to the end,
               // no audio or another layout; read the whole file as before
    Error,     // not a usable MP4 (error() says why)
  };

  explicit Mp4Progressive(const Mp4Limits &limits = Mp4Limits()) : limits_(limits) {}

  // The first `size` bytes of the file (the same start each call, growing).
  State on_head(const uint8_t *data, size_t size);
  // The file's bytes from tail_offset() to its end (NeedTail only).
  State on_tail(const uint8_t *data, size_t size);

  State state() const { return state_; }
  uint64_t tail_offset() const { return tail_offset_; }
  const std::string &error() const { return error_; }
  // Ready: the parsed moov (layout from the head), its audio track and what
  // mp4_presentation() says of it.
  const Mp4File &file() const { return file_; }
  const Mp4Track &audio() const { return file_.tracks[size_t(file_.audio_track)]; }
  const Mp4Presentation &presentation() const { return presentation_; }
  // Ready: the number of leading samples of the audio track whose bytes
  // lie within the first `head_bytes` bytes of the file (never decreases).
  size_t samples_in(uint64_t head_bytes);

 private:
  State read_moov(const uint8_t *moov, size_t size, const Mp4Layout &layout);
  State fail_with(const std::string &why);

  Mp4Limits limits_;
  State state_ = State::NeedHead;
  Mp4Layout head_layout_;
  uint64_t mdat_payload_ = 0;  // the first byte of the mdat's payload
  uint64_t tail_offset_ = 0;   // the mdat's end
  Mp4File file_;
  Mp4Presentation presentation_;
  size_t ready_ = 0;  // samples_in()'s last answer
  std::string error_;
};

}  // namespace segdl
