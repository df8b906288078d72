// SPDX-License-Identifier: LGPL-2.1-or-later
// Precompiled header of the plugin (plugins/segdl/meson.build, cpp_pch): the
// system headers most of its files include, parsed once per build instead of
// once per file. Every file still includes what it uses.

#include <gio/gio.h>
#include <gst/audio/audio.h>
#include <gst/base/gstpushsrc.h>
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
