// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the rig of the download engine's tests: a scripted fake
 * Fetcher (no network, no libsoup, no sleeps), the consumer's drain and
 * the checks every engine test makes. Included by test_downloader.cpp and
 * tests/reliability/test_engine_check.cpp (one executable each).
 *
 * FakeServer holds the script (URL -> queue of answers; the last answer of a
 * queue repeats) and a log of what happened; the test thread and the engine's
 * HTTP thread share it under its own mutex. FakeFetcher, which the engine
 * makes on its HTTP thread, plays the answers back from GSources attached to
 * that thread's context, one event (head, chunk, end) per dispatch, and never
 * from start(). It records every breach of the Fetcher contract (a callback
 * after cancel, a call on a foreign thread, a transfer still running when the
 * fetcher is destroyed) for the test thread to assert.
 *
 * The consumer side drains pop() with bounded waits and checks that every
 * chunk continues its segment where the previous one stopped.
 */
#pragma once

#include "segdl/downloader.h"
#include "segdl/urls.h"

#include <gst/check/gstcheck.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace segdl;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Kind = Downloader::Item::Kind;

namespace rig {

// GBytes chunks made by the fake and not freed yet (any thread).
std::atomic<int> g_live_chunks{0};

void free_chunk(gpointer mem) {
  g_free(mem);
  g_live_chunks--;
}

GBytes *new_chunk(const std::string &payload, size_t offset, size_t size) {
  gpointer copy = g_memdup2(payload.data() + offset, size);
  g_live_chunks++;
  return g_bytes_new_with_free_func(copy, size, free_chunk, copy);
}

// Deterministic bytes, different for every segment; every byte value occurs,
// NUL included.
std::string make_body(int64_t seg, size_t size) {
  std::string s(size, '\0');
  uint32_t x = 0x2545f491u + uint32_t(seg) * 7919u;
  for (char &c : s) {
    x = x * 1103515245u + 12345u;
    c = char(x >> 16);
  }
  return s;
}

// The segment index of a segment URL, -1 for any other URL (the status).
int64_t segment_of(const std::string &url) {
  size_t at = url.find("&segment=");
  if (at == std::string::npos) return -1;
  return std::strtoll(url.c_str() + at + 9, nullptr, 10);
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// One scripted answer of the fake server.
struct Reply {
  int status = 200;
  std::string body;                       // 200: the whole resource; otherwise an error page
  Headers headers;                        // sent after the computed ones
  bool honour_range = true;               // "Range: bytes=N-" -> 206 from N; false: 200, whole body
  bool send_length = true;                // Content-Length, and Content-Range on a 206
  size_t chunk = 64;                      // body bytes per on_data
  int64_t cut_after = -1;                 // >= 0: this response's body stops after so many bytes...
  FetchError cut_error = FetchError::Io;  // ...and the transfer ends with this (None: short body)
  bool hang = false;                      // after the head and the bytes: nothing, until cancel
  int64_t pause_at = -1;                  // >= 0: silent after so many bytes until resume()
  unsigned step_ms = 0;                   // delay before each event
};

Reply ok(std::string body) {
  Reply r;
  r.body = std::move(body);
  return r;
}

Reply answer(int status, int retry_after_s = -1) {
  Reply r;
  r.status = status;
  r.body = "<html>scripted " + std::to_string(status) + "</html>";
  if (retry_after_s >= 0) r.headers.push_back({"Retry-After", std::to_string(retry_after_s)});
  return r;
}

// The whole body, but the transfer breaks after `after` bytes with `error`.
Reply broken(std::string body, int64_t after, FetchError error, bool honour_range) {
  Reply r = ok(std::move(body));
  r.cut_after = after;
  r.cut_error = error;
  r.honour_range = honour_range;
  return r;
}

const char *reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 425:
      return "Too Early";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "";
  }
}

