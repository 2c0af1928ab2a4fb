#include <asynchttp/asyncnet.hpp>

#include "asyncnet_internal.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <ostream>
#include <thread>
#include <vector>

namespace asynchttp {

std::string to_string(Port port) {
  return std::to_string(static_cast<unsigned>(port));
}

std::ostream& operator<<(std::ostream& os, Port port) {
  return os << static_cast<unsigned>(port);
}

namespace {

bool wouldBlock(int error) {
  return error == EAGAIN || error == EWOULDBLOCK;
}

std::pair<std::string, Port> addressText(const sockaddr_storage& address, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (address.ss_family) {
    case AF_INET: {
      const auto& in = reinterpret_cast<const sockaddr_in&>(address);
      ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
      return {text, Port(ntohs(in.sin_port))};
    }
    case AF_INET6: {
      const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
      ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
      return {text, Port(ntohs(in6.sin6_port))};
    }
    case AF_UNIX: {
      const auto& un = reinterpret_cast<const sockaddr_un&>(address);
      std::size_t pathLength =
          length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
      std::string path(un.sun_path, ::strnlen(un.sun_path, pathLength));
      return {path, Port(0)};
    }
    default:
      return {"", Port(0)};
  }
}

// A numeric address of `domain` (no resolution), or nullopt when `host` is a name.
std::optional<std::pair<sockaddr_storage, socklen_t>> numericAddress(int domain,
                                                                     const std::string& host,
                                                                     Port port) {
  sockaddr_storage storage{};
  if (domain == AF_INET) {
    auto& in = reinterpret_cast<sockaddr_in&>(storage);
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<std::uint16_t>(port));
    if (host.empty()) {
      in.sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (::inet_pton(AF_INET, host.c_str(), &in.sin_addr) != 1) {
      return std::nullopt;
    }
    return std::pair{storage, socklen_t(sizeof(sockaddr_in))};
  }
  if (domain == AF_INET6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(storage);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(static_cast<std::uint16_t>(port));
    std::string bare = host.size() > 1 && host.front() == '[' && host.back() == ']'
                           ? host.substr(1, host.size() - 2)
                           : host;
    if (bare.empty()) {
      in6.sin6_addr = in6addr_any;
    } else if (::inet_pton(AF_INET6, bare.c_str(), &in6.sin6_addr) != 1) {
      return std::nullopt;
    }
    return std::pair{storage, socklen_t(sizeof(sockaddr_in6))};
  }
  return std::nullopt;
}

struct Resolved {
  std::vector<std::pair<sockaddr_storage, socklen_t>> addresses;
  int error = 0;  // a getaddrinfo error code
};

Resolved resolveBlocking(int domain, const std::string& host, Port port) {
  addrinfo hints{};
  hints.ai_family = domain;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  Resolved result;
  std::string service = to_string(port);
  result.error = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    sockaddr_storage storage{};
    std::memcpy(&storage, ai->ai_addr, ai->ai_addrlen);
    result.addresses.emplace_back(storage, ai->ai_addrlen);
  }
  if (list) ::freeaddrinfo(list);
  return result;
}

// Resolves a host name on a helper thread and resumes the awaiting coroutine on its own loop.
struct ResolveAwaiter {
  int domain;
  std::string host;
  Port port;
  std::shared_ptr<Resolved> result = std::make_shared<Resolved>();

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    Dispatcher& loop = getGlobalDispatcher();
    Dispatcher::Remote remote = loop.remote();  // safe even if this thread's loop is gone
    // Counted as an external wait, so the loop keeps polling until the thread posts back.
    std::thread([remote, h, result = result, domain = domain, host = host, port = port] {
      *result = resolveBlocking(domain, host, port);
      remote.post([h] { h.resume(); });
    }).detach();
    loop.beginExternalWait();
  }
  Resolved await_resume() {
    getGlobalDispatcher().endExternalWait();
    return std::move(*result);
  }
};

