// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl example — a small player around playbin and the segdl:// URI.
 *
 * Shows what an application does with segdlsrc: play a segdl:// (or
 * segdls://) URI with playbin, pause while BUFFERING is under 100 % and
 * resume at 100 %, print the WARNINGs segdlsrc posts for faults it works
 * around, print per-segment progress ("segdl-segment" element messages) and
 * the final stats, seek once the pipeline is prerolled, and report errors
 * with their domain, code and details.
 *
 *   segdl-example-player segdl://127.0.0.1:8080/demo
 *   segdl-example-player --seek 20 --audio-sink "fakesink sync=false" URI
 *
 * Exit status: 0 at the end of the track, 1 on an error, 2 on bad usage.
 * Built by meson (examples/meson.build) and run by the test suite, so it
 * always compiles and works against the current plugin.
 */
#include <gst/gst.h>

#include <cstdio>

namespace {

struct Player {
  GstElement *playbin = nullptr;
  GMainLoop *loop = nullptr;
  double seek_to = -1;  // seconds; < 0 = no seek
  bool seeked = false;
  bool buffering = false;
  int exit_code = 0;
};

// A structure's fields as "name=value" text, for printing.
void print_structure(const char *what, const GstStructure *s) {
  g_autofree char *text = gst_structure_to_string(s);
  g_print("%s %s\n", what, text);
}

void on_error(Player &p, GstMessage *msg) {
  g_autoptr(GError) err = nullptr;
  g_autofree char *debug = nullptr;
  gst_message_parse_error(msg, &err, &debug);
  g_printerr("error: %s (domain %s, code %d)\n", err->message, g_quark_to_string(err->domain),
             err->code);
  const GstStructure *details = nullptr;
  gst_message_parse_error_details(msg, &details);
  if (details) print_structure("error-details", details);
  if (debug) g_printerr("debug: %s\n", debug);
  p.exit_code = 1;
  g_main_loop_quit(p.loop);
}

void on_warning(GstMessage *msg) {
  g_autoptr(GError) err = nullptr;
  gst_message_parse_warning(msg, &err, nullptr);
  g_print("warning: %s\n", err->message);
}

// Pause while the source is buffering, play again once it has enough.
void on_buffering(Player &p, GstMessage *msg) {
  int percent = 0;
  gst_message_parse_buffering(msg, &percent);
  if (percent < 100 && !p.buffering) {
    p.buffering = true;
    g_print("buffering %d%%\n", percent);
    gst_element_set_state(p.playbin, GST_STATE_PAUSED);
  } else if (percent >= 100 && p.buffering) {
    p.buffering = false;
    g_print("buffering done\n");
    gst_element_set_state(p.playbin, GST_STATE_PLAYING);
  }
}

// Once prerolled: seek (once) if asked to.
void on_async_done(Player &p) {
  if (p.seek_to < 0 || p.seeked) return;
  p.seeked = true;
  gint64 pos = gint64(p.seek_to * GST_SECOND);
  if (gst_element_seek_simple(p.playbin, GST_FORMAT_TIME,
                              GstSeekFlags(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE), pos))
    g_print("seeked to %" GST_TIME_FORMAT "\n", GST_TIME_ARGS(pos));
  else
    g_print("seek to %" GST_TIME_FORMAT " refused\n", GST_TIME_ARGS(pos));
}

gboolean on_bus(GstBus *, GstMessage *msg, gpointer data) noexcept {
  Player &p = *static_cast<Player *>(data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
      on_error(p, msg);
      break;
    case GST_MESSAGE_WARNING:
      on_warning(msg);
      break;
    case GST_MESSAGE_BUFFERING:
      on_buffering(p, msg);
      break;
    case GST_MESSAGE_ASYNC_DONE:
      on_async_done(p);
      break;
    case GST_MESSAGE_ELEMENT: {
      const GstStructure *s = gst_message_get_structure(msg);
      if (s && gst_structure_has_name(s, "segdl-segment")) print_structure("segment", s);
      if (s && gst_structure_has_name(s, "segdl-stats")) print_structure("stats", s);
      break;
    }
    case GST_MESSAGE_EOS: {
      gint64 pos = -1;
      gst_element_query_position(p.playbin, GST_FORMAT_TIME, &pos);
      g_print("end of track at %" GST_TIME_FORMAT "\n", GST_TIME_ARGS(pos));
      g_main_loop_quit(p.loop);
      break;
    }
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

}  // namespace

int main(int argc, char **argv) {
  double seek_to = -1;
  const char *sink_desc = nullptr;
  GOptionEntry entries[] = {
      {"seek", 0, 0, G_OPTION_ARG_DOUBLE, &seek_to, "Seek to this position (seconds) once ready",
       "S"},
      {"audio-sink", 0, 0, G_OPTION_ARG_STRING, &sink_desc,
       "Audio sink description (default: autoaudiosink)", "DESC"},
      {}};
  g_autoptr(GOptionContext) ctx = g_option_context_new("URI - play a segdl:// URI with playbin");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group());
  g_autoptr(GError) err = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &err) || argc != 2) {
    g_printerr("%s\nUsage: %s [--seek S] [--audio-sink DESC] URI\n",
               err ? err->message : "one URI expected", argv[0]);
    return 2;
  }

  Player p;
  p.seek_to = seek_to;
  p.playbin = gst_element_factory_make("playbin", nullptr);
  if (!p.playbin) {
    g_printerr("error: no playbin (gstreamer1.0-plugins-base missing?)\n");
    return 1;
  }
  g_object_set(p.playbin, "uri", argv[1], nullptr);
  if (sink_desc) {
    GstElement *sink = gst_parse_bin_from_description(sink_desc, TRUE, &err);
    if (!sink) {
      g_printerr("bad --audio-sink: %s\n", err->message);
      gst_object_unref(p.playbin);
      return 2;
    }
    g_object_set(p.playbin, "audio-sink", sink, nullptr);
  }
  p.loop = g_main_loop_new(nullptr, FALSE);
  GstBus *bus = gst_element_get_bus(p.playbin);
  gst_bus_add_watch(bus, on_bus, &p);
  gst_object_unref(bus);

  if (gst_element_set_state(p.playbin, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The error message that says why is on the bus: let the loop print it.
    p.exit_code = 1;
  }
  g_main_loop_run(p.loop);
  gst_element_set_state(p.playbin, GST_STATE_NULL);
  bus = gst_element_get_bus(p.playbin);
  gst_bus_remove_watch(bus);
  gst_object_unref(bus);
  gst_object_unref(p.playbin);
  g_main_loop_unref(p.loop);
  return p.exit_code;
}
