// Internals of asyncnet shared with the HTTP server: the socket's state and raw I/O.
#pragma once

#include <asynchttp/asyncnet.hpp>

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace asynchttp {

namespace detail {
struct WriterTurn;
}

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
  bool stream = true;           // a short read drains only a stream socket, not datagrams
  // A write that can make no progress this long fails with ETIMEDOUT (0: it waits forever).
  std::int64_t writeTimeoutMs = 0;
  // Bytes per second a waiting write must average (ServerSettings::writeMinRate; 0: none).
  std::size_t writeMinRate = 0;
  // Handed over by the caller (newAsyncSocket(AsyncFD)), who may hold a duplicate: closing
  // then does not take it out of epoll, so it is removed explicitly.
  bool adopted = false;
  // One writer at a time, in order: the others wait in a FIFO and are handed the turn.
  bool sendInFlight = false;
  detail::WriterTurn* waitingWriters = nullptr;
  detail::WriterTurn* lastWaitingWriter = nullptr;
  void passWriterTurn() noexcept;

  ~State() { close(); }
  void close() noexcept {
    if (fd < 0) return;
    if (adopted) {
      loop->unregisterDescriptor(fd);
    } else {
      loop->unregisterClosing(fd);  // no epoll_ctl: the close takes it out of epoll
    }
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

/// Suspends until the socket is ready in one direction; throws SocketClosedError if it is
/// closed, or its wait cancelled, meanwhile. The wait record lives in the awaiter, in the
/// suspended coroutine's frame: no allocation.
struct Readiness {
  AsyncSocket::State& socket;
  bool forWrite;
  const char* operation;
  IoWait wait{};

  bool await_ready() const {
    // One reader per socket, as in Nim: a second wait would silently replace the first.
    if (!forWrite && socket.loop->readerPending(socket.fd)) {
      throw ValueError(std::string(operation) +
                       ": another read on this socket is pending (one reader at a time)");
    }
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    wait.waiter = h;
    if (forWrite) {
      socket.loop->waitWritable(socket.fd, wait);
    } else {
      socket.loop->waitReadable(socket.fd, wait);
    }
  }
  void await_resume() const {
    if (wait.cancelled || socket.fd < 0) throw SocketClosedError(operation);
  }
};

/// Waits for the socket's single writer turn (FIFO); on resumption the turn is this caller's.
struct WriterTurn {
  AsyncSocket::State& socket;
  std::coroutine_handle<> waiter;
  WriterTurn* next = nullptr;

  bool await_ready() noexcept {
    if (socket.sendInFlight) return false;
    socket.sendInFlight = true;
    return true;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    waiter = h;
    if (socket.lastWaitingWriter) {
      socket.lastWaitingWriter->next = this;
    } else {
      socket.waitingWriters = this;
    }
    socket.lastWaitingWriter = this;
  }
  void await_resume() const noexcept {}
};

/// Awaits writability of a socket until `until`: throws OSError(ETIMEDOUT) past it, or
/// SocketClosedError if the socket is closed or the wait cancelled. Not trivially destructible
/// (it disarms its timer): keep it in a named local, never a temporary (GCC 12).
struct TimedWritable : TimerNode {
  AsyncSocket::State& socket;
  const char* operation;
  IoWait wait{};
  bool expired = false;

  TimedWritable(AsyncSocket::State& s, const char* op, Clock::time_point until)
      : socket(s), operation(op) {
    deadline = until;
    fire = [](TimerNode& timer) {
      auto& self = static_cast<TimedWritable&>(timer);
      self.expired = true;
      self.socket.loop->cancelWrite(self.socket.fd);
    };
  }
  ~TimedWritable() { socket.loop->cancelTimer(*this); }
  TimedWritable(const TimedWritable&) = delete;
  TimedWritable& operator=(const TimedWritable&) = delete;

  bool await_ready() {
    socket.loop->addTimer(*this);  // here, not in await_suspend: it may throw
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    wait.waiter = h;
    socket.loop->waitWritable(socket.fd, wait);
  }
  void await_resume() {
    socket.loop->cancelTimer(*this);
    if (expired) {
      socket.close();  // the response is cut short: the connection must not carry on
      throw OSError(operation, ETIMEDOUT);
    }
    if (wait.cancelled || socket.fd < 0) throw SocketClosedError(operation);
  }
};

/// A test's seam into the server's accept loop: its next `count` accepts on this thread fail
/// with `error` (errno), as the kernel's would, before accepting anything.
struct InjectedAcceptErrors {
  int error = 0;
  int count = 0;
};
extern thread_local InjectedAcceptErrors injectedAcceptErrors;

/// Awaits readability of `s`.
inline Readiness readable(AsyncSocket::State& s, const char* operation) {
  return {s, false, operation};
}

/// Awaits writability of `s`.
inline Readiness writable(AsyncSocket::State& s, const char* operation) {
  return {s, true, operation};
}

/// One receive system call: bytes read, 0 at end of stream, or -1 when nothing is there (the
/// descriptor is then known drained; await `readable`). Throws OSError, SocketClosedError.
std::ptrdiff_t tryReceive(AsyncSocket::State& s, std::span<char> buffer, const char* operation);

/// Reaches the shared state behind a handle.
struct SocketAccess {
  /// The state of `socket` (null for a handle to no socket).
  static const std::shared_ptr<AsyncSocket::State>& state(const AsyncSocket& socket) noexcept {
    return socket.state_;
  }
  /// A handle owning `fd`, a stream socket of `domain` already registered with `loop`.
  static AsyncSocket adoptRegistered(int fd, int domain, Dispatcher& loop) {
    auto state = std::make_shared<AsyncSocket::State>();
    state->fd = fd;
    state->domain = domain;
    state->loop = &loop;
    return AsyncSocket(std::move(state));
  }
  /// Takes the descriptor out of `state`, still open and registered: the caller owns it now.
  static int detachDescriptor(AsyncSocket::State& state) noexcept {
    return std::exchange(state.fd, -1);
  }
};

/// The receive system call, retried on EINTR, suspending while nothing is there; 0 at end of
/// stream. Bypasses the socket's read-ahead buffer. May complete inline.
Future<std::size_t> receiveRaw(std::shared_ptr<AsyncSocket::State> s, std::span<char> buffer,
                               const char* operation);

/// Writes the socket's corked output and then `parts` (at most kMaxWriteParts), all of it, in
/// as few system calls as possible. With `copyIfBlocked` the parts are copied before the first
/// wait, so the caller may free them once this returns; else they must outlive the Future.
/// May complete inline.
Future<void> sendAll(std::shared_ptr<AsyncSocket::State> s, std::span<const std::string_view> parts,
                     bool copyIfBlocked, const char* operation);
inline constexpr std::size_t kMaxWriteParts = 3;

/// Writes the socket's corked output and then `data`, which the caller keeps alive until
/// completion. May complete inline.
inline Future<void> sendAll(std::shared_ptr<AsyncSocket::State> s, std::string_view data,
                            const char* operation) {
  return sendAll(std::move(s), std::span(&data, 1), false, operation);
}

/// Writes the socket's corked output, then up to `count` bytes of file `fd` from `offset` with
/// sendfile(2); returns the file bytes sent (0 at the file's end). May complete inline.
Future<std::size_t> sendFileSome(std::shared_ptr<AsyncSocket::State> s, int fd,
                                 std::uint64_t offset, std::size_t count, const char* operation);

}  // namespace detail

inline void AsyncSocket::State::passWriterTurn() noexcept {
  detail::WriterTurn* next = waitingWriters;
  if (!next) {
    sendInFlight = false;
    return;
  }
  waitingWriters = next->next;
  if (!waitingWriters) lastWaitingWriter = nullptr;
  loop->resumeSoon(next->waiter);  // keeps sendInFlight: the turn passes straight to it
}
}  // namespace asynchttp
