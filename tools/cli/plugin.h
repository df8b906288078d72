// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — finding the segdlsrc element without GST_PLUGIN_PATH (used by
 * segdl and by segdl-gateway, whose /listen runs segdlsrc).
 *
 * The registry first (GST_PLUGIN_PATH, GStreamer's plugin dirs). When it
 * has no segdlsrc, the plugin beside this program, the way the plugin finds
 * its HTTP module beside itself: from a build tree (BUILD/tools/cli/segdl or
 * BUILD/tools/gateway/segdl-gateway -> BUILD/plugins/segdl) or from an
 * installed prefix, wherever it was moved (PREFIX/BINDIR/segdl ->
 * PREFIX/LIBDIR/gstreamer-1.0, which GStreamer does not scan unless PREFIX
 * is its own).
 */
#pragma once

#include <string>
#include <vector>

namespace segdl::cli {

// The folders looked in after the registry, in order (canonical paths).
std::vector<std::string> plugin_dirs_beside_program();
// True when segdlsrc can be made, after loading the plugin from
// plugin_dirs_beside_program() if the registry had none. Otherwise `error`
// says where segdl looked. Call after gst_init().
bool ensure_segdlsrc(std::string &error);
// The file segdlsrc is loaded from ("" when there is none).
std::string segdlsrc_plugin_file();

}  // namespace segdl::cli
