// Whole connections over the in-memory transport: exact bytes out for bytes in, however the
// input is split, with no socket and no timing involved.
#include <asynchttp/asynchttpserver.hpp>

#include "memory_connection.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <thread>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

Future<void> echoPath(Request& req) {
  co_await req.respond(Http200, req.url.path + " " + req.body);
}

// Streams the request body back as it is read.
Future<void> streamEcho(Request& req) {
  ResponseStream s = co_await req.respondStream(Http200);
  for (std::string_view piece; !(piece = co_await req.bodyChunk()).empty();) {
    co_await s.write(piece);
  }
  co_await s.finish();
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

// --- Review findings, each pinned down byte by byte --------------------------------------------

TEST(MemoryTransport, ErrorAfterAHeadRequestStillCarriesItsBody) {
  MemoryConnection connection(echoPath);
  std::string out = connection.exchange(
      "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n");
  auto error = out.find("HTTP/1.1 400");
  ASSERT_NE(error, std::string::npos) << out;
  std::string rest = out.substr(error);
  auto length = std::stoul(rest.substr(rest.find("Content-Length: ") + 16));
  EXPECT_EQ(rest.size() - (rest.find("\r\n\r\n") + 4), length) << rest;
}

TEST(MemoryTransport, StreamStartedBeforeReadingStillSendsContinue) {
  MemoryConnection connection(streamEcho, {.bufferBody = false});
  EXPECT_EQ(connection.exchange("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                "Content-Length: 2\r\n\r\n"),
            "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(connection.exchange("ok"),
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
}

TEST(MemoryTransport, HeadOfAnEmptyStreamAnnouncesNoLength) {
  MemoryConnection connection([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.finish();
  });
  EXPECT_EQ(connection.exchange("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK\r\n\r\n");
  EXPECT_EQ(connection.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST(MemoryTransport, InterimResponsesFollowRfc9110) {
  std::vector<std::string> refused;
  MemoryConnection connection([&](Request& req) -> Future<void> {
    co_await req.respond(Http103, "");  // dropped for HTTP/1.0
    for (HttpCode code : {Http101}) {
      try {
        co_await req.respond(code, "");
      } catch (const ValueError& e) {
        refused.push_back(e.what());
      }
    }
    co_await req.respond(Http200, "final");
    try {
      co_await req.respond(Http103, "");  // after the answer: it would precede the next one's
    } catch (const ValueError& e) {
      refused.push_back(e.what());
    }
  });
  EXPECT_EQ(connection.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
  EXPECT_EQ(connection.exchange("GET / HTTP/1.0\r\n\r\n"),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfinal");
  EXPECT_EQ(refused.size(), 4u);
}

TEST(MemoryTransport, ClosingOverAHandlersKeepAliveSaysSo) {
  MemoryConnection connection([](Request& req) -> Future<void> {
    auto headers = newHttpHeaders({{"Connection", "keep-alive"}});
    co_await req.respond(Http200, "x", headers);
  });
  std::string out = connection.exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("keep-alive"), std::string::npos) << out;  // not both
  EXPECT_TRUE(connection.pipe().serverClosed);
}

TEST(MemoryTransport, EmptyDeclaredBodyIsNoUnreadBody) {
  int calls = 0;
  MemoryConnection connection(
      [&](Request& req) -> Future<void> {
        ++calls;
        co_await req.respond(Http200, "ok");
      },
      {.bufferBody = false});
  std::string twice = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(connection.exchange(twice + twice),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(calls, 2);
}

TEST(MemoryTransport, BodyBytesBeforeAMalformedChunkComeFirst) {
  std::string seen;
  std::string error;
  MemoryConnection connection(
      [&](Request& req) -> Future<void> {
        try {
          for (std::string_view piece; !(piece = co_await req.bodyChunk()).empty();) seen += piece;
        } catch (const ValueError& e) {
          error = e.what();
        }
      },
      {.bufferBody = false});
  std::string out = connection.exchange(
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX");
  EXPECT_EQ(seen, "abc");  // as if the bytes had come one by one
  EXPECT_NE(error.find("400"), std::string::npos) << error;
  EXPECT_EQ(out.substr(0, 24), "HTTP/1.1 400 Bad Request") << out;
}

TEST(MemoryTransport, UnreadBodyDrainEndsEvenWhenBytesArriveAsItsTimeRunsOut) {
  MemoryConnection connection(
      [](Request& req) -> Future<void> { co_await req.respond(Http200, "early"); },
      {.bufferBody = false});
  connection.exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
  // The loop is not run while the drain's second passes: its timer and the next bytes are then
  // handled in the same turn, and the wake-up for the bytes is queued before the timer fires.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  connection.pipe().send("0123456789");
  poll(0);
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (!connection.ended() && Clock::now() < deadline) poll(10);
  EXPECT_TRUE(connection.ended());
}

TEST(MemoryTransport, StalledStreamedBodyGets408FromTheReadDeadline) {
  bool failed = false;
  MemoryConnection connection(
      [&](Request& req) -> Future<void> {
        try {
          co_await req.readBody();
        } catch (const OSError&) {
          failed = true;
          throw;
        }
        co_await req.respond(Http200, "whole");
      },
      {.bufferBody = false, .readTimeout = 100});
  connection.exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (!failed && Clock::now() < deadline) poll(10);
  connection.settle();
  EXPECT_TRUE(failed);
  EXPECT_EQ(connection.output().substr(0, 28), "HTTP/1.1 408 Request Timeout");
}

TEST(MemoryTransport, StreamKeptPastTheHandlerReachesNothing) {
  std::optional<ResponseStream> kept;
  MemoryConnection connection([&](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.write("first");
    kept.emplace(std::move(s));  // outlives the exchange
  });
  connection.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(kept.has_value());
  EXPECT_TRUE(kept->finished());
  EXPECT_THROW(waitFor(kept->write("late")), ValueError);
  kept.reset();  // and its end touches nothing
}

TEST(MemoryTransport, StreamKeptBeforeItsFirstPieceGetsOne500) {
  for (bool throws : {false, true}) {
    std::optional<ResponseStream> kept;
    MemoryConnection connection([&](Request& req) -> Future<void> {
      ResponseStream s = co_await req.respondStream(Http200);
      kept.emplace(std::move(s));  // handed away before any piece
      if (throws) throw std::runtime_error("after handing the stream away");
    });
    std::string out = connection.exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(out.find("HTTP/1.1 500"), 0u) << out;
    EXPECT_EQ(out.find("HTTP/1.1", 1), std::string::npos) << out;  // one response, not two
    EXPECT_THROW(waitFor(kept->write("late")), ValueError);
  }
}

TEST(MemoryTransport, BodyRefusedWhileAStreamWaitsLingersBeforeClosing) {
  MemoryConnection connection(
      [](Request& req) -> Future<void> {
        ResponseStream s = co_await req.respondStream(Http200);
        co_await req.readBody(10);  // throws: 413 answered instead of the stream
      },
      {.bufferBody = false});
  std::string out = connection.exchange(
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + std::string(20, 'b'));
  EXPECT_EQ(out.substr(0, 12), "HTTP/1.1 413") << out;
  EXPECT_TRUE(connection.pipe().serverShutWrite);
  EXPECT_FALSE(connection.pipe().serverClosed);  // still draining what the client sends
  connection.pipe().endInput();
  connection.settle();
  EXPECT_TRUE(connection.pipe().serverClosed);
}

TEST(MemoryTransport, ReadDeadlineCountsOnlyTheWaitsForTheBody) {
  MemoryConnection connection(
      [](Request& req) -> Future<void> {
        if (req.url.path == "/late-read") co_await sleepAsync(150);  // before reading
        co_await req.readBody();
        if (req.url.path == "/work-after") co_await sleepAsync(150);  // after reading it all
        co_await req.respond(Http200, req.url.path + " " + req.body);
      },
      {.bufferBody = false, .readTimeout = 50});
  connection.pipe().send(
      "POST /late-read HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab"
      "POST /work-after HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\ncd"
      "GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string out;
  auto deadline = Clock::now() + std::chrono::seconds(3);
  while (out.find("/next") == std::string::npos && Clock::now() < deadline) {
    poll(10);
    out += connection.output();
  }
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n/late-read ab"
            "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n/work-after cd"
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n/next ");
}

TEST(MemoryTransport, ContinueExpectedButBodyAlreadySentKeepsTheConnection) {
  MemoryConnection connection(streamEcho, {.bufferBody = false});
  std::string out = connection.exchange(
      "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n1234567");
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n1234567\r\n0\r\n\r\n");
  EXPECT_FALSE(connection.ended());
}
