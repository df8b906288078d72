// SPDX-License-Identifier: LGPL-2.1-or-later
/* A program that links segdl's core library with --export-dynamic, as the
 * segdl command line does (gmodule-export), then plays segdlsrc from the
 * plugin that GStreamer finds: the plugin must load its HTTP module from
 * beside itself, not from beside this program (test_plugin.py). The core
 * is built with hidden visibility, so none of its symbols is exported
 * here (test_the_core_is_not_exported) and the plugin always runs its own.
 *   core_host BACKEND-URL VIDEO-ID
 * Prints the module dirs of this program's own copy of the core, then "EOS"
 * (exit 0) or the ERROR (exit 1); exit 2 when nothing ends it within 60 s.
 */
#include "segdl/httpmodule.h"

#include <gst/gst.h>

#include <cstdio>
#include <string>

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  if (argc != 3) {
    g_printerr("usage: core_host BACKEND-URL VIDEO-ID\n");
    return 2;
  }
  // Links httpmodule.o into this program, so its symbols are here to take.
  for (const std::string &dir : segdl::http_module_dirs()) g_print("own dir: %s\n", dir.c_str());
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *src = gst_element_factory_make("segdlsrc", nullptr);
  GstElement *sink = gst_element_factory_make("fakesink", nullptr);
  if (!src || !sink) {
    g_printerr("segdlsrc or fakesink is missing\n");
    return 2;
  }
  g_object_set(src, "backend-url", argv[1], "video-id", argv[2], nullptr);
  g_object_set(sink, "sync", FALSE, nullptr);
  gst_bin_add_many(GST_BIN(pipeline), src, sink, nullptr);
  if (!gst_element_link(src, sink)) return 2;
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus *bus = gst_element_get_bus(pipeline);
  GstMessage *msg = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                               GstMessageType(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  int rc = 2;
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
    g_print("EOS\n");
    rc = 0;
  } else if (msg) {
    GError *err = nullptr;
    gchar *debug = nullptr;
    gst_message_parse_error(msg, &err, &debug);
    g_print("ERROR: %s (%s)\n", err->message, debug ? debug : "");
    g_clear_error(&err);
    g_free(debug);
    rc = 1;
  } else {
    g_print("no EOS nor ERROR within 60 s\n");
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return rc;
}
