// Microbenchmarks of the runtime: Future creation and await, timers, a socketpair round trip.
#include <asynchttp/asyncnet.hpp>

#include <benchmark/benchmark.h>

#include <sys/socket.h>

using namespace asynchttp;

namespace {

Future<int> ready(int v) {
  co_return v;
}

// Creating a coroutine whose Future is ready at once, and awaiting it, n times.
void BM_ReadyFutureCreateAndAwait(benchmark::State& state) {
  auto body = [](benchmark::State& s) -> Future<long> {
    long sum = 0;
    for (auto _ : s) sum += co_await ready(1);
    co_return sum;
  };
  benchmark::DoNotOptimize(waitFor(body(state)));
}
BENCHMARK(BM_ReadyFutureCreateAndAwait);

// Arming and cancelling one timer with `range(0)` others pending.
void BM_TimerInsertCancel(benchmark::State& state) {
  auto& loop = getGlobalDispatcher();
  std::vector<TimerNode> background(static_cast<std::size_t>(state.range(0)));
  auto now = Clock::now();
  for (std::size_t i = 0; i < background.size(); ++i) {
    background[i].deadline =
        now + std::chrono::hours(1) + std::chrono::microseconds(i * 7919 % 100000);
    background[i].fire = [](TimerNode&) {};
    loop.addTimer(background[i]);
  }
  TimerNode timer;
  timer.fire = [](TimerNode&) {};
  std::int64_t i = 0;
  for (auto _ : state) {
    timer.deadline = now + std::chrono::hours(1) + std::chrono::microseconds(++i % 100000);
    loop.addTimer(timer);
    loop.cancelTimer(timer);
  }
  for (auto& node : background) loop.cancelTimer(node);
}
BENCHMARK(BM_TimerInsertCancel)->Arg(0)->Arg(100000);

// One 64-byte message there and back over a socketpair, both ends on this loop.
void BM_SocketpairEchoRoundTrip(benchmark::State& state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
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
  auto client = [&](benchmark::State& st) -> Future<void> {
    std::array<char, 64> message{};
    std::array<char, 64> reply;
    for (auto _ : st) {
      co_await a.send(message.data(), message.size());
      co_await a.recvInto(reply, reply.size());
    }
  };
  waitFor(client(state));
  a.close();
  waitFor(std::move(echoing));
}
BENCHMARK(BM_SocketpairEchoRoundTrip);

}  // namespace

BENCHMARK_MAIN();
