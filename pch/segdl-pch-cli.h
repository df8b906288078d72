// SPDX-License-Identifier: LGPL-2.1-or-later
// Precompiled header of segdl, the command line (tools/cli/meson.build,
// cpp_pch): the system headers most of its files include, parsed once per
// build instead of once per file. Every file still includes what it uses.

#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
