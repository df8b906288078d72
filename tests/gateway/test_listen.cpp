// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — GET /listen/ID, the web player's stream, without a browser:
 * its bytes are the frames `segdlsrc ! <parser>` gives (the same bytes, and
 * ffprobe reads the codec and every frame), and every form decodes, with
 * GStreamer and with ffmpeg, to the very samples of `segdlsrc ! <the same
 * parser or muxer>`; it starts while the backend is still producing
 * (segments revealed progressively); a track held whole in the cache is one
 * file with a length and Range; errors before the first byte are JSON; CORS
 * headers and the page at /.
 */
#include "../harness.h"
#include "gwtest.h"
#include "segdl/codec.h"

#include <glib/gstdio.h>

#include <cmath>
#include <functional>
#include <future>

namespace {

using gwtest::Reply;
using segdl::media::Form;

const char *const kId = "listenTrack";

// What a streaming client saw of one GET: its head, its first chunk, its body.
struct Streamed {
  int status = 0;
  std::string content_type, encoding, acao, vary;
  std::string body;
  size_t first_chunk = 0;
  std::vector<segdl::server::RequestRecord> at_first_bytes;  // upstream requests by then
  std::string error;
};

// GETs `url` reading the body as it comes; when the first bytes arrive, notes
// what the upstream server had been asked by then.
// `on_first` runs then, on this thread.
Streamed stream(const std::string &url, const segdl::server::Server &upstream,
                const std::function<void()> &on_first = {}, const std::string &accept = "") {
  Streamed s;
  SoupSession *session = soup_session_new_with_options("timeout", 30, nullptr);
  SoupMessage *msg = soup_message_new("GET", url.c_str());
  if (!accept.empty())
    soup_message_headers_replace(soup_message_get_request_headers(msg), "Accept", accept.c_str());
  GError *err = nullptr;
  GInputStream *in = soup_session_send(session, msg, nullptr, &err);
  s.status = static_cast<int>(soup_message_get_status(msg));
  SoupMessageHeaders *h = soup_message_get_response_headers(msg);
  const char *ct = soup_message_headers_get_content_type(h, nullptr);
  s.content_type = ct ? ct : "";
  s.encoding = soup_message_headers_get_encoding(h) == SOUP_ENCODING_CHUNKED ? "chunked" : "";
  const char *acao = soup_message_headers_get_one(h, "Access-Control-Allow-Origin");
  s.acao = acao ? acao : "";
  const char *vary = soup_message_headers_get_one(h, "Vary");
  s.vary = vary ? vary : "";
  char buf[65536];
  while (in) {
    const gssize n = g_input_stream_read(in, buf, sizeof buf, nullptr, &err);
    if (n <= 0) break;
    if (s.body.empty()) {
      s.first_chunk = static_cast<size_t>(n);
      s.at_first_bytes = upstream.requests();
      if (on_first) on_first();
    }
    s.body.append(buf, static_cast<size_t>(n));
  }
  if (err) s.error = err->message;
  g_clear_error(&err);
  if (in) g_object_unref(in);
  g_object_unref(msg);
  g_object_unref(session);
  return s;
}

// stream(), checked: a 200 of `type`, chunked, read to its end.
Streamed stream_ok(const std::string &url, const segdl::server::Server &upstream,
                   const std::string &type, const std::string &accept = "") {
  Streamed s = stream(url, upstream, {}, accept);
  fail_unless_equals_int(s.status, 200);
  fail_unless(s.error.empty(), "%s", s.error.c_str());
  assert_str_eq(s.content_type, type);
  assert_str_eq(s.encoding, "chunked");
  return s;
}

// The first bytes came before segment `seg` was asked for (so before it was
// revealed).
void assert_first_bytes_before(const Streamed &s, int64_t seg) {
  for (const auto &r : s.at_first_bytes)
    fail_unless(r.segment != seg, "segment %d was asked for before the first bytes", int(seg));
}

// A reference server revealing one segment every `seconds` (0: all at once).
segdl::server::Options revealing(double seconds) {
  segdl::server::Options so;
  so.reveal_every = seconds;
  return so;
}

// The files ffmpeg cut into DIR/root (cut_track()) served by the rig's server.
void serve_files(const gwtest::Rig &rig, const std::string &dir) {
  std::string error;
  fail_unless(rig.srv->load_dir(dir + "/root", error), "%s", error.c_str());
}

// The reference: segdlsrc straight on the backend, then `tail` (a parser).
segdl::test::Bytes reference(const std::string &backend, const std::string &tail, size_t &frames) {
  segdl::test::Run run;
  GstElement *p =
      segdl::test::make_pipeline(backend, kId, "", tail + " ! appsink name=sink sync=false");
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "reference: no EOS: %s", run.error ? run.error->message : "timeout");
  frames = run.frames.size();
  return run.bytes;
}

// ffprobe's codec name and packet count of a file ("aac,215").
std::string ffprobe(const std::string &path) {
  const std::string cmd =
      "ffprobe -v error -select_streams a:0 -count_packets -show_entries "
      "stream=codec_name,nb_read_packets -of csv=p=0 '" +
      path + "'";
  gchar *out = nullptr;
  gint status = 0;
  GError *err = nullptr;
  const bool ran = g_spawn_command_line_sync(cmd.c_str(), &out, nullptr, &status, &err);
  fail_unless(ran && g_spawn_check_wait_status(status, nullptr), "ffprobe failed: %s",
              err ? err->message : cmd.c_str());
  std::string s = out ? out : "";
  g_free(out);
  g_clear_error(&err);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

// Writes `bytes` to `path` (the test fails if it cannot).
void write_file(const std::string &path, const std::string &bytes) {
  fail_unless(g_file_set_contents(path.c_str(), bytes.data(), gssize(bytes.size()), nullptr),
              "cannot write %s", path.c_str());
}

// Interleaved 32-bit float PCM, with its rate and channels.
struct Pcm {
  std::string data;
  int rate = 0, channels = 0;
  double seconds() const {
    return rate > 0 && channels > 0 ? double(data.size()) / (4.0 * rate * channels) : 0;
  }
};

// GStreamer's decode of the file at `path` (decodebin: the demuxer, parser
// and decoder the registry ranks first).
Pcm gst_decode(const std::string &path) {
  const std::string desc = "filesrc location=\"" + path +
                           "\" ! decodebin ! audioconvert ! "
                           "audio/x-raw,format=F32LE,layout=interleaved ! "
                           "appsink name=sink sync=false";
  GError *err = nullptr;
  GstElement *p = gst_parse_launch(desc.c_str(), &err);
  fail_unless(p != nullptr && !err, "%s: %s", desc.c_str(), err ? err->message : "");
  segdl::test::Run run;
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "decoding %s: %s", path.c_str(), run.error ? run.error->message : "no EOS");
  fail_unless(!run.caps.empty(), "decoding %s: no caps", path.c_str());
  Pcm pcm;
  pcm.data.assign(run.bytes.begin(), run.bytes.end());
  const GstStructure *st = gst_caps_get_structure(run.caps.back(), 0);
  gst_structure_get_int(st, "rate", &pcm.rate);
  gst_structure_get_int(st, "channels", &pcm.channels);
  return pcm;
}

