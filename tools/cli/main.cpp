// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — download, join and play segmented audio from the command line.
 *
 *   segdl VIDEO_ID... [--combine OUT|auto] [--play] [options]
 *   segdl status ID | preload ID... | cache info [ID] | cache clean | help [CMD]
 *
 * A GStreamer application around segdlsrc (download, cache, retries) and
 * GStreamer's muxers (--combine). See docs/segdl.1.md.
 */
#include "cli.h"
#include "config.h"
#include "commands.h"
#include "download.h"
#include "output.h"
#include "plugin.h"
#include "progress.h"
#include "segdl/log.h"
#include "segdl/urls.h"

#include <glib-unix.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace segdl::cli {

namespace {

// What the signal sources act on (main thread only).
struct SignalState {
  Download *current = nullptr;
  int signo = 0;
};
SignalState g_signals;

gboolean on_signal(gpointer data) noexcept {
  const int signo = GPOINTER_TO_INT(data);
  if (g_signals.signo != 0) _exit(128 + signo);  // a second Ctrl-C: no more waiting
  g_signals.signo = signo;
  if (g_signals.current) {
    g_signals.current->interrupt(signo);
  } else {
    // No download to stop cleanly (segdl status): nothing is left behind.
    fprintf(stderr, "segdl: %s\n", signo == SIGINT ? "interrupted" : "terminated");
    _exit(128 + signo);
  }
  return G_SOURCE_CONTINUE;
}

const char *kSummary =
    "Downloads the segments of VIDEO_ID into the download dir (segdlsrc's disk cache),\n"
    "optionally joins them into one file (--combine) and plays them (--play).\n"
    "\n"
    "Commands:\n"
    "  segdl VIDEO_ID...        download (and --combine / --play) one track after the other\n"
    "  segdl preload VIDEO_ID...   fill the download dir only\n"
    "  segdl status VIDEO_ID    what the backend says about the track\n"
    "  segdl cache info [ID]    tracks in the download dir: segments, size, age, complete\n"
    "  segdl cache clean [--older-than D] [--max-size S]   remove tracks not in use\n"
    "  segdl help [COMMAND]     help on a command";

const char *kDescription =
    "Exit status: 0 complete; 1 other failure; 2 usage error (also a --combine container\n"
    "that cannot hold the codec); 3 backend unreachable, refusing or in error; 4 track\n"
    "incomplete (max-wait passed, a segment gone for good); 5 local I/O error (output\n"
    "file, download dir); 6 not audio GStreamer can read; 130 Ctrl-C; 143 SIGTERM.\n"
    "\n"
    "Environment: SEGDL_BACKEND_URL (default --backend-url), SEGDL_AUDIO_SINK (a\n"
    "gst-launch description of the sink --play uses, default autoaudiosink).\n"
    "See segdl(1).";

struct Parsed {
  Options opts;
  std::vector<std::string> args;
  std::string older_than, max_size;
  gchar *batch = nullptr;  // --batch, freed with the struct
  Parsed() = default;
  Parsed(const Parsed &) = delete;
  Parsed &operator=(const Parsed &) = delete;
  ~Parsed() { g_free(batch); }
};

int usage(const std::string &msg) {
  fprintf(stderr, "segdl: %s\nTry 'segdl --help'.\n", msg.c_str());
  return kExitUsage;
}

// What GOption writes; the strings are freed with it.
struct RawOptions {
  gchar *backend = nullptr, *dir = nullptr, *combine = nullptr, *fallback = nullptr,
        *agent = nullptr, *missing = nullptr, *older = nullptr, *maxsize = nullptr;
  gint concurrent = 3, retries = 3;
  gdouble poll = 2, max_wait = 600;
  gboolean no_monitor = FALSE, verbose = FALSE, quiet = FALSE, play = FALSE, json = FALSE,
           no_migrate = FALSE, overwrite = FALSE, version = FALSE;
  RawOptions() = default;
  RawOptions(const RawOptions &) = delete;
  RawOptions &operator=(const RawOptions &) = delete;
  ~RawOptions() {
    for (gchar *s : {backend, dir, combine, fallback, agent, missing, older, maxsize}) g_free(s);
  }
};

// Every option of every command (one table: `segdl --help` lists them all).
std::vector<GOptionEntry> option_entries(RawOptions &r, Parsed &p) {
  return {
      {"backend-url", 'b', 0, G_OPTION_ARG_STRING, &r.backend,
       "Backend base URL (default $SEGDL_BACKEND_URL)", "URL"},
      {"download-dir", 'd', 0, G_OPTION_ARG_FILENAME, &r.dir,
       "Where segments are kept: segdlsrc's cache (default ./downloads)", "DIR"},
      {"combine", 'o', 0, G_OPTION_ARG_FILENAME, &r.combine,
       "Join the track into OUT (.m4a .mp4 .mka .webm .ogg .opus .mp3 .aac), or 'auto' for "
       "ID.<natural extension>",
       "OUT"},
      {"overwrite", 0, 0, G_OPTION_ARG_NONE, &r.overwrite,
       "--combine auto may replace an existing ID.EXT (refused otherwise)", nullptr},
      {"play", 'p', 0, G_OPTION_ARG_NONE, &r.play, "Play while downloading", nullptr},
      {"concurrent", 'c', 0, G_OPTION_ARG_INT, &r.concurrent,
       "Parallel downloads, 1-16 (default 3)", "N"},
      {"poll-interval", 0, 0, G_OPTION_ARG_DOUBLE, &r.poll,
       "Seconds between status polls (default 2)", "S"},
      {"max-retries", 0, 0, G_OPTION_ARG_INT, &r.retries,
       "Retries of a failing request, 0-100 (default 3): tried at most N + 1 times", "N"},
      {"max-wait", 0, 0, G_OPTION_ARG_DOUBLE, &r.max_wait,
       "Seconds the download may spend in all waiting for the backend's data, 0 = no limit "
       "(default 600)",
       "S"},
      {"no-monitor", 0, 0, G_OPTION_ARG_NONE, &r.no_monitor,
       "Only the segments ready now, do not wait for more", nullptr},
      {"fallback-url", 0, 0, G_OPTION_ARG_STRING, &r.fallback,
       "The whole track at one URL, used if the segmented backend fails", "URL"},
      {"missing-segment", 0, 0, G_OPTION_ARG_STRING, &r.missing,
       "A segment gone for good: fallback (default), error or gap", "POLICY"},
      {"user-agent", 0, 0, G_OPTION_ARG_STRING, &r.agent, "User-Agent header", "TEXT"},
      {"batch", 0, 0, G_OPTION_ARG_FILENAME, &p.batch,
       "Read more ids from FILE, one a line ('-' = stdin)", "FILE"},
      {"json", 'j', 0, G_OPTION_ARG_NONE, &r.json, "Progress as JSON events, one a line, on stdout",
       nullptr},
      {"verbose", 'v', 0, G_OPTION_ARG_NONE, &r.verbose, "Every retry, and error details", nullptr},
      {"quiet", 'q', 0, G_OPTION_ARG_NONE, &r.quiet, "No progress, only errors", nullptr},
      {"no-migrate", 0, 0, G_OPTION_ARG_NONE, &r.no_migrate,
       "Do not reuse an old tools' DIR/ID/segment_N files", nullptr},
      {"older-than", 0, 0, G_OPTION_ARG_STRING, &r.older,
       "cache clean: tracks unused this long (30d, 12h, 90m, 45s)", "D"},
      {"max-size", 0, 0, G_OPTION_ARG_STRING, &r.maxsize,
       "cache clean: least recently used tracks until under SIZE (500M, 2G)", "SIZE"},
      {"version", 0, 0, G_OPTION_ARG_NONE, &r.version, "Print the version", nullptr},
      {nullptr}};
}

void apply_options(const RawOptions &r, Parsed &p) {
  Options &o = p.opts;
  const char *env = g_getenv("SEGDL_BACKEND_URL");
  o.backend_url = r.backend ? r.backend : (env ? env : "");
  if (r.dir) o.download_dir = r.dir;
  if (r.combine) o.combine = r.combine;
  if (r.fallback) o.fallback_url = r.fallback;
  if (r.agent) o.user_agent = r.agent;
  if (r.missing) o.missing_segment = r.missing;
  if (r.older) p.older_than = r.older;
  if (r.maxsize) p.max_size = r.maxsize;
  o.concurrent = r.concurrent;
  o.max_retries = r.retries;
  o.poll_interval = r.poll;
  o.max_wait = r.max_wait;
  o.monitor = !r.no_monitor;
  o.verbose = r.verbose;
  o.quiet = r.quiet;
  o.play = r.play;
  o.json = r.json;
  o.migrate = !r.no_migrate;
  o.overwrite = r.overwrite;
}

// Parses every option; the remaining words land in p.args.
int parse_options(int argc, char **argv, Parsed &p) {
  RawOptions raw;
  const std::vector<GOptionEntry> entries = option_entries(raw, p);
  GOptionContext *ctx = g_option_context_new("VIDEO_ID... | COMMAND [ARGS]");
  g_option_context_set_summary(ctx, kSummary);
  g_option_context_set_description(ctx, kDescription);
  g_option_context_add_main_entries(ctx, entries.data(), nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group());
  GError *err = nullptr;
  const bool ok = g_option_context_parse(ctx, &argc, &argv, &err);
  g_option_context_free(ctx);
  if (!ok) {
    const std::string msg = err ? err->message : "bad options";
    g_clear_error(&err);
    return usage(msg);
  }
  if (raw.version) {
    std::string unused;
    const std::string plugin = ensure_segdlsrc(unused) ? segdlsrc_plugin_file() : "";
    printf("segdl %s (%s)\nsegdlsrc: %s\n", VERSION, gst_version_string(),
           plugin.empty() ? "not found" : plugin.c_str());
    return -1;
  }
  apply_options(raw, p);
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--") != 0) p.args.push_back(argv[i]);
  return kExitOk;
}

// The backend is given and is an http(s) URL (exit 2 before any request
// or progress output otherwise).
int check_backend(const Options &o) {
  if (o.backend_url.empty())
    return usage("no backend: give --backend-url or set SEGDL_BACKEND_URL");
  if (!is_http_url(o.backend_url))
    return usage("the backend URL must be an http:// or https:// URL: " +
                 redact_url(o.backend_url));
  return kExitOk;
}

// An id is refused before any request or folder (exit 2) when it is empty,
// not UTF-8 text, or holds a control character (C0 or DEL): no backend
// names a track so, and a terminal line or a batch file could not show it.
int check_id(const std::string &id) {
  if (id.empty()) return usage("VIDEO_ID is empty");
  const char *problem = nullptr;
  if (!g_utf8_validate(id.data(), gssize(id.size()), nullptr))
    problem = "is not UTF-8 text";
  else if (std::any_of(id.begin(), id.end(),
                       [](char c) { return g_ascii_iscntrl(c) || c == '\x7f'; }))
    problem = "has a control character";
  if (!problem) return kExitOk;
  gchar *shown = g_strescape(id.c_str(), nullptr);
  const std::string text = std::string("VIDEO_ID \"") + shown + "\" " + problem;
  g_free(shown);
  return usage(text);
}

// Checks the download options before anything is fetched.
int check_download_options(const Options &o, size_t ids) {
  const int backend = check_backend(o);
  if (backend != kExitOk) return backend;
  if (!o.fallback_url.empty() && !is_http_url(o.fallback_url))
    return usage("--fallback-url must be an http:// or https:// URL: " +
                 redact_url(o.fallback_url));
  if (o.concurrent < 1 || o.concurrent > 16) return usage("--concurrent must be 1..16");
  if (o.max_retries < 0 || o.max_retries > 100) return usage("--max-retries must be 0..100");
  if (!(o.poll_interval >= 0.05 && o.poll_interval <= 3600))
    return usage("--poll-interval must be between 0.05 and 3600 seconds");
  if (!(o.max_wait >= 0 && o.max_wait <= 1e7)) return usage("--max-wait must be >= 0");
  if (!o.missing_segment.empty() && o.missing_segment != "fallback" &&
      o.missing_segment != "error" && o.missing_segment != "gap")
    return usage("--missing-segment must be fallback, error or gap");
  if (o.combine.empty() || o.combine == "auto") return kExitOk;
  if (ids > 1) return usage("--combine FILE takes one id; use --combine auto for several");
  std::string error;
  if (!known_extension(path_extension(o.combine), error)) return usage("--combine: " + error);
  gchar *parent = g_path_get_dirname(o.combine.c_str());
  const bool writable = g_file_test(parent, G_FILE_TEST_IS_DIR) && access(parent, W_OK) == 0;
  const std::string where = parent;
  g_free(parent);
  if (!writable) {
    fprintf(stderr, "segdl: --combine: cannot write in %s\n", where.c_str());
    return kExitLocalIo;
  }
  return kExitOk;
}

Progress::Mode progress_mode(const Options &o) {
  if (o.json) return Progress::Mode::Json;
  if (o.quiet) return Progress::Mode::Quiet;
  const char *term = g_getenv("TERM");
  const bool dumb = term && strcmp(term, "dumb") == 0;
  return isatty(STDERR_FILENO) && !dumb ? Progress::Mode::Bar : Progress::Mode::Lines;
}

// Downloads the ids one after the other; the exit code is the first
// failure's (the others are still tried), or 128 + signal at once.
int run_downloads(const Options &o, const std::vector<std::string> &ids) {
  for (const std::string &id : ids) {
    const int bad_id = check_id(id);
    if (bad_id != kExitOk) return bad_id;
  }
  const int bad = check_download_options(o, ids.size());
  if (bad != kExitOk) return bad;
  Progress progress(progress_mode(o), o.verbose);
  int result = kExitOk;
  for (size_t i = 0; i < ids.size() && g_signals.signo == 0; i++) {
    int code;
    bool made_dir;
    {
      Download dl(o, ids[i], i + 1, ids.size(), progress);
      g_signals.current = &dl;
      code = dl.run();
      g_signals.current = nullptr;
      made_dir = dl.made_download_dir();
    }
    // The pipeline is gone (its lock on the track with it): nothing is left
    // of a track of which nothing came, nor a download dir it made.
    remove_empty_track(o.download_dir, ids[i]);
    if (made_dir) g_rmdir(o.download_dir.c_str());
    if (code >= 128) return code;
    if (result == kExitOk) result = code;
  }
  return g_signals.signo ? 128 + g_signals.signo : result;
}

}  // namespace

