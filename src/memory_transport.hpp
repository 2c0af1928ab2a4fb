// An in-memory transport: a connection without a socket, so that tests (and a whole-connection
// fuzz target) drive the HTTP layer byte by byte and deterministically.
#pragma once

#include "transport.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace asynchttp::detail {

/// The two directions of an in-memory connection, shared by the test (the client's end) and
/// the server's MemoryTransport.
struct MemoryPipe {
  explicit MemoryPipe(Dispatcher& dispatcher) noexcept : loop(&dispatcher) {}
  /// Client to server: appends `bytes` and wakes a waiting reader.
  void send(std::string_view bytes);
  /// Client to server: end of stream after what was sent.
  void endInput();
  /// Server to client: everything written so far, removed from the pipe.
  std::string take();

  Dispatcher* loop;
  std::string toServer;
  std::size_t readOffset = 0;
  bool inputEnded = false;
  std::size_t maxRead = static_cast<std::size_t>(-1);  ///< bytes a server read returns at most
  std::string fromServer;
  bool serverShutWrite = false;  ///< the server ended its sending direction
  bool serverClosed = false;
  bool serverAborted = false;  ///< closed with a reset (a cut response)
  IoWait* reader = nullptr;

 private:
  void wakeReader();
};

/// The server's end of a MemoryPipe. Writes complete at once; files are read with pread.
class MemoryTransport final : public Transport {
 public:
  /// The server's end of `pipe`.
  explicit MemoryTransport(std::shared_ptr<MemoryPipe> pipe) noexcept;

  std::ptrdiff_t tryRead(std::span<char> buffer) override;
  bool mayRead() const noexcept override;
  void waitReadable(IoWait& wait) noexcept override;
  void cancelRead() noexcept override;
  Future<void> write(std::span<const std::string_view> parts, bool copyIfBlocked) override;
  Future<std::size_t> sendFile(int fd, std::uint64_t offset, std::size_t count) override;
  std::uint64_t bytesWritten() const noexcept override { return written_; }
  bool writing() const noexcept override { return false; }
  void shutdownWrite() noexcept override { pipe_->serverShutWrite = true; }
  bool isOpen() const noexcept override { return !pipe_->serverClosed; }
  void close() noexcept override;
  void abort() noexcept override;

 private:
  std::shared_ptr<MemoryPipe> pipe_;
  std::string corkedBytes_;
  std::uint64_t written_ = 0;
};

}  // namespace asynchttp::detail