// True in the sanitizer pass (tests/meson.build sets SEGDL_TEST_SANITIZED=1
// in a build with AddressSanitizer). ffmpeg is not instrumented and decodes
// there the very bytes the normal pass had it decode, so its reference
// decodes prove nothing new and are skipped in that pass (about 0.3 s of CPU
// each); the GStreamer decodes, in the sanitized process, still run.
bool sanitizer_pass() {
  const char *v = g_getenv("SEGDL_TEST_SANITIZED");
  return v && g_str_equal(v, "1");
}

// ffmpeg's decode of the file at `path`, in the same layout (its own
// demuxers and decoders).
std::string ffmpeg_decode(const std::string &path) {
  const std::string out = path + ".f32";
  const std::string cmd = "ffmpeg -nostdin -v error -y -i '" + path + "' -f f32le '" + out + "'";
  fail_unless_equals_int(system(cmd.c_str()), 0);
  gchar *data = nullptr;
  gsize size = 0;
  fail_unless(g_file_get_contents(out.c_str(), &data, &size, nullptr), "no %s", out.c_str());
  std::string pcm(data, size);
  g_free(data);
  return pcm;
}

// Where two decodes first differ, for a failure's text ("at 1.234 s").
std::string first_difference(const std::string &a, const std::string &b, const Pcm &format) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) i++;
  const double frame = 4.0 * std::max(1, format.channels) * std::max(1, format.rate);
  return "at " + std::to_string(double(i) / frame) + " s (" + std::to_string(a.size()) + " vs " +
         std::to_string(b.size()) + " bytes)";
}

// /listen's bytes and those of `segdlsrc ! <the same tail>` (`ref`) decode
// to the very same samples, with GStreamer and with ffmpeg, about `seconds`
// long. Exact: each decoder is deterministic and both files carry the same
// packets with the same trims, so a frame lost, repeated, reordered or
// trimmed differently shows. (`ext` names the form for ffmpeg's probe.)
// ffmpeg's part is skipped in the sanitizer pass (sanitizer_pass()).
void check_decodes_same(const std::string &dir, const std::string &listened,
                        const segdl::test::Bytes &ref, const std::string &ext, double seconds) {
  const std::string a = dir + "/listen-decode." + ext, b = dir + "/reference-decode." + ext;
  write_file(a, listened);
  write_file(b, std::string(ref.begin(), ref.end()));
  const Pcm ga = gst_decode(a), gb = gst_decode(b);
  fail_unless(ga.rate == gb.rate && ga.channels == gb.channels, "formats differ");
  fail_unless(std::fabs(ga.seconds() - seconds) < 0.2,
              "GStreamer decodes %.3f s of /listen, not %.3f", ga.seconds(), seconds);
  fail_unless(ga.data == gb.data, "GStreamer: /listen and segdlsrc's %s decode differently %s",
              ext.c_str(), first_difference(ga.data, gb.data, ga).c_str());
  if (sanitizer_pass()) return;
  const std::string fa = ffmpeg_decode(a), fb = ffmpeg_decode(b);
  const double fs = double(fa.size()) / (4.0 * ga.rate * ga.channels);
  fail_unless(std::fabs(fs - seconds) < 0.2, "ffmpeg decodes %.3f s of /listen, not %.3f", fs,
              seconds);
  fail_unless(fa == fb, "ffmpeg: /listen and segdlsrc's %s decode differently %s", ext.c_str(),
              first_difference(fa, fb, ga).c_str());
}

using Headers = std::vector<std::pair<std::string, std::string>>;

// A complete track on /listen: one file of `size` bytes with its length (the
// body returned), and a Range in the middle of it.
std::string check_whole(const std::string &url, const std::string &type, const Headers &h = {}) {
  Reply all = gwtest::get(url, h);
  fail_unless_equals_int(all.status, 200);
  assert_str_eq(all.h("content-type"), type);
  assert_str_eq(all.h("content-length"), std::to_string(all.body.size()));
  assert_str_eq(all.h("accept-ranges"), "bytes");
  assert_str_eq(all.h("vary"), "Accept");
  fail_unless(all.body.size() > 8000, "%zu bytes", all.body.size());
  const size_t from = all.body.size() / 2, to = from + 3999;
  Headers range = h;
  range.emplace_back("Range", "bytes=" + std::to_string(from) + "-" + std::to_string(to));
  Reply part = gwtest::get(url, range);
  fail_unless_equals_int(part.status, 206);
  assert_str_eq(part.h("content-range"), "bytes " + std::to_string(from) + "-" +
                                             std::to_string(to) + "/" +
                                             std::to_string(all.body.size()));
  fail_unless(part.body == all.body.substr(from, 4000), "the range differs");
  return all.body;
}

// Streams /listen/ID of a `form` track revealed one segment a second, and
// checks it against `segdlsrc ! tail`: the same bytes, the same frames for
// ffprobe, the same samples decoded (`ext` names the form for ffmpeg); with
// `again`, the complete track is then one file of the same bytes
// (check_whole).
void check_form(Form form, const std::string &tail, const std::string &type,
                const std::string &codec, const std::string &ext, bool again = false) {
  gwtest::Rig rig(kId, segdl::test::make_track(form, 10.5), revealing(1.0));
  const int64_t last = static_cast<int64_t>(rig.track.segments.size()) - 1;
  fail_unless(last >= 2);

  Streamed s = stream_ok(rig.gw->base_url() + "/listen/" + kId, *rig.srv, type);
  assert_str_eq(s.acao, "*");
  assert_str_eq(s.vary, "Accept");
  assert_first_bytes_before(s, last);

  size_t frames = 0;
  const segdl::test::Bytes ref = reference(rig.srv->base_url(), tail, frames);
  fail_unless(s.body == std::string(ref.begin(), ref.end()), "/listen gave %zu bytes, %zu expected",
              s.body.size(), ref.size());
  const std::string file = rig.cache.path() + "/listen.out";
  write_file(file, s.body);
  assert_str_eq(ffprobe(file), codec + "," + std::to_string(frames));
  check_decodes_same(rig.cache.path(), s.body, ref, ext, rig.track.duration);
  fail_unless(rig.gw->wait_idle(gwtest::kWaitMs));
  if (!again) return;
  const std::string whole = check_whole(rig.gw->base_url() + "/listen/" + kId, type);
  fail_unless(whole == s.body, "the whole track (%zu bytes) is not what was streamed (%zu)",
              whole.size(), s.body.size());
  fail_unless_equals_int(rig.gw->counters().upstream_full, 0);
}

