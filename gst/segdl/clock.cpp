// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the engine's clocks (see clock.h). */
#include "segdl/clock.h"

#include <algorithm>

namespace segdl {

namespace {

// A timer is a GSource with only a ready time: GLib dispatches it once the
// ready time passes (the real clock) or once set to 0 (ManualClock); it
// runs its callback once.
struct TimerSource {
  GSource base;
  ManualClock *clock;  // null for the real clock
};

gboolean timer_dispatch(GSource *src, GSourceFunc fn, gpointer data) noexcept {
  g_source_set_ready_time(src, -1);
  if (fn) fn(data);
  return G_SOURCE_REMOVE;
}

void timer_finalize(GSource *src) noexcept {
  auto *t = reinterpret_cast<TimerSource *>(src);
  if (t->clock) t->clock->forget(src);
}

GSourceFuncs timer_funcs = {nullptr, nullptr, timer_dispatch, timer_finalize, nullptr, nullptr};

GSource *new_timer(ManualClock *clock, GSourceFunc fn, gpointer data, GDestroyNotify notify) {
  GSource *src = g_source_new(&timer_funcs, sizeof(TimerSource));
  reinterpret_cast<TimerSource *>(src)->clock = clock;
  g_source_set_name(src, "segdl timer");
  g_source_set_callback(src, fn, data, notify);
  return src;
}

class SystemClock final : public EngineClock {
 public:
  int64_t now_us() override { return g_get_monotonic_time(); }
  GSource *add_timer(GMainContext *ctx, int64_t at_us, GSourceFunc fn, gpointer data,
                     GDestroyNotify notify) override {
    GSource *src = new_timer(nullptr, fn, data, notify);
    // GLib's ready time is in g_get_monotonic_time()'s units: this clock's.
    g_source_set_ready_time(src, std::max<int64_t>(0, at_us));
    g_source_attach(src, ctx);
    return src;
  }
};

}  // namespace

EngineClock &system_clock() {
  static SystemClock clock;
  return clock;
}

ManualClock::~ManualClock() {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_ != 0) g_critical("ManualClock destroyed with %d timer(s) alive", live_);
}

int64_t ManualClock::now_us() {
  std::lock_guard<std::mutex> lock(mu_);
  return now_;
}

GSource *ManualClock::add_timer(GMainContext *ctx, int64_t at_us, GSourceFunc fn, gpointer data,
                                GDestroyNotify notify) {
  GSource *src = new_timer(this, fn, data, notify);
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_++;
  }
  g_source_attach(src, ctx);
  // Registered once attached, so advance() only touches attached sources.
  std::lock_guard<std::mutex> lock(mu_);
  if (at_us <= now_)
    g_source_set_ready_time(src, 0);
  else
    timers_[src] = at_us;
  cond_.notify_all();
  return src;
}

// Makes every timer now due ready. mu_ held. g_source_set_ready_time() is
// thread-safe and a no-op on a destroyed source; a source is not finalized
// while it is in timers_ (its finalize waits for mu_).
void ManualClock::fire_due_locked() {
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second > now_) {
      ++it;
      continue;
    }
    if (!g_source_is_destroyed(it->first)) g_source_set_ready_time(it->first, 0);
    it = timers_.erase(it);
  }
  cond_.notify_all();
}

void ManualClock::advance(int64_t us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (us > 0) now_ += us;
  fire_due_locked();
}

void ManualClock::advance_to(int64_t at_us) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = std::max(now_, at_us);
  fire_due_locked();
}

std::vector<int64_t> ManualClock::pending() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> out;
  for (const auto &entry : timers_)
    if (!g_source_is_destroyed(entry.first)) out.push_back(entry.second);
  std::sort(out.begin(), out.end());
  return out;
}

bool ManualClock::wait_pending(const std::function<bool(const std::vector<int64_t> &)> &pred,
                               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    std::vector<int64_t> out;
    for (const auto &entry : timers_)
      if (!g_source_is_destroyed(entry.first)) out.push_back(entry.second);
    std::sort(out.begin(), out.end());
    if (pred(out)) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    // A destroyed source says nothing until it is finalized: look again
    // every 20 ms at least.
    cond_.wait_until(lock, std::min(now + std::chrono::milliseconds(20), deadline));
  }
}

bool ManualClock::wait_timer_at(int64_t at_us, std::chrono::milliseconds timeout) {
  return wait_pending(
      [at_us](const std::vector<int64_t> &p) {
        return std::find(p.begin(), p.end(), at_us) != p.end();
      },
      timeout);
}

void ManualClock::forget(GSource *src) {
  std::lock_guard<std::mutex> lock(mu_);
  timers_.erase(src);
  live_--;
  cond_.notify_all();
}

}  // namespace segdl
