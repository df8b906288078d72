// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — status, cache info, cache clean. */
#include "commands.h"
#include "json.h"

#include "config.h"

#include "plugin.h"
#include "progress.h"
#include "segdl/cache.h"
#include "segdl/fetcher.h"
#include "segdl/httpmodule.h"
#include "segdl/log.h"
#include "segdl/status.h"
#include "segdl/urls.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

namespace segdl::cli {

namespace {

// Collects one response on the main context.
class BodyFetch : public FetchListener {
 public:
  explicit BodyFetch(GMainLoop *loop) : loop_(loop) {}
  void on_response(const FetchResponse &resp) override { resp_ = resp; }
  void on_data(GBytes *chunk) override {
    gsize n = 0;
    const char *p = static_cast<const char *>(g_bytes_get_data(chunk, &n));
    if (body_.size() + n <= 1024 * 1024) body_.append(p, n);
  }
  void on_done(FetchError error, const std::string &message) override {
    error_ = error;
    message_ = message;
    done_ = true;
    g_main_loop_quit(loop_);
  }
  GMainLoop *loop_;
  FetchResponse resp_;
  std::string body_, message_;
  FetchError error_ = FetchError::None;
  bool done_ = false;
};

}  // namespace

std::string unknown_id_text(const std::string &id, const std::string &status_url) {
  return "unknown id: the backend has no track \"" + id + "\" (HTTP 404 for " +
         redact_url(status_url) + ")";
}

// The loop of the status request in flight (main thread), for Ctrl-C.
static GMainLoop *g_status_loop = nullptr;

void cancel_status_fetch() {
  if (g_status_loop) g_main_loop_quit(g_status_loop);
}

bool fetch_status(const Options &opts, const std::string &id, Status &status, std::string &error) {
  if (libsoup2_loaded()) {
    error = "libsoup 2 is loaded in this process; segdl needs libsoup 3";
    return false;
  }
  std::string no_plugin;
  ensure_segdlsrc(no_plugin);  // the module beside the plugin, when there is one (plugin.cpp)
  SegdlHttpFetcherNew entry = load_http_module(error);
  if (!entry) return false;
  FetcherConfig fc;
  fc.request_timeout_s = 30;
  fc.user_agent = opts.user_agent.empty() ? std::string("segdl/") + VERSION : opts.user_agent;
  char *msg = nullptr;
  std::unique_ptr<Fetcher> fetcher(entry(SEGDL_HTTP_MODULE_ABI, &fc, &msg));
  if (!fetcher) {
    error = msg ? msg : "cannot start the HTTP client";
    g_free(msg);
    return false;
  }
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  BodyFetch fetch(loop);
  FetchRequest req;
  req.url = status_url(opts.backend_url, id);
  const uint64_t fid = fetcher->start(req, &fetch);
  g_status_loop = loop;
  if (!fetch.done_) g_main_loop_run(loop);  // until done, or cancel_status_fetch()
  g_status_loop = nullptr;
  if (!fetch.done_) fetcher->cancel(fid);
  g_main_loop_unref(loop);
  if (!fetch.done_) {
    error = "interrupted";
    return false;
  }
  if (fetch.error_ != FetchError::None) {
    error = "cannot reach " + req.url + ": " + fetch.message_;
    return false;
  }
  if (fetch.resp_.http_status == 404) {
    error = unknown_id_text(id, req.url);
    return false;
  }
  if (fetch.resp_.http_status != 200) {
    error = redact_url(req.url) + " answered HTTP " + std::to_string(fetch.resp_.http_status) +
            " " + fetch.resp_.reason;
    return false;
  }
  std::string why;
  if (!parse_status(fetch.body_.data(), fetch.body_.size(), status, why)) {
    error = "the backend's status is not valid: " + why;
    return false;
  }
  return true;
}

namespace {

// "0-5, 7, 9-10"
std::string ranges(const std::vector<int64_t> &v) {
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) j++;
    out += (out.empty() ? "" : ", ") + std::to_string(v[i]);
    if (j > i) out += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return out.empty() ? "none" : out;
}

void print_json(JsonBuilder *b) {
  printf("%s\n", json_text(b).c_str());
}

void member_opt_double(JsonBuilder *b, const char *key, const std::optional<double> &v) {
  json_builder_set_member_name(b, key);
  if (v)
    json_builder_add_double_value(b, *v);
  else
    json_builder_add_null_value(b);
}

void print_status(const Options &opts, const std::string &id, const Status &s) {
  if (opts.json) {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "id");
    json_builder_add_string_value(b, id.c_str());
    json_builder_set_member_name(b, "ready");
    json_builder_begin_array(b);
    for (int64_t n : s.ready) json_builder_add_int_value(b, n);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "total_segments");
    if (s.total_segments)
      json_builder_add_int_value(b, *s.total_segments);
    else
      json_builder_add_null_value(b);
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, track_state_name(s.state));
    if (!s.error.empty()) {
      json_builder_set_member_name(b, "error");
      json_builder_add_string_value(b, s.error.c_str());
    }
    member_opt_double(b, "duration", s.duration);
    member_opt_double(b, "first_segment_duration", s.first_segment_duration);
    member_opt_double(b, "segment_duration", s.segment_duration);
    json_builder_set_member_name(b, "mime_type");  // null when the status names none
    if (s.mime_type.empty())
      json_builder_add_null_value(b);
    else
      json_builder_add_string_value(b, s.mime_type.c_str());
    json_builder_end_object(b);
    print_json(b);
    g_object_unref(b);
    return;
  }
  printf("id:       %s\n", id.c_str());
  printf("ready:    %s (%zu segments)\n", ranges(s.ready).c_str(), s.ready.size());
  printf("total:    %s\n",
         s.total_segments ? std::to_string(*s.total_segments).c_str() : "not known yet");
  printf("state:    %s%s%s\n", track_state_name(s.state), s.error.empty() ? "" : ": ",
         s.error.c_str());
  if (s.duration) printf("duration: %s\n", human_duration(*s.duration).c_str());
  if (!s.mime_type.empty()) printf("type:     %s\n", s.mime_type.c_str());
}

}  // namespace

