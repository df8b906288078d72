// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the fault matrix: every transient fault the reference server
 * can inject, at the first, a middle and the last segment, in both joins.
 * The output must be exactly the fault-free output (no byte pushed twice,
 * none skipped), a WARNING must announce each retry, and a permanent fault
 * must end in a clear ERROR within a bounded time.
 */
#include "harness.h"

#include "segdl/clock.h"

#include <set>

using namespace segdl;
using namespace segdl::test;

namespace {

struct FaultKind {
  const char *kind;
  double arg;
  bool warns;  // a retry (and so a WARNING) is expected
};

const FaultKind kFaults[] = {
    {"http500", 0, true},   // 500, then fine
    {"reset", 0, true},     // connection reset mid-body: resumed with Range
    {"truncate", 0, true},  // body shorter than Content-Length: resumed
    {"stall", 120, true},   // no bytes for 2 min: stall-timeout (3 s) aborts, resumed
    {"notready", 1, true},  // 404 + Retry-After although listed: retried (seg 0: waited)
};
const int64_t kSegments[] = {0, 1, 3};  // first, middle, last of 4
const char *const kJoins[] = {"bytes", "timeline"};

// What the fault-free run outputs, per join.
Bytes expected_output(const char *join) {
  const media::Encoded &enc = fixture(media::Form::Adts);
  if (g_str_equal(join, "bytes")) return enc.bytes;
  Bytes raw;  // timeline: raw AAC, the ADTS headers gone
  for (size_t i = 0; i < enc.frames.size(); i++) {
    uint64_t off = enc.frames[i].offset;
    uint64_t end = i + 1 < enc.frames.size() ? enc.frames[i + 1].offset : enc.bytes.size();
    uint64_t header = (enc.bytes[off + 1] & 0x01) ? 7 : 9;
    raw.insert(raw.end(), enc.bytes.begin() + off + header, enc.bytes.begin() + end);
  }
  return raw;
}

}  // namespace

