// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — --combine: which container for which extension, which muxer for
 * which codec. Nothing is re-encoded: the parsed frames segdlsrc outputs go
 * into GStreamer's muxer for the container (or straight to the file for the
 * containerless .mp3 and .aac).
 */
#pragma once

#include <gst/gst.h>

#include <cstddef>
#include <cstdint>

#include <string>
#include <vector>

namespace segdl::cli {

// The elements between segdlsrc's frames and the filesink, in order.
struct OutputChain {
  std::vector<std::string> factories;  // e.g. {"mp4mux"}; empty for .mp3
  std::string caps_after;              // a capsfilter after the factories ("" = none), e.g. ADTS
};

// The lower-cased extension of `path` ("" when none).
std::string path_extension(const std::string &path);
// True when `ext` names a container segdl writes (m4a mp4 m4b mka mkv webm
// ogg oga opus mp3 aac). Otherwise `error` lists the ones it knows.
bool known_extension(const std::string &ext, std::string &error);
// "AAC", "MP3", "Opus", "Vorbis", "FLAC", or the caps' media type.
std::string codec_name(const GstCaps *caps);
// The extension a codec is usually stored with (--combine auto): m4a for
// AAC, mp3, opus, ogg for Vorbis, mka for anything else.
std::string natural_extension(const GstCaps *caps);
// The chain for `ext` and `caps`, or false with `error` naming the codec and
// the extensions that would hold it.
bool plan_output(const std::string &ext, const GstCaps *caps, OutputChain &chain,
                 std::string &error);
// Caps for a status mime_type that names the codec ("audio/aac",
// "audio/mpeg", "audio/ogg; codecs=opus", ...); nullptr when it does not.
GstCaps *caps_for_mime_type(const std::string &mime);
// Caps for the audio track of a whole MP4 file (an m4a segment): AAC, MP3,
// Opus, FLAC, ALAC, AC-3, E-AC-3 from its sample entry; nullptr when the
// bytes are not such a file.
GstCaps *caps_for_mp4_file(const uint8_t *data, size_t size);
// A file name made of the id's safe characters ([A-Za-z0-9._-], others
// become '_', no leading '.'), for --combine auto.
std::string file_name_for_id(const std::string &id);

}  // namespace segdl::cli
