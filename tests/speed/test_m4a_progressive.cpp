// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — m4a first audio before the whole segment (issue 11):
 * join=timeline reads an m4a segment whose moov follows its mdat while it
 * arrives, the moov fetched apart with a Range request: segment 0's with a
 * suffix Range sent with its body, the others' from the mdat's end once
 * the head shows it (segdlsrc's gstsegdlsrc-mp4.cpp on Mp4Progressive and
 * Downloader::prefetch_tail()/request_tail()).
 *
 * Conditions, not timing: segdl-server stalls each segment's body at its
 * half for a minute ("stall" fault), and the test ends the stall
 * (Server::end_stalls()) only once it has seen a buffer of that segment, so
 * the buffer left the element before the body was whole; the request log
 * shows the body still in flight then and the tail answered 206. The
 * output (every frame, pts and duration, the caps) must equal the
 * whole-segment path's, which a server without Range gets; seeks too.
 * Segments made by ffmpeg (`-f segment`, timestamps kept and reset: edit
 * lists with and without leading empty edits). tail-prefetch=0: segment
 * 0's moov asked like the others'. And the rule that no buffer leaves
 * while a BUFFERING below 100 is posted, with an application that pauses
 * on it as gst-launch-1.0 does (test_no_push_while_buffering).
 */
#include "../timeline/ffmpeg.h"

#include "segdl/mp4.h"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

using namespace segdl;
using namespace segdl::test;

namespace {

// ffmpeg's AAC in m4a cut at 1.5 s + 3 s: 3 segments.
const ff::Form kKept = {
    "aac/m4a kept", {"-c:a", "aac", "-b:a", "64k"}, "mp4", "m4a", "audio/mp4", false, 7.5, 44100,
    false};
const ff::Form kReset = {"aac/m4a reset",
                         {"-c:a", "aac", "-b:a", "64k"},
                         "mp4",
                         "m4a",
                         "audio/mp4",
                         true,
                         7.5,
                         44100,
                         false};

// Made once per test process, only the form the test uses.
const ff::Fixture &fixture_of(const ff::Form &f) {
  if (&f == &kKept) {
    static ff::Fixture kept(kKept);
    return kept;
  }
  static ff::Fixture reset(kReset);
  return reset;
}

constexpr double kStallS = 60;  // a held body: ended by the test, long before this

struct Output;

// What the appsink got, and a condition to wait on it.
struct Sink {
  std::mutex lock;
  std::condition_variable cond;
  std::vector<Bytes> frames;
  std::vector<GstClockTime> pts, durations;
  GstCaps *caps = nullptr;
  ~Sink() { gst_clear_caps(&caps); }
  void clear() {
    std::lock_guard<std::mutex> g(lock);
    frames.clear();
    pts.clear();
    durations.clear();
  }
  void take(Output &out);  // moves what was collected into `out`
  GstClockTime last_pts() {  // of the last buffer, 0 before any
    std::lock_guard<std::mutex> g(lock);
    return pts.empty() || !GST_CLOCK_TIME_IS_VALID(pts.back()) ? 0 : pts.back();
  }
};

GstFlowReturn on_sample(GstAppSink *appsink, gpointer data) noexcept {
  auto *s = static_cast<Sink *>(data);
  GstSample *sample = gst_app_sink_pull_sample(appsink);
  if (!sample) return GST_FLOW_ERROR;
  GstBuffer *buf = gst_sample_get_buffer(sample);
  GstMapInfo map;
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    std::lock_guard<std::mutex> g(s->lock);
    s->frames.emplace_back(map.data, map.data + map.size);
    s->pts.push_back(GST_BUFFER_PTS(buf));
    s->durations.push_back(GST_BUFFER_DURATION(buf));
    if (!s->caps && gst_sample_get_caps(sample))
      s->caps = gst_caps_copy(gst_sample_get_caps(sample));
    gst_buffer_unmap(buf, &map);
  }
  s->cond.notify_all();
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

// Fails on an ERROR (or an EOS, when `eos_ok` is false) waiting on the bus.
bool bus_says_done(GstElement *pipeline, bool eos_ok, int wait_ms) {
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, GstClockTime(wait_ms) * GST_MSECOND,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  gst_object_unref(bus);
  if (!msg) return false;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg, &err, &dbg);
    std::string text = std::string(err ? err->message : "?") + " (" + (dbg ? dbg : "") + ")";
    g_clear_error(&err);
    g_free(dbg);
    gst_message_unref(msg);
    ck_abort_msg("ERROR: %s", text.c_str());
  }
  gst_message_unref(msg);
  fail_unless(eos_ok, "EOS before the awaited buffer");
  return true;
}

