// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the pure logic of the download engine: what the backend has told
 * us about the track, when the track is complete, which segments to fetch
 * next, how long to back off. Value in, value out; time is passed in, so all
 * of it is unit-tested without a network or a clock.
 */
#pragma once

#include "segdl/status.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace segdl {

// The accumulated knowledge of one track's production, fed with every
// status document the backend sends.
class TrackProgress {
 public:
  struct Config {
    // No new segment for this long (no total, no state known) = complete.
    int64_t idle_timeout_us = 20 * 1000000;
    bool monitor = true;  // false: the segments ready at the first status are the track
  };
  explicit TrackProgress(Config cfg) : cfg_(cfg) {}

  // Takes a parsed status received at `now_us`. Returns the number of
  // segments that became ready with it.
  int64_t update(const Status &st, int64_t now_us);
  // Re-evaluates the idle rule at `now_us` (no status needed).
  void tick(int64_t now_us);

  bool seen_status() const { return seen_; }
  // Ready now or ever before: a status that goes backwards does not take a
  // segment away.
  bool is_ready(int64_t n) const { return ready_.count(n) != 0; }
  int64_t ready_count() const { return int64_t(ready_.size()); }
  const std::set<int64_t> &ready() const { return ready_; }
  int64_t contiguous_ready() const;
  // The number of segments the track has, once known.
  std::optional<int64_t> end() const { return end_; }
  // Every segment below end() is known ready: no more status needed.
  bool fully_known() const;
  // The first segment below end() (or anywhere, without an end) not ready yet.
  int64_t first_missing() const;
  TrackState state() const { return state_; }
  // Last advertised total, if any (may differ from end() while it changes).
  std::optional<int64_t> advertised_total() const { return total_; }
  const Status &last() const { return last_; }

 private:
  Config cfg_;
  bool seen_ = false;
  std::set<int64_t> ready_;
  std::optional<int64_t> total_;
  std::optional<int64_t> end_;
  TrackState state_ = TrackState::Unknown;
  int64_t last_growth_us_ = 0;
  Status last_;
};

// Which segments to start now. Candidates are the segments from `consumer`
// (the one the push loop needs) to consumer + window - 1, below `end` when
// known, in index order, so the one needed first is always asked first.
// `startable(n)` says whether n is idle and may be fetched; at most
// `max_concurrent - in_flight` are returned.
std::vector<int64_t> pick_downloads(int64_t consumer, int window, int max_concurrent, int in_flight,
                                    std::optional<int64_t> end,
                                    const std::function<bool(int64_t)> &startable);

// Delay before retry number `attempt` (1-based): base * 2^(attempt-1), at most
// `cap_s`, scaled by a jitter factor in [0.5, 1.0) derived from `jitter01` in
// [0, 1). Never below `retry_after_s` when the server sent one (>= 0), but
// a Retry-After is honoured up to `cap_s` only.
int64_t backoff_delay_us(double base_s, int attempt, double jitter01, int retry_after_s = -1,
                         double cap_s = 60.0);

}  // namespace segdl
