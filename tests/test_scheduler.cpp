// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the engine's pure logic: completion rules, download picking,
 * backoff. Time is passed in; no network, no clock.
 */
#include "segdl/scheduler.h"

#include <gst/check/gstcheck.h>

using namespace segdl;

namespace {

constexpr int64_t kSec = 1000000;

Status bare(std::vector<int64_t> ready, std::optional<int64_t> total) {
  Status st;
  st.ready = std::move(ready);
  st.total_segments = total;
  return st;
}

TrackProgress::Config cfg(bool monitor = true, int64_t idle_us = 20 * kSec) {
  TrackProgress::Config c;
  c.monitor = monitor;
  c.idle_timeout_us = idle_us;
  return c;
}

}  // namespace

GST_START_TEST(test_total_known) {
  TrackProgress tp(cfg());
  fail_if(tp.seen_status());
  fail_unless_equals_int(tp.update(bare({0, 1, 2}, 8), 0), 3);
  fail_unless(tp.seen_status());
  fail_unless(tp.end() && *tp.end() == 8);
  fail_if(tp.fully_known());
  fail_unless_equals_int(tp.first_missing(), 3);
  fail_unless_equals_int(tp.update(bare({0, 1, 2, 3, 4, 5, 6, 7}, 8), kSec), 5);
  fail_unless(tp.fully_known());
}
GST_END_TEST;

// No total, no state: complete after idle-timeout without a new segment.
GST_START_TEST(test_idle_rule) {
  TrackProgress tp(cfg(true, 20 * kSec));
  tp.update(bare({0, 1}, std::nullopt), 0);
  fail_if(tp.end().has_value());
  tp.update(bare({0, 1, 2}, std::nullopt), 10 * kSec);
  tp.tick(29 * kSec);
  fail_if(tp.end().has_value(), "ended 19 s after the last new segment");
  tp.update(bare({0, 1, 2}, std::nullopt), 29 * kSec);  // nothing new
  tp.tick(30 * kSec);
  fail_unless(tp.end() && *tp.end() == 3);
  fail_unless(tp.fully_known());
}
GST_END_TEST;

GST_START_TEST(test_state_complete_without_total) {
  TrackProgress tp(cfg());
  Status st = bare({0, 1, 2, 3}, std::nullopt);
  st.state = TrackState::Processing;
  tp.update(st, 0);
  tp.tick(100 * kSec);  // the idle rule is only for backends that say nothing
  fail_if(tp.end().has_value());
  st.state = TrackState::Complete;
  st.ready = {0, 1, 2, 3, 4};
  tp.update(st, 101 * kSec);
  fail_unless(tp.end() && *tp.end() == 5);
}
GST_END_TEST;

// A status that goes backwards takes nothing away.
GST_START_TEST(test_regress_tolerated) {
  TrackProgress tp(cfg());
  tp.update(bare({0, 1, 2, 3}, 6), 0);
  fail_unless_equals_int(tp.update(bare({0, 1}, 6), kSec), 0);
  fail_unless(tp.is_ready(3));
  fail_unless_equals_int(tp.contiguous_ready(), 4);
}
GST_END_TEST;

GST_START_TEST(test_no_monitor) {
  TrackProgress tp(cfg(false));
  tp.update(bare({0, 1, 2}, 8), 0);
  fail_unless(tp.end() && *tp.end() == 3);
  fail_unless(tp.fully_known());
  TrackProgress all(cfg(false));
  all.update(bare({0, 1}, 2), 0);
  fail_unless(all.end() && *all.end() == 2);
}
GST_END_TEST;

GST_START_TEST(test_pick_in_order) {
  auto all = [](int64_t) { return true; };
  auto v = pick_downloads(0, 4, 3, 0, std::nullopt, all);
  fail_unless(v == std::vector<int64_t>({0, 1, 2}));
  v = pick_downloads(5, 4, 3, 2, std::nullopt, all);
  fail_unless(v == std::vector<int64_t>({5}));
  v = pick_downloads(5, 4, 3, 3, std::nullopt, all);
  fail_unless(v.empty());
  // Never past the end, never past the window.
  v = pick_downloads(6, 4, 3, 0, int64_t(7), all);
  fail_unless(v == std::vector<int64_t>({6}));
  v = pick_downloads(0, 2, 8, 0, std::nullopt, all);
  fail_unless(v == std::vector<int64_t>({0, 1}));
  // Busy or not-ready segments are skipped, the next ones taken.
  auto odd = [](int64_t n) { return n % 2 == 1; };
  v = pick_downloads(0, 6, 2, 0, std::nullopt, odd);
  fail_unless(v == std::vector<int64_t>({1, 3}));
}
GST_END_TEST;

GST_START_TEST(test_backoff) {
  // base 1 s: 1, 2, 4, 8 s before jitter; jitter scales into [0.5, 1).
  fail_unless_equals_int64(backoff_delay_us(1.0, 1, 1.0), 1 * kSec);
  fail_unless_equals_int64(backoff_delay_us(1.0, 2, 1.0), 2 * kSec);
  fail_unless_equals_int64(backoff_delay_us(1.0, 4, 1.0), 8 * kSec);
  fail_unless_equals_int64(backoff_delay_us(1.0, 4, 0.0), 4 * kSec);
  fail_unless_equals_int64(backoff_delay_us(1.0, 40, 1.0, -1, 60.0), 60 * kSec);
  // Retry-After wins when longer.
  fail_unless_equals_int64(backoff_delay_us(0.1, 1, 1.0, 5), 5 * kSec);
  fail_unless_equals_int64(backoff_delay_us(0.0, 3, 0.5), 0);
}
GST_END_TEST;

static Suite *scheduler_suite() {
  Suite *s = suite_create("scheduler");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_total_known);
  tcase_add_test(tc, test_idle_rule);
  tcase_add_test(tc, test_state_complete_without_total);
  tcase_add_test(tc, test_regress_tolerated);
  tcase_add_test(tc, test_no_monitor);
  tcase_add_test(tc, test_pick_in_order);
  tcase_add_test(tc, test_backoff);
  return s;
}

GST_CHECK_MAIN(scheduler);
