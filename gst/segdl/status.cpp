// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — backend status model and parser.
 *
 * docs/protocol.md ("The status document") is the normative description of
 * what is accepted here; keep the two in step.
 *
 * Parsing runs in two passes:
 *   1. a strict lexical pre-scan of the raw bytes (no allocation, no
 *      recursion) that enforces the nesting limit and the JSON token grammar,
 *      because json-glib 1.6 recurses once per nesting level (a megabyte of
 *      '[' would exhaust the stack) and is laxer than RFC 8259 (it takes
 *      comments, single-quoted strings, hex numbers and silently wraps
 *      integers that do not fit in 64 bits);
 *   2. json-glib builds the tree, and the fields are read from it.
 */
#include "segdl/status.h"

#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstdarg>
#include <cstring>
#include <cmath>
#include <initializer_list>

namespace segdl {

const char *track_state_name(TrackState s) {
  switch (s) {
    case TrackState::Unknown:
      return "unknown";
    case TrackState::Processing:
      return "processing";
    case TrackState::Complete:
      return "complete";
    case TrackState::Error:
      return "error";
  }
  return "unknown";
}

bool Status::is_ready(int64_t n) const {
  return std::binary_search(ready.begin(), ready.end(), n);
}

// `ready` is sorted, unique and non-negative, so ready[i] >= i for every i,
// and once ready[i] > i it stays so: the contiguous prefix is the partition
// point of "ready[i] == i".
int64_t Status::contiguous_ready() const {
  size_t lo = 0, hi = ready.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ready[mid] == static_cast<int64_t>(mid))
      lo = mid + 1;
    else
      hi = mid;
  }
  return static_cast<int64_t>(lo);
}

namespace {

// An integer literal with more digits than this may not fit in int64_t; it is
// handed to json-glib as a floating-point literal instead (see widen_at).
constexpr size_t kMaxSafeIntegerDigits = 18;

// Durations above this many seconds (about 31 years) are nonsense and are
// ignored like any other bad optional value.
constexpr double kMaxSeconds = 1e9;

// Optional text fields longer than this are ignored.
constexpr size_t kMaxMimeTypeBytes = 255;

std::string printf_string(const char *format, ...) G_GNUC_PRINTF(1, 2);

std::string printf_string(const char *format, ...) {
  va_list args;
  va_start(args, format);
  g_autofree char *s = g_strdup_vprintf(format, args);
  va_end(args);
  return s;
}

std::string describe_byte(unsigned char c) {
  if (c >= 0x20 && c < 0x7f) return printf_string("'%c'", c);
  return printf_string("byte 0x%02X", c);
}

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Result of the lexical pre-scan.
struct Scan {
  bool empty = true;             // no token at all (empty or blank body)
  std::vector<size_t> widen_at;  // offsets just after over-long integer literals
};

// The lexical pre-scan. Walks the bytes once, keeps only a depth counter,
// checks every token against RFC 8259 (strings with their escapes, numbers,
// true/false/null, punctuation) and that exactly one value is present. The
// arrangement of tokens (a ':' where a ',' belongs, ...) is left to json-glib,
// which can no longer be led astray: nothing it could read as a comment or
// as a string is left unchecked here, so its depth is ours.
bool prescan(const char *data, size_t len, int max_depth, Scan &scan, std::string &error) {
  size_t i = 0;
  if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) i = 3;  // UTF-8 BOM, json-glib skips it
  int depth = 0;
  bool done = false;  // a whole top-level value has been read

  auto fail = [&](const std::string &what, size_t at) {
    error = printf_string("status is not JSON: %s at byte %" G_GSIZE_FORMAT, what.c_str(), at);
    return false;
  };

