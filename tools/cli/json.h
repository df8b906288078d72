// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — JSON text for --json (events, `segdl status`, `segdl cache
 * info`): json-glib builds the objects, this writes them on one line.
 *
 * json-glib writes a double with 17 significant digits (0.123 comes out as
 * 0.12299999999999999), more than anyone reading a time needs and noise in
 * every event. Here every real number (seconds, always) is written with 3
 * decimals, i.e. to the millisecond; everything else as json-glib writes it.
 */
#pragma once

#include <json-glib/json-glib.h>

#include <string>

namespace segdl::cli {

// Decimals of every real number in segdl's JSON (milliseconds of seconds).
constexpr int kJsonDecimals = 3;

// `root` as compact JSON text (one line, no newline), reals with
// kJsonDecimals decimals.
std::string json_text(JsonNode *root);

// The builder's root as json_text() (the builder is left empty).
std::string json_text(JsonBuilder *builder);

}  // namespace segdl::cli
