// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — reusing a download dir written by the old Python / Node tools.
 *
 * They stored DIR/<id>/segment_N.m4a, written in place (a killed run could
 * leave a truncated file). segdl's download dir is segdlsrc's disk cache
 * (DIR/<safe name of the id>/, gst/segdl/cache.h). Before a download, each
 * old segment_N.* that the cache lacks is checked — it must demux whole
 * (no error, frames up to the container's duration) with the same codec as
 * the others — and copied into the cache through the cache's own API
 * (temporary file, fsync, rename). Files that fail the check are left out,
 * so segdlsrc downloads those segments again. The old files are only read:
 * never changed, moved or deleted.
 *
 * Only ids that are plain file names ([A-Za-z0-9._-], not starting with '.')
 * are looked up: the old tools used the id as the folder name as it was.
 */
#pragma once

#include "progress.h"

#include <string>

namespace segdl::cli {

struct MigrationResult {
  int found = 0;     // segment_N files in DIR/<id>/
  int imported = 0;  // copied into the cache now
  int present = 0;   // already in the cache
  int rejected = 0;  // failed the check (will be downloaded)
};

MigrationResult migrate_old_download_dir(const std::string &dir, const std::string &id,
                                         Progress &progress);

// Checks one old segment file with GStreamer (filesrc ! parsebin ! fakesink).
// On success `codec` is a key for its codec ("audio/mpeg,4", "audio/x-opus").
bool validate_segment_file(const std::string &path, std::string &codec, std::string &error);

}  // namespace segdl::cli