  while (true) {
    while (i < len && is_json_space(data[i])) i++;
    if (i >= len) break;
    if (done) return fail("trailing data after the JSON value", i);
    scan.empty = false;
    const char c = data[i];
    const size_t start = i;
    if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        error = printf_string("status nests deeper than %d levels", max_depth);
        return false;
      }
      i++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return fail(printf_string("unbalanced '%c'", c), i);
      i++;
      if (--depth == 0) done = true;
    } else if (c == ',' || c == ':') {
      if (depth == 0) return fail("unexpected " + describe_byte(c), i);
      i++;
    } else if (c == '"') {
      i++;
      while (true) {
        if (i >= len) return fail("unterminated string", start);
        const unsigned char b = data[i];
        if (b == '"') {
          i++;
          break;
        }
        if (b < 0x20) return fail("control character in a string", i);
        if (b == '\\') {
          if (i + 1 >= len) return fail("unterminated string", start);
          const char e = data[i + 1];
          if (e == 'u') {
            if (i + 6 > len) return fail("unterminated string", start);
            for (size_t k = i + 2; k < i + 6; k++)
              if (!g_ascii_isxdigit(data[k])) return fail("bad \\u escape", i);
            i += 6;
          } else if (strchr("\"\\/bfnrt", e) != nullptr && e != '\0') {
            i += 2;
          } else {
            return fail("bad escape in a string", i);
          }
        } else {
          i++;
        }
      }
      if (depth == 0) done = true;
    } else if (c == '-' || is_digit(c)) {
      // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
      bool integral = true;
      if (data[i] == '-') i++;
      const size_t int_start = i;
      if (i < len && data[i] == '0') {
        i++;
      } else if (i < len && is_digit(data[i])) {
        while (i < len && is_digit(data[i])) i++;
      } else {
        return fail("malformed number", start);
      }
      const size_t int_digits = i - int_start;
      if (i < len && data[i] == '.') {
        integral = false;
        i++;
        if (i >= len || !is_digit(data[i])) return fail("malformed number", start);
        while (i < len && is_digit(data[i])) i++;
      }
      if (i < len && (data[i] == 'e' || data[i] == 'E')) {
        integral = false;
        i++;
        if (i < len && (data[i] == '+' || data[i] == '-')) i++;
        if (i >= len || !is_digit(data[i])) return fail("malformed number", start);
        while (i < len && is_digit(data[i])) i++;
      }
      if (i < len &&
          (g_ascii_isalnum(data[i]) || data[i] == '.' || data[i] == '+' || data[i] == '-'))
        return fail("malformed number", start);
      if (integral && int_digits > kMaxSafeIntegerDigits) scan.widen_at.push_back(i);
      if (depth == 0) done = true;
    } else if (g_ascii_isalpha(c)) {
      while (i < len && g_ascii_isalnum(data[i])) i++;
      const std::string word(data + start, i - start);
      if (word != "true" && word != "false" && word != "null")
        return fail("unexpected word '" + word.substr(0, 20) + "'", start);
      if (depth == 0) done = true;
    } else {
      return fail("unexpected " + describe_byte(static_cast<unsigned char>(c)), i);
    }
  }
  if (depth != 0) return fail("unexpected end (unclosed '{' or '[')", len);
  return true;
}

// The first of `names` present in `obj` with a non-null value; null counts as
// absent (serialisers write None/nil as null for "not known yet").
JsonNode *find_member(JsonObject *obj, std::initializer_list<const char *> names,
                      const char **found = nullptr) {
  for (const char *name : names) {
    JsonNode *node = json_object_get_member(obj, name);
    if (node != nullptr && !JSON_NODE_HOLDS_NULL(node)) {
      if (found != nullptr) *found = name;
      return node;
    }
  }
  return nullptr;
}

bool holds_number(JsonNode *node) {
  if (!JSON_NODE_HOLDS_VALUE(node)) return false;
  GType t = json_node_get_value_type(node);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

// A short description of a value for error messages: the number itself, or
// its kind ("a string", "a list", ...).
std::string describe_node(JsonNode *node) {
  if (node == nullptr || JSON_NODE_HOLDS_NULL(node)) return "null";
  if (JSON_NODE_HOLDS_ARRAY(node)) return "a list";
  if (JSON_NODE_HOLDS_OBJECT(node)) return "an object";
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_INT64) return printf_string("%" G_GINT64_FORMAT, json_node_get_int(node));
  if (t == G_TYPE_DOUBLE) {
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    return g_ascii_formatd(buf, sizeof buf, "%g", json_node_get_double(node));
  }
  if (t == G_TYPE_BOOLEAN) return "a boolean";
  if (t == G_TYPE_STRING) return "a string";
  return "an unknown value";
}