void checkedSetOption(int fd, int level, int name, int value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof value) < 0) throw OSError(what, errno);
}

std::pair<int, int> optionName(SOBool option) {
  switch (option) {
    case OptAcceptConn:
      return {SOL_SOCKET, SO_ACCEPTCONN};
    case OptBroadcast:
      return {SOL_SOCKET, SO_BROADCAST};
    case OptDebug:
      return {SOL_SOCKET, SO_DEBUG};
    case OptDontRoute:
      return {SOL_SOCKET, SO_DONTROUTE};
    case OptKeepAlive:
      return {SOL_SOCKET, SO_KEEPALIVE};
    case OptOOBInline:
      return {SOL_SOCKET, SO_OOBINLINE};
    case OptReuseAddr:
      return {SOL_SOCKET, SO_REUSEADDR};
    case OptReusePort:
      return {SOL_SOCKET, SO_REUSEPORT};
    case OptNoDelay:
      return {IPPROTO_TCP, TCP_NODELAY};
  }
  throw ValueError("unknown socket option");
}

// Takes ownership of a fresh non-blocking descriptor and registers it with `loop`. `stream`:
// whether it is a byte stream, when known (else asked of the kernel).
std::shared_ptr<AsyncSocket::State> adoptDescriptor(int fd, int domain, Dispatcher& loop,
                                                    std::optional<bool> stream = std::nullopt) {
  auto state = std::make_shared<AsyncSocket::State>();
  state->domain = domain;
  state->loop = &loop;
  try {
    loop.registerDescriptor(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  state->fd = fd;
  if (stream) {
    state->stream = *stream;
  } else {
    int type = SOCK_STREAM;
    socklen_t length = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0)
      state->stream = type == SOCK_STREAM;
  }
  return state;
}

}  // namespace

// --- Creation ---------------------------------------------------------------------------------

AsyncSocket newAsyncSocket(int domain, int sockType, int protocol) {
  int fd = ::socket(domain, sockType | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) throw OSError("socket", errno);
  return AsyncSocket(adoptDescriptor(fd, domain, getGlobalDispatcher()));
}

AsyncSocket newAsyncSocket(AsyncFD fd, int domain) {
  int raw = static_cast<int>(fd);
  int flags = ::fcntl(raw, F_GETFL);
  if (flags < 0 || ::fcntl(raw, F_SETFL, flags | O_NONBLOCK) < 0) {
    throw OSError("fcntl(O_NONBLOCK)", errno);
  }
  auto state = adoptDescriptor(raw, domain, getGlobalDispatcher());
  state->adopted = true;
  return AsyncSocket(std::move(state));
}

std::vector<AsyncSocket> listenFds() {
  constexpr int kFirstPassedFd = 3;  // SD_LISTEN_FDS_START
  const char* pid = std::getenv("LISTEN_PID");
  const char* count = std::getenv("LISTEN_FDS");
  std::vector<AsyncSocket> sockets;
  if (pid && count && std::strtol(pid, nullptr, 10) == ::getpid()) {
    long n = std::strtol(count, nullptr, 10);
    for (int fd = kFirstPassedFd; n > 0 && fd < kFirstPassedFd + n; ++fd) {
      int domain = AF_INET;
      socklen_t size = sizeof domain;
      if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0) {
        throw OSError("listenFds: descriptor " + std::to_string(fd), errno);
      }
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      sockets.push_back(newAsyncSocket(AsyncFD(fd), domain));
    }
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return sockets;
}

AsyncSocket::State& AsyncSocket::checkedState(const char* operation) const {
  if (!state_ || state_->fd < 0) throw SocketClosedError(operation);
  return *state_;
}

bool AsyncSocket::isClosed() const noexcept {
  return !state_ || state_->fd < 0;
}

int AsyncSocket::getFd() const noexcept {
  return state_ ? state_->fd : -1;
}