GST_START_TEST(test_fault_matrix) {
  const int nseg = G_N_ELEMENTS(kSegments), njoin = G_N_ELEMENTS(kJoins);
  const FaultKind &fk = kFaults[__i__ / (nseg * njoin)];
  const int64_t seg = kSegments[(__i__ / njoin) % nseg];
  const char *join = kJoins[__i__ % njoin];
  GST_INFO("%s at segment %" G_GINT64_FORMAT ", join=%s", fk.kind, seg, join);

  auto srv = start_server();
  srv->add_track("f", make_track(media::Form::Adts));
  srv->add_fault(fault(fk.kind, "f", seg, 1, fk.arg));
  // A real stall is held far past stall-timeout, so any stall-timeout sees
  // it; 3 s (not 1) so that a healthy transfer on a slow, loaded machine
  // does not look stalled. Other faults never stall: 10 s costs nothing.
  const char *stall = g_str_equal(fk.kind, "stall") ? "3" : "10";
  std::string props = std::string("join=") + join + " stall-timeout=" + stall + " max-retries=3";
  GstElement *p = make_pipeline(srv->base_url(), "f", props, "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 40);
  GstStructure *st = stats_of(p);
  gint64 faults = 0, resumes = 0;
  gst_structure_get_int64(st, "faults", &faults);
  gst_structure_get_int64(st, "resumes", &resumes);
  gst_structure_free(st);
  gst_object_unref(p);
  fail_if(run.timed_out, "%s@%" G_GINT64_FORMAT " %s: no EOS in time", fk.kind, seg, join);
  fail_unless(run.error == nullptr, "%s@%" G_GINT64_FORMAT " %s: %s", fk.kind, seg, join,
              run.error ? run.error->message : "");
  fail_unless(run.eos);
  Bytes expected = expected_output(join);
  fail_unless(run.bytes.size() == expected.size(),
              "%s@%" G_GINT64_FORMAT " %s: %zu bytes, expected %zu", fk.kind, seg, join,
              run.bytes.size(), expected.size());
  fail_unless(run.bytes == expected, "%s@%" G_GINT64_FORMAT " %s: output differs", fk.kind, seg,
              join);
  // Segment 0 is asked for before the first status: a 404 then only means
  // "not produced yet", which is waited for without a warning.
  bool warns = fk.warns && !(g_str_equal(fk.kind, "notready") && seg == 0);
  if (warns) {
    fail_unless(faults >= 1, "%s: stats faults = %" G_GINT64_FORMAT, fk.kind, faults);
    std::string needle = "segment " + std::to_string(seg);
    bool found = false;
    for (const std::string &w : run.warnings) found |= w.find(needle) != std::string::npos;
    fail_unless(found, "%s@%" G_GINT64_FORMAT ": no WARNING naming %s", fk.kind, seg,
                needle.c_str());
  }
  // A transfer broken mid-body is resumed where it broke, not restarted.
  if (g_str_equal(fk.kind, "reset") || g_str_equal(fk.kind, "truncate") ||
      g_str_equal(fk.kind, "stall")) {
    bool resumed = false;
    for (const auto &r : srv->requests())
      resumed |=
          r.path == "/stream" && r.segment == seg && g_str_has_prefix(r.range.c_str(), "bytes=");
    fail_unless(resumed, "%s@%" G_GINT64_FORMAT ": no Range resume", fk.kind, seg);
    fail_unless(resumes >= 1, "%s: stats resumes = %" G_GINT64_FORMAT, fk.kind, resumes);
  }
}
GST_END_TEST;

// Permanent faults end in a clear ERROR, within a bounded time.
struct Permanent {
  const char *kind;
  GstResourceError code;
  const char *text;
};
const Permanent kPermanent[] = {
    {"http500", GST_RESOURCE_ERROR_OPEN_READ, "segment 2"},
    {"reset", GST_RESOURCE_ERROR_READ, "segment 2"},
    {"truncate", GST_RESOURCE_ERROR_READ, "segment 2"},
    {"status500", GST_RESOURCE_ERROR_OPEN_READ, "status"},
};

GST_START_TEST(test_permanent_faults) {
  const Permanent &pf = kPermanent[__i__];
  auto srv = start_server();
  srv->add_track("f", make_track(media::Form::Adts));
  srv->add_fault(fault(pf.kind, "f", 2, -1));
  GstElement *p =
      make_pipeline(srv->base_url(), "f", "stall-timeout=10 max-retries=2", "fakesink sync=false");
  Run run;
  run_pipeline(p, run, 30);  // bounded: retries must give up well within it
  gst_object_unref(p);
  fail_if(run.timed_out, "%s: no ERROR in time", pf.kind);
  fail_unless(run.error != nullptr, "%s: no ERROR", pf.kind);
  fail_unless(run.error->domain == GST_RESOURCE_ERROR);
  fail_unless_equals_int(run.error->code, pf.code);
  fail_unless(strstr(run.error->message, pf.text) != nullptr, "%s: '%s'", pf.kind,
              run.error->message);
  fail_unless(run.warnings.size() >= 2, "%s: %zu warnings before giving up", pf.kind,
              run.warnings.size());
}
GST_END_TEST;

// Transient status faults (5xx, a body that is not JSON, a status that goes
// backwards) are retried or tolerated: the output is the fault-free one.
const char *const kStatusFaults[] = {"status500", "badjson", "statusregress"};

GST_START_TEST(test_status_faults) {
  const char *kind = kStatusFaults[__i__];
  server::Options o;
  o.reveal_every = 0.3;  // several polls happen
  auto srv = start_server(o);
  srv->add_track("s", make_track(media::Form::Adts));
  srv->add_fault(fault(kind, "s", -1, 2));
  GstElement *p = make_pipeline(srv->base_url(), "s", "join=bytes max-retries=3",
                                "appsink name=sink sync=false");
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s: %s", kind, run.error ? run.error->message : "no EOS");
  fail_unless(run.bytes == expected_output("bytes"), "%s: output differs", kind);
  if (!g_str_equal(kind, "statusregress")) {
    bool warned = false;
    for (const std::string &w : run.warnings) warned |= g_str_has_prefix(w.c_str(), "status:");
    fail_unless(warned, "%s: no WARNING about the status", kind);
  }
}
GST_END_TEST;

namespace {

// Messages of segdlsrc seen by a sync handler, with the thread that posted
// them; and the thread that pushed the buffers.
struct Posted {
  std::mutex lock;
  std::vector<GstStructure *> segments;  // "segdl-segment" structures, in order
  std::vector<GThread *> warning_threads;
  GThread *streaming = nullptr;
  ~Posted() {
    for (GstStructure *st : segments) gst_structure_free(st);
  }
};

GstBusSyncReply record_message(GstBus *, GstMessage *msg, gpointer data) noexcept {
  auto *posted = static_cast<Posted *>(data);
  std::lock_guard<std::mutex> guard(posted->lock);
  const GstStructure *st = gst_message_get_structure(msg);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ELEMENT && st &&
      gst_structure_has_name(st, "segdl-segment"))
    posted->segments.push_back(gst_structure_copy(st));
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING)
    posted->warning_threads.push_back(g_thread_self());
  return GST_BUS_PASS;
}

