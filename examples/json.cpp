// The seed's second example: /hello-world answers JSON, every other path 404.
// Usage: json [port]   (default 8080; 0 picks a free port)
#include <asynchttp/asynchttpserver.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>

using namespace asynchttp;

Future<void> handler(Request& req) {
  if (req.url.path == "/hello-world") {
    auto msg = nlohmann::json{{"message", "Hello World"}};
    auto headers = newHttpHeaders({{"Content-Type", "application/json"}});
    co_await req.respond(Http200, msg.dump(), headers);
  } else {
    co_await req.respond(Http404, "Not Found");
  }
}

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  auto server = newAsyncHttpServer();
  server->listen(port);
  std::printf("json listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), handler));
}
