// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — the download engine, segdl::Downloader, against a scripted
 * fake Fetcher: no network, no libsoup, no sleeps.
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

namespace {

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

 private:
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
  }

  ~FakeFetcher() override {
    check_thread("~Fetcher");
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
    if (t->pos < t->stop) {
      size_t n = std::min(t->chunk, t->stop - t->pos);
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
Drained drain(Downloader &dl, std::chrono::milliseconds overall = 5000ms) {
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

}  // namespace

// 1. The deployed bare status: every segment once, in order, segment 0 asked
// at once (before any status answer).
GST_START_TEST(test_bare_status) {
  Rig rig;
  std::string s0 = make_body(0, 1000), s1 = make_body(1, 2500), s2 = make_body(2, 10);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);
  check_bytes(d.segments[1], s1);

  Log log = rig.server.log();
  fail_unless_equals_int64(log.first_segment_requested(), 0);
  fail_unless(log.first(rig.seg(0)) != nullptr);
  fail_unless_equals_int(log.first(rig.seg(0))->statuses_before, 0);
  for (int n = 0; n < 3; n++) {
    fail_unless_equals_int(log.count(rig.seg(n)), 1);
    fail_unless_equals_int64(log.ranges(rig.seg(n))[0], 0);
  }
  fail_unless_equals_int64(log.highest_segment(), 2);
  fail_unless_equals_int(log.count(rig.status()), 1);  // all known at once: no second poll
  fail_unless(log.config.max_connections > rig.cfg.max_concurrent + 1);

  EngineStats st = rig.dl->stats();
  fail_unless_equals_int64(st.segments_total, 3);
  fail_unless_equals_int64(st.segments_downloaded, 3);
  fail_unless_equals_int64(st.bytes_downloaded, int64_t(s0.size() + s1.size() + s2.size()));
  fail_unless_equals_int64(st.retries, 0);
  fail_unless_equals_int64(st.status_polls, 1);
  rig.finish();
}
GST_END_TEST;

// Segment 1 breaks after 1234 bytes (mid-chunk), then answers in full:
// `range` says whether the server honours the resume's Range.
static void run_resume(bool range, FetchError cut_error) {
  Rig rig;
  std::string s0 = make_body(0, 700), s1 = make_body(1, 3000), s2 = make_body(2, 900);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  Reply again = ok(s1);
  again.honour_range = range;
  rig.server.script(rig.seg(1), {broken(s1, 1234, cut_error, range), again});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);
  check_bytes(d.segments[1], s1);

  Log log = rig.server.log();
  fail_unless(log.ranges(rig.seg(1)) == std::vector<int64_t>({0, 1234}),
              "segment 1 asked %zu times", log.ranges(rig.seg(1)).size());
  fail_unless(log.served(rig.seg(1)) == std::vector<int>({200, range ? 206 : 200}));
  fail_unless_equals_int(log.count(rig.seg(0)), 1);
  fail_unless_equals_int(log.count(rig.seg(2)), 1);
  EngineStats st = rig.dl->stats();
  fail_unless_equals_int64(st.retries, 1);
  // What was dropped from the 200 is not counted again.
  fail_unless_equals_int64(st.bytes_downloaded, int64_t(s0.size() + s1.size() + s2.size()));
  rig.finish();
}

// 2. A broken body resumes with Range from where it broke.
GST_START_TEST(test_resume_with_range) {
  run_resume(true, FetchError::Io);
}
GST_END_TEST;

// 3. The server ignores Range and sends it all again: the engine skips what
// it has.
GST_START_TEST(test_resume_range_ignored) {
  run_resume(false, FetchError::Io);
}
GST_END_TEST;

// 4. A body shorter than its Content-Length, without a transport error, is
// broken too.
GST_START_TEST(test_short_body) {
  run_resume(true, FetchError::None);
}
GST_END_TEST;