enum class IntRead { Ok, NotInteger, Negative, TooLarge };

// An integer in 0..max from a JSON number: an integer literal, or a
// floating-point one with an integral value (3.0, 1e3). Integral values
// outside int64_t are still classified as negative or too large.
IntRead read_int(JsonNode *node, int64_t max, int64_t &out) {
  if (node == nullptr || !holds_number(node)) return IntRead::NotInteger;
  int64_t v;
  if (json_node_get_value_type(node) == G_TYPE_INT64) {
    v = json_node_get_int(node);
  } else {
    const double d = json_node_get_double(node);
    if (!std::isfinite(d) || std::floor(d) != d) return IntRead::NotInteger;
    // 2^63 is exactly representable; every integral double below it in
    // magnitude converts exactly.
    if (d < -9223372036854775808.0) return IntRead::Negative;
    if (d >= 9223372036854775808.0) return IntRead::TooLarge;
    v = static_cast<int64_t>(d);
  }
  if (v < 0) return IntRead::Negative;
  if (v > max) return IntRead::TooLarge;
  out = v;
  return IntRead::Ok;
}

// The error text for a failed read_int(); `what` names the value
// ("totalSegments", "ready index"), `limit` is limits.max_segments.
std::string int_error(IntRead r, const std::string &what, JsonNode *node, int64_t limit) {
  const std::string value = describe_node(node);
  switch (r) {
    case IntRead::NotInteger:
      return what + " is not an integer (" + value + ")";
    case IntRead::Negative:
      return what + " is negative (" + value + ")";
    case IntRead::TooLarge:
      return printf_string("%s is too large (%s, limit %" G_GINT64_FORMAT ")", what.c_str(),
                           value.c_str(), limit);
    case IntRead::Ok:
      break;
  }
  return what + " is invalid";
}

// A strict decimal number in a string: optional blanks, digits with an
// optional fraction and exponent (no sign other than in the exponent, no hex,
// no "inf"/"nan"). Returns false when the text is not one.
bool parse_decimal_string(const char *s, double &out) {
  while (*s == ' ' || *s == '\t') s++;
  const char *p = s;
  if (*p == '+') p++;
  bool digits = false;
  while (is_digit(*p)) p++, digits = true;
  if (*p == '.') {
    p++;
    while (is_digit(*p)) p++, digits = true;
  }
  if (!digits) return false;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-') p++;
    if (!is_digit(*p)) return false;
    while (is_digit(*p)) p++;
  }
  const char *end_of_number = p;
  while (*p == ' ' || *p == '\t') p++;
  if (*p != '\0') return false;
  std::string number(s, end_of_number - s);
  out = g_ascii_strtod(number.c_str(), nullptr);
  return true;
}