// The packets `demux` (a GStreamer description, from filesrc) reads in `path`.
std::vector<segdl::test::Bytes> demuxed(const std::string &path, const std::string &demux) {
  segdl::test::Run run;
  const std::string desc =
      "filesrc location=\"" + path + "\" ! " + demux + " ! appsink name=sink sync=false";
  GError *err = nullptr;
  GstElement *p = gst_parse_launch(desc.c_str(), &err);
  fail_unless(p != nullptr, "%s: %s", desc.c_str(), err ? err->message : "");
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "%s: no EOS", desc.c_str());
  std::vector<segdl::test::Bytes> out;
  for (size_t i = 0; i < run.frames.size(); i++)
    if (!run.header[i]) out.push_back(run.frames[i]);
  return out;
}

// Once the track is whole in the cache, /stream?v=ID and /listen/ID are one
// file joined in the segments' container (no upstream full-track request):
// its length, Range, an ETag, and the packets `ref` (`demux` reads them).
void check_joined(const segdl::gateway::Gateway &gw, const std::string &dir,
                  const std::string &demux, const std::string &type, const std::string &codec,
                  const std::vector<segdl::test::Bytes> &ref) {
  std::string first;
  for (const std::string &path : {"/stream?v=" + std::string(kId), "/listen/" + std::string(kId)}) {
    const std::string url = gw.base_url() + path;
    Reply all = gwtest::get(url);
    fail_unless_equals_int(all.status, 200);
    assert_str_eq(all.h("content-type"), type);
    assert_str_eq(all.h("content-length"), std::to_string(all.body.size()));
    assert_str_eq(all.h("accept-ranges"), "bytes");
    fail_unless(all.h("etag").size() == 34, "etag '%s'", all.h("etag").c_str());
    if (first.empty()) first = all.body;
    fail_unless(all.body == first, "%s differs from /stream", path.c_str());
    Reply part = gwtest::get(url, {{"Range", "bytes=100-4099"}});
    fail_unless_equals_int(part.status, 206);
    assert_str_eq(part.h("content-range"), "bytes 100-4099/" + std::to_string(all.body.size()));
    fail_unless(part.body == all.body.substr(100, 4000));
  }
  const std::string file = dir + "/joined.out";
  write_file(file, first);
  fail_unless(demuxed(file, demux) == ref, "the joined file's packets differ");
  const std::string probe = ffprobe(file);
  fail_unless(g_str_has_prefix(probe.c_str(), (codec + ",").c_str()), "ffprobe: %s", probe.c_str());
  fail_unless_equals_int(gw.counters().upstream_full, 0);
}

// ffmpeg cuts a 9 s sine encoded with `codec` into 3 s files of `format`
// (DIR/root/kId/seg_N.EXT); returns how many.
int cut_track(const std::string &dir, const std::string &codec, const std::string &format,
              const std::string &ext) {
  const std::string folder = dir + "/root/" + kId;
  fail_unless_equals_int(g_mkdir_with_parents(folder.c_str(), 0755), 0);
  const std::string cmd =
      "ffmpeg -nostdin -v error -f lavfi -i sine=frequency=440:duration=9 -c:a " + codec +
      " -f segment -segment_time 3 -segment_format " + format + " '" + folder + "/seg_%d." + ext +
      "'";
  fail_unless_equals_int(system(cmd.c_str()), 0);
  int n = 0;
  while (
      g_file_test((folder + "/seg_" + std::to_string(n) + "." + ext).c_str(), G_FILE_TEST_EXISTS))
    n++;
  fail_unless(n >= 3, "%d segments", n);
  return n;
}

// The packets (codec headers left out) `segdlsrc ! parse` gives.
std::vector<segdl::test::Bytes> packets(const std::string &backend, const std::string &parse) {
  segdl::test::Run run;
  GstElement *p =
      segdl::test::make_pipeline(backend, kId, "", parse + " ! appsink name=sink sync=false");
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "segdlsrc ! %s: %s", parse.c_str(),
              run.error ? run.error->message : "no EOS");
  std::vector<segdl::test::Bytes> out;
  for (size_t i = 0; i < run.frames.size(); i++)
    if (!run.header[i]) out.push_back(run.frames[i]);
  return out;
}

// A self-contained form: ffmpeg cuts a 9 s sine encoded with `codec` into
// 3 s files of `segments`, revealed one a second.
struct Container {
  std::string codec;     // ffmpeg's encoder: libopus, libvorbis
  std::string segments;  // the segments' container and extension: webm, ogg
  std::string parse;     // after segdlsrc: the packets it gives
  std::string demux;     // reads the packets in /listen's bytes
  std::string type;      // /listen's Content-Type
  std::string mux;       // /listen's tail: `segdlsrc ! mux` is the reference file
  std::string ext;       // /listen's form, for ffmpeg: webm, ogg
  std::string accept;    // the request's Accept; empty: none (the codec's default form)
};

// /listen's container holds the very packets segdlsrc gives, ffprobe reads
// the codec, it decodes to the samples of `segdlsrc ! mux`; once complete
// (default form only), the joined file (check_joined). Returns the bytes
// streamed.
std::string check_container(const Container &c) {
  gwtest::TempDir dir;
  cut_track(dir.path(), c.codec, c.segments, c.segments);
  gwtest::Rig rig(kId, {}, revealing(1.0));
  serve_files(rig, dir.path());
  Streamed s = stream_ok(rig.gw->base_url() + "/listen/" + kId, *rig.srv, c.type, c.accept);
  assert_first_bytes_before(s, 2);
  const std::string file = dir.path() + "/listen.out";
  write_file(file, s.body);
  const std::vector<segdl::test::Bytes> ref = packets(rig.srv->base_url(), c.parse);
  fail_unless(ref.size() > 100, "%zu frames", ref.size());
  const std::vector<segdl::test::Bytes> got = demuxed(file, c.demux);
  fail_unless_equals_int(got.size(), ref.size());
  fail_unless(got == ref, "the packets differ");
  const std::string codec = c.codec == "libopus" ? "opus" : "vorbis";
  const std::string probe = ffprobe(file);
  fail_unless(g_str_has_prefix(probe.c_str(), (codec + ",").c_str()), "ffprobe: %s", probe.c_str());
  size_t frames = 0;
  check_decodes_same(dir.path(), s.body, reference(rig.srv->base_url(), c.mux, frames), c.ext, 9.0);
  fail_unless(rig.gw->wait_idle(gwtest::kWaitMs));
  if (c.accept.empty()) check_joined(*rig.gw, dir.path(), c.demux, c.type, codec, ref);
  return s.body;
}

