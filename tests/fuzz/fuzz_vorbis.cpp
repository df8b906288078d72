// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl fuzz target — VorbisBlocks on hostile headers and packets (the
 * headers come from the backend's segments). Input: two 16-bit little-endian
 * lengths, the identification header, the setup header, then packets of
 * one length byte each.
 */
#include "segdl/vorbis.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  size_t id_len = data[0] | (data[1] << 8);
  size_t setup_len = data[2] | (data[3] << 8);
  data += 4;
  size -= 4;
  if (id_len > size || setup_len > size - id_len) return 0;
  segdl::VorbisBlocks vb;
  if (!vb.init(data, id_len, data + id_len, setup_len)) return 0;
  if (vb.mode_count() < 1 || vb.mode_count() > 64) abort();
  const uint8_t *p = data + id_len + setup_len;
  size_t left = size - id_len - setup_len;
  while (left > 0) {
    size_t n = p[0];
    p++;
    left--;
    if (n > left) n = left;
    int64_t samples = vb.next(p, n);
    if (samples > vb.block_size(true) / 2) abort();  // at most two long halves
    p += n;
    left -= n;
  }
  return 0;
}
