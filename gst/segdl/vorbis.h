// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — Vorbis packet durations across joins.
 *
 * A Vorbis packet's sample count depends on the block size of the packet
 * before it: (previous block / 4) + (this block / 4). A parser restarted on
 * every self-contained segment does not know the previous packet and gets
 * the first packet of each segment wrong; the timeline join counts across
 * the joins itself, with this class, from the stream's identification and
 * setup headers.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace segdl {

class VorbisBlocks {
 public:
  // Reads the block sizes (identification header) and each mode's block
  // flag (setup header). False if either header is not what it should be.
  bool init(const uint8_t *id, size_t id_size, const uint8_t *setup, size_t setup_size);
  bool ready() const { return !modes_.empty(); }
  // Samples of the next audio packet in stream order; 0 for the first one
  // after construction or reset(), -1 for a packet that is not audio.
  int64_t next(const uint8_t *packet, size_t size);
  // Forget the previous packet (after a gap, or a seek to the track start).
  void reset() { prev_block_ = 0; }
  // `segment`'s first audio packet comes next: the block before it is
  // remembered, so that a seek that restarts there (restart_at()) counts
  // that packet as the continuous stream did.
  void begin_segment(int64_t segment);
  // A seek restarts at `segment`: the previous packet is the one before
  // its first, if it was seen (else none, as after reset()).
  void restart_at(int64_t segment);

  int block_size(bool long_block) const { return long_block ? block1_ : block0_; }
  size_t mode_count() const { return modes_.size(); }

 private:
  int block0_ = 0, block1_ = 0;
  std::vector<bool> modes_;  // block flag of each mode
  int mode_bits_ = 0;
  int prev_block_ = 0;                     // 0 = no previous packet
  std::map<int64_t, int> segment_blocks_;  // segment -> prev_block_ at its first packet
};

}  // namespace segdl