uint32_t le32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// The CRC of an Ogg page (RFC 3533: polynomial 0x04c11db7, initial value
// 0, no reflection), its CRC field read as zeros.
uint32_t ogg_crc(const uint8_t *page, size_t size) {
  uint32_t crc = 0;
  for (size_t i = 0; i < size; i++) {
    crc ^= uint32_t(i >= 22 && i < 26 ? 0 : page[i]) << 24;
    for (int k = 0; k < 8; k++) crc = crc & 0x80000000u ? (crc << 1) ^ 0x04c11db7u : crc << 1;
  }
  return crc;
}

struct OggPage {
  uint8_t flags = 0;
  int64_t granule = -1;
  std::vector<std::string> ended;  // the packets that end on this page
};

// The pages of an Ogg stream, each checked whole: the capture pattern and
// version 0, its CRC, one serial number, page numbers 0, 1, 2... in order,
// beginning-of-stream on the first page only, end-of-stream on the last
// only, "continued" exactly when a packet goes on from the page before, no
// byte after the last page.
std::vector<OggPage> ogg_pages(const std::string &bytes) {
  std::vector<OggPage> pages;
  std::string packet;  // the one going on
  bool open = false;   // a packet goes on to the next page
  uint32_t serial = 0;
  for (size_t at = 0; at < bytes.size();) {
    const auto *p = reinterpret_cast<const uint8_t *>(bytes.data()) + at;
    const size_t left = bytes.size() - at, n = pages.size();
    fail_unless(left >= 27 && memcmp(p, "OggS", 4) == 0 && p[4] == 0, "no Ogg page at byte %zu",
                at);
    const size_t lacing = p[26];
    size_t size = 27 + lacing;
    fail_unless(left >= size, "page %zu is cut short", n);
    for (size_t i = 0; i < lacing; i++) size += p[27 + i];
    fail_unless(left >= size, "page %zu is cut short", n);
    fail_unless(ogg_crc(p, size) == le32(p + 22), "page %zu: wrong CRC", n);
    if (n == 0) serial = le32(p + 14);
    fail_unless(le32(p + 14) == serial, "page %zu: another serial number", n);
    fail_unless(le32(p + 18) == n, "page %zu is numbered %u", n, le32(p + 18));
    OggPage page;
    page.flags = p[5];
    page.granule = int64_t(uint64_t(le32(p + 6)) | uint64_t(le32(p + 10)) << 32);
    fail_unless(bool(page.flags & 0x02) == (n == 0), "page %zu: beginning-of-stream flag", n);
    fail_unless(bool(page.flags & 0x01) == open, "page %zu: continued flag", n);
    const uint8_t *data = p + 27 + lacing;
    for (size_t i = 0; i < lacing; i++) {
      packet.append(reinterpret_cast<const char *>(data), p[27 + i]);
      data += p[27 + i];
      open = p[27 + i] == 255;
      if (!open) page.ended.push_back(std::move(packet));
      if (!open) packet.clear();
    }
    pages.push_back(std::move(page));
    at += size;
  }
  fail_unless(pages.size() > 2 && !open, "%zu pages, the last packet unfinished", pages.size());
  for (size_t i = 0; i < pages.size(); i++)
    fail_unless(bool(pages[i].flags & 0x04) == (i + 1 == pages.size()),
                "page %zu: end-of-stream flag", i);
  return pages;
}

// Ogg Opus (RFC 7845): the OpusHead and OpusTags pages (granule 0), then
// continuous granule positions: each page's is the previous one's plus the
// samples (48 kHz, from each packet's TOC) of the packets that end on it; a
// page on which none ends has -1. Only the last page's may be less, by the
// end trim (less than that page's samples).
void check_opus_granules(const std::vector<OggPage> &pages) {
  fail_unless(pages[0].ended.size() == 1 &&
              g_str_has_prefix(pages[0].ended[0].c_str(), "OpusHead"));
  fail_unless(pages[1].ended.size() == 1 &&
              g_str_has_prefix(pages[1].ended[0].c_str(), "OpusTags"));
  fail_unless(pages[0].granule == 0 && pages[1].granule == 0, "header granules");
  int64_t total = 0;
  for (size_t i = 2; i < pages.size(); i++) {
    int64_t in_page = 0;
    for (const std::string &pkt : pages[i].ended) {
      const int n =
          segdl::opus_packet_samples(reinterpret_cast<const uint8_t *>(pkt.data()), pkt.size());
      fail_unless(n > 0, "page %zu: a packet that is not Opus", i);
      in_page += n;
    }
    total += in_page;
    const int64_t g = pages[i].granule;
    if (pages[i].ended.empty())
      fail_unless(g == -1, "page %zu ends no packet but has granule %" G_GINT64_FORMAT, i, g);
    else if (i + 1 < pages.size())
      fail_unless(g == total,
                  "page %zu: granule %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                  " samples up to its end",
                  i, g, total);
    else
      fail_unless(g <= total && g > total - in_page,
                  "the last page: granule %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                  " samples up to its end",
                  g, total);
  }
}

// Every segment of kId fetched through the gateway into its cache.
void cache_all(const segdl::gateway::Gateway &gw, int segments) {
  const std::string base = gw.base_url() + "/stream?v=" + kId;
  fail_unless_equals_int(gwtest::get(gw.base_url() + "/status?v=" + kId).status, 200);
  for (int n = 0; n < segments; n++)
    fail_unless_equals_int(gwtest::get(base + "&segment=" + std::to_string(n)).status, 200);
  fail_unless(gw.wait_idle(gwtest::kWaitMs));
}

}  // namespace

GST_START_TEST(test_listen_adts) {
  check_form(Form::Adts, "aacparse ! audio/mpeg,stream-format=adts", "audio/aac", "aac", "aac");
}
GST_END_TEST;

GST_START_TEST(test_listen_mp3) {
  check_form(Form::Mp3, "mpegaudioparse", "audio/mpeg", "mp3", "mp3");
}
GST_END_TEST;

// MPEG-TS segments (AAC inside) come out as ADTS: a form browsers play.
// Once complete, the ADTS track is one file of the bytes streamed before.
GST_START_TEST(test_listen_ts) {
  check_form(Form::MpegTs, "aacparse ! audio/mpeg,stream-format=adts", "audio/aac", "aac", "aac",
             true);
}
GST_END_TEST;

