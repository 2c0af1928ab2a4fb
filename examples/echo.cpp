// Echoes each request: "<METHOD> <request-target>\n" followed by the body, as text/plain.
// Handy for testing HTTP clients. Usage: echo [port]   (default 8080; 0 picks a free port)
#include <asynchttp/asynchttpserver.hpp>

#include <cstdio>
#include <cstdlib>

using namespace asynchttp;

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  auto server = newAsyncHttpServer();
  auto cb = [](Request& req) -> Future<void> {
    std::string text;
    text.reserve(req.target.size() + req.body.size() + 16);
    text.append(to_string(req.reqMethod)).append(" ").append(req.target).append("\n");
    text.append(req.body);
    // A named local: GCC 12 rejects an initializer-list temporary inside a coroutine.
    auto headers = newHttpHeaders({{"Content-Type", "text/plain"}});
    co_await req.respond(Http200, text, headers);
  };
  server->listen(port);
  std::printf("echo listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), cb));
}