int AsyncSocket::getDomain() const noexcept {
  return state_ ? state_->domain : AF_UNSPEC;
}

void AsyncSocket::close() {
  if (state_) state_->close();
}

// --- Options and addresses ----------------------------------------------------------------------

void AsyncSocket::setSockOpt(SOBool option, bool value) {
  auto [level, name] = optionName(option);
  checkedSetOption(checkedState("setsockopt").fd, level, name, value ? 1 : 0, "setsockopt");
}

bool AsyncSocket::getSockOpt(SOBool option) const {
  auto [level, name] = optionName(option);
  int value = 0;
  socklen_t length = sizeof value;
  if (::getsockopt(checkedState("getsockopt").fd, level, name, &value, &length) < 0) {
    throw OSError("getsockopt", errno);
  }
  return value != 0;
}

std::pair<std::string, Port> AsyncSocket::getLocalAddr() const {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getsockname(checkedState("getsockname").fd, reinterpret_cast<sockaddr*>(&address),
                    &length) < 0) {
    throw OSError("getsockname", errno);
  }
  return addressText(address, length);
}

std::pair<std::string, Port> AsyncSocket::getPeerAddr() const {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(checkedState("getpeername").fd, reinterpret_cast<sockaddr*>(&address),
                    &length) < 0) {
    throw OSError("getpeername", errno);
  }
  return addressText(address, length);
}

// --- Listening side -----------------------------------------------------------------------------

void AsyncSocket::bindAddr(Port port, std::string_view address) {
  State& s = checkedState("bind");
  std::string host(address);
  auto numeric = numericAddress(s.domain, host, port);
  if (!numeric) {
    Resolved resolved = resolveBlocking(s.domain, host, port);
    if (resolved.error != 0 || resolved.addresses.empty()) {
      throw OSError("bind: cannot resolve '" + host + "': " + ::gai_strerror(resolved.error),
                    EINVAL);
    }
    numeric = resolved.addresses.front();
  }
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&numeric->first), numeric->second) < 0) {
    throw OSError("bind to " + (host.empty() ? std::string("*") : host) + ":" + to_string(port),
                  errno);
  }
}

namespace {
std::pair<sockaddr_un, socklen_t> unixAddress(std::string_view path) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof un.sun_path) {
    throw ValueError("Unix socket path must have 1 to " + std::to_string(sizeof un.sun_path - 1) +
                     " bytes");
  }
  std::memcpy(un.sun_path, path.data(), path.size());
  return {un, socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + 1)};
}
}  // namespace

void AsyncSocket::bindUnix(std::string_view path) {
  State& s = checkedState("bind");
  auto [un, length] = unixAddress(path);
  if (::bind(s.fd, reinterpret_cast<const sockaddr*>(&un), length) < 0) {
    throw OSError("bind to " + std::string(path), errno);
  }
}

void AsyncSocket::listen(int backlog) {
  if (::listen(checkedState("listen").fd, backlog) < 0) throw OSError("listen", errno);
}

Future<std::pair<std::string, AsyncSocket>> AsyncSocket::acceptAddr() {
  auto self = state_;  // keeps the socket alive however the caller's handle fares
  if (!self || self->fd < 0) throw SocketClosedError("accept");
  for (;;) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    int fd = ::accept4(self->fd, reinterpret_cast<sockaddr*>(&address), &length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      // Of the listener's type (no getsockopt). Nothing is known readable yet: registering
      // reports bytes already there as an event, so the first read waits for it instead of
      // failing with EAGAIN (one recv less per connection when the request is not in yet).
      AsyncSocket client(adoptDescriptor(fd, self->domain, *self->loop, self->stream));
      self->loop->readDrained(fd);
      co_return std::pair{addressText(address, length).first, std::move(client)};
    }
    int error = errno;
    if (error == EINTR || error == ECONNABORTED) continue;  // the peer gave up: take the next
    if (!wouldBlock(error)) throw OSError("accept", error);
    self->loop->readDrained(self->fd);
    co_await detail::readable(*self, "accept");
  }
}

