// SPDX-License-Identifier: LGPL-2.1-or-later
/* segdl-gateway — how a chunked answer (GET /listen/ID's) ends when it
 * fails after its first bytes: abort_connection() cuts the connection (a
 * reset) with no terminating chunk, so a client never takes the part it got
 * for a whole track. Read with a raw socket: the chunked framing is what is
 * asserted.
 */
#include "gateway/core.h"
#include "gwtest.h"

#include <atomic>
#include <string>
#include <thread>

namespace {

// A chunked body taken apart: the data of its whole chunks, and whether its
// terminating (zero-size) chunk came.
struct Chunked {
  std::string data;
  bool terminated = false;
};

Chunked dechunk(const std::string &body) {
  Chunked c;
  size_t at = 0;
  for (;;) {
    const size_t eol = body.find("\r\n", at);
    if (eol == std::string::npos) return c;
    const std::string line = body.substr(at, eol - at);
    char *end = nullptr;
    const unsigned long long size = g_ascii_strtoull(line.c_str(), &end, 16);
    fail_unless(end != line.c_str(), "not a chunk size: '%s'", line.c_str());
    if (size == 0) {
      c.terminated = true;
      return c;
    }
    if (body.size() < eol + 2 + size + 2) return c;  // cut inside this chunk
    c.data.append(body, eol + 2, size);
    at = eol + 2 + size + 2;
  }
}

// A SoupServer on its own context, run by the test's thread, answering
// /cut as Listen does: a chunked 200 with a first chunk; once libsoup has
// written it, a second chunk is appended and the message unpaused (as
// Listen::flush() does in Listen::ended()), then abort_connection().
struct CutServer {
  SoupServer *server = nullptr;
  SoupServerMessage *msg = nullptr;
  int port = 0;
  bool aborted = false;

  static void on_request(SoupServer *, SoupServerMessage *m, const char *, GHashTable *,
                         gpointer data) {
    auto *self = static_cast<CutServer *>(data);
    SoupMessageHeaders *h = soup_server_message_get_response_headers(m);
    soup_server_message_set_status(m, SOUP_STATUS_OK, nullptr);
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    SoupMessageBody *body = soup_server_message_get_response_body(m);
    soup_message_body_set_accumulate(body, FALSE);
    soup_message_body_append(body, SOUP_MEMORY_STATIC, "first chunk", 11);
    self->msg = static_cast<SoupServerMessage *>(g_object_ref(m));
    g_signal_connect(m, "wrote-body-data", G_CALLBACK(on_wrote), self);
  }
  static void on_wrote(SoupServerMessage *, guint, gpointer data) {
    GSource *idle = g_idle_source_new();  // from the main loop, as Listen's bus watch
    g_source_set_callback(idle, on_idle, data, nullptr);
    g_source_attach(idle, g_main_context_get_thread_default());
    g_source_unref(idle);
  }
  static gboolean on_idle(gpointer data) {
    auto *self = static_cast<CutServer *>(data);
    if (self->aborted) return G_SOURCE_REMOVE;
    self->aborted = true;
    g_signal_handlers_disconnect_by_data(self->msg, self);
    SoupMessageBody *body = soup_server_message_get_response_body(self->msg);
    soup_message_body_append(body, SOUP_MEMORY_STATIC, "last", 4);
    soup_server_message_unpause(self->msg);
    segdl::gateway::abort_connection(self->msg);
    return G_SOURCE_REMOVE;
  }
};

}  // namespace

// abort_connection() on a chunked answer under way: the client reads the
// first chunk, then a reset, and never the terminating chunk.
GST_START_TEST(test_abort_sends_no_terminating_chunk) {
  GMainContext *ctx = g_main_context_new();
  g_main_context_push_thread_default(ctx);
  CutServer cs;
  cs.server = soup_server_new("server-header", "cut", nullptr);
  soup_server_add_handler(cs.server, "/cut", CutServer::on_request, &cs, nullptr);
  GError *err = nullptr;
  fail_unless(soup_server_listen_local(cs.server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &err), "%s",
              err ? err->message : "");
  GSList *uris = soup_server_get_uris(cs.server);
  fail_unless(uris != nullptr);
  cs.port = g_uri_get_port(static_cast<GUri *>(uris->data));
  g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));

  std::atomic<bool> done{false};
  std::string raw;
  bool reset = false;
  std::thread client([&] {
    gwtest::RawClient c(cs.port, "/cut");
    raw = c.read_to_end(&reset);
    done = true;
    g_main_context_wakeup(ctx);
  });
  // Bounded: the client's reads wait at most kWaitMs each.
  const gint64 until = g_get_monotonic_time() + gint64(3) * gwtest::kWaitMs * 1000;
  while (!done && g_get_monotonic_time() < until) {
    GSource *tick = g_timeout_source_new(100);
    g_source_set_callback(
        tick, [](gpointer) { return G_SOURCE_REMOVE; }, nullptr, nullptr);
    g_source_attach(tick, ctx);
    g_main_context_iteration(ctx, TRUE);
    g_source_destroy(tick);
    g_source_unref(tick);
  }
  client.join();
  fail_unless(done, "the client did not end");
  fail_unless(cs.aborted, "the answer was never aborted");

  const size_t body_at = raw.find("\r\n\r\n");
  fail_unless(g_str_has_prefix(raw.c_str(), "HTTP/1.1 200") && body_at != std::string::npos, "%s",
              raw.c_str());
  const Chunked body = dechunk(raw.substr(body_at + 4));
  fail_unless(!body.terminated, "the cut answer ended with its terminating chunk: '%s'",
              g_strescape(raw.substr(body_at + 4).c_str(), nullptr));
  fail_unless(reset, "the connection ended cleanly, not reset");
  fail_unless(g_str_has_prefix(body.data.c_str(), "first chunk"), "'%s'", body.data.c_str());
  g_object_unref(cs.msg);
  soup_server_disconnect(cs.server);
  g_object_unref(cs.server);
  g_main_context_pop_thread_default(ctx);
  g_main_context_unref(ctx);
}
GST_END_TEST;

static Suite *gateway_listen_end_suite() {
  Suite *s = suite_create("gateway-listen-end");
  TCase *tc = tcase_create("end");
  suite_add_tcase(s, tc);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_abort_sends_no_terminating_chunk);
  return s;
}

GST_CHECK_MAIN(gateway_listen_end);
