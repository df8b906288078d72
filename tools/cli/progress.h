// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — progress display: a live bar redrawn in place on a terminal, plain
 * lines otherwise, or JSON events (one object per line on stdout, --json).
 *
 * Bar and lines go to stderr, so stdout stays free for --json and for
 * `segdl status`. Everything is called on the main thread.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace segdl::cli {

// One segment in place (from segdlsrc's "segdl-segment" message, or derived
// from its stats when the element does not post them).
struct SegmentEvent {
  int64_t index = -1;
  uint64_t bytes = 0;
  double seconds = -1;  // time it took; < 0 unknown
  std::string source;   // "network", "cache", "fallback"
  int retries = 0;
  int64_t total = -1;  // segments in the track, -1 unknown
  int64_t done = 0;    // segments in place so far
};

// What segdlsrc's `stats` says (a subset).
struct Snapshot {
  int64_t total = -1, available = 0, done = 0, bytes = 0, retries = 0, cache_hits = 0, gaps = 0;
  bool complete = false, offline = false, fallback = false;
};

class Progress {
 public:
  enum class Mode { Bar, Lines, Json, Quiet };
  Progress(Mode mode, bool verbose);
  ~Progress();
  Mode mode() const { return mode_; }

  // A new track: position (1-based) of `count` ids in this call.
  void start(const std::string &id, size_t position, size_t count, const std::string &backend);
  void info(const std::string &text);  // a remark (migration, output name)
  void output(const std::string &path, const std::string &codec);
  void playing();  // --play: the first audio reached the sound card's branch
  void segment(const SegmentEvent &e);
  void retry(int64_t segment, int attempt, unsigned http_status, const std::string &message);
  // The segmented backend failed for good at `segment` (-1: its status) and
  // the fallback URL `url` takes over from there; `cause` says why.
  void fallback(int64_t segment, unsigned http_status, const std::string &cause,
                const std::string &url);
  void warning(const std::string &message);
  // "waiting" (for the backend), "downloading", "joining" (finishing the file).
  void state(const std::string &state);
  void update(const Snapshot &s);  // periodic stats; redraws the bar
  void done(const Snapshot &s, const std::string &output, double elapsed_s);
  // The one-line cause (always on stderr), with the debug text if verbose.
  void error(int exit_code, const std::string &message, const std::string &debug);
  void interrupted(int signo);

 private:
  void draw_bar();
  std::string bar_text(size_t columns) const;
  void clear_bar();
  void line(const std::string &text);  // a line above the bar (stderr)
  double elapsed() const;
  std::string segments_text(const Snapshot &s) const;
  bool status_answered() const;
  void release_held();
  std::string json_head(const char *event) const;

  Mode mode_;
  bool verbose_;
  bool bar_shown_ = false;
  std::string id_, state_ = "starting";
  size_t position_ = 0, count_ = 0;
  int64_t start_us_ = 0;
  Snapshot last_;
  int64_t segment_bytes_ = 0;  // the bytes of this track's segment events (any source)
  // Lines mode: segment lines waiting for the first status answer, so that
  // they give the total (a segment may be whole before it).
  std::vector<SegmentEvent> held_;
  int64_t fallback_from_ = -1;  // the segment the fallback URL took over at (-1: none, the status)
};

}  // namespace segdl::cli
