// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-server — the reference backend of the segdl protocol.
 *
 *   segdl-server --root DIR            serve DIR/ID/seg_N.EXT
 *   segdl-server --demo --port 0       generate a ~3 minute melody in three forms
 *
 * Prints "segdl-server listening on http://HOST:PORT" once it accepts
 * connections (scripts read the port from it), runs until SIGINT/SIGTERM.
 * Bad options exit with status 2.
 */
#include "common/mediagen.h"
#include "server/server.h"
#include "server/util.h"

#include <glib-unix.h>
#include <glib.h>
#include <gst/gst.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kExitUsage = 2;

int usage_error(const std::string &msg) {
  g_printerr("segdl-server: %s\n", msg.c_str());
  g_printerr("Try 'segdl-server --help'.\n");
  return kExitUsage;
}

// "15,30" -> first = 15, rest = 30.
bool parse_segment_seconds(const char *spec, double &first, double &rest) {
  gchar **parts = g_strsplit(spec, ",", -1);
  bool ok = g_strv_length(parts) == 2;
  for (int i = 0; ok && i < 2; i++) {
    gchar *end = nullptr;
    const double v = g_ascii_strtod(parts[i], &end);
    ok = end && !*end && end != parts[i] && v > 0 && v < 86400;
    (i == 0 ? first : rest) = v;
  }
  g_strfreev(parts);
  return ok;
}

// "ID:N" -> id, n (N >= 0); the id is everything before the last colon.
bool parse_hold(const char *spec, std::string &id, int64_t &n) {
  const char *colon = strrchr(spec, ':');
  if (!colon || colon == spec) return false;
  gchar *end = nullptr;
  const gint64 v = g_ascii_strtoll(colon + 1, &end, 10);
  if (!end || *end || end == colon + 1 || v < 0) return false;
  id.assign(spec, colon);
  n = v;
  return true;
}

// SIGUSR1 releases the hold on `id` (a source on the default context,
// which run_until_signal() runs).
guint hold_release_on_sigusr1(segdl::server::Server &server, const std::string &id) {
  struct Release {
    segdl::server::Server *server;
    std::string id;
  };
  auto *r = new Release{&server, id};
  return g_unix_signal_add_full(
      G_PRIORITY_DEFAULT, SIGUSR1,
      [](gpointer data) noexcept -> gboolean {
        auto *rel = static_cast<Release *>(data);
        rel->server->hold_ready(rel->id, -1);
        g_print("segdl-server: released the hold on %s\n", rel->id.c_str());
        fflush(stdout);
        return G_SOURCE_CONTINUE;
      },
      r, [](gpointer data) { delete static_cast<Release *>(data); });
}

// Encodes the three demo forms at once (one thread each) and adds them.
bool add_demo(segdl::server::Server &server, double seconds, double first_s, double rest_s,
              std::string &error) {
  using segdl::media::Form;
  struct Job {
    Form form;
    const char *id;
    segdl::media::Encoded enc;
    std::string error;
    bool ok = false;
  };
  std::vector<Job> jobs = {
      {Form::Adts, "demo"}, {Form::Mp3, "demo-mp3"}, {Form::MpegTs, "demo-ts"}};
  std::vector<std::thread> threads;
  for (Job &j : jobs)
    threads.emplace_back(
        [&j, seconds] { j.ok = segdl::media::encode(j.form, seconds, j.enc, j.error); });
  for (std::thread &t : threads) t.join();
  for (Job &j : jobs) {
    if (!j.ok) {
      error = std::string("demo ") + segdl::media::form_name(j.form) + ": " + j.error;
      return false;
    }
    segdl::server::Track track;
    track.segments = segdl::media::cut(j.enc, first_s, rest_s);
    track.mime_type = segdl::media::form_mime_type(j.form);
    track.first_segment_duration = first_s;
    track.segment_duration = rest_s;
    track.duration = static_cast<double>(j.enc.duration_ns) / GST_SECOND;
    track.full = j.enc.bytes;
    g_print("serving %-9s %-11s %.1f s, %zu segments, %zu bytes\n", j.id,
            segdl::media::form_mime_type(j.form), track.duration, track.segments.size(),
            j.enc.bytes.size());
    server.add_track(j.id, std::move(track));
  }
  return true;
}