Future<AsyncSocket> AsyncSocket::accept() {
  auto [address, client] = co_await acceptAddr();
  co_return client;
}

// --- Connecting side ----------------------------------------------------------------------------

namespace {
// Finishes a non-blocking connect; throws OSError with `target` in its message.
Future<void> completeConnect(std::shared_ptr<AsyncSocket::State> s, const sockaddr* address,
                             socklen_t length, std::string target) {
  if (::connect(s->fd, address, length) == 0) co_return;
  int error = errno;
  if (error != EINPROGRESS && error != EINTR) throw OSError("connect to " + target, error);
  for (;;) {
    co_await detail::writable(*s, "connect");
    socklen_t size = sizeof error;
    if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &size) < 0) error = errno;
    if (error != 0) throw OSError("connect to " + target, error);
    // A writable event from before the connect (an unconnected socket reports one) can wake
    // us early: done only once the peer is known.
    sockaddr_storage peer{};
    socklen_t peerLength = sizeof peer;
    if (::getpeername(s->fd, reinterpret_cast<sockaddr*>(&peer), &peerLength) == 0) {
      // Events from before the connect (an unconnected socket reports a hang-up) say nothing
      // about the connection: start its readiness afresh.
      s->loop->resetReadiness(s->fd);
      break;
    }
    if (errno != ENOTCONN) throw OSError("connect to " + target, errno);
  }
}
}  // namespace

Future<void> AsyncSocket::connect(std::string host, Port port) {
  auto self = state_;
  if (!self || self->fd < 0) throw SocketClosedError("connect");
  std::string target = host + ":" + to_string(port);
  std::vector<std::pair<sockaddr_storage, socklen_t>> addresses;
  if (auto numeric = numericAddress(self->domain, host, port); numeric && !host.empty()) {
    addresses.push_back(*numeric);
  } else {
    // A named awaiter: GCC 12 destroys a non-trivial temporary awaiter twice.
    ResolveAwaiter resolving{self->domain, host, port};
    Resolved resolved = co_await resolving;
    if (resolved.error != 0 || resolved.addresses.empty()) {
      throw OSError("connect: cannot resolve '" + host + "': " + ::gai_strerror(resolved.error),
                    EHOSTUNREACH);
    }
    addresses = std::move(resolved.addresses);
  }
  // One socket can try one address: connect() failing leaves it unusable, so take the first.
  // dial() opens a new socket per address instead.
  const auto& [address, length] = addresses.front();
  co_await completeConnect(self, reinterpret_cast<const sockaddr*>(&address), length, target);
}

Future<void> AsyncSocket::connectUnix(std::string path) {
  auto self = state_;
  if (!self || self->fd < 0) throw SocketClosedError("connect");
  auto [un, length] = unixAddress(path);
  co_await completeConnect(self, reinterpret_cast<const sockaddr*>(&un), length, path);
}

Future<AsyncSocket> dial(std::string host, Port port) {
  // Every address the name resolves to (numeric ones need no resolution), in the resolver's
  // order, each with a socket of its own: a failed connect leaves a socket unusable.
  std::vector<std::pair<sockaddr_storage, socklen_t>> addresses;
  for (int domain : {AF_INET, AF_INET6}) {
    if (auto numeric = numericAddress(domain, host, port); numeric && !host.empty()) {
      addresses.push_back(*numeric);
    }
  }
  if (addresses.empty()) {
    ResolveAwaiter resolving{AF_UNSPEC, host, port};  // named: see AsyncSocket::connect
    Resolved resolved = co_await resolving;
    if (resolved.error != 0 || resolved.addresses.empty()) {
      throw OSError("dial: cannot resolve '" + host + "': " + ::gai_strerror(resolved.error),
                    EHOSTUNREACH);
    }
    addresses = std::move(resolved.addresses);
  }
  std::exception_ptr lastError;
  std::string target = host + ":" + to_string(port);
  for (const auto& [address, length] : addresses) {
    auto socket = newAsyncSocket(address.ss_family);
    try {
      co_await completeConnect(detail::SocketAccess::state(socket),
                               reinterpret_cast<const sockaddr*>(&address), length, target);
      co_return socket;
    } catch (const OSError&) {
      lastError = std::current_exception();
    }
  }
  std::rethrow_exception(lastError);
}

