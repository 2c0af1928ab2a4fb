// Tests for the HTTP server over real loopback connections: one test (or table) per rule.
#include <asynchttp/asynchttpserver.hpp>

#include "asyncnet_internal.hpp"
#include "http_test_client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>
#include <limits>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

Future<void> hello(Request& req) {
  co_await req.respond(Http200, "Hello World");
}

// Answers "<METHOD> <target>\n<body>" so tests see what the server parsed.
Future<void> echo(Request& req) {
  std::string text = std::string(to_string(req.reqMethod)) + " " + req.target + "\n" + req.body;
  co_await req.respond(Http200, text);
}

}  // namespace

// --- The seed's API ---------------------------------------------------------------------------

TEST(Server, HelloWorldWithContentLengthAndDate) {
  TestServer server(hello);
  auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "Hello World");
  EXPECT_TRUE(r.headers["Content-Length"] == "11");
  std::string date = r.headers["Date"];
  EXPECT_TRUE(std::regex_match(
      date, std::regex(R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT)")))
      << date;
}

TEST(Server, GetPortAfterListenOnPortZeroAndCloseEndsServe) {
  auto server = newAsyncHttpServer();
  server->listen(Port(0), "127.0.0.1");
  EXPECT_GT(static_cast<int>(server->getPort()), 0);
  auto serving = server->serve(server->getPort(), hello, "127.0.0.1");
  EXPECT_FALSE(serving.finished());
  server->close();
  waitFor(std::move(serving));  // completes, no exception
  EXPECT_TRUE(server->shouldAcceptRequest());
  EXPECT_TRUE(server->shouldAcceptRequest(-1));
  EXPECT_FALSE(server->shouldAcceptRequest(1 << 30));
}

TEST(Server, AcceptRequestServesOneConnection) {
  auto server = newAsyncHttpServer({.maxBody = 16});
  server->listen(Port(0), "127.0.0.1");
  auto accepting = server->acceptRequest(hello);
  auto client = connectTo(server->getPort());
  waitFor(std::move(accepting));
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse((client)).body, "Hello World");
  server->close();
  EXPECT_THROW(waitFor(server->acceptRequest(hello)), SocketClosedError);
  client.close();
  drainLoop();  // the closed connection's coroutine ends
}

TEST(Server, RequestFieldsAreFilledIn) {
  Request seen;
  std::string host, hostname;
  TestServer server([&](Request& req) -> Future<void> {
    seen.reqMethod = req.reqMethod;
    seen.url = req.url;
    seen.protocol = req.protocol;
    seen.body = req.body;
    seen.target = req.target;
    host = std::string(req.headers["Host"]);
    hostname = req.hostname;
    co_await req.respond(Http204, "");
  });
  auto r =
      exchange(server.port(),
               "PUT /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.org\r\nContent-Length: 3\r\n\r\nabc");
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(seen.reqMethod, HttpPut);
  EXPECT_EQ(seen.url.path, "/a/b");
  EXPECT_EQ(seen.url.query, "x=1&y=2");
  EXPECT_EQ(seen.target, "/a/b?x=1&y=2");
  EXPECT_TRUE(seen.protocol == HttpVer11);
  EXPECT_EQ(seen.protocol.orig, "HTTP/1.1");
  EXPECT_EQ(seen.body, "abc");
  EXPECT_EQ(host, "example.org");
  EXPECT_EQ(hostname, "127.0.0.1");
}

TEST(Server, RespondAddsContentLengthUnlessGivenAndSendsUserHeaders) {
  TestServer server([](Request& req) -> Future<void> {
    HttpHeaders headers;
    if (req.url.path == "/custom") headers["Content-Length"] = "0";
    headers.add("X-Multi", "1");
    headers.add("X-Multi", "2");
    co_await req.respond(Http200, req.url.path == "/custom" ? "" : "Hello World, 200", headers);
  });
  auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.headers["Content-Length"] == "16");
  EXPECT_EQ(r.headers["X-Multi"].values().values(), (std::vector<std::string>{"1", "2"}));
  auto c = exchange(server.port(), "GET /custom HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(c.headers["Content-Length"] == "0");
  EXPECT_EQ(c.body, "");
}

TEST(Server, SendHeadersWritesHeaderLinesForHandMadeResponses) {
  TestServer server([](Request& req) -> Future<void> {
    HttpHeaders headers;  // named: GCC 12 rejects an initializer-list temporary in a coroutine
    headers["Content-Length"] = "2";
    co_await req.client.send("HTTP/1.1 200 OK\r\n");
    co_await req.sendHeaders(headers);
    co_await req.client.send("\r\nok");
  });
  auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
}

// --- Persistence and pipelining ---------------------------------------------------------------

