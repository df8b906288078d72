// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — `segdl help COMMAND`, and reading --batch files. */
#include "cli.h"

#include <glib.h>

#include <cstdio>
#include <cstring>

namespace segdl::cli {

namespace {

struct Help {
  const char *command;
  const char *text;
};

const Help kHelp[] = {
    {"download",
     "segdl VIDEO_ID... [options]\n"
     "  Downloads each track, one after the other, into the download dir (-d DIR,\n"
     "  default ./downloads): segdlsrc's disk cache, so a second run is instant and\n"
     "  works offline. Waits for a backend still producing the track (up to\n"
     "  --max-wait seconds), or with --no-monitor takes only the segments ready now.\n"
     "  --combine OUT   join the track into OUT without re-encoding; the container\n"
     "                  follows the extension (.m4a .mp4 .m4b .mka .mkv .webm .ogg .oga\n"
     "                  .opus .mp3 .aac) and the muxer the codec; an extension that\n"
     "                  cannot hold the codec (Opus in .m4a/.mp4: mp4mux writes it\n"
     "                  short) is an error (exit 2): before any\n"
     "                  download when the status gives the type, else once segment\n"
     "                  0 tells the codec. Written as OUT.part, renamed when complete,\n"
     "                  removed on failure or Ctrl-C. 'auto' = ID.<natural extension>\n"
     "                  (m4a for AAC, mp3, opus, ogg for Vorbis) in the current dir;\n"
     "                  an existing ID.EXT is kept (exit 2) unless --overwrite.\n"
     "  --play          play while downloading (autoaudiosink, or $SEGDL_AUDIO_SINK)\n"
     "  --json          one JSON object per line on stdout per event: start, state,\n"
     "                  output, playing, segment, retry, fallback, warning, info,\n"
     "                  done, error, interrupted\n"
     "  --batch FILE    more ids, one a line; '#' at the start of a line or after a\n"
     "                  blank begins a comment\n"
     "  A download dir of the old tools (DIR/ID/segment_N.m4a) is reused: each file\n"
     "  is checked and copied into the cache; bad ones are downloaded again; the old\n"
     "  files are never changed or deleted (--no-migrate to skip)."},
    {"preload",
     "segdl preload VIDEO_ID... [options]\n"
     "  Fills the download dir with the tracks' segments, nothing else (the music\n"
     "  app's preload). Same options as a download, without --combine and --play."},
    {"status",
     "segdl status VIDEO_ID [--backend-url URL] [--json]\n"
     "  Asks the backend once and prints what it says: ready segments, total,\n"
     "  state, duration, type. --json prints one object. Exit 3 when the backend\n"
     "  cannot be reached or refuses."},
    {"cache",
     "segdl cache info [VIDEO_ID] [-d DIR] [--json]\n"
     "  The tracks in the download dir: segments held / total, size, when last\n"
     "  used, complete or not (one track with VIDEO_ID). Only reads.\n"
     "segdl cache clean [--older-than D] [--max-size SIZE] [-d DIR]\n"
     "  Removes tracks unused for D (30d, 12h, 90m, 45s) and/or the least recently\n"
     "  used ones until the dir is under SIZE (500M, 2G; K/M/G = 1024^n); with\n"
     "  neither, every track. Never a track in use by another segdl or pipeline,\n"
     "  never an old tools' DIR/ID folder or any other file."},
};

}  // namespace

int help_command(const std::string &cmd) {
  for (const Help &h : kHelp)
    if (cmd == h.command || (cmd.empty() && strcmp(h.command, "download") == 0) ||
        (cmd == "get" && strcmp(h.command, "download") == 0)) {
      printf("%s\n\nAll options: segdl --help\n", h.text);
      return kExitOk;
    }
  fprintf(stderr, "segdl: no help for '%s' (commands: download, preload, status, cache)\n",
          cmd.c_str());
  return kExitUsage;
}

bool read_batch_file(const std::string &path, std::vector<std::string> &ids, std::string &error) {
  gchar *text = nullptr;
  GError *err = nullptr;
  bool ok;
  if (path == "-") {
    GIOChannel *in = g_io_channel_unix_new(0);
    gsize len = 0;
    ok = g_io_channel_read_to_end(in, &text, &len, &err) == G_IO_STATUS_NORMAL;
    g_io_channel_unref(in);
  } else {
    ok = g_file_get_contents(path.c_str(), &text, nullptr, &err);
  }
  if (!ok) {
    error = err ? err->message : "cannot read " + path;
    g_clear_error(&err);
    g_free(text);
    return false;
  }
  gchar **lines = g_strsplit(text ? text : "", "\n", -1);
  for (gchar **l = lines; *l; l++) {
    // A comment: from a '#' that begins the line or follows a blank.
    for (gchar *c = *l; *c; c++)
      if (*c == '#' && (c == *l || g_ascii_isspace(c[-1]))) {
        *c = '\0';
        break;
      }
    g_strstrip(*l);
    if (**l) ids.push_back(*l);
  }
  g_strfreev(lines);
  g_free(text);
  return true;
}

}  // namespace segdl::cli
