// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the program: options and their exit codes, port 0 printed,
 * a request answered, SIGTERM stopping it with status 0. The path of the
 * executable comes from meson (argv[1] of the suite).
 */
#include "gwtest.h"

#include <gio/gio.h>

#include <csignal>

using namespace gwtest;

namespace {

std::string g_exe;

// Runs the program to its end with `args`; returns its exit status.
int run_to_end(const std::vector<std::string> &args, std::string &err_text) {
  std::vector<const char *> argv = {g_exe.c_str()};
  for (const std::string &a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  GError *err = nullptr;
  GSubprocess *p =
      g_subprocess_newv(argv.data(),
                        static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                      G_SUBPROCESS_FLAGS_STDERR_PIPE),
                        &err);
  fail_unless(p != nullptr, "spawn: %s", err ? err->message : "");
  char *errs = nullptr;
  fail_unless(g_subprocess_communicate_utf8(p, nullptr, nullptr, nullptr, &errs, &err));
  err_text = errs ? errs : "";
  g_free(errs);
  const int status = g_subprocess_get_exit_status(p);
  g_object_unref(p);
  return status;
}

}  // namespace

GST_START_TEST(test_bad_options) {
  std::string text;
  fail_unless_equals_int(run_to_end({}, text), 2);
  fail_unless(text.find("--upstream URL is required") != std::string::npos, "%s", text.c_str());
  fail_unless_equals_int(run_to_end({"--upstream", "ftp://x", "--cache-dir", "/tmp/x"}, text), 2);
  fail_unless(text.find("http:// or https://") != std::string::npos, "%s", text.c_str());
  fail_unless_equals_int(
      run_to_end({"--upstream", "http://a", "--cache-dir", "/tmp/x", "--listen", "nope"}, text), 2);
  fail_unless_equals_int(
      run_to_end({"--upstream", "http://a", "--cache-dir", "/tmp/x", "--cache-max-size", "lots"},
                 text),
      2);
  fail_unless_equals_int(
      run_to_end({"--upstream", "http://a", "--cache-dir", "/tmp/x", "--cache-max-age", "7y"},
                 text),
      2);
  fail_unless_equals_int(
      run_to_end({"--upstream", "http://a", "--cache-dir", "/tmp/x", "--id-pattern", "("}, text),
      2);
  fail_unless_equals_int(
      run_to_end({"--upstream", "http://a", "--cache-dir", "/tmp/x", "--max-concurrent", "0"},
                 text),
      2);
  for (const char *bad : {"lots", "1K", "2G"}) {
    fail_unless_equals_int(
        run_to_end({"--upstream", "http://a", "--cache-dir", "/tmp/x", "--max-client-queue", bad},
                   text),
        2);
    fail_unless(text.find("--max-client-queue") != std::string::npos, "%s: %s", bad, text.c_str());
  }
}
GST_END_TEST;

GST_START_TEST(test_serve_and_stop) {
  TempDir cache;
  auto srv = start_server();
  auto track = make_track();
  srv->add_track("demoTrack00", track);
  GError *err = nullptr;
  GSubprocess *p = g_subprocess_new(
      G_SUBPROCESS_FLAGS_STDOUT_PIPE, &err, g_exe.c_str(), "--upstream", srv->base_url().c_str(),
      "--cache-dir", cache.path().c_str(), "--listen", "127.0.0.1:0", "--cache-max-size", "1G",
      "--cache-max-age", "7d", "--max-client-queue", "256K", nullptr);
  fail_unless(p != nullptr, "spawn: %s", err ? err->message : "");
  GDataInputStream *out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
  char *line = g_data_input_stream_read_line(out, nullptr, nullptr, &err);
  fail_unless(line != nullptr, "no output");
  const std::string first = line;
  g_free(line);
  const std::string prefix = "segdl-gateway listening on ";
  fail_unless(first.rfind(prefix, 0) == 0, "%s", first.c_str());
  const std::string base = first.substr(prefix.size());
  fail_unless(base.rfind("http://127.0.0.1:", 0) == 0 && base != "http://127.0.0.1:0");
  Reply r = get(base + "/api/segments/demoTrack00/2");
  fail_unless_equals_int(r.status, 200);
  fail_unless(r.body == str(track.segments[2]));
  Reply c = get(base + "/api/segments/cache");
  Json j(c.body);
  fail_unless_equals_int(j.i("maxSizeBytes"), 1LL << 30);
  fail_unless_equals_int(j.i("maxAgeSeconds"), 7 * 86400);
  fail_unless_equals_int(j.i("maxClientQueueBytes"), 256 * 1024);
  g_subprocess_send_signal(p, SIGTERM);
  fail_unless(g_subprocess_wait(p, nullptr, &err));
  fail_unless(g_subprocess_get_if_exited(p));
  fail_unless_equals_int(g_subprocess_get_exit_status(p), 0);
  g_object_unref(out);
  g_object_unref(p);
}
GST_END_TEST;

static Suite *gateway_program_suite() {
  Suite *s = suite_create("gateway-program");
  TCase *tc = tcase_create("program");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_bad_options);
  tcase_add_test(tc, test_serve_and_stop);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  if (argc < 2) {
    g_printerr("usage: %s PATH-OF-segdl-gateway\n", argv[0]);
    return 99;
  }
  g_exe = argv[1];
  Suite *s = gateway_program_suite();
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