int cmd_status(const Options &opts, const std::string &id) {
  Status s;
  std::string error;
  if (!fetch_status(opts, id, s, error)) {
    fprintf(stderr, "segdl: %s: %s\n", id.c_str(), error.c_str());
    return error == "interrupted" ? kExitInterrupted : kExitBackend;
  }
  print_status(opts, id, s);
  return kExitOk;
}

bool parse_duration(const std::string &text, int64_t &seconds) {
  char *end = nullptr;
  const double v = g_ascii_strtod(text.c_str(), &end);
  if (end == text.c_str() || !(v >= 0) || !std::isfinite(v)) return false;
  const std::string unit = end;
  double mult = 0;
  if (unit.empty() || unit == "s")
    mult = 1;
  else if (unit == "m" || unit == "min")
    mult = 60;
  else if (unit == "h")
    mult = 3600;
  else if (unit == "d")
    mult = 86400;
  else if (unit == "w")
    mult = 7 * 86400;
  if (mult == 0 || v * mult > 1e15) return false;
  seconds = int64_t(std::llround(v * mult));
  return true;
}

bool parse_size(const std::string &text, uint64_t &bytes) {
  char *end = nullptr;
  const double v = g_ascii_strtod(text.c_str(), &end);
  if (end == text.c_str() || !(v >= 0) || !std::isfinite(v)) return false;
  std::string unit = end;
  for (const char *suffix : {"iB", "B"})
    if (unit.size() > strlen(suffix) - 1 && g_str_has_suffix(unit.c_str(), suffix) &&
        unit != suffix) {
      unit.resize(unit.size() - strlen(suffix));
      break;
    }
  double mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "k" || unit == "K")
    mult = 1024.0;
  else if (unit == "M")
    mult = 1024.0 * 1024;
  else if (unit == "G")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    mult = 1024.0 * 1024 * 1024 * 1024;
  if (mult == 0 || v * mult > 1e18) return false;
  bytes = uint64_t(std::llround(v * mult));
  return true;
}

}  // namespace segdl::cli
