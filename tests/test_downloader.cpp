// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the download engine, segdl::Downloader, against a scripted
 * fake Fetcher: no network, no libsoup, no sleeps (the rig is in
 * downloader_rig.h).
 */
#include "downloader_rig.h"

// 1. The deployed bare status: every segment once, in order, segment 0 asked
// at once (before any status answer).
GST_START_TEST(test_bare_status) {
  Rig rig;
  std::string s0 = make_body(0, 1000), s1 = make_body(1, 2500), s2 = make_body(2, 10);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);
  check_bytes(d.segments[1], s1);

  Log log = rig.server.log();
  fail_unless_equals_int64(log.first_segment_requested(), 0);
  fail_unless(log.first(rig.seg(0)) != nullptr);
  fail_unless_equals_int(log.first(rig.seg(0))->statuses_before, 0);
  for (int n = 0; n < 3; n++) {
    fail_unless_equals_int(log.count(rig.seg(n)), 1);
    fail_unless_equals_int64(log.ranges(rig.seg(n))[0], 0);
  }
  fail_unless_equals_int64(log.highest_segment(), 2);
  fail_unless_equals_int(log.count(rig.status()), 1);  // all known at once: no second poll
  fail_unless(log.config.max_connections > rig.cfg.max_concurrent + 1);

  EngineStats st = rig.dl->stats();
  fail_unless_equals_int64(st.segments_total, 3);
  fail_unless_equals_int64(st.segments_downloaded, 3);
  fail_unless_equals_int64(st.bytes_downloaded, int64_t(s0.size() + s1.size() + s2.size()));
  fail_unless_equals_int64(st.retries, 0);
  fail_unless_equals_int64(st.status_polls, 1);
  rig.finish();
}
GST_END_TEST;

// Segment 1 breaks after 1234 bytes (mid-chunk), then answers in full:
// `range` says whether the server honours the resume's Range.
static void run_resume(bool range, FetchError cut_error) {
  Rig rig;
  std::string s0 = make_body(0, 700), s1 = make_body(1, 3000), s2 = make_body(2, 900);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  Reply again = ok(s1);
  again.honour_range = range;
  rig.server.script(rig.seg(1), {broken(s1, 1234, cut_error, range), again});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);
  check_bytes(d.segments[1], s1);

  Log log = rig.server.log();
  fail_unless(log.ranges(rig.seg(1)) == std::vector<int64_t>({0, 1234}),
              "segment 1 asked %zu times", log.ranges(rig.seg(1)).size());
  fail_unless(log.served(rig.seg(1)) == std::vector<int>({200, range ? 206 : 200}));
  fail_unless_equals_int(log.count(rig.seg(0)), 1);
  fail_unless_equals_int(log.count(rig.seg(2)), 1);
  EngineStats st = rig.dl->stats();
  fail_unless_equals_int64(st.retries, 1);
  // What was dropped from the 200 is not counted again.
  fail_unless_equals_int64(st.bytes_downloaded, int64_t(s0.size() + s1.size() + s2.size()));
  rig.finish();
}

// 2. A broken body resumes with Range from where it broke.
GST_START_TEST(test_resume_with_range) {
  run_resume(true, FetchError::Io);
}
GST_END_TEST;

// 3. The server ignores Range and sends it all again: the engine skips what
// it has.
GST_START_TEST(test_resume_range_ignored) {
  run_resume(false, FetchError::Io);
}
GST_END_TEST;

// 4. A body shorter than its Content-Length, without a transport error, is
// broken too.
GST_START_TEST(test_short_body) {
  run_resume(true, FetchError::None);
}
GST_END_TEST;

