// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc's private parts, shared by gstsegdlsrc.cpp (the GObject:
 * properties, states, queries, URI handler) and the streaming thread's
 * files (gstsegdlsrc-stream.cpp: the push loop, join=bytes;
 * gstsegdlsrc-timeline.cpp and -frames.cpp: join=timeline, seeking,
 * fallback and gaps; see gstsegdlsrc-stream.h).
 */
#pragma once

#include "config.h"

#include "gstsegdlsrc.h"

#include "gstsegdljoin.h"
#include "gstsegdlsrc-http.h"
#include "gstsegdlsrc-mp4.h"
#include "segdl/codec.h"
#include "segdl/downloader.h"
#include "segdl/timeline.h"
#include "segdl/vorbis.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

GST_DEBUG_CATEGORY_EXTERN(gst_seg_dl_src_debug);

// Names private to the element (a named namespace: the header is shared).
namespace segdlsrc {

constexpr guint kDefaultMaxConcurrent = 3;
constexpr gdouble kDefaultPollInterval = 2.0;
constexpr guint kDefaultMaxRetries = 3;
constexpr gdouble kDefaultRetryBackoff = 1.0;
constexpr guint kDefaultTimeout = 300;
constexpr guint kDefaultStallTimeout = 15;
constexpr guint64 kDefaultMaxSegmentSize = 256 * 1024 * 1024;
constexpr gdouble kDefaultMaxWait = 600.0;
constexpr gboolean kDefaultMonitor = TRUE;
constexpr gboolean kDefaultSpeculativeFetch = TRUE;
constexpr gdouble kDefaultIdleTimeout = 20.0;
constexpr guint kDefaultBufferSize = 64 * 1024;
constexpr gdouble kDefaultFirstSegmentDuration = 15.0;
constexpr gdouble kDefaultSegmentDuration = 30.0;
constexpr gsize kTypefindBytes = 4096;
constexpr auto kPopWait = std::chrono::milliseconds(100);
constexpr gsize kHeaderProbeBytes = 12;  // enough for starts_container()

enum Join { JOIN_TIMELINE, JOIN_BYTES };
constexpr Join kDefaultJoin = JOIN_TIMELINE;

enum {
  PROP_0,
  PROP_BACKEND_URL,
  PROP_VIDEO_ID,
  PROP_MAX_CONCURRENT,
  PROP_POLL_INTERVAL,
  PROP_MAX_RETRIES,
  PROP_RETRY_BACKOFF,
  PROP_TIMEOUT,
  PROP_STALL_TIMEOUT,
  PROP_MAX_SEGMENT_SIZE,
  PROP_MAX_WAIT,
  PROP_MONITOR,
  PROP_IDLE_TIMEOUT,
  PROP_SPECULATIVE_FETCH,
  PROP_USER_AGENT,
  PROP_SSL_STRICT,
  PROP_BUFFER_SIZE,
  PROP_JOIN,
  PROP_FIRST_SEGMENT_DURATION,
  PROP_SEGMENT_DURATION,
  PROP_CACHE_DIR,
  PROP_CACHE_MAX_SIZE,
  PROP_CACHE_MAX_AGE,
  PROP_FALLBACK_URI,
  PROP_MISSING_SEGMENT,
  PROP_STATS,
};

// The property values: a copyable bag, copied once at start().
struct Settings {
  std::string backend_url;
  std::string video_id;
  guint max_concurrent = kDefaultMaxConcurrent;
  gdouble poll_interval = kDefaultPollInterval;
  guint max_retries = kDefaultMaxRetries;
  gdouble retry_backoff = kDefaultRetryBackoff;
  guint timeout = kDefaultTimeout;
  guint stall_timeout = kDefaultStallTimeout;
  guint64 max_segment_size = kDefaultMaxSegmentSize;
  gdouble max_wait = kDefaultMaxWait;
  gboolean monitor = kDefaultMonitor;
  gdouble idle_timeout = kDefaultIdleTimeout;
  gboolean speculative_fetch = kDefaultSpeculativeFetch;
  std::string user_agent = "segdl/" VERSION;
  gboolean ssl_strict = TRUE;
  guint buffer_size = kDefaultBufferSize;
  Join join = kDefaultJoin;
  gdouble first_segment_duration = kDefaultFirstSegmentDuration;
  gdouble segment_duration = kDefaultSegmentDuration;
  std::string cache_dir;       // empty = no disk cache
  guint64 cache_max_size = 0;  // bytes, 0 = no limit
  guint64 cache_max_age = 0;   // seconds, 0 = no limit
  std::string fallback_uri;    // empty = none
  segdl::MissingSegment missing_segment = segdl::MissingSegment::Fallback;
  GstSegDlSrcHttpSettings http;  // proxy, headers, credentials, TLS (gstsegdlsrc-http.cpp)
};

}  // namespace segdlsrc

