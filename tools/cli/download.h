// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — one track: segdlsrc into a fakesink (fill the download dir), into
 * a muxer and a file (--combine), into the sound card (--play), or both
 * through a tee. The GLib main loop runs the bus, a stats timer and the
 * signal sources.
 */
#pragma once

#include "cli.h"
#include "progress.h"

#include <gst/gst.h>

#include <mutex>
#include <string>

namespace segdl::cli {

class Download {
 public:
  // position (1-based) of `count` ids in this call, for the display.
  Download(const Options &opts, const std::string &id, size_t position, size_t count,
           Progress &progress);
  ~Download();
  Download(const Download &) = delete;
  Download &operator=(const Download &) = delete;

  // Runs until the end of the track, an error or interrupt(); returns the
  // exit code (cli.h). Main thread.
  int run();
  // run() made the download dir (it was not there before).
  bool made_download_dir() const { return made_dir_; }
  // SIGINT / SIGTERM: stops the pipeline at once, removes the partial
  // output, makes run() return 128 + signo. Main thread (a GLib signal source).
  void interrupt(int signo);

 private:
  bool codec_fits_output();
  bool build(std::string &error);
  bool add_play_branch(std::string &error);
  // Streaming thread: the caps are known, so the muxer can be chosen.
  void attach_output(GstCaps *caps);
  bool link_discard_branch(std::string &error);
  void finish_codec_error();
  void probe_segment0_codec();
  bool link_output_chain(const std::string &ext, GstCaps *caps, const std::string &part,
                         std::string &error);
  void post_app(const char *name, const std::string &message, const std::string &extra = "");
  void on_message(GstMessage *msg);
  void on_error(GstMessage *msg);
  void on_warning(GstMessage *msg);
  void on_element(GstMessage *msg);
  void on_eos();
  void on_buffering(GstMessage *msg);
  void tick();
  void derive_segments(const Snapshot &s);
  Snapshot read_stats();
  void finish(int code);
  void remove_partial();
  std::string output_write_error(const std::string &cause);

  static gboolean bus_cb(GstBus *bus, GstMessage *msg, gpointer data) noexcept;
  static gboolean tick_cb(gpointer data) noexcept;
  static GstPadProbeReturn first_audio_cb(GstPad *pad, GstPadProbeInfo *info,
                                          gpointer data) noexcept;
  static GstPadProbeReturn caps_probe_cb(GstPad *pad, GstPadProbeInfo *info,
                                         gpointer data) noexcept;

  const Options &opts_;
  std::string id_;
  size_t position_, count_;
  Progress &progress_;
  GMainLoop *loop_ = nullptr;
  GstElement *pipeline_ = nullptr;
  GstElement *src_ = nullptr;  // owned by pipeline_
  GstElement *tee_ = nullptr;  // owned by pipeline_
  guint bus_watch_ = 0, tick_source_ = 0;
  int exit_code_ = -1;  // -1 while running
  bool made_dir_ = false;
  bool segment_messages_ = false;  // segdlsrc posts "segdl-segment": no stats deltas
  bool buffering_paused_ = false;
  bool have_final_stats_ = false;
  Snapshot final_stats_, prev_;
  std::string cache_error_;  // the WARNING that turned the disk cache off
  std::string codec_error_;  // --combine OUT cannot hold the codec (set once the caps came)
  bool segment0_done_ = false;
  bool caps_came_ = false;       // attach_output() ran (its message is in)
  bool probe_segment0_ = false;  // read segment 0's codec from the download dir
  int64_t start_us_ = 0;
  int64_t last_move_us_ = 0;  // the last tick that saw a byte or a segment come

  // Written by the streaming thread in attach_output(), read by the main thread.
  std::mutex mu_;
  std::string out_path_, part_path_;
};

}  // namespace segdl::cli
