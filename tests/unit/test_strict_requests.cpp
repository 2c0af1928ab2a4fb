// End-to-end checks of the parser's strict choices (issue 10), over real loopback connections:
// what a client sees when it sends what RFC 9112 lets a recipient refuse, as llhttp does.
#include <asynchttp/asynchttpserver.hpp>

#include "http_test_client.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

/// A server that counts the requests reaching its callback and answers them 200.
struct CountingServer {
  int calls = 0;
  TestServer server;
  explicit CountingServer(ServerSettings settings = ServerSettings())
      : server(
            [this](Request& req) -> Future<void> {
              ++calls;
              co_await req.respond(Http200, "ok");
            },
            settings) {}
};

}  // namespace

TEST(StrictRequests, BareLfIs400) {
  CountingServer s;
  EXPECT_EQ(exchange(s.server.port(), "GET / HTTP/1.1\nHost: x\n\n").statusLine,
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(exchange(s.server.port(), "GET / HTTP/1.1\r\nHost: x\r\nX: y\n\r\n").statusLine,
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(s.calls, 0);
  // The same request with CRLF is served.
  EXPECT_EQ(exchange(s.server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").statusLine,
            "HTTP/1.1 200 OK");
  EXPECT_EQ(s.calls, 1);
}

TEST(StrictRequests, BareLfInChunkedFramingIs400) {
  CountingServer s;
  const Response r = exchange(s.server.port(),
                              "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "3\nabc\r\n0\r\n\r\n");
  EXPECT_EQ(r.statusLine, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(s.calls, 0);  // the body is buffered before the callback, by default
}

TEST(StrictRequests, EmptyHostWithOriginFormIs400) {
  CountingServer s;
  EXPECT_EQ(exchange(s.server.port(), "GET / HTTP/1.1\r\nHost:\r\n\r\n").statusLine,
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(s.calls, 0);
  // With the authority in the target, an empty Host is what RFC 9112 §3.2.2 asks for.
  EXPECT_EQ(exchange(s.server.port(), "GET http://x/ HTTP/1.1\r\nHost:\r\n\r\n").statusLine,
            "HTTP/1.1 200 OK");
  EXPECT_EQ(s.calls, 1);
}

TEST(StrictRequests, FragmentInTargetIs400) {
  CountingServer s;
  EXPECT_EQ(exchange(s.server.port(), "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n").statusLine,
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(s.calls, 0);
}

TEST(StrictRequests, ConnectIs501ByDefault) {
  CountingServer s;
  EXPECT_EQ(
      exchange(s.server.port(), "CONNECT x.com:443 HTTP/1.1\r\nHost: x.com:443\r\n\r\n").statusLine,
      "HTTP/1.1 501 Not Implemented");
  EXPECT_EQ(s.calls, 0);
}

TEST(StrictRequests, ConnectReachesTheCallbackWhenAllowed) {
  HttpMethod method = HttpGet;
  std::string hostname, port;
  ServerSettings settings;
  settings.allowConnect = true;
  TestServer server(
      [&](Request& req) -> Future<void> {
        method = req.reqMethod;
        hostname = req.url.hostname;
        port = req.url.port;
        co_await req.respond(Http200, "");
      },
      settings);
  EXPECT_EQ(
      exchange(server.port(), "CONNECT x.com:443 HTTP/1.1\r\nHost: x.com:443\r\n\r\n").statusLine,
      "HTTP/1.1 200 OK");
  EXPECT_EQ(method, HttpConnect);
  EXPECT_EQ(hostname, "x.com");
  EXPECT_EQ(port, "443");
}

TEST(StrictRequests, Http2PrefaceIs505) {
  CountingServer s;
  EXPECT_EQ(exchange(s.server.port(), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").statusLine,
            "HTTP/1.1 505 HTTP Version Not Supported");
  EXPECT_EQ(s.calls, 0);
}
