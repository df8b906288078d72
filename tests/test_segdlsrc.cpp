// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdlsrc end to end against the in-process reference server:
 * byte-exact output for every continuous form and every status style,
 * decoding, progressive availability and buffering, scheduling order and
 * concurrency, errors (domain, code, text, details), state changes, the URI
 * handler and statistics.
 */
#include "harness.h"

#include "segdl/clock.h"

#include <algorithm>
#include <condition_variable>

using namespace segdl;
using namespace segdl::test;

namespace {

const media::Form kForms[] = {media::Form::Adts, media::Form::Mp3, media::Form::MpegTs};

struct Style {
  const char *name;
  server::StatusStyle style;
  bool total_unknown;
};
const Style kStyles[] = {
    {"bare", server::StatusStyle::Bare, false},
    {"rich", server::StatusStyle::Rich, false},
    {"no-total", server::StatusStyle::Bare, true},
};

int count_segment_requests(const std::vector<server::RequestRecord> &reqs, int64_t seg) {
  int n = 0;
  for (const auto &r : reqs)
    if (r.path == "/stream" && r.segment == seg) n++;
  return n;
}

}  // namespace

// Every continuous form under every status style: the bytes out are exactly
// the served segments, concatenated, and EOS arrives (for the style with no
// total, by the idle rule).
GST_START_TEST(test_bytes_exact) {
  const media::Form form = kForms[__i__ / 3];
  const Style &style = kStyles[__i__ % 3];
  GST_INFO("form %s, status %s", media::form_name(form), style.name);
  server::Options opts;
  opts.status_style = style.style;
  opts.total_unknown = style.total_unknown;
  auto srv = start_server(opts);
  server::Track track = make_track(form);
  Bytes expected = concat(track.segments);
  fail_unless(track.segments.size() == 4, "fixture has %zu segments", track.segments.size());
  srv->add_track("abc", track);

  GstElement *p = make_pipeline(srv->base_url(), "abc", "join=bytes idle-timeout=0.5",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_if(run.timed_out, "no EOS in time (%s/%s)", media::form_name(form), style.name);
  fail_unless(run.error == nullptr, "error: %s", run.error ? run.error->message : "");
  fail_unless(run.eos);
  fail_unless_equals_uint64(run.bytes.size(), expected.size());
  fail_unless(run.bytes == expected, "output differs from the served bytes");
  // Each segment was fetched exactly once.
  auto reqs = srv->requests();
  for (int64_t n = 0; n < 4; n++) fail_unless_equals_int(count_segment_requests(reqs, n), 1);
  fail_unless_equals_int(count_segment_requests(reqs, 4), 0);
}
GST_END_TEST;

// The joined stream decodes to the length of the encode.
GST_START_TEST(test_decodes_to_duration) {
  const media::Form form = kForms[__i__];
  auto srv = start_server();
  srv->add_track("abc", make_track(form));
  const media::Encoded &enc = fixture(form);
  GstElement *p = make_pipeline(
      srv->base_url(), "abc", "",
      "decodebin ! audioconvert ! audio/x-raw,format=S16LE ! appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s: no clean EOS", media::form_name(form));
  // PCM bytes -> duration: the sample count is what a listener gets.
  GstClockTime pcm =
      gst_util_uint64_scale(run.bytes.size() / (2 * enc.channels), GST_SECOND, enc.sample_rate);
  GstClockTime diff = pcm > enc.duration_ns ? pcm - enc.duration_ns : enc.duration_ns - pcm;
  GST_INFO("%s: decoded %" GST_TIME_FORMAT ", encoded %" GST_TIME_FORMAT, media::form_name(form),
           GST_TIME_ARGS(pcm), GST_TIME_ARGS(enc.duration_ns));
  // Within two codec frames (encoder priming/padding), never a segment short.
  fail_unless(diff <= 60 * GST_MSECOND, "%s: decoded %" GST_TIME_FORMAT " vs %" GST_TIME_FORMAT,
              media::form_name(form), GST_TIME_ARGS(pcm), GST_TIME_ARGS(enc.duration_ns));
}
GST_END_TEST;

// Segments revealed one by one: the output is still complete and in order,
// and the element posted BUFFERING below 100 while it waited, then 100.
GST_START_TEST(test_progressive_buffering) {
  server::Options opts;
  opts.reveal_every = 0.4;
  auto [srv, track, expected] = serve_adts(opts, "live");
  GstElement *p =
      make_pipeline(srv->base_url(), "live", "join=bytes", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == expected);
  fail_unless(!run.buffering.empty(), "no BUFFERING message");
  fail_unless(*std::min_element(run.buffering.begin(), run.buffering.end()) < 100);
  fail_unless_equals_int(run.buffering.back(), 100);
  // Only changes are posted.
  for (size_t i = 1; i < run.buffering.size(); i++)
    fail_if(run.buffering[i] == run.buffering[i - 1], "BUFFERING %d posted twice in a row",
            run.buffering[i]);
  // Segment k was asked for only once it existed or at most a few times
  // before (404 + Retry-After): never in a tight loop.
  auto reqs = srv->requests();
  for (int64_t n = 0; n < 4; n++) fail_unless(count_segment_requests(reqs, n) <= 3);
}
GST_END_TEST;

// A download window that holds fewer bytes than buffer-size ends BUFFERING:
// the engine fetches nothing past its window until the element takes some,
// so waiting for buffer-size bytes would wait for ever. Every response comes
// 300 ms late, so the element's first wait (100 ms) runs out and it starts
// BUFFERING before anything is in; max-concurrent=1 makes the window two
// segments of four, all ready. (Before: no EOS, BUFFERING stuck below 100;
// a slow machine hit it with small Vorbis segments and the default size.)
GST_START_TEST(test_window_full_ends_buffering) {
  server::Options opts;
  opts.latency_ms = 300;
  auto [srv, track, expected] = serve_adts(opts, "small");
  fail_unless(expected.size() < 4000000);
  GstElement *p =
      make_pipeline(srv->base_url(), "small", "join=bytes max-concurrent=1 buffer-size=4000000",
                    "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_if(run.timed_out, "no EOS in 60 s: BUFFERING %s",
          run.buffering.empty() ? "never posted" : std::to_string(run.buffering.back()).c_str());
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == expected, "output differs from the served bytes");
  fail_unless(!run.buffering.empty() && run.buffering.front() < 100,
              "the element did not start BUFFERING: the test proves nothing");
  fail_unless_equals_int(run.buffering.back(), 100);
}
GST_END_TEST;