// Accept: AAC as fragmented MP4 while produced, as a joined m4a once
// complete (the same packets as segdlsrc's); a 406 JSON error when nothing
// acceptable exists, before and after; Vary: Accept on every answer.
GST_START_TEST(test_listen_accept_aac) {
  gwtest::Rig rig(kId, segdl::test::make_track(Form::Adts, 7.5), revealing(1.0));
  const std::string url = rig.gw->base_url() + "/listen/" + kId;
  for (const char *none : {"audio/ogg, , audio/webm", "audio/aac;q=0, audio/mp4;q=0, audio/*"}) {
    Reply r = gwtest::get(url, {{"Accept", none}});  // told once segment 0 says AAC
    gwtest::assert_json_error(r, 406, "not_acceptable");
    assert_str_eq(r.h("vary"), "Accept");
    fail_unless(r.body.find("audio/aac, audio/mp4") != std::string::npos, "%s", r.body.c_str());
  }
  Reply html = gwtest::get(url, {{"Accept", "text/html"}});  // at once, no pipeline
  gwtest::assert_json_error(html, 406, "not_acceptable");

  Streamed s = stream_ok(url, *rig.srv, "audio/mp4", "audio/aac;q=0.5, audio/mp4");
  assert_str_eq(s.vary, "Accept");
  const std::string raw = "aacparse ! audio/mpeg,stream-format=raw";
  const std::vector<segdl::test::Bytes> ref = packets(rig.srv->base_url(), raw);
  fail_unless(ref.size() > 200, "%zu frames", ref.size());
  const std::string file = rig.cache.path() + "/fmp4.out";
  write_file(file, s.body);
  fail_unless(demuxed(file, "qtdemux") == ref, "the fragmented MP4's packets differ");
  assert_str_eq(ffprobe(file), "aac," + std::to_string(ref.size()));
  size_t frames = 0;
  const segdl::test::Bytes fmp4 = reference(
      rig.srv->base_url(), raw + " ! mp4mux fragment-duration=1000 streamable=true", frames);
  check_decodes_same(rig.cache.path(), s.body, fmp4, "mp4", rig.track.duration);
  fail_unless(rig.gw->wait_idle(gwtest::kWaitMs));

  // Complete: */* is the ADTS bytes, audio/mp4 the m4a joined from them.
  check_whole(url, "audio/aac", {{"Accept", "*/*"}});
  const std::string m4a = check_whole(url, "audio/mp4", {{"Accept", "audio/aac;q=0.1, audio/*"}});
  write_file(file, m4a);
  fail_unless(demuxed(file, "qtdemux") == ref, "the joined m4a's packets differ");
  Reply no = gwtest::get(url, {{"Accept", "audio/webm"}});
  gwtest::assert_json_error(no, 406, "not_acceptable");
  assert_str_eq(no.h("vary"), "Accept");
  fail_unless_equals_int(rig.gw->counters().upstream_full, 0);
}
GST_END_TEST;

// Opus in WebM segments, and Vorbis in Ogg segments.
GST_START_TEST(test_listen_opus_webm) {
  check_container({"libopus", "webm", "opusparse", "matroskademux", "audio/webm",
                   "opusparse ! webmmux streamable=true", "webm", ""});
}
GST_END_TEST;

// Opus in WebM segments revealed one a second, asked as Ogg (Accept:
// audio/ogg, as an app choosing the form does): it streams while the track
// is produced, every byte is whole Ogg pages with continuous granule
// positions, the packets are segdlsrc's and it decodes to the samples of
// `segdlsrc ! opusparse ! oggmux`.
GST_START_TEST(test_listen_opus_ogg) {
  const std::string body = check_container({"libopus", "webm", "opusparse", "oggdemux", "audio/ogg",
                                            "opusparse ! oggmux", "ogg", "audio/ogg"});
  check_opus_granules(ogg_pages(body));
}
GST_END_TEST;

GST_START_TEST(test_listen_vorbis_ogg) {
  check_container({"libvorbis", "ogg", "identity", "oggdemux", "audio/ogg",
                   "capsfilter caps=audio/x-vorbis ! oggmux", "ogg", ""});
}
GST_END_TEST;

// AAC in m4a segments (ffmpeg cuts them), fetched into the cache: the joined
// file is one m4a holding the packets segdlsrc gives.
GST_START_TEST(test_joined_m4a) {
  gwtest::TempDir dir;
  const int segments = cut_track(dir.path(), "aac", "mp4", "m4a");
  gwtest::Rig rig(kId, {});
  serve_files(rig, dir.path());
  cache_all(*rig.gw, segments);
  const std::vector<segdl::test::Bytes> ref = packets(rig.srv->base_url(), "identity");
  fail_unless(ref.size() > 100, "%zu frames", ref.size());
  check_joined(*rig.gw, dir.path(), "qtdemux", "audio/mp4", "aac", ref);
}
GST_END_TEST;

// FLAC segments (files of their own, cut by ffmpeg) revealed one a second:
// /listen streams the FLAC stream `segdlsrc ! flacparse` gives, the very
// bytes, before the last segment is there; ffprobe counts its frames. Once
// complete it is one FLAC file of those bytes with its length and Range.
GST_START_TEST(test_listen_flac) {
  gwtest::TempDir dir;
  const int segments = cut_track(dir.path(), "flac", "flac", "flac");
  gwtest::Rig rig(kId, {}, revealing(1.0));
  serve_files(rig, dir.path());
  const std::string url = rig.gw->base_url() + "/listen/" + kId;
  Streamed s = stream_ok(url, *rig.srv, "audio/flac");
  assert_first_bytes_before(s, segments - 1);
  segdl::test::Run run;
  GstElement *p = segdl::test::make_pipeline(rig.srv->base_url(), kId, "",
                                             "flacparse ! appsink name=sink sync=false");
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos);
  fail_unless(s.body == std::string(run.bytes.begin(), run.bytes.end()),
              "/listen gave %zu bytes, %zu expected", s.body.size(), run.bytes.size());
  size_t frames = 0;
  for (size_t i = 0; i < run.frames.size(); i++) frames += run.header[i] ? 0 : 1;
  fail_unless(frames > 50, "%zu frames", frames);
  const std::string file = dir.path() + "/listen.flac";
  write_file(file, s.body);
  assert_str_eq(ffprobe(file), "flac," + std::to_string(frames));
  check_decodes_same(dir.path(), s.body, run.bytes, "flac", 9.0);
  fail_unless(rig.gw->wait_idle(gwtest::kWaitMs));
  const std::string whole = check_whole(url, "audio/flac");
  fail_unless(whole == s.body, "the whole track (%zu bytes) is not what was streamed (%zu)",
              whole.size(), s.body.size());
  fail_unless_equals_int(rig.gw->counters().upstream_full, 0);
}
GST_END_TEST;

