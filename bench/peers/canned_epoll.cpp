// The ceiling of an epoll HTTP server (issue 5's first row): one thread, edge-triggered
// epoll, one read and one write per batch of requests, nothing parsed (see canned_common.hpp).
// Build: g++ -O2 -std=c++20 canned_epoll.cpp    Run: canned_epoll [PORT]
#include "canned_common.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <vector>

int main(int argc, char** argv) {
  int listener = canned::listenOn(argc > 1 ? std::atoi(argv[1]) : 0, true);
  int epoll = ::epoll_create1(0);
  epoll_event event{EPOLLIN | EPOLLET, {.fd = listener}};
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
  std::vector<int> matched(1024);  // per descriptor: the terminator bytes seen so far
  const std::string& replies = canned::replies();
  char buffer[16384];
  epoll_event events[512];
  for (;;) {
    int count = ::epoll_wait(epoll, events, 512, -1);
    for (int i = 0; i < count; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int client;
        while ((client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
          canned::noDelay(client);
          if (static_cast<std::size_t>(client) >= matched.size()) matched.resize(client * 2);
          matched[client] = 0;
          epoll_event in{EPOLLIN | EPOLLRDHUP | EPOLLET, {.fd = client}};
          ::epoll_ctl(epoll, EPOLL_CTL_ADD, client, &in);
        }
        continue;
      }
      // Read until a short read (the socket is then drained: edge-triggered needs no more).
      for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) {
          if (n == 0 || errno != EAGAIN) ::close(fd);  // closing also leaves the epoll set
          break;
        }
        int requests = canned::countRequests(buffer, static_cast<std::size_t>(n), matched[fd]);
        while (requests > 0) {
          int batch = requests < canned::kMaxBatch ? requests : canned::kMaxBatch;
          [[maybe_unused]] ssize_t w = ::write(fd, replies.data(), batch * canned::kReply.size());
          requests -= batch;
        }
        if (static_cast<std::size_t>(n) < sizeof buffer) break;
      }
    }
  }
}
