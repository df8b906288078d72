// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — answers whose body is read from cache files in chunks
 * (filebody.cpp): whole tracks laid end to end from their segment files,
 * joined files. Gateway thread only.
 */
#pragma once

#include "gateway/core.h"

namespace segdl::gateway {

// A stretch of a file that is part of a body.
struct FilePart {
  std::string path;
  uint64_t offset = 0, length = 0;
  std::string sha256;    // hex SHA-256 of the stretch, checked once read; empty = not checked
  int64_t segment = -1;  // the cached segment the file holds (removed when its bytes differ)
};

// Bytes [first, last] of the body the parts make end to end (a part cut by
// the range loses its checksum: only whole files are checked).
std::vector<FilePart> slice_parts(const std::vector<FilePart> &parts, uint64_t first,
                                  uint64_t last);

// Sends `parts` as the body of `msg`, whose head reply_entity_head() set.
// Reads at most 64 KiB at a time and keeps at most max_client_queue_bytes
// waiting for the client (then pauses: Counters::producers_paused), never a
// mapping: a file cut short or changed under it (another program) cuts the
// client's connection — never a crash, never a short body taken for whole.
// `hold` (may be null) keeps the track's cache lock until the body is sent.
void stream_file_parts(Gateway::Impl &gw, SoupServerMessage *msg, std::vector<FilePart> parts,
                       std::unique_ptr<Cache> hold);

}  // namespace segdl::gateway
