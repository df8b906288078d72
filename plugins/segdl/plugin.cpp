// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — plugin registration. */
#include "config.h"

#include "gstsegdlsrc.h"

static gboolean plugin_init(GstPlugin *plugin) noexcept {
  return GST_ELEMENT_REGISTER(segdlsrc, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, segdl,
                  "Plays audio that a backend publishes as numbered segments while it is still "
                  "producing them",
                  plugin_init, VERSION, "LGPL", GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