// What a real fetcher makes of a response head.
FetchResponse parse_head(int status, const Headers &headers) {
  FetchResponse r;
  r.http_status = status;
  r.reason = reason_phrase(status);
  r.length_known = true;  // a length, or chunked (the fake's bodies without one)
  for (const auto &[name, value] : headers) {
    if (g_ascii_strcasecmp(name.c_str(), "Content-Length") == 0) {
      r.content_length = g_ascii_strtoll(value.c_str(), nullptr, 10);
    } else if (g_ascii_strcasecmp(name.c_str(), "Content-Range") == 0) {
      long long first = 0, last = 0, total = 0;
      int got = std::sscanf(value.c_str(), "bytes %lld-%lld/%lld", &first, &last, &total);
      if (got >= 2) r.range_start = first;
      if (got == 3) r.range_total = total;
    } else if (g_ascii_strcasecmp(name.c_str(), "Retry-After") == 0) {
      r.retry_after_s = int(g_ascii_strtoll(value.c_str(), nullptr, 10));
    } else if (g_ascii_strcasecmp(name.c_str(), "Content-Type") == 0) {
      r.content_type = value;
    } else if (g_ascii_strcasecmp(name.c_str(), "Content-Encoding") == 0) {
      r.content_encoding = value;
    } else if (g_ascii_strcasecmp(name.c_str(), "X-Fake-Eof-Delimited") == 0) {
      r.length_known = false;  // a body that ends with the connection
    }
  }
  return r;
}

struct Request {
  std::string url;
  int64_t range_start = 0;
  int served = 0;           // the status code the fake answered
  int statuses_before = 0;  // status transfers that had ended when this one was asked
};

// What the fake saw. Protected by FakeServer::mu_.
struct Log {
  std::vector<Request> requests;
  std::vector<std::string> finished;    // URLs whose on_done has returned
  std::vector<std::string> cancelled;   // URLs cancelled while running
  std::vector<std::string> violations;  // breaches of the Fetcher contract
  int statuses_answered = 0;            // status transfers ended (before their on_done)
  int stalled = 0;                      // transfers that reached their `hang` point
  int paused = 0;                       // transfers that reached their `pause_at` point
  int active_segments = 0;              // segment transfers running now
  int max_active_segments = 0;
  int fetchers_made = 0;
  int fetchers_alive = 0;
  FetcherConfig config;  // what the engine asked the factory for

  int count(const std::string &url) const {
    return int(std::count_if(requests.begin(), requests.end(),
                             [&](const Request &r) { return r.url == url; }));
  }
  std::vector<int64_t> ranges(const std::string &url) const {
    std::vector<int64_t> out;
    for (const Request &r : requests)
      if (r.url == url) out.push_back(r.range_start);
    return out;
  }
  std::vector<int> served(const std::string &url) const {
    std::vector<int> out;
    for (const Request &r : requests)
      if (r.url == url) out.push_back(r.served);
    return out;
  }
  const Request *first(const std::string &url) const {
    for (const Request &r : requests)
      if (r.url == url) return &r;
    return nullptr;
  }
  int finished_count(const std::string &url) const {
    return int(std::count(finished.begin(), finished.end(), url));
  }
  int cancelled_count(const std::string &url) const {
    return int(std::count(cancelled.begin(), cancelled.end(), url));
  }
  int64_t highest_segment() const {
    int64_t top = -1;
    for (const Request &r : requests) top = std::max(top, segment_of(r.url));
    return top;
  }
  int64_t first_segment_requested() const {
    for (const Request &r : requests)
      if (segment_of(r.url) >= 0) return segment_of(r.url);
    return -1;
  }
};

// The script and the log, shared by the test thread and the HTTP thread.
class FakeServer {
 public:
  // Answers for `url`, in order; the last one repeats. Unscripted URLs get 404.
  void script(const std::string &url, std::vector<Reply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    scripts_[url] = std::deque<Reply>(replies.begin(), replies.end());
  }

