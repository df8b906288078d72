// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the retry / HTTP-status policy (see policy.h). */
#include "segdl/policy.h"

#include <glib.h>

#include <cstdint>
#include <limits>

namespace segdl {

namespace {

Verdict make(Verdict::Action a, FailKind k) {
  Verdict v;
  v.action = a;
  v.kind = k;
  return v;
}

}  // namespace

Verdict classify_http(int s, Target target, bool listed) {
  using A = Verdict::Action;
  if (s == 200 || (s == 206 && target != Target::Status)) return make(A::Accept, FailKind::Read);
  if (s == 401 || s == 403) return make(A::Fail, FailKind::NotAuthorized);
  if (s == 410) return make(A::Fail, FailKind::NotFound);
  if (s == 404) {
    // An unknown id fails fast; a segment the status does not list yet is
    // "not yet"; a listed one may lag behind the status on a CDN: retried.
    if (target == Target::Status) return make(A::Fail, FailKind::NotFound);
    if (target == Target::Segment && !listed) return make(A::NotReady, FailKind::NotFound);
    return make(A::Retry, FailKind::NotFound);
  }
  if (s == 425 || s == 503) {
    // "Not yet" from a segment: waited for. For a segment the status lists
    // the wait is bounded (listed_not_ready_fails()); the status itself
    // is a failure, retried.
    if (target == Target::Segment) return make(A::NotReady, FailKind::NotFound);
    return make(A::Retry, FailKind::OpenRead);
  }
  if (s == 408 || s == 429 || s >= 500) return make(A::Retry, FailKind::OpenRead);
  return make(A::Fail, FailKind::OpenRead);
}

Verdict classify_transport(FetchError error, bool got_bytes) {
  using A = Verdict::Action;
  switch (error) {
    case FetchError::None:
      return make(A::Accept, FailKind::Read);
    case FetchError::Tls:  // a certificate does not fix itself
      return make(A::Fail, FailKind::OpenRead);
    case FetchError::Io:
      return make(A::Retry, FailKind::Read);
    default:
      return make(A::Retry, got_bytes ? FailKind::Read : FailKind::OpenRead);
  }
}

Verdict check_head(const FetchResponse &resp, Target target, std::string &cause) {
  using A = Verdict::Action;
  // We never ask for a content coding: bytes in one would be output as audio.
  if (!resp.content_encoding.empty() &&
      g_ascii_strcasecmp(resp.content_encoding.c_str(), "identity") != 0) {
    cause = "unasked Content-Encoding " + resp.content_encoding;
    return make(A::Fail, FailKind::Read);
  }
  // A body is whole only when its end is known: a length, or the end of a
  // chunked body. One that just stops at the connection's close may be cut.
  if (target != Target::Status && !resp.length_known) {
    cause = "a body without a length (neither Content-Length nor chunked)";
    return make(A::Fail, FailKind::Read);
  }
  if (target != Target::Status && resp.content_length == 0 && resp.http_status == 200) {
    cause = "an empty body";
    return make(A::Retry, FailKind::Read);
  }
  if (target == Target::Segment && (g_str_has_prefix(resp.content_type.c_str(), "text/") ||
                                    resp.content_type == "application/json")) {
    // An error page served with 200 is no audio.
    cause = "unexpected Content-Type " + resp.content_type;
    return make(A::Retry, FailKind::Read);
  }
  cause.clear();
  return make(A::Accept, FailKind::Read);
}

void WaitBudget::starve(int64_t now_us) {
  if (since_us_ < 0) since_us_ = now_us;
}

void WaitBudget::feed(int64_t now_us) {
  if (since_us_ < 0) return;
  if (now_us > since_us_) spent_us_ += now_us - since_us_;
  since_us_ = -1;
}

int64_t WaitBudget::spent(int64_t now_us) const {
  return spent_us_ + (since_us_ >= 0 && now_us > since_us_ ? now_us - since_us_ : 0);
}

int64_t WaitBudget::remaining(int64_t now_us) const {
  if (limit_us_ <= 0) return std::numeric_limits<int64_t>::max();
  return limit_us_ - spent(now_us);
}

}  // namespace segdl