// Waits (bounded) until the sink got a buffer with pts >= `pts`.
void wait_buffer_from(GstElement *pipeline, Sink &sink, GstClockTime pts) {
  const gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  for (;;) {
    {
      std::unique_lock<std::mutex> g(sink.lock);
      for (GstClockTime p : sink.pts)
        if (GST_CLOCK_TIME_IS_VALID(p) && p >= pts) return;
      sink.cond.wait_for(g, std::chrono::milliseconds(50));
    }
    bus_says_done(pipeline, false, 0);
    fail_unless(g_get_monotonic_time() < deadline,
                "no buffer from %" GST_TIME_FORMAT " in 20 s: the element waits for the whole body",
                GST_TIME_ARGS(pts));
  }
}

// The requests for `segment` (with a Range header or without).
std::vector<server::RequestRecord> segment_requests(const server::Server &srv, int64_t segment,
                                                    bool ranged) {
  std::vector<server::RequestRecord> out;
  for (const auto &r : srv.requests())
    if (r.path == "/stream" && r.segment == segment && r.range.empty() != ranged) out.push_back(r);
  return out;
}

// "bytes=-N": the last N bytes, asked with the body (Downloader::prefetch_tail()).
bool is_suffix(const std::string &range) {
  return g_str_has_prefix(range.c_str(), "bytes=-");
}

// A segment whose buffer the test waits for before its body may go on.
struct Hold {
  int64_t segment;
  GstClockTime from;  // a pts inside the segment's first half
  bool tail = true;   // its moov follows the mdat: fetched apart
};

struct Output {
  std::vector<Bytes> frames;
  std::vector<GstClockTime> pts, durations;
  GstCaps *caps = nullptr;
  ~Output() { gst_clear_caps(&caps); }
};

void Sink::take(Output &out) {
  std::lock_guard<std::mutex> g(lock);
  out.frames = std::move(frames);
  out.pts = std::move(pts);
  out.durations = std::move(durations);
  std::swap(out.caps, caps);
}

// A pipeline playing `id` (join=timeline, `props` added) into an appsink
// whose buffers `sink` collects (`*appsink`: a ref of it). A small
// buffer-size: once BUFFERING (a body held), the element goes on with
// whatever has come, not only with 64 KiB.
GstElement *collecting_pipeline(server::Server &srv, const std::string &id,
                                const std::string &props, Sink &sink, GstElement **appsink) {
  GstElement *p = make_pipeline(srv.base_url(), id, "stall-timeout=120 buffer-size=1024 " + props,
                                "appsink name=sink sync=false");
  *appsink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(*appsink), &cbs, &sink, nullptr);
  return p;
}

// Checks at a held segment's buffer: its body is still in flight (stalled
// at its half) and its tail came apart (a moov after the mdat) or was not
// asked (a moov first); then ends the stall.
void release(server::Server &srv, const std::string &id, const Hold &h) {
  auto bodies = segment_requests(srv, h.segment, false);
  fail_unless(!bodies.empty(), "segment %" G_GINT64_FORMAT " never asked", h.segment);
  fail_unless(bodies.back().end_us == 0,
              "segment %" G_GINT64_FORMAT "'s body was whole before its first buffer", h.segment);
  auto tails = segment_requests(srv, h.segment, true);
  if (h.tail)
    fail_unless(!tails.empty(), "segment %" G_GINT64_FORMAT ": no Range request for its tail",
                h.segment);
  else  // at most the suffix asked with segment 0's body, before its form was known
    for (const auto &t : tails)
      fail_unless(h.segment == 0 && is_suffix(t.range),
                  "segment %" G_GINT64_FORMAT ": a tail (%s) asked for a moov first", h.segment,
                  t.range.c_str());
  srv.end_stalls(id, h.segment);
}

