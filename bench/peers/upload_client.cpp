// One streamed upload over one connection, for bench/run's upload load.
//
//   upload_client PORT BYTES [TIMEOUT_S]
//     Connects to 127.0.0.1:PORT with a plain blocking socket, sends
//       POST /upload HTTP/1.1, Host, Content-Type: application/octet-stream,
//       Content-Length: BYTES, Connection: close
//     then BYTES of body from one 256 KiB buffer sent again and again, reads the response (head,
//     then Content-Length bytes of body, or up to the server's close), and checks that the body
//     is the decimal byte count (the answer of asynchttp's `examples/upload PORT -` and of
//     bench/peers/node_upload.js). Prints one line
//       UPLOAD_RESULT bytes=<body bytes sent> seconds=<connect to whole response> status=<HTTP
//                     status, 0 if none> answered=<count in the response, -1 if none> ok=<0|1>
//                     error=<- or what went wrong>
//     and exits 0 when the status is 200 and the count matches, 1 otherwise.
//     Everything is bounded by TIMEOUT_S (default 120): every send and recv has SO_SNDTIMEO /
//     SO_RCVTIMEO set to the time left, and the deadline is checked between calls. Only
//     127.0.0.1 is used.
//
// Build: g++ -O2 -std=c++20 upload_client.cpp -o upload_client
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kBuffer = 256 * 1024;

struct Deadline {
  Clock::time_point end;
  double left() const { return std::chrono::duration<double>(end - Clock::now()).count(); }
};

// Sets SO_SNDTIMEO and SO_RCVTIMEO to the time left (at least 1 ms); false once it is past.
bool arm(int fd, const Deadline& deadline) {
  double left = deadline.left();
  if (left <= 0) return false;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(left);
  tv.tv_usec = static_cast<suseconds_t>((left - double(tv.tv_sec)) * 1e6);
  if (tv.tv_sec == 0 && tv.tv_usec < 1000) tv.tv_usec = 1000;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return true;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// Reads the response: head, then Content-Length bytes of body, or up to EOF without one.
// Returns false (with `error` set) on a timeout or a connection error before the head ends.
bool readResponse(int fd, const Deadline& deadline, int& status, std::string& body,
                  std::string& error) {
  std::string in;
  char buf[16384];
  std::size_t headEnd = std::string::npos;
  long long length = -1;
  for (;;) {
    if (headEnd == std::string::npos) {
      headEnd = in.find("\r\n\r\n");
      if (headEnd != std::string::npos) {
        if (in.compare(0, 5, "HTTP/") == 0 && in.size() > 12) status = std::atoi(in.c_str() + 9);
        std::string head = lower(in.substr(0, headEnd));
        std::size_t pos = head.find("\r\ncontent-length:");
        if (pos != std::string::npos) length = std::strtoll(head.c_str() + pos + 17, nullptr, 10);
      }
    }
    if (headEnd != std::string::npos && length >= 0 &&
        in.size() >= headEnd + 4 + std::size_t(length)) {
      body = in.substr(headEnd + 4, std::size_t(length));
      return true;
    }
    if (in.size() > (1u << 20)) {
      error = "response_too_large";
      return false;
    }
    if (!arm(fd, deadline)) {
      error = "timeout_reading_response";
      return false;
    }
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0 && headEnd != std::string::npos && length < 0) {  // close-delimited body
        body = in.substr(headEnd + 4);
        return true;
      }
      error = n == 0 ? "closed_before_response_end"
                     : (errno == EAGAIN || errno == EWOULDBLOCK ? "timeout_reading_response"
                                                                : "recv_failed");
      return false;
    }
    in.append(buf, std::size_t(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: upload_client PORT BYTES [TIMEOUT_S]\n");
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const unsigned long long total = std::strtoull(argv[2], nullptr, 10);
  const double timeout = argc > 3 ? std::atof(argv[3]) : 120.0;
  if (port <= 0 || port > 65535 || timeout <= 0) {
    std::fprintf(stderr, "upload_client: bad PORT or TIMEOUT_S\n");
    return 2;
  }

  std::vector<char> buffer(kBuffer);
  for (std::size_t i = 0; i < kBuffer; ++i) buffer[i] = char('a' + i % 26);
  const std::string head = "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(total) + "\r\nConnection: close\r\n\r\n";

  const auto t0 = Clock::now();
  const Deadline deadline{t0 + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(timeout))};
  unsigned long long sent = 0;
  int status = 0;
  long long answered = -1;
  std::string error = "-", body;

  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<unsigned short>(port));
  int one = 1;
  if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fd < 0) {
    error = "socket_failed";
  } else if (!arm(fd, deadline) ||
             connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "connect_failed";
  } else {
    // The head, then the body; a short send goes on from where it stopped.
    bool ok = true;
    for (std::size_t off = 0; ok && off < head.size();) {
      ssize_t n = arm(fd, deadline) ? send(fd, head.data() + off, head.size() - off, MSG_NOSIGNAL)
                                    : (errno = ETIMEDOUT, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ok = false; else off += std::size_t(n);
    }
    while (ok && sent < total) {
      if (!arm(fd, deadline)) {
        errno = ETIMEDOUT;
        ok = false;
        break;
      }
      std::size_t want = std::size_t(std::min<unsigned long long>(total - sent, kBuffer));
      ssize_t n = send(fd, buffer.data(), want, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) ok = false; else sent += std::size_t(n);
    }
    if (!ok) {
      error = (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT) ? "timeout_sending"
                                                                             : "send_failed";
      // The server may have answered early (an error status): read it if it is there.
      Deadline brief{std::min(deadline.end, Clock::now() + std::chrono::seconds(2))};
      std::string ignored;
      readResponse(fd, brief, status, body, ignored);
    } else {
      readResponse(fd, deadline, status, body, error);  // sets error on failure
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (fd >= 0) close(fd);

  if (!body.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(body.c_str(), &end, 10);
    if (end != body.c_str()) answered = v;
  }
  bool good = error == "-" && status == 200 && answered >= 0 &&
              static_cast<unsigned long long>(answered) == total && sent == total;
  if (!good && error == "-") {
    error = status != 200 ? "status_not_200" : "count_mismatch";
  }
  std::printf("UPLOAD_RESULT bytes=%llu seconds=%.6f status=%d answered=%lld ok=%d error=%s\n", sent,
              seconds, status, answered, good ? 1 : 0, error.c_str());
  std::fflush(stdout);
  return good ? 0 : 1;
}
