// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the timeline join: segment bytes in, parsed audio frames out.
 *
 * A FrameJoiner runs a private, synchronous parsebin ("a demuxer instance")
 * fed from the streaming thread: gst_pad_push() into it returns only once
 * the frames that data yields are queued here, so no internal thread or
 * queue is involved.
 *
 * One instance parses as long as the bytes continue one stream (ADTS, MP3,
 * MPEG-TS, fragmented MP4: the continuous forms). A segment that begins with
 * a container header of its own (ISO ftyp, EBML, an Ogg BOS page, ID3) is a
 * self-contained file: the current instance is drained and a new one starts
 * for it (the way splitmuxsrc reads its parts). The frames of all instances
 * form one list, stamped by the caller on one timeline.
 */
#pragma once

#include <gst/gst.h>

#include "segdl/mp4.h"

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace segdl {

// True when `data` (the first bytes of a segment) starts a container file
// of its own. Needs at least 12 bytes to say yes.
bool starts_container(const guint8 *data, gsize size, const char **name = nullptr);

class FrameJoiner {
 public:
  explicit FrameJoiner(GstElement *owner);  // owner: for logging only
  ~FrameJoiner();
  FrameJoiner(const FrameJoiner &) = delete;
  FrameJoiner &operator=(const FrameJoiner &) = delete;

  // Drains and ends the current instance, if any, and starts a new one.
  void new_instance(int64_t first_segment);
  bool has_instance() const { return bin_ != nullptr; }
  int64_t instance_segment() const { return instance_segment_; }
  int64_t instance_count() const { return instances_; }

  // Feeds bytes to the current instance (one is started if none). Returns
  // false with `error` set when the data cannot be demuxed.
  bool push(GBytes *bytes, std::string &error);
  // Drains the current instance (EOS through it) and drops it. False with
  // `error` set when it failed, found no audio stream or gave no frame.
  bool finish(std::string &error);

  // The next frame in order (caller owns it), or nullptr. `caps` is set to
  // the caps in force for it (borrowed, valid until the next call);
  // `instance_start` to the segment whose file this frame starts, or -1 if
  // it is not the first frame of a demuxer instance.
  GstBuffer *pop(GstCaps **caps, int64_t *instance_start = nullptr);

  // The container's global tags (title, artist, ...) of the track's first
  // file (segment 0), once: caller owns them. Null when none came (yet).
  GstTagList *take_tags();

  // Drops everything, as after a flush.
  void reset();

 private:
  struct Frame {
    GstBuffer *buffer;
    GstCaps *caps;
    int64_t instance_start;  // segment of the instance, on its first frame; else -1
  };
  static GstFlowReturn on_chain(GstPad *pad, GstObject *parent, GstBuffer *buf) noexcept;
  static gboolean on_event(GstPad *pad, GstObject *parent, GstEvent *event) noexcept;
  static gboolean on_query(GstPad *pad, GstObject *parent, GstQuery *query) noexcept;
  static void on_pad_added(GstElement *bin, GstPad *pad, gpointer data) noexcept;
  static gint on_autoplug_select(GstElement *bin, GstPad *pad, GstCaps *caps,
                                 GstElementFactory *factory, gpointer data) noexcept;
  bool check_bus(std::string &error);
  void teardown();

  GstElement *owner_;
  // Streaming thread only (the parsebin pushes synchronously into on_chain).
  GstElement *bin_ = nullptr;
  GstElement *parsebin_ = nullptr;
  GstBus *bus_ = nullptr;
  GstPad *src_ = nullptr;   // ours, linked to parsebin's sink
  GstPad *sink_ = nullptr;  // ours, linked to the first audio pad parsebin exposes
  bool linked_ = false;
  bool accepting_ = true;    // false once the instance answered EOS
  GstCaps *caps_ = nullptr;  // current caps of the instance
  bool instance_first_ = true;
  int64_t instance_segment_ = -1;
  int64_t instances_ = 0;
  uint64_t instance_frames_ = 0;  // audio frames (not headers) the instance gave
  std::deque<Frame> frames_;
  GstCaps *popped_caps_ = nullptr;
  GstTagList *tags_ = nullptr;  // global tags of segment 0's file, until taken
};

}  // namespace segdl

namespace segdl {

// A self-contained m4a segment read by our own code (gst/segdl/mp4.*), not
// by qtdemux: its audio frames, their caps and its edit list as samples at
// the caps rate. So an edit list (the empty edit `ffmpeg -f segment` writes
// at each segment's start) never makes a segment unplayable, and its trims
// are applied by the timeline.
struct Mp4Segment {
  GstCaps *caps = nullptr;          // owned
  std::vector<GstBuffer *> frames;  // owned, in decoding order, no copy of the data
  int rate = 0;
  int64_t trim_start = 0;    // samples not presented at the start
  int64_t trim_length = -1;  // samples presented after them, -1 = all
  Mp4Segment() = default;
  Mp4Segment(const Mp4Segment &) = delete;
  Mp4Segment &operator=(const Mp4Segment &) = delete;
  ~Mp4Segment();
};

enum class Mp4Read { Ok, Fragmented, OtherCodec, Error };

// Reads a whole m4a file. Fragmented (an init of fragments) and OtherCodec
// (a track we leave to parsebin: not AAC or MP3) are not errors; Error sets
// `error`.
Mp4Read read_mp4_segment(GBytes *bytes, Mp4Segment &out, std::string &error);

// What read_mp4_segment() gives but the frames: the caps, rate and
// edit-list trims of an audio track already parsed (by parse_mp4(), or by
// Mp4Progressive while the file arrives), so both readings agree.
Mp4Read mp4_segment_setup(const Mp4Track &track, const Mp4Presentation &pres, Mp4Segment &out,
                          std::string &error);

}  // namespace segdl