// 5. Not ready is no failure. Only segment 0 is ever asked for before the
// status lists it (docs/protocol.md, "Segments"), so the 404-while-unlisted
// case is segment 0; segment 1, once listed, answers 503 (Retry-After: 0)
// and 425 before its bytes.
GST_START_TEST(test_not_ready) {
  Rig rig;
  std::string s0 = make_body(0, 800), s1 = make_body(1, 1500), s2 = make_body(2, 300);
  rig.server.script(rig.status(), {ok(R"({"ready":[]})"), ok(R"({"ready":[]})"), ok(kTotal3)});
  rig.server.script(rig.seg(0), {answer(404), ok(s0)});
  rig.server.script(rig.seg(1), {answer(503, 0), answer(425), ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);

  Log log = rig.server.log();
  fail_unless(log.served(rig.seg(0)) == std::vector<int>({404, 200}));
  fail_unless_equals_int(log.first(rig.seg(0))->statuses_before, 0);  // 404 while unlisted
  fail_unless(log.served(rig.seg(1)) == std::vector<int>({503, 425, 200}));
  fail_unless_equals_int(log.first(rig.seg(1))->statuses_before, 3);  // asked once listed
  fail_unless_equals_int(log.count(rig.status()), 3);
  EngineStats st = rig.dl->stats();
  fail_unless_equals_int64(st.retries, 0);
  fail_unless_equals_int64(st.segments_downloaded, 3);
  rig.finish();
}
GST_END_TEST;

// 6. A segment that always answers 500 fails after max_retries + 1 attempts;
// what comes before it is delivered first.
GST_START_TEST(test_server_error) {
  Rig rig;
  std::string s0 = make_body(0, 600), s2 = make_body(2, 600);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {answer(500)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, s0);
  fail_unless_equals_string(error_kind_name(d.error.kind), "open-read");
  fail_unless_equals_int64(d.error.segment, 1);
  fail_unless_equals_int(d.error.http_status, 500);
  std::string want_uri = rig.seg(1);
  fail_unless_equals_string(d.error.uri.c_str(), want_uri.c_str());
  fail_unless(contains(d.error.message, "segment 1"), "message: %s", d.error.message.c_str());

  Log log = rig.server.log();
  fail_unless_equals_int(log.count(rig.seg(1)), rig.cfg.max_retries + 1);
  fail_unless_equals_int64(rig.dl->stats().retries, rig.cfg.max_retries);
  rig.finish();
}
GST_END_TEST;

// 7. 403 is fatal at once: no retry.
GST_START_TEST(test_forbidden) {
  Rig rig;
  std::string s0 = make_body(0, 600);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {answer(403)});
  rig.server.script(rig.seg(2), {ok(make_body(2, 600))});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, s0);
  fail_unless_equals_string(error_kind_name(d.error.kind), "not-authorized");
  fail_unless_equals_int64(d.error.segment, 1);
  fail_unless_equals_int(d.error.http_status, 403);
  fail_unless(contains(d.error.message, "segment 1"), "message: %s", d.error.message.c_str());

  fail_unless_equals_int(rig.server.log().count(rig.seg(1)), 1);
  fail_unless_equals_int64(rig.dl->stats().retries, 0);
  rig.finish();
}
GST_END_TEST;

// 8. A status that never parses: retried, then Read with the reason.
GST_START_TEST(test_status_malformed) {
  Rig rig;
  rig.server.script(rig.status(), {ok(R"({"ready": [0, 1,)")});
  rig.server.script(rig.seg(0), {answer(404)});  // never listed: waits, no data
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, "");
  fail_unless_equals_string(error_kind_name(d.error.kind), "read");
  fail_unless(contains(d.error.message, "malformed status"), "message: %s",
              d.error.message.c_str());
  std::string want_uri = rig.status();
  fail_unless_equals_string(d.error.uri.c_str(), want_uri.c_str());
  rig.dl->stop();  // nothing more is asked after this
  fail_unless_equals_int(rig.server.log().count(rig.status()), rig.cfg.max_retries + 1);
  fail_unless_equals_int64(rig.dl->stats().status_polls, rig.cfg.max_retries + 1);
  rig.finish();
}
GST_END_TEST;

