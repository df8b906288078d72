// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — the reference backend (library behind segdl-server and the tests).
 *
 * A libsoup 3 SoupServer that runs on its own thread with its own
 * GMainContext, serves tracks under the segdl protocol (docs/protocol.md) on
 * 127.0.0.1, records every request, and can reveal segments progressively,
 * throttle, add latency and inject faults.
 */
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace segdl::server {

using Bytes = std::vector<uint8_t>;

enum class StatusStyle {
  Bare,  // exactly what the deployed backends send: {"ready":[...],"totalSegments":N}
  Rich,  // adds state, duration, segment_duration, first_segment_duration, mime_type
};

struct Track {
  std::vector<Bytes> segments;
  std::string mime_type = "application/octet-stream";  // Content-Type of segments
  double first_segment_duration = 15.0;                // seconds (rich status only)
  double segment_duration = 30.0;                      // seconds (rich status only)
  double duration = 0;                                 // seconds, 0 = unknown
  Bytes full;  // optional whole file for /full/ID and /stream?v=ID (empty = concat of segments)
};

// A scripted fault: applies to `count` matching requests (then stops; -1 = always).
// kinds: "http500", "reset" (close mid-body), "truncate" (short body, Content-Length
// kept), "stall" (pause mid-body `arg` seconds), "notready" (404 + Retry-After: arg),
// "status500", "badjson", "statusregress" (status lists fewer segments),
// "statuserror" (rich status with state "error" and error text), "redirect" (302 to the
// same URL: a loop while the fault lasts), "redirectftp" (302 to an ftp:// URL),
// "endless" (a chunked body without length that repeats the segment, up to 64 MiB),
// "statushold" (a status answer held until the id's first segment request has
// arrived, at most ARG seconds: shows whether a client asks for a segment
// before it has the status, by the order of requests, not by their times).
// segment = -1 matches any segment (and is ignored by the status kinds); the
// body kinds with segment = -2 ("full" in a spec) match the full-track requests
// (/stream?v=ID without segment, /full/ID) instead, which other specs never touch.
// "reset" and "truncate" send half the body first; "stall" pauses after half.
// No fault applies to a suffix Range request ("bytes=-N": a tail beside a body).
struct Fault {
  std::string kind;
  std::string video_id;
  int64_t segment = -1;
  int count = 1;
  double arg = 0;
};
// Parses KIND:ID:SEGMENT:COUNT[:ARG] (SEGMENT may be '*' or 'full'). Returns false with error.
bool parse_fault(const std::string &spec, Fault &out, std::string &error);

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;             // 0 = pick a free one
  double reveal_every = 0;  // seconds; segment k ready k*S after the first request for
                            // its id (0 = all ready at once)
  int latency_ms = 0;       // added before every response
  int bandwidth_kbps = 0;   // per connection, 0 = unlimited
  StatusStyle status_style = StatusStyle::Bare;
  bool total_unknown = false;      // never send totalSegments (nor state complete)
  size_t chunk_bytes = 16 * 1024;  // body write granularity
  bool ranges = true;              // false: Range headers ignored (200, the whole body)
  // HTTPS: a PEM certificate and its key (both set = serve https only).
  std::string tls_cert_pem;
  std::string tls_key_pem;
};

struct RequestRecord {
  std::string path;      // "/status", "/stream", "/full/ID"
  std::string video_id;  // decoded v= (or the /full/ID id)
  int64_t segment = -1;  // -1 when not a segment request
  std::string range;     // Range header, empty if none
  int http_status = 0;
  int64_t start_us = 0;  // g_get_monotonic_time() when the request arrived
  int64_t end_us = 0;    // when its response finished (or the connection closed); 0 = not yet
};

class Server {
 public:
  explicit Server(Options opts = Options());
  ~Server();  // stops
  Server(const Server &) = delete;
  Server &operator=(const Server &) = delete;

  // May be called before or after start().
  void add_track(const std::string &video_id, Track track);
  // Loads DIR/ID/seg_N.EXT for every ID folder (Content-Type from EXT). False on error.
  // Also accepts segment_N.EXT; an optional DIR/ID/full.EXT becomes Track::full.
  bool load_dir(const std::string &root, std::string &error);
  // The same, with the segment durations the rich status reports for these tracks.
  bool load_dir(const std::string &root, double first_segment_duration, double segment_duration,
                std::string &error);
  void add_fault(const Fault &f);
  // Holds VIDEO_ID at its first N segments ready (status and /stream agree)
  // until called again; N < 0 releases the hold. Lets a test decide exactly
  // when a segment appears, instead of racing reveal_every's clock.
  void hold_ready(const std::string &video_id, int64_t n);
  // Ends the "stall" of VIDEO_ID's segment responses now: a body paused by
  // the fault goes on at once, one not paused yet will not pause. With a
  // long stall, a test holds a body until it has seen what it waits for.
  // `ranged_only`: only the responses to a request with a Range header (a
  // tail asked apart from the mdat's end), not the segment's body.
  void end_stalls(const std::string &video_id, int64_t segment, bool ranged_only = false);

  // Listens and starts the server thread; returns once it accepts connections.
  bool start(std::string &error);
  void stop();  // idempotent; closes connections and joins the thread

  int port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT"

  std::vector<RequestRecord> requests() const;
  // Highest number of /stream segment requests whose responses were in flight at once
  // (suffix Range requests, tails beside a body, not counted).
  int max_segment_requests_in_flight() const;
  // Waits until no response is in flight (every logged request has its end_us).
  // A client sees the end of a body slightly before the server does; tests call
  // this before reading requests(). False on timeout.
  bool wait_idle(int timeout_ms) const;
  // Waits until at least `count` requests have arrived. False on timeout.
  bool wait_requests(size_t count, int timeout_ms) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace segdl::server
