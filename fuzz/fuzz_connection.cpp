// libFuzzer entry point for a whole HTTP/1 connection over the in-memory transport (see
// README.md to build it): the input is what a client sends. Besides memory errors and hangs, it
// checks that the server's bytes do not depend on how the input is split: fed whole and fed one
// byte at a time, the connection must answer exactly the same, but for `100 Continue`, which
// goes out only when the body is not already there.
#include "fuzz_require.hpp"
#include "memory_connection.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

// Set when a handler answered without reading the body: whether the connection can go on then
// depends on whether body bytes had come yet (a client waiting for 100 Continue may never send
// them), that is on how the input was split, so such an input is not compared.
bool answeredBeforeTheBody = false;

// Exercises every way of answering, chosen by the request path.
Future<void> handler(Request& req) {
  const std::string& path = req.url.path;
  if (path == "/stream") {
    // Echoed in pieces of a fixed size: the bytes out depend on the body, not on how it came.
    constexpr std::size_t kPiece = 7;
    ResponseStream s = co_await req.respondStream(Http200);
    std::string pending;
    for (std::string_view piece; !(piece = co_await req.bodyChunk()).empty();) {
      pending += piece;
      for (; pending.size() >= kPiece; pending.erase(0, kPiece)) {
        co_await s.write(std::string_view(pending).substr(0, kPiece));
      }
    }
    co_await s.write(pending);
    co_await s.finish();
    co_return;
  }
  if (path == "/unread") {
    answeredBeforeTheBody = true;
    co_await req.respond(Http200, "unread");
    co_return;
  }
  co_await req.readBody(path == "/read" ? 64 : static_cast<std::size_t>(-1));
  if (path == "/drop") {
    ResponseStream s = co_await req.respondStream(Http200);
    co_await s.write("cut");
  } else if (path != "/silent") {
    co_await req.respond(Http200, path + ":" + req.body);
  }
}

// The server's whole output for `input`, fed in pieces of `step` bytes (0: whole).
std::string serve(std::string_view input, std::size_t step, const ServerSettings& settings) {
  MemoryConnection connection(handler, settings);
  std::string out;
  if (step == 0) {
    out += connection.exchange(input);
  } else {
    for (std::size_t at = 0; at < input.size(); at += step) {
      out += connection.exchange(input.substr(at, step));
    }
  }
  connection.pipe().endInput();
  connection.settle();
  require(connection.ended());  // end of input always ends the connection: no hang
  out += connection.output();
  constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  for (auto at = out.find(kContinue); at != std::string::npos; at = out.find(kContinue, at)) {
    out.erase(at, kContinue.size());
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the settings; the rest is the client's bytes.
  ServerSettings settings;
  settings.bufferBody = (data[0] & 1) == 0;
  settings.maxBody = (data[0] & 2) ? 16 : 4096;
  settings.maxHeaderBytes = 1024;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  answeredBeforeTheBody = false;
  std::string whole = serve(input, 0, settings);
  std::string bytewise = serve(input, 1, settings);
  require(answeredBeforeTheBody || bytewise == whole);
  return 0;
}