// The command line, as GOption parsed it (its strings freed with it).
struct CommandLine {
  gchar *root = nullptr;
  gchar *host = nullptr;
  gchar *style = nullptr;
  gchar *seg_seconds = nullptr;
  gchar **fault_specs = nullptr;
  gchar *hold = nullptr;
  gchar *request_log = nullptr;
  gint port = 8080;
  gint latency_ms = 0;
  gint bandwidth_kbps = 0;
  gdouble reveal_every = 0;
  gdouble demo_seconds = 180;
  gboolean total_unknown = FALSE;
  gboolean demo = FALSE;

  CommandLine() = default;
  CommandLine(const CommandLine &) = delete;
  CommandLine &operator=(const CommandLine &) = delete;
  ~CommandLine() {
    for (gchar *str : {root, host, style, seg_seconds, hold, request_log}) g_free(str);
    g_strfreev(fault_specs);
  }
};

// Parses the options into `cl`; 0, or the exit status of a usage error.
int parse_command_line(int &argc, char **&argv, CommandLine &cl) {
  const GOptionEntry entries[] = {
      {"root", 'r', 0, G_OPTION_ARG_FILENAME, &cl.root, "Serve DIR/ID/seg_N.EXT", "DIR"},
      {"port", 'p', 0, G_OPTION_ARG_INT, &cl.port, "Port (default 8080, 0 = pick a free one)", "P"},
      {"host", 0, 0, G_OPTION_ARG_STRING, &cl.host, "Address to listen on (default 127.0.0.1)",
       "HOST"},
      {"reveal-every", 0, 0, G_OPTION_ARG_DOUBLE, &cl.reveal_every,
       "Segment k becomes ready k*S seconds after the first request for its id", "S"},
      {"latency-ms", 0, 0, G_OPTION_ARG_INT, &cl.latency_ms, "Delay before every response", "MS"},
      {"bandwidth-kbps", 0, 0, G_OPTION_ARG_INT, &cl.bandwidth_kbps,
       "Throttle every response body (1 kbps = 1000 bit/s)", "KBPS"},
      {"status-style", 0, 0, G_OPTION_ARG_STRING, &cl.style, "Status JSON: bare (default) or rich",
       "STYLE"},
      {"total-unknown", 0, 0, G_OPTION_ARG_NONE, &cl.total_unknown, "Never send totalSegments",
       nullptr},
      {"fault", 0, 0, G_OPTION_ARG_STRING_ARRAY, &cl.fault_specs,
       "Inject a fault (repeatable); SEGMENT is N, * or full", "KIND:ID:SEGMENT:COUNT[:ARG]"},
      {"hold-ready", 0, 0, G_OPTION_ARG_STRING, &cl.hold,
       "List only the first N segments of ID as ready until the server gets SIGUSR1 (lets a "
       "test decide when the rest appears)",
       "ID:N"},
      {"request-log", 0, 0, G_OPTION_ARG_FILENAME, &cl.request_log,
       "On exit, write every request to FILE (tab-separated: start and end in ms from the "
       "first request, path, id, segment, Range, status)",
       "FILE"},
      {"demo", 0, 0, G_OPTION_ARG_NONE, &cl.demo,
       "Serve a generated melody: ids demo (ADTS AAC), demo-mp3, demo-ts", nullptr},
      {"demo-seconds", 0, 0, G_OPTION_ARG_DOUBLE, &cl.demo_seconds, "Demo length (default 180)",
       "N"},
      {"segment-seconds", 0, 0, G_OPTION_ARG_STRING, &cl.seg_seconds,
       "First and later segment durations: how the demo is cut, what the rich status "
       "reports (default 15,30)",
       "FIRST,REST"},
      {nullptr}};
  GOptionContext *octx = g_option_context_new("- the segdl reference backend");
  g_option_context_add_main_entries(octx, entries, nullptr);
  g_option_context_add_group(octx, gst_init_get_option_group());
  GError *err = nullptr;
  const bool parsed = g_option_context_parse(octx, &argc, &argv, &err);
  g_option_context_free(octx);
  if (!parsed) {
    const std::string msg = err ? err->message : "bad options";
    g_clear_error(&err);
    return usage_error(msg);
  }
  if (argc > 1) return usage_error(std::string("unexpected argument: ") + argv[1]);
  return 0;
}