// Plays `id` (join=timeline) into an appsink: holds at each of `holds` in
// order, optionally after a seek to `seek` from PAUSED; to EOS (bounded).
void play(server::Server &srv, const std::string &id, const std::string &props,
          const std::vector<Hold> &holds, Output &out, GstClockTime seek = GST_CLOCK_TIME_NONE,
          const std::function<void()> &before_seek = {}) {
  Sink sink;
  GstElement *appsink = nullptr;
  GstElement *p = collecting_pipeline(srv, id, props, sink, &appsink);
  if (GST_CLOCK_TIME_IS_VALID(seek)) {
    fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                           GST_STATE_CHANGE_SUCCESS);
    if (before_seek) before_seek();
    fail_unless(gst_element_seek_simple(
        p, GST_FORMAT_TIME, GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE), seek));
    fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                           GST_STATE_CHANGE_SUCCESS);
    sink.clear();  // the preroll before the seek
  }
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  for (const Hold &h : holds) {
    wait_buffer_from(p, sink, h.from);
    release(srv, id, h);
  }
  const gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  while (!bus_says_done(p, true, 100))
    fail_unless(g_get_monotonic_time() < deadline, "no EOS in 30 s");
  fail_unless(gst_element_set_state(p, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(appsink);
  gst_object_unref(p);
  sink.take(out);
}

// Every frame, pts and duration, and the caps, equal.
void check_same(const Output &got, const Output &want) {
  fail_unless(!want.frames.empty());
  fail_unless_equals_int(int(got.frames.size()), int(want.frames.size()));
  for (size_t i = 0; i < want.frames.size(); i++) {
    fail_unless(got.frames[i] == want.frames[i], "frame %zu differs", i);
    fail_unless(got.pts[i] == want.pts[i],
                "frame %zu: pts %" GST_TIME_FORMAT " instead of %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(got.pts[i]), GST_TIME_ARGS(want.pts[i]));
    fail_unless(got.durations[i] == want.durations[i],
                "frame %zu: duration %" GST_TIME_FORMAT " instead of %" GST_TIME_FORMAT, i,
                GST_TIME_ARGS(got.durations[i]), GST_TIME_ARGS(want.durations[i]));
  }
  fail_unless(got.caps && want.caps && gst_caps_is_equal(got.caps, want.caps));
}

// The whole-segment path: a server without Range. Segment 0's body held
// until its tail was asked (and refused, 200), so the element did ask.
void play_without_range(const server::Track &track, Output &out,
                        GstClockTime seek = GST_CLOCK_TIME_NONE) {
  server::Options opts;
  opts.ranges = false;
  auto srv = start_server(opts);
  srv->add_track("w", track);
  if (!GST_CLOCK_TIME_IS_VALID(seek)) {
    srv->add_fault(fault("stall", "w", 0, 1, kStallS));
    // Released once the Range request shows up (the element asked, the
    // server will ignore it).
    std::thread releaser([&srv] {
      for (size_t n = 1; n < 64; n++) {
        if (!srv->wait_requests(n, 20000)) return;
        if (!segment_requests(*srv, 0, true).empty()) break;
      }
      srv->end_stalls("w", 0);
    });
    play(*srv, "w", "", {}, out);
    releaser.join();
  } else {
    play(*srv, "w", "", {}, out, seek);
  }
  fail_unless(srv->wait_idle(10000));
  for (const auto &r : srv->requests()) fail_unless(r.http_status != 206, "a 206 without Range");
  if (!GST_CLOCK_TIME_IS_VALID(seek)) {
    // One Range request, the suffix with segment 0's body: answered 200
    // (Range ignored: read whole), and no tail is asked again.
    int ranged = 0;
    for (const auto &r : srv->requests()) ranged += r.range.empty() ? 0 : 1;
    fail_unless_equals_int(ranged, 1);
    auto tails = segment_requests(*srv, 0, true);
    fail_unless_equals_int(int(tails.size()), 1);
    fail_unless(is_suffix(tails[0].range), "segment 0's tail: %s", tails[0].range.c_str());
    fail_unless_equals_int(tails[0].http_status, 200);
  }
}

// Every segment read while it arrives (held at its half until one of its
// buffers is out), and the output the whole-segment path's. With
// `prefetch` false (tail-prefetch=0), segment 0's tail too is asked from
// its mdat's end, once its head is in.
void check_form(const ff::Form &form, bool prefetch = true) {
  const ff::Fixture &fx = fixture_of(form);
  const int64_t total = int64_t(fx.segments().size());
  fail_unless_equals_int(int(total), 3);
  auto srv = start_server();
  srv->add_track("p", fx.track());
  std::vector<Hold> holds = {
      {0, 0}, {1, GstClockTime(1.6 * GST_SECOND)}, {2, GstClockTime(4.6 * GST_SECOND)}};
  for (const Hold &h : holds) srv->add_fault(fault("stall", "p", h.segment, 1, kStallS));
  Output progressive, whole;
  play(*srv, "p", prefetch ? "" : "tail-prefetch=0", holds, progressive);
  fail_unless(srv->wait_idle(10000));
  for (int64_t k = 0; k < total; k++) {
    // Segment 0's tail is the suffix asked with its body (one round trip
    // to first audio); the others' are asked from their mdat's end.
    auto tails = segment_requests(*srv, k, true);
    fail_unless_equals_int(int(tails.size()), 1);
    fail_unless_equals_int(tails[0].http_status, 206);
    fail_unless(is_suffix(tails[0].range) == (prefetch && k == 0),
                "segment %" G_GINT64_FORMAT ": %s", k, tails[0].range.c_str());
    auto bodies = segment_requests(*srv, k, false);
    fail_unless_equals_int(int(bodies.size()), 1);
    fail_unless_equals_int(bodies[0].http_status, 200);
  }
  play_without_range(fx.track(), whole);
  check_same(progressive, whole);
}

// ---- the BUFFERING rule -----------------------------------------------

// What segdlsrc posted and pushed, in its streaming thread's own order: a
// sync handler sees each BUFFERING as it is posted, a pad probe each buffer
// as it leaves. `broken`: a buffer left while the last BUFFERING posted was
// below 100.
struct BufferingRule {
  GstElement *src = nullptr;
  std::mutex lock;
  std::vector<int> posted;
  bool broken = false;
  int broken_percent = 0;
  GstClockTime broken_pts = GST_CLOCK_TIME_NONE;
  int current() {
    std::lock_guard<std::mutex> g(lock);
    return posted.empty() ? 100 : posted.back();
  }
  size_t count() {
    std::lock_guard<std::mutex> g(lock);
    return posted.size();
  }
  void check() {
    std::lock_guard<std::mutex> g(lock);
    fail_unless(!broken,
                "a buffer (pts %" GST_TIME_FORMAT
                ") left segdlsrc while BUFFERING %d %% was posted",
                GST_TIME_ARGS(broken_pts), broken_percent);
  }
};

GstBusSyncReply on_sync_message(GstBus *, GstMessage *msg, gpointer data) noexcept {
  auto *rule = static_cast<BufferingRule *>(data);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_BUFFERING &&
      GST_MESSAGE_SRC(msg) == GST_OBJECT(rule->src)) {
    gint pct = 0;
    gst_message_parse_buffering(msg, &pct);
    std::lock_guard<std::mutex> g(rule->lock);
    rule->posted.push_back(pct);
  }
  return GST_BUS_PASS;
}

GstPadProbeReturn on_src_buffer(GstPad *, GstPadProbeInfo *info, gpointer data) noexcept {
  auto *rule = static_cast<BufferingRule *>(data);
  std::lock_guard<std::mutex> g(rule->lock);
  const int pct = rule->posted.empty() ? 100 : rule->posted.back();
  if (pct < 100 && !rule->broken) {
    rule->broken = true;
    rule->broken_percent = pct;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (buf) rule->broken_pts = GST_BUFFER_PTS(buf);
  }
  return GST_PAD_PROBE_OK;
}

// The application: gst-launch-1.0's rule. A BUFFERING below 100 pauses a
// pipeline that was meant to play; 100 sets it playing again.
struct PausingApp {
  GstElement *pipeline;
  bool buffering = false;
  size_t handled = 0;  // BUFFERING messages acted on
  bool eos = false;
  // Acts on the bus messages there, waiting at most `wait_ms` for the
  // first; fails on an ERROR.
  void step(int wait_ms) {
    GstBus *bus = gst_element_get_bus(pipeline);
    GstClockTime wait = GstClockTime(wait_ms) * GST_MSECOND;
    const auto types = GstMessageType(GST_MESSAGE_BUFFERING | GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    while (GstMessage *msg = gst_bus_timed_pop_filtered(bus, wait, types)) {
      wait = 0;
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        GError *err = nullptr;
        gst_message_parse_error(msg, &err, nullptr);
        std::string text = err ? err->message : "?";
        g_clear_error(&err);
        gst_message_unref(msg);
        gst_object_unref(bus);
        ck_abort_msg("ERROR: %s", text.c_str());
      }
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) eos = true;
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_BUFFERING) {
        gint pct = 0;
        gst_message_parse_buffering(msg, &pct);
        handled++;
        if (pct == 100) {
          buffering = false;
          gst_element_set_state(pipeline, GST_STATE_PLAYING);
        } else {
          if (!buffering) gst_element_set_state(pipeline, GST_STATE_PAUSED);
          buffering = true;
        }
      }
      gst_message_unref(msg);
    }
    gst_object_unref(bus);
  }
};

