// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl tests — segdlsrc in a process that already has libsoup 2 loaded.
 *
 * libsoup 3 aborts such a process; segdlsrc must refuse to start with a
 * clear LIBRARY/INIT error instead, and the process must live on. Skipped
 * (exit 77) where libsoup 2 is not installed.
 */
#include <dlfcn.h>

#include <gst/check/gstcheck.h>

GST_START_TEST(test_refuses_beside_libsoup2) {
  GstElement *src = gst_element_factory_make("segdlsrc", nullptr);
  fail_unless(src != nullptr);
  g_object_set(src, "backend-url", "http://127.0.0.1:9", "video-id", "x", nullptr);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(src, bus);
  fail_unless_equals_int(gst_element_set_state(src, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  fail_unless(msg != nullptr);
  GError *err = nullptr;
  gst_message_parse_error(msg, &err, nullptr);
  fail_unless(err->domain == GST_LIBRARY_ERROR, "domain %s", g_quark_to_string(err->domain));
  fail_unless_equals_int(err->code, GST_LIBRARY_ERROR_INIT);
  fail_unless(strstr(err->message, "libsoup 2") != nullptr, "message: %s", err->message);
  g_error_free(err);
  gst_message_unref(msg);
  gst_element_set_state(src, GST_STATE_NULL);
  gst_element_set_bus(src, nullptr);
  gst_object_unref(bus);
  gst_object_unref(src);
  // Still alive, and libsoup 3 was never loaded.
  void *soup3 = dlopen("libsoup-3.0.so.0", RTLD_LAZY | RTLD_NOLOAD);
  fail_unless(soup3 == nullptr, "libsoup 3 got loaded");
}
GST_END_TEST;

static Suite *libsoup2_suite() {
  Suite *s = suite_create("libsoup2");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_refuses_beside_libsoup2);
  return s;
}

int main(int argc, char **argv) {
  // Load libsoup 2 the way a host application linked against it would have.
  if (!dlopen("libsoup-2.4.so.1", RTLD_NOW | RTLD_GLOBAL)) {
    g_print("libsoup 2 is not installed: %s\n", dlerror());
    return 77;  // meson: skipped
  }
  gst_check_init(&argc, &argv);
  return gst_check_run_suite(libsoup2_suite(), "libsoup2", __FILE__);
}
