// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — speculative fetch (issue 11): while the backend is still
 * producing the track, segdlsrc asks for the segment after the ready ones
 * before the status lists it, one request at a time, never faster than the
 * server's Retry-After or poll-interval / 4; `speculative-fetch=false` asks
 * only for listed segments; and the tail asked beside a body
 * (`tail-prefetch`) goes only with segment 0 of a track that is not m4a,
 * none with 0. Checked in segdl-server's request log: what was
 * asked, what it answered, in which order; the output against the served
 * bytes. No assertion depends on how fast the machine is.
 */
#include "../harness.h"

#include <algorithm>
#include <functional>
#include <vector>

using namespace segdl;
using namespace segdl::test;

namespace {

std::vector<server::RequestRecord> segment_requests(const server::Server &srv) {
  std::vector<server::RequestRecord> out;
  for (const auto &r : srv.requests())
    if (r.path == "/stream" && r.segment >= 0) out.push_back(r);
  std::sort(out.begin(), out.end(),
            [](const auto &a, const auto &b) { return a.start_us < b.start_us; });
  return out;
}

// Plays `id` with join=bytes; checks EOS and the bytes against the track.
void play_exact(server::Server &srv, const std::string &id, const server::Track &track,
                const std::string &props) {
  GstElement *p =
      make_pipeline(srv.base_url(), id, "join=bytes " + props, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless(run.bytes == concat(track.segments), "the output differs from the served segments");
  fail_unless(srv.wait_idle(10000));
}

// Requests answered "not yet" never overlap (one speculative request at a
// time), and the next one for a segment comes no sooner than `min_gap_us`
// after the previous one began (the wait after a "not yet" starts only once
// its answer is in, so this lower bound holds however slow the machine).
void check_one_at_a_time(const std::vector<server::RequestRecord> &reqs, int64_t min_gap_us) {
  const server::RequestRecord *prev = nullptr;
  for (const auto &r : reqs) {
    if (r.http_status != 404) continue;
    if (prev) {
      fail_unless(r.start_us >= prev->end_us,
                  "two requests for unready segments at once (%" G_GINT64_FORMAT
                  " and %" G_GINT64_FORMAT ")",
                  prev->segment, r.segment);
      if (prev->segment == r.segment)
        fail_unless(r.start_us - prev->start_us >= min_gap_us,
                    "segment %" G_GINT64_FORMAT " asked again after %" G_GINT64_FORMAT " us",
                    r.segment, r.start_us - prev->start_us);
    }
    prev = &r;
  }
}

// The requests that carried a Range header, in order.
std::vector<server::RequestRecord> ranged_requests(const server::Server &srv) {
  std::vector<server::RequestRecord> out;
  for (const auto &r : segment_requests(srv))
    if (!r.range.empty()) out.push_back(r);
  return out;
}

// Plays `id` with join=timeline (the default: the join that reads m4a
// while it arrives) to EOS, after a seek to `seek` when valid.
void play_frames(server::Server &srv, const std::string &id, const std::string &props,
                 GstClockTime seek = GST_CLOCK_TIME_NONE) {
  GstElement *p = make_pipeline(srv.base_url(), id, props, "appsink name=sink sync=false");
  std::function<void(GstElement *)> before_play;
  if (GST_CLOCK_TIME_IS_VALID(seek))
    before_play = [seek](GstElement *pipeline) {
      fail_unless(gst_element_seek_simple(
          pipeline, GST_FORMAT_TIME, GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
          seek));
      fail_unless_equals_int(gst_element_get_state(pipeline, nullptr, nullptr, 20 * GST_SECOND),
                             GST_STATE_CHANGE_SUCCESS);
    };
  Run run;
  run_pipeline(p, run, 60, before_play);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless(!run.frames.empty());
  fail_unless(srv.wait_idle(10000));
}

}  // namespace

// A backend revealing a segment every 1.5 s: some segment is asked for
// before it exists (404 + Retry-After), every such segment is then served
// whole, and the output is the served track.
GST_START_TEST(test_speculative_on) {
  server::Options opts;
  opts.reveal_every = 1.5;
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts, 7.5);  // 1.5 + 3 + 3 s: 3 segments
  const int64_t total = int64_t(track.segments.size());
  srv->add_track("spec", track);
  play_exact(*srv, "spec", track, "");
  auto reqs = segment_requests(*srv);
  int early = 0;
  for (const auto &r : reqs) {
    if (r.http_status != 404) continue;
    early++;
    fail_unless(r.segment >= 1 && r.segment < total, "segment %" G_GINT64_FORMAT " asked early",
                r.segment);
    // Asked again and served once it existed.
    bool served = std::any_of(reqs.begin(), reqs.end(), [&](const auto &o) {
      return o.segment == r.segment && o.http_status == 200 && o.start_us > r.start_us;
    });
    fail_unless(served, "segment %" G_GINT64_FORMAT " never served after its 404", r.segment);
  }
  fail_unless(early >= 1, "no segment was asked for before the status listed it");
  // segdl-server's Retry-After is at least 1 s.
  check_one_at_a_time(reqs, 1000000);
  // Each segment is served whole once.
  for (int64_t n = 0; n < total; n++) {
    int ok = 0;
    for (const auto &r : reqs) ok += r.segment == n && r.http_status == 200;
    fail_unless_equals_int(ok, 1);
  }
}
GST_END_TEST;

