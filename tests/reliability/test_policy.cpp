// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the engine's one retry / HTTP-status policy and its wait
 * budget (gst/segdl/policy.h): pure functions and times passed in, so no
 * clock and no sleep.
 */
#include "segdl/policy.h"
#include "segdl/scheduler.h"

#include <gst/check/gstcheck.h>

using namespace segdl;
using A = Verdict::Action;

namespace {

void expect(int status, Target target, bool listed, A action, FailKind kind) {
  Verdict v = classify_http(status, target, listed);
  fail_unless(v.action == action, "HTTP %d (target %d, listed %d): action %d, expected %d", status,
              int(target), int(listed), int(v.action), int(action));
  if (action != A::Accept)
    fail_unless(v.kind == kind, "HTTP %d: kind %d, expected %d", status, int(v.kind), int(kind));
}

}  // namespace

// One table for the status and the segments: they agree on every code but
// the ones whose meaning depends on what was asked.
GST_START_TEST(test_http_table) {
  for (Target t : {Target::Status, Target::Segment, Target::File}) {
    expect(200, t, true, A::Accept, FailKind::Read);
    expect(401, t, true, A::Fail, FailKind::NotAuthorized);
    expect(403, t, false, A::Fail, FailKind::NotAuthorized);
    expect(410, t, true, A::Fail, FailKind::NotFound);
    expect(500, t, true, A::Retry, FailKind::OpenRead);
    expect(502, t, false, A::Retry, FailKind::OpenRead);
    expect(408, t, true, A::Retry, FailKind::OpenRead);
    expect(429, t, true, A::Retry, FailKind::OpenRead);
    expect(400, t, true, A::Fail, FailKind::OpenRead);
    expect(302, t, true, A::Fail, FailKind::OpenRead);
  }
  // 404: an unknown id fails fast; an unlisted segment is "not yet"; a
  // listed one (or the fallback file) is retried.
  expect(404, Target::Status, false, A::Fail, FailKind::NotFound);
  expect(404, Target::Segment, false, A::NotReady, FailKind::NotFound);
  expect(404, Target::Segment, true, A::Retry, FailKind::NotFound);
  expect(404, Target::File, false, A::Retry, FailKind::NotFound);
  // 425/503: "not yet" for segments (bounded for listed ones, below); a
  // failure for the status.
  expect(503, Target::Segment, true, A::NotReady, FailKind::NotFound);
  expect(425, Target::Segment, false, A::NotReady, FailKind::NotFound);
  expect(503, Target::Status, false, A::Retry, FailKind::OpenRead);
  expect(206, Target::Segment, true, A::Accept, FailKind::Read);
  expect(206, Target::Status, true, A::Fail, FailKind::OpenRead);
}
GST_END_TEST;

GST_START_TEST(test_transport) {
  fail_unless(classify_transport(FetchError::None, false).action == A::Accept);
  fail_unless(classify_transport(FetchError::Tls, false).action == A::Fail);
  Verdict io = classify_transport(FetchError::Io, false);
  fail_unless(io.action == A::Retry && io.kind == FailKind::Read);
  Verdict conn = classify_transport(FetchError::Connect, false);
  fail_unless(conn.action == A::Retry && conn.kind == FailKind::OpenRead);
  fail_unless(classify_transport(FetchError::Timeout, true).kind == FailKind::Read);
  fail_unless(may_retry(io, 3, 3));
  fail_unless(!may_retry(io, 4, 3));
  fail_unless(!may_retry(classify_transport(FetchError::Tls, false), 1, 3));
}
GST_END_TEST;

// What makes a body unacceptable whatever its status.
GST_START_TEST(test_head) {
  std::string cause;
  FetchResponse r;
  r.http_status = 200;
  r.length_known = true;
  r.content_length = 100;
  fail_unless(check_head(r, Target::Segment, cause).action == A::Accept);
  r.content_encoding = "gzip";
  fail_unless(check_head(r, Target::Segment, cause).action == A::Fail);
  fail_unless(cause.find("gzip") != std::string::npos, "%s", cause.c_str());
  fail_unless(check_head(r, Target::Status, cause).action == A::Fail);
  r.content_encoding = "identity";
  fail_unless(check_head(r, Target::Segment, cause).action == A::Accept);
  r.content_length = 0;
  fail_unless(check_head(r, Target::Segment, cause).action == A::Retry);
  r.content_length = -1;
  r.length_known = false;  // ends with the connection
  fail_unless(check_head(r, Target::Segment, cause).action == A::Fail);
  fail_unless(check_head(r, Target::Status, cause).action == A::Accept);  // parsed whole anyway
  r.length_known = true;
  r.content_type = "text/html";
  fail_unless(check_head(r, Target::Segment, cause).action == A::Retry);
  fail_unless(check_head(r, Target::File, cause).action == A::Accept);
}
GST_END_TEST;

// Backoff: doubling from the base, jitter in [50 %, 100 %], never below
// Retry-After, capped.
GST_START_TEST(test_backoff) {
  fail_unless_equals_int64(backoff_delay_us(1.0, 1, 1.0), 1000000);
  fail_unless_equals_int64(backoff_delay_us(1.0, 3, 1.0), 4000000);
  fail_unless_equals_int64(backoff_delay_us(1.0, 3, 0.0), 2000000);
  fail_unless_equals_int64(backoff_delay_us(0.05, 1, 1.0, 7), 7000000);
  fail_unless(backoff_delay_us(1.0, 40, 1.0) <= backoff_delay_us(1.0, 41, 1.0));
}
GST_END_TEST;

// max-wait counts only the time the consumer waits, summed over waits.
GST_START_TEST(test_wait_budget) {
  WaitBudget b(10'000'000);  // 10 s
  fail_unless_equals_int64(b.remaining(0), 10'000'000);
  b.starve(1'000'000);
  fail_unless(b.starving());
  b.starve(2'000'000);  // still the same wait
  fail_unless_equals_int64(b.spent(5'000'000), 4'000'000);
  b.feed(5'000'000);
  fail_unless(!b.starving());
  fail_unless_equals_int64(b.spent(100'000'000), 4'000'000);  // a paused consumer costs nothing
  b.starve(200'000'000);
  fail_unless_equals_int64(b.remaining(205'000'000), 1'000'000);
  fail_unless(b.remaining(206'000'000) <= 0);
  WaitBudget none;
  none.starve(0);
  fail_unless(none.remaining(1'000'000'000'000) > 0);
}
GST_END_TEST;

// A listed segment answering "not yet": tolerated for the grace, then
// each answer is a failure.
GST_START_TEST(test_listed_not_ready) {
  fail_unless(!listed_not_ready_fails(-1, 50'000'000, 1'000'000));
  fail_unless(!listed_not_ready_fails(10'000'000, 10'900'000, 1'000'000));
  fail_unless(listed_not_ready_fails(10'000'000, 11'000'000, 1'000'000));
}
GST_END_TEST;

static Suite *policy_suite() {
  Suite *s = suite_create("policy");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_http_table);
  tcase_add_test(tc, test_transport);
  tcase_add_test(tc, test_head);
  tcase_add_test(tc, test_backoff);
  tcase_add_test(tc, test_wait_budget);
  tcase_add_test(tc, test_listed_not_ready);
  return s;
}

GST_CHECK_MAIN(policy)