using namespace segdlsrc;

struct GstSegDlSrcPrivate {
  // Property values; settings_lock, any thread.
  std::mutex settings_lock;
  Settings settings;

  // The engine, from start() to stop(); state_lock guards the pointer for
  // readers on other threads (stats); the streaming thread and start/stop use it.
  std::mutex state_lock;
  std::unique_ptr<segdl::Downloader> downloader;
  segdl::EngineStats last_stats;  // state_lock; kept after stop()

  // Set by start(), read by the streaming thread and by queries.
  Join join = kDefaultJoin;

  // Streaming thread only.
  guint buffer_size = kDefaultBufferSize;
  std::unique_ptr<segdl::FrameJoiner> joiner;  // timeline join
  GByteArray *probe = nullptr;  // first bytes of a segment, until starts_container() can tell
  int64_t probe_segment = -1;
  bool track_done = false;           // the engine said EOS and the joiner is drained
  GstCaps *out_caps = nullptr;       // caps set on the src pad (timeline)
  GstCaps *out_caps_like = nullptr;  // the last frame caps found of out_caps' format (a ref)
  int out_rate = 0;                  // sample rate of the frames entering the timeline, 0 if none
  // The timeline: every frame's time, trims and seeks (see segdl/timeline.h).
  segdl::Timeline timeline;
  struct Frame {
    GstBuffer *buffer;          // null for an event
    GstCaps *caps;              // caps in force for it (owned, may be null)
    GstEvent *event = nullptr;  // a GAP, in order with the buffers (owned)
  };
  std::deque<Frame> pending;  // handed to the timeline, waiting for its decision
  std::deque<Frame> ready;    // stamped, out next, in order
  uint64_t next_token = 0;
  GstCaps *in_caps = nullptr;       // caps of the frames entering the timeline
  GstCaps *in_caps_like = nullptr;  // the last caps found of in_caps' format (a ref)
  int codec = 0;                    // what the frames are (FrameCodec in the stream code)
  int aac_frame = 1024;             // AAC samples per frame at out_rate
  int64_t tl_segment = -1;          // the segment (demuxer instance) of the frames entering
  int64_t last_samples = -1;        // the previous frame's sample count
  bool self_contained = false;      // the segments are files of their own: every one must be
  bool iso_form = false;            // ... ISO BMFF ones (or fragments after an init)
  int64_t last_segment = -1;        // the last segment whose bytes (or gap) arrived
  int64_t reject_segment = -1;      // a segment refused: the rest of its bytes are dropped
  bool refetching = false;          // a segment was asked again: the item in hand is stale
  bool form_known = false;          // self_contained/iso_form were decided
  GByteArray *iso_bytes = nullptr;  // an m4a segment collected whole, read by our own code
  int64_t iso_segment = -1;         // its number
  GBytes *fmp4_init = nullptr;      // a fragmented MP4's init (segment 0), for seeks
  GstSegDlSrcMp4 mp4;               // ...read while it arrives (gstsegdlsrc-mp4.cpp)
  bool ogg_form = false;            // the segments are Ogg files (packet granules known)
  segdl::OggGranules granules;      // Ogg: the end trim from the packets' granules
  segdl::Mp3Gapless mp3_gapless;    // MP3: the LAME delay/padding that apply per segment
  uint64_t opus_preskip = 0;        // from the OpusHead in the caps
  GstTagList *tags = nullptr;       // segment 0's container tags, sent after the first buffer
  segdl::VorbisBlocks vorbis;       // Vorbis durations across joins (when the caps are Vorbis)
  bool caps_set = false;
  // Seeking (streaming thread, or do_seek() with the stream lock held).
  gdouble first_segment_duration = kDefaultFirstSegmentDuration;  // fallbacks when the
  gdouble segment_duration = kDefaultSegmentDuration;             // status does not say
  bool discont = false;                                           // mark the next buffer DISCONT
  std::atomic<int> seek_snap{0};       // the next seek's segdl::SeekSnap (event(), any thread)
  std::atomic<bool> seek_fast{false};  // the next seek did not ask for ACCURATE (event())
  bool snap_segment = false;           // a key-unit seek: the segment starts at the first frame
  // Fallback (the whole file at fallback-uri took over).
  GBytes *fallback_first = nullptr;  // its first chunk, held until the frames before it are out
  bool fallback_skipping = false;    // dropping the fallback's frames already played
  uint64_t fallback_skip = 0;        // how much to drop: samples (or ns without a rate)
  uint64_t fallback_seen = 0;        // how much was dropped so far
  uint64_t fallback_skip_bytes = 0;  // join=bytes: bytes of the fallback already pushed
  bool fallback_by_frames = false;   // skip counts frames (exact for the same encode)
  uint64_t frames_out = 0;           // frames (not headers) output since the track start
  bool frames_out_valid = true;      // false after a seek: the count no longer starts at 0
  // missing-segment=gap: the segment to leave out once the frames before it are out.
  int64_t gap_segment = -1;
  segdl::EngineError gap_error;
  std::deque<GstBuffer *> held;  // buffers read before the caps were known
  gsize held_bytes = 0;
  guint64 offset = 0;  // byte offset of the next buffer
  bool buffering = false;

