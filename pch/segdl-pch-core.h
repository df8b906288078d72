// SPDX-License-Identifier: LGPL-2.1-or-later
// Precompiled header of the core library (gst/segdl/meson.build, cpp_pch):
// the system headers most of its files include, parsed once per build
// instead of once per file. Only headers of the target's own dependencies;
// every file still includes what it uses (this header is a build speed-up,
// not an include of record). Only given to the compiler with -include.

#include <glib.h>
#include <gio/gio.h>
#include <gst/gst.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
