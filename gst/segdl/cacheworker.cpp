// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the cache worker (see cacheworker.h). */
#include "segdl/cacheworker.h"

#include <utility>

namespace segdl {

CacheWorker::CacheWorker() : thread_(&CacheWorker::main, this) {}

CacheWorker::~CacheWorker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cond_.notify_all();
  thread_.join();
}

void CacheWorker::run(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cond_.notify_all();
}

void CacheWorker::main() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cond_.wait(lock, [this] { return quit_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // quit, and nothing left to do
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();  // tasks never run under the lock
    task();
    lock.lock();
  }
}

}  // namespace segdl