// The tails asked for `segment` from its mdat's end (not a suffix).
std::vector<server::RequestRecord> mdat_tails(const server::Server &srv, int64_t segment) {
  std::vector<server::RequestRecord> out;
  for (const auto &r : segment_requests(srv, segment, true))
    if (!is_suffix(r.range)) out.push_back(r);
  return out;
}

// What a failed wait saw: the BUFFERING percentages posted (and how many the
// app acted on), and segment 1's requests (Range, status, whether ended).
std::string wait_state(PausingApp &app, BufferingRule &rule, const server::Server &srv) {
  std::string out = "BUFFERING posted:";
  {
    std::lock_guard<std::mutex> g(rule.lock);
    for (int pct : rule.posted) out += " " + std::to_string(pct);
  }
  out += " (" + std::to_string(app.handled) + " handled); segment 1's requests:";
  for (const auto &r : srv.requests()) {
    if (r.path != "/stream" || r.segment != 1) continue;
    out += " [" + (r.range.empty() ? std::string("body") : r.range) + " " +
           std::to_string(r.http_status) + (r.end_us ? " ended]" : " open]");
  }
  return out;
}

// Runs the app (and checks the rule) until `done` holds, at most 45 s (a
// loaded machine: it took 20 s once in a suite run at load 24, cause not
// known; the message says what the wait saw).
void run_until(PausingApp &app, BufferingRule &rule, const server::Server &srv, const char *what,
               const std::function<bool()> &done) {
  const gint64 deadline = g_get_monotonic_time() + 45 * G_USEC_PER_SEC;
  for (;;) {
    app.step(50);
    rule.check();
    if (done()) return;
    if (g_get_monotonic_time() >= deadline)
      ck_abort_msg("not in 45 s: %s; %s", what, wait_state(app, rule, srv).c_str());
  }
}

}  // namespace

