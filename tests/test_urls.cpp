// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests of the protocol URLs and the segdl:// scheme
 * (gst/segdl/urls.cpp) against docs/protocol.md. */
#include <gst/check/gstcheck.h>

#include <string>
#include <vector>

#include "segdl/urls.h"

namespace {

// Hostile and awkward ids: none of them may change the path or the query.
std::vector<std::string> hostile_ids() {
  std::vector<std::string> ids = {
      "abc",
      "../../etc/passwd",
      "a b?c#d%e&f",
      "x&segment=9",
      "v=1&v=2",
      "/",
      "..",
      "%41%",
      "+plus+",
      "semi;colon=eq",
      "\xC3\xA9t\xC3\xA9",  // UTF-8
      "\r\n\t\x01\x1f\x7f",
      std::string("nul\0byte", 8),
  };
  std::string high;
  for (int c = 0x80; c <= 0xff; c++) high.push_back(static_cast<char>(c));
  ids.push_back(high);
  std::string all;
  for (int c = 1; c <= 0xff; c++) all.push_back(static_cast<char>(c));
  ids.push_back(all);
  std::string long_id;
  for (int i = 0; i < 10240; i++) long_id.push_back("?&#/%= a"[i % 8]);
  ids.push_back(long_id);
  return ids;
}

std::string unescape(const std::string &s) {
  g_autoptr(GBytes) bytes =
      g_uri_unescape_bytes(s.c_str(), static_cast<gssize>(s.size()), nullptr, nullptr);
  fail_unless(bytes != nullptr, "cannot unescape %s", s.c_str());
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
  return std::string(data, size);
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> parts;
  size_t from = 0;
  while (true) {
    size_t at = s.find(sep, from);
    parts.push_back(s.substr(from, at == std::string::npos ? std::string::npos : at - from));
    if (at == std::string::npos) break;
    from = at + 1;
  }
  return parts;
}

// Checks that `url` is `prefix` + "?" + the given parameters, with `id`
// percent-encoded in v= and nothing else in the URL.
void check_url(const std::string &url, const std::string &prefix, const std::string &id,
               const char *segment) {
  fail_unless(url.compare(0, prefix.size(), prefix) == 0, "%.100s does not start with %s",
              url.c_str(), prefix.c_str());
  const size_t question = url.find('?');
  fail_unless_equals_int64((int64_t)question, (int64_t)prefix.size());
  fail_unless(url.find('?', question + 1) == std::string::npos, "more than one '?'");
  fail_unless(url.find('#') == std::string::npos);
  for (unsigned char c : url.substr(question + 1))
    fail_unless(g_ascii_isalnum(c) || strchr("-._~%=&", c) != nullptr,
                "byte 0x%02x left raw in the query", c);
  std::vector<std::string> params = split(url.substr(question + 1), '&');
  fail_unless_equals_int64((int64_t)params.size(), segment ? 2 : 1);
  fail_unless(params[0].compare(0, 2, "v=") == 0);
  fail_unless(params[0].find('=', 2) == std::string::npos);
  fail_unless(unescape(params[0].substr(2)) == id, "v= does not decode to the id");
  if (segment) fail_unless_equals_string(params[1].c_str(), segment);
}

// Compares a std::string result with an expected C string. (The gst-check
// macro would keep a pointer into a temporary std::string.)
#define ASSERT_STR_EQ(actual, expected)                                                            \
  do {                                                                                             \
    const std::string actual_ = (actual);                                                          \
    const char *expected_ = (expected);                                                            \
    fail_unless(actual_ == expected_, "'%s' is \"%s\", expected \"%s\"", #actual, actual_.c_str(), \
                expected_);                                                                        \
  } while (0)

struct ParseCase {
  const char *uri;
  const char *backend;
  const char *id;
};

struct RejectCase {
  const char *uri;
  const char *error;  // a substring of the reason
};

}  // namespace

