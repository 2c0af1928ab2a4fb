// The seed's first example: answers every request with 200 "Hello World".
// Usage: hello [port] [threads]   (port default 8080, 0 picks a free one; threads default 1)
// Started by systemd socket activation, it serves the socket passed instead. SIGINT and
// SIGTERM shut it down gracefully: requests in flight finish (10 s at most), then it exits.
#include <asynchttp/asynchttpserver.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>

using namespace asynchttp;

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  auto server = threads > 1 ? newAsyncHttpServer({.threads = threads}) : newAsyncHttpServer();
  auto cb = [](Request& req) -> Future<void> { co_await req.respond(Http200, "Hello World"); };
  // Before serve(): the worker threads it starts inherit the blocked signals.
  for (int signal : {SIGINT, SIGTERM}) {
    addSignal(signal, [server] {
      std::fputs("hello shutting down\n", stderr);
      server->close();
    });
  }
  auto passed = listenFds();
  Future<void> serving;
  if (!passed.empty()) {
    std::printf("hello serving the socket systemd passed\n");
    std::fflush(stdout);
    serving = server->serve(std::move(passed.front()), cb);
  } else {
    server->listen(port);
    std::printf("hello listening on port %s\n", to_string(server->getPort()).c_str());
    std::fflush(stdout);
    serving = server->serve(server->getPort(), cb);
  }
  waitFor(std::move(serving));
}
