// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — a segment's tail fetched apart (issue 11, m4a first audio
 * before the whole segment): Downloader::request_tail() asks segdl-server
 * for the bytes from an offset with "Range: bytes=N-" beside the segment's
 * body, and take_tail() gives exactly those bytes; with
 * tail_prefetch_bytes, segment 0's last N bytes are asked ("bytes=-N")
 * with its body, and a tail from before them is asked again; a server that
 * ignores Range makes the tail Unavailable (and no tail is asked again)
 * and the segment still comes whole; pop() wakes when a tail the consumer
 * waits for comes, while the body is held. Checked in the request log and
 * against the served bytes; no timing.
 */
#include "../harness.h"

#include "segdl/downloader.h"
#include "segdl/httpmodule.h"

using namespace segdl;
using namespace segdl::test;

namespace {

std::unique_ptr<Downloader> start_engine(const std::string &backend, const std::string &id,
                                         int64_t prefetch = 0) {
  std::string error;
  SegdlHttpFetcherNew entry = load_http_module(error);
  fail_unless(entry != nullptr, "%s", error.c_str());
  DownloaderConfig cfg;
  cfg.backend = backend;
  cfg.video_id = id;
  cfg.poll_interval_s = 0.1;
  cfg.retry_backoff_s = 0.05;
  cfg.tail_prefetch_bytes = prefetch;
  auto factory = [entry](const FetcherConfig &fc, std::string &err) -> std::unique_ptr<Fetcher> {
    char *msg = nullptr;
    Fetcher *f = entry(SEGDL_HTTP_MODULE_ABI, &fc, &msg);
    if (!f) err = msg ? msg : "unknown error";
    g_free(msg);
    return std::unique_ptr<Fetcher>(f);
  };
  auto dl = std::make_unique<Downloader>(cfg, factory);
  fail_unless(dl->start(error), "%s", error.c_str());
  return dl;
}

// Waits (bounded) until the tail of `segment` is Ready or Unavailable.
Downloader::Tail wait_tail(Downloader &dl, int64_t segment) {
  const gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  for (;;) {
    Downloader::Tail t = dl.take_tail(segment);
    if (t.state == Downloader::Tail::State::Ready ||
        t.state == Downloader::Tail::State::Unavailable)
      return t;
    fail_unless(g_get_monotonic_time() < deadline, "no answer for the tail in 20 s");
    dl.wait_change(std::chrono::milliseconds(100));
  }
}

// Every segment's bytes, in order, to the end (bounded).
Bytes drain(Downloader &dl) {
  Bytes out;
  const gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  for (;;) {
    dl.take_events();  // the end comes after the events before it are taken
    Downloader::Item item = dl.pop(std::chrono::milliseconds(100));
    if (item.kind == Downloader::Item::Kind::Eos) return out;
    fail_unless(
        item.kind == Downloader::Item::Kind::Data || item.kind == Downloader::Item::Kind::Timeout,
        "item kind %d (%s)", int(item.kind), item.error.message.c_str());
    if (item.kind == Downloader::Item::Kind::Data) {
      gsize size = 0;
      const auto *p = static_cast<const uint8_t *>(g_bytes_get_data(item.bytes, &size));
      out.insert(out.end(), p, p + size);
      g_bytes_unref(item.bytes);
    }
    fail_unless(g_get_monotonic_time() < deadline, "no end in 30 s");
  }
}

// The bytes of a Ready tail, which must begin at `from`.
Bytes tail_bytes(Downloader::Tail &t, uint64_t from) {
  fail_unless(t.state == Downloader::Tail::State::Ready && t.bytes != nullptr);
  fail_unless_equals_uint64(t.offset, from);
  gsize size = 0;
  const auto *p = static_cast<const uint8_t *>(g_bytes_get_data(t.bytes, &size));
  Bytes out(p, p + size);
  g_bytes_unref(t.bytes);
  t.bytes = nullptr;
  return out;
}

// Options of a server that ignores Range (200, the whole body).
server::Options without_ranges() {
  server::Options opts;
  opts.ranges = false;
  return opts;
}

// The set-up every test shares: an ADTS track served by segdl-server
// (`opts`, `faults` added first) and an engine reading it, with
// tail_prefetch_bytes `prefetch`.
struct TailRig {
  std::unique_ptr<server::Server> srv;
  server::Track track = make_track(media::Form::Adts);
  std::unique_ptr<Downloader> dl;
  explicit TailRig(server::Options opts = server::Options(), int64_t prefetch = 0,
                   const std::vector<server::Fault> &faults = {})
      : srv(start_server(opts)) {
    srv->add_track("t", track);
    for (const server::Fault &f : faults) srv->add_fault(f);
    dl = start_engine(srv->base_url(), "t", prefetch);
  }
  const Bytes &seg0() const { return track.segments[0]; }
  // The rest of the track comes out (after `popped`, the bytes the test
  // took itself) and equals the served track; then the engine stops and
  // the server has answered everything.
  void finish(const Bytes &popped = {}) {
    Bytes all = popped;
    Bytes rest = drain(*dl);
    all.insert(all.end(), rest.begin(), rest.end());
    fail_unless(all == concat(track.segments));
    dl->stop();
    fail_unless(srv->wait_idle(10000));
  }
};

// The requests for segment 0 that carried a Range header.
std::vector<server::RequestRecord> ranged(const server::Server &srv) {
  std::vector<server::RequestRecord> out;
  for (const auto &r : srv.requests())
    if (r.path == "/stream" && r.segment == 0 && !r.range.empty()) out.push_back(r);
  return out;
}

}  // namespace

