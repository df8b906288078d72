// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests of the status parser (gst/segdl/status.cpp) against the
 * normative description in docs/protocol.md. */
#include <gst/check/gstcheck.h>

#include <string>
#include <vector>

#include "segdl/status.h"

using segdl::parse_status;
using segdl::Status;
using segdl::StatusLimits;
using segdl::TrackState;

namespace {

typedef std::vector<int64_t> Indices;

// Parses `body`, failing the test (with the parser's reason) if it is refused.
Status accept_at(const char *file, int line, const std::string &body,
                 const StatusLimits &limits = StatusLimits()) {
  Status st;
  std::string error;
  if (!parse_status(body.data(), body.size(), st, error, limits))
    ck_abort_msg("%s:%d: refused %.200s: %s", file, line, body.c_str(), error.c_str());
  return st;
}

// Parses `body`, failing the test if it is accepted or if the reason does not
// contain `expected`. Returns the reason.
std::string reject_at(const char *file, int line, const std::string &body, const char *expected,
                      const StatusLimits &limits = StatusLimits()) {
  Status st;
  std::string error;
  if (parse_status(body.data(), body.size(), st, error, limits))
    ck_abort_msg("%s:%d: accepted %.200s", file, line, body.c_str());
  if (error.find(expected) == std::string::npos)
    ck_abort_msg("%s:%d: refused %.200s with \"%s\", expected \"%s\"", file, line, body.c_str(),
                 error.c_str(), expected);
  return error;
}

#define ACCEPT(...) accept_at(__FILE__, __LINE__, __VA_ARGS__)
#define REJECT(...) reject_at(__FILE__, __LINE__, __VA_ARGS__)

std::string indices_to_string(const Indices &v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

#define ASSERT_READY(st, ...)                                                                 \
  do {                                                                                        \
    const Indices expected_ = __VA_ARGS__;                                                    \
    fail_unless((st).ready == expected_, "ready is %s, expected %s",                          \
                indices_to_string((st).ready).c_str(), indices_to_string(expected_).c_str()); \
  } while (0)

}  // namespace

GST_START_TEST(test_deployed_form) {
  Status st = ACCEPT("{\"ready\": [0, 1, 2], \"totalSegments\": 8}");
  ASSERT_READY(st, {0, 1, 2});
  fail_unless(st.total_segments.has_value());
  fail_unless_equals_int64(*st.total_segments, 8);
  fail_unless(st.state == TrackState::Unknown);
  fail_unless(st.error.empty());
  fail_unless(!st.duration && !st.segment_duration && !st.first_segment_duration);
  fail_unless(st.mime_type.empty());
  fail_unless_equals_int64(st.contiguous_ready(), 3);
  fail_unless(st.is_ready(0) && st.is_ready(2));
  fail_unless(!st.is_ready(3) && !st.is_ready(-1) && !st.is_ready(7));

  // totalSegments may be missing while the backend does not know it yet.
  st = ACCEPT("{\"ready\": [0]}");
  ASSERT_READY(st, {0});
  fail_unless(!st.total_segments.has_value());

  // A backend with nothing yet.
  st = ACCEPT("{\"ready\": []}");
  fail_unless(st.ready.empty());
  fail_unless_equals_int64(st.contiguous_ready(), 0);
  st = ACCEPT("{}");
  fail_unless(st.ready.empty() && !st.total_segments);
  st = ACCEPT("{\"totalSegments\": 4}");
  fail_unless(st.ready.empty());
  fail_unless_equals_int64(*st.total_segments, 4);

  // null means "not known yet", like absence.
  st = ACCEPT("{\"ready\": null, \"totalSegments\": null}");
  fail_unless(st.ready.empty() && !st.total_segments);

  // Whitespace, a UTF-8 BOM and unknown fields of every kind are fine.
  st = ACCEPT(
      "\xEF\xBB\xBF\n\t{ \"ready\" : [ 1 ] , \"x\": {\"y\": [true, false, null, \"s\"]},"
      " \"z\": -1.5e-3 }\r\n");
  ASSERT_READY(st, {1});
  fail_unless_equals_int64(st.contiguous_ready(), 0);
}
GST_END_TEST;

GST_START_TEST(test_synonyms) {
  Status st = ACCEPT("{\"available_segments\": [2, 0], \"total_segments\": 5}");
  ASSERT_READY(st, {0, 2});
  fail_unless_equals_int64(*st.total_segments, 5);

  // A count of leading segments.
  st = ACCEPT("{\"ready\": 3}");
  ASSERT_READY(st, {0, 1, 2});
  st = ACCEPT("{\"available_segments\": 4, \"totalSegments\": 10}");
  ASSERT_READY(st, {0, 1, 2, 3});
  st = ACCEPT("{\"ready\": 0}");
  fail_unless(st.ready.empty());
  st = ACCEPT("{\"ready\": 2.0}");
  ASSERT_READY(st, {0, 1});
  // A count above the total is clamped to it.
  st = ACCEPT("{\"available_segments\": 9, \"total_segments\": 3}");
  ASSERT_READY(st, {0, 1, 2});

  // The primary names win when both spellings are present.
  st = ACCEPT(
      "{\"available_segments\": [5], \"ready\": [1], \"total_segments\": 2,"
      " \"totalSegments\": 7}");
  ASSERT_READY(st, {1});
  fail_unless_equals_int64(*st.total_segments, 7);

  st = ACCEPT("{\"ready\": [0], \"status\": \"complete\", \"totalSegments\": 1}");
  fail_unless(st.state == TrackState::Complete);
  st = ACCEPT("{\"ready\": [0], \"state\": \"error\", \"status\": \"complete\"}");
  fail_unless(st.state == TrackState::Error);

  st = ACCEPT("{\"mimeType\": \"audio/mp4\"}");
  fail_unless_equals_string(st.mime_type.c_str(), "audio/mp4");
  st = ACCEPT("{\"mime_type\": \"audio/ogg; codecs=opus\", \"mimeType\": \"audio/mp4\"}");
  fail_unless_equals_string(st.mime_type.c_str(), "audio/ogg; codecs=opus");
  st = ACCEPT("{\"segmentDuration\": 30, \"firstSegmentDuration\": 15}");
  fail_unless_equals_float(*st.segment_duration, 30.0);
  fail_unless_equals_float(*st.first_segment_duration, 15.0);
}
GST_END_TEST;

GST_START_TEST(test_states) {
  static const struct {
    const char *text;
    TrackState state;
  } kCases[] = {
      {"processing", TrackState::Processing},
      {"PENDING", TrackState::Processing},
      {"Running", TrackState::Processing},
      {"in_progress", TrackState::Processing},
      {"In Progress", TrackState::Processing},
      {"in-progress", TrackState::Processing},
      {"complete", TrackState::Complete},
      {"Completed", TrackState::Complete},
      {"DONE", TrackState::Complete},
      {"ready", TrackState::Complete},
      {"finished", TrackState::Complete},
      {" complete ", TrackState::Complete},
      {"error", TrackState::Error},
      {"Failed", TrackState::Error},
      {"", TrackState::Unknown},
      {"ok", TrackState::Unknown},
      {"completely", TrackState::Unknown},
      {"queued?", TrackState::Unknown},
  };
  for (const auto &c : kCases) {
    std::string body = std::string("{\"state\": \"") + c.text + "\"}";
    Status st = ACCEPT(body);
    fail_unless(st.state == c.state, "\"%s\" gave %s, expected %s", c.text,
                segdl::track_state_name(st.state), segdl::track_state_name(c.state));
  }
  // A state that is not a string is not understood, and not fatal.
  Status st = ACCEPT("{\"status\": 200, \"ready\": [0]}");
  fail_unless(st.state == TrackState::Unknown);
  ASSERT_READY(st, {0});
  st = ACCEPT("{\"state\": [\"complete\"]}");
  fail_unless(st.state == TrackState::Unknown);

  fail_unless_equals_string(segdl::track_state_name(TrackState::Unknown), "unknown");
  fail_unless_equals_string(segdl::track_state_name(TrackState::Processing), "processing");
  fail_unless_equals_string(segdl::track_state_name(TrackState::Complete), "complete");
  fail_unless_equals_string(segdl::track_state_name(TrackState::Error), "error");
}
GST_END_TEST;

GST_START_TEST(test_error_text) {
  Status st = ACCEPT("{\"state\": \"failed\", \"error\": \"transcoder crashed\"}");
  fail_unless(st.state == TrackState::Error);
  fail_unless_equals_string(st.error.c_str(), "transcoder crashed");
  st = ACCEPT("{\"state\": \"error\", \"message\": \"no such video\"}");
  fail_unless_equals_string(st.error.c_str(), "no such video");
  // `error` wins over `message`; a non-string `error` is skipped.
  st = ACCEPT("{\"state\": \"error\", \"error\": \"a\", \"message\": \"b\"}");
  fail_unless_equals_string(st.error.c_str(), "a");
  st = ACCEPT("{\"state\": \"error\", \"error\": {\"code\": 3}, \"message\": \"b\"}");
  fail_unless_equals_string(st.error.c_str(), "b");
  // An error text and no state at all is a failure report.
  st = ACCEPT("{\"error\": \"video not found\"}");
  fail_unless(st.state == TrackState::Error);
  fail_unless_equals_string(st.error.c_str(), "video not found");
  // ... but an explicit state is believed, and an empty text or a bare
  // "message" does not make an error.
  st = ACCEPT("{\"state\": \"processing\", \"error\": \"segment 3 retried\"}");
  fail_unless(st.state == TrackState::Processing);
  st = ACCEPT("{\"ready\": [0], \"error\": \"\"}");
  fail_unless(st.state == TrackState::Unknown);
  st = ACCEPT("{\"ready\": [0], \"message\": \"hello\"}");
  fail_unless(st.state == TrackState::Unknown);
  st = ACCEPT("{\"ready\": [0], \"error\": null}");
  fail_unless(st.state == TrackState::Unknown);
}
GST_END_TEST;

GST_START_TEST(test_rich_document) {
  Status st = ACCEPT(
      "{\"ready\": [0, 1, 2, 3], \"totalSegments\": 4, \"state\": \"complete\","
      " \"duration\": 103.5, \"segment_duration\": 30, \"first_segment_duration\": \"15.0\","
      " \"mime_type\": \"audio/mp4\", \"server\": {\"version\": \"2.1\"}}");
  ASSERT_READY(st, {0, 1, 2, 3});
  fail_unless_equals_int64(*st.total_segments, 4);
  fail_unless(st.state == TrackState::Complete);
  fail_unless_equals_float(*st.duration, 103.5);
  fail_unless_equals_float(*st.segment_duration, 30.0);
  fail_unless_equals_float(*st.first_segment_duration, 15.0);
  fail_unless_equals_string(st.mime_type.c_str(), "audio/mp4");
  fail_unless_equals_int64(st.contiguous_ready(), 4);

  // Complete without a total: the total stays unknown, the caller decides.
  st = ACCEPT("{\"ready\": [0, 1], \"state\": \"done\"}");
  fail_unless(st.state == TrackState::Complete);
  fail_unless(!st.total_segments.has_value());
}
GST_END_TEST;

GST_START_TEST(test_durations) {
  Status st = ACCEPT(
      "{\"duration\": \" 12.25 \", \"segment_duration\": \"3e1\","
      " \"first_segment_duration\": 15}");
  fail_unless_equals_float(*st.duration, 12.25);
  fail_unless_equals_float(*st.segment_duration, 30.0);
  fail_unless_equals_float(*st.first_segment_duration, 15.0);

  // Bad optional values are ignored, never fatal.
  static const char *kBad[] = {
      "-1",           "0",     "\"-5\"", "\"nan\"",    "\"NaN\"", "\"inf\"", "\"-inf\"",
      "\"Infinity\"", "1e400", "-1e400", "\"1e400\"",  "\"abc\"", "\"12s\"", "\"0x10\"",
      "\"\"",         "true",  "[1]",    "{\"s\": 1}", "1e10",    "\"1,5\"", "\"1.5.2\"",
      "\". \"",
  };
  for (const char *bad : kBad) {
    std::string body = std::string("{\"ready\": [0], \"duration\": ") + bad +
                       ", \"segment_duration\": " + bad + ", \"first_segment_duration\": " + bad +
                       ", \"mime_type\": " + bad + "}";
    st = ACCEPT(body);
    fail_unless(!st.duration && !st.segment_duration && !st.first_segment_duration,
                "%s was not ignored", bad);
    fail_unless(st.mime_type.empty(), "mime_type %s was not ignored", bad);
    ASSERT_READY(st, {0});
  }
  // A mime type with control characters or of absurd length is ignored.
  st = ACCEPT("{\"mime_type\": \"audio/mp4\\n\"}");
  fail_unless(st.mime_type.empty());
  st = ACCEPT("{\"mime_type\": \"" + std::string(300, 'a') + "\"}");
  fail_unless(st.mime_type.empty());
}
GST_END_TEST;

GST_START_TEST(test_integers) {
  // Floats with integral values are integers.
  Status st = ACCEPT("{\"ready\": [0.0, 1e0, 2.000, 30E-1], \"totalSegments\": 8.0}");
  ASSERT_READY(st, {0, 1, 2, 3});
  fail_unless_equals_int64(*st.total_segments, 8);
  st = ACCEPT("{\"ready\": [-0], \"totalSegments\": 1e1}");
  ASSERT_READY(st, {0});
  fail_unless_equals_int64(*st.total_segments, 10);

  REJECT("{\"ready\": [0, 1.5]}", "ready[1] is not an integer (1.5)");
  REJECT("{\"ready\": [0, \"1\"]}", "ready[1] is not an integer (a string)");
  REJECT("{\"ready\": [null]}", "ready[0] is not an integer (null)");
  REJECT("{\"ready\": [[0]]}", "ready[0] is not an integer (a list)");
  REJECT("{\"available_segments\": [true]}", "available_segments[0] is not an integer");
  REJECT("{\"totalSegments\": 2.5}", "totalSegments is not an integer (2.5)");
  REJECT("{\"totalSegments\": \"8\"}", "totalSegments is not an integer (a string)");
  REJECT("{\"total_segments\": false}", "total_segments is not an integer (a boolean)");
  REJECT("{\"ready\": 2.5}", "ready is not a list or a count (2.5)");

  // Integers too big for 64 bits are not wrapped or saturated into negative
  // numbers (json-glib 1.6 would): they are reported as what they are.
  REJECT("{\"totalSegments\": 18446744073709551617}",
         "totalSegments is too large (1.84467e+19, limit 100000)");
  REJECT("{\"totalSegments\": 9223372036854775809}", "totalSegments is too large");
  REJECT("{\"totalSegments\": -99999999999999999999}", "totalSegments is negative (-1e+20)");
  REJECT("{\"ready\": [18446744073709551616]}", "ready index is too large");
  REJECT("{\"ready\": [9223372036854775807]}", "ready index is too large");
  REJECT("{\"ready\": [-9223372036854775808]}", "ready index is negative");
  REJECT("{\"ready\": 99999999999999999999}", "ready count is too large (1e+20, limit 100000)");
  REJECT("{\"ready\": 1e300}", "ready count is too large");
  // ... and in a field nobody reads they do no harm.
  st = ACCEPT("{\"id\": 123456789012345678901234567890, \"ready\": [1]}");
  ASSERT_READY(st, {1});
}
GST_END_TEST;

GST_START_TEST(test_normalisation) {
  Status st = ACCEPT("{\"ready\": [5, 3, 3, 0, 9, 7, 6], \"totalSegments\": 6}");
  ASSERT_READY(st, {0, 3, 5});
  fail_unless_equals_int64(st.contiguous_ready(), 1);

  // No total: nothing is dropped.
  st = ACCEPT("{\"ready\": [4, 2, 2, 1, 0, 99999]}");
  ASSERT_READY(st, {0, 1, 2, 4, 99999});
  fail_unless_equals_int64(st.contiguous_ready(), 3);

  // A total of 0 leaves nothing ready.
  st = ACCEPT("{\"ready\": [0, 1], \"totalSegments\": 0}");
  fail_unless(st.ready.empty());
  fail_unless_equals_int64(*st.total_segments, 0);

  st = ACCEPT("{\"ready\": [1, 2, 3]}");
  fail_unless_equals_int64(st.contiguous_ready(), 0);
  fail_unless(st.is_ready(3) && !st.is_ready(0));
}
GST_END_TEST;

GST_START_TEST(test_contiguous_ready) {
  Status st;
  fail_unless_equals_int64(st.contiguous_ready(), 0);
  fail_unless(!st.is_ready(0));
  st.ready = {0};
  fail_unless_equals_int64(st.contiguous_ready(), 1);
  st.ready = {0, 1, 2, 4, 5};
  fail_unless_equals_int64(st.contiguous_ready(), 3);
  fail_unless(st.is_ready(4) && !st.is_ready(3));
  st.ready.clear();
  for (int64_t i = 0; i < 1000; i++)
    if (i != 777) st.ready.push_back(i);
  fail_unless_equals_int64(st.contiguous_ready(), 777);
  st.ready.push_back(1000);
  st.ready.insert(st.ready.begin() + 777, 777);
  fail_unless_equals_int64(st.contiguous_ready(), 1001);
}
GST_END_TEST;

GST_START_TEST(test_rejections) {
  REJECT("not json", "status is not JSON");
  REJECT("{\"ready\": [0, 1,]}", "status is not JSON");
  REJECT("{\"ready\": [0 1]}", "status is not JSON");
  REJECT("{\"ready\" [0]}", "status is not JSON");
  REJECT("{\"ready\": [0]", "status is not JSON");
  REJECT("{\"ready\": \"abc", "status is not JSON: unterminated string");
  REJECT("{\"ready\": [0]}}", "status is not JSON");
  REJECT("{\"ready\": [0]} {}", "trailing data");
  REJECT("{\"ready\": [0]} x", "status is not JSON");
  REJECT("", "status is empty");
  REJECT(" \n\t ", "status is empty");
  REJECT("\xEF\xBB\xBF", "status is empty");
  REJECT("{\"x\": \"\xff\xfe\"}", "status is not JSON");  // not UTF-8
  REJECT(std::string("{\"ready\": [0]}\0", 15), "status is not JSON");
  REJECT(std::string("{\"x\": \"a\0b\"}", 12), "status is not JSON");

  // What json-glib 1.6 tolerates but JSON does not.
  REJECT("{\"ready\": [0] /* c */}", "status is not JSON: unexpected '/'");
  REJECT("{'ready': [0]}", "status is not JSON: unexpected '''");
  REJECT("{\"ready\": [0x10]}", "malformed number");
  REJECT("{\"ready\": [01]}", "malformed number");
  REJECT("{\"ready\": [.5]}", "status is not JSON");
  REJECT("{\"ready\": [+1]}", "status is not JSON");
  REJECT("{\"ready\": [1.]}", "malformed number");
  REJECT("{\"ready\": [1e]}", "malformed number");
  REJECT("{\"ready\": [NaN]}", "unexpected word 'NaN'");
  REJECT("{\"ready\": [Infinity]}", "unexpected word");
  REJECT("{\"ready\": True}", "unexpected word 'True'");
  REJECT("{\"x\": \"a\nb\"}", "control character");
  REJECT("{\"x\": \"\\q\"}", "bad escape");
  REJECT("{\"x\": \"\\u12G4\"}", "bad \\u escape");

  REJECT("[0, 1, 2]", "status is not a JSON object (got a list)");
  REJECT("3", "status is not a JSON object (got 3)");
  REJECT("\"ready\"", "status is not a JSON object (got a string)");
  REJECT("null", "status is not a JSON object (got null)");

  REJECT("{\"totalSegments\": -3}", "totalSegments is negative (-3)");
  REJECT("{\"total_segments\": -1, \"ready\": [0]}", "total_segments is negative (-1)");
  REJECT("{\"totalSegments\": 100000}", "totalSegments is too large (100000, limit 100000)");
  ACCEPT("{\"totalSegments\": 99999}");
  REJECT("{\"ready\": [0, -1]}", "ready index is negative (-1)");
  REJECT("{\"ready\": [100000]}", "ready index is too large (100000, limit 100000)");
  ACCEPT("{\"ready\": [99999]}");
  REJECT("{\"available_segments\": [-2]}", "available_segments index is negative (-2)");
  REJECT("{\"ready\": \"0,1,2\"}", "ready is not a list or a count (a string)");
  REJECT("{\"ready\": {\"0\": true}}", "ready is not a list or a count (an object)");
  REJECT("{\"ready\": true}", "ready is not a list or a count (a boolean)");
  REJECT("{\"ready\": -2}", "ready count is negative (-2)");
  REJECT("{\"ready\": 100001}", "ready count is too large (100001, limit 100000)");
  Status st = ACCEPT("{\"ready\": 100000}");
  fail_unless_equals_int64((int64_t)st.ready.size(), 100000);
  fail_unless_equals_int64(st.ready.back(), 99999);

  // A ready list longer than max_segments, with small limits.
  StatusLimits small;
  small.max_segments = 10;
  ACCEPT("{\"ready\": [0,1,2,3,4,5,6,7,8,9]}", small);
  ACCEPT("{\"ready\": [0,0,0,0,0,0,0,0,0,0]}", small);
  REJECT("{\"ready\": [0,0,0,0,0,0,0,0,0,0,0]}", "ready list is too long (11 entries, limit 10)",
         small);
  REJECT("{\"ready\": [10]}", "ready index is too large (10, limit 10)", small);
  REJECT("{\"totalSegments\": 10}", "totalSegments is too large (10, limit 10)", small);
}
GST_END_TEST;

GST_START_TEST(test_body_size) {
  // Refused by size before any parsing: this body would also be too deep.
  std::string huge(2000000, '[');
  std::string error = REJECT(huge, "status body too large (2000000 bytes, limit 1048576)");
  fail_unless(error.find("deeper") == std::string::npos);

  // A 2 MB valid document is refused too.
  std::string big = "{\"ready\": [0], \"pad\": \"" + std::string(2000000, 'x') + "\"}";
  REJECT(big, "status body too large");

  // Exactly at the limit is fine.
  std::string body = "{\"ready\": [0]}";
  body.append(1024 * 1024 - body.size(), ' ');
  fail_unless_equals_int64((int64_t)body.size(), 1024 * 1024);
  Status st = ACCEPT(body);
  ASSERT_READY(st, {0});
  body.push_back(' ');
  REJECT(body, "status body too large (1048577 bytes, limit 1048576)");

  StatusLimits small;
  small.max_body_bytes = 16;
  ACCEPT("{\"ready\": [0,1]}", small);
  REJECT("{\"ready\": [0, 1]}", "status body too large (17 bytes, limit 16)", small);
}
GST_END_TEST;

GST_START_TEST(test_depth) {
  // 100k '[' is refused without recursing (a recursive parser would
  // overflow the stack here).
  std::string bomb(100000, '[');
  REJECT(bomb, "status nests deeper than 32 levels");
  // Just under the size limit, inside an object.
  std::string bomb2 = "{\"x\": " + std::string(1000000, '[');
  REJECT(bomb2, "status nests deeper than 32 levels");
  std::string bomb3;
  for (int i = 0; i < 100000; i++) bomb3 += "{\"a\":";
  REJECT(bomb3, "status nests deeper than 32 levels");

  // Depth 32 is allowed, 33 is not (the top-level object counts as 1).
  std::string ok = "{\"x\": " + std::string(31, '[') + std::string(31, ']') + ", \"ready\": [2]}";
  Status st = ACCEPT(ok);
  ASSERT_READY(st, {2});
  std::string deep = "{\"x\": " + std::string(32, '[') + std::string(32, ']') + "}";
  REJECT(deep, "status nests deeper than 32 levels");

  StatusLimits shallow;
  shallow.max_depth = 2;
  ACCEPT("{\"ready\": [0]}", shallow);
  REJECT("{\"x\": {\"y\": []}}", "status nests deeper than 2 levels", shallow);

  // Brackets inside strings do not count, escaped quotes do not end strings.
  st = ACCEPT("{\"x\": \"" + std::string(5000, '[') + "\", \"ready\": [1]}");
  ASSERT_READY(st, {1});
  st = ACCEPT("{\"x\": \"\\\"" + std::string(5000, '{') + "\\\\\", \"ready\": [4]}");
  ASSERT_READY(st, {4});
  // A quote hidden in a comment must not hide brackets from the depth check.
  std::string sneaky =
      "{\"a\": /* \" */ " + std::string(5000, '[') + std::string(5000, ']') + " /* \" */}";
  REJECT(sneaky, "status is not JSON");
  std::string sneaky2 = "{'a': '\"', \"b\": " + std::string(5000, '[') + "}";
  REJECT(sneaky2, "status is not JSON");
}
GST_END_TEST;

static Suite *status_suite(void) {
  Suite *s = suite_create("segdl-status");
  TCase *tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_deployed_form);
  tcase_add_test(tc, test_synonyms);
  tcase_add_test(tc, test_states);
  tcase_add_test(tc, test_error_text);
  tcase_add_test(tc, test_rich_document);
  tcase_add_test(tc, test_durations);
  tcase_add_test(tc, test_integers);
  tcase_add_test(tc, test_normalisation);
  tcase_add_test(tc, test_contiguous_ready);
  tcase_add_test(tc, test_rejections);
  tcase_add_test(tc, test_body_size);
  tcase_add_test(tc, test_depth);
  return s;
}

GST_CHECK_MAIN(status);
