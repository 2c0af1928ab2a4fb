// An HTTP/1 connection over the in-memory transport, for tests that drive it byte by byte:
// no socket, no timing, the loop polled until nothing is left to run.
#pragma once

#include "http1_connection.hpp"
#include "memory_transport.hpp"

#include <memory>
#include <regex>
#include <string>

namespace asynchttp::testing {

/// One connection served over a MemoryPipe; the test plays the client.
class MemoryConnection {
 public:
  explicit MemoryConnection(RequestCallback callback, ServerSettings settings = {})
      : pipe_(std::make_shared<detail::MemoryPipe>(getGlobalDispatcher())) {
    settings.idleRelease = 0;  // parking is for sockets
    set_ = std::make_shared<detail::ConnectionSet>(settings);
    auto connection = std::make_unique<detail::Connection>(
        std::make_unique<detail::MemoryTransport>(pipe_), AsyncSocket(), "memory", settings,
        std::make_shared<const RequestCallback>(std::move(callback)), set_);
    detail::Connection& c = *connection;
    running_ = c.run(std::move(connection));
  }
  ~MemoryConnection() {
    if (!running_.finished()) pipe_->endInput();
    settle();
    // A lingering close waits for its timer; let it run out rather than outlive the test.
    auto deadline = Clock::now() + std::chrono::seconds(3);
    while (!running_.finished() && Clock::now() < deadline) poll(10);
  }

  /// Runs the loop until nothing is ready to run: the connection waits for the client, for a
  /// timer, or has ended. Timers are not waited for.
  void settle() {
    Dispatcher& loop = getGlobalDispatcher();
    for (int turns = 0; turns < 10000 && loop.hasReadyWork(); ++turns) loop.poll(0);
  }
  /// Sends bytes as the client and lets the server act on them.
  std::string exchange(std::string_view bytes) {
    pipe_->send(bytes);
    settle();
    return output();
  }
  /// What the server wrote since the last call, with every Date line removed.
  std::string output() {
    static const std::regex date("Date: [^\r]*\r\n");
    return std::regex_replace(pipe_->take(), date, "");
  }
  detail::MemoryPipe& pipe() { return *pipe_; }
  bool ended() const { return running_.finished(); }

 private:
  std::shared_ptr<detail::MemoryPipe> pipe_;
  std::shared_ptr<detail::ConnectionSet> set_;
  Future<void> running_;
};

}  // namespace asynchttp::testing
