// The seed's first example: answers every request with 200 "Hello World".
// Usage: hello [port] [threads]   (port default 8080, 0 picks a free one; threads default 1)
#include <asynchttp/asynchttpserver.hpp>

#include <cstdio>
#include <cstdlib>

using namespace asynchttp;

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  auto server = threads > 1 ? newAsyncHttpServer({.threads = threads}) : newAsyncHttpServer();
  auto cb = [](Request& req) -> Future<void> { co_await req.respond(Http200, "Hello World"); };
  server->listen(port);
  std::printf("hello listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), cb));
}
