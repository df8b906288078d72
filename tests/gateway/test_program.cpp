// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — the program: options and their exit codes, port 0 printed,
 * a request answered, SIGTERM stopping it with status 0, segdlsrc found
 * beside it without GST_PLUGIN_PATH. The path of the executable comes from
 * meson (argv[1] of the suite).
 */
#include "gwtest.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

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

namespace {

// The program at `exe`, started with `env`, in front of `upstream`: its base
// URL from the first line it prints.
GSubprocess *spawn_gateway(const std::string &exe, char **env, const std::string &upstream,
                           const std::string &cache, std::string &base) {
  GSubprocessLauncher *l = g_subprocess_launcher_new(static_cast<GSubprocessFlags>(
      G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE));
  g_subprocess_launcher_set_environ(l, env);
  GError *err = nullptr;
  GSubprocess *p =
      g_subprocess_launcher_spawn(l, &err, exe.c_str(), "--upstream", upstream.c_str(),
                                  "--cache-dir", cache.c_str(), "--listen", "127.0.0.1:0", nullptr);
  g_object_unref(l);
  fail_unless(p != nullptr, "spawn: %s", err ? err->message : "");
  GDataInputStream *out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
  g_filter_input_stream_set_close_base_stream(G_FILTER_INPUT_STREAM(out), FALSE);
  char *line = g_data_input_stream_read_line(out, nullptr, nullptr, &err);
  fail_unless(line != nullptr, "no output");
  const std::string prefix = "segdl-gateway listening on ";
  fail_unless(g_str_has_prefix(line, prefix.c_str()), "%s", line);
  base = line + prefix.size();
  g_free(line);
  g_object_unref(out);
  return p;
}

// Stops `p` with SIGTERM; returns what it wrote on stderr.
std::string stop_gateway(GSubprocess *p) {
  g_subprocess_send_signal(p, SIGTERM);
  char *errs = nullptr;
  GError *err = nullptr;
  fail_unless(g_subprocess_communicate_utf8(p, nullptr, nullptr, nullptr, &errs, &err), "%s",
              err ? err->message : "");
  fail_unless(g_subprocess_get_if_exited(p) && g_subprocess_get_exit_status(p) == 0);
  std::string text = errs ? errs : "";
  g_free(errs);
  g_object_unref(p);
  return text;
}

}  // namespace

// Without GST_PLUGIN_PATH (a registry that never held segdlsrc), the program
// finds segdlsrc beside itself in the build tree, as segdl does: /listen
// streams the track. A copy of it elsewhere, with no plugin beside it, says
// at start where it looked, and /listen answers a 500 naming segdlsrc.
GST_START_TEST(test_finds_segdlsrc_beside_itself) {
  const char *registry = g_getenv("GST_REGISTRY");
  fail_unless(registry && *registry, "GST_REGISTRY not set (run through meson test)");
  TempDir dir;
  // The suites' registry, segdlsrc and all: the scan at start drops the
  // plugins of paths no longer given (the test below shows it).
  const std::string reg = dir.path() + "/registry.bin";
  char *data = nullptr;
  gsize size = 0;
  fail_unless(g_file_get_contents(registry, &data, &size, nullptr));
  fail_unless(g_file_set_contents(reg.c_str(), data, static_cast<gssize>(size), nullptr));
  g_free(data);
  char **env = g_get_environ();
  for (const char *name : {"GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "SEGDL_MODULE_DIR"})
    env = g_environ_unsetenv(env, name);
  env = g_environ_setenv(env, "GST_REGISTRY", reg.c_str(), TRUE);

  auto srv = start_server();
  const auto track = make_track();
  srv->add_track("demoTrack00", track);
  std::string base;
  GSubprocess *p = spawn_gateway(g_exe, env, srv->base_url(), dir.path() + "/cache", base);
  Reply r = get(base + "/listen/demoTrack00");
  fail_unless_equals_int(r.status, 200);
  assert_str_eq(r.h("content-type"), "audio/aac");
  // The ADTS frames served, each once, in order: the same lengths and
  // payloads (the header's flag bits are the gateway's ADTS writer's).
  fail_unless_equals_int(r.body.size(), track.full.size());
  for (size_t at = 0; at + 7 <= track.full.size();) {
    const size_t len =
        ((track.full[at + 3] & 3u) << 11) | (track.full[at + 4] << 3) | (track.full[at + 5] >> 5);
    fail_unless(len >= 7 && at + len <= r.body.size(), "frame at %zu", at);
    fail_unless(r.body.compare(at + 7, len - 7, str(track.full), at + 7, len - 7) == 0 &&
                    uint8_t(r.body[at]) == 0xff && (uint8_t(r.body[at + 1]) & 0xf0) == 0xf0,
                "frame at %zu differs", at);
    at += len;
  }
  std::string errs = stop_gateway(p);
  fail_unless(errs.find("segdlsrc") == std::string::npos, "%s", errs.c_str());

  const std::string moved = dir.path() + "/bin/segdl-gateway";
  fail_unless(g_mkdir_with_parents((dir.path() + "/bin").c_str(), 0755) == 0);
  GFile *from = g_file_new_for_path(g_exe.c_str());
  GFile *to = g_file_new_for_path(moved.c_str());
  fail_unless(g_file_copy(from, to, G_FILE_COPY_NONE, nullptr, nullptr, nullptr, nullptr));
  g_object_unref(from);
  g_object_unref(to);
  fail_unless(g_chmod(moved.c_str(), 0755) == 0);
  p = spawn_gateway(moved, env, srv->base_url(), dir.path() + "/cache2", base);
  r = get(base + "/listen/demoTrack00");
  fail_unless_equals_int(r.status, 500);
  fail_unless(r.body.find("segdlsrc") != std::string::npos, "%s", r.body.c_str());
  errs = stop_gateway(p);
  fail_unless(errs.find("the segdlsrc element is not installed (looked in") != std::string::npos,
              "%s", errs.c_str());
  fail_unless(errs.find("/libgstsegdl.so") != std::string::npos, "%s", errs.c_str());
  g_strfreev(env);
}
GST_END_TEST;

static Suite *gateway_program_suite() {
  Suite *s = suite_create("gateway-program");
  TCase *tc = tcase_create("program");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_bad_options);
  tcase_add_test(tc, test_serve_and_stop);
  tcase_add_test(tc, test_finds_segdlsrc_beside_itself);
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
