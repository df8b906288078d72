// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — small RAII holders for GStreamer refs, shared by the test and demo
 * media tools (mediagen.cpp, segmenter*.cpp).
 */
#pragma once

#include <gst/gst.h>

#include <memory>

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

}  // namespace segdl::media::hold