// While it waits, the element answers the BUFFERING query: busy, below 100.
GST_START_TEST(test_buffering_query) {
  auto srv = start_server();
  srv->add_track("w", make_track(media::Form::Adts));
  srv->add_fault(fault("notready", "w", 0, -1, 1));
  GstElement *p = make_pipeline(srv->base_url(), "w", "", "fakesink");
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstBus *bus = gst_element_get_bus(p);
  gst_element_set_state(p, GST_STATE_PAUSED);
  GstMessage *m = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_BUFFERING);
  fail_unless(m != nullptr, "no BUFFERING while waiting");
  gint pct = 100;
  gst_message_parse_buffering(m, &pct);
  fail_unless(pct < 100);
  gst_message_unref(m);
  GstQuery *q = gst_query_new_buffering(GST_FORMAT_TIME);
  fail_unless(gst_element_query(src, q));
  gboolean busy = FALSE;
  gst_query_parse_buffering_percent(q, &busy, &pct);
  fail_unless(busy && pct < 100, "busy %d, %d%%", busy, pct);
  GstBufferingMode mode;
  gst_query_parse_buffering_stats(q, &mode, nullptr, nullptr, nullptr);
  fail_unless_equals_int(mode, GST_BUFFERING_STREAM);
  gst_query_unref(q);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(src);
  gst_object_unref(p);
}
GST_END_TEST;