  Reply take(const std::string &url) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = scripts_.find(url);
    if (it == scripts_.end() || it->second.empty()) return answer(404);
    Reply r = it->second.front();
    if (it->second.size() > 1) it->second.pop_front();
    return r;
  }

  // Changes the log under the lock and wakes wait_until().
  template <typename Fn>
  void update(Fn fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn(log_);
    }
    cond_.notify_all();
  }

  // Waits, at most `timeout`, until pred(log) holds; returns whether it does.
  template <typename Pred>
  bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cond_.wait_for(lock, timeout, [&] { return pred(log_); });
  }

  Log log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

  // The fetcher's way to continue its paused transfers (null when none).
  void set_resumer(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    resumer_ = std::move(fn);
  }
  // Paused transfers go on (on the fetcher's thread, later).
  void resume() {
    std::lock_guard<std::mutex> lock(mu_);
    if (resumer_) resumer_();
  }

 private:
  std::function<void()> resumer_;  // mu_
  std::mutex mu_;
  std::condition_variable cond_;
  std::map<std::string, std::deque<Reply>> scripts_;  // mu_
  Log log_;                                           // mu_
};

// A Fetcher playing FakeServer's script back on the thread that made it.
// Everything here runs on that thread; only server_ is shared.
class FakeFetcher final : public Fetcher {
 public:
  explicit FakeFetcher(FakeServer &server)
      : server_(server),
        context_(g_main_context_ref_thread_default()),
        thread_(std::this_thread::get_id()) {
    bool global = context_ == g_main_context_default();
    server_.update([&](Log &log) {
      log.fetchers_made++;
      log.fetchers_alive++;
      if (global) log.violations.push_back("fetcher made without a thread-default context");
    });
    GMainContext *ctx = context_;
    server_.set_resumer([this, ctx] {
      GSource *idle = g_idle_source_new();
      g_source_set_callback(
          idle,
          [](gpointer self) -> gboolean {
            static_cast<FakeFetcher *>(self)->resume_paused();
            return G_SOURCE_REMOVE;
          },
          this, nullptr);
      g_source_attach(idle, ctx);
      g_source_unref(idle);
    });
  }

  ~FakeFetcher() override {
    check_thread("~Fetcher");
    server_.set_resumer(nullptr);
    while (!transfers_.empty()) {
      std::shared_ptr<Transfer> t = transfers_.begin()->second;
      std::string url = t->url;
      server_.update([&](Log &log) {
        log.violations.push_back("fetcher destroyed while " + url + " was running");
      });
      release(*t);
    }
    g_main_context_unref(context_);
    server_.update([](Log &log) { log.fetchers_alive--; });
  }

  uint64_t start(const FetchRequest &req, FetchListener *listener) override {
    check_thread("start()");
    Reply r = server_.take(req.url);
    auto t = std::make_shared<Transfer>();
    t->owner = this;
    t->id = ++next_id_;
    t->url = req.url;
    t->listener = listener;
    t->chunk = std::max<size_t>(1, r.chunk);
    t->hang = r.hang;
    t->pause_at = r.pause_at;
    t->payload = r.body;
    int status = r.status;
    Headers headers;
    if (status == 200 && req.range_start > 0 && r.honour_range) {
      status = 206;
      size_t from = std::min(size_t(req.range_start), r.body.size());
      t->payload = r.body.substr(from);
      if (r.send_length)
        headers.push_back({"Content-Range", "bytes " + std::to_string(from) + "-" +
                                                std::to_string(r.body.size() - 1) + "/" +
                                                std::to_string(r.body.size())});
    }
    if (r.send_length) headers.push_back({"Content-Length", std::to_string(t->payload.size())});
    headers.insert(headers.end(), r.headers.begin(), r.headers.end());
    t->head = parse_head(status, headers);
    t->stop =
        r.cut_after >= 0 ? std::min(size_t(r.cut_after), t->payload.size()) : t->payload.size();
    t->end = r.cut_after >= 0 ? r.cut_error : FetchError::None;
    t->segment = segment_of(req.url) >= 0;

    server_.update([&](Log &log) {
      log.requests.push_back({req.url, req.range_start, status, log.statuses_answered});
      if (t->segment) {
        log.active_segments++;
        log.max_active_segments = std::max(log.max_active_segments, log.active_segments);
      }
    });

    // Every event comes from this source, on this thread, later: never from
    // within start().
    t->source = g_timeout_source_new(r.step_ms);
    g_source_set_callback(t->source, dispatch, new std::shared_ptr<Transfer>(t), [](gpointer data) {
      delete static_cast<std::shared_ptr<Transfer> *>(data);
    });
    g_source_attach(t->source, context_);
    transfers_[t->id] = t;
    return t->id;
  }