// A complete track whose join into the form its segments' type promises
// fails: m4a segments holding MP3 are offered as audio/mp4 (or ADTS), and
// aacparse cannot take MP3. /listen then streams the form of the codec
// segdlsrc finds (MP3, the very frames `segdlsrc ! mpegaudioparse` gives),
// never the backend's whole file, whose form may be another; a client that
// accepts only audio/mp4 gets a 406 before any byte.
GST_START_TEST(test_listen_join_fails) {
  gwtest::TempDir dir;
  const int segments = cut_track(dir.path(), "libmp3lame", "mp4", "m4a");
  gwtest::Rig rig(kId, {});
  serve_files(rig, dir.path());
  cache_all(*rig.gw, segments);
  const std::string url = rig.gw->base_url() + "/listen/" + kId;
  Streamed s = stream_ok(url, *rig.srv, "audio/mpeg");
  size_t frames = 0;
  const segdl::test::Bytes ref = reference(rig.srv->base_url(), "mpegaudioparse", frames);
  fail_unless(frames > 100, "%zu frames", frames);
  fail_unless(s.body == std::string(ref.begin(), ref.end()), "/listen gave %zu bytes, %zu expected",
              s.body.size(), ref.size());
  Reply no = gwtest::get(url, {{"Accept", "audio/mp4"}});
  gwtest::assert_json_error(no, 406, "not_acceptable");
  fail_unless_equals_int(rig.gw->counters().upstream_full, 0);
}
GST_END_TEST;

namespace {

// An MP3 track cut the way backends cut one: a chirp (no two frames alike)
// encoded once by libmp3lame (CBR, 64 kbit/s, 44.1 kHz mono), cut by
// `ffmpeg -f segment` at 1.5 and 4.5 s of 7.5 s (DIR/root/kId/seg_N.mp3):
// every segment is a whole MP3 file of its own, an ID3v2 tag and an Info
// frame (LAME tag: the segment's frame count, delay, padding) before its
// audio. The segments, in order.
std::vector<std::string> cut_mp3(const std::string &dir) {
  const std::string folder = dir + "/root/" + kId;
  fail_unless_equals_int(g_mkdir_with_parents(folder.c_str(), 0755), 0);
  const std::string cmd =
      "ffmpeg -nostdin -v error -f lavfi -i "
      "'aevalsrc=0.4*sin(2*PI*(220+60*t)*t)+0.1*sin(2*PI*1250*t):s=44100:d=7.5' -ac 1 "
      "-c:a libmp3lame -b:a 64k -f segment -segment_times 1.5,4.5 -segment_format mp3 '" +
      folder + "/seg_%d.mp3'";
  fail_unless_equals_int(system(cmd.c_str()), 0);
  std::vector<std::string> segments;
  for (int n = 0;; n++) {
    gchar *data = nullptr;
    gsize size = 0;
    const std::string path = folder + "/seg_" + std::to_string(n) + ".mp3";
    if (!g_file_get_contents(path.c_str(), &data, &size, nullptr)) break;
    segments.emplace_back(data, size);
    g_free(data);
  }
  fail_unless_equals_int(segments.size(), 3);
  return segments;
}

// What an MP3 byte stream holds, walked from its first byte: ID3v2 tags,
// information frames (Xing/Info/VBRI) and audio frames, each where it
// starts; anything else fails the test.
struct Mp3Walk {
  std::vector<size_t> tags;                                    // ID3v2 tags
  std::vector<std::pair<size_t, segdl::MpegInfoFrame>> infos;  // information frames
  std::vector<std::string> audio;                              // the audio frames
  segdl::MpegAudioHeader first;                                // the first audio frame's
};

Mp3Walk walk_mp3(const std::string &bytes, const char *what) {
  Mp3Walk w;
  const auto *p = reinterpret_cast<const uint8_t *>(bytes.data());
  for (size_t at = 0; at < bytes.size();) {
    const size_t tag = segdl::id3v2_size(p + at, bytes.size() - at);
    if (tag > 0) {
      w.tags.push_back(at);
      at += tag;
      continue;
    }
    segdl::MpegAudioHeader h;
    fail_unless(segdl::parse_mpeg_audio_header(p + at, bytes.size() - at, h) &&
                    h.frame_size <= bytes.size() - at,
                "%s: no whole MPEG audio frame at byte %zu of %zu", what, at, bytes.size());
    segdl::MpegInfoFrame info;
    fail_unless(segdl::parse_mpeg_info_frame(p + at, h.frame_size, h, info));
    if (info.kind != segdl::MpegInfoFrame::Kind::None) {
      w.infos.emplace_back(at, info);
    } else {
      if (w.audio.empty()) w.first = h;
      w.audio.push_back(bytes.substr(at, h.frame_size));
    }
    at += h.frame_size;
  }
  return w;
}

// A body of the joined track: no ID3v2 tag or information frame but at its
// start (one of each at most), and then its audio frames are every audio
// frame of the segments, in order; an information frame says how many.
// Returns the walk.
Mp3Walk check_mp3_body(const std::string &body, const std::vector<std::string> &segments,
                       const char *what) {
  const Mp3Walk w = walk_mp3(body, what);
  std::vector<std::string> want;
  for (const std::string &s : segments) {
    const Mp3Walk sw = walk_mp3(s, "a segment");
    fail_unless(sw.tags.size() == 1 && sw.infos.size() == 1, "not a segment cut by ffmpeg");
    want.insert(want.end(), sw.audio.begin(), sw.audio.end());
  }
  fail_unless(w.tags.size() <= 1 && (w.tags.empty() || w.tags[0] == 0),
              "%s: %zu ID3v2 tags, the first at byte %zu", what, w.tags.size(),
              w.tags.empty() ? 0 : w.tags[0]);
  const size_t tag =
      w.tags.empty()
          ? 0
          : segdl::id3v2_size(reinterpret_cast<const uint8_t *>(body.data()), body.size());
  fail_unless(w.infos.size() <= 1 && (w.infos.empty() || w.infos[0].first == tag),
              "%s: %zu information frames, the first at byte %zu", what, w.infos.size(),
              w.infos.empty() ? 0 : w.infos[0].first);
  if (!w.infos.empty() && w.infos[0].second.has_frames)
    fail_unless_equals_int(w.infos[0].second.frames, w.audio.size());
  fail_unless(w.audio.size() == want.size(), "%s: %zu audio frames, the segments hold %zu", what,
              w.audio.size(), want.size());
  for (size_t i = 0; i < want.size(); i++)
    fail_unless(w.audio[i] == want[i], "%s: audio frame %zu differs", what, i);
  return w;
}

// ffprobe's duration of the file at `path`, in seconds.
double ffprobe_seconds(const std::string &path) {
  const std::string cmd =
      "ffprobe -v error -show_entries format=duration -of csv=p=0 '" + path + "'";
  gchar *out = nullptr;
  gint status = 0;
  const bool ran = g_spawn_command_line_sync(cmd.c_str(), &out, nullptr, &status, nullptr);
  fail_unless(ran && g_spawn_check_wait_status(status, nullptr), "%s failed", cmd.c_str());
  const double d = out ? g_ascii_strtod(out, nullptr) : 0;
  g_free(out);
  return d;
}

}  // namespace