// ffmpeg's `-f segment` keeping timestamps: leading empty edits.
GST_START_TEST(test_kept) {
  check_form(kKept);
}
GST_END_TEST;

// ...with -reset_timestamps 1: an edit list from 0.
GST_START_TEST(test_reset) {
  check_form(kReset);
}
GST_END_TEST;

// tail-prefetch=0: no suffix with segment 0's body; its moov too is asked
// from the mdat's end, and its frames still leave before its body is whole.
GST_START_TEST(test_no_prefetch) {
  check_form(kKept, false);
}
GST_END_TEST;

// A seek into segment 2 (4.5-7.5 s), held at its half: the first buffer
// after the seek is the target's, before segment 2's body is whole, and
// what follows equals the whole-segment path's.
GST_START_TEST(test_seek) {
  const GstClockTime target = 5 * GST_SECOND;
  auto srv = start_server();
  srv->add_track("s", fixture_of(kKept).track());
  Output progressive, whole;
  // One transfer at a time: segment 2 is not asked before the seek.
  play(*srv, "s", "max-concurrent=1", {{2, target}}, progressive, target,
       [&srv] { srv->add_fault(fault("stall", "s", 2, 1, kStallS)); });
  fail_unless(srv->wait_idle(10000));
  auto tails = segment_requests(*srv, 2, true);
  fail_unless_equals_int(int(tails.size()), 1);
  fail_unless_equals_int(tails[0].http_status, 206);
  play_without_range(fixture_of(kKept).track(), whole, target);
  fail_unless(!progressive.pts.empty());
  fail_unless_equals_uint64(progressive.pts[0], target);
  check_same(progressive, whole);
}
GST_END_TEST;

