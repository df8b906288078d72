// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the download engine's timers on an injected clock
 * (segdl::ManualClock, gst/segdl/clock.h) against the scripted fake
 * Fetcher of downloader_rig.h: stall-timeout (status and segments), the
 * retry backoff, the fixed-rate status poll, the max-wait budget and the
 * "not yet" waits (Retry-After, poll-interval, the listed segment's grace).
 *
 * The engine's time moves only when a test advances it: a timer due at T
 * is asserted to be armed at exactly T, to have done nothing at T - 1 µs,
 * and to act at T. No test sleeps or reads the wall clock for an assertion;
 * real time only bounds the waits for the HTTP thread to react.
 */
#include "downloader_rig.h"

#include "segdl/clock.h"
#include "segdl/scheduler.h"

namespace {

constexpr int64_t kSecond = 1000000;

// Every test's engine config: its timers on `clock`, changed by `tune`.
DownloaderConfig clocked_config(ManualClock &clock,
                                const std::function<void(DownloaderConfig &)> &tune) {
  DownloaderConfig cfg = test_config();
  cfg.clock = &clock;
  cfg.stall_timeout_s = 5;
  cfg.retry_backoff_s = 1;
  cfg.max_retries = 3;
  cfg.poll_interval_s = 100;  // no poll tick unless a test wants one
  cfg.speculative_fetch = false;
  cfg.max_wait_s = 0;  // no max-wait timer unless a test wants one
  if (tune) tune(cfg);
  return cfg;
}

// The first pending deadline in [lo, hi), or -1 after a bounded wait.
int64_t wait_deadline_in(ManualClock &clock, int64_t lo, int64_t hi) {
  int64_t found = -1;
  clock.wait_pending(
      [&](const std::vector<int64_t> &p) {
        for (int64_t t : p)
          if (t >= lo && t < hi) {
            found = t;
            return true;
          }
        return false;
      },
      30000ms);
  return found;
}

bool has_pending(ManualClock &clock, int64_t at) {
  std::vector<int64_t> p = clock.pending();
  return std::find(p.begin(), p.end(), at) != p.end();
}

// Pops until `n` bytes of data came (bounded); returns them.
std::string pop_bytes(Downloader &dl, size_t n) {
  std::string got;
  auto deadline = Clock::now() + 30s;
  while (got.size() < n && Clock::now() < deadline) {
    Downloader::Item item = dl.pop(50ms);
    if (item.kind != Kind::Data) continue;
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(item.bytes, &size));
    got.append(data, size);
    g_bytes_unref(item.bytes);
  }
  return got;
}

bool has_warning(const Drained &d, const std::string &cause) {
  for (const EngineEvent &ev : d.events)
    if (ev.kind == EngineEvent::Kind::Warning && contains(ev.warning.cause, cause)) return true;
  return false;
}

// The set-up every test shares: the engine on a ManualClock against the
// scripted fake, and the steps the tests repeat.
struct Timed {
  ManualClock clock;
  Rig rig;  // after the clock: its config points at it
  explicit Timed(const std::function<void(DownloaderConfig &)> &tune = nullptr)
      : rig(clocked_config(clock, tune)) {}

  // The status answers `status`, segment 0 `seg0` and segment 1 `seg1`
  // (when given; the last reply repeats), then the engine starts. Returns
  // the engine's time at the start.
  int64_t start(std::vector<Reply> status, std::vector<Reply> seg0, std::vector<Reply> seg1 = {}) {
    rig.server.script(rig.status(), std::move(status));
    rig.server.script(rig.seg(0), std::move(seg0));
    if (!seg1.empty()) rig.server.script(rig.seg(1), std::move(seg1));
    const int64_t t0 = clock.now_us();
    rig.start();
    return t0;
  }
  // Waits (bounded) until `url` has been asked `n` times.
  bool asked(const std::string &url, int n) {
    return rig.server.wait_until([&](const Log &log) { return log.count(url) == n; }, 30000ms);
  }
  // Waits (bounded) until `n` of `url`'s transfers were cancelled (each
  // answer the engine acted on: a failure, a "not yet").
  bool answered(const std::string &url, int n) {
    return rig.server.wait_until([&](const Log &log) { return log.cancelled_count(url) == n; },
                                 30000ms);
  }
  // The timer due at `due` is armed (bounded wait), and `url` has been
  // asked only `n` times at `due` - 1 µs; then the clock reaches `due`.
  void fire_at(int64_t due, const std::string &url, int n, const char *what) {
    fail_unless(clock.wait_timer_at(due, 30000ms), "no timer: %s", what);
    clock.advance_to(due - 1);
    fail_unless_equals_int(rig.server.log().count(url), n);
    clock.advance_to(due);
  }
  // The engine runs to EOS with exactly `bytes`; what it gave, for more
  // checks.
  Drained ends_with(const std::string &bytes) {
    Drained d = drain(*rig.dl);
    check_end(d, Kind::Eos);
    check_bytes(d.bytes, bytes);
    return d;
  }
};

}  // namespace

