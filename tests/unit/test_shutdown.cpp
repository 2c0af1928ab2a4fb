// Graceful shutdown, the accept loop's resilience and limits, serving a listener made elsewhere,
// and signals through the loop.
#include "asyncnet_internal.hpp"
#include "http_test_client.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

// A server serving on 127.0.0.1 whose serve() Future the test watches.
struct Served {
  std::shared_ptr<AsyncHttpServer> server;
  Port port{};
  Future<void> serving;
  Served(RequestCallback callback, ServerSettings settings = {})
      : server(newAsyncHttpServer(settings)) {
    server->listen(Port(0), "127.0.0.1");
    port = server->getPort();
    serving = server->serve(port, std::move(callback));
  }
  ~Served() {
    server->close();
    auto until = Clock::now() + std::chrono::seconds(5);
    while (!serving.finished() && Clock::now() < until) poll(10);
    drainLoop();
  }
};

// Runs the loop until `done()` or `ms` pass; true if done.
template <class Done>
bool runUntil(Done done, std::int64_t ms = 3000) {
  auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!done() && Clock::now() < until) poll(5);
  return done();
}

Future<void> okHandlerForShutdown(Request& req) {
  co_await req.respond(Http200, "ok");
}

// Descriptors this process has open.
int openDescriptors() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)entry;
    ++count;
  }
  return count;
}

Future<void> slowHandler(Request& req) {
  co_await sleepAsync(300);
  co_await req.respond(Http200, "late");
}

// Starts reading one response in the background.
Future<Response> reading(AsyncSocket socket) {
  return readResponse(std::move(socket));
}

}  // namespace

TEST(Shutdown, InFlightRequestsFinishWithConnectionCloseAndServeCompletesAfterThem) {
  Served s(slowHandler);
  auto busy = connectTo(s.port);
  auto idle = connectTo(s.port);
  waitFor(idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));  // answered late, then kept alive
  auto idleAnswer = reading(idle);
  ASSERT_TRUE(runUntil([&] { return idleAnswer.finished(); }));
  waitFor(busy.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  waitFor(sleepAsync(50));  // the handler is sleeping
  auto answer = reading(busy);
  auto stopping = s.server->shutdown();
  EXPECT_TRUE(s.server->closing());
  EXPECT_TRUE(closedWithin(idle, 1000));  // the idle keep-alive connection closes at once
  EXPECT_FALSE(s.serving.finished());     // a request is still in flight
  ASSERT_TRUE(runUntil([&] { return answer.finished(); }));
  Response r = std::move(answer).read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "late");
  EXPECT_EQ(r.headers["Connection"], "close");
  EXPECT_TRUE(runUntil([&] { return stopping.finished() && s.serving.finished(); }));
  EXPECT_NO_THROW(std::move(stopping).read());
  auto refused = newAsyncSocket();
  EXPECT_THROW(waitFor(refused.connect("127.0.0.1", s.port)), OSError);  // no more accepting
}

TEST(Shutdown, ARequestArrivingDuringTheShutdownIsAnsweredWithConnectionClose) {
  Served s(slowHandler);
  auto client = connectTo(s.port);
  waitFor(client.send("GET / HTTP/1.1\r\n"));  // a head on its way
  waitFor(sleepAsync(50));
  auto stopping = s.server->shutdown();
  waitFor(client.send("Host: x\r\n\r\n"));
  Response r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Connection"], "close");
  EXPECT_TRUE(runUntil([&] { return stopping.finished(); }));
}

TEST(Shutdown, ANewConnectionGetsAMomentToSendItsFirstRequest) {
  Served s(okHandlerForShutdown);
  auto client = connectTo(s.port);
  waitFor(sleepAsync(50));  // accepted, nothing sent yet
  auto stopping = s.server->shutdown();
  waitFor(sleepAsync(100));
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  Response r = awaitResponse(client);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["Connection"], "close");
  EXPECT_TRUE(runUntil([&] { return stopping.finished(); }));
}