// `-movflags +faststart` (ffmpeg's segments remuxed): the moov is read
// from the head, no tail is asked (but the suffix that goes with segment
// 0's body while the form is not known), the frames leave before the body is
// whole, and the output equals that of the same remux with the moov last,
// read whole (a remux writes its own edit list).
GST_START_TEST(test_moov_first) {
  const ff::Fixture &fx = fixture_of(kKept);
  server::Track track = fx.track(), last = fx.track();
  for (size_t k = 0; k < track.segments.size(); k++) {
    const std::string n = std::to_string(k), in = fx.dir() + "/seg_" + n + ".m4a";
    const std::string first_path = fx.dir() + "/first_" + n + ".m4a";
    const std::string last_path = fx.dir() + "/last_" + n + ".m4a";
    ff::run_ffmpeg({"-i", in, "-c", "copy", "-movflags", "+faststart", first_path});
    ff::run_ffmpeg({"-i", in, "-c", "copy", last_path});
    track.segments[k] = ff::read_file(first_path);
    last.segments[k] = ff::read_file(last_path);
    Mp4Layout l;
    fail_unless(scan_mp4_layout(track.segments[k].data(), track.segments[k].size(), l));
    fail_unless(l.has_moov && l.moov_before_mdat, "segment %zu: the moov is not first", k);
  }
  auto srv = start_server();
  srv->add_track("f", track);
  std::vector<Hold> holds = {{0, 0, false},
                             {1, GstClockTime(1.6 * GST_SECOND), false},
                             {2, GstClockTime(4.6 * GST_SECOND), false}};
  for (const Hold &h : holds) srv->add_fault(fault("stall", "f", h.segment, 1, kStallS));
  Output progressive, whole;
  play(*srv, "f", "", holds, progressive);
  fail_unless(srv->wait_idle(10000));
  for (const auto &r : srv->requests())  // but the suffix asked with segment 0's body
    fail_unless(r.range.empty() || (r.segment == 0 && is_suffix(r.range)), "a Range request: %s",
                r.range.c_str());
  play_without_range(last, whole);
  check_same(progressive, whole);
}
GST_END_TEST;

