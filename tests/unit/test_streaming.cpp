// Streamed request bodies (ServerSettings::bufferBody false) and streamed responses
// (Request::respondStream), over real loopback connections.
#include <asynchttp/asynchttpserver.hpp>

#include "http_test_client.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

const ServerSettings kStreamed = {.bufferBody = false};
// Uploads larger than the default maxBody (8 MiB), still bounded.
const ServerSettings kLargeStreamed = {.maxBody = std::size_t{4} << 30, .bufferBody = false};

// Polls the loop until `done()` or five seconds pass; true when done.
template <typename Condition>
bool pollUntil(Condition done, std::int64_t ms = 5000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (!done() && Clock::now() < deadline) poll(5);
  return done();
}

// Everything the peer sends until it closes (or `ms` pass).
std::string readUntilClosed(AsyncSocket socket, std::int64_t ms = 5000) {
  auto reading = [](AsyncSocket s) -> Future<std::string> {
    std::string all;
    char piece[65536];
    try {
      while (std::size_t n = co_await s.recvSome(piece)) all.append(piece, n);
    } catch (const OSError&) {
    }
    co_return all;
  }(socket);
  if (!waitFor(withTimeout(reading, ms))) {
    socket.close();
    ADD_FAILURE() << "the server did not close within " << ms << " ms";
  }
  return waitFor(std::move(reading));
}

// A handler that reads the body piece by piece and answers "<bytes> <pieces>".
Future<void> countingHandler(Request& req) {
  std::size_t bytes = 0, pieces = 0;
  for (;;) {
    std::string_view piece = co_await req.bodyChunk();
    if (piece.empty()) break;
    bytes += piece.size();
    ++pieces;
  }
  co_await req.respond(Http200, std::to_string(bytes) + " " + std::to_string(pieces));
}

std::size_t peakRssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

void resetPeakRss() {
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM starts again from the current RSS
}

}  // namespace

// --- Streamed request bodies ----------------------------------------------------------------

