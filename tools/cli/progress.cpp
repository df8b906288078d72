// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — progress display (bar, lines, JSON events). */
#include "progress.h"

#include "cli.h"
#include "json.h"

#include <glib.h>
#include <json-glib/json-glib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

namespace segdl::cli {

namespace {

// One JSON event object, written as one line on stdout.
class JsonEvent {
 public:
  JsonEvent(const char *event, const std::string &id, double elapsed) : b_(json_builder_new()) {
    json_builder_begin_object(b_);
    str("event", event);
    if (!id.empty()) str("id", id);
    real("elapsed", elapsed);
  }
  ~JsonEvent() { g_object_unref(b_); }
  JsonEvent(const JsonEvent &) = delete;
  JsonEvent &operator=(const JsonEvent &) = delete;
  JsonEvent &str(const char *key, const std::string &v) {
    json_builder_set_member_name(b_, key);
    json_builder_add_string_value(b_, v.c_str());
    return *this;
  }
  JsonEvent &num(const char *key, int64_t v) {
    json_builder_set_member_name(b_, key);
    json_builder_add_int_value(b_, v);
    return *this;
  }
  JsonEvent &real(const char *key, double v) {
    json_builder_set_member_name(b_, key);
    if (v < 0)
      json_builder_add_null_value(b_);
    else
      json_builder_add_double_value(b_, v);
    return *this;
  }
  JsonEvent &flag(const char *key, bool v) {
    json_builder_set_member_name(b_, key);
    json_builder_add_boolean_value(b_, v);
    return *this;
  }
  // -1 is written as null (unknown).
  JsonEvent &count(const char *key, int64_t v) {
    json_builder_set_member_name(b_, key);
    if (v < 0)
      json_builder_add_null_value(b_);
    else
      json_builder_add_int_value(b_, v);
    return *this;
  }
  void emit() {
    json_builder_end_object(b_);
    fprintf(stdout, "%s\n", json_text(b_).c_str());
    fflush(stdout);
  }

 private:
  JsonBuilder *b_;
};

void add_snapshot(JsonEvent &e, const Snapshot &s) {
  e.count("segments_total", s.total)
      .num("segments_done", s.done)
      .num("bytes", s.bytes)
      .num("retries", s.retries)
      .num("cache_hits", s.cache_hits)
      .num("gaps", s.gaps)
      .flag("complete", s.complete)
      .flag("offline", s.offline)
      .flag("fallback", s.fallback);
}

int terminal_columns() {
  struct winsize ws = {};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10) return ws.ws_col;
  return 80;
}

std::string state_text(const std::string &state) {
  if (state == "waiting") return "waiting for the backend";
  return state;
}

}  // namespace

Progress::Progress(Mode mode, bool verbose) : mode_(mode), verbose_(verbose) {}

Progress::~Progress() {
  clear_bar();
}

double Progress::elapsed() const {
  return double(g_get_monotonic_time() - start_us_) / 1e6;
}

void Progress::start(const std::string &id, size_t position, size_t count,
                     const std::string &backend) {
  release_held();
  clear_bar();
  id_ = id;
  position_ = position;
  count_ = count;
  start_us_ = g_get_monotonic_time();
  state_ = "starting";
  last_ = Snapshot();
  segment_bytes_ = 0;
  fallback_from_ = -1;
  if (mode_ == Mode::Json)
    JsonEvent("start", id_, 0)
        .str("backend", backend)
        .num("position", int64_t(position))
        .num("count", int64_t(count))
        .emit();
  else if (mode_ == Mode::Lines)
    line(id_ + ": downloading from " + backend);
  else if (mode_ == Mode::Bar)
    draw_bar();
}

void Progress::info(const std::string &text) {
  if (mode_ == Mode::Json)
    JsonEvent("info", id_, elapsed()).str("message", text).emit();
  else if (mode_ == Mode::Bar || mode_ == Mode::Lines)
    line(id_ + ": " + text);
}

void Progress::output(const std::string &path, const std::string &codec) {
  if (mode_ == Mode::Json)
    JsonEvent("output", id_, elapsed()).str("path", path).str("codec", codec).emit();
  else if (mode_ == Mode::Lines || (mode_ == Mode::Bar && verbose_))
    line(id_ + ": " + codec + " audio, writing " + path);
}