// 9. The backend gives up: Failed with its text, no retry.
GST_START_TEST(test_status_error_state) {
  Rig rig;
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1],"state":"error","error":"boom"})")});
  rig.server.script(rig.seg(0), {answer(404)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  fail_unless_equals_string(error_kind_name(d.error.kind), "failed");
  fail_unless(contains(d.error.message, "boom"), "message: %s", d.error.message.c_str());
  rig.dl->stop();
  fail_unless_equals_int(rig.server.log().count(rig.status()), 1);
  rig.finish();
}
GST_END_TEST;

// 10. No total, no state: the track ends idle_timeout_s after the last new
// segment, with the segments seen. The engine runs on an injected clock
// (the poll grid and the idle rule read it), so a loaded machine that
// answers a poll late cannot end the track before segment 1 is listed:
// polls tick every 20 ms from t0, segment 1 appears at the tick of 20 ms,
// and the track is still open at 200 ms and ends at the tick of 220 ms.
GST_START_TEST(test_idle_end) {
  ManualClock clock;
  DownloaderConfig cfg = test_config();
  cfg.clock = &clock;
  Rig rig(cfg);  // after the clock: stopped first
  std::string s0 = make_body(0, 500), s1 = make_body(1, 500);
  rig.server.script(rig.status(), {ok(R"({"ready":[0]})"), ok(R"({"ready":[0,1]})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  const int64_t t0 = clock.now_us(), tick = 20000;
  rig.start();
  auto answered = [&](int polls) {
    return rig.server.wait_until(
        [&](const Log &log) { return log.finished_count(rig.status()) >= polls; }, 30000ms);
  };
  fail_unless(answered(1), "the first poll was not answered");
  for (int k = 1; k <= 11; k++) {
    fail_unless(clock.wait_timer_at(t0 + k * tick, 30000ms), "no poll tick at %d ms", 20 * k);
    if (k == 11) {  // the tick of 200 ms has run (it armed this one): still open
      fail_unless_equals_int64(rig.dl->stats().segments_total, -1);
    }
    clock.advance_to(t0 + k * tick);
    if (k == 1) fail_unless(answered(2), "the second poll was not answered");
  }
  Drained d = drain(*rig.dl, 30000ms);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1);

  Log log = rig.server.log();
  fail_unless_equals_int64(log.highest_segment(), 1);
  fail_unless(log.count(rig.status()) >= 3);
  fail_unless_equals_int64(rig.dl->stats().segments_total, 2);
  rig.finish();
}
GST_END_TEST;

// 11. monitor = false: the segments ready at the first status are the track.
GST_START_TEST(test_no_monitor) {
  DownloaderConfig cfg = test_config();
  cfg.monitor = false;
  Rig rig(cfg);
  std::string s0 = make_body(0, 500), s1 = make_body(1, 500);
  rig.server.script(rig.status(),
                    {ok(R"({"ready":[0,1]})"), ok(R"({"ready":[0,1,2,3],"totalSegments":4})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.server.script(rig.seg(2), {ok(make_body(2, 500))});
  rig.server.script(rig.seg(3), {ok(make_body(3, 500))});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1);
  rig.dl->stop();
  Log log = rig.server.log();
  fail_unless_equals_int(log.count(rig.status()), 1);
  fail_unless_equals_int64(log.highest_segment(), 1);
  rig.finish();
}
GST_END_TEST;

// Segments 0 and 1 of 3 are listed and served; segment 2 is never listed,
// and never asked for (no speculative fetch; tests/speed: when it is).
// test_max_wait and test_level_backend_bound start from this.
static DownloaderConfig two_of_three_config() {
  DownloaderConfig cfg = test_config();
  cfg.speculative_fetch = false;
  return cfg;
}

static void script_two_of_three(Rig &rig, const std::string &s0, const std::string &s1) {
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1],"totalSegments":3})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
}

// 12. max_wait_s: a segment that never becomes ready fails as NotFound,
// after what came before it.
GST_START_TEST(test_max_wait) {
  DownloaderConfig cfg = two_of_three_config();
  cfg.max_wait_s = 0.5;
  Rig rig(cfg);
  std::string s0 = make_body(0, 500), s1 = make_body(1, 500);
  script_two_of_three(rig, s0, s1);
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, s0 + s1);
  fail_unless_equals_string(error_kind_name(d.error.kind), "not-found");
  fail_unless_equals_int64(d.error.segment, 2);
  fail_unless(contains(d.error.message, "segment 2"), "message: %s", d.error.message.c_str());
  fail_unless(contains(d.error.message, "max-wait"), "message: %s", d.error.message.c_str());
  // When it fires is tested on an injected clock (reliability/test_timers.cpp).
  fail_unless_equals_int(rig.server.log().count(rig.seg(2)), 0);
  rig.finish();
}
GST_END_TEST;

// 12b. The max-wait message gives the real value (max-wait is a double:
// 0.5 s must not read "0 s").
GST_START_TEST(test_max_wait_message_units) {
  DownloaderConfig cfg = test_config();
  cfg.max_wait_s = 0.5;
  Rig rig(cfg);
  rig.server.script(rig.status(), {ok(R"({"ready":[],"totalSegments":1})")});
  rig.server.script(rig.seg(0), {answer(404)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  fail_unless(!contains(d.error.message, "after 0 s"), "message: %s", d.error.message.c_str());
  fail_unless(contains(d.error.message, "0.5"), "message: %s", d.error.message.c_str());
  rig.finish();
}
GST_END_TEST;

// 13. Memory is bounded: with max_concurrent 2 (window 3) and a consumer
// that does not pop, nothing from segment 3 on is asked for.
GST_START_TEST(test_window_bound) {
  DownloaderConfig cfg = test_config();
  cfg.max_concurrent = 2;
  Rig rig(cfg);
  std::vector<std::string> segs;
  std::string all;
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1,2,3,4,5],"totalSegments":6})")});
  for (int n = 0; n < 6; n++) {
    segs.push_back(make_body(n, 2000 + 37 * n));
    all += segs.back();
    Reply r = ok(segs.back());
    r.chunk = 100;
    rig.server.script(rig.seg(n), {r});
  }
  rig.start();

  // Once segments 0-2 and the status have ended (and their on_done, which
  // schedules what comes next, has returned), nothing else can start before
  // the consumer moves.
  bool settled = rig.server.wait_until(
      [&](const Log &log) {
        return log.finished_count(rig.status()) >= 1 && log.finished_count(rig.seg(0)) == 1 &&
               log.finished_count(rig.seg(1)) == 1 && log.finished_count(rig.seg(2)) == 1;
      },
      30000ms);
  fail_unless(settled, "segments 0-2 did not finish");
  Log log = rig.server.log();
  fail_unless_equals_int64(log.highest_segment(), 2);
  fail_unless(log.max_active_segments <= 2, "%d segments at once", log.max_active_segments);
  Downloader::Level lv;
  for (int i = 0; i < 3000; i++) {  // the HTTP thread publishes after the log (bounded: 30 s)
    lv = rig.dl->level();
    if (lv.window_full) break;
    rig.dl->wait_change(10ms);
  }
  fail_unless_equals_int64(int64_t(lv.bytes_ahead),
                           int64_t(segs[0].size() + segs[1].size() + segs[2].size()));
  fail_unless(!lv.can_finish);
  fail_unless(!lv.backend_bound, "segment 3 is listed: the wait is for the network");
  // ...but nothing more comes until the consumer takes some: the element
  // must not wait for buffer-size bytes.
  fail_unless(lv.window_full, "segments 0-2 fill the window of 3");

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, all);
  log = rig.server.log();
  for (int n = 0; n < 6; n++) fail_unless_equals_int(log.count(rig.seg(n)), 1);
  fail_unless(log.max_active_segments <= 2, "%d segments at once", log.max_active_segments);
  rig.finish();
}
GST_END_TEST;