int help_command(const std::string &cmd);

int main_impl(int argc, char **argv) {
  // Words after `--` are always ids: `segdl -- status` downloads "status".
  bool dashdash = false;
  for (int i = 1; i < argc; i++) dashdash = dashdash || strcmp(argv[i], "--") == 0;
  Parsed p;
  const int rc = parse_options(argc, argv, p);
  if (rc < 0) return kExitOk;  // --version
  if (rc != kExitOk) return rc;
  Options &o = p.opts;
  const char *cmd = p.args.empty() ? "" : p.args[0].c_str();
  if (dashdash) cmd = "";

  if (strcmp(cmd, "help") == 0) return help_command(p.args.size() > 1 ? p.args[1] : "");
  if (strcmp(cmd, "status") == 0) {
    if (p.args.size() != 2) return usage("status takes one VIDEO_ID");
    const int bad_id = check_id(p.args[1]);
    if (bad_id != kExitOk) return bad_id;
    const int backend = check_backend(o);
    return backend != kExitOk ? backend : cmd_status(o, p.args[1]);
  }
  if (strcmp(cmd, "cache") == 0) {
    const std::string sub = p.args.size() > 1 ? p.args[1] : "";
    if (sub == "info" && p.args.size() <= 3)
      return cmd_cache_info(o, p.args.size() == 3 ? p.args[2] : "", p.args.size() == 3);
    if (sub != "clean" || p.args.size() != 2)
      return usage("cache info [ID] | cache clean [--older-than D] [--max-size S]");
    int64_t age = 0;
    uint64_t size = 0;
    if (!p.older_than.empty() && !parse_duration(p.older_than, age))
      return usage("--older-than wants a duration such as 30d, 12h, 90m or 45s");
    if (!p.max_size.empty() && !parse_size(p.max_size, size))
      return usage("--max-size wants a size such as 500M or 2G");
    return cmd_cache_clean(o, age, size);
  }
  const bool preload = strcmp(cmd, "preload") == 0;
  std::vector<std::string> ids(p.args.begin() + (preload ? 1 : 0), p.args.end());
  if (p.batch) {
    std::string error;
    if (!read_batch_file(p.batch, ids, error)) return usage("--batch: " + error);
  }
  if (ids.empty()) return usage("no VIDEO_ID given");
  if (preload && (!o.combine.empty() || o.play))
    return usage("preload does not take --combine or --play");
  return run_downloads(o, ids);
}

}  // namespace segdl::cli

int main(int argc, char **argv) {
  g_set_prgname("segdl");
  g_unix_signal_add(SIGINT, segdl::cli::on_signal, GINT_TO_POINTER(SIGINT));
  g_unix_signal_add(SIGTERM, segdl::cli::on_signal, GINT_TO_POINTER(SIGTERM));
  // Past a file-size limit (ulimit -f) a write fails with EFBIG, reported
  // and cleaned up like a full disk, instead of SIGXFSZ killing segdl with
  // OUT.part left behind.
  signal(SIGXFSZ, SIG_IGN);
  return segdl::cli::main_impl(argc, argv);
}
