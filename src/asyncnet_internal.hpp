// Internals of asyncnet shared with the HTTP server: the socket's state and raw I/O.
#pragma once

#include <asynchttp/asyncnet.hpp>

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace asynchttp {

// What every handle of one socket shares.
struct AsyncSocket::State {
  int fd = -1;
  int domain = AF_INET;
  Dispatcher* loop = nullptr;
  std::string readBuffer;  // bytes received but not yet returned (recvLine reads ahead)
  std::size_t readOffset = 0;
  // Output corked by the HTTP server while it answers a batch of pipelined requests; every
  // send() writes it out first, so bytes leave in the order they were produced.
  std::string pendingOutput;
  std::string writing;  // what a send in progress is writing; swapped with pendingOutput
  std::uint64_t bytesSent = 0;
  std::uint64_t sendCalls = 0;  // successful write system calls, to check batching

  ~State() { close(); }
  void close() noexcept {
    if (fd < 0) return;
    loop->unregisterDescriptor(fd);
    ::close(fd);
    fd = -1;
  }
  std::size_t buffered() const noexcept { return readBuffer.size() - readOffset; }
  std::size_t takeBuffered(char* out, std::size_t size) noexcept {
    std::size_t n = std::min(size, buffered());
    std::memcpy(out, readBuffer.data() + readOffset, n);
    readOffset += n;
    if (readOffset == readBuffer.size()) {
      readBuffer.clear();
      readOffset = 0;
    }
    return n;
  }
};

namespace detail {

/// Reaches the shared state behind a handle.
struct SocketAccess {
  /// The state of `socket` (null for a handle to no socket).
  static const std::shared_ptr<AsyncSocket::State>& state(const AsyncSocket& socket) noexcept {
    return socket.state_;
  }
};

/// The receive system call, retried on EINTR, suspending while nothing is there; 0 at end of
/// stream. Bypasses the socket's read-ahead buffer. May complete inline.
Future<std::size_t> receiveRaw(std::shared_ptr<AsyncSocket::State> s, std::span<char> buffer,
                               const char* operation);

/// Writes the socket's corked output and then `data`, all of it, in as few system calls as
/// possible. `data` must stay valid until completion. May complete inline.
Future<void> sendAll(std::shared_ptr<AsyncSocket::State> s, std::string_view data,
                     const char* operation);

}  // namespace detail
}  // namespace asynchttp