TEST(Shutdown, PastTheGraceOpenConnectionsCloseAndAStreamLearnsIt) {
  std::string streamError;
  bool handlerDone = false;
  Served s([&](Request& req) -> Future<void> {
    ResponseStream stream = co_await req.respondStream(Http200);
    try {
      for (int i = 0; i < 1000; ++i) {  // 20 s at most: far past the grace
        co_await stream.write("tick\n");
        co_await sleepAsync(20);
      }
    } catch (const OSError& e) {
      streamError = e.what();
    }
    handlerDone = true;
  });
  auto client = connectTo(s.port);
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  waitFor(sleepAsync(100));
  auto started = Clock::now();
  auto stopping = s.server->shutdown(200);
  ASSERT_TRUE(runUntil([&] { return stopping.finished(); }));
  EXPECT_GE(elapsedMs(started), 150);
  EXPECT_LT(elapsedMs(started), 2000);
  EXPECT_TRUE(closedWithin(client, 1000));
  EXPECT_TRUE(runUntil([&] { return handlerDone; }));
  EXPECT_FALSE(streamError.empty());
}

TEST(Shutdown, ALongLivedHandlerCanEndItselfWhenTheServerIsClosing) {
  std::shared_ptr<AsyncHttpServer> server;
  Served s([&](Request& req) -> Future<void> {
    ResponseStream stream = co_await req.respondStream(Http200);
    while (!server->closing()) {
      co_await stream.write("data: x\n\n");
      co_await sleepAsync(20);
    }
    co_await stream.finish();
  });
  server = s.server;
  auto client = connectTo(s.port);
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto answer = reading(client);
  waitFor(sleepAsync(100));
  auto started = Clock::now();
  auto stopping = s.server->shutdown(5000);
  ASSERT_TRUE(runUntil([&] { return stopping.finished() && answer.finished(); }));
  EXPECT_LT(elapsedMs(started), 1000);  // well before the grace
  Response r = std::move(answer).read();
  EXPECT_TRUE(r.complete);
  EXPECT_NE(r.body.find("data: x"), std::string::npos);
}

TEST(Shutdown, CloseDoesNotBlockAndWithThreadsEveryConnectionEnds) {
  for (std::int64_t handlerMs : {100, 1500}) {  // within the grace, and past it
    auto server = newAsyncHttpServer({.threads = 2});
    server->listen(Port(0), "127.0.0.1");
    Port port = server->getPort();
    auto serving = server->serve(port, [handlerMs](Request& req) -> Future<void> {
      co_await sleepAsync(handlerMs);
      co_await req.respond(Http200, "ok");
    });
    std::vector<AsyncSocket> clients;
    std::vector<Future<Response>> answers;
    for (int i = 0; i < 16; ++i) {
      clients.push_back(connectTo(port));
      waitFor(clients.back().send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    }
    waitFor(sleepAsync(50));
    for (auto& c : clients) answers.push_back(reading(c));
    auto started = Clock::now();
    auto stopping = server->shutdown(500);
    EXPECT_LT(elapsedMs(started), 50);  // the loop is not blocked
    ASSERT_TRUE(runUntil([&] { return stopping.finished() && serving.finished(); }, 5000));
    int answered = 0;
    int ended = 0;
    for (auto& a : answers) {
      ASSERT_TRUE(runUntil([&] { return a.finished(); }, 2000)) << "neither answer nor end";
      try {
        Response r = std::move(a).read();
        answered += r.status == 200 ? 1 : 0;
        ended += r.status == 0 ? 1 : 0;
      } catch (const OSError&) {
        ++ended;  // reset
      }
    }
    if (handlerMs < 500) {
      EXPECT_EQ(answered, 16) << handlerMs;
    } else {
      EXPECT_EQ(ended, 16) << handlerMs;
    }
    server.reset();  // joins the worker: its handlers outlive the grace by design
    for (auto& c : clients) c.close();
    drainLoop();
  }
}

namespace {
// The local addresses (hex, as /proc/net/tcp shows them) listening on `port`.
std::vector<std::string> listenersOn(Port port) {
  std::ifstream table("/proc/net/tcp");
  std::string line;
  std::vector<std::string> found;
  std::getline(table, line);
  char wanted[8];
  std::snprintf(wanted, sizeof wanted, ":%04X", static_cast<unsigned>(port));
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    if (state == "0A" && local.ends_with(wanted)) found.push_back(local.substr(0, 8));
  }
  return found;
}
}  // namespace

