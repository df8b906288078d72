// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — --combine: container by extension, muxer by codec. */
#include "output.h"

#include "segdl/mp4.h"

#include <glib.h>

#include <cstring>

namespace segdl::cli {

namespace {

enum class Kind { Mp4, Matroska, WebM, Ogg, OggOpus, Mp3, Adts };

struct Container {
  const char *ext;
  Kind kind;
};

constexpr Container kContainers[] = {
    {"m4a", Kind::Mp4},      {"mp4", Kind::Mp4},   {"m4b", Kind::Mp4},  {"mka", Kind::Matroska},
    {"mkv", Kind::Matroska}, {"webm", Kind::WebM}, {"ogg", Kind::Ogg},  {"oga", Kind::Ogg},
    {"opus", Kind::OggOpus}, {"mp3", Kind::Mp3},   {"aac", Kind::Adts},
};

const Container *find_container(const std::string &ext) {
  for (const Container &c : kContainers)
    if (ext == c.ext) return &c;
  return nullptr;
}

bool caps_is(const GstCaps *caps, const char *media) {
  return caps && gst_caps_get_size(caps) > 0 &&
         gst_structure_has_name(gst_caps_get_structure(caps, 0), media);
}

int mpeg_version(const GstCaps *caps) {
  int v = 0;
  if (caps_is(caps, "audio/mpeg"))
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "mpegversion", &v);
  return v;
}

bool is_aac(const GstCaps *caps) {
  return mpeg_version(caps) == 2 || mpeg_version(caps) == 4;
}
bool is_mpeg_audio(const GstCaps *caps) {
  return mpeg_version(caps) == 1;
}

// True when the muxer's element factory exists and one of its sink pad
// templates accepts the caps.
bool muxer_takes(const char *factory_name, const GstCaps *caps) {
  GstElementFactory *f = gst_element_factory_find(factory_name);
  if (!f) return false;
  const gboolean ok = gst_element_factory_can_sink_any_caps(f, caps);
  gst_object_unref(f);
  return ok;
}

// The chain for one container kind, or false when it cannot hold the caps.
bool chain_for(Kind kind, const GstCaps *caps, OutputChain &chain) {
  chain = OutputChain();
  switch (kind) {
    case Kind::Mp4:
      // GStreamer 1.22's mp4mux takes Opus but writes a file ffmpeg plays
      // 13377 samples short and shifted (docs/element.md): not offered.
      chain.factories = {"mp4mux"};
      return !caps_is(caps, "audio/x-opus") && muxer_takes("mp4mux", caps);
    case Kind::Matroska:
      chain.factories = {"matroskamux"};
      return muxer_takes("matroskamux", caps);
    case Kind::WebM:
      chain.factories = {"webmmux"};
      return muxer_takes("webmmux", caps);
    case Kind::Ogg:
      chain.factories = {"oggmux"};
      return muxer_takes("oggmux", caps);
    case Kind::OggOpus:
      chain.factories = {"oggmux"};
      return caps_is(caps, "audio/x-opus") && muxer_takes("oggmux", caps);
    case Kind::Mp3:
      return is_mpeg_audio(caps);
    case Kind::Adts:
      // segdlsrc gives raw AAC with codec_data; aacparse writes the ADTS headers.
      chain.factories = {"aacparse"};
      chain.caps_after = "audio/mpeg,stream-format=adts";
      return is_aac(caps);
  }
  return false;
}

}  // namespace

std::string path_extension(const std::string &path) {
  const char *base = strrchr(path.c_str(), '/');
  base = base ? base + 1 : path.c_str();
  const char *dot = strrchr(base, '.');
  if (!dot || dot == base) return "";
  gchar *lower = g_ascii_strdown(dot + 1, -1);
  std::string ext = lower;
  g_free(lower);
  return ext;
}

bool known_extension(const std::string &ext, std::string &error) {
  if (find_container(ext)) return true;
  std::string list;
  for (const Container &c : kContainers) list += std::string(list.empty() ? "" : " ") + "." + c.ext;
  error = (ext.empty() ? std::string("the output name has no extension")
                       : "unknown output extension ." + ext) +
          " (segdl writes " + list + ", or use --combine auto)";
  return false;
}