// 13b. Every byte the backend has made so far is here (segments 0-1 of 3,
// segment 2 not listed): level() says the wait is for the backend, so the
// element ends BUFFERING with what it has however small it is.
GST_START_TEST(test_level_backend_bound) {
  Rig rig(two_of_three_config());
  std::string s0 = make_body(0, 300), s1 = make_body(1, 400);
  script_two_of_three(rig, s0, s1);
  rig.start();

  bool settled = rig.server.wait_until(
      [&](const Log &log) {
        return log.finished_count(rig.status()) >= 1 && log.finished_count(rig.seg(0)) == 1 &&
               log.finished_count(rig.seg(1)) == 1;
      },
      30000ms);
  fail_unless(settled, "segments 0-1 did not finish");
  Downloader::Level lv;
  for (int i = 0; i < 300; i++) {  // the HTTP thread publishes after the log (bounded)
    lv = rig.dl->level();
    if (lv.bytes_ahead == s0.size() + s1.size()) break;
    rig.dl->wait_change(10ms);
  }
  fail_unless_equals_int64(int64_t(lv.bytes_ahead), int64_t(s0.size() + s1.size()));
  fail_unless(lv.backend_bound, "segment 2 is not made yet");
  fail_unless(!lv.can_finish);
  fail_unless(!lv.window_full, "2 segments of a window of 4");
  rig.dl->stop();
  rig.finish();
}
GST_END_TEST;