  void cancel(uint64_t id) override {
    check_thread("cancel()");
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;  // unknown or over: ignored, as the contract says
    std::shared_ptr<Transfer> t = it->second;
    std::string url = t->url;
    release(*t);
    server_.update([&](Log &log) { log.cancelled.push_back(url); });
  }

 private:
  struct Transfer {
    FakeFetcher *owner = nullptr;
    uint64_t id = 0;
    std::string url;
    bool segment = false;
    FetchListener *listener = nullptr;
    FetchResponse head;
    std::string payload;  // the body of this response
    size_t pos = 0;       // bytes of payload sent
    size_t stop = 0;      // bytes of payload to send
    size_t chunk = 64;
    FetchError end = FetchError::None;
    bool hang = false;
    int64_t pause_at = -1;
    bool paused = false;
    bool head_sent = false;
    bool over = false;          // ended or cancelled: no callback may follow
    GSource *source = nullptr;  // our ref, until release()
  };

  static gboolean dispatch(gpointer data) noexcept {
    // A copy: the transfer stays alive while its listener runs, even when
    // the listener cancels it.
    std::shared_ptr<Transfer> t = *static_cast<std::shared_ptr<Transfer> *>(data);
    return t->owner->step(t) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
  }

  // Delivers the next event of `t`. Returns whether more follow from its
  // source.
  bool step(const std::shared_ptr<Transfer> &t) {
    check_thread("a listener callback");
    if (t->over) {
      std::string url = t->url;
      server_.update([&](Log &log) {
        log.violations.push_back("event for " + url + " after it ended or was cancelled");
      });
      return false;
    }
    if (!t->head_sent) {
      t->head_sent = true;
      t->listener->on_response(t->head);
      return !t->over;
    }
    if (t->pause_at >= 0 && t->pos >= size_t(t->pause_at) && !t->paused) {
      t->paused = true;  // silent until resume_paused()
      server_.update([](Log &log) { log.paused++; });
      if (t->source) {
        g_source_unref(t->source);
        t->source = nullptr;
      }
      return false;
    }
    if (t->pos < t->stop) {
      size_t n = std::min(t->chunk, t->stop - t->pos);
      if (t->pause_at >= 0 && !t->paused && t->pos < size_t(t->pause_at))
        n = std::min(n, size_t(t->pause_at) - t->pos);
      GBytes *chunk = new_chunk(t->payload, t->pos, n);
      t->pos += n;
      t->listener->on_data(chunk);
      g_bytes_unref(chunk);
      return !t->over;
    }
    if (t->hang) {
      // Still running (until cancelled), but silent: its source is done.
      server_.update([](Log &log) { log.stalled++; });
      return false;
    }
    // The end. Forget the transfer first: the listener may start others.
    std::string url = t->url;
    FetchError end = t->end;
    FetchListener *listener = t->listener;
    release(*t);
    if (segment_of(url) < 0) server_.update([](Log &log) { log.statuses_answered++; });
    listener->on_done(end, end == FetchError::None ? "" : "scripted failure");
    server_.update([&](Log &log) { log.finished.push_back(url); });
    return false;
  }