GST_START_TEST(test_tail_with_range) {
  server::Options opts;
  opts.bandwidth_kbps = 2000;  // the body takes a while; the tail comes beside it
  TailRig rig(opts);
  const Bytes &seg0 = rig.seg0();
  const uint64_t offset = seg0.size() - 700;
  rig.dl->request_tail(0, offset);
  Downloader::Tail tail = wait_tail(*rig.dl, 0);
  fail_unless(tail_bytes(tail, offset) == Bytes(seg0.begin() + long(offset), seg0.end()),
              "the tail differs from the served bytes");
  // Given once.
  fail_unless(rig.dl->take_tail(0).bytes == nullptr);
  rig.finish();
  auto reqs = ranged(*rig.srv);
  fail_unless_equals_int(int(reqs.size()), 1);
  const std::string asked = "bytes=" + std::to_string(offset) + "-";
  fail_unless_equals_string(reqs[0].range.c_str(), asked.c_str());
  fail_unless_equals_int(reqs[0].http_status, 206);
}
GST_END_TEST;

// A server without Range: the tail is Unavailable, the segment whole.
GST_START_TEST(test_tail_without_range) {
  TailRig rig(without_ranges());
  rig.dl->request_tail(0, rig.seg0().size() / 2);
  Downloader::Tail tail = wait_tail(*rig.dl, 0);
  fail_unless(tail.state == Downloader::Tail::State::Unavailable);
  fail_unless(tail.bytes == nullptr);
  rig.finish();
  auto reqs = ranged(*rig.srv);
  fail_unless_equals_int(int(reqs.size()), 1);
  fail_unless_equals_int(reqs[0].http_status, 200);  // Range ignored
}
GST_END_TEST;

// Segment 0's last 600 bytes come with its body (a suffix Range); a tail
// from before them is asked again from there, one from within them is not.
GST_START_TEST(test_suffix_with_body) {
  server::Options opts;
  opts.bandwidth_kbps = 2000;
  TailRig rig(opts, 600);
  const Bytes &seg0 = rig.seg0();
  const uint64_t size = seg0.size();
  Downloader::Tail suffix = wait_tail(*rig.dl, 0);
  fail_unless(tail_bytes(suffix, size - 600) == Bytes(seg0.end() - 600, seg0.end()));
  rig.dl->request_tail(0, size - 300);  // within the suffix: nothing asked
  rig.dl->request_tail(0, size - 900);  // before it: asked from there
  Downloader::Tail more = wait_tail(*rig.dl, 0);
  fail_unless(tail_bytes(more, size - 900) == Bytes(seg0.end() - 900, seg0.end()));
  rig.finish();
  auto reqs = ranged(*rig.srv);
  fail_unless_equals_int(int(reqs.size()), 2);
  fail_unless_equals_string(reqs[0].range.c_str(), "bytes=-600");
  fail_unless_equals_int(reqs[0].http_status, 206);
  const std::string asked = "bytes=" + std::to_string(size - 900) + "-";
  fail_unless_equals_string(reqs[1].range.c_str(), asked.c_str());
  fail_unless_equals_int(reqs[1].http_status, 206);
  // Only segment 0, the one the consumer reads first, gets a suffix.
  for (const auto &r : rig.srv->requests())
    fail_unless(r.segment == 0 || r.range.empty(), "segment %" G_GINT64_FORMAT ": %s", r.segment,
                r.range.c_str());
}
GST_END_TEST;

