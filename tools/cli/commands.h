// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the subcommands that are not downloads: status, cache info,
 * cache clean. */
#pragma once

#include "cli.h"
#include "segdl/status.h"

#include <cstdint>
#include <string>

namespace segdl::cli {

// One status request (30 s at most). False with `error` ("interrupted"
// after cancel_status_fetch()).
bool fetch_status(const Options &opts, const std::string &id, Status &status, std::string &error);
void cancel_status_fetch();
// The one line for a status answered 404: the backend has no track `id`.
std::string unknown_id_text(const std::string &id, const std::string &status_url);

// segdl status ID: what the backend says, pretty or as one JSON object.
int cmd_status(const Options &opts, const std::string &id);
// segdl cache info [ID]: the tracks in the download dir.
int cmd_cache_info(const Options &opts, const std::string &id, bool have_id);
// segdl cache clean: removes tracks older than max_age_s and/or least
// recently used ones above max_size (both 0: every track not in use).
int cmd_cache_clean(const Options &opts, int64_t max_age_s, uint64_t max_size);

// After a download of `id`: removes its track folder in `dir` when nothing
// of the track is in it (only .lock, perhaps track.meta) and no process
// uses it, the way Cache::evict() removes a track (.lock taken exclusive
// without waiting and still the folder's, unlinked last, then rmdir).
void remove_empty_track(const std::string &dir, const std::string &id);

// "30d", "12h", "90m", "45s", "2w", "600" (seconds). False if malformed.
bool parse_duration(const std::string &text, int64_t &seconds);
// "500M", "2G", "64k", "1048576", "1.5GiB" (K/M/G/T are powers of 1024).
bool parse_size(const std::string &text, uint64_t &bytes);

}  // namespace segdl::cli
