// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — finding the segdlsrc element (see plugin.h). */
#include "plugin.h"

#include <gmodule.h>
#include <gst/gst.h>

namespace segdl::cli {

namespace {

// The folder of this program's executable ("" if it cannot be told).
std::string program_directory() {
  g_autofree char *exe = g_file_read_link("/proc/self/exe", nullptr);
  if (!exe) return {};
  g_autofree char *dir = g_path_get_dirname(exe);
  return dir;
}

// PREFIX for an executable installed in PREFIX/BINDIR (BINDIR as configured,
// relative to the prefix), else the executable's parent folder.
std::string installed_prefix(const std::string &dir) {
  const std::string bindir = SEGDL_CLI_BINDIR;
  if (!g_path_is_absolute(bindir.c_str()) && dir.size() > bindir.size() + 1 &&
      dir.compare(dir.size() - bindir.size(), bindir.size(), bindir) == 0 &&
      dir[dir.size() - bindir.size() - 1] == '/')
    return dir.substr(0, dir.size() - bindir.size() - 1);
  return dir + "/..";
}

GstPluginFeature *find_segdlsrc() {
  return gst_registry_lookup_feature(gst_registry_get(), "segdlsrc");
}

// The plugin finds its HTTP module beside itself. segdl's own requests
// (segdl status, the --combine check) load it through this program's copy of
// the core, which looks beside the program (BINDIR/../segdl, not LIBDIR/segdl)
// and then in the install dir fixed at build time: wrong for a prefix moved
// elsewhere. Unless the user said where (SEGDL_MODULE_DIR), point it at the
// module beside the plugin: installed LIBDIR/gstreamer-1.0 -> LIBDIR/segdl,
// build tree plugins/segdl -> gst/segdl.
void point_at_module_beside(const std::string &plugin_file) {
  const char *env = g_getenv("SEGDL_MODULE_DIR");
  if ((env && *env) || plugin_file.empty()) return;
  g_autofree char *dir = g_path_get_dirname(plugin_file.c_str());
  for (const char *rel : {"/../segdl", "/../../gst/segdl"}) {
    g_autofree char *canon = g_canonicalize_filename((std::string(dir) + rel).c_str(), nullptr);
    g_autofree char *module = g_module_build_path(canon, "segdl-http");
    if (g_file_test(module, G_FILE_TEST_IS_REGULAR)) {
      g_setenv("SEGDL_MODULE_DIR", canon, FALSE);
      return;
    }
  }
}

}  // namespace

std::vector<std::string> plugin_dirs_beside_program() {
  std::vector<std::string> dirs;
  auto add = [&dirs](const std::string &d) {
    g_autofree char *canon = g_canonicalize_filename(d.c_str(), nullptr);
    for (const std::string &seen : dirs)
      if (seen == canon) return;
    dirs.emplace_back(canon);
  };
  const std::string own = program_directory();
  if (own.empty()) return dirs;
  add(own + "/../../plugins/segdl");  // build tree: tools/cli -> plugins/segdl
  const std::string plugindir = SEGDL_CLI_PLUGINDIR;
  add(g_path_is_absolute(plugindir.c_str()) ? plugindir : installed_prefix(own) + "/" + plugindir);
  return dirs;
}

bool ensure_segdlsrc(std::string &error) {
  GstPluginFeature *feature = find_segdlsrc();
  if (feature) {
    gst_object_unref(feature);
    point_at_module_beside(segdlsrc_plugin_file());
    return true;
  }
  std::string looked;
  for (const std::string &dir : plugin_dirs_beside_program()) {
    g_autofree char *path = g_module_build_path(dir.c_str(), "gstsegdl");
    looked += std::string(looked.empty() ? "" : ", ") + path;
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) continue;
    GError *err = nullptr;
    GstPlugin *plugin = gst_plugin_load_file(path, &err);
    if (!plugin) {
      looked += std::string(" (") + (err ? err->message : "cannot load") + ")";
      g_clear_error(&err);
      continue;
    }
    gst_object_unref(plugin);
    feature = find_segdlsrc();
    if (feature) {
      gst_object_unref(feature);
      point_at_module_beside(path);
      return true;
    }
  }
  error =
      "the segdlsrc element is not installed (looked in GST_PLUGIN_PATH, GStreamer's plugin "
      "dirs" +
      (looked.empty() ? std::string() : ", " + looked) + ")";
  return false;
}

std::string segdlsrc_plugin_file() {
  GstPluginFeature *feature = find_segdlsrc();
  if (!feature) return {};
  std::string file;
  GstPlugin *plugin = gst_plugin_feature_get_plugin(feature);
  if (plugin) {
    const char *name = gst_plugin_get_filename(plugin);
    if (name) file = name;
    gst_object_unref(plugin);
  }
  gst_object_unref(feature);
  return file;
}

}  // namespace segdl::cli