// Without Range the suffix comes back 200: Unavailable, and a tail asked
// later is Unavailable at once, with no request (each would bring the
// whole body).
GST_START_TEST(test_suffix_without_range) {
  TailRig rig(without_ranges(), 600);
  Downloader::Tail t = wait_tail(*rig.dl, 0);
  fail_unless(t.state == Downloader::Tail::State::Unavailable);
  fail_unless(t.bytes == nullptr);
  rig.dl->request_tail(1, 100);
  fail_unless(rig.dl->take_tail(1).state == Downloader::Tail::State::Unavailable);
  rig.finish();
  int with_range = 0;
  for (const auto &r : rig.srv->requests()) with_range += r.range.empty() ? 0 : 1;
  fail_unless_equals_int(with_range, 1);
  auto reqs = ranged(*rig.srv);
  fail_unless_equals_int(int(reqs.size()), 1);
  fail_unless_equals_string(reqs[0].range.c_str(), "bytes=-600");
  fail_unless_equals_int(reqs[0].http_status, 200);
}
GST_END_TEST;

// pop() wakes when a tail the consumer waits for comes. Segment 0's body
// is held at its half for 15 s: once its first half is popped, the tail is
// asked and pop() may wait 30 s. It returns Timeout with the tail Ready
// while the body is still held (without the wake-up it would return the
// body's next bytes, after the hold).
GST_START_TEST(test_tail_wakes_pop) {
  TailRig rig(server::Options(), 0, {fault("stall", "t", 0, 1, 15)});
  const Bytes &seg0 = rig.seg0();
  const uint64_t half = std::max<uint64_t>(1, seg0.size() / 2);
  uint64_t popped = 0;
  const gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (popped < half) {
    rig.dl->take_events();
    Downloader::Item item = rig.dl->pop(std::chrono::milliseconds(100));
    if (item.kind == Downloader::Item::Kind::Data) {
      fail_unless_equals_int(int(item.segment), 0);
      popped += g_bytes_get_size(item.bytes);
      g_bytes_unref(item.bytes);
    }
    fail_unless(g_get_monotonic_time() < deadline, "segment 0's first half not in 10 s");
  }
  fail_unless_equals_uint64(popped, half);
  rig.dl->request_tail(0, seg0.size() - 700);
  Downloader::Item woke = rig.dl->pop(std::chrono::milliseconds(30000));
  fail_unless_equals_int(int(woke.kind), int(Downloader::Item::Kind::Timeout));
  Downloader::Tail t = rig.dl->take_tail(0);
  fail_unless(tail_bytes(t, seg0.size() - 700) == Bytes(seg0.end() - 700, seg0.end()));
  // The body was still held: its request had not ended.
  bool body_open = false;
  for (const auto &r : rig.srv->requests())
    if (r.path == "/stream" && r.segment == 0 && r.range.empty()) body_open = r.end_us == 0;
  fail_unless(body_open, "segment 0's body ended before the wake-up");
  rig.srv->end_stalls("t", 0);
  rig.finish(Bytes(seg0.begin(), seg0.begin() + long(half)));
}
GST_END_TEST;

static Suite *tail_suite() {
  Suite *s = suite_create("tail");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_tail_with_range);
  tcase_add_test(tc, test_tail_without_range);
  tcase_add_test(tc, test_suffix_with_body);
  tcase_add_test(tc, test_suffix_without_range);
  tcase_add_test(tc, test_tail_wakes_pop);
  return s;
}

GST_CHECK_MAIN(tail)