// A status request that never ends fails at exactly stall-timeout after it
// started (the whole request: a trickle cannot keep it alive), then is
// retried after the first backoff delay.
GST_START_TEST(test_status_stall) {
  Timed t;
  Reply hang = ok(R"({"ready":[0],"totalSegments":1})");
  hang.cut_after = 5;
  hang.hang = true;
  std::string s0 = make_body(0, 700);
  const int64_t t0 = t.start({hang, ok(R"({"ready":[0],"totalSegments":1})")}, {ok(s0)});

  fail_unless(t.rig.server.wait_until(
      [&](const Log &log) { return log.stalled == 1 && log.finished_count(t.rig.seg(0)) == 1; },
      30000ms));
  fail_unless(t.clock.wait_timer_at(t0 + 5 * kSecond, 30000ms), "no stall timer at start + 5 s");
  t.clock.advance(5 * kSecond - 1);
  fail_unless(has_pending(t.clock, t0 + 5 * kSecond));
  fail_unless_equals_int(t.rig.server.log().cancelled_count(t.rig.status()), 0);

  t.clock.advance(1);
  fail_unless(t.answered(t.rig.status(), 1));
  // The retry: backoff 1 s x [0.5, 1) after the failure.
  const int64_t failed = t0 + 5 * kSecond;
  int64_t retry = wait_deadline_in(t.clock, failed + backoff_delay_us(1, 1, 0),
                                   failed + backoff_delay_us(1, 1, 1));
  fail_unless(retry > 0, "no retry timer in [0.5 s, 1 s) after the stall");
  t.fire_at(retry, t.rig.status(), 1, "the status's retry");
  fail_unless(t.asked(t.rig.status(), 2));

  Drained d = t.ends_with(s0);
  fail_unless(has_warning(d, "stall-timeout (5 s)"));
  t.rig.finish();
}
GST_END_TEST;

// A segment's transfer fails after exactly stall-timeout without a byte,
// counted from its last byte (not from its start), and is resumed with
// Range after the backoff.
GST_START_TEST(test_segment_stall) {
  Timed t;
  std::string s0 = make_body(0, 3000);
  Reply first = ok(s0);
  first.pause_at = 1000;   // silent until the test resumes it...
  first.cut_after = 2000;  // ...then 1000 bytes more, then silent for good
  first.hang = true;
  const int64_t t0 = t.start({ok(R"({"ready":[0],"totalSegments":1})")}, {first, ok(s0)});

  fail_unless(t.rig.server.wait_until([](const Log &log) { return log.paused == 1; }, 30000ms));
  fail_unless(t.clock.wait_timer_at(t0 + 5 * kSecond, 30000ms));
  // 3 s of silence, then bytes: the silence starts again from them.
  t.clock.advance(3 * kSecond);
  t.rig.server.resume();
  fail_unless(t.rig.server.wait_until([](const Log &log) { return log.stalled == 1; }, 30000ms));
  t.clock.advance_to(t0 + 5 * kSecond);  // the first check: only 2 s of silence
  const int64_t due = t0 + 8 * kSecond;
  fail_unless(t.clock.wait_timer_at(due, 30000ms), "the stall timer did not move to the last byte");
  t.clock.advance_to(due - 1);
  fail_unless_equals_int(t.rig.server.log().cancelled_count(t.rig.seg(0)), 0);
  t.clock.advance_to(due);
  fail_unless(t.answered(t.rig.seg(0), 1));

  int64_t retry =
      wait_deadline_in(t.clock, due + backoff_delay_us(1, 1, 0), due + backoff_delay_us(1, 1, 1));
  fail_unless(retry > 0, "no retry timer in [0.5 s, 1 s) after the stall");
  t.clock.advance_to(retry);
  Drained d = t.ends_with(s0);
  Log log = t.rig.server.log();
  fail_unless(log.ranges(t.rig.seg(0)) == std::vector<int64_t>({0, 2000}));
  fail_unless(has_warning(d, "no data for 5 s (stall-timeout)"));
  t.rig.finish();
}
GST_END_TEST;

