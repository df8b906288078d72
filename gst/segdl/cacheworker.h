// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the cache worker: one thread that runs the engine's slow work
 * (the disk cache's fsync and rename of a finished segment, the track
 * record, eviction, cached reads and their SHA-256; the end check of a body
 * held whole) so the HTTP thread, which serves every transfer and the
 * status poll, never waits for a disk nor walks a whole segment.
 */
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace segdl {

class CacheWorker {
 public:
  CacheWorker();
  // Runs what is still queued (a finished segment is still committed),
  // then joins the thread.
  ~CacheWorker();
  CacheWorker(const CacheWorker &) = delete;
  CacheWorker &operator=(const CacheWorker &) = delete;

  // Queues `task`; tasks run one at a time, in order, on the worker thread.
  void run(std::function<void()> task);

 private:
  void main();

  std::mutex mu_;
  std::condition_variable cond_;
  std::deque<std::function<void()>> tasks_;  // mu_
  bool quit_ = false;                        // mu_
  std::thread thread_;
};

}  // namespace segdl