// An MP3 track as backends cut it (cut_mp3(): every segment a whole file,
// ID3v2 tag and Info frame): /listen/ID streams it while it is revealed, and
// once it is whole in the cache /stream?v=ID and /listen/ID are one MP3 file
// (length, Range): never the segment files laid end to end, whose ID3 tags
// and Info frames would sit inside the audio and whose first Info frame
// would tell players the track is segment 0 (1.5 s). Each body holds one ID3
// tag and one information frame at most, at its start, then exactly the
// segments' audio frames in order; ffprobe reads the track's length in it;
// GStreamer decodes it to the samples of `segdlsrc ! decodebin` (the
// element's timeline, which applies the LAME delay and padding).
GST_START_TEST(test_listen_mp3_cut_by_ffmpeg) {
  gwtest::TempDir dir;
  const std::vector<std::string> segments = cut_mp3(dir.path());
  gwtest::Rig rig(kId, {}, revealing(1.0));
  serve_files(rig, dir.path());
  const std::string listen = rig.gw->base_url() + "/listen/" + kId;
  Streamed s = stream_ok(listen, *rig.srv, "audio/mpeg");
  assert_first_bytes_before(s, 2);
  check_mp3_body(s.body, segments, "/listen while produced");
  fail_unless(rig.gw->wait_idle(gwtest::kWaitMs));

  // segdlsrc's samples: the whole encode with its delay and padding trimmed.
  segdl::test::Run run;
  GstElement *p = segdl::test::make_pipeline(
      rig.srv->base_url(), kId, "",
      "decodebin ! audioconvert ! audio/x-raw,format=F32LE,layout=interleaved ! "
      "appsink name=sink sync=false");
  segdl::test::run_pipeline(p, run, 60);
  gst_object_unref(p);
  fail_unless(run.eos, "segdlsrc ! decodebin: %s", run.error ? run.error->message : "no EOS");
  const std::string ref(run.bytes.begin(), run.bytes.end());
  fail_unless_equals_int(ref.size(), 4 * 44100 * 15 / 2);  // 7.5 s: the source

  const std::string file = dir.path() + "/whole.mp3";
  const std::string first = check_whole(listen, "audio/mpeg");
  Reply full = gwtest::get(rig.gw->base_url() + "/stream?v=" + kId);
  gwtest::assert_body(full, first);
  assert_str_eq(full.h("content-type"), "audio/mpeg");
  assert_str_eq(full.h("content-length"), std::to_string(first.size()));
  Reply part = gwtest::get(rig.gw->base_url() + "/stream?v=" + kId, {{"Range", "bytes=100-4099"}});
  fail_unless_equals_int(part.status, 206);
  fail_unless(part.body == first.substr(100, 4000), "/stream?v=ID: the range differs");
  const Mp3Walk w = check_mp3_body(first, segments, "the whole track");
  write_file(file, first);
  // Within a frame and the encoder's delay (segment 0's LAME tag) of 7.5 s.
  const int delay =
      walk_mp3(segments[0], "segment 0").infos.at(0).second.encoder_delay + segdl::kMp3DecoderDelay;
  const double slack = double(w.first.samples + delay) / w.first.sample_rate;
  const double probed = ffprobe_seconds(file);
  fail_unless(std::fabs(probed - 7.5) <= slack, "ffprobe: %.4f s, the track is 7.5 s", probed);
  // GStreamer (1.22) applies no LAME trims to a file: segdlsrc's samples
  // begin at most the delay into its decode.
  const Pcm pcm = gst_decode(file);
  fail_unless(pcm.rate == 44100 && pcm.channels == 1);
  const size_t at = pcm.data.find(ref.substr(0, 4 * 1152));
  fail_unless(at != std::string::npos && at % 4 == 0 && at / 4 <= size_t(delay),
              "GStreamer: segdlsrc's samples are not at the start of the whole track's decode");
  fail_unless(pcm.data.compare(at, ref.size(), ref) == 0,
              "GStreamer: the whole track decodes to other samples than segdlsrc's %s",
              first_difference(pcm.data.substr(at), ref, pcm).c_str());
  fail_unless_equals_int(rig.gw->counters().upstream_full, 0);
}
GST_END_TEST;

// MP3 segments that are byte ranges of one stream (one MP3 file cut at
// byte offsets): once complete, /listen/ID and /stream?v=ID are still the
// segments laid end to end, the file byte for byte (no join: no segment
// after the first begins with an ID3v2 tag or an information frame).
GST_START_TEST(test_listen_mp3_byte_ranges) {
  gwtest::Rig rig(kId, segdl::test::make_track(Form::Mp3, 7.5));
  cache_all(*rig.gw, int(rig.track.segments.size()));
  const segdl::test::Bytes whole = segdl::test::concat(rig.track.segments);
  const std::string body = check_whole(rig.gw->base_url() + "/listen/" + kId, "audio/mpeg");
  fail_unless(body == std::string(whole.begin(), whole.end()),
              "/listen/ID: %zu bytes, not the %zu of the segments end to end", body.size(),
              whole.size());
  gwtest::assert_body(gwtest::get(rig.gw->base_url() + "/stream?v=" + kId), body);
  fail_unless_equals_int(rig.gw->counters().upstream_full, 0);
}
GST_END_TEST;

// Once the track is whole in the cache: one file, its length, Range.
GST_START_TEST(test_listen_complete) {
  gwtest::Rig rig(kId, segdl::test::make_track(Form::Adts, 10.5));
  const segdl::test::Bytes whole = segdl::test::concat(rig.track.segments);
  const std::string url = rig.gw->base_url() + "/listen/" + kId;
  Streamed live = stream(url, *rig.srv);
  fail_unless_equals_int(live.status, 200);
  assert_str_eq(live.encoding, "chunked");
  fail_unless(rig.gw->wait_idle(gwtest::kWaitMs));

  Reply all = gwtest::get(url);
  fail_unless_equals_int(all.status, 200);
  assert_str_eq(all.h("content-length"), std::to_string(whole.size()));
  assert_str_eq(all.h("accept-ranges"), "bytes");
  assert_str_eq(all.h("content-type"), "audio/aac");
  assert_str_eq(all.h("access-control-allow-origin"), "*");
  fail_unless(all.body == std::string(whole.begin(), whole.end()));
  Reply part = gwtest::get(url, {{"Range", "bytes=1000-2999"}});
  fail_unless_equals_int(part.status, 206);
  assert_str_eq(part.h("content-range"), "bytes 1000-2999/" + std::to_string(whole.size()));
  fail_unless(part.body == std::string(whole.begin() + 1000, whole.begin() + 3000));
}
GST_END_TEST;

