// echo_load: a neutral closed-loop load generator for TCP echo servers (plain C++, raw epoll;
// neither the asynchttp runtime nor Asio). Used by bench/run_echo.
//
// N connections to 127.0.0.1:PORT; each sends a fixed message and waits for the whole echo
// before sending the next (one outstanding message per connection). After a warm-up it
// measures for D seconds, then prints round trips/s and p50/p99 latency in microseconds.
// Every loop is bounded in count and in time; the program exits by itself (stalls abort).
//
// Usage: echo_load -p PORT [-c CONNECTIONS=64] [-m MESSAGE_BYTES=64] [-d SECONDS=10] [-w WARMUP=1]
// Build: g++ -O2 -std=c++20 echo_load.cpp -o echo_load
//
// Output: one human line and one machine line:
//   RESULT rtps=<round trips/s> p50_us=<> p99_us=<> round_trips=<in window> seconds=<window>
//          total_round_trips=<including warm-up> total_s=<wall, warm-up included>
//          load_cpu_s=<this process's user+system CPU over total_s>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr int kMaxConnections = 10000;
constexpr std::size_t kMaxMessage = 1 << 20;
constexpr double kMaxSeconds = 3600;
constexpr double kStallSeconds = 5;           // no round trip at all for this long: abort
constexpr std::size_t kMaxSamples = 200'000'000;  // latency samples kept (bounded memory)

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "echo_load: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}
[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "echo_load: %s\n", message.c_str());
  std::exit(1);
}

double cpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Connection {
  int fd = -1;
  std::size_t sent = 0;      // bytes of the current message written
  std::size_t received = 0;  // bytes of the current echo read
  std::int64_t startNs = 0;  // when the current message was first written
  bool wantWrite = false;    // EPOLLOUT registered (partial write pending)
};

struct Options {
  int port = -1;
  int connections = 64;
  std::size_t messageBytes = 64;
  double seconds = 10;
  double warmup = 1;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) fail("missing value after " + flag);
    const char* value = argv[++i];
    if (flag == "-p") o.port = std::atoi(value);
    else if (flag == "-c") o.connections = std::atoi(value);
    else if (flag == "-m") o.messageBytes = std::strtoull(value, nullptr, 10);
    else if (flag == "-d") o.seconds = std::atof(value);
    else if (flag == "-w") o.warmup = std::atof(value);
    else fail("unknown option " + flag +
              " (usage: echo_load -p PORT [-c CONN] [-m BYTES] [-d SECONDS] [-w WARMUP])");
  }
  if (o.port <= 0 || o.port > 65535) fail("need -p PORT (1..65535)");
  if (o.connections < 1 || o.connections > kMaxConnections) fail("-c out of range");
  if (o.messageBytes < 1 || o.messageBytes > kMaxMessage) fail("-m out of range");
  if (!(o.seconds > 0 && o.seconds <= kMaxSeconds)) fail("-d out of range");
  if (!(o.warmup >= 0 && o.warmup <= kMaxSeconds)) fail("-w out of range");
  return o;
}

// Blocking-with-timeout connect to 127.0.0.1:port; returns a non-blocking socket.
int connectLocal(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    if (errno != EINPROGRESS) die("connect");
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, 5000);
    if (r <= 0) fail("connect to 127.0.0.1:" + std::to_string(port) + " timed out");
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) {
      errno = error;
      die("connect");
    }
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

void setEvents(int epfd, Connection& c, int index, bool wantWrite) {
  epoll_event ev{};
  ev.events = EPOLLIN | (wantWrite ? std::uint32_t(EPOLLOUT) : 0u);
  ev.data.u32 = static_cast<std::uint32_t>(index);
  if (::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) < 0) die("epoll_ctl MOD");
  c.wantWrite = wantWrite;
}