// Segment 0 goes out at once, with the first status; no other segment is
// asked for before it; at no time more than max-concurrent segment requests
// are in flight, and downloads do overlap. The server holds the first status
// answer until segment 0 is asked for (up to 30 s): an element that waits
// for the status first asks after the status answer, whatever the machine's
// speed (the order of requests decides, not their times).
GST_START_TEST(test_scheduling) {
  server::Options opts;
  opts.latency_ms = 150;
  opts.bandwidth_kbps = 1500;
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Mp3, 16.5);  // 6 segments
  fail_unless_equals_int(track.segments.size(), 6);
  Bytes expected = concat(track.segments);
  srv->add_track("sched", track);
  srv->add_fault(fault("statushold", "sched", -1, 1, 30));
  GstElement *p = make_pipeline(srv->base_url(), "sched", "join=bytes max-concurrent=2",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == expected);

  auto reqs = srv->requests();
  std::sort(reqs.begin(), reqs.end(),
            [](const server::RequestRecord &a, const server::RequestRecord &b) {
              return a.start_us < b.start_us;
            });
  const server::RequestRecord *first_status = nullptr, *first_segment = nullptr;
  for (const auto &r : reqs) {
    if (r.path == "/status" && !first_status) first_status = &r;
    if (r.path == "/stream" && !first_segment) first_segment = &r;
  }
  fail_unless(first_status && first_segment);
  fail_unless_equals_int(first_segment->segment, 0);
  // In parallel with the status, not after it.
  fail_unless(first_segment->start_us < first_status->end_us,
              "segment 0 waited for the status answer");
  int in_flight = srv->max_segment_requests_in_flight();
  fail_unless(in_flight <= 2, "%d segment requests in flight, max-concurrent=2", in_flight);
  fail_unless(in_flight == 2, "downloads never overlapped");
}
GST_END_TEST;

static void check_error(const Run &run, GstResourceError code, const char *text) {
  fail_if(run.timed_out, "no ERROR in time");
  fail_unless(run.error != nullptr, "no ERROR");
  fail_unless(run.error->domain == GST_RESOURCE_ERROR, "domain %s",
              g_quark_to_string(run.error->domain));
  fail_unless_equals_int(run.error->code, code);
  fail_unless(strstr(run.error->message, text) != nullptr, "message '%s' lacks '%s'",
              run.error->message, text);
}

GST_START_TEST(test_error_unreachable) {
  int port;
  {
    auto srv = start_server();
    port = srv->port();
  }  // stopped: the port now refuses connections
  GstElement *p =
      make_pipeline("http://127.0.0.1:" + std::to_string(port), "abc", "max-retries=2", "fakesink");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  check_error(run, GST_RESOURCE_ERROR_OPEN_READ, "");
  fail_unless(strstr(run.error->message, "segment 0") || strstr(run.error->message, "backend"),
              "message '%s' names neither the segment nor the backend", run.error->message);
  // The cause in the transport's own words, in the text users see.
  fail_unless(strstr(run.error->message, "Connection refused"), "message '%s' lacks the cause",
              run.error->message);
  fail_unless(run.error_debug.find("127.0.0.1:" + std::to_string(port)) != std::string::npos,
              "debug '%s' lacks the URL", run.error_debug.c_str());
}
GST_END_TEST;

GST_START_TEST(test_error_state) {
  server::Options opts;
  opts.status_style = server::StatusStyle::Rich;
  auto srv = start_server(opts);
  srv->add_track("bad", make_track(media::Form::Adts));
  srv->add_fault(fault("statuserror", "bad", -1, -1));
  // Segment 0 would succeed; the backend's error still ends the run.
  srv->add_fault(fault("notready", "bad", -1, -1, 1));
  GstElement *p = make_pipeline(srv->base_url(), "bad", "", "fakesink");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  check_error(run, GST_RESOURCE_ERROR_FAILED, "injected failure");
}
GST_END_TEST;

GST_START_TEST(test_error_malformed_status) {
  auto srv = start_server();
  srv->add_track("junk", make_track(media::Form::Adts));
  srv->add_fault(fault("badjson", "junk", -1, -1));
  GstElement *p = make_pipeline(srv->base_url(), "junk", "max-retries=2", "fakesink");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  check_error(run, GST_RESOURCE_ERROR_READ, "malformed status");
}
GST_END_TEST;

