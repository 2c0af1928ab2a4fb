// The seed's first example: answers every request with 200 "Hello World".
// Usage: hello [port]   (default 8080; 0 picks a free port)
#include <asynchttp/asynchttpserver.hpp>

#include <cstdio>
#include <cstdlib>

using namespace asynchttp;

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  auto server = newAsyncHttpServer();
  auto cb = [](Request& req) -> Future<void> { co_await req.respond(Http200, "Hello World"); };
  server->listen(port);
  std::printf("hello listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), cb));
}