  // Read by queries from any thread.
  std::atomic<int> percent{100};
  std::atomic<int64_t> duration_ns{-1};        // track length, -1 while unknown
  std::atomic<int64_t> exact_duration_ns{-1};  // counted in samples once the end was parsed
};

struct _GstSegDlSrc {
  GstPushSrc parent;
  GstSegDlSrcPrivate *priv;
};

// The `stats` structure ("segdl-stats") for the property and the messages.
GstStructure *gst_seg_dl_src_make_stats(const segdl::EngineStats &s);

// Posts the engine's queued events (WARNINGs, "segdl-segment" messages);
// streaming thread (gstsegdlsrc.cpp).
void gst_seg_dl_src_post_events(GstSegDlSrc *self, segdl::Downloader *dl);

// The streaming thread (gstsegdlsrc-stream.cpp, gstsegdlsrc-timeline.cpp).
GstFlowReturn gst_seg_dl_src_create(GstPushSrc *psrc, GstBuffer **outbuf) noexcept;
gboolean gst_seg_dl_src_do_seek(GstBaseSrc *bsrc, GstSegment *segment) noexcept;
gboolean gst_seg_dl_src_event(GstBaseSrc *bsrc, GstEvent *event) noexcept;
// The timeline join's state back to a fresh start (start()), or freed (stop()).
void gst_seg_dl_src_reset_timeline(GstSegDlSrc *self);
// The track length in ns: exact once the timeline has seen the end, else
// the status's, else estimated from totalSegments and the nominal segment
// lengths; -1 while unknown. Any thread (`dl` held alive by the caller).
int64_t gst_seg_dl_src_track_duration(GstSegDlSrc *self, segdl::Downloader *dl);