// Writes what remains of the current message; registers EPOLLOUT on a partial write.
void pushMessage(int epfd, Connection& c, int index, const std::vector<char>& message) {
  // At most a few iterations: each either advances or returns on EAGAIN.
  for (int attempt = 0; attempt < 64 && c.sent < message.size(); ++attempt) {
    ssize_t n = ::send(c.fd, message.data() + c.sent, message.size() - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += std::size_t(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      die("send");
    }
  }
  bool need = c.sent < message.size();
  if (need != c.wantWrite) setEvents(epfd, c, index, need);
}

void startMessage(int epfd, Connection& c, int index, const std::vector<char>& message, std::int64_t now) {
  c.sent = 0;
  c.received = 0;
  c.startNs = now;
  pushMessage(epfd, c, index, message);
}

double percentileUs(std::vector<std::uint32_t>& samplesNs, double q) {
  if (samplesNs.empty()) return 0;
  std::size_t k = std::min(samplesNs.size() - 1, std::size_t(q * double(samplesNs.size() - 1) + 0.5));
  std::nth_element(samplesNs.begin(), samplesNs.begin() + std::ptrdiff_t(k), samplesNs.end());
  return samplesNs[k] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);

  std::vector<char> message(opt.messageBytes);
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = char('a' + i % 26);
  std::vector<char> readBuffer(std::max<std::size_t>(opt.messageBytes, 64 * 1024));

  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");

  std::vector<Connection> conns(std::size_t(opt.connections));
  for (int i = 0; i < opt.connections; ++i) {
    conns[i].fd = connectLocal(opt.port);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl ADD");
  }

  const double cpu0 = cpuSeconds();
  const std::int64_t t0 = nowNs();
  const std::int64_t windowStart = t0 + std::int64_t(opt.warmup * 1e9);
  const std::int64_t windowEnd = windowStart + std::int64_t(opt.seconds * 1e9);
  // Hard deadline for the whole run, whatever happens.
  const std::int64_t hardDeadline = windowEnd + std::int64_t(kStallSeconds * 1e9);

  std::vector<std::uint32_t> samplesNs;
  samplesNs.reserve(std::min<std::size_t>(kMaxSamples, 4'000'000));
  std::uint64_t windowRoundTrips = 0;
  std::uint64_t totalRoundTrips = 0;
  std::int64_t lastProgress = t0;

  for (int i = 0; i < opt.connections; ++i) startMessage(epfd, conns[i], i, message, nowNs());

  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  // Bounded by time (windowEnd / hardDeadline / stall check) and by an iteration cap.
  const std::uint64_t maxIterations = std::uint64_t(4e9);
  std::int64_t now = nowNs();
  for (std::uint64_t iteration = 0; iteration < maxIterations && now < windowEnd; ++iteration) {
    int count = ::epoll_wait(epfd, events, kMaxEvents, 100);
    if (count < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    now = nowNs();
    for (int e = 0; e < count; ++e) {
      int index = int(events[e].data.u32);
      Connection& c = conns[std::size_t(index)];
      if (events[e].events & EPOLLOUT) pushMessage(epfd, c, index, message);
      if (!(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      // One read per event (level-triggered: more data re-reports).
      std::size_t want = message.size() - c.received;
      ssize_t n = ::recv(c.fd, readBuffer.data(), std::min(want, readBuffer.size()), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        die("recv");
      }
      if (n == 0) fail("server closed connection " + std::to_string(index));
      if (std::memcmp(readBuffer.data(), message.data() + c.received, std::size_t(n)) != 0)
        fail("echo mismatch on connection " + std::to_string(index));
      c.received += std::size_t(n);
      if (c.received < message.size()) continue;
      if (c.sent < message.size()) fail("echo ahead of send on connection " + std::to_string(index));
      ++totalRoundTrips;
      lastProgress = now;
      if (now >= windowStart && now < windowEnd) {
        ++windowRoundTrips;
        if (samplesNs.size() < kMaxSamples) {
          std::int64_t latency = now - c.startNs;
          samplesNs.push_back(std::uint32_t(std::min<std::int64_t>(latency, UINT32_MAX)));
        }
      }
      startMessage(epfd, c, index, message, now);
    }
    if (now - lastProgress > std::int64_t(kStallSeconds * 1e9)) fail("stalled: no echo for 5 s");
    if (now > hardDeadline) fail("hard deadline passed");
  }

  const double loadCpu = cpuSeconds() - cpu0;
  const double totalSeconds = double(now - t0) / 1e9;
  double seconds = double(std::min(now, windowEnd) - windowStart) / 1e9;
  if (seconds <= 0) fail("measurement window did not run");
  double rtps = double(windowRoundTrips) / seconds;
  double p50 = percentileUs(samplesNs, 0.50);
  double p99 = percentileUs(samplesNs, 0.99);

  for (auto& c : conns) ::close(c.fd);
  ::close(epfd);

  std::printf("echo_load: %d connections, %zu B messages, %.3f s: %.0f round trips/s, p50 %.1f us, p99 %.1f us\n",
              opt.connections, opt.messageBytes, seconds, rtps, p50, p99);
  std::printf("RESULT rtps=%.0f p50_us=%.1f p99_us=%.1f round_trips=%llu seconds=%.3f total_round_trips=%llu"
              " total_s=%.3f load_cpu_s=%.2f\n",
              rtps, p50, p99, (unsigned long long)windowRoundTrips, seconds,
              (unsigned long long)totalRoundTrips, totalSeconds, loadCpu);
  return 0;
}