void Progress::playing() {
  if (mode_ == Mode::Json)
    JsonEvent("playing", id_, elapsed()).emit();
  else if (mode_ == Mode::Lines || (mode_ == Mode::Bar && verbose_))
    line(id_ + ": playing");
}

void Progress::segment(const SegmentEvent &e) {
  segment_bytes_ += int64_t(e.bytes);
  last_.done = std::max(last_.done, e.done);
  if (e.total >= 0) last_.total = e.total;
  if (mode_ == Mode::Lines && e.source != "fallback") {
    // Whole before any status answer: the line waits for the total.
    held_.push_back(e);
    if (status_answered()) release_held();
    return;
  }
  if (mode_ == Mode::Json) {
    JsonEvent j("segment", id_, elapsed());
    j.count("index", e.index).num("bytes", int64_t(e.bytes)).real("seconds", e.seconds);
    j.str("source", e.source).num("retries", e.retries);
    j.count("segments_total", e.total).num("segments_done", e.done).emit();
  } else if (mode_ == Mode::Lines) {
    // The rest of the track in one file: not one segment more of the count.
    release_held();
    char secs[32] = "";
    if (e.seconds >= 0) g_snprintf(secs, sizeof secs, ", %.2f s", e.seconds);
    line(id_ + ": the fallback URL's file done (" + human_bytes(double(e.bytes)) + secs + ")");
  } else if (mode_ == Mode::Bar) {
    draw_bar();
  }
}

// A status answer has listed segments or given the total (Lines mode).
bool Progress::status_answered() const {
  return last_.total >= 0 || last_.available > 0;
}

// The held segment lines, in order, with the total known by now ("?" when
// the backend does not give one).
void Progress::release_held() {
  std::vector<SegmentEvent> held;
  held.swap(held_);
  for (const SegmentEvent &e : held) {
    const int64_t known = e.total >= 0 ? e.total : last_.total;
    const std::string total = known >= 0 ? std::to_string(known) : "?";
    char secs[32] = "";
    if (e.seconds >= 0) g_snprintf(secs, sizeof secs, ", %.2f s", e.seconds);
    const std::string which = e.index >= 0 ? " " + std::to_string(e.index) : "";
    line(id_ + ": segment" + which + " done (" + std::to_string(e.done) + "/" + total + ", " +
         human_bytes(double(e.bytes)) + ", " + e.source + secs + ")");
  }
}

void Progress::retry(int64_t segment, int attempt, unsigned http_status,
                     const std::string &message) {
  last_.retries++;
  if (mode_ == Mode::Json)
    JsonEvent("retry", id_, elapsed())
        .num("segment", segment)
        .num("attempt", attempt)
        .num("http_status", http_status)
        .str("message", message)
        .emit();
  else if (mode_ == Mode::Lines || (mode_ == Mode::Bar && verbose_))
    line(id_ + ": " + message);
  else if (mode_ == Mode::Bar)
    draw_bar();
}

void Progress::fallback(int64_t segment, unsigned http_status, const std::string &cause,
                        const std::string &url) {
  release_held();
  fallback_from_ = segment;
  if (mode_ == Mode::Json)
    JsonEvent("fallback", id_, elapsed())
        .num("segment", segment)
        .num("http_status", http_status)
        .str("message", cause)
        .str("url", url)
        .emit();
  else if (mode_ != Mode::Quiet)
    line(id_ + ": switching to the fallback URL: " + cause);
}

void Progress::warning(const std::string &message) {
  if (mode_ == Mode::Json)
    JsonEvent("warning", id_, elapsed()).str("message", message).emit();
  else if (mode_ != Mode::Quiet)
    line(id_ + ": warning: " + message);
}

void Progress::state(const std::string &state) {
  if (state == state_) return;
  state_ = state;
  if (mode_ == Mode::Json)
    JsonEvent("state", id_, elapsed()).str("state", state).emit();
  else if (mode_ == Mode::Lines)
    line(id_ + ": " + state_text(state));
  else if (mode_ == Mode::Bar)
    draw_bar();
}

void Progress::update(const Snapshot &s) {
  last_ = s;
  if (mode_ == Mode::Bar) draw_bar();
  if (!held_.empty() && status_answered()) release_held();
}