// --- Reading ------------------------------------------------------------------------------------

Future<std::size_t> AsyncSocket::recvSome(std::span<char> buffer) {
  auto self = state_;
  if (!self || self->fd < 0) throw SocketClosedError("recv");
  if (buffer.empty()) co_return 0;
  if (self->buffered() > 0) co_return self->takeBuffered(buffer.data(), buffer.size());
  co_return co_await detail::receiveRaw(self, buffer, "recv");
}

Future<std::size_t> AsyncSocket::recvInto(std::span<char> buffer, std::size_t size) {
  auto self = state_;  // the frame keeps the socket, not the caller's handle
  size = std::min(size, buffer.size());
  std::size_t total = 0;
  while (total < size) {
    std::size_t n = co_await AsyncSocket(self).recvSome(buffer.subspan(total, size - total));
    if (n == 0) break;  // end of stream
    total += n;
  }
  co_return total;
}

Future<std::string> AsyncSocket::recv(std::size_t size) {
  std::string data(size, '\0');
  std::size_t n = co_await recvInto(data, size);
  data.resize(n);
  co_return data;
}

Future<std::string> AsyncSocket::recvLine(std::size_t maxLength) {
  auto self = state_;
  if (!self || self->fd < 0) throw SocketClosedError("recvLine");
  constexpr std::size_t kChunk = 4096;
  std::size_t scanned = 0;  // bytes of the buffer already searched for '\n'
  for (;;) {
    std::string_view pending(self->readBuffer.data() + self->readOffset, self->buffered());
    if (auto end = pending.find('\n', scanned); end != std::string_view::npos) {
      std::size_t length = end > 0 && pending[end - 1] == '\r' ? end - 1 : end;
      std::string line(pending.substr(0, length));
      self->readOffset += end + 1;
      if (self->readOffset == self->readBuffer.size()) {
        self->readBuffer.clear();
        self->readOffset = 0;
      }
      co_return line.empty() ? std::string("\r\n") : line;
    }
    scanned = pending.size();
    if (scanned >= maxLength) {
      throw ValueError("recvLine: no line end within " + std::to_string(maxLength) + " bytes");
    }
    // Read more behind what is buffered; compact first so the buffer does not grow forever.
    if (self->readOffset > 0) {
      self->readBuffer.erase(0, self->readOffset);
      self->readOffset = 0;
    }
    std::size_t used = self->readBuffer.size();
    self->readBuffer.resize(used + kChunk);
    std::size_t n = 0;
    try {
      n = co_await detail::receiveRaw(self, std::span(self->readBuffer).subspan(used), "recvLine");
    } catch (...) {
      self->readBuffer.resize(used);
      throw;
    }
    self->readBuffer.resize(used + n);
    if (n == 0) {  // end of stream: Nim returns "" and drops a partial line
      self->readBuffer.clear();
      co_return std::string();
    }
  }
}

// --- Writing ------------------------------------------------------------------------------------

Future<void> AsyncSocket::send(std::string data) {
  co_await send(data.data(), data.size());  // `data` lives in this frame until the send is done
}

Future<void> AsyncSocket::send(const char* data, std::size_t size) {
  auto self = state_;
  if (!self || self->fd < 0) throw SocketClosedError("send");
  co_await detail::sendAll(self, std::string_view(data, size), "send");
}

}  // namespace asynchttp
