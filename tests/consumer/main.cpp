// Uses the installed library through its umbrella header, as an application would.
#include <asynchttp/asynchttpserver.hpp>

#include <iostream>

int main() {
  using namespace asynchttp;
  auto server = newAsyncHttpServer({.maxBody = 1024});
  auto cb = [](Request& req) -> Future<void> { co_await req.respond(Http200, "Hello World"); };
  server->listen(Port(0), "127.0.0.1");  // links the runtime and the server, no traffic
  bool listening = static_cast<int>(server->getPort()) > 0;
  server->close();
  (void)cb;
  std::cout << Http404 << (listening ? "" : " (not listening)") << '\n';
  return 0;
}
