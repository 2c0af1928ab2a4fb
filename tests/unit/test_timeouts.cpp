// The named timeouts: headerTimeout, bodyTimeout, idleTimeout, and writeTimeout's minimum rate.
#include "http_test_client.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

constexpr std::int64_t kTimeout = 300;
constexpr std::int64_t kSlack = 100;  // the server's clock starts a moment before the client's

Future<void> okHandler(Request& req) {
  co_await req.respond(Http200, "ok");
}

// Sends `bytes` one at a time, `gapMs` apart; ends quietly when the server is gone.
Future<void> trickle(AsyncSocket socket, std::string bytes, std::int64_t gapMs) {
  try {
    for (char c : bytes) {
      co_await socket.send(std::string(1, c));
      co_await sleepAsync(gapMs);
    }
  } catch (const OSError&) {
  }
}

}  // namespace

TEST(Timeouts, DefaultsAreSafeAndReadTimeoutKeepsNimsZero) {
  ServerSettings settings;
  EXPECT_EQ(settings.headerTimeout, 10000);
  EXPECT_EQ(settings.bodyTimeout, 30000);
  EXPECT_EQ(settings.idleTimeout, 60000);
  EXPECT_EQ(settings.writeTimeout, 60000);
  EXPECT_EQ(settings.writeMinRate, 1024u);
  EXPECT_EQ(settings.readTimeout, 0);
}

