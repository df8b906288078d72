// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — resources: no file descriptor and no thread outlives a
 * pipeline, whatever the moment it is stopped (PLAYING -> NULL with
 * transfers in flight) or the way it ends (an ERROR in the middle of a
 * download). Counts are read from /proc/self/fd and /proc/self/task.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <random>

using namespace segdl;
using namespace segdl::test;

namespace {

// Entries of a /proc folder (minus "." and "..").
int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) g_error("cannot open %s", dir);
  int n = 0;
  while (struct dirent *e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

// The local port of socket `fd`, or -1 (not an IP socket).
int local_port(int fd) {
  struct sockaddr_storage addr;
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<struct sockaddr *>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET)
    return ntohs(reinterpret_cast<struct sockaddr_in *>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<struct sockaddr_in6 *>(&addr)->sin6_port);
  return -1;
}

// Descriptors of this process, minus the in-process server's sockets (its
// side of each connection, not segdlsrc's to close) and the listing's own.
int fd_count(int server_port) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) g_error("cannot open /proc/self/fd");
  int n = 0;
  while (struct dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd == dirfd(d) || local_port(fd) == server_port) continue;
    n++;
  }
  closedir(d);
  return n;
}

int thread_count() {
  return count_entries("/proc/self/task");
}

// Counts buffers reaching the sink and lets the test wait for the n-th one.
struct BufferGate {
  std::mutex lock;
  std::condition_variable cond;
  int buffers = 0;

  // Waits (bounded) until `n` buffers passed; false if they did not in time.
  bool wait_for(int n, int timeout_ms) {
    std::unique_lock<std::mutex> l(lock);
    return cond.wait_for(l, std::chrono::milliseconds(timeout_ms), [&] { return buffers >= n; });
  }
};

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer data) noexcept {
  auto *gate = static_cast<BufferGate *>(data);
  {
    std::lock_guard<std::mutex> l(gate->lock);
    gate->buffers++;
  }
  gate->cond.notify_all();
  return GST_PAD_PROBE_OK;
}

// A track long enough that transfers are in flight whenever it is stopped.
server::Track long_track() {
  return make_track(media::Form::Adts, 40.5);
}

// One PLAYING -> NULL cycle, stopped at a moment picked by `rng`: at once
// (still connecting), after the first buffer, or after a few buffers.
void cycle_once(const std::string &base, std::mt19937 &rng) {
  GstElement *p = make_pipeline(base, "res", "join=bytes max-concurrent=3", "fakesink name=sink");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  BufferGate gate;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, &gate, nullptr);
  fail_unless(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  int moment = int(rng() % 4);
  if (moment > 0) gate.wait_for(moment == 1 ? 1 : int(1 + rng() % 20), 10000);
  fail_unless(gst_element_set_state(p, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(pad);
  gst_object_unref(sink);
  gst_object_unref(p);
}

}  // namespace

// 200 pipelines stopped at random moments leave no descriptor and no thread.
GST_START_TEST(test_stop_cycles) {
  server::Options o;
  o.latency_ms = 20;
  o.bandwidth_kbps = 4000;  // slow enough that bodies are still arriving
  auto srv = start_server(o);
  srv->add_track("res", long_track());
  std::mt19937 rng(20261130);
  // Warm up: GStreamer and GLib make their pools and caches once.
  for (int i = 0; i < 5; i++) cycle_once(srv->base_url(), rng);
  int fds = fd_count(srv->port()), threads = thread_count();
  for (int i = 0; i < 200; i++) cycle_once(srv->base_url(), rng);
  int fds_after = fd_count(srv->port()), threads_after = thread_count();
  g_print("stop cycles: fds %d -> %d, threads %d -> %d\n", fds, fds_after, threads, threads_after);
  // A leak of one descriptor a cycle would show as +200; idle pool threads
  // of GLib may come and go by a few.
  fail_unless(fds_after <= fds + 2, "descriptors grew from %d to %d over 200 stops", fds,
              fds_after);
  fail_unless(threads_after <= threads + 4, "threads grew from %d to %d over 200 stops", threads,
              threads_after);
}
GST_END_TEST;

// 50 runs that end in an ERROR while other segments are downloading.
GST_START_TEST(test_error_cycles) {
  server::Options o;
  o.latency_ms = 20;
  o.bandwidth_kbps = 4000;
  auto srv = start_server(o);
  srv->add_track("res", long_track());
  srv->add_fault(fault("http500", "res", 3, -1));
  auto run_once = [&] {
    GstElement *p = make_pipeline(srv->base_url(), "res",
                                  "join=bytes max-concurrent=3 max-retries=0 missing-segment=error",
                                  "fakesink sync=false");
    Run run;
    run_pipeline(p, run, 30);
    gst_object_unref(p);
    fail_if(run.timed_out, "no ERROR in time");
    fail_unless(run.error != nullptr, "no ERROR");
    fail_unless(strstr(run.error->message, "segment 3") != nullptr, "%s", run.error->message);
  };
  for (int i = 0; i < 3; i++) run_once();
  int fds = fd_count(srv->port()), threads = thread_count();
  for (int i = 0; i < 50; i++) run_once();
  int fds_after = fd_count(srv->port()), threads_after = thread_count();
  g_print("error cycles: fds %d -> %d, threads %d -> %d\n", fds, fds_after, threads, threads_after);
  fail_unless(fds_after <= fds + 2, "descriptors grew from %d to %d over 50 errors", fds,
              fds_after);
  fail_unless(threads_after <= threads + 4, "threads grew from %d to %d over 50 errors", threads,
              threads_after);
}
GST_END_TEST;

static Suite *resources_suite() {
  Suite *s = suite_create("resources");
  TCase *tc = tcase_create("cycles");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_stop_cycles);
  tcase_add_test(tc, test_error_cycles);
  suite_add_tcase(s, tc);
  return s;
}

GST_CHECK_MAIN(resources)