void Progress::done(const Snapshot &s, const std::string &output, double elapsed_s) {
  last_ = s;
  release_held();
  if (mode_ == Mode::Json) {
    JsonEvent j("done", id_, elapsed_s);
    add_snapshot(j, s);
    j.num("segment_bytes", std::max(segment_bytes_, s.bytes));
    j.count("fallback_from", s.fallback ? fallback_from_ : -1);
    if (!output.empty()) j.str("output", output);
    j.emit();
    return;
  }
  if (mode_ == Mode::Quiet) return;
  state_ = "done";
  if (mode_ == Mode::Bar) draw_bar();
  clear_bar();
  char secs[32];
  g_snprintf(secs, sizeof secs, "%.1f s", elapsed_s);
  // The segments' size, and how much of it came over the network (the
  // stats' bytes; a segment from the cache adds none).
  std::string text = id_ + ": " + (s.complete ? "complete" : "done (not complete)") + ": " +
                     segments_text(s) + ", ";
  if (s.cache_hits > 0)
    text += human_bytes(double(std::max(segment_bytes_, s.bytes))) + " (" +
            human_bytes(double(s.bytes)) + " downloaded, " + std::to_string(s.cache_hits) +
            " from the cache)";
  else
    text += human_bytes(double(s.bytes)) + " downloaded";
  text += std::string(" in ") + secs;
  if (s.retries > 0) text += ", " + count_of(s.retries, "retry", "retries");
  if (!output.empty()) text += " -> " + output;
  line(text);
}

// "4 segments"; "2 of 4 segments" when not all came; after a fallback
// "3 of 4 segments and the fallback URL's file (from segment 2 on)": the
// counts of the done event (segments_done, segments_total, fallback_from).
std::string Progress::segments_text(const Snapshot &s) const {
  std::string text = count_of(s.done, "segment");
  if (s.total >= 0 && s.done != s.total)
    text = std::to_string(s.done) + " of " + count_of(s.total, "segment");
  if (!s.fallback) return text;
  text += " and the fallback URL's file";
  if (fallback_from_ >= 0) text += " (from segment " + std::to_string(fallback_from_) + " on)";
  return text;
}

void Progress::error(int exit_code, const std::string &message, const std::string &debug) {
  release_held();
  clear_bar();
  if (mode_ == Mode::Json) {
    JsonEvent j("error", id_, elapsed());
    j.num("exit_code", exit_code).str("message", message);
    if (!debug.empty()) j.str("debug", debug);
    j.emit();
  }
  fprintf(stderr, "segdl: %s%s\n", id_.empty() ? "" : (id_ + ": ").c_str(), message.c_str());
  if (verbose_ && !debug.empty()) fprintf(stderr, "segdl:   %s\n", debug.c_str());
  fflush(stderr);
}

void Progress::interrupted(int signo) {
  release_held();
  clear_bar();
  if (mode_ == Mode::Json) JsonEvent("interrupted", id_, elapsed()).num("signal", signo).emit();
  if (mode_ != Mode::Quiet)
    fprintf(stderr, "segdl: %s%s\n", id_.empty() ? "" : (id_ + ": ").c_str(),
            signo == 2 ? "interrupted" : "terminated");
}

// Prints a line; on a terminal the bar is cleared first and drawn again
// below it, so messages scroll above the bar.
void Progress::line(const std::string &text) {
  const bool redraw = bar_shown_;
  clear_bar();
  fprintf(stderr, "%s\n", text.c_str());
  if (redraw) draw_bar();
  fflush(stderr);
}

void Progress::clear_bar() {
  if (!bar_shown_) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
  bar_shown_ = false;
}

// [2/3] ID [#######-------] 3/8  1.2 MB  350 kB/s  ETA 0:12  retries 1  downloading
// redrawn in place: carriage return, erase the line, the new text. The line
// fits the terminal (a longer one wraps, and the next redraw erases only
// its last row): see bar_text().
void Progress::draw_bar() {
  if (mode_ != Mode::Bar) return;
  const std::string text = bar_text(size_t(terminal_columns() - 1));
  fprintf(stderr, "\r\033[K%s", text.c_str());
  fflush(stderr);
  bar_shown_ = true;
}

