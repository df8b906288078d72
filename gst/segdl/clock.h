// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the download engine's time: a monotonic clock and the timers it
 * drives, as GSources on the engine's GMainContext.
 *
 * Every timer of the engine (the retry backoff, the "not yet" waits, the
 * status poll, the status and segment stall timeouts, max-wait) is made by
 * an EngineClock: the real one (system_clock(): GLib's monotonic time, each
 * timer a GSource with a ready time, as g_timeout_source is) unless a test
 * injects another. ManualClock moves only when a test says so: timers due
 * become ready on their own context, the others never fire, so a test
 * asserts that a timeout fires at exactly its time and not a microsecond
 * before, without sleeping and without reading the wall clock.
 */
#pragma once

#include <glib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace segdl {

class EngineClock {
 public:
  virtual ~EngineClock() = default;
  // Monotonic time in microseconds (any origin).
  virtual int64_t now_us() = 0;
  // Attaches to `ctx` a one-shot timer calling `fn(data)` once now_us() >=
  // at_us (at once when that time has passed); `notify(data)` when the
  // source goes. Returns a ref on the source, which the caller owns:
  // g_source_destroy() cancels the timer.
  virtual GSource *add_timer(GMainContext *ctx, int64_t at_us, GSourceFunc fn, gpointer data,
                             GDestroyNotify notify) = 0;
};

// The real clock: g_get_monotonic_time(); one for the process.
EngineClock &system_clock();

// A clock that moves only when told (tests). Thread-safe: the engine's HTTP
// thread makes timers, the consumer reads the time, the test advances it.
class ManualClock final : public EngineClock {
 public:
  explicit ManualClock(int64_t start_us = 1000000) : now_(start_us) {}
  ~ManualClock() override;  // every timer it made must be gone (checked)
  ManualClock(const ManualClock &) = delete;
  ManualClock &operator=(const ManualClock &) = delete;

  int64_t now_us() override;
  GSource *add_timer(GMainContext *ctx, int64_t at_us, GSourceFunc fn, gpointer data,
                     GDestroyNotify notify) override;

  // Moves the time forward by `us` (>= 0); the timers now due become ready
  // on their contexts (they run there, later, as any GSource).
  void advance(int64_t us);
  // Moves the time to `at_us`, if that is later.
  void advance_to(int64_t at_us);
  // The deadlines of the timers not yet due (attached, not destroyed),
  // earliest first.
  std::vector<int64_t> pending();
  // Waits (real time, at most `timeout`) until pred(pending()) holds;
  // returns whether it does.
  bool wait_pending(const std::function<bool(const std::vector<int64_t> &)> &pred,
                    std::chrono::milliseconds timeout);
  // Waits until a timer due at exactly `at_us` is pending.
  bool wait_timer_at(int64_t at_us, std::chrono::milliseconds timeout);

  // Internal: a timer source going away (its finalize).
  void forget(GSource *src);

 private:
  void fire_due_locked();

  std::mutex mu_;
  std::condition_variable cond_;
  int64_t now_;                          // mu_
  std::map<GSource *, int64_t> timers_;  // mu_: not yet due -> deadline
  int live_ = 0;                         // mu_: timer sources not finalized
};

}  // namespace segdl
