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
