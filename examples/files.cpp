// A static file server: GET and HEAD of files under a folder with sendFile (ranges, ETag,
// If-None-Match, HEAD); a folder's index.html for a path ending in "/". Paths that would climb
// out of the folder get 404. Usage: files [port] [folder]   (port default 8080, 0 picks a
// free one; folder default ".")
#include <asynchttp/asynchttpserver.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace asynchttp;

namespace {

// True when the decoded path stays inside the folder: no "..", no NUL, absolute.
bool isSafe(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string_view::npos) {
    return false;
  }
  while (!path.empty()) {
    path.remove_prefix(1);  // the '/'
    auto segment = path.substr(0, path.find('/'));
    if (segment == "..") return false;
    path.remove_prefix(segment.size());
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  std::string root = argc > 2 ? argv[2] : ".";
  auto server = newAsyncHttpServer();
  auto cb = [&root](Request& req) -> Future<void> {
    if (req.reqMethod != HttpGet && req.reqMethod != HttpHead) {
      auto headers = newHttpHeaders({{"Allow", "GET, HEAD"}});
      co_await req.respond(Http405, "Method Not Allowed\n", headers);
      co_return;
    }
    std::string path = decodeUrl(req.url.path, false);
    if (!isSafe(path)) {
      co_await req.respond(Http404, "Not Found\n");
      co_return;
    }
    if (path.back() == '/') path += "index.html";
    co_await req.sendFile(root + path);
  };
  server->listen(port);
  std::printf("files listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), cb));
}
