// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — URLs of the backend protocol and the segdl:// URI scheme.
 *
 * docs/protocol.md ("URLs" and "The segdl:// URI scheme") is the normative
 * description. The URI parsing here is our own, deliberately narrow: only the
 * shapes the protocol uses are accepted, and everything else is refused with
 * a reason, rather than guessed at.
 */
#include "segdl/urls.h"

#include <glib.h>

namespace segdl {

namespace {

bool is_unreserved(unsigned char c) {
  return g_ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool is_sub_delim(unsigned char c) {
  switch (c) {
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// RFC 3986 pchar without the '%' (escapes are checked on their own) plus '/'.
bool is_path_char(unsigned char c) {
  return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@' || c == '/';
}

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string describe_char(unsigned char c) {
  char buf[32];
  if (c > 0x20 && c < 0x7f)
    g_snprintf(buf, sizeof buf, "'%c'", c);
  else
    g_snprintf(buf, sizeof buf, "byte 0x%02X", c);
  return buf;
}

// Checks that `path` holds only path characters and well-formed %XX escapes.
bool check_path(const std::string &path, std::string &error) {
  for (size_t i = 0; i < path.size(); i++) {
    const unsigned char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size() || hex_value(path[i + 1]) < 0 || hex_value(path[i + 2]) < 0) {
        error = "bad percent-escape in the path";
        return false;
      }
      i += 2;
    } else if (!is_path_char(c)) {
      error = "the path contains " + describe_char(c) + ", which must be percent-encoded";
      return false;
    }
  }
  return true;
}

// Decodes %XX escapes; false on a malformed escape.
bool percent_decode(const std::string &s, std::string &out) {
  out.clear();
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::string strip_trailing_slashes(const std::string &s) {
  size_t end = s.size();
  while (end > 0 && s[end - 1] == '/') end--;
  return s.substr(0, end);
}

// The parts of an absolute hierarchical URI "scheme://authority/path?query#frag".
struct UriParts {
  std::string scheme;     // lower-cased
  std::string authority;  // as written
  std::string path;       // as written, "" or starting with '/'
  bool has_query_or_fragment = false;
};

bool split_uri(const std::string &uri, UriParts &parts, std::string &error) {
  if (uri.find('\0') != std::string::npos) {
    error = "the URI contains a NUL byte";
    return false;
  }
  const size_t colon = uri.find(':');
  if (colon == std::string::npos || colon == 0 || !g_ascii_isalpha(uri[0])) {
    error = "not an absolute URI";
    return false;
  }
  for (size_t i = 0; i < colon; i++) {
    const char c = uri[i];
    if (!g_ascii_isalnum(c) && c != '+' && c != '-' && c != '.') {
      error = "not an absolute URI";
      return false;
    }
  }
  g_autofree char *scheme = g_ascii_strdown(uri.c_str(), static_cast<gssize>(colon));
  parts.scheme = scheme;
  if (uri.compare(colon + 1, 2, "//") != 0) {
    error = "the URI has no host (expected \"" + parts.scheme + "://host/...\")";
    return false;
  }
  const size_t auth_start = colon + 3;
  size_t auth_end = uri.find_first_of("/?#", auth_start);
  if (auth_end == std::string::npos) auth_end = uri.size();
  parts.authority = uri.substr(auth_start, auth_end - auth_start);
  size_t path_end = uri.find_first_of("?#", auth_end);
  if (path_end == std::string::npos) path_end = uri.size();
  parts.path = uri.substr(auth_end, path_end - auth_end);
  parts.has_query_or_fragment = path_end < uri.size();
  return true;
}

// Checks "[userinfo@]host[:port]": host a name (letters, digits, '-', '.',
// '_', '~') or a bracketed IPv6 literal; port 1..65535, digits only.
bool check_authority(const std::string &authority, bool allow_userinfo, std::string &error) {
  std::string hostport = authority;
  const size_t at = authority.rfind('@');
  if (at != std::string::npos) {
    if (!allow_userinfo) {
      error = "user information (\"user@\") is not supported in the URI";
      return false;
    }
    hostport = authority.substr(at + 1);
  }
  if (hostport.empty()) {
    error = "the URI has no host";
    return false;
  }

  std::string port;
  bool has_port = false;
  if (hostport[0] == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string::npos) {
      error = "unterminated IPv6 literal in the URI";
      return false;
    }
    const std::string literal = hostport.substr(1, close - 1);
    for (char c : literal) {
      if (!g_ascii_isxdigit(c) && c != ':' && c != '.') {
        error = "bad IPv6 literal [" + literal + "] in the URI";
        return false;
      }
    }
    if (literal.find(':') == std::string::npos || !g_hostname_is_ip_address(literal.c_str())) {
      error = "bad IPv6 literal [" + literal + "] in the URI";
      return false;
    }
    const std::string rest = hostport.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        error = "unexpected text after the IPv6 literal in the URI";
        return false;
      }
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    const size_t colon = hostport.find(':');
    const std::string host = hostport.substr(0, colon);
    if (host.empty()) {
      error = "the URI has no host";
      return false;
    }
    for (char c : host) {
      if (!is_unreserved(c)) {
        error = "the host contains " + describe_char(c);
        return false;
      }
    }
    if (colon != std::string::npos) {
      has_port = true;
      port = hostport.substr(colon + 1);
    }
  }

  if (has_port) {
    if (port.empty()) {
      error = "empty port in the URI";
      return false;
    }
    unsigned long value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') {
        error = "the port \"" + port + "\" is not a number";
        return false;
      }
      value = value * 10 + static_cast<unsigned long>(c - '0');
      if (value > 65535) break;
    }
    if (value < 1 || value > 65535) {
      error = "the port " + port + " is out of range (1..65535)";
      return false;
    }
  }
  return true;
}

}  // namespace