TEST(Timeouts, SlowlorisIsCutByTheHeaderTimeoutWith408) {
  TestServer server(okHandler, {.headerTimeout = kTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\n"));
  auto started = Clock::now();
  // A header byte every 50 ms: every read makes progress, but the head never ends in time.
  auto trickling = trickle(client, "X-Slow: " + std::string(100, 'a'), 50);
  std::string reply = drainUntilClosed(client);
  EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 408") << reply;
  ::testing::Test::RecordProperty("observedMs", static_cast<int>(elapsedMs(started)));
  EXPECT_GE(elapsedMs(started), kTimeout - kSlack);
  EXPECT_LT(elapsedMs(started), 5 * kTimeout);
  waitFor(std::move(trickling));
}

TEST(Timeouts, HeaderTimeoutAnswers408ForAnyByteAndClosesQuietlyForNone) {
  for (std::string sent : {"G", ""}) {
    TestServer server(okHandler, {.headerTimeout = kTimeout});
    auto client = connectTo(server.port());
    if (!sent.empty()) waitFor(client.send(sent));
    auto started = Clock::now();
    std::string reply = drainUntilClosed(client);
    ::testing::Test::RecordProperty(sent.empty() ? "observedMsNoByte" : "observedMsOneByte",
                                    static_cast<int>(elapsedMs(started)));
    EXPECT_GE(elapsedMs(started), kTimeout - kSlack) << sent;
    EXPECT_EQ(reply.substr(0, 12), sent.empty() ? "" : "HTTP/1.1 408") << sent;
  }
}

TEST(Timeouts, HeaderTimeoutStartsAtTheFirstByteNotAtTheIdleWait) {
  TestServer server(okHandler, {.headerTimeout = kTimeout, .idleTimeout = 10 * kTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 200);
  waitFor(sleepAsync(kTimeout + kSlack));  // idle for longer than the header timeout
  waitFor(client.send("GET / HTTP/1.1\r\n"));
  waitFor(sleepAsync(kTimeout / 2));  // then a head that takes less than it
  waitFor(client.send("Host: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 200);
}

// Found by the soak test: a new connection parked before its first byte restarted its header
// timeout when that byte came, so that it could hold on for up to twice headerTimeout.
TEST(Timeouts, ParkingANewConnectionDoesNotRestartItsHeaderTimeout) {
  TestServer server(okHandler, {.headerTimeout = kTimeout, .idleRelease = 20});
  auto connected = Clock::now();
  auto client = connectTo(server.port());
  auto until = Clock::now() + std::chrono::seconds(2);
  while (server.server().parkedConnections() == 0 && Clock::now() < until) poll(5);
  ASSERT_EQ(server.server().parkedConnections(), 1u);
  waitFor(sleepAsync(kTimeout - kSlack - elapsedMs(connected)));  // then a head, slowly
  Future<void> sending = trickle(client, "GET / HTTP/1.1\r\nHost: x\r\n", 20);
  std::string statusLine = waitFor(client.recvLine(256));
  auto answeredMs = elapsedMs(connected);
  ::testing::Test::RecordProperty("observedMsParkedNew", static_cast<int>(answeredMs));
  EXPECT_EQ(statusLine.substr(0, 12), "HTTP/1.1 408");
  EXPECT_LT(answeredMs, kTimeout + kSlack);
  drainUntilClosed(client);
  waitFor(std::move(sending));
}

TEST(Timeouts, StalledBodyGets408AfterTheBodyTimeoutBufferedOrStreamed) {
  for (bool bufferBody : {true, false}) {
    bool failedInHandler = false;
    TestServer server(
        [&](Request& req) -> Future<void> {
          try {
            co_await req.readBody();
          } catch (const OSError&) {
            failedInHandler = true;
            throw;
          }
          co_await req.respond(Http200, "ok");
        },
        {.bufferBody = bufferBody, .bodyTimeout = kTimeout});
    auto client = connectTo(server.port());
    waitFor(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
    auto started = Clock::now();
    std::string reply = drainUntilClosed(client);
    EXPECT_EQ(reply.substr(0, 12), "HTTP/1.1 408") << bufferBody << ": " << reply;
    ::testing::Test::RecordProperty(bufferBody ? "observedMsBuffered" : "observedMsStreamed",
                                    static_cast<int>(elapsedMs(started)));
    EXPECT_GE(elapsedMs(started), kTimeout - kSlack);
    EXPECT_EQ(failedInHandler, !bufferBody);
  }
}

TEST(Timeouts, BodyTimeoutIsBetweenBytesNotForTheWholeBody) {
  TestServer server([](Request& req) -> Future<void> { co_await req.respond(Http200, req.body); },
                    {.bodyTimeout = kTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n"));
  auto started = Clock::now();
  waitFor(trickle(client, "abcdefgh", kTimeout / 3));  // 8 gaps: longer than the timeout
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "abcdefgh");
  EXPECT_GT(elapsedMs(started), kTimeout);
}

TEST(Timeouts, TheHandlersOwnWorkBetweenBodyReadsIsNotCounted) {
  TestServer server(
      [](Request& req) -> Future<void> {
        std::string body(co_await req.bodyChunk());
        co_await sleepAsync(2 * kTimeout);  // work longer than the body timeout
        co_await req.readBody();
        co_await req.respond(Http200, body + req.body);
      },
      {.bufferBody = false, .bodyTimeout = kTimeout});
  auto client = connectTo(server.port());
  waitFor(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc"));
  waitFor(sleepAsync(2 * kTimeout + kTimeout / 2));  // the handler waits only kTimeout / 2
  waitFor(client.send("def"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "abcdef");
}

TEST(Timeouts, IdleKeepAliveConnectionIsClosedQuietlyParkedOrNot) {
  for (std::int64_t idleRelease : {0, 50}) {
    TestServer server(okHandler, {.idleTimeout = kTimeout, .idleRelease = idleRelease});
    auto client = connectTo(server.port());
    waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(awaitResponse(client).status, 200);
    auto idleSince = Clock::now();
    if (idleRelease > 0) {
      auto until = Clock::now() + std::chrono::seconds(2);
      while (server.server().parkedConnections() == 0 && Clock::now() < until) poll(10);
      EXPECT_EQ(server.server().parkedConnections(), 1u);
    }
    EXPECT_EQ(drainUntilClosed(client), "") << idleRelease;
    ::testing::Test::RecordProperty(idleRelease > 0 ? "observedMsParked" : "observedMs",
                                    static_cast<int>(elapsedMs(idleSince)));
    EXPECT_GE(elapsedMs(idleSince), kTimeout - kSlack) << idleRelease;
    EXPECT_EQ(server.server().parkedConnections(), 0u);
  }
}

TEST(Timeouts, AParkedConnectionWokenByARequestIsServed) {
  TestServer server(okHandler, {.idleTimeout = 10 * kTimeout, .idleRelease = 50});
  auto client = connectTo(server.port());
  for (int i = 0; i < 2; ++i) {
    waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(awaitResponse(client).status, 200) << i;
    auto until = Clock::now() + std::chrono::seconds(2);
    while (server.server().parkedConnections() == 0 && Clock::now() < until) poll(10);
    EXPECT_EQ(server.server().parkedConnections(), 1u) << i;
  }
}

namespace {

// A response far larger than loopback's socket buffers hold, and how its respond ended.
struct LargeResponder {
  std::string body = std::string(32 << 20, 'b');
  std::string outcome;  // "sent", or the error
  bool done = false;
  RequestCallback callback() {
    return [this](Request& req) -> Future<void> {
      try {
        co_await req.respond(Http200, body);
        outcome = "sent";
      } catch (const OSError& e) {
        outcome = e.what();
      }
      done = true;
    };
  }
};

// Reads 64 KiB every 20 ms (3.2 MB/s) for up to `ms`, or until `done`; the bytes read. Smaller
// reads would not reopen loopback's receive window (its MSS is 64 KiB) at each read, and a
// slower pace would not wake the server within its writeTimeout (a socket reports writable
// once a third of its send buffer is free).
std::size_t readSlowly(AsyncSocket client, std::int64_t ms, const bool& done) {
  auto started = Clock::now();
  std::size_t received = 0;
  std::vector<char> piece(65536);
  try {
    while (!done && elapsedMs(started) < ms) {
      std::size_t n = waitFor(client.recvSome(piece));
      if (n == 0) break;
      received += n;
      waitFor(sleepAsync(20));
    }
  } catch (const OSError&) {
  }
  return received;
}

}  // namespace

TEST(Timeouts, ClientTakingBytesBelowTheMinimumRateIsCutOff) {
  LargeResponder responder;
  // Progress lets the 1 s writeTimeout never pass; 3.2 MB/s is under the rate (cut at ~1.5 s).
  TestServer server(responder.callback(), {.writeTimeout = 1000, .writeMinRate = 10000000});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto started = Clock::now();
  std::size_t received = readSlowly(client, 6000, responder.done);
  // Cut while the client was still reading, not by the writeTimeout once it stopped.
  ASSERT_TRUE(responder.done) << "still sending after " << elapsedMs(started) << " ms";
  ::testing::Test::RecordProperty("cutAfterMs", static_cast<int>(elapsedMs(started)));
  ::testing::Test::RecordProperty("bytesTaken", std::to_string(received));
  EXPECT_NE(responder.outcome.find(std::strerror(ETIMEDOUT)), std::string::npos)
      << responder.outcome;
  EXPECT_LT(received, responder.body.size());
}

TEST(Timeouts, ClientTakingBytesAboveTheMinimumRateIsNotCutOff) {
  LargeResponder responder;
  TestServer server(responder.callback(), {.writeTimeout = 1000, .writeMinRate = 1600000});
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  readSlowly(client, 3000, responder.done);  // twice the rate, for three write timeouts
  EXPECT_FALSE(responder.done) << responder.outcome;
  client.close();
  auto until = Clock::now() + std::chrono::seconds(2);
  while (!responder.done && Clock::now() < until) poll(10);
}