namespace {

// Columns of `text`, one per character (UTF-8 continuation bytes take none).
size_t columns_of(const std::string &text) {
  size_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xc0) != 0x80) n++;
  return n;
}

// The first `columns` characters of `text`.
std::string first_columns(const std::string &text, size_t columns) {
  size_t n = 0;
  for (size_t i = 0; i < text.size(); i++) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) != 0x80 && n++ == columns)
      return text.substr(0, i);
  }
  return text;
}

// What the bar line shows; bar_text() leaves parts out until it fits.
struct BarLine {
  std::string prefix, id, counts, bytes, rate, eta, retries, state;
  int64_t done = 0, total = 0;
  int bar = 20;  // columns of the bar between its brackets; 0: none

  std::string text() const {
    std::string t = prefix + id + " ";
    if (bar > 0 && total > 0) {
      const int filled = int(std::min(done, total) * bar / total);
      t += "[" + std::string(size_t(filled), '#') + std::string(size_t(bar - filled), '-') + "] ";
    }
    t += counts;
    for (const std::string *part : {&bytes, &rate, &eta, &retries, &state})
      if (!part->empty()) t += "  " + *part;
    return t;
  }
};

}  // namespace

// The bar line in at most `columns` columns. Left out first, in this order,
// until it fits: half the bar, the rate, the ETA, the bytes, the bar, the
// retries, the state's long words; then the id is shortened ("..."). The
// count and the state stay; a terminal narrower than them cuts the end.
std::string Progress::bar_text(size_t columns) const {
  const Snapshot &s = last_;
  const double secs = elapsed();
  BarLine b;
  if (count_ > 1) b.prefix = "[" + std::to_string(position_) + "/" + std::to_string(count_) + "] ";
  b.id = id_;
  b.done = s.done;
  b.total = s.total;
  b.counts = std::to_string(s.done) + "/" + (s.total > 0 ? std::to_string(s.total) : "?");
  b.bytes = human_bytes(double(s.bytes));
  if (secs > 0.5 && s.bytes > 0) b.rate = human_bytes(double(s.bytes) / secs) + "/s";
  if (s.total > 0 && s.done > 0 && s.done < s.total && state_ == "downloading")
    b.eta = "ETA " + human_duration(secs / double(s.done) * double(s.total - s.done));
  if (s.retries > 0) b.retries = "retries " + std::to_string(s.retries);
  b.state = state_text(state_);
  const std::function<void(BarLine &)> shorter[] = {
      [](BarLine &l) { l.bar = 10; },
      [](BarLine &l) { l.rate.clear(); },
      [](BarLine &l) { l.eta.clear(); },
      [](BarLine &l) { l.bytes.clear(); },
      [](BarLine &l) { l.bar = 0; },
      [](BarLine &l) { l.retries.clear(); },
      [this](BarLine &l) { l.state = state_; },
  };
  std::string text = b.text();
  for (const auto &step : shorter) {
    if (columns_of(text) <= columns) return text;
    step(b);
    text = b.text();
  }
  const size_t over = columns_of(text) > columns ? columns_of(text) - columns : 0;
  const size_t id_columns = columns_of(b.id);
  if (over > 0 && id_columns > 1) {
    const size_t keep = id_columns > over + 3 ? id_columns - over - 3 : 1;
    b.id = first_columns(b.id, keep) + "...";
    text = b.text();
  }
  return first_columns(text, columns);
}

std::string count_of(int64_t n, const std::string &noun, const std::string &plural) {
  return std::to_string(n) + " " + (n == 1 ? noun : plural.empty() ? noun + "s" : plural);
}

std::string human_bytes(double bytes) {
  const char *units[] = {"B", "kB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    u++;
  }
  char buf[32];
  g_snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  const int64_t t = int64_t(std::max(0.0, std::round(seconds)));
  char buf[32];
  if (t >= 3600)
    g_snprintf(buf, sizeof buf, "%" PRId64 ":%02d:%02d", t / 3600, int(t / 60 % 60), int(t % 60));
  else
    g_snprintf(buf, sizeof buf, "%d:%02d", int(t / 60), int(t % 60));
  return buf;
}

}  // namespace segdl::cli
