// Counts heap allocations on the runtime's I/O path: in the steady state of an echo exchange
// there must be none (coroutine frames come from the per-thread pool).
#include <asynchttp/asyncnet.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> allocations{0};
}

// This test binary's global allocator: counts, then defers to malloc.
void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

using namespace asynchttp;

TEST(Allocations, NonePerEchoRoundTripInTheSteadyState) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer coroutine frames bypass the pool on purpose";
#endif
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto a = newAsyncSocket(AsyncFD(fds[0]), AF_UNIX);
  auto b = newAsyncSocket(AsyncFD(fds[1]), AF_UNIX);
  auto echo = [](AsyncSocket s) -> Future<void> {
    std::array<char, 4096> buffer;
    for (;;) {
      std::size_t n = co_await s.recvSome(buffer);
      if (n == 0) co_return;
      co_await s.send(buffer.data(), n);
    }
  };
  auto echoing = echo(b);
  long measured = -1;
  auto client = [&]() -> Future<void> {
    std::array<char, 64> message{};
    std::array<char, 64> reply;
    auto roundTrips = [&](int n) -> Future<void> {
      for (int i = 0; i < n; ++i) {
        co_await a.send(message.data(), message.size());
        std::size_t got = co_await a.recvInto(reply, reply.size());
        if (got != reply.size()) throw std::runtime_error("short echo");
      }
    };
    co_await roundTrips(1000);  // warm-up: pools and queues reach their working size
    long before = allocations.load();
    co_await roundTrips(10000);
    measured = allocations.load() - before;
  };
  waitFor(client());
  a.close();
  waitFor(std::move(echoing));
  // Even the measuring coroutine's frame comes from the pool, warmed up by the first call.
  RecordProperty("allocations", std::to_string(measured));
  EXPECT_EQ(measured, 0) << measured << " allocations in 10000 round trips";
}

#include <asynchttp/asynchttpserver.hpp>

TEST(Allocations, NonePerRequestInTheSteadyStateOfHelloWorld) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer coroutine frames bypass the pool on purpose";
#endif
  auto server = newAsyncHttpServer();
  server->listen(Port(0), "127.0.0.1");
  auto serving = server->serve(
      server->getPort(),
      [](Request& req) -> Future<void> { co_await req.respond(Http200, "Hello World"); },
      "127.0.0.1");
  // Browser-like requests: values longer than std::string's inline buffer, a query string.
  const std::string request =
      "GET /index.html?user=someone&page=2 HTTP/1.1\r\n"
      "Host: 127.0.0.1\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Accept-Language: en-US,en;q=0.9\r\n"
      "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
      "\r\n";
  auto client = newAsyncSocket();
  waitFor(client.connect("127.0.0.1", server->getPort()));
  long measured = -1;
  auto run = [&]() -> Future<void> {
    std::array<char, 4096> reply;
    auto requests = [&](int n) -> Future<void> {
      for (int i = 0; i < n; ++i) {
        co_await client.send(request.data(), request.size());
        std::size_t got = 0;
        // One response ends with its 11-byte body; responses here are never split oddly
        // enough to matter, but read until the body's last byte to be sure.
        while (got < 11 || std::string_view(reply.data(), got).substr(got - 11) != "Hello World") {
          got += co_await client.recvSome(std::span(reply).subspan(got));
        }
      }
    };
    co_await requests(1000);  // warm-up
    long before = allocations.load();
    co_await requests(10000);
    measured = allocations.load() - before;
  };
  waitFor(run());
  RecordProperty("allocations", std::to_string(measured));
  EXPECT_EQ(measured, 0) << measured << " allocations in 10000 requests";
  client.close();
  server->close();
  waitFor(std::move(serving));
}