// A duration in seconds: a number or a numeric string, finite, above zero and
// at most kMaxSeconds. Anything else is treated as absent (a bad optional
// field must not stop playback).
std::optional<double> read_seconds(JsonObject *obj, std::initializer_list<const char *> names) {
  JsonNode *node = find_member(obj, names);
  if (node == nullptr || !JSON_NODE_HOLDS_VALUE(node)) return std::nullopt;
  double d;
  GType t = json_node_get_value_type(node);
  if (t == G_TYPE_INT64) {
    d = static_cast<double>(json_node_get_int(node));
  } else if (t == G_TYPE_DOUBLE) {
    d = json_node_get_double(node);
  } else if (t == G_TYPE_STRING) {
    if (!parse_decimal_string(json_node_get_string(node), d)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(d) || d <= 0 || d > kMaxSeconds) return std::nullopt;
  return d;
}

// The first of `names` holding a string; non-string values are skipped.
const char *read_string(JsonObject *obj, std::initializer_list<const char *> names) {
  for (const char *name : names) {
    JsonNode *node = json_object_get_member(obj, name);
    if (node != nullptr && JSON_NODE_HOLDS_VALUE(node) &&
        json_node_get_value_type(node) == G_TYPE_STRING)
      return json_node_get_string(node);
  }
  return nullptr;
}

// Case-insensitive; '-' and ' ' count as '_' ("In Progress", "in-progress").
TrackState state_from_string(const char *text) {
  g_autofree char *s = g_ascii_strdown(text, -1);
  g_strstrip(s);
  for (char *p = s; *p != '\0'; p++)
    if (*p == '-' || *p == ' ') *p = '_';
  static const struct {
    const char *name;
    TrackState state;
  } kNames[] = {
      {"processing", TrackState::Processing}, {"pending", TrackState::Processing},
      {"running", TrackState::Processing},    {"in_progress", TrackState::Processing},
      {"complete", TrackState::Complete},     {"completed", TrackState::Complete},
      {"done", TrackState::Complete},         {"ready", TrackState::Complete},
      {"finished", TrackState::Complete},     {"error", TrackState::Error},
      {"failed", TrackState::Error},
  };
  for (const auto &entry : kNames)
    if (strcmp(s, entry.name) == 0) return entry.state;
  return TrackState::Unknown;
}

bool is_mime_token_char(char c) {
  return g_ascii_isalnum(c) || (c != '\0' && strchr("!#$&^_.+-", c) != nullptr);
}

// A MIME type worth keeping: "type/subtype" optionally followed by
// "; parameters" in printable ASCII, of bounded length.
bool plausible_mime_type(const char *s) {
  const size_t n = strlen(s);
  if (n == 0 || n > kMaxMimeTypeBytes) return false;
  for (size_t k = 0; k < n; k++)
    if (s[k] < 0x20 || s[k] > 0x7e) return false;
  size_t k = 0;
  while (is_mime_token_char(s[k])) k++;
  if (k == 0 || s[k] != '/') return false;
  const size_t subtype = ++k;
  while (is_mime_token_char(s[k])) k++;
  if (k == subtype) return false;
  return s[k] == '\0' || s[k] == ';' || s[k] == ' ';
}

bool read_total(JsonObject *obj, const StatusLimits &limits, Status &st, std::string &error) {
  const char *key = nullptr;
  JsonNode *node = find_member(obj, {"totalSegments", "total_segments"}, &key);
  if (node == nullptr) return true;
  int64_t total = 0;
  IntRead r = read_int(node, limits.max_segments - 1, total);
  if (r != IntRead::Ok) {
    error = int_error(r, key, node, limits.max_segments);
    return false;
  }
  st.total_segments = total;
  return true;
}

bool read_ready(JsonObject *obj, const StatusLimits &limits, Status &st, std::string &error) {
  const char *key = nullptr;
  JsonNode *node = find_member(obj, {"ready", "available_segments"}, &key);
  if (node == nullptr) return true;  // nothing yet

  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *array = json_node_get_array(node);
    const guint n = json_array_get_length(array);
    if (static_cast<int64_t>(n) > limits.max_segments) {
      error = printf_string("%s list is too long (%u entries, limit %" G_GINT64_FORMAT ")", key, n,
                            limits.max_segments);
      return false;
    }
    st.ready.reserve(n);
    for (guint k = 0; k < n; k++) {
      JsonNode *element = json_array_get_element(array, k);
      int64_t index = 0;
      IntRead r = read_int(element, limits.max_segments - 1, index);
      if (r == IntRead::NotInteger) {
        error = int_error(r, printf_string("%s[%u]", key, k), element, limits.max_segments);
        return false;
      }
      if (r != IntRead::Ok) {
        error = int_error(r, std::string(key) + " index", element, limits.max_segments);
        return false;
      }
      st.ready.push_back(index);
    }
    return true;
  }

  // A count of leading segments.
  if (!holds_number(node)) {
    error = printf_string("%s is not a list or a count (%s)", key, describe_node(node).c_str());
    return false;
  }
  int64_t count = 0;
  IntRead r = read_int(node, limits.max_segments, count);
  if (r == IntRead::NotInteger) {
    error = printf_string("%s is not a list or a count (%s)", key, describe_node(node).c_str());
    return false;
  }
  if (r != IntRead::Ok) {
    error = int_error(r, std::string(key) + " count", node, limits.max_segments);
    return false;
  }
  if (st.total_segments) count = std::min(count, *st.total_segments);
  st.ready.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; k++) st.ready.push_back(k);
  return true;
}

}  // namespace

