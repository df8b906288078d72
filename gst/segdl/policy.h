// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's one retry / HTTP-status policy, and its wait budget.
 *
 * Both the status poller and the segment requests ask classify_http() and
 * classify_transport() what an answer means, and retry_verdict() whether a
 * failure is retried: one table, so the two paths cannot disagree. The
 * functions are pure (values in, a verdict out) and WaitBudget takes the
 * time as an argument, so all of it is unit-tested without a clock.
 */
#pragma once

#include "segdl/fetcher.h"

#include <cstdint>
#include <string>

namespace segdl {

// Why a request failed, as the element reports it (GStreamer error codes).
enum class FailKind {
  NotFound,       // 404/410, or a segment that never became ready
  NotAuthorized,  // 401/403
  OpenRead,       // cannot connect, other HTTP errors
  Read,           // broken or unacceptable body, malformed status
  Failed,         // the backend reports an error state
  NotAudio,       // a segment's bytes are not audio of the track's form (sniff.h)
  Settings,       // bad configuration
};

// What a request asked for.
enum class Target {
  Status,   // the status document
  Segment,  // one segment
  File,     // a plain URL (the fallback's full file)
};

struct Verdict {
  enum class Action {
    Accept,    // a body to read
    NotReady,  // "not produced yet": wait and ask again, no failure
    Retry,     // a failure worth another attempt (if attempts are left)
    Fail,      // a failure no retry can fix
  };
  Action action = Action::Accept;
  FailKind kind = FailKind::OpenRead;
};

// The meaning of an HTTP status. `listed`: the status lists the segment as
// ready (then "not yet" answers are failures of a server that said otherwise).
Verdict classify_http(int http_status, Target target, bool listed);

// The meaning of a transfer that failed below HTTP.
Verdict classify_transport(FetchError error, bool got_bytes);

// Checks a response head before its body is taken (segments and files):
// what makes a body unacceptable whatever its status. Empty = acceptable.
// `cause` is set with the reason otherwise; the verdict says if it is
// worth retrying.
Verdict check_head(const FetchResponse &resp, Target target, std::string &cause);

// A segment the status lists as ready that keeps answering "not yet"
// (425/503): tolerated for `grace_us` from its first such answer (a server
// lagging behind its status), then each answer counts as a failure, so the
// wait ends in retries, the fallback or an ERROR, never in an endless wait.
inline bool listed_not_ready_fails(int64_t first_us, int64_t now_us, int64_t grace_us) {
  return first_us >= 0 && now_us - first_us >= grace_us;
}

// Whether failure number `failures` (from 1) is retried.
inline bool may_retry(const Verdict &v, int failures, int max_retries) {
  return v.action == Verdict::Action::Retry && failures <= max_retries;
}

// The consumer's waiting time: max-wait bounds the time the stream spends
// waiting for the backend (the push loop starved for data), summed over the
// track. Time the consumer does not ask (a paused pipeline, a slow sink) is
// not counted. Times are in microseconds from any monotonic origin.
class WaitBudget {
 public:
  explicit WaitBudget(int64_t limit_us = 0) : limit_us_(limit_us) {}  // 0 = no limit
  void starve(int64_t now_us);  // the consumer waits for data from now
  void feed(int64_t now_us);    // ...and got some (or stopped waiting)
  int64_t spent(int64_t now_us) const;
  // Microseconds left before the budget runs out (<= 0: it has); INT64_MAX
  // without a limit.
  int64_t remaining(int64_t now_us) const;
  bool starving() const { return since_us_ >= 0; }

 private:
  int64_t limit_us_;
  int64_t spent_us_ = 0;
  int64_t since_us_ = -1;  // when the current wait began, -1 if none
};

}  // namespace segdl
