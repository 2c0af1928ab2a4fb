// Whole connections over the in-memory transport: exact bytes out for bytes in, however the
// input is split, with no socket and no timing involved.
#include <asynchttp/asynchttpserver.hpp>

#include "memory_connection.hpp"

#include <gtest/gtest.h>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

Future<void> echoPath(Request& req) {
  co_await req.respond(Http200, req.url.path + " " + req.body);
}

const std::string kPipelined =
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
    "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    "HEAD /d HTTP/1.1\r\nHost: x\r\n\r\n";
const std::string kAnswers =
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n/a "
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/b xyz"
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n/c hi"
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";  // HEAD: the length, no body

}  // namespace

TEST(MemoryTransport, PipelinedRequestsGetExactlyTheirAnswers) {
  MemoryConnection connection(echoPath);
  EXPECT_EQ(connection.exchange(kPipelined), kAnswers);
  EXPECT_FALSE(connection.ended());  // kept alive
  connection.pipe().endInput();
  connection.settle();
  EXPECT_TRUE(connection.ended());
  EXPECT_TRUE(connection.pipe().serverClosed);
}

TEST(MemoryTransport, InputSplitAtEveryByteGivesTheSameBytes) {
  MemoryConnection connection(echoPath);
  std::string out;
  for (char c : kPipelined) out += connection.exchange(std::string_view(&c, 1));
  EXPECT_EQ(out, kAnswers);
}

TEST(MemoryTransport, ReadsOfOneByteGiveTheSameBytes) {
  MemoryConnection connection(echoPath);
  connection.pipe().maxRead = 1;
  EXPECT_EQ(connection.exchange(kPipelined), kAnswers);
}

TEST(MemoryTransport, StreamedBodyWaitsForContinueBeforeTheClientSendsIt) {
  MemoryConnection connection(
      [](Request& req) -> Future<void> {
        std::string body;
        for (;;) {
          std::string_view piece = co_await req.bodyChunk();
          if (piece.empty()) break;
          body += "[" + std::string(piece) + "]";
        }
        co_await req.respond(Http200, body);
      },
      {.bufferBody = false});
  EXPECT_EQ(connection.exchange("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                "Content-Length: 6\r\n\r\n"),
            "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(connection.exchange("abc"), "");
  EXPECT_EQ(connection.exchange("def"), "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n[abc][def]");
}

TEST(MemoryTransport, StreamedResponseIsFramedChunkByChunk) {
  MemoryConnection connection([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.write("0123456789abcdef!");
    co_await s.finish();
  });
  EXPECT_EQ(connection.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n0123456789abcdef!\r\n"
            "0\r\n\r\n");
}

TEST(MemoryTransport, CutCloseDelimitedResponseEndsInAReset) {
  MemoryConnection connection([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.write("part");
  });  // dropped: for HTTP/1.0 a plain close would look like the body's end
  EXPECT_EQ(connection.exchange("GET / HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart");
  EXPECT_TRUE(connection.pipe().serverAborted);
}

TEST(MemoryTransport, MalformedRequestGets400ThenTheSendingSideCloses) {
  MemoryConnection connection(echoPath);
  std::string out = connection.exchange("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n");
  EXPECT_EQ(out.substr(0, 24), "HTTP/1.1 400 Bad Request");
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(connection.pipe().serverShutWrite);  // lingering: it still drains the client
  connection.pipe().endInput();
  connection.settle();
  EXPECT_TRUE(connection.pipe().serverClosed);
}

TEST(MemoryTransport, ClientLeavingMidBodyEndsTheConnection) {
  MemoryConnection connection(echoPath);
  EXPECT_EQ(connection.exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"), "");
  connection.pipe().endInput();
  connection.settle();
  EXPECT_TRUE(connection.ended());
  EXPECT_EQ(connection.output(), "");  // the handler never ran
}
