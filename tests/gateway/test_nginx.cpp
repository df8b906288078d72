// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — nginx (Debian's package) as a caching reverse proxy
 * (proxy_cache) in front of two gateways on loopback. A track is played
 * through nginx with segdlsrc; the second play is served by nginx alone: the
 * gateways' request counts do not move.
 *
 * nginx gets its listening socket from this test (made on 127.0.0.1 port 0
 * and already listening, passed the way nginx passes sockets to a new binary:
 * the NGINX environment variable), so there is no port race and no waiting
 * for it to come up: connections queue until it accepts. Reported skipped
 * (77) when nginx is not installed or cannot run here.
 */
#include "../harness.h"
#include "gwtest.h"

#include <gio/gio.h>
#include <glib/gstdio.h>

#include <csignal>
#include <unistd.h>

namespace {

const char *const kId = "nginxTrack0";

// Writes nginx.conf for a cache in front of `gateways`; returns its path.
std::string write_config(const std::string &dir, int port, const std::vector<int> &gateways) {
  std::string up;
  for (int p : gateways) up += "    server 127.0.0.1:" + std::to_string(p) + ";\n";
  std::string conf;
  if (geteuid() == 0) conf += "user root root;\n";  // the workers must reach the temp dir
  conf +=
      "worker_processes 1;\n"
      "pid " +
      dir +
      "/nginx.pid;\n"
      "error_log " +
      dir +
      "/error.log info;\n"
      "events { worker_connections 256; }\n"
      "http {\n"
      "  access_log " +
      dir +
      "/access.log;\n"
      "  client_body_temp_path " +
      dir +
      "/client;\n"
      "  proxy_temp_path " +
      dir +
      "/proxy;\n"
      "  fastcgi_temp_path " +
      dir +
      "/fastcgi;\n"
      "  uwsgi_temp_path " +
      dir +
      "/uwsgi;\n"
      "  scgi_temp_path " +
      dir +
      "/scgi;\n"
      "  proxy_cache_path " +
      dir +
      "/cache levels=1:2 keys_zone=segdl:10m max_size=1g "
      "inactive=1h use_temp_path=off;\n"
      "  upstream gateways {\n" +
      up +
      "    keepalive 8;\n  }\n"
      "  server {\n"
      "    listen 127.0.0.1:" +
      std::to_string(port) +
      ";\n"
      "    location / {\n"
      "      proxy_pass http://gateways;\n"
      "      proxy_http_version 1.1;\n"
      "      proxy_set_header Connection \"\";\n"
      "      proxy_cache segdl;\n"
      "      proxy_cache_lock on;\n"
      "      add_header X-Cache-Status $upstream_cache_status always;\n"
      "    }\n"
      "  }\n"
      "}\n";
  const std::string path = dir + "/nginx.conf";
  fail_unless(g_file_set_contents(path.c_str(), conf.c_str(), -1, nullptr));
  return path;
}

// nginx running on a socket this test made; stopped (and waited for) at the end.
struct Nginx {
  GSubprocess *proc = nullptr;
  int port = 0;

  bool start(const std::string &exe, const std::string &dir, const std::vector<int> &gateways) {
    GError *err = nullptr;
    GSocket *sock =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &err);
    fail_unless(sock != nullptr);
    GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    GSocketAddress *addr = g_inet_socket_address_new(lo, 0);
    fail_unless(g_socket_bind(sock, addr, TRUE, &err) && g_socket_listen(sock, &err));
    g_object_unref(addr);
    g_object_unref(lo);
    GSocketAddress *local = g_socket_get_local_address(sock, nullptr);
    port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
    g_object_unref(local);
    const std::string conf = write_config(dir, port, gateways);
    GSubprocessLauncher *l =
        g_subprocess_launcher_new(static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_SILENCE));
    g_subprocess_launcher_take_fd(l, dup(g_socket_get_fd(sock)), 3);
    g_subprocess_launcher_setenv(l, "NGINX", "3;", TRUE);
    const std::string err_log = dir + "/error.log";
    proc = g_subprocess_launcher_spawn(l, &err, exe.c_str(), "-p", dir.c_str(), "-c", conf.c_str(),
                                       "-e", err_log.c_str(), "-g", "daemon off;", nullptr);
    g_object_unref(l);
    g_object_unref(sock);  // nginx holds its copy
    if (!proc) g_printerr("nginx: %s\n", err ? err->message : "?");
    g_clear_error(&err);
    return proc != nullptr;
  }

  // Stops nginx: TERM, then KILL if it has not gone within 10 s.
  void stop() {
    if (!proc) return;
    g_subprocess_send_signal(proc, SIGTERM);
    GMainContext *ctx = g_main_context_new();
    g_main_context_push_thread_default(ctx);
    bool done = false;
    g_subprocess_wait_async(
        proc, nullptr,
        [](GObject *, GAsyncResult *, gpointer d) { *static_cast<bool *>(d) = true; }, &done);
    const gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (!done && g_get_monotonic_time() < deadline) g_main_context_iteration(ctx, TRUE);
    if (!done) {
      g_subprocess_force_exit(proc);
      while (!done) g_main_context_iteration(ctx, TRUE);
    }
    g_main_context_pop_thread_default(ctx);
    g_main_context_unref(ctx);
    g_clear_object(&proc);
  }
  ~Nginx() { stop(); }
};

