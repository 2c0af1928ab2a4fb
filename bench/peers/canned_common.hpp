// Shared by the two "ceiling" peers (canned_epoll.cpp, canned_uring.cpp): servers that parse
// nothing and answer every request, recognised only by its blank line, with a canned reply.
// They measure what the kernel costs per request under each I/O interface, not a real server.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace canned {

constexpr std::string_view kReply = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nHello World";
constexpr int kMaxBatch = 64;  // replies per write; a batch of pipelined requests is 16

// kMaxBatch copies of the reply back to back: n replies are its first n * kReply.size() bytes.
inline const std::string& replies() {
  static const std::string all = [] {
    std::string s;
    for (int i = 0; i < kMaxBatch; ++i) s += kReply;
    return s;
  }();
  return all;
}

// Counts request ends ("\r\n\r\n") in a byte stream delivered in pieces; `matched` carries
// how much of the terminator the previous piece ended with.
inline int countRequests(const char* data, std::size_t size, int& matched) {
  static constexpr char kEnd[] = "\r\n\r\n";
  int requests = 0;
  for (std::size_t i = 0; i < size; ++i) {
    char c = data[i];
    if (c == kEnd[matched]) {
      if (++matched == 4) {
        ++requests;
        matched = 0;
      }
    } else {
      matched = c == '\r' ? 1 : 0;
    }
  }
  return requests;
}

// A listening socket on 127.0.0.1:port (0: any free port), announced on stdout as bench/run
// expects ("listening on port N").
inline int listenOn(int port, bool nonBlocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | (nonBlocking ? SOCK_NONBLOCK : 0), 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0 ||
      ::listen(fd, 4096) < 0) {
    std::perror("bind/listen");
    std::exit(1);
  }
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("listening on port %d\n", ntohs(address.sin_port));
  std::fflush(stdout);
  return fd;
}

inline void noDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace canned
