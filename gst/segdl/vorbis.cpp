// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — Vorbis packet durations (see vorbis.h). */
#include "segdl/vorbis.h"

#include <cstring>

namespace segdl {

namespace {

// Vorbis packs bits least significant first.
int bit_at(const uint8_t *d, size_t i) {
  return (d[i / 8] >> (i % 8)) & 1;
}

uint32_t bits_at(const uint8_t *d, size_t start, int count) {
  uint32_t v = 0;
  for (int k = 0; k < count; k++) v |= uint32_t(bit_at(d, start + size_t(k))) << k;
  return v;
}

int ilog(unsigned v) {
  int n = 0;
  while (v) {
    n++;
    v >>= 1;
  }
  return n;
}

}  // namespace

bool VorbisBlocks::init(const uint8_t *id, size_t id_size, const uint8_t *setup,
                        size_t setup_size) {
  modes_.clear();
  prev_block_ = 0;
  if (id_size < 30 || id[0] != 1 || memcmp(id + 1, "vorbis", 6) != 0) return false;
  block0_ = 1 << (id[28] & 0x0f);
  block1_ = 1 << (id[28] >> 4);
  if (block0_ < 64 || block1_ < block0_ || block1_ > 8192) return false;
  if (setup_size < 8 || setup[0] != 5 || memcmp(setup + 1, "vorbis", 6) != 0) return false;

  // The mode list ends the setup header: a 6-bit count - 1, then per mode
  // blockflag(1) windowtype(16, zero) transformtype(16, zero) mapping(8),
  // then the framing bit. Only the end can be found without decoding the
  // codebooks, so read backwards from the framing bit: the largest mode
  // count whose zero fields and count field agree.
  size_t total = setup_size * 8;
  size_t framing = total;
  for (size_t i = total; i-- > 7 * 8;) {
    if (bit_at(setup, i)) {
      framing = i;
      break;
    }
  }
  if (framing == total) return false;
  size_t best = 0;
  for (size_t n = 1; n <= 64 && 41 * n + 6 <= framing - 7 * 8; n++) {
    size_t start = framing - 41 * n;  // mode 0 of n
    if (bits_at(setup, start + 1, 16) != 0 || bits_at(setup, start + 17, 16) != 0) break;
    if (bits_at(setup, start - 6, 6) == n - 1) best = n;
  }
  if (best == 0) return false;
  size_t first = framing - 41 * best;
  for (size_t m = 0; m < best; m++) modes_.push_back(bit_at(setup, first + 41 * m) != 0);
  mode_bits_ = ilog(unsigned(best - 1));
  return true;
}

void VorbisBlocks::begin_segment(int64_t segment) {
  segment_blocks_[segment] = prev_block_;
}

void VorbisBlocks::restart_at(int64_t segment) {
  auto it = segment_blocks_.find(segment);
  prev_block_ = it != segment_blocks_.end() ? it->second : 0;
}

int64_t VorbisBlocks::next(const uint8_t *packet, size_t size) {
  if (!ready() || size == 0 || (packet[0] & 1)) return -1;  // header packets have bit 0 set
  uint32_t mode = mode_bits_ ? bits_at(packet, 1, mode_bits_) : 0;
  if (size * 8 < size_t(1 + mode_bits_) || mode >= modes_.size()) return -1;
  int block = modes_[mode] ? block1_ : block0_;
  int64_t samples = prev_block_ ? prev_block_ / 4 + block / 4 : 0;
  prev_block_ = block;
  return samples;
}

}  // namespace segdl
