// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — backend status model and parser.
 *
 * The status document is described normatively in docs/protocol.md. The
 * parser is liberal in what it accepts (synonyms, counts or lists) and strict
 * in what it believes (sizes, depth and counts are capped, so a hostile
 * backend cannot make us allocate without bound).
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace segdl {

enum class TrackState {
  Unknown,     // the backend did not say (the deployed "bare" form)
  Processing,  // still producing segments
  Complete,    // every segment exists
  Error,       // the backend gave up; Status::error says why
};

const char *track_state_name(TrackState s);

struct StatusLimits {
  size_t max_body_bytes = 1024 * 1024;  // a bigger body is rejected
  int64_t max_segments = 100000;        // totals / indices at or above this are rejected
  int max_depth = 32;                   // JSON nesting deeper than this is rejected
};

struct Status {
  std::optional<int64_t> total_segments;  // totalSegments / total_segments
  std::vector<int64_t> ready;             // sorted, unique, each < total (when known)
  TrackState state = TrackState::Unknown;
  std::string error;                             // the backend's text when state == Error
  std::optional<double> duration;                // seconds, whole track
  std::optional<double> segment_duration;        // seconds, segments after the first
  std::optional<double> first_segment_duration;  // seconds, segment 0
  std::string mime_type;                         // empty when not given

  bool is_ready(int64_t n) const;
  // Number of leading segments 0..k-1 that are all ready.
  int64_t contiguous_ready() const;
};

// Parses a status body. On failure returns false and sets `error` to a short
// human-readable reason ("not JSON: ...", "totalSegments is negative", ...);
// `out` is then unspecified.
bool parse_status(const char *data, size_t len, Status &out, std::string &error,
                  const StatusLimits &limits = StatusLimits());

}  // namespace segdl