TEST(StreamedBody, CallbackRunsOnceTheHeadIsInAndReadsTheBodyInPieces) {
  bool started = false;
  std::string body;
  TestServer server(
      [&](Request& req) -> Future<void> {
        started = true;
        for (;;) {
          std::string_view piece = co_await req.bodyChunk();
          if (piece.empty()) break;
          body += piece;
        }
        co_await req.respond(Http200, "got " + std::to_string(body.size()));
      },
      kStreamed);
  auto client = connectTo(server.port());
  waitFor(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"));
  ASSERT_TRUE(pollUntil([&] { return started; }));  // no body byte sent yet
  waitFor(client.send("01234"));
  poll(10);
  waitFor(client.send("56789"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.body, "got 10");
  EXPECT_EQ(body, "0123456789");
}

TEST(StreamedBody, ChunkedBodyIsDechunkedAndTheConnectionKeptAlive) {
  TestServer server(countingHandler, kStreamed);
  auto client = connectTo(server.port());
  waitFor(
      client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n"
                  "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.body.substr(0, 3), "11 ");
  EXPECT_EQ(awaitResponse(client).body, "0 0");  // the next request, parsed after the body
}

TEST(StreamedBody, ReadBodyFillsBodyAndRefusesPastItsLimit) {
  std::vector<std::string> errors;
  TestServer server(
      [&](Request& req) -> Future<void> {
        std::size_t limit = req.url.path == "/small" ? 5 : 1000;
        try {
          co_await req.readBody(limit);
        } catch (const ValueError& e) {
          errors.push_back(e.what());
          co_return;  // 413 was sent for it
        }
        co_await req.respond(Http200, "[" + req.body + "]");
      },
      kStreamed);
  for (const char* framing :
       {"Content-Length: 10\r\n\r\n0123456789",
        "Transfer-Encoding: chunked\r\n\r\n4\r\n0123\r\n6\r\n456789\r\n0\r\n\r\n"}) {
    auto ok = exchange(server.port(), std::string("POST /big HTTP/1.1\r\nHost: x\r\n") + framing);
    EXPECT_EQ(ok.body, "[0123456789]") << framing;
    auto client = connectTo(server.port());
    waitFor(client.send(std::string("POST /small HTTP/1.1\r\nHost: x\r\n") + framing));
    auto refused = awaitResponse(client);
    EXPECT_EQ(refused.status, 413) << framing;
    EXPECT_EQ(refused.headers["Connection"], "close");
    EXPECT_TRUE(closedWithin(client, 3000));
  }
  EXPECT_EQ(errors.size(), 2u);
}

TEST(StreamedBody, MaxBodyHoldsInStreamingMode) {
  int calls = 0;
  bool refused = false;
  TestServer server(
      [&](Request& req) -> Future<void> {
        ++calls;
        try {
          while (!(co_await req.bodyChunk()).empty()) {
          }
        } catch (const ValueError&) {
          refused = true;
          co_return;
        }
        co_await req.respond(Http200, "read");
      },
      {.maxBody = 8, .bufferBody = false});
  // A declared length past it: refused before the callback.
  auto declared =
      exchange(server.port(), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789");
  EXPECT_EQ(declared.status, 413);
  EXPECT_EQ(calls, 0);
  // Chunks past it: refused as they come.
  auto client = connectTo(server.port());
  waitFor(
      client.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\n12345\r\n5\r\n67890\r\n0\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 413);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(refused);
}

TEST(StreamedBody, ContinueGoesOutOnTheFirstReadOnly) {
  TestServer server(countingHandler, kStreamed);
  auto client = connectTo(server.port());
  waitFor(client.send(
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  EXPECT_EQ(awaitResponse(client).status, 100);
  waitFor(client.send("abcd"));
  EXPECT_EQ(awaitResponse(client).body, "4 1");
}

TEST(StreamedBody, NoContinueWhenTheHandlerAnswersWithoutReading) {
  TestServer server(
      [](Request& req) -> Future<void> { co_await req.respond(Http404, "no such upload"); },
      kStreamed);
  auto client = connectTo(server.port());
  waitFor(client.send(
      "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 404);  // not 100 first
  // The client may never send the body it announced: the connection ends after the answer.
  EXPECT_EQ(r.headers["Connection"], "close");
  EXPECT_TRUE(closedWithin(client, 3000));
}

TEST(StreamedBody, UnreadSmallBodyIsDrainedAndNeverParsedAsARequest) {
  std::vector<std::string> paths;
  TestServer server(
      [&](Request& req) -> Future<void> {
        paths.push_back(req.url.path);
        co_await req.respond(Http200, "ok");
      },
      kStreamed);
  std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::string& framing :
       {"Content-Length: " + std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled,
        "Transfer-Encoding: chunked\r\n\r\n" +
            (std::stringstream() << std::hex << smuggled.size()).str() + "\r\n" + smuggled +
            "\r\n0\r\n\r\n"}) {
    paths.clear();
    auto client = connectTo(server.port());
    waitFor(client.send("POST /upload HTTP/1.1\r\nHost: x\r\n" + framing +
                        "GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto first = awaitResponse(client);
    EXPECT_FALSE(first.headers.hasKey("Connection")) << framing;
    EXPECT_EQ(awaitResponse(client).status, 200);
    EXPECT_EQ(paths, (std::vector<std::string>{"/upload", "/after"}));
  }
}

TEST(StreamedBody, UnreadLargeBodyClosesTheConnectionAfterTheAnswer) {
  TestServer server([](Request& req) -> Future<void> { co_await req.respond(Http404, "nowhere"); },
                    kLargeStreamed);
  auto client = connectTo(server.port());
  waitFor(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n" +
                      std::string(65536, 'x')));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.headers["Connection"], "close");
  EXPECT_TRUE(closedWithin(client, 3000));
}

TEST(StreamedBody, BufferedModeGivesTheWholeBodyAsOneChunk) {
  TestServer server(countingHandler);
  auto r = exchange(server.port(), "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.body, "5 1");
}

TEST(StreamedBody, ClientLeavingMidBodyEndsTheRead) {
  bool failed = false;
  TestServer server(
      [&](Request& req) -> Future<void> {
        try {
          co_await req.readBody();
        } catch (const OSError&) {
          failed = true;
        }
      },
      kStreamed);
  auto client = connectTo(server.port());
  waitFor(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this"));
  poll(10);
  client.close();
  EXPECT_TRUE(pollUntil([&] { return failed; }));
}

// A gibibyte streamed through the handler: the server holds a read buffer, not the body.
class HugeUpload : public ::testing::TestWithParam<bool> {};

TEST_P(HugeUpload, KeepsPeakMemoryUnder64MiB) {
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::uint64_t kTotal = 256ull << 20;  // the same path, at a sanitizer's pace
#else
  constexpr std::uint64_t kTotal = 1ull << 30;
#endif
  bool chunked = GetParam();
  std::uint64_t received = 0;
  TestServer server(
      [&](Request& req) -> Future<void> {
        for (;;) {
          std::string_view piece = co_await req.bodyChunk();
          if (piece.empty()) break;
          received += piece.size();
        }
        co_await req.respond(Http200, std::to_string(received));
      },
      kLargeStreamed);
  auto client = connectTo(server.port());
  resetPeakRss();
  std::size_t before = peakRssKiB();
  auto uploading = [](AsyncSocket s, bool chunked) -> Future<void> {
    std::string head = "POST /upload HTTP/1.1\r\nHost: x\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                    : "Content-Length: " + std::to_string(kTotal) + "\r\n\r\n";
    co_await s.send(head);
    std::string piece(256 * 1024, 'u');
    std::string framed =
        (std::stringstream() << std::hex << piece.size()).str() + "\r\n" + piece + "\r\n";
    for (std::uint64_t sent = 0; sent < kTotal; sent += piece.size()) {
      const std::string& out = chunked ? framed : piece;
      co_await s.send(out.data(), out.size());
    }
    if (chunked) co_await s.send("0\r\n\r\n");
  }(client, chunked);
  auto r = awaitResponse(client, 120000);
  waitFor(std::move(uploading));
  EXPECT_EQ(r.body, std::to_string(kTotal));
  std::size_t peak = peakRssKiB();
  EXPECT_LT(peak, before + 64 * 1024) << "peak RSS " << peak << " KiB, " << before << " KiB before";
}

INSTANTIATE_TEST_SUITE_P(ContentLengthAndChunked, HugeUpload, ::testing::Values(false, true));

// --- Streamed responses -----------------------------------------------------------------------

TEST(ResponseStreams, Http11WithoutALengthIsChunkedWithTrailers) {
  TestServer server([](Request& req) -> Future<void> {
    auto headers = newHttpHeaders({{"Content-Type", "text/plain"}});
    ResponseStream s = co_await req.respondStream(Http200, headers);
    co_await s.write("hello ");
    co_await s.write("");  // nothing: an empty chunk would end the body
    co_await s.write("world");
    auto trailers = newHttpHeaders({{"X-Checksum", "42"}});
    co_await s.finish(trailers);
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int i = 0; i < 2; ++i) {
    auto r = awaitResponse(client);
    EXPECT_EQ(r.headers["Transfer-Encoding"], "chunked");
    EXPECT_FALSE(r.headers.hasKey("Content-Length"));
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.body, "hello world");
    EXPECT_EQ(r.trailers["X-Checksum"], "42");
  }
}

TEST(ResponseStreams, DeclaredLengthFramesTheBodyAndIsEnforced) {
  std::vector<std::string> errors;
  TestServer server([&](Request& req) -> Future<void> {
    auto headers = newHttpHeaders({{"Content-Length", "10"}});
    ResponseStream s = co_await req.respondStream(Http200, headers);
    try {
      co_await s.write("01234");
      if (req.url.path == "/over") co_await s.write("56789!");
      if (req.url.path != "/short") co_await s.write("56789");
      co_await s.finish();
    } catch (const ValueError& e) {
      errors.push_back(e.what());
    }
  });
  auto exact = exchange(server.port(), "GET /exact HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(exact.body, "0123456789");
  EXPECT_FALSE(exact.headers.hasKey("Transfer-Encoding"));
  for (const char* path : {"/over", "/short"}) {
    auto client = connectTo(server.port());
    waitFor(client.send(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string all = readUntilClosed(client);
    // Cut short, then the end of the connection: the client cannot take it for complete.
    auto bodyAt = all.find("\r\n\r\n");
    ASSERT_NE(bodyAt, std::string::npos) << path;
    EXPECT_EQ(all.substr(bodyAt + 4), "01234") << path;
  }
  EXPECT_EQ(errors.size(), 2u);
}

TEST(ResponseStreams, Http10IsDelimitedByClosing) {
  TestServer server([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.write("until ");
    co_await s.write("the end");
    co_await s.finish();
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  std::string all = readUntilClosed(client);
  EXPECT_EQ(all.find("Transfer-Encoding"), std::string::npos) << all;
  EXPECT_EQ(all.find("Content-Length"), std::string::npos) << all;
  EXPECT_NE(all.find("Connection: close\r\n"), std::string::npos) << all;
  EXPECT_EQ(all.substr(all.find("\r\n\r\n") + 4), "until the end");
}

TEST(ResponseStreams, FinishedWithoutAPieceHasLengthZero) {
  TestServer server([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.finish();
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = awaitResponse(client);
  EXPECT_EQ(r.headers["Content-Length"], "0");
  EXPECT_FALSE(r.headers.hasKey("Transfer-Encoding"));
}

TEST(ResponseStreams, DroppedStreamAbortsTheResponse) {
  TestServer server([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    if (req.url.path == "/begun") co_await s.write("partial");
    // dropped here, unfinished
  });
  auto begun = connectTo(server.port());
  waitFor(begun.send("GET /begun HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = awaitResponse(begun);
  EXPECT_FALSE(r.complete);  // no last chunk: visibly cut
  EXPECT_EQ(r.body, "partial");
  EXPECT_TRUE(closedWithin(begun, 3000));  // and no second response
  // Dropped before its head went out: a proper error instead.
  auto early = exchange(server.port(), "GET /early HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(early.status, 500);
  EXPECT_EQ(early.headers["Connection"], "close");
}

TEST(ResponseStreams, HeadAnd204CarryNoBodyBytes) {
  TestServer server([](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(req.url.path == "/204" ? Http204 : Http200);
    co_await s.write("body bytes that must not leak");
    co_await s.finish();
  });
  auto client = connectTo(server.port());
  waitFor(
      client.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto head = awaitResponse(client);
  EXPECT_EQ(head.status, 200);
  EXPECT_FALSE(head.headers.hasKey("Transfer-Encoding"));
  auto noContent = awaitResponse(client);
  EXPECT_EQ(noContent.status, 204);
  auto get = awaitResponse(client);
  EXPECT_EQ(get.statusLine, "HTTP/1.1 200 OK");
  EXPECT_EQ(get.body, "body bytes that must not leak");
}

TEST(ResponseStreams, WriteWaitsForASlowClient) {
  constexpr std::size_t kPiece = 16 * 1024, kTotal = 64 << 20;
  std::size_t written = 0;
  bool finished = false;
  TestServer server([&](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    std::string piece(kPiece, 'p');
    while (written < kTotal) {
      co_await s.write(piece);
      written += piece.size();
    }
    co_await s.finish();
    finished = true;
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int i = 0; i < 50; ++i) poll(2);  // the client reads nothing meanwhile
  EXPECT_FALSE(finished);
  EXPECT_LT(written, kTotal / 4);  // held back: not all of it piled up in memory
  auto r = awaitResponse(client, 30000);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body.size(), kTotal);
  EXPECT_TRUE(finished);
}

TEST(ResponseStreams, EachPieceLeavesWhileTheHandlerWaits) {
  bool secondWritten = false;
  TestServer server([&](Request& req) -> Future<void> {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.write("data: one\n\n");
    co_await sleepAsync(100);
    secondWritten = true;
    co_await s.write("data: two\n\n");
    co_await s.finish();
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string head;
  while (head.find("data: one") == std::string::npos) {
    char piece[4096];
    std::size_t n = waitFor(client.recvSome(piece));
    ASSERT_GT(n, 0u);
    head.append(piece, n);
  }
  EXPECT_FALSE(secondWritten);  // the first event came while the handler slept
}

TEST(ResponseStreams, RefusedArgumentsThrowBeforeAnythingIsSent) {
  std::vector<std::string> errors;
  TestServer server([&](Request& req) -> Future<void> {
    for (auto [code, key, value] :
         {std::tuple{Http100, "X", "1"}, std::tuple{Http200, "Transfer-Encoding", "chunked"},
          std::tuple{Http200, "Content-Length", "ten"}, std::tuple{HttpCode{700}, "X", "1"}}) {
      try {
        auto headers = newHttpHeaders({{key, value}});
        auto s = co_await req.respondStream(code, headers);
      } catch (const ValueError& e) {
        errors.push_back(e.what());
      }
    }
    co_await req.respond(Http200, "still answerable");
  });
  auto r = exchange(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.body, "still answerable");
  EXPECT_EQ(errors.size(), 4u);
}
