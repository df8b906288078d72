// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — joining a cached track of a self-contained form into one
 * file (joinfile.cpp). Gateway thread only.
 */
#pragma once

#include "gateway/filebody.h"
#include "gateway/fill.h"

#include <gst/gst.h>

namespace segdl::gateway {

// A container a whole track is joined into.
struct Container {
  const char *ext, *type, *muxer;
};

// One join: the pipeline writing a temporary file (flock'ed, so the cache's
// clean-up of dead temporaries leaves it alone), and the clients waiting.
class JoinJob {
 public:
  JoinJob(Gateway::Impl &gw, std::string id, std::string path, Entity meta,
          std::unique_ptr<Cache> cache, const Container &c)
      : gw_(gw),
        id_(std::move(id)),
        path_(std::move(path)),
        meta_(std::move(meta)),
        cache_(std::move(cache)),
        container_(c) {}
  ~JoinJob();
  JoinJob(const JoinJob &) = delete;
  JoinJob &operator=(const JoinJob &) = delete;

  const std::string &path() const { return path_; }
  // `msg` waits for the file; if the join fails it goes to `fallback`
  // (none: the backends' whole track, as for /stream?v=ID).
  void wait(SoupServerMessage *msg, JoinFallback fallback = {}) {
    waiters_.push_back({std::make_shared<Held>(msg), std::move(fallback)});
  }
  bool start(const std::string &backend, std::string &error);

 private:
  static GstPadProbeReturn on_caps(GstPad *pad, GstPadProbeInfo *info, gpointer data) noexcept;
  static gboolean on_bus(GstBus *, GstMessage *m, gpointer data) noexcept;
  bool add_tail(GstPad *pad, GstCaps *caps);
  void finish(bool ok, const std::string &why);  // the pipeline ended
  void done(bool ok, const std::string &why);    // the file hashed and recorded, or not

  Gateway::Impl &gw_;
  const std::string id_, path_;
  const Entity meta_;
  std::unique_ptr<Cache> cache_;  // holds the track: no eviction meanwhile
  const Container &container_;
  std::string tmp_;
  int fd_ = -1;
  GstElement *pipeline_ = nullptr;
  GSource *bus_watch_ = nullptr;
  std::vector<std::pair<HeldPtr, JoinFallback>> waiters_;
};

}  // namespace segdl::gateway
