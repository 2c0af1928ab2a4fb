// The transport seam: what the HTTP layers need of a byte stream, whatever carries it. Plain
// TCP (tcp_transport.hpp) now; TLS and the in-memory transport of the tests plug in here, and
// the HTTP code does not change.
#pragma once

#include <asynchttp/asyncdispatch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace asynchttp::detail {

/// A connected byte stream, driven by one thread's loop. One reader and, at a time, one writer.
class Transport {
 public:
  explicit Transport(Dispatcher& loop) noexcept : loop_(&loop) {}
  virtual ~Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  /// The loop this transport runs on.
  Dispatcher& loop() const noexcept { return *loop_; }
  /// Output corked by the HTTP layer: every write sends it first, so bytes keep their order.
  std::string& corked() noexcept { return *corked_; }

  /// One read attempt: bytes read, 0 at end of stream, or -1 when nothing is there now (then
  /// await `readable()`). Throws OSError, SocketClosedError once closed.
  virtual std::ptrdiff_t tryRead(std::span<char> buffer) = 0;
  /// False when a read now would find nothing: the last read drained the stream and no sign
  /// of more has come. (Over TCP a short read means drained; under TLS it does not.)
  virtual bool mayRead() const noexcept = 0;
  /// Registers `wait` to be resumed when a read may succeed, or cancelled by cancelRead/close.
  virtual void waitReadable(IoWait& wait) noexcept = 0;
  /// Resumes a pending readable() wait with `cancelled` set; the transport stays open.
  virtual void cancelRead() noexcept = 0;

  /// Writes the corked output, then `parts` in order, all of it, in as few system calls as
  /// possible. With `copyIfBlocked`, the parts are copied before the first wait, so the caller
  /// may free them as soon as this returns; else they must outlive the Future.
  virtual Future<void> write(std::span<const std::string_view> parts, bool copyIfBlocked) = 0;
  /// Writes the corked output, then up to `count` bytes of file `fd` from `offset`; returns the
  /// bytes of the file sent (0 only at the file's end). Waits while the peer takes nothing.
  virtual Future<std::size_t> sendFile(int fd, std::uint64_t offset, std::size_t count) = 0;
  /// Bytes written so far (corked bytes count once they leave).
  virtual std::uint64_t bytesWritten() const noexcept = 0;
  /// True while a write is in progress.
  virtual bool writing() const noexcept = 0;

  /// Ends the sending direction (the peer reads end of stream); reading goes on.
  virtual void shutdownWrite() noexcept = 0;
  /// True until closed.
  virtual bool isOpen() const noexcept = 0;
  /// Closes; pending waits resume with SocketClosedError. Idempotent.
  virtual void close() noexcept = 0;
  /// Closes so that the peer cannot take what it received for complete (a TCP reset).
  virtual void abort() noexcept { close(); }
  /// Throws ValueError when another reader waits already (one reader per stream).
  virtual void checkOneReader() const {}
  /// True when detachForParking would hand over a descriptor with nothing buffered above it.
  virtual bool parkable() const noexcept { return false; }
  /// Hands over the open, registered descriptor to park the connection, or -1 when this
  /// transport cannot be parked; `domain` gets its address family. The transport is closed
  /// afterwards either way.
  virtual int detachForParking(int& domain) noexcept {
    (void)domain;
    return -1;
  }

  /// Writes the corked output: a completed Future when there is none (no coroutine frame).
  Future<void> flush() {
    if (corked_->empty()) return {};
    return write({}, false);
  }

 protected:
  Dispatcher* loop_;
  std::string* corked_ = nullptr;  // set by the derived class
};

/// Awaits readability of a transport: true when readable, false when the wait was cancelled
/// or the transport closed. The wait lives in the awaiter, in the coroutine frame.
struct TransportReadable {
  Transport& transport;
  IoWait wait{};
  bool await_ready() const {
    transport.checkOneReader();
    return false;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    wait.waiter = h;
    transport.waitReadable(wait);
  }
  bool await_resume() const noexcept { return !wait.cancelled && transport.isOpen(); }
};

/// Reads at least one byte into `buffer`, waiting as needed; 0 at end of stream. Throws
/// SocketClosedError when closed or cancelled meanwhile.
Future<std::size_t> readSome(Transport& transport, std::span<char> buffer);

/// Suspends until the loop's next turn: a long transfer lets the other connections run.
struct YieldToLoop {
  Dispatcher& loop;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { loop.resumeSoon(h); }
  void await_resume() const noexcept {}
};

}  // namespace asynchttp::detail