TEST(Shutdown, WorkersListenOnTheAddressListenWasGiven) {
  auto server = newAsyncHttpServer({.threads = 3});
  server->listen(Port(0), "127.0.0.1");
  auto serving = server->serve(
      server->getPort(), [](Request& req) -> Future<void> { co_await req.respond(Http200, "ok"); });
  auto listeners = listenersOn(server->getPort());
  EXPECT_EQ(listeners.size(), 3u);
  for (const auto& address : listeners) EXPECT_EQ(address, "0100007F");  // 127.0.0.1
  auto stopping = server->shutdown();
  EXPECT_TRUE(runUntil([&] { return stopping.finished() && serving.finished(); }));
}

TEST(AcceptLoop, ErrorsOfOneConnectionAreSkipped) {
  for (int error : {ECONNABORTED, EPROTO, ENETDOWN, EHOSTUNREACH, ENETUNREACH, EPERM}) {
    detail::injectedAcceptErrors = {error, 3};
    Served s(okHandlerForShutdown);
    Response r = exchange(s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(r.status, 200) << std::strerror(error);
    EXPECT_FALSE(s.serving.finished()) << std::strerror(error);
    EXPECT_EQ(detail::injectedAcceptErrors.count, 0);
  }
}

TEST(AcceptLoop, RunningOutOfDescriptorsPausesAcceptingWithoutSpinning) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan checks a thrown exception's type by probing memory through a pipe(2), which fails
  // with the descriptors gone: a false "invalid vptr". The release build runs this test.
  GTEST_SKIP() << "the sanitizers need descriptors of their own";
#endif
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  Served s(okHandlerForShutdown, {.maxConnections = 1000});
  // Room for the clients below and a few of their server sides, not for all of them.
  constexpr int kClients = 10;
  int open = openDescriptors();
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(open + kClients + 4);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  // Connected without running the loop, which would accept each at once.
  std::vector<AsyncSocket> clients;
  for (int i = 0; i < kClients; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(s.port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    std::string_view request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    clients.push_back(newAsyncSocket(AsyncFD(fd)));
  }
  std::vector<Future<Response>> answers;
  for (auto& c : clients) answers.push_back(reading(c));
  rusage before{}, after{};
  ::getrusage(RUSAGE_SELF, &before);
  runUntil([] { return false; }, 500);
  ::getrusage(RUSAGE_SELF, &after);
  auto cpuMs = [](const rusage& u) {
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000 +
           (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000;
  };
  EXPECT_LT(cpuMs(after) - cpuMs(before), 250);  // backing off, not spinning
  std::size_t waiting = 0;
  for (auto& a : answers) waiting += a.finished() ? 0 : 1;
  EXPECT_GT(waiting, 0u);  // some are still in the backlog
  EXPECT_FALSE(s.serving.finished());
  ::setrlimit(RLIMIT_NOFILE, &saved);  // descriptors again: the rest are served
  for (auto& a : answers) {
    ASSERT_TRUE(runUntil([&] { return a.finished(); }, 3000));
    EXPECT_EQ(std::move(a).read().status, 200);
  }
}

TEST(AcceptLoop, MaxConnectionsPausesTheListenerUntilOneEnds) {
  Served s(okHandlerForShutdown, {.maxConnections = 2});
  auto first = connectTo(s.port);
  auto second = connectTo(s.port);
  auto third = connectTo(s.port);
  for (auto* c : {&first, &second, &third}) {
    waitFor(c->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  EXPECT_EQ(awaitResponse(first).status, 200);
  EXPECT_EQ(awaitResponse(second).status, 200);
  auto thirdAnswer = reading(third);
  runUntil([] { return false; }, 200);
  EXPECT_FALSE(thirdAnswer.finished());  // waits in the backlog
  first.close();
  ASSERT_TRUE(runUntil([&] { return thirdAnswer.finished(); }));
  EXPECT_EQ(std::move(thirdAnswer).read().status, 200);
}

TEST(ServeListener, ASocketListeningAlreadyIsServedAndClosedAtShutdown) {
  auto listener = newAsyncSocket();
  listener.setSockOpt(OptReuseAddr, true);
  listener.bindAddr(Port(0), "127.0.0.1");
  listener.listen();
  Port port = listener.getLocalAddr().second;
  auto server = newAsyncHttpServer();
  auto serving = server->serve(listener, okHandlerForShutdown);
  EXPECT_EQ(exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
  auto stopping = server->shutdown();
  EXPECT_TRUE(runUntil([&] { return stopping.finished() && serving.finished(); }));
  EXPECT_TRUE(listener.isClosed());
}

TEST(ServeListener, ListenFdsIsEmptyWithoutSocketActivation) {
  ::unsetenv("LISTEN_PID");
  ::setenv("LISTEN_FDS", "1", 1);  // for another process: ignored, and unset
  EXPECT_TRUE(listenFds().empty());
  EXPECT_EQ(std::getenv("LISTEN_FDS"), nullptr);
}

TEST(Signals, ASignalRunsItsCallbackOnTheLoop) {
  int seen = 0;
  int id = addSignal(SIGUSR1, [&] { ++seen; });
  ::raise(SIGUSR1);    // blocked: it waits in the signalfd, the process is not killed
  EXPECT_EQ(seen, 0);  // not in a signal handler: on the loop
  EXPECT_TRUE(runUntil([&] { return seen == 1; }));
  ::raise(SIGUSR1);
  EXPECT_TRUE(runUntil([&] { return seen == 2; }));
  removeSignal(id);
  EXPECT_THROW(removeSignal(id), ValueError);
  drainLoop();
}

TEST(Backpressure, AClientPipeliningWithoutReadingIsNoLongerRead) {
  const std::string body(1024, 'r');
  Served s([&](Request& req) -> Future<void> { co_await req.respond(Http200, body); });
  auto client = connectTo(s.port);
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string batch;
  for (int i = 0; i < 2048; ++i) batch += request;  // 58 KiB of requests per write
  // Writes for 1 s without reading: once the server's output is stuck, it stops reading, and
  // the client's writes stall on full socket buffers.
  std::size_t sent = 0;
  // Named lambdas: the coroutines reach their captures through them.
  auto write = [&]() -> Future<void> {
    auto until = Clock::now() + std::chrono::seconds(1);
    while (Clock::now() < until && sent < (std::size_t{256} << 20)) {
      co_await client.send(batch);
      sent += batch.size();
    }
  };
  auto writing = write();
  runUntil([&] { return writing.finished(); }, 1000);
  EXPECT_FALSE(writing.finished());        // stalled, not still reading
  EXPECT_LT(sent, std::size_t{32} << 20);  // bounded by buffers, not by the 1 s
  // Read back: every request sent so far is answered, in order, once the client reads.
  std::size_t answered = 0;
  std::size_t expected = sent / request.size();
  auto readAll = [&]() -> Future<void> {
    while (answered < expected) {
      Response r = co_await readResponse(client);
      if (r.status != 200 || r.body.size() != body.size()) co_return;
      ++answered;
    }
  };
  auto readingAll = readAll();
  ASSERT_TRUE(runUntil([&] { return readingAll.finished(); }, 10000));
  EXPECT_EQ(answered, expected);
  client.close();
  runUntil([&] { return writing.finished(); }, 2000);
  try {
    waitFor(std::move(writing));
  } catch (const OSError&) {
  }
}

TEST(AcceptLoop, ShouldAcceptRequestComparesThisLoopWithItsShareOfTheLimit) {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_NE(limit.rlim_cur, RLIM_INFINITY);
  auto single = newAsyncHttpServer();
  auto four = newAsyncHttpServer({.threads = 4});
  int beyondAShare = static_cast<int>(limit.rlim_cur / 4) + 1;
  EXPECT_TRUE(single->shouldAcceptRequest(beyondAShare));
  EXPECT_FALSE(four->shouldAcceptRequest(beyondAShare));  // each loop counts only its own
}

TEST(Shutdown, CloseWithWorkerThreadsReturnsAtOnce) {
  auto server = newAsyncHttpServer({.threads = 2});
  server->listen(Port(0), "127.0.0.1");
  auto serving = server->serve(server->getPort(), slowHandler);
  std::vector<AsyncSocket> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(connectTo(server->getPort()));
    waitFor(clients.back().send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  waitFor(sleepAsync(50));  // the handlers are sleeping, on both loops
  auto started = Clock::now();
  server->close();
  EXPECT_LT(elapsedMs(started), 50);
  for (auto& c : clients) EXPECT_EQ(awaitResponse(c).headers["Connection"], "close");
  EXPECT_TRUE(runUntil([&] { return serving.finished(); }));
  for (auto& c : clients) c.close();
}