// Segment 1 always answers 500: segment 0 is delivered whole, then an ERROR
// names segment 1, with details.
GST_START_TEST(test_error_segment_fails) {
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts);
  Bytes seg0 = track.segments[0];
  srv->add_track("s", track);
  srv->add_fault(fault("http500", "s", 1, -1));
  GstElement *p = make_pipeline(srv->base_url(), "s", "join=bytes max-retries=2",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  check_error(run, GST_RESOURCE_ERROR_OPEN_READ, "segment 1");
  fail_unless(strstr(run.error->message, "500") != nullptr);
  fail_unless(run.bytes == seg0, "segment 0 not delivered before the error");
  fail_unless(run.error_details != nullptr);
  gint64 seg = -1;
  guint status = 0;
  fail_unless(gst_structure_get_int64(run.error_details, "segment", &seg));
  fail_unless(gst_structure_get_uint(run.error_details, "http-status-code", &status));
  fail_unless_equals_int(seg, 1);
  fail_unless_equals_int(status, 500);
  fail_unless(g_str_has_suffix(gst_structure_get_string(run.error_details, "uri"), "segment=1"));
  // 1 attempt + 2 retries.
  fail_unless_equals_int(count_segment_requests(srv->requests(), 1), 3);
}
GST_END_TEST;

