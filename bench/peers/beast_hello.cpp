// Boost.Beast HTTP/1.1 server for bench/run: one io_context, one thread, asynchronous
// (callbacks, as in Beast's http_server_async example), keep-alive, pipelining handled one
// request at a time from the read buffer.
//
//   beast_hello [port]        every request: 200 "Hello World" (text/plain, Content-Length, Date)
//   beast_hello [port] echo   every request: 200 "<METHOD> <target>\n" + body, like asynchttp's
//                             examples/echo (request bodies up to 64 MiB)
//
// Port 0 (the default) picks a free one; it prints "beast_hello listening on port N".
// Listens on 127.0.0.1 only. TCP_NODELAY on accepted sockets. The Date header is formatted
// once a second by a timer, as nginx and h2o do.
//
// Build: g++ -O2 -std=c++20 -pthread beast_hello.cpp -o beast_hello   (Boost 1.74 headers)
#include <utility>  // Boost 1.74's Asio uses std::exchange without including it (GCC 12)

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

bool g_echo = false;
std::string g_date;

void updateDate() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  g_date.assign(buf, n);
}

void tickDate(net::steady_timer& timer) {
  timer.expires_after(std::chrono::seconds(1));
  timer.async_wait([&timer](beast::error_code ec) {
    if (ec) return;
    updateDate();
    tickDate(timer);
  });
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() {
    // Beast reads at most the flat_buffer's free capacity (at least 512 bytes) per recv: with
    // the default buffer a 1 MiB body takes ~2 000 reads. Echo mode reserves 64 KiB, so reads
    // are up to 64 KiB (hello mode keeps the default, small buffer).
    if (g_echo) buffer_.reserve(65536);
    read();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->onRead(ec);
                     });
  }

  void onRead(beast::error_code ec) {
    if (ec) return close();
    http::request<http::string_body>& req = parser_->get();
    res_ = {};
    res_.result(http::status::ok);
    res_.version(req.version());
    res_.set(http::field::date, g_date);
    res_.set(http::field::content_type, "text/plain");
    if (g_echo) {
      auto method = req.method_string();
      auto target = req.target();
      std::string& body = res_.body();
      body.reserve(method.size() + target.size() + 2 + req.body().size());
      body.append(method.data(), method.size()).append(" ");
      body.append(target.data(), target.size()).append("\n");
      body.append(req.body());
    } else {
      res_.body() = "Hello World";
    }
    res_.keep_alive(req.keep_alive());
    res_.prepare_payload();
    http::async_write(socket_, res_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->onWrite(ec);
                      });
  }

  void onWrite(beast::error_code ec) {
    if (ec || !res_.keep_alive()) return close();
    read();
  }

  void close() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    socket_.close(ec);
  }

  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      std::make_shared<Session>(std::move(socket))->start();
    } else if (ec == net::error::operation_aborted) {
      return;
    }
    accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0);
  g_echo = argc > 2 && std::strcmp(argv[2], "echo") == 0;
  updateDate();

  net::io_context ioc{1};
  tcp::acceptor acceptor(ioc);
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(net::socket_base::max_listen_connections);
  std::printf("beast_hello listening on port %u\n", unsigned(acceptor.local_endpoint().port()));
  std::fflush(stdout);

  net::steady_timer dateTimer(ioc);
  tickDate(dateTimer);
  accept(acceptor);
  ioc.run();
}