// speculative-fetch=false: only listed segments are asked for, so no
// request is ever answered "not yet".
GST_START_TEST(test_speculative_off) {
  server::Options opts;
  opts.reveal_every = 1.5;
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts, 7.5);
  srv->add_track("nospec", track);
  play_exact(*srv, "nospec", track, "speculative-fetch=false");
  auto reqs = segment_requests(*srv);
  for (const auto &r : reqs) fail_unless_equals_int(r.http_status, 200);
  fail_unless_equals_int(int(reqs.size()), int(track.segments.size()));
}
GST_END_TEST;

// A "not yet" with "Retry-After: 0" (segdl-server's notready fault, on
// the first 3 requests for segment 1; the segment itself comes 3 s in):
// the speculative request is repeated no sooner than poll-interval / 4
// (100 ms here) after the previous one began, never at once.
GST_START_TEST(test_speculative_rate_floor) {
  server::Options opts;
  opts.reveal_every = 3;
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts, 4.5);  // 2 segments
  srv->add_track("rate", track);
  srv->add_fault(fault("notready", "rate", 1, 3, 0));
  play_exact(*srv, "rate", track, "poll-interval=0.4");
  auto reqs = segment_requests(*srv);
  int early = 0;
  for (const auto &r : reqs) {
    if (r.http_status == 200) continue;
    early++;
    fail_unless_equals_int(r.http_status, 404);
    fail_unless_equals_int(r.segment, 1);
  }
  fail_unless(early >= 3, "%d requests answered not yet", early);
  check_one_at_a_time(reqs, 100000);
}
GST_END_TEST;

// A backend that gives neither a total nor a state (the idle rule ends
// the track): nothing is asked for before the status lists it.
GST_START_TEST(test_no_speculation_without_total) {
  server::Options opts;
  opts.total_unknown = true;
  opts.reveal_every = 1;
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts, 4.5);
  srv->add_track("idle", track);
  play_exact(*srv, "idle", track, "idle-timeout=1.5");
  auto reqs = segment_requests(*srv);
  for (const auto &r : reqs) fail_unless_equals_int(r.http_status, 200);
  fail_unless_equals_int(int(reqs.size()), int(track.segments.size()));
}
GST_END_TEST;

// A track complete at the first status: no speculative request at all.
GST_START_TEST(test_no_speculation_when_complete) {
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts, 7.5);
  srv->add_track("done", track);
  play_exact(*srv, "done", track, "");
  auto reqs = segment_requests(*srv);
  fail_unless_equals_int(int(reqs.size()), int(track.segments.size()));
  for (const auto &r : reqs) fail_unless_equals_int(r.http_status, 200);
}
GST_END_TEST;

// The tail asked beside a body (tail-prefetch, for an m4a's moov) goes
// only with a segment read before the track's form is known: segment 0's
// suffix, the default 16096 bytes from the default segment lengths. Once
// segment 0 showed ADTS, none goes with a segment that playback waits for
// while the backend makes it (asked when playback reaches it, the case a
// suffix would go with), nor with a seek's target.
GST_START_TEST(test_no_tail_once_not_mp4) {
  server::Options opts;
  opts.reveal_every = 0.5;
  auto produced = start_server(opts);
  auto sought = start_server();
  server::Track track = make_track(media::Form::Adts, 7.5);  // 1.5 + 3 + 3 s
  produced->add_track("adts", track);
  sought->add_track("adts", track);
  play_frames(*produced, "adts", "");
  play_frames(*sought, "adts", "max-concurrent=1", 5 * GST_SECOND);  // into segment 2
  for (server::Server *srv : {produced.get(), sought.get()}) {
    auto ranged = ranged_requests(*srv);
    fail_unless_equals_int(int(ranged.size()), 1);
    fail_unless_equals_int(int(ranged[0].segment), 0);
    fail_unless_equals_string(ranged[0].range.c_str(), "bytes=-16096");
  }
  // The seek's target was asked (after segment 0).
  auto reqs = segment_requests(*sought);
  fail_unless(std::any_of(reqs.begin(), reqs.end(), [](const auto &r) { return r.segment == 2; }));
}
GST_END_TEST;

// tail-prefetch=0: not even segment 0's suffix.
GST_START_TEST(test_tail_prefetch_off) {
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts, 7.5);
  srv->add_track("off", track);
  play_frames(*srv, "off", "tail-prefetch=0");
  fail_unless(ranged_requests(*srv).empty(), "a Range request: %s",
              ranged_requests(*srv)[0].range.c_str());
  fail_unless_equals_int(int(segment_requests(*srv).size()), int(track.segments.size()));
}
GST_END_TEST;

static Suite *speculative_suite() {
  Suite *s = suite_create("speculative");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_speculative_on);
  tcase_add_test(tc, test_speculative_off);
  tcase_add_test(tc, test_speculative_rate_floor);
  tcase_add_test(tc, test_no_speculation_without_total);
  tcase_add_test(tc, test_no_speculation_when_complete);
  tcase_add_test(tc, test_no_tail_once_not_mp4);
  tcase_add_test(tc, test_tail_prefetch_off);
  return s;
}

GST_CHECK_MAIN(speculative)
