// SPDX-License-Identifier: LGPL-2.1-or-later
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

#include <glib.h>

#include <string>
#include <vector>

#define SEGDL_HTTP_MODULE_ABI 3  // 3: FetcherConfig::http (HttpOptions)

extern "C" {
// Entry point exported by libsegdl-http.so. Returns nullptr with *error set
// (g_strdup'ed) on failure.
typedef segdl::Fetcher *(*SegdlHttpFetcherNew)(int abi, const segdl::FetcherConfig *config,
                                               char **error);
}

namespace segdl {

// The lookup is G_GNUC_INTERNAL (hidden): each binary that links the core
// (the plugin, the segdl program, a test) calls its own copy and finds the
// module from where that binary is. Exported, the plugin's calls would bind
// to the copy of a program that links the core and exports its symbols
// (segdl does, through gmodule-export), and the plugin would look for its
// module beside that program.

// True when libsoup 2 symbols are visible in this process.
bool libsoup2_loaded();

// Where the module is looked for, in order: beside the object this code is
// linked into (the plugin: LIBDIR/gstreamer-1.0/../segdl when installed, the
// build tree's gst/segdl when run from a build), then $SEGDL_MODULE_DIR, then
// the install directory set at build time. Canonical, without duplicates.
G_GNUC_INTERNAL std::vector<std::string> http_module_dirs();

// Loads the module once per process (it then stays resident) from the first
// of http_module_dirs() that holds it. Returns the entry point, or nullptr
// with `error` set (naming every path tried and how to fix it).
G_GNUC_INTERNAL SegdlHttpFetcherNew load_http_module(std::string &error);

}  // namespace segdl
