// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — pure engine logic (see scheduler.h). */
#include "segdl/scheduler.h"

#include <algorithm>
#include <cmath>

namespace segdl {

int64_t TrackProgress::update(const Status &st, int64_t now_us) {
  bool first = !seen_;
  seen_ = true;
  last_ = st;
  int64_t added = 0;
  for (int64_t n : st.ready)
    if (ready_.insert(n).second) added++;
  if (first || added > 0) last_growth_us_ = now_us;
  if (st.total_segments) total_ = st.total_segments;
  state_ = st.state;

  if (total_) {
    // An advertised total is the end; a total that changes moves the end.
    end_ = *total_;
  } else if (state_ == TrackState::Complete) {
    end_ = ready_.empty() ? 0 : *ready_.rbegin() + 1;
  }
  if (first && !cfg_.monitor && !(end_ && fully_known())) {
    // The old tools' --no-monitor: what is there now is the whole track.
    end_ = contiguous_ready();
  }
  tick(now_us);
  return added;
}

void TrackProgress::tick(int64_t now_us) {
  if (end_ || !seen_) return;
  if (state_ != TrackState::Unknown && state_ != TrackState::Processing) return;
  if (total_) return;
  if (state_ == TrackState::Unknown && now_us - last_growth_us_ >= cfg_.idle_timeout_us)
    end_ = contiguous_ready();
}

int64_t TrackProgress::contiguous_ready() const {
  int64_t n = 0;
  for (int64_t r : ready_) {
    if (r != n) break;
    n++;
  }
  return n;
}

bool TrackProgress::fully_known() const {
  if (!end_) return false;
  return contiguous_ready() >= *end_;
}

int64_t TrackProgress::first_missing() const {
  return contiguous_ready();
}

std::vector<int64_t> pick_downloads(int64_t consumer, int window, int max_concurrent, int in_flight,
                                    std::optional<int64_t> end,
                                    const std::function<bool(int64_t)> &startable) {
  std::vector<int64_t> out;
  int slots = max_concurrent - in_flight;
  for (int64_t n = consumer; n < consumer + window && slots > 0; n++) {
    if (end && n >= *end) break;
    if (startable(n)) {
      out.push_back(n);
      slots--;
    }
  }
  return out;
}

int64_t backoff_delay_us(double base_s, int attempt, double jitter01, int retry_after_s,
                         double cap_s) {
  if (attempt < 1) attempt = 1;
  double delay = base_s * std::ldexp(1.0, std::min(attempt - 1, 30));
  delay = std::min(delay, cap_s);
  jitter01 = std::clamp(jitter01, 0.0, 1.0);
  delay *= 0.5 + 0.5 * jitter01;
  if (retry_after_s >= 0) delay = std::max(delay, std::min(double(retry_after_s), cap_s));
  if (delay < 0) delay = 0;
  return int64_t(delay * 1e6);
}

}  // namespace segdl