std::string codec_name(const GstCaps *caps) {
  if (is_aac(caps)) return "AAC";
  if (is_mpeg_audio(caps)) {
    int layer = 3;
    gst_structure_get_int(gst_caps_get_structure(caps, 0), "layer", &layer);
    return layer == 3 ? "MP3" : "MPEG-1 layer " + std::to_string(layer);
  }
  if (caps_is(caps, "audio/x-opus")) return "Opus";
  if (caps_is(caps, "audio/x-vorbis")) return "Vorbis";
  if (caps_is(caps, "audio/x-flac")) return "FLAC";
  if (!caps || gst_caps_get_size(caps) == 0) return "unknown";
  return gst_structure_get_name(gst_caps_get_structure(caps, 0));
}

std::string natural_extension(const GstCaps *caps) {
  if (is_aac(caps)) return "m4a";
  if (is_mpeg_audio(caps)) return "mp3";
  if (caps_is(caps, "audio/x-opus")) return "opus";
  if (caps_is(caps, "audio/x-vorbis")) return "ogg";
  return "mka";
}

bool plan_output(const std::string &ext, const GstCaps *caps, OutputChain &chain,
                 std::string &error) {
  const Container *c = find_container(ext);
  if (!c) return known_extension(ext, error);
  if (chain_for(c->kind, caps, chain)) return true;
  std::string fits;
  for (const Container &other : kContainers) {
    OutputChain unused;
    if (chain_for(other.kind, caps, unused))
      fits += std::string(fits.empty() ? "" : ", ") + "." + other.ext;
  }
  const bool opus_mp4 = c->kind == Kind::Mp4 && caps_is(caps, "audio/x-opus");
  error =
      "a ." + ext + " file cannot hold " + codec_name(caps) + " audio" +
      (opus_mp4 ? ": GStreamer's mp4mux writes Opus that plays short" : " without re-encoding") +
      (fits.empty() ? std::string(" (no container segdl writes can)")
                    : " (it fits in " + fits + ")");
  return false;
}

GstCaps *caps_for_mime_type(const std::string &mime) {
  gchar *lower = g_ascii_strdown(mime.c_str(), -1);
  const std::string m = lower;
  g_free(lower);
  const std::string type = m.substr(0, m.find(';'));
  const char *caps = nullptr;
  if (m.find("codecs=opus") != std::string::npos ||
      m.find("codecs=\"opus\"") != std::string::npos || type == "audio/opus")
    caps = "audio/x-opus";
  else if (m.find("codecs=vorbis") != std::string::npos ||
           m.find("codecs=\"vorbis\"") != std::string::npos)
    caps = "audio/x-vorbis";
  else if (type == "audio/aac" || type == "audio/x-aac" || type == "audio/aacp")
    caps = "audio/mpeg, mpegversion=(int)4, stream-format=(string)raw";
  else if (type == "audio/mpeg" || type == "audio/mp3" || type == "audio/x-mp3")
    caps = "audio/mpeg, mpegversion=(int)1, layer=(int)3";
  return caps ? gst_caps_from_string(caps) : nullptr;
}

GstCaps *caps_for_mp4_file(const uint8_t *data, size_t size) {
  Mp4File file;
  if (!parse_mp4(data, size, file) || file.audio_track < 0) return nullptr;
  const Mp4Track &t = file.tracks[size_t(file.audio_track)];
  const char *caps = nullptr;
  const uint8_t oti = t.object_type_indication;
  if (t.sample_entry == fourcc("mp4a") && (oti == 0x40 || (oti >= 0x66 && oti <= 0x68)))
    caps = "audio/mpeg, mpegversion=(int)4, stream-format=(string)raw";
  else if (t.sample_entry == fourcc(".mp3") ||
           (t.sample_entry == fourcc("mp4a") && (oti == 0x69 || oti == 0x6b)))
    caps = "audio/mpeg, mpegversion=(int)1, layer=(int)3";
  else if (t.sample_entry == fourcc("Opus"))
    caps = "audio/x-opus";
  else if (t.sample_entry == fourcc("fLaC"))
    caps = "audio/x-flac";
  else if (t.sample_entry == fourcc("alac"))
    caps = "audio/x-alac";
  else if (t.sample_entry == fourcc("ac-3"))
    caps = "audio/x-ac3";
  else if (t.sample_entry == fourcc("ec-3"))
    caps = "audio/x-eac3";
  return caps ? gst_caps_from_string(caps) : nullptr;
}

std::string file_name_for_id(const std::string &id) {
  std::string name;
  for (char ch : id) {
    const bool safe = g_ascii_isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
    name += safe ? ch : '_';
  }
  if (name.empty() || name[0] == '.') name.insert(0, "track");
  return name.substr(0, 200);
}

}  // namespace segdl::cli