// A client that does not read: once max_client_queue_bytes wait for it, the
// listener's pipeline pauses (the track is not made into memory); when it
// reads, the rest comes, to the end, never more than the bound (plus one
// buffer) held for it.
GST_START_TEST(test_slow_listener) {
  gwtest::TempDir cache;
  auto srv = gwtest::start_server();
  srv->add_track(kId, segdl::test::make_track(Form::Adts, 40));  // ~640 KB
  auto o = gwtest::gw_options(srv->base_url(), cache.path());
  o.max_client_queue_bytes = 16384;
  auto gw = gwtest::start_gateway(o);
  gwtest::RawClient c(gw->port(), std::string("/listen/") + kId);
  fail_unless(
      gw->wait_for([](const segdl::gateway::Counters &k) { return k.producers_paused == 1; },
                   gwtest::kWaitMs),
      "the pipeline did not pause for a client that does not read");
  const std::string all = c.read_all();
  fail_unless(g_str_has_prefix(all.c_str(), "HTTP/1.1 200"), "%.40s", all.c_str());
  const std::string end = "\r\n0\r\n\r\n";  // the last chunk
  fail_unless(all.size() > 500000 && all.compare(all.size() - end.size(), end.size(), end) == 0,
              "the chunked body did not end (%zu bytes)", all.size());
  const int64_t high = gw->counters().max_client_queue;
  fail_unless(high > 16384 && high <= 16384 + 8192, "%" G_GINT64_FORMAT " bytes held", high);
  fail_unless(gw->wait_for([](const segdl::gateway::Counters &k) { return k.listeners == 0; },
                           gwtest::kWaitMs));
}
GST_END_TEST;

// A client that goes away mid-stream stops its listener's pipeline: the
// listener count and the process's threads come back to their baseline,
// taken after two such clients: the first fetches segment 0 from the
// upstream, the second has it from the cache (the gateway's file checker
// starts its worker then), so pooled and lazily started threads are
// counted. The listener count falls once the pipeline's threads are
// joined, and live_thread_count() leaves out threads already exiting: one
// count then.
GST_START_TEST(test_disconnect_stops_pipeline) {
  // Segment 1 only after the test is over.
  gwtest::Rig rig(kId, segdl::test::make_track(Form::Adts, 10.5), revealing(30.0));
  const auto none = [](const segdl::gateway::Counters &k) { return k.listeners == 0; };
  int baseline = 0;
  for (int round = 0; round < 3; round++) {
    gwtest::RawClient c(rig.gw->port(), std::string("/listen/") + kId);
    fail_unless(g_str_has_prefix(c.read_some().c_str(), "HTTP/1.1 200"));
    fail_unless_equals_int(rig.gw->counters().listeners, 1);
    c.close_now();
    fail_unless(rig.gw->wait_for(none, gwtest::kWaitMs), "the listener outlived its client");
    if (round == 1) baseline = gwtest::live_thread_count();
  }
  const int now = gwtest::live_thread_count();
  fail_unless(now <= baseline, "%d threads, %d before", now, baseline);
}
GST_END_TEST;

// An id the backend does not know: a JSON 404 before any byte; a bad id: 400.
GST_START_TEST(test_listen_errors) {
  gwtest::Rig rig(kId, {});
  Reply r = gwtest::get(rig.gw->base_url() + "/listen/unknownTrk1");
  gwtest::assert_json_error(r, 404, "not_found");
  assert_str_eq(r.h("access-control-allow-origin"), "*");
  gwtest::assert_json_error(gwtest::get(rig.gw->base_url() + "/listen/bad%20id"), 400,
                            "bad_video_id");
  gwtest::assert_json_error(gwtest::request("POST", rig.gw->base_url() + "/listen/" + kId), 405,
                            "method_not_allowed");
}
GST_END_TEST;

// CORS: the preflight, and the header on the API's answers; the page at /.
GST_START_TEST(test_cors_and_page) {
  gwtest::Rig rig(kId);
  Reply pre = gwtest::request("OPTIONS", rig.gw->base_url() + "/api/segments/status/" + kId,
                              {{"Origin", "http://app.example"},
                               {"Access-Control-Request-Method", "GET"},
                               {"Access-Control-Request-Headers", "range"}});
  fail_unless_equals_int(pre.status, 204);
  assert_str_eq(pre.h("access-control-allow-origin"), "*");
  fail_unless(pre.h("access-control-allow-methods").find("GET") != std::string::npos);
  fail_unless(pre.h("access-control-allow-headers").find("Range") != std::string::npos);
  Reply st = gwtest::get(rig.gw->base_url() + "/api/segments/status/" + kId,
                         {{"Origin", "http://app.example"}});
  fail_unless_equals_int(st.status, 200);
  assert_str_eq(st.h("access-control-allow-origin"), "*");
  fail_unless(st.h("access-control-expose-headers").find("Content-Range") != std::string::npos);
  Reply page = gwtest::get(rig.gw->base_url() + "/");
  fail_unless_equals_int(page.status, 200);
  assert_str_eq(page.h("content-type"), "text/html; charset=utf-8");
  fail_unless(page.body.find("<audio") != std::string::npos);
  fail_unless(page.body.find("/listen/") != std::string::npos);
}
GST_END_TEST;

// The gateway stops at once with a listener mid-stream (its pipeline stopped).
GST_START_TEST(test_stop_while_listening) {
  // Segment 1 only after the test is over.
  gwtest::Rig rig(kId, segdl::test::make_track(Form::Adts, 10.5), revealing(30.0));
  Streamed s;
  std::promise<void> first;
  std::thread t([&] {
    s = stream(rig.gw->base_url() + "/listen/" + kId, *rig.srv, [&] { first.set_value(); });
  });
  const bool got = first.get_future().wait_for(std::chrono::milliseconds(gwtest::kWaitMs)) ==
                   std::future_status::ready;
  rig.gw->stop();
  t.join();
  fail_unless(got, "no bytes before the gateway stopped");
  fail_unless_equals_int(s.status, 200);
  fail_unless(s.first_chunk > 0);
}
GST_END_TEST;

static Suite *gateway_listen_suite() {
  Suite *s = suite_create("gateway-listen");
  TCase *tc = tcase_create("listen");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_listen_adts);
  tcase_add_test(tc, test_listen_mp3);
  tcase_add_test(tc, test_listen_ts);
  tcase_add_test(tc, test_listen_accept_aac);
  tcase_add_test(tc, test_listen_opus_webm);
  tcase_add_test(tc, test_listen_opus_ogg);
  tcase_add_test(tc, test_listen_vorbis_ogg);
  tcase_add_test(tc, test_listen_complete);
  tcase_add_test(tc, test_joined_m4a);
  tcase_add_test(tc, test_listen_join_fails);
  tcase_add_test(tc, test_listen_mp3_cut_by_ffmpeg);
  tcase_add_test(tc, test_listen_mp3_byte_ranges);
  tcase_add_test(tc, test_listen_flac);
  tcase_add_test(tc, test_listen_errors);
  tcase_add_test(tc, test_cors_and_page);
  tcase_add_test(tc, test_stop_while_listening);
  tcase_add_test(tc, test_slow_listener);
  tcase_add_test(tc, test_disconnect_stops_pipeline);
  return s;
}

GST_CHECK_MAIN(gateway_listen);
