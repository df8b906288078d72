// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — segdlsrc, the element (see the section comment in gstsegdlsrc.cpp). */
#pragma once

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SEG_DL_SRC (gst_seg_dl_src_get_type())
G_DECLARE_FINAL_TYPE(GstSegDlSrc, gst_seg_dl_src, GST, SEG_DL_SRC, GstPushSrc)

GST_ELEMENT_REGISTER_DECLARE(segdlsrc);

G_END_DECLS