std::string nginx_path() {
  g_autofree char *p = g_find_program_in_path("nginx");
  if (p) return p;
  return g_file_test("/usr/sbin/nginx", G_FILE_TEST_IS_EXECUTABLE) ? "/usr/sbin/nginx" : "";
}

uint64_t gateway_requests(const std::vector<std::unique_ptr<segdl::gateway::Gateway>> &gws) {
  uint64_t n = 0;
  for (const auto &g : gws) n += g->counters().requests;
  return n;
}

// Plays the track through `backend` with segdlsrc (raw bytes joined).
void play(const std::string &backend, const segdl::test::Bytes &expected) {
  segdl::test::Run run;
  GstElement *p =
      segdl::test::make_pipeline(backend, kId, "join=bytes", "appsink name=sink sync=false");
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "no EOS: %s", run.error ? run.error->message : "timeout");
  fail_unless(run.bytes == expected, "played %zu bytes, expected %zu", run.bytes.size(),
              expected.size());
}

}  // namespace

GST_START_TEST(test_nginx_in_front) {
  const std::string exe = nginx_path();
  gwtest::TempDir dir, cache_a, cache_b;
  auto srv = gwtest::start_server();
  segdl::server::Track track = segdl::test::make_track(segdl::media::Form::Adts, 10.5);
  const segdl::test::Bytes expected = segdl::test::concat(track.segments);
  srv->add_track(kId, track);
  std::vector<std::unique_ptr<segdl::gateway::Gateway>> gws;
  gws.push_back(gwtest::start_gateway(gwtest::gw_options(srv->base_url(), cache_a.path())));
  gws.push_back(gwtest::start_gateway(gwtest::gw_options(srv->base_url(), cache_b.path())));
  Nginx nginx;
  fail_unless(nginx.start(exe, dir.path(), {gws[0]->port(), gws[1]->port()}));
  const std::string front = "http://127.0.0.1:" + std::to_string(nginx.port);

  play(front, expected);
  const uint64_t after_first = gateway_requests(gws);
  fail_unless(after_first > 0);
  fail_unless(gwtest::segment_requests(*srv) >= track.segments.size());

  play(front, expected);
  fail_unless_equals_int(gateway_requests(gws), after_first);  // nginx alone

  // What nginx says of a segment: a cache hit, with the gateway's headers.
  gwtest::Reply r = gwtest::get(front + "/stream?v=" + kId + "&segment=1");
  fail_unless_equals_int(r.status, 200);
  assert_str_eq(r.h("x-cache-status"), "HIT");
  fail_unless(r.body == gwtest::str(track.segments[1]));
  fail_unless_equals_int(gateway_requests(gws), after_first);
}
GST_END_TEST;

static Suite *gateway_nginx_suite() {
  Suite *s = suite_create("gateway-nginx");
  TCase *tc = tcase_create("nginx");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_nginx_in_front);
  return s;
}

int main(int argc, char **argv) {
  gst_check_init(&argc, &argv);
  if (nginx_path().empty()) {
    g_print("SKIP: nginx is not installed (Debian: nginx-light)\n");
    return 77;
  }
  // Can it run here at all? (nginx -t on a minimal configuration)
  char *probe = g_dir_make_tmp("segdl-nginx-XXXXXX", nullptr);
  if (!probe) return 99;
  const std::string dir = probe;
  g_free(probe);
  const std::string conf = dir + "/t.conf";
  const std::string text = "pid " + dir + "/p;\nerror_log " + dir +
                           "/e.log;\nevents {}\nhttp { access_log off; client_body_temp_path " +
                           dir + "/c; proxy_temp_path " + dir + "/x; }\n";
  g_file_set_contents(conf.c_str(), text.c_str(), -1, nullptr);
  const std::string cmd = "'" + nginx_path() + "' -q -t -p '" + dir + "' -c '" + conf + "' -e '" +
                          dir + "/e.log' >/dev/null 2>&1";
  const bool runs = system(cmd.c_str()) == 0;
  const std::string rm = "rm -rf '" + dir + "'";
  if (system(rm.c_str()) != 0) g_printerr("cannot remove %s\n", dir.c_str());
  if (!runs) {
    g_print("SKIP: nginx cannot run here (nginx -t failed)\n");
    return 77;
  }
  Suite *s = gateway_nginx_suite();
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
