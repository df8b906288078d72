// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — preload jobs: one per track however often it is asked.
 * A job polls the upstream status, queues a fill for every ready segment not
 * cached (ascending: segment 0 first; at the back of the shared queue, so
 * clients waiting for a segment go first), waits for them, and polls again
 * until the cache holds the whole track or nothing new appeared for
 * preload_max_idle_polls polls.
 */
#include "gateway/fill.h"

namespace segdl::gateway {

void Gateway::Impl::preload(const std::string &id) {
  if (preloads.count(id)) return;
  failed.erase(id);  // asked again: segments that failed get another chance
  auto p = std::make_unique<Preload>();
  p->id = id;
  Preload *raw = p.get();
  preloads.emplace(id, std::move(p));
  set_preload_count();
  preload_step(raw);
}

void Gateway::Impl::preload_step(Preload *p) {
  const std::string id = p->id;
  fetch_status(id, [this, id](const Outcome &out, const Status &st) {
    auto it = preloads.find(id);
    if (it == preloads.end() || stopping) return;
    Preload *job = it->second.get();
    job->progressed = false;
    if (out.ok) {
      const std::vector<int64_t> local = local_segments(id);
      const std::set<int64_t> held(local.begin(), local.end());
      if (st.total_segments && static_cast<int64_t>(held.size()) >= *st.total_segments)
        return preload_ended(job);
      for (int64_t n : st.ready) {
        if (held.count(n) || failed[id].count(n)) continue;
        Fill *f = ensure_fill(id, n, false);
        job->pending++;
        job->progressed = true;
        f->on_finish([this, id](const Outcome &, GBytes *, const Entity &) {
          auto j = preloads.find(id);
          if (j == preloads.end()) return;
          if (--j->second->pending == 0) preload_ended(j->second.get());
        });
      }
    }
    if (job->pending == 0) preload_ended(job);
  });
}

void Gateway::Impl::set_preload_count() {
  {
    std::lock_guard<std::mutex> lock(mu);
    counters.preloads = static_cast<int>(preloads.size());
  }
  cv.notify_all();
}

// A round is over: poll again (at once after progress, later otherwise), or
// end the job.
void Gateway::Impl::preload_ended(Preload *p) {
  if (stopping) return;
  if (!p->progressed) p->idle_polls++;
  std::optional<int64_t> total = known_total(p->id);
  const bool whole = total && static_cast<int64_t>(local_segments(p->id).size()) >= *total;
  if (whole || p->idle_polls > opts.preload_max_idle_polls) {
    if (!whole) g_message("segdl-gateway: preload of %s gave up", p->id.c_str());
    preloads.erase(p->id);
    set_preload_count();
    return;
  }
  const int delay = p->progressed ? 0 : opts.preload_poll_ms;
  p->progressed = false;
  if (p->timer) {
    g_source_destroy(p->timer);
    g_source_unref(p->timer);
  }
  p->timer = g_timeout_source_new(static_cast<guint>(delay));
  const std::string id = p->id;
  struct Ctx {
    Gateway::Impl *gw;
    std::string id;
  };
  g_source_set_callback(
      p->timer,
      [](gpointer data) noexcept -> gboolean {
        auto *c = static_cast<Ctx *>(data);
        auto it = c->gw->preloads.find(c->id);
        if (it != c->gw->preloads.end()) {
          g_source_unref(it->second->timer);
          it->second->timer = nullptr;
          c->gw->preload_step(it->second.get());
        }
        return G_SOURCE_REMOVE;
      },
      new Ctx{this, id}, [](gpointer data) { delete static_cast<Ctx *>(data); });
  g_source_attach(p->timer, ctx);
}

}  // namespace segdl::gateway
