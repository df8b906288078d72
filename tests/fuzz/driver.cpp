// SPDX-License-Identifier: LGPL-2.1-or-later
/* Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer: each
 * argument is a file or a directory of files. For the test suite (the seed
 * corpus, on every build) and for reproducing a crash found by bench/fuzz.sh.
 */
#include <glib.h>

#include <cstdint>
#include <cstdio>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  gchar *data = nullptr;
  gsize len = 0;
  GError *err = nullptr;
  if (!g_file_get_contents(path, &data, &len, &err)) {
    fprintf(stderr, "%s: %s\n", path, err->message);
    g_error_free(err);
    return 1;
  }
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(data), len);
  g_free(data);
  return 0;
}

int main(int argc, char **argv) {
  int files = 0, failures = 0;
  for (int i = 1; i < argc; i++) {
    if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
      GDir *dir = g_dir_open(argv[i], 0, nullptr);
      if (!dir) return 1;
      while (const char *name = g_dir_read_name(dir)) {
        gchar *path = g_build_filename(argv[i], name, nullptr);
        failures += run_file(path);
        files++;
        g_free(path);
      }
      g_dir_close(dir);
    } else {
      failures += run_file(argv[i]);
      files++;
    }
  }
  printf("%d inputs replayed\n", files);
  return failures || files == 0 ? 1 : 0;
}