// Retries of a failing segment follow the backoff schedule: retry k comes
// retry-backoff x 2^(k-1) x [0.5, 1) after failure k, not a microsecond
// sooner.
GST_START_TEST(test_backoff_schedule) {
  Timed t;
  std::string s0 = make_body(0, 900);
  t.start({ok(R"({"ready":[0],"totalSegments":1})")},
          {answer(500), answer(500), answer(500), ok(s0)});

  for (int k = 1; k <= 3; k++) {
    fail_unless(t.answered(t.rig.seg(0), k));
    const int64_t failed = t.clock.now_us();
    const int64_t lo = failed + backoff_delay_us(1, k, 0);
    const int64_t hi = failed + backoff_delay_us(1, k, 1);
    int64_t retry = wait_deadline_in(t.clock, lo, hi);
    fail_unless(retry > 0, "retry %d: no timer in [%" PRId64 ", %" PRId64 ") us", k, lo - failed,
                hi - failed);
    t.fire_at(retry, t.rig.seg(0), k, "a retry");
    fail_unless(t.asked(t.rig.seg(0), k + 1));
  }
  t.ends_with(s0);
  fail_unless_equals_int64(t.rig.dl->stats().retries, 3);
  t.rig.finish();
}
GST_END_TEST;

// The status poll runs on a fixed grid from the first poll's start: a tick
// that runs late (here 0.7 s) does not push the next one back, and one so
// late that a later tick is past too asks once.
GST_START_TEST(test_poll_no_drift) {
  Timed t([](DownloaderConfig &cfg) { cfg.poll_interval_s = 2; });
  const int64_t t0 = t.start({ok(R"({"ready":[0],"totalSegments":5})")}, {ok(make_body(0, 100))});

  for (int k = 1; k <= 3; k++) {
    const int64_t tick = t0 + 2 * kSecond * k;
    // The poll before has been answered (a tick while it runs asks nothing).
    fail_unless(t.rig.server.wait_until(
        [&](const Log &log) { return log.finished_count(t.rig.status()) == k; }, 30000ms));
    fail_unless(t.clock.wait_timer_at(tick, 30000ms), "tick %d not at start + %d s", k, 2 * k);
    fail_unless(!has_pending(t.clock, tick + 700000));  // no tick re-armed from a late one
    t.clock.advance_to(tick + 700000);
    fail_unless(t.asked(t.rig.status(), k + 1));
  }
  // The next tick is at start + 8 s, not 0.7 s later.
  fail_unless(t.clock.wait_timer_at(t0 + 8 * kSecond, 30000ms));
  fail_unless(!has_pending(t.clock, t0 + 8 * kSecond + 700000));
  // 5 s late: the ticks at 8 and 10 s are past; one poll, the next at 12 s.
  fail_unless(t.rig.server.wait_until(
      [&](const Log &log) { return log.finished_count(t.rig.status()) == 4; }, 30000ms));
  t.clock.advance_to(t0 + 11 * kSecond);
  fail_unless(t.clock.wait_timer_at(t0 + 12 * kSecond, 30000ms));
  fail_unless(t.asked(t.rig.status(), 5));
  fail_unless_equals_int(t.rig.server.log().count(t.rig.status()), 5);
  t.rig.finish();
}
GST_END_TEST;

// max-wait is a budget of the consumer's waiting time, not a deadline: 6 s
// waiting for segment 1, 4 s in which the consumer has data (not counted),
// then 4 s waiting for segment 2 end a 10 s budget at 14 s, not at 10 s.
GST_START_TEST(test_max_wait_budget) {
  Timed t([](DownloaderConfig &cfg) {
    cfg.max_wait_s = 10;
    cfg.poll_interval_s = 6;
  });
  std::string s0 = make_body(0, 500), s1 = make_body(1, 600);
  const int64_t t0 = t.start(
      {ok(R"({"ready":[0],"totalSegments":3})"), ok(R"({"ready":[0,1],"totalSegments":3})")},
      {ok(s0)}, {ok(s1)});

  check_bytes(pop_bytes(*t.rig.dl, s0.size()), s0);
  fail_unless(t.rig.dl->pop(20ms).kind == Kind::Timeout);  // waits for segment 1 from t0
  fail_unless(t.clock.wait_timer_at(t0 + 10 * kSecond, 30000ms));
  t.clock.advance_to(t0 + 6 * kSecond);              // the poll that lists segment 1
  check_bytes(pop_bytes(*t.rig.dl, s1.size()), s1);  // 6 s spent
  // The consumer has data: the next 4 s do not count.
  t.clock.advance_to(t0 + 10 * kSecond);
  fail_unless(t.clock.wait_timer_at(t0 + 14 * kSecond, 30000ms), "max-wait not re-armed for 4 s");
  fail_unless(!t.rig.dl->level().ends_in_error);
  fail_unless(t.rig.dl->pop(20ms).kind == Kind::Timeout);  // waits for segment 2 from 10 s
  t.clock.advance_to(t0 + 14 * kSecond - 1);
  fail_unless(!t.rig.dl->level().ends_in_error);
  fail_unless(has_pending(t.clock, t0 + 14 * kSecond));
  t.clock.advance_to(t0 + 14 * kSecond);

  Drained d = drain(*t.rig.dl);
  check_end(d, Kind::Error);
  fail_unless_equals_string(error_kind_name(d.error.kind), "not-found");
  fail_unless_equals_int64(d.error.segment, 2);
  fail_unless(contains(d.error.message, "max-wait"), "message: %s", d.error.message.c_str());
  t.rig.finish();
}
GST_END_TEST;

