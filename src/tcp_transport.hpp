// The TCP transport: a non-blocking socket registered with the loop. AsyncSocket's operations
// and the HTTP connection's both come down to the system calls here.
#pragma once

#include "asyncnet_internal.hpp"
#include "transport.hpp"

#include <memory>

namespace asynchttp::detail {

/// A Transport over a stream socket's shared state (the same one AsyncSocket handles hold).
class TcpTransport final : public Transport {
 public:
  /// Serves the socket behind `state`, sharing it with any AsyncSocket handle to it.
  explicit TcpTransport(std::shared_ptr<AsyncSocket::State> state) noexcept;

  std::ptrdiff_t tryRead(std::span<char> buffer) override;
  bool mayRead() const noexcept override;
  void waitReadable(IoWait& wait) noexcept override;
  void cancelRead() noexcept override;
  Future<void> write(std::span<const std::string_view> parts, bool copyIfBlocked) override;
  Future<std::size_t> sendFile(int fd, std::uint64_t offset, std::size_t count) override;
  std::uint64_t bytesWritten() const noexcept override { return state_->bytesSent; }
  bool writing() const noexcept override { return state_->sendInFlight; }
  void shutdownWrite() noexcept override;
  bool isOpen() const noexcept override { return state_->fd >= 0; }
  void close() noexcept override { state_->close(); }
  void abort() noexcept override;
  void checkOneReader() const override;
  bool parkable() const noexcept override { return state_->fd >= 0 && state_->buffered() == 0; }
  int detachForParking(int& domain) noexcept override;

 private:
  std::shared_ptr<AsyncSocket::State> state_;
};

}  // namespace asynchttp::detail
