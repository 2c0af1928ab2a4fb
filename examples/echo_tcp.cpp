// A TCP echo server on the asynchttp runtime: every byte a client sends comes back.
// Usage: echo_tcp [port]   (default 7000; 0 picks a free port, printed on stdout)
#include <asynchttp/asyncnet.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>

using namespace asynchttp;

// Echoes one connection until the peer closes it.
Future<void> handle(AsyncSocket client) {
  std::array<char, 16 * 1024> buffer;
  try {
    for (;;) {
      std::size_t n = co_await client.recvSome(buffer);
      if (n == 0) break;
      co_await client.send(buffer.data(), n);
    }
  } catch (const OSError&) {
    // A peer that resets its connection costs only that connection.
  }
  client.close();
}

Future<void> serve(Port port) {
  auto server = newAsyncSocket(AF_INET);
  server.setSockOpt(OptReuseAddr, true);
  server.bindAddr(port, "127.0.0.1");
  server.listen();
  std::printf("echo_tcp listening on 127.0.0.1:%s\n",
              to_string(server.getLocalAddr().second).c_str());
  std::fflush(stdout);
  for (;;) {
    auto client = co_await server.accept();
    client.setSockOpt(OptNoDelay, true);
    asyncCheck(handle(client));
  }
}

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 7000);
  waitFor(serve(port));
}
