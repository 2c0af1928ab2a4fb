// asyncnet: non-blocking sockets whose operations are coroutines (Nim's std/asyncnet).
//
// Every operation tries its system call first and suspends only when the kernel would block, so
// an operation that can complete at once completes inline, without a turn of the loop. A socket
// has at most one pending receive and one pending send at a time.
#pragma once

#include <asynchttp/asyncdispatch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asynchttp {

namespace detail {
struct SocketAccess;
}

/// A TCP/UDP port number, a distinct type: write `Port(8080)`.
enum class Port : std::uint16_t {};
/// The port as a number in text.
std::string to_string(Port port);
/// Writes the port number.
std::ostream& operator<<(std::ostream& os, Port port);

/// A descriptor handed to the library, a distinct type so that it is never taken for a domain.
enum class AsyncFD : int {};

/// Boolean socket options, with Nim's names; usable unqualified (`OptReuseAddr`).
enum class SOBool : std::uint8_t {
  OptAcceptConn,
  OptBroadcast,
  OptDebug,
  OptDontRoute,
  OptKeepAlive,
  OptOOBInline,
  OptReuseAddr,
  OptReusePort,
  OptNoDelay
};
using enum SOBool;

/// A handle to a non-blocking socket registered with this thread's dispatcher.
///
/// Copies refer to the same socket (as Nim's `ref`); it closes on `close()` or when the last
/// handle goes. Closing it resumes its pending operations with SocketClosedError.
class AsyncSocket {
 public:
  /// A handle to no socket; `isClosed()` is true.
  AsyncSocket() = default;

  /// Binds to `address` (empty: every address of the socket's family) and `port`; resolving a
  /// host name here blocks, so pass a numeric address where that matters. Throws OSError.
  void bindAddr(Port port = Port(0), std::string_view address = "");
  /// Binds a Unix-domain socket to the filesystem `path`. Throws OSError.
  void bindUnix(std::string_view path);
  /// Starts listening for connections. Throws OSError.
  void listen(int backlog = SOMAXCONN);
  /// The next connection. May complete inline when one is already queued.
  Future<AsyncSocket> accept();
  /// The next connection and its peer's address as text. May complete inline.
  Future<std::pair<std::string, AsyncSocket>> acceptAddr();
  /// Connects to `host` (a name or numeric address) and `port`; names are resolved on a helper
  /// thread so the loop never blocks. Throws OSError naming the host (refused, unreachable).
  Future<void> connect(std::string host, Port port);
  /// Connects a Unix-domain socket to `path`. Throws OSError.
  Future<void> connectUnix(std::string path);

  /// Reads `size` bytes; fewer only at end of stream, "" at end of stream. May complete inline.
  Future<std::string> recv(std::size_t size);
  /// Reads `size` bytes (at most the buffer's size) into `buffer`; fewer only at end of stream.
  /// Returns the count. May complete inline.
  Future<std::size_t> recvInto(std::span<char> buffer, std::size_t size);
  /// Reads whatever is available, at least one byte, into `buffer`; 0 at end of stream.
  /// May complete inline.
  Future<std::size_t> recvSome(std::span<char> buffer);
  /// Reads a line ended by "\r\n" or "\n", returned without it; "\r\n" alone comes back as
  /// "\r\n" and end of stream as "" (Nim's convention). Throws ValueError after `maxLength`
  /// bytes without a line end. May complete inline.
  Future<std::string> recvLine(std::size_t maxLength = 1000000);
  /// Sends all of `data`; completes once the kernel has taken every byte. May complete inline.
  /// Throws OSError when the peer is gone (never SIGPIPE).
  Future<void> send(std::string data);

  /// Sends `size` bytes at `data`, which the caller keeps alive until completion (Nim's
  /// pointer form, for buffers the caller reuses). May complete inline.
  Future<void> send(const char* data, std::size_t size);

  /// Closes the socket; pending operations fail with SocketClosedError. Idempotent.
  void close();
  /// True when closed, or when this handle refers to no socket.
  bool isClosed() const noexcept;
  /// Sets a boolean option. Throws OSError.
  void setSockOpt(SOBool option, bool value);
  /// Reads a boolean option. Throws OSError.
  bool getSockOpt(SOBool option) const;
  /// The local address and port (for a Unix socket: the path and Port(0)). Throws OSError.
  std::pair<std::string, Port> getLocalAddr() const;
  /// The peer's address and port. Throws OSError.
  std::pair<std::string, Port> getPeerAddr() const;
  /// The address family: AF_INET, AF_INET6 or AF_UNIX.
  int getDomain() const noexcept;
  /// The descriptor, or -1 when closed.
  int getFd() const noexcept;
  /// Same socket.
  friend bool operator==(const AsyncSocket& a, const AsyncSocket& b) noexcept {
    return a.state_ == b.state_;
  }

  struct State;

 private:
  friend AsyncSocket newAsyncSocket(int, int, int);
  friend AsyncSocket newAsyncSocket(AsyncFD, int);
  friend struct detail::SocketAccess;
  explicit AsyncSocket(std::shared_ptr<State> state) : state_(std::move(state)) {}
  State& checkedState(const char* operation) const;

  std::shared_ptr<State> state_;
};

/// A new socket of the given family (AF_INET, AF_INET6 or AF_UNIX), registered with this
/// thread's dispatcher. Throws OSError.
AsyncSocket newAsyncSocket(int domain = AF_INET, int sockType = SOCK_STREAM, int protocol = 0);

/// Takes ownership of an open socket descriptor `fd` of family `domain` (made non-blocking
/// here), e.g. one end of a socketpair. Throws OSError.
AsyncSocket newAsyncSocket(AsyncFD fd, int domain = AF_INET);

/// The listening sockets that systemd passed by socket activation (LISTEN_PID and LISTEN_FDS:
/// descriptors 3 on), registered with this thread's dispatcher; empty when none were passed.
/// Unsets the variables, so that child processes do not take them too.
std::vector<AsyncSocket> listenFds();

/// Opens a new socket and connects it to `host` and `port`, trying the resolved addresses in turn.
Future<AsyncSocket> dial(std::string host, Port port);

}  // namespace asynchttp
