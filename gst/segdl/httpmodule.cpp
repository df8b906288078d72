// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — finding and opening libsegdl-http.so (see httpmodule.h). */
#include "segdl/httpmodule.h"

#include "config.h"

#include <dlfcn.h>
#include <gmodule.h>

#include <mutex>
#include <string>
#include <vector>

namespace segdl {

bool libsoup2_loaded() {
  // Loaded with any symbol scope (RTLD_NOLOAD only looks, never loads)?
  if (void *handle = dlopen("libsoup-2.4.so.1", RTLD_LAZY | RTLD_NOLOAD)) {
    dlclose(handle);
    return true;
  }
  // Or linked in some other way: soup_uri_new exists in libsoup 2 only
  // (libsoup 3 replaced SoupURI by GUri), the probe libsoup 3 itself runs
  // before it aborts.
  GModule *self = g_module_open(nullptr, G_MODULE_BIND_LAZY);
  if (!self) return false;
  gpointer sym = nullptr;
  bool found = g_module_symbol(self, "soup_uri_new", &sym) && sym;
  g_module_close(self);
  return found;
}

// An object of this file with internal linkage: its address always lies in
// the binary this copy of the core is linked into, whatever other copies of
// the core the process holds and whichever symbols they export.
static const char kOwnAnchor = 0;

// The directory of the shared object (or program) this code is linked into:
// the plugin when loaded by GStreamer. Empty if it cannot be told.
static std::string own_directory() {
  Dl_info info{};
  if (!dladdr(&kOwnAnchor, &info) || !info.dli_fname) return {};
  g_autofree char *dir = g_path_get_dirname(info.dli_fname);
  return dir;
}

std::vector<std::string> http_module_dirs() {
  std::vector<std::string> dirs;
  auto add = [&dirs](std::string d) {
    if (d.empty()) return;
    g_autofree char *canon = g_canonicalize_filename(d.c_str(), nullptr);
    for (const std::string &seen : dirs)
      if (seen == canon) return;
    dirs.emplace_back(canon);
  };
  std::string own = own_directory();
  if (!own.empty()) {
    add(own + "/../segdl");         // installed: LIBDIR/gstreamer-1.0 -> LIBDIR/segdl
    add(own + "/../../gst/segdl");  // build tree: plugins/segdl -> gst/segdl
    add(own + "/../gst/segdl");     // build tree: tools -> gst/segdl
  }
  const char *env = g_getenv("SEGDL_MODULE_DIR");
  if (env && *env) add(env);
  add(SEGDL_MODULE_DIR);
  return dirs;
}

SegdlHttpFetcherNew load_http_module(std::string &error) {
  static std::mutex lock;
  static SegdlHttpFetcherNew entry = nullptr;
  std::lock_guard<std::mutex> guard(lock);
  if (entry) return entry;

  std::string tried;
  for (const std::string &dir : http_module_dirs()) {
    g_autofree char *path = g_module_build_path(dir.c_str(), "segdl-http");
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
      tried += std::string(tried.empty() ? "" : ", ") + path;
      continue;
    }
    GModule *module = g_module_open(path, G_MODULE_BIND_LOCAL);
    if (!module) {
      error = std::string("cannot load the segdl HTTP module ") + path + ": " + g_module_error();
      return nullptr;
    }
    gpointer sym = nullptr;
    if (!g_module_symbol(module, "segdl_http_fetcher_new", &sym) || !sym) {
      error = std::string(path) + " has no segdl_http_fetcher_new entry point";
      g_module_close(module);
      return nullptr;
    }
    g_module_make_resident(module);
    entry = reinterpret_cast<SegdlHttpFetcherNew>(sym);
    return entry;
  }
  error = "libsegdl-http.so (segdl's libsoup 3 module) was not found; looked in: " + tried +
          ". Install segdl with `meson install` (it puts the module in LIBDIR/segdl beside "
          "LIBDIR/gstreamer-1.0), or point SEGDL_MODULE_DIR at the folder that holds it.";
  return nullptr;
}

}  // namespace segdl