// Builds the result in a local and assigns it only on success, so in practice
// `out` is left untouched on failure.
bool parse_status(const char *data, size_t len, Status &out, std::string &error,
                  const StatusLimits &limits) {
  if (len > limits.max_body_bytes) {
    error = printf_string("status body too large (%" G_GSIZE_FORMAT " bytes, limit %" G_GSIZE_FORMAT
                          ")",
                          len, limits.max_body_bytes);
    return false;
  }
  if (data == nullptr && len > 0) {
    error = "status body is missing";
    return false;
  }
  if (len > static_cast<size_t>(G_MAXSSIZE)) {
    error = "status body too large";
    return false;
  }

  Scan scan;
  if (!prescan(data, len, limits.max_depth, scan, error)) return false;
  if (scan.empty) {
    error = "status is empty";
    return false;
  }

  // Integer literals that may not fit in 64 bits get a ".0" so that json-glib
  // reads them as doubles instead of wrapping them round.
  std::string widened;
  const char *text = data;
  size_t text_len = len;
  if (!scan.widen_at.empty()) {
    widened.reserve(len + 2 * scan.widen_at.size());
    size_t from = 0;
    for (size_t at : scan.widen_at) {
      widened.append(data + from, at - from);
      widened.append(".0");
      from = at;
    }
    widened.append(data + from, len - from);
    text = widened.data();
    text_len = widened.size();
  }

  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) gerror = nullptr;
  if (!json_parser_load_from_data(parser, text, static_cast<gssize>(text_len), &gerror)) {
    error = printf_string("status is not JSON: %s", gerror ? gerror->message : "unknown error");
    return false;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == nullptr) {
    error = "status is empty";
    return false;
  }
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    error = printf_string("status is not a JSON object (got %s)", describe_node(root).c_str());
    return false;
  }
  JsonObject *obj = json_node_get_object(root);

  Status st;
  // The total first: a count of ready segments is clamped to it.
  if (!read_total(obj, limits, st, error)) return false;
  if (!read_ready(obj, limits, st, error)) return false;

  const bool state_given = find_member(obj, {"state", "status"}) != nullptr;
  if (const char *state = read_string(obj, {"state", "status"}))
    st.state = state_from_string(state);

  if (const char *text_error = read_string(obj, {"error", "message"})) st.error = text_error;
  // {"error": "no such video"} with no state at all is a failure report.
  if (!state_given) {
    const char *bare_error = read_string(obj, {"error"});
    if (bare_error != nullptr && *bare_error != '\0') st.state = TrackState::Error;
  }

  st.duration = read_seconds(obj, {"duration"});
  st.segment_duration = read_seconds(obj, {"segment_duration", "segmentDuration"});
  st.first_segment_duration = read_seconds(obj, {"first_segment_duration", "firstSegmentDuration"});
  if (const char *mime = read_string(obj, {"mime_type", "mimeType"}))
    if (plausible_mime_type(mime)) st.mime_type = mime;

  // Normalise: sorted, unique, and below the total when it is known (a
  // backend that lists a segment past its own total is clamped, not refused).
  std::sort(st.ready.begin(), st.ready.end());
  st.ready.erase(std::unique(st.ready.begin(), st.ready.end()), st.ready.end());
  if (st.total_segments) {
    auto past = std::lower_bound(st.ready.begin(), st.ready.end(), *st.total_segments);
    st.ready.erase(past, st.ready.end());
  }

  out = std::move(st);
  return true;
}

}  // namespace segdl
