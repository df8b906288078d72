// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl fuzz target — the status parser (backend data), and the URI parser.
 * Built as a libFuzzer target by bench/fuzz.sh (clang), and as a plain test
 * that replays the seed corpus in meson (tests/fuzz/driver.cpp).
 */
#include "segdl/status.h"
#include "segdl/urls.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  segdl::StatusLimits limits;
  limits.max_body_bytes = 64 * 1024;
  segdl::Status st;
  std::string error;
  if (segdl::parse_status(reinterpret_cast<const char *>(data), size, st, error, limits)) {
    // What the parser promises about an accepted status.
    int64_t prev = -1;
    for (int64_t n : st.ready) {
      if (n <= prev || n < 0 || n >= limits.max_segments) abort();
      if (st.total_segments && n >= *st.total_segments) abort();
      prev = n;
    }
    if (st.total_segments && (*st.total_segments < 0 || *st.total_segments >= limits.max_segments))
      abort();
    if (st.contiguous_ready() > int64_t(st.ready.size())) abort();
  } else if (error.empty()) {
    abort();  // a rejection always says why
  }
  // The same bytes as a segdl:// URI: parse, and round-trip what parses.
  std::string uri(reinterpret_cast<const char *>(data), size);
  std::string backend, id;
  if (segdl::parse_segdl_uri(uri, backend, id, error)) {
    std::string again = segdl::make_segdl_uri(backend, id);
    std::string b2, id2;
    if (!again.empty() && (!segdl::parse_segdl_uri(again, b2, id2, error) || id2 != id)) abort();
  }
  return 0;
}