// 5. Not ready is no failure. Only segment 0 is ever asked for before the
// status lists it (docs/protocol.md, "Segments"), so the 404-while-unlisted
// case is segment 0; segment 1, once listed, answers 503 (Retry-After: 0)
// and 425 before its bytes.
GST_START_TEST(test_not_ready) {
  Rig rig;
  std::string s0 = make_body(0, 800), s1 = make_body(1, 1500), s2 = make_body(2, 300);
  rig.server.script(rig.status(), {ok(R"({"ready":[]})"), ok(R"({"ready":[]})"), ok(kTotal3)});
  rig.server.script(rig.seg(0), {answer(404), ok(s0)});
  rig.server.script(rig.seg(1), {answer(503, 0), answer(425), ok(s1)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1 + s2);

  Log log = rig.server.log();
  fail_unless(log.served(rig.seg(0)) == std::vector<int>({404, 200}));
  fail_unless_equals_int(log.first(rig.seg(0))->statuses_before, 0);  // 404 while unlisted
  fail_unless(log.served(rig.seg(1)) == std::vector<int>({503, 425, 200}));
  fail_unless_equals_int(log.first(rig.seg(1))->statuses_before, 3);  // asked once listed
  fail_unless_equals_int(log.count(rig.status()), 3);
  EngineStats st = rig.dl->stats();
  fail_unless_equals_int64(st.retries, 0);
  fail_unless_equals_int64(st.segments_downloaded, 3);
  rig.finish();
}
GST_END_TEST;

// 6. A segment that always answers 500 fails after max_retries + 1 attempts;
// what comes before it is delivered first.
GST_START_TEST(test_server_error) {
  Rig rig;
  std::string s0 = make_body(0, 600), s2 = make_body(2, 600);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {answer(500)});
  rig.server.script(rig.seg(2), {ok(s2)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, s0);
  fail_unless_equals_string(error_kind_name(d.error.kind), "open-read");
  fail_unless_equals_int64(d.error.segment, 1);
  fail_unless_equals_int(d.error.http_status, 500);
  std::string want_uri = rig.seg(1);
  fail_unless_equals_string(d.error.uri.c_str(), want_uri.c_str());
  fail_unless(contains(d.error.message, "segment 1"), "message: %s", d.error.message.c_str());

  Log log = rig.server.log();
  fail_unless_equals_int(log.count(rig.seg(1)), rig.cfg.max_retries + 1);
  fail_unless_equals_int64(rig.dl->stats().retries, rig.cfg.max_retries);
  rig.finish();
}
GST_END_TEST;

// 7. 403 is fatal at once: no retry.
GST_START_TEST(test_forbidden) {
  Rig rig;
  std::string s0 = make_body(0, 600);
  rig.server.script(rig.status(), {ok(kTotal3)});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {answer(403)});
  rig.server.script(rig.seg(2), {ok(make_body(2, 600))});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, s0);
  fail_unless_equals_string(error_kind_name(d.error.kind), "not-authorized");
  fail_unless_equals_int64(d.error.segment, 1);
  fail_unless_equals_int(d.error.http_status, 403);
  fail_unless(contains(d.error.message, "segment 1"), "message: %s", d.error.message.c_str());

  fail_unless_equals_int(rig.server.log().count(rig.seg(1)), 1);
  fail_unless_equals_int64(rig.dl->stats().retries, 0);
  rig.finish();
}
GST_END_TEST;

// 8. A status that never parses: retried, then Read with the reason.
GST_START_TEST(test_status_malformed) {
  Rig rig;
  rig.server.script(rig.status(), {ok(R"({"ready": [0, 1,)")});
  rig.server.script(rig.seg(0), {answer(404)});  // never listed: waits, no data
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, "");
  fail_unless_equals_string(error_kind_name(d.error.kind), "read");
  fail_unless(contains(d.error.message, "malformed status"), "message: %s",
              d.error.message.c_str());
  std::string want_uri = rig.status();
  fail_unless_equals_string(d.error.uri.c_str(), want_uri.c_str());
  rig.dl->stop();  // nothing more is asked after this
  fail_unless_equals_int(rig.server.log().count(rig.status()), rig.cfg.max_retries + 1);
  fail_unless_equals_int64(rig.dl->stats().status_polls, rig.cfg.max_retries + 1);
  rig.finish();
}
GST_END_TEST;