GstPadProbeReturn note_streaming_thread(GstPad *, GstPadProbeInfo *, gpointer data) noexcept {
  auto *posted = static_cast<Posted *>(data);
  std::lock_guard<std::mutex> guard(posted->lock);
  posted->streaming = g_thread_self();
  return GST_PAD_PROBE_OK;
}

}  // namespace

// Every segment is announced once as it comes whole ("segdl-segment", the
// contract in docs/element.md), and WARNINGs come from the streaming
// thread, never from the HTTP thread.
GST_START_TEST(test_segment_messages) {
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts);
  const int64_t n = int64_t(track.segments.size());
  srv->add_track("m", track);
  srv->add_fault(fault("http500", "m", 2, 1));
  GstElement *p = make_pipeline(srv->base_url(), "m", "join=bytes max-retries=3",
                                "appsink name=sink sync=false");
  Posted posted;
  GstBus *bus = gst_element_get_bus(p);
  gst_bus_set_sync_handler(bus, record_message, &posted, nullptr);
  gst_object_unref(bus);
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstPad *pad = gst_element_get_static_pad(src, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, note_streaming_thread, &posted, nullptr);
  Run run;
  run_pipeline(p, run, 30);
  gst_object_unref(pad);
  gst_object_unref(src);
  gst_object_unref(p);
  fail_unless(run.eos && !run.error, "%s", run.error ? run.error->message : "no EOS");
  fail_unless(run.bytes == expected_output("bytes"));

  std::lock_guard<std::mutex> guard(posted.lock);
  fail_unless_equals_int(int(posted.segments.size()), int(n));
  std::set<int64_t> seen;
  for (size_t i = 0; i < posted.segments.size(); i++) {
    const GstStructure *st = posted.segments[i];
    gint64 index = -2, total = -2, done = -2;
    guint64 bytes = 0;
    gdouble seconds = -1;
    gint retries = -1;
    fail_unless(gst_structure_get_int64(st, "index", &index));
    fail_unless(gst_structure_get_uint64(st, "bytes", &bytes));
    fail_unless(gst_structure_get_double(st, "seconds", &seconds));
    fail_unless(gst_structure_get_int(st, "retries", &retries));
    fail_unless(gst_structure_get_int64(st, "segments-total", &total));
    fail_unless(gst_structure_get_int64(st, "segments-done", &done));
    fail_unless(index >= 0 && index < n, "index %" G_GINT64_FORMAT, index);
    fail_unless(seen.insert(index).second, "segment %" G_GINT64_FORMAT " twice", index);
    fail_unless_equals_uint64(bytes, track.segments[size_t(index)].size());
    fail_unless_equals_string(gst_structure_get_string(st, "source"), "network");
    fail_unless(seconds > 0, "seconds %f", seconds);
    fail_unless_equals_int(retries, index == 2 ? 1 : 0);
    fail_unless(total == -1 || total == n, "segments-total %" G_GINT64_FORMAT, total);
    fail_unless_equals_int64(done, int64_t(i) + 1);
  }
  gint64 last_total = 0;
  gst_structure_get_int64(posted.segments.back(), "segments-total", &last_total);
  fail_unless_equals_int64(last_total, n);
  fail_unless(!posted.warning_threads.empty(), "no WARNING for the retry");
  for (GThread *t : posted.warning_threads)
    fail_unless(t == posted.streaming, "a WARNING was posted from another thread");
}
GST_END_TEST;

