// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — a segment's tail fetched apart (issue 11, m4a first audio
 * before the whole segment): Downloader::request_tail() asks segdl-server
 * for the bytes from an offset with "Range: bytes=N-" beside the segment's
 * body, and take_tail() gives exactly those bytes; a server that ignores
 * Range makes the tail Unavailable and the segment still comes whole.
 * Checked in the request log and against the served bytes; no timing.
 */
#include "../harness.h"

#include "segdl/downloader.h"
#include "segdl/httpmodule.h"

using namespace segdl;
using namespace segdl::test;

namespace {

std::unique_ptr<Downloader> start_engine(const std::string &backend, const std::string &id) {
  std::string error;
  SegdlHttpFetcherNew entry = load_http_module(error);
  fail_unless(entry != nullptr, "%s", error.c_str());
  DownloaderConfig cfg;
  cfg.backend = backend;
  cfg.video_id = id;
  cfg.poll_interval_s = 0.1;
  cfg.retry_backoff_s = 0.05;
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
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("t", track);
  const Bytes &seg0 = track.segments[0];
  const uint64_t offset = seg0.size() - 700;
  auto dl = start_engine(srv->base_url(), "t");
  dl->request_tail(0, offset);
  Downloader::Tail tail = wait_tail(*dl, 0);
  fail_unless(tail.state == Downloader::Tail::State::Ready);
  fail_unless(tail.bytes != nullptr);
  gsize size = 0;
  const auto *p = static_cast<const uint8_t *>(g_bytes_get_data(tail.bytes, &size));
  fail_unless(Bytes(p, p + size) == Bytes(seg0.begin() + long(offset), seg0.end()),
              "the tail differs from the served bytes");
  g_bytes_unref(tail.bytes);
  // Given once.
  fail_unless(dl->take_tail(0).bytes == nullptr);
  fail_unless(drain(*dl) == concat(track.segments));
  dl->stop();
  fail_unless(srv->wait_idle(10000));
  auto reqs = ranged(*srv);
  fail_unless_equals_int(int(reqs.size()), 1);
  const std::string asked = "bytes=" + std::to_string(offset) + "-";
  fail_unless_equals_string(reqs[0].range.c_str(), asked.c_str());
  fail_unless_equals_int(reqs[0].http_status, 206);
}
GST_END_TEST;

// A server without Range: the tail is Unavailable, the segment whole.
GST_START_TEST(test_tail_without_range) {
  server::Options opts;
  opts.ranges = false;
  auto srv = start_server(opts);
  server::Track track = make_track(media::Form::Adts);
  srv->add_track("n", track);
  const uint64_t offset = track.segments[0].size() / 2;
  auto dl = start_engine(srv->base_url(), "n");
  dl->request_tail(0, offset);
  Downloader::Tail tail = wait_tail(*dl, 0);
  fail_unless(tail.state == Downloader::Tail::State::Unavailable);
  fail_unless(tail.bytes == nullptr);
  fail_unless(drain(*dl) == concat(track.segments));
  dl->stop();
  fail_unless(srv->wait_idle(10000));
  auto reqs = ranged(*srv);
  fail_unless_equals_int(int(reqs.size()), 1);
  fail_unless_equals_int(reqs[0].http_status, 200);  // Range ignored
}
GST_END_TEST;

static Suite *tail_suite() {
  Suite *s = suite_create("tail");
  TCase *tc = tcase_create("general");
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_tail_with_range);
  tcase_add_test(tc, test_tail_without_range);
  return s;
}

GST_CHECK_MAIN(tail)