// 14. stop() with transfers in flight (three segments and a status poll,
// all stalled) returns promptly, cancels all of them, and a second stop()
// is harmless. finish() checks that no listener ran after its cancel and
// that nothing leaked. The engine's own timeouts are far away (60 s), and
// so is the idle rule (a late poll tick on a loaded machine must not end
// the track before the second poll): a stop() that waited for a transfer
// to end would take a minute, so its 10 s bound is only a failure's.
GST_START_TEST(test_stop_in_flight) {
  DownloaderConfig cfg = test_config();
  cfg.timeout_s = 60;
  cfg.stall_timeout_s = 60;
  cfg.idle_timeout_s = 60;
  Rig rig(cfg);
  Reply stalled_status = ok("{");
  stalled_status.cut_after = 0;
  stalled_status.hang = true;
  // No total and no state: a second poll follows, and stalls.
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1,2,3]})"), stalled_status});
  for (int n = 0; n < 4; n++) {
    Reply r = ok(make_body(n, 5000));
    r.cut_after = 100;
    r.hang = true;
    rig.server.script(rig.seg(n), {r});
  }
  rig.start();

  bool stalled = rig.server.wait_until([](const Log &log) { return log.stalled == 4; }, 30000ms);
  fail_unless(stalled, "the transfers did not all start");

  auto t0 = Clock::now();
  rig.dl->stop();
  int64_t ms = ms_between(t0, Clock::now());
  fail_unless(ms < 10000, "stop() took %" PRId64 " ms", ms);
  t0 = Clock::now();
  rig.dl->stop();
  ms = ms_between(t0, Clock::now());
  fail_unless(ms < 10000, "the second stop() took %" PRId64 " ms", ms);

  Log log = rig.server.log();
  for (int n = 0; n < 3; n++) fail_unless_equals_int(log.cancelled_count(rig.seg(n)), 1);
  fail_unless_equals_int(log.count(rig.seg(3)), 0);
  fail_unless_equals_int(log.cancelled_count(rig.status()), 1);
  fail_unless_equals_int(log.fetchers_alive, 0);
  rig.finish();
}
GST_END_TEST;

// 15. set_flushing(true) from another thread wakes a blocked pop() at once.
// The flush waits (bounded) until the consumer thread is asleep in pop(), so
// it is the wake-up that is tested, not the check on entry. pop() is given
// 100 s and the engine's timeouts are 60 s: a pop() the flush did not wake
// would return 70 s or more after it, far past the 20 s bound (which only
// bounds a failure, on however slow a machine).
GST_START_TEST(test_flushing) {
  DownloaderConfig cfg = test_config();
  cfg.timeout_s = 60;
  cfg.stall_timeout_s = 60;
  Rig rig(cfg);
  Reply stalled = ok(make_body(0, 1000));
  stalled.cut_after = 0;
  stalled.hang = true;
  rig.server.script(rig.status(), {ok(R"({"ready":[0],"totalSegments":1})")});
  rig.server.script(rig.seg(0), {stalled});
  rig.start();
  fail_unless(rig.server.wait_until([](const Log &log) { return log.stalled == 1; }, 30000ms));

  std::atomic<pid_t> consumer_tid{0};
  Kind got = Kind::Data;
  std::thread consumer([&] {
    consumer_tid = gettid();
    Downloader::Item item = rig.dl->pop(100000ms);
    got = item.kind;
    if (item.bytes) g_bytes_unref(item.bytes);
  });
  // Nothing else can wake it: the only transfer is stalled and the status is
  // complete. (A predicate poll with a deadline, not a sleep.)
  auto until = Clock::now() + 30000ms;
  bool asleep = false;
  while (!asleep && Clock::now() < until) {
    pid_t tid = consumer_tid;
    asleep = tid != 0 && thread_asleep(tid);
    if (!asleep) std::this_thread::yield();
  }
  auto flushed_at = Clock::now();
  rig.dl->set_flushing(true);
  consumer.join();
  int64_t after_flush_ms = ms_between(flushed_at, Clock::now());
  fail_unless(asleep, "the consumer never blocked in pop()");
  fail_unless_equals_string(kind_name(got), "flushing");
  fail_unless(after_flush_ms < 20000, "pop() returned %" PRId64 " ms after the flush",
              after_flush_ms);

  // Flushing: everything returns at once (not after its 100 s).
  auto t0 = Clock::now();
  fail_unless_equals_string(kind_name(rig.dl->pop(100000ms).kind), "flushing");
  fail_if(rig.dl->wait_change(100000ms));
  fail_unless(ms_between(t0, Clock::now()) < 20000);

  // Back to normal: nothing to give, so pop() times out.
  rig.dl->set_flushing(false);
  fail_unless_equals_string(kind_name(rig.dl->pop(30ms).kind), "timeout");
  rig.finish();
}
GST_END_TEST;