TEST(Server, Http11KeepsTheConnectionAcrossRequests) {
  TestServer server(echo);
  auto socket = connectTo(server.port());
  for (int i = 0; i < 3; ++i) {
    waitFor(socket.send("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(awaitResponse((socket)).body, "GET /" + std::to_string(i) + "\n");
  }
}

TEST(Server, ConnectionCloseIsHonouredAndAnnounced) {
  TestServer server(hello);
  auto socket = connectTo(server.port());
  waitFor(socket.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto r = awaitResponse((socket));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.headers["Connection"] == "close");
  EXPECT_TRUE(closedWithin(socket, 2000));
}

TEST(Server, Http10ClosesUnlessKeepAliveAndThenSaysSo) {
  TestServer server(hello);
  auto plain = connectTo(server.port());
  waitFor(plain.send("GET / HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(awaitResponse((plain)).status, 200);
  EXPECT_TRUE(closedWithin(plain, 2000));

  auto kept = connectTo(server.port());
  waitFor(kept.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  auto r = awaitResponse((kept));
  EXPECT_TRUE(r.headers["Connection"] == "keep-alive");
  waitFor(kept.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  EXPECT_EQ(awaitResponse((kept)).status, 200);
}

TEST(Server, PipelinedRequestsAnsweredInOrderInOneWrite) {
  std::shared_ptr<AsyncSocket::State> serverSide;
  TestServer server([&](Request& req) -> Future<void> {
    serverSide = detail::SocketAccess::state(req.client);
    co_await echo(req);
  });
  auto socket = connectTo(server.port());
  // Make sure the connection is accepted before the batch, so the batch arrives in one read.
  waitFor(socket.send("GET /warmup HTTP/1.1\r\nHost: x\r\n\r\n"));
  awaitResponse((socket));
  std::uint64_t bytesBefore = serverSide->bytesSent;
  std::uint64_t writesBefore = serverSide->sendCalls;
  std::string batch;
  for (int i = 0; i < 10; ++i) {
    batch += "POST /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n" +
             std::to_string(i);
  }
  waitFor(socket.send(batch));
  for (int i = 0; i < 10; ++i) {
    auto r = awaitResponse((socket));
    EXPECT_EQ(r.body, "POST /" + std::to_string(i) + "\n" + std::to_string(i));
  }
  EXPECT_GT(serverSide->bytesSent, bytesBefore);
  EXPECT_EQ(serverSide->sendCalls - writesBefore, 1u) << "ten responses, one sendmsg";
}

TEST(Server, RequestSplitAtEveryByteParsesTheSame) {
  TestServer server(echo);
  const std::string request =
      "POST /split?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n";
  auto socket = connectTo(server.port());
  socket.setSockOpt(OptNoDelay, true);
  auto sendByBytes = [&]() -> Future<void> {
    for (char c : request) {
      co_await socket.send(std::string(1, c));
      co_await sleepAsync(0);  // one byte per loop turn: the server sees every split
    }
  };
  auto sending = sendByBytes();
  auto r = awaitResponse((socket));
  waitFor(std::move(sending));
  EXPECT_EQ(r.body, "POST /split?q=1\nabcde");
}

// --- Bodies -----------------------------------------------------------------------------------

TEST(Server, BodiesByContentLengthChunkedOrNone) {
  TestServer server(echo);
  struct Row {
    const char* name;
    std::string request;
    std::string body;
  };
  const std::vector<Row> rows = {
      {"no body", "GET /n HTTP/1.1\r\nHost: x\r\n\r\n", "GET /n\n"},
      {"content-length", "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
       "POST /c\nhello"},
      {"chunked",
       "PUT /k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
       "PUT /k\nhello"},
      {"chunked with extensions and trailers",
       "DELETE /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "4;name=\"quoted\"\r\nWiki\r\n5 ; a=b\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n",
       "DELETE /d\nWikipedia"},
      {"empty chunked",
       "PATCH /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "PATCH /e\n"},
  };
  for (const auto& row : rows) {
    auto r = exchange(server.port(), row.request);
    EXPECT_EQ(r.status, 200) << row.name;
    EXPECT_EQ(r.body, row.body) << row.name;
  }
}

TEST(Server, LargeBodyArrivesWhole) {
  TestServer server([](Request& req) -> Future<void> {
    co_await req.respond(Http200, req.body);  // large: written straight from the body
  });
  std::string big(3 * 1024 * 1024 + 7, 'b');
  for (std::size_t i = 0; i < big.size(); i += 1000) big[i] = char('a' + i % 26);
  auto socket = connectTo(server.port());
  auto sending =
      socket.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) +
                  "\r\n\r\n" + big);
  auto r = awaitResponse((socket));
  waitFor(std::move(sending));
  EXPECT_EQ(r.body.size(), big.size());
  EXPECT_TRUE(r.body == big);
}

TEST(Server, BodyOverMaxBodyGets413AtOnceWithoutReadingIt) {
  TestServer server(echo, {.maxBody = 8});
  auto socket = connectTo(server.port());
  // Only the head is sent: the 413 must come without the server waiting for the body.
  waitFor(socket.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"));
  auto r = awaitResponse((socket));
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(r.headers["Connection"] == "close");
  EXPECT_TRUE(closedWithin(socket, 3000));
}

// Nim's tasynchttpserver_maxbody.nim, row for row.
TEST(NimMaxBody, ChunkedAndContentLengthLimits) {
  struct Row {
    std::string framing, body;
    std::size_t maximum;
    int expected;
    std::string expectedBody;
  };
  const std::vector<Row> rows = {
      {"Transfer-Encoding: chunked", "3\r\nabc\r\n0\r\n\r\n", 8, 200, "abc"},
      {"Transfer-Encoding: chunked", "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n", 8, 200, "abcdefgh"},
      {"Transfer-Encoding: chunked", "9\r\nabcdefghi\r\n0\r\n\r\n", 8, 413, ""},
      {"Transfer-Encoding: chunked", "4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n", 8, 413, ""},
      {"Transfer-Encoding: chunked", "9\r\n", 8, 413, ""},
      {"Transfer-Encoding: chunked", "4\r\nabcd\r\n5\r\n", 8, 413, ""},
      {"Transfer-Encoding: chunked", "0\r\n\r\n", 0, 200, ""},
      {"Transfer-Encoding: chunked", "1\r\n", 0, 413, ""},
      {"Content-Length: 8", "abcdefgh", 8, 200, "abcdefgh"},
      {"Content-Length: 9", "", 8, 413, ""},
  };
  for (const auto& row : rows) {
    bool handled = false;
    std::string observed;
    TestServer server(
        [&](Request& req) -> Future<void> {
          handled = true;
          observed = req.body;
          co_await req.respond(Http200, "ok");
        },
        {.maxBody = row.maximum});
    auto socket = connectTo(server.port());
    waitFor(socket.send("POST / HTTP/1.1\r\nHost: localhost\r\n" + row.framing +
                        "\r\nConnection: close\r\n\r\n" + row.body));
    auto r = awaitResponse((socket));
    EXPECT_EQ(r.status, row.expected) << row.framing << " " << row.body;
    EXPECT_TRUE(closedWithin(socket, 3000));
    EXPECT_EQ(handled, row.expected == 200);
    if (handled) {
      EXPECT_EQ(observed, row.expectedBody);
    }
  }
}

TEST(Server, ExpectContinueOnlyWhenTheBodyIsAboutToBeRead) {
  TestServer server(echo);
  auto socket = connectTo(server.port());
  waitFor(socket.send(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = awaitResponse((socket));
  EXPECT_EQ(interim.statusLine, "HTTP/1.1 100 Continue");
  waitFor(socket.send("data"));
  EXPECT_EQ(awaitResponse((socket)).body, "POST /\ndata");
  // The body came with the head: no 100 Continue, straight to the final response.
  waitFor(socket.send(
      "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"));
  auto r = awaitResponse((socket));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /2\nok");
  // Too large: 413 instead of 100.
  auto big = exchange(server.port(),
                      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n"
                      "Expect: 100-continue\r\n\r\n");
  EXPECT_EQ(big.status, 413);
}

TEST(Server, UnknownExpectationGets417) {
  TestServer server(echo);
  auto r = exchange(server.port(), "POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n");
  EXPECT_EQ(r.status, 417);
}

// --- Strictness: every malformed or ambiguous request is refused and the connection closed ------

TEST(Server, ConnectionsHaveNoDelaySetFromTheListener) {
  TestServer server([](Request& req) -> Future<void> {
    co_await req.respond(Http200, req.client.getSockOpt(OptNoDelay) ? "nodelay" : "nagle");
  });
  EXPECT_EQ(exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, "nodelay");
}

TEST(Server, BytesAfterARequestThatClosesAreDrainedNotReset) {
  TestServer server(hello);
  auto client = connectTo(server.port());
  // A request that ends the connection, and more bytes behind it: the server must not close
  // with them unread, which would reset the connection instead of ending it.
  std::string more(256 * 1024, 'x');
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + more));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.headers["Connection"] == "close");
  // Then a clean end of stream (recv returns nothing), not a reset (recv throws OSError).
  auto ending = [](AsyncSocket s) -> Future<std::string> {
    try {
      while (!(co_await s.recv(4096)).empty()) {
      }
      co_return "end of stream";
    } catch (const OSError& e) {
      co_return e.what();
    }
  }(client);
  ASSERT_TRUE(waitFor(withTimeout(ending, 3000)));
  EXPECT_EQ(std::move(ending).read(), "end of stream");
}

TEST(Server, MalformedAndSmugglingRequestsAreRefusedAndClosed) {
  bool handled = false;
  TestServer server([&](Request& req) -> Future<void> {
    handled = true;
    co_await req.respond(Http200, "should not happen");
  });
  struct Row {
    const char* name;
    std::string request;
    int status;
  };
  constexpr char kWithNul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
  const std::string withNul(kWithNul, sizeof kWithNul - 1);
  const std::vector<Row> rows = {
      {"CL and TE",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"differing CL",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
      {"list CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\n", 400},
      {"signed CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", 400},
      {"TE not ending in chunked",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       400},
      {"overflowing chunk size",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n",
       400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400},
      {"NUL in header", withNul, 400},
      {"bare CR in header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
      {"no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"unknown method", "BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
      {"garbage", "\x16\x03\x01 not http at all\r\n\r\n", 400},
      {"request line too long", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       414},
      {"header section too large",
       "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'v') + "\r\n\r\n", 431},
  };
  for (const auto& row : rows) {
    auto socket = connectTo(server.port());
    waitFor(socket.send(row.request));
    auto r = awaitResponse((socket));
    EXPECT_EQ(r.status, row.status) << row.name;
    EXPECT_TRUE(r.headers["Connection"] == "close") << row.name;
    EXPECT_FALSE(r.body.empty()) << row.name;
    EXPECT_TRUE(closedWithin(socket, 3000)) << row.name;
  }
  EXPECT_FALSE(handled);
}

TEST(Server, TooManyHeaderLinesGets431) {
  TestServer server(hello, {.maxHeaders = 10});
  std::string request = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 11; ++i) request += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(exchange(server.port(), request + "\r\n").status, 431);
}

TEST(Server, ErrorAfterGoodPipelinedRequestsKeepsTheirResponsesFirst) {
  TestServer server(echo);
  auto socket = connectTo(server.port());
  waitFor(socket.send(
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\n"));
  EXPECT_EQ(awaitResponse((socket)).body, "GET /1\n");
  EXPECT_EQ(awaitResponse((socket)).body, "GET /2\n");
  EXPECT_EQ(awaitResponse((socket)).status, 400);
  EXPECT_TRUE(closedWithin(socket, 3000));
}

// --- Responses without bodies
// ---------------------------------------------------------------------

TEST(Server, HeadKeepsContentLengthButSendsNoBody) {
  TestServer server(hello);
  auto socket = connectTo(server.port());
  waitFor(socket.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  // Read the HEAD response by hand: it announces 11 bytes that do not follow.
  EXPECT_EQ(waitFor(socket.recvLine()), "HTTP/1.1 200 OK");
  std::string line;
  bool sawLength = false;
  while ((line = waitFor(socket.recvLine())) != "\r\n") {
    if (line == "Content-Length: 11") sawLength = true;
  }
  EXPECT_TRUE(sawLength);
  auto next = awaitResponse((socket));  // the GET's response follows at once
  EXPECT_EQ(next.statusLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(next.body, "Hello World");
}

TEST(Server, NoBodyFor204And304) {
  TestServer server([](Request& req) -> Future<void> {
    co_await req.respond(req.url.path == "/204" ? Http204 : Http304, "ignored body");
  });
  auto socket = connectTo(server.port());
  for (const char* path : {"/204", "/304"}) {
    waitFor(socket.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = awaitResponse((socket));
    EXPECT_FALSE(r.headers.hasKey("Content-Length")) << path;
  }
  // Both responses were bodiless, so the next one parses cleanly.
  waitFor(socket.send("GET /204 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse((socket)).status, 204);
}

// --- Handlers that misbehave
// ----------------------------------------------------------------------

TEST(Server, ThrowingHandlerGets500AndOtherConnectionsGoOn) {
  TestServer server([](Request& req) -> Future<void> {
    if (req.url.path == "/throw") throw std::runtime_error("handler bug");
    co_await req.respond(Http200, "fine");
  });
  auto bystander = connectTo(server.port());
  waitFor(bystander.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse((bystander)).body, "fine");
  ::testing::internal::CaptureStderr();
  auto victim = connectTo(server.port());
  waitFor(victim.send("GET /throw HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = awaitResponse((victim));
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.status, 500);
  EXPECT_TRUE(closedWithin(victim, 3000));
  EXPECT_NE(log.find("handler bug"), std::string::npos) << log;
  waitFor(bystander.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse((bystander)).body, "fine");
}

TEST(Server, HandlerThatAnswersNothingGets500OnItsBehalf) {
  TestServer server([](Request&) -> Future<void> { co_return; });
  auto socket = connectTo(server.port());
  waitFor(socket.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse((socket)).status, 500);
  waitFor(socket.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));  // the connection stays usable
  EXPECT_EQ(awaitResponse((socket)).status, 500);
}

TEST(Server, HeaderInjectionIsRefused) {
  TestServer server([](Request& req) -> Future<void> {
    HttpHeaders evil;
    evil["X-Evil"] = "a\r\nSet-Cookie: stolen";
    co_await req.respond(Http200, "x", evil);
  });
  ::testing::internal::CaptureStderr();
  auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.status, 500);
  EXPECT_FALSE(r.headers.hasKey("Set-Cookie"));
}

TEST(Server, SlowHandlersAnswerWhenReadyAndAnsweredBytesAreNotHeldBack) {
  bool released = false;
  TestServer server([&](Request& req) -> Future<void> {
    if (req.url.path == "/slow") co_await sleepAsync(20);
    co_await req.respond(Http200, req.url.path);
    if (req.url.path == "/then-wait") {
      while (!released) co_await sleepAsync(1);  // the response must already be out
    }
  });
  auto socket = connectTo(server.port());
  waitFor(socket.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse((socket)).body, "/slow");
  waitFor(socket.send("GET /then-wait HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto reading = readResponse(socket);
  EXPECT_TRUE(waitFor(withTimeout(reading, 3000)));
  EXPECT_EQ(reading.read().body, "/then-wait");
  released = true;
}

TEST(Server, ClientVanishingMidRequestOrMidResponseCostsOnlyItsConnection) {
  TestServer server([](Request& req) -> Future<void> {
    co_await req.respond(Http200, std::string(8 * 1024 * 1024, 'x'));
  });
  {
    auto partial = connectTo(server.port());
    waitFor(partial.send("GET / HTTP/1.1\r\nHo"));
    partial.close();
  }
  {
    auto leaver = connectTo(server.port());
    waitFor(leaver.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    waitFor(leaver.recv(1000));  // the response is on its way
    linger abort{1, 0};
    ::setsockopt(leaver.getFd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    leaver.close();
  }
  auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 8u * 1024 * 1024);
}

// --- Nim's tasynchttpserver.nim and tasynchttpserver_transferencoding.nim
// ---------------------------

TEST(NimAsyncHttpServer, Status200And404AndCustomHeaders) {
  struct Row {
    HttpCode code;
    bool emptyHeaders;
    bool customLength;
    std::string body;
  };
  const std::vector<Row> rows = {{Http200, false, false, "Hello World, 200"},
                                 {Http404, false, false, "Hello World, 404"},
                                 {Http200, true, false, "Hello World, 200"},
                                 {Http200, false, true, ""}};
  for (const auto& row : rows) {
    TestServer server([&](Request& req) -> Future<void> {
      HttpHeaders headers = newHttpHeaders();
      if (row.customLength) headers["Content-Length"] = "0";
      std::string content =
          to_string(row.code) == "404 Not Found" ? "Hello World, 404" : "Hello World, 200";
      if (row.emptyHeaders || row.customLength) {
        co_await req.respond(row.code, content, headers);
      } else {
        co_await req.respond(row.code, content);
      }
    });
    auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    EXPECT_EQ(r.status, row.code.value);
    EXPECT_EQ(r.body, row.body);
    EXPECT_TRUE(r.headers["Content-Length"] == std::to_string(row.customLength ? 0 : 16));
  }
}

TEST(NimAsyncHttpServer, TransferEncodingBodies) {
  const std::string postBegin =
      "POST / HTTP/1.1\r\nHost: 127.0.0.1:64123\r\nAccept: */*\r\nTransfer-Encoding:chunked\r\n"
      "Content-Type: application/x-www-form-urlencoded\r\n\r\n";
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"b\r\nhello=world\r\n0\r\n\r\n", "hello=world"},
      {"e\r\nhello=encoding\r\n0\r\n\r\n", "hello=encoding"},
      {"7\r\nMozilla\r\n9\r\nDeveloper\r\n7\r\nNetwork\r\n0\r\n\r\n", "MozillaDeveloperNetwork"},
      {"4\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n",
       "Wikipedia in \r\n\r\nchunks."},
  };
  for (const auto& [chunks, expected] : rows) {
    std::string body;
    bool hasTe = false, hasCl = true;
    TestServer server([&](Request& req) -> Future<void> {
      body = req.body;
      hasTe = req.headers.hasKey("Transfer-Encoding");
      hasCl = req.headers.hasKey("Content-Length");
      co_await req.respond(Http200, "Good");
    });
    auto r = exchange(server.port(), postBegin + chunks);
    EXPECT_EQ(r.body, "Good");
    EXPECT_EQ(body, expected);
    EXPECT_TRUE(hasTe);
    EXPECT_FALSE(hasCl);
  }
}

TEST(Server, ServeKeepsTheSocketListenOpened) {
  // listen(Port(0)) to learn the port, then serve on it: a client that connected in between
  // must be served, not reset by a second listen.
  auto server = newAsyncHttpServer();
  server->listen(Port(0), "127.0.0.1");
  auto early = connectTo(server->getPort());
  waitFor(early.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto serving = server->serve(server->getPort(), hello, "127.0.0.1");
  EXPECT_EQ(awaitResponse(early).body, "Hello World");
  server->close();
  waitFor(std::move(serving));
}

TEST(Server, CloseEndsIdleConnectionsAndLetsBusyOnesFinish) {
  bool release = false;
  auto server = newAsyncHttpServer();
  server->listen(Port(0), "127.0.0.1");
  auto serving = server->serve(
      server->getPort(),
      [&](Request& req) -> Future<void> {
        while (req.url.path == "/busy" && !release) co_await sleepAsync(1);
        co_await req.respond(Http200, req.url.path);
      },
      "127.0.0.1");
  auto idle = connectTo(server->getPort());
  waitFor(idle.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(idle).body, "/first");  // now idle, waiting for its next request
  auto busy = connectTo(server->getPort());
  waitFor(busy.send("GET /busy HTTP/1.1\r\nHost: x\r\n\r\n"));
  poll(10);  // the busy request reaches its handler
  server->close();
  EXPECT_TRUE(closedWithin(idle, 2000));
  EXPECT_FALSE(serving.finished());  // serve() completes once the connections are gone
  release = true;
  auto r = awaitResponse(busy);
  EXPECT_EQ(r.body, "/busy");
  EXPECT_TRUE(r.headers["Connection"] == "close");
  EXPECT_TRUE(closedWithin(busy, 2000));
  waitFor(std::move(serving));
}

// --- Nim's tasynchttpserver_readtimeout.nim
// -------------------------------------------------------

namespace {

constexpr std::int64_t kReadTimeout = 200;
constexpr std::int64_t kSlack = 100;  // the clock starts a moment before the client sends

Future<void> okHandler(Request& req) {
  co_await req.respond(Http200, "ok");
}

}  // namespace

TEST(NimReadTimeout, StalledRequestsAreClosedAfterTheTimeout) {
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"GET /sl", ""},                                            // half a request line: silent
      {"GET / HTTP/1.1\r\nHost: loca", "HTTP/1.1 408"},           // half the headers
      {"GET / HTTP/1.1\r\nHost: localhost\r\n", "HTTP/1.1 408"},  // no end of head
      {"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc", "HTTP/1.1 408"},
      {"POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
       "HTTP/1.1 408"},
      {"", ""},  // nothing at all: silent
  };
  for (const auto& [prefix, expected] : rows) {
    bool handled = false;
    TestServer server(
        [&](Request& req) -> Future<void> {
          handled = true;
          co_await req.respond(Http200, "ok");
        },
        {.readTimeout = kReadTimeout});
    auto client = connectTo(server.port());
    if (!prefix.empty()) waitFor(client.send(prefix));
    auto sent = Clock::now();
    std::string reply = drainUntilClosed(client);
    EXPECT_GE(elapsedMs(sent), kReadTimeout - kSlack) << prefix;
    if (expected.empty()) {
      EXPECT_EQ(reply, "") << prefix;
    } else {
      EXPECT_EQ(reply.substr(0, expected.size()), expected) << prefix << " got: " << reply;
    }
    EXPECT_FALSE(handled) << prefix;
  }
}

TEST(NimReadTimeout, TricklingBytesDoesNotExtendTheDeadline) {
  TestServer server(okHandler, {.readTimeout = kReadTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\n"));
  auto started = Clock::now();
  auto trickle = [](AsyncSocket s) -> Future<void> {
    std::string header = "X-Slow: " + std::string(40, 'a');
    for (char c : header) {
      co_await s.send(std::string(1, c));
      co_await sleepAsync(25);
    }
  };
  auto trickling = trickle(client);
  std::string reply = drainUntilClosed(client);
  EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 408") << reply;
  EXPECT_LT(elapsedMs(started), 4 * kReadTimeout);
  try {
    waitFor(std::move(trickling));  // ends with an error: the server is gone
  } catch (const OSError&) {
  }
}

TEST(NimReadTimeout, RequestsInTimeAreServedEachWithAFreshDeadline) {
  TestServer server(okHandler, {.readTimeout = kReadTimeout});
  auto client = connectTo(server.port());
  for (int i = 0; i < 2; ++i) {  // head split by a pause shorter than the timeout
    waitFor(client.send("GET / HTTP/1.1\r\nHost: localhost\r\n"));
    waitFor(sleepAsync(kReadTimeout / 3));
    waitFor(client.send("\r\n"));
    EXPECT_EQ(awaitResponse(client).body, "ok");
  }
  for (int i = 0; i < 4; ++i) {  // a busy connection: each request gets its own deadline
    waitFor(sleepAsync(kReadTimeout / 2));
    waitFor(client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    EXPECT_EQ(awaitResponse(client).status, 200) << i;
  }
}

TEST(NimReadTimeout, IdleKeepAliveConnectionIsClosedSilently) {
  TestServer server(okHandler, {.readTimeout = kReadTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 200);
  auto idleSince = Clock::now();
  EXPECT_EQ(drainUntilClosed(client), "");
  EXPECT_GE(elapsedMs(idleSince), kReadTimeout - kSlack);
}

TEST(NimReadTimeout, SlowHandlerIsNotInterrupted) {
  TestServer server(
      [](Request& req) -> Future<void> {
        co_await sleepAsync(3 * kReadTimeout);
        co_await req.respond(Http200, "ok");
      },
      {.readTimeout = kReadTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
}

TEST(NimReadTimeout, WithoutATimeoutAStalledRequestIsWaitedFor) {
  TestServer server(okHandler);  // readTimeout = 0
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: localhost\r\n"));
  waitFor(sleepAsync(3 * kReadTimeout));
  waitFor(client.send("\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "ok");
}

TEST(Server, OriginFormTargetIsAPathNeverAnAuthority) {
  Uri seen;
  TestServer server([&](Request& req) -> Future<void> {
    seen = req.url;
    co_await req.respond(Http200, "");
  });
  exchange(server.port(), "GET //evil.example/x?a=1&b=%20 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(seen.hostname, "");
  EXPECT_EQ(seen.path, "//evil.example/x");
  EXPECT_EQ(seen.query, "a=1&b=%20");
  exchange(server.port(),
           "GET http://host.example:81/p?q HTTP/1.1\r\nHost: host.example:81\r\n\r\n");
  EXPECT_EQ(seen.hostname, "host.example");  // absolute-form goes through parseUri
  EXPECT_EQ(seen.port, "81");
  EXPECT_EQ(seen.path, "/p");
  EXPECT_EQ(seen.query, "q");
}

TEST(Server, SeveralThreadsEachWithItsOwnLoopServeOnePort) {
  std::mutex mutex;
  std::set<std::thread::id> servingThreads;
  auto server = newAsyncHttpServer({.threads = 2});
  server->listen(Port(0), "127.0.0.1");
  auto serving = server->serve(
      server->getPort(),
      [&](Request& req) -> Future<void> {
        {
          std::lock_guard lock(mutex);
          servingThreads.insert(std::this_thread::get_id());
        }
        co_await req.respond(Http200, req.url.path);
      },
      "127.0.0.1");
  // Connections are spread by the kernel (SO_REUSEPORT); 64 land on both loops but with
  // probability 2^-63 of all landing on one.
  std::vector<Future<std::string>> answers;
  for (int i = 0; i < 64; ++i) {
    answers.push_back([](Port port, int n) -> Future<std::string> {
      auto s = newAsyncSocket();
      co_await s.connect("127.0.0.1", port);
      co_await s.send("GET /" + std::to_string(n) +
                      " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      auto r = co_await readResponse(s);
      co_return r.body;
    }(server->getPort(), i));
  }
  auto bodies = waitFor(all(std::move(answers)));
  for (int i = 0; i < 64; ++i) EXPECT_EQ(bodies[i], "/" + std::to_string(i));
  server->close();  // stops and joins the other loop
  waitFor(std::move(serving));
  drainLoop();
  EXPECT_EQ(servingThreads.size(), 2u);
}

// --- Regressions found in review ----------------------------------------------------------------

TEST(Server, HandlerOutlivesAFailedFlushOfItsConnection) {
  // /slow resets its own client, then waits: flushing /a's answer fails under it. The handler
  // must still find its Request intact afterwards (ASan catches a use after free here).
  std::string seenAfterWait;
  AsyncSocket client;
  TestServer server([&](Request& req) -> Future<void> {
    if (req.url.path == "/slow") {
      linger abort{1, 0};
      ::setsockopt(client.getFd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
      client.close();  // the peer resets: the server's next write fails
      co_await sleepAsync(20);
      seenAfterWait = req.url.path;
      co_await req.respond(Http200, "late");
      co_return;
    }
    co_await req.respond(Http200, "a");  // corked: flushed when /slow starts waiting
  });
  ::testing::internal::CaptureStderr();
  client = connectTo(server.port());
  waitFor(client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (seenAfterWait.empty() && Clock::now() < deadline) poll(10);
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(seenAfterWait, "/slow");
}

// Found by the soak test: every client that left mid-response logged "request handler failed:
// send: ...", a line per client under load. A client going away is no handler failure.
TEST(Server, ClientLeavingMidResponseIsNotReportedAsAHandlerFailure) {
  ::testing::internal::CaptureStderr();
  bool sendFailed = false;
  {
    AsyncSocket client;
    TestServer server([&](Request& req) -> Future<void> {
      linger abort{1, 0};
      ::setsockopt(client.getFd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
      client.close();  // the peer resets mid-exchange
      co_await sleepAsync(20);
      try {
        co_await req.respond(Http200, std::string(4 << 20, 'x'));
      } catch (const OSError&) {
        sendFailed = true;
        throw;  // out of the handler, as a handler that does not expect it would let it go
      }
    });
    client = connectTo(server.port());
    waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto deadline = Clock::now() + std::chrono::seconds(3);
    while (!sendFailed && Clock::now() < deadline) poll(10);
  }  // the server is gone: its connection and the handler's failure too
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(sendFailed);
  EXPECT_EQ(log.find("request handler failed"), std::string::npos) << log;
}

TEST(Server, PipelinedRequestWithAStalledBodyGetsItsDeadlineAndTheEarlierAnswer) {
  TestServer server(okHandler, {.readTimeout = kReadTimeout});
  auto client = connectTo(server.port());
  waitFor(
      client.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: "
                  "x\r\nContent-Length: 10\r\n\r\n"));
  auto first = awaitResponse(client, 2000);  // not held back by the body that never comes
  EXPECT_EQ(first.status, 200);
  auto started = Clock::now();
  std::string rest = drainUntilClosed(client);
  EXPECT_EQ(rest.substr(0, 12), "HTTP/1.1 408") << rest;
  EXPECT_GE(elapsedMs(started), kReadTimeout - kSlack);
}

// --- Write timeout ------------------------------------------------------------------------------

namespace {

// A response far larger than loopback's socket buffers can hold, so that it waits on the client.
const std::string& hugeBody() {
  static const std::string body(32 << 20, 'b');
  return body;
}

// Answers with hugeBody(), recording how its respond ended.
struct HugeResponder {
  std::string outcome;  // "sent", or the error
  bool done = false;
  RequestCallback callback() {
    return [this](Request& req) -> Future<void> {
      try {
        co_await req.respond(Http200, hugeBody());
        outcome = "sent";
      } catch (const OSError& e) {
        outcome = e.what();
      }
      done = true;
    };
  }
};

}  // namespace

TEST(Server, ClientThatTakesNothingIsCutOffAfterTheWriteTimeout) {
  constexpr std::int64_t kWriteTimeout = 200;
  HugeResponder responder;
  TestServer server(responder.callback(), {.writeTimeout = kWriteTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto sent = Clock::now();
  auto deadline = sent + std::chrono::seconds(5);
  while (!responder.done && Clock::now() < deadline) poll(10);
  ASSERT_TRUE(responder.done);
  EXPECT_GE(elapsedMs(sent), kWriteTimeout - kSlack);
  EXPECT_NE(responder.outcome.find(std::strerror(ETIMEDOUT)), std::string::npos)
      << responder.outcome;
}

TEST(Server, WriteTimeoutClosesTheConnectionEvenWhenTheHandlerCarriesOn) {
  int handled = 0;
  bool timedOut = false;
  TestServer server(
      [&](Request& req) -> Future<void> {
        ++handled;
        try {
          co_await req.respond(Http200, hugeBody());
        } catch (const OSError&) {
          timedOut = true;  // swallowed: the connection must still not go on
        }
      },
      {.writeTimeout = 200});
  auto client = connectTo(server.port());
  waitFor(client.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!timedOut && Clock::now() < deadline) poll(10);
  ASSERT_TRUE(timedOut);
  // What was sent arrives, then the end: no second response after a truncated first one.
  auto draining = [](AsyncSocket s) -> Future<bool> {
    std::vector<char> piece(8 << 20);
    try {
      while (co_await s.recvSome(piece) > 0) {
      }
    } catch (const OSError&) {
    }
    co_return true;
  }(client);
  EXPECT_TRUE(waitFor(withTimeout(draining, 5000)));
  EXPECT_EQ(handled, 1);
}

TEST(Server, SlowButSteadyReaderIsNotCutOff) {
  constexpr std::int64_t kWriteTimeout = 300;
  HugeResponder responder;
  TestServer server(responder.callback(), {.writeTimeout = kWriteTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  // Takes the whole response in pieces with pauses shorter than the timeout: each piece taken
  // is progress, so the timeout never runs out, though the whole takes longer than it.
  auto started = Clock::now();
  std::size_t received = 0;
  std::vector<char> piece(8 << 20);
  while (received < hugeBody().size() && elapsedMs(started) < 10000) {
    received += waitFor(client.recvSome(piece));
    waitFor(sleepAsync(kWriteTimeout / 3));
  }
  EXPECT_GT(received, hugeBody().size());  // the body and its head
  EXPECT_GT(elapsedMs(started), kWriteTimeout);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!responder.done && Clock::now() < deadline) poll(10);
  EXPECT_EQ(responder.outcome, "sent");
}

TEST(Server, AnsweringTwiceIsRefusedAndTheNextRequestGetsItsOwnAnswer) {
  bool refused = false;
  TestServer server([&](Request& req) -> Future<void> {
    co_await req.respond(Http200, req.url.path);
    try {
      co_await req.respond(Http200, "second answer");
    } catch (const ValueError&) {
      refused = true;
    }
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "/1");
  EXPECT_EQ(awaitResponse(client).body, "/2");
  EXPECT_TRUE(refused);
}

TEST(Server, InterimResponseIsNotAnAnswer) {
  TestServer server([](Request& req) -> Future<void> {
    co_await req.respond(Http103, "");
    if (req.url.path == "/full") co_await req.respond(Http200, "final");
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET /full HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 103);
  EXPECT_EQ(awaitResponse(client).body, "final");
  waitFor(client.send("GET /interim-only HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 103);
  EXPECT_EQ(awaitResponse(client).status, 500);  // the server completes the exchange
}

// --- Regressions from the layered-server issue -------------------------------------------------

TEST(Server, StatusCodeOutside100To599IsRefusedBeforeAnythingIsSent) {
  std::vector<std::string> refusals;
  TestServer server([&](Request& req) -> Future<void> {
    int code = std::stoi(req.url.path.substr(1));
    try {
      co_await req.respond(HttpCode{code}, "bad");
    } catch (const ValueError& e) {
      refusals.push_back(e.what());
    }
    co_await req.respond(Http200, "refused");  // nothing was sent: the handler may answer
  });
  for (int code : {0, 1, 42, 99, 600, 1000}) {
    auto client = connectTo(server.port());
    waitFor(client.send("GET /" + std::to_string(code) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = awaitResponse(client);
    EXPECT_EQ(r.statusLine, "HTTP/1.1 200 OK") << code;
    EXPECT_EQ(r.body, "refused") << code;
  }
  EXPECT_EQ(refusals.size(), 6u);
}

namespace {

// The byte at `i` of a large body whose corruption would show.
char patternAt(std::size_t i) {
  return static_cast<char>('a' + (i * 7 + i / 4096) % 26);
}

// A plain function, not a coroutine: its string dies when it returns, long before a slow
// client has taken the response.
Future<void> answerFromHelper(Request& req, std::size_t size, bool& returned) {
  std::string body(size, '\0');
  for (std::size_t i = 0; i < size; ++i) body[i] = patternAt(i);
  auto sending = req.respond(Http200, body);
  returned = true;
  return sending;
}

}  // namespace

TEST(Server, RespondFromAHelperWhoseStringDiesSendsTheWholeBody) {
  constexpr std::size_t kSize = 8 << 20;
  bool returned = false;
  TestServer server(
      [&](Request& req) -> Future<void> { co_await answerFromHelper(req, kSize, returned); });
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!returned && Clock::now() < deadline) poll(10);
  ASSERT_TRUE(returned);
  // The helper's string is gone; the client reads only now, and reallocation scribbles over
  // whatever memory the freed string had.
  std::vector<std::string> scribble(64, std::string(kSize / 64, '#'));
  auto r = awaitResponse(client, 10000);
  ASSERT_EQ(r.body.size(), kSize);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < kSize; ++i) wrong += r.body[i] != patternAt(i) ? 1 : 0;
  EXPECT_EQ(wrong, 0u);
}

namespace {
// The descriptor of this process's socket listening on `port`, found by its address: tests use
// it to set options the server's API does not offer.
int listeningDescriptor(Port port) {
  for (int fd = 3; fd < 4096; ++fd) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    int listening = 0;
    socklen_t optionLength = sizeof listening;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0 &&
        address.sin_family == AF_INET && ntohs(address.sin_port) == static_cast<int>(port) &&
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optionLength) == 0 && listening) {
      return fd;
    }
  }
  return -1;
}
}  // namespace

TEST(Server, ReadDeadlineDoesNotCutTheFlushOfEarlierPipelinedAnswers) {
  constexpr int kGets = 40;
  constexpr std::size_t kBodySize = 1024;  // small: corked, and written as one batch
  TestServer server(
      [](Request& req) -> Future<void> {
        co_await req.respond(Http200, std::string(kBodySize, 'g'));
      },
      {.readTimeout = kReadTimeout});
  // Small buffers on both sides (accepted sockets inherit the listener's): the batch of
  // answers cannot all leave until the client reads, which it does only after the deadline.
  int small = 4096;
  int listener = listeningDescriptor(server.port());
  ASSERT_GE(listener, 0);
  ASSERT_EQ(::setsockopt(listener, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  auto client = newAsyncSocket();
  ASSERT_EQ(::setsockopt(client.getFd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  waitFor(client.connect("127.0.0.1", server.port()));
  std::string batch;
  for (int i = 0; i < kGets; ++i)
    batch += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  batch += "POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";
  waitFor(client.send(batch));
  auto late = Clock::now() + std::chrono::milliseconds(kReadTimeout * 2);
  while (Clock::now() < late) poll(10);  // the deadline passes while the answers wait
  for (int i = 0; i < kGets; ++i) {
    auto r = awaitResponse(client, 5000);
    ASSERT_EQ(r.statusLine, "HTTP/1.1 200 OK") << i;
    ASSERT_EQ(r.body, std::string(kBodySize, 'g')) << i;
  }
  auto timeout = awaitResponse(client, 5000);
  EXPECT_EQ(timeout.status, 408);
  EXPECT_TRUE(closedWithin(client, 3000));
}

static_assert(!std::is_copy_constructible_v<Request> && !std::is_copy_assignable_v<Request>,
              "a copied Request would outlive its exchange");

TEST(NimReadTimeout, AHugeTimeoutMeansNeverNotAnOverflow) {
  TestServer server(okHandler, {.readTimeout = std::numeric_limits<std::int64_t>::max()});
  auto client = connectTo(server.port());
  poll(10);  // the connection waits for its request with the deadline armed
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client, 2000).status, 200);
}

TEST(NimReadTimeout, TheNextRequestsDeadlineStartsAfterASlowSynchronousHandler) {
  // The handler blocks its loop for longer than readTimeout; the deadline for the next request
  // must count from when the server waits for it, not from the loop's stale time.
  TestServer server(
      [](Request& req) -> Future<void> {
        if (req.url.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(400));
        co_await req.respond(Http200, req.url.path);
      },
      {.readTimeout = 250});
  auto client = connectTo(server.port());
  waitFor(client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "/slow");
  waitFor(client.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client, 2000).body, "/next");
}
