// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl — JSON text for --json (see json.h). */
#include "json.h"

#include <glib.h>

#include <cmath>

namespace segdl::cli {

namespace {

// Appends what json-glib writes for `node` (strings escaped as JSON wants).
void append_as_json_glib(JsonNode *node, std::string &out) {
  gchar *text = json_to_string(node, FALSE);
  out += text;
  g_free(text);
}

void append_key(const char *key, std::string &out) {
  JsonNode *name = json_node_init_string(json_node_alloc(), key);
  append_as_json_glib(name, out);
  json_node_unref(name);
  out += ':';
}

void append_node(JsonNode *node, std::string &out) {
  switch (JSON_NODE_TYPE(node)) {
    case JSON_NODE_OBJECT: {
      JsonObject *object = json_node_get_object(node);
      GList *members = json_object_get_members(object);  // in the order they were added
      out += '{';
      for (GList *m = members; m; m = m->next) {
        if (m != members) out += ',';
        const char *key = static_cast<const char *>(m->data);
        append_key(key, out);
        append_node(json_object_get_member(object, key), out);
      }
      out += '}';
      g_list_free(members);
      return;
    }
    case JSON_NODE_ARRAY: {
      JsonArray *array = json_node_get_array(node);
      out += '[';
      for (guint i = 0; i < json_array_get_length(array); i++) {
        if (i > 0) out += ',';
        append_node(json_array_get_element(array, i), out);
      }
      out += ']';
      return;
    }
    case JSON_NODE_VALUE:
      if (json_node_get_value_type(node) == G_TYPE_DOUBLE) {
        static const std::string format = "%." + std::to_string(kJsonDecimals) + "f";
        const double v = json_node_get_double(node);
        gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
        out += std::isfinite(v) ? g_ascii_formatd(buf, sizeof buf, format.c_str(), v) : "null";
        return;
      }
      append_as_json_glib(node, out);
      return;
    case JSON_NODE_NULL:
      out += "null";
      return;
  }
}

}  // namespace

std::string json_text(JsonNode *root) {
  std::string out;
  if (root) append_node(root, out);
  return out;
}

std::string json_text(JsonBuilder *builder) {
  JsonNode *root = json_builder_get_root(builder);
  std::string out = json_text(root);
  if (root) json_node_unref(root);
  return out;
}

}  // namespace segdl::cli