// 16. totalSegments changes while the track downloads: the end follows the
// latest total, up (3 after 2) and down (2 after 4, the two segments past
// the new end never asked for).
static void run_total_changes(const char *first, const char *second, int64_t end) {
  DownloaderConfig cfg = test_config();
  cfg.speculative_fetch = false;  // only listed segments are asked for
  Rig rig(cfg);
  std::string all;
  rig.server.script(rig.status(), {ok(first), ok(second)});
  for (int64_t n = 0; n < 4; n++) {
    std::string body = make_body(n, 400 + 10 * size_t(n));
    if (n < end) all += body;
    rig.server.script(rig.seg(n), {ok(body)});
  }
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, all);
  fail_unless_equals_int64(rig.dl->stats().segments_total, end);
  Log log = rig.server.log();
  fail_unless_equals_int64(log.highest_segment(), end - 1);
  fail_unless_equals_int(log.count(rig.status()), 2);
  rig.finish();
}

GST_START_TEST(test_total_grows) {
  run_total_changes(R"({"ready":[0],"totalSegments":2})", R"({"ready":[0,1,2],"totalSegments":3})",
                    3);
}
GST_END_TEST;

GST_START_TEST(test_total_shrinks) {
  run_total_changes(R"({"ready":[0],"totalSegments":4})", R"({"ready":[0,1],"totalSegments":2})",
                    2);
}
GST_END_TEST;

// 17. Jobs behind the consumer: a forward seek past two transfers in
// flight cancels both before their jobs are dropped (the fake records any
// callback after a cancel, and any transfer left running), and none of
// their bytes is delivered after the seek.
GST_START_TEST(test_seek_cancels_jobs_behind) {
  Rig rig;
  std::string s0 = make_body(0, 300), s3 = make_body(3, 500), s4 = make_body(4, 600);
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1,2,3,4],"totalSegments":5})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  for (int64_t n : {1, 2}) {
    Reply r = ok(make_body(n, 1000));
    r.cut_after = 100;
    r.hang = true;
    rig.server.script(rig.seg(n), {r});
  }
  rig.server.script(rig.seg(3), {ok(s3)});
  rig.server.script(rig.seg(4), {ok(s4)});
  rig.start();
  fail_unless(rig.server.wait_until([](const Log &log) { return log.stalled == 2; }, 30000ms));

  rig.dl->seek(3);
  fail_unless(rig.server.wait_until(
      [&](const Log &log) {
        return log.cancelled_count(rig.seg(1)) == 1 && log.cancelled_count(rig.seg(2)) == 1;
      },
      30000ms));
  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s3 + s4);
  fail_unless(d.segments.count(1) == 0 && d.segments.count(2) == 0);
  rig.finish();  // no callback after cancel, no transfer left
}
GST_END_TEST;

// 18. The same for the switch to the fallback URL: segment 1 fails for good
// (403) while segment 2 is in flight; the switch cancels segment 2, then
// the fallback's file follows segment 0.
GST_START_TEST(test_fallback_cancels_jobs_behind) {
  DownloaderConfig cfg = test_config();
  cfg.fallback_uri = "http://fake.invalid:8080/full/track.aac";
  Rig rig(cfg);
  std::string s0 = make_body(0, 300), full = make_body(99, 2000);
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1,2],"totalSegments":3})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {answer(403)});
  Reply hang = ok(make_body(2, 1000));
  hang.cut_after = 100;
  hang.hang = true;
  rig.server.script(rig.seg(2), {hang});
  rig.server.script(cfg.fallback_uri, {ok(full)});
  rig.start();
  fail_unless(rig.server.wait_until([](const Log &log) { return log.stalled == 1; }, 30000ms));

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + full);
  Log log = rig.server.log();
  fail_unless_equals_int(log.cancelled_count(rig.seg(2)), 1);
  fail_unless(rig.dl->stats().fallback);
  rig.finish();
}
GST_END_TEST;

