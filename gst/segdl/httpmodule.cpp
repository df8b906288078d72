/* segdl — finding and opening libsegdl-http.so (see httpmodule.h). */
#include "segdl/httpmodule.h"

#include "config.h"

#include <dlfcn.h>
#include <gmodule.h>

#include <mutex>

namespace segdl {

const char *fetch_error_name(FetchError e) {
  switch (e) {
    case FetchError::None:
      return "none";
    case FetchError::Connect:
      return "connection failed";
    case FetchError::Timeout:
      return "timed out";
    case FetchError::Io:
      return "transfer broken";
    case FetchError::Tls:
      return "TLS failure";
    case FetchError::Other:
      return "error";
  }
  return "error";
}

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

SegdlHttpFetcherNew load_http_module(std::string &error) {
  static std::mutex lock;
  static SegdlHttpFetcherNew entry = nullptr;
  static std::string load_error;
  std::lock_guard<std::mutex> guard(lock);
  if (entry) return entry;

  const char *dir = g_getenv("SEGDL_MODULE_DIR");
  if (!dir || !*dir) dir = SEGDL_MODULE_DIR;
  g_autofree char *path = g_module_build_path(dir, "segdl-http");
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

}  // namespace segdl
