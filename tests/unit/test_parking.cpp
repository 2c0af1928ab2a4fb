// Parked connections (ServerSettings::idleRelease): an idle keep-alive connection is reduced to
// a small record and made again when its next request comes, invisibly to client and handler.
#include "../http_test_client.hpp"

#include <functional>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

constexpr std::int64_t kIdleRelease = 20;

// Polls the loop until `condition` holds; false after `ms`.
bool eventually(const std::function<bool()>& condition, std::int64_t ms = 3000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    poll(5);
  }
  return true;
}

// Answers with the method, the path, the peer's address and the body.
Future<void> describe(Request& req) {
  std::string text = std::string(to_string(req.reqMethod)) + " " + req.url.path + " " +
                     req.hostname + " " + req.body;
  co_await req.respond(Http200, text);
}

ServerSettings parkingSoon() {
  ServerSettings settings;
  settings.idleRelease = kIdleRelease;
  return settings;
}

// A connection that has made one request, and is idle.
AsyncSocket idleClient(TestServer& server) {
  auto client = connectTo(server.port());
  waitFor(client.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "GET /first 127.0.0.1 ");
  return client;
}

// A connection that has made one request and is now parked.
AsyncSocket parkedClient(TestServer& server) {
  auto client = idleClient(server);
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == 1; }));
  return client;
}

}  // namespace

TEST(ParkedConnection, ServesTheNextRequestOnTheSameConnection) {
  TestServer server(describe, parkingSoon());
  auto client = parkedClient(server);
  waitFor(client.send("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "POST /second 127.0.0.1 hello");  // the peer's address is found again
  EXPECT_EQ(server.server().parkedConnections(), 0u);
  // And it parks again, and wakes again.
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == 1; }));
  waitFor(client.send("GET /third HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "GET /third 127.0.0.1 ");
}

TEST(ParkedConnection, RequestLargerThanTheFirstReadIsWhole) {
  TestServer server(
      [](Request& req) -> Future<void> {
        if (!req.headers.hasKey("X-Big")) return describe(req);
        return req.respond(Http200, std::to_string(std::string(req.headers["X-Big"]).size()));
      },
      parkingSoon());
  auto client = parkedClient(server);
  std::string big(20000, 'b');  // far past the 4 KiB read that wakes a parked connection
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 200) << r.statusLine;
  EXPECT_EQ(r.body, "20000");
}

TEST(ParkedConnection, PipelinedRequestsAfterParkingAreAllAnswered) {
  TestServer server(describe, parkingSoon());
  auto client = parkedClient(server);
  waitFor(client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "GET /a 127.0.0.1 ");
  EXPECT_EQ(awaitResponse(client).body, "GET /b 127.0.0.1 ");
}

TEST(ParkedConnection, RequestArrivingInPiecesIsWaitedFor) {
  TestServer server(describe, parkingSoon());
  auto client = parkedClient(server);
  waitFor(client.send("GET /slow HT"));
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == 0; }));
  waitFor(client.send("TP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "GET /slow 127.0.0.1 ");
}

TEST(ParkedConnection, ClientLeavingFreesIt) {
  TestServer server(describe, parkingSoon());
  int before = activeDescriptors();
  auto client = parkedClient(server);
  client.close();
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == 0; }));
  EXPECT_TRUE(eventually([&] { return activeDescriptors() == before; }));
}

TEST(ParkedConnection, ServerCloseClosesIt) {
  TestServer server(describe, parkingSoon());
  auto client = parkedClient(server);
  server.server().close();
  EXPECT_TRUE(closedWithin(client, 2000));
  EXPECT_EQ(server.server().parkedConnections(), 0u);
}

namespace {

ServerSettings parkingSoonWithReadTimeout(std::int64_t ms) {
  ServerSettings settings = parkingSoon();
  settings.readTimeout = ms;
  return settings;
}

std::int64_t msSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

}  // namespace

TEST(ParkedConnection, ReadTimeoutStillClosesItSilently) {
  constexpr std::int64_t kReadTimeout = 300;
  TestServer server(describe, parkingSoonWithReadTimeout(kReadTimeout));
  auto client = idleClient(server);
  auto idleSince = Clock::now();  // the deadline was armed just before: the clock starts late
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == 1; }));
  EXPECT_TRUE(closedWithin(client, 3000));  // nothing sent: no request had begun
  EXPECT_GE(msSince(idleSince), kReadTimeout - 100);
  EXPECT_EQ(server.server().parkedConnections(), 0u);
}

TEST(ParkedConnection, WakingDoesNotRestartTheReadDeadline) {
  constexpr std::int64_t kReadTimeout = 600;
  TestServer server(describe, parkingSoonWithReadTimeout(kReadTimeout));
  auto client = idleClient(server);
  auto idleSince = Clock::now();
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == 1; }));
  waitFor(sleepAsync(kReadTimeout / 2));
  waitFor(client.send("GET /slow HTTP/1.1\r\n"));  // wakes it; the head never ends
  EXPECT_EQ(awaitResponse(client, 3000).status, 408);
  // Counted from when the connection began to wait, not from its waking (that would be 900).
  EXPECT_LT(msSince(idleSince), kReadTimeout + kReadTimeout / 3);
}

TEST(ParkedConnection, ManyParkAndAllWake) {
  constexpr std::size_t kClients = 64;
  TestServer server(describe, parkingSoon());
  std::vector<AsyncSocket> clients;
  for (std::size_t i = 0; i < kClients; ++i) clients.push_back(idleClient(server));
  EXPECT_TRUE(eventually([&] { return server.server().parkedConnections() == kClients; }));
  for (std::size_t i = 0; i < kClients; ++i) {
    waitFor(clients[i].send("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  for (std::size_t i = 0; i < kClients; ++i) {
    EXPECT_EQ(awaitResponse(clients[i]).body, "GET /" + std::to_string(i) + " 127.0.0.1 ");
  }
}

TEST(ParkedConnection, ZeroIdleReleaseNeverParks) {
  ServerSettings settings;
  settings.idleRelease = 0;
  TestServer server(describe, settings);
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 200);
  // Absence can only be shown by waiting: 10 times the interval the other tests park within.
  waitFor(sleepAsync(10 * kIdleRelease));
  EXPECT_EQ(server.server().parkedConnections(), 0u);
  waitFor(client.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).body, "GET /again 127.0.0.1 ");
}
