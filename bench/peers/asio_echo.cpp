// The TCP echo server of examples/echo_tcp.cpp, written on Boost.Asio C++20 coroutines,
// as the peer for bench/run_echo. Same behaviour: bind 127.0.0.1, TCP_NODELAY on accepted
// sockets, read_some into a 16 KiB buffer, async_write all of it back; one io_context,
// one thread.
// Usage: asio_echo [port]   (default 7000; 0 picks a free port, printed on stdout)
// Build: g++ -O2 -std=c++20 asio_echo.cpp -o asio_echo
//   (Boost 1.74 header-only Asio; GCC >= 11 enables coroutines with -std=c++20, so no
//    -fcoroutines nor define is needed: Asio sees __cpp_impl_coroutine and <coroutine>.
//    But 1.74's boost/asio/awaitable.hpp uses std::exchange without including <utility>,
//    which GCC 12's libstdc++ no longer pulls in transitively: include it first.)
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp needs std::exchange

#include <boost/asio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace asio = boost::asio;
using asio::ip::tcp;

#if !defined(BOOST_ASIO_HAS_CO_AWAIT)
#error "Boost.Asio coroutine support (BOOST_ASIO_HAS_CO_AWAIT) is not enabled"
#endif

// Echoes one connection until the peer closes it.
asio::awaitable<void> handle(tcp::socket client) {
  std::array<char, 16 * 1024> buffer;
  try {
    for (;;) {
      std::size_t n = co_await client.async_read_some(asio::buffer(buffer), asio::use_awaitable);
      co_await asio::async_write(client, asio::buffer(buffer.data(), n), asio::use_awaitable);
    }
  } catch (const boost::system::system_error&) {
    // End of file or a reset costs only that connection.
  }
  boost::system::error_code ignored;
  client.close(ignored);
}

asio::awaitable<void> serve(unsigned short port) {
  auto executor = co_await asio::this_coro::executor;
  tcp::acceptor server(executor);
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
  server.open(endpoint.protocol());
  server.set_option(tcp::acceptor::reuse_address(true));
  server.bind(endpoint);
  server.listen();
  std::printf("asio_echo listening on 127.0.0.1:%u\n", unsigned(server.local_endpoint().port()));
  std::fflush(stdout);
  for (;;) {
    tcp::socket client = co_await server.async_accept(asio::use_awaitable);
    client.set_option(tcp::no_delay(true));
    asio::co_spawn(executor, handle(std::move(client)), asio::detached);
  }
}

int main(int argc, char** argv) {
  unsigned short port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 7000);
  asio::io_context context(1);  // one thread: concurrency hint 1
  asio::co_spawn(context, serve(port), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  context.run();
}