// 9. The backend gives up: Failed with its text, no retry.
GST_START_TEST(test_status_error_state) {
  Rig rig;
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1],"state":"error","error":"boom"})")});
  rig.server.script(rig.seg(0), {answer(404)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  fail_unless_equals_string(error_kind_name(d.error.kind), "failed");
  fail_unless(contains(d.error.message, "boom"), "message: %s", d.error.message.c_str());
  rig.dl->stop();
  fail_unless_equals_int(rig.server.log().count(rig.status()), 1);
  rig.finish();
}
GST_END_TEST;

// 10. No total, no state: the track ends idle_timeout_s after the last new
// segment, with the segments seen.
GST_START_TEST(test_idle_end) {
  Rig rig;
  std::string s0 = make_body(0, 500), s1 = make_body(1, 500);
  rig.server.script(rig.status(), {ok(R"({"ready":[0]})"), ok(R"({"ready":[0,1]})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1);
  int64_t ms = ms_between(rig.started_at, d.ended_at);
  fail_unless(ms >= int64_t(rig.cfg.idle_timeout_s * 1000), "EOS after %" PRId64 " ms", ms);

  Log log = rig.server.log();
  fail_unless_equals_int64(log.highest_segment(), 1);
  fail_unless(log.count(rig.status()) >= 3);
  fail_unless_equals_int64(rig.dl->stats().segments_total, 2);
  rig.finish();
}
GST_END_TEST;

// 11. monitor = false: the segments ready at the first status are the track.
GST_START_TEST(test_no_monitor) {
  DownloaderConfig cfg = test_config();
  cfg.monitor = false;
  Rig rig(cfg);
  std::string s0 = make_body(0, 500), s1 = make_body(1, 500);
  rig.server.script(rig.status(),
                    {ok(R"({"ready":[0,1]})"), ok(R"({"ready":[0,1,2,3],"totalSegments":4})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.server.script(rig.seg(2), {ok(make_body(2, 500))});
  rig.server.script(rig.seg(3), {ok(make_body(3, 500))});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, s0 + s1);
  rig.dl->stop();
  Log log = rig.server.log();
  fail_unless_equals_int(log.count(rig.status()), 1);
  fail_unless_equals_int64(log.highest_segment(), 1);
  rig.finish();
}
GST_END_TEST;

// 12. max_wait_s: a segment that never becomes ready fails as NotFound,
// after what came before it.
GST_START_TEST(test_max_wait) {
  DownloaderConfig cfg = test_config();
  cfg.max_wait_s = 0.5;
  cfg.speculative_fetch = false;  // segment 2 is never asked for (tests/speed: when it is)
  Rig rig(cfg);
  std::string s0 = make_body(0, 500), s1 = make_body(1, 500);
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1],"totalSegments":3})")});
  rig.server.script(rig.seg(0), {ok(s0)});
  rig.server.script(rig.seg(1), {ok(s1)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  check_bytes(d.bytes, s0 + s1);
  fail_unless_equals_string(error_kind_name(d.error.kind), "not-found");
  fail_unless_equals_int64(d.error.segment, 2);
  fail_unless(contains(d.error.message, "segment 2"), "message: %s", d.error.message.c_str());
  fail_unless(contains(d.error.message, "max-wait"), "message: %s", d.error.message.c_str());
  int64_t ms = ms_between(rig.started_at, d.ended_at);
  fail_unless(ms >= 500, "max-wait fired after %" PRId64 " ms", ms);
  fail_unless_equals_int(rig.server.log().count(rig.seg(2)), 0);
  rig.finish();
}
GST_END_TEST;

// 12b. The max-wait message gives the real value (max-wait is a double:
// 0.5 s must not read "0 s").
GST_START_TEST(test_max_wait_message_units) {
  DownloaderConfig cfg = test_config();
  cfg.max_wait_s = 0.5;
  Rig rig(cfg);
  rig.server.script(rig.status(), {ok(R"({"ready":[],"totalSegments":1})")});
  rig.server.script(rig.seg(0), {answer(404)});
  rig.start();

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Error);
  fail_unless(!contains(d.error.message, "after 0 s"), "message: %s", d.error.message.c_str());
  fail_unless(contains(d.error.message, "0.5"), "message: %s", d.error.message.c_str());
  rig.finish();
}
GST_END_TEST;

// 13. Memory is bounded: with max_concurrent 2 (window 3) and a consumer
// that does not pop, nothing from segment 3 on is asked for.
GST_START_TEST(test_window_bound) {
  DownloaderConfig cfg = test_config();
  cfg.max_concurrent = 2;
  Rig rig(cfg);
  std::vector<std::string> segs;
  std::string all;
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1,2,3,4,5],"totalSegments":6})")});
  for (int n = 0; n < 6; n++) {
    segs.push_back(make_body(n, 2000 + 37 * n));
    all += segs.back();
    Reply r = ok(segs.back());
    r.chunk = 100;
    rig.server.script(rig.seg(n), {r});
  }
  rig.start();

  // Once segments 0-2 and the status have ended (and their on_done, which
  // schedules what comes next, has returned), nothing else can start before
  // the consumer moves.
  bool settled = rig.server.wait_until(
      [&](const Log &log) {
        return log.finished_count(rig.status()) >= 1 && log.finished_count(rig.seg(0)) == 1 &&
               log.finished_count(rig.seg(1)) == 1 && log.finished_count(rig.seg(2)) == 1;
      },
      3000ms);
  fail_unless(settled, "segments 0-2 did not finish");
  Log log = rig.server.log();
  fail_unless_equals_int64(log.highest_segment(), 2);
  fail_unless(log.max_active_segments <= 2, "%d segments at once", log.max_active_segments);
  Downloader::Level lv = rig.dl->level();
  fail_unless_equals_int64(int64_t(lv.bytes_ahead),
                           int64_t(segs[0].size() + segs[1].size() + segs[2].size()));
  fail_unless(!lv.can_finish);

  Drained d = drain(*rig.dl);
  check_end(d, Kind::Eos);
  check_bytes(d.bytes, all);
  log = rig.server.log();
  for (int n = 0; n < 6; n++) fail_unless_equals_int(log.count(rig.seg(n)), 1);
  fail_unless(log.max_active_segments <= 2, "%d segments at once", log.max_active_segments);
  rig.finish();
}
GST_END_TEST;

// 14. stop() with transfers in flight (three segments and a status poll,
// all stalled) returns promptly, cancels all of them, and a second stop()
// is harmless. finish() checks that no listener ran after its cancel and
// that nothing leaked.
GST_START_TEST(test_stop_in_flight) {
  Rig rig;
  Reply stalled_status = ok("{");
  stalled_status.cut_after = 0;
  stalled_status.hang = true;
  // No total and no state: a second poll follows, and stalls.
  rig.server.script(rig.status(), {ok(R"({"ready":[0,1,2,3]})"), stalled_status});
  for (int n = 0; n < 4; n++) {
    Reply r = ok(make_body(n, 5000));
    r.cut_after = 100;
    r.hang = true;
    rig.server.script(rig.seg(n), {r});
  }
  rig.start();

  bool stalled = rig.server.wait_until([](const Log &log) { return log.stalled == 4; }, 3000ms);
  fail_unless(stalled, "the transfers did not all start");

  auto t0 = Clock::now();
  rig.dl->stop();
  int64_t ms = ms_between(t0, Clock::now());
  fail_unless(ms < 1000, "stop() took %" PRId64 " ms", ms);
  t0 = Clock::now();
  rig.dl->stop();
  ms = ms_between(t0, Clock::now());
  fail_unless(ms < 1000, "the second stop() took %" PRId64 " ms", ms);

  Log log = rig.server.log();
  for (int n = 0; n < 3; n++) fail_unless_equals_int(log.cancelled_count(rig.seg(n)), 1);
  fail_unless_equals_int(log.count(rig.seg(3)), 0);
  fail_unless_equals_int(log.cancelled_count(rig.status()), 1);
  fail_unless_equals_int(log.fetchers_alive, 0);
  rig.finish();
}
GST_END_TEST;

// 15. set_flushing(true) from another thread wakes a blocked pop() at once.
// The flush waits (bounded) until the consumer thread is asleep in pop(), so
// it is the wake-up that is tested, not the check on entry.
GST_START_TEST(test_flushing) {
  Rig rig;
  Reply stalled = ok(make_body(0, 1000));
  stalled.cut_after = 0;
  stalled.hang = true;
  rig.server.script(rig.status(), {ok(R"({"ready":[0],"totalSegments":1})")});
  rig.server.script(rig.seg(0), {stalled});
  rig.start();
  fail_unless(rig.server.wait_until([](const Log &log) { return log.stalled == 1; }, 3000ms));

  std::atomic<pid_t> consumer_tid{0};
  Kind got = Kind::Data;
  int64_t waited_ms = -1;
  std::thread consumer([&] {
    consumer_tid = gettid();
    auto t0 = Clock::now();
    Downloader::Item item = rig.dl->pop(10000ms);
    waited_ms = ms_between(t0, Clock::now());
    got = item.kind;
    if (item.bytes) g_bytes_unref(item.bytes);
  });
  // Nothing else can wake it: the only transfer is stalled and the status is
  // complete. (A predicate poll with a deadline, not a sleep.)
  auto until = Clock::now() + 3000ms;
  bool asleep = false;
  while (!asleep && Clock::now() < until) {
    pid_t tid = consumer_tid;
    asleep = tid != 0 && thread_asleep(tid);
    if (!asleep) std::this_thread::yield();
  }
  auto flushed_at = Clock::now();
  rig.dl->set_flushing(true);
  consumer.join();
  int64_t after_flush_ms = ms_between(flushed_at, Clock::now());
  fail_unless(asleep, "the consumer never blocked in pop()");
  fail_unless_equals_string(kind_name(got), "flushing");
  fail_unless(waited_ms < 5000, "pop() returned after %" PRId64 " ms", waited_ms);
  fail_unless(after_flush_ms < 1000, "pop() returned %" PRId64 " ms after the flush",
              after_flush_ms);

  // Flushing: everything returns at once.
  auto t0 = Clock::now();
  fail_unless_equals_string(kind_name(rig.dl->pop(5000ms).kind), "flushing");
  fail_if(rig.dl->wait_change(5000ms));
  fail_unless(ms_between(t0, Clock::now()) < 2000);

  // Back to normal: nothing to give, so pop() times out.
  rig.dl->set_flushing(false);
  fail_unless_equals_string(kind_name(rig.dl->pop(30ms).kind), "timeout");
  rig.finish();
}
GST_END_TEST;

static Suite *downloader_suite() {
  Suite *s = suite_create("downloader");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_bare_status);
  tcase_add_test(tc, test_resume_with_range);
  tcase_add_test(tc, test_resume_range_ignored);
  tcase_add_test(tc, test_short_body);
  tcase_add_test(tc, test_not_ready);
  tcase_add_test(tc, test_server_error);
  tcase_add_test(tc, test_forbidden);
  tcase_add_test(tc, test_status_malformed);
  tcase_add_test(tc, test_status_error_state);
  tcase_add_test(tc, test_idle_end);
  tcase_add_test(tc, test_no_monitor);
  tcase_add_test(tc, test_max_wait);
  tcase_add_test(tc, test_max_wait_message_units);
  tcase_add_test(tc, test_window_bound);
  tcase_add_test(tc, test_stop_in_flight);
  tcase_add_test(tc, test_flushing);
  return s;
}

GST_CHECK_MAIN(downloader);