// An ERROR ahead while BUFFERING: segment 2 answers 500 for good. The
// engine runs on an injected clock, so its retries wait until the test
// moves the time: first the stream pushes segments 0 and 1 and starts
// buffering for segment 2 (a BUFFERING below 100), then the test lets the
// retries run out. The buffering must end with the ERROR, not with a 100 %
// just before it (a player would restart its preroll).
GST_START_TEST(test_error_ahead_while_buffering) {
  segdl::ManualClock clock;
  auto srv = start_server();
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("f", track);
  srv->add_fault(fault("http500", "f", 2, -1));
  GstElement *p = make_pipeline(srv->base_url(), "f", "join=bytes max-retries=2 buffer-size=1000",
                                "appsink name=sink sync=false");
  use_engine_clock(p, clock);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstBus *bus = gst_element_get_bus(p);
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);

  const size_t before = track.segments[0].size() + track.segments[1].size();
  size_t out = 0;
  std::vector<int> buffering;      // in order
  std::vector<int> after_waiting;  // BUFFERING once it waits for segment 2
  bool waiting = false;            // segments 0 and 1 out, buffering below 100
  GstMessage *error = nullptr;
  const gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;  // bounds the test
  while (!error && g_get_monotonic_time() < deadline) {
    if (GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 50 * GST_MSECOND)) {
      out += gst_buffer_get_size(gst_sample_get_buffer(sample));
      gst_sample_unref(sample);
    }
    while (GstMessage *msg = gst_bus_pop_filtered(
               bus, GstMessageType(GST_MESSAGE_BUFFERING | GST_MESSAGE_ERROR))) {
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        error = msg;
        break;
      }
      gint pct = 0;
      gst_message_parse_buffering(msg, &pct);
      buffering.push_back(pct);
      if (waiting) after_waiting.push_back(pct);
      gst_message_unref(msg);
    }
    if (!waiting && out == before && !buffering.empty() && buffering.back() < 100) waiting = true;
    if (waiting && !error) clock.advance(10 * 1000000);  // the retries' backoff passes
  }
  fail_unless(waiting, "never buffered after segments 0 and 1 (%zu of %zu bytes, %zu BUFFERING)",
              out, before, buffering.size());
  fail_unless(error != nullptr, "no ERROR in time");
  GError *err = nullptr;
  gst_message_parse_error(error, &err, nullptr);
  fail_unless(strstr(err->message, "segment 2") != nullptr, "%s", err->message);
  for (int pct : after_waiting) fail_unless(pct < 100, "BUFFERING %d %% before the ERROR", pct);
  fail_unless_equals_int(int(out), int(before));
  g_error_free(err);
  gst_message_unref(error);
  fail_unless(gst_element_set_state(p, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(p);
}
GST_END_TEST;

static Suite *faults_suite() {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 120);
  suite_add_tcase(s, tc);
  tcase_add_loop_test(tc, test_fault_matrix, 0,
                      G_N_ELEMENTS(kFaults) * G_N_ELEMENTS(kSegments) * G_N_ELEMENTS(kJoins));
  tcase_add_loop_test(tc, test_permanent_faults, 0, G_N_ELEMENTS(kPermanent));
  tcase_add_loop_test(tc, test_status_faults, 0, G_N_ELEMENTS(kStatusFaults));
  tcase_add_test(tc, test_segment_messages);
  tcase_add_test(tc, test_error_ahead_while_buffering);
  return s;
}

GST_CHECK_MAIN(faults);