GST_START_TEST(test_percent_encode) {
  ASSERT_STR_EQ(segdl::percent_encode(""), "");
  ASSERT_STR_EQ(segdl::percent_encode("AZaz09-._~"), "AZaz09-._~");
  ASSERT_STR_EQ(segdl::percent_encode("a b?c#d%e&f"), "a%20b%3Fc%23d%25e%26f");
  ASSERT_STR_EQ(segdl::percent_encode("../../etc/passwd"), "..%2F..%2Fetc%2Fpasswd");
  ASSERT_STR_EQ(segdl::percent_encode("+=;:@!$'()*,[]"),
                "%2B%3D%3B%3A%40%21%24%27%28%29%2A%2C%5B%5D");
  ASSERT_STR_EQ(segdl::percent_encode("\xC3\xA9\xFF\x80"), "%C3%A9%FF%80");
  ASSERT_STR_EQ(segdl::percent_encode(std::string("\0\x01\x7f", 3)), "%00%01%7F");

  // Every byte: unreserved ones as they are, all others as %XX, upper case.
  for (int c = 0; c < 256; c++) {
    const std::string in(1, static_cast<char>(c));
    const std::string out = segdl::percent_encode(in);
    const bool unreserved = g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      fail_unless(out == in, "0x%02x was encoded as %s", c, out.c_str());
    } else {
      char expected[4];
      g_snprintf(expected, sizeof expected, "%%%02X", c);
      fail_unless_equals_string(out.c_str(), expected);
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_protocol_urls) {
  static const char *kBackends[] = {"http://h:1", "http://h:1/", "http://h:1///"};
  for (const char *b : kBackends) {
    ASSERT_STR_EQ(segdl::status_url(b, "abc"), "http://h:1/status?v=abc");
    ASSERT_STR_EQ(segdl::segment_url(b, "abc", 3), "http://h:1/stream?v=abc&segment=3");
    ASSERT_STR_EQ(segdl::full_track_url(b, "abc"), "http://h:1/stream?v=abc");
  }
  // A base path is kept.
  ASSERT_STR_EQ(segdl::status_url("http://h:1/api", "x y"), "http://h:1/api/status?v=x%20y");
  ASSERT_STR_EQ(segdl::segment_url("https://h/a/b/", "id", 12345),
                "https://h/a/b/stream?v=id&segment=12345");
  ASSERT_STR_EQ(segdl::full_track_url("http://[::1]:8080/api/", "id"),
                "http://[::1]:8080/api/stream?v=id");
  ASSERT_STR_EQ(segdl::segment_url("http://h", "id", 0), "http://h/stream?v=id&segment=0");
}
GST_END_TEST;

GST_START_TEST(test_hostile_ids) {
  for (const std::string &id : hostile_ids()) {
    for (const char *backend : {"http://127.0.0.1:8080", "http://h:1/api/"}) {
      const std::string base =
          std::string(backend) == "http://h:1/api/" ? "http://h:1/api" : "http://127.0.0.1:8080";
      check_url(segdl::status_url(backend, id), base + "/status", id, nullptr);
      check_url(segdl::full_track_url(backend, id), base + "/stream", id, nullptr);
      check_url(segdl::segment_url(backend, id, 7), base + "/stream", id, "segment=7");
      check_url(segdl::segment_url(backend, id, 99999), base + "/stream", id, "segment=99999");
    }
  }
}
GST_END_TEST;

GST_START_TEST(test_is_http_url) {
  static const char *kYes[] = {
      "http://h",
      "http://h/",
      "https://example.com/api",
      "HTTP://H:8080",
      "http://[::1]:80/",
      "http://127.0.0.1:1/x?y=1#z",
      "http://u:p@h/path",
      "https://a.b-c_d~e:65535",
  };
  static const char *kNo[] = {
      "",
      "h",
      "http:",
      "http:/h",
      "http://",
      "http:///x",
      "ftp://h/",
      "segdl://h/x",
      "file:///etc/passwd",
      "http://h:0",
      "http://h:65536",
      "http://h:x",
      "http://h:",
      "http://[::1",
      "http://[zz]/",
      "http://h h/",
      "http://h/a b",
      "http://h/\x01",
      "http://h/\xc3\xa9",
      "http://:80/",
      "//h/x",
      "http://h\\x",
      "http://[1.2.3.4]/",
  };
  for (const char *u : kYes) fail_unless(segdl::is_http_url(u), "%s refused", u);
  for (const char *u : kNo) fail_unless(!segdl::is_http_url(u), "%s accepted", u);
  fail_unless(!segdl::is_http_url(std::string("http://h\0/x", 11)));
}
GST_END_TEST;

GST_START_TEST(test_parse_segdl_uri) {
  static const ParseCase kAccept[] = {
      {"segdl://127.0.0.1:8080/abc", "http://127.0.0.1:8080", "abc"},
      {"segdls://example.com/abc", "https://example.com", "abc"},
      {"SEGDL://H/abc", "http://H", "abc"},
      {"SegDLs://h:443/abc", "https://h:443", "abc"},
      {"segdl://h/abc/", "http://h", "abc"},
      {"segdl://h/abc///", "http://h", "abc"},
      {"segdl://h/api/abc", "http://h/api", "abc"},
      {"segdl://h:1/api/v1/abc", "http://h:1/api/v1", "abc"},
      {"segdl://h//api//abc", "http://h//api", "abc"},
      {"segdl://[::1]/abc", "http://[::1]", "abc"},
      {"segdl://[::1]:8080/abc", "http://[::1]:8080", "abc"},
      {"segdls://[2001:db8::7]:65535/p/abc", "https://[2001:db8::7]:65535/p", "abc"},
      {"segdl://h/a%20b%3Fc%23d%25e%26f", "http://h", "a b?c#d%e&f"},
      {"segdl://h/..%2F..%2Fetc%2Fpasswd", "http://h", "../../etc/passwd"},
      {"segdl://h/%c3%a9", "http://h", "\xC3\xA9"},
      {"segdl://h/%FF%80", "http://h", "\xFF\x80"},
      {"segdl://h/a+b", "http://h", "a+b"},
      {"segdl://h/..", "http://h", ".."},
      {"segdl://h/x:y@z", "http://h", "x:y@z"},
      {"segdl://h/%2e", "http://h", "."},
      {"segdl://my-host.example_1/abc", "http://my-host.example_1", "abc"},
  };
  for (const auto &c : kAccept) {
    std::string backend = "unchanged", id = "unchanged", error;
    fail_unless(segdl::parse_segdl_uri(c.uri, backend, id, error), "%s refused: %s", c.uri,
                error.c_str());
    fail_unless_equals_string(backend.c_str(), c.backend);
    fail_unless_equals_string(id.c_str(), c.id);
    fail_unless(segdl::is_http_url(backend), "backend %s is not an http URL", backend.c_str());
    // parse -> make -> parse is stable.
    const std::string again = segdl::make_segdl_uri(backend, id);
    std::string backend2, id2;
    fail_unless(segdl::parse_segdl_uri(again, backend2, id2, error), "%s refused: %s",
                again.c_str(), error.c_str());
    fail_unless_equals_string(backend2.c_str(), backend.c_str());
    fail_unless(id2 == id);
  }

  static const RejectCase kReject[] = {
      {"", "not an absolute URI"},
      {"abc", "not an absolute URI"},
      {"http://h/abc", "not a segdl:// or segdls:// URI"},
      {"segdlx://h/abc", "not a segdl:// or segdls:// URI"},
      {"segdl:abc", "no host"},
      {"segdl:/h/abc", "no host"},
      {"segdl:///abc", "no host"},
      {"segdl://:80/abc", "no host"},
      {"segdl://h", "no video id"},
      {"segdl://h/", "no video id"},
      {"segdl://h///", "no video id"},
      {"segdl://h:8080", "no video id"},
      {"segdl://h/abc?x=1", "query or a fragment"},
      {"segdl://h/abc#frag", "query or a fragment"},
      {"segdl://h/a?b#c", "query or a fragment"},
      {"segdl://h?v=abc", "query or a fragment"},
      {"segdl://h:0/abc", "out of range"},
      {"segdl://h:65536/abc", "out of range"},
      {"segdl://h:99999999999999999999/abc", "out of range"},
      {"segdl://h:/abc", "empty port"},
      {"segdl://h:8o/abc", "not a number"},
      {"segdl://h:+80/abc", "not a number"},
      {"segdl://h:-1/abc", "not a number"},
      {"segdl://h:80:81/abc", "not a number"},
      {"segdl://[::1/abc", "unterminated IPv6"},
      {"segdl://[::g]/abc", "bad IPv6"},
      {"segdl://[1.2.3.4]/abc", "bad IPv6"},
      {"segdl://[]/abc", "bad IPv6"},
      {"segdl://[::1]x/abc", "after the IPv6"},
      {"segdl://[::1]:/abc", "empty port"},
      {"segdl://user@h/abc", "user information"},
      {"segdl://u:p@h/abc", "user information"},
      {"segdl://h h/abc", "host contains"},
      {"segdl://h/a b", "must be percent-encoded"},
      {"segdl://h/a\x01", "must be percent-encoded"},
      {"segdl://h/\xC3\xA9", "must be percent-encoded"},
      {"segdl://h/a\\b", "must be percent-encoded"},
      {"segdl://h/a%2", "bad percent-escape"},
      {"segdl://h/a%", "bad percent-escape"},
      {"segdl://h/a%zz", "bad percent-escape"},
      {"segdl://h/a%00b", "NUL"},
      {"segdl://h/%00", "NUL"},
      {"segdl://h/ap%i/abc", "bad percent-escape"},
  };
  for (const auto &c : kReject) {
    std::string backend = "unchanged", id = "unchanged", error;
    fail_unless(!segdl::parse_segdl_uri(c.uri, backend, id, error), "%s accepted (%s, %s)", c.uri,
                backend.c_str(), id.c_str());
    fail_unless(error.find(c.error) != std::string::npos, "%s refused with \"%s\", expected \"%s\"",
                c.uri, error.c_str(), c.error);
  }
  std::string backend, id, error;
  fail_unless(!segdl::parse_segdl_uri(std::string("segdl://h/a\0b", 13), backend, id, error));
  fail_unless(error.find("NUL") != std::string::npos, "%s", error.c_str());
}
GST_END_TEST;

GST_START_TEST(test_make_segdl_uri) {
  ASSERT_STR_EQ(segdl::make_segdl_uri("http://127.0.0.1:8080", "abc"),
                "segdl://127.0.0.1:8080/abc");
  ASSERT_STR_EQ(segdl::make_segdl_uri("HTTPS://h/api/", "a b"), "segdls://h/api/a%20b");
  ASSERT_STR_EQ(segdl::make_segdl_uri("http://[::1]:8080", "../x"), "segdl://[::1]:8080/..%2Fx");

  // Pairs that have no segdl URI.
  static const char *kBadBackends[] = {
      "",           "ftp://h",    "h:80",         "http://",   "http://h?x=1", "http://h/#f",
      "http://u@h", "http://h:0", "http://h/a b", "segdl://h",
  };
  for (const char *b : kBadBackends)
    fail_unless(segdl::make_segdl_uri(b, "abc").empty(), "%s gave a URI", b);
  fail_unless(segdl::make_segdl_uri("http://h", "").empty());
  fail_unless(segdl::make_segdl_uri("http://h", std::string("a\0b", 3)).empty());

  // make -> parse gives back the backend (without trailing '/') and the id,
  // for every hostile id and every kind of backend.
  static const struct {
    const char *backend;
    const char *expected;
  } kBackends[] = {
      {"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
      {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
      {"https://example.com/api/v1//", "https://example.com/api/v1"},
      {"http://[::1]:8080/api", "http://[::1]:8080/api"},
      {"HTTP://h", "http://h"},
  };
  for (const auto &b : kBackends) {
    for (const std::string &id : hostile_ids()) {
      const std::string uri = segdl::make_segdl_uri(b.backend, id);
      if (id.find('\0') != std::string::npos) {
        fail_unless(uri.empty());
        continue;
      }
      fail_unless(!uri.empty(), "no URI for %s", b.backend);
      fail_unless(uri.find_first_of("?# ") == std::string::npos);
      std::string backend, parsed_id, error;
      fail_unless(segdl::parse_segdl_uri(uri, backend, parsed_id, error), "%.100s refused: %s",
                  uri.c_str(), error.c_str());
      fail_unless_equals_string(backend.c_str(), b.expected);
      fail_unless(parsed_id == id, "the id of %.100s did not survive", uri.c_str());
    }
  }
}
GST_END_TEST;

static Suite *urls_suite(void) {
  Suite *s = suite_create("segdl-urls");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_percent_encode);
  tcase_add_test(tc, test_protocol_urls);
  tcase_add_test(tc, test_hostile_ids);
  tcase_add_test(tc, test_is_http_url);
  tcase_add_test(tc, test_parse_segdl_uri);
  tcase_add_test(tc, test_make_segdl_uri);
  return s;
}

GST_CHECK_MAIN(urls);
