// Idle keep-alive connections for bench/run's memory figure, and a free-port helper.
//
//   idle_conns PORT N HOLD_S [TIMEOUT_S]
//     Opens N connections to 127.0.0.1:PORT (at most 256 connecting at once). On each it sends
//     one "GET / HTTP/1.1" request, reads the whole response (head + Content-Length body), and
//     then leaves the connection open and idle. When every connection is done (or failed), or
//     TIMEOUT_S (default 60) has passed, it prints
//       READY ok=<idle connections> failed=<n> seconds=<time to open them all>
//     then holds the connections HOLD_S seconds, watching for the server closing any, prints
//       DONE open=<still open> closed_by_server=<n>
//     and exits (closing them all). Everything is bounded in time; only 127.0.0.1 is used.
//
//   idle_conns --free-port
//     Prints a TCP port that is free on 127.0.0.1 (bound, read back, closed).
//
// Build: g++ -O2 -std=c++20 idle_conns.cpp -o idle_conns
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class State { Connecting, Reading, Idle, Dead };

struct Conn {
  int fd = -1;
  State state = State::Dead;
  std::string in;
};

const char kRequest[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// True once `in` holds a whole response: a head, then Content-Length bytes of body
// (no Content-Length: the head alone, which is all a "Hello World" server without one sends
// in the same segment anyway).
bool responseComplete(const std::string& in) {
  std::size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = in.substr(0, end);
  std::transform(head.begin(), head.end(), head.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  std::size_t pos = head.find("\r\ncontent-length:");
  if (pos == std::string::npos) return true;
  std::size_t length = std::strtoull(head.c_str() + pos + 17, nullptr, 10);
  return in.size() >= end + 4 + length;
}

int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("free port");
    return 1;
  }
  std::printf("%u\n", unsigned(ntohs(addr.sin_port)));
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--free-port") == 0) return freePort();
  if (argc < 4) {
    std::fprintf(stderr, "usage: idle_conns PORT N HOLD_S [TIMEOUT_S] | idle_conns --free-port\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int total = std::atoi(argv[2]);
  const double hold = std::atof(argv[3]);
  const double timeout = argc > 4 ? std::atof(argv[4]) : 60.0;
  const int maxConnecting = 256;

  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rlim_t(total) + 16 > rl.rlim_cur) {
    std::fprintf(stderr, "idle_conns: RLIMIT_NOFILE %llu is too low for %d connections\n",
                 (unsigned long long)rl.rlim_cur, total);
    return 2;
  }

  int ep = epoll_create1(0);
  std::vector<Conn> conns(total);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<unsigned short>(port));

  int started = 0, inFlight = 0, ok = 0, failed = 0;
  auto fail = [&](int i) {
    Conn& c = conns[i];
    if (c.state == State::Connecting || c.state == State::Reading) --inFlight;
    if (c.fd >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
    }
    c.fd = -1;
    c.state = State::Dead;
    ++failed;
  };
  auto sendRequest = [&](int i) {
    Conn& c = conns[i];
    ssize_t n = send(c.fd, kRequest, sizeof kRequest - 1, MSG_NOSIGNAL);
    if (n != ssize_t(sizeof kRequest - 1)) return fail(i);
    c.state = State::Reading;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u32 = uint32_t(i);
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  };

  const auto t0 = Clock::now();
  std::vector<epoll_event> events(1024);
  char buf[16384];
  while (ok + failed < total && secondsSince(t0) < timeout) {
    while (started < total && inFlight < maxConnecting) {
      int i = started++;
      Conn& c = conns[i];
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c.fd < 0) {
        c.state = State::Dead;
        ++failed;
        continue;
      }
      int one = 1;
      setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      c.state = State::Connecting;
      ++inFlight;
      int r = connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u32 = uint32_t(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      if (r == 0) {
        sendRequest(i);
      } else if (errno != EINPROGRESS) {
        fail(i);
      }
    }
    int n = epoll_wait(ep, events.data(), int(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      int i = int(events[k].data.u32);
      Conn& c = conns[i];
      if (c.state == State::Connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          fail(i);
          continue;
        }
        sendRequest(i);
      } else if (c.state == State::Reading) {
        ssize_t r = recv(c.fd, buf, sizeof buf, 0);
        if (r <= 0) {
          if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          fail(i);
          continue;
        }
        c.in.append(buf, std::size_t(r));
        if (responseComplete(c.in)) {
          bool good = c.in.compare(0, 12, "HTTP/1.1 200") == 0;
          if (!good) {
            fail(i);
            continue;
          }
          c.in.clear();
          c.in.shrink_to_fit();
          c.state = State::Idle;
          --inFlight;
          ++ok;
          // Stay registered for input only: a readable idle socket means the server closed it.
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.u32 = uint32_t(i);
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      } else if (c.state == State::Idle) {
        // The server closed (or wrote to) an idle connection while others were still opening.
        --ok;
        ++inFlight;  // fail() decrements only for in-flight states; keep the books balanced
        c.state = State::Reading;
        fail(i);
      }
    }
  }
  // Whatever has not finished by the deadline counts as failed.
  for (int i = 0; i < total; ++i) {
    if (conns[i].state == State::Connecting || conns[i].state == State::Reading) fail(i);
  }
  failed += total - started;
  std::printf("READY ok=%d failed=%d seconds=%.2f\n", ok, failed, secondsSince(t0));
  std::fflush(stdout);

  int closedByServer = 0;
  const auto t1 = Clock::now();
  while (secondsSince(t1) < hold) {
    int n = epoll_wait(ep, events.data(), int(events.size()), 100);
    for (int k = 0; k < n; ++k) {
      int i = int(events[k].data.u32);
      Conn& c = conns[i];
      if (c.state != State::Idle) continue;
      epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
      c.state = State::Dead;
      ++closedByServer;
    }
  }
  std::printf("DONE open=%d closed_by_server=%d\n", ok - closedByServer, closedByServer);
  std::fflush(stdout);
  for (Conn& c : conns) {
    if (c.fd >= 0) close(c.fd);
  }
  return 0;
}
