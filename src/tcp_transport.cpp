#include "tcp_transport.hpp"

#include <sys/sendfile.h>
#include <sys/socket.h>

#include <cerrno>
#include <csignal>
#include <ctime>

namespace asynchttp::detail {

namespace {

bool wouldBlock(int error) {
  return error == EAGAIN || error == EWOULDBLOCK;
}

// One write's waits: when it first waited, and how much the socket had sent by then.
struct WriteWaits {
  Clock::time_point since{};
  std::uint64_t sentBefore = 0;
};

// Waits until the socket takes bytes again: for at most its write timeout, and within what
// its minimum rate allows this write since it first waited (timeout + taken / rate).
Future<void> awaitWritable(AsyncSocket::State& s, const char* operation, WriteWaits& waits) {
  if (s.writeTimeoutMs <= 0) {
    co_await writable(s, operation);
    co_return;
  }
  auto now = Clock::now();  // fresh: the loop's time may be a turn old
  if (waits.since == Clock::time_point{}) {
    waits.since = now;
    waits.sentBefore = s.bytesSent;
  }
  auto until = deadlineAfter(now, s.writeTimeoutMs);
  if (s.writeMinRate > 0) {
    // Milliseconds earned by the bytes taken, capped far below the clock's range.
    auto earnedMs = std::min<std::uint64_t>(
        (s.bytesSent - waits.sentBefore) * 1000 / s.writeMinRate, std::uint64_t{1} << 40);
    until = std::min(until, deadlineAfter(deadlineAfter(waits.since, s.writeTimeoutMs),
                                          static_cast<std::int64_t>(earnedMs)));
  }
  TimedWritable waiting(s, operation, until);  // a named local (GCC 12)
  co_await waiting;
}

// After a write system call failed: EINTR and a full buffer (recorded) mean try again; any
// other error throws.
void writeFailed(AsyncSocket::State& s, const char* operation) {
  int error = errno;
  if (error == EINTR) return;
  if (!wouldBlock(error)) throw OSError(operation, error);
  s.loop->writeBlocked(s.fd);
}

// sendfile(2) has no MSG_NOSIGNAL: SIGPIPE is blocked in this thread around the call, and one
// that the call raised is taken before unblocking (even a call that sent some bytes may have
// raised it), so that a vanished peer is an error here, never the end of the process.
ssize_t sendfileWithoutSigpipe(int socket, int file, off_t* offset, std::size_t count) {
  sigset_t pipe, previous;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &previous);
  ssize_t n = ::sendfile(socket, file, offset, count);
  int error = errno;
  if (!sigismember(&previous, SIGPIPE)) {
    timespec now{};
    while (sigtimedwait(&pipe, nullptr, &now) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  }
  errno = error;
  return n;
}

// The socket's single writer turn, held for the life of a write, then passed on.
struct HeldTurn {
  AsyncSocket::State& socket;
  explicit HeldTurn(AsyncSocket::State& s) noexcept : socket(s) {}
  HeldTurn(const HeldTurn&) = delete;
  HeldTurn& operator=(const HeldTurn&) = delete;
  ~HeldTurn() {
    socket.writing.clear();
    socket.passWriterTurn();
  }
};

}  // namespace

// The receive system call, retried on EINTR. 0 at end of stream.
std::ptrdiff_t tryReceive(AsyncSocket::State& s, std::span<char> buffer, const char* operation) {
  if (s.fd < 0) throw SocketClosedError(operation);
  if (!s.loop->mayRead(s.fd)) return -1;
  for (;;) {
    ssize_t n = ::recv(s.fd, buffer.data(), buffer.size(), 0);
    if (n > 0) {
      // A short read emptied the socket: the next read waits for the event, not for EAGAIN.
      if (s.stream && static_cast<std::size_t>(n) < buffer.size()) s.loop->readDrained(s.fd);
      return n;
    }
    if (n == 0) return 0;  // end of stream, which stays readable: never marked drained
    int error = errno;
    if (error == EINTR) continue;
    if (!wouldBlock(error)) throw OSError(operation, error);
    s.loop->readDrained(s.fd);
    return -1;
  }
}

Future<std::size_t> receiveRaw(std::shared_ptr<AsyncSocket::State> s, std::span<char> buffer,
                               const char* operation) {
  for (;;) {
    std::ptrdiff_t n = tryReceive(*s, buffer, operation);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    co_await detail::readable(*s, operation);
  }
}

Future<void> sendAll(std::shared_ptr<AsyncSocket::State> s, std::span<const std::string_view> given,
                     bool copyIfBlocked, const char* operation) {
  // parts[0] is the corked output; the caller's parts follow. Copied into the frame before any
  // suspension: the caller's array may be a temporary.
  if (given.size() > kMaxWriteParts) throw ValueError("sendAll: too many parts");
  std::string_view parts[kMaxWriteParts + 1];
  std::size_t count = 1;
  for (std::string_view part : given) {
    if (!part.empty()) parts[count++] = part;
  }
  std::string owned;  // the caller's bytes, once they must outlive the call
  auto own = [&] {
    if (!copyIfBlocked || !owned.empty()) return;
    std::size_t total = 0;
    for (std::size_t i = 1; i < count; ++i) total += parts[i].size();
    owned.reserve(total);
    for (std::size_t i = 1; i < count; ++i) {
      std::size_t at = owned.size();
      owned.append(parts[i]);
      parts[i] = std::string_view(owned).substr(at);
    }
  };
  if (s->sendInFlight) own();
  co_await WriterTurn{*s, {}, nullptr};  // FIFO behind a send in flight: bytes leave in call order
  HeldTurn turn{*s};
  // Whatever the socket holds corked goes first, in the same system call.
  s->writing.swap(s->pendingOutput);
  parts[0] = s->writing;
  std::size_t first = parts[0].empty() ? 1 : 0;  // the first part with bytes left
  WriteWaits waits;
  while (first < count) {
    if (s->fd < 0) throw SocketClosedError(operation);
    if (!s->loop->mayWrite(s->fd)) {
      own();
      co_await awaitWritable(*s, operation, waits);
      continue;
    }
    // MSG_NOSIGNAL: a vanished peer is an EPIPE error here, never a SIGPIPE for the process.
    ssize_t n;
    if (first + 1 == count) {
      // One buffer (every corked batch): send, cheaper in the kernel than sendmsg's message
      // and vector import.
      n = ::send(s->fd, parts[first].data(), parts[first].size(), MSG_NOSIGNAL);
    } else {
      iovec vector[kMaxWriteParts + 1];
      std::size_t used = 0;
      for (std::size_t i = first; i < count; ++i) {
        vector[used++] = {const_cast<char*>(parts[i].data()), parts[i].size()};
      }
      msghdr message{};
      message.msg_iov = vector;
      message.msg_iovlen = used;
      n = ::sendmsg(s->fd, &message, MSG_NOSIGNAL);
    }
    if (n < 0) {
      writeFailed(*s, operation);
      continue;
    }
    auto sent = static_cast<std::size_t>(n);
    s->bytesSent += sent;
    ++s->sendCalls;
    while (first < count && sent >= parts[first].size()) sent -= parts[first++].size();
    if (first < count) {
      parts[first].remove_prefix(sent);
      s->loop->writeBlocked(s->fd);  // a short write: the buffer is full
    }
  }
}

Future<std::size_t> sendFileSome(std::shared_ptr<AsyncSocket::State> s, int fd,
                                 std::uint64_t offset, std::size_t count, const char* operation) {
  if (!s->pendingOutput.empty()) co_await sendAll(s, {}, false, operation);
  co_await WriterTurn{*s, {}, nullptr};
  HeldTurn turn{*s};
  WriteWaits waits;
  for (;;) {
    if (s->fd < 0) throw SocketClosedError(operation);
    if (!s->loop->mayWrite(s->fd)) {
      co_await awaitWritable(*s, operation, waits);
      continue;
    }
    auto position = static_cast<off_t>(offset);
    ssize_t n = sendfileWithoutSigpipe(s->fd, fd, &position, count);
    if (n < 0) {
      writeFailed(*s, operation);
      continue;
    }
    // A short count may mean the file's end as well as a full socket: the next call tells.
    s->bytesSent += static_cast<std::size_t>(n);
    ++s->sendCalls;
    co_return static_cast<std::size_t>(n);
  }
}

// --- TcpTransport -------------------------------------------------------------------------------

TcpTransport::TcpTransport(std::shared_ptr<AsyncSocket::State> state) noexcept
    : Transport(*state->loop), state_(std::move(state)) {
  corked_ = &state_->pendingOutput;
}

std::ptrdiff_t TcpTransport::tryRead(std::span<char> buffer) {
  return tryReceive(*state_, buffer, "recv");
}

bool TcpTransport::mayRead() const noexcept {
  return state_->fd >= 0 && loop_->mayRead(state_->fd);
}

void TcpTransport::waitReadable(IoWait& wait) noexcept {
  loop_->waitReadable(state_->fd, wait);
}

void TcpTransport::cancelRead() noexcept {
  if (state_->fd >= 0) loop_->cancelRead(state_->fd);
}

Future<void> TcpTransport::write(std::span<const std::string_view> parts, bool copyIfBlocked) {
  return sendAll(state_, parts, copyIfBlocked, "send");
}

Future<std::size_t> TcpTransport::sendFile(int fd, std::uint64_t offset, std::size_t count) {
  return sendFileSome(state_, fd, offset, count, "sendfile");
}

void TcpTransport::shutdownWrite() noexcept {
  if (state_->fd >= 0) ::shutdown(state_->fd, SHUT_WR);
}

void TcpTransport::abort() noexcept {
  if (state_->fd >= 0) {
    linger reset{1, 0};  // close sends a reset: the peer cannot take a cut response for whole
    ::setsockopt(state_->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  }
  state_->close();
}

void TcpTransport::checkOneReader() const {
  if (state_->fd >= 0 && loop_->readerPending(state_->fd)) {
    throw ValueError("recv: another read on this socket is pending (one reader at a time)");
  }
}

int TcpTransport::detachForParking(int& domain) noexcept {
  domain = state_->domain;
  return SocketAccess::detachDescriptor(*state_);
}

}  // namespace asynchttp::detail
