// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — reference backend helpers shared by server.cpp and util.cpp
 * (namespace detail: internal to tools/server), and two small ones the
 * segdl-server and segdl-gateway programs share.
 */
#pragma once

#include <cstdint>
#include <string>

typedef struct _SoupServer SoupServer;

namespace segdl::server {

// The port of `soup`'s first listening socket, read from the socket itself
// (soup_server_get_uris leaks in libsoup 3.2); 0 when it has none.
int listening_port(SoupServer *soup);

// Runs a main loop on the global default context until SIGINT or SIGTERM.
void run_until_signal();

}  // namespace segdl::server

namespace segdl::server::detail {

constexpr int64_t kSegmentFull = -2;  // Fault::segment value matching full-track requests

// status500, badjson, statusregress, statuserror, statushold
bool is_status_fault(const std::string &kind);
bool is_body_fault(const std::string &kind);  // http500, reset, truncate, stall, notready

std::string json_escape(const std::string &s);    // the inside of a JSON string
std::string json_number(double v);                // locale-independent, %.6g
std::string mime_for_extension(std::string ext);  // "mp3" -> "audio/mpeg", ...

// Parses a Range header for a body of `size` bytes. Returns false when the
// header should be ignored (absent, not a single byte range we understand);
// otherwise sets `satisfiable` and, if so, the inclusive range [first, last].
bool parse_range(const char *header, uint64_t size, bool &satisfiable, uint64_t &first,
                 uint64_t &last);

}  // namespace segdl::server::detail
