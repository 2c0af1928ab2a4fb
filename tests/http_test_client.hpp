// A small HTTP/1.1 client over AsyncSocket for the server's tests: sends raw bytes, reads
// responses framed by Content-Length, and observes connection closes.
#pragma once

#include <asynchttp/asynchttpserver.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace asynchttp::testing {

/// A parsed response.
struct Response {
  int status = 0;
  std::string statusLine;
  HttpHeaders headers;
  std::string body;
  HttpHeaders trailers;  ///< of a chunked body
  bool complete = true;  ///< false when the connection ended inside the body
};

/// Runs the loop until nothing is pending, so that no coroutine outlives the test.
inline void drainLoop() {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (hasPendingOperations() && Clock::now() < deadline) poll(10);
}

/// A server on 127.0.0.1 and a free port, serving `callback` until destroyed.
class TestServer {
 public:
  explicit TestServer(RequestCallback callback, ServerSettings settings = ServerSettings())
      : server_(newAsyncHttpServer(settings)) {
    server_->listen(Port(0), "127.0.0.1");
    port_ = server_->getPort();
    serving_ = server_->serve(port_, std::move(callback), "127.0.0.1");
  }
  ~TestServer() {
    server_->close();
    // Let connections see their clients go and finish, so nothing outlives the test.
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!serving_.finished() && Clock::now() < deadline) poll(10);
    drainLoop();
  }
  Port port() const { return port_; }
  AsyncHttpServer& server() { return *server_; }

 private:
  std::shared_ptr<AsyncHttpServer> server_;
  Port port_{};
  Future<void> serving_;
};

/// Connects to the test server.
inline AsyncSocket connectTo(Port port) {
  auto socket = newAsyncSocket();
  waitFor(socket.connect("127.0.0.1", port));
  return socket;
}

/// Reads one response; a status of 0 means the connection ended first.
inline Future<Response> readResponse(AsyncSocket socket) {
  Response r;
  r.statusLine = co_await socket.recvLine(65536);
  if (r.statusLine.empty() || r.statusLine == "\r\n") co_return r;
  if (r.statusLine.size() >= 12) r.status = std::stoi(r.statusLine.substr(9, 3));
  for (;;) {
    std::string line = co_await socket.recvLine(65536);
    if (line == "\r\n" || line.empty()) break;
    auto colon = line.find(':');
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    r.headers.add(line.substr(0, colon), value);
  }
  if (r.headers.hasKey("Content-Length")) {
    auto length = std::stoul(std::string(r.headers["Content-Length"]));
    r.body = co_await socket.recv(length);
    r.complete = r.body.size() == length;
  } else if (r.headers.hasKey("Transfer-Encoding")) {  // chunked
    r.complete = false;
    for (;;) {
      std::string size = co_await socket.recvLine(65536);
      if (size.empty()) co_return r;  // ended inside the body
      std::size_t n = std::stoul(size, nullptr, 16);
      if (n == 0) break;
      std::string data = co_await socket.recv(n);
      r.body += data;
      if (data.size() < n || (co_await socket.recvLine(65536)) != "\r\n") co_return r;
    }
    for (;;) {
      std::string line = co_await socket.recvLine(65536);
      if (line.empty()) co_return r;
      if (line == "\r\n") break;
      auto colon = line.find(':');
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.trailers.add(line.substr(0, colon), value);
    }
    r.complete = true;
  }
  co_return r;
}

/// True when the peer closes the connection within `ms` (reading and dropping bytes).
inline bool closedWithin(AsyncSocket socket, std::int64_t ms) {
  auto eof = [](AsyncSocket s) -> Future<void> {
    for (;;) {
      std::string chunk = co_await s.recv(1);
      if (chunk.empty()) co_return;
    }
  };
  auto waiting = eof(socket);
  bool closed = waitFor(withTimeout(waiting, ms));
  if (!closed) {
    socket.close();
    try {
      waitFor(std::move(waiting));
    } catch (const OSError&) {
    }
  }
  return closed;
}

/// Reads one response, failing the test (and returning status 0) after `ms` without one.
inline Response awaitResponse(AsyncSocket socket, std::int64_t ms = 5000) {
  auto reading = readResponse(socket);
  if (waitFor(withTimeout(reading, ms))) return std::move(reading).read();
  ADD_FAILURE() << "no response within " << ms << " ms";
  socket.close();  // ends the read, which fails with SocketClosedError
  try {
    waitFor(std::move(reading));
  } catch (const OSError&) {
  }
  return Response{};
}

/// Milliseconds since `since`.
inline std::int64_t elapsedMs(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

/// Everything the server sends until it closes; fails the test after `ms` (3 s by default).
inline std::string drainUntilClosed(AsyncSocket socket, std::int64_t ms = 3000) {
  auto reading = [](AsyncSocket s) -> Future<std::string> {
    std::string all;
    for (;;) {
      std::string chunk = co_await s.recv(256);
      if (chunk.empty()) co_return all;
      all += chunk;
    }
  }(socket);
  if (!waitFor(withTimeout(reading, ms))) {
    ADD_FAILURE() << "the server did not close the connection";
    socket.close();
    try {
      waitFor(std::move(reading));
    } catch (const OSError&) {
    }
    return {};
  }
  return std::move(reading).read();
}

/// Sends `raw` on a new connection and reads one response.
inline Response exchange(Port port, const std::string& raw) {
  auto socket = connectTo(port);
  waitFor(socket.send(raw));
  return awaitResponse(socket);
}

}  // namespace asynchttp::testing