// "Not yet" (425, 503) from a segment the status lists is waited for on the
// engine's clock -- Retry-After when given, else poll-interval -- for
// max(1 s, 3 x poll-interval) in all (6 s here); the first answer after
// that is a failure: WARNING, then the backoff, never sooner than its
// Retry-After.
GST_START_TEST(test_listed_not_ready) {
  Timed t([](DownloaderConfig &cfg) { cfg.poll_interval_s = 2; });
  std::string s0 = make_body(0, 500), s1 = make_body(1, 700);
  const int64_t t0 = t.start({ok(R"({"ready":[0,1],"totalSegments":2})")}, {ok(s0)},
                             {answer(503, 4), answer(425), answer(503, 1), ok(s1)});
  const std::string seg1 = t.rig.seg(1);

  // 503 with Retry-After: 4 at t0: asked again at exactly t0 + 4 s.
  fail_unless(t.answered(seg1, 1));
  t.fire_at(t0 + 4 * kSecond, seg1, 1, "Retry-After");
  // 425 without Retry-After at 4 s: poll-interval, asked at 6 s.
  fail_unless(t.answered(seg1, 2));
  fail_unless(t.clock.wait_timer_at(t0 + 6 * kSecond, 30000ms), "no wait of poll-interval");
  fail_unless_equals_int64(t.rig.dl->stats().retries, 0);  // waits, not failures
  t.fire_at(t0 + 6 * kSecond, seg1, 2, "poll-interval");
  // 503 at 6 s, the grace spent: failure 1, retried after max(backoff, 1 s).
  fail_unless(t.answered(seg1, 3));
  const int64_t failed = t0 + 6 * kSecond;
  int64_t retry = wait_deadline_in(t.clock, failed + backoff_delay_us(1, 1, 0, 1),
                                   failed + backoff_delay_us(1, 1, 1, 1) + 1);
  fail_unless(retry > 0, "no retry timer after the grace");
  fail_unless_equals_int64(t.rig.dl->stats().retries, 1);
  t.fire_at(retry, seg1, 3, "the retry after the grace");

  Drained d = t.ends_with(s0 + s1);
  fail_unless(has_warning(d, "although the status lists it as ready"));
  t.rig.finish();
}
GST_END_TEST;

// "Not yet" (404 with Retry-After) from a segment asked before the status
// lists it (speculative fetch) is no failure: asked again after
// max(Retry-After, poll-interval / 4) on the engine's clock, and at once
// when a status lists it, its wait dropped.
GST_START_TEST(test_unlisted_not_yet) {
  Timed t([](DownloaderConfig &cfg) {
    cfg.poll_interval_s = 4;
    cfg.speculative_fetch = true;
  });
  std::string s0 = make_body(0, 500), s1 = make_body(1, 600);
  const int64_t t0 = t.start(
      {ok(R"({"ready":[0],"totalSegments":2})"), ok(R"({"ready":[0,1],"totalSegments":2})")},
      {ok(s0)}, {answer(404, 3), answer(404, 3), ok(s1)});
  const std::string seg1 = t.rig.seg(1);

  fail_unless(t.answered(seg1, 1));
  t.fire_at(t0 + 3 * kSecond, seg1, 1, "Retry-After");
  fail_unless(t.answered(seg1, 2));
  fail_unless(t.clock.wait_timer_at(t0 + 6 * kSecond, 30000ms));
  // The poll at 4 s lists it: asked at once, not at 6 s.
  t.clock.advance_to(t0 + 4 * kSecond);
  fail_unless(t.asked(seg1, 3));
  t.ends_with(s0 + s1);
  fail_unless_equals_int64(t.rig.dl->stats().retries, 0);
  t.rig.finish();
}
GST_END_TEST;

static Suite *timers_suite() {
  Suite *s = suite_create("timers");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_status_stall);
  tcase_add_test(tc, test_segment_stall);
  tcase_add_test(tc, test_backoff_schedule);
  tcase_add_test(tc, test_poll_no_drift);
  tcase_add_test(tc, test_max_wait_budget);
  tcase_add_test(tc, test_listed_not_ready);
  tcase_add_test(tc, test_unlisted_not_yet);
  return s;
}

GST_CHECK_MAIN(timers);