// 19. An ERROR ahead: level() says the consumer can finish, and that the
// end is an ERROR only when nothing takes over (missing-segment=error, or
// fallback without a URL); a gap or a fallback URL ahead is no ERROR. The
// element posts no BUFFERING 100 before such an ERROR (faults:
// permanent_faults).
static void run_error_ahead(MissingSegment missing, bool fallback, bool want_error) {
  DownloaderConfig cfg = test_config();
  cfg.missing_segment = missing;
  if (fallback) cfg.fallback_uri = "http://fake.invalid:8080/full/track.aac";
  Rig rig(cfg);
  std::string s0 = make_body(0, 300);
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1],"totalSegments":2})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {answer(403)});
  rig.start();
  fail_unless(rig.server.wait_until(
      [&](const Log &log) {
        return log.finished_count(rig.seg(0)) == 1 && log.cancelled_count(rig.seg(1)) == 1;
      },
      30000ms));
  Downloader::Level lv;
  auto until = Clock::now() + 30s;  // the failure reaches the buffer just after the cancel
  do {
    lv = rig.dl->level();
  } while (!lv.can_finish && rig.dl->wait_change(50ms) && Clock::now() < until);
  fail_unless(lv.can_finish);
  fail_unless_equals_int(lv.ends_in_error, want_error);
  fail_unless_equals_int64(int64_t(lv.bytes_ahead), int64_t(s0.size()));
  rig.finish();
}

GST_START_TEST(test_level_error_ahead) {
  run_error_ahead(MissingSegment::Error, false, true);
  run_error_ahead(MissingSegment::Fallback, false, true);
  run_error_ahead(MissingSegment::Error, true, true);  // error: even with a fallback URL
  run_error_ahead(MissingSegment::Fallback, true, false);
  run_error_ahead(MissingSegment::Gap, false, false);
}
GST_END_TEST;

// ADTS frames as a backend serves them: `count` frames of `frame_size`
// bytes (7-byte header, AAC LC, 44.1 kHz stereo, no CRC; the payload made
// up, different for every `seed`).
static std::string adts_frames(int64_t seed, int count, size_t frame_size) {
  const std::string payload = make_body(seed, size_t(count) * frame_size);
  std::string out;
  for (int i = 0; i < count; i++) {
    const uint8_t header[7] = {0xff,
                               0xf1,
                               0x50,  // LC, 44100 Hz (index 4), 2 channels (high bit 0)
                               uint8_t(0x80 | (frame_size >> 11)),
                               uint8_t(frame_size >> 3),
                               uint8_t((frame_size & 7) << 5 | 0x1f),
                               0xfc};
    out.append(reinterpret_cast<const char *>(header), sizeof header);
    out.append(payload, size_t(i) * frame_size + 7, frame_size - 7);
  }
  return out;
}

// The engine's "checked to its end" lines (segdl-engine, DEBUG) and the
// thread each came from; any thread writes, under mu.
struct EndChecks {
  std::mutex mu;
  std::vector<std::pair<std::thread::id, std::string>> lines;
};

static void record_end_check(GstDebugCategory *category, GstDebugLevel, const gchar *,
                             const gchar *, gint, GObject *, GstDebugMessage *message,
                             gpointer data) noexcept {
  if (g_strcmp0(gst_debug_category_get_name(category), "segdl-engine") != 0) return;
  const gchar *text = gst_debug_message_get(message);
  if (!text || !strstr(text, "checked to its end")) return;
  auto *checks = static_cast<EndChecks *>(data);
  std::lock_guard<std::mutex> lock(checks->mu);
  checks->lines.emplace_back(std::this_thread::get_id(), text);
}

