// Server-sent events: GET /events streams `count` events (default 5), one every `interval`
// milliseconds (default 1000), each "data: <n>"; GET / serves a page that shows them.
// Usage: sse [port]   (default 8080; 0 picks a free port)
// SIGINT and SIGTERM shut it down gracefully: each stream ends after its current event.
#include <asynchttp/asynchttpserver.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace asynchttp;

namespace {

constexpr std::string_view kPage = R"(<!doctype html>
<title>asynchttp events</title>
<ul id="events"></ul>
<script>
  const list = document.getElementById("events");
  new EventSource("/events").onmessage = (e) => {
    const item = document.createElement("li");
    item.textContent = e.data;
    list.appendChild(item);
  };
</script>
)";

// The query parameter `key` as a number, or `fallback`.
long parameter(const Uri& url, std::string_view key, long fallback) {
  for (const auto& [name, value] : decodeQuery(url.query)) {
    if (name == key) return std::strtol(value.c_str(), nullptr, 10);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  auto server = newAsyncHttpServer();
  for (int signal : {SIGINT, SIGTERM}) addSignal(signal, [server] { server->close(); });
  auto cb = [&server = *server](Request& req) -> Future<void> {
    if (req.url.path == "/") {
      auto headers = newHttpHeaders({{"Content-Type", "text/html; charset=utf-8"}});
      co_await req.respond(Http200, kPage, headers);
      co_return;
    }
    if (req.url.path != "/events") {
      co_await req.respond(Http404, "Not Found\n");
      co_return;
    }
    long count = parameter(req.url, "count", 5);
    long interval = parameter(req.url, "interval", 1000);
    auto headers =
        newHttpHeaders({{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
    ResponseStream events = co_await req.respondStream(Http200, headers);
    for (long i = 1; i <= count && !server.closing(); ++i) {
      if (i > 1) co_await sleepAsync(interval);
      co_await events.write("data: " + std::to_string(i) + "\n\n");  // leaves at once
    }
    co_await events.finish();
  };
  server->listen(port);
  std::printf("sse listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), cb));
}