// max-wait on the engine's injected clock (segdl::ManualClock): its time
// stands still until segment 0 has reached the sink, however long the
// machine takes to serve and push it; then the test moves it 0.25 s per
// turn while the stream waits for segment 1 (which comes after 100 s), and
// the 1 s budget ends it with an ERROR naming segment 1. Nothing here
// depends on the machine's load.
GST_START_TEST(test_error_max_wait) {
  segdl::ManualClock clock;
  server::Options opts;
  opts.reveal_every = 100;  // segment 1 comes far too late
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("slow", track);
  GstElement *p = make_pipeline(srv->base_url(), "slow", "join=bytes max-wait=1",
                                "appsink name=sink sync=false");
  use_engine_clock(p, clock);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstBus *bus = gst_element_get_bus(p);
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  Bytes got;
  GstMessage *error = nullptr;
  const int64_t start_us = clock.now_us();
  const gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;  // bounds the test
  while (!error && g_get_monotonic_time() < deadline) {
    if (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 100 * GST_MSECOND)) {
      GstMapInfo map;
      GstBuffer *buf = gst_sample_get_buffer(sample);
      fail_unless(gst_buffer_map(buf, &map, GST_MAP_READ));
      got.insert(got.end(), map.data, map.data + map.size);
      gst_buffer_unmap(buf, &map);
      gst_sample_unref(sample);
    }
    error = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (!error && got.size() >= track.segments[0].size()) clock.advance(250000);
  }
  fail_unless(error != nullptr, "no ERROR in time (%zu bytes out)", got.size());
  GError *err = nullptr;
  gst_message_parse_error(error, &err, nullptr);
  fail_unless(err->domain == GST_RESOURCE_ERROR && err->code == GST_RESOURCE_ERROR_NOT_FOUND, "%s",
              err->message);
  fail_unless(strstr(err->message, "segment 1") != nullptr, "%s", err->message);
  fail_unless(strstr(err->message, "max-wait") != nullptr, "%s", err->message);
  fail_unless(got == track.segments[0]);
  // The budget went only on waiting for segment 1: at least 1 s of engine
  // time after segment 0 was out (not a wall-clock assertion: the clock is
  // the test's).
  fail_unless(clock.now_us() - start_us >= 1000000);
  g_error_free(err);
  gst_message_unref(error);
  fail_unless(gst_element_set_state(p, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(p);
}
GST_END_TEST;

GST_START_TEST(test_error_settings) {
  GstElement *src = gst_element_factory_make("segdlsrc", nullptr);
  fail_unless(src != nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(src, bus);
  fail_unless_equals_int(gst_element_set_state(src, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != nullptr);
  GError *err = nullptr;
  gst_message_parse_error(msg, &err, nullptr);
  fail_unless(err->domain == GST_RESOURCE_ERROR && err->code == GST_RESOURCE_ERROR_SETTINGS);
  g_error_free(err);
  gst_message_unref(msg);
  // basesrc adds its own "failed to start" error after ours: drop it.
  gst_bus_set_flushing(bus, TRUE);
  gst_bus_set_flushing(bus, FALSE);
  // A backend that is not http(s).
  g_object_set(src, "backend-url", "ftp://127.0.0.1/", "video-id", "x", nullptr);
  fail_unless_equals_int(gst_element_set_state(src, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != nullptr);
  gst_message_parse_error(msg, &err, nullptr);
  fail_unless(err->code == GST_RESOURCE_ERROR_SETTINGS);
  fail_unless(strstr(err->message, "http") != nullptr);
  g_error_free(err);
  gst_message_unref(msg);
  gst_element_set_state(src, GST_STATE_NULL);
  gst_element_set_bus(src, nullptr);
  gst_object_unref(bus);
  gst_object_unref(src);
}
GST_END_TEST;

// A hostile id travels percent-encoded and reaches the right track.
GST_START_TEST(test_hostile_id) {
  auto srv = start_server();
  server::Track track = make_track(media::Form::Mp3);
  Bytes expected = concat(track.segments);
  const std::string id = "../a b/?c=d&segment=9#e%41";
  srv->add_track(id, track);
  GstElement *p = make_pipeline(srv->base_url(), id, "join=bytes", "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == expected);
  for (const auto &r : srv->requests()) fail_unless(r.video_id == id);
}
GST_END_TEST;

// PLAYING -> NULL at any moment returns promptly and cancels the downloads.
struct FirstBuffer {
  std::mutex lock;
  std::condition_variable cond;
  bool seen = false;
};

static GstPadProbeReturn on_first_buffer(GstPad *, GstPadProbeInfo *, gpointer data) noexcept {
  auto *fb = static_cast<FirstBuffer *>(data);
  {
    std::lock_guard<std::mutex> guard(fb->lock);
    fb->seen = true;
  }
  fb->cond.notify_all();
  return GST_PAD_PROBE_REMOVE;
}

GST_START_TEST(test_stop_mid_download) {
  server::Options opts;
  // Each segment takes seconds: the stops come while transfers are in
  // flight, and a stop that deadlocked would outlast the test's timeout.
  opts.bandwidth_kbps = 40;
  auto srv = start_server(opts);
  srv->add_track("abc", make_track(media::Form::Adts));
  for (int round = 0; round < 15; round++) {
    GstElement *p = make_pipeline(srv->base_url(), "abc", "", "fakesink sync=false");
    GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
    GstPad *pad = gst_element_get_static_pad(src, "src");
    FirstBuffer fb;
    // Half the rounds stop while segment 0 still downloads, half before any byte.
    if (round % 2 == 0)
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_first_buffer, &fb, nullptr);
    fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
    if (round % 2 == 0) {
      std::unique_lock<std::mutex> lock(fb.lock);
      fail_unless(fb.cond.wait_for(lock, std::chrono::seconds(30), [&] { return fb.seen; }),
                  "no first buffer");
    }
    fail_unless_equals_int(gst_element_set_state(p, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    gst_object_unref(pad);
    gst_object_unref(src);
    gst_object_unref(p);
  }
}
GST_END_TEST;

// Properties are copied at start(): a change while running is refused (the
// value stays), in NULL or READY it is taken.
GST_START_TEST(test_properties_locked_while_running) {
  auto srv = start_server();
  srv->add_track("abc", make_track(media::Form::Adts));
  GstElement *p = make_pipeline(srv->base_url(), "abc", "", "fakesink sync=false");
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_unless_equals_int(gst_element_get_state(p, nullptr, nullptr, 20 * GST_SECOND),
                         GST_STATE_CHANGE_SUCCESS);
  guint n = 0;
  g_object_set(src, "max-concurrent", 7u, "video-id", "other", nullptr);
  g_object_get(src, "max-concurrent", &n, nullptr);
  fail_unless_equals_int(n, 3);
  gchar *id = nullptr;
  g_object_get(src, "video-id", &id, nullptr);
  fail_unless_equals_string(id, "abc");
  g_free(id);
  fail_unless_equals_int(gst_element_set_state(p, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  g_object_set(src, "max-concurrent", 7u, nullptr);
  g_object_get(src, "max-concurrent", &n, nullptr);
  fail_unless_equals_int(n, 7);
  fail_unless_equals_int(gst_element_set_state(p, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(src);
  gst_object_unref(p);
}
GST_END_TEST;

GST_START_TEST(test_playbin_uri) {
  auto srv = start_server();
  srv->add_track("demo", make_track(media::Form::Adts));
  std::string uri = "segdl://127.0.0.1:" + std::to_string(srv->port()) + "/demo";
  GstElement *playbin = gst_element_factory_make("playbin", nullptr);
  fail_unless(playbin != nullptr);
  GstElement *asink = gst_element_factory_make("fakesink", nullptr);
  GstElement *vsink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(asink, "sync", FALSE, nullptr);
  g_object_set(playbin, "uri", uri.c_str(), "audio-sink", asink, "video-sink", vsink, nullptr);
  Run run;
  run_pipeline(playbin, run);
  fail_unless(run.error == nullptr, "playbin: %s", run.error ? run.error->message : "");
  fail_unless(run.eos);
  GstElement *source = nullptr;
  g_object_get(playbin, "source", &source, nullptr);
  // After NULL the source may be gone; the run itself is what counts.
  if (source) gst_object_unref(source);
  gst_object_unref(playbin);
  fail_unless_equals_int(count_segment_requests(srv->requests(), 3), 1);
}
GST_END_TEST;

GST_START_TEST(test_uri_handler) {
  GError *err = nullptr;
  GstElement *src =
      gst_element_make_from_uri(GST_URI_SRC, "segdl://example.com:8080/api/x%2Fy", nullptr, &err);
  fail_unless(src != nullptr, "%s", err ? err->message : "");
  gchar *backend = nullptr, *id = nullptr;
  g_object_get(src, "backend-url", &backend, "video-id", &id, nullptr);
  fail_unless_equals_string(backend, "http://example.com:8080/api");
  fail_unless_equals_string(id, "x/y");
  g_free(backend);
  g_free(id);
  gchar *uri = gst_uri_handler_get_uri(GST_URI_HANDLER(src));
  fail_unless_equals_string(uri, "segdl://example.com:8080/api/x%2Fy");
  g_free(uri);
  fail_unless(gst_uri_handler_set_uri(GST_URI_HANDLER(src), "segdls://h/id", nullptr));
  g_object_get(src, "backend-url", &backend, nullptr);
  fail_unless_equals_string(backend, "https://h");
  g_free(backend);
  fail_if(gst_uri_handler_set_uri(GST_URI_HANDLER(src), "segdl://h/", &err));
  fail_unless(err && err->domain == GST_URI_ERROR);
  g_clear_error(&err);
  gst_object_unref(src);
}
GST_END_TEST;

GST_START_TEST(test_stats) {
  auto [srv, track, expected] = serve_adts({}, "st");
  GstElement *p = make_pipeline(srv->base_url(), "st", "", "fakesink sync=false");
  Run run;
  run_pipeline(p, run);
  fail_unless(run.eos);
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstStructure *st = nullptr;
  g_object_get(src, "stats", &st, nullptr);
  fail_unless(st != nullptr);
  gint64 total = 0, available = 0, downloaded = 0, bytes = 0, retries = -1;
  guint64 ttfb = 0;
  fail_unless(gst_structure_get_int64(st, "segments-total", &total));
  fail_unless(gst_structure_get_int64(st, "segments-available", &available));
  fail_unless(gst_structure_get_int64(st, "segments-downloaded", &downloaded));
  fail_unless(gst_structure_get_int64(st, "bytes-downloaded", &bytes));
  fail_unless(gst_structure_get_int64(st, "retries", &retries));
  fail_unless(gst_structure_get_uint64(st, "time-to-first-byte", &ttfb));
  fail_unless_equals_int(total, 4);
  fail_unless_equals_int(available, 4);
  fail_unless_equals_int(downloaded, 4);
  fail_unless_equals_uint64(bytes, expected.size());
  fail_unless_equals_int(retries, 0);
  // Set, and within the run (30 s): not a wall-clock bound on the machine.
  fail_unless(ttfb != GST_CLOCK_TIME_NONE && ttfb > 0 && ttfb < 30 * GST_SECOND);
  gboolean complete = FALSE;
  fail_unless(gst_structure_get_boolean(st, "complete", &complete));
  fail_unless(complete);
  // The final stats also came as an element message at the end.
  fail_unless(
      std::find(run.elements.begin(), run.elements.end(), "segdl-stats") != run.elements.end(),
      "no segdl-stats message");
  gst_structure_free(st);
  gst_object_unref(src);
  gst_object_unref(p);
}
GST_END_TEST;

namespace {

// Waits (bounded) for EOS; records the highest "segments-done" of the
// segdl-segment messages on the way. False on ERROR or time-out.
bool wait_eos_counting(GstBus *bus, gint64 &max_done, int &messages) {
  const gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  for (;;) {
    const gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0) return false;
    GstMessage *m = gst_bus_timed_pop_filtered(
        bus, GstClockTime(left) * GST_USECOND,
        GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT));
    if (!m) return false;
    const GstMessageType type = GST_MESSAGE_TYPE(m);
    const GstStructure *st = gst_message_get_structure(m);
    if (type == GST_MESSAGE_ELEMENT && st && gst_structure_has_name(st, "segdl-segment")) {
      gint64 done = 0;
      fail_unless(gst_structure_get_int64(st, "segments-done", &done));
      max_done = std::max(max_done, done);
      messages++;
    }
    gst_message_unref(m);
    if (type == GST_MESSAGE_EOS) return true;
    if (type == GST_MESSAGE_ERROR) return false;
  }
}

}  // namespace

// A seek back after EOS fetches the track again (no cache): the bytes count
// twice, but `stats` segments-downloaded and the messages' segments-done
// count each segment once.
GST_START_TEST(test_stats_distinct_after_seek) {
  auto [srv, track, expected] = serve_adts({}, "sd");
  const gint64 n = gint64(track.segments.size());
  GstElement *p = make_pipeline(srv->base_url(), "sd", "", "fakesink sync=false");
  GstBus *bus = gst_element_get_bus(p);
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  gint64 max_done = 0;
  int messages = 0;
  fail_unless(wait_eos_counting(bus, max_done, messages), "no EOS the first time");
  fail_unless(gst_element_seek_simple(p, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH, 0));
  fail_unless(wait_eos_counting(bus, max_done, messages), "no EOS after the seek");
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstStructure *st = nullptr;
  g_object_get(src, "stats", &st, nullptr);
  fail_unless(st != nullptr);
  gint64 downloaded = 0, bytes = 0;
  fail_unless(gst_structure_get_int64(st, "segments-downloaded", &downloaded));
  fail_unless(gst_structure_get_int64(st, "bytes-downloaded", &bytes));
  // The track was fetched again: more bytes than it has.
  fail_unless(bytes > gint64(expected.size()), "bytes %" G_GINT64_FORMAT, bytes);
  fail_unless_equals_int64(downloaded, n);
  fail_unless_equals_int64(max_done, n);
  fail_unless(messages >= int(n), "%d segdl-segment messages", messages);
  gst_structure_free(st);
  gst_object_unref(src);
  fail_unless(gst_element_set_state(p, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(bus);
  gst_object_unref(p);
}
GST_END_TEST;

// monitor=false takes the segments ready at the first status, then ends.
GST_START_TEST(test_no_monitor) {
  server::Options opts;
  opts.reveal_every = 30;  // only segment 0 is ready during the test
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("nm", track);
  GstElement *p = make_pipeline(srv->base_url(), "nm", "join=bytes monitor=false",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 20);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error);
  fail_unless(run.bytes == track.segments[0]);
}
GST_END_TEST;

static Suite *segdlsrc_suite() {
  Suite *s = suite_create("segdlsrc");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(tc, test_bytes_exact, 0, 9);
  tcase_add_loop_test(tc, test_decodes_to_duration, 0, 3);
  tcase_add_test(tc, test_progressive_buffering);
  tcase_add_test(tc, test_window_full_ends_buffering);
  tcase_add_test(tc, test_scheduling);
  tcase_add_test(tc, test_buffering_query);
  tcase_add_test(tc, test_error_unreachable);
  tcase_add_test(tc, test_error_state);
  tcase_add_test(tc, test_error_malformed_status);
  tcase_add_test(tc, test_error_segment_fails);
  tcase_add_test(tc, test_error_max_wait);
  tcase_add_test(tc, test_error_settings);
  tcase_add_test(tc, test_hostile_id);
  tcase_add_test(tc, test_stop_mid_download);
  tcase_add_test(tc, test_properties_locked_while_running);
  tcase_add_test(tc, test_playbin_uri);
  tcase_add_test(tc, test_uri_handler);
  tcase_add_test(tc, test_stats);
  tcase_add_test(tc, test_stats_distinct_after_seek);
  tcase_add_test(tc, test_no_monitor);
  return s;
}

GST_CHECK_MAIN(segdlsrc);
