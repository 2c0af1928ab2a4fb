#include "transport.hpp"

#include <asynchttp/asyncdispatch.hpp>

namespace asynchttp::detail {

Future<std::size_t> readSome(Transport& transport, std::span<char> buffer) {
  for (;;) {
    std::ptrdiff_t n = transport.tryRead(buffer);
    if (n >= 0) co_return static_cast<std::size_t>(n);
    if (!co_await TransportReadable{transport}) throw SocketClosedError("recv");
  }
}

}  // namespace asynchttp::detail
