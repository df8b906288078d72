// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — small RAII holders for GStreamer refs, and the bounded wait for a
 * pipeline's end, shared by the test and demo media tools (mediagen.cpp,
 * segmenter*.cpp).
 */
#pragma once

#include <gst/gst.h>

#include <memory>
#include <string>

namespace segdl::media::hold {

struct ObjectUnref {
  void operator()(gpointer p) const { gst_object_unref(p); }
};
using ElementPtr = std::unique_ptr<GstElement, ObjectUnref>;
using BusPtr = std::unique_ptr<GstBus, ObjectUnref>;
using PadPtr = std::unique_ptr<GstPad, ObjectUnref>;

struct MessageUnref {
  void operator()(GstMessage *m) const { gst_message_unref(m); }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageUnref>;

// Sets the pipeline to NULL when it goes out of scope, whatever happened.
struct PipelineGuard {
  GstElement *pipeline;
  ~PipelineGuard() { gst_element_set_state(pipeline, GST_STATE_NULL); }
};

// Waits (bounded by `timeout`) for EOS or an error on the pipeline's bus.
// False with `error` set ("timed out waiting for the WHAT to finish", or
// "WHAT: error from ELEMENT: message (debug)") when EOS did not come.
inline bool wait_eos(GstElement *pipeline, GstClockTime timeout, const char *what,
                     std::string &error) {
  BusPtr bus(gst_element_get_bus(pipeline));
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout / GST_USECOND);
  for (;;) {
    const gint64 left_us = deadline - g_get_monotonic_time();
    if (left_us <= 0) {
      error = std::string("timed out waiting for the ") + what + " to finish";
      return false;
    }
    MessagePtr msg(gst_bus_timed_pop_filtered(
        bus.get(), static_cast<GstClockTime>(left_us) * GST_USECOND,
        static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
    if (!msg) continue;
    if (GST_MESSAGE_TYPE(msg.get()) == GST_MESSAGE_EOS) return true;
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg.get(), &err, &dbg);
    error = std::string(what) + ": error from " + GST_OBJECT_NAME(GST_MESSAGE_SRC(msg.get())) +
            ": " + (err ? err->message : "unknown") + (dbg ? std::string(" (") + dbg + ")" : "");
    g_clear_error(&err);
    g_free(dbg);
    return false;
  }
}

}  // namespace segdl::media::hold