std::string percent_encode(const std::string &s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (is_unreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

std::string status_url(const std::string &backend, const std::string &video_id) {
  return strip_trailing_slashes(backend) + "/status?v=" + percent_encode(video_id);
}

std::string segment_url(const std::string &backend, const std::string &video_id, int64_t n) {
  return strip_trailing_slashes(backend) + "/stream?v=" + percent_encode(video_id) +
         "&segment=" + std::to_string(n);
}

std::string full_track_url(const std::string &backend, const std::string &video_id) {
  return strip_trailing_slashes(backend) + "/stream?v=" + percent_encode(video_id);
}

bool is_http_url(const std::string &url) {
  UriParts parts;
  std::string error;
  if (!split_uri(url, parts, error)) return false;
  if (parts.scheme != "http" && parts.scheme != "https") return false;
  if (!check_authority(parts.authority, true, error)) return false;
  // Whatever follows the authority must at least be made of URI characters.
  for (unsigned char c : url)
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' ||
        c == '`' || c == '{' || c == '|' || c == '}')
      return false;
  return true;
}

bool parse_segdl_uri(const std::string &uri, std::string &backend, std::string &video_id,
                     std::string &error) {
  UriParts parts;
  if (!split_uri(uri, parts, error)) return false;
  std::string http_scheme;
  if (parts.scheme == "segdl") {
    http_scheme = "http";
  } else if (parts.scheme == "segdls") {
    http_scheme = "https";
  } else {
    error = "not a segdl:// or segdls:// URI";
    return false;
  }
  if (parts.has_query_or_fragment) {
    error = "a segdl URI must not have a query or a fragment (encode '?' and '#' in the id)";
    return false;
  }
  if (!check_authority(parts.authority, false, error)) return false;
  if (!check_path(parts.path, error)) return false;

  const std::string path = strip_trailing_slashes(parts.path);
  if (path.empty()) {
    error = "the URI has no video id (expected segdl://host/ID)";
    return false;
  }
  const size_t slash = path.rfind('/');  // path starts with '/', so found
  const std::string raw_id = path.substr(slash + 1);
  std::string id;
  if (!percent_decode(raw_id, id)) {
    error = "bad percent-escape in the video id";
    return false;
  }
  if (id.empty()) {
    error = "the video id is empty";
    return false;
  }
  if (id.find('\0') != std::string::npos) {
    error = "the video id contains a NUL byte";
    return false;
  }

  backend = http_scheme + "://" + parts.authority + strip_trailing_slashes(path.substr(0, slash));
  video_id = std::move(id);
  return true;
}

std::string make_segdl_uri(const std::string &backend, const std::string &video_id) {
  if (video_id.empty() || video_id.find('\0') != std::string::npos) return std::string();
  UriParts parts;
  std::string error;
  if (!split_uri(backend, parts, error)) return std::string();
  std::string scheme;
  if (parts.scheme == "http")
    scheme = "segdl";
  else if (parts.scheme == "https")
    scheme = "segdls";
  else
    return std::string();
  if (parts.has_query_or_fragment) return std::string();
  if (!check_authority(parts.authority, false, error)) return std::string();
  if (!check_path(parts.path, error)) return std::string();
  return scheme + "://" + parts.authority + strip_trailing_slashes(parts.path) + "/" +
         percent_encode(video_id);
}

}  // namespace segdl