  // Paused transfers send the rest of their script.
  void resume_paused() {
    check_thread("resume");
    for (auto &entry : transfers_) {
      std::shared_ptr<Transfer> t = entry.second;
      if (!t->paused || t->source || t->over) continue;
      t->source = g_timeout_source_new(0);
      g_source_set_callback(
          t->source, dispatch, new std::shared_ptr<Transfer>(t),
          [](gpointer data) { delete static_cast<std::shared_ptr<Transfer> *>(data); });
      g_source_attach(t->source, context_);
    }
  }

  // Ends `t` for good. `t` may be freed when this returns, unless the caller
  // holds a reference.
  void release(Transfer &t) {
    t.over = true;
    if (t.source) {
      g_source_destroy(t.source);
      g_source_unref(t.source);
      t.source = nullptr;
    }
    if (t.segment) server_.update([](Log &log) { log.active_segments--; });
    transfers_.erase(t.id);
  }

  void check_thread(const char *what) {
    GMainContext *now = g_main_context_get_thread_default();
    if (!now) now = g_main_context_default();
    if (std::this_thread::get_id() == thread_ && now == context_) return;
    std::string v = std::string(what) + " on a thread or context other than the fetcher's";
    server_.update([&](Log &log) { log.violations.push_back(v); });
  }

  FakeServer &server_;
  GMainContext *context_;  // the creator's thread-default context (a ref)
  std::thread::id thread_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::shared_ptr<Transfer>> transfers_;  // running ones
};

const char *kind_name(Kind k) {
  switch (k) {
    case Kind::Data:
      return "data";
    case Kind::Eos:
      return "eos";
    case Kind::Error:
      return "error";
    case Kind::Flushing:
      return "flushing";
    case Kind::Timeout:
      return "timeout";
    case Kind::Gap:
      return "gap";
  }
  return "?";
}

const char *error_kind_name(EngineError::Kind k) {
  switch (k) {
    case EngineError::Kind::NotFound:
      return "not-found";
    case EngineError::Kind::NotAuthorized:
      return "not-authorized";
    case EngineError::Kind::OpenRead:
      return "open-read";
    case EngineError::Kind::Read:
      return "read";
    case EngineError::Kind::Failed:
      return "failed";
    case EngineError::Kind::Settings:
      return "settings";
    case EngineError::Kind::NotAudio:
      return "not-audio";
  }
  return "?";
}

// Whether thread `tid` of this process sleeps in the kernel, e.g. waiting on
// a condition variable: state S in /proc/self/task/TID/stat, and a wait
// channel other than "0" (a thread being woken still shows S). Linux only;
// false when it cannot tell.
bool thread_asleep(pid_t tid) {
  g_autofree char *stat_path = g_strdup_printf("/proc/self/task/%d/stat", int(tid));
  g_autofree char *stat = nullptr;
  if (!g_file_get_contents(stat_path, &stat, nullptr, nullptr)) return false;
  const char *paren = strrchr(stat, ')');  // after the command name, which may hold spaces
  if (!paren || paren[1] != ' ' || paren[2] != 'S') return false;
  g_autofree char *wchan_path = g_strdup_printf("/proc/self/task/%d/wchan", int(tid));
  g_autofree char *wchan = nullptr;
  if (!g_file_get_contents(wchan_path, &wchan, nullptr, nullptr)) return true;
  return g_strcmp0(wchan, "0") != 0;
}

bool contains(const std::string &hay, const std::string &needle) {
  return hay.find(needle) != std::string::npos;
}

DownloaderConfig test_config() {
  DownloaderConfig c;
  c.backend = "http://fake.invalid:8080/api/";
  c.video_id = "id with/odd?chars&é";
  c.max_concurrent = 3;
  c.poll_interval_s = 0.02;
  c.max_retries = 2;
  c.retry_backoff_s = 0.01;
  c.timeout_s = 5;
  c.max_wait_s = 30;
  c.idle_timeout_s = 0.2;
  c.check_segments = false;  // made-up bytes (test_engine_check turns it on)
  return c;
}