// 20. A body without Content-Length (chunked) is held whole and walked to
// its end on the worker thread, never on the HTTP thread (the thread that
// made the Fetcher): a copy of segment 1 that ends cleanly in the middle of
// a frame is a broken transfer (WARNING, fetched again from its start),
// nothing of it is output; the good copy's bytes are.
GST_START_TEST(test_held_body_checked_off_the_http_thread) {
  DownloaderConfig cfg = test_config();
  cfg.check_segments = true;  // real ADTS frames here
  Rig rig(cfg);
  const std::string s0 = adts_frames(0, 40, 200), s1 = adts_frames(1, 30, 180);
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1],"totalSegments":2})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  Reply cut = ok(s1);
  cut.send_length = false;
  cut.cut_after = 12 * 180 + 77;  // ends cleanly inside frame 12
  cut.cut_error = FetchError::None;
  Reply good = ok(s1);
  good.send_length = false;
  rig.server.script(rig.seg(1), {cut, good});

  EndChecks checks;
  const gboolean was_active = gst_debug_is_active();  // off unless GST_DEBUG is set
  gst_debug_set_active(TRUE);
  gst_debug_set_threshold_for_name("segdl-engine", GST_LEVEL_DEBUG);
  gst_debug_add_log_function(record_end_check, &checks, nullptr);
  std::mutex http_mu;
  std::thread::id http_thread;
  FakeServer *srv = &rig.server;
  rig.dl = std::make_unique<Downloader>(
      rig.cfg, [&, srv](const FetcherConfig &, std::string &) -> std::unique_ptr<Fetcher> {
        std::lock_guard<std::mutex> lock(http_mu);
        http_thread = std::this_thread::get_id();  // the factory runs on the HTTP thread
        return std::make_unique<FakeFetcher>(*srv);
      });
  std::string error;
  fail_unless(rig.dl->start(error), "start: %s", error.c_str());

  Drained d = drain(*rig.dl);
  rig.dl->stop();
  gst_debug_remove_log_function_by_data(&checks);
  gst_debug_unset_threshold_for_name("segdl-engine");
  gst_debug_set_active(was_active);
  check_end(d, Kind::Eos);
  check_bytes(d.segments[1], s1);
  check_bytes(d.bytes, s0 + s1);
  Log log = rig.server.log();
  fail_unless(log.ranges(rig.seg(1)) == std::vector<int64_t>({0, 0}),
              "segment 1 asked %zu times, or resumed", log.ranges(rig.seg(1)).size());
  int cut_warnings = 0;
  for (const EngineEvent &ev : d.events)
    if (ev.kind == EngineEvent::Kind::Warning && ev.warning.segment == 1 &&
        contains(ev.warning.cause, "without Content-Length cut short"))
      cut_warnings++;
  fail_unless_equals_int(cut_warnings, 1);
  fail_unless_equals_int64(rig.dl->stats().retries, 1);

  std::lock_guard<std::mutex> lock(checks.mu);
  fail_unless_equals_int(int(checks.lines.size()), 2);  // segment 1's two copies; 0 had a length
  fail_unless(contains(checks.lines[0].second, "segment 1") &&
                  contains(checks.lines[0].second, "cut short"),
              "first check: %s", checks.lines[0].second.c_str());
  fail_unless(
      contains(checks.lines[1].second, "segment 1") && contains(checks.lines[1].second, ": whole"),
      "second check: %s", checks.lines[1].second.c_str());
  std::lock_guard<std::mutex> http_lock(http_mu);
  for (const auto &line : checks.lines)
    fail_unless(line.first != http_thread, "checked on the HTTP thread: %s", line.second.c_str());
  fail_unless(checks.lines[0].first != std::this_thread::get_id());
  rig.finish();
}
GST_END_TEST;

static Suite *downloader_suite() {
  Suite *s = suite_create("downloader");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_bare_status);
  tcase_add_test(tc, test_resume_with_range);
  tcase_add_test(tc, test_resume_range_ignored);
  tcase_add_test(tc, test_short_body);
  tcase_add_test(tc, test_not_ready);
  tcase_add_test(tc, test_server_error);
  tcase_add_test(tc, test_forbidden);
  tcase_add_test(tc, test_status_malformed);
  tcase_add_test(tc, test_status_error_state);
  tcase_add_test(tc, test_idle_end);
  tcase_add_test(tc, test_no_monitor);
  tcase_add_test(tc, test_max_wait);
  tcase_add_test(tc, test_max_wait_message_units);
  tcase_add_test(tc, test_window_bound);
  tcase_add_test(tc, test_stop_in_flight);
  tcase_add_test(tc, test_flushing);
  tcase_add_test(tc, test_total_grows);
  tcase_add_test(tc, test_total_shrinks);
  tcase_add_test(tc, test_seek_cancels_jobs_behind);
  tcase_add_test(tc, test_fallback_cancels_jobs_behind);
  tcase_add_test(tc, test_level_error_ahead);
  tcase_add_test(tc, test_level_backend_bound);
  tcase_add_test(tc, test_held_body_checked_off_the_http_thread);
  return s;
}

GST_CHECK_MAIN(downloader);