// The rule behind 5920f40: no buffer leaves segdlsrc while the last
// BUFFERING it posted is below 100. An application that pauses on
// BUFFERING < 100 (gst-launch-1.0: 16 m4a tracks in one gst-launch hung
// before 5920f40) never hears the 100 of a source blocked in a push into
// the paused pipeline. segdl-server holds segment 1's body at its half and
// the tail asked from its mdat's end; once the element buffers for the
// rest and the application has paused for it, the tail is let go, and
// only once it has been sent whole, the body: the tail comes while the
// element buffers, and its frames must wait for the 100. With the tail
// taken while buffering (the code before 5920f40) a buffer leaves at 0 %
// (and the pipeline hangs): 20 of 21 runs failed so. Known gap: a BUFFERING
// below 100 posted while segment 1's first half still arrives (a loaded
// machine) ends by itself; if the tail is let go then, it comes after
// that 100 and the old code passes too (the likely cause of the one run).
GST_START_TEST(test_no_push_while_buffering) {
  const ff::Fixture &fx = fixture_of(kKept);
  auto srv = start_server();
  srv->add_track("b", fx.track());
  srv->add_fault(fault("stall", "b", 1, 2, kStallS));  // segment 1's body, then its tail
  Sink sink;
  GstElement *appsink = nullptr;
  // tail-prefetch=0: segment 1's tail is asked from its mdat's end, however
  // far the element got before segment 1's request (with a prefetch, a
  // segment the element already waits for gets a suffix with its body).
  GstElement *p = collecting_pipeline(*srv, "b", "tail-prefetch=0", sink, &appsink);
  BufferingRule rule;
  rule.src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstBus *bus = gst_element_get_bus(p);
  gst_bus_set_sync_handler(bus, on_sync_message, &rule, nullptr);
  GstPad *pad = gst_element_get_static_pad(rule.src, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_src_buffer, &rule, nullptr);
  PausingApp app{p};
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  // Segment 1's tail is asked once its head is read, i.e. after segment
  // 0's frames: a BUFFERING below 100 posted since is segment 1's. The app
  // has acted on every one posted.
  run_until(app, rule, *srv, "segment 1's tail asked and BUFFERING < 100 for it", [&] {
    return !mdat_tails(*srv, 1).empty() && rule.current() < 100 && app.handled == rule.count();
  });
  fail_unless(app.buffering);
  // The tail comes while the body stays held at its half: the frames of
  // that half are in, so buffering ends (100 posted, then they go out).
  // (Once they are out, the element waits for the body again: a BUFFERING
  // below 100 may follow.)
  const size_t posted_before = rule.count();
  srv->end_stalls("b", 1, true);
  const GstClockTime in_segment_1 = GstClockTime(1.6 * GST_SECOND);  // it begins at 1.5 s
  run_until(app, rule, *srv, "BUFFERING 100 and segment 1's frames out, its body held", [&] {
    std::lock_guard<std::mutex> g(rule.lock);
    auto from = rule.posted.begin() + long(posted_before);
    return std::find(from, rule.posted.end(), 100) != rule.posted.end() &&
           sink.last_pts() >= in_segment_1;
  });
  auto bodies = segment_requests(*srv, 1, false);
  fail_unless(bodies.size() == 1 && bodies[0].end_us == 0,
              "segment 1's body was not held while its first frames went out");
  srv->end_stalls("b", 1);
  run_until(app, rule, *srv, "EOS", [&] { return app.eos; });
  fail_unless(gst_element_set_state(p, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(pad);
  gst_object_unref(bus);
  gst_object_unref(rule.src);
  gst_object_unref(appsink);
  gst_object_unref(p);
  fail_unless(srv->wait_idle(10000));
  auto tails = mdat_tails(*srv, 1);
  fail_unless_equals_int(int(tails.size()), 1);
  fail_unless_equals_int(tails[0].http_status, 206);
  // It buffered (below 100, then 100), and the output is the whole track.
  auto low = std::find_if(rule.posted.begin(), rule.posted.end(), [](int v) { return v < 100; });
  fail_unless(low != rule.posted.end() &&
              std::find(low, rule.posted.end(), 100) != rule.posted.end());
  Output got, whole;
  sink.take(got);
  play_without_range(fx.track(), whole);
  check_same(got, whole);
}
GST_END_TEST;

static Suite *m4a_progressive_suite() {
  Suite *s = suite_create("m4a-progressive");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_kept);
  tcase_add_test(tc, test_reset);
  tcase_add_test(tc, test_no_prefetch);
  tcase_add_test(tc, test_seek);
  tcase_add_test(tc, test_moov_first);
  tcase_add_test(tc, test_no_push_while_buffering);
  return s;
}

int main(int argc, char **argv) {
  if (!ff::have_ffmpeg()) {
    g_print("SKIP: ffmpeg is not installed (scripts/setup.sh installs it)\n");
    return 77;
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(m4a_progressive_suite(), "m4a-progressive", __FILE__);
}
