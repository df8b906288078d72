/* segdl — loading the libsoup 3 HTTP module at run time.
 *
 * libsoup 3 aborts the process when libsoup 2 is already loaded in it (and a
 * plugin linked against libsoup 3 would trigger that the moment it is
 * opened). So the plugin does not link libsoup: the Fetcher implementation is
 * a separate module, libsegdl-http.so, opened only after checking that no
 * libsoup 2 is present. The module exports one C entry point.
 */
#pragma once

#include "segdl/fetcher.h"

#include <string>

#define SEGDL_HTTP_MODULE_ABI 1

extern "C" {
// Entry point exported by libsegdl-http.so. Returns nullptr with *error set
// (g_strdup'ed) on failure.
typedef segdl::Fetcher *(*SegdlHttpFetcherNew)(int abi, const segdl::FetcherConfig *config,
                                               char **error);
}

namespace segdl {

// True when libsoup 2 symbols are visible in this process.
bool libsoup2_loaded();

// Loads the module once per process (it then stays resident). The directory
// is $SEGDL_MODULE_DIR if set, else the install directory. Returns the entry
// point, or nullptr with `error` set.
SegdlHttpFetcherNew load_http_module(std::string &error);

}  // namespace segdl
