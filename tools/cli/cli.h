// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the command line: shared declarations.
 *
 * segdl is a GStreamer application around segdlsrc (the download, the cache,
 * the retries) and GStreamer's own muxers (--combine). Files:
 *   main.cpp      options (GOption), subcommands, help, signals
 *   download.*    one track: the pipeline, its bus, the exit code
 *   progress.*    the live bar, plain lines or JSON events
 *   output.*      --combine: container by extension, muxer by codec
 *   migrate.*     reusing a download dir written by the old tools
 *   commands.cpp  status, cache info, cache clean
 *   json.*        JSON text for --json (reals to the millisecond)
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace segdl::cli {

// Exit codes (documented in docs/segdl.1.md and `segdl --help`).
enum Exit : int {
  kExitOk = 0,             // every track complete
  kExitFailed = 1,         // anything not below (an internal or library error)
  kExitUsage = 2,          // bad options or arguments; a container that cannot hold the codec
  kExitBackend = 3,        // backend unreachable, refusing (401/403/404 status) or in error
  kExitIncomplete = 4,     // the track could not be completed (max-wait, a segment gone for good)
  kExitLocalIo = 5,        // the output file or the download dir could not be written
  kExitMedia = 6,          // the segments are not audio GStreamer can read
  kExitInterrupted = 130,  // SIGINT (Ctrl-C); 143 for SIGTERM (128 + signal)
};

// Every option of the download commands (segdl ID..., segdl preload ID...).
struct Options {
  std::string backend_url;                 // --backend-url, default $SEGDL_BACKEND_URL
  std::string download_dir = "downloads";  // --download-dir: the element's cache-dir
  std::string combine;                     // --combine OUT ("" = none, "auto")
  std::string fallback_url;                // --fallback-url
  std::string user_agent;                  // --user-agent ("" = the element's default)
  std::string missing_segment;             // --missing-segment ("" = the element's default)
  int concurrent = 3;
  double poll_interval = 2;
  int max_retries = 3;
  double max_wait = 600;
  bool monitor = true;
  bool play = false;
  bool verbose = false;
  bool quiet = false;
  bool json = false;
  bool migrate = true;     // --no-migrate turns the old-tools import off
  bool overwrite = false;  // --overwrite: --combine auto may replace ID.EXT
};

// Reads ids from FILE ('-' = stdin): one a line, surrounding blanks
// trimmed; a '#' at the start of a line or after a blank begins a comment
// (to the end of the line); lines left empty are skipped.
bool read_batch_file(const std::string &path, std::vector<std::string> &ids, std::string &error);

// "1 segment", "3 segments": the count and its noun, singular only for 1
// (`plural` defaults to the noun + "s": "retry" needs "retries").
std::string count_of(int64_t n, const std::string &noun, const std::string &plural = "");

// "1.5 MB", "320 kB", "12 B" (SI units).
std::string human_bytes(double bytes);
// "1:02:03" / "2:03".
std::string human_duration(double seconds);

}  // namespace segdl::cli