// What the consumer got, and how the stream ended.
struct Drained {
  std::string bytes;                        // all Data, in pop order
  std::map<int64_t, std::string> segments;  // the same, per segment
  Kind end = Kind::Timeout;                 // Eos, Error or Flushing; Timeout: deadline passed
  EngineError error;
  std::string problem;  // the first chunk out of order, if any
  Clock::time_point ended_at;
  std::vector<EngineEvent> events;  // taken while popping, as the element does
};

// Pops until Eos, Error or Flushing, for at most `overall`.
Drained drain(Downloader &dl, std::chrono::milliseconds overall = 30000ms) {
  Drained d;
  int64_t last_segment = -1;
  auto deadline = Clock::now() + overall;
  while (Clock::now() < deadline) {
    Downloader::Item item = dl.pop(100ms);
    for (EngineEvent &ev : dl.take_events()) d.events.push_back(std::move(ev));
    if (item.kind == Kind::Timeout) continue;
    if (item.kind != Kind::Data) {
      d.end = item.kind;
      d.error = item.error;
      break;
    }
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(item.bytes, &size));
    std::string &seg = d.segments[item.segment];
    if (d.problem.empty() && (item.segment < last_segment || item.segment_offset != seg.size()))
      d.problem = "segment " + std::to_string(item.segment) + " offset " +
                  std::to_string(item.segment_offset) + " after " + std::to_string(seg.size()) +
                  " bytes of it (previous segment " + std::to_string(last_segment) + ")";
    last_segment = item.segment;
    seg.append(data, size);
    d.bytes.append(data, size);
    g_bytes_unref(item.bytes);
  }
  d.ended_at = Clock::now();
  return d;
}

void check_bytes(const std::string &got, const std::string &want) {
  size_t diff = 0;
  while (diff < got.size() && diff < want.size() && got[diff] == want[diff]) diff++;
  fail_unless(got == want, "got %zu bytes, expected %zu; they differ from byte %zu", got.size(),
              want.size(), diff);
}

void check_end(const Drained &d, Kind want) {
  fail_unless(d.problem.empty(), "out of order: %s", d.problem.c_str());
  fail_unless_equals_string(kind_name(d.end), kind_name(want));
}

int64_t ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// One engine and its fake server.
struct Rig {
  explicit Rig(DownloaderConfig c = test_config()) : cfg(std::move(c)) {}

  std::string status() const { return status_url(cfg.backend, cfg.video_id); }
  std::string seg(int64_t n) const { return segment_url(cfg.backend, cfg.video_id, n); }

  void start() {
    FakeServer *srv = &server;
    dl = std::make_unique<Downloader>(
        cfg, [srv](const FetcherConfig &fc, std::string &) -> std::unique_ptr<Fetcher> {
          srv->update([&](Log &log) { log.config = fc; });
          return std::make_unique<FakeFetcher>(*srv);
        });
    std::string error;
    started_at = Clock::now();
    fail_unless(dl->start(error), "start: %s", error.c_str());
  }

  // Stops the engine and checks the fake: no broken contract, no transfer
  // or chunk left behind.
  void finish() {
    dl->stop();
    dl.reset();
    Log log = server.log();
    fail_unless(log.violations.empty(), "fetcher contract broken (%zu times), first: %s",
                log.violations.size(),
                log.violations.empty() ? "" : log.violations.front().c_str());
    fail_unless_equals_int(log.fetchers_made, 1);
    fail_unless_equals_int(log.fetchers_alive, 0);
    fail_unless_equals_int(log.active_segments, 0);
    fail_unless_equals_int(g_live_chunks.load(), 0);
  }

  DownloaderConfig cfg;
  FakeServer server;
  std::unique_ptr<Downloader> dl;  // declared last: goes first
  Clock::time_point started_at;
};

const char *kTotal3 = R"({"ready":[0,1,2],"totalSegments":3})";

}  // namespace rig

using namespace rig;