// The server's options from the command line; 0, or a usage error's status.
int server_options(const CommandLine &cl, segdl::server::Options &opts) {
  if (cl.host) opts.host = cl.host;
  if (cl.port < 0 || cl.port > 65535) return usage_error("--port must be 0..65535");
  opts.port = cl.port;
  if (cl.reveal_every < 0) return usage_error("--reveal-every must be >= 0");
  opts.reveal_every = cl.reveal_every;
  if (cl.latency_ms < 0) return usage_error("--latency-ms must be >= 0");
  opts.latency_ms = cl.latency_ms;
  if (cl.bandwidth_kbps < 0) return usage_error("--bandwidth-kbps must be >= 0");
  opts.bandwidth_kbps = cl.bandwidth_kbps;
  if (cl.style) {
    const std::string s = cl.style;
    if (s == "bare")
      opts.status_style = segdl::server::StatusStyle::Bare;
    else if (s == "rich")
      opts.status_style = segdl::server::StatusStyle::Rich;
    else
      return usage_error("--status-style must be bare or rich");
  }
  opts.total_unknown = cl.total_unknown;
  return 0;
}

// --request-log: one line a request, times in ms from the first one's start.
bool write_request_log(const char *path, const std::vector<segdl::server::RequestRecord> &reqs) {
  std::string out = "#start_ms\tend_ms\tpath\tid\tsegment\trange\tstatus\n";
  const int64_t t0 = reqs.empty() ? 0 : reqs.front().start_us;
  char line[64];
  for (const segdl::server::RequestRecord &r : reqs) {
    g_snprintf(line, sizeof line, "%.1f\t%.1f\t", double(r.start_us - t0) / 1000,
               r.end_us ? double(r.end_us - t0) / 1000 : -1.0);
    out += line + r.path + "\t" + r.video_id + "\t" + std::to_string(r.segment) + "\t" +
           (r.range.empty() ? "-" : r.range) + "\t" + std::to_string(r.http_status) + "\n";
  }
  GError *err = nullptr;
  if (!g_file_set_contents(path, out.data(), gssize(out.size()), &err)) {
    g_printerr("segdl-server: --request-log: %s\n", err->message);
    g_clear_error(&err);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  CommandLine cl;
  if (int status = parse_command_line(argc, argv, cl)) return status;
  segdl::server::Options opts;
  if (int status = server_options(cl, opts)) return status;
  double first_s = 15, rest_s = 30;
  if (cl.seg_seconds && !parse_segment_seconds(cl.seg_seconds, first_s, rest_s))
    return usage_error("--segment-seconds wants FIRST,REST (two positive numbers)");
  if (cl.demo && !(cl.demo_seconds > 0 && cl.demo_seconds <= 6 * 3600))
    return usage_error("--demo-seconds must be in (0, 21600]");
  if (!cl.root && !cl.demo) return usage_error("nothing to serve: give --root DIR or --demo");

  std::vector<segdl::server::Fault> faults;
  for (gchar **s = cl.fault_specs; s && *s; s++) {
    segdl::server::Fault f;
    std::string why;
    if (!segdl::server::parse_fault(*s, f, why)) return usage_error(why);
    faults.push_back(f);
  }

  std::string hold_id;
  int64_t hold_n = -1;
  if (cl.hold && !parse_hold(cl.hold, hold_id, hold_n))
    return usage_error("--hold-ready wants ID:N (N >= 0)");

  segdl::server::Server server(opts);
  std::string error;
  if (cl.root) {
    if (!g_file_test(cl.root, G_FILE_TEST_IS_DIR))
      return usage_error(std::string("--root: not a directory: ") + cl.root);
    if (!server.load_dir(cl.root, first_s, rest_s, error)) return usage_error(error);
    g_print("serving the tracks under %s\n", cl.root);
  }
  if (cl.demo && !add_demo(server, cl.demo_seconds, first_s, rest_s, error)) {
    g_printerr("segdl-server: %s\n", error.c_str());
    return 1;
  }
  for (const segdl::server::Fault &f : faults) server.add_fault(f);

  if (!server.start(error)) {
    g_printerr("segdl-server: %s\n", error.c_str());
    return 1;
  }
  guint release = 0;
  if (hold_n >= 0) {
    server.hold_ready(hold_id, hold_n);
    release = hold_release_on_sigusr1(server, hold_id);
  }
  g_print("segdl-server listening on %s\n", server.base_url().c_str());
  fflush(stdout);

  segdl::server::run_until_signal();
  if (release) g_source_remove(release);
  server.stop();
  g_print("segdl-server stopped\n");
  if (cl.request_log && !write_request_log(cl.request_log, server.requests())) return 1;
  return 0;
}
