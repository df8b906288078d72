// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segment fixtures: the reference reader (parse_frames: appsrc !
 * parsebin ! appsink) and decoder (decode_pcm: appsrc ! decodebin !
 * audioconvert ! appsink), see segmenter.h.
 */
#include "common/segmenter.h"
#include "common/segmenter-private.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/audio/audio.h>

#include <utility>

namespace segdl::media {

using namespace detail;

namespace {

// Filled by the appsink callback on the streaming thread; read by the calling
// thread only after EOS came through the bus (which orders the two).
struct FrameCollector {
  GstCaps *caps = nullptr;  // of the first sample (owned)
  std::vector<Bytes> headers;
  std::vector<ParsedFrame> frames;
  ~FrameCollector() { gst_clear_caps(&caps); }
};

GstFlowReturn on_parsed_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<FrameCollector *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstCaps *caps = gst_sample_get_caps(sample);
  if (caps && !c->caps) c->caps = gst_caps_ref(caps);
  GstBuffer *buf = gst_sample_get_buffer(sample);
  if (buf && GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_HEADER)) {
    c->headers.push_back(buffer_bytes(buf));
  } else if (buf) {
    ParsedFrame f;
    f.data = buffer_bytes(buf);
    f.pts_ns = GST_BUFFER_PTS(buf);
    f.duration_ns = GST_BUFFER_DURATION(buf);
    const GstSegment *seg = gst_sample_get_segment(sample);
    if (seg && seg->format == GST_FORMAT_TIME && GST_BUFFER_PTS_IS_VALID(buf))
      f.stream_ns = gst_segment_to_stream_time(seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
    if (GstAudioClippingMeta *clip = gst_buffer_get_audio_clipping_meta(buf)) {
      f.clip_start = clip->start;
      f.clip_end = clip->end;
    }
    c->frames.push_back(std::move(f));
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

// parsebin / decodebin pad-added: links the first audio pad to the element
// passed as user data (its "sink" pad). Streaming thread.
void on_pad_added(GstElement *, GstPad *pad, gpointer user_data) noexcept {
  auto *target = static_cast<GstElement *>(user_data);
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  bool audio = false;
  if (caps && !gst_caps_is_empty(caps)) {
    const gchar *name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    audio = g_str_has_prefix(name, "audio/");
  }
  if (caps) gst_caps_unref(caps);
  if (!audio) return;
  PadPtr sinkpad(gst_element_get_static_pad(target, "sink"));
  if (sinkpad && !gst_pad_is_linked(sinkpad.get())) gst_pad_link(pad, sinkpad.get());
}

// Filled by the appsink callback on the streaming thread; read by the calling
// thread only after EOS came through the bus (which orders the two).
struct PcmCollector {
  Bytes pcm;
  int rate = 0;
  int channels = 0;
};

GstFlowReturn on_pcm_sample(GstAppSink *sink, gpointer user_data) noexcept {
  auto *c = static_cast<PcmCollector *>(user_data);
  GstSample *sample = gst_app_sink_pull_sample(sink);
  if (!sample) return GST_FLOW_EOS;
  GstCaps *caps = gst_sample_get_caps(sample);
  GstAudioInfo info;
  if (caps && gst_audio_info_from_caps(&info, caps)) {
    c->rate = GST_AUDIO_INFO_RATE(&info);
    c->channels = GST_AUDIO_INFO_CHANNELS(&info);
  }
  GstBuffer *buf = gst_sample_get_buffer(sample);
  GstMapInfo map;
  if (buf && gst_buffer_map(buf, &map, GST_MAP_READ)) {
    c->pcm.insert(c->pcm.end(), map.data, map.data + map.size);
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

GstClockTime read_timeout(const Bytes &file) {
  // A generous bound: reading runs at many times real time.
  return kMinPipelineTimeout + static_cast<GstClockTime>(file.size() / 1000) * GST_MSECOND;
}

}  // namespace

// ---- parse_frames / decode_pcm -----------------------------------------------------

bool parse_frames(const Bytes &file, ParsedFrames &out, std::string &error) {
  if (file.empty()) {
    error = "empty file";
    return false;
  }
  ElementPtr pipeline = launch(
      "appsrc name=src format=bytes max-bytes=0 ! parsebin name=bin "
      "appsink name=sink sync=false async=false",
      "parser", error);
  if (!pipeline) return false;
  ElementPtr src = child(pipeline.get(), "src");
  ElementPtr bin = child(pipeline.get(), "bin");
  ElementPtr sink = child(pipeline.get(), "sink");
  g_signal_connect(bin.get(), "pad-added", G_CALLBACK(on_pad_added), sink.get());
  FrameCollector col;
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_parsed_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &cbs, &col, nullptr);

  PipelineGuard guard{pipeline.get()};
  if (!run(pipeline.get(), read_timeout(file), "parser", error,
           [&]() { push_file(src.get(), file); }))
    return false;
  if (!col.caps) {
    error = "no audio stream found";
    return false;
  }
  ParsedFrames result;
  result.caps = std::exchange(col.caps, nullptr);
  result.headers = std::move(col.headers);
  result.frames = std::move(col.frames);
  out = std::move(result);
  return true;
}

bool decode_pcm(const Bytes &file, Bytes &pcm_f32, int &rate, int &channels, std::string &error) {
  if (file.empty()) {
    error = "empty file";
    return false;
  }
  ElementPtr pipeline = launch(
      "appsrc name=src format=bytes max-bytes=0 ! decodebin name=bin "
      "audioconvert name=conv ! audio/x-raw,format=F32LE,layout=interleaved ! "
      "appsink name=sink sync=false async=false",
      "decoder", error);
  if (!pipeline) return false;
  ElementPtr src = child(pipeline.get(), "src");
  ElementPtr bin = child(pipeline.get(), "bin");
  ElementPtr conv = child(pipeline.get(), "conv");
  ElementPtr sink = child(pipeline.get(), "sink");
  g_signal_connect(bin.get(), "pad-added", G_CALLBACK(on_pad_added), conv.get());
  PcmCollector col;
  GstAppSinkCallbacks cbs = {};
  cbs.new_sample = on_pcm_sample;
  gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &cbs, &col, nullptr);

  PipelineGuard guard{pipeline.get()};
  if (!run(pipeline.get(), read_timeout(file), "decoder", error,
           [&]() { push_file(src.get(), file); }))
    return false;
  if (col.rate <= 0 || col.pcm.empty()) {
    error = "the decoder produced no audio";
    return false;
  }
  rate = col.rate;
  channels = col.channels;
  pcm_f32 = std::move(col.pcm);
  return true;
}

}  // namespace segdl::media
