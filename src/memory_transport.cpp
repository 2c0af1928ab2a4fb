#include "memory_transport.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace asynchttp::detail {

void MemoryPipe::wakeReader() {
  if (IoWait* wait = std::exchange(reader, nullptr)) loop->resumeSoon(wait->waiter);
}

void MemoryPipe::send(std::string_view bytes) {
  toServer.append(bytes);
  wakeReader();
}

void MemoryPipe::endInput() {
  inputEnded = true;
  wakeReader();
}

std::string MemoryPipe::take() {
  return std::exchange(fromServer, {});
}

MemoryTransport::MemoryTransport(std::shared_ptr<MemoryPipe> pipe) noexcept
    : Transport(*pipe->loop), pipe_(std::move(pipe)) {
  corked_ = &corkedBytes_;
}

std::ptrdiff_t MemoryTransport::tryRead(std::span<char> buffer) {
  if (pipe_->serverClosed) throw SocketClosedError("recv");
  MemoryPipe& p = *pipe_;
  std::size_t available = p.toServer.size() - p.readOffset;
  if (available == 0) return p.inputEnded ? 0 : -1;
  std::size_t n = std::min({available, buffer.size(), p.maxRead});
  std::memcpy(buffer.data(), p.toServer.data() + p.readOffset, n);
  p.readOffset += n;
  if (p.readOffset == p.toServer.size()) {
    p.toServer.clear();
    p.readOffset = 0;
  }
  return static_cast<std::ptrdiff_t>(n);
}

bool MemoryTransport::mayRead() const noexcept {
  return pipe_->inputEnded || pipe_->toServer.size() > pipe_->readOffset;
}

void MemoryTransport::waitReadable(IoWait& wait) noexcept {
  wait.cancelled = false;
  if (mayRead()) {
    loop_->resumeSoon(wait.waiter);  // bytes are there already: never a lost wake-up
    return;
  }
  pipe_->reader = &wait;
}

void MemoryTransport::cancelRead() noexcept {
  if (IoWait* wait = std::exchange(pipe_->reader, nullptr)) {
    wait->cancelled = true;
    loop_->resumeSoon(wait->waiter);
  }
}

Future<void> MemoryTransport::write(std::span<const std::string_view> parts, bool) {
  if (pipe_->serverClosed) throw SocketClosedError("send");
  if (pipe_->serverShutWrite) throw OSError("send", EPIPE);
  written_ += corkedBytes_.size();
  pipe_->fromServer += corkedBytes_;
  corkedBytes_.clear();
  for (std::string_view part : parts) {
    written_ += part.size();
    pipe_->fromServer += part;
  }
  return {};
}

Future<std::size_t> MemoryTransport::sendFile(int fd, std::uint64_t offset, std::size_t count) {
  co_await write({}, false);
  std::string piece(std::min<std::size_t>(count, 1 << 20), '\0');
  ssize_t n = ::pread(fd, piece.data(), piece.size(), static_cast<off_t>(offset));
  if (n < 0) throw OSError("pread", errno);
  written_ += static_cast<std::size_t>(n);
  pipe_->fromServer.append(piece.data(), static_cast<std::size_t>(n));
  co_return static_cast<std::size_t>(n);
}

void MemoryTransport::close() noexcept {
  if (pipe_->serverClosed) return;
  pipe_->serverClosed = true;
  cancelRead();
}

void MemoryTransport::abort() noexcept {
  pipe_->serverAborted = true;
  close();
}

}  // namespace asynchttp::detail
